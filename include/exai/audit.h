/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file exai/audit.h
 * @brief The audit log: structured events, hash-chained, Merkle-checkpointed, signed,
 * stored append-only, provable, verifiable and streamed to sinks.
 *
 * Each event is one JSON object in RFC 8785 canonical form, aligned with OCSF (`class_uid`,
 * `activity_id`, `type_uid`, `time`, `actor`, `target`, `status`). The log adds `seq` (gapless,
 * from 0), `origin` (the log's name) and `prev` (hex SHA-256 of the previous event's canonical
 * bytes; 64 zeros for seq 0). The canonical bytes are the leaves of an RFC 6962 Merkle tree;
 * checkpoints are C2SP tlog-checkpoint notes signed per C2SP signed-note with the log's Ed25519
 * key; proofs follow RFC 9162. The on-disk formats are in docs/formats/audit.md.
 *
 * Prompt and tool-input text is never stored: the log refuses an event that has a member named
 * `prompt`, `prompt_text`, `tool_input`, `completion` or `response_text` at any depth. Record
 * counts and keyed digests instead (exai_audit_digest()).
 *
 * Threads: an ::exai_audit_log is thread-safe: appends from several threads are serialised
 * and made durable together (group commit). An ::exai_audit_event is used by one thread at
 * a time. The pure functions (exai_audit_merkle_*, exai_audit_note_*) are thread-safe.
 */
#ifndef EXAI_AUDIT_H
#define EXAI_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <exai/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open audit log (one origin). Thread-safe. */
typedef struct exai_audit_log exai_audit_log;
/** An event being built. */
typedef struct exai_audit_event exai_audit_event;

/** Durability of exai_audit_append() (exai_audit_opts::durability). */
enum exai_audit_durability {
	/** The append returns once the event is on stable storage (fdatasync, group commit). */
	EXAI_AUDIT_SYNC = 1,
	/** The append returns once the event is ordered; a background thread makes it durable
	 *  within exai_audit_opts::batch_delay_ms. A crash may lose the last batch. */
	EXAI_AUDIT_BATCH = 2,
};

/** Flags for exai_audit_opts::flags. */
enum exai_audit_flags {
	/** Open for reading only: no key is created, nothing is written, appends fail. */
	EXAI_AUDIT_READONLY = 1u << 0,
	/** Verify the whole log on open (as exai_audit_verify() with the log's own key, after a
	 *  torn tail is cut) and refuse to open it (-EBADMSG) when any record is bad. Without it,
	 *  open rechecks only what follows the last checkpoint. Costs a full read of the log. */
	EXAI_AUDIT_VERIFY_ON_OPEN = 1u << 1,
	/** When another process holds the log for writing, open a *spool* instead of failing
	 *  with -EBUSY: appends are checked as the log would check them and written, durably
	 *  under EXAI_AUDIT_SYNC, to a file of this handle's own under `<log>/spool/`; the
	 *  writer chains the file into the log (seq, prev, signed checkpoints) once this handle
	 *  is closed: at its next open, within a second while it stays open, or at its close.
	 *  A spooling handle appends, flushes and closes; everything that needs the log itself
	 *  (checkpoints, proofs, size, digests, sinks, prune) fails with -EBUSY. It needs no
	 *  signing key. For short-lived processes beside a long-lived writer (exaictl beside
	 *  exaid); docs/audit.md. */
	EXAI_AUDIT_SPOOL_IF_BUSY = 1u << 2,
};

/** The seq that exai_audit_append() reports for an event spooled (EXAI_AUDIT_SPOOL_IF_BUSY):
 *  it gets its place in the log when the writer chains it. */
#define EXAI_AUDIT_SEQ_SPOOLED UINT64_MAX

