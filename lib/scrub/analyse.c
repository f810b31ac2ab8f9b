/* SPDX-License-Identifier: Apache-2.0 */
/*
 * analyse.c: what a pattern's regex tells the engine before any text is seen: its shortest and
 * longest match, and its most selective *required factor*: a small set of literals one of which
 * every match contains, with the range of offsets at which that literal starts in the match.
 * Hyperscan then looks for the literals (its fast literal matchers) and PCRE2 confirms the regex
 * in the window each occurrence allows (engine.c).
 *
 * The parser covers the pack dialect (docs/formats/scrub-pack.md) and a little more. Anything it
 * does not know (backreferences, recursion, \K, \p, ...) makes the analysis fail, and the
 * engine then gives Hyperscan the regex itself: never a wrong factor, at worst no factor.
 */
#include <stdlib.h>
#include <string.h>

#include "scrub-internal.h"

#define INF EXAI__RE_INF
#define SET_MAX 64 /* literals in a set */
#define UNION_MAX EXAI__LITS_MAX /* literals in the union of an alternation's factors */

static unsigned add_w(unsigned a, unsigned b)
{
	return a >= INF || b >= INF || a + b >= INF ? INF : a + b;
}

static unsigned mul_w(unsigned a, unsigned m)
{
	if (m == 0)
		return 0;
	if (a >= INF || m >= INF || (unsigned long long)a * m >= INF)
		return INF;
	return a * m;
}

/* ---- contexts: what the bytes around a factor's literal can be --------------------------- */

#define K EXAI__CTX_K
#define KMASK ((1u << K) - 1)
static const struct exai__bset ALL = { { ~0ull, ~0ull, ~0ull, ~0ull } };

static void bset_or(struct exai__bset *a, const struct exai__bset *b)
{
	for (int i = 0; i < 4; i++)
		a->b[i] |= b->b[i];
}

static void bset_and(struct exai__bset *a, const struct exai__bset *b)
{
	for (int i = 0; i < 4; i++)
		a->b[i] &= b->b[i];
}

static struct exai__bset bset_not(struct exai__bset a)
{
	for (int i = 0; i < 4; i++)
		a.b[i] = ~a.b[i];
	return a;
}

static bool bset_sub(const struct exai__bset *a, const struct exai__bset *b)
{
	for (int i = 0; i < 4; i++)
		if (a->b[i] & ~b->b[i])
			return false;
	return true;
}

/* Lengths as bit masks (bit d: length d, for d < K): the lengths a + b. */
static uint32_t lens_add(uint32_t a, uint32_t b)
{
	uint32_t r = 0;
	for (unsigned d = 0; d < K; d++)
		if (a >> d & 1)
			r |= b << d;
	return r & KMASK;
}

/* What a node's matches look like near their two ends (known false: nothing is known, any
 * byte anywhere). Read forward, lp holds the lengths < K of the matches and p[j] the bytes at
 * offset j of the matches longer than j; read backward, ls and s[j] (offset j before the end).
 * The two views differ only for anchors, which read as one byte on the side that allows it (the
 * newline before a line start, the newline or nothing after an end). pre / post: the byte
 * just before / after every match is one of these (or the text's edge). wb: an assertion \b (1)
 * or \B (2) that its neighbours in the sequence turn into pre / post. */
struct reach {
	bool valid;
	unsigned d;
	struct exai__bset r;
};

#define REACH_MAX 64

/* The share of random positions at which a reach condition holds (a rough estimate). */
static double reach_share(const struct reach *r)
{
	if (!r || !r->valid)
		return 1;
	double miss = 1, sh = exai__bset_share(&r->r);
	for (unsigned i = 0; i < r->d; i++)
		miss *= 1 - sh;
	return 1 - miss;
}

/* The more selective of two reach conditions into @a. */
static void reach_best(struct reach *a, const struct reach *b)
{
	if (b->valid && b->d <= REACH_MAX && (!a->valid || reach_share(b) < reach_share(a)))
		*a = *b;
}

/* Either of two reach conditions holds: both sets over the longer distance. */
static void reach_union(struct reach *a, const struct reach *b)
{
	if (!a->valid || !b->valid) {
		a->valid = false;
		return;
	}
	bset_or(&a->r, &b->r);
	a->d = a->d > b->d ? a->d : b->d;
}

struct shape {
	bool known;
	int wb;
	uint32_t lp, ls;
	struct exai__bset p[K], s[K];
	struct exai__bset pre, post;
	unsigned maxw;    /* the longest match (EXAI__RE_INF: unbounded) */
	struct reach ev;  /* every match holds a byte of ev.r within its first ev.d bytes */
};

static void shape_byte(struct shape *h, const struct exai__bset *c)
{
	memset(h, 0, sizeof(*h));
	h->known = true;
	h->lp = h->ls = 2;
	h->p[0] = h->s[0] = *c;
	h->pre = h->post = ALL;
	h->maxw = 1;
	h->ev = (struct reach){ true, 1, *c };
}

static void shape_zero(struct shape *h, const struct exai__bset *pre, const struct exai__bset *post)
{
	memset(h, 0, sizeof(*h));
	h->known = true;
	h->lp = h->ls = 1;
	h->pre = *pre;
	h->post = *post;
}

static bool shape_is_zero(const struct shape *h)
{
	return h->known && h->lp == 1 && h->ls == 1;
}

/* a followed by b (o may be a or b). */
static void shape_cat(struct shape *o, const struct shape *a, const struct shape *b)
{
	struct shape r;
	memset(&r, 0, sizeof(r));
	if (a->known && b->known) {
		r.known = true;
		for (unsigned j = 0; j < K; j++) {
			r.p[j] = a->p[j];
			r.s[j] = b->s[j];
			for (unsigned d = 0; d <= j; d++) {
				if (a->lp >> d & 1) {
					struct exai__bset x = b->p[j - d];
					if (j == d)
						bset_and(&x, &a->post);
					bset_or(&r.p[j], &x);
				}
				if (b->ls >> d & 1) {
					struct exai__bset x = a->s[j - d];
					if (j == d)
						bset_and(&x, &b->pre);
					bset_or(&r.s[j], &x);
				}
			}
		}
		r.lp = lens_add(a->lp, b->lp);
		r.ls = lens_add(a->ls, b->ls);
		r.pre = a->pre;
		if (shape_is_zero(a))
			bset_and(&r.pre, &b->pre);
		r.post = b->post;
		if (shape_is_zero(b))
			bset_and(&r.post, &a->post);
		r.maxw = add_w(a->maxw, b->maxw);
		r.ev = a->ev;
		struct reach e = b->ev;
		e.d = add_w(e.d, a->maxw);
		reach_best(&r.ev, &e);
	}
	*o = r;
}

