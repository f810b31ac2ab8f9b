/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trigger.c: the run finders that trigger the literal-free patterns (payment cards, IBAN, SSN,
 * IP addresses, cryptocurrency addresses, quoted high-entropy strings, ...): runs of one byte
 * class (digits, hex, A-Z0-9, base58, base64) that separators may join, found 64 bytes at a time.
 * Each block is classified once; every spec is tested branch-free for a run it could report
 * ending in the block, and only the specs with one read their runs from the masks. AVX-512
 * does eight specs at a time in 64-bit lanes; AVX2, SSSE3 and a portable path classify into
 * masks and test the specs one by one (chosen at run time; all report the same runs,
 * tests/unit/test-scrub-trigger.c).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif
#ifdef __x86_64__
#define HAVE_X86_64 1 /* the AVX-512 scan: 64-bit lanes hold a size_t */
#endif

#include "scrub-internal.h"

/* The classes (docs/formats/scrub-pack.md), and each byte's classes: bit c for class c. */
static const char *const class_names[EXAI__RUN_COUNT] = {
	[EXAI__RUN_DIGIT] = "digit", [EXAI__RUN_HEX] = "hex", [EXAI__RUN_UPPER_ALNUM] = "upper-alnum",
	[EXAI__RUN_BASE58] = "base58", [EXAI__RUN_BASE64] = "base64",
};
#define IS_D(c) ((c) >= '0' && (c) <= '9')
#define IS_U(c) ((c) >= 'A' && (c) <= 'Z')
#define IS_L(c) ((c) >= 'a' && (c) <= 'z')
#define CLS(c)                                                                                                         \
	((IS_D(c) ? 1u << EXAI__RUN_DIGIT : 0u) |                                                                      \
	 ((IS_D(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F')) ? 1u << EXAI__RUN_HEX : 0u) |         \
	 ((IS_D(c) || IS_U(c)) ? 1u << EXAI__RUN_UPPER_ALNUM : 0u) |                                                   \
	 (((IS_D(c) && (c) != '0') || (IS_U(c) && (c) != 'I' && (c) != 'O') || (IS_L(c) && (c) != 'l'))              \
		  ? 1u << EXAI__RUN_BASE58                                                                             \
		  : 0u) |                                                                                              \
	 ((IS_D(c) || IS_U(c) || IS_L(c) || (c) == '+' || (c) == '/' || (c) == '_' || (c) == '-') ? 1u << EXAI__RUN_BASE64 \
												   : 0u))
#define CLS4(b) CLS(b), CLS((b) + 1), CLS((b) + 2), CLS((b) + 3)
#define CLS16(b) CLS4(b), CLS4((b) + 4), CLS4((b) + 8), CLS4((b) + 12)
#define CLS64(b) CLS16(b), CLS16((b) + 16), CLS16((b) + 32), CLS16((b) + 48)
static const uint8_t class_tab[256] = { CLS64(0), CLS64(64), CLS64(128), CLS64(192) };

const char *exai__run_name(int run)
{
	return run >= 0 && run < EXAI__RUN_COUNT ? class_names[run] : NULL;
}

int exai__run_from_name(const char *name)
{
	for (int i = 0; i < EXAI__RUN_COUNT; i++)
		if (strcmp(class_names[i], name) == 0)
			return i;
	return -1;
}

static bool in_class(int run, unsigned char c)
{
	return class_tab[c] >> run & 1;
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
#define MAX_SEPC (EXAI__RUN_SPECS_MAX * 8)

/* ---- the class masks of one 64-byte block -------------------------------------------------
 *
 * Every block is classified once into one mask per class (bit i: byte i is of the class) and
 * one per separator set (the bytes that join one spec's runs); the specs read them. AVX-512
 * looks every byte up in two 128-byte tables (vpermi2b: the classes, class_tab; the sets,
 * set_tab8) and tests each bit into a k-mask. AVX2 and SSSE3 look each byte's two nibbles up
 * in two 16-byte tables (pshufb) whose AND gives eight bits, each a rectangle of (high nibble,
 * low nibble) pairs, derive the classes from them, and compare each separator byte. The
 * portable path reads class_tab and set_tab a byte at a time. All give the same masks. */
enum {
	NB_D = 1,     /* 0-9: high 3, low 0-9 */
	NB_U1 = 2,    /* A-O: high 4, low 1-F */
	NB_U2 = 4,    /* P-Z: high 5, low 0-A */
	NB_L1 = 8,    /* a-o: high 6, low 1-F */
	NB_L2 = 16,   /* p-z: high 7, low 0-A */
	NB_HEX = 32,  /* A-F a-f: high 4 or 6, low 1-6 */
	NB_P1 = 64,   /* + - /: high 2, low B D F */
	NB_P2 = 128,  /* _: high 5, low F */
};
/* base58 leaves out 0 I O l (compared one by one); base64 is every bit (hex letters are
 * letters). Bytes from 0x80 have a high nibble the table maps to 0. */

struct blk {
	uint64_t cls[EXAI__RUN_COUNT];
	uint64_t set[MAX_SPECS];
	uint64_t sep[MAX_SEPC]; /* SSSE3 and AVX2: per separator byte */
};

static void blk_scalar(const struct exai__run_plan *pl, const uint8_t *p, struct blk *m)
{
	memset(m->cls, 0, sizeof(m->cls));
	memset(m->set, 0, pl->n_sets * sizeof(m->set[0]));
	for (unsigned i = 0; i < 64; i++) {
		unsigned c = class_tab[p[i]];
		for (unsigned k = 0; c; k++, c >>= 1)
			m->cls[k] |= (uint64_t)(c & 1) << i;
		unsigned s = pl->set_tab[p[i]];
		for (unsigned j = 0; s; j++, s >>= 1)
			m->set[j] |= (uint64_t)(s & 1) << i;
	}
}

/* The set masks from the separator bytes' masks (SSSE3, AVX2). */
static inline void blk_sets(const struct exai__run_plan *pl, struct blk *m)
{
	memset(m->set, 0, pl->n_sets * sizeof(m->set[0]));
	for (unsigned q = 0; q < pl->n_sepc; q++)
		for (unsigned s = pl->sets_of_sep[q], j = 0; s; j++, s >>= 1)
			if (s & 1)
				m->set[j] |= m->sep[q];
}

#ifdef HAVE_X86
static const int8_t nb_lo[16] = {
	NB_D | NB_U2 | NB_L2,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2 | NB_HEX,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2 | NB_HEX,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2 | NB_HEX,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2 | NB_HEX,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2 | NB_HEX,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2 | NB_HEX,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2,
	NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2,
	NB_U1 | NB_U2 | NB_L1 | NB_L2,
	NB_U1 | NB_L1 | NB_P1,
	NB_U1 | NB_L1,
	NB_U1 | NB_L1 | NB_P1,
	NB_U1 | NB_L1,
	NB_U1 | NB_L1 | NB_P1 | (int8_t)NB_P2,
};
static const int8_t nb_hi[16] = {
	0, 0, NB_P1, NB_D, NB_U1 | NB_HEX, NB_U2 | (int8_t)NB_P2, NB_L1 | NB_HEX, NB_L2, 0, 0, 0, 0, 0, 0, 0, 0,
};

#define MM16(x) ((uint64_t)(uint16_t)_mm_movemask_epi8(x))
__attribute__((target("ssse3"))) static inline void blk_ssse3(const struct exai__run_plan *pl, const uint8_t *p,
							     struct blk *m)
{
	const __m128i lo_t = _mm_loadu_si128((const __m128i *)nb_lo), hi_t = _mm_loadu_si128((const __m128i *)nb_hi);
	const __m128i f = _mm_set1_epi8(0x0f), z = _mm_setzero_si128();
	uint64_t d = 0, hx = 0, ua = 0, b58 = 0, b64 = 0;
	for (unsigned q = 0; q < pl->n_sepc; q++)
		m->sep[q] = 0;
	for (int j = 0; j < 4; j++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * j));
		__m128i c = _mm_and_si128(_mm_shuffle_epi8(lo_t, _mm_and_si128(v, f)),
					  _mm_shuffle_epi8(hi_t, _mm_and_si128(_mm_srli_epi16(v, 4), f)));
		__m128i x = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('0')), _mm_cmpeq_epi8(v, _mm_set1_epi8('I'))),
					 _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('O')), _mm_cmpeq_epi8(v, _mm_set1_epi8('l'))));
		unsigned sh = 16 * (unsigned)j;
		d |= MM16(_mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(NB_D)), z)) << sh;
		hx |= MM16(_mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(NB_D | NB_HEX)), z)) << sh;
		ua |= MM16(_mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(NB_D | NB_U1 | NB_U2)), z)) << sh;
		b58 |= MM16(_mm_or_si128(_mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2)), z), x))
		       << sh;
		b64 |= MM16(_mm_cmpeq_epi8(c, z)) << sh;
		for (unsigned q = 0; q < pl->n_sepc; q++)
			m->sep[q] |= MM16(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)pl->sepc[q]))) << sh;
	}
	m->cls[EXAI__RUN_DIGIT] = ~d;
	m->cls[EXAI__RUN_HEX] = ~hx;
	m->cls[EXAI__RUN_UPPER_ALNUM] = ~ua;
	m->cls[EXAI__RUN_BASE58] = ~b58;
	m->cls[EXAI__RUN_BASE64] = ~b64;
	blk_sets(pl, m);
}

