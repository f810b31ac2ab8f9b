/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-scrub-common.h: what the scrub fuzz targets share: a small pack with one pattern of
 * each shape the engine handles (group, keywords, validator, entropy, unbounded window), so
 * that a scrubber compiles in milliseconds. */
#ifndef FUZZ_SCRUB_COMMON_H
#define FUZZ_SCRUB_COMMON_H

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "scrub/scrub-internal.h"

#define FUZZ_ASSERT(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s: %s: ", __FILE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Feeds @text (@len bytes) in chunks of @chunk through @feed (handle @h), then @finish, and
 * appends every output to the exai__buf @out: for the scrub stream and the restorer alike. */
#define FUZZ_FEED_CHUNKED(out, feed, finish, h, text, len, chunk)                                  \
	do {                                                                                       \
		char *p_;                                                                          \
		size_t pl_;                                                                        \
		for (size_t pos_ = 0; pos_ < (len); pos_ += (chunk)) {                             \
			size_t n_ = (len) - pos_ < (chunk) ? (len) - pos_ : (chunk);               \
			FUZZ_ASSERT(feed((h), &p_, &pl_, (text) + pos_, n_) == 0, #feed);          \
			FUZZ_ASSERT(exai__buf_append((out), p_, pl_) == 0, "append");              \
			exai_free(p_);                                                             \
		}                                                                                  \
		FUZZ_ASSERT(finish((h), &p_, &pl_) == 0, #finish);                                 \
		FUZZ_ASSERT(exai__buf_append((out), p_, pl_) == 0, "append");                      \
		exai_free(p_);                                                                     \
	} while (0)

static const char fuzz_pack[] =
	"{\"format\":1,\"group\":\"fuzz\",\"patterns\":["
	"{\"id\":\"f.token\",\"class\":\"token\",\"kind\":\"secret\",\"severity\":\"high\","
	"\"regex\":\"\\\\b(tk_[A-Za-z0-9]{24})\\\\b\",\"group\":1,\"caseless\":false,\"keywords\":[],"
	"\"validator\":\"not_placeholder\",\"min_entropy\":3,"
	"\"examples\":{\"positive\":[{\"text\":\"tk_Q8fZ2mLp0Xc7Rw4Tn9Vb1Kd3\",\"secret\":\"tk_Q8fZ2mLp0Xc7Rw4Tn9Vb1Kd3\"}],\"negative\":[\"x\"]}},"
	"{\"id\":\"f.email\",\"class\":\"email\",\"kind\":\"pii\",\"severity\":\"medium\","
	"\"regex\":\"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\\\\.[A-Za-z]{2,24}\",\"group\":0,\"caseless\":false,"
	"\"keywords\":[],\"validator\":\"email\",\"min_entropy\":0,"
	"\"examples\":{\"positive\":[{\"text\":\"a@b.example.org\",\"secret\":\"a@b.example.org\"}],\"negative\":[\"x\"]}},"
	"{\"id\":\"f.card\",\"class\":\"card\",\"kind\":\"pii\",\"severity\":\"high\","
	"\"regex\":\"\\\\b(?:\\\\d[ -]?){12,18}\\\\d\\\\b\",\"group\":0,\"caseless\":false,\"keywords\":[],"
	"\"validator\":\"luhn\",\"min_entropy\":0,"
	"\"examples\":{\"positive\":[{\"text\":\"4111111111111111\",\"secret\":\"4111111111111111\"}],\"negative\":[\"x\"]}},"
	"{\"id\":\"f.pw\",\"class\":\"password\",\"kind\":\"secret\",\"severity\":\"high\","
	"\"regex\":\"password\\\\s*[=:]\\\\s*([^\\\\s\\\"']{6,64})\",\"group\":1,\"caseless\":true,\"keywords\":[\"password\"],"
	"\"validator\":\"not_placeholder\",\"min_entropy\":0,"
	"\"examples\":{\"positive\":[{\"text\":\"password=Zq9xHorse\",\"secret\":\"Zq9xHorse\"}],\"negative\":[\"x\"]}},"
	"{\"id\":\"f.pem\",\"class\":\"private_key\",\"kind\":\"secret\",\"severity\":\"critical\","
	"\"regex\":\"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[A-Za-z0-9+/=\\\\s]+?-----END [A-Z ]{0,20}PRIVATE KEY-----\","
	"\"group\":0,\"caseless\":false,\"keywords\":[],\"validator\":\"none\",\"min_entropy\":0,"
	"\"examples\":{\"positive\":[{\"text\":\"-----BEGIN PRIVATE KEY-----\\nAAAAAAAAAAAAAAAAAAAA\\n-----END PRIVATE KEY-----\",\"secret\":\"-----BEGIN PRIVATE KEY-----\\nAAAAAAAAAAAAAAAAAAAA\\n-----END PRIVATE KEY-----\"}],\"negative\":[\"x\"]}},"
	"{\"id\":\"f.jwt\",\"class\":\"jwt\",\"kind\":\"secret\",\"severity\":\"high\","
	"\"regex\":\"eyJ[A-Za-z0-9_-]{8,}\\\\.[A-Za-z0-9_-]{8,}\\\\.[A-Za-z0-9_-]*\",\"group\":0,\"caseless\":false,"
	"\"keywords\":[],\"validator\":\"jwt\",\"min_entropy\":0,"
	"\"examples\":{\"positive\":[{\"text\":\"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc\",\"secret\":\"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc\"}],\"negative\":[\"x\"]}}"
	"]}";

static inline exai_scrubber *fuzz_scrubber(uint32_t flags)
{
	static exai_scrubber *s[4];
	if (!s[flags & 3]) {
		const char *packs[] = { fuzz_pack };
		EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1,
			  .flags = EXAI_SCRUBBER_NO_BUILTIN | ((flags & 1) ? EXAI_SCRUBBER_NO_STAGE2 : 0) |
				   ((flags & 2) ? EXAI_SCRUBBER_NO_DECODE : 0));
		if (exai_scrubber_new(&s[flags & 3], NULL, &o) < 0) {
			fprintf(stderr, "fuzz: %s\n", exai_errmsg());
			abort();
		}
	}
	return s[flags & 3];
}

#endif