/* a or b (o may be a). */
static void shape_alt(struct shape *o, const struct shape *a, const struct shape *b)
{
	if (!a->known || !b->known) {
		memset(o, 0, sizeof(*o));
		return;
	}
	struct shape r = *a;
	r.wb = 0;
	for (unsigned j = 0; j < K; j++) {
		bset_or(&r.p[j], &b->p[j]);
		bset_or(&r.s[j], &b->s[j]);
	}
	r.lp |= b->lp;
	r.ls |= b->ls;
	bset_or(&r.pre, &b->pre);
	bset_or(&r.post, &b->post);
	r.maxw = a->maxw > b->maxw ? a->maxw : b->maxw;
	reach_union(&r.ev, &b->ev);
	*o = r;
}

/* x{m,n}: K + 1 copies show every byte the first and last K can hold. */
static void shape_rep(struct shape *o, const struct shape *x, unsigned m, unsigned n)
{
	struct shape acc, opt;
	shape_zero(&acc, &ALL, &ALL);
	shape_zero(&opt, &ALL, &ALL);
	shape_alt(&opt, x, &opt);
	for (unsigned k = 0; k < n && k <= K; k++)
		shape_cat(&acc, &acc, k < m ? x : &opt);
	acc.maxw = n >= INF ? (x->maxw ? INF : 0) : mul_w(x->maxw, n);
	*o = acc;
}

/* The context of a factor found in a node (known false: nothing is known). After the
 * literal's end: a[j] holds the bytes at offset j inside the node; ax the offsets (< K) at
 * which the node may end, after which what follows the node comes (its first byte one of
 * cpost). Before the literal's start, the mirror image: b, bx, cpre. */
struct lctx {
	bool known;
	uint32_t ax, bx;
	struct exai__bset a[K], b[K];
	struct exai__bset cpre, cpost;
	unsigned dmax;   /* the farthest the node's end lies after the literal's end */
	struct reach ev; /* after the literal's end, within ev.d bytes, a byte of ev.r */
};

/* The literal is the whole node, of shape @h (its first item's and last item's when @l is given). */
static void ctx_start(struct lctx *c, const struct shape *h, const struct shape *l)
{
	memset(c, 0, sizeof(*c));
	c->known = true;
	c->ax = c->bx = 1;
	c->cpre = h->known ? h->pre : ALL;
	l = l ? l : h;
	c->cpost = l->known ? l->post : ALL;
}

/* The node is followed by @t (@after) or preceded by it: the positions its exits reach get
 * t's first (last) bytes, and its exits move on by t's lengths. */
static void ctx_extend(struct lctx *c, const struct shape *t, bool after)
{
	if (!c->known)
		return;
	if (!t->known) {
		memset(c, 0, sizeof(*c));
		return;
	}
	struct exai__bset *v = after ? c->a : c->b, *edge = after ? &c->cpost : &c->cpre;
	uint32_t *x = after ? &c->ax : &c->bx;
	const struct exai__bset *tv = after ? t->p : t->s, *tedge = after ? &t->post : &t->pre;
	for (unsigned d = 0; d < K; d++)
		if (*x >> d & 1)
			for (unsigned j = d; j < K; j++) {
				struct exai__bset y = tv[j - d];
				if (j == d)
					bset_and(&y, edge);
				bset_or(&v[j], &y);
			}
	*x = lens_add(*x, after ? t->lp : t->ls);
	if (shape_is_zero(t))
		bset_and(edge, tedge);
	else
		*edge = *tedge;
	if (after) {
		struct reach e = t->ev;
		e.d = add_w(e.d, c->dmax);
		reach_best(&c->ev, &e);
		c->dmax = add_w(c->dmax, t->maxw);
	}
}

static void ctx_after(struct lctx *c, const struct shape *t)
{
	ctx_extend(c, t, true);
}

static void ctx_before(struct lctx *c, const struct shape *h)
{
	ctx_extend(c, h, false);
}

/* The context of literals of either of two places. */
static void ctx_union(struct lctx *c, const struct lctx *o)
{
	if (!c->known || !o->known) {
		memset(c, 0, sizeof(*c));
		return;
	}
	for (unsigned j = 0; j < K; j++) {
		bset_or(&c->a[j], &o->a[j]);
		bset_or(&c->b[j], &o->b[j]);
	}
	c->ax |= o->ax;
	c->bx |= o->bx;
	bset_or(&c->cpre, &o->cpre);
	bset_or(&c->cpost, &o->cpost);
	c->dmax = c->dmax > o->dmax ? c->dmax : o->dmax;
	reach_union(&c->ev, &o->ev);
}

/* The context at the top: what follows and precedes the whole match is any text. */
static void ctx_final(const struct lctx *c, struct exai__bset before[K], struct exai__bset after[K],
		      struct reach *ev)
{
	for (unsigned j = 0; j < K; j++)
		before[j] = after[j] = ALL;
	memset(ev, 0, sizeof(*ev));
	if (!c->known)
		return;
	*ev = c->ev;
	bool open = false;
	for (unsigned j = 0; j < K && !open; j++) {
		after[j] = c->a[j];
		if (c->ax >> j & 1) {
			bset_or(&after[j], &c->cpost);
			open = true;
		}
	}
	open = false;
	for (unsigned j = 0; j < K && !open; j++) {
		before[j] = c->b[j];
		if (c->bx >> j & 1) {
			bset_or(&before[j], &c->cpre);
			open = true;
		}
	}
}

/* A set of strings: every match of the node is one of them (exact), or contains one of them
 * starting at an offset in [lo, hi] from the node's start (factor; c: what surrounds it). */
struct lset {
	struct exai__lit *v;
	unsigned n;
	unsigned lo, hi;
	bool valid;
	struct lctx c;
};

