/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-sinks: the JSON lines, PostgreSQL and NATS JetStream sinks against real servers
 * started here (PostgreSQL 15 via initdb/pg_ctl, nats-server -js) on free loopback ports. Each
 * server is stopped for a while under load and started again, and the writer is closed and
 * reopened once (cursor resumes); then the set of seqs at the sink must be exactly 0..N-1:
 * zero lost, zero duplicated. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <nats/nats.h>

#include "audit/audit-internal.h"
#include "test.h"
#include "audit-servers.h"

#define EVENTS 12000

static exai_ctx *ctx;
static char *tmp;

/* ---- the load ---------------------------------------------------------------------------- */

struct load {
	const char *origin;
	exai_audit_log *log;
	struct exai_audit_sink_opts sink;
	pthread_mutex_t lock;
	int appended;
	bool reopen_at_half;
};

static exai_audit_log *open_with_sink(struct load *l)
{
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, o, .origin = l->origin, .durability = EXAI_AUDIT_BATCH, .checkpoint_events = 1000);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	CHECK_OK(exai_audit_sink_add(log, &l->sink));
	return log;
}

/* ~4 s of appends at a steady rate; closes and reopens the log (and sink) at half way. */
static void *appender(void *arg)
{
	struct load *l = arg;
	for (int i = 0; i < EVENTS; i++) {
		char j[128];
		snprintf(j, sizeof(j), "{\"class_uid\":1001,\"activity_id\":1,\"tenant\":\"t\\t%d\",\"n\":%d}", i % 7, i);
		pthread_mutex_lock(&l->lock);
		if (l->reopen_at_half && i == EVENTS / 2) {
			CHECK_OK(exai_audit_close(l->log));
			l->log = open_with_sink(l);
		}
		CHECK_OK(exai_audit_append_json(l->log, j, strlen(j), NULL));
		l->appended++;
		pthread_mutex_unlock(&l->lock);
		if (i % 40 == 0)
			audit_sleep_ms(10);
	}
	return NULL;
}

/* Waits until the sink has delivered everything (backlog 0 at the full size). */
static bool drained(struct load *l, int timeout_s)
{
	for (int t = 0; t < timeout_s * 10; t++) {
		struct exai_audit_sink_status st[4];
		size_t n = 0;
		pthread_mutex_lock(&l->lock);
		exai_audit_flush(l->log);
		exai_audit_sink_status(l->log, st, 4, &n);
		pthread_mutex_unlock(&l->lock);
		if (n >= 1 && st[0].cursor == EVENTS && st[0].backlog == 0)
			return true;
		if (t % 50 == 0 && n >= 1)
			printf("  %s: cursor %llu, backlog %llu, failures %llu (%s)\n", l->sink.name,
			       (unsigned long long)st[0].cursor, (unsigned long long)st[0].backlog,
			       (unsigned long long)st[0].failures, st[0].last_error);
		audit_sleep_ms(100);
	}
	return false;
}

/* Runs the load, calling @outage(stop) and @outage(start) in the middle. */
static struct load *run_load(const char *origin, const struct exai_audit_sink_opts *sink, void (*outage)(bool start))
{
	struct load *l = calloc(1, sizeof(*l));
	l->origin = origin;
	l->sink = *sink;
	l->reopen_at_half = true;
	pthread_mutex_init(&l->lock, NULL);
	l->log = open_with_sink(l);
	pthread_t th;
	pthread_create(&th, NULL, appender, l);
	audit_sleep_ms(800);
	outage(false);
	printf("  %s: server stopped\n", sink->name);
	audit_sleep_ms(1500);
	outage(true);
	printf("  %s: server started again\n", sink->name);
	pthread_join(th, NULL);
	CHECK(drained(l, 60));
	return l;
}