struct exai_audit_opts {
	size_t sz; /**< sizeof(struct exai_audit_opts); set by EXAI_OPTS() */
	/** The log's name: checkpoint origin line, signing key name, `origin` of its events,
	 *  directory `<state_dir>/audit/<origin>` ('/' written as "%2F"). 1..128 characters of
	 *  `A-Za-z0-9._-/`, not starting with '.' or '/'. NULL: "exai". */
	const char *origin;
	int durability;              /**< ::exai_audit_durability; 0: EXAI_AUDIT_SYNC */
	uint32_t batch_delay_ms;     /**< EXAI_AUDIT_BATCH: flush delay bound; 0: 10 ms */
	uint32_t checkpoint_events;  /**< checkpoint after this many events; 0: 10000 */
	uint32_t checkpoint_ms;      /**< ... or this long after the first unsealed event; 0: 1000 */
	uint32_t max_event_size;     /**< canonical bytes per event; 0: 65536 (max 16 MiB) */
	uint64_t segment_size;       /**< a new segment after this many bytes; 0: 64 MiB */
	uint32_t retention_days;     /**< exai_audit_prune() keeps this many days; 0: 2557 */
	uint32_t flags;              /**< ::exai_audit_flags */
	/** Tenant whose keyring (exai_keyring_open()) seals the log's signing key; it must exist.
	 *  NULL: the host keyring ::EXAI_AUDIT_KEY_TENANT when it exists, else a plain 0600 file.
	 *  A reader (EXAI_AUDIT_READONLY) needs no keyring: it loads only `signing.pub`. */
	const char *key_tenant;
};

/** The tenant whose keyring, when it exists, seals every log's signing key by default. */
#define EXAI_AUDIT_KEY_TENANT "host"

/**
 * Opens (creating if absent) the log `<state_dir of ctx>/audit/<origin>`. On first use an
 * Ed25519 signing key is created (C2SP signed-note private key form), stored sealed as an
 * envelope message under the keyring of opts->key_tenant (or of the host tenant
 * ::EXAI_AUDIT_KEY_TENANT when that keyring exists): `signing.key.sealed`; without a keyring
 * as a 0600 file `signing.key`. A plain key found when a keyring exists is sealed and the
 * file overwritten and removed (docs/audit.md).
 * Recovery: a torn tail (an append that never returned success) is cut; the chain and tree
 * are checked from the last checkpoint; the last checkpoint's signature is checked (and with
 * EXAI_AUDIT_VERIFY_ON_OPEN, everything).
 * @retval -EINVAL bad options (exai_errmsg() names the field)
 * @retval -EBADMSG the stored log is corrupt outside its tail: the log refuses to append
 *         (run exai_audit_verify() to locate the damage)
 * @retval -ENOENT opts->key_tenant has no keyring
 * @retval -EBUSY another process holds the log for writing (see EXAI_AUDIT_SPOOL_IF_BUSY)
 * @retval -EACCES the key is sealed and no keyring is available, or the keyring is revoked
 *         or its KMS refuses
 * @retval -EACCES, -EIO, -ENOMEM and other errno values from the file system
 */
EXAI_API int exai_audit_open(exai_audit_log **ret, exai_ctx *ctx, const struct exai_audit_opts *opts);
/**
 * Makes everything durable, writes a final checkpoint when events are unsealed, stops the
 * log's threads (sinks too) and frees it. NULL is accepted (returns 0). Returns the first
 * error met while flushing; the log is freed either way.
 */
EXAI_API int exai_audit_close(exai_audit_log *log);

/** @name Events @{ */
/**
 * Starts an event of OCSF class @p class_uid and activity @p activity_id (both > 0).
 * @p activity_name (e.g. "vm.boot"; may be NULL) is kept as `activity_name`.
 * The event's `time` is now (milliseconds since the epoch) unless set.
 * @retval -EINVAL a zero class or activity, invalid UTF-8  @retval -ENOMEM
 */
EXAI_API int exai_audit_event_new(exai_audit_event **ret, uint32_t class_uid, uint32_t activity_id,
				  const char *activity_name);
