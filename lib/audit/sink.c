/* SPDX-License-Identifier: Apache-2.0 */
/* sink.c: delivery of the log to sinks, at least once, from persisted cursors; JSON lines. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit-internal.h"
#include "exai-config.h"

static bool sink_name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;
	return len >= 1 && len <= 64 && strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == len;
}

static int cursor_read(const char *path, uint64_t *ret)
{
	char *text = NULL;
	size_t len;
	int r = exai__read_file(path, 64, &text, &len);
	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return r;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	r = (end == text || (*end && *end != '\n')) ? exai__err(-EBADMSG, "%s is not a seq", path) : 0;
	free(text);
	if (r == 0)
		*ret = v;
	return r;
}

static int cursor_write(const char *path, uint64_t v)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)v);
	return exai__write_file_atomic(path, text, (size_t)n, 0600);
}

/* A batch of records copied out of the log. */
struct batch {
	struct exai__rec *recs;
	size_t n, cap;
	struct exai__buf arena;
};

static int collect(void *d, const struct exai__rec *r)
{
	struct batch *b = d;
	if (b->n == b->cap) {
		struct exai__rec *n = realloc(b->recs, (b->cap = b->cap ? 2 * b->cap : 256) * sizeof(*n));
		if (!n)
			return exai__err(-ENOMEM, "out of memory");
		b->recs = n;
	}
	b->recs[b->n] = *r;
	b->recs[b->n].payload = (const char *)(uintptr_t)b->arena.len; /* fixed up after the scan */
	b->n++;
	if (exai__buf_append(&b->arena, r->payload, r->len) < 0)
		return exai__err(-ENOMEM, "out of memory");
	return 0;
}

static void set_error(struct exai__sink *s, const char *what)
{
	pthread_mutex_lock(exai__log_mutex(s->log));
	s->st.failures++;
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s: %s", what, exai_errmsg());
	pthread_mutex_unlock(exai__log_mutex(s->log));
	exai__log_warn(exai__log_ctx(s->log), "audit", "sink %s: %s: %s", s->st.name, what, exai_errmsg());
}

static bool stopping(struct exai__sink *s)
{
	pthread_mutex_lock(exai__log_mutex(s->log));
	bool st = s->stop;
	pthread_mutex_unlock(exai__log_mutex(s->log));
	return st;
}

static void pause_ms(struct exai__sink *s, uint32_t ms)
{
	for (uint32_t t = 0; t < ms && !stopping(s); t += 10)
		nanosleep(&(struct timespec){ 0, 10 * 1000000 }, NULL);
}

static void *sink_main(void *arg)
{
	struct exai__sink *s = arg;
	uint64_t cursor = s->st.cursor;
	bool connected = false;
	struct batch b = { 0 };
	int64_t saved_ms = 0;
	while (!stopping(s)) {
		if (!connected) {
			if (s->ops->connect(s, &cursor) < 0) {
				set_error(s, "connect");
				pause_ms(s, s->retry_ms);
				continue;
			}
			connected = true;
		}
		uint64_t durable = exai__log_deliverable(s->log);
		pthread_mutex_lock(exai__log_mutex(s->log));
		s->st.cursor = cursor;
		s->st.backlog = durable > cursor ? durable - cursor : 0;
		s->st.over_bound = s->st.backlog > s->max_backlog;
		pthread_mutex_unlock(exai__log_mutex(s->log));
		if (cursor >= durable) {
			exai__log_wait(s->log, cursor, 100);
			continue;
		}
		uint64_t first = exai__log_pruned(s->log);
		if (cursor < first) { /* a sink added after pruning starts at the first retained event */
			exai__log_warn(exai__log_ctx(s->log), "audit", "sink %s: seqs %llu..%llu were pruned before it "
				       "delivered them; starting at %llu", s->st.name, (unsigned long long)cursor,
				       (unsigned long long)first - 1, (unsigned long long)first);
			cursor = first;
			continue;
		}
		b.n = 0;
		b.arena.len = 0;
		int r = exai__log_scan(s->log, cursor, durable - cursor < s->batch ? durable - cursor : s->batch, collect, &b);
		if (r < 0) {
			set_error(s, "read the log");
			pause_ms(s, s->retry_ms);
			continue;
		}
		for (size_t i = 0; i < b.n; i++)
			b.recs[i].payload = b.arena.data + (uintptr_t)b.recs[i].payload;
		uint64_t next = cursor;
		for (size_t i = 0; i < b.n; i++)
			if (b.recs[i].type == EXAI__REC_EVENT)
				next = b.recs[i].seq + 1;
		uint64_t c = cursor;
		r = s->ops->deliver(s, b.recs, b.n, &c);
		if (r < 0) {
			set_error(s, "deliver");
			s->ops->disconnect(s);
			connected = false;
			pause_ms(s, s->retry_ms);
			continue;
		}
		if (c != cursor) /* the sink knows better where it stands */
			next = c;
		/* The cursor is saved (fsync, rename) at most once a second: after a crash at most a
		 * second's worth is delivered again, which at-least-once allows and the PostgreSQL
		 * and NATS sinks absorb (idempotent insert; resume from the stream). */
		int64_t now = exai__now_ms();
		if (now - saved_ms >= 1000) {
			if (cursor_write(s->cursor_path, next) < 0)
				set_error(s, "save the cursor");
			saved_ms = now;
		}
		pthread_mutex_lock(exai__log_mutex(s->log));
		s->st.delivered += next > cursor ? next - cursor : 0;
		s->st.cursor = next;
		pthread_mutex_unlock(exai__log_mutex(s->log));
		cursor = next;
	}
	if (connected)
		s->ops->disconnect(s);
	if (cursor_write(s->cursor_path, cursor) < 0) /* on stop, always */
		set_error(s, "save the cursor");
	free(b.recs);
	exai__buf_free(&b.arena);
	return NULL;
}

