/* SPDX-License-Identifier: Apache-2.0 */
/* engine.c: the scrubber: Hyperscan database (built or loaded from the cache), candidate
 * windows confirmed by PCRE2, keywords, validators, entropy, stage 2, decoders, and the
 * resolution of overlapping findings. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "exai-config.h"
#include "scrub-internal.h"

#define MOD "scrub"
#define HSDB_MAGIC "EXHSDB2\n"

int exai__cands_push(struct exai__cands *c, const struct exai__cand *x)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct exai__cand *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *x;
	return 0;
}

/* ---- the plan: what finds each pattern's candidates ------------------------------------- */

/* A required literal (or keyword set) is worth gating on when its literals are expected at
 * most this often per MB of prompt-like text (exai__lits_cost), weighted by the PCRE2 work of
 * each window (span_weight): each occurrence costs a PCRE2 call that tries every start the
 * window allows. Patterns with nothing that selective give Hyperscan their regex. */
#define LIT_COST_MAX 6000.0

static double span_weight(long span)
{
	return 1.0 + (double)(span > 0 ? span : 0) / 48.0;
}
#define PLAN_VERSION 11

/* The plan's literal table as it is built. */
struct plan_acc {
	struct exai__lit *lits;
	size_t n_lits;
	struct exai__lit_use *uses;
	unsigned *use_lit;
	size_t n_uses;
	struct exai__lit_chk *chks;
	size_t n_chks;
	struct exai__lit_chk *heads;
	size_t n_heads;
};

/* Appends the use (@pat, @lo, @hi, checks @chk[0 .. n_chk)) of literal @l to the plan's table
 * (distinct literals). */
