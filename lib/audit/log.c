/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: the writer: appends with group commit, checkpoints, recovery, reads and proofs. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-internal.h"

#define PEND_FLUSH_NOW (8u << 20) /* an appender flushes itself above this much pending data */
#define STATE_MAX (64u << 10)
#define SPOOL_INGEST_MS 1000 /* how often the writer looks for spooled events */

/* A new segment starting at @seg at byte @at of the pending data (@idx_at of the index). */
struct rot {
	size_t at, idx_at;
	uint64_t seg;
};

/* A snapshot of the tree at a checkpoint, persisted once the checkpoint is durable. */
struct snap {
	bool set;
	struct exai__merkle tree;
	char prev[65];
	uint64_t seg, off; /* segment and offset right after the checkpoint record */
	char *note;
};

struct exai_audit_log {
	exai_ctx *ctx;
	char *origin, *dir, *key_tenant;
	struct exai__signer signer;
	uint8_t *digest_key;
	int durability;
	uint32_t batch_delay_ms, cp_events, cp_ms, max_event;
	uint64_t seg_size;
	uint32_t retention_days;
	bool readonly, verify_on_open, spool_if_busy;

	pthread_mutex_t lock;
	pthread_cond_t durable_cond; /* durable, broken or closing changed */
	pthread_cond_t wake;         /* the background thread has work */

	/* Logical head (under lock): what appends have ordered. */
	uint64_t next_seq;
	char prev[65];
	struct exai__merkle tree;
	uint64_t head_seg, head_off; /* segment and offset the next record goes to */
	struct exai__buf pend, pend_idx;
	struct exai__buf spare, spare_idx; /* the buffers of the last flush, reused (no regrowth) */
	struct rot *rot;             /* segment rotations inside pend */
	size_t nrot;
	struct snap snap;            /* checkpoint in pend, to persist after the flush */
	uint64_t sealed;             /* tree size of the last checkpoint ordered */
	int64_t unsealed_since;      /* time of the first event after it, 0 when none */

	/* Files (the flusher owns them while flushing). */
	bool flushing;
	int seg_fd, idx_fd;
	uint64_t durable;            /* events durable */
	uint64_t flushes;            /* fdatasync'ed flushes (for the benchmark) */
	int broken;                  /* a write failed: no more appends */
	char *last_cp;               /* latest durable checkpoint note */
	struct exai__seglist segs;   /* under lock */

	uint64_t pruned;             /* first retained seq */
	struct exai__merkle prefix;  /* compact range of the pruned prefix */

	int lock_fd;                 /* flock()ed by the one writer */
	bool spooling;               /* another process writes: appends go to @spool */
	struct exai__spool spool;
	bool ingesting;              /* a thread chains spooled events: others wait */
	pthread_t ingester;
	pthread_cond_t ingest_cond;
	int64_t ingested_at;         /* when the background thread last looked at the spool */
	pthread_t thread;
	bool thread_started, closing;
	struct exai__sink *sinks;
};

const char *exai__log_origin(exai_audit_log *log) { return log->origin; }
const char *exai__log_path(exai_audit_log *log) { return log->dir; }
exai_ctx *exai__log_ctx(exai_audit_log *log) { return log->ctx; }
struct exai__sink **exai__log_sinks(exai_audit_log *log) { return &log->sinks; }
pthread_mutex_t *exai__log_mutex(exai_audit_log *log) { return &log->lock; }

/* ---- state file ------------------------------------------------------------------------ */

static int state_write(exai_audit_log *log, const struct snap *s)
{
	json_t *h = json_array();
	for (unsigned i = 0; h && i < s->tree.n; i++) {
		char b[48];
		exai__b64(b, s->tree.h[i], 32);
		json_array_append_new(h, json_string(b));
	}
	json_t *o = json_pack("{s:i, s:I, s:s, s:o, s:I, s:I, s:s}", "v", 1, "size", (json_int_t)s->tree.size,
			      "prev", s->prev, "hashes", h, "segment", (json_int_t)s->seg, "offset",
			      (json_int_t)s->off, "checkpoint", s->note);
	char *text = NULL;
	size_t len;
	int r = o ? exai__jcs_dump(o, &text, &len) : exai__err(-ENOMEM, "out of memory");
	json_decref(o);
	if (r == 0) {
		char *path = exai__path_join(log->dir, "tree.state");
		r = path ? exai__write_file_atomic(path, text, len, 0644) : exai__err(-ENOMEM, "out of memory");
		free(path);
	}
	free(text);
	return r;
}

/* Reads tree.state; 0 and s->set when present and consistent with its signed checkpoint. */
static int state_read(exai_audit_log *log, struct snap *s, const struct exai__vkey *vk)
{
	char *path = exai__path_join(log->dir, "tree.state"), *text = NULL;
	size_t len;
	memset(s, 0, sizeof(*s));
	int r = path ? exai__read_file(path, STATE_MAX, &text, &len) : -ENOMEM;
	free(path);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	json_t *o = NULL;
	r = exai__json_parse(&o, text, len);
	free(text);
	if (r < 0)
		return exai__err(-EBADMSG, "%s/tree.state is not JSON", log->dir);
	json_t *h = json_object_get(o, "hashes"), *note = json_object_get(o, "checkpoint");
	r = exai__err(-EBADMSG, "%s/tree.state is damaged", log->dir);
	if (json_number_value(json_object_get(o, "v")) == 1 && json_is_array(h) && json_is_string(note) &&
	    json_is_string(json_object_get(o, "prev")) && strlen(json_string_value(json_object_get(o, "prev"))) == 64) {
		s->tree.size = (uint64_t)json_number_value(json_object_get(o, "size"));
		s->seg = (uint64_t)json_number_value(json_object_get(o, "segment"));
		s->off = (uint64_t)json_number_value(json_object_get(o, "offset"));
		memcpy(s->prev, json_string_value(json_object_get(o, "prev")), 65);
		s->tree.n = (unsigned)json_array_size(h);
		bool ok = s->tree.n == (unsigned)__builtin_popcountll(s->tree.size);
		for (unsigned i = 0; ok && i < s->tree.n; i++) {
			size_t hl;
			json_t *e = json_array_get(h, i);
			ok = json_is_string(e) && exai__unb64(s->tree.h[i], 32, &hl, json_string_value(e),
							     json_string_length(e)) == 0 && hl == 32;
		}
		size_t tl;
		uint64_t size;
		uint8_t root[32], mine[32];
		const char *n = json_string_value(note);
		if (ok && exai__note_verify(vk, n, strlen(n), &tl) == 0 &&
		    exai_audit_checkpoint_parse(NULL, &size, root, n, tl) == 0 && size == s->tree.size) {
			exai__merkle_root(&s->tree, mine);
			if (memcmp(root, mine, 32) == 0 && (s->note = strdup(n))) {
				s->set = true;
				r = 0;
			}
		}
	}
	json_decref(o);
	return r;
}

/* ---- segments ----------------------------------------------------------------------------- */