#define MM32(x) ((uint64_t)(uint32_t)_mm256_movemask_epi8(x))
#define MM64(x0, x1) (MM32(x0) | MM32(x1) << 32)
__attribute__((target("avx2"))) static inline void blk_avx2(const struct exai__run_plan *pl, const uint8_t *p,
							    struct blk *m)
{
	const __m256i lo_t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)nb_lo));
	const __m256i hi_t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)nb_hi));
	const __m256i f = _mm256_set1_epi8(0x0f), z = _mm256_setzero_si256();
	__m256i v[2], c[2], x[2];
	for (int j = 0; j < 2; j++) {
		v[j] = _mm256_loadu_si256((const __m256i *)(p + 32 * j));
		c[j] = _mm256_and_si256(_mm256_shuffle_epi8(lo_t, _mm256_and_si256(v[j], f)),
					_mm256_shuffle_epi8(hi_t, _mm256_and_si256(_mm256_srli_epi16(v[j], 4), f)));
		x[j] = _mm256_or_si256(
			_mm256_or_si256(_mm256_cmpeq_epi8(v[j], _mm256_set1_epi8('0')), _mm256_cmpeq_epi8(v[j], _mm256_set1_epi8('I'))),
			_mm256_or_si256(_mm256_cmpeq_epi8(v[j], _mm256_set1_epi8('O')), _mm256_cmpeq_epi8(v[j], _mm256_set1_epi8('l'))));
	}
#define NOT_IN(bits)                                                                                                   \
	MM64(_mm256_cmpeq_epi8(_mm256_and_si256(c[0], _mm256_set1_epi8((char)(bits))), z),                             \
	     _mm256_cmpeq_epi8(_mm256_and_si256(c[1], _mm256_set1_epi8((char)(bits))), z))
	m->cls[EXAI__RUN_DIGIT] = ~NOT_IN(NB_D);
	m->cls[EXAI__RUN_HEX] = ~NOT_IN(NB_D | NB_HEX);
	m->cls[EXAI__RUN_UPPER_ALNUM] = ~NOT_IN(NB_D | NB_U1 | NB_U2);
	const __m256i l58 = _mm256_set1_epi8(NB_D | NB_U1 | NB_U2 | NB_L1 | NB_L2);
	m->cls[EXAI__RUN_BASE58] = ~MM64(_mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(c[0], l58), z), x[0]),
					 _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(c[1], l58), z), x[1]));
	m->cls[EXAI__RUN_BASE64] = ~MM64(_mm256_cmpeq_epi8(c[0], z), _mm256_cmpeq_epi8(c[1], z));
#undef NOT_IN
	for (unsigned q = 0; q < pl->n_sepc; q++) {
		const __m256i sc = _mm256_set1_epi8((char)pl->sepc[q]);
		m->sep[q] = MM64(_mm256_cmpeq_epi8(v[0], sc), _mm256_cmpeq_epi8(v[1], sc));
	}
	blk_sets(pl, m);
}

#endif

/* ---- runs from masks --------------------------------------------------------------------- */

