/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-fast: the scrubber's fast paths give exactly what the plain computations they
 * replace give. Each reference below is the straightforward form of a rule (as the pack README
 * and train.py state it); the library's form is compared with it on random inputs built to
 * reach the rule's edges. */
#include <ctype.h>
#include <math.h>

#include "scrub-builtin.h"

static unsigned long long rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	return test_xorshift(&rng);
}

/* ---- the not_placeholder validator, rules 9 and 11 --------------------------------------- */

/* rule 9: a word anywhere, case aside; rule 11: the whole value (4-64 characters) or any 8 of
 * its consecutive characters within a sequence */
static bool ref_rule9(const char *s, size_t n)
{
	for (size_t k = 0; k < exai__placeholder_words_count; k++)
		for (size_t i = 0, m = strlen(exai__placeholder_words[k]); i + m <= n; i++)
			if (strncasecmp(s + i, exai__placeholder_words[k], m) == 0)
				return true;
	return false;
}

static bool in_seq(const char *s, size_t n)
{
	char low[64];
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)s[i]);
	for (size_t k = 0; k < exai__placeholder_sequences_count; k++)
		if (memmem(exai__placeholder_sequences[k], strlen(exai__placeholder_sequences[k]), low, n))
			return true;
	return false;
}

static bool ref_rule11(const char *s, size_t n)
{
	if (n >= 4 && n <= 64 && in_seq(s, n))
		return true;
	for (size_t i = 0; i + 8 <= n; i++)
		if (in_seq(s + i, 8))
			return true;
	return false;
}

static void random_case(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rnd() % 2)
			p[i] = (char)toupper((unsigned char)p[i]);
}

/* Values that start with a digit other than 0 and hold only letters, digits and the words' and
 * sequences' bytes (no ':', '(', '%', '{', '$', '/'): no rule but 9 and 11 can refuse them. */
static void placeholder_rules(void)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t refused = 0, total = 0;
	for (int t = 0; t < 60000; t++) {
		char v[200];
		size_t n = 12 + rnd() % 150;
		for (size_t i = 0; i < n; i++)
			v[i] = alnum[rnd() % (sizeof(alnum) - 1)];
		v[0] = (char)('1' + rnd() % 9);
		switch (rnd() % 4) {
		case 0: { /* a word (perhaps cut short) */
			const char *w = exai__placeholder_words[rnd() % exai__placeholder_words_count];
			size_t l = strlen(w) - (rnd() % 3 == 0 ? 1 : 0), at = 1 + rnd() % (n - 1);
			if (at + l <= n) {
				memcpy(v + at, w, l);
				random_case(v + at, l);
			}
			break;
		}
		case 1: { /* 5 to 10 consecutive characters of a sequence */
			const char *q = exai__placeholder_sequences[rnd() % exai__placeholder_sequences_count];
			size_t ql = strlen(q), l = 5 + rnd() % 6, from = rnd() % (ql - l + 1), at = 1 + rnd() % (n - 1);
			if (at + l <= n) {
				memcpy(v + at, q + from, l);
				random_case(v + at, l);
			}
			break;
		}
		case 2: /* two sequences' pieces joined: a run that changes sequence */
			for (size_t at = 1 + rnd() % (n / 2), k = 0; k < 2; k++) {
				const char *q = exai__placeholder_sequences[rnd() % exai__placeholder_sequences_count];
				size_t ql = strlen(q), l = 3 + rnd() % 5, from = rnd() % (ql - l + 1);
				if (at + l <= n)
					memcpy(v + at, q + from, l);
				at += l;
			}
			break;
		default: /* a short value that is a sequence as a whole, or random */
			if (rnd() % 2) {
				const char *q = exai__placeholder_sequences[rnd() % exai__placeholder_sequences_count];
				size_t ql = strlen(q);
				n = 12 + rnd() % 53;
				n = n > ql ? ql : n;
				size_t from = rnd() % (ql - n + 1);
				memcpy(v, q + from, n);
				if (!isdigit((unsigned char)v[0]) || v[0] == '0')
					v[0] = '1';
			}
		}
		bool want = !(ref_rule9(v, n) || ref_rule11(v, n));
		bool got = exai__validate(EXAI__V_NOT_PLACEHOLDER, v, n);
		if (got != want) {
			fprintf(stderr, "not_placeholder(%.*s): %d, the rules say %d\n", (int)n, v, got, want);
			test_failures++;
		}
		refused += !want;
		total++;
	}
	printf("not_placeholder: %zu values, %zu refused by rule 9 or 11\n", total, refused);
	CHECK(refused > total / 4 && refused < total * 3 / 4);
}

