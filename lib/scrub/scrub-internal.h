/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scrub-internal.h: what the files of the scrub module share (and what other modules and the
 * tests may use of it). Nothing here is exported.
 */
#ifndef EXAI_SCRUB_INTERNAL_H
#define EXAI_SCRUB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include "core-internal.h"
#include "exai/scrub.h"

/* The longest window in which PCRE2 confirms a candidate (patterns without a bound, such as
 * a PEM block, are cut there) and the longest run a decoder looks at. */
#define EXAI__SCRUB_WINDOW_MAX 32768u
/* A stream scans again once this many bytes beyond its context are undecided. */
#define EXAI__SCRUB_STEP 4096u
/* Keywords count within this many bytes before a match. */
#define EXAI__SCRUB_KEYWORD_BEFORE 64u
/* Decoding depth. */
#define EXAI__SCRUB_DECODE_DEPTH 2

/* ---- validators (validate.c) ------------------------------------------------------------ */

enum exai__validator {
	EXAI__V_NONE,
	EXAI__V_LUHN,
	EXAI__V_IBAN,
	EXAI__V_US_SSN,
	EXAI__V_JWT,
	EXAI__V_BASE58CHECK,
	EXAI__V_BECH32,
	EXAI__V_ETH_ADDRESS,
	EXAI__V_CRC32_BASE62,
	EXAI__V_IPV4_PUBLIC,
	EXAI__V_IPV6,
	EXAI__V_PHONE,
	EXAI__V_EMAIL,
	EXAI__V_NOT_PLACEHOLDER,
	EXAI__V_UK_NHS, /* this one and those after it need a format-2 pack */
	EXAI__V_IN_AADHAAR,
	EXAI__V_ABA_ROUTING,
	EXAI__V_CA_SIN,
	EXAI__V_BR_CPF,
	EXAI__V_BR_CNPJ,
	EXAI__V_COUNT,
	EXAI__V_FORMAT2_FIRST = EXAI__V_UK_NHS,
};
/* The validator's name in packs, or NULL. */
const char *exai__validator_name(int v);
/* -1 for an unknown name. */
int exai__validator_from_name(const char *name);
/* Whether @s (@n bytes) passes validator @v. */
bool exai__validate(int v, const char *s, size_t n);
/* A set of at most 64 words (lower case, two bytes or more), found in a text without regard to
 * case in one pass: at each byte, only the words that start with it and the next are compared. */
struct exai__words {
	const char *const *w;
	size_t n;
	uint64_t first[256];  /* bit k: word k starts with this byte (case folded) */
	uint64_t second[256]; /* bit k: word k's second byte is this one (case folded) */
	uint8_t len[64];
};
void exai__words_init(struct exai__words *ws, const char *const *w, size_t n);
/* Whether one of the words occurs in @s (@n bytes). */
bool exai__words_in(const struct exai__words *ws, const char *s, size_t n);
/* The not_placeholder validator's rule 9 words and rule 11 sequences (tests compare its
 * one-pass search with a word-by-word one). */
extern const char *const exai__placeholder_words[], *const exai__placeholder_sequences[];
extern const size_t exai__placeholder_words_count, exai__placeholder_sequences_count;
/* Shannon entropy in bits per byte. */
double exai__log2_count(size_t c); /* log2(c), from a table for small c */
double exai__shannon(const char *s, size_t n);
/* Keccak-256 (the pre-standard padding Ethereum uses, not SHA3-256). */
void exai__keccak256(uint8_t out[32], const void *in, size_t len);
/* The zlib/PNG CRC-32. */
uint32_t exai__crc32(const void *p, size_t n);

/* ---- regex analysis (analyse.c) --------------------------------------------------------- */

#define EXAI__RE_INF 0x7fffffffu /* an unbounded width */
#define EXAI__LIT_MAX 32         /* the longest literal of a factor */
#define EXAI__LITS_MAX 128       /* the most literals in a factor */

