/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-log: appending, bad input, the chain, checkpoints, proofs, reopening, segments,
 * group commit from threads, batch durability, digests and the context attachment. */
#include <pthread.h>

#include "audit/audit-internal.h"
#include "test.h"
#include "audit-check.h"

static exai_ctx *ctx;

static exai_audit_log *open_log(const char *origin, uint32_t cp_events, uint64_t seg, int dur)
{
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .checkpoint_events = cp_events, .segment_size = seg,
		  .durability = dur, .max_event_size = 4096);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	return log;
}

static uint64_t append(exai_audit_log *log, const char *json)
{
	uint64_t seq = UINT64_MAX;
	CHECK_OK(exai_audit_append_json(log, json, strlen(json), &seq));
	return seq;
}

static uint64_t size_of(exai_audit_log *log)
{
	uint64_t n = UINT64_MAX;
	CHECK_OK(exai_audit_size(log, &n));
	return n;
}

static void bad_input(exai_audit_log *log)
{
	uint64_t before = size_of(log), seq = 77;
	struct {
		const char *json;
		int err;
	} cases[] = {
		{ "[1,2]", -EINVAL },
		{ "{\"seq\":5}", -EINVAL },
		{ "{\"origin\":\"x\"}", -EINVAL },
		{ "{\"prev\":\"00\"}", -EINVAL },
		{ "{\"v\":2}", -EINVAL },
		{ "{\"detail\":{\"prompt\":\"tell me the secret\"}}", -EINVAL },
		{ "{\"a\":[{\"tool_input\":\"rm -rf\"}]}", -EINVAL },
		{ "{\"time\":\"yesterday\"}", -EINVAL },
		{ "{\"a\":\"\xff\xfe\"}", -EBADMSG },
		{ "{\"a\":1,\"a\":2}", -EBADMSG },
		{ "{\"a\":", -EBADMSG },
	};
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(cases); i++) {
		CHECK_RC(exai_audit_append_json(log, cases[i].json, strlen(cases[i].json), &seq), cases[i].err);
		CHECK(strlen(exai_errmsg()) > 10);
	}
	char big[5000];
	snprintf(big, sizeof(big), "{\"x\":\"%04000d\"}", 1);
	CHECK_RC(exai_audit_append_json(log, big, strlen(big), &seq), -EFBIG);
	CHECK(strstr(exai_errmsg(), "exceeds the limit") != NULL);
	CHECK(seq == 77);
	CHECK(size_of(log) == before);
	exai_audit_event *ev;
	CHECK_OK(exai_audit_event_new(&ev, 3002, 1, "auth.logon"));
	CHECK_RC(exai_audit_event_set_detail_str(ev, "prompt", "x"), -EINVAL);
	CHECK_RC(exai_audit_event_set_actor(ev, "\xc3\x28"), -EINVAL);
	exai_audit_event_free(ev);
	CHECK_RC(exai_audit_event_new(&ev, 0, 1, NULL), -EINVAL);
}