static int lit_add(struct plan_acc *a, const struct exai__lit *l, unsigned pat, int lo, int hi,
		   const struct exai__lit_chk *chk, unsigned n_chk)
{
	struct exai__lit k = *l;
	if (k.caseless)
		for (unsigned i = 0; i < k.len; i++)
			k.s[i] = (char)tolower((unsigned char)k.s[i]);
	size_t j = 0;
	while (j < a->n_lits && !(a->lits[j].len == k.len && a->lits[j].caseless == k.caseless && memcmp(a->lits[j].s, k.s, k.len) == 0))
		j++;
	if (j == a->n_lits) {
		if (a->n_lits % 64 == 0) {
			struct exai__lit *nl = realloc(a->lits, (a->n_lits + 64) * sizeof(*nl));
			if (!nl)
				return -ENOMEM;
			a->lits = nl;
		}
		a->lits[a->n_lits++] = k;
	}
	/* one use per (literal, pattern): a second occurrence in a set widens the first, and
	 * keeps only the checks both share */
	for (size_t u = 0; u < a->n_uses; u++)
		if (a->use_lit[u] == j && a->uses[u].pat == pat) {
			struct exai__lit_use *x = &a->uses[u];
			x->lo = lo < x->lo ? lo : x->lo;
			x->hi = hi > x->hi ? hi : x->hi;
			bool same = x->n_chk == n_chk;
			for (unsigned c = 0; same && c < n_chk; c++)
				same = a->chks[x->chk + c].off == chk[c].off && a->chks[x->chk + c].span == chk[c].span &&
				       memcmp(&a->chks[x->chk + c].set, &chk[c].set, sizeof(chk[c].set)) == 0;
			if (!same)
				x->n_chk = 0;
			return 0;
		}
	if (a->n_uses % 64 == 0) {
		struct exai__lit_use *nu = realloc(a->uses, (a->n_uses + 64) * sizeof(*nu));
		unsigned *nl = realloc(a->use_lit, (a->n_uses + 64) * sizeof(*nl));
		if (nu)
			a->uses = nu;
		if (nl)
			a->use_lit = nl;
		if (!nu || !nl)
			return -ENOMEM;
	}
	if (n_chk) {
		struct exai__lit_chk *nc = realloc(a->chks, (a->n_chks + n_chk) * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		a->chks = nc;
		memcpy(a->chks + a->n_chks, chk, n_chk * sizeof(*chk));
	}
	a->uses[a->n_uses] = (struct exai__lit_use){ pat, lo, hi, (unsigned)a->n_chks, n_chk };
	a->n_chks += n_chk;
	a->use_lit[a->n_uses++] = (unsigned)j;
	return 0;
}

/* Inserts check @c, which lets @sh of prompt bytes through, into @v (@n of them) by @sh. */
static void chk_insert(struct exai__lit_chk *v, double *share, unsigned *n, const struct exai__lit_chk *c, double sh)
{
	unsigned i = (*n)++;
	while (i > 0 && share[i - 1] > sh) {
		v[i] = v[i - 1];
		share[i] = share[i - 1];
		i--;
	}
	v[i] = *c;
	share[i] = sh;
}

/* The checks of a hit of literal @l from the context the analysis found around it: the
 * positions that exclude bytes common in prompts, and the byte the match must reach soon after
 * the literal, the most selective (by the share of prompt bytes they let through) first. */
static unsigned lit_checks(struct exai__lit_chk out[EXAI__LIT_CHKS_MAX], const struct exai__re_info *ri,
			   const struct exai__lit *l)
{
	struct exai__lit_chk v[2 * EXAI__CTX_K + 1];
	double share[2 * EXAI__CTX_K + 1] = { 0 };
	unsigned n = 0;
	for (unsigned j = 0; j <= 2 * EXAI__CTX_K; j++) {
		struct exai__lit_chk c;
		double sh;
		if (j == 2 * EXAI__CTX_K) {
			if (!ri->reach_d || ri->reach_d > EXAI__LIT_REACH_MAX)
				continue;
			c = (struct exai__lit_chk){ (int32_t)l->len, ri->reach_d, ri->reach };
			double miss = 1, b = exai__bset_share(&ri->reach);
			for (unsigned i = 0; i < ri->reach_d; i++)
				miss *= 1 - b;
			sh = 1 - miss;
		} else {
			bool after = j & 1;
			const struct exai__bset *set = after ? &ri->after[j / 2] : &ri->before[j / 2];
			c = (struct exai__lit_chk){ after ? (int32_t)(l->len + j / 2) : -(int32_t)(j / 2) - 1, 0, *set };
			sh = exai__bset_share(set);
		}
		if (sh <= 0.9)
			chk_insert(v, share, &n, &c, sh);
	}
	n = n < EXAI__LIT_CHKS_MAX ? n : EXAI__LIT_CHKS_MAX;
	memcpy(out, v, n * sizeof(*v));
	return n;
}

/* The checks of a match's first bytes (at most EXAI__LIT_CHKS_MAX, the most selective first),
 * appended to a->heads. */
static int head_checks(struct plan_acc *a, const struct exai__re_info *ri)
{
	struct exai__lit_chk v[EXAI__CTX_K];
	double share[EXAI__CTX_K] = { 0 };
	unsigned n = 0;
	for (unsigned j = 0; j < EXAI__CTX_K; j++) {
		double sh = exai__bset_share(&ri->head[j]);
		struct exai__lit_chk c = { (int32_t)j, 0, ri->head[j] };
		if (sh <= 0.9)
			chk_insert(v, share, &n, &c, sh);
	}
	n = n < EXAI__LIT_CHKS_MAX ? n : EXAI__LIT_CHKS_MAX;
	if (!n)
		return 0;
	struct exai__lit_chk *nh = realloc(a->heads, (a->n_heads + n) * sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	a->heads = nh;
	memcpy(a->heads + a->n_heads, v, n * sizeof(*v));
	a->n_heads += n;
	return 0;
}

/* Orders the uses by literal: lit_first / lit_uses. */
static int lit_index(exai_scrubber *s, struct exai__lit_use *uses, const unsigned *use_lit, size_t n_uses)
{
	s->lit_first = calloc(s->n_lits + 2, sizeof(unsigned));
	s->lit_uses = calloc(n_uses + 1, sizeof(*s->lit_uses));
	unsigned *fill = calloc(s->n_lits + 1, sizeof(unsigned));
	if (!s->lit_first || !s->lit_uses || !fill) {
		free(fill);
		return -ENOMEM;
	}
	for (size_t u = 0; u < n_uses; u++)
		s->lit_first[use_lit[u] + 1]++;
	for (size_t j = 0; j < s->n_lits; j++)
		s->lit_first[j + 1] += s->lit_first[j];
	for (size_t u = 0; u < n_uses; u++)
		s->lit_uses[s->lit_first[use_lit[u]] + fill[use_lit[u]]++] = uses[u];
	free(fill);
	return 0;
}

/* Decides each pattern's gate (the run trigger its pack names; else the cheaper of its regex's
 * required literal and its keywords, if either is selective enough; else its regex) and builds
 * the table of literals. Needs the windows (exai__pack_hs_check). */
static int plan_build(exai_scrubber *s)
{
	struct plan_acc a = { 0 };
	int r = 0;
	struct exai__re_info *ri = malloc(sizeof(*ri));
	s->head_first = calloc(s->set.n + 1, sizeof(unsigned));
	if (!ri || !s->head_first) {
		free(ri);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->set.n && r == 0; i++) {
		struct exai__pattern *p = &s->set.pats[i];
		int W = (int)p->window;
		bool analysed = exai__regex_analyse(ri, p->regex, p->caseless) == 0;
		if (analysed)
			r = head_checks(&a, ri);
		s->head_first[i + 1] = (unsigned)a.n_heads;
		p->gate = EXAI__GATE_REGEX;
		if (p->trigger.run >= 0) {
			p->gate = EXAI__GATE_TRIGGER;
			continue;
		}
		double fcost = 1e300, kcost = 1e300;
		if (analysed && ri->n_lits && ri->hi < EXAI__SCRUB_WINDOW_MAX)
			fcost = ri->cost * span_weight((long)ri->hi - (long)ri->lo);
		if (p->n_keywords && p->n_keywords <= EXAI__LITS_MAX) {
			struct exai__lit kl[EXAI__LITS_MAX];
			for (size_t k = 0; k < p->n_keywords; k++) {
				size_t l = strlen(p->keywords[k]);
				kl[k].len = (uint8_t)(l < EXAI__LIT_MAX ? l : EXAI__LIT_MAX);
				memcpy(kl[k].s, p->keywords[k], kl[k].len);
				kl[k].caseless = true;
			}
			kcost = exai__lits_cost(kl, (unsigned)p->n_keywords) * span_weight(W + (long)EXAI__SCRUB_KEYWORD_BEFORE);
		}
		exai__log_debug(s->ctx, MOD, "pattern %s: required literal %s'%.*s'%s costs %.0f, keywords %.0f", p->id,
				analysed && ri->n_lits && ri->lits[0].caseless ? "(?i)" : "", analysed && ri->n_lits ? (int)ri->lits[0].len : 0,
				analysed && ri->n_lits ? ri->lits[0].s : "", analysed && ri->n_lits > 1 ? " ..." : "", fcost, kcost);
		if (p->gate_req == EXAI__GATE_LITERAL && fcost >= 1e300) {
			r = exai__err(-EINVAL, "scrub pack '%s': pattern '%s': 'gate' is \"literal\" but the regex has no required literal the engine finds",
				      p->pack, p->id);
			break;
		}
		/* the pack's "gate" overrides the estimate */
		if (p->gate_req == EXAI__GATE_LITERAL)
			fcost = 0;
		else if (p->gate_req == EXAI__GATE_KEYWORD)
			fcost = 1e300, kcost = 0;
		if (fcost <= LIT_COST_MAX && fcost <= kcost) {
			p->gate = EXAI__GATE_LITERAL;
			for (unsigned k = 0; k < ri->n_lits && r == 0; k++) {
				struct exai__lit_chk chk[EXAI__LIT_CHKS_MAX];
				unsigned n_chk = lit_checks(chk, ri, &ri->lits[k]);
				r = lit_add(&a, &ri->lits[k], (unsigned)i, (int)ri->lo, (int)ri->hi, chk, n_chk);
			}
		} else if (kcost <= LIT_COST_MAX) {
			/* a keyword [ks, ke) lies in [ms - 64, me], me <= ms + W: ms in [ke - W, ks + 64] */
			p->gate = EXAI__GATE_KEYWORD;
			for (size_t k = 0; k < p->n_keywords && r == 0; k++) {
				struct exai__lit l = { .caseless = true };
				size_t kl = strlen(p->keywords[k]);
				l.len = (uint8_t)(kl < EXAI__LIT_MAX ? kl : EXAI__LIT_MAX);
				memcpy(l.s, p->keywords[k], l.len);
				r = lit_add(&a, &l, (unsigned)i, -(int)EXAI__SCRUB_KEYWORD_BEFORE, W - (int)l.len, NULL, 0);
			}
		}
	}
	free(ri);
	if (r == 0) {
		s->lits = a.lits;
		s->n_lits = a.n_lits;
		s->chks = a.chks;
		s->n_chks = a.n_chks;
		s->heads = a.heads;
		a.lits = NULL;
		a.chks = NULL;
		a.heads = NULL;
		r = lit_index(s, a.uses, a.use_lit, a.n_uses);
	}
	free(a.lits);
	free(a.chks);
	free(a.heads);
	free(a.uses);
	free(a.use_lit);
	return r;
}

/* The run scan's specs: one per class in use, joining what each of its patterns joins (a
 * superset: longer runs, more windows, never fewer), reporting runs of the smallest minimum. */
static int seps_bucket(unsigned min_seps)
{
	return min_seps == 0 ? 0 : min_seps < 3 ? 1 : 2;
}

static int triggers_build(exai_scrubber *s)
{
	/* a spec per (class, adjacent separators, separators allowed, separators required: none,
	 * one or two, three or more): patterns that need separators do not make the others report
	 * every plain run (nor IP addresses every date), and patterns without separators keep runs
	 * whose ends mean something (before / first) */
	int spec_of[EXAI__RUN_COUNT][2][2][3];
	memset(spec_of, -1, sizeof(spec_of));
	size_t n_trig = 0;
	memset(s->trig_first, 0, sizeof(s->trig_first));
	s->n_run_specs = 0;
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		if (p->gate != EXAI__GATE_TRIGGER)
			continue;
		int *k = &spec_of[p->trigger.run][p->trigger.adjacent][p->trigger.seps[0] != 0][seps_bucket(p->trigger.min_seps)];
		if (*k < 0) {
			if (s->n_run_specs == EXAI__RUN_SPECS_MAX)
				return exai__err(-EINVAL, "scrub: too many kinds of run triggers");
			*k = (int)s->n_run_specs++;
			s->run_specs[*k] = (struct exai__run_spec){ .run = p->trigger.run, .min = p->trigger.min,
								    .min_seps = p->trigger.min_seps,
								    .adjacent = p->trigger.adjacent };
		}
		struct exai__run_spec *sp = &s->run_specs[*k];
		if (p->trigger.min < sp->min)
			sp->min = p->trigger.min;
		if (p->trigger.min_seps < sp->min_seps)
			sp->min_seps = p->trigger.min_seps;
		for (const char *q = p->trigger.seps; *q; q++) {
			unsigned j = 0;
			while (j < sp->n_seps && sp->seps[j] != (uint8_t)*q)
				j++;
			if (j == sp->n_seps && sp->n_seps < sizeof(sp->seps))
				sp->seps[sp->n_seps++] = (uint8_t)*q;
		}
		s->trig_first[*k + 1]++;
		n_trig++;
	}
	/* a spec without separators reports only runs whose first byte and the byte before them
	 * are as every pattern of it asks (the union of their sets; none when one asks nothing) */
	for (unsigned k = 0; k < s->n_run_specs; k++) {
		struct exai__run_spec *sp = &s->run_specs[k];
		sp->has_first = sp->has_before = !sp->n_seps && !sp->adjacent;
	}
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		if (p->gate != EXAI__GATE_TRIGGER)
			continue;
		struct exai__run_spec *sp =
			&s->run_specs[spec_of[p->trigger.run][p->trigger.adjacent][p->trigger.seps[0] != 0][seps_bucket(p->trigger.min_seps)]];
		sp->has_first &= p->trigger.first[0] != 0;
		sp->has_before &= p->trigger.before[0] != 0;
		for (const char *c = p->trigger.first; *c; c++)
			sp->first[(unsigned char)*c / 64] |= 1ull << ((unsigned char)*c % 64);
		for (const char *c = p->trigger.before; *c; c++)
			sp->before[(unsigned char)*c / 64] |= 1ull << ((unsigned char)*c % 64);
	}
	for (unsigned k = 0; k < s->n_run_specs; k++)
		s->trig_first[k + 1] += s->trig_first[k];
	exai__runs_plan(&s->run_plan, s->run_specs, s->n_run_specs);
	s->trig_pats = calloc(n_trig + 1, sizeof(unsigned));
	unsigned fill[EXAI__RUN_SPECS_MAX] = { 0 };
	if (!s->trig_pats)
		return -ENOMEM;
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		if (p->gate == EXAI__GATE_TRIGGER) {
			int k = spec_of[p->trigger.run][p->trigger.adjacent][p->trigger.seps[0] != 0][seps_bucket(p->trigger.min_seps)];
			s->trig_pats[s->trig_first[k] + fill[k]++] = (unsigned)i;
		}
	}
	return 0;
}