/* The scan is compiled four times, for AVX-512 and AVX2 (with popcnt and BMI1, which every
 * such CPU has and have_simd() checks), SSSE3 and the baseline: what it calls is inlined into
 * each, and @fast says whether popcnt may be used.
 *
 * Per block, each spec's run bytes R (its class bytes, and the separators that join them)
 * are tested branch-free for a run of its shortest reported length, within the block or
 * ending in it after the length carried in; only the specs that have one (a few in a hundred
 * blocks of prose and logs) read their runs from the masks. A run that goes on past the
 * block is carried as its length alone: where it ends, its start is that far back and its
 * separators are counted from the text. */
#define SCAN_INLINE static inline __attribute__((always_inline))

/* The shifts after which bit i of r & r >> s1 & ... says r[i .. i + n - 1] are all set
 * (at most six, for n <= 64; zeros after them). */
static void schedule(uint8_t steps[6], unsigned n)
{
	unsigned have = 1, k = 0;
	memset(steps, 0, 6);
	while (have < n && have < 64) {
		unsigned step = have <= n - have ? have : n - have;
		steps[k++] = (uint8_t)step;
		have += step;
	}
}

/* Bit i set when r[i .. i + n - 1] are all set (within the word): six shifts, whatever n (a
 * shift by 0 changes nothing), with no branch. */
SCAN_INLINE uint64_t at_least(uint64_t r, const uint8_t *steps)
{
	r &= r >> steps[0];
	r &= r >> steps[1];
	r &= r >> steps[2];
	r &= r >> steps[3];
	r &= r >> steps[4];
	return r & r >> steps[5];
}