/* ---- stage 2: the features and the decision ---------------------------------------------- */

extern const double exai__cls_mean[EXAI__CLS_NFEAT], exai__cls_std[EXAI__CLS_NFEAT];
extern const double exai__cls_weight[EXAI__CLS_NFEAT], exai__cls_bias;

static const char *const ref_bigrams = " ac ad ag al am an ap ar as at av ay be bl br ca ce ch ci co ct de di do ea ec ed ei el em en ep er es et ew ex fi fo fr ge gr ha he hi ic id ie ig il im in io ir is it iv ke la ld le li ll lo ly ma me mi mo na nc nd ne ng ni no ns nt of ol om on op or os ot ou ow pa pe pl po pr qu ra rd re ri ro rs rt ry se sh si so sp ss st su ta te th ti to tr ts ty ul um un up ur us ut ve ";

static int ref_class(unsigned char c)
{
	return islower(c) ? 0 : isupper(c) ? 1 : isdigit(c) ? 2 : 3;
}

/* train.py's features, written as it writes them: a pass per feature */
static void ref_features(double f[EXAI__CLS_NFEAT], const char *t, size_t n, const char *before, size_t nb)
{
	size_t cnt[4] = { 0 }, trans = 0, slash_dot = 0, vowels = 0, best_a = 0, best_d = 0, pairs = 0, common = 0;
	for (size_t i = 0; i < n; i++) {
		cnt[ref_class((unsigned char)t[i])]++;
		trans += i && ref_class((unsigned char)t[i]) != ref_class((unsigned char)t[i - 1]);
		slash_dot += t[i] == '/' || t[i] == '.';
		vowels += t[i] && strchr("aeiouAEIOU", t[i]);
	}
	for (size_t i = 0, ra = 0, rd = 0; i < n; i++) {
		ra = isalpha((unsigned char)t[i]) ? ra + 1 : 0;
		rd = isdigit((unsigned char)t[i]) ? rd + 1 : 0;
		best_a = ra > best_a ? ra : best_a;
		best_d = rd > best_d ? rd : best_d;
	}
	bool hexl = true, hexu = true, uuid = n == 36;
	for (size_t i = 0; i < n; i++) {
		hexl &= isdigit((unsigned char)t[i]) || (t[i] >= 'a' && t[i] <= 'f');
		hexu &= isdigit((unsigned char)t[i]) || (t[i] >= 'A' && t[i] <= 'F');
		if (uuid)
			uuid = (i == 8 || i == 13 || i == 18 || i == 23) ? t[i] == '-' : isxdigit((unsigned char)t[i]) != 0;
	}
	char low[33] = { 0 };
	size_t m = nb < 32 ? nb : 32;
	for (size_t i = 0; i < m; i++)
		low[i] = (char)tolower((unsigned char)before[nb - m + i]);
	static const char *const words[] = { "key", "token", "secret", "passw", "pwd", "auth", "credential", "bearer", "api" };
	bool kw = false;
	for (size_t w = 0; w < EXAI__ARRAY_SIZE(words); w++)
		kw |= memmem(low, m, words[w], strlen(words[w])) != NULL;
	for (size_t i = 0; i + 1 < n; i++) {
		if (!isalpha((unsigned char)t[i]) || !isalpha((unsigned char)t[i + 1]))
			continue;
		char pair[5] = { ' ', (char)tolower((unsigned char)t[i]), (char)tolower((unsigned char)t[i + 1]), ' ', 0 };
		pairs++;
		common += strstr(ref_bigrams, pair) != NULL;
	}
	double dn = (double)n, h = 0, sum = 0;
	unsigned count[256] = { 0 };
	for (size_t i = 0; i < n; i++)
		count[(unsigned char)t[i]]++;
	unsigned char order[256];
	size_t no = 0;
	for (size_t i = 0; i < n; i++) /* the bytes in the order they first occur, as exai__shannon sums them */
		if (!memchr(order, t[i], no))
			order[no++] = (unsigned char)t[i];
	for (size_t k = 0; k < no; k++)
		if (count[order[k]] > 1)
			sum += (double)count[order[k]] * log2((double)count[order[k]]);
	h = log2(dn) - sum / dn;
	h = h > 0 ? h : 0;
	f[0] = dn / 64.0;
	f[1] = h;
	for (int k = 0; k < 4; k++)
		f[2 + k] = (double)cnt[k] / dn;
	f[6] = n > 1 ? (double)trans / (dn - 1) : 0;
	f[7] = (double)((cnt[0] > 0) + (cnt[1] > 0) + (cnt[2] > 0) + (cnt[3] > 0)) / 4.0;
	f[8] = hexl || hexu;
	f[9] = uuid;
	f[10] = kw;
	f[11] = (double)slash_dot / dn;
	f[12] = (double)best_a / dn;
	f[13] = cnt[0] + cnt[1] ? (double)vowels / (double)(cnt[0] + cnt[1]) : 0;
	f[14] = fmin(1.0, h / log2(dn));
	f[15] = (double)best_d / dn;
	f[16] = pairs ? (double)common / (double)pairs : 0;
}

