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
#include <errno.h>
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

/* ---- the groups of a run, and shapes ------------------------------------------------------ */

unsigned exai__run_groups(int run, const char *text, size_t start, size_t end, uint32_t *gstart, uint16_t *glen,
			  unsigned max)
{
	unsigned n = 0;
	size_t i = start;
	while (i < end) {
		while (i < end && !in_class(run, (unsigned char)text[i]))
			i++;
		if (i == end)
			break;
		size_t g = i;
		while (i < end && in_class(run, (unsigned char)text[i]))
			i++;
		if (n == max)
			return max + 1;
		gstart[n] = (uint32_t)(g - start);
		glen[n] = (uint16_t)(i - g > UINT16_MAX ? UINT16_MAX : i - g);
		n++;
	}
	return n;
}

bool exai__shape_fits(const struct exai__shape *shape, const uint32_t *gstart, const uint16_t *glen, unsigned n,
		      unsigned g, size_t *span)
{
	if (g + shape->n > n)
		return false;
	for (unsigned k = 0; k < shape->n; k++)
		if (glen[g + k] < shape->lo[k] || glen[g + k] > shape->hi[k])
			return false;
	unsigned last = g + shape->n - 1;
	*span = gstart[last] + glen[last] - gstart[g];
	return true;
}

int exai__shape_parse(struct exai__shape *ret, const char *s)
{
	struct exai__shape sh = { .n = 0 };
	const char *p = s;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (sh.n == EXAI__SHAPE_GROUPS_MAX)
			return -EINVAL;
		unsigned long lo = 0, hi;
		const char *q = p;
		while (*q >= '0' && *q <= '9' && lo <= 4096)
			lo = lo * 10 + (unsigned long)(*q++ - '0');
		if (q == p)
			return -EINVAL;
		hi = lo;
		if (*q == '-') {
			const char *r = ++q;
			hi = 0;
			while (*q >= '0' && *q <= '9' && hi <= 4096)
				hi = hi * 10 + (unsigned long)(*q++ - '0');
			if (q == r)
				return -EINVAL;
		}
		if ((*q && *q != ' ') || lo < 1 || hi > 4096 || lo > hi)
			return -EINVAL;
		sh.lo[sh.n] = (uint16_t)lo;
		sh.hi[sh.n] = (uint16_t)hi;
		sh.n++;
		p = q;
	}
	if (!sh.n)
		return -EINVAL;
	*ret = sh;
	return 0;
}

#define MAX_SPECS EXAI__RUN_SPECS_MAX

struct masks {
	uint64_t b[MAX_SPECS], s[MAX_SPECS];
};

/* ---- the masks of one 64-byte block ------------------------------------------------------ */

struct tables {
	uint32_t t[256]; /* bit k: in spec k's class; bit 16 + k: one of spec k's separators */
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
			m->s[k] |= (uint64_t)(t >> (16 + k) & 1) << i;
		}
	}
}

/* The SIMD paths compute a few base masks per block (digits, letters, hex letters, the bytes
 * base58 leaves out, base64's punctuation) and each separator byte once, and derive every
 * class from them with 64-bit operations. */
struct base {
	uint64_t d, u, l, hu, hl, z0, ui, uo, ll, p64;
	uint64_t sep[16]; /* per distinct separator byte (struct sepset) */
};

struct sepset {
	uint8_t c[16];
	unsigned n;
	uint32_t of[MAX_SPECS]; /* bit q: spec k uses separator c[q] */
};

static void derive(const struct exai__run_spec *sp, unsigned n, const struct sepset *ss, const struct base *b,
		   struct masks *m)
{
	for (unsigned k = 0; k < n; k++) {
		uint64_t x;
		switch (sp[k].run) {
		case EXAI__RUN_DIGIT:
			x = b->d;
			break;
		case EXAI__RUN_HEX:
			x = b->d | b->hu | b->hl;
			break;
		case EXAI__RUN_UPPER_ALNUM:
			x = b->d | b->u;
			break;
		case EXAI__RUN_BASE58:
			x = ((b->d & ~b->z0) | (b->u & ~(b->ui | b->uo)) | (b->l & ~b->ll));
			break;
		default:
			x = b->d | b->u | b->l | b->p64;
		}
		uint64_t s = 0;
		for (unsigned q = 0; q < ss->n; q++)
			if (ss->of[k] >> q & 1)
				s |= b->sep[q];
		m->b[k] = x;
		m->s[k] = s & ~x;
	}
}

