/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-envelope: the envelope message parser (header, context, data keys, frames) fed with
 * arbitrary bytes in two pieces, under the key the seed corpus was made with. The seeds are
 * valid messages (tests/fuzz/corpus/envelope), so the fuzzer reaches the frames. */
#include <stdint.h>
#include <string.h>

#include "keys/keys-internal.h"

static const uint8_t KEY[32] = "fuzz-envelope-key-0123456789abcd";

static int sink(void *ud, const void *data, size_t len)
{
	(void)ud;
	/* Touch the released plaintext so that the sanitizers see reads of it. */
	volatile uint8_t x = 0;
	for (size_t i = 0; i < len; i++)
		x ^= ((const uint8_t *)data)[i];
	(void)x;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	exai_envelope *d = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = sink, .max_frame_length = 1 << 16);
	if (exai_envelope_decrypt_raw(&d, KEY, "fuzz", "key", &o) < 0)
		return 0;
	size_t split = size ? data[0] % (size + 1) : 0;
	if (exai_envelope_update(d, data, split) == 0 && exai_envelope_update(d, data + split, size - split) == 0)
		(void)exai_envelope_final(d);
	exai_envelope_free(d);
	return 0;
}
