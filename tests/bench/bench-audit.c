/* SPDX-License-Identifier: Apache-2.0 */
/* bench-audit: the audit log beside its limits, measured in the same run:
 *  1. durable appends/s (group commit, sync and batch) vs raw write+fdatasync of the same bytes
 *     in the same groups;
 *  2. verify events/s vs SHA-256 over the same bytes;
 *  3. PostgreSQL sink rows/s vs a raw COPY of the same rows;
 *  4. p50/p95 latency from append to PostgreSQL commit and to JetStream ack at 10 000 events/s.
 * Usage: bench-audit [seconds per durability run, default 3] [durable|verify|sinks: one part only] */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "audit/audit-internal.h"
#include "audit-servers.h"
#include "test.h"

static exai_ctx *ctx;
static char *tmp;
static double run_s = 3;

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char event_fmt[] = "{\"class_uid\":3002,\"activity_id\":1,\"activity_name\":\"auth.logon\","
				"\"actor\":{\"user\":{\"name\":\"user-%d\"}},\"tenant\":\"acme\",\"workspace\":\"ws-%d\","
				"\"status_id\":1,\"status\":\"Success\",\"detail\":{\"n\":%d}}";

/* ---- 1. durable appends ------------------------------------------------------------------- */

struct appender {
	exai_audit_log *log;
	volatile bool *stop;
	uint64_t n;
};

static void *append_loop(void *arg)
{
	struct appender *a = arg;
	char j[300];
	for (int i = 0; !*a->stop; i++) {
		snprintf(j, sizeof(j), event_fmt, i, i % 10, i);
		if (exai_audit_append_json(a->log, j, strlen(j), NULL) < 0)
			break;
		a->n++;
	}
	return NULL;
}

static void durable(int durability, int threads)
{
	char origin[32];
	snprintf(origin, sizeof(origin), "bench-%s-%d", durability == EXAI_AUDIT_SYNC ? "sync" : "batch", threads);
	exai_audit_log *log;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .durability = durability);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	volatile bool stop = false;
	struct appender a[64];
	pthread_t th[64];
	double t0 = now_s(), c0 = cpu_s();
	for (int i = 0; i < threads; i++) {
		a[i] = (struct appender){ log, &stop, 0 };
		pthread_create(&th[i], NULL, append_loop, &a[i]);
	}
	usleep((useconds_t)(run_s * 1e6));
	stop = true;
	uint64_t n = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		n += a[i].n;
	}
	CHECK_OK(exai_audit_flush(log));
	double dt = now_s() - t0, cdt = cpu_s() - c0;
	uint64_t flushes = exai__log_flushes(log);
	char *dir = exai__log_dir(ctx, origin);
	CHECK_OK(exai_audit_close(log));
	/* The bytes written, per event. */
	struct exai__seglist segs;
	CHECK_OK(exai__seglist_load(&segs, dir));
	uint64_t bytes = 0;
	for (size_t i = 0; i < segs.n; i++) {
		char *p = exai__seg_path(dir, segs.first[i], "seg");
		struct stat st;
		if (stat(p, &st) == 0)
			bytes += (uint64_t)st.st_size;
		free(p);
	}
	exai__seglist_free(&segs);
	free(dir);
	double per_flush = flushes ? (double)bytes / (double)flushes : 0;
	/* The limit: the same bytes, written in the same number of write+fdatasync groups. */
	char path[600];
	snprintf(path, sizeof(path), "%s/raw", tmp);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char *buf = calloc(1, (size_t)per_flush + 1);
	double r0 = now_s();
	uint64_t raw_groups = 0;
	while (now_s() - r0 < run_s && raw_groups < flushes) {
		CHECK(write(fd, buf, (size_t)per_flush) == (ssize_t)per_flush);
		fdatasync(fd);
		raw_groups++;
	}
	double rdt = now_s() - r0;
	close(fd);
	unlink(path);
	free(buf);
	double ev_s = (double)n / dt, raw_ev_s = (double)raw_groups * ((double)n / (double)(flushes ? flushes : 1)) / rdt;
	printf("durable appends, %s, %2d threads: %9.0f events/s, %.0f per CPU second of the process (%" PRIu64 " events, %" PRIu64 " fdatasyncs, %.1f events and %.0f bytes each)\n"
	       "   raw write+fdatasync of the same groups:  %9.0f events/s -> ratio %.2f\n",
	       durability == EXAI_AUDIT_SYNC ? "sync " : "batch", threads, ev_s, (double)n / cdt, n, flushes,
	       (double)n / (double)(flushes ? flushes : 1), per_flush, raw_ev_s, ev_s / raw_ev_s);
}