struct exai__lit {
	char s[EXAI__LIT_MAX];
	uint8_t len;
	bool caseless; /* compared without regard to ASCII case */
};

#define EXAI__CTX_K 16 /* the bytes on each side of a factor's literal that its context covers */

/* A set of byte values (bit c of b[c / 64]). */
struct exai__bset {
	uint64_t b[4];
};
static inline bool exai__bset_has(const struct exai__bset *s, unsigned char c)
{
	return s->b[c >> 6] >> (c & 63) & 1;
}
static inline unsigned exai__bset_count(const struct exai__bset *s)
{
	unsigned n = 0;
	for (int i = 0; i < 4; i++)
		n += (unsigned)__builtin_popcountll(s->b[i]);
	return n;
}

/* What a regex tells before any text is seen: the shortest and longest match, and its most
 * selective required factor: every match contains one of lits[] (n_lits > 0), starting at an
 * offset in [lo, hi] from the match's start; cost: the expected occurrences of the literals per
 * MB of prompt-like text (a ranking estimate), counting only what the context lets through.
 * The factor's context: in every match, where the literal occurs at such an offset, the byte j
 * + 1 places before the literal's start is in before[j], the byte j places after its end in
 * after[j] (positions outside the text do not count); a set of all 256 bytes says nothing. */
struct exai__re_info {
	unsigned minw, maxw; /* EXAI__RE_INF: unbounded */
	unsigned n_lits;
	struct exai__lit lits[EXAI__LITS_MAX];
	unsigned lo, hi;
	double cost;
	struct exai__bset before[EXAI__CTX_K], after[EXAI__CTX_K];
	/* reach_d > 0: within reach_d bytes after the literal's end, a byte of @reach */
	struct exai__bset reach;
	unsigned reach_d;
	/* every match's byte j (j < minw) is in head[j] (all 256 where nothing is known), but
	 * for a match at the text's start (^, \A) */
	struct exai__bset head[EXAI__CTX_K];
};
/* Analyses @re (PCRE2 syntax, PCRE2_CASELESS when @caseless). -EINVAL for syntax outside what
 * the analyser knows (then nothing may be assumed of the regex). */
int exai__regex_analyse(struct exai__re_info *ret, const char *re, bool caseless);
/* The same estimate for any literal set (keywords). */
double exai__lits_cost(const struct exai__lit *v, unsigned n);
/* The estimated share of prompt-like text's bytes that are in @s (0..1). */
double exai__bset_share(const struct exai__bset *s);

/* ---- run triggers (trigger.c) ----------------------------------------------------------- */

/* The byte classes whose runs trigger the literal-free patterns (docs/formats/scrub-pack.md). */
enum exai__run {
	EXAI__RUN_DIGIT,
	EXAI__RUN_HEX,
	EXAI__RUN_UPPER_ALNUM,
	EXAI__RUN_BASE58,
	EXAI__RUN_BASE64,
	EXAI__RUN_COUNT,
};
const char *exai__run_name(int run);
int exai__run_from_name(const char *name); /* -1 if unknown */

/* A shape: the lengths of the groups (stretches of class bytes between separators) with
 * which a match's class bytes begin, group k from lo[k] to hi[k] bytes. */
#define EXAI__SHAPES_MAX 8
#define EXAI__SHAPE_GROUPS_MAX 8
struct exai__shape {
	uint16_t lo[EXAI__SHAPE_GROUPS_MAX], hi[EXAI__SHAPE_GROUPS_MAX];
	uint8_t n;
};

/* A pattern's trigger: runs of @run bytes, where single separators (any number when
 * @adjacent) join them, holding at least @min bytes of the class and @min_seps separators;
 * for patterns without separators, optionally the byte before the run and its first byte.
 * With @n_shapes, a match's class bytes begin at a group of the run where one of @shapes
 * fits, and the match starts at most @lead bytes before it; with @validate the pattern's
 * validator accepts the bytes the shape covers (docs/formats/scrub-pack.md). */