static void end_load(struct load *l)
{
	CHECK_OK(exai_audit_close(l->log));
	CHECK_OK(exai_audit_verify(ctx, l->origin, NULL, NULL));
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* ---- PostgreSQL ------------------------------------------------------------------------------- */

static struct audit_pg pg;

static void pg_outage(bool start)
{
	CHECK(audit_pg_ctl(&pg, start) == 0);
}

static void postgres(void)
{
	if (!audit_pg_init(&pg, tmp)) {
		printf("skipping the PostgreSQL sink\n");
		return;
	}
	const char *conninfo = pg.conninfo;
	EXAI_OPTS(exai_audit_sink_opts, so, .kind = EXAI_AUDIT_SINK_POSTGRES, .name = "pg", .target = conninfo,
		  .retry_ms = 100);
	struct load *l = run_load("pg.example/log", &so, pg_outage);
	/* Exactly the seqs 0..N-1, each once, with its canonical bytes. */
	PGconn *c = PQconnectdb(conninfo);
	CHECK(PQstatus(c) == CONNECTION_OK);
	PGresult *r = PQexec(c, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq),"
				" sum(CASE WHEN canonical::jsonb->>'seq' = seq::text THEN 1 ELSE 0 END),"
				" (SELECT count(*) FROM exai_audit_checkpoints) FROM exai_audit_events WHERE origin = 'pg.example/log'");
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
	printf("  pg: rows %s, distinct seqs %s, min %s, max %s, seq matches %s, checkpoints %s\n", PQgetvalue(r, 0, 0),
	       PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5));
	CHECK(atoi(PQgetvalue(r, 0, 0)) == EVENTS && atoi(PQgetvalue(r, 0, 1)) == EVENTS);
	CHECK(atoi(PQgetvalue(r, 0, 2)) == 0 && atoi(PQgetvalue(r, 0, 3)) == EVENTS - 1);
	CHECK(atoi(PQgetvalue(r, 0, 4)) == EVENTS && atoi(PQgetvalue(r, 0, 5)) > 0);
	PQclear(r);
	/* A row's canonical text is the leaf: its hash matches the log's. */
	r = PQexec(c, "SELECT canonical FROM exai_audit_events WHERE origin = 'pg.example/log' AND seq = 4321");
	char *leaf = NULL;
	size_t len;
	exai_audit_log *log = l->log;
	CHECK_OK(exai_audit_leaf(log, 4321, &leaf, &len));
	CHECK(PQntuples(r) == 1 && leaf && strcmp(PQgetvalue(r, 0, 0), leaf) == 0);
	exai_free(leaf);
	PQclear(r);
	end_load(l);

	/* Rows already in the table (here: written by someone else for the same origin, one in the
	 * middle and one beyond the log) make the straight COPY fail; the batch is redone through
	 * the staging table: every seq once, the foreign row left as it was. */
	PQclear(PQexec(c, "INSERT INTO exai_audit_events (origin, seq, canonical) VALUES"
			  " ('dup', 50, 'foreign'), ('dup', 1000000, 'foreign')"));
	exai_audit_log *dl;
	EXAI_OPTS(exai_audit_opts, dopts, .origin = "dup", .durability = EXAI_AUDIT_BATCH);
	CHECK_OK(exai_audit_open(&dl, ctx, &dopts));
	for (int i = 0; i < 100; i++) {
		static const char ev[] = "{\"class_uid\":1001,\"activity_id\":1}";
		CHECK_OK(exai_audit_append_json(dl, ev, strlen(ev), NULL));
	}
	CHECK_OK(exai_audit_flush(dl));
	EXAI_OPTS(exai_audit_sink_opts, dso, .kind = EXAI_AUDIT_SINK_POSTGRES, .name = "pgdup", .target = conninfo);
	CHECK_OK(exai_audit_sink_add(dl, &dso));
	struct exai_audit_sink_status st = { 0 };
	for (int i = 0; i < 1000 && st.cursor < 100; i++) {
		size_t k;
		CHECK_OK(exai_audit_sink_status(dl, &st, 1, &k));
		audit_sleep_ms(10);
	}
	CHECK(st.cursor == 100 && st.failures == 0);
	CHECK_OK(exai_audit_close(dl));
	r = PQexec(c, "SELECT count(*), count(DISTINCT seq), sum(CASE WHEN canonical = 'foreign' THEN 1 ELSE 0 END)"
		      " FROM exai_audit_events WHERE origin = 'dup' AND seq < 100");
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
	printf("  pg, rows there already: rows %s, distinct %s, foreign kept %s\n", PQgetvalue(r, 0, 0),
	       PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
	CHECK(atoi(PQgetvalue(r, 0, 0)) == 100 && atoi(PQgetvalue(r, 0, 1)) == 100 && atoi(PQgetvalue(r, 0, 2)) == 1);
	PQclear(r);
	PQfinish(c);
	audit_pg_ctl(&pg, false);
}

/* ---- NATS JetStream -------------------------------------------------------------------------- */

static struct audit_nats ns;

static void nats_outage(bool start)
{
	CHECK(audit_nats_ctl(&ns, start) == 0);
}