/** Frees an event. NULL is accepted. */
EXAI_API void exai_audit_event_free(exai_audit_event *ev);
/** Sets `time` (milliseconds since the Unix epoch). */
EXAI_API int exai_audit_event_set_time(exai_audit_event *ev, int64_t time_ms);
/** Sets `actor.user.name`. -EINVAL on NULL or invalid UTF-8. */
EXAI_API int exai_audit_event_set_actor(exai_audit_event *ev, const char *actor);
/** Sets `target.name`. */
EXAI_API int exai_audit_event_set_target(exai_audit_event *ev, const char *target);
/** Sets `tenant`. */
EXAI_API int exai_audit_event_set_tenant(exai_audit_event *ev, const char *tenant);
/** Sets `workspace`. */
EXAI_API int exai_audit_event_set_workspace(exai_audit_event *ev, const char *workspace);
/** Sets `status_id`/`status` (OCSF): @p success true: 1 "Success", false: 2 "Failure". */
EXAI_API int exai_audit_event_set_outcome(exai_audit_event *ev, bool success);
/** Sets `detail.<key>` to a string. */
EXAI_API int exai_audit_event_set_detail_str(exai_audit_event *ev, const char *key, const char *value);
/** Sets `detail.<key>` to an integer (|value| <= 2^53). */
EXAI_API int exai_audit_event_set_detail_int(exai_audit_event *ev, const char *key, int64_t value);
/** Sets `detail.<key>` to a JSON value given as text. -EBADMSG when it does not parse. */
EXAI_API int exai_audit_event_set_detail_json(exai_audit_event *ev, const char *key, const char *json);

/**
 * Appends an event; on success *@p retseq (may be NULL) is its seq (::EXAI_AUDIT_SEQ_SPOOLED on
 * a spooling handle). With EXAI_AUDIT_SYNC the call returns once the event is durable. The
 * event is not consumed.
 * @retval -EINVAL reserved member (`seq`, `origin`, `prev`) set, forbidden member (prompt
 *         text), not an object; -EFBIG over max_event_size; -EROFS read-only or broken log
 *         (a write failed: nothing more is accepted); the log is unchanged on every failure
 */
EXAI_API int exai_audit_append(exai_audit_log *log, const exai_audit_event *ev, uint64_t *retseq);
/** Appends a caller's JSON object (text of @p len bytes); as exai_audit_append(). The text
 *  must be I-JSON: valid UTF-8, no duplicate names (-EBADMSG otherwise). */
EXAI_API int exai_audit_append_json(exai_audit_log *log, const char *json, size_t len, uint64_t *retseq);
/**
 * A keyed digest of @p data for an event (e.g. of a prompt that must not be stored):
 * "b2k:" + hex BLAKE2b-256 keyed with the log's digest key (created with the log, 0600).
 * Equal inputs give equal digests within one log; the digest reveals nothing without the key.
 * *@p ret is freed with exai_free().
 */
EXAI_API int exai_audit_digest(exai_audit_log *log, char **ret, const void *data, size_t len);
/** Makes everything appended so far durable (useful with EXAI_AUDIT_BATCH). */
EXAI_API int exai_audit_flush(exai_audit_log *log);
/** @} */

/** @name Tree, checkpoints and proofs @{ */
/** Number of durable events (the next seq once everything appended is flushed), counting a
 *  pruned prefix. With EXAI_AUDIT_BATCH it may trail the appends until the next flush. */
EXAI_API int exai_audit_size(exai_audit_log *log, uint64_t *retsize);
/**
 * Seals the current tree with a new checkpoint when events are unsealed (@p force: always),
 * and returns the latest checkpoint note, byte-exact (free with exai_free()). @p ret may be NULL.
 * -ENOENT when the log is empty and has no checkpoint.
 */
EXAI_API int exai_audit_checkpoint(exai_audit_log *log, char **ret, bool force);
/** The latest checkpoint note without writing one (-ENOENT when none). */
EXAI_API int exai_audit_latest_checkpoint(exai_audit_log *log, char **ret);
/** The log's verifier key `<origin>+<hex key id>+<base64(0x01||pubkey)>` (exai_free()). */
EXAI_API int exai_audit_vkey(exai_audit_log *log, char **ret);
/** The canonical bytes of event @p seq (the Merkle leaf); NUL-terminated, exai_free().
 *  -ENOENT: not appended yet or pruned. */
