/* SPDX-License-Identifier: Apache-2.0 */
/* scrub.c: scrubbing a text or a stream: findings to redacted output, results, streams, and
 * the check of a pack's own examples. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scrub-internal.h"

static bool cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Widens a span so that it never cuts a multi-byte sequence. */
static void utf8_widen(const char *t, size_t len, size_t *start, size_t *end)
{
	for (int k = 0; k < 3 && *start > 0 && cont((unsigned char)t[*start]); k++)
		(*start)--;
	for (int k = 0; k < 3 && *end < len && cont((unsigned char)t[*end]); k++)
		(*end)++;
}

/* Room for @more findings beyond those @res holds. */
static int reserve_findings(exai_scrub_result *res, size_t more)
{
	if (res->n + more <= res->cap)
		return 0;
	size_t cap = res->n + more > 2 * res->cap ? res->n + more : 2 * res->cap;
	struct exai_scrub_finding *f = realloc(res->f, cap * sizeof(*f));
	if (!f)
		return -ENOMEM;
	res->f = f;
	res->cap = cap;
	return 0;
}

static int push_finding(exai_scrub_result *res, const exai_scrubber *s, const struct exai__cand *c, size_t base)
{
	int r = reserve_findings(res, 1);
	if (r < 0)
		return r;
	exai__finding_fill(s, &res->f[res->n], c);
	res->f[res->n].start += base;
	res->f[res->n].end += base;
	res->n++;
	return 0;
}

/* Redacts [from, to) of @t (offsets relative to @t, which starts at stream offset @base) with
 * the resolved candidates @c (sorted), those with from <= start, end <= to; counts them in
 * @acc unless it is NULL (no audit event). */
static int emit_region(exai_scrubber *s, exai_scrub_result *res, struct exai__audit_acc *acc,
		       struct exai__buf *out, int mode, const char *t, size_t tlen, size_t from, size_t to,
		       struct exai__cand *c, size_t n, size_t base)
{
	size_t pos = from;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t a = c[i].start, b = c[i].end;
		utf8_widen(t, tlen, &a, &b);
		if (a < pos || b > to)
			continue;
		struct exai__cand cc = c[i];
		cc.start = a;
		cc.end = b;
		r = exai__buf_append(out, t + pos, a - pos);
		if (r == 0)
			r = exai__redact_one(s, &res->vault, out, mode, c[i].pat, t + a, b - a);
		if (r == 0)
			r = push_finding(res, s, &cc, base);
		if (r == 0 && acc)
			r = exai__audit_add(s, acc, res->f[res->n - 1].cls, t + a, b - a);
		pos = b;
	}
	if (r == 0)
		r = exai__buf_append(out, t + pos, to - pos);
	if (r == 0 && !exai__utf8_valid(t + from, to - from))
		res->invalid_utf8 = true;
	return r;
}

/* A big output's buffer comes from fresh pages (malloc maps them): have the kernel fill in
 * its page tables in one call, not one page fault per 4 KiB as the copy reaches each page.
 * Measured on the bench corpus (1 MiB texts), stage 1, MB/s per CPU-second: ~115 -> ~155 when
 * every result is kept to the end, and 429-462 -> 448-471 when each is freed before the next
 * call (malloc then reuses mapped memory). A kernel older than 5.14 refuses the advice, and
 * memory already mapped is left as it is: nothing changes but the cost. */
#define PREFAULT_MIN ((size_t)256 << 10)

static void prefault(char *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
	long pg = sysconf(_SC_PAGESIZE);
	if (n < PREFAULT_MIN || pg <= 0)
		return;
	uintptr_t m = (uintptr_t)pg - 1, a = ((uintptr_t)p + m) & ~m, e = ((uintptr_t)p + n) & ~m;
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#else
	(void)p, (void)n;
#endif
}