struct exai__trigger {
	int run; /* -1: none */
	unsigned min, min_seps;
	char seps[9];
	bool adjacent;
	char before[9]; /* when set: the byte before the run is one of these */
	char first[9];  /* when set: the run's first byte is one of these */
	unsigned n_shapes, lead;
	bool validate;
	struct exai__shape shapes[EXAI__SHAPES_MAX];
};

/* One scan of a text for the runs of several classes at once (at most EXAI__RUN_SPECS_MAX). */
#define EXAI__RUN_SPECS_MAX 16
struct exai__run_spec {
	int run;
	uint8_t seps[8];
	unsigned n_seps;
	bool adjacent;
	unsigned min;      /* report runs with at least this many class bytes */
	unsigned min_seps; /* and at least this many separators */
	/* without separators: report only runs whose first byte (the byte before them; none at
	 * the text's start) is in the set, bit c of word c / 64 */
	bool has_first, has_before;
	uint64_t first[4], before[4];
};
/* A run [start, end) with @body bytes of the class and @seps separators. Returns nonzero to stop. */
typedef int (*exai__run_fn)(void *ud, unsigned spec, size_t start, size_t end, unsigned body, unsigned seps);
enum { EXAI__SIMD_SCALAR, EXAI__SIMD_SSSE3, EXAI__SIMD_AVX2, EXAI__SIMD_AVX512, EXAI__SIMD_BEST };
/* What the scan of a set of specs needs besides them, worked out once (exai__runs_plan): per
 * spec its class, separator set, shortest reported run and that length's shift schedule; the
 * distinct separator sets, and the tables that classify a byte into classes and sets. */
struct exai__run_plan {
	const struct exai__run_spec *sp; /* the specs (not owned: they must outlive the plan) */
	unsigned n;
	uint8_t cls_of[EXAI__RUN_SPECS_MAX], set_of[EXAI__RUN_SPECS_MAX];
	uint64_t adj[EXAI__RUN_SPECS_MAX];  /* ~0 when any number of separators join, else 0 */
	uint64_t fits[EXAI__RUN_SPECS_MAX]; /* ~0 when minlen <= 64 (a run that long fits a block) */
	uint64_t any_j[EXAI__RUN_SPECS_MAX]; /* ~0 when a run without separators may be reported */
	unsigned minlen[EXAI__RUN_SPECS_MAX]; /* class bytes + separators a reported run holds at least */
	uint8_t steps[EXAI__RUN_SPECS_MAX][6]; /* the shifts that find runs of minlen (0: none) */
	/* the distinct separator sets (at most one per spec) and the bytes they hold */
	unsigned n_sets, n_sepc;
	uint8_t sepc[EXAI__RUN_SPECS_MAX * 8];
	uint16_t sets_of_sep[EXAI__RUN_SPECS_MAX * 8]; /* bit j: sepc[q] is in set j */
	uint16_t set_tab[256];                       /* bit j: the byte is in set j */
	/* AVX-512, per eight specs (lanes 0-7, 8-15), bit k for lane 8h + k: the specs of each set
	 * of classes, each ASCII byte's specs that it joins, the specs whose separators are
	 * adjacent, those whose shortest run fits a block; per spec (a 64-bit lane each) the
	 * shift schedule of its shortest run, and the fewest class bytes and separators a
	 * reported run holds */
	/* the byte orders: reversed within qwords, the transpose's selector and gather, the
	 * bytes one before and one after a block of two */
	uint8_t x_rev[64], x_sel[64], x_gather[64], x_prev[64], x_next[64];
	uint8_t x_spec[EXAI__RUN_SPECS_MAX]; /* lane 8h + k: spec x_spec[8h + k] (0xff: none) */
	uint8_t x_nsteps[2];                 /* the most shifts a lane of the eight takes */
	bool x_ok[2];                        /* a spec of the eight asks for before / first */
	uint8_t x_specs[2][64], x_sep[2][128], x_adj[2], x_fits[2];
	/* ... and the specs a run may start after (x_before) or at (x_first) each ASCII byte,
	 * and those that may start after or at any byte from 0x80 */
	uint8_t x_before[2][128], x_first[2][128], x_before_hi[2], x_first_hi[2];
	uint64_t x_steps[2][6][8], x_body[2][8], x_seps[2][8];
};
/* The groups of the run [@start, @end) of class @run: where each begins and how long it is
 * (at most @max; returns how many, or @max + 1 when there are more). */