struct info {
	unsigned minw, maxw;
	struct lset exact;  /* valid when the node matches only these strings */
	struct lset factor; /* the best required factor found inside the node */
	struct shape sh;
};

struct parser {
	const char *p;
	int err;
	int depth;
	bool multiline; /* the regex switches (?m) on somewhere: ^ and $ may be line anchors */
	/* matches that do not start at the text's start: a text start (^ without (?m), \A) reads
	 * forward as one byte no text holds (what a match's first bytes are elsewhere) */
	bool inside;
	bool text_start; /* the regex has such an anchor */
};

static void lset_free(struct lset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void info_free(struct info *x)
{
	lset_free(&x->exact);
	lset_free(&x->factor);
}

static bool lset_push_max(struct lset *s, const char *str, size_t len, bool caseless, unsigned max)
{
	if (len > EXAI__LIT_MAX || s->n >= max)
		return false;
	for (unsigned i = 0; i < s->n; i++) /* no duplicates */
		if (s->v[i].len == len && s->v[i].caseless == caseless && memcmp(s->v[i].s, str, len) == 0)
			return true;
	if (s->n % 8 == 0) {
		struct exai__lit *v = realloc(s->v, (s->n + 8) * sizeof(*v));
		if (!v)
			return false;
		s->v = v;
	}
	memcpy(s->v[s->n].s, str, len);
	s->v[s->n].len = (uint8_t)len;
	s->v[s->n].caseless = caseless;
	s->n++;
	return true;
}

static bool lset_push(struct lset *s, const char *str, size_t len, bool caseless)
{
	return lset_push_max(s, str, len, caseless, SET_MAX);
}

/* How often a literal is expected per MB of prompt-like text: a product of rough per-byte
 * probabilities (English letter frequencies for lower case and caseless letters). Only used
 * to rank candidate factors against each other and against a threshold. */
static double byte_p(unsigned char c, bool caseless)
{
	static const double letter[26] = { .082, .015, .028, .043, .127, .022, .020, .061, .070, .002, .008, .040, .024,
					   .067, .075, .019, .001, .060, .063, .091, .028, .010, .024, .002, .020, .001 };
	if (c >= 'a' && c <= 'z')
		return letter[c - 'a'] * (caseless ? 0.8 : 0.7);
	if (c >= 'A' && c <= 'Z')
		return caseless ? letter[c - 'A'] * 0.8 : letter[c - 'A'] * 0.06;
	if (c >= '0' && c <= '9')
		return 0.04; /* logs, code and tables are full of numbers */
	switch (c) {
	case ' ':
		return 0.15;
	case '\n':
	case '_':
	case '.':
	case '-':
	case ',':
	case '"':
		return 0.02;
	case '/':
	case ':':
	case '=':
	case '(':
	case ')':
	case '\'':
		return 0.01;
	case '@': /* e-mail addresses, decorators, mentions: rarer than most punctuation */
		return 0.0003;
	default:
		return 0.003;
	}
}

/* Words common in prompts (English, code, logs, configuration), with a rough frequency class:
 * a literal that is part of one occurs with the word. Letter products underestimate such
 * literals ("pat" in "path", "pan" in "expand") by orders of magnitude. */
static const char *const common_words[] = {
	/* ~2000 per MB */
	"the", "and", "that", "for", "with", "this", "you", "are", "not", "from", "have", "can", "will", "your",
	"return", "self", "true", "false", "none", "null", "error", "info", "value", "name", "type", "data",
	"https", "http", "www", "com", "org", "json", "string", "int", "const", "def", "var", "let", "new",
	/* code and configuration tokens */
	"https://", "://", "= \"", "=\"", "\": \"", "\":\"", " = ", "==", "://www.", ".com/", "/api/",
	NULL,
	/* ~300 per MB */
	"which", "there", "their", "about", "other", "when", "what", "where", "then", "than", "them", "these",
	"into", "over", "only", "also", "some", "more", "most", "such", "like", "just", "make", "each", "first",
	"after", "before", "because", "between", "should", "would", "could", "please", "thanks", "help", "issue",
	"file", "path", "server", "host", "client", "user", "key", "keys", "config", "request", "response",
	"function", "class", "import", "public", "private", "static", "void", "get", "set", "list", "test",
	"call", "called", "account", "address", "number", "time", "date", "version", "service", "api", "app",
	"password", "token", "secret", "access", "auth", "login", "port", "expand", "open", "example", "content",
	"context", "contact", "section", "application", "cache", "database", "query", "system", "process",
	"message", "default", "option", "update", "create", "delete", "result", "status", "index", "item",
	"build", "deploy", "release", "image", "container", "input", "output", "print", "log", "debug",
	"warning", "state", "model", "object", "method", "param", "args", "url", "link", "page", "text", "line",
	"code", "source", "target", "local", "remote", "node", "network", "table", "field", "format", "header",
	"body", "session", "store", "storage", "cloud", "amount", "payment", "card", "bank", "price", "order",
	"customer", "support", "problem", "pass", "passed", "failed", "timeout", "latency", "pipeline", "stage",
	"module", "pointer", "query", "increased", "rollback", "kubernetes", "restart", "happen", "workers",
	"level", "traceback", "recent", "last", "line", "run", "raise", "result", "status", "fetch", "items",
	"enabled", "tags", "install", "make", "systemctl", "journalctl", "errors", "notes", "step", "check",
	"value", "values", "level", "main", "site", "packages", "task", "complete", "invalid", "literal", "base",
	NULL,
};

/* A byte that ends (starts) a word in prose is in @s: a space, a newline or punctuation. */
static bool edge_ok(const struct exai__bset *s)
{
	return exai__bset_has(s, ' ') || exai__bset_has(s, '\n') || exai__bset_has(s, '.') || exai__bset_has(s, ',');
}

/* Whether @word contains @l somewhere its context (when given) lets through: the word's own
 * bytes around the literal in the sets, and a word edge where the word ends. */
static bool contains_ci(const char *word, const struct exai__lit *l, const struct exai__bset *before,
			const struct exai__bset *after)
{
	size_t wl = strlen(word);
	for (size_t i = 0; i + l->len <= wl; i++) {
		size_t k = 0;
		while (k < l->len && (l->caseless ? (word[i + k] | 0x20) == (l->s[k] | 0x20) : word[i + k] == l->s[k]))
			k++;
		if (k < l->len)
			continue;
		bool ok = true;
		for (size_t j = 0; ok && after && j < K; j++) {
			size_t q = i + l->len + j;
			ok = q < wl ? exai__bset_has(&after[j], (unsigned char)word[q]) : edge_ok(&after[j]);
			if (q >= wl)
				break;
		}
		for (size_t j = 0; ok && before && j < K; j++) {
			ok = j < i ? exai__bset_has(&before[j], (unsigned char)word[i - 1 - j]) : edge_ok(&before[j]);
			if (j >= i)
				break;
		}
		if (ok)
			return true;
	}
	return false;
}

/* A hit that the context rejects costs this share of a window (Hyperscan's report and a few
 * loads against PCRE2's search). */
#define REJECTED_HIT 0.05

/* The expected windows per MB that literal @l opens, with the context @before / @after of
 * its hits when given (NULL: none): the random-text estimate times the share of the bytes
 * each position lets through, plus the common words that contain it where their own bytes
 * fit the context. */
static double lit_cost(const struct exai__lit *l, const struct exai__bset *before, const struct exai__bset *after,
		       const struct reach *ev)
{
	double p = 1e6; /* per MB */
	for (unsigned i = 0; i < l->len; i++)
		p *= byte_p((unsigned char)l->s[i], l->caseless);
	double pass = 1;
	for (unsigned j = 0; after && before && j < K; j++)
		pass *= exai__bset_share(&before[j]) * exai__bset_share(&after[j]);
	double soon = reach_share(ev); /* the words too must reach the byte */
	double words = 0, words_in = 0, per = 2000;
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(common_words); i++) {
		if (!common_words[i]) {
			per = 300;
			continue;
		}
		if (contains_ci(common_words[i], l, NULL, NULL)) {
			words += per;
			if (contains_ci(common_words[i], l, before, after))
				words_in += per;
		}
	}
	/* each occurrence costs a window: count at least a few per MB for any literal; one- and
	 * two-byte literals also slow Hyperscan's literal matchers down */
	double pen = l->len <= 2 ? 8 : 1;
	if (!before || !after || l->len <= 2) /* short literals: Hyperscan's reports are the cost */
		return (p + words + 0.5) * pen;
	return ((p * pass + words_in) * soon + 0.5) * pen + REJECTED_HIT * (p + words) * pen;
}

