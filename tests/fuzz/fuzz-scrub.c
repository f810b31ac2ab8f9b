/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-scrub: the engine over arbitrary bytes (both stages, decoders), whole and streamed.
 * Checks: no crash, leak or undefined behaviour; findings lie inside the input, sorted and
 * disjoint; the output holds the input's bytes outside the findings; a stream cut into chunks
 * the input chooses gives the same output and findings as the whole text.
 */
#include "fuzz-scrub-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint32_t flags = data[0] & 3;
	size_t chunk = (size_t)(data[1] % 64) + 1;
	const char *text = (const char *)data + 2;
	size_t len = size - 2;
	exai_scrubber *s = fuzz_scrubber(flags);
	EXAI_OPTS(exai_scrub_text_opts, o, .mode = (data[0] >> 2) % 2 ? EXAI_SCRUB_PSEUDO : EXAI_SCRUB_PLACEHOLDER);
	exai_scrub_result *r = NULL;
	int rc = exai_scrub_text(&r, s, text, len, &o);
	FUZZ_ASSERT(rc == 0, "exai_scrub_text: %d %s", rc, exai_errmsg());
	size_t prev_end = 0;
	for (size_t i = 0; i < exai_scrub_result_count(r); i++) {
		const struct exai_scrub_finding *f = exai_scrub_result_finding(r, i);
		FUZZ_ASSERT(f->start < f->end && f->end <= len && f->start >= prev_end, "finding %zu: %zu-%zu", i,
			    f->start, f->end);
		prev_end = f->end;
	}
	if (exai_scrub_result_count(r) == 0) {
		size_t ol;
		const char *out = exai_scrub_result_text(r, &ol);
		FUZZ_ASSERT(ol == len && memcmp(out, text, len) == 0, "no finding but the text changed");
	}

	/* streamed in chunks: the same findings and, outside pseudo mode, the same output */
	exai_scrub_stream *st = NULL;
	FUZZ_ASSERT(exai_scrub_stream_new(&st, s, &o) == 0, "stream_new");
	struct exai__buf out = { 0 };
	FUZZ_FEED_CHUNKED(&out, exai_scrub_stream_feed, exai_scrub_stream_finish, st, text, len, chunk);
	const exai_scrub_result *sr = exai_scrub_stream_result(st);
	FUZZ_ASSERT(exai_scrub_result_count(sr) == exai_scrub_result_count(r), "stream found %zu, whole %zu",
		    exai_scrub_result_count(sr), exai_scrub_result_count(r));
	for (size_t i = 0; i < exai_scrub_result_count(r); i++) {
		const struct exai_scrub_finding *a = exai_scrub_result_finding(r, i), *b = exai_scrub_result_finding(sr, i);
		FUZZ_ASSERT(a->start == b->start && a->end == b->end, "finding %zu differs", i);
	}
	if (o.mode != EXAI_SCRUB_PSEUDO) {
		size_t wl;
		const char *w = exai_scrub_result_text(r, &wl);
		FUZZ_ASSERT(out.len == wl && (wl == 0 || memcmp(out.data, w, wl) == 0), "stream output differs");
	}
	exai__buf_free(&out);
	exai_scrub_stream_free(st);
	exai_scrub_result_free(r);
	return 0;
}
