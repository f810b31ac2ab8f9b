/* SPDX-License-Identifier: Apache-2.0 */
/* decode.c: finds runs of text that hide other text (base64, URL encoding, JSON/C string
 * escapes, hex) and decodes them with a map from each decoded byte back to its source bytes,
 * so that findings in the decoded text are reported at offsets of the original. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scrub-internal.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MIN_B64 24
#define MIN_HEX 32

void exai__decoded_free(struct exai__decoded *d)
{
	if (d->data)
		exai_memzero(d->data, d->len);
	free(d->data);
	free(d->src_start);
	free(d->src_end);
	memset(d, 0, sizeof(*d));
}

/* With @maps false nothing is stored: the first pass only counts the printable bytes (to see
 * whether the run is worth decoding and scanning). */
static int dec_alloc(struct exai__decoded *d, size_t n, bool maps)
{
	memset(d, 0, sizeof(*d));
	if (!maps)
		return 0;
	d->data = malloc(n + 1);
	d->src_start = malloc((n + 1) * sizeof(uint32_t));
	d->src_end = malloc((n + 1) * sizeof(uint32_t));
	if (!d->data || !d->src_start || !d->src_end) {
		exai__decoded_free(d);
		return -ENOMEM;
	}
	return 0;
}

static void dec_put(struct exai__decoded *d, char c, size_t from, size_t to)
{
	if (!d->data) {
		unsigned char u = (unsigned char)c;
		d->printable += (u >= 0x20 && u < 0x7f) || u == '\n' || u == '\r' || u == '\t';
		d->len++;
		return;
	}
	d->src_start[d->len] = (uint32_t)from;
	d->src_end[d->len] = (uint32_t)to;
	d->data[d->len++] = c;
}

/* Most of it printable text: worth scanning. */
static bool mostly_text(const struct exai__decoded *d)
{
	return d->len >= 8 && d->printable * 10 >= d->len * 9;
}

/* In the first pass, once more than a tenth of @bound (at least the decoded length) is not
 * printable, the run cannot be mostly text: its decoding stops there. */
static bool binary(const struct exai__decoded *d, size_t bound)
{
	return !d->data && (d->len - d->printable) * 10 > bound;
}

/* A first pass decodes the bytes alone; only text worth scanning is decoded again with its
 * map and handed to @fn. Returns 1 when the caller must run its second pass. */
static int emit(struct exai__decoded *d, int (*fn)(void *, const struct exai__decoded *), void *ud)
{
	int r = 0;
	if (!d->data) {
		r = mostly_text(d) ? 1 : 0;
	} else {
		d->data[d->len] = 0;
		r = fn(ud, d);
	}
	exai__decoded_free(d);
	return r;
}


long exai__b64_decode(uint8_t *out, const char *s, size_t n)
{
	while (n && s[n - 1] == '=')
		n--;
	uint32_t acc = 0;
	int bits = 0;
	long o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = exai__b64_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return n % 4 == 1 ? -1 : o;
}

static int hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int do_base64_pass(const char *t, size_t a, size_t b, int (*fn)(void *, const struct exai__decoded *), void *ud, bool maps)
{
	struct exai__decoded d;
	if (dec_alloc(&d, (b - a) * 3 / 4 + 3, maps) < 0)
		return -ENOMEM;
	uint32_t acc = 0;
	int bits = 0;
	size_t q = 0; /* chars consumed */
	for (size_t i = a; i < b && !binary(&d, (b - a) * 3 / 4); i++, q++) {
		acc = (acc << 6) | (uint32_t)exai__b64_value((unsigned char)t[i]);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			/* the byte's bits come from this character and the one before */
			dec_put(&d, (char)(acc >> bits), i - 1, i + 1);
		}
	}
	return emit(&d, fn, ud);
}

static int do_hex_pass(const char *t, size_t a, size_t b, int (*fn)(void *, const struct exai__decoded *), void *ud, bool maps)
{
	struct exai__decoded d;
	if (dec_alloc(&d, (b - a) / 2, maps) < 0)
		return -ENOMEM;
	for (size_t i = a; i + 1 < b && !binary(&d, (b - a) / 2); i += 2)
		dec_put(&d, (char)(hexv((unsigned char)t[i]) << 4 | hexv((unsigned char)t[i + 1])), i, i + 2);
	return emit(&d, fn, ud);
}

