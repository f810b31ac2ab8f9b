/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-tamper: every single-byte change at 1000+ sampled positions of the segment files,
 * and deleted, reordered, duplicated and inserted records, are detected by exai_audit_verify(),
 * which names the seq of the first bad record. Also: the writer refuses to append after
 * damage that is not a torn tail, and cuts a torn tail. */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit-internal.h"
#include "test.h"

static exai_ctx *ctx;
static char *vkey;

struct file {
	char *path;
	uint8_t *data;
	size_t len;
	uint64_t *want; /* per byte: the seq verify must name */
};
static struct file files[64];
static size_t nfiles;

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	return test_xorshift(&rng);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(p, 1, n, f) == n);
	fclose(f);
}

static void build(const char *origin, int events)
{
	exai_audit_log *log;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .checkpoint_events = 20, .segment_size = 6000,
		  .durability = EXAI_AUDIT_BATCH);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	for (int i = 0; i < events; i++) {
		char j[128];
		snprintf(j, sizeof(j), "{\"class_uid\":3001,\"activity_id\":%d,\"actor\":{\"user\":{\"name\":\"u%d\"}}}", 1 + i % 4, i);
		CHECK_OK(exai_audit_append_json(log, j, strlen(j), NULL));
	}
	CHECK_OK(exai_audit_vkey(log, &vkey));
	CHECK_OK(exai_audit_close(log));
}

static void unload(void)
{
	for (size_t i = 0; i < nfiles; i++) {
		free(files[i].path);
		free(files[i].data);
		free(files[i].want);
	}
	nfiles = 0;
}

/* Loads the segments and works out, for every byte, which seq a change there must be named. */
static void load(const char *origin)
{
	char *dir = exai__log_dir(ctx, origin);
	struct exai__seglist segs;
	unload();
	CHECK_OK(exai__seglist_load(&segs, dir));
	nfiles = segs.n;
	uint64_t next = 0;
	for (size_t i = 0; i < segs.n; i++) {
		struct file *f = &files[i];
		f->path = exai__seg_path(dir, segs.first[i], "seg");
		f->data = (uint8_t *)test_read_file(f->path, &f->len);
		f->want = calloc(f->len, sizeof(uint64_t));
		for (size_t k = 0; k < EXAI__SEG_HDR; k++)
			f->want[k] = segs.first[i];
		for (size_t off = EXAI__SEG_HDR; off < f->len;) {
			struct exai__rec r;
			size_t rl;
			CHECK_OK(exai__rec_decode(&r, f->data + off, f->len - off, &rl));
			for (size_t k = off; k < off + rl; k++)
				f->want[k] = next;
			if (r.type == EXAI__REC_EVENT)
				next++;
			off += rl;
		}
	}
	exai__seglist_free(&segs);
	free(dir);
}

/* Changes one byte of a file in place. */
static void poke(const char *path, size_t pos, uint8_t v)
{
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, &v, 1, (off_t)pos) == 1);
	close(fd);
}

static int64_t verify(const char *origin, int *rc)
{
	struct exai_audit_verify_result res = { .sz = sizeof(res) };
	*rc = exai_audit_verify(ctx, origin, vkey, &res);
	if (*rc == 0)
		return -1;
	char want[40];
	snprintf(want, sizeof(want), "seq %lld:", (long long)res.bad_seq);
	CHECK(strstr(res.reason, want) != NULL);
	return res.bad_seq;
}

static void single_bytes(const char *origin)
{
	size_t total = 0, detected = 0, named = 0;
	for (int n = 0; n < 1050; n++) {
		struct file *f = &files[next_rand() % nfiles];
		size_t pos = next_rand() % f->len;
		uint8_t old = f->data[pos], now = (uint8_t)(old ^ (1 + next_rand() % 255));
		poke(f->path, pos, now);
		int rc;
		int64_t bad = verify(origin, &rc);
		total++;
		detected += rc == -EBADMSG;
		named += bad == (int64_t)f->want[pos];
		if (rc != -EBADMSG || bad != (int64_t)f->want[pos])
			fprintf(stderr, "%s byte %zu %02x->%02x: rc %d, named seq %lld, want %llu\n", f->path, pos, old, now,
				rc, (long long)bad, (unsigned long long)f->want[pos]);
		poke(f->path, pos, old);
	}
	for (size_t i = 0; i < nfiles; i++)
		write_file(files[i].path, files[i].data, files[i].len);
	int rc;
	CHECK(verify(origin, &rc) == -1 && rc == 0);
	printf("single-byte changes: %zu, detected %zu, seq named %zu\n", total, detected, named);
	CHECK(total >= 1000 && detected == total && named == total);
}

