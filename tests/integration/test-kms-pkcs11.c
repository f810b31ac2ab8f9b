/* SPDX-License-Identifier: Apache-2.0 */
/* test-kms-pkcs11: the PKCS#11 provider against SoftHSM2 in a temporary token directory:
 * clear errors for a missing module, an unknown token and a wrong PIN; a keyring whose KEK is
 * generated on the token and cannot be read out (CKA_VALUE refused, sensitive, not
 * extractable); init, encrypt, rotate, decrypt (also from several threads, and after reopening
 * from the record), revoke. */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "exai-config.h"
#include "keys/keys-internal.h"
#include "../unit/keys-vectors.h"
#include "test.h"

static const char *module_path(void)
{
	static const char *const paths[] = { "/usr/lib/softhsm/libsofthsm2.so",
					     "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", NULL };
	for (size_t i = 0; paths[i]; i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

static int seal(struct kv_sink *out, exai_keyring *kr, const char *text)
{
	return kv_seal(out, kr, "hsm-test", NULL, text);
}

static int open_(exai_keyring *kr, const struct kv_sink *in)
{
	return kv_open(kr, in, NULL);
}

/* Reads the KEK's attributes straight through the module, as an attacker with the PIN could. */
static void kek_not_extractable(const char *module, const char *label)
{
	void *dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	CHECK(dl != NULL);
	if (!dl)
		return;
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	CK_FUNCTION_LIST_PTR f = NULL;
	CHECK(gfl && gfl(&f) == CKR_OK);
	CK_RV rv = f->C_Initialize(NULL);
	CHECK(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CHECK(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n >= 1);
	CK_SESSION_HANDLE s;
	CHECK(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK);
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4);
	CHECK(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
	CK_ATTRIBUTE t = { CKA_LABEL, (void *)label, strlen(label) };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CHECK(f->C_FindObjectsInit(s, &t, 1) == CKR_OK);
	CHECK(f->C_FindObjects(s, &h, 1, &n) == CKR_OK && n == 1);
	f->C_FindObjectsFinal(s);
	uint8_t value[64];
	CK_ATTRIBUTE v = { CKA_VALUE, value, sizeof(value) };
	rv = f->C_GetAttributeValue(s, h, &v, 1);
	CHECK(rv == CKR_ATTRIBUTE_SENSITIVE);
	CK_BBOOL sens = CK_FALSE, extr = CK_TRUE;
	CK_ATTRIBUTE a[] = { { CKA_SENSITIVE, &sens, sizeof(sens) }, { CKA_EXTRACTABLE, &extr, sizeof(extr) } };
	CHECK(f->C_GetAttributeValue(s, h, a, 2) == CKR_OK);
	CHECK(sens == CK_TRUE && extr == CK_FALSE);
	f->C_CloseSession(s);
	dlclose(dl); /* not finalised: the library still uses the module */
}

struct worker {
	exai_keyring *kr;
	const struct kv_sink *msg;
	int failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 20; i++) {
		exai_keyring_flush_cache(w->kr); /* force unwraps on the token */
		if (open_(w->kr, w->msg) != 0)
			w->failures++;
	}
	return NULL;
}

int main(void)
{
#if !EXAI_HAVE_PKCS11
	test_skip("libexai was built without PKCS#11 support");
#endif
	const char *module = module_path();
	if (!module || system("command -v softhsm2-util >/dev/null") != 0)
		test_skip("SoftHSM2 is not installed (Debian package softhsm2)");
	char *dir = test_tmpdir();
	char conf[1024], cmd[4096], pinfile[1024], badpin[1024];
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	FILE *f = fopen(conf, "w");
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s/tokens", dir);
	mkdir(cmd, 0700);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof(cmd), "softhsm2-util --init-token --free --label exai-test --pin 1234 --so-pin 5678 >/dev/null");
	CHECK(system(cmd) == 0);
	snprintf(pinfile, sizeof(pinfile), "%s/pin", dir);
	snprintf(badpin, sizeof(badpin), "%s/badpin", dir);
	f = fopen(pinfile, "w");
	fputs("1234\n", f);
	fclose(f);
	chmod(pinfile, 0600);
	f = fopen(badpin, "w");
	fputs("9999\n", f);
	fclose(f);
	chmod(badpin, 0600);

	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	struct exai_kms_provider kms;

	/* Clear errors. */
	EXAI_OPTS(exai_kms_pkcs11_opts, po, .module = "/nonexistent/libnothing.so", .token_label = "exai-test",
		  .pin_file = pinfile);
	CHECK_RC(exai_kms_pkcs11_provider(&kms, ctx, &po), -ENOENT);
	CHECK(strstr(test_errmsg(), "/nonexistent/libnothing.so") != NULL);
	po.module = module;
	po.token_label = "no-such-token";
	CHECK_RC(exai_kms_pkcs11_provider(&kms, ctx, &po), -ENOENT);
	CHECK(strstr(test_errmsg(), "no-such-token") != NULL);
	po.token_label = "exai-test";
	po.pin_file = badpin;
	CHECK_RC(exai_kms_pkcs11_provider(&kms, ctx, &po), -EACCES);
	CHECK(strstr(test_errmsg(), "wrong PIN") != NULL);
	po.pin_file = NULL;
	unsetenv("EXAI_PKCS11_PIN");
	CHECK_RC(exai_kms_pkcs11_provider(&kms, ctx, &po), -EACCES);
	chmod(pinfile, 0644);
	po.pin_file = pinfile;
	CHECK_RC(exai_kms_pkcs11_provider(&kms, ctx, &po), -EACCES);
	chmod(pinfile, 0600);

	/* A keyring on the token. */
	CHECK_OK(exai_kms_pkcs11_provider(&kms, ctx, &po));
	exai_keyring *kr = NULL;
	EXAI_OPTS(exai_keyring_opts, ko, .kms = &kms, .pkcs11 = &po);
	CHECK_OK(exai_keyring_init(&kr, ctx, "hsmco", &ko));
	if (!kr)
		return test_done();
	kek_not_extractable(module, "exai-kek:hsmco:1");
	struct kv_sink a1 = { 0 }, a2 = { 0 };
	CHECK_OK(seal(&a1, kr, "under generation 1"));
	CHECK_OK(exai_keyring_rotate(kr));
	kek_not_extractable(module, "exai-kek:hsmco:2");
	CHECK_OK(seal(&a2, kr, "under generation 2"));
	exai_keyring_flush_cache(kr);
	CHECK_OK(open_(kr, &a1));
	CHECK_OK(open_(kr, &a2));
	/* Several threads unwrapping through the token at once. */
	struct worker w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .kr = kr, .msg = i % 2 ? &a1 : &a2 };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].failures == 0);
	}
	/* Reopened from the record (module, token and PIN file recorded; the PIN itself not). */
	exai_keyring *kr2 = NULL;
	CHECK_OK(exai_keyring_open(&kr2, ctx, "hsmco", NULL));
	CHECK_OK(open_(kr2, &a1));
	char *st = NULL;
	CHECK_OK(exai_keyring_status(&st, kr2));
	CHECK(st && strstr(st, "\"provider\":\"pkcs11\"") && strstr(st, "\"kek_enabled\":true") && !strstr(st, "1234"));
	exai_free(st);
	/* Revoke: the KEK is disabled on the token; nothing opens any more. */
	CHECK_OK(exai_keyring_revoke(kr));
	CHECK_RC(open_(kr, &a2), -EACCES);
	CHECK_RC(open_(kr2, &a2), -EACCES);
	exai_keyring *kr3 = NULL;
	CHECK_OK(exai_keyring_open(&kr3, ctx, "hsmco", NULL));
	CHECK_OK(exai_keyring_status(&st, kr3));
	CHECK(st && strstr(st, "\"kek_enabled\":false") && strstr(st, "\"revoked\":true"));
	exai_free(st);
	/* Even a keyring that ignored the local record is refused by the token itself. */
	struct exai_kms_provider k2;
	CHECK_OK(exai_kms_pkcs11_provider(&k2, ctx, &po));
	uint8_t dek[32];
	struct exai_kms_key_info info = { .sz = sizeof(info) };
	CHECK_OK(k2.describe(k2.data, "hsmco", &info));
	CHECK(!info.enabled && info.latest_version == 2);
	uint8_t junk[60] = { 0 };
	CHECK_RC(k2.unwrap(k2.data, "hsmco", 2, junk, sizeof(junk), dek), -EACCES);
	k2.free(k2.data);

	/* Two keyrings on one token: freeing one leaves the other logged in and working. */
	exai_keyring *x = NULL, *y = NULL;
	struct exai_kms_provider kx, ky;
	CHECK_OK(exai_kms_pkcs11_provider(&kx, ctx, &po));
	CHECK_OK(exai_kms_pkcs11_provider(&ky, ctx, &po));
	EXAI_OPTS(exai_keyring_opts, ox, .kms = &kx, .pkcs11 = &po);
	EXAI_OPTS(exai_keyring_opts, oy, .kms = &ky, .pkcs11 = &po);
	CHECK_OK(exai_keyring_init(&x, ctx, "tenant-x", &ox));
	CHECK_OK(exai_keyring_init(&y, ctx, "tenant-y", &oy));
	struct kv_sink my = { 0 };
	CHECK_OK(seal(&my, y, "y's artefact"));
	exai_keyring_unref(x);
	exai_keyring_flush_cache(y);
	CHECK_OK(open_(y, &my));
	free(my.p);
	exai_keyring_unref(y);

	free(a1.p), free(a2.p);
	exai_keyring_unref(kr3);
	exai_keyring_unref(kr2);
	exai_keyring_unref(kr);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
