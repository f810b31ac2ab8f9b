/* SPDX-License-Identifier: Apache-2.0 */
/* audit-internal.h: the audit module's internals (formats: docs/formats/audit.md). */
#ifndef EXAI_AUDIT_INTERNAL_H
#define EXAI_AUDIT_INTERNAL_H

#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include "core-internal.h"
#include "exai/audit.h"

/* exai_errmsg() copied out, to be passed to exai__err() (which must not read the buffer it
 * writes): `EXAI__WHY(why); return exai__err(r, "context: %s", why);` */
#define EXAI__WHY(name)                                                                            \
	char name[512];                                                                            \
	snprintf(name, sizeof(name), "%s", exai_errmsg())

/* ---- hashes (hash.c) ------------------------------------------------------------------- */

uint32_t exai__crc32c(uint32_t crc, const void *p, size_t n);
void exai__sha256(uint8_t out[32], const void *p, size_t n);
/* SHA-256 of @a followed by @b. */
void exai__sha256_2(uint8_t out[32], const void *a, size_t an, const void *b, size_t bn);
/* A NUL-terminated copy of @n bytes that need not be terminated; free(). */
char *exai__strndup(const char *p, size_t n);
/* Lower-case hex of @n bytes into @out (2n+1 bytes). */
void exai__hex(char *out, const uint8_t *p, size_t n);
/* Standard base64 with padding, NUL-terminated; @out needs 4*((n+2)/3)+1 bytes. */
void exai__b64(char *out, const uint8_t *p, size_t n);
/* Decodes standard base64 (padding required, nothing else allowed) into at most @max bytes. */
int exai__unb64(uint8_t *out, size_t max, size_t *retlen, const char *s, size_t n);

/* ---- Merkle tree (merkle.c) ------------------------------------------------------------ */

#define EXAI__MERKLE_MAX 64
/* Compact range [0, size): one hash per set bit of size, the largest subtree first
 * (RFC 6962 right edge). */
struct exai__merkle {
	uint64_t size;
	uint8_t h[EXAI__MERKLE_MAX][32];
	unsigned n;
};
void exai__merkle_push(struct exai__merkle *m, const uint8_t leaf_hash[32]);
void exai__merkle_root(const struct exai__merkle *m, uint8_t out[32]);

/* A source of leaf hashes for proofs: @leaves reads hashes [lo, lo+n). Leaves below @pruned
 * are gone; their subtrees are the compact range @prefix (of size @pruned). */
struct exai__merkle_src {
	int (*leaves)(void *data, uint64_t lo, uint64_t n, uint8_t (*out)[32]);
	void *data;
	uint64_t pruned;
	const struct exai__merkle *prefix;
};
int exai__merkle_subtree(const struct exai__merkle_src *src, uint64_t lo, uint64_t hi, uint8_t out[32]);
int exai__merkle_inclusion(const struct exai__merkle_src *src, uint64_t index, uint64_t size,
			   uint8_t (**ret)[32], size_t *retn);
int exai__merkle_consistency(const struct exai__merkle_src *src, uint64_t size1, uint64_t size2,
			     uint8_t (**ret)[32], size_t *retn);

/* ---- signed notes and keys (note.c) ---------------------------------------------------- */

/* The log's signing key: an Ed25519 key in locked memory (sk NULL for a reader, which loads
 * only signing.pub). A writer keeps it sealed as an envelope message under a tenant keyring
 * (signing.key.sealed) when @tenant, or else the host keyring, exists; otherwise in a 0600 file
 * (signing.key). A plain key is sealed, and the file wiped, once a keyring exists. */
struct exai__signer {
	char *name;
	uint8_t pk[32];
	uint8_t *sk; /* 64 bytes, sodium_malloc'ed */
	uint32_t keyid;
};
int exai__audit_signer_load(struct exai__signer *s, exai_ctx *ctx, const char *dir, const char *name,
			    const char *tenant, bool create);
void exai__audit_signer_free(struct exai__signer *s);
/* Signs @text (must end in '\n'): a complete signed note, NUL-terminated, free(). */
int exai__note_sign(const struct exai__signer *s, const char *text, size_t len, char **ret, size_t *retlen);
/* The vkey string of a signer, free(). */
char *exai__signer_vkey(const struct exai__signer *s);
uint32_t exai__note_keyid(const char *name, const uint8_t pk[32]);
/* A parsed verifier key. */
struct exai__vkey {
	char name[256];
	uint32_t keyid;
	uint8_t pk[32];
};
int exai__vkey_parse(struct exai__vkey *v, const char *vkey);
/* Opens @note: 0 when valid and signed by @v; *@rettextlen: length of the signed text. */
int exai__note_verify(const struct exai__vkey *v, const char *note, size_t len, size_t *rettextlen);
/* Checkpoint body "origin\nsize\nbase64(root)\n". */
int exai__checkpoint_text(char **ret, size_t *retlen, const char *origin, uint64_t size, const uint8_t root[32]);
bool exai__origin_valid(const char *origin);

