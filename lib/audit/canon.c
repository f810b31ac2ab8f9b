/* SPDX-License-Identifier: Apache-2.0 */
/* canon.c: checks in one pass, without building a tree, that stored bytes are exactly the
 * RFC 8785 canonical form of a JSON object, and picks out the members the chain needs. The
 * verifier and recovery run it on every event; the fuzz target compares it with parsing and
 * re-serialising through the core's JCS. */
#include <stdlib.h>
#include <string.h>

#include "audit-internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define CANON_MAX_DEPTH 128
#define KEY_MAX 256

struct canon {
	const unsigned char *p, *end;
	struct exai__event_top *top;
};

static int bad(const char *why)
{
	return exai__err(-EBADMSG, "event bytes are not in RFC 8785 canonical form: %s", why);
}

/* The next code point of valid UTF-8 (already checked) as UTF-16 code units. */
static int u16_next(const unsigned char **p, const unsigned char *end, unsigned *pending)
{
	if (*pending) {
		int u = (int)*pending;
		*pending = 0;
		return u;
	}
	if (*p >= end)
		return -1;
	unsigned c = *(*p)++;
	int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
	unsigned cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
	for (int i = 0; i < extra && *p < end; i++)
		cp = (cp << 6) | (*(*p)++ & 0x3F);
	if (cp >= 0x10000) {
		cp -= 0x10000;
		*pending = 0xDC00 + (cp & 0x3FF);
		return (int)(0xD800 + (cp >> 10));
	}
	return (int)cp;
}

static int cmp_u16(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	const unsigned char *ae = a + an, *be = b + bn;
	unsigned pa = 0, pb = 0;
	for (;;) {
		int u = u16_next(&a, ae, &pa), v = u16_next(&b, be, &pb);
		if (u != v)
			return u < v ? -1 : 1;
		if (u < 0)
			return 0;
	}
}

static int hexval(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Bytes a string may hold as they are, without a look at escapes or UTF-8: printable ASCII
 * but '"' and '\\'. */
static inline bool plain(unsigned char ch)
{
	return ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\';
}

/* A string in canonical form. With @key set (a member name), *@key and *@keylen are its decoded
 * value: the bytes in the input when the name has no escape, else decoded into @buf (up to
 * KEY_MAX bytes). */
static int string(struct canon *c, unsigned char *buf, const unsigned char **key, size_t *keylen)
{
	const unsigned char *s = ++c->p; /* after the opening quote */
#if defined(__SSE2__)
	/* 16 bytes at a time: stop at '"', '\\', a control byte or a non-ASCII one (negative as a
	 * signed byte, so "< 0x20 signed" catches both). */
	while (c->end - c->p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)c->p);
		__m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
							 _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
					    _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
		unsigned m = (unsigned)_mm_movemask_epi8(stop);
		if (m) {
			c->p += __builtin_ctz(m);
			break;
		}
		c->p += 16;
	}
