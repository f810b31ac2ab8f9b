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

/* Calls @fn with the text of every row of the development corpus (../shared/corpora/scrub-dev:
 * dev, pii-synthetic, negatives, in that order). */
static inline void scrub_dev_texts(void (*fn)(const char *text, size_t len, void *ud), void *ud)
{
	static const char *const files[] = { "corpora/scrub-dev/dev.jsonl", "corpora/scrub-dev/pii-synthetic.jsonl",
					     "corpora/scrub-dev/negatives.jsonl" };
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t len;
		char *data = test_read_file(test_shared(files[f]), &len), *line = data, *next;
		for (; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = 0;
			json_t *row = json_loads(line, 0, NULL);
			json_t *t = json_object_get(row, "text");
			CHECK(json_is_string(t));
			if (json_is_string(t))
				fn(json_string_value(t), json_string_length(t), ud);
			json_decref(row);
		}
		free(data);
	}
}

#endif