struct exai__rec {
	int type;
	uint64_t seq;
	const char *payload;
	uint32_t len;
};

/* ---- events (event.c) ------------------------------------------------------------------ */

struct exai_audit_event {
	json_t *obj;
};
/* An event's canonical members without the log's own (JCS order, comma-separated, no braces),
 * with `time` (when absent) and `v` merged in, and the offsets where `origin`, `prev` and
 * `seq` go. Consumes nothing. */
struct exai__event_parts {
	struct exai__buf text;
	size_t cut[3];
};
int exai__event_prepare(struct exai__event_parts *p, json_t *obj, size_t max_size);
/* The same from JSON text without a parse tree, for text whose strings and numbers are in
 * canonical form already and whose names need no escapes (what producers usually write):
 * white space dropped, members sorted. -EAGAIN: anything else (escaped, forbidden, reserved
 * or duplicate names, other number or string forms, a non-integer time, depth > 64, not an
 * object): take exai__event_parse() and exai__event_prepare(), which decide. */
int exai__event_prepare_text(struct exai__event_parts *p, const char *text, size_t len, size_t max_size);
bool exai__event_name_forbidden(const char *name, size_t len);
bool exai__event_name_reserved(const char *name, size_t len);
/* canon.c: the canonical form of such text into @out (reset first; NUL-terminated). */
int exai__canon_reorder(struct exai__buf *out, const char *p, size_t n, bool *rethas_time);
void exai__event_parts_free(struct exai__event_parts *p);
/* Assembles the canonical bytes with the log's fields into @out (reset first). */
int exai__event_assemble(struct exai__buf *out, const struct exai__event_parts *p, const char *origin,
			 const char *prev_hex, uint64_t seq);
int64_t exai__now_ms(void);

/* ---- spool.c: events of a process that finds the log held by another (docs/audit.md) ---- */
struct exai__spool {
	int fd;        /* flock()ed until closed */
	char *path;
	uint64_t len;  /* bytes written and accepted */
	int broken;
};
int exai__spool_open(struct exai__spool *sp, const char *logdir);
/* Appends one event line "{" @members "}" (canonical members, without the log's own). */
int exai__spool_write(struct exai__spool *sp, const char *members, size_t len, bool sync);
int exai__spool_flush(struct exai__spool *sp);
int exai__spool_close(struct exai__spool *sp);
/* The ingest journal's text: the spool file's name (free()) and the log's size before it. */
int exai__spool_journal_parse(const char *text, size_t len, char **retfile, uint64_t *retfirst);
/* The writer's side: chains every spool file whose process has closed it, oldest first. */
int exai__spool_ingest(exai_audit_log *log);
/* log.c, for the ingest: no other append runs between begin and end; begin makes what was
 * appended before durable and returns the log's size, end makes the ingested events durable. */
uint64_t exai__log_ingest_begin(exai_audit_log *log);
int exai__log_ingest_end(exai_audit_log *log);
/* exai_audit_append_json() for a spooled line, without waiting for durability. */
int exai__log_append_spooled(exai_audit_log *log, const char *json, size_t len);
/* -EBUSY (with its sentence) when @log only spools events, else 0. */
int exai__log_spooling(const exai_audit_log *log);
/* The top-level members the chain needs, picked out by exai__canon_check(). */
enum { EXAI__TOP_TIME, EXAI__TOP_CLASS_UID, EXAI__TOP_ACTIVITY_ID, EXAI__TOP_NUMS };
enum { EXAI__TOP_ACTIVITY_NAME, EXAI__TOP_TENANT, EXAI__TOP_WORKSPACE, EXAI__TOP_STRS };
struct exai__event_top {
	uint64_t seq;
	bool has_seq, has_v;
	double v;
	const char *prev, *origin; /* raw string contents inside the bytes checked */
	size_t prev_len, origin_len;
	/* For the sinks' columns, when @columns is set by the caller (the check clears the rest):
	 * top-level numbers, and strings raw (still JSON-escaped). */
	bool columns;
	bool has_num[EXAI__TOP_NUMS];
	double num[EXAI__TOP_NUMS];
	const char *str[EXAI__TOP_STRS];
	size_t str_len[EXAI__TOP_STRS];
};
/* 0 when @p is exactly the RFC 8785 form of a JSON object (canon.c); -EBADMSG with the reason
 * otherwise; -E2BIG for a member name longer than it checks in one pass. */
int exai__canon_check(const char *p, size_t n, struct exai__event_top *top);
/* Parses I-JSON as exai__json_parse() does, but keeps integers as integers (faster JCS). */
int exai__event_parse(json_t **ret, const char *text, size_t len);
/* Checks a stored event record against the chain: seq, prev, origin, canonical form (verify.c). */
int exai__event_check(const struct exai__rec *rec, uint64_t want_seq, const char *want_prev, const char *origin);