static void sink_free(struct exai__sink *s)
{
	free(s->impl);
	free(s->target);
	free(s->cursor_path);
	free(s);
}

EXAI_API int exai_audit_sink_add(exai_audit_log *log, const struct exai_audit_sink_opts *opts)
{
	if (!log || !opts)
		return exai__err(-EINVAL, "exai_audit_sink_add: no log or options");
	if (exai__log_spooling(log) < 0)
		return -EBUSY;
	int r = EXAI__OPTS_CHECK(opts, exai_audit_sink_opts);
	if (r < 0)
		return r;
	const char *name = EXAI__OPT(opts, name, (const char *)NULL);
	const char *target = EXAI__OPT(opts, target, (const char *)NULL);
	if (!sink_name_valid(name))
		return exai__err(-EINVAL, "exai_audit_sink_opts.name: use 1..64 of A-Za-z0-9_-");
	if (!target || !*target)
		return exai__err(-EINVAL, "exai_audit_sink_opts.target: missing (a path, connection string or URL)");
	struct exai__sink *s = calloc(1, sizeof(*s));
	if (!s)
		return exai__err(-ENOMEM, "out of memory");
	s->log = log;
	snprintf(s->st.name, sizeof(s->st.name), "%s", name);
	s->st.kind = EXAI__OPT(opts, kind, 0);
	s->batch = EXAI__OPT(opts, batch, 1000u);
	s->retry_ms = EXAI__OPT(opts, retry_ms, 200u);
	s->max_backlog = EXAI__OPT(opts, max_backlog, (uint64_t)10000000);
	s->target = strdup(target);
	char *dir = exai__path_join(exai__log_path(log), "sinks");
	char file[80];
	snprintf(file, sizeof(file), "%s.cursor", name);
	s->cursor_path = dir ? exai__path_join(dir, file) : NULL;
	r = !s->target || !s->cursor_path ? exai__err(-ENOMEM, "out of memory") : exai__mkdir_p(dir, 0700);
	free(dir);
	if (r == 0)
		r = cursor_read(s->cursor_path, &s->st.cursor);
	if (r == 0) {
		switch (s->st.kind) {
		case EXAI_AUDIT_SINK_JSONL:
			r = exai__sink_jsonl_init(s);
			break;
		case EXAI_AUDIT_SINK_POSTGRES:
			r = exai__sink_pg_init(s);
			break;
		case EXAI_AUDIT_SINK_NATS:
			r = exai__sink_nats_init(s);
			break;
		default:
			r = exai__err(-EINVAL, "exai_audit_sink_opts.kind %d is not a sink kind", s->st.kind);
		}
	}
	if (r == 0) {
		pthread_mutex_lock(exai__log_mutex(log));
		for (struct exai__sink *o = *exai__log_sinks(log); o; o = o->next)
			if (strcmp(o->st.name, name) == 0)
				r = exai__err(-EEXIST, "a sink named %s is already running", name);
		if (r == 0) {
			s->next = *exai__log_sinks(log);
			*exai__log_sinks(log) = s;
		}
		pthread_mutex_unlock(exai__log_mutex(log));
	}
	if (r == 0 && pthread_create(&s->thread, NULL, sink_main, s) != 0) {
		pthread_mutex_lock(exai__log_mutex(log));
		*exai__log_sinks(log) = s->next;
		pthread_mutex_unlock(exai__log_mutex(log));
		r = exai__err(-EAGAIN, "cannot start the sink's thread");
	}
	if (r < 0) {
		if (s->impl && s->ops)
			s->ops->disconnect(s);
		sink_free(s);
	}
	return r;
}

void exai__sinks_stop(exai_audit_log *log)
{
	pthread_mutex_lock(exai__log_mutex(log));
	struct exai__sink *list = *exai__log_sinks(log);
	*exai__log_sinks(log) = NULL;
	for (struct exai__sink *s = list; s; s = s->next)
		s->stop = true;
	pthread_mutex_unlock(exai__log_mutex(log));
	while (list) {
		struct exai__sink *next = list->next;
		pthread_join(list->thread, NULL);
		sink_free(list);
		list = next;
	}
}