unsigned exai__run_groups(int run, const char *text, size_t start, size_t end, uint32_t *gstart, uint16_t *glen,
			  unsigned max);
/* Whether @shape fits the groups from @g on (of @n); the bytes from group @g's start to the
 * end of the shape's last group in *@span. */
bool exai__shape_fits(const struct exai__shape *shape, const uint32_t *gstart, const uint16_t *glen, unsigned n,
		      unsigned g, size_t *span);
/* Parses a shape ("3 2 4", "1-3 1-3 1-3 1-3"): 0, or -EINVAL. */
int exai__shape_parse(struct exai__shape *ret, const char *s);
/* Works out the plan of @n_specs specs (at most EXAI__RUN_SPECS_MAX; more are ignored); the
 * plan refers to @specs, which must stay where they are while it is used. */
void exai__runs_plan(struct exai__run_plan *pl, const struct exai__run_spec *specs, unsigned n_specs);
/* Finds the runs of every spec of @pl in @text, each spec's in text order; @impl picks the
 * implementation (tests compare them; EXAI__SIMD_BEST: the best the CPU has; one the CPU
 * lacks falls back to the best it has). Returns what @fn returned to stop, or 0. */
int exai__runs_scan_plan(const struct exai__run_plan *pl, const char *text, size_t len, exai__run_fn fn, void *ud,
			 int impl);
/* The same with the plan worked out for this call. */
int exai__runs_scan(const struct exai__run_spec *specs, unsigned n_specs, const char *text, size_t len,
		    exai__run_fn fn, void *ud, int impl);
/* The best implementation this CPU runs (EXAI__SIMD_SCALAR .. EXAI__SIMD_AVX512). */
int exai__runs_best_impl(void);

/* ---- packs (pack.c) --------------------------------------------------------------------- */

enum { EXAI__KIND_SECRET = 1, EXAI__KIND_PII = 2 };

/* What finds a pattern's candidate windows (engine.c). */
enum exai__gate {
	EXAI__GATE_REGEX,   /* Hyperscan runs the (loosened) regex: ends of candidate matches */
	EXAI__GATE_LITERAL, /* Hyperscan finds a required literal of the regex */
	EXAI__GATE_KEYWORD, /* Hyperscan finds a keyword (the literal-free patterns with selective keywords) */
	EXAI__GATE_TRIGGER, /* the run scan finds a run of the pattern's trigger class (trigger.c) */
};

struct exai__pattern {
	char *id;
	char *cls;
	char *regex;
	char *hs_regex;         /* what Hyperscan compiles: a superset of regex (pack.c) */
	const char *pack;       /* the pack's group name (points into the pack list) */
	int kind;               /* EXAI__KIND_* */
	int severity;           /* 1 low .. 4 critical */
	unsigned group;         /* capture group that is the secret; 0: the whole match */
	bool caseless;
	char **keywords;        /* lower-case */
	size_t n_keywords;
	int validator;          /* enum exai__validator */
	double min_entropy;
	char prefix[5];         /* the literal provider prefix kept by mask mode (<= 4 chars) */
	unsigned window;        /* the longest match, capped at EXAI__SCRUB_WINDOW_MAX */
	unsigned hs_flags;
	int gate;               /* EXAI__GATE_*: what Hyperscan (or the run scan) looks for (engine.c) */
	struct exai__trigger trigger; /* from the pack; run -1 when none */
	int gate_req;           /* from the pack's "gate": EXAI__GATE_LITERAL or _KEYWORD; 0: the engine's choice */
	pcre2_code *re;
	/* policy */
	bool disabled;
	int mode;               /* 0: the request's mode */
};

