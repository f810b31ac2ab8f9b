/* SPDX-License-Identifier: Apache-2.0 */
/* util.c: small file helpers of the keys module (secret files in locked memory). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys-internal.h"

int exai__read_secret_file(const char *path, size_t max, bool private_only, char **ret, size_t *retlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", path);
	struct stat st;
	int r;
	if (fstat(fd, &st) < 0) {
		r = exai__err_sys(exai__neg_errno(), "cannot stat %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = exai__err(-EINVAL, "%s is not a regular file", path);
		goto out;
	}
	if (private_only && (st.st_mode & 077)) {
		r = exai__err(-EACCES, "%s is accessible to its group or others (mode %04o): a key file must be 0600",
			      path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((size_t)st.st_size > max) {
		r = exai__err(-EFBIG, "%s is larger than %zu bytes", path, max);
		goto out;
	}
	char *buf = exai_secure_alloc(max + 1);
	if (!buf) {
		r = exai__err(-ENOMEM, "out of locked memory reading %s", path);
		goto out;
	}
	size_t n = 0;
	for (;;) {
		ssize_t got = read(fd, buf + n, max + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = exai__err_sys(exai__neg_errno(), "cannot read %s", path);
			exai_secure_free(buf);
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > max) {
			exai_secure_free(buf);
			r = exai__err(-EFBIG, "%s is larger than %zu bytes", path, max);
			goto out;
		}
	}
	buf[n] = '\0';
	*ret = buf;
	if (retlen)
		*retlen = n;
	r = 0;
out:
	close(fd);
	return r;
}

int exai__write_new_file(const char *path, const void *data, size_t len, mode_t mode)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		return exai__err(-EEXIST, "%s exists already; not replacing it", path);
	int r = exai__write_file_atomic(path, data, len, mode);
	if (r < 0)
		return exai__err_sys(r, "cannot write %s", path);
	return 0;
}

int exai__err_prefix(int err, const char *prefix)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", exai_errmsg());
	return exai__err(err, "%s: %s", prefix, tmp);
}

size_t exai__kek_wrap_aad(uint8_t aad[128], const char *key_id, uint32_t version)
{
	static const char label[] = "exai-kek-wrap-v1";
	size_t k = strlen(key_id); /* a tenant name: at most 64 bytes */
	memcpy(aad, label, sizeof(label));
	memcpy(aad + sizeof(label), key_id, k + 1);
	exai__be32(aad + sizeof(label) + k + 1, version);
	return sizeof(label) + k + 5;
}