/* Frame boundaries of one file. */
static size_t frames(const struct file *f, size_t *start, size_t max)
{
	size_t n = 0;
	for (size_t off = EXAI__SEG_HDR; off < f->len && n < max;) {
		struct exai__rec r;
		size_t rl;
		if (exai__rec_decode(&r, f->data + off, f->len - off, &rl) < 0)
			break;
		start[n++] = off;
		off += rl;
	}
	start[n] = f->len;
	return n;
}

/* Rewrites file @fi from pieces [a0,a1) [b0,b1) [c0,c1) [d0,d1) and verifies. */
static int64_t rewrite(const char *origin, size_t fi, const size_t (*pieces)[2], size_t np, const uint8_t *extra,
		       size_t elen, size_t extra_at, int *rc)
{
	struct file *f = &files[fi];
	uint8_t *buf = malloc(f->len * 2 + elen);
	size_t n = 0;
	for (size_t i = 0; i < np; i++) {
		if (i == extra_at && extra) {
			memcpy(buf + n, extra, elen);
			n += elen;
		}
		memcpy(buf + n, f->data + pieces[i][0], pieces[i][1] - pieces[i][0]);
		n += pieces[i][1] - pieces[i][0];
	}
	write_file(f->path, buf, n);
	int64_t bad = verify(origin, rc);
	write_file(f->path, f->data, f->len);
	free(buf);
	return bad;
}

struct tally {
	const char *origin;
	int cases, ok;
};

/* Calls @fn for every event record of every segment file: file @fi, frame starts @st (@n of
 * them), the record's frame index @k and its decoded form. */
static void each_event(struct tally *t, void (*fn)(struct tally *t, size_t fi, const size_t *st, size_t n, size_t k,
						 struct exai__rec *r))
{
	for (size_t fi = 0; fi < nfiles; fi++) {
		struct file *f = &files[fi];
		size_t st[512];
		size_t n = frames(f, st, 511);
		for (size_t k = 0; k < n; k++) {
			struct exai__rec r;
			size_t rl;
			exai__rec_decode(&r, f->data + st[k], f->len - st[k], &rl);
			if (r.type == EXAI__REC_EVENT)
				fn(t, fi, st, n, k, &r);
		}
	}
}

/* Deleted, reordered, duplicated and inserted records at every third event. */
static void record_changes(struct tally *t, size_t fi, const size_t *st, size_t n, size_t k, struct exai__rec *r)
{
	const char *origin = t->origin;
	struct file *f = &files[fi];
	if (k + 1 >= n || r->seq % 3 != 1)
		return;
	uint64_t seq = r->seq;
	int rc;
	int64_t bad;
	/* deleted */
	size_t del[2][2] = { { 0, st[k] }, { st[k + 1], f->len } };
	bad = rewrite(origin, fi, del, 2, NULL, 0, 0, &rc);
	t->cases++, t->ok += rc == -EBADMSG && bad == (int64_t)seq;
	/* reordered with the next record */
	size_t swap[4][2] = { { 0, st[k] }, { st[k + 1], st[k + 2] }, { st[k], st[k + 1] }, { st[k + 2], f->len } };
	bad = rewrite(origin, fi, swap, 4, NULL, 0, 0, &rc);
	t->cases++, t->ok += rc == -EBADMSG && bad == (int64_t)seq;
	/* duplicated: the copy is where seq+1 belongs */
	size_t dup[3][2] = { { 0, st[k + 1] }, { st[k], st[k + 1] }, { st[k + 1], f->len } };
	bad = rewrite(origin, fi, dup, 3, NULL, 0, 0, &rc);
	t->cases++, t->ok += rc == -EBADMSG && bad == (int64_t)seq + 1;
	/* inserted: a well-framed forged event claiming seq, before the real one */
	struct exai__buf forged = { 0 };
	char body[128];
	snprintf(body, sizeof(body), "{\"class_uid\":1,\"forged\":true,\"seq\":%llu}", (unsigned long long)seq);
	CHECK_OK(exai__rec_frame(&forged, EXAI__REC_EVENT, seq, body, strlen(body)));
	size_t ins[2][2] = { { 0, st[k] }, { st[k], f->len } };
	bad = rewrite(origin, fi, ins, 2, (uint8_t *)forged.data, forged.len, 1, &rc);
	t->cases++, t->ok += rc == -EBADMSG && bad == (int64_t)seq;
	exai__buf_free(&forged);
}

static void records(const char *origin)
{
	struct tally t = { origin, 0, 0 };
	each_event(&t, record_changes);
	int cases = t.cases, ok = t.ok;
	/* a whole segment deleted */
	if (nfiles > 2) {
		int rc;
		uint8_t *keep = files[1].data;
		CHECK(unlink(files[1].path) == 0);
		int64_t bad = verify(origin, &rc);
		cases++, ok += rc == -EBADMSG && bad == (int64_t)files[1].want[0];
		write_file(files[1].path, keep, files[1].len);
	}
	printf("record changes: %d, detected and named %d\n", cases, ok);
	CHECK(cases > 100 && ok == cases); /* 4 changes at every third event, and a segment */
	int rc;
	CHECK(verify(origin, &rc) == -1 && rc == 0);
}

