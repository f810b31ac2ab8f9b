/* SPDX-License-Identifier: Apache-2.0 */
/* test-sign: minisign signatures — the shared interop vectors, round trips, tampering,
 * secret key files (unencrypted and scrypt-encrypted), and Wycheproof Ed25519. */
#include <sys/stat.h>

#include "keys/keys-internal.h"
#include "keys-vectors.h"
#include "test.h"

static void shared_vectors(void)
{
	char rel[256];
	size_t len;
	json_error_t e;
	json_t *cases = json_load_file(test_shared("vectors/minisign/cases.json"), 0, &e);
	CHECK(cases != NULL);
	if (!cases)
		return;
	exai_sign_pubkey *pk = NULL;
	CHECK_OK(exai_sign_pubkey_load(&pk, test_shared("vectors/minisign/minisign.pub")));
	char id[17] = "";
	if (pk)
		exai_sign_pubkey_id(pk, id);
	CHECK_STREQ(id, KV_STR(cases, "key_id_display"));
	/* The bare base64 form parses to the same key. */
	exai_sign_pubkey *pk2 = NULL;
	const char *b64 = KV_STR(cases, "public_key_base64");
	CHECK_OK(exai_sign_pubkey_parse(&pk2, b64, strlen(b64)));
	char *back = NULL;
	CHECK_OK(exai_sign_pubkey_base64(&back, pk2));
	CHECK_STREQ(back, b64);
	exai_free(back);
	exai_sign_pubkey_free(pk2);

	size_t i;
	json_t *c;
	int n = 0;
	json_array_foreach(json_object_get(cases, "cases"), i, c) {
		snprintf(rel, sizeof(rel), "vectors/minisign/%s", KV_STR(c, "sig"));
		char *sig = test_read_file(test_shared(rel), &len);
		size_t siglen = len;
		snprintf(rel, sizeof(rel), "vectors/minisign/%s", KV_STR(c, "file"));
		char *data = test_read_file(test_shared(rel), &len);
		bool valid = strcmp(KV_STR(c, "expect"), "valid") == 0;
		char *tc = NULL;
		int r = exai_sign_verify(&tc, pk, data, len, sig, siglen, 0);
		if (valid) {
			CHECK_RC(r, 0);
			CHECK_STREQ(tc, KV_STR(c, "trusted_comment"));
		} else {
			CHECK_RC(r, -EBADMSG);
		}
		exai_free(tc);
		/* The streaming file variant agrees. */
		CHECK_RC(exai_sign_verify_file(NULL, pk, test_shared(rel), sig, siglen, 0), valid ? 0 : -EBADMSG);
		/* Legacy signatures are refused when prehashing is required. */
		if (valid && strstr(KV_STR(c, "mode"), "legacy"))
			CHECK_RC(exai_sign_verify(NULL, pk, data, len, sig, siglen, EXAI_SIGN_REQUIRE_PREHASHED), -EACCES);
		free(sig);
		free(data);
		n++;
	}
	CHECK(n == 5);
	exai_sign_pubkey_free(pk);
	json_decref(cases);
}

