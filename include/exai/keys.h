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

/** @name KMS providers
 * Where tenant KEKs live. A provider is a table of callbacks; libexai ships `file` (KEK
 * versions as 0600 files in the state directory) and `pkcs11` (a key on an HSM token that
 * never leaves it); embedders add cloud KMSs (AWS KMS, GCP KMS, Azure Key Vault, Vault, KMIP)
 * by filling the same table. @p key_id is the tenant name. Versions count from 1.
 * Every callback returns 0 or a negative errno and sets no error message of its own unless
 * it calls into libexai; -EACCES means "the KMS refuses" (disabled or destroyed key, wrong
 * PIN) and is what makes a tenant opaque. Callbacks may be called from several threads at
 * once and must be thread-safe. @{ */

/** The largest wrapped DEK a provider may return. */
#define EXAI_KMS_WRAPPED_MAX 512

/** What exai_kms_provider::describe reports. */
struct exai_kms_key_info {
	size_t sz;               /**< set by the caller */
	bool enabled;            /**< false once disabled or destroyed */
	uint32_t latest_version; /**< newest version; 0 when the key does not exist */
};

struct exai_kms_provider {
	size_t sz;          /**< sizeof(struct exai_kms_provider) */
	const char *name;   /**< "file", "pkcs11", "aws-kms", ...: recorded in the keyring */
	void *data;         /**< passed to every callback */
	/** Creates the key (version 1) or, when it exists, a new version; gives the version. */
	int (*create_key)(void *data, const char *key_id, uint32_t *ret_version);
	/** Wraps the 32-byte @p dek under version @p version into @p out (capacity
	 *  EXAI_KMS_WRAPPED_MAX), setting *@p outlen. */
	int (*wrap)(void *data, const char *key_id, uint32_t version, const uint8_t dek[32], uint8_t *out,
		    size_t *outlen);
	/** Unwraps into @p dek (locked memory of 32 bytes). -EBADMSG when the blob does not
	 *  authenticate, -EACCES when the key is disabled or destroyed. */
	int (*unwrap)(void *data, const char *key_id, uint32_t version, const uint8_t *in, size_t inlen,
		      uint8_t dek[32]);
	/** Reports state and versions; a missing key gives enabled = false, latest_version = 0. */
	int (*describe)(void *data, const char *key_id, struct exai_kms_key_info *info);
	/** Disables every version (reversible in the KMS, not through libexai). */
	int (*disable)(void *data, const char *key_id);
	/** Destroys one version for good (retiring it after a rotation). May be NULL. */
	int (*destroy_version)(void *data, const char *key_id, uint32_t version);
	/** Releases @p data; called once when the keyring that owns the provider is freed. May be NULL. */
	void (*free)(void *data);
};

/**
 * Fills @p ret with the `file` provider: KEK version N of tenant T is the 32-byte file
 * `<state_dir>/keys/T/kek-N.bin` (mode 0600; a file readable or writable by group or others
 * is refused with -EACCES); disabling writes `<state_dir>/keys/T/kek.disabled`.
 * Wrapping is AES-256-GCM with a random IV (docs/formats/keys.md). The key material is read
 * into locked memory per call and wiped after it.
 */
EXAI_API int exai_kms_file_provider(struct exai_kms_provider *ret, exai_ctx *ctx);

/** Options of the PKCS#11 provider. */
struct exai_kms_pkcs11_opts {
	size_t sz;               /**< sizeof(struct exai_kms_pkcs11_opts) */
	const char *module;      /**< required: path of the PKCS#11 module (.so) */
	const char *token_label; /**< required: label of the token to use */
	/** File holding the user PIN (first line); NULL: the environment variable below. */
	const char *pin_file;
	/** Environment variable holding the PIN; NULL: "EXAI_PKCS11_PIN". */
	const char *pin_env;
};