/* ---- the Hyperscan database and its cache ------------------------------------------------ */

/* A caseless literal of at most this many letters goes to Hyperscan as its case variants
 * (case-sensitive literals, 2^letters of them): Hyperscan's literal matchers run the built-in
 * pack's literals about 1.6 times as fast so (bench-scrub literals, BENCH_CASE_VARIANTS). */
#define CASE_VARIANTS_LETTERS 4

/* ASCII letters only, whatever the locale: Hyperscan's and PCRE2's caseless matching folds
 * no other byte. */
static bool ascii_letter(int c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static unsigned lit_letters(const struct exai__lit *l)
{
	unsigned n = 0;
	for (unsigned i = 0; i < l->len; i++)
		n += ascii_letter((unsigned char)l->s[i]);
	return n;
}

/* How many expressions literal @l is: its case variants, or itself. */
static unsigned lit_variants(const struct exai__lit *l)
{
	unsigned n = lit_letters(l);
	return l->caseless && n <= CASE_VARIANTS_LETTERS ? 1u << n : 1;
}

/* Variant @v of a literal as a Hyperscan expression: every byte escaped; bit b of @v upper-cases
 * its b-th letter (for a literal expanded into its case variants). */
static char *literal_expr(const struct exai__lit *l, unsigned v)
{
	char *e = malloc(4 * (size_t)l->len + 1);
	if (!e)
		return NULL;
	bool expand = lit_variants(l) > 1;
	for (unsigned i = 0, b = 0; i < l->len; i++) {
		int c = (unsigned char)l->s[i];
		if (expand && ascii_letter(c))
			c = v >> b++ & 1 ? c & ~0x20 : c | 0x20;
		snprintf(e + 4 * i, 5, "\\x%02x", c);
	}
	e[4 * (size_t)l->len] = 0;
	return e;
}

/* What Hyperscan compiles: the regexes of the patterns gated by them (id: the pattern's
 * index) and the literals (id: set.n + k; a caseless one may be several expressions). */
struct db_exprs {
	const char **exprs;
	char **kexprs;
	unsigned *flags, *ids;
	unsigned m, n_k;
};

static void db_exprs_free(struct db_exprs *e)
{
	for (size_t k = 0; e->kexprs && k < e->n_k; k++)
		free(e->kexprs[k]);
	free(e->kexprs);
	free(e->exprs);
	free(e->flags);
	free(e->ids);
	memset(e, 0, sizeof(*e));
}

static int db_exprs_build(exai_scrubber *s, struct db_exprs *e)
{
	size_t n = s->set.n, n_k = 0;
	for (size_t k = 0; k < s->n_lits; k++)
		n_k += lit_variants(&s->lits[k]);
	size_t total = n + n_k + 1;
	e->exprs = calloc(total, sizeof(char *));
	e->kexprs = calloc(n_k + 1, sizeof(char *));
	e->flags = calloc(total, sizeof(unsigned));
	e->ids = calloc(total, sizeof(unsigned));
	if (!e->exprs || !e->kexprs || !e->flags || !e->ids)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (s->set.pats[i].gate != EXAI__GATE_REGEX)
			continue;
		e->exprs[e->m] = s->set.pats[i].hs_regex;
		e->flags[e->m] = s->set.pats[i].hs_flags;
		e->ids[e->m++] = (unsigned)i;
	}
	for (size_t k = 0; k < s->n_lits; k++) {
		unsigned nv = lit_variants(&s->lits[k]);
		for (unsigned v = 0; v < nv; v++) {
			if (!(e->kexprs[e->n_k] = literal_expr(&s->lits[k], v)))
				goto nomem;
			e->exprs[e->m] = e->kexprs[e->n_k++];
			e->flags[e->m] = s->lits[k].caseless && nv == 1 ? HS_FLAG_CASELESS : 0;
			e->ids[e->m++] = (unsigned)(n + k);
		}
	}
	return 0;
nomem:
	db_exprs_free(e);
	return -ENOMEM;
}

static int db_compile(exai_scrubber *s, const struct db_exprs *e)
{
	if (e->m == 0)
		return 0;
	hs_compile_error_t *cerr = NULL;
	if (hs_compile_multi(e->exprs, e->flags, e->ids, e->m, HS_MODE_BLOCK, NULL, &s->db, &cerr) == HS_SUCCESS)
		return 0;
	int r;
	if (cerr && cerr->expression >= 0 && (unsigned)cerr->expression < e->m && e->ids[cerr->expression] < s->set.n) {
		const struct exai__pattern *p = &s->set.pats[e->ids[cerr->expression]];
		r = exai__err(-EINVAL, "scrub pack '%s': pattern '%s': Hyperscan cannot compile the regex: %s", p->pack,
			      p->id, cerr->message);
	} else {
		r = exai__err(-EINVAL, "scrub: Hyperscan cannot compile the pattern database: %s",
			      cerr ? cerr->message : "unknown reason");
	}
	hs_free_compile_error(cerr);
	return r;
}

/* The cache file: named by the SHA-256 of the packs (their canonical forms, which fix every
 * regex, keyword and trigger), of this engine's plan version and of Hyperscan's version. */
static char *cache_path(exai_scrubber *s)
{
	uint8_t h[32];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned l = 0;
	const char *v = hs_version();
	const uint32_t pv = PLAN_VERSION;
	const double lc = LIT_COST_MAX;
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, HSDB_MAGIC, sizeof(HSDB_MAGIC) - 1) &&
		  EVP_DigestUpdate(md, v, strlen(v) + 1) && EVP_DigestUpdate(md, &pv, sizeof(pv)) &&
		  EVP_DigestUpdate(md, &lc, sizeof(lc)) && EVP_DigestUpdate(md, s->set.sha256, 32) &&
		  EVP_DigestFinal_ex(md, h, &l);
	EVP_MD_CTX_free(md);
	if (!ok)
		return NULL;
	char name[80];
	for (int i = 0; i < 32; i++)
		snprintf(name + 2 * i, 3, "%02x", h[i]);
	strcat(name, ".hsdb");
	char *dir = exai__path_join(exai_ctx_state_dir(s->ctx), "scrub");
	char *p = dir ? exai__path_join(dir, name) : NULL;
	free(dir);
	return p;
}

/* The plan, serialised: per pattern its gate, window and Hyperscan flags; the literals and
 * their uses. Little-endian u32 / i32 throughout. */
static void put32(struct exai__buf *b, uint32_t v, int *r)
{
	uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	if (*r == 0)
		*r = exai__buf_append(b, x, 4);
}

static void put_chk(struct exai__buf *b, const struct exai__lit_chk *c, int *r)
{
	put32(b, (uint32_t)c->off, r);
	put32(b, c->span, r);
	for (int w = 0; w < 4; w++) {
		put32(b, (uint32_t)c->set.b[w], r);
		put32(b, (uint32_t)(c->set.b[w] >> 32), r);
	}
}

static int plan_serialize(exai_scrubber *s, struct exai__buf *b)
{
	int r = 0;
	put32(b, (uint32_t)s->set.n, &r);
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		put32(b, (uint32_t)p->gate, &r);
		put32(b, p->window, &r);
		put32(b, p->hs_flags, &r);
	}
	put32(b, (uint32_t)s->n_lits, &r);
	for (size_t k = 0; k < s->n_lits; k++) {
		put32(b, s->lits[k].len | (s->lits[k].caseless ? 0x100u : 0), &r);
		if (r == 0)
			r = exai__buf_append(b, s->lits[k].s, s->lits[k].len);
		put32(b, s->lit_first[k + 1] - s->lit_first[k], &r);
		for (unsigned u = s->lit_first[k]; u < s->lit_first[k + 1]; u++) {
			const struct exai__lit_use *x = &s->lit_uses[u];
			put32(b, x->pat, &r);
			put32(b, (uint32_t)x->lo, &r);
			put32(b, (uint32_t)x->hi, &r);
			put32(b, x->n_chk, &r);
			for (unsigned c = x->chk; c < x->chk + x->n_chk; c++)
				put_chk(b, &s->chks[c], &r);
		}
	}
	for (size_t i = 0; i < s->set.n; i++) {
		put32(b, s->head_first[i + 1] - s->head_first[i], &r);
		for (unsigned c = s->head_first[i]; c < s->head_first[i + 1]; c++)
			put_chk(b, &s->heads[c], &r);
	}
	return r;
}

struct reader {
	const uint8_t *p;
	size_t n;
	bool bad;
};