static int resolve_mode(exai_scrubber *s, const struct exai_scrub_text_opts *opts, int *mode, bool *no_audit)
{
	int r = EXAI__OPTS_CHECK(opts, exai_scrub_text_opts);
	if (r < 0)
		return r;
	*mode = EXAI__OPT(opts, mode, s->mode);
	if (*mode < EXAI_SCRUB_MASK || *mode > EXAI_SCRUB_PSEUDO)
		return exai__err(-EINVAL, "exai_scrub_text_opts.mode: %d is not a redaction mode", *mode);
	if (*mode == EXAI_SCRUB_HASH && !s->have_hash_key)
		return exai__err(-EINVAL, "scrub: hash mode needs the tenant's key (exai_scrubber_opts.hash_key)");
	*no_audit = EXAI__OPT(opts, no_audit, 0) != 0;
	return 0;
}

void exai_scrub_result_free(exai_scrub_result *r)
{
	if (!r)
		return;
	exai__vault_free(&r->vault);
	free(r->text);
	free(r->f);
	free(r);
}

int exai_scrub_text(exai_scrub_result **ret, exai_scrubber *s, const char *text, size_t len,
		    const struct exai_scrub_text_opts *opts)
{
	if (!ret || !s || (!text && len))
		return exai__err(-EINVAL, "exai_scrub_text: ret, s or text is NULL");
	int mode;
	bool no_audit = false;
	int r = resolve_mode(s, opts, &mode, &no_audit);
	if (r < 0)
		return r;
	if (len > s->max_input)
		return exai__err(-E2BIG, "scrub: the text is %zu bytes, more than the %zu allowed", len, s->max_input);
	if (!text)
		text = "";
	struct exai__cands c = { 0 };
	struct exai__buf out = { 0 };
	struct exai__audit_acc acc = { 0 };
	exai_scrub_result *res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	r = exai__scan(s, &c, text, len);
	if (r == 0) {
		exai__resolve(s, &c);
		r = exai__buf_reserve(&out, len + 1);
		if (r == 0)
			prefault(out.data, len);
	}
	if (r == 0) /* every finding is a resolved candidate: one allocation */
		r = reserve_findings(res, c.n);
	if (r == 0)
		r = emit_region(s, res, no_audit ? NULL : &acc, &out, mode, text, len, 0, len, c.v, c.n, 0);
	if (r == 0 && !no_audit)
		r = exai__audit_emit(s, &acc, len);
	free(c.v);
	exai__audit_acc_free(&acc);
	if (r < 0) {
		exai__buf_free(&out);
		exai_scrub_result_free(res);
		return r;
	}
	res->text = exai__buf_steal(&out, &res->len);
	*ret = res;
	return 0;
}

const char *exai_scrub_result_text(const exai_scrub_result *r, size_t *len)
{
	if (len)
		*len = r ? r->len : 0;
	return r && r->text ? r->text : "";
}

size_t exai_scrub_result_count(const exai_scrub_result *r)
{
	return r ? r->n : 0;
}

const struct exai_scrub_finding *exai_scrub_result_finding(const exai_scrub_result *r, size_t i)
{
	return r && i < r->n ? &r->f[i] : NULL;
}

int exai_scrub_result_invalid_utf8(const exai_scrub_result *r)
{
	return r ? r->invalid_utf8 : 0;
}

int exai_scrub_result_vault(uint8_t **ret, size_t *retlen, const exai_scrub_result *r)
{
	if (!ret || !retlen || !r)
		return exai__err(-EINVAL, "exai_scrub_result_vault: NULL argument");
	if (!r->vault.n)
		return exai__err(-ENOENT, "scrub: this result has no vault (not pseudo mode, or nothing found)");
	return exai__vault_serialize(&r->vault, ret, retlen);
}

/* ---- streams ---------------------------------------------------------------------------- */

struct exai_scrub_stream {
	exai_scrubber *s;
	int mode;
	bool no_audit, done;
	struct exai__buf buf; /* the bytes from stream offset base on */
	size_t base;          /* stream offset of buf.data[0] */
	size_t emitted;       /* stream offset up to which output was given */
	size_t total;
	exai_scrub_result res;
	struct exai__audit_acc acc;
};