static void nats(void)
{
	if (!audit_nats_init(&ns, tmp)) {
		printf("skipping the NATS sink\n");
		return;
	}
	const char *url = ns.url;
	EXAI_OPTS(exai_audit_sink_opts, so, .kind = EXAI_AUDIT_SINK_NATS, .name = "nats", .target = url, .retry_ms = 100);
	struct load *l = run_load("nats.example/log", &so, nats_outage);
	/* Read the whole stream back: every Nats-Msg-Id seq exactly once, in order. */
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr;
	CHECK(natsConnection_ConnectTo(&nc, url) == NATS_OK);
	CHECK(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
	CHECK(js_GetStreamInfo(&si, js, "EXAI_AUDIT_nats_example_log", NULL, &jerr) == NATS_OK);
	uint64_t msgs = si ? si->State.Msgs : 0, first = si ? si->State.FirstSeq : 0;
	jsStreamInfo_Destroy(si);
	uint8_t *seen = calloc(EVENTS, 1);
	int dup = 0, bad = 0, inorder = 1;
	long prev = -1;
	for (uint64_t s = first; s < first + msgs; s++) {
		natsMsg *m = NULL;
		if (js_GetMsg(&m, js, "EXAI_AUDIT_nats_example_log", s, NULL, &jerr) != NATS_OK) {
			bad++;
			continue;
		}
		const char *id = NULL;
		natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
		long seq = id && strrchr(id, ':') ? atol(strrchr(id, ':') + 1) : -1;
		char want[32];
		snprintf(want, sizeof(want), "\"seq\":%ld", seq);
		if (seq < 0 || seq >= EVENTS || !memmem(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), want, strlen(want)))
			bad++;
		else if (seen[seq]++)
			dup++;
		inorder &= seq == prev + 1;
		prev = seq;
		natsMsg_Destroy(m);
	}
	int missing = 0;
	for (int i = 0; i < EVENTS; i++)
		missing += !seen[i];
	CHECK(js_GetStreamInfo(&si, js, "EXAI_AUDIT_CP_nats_example_log", NULL, &jerr) == NATS_OK);
	uint64_t cps = si ? si->State.Msgs : 0;
	jsStreamInfo_Destroy(si);
	printf("  nats: %llu messages, missing %d, duplicated %d, bad %d, in order %d; %llu checkpoints\n",
	       (unsigned long long)msgs, missing, dup, bad, inorder, (unsigned long long)cps);
	CHECK(msgs == EVENTS && missing == 0 && dup == 0 && bad == 0 && inorder && cps > 0);
	free(seen);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	end_load(l);
	audit_nats_ctl(&ns, false);
}

/* ---- JSON lines ---------------------------------------------------------------------------- */

static void jsonl(void)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/events.jsonl", tmp);
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, o, .origin = "jsonl", .durability = EXAI_AUDIT_BATCH);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	EXAI_OPTS(exai_audit_sink_opts, so, .kind = EXAI_AUDIT_SINK_JSONL, .name = "file", .target = path);
	CHECK_OK(exai_audit_sink_add(log, &so));
	CHECK_RC(exai_audit_sink_add(log, &so), -EEXIST);
	for (int i = 0; i < 500; i++)
		CHECK_OK(exai_audit_append_json(log, "{\"class_uid\":1,\"activity_id\":1}", 31, NULL));
	CHECK_OK(exai_audit_flush(log));
	for (int t = 0; t < 100; t++) {
		struct exai_audit_sink_status st;
		size_t n;
		exai_audit_sink_status(log, &st, 1, &n);
		if (st.cursor == 500)
			break;
		audit_sleep_ms(50);
	}
	CHECK_OK(exai_audit_close(log));
	size_t len;
	char *all = test_read_file(path, &len), *line = all;
	int lines = 0, ok = 0;
	for (char *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
		char want[32];
		snprintf(want, sizeof(want), "\"seq\":%d,", lines);
		*nl = '\0';
		ok += strstr(line, want) != NULL && line[0] == '{';
	}
	printf("  jsonl: %d lines, %d in order\n", lines, ok);
	CHECK(lines == 500 && ok == 500);
	free(all);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	tmp = test_tmpdir();
	char state[600];
	snprintf(state, sizeof(state), "%s/state", tmp);
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	jsonl();
	postgres();
	nats();
	exai_ctx_unref(ctx);
	nats_Close();
	test_rmrf(tmp);
	free(tmp);
	return test_done();
}
