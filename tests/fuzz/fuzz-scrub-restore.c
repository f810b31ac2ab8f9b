/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-scrub-restore: vault parsing and restore over arbitrary bytes. The input is a vault
 * length byte pair, the vault bytes, then the model text. Checks: a vault that parses
 * restores the text the same whole and streamed in chunks of every size the input picks; no
 * crash, leak or undefined behaviour.
 */
#include "fuzz-scrub-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	size_t vl = ((size_t)data[0] << 8 | data[1]) % (size - 2 + 1);
	size_t chunk = (size_t)(data[2] % 16) + 1;
	const uint8_t *vault = data + 3 > data + size ? data + size : data + 3;
	if (vl > size - 3)
		vl = size - 3;
	const char *text = (const char *)vault + vl;
	size_t len = size - 3 - vl;
	char *whole = NULL;
	size_t wl = 0;
	int r = exai_scrub_restore(&whole, &wl, vault, vl, text, len);
	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG, "restore: %d", r);
		return 0;
	}
	exai_scrub_restorer *rs = NULL;
	FUZZ_ASSERT(exai_scrub_restorer_new(&rs, vault, vl) == 0, "restorer_new");
	struct exai__buf out = { 0 };
	FUZZ_FEED_CHUNKED(&out, exai_scrub_restorer_feed, exai_scrub_restorer_finish, rs, text, len, chunk);
	FUZZ_ASSERT(out.len == wl && (wl == 0 || memcmp(out.data, whole, wl) == 0), "streamed restore differs");
	exai__buf_free(&out);
	exai_scrub_restorer_free(rs);
	exai_free(whole);
	return 0;
}
