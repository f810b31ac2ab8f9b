/* SPDX-License-Identifier: Apache-2.0 */
/* ctx.c: the library context, options-struct checks and logging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core-internal.h"
#include "exai-config.h"

int exai__opts_check(const void *opts, size_t known_sz, const char *type_name)
{
	if (!opts)
		return 0;
	size_t sz = *(const size_t *)opts;
	if (sz < sizeof(size_t))
		return exai__err(-EINVAL, "struct %s: sz is %zu, smaller than its own field (set it with EXAI_OPTS)",
				 type_name, sz);
	if (sz > known_sz) {
		const unsigned char *p = opts;
		for (size_t i = known_sz; i < sz; i++)
			if (p[i])
				return exai__err(-E2BIG,
						 "struct %s: field at byte offset %zu is set, but this libexai (%s) knows only the first %zu bytes",
						 type_name, i, exai_version(), known_sz);
	}
	return 0;
}

static int check_state_dir(const char *dir, const char *source)
{
	if (!dir[0] || dir[0] != '/')
		return exai__err(-EINVAL, "state directory \"%s\" (from %s) must be an absolute path", dir, source);
	if (strlen(dir) >= 4096)
		return exai__err(-EINVAL, "state directory (from %s) is longer than PATH_MAX", source);
	return 0;
}

static int harden_process(void)
{
	struct rlimit rl = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return exai__err_sys(exai__neg_errno(), "setrlimit(RLIMIT_CORE, 0)");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return exai__err_sys(exai__neg_errno(), "prctl(PR_SET_DUMPABLE, 0)");
	return 0;
}

EXAI_API int exai_ctx_new(exai_ctx **ret, const struct exai_ctx_opts *opts)
{
	int r;

	if (!ret)
		return exai__err(-EINVAL, "exai_ctx_new: ret is NULL");
	r = EXAI__OPTS_CHECK(opts, exai_ctx_opts);
	if (r < 0)
		return r;

	const char *dir = EXAI__OPT(opts, state_dir, (const char *)NULL);
	const char *source = "exai_ctx_opts.state_dir";
	if (!dir) {
		const char *env = secure_getenv("EXAI_STATE_DIR");
		if (env && env[0]) {
			dir = env;
			source = "EXAI_STATE_DIR";
		} else {
			dir = EXAI_DEFAULT_STATE_DIR;
			source = "the built-in default";
		}
	}
	r = check_state_dir(dir, source);
	if (r < 0)
		return r;

	int level = EXAI__OPT(opts, log_level, EXAI_LOG_INFO);
	if (level < EXAI_LOG_ERROR || level > EXAI_LOG_DEBUG)
		return exai__err(-EINVAL, "exai_ctx_opts.log_level %d is not between EXAI_LOG_ERROR (3) and EXAI_LOG_DEBUG (7)",
				 level);
	uint32_t flags = EXAI__OPT(opts, flags, 0u);
	if (flags & ~(uint32_t)EXAI_CTX_HARDEN_PROCESS)
		return exai__err(-EINVAL, "exai_ctx_opts.flags has unknown bits 0x%x",
				 flags & ~(uint32_t)EXAI_CTX_HARDEN_PROCESS);

	r = exai__sodium_init();
	if (r < 0)
		return r;
	if (flags & EXAI_CTX_HARDEN_PROCESS) {
		r = harden_process();
		if (r < 0)
			return r;
	}

	exai_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return exai__err(-ENOMEM, "out of memory");
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	ctx->state_dir = strndup(dir, n);
	if (!ctx->state_dir) {
		free(ctx);
		return exai__err(-ENOMEM, "out of memory");
	}
	atomic_init(&ctx->refs, 1);
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->log_fn = EXAI__OPT(opts, log_fn, (exai_log_fn)NULL);
	ctx->log_userdata = EXAI__OPT(opts, log_userdata, (void *)NULL);
	ctx->log_level = level;
	exai__log_debug(ctx, "core", "libexai %s: context created; state directory %s (from %s)", exai_version(),
			ctx->state_dir, source);
	*ret = ctx;
	return 0;
}

EXAI_API exai_ctx *exai_ctx_ref(exai_ctx *ctx)
{
	if (ctx)
		atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
	return ctx;
}

EXAI_API exai_ctx *exai_ctx_unref(exai_ctx *ctx)
{
	if (!ctx)
		return NULL;
	if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
		return NULL;
	pthread_mutex_destroy(&ctx->lock);
	free(ctx->state_dir);
	free(ctx);
	return NULL;
}

EXAI_API const char *exai_ctx_state_dir(const exai_ctx *ctx)
{
	return ctx ? ctx->state_dir : "";
}

EXAI_API int exai_ctx_set_log(exai_ctx *ctx, exai_log_fn fn, void *userdata, int level)
{
	if (!ctx)
		return exai__err(-EINVAL, "exai_ctx_set_log: ctx is NULL");
	if (level == 0)
		level = EXAI_LOG_INFO;
	if (level < EXAI_LOG_ERROR || level > EXAI_LOG_DEBUG)
		return exai__err(-EINVAL, "log level %d is not between EXAI_LOG_ERROR (3) and EXAI_LOG_DEBUG (7)", level);
	pthread_mutex_lock(&ctx->lock);
	ctx->log_fn = fn;
	ctx->log_userdata = userdata;
	ctx->log_level = level;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

EXAI_API const char *exai_log_level_name(int level)
{
	static const char *const names[] = { "error", "warning", "notice", "info", "debug" };
	if (level < EXAI_LOG_ERROR || level > EXAI_LOG_DEBUG)
		return NULL;
	return names[level - EXAI_LOG_ERROR];
}

void exai__log(exai_ctx *ctx, int level, const char *module, const char *fmt, ...)
{
	if (!ctx)
		return;
	pthread_mutex_lock(&ctx->lock);
	exai_log_fn fn = ctx->log_fn;
	void *ud = ctx->log_userdata;
	int max = ctx->log_level;
	pthread_mutex_unlock(&ctx->lock);
	if (!fn || level > max)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fn(ud, level, module, line);
}

int exai__ctx_set_emitter(exai_ctx *ctx, exai__emit_fn fn, void *data)
{
	int r = 0;
	pthread_mutex_lock(&ctx->lock);
	if (fn && ctx->emit && (ctx->emit != fn || ctx->emit_data != data))
		r = exai__err(-EBUSY, "an audit log is already attached to this context");
	else {
		ctx->emit = fn;
		ctx->emit_data = fn ? data : NULL;
	}
	pthread_mutex_unlock(&ctx->lock);
	return r;
}

int exai__ctx_emit(exai_ctx *ctx, json_t *event)
{
	if (!ctx)
		return 0;
	pthread_mutex_lock(&ctx->lock);
	exai__emit_fn fn = ctx->emit;
	void *data = ctx->emit_data;
	pthread_mutex_unlock(&ctx->lock);
	return fn ? fn(data, event) : 0;
}

int exai__ctx_ensure_state_dir(exai_ctx *ctx)
{
	return exai__mkdir_p(ctx->state_dir, 0700);
}
