/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file exai/keys.h
 * @brief libexai keys: minisign signatures, envelope messages (AWS Encryption SDK format),
 *        KMS providers, per-tenant keyrings, rotation, revocation and key derivation.
 *
 * Formats: docs/formats/minisign.md, docs/formats/envelope.md, docs/formats/keys.md.
 *
 * Threads: the functions here are thread-safe where they take only immutable inputs
 * (signing and verifying with a key object that nobody frees meanwhile). An ::exai_keyring
 * may be shared between threads (it has its own lock). An ::exai_envelope stream is used by
 * one thread at a time.
 */
#ifndef EXAI_KEYS_H
#define EXAI_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <exai/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name minisign signatures
 * Ed25519 key pairs and detached signatures in the format of the minisign tool
 * (https://jedisct1.github.io/minisign/): signatures are "prehashed" (BLAKE2b-512 of the
 * data is signed, algorithm bytes "ED"); verification also accepts the legacy form ("Ed",
 * the data itself signed) unless EXAI_SIGN_REQUIRE_PREHASHED is given. Every signature
 * carries a trusted comment that a second ("global") signature authenticates. @{ */

/** A minisign secret key (with its public half), held in locked memory. */
typedef struct exai_sign_key exai_sign_key;
/** A minisign public key. */
typedef struct exai_sign_pubkey exai_sign_pubkey;

/**
 * Generates a new Ed25519 key pair with a random 8-byte key id.
 * @retval -ENOMEM
 */
EXAI_API int exai_sign_keygen(exai_sign_key **ret);

/**
 * Writes the key pair as minisign files: @p sk_path (mode 0600) and @p pk_path (0644, may be
 * NULL to skip). With a NULL or empty @p password the secret key is stored unencrypted in
 * the form `minisign -G -W` writes (KDF bytes zero), which minisign 0.11 reads without
 * asking for a password; otherwise it is encrypted as minisign does (scrypt, salt, the
 * "sensitive" limits of libsodium: about 1 GiB of memory and a few seconds). Files are
 * written crash-safe (write, fsync, rename) and never replace an existing file.
 * @retval -EEXIST a file exists already
 * @retval -EINVAL NULL key or path
 * @retval -ENOMEM, or a negative errno from the file system
 */
EXAI_API int exai_sign_key_save(const exai_sign_key *key, const char *sk_path, const char *pk_path,
				const char *password);

/**
 * Loads a minisign secret key file. @p password is needed for encrypted keys (the minisign
 * default) and ignored for unencrypted ones.
 * @retval -EBADMSG not a minisign secret key (the sentence names the reason), or the
 *         password is wrong (checksum mismatch)
 * @retval -EACCES  the key is encrypted and @p password is NULL
 * @retval -ENOENT, other negative errno values from reading the file
 */
EXAI_API int exai_sign_key_load(exai_sign_key **ret, const char *sk_path, const char *password);

/** Wipes and frees a secret key; NULL is accepted. */
EXAI_API void exai_sign_key_free(exai_sign_key *key);

/** The public half of @p key as a new object (free with exai_sign_pubkey_free()). */
EXAI_API int exai_sign_key_public(exai_sign_pubkey **ret, const exai_sign_key *key);

/**
 * Parses a public key: either the contents of a minisign.pub file (an untrusted comment line
 * and a base64 line) or the bare base64 string (as given to `minisign -P`).
 * @retval -EBADMSG malformed, wrong length, or not an Ed25519 key
 */
EXAI_API int exai_sign_pubkey_parse(exai_sign_pubkey **ret, const char *text, size_t len);
/** Reads and parses a minisign public key file. Errors as exai_sign_pubkey_parse(), or from reading. */
EXAI_API int exai_sign_pubkey_load(exai_sign_pubkey **ret, const char *path);
/** The key id as minisign prints it: 16 upper-case hex digits, NUL-terminated. */
EXAI_API void exai_sign_pubkey_id(const exai_sign_pubkey *pk, char ret[17]);
/** The public key as the base64 string minisign prints (`-P` form); free with exai_free(). */
EXAI_API int exai_sign_pubkey_base64(char **ret, const exai_sign_pubkey *pk);
EXAI_API void exai_sign_pubkey_free(exai_sign_pubkey *pk);

/** Flags for exai_sign_verify(). */
enum exai_sign_verify_flags {
	/** Refuse legacy ("Ed", not prehashed) signatures, as `minisign -V -H` does. */
	EXAI_SIGN_REQUIRE_PREHASHED = 1u << 0,
};

/**
 * Signs @p len bytes at @p data. The result is the text of a .minisig file: untrusted comment
 * (@p untrusted_comment or "signature from libexai secret key"), the prehashed signature,
 * "trusted comment: " + @p trusted_comment (NULL: "timestamp:<now>"), the global signature.
 * Comments must not contain CR or LF; the trusted comment is at most 8000 bytes.
 * *@p ret (NUL-terminated, *@p retlen bytes) is freed with exai_free().
 * @retval -EINVAL a comment contains CR/LF or is too long
 */
EXAI_API int exai_sign_data(char **ret, size_t *retlen, const exai_sign_key *key, const void *data,
			    size_t len, const char *trusted_comment, const char *untrusted_comment);
/** Same as exai_sign_data() for a file, read in a stream (constant memory). */
EXAI_API int exai_sign_file(char **ret, size_t *retlen, const exai_sign_key *key, const char *path,
			    const char *trusted_comment, const char *untrusted_comment);

/**
 * Verifies the .minisig text @p sig over @p data with @p pk: the key id must match, the data
 * signature must verify (prehashed or, without EXAI_SIGN_REQUIRE_PREHASHED, legacy), and the
 * global signature must authenticate the trusted comment. On success and when @p
 * ret_trusted_comment is not NULL it receives the trusted comment (exai_free()).
 * @retval -EBADMSG a signature does not verify, or the signature text is malformed
 * @retval -EACCES  the signature was made by another key (key id mismatch), or it is legacy
 *                  and EXAI_SIGN_REQUIRE_PREHASHED was given
 */
EXAI_API int exai_sign_verify(char **ret_trusted_comment, const exai_sign_pubkey *pk, const void *data,
			      size_t len, const char *sig, size_t siglen, uint32_t flags);
/** Same as exai_sign_verify() for a file; prehashed signatures are checked in a stream, legacy
 *  ones read the file whole (at most 1 GiB, else -EFBIG). */
EXAI_API int exai_sign_verify_file(char **ret_trusted_comment, const exai_sign_pubkey *pk,
				   const char *path, const char *sig, size_t siglen, uint32_t flags);
/** @} */

/** @name Envelope messages
 * Messages in the AWS Encryption SDK message format version 2, algorithm suite 0x0478
 * (AES-256-GCM, HKDF-SHA512 key derivation, key commitment), framed (docs/formats/envelope.md).
 * Each message has a fresh 256-bit data key, wrapped as the SDK's raw AES keyring does with a
 * 256-bit wrapping key named by a key namespace and a key name, so that the stock SDK given the
 * same wrapping key, namespace and name decrypts it (and we decrypt its messages).
 *
 * Streaming: exai_envelope_update() takes any amount of input and passes output to the
 * callback as soon as it exists; memory stays constant (one frame) whatever the message size.
 * When decrypting, the plaintext of a frame is passed on only after that frame authenticated,
 * so a caller may have received the first frames of a message that later turns out to be
 * altered or truncated: exai_envelope_final() is what tells that the message was complete and
 * intact (-EBADMSG otherwise), exactly as with the SDK's streaming decrypt. A caller that must
 * not act on partial data writes to a temporary place and commits it only after final().
 * @{ */

/** An encryption or decryption stream. Used by one thread at a time. */
typedef struct exai_envelope exai_envelope;

/** Receives output bytes; returns 0, or a negative errno that aborts the stream. */
typedef int (*exai_envelope_write_fn)(void *userdata, const void *data, size_t len);

struct exai_envelope_opts {
	size_t sz;                     /**< sizeof(struct exai_envelope_opts); set by EXAI_OPTS() */
	exai_envelope_write_fn write;  /**< required: where output goes */
	void *write_data;              /**< passed to write */
	/** Encrypt: plaintext bytes per frame; 0: 65536. At most 16 MiB. */
	uint32_t frame_length;
	/** Decrypt: the largest frame length accepted from a message; 0: 16 MiB. */
	uint32_t max_frame_length;
	/**
	 * NULL-terminated list of key, value, key, value, ... (UTF-8). Encrypt: the encryption
	 * context, stored in the header and bound to every frame. Decrypt: pairs the message
	 * must carry with these exact values (else -EBADMSG). Keys starting "aws-crypto-" are
	 * reserved; a key given twice is refused.
	 */
	const char *const *context;
};

/**
 * Starts encrypting with a raw 256-bit wrapping key named (@p key_namespace, @p key_name), as
 * the SDK's RawAesKeyring with AES-256-GCM would. The key is copied; the header is written
 * with the first update() or final().
 * @retval -EINVAL missing write callback, key, namespace or name; bad context; frame_length
 * @retval -E2BIG  unknown options; -ENOMEM
 */
EXAI_API int exai_envelope_encrypt_raw(exai_envelope **ret, const uint8_t key[32], const char *key_namespace,
				       const char *key_name, const struct exai_envelope_opts *opts);
/**
 * Starts decrypting with a raw wrapping key: the message must hold a data key wrapped under
 * (@p key_namespace, @p key_name); the key is copied.
 * Errors from update()/final(): -EBADMSG for anything that fails authentication or parsing
 * (altered, truncated, reordered, wrong key, wrong context, commitment mismatch, unknown
 * version/suite/content type, oversized lengths, no data key wrapped under the given key
 * name: an altered name and a wrong name cannot be told apart).
 */
EXAI_API int exai_envelope_decrypt_raw(exai_envelope **ret, const uint8_t key[32], const char *key_namespace,
				       const char *key_name, const struct exai_envelope_opts *opts);
/** Feeds @p len bytes of input. After an error the stream is dead (-EBADMSG from then on). */
EXAI_API int exai_envelope_update(exai_envelope *env, const void *data, size_t len);
/** Ends the stream: encrypt writes the final frame; decrypt checks the message was complete
 *  (-EBADMSG: truncated). */
EXAI_API int exai_envelope_final(exai_envelope *env);
/** The message's encryption context as RFC 8785 JSON (exai_free()); -EAGAIN before the header
 *  was authenticated. */
EXAI_API int exai_envelope_context(char **ret, const exai_envelope *env);
/** Frees the stream, wiping its keys; NULL is accepted. */
EXAI_API void exai_envelope_free(exai_envelope *env);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* EXAI_KEYS_H */