static int seg_create(exai_audit_log *log, uint64_t first, int *retseg, int *retidx)
{
	char *sp = exai__seg_path(log->dir, first, "seg"), *ip = exai__seg_path(log->dir, first, "idx");
	int r = 0, sfd = -1, ifd = -1;
	uint8_t hdr[EXAI__SEG_HDR];
	exai__seg_header(hdr, first);
	if (!sp || !ip)
		r = exai__err(-ENOMEM, "out of memory");
	if (r == 0 && (sfd = open(sp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644)) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot create %s", sp);
	if (r == 0 && (r = exai__write_all(sfd, hdr, sizeof(hdr))) < 0)
		exai__err_sys(r, "cannot write %s", sp);
	if (r == 0 && fdatasync(sfd) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot sync %s", sp);
	if (r == 0 && (ifd = open(ip, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot create %s", ip);
	if (r == 0)
		r = exai__fsync_parent(sp);
	if (r < 0) {
		if (sfd >= 0)
			close(sfd);
		if (ifd >= 0)
			close(ifd);
	} else {
		*retseg = sfd;
		*retidx = ifd;
	}
	free(sp);
	free(ip);
	return r;
}

static int seglist_add(struct exai__seglist *l, uint64_t first)
{
	uint64_t *f = realloc(l->first, (l->n + 1) * sizeof(*f));
	if (!f)
		return exai__err(-ENOMEM, "out of memory");
	l->first = f;
	l->first[l->n++] = first;
	return 0;
}

/* Index of the segment holding @seq, under lock. */
static size_t seg_of(const struct exai__seglist *l, uint64_t seq)
{
	size_t lo = 0, hi = l->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (l->first[mid] <= seq)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* ---- flushing ------------------------------------------------------------------------------- */

/* Writes what is pending and makes it durable. Called with the lock held and flushing false;
 * drops the lock while writing. */
static int flush_locked(exai_audit_log *log)
{
	if (log->pend.len == 0 || log->broken)
		return log->broken;
	struct exai__buf data = log->pend, idx = log->pend_idx;
	struct rot *rot = log->rot;
	size_t nrot = log->nrot;
	uint64_t target = log->next_seq;
	struct snap snap = log->snap;
	log->pend = log->spare;
	log->pend_idx = log->spare_idx;
	memset(&log->spare, 0, sizeof(log->spare));
	memset(&log->spare_idx, 0, sizeof(log->spare_idx));
	memset(&log->snap, 0, sizeof(log->snap));
	log->rot = NULL;
	log->nrot = 0;
	log->flushing = true;
	pthread_mutex_unlock(&log->lock);

	int r = 0;
	size_t at = 0, idx_at = 0;
	for (size_t k = 0; k <= nrot && r == 0; k++) {
		size_t end = k < nrot ? rot[k].at : data.len, idx_end = k < nrot ? rot[k].idx_at : idx.len;
		if (k > 0) {
			int sfd, ifd;
			r = seg_create(log, rot[k - 1].seg, &sfd, &ifd);
			if (r < 0)
				break;
			close(log->seg_fd);
			close(log->idx_fd);
			log->seg_fd = sfd;
			log->idx_fd = ifd;
			pthread_mutex_lock(&log->lock);
			r = seglist_add(&log->segs, rot[k - 1].seg);
			pthread_mutex_unlock(&log->lock);
		}
		if (r == 0)
			r = exai__write_all(log->seg_fd, data.data + at, end - at);
		if (r == 0 && idx_end > idx_at)
			r = exai__write_all(log->idx_fd, idx.data + idx_at, idx_end - idx_at);
		if (r == 0 && fdatasync(log->seg_fd) < 0)
			r = exai__neg_errno();
		at = end;
		idx_at = idx_end;
	}
	free(rot);
	if (r < 0)
		exai__err_sys(r, "cannot write the audit log %s", log->dir);
	if (r == 0 && snap.set) {
		int s = state_write(log, &snap); /* a missing state only costs time on open */
		if (s < 0)
			exai__log_warn(log->ctx, "audit", "%s: cannot save the tree state: %s", log->origin, exai_errmsg());
	}
	pthread_mutex_lock(&log->lock);
	data.len = idx.len = 0;
	exai__buf_free(&log->spare);
	exai__buf_free(&log->spare_idx);
	log->spare = data;
	log->spare_idx = idx;
	log->flushing = false;
	if (r < 0) {
		log->broken = r;
		exai__log_err(log->ctx, "audit", "%s: %s; the log accepts no more events", log->origin, exai_errmsg());
		free(snap.note);
	} else {
		log->durable = target;
		log->flushes++;
		if (snap.set) {
			free(log->last_cp);
			log->last_cp = snap.note;
		}
	}
	pthread_cond_broadcast(&log->durable_cond);
	return r;
}

/* Waits (lock held) until events below @seq are durable, flushing when nobody else is. */
static int wait_durable(exai_audit_log *log, uint64_t seq)
{
	while (log->durable < seq && !log->broken) {
		if (!log->flushing) {
			flush_locked(log);
		} else {
			pthread_cond_wait(&log->durable_cond, &log->lock);
		}
	}
	return log->broken ? exai__err(-EROFS, "the audit log %s failed a write and accepts no more events",
				       log->origin) : 0;
}

/* Orders a checkpoint record for the current tree (lock held). */
static int checkpoint_locked(exai_audit_log *log)
{
	uint8_t root[32];
	char *text = NULL, *note = NULL;
	size_t tlen, nlen;
	exai__merkle_root(&log->tree, root);
	int r = exai__checkpoint_text(&text, &tlen, log->origin, log->tree.size, root);
	if (r == 0)
		r = exai__note_sign(&log->signer, text, tlen, &note, &nlen);
	free(text);
	size_t before = log->pend.len;
	if (r == 0)
		r = exai__rec_frame(&log->pend, EXAI__REC_CHECKPOINT, log->tree.size, note, nlen);
	if (r < 0) {
		free(note);
		return r;
	}
	log->head_off += log->pend.len - before;
	free(log->snap.note);
	log->snap = (struct snap){ .set = true, .tree = log->tree, .seg = log->head_seg, .off = log->head_off, .note = note };
	memcpy(log->snap.prev, log->prev, 65);
	log->sealed = log->tree.size;
	log->unsealed_since = 0;
	/* Segments end right after a checkpoint. */
	if (log->head_off >= log->seg_size) {
		struct rot *nr = realloc(log->rot, (log->nrot + 1) * sizeof(*nr));
		if (!nr)
			return 0; /* the segment just grows */
		log->rot = nr;
		log->rot[log->nrot++] = (struct rot){ log->pend.len, log->pend_idx.len, log->next_seq };
		log->head_seg = log->next_seq;
		log->head_off = EXAI__SEG_HDR;
	}
	return 0;
}

/* Orders the event prepared in @parts (consumed). */
static int append_parts(exai_audit_log *log, struct exai__event_parts *p, uint64_t *retseq, bool wait);
static int drain_locked(exai_audit_log *log);

int exai__log_spooling(const exai_audit_log *log)
{
	return log && log->spooling ? exai__err(-EBUSY, "the audit log %s is held for writing by another process: this "
						     "handle only spools events", log->origin) : 0;
}

/* The spooling process's append: refused exactly as the writer would refuse it, then written
 * as the caller's members with `time` set now when absent (the log's own members come when
 * the writer chains it). */
static int spool_append(exai_audit_log *log, json_t *obj, uint64_t *retseq)
{
	struct exai__event_parts parts;
	int r = exai__event_prepare(&parts, obj, log->max_event);
	if (r < 0)
		return r;
	exai__event_parts_free(&parts);
	json_t *o = json_copy(obj);
	char *text = NULL;
	size_t len;
	if (!o || (!json_object_get(o, "time") && json_object_set_new(o, "time", json_integer(exai__now_ms())) < 0))
		r = exai__err(-ENOMEM, "out of memory");
	if (r == 0)
		r = exai__jcs_dump(o, &text, &len);
	json_decref(o);
	if (r < 0)
		return r;
	pthread_mutex_lock(&log->lock);
	r = exai__spool_write(&log->spool, text + 1, len - 2, log->durability == EXAI_AUDIT_SYNC);
	pthread_mutex_unlock(&log->lock);
	free(text);
	if (r == 0 && retseq)
		*retseq = EXAI_AUDIT_SEQ_SPOOLED;
	return r;
}

static int append_obj(exai_audit_log *log, json_t *obj, uint64_t *retseq)
{
	if (!log)
		return exai__err(-EINVAL, "no audit log");
	if (log->readonly)
		return exai__err(-EROFS, "the audit log %s is open read-only", log->origin);
	if (log->spooling)
		return spool_append(log, obj, retseq);
	struct exai__event_parts parts;
	int r = exai__event_prepare(&parts, obj, log->max_event);
	return r < 0 ? r : append_parts(log, &parts, retseq, true);
}

static int append_parts(exai_audit_log *log, struct exai__event_parts *p, uint64_t *retseq, bool wait)
{
	struct exai__event_parts parts = *p;
	int r = 0;
	struct exai__buf ev = { 0 };
	pthread_mutex_lock(&log->lock);
	while (log->ingesting && !pthread_equal(log->ingester, pthread_self()))
		pthread_cond_wait(&log->ingest_cond, &log->lock);
	if (log->broken || log->closing) {
		r = exai__err(-EROFS, "the audit log %s %s", log->origin,
			      log->closing ? "is closing" : "failed a write and accepts no more events");
		goto out;
	}
	uint64_t seq = log->next_seq;
	r = exai__event_assemble(&ev, &parts, log->origin, log->prev, seq);
	if (r == 0 && ev.len > log->max_event)
		r = exai__err(-EFBIG, "audit event of %zu canonical bytes exceeds the limit of %u bytes", ev.len,
			      log->max_event);
	if (r < 0)
		goto out;
	uint8_t leaf[32], h[32];
	size_t before = log->pend.len;
	r = exai__rec_frame(&log->pend, EXAI__REC_EVENT, seq, ev.data, ev.len);
	if (r == 0 && exai__buf_reserve(&log->pend_idx, EXAI__IDX_ENTRY) < 0) {
		log->pend.len = before;
		r = exai__err(-ENOMEM, "out of memory");
	}
	if (r < 0)
		goto out;
	/* From here on nothing fails: the event is ordered. */
	uint8_t *e = (uint8_t *)log->pend_idx.data + log->pend_idx.len;
	for (int i = 0; i < 8; i++)
		e[i] = (uint8_t)(log->head_off >> (8 * i));
	exai_audit_merkle_leaf_hash(leaf, ev.data, ev.len);
	memcpy(e + 8, leaf, 32);
	log->pend_idx.len += EXAI__IDX_ENTRY;
	log->head_off += log->pend.len - before;
	exai__sha256(h, ev.data, ev.len);
	exai__hex(log->prev, h, 32);
	exai__merkle_push(&log->tree, leaf);
	log->next_seq = seq + 1;
	if (!log->unsealed_since)
		log->unsealed_since = exai__now_ms();
	if (log->tree.size - log->sealed >= log->cp_events && checkpoint_locked(log) < 0)
		exai__log_warn(log->ctx, "audit", "%s: checkpoint postponed: %s", log->origin, exai_errmsg());
	if (retseq)
		*retseq = seq;
	if ((wait && log->durability == EXAI_AUDIT_SYNC) || log->pend.len >= PEND_FLUSH_NOW)
		r = wait_durable(log, seq + 1);
	else
		pthread_cond_signal(&log->wake);
out:
	pthread_mutex_unlock(&log->lock);
	exai__buf_free(&ev);
	exai__event_parts_free(&parts);
	return r;
}

EXAI_API int exai_audit_append(exai_audit_log *log, const exai_audit_event *ev, uint64_t *retseq)
{
	if (!ev)
		return exai__err(-EINVAL, "no audit event");
	return append_obj(log, ev->obj, retseq);
}

static int append_json(exai_audit_log *log, const char *json, size_t len, uint64_t *retseq, bool wait)
{
	json_t *o = NULL;
	if (!json || !len)
		return exai__err(-EINVAL, "no audit event text");
	if (log && !log->readonly && !log->spooling) {
		struct exai__event_parts parts;
		int f = exai__event_prepare_text(&parts, json, len, log->max_event);
		if (f != -EAGAIN)
			return f < 0 ? f : append_parts(log, &parts, retseq, wait);
	}
	int r = exai__event_parse(&o, json, len);
	if (r == 0 && wait)
		r = append_obj(log, o, retseq);
	else if (r == 0) {
		struct exai__event_parts parts;
		r = exai__event_prepare(&parts, o, log->max_event);
		if (r == 0)
			r = append_parts(log, &parts, retseq, false);
	}
	json_decref(o);
	return r;
}

EXAI_API int exai_audit_append_json(exai_audit_log *log, const char *json, size_t len, uint64_t *retseq)
{
	return append_json(log, json, len, retseq, true);
}

int exai__log_append_spooled(exai_audit_log *log, const char *json, size_t len)
{
	return append_json(log, json, len, NULL, false);
}

uint64_t exai__log_ingest_begin(exai_audit_log *log)
{
	pthread_mutex_lock(&log->lock);
	while (log->ingesting)
		pthread_cond_wait(&log->ingest_cond, &log->lock);
	log->ingesting = true;
	log->ingester = pthread_self();
	drain_locked(log);
	uint64_t next = log->next_seq;
	pthread_mutex_unlock(&log->lock);
	return next;
}

int exai__log_ingest_end(exai_audit_log *log)
{
	pthread_mutex_lock(&log->lock);
	int r = drain_locked(log);
	log->ingesting = false;
	pthread_cond_broadcast(&log->ingest_cond);
	pthread_mutex_unlock(&log->lock);
	return r;
}

/* Writes everything ordered so far, checkpoints included (lock held). */
static int drain_locked(exai_audit_log *log)
{
	int r = 0;
	while (r == 0 && (log->pend.len || log->flushing) && !log->broken) {
		if (log->flushing)
			pthread_cond_wait(&log->durable_cond, &log->lock);
		else
			r = flush_locked(log);
	}
	if (log->broken)
		r = exai__err(-EROFS, "the audit log %s failed a write and accepts no more events", log->origin);
	return r;
}

EXAI_API int exai_audit_flush(exai_audit_log *log)
{
	if (!log)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling) {
		pthread_mutex_lock(&log->lock);
		int r = exai__spool_flush(&log->spool);
		pthread_mutex_unlock(&log->lock);
		return r;
	}
	pthread_mutex_lock(&log->lock);
	int r = drain_locked(log);
	pthread_mutex_unlock(&log->lock);
	return r;
}

EXAI_API int exai_audit_checkpoint(exai_audit_log *log, char **ret, bool force)
{
	if (!log)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	pthread_mutex_lock(&log->lock);
	int r = 0;
	if (!log->readonly && (log->tree.size > log->sealed || (force && log->tree.size > 0)))
		r = checkpoint_locked(log);
	if (r == 0)
		r = drain_locked(log);
	if (r == 0 && !log->last_cp)
		r = exai__err(-ENOENT, "the audit log %s has no checkpoint yet", log->origin);
	if (r == 0 && ret && !(*ret = strdup(log->last_cp)))
		r = exai__err(-ENOMEM, "out of memory");
	pthread_mutex_unlock(&log->lock);
	return r;
}

EXAI_API int exai_audit_latest_checkpoint(exai_audit_log *log, char **ret)
{
	if (!log || !ret)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	pthread_mutex_lock(&log->lock);
	int r = !log->last_cp ? exai__err(-ENOENT, "the audit log %s has no checkpoint yet", log->origin) :
		!(*ret = strdup(log->last_cp)) ? exai__err(-ENOMEM, "out of memory") : 0;
	pthread_mutex_unlock(&log->lock);
	return r;
}

/* ---- the background thread -------------------------------------------------------------- */

static void *bg_main(void *arg)
{
	exai_audit_log *log = arg;
	pthread_mutex_lock(&log->lock);
	while (!log->closing) {
		uint32_t tick = log->durability == EXAI_AUDIT_BATCH ? log->batch_delay_ms : 50;
		if (tick > 50)
			tick = 50;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)tick * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&log->wake, &log->lock, &ts);
		if (log->closing || log->broken)
			break;
		if (log->unsealed_since && exai__now_ms() - log->unsealed_since >= log->cp_ms &&
		    checkpoint_locked(log) < 0)
			exai__log_warn(log->ctx, "audit", "%s: checkpoint postponed: %s", log->origin, exai_errmsg());
		if (log->pend.len && !log->flushing)
			flush_locked(log);
		if (exai__now_ms() - log->ingested_at >= SPOOL_INGEST_MS) {
			log->ingested_at = exai__now_ms();
			pthread_mutex_unlock(&log->lock);
			if (exai__spool_ingest(log) < 0)
				exai__log_warn(log->ctx, "audit", "%s: spooled events wait: %s", log->origin, exai_errmsg());
			pthread_mutex_lock(&log->lock);
		}
	}
	pthread_mutex_unlock(&log->lock);
	return NULL;
}

/* ---- recovery ----------------------------------------------------------------------------- */

struct scan {
	exai_audit_log *log;
	const struct exai__vkey *vk;
	uint64_t seg_first;
	int idx_fd;
};

/* Whether a valid record starts anywhere in @p[from..n): then the damage is not a torn tail. */
static bool valid_record_after(const uint8_t *p, size_t n, size_t from)
{
	for (size_t i = from; i + EXAI__REC_HDR <= n; i++) {
		uint32_t m = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
		if (m != EXAI__REC_MAGIC)
			continue;
		struct exai__rec r;
		size_t len;
		if (exai__rec_decode(&r, p + i, n - i, &len) == 0)
			return true;
	}
	return false;
}

/* Scans the segments from (@seg index, @off) to the end, rebuilding the chain, tree and index;
 * cuts a torn tail of the last segment. */
static int recover(exai_audit_log *log, const struct exai__vkey *vk, size_t si, uint64_t off)
{
	int r = 0;
	for (; si < log->segs.n && r == 0; si++, off = EXAI__SEG_HDR) {
		uint64_t first = log->segs.first[si];
		char *path = exai__seg_path(log->dir, first, "seg"), *ipath = exai__seg_path(log->dir, first, "idx");
		char *data = NULL;
		size_t len = 0;
		bool last = si + 1 == log->segs.n;
		int ifd = -1;
		if (!path || !ipath) {
			r = exai__err(-ENOMEM, "out of memory");
			goto next;
		}
		r = exai__read_file(path, (size_t)1 << 40, &data, &len);
		if (r < 0)
			goto next;
		uint64_t hfirst;
		if (exai__seg_header_check((uint8_t *)data, len, &hfirst) < 0 || hfirst != first) {
			if (last && len < EXAI__SEG_HDR && si > 0) { /* torn at creation */
				r = unlink(path) == 0 && (unlink(ipath) == 0 || errno == ENOENT) ? 0 :
					exai__err_sys(exai__neg_errno(), "cannot remove the torn segment %s", path);
				log->segs.n--;
				goto next;
			}
			r = exai__err(-EBADMSG, "%s: bad segment header", path);
			goto next;
		}
		if (off > len) {
			r = exai__err(-EBADMSG, "%s is shorter than its last checkpoint says", path);
			goto next;
		}
		if (off == EXAI__SEG_HDR && first != log->next_seq) {
			r = exai__err(-EBADMSG, "%s starts at seq %llu, expected %llu", path, (unsigned long long)first,
				      (unsigned long long)log->next_seq);
			goto next;
		}
		/* Rebuild this segment's index from here on (a reader leaves it alone). */
		if (!log->readonly)
			ifd = open(ipath, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (log->readonly)
			;
		else if (ifd < 0 || ftruncate(ifd, (off_t)((log->next_seq - first) * EXAI__IDX_ENTRY)) < 0 ||
		    lseek(ifd, 0, SEEK_END) < 0) {
			r = exai__err_sys(exai__neg_errno(), "cannot rewrite %s", ipath);
			goto next;
		}
		struct exai__buf ib = { 0 };
		while (off < len && r == 0) {
			struct exai__rec rec;
			size_t rl;
			int d = exai__rec_decode(&rec, (uint8_t *)data + off, len - off, &rl);
			if (d == 0 && rec.type == EXAI__REC_EVENT)
				d = exai__event_check(&rec, log->next_seq, log->prev, log->origin);
			if (d == 0 && rec.type == EXAI__REC_CHECKPOINT) {
				size_t tl;
				uint64_t size;
				uint8_t root[32], mine[32];
				d = exai__note_verify(vk, rec.payload, rec.len, &tl);
				if (d == 0)
					d = exai_audit_checkpoint_parse(NULL, &size, root, rec.payload, tl);
				exai__merkle_root(&log->tree, mine);
				if (d == 0 && (size != log->tree.size || memcmp(root, mine, 32) != 0))
					d = exai__err(-EBADMSG, "checkpoint of size %llu does not match the tree",
						      (unsigned long long)size);
				if (d == 0) {
					char *n = exai__strndup(rec.payload, rec.len);
					if (n) {
						free(log->last_cp);
						log->last_cp = n;
					}
					log->sealed = size;
				}
			}
			if (d == -EAGAIN || (d < 0 && last && !valid_record_after((uint8_t *)data, len, off + 1))) {
				/* A torn tail: appends that never returned. Cut it (a reader stops there). */
				if (log->readonly)
					break;
				exai__log_warn(log->ctx, "audit", "%s: cutting a torn tail of %zu bytes at seq %llu",
					       log->origin, len - (size_t)off, (unsigned long long)log->next_seq);
				int fd = open(path, O_WRONLY | O_CLOEXEC);
				if (fd < 0 || ftruncate(fd, (off_t)off) < 0 || fdatasync(fd) < 0)
					r = exai__err_sys(exai__neg_errno(), "cannot cut the torn tail of %s", path);
				if (fd >= 0)
					close(fd);
				len = off;
				break;
			}
			if (d < 0) {
				EXAI__WHY(why);
				r = exai__err(-EBADMSG, "seq %llu: %s (%s, offset %llu); the log refuses to append",
					      (unsigned long long)log->next_seq, why, path, (unsigned long long)off);
				break;
			}
			if (rec.type == EXAI__REC_EVENT) {
				uint8_t leaf[32], h[32], e[EXAI__IDX_ENTRY];
				exai_audit_merkle_leaf_hash(leaf, rec.payload, rec.len);
				for (int i = 0; i < 8; i++)
					e[i] = (uint8_t)(off >> (8 * i));
				memcpy(e + 8, leaf, 32);
				if (exai__buf_append(&ib, e, sizeof(e)) < 0)
					r = exai__err(-ENOMEM, "out of memory");
				exai__sha256(h, rec.payload, rec.len);
				exai__hex(log->prev, h, 32);
				exai__merkle_push(&log->tree, leaf);
				log->next_seq++;
			}
			off += rl;
		}
		if (r == 0 && ib.len && ifd >= 0 && exai__write_all(ifd, ib.data, ib.len) < 0)
			r = exai__err_sys(exai__neg_errno(), "cannot write %s", ipath);
		exai__buf_free(&ib);
	next:
		if (ifd >= 0)
			close(ifd);
		free(data);
		free(path);
		free(ipath);
	}
	return r;
}

static int load_digest_key(exai_audit_log *log)
{
	char *path = exai__path_join(log->dir, "digest.key"), *text = NULL;
	size_t len;
	log->digest_key = sodium_malloc(32);
	if (!path || !log->digest_key) {
		free(path);
		return exai__err(-ENOMEM, "out of memory");
	}
	int r = exai__read_file(path, 64, &text, &len);
	if (r == 0) {
		if (len == 32)
			memcpy(log->digest_key, text, 32);
		else
			r = exai__err(-EBADMSG, "%s is not a 32-byte key", path);
		sodium_memzero(text, len);
		free(text);
	} else if (r == -ENOENT && !log->readonly) {
		randombytes_buf(log->digest_key, 32);
		r = exai__write_file_atomic(path, log->digest_key, 32, 0600);
	} else if (r == -ENOENT) {
		sodium_free(log->digest_key);
		log->digest_key = NULL;
		r = 0;
	}
	free(path);
	return r;
}

/* The pruned prefix from the `pruned` file (a signed note), when the first segment starts late. */
static int load_pruned(exai_audit_log *log, const struct exai__vkey *vk)
{
	char *path = exai__path_join(log->dir, "pruned"), *note = NULL;
	size_t len, tl;
	int r = path ? exai__read_file(path, STATE_MAX, &note, &len) : -ENOMEM;
	free(path);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	struct exai__prune p;
	r = exai__note_verify(vk, note, len, &tl);
	if (r == 0)
		r = exai__prune_parse(&p, note, tl);
	free(note);
	if (r < 0) {
		EXAI__WHY(why);
		return exai__err(r, "%s/pruned: %s", log->dir, why);
	}
	log->pruned = p.first_seq;
	log->prefix = p.prefix;
	if (log->segs.n && log->segs.first[0] == p.first_seq && log->next_seq == 0) {
		log->tree = p.prefix;
		memcpy(log->prev, p.prev, 65);
		log->next_seq = p.first_seq;
	}
	return 0;
}

static int log_open(exai_audit_log *log)
{
	struct exai__vkey vk;
	int r = exai__ctx_ensure_state_dir(log->ctx);
	if (r == 0 && !log->readonly)
		r = exai__mkdir_p(log->dir, 0700);
	if (r == 0 && log->readonly && access(log->dir, F_OK) < 0)
		r = exai__err(-ENOENT, "no audit log %s", log->dir);
	if (r == 0 && !log->readonly) {
		char *lp = exai__path_join(log->dir, "lock");
		log->lock_fd = lp ? open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
		free(lp);
		if (log->lock_fd < 0)
			r = exai__err_sys(exai__neg_errno(), "cannot open %s/lock", log->dir);
		else if (flock(log->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK)
				return exai__err_sys(exai__neg_errno(), "cannot lock %s/lock", log->dir);
			if (!log->spool_if_busy)
				return exai__err(-EBUSY, "the audit log %s is open for writing by another process", log->dir);
			close(log->lock_fd);
			log->lock_fd = -1;
			log->spooling = true;
			return exai__spool_open(&log->spool, log->dir);
		}
	}
	if (r == 0)
		r = exai__audit_signer_load(&log->signer, log->ctx, log->dir, log->origin, log->key_tenant, !log->readonly);
	if (r == 0) {
		char *v = exai__signer_vkey(&log->signer);
		r = v ? exai__vkey_parse(&vk, v) : exai__err(-ENOMEM, "out of memory");
		free(v);
	}
	if (r == 0)
		r = load_digest_key(log);
	if (r == 0)
		r = exai__seglist_load(&log->segs, log->dir);
	if (r < 0)
		return r;
	memset(log->prev, '0', 64);
	log->prev[64] = '\0';
	if (log->segs.n == 0) {
		if (log->readonly)
			return exai__err(-ENOENT, "the audit log %s has no segments", log->dir);
		r = seg_create(log, 0, &log->seg_fd, &log->idx_fd);
		if (r == 0)
			r = seglist_add(&log->segs, 0);
		log->head_seg = 0;
		log->head_off = EXAI__SEG_HDR;
		return r;
	}
	r = load_pruned(log, &vk);
	if (r < 0)
		return r;
	if (log->segs.first[0] > 0 && log->next_seq == 0)
		return exai__err(-EBADMSG, "%s: the first segment starts at seq %llu without a valid prune record",
				 log->dir, (unsigned long long)log->segs.first[0]);
	/* Resume from the last checkpoint's saved tree state when it is valid. */
	struct snap s;
	r = state_read(log, &s, &vk);
	size_t si = 0;
	uint64_t off = EXAI__SEG_HDR;
	if (r == 0 && s.set && s.tree.size >= log->next_seq) {
		size_t k = seg_of(&log->segs, s.seg);
		if (log->segs.first[k] == s.seg) {
			log->tree = s.tree;
			memcpy(log->prev, s.prev, 65);
			log->next_seq = s.tree.size;
			log->sealed = s.tree.size;
			log->last_cp = s.note;
			s.note = NULL;
			si = k;
			off = s.off;
		}
	} else if (r < 0) {
		exai__log_warn(log->ctx, "audit", "%s; rescanning every segment", exai_errmsg());
	}
	free(s.note);
	r = recover(log, &vk, si, off);
	if (r == 0 && log->verify_on_open) {
		char *v = exai__signer_vkey(&log->signer);
		r = v ? exai_audit_verify(log->ctx, log->origin, v, NULL) : exai__err(-ENOMEM, "out of memory");
		free(v);
		if (r < 0) {
			EXAI__WHY(why);
			r = exai__err(r, "%s; the log refuses to append", why);
		}
	}
	if (r < 0)
		return r;
	log->durable = log->next_seq;
	if (log->readonly)
		return 0;
	uint64_t first = log->segs.first[log->segs.n - 1];
	char *sp = exai__seg_path(log->dir, first, "seg"), *ip = exai__seg_path(log->dir, first, "idx");
	struct stat st;
	if (!sp || !ip)
		r = exai__err(-ENOMEM, "out of memory");
	if (r == 0 && (log->seg_fd = open(sp, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot open %s", sp);
	if (r == 0 && fstat(log->seg_fd, &st) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot stat %s", sp);
	log->head_seg = first;
	log->head_off = r == 0 ? (uint64_t)st.st_size : 0;
	if (r == 0 && (log->idx_fd = open(ip, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot open %s", ip);
	free(sp);
	free(ip);
	if (r == 0 && log->tree.size > log->sealed)
		log->unsealed_since = exai__now_ms();
	return r;
}

EXAI_API int exai_audit_open(exai_audit_log **ret, exai_ctx *ctx, const struct exai_audit_opts *opts)
{
	if (!ret || !ctx)
		return exai__err(-EINVAL, "exai_audit_open: no context");
	int r = EXAI__OPTS_CHECK(opts, exai_audit_opts);
	if (r < 0)
		return r;
	const char *origin = EXAI__OPT(opts, origin, "exai");
	if (!exai__origin_valid(origin))
		return exai__err(-EINVAL, "exai_audit_opts.origin \"%.140s\": use 1..128 of A-Za-z0-9._-/, "
			     "not starting with '.' or '/'", origin);
	int dur = EXAI__OPT(opts, durability, EXAI_AUDIT_SYNC);
	if (dur != EXAI_AUDIT_SYNC && dur != EXAI_AUDIT_BATCH)
		return exai__err(-EINVAL, "exai_audit_opts.durability %d is neither SYNC nor BATCH", dur);
	uint32_t max_event = EXAI__OPT(opts, max_event_size, 65536u);
	if (max_event < 512 || max_event > (16u << 20))
		return exai__err(-EINVAL, "exai_audit_opts.max_event_size %u is not within 512..16 MiB", max_event);
	exai_audit_log *log = calloc(1, sizeof(*log));
	if (!log)
		return exai__err(-ENOMEM, "out of memory");
	log->ctx = exai_ctx_ref(ctx);
	log->durability = dur;
	log->batch_delay_ms = EXAI__OPT(opts, batch_delay_ms, 10u);
	log->cp_events = EXAI__OPT(opts, checkpoint_events, 10000u);
	log->cp_ms = EXAI__OPT(opts, checkpoint_ms, 1000u);
	log->max_event = max_event;
	log->seg_size = EXAI__OPT(opts, segment_size, (uint64_t)64 << 20);
	log->retention_days = EXAI__OPT(opts, retention_days, 2557u);
	uint32_t flags = EXAI__OPT(opts, flags, 0u);
	if (flags & ~(uint32_t)(EXAI_AUDIT_READONLY | EXAI_AUDIT_VERIFY_ON_OPEN | EXAI_AUDIT_SPOOL_IF_BUSY)) {
		exai_ctx_unref(log->ctx);
		free(log);
		return exai__err(-EINVAL, "exai_audit_opts.flags 0x%x has unknown bits", flags);
	}
	log->readonly = flags & EXAI_AUDIT_READONLY;
	log->verify_on_open = flags & EXAI_AUDIT_VERIFY_ON_OPEN;
	log->spool_if_busy = (flags & EXAI_AUDIT_SPOOL_IF_BUSY) && !log->readonly;
	log->seg_fd = log->idx_fd = log->lock_fd = -1;
	log->spool.fd = -1;
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->ingest_cond, NULL);
	pthread_cond_init(&log->durable_cond, NULL);
	pthread_cond_init(&log->wake, NULL);
	const char *kt = EXAI__OPT(opts, key_tenant, (const char *)NULL);
	log->origin = strdup(origin);
	log->dir = exai__log_dir(ctx, origin);
	log->key_tenant = kt ? strdup(kt) : NULL;
	r = log->origin && log->dir && (!kt || log->key_tenant) ? log_open(log) : exai__err(-ENOMEM, "out of memory");
	if (r == 0 && !log->readonly && !log->spooling) {
		/* what other processes spooled while they could not write (the thread looks again
		 * every SPOOL_INGEST_MS); a failure leaves it spooled for the next time */
		if (exai__spool_ingest(log) < 0)
			exai__log_warn(log->ctx, "audit", "%s: spooled events wait: %s", log->origin, exai_errmsg());
		log->ingested_at = exai__now_ms();
		if (pthread_create(&log->thread, NULL, bg_main, log) != 0)
			r = exai__err(-EAGAIN, "cannot start the audit log's thread");
		else
			log->thread_started = true;
	}
	if (r < 0) {
		char saved[512];
		snprintf(saved, sizeof(saved), "%s", exai_errmsg());
		log->readonly = true; /* nothing to flush */
		exai_audit_close(log);
		exai__err(r, "%s", saved);
		return r;
	}
	*ret = log;
	return 0;
}

EXAI_API int exai_audit_close(exai_audit_log *log)
{
	if (!log)
		return 0;
	int r = 0;
	exai__sinks_stop(log);
	if (log->spooling)
		r = exai__spool_close(&log->spool);
	else if (!log->readonly && !log->broken) {
		if (exai__spool_ingest(log) < 0)
			exai__log_warn(log->ctx, "audit", "%s: spooled events wait: %s", log->origin, exai_errmsg());
		pthread_mutex_lock(&log->lock);
		bool need = log->tree.size > log->sealed;
		pthread_mutex_unlock(&log->lock);
		r = exai_audit_checkpoint(log, NULL, false);
		if (r == -ENOENT && !need)
			r = 0;
	}
	pthread_mutex_lock(&log->lock);
	log->closing = true;
	pthread_cond_broadcast(&log->wake);
	pthread_cond_broadcast(&log->durable_cond);
	pthread_mutex_unlock(&log->lock);
	if (log->thread_started)
		pthread_join(log->thread, NULL);
	if (log->seg_fd >= 0)
		close(log->seg_fd);
	if (log->idx_fd >= 0)
		close(log->idx_fd);
	if (log->lock_fd >= 0)
		close(log->lock_fd);
	exai__buf_free(&log->pend);
	exai__buf_free(&log->pend_idx);
	exai__buf_free(&log->spare);
	exai__buf_free(&log->spare_idx);
	free(log->rot);
	free(log->snap.note);
	free(log->last_cp);
	exai__seglist_free(&log->segs);
	exai__audit_signer_free(&log->signer);
	if (log->digest_key)
		sodium_free(log->digest_key);
	pthread_cond_destroy(&log->wake);
	pthread_cond_destroy(&log->durable_cond);
	pthread_cond_destroy(&log->ingest_cond);
	pthread_mutex_destroy(&log->lock);
	free(log->origin);
	free(log->dir);
	free(log->key_tenant);
	exai_ctx_unref(log->ctx);
	free(log);
	return r;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* One field read under the lock. */
static uint64_t locked(exai_audit_log *log, const uint64_t *field)
{
	pthread_mutex_lock(&log->lock);
	uint64_t v = *field;
	pthread_mutex_unlock(&log->lock);
	return v;
}

uint64_t exai__log_durable(exai_audit_log *log) { return locked(log, &log->durable); }
uint64_t exai__log_pruned(exai_audit_log *log) { return locked(log, &log->pruned); }
uint64_t exai__log_flushes(exai_audit_log *log) { return locked(log, &log->flushes); }

bool exai__log_closing(exai_audit_log *log)
{
	pthread_mutex_lock(&log->lock);
	bool c = log->closing;
	pthread_mutex_unlock(&log->lock);
	return c;
}

/* A reader follows a writer in another process: what the writer's tree.state shows sealed
 * (it is written only once the checkpoint is durable) becomes deliverable. */
static void follow(exai_audit_log *log)
{
	struct exai__vkey vk = { .keyid = log->signer.keyid };
	snprintf(vk.name, sizeof(vk.name), "%s", log->origin);
	memcpy(vk.pk, log->signer.pk, 32);
	struct snap s;
	if (state_read(log, &s, &vk) < 0 || !s.set || s.tree.size <= exai__log_deliverable(log)) {
		free(s.note);
		return;
	}
	struct exai__seglist segs = { 0 };
	if (exai__seglist_load(&segs, log->dir) < 0 || segs.n == 0) {
		exai__seglist_free(&segs);
		free(s.note);
		return;
	}
	pthread_mutex_lock(&log->lock);
	exai__seglist_free(&log->segs);
	log->segs = segs;
	log->sealed = s.tree.size;
	if (log->durable < s.tree.size)
		log->durable = s.tree.size;
	free(log->last_cp);
	log->last_cp = s.note;
	pthread_mutex_unlock(&log->lock);
}

uint64_t exai__log_deliverable(exai_audit_log *log)
{
	return log->readonly ? locked(log, &log->sealed) : locked(log, &log->durable);
}

void exai__log_wait(exai_audit_log *log, uint64_t seq, int ms)
{
	if (log->readonly) {
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
		follow(log);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&log->lock);
	if (log->durable <= seq && !log->closing)
		pthread_cond_timedwait(&log->durable_cond, &log->lock, &ts);
	pthread_mutex_unlock(&log->lock);
}

/* Offset of event @seq in its segment (from the index); *@retfirst the segment. */
static int locate(exai_audit_log *log, uint64_t seq, uint64_t *retfirst, uint64_t *retoff, uint8_t leaf[32])
{
	pthread_mutex_lock(&log->lock);
	int r = 0;
	if (seq >= log->durable || seq < log->pruned || log->segs.n == 0)
		r = exai__err(-ENOENT, "seq %llu is not in the audit log %s (retained %llu..%llu)",
			      (unsigned long long)seq, log->origin, (unsigned long long)log->pruned,
			      (unsigned long long)log->durable);
	uint64_t first = r ? 0 : log->segs.first[seg_of(&log->segs, seq)];
	pthread_mutex_unlock(&log->lock);
	if (r)
		return r;
	char *ip = exai__seg_path(log->dir, first, "idx");
	int fd = ip ? open(ip, O_RDONLY | O_CLOEXEC) : -1;
	uint8_t e[EXAI__IDX_ENTRY];
	if (fd < 0 || pread(fd, e, sizeof(e), (off_t)((seq - first) * EXAI__IDX_ENTRY)) != (ssize_t)sizeof(e))
		r = exai__err(-EIO, "cannot read the index entry of seq %llu", (unsigned long long)seq);
	if (fd >= 0)
		close(fd);
	free(ip);
	if (r == 0) {
		uint64_t off = 0;
		for (int i = 0; i < 8; i++)
			off |= (uint64_t)e[i] << (8 * i);
		*retfirst = first;
		*retoff = off;
		if (leaf)
			memcpy(leaf, e + 8, 32);
	}
	return r;
}

int exai__log_scan(exai_audit_log *log, uint64_t from, uint64_t max,
		   int (*fn)(void *d, const struct exai__rec *r), void *d)
{
	uint64_t first, off, durable = exai__log_durable(log);
	if (from >= durable || max == 0)
		return 0;
	int r = locate(log, from, &first, &off, NULL);
	if (r < 0)
		return r;
	uint64_t seq = from, done = 0;
	bool stop = false;
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return exai__err(-ENOMEM, "out of memory");
	while (r == 0 && !stop) {
		char *sp = exai__seg_path(log->dir, first, "seg");
		int fd = sp ? open(sp, O_RDONLY | O_CLOEXEC) : -1;
		free(sp);
		if (fd < 0) {
			r = exai__err_sys(exai__neg_errno(), "cannot open segment %016" PRIx64, first);
			break;
		}
		bool seg_end = false;
		while (r == 0 && !stop && !seg_end) {
			ssize_t n = pread(fd, buf, cap, (off_t)off);
			if (n < 0) {
				r = exai__err_sys(exai__neg_errno(), "cannot read segment %016" PRIx64, first);
				break;
			}
			size_t pos = 0;
			for (;;) {
				struct exai__rec rec;
				size_t rl;
				int dr = exai__rec_decode(&rec, buf + pos, (size_t)n - pos, &rl);
				if (dr == -EAGAIN) {
					if (pos == 0 && (size_t)n == cap) { /* a record larger than the buffer */
						uint8_t *nb = realloc(buf, cap *= 2);
						if (!nb)
							r = exai__err(-ENOMEM, "out of memory");
						else
							buf = nb;
					} else if (pos == 0) {
						seg_end = true;
					}
					break;
				}
				if (dr < 0) {
					EXAI__WHY(why);
					r = exai__err(-EBADMSG, "seq %llu: %s", (unsigned long long)seq, why);
					break;
				}
				/* Stop before the next event past the batch, or past what is durable; the
				 * checkpoints right after the batch's last event belong to it. */
				if (rec.type == EXAI__REC_EVENT ? (done >= max || rec.seq >= durable) : rec.seq > durable) {
					stop = true;
					break;
				}
				r = fn(d, &rec);
				if (r < 0)
					break;
				pos += rl;
				if (rec.type == EXAI__REC_EVENT) {
					seq = rec.seq + 1;
					done++;
				}
			}
			off += pos;
		}
		close(fd);
		if (r < 0 || stop)
			break;
		/* next segment */
		pthread_mutex_lock(&log->lock);
		size_t k = seg_of(&log->segs, first);
		bool more = k + 1 < log->segs.n;
		if (more)
			first = log->segs.first[k + 1];
		pthread_mutex_unlock(&log->lock);
		if (!more)
			break;
		off = EXAI__SEG_HDR;
	}
	free(buf);
	return r;
}

int exai__log_read_event(exai_audit_log *log, uint64_t seq, char **ret, size_t *retlen)
{
	uint64_t first, off;
	int r = locate(log, seq, &first, &off, NULL);
	if (r < 0)
		return r;
	char *sp = exai__seg_path(log->dir, first, "seg");
	int fd = sp ? open(sp, O_RDONLY | O_CLOEXEC) : -1;
	free(sp);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open segment %016" PRIx64, first);
	uint8_t hdr[EXAI__REC_HDR];
	uint8_t *buf = NULL;
	r = exai__err(-EIO, "seq %llu: cannot read its record", (unsigned long long)seq);
	if (pread(fd, hdr, sizeof(hdr), (off_t)off) == (ssize_t)sizeof(hdr)) {
		uint32_t len = (uint32_t)hdr[16] | (uint32_t)hdr[17] << 8 | (uint32_t)hdr[18] << 16 | (uint32_t)hdr[19] << 24;
		size_t total = EXAI__REC_HDR + (size_t)len + EXAI__REC_TRAILER;
		struct exai__rec rec;
		size_t rl;
		if (len <= EXAI__REC_MAX && (buf = malloc(total)) && pread(fd, buf, total, (off_t)off) == (ssize_t)total) {
			if (exai__rec_decode(&rec, buf, total, &rl) == 0 && rec.type == EXAI__REC_EVENT && rec.seq == seq) {
				char *s = malloc(rec.len + 1);
				if (!s) {
					r = exai__err(-ENOMEM, "out of memory");
				} else {
					memcpy(s, rec.payload, rec.len);
					s[rec.len] = '\0';
					*ret = s;
					if (retlen)
						*retlen = rec.len;
					r = 0;
				}
			} else {
				r = exai__err(-EBADMSG, "seq %llu: its record is damaged", (unsigned long long)seq);
			}
		}
	}
	free(buf);
	close(fd);
	return r;
}

EXAI_API int exai_audit_leaf(exai_audit_log *log, uint64_t seq, char **ret, size_t *retlen)
{
	if (!log || !ret)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	return exai__log_read_event(log, seq, ret, retlen);
}

EXAI_API int exai_audit_size(exai_audit_log *log, uint64_t *retsize)
{
	if (!log || !retsize)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	*retsize = exai__log_durable(log);
	return 0;
}

EXAI_API int exai_audit_vkey(exai_audit_log *log, char **ret)
{
	if (!log || !ret)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	char *v = exai__signer_vkey(&log->signer);
	if (!v)
		return exai__err(-ENOMEM, "out of memory");
	*ret = v;
	return 0;
}

EXAI_API int exai_audit_digest(exai_audit_log *log, char **ret, const void *data, size_t len)
{
	if (!log || !ret || (!data && len))
		return exai__err(-EINVAL, "exai_audit_digest: no log or data");
	if (log->spooling)
		return exai__log_spooling(log);
	if (!log->digest_key)
		return exai__err(-ENOENT, "the audit log %s has no digest key", log->origin);
	uint8_t h[32];
	crypto_generichash(h, sizeof(h), data, len, log->digest_key, 32);
	char *s = malloc(4 + 65);
	if (!s)
		return exai__err(-ENOMEM, "out of memory");
	memcpy(s, "b2k:", 4);
	exai__hex(s + 4, h, 32);
	*ret = s;
	return 0;
}

/* Leaf hashes from the segments' index files. */
static int leaves_from_index(void *data, uint64_t lo, uint64_t n, uint8_t (*out)[32])
{
	exai_audit_log *log = data;
	while (n) {
		pthread_mutex_lock(&log->lock);
		size_t k = seg_of(&log->segs, lo);
		uint64_t first = log->segs.first[k];
		uint64_t end = k + 1 < log->segs.n ? log->segs.first[k + 1] : UINT64_MAX;
		pthread_mutex_unlock(&log->lock);
		uint64_t take = end - lo < n ? end - lo : n;
		char *ip = exai__seg_path(log->dir, first, "idx");
		int fd = ip ? open(ip, O_RDONLY | O_CLOEXEC) : -1;
		free(ip);
		uint8_t *buf = malloc(take * EXAI__IDX_ENTRY);
		ssize_t got = fd >= 0 && buf ? pread(fd, buf, take * EXAI__IDX_ENTRY, (off_t)((lo - first) * EXAI__IDX_ENTRY)) : -1;
		if (fd >= 0)
			close(fd);
		if (got != (ssize_t)(take * EXAI__IDX_ENTRY)) {
			free(buf);
			return exai__err(-EIO, "cannot read the index of segment %016" PRIx64, first);
		}
		for (uint64_t i = 0; i < take; i++)
			memcpy(out[i], buf + i * EXAI__IDX_ENTRY + 8, 32);
		free(buf);
		out += take;
		lo += take;
		n -= take;
	}
	return 0;
}

static void log_src(exai_audit_log *log, struct exai__merkle_src *src)
{
	pthread_mutex_lock(&log->lock);
	*src = (struct exai__merkle_src){ .leaves = leaves_from_index, .data = log, .pruned = log->pruned,
					  .prefix = &log->prefix };
	pthread_mutex_unlock(&log->lock);
}

static int size_check(exai_audit_log *log, uint64_t size)
{
	uint64_t d = exai__log_durable(log);
	if (size > d)
		return exai__err(-ERANGE, "tree size %llu is beyond the log's %llu durable events",
				 (unsigned long long)size, (unsigned long long)d);
	return 0;
}

EXAI_API int exai_audit_root(exai_audit_log *log, uint64_t size, uint8_t ret[32])
{
	if (!log || !ret)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	int r = size_check(log, size);
	if (r < 0)
		return r;
	if (size == 0) {
		exai__sha256(ret, "", 0);
		return 0;
	}
	struct exai__merkle_src src;
	log_src(log, &src);
	return exai__merkle_subtree(&src, 0, size, ret);
}

EXAI_API int exai_audit_prove(exai_audit_log *log, uint64_t seq, uint64_t size, uint8_t (**ret)[32], size_t *retn)
{
	if (!log || !ret || !retn)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	int r = size_check(log, size);
	if (r < 0)
		return r;
	struct exai__merkle_src src;
	log_src(log, &src);
	return exai__merkle_inclusion(&src, seq, size, ret, retn);
}

EXAI_API int exai_audit_consistency(exai_audit_log *log, uint64_t size1, uint64_t size2, uint8_t (**ret)[32],
				    size_t *retn)
{
	if (!log || !ret || !retn)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	int r = size_check(log, size2);
	if (r < 0)
		return r;
	struct exai__merkle_src src;
	log_src(log, &src);
	return exai__merkle_consistency(&src, size1, size2, ret, retn);
}

/* ---- context attachment -------------------------------------------------------------------- */

static int emit_to_log(void *data, json_t *event)
{
	return append_obj(data, event, NULL);
}

EXAI_API int exai_audit_attach(exai_ctx *ctx, exai_audit_log *log)
{
	if (!ctx || !log)
		return exai__err(-EINVAL, "exai_audit_attach: no context or log");
	return exai__ctx_set_emitter(ctx, emit_to_log, log);
}

EXAI_API int exai_audit_detach(exai_ctx *ctx, exai_audit_log *log)
{
	if (!ctx || !log)
		return exai__err(-EINVAL, "exai_audit_detach: no context or log");
	pthread_mutex_lock(&ctx->lock);
	bool mine = ctx->emit == emit_to_log && ctx->emit_data == log;
	pthread_mutex_unlock(&ctx->lock);
	return mine ? exai__ctx_set_emitter(ctx, NULL, NULL) : 0;
}

/* ---- retention ------------------------------------------------------------------------------ */

static int event_time(exai_audit_log *log, uint64_t seq, int64_t *ret)
{
	char *leaf = NULL;
	size_t len;
	json_t *o = NULL;
	int r = exai__log_read_event(log, seq, &leaf, &len);
	if (r == 0)
		r = exai__json_parse(&o, leaf, len);
	if (r == 0)
		*ret = (int64_t)json_number_value(json_object_get(o, "time"));
	json_decref(o);
	free(leaf);
	return r;
}

EXAI_API int exai_audit_prune(exai_audit_log *log, int64_t before_ms, uint64_t *retfirst)
{
	if (!log)
		return exai__err(-EINVAL, "no audit log");
	if (log->spooling)
		return exai__log_spooling(log);
	if (log->readonly)
		return exai__err(-EROFS, "the audit log %s is open read-only", log->origin);
	int64_t cutoff = before_ms ? before_ms : exai__now_ms() - (int64_t)log->retention_days * 86400000;
	int r = exai_audit_flush(log);
	if (r < 0)
		return r;
	/* Never past what a sink has yet to deliver. */
	uint64_t limit = exai__sinks_min_cursor(log, exai__log_durable(log));
	pthread_mutex_lock(&log->lock);
	size_t nseg = log->segs.n;
	uint64_t *first = malloc((nseg ? nseg : 1) * sizeof(*first));
	if (first && nseg)
		memcpy(first, log->segs.first, nseg * sizeof(*first));
	pthread_mutex_unlock(&log->lock);
	if (!first)
		return exai__err(-ENOMEM, "out of memory");
	size_t k = 0; /* segments [0, k) go */
	while (k + 1 < nseg && first[k + 1] <= limit && first[k + 1] > first[k]) {
		int64_t t = INT64_MAX;
		if (event_time(log, first[k + 1] - 1, &t) < 0 || t >= cutoff)
			break;
		k++;
	}
	if (k == 0) {
		if (retfirst)
			*retfirst = nseg ? first[0] : 0;
		free(first);
		return 0;
	}
	uint64_t p = first[k];
	/* The tree state and chain at p, for the signed prune record. */
	struct exai__prune pr = { .first_seq = p };
	struct exai__merkle_src src;
	log_src(log, &src);
	pr.prefix.size = p;
	for (uint64_t a = 0; a < p && r == 0; pr.prefix.n++) {
		uint64_t w = (uint64_t)1 << (63 - __builtin_clzll(p - a));
		r = exai__merkle_subtree(&src, a, a + w, pr.prefix.h[pr.prefix.n]);
		a += w;
	}
	char *leaf = NULL, *text = NULL, *note = NULL;
	size_t len, nlen;
	if (r == 0)
		r = exai__log_read_event(log, p - 1, &leaf, &len);
	if (r == 0) {
		uint8_t h[32];
		exai__sha256(h, leaf, len);
		exai__hex(pr.prev, h, 32);
		json_t *hs = json_array();
		for (unsigned i = 0; hs && i < pr.prefix.n; i++) {
			char b[48];
			exai__b64(b, pr.prefix.h[i], 32);
			json_array_append_new(hs, json_string(b));
		}
		json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:o, s:I}", "v", 1, "type", "prune", "origin", log->origin,
				      "first_seq", (json_int_t)p, "prev", pr.prev, "hashes", hs, "time",
				      (json_int_t)exai__now_ms());
		struct exai__buf b = { 0 };
		r = o ? exai__jcs_append(&b, o) : exai__err(-ENOMEM, "out of memory");
		json_decref(o);
		if (r == 0 && exai__buf_putc(&b, '\n') < 0)
			r = exai__err(-ENOMEM, "out of memory");
		if (r == 0)
			r = exai__note_sign(&log->signer, b.data, b.len, &note, &nlen);
		exai__buf_free(&b);
	}
	/* The record first (file and stream), then the segments go. */
	if (r == 0) {
		char *path = exai__path_join(log->dir, "pruned");
		r = path ? exai__write_file_atomic(path, note, nlen, 0644) : exai__err(-ENOMEM, "out of memory");
		free(path);
	}
	if (r == 0) {
		pthread_mutex_lock(&log->lock);
		size_t before = log->pend.len;
		r = exai__rec_frame(&log->pend, EXAI__REC_PRUNE, p, note, nlen);
		if (r == 0) {
			log->head_off += log->pend.len - before;
			r = drain_locked(log);
		}
		if (r == 0) {
			log->pruned = p;
			log->prefix = pr.prefix;
			memmove(log->segs.first, log->segs.first + k, (log->segs.n - k) * sizeof(uint64_t));
			log->segs.n -= k;
		}
		pthread_mutex_unlock(&log->lock);
	}
	for (size_t i = 0; i < k && r == 0; i++) {
		char *sp = exai__seg_path(log->dir, first[i], "seg"), *ip = exai__seg_path(log->dir, first[i], "idx");
		if (sp && unlink(sp) < 0 && errno != ENOENT)
			r = exai__err_sys(exai__neg_errno(), "cannot remove %s", sp);
		if (ip)
			unlink(ip);
		free(sp);
		free(ip);
	}
	if (r == 0) {
		r = exai__fsync_parent(log->dir);
		exai__log_info(log->ctx, "audit", "%s: pruned %zu segments; first retained seq %llu", log->origin, k,
			       (unsigned long long)p);
	}
	if (r == 0 && retfirst)
		*retfirst = p;
	free(text);
	free(note);
	free(leaf);
	free(first);
	return r;
}
