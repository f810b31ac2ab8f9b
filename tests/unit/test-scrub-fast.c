/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-fast: the scrubber's fast paths give exactly what the plain computations they
 * replace give. Each reference below is the straightforward form of a rule (as the pack README
 * and train.py state it); the library's form is compared with it on random inputs built to
 * reach the rule's edges. */
#include <ctype.h>

#include "scrub/scrub-internal.h"
#include "test.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
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
	for (int t = 0; t < 200000; t++) {
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

int main(void)
{
	placeholder_rules();
	return test_done();
}
