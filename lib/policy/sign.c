/* SPDX-License-Identifier: Apache-2.0 */
/* sign.c: the bundle signature check (minisign format, DESIGN.md). The one place the policy
 * module asks whether a bundle is signed by a trusted key. */
#include "policy-internal.h"

int exai__policy_verify_signature(const char *data, size_t len, const char *sig, const char *const *keys)
{
	(void)data;
	(void)len;
	(void)sig;
	(void)keys;
	/* Never accept a bundle whose signature cannot be checked. */
	return exai__err(-ENOTSUP, "cannot check the bundle's minisign signature: this libexai has no "
				   "minisign verification (keys module); unsigned bundles need the explicit "
				   "development flag");
}