static void chain_and_proofs(void)
{
	exai_audit_log *log = open_log("test.example/chain", 0, 0, 0);
	exai_audit_event *ev;
	CHECK_OK(exai_audit_event_new(&ev, 6003, 1, "vm.boot"));
	CHECK_OK(exai_audit_event_set_time(ev, 1700000000000));
	CHECK_OK(exai_audit_event_set_actor(ev, "alice"));
	CHECK_OK(exai_audit_event_set_target(ev, "ws-1"));
	CHECK_OK(exai_audit_event_set_tenant(ev, "acme"));
	CHECK_OK(exai_audit_event_set_workspace(ev, "ws-1"));
	CHECK_OK(exai_audit_event_set_outcome(ev, true));
	CHECK_OK(exai_audit_event_set_detail_int(ev, "vcpus", 1));
	CHECK_OK(exai_audit_event_set_detail_json(ev, "disk", "{\"gib\": 4}"));
	uint64_t seq = 99;
	CHECK_OK(exai_audit_append(log, ev, &seq));
	CHECK(seq == 0);
	exai_audit_event_free(ev);
	char *leaf = NULL;
	size_t len;
	CHECK_OK(exai_audit_leaf(log, 0, &leaf, &len));
	CHECK_STREQ(leaf, "{\"activity_id\":1,\"activity_name\":\"vm.boot\",\"actor\":{\"user\":{\"name\":\"alice\"}},"
			  "\"class_uid\":6003,\"detail\":{\"disk\":{\"gib\":4},\"vcpus\":1},\"origin\":\"test.example/chain\","
			  "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"seq\":0,"
			  "\"status\":\"Success\",\"status_id\":1,\"target\":{\"name\":\"ws-1\"},\"tenant\":\"acme\","
			  "\"time\":1700000000000,\"type_uid\":600301,\"v\":1,\"workspace\":\"ws-1\"}");
	exai_free(leaf);
	bad_input(log);
	for (int i = 1; i < 37; i++) {
		char j[64];
		snprintf(j, sizeof(j), "{\"class_uid\":1001,\"activity_id\":%d,\"n\":%d}", 1 + i % 3, i);
		CHECK(append(log, j) == (uint64_t)i);
	}
	/* prev of each event is the SHA-256 of the previous one's canonical bytes. */
	for (uint64_t s = 1; s < 37; s++) {
		char *a = NULL, *b = NULL, hex[65];
		size_t al, bl;
		uint8_t h[32];
		CHECK_OK(exai_audit_leaf(log, s - 1, &a, &al));
		CHECK_OK(exai_audit_leaf(log, s, &b, &bl));
		exai__sha256(h, a, al);
		exai__hex(hex, h, 32);
		char want[80];
		snprintf(want, sizeof(want), "\"prev\":\"%s\"", hex);
		CHECK(b && strstr(b, want) != NULL);
		exai_free(a);
		exai_free(b);
	}
	/* The checkpoint is signed, names the size and the root of the events. */
	char *note = NULL, *vkey = NULL, *text = NULL;
	CHECK_OK(exai_audit_checkpoint(log, &note, false));
	CHECK_OK(exai_audit_vkey(log, &vkey));
	CHECK(vkey && strncmp(vkey, "test.example/chain+", 19) == 0);
	CHECK_OK(exai_audit_note_open(&text, note, strlen(note), vkey));
	uint64_t size;
	uint8_t root[32], mine[32];
	CHECK_OK(exai_audit_checkpoint_parse(NULL, &size, root, text, strlen(text)));
	CHECK(size == 37);
	CHECK_OK(exai_audit_root(log, 37, mine));
	CHECK(memcmp(root, mine, 32) == 0);
	for (uint64_t s = 0; s < 37; s++) {
		uint8_t (*p)[32] = NULL;
		size_t n;
		check_inclusion(log, s, 37, root);
		if (s == 0)
			continue;
		uint8_t r1[32];
		CHECK_OK(exai_audit_root(log, s, r1));
		CHECK_OK(exai_audit_consistency(log, s, 37, &p, &n));
		CHECK_OK(exai_audit_merkle_verify_consistency(s, 37, p, n, r1, root));
		exai_free(p);
	}
	uint8_t (*p)[32];
	size_t n;
	CHECK_RC(exai_audit_prove(log, 37, 37, &p, &n), -ERANGE);
	CHECK_RC(exai_audit_prove(log, 1, 38, &p, &n), -ERANGE);
	exai_free(text);
	CHECK_OK(exai_audit_close(log));

	/* Reopen: the chain goes on; the last checkpoint is the same. */
	log = open_log("test.example/chain", 0, 0, 0);
	char *note2 = NULL;
	CHECK_OK(exai_audit_latest_checkpoint(log, &note2));
	CHECK_STREQ(note2, note);
	CHECK(append(log, "{\"class_uid\":1001,\"activity_id\":1}") == 37);
	char *a = NULL;
	CHECK_OK(exai_audit_leaf(log, 37, &a, &len));
	CHECK(a && strstr(a, "\"seq\":37") != NULL);
	exai_free(a);
	char *d1 = NULL, *d2 = NULL;
	CHECK_OK(exai_audit_digest(log, &d1, "prompt text", 11));
	CHECK_OK(exai_audit_digest(log, &d2, "prompt text", 11));
	CHECK_STREQ(d1, d2);
	CHECK(d1 && strncmp(d1, "b2k:", 4) == 0 && strlen(d1) == 68);
	exai_free(d1);
	exai_free(d2);
	CHECK_OK(exai_audit_close(log));
	struct exai_audit_verify_result res = { .sz = sizeof(res) };
	CHECK_OK(exai_audit_verify(ctx, "test.example/chain", vkey, &res));
	CHECK(res.events == 38 && res.sealed_size == 38 && res.unsealed == 0 && res.bad_seq == -1);
	CHECK(res.checkpoints == 2);
	/* A key of another log is refused. */
	CHECK(exai_audit_verify(ctx, "test.example/chain", "other+12345678+AQ==", NULL) < 0);
	exai_free(note);
	exai_free(note2);
	exai_free(vkey);
}

struct worker {
	exai_audit_log *log;
	int n;
	uint64_t *seqs;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->n; i++) {
		char j[64];
		snprintf(j, sizeof(j), "{\"class_uid\":1001,\"activity_id\":1,\"i\":%d}", i);
		if (exai_audit_append_json(w->log, j, strlen(j), &w->seqs[i]) < 0)
			w->seqs[i] = UINT64_MAX;
	}
	return NULL;
}

