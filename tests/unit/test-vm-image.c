/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-vm-image: the guest image check before every boot (lib/vm/image.c): hashes from the
 * manifest, and the manifest's minisign signature once the operator configured a trusted key
 * (<state_dir>/guest-image.pub): unsigned, badly signed, signed by another key, or altered
 * after signing are refused; a good signature passes. A small stand-in image (two files).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "test.h"
#include "vm-internal.h"

static void put(const char *dir, const char *name, const char *text)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	CHECK_OK(exai__write_file_atomic(p, text, strlen(text), 0644));
}

static void hex256(const char *text, char out[65])
{
	uint8_t d[32];
	unsigned int dl;
	EVP_Digest(text, strlen(text), d, &dl, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void sign_manifest(const char *dir, const exai_sign_key *key, bool corrupt)
{
	char p[1024], *sig = NULL;
	size_t slen = 0;
	snprintf(p, sizeof(p), "%s/manifest.json", dir);
	CHECK_OK(exai_sign_file(&sig, &slen, key, p, "guest image test", NULL));
	if (sig && corrupt) {
		char *line2 = strchr(sig, '\n') + 1; /* the signature line: change one base64 char */
		line2[60] = line2[60] == 'A' ? 'B' : 'A'; /* past algorithm and key id */
	}
	snprintf(p, sizeof(p), "%s/manifest.json.minisig", dir);
	unlink(p);
	CHECK_OK(exai__write_file_atomic(p, sig, slen, 0644));
	exai_free(sig);
}

int main(void)
{
	char *state = test_tmpdir(), img[600], man[2048], h1[65], h2[65], kp[700];
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, copts, .state_dir = state);
	CHECK_OK(exai_ctx_new(&ctx, &copts));
	snprintf(img, sizeof(img), "%s/image", state);
	CHECK_OK(exai__mkdir_p(img, 0755));
	const char *kernel = "a stand-in kernel", *initrd = "a stand-in initramfs";
	put(img, "vmlinuz", kernel);
	put(img, "initramfs.cpio.gz", initrd);
	hex256(kernel, h1);
	hex256(initrd, h2);
	snprintf(man, sizeof(man),
		 "{\"version\":1,\"files\":[{\"name\":\"vmlinuz\",\"size\":%zu,\"sha256\":\"%s\"},"
		 "{\"name\":\"initramfs.cpio.gz\",\"size\":%zu,\"sha256\":\"%s\"}]}",
		 strlen(kernel), h1, strlen(initrd), h2);
	put(img, "manifest.json", man);

	/* no trusted key configured: the hashes decide */
	CHECK_OK(exai__vm_image_verify(ctx, img, "vmlinuz"));
	put(img, "vmlinuz", "another kernel!!!");
	CHECK_RC(exai__vm_image_verify(ctx, img, "vmlinuz"), -EBADMSG);
	put(img, "vmlinuz", kernel);

	/* the operator trusts a release key */
	exai_sign_key *release = NULL, *other = NULL;
	CHECK_OK(exai_sign_keygen(&release));
	CHECK_OK(exai_sign_keygen(&other));
	snprintf(kp, sizeof(kp), "%s/%s", state, EXAI__VM_IMAGE_KEY);
	char sk[700];
	snprintf(sk, sizeof(sk), "%s/release.key", state);
	CHECK_OK(exai_sign_key_save(release, sk, kp, NULL));

	CHECK_RC(exai__vm_image_verify(ctx, img, "vmlinuz"), -EACCES); /* unsigned */
	CHECK(strstr(exai_errmsg(), "not signed") != NULL);
	sign_manifest(img, release, true);
	CHECK_RC(exai__vm_image_verify(ctx, img, "vmlinuz"), -EBADMSG); /* bad signature */
	CHECK(strstr(exai_errmsg(), "does not verify") != NULL);
	sign_manifest(img, other, false);
	CHECK_RC(exai__vm_image_verify(ctx, img, "vmlinuz"), -EACCES); /* another key */
	sign_manifest(img, release, false);
	CHECK_OK(exai__vm_image_verify(ctx, img, "vmlinuz"));
	/* the manifest altered after signing (a file swapped with its hash updated) */
	man[strlen(man) - 5] ^= 1;
	put(img, "manifest.json", man);
	CHECK_RC(exai__vm_image_verify(ctx, img, "vmlinuz"), -EBADMSG);
	/* a damaged trusted key file is an error, not "no key" */
	put(state, EXAI__VM_IMAGE_KEY, "not a key\n");
	CHECK_RC(exai__vm_image_verify(ctx, img, "vmlinuz"), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "trusted guest image key") != NULL);

	exai_sign_key_free(release);
	exai_sign_key_free(other);
	exai_ctx_unref(ctx);
	test_rmrf(state);
	free(state);
	return test_done();
}
