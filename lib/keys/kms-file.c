/* SPDX-License-Identifier: Apache-2.0 */
/* kms-file.c: the `file` KMS provider. KEK version N of tenant T is the 32-byte file
 * <state>/keys/T/kek-N.bin (0600); `kek.disabled` beside it disables the key. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "keys-internal.h"

#define FILE_WRAPPED_LEN (12u + 32u + 16u)

struct file_kms {
	exai_ctx *ctx;
};

static int tenant_dir(struct file_kms *f, const char *key_id, char *out, size_t outlen)
{
	int r = exai__tenant_name_check(key_id);
	if (r < 0)
		return r;
	if ((size_t)snprintf(out, outlen, "%s/keys/%s", exai_ctx_state_dir(f->ctx), key_id) >= outlen)
		return exai__err(-ENAMETOOLONG, "state directory path too long");
	return 0;
}

static int kek_path(struct file_kms *f, const char *key_id, uint32_t version, char *out, size_t outlen)
{
	char dir[4096];
	int r = tenant_dir(f, key_id, dir, sizeof(dir));
	if (r < 0)
		return r;
	if ((size_t)snprintf(out, outlen, "%s/kek-%u.bin", dir, version) >= outlen)
		return exai__err(-ENAMETOOLONG, "state directory path too long");
	return 0;
}

static bool is_disabled(struct file_kms *f, const char *key_id)
{
	char dir[4096], p[4200];
	if (tenant_dir(f, key_id, dir, sizeof(dir)) < 0)
		return true;
	snprintf(p, sizeof(p), "%s/kek.disabled", dir);
	return access(p, F_OK) == 0;
}

static int file_describe(void *data, const char *key_id, struct exai_kms_key_info *info)
{
	struct file_kms *f = data;
	char dir[4096];
	int r = tenant_dir(f, key_id, dir, sizeof(dir));
	if (r < 0)
		return r;
	info->latest_version = 0;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			unsigned v;
			char tail[8];
			if (sscanf(de->d_name, "kek-%u.bi%1s", &v, tail) == 2 && v > info->latest_version)
				info->latest_version = v;
		}
		closedir(d);
	}
	info->enabled = info->latest_version > 0 && !is_disabled(f, key_id);
	return 0;
}

/* Loads KEK @version into locked memory. */
static int load_kek(struct file_kms *f, const char *key_id, uint32_t version, char **ret)
{
	char p[4200];
	int r = kek_path(f, key_id, version, p, sizeof(p));
	if (r < 0)
		return r;
	if (is_disabled(f, key_id))
		return exai__err(-EACCES, "KEK of tenant %s is disabled in the file KMS", key_id);
	size_t len;
	r = exai__read_secret_file(p, 64, true, ret, &len);
	if (r == -ENOENT)
		return exai__err(-EACCES, "KEK version %u of tenant %s does not exist (destroyed?)", version, key_id);
	if (r < 0)
		return r;
	if (len != EXAI__KEY_LEN) {
		exai_secure_free(*ret);
		return exai__err(-EBADMSG, "%s: a KEK file must hold 32 bytes, not %zu", p, len);
	}
	return 0;
}


static int file_create_key(void *data, const char *key_id, uint32_t *ret_version)
{
	struct file_kms *f = data;
	struct exai_kms_key_info info = { .sz = sizeof(info) };
	int r = file_describe(f, key_id, &info);
	if (r < 0)
		return r;
	char dir[4096], p[4200];
	tenant_dir(f, key_id, dir, sizeof(dir));
	r = exai__mkdir_p(dir, 0700);
	if (r < 0)
		return exai__err_sys(r, "cannot create %s", dir);
	uint32_t v = info.latest_version + 1;
	kek_path(f, key_id, v, p, sizeof(p));
	uint8_t *k = exai_secure_alloc(EXAI__KEY_LEN);
	if (!k)
		return exai__err(-ENOMEM, "out of locked memory");
	randombytes_buf(k, EXAI__KEY_LEN);
	r = exai__write_new_file(p, k, EXAI__KEY_LEN, 0600);
	exai_secure_free(k);
	if (r < 0)
		return r;
	*ret_version = v;
	return 0;
}

