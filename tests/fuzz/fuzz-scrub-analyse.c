/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-scrub-analyse: the regex analysis (analyse.c) against PCRE2. The input is a regex (up to
 * the first newline; a leading '~' makes it caseless) and a text (the rest). Every match PCRE2
 * finds in the text must contain one of the analysis' literals at an offset it allows, with the
 * bytes around that occurrence in its context sets and the reach byte in reach, and a match that
 * does not start at the text's start must have its first bytes in head: the claims the engine's
 * windows and checks rely on. */
#include "fuzz-scrub-common.h"

static bool lit_at(const struct exai__lit *l, const uint8_t *t)
{
	for (unsigned k = 0; k < l->len; k++) {
		uint8_t a = t[k], b = (uint8_t)l->s[k];
		if (l->caseless && a >= 'A' && a <= 'Z')
			a = (uint8_t)(a + 32);
		if (l->caseless && b >= 'A' && b <= 'Z')
			b = (uint8_t)(b + 32);
		if (a != b)
			return false;
	}
	return true;
}

/* Whether literal @l at @ls of @t passes the contexts of @ri. */
static bool context_ok(const struct exai__re_info *ri, const struct exai__lit *l, const uint8_t *t, size_t len,
		       size_t ls)
{
	for (unsigned j = 0; j < EXAI__CTX_K; j++) {
		if (ls >= j + 1 && !exai__bset_has(&ri->before[j], t[ls - j - 1]))
			return false;
		size_t q = ls + l->len + j;
		if (q < len && !exai__bset_has(&ri->after[j], t[q]))
			return false;
	}
	if (ri->reach_d) {
		size_t q = ls + l->len, e = q + ri->reach_d;
		if (e <= len) {
			while (q < e && !exai__bset_has(&ri->reach, t[q]))
				q++;
			if (q == e)
				return false;
		}
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size < 1024 ? size : 1024);
	if (!nl)
		return 0;
	bool caseless = size && data[0] == '~';
	size_t rl = (size_t)(nl - data) - caseless;
	char re[1024];
	memcpy(re, data + caseless, rl);
	re[rl] = 0;
	const uint8_t *text = nl + 1;
	size_t len = size - (size_t)(nl + 1 - data);
	if (len > 4096 || strlen(re) != rl)
		return 0;
	struct exai__re_info *ri = malloc(sizeof(*ri));
	if (!ri || exai__regex_analyse(ri, re, caseless) < 0) {
		free(ri);
		return 0;
	}
	int err;
	PCRE2_SIZE eo;
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, rl, caseless ? PCRE2_CASELESS : 0, &err, &eo, NULL);
	if (!code) {
		free(ri);
		return 0;
	}
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
	pcre2_match_context *mc = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(mc, 100000);
	pcre2_set_depth_limit(mc, 1000);
	size_t pos = 0;
	while (md && mc && pos <= len) {
		int rc = pcre2_match(code, text, len, pos, 0, md, mc);
		if (rc < 0)
			break;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		FUZZ_ASSERT(me - ms >= ri->minw && (ri->maxw >= EXAI__RE_INF || me - ms <= ri->maxw),
			    "/%s/: a match of %zu bytes, widths %u..%u", re, me - ms, ri->minw, ri->maxw);
		for (size_t j = 0; ms > 0 && j < EXAI__CTX_K && ms + j < len; j++)
			FUZZ_ASSERT(exai__bset_has(&ri->head[j], text[ms + j]), "/%s/%s: the match at %zu has byte %zu outside head", re,
				    caseless ? "i" : "", ms, j);
		bool ok = !ri->n_lits;
		for (unsigned k = 0; k < ri->n_lits && !ok; k++)
			for (size_t off = ri->lo; off <= ri->hi && !ok; off++) {
				size_t ls = ms + off;
				if (ls + ri->lits[k].len > len)
					break;
				ok = lit_at(&ri->lits[k], text + ls) && context_ok(ri, &ri->lits[k], text, len, ls);
			}
		FUZZ_ASSERT(ok, "/%s/%s: the match at %zu (%zu bytes) has no literal hit that passes its context", re,
			    caseless ? "i" : "", ms, me - ms);
		pos = me > ms ? me : ms + 1;
	}
	pcre2_match_context_free(mc);
	pcre2_match_data_free(md);
	pcre2_code_free(code);
	free(ri);
	return 0;
}