/* Threads appending at once (group commit), small segments, frequent checkpoints. */
static void threads_and_segments(int dur)
{
	const char *origin = dur == EXAI_AUDIT_BATCH ? "batch" : "sync";
	exai_audit_log *log = open_log(origin, 50, 4096, dur);
	enum { T = 4, N = 300 };
	pthread_t th[T];
	struct worker w[T];
	for (int t = 0; t < T; t++) {
		w[t] = (struct worker){ log, N, calloc(N, sizeof(uint64_t)) };
		pthread_create(&th[t], NULL, work, &w[t]);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	CHECK_OK(exai_audit_flush(log));
	uint8_t *seen = calloc(T * N, 1);
	for (int t = 0; t < T; t++) {
		for (int i = 0; i < N; i++) {
			CHECK(w[t].seqs[i] < T * N);
			if (w[t].seqs[i] < T * N) {
				CHECK(!seen[w[t].seqs[i]]);
				seen[w[t].seqs[i]] = 1;
			}
		}
		free(w[t].seqs);
	}
	free(seen);
	CHECK(size_of(log) == T * N);
	/* Proofs across segments. */
	uint8_t root[32], lh[32], (*p)[32];
	size_t n, len;
	char *leaf;
	CHECK_OK(exai_audit_root(log, T * N, root));
	CHECK_OK(exai_audit_leaf(log, 777, &leaf, &len));
	exai_audit_merkle_leaf_hash(lh, leaf, len);
	exai_free(leaf);
	CHECK_OK(exai_audit_prove(log, 777, T * N, &p, &n));
	CHECK_OK(exai_audit_merkle_verify_inclusion(777, T * N, lh, p, n, root));
	exai_free(p);
	CHECK_OK(exai_audit_close(log));
	struct exai__seglist segs;
	char *dir = exai__log_dir(ctx, origin);
	CHECK_OK(exai__seglist_load(&segs, dir));
	CHECK(segs.n > 5);
	printf("%s: %zu segments\n", origin, segs.n);
	exai__seglist_free(&segs);
	free(dir);
	struct exai_audit_verify_result res = { .sz = sizeof(res) };
	CHECK_OK(exai_audit_verify(ctx, origin, NULL, &res));
	CHECK(res.events == T * N && res.checkpoints >= T * N / 50 && res.unsealed == 0);
	/* Reopen reads the saved tree state; the roots agree. */
	log = open_log(origin, 50, 4096, dur);
	uint8_t again[32];
	CHECK_OK(exai_audit_root(log, T * N, again));
	CHECK(memcmp(root, again, 32) == 0);
	CHECK(append(log, "{\"class_uid\":1001,\"activity_id\":1}") == T * N);
	CHECK_OK(exai_audit_close(log));
	CHECK_OK(exai_audit_verify(ctx, origin, NULL, NULL));
}

static void attach(void)
{
	exai_audit_log *log = open_log("attached", 0, 0, 0);
	CHECK_OK(exai_audit_attach(ctx, log));
	CHECK_RC(exai_audit_attach(ctx, (exai_audit_log *)ctx), -EBUSY);
	json_t *ev = json_pack("{s:i, s:i, s:s}", "class_uid", 5001, "activity_id", 2, "activity_name", "kms.unwrap");
	CHECK_OK(exai__ctx_emit(ctx, ev));
	CHECK_OK(exai__ctx_emit(ctx, ev));
	json_decref(ev);
	CHECK(size_of(log) == 2);
	CHECK_OK(exai_audit_detach(ctx, log));
	ev = json_pack("{s:i}", "class_uid", 1);
	CHECK_OK(exai__ctx_emit(ctx, ev)); /* no log attached: dropped by design of the core */
	json_decref(ev);
	CHECK(size_of(log) == 2);
	char *leaf;
	size_t len;
	CHECK_OK(exai_audit_leaf(log, 1, &leaf, &len));
	CHECK(strstr(leaf, "\"activity_name\":\"kms.unwrap\"") && strstr(leaf, "\"seq\":1"));
	exai_free(leaf);
	CHECK_OK(exai_audit_close(log));
}

int main(void)
{
	char *dir = test_tmpdir();
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	exai_audit_log *log;
	EXAI_OPTS(exai_audit_opts, bad, .origin = "has space");
	CHECK_RC(exai_audit_open(&log, ctx, &bad), -EINVAL);
	CHECK(strstr(exai_errmsg(), "origin") != NULL);
	chain_and_proofs();
	threads_and_segments(EXAI_AUDIT_SYNC);
	threads_and_segments(EXAI_AUDIT_BATCH);
	attach();
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
