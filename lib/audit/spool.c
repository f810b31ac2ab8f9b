// SPDX-License-Identifier: Apache-2.0
/*
 * spool.c: the events of a process that finds the log held for writing by another process
 * (EXAI_AUDIT_SPOOL_IF_BUSY). They go, durably, to a file of its own under `<log>/spool/`, which
 * the writer chains into the log once the spooling process has closed it (docs/audit.md,
 * docs/formats/audit.md "Spool"). Nothing accepted is lost: a spool file leaves the directory
 * only after every one of its events is durable in the log, and a journal makes a writer that
 * dies half-way resume where it stopped rather than append an event twice.
 */
#include "audit-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define SPOOL_HEADER "{\"exai_audit_spool\":1}\n"
#define SPOOL_JOURNAL "ingest.json"

static char *spool_dir(const char *logdir)
{
	return exai__path_join(logdir, "spool");
}

int exai__spool_open(struct exai__spool *sp, const char *logdir)
{
	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	char *dir = spool_dir(logdir), name[64];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "%020llu-%d-%08x.jsonl",
		 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec, (int)getpid(),
		 (unsigned)randombytes_random());
	int r = dir ? exai__mkdir_p(dir, 0700) : exai__err(-ENOMEM, "out of memory");
	if (r == 0 && !(sp->path = exai__path_join(dir, name)))
		r = exai__err(-ENOMEM, "out of memory");
	if (r == 0 && (sp->fd = open(sp->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600)) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot create the audit spool file %s", sp->path);
	/* held until close: a writer takes only files whose lock is free, that is, complete ones */
	if (r == 0 && flock(sp->fd, LOCK_EX) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot lock %s", sp->path);
	if (r == 0 && (r = exai__write_all(sp->fd, SPOOL_HEADER, strlen(SPOOL_HEADER))) < 0)
		exai__err_sys(r, "cannot write %s", sp->path);
	if (r == 0 && (fdatasync(sp->fd) < 0 || exai__fsync_parent(sp->path) < 0))
		r = exai__err_sys(exai__neg_errno(), "cannot make %s durable", sp->path);
	free(dir);
	if (r < 0) {
		if (sp->fd >= 0) {
			unlink(sp->path);
			close(sp->fd);
		}
		free(sp->path);
		memset(sp, 0, sizeof(*sp));
		sp->fd = -1;
		return r;
	}
	sp->len = strlen(SPOOL_HEADER);
	return 0;
}

int exai__spool_write(struct exai__spool *sp, const char *members, size_t len, bool sync)
{
	if (sp->broken)
		return exai__err(-EROFS, "the audit spool file %s failed a write and accepts no more events", sp->path);
	struct iovec iov[3] = { { "{", 1 }, { (void *)members, len }, { "}\n", 2 } };
	ssize_t n = writev(sp->fd, iov, 3);
	int r = n == (ssize_t)(len + 3) ? 0 : n < 0 ? exai__neg_errno() : -EIO;
	if (r == 0 && sync && fdatasync(sp->fd) < 0)
		r = exai__neg_errno();
	if (r < 0) {
		/* a torn line would be the last one, which the writer ignores; cut it all the same */
		if (ftruncate(sp->fd, (off_t)sp->len) < 0)
			sp->broken = r;
		return exai__err_sys(r, "cannot write the audit spool file %s", sp->path);
	}
	sp->len += len + 3;
	return 0;
}

int exai__spool_flush(struct exai__spool *sp)
{
	if (sp->broken)
		return exai__err(-EROFS, "the audit spool file %s failed a write", sp->path);
	if (fdatasync(sp->fd) < 0)
		return exai__err_sys(exai__neg_errno(), "cannot make %s durable", sp->path);
	return 0;
}

int exai__spool_close(struct exai__spool *sp)
{
	int r = sp->fd >= 0 ? exai__spool_flush(sp) : 0;
	if (sp->fd >= 0)
		close(sp->fd); /* releases the lock: the file is complete */
	free(sp->path);
	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	return r;
}

/* ---- the writer's side ------------------------------------------------------------------- */

/* The journal: which file is being chained, and the log's size when its first event went in.
 * Events of one file go in with nobody else appending (exai__log_ingest_begin), so after a
 * crash the log's size tells how many of them are in. */

int exai__spool_journal_parse(const char *text, size_t len, char **retfile, uint64_t *retfirst)
{
	json_t *j = NULL;
	int r = exai__json_parse(&j, text, len);
	const char *f = r == 0 ? json_string_value(json_object_get(j, "file")) : NULL;
	json_t *first = r == 0 ? json_object_get(j, "first") : NULL;
	if (r == 0 && (json_number_value(json_object_get(j, "v")) != 1 || !f || !*f || strchr(f, '/') || *f == '.' ||
		       !json_is_number(first) || json_number_value(first) < 0 || json_number_value(first) > 9007199254740992.0))
		r = exai__err(-EBADMSG, "not an ingest journal of version 1");
	if (r == 0 && !(*retfile = strdup(f)))
		r = exai__err(-ENOMEM, "out of memory");
	if (r == 0)
		*retfirst = (uint64_t)json_number_value(first);
	json_decref(j);
	return r == -ENOMEM ? r : r < 0 ? -EBADMSG : 0;
}

static int journal_read(const char *path, char **retfile, uint64_t *retfirst)
{
	char *text = NULL;
	size_t len;
	int r = exai__read_file(path, 4096, &text, &len);
	if (r == -EFBIG)
		r = exai__err(-EBADMSG, "%s: not an ingest journal (too large)", path);
	if (r == 0 && (r = exai__spool_journal_parse(text, len, retfile, retfirst)) == -EBADMSG) {
		EXAI__WHY(why);
		r = exai__err(-EBADMSG, "%s: %s", path, why);
	}
	free(text);
	return r;
}

static int journal_write(const char *path, const char *file, uint64_t first)
{
	char text[256];
	int n = snprintf(text, sizeof(text), "{\"file\":\"%s\",\"first\":%llu,\"v\":1}\n", file,
			 (unsigned long long)first);
	return exai__write_file_atomic(path, text, (size_t)n, 0600);
}

/* The event that takes the place of a spooled line the log refuses (so that the count of
 * events per line, which the journal relies on, holds; and the refusal is on record). */
static int append_refusal(exai_audit_log *log, const char *file, size_t line, const char *why)
{
	json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:{s:s, s:I, s:s}}", "class_uid", 6003,
			      "category_uid", 6, "activity_id", 99, "type_uid", 600399, "activity_name",
			      "audit.spool.refused", "status_id", 2, "status", "Failure", "detail", "file", file,
			      "line", (json_int_t)line, "reason", why);
	char *text = NULL;
	size_t len;
	int r = o ? exai__jcs_dump(o, &text, &len) : exai__err(-ENOMEM, "out of memory");
	if (r == 0)
		r = exai__log_append_spooled(log, text, len);
	free(text);
	json_decref(o);
	return r;
}

