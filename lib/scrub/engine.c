/* SPDX-License-Identifier: Apache-2.0 */
/* engine.c: the scrubber: Hyperscan database (built or loaded from the cache), candidate
 * windows confirmed by PCRE2, keywords, validators, entropy, stage 2, decoders, and the
 * resolution of overlapping findings. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "exai-config.h"
#include "scrub-internal.h"

#define MOD "scrub"
#define HSDB_MAGIC "EXHSDB1\n"

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

/* ---- the Hyperscan database and its cache ------------------------------------------------ */

/* A gated pattern gives Hyperscan its keywords (literals: the fast part of Hyperscan) instead of
 * its regex, and PCRE2 confirms the regex around each occurrence. Keywords are selective when
 * each is at least this long, or holds `@` or `~` (rare in text); `:`, `1` or `ac` are found
 * everywhere. */
#define GATE_MIN_KEYWORD 3

/* The longest run of literal characters in @re outside classes, escapes and quantifiers, a
 * character that a quantifier follows not counted: what Hyperscan can anchor its search on. */
static size_t literal_run(const char *re)
{
	size_t run = 0, best = 0;
	for (const char *c = re; *c;) {
		if (*c == '\\') {
			run = 0;
			c += c[1] ? 2 : 1;
		} else if (*c == '[') { /* a class: skip to its end */
			c++;
			if (*c == '^')
				c++;
			if (*c == ']')
				c++;
			while (*c && *c != ']')
				c += c[0] == '\\' && c[1] ? 2 : 1;
			if (*c)
				c++;
			run = 0;
		} else if (*c == '{') { /* a quantifier: its digits are no literal */
			while (*c && *c != '}')
				c++;
			if (*c)
				c++;
			run = 0;
		} else if (*c == '(' && c[1] == '?') { /* (?: (?i: (?m) */
			while (*c && *c != ':' && *c != ')')
				c++;
			if (*c)
				c++;
			run = 0;
		} else if (isalnum((unsigned char)*c) || strchr("_-=:/@~.", *c)) {
			if (c[1] == '?' || c[1] == '*' || c[1] == '{')
				run = 0;
			else if (++run > best)
				best = run;
			c++;
		} else {
			run = 0;
			c++;
		}
	}
	return best;
}

/* Which patterns are gated, and the table of their distinct keywords. A pattern is gated when
 * its regex has no literal of 3+ characters (digit and letter classes: personal data, keyed
 * numbers), which Hyperscan scans slowly, and its keywords are selective. */
static int keywords_build(exai_scrubber *s)
{
	size_t total = 0;
	for (size_t i = 0; i < s->set.n; i++) {
		struct exai__pattern *p = &s->set.pats[i];
		p->gated = p->n_keywords > 0 && literal_run(p->regex) < GATE_MIN_KEYWORD;
		for (size_t k = 0; k < p->n_keywords; k++)
			p->gated &= strlen(p->keywords[k]) >= GATE_MIN_KEYWORD || strpbrk(p->keywords[k], "@~");
		if (p->gated)
			total += p->n_keywords;
	}
	unsigned *kw_of = calloc(total + 1, sizeof(unsigned)); /* per (pattern, keyword) */
	s->kw = calloc(total + 1, sizeof(*s->kw));
	s->kw_first = calloc(total + 2, sizeof(unsigned));
	s->kw_pats = calloc(total + 1, sizeof(unsigned));
	if (!kw_of || !s->kw || !s->kw_first || !s->kw_pats) {
		free(kw_of);
		return -ENOMEM;
	}
	size_t m = 0;
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		for (size_t k = 0; p->gated && k < p->n_keywords; k++) {
			size_t j = 0;
			while (j < s->n_kw && strcmp(s->kw[j], p->keywords[k]) != 0)
				j++;
			if (j == s->n_kw)
				s->kw[s->n_kw++] = p->keywords[k];
			kw_of[m++] = (unsigned)j;
			s->kw_first[j + 1]++;
		}
	}
	for (size_t j = 0; j < s->n_kw; j++)
		s->kw_first[j + 1] += s->kw_first[j];
	/* fill: the patterns of each keyword in pattern order (a pattern once per keyword) */
	unsigned *fill = calloc(s->n_kw + 1, sizeof(unsigned));
	if (!fill) {
		free(kw_of);
		return -ENOMEM;
	}
	m = 0;
	for (size_t i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		for (size_t k = 0; p->gated && k < p->n_keywords; k++) {
			unsigned j = kw_of[m++];
			s->kw_pats[s->kw_first[j] + fill[j]++] = (unsigned)i;
		}
	}
	free(fill);
	free(kw_of);
	return 0;
}

