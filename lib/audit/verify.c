/* SPDX-License-Identifier: Apache-2.0 */
/* verify.c: verification of a log from its files alone. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-internal.h"

/* The slow path: parse, then serialise again with the core's JCS. */
static int event_check_tree(const struct exai__rec *rec, uint64_t want_seq, const char *want_prev, const char *origin)
{
	json_t *o = NULL;
	if (exai__event_parse(&o, rec->payload, rec->len) < 0 || !json_is_object(o)) {
		json_decref(o);
		return exai__err(-EBADMSG, "event is not a JSON object");
	}
	json_t *s = json_object_get(o, "seq"), *p = json_object_get(o, "prev"), *g = json_object_get(o, "origin");
	int r = 0;
	if (!json_is_number(s) || json_number_value(s) != (double)want_seq)
		r = exai__err(-EBADMSG, "event member seq differs from its record");
	else if (!json_is_string(p) || strcmp(json_string_value(p), want_prev) != 0)
		r = exai__err(-EBADMSG, "hash chain broken: prev is not the hash of the previous event");
	else if (!json_is_string(g) || strcmp(json_string_value(g), origin) != 0)
		r = exai__err(-EBADMSG, "event origin differs from the log's origin");
	else if (!json_is_number(json_object_get(o, "v")) || json_number_value(json_object_get(o, "v")) != 1)
		r = exai__err(-EBADMSG, "event format version (member v) is not 1");
	else {
		char *c = NULL;
		size_t cl;
		if (exai__jcs_dump(o, &c, &cl) < 0 || cl != rec->len || memcmp(c, rec->payload, cl) != 0)
			r = exai__err(-EBADMSG, "event bytes are not in RFC 8785 canonical form");
		free(c);
	}
	json_decref(o);
	return r;
}

int exai__event_check(const struct exai__rec *rec, uint64_t want_seq, const char *want_prev, const char *origin)
{
	if (rec->seq != want_seq)
		return exai__err(-EBADMSG, "record says seq %llu, expected %llu", (unsigned long long)rec->seq,
				 (unsigned long long)want_seq);
	struct exai__event_top t = { 0 };
	int r = exai__canon_check(rec->payload, rec->len, &t);
	if (r == -E2BIG)
		return event_check_tree(rec, want_seq, want_prev, origin);
	if (r < 0)
		return r;
	if (!t.has_seq || t.seq != want_seq)
		return exai__err(-EBADMSG, "event member seq differs from its record");
	if (!t.prev || t.prev_len != strlen(want_prev) || memcmp(t.prev, want_prev, t.prev_len) != 0)
		return exai__err(-EBADMSG, "hash chain broken: prev is not the hash of the previous event");
	if (!t.origin || t.origin_len != strlen(origin) || memcmp(t.origin, origin, t.origin_len) != 0)
		return exai__err(-EBADMSG, "event origin differs from the log's origin");
	if (!t.has_v || t.v != 1)
		return exai__err(-EBADMSG, "event format version (member v) is not 1");
	return 0;
}

struct verifier {
	const char *origin, *dir;
	struct exai__vkey vk;
	struct exai__merkle tree;
	char prev[65];
	uint64_t next, sealed, checkpoints, events;
	bool have_prune;
	struct exai__prune prune;
};

static int check_prune_state(struct verifier *v, const struct exai__prune *p)
{
	if (v->tree.size != p->first_seq || v->tree.n != p->prefix.n ||
	    memcmp(v->tree.h, p->prefix.h, (size_t)v->tree.n * 32) != 0 || strcmp(v->prev, p->prev) != 0)
		return exai__err(-EBADMSG, "prune record for seq %llu does not match the tree and chain there",
				 (unsigned long long)p->first_seq);
	return 0;
}

