/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-trigger: the run finders (trigger.c) and the regex analysis (analyse.c). The
 * scalar, SSSE3, AVX2 and AVX-512 run scans, each forced in turn (one the CPU lacks is named
 * and left out), report the same runs as a byte-by-byte reference on random texts of every
 * length, for sixteen, eleven, eight and five specs; the analysis finds the literals and offsets a window relies on; the
 * shapes parse and fit as documented, a bad trigger is refused by name, and the built-in
 * pack's shapes, leads and run validation lose no finding: stage 1 finds the same with and
 * without them on the development corpus and on texts made around every trigger pattern's
 * examples; UTF-8 validation (its ASCII fast path) agrees with a byte-at-a-time reference. */
#include "scrub-builtin.h"

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
			if (body >= (sp[k].min ? sp[k].min : 1) && seps >= sp[k].min_seps &&
			    (!sp[k].has_first || (sp[k].first[(unsigned char)t[s] / 64] >> ((unsigned char)t[s] % 64) & 1)) &&
			    (!sp[k].has_before || (s > 0 && (sp[k].before[(unsigned char)t[s - 1] / 64] >> ((unsigned char)t[s - 1] % 64) & 1))))
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
		/* first byte 1, 3, A or a; after a quote */
		{ .run = EXAI__RUN_BASE58, .min = 3, .has_first = true, .first = { 1ull << '1' | 1ull << '3', 1ull << ('A' - 64) | 1ull << ('a' - 64) } },
		{ .run = EXAI__RUN_HEX, .min = 2, .has_before = true, .before = { 1ull << '"' | 1ull << '\'' } },
		{ .run = EXAI__RUN_DIGIT, .seps = "-", .n_seps = 1, .min = 1, .min_seps = 1 },
		{ .run = EXAI__RUN_HEX, .seps = " ", .n_seps = 1, .min = 8, .min_seps = 2 },
		{ .run = EXAI__RUN_UPPER_ALNUM, .min = 20, .has_before = true, .before = { 1ull << '=' | 1ull << ' ', 1ull << ('_' - 64) } },
		{ .run = EXAI__RUN_DIGIT, .seps = ".", .n_seps = 1, .adjacent = true, .min = 3, .min_seps = 2 },
		{ .run = EXAI__RUN_BASE58, .seps = "-", .n_seps = 1, .min = 10, .min_seps = 1 },
		/* a byte from 0x80 may come before the run */
		{ .run = EXAI__RUN_BASE64, .min = 16, .has_before = true, .before = { 1ull << '"', 0, 0, 1ull << (0xff - 192) } },
	};
	/* all sixteen specs (two groups of eight lanes for AVX-512), eleven (eight and four), eight,
	 * five */
	static const unsigned n_specs[] = { EXAI__ARRAY_SIZE(specs), 11, 8, 5 };
	static const char alphabet[] = "0123456789012345678901234567abcdefABCDEFxyzXYZIOl+/_-- ..::::\n\"'=\x80\xff";
	static struct runs want, got;
	char text[700];
	static const char *const names[] = { "scalar", "SSSE3", "AVX2", "AVX-512", "the best" };
	int best = exai__runs_best_impl();
	for (int impl = EXAI__SIMD_SCALAR; impl <= EXAI__SIMD_AVX512; impl++)
		if (impl > best)
			printf("run scan: %s not compared: this CPU lacks it (the scan falls back to %s)\n", names[impl], names[best]);
	srand(11);
	size_t total = 0;
	for (int round = 0; round < 6000; round++) {
		unsigned n = n_specs[round % 4];
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
			if (impl > best && impl != EXAI__SIMD_BEST)
				continue;
			got.n = 0;
			CHECK(exai__runs_scan(specs, n, text, len, collect, &got, impl) == 0);
			qsort(got.v, got.n, sizeof(got.v[0]), run_cmp);
			bool same = got.n == want.n;
			for (size_t i = 0; same && i < got.n; i++)
				same = memcmp(&got.v[i], &want.v[i], sizeof(got.v[i])) == 0;
			if (!same) {
				fprintf(stderr, "round %d, %u specs, %s, length %zu: %zu runs, the reference %zu\n", round, n,
					names[impl], len, got.n, want.n);
				test_failures++;
				return;
			}
		}
	}
	CHECK(total > 15000); /* the texts did hold runs of every kind */
	printf("run scan: %zu runs, the same from every implementation up to %s\n", total, names[best]);
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

