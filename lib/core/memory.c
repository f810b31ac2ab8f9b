/* SPDX-License-Identifier: Apache-2.0 */
/* memory.c: locked, guarded, wiped memory for keys and secrets (libsodium's allocator). */
#include <stdlib.h>

#include <sodium.h>

#include "core-internal.h"

int exai__sodium_init(void)
{
	/* sodium_init() is thread-safe and idempotent: 0 first time, 1 after. */
	if (sodium_init() < 0)
		return exai__err(-EIO, "libsodium failed to initialise");
	return 0;
}

EXAI_API void exai_free(void *p)
{
	free(p);
}

EXAI_API void *exai_secure_alloc(size_t size)
{
	if (exai__sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	/* sodium_malloc: guard pages around the region, mlock()ed, MADV_DONTDUMP on Linux,
	 * filled with a canary checked on free; sodium_free wipes before unmapping. */
	void *p = sodium_malloc(size ? size : 1);
	if (!p)
		errno = ENOMEM;
	return p;
}

EXAI_API void exai_secure_free(void *p)
{
	if (p)
		sodium_free(p);
}

EXAI_API void exai_memzero(void *p, size_t n)
{
	if (p && n)
		sodium_memzero(p, n);
}

EXAI_API int exai_memeq_ct(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 0;
	return sodium_memcmp(a, b, n) == 0 ? 0 : -1;
}