double exai__bset_share(const struct exai__bset *s)
{
	double in = 0, all = 0;
	for (unsigned c = 0; c < 256; c++) {
		double p = byte_p((unsigned char)c, false);
		all += p;
		if (exai__bset_has(s, (unsigned char)c))
			in += p;
	}
	return in / all;
}

double exai__lits_cost(const struct exai__lit *v, unsigned n)
{
	double c = 0;
	for (unsigned i = 0; i < n; i++)
		c += lit_cost(&v[i], NULL, NULL, NULL);
	return c;
}

static double lset_cost(const struct lset *s)
{
	if (!s->valid || s->n == 0)
		return 1e300;
	for (unsigned i = 0; i < s->n; i++)
		if (s->v[i].len == 0)
			return 1e300; /* the empty string is no condition */
	return exai__lits_cost(s->v, s->n);
}

/* Keeps in @best the cheaper of @best and @cand (which is consumed). */
static void keep_best(struct lset *best, struct lset *cand)
{
	if (lset_cost(cand) < lset_cost(best)) {
		lset_free(best);
		*best = *cand;
		memset(cand, 0, sizeof(*cand));
	} else {
		lset_free(cand);
	}
}

static bool lset_copy(struct lset *dst, const struct lset *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->valid = src->valid;
	dst->lo = src->lo;
	dst->hi = src->hi;
	dst->c = src->c;
	for (unsigned i = 0; i < src->n; i++)
		if (!lset_push_max(dst, src->v[i].s, src->v[i].len, src->v[i].caseless, UNION_MAX)) {
			lset_free(dst);
			return false;
		}
	return true;
}

/* a x b: every string of a followed by every string of b; false when too big. */
static bool lset_product(struct lset *out, const struct lset *a, const struct lset *b)
{
	memset(out, 0, sizeof(*out));
	if ((unsigned long)a->n * b->n > SET_MAX)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		for (unsigned j = 0; j < b->n; j++) {
			char tmp[2 * EXAI__LIT_MAX];
			size_t l = (size_t)a->v[i].len + b->v[j].len;
			if (l > EXAI__LIT_MAX) {
				lset_free(out);
				return false;
			}
			memcpy(tmp, a->v[i].s, a->v[i].len);
			memcpy(tmp + a->v[i].len, b->v[j].s, b->v[j].len);
			/* a caseless part makes the whole literal caseless: a superset */
			if (!lset_push(out, tmp, l, a->v[i].caseless || b->v[j].caseless)) {
				lset_free(out);
				return false;
			}
		}
	out->valid = true;
	return true;
}

/* ---- byte classes ----------------------------------------------------------------------- */

static void cls_set(struct exai__bset *c, unsigned ch)
{
	c->b[ch >> 6] |= 1ull << (ch & 63);
}

static bool cls_has(const struct exai__bset *c, unsigned ch)
{
	return exai__bset_has(c, (unsigned char)ch);
}

static void cls_range(struct exai__bset *c, unsigned a, unsigned b)
{
	for (unsigned x = a; x <= b; x++)
		cls_set(c, x);
}

