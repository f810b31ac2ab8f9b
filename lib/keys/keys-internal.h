/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys-internal.h: what the other modules of libexai may use of the keys module, and what the
 * files of the keys module share. Internal names carry the `exai__` prefix.
 */
#ifndef EXAI_KEYS_INTERNAL_H
#define EXAI_KEYS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core-internal.h"
#include "exai/keys.h"

#define EXAI__KEY_LEN 32u

/* ---- sign.c ------------------------------------------------------------------------------ */

/* Plain Ed25519 (RFC 8032) verification, the primitive under the minisign format; also for
 * the audit module's signed notes. 0, or -EBADMSG when the signature does not verify. */
int exai__ed25519_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pk[32]);

/* Tests only: encrypt new secret keys with libsodium's "interactive" scrypt limits (16 MiB)
 * instead of minisign's "sensitive" ones (1 GiB). The file format is the same. */
extern bool exai__sign_kdf_light;

/* ---- util.c ------------------------------------------------------------------------------ */

/* Reads a whole small file into exai_secure_alloc memory (NUL-terminated, not counted).
 * With @private_only, refuses (-EACCES) a file that its group or others may read or write.
 * Free with exai_secure_free(). */
int exai__read_secret_file(const char *path, size_t max, bool private_only, char **ret, size_t *retlen);
/* Creates @path with @data only when it does not exist yet (-EEXIST), crash-safe. */
int exai__write_new_file(const char *path, const void *data, size_t len, mode_t mode);
/* Prefixes the current error sentence with "@prefix: " and returns @err. */
int exai__err_prefix(int err, const char *prefix);
/* Big-endian loads and stores. */
static inline void exai__be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void exai__be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void exai__be64(uint8_t *p, uint64_t v) { exai__be32(p, (uint32_t)(v >> 32)); exai__be32(p + 4, (uint32_t)v); }
static inline uint16_t exai__ld16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t exai__ld32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif /* EXAI_KEYS_INTERNAL_H */