struct exai__pack_set {
	struct exai__pattern *pats;
	size_t n;
	char **groups;          /* pack group names */
	size_t n_groups;
	json_t *examples;       /* array, per pattern: its examples object (tests) */
	uint8_t sha256[32];     /* of the packs' canonical forms, in order */
};

/* Parses and checks one pack (@name for messages) and appends its patterns. */
int exai__pack_load(struct exai__pack_set *set, const char *name, const char *json, size_t len);
/* Compiles each pattern's PCRE2 program and works out its Hyperscan flags and window. */
int exai__pack_compile(struct exai__pack_set *set);
/* Hyperscan's check of each regex: its flags (prefilter when needed) and window; refuses what
 * Hyperscan cannot compile or what matches the empty string. The costly part of building a
 * scrubber: the engine caches what it gives. */
int exai__pack_hs_check(struct exai__pack_set *set);
void exai__pack_set_free(struct exai__pack_set *set);

/* The built-in pack (generated at build time from lib/scrub/pack/ *.json). */
struct exai__builtin_pack {
	const char *name;
	const unsigned char *data;
	size_t len;
};
extern const struct exai__builtin_pack exai__builtin_packs[];
extern const size_t exai__builtin_pack_count;

/* ---- the stage-2 classifier (classify.c) ------------------------------------------------ */

#define EXAI__CLS_NFEAT 17
/* The features of token @tok (@n bytes) with @before (@nb bytes, the text before it). */
void exai__cls_features(double f[EXAI__CLS_NFEAT], const char *tok, size_t n, const char *before, size_t nb);
/* The model's probability that the token is a secret. */
double exai__cls_score(const double f[EXAI__CLS_NFEAT]);
/* Whether token @tok (after @before) scores at least the threshold, and then its score in
 * *@score: the same decision and score as exai__cls_score(features), exp() only near it. */
bool exai__cls_secret(const char *tok, size_t n, const char *before, size_t nb, double *score);
double exai__cls_threshold(void);
/* Which bytes make up the tokens stage 2 scores (a table of 256). */
const bool *exai__cls_token_table(void);
#define EXAI__CLS_MIN_LEN 16
#define EXAI__CLS_MAX_LEN 200

/* ---- decoders (decode.c) ---------------------------------------------------------------- */

/* A decoded segment: @data of @len bytes, byte i coming from [src_start[i], src_end[i]) of
 * the text it was decoded from. */
struct exai__decoded {
	char *data;
	size_t len;
	uint32_t *src_start;
	uint32_t *src_end;
	size_t printable; /* decode.c's first pass: how many of the len bytes are printable */
};
/* Calls @fn for every decodable run of @text (base64, URL encoding, JSON/C escapes, hex).
 * Stops and returns @fn's negative value. */
int exai__decode_runs(const char *text, size_t len,
		      int (*fn)(void *ud, const struct exai__decoded *d), void *ud);
void exai__decoded_free(struct exai__decoded *d);
/* Calls @fn for each maximal run [start, end) of @text's bytes of one class, at least @min
 * long: EXAI__CR_B64, base64 and base64url characters; EXAI__CR_TOKEN, the bytes of stage 2's
 * tokens (exai__cls_token_table). 64 bytes at a time (SSE2). Returns @fn's nonzero value. */
enum { EXAI__CR_B64, EXAI__CR_TOKEN };
int exai__class_runs(const char *text, size_t len, int cls, size_t min, int (*fn)(void *ud, size_t start, size_t end),
		     void *ud);
/* The value of a base64 or base64url character (`+`/`-` 62, `/`/`_` 63), or -1. */
static inline int exai__b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}
/* Decodes base64 or base64url, padding optional, into @out (at least n * 3 / 4 + 3 bytes);
 * the decoded length, or -1 on a bad character or length. */