/* \d \w \s and their negations into @c; false if @e is no class escape. */
static bool escape_class(struct exai__bset *c, char e)
{
	struct exai__bset t = { { 0 } };
	char lower = (char)(e | 0x20);
	if (lower == 'd') {
		cls_range(&t, '0', '9');
	} else if (lower == 'w') {
		cls_range(&t, '0', '9');
		cls_range(&t, 'a', 'z');
		cls_range(&t, 'A', 'Z');
		cls_set(&t, '_');
	} else if (lower == 's') {
		cls_range(&t, 9, 13);
		cls_set(&t, ' ');
	} else if (lower == 'h') { /* PCRE2 in byte mode: tab, space and no-break space */
		cls_set(&t, 9);
		cls_set(&t, ' ');
		cls_set(&t, 0xa0);
	} else if (lower == 'v') { /* LF, VT, FF, CR and NEL */
		cls_range(&t, 10, 13);
		cls_set(&t, 0x85);
	} else {
		return false;
	}
	if (e >= 'A' && e <= 'Z')
		for (int i = 0; i < 4; i++)
			t.b[i] = ~t.b[i];
	for (int i = 0; i < 4; i++)
		c->b[i] |= t.b[i];
	return true;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* One escaped literal character after the backslash; -1 if unsupported. */
static int escape_char(struct parser *ps)
{
	char c = *ps->p++;
	switch (c) {
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'f':
		return '\f';
	case 'e':
		return 0x1b;
	case 'a':
		return 7;
	case '0': { /* \0, \0n, \0nn: octal */
		int v = 0;
		for (int k = 0; k < 2 && *ps->p >= '0' && *ps->p <= '7'; k++)
			v = v * 8 + (*ps->p++ - '0');
		return v;
	}
	case 'x': {
		if (*ps->p == '{') {
			int v = 0, n = 0;
			ps->p++;
			while (hexval(*ps->p) >= 0 && n < 3)
				v = v * 16 + hexval(*ps->p++), n++;
			if (*ps->p != '}' || n == 0 || v > 255)
				return -1;
			ps->p++;
			return v;
		}
		int h = hexval(ps->p[0]), l = h >= 0 ? hexval(ps->p[1]) : -1;
		if (h < 0)
			return -1;
		if (l < 0) {
			ps->p++;
			return h;
		}
		ps->p += 2;
		return h * 16 + l;
	}
	default:
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == 0)
			return -1; /* backreferences, \p, \K, \Q, \c ... */
		return (unsigned char)c;
	}
}

static bool parse_class(struct parser *ps, struct exai__bset *c)
{
	bool neg = false;
	if (*ps->p == '^') {
		neg = true;
		ps->p++;
	}
	bool first = true;
	while (*ps->p && (*ps->p != ']' || first)) {
		first = false;
		int lo;
		if (*ps->p == '[' && ps->p[1] == ':')
			return false; /* POSIX classes: not in the dialect */
		if (*ps->p == '\\') {
			ps->p++;
			if (escape_class(c, *ps->p)) {
				ps->p++;
				continue;
			}
			if (*ps->p == 'b') { /* backspace inside a class */
				ps->p++;
				lo = 8;
			} else if ((lo = escape_char(ps)) < 0) {
				return false;
			}
		} else {
			lo = (unsigned char)*ps->p++;
		}
		if (*ps->p == '-' && ps->p[1] && ps->p[1] != ']') {
			ps->p++;
			int hi;
			if (*ps->p == '\\') {
				ps->p++;
				if ((hi = escape_char(ps)) < 0)
					return false;
			} else {
				hi = (unsigned char)*ps->p++;
			}
			if (hi < lo)
				return false;
			cls_range(c, (unsigned)lo, (unsigned)hi);
		} else {
			cls_set(c, (unsigned)lo);
		}
	}
	if (*ps->p != ']')
		return false;
	ps->p++;
	if (neg)
		for (int i = 0; i < 4; i++)
			c->b[i] = ~c->b[i];
	return true;
}