uint64_t exai__sinks_min_cursor(exai_audit_log *log, uint64_t limit)
{
	pthread_mutex_lock(exai__log_mutex(log));
	for (struct exai__sink *s = *exai__log_sinks(log); s; s = s->next)
		if (s->st.cursor < limit)
			limit = s->st.cursor;
	pthread_mutex_unlock(exai__log_mutex(log));
	/* The files too: a running sink's file may trail its memory by up to a second. */
	char *dir = exai__path_join(exai__log_path(log), "sinks");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		uint64_t c;
		if (len <= 7 || strcmp(e->d_name + len - 7, ".cursor") != 0)
			continue;
		char *p = exai__path_join(dir, e->d_name);
		if (p && cursor_read(p, &c) == 0 && c < limit)
			limit = c;
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
	return limit;
}

EXAI_API int exai_audit_sink_status(exai_audit_log *log, struct exai_audit_sink_status *ret, size_t max, size_t *retn)
{
	if (!log || !retn || (max && !ret))
		return exai__err(-EINVAL, "exai_audit_sink_status: no log or output");
	if (exai__log_spooling(log) < 0)
		return -EBUSY;
	size_t n = 0;
	uint64_t durable = exai__log_deliverable(log);
	pthread_mutex_lock(exai__log_mutex(log));
	for (struct exai__sink *s = *exai__log_sinks(log); s; s = s->next, n++)
		if (n < max)
			ret[n] = s->st;
	pthread_mutex_unlock(exai__log_mutex(log));
	size_t running = n;
	/* Sinks known from their cursor files only. */
	char *dir = exai__path_join(exai__log_path(log), "sinks");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len <= 7 || strcmp(e->d_name + len - 7, ".cursor") != 0 || len - 7 >= 72)
			continue;
		char name[72];
		memcpy(name, e->d_name, len - 7);
		name[len - 7] = '\0';
		bool known = false;
		for (size_t i = 0; i < running && i < max; i++)
			known |= strcmp(ret[i].name, name) == 0;
		if (known)
			continue;
		if (n < max) {
			struct exai_audit_sink_status st = { 0 };
			memcpy(st.name, name, len - 6);
			char *p = exai__path_join(dir, e->d_name);
			if (p && cursor_read(p, &st.cursor) == 0)
				st.backlog = durable > st.cursor ? durable - st.cursor : 0;
			free(p);
			ret[n] = st;
		}
		n++;
	}
	if (d)
		closedir(d);
	free(dir);
	*retn = n;
	return 0;
}

/* ---- JSON lines ------------------------------------------------------------------------------ */

struct jsonl {
	int fd;
	bool is_stdout;
};

static int jsonl_connect(struct exai__sink *s, uint64_t *cursor)
{
	(void)cursor;
	struct jsonl *j = s->impl;
	if (j->fd >= 0)
		return 0;
	if (strcmp(s->target, "-") == 0) {
		j->fd = STDOUT_FILENO;
		j->is_stdout = true;
		return 0;
	}
	j->fd = open(s->target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (j->fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", s->target);
	return 0;
}

static void jsonl_disconnect(struct exai__sink *s)
{
	struct jsonl *j = s->impl;
	if (j->fd >= 0 && !j->is_stdout)
		close(j->fd);
	j->fd = -1;
}

/* One line per event: the canonical event itself, which is OCSF-shaped. */
static int jsonl_deliver(struct exai__sink *s, const struct exai__rec *recs, size_t n, uint64_t *cursor)
{
	(void)cursor;
	struct jsonl *j = s->impl;
	struct exai__buf b = { 0 };
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		if (recs[i].type == EXAI__REC_EVENT)
			r = exai__buf_append(&b, recs[i].payload, recs[i].len) || exai__buf_putc(&b, '\n') ?
				exai__err(-ENOMEM, "out of memory") : 0;
	if (r == 0 && b.len && (r = exai__write_all(j->fd, b.data, b.len)) < 0)
		exai__err_sys(r, "cannot write %s", s->target);
	if (r == 0 && !j->is_stdout && fdatasync(j->fd) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot sync %s", s->target);
	exai__buf_free(&b);
	return r;
}

static const struct exai__sink_ops jsonl_ops = { jsonl_deliver, jsonl_connect, jsonl_disconnect };

int exai__sink_jsonl_init(struct exai__sink *s)
{
	struct jsonl *j = calloc(1, sizeof(*j));
	if (!j)
		return exai__err(-ENOMEM, "out of memory");
	j->fd = -1;
	s->impl = j;
	s->ops = &jsonl_ops;
	return 0;
}

#if !EXAI_HAVE_POSTGRES
int exai__sink_pg_init(struct exai__sink *s)
{
	(void)s;
	return exai__err(-ENOTSUP, "this libexai was built without the PostgreSQL sink");
}
#endif
#if !EXAI_HAVE_NATS
int exai__sink_nats_init(struct exai__sink *s)
{
	(void)s;
	return exai__err(-ENOTSUP, "this libexai was built without the NATS sink");
}
#endif