#endif
	while (c->p < c->end && plain(*c->p))
		c->p++;
	if (c->p < c->end && *c->p == '"') { /* the common case: plain ASCII */
		if (key) {
			*key = s;
			*keylen = (size_t)(c->p - s);
		}
		c->p++;
		return 0;
	}
	size_t n = (size_t)(c->p - s);
	unsigned char *out = key ? buf : NULL;
	if (out) {
		if (n > KEY_MAX)
			return -E2BIG; /* a very long name: the caller takes the slow path */
		memcpy(out, s, n);
	}
	for (;;) {
		if (c->p >= c->end)
			return bad("unterminated string");
		unsigned ch = *c->p++;
		unsigned char dec[4];
		size_t dn = 1;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return bad("unescaped control character");
		if (ch == '\\') {
			if (c->p >= c->end)
				return bad("unterminated escape");
			unsigned e = *c->p++;
			switch (e) {
			case '"': dec[0] = '"'; break;
			case '\\': dec[0] = '\\'; break;
			case 'b': dec[0] = '\b'; break;
			case 'f': dec[0] = '\f'; break;
			case 'n': dec[0] = '\n'; break;
			case 'r': dec[0] = '\r'; break;
			case 't': dec[0] = '\t'; break;
			case 'u': {
				if (c->end - c->p < 4)
					return bad("short \\u escape");
				int v = 0;
				for (int i = 0; i < 4; i++) {
					int h = hexval(c->p[i]);
					if (h < 0)
						return bad("\\u escape not in lower-case hex");
					v = v * 16 + h;
				}
				c->p += 4;
				if (v >= 0x20 || v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t')
					return bad("needless \\u escape");
				if (v == 0 && out)
					return bad("U+0000 in a member name");
				dec[0] = (unsigned char)v;
				break;
			}
			default:
				return bad("unknown or needless escape");
			}
		} else if (ch >= 0x80) {
			/* UTF-8: no overlong forms, no surrogates, at most U+10FFFF */
			int extra;
			unsigned char lo = 0x80, hi = 0xBF;
			if (ch >= 0xC2 && ch <= 0xDF)
				extra = 1;
			else if (ch >= 0xE0 && ch <= 0xEF) {
				extra = 2;
				if (ch == 0xE0)
					lo = 0xA0;
				if (ch == 0xED)
					hi = 0x9F;
			} else if (ch >= 0xF0 && ch <= 0xF4) {
				extra = 3;
				if (ch == 0xF0)
					lo = 0x90;
				if (ch == 0xF4)
					hi = 0x8F;
			} else
				return bad("invalid UTF-8");
			if (c->end - c->p < extra)
				return bad("truncated UTF-8");
			dec[0] = (unsigned char)ch;
			for (int i = 0; i < extra; i++) {
				unsigned char k = c->p[i];
				if (k < (i == 0 ? lo : 0x80) || k > (i == 0 ? hi : 0xBF))
					return bad("invalid UTF-8");
				dec[1 + i] = k;
			}
			c->p += extra;
			dn = 1 + (size_t)extra;
		} else {
			dec[0] = (unsigned char)ch;
		}
		if (out) {
			if (n + dn > KEY_MAX)
				return -E2BIG;
			memcpy(out + n, dec, dn);
		}
		n += dn;
	}
	if (key) {
		*key = buf;
		*keylen = n;
	}
	return 0;
}

/* Member name order (RFC 8785: UTF-16 code units). Byte order of UTF-8 agrees with it up to
 * the first difference when either differing byte is ASCII; otherwise compare in UTF-16. */
static int cmp_key(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	size_t n = an < bn ? an : bn, i = 0;
	while (i < n && a[i] == b[i])
		i++;
	if (i == n)
		return an < bn ? -1 : an > bn;
	if (a[i] < 0x80 || b[i] < 0x80)
		return a[i] < b[i] ? -1 : 1;
	return cmp_u16(a, an, b, bn);
}

static int number(struct canon *c, double *retval)
{
	const unsigned char *s = c->p;
	bool simple = true;
	if (c->p < c->end && *c->p == '-')
		c->p++;
	const unsigned char *digits = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	size_t nd = (size_t)(c->p - digits);
	if (nd == 0)
		return bad("malformed number");
	if (c->p < c->end && *c->p == '.') {
		simple = false;
		c->p++;
		const unsigned char *f = c->p;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
		if (c->p == f)
			return bad("malformed number");
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		simple = false;
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		const unsigned char *x = c->p;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
		if (c->p == x)
			return bad("malformed number");
	}
	size_t len = (size_t)(c->p - s);
	if (simple && nd <= 15 && !(digits[0] == '0' && nd > 1) && !(s[0] == '-' && digits[0] == '0')) {
		/* A plain integer of at most 15 digits is exact in a double and printed as is. */
		if (retval) {
			double v = 0;
			for (size_t i = 0; i < nd; i++)
				v = v * 10 + (digits[i] - '0');
			*retval = s[0] == '-' ? -v : v;
		}
		return 0;
	}
	char buf[64], out[32];
	if (len >= sizeof(buf))
		return bad("number too long");
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *end;
	double d = strtod(buf, &end);
	if (*end || exai__jcs_number(d, out) < 0 || strcmp(out, buf) != 0)
		return bad("number not in ECMAScript form");
	if (retval)
		*retval = d;
	return 0;
}