long exai__b64_decode(uint8_t *out, const char *s, size_t n);

/* ---- policy (policy.c) ------------------------------------------------------------------ */

struct exai__scrub_policy {
	char **literals;
	size_t n_literals;
	pcre2_code **regexes;
	size_t n_regexes;
};
int exai__policy_load(struct exai__scrub_policy *pol, struct exai__pack_set *set, const char *json);
bool exai__policy_allowed(const struct exai__scrub_policy *pol, pcre2_match_data *md, const char *s, size_t n);
void exai__policy_free(struct exai__scrub_policy *pol);

/* ---- the engine (engine.c) -------------------------------------------------------------- */

/* A check of a literal hit: the byte @off bytes from the literal's start (negative: before
 * it) is in @set, or outside the text; with @span > 0, one of the @span bytes from there is
 * (or they reach past the text's end). */
struct exai__lit_chk {
	int32_t off;
	uint32_t span;
	struct exai__bset set;
};
#define EXAI__LIT_CHKS_MAX 12 /* per use: the most selective of the context's positions */
#define EXAI__LIT_REACH_MAX 64 /* the longest span */

/* One pattern gated by a literal: a match starts lo..hi bytes before the literal's start
 * (lo < 0: the literal may follow the match's start, a keyword before the match); a hit opens
 * a window only when it passes the checks chks[chk .. chk + n_chk) (the context the analysis
 * found around the literal in every match). */
struct exai__lit_use {
	unsigned pat;
	int lo, hi;
	unsigned chk, n_chk;
};
/* Whether the hit of a literal starting at @ls of @text passes the checks of use @u. */
static inline bool exai__lit_use_ok(const struct exai__lit_chk *chks, const struct exai__lit_use *u, const char *text,
				    size_t len, size_t ls)
{
	for (unsigned i = u->chk; i < u->chk + u->n_chk; i++) {
		size_t q = ls + (size_t)(ptrdiff_t)chks[i].off; /* wraps below 0: outside the text */
		if (chks[i].span) {
			size_t e = q + chks[i].span;
			if (q >= len || e > len)
				continue;
			while (q < e && !exai__bset_has(&chks[i].set, (unsigned char)text[q]))
				q++;
			if (q == e)
				return false;
		} else if (q < len && !exai__bset_has(&chks[i].set, (unsigned char)text[q])) {
			return false;
		}
	}
	return true;
}

/* The candidate window of one pattern during a scan: PCRE2 looks for matches starting in
 * [ws, wl] and ending by we (the subject ends 64 bytes later, for boundaries). */
struct exai__win {
	size_t ws, wl, we;
	bool open;
};

struct exai_scrubber {
	exai_ctx *ctx;
	struct exai__pack_set set;
	struct exai__scrub_policy policy;
	hs_database_t *db;
	hs_scratch_t *scratch;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	uint32_t flags;
	int mode;
	size_t max_input;
	uint8_t hash_key[64];
	size_t hash_key_len;
	bool have_hash_key;
	uint8_t digest_key[32]; /* audit digests */
	char *tenant;
	size_t context;  /* what a stream keeps before a cut */
	size_t holdback; /* the most a stream holds back after a feed (exai_scrubber_holdback) */
	unsigned window_max;
	/* the literals Hyperscan looks for (Hyperscan id set.n + k): literal k gates the uses
	 * lit_uses[lit_first[k] .. lit_first[k + 1]) */
	struct exai__lit *lits;
	size_t n_lits;
	unsigned *lit_first;
	struct exai__lit_use *lit_uses;
	struct exai__lit_chk *chks; /* the uses' checks */
	size_t n_chks;
	/* per pattern, checks of a match's first bytes (off: the byte's offset in the match):
	 * heads[head_first[i] .. head_first[i + 1]) */
	struct exai__lit_chk *heads;
	unsigned *head_first;
	int *head_byte; /* per pattern, the one byte its first check allows, or -1 (engine.c) */
	struct exai__kwtab **kwtab;  /* per pattern, its keywords by first byte (engine.c) */
	/* the run scan: one spec per class in use, and its patterns trig_pats[trig_first[k] ..
	 * trig_first[k + 1]) */
	struct exai__run_spec run_specs[EXAI__RUN_SPECS_MAX];
	unsigned n_run_specs;
	struct exai__run_plan run_plan; /* of run_specs, worked out once */
	unsigned trig_first[EXAI__RUN_SPECS_MAX + 1];
	unsigned *trig_pats;
	bool cache_hit; /* the plan and the database came from the cache (tests) */
	struct exai__pat_stats *stats; /* per pattern, when not NULL (the benchmark's plan mode) */
	struct exai__win *win;  /* per pattern, reset after each scan (engine.c) */
	unsigned *touched;      /* the patterns whose window is open */
	unsigned *hit_first;    /* per pattern, scratch of stage 1's sort of the windows */
};