int exai_scrub_stream_new(exai_scrub_stream **ret, exai_scrubber *s, const struct exai_scrub_text_opts *opts)
{
	if (!ret || !s)
		return exai__err(-EINVAL, "exai_scrub_stream_new: ret or s is NULL");
	int mode;
	bool no_audit = false;
	int r = resolve_mode(s, opts, &mode, &no_audit);
	if (r < 0)
		return r;
	exai_scrub_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->s = s;
	st->mode = mode;
	st->no_audit = no_audit;
	*ret = st;
	return 0;
}

/* Scans the buffer and gives the output of [emitted, cut), cut chosen so that no candidate
 * straddles it (or the end of the buffer when @final). */
static int stream_step(exai_scrub_stream *st, struct exai__buf *out, bool final)
{
	exai_scrubber *s = st->s;
	const char *t = st->buf.data ? st->buf.data : "";
	size_t len = st->buf.len;
	struct exai__cands c = { 0 };
	int r = exai__scan(s, &c, t, len);
	if (r < 0)
		return r;
	size_t from = st->emitted - st->base;
	size_t cut = len;
	if (!final) {
		cut = len - s->context;
		/* never inside a candidate (resolved or not) nor a UTF-8 sequence */
		bool moved = true;
		while (moved) {
			moved = false;
			for (size_t i = 0; i < c.n; i++) {
				size_t a = c.v[i].start, b = c.v[i].end;
				utf8_widen(t, len, &a, &b);
				if (a < cut && cut < b) {
					cut = a;
					moved = true;
				}
			}
		}
		for (int k = 0; k < 3 && cut > 0 && cont((unsigned char)t[cut]); k++)
			cut--;
		if (cut < from)
			cut = from;
	}
	exai__resolve(s, &c);
	/* skip the candidates already given out */
	size_t first = 0;
	while (first < c.n && c.v[first].start < from)
		first++;
	size_t nc = first;
	while (nc < c.n && c.v[nc].end <= cut)
		nc++;
	r = emit_region(s, &st->res, st->no_audit ? NULL : &st->acc, out, st->mode, t, len, from, cut, c.v ? c.v + first : NULL, nc - first, st->base);
	free(c.v);
	if (r < 0)
		return r;
	st->emitted = st->base + cut;
	/* keep a window of context before the cut for the next scan */
	size_t keep_from = cut > s->context ? cut - s->context : 0;
	if (keep_from) {
		memmove(st->buf.data, st->buf.data + keep_from, len - keep_from);
		st->buf.len -= keep_from;
		st->buf.data[st->buf.len] = 0;
		st->base += keep_from;
	}
	return 0;
}

static int stream_out(struct exai__buf *out, char **ret, size_t *retlen, int r)
{
	if (r < 0) {
		exai__buf_free(out);
		return r;
	}
	*ret = exai__buf_steal(out, retlen);
	return *ret ? 0 : -ENOMEM;
}

int exai_scrub_stream_feed(exai_scrub_stream *st, char **ret, size_t *retlen, const char *chunk, size_t len)
{
	if (!st || !ret || (!chunk && len))
		return exai__err(-EINVAL, "exai_scrub_stream_feed: NULL argument");
	if (st->done)
		return exai__err(-EINVAL, "exai_scrub_stream_feed: the stream is finished");
	if (len > st->s->max_input - st->total)
		return exai__err(-E2BIG, "scrub: the stream exceeds the %zu bytes allowed", st->s->max_input);
	struct exai__buf out = { 0 };
	int r = exai__buf_append(&st->buf, chunk ? chunk : "", len);
	st->total += len;
	/* Scan once enough undecided bytes have piled up beyond the hold-back. */
	if (r == 0 && st->base + st->buf.len - st->emitted >= st->s->context + EXAI__SCRUB_STEP)
		r = stream_step(st, &out, false);
	return stream_out(&out, ret, retlen, r);
}

