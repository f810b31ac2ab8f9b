/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-analyse: the contexts the regex analysis (analyse.c) derives around a factor's
 * literal and the checks the engine makes of them on each literal hit. Crafted regexes give the
 * sets they must; every positive example of the built-in pack passes the checks of its pattern
 * (a check never rejects a match the regex accepts).
 *
 * `test-scrub-analyse REGEX [i]` prints what the analysis gives for REGEX (i: caseless). */
#include <strings.h>
#include <unistd.h>

#include "scrub-builtin.h"

static void print_set(const struct exai__bset *s)
{
	unsigned n = 0;
	for (unsigned c = 0; c < 256; c++)
		n += exai__bset_has(s, (unsigned char)c);
	if (n == 256) {
		printf("*");
		return;
	}
	if (n > 128) {
		printf("^");
		for (unsigned c = 0; c < 256; c++)
			if (!exai__bset_has(s, (unsigned char)c))
				printf(c > 32 && c < 127 ? "%c" : "\\x%02x", c);
		return;
	}
	printf("[");
	for (unsigned c = 0; c < 256; c++)
		if (exai__bset_has(s, (unsigned char)c))
			printf(c > 32 && c < 127 ? "%c" : "\\x%02x", c);
	printf("]");
}

static void dump(const char *re, bool caseless)
{
	struct exai__re_info ri;
	int r = exai__regex_analyse(&ri, re, caseless);
	printf("rc %d, width %u..%u, %u literals at [%u, %u], cost %.1f:", r, ri.minw, ri.maxw, ri.n_lits, ri.lo, ri.hi,
	       ri.cost);
	for (unsigned i = 0; i < ri.n_lits; i++)
		printf(" %s'%.*s'", ri.lits[i].caseless ? "(?i)" : "", ri.lits[i].len, ri.lits[i].s);
	printf("\n");
	for (int j = EXAI__CTX_K - 1; j >= 0; j--) {
		printf("  before[%d] ", j);
		print_set(&ri.before[j]);
		printf("\n");
	}
	for (int j = 0; j < EXAI__CTX_K; j++) {
		printf("  after[%d] ", j);
		print_set(&ri.after[j]);
		printf("\n");
	}
	for (int j = 0; j < EXAI__CTX_K; j++) {
		printf("  head[%d] ", j);
		print_set(&ri.head[j]);
		printf("\n");
	}
}

static struct exai__bset set_of(const char *bytes)
{
	struct exai__bset s = { { 0 } };
	for (const unsigned char *b = (const unsigned char *)bytes; *b; b++)
		s.b[*b >> 6] |= 1ull << (*b & 63);
	return s;
}

static struct exai__bset set_not(struct exai__bset s)
{
	for (int i = 0; i < 4; i++)
		s.b[i] = ~s.b[i];
	return s;
}

