/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-scrub-decode: the decoders (base64, URL encoding, JSON/C escapes, hex) over arbitrary
 * bytes, nested as the engine nests them. Checks: every decoded byte maps back to a non-empty
 * span inside its source, in order; no crash, leak or undefined behaviour.
 */
#include "fuzz-scrub-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
	size_t srclen;
	int depth;
};

static int on_run(void *ud, const struct exai__decoded *d)
{
	struct ctx *c = ud;
	for (size_t i = 0; i < d->len; i++) {
		FUZZ_ASSERT(d->src_start[i] < d->src_end[i] && d->src_end[i] <= c->srclen, "byte %zu maps to %u-%u of %zu",
			    i, d->src_start[i], d->src_end[i], c->srclen);
		FUZZ_ASSERT(i == 0 || d->src_start[i] >= d->src_start[i - 1], "map not in order at %zu", i);
	}
	FUZZ_ASSERT(d->data[d->len] == 0, "not NUL-terminated");
	if (c->depth < EXAI__SCRUB_DECODE_DEPTH) {
		struct ctx inner = { d->len, c->depth + 1 };
		return exai__decode_runs(d->data, d->len, on_run, &inner);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx c = { size, 1 };
	int r = exai__decode_runs((const char *)data, size, on_run, &c);
	FUZZ_ASSERT(r == 0, "decode_runs: %d", r);
	return 0;
}