/* AES-256-GCM under KEK @version, the AAD binding tenant and version (docs/formats/keys.md).
 * The wrapped form is IV (12) || encrypted DEK (32) || tag (16): sealing turns the DEK @in into
 * it at @out (with a fresh IV), opening turns it at @in into the DEK at @out. */
static int kek_gcm(struct file_kms *f, const char *key_id, uint32_t version, bool seal, const uint8_t *in,
		   uint8_t *out)
{
	char *kek;
	int r = load_kek(f, key_id, version, &kek);
	if (r < 0)
		return r;
	uint8_t aad[128];
	size_t aadlen = exai__kek_wrap_aad(aad, key_id, version);
	struct exai__gcm g;
	r = exai__gcm_init(&g, (const uint8_t *)kek, EXAI__KEY_LEN, seal);
	if (r == 0 && seal) {
		randombytes_buf(out, 12);
		r = exai__gcm_seal(&g, out, 12, aad, aadlen, in, 32, out + 12, out + 44, 16);
	} else if (r == 0) {
		r = exai__gcm_open(&g, in, 12, aad, aadlen, in + 12, 32, out, in + 44, 16);
	}
	exai__gcm_done(&g);
	exai_secure_free(kek);
	return r;
}

static int file_wrap(void *data, const char *key_id, uint32_t version, const uint8_t dek[32], uint8_t *out,
		     size_t *outlen)
{
	int r = kek_gcm(data, key_id, version, true, dek, out);
	if (r == 0)
		*outlen = FILE_WRAPPED_LEN;
	return r;
}

static int file_unwrap(void *data, const char *key_id, uint32_t version, const uint8_t *in, size_t inlen,
		       uint8_t dek[32])
{
	if (inlen != FILE_WRAPPED_LEN)
		return exai__err(-EBADMSG, "wrapped DEK of %zu bytes (want %u)", inlen, FILE_WRAPPED_LEN);
	int r = kek_gcm(data, key_id, version, false, in, dek);
	if (r == -EBADMSG)
		return exai__err(-EBADMSG, "wrapped DEK of tenant %s does not authenticate under KEK version %u", key_id, version);
	return r;
}

static int file_disable(void *data, const char *key_id)
{
	struct file_kms *f = data;
	char dir[4096], p[4200];
	int r = tenant_dir(f, key_id, dir, sizeof(dir));
	if (r < 0)
		return r;
	snprintf(p, sizeof(p), "%s/kek.disabled", dir);
	r = exai__write_file_atomic(p, "disabled\n", 9, 0600);
	return r < 0 ? exai__err_sys(r, "cannot write %s", p) : 0;
}

static int file_destroy_version(void *data, const char *key_id, uint32_t version)
{
	struct file_kms *f = data;
	char p[4200];
	int r = kek_path(f, key_id, version, p, sizeof(p));
	if (r < 0)
		return r;
	/* Overwrite, then unlink: the bytes do not linger in the file's blocks on simple file
	 * systems (copy-on-write ones and SSDs may keep them: keep the state dir encrypted). */
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		uint8_t zero[EXAI__KEY_LEN] = { 0 };
		(void)exai__write_all(fd, zero, sizeof(zero));
		(void)fsync(fd);
		close(fd);
	}
	if (unlink(p) < 0 && errno != ENOENT)
		return exai__err_sys(exai__neg_errno(), "cannot remove %s", p);
	return exai__fsync_parent(p);
}

static void file_free(void *data)
{
	struct file_kms *f = data;
	if (f)
		exai_ctx_unref(f->ctx);
	free(f);
}

EXAI_API int exai_kms_file_provider(struct exai_kms_provider *ret, exai_ctx *ctx)
{
	if (!ret || !ctx)
		return exai__err(-EINVAL, "exai_kms_file_provider: NULL argument");
	struct file_kms *f = calloc(1, sizeof(*f));
	if (!f)
		return exai__err(-ENOMEM, "out of memory");
	f->ctx = exai_ctx_ref(ctx);
	*ret = (struct exai_kms_provider){
		.sz = sizeof(*ret),
		.name = "file",
		.data = f,
		.create_key = file_create_key,
		.wrap = file_wrap,
		.unwrap = file_unwrap,
		.describe = file_describe,
		.disable = file_disable,
		.destroy_version = file_destroy_version,
		.free = file_free,
	};
	return 0;
}
