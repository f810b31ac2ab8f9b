/* SPDX-License-Identifier: Apache-2.0 */
/* scrub-stream-check.h: the property both scrub tests check, streaming equals whole-text
 * scanning, in one place. */
#ifndef SCRUB_STREAM_CHECK_H
#define SCRUB_STREAM_CHECK_H

#include "scrub/scrub-internal.h"
#include "test.h"

/* Feeds @text to a new stream of @s in chunks of 1..@max_chunk bytes (rand()), and checks that
 * no output chunk ends inside a UTF-8 sequence and that the output and the findings (span and
 * pattern) equal those of @whole. Returns the stream (the caller checks more of its result and
 * frees it); *@ret_same tells whether everything was equal. */
static inline exai_scrub_stream *stream_check(exai_scrubber *s, const struct exai_scrub_text_opts *o,
					      const char *text, size_t len, size_t max_chunk,
					      const exai_scrub_result *whole, bool *ret_same)
{
	exai_scrub_stream *st = NULL;
	struct exai__buf out = { 0 };
	bool same = true;
	CHECK_OK(exai_scrub_stream_new(&st, s, o));
	for (size_t pos = 0;;) {
		char *p;
		size_t pl;
		bool last = pos == len;
		if (last) {
			CHECK_OK(exai_scrub_stream_finish(st, &p, &pl));
		} else {
			size_t n = (size_t)rand() % max_chunk + 1;
			if (n > len - pos)
				n = len - pos;
			CHECK_OK(exai_scrub_stream_feed(st, &p, &pl, text + pos, n));
			pos += n;
		}
		CHECK(exai__buf_append(&out, p, pl) == 0);
		/* output never ends inside a UTF-8 sequence */
		CHECK(pl == 0 || ((unsigned char)p[pl - 1] & 0xc0) != 0xc0);
		exai_free(p);
		if (last)
			break;
	}
	size_t wl;
	const char *wt = exai_scrub_result_text(whole, &wl);
	same &= out.len == wl && memcmp(out.data, wt, wl) == 0;
	CHECK(same);
	const exai_scrub_result *sr = exai_scrub_stream_result(st);
	CHECK(exai_scrub_result_count(sr) == exai_scrub_result_count(whole));
	same &= exai_scrub_result_count(sr) == exai_scrub_result_count(whole);
	for (size_t i = 0; i < exai_scrub_result_count(whole) && i < exai_scrub_result_count(sr); i++) {
		const struct exai_scrub_finding *a = exai_scrub_result_finding(whole, i), *b = exai_scrub_result_finding(sr, i);
		if (a->start != b->start || a->end != b->end || strcmp(a->pattern, b->pattern) != 0) {
			fprintf(stderr, "stream finding %zu differs: %zu-%zu %s, whole %zu-%zu %s\n", i, b->start, b->end,
				b->pattern, a->start, a->end, a->pattern);
			test_failures++;
			same = false;
			break;
		}
	}
	exai__buf_free(&out);
	*ret_same = same;
	return st;
}

#endif
