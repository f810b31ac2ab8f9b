/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trigger.c: the run finders that trigger the literal-free patterns (payment cards, IBAN, SSN,
 * IP addresses, cryptocurrency addresses, quoted high-entropy strings, ...): runs of one byte
 * class (digits, hex, A-Z0-9, base58, base64) that separators may join, found 64 bytes at a time.
 * Each block becomes two bit masks per class (class bytes B, separator bytes S), and the runs are
 * read from the masks with bit operations: a block without a long enough run costs a few
 * instructions. The masks are computed with AVX2 when the CPU has it, else SSE2 (the x86-64
 * baseline), else a portable table; all three give the same masks (tests/unit/test-scrub-trigger.c).
 */
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#include "scrub-internal.h"

/* The classes as byte ranges (all below 0x80, which lets SSE2's signed compares test them). */
static const struct {
	const char *name;
	unsigned char r[6][2];
	unsigned n;
} classes[EXAI__RUN_COUNT] = {
	[EXAI__RUN_DIGIT] = { "digit", { { '0', '9' } }, 1 },
	[EXAI__RUN_HEX] = { "hex", { { '0', '9' }, { 'a', 'f' }, { 'A', 'F' } }, 3 },
	[EXAI__RUN_UPPER_ALNUM] = { "upper-alnum", { { '0', '9' }, { 'A', 'Z' } }, 2 },
	[EXAI__RUN_BASE58] = { "base58", { { '1', '9' }, { 'A', 'H' }, { 'J', 'N' }, { 'P', 'Z' }, { 'a', 'k' }, { 'm', 'z' } }, 6 },
	[EXAI__RUN_BASE64] = { "base64", { { '0', '9' }, { 'A', 'Z' }, { 'a', 'z' }, { '+', '+' }, { '/', '/' }, { '_', '_' } }, 6 },
};
/* base64 also takes '-' (base64url): the seventh range does not fit the table's row */
static bool base64_dash(int run)
{
	return run == EXAI__RUN_BASE64;
}

const char *exai__run_name(int run)
{
	return run >= 0 && run < EXAI__RUN_COUNT ? classes[run].name : NULL;
}

int exai__run_from_name(const char *name)
{
	for (int i = 0; i < EXAI__RUN_COUNT; i++)
		if (strcmp(classes[i].name, name) == 0)
			return i;
	return -1;
}

static bool in_class(int run, unsigned char c)
{
	for (unsigned i = 0; i < classes[run].n; i++)
		if (c >= classes[run].r[i][0] && c <= classes[run].r[i][1])
			return true;
	return base64_dash(run) && c == '-';
}

#define MAX_SPECS 8

struct masks {
	uint64_t b[MAX_SPECS], s[MAX_SPECS];
};

/* ---- the masks of one 64-byte block ------------------------------------------------------ */

struct tables {
	uint16_t t[256]; /* bit k: in spec k's class; bit 8 + k: one of spec k's separators */
};

static void masks_scalar(const struct tables *tb, unsigned n, const uint8_t *p, struct masks *m)
{
	for (unsigned k = 0; k < n; k++)
		m->b[k] = m->s[k] = 0;
	for (unsigned i = 0; i < 64; i++) {
		unsigned t = tb->t[p[i]];
		if (!t)
			continue;
		for (unsigned k = 0; k < n; k++) {
			m->b[k] |= (uint64_t)(t >> k & 1) << i;
			m->s[k] |= (uint64_t)(t >> (8 + k) & 1) << i;
		}
	}
}

#ifdef HAVE_X86
static void masks_sse2(const struct exai__run_spec *sp, unsigned n, const uint8_t *p, struct masks *m)
{
	__m128i v[4];
	for (int j = 0; j < 4; j++)
		v[j] = _mm_loadu_si128((const __m128i *)(p + 16 * j));
	for (unsigned k = 0; k < n; k++) {
		int run = sp[k].run;
		uint64_t b = 0, s = 0;
		for (int j = 0; j < 4; j++) {
			__m128i acc = _mm_setzero_si128(), sep = _mm_setzero_si128();
			for (unsigned r = 0; r < classes[run].n; r++) {
				__m128i ge = _mm_cmpgt_epi8(v[j], _mm_set1_epi8((char)(classes[run].r[r][0] - 1)));
				__m128i le = _mm_cmplt_epi8(v[j], _mm_set1_epi8((char)(classes[run].r[r][1] + 1)));
				acc = _mm_or_si128(acc, _mm_and_si128(ge, le));
			}
			if (base64_dash(run))
				acc = _mm_or_si128(acc, _mm_cmpeq_epi8(v[j], _mm_set1_epi8('-')));
			for (unsigned q = 0; q < sp[k].n_seps; q++)
				sep = _mm_or_si128(sep, _mm_cmpeq_epi8(v[j], _mm_set1_epi8((char)sp[k].seps[q])));
			b |= (uint64_t)(uint16_t)_mm_movemask_epi8(acc) << (16 * j);
			s |= (uint64_t)(uint16_t)_mm_movemask_epi8(sep) << (16 * j);
		}
		m->b[k] = b;
		m->s[k] = s & ~b;
	}
}