static int do_url_pass(const char *t, size_t a, size_t b, int (*fn)(void *, const struct exai__decoded *), void *ud, bool maps)
{
	struct exai__decoded d;
	if (dec_alloc(&d, b - a, maps) < 0)
		return -ENOMEM;
	for (size_t i = a; i < b && !binary(&d, b - a);) {
		if (t[i] == '%' && i + 3 <= b && hexv((unsigned char)t[i + 1]) >= 0 &&
		    hexv((unsigned char)t[i + 2]) >= 0) {
			dec_put(&d, (char)(hexv((unsigned char)t[i + 1]) << 4 | hexv((unsigned char)t[i + 2])), i, i + 3);
			i += 3;
		} else {
			dec_put(&d, t[i], i, i + 1);
			i++;
		}
	}
	return emit(&d, fn, ud);
}

static int do_escapes_pass(const char *t, size_t a, size_t b, int (*fn)(void *, const struct exai__decoded *), void *ud, bool maps)
{
	struct exai__decoded d;
	if (dec_alloc(&d, (b - a) * 3, maps) < 0)
		return -ENOMEM;
	for (size_t i = a; i < b && !binary(&d, b - a);) {
		if (t[i] != '\\' || i + 1 >= b) {
			dec_put(&d, t[i], i, i + 1);
			i++;
			continue;
		}
		char c = t[i + 1], out = 0;
		switch (c) {
		case 'n': out = '\n'; break;
		case 'r': out = '\r'; break;
		case 't': out = '\t'; break;
		case '"': out = '"'; break;
		case '\'': out = '\''; break;
		case '\\': out = '\\'; break;
		case '/': out = '/'; break;
		case '0': out = 0; break;
		default: break;
		}
		if (out || c == '0') {
			dec_put(&d, out, i, i + 2);
			i += 2;
		} else if (c == 'x' && i + 3 < b && hexv((unsigned char)t[i + 2]) >= 0 && hexv((unsigned char)t[i + 3]) >= 0) {
			dec_put(&d, (char)(hexv((unsigned char)t[i + 2]) << 4 | hexv((unsigned char)t[i + 3])), i, i + 4);
			i += 4;
		} else if (c == 'u' && i + 5 < b && hexv((unsigned char)t[i + 2]) >= 0 && hexv((unsigned char)t[i + 3]) >= 0 &&
			   hexv((unsigned char)t[i + 4]) >= 0 && hexv((unsigned char)t[i + 5]) >= 0) {
			unsigned u = (unsigned)(hexv((unsigned char)t[i + 2]) << 12 | hexv((unsigned char)t[i + 3]) << 8 |
						hexv((unsigned char)t[i + 4]) << 4 | hexv((unsigned char)t[i + 5]));
			/* UTF-8 of the BMP code point (surrogates pass as three bytes each) */
			if (u < 0x80) {
				dec_put(&d, (char)u, i, i + 6);
			} else if (u < 0x800) {
				dec_put(&d, (char)(0xc0 | u >> 6), i, i + 6);
				dec_put(&d, (char)(0x80 | (u & 0x3f)), i, i + 6);
			} else {
				dec_put(&d, (char)(0xe0 | u >> 12), i, i + 6);
				dec_put(&d, (char)(0x80 | ((u >> 6) & 0x3f)), i, i + 6);
				dec_put(&d, (char)(0x80 | (u & 0x3f)), i, i + 6);
			}
			i += 6;
		} else {
			dec_put(&d, t[i], i, i + 1);
			i++;
		}
	}
	return emit(&d, fn, ud);
}

/* Per byte: whether it is a base64 (or base64url) character, a hex digit, a lower-case or
 * upper-case letter or a digit. */
enum { C_B64 = 1, C_HEX = 2, C_LOWER = 4, C_UPPER = 8, C_DIGIT = 16 };
static unsigned char byte_class[256];
static pthread_once_t class_once = PTHREAD_ONCE_INIT;

