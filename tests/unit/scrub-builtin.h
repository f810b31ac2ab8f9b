/* SPDX-License-Identifier: Apache-2.0 */
/* scrub-builtin.h: the built-in scrubber the scrub tests share, with its Hyperscan cache in one
 * state directory (compiling the pack takes seconds). */
#ifndef SCRUB_BUILTIN_H
#define SCRUB_BUILTIN_H

#include "scrub/scrub-internal.h"
#include "test.h"

/* A scrubber of the built-in pack with @flags (EXAI_SCRUBBER_*), or NULL after a failed check. */
static inline exai_scrubber *builtin_scrubber(uint32_t flags)
{
	char state[4096];
	snprintf(state, sizeof(state), "%s/scrub-test-state", getenv("EXAI_BUILD_ROOT") ? getenv("EXAI_BUILD_ROOT") : "/tmp");
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state);
	exai_ctx *ctx = NULL;
	CHECK_OK(exai_ctx_new(&ctx, &co));
	EXAI_OPTS(exai_scrubber_opts, o, .flags = flags);
	exai_scrubber *s = NULL;
	CHECK_OK(exai_scrubber_new(&s, ctx, &o));
	exai_ctx_unref(ctx);
	return s;
}

#endif
