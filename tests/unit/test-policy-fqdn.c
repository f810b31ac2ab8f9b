/* SPDX-License-Identifier: Apache-2.0 */
/* test-policy-fqdn: matchPattern matching, and reading DNS answers (the question's name, the
 * addresses of that name and its CNAME chain, the smallest TTL; other records and failed or
 * malformed answers left out). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "policy/policy-internal.h"
#include "test.h"

static void patterns(void)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} t[] = {
		{ "*", "anything.example.com", true },
		{ "*.example.com", "api.example.com", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "a.b.example.com", false }, /* one label only */
		{ "*.example.com", "api.example.org", false },
		{ "api-*.example.com", "api-eu1.example.com", true },
		{ "api-*.example.com", "api-.example.com", true },
		{ "api-*.example.com", "web-eu1.example.com", false },
		{ "*-prod.*.example.com", "db-prod.eu.example.com", true },
		{ "*-prod.*.example.com", "db-prod.eu.x.example.com", false },
		{ "a*b*c.test", "axxbyyc.test", true },
		{ "a*b*c.test", "axxbyy.test", false },
		{ "api.example.com", "API.Example.com", true },
		{ "api.example.com", "api.example.co", false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (exai__fqdn_match(t[i].pattern, t[i].name) != t[i].match) {
			fprintf(stderr, "pattern %s, name %s: want %d\n", t[i].pattern, t[i].name, t[i].match);
			CHECK(false);
		}
}

/* A DNS message builder: names uncompressed, records in order. */
struct msg {
	uint8_t b[512];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
	memcpy(m->b + m->n, p, n);
	m->n += n;
}
static void put16(struct msg *m, unsigned v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(m, b, 2);
}
static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}
static void name(struct msg *m, const char *s)
{
	while (*s) {
		size_t l = strcspn(s, ".");
		uint8_t len = (uint8_t)l;
		put(m, &len, 1);
		put(m, s, l);
		s += l + (s[l] == '.');
	}
	put(m, "", 1);
}
static void rr(struct msg *m, const char *owner, unsigned type, uint32_t ttl, const void *data, size_t n)
{
	name(m, owner);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, (unsigned)n);
	put(m, data, n);
}

/* An answer for @q with @nan records to follow; flags 0x8180 (response, recursion, no error). */
static void header(struct msg *m, const char *q, unsigned qtype, unsigned nan, unsigned flags)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, flags);
	put16(m, 1);
	put16(m, nan);
	put16(m, 0);
	put16(m, 0);
	name(m, q);
	put16(m, qtype);
	put16(m, 1);
}

size_t exai_test_dns_answer(uint8_t *out); /* also the fuzz target's seed */

static void answers(void)
{
	struct msg m;
	uint8_t a1[4] = { 10, 50, 0, 7 }, a2[4] = { 10, 50, 0, 8 }, a3[4] = { 10, 66, 0, 1 }, a6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	struct msg cn;
	cn.n = 0;
	name(&cn, "edge.cdn.test");
	header(&m, "API.example.test", 1, 5, 0x8180);
	rr(&m, "api.example.test", 5, 300, cn.b, cn.n);   /* CNAME api -> edge.cdn.test */
	rr(&m, "edge.cdn.test", 1, 60, a1, 4);            /* in the chain */
	rr(&m, "edge.cdn.test", 1, 120, a2, 4);
	rr(&m, "other.test", 1, 5, a3, 4);                /* not in the chain: left out */
	rr(&m, "edge.cdn.test", 28, 90, a6, 16);

	char q[300];
	struct exai__cidr *v = NULL;
	size_t n = 0;
	uint32_t ttl = 0;
	CHECK_OK(exai__dns_answers(m.b, m.n, q, sizeof(q), &v, &n, &ttl));
	CHECK_STREQ(q, "api.example.test");
	CHECK(n == 3 && ttl == 60);
	if (n == 3) {
		CHECK(v[0].family == 4 && v[0].plen == 32 && !memcmp(v[0].addr, a1, 4));
		CHECK(v[1].family == 4 && !memcmp(v[1].addr, a2, 4));
		CHECK(v[2].family == 6 && v[2].plen == 128 && !memcmp(v[2].addr, a6, 16));
	}
	free(v);

	/* TTLs are clamped to at least 5 s */
	header(&m, "api.example.test", 1, 1, 0x8180);
	rr(&m, "api.example.test", 1, 0, a1, 4);
	CHECK_OK(exai__dns_answers(m.b, m.n, q, sizeof(q), &v, &n, &ttl));
	CHECK(n == 1 && ttl == 5);
	free(v);

	/* a query (not a response), NXDOMAIN, truncated, garbage: refused */
	header(&m, "api.example.test", 1, 0, 0x0100);
	CHECK_RC(exai__dns_answers(m.b, m.n, q, sizeof(q), &v, &n, &ttl), -EBADMSG);
	header(&m, "api.example.test", 1, 0, 0x8183);
	CHECK_RC(exai__dns_answers(m.b, m.n, q, sizeof(q), &v, &n, &ttl), -EBADMSG);
	header(&m, "api.example.test", 1, 1, 0x8180);
	rr(&m, "api.example.test", 1, 30, a1, 4);
	CHECK_RC(exai__dns_answers(m.b, m.n - 3, q, sizeof(q), &v, &n, &ttl), -EBADMSG);
	CHECK_RC(exai__dns_answers((const uint8_t *)"\x12\x34\x81\x80", 4, q, sizeof(q), &v, &n, &ttl), -EBADMSG);

	/* the seed the fuzz target starts from parses */
	uint8_t seed[512];
	size_t sn = exai_test_dns_answer(seed);
	CHECK_OK(exai__dns_answers(seed, sn, q, sizeof(q), &v, &n, &ttl));
	free(v);
}

/* api.example.test CNAME edge.cdn.test, A 10.50.0.7 (TTL 30): also used by the datapath test. */
size_t exai_test_dns_answer(uint8_t *out)
{
	struct msg m, cn;
	uint8_t a1[4] = { 10, 50, 0, 7 };
	cn.n = 0;
	name(&cn, "edge.cdn.test");
	header(&m, "api.example.test", 1, 2, 0x8180);
	rr(&m, "api.example.test", 5, 300, cn.b, cn.n);
	rr(&m, "edge.cdn.test", 1, 30, a1, 4);
	memcpy(out, m.b, m.n);
	return m.n;
}

int main(void)
{
	patterns();
	answers();
	return test_done();
}
