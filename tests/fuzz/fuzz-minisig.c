/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-minisig: the minisign public key and signature parsers. The input is split at the
 * first NUL: a public key text, then a signature text checked over the empty message. */
#include <stdint.h>
#include <string.h>

#include "keys/keys-internal.h"

static const char PUB[] = "RWRF2ON0AUze1J9qOt4wtyrnHVC0uqWb2EmaC27coBYPIOUjDsOmk3T5";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t klen = nul ? (size_t)(nul - data) : size;
	exai_sign_pubkey *pk = NULL;
	if (exai_sign_pubkey_parse(&pk, (const char *)data, klen) < 0 &&
	    exai_sign_pubkey_parse(&pk, PUB, sizeof(PUB) - 1) < 0)
		return 0;
	if (nul) {
		char *tc = NULL;
		if (exai_sign_verify(&tc, pk, "", 0, (const char *)nul + 1, size - klen - 1, 0) == 0)
			exai_free(tc);
	}
	exai_sign_pubkey_free(pk);
	return 0;
}