static void class_init(void)
{
	for (int c = 0; c < 256; c++) {
		unsigned char k = 0;
		if (exai__b64_value((unsigned char)c) >= 0)
			k |= C_B64;
		if (hexv((unsigned char)c) >= 0)
			k |= C_HEX;
		if (c >= 'a' && c <= 'z')
			k |= C_LOWER;
		if (c >= 'A' && c <= 'Z')
			k |= C_UPPER;
		if (c >= '0' && c <= '9')
			k |= C_DIGIT;
		byte_class[c] = k;
	}
}

/* Whether [i, j) has a URL escape ('%' and two hex digits) or a string escape ('\\' and one of
 * the bytes that may follow it, or a NUL), found with memchr: such bytes are rare in text. */
static bool has_pct(const char *t, size_t i, size_t j)
{
	for (const char *p = t + i, *e = t + j; (p = memchr(p, '%', (size_t)(e - p))) != NULL; p++)
		if (e - p >= 3 && hexv((unsigned char)p[1]) >= 0 && hexv((unsigned char)p[2]) >= 0)
			return true;
	return false;
}

static bool has_esc(const char *t, size_t i, size_t j)
{
	for (const char *p = t + i, *e = t + j - 1; p < e && (p = memchr(p, '\\', (size_t)(e - p))) != NULL; p++)
		if (strchr("nrt\"'\\/xu0", p[1]))
			return true;
	return false;
}

/* ---- runs of a byte class ------------------------------------------------------------------ */

/* Bit i: byte i of the 64 at @p is a base64 character (EXAI__CR_B64) or one of stage 2's token
 * characters (EXAI__CR_TOKEN). */