static uint32_t get32(struct reader *rd)
{
	if (rd->n < 4) {
		rd->bad = true;
		return 0;
	}
	uint32_t v = (uint32_t)rd->p[0] | (uint32_t)rd->p[1] << 8 | (uint32_t)rd->p[2] << 16 | (uint32_t)rd->p[3] << 24;
	rd->p += 4;
	rd->n -= 4;
	return v;
}

/* Reads a check whose offset lies in [lo, hi); false when it does not. */
static bool get_chk(struct reader *rd, struct exai__lit_chk *c, int32_t lo, int32_t hi)
{
	c->off = (int32_t)get32(rd);
	c->span = get32(rd);
	for (int w = 0; w < 4; w++) {
		uint64_t l = get32(rd);
		c->set.b[w] = l | (uint64_t)get32(rd) << 32;
	}
	return !rd->bad && c->off >= lo && c->off < hi && c->span <= EXAI__LIT_REACH_MAX;
}

/* Reads a plan back; -EBADMSG when it does not fit this pack set. */
static int plan_parse(exai_scrubber *s, struct reader *rd)
{
	if (get32(rd) != s->set.n || rd->bad)
		return -EBADMSG;
	for (size_t i = 0; i < s->set.n; i++) {
		struct exai__pattern *p = &s->set.pats[i];
		uint32_t gate = get32(rd), window = get32(rd), flags = get32(rd);
		if (rd->bad || gate > EXAI__GATE_TRIGGER || window > EXAI__SCRUB_WINDOW_MAX ||
		    (gate == EXAI__GATE_TRIGGER) != (p->trigger.run >= 0))
			return -EBADMSG;
		p->gate = (int)gate;
		p->window = window;
		p->hs_flags = flags;
	}
	uint32_t n_lits = get32(rd);
	if (rd->bad || n_lits > rd->n / 8)
		return -EBADMSG;
	s->lits = calloc(n_lits + 1, sizeof(*s->lits));
	s->lit_first = calloc(n_lits + 2, sizeof(unsigned));
	if (!s->lits || !s->lit_first)
		return -ENOMEM;
	size_t n_uses = 0, cap = 0;
	for (uint32_t k = 0; k < n_lits; k++) {
		uint32_t lf = get32(rd), len = lf & 0xff;
		if (rd->bad || len == 0 || len > EXAI__LIT_MAX || rd->n < len || (lf >> 9))
			return -EBADMSG;
		memcpy(s->lits[k].s, rd->p, len);
		s->lits[k].len = (uint8_t)len;
		s->lits[k].caseless = lf & 0x100;
		rd->p += len;
		rd->n -= len;
		uint32_t nu = get32(rd);
		if (rd->bad || nu > rd->n / 16)
			return -EBADMSG;
		if (n_uses + nu > cap) {
			cap = 2 * (n_uses + nu) + 16;
			struct exai__lit_use *v = realloc(s->lit_uses, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			s->lit_uses = v;
		}
		for (uint32_t u = 0; u < nu; u++) {
			struct exai__lit_use *x = &s->lit_uses[n_uses++];
			x->pat = get32(rd);
			x->lo = (int32_t)get32(rd);
			x->hi = (int32_t)get32(rd);
			x->n_chk = get32(rd);
			x->chk = (unsigned)s->n_chks;
			if (rd->bad || x->pat >= s->set.n || x->lo > x->hi || x->hi > (int)EXAI__SCRUB_WINDOW_MAX ||
			    x->lo < -(int)EXAI__SCRUB_KEYWORD_BEFORE || x->n_chk > EXAI__LIT_CHKS_MAX ||
			    x->n_chk * 40 > rd->n)
				return -EBADMSG;
			if (x->n_chk) {
				struct exai__lit_chk *nc = realloc(s->chks, (s->n_chks + x->n_chk) * sizeof(*nc));
				if (!nc)
					return -ENOMEM;
				s->chks = nc;
			}
			for (unsigned c = 0; c < x->n_chk; c++)
				if (!get_chk(rd, &s->chks[s->n_chks++], -(int32_t)EXAI__CTX_K, EXAI__LIT_MAX + EXAI__CTX_K))
					return -EBADMSG;
		}
		s->lit_first[k + 1] = (unsigned)n_uses;
	}
	s->n_lits = n_lits;
	/* the checks of each pattern's first bytes */
	s->head_first = calloc(s->set.n + 1, sizeof(unsigned));
	if (!s->head_first)
		return -ENOMEM;
	size_t n_heads = 0;
	for (size_t i = 0; i < s->set.n; i++) {
		uint32_t nh = get32(rd);
		if (rd->bad || nh > EXAI__LIT_CHKS_MAX)
			return -EBADMSG;
		if (nh) {
			struct exai__lit_chk *v = realloc(s->heads, (n_heads + nh) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			s->heads = v;
		}
		for (uint32_t c = 0; c < nh; c++)
			if (!get_chk(rd, &s->heads[n_heads++], 0, EXAI__CTX_K) || s->heads[n_heads - 1].span)
				return -EBADMSG;
		s->head_first[i + 1] = (unsigned)n_heads;
	}
	return rd->bad ? -EBADMSG : 0;
}

static void plan_reset(exai_scrubber *s)
{
	free(s->lits);
	free(s->lit_first);
	free(s->lit_uses);
	free(s->chks);
	free(s->heads);
	free(s->head_first);
	s->heads = NULL;
	s->head_first = NULL;
	s->lits = NULL;
	s->lit_first = NULL;
	s->lit_uses = NULL;
	s->chks = NULL;
	s->n_lits = 0;
	s->n_chks = 0;
}

/* Loads the cached plan and database: 0, or negative when absent or not to be trusted. The
 * file: magic, SHA-256 of the rest, u32 plan length, the plan, Hyperscan's serialised database
 * (empty when nothing needs Hyperscan). */
static int cache_load(exai_scrubber *s, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int r = exai__read_file(path, 256u << 20, &data, &len);
	if (r < 0)
		return r;
	r = -EBADMSG;
	const size_t hdr = sizeof(HSDB_MAGIC) - 1 + 32;
	uint8_t h[32];
	if (len < hdr + 4 || memcmp(data, HSDB_MAGIC, sizeof(HSDB_MAGIC) - 1) != 0)
		goto out;
	SHA256((const uint8_t *)data + hdr, len - hdr, h);
	if (memcmp(h, data + sizeof(HSDB_MAGIC) - 1, 32) != 0)
		goto out;
	struct reader rd = { (const uint8_t *)data + hdr, len - hdr, false };
	uint32_t plen = get32(&rd);
	if (plen > rd.n)
		goto out;
	struct reader pr = { rd.p, plen, false };
	if ((r = plan_parse(s, &pr)) < 0 || pr.n != 0) {
		r = r < 0 ? r : -EBADMSG;
		goto out;
	}
	r = -EBADMSG;
	const char *db = (const char *)rd.p + plen;
	size_t dblen = rd.n - plen;
	if (dblen) {
		char *info = NULL;
		if (hs_serialized_database_info(db, dblen, &info) != HS_SUCCESS)
			goto out;
		free(info);
		if (hs_deserialize_database(db, dblen, &s->db) != HS_SUCCESS) {
			s->db = NULL;
			goto out;
		}
	}
	r = 0;
out:
	if (r < 0)
		plan_reset(s);
	free(data);
	return r;
}

static void cache_store(exai_scrubber *s, const char *path)
{
	char *ser = NULL;
	size_t slen = 0;
	if (s->db && hs_serialize_database(s->db, &ser, &slen) != HS_SUCCESS)
		return;
	const size_t hdr = sizeof(HSDB_MAGIC) - 1 + 32;
	struct exai__buf b = { 0 }, plan = { 0 };
	int r = exai__buf_reserve(&b, hdr);
	if (r == 0) {
		b.len = hdr;
		r = plan_serialize(s, &plan);
	}
	put32(&b, (uint32_t)plan.len, &r);
	if (r == 0)
		r = exai__buf_append(&b, plan.data, plan.len);
	if (r == 0 && slen)
		r = exai__buf_append(&b, ser, slen);
	if (r == 0) {
		memcpy(b.data, HSDB_MAGIC, sizeof(HSDB_MAGIC) - 1);
		SHA256((const uint8_t *)b.data + hdr, b.len - hdr, (uint8_t *)b.data + sizeof(HSDB_MAGIC) - 1);
		char *dir = exai__path_join(exai_ctx_state_dir(s->ctx), "scrub");
		if (dir && exai__ctx_ensure_state_dir(s->ctx) == 0 && exai__mkdir_p(dir, 0700) == 0 &&
		    exai__write_file_atomic(path, b.data, b.len, 0600) == 0)
			exai__log_debug(s->ctx, MOD, "cached the pattern plan and database in %s", path);
		else
			exai__log_warn(s->ctx, MOD, "cannot cache the pattern database in %s", path);
		free(dir);
	}
	exai__buf_free(&b);
	exai__buf_free(&plan);
	free(ser);
}

static int keywords_build(exai_scrubber *s);
static int head_bytes_build(exai_scrubber *s);

/* The plan and the database: from the cache, or worked out (Hyperscan's check of every regex,
 * the analysis, the compilation) and cached. */
static int db_build(exai_scrubber *s)
{
	if (s->set.n == 0)
		return 0;
	char *path = NULL;
	int r;
	if (s->ctx && !(s->flags & EXAI_SCRUBBER_NO_CACHE)) {
		path = cache_path(s);
		if (path) {
			r = cache_load(s, path);
			if (r == 0) {
				exai__log_debug(s->ctx, MOD, "loaded the pattern plan and database from %s", path);
				s->cache_hit = true;
				goto out;
			}
			if (r != -ENOENT)
				exai__log_warn(s->ctx, MOD, "ignoring the corrupt or foreign pattern cache %s; rebuilding it",
					       path);
		}
	}
	if ((r = exai__pack_hs_check(&s->set)) < 0 || (r = plan_build(s)) < 0)
		goto out;
	struct db_exprs e = { 0 };
	if ((r = db_exprs_build(s, &e)) < 0)
		goto out;
	r = db_compile(s, &e);
	db_exprs_free(&e);
	if (r == 0 && path)
		cache_store(s, path);
out:
	free(path);
	if (r == 0)
		r = triggers_build(s);
	if (r == 0)
		r = keywords_build(s);
	if (r == 0 && s->head_first)
		r = head_bytes_build(s);
	return r;
}

/* ---- construction ----------------------------------------------------------------------- */

int exai_scrubber_new(exai_scrubber **ret, exai_ctx *ctx, const struct exai_scrubber_opts *opts)
{
	int r = EXAI__OPTS_CHECK(opts, exai_scrubber_opts);
	if (r < 0)
		return r;
	if (!ret)
		return exai__err(-EINVAL, "exai_scrubber_new: ret is NULL");
	int mode = EXAI__OPT(opts, mode, EXAI_SCRUB_MASK);
	if (mode < EXAI_SCRUB_MASK || mode > EXAI_SCRUB_PSEUDO)
		return exai__err(-EINVAL, "exai_scrubber_opts.mode: %d is not a redaction mode", mode);
	size_t max_input = EXAI__OPT(opts, max_input, (size_t)64 << 20);
	if (max_input > ((size_t)1 << 30))
		return exai__err(-EINVAL, "exai_scrubber_opts.max_input: at most 1 GiB");
	size_t hkl = EXAI__OPT(opts, hash_key_len, 0);
	const uint8_t *hk = EXAI__OPT(opts, hash_key, NULL);
	if (hk && (hkl < 16 || hkl > 64))
		return exai__err(-EINVAL, "exai_scrubber_opts.hash_key_len: must be 16 to 64 bytes");
	size_t n_packs = EXAI__OPT(opts, n_packs, 0);
	const char *const *packs = EXAI__OPT(opts, packs, NULL);
	if (n_packs && !packs)
		return exai__err(-EINVAL, "exai_scrubber_opts.packs: NULL with n_packs > 0");
	if ((r = exai__sodium_init()) < 0)
		return r;

	exai_scrubber *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ctx = exai_ctx_ref(ctx);
	s->flags = EXAI__OPT(opts, flags, 0);
	s->mode = mode;
	s->max_input = max_input;
	if (hk) {
		memcpy(s->hash_key, hk, hkl);
		s->hash_key_len = hkl;
		s->have_hash_key = true;
		crypto_generichash(s->digest_key, 32, hk, hkl, (const uint8_t *)"exai scrub audit", 16);
	} else {
		randombytes_buf(s->digest_key, sizeof(s->digest_key));
	}
	const char *tenant = EXAI__OPT(opts, tenant, NULL);
	if (tenant && !(s->tenant = strdup(tenant))) {
		r = -ENOMEM;
		goto fail;
	}
	if (!(s->flags & EXAI_SCRUBBER_NO_BUILTIN))
		for (size_t i = 0; i < exai__builtin_pack_count; i++) {
			r = exai__pack_load(&s->set, exai__builtin_packs[i].name,
					    (const char *)exai__builtin_packs[i].data, exai__builtin_packs[i].len);
			if (r < 0)
				goto fail;
		}
	for (size_t i = 0; i < n_packs; i++) {
		char name[32];
		snprintf(name, sizeof(name), "custom #%zu", i + 1);
		if (!packs[i]) {
			r = exai__err(-EINVAL, "exai_scrubber_opts.packs[%zu] is NULL", i);
			goto fail;
		}
		r = exai__pack_load(&s->set, name, packs[i], strlen(packs[i]));
		if (r < 0)
			goto fail;
	}
	if ((r = exai__pack_compile(&s->set)) < 0)
		goto fail;
	if ((r = exai__policy_load(&s->policy, &s->set, EXAI__OPT(opts, policy, NULL))) < 0)
		goto fail;
	if ((r = db_build(s)) < 0)
		goto fail;
	for (size_t i = 0; i < s->set.n; i++)
		if (s->set.pats[i].window > s->window_max)
			s->window_max = s->set.pats[i].window;
	if (s->db && hs_alloc_scratch(s->db, &s->scratch) != HS_SUCCESS) {
		r = exai__err(-ENOMEM, "scrub: cannot allocate Hyperscan scratch space");
		goto fail;
	}
	s->win = calloc(s->set.n ? s->set.n : 1, sizeof(*s->win));
	s->touched = calloc(s->set.n ? s->set.n : 1, sizeof(*s->touched));
	s->hit_first = calloc(s->set.n ? s->set.n : 1, sizeof(*s->hit_first));
	if (!s->win || !s->touched || !s->hit_first) {
		r = -ENOMEM;
		goto fail;
	}
	s->md = pcre2_match_data_create(33, NULL);
	s->mctx = pcre2_match_context_create(NULL);
	if (!s->md || !s->mctx) {
		r = -ENOMEM;
		goto fail;
	}
	/* No catastrophic backtracking: every confirmation is bounded. */
	pcre2_set_match_limit(s->mctx, 200000);
	pcre2_set_depth_limit(s->mctx, 10000);
	pcre2_set_heap_limit(s->mctx, 20000);
	/* A scan sees a finding when it sees its match (at most one window, or one decoded run),
	 * the 64 bytes of keywords before it and the bytes after it that boundaries look at: a
	 * stream keeps that much before each cut (scrub.c). It scans again once EXAI__SCRUB_STEP
	 * bytes more are undecided, and a cut never splits a candidate (at most one window long), so
	 * no more than context + window bytes are ever held back after a feed. */
	s->context = EXAI__SCRUB_WINDOW_MAX + EXAI__SCRUB_KEYWORD_BEFORE + 256;
	s->holdback = s->context + (EXAI__SCRUB_STEP > EXAI__SCRUB_WINDOW_MAX ? EXAI__SCRUB_STEP : EXAI__SCRUB_WINDOW_MAX);
	exai__log_debug(s->ctx, MOD, "scrubber ready: %zu patterns", s->set.n);
	*ret = s;
	return 0;
fail:
	exai_scrubber_free(s);
	return r;
}

void exai_scrubber_free(exai_scrubber *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->kwtab && i < s->set.n; i++) /* before the pack set goes */
		free(s->kwtab[i]);
	free(s->kwtab);
	exai__pack_set_free(&s->set);
	exai__policy_free(&s->policy);
	hs_free_scratch(s->scratch);
	hs_free_database(s->db);
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	free(s->win);
	free(s->touched);
	free(s->hit_first);
	free(s->head_byte);
	plan_reset(s);
	free(s->trig_pats);
	free(s->tenant);
	exai_ctx_unref(s->ctx);
	exai_memzero(s, sizeof(*s));
	free(s);
}

size_t exai_scrubber_pattern_count(const exai_scrubber *s)
{
	return s ? s->set.n : 0;
}

int exai_scrubber_pattern(const exai_scrubber *s, size_t i, const char **id, const char **cls, int *kind,
			  const char **validator, int *severity)
{
	if (!s || i >= s->set.n)
		return exai__err(-ERANGE, "scrub: no pattern #%zu", i);
	const struct exai__pattern *p = &s->set.pats[i];
	if (id)
		*id = p->id;
	if (cls)
		*cls = p->cls;
	if (kind)
		*kind = p->kind;
	if (validator)
		*validator = exai__validator_name(p->validator);
	if (severity)
		*severity = p->severity;
	return 0;
}

size_t exai_scrubber_holdback(const exai_scrubber *s)
{
	return s ? s->holdback : 0;
}

/* ---- scanning --------------------------------------------------------------------------- */

struct hit {
	unsigned pat;
	size_t ws, wl, we;
};

struct scan_state {
	exai_scrubber *s;
	struct exai__win *w;
	size_t n_touched;
	struct hit *hits;
	size_t n_hits, cap_hits;
	const char *text;
	size_t len;
	int err;
};

static int push_hit(struct scan_state *st, unsigned pat, const struct exai__win *w)
{
	if (st->n_hits == st->cap_hits) {
		size_t cap = st->cap_hits ? st->cap_hits * 2 : 64;
		struct hit *h = realloc(st->hits, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		st->hits = h;
		st->cap_hits = cap;
	}
	st->hits[st->n_hits++] = (struct hit){ pat, w->ws, w->wl, w->we };
	return 0;
}

/* Opens (or extends) pattern @id's candidate window: matches that start in [ws, wl] and end by
 * we. Windows of one pattern that overlap are merged. */
static int open_window(struct scan_state *st, unsigned id, size_t ws, size_t wl, size_t we)
{
	struct exai__win *w = &st->w[id];
	if (w->open && ws <= w->we && w->ws <= we) {
		w->ws = ws < w->ws ? ws : w->ws;
		w->wl = wl > w->wl ? wl : w->wl;
		w->we = we > w->we ? we : w->we;
		return 0;
	}
	if (w->open && push_hit(st, id, w) < 0) {
		st->err = -ENOMEM;
		return 1;
	}
	if (!w->open)
		st->s->touched[st->n_touched++] = id;
	w->open = true;
	w->ws = ws;
	w->wl = wl;
	w->we = we;
	return 0;
}

static size_t sub_sat(size_t a, size_t b)
{
	return a > b ? a - b : 0;
}

/* The most starts of a window whose first bytes are looked at before PCRE2 runs. */
#define HEAD_SCAN_MAX 1024
/* A literal hit's window of at least this many starts is narrowed when it opens (on_match). */
#define HEAD_NARROW_MIN 16

/* The first start of window @h (from its start or @resume to its last start) at which a match
 * of its pattern may begin: the bytes there fit the pattern's first bytes (a memchr for the
 * most selective check when it is one byte). SIZE_MAX when there is none: PCRE2 would find
 * nothing, the window is skipped (a match may always start at the text's start, where a `^`
 * lets its first bytes differ). Only the first HEAD_SCAN_MAX starts are looked at; when none
 * of them fits, the first start past them. */
static size_t first_start(const exai_scrubber *s, unsigned pat, size_t ws, size_t wl, const char *text, size_t len,
			  size_t resume)
{
	unsigned c0 = s->head_first[pat], c1 = s->head_first[pat + 1];
	size_t from = ws > resume ? ws : resume, to = wl < len ? wl : len - 1;
	if (c0 == c1)
		return from;
	if (from > to)
		return SIZE_MAX;
	if (from == 0)
		return 0; /* at the text's start, a pattern's first bytes may differ (^) */
	size_t last = to - from >= HEAD_SCAN_MAX ? from + HEAD_SCAN_MAX - 1 : to;
	const size_t off = (size_t)s->heads[c0].off;
	const int byte = s->head_byte[pat];
	for (size_t ms = from; ms <= last; ms++) {
		if (byte >= 0 && ms + off < len) { /* the next start whose byte there is the one */
			size_t e = last + off + 1 < len ? last + off + 1 : len;
			const char *q = memchr(text + ms + off, byte, e - (ms + off));
			if (!q) {
				if (e == len && len - off <= last)
					return len - off; /* the check's byte lies past the text: it passes */
				break;
			}
			ms = (size_t)(q - text) - off;
		}
		unsigned c = c0;
		while (c < c1 && (ms + (size_t)s->heads[c].off >= len ||
				  exai__bset_has(&s->heads[c].set, (unsigned char)text[ms + (size_t)s->heads[c].off])))
			c++;
		if (c == c1)
			return ms;
	}
	return last < to ? last + 1 : SIZE_MAX;
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ud)
{
	(void)from;
	(void)flags;
	struct scan_state *st = ud;
	const exai_scrubber *s = st->s;
	if (id < s->set.n) { /* a pattern's (loosened) regex ends at @to */
		size_t W = s->set.pats[id].window;
		return open_window(st, id, sub_sat((size_t)to, W), (size_t)to, (size_t)to);
	}
	/* literal k starts at ls: a match of a pattern it gates starts in [ls - hi, ls - lo] */
	size_t k = id - s->set.n, ls = (size_t)to - s->lits[k].len;
	for (unsigned u = s->lit_first[k]; u < s->lit_first[k + 1]; u++) {
		const struct exai__lit_use *x = &s->lit_uses[u];
		if (!exai__lit_use_ok(s->chks, x, st->text, st->len, ls))
			continue;
		size_t W = s->set.pats[x->pat].window;
		size_t ws = x->hi >= 0 ? sub_sat(ls, (size_t)x->hi) : ls + (size_t)-x->hi;
		size_t wl = x->lo >= 0 ? sub_sat(ls, (size_t)x->lo) : ls + (size_t)-x->lo;
		/* a wide window without context checks (a keyword's) whose pattern's first bytes
		 * hold a byte found with memchr: opened only from its first start that fits them */
		if (!x->n_chk && wl - ws >= HEAD_NARROW_MIN && s->head_byte[x->pat] >= 0 &&
		    (ws = first_start(s, x->pat, ws, wl, st->text, st->len, 0)) == SIZE_MAX)
			continue;
		if (open_window(st, x->pat, ws, wl, wl + W))
			return 1;
	}
	return 0;
}

/* Opens a run trigger's window [ws, wl] (ends by we) from its first start that fits the
 * pattern's first bytes, or not at all when none does (looked at in windows of fewer than
 * HEAD_NARROW_MIN starts: a shape's lead + 1). */
static int open_fitting(struct scan_state *st, unsigned pat, size_t ws, size_t wl, size_t we)
{
	if (wl - ws < HEAD_NARROW_MIN && (ws = first_start(st->s, pat, ws, wl, st->text, st->len, 0)) == SIZE_MAX)
		return 0;
	return open_window(st, pat, ws, wl, we);
}

/* A run of a trigger class: the patterns it triggers whose minimums it meets. A match holds at
 * least min class bytes of the run, so it starts in [start + min - W, end - min] and ends by
 * end + W. A pattern with shapes starts at most lead bytes before a group where a shape fits,
 * and ends by that group's start + W: a window of lead + 1 starts for each such group, and
 * none where the validator (when the pack says it may) rejects what the shape covers. */
static int on_run(void *ud, unsigned spec, size_t start, size_t end, unsigned body, unsigned seps)
{
	struct scan_state *st = ud;
	const exai_scrubber *s = st->s;
	uint32_t gstart[64];
	uint16_t glen[64];
	unsigned ng = 0;
	bool have_groups = false;
	for (unsigned i = s->trig_first[spec]; i < s->trig_first[spec + 1]; i++) {
		unsigned pat = s->trig_pats[i];
		const struct exai__pattern *p = &s->set.pats[pat];
		const struct exai__trigger *t = &p->trigger;
		if (body < t->min || seps < t->min_seps)
			continue;
		/* before / first: only when no other pattern's separators can have widened the run */
		if (!s->run_specs[spec].n_seps && !s->run_specs[spec].adjacent &&
		    ((t->before[0] && (start == 0 || !strchr(t->before, st->text[start - 1]))) ||
		     (t->first[0] && !strchr(t->first, st->text[start]))))
			continue;
		size_t W = p->window;
		if (t->n_shapes) {
			if (!have_groups) {
				ng = exai__run_groups(t->run, st->text, start, end, gstart, glen, 64);
				have_groups = true;
			}
			if (ng <= 64) {
				for (unsigned g = 0; g < ng; g++) {
					size_t span = 0, gs = start + gstart[g];
					bool fits = false;
					for (unsigned k = 0; k < t->n_shapes && !fits; k++)
						fits = exai__shape_fits(&t->shapes[k], gstart, glen, ng, g, &span);
					if (!fits || (t->validate && !exai__validate(p->validator, st->text + gs, span)))
						continue;
					if (open_fitting(st, pat, sub_sat(gs, t->lead), gs, gs + W))
						return 1;
				}
				continue;
			}
			/* more groups than counted: the window around the whole run */
		}
		size_t m = t->min < W ? t->min : W, ws = sub_sat(start + m, W);
		if (open_fitting(st, pat, ws, end - m, end + W))
			return 1;
	}
	return 0;
}

/* A pattern's keywords by their first byte: those starting with byte c (in either case) are
 * order[start[c] .. start[c] + count[c]), of len[] bytes. */
struct exai__kwtab {
	uint8_t start[256], count[256];
	uint8_t order[255];
	uint16_t len[255];
};

/* Whether a keyword of pattern @pat lies in [ms - 64, me]: one pass over the bytes, comparing
 * only the keywords that start with the byte there. */
static bool keyword_near(const exai_scrubber *s, unsigned pat, const char *text, size_t ms, size_t me)
{
	const struct exai__pattern *p = &s->set.pats[pat];
	const struct exai__kwtab *t = s->kwtab[pat];
	for (size_t i = ms > EXAI__SCRUB_KEYWORD_BEFORE ? ms - EXAI__SCRUB_KEYWORD_BEFORE : 0; i < me; i++) {
		unsigned char c = (unsigned char)text[i];
		if (!t->count[c])
			continue;
		for (unsigned j = t->start[c]; j < (unsigned)t->start[c] + t->count[c]; j++) {
			const char *kw = p->keywords[t->order[j]];
			size_t kl = t->len[j];
			if (i + kl > me)
				continue;
			unsigned char d = kl > 1 ? (unsigned char)text[i + 1] : 0;
			d = d >= 'A' && d <= 'Z' ? (unsigned char)(d + 32) : d;
			if ((kl == 1 || d == (unsigned char)kw[1]) && strncasecmp(text + i, kw, kl) == 0)
				return true;
		}
	}
	return false;
}

/* The keyword tables (keyword_near) of the patterns that have keywords (at most 255, which
 * the pack's checks keep far from). */
static int keywords_build(exai_scrubber *s)
{
	s->kwtab = calloc(s->set.n ? s->set.n : 1, sizeof(*s->kwtab));
	if (!s->kwtab)
		return -ENOMEM;
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		if (!p->n_keywords)
			continue;
		if (p->n_keywords > 255)
			return exai__err(-EINVAL, "scrub pack '%s': pattern '%s': more than 255 keywords", p->pack, p->id);
		struct exai__kwtab *t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->kwtab[i] = t;
		for (size_t k = 0; k < p->n_keywords; k++)
			t->count[(unsigned char)p->keywords[k][0]]++;
		for (unsigned c = 0, at = 0; c < 256; c++) {
			t->start[c] = (uint8_t)at;
			at += t->count[c];
		}
		uint8_t fill[256] = { 0 };
		for (size_t k = 0; k < p->n_keywords; k++) {
			unsigned char c = (unsigned char)p->keywords[k][0];
			size_t kl = strlen(p->keywords[k]);
			t->order[t->start[c] + fill[c]] = (uint8_t)k;
			t->len[t->start[c] + fill[c]++] = (uint16_t)(kl < UINT16_MAX ? kl : UINT16_MAX);
		}
		for (unsigned c = 'A'; c <= 'Z'; c++) { /* upper case: the lower-case keywords */
			t->start[c] = t->start[c + 32];
			t->count[c] = t->count[c + 32];
		}
	}
	return 0;
}

static int rank_of(const struct exai__pattern *p)
{
	if (p->validator != EXAI__V_NONE && p->validator != EXAI__V_NOT_PLACEHOLDER)
		return 3;
	return p->n_keywords ? 2 : 1;
}

/* Per pattern, the one byte its most selective check of a match's first bytes allows, or -1
 * (first_start). */
static int head_bytes_build(exai_scrubber *s)
{
	s->head_byte = malloc((s->set.n ? s->set.n : 1) * sizeof(int));
	if (!s->head_byte)
		return -ENOMEM;
	for (size_t i = 0; i < s->set.n; i++) {
		s->head_byte[i] = -1;
		if (s->head_first[i] == s->head_first[i + 1])
			continue;
		const struct exai__bset *b = &s->heads[s->head_first[i]].set;
		if (exai__bset_count(b) != 1)
			continue;
		for (unsigned c = 0; c < 256; c++)
			if (exai__bset_has(b, (unsigned char)c))
				s->head_byte[i] = (int)c;
	}
	return 0;
}

/* The widest window whose keywords are looked for before PCRE2 runs (the search must cost
 * less than PCRE2's: narrow windows, a run trigger's). */
#define KEYWORD_SKIP_SPAN 64

/* Confirms window @h of its pattern (@alone: no later window of the pattern starts inside it).
 * A window is skipped when no keyword of its pattern lies in [ws - 64, we]: no match in it can
 * pass the keyword condition (a match ends by we, except in a regex gate's window, which ends
 * at a candidate end: never skipped). Only when alone: a match the window would have found,
 * kept or not, ends the search there, and a later window starting inside it would go on from
 * there. */
static int confirm(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, const struct hit *h,
		   size_t *resume, int depth, bool alone)
{
	const struct exai__pattern *p = &s->set.pats[h->pat];
	size_t first = first_start(s, h->pat, h->ws, h->wl, text, len, *resume);
	if (first == SIZE_MAX)
		return 0;
	if (alone && p->n_keywords && p->gate != EXAI__GATE_REGEX && h->we - h->ws <= KEYWORD_SKIP_SPAN &&
	    !keyword_near(s, h->pat, text, h->ws, h->we < len ? h->we : len))
		return 0;
	size_t sublen = h->we + 64 < len ? h->we + 64 : len;
	size_t pos = first; /* no match starts before it */
	pcre2_set_offset_limit(s->mctx, h->wl); /* no match starts after the window */
	while (pos < sublen && pos <= h->wl) {
		int rc = pcre2_match(p->re, (PCRE2_SPTR)text, sublen, pos, 0, s->md, s->mctx);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			exai__log_debug(s->ctx, MOD, "pattern %s: match abandoned at offset %zu (%d)", p->id, pos, rc);
			break;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
		size_t ms = ov[0], me = ov[1];
		size_t gs = ov[2 * p->group], ge = ov[2 * p->group + 1];
		if (ms > h->wl)
			break; /* past the window: another window will find it */
		pos = me > ms ? me : ms + 1;
		if (rc <= (int)p->group || gs == PCRE2_UNSET || ge <= gs)
			continue;
		if (p->n_keywords && !keyword_near(s, h->pat, text, ms, me))
			continue;
		if (!exai__validate(p->validator, text + gs, ge - gs))
			continue;
		if (p->min_entropy > 0 && exai__shannon(text + gs, ge - gs) < p->min_entropy)
			continue;
		if (ge - gs > EXAI__SCRUB_WINDOW_MAX) /* findings are bounded (streams hold back no more) */
			continue;
		if (exai__policy_allowed(&s->policy, s->md, text + gs, ge - gs)) /* reuses md: ov is dead */
			continue;
		int rank = rank_of(p);
		struct exai__cand c = { .start = gs, .end = ge, .pat = (int)h->pat, .rank = rank,
					.score = rank == 3 ? 1.0 : rank == 2 ? 0.9 : 0.8, .decoded = depth };
		if (exai__cands_push(out, &c) < 0)
			return -ENOMEM;
	}
	*resume = pos;
	return 0;
}

static int hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	if (x->pat != y->pat)
		return x->pat < y->pat ? -1 : 1;
	return x->ws < y->ws ? -1 : x->ws > y->ws;
}