static void shapes(void)
{
	struct exai__shape sh;
	CHECK_OK(exai__shape_parse(&sh, "3 2 4"));
	CHECK(sh.n == 3 && sh.lo[0] == 3 && sh.hi[0] == 3 && sh.lo[2] == 4 && sh.hi[2] == 4);
	CHECK_OK(exai__shape_parse(&sh, " 1-3 1-3  1-3 1-3 "));
	CHECK(sh.n == 4 && sh.lo[3] == 1 && sh.hi[3] == 3);
	CHECK_OK(exai__shape_parse(&sh, "4096"));
	static const char *const bad[] = { "", " ", "0", "3-2", "4097", "1 2 3 4 5 6 7 8 9", "3,2", "3- 4", "-3", "a", "3 x" };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(bad); i++)
		CHECK_RC(exai__shape_parse(&sh, bad[i]), -EINVAL);
	/* the groups of a run, and where a shape fits */
	const char *t = "call 555 123-45-6789 now";
	uint32_t gs[8];
	uint16_t gl[8];
	unsigned n = exai__run_groups(EXAI__RUN_DIGIT, t, 5, 20, gs, gl, 8);
	CHECK(n == 4 && gs[0] == 0 && gl[0] == 3 && gs[1] == 4 && gl[1] == 3 && gs[3] == 11 && gl[3] == 4);
	CHECK(exai__run_groups(EXAI__RUN_DIGIT, t, 5, 20, gs, gl, 3) == 4); /* more than max */
	size_t span = 0;
	CHECK_OK(exai__shape_parse(&sh, "3 2 4"));
	CHECK(!exai__shape_fits(&sh, gs, gl, 4, 0, &span));
	CHECK(exai__shape_fits(&sh, gs, gl, 4, 1, &span) && span == 11);
	CHECK(!exai__shape_fits(&sh, gs, gl, 4, 2, &span)); /* past the last group */
}

/* A format-2 pack of one pattern with @trigger (a JSON object's members). */
static int load_trigger(const char *trigger)
{
	char pack[2048];
	snprintf(pack, sizeof(pack),
		 "{\"format\": 2, \"group\": \"t\", \"patterns\": [{\"id\": \"t-ssn\", \"class\": \"us_ssn\", \"kind\": \"pii\","
		 " \"severity\": \"high\", \"regex\": \"(?:^|[^0-9])([0-9]{3}-[0-9]{2}-[0-9]{4})(?:[^0-9]|$)\", \"group\": 1,"
		 " \"caseless\": false, \"keywords\": [], \"validator\": \"us_ssn\", \"min_entropy\": 0,"
		 " \"trigger\": {%s},"
		 " \"examples\": {\"positive\": [{\"text\": \"ssn 536-22-1984.\", \"secret\": \"536-22-1984\"}], \"negative\": [\"x\"]}}]}",
		 trigger);
	struct exai__pack_set set;
	memset(&set, 0, sizeof(set));
	int r = exai__pack_load(&set, "t", pack, strlen(pack));
	exai__pack_set_free(&set);
	return r;
}

static void bad_triggers(void)
{
	CHECK_OK(load_trigger("\"run\": \"digit\", \"min\": 9, \"separators\": \"-\", \"shapes\": [\"3 2 4\"], \"lead\": 1, \"validate\": true"));
	CHECK_OK(load_trigger("\"run\": \"digit\", \"min\": 9, \"separators\": \"-\", \"shapes\": [\"3 2 4\", \"9\"]"));
	static const struct {
		const char *trigger, *msg;
	} bad[] = {
		{ "\"run\": \"digit\", \"min\": 9, \"shapes\": []", "'shapes' must be an array of 1 to 8 strings" },
		{ "\"run\": \"digit\", \"min\": 9, \"shapes\": \"9\"", "'shapes' must be an array of 1 to 8 strings" },
		{ "\"run\": \"digit\", \"min\": 9, \"shapes\": [\"9\", \"3-x\"]", "shape #2 must be 1 to 8 group lengths" },
		{ "\"run\": \"digit\", \"min\": 9, \"shapes\": [9]", "shape #1 must be" },
		{ "\"run\": \"digit\", \"min\": 9, \"shapes\": [\"9\"], \"lead\": 65", "'lead' must be an integer from 0 to 64" },
		{ "\"run\": \"digit\", \"min\": 9, \"shapes\": [\"9\"], \"validate\": 1", "'validate' must be true or false" },
		{ "\"run\": \"digit\", \"min\": 9, \"lead\": 0", "'lead' needs 'shapes'" },
		{ "\"run\": \"digit\", \"min\": 9, \"validate\": true", "'validate' needs 'shapes'" },
	};
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(bad); i++) {
		CHECK_RC(load_trigger(bad[i].trigger), -EINVAL);
		if (!strstr(exai_errmsg(), bad[i].msg) || !strstr(exai_errmsg(), "t-ssn")) {
			fprintf(stderr, "trigger {%s}: '%s' does not say '%s'\n", bad[i].trigger, exai_errmsg(), bad[i].msg);
			test_failures++;
		}
	}
}

