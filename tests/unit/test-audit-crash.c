/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-crash: 100 runs of a writer (durability sync) killed with SIGKILL at a random
 * moment. After each: every append that returned success is in the log with its content, the
 * log reopens (cutting any torn tail) and verifies. */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit-internal.h"
#include "test.h"

#define RUNS 100
#define RUNS_PER_LOG 10

static char *state_dir;

static exai_audit_log *open_log(exai_ctx *ctx, const char *origin)
{
	exai_audit_log *log = NULL;
	/* Small checkpoint interval and segments, so kills land in checkpoints and rotations too. */
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .checkpoint_events = 7, .checkpoint_ms = 20,
		  .segment_size = 2048);
	int r = exai_audit_open(&log, ctx, &o);
	if (r < 0) {
		fprintf(stderr, "open %s: %s\n", origin, exai_errmsg());
		return NULL;
	}
	return log;
}

/* The child: appends until killed, reporting each acknowledged seq and its tag on @fd. */
static void writer(int fd, const char *origin, unsigned run)
{
	exai_ctx *ctx;
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state_dir);
	if (exai_ctx_new(&ctx, &co) < 0)
		_exit(2);
	exai_audit_log *log = open_log(ctx, origin);
	if (!log)
		_exit(3);
	for (unsigned i = 0;; i++) {
		char j[96];
		uint64_t seq;
		snprintf(j, sizeof(j), "{\"class_uid\":1001,\"activity_id\":1,\"tag\":\"r%u-i%u\"}", run, i);
		if (exai_audit_append_json(log, j, strlen(j), &seq) < 0)
			_exit(4);
		uint64_t rec[2] = { seq, ((uint64_t)run << 32) | i };
		if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			_exit(5);
	}
}

int main(void)
{
	state_dir = test_tmpdir();
	exai_ctx *ctx;
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state_dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	srand((unsigned)time(NULL));
	unsigned acked_total = 0, lost = 0, verified = 0;
	for (unsigned run = 0; run < RUNS; run++) {
		char origin[32];
		snprintf(origin, sizeof(origin), "crash%u", run / RUNS_PER_LOG);
		int p[2];
		CHECK(pipe(p) == 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(p[0]);
			writer(p[1], origin, run);
		}
		close(p[1]);
		/* Kill at a random moment: from during open to well into the appends. */
		struct timespec ts = { 0, (long)(rand() % 150000) * 1000 };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		uint64_t rec[2];
		uint64_t *acked = NULL;
		size_t n = 0;
		while (read(p[0], rec, sizeof(rec)) == (ssize_t)sizeof(rec)) {
			acked = realloc(acked, (n + 2) * sizeof(uint64_t));
			acked[n++] = rec[0];
			acked[n++] = rec[1];
		}
		close(p[0]);
		exai_audit_log *log = open_log(ctx, origin);
		CHECK(log != NULL);
		if (!log) {
			free(acked);
			break;
		}
		uint64_t size = 0;
		CHECK_OK(exai_audit_size(log, &size));
		for (size_t i = 0; i < n; i += 2) {
			char *leaf = NULL, want[64];
			size_t len;
			acked_total++;
			snprintf(want, sizeof(want), "\"tag\":\"r%u-i%u\"", (unsigned)(acked[i + 1] >> 32),
				 (unsigned)(acked[i + 1] & 0xffffffffu));
			if (exai_audit_leaf(log, acked[i], &leaf, &len) < 0 || !strstr(leaf, want)) {
				lost++;
				fprintf(stderr, "run %u: acknowledged seq %llu (%s) is missing\n", run,
					(unsigned long long)acked[i], want);
			}
			exai_free(leaf);
		}
		CHECK(n == 0 || acked[n - 2] < size); /* more may be there: appended, never acknowledged */
		free(acked);
		CHECK_OK(exai_audit_close(log));
		struct exai_audit_verify_result res = { .sz = sizeof(res) };
		int r = exai_audit_verify(ctx, origin, NULL, &res);
		CHECK_OK(r);
		verified += r == 0;
	}
	printf("%d runs: %u acknowledged appends, %u missing; %u verifications passed\n", RUNS, acked_total, lost,
	       verified);
	CHECK(lost == 0 && verified == RUNS && acked_total > RUNS);
	exai_ctx_unref(ctx);
	test_rmrf(state_dir);
	free(state_dir);
	return test_done();
}