/* Renames @path, which the last error says is unreadable, to "<path>.refused" for the operator
 * and logs why; 0, or the rename's error. */
static int set_aside(exai_audit_log *log, const char *path)
{
	EXAI__WHY(why);
	char *aside = NULL;
	int r = 0;
	if (asprintf(&aside, "%s.refused", path) < 0) {
		aside = NULL; /* undefined after a failure */
		r = exai__err(-ENOMEM, "out of memory");
	} else if (rename(path, aside) < 0) {
		r = exai__err_sys(exai__neg_errno(), "cannot set %s aside", path);
	}
	if (r == 0)
		exai__log_err(exai__log_ctx(log), "audit", "%s: %s; kept as %s", exai__log_origin(log), why, aside);
	free(aside);
	return r;
}

/* Chains the complete lines of spool file @name (read whole: @data, @len) from line @skip on. */
static int ingest_lines(exai_audit_log *log, const char *name, const char *data, size_t len, size_t skip)
{
	size_t hl = strlen(SPOOL_HEADER);
	if (len < hl || memcmp(data, SPOOL_HEADER, hl) != 0)
		return exai__err(-EBADMSG, "%s is not an audit spool file of version 1", name);
	const char *p = data + hl, *end = data + len;
	int r = 0;
	for (size_t line = 0; r == 0 && p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break; /* torn: its append never returned */
		if (line >= skip && (r = exai__log_append_spooled(log, p, (size_t)(nl - p))) < 0 && r != -ENOMEM &&
		    r != -EROFS) {
			EXAI__WHY(why);
			exai__log_warn(exai__log_ctx(log), "audit", "%s: %s line %zu refused: %s", exai__log_origin(log),
				       name, line + 2, why);
			r = append_refusal(log, name, line + 2, why);
		}
		p = nl + 1;
	}
	return r;
}