/* Stage 1's findings on @text, as "pattern start end" lines. */
static void findings(exai_scrubber *s, const char *text, size_t len, struct exai__buf *out)
{
	exai_scrub_result *r = NULL;
	EXAI_OPTS(exai_scrub_text_opts, o, .no_audit = 1);
	CHECK_OK(exai_scrub_text(&r, s, text, len, &o));
	out->len = 0;
	for (size_t k = 0; k < exai_scrub_result_count(r); k++) {
		const struct exai_scrub_finding *f = exai_scrub_result_finding(r, k);
		CHECK(exai__buf_printf(out, "%s %zu %zu\n", f->pattern, f->start, f->end) == 0);
	}
	exai_scrub_result_free(r);
}

static size_t compared, found_any;

static void same_findings(exai_scrubber *a, exai_scrubber *b, const char *text, size_t len)
{
	struct exai__buf x = { 0 }, y = { 0 };
	findings(a, text, len, &x);
	findings(b, text, len, &y);
	compared++;
	found_any += x.len > 0;
	if (x.len != y.len || (x.len && memcmp(x.data, y.data, x.len) != 0)) {
		fprintf(stderr, "with the trigger filters:\n%.*s without:\n%.*s on: %.*s\n", (int)x.len, x.data ? x.data : "",
			(int)y.len, y.data ? y.data : "", (int)(len < 300 ? len : 300), text);
		test_failures++;
	}
	exai__buf_free(&x);
	exai__buf_free(&y);
}

static void same_findings_text(const char *text, size_t len, void *ud)
{
	exai_scrubber **pair = ud;
	same_findings(pair[0], pair[1], text, len);
}

static void filters_lose_nothing(void)
{
	char *state = test_tmpdir();
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state);
	exai_ctx *ctx = NULL;
	CHECK_OK(exai_ctx_new(&ctx, &co));
	EXAI_OPTS(exai_scrubber_opts, so, .flags = EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	exai_scrubber *with = NULL, *without = NULL;
	CHECK_OK(exai_scrubber_new(&with, ctx, &so));
	CHECK_OK(exai_scrubber_new(&without, ctx, &so));
	if (!with || !without) {
		free(state);
		return;
	}
	size_t n_shaped = 0;
	for (size_t i = 0; i < without->set.n; i++) {
		struct exai__trigger *t = &without->set.pats[i].trigger;
		n_shaped += t->n_shapes > 0;
		t->n_shapes = 0;
		t->validate = false;
	}
	CHECK(n_shaped >= 20);
	/* the development corpus */
	exai_scrubber *pair[2] = { with, without };
	scrub_dev_texts(same_findings_text, pair);
	/* every trigger pattern's examples in other surroundings, with digits and separators
	 * changed, and next to keywords */
	static const char *const around[][2] = {
		{ "", "" }, { " ", " " }, { "x", "" }, { "", "x" }, { "1", "" }, { "", "1" }, { "-", "" }, { "", "-" },
		{ ".", "" }, { "", "." }, { "1 ", "" }, { "", " 2" }, { "12-", "" }, { "", ".5" }, { "\"", "\"" },
		{ "ip ", ":80" }, { "NHS ", " ok" }, { "ssn 1.", "" }, { "routing ", "0" }, { "call ", "-1" },
	};
	srand(5);
	char buf[1024];
	for (size_t i = 0; i < with->set.n; i++) {
		const struct exai__pattern *p = &with->set.pats[i];
		if (p->trigger.run < 0)
			continue;
		json_t *pos = json_object_get(json_array_get(with->set.examples, i), "positive");
		size_t k;
		json_t *ex;
		json_array_foreach(pos, k, ex) {
			const char *sec = json_string_value(json_object_get(ex, "secret"));
			if (!sec || strlen(sec) > 400)
				continue;
			for (size_t a = 0; a < EXAI__ARRAY_SIZE(around); a++)
				for (int m = 0; m < 8; m++) {
					int n = snprintf(buf, sizeof(buf), "%s %s%s%s %s", p->n_keywords ? p->keywords[0] : "", around[a][0],
							 sec, around[a][1], p->n_keywords ? p->keywords[p->n_keywords - 1] : "");
					char *body = buf + strlen(p->n_keywords ? p->keywords[0] : "") + 1 + strlen(around[a][0]);
					for (int c = 0; m && c < 1 + rand() % 3; c++) { /* change, insert or drop a byte */
						size_t at = (size_t)rand() % strlen(sec);
						const char *pick = "0123456789 -.:/AaZ";
						if (rand() % 3 == 0 && n > 1) {
							memmove(body + at, body + at + 1, (size_t)n - (size_t)(body - buf) - at);
							n--;
						} else if (rand() % 2 == 0 && n + 1 < (int)sizeof(buf)) {
							memmove(body + at + 1, body + at, (size_t)n - (size_t)(body - buf) - at + 1);
							body[at] = pick[rand() % 18];
							n++;
						} else {
							body[at] = pick[rand() % 18];
						}
					}
					same_findings(with, without, buf, strlen(buf));
				}
		}
	}
	printf("trigger filters: %zu texts compared, %zu with findings, the same with and without\n", compared, found_any);
	CHECK(found_any > 500);
	exai_scrubber_free(with);
	exai_scrubber_free(without);
	exai_ctx_unref(ctx);
	test_rmrf(state);
	free(state);
}

