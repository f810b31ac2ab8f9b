/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file exai/core.h
 * @brief libexai core: context, errors, logging, secure memory, versions, RFC 8785 JSON.
 *
 * Conventions that hold for the whole library (see docs/hacking.md):
 *
 * - Functions that can fail return `int`: 0 on success, a negative errno on failure
 *   (`-EINVAL` bad argument, `-ENOMEM`, `-ENOENT`, `-EACCES` policy or key denial,
 *   `-EBADMSG` authentication failure, `-E2BIG` unknown non-zero options tail, ...).
 *   After a failure, exai_errmsg() gives the human sentence for it on the failing thread.
 * - Out-parameters come first and are named `ret...`; they are left untouched on failure.
 * - Shared objects have `_ref`/`_unref`, single-owner objects `_free`; all accept NULL.
 *   Strings and buffers the library returns are released with exai_free().
 * - Option structs start with `size_t sz` (set it with EXAI_OPTS()); a zero field means
 *   "default"; fields are only ever appended. A caller built against a newer header that sets
 *   fields this library does not know gets `-E2BIG`.
 * - The library never prints. It reports through the context's log callback, silent by
 *   default, and never passes key material or secret plaintext to it.
 * - Allocation failure is never fatal: every call that allocates can return `-ENOMEM`
 *   and leaves its objects as they were.
 *
 * Threads: an ::exai_ctx may be shared between threads (all its functions are thread-safe).
 * Every other handle is used by one thread at a time unless its header says otherwise.
 */
#ifndef EXAI_CORE_H
#define EXAI_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a declaration exported from the shared library (all else is hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define EXAI_API __attribute__((visibility("default")))
#else
#define EXAI_API
#endif

/** @name Version
 * The header's version. exai_version() gives the version of the library actually loaded. @{ */
#define EXAI_VERSION_MAJOR 0
#define EXAI_VERSION_MINOR 1
#define EXAI_VERSION_PATCH 0
/** (major << 16) | (minor << 8) | patch, for compile-time comparisons. */
#define EXAI_VERSION_NUMBER ((EXAI_VERSION_MAJOR << 16) | (EXAI_VERSION_MINOR << 8) | EXAI_VERSION_PATCH)

/** The loaded library's version as "MAJOR.MINOR.PATCH"; static, never NULL. */
EXAI_API const char *exai_version(void);
/** The loaded library's version as EXAI_VERSION_NUMBER would give it. */
EXAI_API uint32_t exai_version_number(void);
/** @} */

/** @name Optional features
 * What this build of the library was compiled with. Whether a feature can be *used* on this
 * host (a `/dev/kvm`, a QEMU binary, a BPF-capable kernel) is a separate run-time question
 * that the module concerned answers. @{ */
enum exai_feature {
	EXAI_FEATURE_QEMU = 1u << 0,        /**< QEMU `microvm` VM backend */
	EXAI_FEATURE_FIRECRACKER = 1u << 1, /**< Firecracker VM backend */
	EXAI_FEATURE_PKCS11 = 1u << 2,      /**< PKCS#11 KMS provider (HSMs) */
	EXAI_FEATURE_BPF = 1u << 3,         /**< eBPF egress policy */
	EXAI_FEATURE_POSTGRES = 1u << 4,    /**< PostgreSQL audit sink */
	EXAI_FEATURE_NATS = 1u << 5,        /**< NATS JetStream audit sink */
	EXAI_FEATURE_SCRUB = 1u << 6,       /**< prompt scrubber (Hyperscan/Vectorscan + PCRE2) */
	EXAI_FEATURE_CRYPTSETUP = 1u << 7,  /**< dm-crypt disks for Firecracker (libcryptsetup) */
};
/** The bitwise OR of the ::exai_feature values this library was built with. */
EXAI_API uint64_t exai_features(void);
/** The lower-case name of one ::exai_feature bit ("bpf", "pkcs11", ...); NULL for an unknown bit. */
EXAI_API const char *exai_feature_name(uint64_t feature);
/** @} */

/** @name Errors @{ */
/**
 * The sentence that describes the last failure on the calling thread: what failed and why,
 * naming the offending option, field, file or key. Valid until the next libexai call on the
 * same thread. Never NULL (an empty string when nothing has failed) and never contains key
 * material or secret plaintext.
 */
EXAI_API const char *exai_errmsg(void);
/** A short static description of a negative errno value returned by libexai; never NULL. */
EXAI_API const char *exai_strerror(int err);
/** @} */

/** @name Memory @{ */
/** Releases a string or buffer the library returned. NULL is accepted. */
EXAI_API void exai_free(void *p);
/**
 * Allocates @p size bytes for key material or secrets: locked in RAM (never swapped),
 * excluded from core dumps, guarded by inaccessible pages, and wiped when freed.
 * Returns NULL (errno = ENOMEM) on failure. Release with exai_secure_free().
 */
EXAI_API void *exai_secure_alloc(size_t size);
/** Wipes and releases memory from exai_secure_alloc(). NULL is accepted. */
EXAI_API void exai_secure_free(void *p);
/** Overwrites @p n bytes at @p p with zeros in a way the compiler cannot elide. */
EXAI_API void exai_memzero(void *p, size_t n);
/** Compares @p n bytes in time independent of their contents: 0 when equal, -1 otherwise. */
EXAI_API int exai_memeq_ct(const void *a, const void *b, size_t n);
/** @} */