/* A keyword as a Hyperscan expression: every byte escaped. */
static char *keyword_expr(const char *kw)
{
	size_t n = strlen(kw);
	char *e = malloc(4 * n + 1);
	if (!e)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(e + 4 * i, 5, "\\x%02x", (unsigned char)kw[i]);
	return e;
}

/* What Hyperscan compiles: the regexes of the patterns that are not gated (id: the pattern's
 * index) and the keywords of those that are (id: set.n + k). */
struct db_exprs {
	const char **exprs;
	char **kexprs;
	unsigned *flags, *ids;
	unsigned m;
};

static void db_exprs_free(exai_scrubber *s, struct db_exprs *e)
{
	for (size_t k = 0; e->kexprs && k < s->n_kw; k++)
		free(e->kexprs[k]);
	free(e->kexprs);
	free(e->exprs);
	free(e->flags);
	free(e->ids);
	memset(e, 0, sizeof(*e));
}

static int db_exprs_build(exai_scrubber *s, struct db_exprs *e)
{
	size_t n = s->set.n, total = n + s->n_kw + 1;
	e->exprs = calloc(total, sizeof(char *));
	e->kexprs = calloc(s->n_kw + 1, sizeof(char *));
	e->flags = calloc(total, sizeof(unsigned));
	e->ids = calloc(total, sizeof(unsigned));
	if (!e->exprs || !e->kexprs || !e->flags || !e->ids)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (s->set.pats[i].gated)
			continue;
		e->exprs[e->m] = s->set.pats[i].hs_regex;
		e->flags[e->m] = s->set.pats[i].hs_flags;
		e->ids[e->m++] = (unsigned)i;
	}
	for (size_t k = 0; k < s->n_kw; k++) {
		if (!(e->kexprs[k] = keyword_expr(s->kw[k])))
			goto nomem;
		e->exprs[e->m] = e->kexprs[k];
		e->flags[e->m] = HS_FLAG_CASELESS;
		e->ids[e->m++] = (unsigned)(n + k);
	}
	return 0;
nomem:
	db_exprs_free(s, e);
	return -ENOMEM;
}