/* A class as an exact set of one-byte strings (small classes only). */
static void class_info(struct info *x, const struct exai__bset *c, bool caseless)
{
	x->minw = x->maxw = 1;
	struct exai__bset k = *c;
	if (caseless)
		for (unsigned ch = 'a'; ch <= 'z'; ch++)
			if (cls_has(&k, ch) || cls_has(&k, ch - 32)) {
				cls_set(&k, ch);
				cls_set(&k, ch - 32);
			}
	shape_byte(&x->sh, &k);
	unsigned n = exai__bset_count(&k);
	if (n == 0 || n > 10)
		return;
	x->exact.valid = true;
	for (unsigned ch = 0; ch < 256; ch++) {
		if (!cls_has(&k, ch))
			continue;
		bool letter = (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
		char s = (char)ch;
		if (letter && cls_has(&k, ch ^ 0x20)) { /* both cases: one caseless literal */
			if (ch >= 'a')
				continue;
			s = (char)(ch | 0x20);
			if (!lset_push(&x->exact, &s, 1, true))
				x->exact.valid = false;
		} else if (!lset_push(&x->exact, &s, 1, false)) {
			x->exact.valid = false;
		}
	}
	if (!x->exact.valid)
		lset_free(&x->exact);
}

static void literal_info(struct info *x, unsigned char ch, bool caseless)
{
	struct exai__bset c = { { 0 } };
	cls_set(&c, ch);
	class_info(x, &c, caseless);
}

static void empty_info(struct info *x)
{
	x->minw = x->maxw = 0;
	shape_zero(&x->sh, &ALL, &ALL);
	x->exact.valid = lset_push(&x->exact, "", 0, false);
}

/* ^ (\A) and $ (\Z, \z: 'z'). A text start reads backward as one byte that no text holds (positions
 * outside the text are not checked), a line start as zero width after a newline; an end (or a
 * line end) reads forward as a newline or nothing, \z as nothing. */
static void anchor_shape(struct shape *h, char a, bool multiline, struct parser *ps)
{
	static const struct exai__bset nl = { { 1ull << '\n', 0, 0, 0 } }, none = { { 0 } };
	if (multiline) {
		shape_zero(h, a == '^' ? &nl : &ALL, a == '^' ? &ALL : &nl);
		return;
	}
	shape_zero(h, &ALL, &ALL);
	if (a == '^') {
		h->ls = 2;
		h->s[0] = none;
		ps->text_start = true;
		if (ps->inside) {
			h->lp = 2;
			h->p[0] = none;
		}
	} else {
		h->lp = 2;
		h->p[0] = a == 'z' ? none : nl;
	}
}

static int parse_alt(struct parser *ps, struct info *out, bool caseless);

/* The exact set of X{m,n} when small. */
static void repeat_exact(struct info *x, const struct info *a, unsigned m, unsigned n)
{
	if (!a->exact.valid || n >= INF || n > 8)
		return;
	struct lset acc = { 0 }, all = { 0 };
	if (!lset_push(&acc, "", 0, false))
		return;
	acc.valid = all.valid = true;
	for (unsigned k = 0; k <= n; k++) {
		if (k >= m)
			for (unsigned i = 0; i < acc.n; i++)
				if (!lset_push(&all, acc.v[i].s, acc.v[i].len, acc.v[i].caseless)) {
					all.valid = false;
					break;
				}
		if (!all.valid || k == n)
			break;
		struct lset next;
		if (!lset_product(&next, &acc, &a->exact)) {
			all.valid = false;
			break;
		}
		lset_free(&acc);
		acc = next;
	}
	lset_free(&acc);
	if (all.valid)
		x->exact = all;
	else
		lset_free(&all);
}

/* Reads a quantifier after an atom; false if there is none. */
static bool parse_quant(struct parser *ps, unsigned *m, unsigned *n)
{
	const char *p = ps->p;
	if (*p == '?' || *p == '*' || *p == '+') {
		*m = *p == '+' ? 1 : 0;
		*n = *p == '?' ? 1 : INF;
		p++;
	} else if (*p == '{') {
		const char *q = p + 1;
		unsigned long a = 0, b;
		if (*q < '0' || *q > '9')
			return false;
		while (*q >= '0' && *q <= '9' && a < INF)
			a = a * 10 + (unsigned)(*q++ - '0');
		b = a;
		if (*q == ',') {
			q++;
			if (*q == '}') {
				b = INF;
			} else {
				if (*q < '0' || *q > '9')
					return false;
				b = 0;
				while (*q >= '0' && *q <= '9' && b < INF)
					b = b * 10 + (unsigned)(*q++ - '0');
			}
		}
		if (*q != '}' || a >= INF || b < a)
			return false;
		*m = (unsigned)a;
		*n = b >= INF ? INF : (unsigned)b;
		p = q + 1;
	} else {
		return false;
	}
	if (*p == '?' || *p == '+') /* lazy or possessive: the same widths and factors */
		p++;
	ps->p = p;
	return true;
}

/* One atom (with its quantifier) into @x. *@caseless may be changed by a (?i) switch. */
static int parse_atom(struct parser *ps, struct info *x, bool *caseless)
{
	memset(x, 0, sizeof(*x));
	char c = *ps->p;
	if (c == '(') {
		ps->p++;
		bool cl = *caseless, capture = true;
		if (*ps->p == '?') {
			ps->p++;
			capture = false;
			/* a lookahead (?= (?! or lookbehind (?<= (?<!: zero width, no factor */
			size_t look = 0;
			if (*ps->p == '=' || *ps->p == '!')
				look = 1;
			else if (*ps->p == '<' && (ps->p[1] == '=' || ps->p[1] == '!'))
				look = 2;
			if (look) {
				bool behind = look == 2, neg = ps->p[look - 1] == '!';
				ps->p += look;
				struct info in;
				int r = parse_alt(ps, &in, cl);
				/* what it says of the byte just after (before) it: the first (last) byte
				 * of the assertion when it has one; a negative assertion only for one byte */
				struct exai__bset side = ALL;
				uint32_t l = behind ? in.sh.ls : in.sh.lp;
				const struct exai__bset *b0 = behind ? &in.sh.s[0] : &in.sh.p[0];
				if (r == 0 && in.sh.known && !neg && !(l & 1))
					side = *b0;
				else if (r == 0 && in.sh.known && neg && in.sh.lp == 2 && in.sh.ls == 2 && in.minw == 1 && in.maxw == 1)
					side = bset_not(*b0);
				info_free(&in);
				if (r < 0 || *ps->p != ')')
					return -1;
				ps->p++;
				x->minw = x->maxw = 0;
				shape_zero(&x->sh, behind ? &side : &ALL, behind ? &ALL : &side);
				goto quant;
			}
			if (*ps->p == '<' || *ps->p == 'P' || *ps->p == '\'') { /* named group */
				const char *e = strpbrk(ps->p, ">'");
				if (!e || (*ps->p == 'P' && ps->p[1] != '<'))
					return -1;
				ps->p = e + 1;
			} else {
				/* flags: (?i) (?-i) (?m) (?i: (?-i: (?im: ... */
				bool on = true, set = cl;
				while (*ps->p && *ps->p != ':' && *ps->p != ')') {
					if (*ps->p == '-')
						on = false;
					else if (*ps->p == 'i')
						set = on;
					else if (*ps->p != 'm' && *ps->p != 's' && *ps->p != 'x')
						return -1;
					if (*ps->p == 'x')
						return -1; /* extended syntax: white space would be no literal */
					ps->p++;
				}
				if (*ps->p == ')') { /* a switch for the rest of the group */
					ps->p++;
					if (set && !cl)
						return -1; /* caseless from here on, alternatives included: not modelled */
					*caseless = set;
					empty_info(x);
					return 0;
				}
				if (*ps->p != ':')
					return -1;
				ps->p++;
				cl = set;
			}
		}
		(void)capture;
		if (parse_alt(ps, x, cl) < 0 || *ps->p != ')')
			return -1;
		ps->p++;
	} else if (c == '[') {
		ps->p++;
		struct exai__bset k = { { 0 } };
		if (!parse_class(ps, &k))
			return -1;
		class_info(x, &k, *caseless);
	} else if (c == '\\') {
		ps->p++;
		char e = *ps->p;
		struct exai__bset k = { { 0 } };
		if (e == 'b' || e == 'B' || e == 'A' || e == 'z' || e == 'Z' || e == 'G') {
			ps->p++;
			empty_info(x);
			if (e == 'b' || e == 'B') {
				x->sh.wb = e == 'b' ? 1 : 2;
			} else if (e != 'G') { /* no exact string: the anchor's shape reads as a byte */
				lset_free(&x->exact);
				anchor_shape(&x->sh, e == 'A' ? '^' : e == 'z' ? 'z' : '$', false, ps);
			}
			goto quant;
		}
		if (escape_class(&k, e)) {
			ps->p++;
			class_info(x, &k, *caseless);
			goto quant;
		}
		int ch = escape_char(ps);
		if (ch < 0)
			return -1;
		literal_info(x, (unsigned char)ch, *caseless);
	} else if (c == '.') {
		ps->p++;
		struct exai__bset k = { { ~0ull, ~0ull, ~0ull, ~0ull } };
		class_info(x, &k, false);
	} else if (c == '^' || c == '$') {
		ps->p++;
		empty_info(x);
		lset_free(&x->exact);
		anchor_shape(&x->sh, c, ps->multiline, ps);
	} else if (c == 0 || c == ')' || c == '|' || c == '*' || c == '+' || c == '?') {
		return -1;
	} else if (c == '{') {
		unsigned m, n;
		if (parse_quant(ps, &m, &n))
			return -1; /* a quantifier with nothing before it */
		ps->p++;
		literal_info(x, '{', *caseless);
	} else {
		ps->p++;
		literal_info(x, (unsigned char)c, *caseless);
	}
quant:;
	unsigned m, n;
	if (!parse_quant(ps, &m, &n))
		return 0;
	struct info a = *x;
	memset(x, 0, sizeof(*x));
	x->minw = mul_w(a.minw, m);
	x->maxw = n >= INF ? (a.maxw ? INF : 0) : mul_w(a.maxw, n);
	repeat_exact(x, &a, m, n);
	shape_rep(&x->sh, &a.sh, m, n);
	if (m >= 1) { /* the first copy is always there, followed by the others */
		struct shape rest;
		shape_rep(&rest, &a.sh, m - 1, n >= INF ? INF : n - 1);
		x->factor = a.factor;
		memset(&a.factor, 0, sizeof(a.factor));
		ctx_after(&x->factor.c, &rest);
		if (a.exact.valid) {
			struct lset e;
			if (lset_copy(&e, &a.exact)) {
				e.lo = e.hi = 0;
				ctx_start(&e.c, &a.sh, NULL);
				ctx_after(&e.c, &rest);
				keep_best(&x->factor, &e);
			}
		}
	}
	info_free(&a);
	return 0;
}

/* The shapes of a sequence's items: \b and \B become conditions on the bytes around them where
 * a neighbour always has a byte there and its bytes are all word or all non-word characters
 * (the edge of the text counts as non-word); head[i]: items 0 .. i - 1, tail[i]: items i ..
 * n - 1. */
static void shapes_of_seq(struct info *items, size_t n, struct shape *head, struct shape *tail)
{
	struct exai__bset w = { { 0 } };
	escape_class(&w, 'w');
	const struct exai__bset nw = bset_not(w);
	for (size_t i = 0; i < n; i++) {
		int wb = items[i].sh.wb;
		if (!wb)
			continue;
		struct exai__bset pre = ALL, post = ALL;
		const struct shape *r = i + 1 < n ? &items[i + 1].sh : NULL, *l = i ? &items[i - 1].sh : NULL;
		if (r && r->known && !(r->lp & 1) && !r->wb) {
			if (bset_sub(&r->p[0], &nw))
				pre = wb == 1 ? w : nw;
			else if (bset_sub(&r->p[0], &w))
				pre = wb == 1 ? nw : w;
		}
		if (l && l->known && !(l->ls & 1) && !l->wb) {
			if (bset_sub(&l->s[0], &nw))
				post = wb == 1 ? w : nw;
			else if (bset_sub(&l->s[0], &w))
				post = wb == 1 ? nw : w;
		}
		items[i].sh.pre = pre;
		items[i].sh.post = post;
	}
	for (size_t i = 0; i < n; i++)
		items[i].sh.wb = 0;
	shape_zero(&head[0], &ALL, &ALL);
	for (size_t i = 0; i < n; i++)
		shape_cat(&head[i + 1], &head[i], &items[i].sh);
	shape_zero(&tail[n], &ALL, &ALL);
	for (size_t i = n; i-- > 0;)
		shape_cat(&tail[i], &items[i].sh, &tail[i + 1]);
}

/* A sequence of atoms up to `|`, `)` or the end. */
static int parse_seq(struct parser *ps, struct info *out, bool caseless)
{
	struct info *items = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	while (*ps->p && *ps->p != '|' && *ps->p != ')') {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			struct info *ni = realloc(items, cap * sizeof(*ni));
			if (!ni) {
				r = -1;
				break;
			}
			items = ni;
		}
		if ((r = parse_atom(ps, &items[n], &caseless)) < 0) {
			info_free(&items[n]); /* what a group parsed before its ')' was missing */
			break;
		}
		n++;
	}
	memset(out, 0, sizeof(*out));
	struct shape *head = NULL, *tail = NULL;
	if (r == 0) {
		/* widths, and the offsets of each item from the start of the sequence */
		unsigned *pmin = calloc(n + 1, sizeof(unsigned)), *pmax = calloc(n + 1, sizeof(unsigned));
		head = malloc((n + 1) * sizeof(*head));
		tail = malloc((n + 1) * sizeof(*tail));
		if (!pmin || !pmax || !head || !tail) {
			r = -1;
		} else {
			shapes_of_seq(items, n, head, tail);
			out->sh = head[n];
			for (size_t i = 0; i < n; i++) {
				pmin[i + 1] = add_w(pmin[i], items[i].minw);
				pmax[i + 1] = add_w(pmax[i], items[i].maxw);
			}
			out->minw = pmin[n];
			out->maxw = pmax[n];
			/* the factors inside the items */
			for (size_t i = 0; i < n; i++) {
				struct lset f;
				if (items[i].factor.valid && pmax[i] < INF && lset_copy(&f, &items[i].factor)) {
					f.lo = add_w(f.lo, pmin[i]);
					f.hi = add_w(f.hi, pmax[i]);
					ctx_after(&f.c, &tail[i + 1]);
					ctx_before(&f.c, &head[i]);
					keep_best(&out->factor, &f);
				}
			}
			/* runs of exact items: each run's product is a required literal set */
			for (size_t i = 0; i < n; i++) {
				if (!items[i].exact.valid || pmax[i] >= INF)
					continue;
				struct lset acc;
				if (!lset_copy(&acc, &items[i].exact))
					continue;
				for (size_t j = i;;) {
					struct lset cand;
					if (lset_copy(&cand, &acc)) {
						cand.lo = pmin[i];
						cand.hi = pmax[i];
						ctx_start(&cand.c, &items[i].sh, &items[j].sh);
						ctx_after(&cand.c, &tail[j + 1]);
						ctx_before(&cand.c, &head[i]);
						keep_best(&out->factor, &cand);
					}
					if (++j >= n || !items[j].exact.valid)
						break;
					struct lset next;
					if (!lset_product(&next, &acc, &items[j].exact))
						break;
					lset_free(&acc);
					acc = next;
				}
				lset_free(&acc);
			}
			/* the whole sequence exact */
			bool all = true;
			for (size_t i = 0; i < n && all; i++)
				all = items[i].exact.valid;
			if (all) {
				struct lset acc = { 0 };
				acc.valid = lset_push(&acc, "", 0, false);
				for (size_t i = 0; i < n && acc.valid; i++) {
					struct lset next;
					if (!lset_product(&next, &acc, &items[i].exact)) {
						lset_free(&acc);
						break;
					}
					lset_free(&acc);
					acc = next;
				}
				if (acc.valid)
					out->exact = acc;
			}
		}
		free(pmin);
		free(pmax);
	}
	free(head);
	free(tail);
	for (size_t i = 0; i < n; i++)
		info_free(&items[i]);
	free(items);
	return r;
}

