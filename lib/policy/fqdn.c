/* SPDX-License-Identifier: Apache-2.0 */
/* fqdn.c: resolving matchName rules with glibc's resolver, which gives the records' TTLs. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"

#define TTL_MIN 5u
#define TTL_MAX 86400u
#define TTL_NEGATIVE 30u /* no such name, or no answer: ask again after this */

static int query(struct __res_state *st, const char *name, int type, struct exai__cidr **v, size_t *n, size_t *cap,
		 uint32_t *ttl)
{
	unsigned char ans[4096];
	int len = res_nquery(st, name, ns_c_in, type, ans, sizeof(ans));
	if (len < 0)
		return 0; /* NXDOMAIN, no data, or no server: no addresses from this query */
	ns_msg msg;
	if (ns_initparse(ans, len, &msg) < 0)
		return 0;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			break;
		size_t alen = type == ns_t_a ? 4 : 16;
		if ((int)ns_rr_type(rr) != type || ns_rr_rdlen(rr) != alen)
			continue; /* CNAMEs on the way: their targets' records follow */
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 8;
			struct exai__cidr *nv = realloc(*v, nc * sizeof(*nv));
			if (!nv)
				return exai__err(-ENOMEM, "out of memory");
			*v = nv;
			*cap = nc;
		}
		struct exai__cidr *c = &(*v)[(*n)++];
		memset(c, 0, sizeof(*c));
		c->family = type == ns_t_a ? 4 : 6;
		c->plen = type == ns_t_a ? 32 : 128;
		memcpy(c->addr, ns_rr_rdata(rr), alen);
		if (ns_rr_ttl(rr) < *ttl)
			*ttl = ns_rr_ttl(rr);
	}
	return 0;
}

int exai__fqdn_resolve(const char *name, struct exai__cidr **ret, size_t *retn, uint32_t *ret_ttl)
{
	struct __res_state st;
	struct exai__cidr *v = NULL;
	size_t n = 0, cap = 0;
	uint32_t ttl = UINT32_MAX;

	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) < 0)
		return exai__err(-EIO, "cannot initialise the DNS resolver (/etc/resolv.conf)");
	int r = query(&st, name, ns_t_a, &v, &n, &cap, &ttl);
	if (r == 0)
		r = query(&st, name, ns_t_aaaa, &v, &n, &cap, &ttl);
	res_nclose(&st);
	if (r < 0) {
		free(v);
		return r;
	}
	if (!n)
		ttl = TTL_NEGATIVE;
	*ret = v;
	*retn = n;
	*ret_ttl = ttl < TTL_MIN ? TTL_MIN : ttl > TTL_MAX ? TTL_MAX : ttl;
	return 0;
}

uint64_t exai__fqdn_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}