SCAN_INLINE unsigned popc(uint64_t x, bool fast)
{
	if (fast)
		return (unsigned)__builtin_popcountll(x);
	/* the x86-64 baseline has no popcnt instruction: SWAR, not a libgcc call */
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* Trailing / leading zeros, 64 for 0 (tzcnt / lzcnt where the target has them). */
SCAN_INLINE unsigned tz64(uint64_t x)
{
	return x ? (unsigned)__builtin_ctzll(x) : 64;
}

SCAN_INLINE unsigned lz64(uint64_t x)
{
	return x ? (unsigned)__builtin_clzll(x) : 64;
}

SCAN_INLINE bool in_set(const uint64_t *set, unsigned char c)
{
	return set[c >> 6] >> (c & 63) & 1;
}

/* A run [start, end) with @body class bytes and @seps separators, reported if it is long
 * enough and its ends are as the spec asks. */
SCAN_INLINE int report(const struct exai__run_spec *sp, unsigned k, const uint8_t *text, size_t start, size_t end,
		       unsigned body, unsigned seps, exai__run_fn fn, void *ud)
{
	if (body < (sp->min ? sp->min : 1) || seps < sp->min_seps)
		return 0;
	if (sp->has_first && !in_set(sp->first, text[start]))
		return 0;
	if (sp->has_before && (start == 0 || !in_set(sp->before, text[start - 1])))
		return 0;
	return fn(ud, k, start, end, body, seps);
}

/* A run carried from @start to @end: with the counts of its class bytes and separators when
 * the scan kept them (@body: SIZE_MAX when not; then its separators are its bytes not of the
 * class, counted here). */
static int report_carried(const struct exai__run_plan *pl, unsigned k, const uint8_t *text, size_t start, size_t end,
			  size_t body, size_t seps, exai__run_fn fn, void *ud)
{
	if (body == SIZE_MAX) {
		unsigned cls = pl->cls_of[k];
		body = 0;
		for (size_t i = start; i < end; i++)
			body += class_tab[text[i]] >> cls & 1;
		seps = end - start - body;
	}
	return report(&pl->sp[k], k, text, start, end, body > UINT_MAX ? UINT_MAX : (unsigned)body,
		      seps > UINT_MAX ? UINT_MAX : (unsigned)seps, fn, ud);
}

/* The runs carried to the end of the text (@cin: their lengths; @cbody and @cseps their
 * class bytes and separators, or NULL). */
static int runs_at_end(const struct exai__run_plan *pl, const size_t *cin, const size_t *cbody, const size_t *cseps,
		       const uint8_t *text, size_t len, exai__run_fn fn, void *ud)
{
	for (unsigned k = 0; k < pl->n; k++) {
		int r = cin[k] >= pl->minlen[k] ? report_carried(pl, k, text, len - cin[k], len, cbody ? cbody[k] : SIZE_MAX,
								 cseps ? cseps[k] : 0, fn, ud)
						: 0;
		if (r)
			return r;
	}
	return 0;
}

/* The runs of spec @k that end in one block: R its run bytes, J its joining separators, @cin
 * the length of the run carried in (@cbody, @cseps: as report_carried); @base the block's
 * offset. The run that reaches the block's end is left to the next. */
SCAN_INLINE int spec_runs(const struct exai__run_plan *pl, unsigned k, uint64_t R, uint64_t J, size_t cin, size_t cbody,
			  size_t cseps, const uint8_t *text, size_t base, exai__run_fn fn, void *ud, bool fast)
{
	int r;
	if (cin) {
		unsigned lead = tz64(~R);
		if (lead == 64)
			return 0;
		uint64_t m = lead ? ~0ull >> (64 - lead) : 0;
		unsigned seps = J & m ? popc(J & m, fast) : 0;
		if (cin + lead >= pl->minlen[k] &&
		    (r = report_carried(pl, k, text, base - cin, base + lead, cbody == SIZE_MAX ? cbody : cbody + lead - seps,
					cseps + seps, fn, ud)))
			return r;
		R &= ~m;
	}
	unsigned top = lz64(~R); /* the run that reaches the block's end is the next block's */
	R = top == 64 ? 0 : R & ~0ull >> top;
	uint64_t x = at_least(R, pl->steps[k]) & pl->fits[k];
	while (x) {
		unsigned s = (unsigned)__builtin_ctzll(x);
		unsigned l = (unsigned)__builtin_ctzll(~(R >> s)); /* R's top bit is clear: ~(R >> s) != 0 */
		uint64_t m = (~0ull >> (64 - l)) << s;
		unsigned seps = J & m ? popc(J & m, fast) : 0;
		if ((r = report(&pl->sp[k], k, text, base + s, base + s + l, l - seps, seps, fn, ud)))
			return r;
		x &= s + l >= 64 ? 0 : ~0ull << (s + l);
	}
	return 0;
}

#ifdef HAVE_X86_64
#define HAVE_AVX512_SCAN 1
#else
#define HAVE_AVX512_SCAN 0
#endif

static int have_simd(void)
{
#ifdef HAVE_X86
	static int cached = -1;
	if (cached < 0) {
		bool v2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi");
		cached = HAVE_AVX512_SCAN && v2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
					 __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512cd") &&
					 __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("gfni")
				 ? EXAI__SIMD_AVX512
			 : v2				   ? EXAI__SIMD_AVX2
			 : __builtin_cpu_supports("ssse3") ? EXAI__SIMD_SSSE3
							   : EXAI__SIMD_SCALAR;
	}
	return cached;
#else
	return EXAI__SIMD_SCALAR;
#endif
}

int exai__runs_best_impl(void)
{
	return have_simd();
}

void exai__runs_plan(struct exai__run_plan *pl, const struct exai__run_spec *specs, unsigned n)
{
	if (n > MAX_SPECS)
		n = MAX_SPECS;
	memset(pl, 0, sizeof(*pl));
	pl->n = n;
	pl->sp = specs;
	uint8_t set_bytes[MAX_SPECS][256 / 8];
	for (unsigned k = 0; k < n; k++) {
		const struct exai__run_spec *sp = &specs[k];
		/* the spec's separator set (a class byte is no separator), shared with an equal one */
		uint8_t mine[256 / 8] = { 0 };
		for (unsigned q = 0; q < sp->n_seps && q < sizeof(sp->seps); q++)
			if (!(class_tab[sp->seps[q]] >> sp->run & 1))
				mine[sp->seps[q] / 8] |= (uint8_t)(1u << sp->seps[q] % 8);
		unsigned j = 0;
		while (j < pl->n_sets && memcmp(set_bytes[j], mine, sizeof(mine)) != 0)
			j++;
		if (j == pl->n_sets) {
			memcpy(set_bytes[pl->n_sets++], mine, sizeof(mine));
			for (unsigned c = 0; c < 256; c++) {
				if (!(mine[c / 8] >> c % 8 & 1))
					continue;
				pl->set_tab[c] |= (uint16_t)(1u << j);
				unsigned q = 0;
				while (q < pl->n_sepc && pl->sepc[q] != c)
					q++;
				if (q == pl->n_sepc)
					pl->sepc[pl->n_sepc++] = (uint8_t)c;
				pl->sets_of_sep[q] |= (uint16_t)(1u << j);
			}
		}
		pl->set_of[k] = (uint8_t)j;
		pl->cls_of[k] = (uint8_t)sp->run;
		pl->adj[k] = sp->adjacent ? ~0ull : 0;
		pl->any_j[k] = sp->min_seps ? 0 : ~0ull;
		pl->minlen[k] = (sp->min ? sp->min : 1) + sp->min_seps;
		pl->fits[k] = pl->minlen[k] <= 64 ? ~0ull : 0;
		schedule(pl->steps[k], pl->minlen[k]);
	}
	/* the AVX-512 scan's byte orders */
	for (unsigned i = 0; i < 64; i++) {
		unsigned nat = (i & ~7u) | (7 - (i & 7)); /* a qword's bytes reversed (its own inverse) */
		pl->x_rev[i] = (uint8_t)nat;
		pl->x_sel[i] = (uint8_t)(1u << (i & 7));
		pl->x_gather[i] = (uint8_t)(8 * (i % 8) + i / 8);
		/* of two blocks (reversed), the byte one before / after byte nat of the second /
		 * the first */
		pl->x_prev[i] = (uint8_t)(nat == 0 ? 56 /* 63 reversed */ : 64 + ((nat - 1) & ~7u) + 7 - ((nat - 1) & 7));
		pl->x_next[i] = (uint8_t)(nat == 63 ? 64 + 7 /* 0 reversed */ : ((nat + 1) & ~7u) + 7 - ((nat + 1) & 7));
	}
	/* the AVX-512 scan's lanes: the specs that do not ask for the bytes before or at a run's
	 * start first, the shortest runs first, so that the first group skips that check and as
	 * many shifts as it can; with nine to twelve specs the second group (four lanes) takes the
	 * last four */
	uint8_t order[MAX_SPECS];
	for (unsigned k = 0; k < n; k++) {
		unsigned key = (specs[k].has_before || specs[k].has_first) << 16 | (pl->minlen[k] < 0xffff ? pl->minlen[k] : 0xffff), i = k;
		for (; i > 0; i--) {
			const struct exai__run_spec *o = &specs[order[i - 1]];
			unsigned okey = (o->has_before || o->has_first) << 16 |
					(pl->minlen[order[i - 1]] < 0xffff ? pl->minlen[order[i - 1]] : 0xffff);
			if (okey <= key)
				break;
			order[i] = order[i - 1];
		}
		order[i] = (uint8_t)k;
	}
	memset(pl->x_spec, 0xff, sizeof(pl->x_spec));
	for (unsigned i = 0; i < n; i++)
		pl->x_spec[n > 8 && n <= 12 && i >= n - 4 ? 8 + i - (n - 4) : i] = order[i];
	for (unsigned l = 0; l < MAX_SPECS; l++) {
		if (pl->x_spec[l] == 0xff)
			continue;
		unsigned k = pl->x_spec[l], j = pl->set_of[k];
		const struct exai__run_spec *sp = &specs[k];
		unsigned h = l / 8, bit = 1u << l % 8;
		if (sp->has_before || sp->has_first)
			pl->x_ok[h] = true;
		for (unsigned c = 0; c < 128; c++) {
			if (c < 64 && (c >> sp->run & 1)) /* c: a byte's classes (class_tab) */
				pl->x_specs[h][c] |= (uint8_t)bit;
			if (pl->set_tab[c] >> j & 1) /* c: an ASCII byte */
				pl->x_sep[h][c] |= (uint8_t)bit;
		}
		if (sp->adjacent)
			pl->x_adj[h] |= (uint8_t)bit;
		/* the bytes before / at a run's start it may be reported after (all when the spec
		 * does not ask, or asks for a byte from 0x80: the scalar check decides) */
		bool any_before = !sp->has_before || sp->before[2] || sp->before[3];
		bool any_first = !sp->has_first || sp->first[2] || sp->first[3];
		for (unsigned c = 0; c < 128; c++) {
			if (any_before || in_set(sp->before, (unsigned char)c))
				pl->x_before[h][c] |= (uint8_t)bit;
			if (any_first || in_set(sp->first, (unsigned char)c))
				pl->x_first[h][c] |= (uint8_t)bit;
		}
		if (any_before)
			pl->x_before_hi[h] |= (uint8_t)bit;
		if (any_first)
			pl->x_first_hi[h] |= (uint8_t)bit;
		if (pl->minlen[k] <= 64)
			pl->x_fits[h] |= (uint8_t)bit;
		for (unsigned q = 0; q < 6; q++) {
			pl->x_steps[h][q][l % 8] = pl->steps[k][q];
			if (pl->steps[k][q] && q + 1 > pl->x_nsteps[h])
				pl->x_nsteps[h] = (uint8_t)(q + 1);
		}
		pl->x_body[h][l % 8] = sp->min ? sp->min : 1;
		pl->x_seps[h][l % 8] = sp->min_seps;
	}
}

SCAN_INLINE int scan(const struct exai__run_plan *pl, const char *text, size_t len, exai__run_fn fn, void *ud, int impl)
{
	const unsigned n = pl->n;
	const bool fast = impl >= EXAI__SIMD_AVX2;
	const uint8_t *p = (const uint8_t *)text;
	size_t cin[MAX_SPECS] = { 0 }; /* the length of each spec's run that reaches the block */
	uint64_t R[MAX_SPECS], J[MAX_SPECS];
	struct blk b;
	uint8_t tail[64];
	size_t nblocks = (len + 63) / 64;
	for (size_t i = 0; i < nblocks; i++) {
		const uint8_t *src = p + 64 * i;
		size_t left = len - 64 * i;
		if (left < 64) {
			memset(tail, 0, sizeof(tail));
			memcpy(tail, src, left);
			src = tail;
		}
#ifdef HAVE_X86
		if (impl == EXAI__SIMD_AVX2)
			blk_avx2(pl, src, &b);
		else if (impl == EXAI__SIMD_SSSE3)
			blk_ssse3(pl, src, &b);
		else
#endif
			blk_scalar(pl, src, &b);
		/* per class, where a separator has class bytes on both sides (the bytes next to the
		 * block: the last before it, the first after it) */
		unsigned before = i ? class_tab[p[64 * i - 1]] : 0, after = left > 64 ? class_tab[p[64 * i + 64]] : 0;
		uint64_t between[EXAI__RUN_COUNT];
		for (int c = 0; c < EXAI__RUN_COUNT; c++) {
			uint64_t B = b.cls[c];
			between[c] = ((B << 1) | (before >> c & 1)) & ((B >> 1) | (uint64_t)(after >> c & 1) << 63);
		}
		uint32_t hot = 0;
		for (unsigned k = 0; k < n; k++) {
			unsigned c = pl->cls_of[k];
			uint64_t j = b.set[pl->set_of[k]] & (pl->adj[k] | between[c]), r = b.cls[c] | j;
			/* a run long enough within the block (with a separator, when one is needed, or
			 * carried in with the run), or one that ends here after the length carried in */
			bool within = ((at_least(r, pl->steps[k]) & pl->fits[k]) != 0) & ((j | pl->any_j[k] | cin[k]) != 0);
			bool ends = cin[k] && cin[k] + tz64(~r) >= pl->minlen[k];
			hot |= (uint32_t)(within | ends) << k;
			R[k] = r;
			J[k] = j;
		}
		for (; hot; hot &= hot - 1) {
			unsigned k = (unsigned)__builtin_ctz(hot);
			int r = spec_runs(pl, k, R[k], J[k], cin[k], SIZE_MAX, 0, p, 64 * i, fn, ud, fast);
			if (r)
				return r;
		}
		for (unsigned k = 0; k < n; k++)
			cin[k] = R[k] == ~0ull ? cin[k] + 64 : lz64(~R[k]);
	}
	return runs_at_end(pl, cin, NULL, NULL, p, len, fn, ud);
}

#ifdef HAVE_X86_64
/* AVX-512 (F, BW, VBMI, CD, VPOPCNTDQ, GFNI): eight specs at a time, a 64-bit lane each.
 * Each byte of a block, of the byte before and of the byte after it is looked up in
 * class_tab (vpermi2b); its classes, and those its neighbours share, give a byte whose bit
 * k says the byte is of spec k's class, and another that it joins spec k's runs; a bit
 * transpose (the bytes as 8x8 bit matrices, gf2p8affineqb, then vpermb) turns the 64 such
 * bytes into each spec's masks. Per lane, branch-free: the runs of its shortest length
 * (at_least, shifts by lane), the bytes they cover, and whether those hold enough class
 * bytes and separators; whether the run carried in ends here long enough; the length carried
 * out. Only a spec with something found reads its runs as the other paths do. */
#define AVX512_TARGET "avx512f,avx512bw,avx512vl,avx512vbmi,avx512cd,avx512vpopcntdq,gfni,popcnt,bmi"

struct x_half {
	__m512i specs, sep, sep_hi, adj, before, before_hi, first, first_hi, before_x, first_x, steps[6], body, seps;
	__mmask8 fits;
	bool ok;
	unsigned nsteps;
};

/* A spec's run that reaches the next block: its length and separators (the rest of its bytes
 * are of the class), and whether it starts where the spec lets a run start (1 or 0). */
struct x_carry {
	__m512i len, seps, ok;
};

/* One block: its bytes (@v), those one before (@vp), their ASCII bytes (@a, @ap), its classes
 * and those its two neighbours share, each with the bytes of every qword reversed (the order
 * the transpose takes); the transpose's constants. */
struct x_blk {
	__m512i v, vp, cls, betw, sel, gather;
	__mmask64 a, ap;
};

/* Bit k of byte i of @y (bytes reversed within qwords) into bit i of lane k. */
__attribute__((target(AVX512_TARGET))) static inline __m512i x_transpose(const struct x_blk *b, __m512i y)
{
	return _mm512_permutexvar_epi8(b->gather, _mm512_gf2p8affine_epi64_epi8(b->sel, y, 0));
}

/* Eight specs over one block: in lanes, their class bytes (@B), joining separators (@J) and
 * the bytes where a run may start (@ok; all when none of them asks). */
__attribute__((target(AVX512_TARGET))) static inline __attribute__((always_inline)) void
x_masks(const struct x_half *x, const struct x_blk *b, __m512i *B, __m512i *J, __m512i *ok)
{
	__m512i yb = _mm512_permutexvar_epi8(b->cls, x->specs);
	__m512i ys = _mm512_maskz_permutex2var_epi8(b->a, x->sep, b->v, x->sep_hi);
	/* joins: in the set, and adjacent or between two class bytes */
	__m512i yj = _mm512_and_si512(ys, _mm512_or_si512(x->adj, _mm512_permutexvar_epi8(b->betw, x->specs)));
	*B = x_transpose(b, yb);
	*J = x_transpose(b, yj);
	if (!x->ok) {
		*ok = _mm512_set1_epi64(-1);
		return;
	}
	/* the byte before the run and its first byte as asked */
	*ok = x_transpose(b, _mm512_and_si512(
				     _mm512_mask_mov_epi8(_mm512_permutex2var_epi8(x->before, b->vp, x->before_hi), ~b->ap, x->before_x),
				     _mm512_mask_mov_epi8(_mm512_permutex2var_epi8(x->first, b->v, x->first_hi), ~b->a, x->first_x)));
}

/* The lanes' work, for eight lanes (zmm) or four (ymm: half the work where a zmm operation
 * takes two): X_LANES(W) defines x_lanes_W. Per lane, branch-free: the runs of its shortest
 * length that start where they may (at_least, shifts by lane), whether the bytes such runs
 * cover hold enough class bytes and separators; whether the run carried in ends here with
 * enough of each; what is carried out. Returns the lanes with a run to report. */
#define X512(op) X512_##op
#define X512_AND _mm512_and_si512
#define X512_OR _mm512_or_si512
#define X512_ANDN _mm512_andnot_si512
#define X512_XOR _mm512_xor_si512
#define X512_SRLV _mm512_srlv_epi64
#define X512_SLLV _mm512_sllv_epi64
#define X512_SLLI _mm512_slli_epi64
#define X512_ADD _mm512_add_epi64
#define X512_SUB _mm512_sub_epi64
#define X512_POPC _mm512_popcnt_epi64
#define X512_LZC _mm512_lzcnt_epi64
#define X512_SET1 _mm512_set1_epi64
#define X512_TERN _mm512_ternarylogic_epi64
#define X512_TEST _mm512_test_epi64_mask
#define X512_GE _mm512_cmpge_epu64_mask
#define X512_EQ _mm512_cmpeq_epi64_mask
#define X512_MADD _mm512_mask_add_epi64
#define X512_MZMOV _mm512_maskz_mov_epi64
#define X512_MMOV _mm512_mask_mov_epi64
#define X512_V __m512i
#define X512_IN(v) (v)
#define X512_OUT(v) (v)
#define X256(op) X256_##op
#define X256_AND _mm256_and_si256
#define X256_OR _mm256_or_si256
#define X256_ANDN _mm256_andnot_si256
#define X256_XOR _mm256_xor_si256
#define X256_SRLV _mm256_srlv_epi64
#define X256_SLLV _mm256_sllv_epi64
#define X256_SLLI _mm256_slli_epi64
#define X256_ADD _mm256_add_epi64
#define X256_SUB _mm256_sub_epi64
#define X256_POPC _mm256_popcnt_epi64
#define X256_LZC _mm256_lzcnt_epi64
#define X256_SET1 _mm256_set1_epi64x
#define X256_TERN _mm256_ternarylogic_epi64
#define X256_TEST _mm256_test_epi64_mask
#define X256_GE _mm256_cmpge_epu64_mask
#define X256_EQ _mm256_cmpeq_epi64_mask
#define X256_MADD _mm256_mask_add_epi64
#define X256_MZMOV _mm256_maskz_mov_epi64
#define X256_MMOV _mm256_mask_mov_epi64
#define X256_V __m256i
#define X256_IN(v) _mm512_castsi512_si256(v)
#define X256_OUT(v) _mm512_castsi256_si512(v)
/* v = v op (v shifted by step q) */
#define X_STEP(W, v, op, shift, q) v = X##W(op)(v, X##W(shift)(v, X##W(IN)(x->steps[q])))
#define X_LANES(W)                                                                                                      \
	__attribute__((target(AVX512_TARGET))) static inline __attribute__((always_inline)) __mmask8 x_lanes_##W(       \
		const struct x_half *x, __m512i B_, __m512i J_, __m512i ok_, const struct x_carry *c, __m512i *R)      \
	{                                                                                                               \
		const X##W(V) ones = X##W(SET1)(-1), B = X##W(IN)(B_), J = X##W(IN)(J_), r = X##W(OR)(B, J);           \
		const X##W(V) clen = X##W(IN)(c->len), cseps = X##W(IN)(c->seps);                                     \
		X##W(V) xs = r, cov;                                                                                    \
		X_STEP(W, xs, AND, SRLV, 0);                                                                            \
		X_STEP(W, xs, AND, SRLV, 1);                                                                            \
		X_STEP(W, xs, AND, SRLV, 2);                                                                            \
		X_STEP(W, xs, AND, SRLV, 3);                                                                            \
		if (x->nsteps > 4) { /* runs of 17 or more */                                                          \
			X_STEP(W, xs, AND, SRLV, 4);                                                                    \
			X_STEP(W, xs, AND, SRLV, 5);                                                                    \
		}                                                                                                       \
		cov = xs;                                                                                               \
		X_STEP(W, cov, OR, SLLV, 0);                                                                            \
		X_STEP(W, cov, OR, SLLV, 1);                                                                            \
		X_STEP(W, cov, OR, SLLV, 2);                                                                            \
		X_STEP(W, cov, OR, SLLV, 3);                                                                            \
		if (x->nsteps > 4) {                                                                                    \
			X_STEP(W, cov, OR, SLLV, 4);                                                                    \
			X_STEP(W, cov, OR, SLLV, 5);                                                                    \
		}                                                                                                       \
		X##W(V) starts = X##W(TERN)(xs, X##W(SLLI)(r, 1), X##W(IN)(ok_), 0x20 /* a & ~b & c */);               \
		X##W(V) nlen = X##W(POPC)(cov), nseps = X##W(POPC)(X##W(AND)(J, cov));                                 \
		__mmask8 within = X##W(TEST)(starts, starts) & x->fits & X##W(GE)(nseps, X##W(IN)(x->seps)) &          \
				  X##W(GE)(X##W(SUB)(nlen, nseps), X##W(IN)(x->body));                                  \
		/* the run carried in: r's trailing ones */                                                             \
		__mmask8 full = X##W(EQ)(r, ones);                                                                      \
		X##W(V) lead = X##W(ANDN)(X##W(SUB)(r, ones), r);                                                       \
		X##W(V) elen = X##W(ADD)(clen, X##W(POPC)(lead)), eseps = X##W(ADD)(cseps, X##W(POPC)(X##W(AND)(J, lead))); \
		/* (enough class bytes and separators: long enough) */                                                 \
		__mmask8 ends = X##W(TEST)(clen, clen) & X##W(TEST)(X##W(IN)(c->ok), X##W(IN)(c->ok)) & ~full &        \
				X##W(GE)(eseps, X##W(IN)(x->seps)) & X##W(GE)(X##W(SUB)(elen, eseps), X##W(IN)(x->body)); \
		*R = X##W(OUT)(r);                                                                                      \
		return within | ends;                                                                                   \
	}                                                                                                               \
	/* carried out: the run reaching the block's end, r's leading ones */                                          \
	__attribute__((target(AVX512_TARGET))) static inline __attribute__((always_inline)) void x_carry_##W(          \
		__m512i R_, __m512i J_, __m512i OK_, struct x_carry *c)                                                 \
	{                                                                                                               \
		const X##W(V) ones = X##W(SET1)(-1), r = X##W(IN)(R_), J = X##W(IN)(J_), OK = X##W(IN)(OK_);          \
		const X##W(V) clen = X##W(IN)(c->len), cseps = X##W(IN)(c->seps);                                     \
		__mmask8 full = X##W(EQ)(r, ones), goes_on = full & X##W(TEST)(clen, clen);                             \
		X##W(V) top = X##W(LZC)(X##W(XOR)(r, ones));                                                            \
		X##W(V) tail = X##W(ANDN)(X##W(SRLV)(ones, top), ones);                                                 \
		/* where the run starts: bit 64 - top (0 when the whole block is in it) */                             \
		X##W(V) ok = X##W(AND)(X##W(SRLV)(OK, X##W(SUB)(X##W(SET1)(64), top)), X##W(SET1)(1));                  \
		c->ok = X##W(OUT)(X##W(MMOV)(ok, goes_on, X##W(IN)(c->ok)));                                          \
		c->len = X##W(OUT)(X##W(MADD)(top, full, clen, X##W(SET1)(64)));                                      \
		c->seps = X##W(OUT)(X##W(ADD)(X##W(POPC)(X##W(AND)(J, tail)), X##W(MZMOV)(full, cseps)));             \
	}