#ifdef HAVE_X86
#define RANGE16(v, lo, hi) _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((char)((lo) - 1))), _mm_cmplt_epi8(v, _mm_set1_epi8((char)((hi) + 1))))
#define MM16(x) ((uint64_t)(uint16_t)_mm_movemask_epi8(x))

static void masks_sse2(const struct exai__run_spec *sp, unsigned n, const struct sepset *ss, const uint8_t *p,
		       struct masks *m)
{
	struct base b;
	memset(&b, 0, sizeof(b));
	for (int j = 0; j < 4; j++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * j));
		unsigned sh = 16 * (unsigned)j;
		b.d |= MM16(RANGE16(v, '0', '9')) << sh;
		b.u |= MM16(RANGE16(v, 'A', 'Z')) << sh;
		b.l |= MM16(RANGE16(v, 'a', 'z')) << sh;
		b.hu |= MM16(RANGE16(v, 'A', 'F')) << sh;
		b.hl |= MM16(RANGE16(v, 'a', 'f')) << sh;
		b.z0 |= MM16(_mm_cmpeq_epi8(v, _mm_set1_epi8('0'))) << sh;
		b.ui |= MM16(_mm_cmpeq_epi8(v, _mm_set1_epi8('I'))) << sh;
		b.uo |= MM16(_mm_cmpeq_epi8(v, _mm_set1_epi8('O'))) << sh;
		b.ll |= MM16(_mm_cmpeq_epi8(v, _mm_set1_epi8('l'))) << sh;
		b.p64 |= MM16(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('+')), _mm_cmpeq_epi8(v, _mm_set1_epi8('/'))),
					   _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')), _mm_cmpeq_epi8(v, _mm_set1_epi8('-')))))
			 << sh;
		for (unsigned q = 0; q < ss->n; q++)
			b.sep[q] |= MM16(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)ss->c[q]))) << sh;
	}
	derive(sp, n, ss, &b, m);
}

#define RANGE32(v, lo, hi)                                                                                             \
	_mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8((char)((lo) - 1))),                                      \
			 _mm256_cmpgt_epi8(_mm256_set1_epi8((char)((hi) + 1)), v))
#define MM32(x) ((uint64_t)(uint32_t)_mm256_movemask_epi8(x))

__attribute__((target("avx2"))) static void masks_avx2(const struct exai__run_spec *sp, unsigned n, const struct sepset *ss,
							const uint8_t *p, struct masks *m)
{
	struct base b;
	memset(&b, 0, sizeof(b));
	for (int j = 0; j < 2; j++) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * j));
		unsigned sh = 32 * (unsigned)j;
		b.d |= MM32(RANGE32(v, '0', '9')) << sh;
		b.u |= MM32(RANGE32(v, 'A', 'Z')) << sh;
		b.l |= MM32(RANGE32(v, 'a', 'z')) << sh;
		b.hu |= MM32(RANGE32(v, 'A', 'F')) << sh;
		b.hl |= MM32(RANGE32(v, 'a', 'f')) << sh;
		b.z0 |= MM32(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('0'))) << sh;
		b.ui |= MM32(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('I'))) << sh;
		b.uo |= MM32(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('O'))) << sh;
		b.ll |= MM32(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('l'))) << sh;
		b.p64 |= MM32(_mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('+')),
							      _mm256_cmpeq_epi8(v, _mm256_set1_epi8('/'))),
					      _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('_')),
							      _mm256_cmpeq_epi8(v, _mm256_set1_epi8('-')))))
			 << sh;
		for (unsigned q = 0; q < ss->n; q++)
			b.sep[q] |= MM32(_mm256_cmpeq_epi8(v, _mm256_set1_epi8((char)ss->c[q]))) << sh;
	}
	derive(sp, n, ss, &b, m);
}
#endif

/* ---- runs from masks --------------------------------------------------------------------- */

