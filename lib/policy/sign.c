/* SPDX-License-Identifier: Apache-2.0 */
/* sign.c: the bundle signature check (minisign format, DESIGN.md): the one place the policy
 * module asks whether a bundle is signed by a trusted key. The format is the keys module's. */
#include <string.h>

#include "keys/keys-internal.h"
#include "policy-internal.h"

int exai__policy_verify_signature(const char *data, size_t len, const char *sig, const char *const *keys)
{
	int last = 0;
	size_t nkeys = 0;

	for (; keys[nkeys]; nkeys++) {
		exai_sign_pubkey *pk = NULL;
		int r = exai_sign_pubkey_parse(&pk, keys[nkeys], strlen(keys[nkeys]));
		if (r < 0)
			return exai__err(-EINVAL, "trusted key %zu is not a minisign public key: %s", nkeys + 1,
					 exai_errmsg());
		/* Prehashed only: the legacy form signs the data itself and minisign itself refuses it
		 * with -H; bundles have no reason to use it. */
		r = exai_sign_verify(NULL, pk, data, len, sig, strlen(sig), EXAI_SIGN_REQUIRE_PREHASHED);
		exai_sign_pubkey_free(pk);
		if (r == 0)
			return 0;
		if (r != -EBADMSG && r != -EACCES)
			return r;
		/* -EACCES: another key made it (key id mismatch); -EBADMSG: it does not verify. */
		if (last != -EBADMSG)
			last = r;
	}
	if (last == -EBADMSG)
		return exai__err(-EACCES, "the policy bundle's signature does not verify (bundle or signature altered, "
					  "or malformed signature)");
	return exai__err(-EACCES, "the policy bundle is not signed by any of the %zu trusted key(s)", nkeys);
}
