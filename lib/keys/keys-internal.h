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
/* Plain Ed25519 signature of @msg with a (minisign-format) signing key: for formats other
 * than minisign's, such as the audit module's C2SP signed notes. */
int exai__ed25519_sign(uint8_t sig[64], const exai_sign_key *key, const void *msg, size_t len);
/* The raw 32-byte Ed25519 public key. */
void exai__sign_pubkey_raw(const exai_sign_pubkey *pk, uint8_t out[32]);

/* Tests only: encrypt new secret keys with libsodium's "interactive" scrypt limits (16 MiB)
 * instead of minisign's "sensitive" ones (1 GiB). The file format is the same. */
extern bool exai__sign_kdf_light;

/* ---- crypto.c: OpenSSL EVP wrappers ------------------------------------------------------ */

/* The longest GCM IV OpenSSL takes (its GCM_IV_MAX_SIZE); we use 12 bytes. */
#define EXAI__GCM_IV_MAX 128u
/* AES-GCM with one key for many messages (a cipher context keeps the key schedule). */
struct exai__gcm {
	struct evp_cipher_ctx_st *ctx;
	bool encrypt;
};
int exai__gcm_init(struct exai__gcm *g, const uint8_t *key, size_t keylen, bool encrypt);
void exai__gcm_done(struct exai__gcm *g);
/* Encrypts @len bytes (out may equal in) and writes @taglen bytes of tag. */
int exai__gcm_seal(struct exai__gcm *g, const uint8_t *iv, size_t ivlen, const uint8_t *aad, size_t aadlen,
		   const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag, size_t taglen);
/* Decrypts and checks the tag: -EBADMSG (and @out wiped) when it does not authenticate. */
int exai__gcm_open(struct exai__gcm *g, const uint8_t *iv, size_t ivlen, const uint8_t *aad, size_t aadlen,
		   const uint8_t *in, size_t len, uint8_t *out, const uint8_t *tag, size_t taglen);
/* HKDF (RFC 5869) extract-and-expand with @digest ("SHA256", "SHA512"). */
int exai__hkdf(const char *digest, const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
	       const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen);
/* AES-XTS of one data unit (>= 16 bytes) with a 16-byte tweak; a 64-byte key is AES-256-XTS.
 * Refuses keys whose halves are equal. */
int exai__aes_xts(const uint8_t *key, size_t keylen, const uint8_t tweak[16], const uint8_t *in, size_t len,
		  uint8_t *out, bool encrypt);

/* ---- envelope.c -------------------------------------------------------------------------- */

/* Finds the wrapping key for an encrypted data key with provider id @ns and key name @name
 * (not NUL-terminated). 0: @key filled; -ENOENT: not ours, try the next; other: abort. */
typedef int (*exai__unwrap_lookup_fn)(void *data, const char *ns, size_t nslen, const char *name,
				      size_t namelen, uint8_t key[32]);
/* An encryption stream whose context also carries @extra_pairs (NULL-terminated k, v, ...). */
int exai__envelope_encrypt_new(exai_envelope **ret, const uint8_t wrap_key[32], const char *ns, const char *name,
			       const char *const *extra_pairs, const struct exai_envelope_opts *opts);
/* A decryption stream that resolves wrapping keys through @lookup; @data_free(@data) runs when
 * the stream is freed (or at once when this fails). */
int exai__envelope_decrypt_new(exai_envelope **ret, exai__unwrap_lookup_fn lookup, void *data,
			       void (*data_free)(void *), const struct exai_envelope_opts *opts);
/* The key name that opened the message (after the header), or NULL. */
const char *exai__envelope_key_name(const exai_envelope *e);
/* Adds (key, value) pairs to a context object, with the checks of the public API. */
int exai__ctx_add_pairs(json_t *ctx, const char *const *pairs);

/* ---- keyring.c --------------------------------------------------------------------------- */

/* 0 when @t is a valid tenant name (1-64 of [A-Za-z0-9._-], not starting with '.'). */
int exai__tenant_name_check(const char *t);

/* ---- util.c ------------------------------------------------------------------------------ */

/* Reads a whole small file into exai_secure_alloc memory (NUL-terminated, not counted).
 * With @private_only, refuses (-EACCES) a file that its group or others may read or write.
 * Free with exai_secure_free(). */
int exai__read_secret_file(const char *path, size_t max, bool private_only, char **ret, size_t *retlen);
/* Creates @path with @data only when it does not exist yet (-EEXIST), crash-safe. */
int exai__write_new_file(const char *path, const void *data, size_t len, mode_t mode);
/* Prefixes the current error sentence with "@prefix: " and returns @err. */
int exai__err_prefix(int err, const char *prefix);
/* The AAD with which KMS providers wrap DEKs under a KEK: "exai-kek-wrap-v1" NUL, the tenant
 * name NUL, the KEK version (4, big-endian). */
size_t exai__kek_wrap_aad(uint8_t aad[128], const char *key_id, uint32_t version);
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