/* The physical limit of one event per fdatasync. */
static void fsync_latency(void)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/raw1", tmp);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char b[300] = { 0 };
	double t0 = now_s();
	int n = 0;
	while (now_s() - t0 < 1) {
		CHECK(write(fd, b, sizeof(b)) == (ssize_t)sizeof(b));
		fdatasync(fd);
		n++;
	}
	close(fd);
	unlink(path);
	printf("raw write+fdatasync, one 300-byte event each: %.0f events/s (%.2f ms per fdatasync)\n", n / (now_s() - t0),
	       1000 * (now_s() - t0) / n);
}

/* ---- 2. verify --------------------------------------------------------------------------------- */

static void verify(void)
{
	const char *origin = "bench-verify";
	exai_audit_log *log;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .durability = EXAI_AUDIT_BATCH);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	enum { N = 200000 };
	char j[300];
	for (int i = 0; i < N; i++) {
		snprintf(j, sizeof(j), event_fmt, i, i % 10, i);
		CHECK_OK(exai_audit_append_json(log, j, strlen(j), NULL));
	}
	CHECK_OK(exai_audit_close(log));
	struct exai_audit_verify_result res = { .sz = sizeof(res) };
	double t0 = now_s(), c0 = cpu_s();
	CHECK_OK(exai_audit_verify(ctx, origin, NULL, &res));
	double dt = now_s() - t0, cdt = cpu_s() - c0;
	/* The limit: SHA-256 of the same event bytes, twice (chain hash and leaf hash). */
	char *leaf_bytes = NULL;
	size_t total = 0;
	exai_audit_log *r;
	EXAI_OPTS(exai_audit_opts, ro, .origin = origin, .flags = EXAI_AUDIT_READONLY);
	CHECK_OK(exai_audit_open(&r, ctx, &ro));
	char **leaves = calloc(N, sizeof(char *));
	size_t *lens = calloc(N, sizeof(size_t));
	for (int i = 0; i < N; i++) {
		CHECK_OK(exai_audit_leaf(r, (uint64_t)i, &leaves[i], &lens[i]));
		total += lens[i];
	}
	exai_audit_close(r);
	(void)leaf_bytes;
	uint8_t h[32];
	double s0 = now_s(), sc0 = cpu_s();
	for (int i = 0; i < N; i++) {
		exai__sha256(h, leaves[i], lens[i]);
		exai_audit_merkle_leaf_hash(h, leaves[i], lens[i]);
	}
	double sdt = now_s() - s0, scdt = cpu_s() - sc0;
	for (int i = 0; i < N; i++)
		exai_free(leaves[i]);
	free(leaves);
	free(lens);
	printf("verify: %.0f events/s wall, %.0f events per CPU second (%" PRIu64 " events, %.0f bytes each, %" PRIu64 " checkpoints, one thread)\n"
	       "   SHA-256 of the same bytes, twice per event:  %.0f events/s wall, %.0f per CPU second (%.0f MB/s) -> ratio %.2f (CPU)\n",
	       (double)res.events / dt, (double)res.events / cdt, res.events, (double)total / N, res.checkpoints, N / sdt,
	       N / scdt, 2.0 * (double)total / scdt / 1e6, ((double)res.events / cdt) / (N / scdt));
}