/**
 * Fills @p ret with the `pkcs11` provider: the KEK of tenant T, version N, is an AES-256
 * secret key object on the token labelled "exai-kek:T:N", generated on the token with
 * CKA_SENSITIVE and not CKA_EXTRACTABLE; wrap and unwrap are CKM_AES_GCM through
 * C_Encrypt/C_Decrypt (the IV the token used is read back). Disabling sets CKA_ENCRYPT and
 * CKA_DECRYPT false. One session per thread-safe call (the module is initialised with
 * CKF_OS_LOCKING_OK). The module is loaded and logged in at once, so that a missing module,
 * token or a wrong PIN is reported here.
 * @retval -ENOTSUP this libexai was built without PKCS#11 support
 * @retval -ENOENT  the module or the token does not exist
 * @retval -EACCES  wrong PIN (the sentence says so), or PIN locked
 */
EXAI_API int exai_kms_pkcs11_provider(struct exai_kms_provider *ret, exai_ctx *ctx,
				      const struct exai_kms_pkcs11_opts *opts);
/** @} */

/** @name Tenant keyrings
 * A keyring holds a tenant's DEK generations, each a random 256-bit key stored only wrapped
 * by the tenant's KEK in a KMS, and unwrapped on demand into locked memory that is cached for
 * a bounded time (docs/formats/keys.md). Artefacts are envelope messages whose data keys are
 * wrapped by a DEK generation (key namespace "exai-tenant-dek", key name "T/G").
 * A keyring is reference-counted and thread-safe; streams made from it hold a reference.
 * Several processes may open the same tenant: rotate, retire and revoke take an exclusive
 * flock on `keyring.json.lock`, and every keyring re-reads the record when another process
 * replaced it, so none of them uses a KEK version that a rotation destroyed.
 * @{ */

typedef struct exai_keyring exai_keyring;

struct exai_keyring_opts {
	size_t sz; /**< sizeof(struct exai_keyring_opts) */
	/** The KMS. exai_keyring_init(): NULL means `file`. exai_keyring_open(): NULL means the
	 *  provider recorded at init, where that is `file` or `pkcs11` (its module, token label
	 *  and PIN file come from the record; the PIN from the file or EXAI_PKCS11_PIN). The
	 *  keyring takes the table over (and calls its free) even when the call fails. */
	const struct exai_kms_provider *kms;
	/** How long an unwrapped DEK stays cached, in milliseconds; 0: 20000. At most 25000, so
	 *  that a KEK disabled in the KMS makes decrypts fail within 30 seconds. */
	uint32_t cache_ttl_ms;
	/** init: the rotation period reported by status, in days; 0: 90. */
	uint32_t rotation_days;
	/** init with pkcs11: recorded so that open() can load the provider again. */
	const struct exai_kms_pkcs11_opts *pkcs11;
};

/**
 * Creates tenant @p tenant's keyring: a KEK (version 1) in the KMS, DEK generation 1 wrapped
 * by it, and the record `<state_dir>/keys/<tenant>/keyring.json` (written crash-safe).
 * Tenant names are 1-64 characters of [A-Za-z0-9._-], not starting with '.'.
 * Emits an audit event (key init).
 * @retval -EEXIST the tenant has a keyring already
 * @retval -EINVAL bad tenant name or options; errors of the KMS
 */
EXAI_API int exai_keyring_init(exai_keyring **ret, exai_ctx *ctx, const char *tenant,
			       const struct exai_keyring_opts *opts);
/** Opens an existing keyring. -ENOENT when the tenant has none; -EBADMSG for a damaged record. */
EXAI_API int exai_keyring_open(exai_keyring **ret, exai_ctx *ctx, const char *tenant,
			       const struct exai_keyring_opts *opts);
EXAI_API exai_keyring *exai_keyring_ref(exai_keyring *kr);
EXAI_API exai_keyring *exai_keyring_unref(exai_keyring *kr);

/**
 * Rotates: a new KEK version and a new DEK generation, which new artefacts use; every retained
 * older generation (>= min_decryption_generation) is re-wrapped under the new KEK version, the
 * record is replaced, and then KEK versions no longer used are destroyed in the KMS (where the
 * provider can). Emits an audit event (key rotate). -EACCES on a revoked keyring.
 */