EXAI_API int exai_audit_leaf(exai_audit_log *log, uint64_t seq, char **ret, size_t *retlen);
/** The RFC 6962 root hash of the first @p size events (size <= exai_audit_size()). */
EXAI_API int exai_audit_root(exai_audit_log *log, uint64_t size, uint8_t ret[32]);
/**
 * RFC 9162 inclusion proof of event @p seq in the tree of @p size events: *@p ret is an array
 * of *@p retn hashes of 32 bytes (exai_free(); NULL when empty).
 * @retval -ERANGE seq >= size or size > exai_audit_size(); -ENOENT a needed part was pruned
 */
EXAI_API int exai_audit_prove(exai_audit_log *log, uint64_t seq, uint64_t size, uint8_t (**ret)[32],
			      size_t *retn);
/** RFC 9162 consistency proof from @p size1 to @p size2 (0 < size1 <= size2 <= size). */
EXAI_API int exai_audit_consistency(exai_audit_log *log, uint64_t size1, uint64_t size2,
				    uint8_t (**ret)[32], size_t *retn);

/** RFC 6962 leaf hash: SHA-256(0x00 || leaf). */
EXAI_API void exai_audit_merkle_leaf_hash(uint8_t ret[32], const void *leaf, size_t len);
/** RFC 6962 interior node hash: SHA-256(0x01 || left || right). */
EXAI_API void exai_audit_merkle_node_hash(uint8_t ret[32], const uint8_t left[32], const uint8_t right[32]);
/** Checks an RFC 9162 inclusion proof: 0 when valid, -EBADMSG otherwise (with a reason). */
EXAI_API int exai_audit_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf_hash[32],
						const uint8_t (*proof)[32], size_t n, const uint8_t root[32]);
/** Checks an RFC 9162 consistency proof: 0 when valid, -EBADMSG otherwise. size1 must be
 *  > 0 (a proof from the empty tree is meaningless). */
EXAI_API int exai_audit_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t (*proof)[32],
						  size_t n, const uint8_t root1[32], const uint8_t root2[32]);

/**
 * Opens a C2SP signed note (@p len bytes) with the verifier key @p vkey: 0 when the note is
 * well formed and carries a valid signature by that key; *@p rettext (may be NULL) is then the
 * signed text (exai_free()). -EBADMSG for a malformed note, a bad signature ("invalid
 * signature for key ...") or no signature by that key; -EINVAL for a malformed @p vkey.
 */
EXAI_API int exai_audit_note_open(char **rettext, const char *note, size_t len, const char *vkey);
/**
 * Parses a tlog-checkpoint note body (the text of a signed note): origin, tree size, root
 * hash. Extension lines are allowed and ignored. *@p retorigin may be NULL (else exai_free()).
 */
EXAI_API int exai_audit_checkpoint_parse(char **retorigin, uint64_t *retsize, uint8_t retroot[32],
					 const char *text, size_t len);
/** @} */

/** @name Verification @{ */
struct exai_audit_verify_result {
	size_t sz;                /**< sizeof(struct exai_audit_verify_result), set by the caller */
	uint64_t first_seq;       /**< first retained seq (after a verified prune record) */
	uint64_t events;          /**< events read and verified */
	uint64_t checkpoints;     /**< checkpoint signatures verified */
	uint64_t sealed_size;     /**< tree size of the last valid checkpoint */
	uint64_t unsealed;        /**< events after it (an unsealed tail: not yet signed) */
	int64_t bad_seq;          /**< -1, or the seq of the first bad record */
	char reason[256];         /**< why it is bad (also exai_errmsg()), "" when good */
};
/**
 * Verifies the log of @p origin under the state dir of @p ctx by re-reading its files only
 * (no writer state is trusted): segment framing, seq order, the hash chain, the Merkle tree
 * against every checkpoint and every checkpoint's (and prune record's) signature by @p vkey
 * (NULL: the log's own `signing.pub` — an auditor passes the key it trusts).
 * @p res may be NULL. Returns 0 when everything verifies, -EBADMSG naming the first bad
 * record ("seq N: reason"), -ENOENT when there is no such log.
 */
