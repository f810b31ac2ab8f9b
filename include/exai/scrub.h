/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file exai/scrub.h
 * @brief Pre-prompt scrubbing: secrets and personal data found and redacted before a text
 *        reaches a model, a log or a tool.
 *
 * Stage 1 is a pack of deterministic patterns (the built-in pack, embedded in the library at
 * build time, plus custom packs in the same JSON format, docs/formats/scrub-pack.md). Each
 * pattern's candidates are found by the cheapest means its regex allows: Hyperscan looking for
 * a literal every match contains (or for its keywords, or for the regex itself), or a SIMD scan
 * for runs of digits, hex, base58 or base64 that the pack names as the pattern's trigger; a
 * literal's hit counts only where the bytes around it fit what the regex allows there;
 * PCRE2 (JIT) confirms each candidate inside a bounded window
 * and extracts the secret's capture group; keywords, validators (Luhn, mod-97, checksums, ...)
 * and a minimum entropy cut false positives. Base64, URL-encoded, JSON/C-escaped and hex runs
 * are decoded (nested up to depth 2) and scanned too; their findings are mapped back to byte
 * offsets in the original text. Stage 2 is a small logistic-regression classifier for
 * shaped-but-novel secret tokens that no pattern names.
 *
 * Overlapping findings are resolved by rank, highest first, each finding kept only when it
 * overlaps none kept before it (the bytes of a finding dropped so stay as they were). The rank
 * compares, in order: a pattern before the stage-2 classifier, a secret before personal data,
 * specificity (a pattern with a validator other than `none` or `not_placeholder` > a pattern
 * with keywords > any other pattern), the longer span, the higher severity, the earlier
 * start, the pattern's place in the pack.
 *
 * Input: any bytes. NUL bytes and invalid UTF-8 are scanned as bytes and pass through
 * unchanged (findings never start or end inside a valid multi-byte sequence that the pattern
 * did not match); texts longer than exai_scrubber_opts::max_input are refused with -E2BIG.
 *
 * Threads: a scrubber is used by one thread at a time (it owns Hyperscan scratch space and
 * PCRE2 match data); build one per thread. Results, streams and restorers likewise.
 */
#ifndef EXAI_SCRUB_H
#define EXAI_SCRUB_H

#include <exai/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A compiled set of patterns with its policy. */
typedef struct exai_scrubber exai_scrubber;
/** The outcome of scrubbing one text. */
typedef struct exai_scrub_result exai_scrub_result;
/** A streaming scrub of one request. */
typedef struct exai_scrub_stream exai_scrub_stream;
/** A streaming restore of pseudonymised placeholders in a model's response. */
typedef struct exai_scrub_restorer exai_scrub_restorer;

/** Redaction modes. */
enum exai_scrub_mode {
	/** `‹CLASS:ghp_****›`: the class and at most a 4-character provider prefix (the literal
	 *  prefix the pattern's regex gives the secret, as `AKIA`, `ghp_`, `xoxb`) are kept. */
	EXAI_SCRUB_MASK = 1,
	/** `‹EMAIL›`: the class alone. */
	EXAI_SCRUB_PLACEHOLDER = 2,
	/** `‹EMAIL:9c1e0b7a44d2f3e1›`: HMAC-SHA256 under the tenant's hash key of the class and
	 *  the value, first 16 hex digits: the same value gives the same token for a tenant. */
	EXAI_SCRUB_HASH = 3,
	/** `‹EMAIL_3f9a7c1e›`: a random placeholder per distinct value and request, recorded in a
	 *  vault that exai_scrub_restore() uses to put the values back. */
	EXAI_SCRUB_PSEUDO = 4,
};

/** Which stage produced a finding. */
enum exai_scrub_stage {
	EXAI_SCRUB_STAGE_PATTERN = 1,    /**< a pattern of a pack */
	EXAI_SCRUB_STAGE_CLASSIFIER = 2, /**< the stage-2 classifier */
};