/* The thread's CPU time, for the statistics of the benchmark's plan mode. */
static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What reading that clock twice costs (a system call, as much as a typical window's whole
 * confirmation): measured once, and taken off each window's time. */
static double clock_cost_s;
static pthread_once_t clock_cost_once = PTHREAD_ONCE_INIT;

static void clock_cost_measure(void)
{
	enum { N = 2000 };
	double t0 = cpu_now();
	for (int i = 0; i < N; i++)
		(void)cpu_now();
	clock_cost_s = (cpu_now() - t0) / (N + 1);
}

static double clock_cost(void)
{
	pthread_once(&clock_cost_once, clock_cost_measure);
	return clock_cost_s;
}

static int stage1(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, int depth)
{
	if ((!s->db && !s->n_run_specs) || len == 0)
		return 0;
	struct scan_state st = { .s = s, .w = s->win, .text = text, .len = len };
	int r = 0;
	if (s->db && hs_scan(s->db, text, (unsigned)len, 0, s->scratch, on_match, &st) != HS_SUCCESS && !st.err)
		r = exai__err(-EIO, "scrub: Hyperscan scan failed");
	if (r == 0 && !st.err && s->n_run_specs)
		exai__runs_scan_plan(&s->run_plan, text, len, on_run, &st, EXAI__SIMD_BEST);
	if (st.err)
		r = st.err;
	/* close the open windows, and leave every window closed for the next scan */
	for (size_t k = 0; k < st.n_touched; k++) {
		struct exai__win *w = &st.w[s->touched[k]];
		if (r == 0 && w->open)
			r = push_hit(&st, s->touched[k], w);
		w->open = false;
	}
	/* group the windows by pattern (a counting sort: each pattern's come in text order, or
	 * nearly), then confirm each pattern's windows left to right */
	struct hit *by = r == 0 && st.n_hits ? malloc(st.n_hits * sizeof(*by)) : NULL;
	if (r == 0 && st.n_hits && !by)
		r = -ENOMEM;
	if (r == 0 && st.n_hits) {
		unsigned *first = s->hit_first;
		for (size_t k = 0; k < st.n_touched; k++)
			first[s->touched[k]] = 0;
		for (size_t i = 0; i < st.n_hits; i++)
			first[st.hits[i].pat]++;
		unsigned acc = 0;
		for (size_t k = 0; k < st.n_touched; k++) {
			unsigned c = first[s->touched[k]];
			first[s->touched[k]] = acc;
			acc += c;
		}
		for (size_t i = 0; i < st.n_hits; i++)
			by[first[st.hits[i].pat]++] = st.hits[i];
		for (size_t i = 0, j; r == 0 && i < st.n_hits; i = j) {
			bool sorted = true;
			for (j = i + 1; j < st.n_hits && by[j].pat == by[i].pat; j++)
				sorted &= by[j].ws >= by[j - 1].ws;
			if (!sorted)
				qsort(by + i, j - i, sizeof(*by), hit_cmp);
			if (s->set.pats[by[i].pat].disabled)
				continue;
			size_t resume = 0;
			for (size_t h = i; r == 0 && h < j; h++) {
				bool alone = h + 1 == j || by[h + 1].ws > by[h].we;
				if (s->stats) {
					double t0 = cpu_now();
					r = confirm(s, out, text, len, &by[h], &resume, depth, alone);
					double t = cpu_now() - t0 - clock_cost();
					struct exai__pat_stats *ps = &s->stats[by[h].pat];
					ps->windows++;
					ps->bytes += by[h].we - by[h].ws;
					ps->seconds += t > 0 ? t : 0;
				} else {
					r = confirm(s, out, text, len, &by[h], &resume, depth, alone);
				}
			}
		}
	}
	free(by);
	free(st.hits);
	return r;
}