__attribute__((target("avx2"))) static void masks_avx2(const struct exai__run_spec *sp, unsigned n, const uint8_t *p,
							struct masks *m)
{
	__m256i v[2];
	for (int j = 0; j < 2; j++)
		v[j] = _mm256_loadu_si256((const __m256i *)(p + 32 * j));
	for (unsigned k = 0; k < n; k++) {
		int run = sp[k].run;
		uint64_t b = 0, s = 0;
		for (int j = 0; j < 2; j++) {
			__m256i acc = _mm256_setzero_si256(), sep = _mm256_setzero_si256();
			for (unsigned r = 0; r < classes[run].n; r++) {
				__m256i ge = _mm256_cmpgt_epi8(v[j], _mm256_set1_epi8((char)(classes[run].r[r][0] - 1)));
				__m256i le = _mm256_cmpgt_epi8(_mm256_set1_epi8((char)(classes[run].r[r][1] + 1)), v[j]);
				acc = _mm256_or_si256(acc, _mm256_and_si256(ge, le));
			}
			if (base64_dash(run))
				acc = _mm256_or_si256(acc, _mm256_cmpeq_epi8(v[j], _mm256_set1_epi8('-')));
			for (unsigned q = 0; q < sp[k].n_seps; q++)
				sep = _mm256_or_si256(sep, _mm256_cmpeq_epi8(v[j], _mm256_set1_epi8((char)sp[k].seps[q])));
			b |= (uint64_t)(uint32_t)_mm256_movemask_epi8(acc) << (32 * j);
			s |= (uint64_t)(uint32_t)_mm256_movemask_epi8(sep) << (32 * j);
		}
		m->b[k] = b;
		m->s[k] = s & ~b;
	}
}
#endif

/* ---- runs from masks --------------------------------------------------------------------- */

struct run_state {
	bool in;
	size_t start;
	unsigned body, seps;
};

/* Bit i set when r[i .. i + n - 1] are all set (within the word). */
static uint64_t at_least(uint64_t r, unsigned n)
{
	unsigned have = 1;
	while (have < n && r) {
		unsigned step = have <= n - have ? have : n - have;
		r &= r >> step;
		have += step;
	}
	return r;
}

static unsigned popc(uint64_t x)
{
	return (unsigned)__builtin_popcountll(x);
}

/* The runs of one spec in one block: R the run bytes, B the class bytes, J the joining
 * separators; @base the block's offset. */
static int block_runs(const struct exai__run_spec *sp, unsigned k, struct run_state *st, uint64_t R, uint64_t B,
		      uint64_t J, size_t base, exai__run_fn fn, void *ud)
{
	unsigned min = sp->min ? sp->min : 1;
	int r;
	if (st->in) {
		if (R == ~0ull) {
			st->body += popc(B);
			st->seps += popc(J);
			return 0;
		}
		unsigned l = (unsigned)__builtin_ctzll(~R);
		uint64_t m = l ? ~0ull >> (64 - l) : 0;
		st->body += popc(B & m);
		st->seps += popc(J & m);
		st->in = false;
		if (st->body >= min && (r = fn(ud, k, st->start, base + l, st->body, st->seps)))
			return r;
		R &= ~m;
	}
	if (!R)
		return 0;
	/* nothing long enough inside, and nothing reaching the next block: done */
	if (!(R >> 63) && !at_least(R, min < 64 ? min : 64))
		return 0;
	while (R) {
		unsigned s = (unsigned)__builtin_ctzll(R);
		uint64_t rest = ~(R >> s);
		unsigned l = rest ? (unsigned)__builtin_ctzll(rest) : 64 - s;
		if (s + l >= 64) { /* continues in the next block */
			uint64_t m = ~0ull << s;
			st->in = true;
			st->start = base + s;
			st->body = popc(B & m);
			st->seps = popc(J & m);
			return 0;
		}
		uint64_t m = (~0ull >> (64 - l)) << s;
		if (l >= min) {
			unsigned body = popc(B & m);
			if (body >= min && (r = fn(ud, k, base + s, base + s + l, body, popc(J & m))))
				return r;
		}
		R &= ~((~0ull >> (64 - (s + l))));
	}
	return 0;
}