/* Chains one spool file whose writer is gone, then removes it. @resume: the journal's first
 * seq when a previous writer stopped half-way through it, else UINT64_MAX. 1: no such file;
 * 2: its spooling process (or another ingest) still holds it. */
static int ingest_file(exai_audit_log *log, const char *dir, const char *name, uint64_t resume)
{
	char *path = exai__path_join(dir, name), *jpath = exai__path_join(dir, SPOOL_JOURNAL), *data = NULL;
	size_t len = 0;
	int r = path && jpath ? 0 : exai__err(-ENOMEM, "out of memory");
	int fd = r == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (r == 0 && fd < 0)
		r = errno == ENOENT ? 1 : exai__err_sys(exai__neg_errno(), "cannot open %s", path);
	if (r == 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
		r = errno == EWOULDBLOCK ? 2 : exai__err_sys(exai__neg_errno(), "cannot lock %s", path);
	if (r == 0)
		r = exai__read_file(path, (size_t)1 << 31, &data, &len);
	if (r == 0) {
		uint64_t next = exai__log_ingest_begin(log);
		size_t skip = 0;
		if (resume != UINT64_MAX)
			skip = next > resume ? (size_t)(next - resume) : 0;
		else
			r = journal_write(jpath, name, next);
		if (r == 0)
			r = ingest_lines(log, name, data, len, skip);
		int f = exai__log_ingest_end(log); /* durable before the file goes */
		if (r == 0)
			r = f;
		if (r == -EBADMSG) /* not ours to read: kept aside for the operator, never deleted */
			r = set_aside(log, path);
		else if (r == 0 && unlink(path) < 0) {
			r = exai__err_sys(exai__neg_errno(), "cannot remove %s", path);
		}
		if (r == 0 && (unlink(jpath) < 0 && errno != ENOENT))
			r = exai__err_sys(exai__neg_errno(), "cannot remove %s", jpath);
		if (r == 0)
			exai__fsync_parent(path);
	}
	if (fd >= 0)
		close(fd);
	free(data);
	free(path);
	free(jpath);
	return r;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool spool_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && l > 6 && strcmp(n + l - 6, ".jsonl") == 0;
}

int exai__spool_ingest(exai_audit_log *log)
{
	char *dir = spool_dir(exai__log_path(log)), *jpath = dir ? exai__path_join(dir, SPOOL_JOURNAL) : NULL;
	if (!dir || !jpath) {
		free(dir);
		return exai__err(-ENOMEM, "out of memory");
	}
	int r = 0;
	/* first the file a writer stopped in */
	if (access(jpath, F_OK) == 0) {
		char *file = NULL;
		uint64_t first = 0;
		r = journal_read(jpath, &file, &first);
		if (r == -EBADMSG) {
			/* unreadable (it is written atomically, so this is damage): set aside; its file is
			 * then chained whole, some events perhaps twice, rather than any lost */
			r = set_aside(log, jpath);
		} else if (r == 0 && (r = ingest_file(log, dir, file, first)) == 1) { /* its file is gone: done */
			r = unlink(jpath) < 0 ? exai__err_sys(exai__neg_errno(), "cannot remove %s", jpath) : 0;
		}
		free(file);
	}
	DIR *d = r == 0 ? opendir(dir) : NULL;
	char **names = NULL;
	size_t n = 0;
	if (d) {
		struct dirent *e;
		while (r == 0 && (e = readdir(d))) {
			char **nn = spool_name(e->d_name) ? realloc(names, (n + 1) * sizeof(*names)) : NULL;
			if (nn && (nn[n] = strdup(e->d_name)))
				names = nn, n++;
			else if (spool_name(e->d_name))
				r = exai__err(-ENOMEM, "out of memory");
			else if (nn)
				names = nn;
		}
		closedir(d);
	} else if (r == 0 && errno != ENOENT) {
		r = exai__err_sys(exai__neg_errno(), "cannot read %s", dir);
	}
	if (n)
		qsort(names, n, sizeof(*names), by_name); /* names start with the creation time */
	for (size_t i = 0; i < n; i++) {
		if (r >= 0)
			r = ingest_file(log, dir, names[i], UINT64_MAX);
		free(names[i]);
	}
	free(names);
	free(dir);
	free(jpath);
	return r < 0 ? r : 0;
}