struct run_state {
	bool in;
	size_t start;
	unsigned seps; /* the run's class bytes are its length less its separators */
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
#ifdef __POPCNT__
	return (unsigned)__builtin_popcountll(x);
#else /* the x86-64 baseline has no popcnt instruction: SWAR, not a libgcc call */
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

/* The runs of one spec in one block: R the run bytes, B the class bytes, J the joining
 * separators; @base the block's offset. */
static int block_runs(const struct exai__run_spec *sp, unsigned k, struct run_state *st, uint64_t R, uint64_t J,
		      size_t base, exai__run_fn fn, void *ud)
{
	unsigned min = sp->min ? sp->min : 1, mins = sp->min_seps, minlen = min + mins;
	int r;
	if (st->in) {
		if (R == ~0ull) {
			if (J)
				st->seps += popc(J);
			return 0;
		}
		unsigned l = (unsigned)__builtin_ctzll(~R);
		uint64_t m = l ? ~0ull >> (64 - l) : 0;
		if (J & m)
			st->seps += popc(J & m);
		st->in = false;
		size_t end = base + l;
		unsigned body = (unsigned)(end - st->start) - st->seps;
		if (body >= min && st->seps >= mins && (r = fn(ud, k, st->start, end, body, st->seps)))
			return r;
		R &= ~m;
	}
	if (!R)
		return 0;
	/* the run that reaches the next block, if any, is carried; of the others only those long
	 * enough are looked at (at_least marks where they start) */
	uint64_t carry = 0;
	if (R >> 63) {
		unsigned t = R == ~0ull ? 64 : (unsigned)__builtin_clzll(~R);
		carry = t == 64 ? ~0ull : ~0ull << (64 - t);
		R &= ~carry;
	}
	uint64_t x = minlen < 64 ? at_least(R, minlen) : 0;
	while (x) {
		unsigned s = (unsigned)__builtin_ctzll(x);
		uint64_t rest = ~(R >> s);
		unsigned l = (unsigned)__builtin_ctzll(rest); /* R's top bit is clear: rest != 0 */
		uint64_t m = (~0ull >> (64 - l)) << s;
		unsigned seps = J & m ? popc(J & m) : 0;
		if (l - seps >= min && seps >= mins && (r = fn(ud, k, base + s, base + s + l, l - seps, seps)))
			return r;
		x &= s + l >= 64 ? 0 : ~0ull << (s + l);
	}
	if (carry) {
		st->in = true;
		st->start = base + (unsigned)__builtin_ctzll(carry);
		st->seps = J & carry ? popc(J & carry) : 0;
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
					tb.t[c] |= 1u << k;
			for (unsigned q = 0; q < specs[k].n_seps; q++)
				if (!in_class(specs[k].run, specs[k].seps[q]))
					tb.t[specs[k].seps[q]] |= 1u << (16 + k);
		}
	}
	struct sepset ss;
	memset(&ss, 0, sizeof(ss));
	for (unsigned k = 0; k < n; k++)
		for (unsigned q = 0; q < specs[k].n_seps; q++) {
			unsigned j = 0;
			while (j < ss.n && ss.c[j] != specs[k].seps[q])
				j++;
			if (j == ss.n && ss.n < sizeof(ss.c))
				ss.c[ss.n++] = specs[k].seps[q];
			if (j < ss.n)
				ss.of[k] |= 1u << j;
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
			masks_avx2(specs, n, &ss, src, &(out));                                                             \
		else                                                                                                   \
			masks_sse2(specs, n, &ss, src, &(out));                                                             \
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
			r = block_runs(&specs[k], k, &st[k], R, J, 64 * i, fn, ud);
		}
		cur = next;
	}
#undef BLOCK
#undef MASKS_SIMD
	/* runs that reach the end of the text */
	for (unsigned k = 0; k < n && r == 0; k++)
		if (st[k].in && len - st[k].start - st[k].seps >= (specs[k].min ? specs[k].min : 1) &&
		    st[k].seps >= specs[k].min_seps)
			r = fn(ud, k, st[k].start, len, (unsigned)(len - st[k].start - st[k].seps), st[k].seps);
	return r;
}