X_LANES(512)
X_LANES(256)

/* The hot lanes (@hot) of eight read their runs. */
__attribute__((target(AVX512_TARGET))) static int x_hot(const struct exai__run_plan *pl, unsigned h, __mmask8 hot, __m512i Rv,
							 __m512i Jv, const struct x_carry *c, const uint8_t *text, size_t base,
							 exai__run_fn fn, void *ud)
{
	uint64_t R[8], J[8];
	size_t len[8], seps[8]; /* 64-bit lanes: size_t is 64 bits on x86-64 */
	_mm512_storeu_si512(R, Rv);
	_mm512_storeu_si512(J, Jv);
	_mm512_storeu_si512(len, c->len);
	_mm512_storeu_si512(seps, c->seps);
	for (unsigned m = hot; m; m &= m - 1) {
		unsigned l = (unsigned)__builtin_ctz(m);
		int r = spec_runs(pl, pl->x_spec[8 * h + l], R[l], J[l], len[l], len[l] - seps[l], seps[l], text, base, fn,
				  ud, true);
		if (r)
			return r;
	}
	return 0;
}

__attribute__((target(AVX512_TARGET))) static int scan_avx512(const struct exai__run_plan *pl, const char *text,
							       size_t len, exai__run_fn fn, void *ud)
{
	const uint8_t *p = (const uint8_t *)text;
	const unsigned n = pl->n;
	struct x_blk b;
	const __m512i rev = _mm512_loadu_si512(pl->x_rev);
	b.sel = _mm512_loadu_si512(pl->x_sel);
	b.gather = _mm512_loadu_si512(pl->x_gather);
	const __m512i prev_i = _mm512_loadu_si512(pl->x_prev), next_i = _mm512_loadu_si512(pl->x_next);
	const __m512i ct_lo = _mm512_loadu_si512(class_tab), ct_hi = _mm512_loadu_si512(class_tab + 64);
	struct x_half hv[2];
	struct x_carry c[2];
	for (unsigned h = 0; h < 2; h++) {
		hv[h].specs = _mm512_loadu_si512(pl->x_specs[h]);
		hv[h].sep = _mm512_loadu_si512(pl->x_sep[h]);
		hv[h].sep_hi = _mm512_loadu_si512(pl->x_sep[h] + 64);
		hv[h].adj = _mm512_set1_epi8((char)pl->x_adj[h]);
		hv[h].before = _mm512_loadu_si512(pl->x_before[h]);
		hv[h].before_hi = _mm512_loadu_si512(pl->x_before[h] + 64);
		hv[h].first = _mm512_loadu_si512(pl->x_first[h]);
		hv[h].first_hi = _mm512_loadu_si512(pl->x_first[h] + 64);
		hv[h].before_x = _mm512_set1_epi8((char)pl->x_before_hi[h]);
		hv[h].first_x = _mm512_set1_epi8((char)pl->x_first_hi[h]);
		for (unsigned q = 0; q < 6; q++)
			hv[h].steps[q] = _mm512_loadu_si512(pl->x_steps[h][q]);
		hv[h].body = _mm512_loadu_si512(pl->x_body[h]);
		hv[h].seps = _mm512_loadu_si512(pl->x_seps[h]);
		hv[h].fits = pl->x_fits[h];
		hv[h].ok = pl->x_ok[h];
		hv[h].nsteps = pl->x_nsteps[h];
		c[h].len = c[h].seps = c[h].ok = _mm512_setzero_si512();
	}
	/* the second eight: four lanes (ymm) where there are at most twelve specs */
	const int wide = n <= 8 ? 0 : n <= 12 ? 1 : 2;
	/* each block is loaded and classified once (masked at the text's end: nothing outside it
	 * is read, and those bytes count as 0, of no class); the bytes and classes one before and
	 * one after a block come from it and its neighbours */
	size_t nblocks = (len + 63) / 64;
	__m512i prev = _mm512_setzero_si512(), prev_cls = prev;
	__m512i cur = _mm512_shuffle_epi8(_mm512_maskz_loadu_epi8(len >= 64 ? ~0ull : ~0ull >> (64 - len), p), rev);
	__mmask64 cur_a = ~_mm512_movepi8_mask(cur);
	__m512i cur_cls = _mm512_maskz_permutex2var_epi8(cur_a, ct_lo, cur, ct_hi);
	for (size_t i = 0; i < nblocks; i++) {
		size_t left = len - 64 * i;
		__m512i next = left <= 64 ? _mm512_setzero_si512()
		       : left >= 128     ? _mm512_loadu_si512(p + 64 * i + 64)
					 : _mm512_maskz_loadu_epi8(~0ull >> (128 - left), p + 64 * i + 64);
		_mm_prefetch((const char *)p + 64 * i + 1024, _MM_HINT_T0); /* (past the end: a hint, no fault) */
		next = _mm512_shuffle_epi8(next, rev);
		__mmask64 next_a = ~_mm512_movepi8_mask(next);
		__m512i next_cls = _mm512_maskz_permutex2var_epi8(next_a, ct_lo, next, ct_hi);
		b.v = cur;
		b.a = cur_a;
		b.vp = _mm512_permutex2var_epi8(prev, prev_i, cur);
		b.ap = ~_mm512_movepi8_mask(b.vp);
		b.cls = cur_cls;
		b.betw = _mm512_and_si512(_mm512_permutex2var_epi8(prev_cls, prev_i, cur_cls),
					  _mm512_permutex2var_epi8(cur_cls, next_i, next_cls));
		prev = cur;
		prev_cls = cur_cls;
		cur = next;
		cur_a = next_a;
		cur_cls = next_cls;
		__m512i B0, J0, ok0, R0, B1, J1 = _mm512_setzero_si512(), ok1 = J1, R1 = J1;
		x_masks(&hv[0], &b, &B0, &J0, &ok0);
		__mmask8 hot0 = x_lanes_512(&hv[0], B0, J0, ok0, &c[0], &R0), hot1 = 0;
		if (wide) {
			x_masks(&hv[1], &b, &B1, &J1, &ok1);
			hot1 = wide == 1 ? x_lanes_256(&hv[1], B1, J1, ok1, &c[1], &R1) : x_lanes_512(&hv[1], B1, J1, ok1, &c[1], &R1);
		}
		if (hot0 | hot1) {
			int r = hot0 ? x_hot(pl, 0, hot0, R0, J0, &c[0], p, 64 * i, fn, ud) : 0;
			if (r == 0 && hot1)
				r = x_hot(pl, 1, hot1, R1, J1, &c[1], p, 64 * i, fn, ud);
			if (r)
				return r;
		}
		x_carry_512(R0, J0, ok0, &c[0]);
		if (wide == 1)
			x_carry_256(R1, J1, ok1, &c[1]);
		else if (wide)
			x_carry_512(R1, J1, ok1, &c[1]);
	}
	/* the runs carried to the end, by spec */
	size_t cl[MAX_SPECS], cs[MAX_SPECS], cin[MAX_SPECS], cbody[MAX_SPECS], cseps[MAX_SPECS];
	for (unsigned h = 0; h < 2; h++) {
		_mm512_storeu_si512(cl + 8 * h, c[h].len);
		_mm512_storeu_si512(cs + 8 * h, c[h].seps);
	}
	for (unsigned l = 0; l < MAX_SPECS; l++) {
		unsigned k = pl->x_spec[l];
		if (k == 0xff)
			continue;
		cin[k] = cl[l];
		cbody[k] = cl[l] - cs[l];
		cseps[k] = cs[l];
	}
	return runs_at_end(pl, cin, cbody, cseps, p, len, fn, ud);
}
#endif

