/* SPDX-License-Identifier: Apache-2.0 */
/* image.c: the guest image (kernel + initramfs) and its manifest, checked before every boot.
 * Format: docs/formats/guest-image.md. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vm-internal.h"
#include "keys/keys-internal.h"

#define MANIFEST_MAX (64u << 10)

/* SHA-256 of a file, hex. */
static int file_sha256(const char *path, uint64_t *ret_size, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "guest image: cannot open %s", path);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t buf[1 << 16], sum[32];
	uint64_t size = 0;
	ssize_t n;
	int r = 0;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		r = exai__err(-ENOMEM, "OpenSSL SHA-256 is unavailable");
	while (r == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = exai__err_sys(exai__neg_errno(), "guest image: read %s", path);
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		size += (uint64_t)n;
	}
	unsigned int len = 0;
	if (r == 0)
		EVP_DigestFinal_ex(md, sum, &len);
	EVP_MD_CTX_free(md);
	close(fd);
	if (r < 0)
		return r;
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", sum[i]);
	*ret_size = size;
	return 0;
}

/* With a trusted key configured (<state_dir>/guest-image.pub), the manifest's bytes @text
 * must carry a valid prehashed minisign signature by it in manifest.json.minisig. */
static int check_signature(exai_ctx *ctx, const char *dir, const char *mpath, const char *text, size_t len)
{
	char *kpath = exai__path_join(exai_ctx_state_dir(ctx), EXAI__VM_IMAGE_KEY), *spath = NULL, *sig = NULL;
	exai_sign_pubkey *pk = NULL;
	size_t slen = 0;
	int r = kpath ? 0 : exai__err(-ENOMEM, "out of memory");
	if (r == 0 && access(kpath, F_OK) != 0) {
		exai__log_debug(ctx, "vm", "no %s: the image in %s is checked by its hashes only", kpath, dir);
		goto out;
	}
	char what[PATH_MAX + 128];
	if (r == 0 && (r = exai_sign_pubkey_load(&pk, kpath)) < 0) {
		snprintf(what, sizeof(what), "the trusted guest image key %s", kpath);
		r = exai__err_prefix(r, what);
	}
	if (r == 0 && asprintf(&spath, "%s.minisig", mpath) < 0) {
		spath = NULL;
		r = exai__err(-ENOMEM, "out of memory");
	}
	if (r == 0 && (r = exai__read_file(spath, 16384, &sig, &slen)) < 0)
		r = exai__err(r == -ENOENT ? -EACCES : r,
			      "guest image: %s is not signed (no %s) but a trusted key is configured (%s)", dir, spath, kpath);
	if (r == 0 && (r = exai_sign_verify(NULL, pk, text, len, sig, slen, EXAI_SIGN_REQUIRE_PREHASHED)) < 0) {
		snprintf(what, sizeof(what), "guest image: the signature %s does not verify with the trusted key %s", spath,
			 kpath);
		r = exai__err_prefix(r, what);
	}
out:
	exai_sign_pubkey_free(pk);
	free(sig);
	free(spath);
	free(kpath);
	return r;
}

int exai__vm_image_verify(exai_ctx *ctx, const char *dir, const char *kernel)
{
	char *mpath = exai__path_join(dir, "manifest.json"), *text = NULL;
	size_t len;
	json_t *m = NULL;
	int r;
	bool have_kernel = false, have_initrd = false;

	if (!mpath)
		return exai__err(-ENOMEM, "out of memory");
	r = exai__read_file(mpath, MANIFEST_MAX, &text, &len);
	if (r == 0)
		r = check_signature(ctx, dir, mpath, text, len);
	if (r < 0)
		goto out;
	if (exai__json_parse(&m, text, len) < 0 || !json_is_object(m)) {
		r = exai__err(-EBADMSG, "guest image: %s is not a JSON object", mpath);
		goto out;
	}
	if (json_number_value(json_object_get(m, "version")) != 1) {
		r = exai__err(-EBADMSG, "guest image: %s has no \"version\": 1", mpath);
		goto out;
	}
	json_t *files = json_object_get(m, "files"), *f;
	size_t i;
	if (!json_is_array(files)) {
		r = exai__err(-EBADMSG, "guest image: %s has no \"files\" array", mpath);
		goto out;
	}
	json_array_foreach(files, i, f) {
		const char *name = json_string_value(json_object_get(f, "name"));
		bool needed = name && (!strcmp(name, kernel) || !strcmp(name, "initramfs.cpio.gz"));
		const char *want = json_string_value(json_object_get(f, "sha256"));
		json_t *size = json_object_get(f, "size");
		if (!name || !name[0] || strchr(name, '/') || name[0] == '.' || !want || strlen(want) != 64 ||
		    !json_is_number(size)) {
			r = exai__err(-EBADMSG, "guest image: entry %zu of %s lacks a plain name, size or sha256",
				      i, mpath);
			goto out;
		}
		if (!needed)
			continue; /* another backend's kernel: not read for this boot */
		char *p = exai__path_join(dir, name), hex[65];
		uint64_t got;
		if (!p) {
			r = exai__err(-ENOMEM, "out of memory");
			goto out;
		}
		r = file_sha256(p, &got, hex);
		free(p);
		if (r < 0)
			goto out;
		if ((double)got != json_number_value(size) || strcmp(hex, want) != 0) {
			r = exai__err(-EBADMSG, "guest image: %s/%s does not match its manifest (size or SHA-256)",
				      dir, name);
			goto out;
		}
		have_kernel |= !strcmp(name, kernel);
		have_initrd |= !strcmp(name, "initramfs.cpio.gz");
	}
	if (!have_kernel || !have_initrd)
		r = exai__err(-EBADMSG, "guest image: %s must list %s and initramfs.cpio.gz", mpath, kernel);
out:
	json_decref(m);
	free(text);
	free(mpath);
	return r;
}
