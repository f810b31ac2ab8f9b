/* SPDX-License-Identifier: Apache-2.0 */
/* sink-pg.c: the PostgreSQL sink: batched COPY into a staging table, then INSERT ... ON
 * CONFLICT DO NOTHING, so that a resent batch changes nothing (idempotent on origin, seq).
 * Tables (docs/formats/audit.md): exai_audit_events, exai_audit_checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "audit-internal.h"

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS exai_audit_events ("
	" origin text NOT NULL, seq bigint NOT NULL, time timestamptz, class_uid integer,"
	" activity_id integer, activity_name text, tenant text, workspace text,"
	" canonical text NOT NULL, PRIMARY KEY (origin, seq));"
	"CREATE TABLE IF NOT EXISTS exai_audit_checkpoints ("
	" origin text NOT NULL, size bigint NOT NULL, note text NOT NULL, PRIMARY KEY (origin, size));"
	"CREATE TEMP TABLE IF NOT EXISTS exai_audit_stage (LIKE exai_audit_events) ON COMMIT DELETE ROWS;";

struct pg {
	PGconn *conn;
};

static int pg_error(struct exai__sink *s, const char *what)
{
	struct pg *p = s->impl;
	const char *m = p->conn ? PQerrorMessage(p->conn) : "no connection";
	size_t n = strlen(m);
	while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	return exai__err(-EIO, "PostgreSQL %s: %.*s", what, (int)n, m);
}

static int exec_ok(struct exai__sink *s, const char *sql, const char *what)
{
	struct pg *p = s->impl;
	PGresult *res = PQexec(p->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	PQclear(res);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_error(s, what);
}

static int pg_connect(struct exai__sink *s, uint64_t *cursor)
{
	(void)cursor;
	struct pg *p = s->impl;
	p->conn = PQconnectdb(s->target);
	if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
		int r = pg_error(s, "connect");
		PQfinish(p->conn);
		p->conn = NULL;
		return r;
	}
	int r = exec_ok(s, "SET client_min_messages = warning", "setup");
	if (r == 0)
		r = exec_ok(s, schema_sql, "create tables");
	if (r < 0) {
		PQfinish(p->conn);
		p->conn = NULL;
	}
	return r;
}

static void pg_disconnect(struct exai__sink *s)
{
	struct pg *p = s->impl;
	if (p && p->conn)
		PQfinish(p->conn);
	if (p)
		p->conn = NULL;
}

/* COPY text format: backslash, newline, carriage return and tab escaped. */
static int copy_field(struct exai__buf *b, const char *v, size_t n)
{
	if (!v)
		return exai__buf_append(b, "\\N", 2);
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		const char *e = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
		int r = e ? exai__buf_append(b, e, 2) : exai__buf_putc(b, c);
		if (r < 0)
			return r;
	}
	return 0;
}

static int copy_row(struct exai__buf *b, const char *origin, const struct exai__rec *rec)
{
	json_t *o = json_loadb(rec->payload, rec->len, 0, NULL);
	char num[64];
	int r = 0;
	const char *str[3] = { json_string_value(json_object_get(o, "activity_name")),
			       json_string_value(json_object_get(o, "tenant")),
			       json_string_value(json_object_get(o, "workspace")) };
	json_t *t = json_object_get(o, "time"), *c = json_object_get(o, "class_uid"), *a = json_object_get(o, "activity_id");
	r |= copy_field(b, origin, strlen(origin));
	r |= exai__buf_printf(b, "\t%llu\t", (unsigned long long)rec->seq);
	if (json_is_number(t)) {
		/* timestamptz in ISO form, UTC, milliseconds */
		int64_t ms = (int64_t)json_number_value(t);
		time_t secs = (time_t)(ms / 1000);
		struct tm tm;
		gmtime_r(&secs, &tm);
		strftime(num, sizeof(num), "%Y-%m-%d %H:%M:%S", &tm);
		r |= exai__buf_printf(b, "%s.%03d+00", num, (int)(ms % 1000));
	} else {
		r |= exai__buf_append(b, "\\N", 2);
	}
	r |= exai__buf_putc(b, '\t');
	r |= json_is_number(c) ? exai__buf_printf(b, "%.0f", json_number_value(c)) : exai__buf_append(b, "\\N", 2);
	r |= exai__buf_putc(b, '\t');
	r |= json_is_number(a) ? exai__buf_printf(b, "%.0f", json_number_value(a)) : exai__buf_append(b, "\\N", 2);
	for (int i = 0; i < 3; i++) {
		r |= exai__buf_putc(b, '\t');
		r |= copy_field(b, str[i], str[i] ? strlen(str[i]) : 0);
	}
	r |= exai__buf_putc(b, '\t');
	r |= copy_field(b, rec->payload, rec->len);
	r |= exai__buf_putc(b, '\n');
	json_decref(o);
	return r ? exai__err(-ENOMEM, "out of memory") : 0;
}

static int pg_deliver(struct exai__sink *s, const struct exai__rec *recs, size_t n, uint64_t *cursor)
{
	(void)cursor;
	struct pg *p = s->impl;
	const char *origin = exai__log_origin(s->log);
	struct exai__buf b = { 0 };
	int r = 0;
	size_t events = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		if (recs[i].type == EXAI__REC_EVENT) {
			r = copy_row(&b, origin, &recs[i]);
			events++;
		}
	if (r == 0)
		r = exec_ok(s, "BEGIN", "begin");
	if (r == 0 && events) {
		PGresult *res = PQexec(p->conn, "COPY exai_audit_stage (origin, seq, time, class_uid, activity_id,"
						" activity_name, tenant, workspace, canonical) FROM STDIN");
		bool in = PQresultStatus(res) == PGRES_COPY_IN;
		PQclear(res);
		if (!in || PQputCopyData(p->conn, b.data, (int)b.len) != 1 || PQputCopyEnd(p->conn, NULL) != 1) {
			r = pg_error(s, "COPY");
		} else {
			res = PQgetResult(p->conn);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				r = pg_error(s, "COPY");
			PQclear(res);
			while ((res = PQgetResult(p->conn)))
				PQclear(res);
		}
		if (r == 0)
			r = exec_ok(s, "INSERT INTO exai_audit_events SELECT * FROM exai_audit_stage ON CONFLICT DO NOTHING",
				    "insert events");
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (recs[i].type != EXAI__REC_CHECKPOINT)
			continue;
		char size[24], *note = exai__strndup(recs[i].payload, recs[i].len);
		snprintf(size, sizeof(size), "%llu", (unsigned long long)recs[i].seq);
		const char *params[3] = { origin, size, note };
		PGresult *res = PQexecParams(p->conn, "INSERT INTO exai_audit_checkpoints VALUES ($1, $2, $3)"
						      " ON CONFLICT DO NOTHING", 3, NULL, params, NULL, NULL, 0);
		if (!note || PQresultStatus(res) != PGRES_COMMAND_OK)
			r = pg_error(s, "insert checkpoint");
		PQclear(res);
		free(note);
	}
	if (r == 0)
		r = exec_ok(s, "COMMIT", "commit");
	else if (p->conn)
		PQclear(PQexec(p->conn, "ROLLBACK"));
	exai__buf_free(&b);
	return r;
}

static const struct exai__sink_ops pg_ops = { pg_deliver, pg_connect, pg_disconnect };

int exai__sink_pg_init(struct exai__sink *s)
{
	struct pg *p = calloc(1, sizeof(*p));
	if (!p)
		return exai__err(-ENOMEM, "out of memory");
	s->impl = p;
	s->ops = &pg_ops;
	return 0;
}
