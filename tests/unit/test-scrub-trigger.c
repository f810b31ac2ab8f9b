/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-trigger: the run finders (trigger.c) and the regex analysis (analyse.c). The
 * scalar, SSE2 and AVX2 run scans report the same runs as a byte-by-byte reference on random
 * texts of every length; the analysis finds the literals and offsets a window relies on. */
#include "scrub/scrub-internal.h"
#include "test.h"

struct run {
	unsigned spec;
	size_t start, end;
	unsigned body, seps;
};

struct runs {
	struct run v[4096];
	size_t n;
};

static int collect(void *ud, unsigned spec, size_t start, size_t end, unsigned body, unsigned seps)
{
	struct runs *r = ud;
	if (r->n < EXAI__ARRAY_SIZE(r->v))
		r->v[r->n++] = (struct run){ spec, start, end, body, seps };
	return 0;
}

static bool in_class(int run, unsigned char c)
{
	switch (run) {
	case EXAI__RUN_DIGIT:
		return c >= '0' && c <= '9';
	case EXAI__RUN_HEX:
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	case EXAI__RUN_UPPER_ALNUM:
		return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
	case EXAI__RUN_BASE58:
		return c && strchr("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", c);
	default:
		return c && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-", c);
	}
}

/* The reference: a byte at a time, as docs/formats/scrub-pack.md words it. */
static void reference(const struct exai__run_spec *sp, unsigned n, const char *t, size_t len, struct runs *out)
{
	for (unsigned k = 0; k < n; k++) {
		size_t i = 0;
		while (i < len) {
			unsigned char c = (unsigned char)t[i];
			bool sep = !in_class(sp[k].run, c) && c && memchr(sp[k].seps, c, sp[k].n_seps);
			if (!in_class(sp[k].run, c) && !(sep && sp[k].adjacent)) {
				i++;
				continue;
			}
			size_t s = i;
			unsigned body = 0, seps = 0;
			while (i < len) {
				unsigned char d = (unsigned char)t[i];
				bool is_sep = !in_class(sp[k].run, d) && d && memchr(sp[k].seps, d, sp[k].n_seps);
				if (in_class(sp[k].run, d)) {
					body++;
				} else if (is_sep && (sp[k].adjacent ||
						      (i > s && in_class(sp[k].run, (unsigned char)t[i - 1]) && i + 1 < len &&
						       in_class(sp[k].run, (unsigned char)t[i + 1])))) {
					seps++;
				} else {
					break;
				}
				i++;
			}
			if (body >= (sp[k].min ? sp[k].min : 1) && seps >= sp[k].min_seps)
				collect(out, k, s, i, body, seps);
		}
	}
}