/* Where stage 1's time goes, per pattern (only measured when exai_scrubber.stats is set). */
struct exai__pat_stats {
	size_t windows, bytes;
	double seconds;
};

/* A finding before resolution (internal form). */
struct exai__cand {
	size_t start, end;
	int pat;          /* index in set.pats, or -1 for stage 2 */
	int rank;         /* 3 validated, 2 keyed, 1 generic, 0 stage 2 */
	double score;
	int decoded;
};

struct exai__cands {
	struct exai__cand *v;
	size_t n, cap;
};
int exai__cands_push(struct exai__cands *c, const struct exai__cand *x);

/* Finds every candidate in @text (both stages, decoders), unresolved. */
int exai__scan(exai_scrubber *s, struct exai__cands *out, const char *text, size_t len);
/* Resolves overlaps (the rule in exai/scrub.h) and sorts by start. */
void exai__resolve(exai_scrubber *s, struct exai__cands *c);
/* Fills a public finding from a candidate. */
void exai__finding_fill(const exai_scrubber *s, struct exai_scrub_finding *f, const struct exai__cand *c);

/* ---- redaction and vaults (redact.c) ---------------------------------------------------- */

struct exai__vault_entry {
	char ph[48];        /* placeholder text without the guillemets, e.g. EMAIL_3f9a7c1e */
	size_t ph_len;
	char *value;        /* secure memory */
	size_t value_len;
};
struct exai__vault {
	struct exai__vault_entry *v;
	size_t n, cap;
};
void exai__vault_free(struct exai__vault *v);
int exai__vault_serialize(const struct exai__vault *v, uint8_t **ret, size_t *retlen);
int exai__vault_parse(struct exai__vault *v, const uint8_t *p, size_t n);

/* Checks every pattern's own examples (stage 1 only): positives must give a candidate of the
 * pattern whose span is exactly the secret, negatives none. Failures are described in @report. */
int exai__check_examples(exai_scrubber *s, size_t *failures, struct exai__buf *report);

/* Appends the replacement of @value (a finding of pattern @pat, -1 for stage 2) to @out. */
int exai__redact_one(exai_scrubber *s, struct exai__vault *vault, struct exai__buf *out, int mode,
		     int pat, const char *value, size_t n);

struct exai_scrub_result {
	char *text;
	size_t len;
	struct exai_scrub_finding *f;
	size_t n, cap;
	struct exai__vault vault;
	bool invalid_utf8;
};

/* The audit event of one request, accumulated finding by finding. */
struct exai__audit_acc {
	json_t *counts;
	json_t *digests;
	size_t n;
};
int exai__audit_add(exai_scrubber *s, struct exai__audit_acc *a, const char *cls, const char *value, size_t n);
int exai__audit_emit(exai_scrubber *s, struct exai__audit_acc *a, size_t len);
void exai__audit_acc_free(struct exai__audit_acc *a);

#endif /* EXAI_SCRUB_INTERNAL_H */