/** One finding. Strings point into the scrubber and live as long as it does. */
struct exai_scrub_finding {
	const char *cls;     /**< class, e.g. "aws_access_key", "email" */
	const char *pattern; /**< pattern id; "stage2.classifier" for stage 2 */
	size_t start;        /**< byte offset of the secret in the input */
	size_t end;          /**< byte offset one past its end */
	int stage;           /**< ::exai_scrub_stage */
	double score;        /**< 1.0 for a validated pattern, 0.9 keyed, 0.8 generic; the
				  classifier's probability for stage 2 */
	int kind;            /**< 1: secret, 2: personal data */
	int decoded;         /**< 0: found in the text; 1-2: inside that many decoding layers */
};

/** Flags for exai_scrubber_opts::flags. */
enum exai_scrubber_flags {
	EXAI_SCRUBBER_NO_BUILTIN = 1u << 0,   /**< do not load the built-in pack */
	EXAI_SCRUBBER_NO_CACHE = 1u << 1,     /**< never read or write the database cache */
	EXAI_SCRUBBER_NO_STAGE2 = 1u << 2,    /**< disable the stage-2 classifier */
	EXAI_SCRUBBER_NO_DECODE = 1u << 3,    /**< do not decode base64/URL/escape/hex runs */
};

struct exai_scrubber_opts {
	size_t sz; /**< set by EXAI_OPTS() */
	/** Custom packs (JSON texts, docs/formats/scrub-pack.md) merged with the built-in pack.
	 *  Pattern ids must be unique across all packs. */
	const char *const *packs;
	size_t n_packs;          /**< number of entries in packs */
	uint32_t flags;          /**< ::exai_scrubber_flags */
	int mode;                /**< default ::exai_scrub_mode; 0: EXAI_SCRUB_MASK */
	size_t max_input;        /**< largest text accepted; 0: 64 MiB (at most 1 GiB) */
	/** The tenant's key for EXAI_SCRUB_HASH tokens and the audit digests (16-64 bytes);
	 *  NULL: hash mode is refused and audit digests use a random per-scrubber key. */
	const uint8_t *hash_key;
	size_t hash_key_len;
	/** The tenant's policy (JSON text, docs/formats/scrub-policy.md): allowlists, per-class
	 *  enable/disable and mode; NULL: every class enabled in the default mode. */
	const char *policy;
	const char *tenant;      /**< tenant id for audit events; NULL: none */
};

/**
 * Builds a scrubber: parses and checks the built-in and custom packs, works out how each
 * pattern is found and compiles the Hyperscan database (or loads both from the cache
 * `<state_dir>/scrub/<sha256>.hsdb`, named by the hash of the packs, of the engine's plan
 * version and of Hyperscan's version, rebuilt when it is corrupt), and compiles the PCRE2
 * programs. @p ctx may be NULL (no cache,
 * no audit events, no logging); the scrubber takes a reference to it.
 * @retval -EINVAL a pack or policy is invalid: exai_errmsg() names the pack, the pattern id
 *         and the reason (invalid regex, Hyperscan cannot compile it, unknown validator,
 *         missing examples, ...), or the option at fault
 * @retval -ENOTSUP this libexai was built without the scrubber (no EXAI_FEATURE_SCRUB)
 * @retval -E2BIG opts sets fields this library does not know
 * @retval -ENOMEM
 */
EXAI_API int exai_scrubber_new(exai_scrubber **ret, exai_ctx *ctx, const struct exai_scrubber_opts *opts);
/** Frees a scrubber. NULL is accepted. */
EXAI_API void exai_scrubber_free(exai_scrubber *s);
/** The number of patterns loaded (built-in and custom, disabled classes included). */
EXAI_API size_t exai_scrubber_pattern_count(const exai_scrubber *s);
/** Describes pattern @p i (< exai_scrubber_pattern_count()): id, class, kind (1 secret, 2
 *  personal data), validator name, severity (1-4). -ERANGE when @p i is out of range.
 *  Any out-pointer may be NULL; the strings live as long as @p s. */
