/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core-internal.h: what the other modules of libexai may use of the core module.
 * Nothing here is exported; internal names carry the `exai__` prefix so that they cannot
 * collide with an embedder's symbols when libexai is linked statically.
 */
#ifndef EXAI_CORE_INTERNAL_H
#define EXAI_CORE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "exai/core.h"

#define EXAI__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define EXAI__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define EXAI__WUR __attribute__((warn_unused_result))

/* ---- errors (error.c) ------------------------------------------------------------------- */

/* Sets the calling thread's error sentence and returns @err (a negative errno). */
int exai__err(int err, const char *fmt, ...) EXAI__PRINTF(2, 3);
/* Same, appending ": <strerror(-err)>". */
int exai__err_sys(int err, const char *fmt, ...) EXAI__PRINTF(2, 3);
/* -errno of the last failed libc call, never 0 (falls back to -EIO). */
int exai__neg_errno(void);

/* ---- options structs (ctx.c) ------------------------------------------------------------ */

/* Checks the `sz` header of an options struct: NULL is fine; sz smaller than the sz field is
 * -EINVAL; bytes past what this library knows (known_sz) must be zero, else -E2BIG. */
int exai__opts_check(const void *opts, size_t known_sz, const char *type_name);
#define EXAI__OPTS_CHECK(opts, type) exai__opts_check((opts), sizeof(struct type), #type)
/* Whether the caller's struct is large enough to hold @field. */
#define EXAI__OPTS_HAS(opts, field)                                                                \
	((opts) && offsetof(__typeof__(*(opts)), field) + sizeof((opts)->field) <= (opts)->sz)
/* The field's value when present and non-zero, else @def. */
#define EXAI__OPT(opts, field, def)                                                                \
	((EXAI__OPTS_HAS(opts, field) && (opts)->field) ? (opts)->field : (def))

/* ---- context (ctx.c) -------------------------------------------------------------------- */

/* The attached event sink (the audit module installs one): takes a reference to @event. */
typedef int (*exai__emit_fn)(void *data, json_t *event);

struct exai_ctx {
	atomic_int refs;
	char *state_dir;
	pthread_mutex_t lock; /* guards the fields below */
	exai_log_fn log_fn;
	void *log_userdata;
	int log_level;
	exai__emit_fn emit;
	void *emit_data;
};

void exai__log(exai_ctx *ctx, int level, const char *module, const char *fmt, ...)
	EXAI__PRINTF(4, 5);
#define exai__log_err(ctx, mod, ...) exai__log((ctx), EXAI_LOG_ERROR, (mod), __VA_ARGS__)
#define exai__log_warn(ctx, mod, ...) exai__log((ctx), EXAI_LOG_WARNING, (mod), __VA_ARGS__)
#define exai__log_info(ctx, mod, ...) exai__log((ctx), EXAI_LOG_INFO, (mod), __VA_ARGS__)
#define exai__log_debug(ctx, mod, ...) exai__log((ctx), EXAI_LOG_DEBUG, (mod), __VA_ARGS__)

/* Installs (or with fn == NULL removes) the context's event sink. -EBUSY if another is set. */
int exai__ctx_set_emitter(exai_ctx *ctx, exai__emit_fn fn, void *data);
/* Hands an event object to the attached sink. 0 when no sink is attached. The caller keeps
 * its reference to @event. */
int exai__ctx_emit(exai_ctx *ctx, json_t *event);
/* Creates the state directory (0700) if missing and returns 0, or a negative errno. */
int exai__ctx_ensure_state_dir(exai_ctx *ctx);

/* ---- growable byte buffer (buf.c) ------------------------------------------------------- */

struct exai__buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
};
int exai__buf_reserve(struct exai__buf *b, size_t extra) EXAI__WUR;
int exai__buf_append(struct exai__buf *b, const void *p, size_t n) EXAI__WUR;
int exai__buf_putc(struct exai__buf *b, char c) EXAI__WUR;
int exai__buf_printf(struct exai__buf *b, const char *fmt, ...) EXAI__PRINTF(2, 3) EXAI__WUR;
/* Hands the contents over (NUL-terminated; an empty buffer gives ""), leaving @b empty. */
char *exai__buf_steal(struct exai__buf *b, size_t *retlen);
void exai__buf_free(struct exai__buf *b);

/* ---- files (fs.c) ----------------------------------------------------------------------- */

/* mkdir -p with @mode for each created component. */
int exai__mkdir_p(const char *path, mode_t mode);
/* Crash-safe replace: write to a temporary file beside @path, fsync it, rename it over
 * @path, fsync the directory. The file gets @mode. */
int exai__write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole regular file of at most @max bytes (NUL-terminated, not counted).
 * -EFBIG when larger. Free with free(). */
int exai__read_file(const char *path, size_t max, char **ret, size_t *retlen);
/* fsync the directory that holds @path. */
int exai__fsync_parent(const char *path);
/* write() all of it, retrying on EINTR and short writes. */
int exai__write_all(int fd, const void *p, size_t n);
/* Joins @dir and @name with one '/'; NULL on allocation failure. */
char *exai__path_join(const char *dir, const char *name);

/* ---- JSON (jcs.c) ----------------------------------------------------------------------- */

/* Appends the RFC 8785 canonical form of @v to @b. Integers must be exactly representable as
 * doubles (|v| <= 2^53), else -ERANGE; reals must be finite. */
int exai__jcs_append(struct exai__buf *b, const json_t *v);
/* Canonical form of @v, NUL-terminated; free() it. */
int exai__jcs_dump(const json_t *v, char **ret, size_t *retlen);
/* Whether [p, p+n) is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF). */
bool exai__utf8_valid(const char *p, size_t n);
/* json_loadb() with jansson @flags and errors that tell bad input (-EBADMSG, the sentence giving
 * line, column and reason; -ERANGE for a number that overflows) from a failed allocation
 * (-ENOMEM), which jansson reports as a syntax error. */
int exai__json_load(json_t **ret, const char *json, size_t len, size_t flags);
/* Parses I-JSON the way JCS wants it (numbers as doubles, duplicate names rejected). */
int exai__json_parse(json_t **ret, const char *json, size_t len);
/* ECMAScript Number::toString of a finite double into @out (at least 32 bytes). */
int exai__jcs_number(double d, char out[static 32]);

/* ---- secure memory (memory.c) ----------------------------------------------------------- */

/* sodium_init() once; -ENOSYS-like failures reported as -EIO. Thread-safe. */
int exai__sodium_init(void);

#endif /* EXAI_CORE_INTERNAL_H */
