/* SPDX-License-Identifier: Apache-2.0 */
/* test-ctx: the context, options-struct rules, errors, logging, versions, secure memory. */
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core-internal.h"
#include "exai-config.h"
#include "test.h"

struct log_seen {
	int calls;
	int last_level;
	char last[256];
};

static void log_cb(void *ud, int level, const char *module, const char *msg)
{
	struct log_seen *s = ud;
	s->calls++;
	s->last_level = level;
	snprintf(s->last, sizeof(s->last), "%s: %s", module, msg);
}

static void opts_rules(void)
{
	exai_ctx *ctx = NULL;

	/* NULL options: defaults. */
	unsetenv("EXAI_STATE_DIR");
	CHECK_OK(exai_ctx_new(&ctx, NULL));
	CHECK_STREQ(exai_ctx_state_dir(ctx), EXAI_DEFAULT_STATE_DIR);
	exai_ctx_unref(ctx);

	/* EXAI_STATE_DIR overrides the default; options override both; trailing '/' trimmed. */
	setenv("EXAI_STATE_DIR", "/tmp/from-env", 1);
	CHECK_OK(exai_ctx_new(&ctx, NULL));
	CHECK_STREQ(exai_ctx_state_dir(ctx), "/tmp/from-env");
	exai_ctx_unref(ctx);
	EXAI_OPTS(exai_ctx_opts, o, .state_dir = "/tmp/from-opts//");
	CHECK_OK(exai_ctx_new(&ctx, &o));
	CHECK_STREQ(exai_ctx_state_dir(ctx), "/tmp/from-opts");
	exai_ctx_unref(ctx);

	setenv("EXAI_STATE_DIR", "relative/dir", 1);
	ctx = (exai_ctx *)&o; /* must stay untouched on failure */
	CHECK_RC(exai_ctx_new(&ctx, NULL), -EINVAL);
	CHECK(strstr(exai_errmsg(), "EXAI_STATE_DIR") != NULL);
	CHECK(ctx == (exai_ctx *)&o);
	unsetenv("EXAI_STATE_DIR");

	/* sz too small for itself. */
	struct exai_ctx_opts bad = { .sz = 4 };
	CHECK_RC(exai_ctx_new(&ctx, &bad), -EINVAL);
	CHECK(strstr(exai_errmsg(), "exai_ctx_opts") != NULL);

	/* A newer caller's struct: a zero tail is fine, a non-zero tail is -E2BIG. */
	struct {
		struct exai_ctx_opts o;
		uint64_t future;
	} newer = { .o = { .sz = sizeof(newer) } };
	CHECK_OK(exai_ctx_new(&ctx, &newer.o));
	exai_ctx_unref(ctx);
	newer.future = 1;
	CHECK_RC(exai_ctx_new(&ctx, &newer.o), -E2BIG);
	CHECK(strstr(exai_errmsg(), "offset") != NULL);

	/* An older caller's struct (only sz and state_dir): the rest defaults. */
	struct exai_ctx_opts older = { .sz = offsetof(struct exai_ctx_opts, log_fn), .state_dir = "/tmp/old",
				       .log_level = 99 /* beyond sz: must be ignored */ };
	CHECK_OK(exai_ctx_new(&ctx, &older));
	CHECK_STREQ(exai_ctx_state_dir(ctx), "/tmp/old");
	exai_ctx_unref(ctx);

	EXAI_OPTS(exai_ctx_opts, lv, .state_dir = "/tmp/x", .log_level = 9);
	CHECK_RC(exai_ctx_new(&ctx, &lv), -EINVAL);
	CHECK(strstr(exai_errmsg(), "log_level") != NULL);
	EXAI_OPTS(exai_ctx_opts, fl, .state_dir = "/tmp/x", .flags = 0x80);
	CHECK_RC(exai_ctx_new(&ctx, &fl), -EINVAL);
	CHECK_RC(exai_ctx_new(NULL, NULL), -EINVAL);
}