int exai_scrub_stream_finish(exai_scrub_stream *st, char **ret, size_t *retlen)
{
	if (!st || !ret)
		return exai__err(-EINVAL, "exai_scrub_stream_finish: NULL argument");
	if (st->done)
		return exai__err(-EINVAL, "exai_scrub_stream_finish: the stream is finished");
	struct exai__buf out = { 0 };
	int r = stream_step(st, &out, true);
	st->done = true;
	if (r == 0 && !st->no_audit)
		r = exai__audit_emit(st->s, &st->acc, st->total);
	return stream_out(&out, ret, retlen, r);
}

const exai_scrub_result *exai_scrub_stream_result(const exai_scrub_stream *st)
{
	return st ? &st->res : NULL;
}

void exai_scrub_stream_free(exai_scrub_stream *st)
{
	if (!st)
		return;
	if (st->buf.data)
		exai_memzero(st->buf.data, st->buf.len);
	exai__buf_free(&st->buf);
	exai__vault_free(&st->res.vault);
	free(st->res.f);
	exai__audit_acc_free(&st->acc);
	free(st);
}

/* ---- a pack's own examples -------------------------------------------------------------- */

int exai__check_examples(exai_scrubber *s, size_t *failures, struct exai__buf *report)
{
	*failures = 0;
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		json_t *ex = json_array_get(s->set.examples, i), *e;
		size_t k;
		json_array_foreach(json_object_get(ex, "positive"), k, e) {
			const char *text = json_string_value(json_object_get(e, "text"));
			const char *secret = json_string_value(json_object_get(e, "secret"));
			size_t sl = strlen(secret);
			struct exai__cands c = { 0 };
			int r = exai__scan(s, &c, text, strlen(text));
			if (r < 0) {
				free(c.v);
				return r;
			}
			bool found = false;
			for (size_t m = 0; m < c.n && !found; m++)
				found = c.v[m].pat == (int)i && c.v[m].end - c.v[m].start == sl &&
					memcmp(text + c.v[m].start, secret, sl) == 0;
			if (!found) {
				(*failures)++;
				if (report && exai__buf_printf(report, "%s: positive example %zu: secret not found with exactly its span\n",
							       p->id, k) < 0) {
					free(c.v);
					return -ENOMEM;
				}
			}
			free(c.v);
		}
		json_array_foreach(json_object_get(ex, "negative"), k, e) {
			const char *text = json_string_value(e);
			struct exai__cands c = { 0 };
			int r = exai__scan(s, &c, text, strlen(text));
			if (r < 0) {
				free(c.v);
				return r;
			}
			for (size_t m = 0; m < c.n; m++)
				if (c.v[m].pat == (int)i) {
					(*failures)++;
					if (report && exai__buf_printf(report, "%s: negative example %zu: found at %zu-%zu\n",
								       p->id, k, c.v[m].start, c.v[m].end) < 0) {
						free(c.v);
						return -ENOMEM;
					}
					break;
				}
			free(c.v);
		}
	}
	return 0;
}

int exai_scrub_pack_test(size_t *failures, char **report, exai_ctx *ctx, const char *pack)
{
	if (!failures || !pack)
		return exai__err(-EINVAL, "exai_scrub_pack_test: failures or pack is NULL");
	EXAI_OPTS(exai_scrubber_opts, o, .packs = &pack, .n_packs = 1,
		  .flags = EXAI_SCRUBBER_NO_BUILTIN | EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE |
			   EXAI_SCRUBBER_NO_CACHE);
	exai_scrubber *s;
	int r = exai_scrubber_new(&s, ctx, &o);
	if (r < 0)
		return r;
	struct exai__buf rep = { 0 };
	size_t f = 0;
	r = exai__check_examples(s, &f, report ? &rep : NULL);
	exai_scrubber_free(s);
	if (r < 0) {
		exai__buf_free(&rep);
		return r;
	}
	*failures = f;
	if (report)
		*report = exai__buf_steal(&rep, NULL);
	return 0;
}
