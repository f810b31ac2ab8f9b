/* SPDX-License-Identifier: Apache-2.0 */
/* fqdn.c: the addresses of FQDN rules. matchName rules are resolved with glibc's resolver, which
 * gives the records' TTLs; matchPattern rules learn addresses from the DNS answers the guest
 * receives from its resolvers (read by glibc's message parser, ns_initparse/ns_parserr). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"

#define TTL_MIN 5u
#define TTL_MAX 86400u
#define TTL_NEGATIVE 30u /* no such name, or no answer: ask again after this */
#define CHAIN_MAX 16     /* names in one CNAME chain */

static int add_addr(struct exai__cidr **v, size_t *n, size_t *cap, int family, const unsigned char *a)
{
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
	c->family = (uint8_t)family;
	c->plen = family == 4 ? 32 : 128;
	memcpy(c->addr, a, family == 4 ? 4 : 16);
	return 0;
}

/* The A and AAAA records of @msg's answer section that belong to @qname: owned by it or by a
 * name its CNAME chain leads to. Appends them to @v and lowers *ttl to their smallest TTL. */
static int chain_answers(ns_msg *msg, const char *qname, struct exai__cidr **v, size_t *n, size_t *cap, uint32_t *ttl)
{
	char chain[CHAIN_MAX][NS_MAXDNAME];
	size_t nchain = 1;
	int count = ns_msg_count(*msg, ns_s_an);

	snprintf(chain[0], sizeof(chain[0]), "%s", qname);
	/* CNAMEs first (the chain may be listed in any order), then the addresses. */
	for (int pass = 0; pass < CHAIN_MAX + 1; pass++) {
		size_t before = nchain;
		for (int i = 0; i < count && nchain < CHAIN_MAX; i++) {
			ns_rr rr;
			char target[NS_MAXDNAME];
			if (ns_parserr(msg, ns_s_an, i, &rr) < 0 || ns_rr_type(rr) != ns_t_cname)
				continue;
			bool owned = false, known = false;
			for (size_t k = 0; k < nchain; k++)
				owned |= !strcasecmp(ns_rr_name(rr), chain[k]);
			if (!owned || ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), ns_rr_rdata(rr), target,
							 sizeof(target)) < 0)
				continue;
			for (size_t k = 0; k < nchain; k++)
				known |= !strcasecmp(target, chain[k]);
			if (!known)
				snprintf(chain[nchain++], sizeof(chain[0]), "%s", target);
		}
		if (nchain == before)
			break;
	}
	for (int i = 0; i < count; i++) {
		ns_rr rr;
		if (ns_parserr(msg, ns_s_an, i, &rr) < 0)
			break; /* what came before it stands */
		int type = ns_rr_type(rr);
		size_t alen = type == ns_t_a ? 4 : 16;
		if ((type != ns_t_a && type != ns_t_aaaa) || ns_rr_rdlen(rr) != alen)
			continue;
		bool owned = false;
		for (size_t k = 0; k < nchain; k++)
			owned |= !strcasecmp(ns_rr_name(rr), chain[k]);
		if (!owned)
			continue;
		int r = add_addr(v, n, cap, type == ns_t_a ? 4 : 6, ns_rr_rdata(rr));
		if (r < 0)
			return r;
		if (ns_rr_ttl(rr) < *ttl)
			*ttl = ns_rr_ttl(rr);
	}
	return 0;
}

static uint32_t clamp_ttl(uint32_t ttl)
{
	return ttl < TTL_MIN ? TTL_MIN : ttl > TTL_MAX ? TTL_MAX : ttl;
}

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
	return chain_answers(&msg, name, v, n, cap, ttl);
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
	*ret = v;
	*retn = n;
	*ret_ttl = n ? clamp_ttl(ttl) : TTL_NEGATIVE;
	return 0;
}

int exai__dns_answers(const uint8_t *msg, size_t len, char *qname, size_t qsize, struct exai__cidr **ret,
		      size_t *retn, uint32_t *ret_ttl)
{
	ns_msg m;
	ns_rr q;
	struct exai__cidr *v = NULL;
	size_t n = 0, cap = 0;
	uint32_t ttl = UINT32_MAX;

	if (len > 65535 || ns_initparse(msg, (int)len, &m) < 0)
		return exai__err(-EBADMSG, "not a DNS message");
	if (!ns_msg_getflag(m, ns_f_qr) || ns_msg_getflag(m, ns_f_rcode) != ns_r_noerror ||
	    ns_msg_count(m, ns_s_qd) != 1)
		return exai__err(-EBADMSG, "not a successful DNS answer to one question");
	if (ns_parserr(&m, ns_s_qd, 0, &q) < 0 || ns_rr_class(q) != ns_c_in)
		return exai__err(-EBADMSG, "DNS question cannot be read");
	if (strlen(ns_rr_name(q)) >= qsize)
		return exai__err(-ENAMETOOLONG, "DNS name too long");
	snprintf(qname, qsize, "%s", ns_rr_name(q));
	for (char *p = qname; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	int r = chain_answers(&m, qname, &v, &n, &cap, &ttl);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*retn = n;
	*ret_ttl = clamp_ttl(ttl);
	return 0;
}

bool exai__fqdn_match(const char *pattern, const char *name)
{
	if (!strcmp(pattern, "*"))
		return true;
	/* '*' stands for any run of characters within one label (never a '.'). */
	const char *star = NULL, *resume = NULL;
	while (*name) {
		if (*pattern == '*') {
			star = pattern++;
			resume = name;
		} else if (tolower((unsigned char)*pattern) == tolower((unsigned char)*name)) {
			pattern++;
			name++;
		} else if (star && *resume != '.') {
			pattern = star + 1;
			name = ++resume;
		} else {
			return false;
		}
	}
	while (*pattern == '*')
		pattern++;
	return !*pattern;
}

uint64_t exai__fqdn_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}
