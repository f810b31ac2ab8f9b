/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jcs.c: RFC 8785 JSON Canonicalization Scheme over jansson values.
 *
 * The audit log's Merkle leaves are these bytes, so every rule matters:
 * - member names sorted by their UTF-16 code units (not by UTF-8 bytes: the two orders differ
 *   for characters above U+FFFF against U+E000..U+FFFF);
 * - strings escaped minimally: \" \\ \b \f \n \r \t, \u00xx (lower-case hex) for the other
 *   controls, everything else (including '/', DEL and non-ASCII) as it is;
 * - numbers as ECMAScript's Number::toString (ECMA-262, 7.1.12.1) prints IEEE-754 doubles.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core-internal.h"

#define JCS_MAX_DEPTH 2048

/* ---- numbers ------------------------------------------------------------------------------ */

/* Splits "%.*e" output "[-]D[.DDD]e[+-]X" into its digit string and decimal exponent. */
static void split_sci(const char *s, char *digits, size_t *ndigits, int *exp10)
{
	size_t k = 0;
	const char *p = s;
	if (*p == '-')
		p++;
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[k++] = *p;
	digits[k] = '\0';
	*ndigits = k;
	*exp10 = *p == 'e' ? atoi(p + 1) : 0;
}

/* Adds @delta (+1 or -1) to the last digit of @digits (k digits, value D.DDD x 10^exp10), with
 * carry and borrow; keeps k digits. Returns false when the result leaves k-digit form. */
static bool nudge(char *digits, size_t k, int *exp10, int delta)
{
	size_t i = k;
	while (i-- > 0) {
		int d = digits[i] - '0' + delta;
		if (d >= 0 && d <= 9) {
			digits[i] = (char)('0' + d);
			break;
		}
		digits[i] = delta > 0 ? '0' : '9';
		if (i == 0) {
			if (delta < 0)
				return false;
			/* 9.99 + 0.01 = 10.00: shift to 1.000 x 10^(exp+1). */
			memmove(digits + 1, digits, k - 1);
			digits[0] = '1';
			(*exp10)++;
			return true;
		}
	}
	return digits[0] != '0';
}

static bool round_trips(double d, bool neg, const char *digits, size_t k, int exp10)
{
	char buf[48];
	snprintf(buf, sizeof(buf), "%s%c.%se%d", neg ? "-" : "", digits[0], k > 1 ? digits + 1 : "0", exp10);
	return strtod(buf, NULL) == d;
}

int exai__jcs_number(double d, char out[static 32])
{
	if (!isfinite(d))
		return exai__err(-ERANGE, "JSON numbers must be finite (NaN and Infinity have no JSON form)");
	if (d == 0) { /* +0 and -0 */
		strcpy(out, "0");
		return 0;
	}
	/* Integers below 2^53 are exact and every other integer is a different double, so the
	 * shortest digits that read back are the integer's own: ECMAScript prints it plainly. */
	if (fabs(d) < 9007199254740992.0 && d == trunc(d)) {
		snprintf(out, 32, "%lld", (long long)d);
		return 0;
	}
	bool neg = d < 0;
	char sci[48], digits[24];
	size_t k = 0;
	int e = 0;
	bool found = false;
	/* The fewest significant digits that read back as d; among those, the closest to d
	 * (printf's correctly rounded output). Near powers of two the round-trip interval is
	 * lopsided, so the nearest k-digit decimal can miss while a neighbour reads back. */
	for (int prec = 1; prec <= 17 && !found; prec++) {
		snprintf(sci, sizeof(sci), "%.*e", prec - 1, d);
		split_sci(sci, digits, &k, &e);
		if (round_trips(d, neg, digits, k, e)) {
			found = true;
			break;
		}
		for (int delta = -1; delta <= 1 && !found; delta += 2) {
			char alt[24];
			int ae = e;
			memcpy(alt, digits, k + 1);
			if (nudge(alt, k, &ae, neg ? -delta : delta) && round_trips(d, neg, alt, k, ae)) {
				memcpy(digits, alt, k + 1);
				e = ae;
				found = true;
			}
		}
	}
	if (!found)
		return exai__err(-ERANGE, "cannot format number %.17g", d);
	while (k > 1 && digits[k - 1] == '0')
		digits[--k] = '\0';

	/* ECMA-262 Number::toString with digits s (k of them) and n = exponent + 1. */
	int n = e + 1;
	char *o = out;
	if (neg)
		*o++ = '-';
	if ((int)k <= n && n <= 21) {
		memcpy(o, digits, k);
		o += k;
		for (int i = 0; i < n - (int)k; i++)
			*o++ = '0';
	} else if (0 < n && n <= 21) {
		memcpy(o, digits, (size_t)n);
		o += n;
		*o++ = '.';
		memcpy(o, digits + n, k - (size_t)n);
		o += k - (size_t)n;
	} else if (-6 < n && n <= 0) {
		*o++ = '0';
		*o++ = '.';
		for (int i = 0; i < -n; i++)
			*o++ = '0';
		memcpy(o, digits, k);
		o += k;
	} else {
		*o++ = digits[0];
		if (k > 1) {
			*o++ = '.';
			memcpy(o, digits + 1, k - 1);
			o += k - 1;
		}
		o += sprintf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
	}
	*o = '\0';
	return 0;
}