static void round_trip(const char *dir)
{
	exai_sign_key *k = NULL, *k2 = NULL;
	exai_sign_pubkey *pk = NULL, *pk2 = NULL;
	char sk_path[512], pk_path[512];
	snprintf(sk_path, sizeof(sk_path), "%s/plain.key", dir);
	snprintf(pk_path, sizeof(pk_path), "%s/plain.pub", dir);
	CHECK_OK(exai_sign_keygen(&k));
	CHECK_OK(exai_sign_key_save(k, sk_path, pk_path, NULL));
	struct stat st;
	CHECK(stat(sk_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_RC(exai_sign_key_save(k, sk_path, pk_path, NULL), -EEXIST);
	CHECK_OK(exai_sign_key_load(&k2, sk_path, NULL));
	CHECK_OK(exai_sign_pubkey_load(&pk, pk_path));

	const char msg[] = "policy bundle v1\n";
	char *sig = NULL, *tc = NULL;
	size_t siglen = 0;
	CHECK_OK(exai_sign_data(&sig, &siglen, k2, msg, sizeof(msg) - 1, "tenant:acme\tbundle:1", NULL));
	CHECK_OK(exai_sign_verify(&tc, pk, msg, sizeof(msg) - 1, sig, siglen, EXAI_SIGN_REQUIRE_PREHASHED));
	CHECK_STREQ(tc, "tenant:acme\tbundle:1");
	exai_free(tc);
	/* One changed byte of data, of the trusted comment, or of either signature: refused. */
	char bad[] = "policy bundle v2\n";
	CHECK_RC(exai_sign_verify(NULL, pk, bad, sizeof(bad) - 1, sig, siglen, 0), -EBADMSG);
	char *t = strstr(sig, "tenant:acme");
	t[0] = 'T';
	CHECK_RC(exai_sign_verify(NULL, pk, msg, sizeof(msg) - 1, sig, siglen, 0), -EBADMSG);
	t[0] = 't';
	CHECK_OK(exai_sign_verify(NULL, pk, msg, sizeof(msg) - 1, sig, siglen, 0));
	/* Another key: refused by key id. */
	exai_sign_key *other = NULL;
	CHECK_OK(exai_sign_keygen(&other));
	CHECK_OK(exai_sign_key_public(&pk2, other));
	CHECK_RC(exai_sign_verify(NULL, pk2, msg, sizeof(msg) - 1, sig, siglen, 0), -EACCES);
	/* Malformed signature texts. */
	CHECK_RC(exai_sign_verify(NULL, pk, msg, sizeof(msg) - 1, sig, siglen / 2, 0), -EBADMSG);
	CHECK_RC(exai_sign_verify(NULL, pk, msg, sizeof(msg) - 1, "x\ny\nz\nw\n", 8, 0), -EBADMSG);
	/* The raw Ed25519 primitives under the format (for the audit module's signed notes). */
	uint8_t raw_sig[64], raw_pk[32];
	CHECK_OK(exai__ed25519_sign(raw_sig, k2, msg, sizeof(msg) - 1));
	exai__sign_pubkey_raw(pk, raw_pk);
	CHECK_OK(exai__ed25519_verify(raw_sig, msg, sizeof(msg) - 1, raw_pk));
	raw_sig[0] ^= 1;
	CHECK_RC(exai__ed25519_verify(raw_sig, msg, sizeof(msg) - 1, raw_pk), -EBADMSG);
	/* Comments with line breaks are refused. */
	char *s2 = NULL;
	CHECK_RC(exai_sign_data(&s2, NULL, k, msg, 3, "a\nb", NULL), -EINVAL);
	exai_free(sig);
	exai_sign_key_free(other);
	exai_sign_pubkey_free(pk2);
	exai_sign_pubkey_free(pk);
	exai_sign_key_free(k2);

	/* A key file that is not a key. */
	char junk[512];
	snprintf(junk, sizeof(junk), "%s/junk.key", dir);
	FILE *f = fopen(junk, "w");
	fputs("untrusted comment: x\nAAAA\n", f);
	fclose(f);
	CHECK_RC(exai_sign_key_load(&k2, junk, NULL), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "junk.key") != NULL);
	exai_sign_key_free(k);
}

static void encrypted_key(const char *dir)
{
	/* Light scrypt limits keep this fast; the minisign-compatible sensitive ones are used by
	 * default and exercised by the interop test. */
	exai__sign_kdf_light = true;
	exai_sign_key *k = NULL, *k2 = NULL;
	char sk_path[512];
	snprintf(sk_path, sizeof(sk_path), "%s/enc.key", dir);
	CHECK_OK(exai_sign_keygen(&k));
	CHECK_OK(exai_sign_key_save(k, sk_path, NULL, "correct horse"));
	CHECK_RC(exai_sign_key_load(&k2, sk_path, NULL), -EACCES);
	CHECK_RC(exai_sign_key_load(&k2, sk_path, "wrong"), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "wrong password") != NULL);
	CHECK_OK(exai_sign_key_load(&k2, sk_path, "correct horse"));
	exai_sign_pubkey *a = NULL, *b = NULL;
	CHECK_OK(exai_sign_key_public(&a, k));
	CHECK_OK(exai_sign_key_public(&b, k2));
	char *ba = NULL, *bb = NULL;
	CHECK_OK(exai_sign_pubkey_base64(&ba, a));
	CHECK_OK(exai_sign_pubkey_base64(&bb, b));
	CHECK_STREQ(ba, bb);
	exai_free(ba);
	exai_free(bb);
	exai_sign_pubkey_free(a);
	exai_sign_pubkey_free(b);
	exai_sign_key_free(k);
	exai_sign_key_free(k2);
}

static bool ed25519_test(json_t *g, json_t *t, void *ud)
{
	(void)ud;
	size_t pklen, mlen, slen;
	uint8_t *pk = kv_hex(KV_STR(json_object_get(g, "publicKey"), "pk"), &pklen);
	uint8_t *m = kv_hex(KV_STR(t, "msg"), &mlen), *s = kv_hex(KV_STR(t, "sig"), &slen);
	int r = (slen == 64 && pklen == 32) ? exai__ed25519_verify(s, m, mlen, pk) : -EBADMSG;
	free(pk), free(m), free(s);
	return (r == 0) == kv_valid(t);
}

static void wycheproof_ed25519(void)
{
	kv_wycheproof_each("ed25519_test.json", ed25519_test, NULL);
}

int main(void)
{
	char *dir = test_tmpdir();
	shared_vectors();
	round_trip(dir);
	encrypted_key(dir);
	wycheproof_ed25519();
	test_rmrf(dir);
	free(dir);
	return test_done();
}