static void logging(void)
{
	struct log_seen seen = { 0 };
	exai_ctx *ctx;
	EXAI_OPTS(exai_ctx_opts, o, .state_dir = "/tmp/x", .log_fn = log_cb, .log_userdata = &seen,
		  .log_level = EXAI_LOG_WARNING);
	CHECK_OK(exai_ctx_new(&ctx, &o));
	exai__log_info(ctx, "core", "not shown %d", 1);
	CHECK(seen.calls == 0);
	exai__log_err(ctx, "core", "shown %d", 2);
	CHECK(seen.calls == 1 && seen.last_level == EXAI_LOG_ERROR);
	CHECK_STREQ(seen.last, "core: shown 2");
	CHECK_OK(exai_ctx_set_log(ctx, log_cb, &seen, EXAI_LOG_DEBUG));
	exai__log_debug(ctx, "keys", "now shown");
	CHECK(seen.calls == 2);
	CHECK_OK(exai_ctx_set_log(ctx, NULL, NULL, 0));
	exai__log_err(ctx, "core", "silent");
	CHECK(seen.calls == 2);
	CHECK_RC(exai_ctx_set_log(ctx, NULL, NULL, 42), -EINVAL);

	/* References: the context lives until the last unref. */
	CHECK(exai_ctx_ref(ctx) == ctx);
	CHECK(exai_ctx_unref(ctx) == NULL);
	CHECK_STREQ(exai_ctx_state_dir(ctx), "/tmp/x");
	exai_ctx_unref(ctx);
	CHECK(exai_ctx_ref(NULL) == NULL);
	CHECK(exai_ctx_unref(NULL) == NULL);

	/* At debug level the new context says which state directory it uses and why. */
	memset(&seen, 0, sizeof(seen));
	EXAI_OPTS(exai_ctx_opts, dbg, .state_dir = "/tmp/y/", .log_fn = log_cb, .log_userdata = &seen,
		  .log_level = EXAI_LOG_DEBUG);
	CHECK_OK(exai_ctx_new(&ctx, &dbg));
	CHECK(seen.calls == 1 && seen.last_level == EXAI_LOG_DEBUG);
	CHECK(strstr(seen.last, "core: libexai ") == seen.last);
	CHECK(strstr(seen.last, "state directory /tmp/y (from exai_ctx_opts.state_dir)") != NULL);
	exai_ctx_unref(ctx);

	CHECK_STREQ(exai_log_level_name(EXAI_LOG_ERROR), "error");
	CHECK_STREQ(exai_log_level_name(EXAI_LOG_WARNING), "warning");
	CHECK_STREQ(exai_log_level_name(EXAI_LOG_NOTICE), "notice");
	CHECK_STREQ(exai_log_level_name(EXAI_LOG_INFO), "info");
	CHECK_STREQ(exai_log_level_name(EXAI_LOG_DEBUG), "debug");
	CHECK(exai_log_level_name(0) == NULL && exai_log_level_name(2) == NULL && exai_log_level_name(8) == NULL);
}

static int emitted;
static int emit_cb(void *data, json_t *ev)
{
	(void)data;
	CHECK(json_is_object(ev));
	emitted++;
	return 0;
}

static void emitter(void)
{
	exai_ctx *ctx;
	EXAI_OPTS(exai_ctx_opts, o, .state_dir = "/tmp/x");
	CHECK_OK(exai_ctx_new(&ctx, &o));
	json_t *ev = json_object();
	CHECK_OK(exai__ctx_emit(ctx, ev)); /* nothing attached: accepted, dropped */
	CHECK_OK(exai__ctx_set_emitter(ctx, emit_cb, &o));
	CHECK_RC(exai__ctx_set_emitter(ctx, emit_cb, NULL), -EBUSY);
	CHECK_OK(exai__ctx_emit(ctx, ev));
	CHECK(emitted == 1);
	CHECK_OK(exai__ctx_set_emitter(ctx, NULL, NULL));
	CHECK_OK(exai__ctx_emit(ctx, ev));
	CHECK(emitted == 1);
	json_decref(ev);
	exai_ctx_unref(ctx);
}

