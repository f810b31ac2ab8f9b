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
	EXAI__V_COUNT,
};
/* The validator's name in packs, or NULL. */
const char *exai__validator_name(int v);
/* -1 for an unknown name. */
int exai__validator_from_name(const char *name);
/* Whether @s (@n bytes) passes validator @v. */
bool exai__validate(int v, const char *s, size_t n);
/* Shannon entropy in bits per byte. */
double exai__shannon(const char *s, size_t n);
/* Keccak-256 (the pre-standard padding Ethereum uses, not SHA3-256). */
void exai__keccak256(uint8_t out[32], const void *in, size_t len);
/* The zlib/PNG CRC-32. */
uint32_t exai__crc32(const void *p, size_t n);

/* ---- packs (pack.c) --------------------------------------------------------------------- */

enum { EXAI__KIND_SECRET = 1, EXAI__KIND_PII = 2 };

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
	bool gated;             /* Hyperscan looks for its keywords, not its regex (engine.c) */
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

/* The candidate window of one pattern during a scan. */
struct exai__win {
	size_t ws, we;
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
	size_t holdback;
	unsigned window_max;
	/* the keywords Hyperscan looks for (Hyperscan id set.n + k): each distinct keyword of the
	 * gated patterns, and the patterns it gates: kw_pats[kw_first[k] .. kw_first[k + 1]) */
	const char **kw;        /* points into the patterns' keywords */
	size_t n_kw;
	unsigned *kw_first, *kw_pats;
	struct exai__win *win;  /* per pattern, reset after each scan (engine.c) */
	unsigned *touched;      /* the patterns whose window is open */
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
	size_t n;
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
