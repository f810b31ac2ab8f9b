/* SPDX-License-Identifier: Apache-2.0 */
/* sink-pg.c: the PostgreSQL sink: batched COPY, resuming after the table's last seq of the
 * origin; a batch that meets rows already there goes through a staging table and INSERT ...
 * ON CONFLICT DO NOTHING, so that a resent batch changes nothing (idempotent on origin, seq).
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
	bool staged; /* deliver through the staging table (after a duplicate row) */
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
	struct pg *p = s->impl;
	p->conn = PQconnectdb(s->target);
	if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
		int r = pg_error(s, "connect");
		PQfinish(p->conn);
		p->conn = NULL;
		return r;
	}
	p->staged = false;
	int r = exec_ok(s, "SET client_min_messages = warning", "setup");
	if (r == 0)
		r = exec_ok(s, schema_sql, "create tables");
	if (r == 0) { /* resume after the rows the table has (delivered before a crash) */
		const char *origin = exai__log_origin(s->log);
		PGresult *res = PQexecParams(p->conn, "SELECT max(seq) FROM exai_audit_events WHERE origin = $1", 1, NULL,
					     &origin, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			r = pg_error(s, "last seq");
		else if (!PQgetisnull(res, 0, 0)) {
			/* Only forward, and only within what this log has written (rows beyond it
			 * belong to another log of the same name: delivery meets them, and goes the
			 * idempotent way). */
			uint64_t next = strtoull(PQgetvalue(res, 0, 0), NULL, 10) + 1;
			if (next > *cursor && next <= exai__log_deliverable(s->log))
				*cursor = next;
		}
		PQclear(res);
	}
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

/* A string column from the raw (JSON-escaped) member value; NULL when absent or when it holds
 * U+0000, which PostgreSQL text cannot. */
static int copy_str(struct exai__buf *b, const char *raw, size_t n)
{
	if (raw && !memchr(raw, '\\', n))
		return copy_field(b, raw, n);
	json_t *v = NULL;
	if (raw) {
		char *q = malloc(n + 2);
		if (!q)
			return -ENOMEM;
		q[0] = '"';
		memcpy(q + 1, raw, n);
		q[n + 1] = '"';
		v = json_loadb(q, n + 2, JSON_DECODE_ANY, NULL);
		free(q);
	}
	int r = json_is_string(v) ? copy_field(b, json_string_value(v), json_string_length(v)) : copy_field(b, NULL, 0);
	json_decref(v);
	return r;
}

/* One row: the columns come from the event's top-level members, picked out by the one-pass
 * canonical check (no parse tree per row). */
static int copy_row(struct exai__buf *b, const char *origin, const struct exai__rec *rec)
{
	struct exai__event_top t = { .columns = true };
	if (exai__canon_check(rec->payload, rec->len, &t) < 0)
		memset(&t, 0, sizeof(t)); /* not canonical (cannot happen for a verified log): the bytes only */
	char num[64];
	int r = copy_field(b, origin, strlen(origin));
	r |= exai__buf_printf(b, "\t%llu\t", (unsigned long long)rec->seq);
	if (t.has_num[EXAI__TOP_TIME]) {
		/* timestamptz in ISO form, UTC, milliseconds */
		int64_t ms = (int64_t)t.num[EXAI__TOP_TIME];
		time_t secs = (time_t)(ms / 1000);
		struct tm tm;
		gmtime_r(&secs, &tm);
		strftime(num, sizeof(num), "%Y-%m-%d %H:%M:%S", &tm);
		r |= exai__buf_printf(b, "%s.%03d+00", num, (int)(ms % 1000));
	} else {
		r |= exai__buf_append(b, "\\N", 2);
	}
	for (int i = EXAI__TOP_CLASS_UID; i <= EXAI__TOP_ACTIVITY_ID; i++) {
		r |= exai__buf_putc(b, '\t');
		/* integer columns: a number beyond their range or with a fraction is left NULL */
		double v = t.num[i];
		r |= t.has_num[i] && v == (double)(int32_t)v ? exai__buf_printf(b, "%d", (int)v) : exai__buf_append(b, "\\N", 2);
	}
	for (int i = 0; i < EXAI__TOP_STRS; i++) {
		r |= exai__buf_putc(b, '\t');
		r |= copy_str(b, t.str[i], t.str_len[i]);
	}
	r |= exai__buf_putc(b, '\t');
	r |= copy_field(b, rec->payload, rec->len);
	r |= exai__buf_putc(b, '\n');
	return r ? exai__err(-ENOMEM, "out of memory") : 0;
}

#define COPY_COLUMNS " (origin, seq, time, class_uid, activity_id, activity_name, tenant, workspace, canonical) FROM STDIN"

/* COPY @rows into @table after @pre ("BEGIN; " or ""): 0, or -EEXIST when a row was there
 * already (unique violation), or -EIO. */
static int copy_in(struct exai__sink *s, const char *pre, const char *table, const struct exai__buf *rows)
{
	struct pg *p = s->impl;
	char sql[300];
	snprintf(sql, sizeof(sql), "%sCOPY %s" COPY_COLUMNS, pre, table);
	PGresult *res = PQexec(p->conn, sql);
	bool in = PQresultStatus(res) == PGRES_COPY_IN;
	PQclear(res);
	if (!in || PQputCopyData(p->conn, rows->data, (int)rows->len) != 1 || PQputCopyEnd(p->conn, NULL) != 1)
		return pg_error(s, "COPY");
	int r = 0;
	while ((res = PQgetResult(p->conn))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && r == 0) {
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			r = state && strcmp(state, "23505") == 0 ? -EEXIST : pg_error(s, "COPY");
		}
		PQclear(res);
	}
	return r;
}

