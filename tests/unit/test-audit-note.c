/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-note: C2SP signed-note against ../shared/vectors/signed-note, and checkpoints. */
#include <sodium.h>

#include "audit/audit-internal.h"
#include "test.h"

static size_t unhex(uint8_t *out, size_t max, const char *hex)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n && i < max; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
	return n;
}

static void vector(void)
{
	json_error_t e;
	json_t *v = json_load_file(test_shared("vectors/signed-note/peterneumann.json"), 0, &e);
	CHECK(v != NULL);
	const char *vkey = json_string_value(json_object_get(v, "vkey"));
	const char *text = json_string_value(json_object_get(v, "text"));
	const char *note = json_string_value(json_object_get(v, "signed_note"));
	json_t *d = json_object_get(v, "derived");
	char *got = NULL;

	/* Open the upstream note. */
	CHECK_OK(exai_audit_note_open(&got, note, strlen(note), vkey));
	CHECK_STREQ(got, text);
	exai_free(got);

	/* Key id and signing from the seed give the upstream bytes exactly. */
	struct exai__vkey vk;
	CHECK_OK(exai__vkey_parse(&vk, vkey));
	CHECK(vk.keyid == 0xc74f20a3);
	CHECK(exai__note_keyid("PeterNeumann", vk.pk) == 0xc74f20a3);
	uint8_t seed[32];
	unhex(seed, 32, json_string_value(json_object_get(d, "ed25519_seed_hex")));
	struct exai__signer s = { .name = (char *)"PeterNeumann", .keyid = vk.keyid };
	s.sk = sodium_malloc(64);
	crypto_sign_seed_keypair(s.pk, s.sk, seed);
	CHECK(memcmp(s.pk, vk.pk, 32) == 0);
	char *signed_note = NULL, *mine_vkey = exai__signer_vkey(&s);
	size_t sl;
	CHECK_OK(exai__note_sign(&s, text, strlen(text), &signed_note, &sl));
	CHECK_STREQ(signed_note, note);
	CHECK_STREQ(mine_vkey, vkey);
	free(signed_note);
	free(mine_vkey);
	sodium_free(s.sk);

	/* Two signers: ours verifies with either key present. */
	json_t *second = json_object_get(v, "second_signer");
	const char *both = json_string_value(json_object_get(second, "signed_note_both"));
	CHECK_OK(exai_audit_note_open(NULL, both, strlen(both), vkey));
	CHECK_OK(exai_audit_note_open(NULL, both, strlen(both), json_string_value(json_object_get(second, "vkey"))));

	/* Invalid verifier keys. */
	json_t *bad;
	size_t i;
	json_array_foreach(json_object_get(v, "invalid_vkeys"), i, bad)
		CHECK_RC(exai_audit_note_open(NULL, note, strlen(note), json_string_value(json_object_get(bad, "vkey"))),
			 -EINVAL);

	/* Malformed notes, byte-exact from note_hex. */
	json_array_foreach(json_object_get(v, "malformed_notes"), i, bad) {
		uint8_t buf[1024];
		size_t n = unhex(buf, sizeof(buf), json_string_value(json_object_get(bad, "note_hex")));
		CHECK_RC(exai_audit_note_open(NULL, (const char *)buf, n, vkey), -EBADMSG);
		CHECK_STREQ(exai_errmsg(), "malformed note");
	}
	const char *inv = json_string_value(json_object_get(json_object_get(v, "invalid_signature_note"), "note"));
	CHECK_RC(exai_audit_note_open(NULL, inv, strlen(inv), vkey), -EBADMSG);
	CHECK_STREQ(exai_errmsg(), "invalid signature for key PeterNeumann+c74f20a3");
	/* Only another key's signature. */
	const char *other = json_string_value(json_object_get(second, "signature_line"));
	char *only = NULL;
	CHECK(asprintf(&only, "%s\n%s", text, other) > 0);
	CHECK_RC(exai_audit_note_open(NULL, only, strlen(only), vkey), -EBADMSG);
	CHECK_STREQ(exai_errmsg(), "note has no verifiable signatures");
	free(only);
	/* More than 100 signature lines. */
	struct exai__buf many = { 0 };
	CHECK_OK(exai__buf_printf(&many, "%s\n", text));
	const char *line = json_string_value(json_object_get(d, "signature_line"));
	for (int k = 0; k < 101; k++)
		CHECK_OK(exai__buf_append(&many, line, strlen(line)));
	CHECK_RC(exai_audit_note_open(NULL, many.data, many.len, vkey), -EBADMSG);
	exai__buf_free(&many);
	json_decref(v);
}

static void checkpoint(void)
{
	uint8_t root[32], back[32];
	for (int i = 0; i < 32; i++)
		root[i] = (uint8_t)i;
	char *text = NULL, *origin = NULL;
	size_t len;
	uint64_t size;
	CHECK_OK(exai__checkpoint_text(&text, &len, "example.com/log", 42, root));
	CHECK_STREQ(text, "example.com/log\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
	CHECK_OK(exai_audit_checkpoint_parse(&origin, &size, back, text, len));
	CHECK_STREQ(origin, "example.com/log");
	CHECK(size == 42 && memcmp(root, back, 32) == 0);
	exai_free(origin);
	free(text);
	const char *bad[] = { "o\n042\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "o\n1\nAAEC\n", "o\n1\n", "\n1\nAA==\n",
			      "o\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n" };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(bad); i++)
		CHECK_RC(exai_audit_checkpoint_parse(NULL, &size, back, bad[i], strlen(bad[i])), -EBADMSG);
}

int main(void)
{
	CHECK_OK(exai__sodium_init());
	vector();
	checkpoint();
	return test_done();
}