static int value(struct canon *c, int depth, double *num);

static int object(struct canon *c, int depth)
{
	unsigned char buf[2][KEY_MAX]; /* decoded names with escapes: this one and the previous */
	const unsigned char *prev = NULL, *key = NULL;
	size_t prevlen = 0, keylen = 0;
	int which = 0;
	bool first = true;
	c->p++;
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		if (c->p >= c->end || *c->p != '"')
			return bad("expected a member name");
		int r = string(c, buf[which], &key, &keylen);
		if (r < 0)
			return r;
		if (!first && cmp_key(prev, prevlen, key, keylen) >= 0)
			return bad("members not sorted by UTF-16 code units (or a duplicate name)");
		if (c->p >= c->end || *c->p != ':')
			return bad("expected ':'");
		c->p++;
		const unsigned char *vstart = c->p;
		double num = 0;
		r = value(c, depth + 1, &num);
		if (r < 0)
			return r;
		if (depth == 1 && c->top) {
			struct exai__event_top *t = c->top;
			size_t kl = (size_t)(c->p - vstart);
			if (keylen == 3 && memcmp(key, "seq", 3) == 0 && *vstart != '"') {
				t->has_seq = num >= 0 && num <= 9007199254740992.0 && num == (double)(uint64_t)num;
				t->seq = t->has_seq ? (uint64_t)num : 0;
			} else if (keylen == 1 && key[0] == 'v' && *vstart != '"') {
				t->has_v = true;
				t->v = num;
			} else if (keylen == 4 && memcmp(key, "prev", 4) == 0 && *vstart == '"') {
				t->prev = (const char *)vstart + 1;
				t->prev_len = kl - 2;
			} else if (keylen == 6 && memcmp(key, "origin", 6) == 0 && *vstart == '"') {
				t->origin = (const char *)vstart + 1;
				t->origin_len = kl - 2;
			} else if (t->columns) {
				static const char *const nums[EXAI__TOP_NUMS] = { "time", "class_uid", "activity_id" };
				static const char *const strs[EXAI__TOP_STRS] = { "activity_name", "tenant", "workspace" };
				bool is_str = *vstart == '"', is_num = *vstart == '-' || (*vstart >= '0' && *vstart <= '9');
				for (int i = 0; is_num && i < EXAI__TOP_NUMS; i++)
					if (keylen == strlen(nums[i]) && memcmp(key, nums[i], keylen) == 0) {
						t->has_num[i] = true;
						t->num[i] = num;
					}
				for (int i = 0; is_str && i < EXAI__TOP_STRS; i++)
					if (keylen == strlen(strs[i]) && memcmp(key, strs[i], keylen) == 0) {
						t->str[i] = (const char *)vstart + 1;
						t->str_len[i] = kl - 2;
					}
			}
		}
		if (key == buf[which])
			which ^= 1; /* keep it as prev while the next name decodes into the other buffer */
		prev = key;
		prevlen = keylen;
		first = false;
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return 0;
		}
		return bad("expected ',' or '}'");
	}
}

static int value(struct canon *c, int depth, double *num)
{
	if (depth > CANON_MAX_DEPTH)
		return bad("nested too deeply");
	if (c->p >= c->end)
		return bad("truncated");
	switch (*c->p) {
	case '{':
		return object(c, depth);
	case '[':
		c->p++;
		if (c->p < c->end && *c->p == ']') {
			c->p++;
			return 0;
		}
		for (;;) {
			int r = value(c, depth + 1, NULL);
			if (r < 0)
				return r;
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				continue;
			}
			if (c->p < c->end && *c->p == ']') {
				c->p++;
				return 0;
			}
			return bad("expected ',' or ']'");
		}
	case '"':
		return string(c, NULL, NULL, NULL);
	case 't':
	case 'f':
	case 'n': {
		const char *lit = *c->p == 't' ? "true" : *c->p == 'f' ? "false" : "null";
		size_t l = strlen(lit);
		if ((size_t)(c->end - c->p) < l || memcmp(c->p, lit, l) != 0)
			return bad("bad literal");
		c->p += l;
		return 0;
	}
	default:
		return number(c, num);
	}
}