static int verify_record(struct verifier *v, const struct exai__rec *rec)
{
	int r;
	size_t tl;
	if (rec->type == EXAI__REC_EVENT) {
		r = exai__event_check(rec, v->next, v->prev, v->origin);
		if (r < 0)
			return r;
		uint8_t leaf[32], h[32];
		exai_audit_merkle_leaf_hash(leaf, rec->payload, rec->len);
		exai__sha256(h, rec->payload, rec->len);
		exai__hex(v->prev, h, 32);
		exai__merkle_push(&v->tree, leaf);
		v->next++;
		v->events++;
		if (v->have_prune && v->next == v->prune.first_seq)
			return check_prune_state(v, &v->prune);
		return 0;
	}
	r = exai__note_verify(&v->vk, rec->payload, rec->len, &tl);
	if (r < 0) {
		EXAI__WHY(why);
		return exai__err(r, "%s: %s", rec->type == EXAI__REC_CHECKPOINT ? "checkpoint" : "prune record", why);
	}
	if (rec->type == EXAI__REC_CHECKPOINT) {
		char *origin = NULL;
		uint64_t size;
		uint8_t root[32], mine[32];
		r = exai_audit_checkpoint_parse(&origin, &size, root, rec->payload, tl);
		if (r < 0)
			return r;
		bool same = strcmp(origin, v->origin) == 0;
		free(origin);
		if (!same)
			return exai__err(-EBADMSG, "checkpoint names another origin");
		if (size != v->tree.size || rec->seq != size)
			return exai__err(-EBADMSG, "checkpoint of size %llu where the tree has %llu events",
					 (unsigned long long)size, (unsigned long long)v->tree.size);
		exai__merkle_root(&v->tree, mine);
		if (memcmp(mine, root, 32) != 0)
			return exai__err(-EBADMSG, "checkpoint of size %llu: root hash differs from the events' tree",
					 (unsigned long long)size);
		v->sealed = size;
		v->checkpoints++;
		return 0;
	}
	struct exai__prune p;
	r = exai__prune_parse(&p, rec->payload, tl);
	if (r == 0 && p.first_seq > v->tree.size)
		r = exai__err(-EBADMSG, "prune record names seq %llu beyond the log", (unsigned long long)p.first_seq);
	return r;
}

static int load_vkey(struct verifier *v, const char *vkey)
{
	char *text = NULL;
	if (!vkey) {
		char *path = exai__path_join(v->dir, "signing.pub");
		size_t len;
		int r = path ? exai__read_file(path, 4096, &text, &len) : -ENOMEM;
		free(path);
		if (r < 0)
			return exai__err(r, "no verifier key given and %s/signing.pub unreadable", v->dir);
		while (len && text[len - 1] == '\n')
			text[--len] = '\0';
		vkey = text;
	}
	int r = exai__vkey_parse(&v->vk, vkey);
	free(text);
	if (r == 0 && strcmp(v->vk.name, v->origin) != 0)
		r = exai__err(-EINVAL, "verifier key is for %s, not for the log %s", v->vk.name, v->origin);
	return r;
}

static int load_prune(struct verifier *v)
{
	char *path = exai__path_join(v->dir, "pruned"), *note = NULL;
	size_t len, tl;
	int r = path ? exai__read_file(path, 1 << 16, &note, &len) : -ENOMEM;
	free(path);
	if (r == -ENOENT)
		return 0;
	if (r == 0)
		r = exai__note_verify(&v->vk, note, len, &tl);
	if (r == 0)
		r = exai__prune_parse(&v->prune, note, tl);
	free(note);
	if (r < 0) {
		EXAI__WHY(why);
		return exai__err(-EBADMSG, "prune record file: %s", why);
	}
	v->have_prune = true;
	return 0;
}

/* A window over a segment file, read in chunks into one reused buffer (no mmap: a writer
 * cutting a torn tail at the same moment must not turn into SIGBUS here). */
struct window {
	int fd;
	uint8_t *buf;
	size_t cap, len; /* bytes in buf */
	uint64_t base;   /* file offset of buf[0] */
	bool eof;
};

/* Makes at least @need bytes from file offset @off available (fewer at the end of the file). */
static int window_at(struct window *w, uint64_t off, size_t need)
{
	if (off >= w->base && off + need <= w->base + w->len)
		return 0;
	if (need > w->cap) {
		uint8_t *nb = realloc(w->buf, need);
		if (!nb)
			return exai__err(-ENOMEM, "out of memory");
		w->buf = nb;
		w->cap = need;
	}
	w->base = off;
	w->len = 0;
	while (w->len < w->cap) {
		ssize_t k = pread(w->fd, w->buf + w->len, w->cap - w->len, (off_t)(off + w->len));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return exai__err_sys(exai__neg_errno(), "cannot read a segment");
		if (k == 0)
			break;
		w->len += (size_t)k;
	}
	return 0;
}