/* Delivers a batch. The fast way COPYs the rows straight into exai_audit_events: the cursor
 * starts after the table's last seq of this origin (pg_connect), so a row is there already
 * only when something else delivers the same origin; then the batch is redone the idempotent
 * way, COPY into a staging table and INSERT ... ON CONFLICT DO NOTHING. A batch without
 * checkpoints is one statement (its own transaction, one round trip); with checkpoints, the
 * rows and the checkpoints commit together. */
static int pg_deliver(struct exai__sink *s, const struct exai__rec *recs, size_t n, uint64_t *cursor)
{
	(void)cursor;
	struct pg *p = s->impl;
	const char *origin = exai__log_origin(s->log);
	struct exai__buf rows = { 0 }, cps = { 0 }, tail = { 0 };
	int r = 0;
	size_t events = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (recs[i].type == EXAI__REC_EVENT) {
			r = copy_row(&rows, origin, &recs[i]);
			events++;
		} else if (recs[i].type == EXAI__REC_CHECKPOINT) {
			char *o = PQescapeLiteral(p->conn, origin, strlen(origin));
			char *note = PQescapeLiteral(p->conn, recs[i].payload, recs[i].len);
			if (!o || !note || exai__buf_printf(&cps, "INSERT INTO exai_audit_checkpoints VALUES (%s, %llu, %s)"
								  " ON CONFLICT DO NOTHING;", o, (unsigned long long)recs[i].seq, note) < 0)
				r = pg_error(s, "checkpoint");
			PQfreemem(o);
			PQfreemem(note);
		}
	}
	for (int staged = p->staged; r == 0; staged = 1) {
		tail.len = 0;
		if ((staged && events && exai__buf_printf(&tail, "INSERT INTO exai_audit_events SELECT * FROM exai_audit_stage"
								" ON CONFLICT DO NOTHING;") < 0) ||
		    exai__buf_append(&tail, cps.data, cps.len) < 0 || exai__buf_printf(&tail, "COMMIT") < 0) {
			r = exai__err(-ENOMEM, "out of memory");
			break;
		}
		bool one = !staged && cps.len == 0; /* the COPY alone, autocommitted */
		if (events)
			r = copy_in(s, one ? "" : "BEGIN; ", staged ? "exai_audit_stage" : "exai_audit_events", &rows);
		else
			r = exec_ok(s, "BEGIN", "begin");
		if (r == 0 && !one) {
			PGresult *res = PQexec(p->conn, tail.data);
			if (PQresultStatus(res) != PGRES_COMMAND_OK || PQtransactionStatus(p->conn) != PQTRANS_IDLE)
				r = pg_error(s, "insert and commit");
			PQclear(res);
		}
		if (r < 0 && p->conn && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
			PQclear(PQexec(p->conn, "ROLLBACK"));
		if (r != -EEXIST || staged)
			break;
		/* Rows were there already: from now on the idempotent way on this connection. */
		exai__log_info(exai__log_ctx(s->log), "audit", "sink %s: rows of %s were in the table already; "
			       "delivering through the staging table", s->st.name, origin);
		p->staged = true;
		r = 0;
	}
	if (r == -EEXIST)
		r = exai__err(-EIO, "PostgreSQL COPY: duplicate rows in the staging path");
	exai__buf_free(&rows);
	exai__buf_free(&cps);
	exai__buf_free(&tail);
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