/* ---- strings and names -------------------------------------------------------------------- */

static int append_string(struct exai__buf *b, const char *s, size_t n)
{
	int r = exai__buf_reserve(b, n + 2);
	if (r < 0)
		return r;
	r = exai__buf_putc(b, '"');
	size_t run = 0; /* bytes copied verbatim, flushed in one append */
	for (size_t i = 0; i < n && r == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[8];
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20) {
				snprintf(u, sizeof(u), "\\u%04x", c);
				esc = u;
			}
		}
		if (!esc) {
			run++;
			continue;
		}
		r = exai__buf_append(b, s + i - run, run);
		run = 0;
		if (r == 0)
			r = exai__buf_append(b, esc, strlen(esc));
	}
	if (r == 0)
		r = exai__buf_append(b, s + n - run, run);
	if (r == 0)
		r = exai__buf_putc(b, '"');
	return r;
}

/* Iterates a UTF-8 string (already validated by jansson) as UTF-16 code units. */
struct u16_iter {
	const unsigned char *p, *end;
	unsigned pending; /* a low surrogate still to come, or 0 */
};

static int u16_next(struct u16_iter *it)
{
	if (it->pending) {
		int u = (int)it->pending;
		it->pending = 0;
		return u;
	}
	if (it->p >= it->end)
		return -1;
	unsigned c = *it->p++, cp;
	int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
	cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
	for (int i = 0; i < extra && it->p < it->end; i++)
		cp = (cp << 6) | (*it->p++ & 0x3F);
	if (cp >= 0x10000) {
		cp -= 0x10000;
		it->pending = 0xDC00 + (cp & 0x3FF);
		return (int)(0xD800 + (cp >> 10));
	}
	return (int)cp;
}

struct member {
	const char *key;
	size_t len;
	json_t *value;
};

static int cmp_utf16(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	struct u16_iter i = { (const unsigned char *)x->key, (const unsigned char *)x->key + x->len, 0 };
	struct u16_iter j = { (const unsigned char *)y->key, (const unsigned char *)y->key + y->len, 0 };
	for (;;) {
		int u = u16_next(&i), v = u16_next(&j);
		if (u != v)
			return u < v ? -1 : 1; /* -1 (end) sorts first */
		if (u < 0)
			return 0;
	}
}

/* ---- values --------------------------------------------------------------------------------- */

static int append_value(struct exai__buf *b, const json_t *v, int depth);

static int append_object(struct exai__buf *b, const json_t *obj, int depth)
{
	size_t n = json_object_size(obj);
	if (n == 0)
		return exai__buf_append(b, "{}", 2);
	struct member *m = calloc(n, sizeof(*m));
	if (!m)
		return -ENOMEM;
	size_t i = 0;
	for (void *it = json_object_iter((json_t *)obj); it && i < n;
	     it = json_object_iter_next((json_t *)obj, it), i++) {
		m[i].key = json_object_iter_key(it);
		m[i].len = json_object_iter_key_len(it);
		m[i].value = json_object_iter_value(it);
	}
	qsort(m, i, sizeof(*m), cmp_utf16);
	int r = exai__buf_putc(b, '{');
	for (size_t k = 0; k < i && r == 0; k++) {
		if (k)
			r = exai__buf_putc(b, ',');
		if (r == 0)
			r = append_string(b, m[k].key, m[k].len);
		if (r == 0)
			r = exai__buf_putc(b, ':');
		if (r == 0)
			r = append_value(b, m[k].value, depth + 1);
	}
	free(m);
	return r ? r : exai__buf_putc(b, '}');
}