static int db_compile(exai_scrubber *s, const struct db_exprs *e)
{
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

/* The cache file: named by the SHA-256 of everything compiled (expressions, flags, ids) and
 * of Hyperscan's version. */
static char *cache_path(exai_scrubber *s, const struct db_exprs *e)
{
	uint8_t h[32];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned l = 0;
	const char *v = hs_version();
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, HSDB_MAGIC, sizeof(HSDB_MAGIC) - 1) &&
		  EVP_DigestUpdate(md, v, strlen(v) + 1);
	for (unsigned i = 0; ok && i < e->m; i++)
		ok = EVP_DigestUpdate(md, e->exprs[i], strlen(e->exprs[i]) + 1) &&
		     EVP_DigestUpdate(md, &e->flags[i], sizeof(e->flags[i])) && EVP_DigestUpdate(md, &e->ids[i], sizeof(e->ids[i]));
	ok = ok && EVP_DigestFinal_ex(md, h, &l);
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

/* Loads the cached database: 0, or negative when absent or not to be trusted. */
static int db_load_cache(exai_scrubber *s, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int r = exai__read_file(path, 256u << 20, &data, &len);
	if (r < 0)
		return r;
	r = -EBADMSG;
	const size_t hdr = sizeof(HSDB_MAGIC) - 1 + 32;
	uint8_t h[32];
	if (len <= hdr || memcmp(data, HSDB_MAGIC, sizeof(HSDB_MAGIC) - 1) != 0)
		goto out;
	SHA256((const uint8_t *)data + hdr, len - hdr, h);
	if (memcmp(h, data + sizeof(HSDB_MAGIC) - 1, 32) != 0)
		goto out;
	char *info = NULL;
	if (hs_serialized_database_info(data + hdr, len - hdr, &info) != HS_SUCCESS)
		goto out;
	free(info);
	if (hs_deserialize_database(data + hdr, len - hdr, &s->db) != HS_SUCCESS) {
		s->db = NULL;
		goto out;
	}
	r = 0;
out:
	free(data);
	return r;
}

static void db_store_cache(exai_scrubber *s, const char *path)
{
	char *ser = NULL;
	size_t slen = 0;
	if (hs_serialize_database(s->db, &ser, &slen) != HS_SUCCESS)
		return;
	const size_t hdr = sizeof(HSDB_MAGIC) - 1 + 32;
	char *buf = malloc(hdr + slen);
	if (buf) {
		memcpy(buf, HSDB_MAGIC, sizeof(HSDB_MAGIC) - 1);
		SHA256((const uint8_t *)ser, slen, (uint8_t *)buf + sizeof(HSDB_MAGIC) - 1);
		memcpy(buf + hdr, ser, slen);
		char *dir = exai__path_join(exai_ctx_state_dir(s->ctx), "scrub");
		if (dir && exai__ctx_ensure_state_dir(s->ctx) == 0 && exai__mkdir_p(dir, 0700) == 0 &&
		    exai__write_file_atomic(path, buf, hdr + slen, 0600) == 0)
			exai__log_debug(s->ctx, MOD, "cached the pattern database in %s", path);
		else
			exai__log_warn(s->ctx, MOD, "cannot cache the pattern database in %s", path);
		free(dir);
		free(buf);
	}
	free(ser);
}

static int db_build(exai_scrubber *s)
{
	if (s->set.n == 0)
		return 0;
	struct db_exprs e = { 0 };
	int r = db_exprs_build(s, &e);
	if (r < 0)
		return r;
	char *path = NULL;
	if (s->ctx && !(s->flags & EXAI_SCRUBBER_NO_CACHE)) {
		path = cache_path(s, &e);
		if (path) {
			r = db_load_cache(s, path);
			if (r == 0) {
				exai__log_debug(s->ctx, MOD, "loaded the pattern database from %s", path);
				goto out;
			}
			if (r != -ENOENT)
				exai__log_warn(s->ctx, MOD, "ignoring the corrupt or foreign pattern cache %s; rebuilding it",
					       path);
		}
	}
	r = db_compile(s, &e);
	if (r == 0 && path)
		db_store_cache(s, path);
out:
	free(path);
	db_exprs_free(s, &e);
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
	for (size_t i = 0; i < s->set.n; i++)
		if (s->set.pats[i].window > s->window_max)
			s->window_max = s->set.pats[i].window;
	if ((r = keywords_build(s)) < 0 || (r = db_build(s)) < 0)
		goto fail;
	if (s->db && hs_alloc_scratch(s->db, &s->scratch) != HS_SUCCESS) {
		r = exai__err(-ENOMEM, "scrub: cannot allocate Hyperscan scratch space");
		goto fail;
	}
	s->win = calloc(s->set.n ? s->set.n : 1, sizeof(*s->win));
	s->touched = calloc(s->set.n ? s->set.n : 1, sizeof(*s->touched));
	if (!s->win || !s->touched) {
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
	/* A finding is at most one window (or one decoded run) long, plus its keyword context. */
	s->holdback = EXAI__SCRUB_WINDOW_MAX + EXAI__SCRUB_KEYWORD_BEFORE + 256;
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
	exai__pack_set_free(&s->set);
	exai__policy_free(&s->policy);
	hs_free_scratch(s->scratch);
	hs_free_database(s->db);
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	free(s->win);
	free(s->touched);
	free(s->kw);
	free(s->kw_first);
	free(s->kw_pats);
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
	size_t ws, we;
};

struct scan_state {
	exai_scrubber *s;
	struct exai__win *w;
	size_t n_touched;
	struct hit *hits;
	size_t n_hits, cap_hits;
	int err;
};

static int push_hit(struct scan_state *st, unsigned pat, size_t ws, size_t we)
{
	if (st->n_hits == st->cap_hits) {
		size_t cap = st->cap_hits ? st->cap_hits * 2 : 64;
		struct hit *h = realloc(st->hits, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		st->hits = h;
		st->cap_hits = cap;
	}
	st->hits[st->n_hits++] = (struct hit){ pat, ws, we };
	return 0;
}

/* Opens (or extends) pattern @id's candidate window [ws, we]: PCRE2 looks for matches that
 * start at ws or later and not after we. */
static int open_window(struct scan_state *st, unsigned id, size_t ws, size_t we)
{
	struct exai__win *w = &st->w[id];
	if (w->open && ws <= w->we) {
		if (we > w->we)
			w->we = we;
		return 0;
	}
	if (w->open && push_hit(st, id, w->ws, w->we) < 0) {
		st->err = -ENOMEM;
		return 1;
	}
	if (!w->open)
		st->s->touched[st->n_touched++] = id;
	w->open = true;
	w->ws = ws;
	w->we = we;
	return 0;
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ud)
{
	(void)from;
	(void)flags;
	struct scan_state *st = ud;
	const exai_scrubber *s = st->s;
	if (id < s->set.n) { /* a pattern's (loosened) regex ends at @to */
		size_t W = s->set.pats[id].window;
		return open_window(st, id, to > W ? (size_t)to - W : 0, (size_t)to);
	}
	/* keyword k ends at @to: a match of a pattern it gates starts at most 64 bytes after the
	 * keyword's start and ends after the keyword's end, within the pattern's window */
	size_t k = id - s->set.n, ke = (size_t)to, ks = ke - strlen(s->kw[k]);
	for (unsigned i = s->kw_first[k]; i < s->kw_first[k + 1]; i++) {
		unsigned pat = s->kw_pats[i];
		size_t W = s->set.pats[pat].window;
		if (open_window(st, pat, ke > W ? ke - W : 0, ks + (W > EXAI__SCRUB_KEYWORD_BEFORE ? W : EXAI__SCRUB_KEYWORD_BEFORE)))
			return 1;
	}
	return 0;
}

static bool keyword_near(const struct exai__pattern *p, const char *text, size_t ms, size_t me)
{
	size_t from = ms > EXAI__SCRUB_KEYWORD_BEFORE ? ms - EXAI__SCRUB_KEYWORD_BEFORE : 0;
	for (size_t k = 0; k < p->n_keywords; k++) {
		const char *kw = p->keywords[k];
		size_t kl = strlen(kw);
		for (size_t i = from; i + kl <= me; i++)
			if (tolower((unsigned char)text[i]) == (unsigned char)kw[0] &&
			    strncasecmp(text + i, kw, kl) == 0)
				return true;
	}
	return false;
}

static int rank_of(const struct exai__pattern *p)
{
	if (p->validator != EXAI__V_NONE && p->validator != EXAI__V_NOT_PLACEHOLDER)
		return 3;
	return p->n_keywords ? 2 : 1;
}

static int confirm(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, const struct hit *h,
		   size_t *resume, int depth)
{
	const struct exai__pattern *p = &s->set.pats[h->pat];
	size_t sublen = h->we + 64 < len ? h->we + 64 : len;
	size_t pos = h->ws > *resume ? h->ws : *resume;
	while (pos < sublen) {
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
		pos = me > ms ? me : ms + 1;
		if (me > h->we + 1 && ms > h->we)
			break; /* past the window: another window will find it */
		if (rc <= (int)p->group || gs == PCRE2_UNSET || ge <= gs)
			continue;
		if (p->n_keywords && !keyword_near(p, text, ms, me))
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

static int stage1(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, int depth)
{
	if (!s->db || len == 0)
		return 0;
	struct scan_state st = { .s = s, .w = s->win };
	int r = 0;
	if (hs_scan(s->db, text, (unsigned)len, 0, s->scratch, on_match, &st) != HS_SUCCESS && !st.err)
		r = exai__err(-EIO, "scrub: Hyperscan scan failed");
	if (st.err)
		r = st.err;
	/* close the open windows, and leave every window closed for the next scan */
	for (size_t k = 0; k < st.n_touched; k++) {
		struct exai__win *w = &st.w[s->touched[k]];
		if (r == 0 && w->open)
			r = push_hit(&st, s->touched[k], w->ws, w->we);
		w->open = false;
	}
	if (r == 0) {
		if (st.n_hits)
			qsort(st.hits, st.n_hits, sizeof(*st.hits), hit_cmp);
		size_t resume = 0;
		for (size_t i = 0; r == 0 && i < st.n_hits; i++) {
			if (i == 0 || st.hits[i].pat != st.hits[i - 1].pat)
				resume = 0;
			if (s->set.pats[st.hits[i].pat].disabled)
				continue;
			r = confirm(s, out, text, len, &st.hits[i], &resume, depth);
		}
	}
	free(st.hits);
	return r;
}

static int stage2(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len, int depth)
{
	if (s->flags & EXAI_SCRUBBER_NO_STAGE2)
		return 0;
	double thr = exai__cls_threshold();
	const bool *tok = exai__cls_token_table();
	size_t i = 0;
	while (i < len) {
		if (!tok[(unsigned char)text[i]]) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && tok[(unsigned char)text[j]])
			j++;
		/* trim the punctuation a sentence puts around a token */
		size_t a = i, b = j;
		while (b > a && (text[b - 1] == '.' || text[b - 1] == '-' || text[b - 1] == '_'))
			b--;
		size_t n = b - a;
		if (n >= EXAI__CLS_MIN_LEN && n <= EXAI__CLS_MAX_LEN) {
			double f[EXAI__CLS_NFEAT];
			size_t nb = a > 32 ? 32 : a;
			exai__cls_features(f, text + a, n, text + a - nb, nb);
			double p = exai__cls_score(f);
			if (p >= thr && !exai__policy_allowed(&s->policy, s->md, text + a, n)) {
				struct exai__cand c = { .start = a, .end = b, .pat = -1, .rank = 0, .score = p,
							.decoded = depth };
				if (exai__cands_push(out, &c) < 0)
					return -ENOMEM;
			}
		}
		i = j;
	}
	return 0;
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

/* Higher rank first. */
static int by_rank(const void *a, const void *b)
{
	const struct exai__cand *x = a, *y = b;
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