int exai__canon_check(const char *p, size_t n, struct exai__event_top *top)
{
	struct canon c = { (const unsigned char *)p, (const unsigned char *)p + n, top };
	if (top)
		*top = (struct exai__event_top){ .columns = top->columns };
	if (n == 0 || p[0] != '{')
		return bad("not an object");
	int r = object(&c, 1);
	if (r == 0 && c.p != c.end)
		r = bad("bytes after the object");
	return r;
}

/* ---- re-emitting text that needs only sorting and no white space ------------------------- */

#define REORDER_MAX_DEPTH 64

struct member {
	size_t at, len;           /* "name":value in the output */
	const unsigned char *key; /* the name inside the input (no escapes) */
	size_t keylen;
};

struct reorder {
	struct canon c;
	struct exai__buf *out;
	struct member *m; /* a stack: each object's members above its parent's */
	size_t nm, cap;
	struct exai__buf scratch;
	bool has_time;
};

static void skip_ws(struct canon *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int rvalue(struct reorder *o, int depth);

/* After a member or an element: 1 at a ',' (written), 0 at @close (passed, not written),
 * -EAGAIN at anything else. */
static int rnext(struct reorder *o, char close)
{
	struct canon *c = &o->c;
	skip_ws(c);
	if (c->p < c->end && *c->p == ',') {
		c->p++;
		skip_ws(c);
		return exai__buf_putc(o->out, ',') < 0 ? -ENOMEM : 1;
	}
	if (c->p < c->end && *c->p == (unsigned char)close) {
		c->p++;
		return 0;
	}
	return -EAGAIN;
}

static int cmp_member(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	return cmp_key(x->key, x->keylen, y->key, y->keylen);
}

static int robject(struct reorder *o, int depth)
{
	struct canon *c = &o->c;
	size_t base = o->nm, start = o->out->len;
	c->p++;
	if (exai__buf_putc(o->out, '{') < 0)
		return -ENOMEM;
	skip_ws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return exai__buf_putc(o->out, '}') < 0 ? -ENOMEM : 0;
	}
	for (;;) {
		if (c->p >= c->end || *c->p != '"')
			return -EAGAIN;
		const unsigned char *kstart = c->p, *key;
		size_t keylen;
		if (string(c, NULL, NULL, NULL) < 0)
			return -EAGAIN;
		key = kstart + 1;
		keylen = (size_t)(c->p - kstart) - 2;
		if (memchr(key, '\\', keylen) || exai__event_name_forbidden((const char *)key, keylen))
			return -EAGAIN; /* escaped or forbidden names: the general path decides */
		if (depth == 1) {
			if (exai__event_name_reserved((const char *)key, keylen))
				return -EAGAIN;
			if (keylen == 4 && memcmp(key, "time", 4) == 0)
				o->has_time = true;
		}
		skip_ws(c);
		if (c->p >= c->end || *c->p != ':')
			return -EAGAIN;
		c->p++;
		skip_ws(c);
		size_t at = o->out->len;
		if (exai__buf_append(o->out, kstart, keylen + 2) < 0 ||
		    exai__buf_putc(o->out, ':') < 0)
			return -ENOMEM;
		const unsigned char *vstart = c->p;
		int r = rvalue(o, depth + 1);
		if (r < 0)
			return r;
		if (depth == 1 && keylen == 4 && memcmp(key, "time", 4) == 0) {
			/* milliseconds: a plain non-negative integer of at most 15 digits, else the
			 * general path decides */
			if (c->p - vstart > 15)
				return -EAGAIN;
			for (const unsigned char *d = vstart; d < c->p; d++)
				if (*d < '0' || *d > '9')
					return -EAGAIN;
		}
		if (o->nm == o->cap) {
			struct member *nm = realloc(o->m, (o->cap = o->cap ? 2 * o->cap : 64) * sizeof(*nm));
			if (!nm)
				return -ENOMEM;
			o->m = nm;
		}
		o->m[o->nm++] = (struct member){ at, o->out->len - at, key, keylen };
		r = rnext(o, '}');
		if (r <= 0) {
			if (r < 0)
				return r;
			break;
		}
	}
	/* Sort the members; a duplicate name goes to the general path (which refuses it). */
	size_t n = o->nm - base;
	struct member *m = o->m + base;
	bool sorted = true;
	for (size_t i = 1; i < n && sorted; i++)
		sorted = cmp_member(&m[i - 1], &m[i]) < 0;
	if (!sorted) {
		qsort(m, n, sizeof(*m), cmp_member);
		for (size_t i = 1; i < n; i++)
			if (cmp_member(&m[i - 1], &m[i]) == 0)
				return -EAGAIN;
		size_t body = o->out->len - (start + 1);
		o->scratch.len = 0;
		if (exai__buf_reserve(&o->scratch, body) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			if (i)
				o->scratch.data[o->scratch.len++] = ',';
			memcpy(o->scratch.data + o->scratch.len, o->out->data + m[i].at, m[i].len);
			o->scratch.len += m[i].len;
		}
		memcpy(o->out->data + start + 1, o->scratch.data, body);
	}
	o->nm = base;
	return exai__buf_putc(o->out, '}') < 0 ? -ENOMEM : 0;
}

