/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-jcs: exai_jcs_canonicalize over arbitrary bytes.
 * Checks: no crash, leak or undefined behaviour; failures are one of the documented errors
 * with a sentence in exai_errmsg(); a success is NUL-terminated, of the length reported, and
 * canonicalises again to exactly the same bytes (canonical form is a fixed point).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exai/core.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz-jcs: %s: ", #cond);                                  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *canon = NULL, *again = NULL;
	size_t len = 0, len2 = 0;

	/* The input is not NUL-terminated: the sanitizers catch any read past @size. */
	int r = exai_jcs_canonicalize(&canon, &len, (const char *)data, size);
	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG || r == -ERANGE || r == -ENOMEM || (size == 0 && r == -EINVAL),
			    "undocumented error %d (%s)", r, exai_errmsg());
		FUZZ_ASSERT(canon == NULL, "ret set on failure");
		FUZZ_ASSERT(exai_errmsg()[0] != '\0', "error %d without a sentence", r);
		return 0;
	}
	FUZZ_ASSERT(canon != NULL, "success without output");
	FUZZ_ASSERT(strlen(canon) == len, "length %zu reported, %zu before the NUL", len, strlen(canon));

	r = exai_jcs_canonicalize(&again, &len2, canon, len);
	FUZZ_ASSERT(r == 0, "canonical output rejected: %d (%s): %s", r, exai_errmsg(), canon);
	FUZZ_ASSERT(len2 == len && memcmp(again, canon, len) == 0, "not a fixed point:\n  %s\n  %s", canon, again);
	exai_free(again);
	exai_free(canon);
	return 0;
}
