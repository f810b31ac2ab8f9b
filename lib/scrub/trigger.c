/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trigger.c: the run finders that trigger the literal-free patterns (payment cards, IBAN, SSN,
 * IP addresses, cryptocurrency addresses, quoted high-entropy strings, ...): runs of one byte
 * class (digits, hex, A-Z0-9, base58, base64) that separators may join, found 64 bytes at a time.
 * Each block is classified once into a mask per class and per separator byte (AVX2 or SSSE3
 * nibble tables, chosen at run time, or a portable table: all give the same masks,
 * tests/unit/test-scrub-trigger.c); a class whose bytes and separators hold no run long enough
 * for any of its specs costs a few shifts, and only the others read their runs from the masks.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
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
#define MAX_SEPS 16

/* ---- the class masks of one 64-byte block -------------------------------------------------
 *
 * Every block is classified once into one mask per class (bit i: byte i is of the class) and
 * one per distinct separator byte; the specs read them. The SIMD paths look each byte's two
 * nibbles up in two 16-byte tables (pshufb) whose AND gives eight bits, each a rectangle of
 * (high nibble, low nibble) pairs, and derive the classes from them: */
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
	uint64_t sep[MAX_SEPS];
	uint64_t set[3 * MAX_SPECS]; /* per separator set (struct scan_plan) */
};

struct scan_plan {
	unsigned n;
	const struct exai__run_spec *sp;
	uint8_t sepc[MAX_SEPS];
	unsigned n_sepc;
	uint32_t sep_of[MAX_SPECS]; /* bit q: spec k joins with separator sepc[q] */
	unsigned minlen[MAX_SPECS]; /* class bytes + separators a reported run holds at least */
	uint8_t steps[MAX_SPECS][16], n_steps[MAX_SPECS]; /* at_least's shifts for minlen */
	/* per class: its specs (bits), the separators any of them joins with (adjacent or
	 * not), and the shortest run any of them reports: a block whose class bytes and those
	 * separators hold no run that long, with no run carried in, is skipped for all of them
	 * at once (a run reaching its end is read when the next block makes it long enough) */
	uint32_t specs_of[EXAI__RUN_COUNT], gate_sep[EXAI__RUN_COUNT], gate_adj[EXAI__RUN_COUNT];
	uint8_t gate_steps[EXAI__RUN_COUNT][16], gate_n_steps[EXAI__RUN_COUNT];
	unsigned gate_min[EXAI__RUN_COUNT];
	unsigned classes; /* bit c: class c in use */
	/* the distinct separator sets the specs and gates use, each as its bytes' indices in
	 * sepc: set j is the OR of sep[set_q[j][0 .. set_n[j])] */
	uint8_t set_q[3 * MAX_SPECS][MAX_SEPS], set_n[3 * MAX_SPECS];
	unsigned n_sets;
	uint8_t set_of[MAX_SPECS], gate_set[EXAI__RUN_COUNT], gate_adj_set[EXAI__RUN_COUNT];
	uint32_t sep_tab[256]; /* the scalar path's: bit q for separator sepc[q] (last: only it fills it) */
};

static void blk_scalar(const struct scan_plan *pl, const uint8_t *p, struct blk *m)
{
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < 64; i++) {
		unsigned c = class_tab[p[i]];
		for (unsigned k = 0; c; k++, c >>= 1)
			m->cls[k] |= (uint64_t)(c & 1) << i;
		uint32_t s = pl->sep_tab[p[i]];
		for (unsigned q = 0; s; q++, s >>= 1)
			m->sep[q] |= (uint64_t)(s & 1) << i;
	}
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
__attribute__((target("ssse3"))) static inline void blk_ssse3(const struct scan_plan *pl, const uint8_t *p, struct blk *m)
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
}

#define MM32(x) ((uint64_t)(uint32_t)_mm256_movemask_epi8(x))
#define MM64(x0, x1) (MM32(x0) | MM32(x1) << 32)
__attribute__((target("avx2"))) static inline void blk_avx2(const struct scan_plan *pl, const uint8_t *p, struct blk *m)
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
}
#endif

/* ---- runs from masks --------------------------------------------------------------------- */

/* The scan is compiled three times, for AVX2 (with popcnt and BMI1, which every AVX2 CPU has
 * and have_simd() checks), SSSE3 and the baseline:
 * what it calls is inlined into each, and @fast says whether popcnt may be used. */
#define SCAN_INLINE static inline __attribute__((always_inline))

struct run_state {
	bool in;
	size_t start;
	unsigned seps; /* the run's class bytes are its length less its separators */
};

