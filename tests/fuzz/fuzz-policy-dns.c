/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-policy-dns: the DNS answers the datapath copies for matchPattern rules (libFuzzer). Any
 * input must give a name and addresses or a clear error; names must match patterns safely. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char q[300];
	struct exai__cidr *v = NULL;
	size_t n = 0;
	uint32_t ttl = 0;
	if (exai__dns_answers(data, size, q, sizeof(q), &v, &n, &ttl) < 0) {
		if (!exai_errmsg()[0])
			abort(); /* every refusal says why */
		return 0;
	}
	if (strlen(q) >= sizeof(q) || ttl < 5 || ttl > 86400)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((v[i].family != 4 || v[i].plen != 32) && (v[i].family != 6 || v[i].plen != 128))
			abort();
	(void)exai__fqdn_match("*.example.test", q);
	(void)exai__fqdn_match("a*b*.*", q);
	free(v);
	return 0;
}
