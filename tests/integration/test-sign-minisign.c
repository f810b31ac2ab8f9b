/* SPDX-License-Identifier: Apache-2.0 */
/* test-sign-minisign: interop with the stock minisign tool (Debian's 0.11), both ways:
 * keys and signatures we write are read and verified by minisign, and keys (unencrypted and
 * scrypt-encrypted) and signatures minisign writes are read and verified by us. */
#include <sys/wait.h>
#include <unistd.h>

#include "keys/keys-internal.h"
#include "../unit/keys-vectors.h"
#include "test.h"

static char dir[512];

#define sh test_sh

static char *path(const char *name)
{
	static char buf[4][768];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void write_str(const char *p, const char *s)
{
	FILE *f = fopen(p, "w");
	fputs(s, f);
	fclose(f);
}

static void ours_to_minisign(void)
{
	exai_sign_key *k = NULL;
	CHECK_OK(exai_sign_keygen(&k));
	CHECK_OK(exai_sign_key_save(k, path("our.key"), path("our.pub"), NULL));
	write_str(path("a.txt"), "bundle signed by libexai\n");
	/* Our signature, minisign verifies (requiring the prehashed form, -H). */
	char *sig = NULL;
	size_t len;
	CHECK_OK(exai_sign_file(&sig, &len, k, path("a.txt"), "file:a.txt\tby libexai", NULL));
	FILE *f = fopen(path("a.txt.minisig"), "w");
	fwrite(sig, 1, len, f);
	fclose(f);
	CHECK(sh("minisign -V -H -q -p %s -m %s", path("our.pub"), path("a.txt")) == 0);
	/* ... and rejects it once the file changes. */
	write_str(path("a2.txt"), "bundle signed by libexai?\n");
	CHECK(sh("cp %s %s.minisig && minisign -V -q -p %s -m %s 2>/dev/null", path("a.txt.minisig"),
		 path("a2.txt"), path("our.pub"), path("a2.txt")) == 1);
	/* minisign signs with the unencrypted secret key file we wrote (no password asked). */
	write_str(path("b.txt"), "signed by minisign with our key file\n");
	CHECK(sh("minisign -S -s %s -m %s -t 'from minisign' </dev/null >/dev/null", path("our.key"), path("b.txt")) == 0);
	exai_sign_pubkey *pk = NULL;
	CHECK_OK(exai_sign_pubkey_load(&pk, path("our.pub")));
	size_t siglen;
	char *msig = test_read_file(path("b.txt.minisig"), &siglen);
	char *tc = NULL;
	CHECK_OK(exai_sign_verify_file(&tc, pk, path("b.txt"), msig, siglen, EXAI_SIGN_REQUIRE_PREHASHED));
	CHECK_STREQ(tc, "from minisign");
	exai_free(tc);
	free(msig);
	exai_free(sig);
	exai_sign_pubkey_free(pk);

	/* An encrypted key of ours (minisign's own scrypt limits), used by minisign. */
	CHECK_OK(exai_sign_key_save(k, path("enc.key"), NULL, "s3cret"));
	write_str(path("c.txt"), "signed with our encrypted key file\n");
	CHECK(sh("printf 's3cret\\n' | minisign -S -s %s -m %s >/dev/null", path("enc.key"), path("c.txt")) == 0);
	CHECK(sh("minisign -V -q -p %s -m %s", path("our.pub"), path("c.txt")) == 0);
	exai_sign_key_free(k);
}

static void minisign_to_ours(void)
{
	/* Unencrypted (-W) and encrypted minisign keys, both loaded and used by us. */
	CHECK(sh("minisign -G -W -p %s -s %s >/dev/null", path("m.pub"), path("m.key")) == 0);
	CHECK(sh("printf 'pw0rd\\npw0rd\\n' | minisign -G -p %s -s %s >/dev/null", path("me.pub"), path("me.key")) == 0);
	const char *pairs[][3] = { { "m.key", "m.pub", NULL }, { "me.key", "me.pub", "pw0rd" } };
	for (size_t i = 0; i < 2; i++) {
		exai_sign_key *k = NULL;
		exai_sign_pubkey *pk = NULL;
		CHECK_OK(exai_sign_key_load(&k, path(pairs[i][0]), pairs[i][2]));
		CHECK_OK(exai_sign_pubkey_load(&pk, path(pairs[i][1])));
		if (!k || !pk)
			continue;
		write_str(path("d.txt"), "data\n");
		unlink(path("d.txt.minisig"));
		char *sig = NULL;
		size_t len;
		CHECK_OK(exai_sign_file(&sig, &len, k, path("d.txt"), NULL, NULL));
		FILE *f = fopen(path("d.txt.minisig"), "w");
		fwrite(sig, 1, len, f);
		fclose(f);
		CHECK(sh("minisign -V -q -p %s -m %s", path(pairs[i][1]), path("d.txt")) == 0);
		exai_free(sig);
		/* minisign signatures (prehashed and legacy) with this key, verified by us. */
		const char *pw = pairs[i][2] ? pairs[i][2] : "";
		CHECK(sh("printf '%s\\n' | minisign -S -s %s -m %s -x %s -t tc%zu >/dev/null", pw, path(pairs[i][0]),
			 path("d.txt"), path("d.h.sig"), i) == 0);
		/* Legacy signatures: with the unencrypted key only (each use of an encrypted one costs
		 * a 1 GiB scrypt derivation). */
		if (!pairs[i][2])
			CHECK(sh("minisign -S -l -s %s -m %s -x %s </dev/null >/dev/null", path(pairs[i][0]),
				 path("d.txt"), path("d.l.sig")) == 0);
		size_t sl;
		char *s = test_read_file(path("d.h.sig"), &sl);
		char *tc = NULL;
		char want[16];
		snprintf(want, sizeof(want), "tc%zu", i);
		CHECK_OK(exai_sign_verify_file(&tc, pk, path("d.txt"), s, sl, EXAI_SIGN_REQUIRE_PREHASHED));
		CHECK_STREQ(tc, want);
		exai_free(tc);
		free(s);
		if (!pairs[i][2]) {
			s = test_read_file(path("d.l.sig"), &sl);
			CHECK_OK(exai_sign_verify_file(NULL, pk, path("d.txt"), s, sl, 0));
			CHECK_RC(exai_sign_verify_file(NULL, pk, path("d.txt"), s, sl, EXAI_SIGN_REQUIRE_PREHASHED), -EACCES);
			free(s);
		}
		exai_sign_key_free(k);
		exai_sign_pubkey_free(pk);
	}
	/* The wrong password for minisign's encrypted key. */
	exai_sign_key *k = NULL;
	CHECK_RC(exai_sign_key_load(&k, path("me.key"), "wrong"), -EBADMSG);
}

int main(void)
{
	if (sh("command -v minisign >/dev/null") != 0)
		test_skip("the minisign tool is not installed (Debian package minisign)");
	char *d = test_tmpdir();
	snprintf(dir, sizeof(dir), "%s", d);
	ours_to_minisign();
	minisign_to_ours();
	test_rmrf(d);
	free(d);
	return test_done();
}
