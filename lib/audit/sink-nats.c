/* SPDX-License-Identifier: Apache-2.0 */
/* sink-nats.c: the NATS JetStream sink. Events go to subject exai.audit.<origin> in a stream
 * that holds only that subject (EXAI_AUDIT_<origin>), with Nats-Msg-Id "<origin>:<seq>" and
 * the expected last subject sequence on every message: since the stream holds nothing else,
 * message k+1 expects the stream sequence of message k, so a lost message stops the ones
 * after it and a resend after a crash cannot duplicate, even outside the dedup window. On
 * each (re)connect the sink asks the stream for its last message and resumes after it.
 * Checkpoints go to exai.audit.<origin>.checkpoint in EXAI_AUDIT_CP_<origin>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "audit-internal.h"

struct nats {
	natsConnection *nc;
	jsCtx *js;
	char subject[200], cp_subject[220], stream[160], cp_stream[160];
	uint64_t last;        /* stream sequence of the last message on the subject */
	pthread_mutex_t lock; /* guards failed */
	int failed;
	char error[200];
};

static void name_of(char *out, size_t n, const char *prefix, const char *origin)
{
	size_t k = (size_t)snprintf(out, n, "%s", prefix);
	for (const char *c = origin; *c && k + 1 < n; c++)
		out[k++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ? *c : '_';
	out[k] = '\0';
}

static int nats_err(natsStatus s, const char *what)
{
	const char *last = nats_GetLastError(NULL);
	return exai__err(-EIO, "NATS %s: %s%s%s", what, natsStatus_GetText(s), last && *last ? ": " : "", last ? last : "");
}

static void on_pub_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	struct nats *n = closure;
	pthread_mutex_lock(&n->lock);
	if (!n->failed++)
		snprintf(n->error, sizeof(n->error), "publish failed: %s (%d) %s", natsStatus_GetText(pae->Err),
			 (int)pae->ErrCode, pae->ErrText ? pae->ErrText : "");
	pthread_mutex_unlock(&n->lock);
}

static int ensure_stream(jsCtx *js, const char *name, const char *subject)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s != NATS_NOT_FOUND)
		return nats_err(s, "stream info");
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	const char *subjects[1] = { subject };
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	s = js_AddStream(&si, js, &cfg, NULL, &jerr);
	if (s != NATS_OK && jerr != JSStreamNameExistErr)
		return nats_err(s, "create stream");
	jsStreamInfo_Destroy(si);
	return 0;
}

static void nats_disconnect(struct exai__sink *s)
{
	struct nats *n = s->impl;
	if (!n)
		return;
	jsCtx_Destroy(n->js);
	n->js = NULL;
	if (n->nc) {
		natsConnection_Close(n->nc);
		natsConnection_Destroy(n->nc);
	}
	n->nc = NULL;
}

/* Connects, creates the streams if absent and resumes after the stream's last message. */
static int nats_connect(struct exai__sink *s, uint64_t *cursor)
{
	struct nats *n = s->impl;
	natsOptions *opts = NULL;
	natsStatus st = natsOptions_Create(&opts);
	if (st == NATS_OK)
		st = natsOptions_SetURL(opts, s->target);
	if (st == NATS_OK)
		st = natsOptions_SetTimeout(opts, 2000);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(opts, 0); /* the sink reconnects itself */
	if (st == NATS_OK)
		st = natsConnection_Connect(&n->nc, opts);
	natsOptions_Destroy(opts);
	if (st != NATS_OK)
		return nats_err(st, "connect");
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 5000;
	jo.PublishAsync.ErrHandler = on_pub_err;
	jo.PublishAsync.ErrHandlerClosure = n;
	jo.PublishAsync.MaxPending = 4096;
	st = natsConnection_JetStream(&n->js, n->nc, &jo);
	int r = st == NATS_OK ? 0 : nats_err(st, "JetStream");
	if (r == 0)
		r = ensure_stream(n->js, n->stream, n->subject);
	if (r == 0)
		r = ensure_stream(n->js, n->cp_stream, n->cp_subject);
	if (r == 0) {
		natsMsg *m = NULL;
		jsErrCode jerr = 0;
		st = js_GetLastMsg(&m, n->js, n->stream, n->subject, NULL, &jerr);
		if (st == NATS_NOT_FOUND) {
			n->last = 0;
			*cursor = 0;
		} else if (st != NATS_OK) {
			r = nats_err(st, "last message");
		} else {
			const char *id = NULL;
			natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
			const char *colon = id ? strrchr(id, ':') : NULL;
			n->last = natsMsg_GetSequence(m);
			if (!colon)
				r = exai__err(-EBADMSG, "NATS: the last message on %s has no Nats-Msg-Id <origin>:<seq>", n->subject);
			else
				*cursor = strtoull(colon + 1, NULL, 10) + 1;
			natsMsg_Destroy(m);
		}
	}
	if (r < 0)
		nats_disconnect(s);
	return r;
}