static int rvalue(struct reorder *o, int depth)
{
	struct canon *c = &o->c;
	if (depth > REORDER_MAX_DEPTH || c->p >= c->end)
		return -EAGAIN;
	const unsigned char *s = c->p;
	if (*s == '{')
		return robject(o, depth);
	if (*s == '[') {
		c->p++;
		if (exai__buf_putc(o->out, '[') < 0)
			return -ENOMEM;
		skip_ws(c);
		if (c->p < c->end && *c->p == ']') {
			c->p++;
			return exai__buf_putc(o->out, ']') < 0 ? -ENOMEM : 0;
		}
		for (;;) {
			int r = rvalue(o, depth + 1);
			if (r == 0)
				r = rnext(o, ']');
			if (r < 0)
				return r;
			if (r == 0)
				return exai__buf_putc(o->out, ']') < 0 ? -ENOMEM : 0;
		}
	}
	/* A scalar already in canonical form is copied as it is. */
	int r = *s == '"' ? string(c, NULL, NULL, NULL) :
		(*s == 't' || *s == 'f' || *s == 'n') ? value(c, depth, NULL) : number(c, NULL);
	if (r < 0)
		return -EAGAIN;
	return exai__buf_append(o->out, s, (size_t)(c->p - s)) < 0 ? -ENOMEM : 0;
}

int exai__canon_reorder(struct exai__buf *out, const char *p, size_t n, bool *rethas_time)
{
	struct reorder o = { .c = { (const unsigned char *)p, (const unsigned char *)p + n, NULL }, .out = out };
	out->len = 0;
	skip_ws(&o.c);
	int r = o.c.p < o.c.end && *o.c.p == '{' ? robject(&o, 1) : -EAGAIN;
	skip_ws(&o.c);
	if (r == 0 && o.c.p != o.c.end)
		r = -EAGAIN;
	free(o.m);
	exai__buf_free(&o.scratch);
	if (r == 0 && exai__buf_putc(out, '\0') == 0) /* NUL-terminated, not counted */
		out->len--;
	*rethas_time = o.has_time;
	return r == -ENOMEM ? exai__err(-ENOMEM, "out of memory") : r;
}
