/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-prune: retention removes whole old segments behind a signed prune record; proofs
 * of retained events stay valid; verify accepts the pruned prefix only with its record. */
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit-internal.h"
#include "test.h"
#include "audit-check.h"

static exai_ctx *ctx;

static exai_audit_log *open_log(void)
{
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, o, .origin = "prune", .checkpoint_events = 25, .segment_size = 3000,
		  .durability = EXAI_AUDIT_BATCH);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	return log;
}

int main(void)
{
	char *dir = test_tmpdir();
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	exai_audit_log *log = open_log();
	int64_t day = 86400000, now = exai__now_ms();
	/* 300 events 3000 days old, then 100 of today. */
	for (int i = 0; i < 400; i++) {
		char j[128];
		snprintf(j, sizeof(j), "{\"class_uid\":1001,\"activity_id\":1,\"time\":%lld,\"n\":%d}",
			 (long long)(i < 300 ? now - 3000 * day + i : now), i);
		CHECK_OK(exai_audit_append_json(log, j, strlen(j), NULL));
	}
	char *note = NULL, *vkey = NULL, *text = NULL;
	CHECK_OK(exai_audit_checkpoint(log, &note, false));
	CHECK_OK(exai_audit_vkey(log, &vkey));
	uint8_t root_before[32];
	CHECK_OK(exai_audit_root(log, 400, root_before));

	/* Nothing is older than a cutoff of long ago. */
	uint64_t first = 99;
	CHECK_OK(exai_audit_prune(log, now - 4000 * day, &first));
	CHECK(first == 0);
	/* A sink that has delivered only up to seq 50 holds pruning back. */
	char *ldir0 = exai__log_dir(ctx, "prune"), *sdir = exai__path_join(ldir0, "sinks");
	char *held = exai__path_join(sdir, "held.cursor");
	CHECK(mkdir(sdir, 0700) == 0);
	FILE *hf = fopen(held, "w");
	fputs("50\n", hf);
	fclose(hf);
	CHECK_OK(exai_audit_prune(log, 0, &first));
	CHECK(first <= 50);
	CHECK(unlink(held) == 0);
	free(held);
	free(sdir);
	free(ldir0);
	/* Default retention (2557 days): the 3000-day-old segments go, the mixed one stays. */
	CHECK_OK(exai_audit_prune(log, 0, &first));
	printf("first retained seq after pruning: %llu\n", (unsigned long long)first);
	CHECK(first > 100 && first <= 300);
	char *leaf = NULL;
	size_t len;
	CHECK_RC(exai_audit_leaf(log, first - 1, &leaf, &len), -ENOENT);
	/* Proofs of retained events against the checkpoint taken before pruning. */
	CHECK_OK(exai_audit_note_open(&text, note, strlen(note), vkey));
	uint64_t size;
	uint8_t root[32];
	CHECK_OK(exai_audit_checkpoint_parse(NULL, &size, root, text, strlen(text)));
	CHECK(size == 400 && memcmp(root, root_before, 32) == 0);
	uint8_t again[32];
	CHECK_OK(exai_audit_root(log, 400, again));
	CHECK(memcmp(again, root, 32) == 0);
	for (uint64_t s = first; s < 400; s += 7)
		check_inclusion(log, s, 400, root);
	uint8_t (*p)[32] = NULL, r1[32];
	size_t n;
	CHECK_OK(exai_audit_root(log, first + 3, r1));
	CHECK_OK(exai_audit_consistency(log, first + 3, 400, &p, &n));
	CHECK_OK(exai_audit_merkle_verify_consistency(first + 3, 400, p, n, r1, root));
	exai_free(p);
	CHECK_RC(exai_audit_prove(log, first - 1, 400, &p, &n), -ENOENT);
	CHECK_RC(exai_audit_consistency(log, 5, 400, &p, &n), -ENOENT);
	/* The chain goes on after pruning and reopening; a sink added now starts at the first
	 * retained event, and a sink's cursor holds back the next prune. */
	CHECK_OK(exai_audit_close(log));
	log = open_log();
	char jl[600];
	snprintf(jl, sizeof(jl), "%s/events.jsonl", dir);
	EXAI_OPTS(exai_audit_sink_opts, so, .kind = EXAI_AUDIT_SINK_JSONL, .name = "late", .target = jl);
	CHECK_OK(exai_audit_sink_add(log, &so));
	for (int t = 0; t < 200; t++) {
		struct exai_audit_sink_status st;
		size_t ns;
		CHECK_OK(exai_audit_sink_status(log, &st, 1, &ns));
		if (st.cursor == 400)
			break;
		usleep(20000);
	}
	CHECK_OK(exai_audit_close(log));
	size_t jlen;
	char *lines = test_read_file(jl, &jlen), *nl = strchr(lines, '\n');
	char want[40];
	snprintf(want, sizeof(want), "\"seq\":%llu,", (unsigned long long)first);
	CHECK(nl && memmem(lines, (size_t)(nl - lines), want, strlen(want)) != NULL);
	int count = 0;
	for (char *c = lines; (c = strchr(c, '\n')); c++)
		count++;
	CHECK(count == (int)(400 - first));
	free(lines);
	log = open_log();
	uint64_t seq;
	CHECK_OK(exai_audit_append_json(log, "{\"class_uid\":1,\"activity_id\":1}", 31, &seq));
	CHECK(seq == 400);
	CHECK_OK(exai_audit_close(log));
	struct exai_audit_verify_result res = { .sz = sizeof(res) };
	CHECK_OK(exai_audit_verify(ctx, "prune", vkey, &res));
	CHECK(res.first_seq == first && res.events == 401 - first && res.unsealed == 0);

	/* Without its prune record, or with a changed one, the pruned prefix is refused. */
	char *ldir = exai__log_dir(ctx, "prune"), *pf = exai__path_join(ldir, "pruned"), *saved = NULL;
	size_t slen;
	saved = test_read_file(pf, &slen);
	CHECK(unlink(pf) == 0);
	CHECK_RC(exai_audit_verify(ctx, "prune", vkey, &res), -EBADMSG);
	CHECK(res.bad_seq == 0);
	char *changed = strdup(saved), *fs = strstr(changed, "\"first_seq\":");
	fs[12] = fs[12] == '1' ? '2' : '1';
	FILE *f = fopen(pf, "w");
	fwrite(changed, 1, slen, f);
	fclose(f);
	CHECK_RC(exai_audit_verify(ctx, "prune", vkey, &res), -EBADMSG);
	f = fopen(pf, "w");
	fwrite(saved, 1, slen, f);
	fclose(f);
	CHECK_OK(exai_audit_verify(ctx, "prune", vkey, &res));
	free(changed);
	free(saved);
	free(pf);
	free(ldir);
	exai_free(note);
	exai_free(text);
	exai_free(vkey);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