struct stage2_ctx {
	exai_scrubber *s;
	struct exai__cands *out;
	const char *text;
	int depth;
};

/* One run of token bytes: its token (less the punctuation a sentence puts after it), scored
 * when its length is in the model's range. */
static int stage2_token(void *ud, size_t a, size_t b)
{
	const struct stage2_ctx *c = ud;
	const char *text = c->text;
	while (b > a && (text[b - 1] == '.' || text[b - 1] == '-' || text[b - 1] == '_'))
		b--;
	size_t n = b - a, nb = a > 32 ? 32 : a;
	double p;
	if (n < EXAI__CLS_MIN_LEN || n > EXAI__CLS_MAX_LEN || !exai__cls_secret(text + a, n, text + a - nb, nb, &p) ||
	    exai__policy_allowed(&c->s->policy, c->s->md, text + a, n))
		return 0;
	struct exai__cand cand = { .start = a, .end = b, .pat = -1, .rank = 0, .score = p, .decoded = c->depth };
	return exai__cands_push(c->out, &cand);
}

static int stage2(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, int depth)
{
	if (s->flags & EXAI_SCRUBBER_NO_STAGE2)
		return 0;
	struct stage2_ctx c = { s, out, text, depth };
	return exai__class_runs(text, len, EXAI__CR_TOKEN, EXAI__CLS_MIN_LEN, stage2_token, &c);
}