static double ref_score(const double f[EXAI__CLS_NFEAT])
{
	double z = exai__cls_bias;
	for (int i = 0; i < EXAI__CLS_NFEAT; i++)
		z += exai__cls_weight[i] * ((f[i] - exai__cls_mean[i]) / exai__cls_std[i]);
	return 1.0 / (1.0 + exp(-z));
}

static size_t cls_tokens, cls_secrets;

/* One token: the library's features, score and decision against the reference's. */
static void cls_compare(const char *t, size_t n, const char *before, size_t nb)
{
	double want[EXAI__CLS_NFEAT], got[EXAI__CLS_NFEAT];
	ref_features(want, t, n, before, nb);
	exai__cls_features(got, t, n, before, nb);
	for (int k = 0; k < EXAI__CLS_NFEAT; k++)
		if (memcmp(&got[k], &want[k], sizeof(double)) != 0) {
			fprintf(stderr, "token %.*s after '%.*s': feature %d is %.17g, the reference %.17g\n", (int)n, t,
				(int)nb, before, k, got[k], want[k]);
			test_failures++;
		}
	double p = ref_score(want), q = -1;
	bool secret = exai__cls_secret(t, n, before, nb, &q);
	if (secret != (p >= exai__cls_threshold()) || (secret && memcmp(&p, &q, sizeof(p)) != 0) ||
	    exai__cls_score(got) != p) {
		fprintf(stderr, "token %.*s: decision %d score %.17g, the reference %.17g\n", (int)n, t, secret, q, p);
		test_failures++;
	}
	cls_tokens++;
	cls_secrets += secret;
}

/* Every token stage 2 would score in @text (and the same token after other contexts). */
static void cls_text(const char *text, size_t len)
{
	const bool *tok = exai__cls_token_table();
	for (size_t i = 0, j; i < len; i = j) {
		for (j = i; j < len && tok[(unsigned char)text[j]]; j++)
			;
		size_t b = j;
		while (b > i && (text[b - 1] == '.' || text[b - 1] == '-' || text[b - 1] == '_'))
			b--;
		if (b - i >= 8 && b - i <= 400) {
			size_t nb = i > 40 ? 40 : i;
			cls_compare(text + i, b - i, text + i - nb, nb);
		}
		j += j == i;
	}
}

static void cls_corpus_text(const char *text, size_t len, void *ud)
{
	(void)ud;
	cls_text(text, len);
}

static void cls_corpora(void)
{
	scrub_dev_texts(cls_corpus_text, NULL);
}

/* Random tokens of the shapes train.py draws (and look-alikes), after random contexts that
 * hold a context word, part of one, or one cut by the 32-byte limit. */
