/* SPDX-License-Identifier: Apache-2.0 */
/* fs.c: crash-safe file writes and bounded reads for the state directory. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core-internal.h"

char *exai__path_join(const char *dir, const char *name)
{
	char *p = NULL;
	size_t n = strlen(dir);
	const char *sep = (n && dir[n - 1] == '/') ? "" : "/";
	if (asprintf(&p, "%s%s%s", dir, sep, name) < 0)
		return NULL;
	return p;
}

int exai__mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return exai__err(-EINVAL, "path \"%.64s\" is empty or too long", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return exai__err_sys(exai__neg_errno(), "cannot create directory %s", buf);
			*p = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return exai__err_sys(exai__neg_errno(), "cannot stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return exai__err(-ENOTDIR, "%s exists and is not a directory", path);
	return 0;
}

int exai__write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return exai__neg_errno();
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int exai__fsync_parent(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof(buf))
		return exai__err(-ENAMETOOLONG, "path too long");
	memcpy(buf, path, n + 1);
	char *slash = strrchr(buf, '/');
	if (!slash)
		strcpy(buf, ".");
	else if (slash == buf)
		buf[1] = '\0';
	else
		*slash = '\0';
	int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open directory %s", buf);
	int r = fsync(fd) < 0 ? exai__err_sys(exai__neg_errno(), "fsync of directory %s", buf) : 0;
	close(fd);
	return r;
}

int exai__write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
		return exai__err(-ENAMETOOLONG, "path too long: %s", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot create a temporary file beside %s", path);
	int r = 0;
	if (fchmod(fd, mode) < 0)
		r = exai__err_sys(exai__neg_errno(), "chmod %s", tmp);
	else if ((r = exai__write_all(fd, data, len)) < 0)
		r = exai__err_sys(r, "write %s", tmp);
	else if (fsync(fd) < 0)
		r = exai__err_sys(exai__neg_errno(), "fsync %s", tmp);
	if (close(fd) < 0 && r == 0)
		r = exai__err_sys(exai__neg_errno(), "close %s", tmp);
	if (r == 0 && rename(tmp, path) < 0)
		r = exai__err_sys(exai__neg_errno(), "rename %s to %s", tmp, path);
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return exai__fsync_parent(path);
}

int exai__read_file(const char *path, size_t max, char **ret, size_t *retlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", path);
	struct exai__buf b = { 0 };
	int r = 0;
	for (;;) {
		if ((r = exai__buf_reserve(&b, 65536)) < 0) {
			exai__err(r, "out of memory reading %s", path);
			break;
		}
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = exai__err_sys(exai__neg_errno(), "read %s", path);
			break;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
		if (b.len > max) {
			r = exai__err(-EFBIG, "%s is larger than %zu bytes", path, max);
			break;
		}
	}
	close(fd);
	if (r < 0) {
		exai__buf_free(&b);
		return r;
	}
	*ret = exai__buf_steal(&b, retlen);
	return *ret ? 0 : exai__err(-ENOMEM, "out of memory");
}