EXAI_API int exai_audit_verify(exai_ctx *ctx, const char *origin, const char *vkey,
			       struct exai_audit_verify_result *res);
/** @} */

/** @name Retention @{ */
/**
 * Removes whole segments whose events are all older than the retention period (or, with
 * @p before_ms non-zero, older than that time), never the current segment and never events
 * that a registered sink has not yet delivered. Writes a signed prune record first (a file
 * `pruned` and a record in the stream) stating the new first seq and the tree state there, so
 * that proofs for retained events stay valid. *@p retfirst (may be NULL): first retained seq.
 */
EXAI_API int exai_audit_prune(exai_audit_log *log, int64_t before_ms, uint64_t *retfirst);
/** @} */

/** @name Context attachment @{ */
/**
 * Attaches @p log to @p ctx: events other modules emit through the context land in the log.
 * -EBUSY when another log is attached. Detach before closing the log.
 */
EXAI_API int exai_audit_attach(exai_ctx *ctx, exai_audit_log *log);
/** Detaches @p log from @p ctx (no-op when it is not attached). */
EXAI_API int exai_audit_detach(exai_ctx *ctx, exai_audit_log *log);
/** @} */

/** @name Sinks @{ */
/** Sink kinds. */
enum exai_audit_sink_kind {
	EXAI_AUDIT_SINK_JSONL = 1,    /**< JSON lines, OCSF-shaped, to a file (or "-": stdout) */
	EXAI_AUDIT_SINK_POSTGRES = 2, /**< PostgreSQL (libpq), batched COPY, idempotent */
	EXAI_AUDIT_SINK_NATS = 3,     /**< NATS JetStream (nats.c) */
};

struct exai_audit_sink_opts {
	size_t sz;            /**< sizeof(struct exai_audit_sink_opts); set by EXAI_OPTS() */
	int kind;             /**< ::exai_audit_sink_kind */
	/** Unique name per log: cursor file `sinks/<name>.cursor`. [A-Za-z0-9_-]{1,64}. */
	const char *name;
	/** JSONL: a path or "-"; POSTGRES: a libpq connection string; NATS: a server URL. */
	const char *target;
	uint32_t batch;           /**< events per delivery; 0: 1000 */
	uint32_t retry_ms;        /**< delay after a failure; 0: 200 */
	uint64_t max_backlog;     /**< backlog reported as over its bound above this; 0: 10^7 */
};
/**
 * Starts delivering the log to a sink, at least once, from its persisted cursor (0 when new)
 * in a background thread. Appends never wait for a sink: the log is the spool. Delivery goes
 * on across outages with retries.
 * @retval -EINVAL bad options; -ENOTSUP the kind is not built in; -EEXIST name in use
 */
EXAI_API int exai_audit_sink_add(exai_audit_log *log, const struct exai_audit_sink_opts *opts);

struct exai_audit_sink_status {
	char name[72];
	int kind;
	uint64_t cursor;       /**< next seq to deliver */
	uint64_t backlog;      /**< durable events not yet delivered */
	bool over_bound;       /**< backlog > max_backlog */
	uint64_t delivered;    /**< events delivered since the sink started */
	uint64_t failures;     /**< failed delivery attempts since it started */
	char last_error[200];  /**< the last failure, "" if none */
};
/**
 * The state of the log's sinks: up to @p max entries in @p ret, *@p retn the number of sinks.
 * Sinks known only from cursor files (not running in this process) are reported with
 * kind 0 and their persisted cursor.
 */
EXAI_API int exai_audit_sink_status(exai_audit_log *log, struct exai_audit_sink_status *ret, size_t max,
				    size_t *retn);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* EXAI_AUDIT_H */
