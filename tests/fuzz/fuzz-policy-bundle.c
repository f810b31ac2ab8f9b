/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-policy-bundle: the bundle parser and compiler (libFuzzer). Any input must give a
 * policy or a clear error; a policy must dump and explain without fault. */
#include <stdint.h>
#include <stdlib.h>

#include "policy/policy-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dsts[] = { "10.1.2.3:443", "[2001:db8::1]:53/udp", "169.254.169.254/icmp",
					    "192.168.0.1:8080/tcp" };
	exai_policy *p = NULL;
	EXAI_OPTS(exai_policy_parse_opts, o, .flags = EXAI_POLICY_ALLOW_UNSIGNED);
	if (exai_policy_parse(&p, NULL, (const char *)data, size, &o) < 0) {
		if (!exai_errmsg()[0])
			abort(); /* every refusal says why */
		return 0;
	}
	char *out = NULL;
	if (exai_policy_dump(&out, p) == 0)
		exai_free(out);
	for (size_t i = 0; i < sizeof(dsts) / sizeof(dsts[0]); i++)
		if (exai_policy_explain(&out, p, dsts[i]) == 0)
			exai_free(out);
	exai_policy_free(p);
	return 0;
}