/* ---- segments (segment.c) -------------------------------------------------------------- */

#define EXAI__SEG_MAGIC "EXAIAUD1"
#define EXAI__SEG_HDR 32
#define EXAI__REC_MAGIC 0x31524558u /* bytes "XER1" */
#define EXAI__REC_HDR 20
#define EXAI__REC_TRAILER 4
#define EXAI__REC_MAX (32u << 20)
enum { EXAI__REC_EVENT = 1, EXAI__REC_CHECKPOINT = 2, EXAI__REC_PRUNE = 3 };
#define EXAI__IDX_ENTRY 40 /* u64 offset, 32-byte leaf hash */

void exai__seg_header(uint8_t out[EXAI__SEG_HDR], uint64_t first_seq);
int exai__seg_header_check(const uint8_t *p, size_t n, uint64_t *retfirst);
/* Appends one framed record to @b. */
int exai__rec_frame(struct exai__buf *b, int type, uint64_t seq, const void *payload, size_t len);
/* Decodes one record at @p (@avail bytes). 0 and *@retlen = total frame length when good;
 * -EAGAIN when truncated; -EBADMSG when bad (reason in errmsg). */
int exai__rec_decode(struct exai__rec *r, const uint8_t *p, size_t avail, size_t *retlen);

/* The files of one log directory: segments sorted by first seq. */
struct exai__seglist {
	uint64_t *first;
	size_t n;
};
int exai__seglist_load(struct exai__seglist *l, const char *dir);
void exai__seglist_free(struct exai__seglist *l);
char *exai__seg_path(const char *dir, uint64_t first, const char *ext);
char *exai__log_dir(exai_ctx *ctx, const char *origin);

/* Prune record: the signed note's text is the canonical JSON + "\n". */
struct exai__prune {
	uint64_t first_seq;
	char prev[65];
	struct exai__merkle prefix;
};
int exai__prune_parse(struct exai__prune *p, const char *text, size_t len);

/* ---- the log (log.c) ------------------------------------------------------------------- */

struct exai__sink;
int exai__log_read_event(exai_audit_log *log, uint64_t seq, char **ret, size_t *retlen);
/* Reads records from seq @from on (events and the checkpoints after them), up to @max
 * events and not past the durable size; calls @fn for each. */
int exai__log_scan(exai_audit_log *log, uint64_t from, uint64_t max,
		   int (*fn)(void *d, const struct exai__rec *r), void *d);
uint64_t exai__log_durable(exai_audit_log *log);
uint64_t exai__log_flushes(exai_audit_log *log);
/* First retained seq (0 unless pruned). */
uint64_t exai__log_pruned(exai_audit_log *log);
/* What sinks may deliver: the durable size; for a reader (another process writes), the
 * size of the last checkpoint the writer made durable. */
uint64_t exai__log_deliverable(exai_audit_log *log);
/* Waits up to @ms for the durable size to pass @seq (or the log to close); a reader sleeps
 * @ms and then follows the writer (exai__log_deliverable()). */
void exai__log_wait(exai_audit_log *log, uint64_t seq, int ms);
bool exai__log_closing(exai_audit_log *log);
const char *exai__log_origin(exai_audit_log *log);
const char *exai__log_path(exai_audit_log *log);
exai_ctx *exai__log_ctx(exai_audit_log *log);
struct exai__sink **exai__log_sinks(exai_audit_log *log);
pthread_mutex_t *exai__log_mutex(exai_audit_log *log);

/* ---- sinks (sink.c, sink-*.c) ---------------------------------------------------------- */

struct exai__sink_ops {
	/* Delivers the events in @recs (and checkpoints); 0 when all are acknowledged. May
	 * move *@cursor back or forward (the server's view) in which case the batch is redone. */
	int (*deliver)(struct exai__sink *s, const struct exai__rec *recs, size_t n, uint64_t *cursor);
	/* (Re)connects; may set *cursor from the server's state. */
	int (*connect)(struct exai__sink *s, uint64_t *cursor);
	void (*disconnect)(struct exai__sink *s);
};
struct exai__sink {
	exai_audit_log *log;
	struct exai_audit_sink_status st;
	const struct exai__sink_ops *ops;
	char *target;
	char *cursor_path;
	uint32_t batch, retry_ms;
	uint64_t max_backlog;
	pthread_t thread;
	bool stop;
	void *impl;
	struct exai__sink *next;
};
int exai__sink_jsonl_init(struct exai__sink *s);
int exai__sink_pg_init(struct exai__sink *s);
int exai__sink_nats_init(struct exai__sink *s);
void exai__sinks_stop(exai_audit_log *log);
/* The lowest of @limit, every running sink's cursor and every persisted cursor file. */
uint64_t exai__sinks_min_cursor(exai_audit_log *log, uint64_t limit);
/* OCSF-shaped JSON line of an event record (canonical event + "\n"), free(). */
int exai__sink_event_line(const struct exai__rec *r, struct exai__buf *out);

#endif