static const char WORD[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
static const char ALNUM[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool set_eq(const struct exai__bset *a, struct exai__bset b)
{
	return memcmp(a, &b, sizeof(b)) == 0;
}

static bool set_all(const struct exai__bset *a)
{
	return set_eq(a, set_not(set_of("")));
}

/* The analysis of @re must give the literal @lit and these contexts. */
static void crafted(void)
{
	struct exai__re_info ri;
	/* \b before a word character: a non-word byte before; the fixed run after */
	CHECK_OK(exai__regex_analyse(&ri, "\\b(pat[A-Za-z0-9]{14}\\.[a-f0-9]{64})\\b", false));
	CHECK(ri.n_lits == 1 && ri.lits[0].len == 3);
	CHECK(set_eq(&ri.before[0], set_not(set_of(WORD))) && set_all(&ri.before[1]));
	for (int j = 0; j < 14; j++)
		CHECK(set_eq(&ri.after[j], set_of(ALNUM)));
	CHECK(set_eq(&ri.after[14], set_of(".")) && set_eq(&ri.after[15], set_of("0123456789abcdef")));
	/* a text start reads as no byte at all: only the class is left before the literal; an
	 * optional quote then '=' after it, then the end of the match: anything */
	CHECK_OK(exai__regex_analyse(&ri, "(?:^|[^A-Za-z0-9_.\\-])(?i:secret)[ \t]{0,9}=", false));
	CHECK(ri.n_lits == 1 && ri.lits[0].caseless && ri.lo == 0 && ri.hi == 1);
	CHECK(set_eq(&ri.before[0], set_not(set_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"))));
	CHECK(set_all(&ri.before[1]));
	CHECK(set_eq(&ri.after[0], set_of(" \t=")) && set_all(&ri.after[5]));
	/* caseless: the sets are folded as PCRE2 folds them */
	CHECK_OK(exai__regex_analyse(&ri, "token[a-z]x", true));
	CHECK(ri.n_lits == 1 && ri.lits[0].caseless && ri.lits[0].len == 5);
	CHECK(set_eq(&ri.after[0], set_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")) && set_eq(&ri.after[1], set_of("xX")));
	/* alternatives of different widths: each position holds what any branch puts there, and
	 * past the shortest branch's end anything may follow */
	CHECK_OK(exai__regex_analyse(&ri, "kkey(?:ab|c)d", false));
	CHECK(ri.n_lits >= 1 && memcmp(ri.lits[0].s, "kkey", 4) == 0);
	CHECK(set_eq(&ri.after[0], set_of("ac")) && set_eq(&ri.after[1], set_of("bd")) && set_all(&ri.after[2]));
	/* lookarounds, \B, line anchors, $ */
	CHECK_OK(exai__regex_analyse(&ri, "(?<![a-z])kkey[0-9](?![A-Z])", false));
	CHECK(set_eq(&ri.before[0], set_not(set_of("abcdefghijklmnopqrstuvwxyz"))));
	CHECK(set_eq(&ri.after[0], set_of("0123456789")) && set_eq(&ri.after[1], set_not(set_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))));
	CHECK_OK(exai__regex_analyse(&ri, "\\Bkkey\\b", false));
	CHECK(set_eq(&ri.before[0], set_of(WORD)) && set_eq(&ri.after[0], set_not(set_of(WORD))));
	CHECK_OK(exai__regex_analyse(&ri, "(?m)^kkey=", false));
	CHECK(ri.n_lits == 1 && ri.lits[0].len == 5 && set_eq(&ri.before[0], set_of("\n")) && set_all(&ri.after[0]));
	CHECK_OK(exai__regex_analyse(&ri, "kkey$", false));
	CHECK(set_eq(&ri.after[0], set_of("\n")) && set_all(&ri.after[1]) && set_all(&ri.before[0]));
	/* a repeat: the literal's first copy, then the others */
	CHECK_OK(exai__regex_analyse(&ri, "(?:kkey-){2,3}[0-9]", false));
	CHECK(ri.n_lits == 1 && ri.lits[0].len == 5); /* the first copy's 'kkey-', then the others */
	CHECK(set_eq(&ri.after[0], set_of("k")) && set_eq(&ri.after[4], set_of("-")) &&
	      set_eq(&ri.after[5], set_of("k0123456789")));
	/* a byte every match reaches soon after the literal, past positions that vary */
	CHECK_OK(exai__regex_analyse(&ri, "kkey[a-z_]{0,10}[ \t]{0,2}=[0-9]{4}", false));
	CHECK(ri.reach_d == 13 && set_eq(&ri.reach, set_of("=")));
	CHECK_OK(exai__regex_analyse(&ri, "kkey(?:[a-z]{0,3}=|:)", false));
	CHECK(ri.reach_d == 4 && set_eq(&ri.reach, set_of("=:")));
	CHECK_OK(exai__regex_analyse(&ri, "kkey(?:[a-z]{0,3}=)?", false));
	CHECK(ri.reach_d == 0);
	/* \h and \v as PCRE2 reads them without UTF: the no-break space and NEL too */
	CHECK_OK(exai__regex_analyse(&ri, "kkey\\h\\v", false));
	CHECK(set_eq(&ri.after[0], set_of("\t \xa0")) || ri.lits[0].len > 4);
	CHECK_OK(exai__regex_analyse(&ri, "kkey[a-z]{20}\\v", false));
	CHECK(ri.reach_d == 0 || exai__bset_has(&ri.reach, 0x85));
	/* a match's first bytes */
	CHECK_OK(exai__regex_analyse(&ri, "\\b([0-9]{3}-[0-9]{2}-[0-9]{4})\\b", false));
	CHECK(set_eq(&ri.head[0], set_of("0123456789")) && set_eq(&ri.head[3], set_of("-")) &&
	      set_eq(&ri.head[10], set_of("0123456789")) && set_all(&ri.head[11]));
	CHECK_OK(exai__regex_analyse(&ri, "(?:^|[^a-z])kkey", false));
	/* a match not at the text's start (where it starts with the literal) */
	CHECK(set_eq(&ri.head[0], set_not(set_of("abcdefghijklmnopqrstuvwxyz"))) && set_eq(&ri.head[1], set_of("k")));
	CHECK_OK(exai__regex_analyse(&ri, "(?m)(?:^|[^a-z])kkey", false)); /* a line start: any position */
	{
		struct exai__bset h0 = set_not(set_of("abcdefghijklmnopqrstuvwxyz"));
		h0.b['k' >> 6] |= 1ull << ('k' & 63);
		CHECK(set_eq(&ri.head[0], h0));
	}
	/* what is not modelled says nothing */
	CHECK_OK(exai__regex_analyse(&ri, "kkey.{0,3}z", false));
	CHECK(set_all(&ri.after[0]));
	CHECK_OK(exai__regex_analyse(&ri, "[a-z]{0,40}kkey", false));
	CHECK(set_eq(&ri.before[0], set_of("abcdefghijklmnopqrstuvwxyz")) || set_all(&ri.before[0]));
}

static bool lit_at(const struct exai__lit *l, const char *t)
{
	return l->caseless ? strncasecmp(t, l->s, l->len) == 0 : memcmp(t, l->s, l->len) == 0;
}

/* Every match of literal-gated pattern @i in @t has a hit of one of its literals, at an offset
 * the use allows, that passes the use's checks. Returns the matches seen. */
static size_t every_match_passes(exai_scrubber *s, size_t i, const char *t, size_t len, const char *what)
{
	const struct exai__pattern *p = &s->set.pats[i];
	pcre2_match_data *md = pcre2_match_data_create(33, NULL);
	size_t pos = 0, n = 0;
	while (pos <= len) {
		int rc = pcre2_match(p->re, (PCRE2_SPTR)t, len, pos, 0, md, NULL);
		if (rc < 0)
			break;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		bool hit = false, ok = false;
		for (size_t k = 0; k < s->n_lits && !ok; k++)
			for (unsigned u = s->lit_first[k]; u < s->lit_first[k + 1] && !ok; u++) {
				const struct exai__lit_use *x = &s->lit_uses[u];
				if (x->pat != i)
					continue;
				for (long off = x->lo; off <= x->hi && !ok; off++) {
					size_t ls = ms + (size_t)off;
					if (ls + s->lits[k].len > len)
						break;
					if (lit_at(&s->lits[k], t + ls)) {
						hit = true;
						ok = exai__lit_use_ok(s->chks, x, t, len, ls);
					}
				}
			}
		if (!ok)
			fprintf(stderr, "pattern %s: the match at %zu of %s %s\n", p->id, ms, what,
				hit ? "fails the checks of its literal" : "has no literal hit");
		CHECK(ok);
		/* and its first bytes pass the pattern's checks of a match's start (but at the
		 * text's start) */
		for (unsigned c = s->head_first[i]; c < s->head_first[i + 1]; c++)
			CHECK(ms == 0 || ms + (size_t)s->heads[c].off >= len ||
			      exai__bset_has(&s->heads[c].set, (unsigned char)t[ms + (size_t)s->heads[c].off]));
		n++;
		pos = me > ms ? me : ms + 1;
	}
	pcre2_match_data_free(md);
	return n;
}

/* The engine's checks on the built-in pack: they pass every match in the pack's positive
 * examples and in the development corpus, and reject the hits a prompt is full of. */
struct dev_matches {
	exai_scrubber *s;
	size_t matches;
};

static void dev_text_matches(const char *t, size_t len, void *ud)
{
	struct dev_matches *dm = ud;
	for (size_t i = 0; i < dm->s->set.n; i++)
		if (dm->s->set.pats[i].gate == EXAI__GATE_LITERAL)
			dm->matches += every_match_passes(dm->s, i, t, len, "the development corpus");
}

static void builtin(void)
{
	exai_scrubber *s = builtin_scrubber(EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	if (!s)
		return;
	size_t gated = 0, matches = 0, checked = 0;
	for (size_t i = 0; i < s->set.n; i++) {
		if (s->set.pats[i].gate != EXAI__GATE_LITERAL)
			continue;
		gated++;
		json_t *pos = json_object_get(json_array_get(s->set.examples, i), "positive"), *e;
		size_t k;
		json_array_foreach(pos, k, e) {
			const char *t = json_string_value(json_object_get(e, "text"));
			size_t m = every_match_passes(s, i, t, strlen(t), "a positive example");
			CHECK(m > 0);
			matches += m;
		}
	}
	/* the same examples with a few bytes changed at random, near or inside the match: every
	 * match PCRE2 still finds (or now finds) must pass too */
	static const char alphabet[] = "aZ09_-.:=\"' \t\n/@+xX(){}[]";
	size_t mutated = 0;
	srand(5);
	for (size_t i = 0; i < s->set.n; i++) {
		if (s->set.pats[i].gate != EXAI__GATE_LITERAL)
			continue;
		json_t *pos = json_object_get(json_array_get(s->set.examples, i), "positive"), *e;
		size_t k;
		json_array_foreach(pos, k, e) {
			const char *t = json_string_value(json_object_get(e, "text"));
			size_t n = strlen(t);
			char *m = malloc(n + 1);
			for (int round = 0; m && round < 100; round++) {
				memcpy(m, t, n + 1);
				for (int c = 1 + rand() % 3; c > 0 && n; c--)
					m[(size_t)rand() % n] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
				mutated += every_match_passes(s, i, m, n, "a changed positive example");
			}
			free(m);
		}
	}
	printf("%zu matches in changed examples pass\n", mutated);
	for (size_t u = 0; u < s->lit_first[s->n_lits]; u++)
		checked += s->lit_uses[u].n_chk > 0;
	printf("%zu literal-gated patterns, %zu matches in their examples pass; %zu of %u uses have checks\n", gated,
	       matches, checked, s->lit_first[s->n_lits]);
	CHECK(gated > 300 && checked > gated / 2);
	/* no regex in the Hyperscan database: every built-in pattern has a literal, keyword or run gate */
	for (size_t i = 0; i < s->set.n; i++)
		CHECK(s->set.pats[i].gate != EXAI__GATE_REGEX);
	/* the development corpus: every match of every literal-gated pattern */
	struct dev_matches dm = { s, 0 };
	scrub_dev_texts(dev_text_matches, &dm);
	matches = dm.matches;
	printf("%zu matches in the development corpus pass\n", matches);
	/* crafted hits: 'pat' in words is no Airtable token, 'pass' in "passed" no SoftLayer key */
	static const struct {
		const char *pattern, *lit, *text;
		bool ok;
	} cases[] = {
		{ "airtable-personal-access-token", "pat", "see the path to it", false },
		{ "airtable-personal-access-token", "pat", "a pattern here and there", false },
		{ "airtable-personal-access-token", "pat", "x patABCDEFGHIJ1234.0f", true },
		{ "airtable-personal-access-token", "pat", "xpatABCDEFGHIJ1234.0f", false },
		{ "softlayer-api-key", "pass", "the test passed", false },
		{ "softlayer-api-key", "pass", "sl_pass = ", true },
		{ "bank-account-number", "account ", "account number: 12345678", true },
		{ "bank-account-number", "account ", "the account was closed", false },
		{ "generic-secret-assignment-unquoted", "pass", "the test passed on every run of the suite today", false },
		{ "generic-secret-assignment-unquoted", "pass", "db_pass = hunter2x!", true },
		{ "generic-secret-assignment-unquoted-colon", "token", "the token expired after one hour, so we renewed it", false },
		{ "generic-secret-assignment-unquoted-colon", "token", "token: abcd-1234", true },
	};
	for (size_t c = 0; c < EXAI__ARRAY_SIZE(cases); c++) {
		size_t seen = 0;
		for (size_t k = 0; k < s->n_lits; k++) {
			if (s->lits[k].len != strlen(cases[c].lit) || memcmp(s->lits[k].s, cases[c].lit, s->lits[k].len) != 0)
				continue;
			for (unsigned u = s->lit_first[k]; u < s->lit_first[k + 1]; u++) {
				if (strcmp(s->set.pats[s->lit_uses[u].pat].id, cases[c].pattern) != 0)
					continue;
				const char *t = cases[c].text;
				size_t ls = (size_t)(strcasestr(t, cases[c].lit) - t);
				bool ok = exai__lit_use_ok(s->chks, &s->lit_uses[u], t, strlen(t), ls);
				if (ok != cases[c].ok)
					fprintf(stderr, "%s: the hit of '%s' in '%s' %s the checks\n", cases[c].pattern, cases[c].lit, t,
						ok ? "passes" : "fails");
				CHECK(ok == cases[c].ok);
				seen++;
			}
		}
		CHECK(seen == 1);
	}
	exai_scrubber_free(s);
}

/* The number of findings in @text (no audit event). */
static size_t findings_in(exai_scrubber *s, const char *text)
{
	exai_scrub_result *r = NULL;
	EXAI_OPTS(exai_scrub_text_opts, to, .no_audit = 1);
	CHECK_OK(exai_scrub_text(&r, s, text, strlen(text), &to));
	size_t n = exai_scrub_result_count(r);
	exai_scrub_result_free(r);
	return n;
}

/* A pack's declared "gate": the pattern gets it (and finds what it found without it), and
 * one that cannot hold is refused with the pattern's name. */
static exai_scrubber *gate_scrubber(int format, const char *regex, const char *keywords, const char *extra, int rc,
				    const char *want)
{
	char pack[2048];
	snprintf(pack, sizeof(pack),
		 "{\"format\": %d, \"group\": \"g\", \"patterns\": [{\"id\": \"g-phone\", \"class\": \"phone\","
		 " \"kind\": \"pii\", \"severity\": \"low\", \"regex\": \"%s\", \"group\": 1, \"caseless\": false,"
		 " \"keywords\": [%s], \"validator\": \"none\", \"min_entropy\": 0, %s \"examples\": {\"positive\":"
		 " [{\"text\": \"tel +4915123456789\", \"secret\": \"+4915123456789\"}], \"negative\": [\"+12\"]}}]}",
		 format, regex, keywords, extra);
	const char *packs[] = { pack };
	EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1,
		  .flags = EXAI_SCRUBBER_NO_BUILTIN | EXAI_SCRUBBER_NO_CACHE | EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	exai_scrubber *s = NULL;
	CHECK_RC(exai_scrubber_new(&s, NULL, &o), rc);
	if (want && !strstr(exai_errmsg(), want)) {
		fprintf(stderr, "error '%s' lacks '%s'\n", exai_errmsg(), want);
		test_failures++;
	}
	return s;
}

static void declared_gates(void)
{
	static const char re[] = "(?:^|[^\\\\w+])(\\\\+[1-9][0-9]{6,12})\\\\b";
	static const struct {
		const char *gate;
		int want;
	} ok[] = { { "", -1 }, { "\"gate\": \"literal\",", EXAI__GATE_LITERAL }, { "\"gate\": \"keywords\",", EXAI__GATE_KEYWORD } };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(ok); i++) {
		exai_scrubber *s = gate_scrubber(2, re, "\"tel\"", ok[i].gate, 0, NULL);
		if (!s)
			continue;
		CHECK(ok[i].want < 0 || s->set.pats[0].gate == ok[i].want);
		CHECK(findings_in(s, "call tel +4915123456789 or +4915123456780 (tel), +12 no") == 2);
		exai_scrubber_free(s);
	}
	gate_scrubber(2, re, "\"tel\"", "\"gate\": \"regex\",", -EINVAL, "pattern 'g-phone': 'gate' must be");
	gate_scrubber(1, re, "\"tel\"", "\"gate\": \"literal\",", -EINVAL, "pattern 'g-phone': 'gate' needs \"format\": 2");
	gate_scrubber(2, re, "", "\"gate\": \"keywords\",", -EINVAL, "pattern 'g-phone': 'gate' is \"keywords\" but");
	gate_scrubber(2, re, "\"tel\"", "\"gate\": \"literal\", \"trigger\": {\"run\": \"digit\", \"min\": 7},", -EINVAL,
		      "pattern 'g-phone': 'gate' and 'trigger'");
	gate_scrubber(2, "([a-z0-9+]{8,12})", "\"tel\"", "\"gate\": \"literal\",", -EINVAL,
		      "pattern 'g-phone': 'gate' is \"literal\" but the regex has no required literal");
}

/* A caseless literal of a few letters goes to Hyperscan as its case variants: every one of
 * them opens its window. */
static void case_variants(void)
{
	static const char pack[] =
		"{\"format\": 1, \"group\": \"v\", \"patterns\": [{\"id\": \"v-tok\", \"class\": \"tok\", \"kind\": \"secret\","
		" \"severity\": \"low\", \"regex\": \"\\\\b(kq7z[0-9]{6})\\\\b\", \"group\": 1, \"caseless\": true, \"keywords\": [],"
		" \"validator\": \"none\", \"min_entropy\": 0, \"examples\": {\"positive\": [{\"text\": \"kq7z123456\","
		" \"secret\": \"kq7z123456\"}], \"negative\": [\"kq7z12\"]}}]}";
	const char *packs[] = { pack };
	EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1,
		  .flags = EXAI_SCRUBBER_NO_BUILTIN | EXAI_SCRUBBER_NO_CACHE | EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	exai_scrubber *s = NULL;
	CHECK_OK(exai_scrubber_new(&s, NULL, &o));
	if (!s)
		return;
	CHECK(s->set.pats[0].gate == EXAI__GATE_LITERAL && s->n_lits == 1 && s->lits[0].caseless);
	CHECK(findings_in(s, "kq7z123456 KQ7Z123457 Kq7Z123458 kQ7z123459 kq7Z123450 x") == 5);
	exai_scrubber_free(s);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		dump(argv[1], argc > 2);
		return 0;
	}
	crafted();
	declared_gates();
	case_variants();
	builtin();
	return test_done();
}
