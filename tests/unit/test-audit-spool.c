/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-spool: a second writer spools (EXAI_AUDIT_SPOOL_IF_BUSY) and loses nothing: the
 * writer chains its events once it has closed (at open, from its thread, at close), in order,
 * once each, also after a writer died half-way through a file; torn, refused and foreign
 * spool content. */
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "audit/audit-internal.h"
#include "test.h"

static exai_ctx *ctx;
static char *logdir, *spooldir;

static exai_audit_log *open_log(uint32_t flags)
{
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, o, .origin = "spool", .flags = flags);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	return log;
}

static uint64_t size_of(exai_audit_log *log)
{
	uint64_t n = UINT64_MAX;
	CHECK_OK(exai_audit_size(log, &n));
	return n;
}

static size_t spool_files(void)
{
	size_t n = 0;
	DIR *d = opendir(spooldir);
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* The activity_name of event @seq. */
static char *name_of(exai_audit_log *log, uint64_t seq)
{
	char *leaf = NULL;
	size_t len;
	CHECK_OK(exai_audit_leaf(log, seq, &leaf, &len));
	json_t *j = json_loads(leaf, 0, NULL);
	CHECK(j != NULL);
	char *n = strdup(json_string_value(json_object_get(j, "activity_name")));
	json_decref(j);
	exai_free(leaf);
	return n;
}

static void check_names(exai_audit_log *log, uint64_t from, const char *const *names, size_t n)
{
	CHECK(size_of(log) == from + n);
	for (size_t i = 0; i < n; i++) {
		char *got = name_of(log, from + i);
		CHECK_STREQ(got, names[i]);
		free(got);
	}
}

static void append(exai_audit_log *log, const char *name, uint64_t expect_seq)
{
	char json[256];
	uint64_t seq = 0;
	snprintf(json, sizeof(json), "{\"activity_id\":1,\"activity_name\":\"%s\",\"class_uid\":6003}", name);
	CHECK_OK(exai_audit_append_json(log, json, strlen(json), &seq));
	CHECK(seq == expect_seq);
}

/* A writer holds the log; a second handle spools; the writer's thread chains the events
 * within about a second of the spooler's close, in order, and the log verifies. */
static void spool_and_chain(void)
{
	exai_audit_log *w = open_log(0), *s = NULL;
	append(w, "w.0", 0);
	EXAI_OPTS(exai_audit_opts, plain, .origin = "spool");
	CHECK_RC(exai_audit_open(&s, ctx, &plain), -EBUSY);
	CHECK(strstr(exai_errmsg(), "another process") != NULL);
	s = open_log(EXAI_AUDIT_SPOOL_IF_BUSY);
	append(s, "s.0", EXAI_AUDIT_SEQ_SPOOLED);
	exai_audit_event *ev = NULL;
	CHECK_OK(exai_audit_event_new(&ev, 6003, 2, "s.1"));
	CHECK_OK(exai_audit_event_set_time(ev, 1700000000000));
	uint64_t seq = 0;
	CHECK_OK(exai_audit_append(s, ev, &seq));
	CHECK(seq == EXAI_AUDIT_SEQ_SPOOLED);
	exai_audit_event_free(ev);
	/* refused exactly as the writer refuses, and nothing written */
	static const char bad[] = "{\"detail\":{\"prompt\":\"the secret\"}}";
	CHECK_RC(exai_audit_append_json(s, bad, strlen(bad), NULL), -EINVAL);
	CHECK_RC(exai_audit_append_json(s, "{\"seq\":3}", 9, NULL), -EINVAL);
	/* what needs the log itself says why it cannot */
	uint64_t n;
	char *text = NULL;
	CHECK_RC(exai_audit_size(s, &n), -EBUSY);
	CHECK(strstr(exai_errmsg(), "spools") != NULL);
	CHECK_RC(exai_audit_checkpoint(s, &text, true), -EBUSY);
	CHECK_RC(exai_audit_digest(s, &text, "x", 1), -EBUSY);
	CHECK_RC(exai_audit_prune(s, 0, NULL), -EBUSY);
	CHECK_OK(exai_audit_flush(s));
	append(w, "w.1", 1);
	/* an open spool is not taken: its writer may still append */
	usleep(1300 * 1000);
	CHECK(size_of(w) == 2);
	CHECK(spool_files() == 1);
	CHECK_OK(exai_audit_close(s));
	for (int i = 0; i < 60 && size_of(w) < 4; i++)
		usleep(50 * 1000);
	static const char *const names[] = { "w.0", "w.1", "s.0", "s.1" };
	check_names(w, 0, names, 4);
	char *leaf = NULL;
	size_t len;
	CHECK_OK(exai_audit_leaf(w, 3, &leaf, &len));
	CHECK(strstr(leaf, "\"time\":1700000000000") != NULL); /* the spooler's own time */
	CHECK(strstr(leaf, "\"origin\":\"spool\"") != NULL);
	exai_free(leaf);
	CHECK(spool_files() == 0);
	CHECK_OK(exai_audit_close(w));
	CHECK_OK(exai_audit_verify(ctx, "spool", NULL, NULL));
}

/* Spooled while nobody writes the log any more: chained by the next writer's open; a spool
 * file still open at a writer's close waits for the one after. */
static void chained_at_open_and_close(void)
{
	exai_audit_log *w = open_log(0), *s = open_log(EXAI_AUDIT_SPOOL_IF_BUSY);
	uint64_t base = size_of(w);
	append(s, "a.0", EXAI_AUDIT_SEQ_SPOOLED);
	CHECK_OK(exai_audit_close(w));      /* s is still open: its file stays */
	CHECK(spool_files() == 1);
	CHECK_OK(exai_audit_close(s));
	w = open_log(0);                    /* chained before open returns */
	static const char *const names[] = { "a.0" };
	check_names(w, base, names, 1);
	CHECK(spool_files() == 0);
	/* two spoolers, chained oldest first at the writer's close */
	exai_audit_log *s1 = open_log(EXAI_AUDIT_SPOOL_IF_BUSY);
	usleep(2000);
	exai_audit_log *s2 = open_log(EXAI_AUDIT_SPOOL_IF_BUSY);
	append(s2, "b.2", EXAI_AUDIT_SEQ_SPOOLED);
	append(s1, "b.1", EXAI_AUDIT_SEQ_SPOOLED);
	CHECK_OK(exai_audit_close(s2));
	CHECK_OK(exai_audit_close(s1));
	CHECK_OK(exai_audit_close(w));
	CHECK(spool_files() == 0);
	w = open_log(EXAI_AUDIT_SPOOL_IF_BUSY); /* nobody holds it: a writer, not a spool */
	static const char *const names2[] = { "b.1", "b.2" };
	check_names(w, base + 1, names2, 2);
	append(w, "c.0", base + 3);
	CHECK_OK(exai_audit_close(w));
	CHECK_OK(exai_audit_verify(ctx, "spool", NULL, NULL));
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

/* A writer died after chaining the first of three lines: the next one resumes after it
 * (nothing twice, nothing lost). A torn last line is dropped; a line the log refuses is
 * replaced by an event that says so; a file that is not a spool is kept aside. */
static void crash_torn_refused(void)
{
	exai_audit_log *w = open_log(0);
	uint64_t base = size_of(w);
	append(w, "d.0", base);
	CHECK_OK(exai_audit_close(w));
	char path[4096], journal[4096], foreign[4096];
	snprintf(path, sizeof(path), "%s/00000000000000000001-1-00000000.jsonl", spooldir);
	snprintf(journal, sizeof(journal), "%s/ingest.json", spooldir);
	snprintf(foreign, sizeof(foreign), "%s/00000000000000000002-1-00000000.jsonl", spooldir);
	put(path, "{\"exai_audit_spool\":1}\n"
		  "{\"activity_id\":1,\"activity_name\":\"d.0\",\"class_uid\":6003,\"time\":1}\n"
		  "{\"activity_id\":1,\"activity_name\":\"d.1\",\"class_uid\":6003,\"time\":2}\n"
		  "{\"activity_id\":1,\"detail\":{\"completion\":\"x\"},\"activity_name\":\"d.2\",\"class_uid\":6003}\n"
		  "{\"activity_id\":1,\"activity_name\":\"d.3\",\"class_uid\":6003,\"time\":3}\n"
		  "{\"activity_id\":1,\"activity_name\":\"torn");
	char j[256];
	snprintf(j, sizeof(j), "{\"file\":\"00000000000000000001-1-00000000.jsonl\",\"first\":%llu,\"v\":1}\n",
		 (unsigned long long)base);
	put(journal, j);
	put(foreign, "not a spool file\n");
	w = open_log(0);
	static const char *const names[] = { "d.0", "d.1", "audit.spool.refused", "d.3" };
	check_names(w, base, names, 4);
	char *leaf = NULL;
	size_t len;
	CHECK_OK(exai_audit_leaf(w, base + 2, &leaf, &len));
	CHECK(strstr(leaf, "completion") != NULL && strstr(leaf, "\"line\":4") != NULL); /* the reason, not the text */
	CHECK(strstr(leaf, "\"x\"") == NULL);
	exai_free(leaf);
	CHECK(access(path, F_OK) < 0 && access(journal, F_OK) < 0);
	char aside[4200];
	snprintf(aside, sizeof(aside), "%s.refused", foreign);
	CHECK(access(aside, F_OK) == 0);
	CHECK_OK(exai_audit_close(w));
	CHECK_OK(exai_audit_verify(ctx, "spool", NULL, NULL));
}

int main(void)
{
	char *dir = test_tmpdir();
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	CHECK(asprintf(&logdir, "%s/audit/spool", dir) > 0);
	CHECK(asprintf(&spooldir, "%s/spool", logdir) > 0);
	spool_and_chain();
	chained_at_open_and_close();
	crash_torn_refused();
	free(logdir);
	free(spooldir);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
