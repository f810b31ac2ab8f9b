/* SPDX-License-Identifier: Apache-2.0 */
/* test-crypto: the keys module's OpenSSL wrappers against Wycheproof: AES-GCM (every key, IV
 * and tag size in the file), HKDF-SHA256 and HKDF-SHA512, AES-XTS (as used for disk keys). */
#include "keys/keys-internal.h"
#include "keys-vectors.h"
#include "test.h"

struct gcm_counts {
	int long_iv;
};

static bool aes_gcm_test(json_t *g, json_t *t, void *ud)
{
	struct gcm_counts *c = ud;
	size_t taglen = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;
	size_t kl, ivl, al, ml, cl, tl;
	uint8_t *key = kv_hex(KV_STR(t, "key"), &kl), *iv = kv_hex(KV_STR(t, "iv"), &ivl);
	uint8_t *aad = kv_hex(KV_STR(t, "aad"), &al), *msg = kv_hex(KV_STR(t, "msg"), &ml);
	uint8_t *ct = kv_hex(KV_STR(t, "ct"), &cl), *tag = kv_hex(KV_STR(t, "tag"), &tl);
	uint8_t *out = malloc(ml + cl + 1), otag[16];
	struct exai__gcm e, d;
	int r = exai__gcm_init(&d, key, kl, false);
	if (r == 0)
		r = exai__gcm_open(&d, iv, ivl, aad, al, ct, cl, out, tag, tl);
	bool pass = (r == 0 && cl == ml && memcmp(out, msg, ml) == 0) == kv_valid(t);
	if (ivl > EXAI__GCM_IV_MAX) {
		/* OpenSSL takes IVs up to 128 bytes; longer ones are refused cleanly. */
		pass = r == -EINVAL;
		c->long_iv++;
	}
	/* Encryption reproduces valid vectors (tag length as the group says). */
	if (pass && kv_valid(t) && tl == taglen && ivl <= EXAI__GCM_IV_MAX) {
		pass = exai__gcm_init(&e, key, kl, true) == 0 &&
		       exai__gcm_seal(&e, iv, ivl, aad, al, msg, ml, out, otag, tl) == 0 &&
		       memcmp(out, ct, cl) == 0 && memcmp(otag, tag, tl) == 0;
		exai__gcm_done(&e);
	}
	exai__gcm_done(&d);
	free(key), free(iv), free(aad), free(msg), free(ct), free(tag), free(out);
	return pass;
}

static void aes_gcm(void)
{
	struct gcm_counts c = { 0 };
	kv_wycheproof_each("aes_gcm_test.json", aes_gcm_test, &c);
	CHECK(c.long_iv <= 6);
}

static bool hkdf_test(json_t *g, json_t *t, void *ud)
{
	(void)g;
	size_t il, sl, fl, ol;
	uint8_t *ikm = kv_hex(KV_STR(t, "ikm"), &il), *salt = kv_hex(KV_STR(t, "salt"), &sl);
	uint8_t *info = kv_hex(KV_STR(t, "info"), &fl), *okm = kv_hex(KV_STR(t, "okm"), &ol);
	size_t size = (size_t)json_integer_value(json_object_get(t, "size"));
	uint8_t *out = malloc(size + 1);
	int r = exai__hkdf(ud, salt, sl, ikm, il, info, fl, out, size);
	bool ok = r == 0 && size == ol && memcmp(out, okm, ol) == 0;
	free(ikm), free(salt), free(info), free(okm), free(out);
	return ok == kv_valid(t);
}

static void hkdf(const char *file, const char *digest)
{
	kv_wycheproof_each(file, hkdf_test, (void *)digest);
}

struct xts_counts {
	int skipped;
};

static bool aes_xts_test(json_t *g, json_t *t, void *ud)
{
	(void)g;
	struct xts_counts *c = ud;
	size_t kl, ivl, ml, cl;
	uint8_t *key = kv_hex(KV_STR(t, "key"), &kl), *iv = kv_hex(KV_STR(t, "iv"), &ivl);
	uint8_t *msg = kv_hex(KV_STR(t, "msg"), &ml), *ct = kv_hex(KV_STR(t, "ct"), &cl);
	/* The tweak is the IV zero-padded to 16 bytes: for IVs up to 8 bytes that is
	 * dm-crypt's plain64 (the little-endian sector number), our disk usage. */
	uint8_t tweak[16] = { 0 };
	memcpy(tweak, iv, ivl > 16 ? 16 : ivl);
	uint8_t *out = malloc(ml + 1);
	bool pass = true;
	if (kl != 32 && kl != 64) {
		c->skipped++; /* AES-192-XTS: not offered by OpenSSL, not used by us */
	} else if (ml < 16) {
		pass = exai__aes_xts(key, kl, tweak, msg, ml, out, true) == -EINVAL;
	} else {
		pass = exai__aes_xts(key, kl, tweak, msg, ml, out, true) == 0 && memcmp(out, ct, cl) == 0;
		pass = pass && exai__aes_xts(key, kl, tweak, ct, cl, out, false) == 0 && memcmp(out, msg, ml) == 0;
	}
	free(key), free(iv), free(msg), free(ct), free(out);
	return pass;
}

static void aes_xts(void)
{
	struct xts_counts c = { 0 };
	int n = kv_wycheproof_each("aes_xts_test.json", aes_xts_test, &c);
	CHECK(c.skipped < n / 2);
	/* Equal halves are refused (the rule that derived disk keys also obey). */
	uint8_t key[64] = { 0 }, tweak[16] = { 0 }, buf[32] = { 0 };
	CHECK_RC(exai__aes_xts(key, 64, tweak, buf, 32, buf, true), -EINVAL);
}

int main(void)
{
	aes_gcm();
	hkdf("hkdf_sha256_test.json", "SHA256");
	hkdf("hkdf_sha512_test.json", "SHA512");
	aes_xts();
	return test_done();
}