/** @name Options structs @{ */
/**
 * Declares and initialises an options struct: sets `sz` and zeroes every other field
 * before applying the designated initialisers, e.g.
 * `EXAI_OPTS(exai_ctx_opts, o, .state_dir = "/tmp/x");`.
 * (C only: designated initialisers need C99, or C++20 in C++.)
 */
#define EXAI_OPTS(TYPE, NAME, ...)                                                                 \
	struct TYPE NAME = ((struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ })
/** @} */

/** @name Logging @{ */
/** Log levels; the numbers are syslog's, so they can be passed on as they are. */
enum exai_log_level {
	EXAI_LOG_ERROR = 3,
	EXAI_LOG_WARNING = 4,
	EXAI_LOG_NOTICE = 5,
	EXAI_LOG_INFO = 6,
	EXAI_LOG_DEBUG = 7,
};
/**
 * A log callback. @p module is the library module ("core", "keys", "audit", ...), @p message
 * one line without a trailing newline. Called from whichever thread logs, possibly at once
 * from several: the callback must be thread-safe. It must not call back into the context.
 */
typedef void (*exai_log_fn)(void *userdata, int level, const char *module, const char *message);
/** The lower-case name of a ::exai_log_level ("error", "warning", "notice", "info", "debug");
 *  static; NULL for any other value. Thread-safe. */
EXAI_API const char *exai_log_level_name(int level);
/** @} */

/** @name Context @{ */
/** The library context: state directory, logging, attached audit log. Thread-safe. */
typedef struct exai_ctx exai_ctx;

/** Flags for exai_ctx_opts::flags. */
enum exai_ctx_flags {
	/**
	 * Harden the whole process for holding keys: no core dumps (RLIMIT_CORE = 0) and not
	 * dumpable (PR_SET_DUMPABLE = 0, which also blocks ptrace by other unprivileged
	 * processes). Process-wide and irreversible: meant for exaid, exaictl and services
	 * that own the process; embedders decide for themselves.
	 */
	EXAI_CTX_HARDEN_PROCESS = 1u << 0,
};

struct exai_ctx_opts {
	size_t sz; /**< sizeof(struct exai_ctx_opts); set by EXAI_OPTS() */
	/** State directory; NULL: `$EXAI_STATE_DIR` if set and non-empty, else `/var/lib/exai`
	 *  (the build's default). Must be an absolute path. Created (0700) when first needed. */
	const char *state_dir;
	exai_log_fn log_fn;  /**< NULL: silent */
	void *log_userdata;  /**< passed to log_fn */
	int log_level;       /**< most verbose level passed to log_fn; 0: EXAI_LOG_INFO */
	uint32_t flags;      /**< ::exai_ctx_flags */
};

/**
 * Creates a context. @p opts may be NULL for all defaults.
 * @retval -EINVAL state_dir (or EXAI_STATE_DIR) is not an absolute path, log_level or flags
 *         are out of range, or opts->sz is smaller than the `sz` field
 * @retval -E2BIG  opts sets fields this library version does not know
 * @retval -ENOMEM
 */
EXAI_API int exai_ctx_new(exai_ctx **ret, const struct exai_ctx_opts *opts);
/** Takes a reference; returns @p ctx. NULL is accepted. */
EXAI_API exai_ctx *exai_ctx_ref(exai_ctx *ctx);
/** Drops a reference and frees the context with the last; returns NULL. NULL is accepted. */
EXAI_API exai_ctx *exai_ctx_unref(exai_ctx *ctx);
/** The context's state directory (absolute, without a trailing slash). Never NULL. */
EXAI_API const char *exai_ctx_state_dir(const exai_ctx *ctx);
/** Replaces the log callback and level at run time (NULL @p fn: silent). */
EXAI_API int exai_ctx_set_log(exai_ctx *ctx, exai_log_fn fn, void *userdata, int level);
/** @} */

/** @name RFC 8785 JSON canonicalisation (JCS) @{ */
/**
 * Canonicalises one JSON text per RFC 8785: members sorted by the UTF-16 code units of their
 * names, no insignificant white space, strings escaped minimally, numbers in ECMAScript
 * Number-to-String form. The input must be I-JSON (RFC 7493): valid UTF-8, no duplicate
 * member names, numbers that are finite IEEE-754 doubles. A member name containing U+0000 is
 * refused (-EBADMSG); U+0000 inside string values is kept (escaped as \u0000).
 *
 * On success *@p ret is a NUL-terminated string of *@p retlen bytes (the NUL not counted),
 * released with exai_free(). @p retlen may be NULL.
 * @retval -EINVAL @p json is NULL or @p len is 0
 * @retval -EBADMSG not a single valid JSON text; exai_errmsg() gives line, column and reason
 * @retval -ERANGE a number overflows a double
 * @retval -ENOMEM
 */
EXAI_API int exai_jcs_canonicalize(char **ret, size_t *retlen, const char *json, size_t len);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* EXAI_CORE_H */