static void cls_random(void)
{
	static const char *const alphabets[] = {
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "0123456789abcdef", "0123456789ABCDEF",
		"abcdefghijklmnopqrstuvwxyz0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_.-", "etaoinshrdlu_-.",
		"abcdefghijklmnopqrstuvwxyz", "0123456789", "a1",
	};
	static const char *const ctx[] = { "api_key = ", "TOKEN: ", "Secret=", "passwd ", "PWD=", "Authorization: Bearer ",
					   "credentials ", "ap", "ke", "the value ", "", "x" };
	for (int t = 0; t < 30000; t++) {
		char tok[3000], before[64];
		const char *al = alphabets[rnd() % EXAI__ARRAY_SIZE(alphabets)];
		size_t al_n = strlen(al), n = t % 100 ? 1 + rnd() % 220 : 1 + rnd() % (sizeof(tok) - 1); /* and a few long ones */
		for (size_t i = 0; i < n; i++)
			tok[i] = al[rnd() % al_n];
		if (rnd() % 20 == 0) { /* a UUID, or one byte off */
			n = 36;
			for (size_t i = 0; i < n; i++)
				tok[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : "0123456789abcdefABCDEF"[rnd() % 22];
			if (rnd() % 2)
				tok[rnd() % n] = "-gZ"[rnd() % 3];
		}
		size_t pad = rnd() % 40, nb = 0;
		for (; nb < pad; nb++)
			before[nb] = (char)('a' + rnd() % 26);
		const char *c = ctx[rnd() % EXAI__ARRAY_SIZE(ctx)];
		memcpy(before + nb, c, strlen(c));
		nb += strlen(c);
		for (size_t k = 0, tail = rnd() % 24; k < tail && nb < sizeof(before); k++)
			before[nb++] = " =:\"'xyz"[rnd() % 8];
		cls_compare(tok, n, before, nb);
	}
}

/* ---- the decoders: which runs are decoded and handed on ---------------------------------- */

static int ref_hex(unsigned char c)
{
	return isdigit(c) ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* The decoded form of [a, b) by @kind ('h' hex, 'b' base64, 'u' URL, 'e' string escapes). */
static size_t ref_decode(char kind, const char *t, size_t a, size_t b, char *out)
{
	size_t o = 0;
	if (kind == 'h') {
		for (size_t i = a; i + 1 < b; i += 2)
			out[o++] = (char)(ref_hex((unsigned char)t[i]) << 4 | ref_hex((unsigned char)t[i + 1]));
		return o;
	}
	if (kind == 'b')
		return (size_t)exai__b64_decode((uint8_t *)out, t + a, b - a);
	for (size_t i = a; i < b;) {
		unsigned char c = (unsigned char)t[i];
		if (kind == 'u' && c == '%' && i + 3 <= b && ref_hex((unsigned char)t[i + 1]) >= 0 && ref_hex((unsigned char)t[i + 2]) >= 0) {
			out[o++] = (char)(ref_hex((unsigned char)t[i + 1]) << 4 | ref_hex((unsigned char)t[i + 2]));
			i += 3;
			continue;
		}
		if (kind == 'e' && c == '\\' && i + 1 < b) {
			const char *from = "nrt\"'\\/0", *to = "\n\r\t\"'\\/";
			const char *e = t[i + 1] ? strchr(from, t[i + 1]) : NULL;
			if (e) {
				out[o++] = to[e - from]; /* '0' -> the terminating NUL */
				i += 2;
				continue;
			}
			if (t[i + 1] == 'x' && i + 3 < b && ref_hex((unsigned char)t[i + 2]) >= 0 && ref_hex((unsigned char)t[i + 3]) >= 0) {
				out[o++] = (char)(ref_hex((unsigned char)t[i + 2]) << 4 | ref_hex((unsigned char)t[i + 3]));
				i += 4;
				continue;
			}
			unsigned u = 0;
			bool ok = t[i + 1] == 'u' && i + 5 < b;
			for (int k = 2; ok && k < 6; k++) {
				ok = ref_hex((unsigned char)t[i + k]) >= 0;
				u = u << 4 | (unsigned)(ok ? ref_hex((unsigned char)t[i + k]) : 0);
			}
			if (ok) {
				if (u < 0x80) {
					out[o++] = (char)u;
				} else if (u < 0x800) {
					out[o++] = (char)(0xc0 | u >> 6);
					out[o++] = (char)(0x80 | (u & 0x3f));
				} else {
					out[o++] = (char)(0xe0 | u >> 12);
					out[o++] = (char)(0x80 | ((u >> 6) & 0x3f));
					out[o++] = (char)(0x80 | (u & 0x3f));
				}
				i += 6;
				continue;
			}
		}
		out[o++] = (char)c;
		i++;
	}
	return o;
}

struct run {
	size_t a, b, len;
	char data[600];
};
struct runs {
	struct run v[64];
	size_t n, seen;
	bool bad;
};

/* Appends the decoded run when it is at least 8 bytes, nine tenths of them printable. */
static void ref_run(struct runs *rs, char kind, const char *t, size_t a, size_t b)
{
	struct run *r = &rs->v[rs->n];
	r->a = a;
	r->b = b;
	r->len = ref_decode(kind, t, a, b, r->data);
	size_t printable = 0;
	for (size_t i = 0; i < r->len; i++) {
		unsigned char c = (unsigned char)r->data[i];
		printable += (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t';
	}
	if (r->len >= 8 && printable * 10 >= r->len * 9 && rs->n < EXAI__ARRAY_SIZE(rs->v) - 1)
		rs->n++;
}

/* The runs the decoders must hand on, in order: the maximal base64 runs (hex when every byte
 * is a hex digit, 32+ bytes, an even count; else 24+ bytes with a lower-case letter, an upper-case
 * one and a digit, a length not 1 mod 4), then the lines (8+ bytes) with a URL escape, then
 * those with a string escape. */
static void ref_runs(struct runs *rs, const char *t, size_t len)
{
	for (size_t i = 0, j; i < len; i = j + (j == i)) {
		bool hex = true, lo = false, up = false, dg = false;
		for (j = i; j < len && exai__b64_value((unsigned char)t[j]) >= 0; j++) {
			hex &= ref_hex((unsigned char)t[j]) >= 0;
			lo |= islower((unsigned char)t[j]) != 0;
			up |= isupper((unsigned char)t[j]) != 0;
			dg |= isdigit((unsigned char)t[j]) != 0;
		}
		size_t n = j - i;
		if (n && hex && n >= 32 && n % 2 == 0)
			ref_run(rs, 'h', t, i, j);
		else if (n >= 24 && lo && up && dg && n % 4 != 1)
			ref_run(rs, 'b', t, i, j);
	}
	for (size_t i = 0, j; i < len; i = j + 1) {
		for (j = i; j < len && t[j] != '\n'; j++)
			;
		if (j - i < 8)
			continue;
		bool pct = false, esc = false;
		for (size_t k = i; k + 1 < j; k++) {
			pct |= t[k] == '%' && k + 2 < j && ref_hex((unsigned char)t[k + 1]) >= 0 && ref_hex((unsigned char)t[k + 2]) >= 0;
			esc |= t[k] == '\\' && (!t[k + 1] || strchr("nrt\"'\\/xu0", t[k + 1]));
		}
		if (pct)
			ref_run(rs, 'u', t, i, j);
		if (esc)
			ref_run(rs, 'e', t, i, j);
	}
}

static int on_run(void *ud, const struct exai__decoded *d)
{
	struct runs *rs = ud;
	const struct run *r = rs->seen < rs->n ? &rs->v[rs->seen] : NULL;
	if (!r || d->len != r->len || memcmp(d->data, r->data, d->len) != 0 || d->src_start[0] < r->a ||
	    d->src_end[d->len - 1] > r->b)
		rs->bad = true;
	rs->seen++;
	return 0;
}

/* Texts of pieces that reach every branch: base64 of text and of random bytes, hex of both,
 * URL and string escapes (good and broken), words, new lines, NUL bytes. */
static void decode_runs(void)
{
	static const char *const pieces[] = {
		"dGhlIHNlY3JldCBpcyBoZXJlIGFuZCB0aGVyZQ", "c2VjcmV0X2tleT1BS0lBMjM0NTY3ODk", "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
		"7365637265745f6b65793d68756e7465723232", "736563726574", "%41%42%43%44", "%zz%4", "%2Fpath%3Fq%3D1",
		"\\n\\t\\\"quoted\\\"", "\\x41\\x42\\u00e9\\u20ac\\u0041", "\\q\\", "\\", "\\0", " ", "\n", "the ", "value=",
		"AbC123+/-_", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", "0123456789abcdefABCDEF", "==", "\x01\xff",
	};
	size_t runs_seen = 0;
	for (int t = 0; t < 6000; t++) {
		char text[512];
		size_t len = 0;
		while (len < 300) {
			const char *p = pieces[rnd() % EXAI__ARRAY_SIZE(pieces)];
			size_t l = strlen(p);
			if (rnd() % 8 == 0) { /* random base64 or hex bytes */
				const char *al = rnd() % 2 ? "0123456789abcdef" : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
				size_t al_n = strlen(al);
				for (size_t k = 0, m = 20 + rnd() % 40; k < m; k++)
					text[len++] = al[rnd() % al_n];
				continue;
			}
			memcpy(text + len, p, l);
			if (rnd() % 50 == 0) /* a NUL byte */
				text[len] = 0;
			len += l;
		}
		struct runs want = { 0 };
		ref_runs(&want, text, len);
		CHECK(exai__decode_runs(text, len, on_run, &want) == 0);
		if (want.bad || want.seen != want.n) {
			fprintf(stderr, "decoders: text %d: %zu runs handed on, %zu expected%s\n", t, want.seen, want.n,
				want.bad ? ", some differ" : "");
			test_failures++;
		}
		runs_seen += want.n;
	}
	printf("decoders: 6000 texts, %zu runs handed on\n", runs_seen);
	CHECK(runs_seen > 6000);
}

/* ---- runs of a byte class (64 bytes at a time) --------------------------------------------- */

struct span_list {
	size_t v[2 * 1100], n;
};

static int on_span(void *ud, size_t a, size_t b)
{
	struct span_list *l = ud;
	if (l->n + 2 <= EXAI__ARRAY_SIZE(l->v)) {
		l->v[l->n++] = a;
		l->v[l->n++] = b;
	}
	return 0;
}

static void class_runs(void)
{
	const bool *tok = exai__cls_token_table();
	static const char bytes[] = "aZ09+/-_.=,:; \n\"'%\\\x80\xff";
	size_t total = 0;
	for (int t = 0; t < 6000; t++) {
		char text[1100];
		size_t len = rnd() % sizeof(text), min = rnd() % 3 ? 1 + rnd() % (t % 4 ? 40 : 100) : 0;
		for (size_t i = 0; i < len; i++) /* runs of a few bytes to hundreds */
			text[i] = i && rnd() % 8 ? text[i - 1] == ' ' ? 'a' : text[i - 1] : bytes[rnd() % (sizeof(bytes) - 1)];
		for (size_t i = 0; i < len; i++)
			if (rnd() % 4 == 0)
				text[i] = bytes[rnd() % (sizeof(bytes) - 1)];
		for (int cls = EXAI__CR_B64; cls <= EXAI__CR_TOKEN; cls++) {
			struct span_list got = { .n = 0 }, want = { .n = 0 };
			CHECK(exai__class_runs(text, len, cls, min, on_span, &got) == 0);
			for (size_t i = 0, j; i < len; i = j + (j == i)) {
				for (j = i; j < len && (cls == EXAI__CR_B64 ? exai__b64_value((unsigned char)text[j]) >= 0 : tok[(unsigned char)text[j]]); j++)
					;
				if (j > i && j - i >= min)
					on_span(&want, i, j);
			}
			if (got.n != want.n || memcmp(got.v, want.v, got.n * sizeof(size_t)) != 0) {
				fprintf(stderr, "class %d runs of %zu bytes (min %zu): %zu found, %zu expected\n", cls, len, min,
					got.n / 2, want.n / 2);
				test_failures++;
			}
			total += want.n / 2;
		}
	}
	printf("class runs: 6000 texts, %zu runs\n", total);
}

int main(void)
{
	placeholder_rules();
	class_runs();
	decode_runs();
	cls_corpora();
	size_t corpus_tokens = cls_tokens;
	cls_random();
	printf("stage 2: %zu corpus tokens, %zu random ones, %zu at or above the threshold\n", corpus_tokens,
	       cls_tokens - corpus_tokens, cls_secrets);
	CHECK(corpus_tokens > 5000 && cls_secrets > 500);
	return test_done();
}