static int nats_deliver(struct exai__sink *s, const struct exai__rec *recs, size_t nrec, uint64_t *cursor)
{
	struct nats *n = s->impl;
	const char *origin = exai__log_origin(s->log);
	natsStatus st = NATS_OK;
	uint64_t expect = n->last;
	pthread_mutex_lock(&n->lock);
	n->failed = 0;
	pthread_mutex_unlock(&n->lock);
	for (size_t i = 0; i < nrec && st == NATS_OK; i++) {
		const struct exai__rec *rec = &recs[i];
		if (rec->type == EXAI__REC_EVENT && rec->seq < *cursor)
			continue; /* already in the stream */
		char id[200];
		natsMsg *m = NULL;
		jsPubOptions po;
		jsPubOptions_Init(&po);
		bool ev = rec->type == EXAI__REC_EVENT;
		if (ev) {
			snprintf(id, sizeof(id), "%s:%llu", origin, (unsigned long long)rec->seq);
			po.ExpectLastSubjectSeq = expect;
		} else {
			snprintf(id, sizeof(id), "%s:checkpoint:%llu", origin, (unsigned long long)rec->seq);
		}
		po.MsgId = id;
		if (ev && expect == 0) /* the first message on the subject: no expectation to state */
			po.ExpectLastSubjectSeq = 0;
		st = natsMsg_Create(&m, ev ? n->subject : n->cp_subject, NULL, rec->payload, (int)rec->len);
		if (st == NATS_OK)
			st = js_PublishMsgAsync(n->js, &m, &po);
		natsMsg_Destroy(m);
		if (ev)
			expect++;
	}
	if (st == NATS_OK) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = 10000;
		st = js_PublishAsyncComplete(n->js, &po);
	}
	pthread_mutex_lock(&n->lock);
	int failed = n->failed;
	pthread_mutex_unlock(&n->lock);
	if (st != NATS_OK)
		return nats_err(st, "publish");
	if (failed)
		return exai__err(-EIO, "NATS %s", n->error);
	n->last = expect;
	return 0;
}

static const struct exai__sink_ops nats_ops = { nats_deliver, nats_connect, nats_disconnect };

int exai__sink_nats_init(struct exai__sink *s)
{
	struct nats *n = calloc(1, sizeof(*n));
	if (!n)
		return exai__err(-ENOMEM, "out of memory");
	const char *origin = exai__log_origin(s->log);
	snprintf(n->subject, sizeof(n->subject), "exai.audit.%s", origin);
	snprintf(n->cp_subject, sizeof(n->cp_subject), "exai.audit.%s.checkpoint", origin);
	name_of(n->stream, sizeof(n->stream), "EXAI_AUDIT_", origin);
	name_of(n->cp_stream, sizeof(n->cp_stream), "EXAI_AUDIT_CP_", origin);
	pthread_mutex_init(&n->lock, NULL);
	s->impl = n;
	s->ops = &nats_ops;
	return 0;
}