static int scan_depth(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, int depth);

struct decode_ctx {
	exai_scrubber *s;
	struct exai__cands *out;
	int depth;
};

static int on_decoded(void *ud, const struct exai__decoded *d)
{
	struct decode_ctx *dc = ud;
	struct exai__cands sub = { 0 };
	int r = scan_depth(dc->s, &sub, d->data, d->len, dc->depth + 1);
	for (size_t i = 0; r == 0 && i < sub.n; i++) {
		struct exai__cand c = sub.v[i];
		c.start = d->src_start[c.start];
		c.end = d->src_end[c.end - 1];
		r = exai__cands_push(dc->out, &c);
	}
	free(sub.v);
	return r;
}

static int scan_depth(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, int depth)
{
	int r = stage1(s, out, text, len, depth);
	if (r == 0)
		r = stage2(s, out, text, len, depth);
	if (r == 0 && depth < EXAI__SCRUB_DECODE_DEPTH && !(s->flags & EXAI_SCRUBBER_NO_DECODE)) {
		struct decode_ctx dc = { s, out, depth };
		r = exai__decode_runs(text, len, on_decoded, &dc);
	}
	return r;
}

int exai__scan(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len)
{
	return scan_depth(s, out, text, len, 0);
}

/* ---- resolution ------------------------------------------------------------------------- */