static bool have_avx2(void)
{
#ifdef HAVE_X86
	static int cached = -1;
	if (cached < 0)
		cached = __builtin_cpu_supports("avx2") ? 1 : 0;
	return cached == 1;
#else
	return false;
#endif
}

int exai__runs_scan(const struct exai__run_spec *specs, unsigned n, const char *text, size_t len, exai__run_fn fn,
		    void *ud, int impl)
{
	if (n == 0 || len == 0)
		return 0;
	if (n > MAX_SPECS)
		n = MAX_SPECS;
	if (impl == EXAI__SIMD_BEST)
		impl = have_avx2() ? EXAI__SIMD_AVX2 : EXAI__SIMD_SSE2;
#ifndef HAVE_X86
	impl = EXAI__SIMD_SCALAR;
#else
	if (impl == EXAI__SIMD_AVX2 && !have_avx2())
		impl = EXAI__SIMD_SSE2;
#endif
	struct tables tb;
	if (impl == EXAI__SIMD_SCALAR) {
		memset(&tb, 0, sizeof(tb));
		for (unsigned k = 0; k < n; k++) {
			for (unsigned c = 0; c < 256; c++)
				if (in_class(specs[k].run, (unsigned char)c))
					tb.t[c] |= (uint16_t)(1u << k);
			for (unsigned q = 0; q < specs[k].n_seps; q++)
				if (!in_class(specs[k].run, specs[k].seps[q]))
					tb.t[specs[k].seps[q]] |= (uint16_t)(1u << (8 + k));
		}
	}
	struct run_state st[MAX_SPECS];
	memset(st, 0, sizeof(st));
	struct masks cur, next;
	uint8_t tail[64];
	uint64_t prev_top[MAX_SPECS] = { 0 }; /* bit 63 of the previous block's B */
	const uint8_t *p = (const uint8_t *)text;
	size_t nblocks = (len + 63) / 64;
#define BLOCK(i, out)                                                                                                  \
	do {                                                                                                           \
		const uint8_t *src_ = p + 64 * (i);                                                                    \
		if (64 * (i) + 64 > len) {                                                                             \
			memset(tail, 0, sizeof(tail));                                                                 \
			memcpy(tail, src_, len - 64 * (i));                                                            \
			src_ = tail;                                                                                   \
		}                                                                                                      \
		if (impl == EXAI__SIMD_SCALAR)                                                                         \
			masks_scalar(&tb, n, src_, &(out));                                                            \
		else                                                                                                   \
			MASKS_SIMD(src_, out);                                                                         \
	} while (0)
#ifdef HAVE_X86
#define MASKS_SIMD(src, out)                                                                                           \
	do {                                                                                                           \
		if (impl == EXAI__SIMD_AVX2)                                                                           \
			masks_avx2(specs, n, src, &(out));                                                             \
		else                                                                                                   \
			masks_sse2(specs, n, src, &(out));                                                             \
	} while (0)
#else
#define MASKS_SIMD(src, out) masks_scalar(&tb, n, src, &(out))
#endif
	BLOCK(0, cur);
	int r = 0;
	for (size_t i = 0; i < nblocks && r == 0; i++) {
		if (i + 1 < nblocks)
			BLOCK(i + 1, next);
		else
			memset(&next, 0, sizeof(next));
		for (unsigned k = 0; k < n && r == 0; k++) {
			uint64_t B = cur.b[k], S = cur.s[k], J;
			if (specs[k].adjacent)
				J = S;
			else
				J = S & ((B << 1) | prev_top[k]) & ((B >> 1) | (next.b[k] << 63));
			prev_top[k] = B >> 63;
			uint64_t R = B | J;
			if (!R && !st[k].in)
				continue;
			r = block_runs(&specs[k], k, &st[k], R, B, J, 64 * i, fn, ud);
		}
		cur = next;
	}
#undef BLOCK
#undef MASKS_SIMD
	/* runs that reach the end of the text */
	for (unsigned k = 0; k < n && r == 0; k++)
		if (st[k].in && st[k].body >= (specs[k].min ? specs[k].min : 1)) {
			size_t end = len;
			r = fn(ud, k, st[k].start, end, st[k].body, st[k].seps);
		}
	return r;
}