EXAI_API int exai_scrubber_pattern(const exai_scrubber *s, size_t i, const char **id, const char **cls,
				   int *kind, const char **validator, int *severity);
/** The hold-back of a stream: after any exai_scrub_stream_feed() returns, at most this many of
 *  the bytes fed so far are not yet in the output (they may still belong to a finding). About
 *  69 KiB: the 32 KiB a finding may span, the context a scan needs before a cut, and the 32 KiB
 *  of a candidate that a cut may not split. One exception: findings that overlap one another in
 *  a chain longer than that are held back whole, never split. */
EXAI_API size_t exai_scrubber_holdback(const exai_scrubber *s);

/**
 * Runs the examples of a pack (JSON text) against a scrubber built from that pack alone:
 * every positive must give a finding of that pattern covering exactly its `secret`, every
 * negative no finding of that pattern. Returns the number of failures (>= 0) in *@p failures
 * and, when @p report is not NULL, a human report of each failure (exai_free()).
 * @retval -EINVAL the pack itself is invalid (see exai_scrubber_new())
 */
EXAI_API int exai_scrub_pack_test(size_t *failures, char **report, exai_ctx *ctx, const char *pack);

/** Per-call options of exai_scrub_text(). */
struct exai_scrub_text_opts {
	size_t sz;  /**< set by EXAI_OPTS() */
	int mode;   /**< ::exai_scrub_mode; 0: the scrubber's default (the policy may override per class) */
	/** Skip the audit event for this call (tests, dry runs). */
	int no_audit;
};

/**
 * Scrubs @p text (@p len bytes, any content) and gives the redacted text and the findings.
 * In EXAI_SCRUB_PSEUDO mode the result also holds the vault (exai_scrub_result_vault()).
 * Emits one audit event (counts by class, keyed digests; never the text) through @p s's
 * context unless opts->no_audit.
 * @retval -E2BIG @p len exceeds the scrubber's max_input, or opts has unknown fields
 * @retval -EINVAL bad mode, or hash mode without a hash key
 * @retval -ENOMEM
 */
EXAI_API int exai_scrub_text(exai_scrub_result **ret, exai_scrubber *s, const char *text, size_t len,
			     const struct exai_scrub_text_opts *opts);
/** The redacted text (NUL-terminated; *@p len its length when @p len is not NULL). Owned by @p r. */
EXAI_API const char *exai_scrub_result_text(const exai_scrub_result *r, size_t *len);
/** The number of findings, sorted by start offset. */
EXAI_API size_t exai_scrub_result_count(const exai_scrub_result *r);
/** Finding @p i, or NULL when out of range. Owned by @p r. */
EXAI_API const struct exai_scrub_finding *exai_scrub_result_finding(const exai_scrub_result *r, size_t i);
/** Whether the input held invalid UTF-8 (passed through unchanged). */
EXAI_API int exai_scrub_result_invalid_utf8(const exai_scrub_result *r);
/**
 * The pseudonymisation vault of a EXAI_SCRUB_PSEUDO result, serialised (docs/formats/
 * scrub-vault.md) into memory from exai_secure_alloc() (release with exai_secure_free()).
 * The vault holds the original values: the caller keeps it in memory or seals it with
 * exai_scrub_vault_seal() before it goes anywhere; never as plaintext on disk.
 * @retval -ENOENT the result has no vault (another mode, or nothing was found)
 */
EXAI_API int exai_scrub_result_vault(uint8_t **ret, size_t *retlen, const exai_scrub_result *r);
/**
 * Seals a serialised vault (from exai_scrub_result_vault()) as an envelope message
 * (docs/formats/envelope.md: AWS Encryption SDK v2, suite 0x0478) under the tenant's 256-bit
 * wrapping key @p key, named (`exai-scrub`, @p key_name); the encryption context carries
 * `tenant`, `purpose` = `scrub-vault` and `object` = @p request_id. *@p ret (exai_free())
 * is safe to store anywhere.
 * @retval -EINVAL a missing argument; -EBADMSG @p vault is not a valid vault
 */