static int append_value(struct exai__buf *b, const json_t *v, int depth)
{
	char num[32];
	int r;

	if (depth > JCS_MAX_DEPTH)
		return exai__err(-ELOOP, "JSON nested deeper than %d levels", JCS_MAX_DEPTH);
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return append_object(b, v, depth);
	case JSON_ARRAY: {
		r = exai__buf_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v) && r == 0; i++) {
			if (i)
				r = exai__buf_putc(b, ',');
			if (r == 0)
				r = append_value(b, json_array_get(v, i), depth + 1);
		}
		return r ? r : exai__buf_putc(b, ']');
	}
	case JSON_STRING:
		return append_string(b, json_string_value(v), json_string_length(v));
	case JSON_INTEGER: {
		json_int_t i = json_integer_value(v);
		if (i > 9007199254740992LL || i < -9007199254740992LL)
			return exai__err(-ERANGE, "integer %lld is not exactly representable as an IEEE-754 double",
					 (long long)i);
		snprintf(num, sizeof(num), "%lld", (long long)i);
		return exai__buf_append(b, num, strlen(num));
	}
	case JSON_REAL:
		r = exai__jcs_number(json_real_value(v), num);
		return r ? r : exai__buf_append(b, num, strlen(num));
	case JSON_TRUE:
		return exai__buf_append(b, "true", 4);
	case JSON_FALSE:
		return exai__buf_append(b, "false", 5);
	case JSON_NULL:
		return exai__buf_append(b, "null", 4);
	}
	return exai__err(-EINVAL, "unknown JSON value type");
}

int exai__jcs_append(struct exai__buf *b, const json_t *v)
{
	if (!v)
		return exai__err(-EINVAL, "no JSON value");
	int r = append_value(b, v, 0);
	if (r == -ENOMEM)
		exai__err(r, "out of memory");
	return r;
}

int exai__jcs_dump(const json_t *v, char **ret, size_t *retlen)
{
	struct exai__buf b = { 0 };
	int r = exai__jcs_append(&b, v);
	if (r < 0) {
		exai__buf_free(&b);
		return r;
	}
	char *s = exai__buf_steal(&b, retlen);
	if (!s)
		return exai__err(-ENOMEM, "out of memory");
	*ret = s;
	return 0;
}

bool exai__utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		/* ASCII 32 bytes at a time (most text is) */
		while (i + 32 <= n) {
			uint64_t w[4];
			memcpy(w, s + i, sizeof(w));
			if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull)
				break;
			i += 32;
		}
		if (i == n)
			break;
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += k + 1;
	}
	return true;
}

int exai__json_load(json_t **ret, const char *json, size_t len, size_t flags)
{
	json_error_t err;
	json_t *v = json_loadb(json, len, flags, &err);
	if (v) {
		*ret = v;
		return 0;
	}
	enum json_error_code code = json_error_code(&err);
	if (code == json_error_numeric_overflow)
		return exai__err(-ERANGE, "invalid JSON at line %d, column %d: %s", err.line, err.column, err.text);
	if (code != json_error_out_of_memory && err.text[0]) {
		/* jansson reports a failed allocation inside a token as a syntax error: a text that
		 * parses on a second try was never bad. */
		v = json_loadb(json, len, flags, NULL);
		if (!v)
			return exai__err(-EBADMSG, "invalid JSON at line %d, column %d: %s", err.line, err.column, err.text);
		json_decref(v);
	}
	return exai__err(-ENOMEM, "out of memory while parsing JSON");
}

int exai__json_parse(json_t **ret, const char *json, size_t len)
{
	/* Numbers as doubles (I-JSON), duplicate names refused, "\u0000" kept as a character. */
	return exai__json_load(ret, json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL |
						     JSON_ALLOW_NUL);
}

EXAI_API int exai_jcs_canonicalize(char **ret, size_t *retlen, const char *json, size_t len)
{
	if (!ret || !json || len == 0)
		return exai__err(-EINVAL, "exai_jcs_canonicalize: no input");
	json_t *v;
	int r = exai__json_parse(&v, json, len);
	if (r < 0)
		return r;
	r = exai__jcs_dump(v, ret, retlen);
	json_decref(v);
	return r;
}