EXAI_API int exai_keyring_rotate(exai_keyring *kr);
/**
 * Retires generations below @p generation for good: their wrapped DEKs are dropped from the
 * record, and artefacts under them fail to decrypt (-EACCES). Cannot exceed the current
 * generation.
 */
EXAI_API int exai_keyring_set_min_generation(exai_keyring *kr, uint32_t generation);
/**
 * Revokes the tenant: disables the KEK in the KMS, marks the record revoked and wipes at once
 * every cached DEK of this tenant in this process (every open keyring of the tenant). From then
 * on every decrypt, encrypt and derivation fails with -EACCES. Emits an audit event (revoke).
 */
EXAI_API int exai_keyring_revoke(exai_keyring *kr);
/** Drops the cached DEKs of this keyring (they are unwrapped again from the KMS on next use). */
EXAI_API void exai_keyring_flush_cache(exai_keyring *kr);

/**
 * The status as a JSON object (RFC 8785; exai_free()): tenant, kms, kek_enabled (asked from the
 * KMS now), kek_version, current_generation, min_decryption_generation, generations
 * [{generation, kek_version, created}], revoked, created, rotated, rotation_days,
 * rotation_due (unix time), cache_ttl_ms, cached_generations.
 */
EXAI_API int exai_keyring_status(char **ret_json, exai_keyring *kr);
/** The current DEK generation (what new artefacts use). */
EXAI_API uint32_t exai_keyring_generation(const exai_keyring *kr);
/** Whether an artefact under @p generation should be re-keyed: true when older than the
 *  current generation. -EACCES when it is retired (below min_decryption_generation). */
EXAI_API int exai_keyring_is_outdated(exai_keyring *kr, uint32_t generation, bool *ret_outdated);

/**
 * Starts an envelope encryption under the current DEK generation. The encryption context gets
 * `tenant`, plus `purpose` and `object` when not NULL, before opts->context pairs.
 * -EACCES when revoked or the KMS refuses the DEK.
 */
EXAI_API int exai_keyring_encrypt(exai_envelope **ret, exai_keyring *kr, const char *purpose,
				  const char *object_id, const struct exai_envelope_opts *opts);
/**
 * Starts an envelope decryption with this tenant's DEK generations. The message must carry
 * `tenant` = this tenant. Errors from update(): -EACCES when the generation is retired, the
 * keyring revoked or the KMS refuses (disabled KEK, after at most the cache TTL), -EBADMSG as
 * for exai_envelope_decrypt_raw().
 */
EXAI_API int exai_keyring_decrypt(exai_envelope **ret, exai_keyring *kr, const struct exai_envelope_opts *opts);
/** The DEK generation of a message being decrypted by exai_keyring_decrypt(), once its header
 *  was read (-EAGAIN before). */
EXAI_API int exai_envelope_generation(const exai_envelope *env, uint32_t *ret_generation);

/**
 * Derives the 64-byte AES-256-XTS key of a VM disk from DEK generation @p generation (0: the
 * current one) with HKDF-SHA512 and a label naming the VM (docs/formats/keys.md). The two
 * halves always differ. @p ret should be locked memory (exai_secure_alloc()).
 * A disk keeps its key for its life: take G = exai_keyring_generation(), pass it here
 * explicitly and store G with the disk; at each boot exai_keyring_is_outdated(G) tells whether
 * to re-key it (and -EACCES once G is retired). Same for snapshots.
 * @retval -EACCES revoked, generation retired, or the KMS refuses
 * @retval -EINVAL generation not yet existing, empty or over-long identifiers
 */
EXAI_API int exai_keyring_derive_disk_key(uint8_t ret[64], exai_keyring *kr, uint32_t generation,
					  const char *vm_id);
/** Derives the 32-byte key of one snapshot of a VM, the same way with its own label. */
EXAI_API int exai_keyring_derive_snapshot_key(uint8_t ret[32], exai_keyring *kr, uint32_t generation,
					      const char *vm_id, const char *snapshot_id);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* EXAI_KEYS_H */