static int parse_alt(struct parser *ps, struct info *out, bool caseless)
{
	if (++ps->depth > 64)
		return -1;
	memset(out, 0, sizeof(*out));
	bool first = true, all_exact = true, all_factor = true;
	struct lset uni = { 0 };
	uni.valid = true;
	for (;;) {
		struct info b;
		if (parse_seq(ps, &b, caseless) < 0) {
			lset_free(&uni);
			info_free(out);
			return -1;
		}
		if (first) {
			out->minw = b.minw;
			out->maxw = b.maxw;
			out->sh = b.sh;
		} else {
			out->minw = b.minw < out->minw ? b.minw : out->minw;
			out->maxw = b.maxw > out->maxw ? b.maxw : out->maxw;
			shape_alt(&out->sh, &out->sh, &b.sh);
		}
		/* exact: the union of the branches' sets */
		if (first) {
			out->exact = b.exact;
			memset(&b.exact, 0, sizeof(b.exact));
		} else if (all_exact && b.exact.valid && out->exact.valid) {
			for (unsigned i = 0; i < b.exact.n && out->exact.valid; i++)
				if (!lset_push(&out->exact, b.exact.v[i].s, b.exact.v[i].len, b.exact.v[i].caseless))
					lset_free(&out->exact);
		} else {
			lset_free(&out->exact);
		}
		all_exact = out->exact.valid;
		/* factor: each branch's best (its exact set, or its factor), united */
		struct lset best = { 0 };
		if (b.exact.valid && lset_copy(&best, &b.exact)) {
			best.lo = best.hi = 0;
			ctx_start(&best.c, &b.sh, NULL);
		}
		keep_best(&best, &b.factor);
		if (all_factor && lset_cost(&best) < 1e300) {
			for (unsigned i = 0; i < best.n && all_factor; i++)
				all_factor = lset_push_max(&uni, best.v[i].s, best.v[i].len, best.v[i].caseless, UNION_MAX);
			if (first) {
				uni.lo = best.lo;
				uni.hi = best.hi;
				uni.c = best.c;
			} else {
				uni.lo = best.lo < uni.lo ? best.lo : uni.lo;
				uni.hi = best.hi > uni.hi ? best.hi : uni.hi;
				ctx_union(&uni.c, &best.c);
			}
		} else {
			all_factor = false;
		}
		lset_free(&best);
		info_free(&b);
		first = false;
		if (*ps->p != '|')
			break;
		ps->p++;
	}
	if (all_factor)
		out->factor = uni;
	else
		lset_free(&uni);
	ps->depth--;
	return 0;
}