EXAI_API int exai_scrub_vault_seal(uint8_t **ret, size_t *retlen, const uint8_t *vault, size_t vault_len,
				   const uint8_t key[32], const char *key_name, const char *tenant,
				   const char *request_id);
/**
 * Opens a sealed vault (@p request_id NULL: any request of the tenant): *@p ret is the serialised vault in exai_secure_alloc() memory (release
 * with exai_secure_free()), for exai_scrub_restore() or exai_scrub_restorer_new().
 * @retval -EBADMSG wrong key, tenant or request id, or an altered or truncated message
 */
EXAI_API int exai_scrub_vault_open(uint8_t **ret, size_t *retlen, const uint8_t *msg, size_t len,
				   const uint8_t key[32], const char *key_name, const char *tenant,
				   const char *request_id);
/** Frees a result (wiping its vault). NULL is accepted. */
EXAI_API void exai_scrub_result_free(exai_scrub_result *r);

/**
 * Starts a streaming scrub: feed chunks, get redacted output that never splits a UTF-8
 * sequence, holding back at most exai_scrubber_holdback() bytes; the findings are exactly
 * those exai_scrub_text() gives for the concatenation of the chunks. @p opts as for
 * exai_scrub_text(); the audit event is emitted by exai_scrub_stream_finish().
 */
EXAI_API int exai_scrub_stream_new(exai_scrub_stream **ret, exai_scrubber *s,
				   const struct exai_scrub_text_opts *opts);
/** Feeds a chunk; *@p ret gets the output that is now final (possibly empty; exai_free()).
 *  @retval -E2BIG the stream exceeded max_input. @retval -EINVAL the stream is finished. */
EXAI_API int exai_scrub_stream_feed(exai_scrub_stream *st, char **ret, size_t *retlen, const char *chunk,
				    size_t len);
/** Ends the stream: *@p ret gets the rest of the output (exai_free()). After this the findings
 *  and the vault are complete. */
EXAI_API int exai_scrub_stream_finish(exai_scrub_stream *st, char **ret, size_t *retlen);
/** The stream's findings so far (offsets in the whole stream), as a result object view:
 *  valid until the next call on @p st. */
EXAI_API const exai_scrub_result *exai_scrub_stream_result(const exai_scrub_stream *st);
/** Frees a stream. NULL is accepted. */
EXAI_API void exai_scrub_stream_free(exai_scrub_stream *st);

/**
 * Puts the original values back into @p text (a model's response) in place of the
 * placeholders recorded in @p vault. Placeholders are matched case-insensitively and with
 * either `‹›` or `<>` around them; unknown placeholders are left as they are.
 * *@p ret (exai_free()) may hold secrets: the caller decides where it goes.
 * @retval -EBADMSG the vault is not a valid serialised vault
 */
EXAI_API int exai_scrub_restore(char **ret, size_t *retlen, const uint8_t *vault, size_t vault_len,
				const char *text, size_t len);
/** Starts a streaming restore (placeholders split across chunks are found). */
EXAI_API int exai_scrub_restorer_new(exai_scrub_restorer **ret, const uint8_t *vault, size_t vault_len);
/** Feeds a chunk of the response; *@p ret gets what is final (exai_free()). At most the length
 *  of the longest placeholder is held back. */
EXAI_API int exai_scrub_restorer_feed(exai_scrub_restorer *r, char **ret, size_t *retlen, const char *chunk,
				      size_t len);
/** Ends the response; *@p ret gets the rest (exai_free()). */
EXAI_API int exai_scrub_restorer_finish(exai_scrub_restorer *r, char **ret, size_t *retlen);
/** Frees a restorer (wiping its copy of the vault). NULL is accepted. */
EXAI_API void exai_scrub_restorer_free(exai_scrub_restorer *r);

#ifdef __cplusplus
}
#endif

#endif /* EXAI_SCRUB_H */