/* UTF-8 validation a byte at a time (RFC 3629), to hold exai__utf8_valid's ASCII fast path to. */
static bool utf8_reference(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 9;
		if (k == 9 || i + k >= n + (k == 0))
			return false;
		uint32_t cp = k == 0 ? c : c & (0x3f >> k);
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += k + 1;
	}
	return true;
}

static void utf8(void)
{
	static const char *const pieces[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\xe2\x82", "\xed\xa0\x80",
					      "\xc0\xaf", "\xf4\x90\x80\x80", "\x80", "\xff" };
	unsigned char t[300];
	srand(3);
	size_t valid = 0, invalid = 0;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)rand() % 200;
		for (size_t i = 0; i < len; i++)
			t[i] = (unsigned char)('a' + rand() % 26);
		for (int k = rand() % 3; k > 0 && len; k--) { /* a sequence somewhere, perhaps cut by the end */
			const char *pc = pieces[rand() % EXAI__ARRAY_SIZE(pieces)];
			size_t at = (size_t)rand() % len;
			for (size_t j = 0; pc[j] && at + j < len; j++)
				t[at + j] = (unsigned char)pc[j];
		}
		bool want = utf8_reference(t, len);
		valid += want;
		invalid += !want;
		if (exai__utf8_valid((const char *)t, len) != want) {
			fprintf(stderr, "utf-8: length %zu: %d, the reference %d\n", len, !want, want);
			test_failures++;
			return;
		}
	}
	CHECK(valid > 1000 && invalid > 1000);
}

/* not_placeholder's rule 9 (a placeholder word anywhere, any case) on short and long values:
 * the value is lowered once for short values, compared case-insensitively for long ones. */
static void placeholder_words(void)
{
	static const char *const rejected[] = { "9fQ2ChangeMe7x", "tok_REDACTED_k2Z9", "abcXXXXq9", "Zq8yourToken1", "q1w9•••••x" };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(rejected); i++)
		CHECK(!exai__validate(EXAI__V_NOT_PLACEHOLDER, rejected[i], strlen(rejected[i])));
	CHECK(exai__validate(EXAI__V_NOT_PLACEHOLDER, "9fQ2ChangXe7x", 13));
	/* rule 11 (sequences), whose search now runs only where neighbours follow a sequence */
	static const char *const seq_rejected[] = { "wxyzabcd", "7890123", "zyxw", "QWERTYU", "xK9qwertyuiZ", "a1B2c3d4e56789012x",
						    "K9ZYXWVUTSq" };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(seq_rejected); i++)
		if (exai__validate(EXAI__V_NOT_PLACEHOLDER, seq_rejected[i], strlen(seq_rejected[i]))) {
			fprintf(stderr, "not_placeholder accepts '%s'\n", seq_rejected[i]);
			test_failures++;
		}
	static const char *const seq_accepted[] = { "9087", "xK9qwertyuZ2", "K9ZYXWVUq7", "a9b8c7d6e5" };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(seq_accepted); i++)
		if (!exai__validate(EXAI__V_NOT_PLACEHOLDER, seq_accepted[i], strlen(seq_accepted[i]))) {
			fprintf(stderr, "not_placeholder rejects '%s'\n", seq_accepted[i]);
			test_failures++;
		}
	char big[700];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = "aZ3k9QpL"[i % 8];
	CHECK(exai__validate(EXAI__V_NOT_PLACEHOLDER, big, sizeof(big)));
	memcpy(big + 600, "EXAMPLE", 7);
	CHECK(!exai__validate(EXAI__V_NOT_PLACEHOLDER, big, sizeof(big)));
	memcpy(big + 600, "aZ3k9Qp", 7);
	memcpy(big + 100, "ExAmPlE", 7);
	CHECK(!exai__validate(EXAI__V_NOT_PLACEHOLDER, big, 500));
}

int main(void)
{
	random_runs();
	analysis();
	shapes();
	bad_triggers();
	filters_lose_nothing();
	utf8();
	placeholder_words();
	return test_done();
}
