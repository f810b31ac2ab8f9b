/* SPDX-License-Identifier: Apache-2.0 */
/* test-jcs: RFC 8785 canonical JSON against the vectors in ../shared/vectors/jcs. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>

#include "core-internal.h"
#include "test.h"

static void vector(const char *name)
{
	char in[256], out[256];
	snprintf(in, sizeof(in), "vectors/jcs/input/%s.json", name);
	snprintf(out, sizeof(out), "vectors/jcs/output/%s.json", name);
	size_t ilen, olen, clen = 0;
	char *input = test_read_file(test_shared(in), &ilen);
	char *want = test_read_file(test_shared(out), &olen);
	char *canon = NULL;
	CHECK_OK(exai_jcs_canonicalize(&canon, &clen, input, ilen));
	if (canon) {
		CHECK(clen == olen);
		CHECK(memcmp(canon, want, olen < clen ? olen : clen) == 0);
		if (clen != olen || memcmp(canon, want, olen) != 0)
			fprintf(stderr, "%s:\n got  %s\n want %s\n", name, canon, want);
	}
	exai_free(canon);
	free(input);
	free(want);
}

/* Every line "hex-ieee,expected" of the ECMAScript number vector. */
static void numbers(void)
{
	size_t len;
	char *all = test_read_file(test_shared("vectors/jcs/es6-numbers-first10000.txt"), &len);
	int lines = 0, bad = 0;
	for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
		char *comma = strchr(line, ',');
		if (!comma)
			continue;
		*comma = '\0';
		uint64_t bits = strtoull(line, NULL, 16);
		double d;
		memcpy(&d, &bits, sizeof(d));
		char got[32];
		lines++;
		if (exai__jcs_number(d, got) != 0 || strcmp(got, comma + 1) != 0) {
			if (bad++ < 10)
				fprintf(stderr, "number %s: got %s, want %s\n", line, got, comma + 1);
		}
	}
	CHECK(lines == 10000);
	CHECK(bad == 0);
	free(all);
}

static void expect_canon(const char *in, const char *want)
{
	char *canon = NULL;
	CHECK_OK(exai_jcs_canonicalize(&canon, NULL, in, strlen(in)));
	CHECK_STREQ(canon, want);
	exai_free(canon);
}

static void errors(void)
{
	char *canon = (char *)"untouched";
	CHECK_RC(exai_jcs_canonicalize(&canon, NULL, "{\"a\":1,\"a\":2}", 13), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "duplicate") != NULL);
	CHECK_STREQ(canon, "untouched"); /* out-parameter untouched on failure */
	CHECK_RC(exai_jcs_canonicalize(&canon, NULL, "[1,]", 4), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "line 1") != NULL);
	CHECK_RC(exai_jcs_canonicalize(&canon, NULL, "1e400", 5), -ERANGE);
	CHECK_RC(exai_jcs_canonicalize(&canon, NULL, "\"\xff\"", 3), -EBADMSG);
	CHECK_RC(exai_jcs_canonicalize(&canon, NULL, "[1] [2]", 7), -EBADMSG);
	CHECK_RC(exai_jcs_canonicalize(&canon, NULL, "", 0), -EINVAL);
	CHECK_RC(exai_jcs_canonicalize(NULL, NULL, "1", 1), -EINVAL);
	char nan[32];
	CHECK_RC(exai__jcs_number(NAN, nan), -ERANGE);
	CHECK_RC(exai__jcs_number(INFINITY, nan), -ERANGE);

	/* Integers built in code must be exact as doubles. */
	json_t *big = json_integer(9007199254740993LL);
	char *out = NULL;
	CHECK_RC(exai__jcs_dump(big, &out, NULL), -ERANGE);
	json_decref(big);
}

static void rules(void)
{
	/* Names sort by UTF-16 code units: U+1F600 (D83D DE00) before U+FB33, unlike UTF-8. */
	expect_canon("{\"\xef\xac\xb3\":1,\"\xf0\x9f\x98\x80\":2}", "{\"\xf0\x9f\x98\x80\":2,\"\xef\xac\xb3\":1}");
	expect_canon("{ \"b\" : [ 1.0 , -0 , 1e21 , 1e-7 , 123e-2 ] , \"a\" : null }",
		     "{\"a\":null,\"b\":[1,0,1e+21,1e-7,1.23]}");
	expect_canon("\"\\u0001\\u001f/\\u007f\\u00e9\\n\"", "\"\\u0001\\u001f/\x7f\xc3\xa9\\n\"");
	expect_canon("{\"a\":\"x\\u0000\"}", "{\"a\":\"x\\u0000\"}");
	/* U+0000 in a member name is refused (documented in core.h). */
	char *canon = NULL;
	CHECK_RC(exai_jcs_canonicalize(&canon, NULL, "{\"a\\u0000b\":1}", 14), -EBADMSG);
	expect_canon("12345678901234567890", "12345678901234567000");
	expect_canon("[true,false,{}, []]", "[true,false,{},[]]");
}

/* Integers: below 2^53 the fast path (plain digits), from 2^53 on the general algorithm. Each
 * output must read back as the same double and match ECMAScript's Number::toString. */
static void integers(void)
{
	static const struct {
		double d;
		const char *want;
	} cases[] = {
		{ 1, "1" },
		{ -1, "-1" },
		{ 42, "42" },
		{ 1000000, "1000000" },
		{ 4294967296.0, "4294967296" },
		{ 9007199254740991.0, "9007199254740991" },   /* 2^53 - 1: fast path */
		{ -9007199254740991.0, "-9007199254740991" },
		{ 9007199254740992.0, "9007199254740992" },   /* 2^53: general path */
		{ 9007199254740994.0, "9007199254740994" },
		{ 1e20, "100000000000000000000" },
		{ 123456789012345680000.0, "123456789012345680000" },
		{ 1e21, "1e+21" },
		{ -1e21, "-1e+21" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[32];
		CHECK_OK(exai__jcs_number(cases[i].d, got));
		CHECK_STREQ(got, cases[i].want);
		CHECK(strtod(got, NULL) == cases[i].d);
	}
	/* Every integer of a sweep across magnitudes reads back and has no exponent or point. */
	for (double d = 1; d < 9007199254740992.0; d = d * 3 + 7) {
		char got[32], want[32];
		CHECK_OK(exai__jcs_number(d, got));
		snprintf(want, sizeof(want), "%.0f", d);
		CHECK_STREQ(got, want);
	}
}

int main(void)
{
	static const char *names[] = { "arrays", "french", "structures", "unicode", "values", "weird" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		vector(names[i]);
	numbers();
	integers();
	errors();
	rules();
	return test_done();
}