/* The shifts after which bit i of r & r >> s1 & ... says r[i .. i + n - 1] are all set. */
static unsigned schedule(uint8_t *steps, unsigned n)
{
	unsigned have = 1, k = 0;
	while (have < n && have < 64) {
		unsigned step = have <= n - have ? have : n - have;
		steps[k++] = (uint8_t)step;
		have += step;
	}
	return have < n ? 0xff : k; /* 0xff: no run of n fits a word */
}

/* Bit i set when r[i .. i + n - 1] are all set (within the word), by the schedule for n (its
 * shifts commute: unrolled, no loop). */
SCAN_INLINE uint64_t at_least(uint64_t r, const uint8_t *steps, unsigned n_steps)
{
	switch (n_steps) {
	case 6:
		r &= r >> steps[5];
		__attribute__((fallthrough));
	case 5:
		r &= r >> steps[4];
		__attribute__((fallthrough));
	case 4:
		r &= r >> steps[3];
		__attribute__((fallthrough));
	case 3:
		r &= r >> steps[2];
		__attribute__((fallthrough));
	case 2:
		r &= r >> steps[1];
		__attribute__((fallthrough));
	case 1:
		r &= r >> steps[0];
		__attribute__((fallthrough));
	case 0:
		return r;
	default: /* 0xff: no run of n fits a word */
		return 0;
	}
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

/* The runs of spec @k in one block: R the run bytes, J the joining separators; @base the
 * block's offset. */
SCAN_INLINE int block_runs(const struct scan_plan *pl, unsigned k, struct run_state *st, uint64_t R, uint64_t J,
			   const uint8_t *text, size_t base, exai__run_fn fn, void *ud, bool fast)
{
	const struct exai__run_spec *sp = &pl->sp[k];
	int r;
	if (st->in) {
		if (R == ~0ull) {
			if (J)
				st->seps += popc(J, fast);
			return 0;
		}
		unsigned l = (unsigned)__builtin_ctzll(~R);
		uint64_t m = l ? ~0ull >> (64 - l) : 0;
		if (J & m)
			st->seps += popc(J & m, fast);
		st->in = false;
		size_t end = base + l;
		if ((r = report(sp, k, text, st->start, end, (unsigned)(end - st->start) - st->seps, st->seps, fn, ud)))
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
	uint64_t x = popc(R, fast) >= pl->minlen[k] ? at_least(R, pl->steps[k], pl->n_steps[k]) : 0;
	while (x) {
		unsigned s = (unsigned)__builtin_ctzll(x);
		unsigned l = (unsigned)__builtin_ctzll(~(R >> s)); /* R's top bit is clear: ~(R >> s) != 0 */
		uint64_t m = (~0ull >> (64 - l)) << s;
		unsigned seps = J & m ? popc(J & m, fast) : 0;
		if ((r = report(sp, k, text, base + s, base + s + l, l - seps, seps, fn, ud)))
			return r;
		x &= s + l >= 64 ? 0 : ~0ull << (s + l);
	}
	if (carry) {
		st->in = true;
		st->start = base + (unsigned)__builtin_ctzll(carry);
		st->seps = J & carry ? popc(J & carry, fast) : 0;
	}
	return 0;
}

static int have_simd(void)
{
#ifdef HAVE_X86
	static int cached = -1;
	if (cached < 0)
		cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi")
				 ? EXAI__SIMD_AVX2
			 : __builtin_cpu_supports("ssse3") ? EXAI__SIMD_SSSE3
							   : EXAI__SIMD_SCALAR;
	return cached;
#else
	return EXAI__SIMD_SCALAR;
#endif
}

static void plan_scan(struct scan_plan *pl, const struct exai__run_spec *specs, unsigned n, bool scalar)
{
	memset(pl, 0, offsetof(struct scan_plan, sep_tab));
	pl->n = n;
	pl->sp = specs;
	unsigned *gate_min = pl->gate_min;
	for (int c = 0; c < EXAI__RUN_COUNT; c++)
		gate_min[c] = ~0u;
	for (unsigned k = 0; k < n; k++) {
		const struct exai__run_spec *sp = &specs[k];
		for (unsigned q = 0; q < sp->n_seps; q++) {
			uint8_t ch = sp->seps[q];
			if (class_tab[ch] >> sp->run & 1)
				continue; /* a class byte is no separator */
			unsigned j = 0;
			while (j < pl->n_sepc && pl->sepc[j] != ch)
				j++;
			if (j == pl->n_sepc && pl->n_sepc < MAX_SEPS)
				pl->sepc[pl->n_sepc++] = ch;
			if (j < pl->n_sepc)
				pl->sep_of[k] |= 1u << j;
		}
		pl->minlen[k] = (sp->min ? sp->min : 1) + sp->min_seps;
		pl->n_steps[k] = (uint8_t)schedule(pl->steps[k], pl->minlen[k]);
		pl->specs_of[sp->run] |= 1u << k;
		pl->classes |= 1u << sp->run;
		if (sp->adjacent)
			pl->gate_adj[sp->run] |= pl->sep_of[k];
		else
			pl->gate_sep[sp->run] |= pl->sep_of[k];
		if (pl->minlen[k] < gate_min[sp->run])
			gate_min[sp->run] = pl->minlen[k];
	}
	for (int c = 0; c < EXAI__RUN_COUNT; c++)
		if (pl->classes >> c & 1)
			pl->gate_n_steps[c] = (uint8_t)schedule(pl->gate_steps[c], gate_min[c]);
	uint32_t sets[3 * MAX_SPECS] = { 0 };
	for (unsigned k = 0; k < n + 2 * EXAI__RUN_COUNT; k++) {
		uint32_t of = k < n ? pl->sep_of[k] : k < n + EXAI__RUN_COUNT ? pl->gate_sep[k - n] : pl->gate_adj[k - n - EXAI__RUN_COUNT];
		unsigned j = 0;
		while (j < pl->n_sets && sets[j] != of)
			j++;
		if (j == pl->n_sets) {
			sets[pl->n_sets++] = of;
			for (unsigned q = 0; q < MAX_SEPS; q++)
				if (of >> q & 1)
					pl->set_q[j][pl->set_n[j]++] = (uint8_t)q;
		}
		if (k < n)
			pl->set_of[k] = (uint8_t)j;
		else if (k < n + EXAI__RUN_COUNT)
			pl->gate_set[k - n] = (uint8_t)j;
		else
			pl->gate_adj_set[k - n - EXAI__RUN_COUNT] = (uint8_t)j;
	}
	if (scalar) {
		memset(pl->sep_tab, 0, sizeof(pl->sep_tab));
		for (unsigned q = 0; q < pl->n_sepc; q++)
			pl->sep_tab[pl->sepc[q]] |= 1u << q;
	}
}

/* The masks of the separator sets, from those of the separator bytes. */
SCAN_INLINE void blk_sets(const struct scan_plan *pl, struct blk *b)
{
	for (unsigned j = 0; j < pl->n_sets; j++) {
		uint64_t m = 0;
		for (unsigned i = 0; i < pl->set_n[j]; i++)
			m |= b->sep[pl->set_q[j][i]];
		b->set[j] = m;
	}
}

/* The specs of class @c over one block: @lo and @hi its class mask shifted in from either side. */
SCAN_INLINE int class_runs(const struct scan_plan *pl, unsigned c, const struct blk *b, uint64_t lo, uint64_t hi,
			   struct run_state *st, uint32_t *in_runs, const uint8_t *text, size_t base, exai__run_fn fn,
			   void *ud, bool fast)
{
	int r = 0;
	uint64_t B = b->cls[c];
	for (uint32_t ks = pl->specs_of[c]; ks && r == 0; ks &= ks - 1) {
		unsigned k = (unsigned)__builtin_ctz(ks);
		uint64_t S = b->set[pl->set_of[k]];
		uint64_t J = pl->sp[k].adjacent ? S : S & lo & hi;
		if (!J && pl->sp[k].min_seps && !st[k].in && !(B >> 63))
			continue; /* no run within the block has a separator, none comes in or goes on */
		r = block_runs(pl, k, &st[k], B | J, J, text, base, fn, ud, fast);
		*in_runs = (*in_runs & ~(1u << k)) | (uint32_t)st[k].in << k;
	}
	return r;
}

SCAN_INLINE int scan(const struct scan_plan *plp, const char *text, size_t len, exai__run_fn fn, void *ud, int impl)
{
	const struct scan_plan *pl = plp;
	const struct exai__run_spec *specs = pl->sp;
	unsigned n = pl->n;
	const bool fast = impl == EXAI__SIMD_AVX2;
	struct run_state st[MAX_SPECS];
	memset(st, 0, sizeof(st));
	uint32_t in_runs = 0; /* bit k: spec k has a run carried into this block */
	uint64_t prev_top[EXAI__RUN_COUNT] = { 0 }; /* bit 63 of the previous block's class mask */
	/* A class skips a block whose gate mask G holds no run of its shortest minimum, even when
	 * a G-run reaches the block's end: it keeps that run's length, and the block's masks; when
	 * the next block makes the run long enough, the skipped block is read first. */
	unsigned gcarry[EXAI__RUN_COUNT] = { 0 };
	uint64_t skipped_lo[EXAI__RUN_COUNT], skipped_hi[EXAI__RUN_COUNT];
	struct blk bb[2];
	uint8_t tail[64];
	const uint8_t *p = (const uint8_t *)text;
	size_t nblocks = (len + 63) / 64;
	int r = 0;
	for (size_t i = 0; i < nblocks && r == 0; i++) {
		struct blk *b = &bb[i & 1];
		const struct blk *prev = &bb[(i & 1) ^ 1];
		const uint8_t *src = p + 64 * i;
		if (64 * i + 64 > len) {
			memset(tail, 0, sizeof(tail));
			memcpy(tail, src, len - 64 * i);
			src = tail;
		}
#ifdef HAVE_X86
		if (impl == EXAI__SIMD_AVX2)
			blk_avx2(pl, src, b);
		else if (impl == EXAI__SIMD_SSSE3)
			blk_ssse3(pl, src, b);
		else
#endif
			blk_scalar(pl, src, b);
		blk_sets(pl, b);
		unsigned next_cls = 64 * i + 64 < len ? class_tab[p[64 * i + 64]] : 0; /* the byte after the block */
		for (uint32_t cs = pl->classes; cs && r == 0; cs &= cs - 1) {
			unsigned c = (unsigned)__builtin_ctz(cs);
			uint64_t B = b->cls[c], lo = (B << 1) | prev_top[c], hi = (B >> 1) | ((uint64_t)(next_cls >> c & 1) << 63);
			prev_top[c] = B >> 63;
			if (!(in_runs & pl->specs_of[c])) {
				/* the gate: every spec's run bytes are within G (no class byte, no run) */
				if (!B && !gcarry[c] && !pl->gate_adj[c])
					continue;
				uint64_t G = B | b->set[pl->gate_adj_set[c]] | (b->set[pl->gate_set[c]] & lo & hi);
				if (!G && !gcarry[c])
					continue;
				unsigned lead = G == ~0ull ? 64 : (unsigned)__builtin_ctzll(~G);
				bool need = (gcarry[c] && gcarry[c] + lead >= pl->gate_min[c]) || ((G >> 63) && pl->gate_min[c] > 64) ||
					    (popc(G, fast) >= pl->gate_min[c] && at_least(G, pl->gate_steps[c], pl->gate_n_steps[c]) != 0);
				if (!need) {
					gcarry[c] = G >> 63 ? (unsigned)__builtin_clzll(~G) : 0;
					skipped_lo[c] = lo;
					skipped_hi[c] = hi;
					continue;
				}
				if (gcarry[c]) /* a run that begins in the block skipped before */
					r = class_runs(pl, c, prev, skipped_lo[c], skipped_hi[c], st, &in_runs, p, 64 * (i - 1), fn, ud, fast);
				gcarry[c] = 0;
			}
			if (r == 0)
				r = class_runs(pl, c, b, lo, hi, st, &in_runs, p, 64 * i, fn, ud, fast);
		}
	}
	/* runs that reach the end of the text */
	for (unsigned k = 0; k < n && r == 0; k++)
		if (st[k].in)
			r = report(&specs[k], k, p, st[k].start, len, (unsigned)(len - st[k].start - st[k].seps), st[k].seps, fn, ud);
	return r;
}

#ifdef HAVE_X86
__attribute__((target("avx2,popcnt,bmi"))) static int scan_avx2(const struct scan_plan *pl, const char *text,
									    size_t len, exai__run_fn fn, void *ud)
{
	return scan(pl, text, len, fn, ud, EXAI__SIMD_AVX2);
}

__attribute__((target("ssse3"))) static int scan_ssse3(const struct scan_plan *pl, const char *text, size_t len,
						       exai__run_fn fn, void *ud)
{
	return scan(pl, text, len, fn, ud, EXAI__SIMD_SSSE3);
}
#endif

static int scan_scalar(const struct scan_plan *pl, const char *text, size_t len, exai__run_fn fn, void *ud)
{
	return scan(pl, text, len, fn, ud, EXAI__SIMD_SCALAR);
}

int exai__runs_scan(const struct exai__run_spec *specs, unsigned n, const char *text, size_t len, exai__run_fn fn,
		    void *ud, int impl)
{
	if (n == 0 || len == 0)
		return 0;
	if (n > MAX_SPECS)
		n = MAX_SPECS;
	int best = have_simd();
	if (impl == EXAI__SIMD_BEST || impl > best)
		impl = best;
	struct scan_plan pl;
	plan_scan(&pl, specs, n, impl == EXAI__SIMD_SCALAR);
#ifdef HAVE_X86
	if (impl == EXAI__SIMD_AVX2)
		return scan_avx2(&pl, text, len, fn, ud);
	if (impl == EXAI__SIMD_SSSE3)
		return scan_ssse3(&pl, text, len, fn, ud);
#endif
	return scan_scalar(&pl, text, len, fn, ud);
}
