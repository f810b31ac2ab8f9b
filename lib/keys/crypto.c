/* SPDX-License-Identifier: Apache-2.0 */
/* crypto.c: the symmetric primitives of the keys module, on OpenSSL 3 EVP: AES-GCM (with a
 * context kept per key, so that a stream of frames pays for the key schedule once), HKDF,
 * AES-XTS. Every test vector set (Wycheproof) goes through these wrappers. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "keys-internal.h"

static const EVP_CIPHER *gcm_cipher(size_t keylen)
{
	switch (keylen) {
	case 16: return EVP_aes_128_gcm();
	case 24: return EVP_aes_192_gcm();
	case 32: return EVP_aes_256_gcm();
	default: return NULL;
	}
}

int exai__gcm_init(struct exai__gcm *g, const uint8_t *key, size_t keylen, bool encrypt)
{
	const EVP_CIPHER *c = gcm_cipher(keylen);
	memset(g, 0, sizeof(*g));
	if (!c)
		return exai__err(-EINVAL, "AES-GCM: key of %zu bytes (want 16, 24 or 32)", keylen);
	g->ctx = EVP_CIPHER_CTX_new();
	if (!g->ctx)
		return exai__err(-ENOMEM, "out of memory (cipher context)");
	g->encrypt = encrypt;
	if ((encrypt ? EVP_EncryptInit_ex(g->ctx, c, NULL, key, NULL)
		     : EVP_DecryptInit_ex(g->ctx, c, NULL, key, NULL)) != 1) {
		exai__gcm_done(g);
		return exai__err(-EIO, "AES-GCM: cipher initialisation failed");
	}
	return 0;
}

void exai__gcm_done(struct exai__gcm *g)
{
	EVP_CIPHER_CTX_free(g->ctx); /* wipes the key schedule */
	g->ctx = NULL;
}

/* Passes @len bytes through the cipher in pieces OpenSSL's int lengths take: AAD when @out is
 * NULL, else data into @out. */
static int gcm_update(struct exai__gcm *g, const uint8_t *in, size_t len, uint8_t *out)
{
	int n;
	while (len) {
		int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
		if ((g->encrypt ? EVP_EncryptUpdate(g->ctx, out, &n, in, chunk)
				: EVP_DecryptUpdate(g->ctx, out, &n, in, chunk)) != 1)
			return -EIO;
		in += chunk;
		if (out)
			out += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static int gcm_start(struct exai__gcm *g, const uint8_t *iv, size_t ivlen, const uint8_t *aad, size_t aadlen)
{
	if (ivlen == 0 || ivlen > EXAI__GCM_IV_MAX)
		return -EINVAL;
	if (EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL) != 1)
		return -EINVAL;
	if ((g->encrypt ? EVP_EncryptInit_ex(g->ctx, NULL, NULL, NULL, iv)
			: EVP_DecryptInit_ex(g->ctx, NULL, NULL, NULL, iv)) != 1)
		return -EIO;
	return gcm_update(g, aad, aadlen, NULL);
}

int exai__gcm_seal(struct exai__gcm *g, const uint8_t *iv, size_t ivlen, const uint8_t *aad, size_t aadlen,
		   const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag, size_t taglen)
{
	uint8_t dummy[16];
	int n;
	if (!out)
		out = dummy; /* nothing to encrypt: a header tag */
	if (ivlen == 0 || ivlen > EXAI__GCM_IV_MAX)
		return exai__err(-EINVAL, "AES-GCM: IV of %zu bytes (want 1 to %u)", ivlen, EXAI__GCM_IV_MAX);
	if (!g->encrypt || taglen < 1 || taglen > 16 || gcm_start(g, iv, ivlen, aad, aadlen) < 0 ||
	    gcm_update(g, in, len, out) < 0 || EVP_EncryptFinal_ex(g->ctx, out + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, (int)taglen, tag) != 1)
		return exai__err(-EIO, "AES-GCM encryption failed");
	return 0;
}

int exai__gcm_open(struct exai__gcm *g, const uint8_t *iv, size_t ivlen, const uint8_t *aad, size_t aadlen,
		   const uint8_t *in, size_t len, uint8_t *out, const uint8_t *tag, size_t taglen)
{
	uint8_t dummy[16];
	int n;
	if (!out)
		out = dummy;
	if (g->encrypt || taglen < 1 || taglen > 16)
		return exai__err(-EINVAL, "AES-GCM: bad arguments");
	if (ivlen == 0 || ivlen > EXAI__GCM_IV_MAX)
		return exai__err(-EINVAL, "AES-GCM: IV of %zu bytes (want 1 to %u)", ivlen, EXAI__GCM_IV_MAX);
	if (gcm_start(g, iv, ivlen, aad, aadlen) < 0 || gcm_update(g, in, len, out) < 0 ||
	    EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, (int)taglen, (void *)tag) != 1)
		return exai__err(-EIO, "AES-GCM decryption failed");
	if (EVP_DecryptFinal_ex(g->ctx, out + len, &n) != 1) {
		/* The caller must not use @out: wipe what was decrypted. */
		exai_memzero(out, len);
		return exai__err(-EBADMSG, "AES-GCM: authentication tag mismatch");
	}
	return 0;
}

static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;
static EVP_KDF *hkdf_alg; /* kept for the life of the process */

static void hkdf_fetch(void)
{
	hkdf_alg = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

int exai__hkdf(const char *digest, const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen,
	       const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
{
	/* Fetching the algorithm is costly (a provider lookup): once per process. */
	pthread_once(&hkdf_once, hkdf_fetch);
	if (!hkdf_alg)
		return exai__err(-EIO, "HKDF is not available in this OpenSSL");
	EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(hkdf_alg);
	if (!kctx)
		return exai__err(-ENOMEM, "out of memory (KDF context)");
	OSSL_PARAM params[5], *p = params;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	if (saltlen)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	int r = EVP_KDF_derive(kctx, out, outlen, params) == 1 ? 0 : -EINVAL;
	EVP_KDF_CTX_free(kctx);
	if (r < 0)
		return exai__err(r, "HKDF-%s: derivation of %zu bytes failed (more than 255 hash lengths?)", digest, outlen);
	return 0;
}

int exai__aes_xts(const uint8_t *key, size_t keylen, const uint8_t tweak[16], const uint8_t *in, size_t len,
		  uint8_t *out, bool encrypt)
{
	const EVP_CIPHER *c = keylen == 64 ? EVP_aes_256_xts() : keylen == 32 ? EVP_aes_128_xts() : NULL;
	if (!c)
		return exai__err(-EINVAL, "AES-XTS: key of %zu bytes (want 32 or 64)", keylen);
	if (len < 16 || len > INT32_MAX)
		return exai__err(-EINVAL, "AES-XTS: data unit of %zu bytes (want 16 bytes to 2 GiB)", len);
	if (exai_memeq_ct(key, key + keylen / 2, keylen / 2) == 0)
		return exai__err(-EINVAL, "AES-XTS: the two key halves are equal");
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return exai__err(-ENOMEM, "out of memory (cipher context)");
	int n, r = 0;
	if (EVP_CipherInit_ex(ctx, c, NULL, key, tweak, encrypt ? 1 : 0) != 1 ||
	    EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 || EVP_CipherFinal_ex(ctx, out + n, &n) != 1)
		r = exai__err(-EIO, "AES-XTS: %s failed", encrypt ? "encryption" : "decryption");
	EVP_CIPHER_CTX_free(ctx);
	return r;
}