static int run_cmp(const void *a, const void *b)
{
	const struct run *x = a, *y = b;
	if (x->spec != y->spec)
		return x->spec < y->spec ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void random_runs(void)
{
	static const struct exai__run_spec specs[] = {
		{ .run = EXAI__RUN_DIGIT, .seps = " -./", .n_seps = 4, .min = 4, .min_seps = 1 },
		{ .run = EXAI__RUN_DIGIT, .min = 9 },
		{ .run = EXAI__RUN_HEX, .seps = ":", .n_seps = 1, .adjacent = true, .min = 1, .min_seps = 3 },
		{ .run = EXAI__RUN_HEX, .min = 32 },
		{ .run = EXAI__RUN_UPPER_ALNUM, .seps = " -", .n_seps = 2, .min = 12, .min_seps = 2 },
		{ .run = EXAI__RUN_BASE58, .min = 26 },
		{ .run = EXAI__RUN_BASE64, .seps = ".", .n_seps = 1, .min = 40 },
		{ .run = EXAI__RUN_BASE64, .min = 70 },
	};
	const unsigned n = EXAI__ARRAY_SIZE(specs);
	static const char alphabet[] = "0123456789012345678901234567abcdefABCDEFxyzXYZIOl+/_-- ..::::\n\"'=\x80\xff";
	static struct runs want, got;
	char text[700];
	srand(11);
	size_t total = 0;
	for (int round = 0; round < 3000; round++) {
		size_t len = (size_t)rand() % sizeof(text);
		/* long stretches of one kind now and then, so that runs cross 64-byte blocks */
		int bias = rand() % 4;
		for (size_t i = 0; i < len; i++) {
			if (bias == 1 && rand() % 8)
				text[i] = (char)('0' + rand() % 10);
			else if (bias == 2 && rand() % 10)
				text[i] = "ABCDEFGHJKabcdefghijk123456789"[rand() % 30];
			else
				text[i] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
		}
		want.n = 0;
		reference(specs, n, text, len, &want);
		qsort(want.v, want.n, sizeof(want.v[0]), run_cmp);
		total += want.n;
		for (int impl = EXAI__SIMD_SCALAR; impl <= EXAI__SIMD_BEST; impl++) {
			got.n = 0;
			CHECK(exai__runs_scan(specs, n, text, len, collect, &got, impl) == 0);
			qsort(got.v, got.n, sizeof(got.v[0]), run_cmp);
			bool same = got.n == want.n;
			for (size_t i = 0; same && i < got.n; i++)
				same = memcmp(&got.v[i], &want.v[i], sizeof(got.v[i])) == 0;
			if (!same) {
				fprintf(stderr, "round %d, implementation %d, length %zu: %zu runs, the reference %zu\n", round, impl,
					len, got.n, want.n);
				test_failures++;
				return;
			}
		}
	}
	CHECK(total > 10000); /* the texts did hold runs of every kind */
}

static void analysis(void)
{
	struct exai__re_info ri;
	CHECK_OK(exai__regex_analyse(&ri, "\\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})\\b", false));
	CHECK(ri.n_lits == 4 + 1 && ri.lo == 0 && ri.hi == 0 && ri.minw == 20 && ri.maxw == 20);
	/* a keyword alternation after a bounded prefix: the literal starts 0..40 bytes in */
	CHECK_OK(exai__regex_analyse(&ri, "(?:^|[^a-z])(?i:[a-z_]{0,40}?(?:heroku|dyno))[ =]{1,3}([0-9a-f]{32})", false));
	CHECK(ri.n_lits == 2 && ri.lo == 0 && ri.hi == 41 && ri.lits[0].caseless);
	/* sk-ant-: the longest fixed run wins over its parts */
	CHECK_OK(exai__regex_analyse(&ri, "\\b(sk\\-ant\\-api03\\-[A-Za-z0-9_\\-]{93}AA)", false));
	CHECK(ri.n_lits == 1 && ri.lits[0].len == 13 && memcmp(ri.lits[0].s, "sk-ant-api03-", 13) == 0);
	/* an optional part is no factor; a caseless pattern gives caseless literals */
	CHECK_OK(exai__regex_analyse(&ri, "(?:xoxb-)?[0-9]{10}", true));
	CHECK(ri.n_lits == 0 || !(ri.n_lits == 1 && memcmp(ri.lits[0].s, "xoxb-", 5) == 0));
	CHECK_OK(exai__regex_analyse(&ri, "token=[a-z]{8}", true));
	CHECK(ri.n_lits == 1 && ri.lits[0].caseless && ri.lits[0].len == 6);
	/* what the analyser does not know is refused, never guessed */
	CHECK_RC(exai__regex_analyse(&ri, "(a)\\1", false), -EINVAL);
	CHECK_RC(exai__regex_analyse(&ri, "(tk_(?R)?x)", false), -EINVAL);
	CHECK_RC(exai__regex_analyse(&ri, "a)", false), -EINVAL);
	CHECK_RC(exai__regex_analyse(&ri, "(?i)abc", false), -EINVAL);
	/* unbounded widths */
	CHECK_OK(exai__regex_analyse(&ri, "ab+c*", false));
	CHECK(ri.minw == 2 && ri.maxw == EXAI__RE_INF);
}

int main(void)
{
	random_runs();
	analysis();
	return test_done();
}