/* ---- 3 and 4. sinks ----------------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct lat {
	exai_audit_log *log;
	volatile bool done;
	double *sent;      /* per seq: when its append returned */
	double *seen;      /* per seq: when the sink's cursor passed it */
	uint64_t n;
};

static void *watch_cursor(void *arg)
{
	struct lat *l = arg;
	uint64_t last = 0;
	while (last < l->n) {
		struct exai_audit_sink_status st;
		size_t k = 0;
		exai_audit_sink_status(l->log, &st, 1, &k);
		double t = now_s();
		for (; last < st.cursor && last < l->n; last++)
			l->seen[last] = t;
		usleep(200);
	}
	return NULL;
}

/* 10 000 events/s for @secs; p50/p95 from append to the sink's acknowledgement. */
static void latency(const char *origin, const struct exai_audit_sink_opts *so, double secs)
{
	exai_audit_log *log;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .durability = EXAI_AUDIT_BATCH, .batch_delay_ms = 2);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	CHECK_OK(exai_audit_sink_add(log, so));
	/* Steady state: one event delivered first (connection, tables and streams set up). */
	char j[300];
	snprintf(j, sizeof(j), event_fmt, 0, 0, 0);
	CHECK_OK(exai_audit_append_json(log, j, strlen(j), NULL));
	for (struct exai_audit_sink_status st = { 0 }; st.cursor < 1;) {
		size_t k;
		exai_audit_sink_status(log, &st, 1, &k);
		usleep(1000);
	}
	struct lat l = { .log = log, .n = (uint64_t)(10000 * secs) + 1 };
	l.sent = calloc(l.n, sizeof(double));
	l.seen = calloc(l.n, sizeof(double));
	pthread_t th;
	pthread_create(&th, NULL, watch_cursor, &l);
	double t0 = now_s();
	for (uint64_t i = 1; i < l.n; i++) {
		double due = t0 + (double)i / 10000;
		while (now_s() < due)
			usleep(50);
		snprintf(j, sizeof(j), event_fmt, (int)i, (int)i % 10, (int)i);
		uint64_t seq;
		CHECK_OK(exai_audit_append_json(log, j, strlen(j), &seq));
		l.sent[seq] = now_s();
	}
	double rate = (double)(l.n - 1) / (now_s() - t0);
	pthread_join(th, NULL);
	uint64_t m = l.n - 1; /* seq 0 was the warm-up */
	double *d = calloc(m, sizeof(double));
	for (uint64_t i = 0; i < m; i++)
		d[i] = (l.seen[i + 1] - l.sent[i + 1]) * 1000;
	qsort(d, m, sizeof(double), cmp_d);
	printf("append -> %s at %.0f events/s: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms (batch durability, 2 ms flush delay)\n",
	       so->name, rate, d[m / 2], d[m * 95 / 100], d[m * 99 / 100]);
	free(d);
	free(l.sent);
	free(l.seen);
	CHECK_OK(exai_audit_close(log));
}

