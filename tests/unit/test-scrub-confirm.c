/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-confirm: what a run trigger decides before PCRE2 runs. A window opens only where
 * a start fits the match's first bytes (in-pan on digit runs) and, with "validate", only where
 * the check digits hold (NHS, routing, CPF and CNPJ numbers); the findings are those of a
 * full PCRE2 scan of the text either way. */
#include "scrub-builtin.h"

static int pat_index(const exai_scrubber *s, const char *id)
{
	for (size_t i = 0; i < s->set.n; i++)
		if (strcmp(s->set.pats[i].id, id) == 0)
			return (int)i;
	CHECK(!"pattern in the built-in pack");
	return 0;
}

/* The windows pattern @id opened on @text, and its findings' spans written into @spans
 * ("start-end,..."). */
static size_t windows_of(exai_scrubber *s, const char *id, const char *text, char *spans, size_t cap)
{
	int pat = pat_index(s, id);
	struct exai__pat_stats *ps = calloc(s->set.n, sizeof(*ps));
	struct exai__cands c = { 0 };
	s->stats = ps;
	CHECK_OK(exai__scan(s, &c, text, strlen(text)));
	s->stats = NULL;
	size_t w = ps[pat].windows, at = 0;
	spans[0] = 0;
	for (size_t i = 0; i < c.n; i++)
		if (c.v[i].pat == pat && at < cap)
			at += (size_t)snprintf(spans + at, cap - at, "%zu-%zu,", c.v[i].start, c.v[i].end);
	free(c.v);
	free(ps);
	return w;
}

/* Every match PCRE2 finds in the whole text and the keywords, validator and entropy accept. */
static void full_scan(exai_scrubber *s, const char *id, const char *text, char *spans, size_t cap)
{
	const struct exai__pattern *p = &s->set.pats[pat_index(s, id)];
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
	size_t len = strlen(text), pos = 0, at = 0;
	spans[0] = 0;
	while (pos <= len && pcre2_match(p->re, (PCRE2_SPTR)text, len, pos, 0, md, NULL) > (int)p->group) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t gs = ov[2 * p->group], ge = ov[2 * p->group + 1];
		pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
		bool kw = p->n_keywords == 0;
		for (size_t k = 0; k < p->n_keywords; k++) {
			size_t from = ov[0] > 64 ? ov[0] - 64 : 0, kl = strlen(p->keywords[k]);
			for (size_t i = from; i + kl <= ov[1] && !kw; i++)
				kw = strncasecmp(text + i, p->keywords[k], kl) == 0;
		}
		if (kw && exai__validate(p->validator, text + gs, ge - gs) && at < cap)
			at += (size_t)snprintf(spans + at, cap - at, "%zu-%zu,", gs, ge);
	}
	pcre2_match_data_free(md);
}

static void check(exai_scrubber *s, const char *id, const char *text, size_t want_windows, const char *want_spans)
{
	char got[256], full[256];
	size_t w = windows_of(s, id, text, got, sizeof(got));
	full_scan(s, id, text, full, sizeof(full));
	if (w != want_windows || strcmp(got, want_spans) != 0 || strcmp(full, want_spans) != 0) {
		fprintf(stderr, "%s on '%s': %zu windows (want %zu), findings '%s', full scan '%s' (want '%s')\n", id, text,
			w, want_windows, got, full, want_spans);
		test_failures++;
	}
}

int main(void)
{
	exai_scrubber *s = builtin_scrubber(EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	if (!s)
		return 1;
	/* in-pan: five letters, four digits, a letter; ten digits or ten letters open nothing */
	check(s, "in-pan", "PAN 9517032945 and PERMANENTS", 0, "");
	check(s, "in-pan", "PAN card HEJPX9967Q", 1, "9-19,");
	check(s, "in-pan", "PAN card HEJPX9967Q1", 0, ""); /* eleven: no shape fits */
	/* NHS numbers: the check digit decides before any window */
	check(s, "uk-nhs-number", "NHS number 417 769 9960 (typo)", 0, "");
	check(s, "uk-nhs-number", "NHS number 943 476 5919, 417 769 9960", 1, "11-23,");
	check(s, "uk-nhs-number", "nhs 9434765919 4177699960", 1, "4-14,");
	/* routing numbers, CPF and CNPJ likewise */
	check(s, "us-bank-routing-number", "ABA routing 060385525 or 021000021", 1, "25-34,");
	check(s, "br-cpf", "CPF 657.097.556-93, 808.820.313-92", 1, "20-34,");
	check(s, "br-cnpj", "CNPJ 49.142.742/9663-37 / 45.589.338/3498-03", 1, "26-44,");
	/* Aadhaar numbers are checked after PCRE2 (their shapes overlap): the window opens, the
	 * wrong check digit still gives nothing */
	check(s, "in-aadhaar", "Aadhaar 8086 9619 8308", 1, "");
	check(s, "in-aadhaar", "Aadhaar 7114 7104 9746", 1, "8-22,");
	check(s, "ca-sin", "SIN 533-173-180 / 741-374-847", 2, "18-29,");
	exai_scrubber_free(s);
	return test_done();
}