static void versions_and_errors(void)
{
	CHECK_STREQ(exai_version(), EXAI_VERSION_STRING);
	char hdr[32];
	snprintf(hdr, sizeof(hdr), "%d.%d.%d", EXAI_VERSION_MAJOR, EXAI_VERSION_MINOR, EXAI_VERSION_PATCH);
	CHECK_STREQ(exai_version(), hdr);
	CHECK(exai_version_number() == EXAI_VERSION_NUMBER);
	CHECK(exai_feature_name(EXAI_FEATURE_BPF) != NULL);
	CHECK_STREQ(exai_feature_name(EXAI_FEATURE_PKCS11), "pkcs11");
	CHECK(exai_feature_name(1ull << 40) == NULL);
	CHECK((exai_features() & ~0xffull) == 0);

	CHECK_STREQ(exai_strerror(-ENOENT), "No such file or directory");
	CHECK_STREQ(exai_strerror(ENOENT), "No such file or directory");
	CHECK(strstr(exai_strerror(-EBADMSG), "authentication") != NULL);
	CHECK_STREQ(exai_strerror(0), "success");
	CHECK(exai_strerror(-9999) != NULL);
	CHECK_RC(exai__err(-EIO, "disk %s failed", "sda"), -EIO);
	CHECK_STREQ(exai_errmsg(), "disk sda failed");
	errno = EPERM;
	CHECK_RC(exai__err_sys(exai__neg_errno(), "open %s", "x"), -EPERM);
	CHECK_STREQ(exai_errmsg(), "open x: Operation not permitted");
}

static void memory(void)
{
	unsigned char *k = exai_secure_alloc(32);
	CHECK(k != NULL);
	memset(k, 0xa5, 32);
	unsigned char same[32];
	memset(same, 0xa5, 32);
	CHECK(exai_memeq_ct(k, same, 32) == 0);
	same[31] ^= 1;
	CHECK(exai_memeq_ct(k, same, 32) == -1);
	exai_memzero(same, sizeof(same));
	for (size_t i = 0; i < sizeof(same); i++)
		CHECK(same[i] == 0);
	exai_secure_free(k);
	exai_secure_free(NULL);
	exai_free(NULL);
}

static void files(void)
{
	char *dir = test_tmpdir();
	char *sub = exai__path_join(dir, "a/b/c");
	CHECK_OK(exai__mkdir_p(sub, 0700));
	char *f = exai__path_join(sub, "meta.json");
	CHECK_OK(exai__write_file_atomic(f, "{\"v\":1}", 7, 0600));
	CHECK_OK(exai__write_file_atomic(f, "{\"v\":2}", 7, 0600));
	char *data;
	size_t len;
	CHECK_OK(exai__read_file(f, 100, &data, &len));
	CHECK(len == 7 && strcmp(data, "{\"v\":2}") == 0);
	free(data);
	CHECK_RC(exai__read_file(f, 3, &data, &len), -EFBIG);
	/* An empty file reads as an empty, NUL-terminated string. */
	CHECK_OK(exai__write_file_atomic(f, "", 0, 0600));
	CHECK_OK(exai__read_file(f, 100, &data, &len));
	CHECK(len == 0 && data[0] == '\0');
	free(data);
	struct stat st;
	CHECK(stat(f, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_RC(exai__mkdir_p(f, 0700), -ENOTDIR);
	free(f);
	free(sub);
	test_rmrf(dir);
	free(dir);
}

static void harden(void)
{
	/* Process-wide, so checked last. */
	exai_ctx *ctx;
	EXAI_OPTS(exai_ctx_opts, o, .state_dir = "/tmp/x", .flags = EXAI_CTX_HARDEN_PROCESS);
	CHECK_OK(exai_ctx_new(&ctx, &o));
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0);
	exai_ctx_unref(ctx);
}

int main(void)
{
	opts_rules();
	logging();
	emitter();
	versions_and_errors();
	memory();
	files();
	harden();
	return test_done();
}