/* Verifies one segment file record by record. */
static int verify_segment(struct verifier *v, const char *path, uint64_t first, int64_t *bad)
{
	struct window w = { .fd = open(path, O_RDONLY | O_CLOEXEC), .cap = 256u << 10 };
	if (w.fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", path);
	w.buf = malloc(w.cap);
	int r = w.buf ? window_at(&w, 0, EXAI__SEG_HDR) : exai__err(-ENOMEM, "out of memory");
	uint64_t hfirst = 0;
	if (r == 0 && (exai__seg_header_check(w.buf, w.len, &hfirst) < 0 || hfirst != first || hfirst != v->next)) {
		*bad = (int64_t)v->next;
		r = exai__err(-EBADMSG, "segment %016" PRIx64 " should start at seq %llu: %s", first,
			      (unsigned long long)v->next, hfirst != first ? "bad header" : "wrong first seq");
	}
	for (uint64_t off = EXAI__SEG_HDR; r == 0;) {
		struct exai__rec rec;
		size_t rl = 0;
		r = window_at(&w, off, EXAI__REC_HDR);
		if (r < 0 || off >= w.base + w.len)
			break; /* the end of the file */
		int d = exai__rec_decode(&rec, w.buf + (off - w.base), w.base + w.len - off, &rl);
		if (d == -EAGAIN && w.len == w.cap) { /* the record goes past the window: move it */
			size_t need = EXAI__REC_HDR + EXAI__REC_TRAILER;
			const uint8_t *h = w.buf + (off - w.base);
			if (w.base + w.len - off >= EXAI__REC_HDR)
				need += (size_t)h[16] | (size_t)h[17] << 8 | (size_t)h[18] << 16 | (size_t)h[19] << 24;
			r = window_at(&w, off, need > EXAI__REC_MAX + 64 ? EXAI__REC_MAX + 64 : need);
			if (r == 0)
				d = exai__rec_decode(&rec, w.buf + (off - w.base), w.base + w.len - off, &rl);
		}
		if (r < 0)
			break;
		if (d == -EAGAIN)
			d = exai__err(-EBADMSG, "truncated record");
		if (d == 0)
			d = verify_record(v, &rec);
		if (d < 0) {
			EXAI__WHY(why);
			*bad = (int64_t)v->next;
			r = exai__err(-EBADMSG, "seq %llu: %s (segment %016" PRIx64 ", offset %llu)",
				      (unsigned long long)v->next, why, first, (unsigned long long)off);
		}
		off += rl;
	}
	free(w.buf);
	close(w.fd);
	return r;
}

EXAI_API int exai_audit_verify(exai_ctx *ctx, const char *origin, const char *vkey,
			       struct exai_audit_verify_result *res)
{
	if (!ctx || !origin)
		return exai__err(-EINVAL, "exai_audit_verify: no context or origin");
	if (!exai__origin_valid(origin))
		return exai__err(-EINVAL, "\"%.140s\" is not a valid log origin", origin);
	struct verifier v = { .origin = origin };
	struct exai__seglist segs = { 0 };
	char *dir = exai__log_dir(ctx, origin);
	int64_t bad = -1;
	int r = dir ? 0 : exai__err(-ENOMEM, "out of memory");
	v.dir = dir;
	memset(v.prev, '0', 64);
	if (r == 0)
		r = exai__sodium_init();
	if (r == 0)
		r = exai__seglist_load(&segs, dir);
	if (r == 0 && segs.n == 0)
		r = exai__err(-ENOENT, "the audit log %s has no segments", dir);
	if (r == 0)
		r = load_vkey(&v, vkey);
	if (r == 0)
		r = load_prune(&v);
	uint64_t first_seq = 0;
	if (r == 0 && segs.first[0] > 0) {
		if (!v.have_prune || v.prune.first_seq != segs.first[0]) {
			bad = 0;
			r = exai__err(-EBADMSG, "seq 0: events before seq %llu are missing and no signed prune record "
				      "accounts for them", (unsigned long long)segs.first[0]);
		} else {
			v.tree = v.prune.prefix;
			memcpy(v.prev, v.prune.prev, 65);
			v.next = first_seq = v.prune.first_seq;
		}
	}
	for (size_t i = 0; r == 0 && i < segs.n; i++) {
		char *path = exai__seg_path(dir, segs.first[i], "seg");
		r = path ? verify_segment(&v, path, segs.first[i], &bad) : exai__err(-ENOMEM, "out of memory");
		free(path);
	}
	if (r == 0 && v.have_prune && v.next < v.prune.first_seq) {
		bad = (int64_t)v.next;
		r = exai__err(-EBADMSG, "seq %llu: the log ends before the first seq %llu of its prune record",
			      (unsigned long long)v.next, (unsigned long long)v.prune.first_seq);
	}
	if (res) {
		size_t sz = res->sz ? res->sz : sizeof(*res);
		struct exai_audit_verify_result out = { .sz = sz, .first_seq = first_seq, .events = v.events,
							.checkpoints = v.checkpoints, .sealed_size = v.sealed,
							.unsealed = v.tree.size - v.sealed, .bad_seq = bad };
		if (r < 0)
			snprintf(out.reason, sizeof(out.reason), "%s", exai_errmsg());
		memcpy(res, &out, sz < sizeof(out) ? sz : sizeof(out));
	}
	exai__seglist_free(&segs);
	free(dir);
	return r;
}