static void pg_throughput(struct audit_pg *pg)
{
	const char *origin = "bench-pg";
	enum { N = 100000 };
	exai_audit_log *log;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .durability = EXAI_AUDIT_BATCH);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	char j[300];
	for (int i = 0; i < N; i++) {
		snprintf(j, sizeof(j), event_fmt, i, i % 10, i);
		CHECK_OK(exai_audit_append_json(log, j, strlen(j), NULL));
	}
	CHECK_OK(exai_audit_flush(log));
	EXAI_OPTS(exai_audit_sink_opts, so, .kind = EXAI_AUDIT_SINK_POSTGRES, .name = "pgbench", .target = pg->conninfo,
		  .batch = 5000);
	double t0 = now_s();
	CHECK_OK(exai_audit_sink_add(log, &so));
	for (;;) {
		struct exai_audit_sink_status st;
		size_t k;
		exai_audit_sink_status(log, &st, 1, &k);
		if (st.cursor >= N)
			break;
		usleep(1000);
	}
	double dt = now_s() - t0;
	CHECK_OK(exai_audit_close(log));
	/* The limit: the same rows by a raw COPY into an identical table, in one transaction. */
	PGconn *c = PQconnectdb(pg->conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	PQclear(PQexec(c, "CREATE TABLE raw_copy (LIKE exai_audit_events INCLUDING ALL)"));
	PGresult *res = PQexec(c, "COPY (SELECT * FROM exai_audit_events WHERE origin = 'bench-pg') TO STDOUT");
	struct exai__buf rows = { 0 };
	char *line;
	int len;
	PQclear(res);
	while ((len = PQgetCopyData(c, &line, 0)) > 0) {
		CHECK_OK(exai__buf_append(&rows, line, (size_t)len));
		PQfreemem(line);
	}
	while ((res = PQgetResult(c)))
		PQclear(res);
	double r0 = now_s();
	PQclear(PQexec(c, "BEGIN"));
	res = PQexec(c, "COPY raw_copy FROM STDIN");
	PQclear(res);
	CHECK(PQputCopyData(c, rows.data, (int)rows.len) == 1 && PQputCopyEnd(c, NULL) == 1);
	while ((res = PQgetResult(c)))
		PQclear(res);
	PQclear(PQexec(c, "COMMIT"));
	double rdt = now_s() - r0;
	res = PQexec(c, "SELECT count(*) FROM raw_copy");
	CHECK(atoi(PQgetvalue(res, 0, 0)) == N);
	PQclear(res);
	PQfinish(c);
	exai__buf_free(&rows);
	printf("PostgreSQL sink: %.0f rows/s (%d events, batches of 5000, straight COPY)\n"
	       "   raw COPY of the same rows into an identical table: %.0f rows/s -> ratio %.2f\n",
	       N / dt, N, N / rdt, (N / dt) / (N / rdt));
}

int main(int argc, char **argv)
{
	if (argc > 1)
		run_s = atof(argv[1]);
	const char *only = argc > 2 ? argv[2] : "";
#define PART(name) (!*only || strcmp(only, name) == 0)
	tmp = test_tmpdir();
	char state[600];
	snprintf(state, sizeof(state), "%s/state", tmp);
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	printf("machine: %ld cores, %.1f GiB\n", sysconf(_SC_NPROCESSORS_ONLN),
	       (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE) / (1u << 30));
	if (PART("durable")) {
		fsync_latency();
		durable(EXAI_AUDIT_SYNC, 1);
		durable(EXAI_AUDIT_SYNC, 16);
		durable(EXAI_AUDIT_SYNC, 64);
		durable(EXAI_AUDIT_BATCH, 1);
		durable(EXAI_AUDIT_BATCH, 4);
	}
	if (PART("verify"))
		verify();
	struct audit_pg pg;
	if (PART("sinks") && audit_pg_init(&pg, tmp)) {
		pg_throughput(&pg);
		EXAI_OPTS(exai_audit_sink_opts, so, .kind = EXAI_AUDIT_SINK_POSTGRES, .name = "pg", .target = pg.conninfo);
		latency("lat-pg", &so, 5);
		audit_pg_ctl(&pg, false);
	}
	struct audit_nats ns;
	if (PART("sinks") && audit_nats_init(&ns, tmp)) {
		EXAI_OPTS(exai_audit_sink_opts, so, .kind = EXAI_AUDIT_SINK_NATS, .name = "jetstream", .target = ns.url);
		latency("lat-nats", &so, 5);
		audit_nats_ctl(&ns, false);
	}
	exai_ctx_unref(ctx);
	test_rmrf(tmp);
	free(tmp);
	return test_done();
}
