/* SPDX-License-Identifier: Apache-2.0 */
/* test-crypto: the keys module's OpenSSL wrappers against Wycheproof: AES-GCM (every key, IV
 * and tag size in the file), HKDF-SHA256 and HKDF-SHA512, AES-XTS (as used for disk keys). */
#include "keys/keys-internal.h"
#include "keys-vectors.h"
#include "test.h"

static long long tc_id(json_t *t)
{
	return (long long)json_integer_value(json_object_get(t, "tcId"));
}

static void aes_gcm(void)
{
	json_t *j = kv_wycheproof("aes_gcm_test.json");
	size_t gi, ti;
	json_t *g, *t;
	int n = 0, long_iv = 0;
	json_array_foreach(json_object_get(j, "testGroups"), gi, g) {
		size_t taglen = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			size_t kl, ivl, al, ml, cl, tl;
			uint8_t *key = kv_hex(KV_STR(t, "key"), &kl), *iv = kv_hex(KV_STR(t, "iv"), &ivl);
			uint8_t *aad = kv_hex(KV_STR(t, "aad"), &al), *msg = kv_hex(KV_STR(t, "msg"), &ml);
			uint8_t *ct = kv_hex(KV_STR(t, "ct"), &cl), *tag = kv_hex(KV_STR(t, "tag"), &tl);
			bool valid = strcmp(KV_STR(t, "result"), "valid") == 0;
			uint8_t *out = malloc(ml + cl + 1), otag[16];
			struct exai__gcm e, d;
			int r = exai__gcm_init(&d, key, kl, false);
			if (r == 0)
				r = exai__gcm_open(&d, iv, ivl, aad, al, ct, cl, out, tag, tl);
			bool ok = r == 0 && cl == ml && memcmp(out, msg, ml) == 0;
			if (ivl > EXAI__GCM_IV_MAX) {
				/* OpenSSL takes IVs up to 128 bytes; longer ones are refused cleanly. */
				CHECK_RC(r, -EINVAL);
				long_iv++;
			} else if (ok != valid) {
				fprintf(stderr, "wycheproof aes-gcm decrypt tcId %lld: r=%d\n", tc_id(t), r);
				test_failures++;
			}
			/* Encryption reproduces valid vectors (tag length as the group says). */
			if (valid && tl == taglen && ivl <= EXAI__GCM_IV_MAX) {
				CHECK_OK(exai__gcm_init(&e, key, kl, true));
				CHECK_OK(exai__gcm_seal(&e, iv, ivl, aad, al, msg, ml, out, otag, tl));
				if (memcmp(out, ct, cl) != 0 || memcmp(otag, tag, tl) != 0) {
					fprintf(stderr, "wycheproof aes-gcm encrypt tcId %lld differs\n", tc_id(t));
					test_failures++;
				}
				exai__gcm_done(&e);
			}
			exai__gcm_done(&d);
			free(key), free(iv), free(aad), free(msg), free(ct), free(tag), free(out);
			n++;
		}
	}
	CHECK(n == json_integer_value(json_object_get(j, "numberOfTests")));
	CHECK(long_iv <= 6);
	json_decref(j);
}

static void hkdf(const char *file, const char *digest)
{
	json_t *j = kv_wycheproof(file);
	size_t gi, ti;
	json_t *g, *t;
	int n = 0;
	json_array_foreach(json_object_get(j, "testGroups"), gi, g) {
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			size_t il, sl, fl, ol;
			uint8_t *ikm = kv_hex(KV_STR(t, "ikm"), &il), *salt = kv_hex(KV_STR(t, "salt"), &sl);
			uint8_t *info = kv_hex(KV_STR(t, "info"), &fl), *okm = kv_hex(KV_STR(t, "okm"), &ol);
			size_t size = (size_t)json_integer_value(json_object_get(t, "size"));
			bool valid = strcmp(KV_STR(t, "result"), "valid") == 0;
			uint8_t *out = malloc(size + 1);
			int r = exai__hkdf(digest, salt, sl, ikm, il, info, fl, out, size);
			bool ok = r == 0 && size == ol && memcmp(out, okm, ol) == 0;
			if (ok != valid) {
				fprintf(stderr, "wycheproof %s tcId %lld: r=%d\n", file, tc_id(t), r);
				test_failures++;
			}
			free(ikm), free(salt), free(info), free(okm), free(out);
			n++;
		}
	}
	CHECK(n == json_integer_value(json_object_get(j, "numberOfTests")));
	json_decref(j);
}

static void aes_xts(void)
{
	json_t *j = kv_wycheproof("aes_xts_test.json");
	size_t gi, ti;
	json_t *g, *t;
	int n = 0, skipped = 0;
	json_array_foreach(json_object_get(j, "testGroups"), gi, g) {
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			size_t kl, ivl, ml, cl;
			uint8_t *key = kv_hex(KV_STR(t, "key"), &kl), *iv = kv_hex(KV_STR(t, "iv"), &ivl);
			uint8_t *msg = kv_hex(KV_STR(t, "msg"), &ml), *ct = kv_hex(KV_STR(t, "ct"), &cl);
			/* The tweak is the IV zero-padded to 16 bytes: for IVs up to 8 bytes that is
			 * dm-crypt's plain64 (the little-endian sector number), our disk usage. */
			uint8_t tweak[16] = { 0 };
			memcpy(tweak, iv, ivl > 16 ? 16 : ivl);
			uint8_t *out = malloc(ml + 1);
			n++;
			if (kl != 32 && kl != 64) {
				skipped++; /* AES-192-XTS: not offered by OpenSSL, not used by us */
			} else if (ml < 16) {
				CHECK_RC(exai__aes_xts(key, kl, tweak, msg, ml, out, true), -EINVAL);
			} else {
				bool ok = exai__aes_xts(key, kl, tweak, msg, ml, out, true) == 0 && memcmp(out, ct, cl) == 0;
				ok = ok && exai__aes_xts(key, kl, tweak, ct, cl, out, false) == 0 && memcmp(out, msg, ml) == 0;
				if (!ok) {
					fprintf(stderr, "wycheproof aes-xts tcId %lld failed: %s\n", tc_id(t), test_errmsg());
					test_failures++;
				}
			}
			free(key), free(iv), free(msg), free(ct), free(out);
		}
	}
	CHECK(n == json_integer_value(json_object_get(j, "numberOfTests")));
	CHECK(skipped < n / 2);
	json_decref(j);
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