#ifdef __SSE2__
static uint64_t class_mask16(__m128i v, int cls)
{
	__m128i low = _mm_or_si128(v, _mm_set1_epi8(0x20)); /* letters to lower case */
	__m128i letter = _mm_and_si128(_mm_cmpgt_epi8(low, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(low, _mm_set1_epi8('z' + 1)));
	/* '+' .. '9' (bytes above 0x7f are negative: outside) less ',' (and '.' for base64) */
	__m128i span = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('+' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
	span = _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')), span);
	__m128i m = _mm_or_si128(letter, _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
	if (cls == EXAI__CR_B64)
		m = _mm_or_si128(m, _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')), span));
	else
		m = _mm_or_si128(m, _mm_or_si128(span, _mm_cmpeq_epi8(v, _mm_set1_epi8('='))));
	return (uint64_t)(unsigned)_mm_movemask_epi8(m);
}
#endif

static uint64_t class_mask(const char *p, int cls, const bool *table)
{
#ifdef __SSE2__
	(void)table;
	uint64_t m = 0;
	for (int k = 0; k < 4; k++)
		m |= class_mask16(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k)), cls) << (16 * k);
	return m;
#else
	(void)cls;
	uint64_t m = 0;
	for (int i = 0; i < 64; i++)
		m |= (uint64_t)table[(unsigned char)p[i]] << i;
	return m;
#endif
}

static bool b64_table[256];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_table_init(void)
{
	for (int c = 0; c < 256; c++)
		b64_table[c] = exai__b64_value((unsigned char)c) >= 0;
}

/* Bit i of the result: r[i .. i + n - 1] are all set (within the word); none for n > 64. */
static uint64_t at_least(uint64_t r, size_t n)
{
	if (n > 64)
		return 0;
	for (size_t have = 1; have < n;) {
		size_t step = have <= n - have ? have : n - have;
		r &= r >> step;
		have += step;
	}
	return r;
}

int exai__class_runs(const char *text, size_t len, int cls, size_t min, int (*fn)(void *ud, size_t start, size_t end),
		     void *ud)
{
	pthread_once(&b64_once, b64_table_init);
	const bool *table = cls == EXAI__CR_B64 ? b64_table : exai__cls_token_table();
	size_t start = 0; /* of the run carried into the block, when in */
	bool in = false;
	int r = 0;
	for (size_t base = 0; r == 0 && base < len; base += 64) {
		uint64_t m;
		if (len - base >= 64) {
			m = class_mask(text + base, cls, table);
		} else {
			char tail[64] = { 0 }; /* NUL is in neither class */
			memcpy(tail, text + base, len - base);
			m = class_mask(tail, cls, table);
		}
		if (in) { /* the carried run ends at the block's first byte out of the class */
			if (m == ~0ull)
				continue;
			unsigned l = (unsigned)__builtin_ctzll(~m);
			if (base + l - start >= min && (r = fn(ud, start, base + l)) != 0)
				break;
			in = false;
			m &= ~0ull << l;
		}
		/* a run reaching the block's end is carried; of the others only those long enough
		 * are read (bit i of x: a run of min starts at i) */
		uint64_t carry = 0;
		if (m >> 63) {
			unsigned t = m == ~0ull ? 64 : (unsigned)__builtin_clzll(~m);
			carry = t == 64 ? ~0ull : ~0ull << (64 - t);
			m &= ~carry;
		}
		for (uint64_t x = at_least(m, min); x && r == 0;) {
			unsigned s = (unsigned)__builtin_ctzll(x);
			unsigned l = (unsigned)__builtin_ctzll(~(m >> s)); /* m's top bit is clear */
			r = fn(ud, base + s, base + s + l);
			x &= ~0ull << (s + l); /* s + l < 64 */
		}
		if (carry) {
			in = true;
			start = base + (unsigned)__builtin_ctzll(carry);
		}
	}
	if (r == 0 && in && len - start >= min)
		r = fn(ud, start, len);
	return r;
}

typedef int (*decode_pass_fn)(const char *t, size_t a, size_t b, int (*fn)(void *, const struct exai__decoded *),
			      void *ud, bool maps);

/* Runs @pass over [a, b) without maps, and again with them when the bytes are worth it. */
static int decode_twice(decode_pass_fn pass, const char *t, size_t a, size_t b,
			int (*fn)(void *, const struct exai__decoded *), void *ud)
{
	int r = pass(t, a, b, fn, ud, false);
	return r == 1 ? pass(t, a, b, fn, ud, true) : r;
}

struct b64_runs {
	int (*fn)(void *ud, const struct exai__decoded *d);
	void *ud;
	const char *t;
};

/* A base64 run long enough for either decoder: hex when every byte is a hex digit, else base64
 * when it holds a lower-case letter, an upper-case one and a digit. */
static int on_b64_run(void *ud, size_t i, size_t j)
{
	const struct b64_runs *br = ud;
	unsigned any = 0, all = C_HEX;
	for (size_t k = i; k < j; k++) {
		any |= byte_class[(unsigned char)br->t[k]];
		all &= byte_class[(unsigned char)br->t[k]];
	}
	size_t n = j - i;
	if (n > EXAI__SCRUB_WINDOW_MAX)
		return 0;
	if (all && n >= MIN_HEX && n % 2 == 0)
		return decode_twice(do_hex_pass, br->t, i, j, br->fn, br->ud);
	if ((any & (C_LOWER | C_UPPER | C_DIGIT)) == (C_LOWER | C_UPPER | C_DIGIT) && n % 4 != 1)
		return decode_twice(do_base64_pass, br->t, i, j, br->fn, br->ud);
	return 0;
}

int exai__decode_runs(const char *t, size_t len, int (*fn)(void *ud, const struct exai__decoded *d), void *ud)
{
	pthread_once(&class_once, class_init);
	/* base64 and hex: maximal runs of their alphabets */
	struct b64_runs br = { fn, ud, t };
	int r = exai__class_runs(t, len, EXAI__CR_B64, MIN_B64 < MIN_HEX ? MIN_B64 : MIN_HEX, on_b64_run, &br);
	/* URL encoding and string escapes: per line */
	for (size_t i = 0; r == 0 && i < len;) {
		const char *nl = memchr(t + i, '\n', len - i);
		size_t j = nl ? (size_t)(nl - t) : len;
		size_t n = j - i;
		if (n >= 8 && n <= EXAI__SCRUB_WINDOW_MAX) {
			if (has_pct(t, i, j))
				r = decode_twice(do_url_pass, t, i, j, fn, ud);
			if (r == 0 && has_esc(t, i, j))
				r = decode_twice(do_escapes_pass, t, i, j, fn, ud);
		}
		i = j + 1;
	}
	return r;
}