static const exai_scrubber *cmp_s;

static int by_start(const void *a, const void *b)
{
	const struct exai__cand *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	if (x->pat != y->pat)
		return x->pat < y->pat ? -1 : 1;
	return x->decoded - y->decoded;
}

static int severity(const exai_scrubber *s, int pat)
{
	return pat < 0 ? 0 : s->set.pats[pat].severity;
}

static bool is_pii(const exai_scrubber *s, int pat)
{
	return pat >= 0 && s->set.pats[pat].kind == EXAI__KIND_PII;
}

/* Higher rank first: a pattern before stage 2, a secret before personal data (the bytes of
 * a finding that loses stay in clear: an e-mail address read into "user:password@host" must
 * not leave the password's first bytes), then the pattern's specificity. */
static int by_rank(const void *a, const void *b)
{
	const struct exai__cand *x = a, *y = b;
	if ((x->rank > 0) != (y->rank > 0))
		return x->rank > 0 ? -1 : 1;
	if (is_pii(cmp_s, x->pat) != is_pii(cmp_s, y->pat))
		return is_pii(cmp_s, x->pat) ? 1 : -1;
	if (x->rank != y->rank)
		return y->rank - x->rank;
	size_t lx = x->end - x->start, ly = y->end - y->start;
	if (lx != ly)
		return lx > ly ? -1 : 1;
	int sx = severity(cmp_s, x->pat), sy = severity(cmp_s, y->pat);
	if (sx != sy)
		return sy - sx;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->pat != y->pat) /* stage 2 (-1) last */
		return (unsigned)x->pat < (unsigned)y->pat ? -1 : 1;
	return x->decoded - y->decoded;
}

void exai__resolve(exai_scrubber *s, struct exai__cands *c)
{
	if (c->n < 2)
		return;
	qsort(c->v, c->n, sizeof(*c->v), by_start);
	/* Work cluster by cluster: a cluster is a maximal run of overlapping candidates. */
	size_t out = 0, i = 0;
	cmp_s = s;
	while (i < c->n) {
		size_t j = i + 1, end = c->v[i].end;
		while (j < c->n && c->v[j].start < end) {
			if (c->v[j].end > end)
				end = c->v[j].end;
			j++;
		}
		if (j - i == 1) {
			c->v[out++] = c->v[i];
		} else {
			qsort(c->v + i, j - i, sizeof(*c->v), by_rank);
			size_t kept0 = out;
			for (size_t k = i; k < j; k++) {
				bool overlap = false;
				for (size_t m = kept0; m < out && !overlap; m++)
					overlap = c->v[k].start < c->v[m].end && c->v[m].start < c->v[k].end;
				if (!overlap)
					c->v[out++] = c->v[k];
			}
			qsort(c->v + kept0, out - kept0, sizeof(*c->v), by_start);
		}
		i = j;
	}
	c->n = out;
}

void exai__finding_fill(const exai_scrubber *s, struct exai_scrub_finding *f, const struct exai__cand *c)
{
	memset(f, 0, sizeof(*f));
	f->start = c->start;
	f->end = c->end;
	f->score = c->score;
	f->decoded = c->decoded;
	if (c->pat >= 0) {
		const struct exai__pattern *p = &s->set.pats[c->pat];
		f->cls = p->cls;
		f->pattern = p->id;
		f->stage = EXAI_SCRUB_STAGE_PATTERN;
		f->kind = p->kind;
	} else {
		f->cls = "secret";
		f->pattern = "stage2.classifier";
		f->stage = EXAI_SCRUB_STAGE_CLASSIFIER;
		f->kind = EXAI__KIND_SECRET;
	}
}