/* Whether a flag group anywhere turns multi-line mode on (a `\(?m` too: never too few). */
static bool has_multiline(const char *re)
{
	for (const char *q = re; (q = strstr(q, "(?")); q += 2)
		for (const char *f = q + 2; (*f >= 'a' && *f <= 'z') || *f == '-'; f++)
			if (*f == 'm')
				return true;
	return false;
}

int exai__regex_analyse(struct exai__re_info *ret, const char *re, bool caseless)
{
	memset(ret, 0, sizeof(*ret));
	struct parser ps = { .p = re, .multiline = has_multiline(re) };
	struct info x;
	if (parse_alt(&ps, &x, caseless) < 0)
		return -EINVAL;
	if (*ps.p) { /* an unbalanced `)` */
		info_free(&x);
		return -EINVAL;
	}
	ret->minw = x.minw;
	ret->maxw = x.maxw;
	struct lset best = { 0 };
	if (x.exact.valid && lset_copy(&best, &x.exact)) {
		best.lo = best.hi = 0;
		ctx_start(&best.c, &x.sh, NULL);
	}
	keep_best(&best, &x.factor);
	info_free(&x);
	for (unsigned j = 0; j < K; j++)
		ret->head[j] = x.sh.known && j < x.minw ? x.sh.p[j] : ALL;
	if (ps.text_start) { /* the first bytes of the matches that do not start at the text's start */
		struct parser pi = { .p = re, .multiline = ps.multiline, .inside = true };
		struct info y;
		if (parse_alt(&pi, &y, caseless) == 0) {
			for (unsigned j = 0; j < K; j++)
				ret->head[j] = y.sh.known && j < x.minw ? y.sh.p[j] : ALL;
			info_free(&y);
		}
	}
	struct reach ev;
	ctx_final(&best.c, ret->before, ret->after, &ev);
	if (ev.valid && ev.d <= REACH_MAX) {
		ret->reach = ev.r;
		ret->reach_d = ev.d;
	}
	if (lset_cost(&best) < 1e300) {
		ret->n_lits = best.n;
		ret->lo = best.lo;
		ret->hi = best.hi;
		ret->cost = 0;
		for (unsigned i = 0; i < best.n; i++)
			ret->cost += lit_cost(&best.v[i], ret->before, ret->after, &ev);
		for (unsigned i = 0; i < best.n; i++) {
			memcpy(ret->lits[i].s, best.v[i].s, best.v[i].len);
			ret->lits[i].len = best.v[i].len;
			ret->lits[i].caseless = best.v[i].caseless;
		}
	}
	lset_free(&best);
	return 0;
}