#ifdef HAVE_X86
__attribute__((target("avx2,popcnt,bmi"))) static int scan_avx2(const struct exai__run_plan *pl, const char *text,
								 size_t len, exai__run_fn fn, void *ud)
{
	return scan(pl, text, len, fn, ud, EXAI__SIMD_AVX2);
}

__attribute__((target("ssse3"))) static int scan_ssse3(const struct exai__run_plan *pl, const char *text, size_t len,
						       exai__run_fn fn, void *ud)
{
	return scan(pl, text, len, fn, ud, EXAI__SIMD_SSSE3);
}
#endif

static int scan_scalar(const struct exai__run_plan *pl, const char *text, size_t len, exai__run_fn fn, void *ud)
{
	return scan(pl, text, len, fn, ud, EXAI__SIMD_SCALAR);
}

int exai__runs_scan_plan(const struct exai__run_plan *pl, const char *text, size_t len, exai__run_fn fn, void *ud,
			 int impl)
{
	if (pl->n == 0 || len == 0)
		return 0;
	int best = have_simd();
	if (impl == EXAI__SIMD_BEST || impl > best)
		impl = best;
#ifdef HAVE_X86_64
	if (impl == EXAI__SIMD_AVX512)
		return scan_avx512(pl, text, len, fn, ud);
#endif
#ifdef HAVE_X86
	if (impl == EXAI__SIMD_AVX2)
		return scan_avx2(pl, text, len, fn, ud);
	if (impl == EXAI__SIMD_SSSE3)
		return scan_ssse3(pl, text, len, fn, ud);
#endif
	return scan_scalar(pl, text, len, fn, ud);
}

int exai__runs_scan(const struct exai__run_spec *specs, unsigned n, const char *text, size_t len, exai__run_fn fn,
		    void *ud, int impl)
{
	struct exai__run_plan pl;
	exai__runs_plan(&pl, specs, n);
	return exai__runs_scan_plan(&pl, text, len, fn, ud, impl);
}
