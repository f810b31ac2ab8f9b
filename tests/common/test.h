/* SPDX-License-Identifier: Apache-2.0 */
/* test.h: a minimal assertion harness for libexai's C tests. Each failed check prints the
 * file, line and expression and marks the test failed; SKIP exits 77 with a sentence. */
#ifndef EXAI_TEST_H
#define EXAI_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int test_failures;

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		if (!(expr)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);   \
			test_failures++;                                                           \
		}                                                                                  \
	} while (0)
/* Checks that a libexai call returned @want, printing exai_errmsg() when it did not. */
#define CHECK_RC(call, want)                                                                       \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_ != (want)) {                                                               \
			fprintf(stderr, "%s:%d: %s returned %d, want %d (%s)\n", __FILE__,         \
				__LINE__, #call, rc_, (int)(want), test_errmsg());                  \
			test_failures++;                                                           \
		}                                                                                  \
	} while (0)
#define CHECK_OK(call) CHECK_RC(call, 0)
#define CHECK_STREQ(a, b)                                                                          \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,           \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");                          \
			test_failures++;                                                           \
		}                                                                                  \
	} while (0)

/* Exits 77 (meson: skipped) after printing why. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Exit status for main(): 0 when every check passed. Prints a summary line. */
int test_done(void);
/* Path under ../shared (EXAI_SHARED_DIR), in a static buffer. */
const char *test_shared(const char *rel);
/* Reads a whole file into a malloc'd NUL-terminated buffer; aborts the test on failure. */
char *test_read_file(const char *path, size_t *len);
/* A fresh temporary directory (removed by the caller with test_rmrf). */
char *test_tmpdir(void);
void test_rmrf(const char *path);
/* exai_errmsg(): the sentence of the last failure. */
const char *test_errmsg(void);
/* Runs a shell command built like printf (at most 8 KiB); its exit status, or -1 when it did
 * not exit. */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* xorshift64: the next of a reproducible pseudo-random sequence kept in *@state (not 0). */
static inline unsigned long long test_xorshift(unsigned long long *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

#endif