/* Content changed with a recomputed CRC: only the chain or the tree can tell. */
static void crc_change(struct tally *t, size_t fi, const size_t *st, size_t n, size_t k, struct exai__rec *rp)
{
	(void)n;
	const char *origin = t->origin;
	struct file *f = &files[fi];
	struct exai__rec r = *rp;
	if (r.seq % 2)
		return;
	/* change "u<digits>" to another actor name of the same length */
	char *p = memmem(r.payload, r.len, "\"name\":\"u", 9);
	if (!p)
		return;
	uint8_t *b = (uint8_t *)p + 9;
	uint8_t old = *b;
	*b = old == '9' ? '0' : (uint8_t)(old + 1);
	size_t body = EXAI__REC_HDR + r.len;
	uint32_t crc = exai__crc32c(0, f->data + st[k], body);
	uint8_t saved[4];
	memcpy(saved, f->data + st[k] + body, 4);
	for (int i = 0; i < 4; i++)
		f->data[st[k] + body + i] = (uint8_t)(crc >> (8 * i));
	write_file(f->path, f->data, f->len);
	int rc;
	int64_t bad = verify(origin, &rc);
	t->cases++;
	t->ok += rc == -EBADMSG && (bad == (int64_t)r.seq || bad == (int64_t)r.seq + 1);
	*b = old;
	memcpy(f->data + st[k] + body, saved, 4);
	write_file(f->path, f->data, f->len);
}

static void crc_fixed(const char *origin)
{
	struct tally t = { origin, 0, 0 };
	each_event(&t, crc_change);
	int cases = t.cases, ok = t.ok;
	printf("content changes with a valid CRC: %d, detected at the seq or the next %d\n", cases, ok);
	CHECK(cases >= 50 && ok == cases);
}

/* The writer: damage inside the tail it rechecks is refused; a torn tail is cut. */
static void writer(void)
{
	const char *origin = "writer";
	build(origin, 30);
	/* Events after the last checkpoint, written by a process that dies without closing. */
	pid_t pid = fork();
	if (pid == 0) {
		exai_audit_log *log;
		EXAI_OPTS(exai_audit_opts, o, .origin = origin, .checkpoint_ms = 100000);
		if (exai_audit_open(&log, ctx, &o) < 0)
			_exit(1);
		for (int i = 0; i < 10; i++)
			if (exai_audit_append_json(log, "{\"class_uid\":1,\"activity_id\":1}", 31, NULL) < 0)
				_exit(1);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	load(origin);
	struct file *f = &files[nfiles - 1];
	size_t st[512];
	size_t n = frames(f, st, 511);
	CHECK(n >= 10);
	/* A byte in the 5th-last event record: valid records follow, so it is not a torn tail. */
	size_t pos = st[n - 5] + EXAI__REC_HDR + 3;
	f->data[pos] ^= 0x20;
	write_file(f->path, f->data, f->len);
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin);
	CHECK_RC(exai_audit_open(&log, ctx, &o), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "refuses to append") != NULL);
	f->data[pos] ^= 0x20;
	/* A torn last record: cut on open, everything before it stays. */
	write_file(f->path, f->data, st[n - 1] + 7);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	uint64_t size;
	CHECK_OK(exai_audit_size(log, &size));
	CHECK(size == 39);
	CHECK_OK(exai_audit_close(log));
	CHECK_OK(exai_audit_verify(ctx, origin, NULL, NULL));
	/* Without the saved tree state the whole log is rechecked: damage in the sealed part is
	 * refused too. */
	load(origin);
	f = &files[0];
	f->data[EXAI__SEG_HDR + 30] ^= 1;
	write_file(f->path, f->data, f->len);
	/* Damage before the last checkpoint: open rechecks only the tail, unless asked to verify. */
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	CHECK_OK(exai_audit_close(log));
	EXAI_OPTS(exai_audit_opts, vo, .origin = origin, .flags = EXAI_AUDIT_VERIFY_ON_OPEN);
	CHECK_RC(exai_audit_open(&log, ctx, &vo), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "seq 0:") != NULL && strstr(exai_errmsg(), "refuses to append") != NULL);
	char *ldir = exai__log_dir(ctx, origin), *state = exai__path_join(ldir, "tree.state");
	CHECK(unlink(state) == 0);
	CHECK_RC(exai_audit_open(&log, ctx, &o), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "seq 0:") != NULL);
	free(state);
	free(ldir);
	unload();
}

int main(void)
{
	char *dir = test_tmpdir();
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	build("tamper", 120);
	load("tamper");
	CHECK(nfiles >= 4);
	single_bytes("tamper");
	records("tamper");
	crc_fixed("tamper");
	free(vkey);
	writer();
	free(vkey);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
