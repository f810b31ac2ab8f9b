/* SPDX-License-Identifier: Apache-2.0 */
/* test-policy-dir: the IPv4 direct table against a brute-force longest-prefix match over the
 * same entries (random prefixes of every length, nested and overlapping), the bank and flags in
 * its entries, and the size limit beyond which the trie serves. */
#include <errno.h>
#include <stdlib.h>

#include "policy/policy-internal.h"
#include "test.h"

static unsigned seed = 4242;
static unsigned rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8 ^ seed << 13;
}

/* The longest prefix of @e containing @a, as a direct-table entry would name it. */
static uint16_t model(const struct exai__entry *e, size_t n, const uint8_t a[4], uint32_t bank)
{
	const struct exai__entry *best = NULL;
	struct exai__cidr dst = { .family = 4, .plen = 32 };
	memcpy(dst.addr, a, 4);
	for (size_t i = 0; i < n; i++)
		if (exai__cidr_contains(&e[i].pfx, &dst) && (!best || e[i].pfx.plen > best->pfx.plen))
			best = &e[i];
	if (!best)
		return 0;
	return (uint16_t)(EXAI_DIR_MATCH | best->val.flags << 12 | (best->val.set + bank * EXAI_MAX_SETS));
}

/* The table for @e, built as the loader does (size, then fill zeroed memory). */
static int build(struct exai_dir_chunk **ret, size_t *retn, const struct exai__entry *e, size_t n, uint32_t bank)
{
	size_t nc = 0;
	int r = exai__dir4_size(&nc, e, n);
	if (r < 0)
		return r;
	struct exai_dir_chunk *c = calloc(nc, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if ((r = exai__dir4_fill(c, nc, e, n, bank)) < 0) {
		free(c);
		return r;
	}
	*ret = c;
	*retn = nc;
	return 0;
}

static void set_prefix(struct exai__cidr *c, uint32_t addr, unsigned plen)
{
	uint32_t mask = plen ? ~0u << (32 - plen) : 0;
	addr &= mask;
	memset(c, 0, sizeof(*c));
	c->family = 4;
	c->plen = (uint8_t)plen;
	for (int i = 0; i < 4; i++)
		c->addr[i] = (uint8_t)(addr >> (24 - 8 * i));
}

static void matches_lpm(void)
{
	for (int round = 0; round < 40; round++) {
		size_t n = 1 + rnd() % 400;
		struct exai__entry *e = calloc(n, sizeof(*e));
		uint32_t bank = (uint32_t)round & 1;
		/* a few /8 regions so that prefixes nest; any length from 0 to 32 */
		uint32_t regions[3] = { rnd() << 24, rnd() << 24, rnd() << 24 };
		size_t k = 0;
		while (k < n) {
			unsigned plen = round == 0 && k == 0 ? 0 : rnd() % 33;
			uint32_t addr = regions[rnd() % 3] | (rnd() & 0x00ffffffu);
			set_prefix(&e[k].pfx, addr, plen);
			bool dup = false;
			for (size_t j = 0; j < k && !dup; j++)
				dup = !memcmp(&e[j].pfx, &e[k].pfx, sizeof(e[k].pfx));
			if (dup)
				continue;
			e[k].val.set = rnd() % EXAI_MAX_SETS;
			e[k].val.flags = rnd() % 4;
			k++;
		}
		struct exai_dir_chunk *d = NULL;
		size_t nd = 0;
		CHECK_OK(build(&d, &nd, e, n, bank));
		if (nd > 256) { /* the size is exact: one chunk less does not do */
			struct exai_dir_chunk *small = calloc(nd - 1, sizeof(*small));
			CHECK_RC(exai__dir4_fill(small, nd - 1, e, n, bank), -EINVAL);
			free(small);
		}
		CHECK(nd >= 256 && nd <= EXAI_DIR_MAX_CHUNKS);
		int bad = 0;
		for (int t = 0; t < 4000 && d; t++) {
			uint8_t a[4];
			uint32_t x;
			if (t % 2) { /* next to a prefix's edges, where an off-by-one would show */
				const struct exai__cidr *c = &e[rnd() % n].pfx;
				x = (uint32_t)c->addr[0] << 24 | c->addr[1] << 16 | c->addr[2] << 8 | c->addr[3];
				uint32_t span = c->plen ? 1u << (32 - c->plen) : 0;
				x += (t % 4 == 1) ? span - 1 + (rnd() % 3) : (uint32_t)-(int)(rnd() % 2);
			} else {
				x = regions[rnd() % 3] | (rnd() & 0x00ffffffu);
			}
			for (int i = 0; i < 4; i++)
				a[i] = (uint8_t)(x >> (24 - 8 * i));
			bad += exai__dir4_lookup(d, a) != model(e, n, a, bank);
		}
		CHECK(bad == 0);
		free(d);
		free(e);
	}
}

static void empty_and_limit(void)
{
	/* no entries: every address unmatched */
	struct exai_dir_chunk *d = NULL;
	size_t nd = 0;
	CHECK_OK(build(&d, &nd, NULL, 0, 0));
	CHECK(nd == 256 && exai__dir4_lookup(d, (const uint8_t[]){ 1, 2, 3, 4 }) == 0);
	free(d);

	/* /32s in distinct /16s take two chunks each: past the limit the builder says -E2BIG */
	size_t n = EXAI_DIR_MAX_CHUNKS / 2;
	struct exai__entry *e = calloc(n, sizeof(*e));
	for (size_t i = 0; i < n; i++)
		set_prefix(&e[i].pfx, (uint32_t)i << 16 | 0x0101u, 32);
	d = NULL;
	CHECK_RC(build(&d, &nd, e, n, 1), -E2BIG);
	CHECK(d == NULL);
	CHECK_OK(build(&d, &nd, e, n / 2, 1));
	CHECK(nd == 256 + n && exai__dir4_lookup(d, (const uint8_t[]){ 0, 7, 1, 1 }) == (EXAI_DIR_MATCH | EXAI_MAX_SETS));
	CHECK(exai__dir4_lookup(d, (const uint8_t[]){ 0, 7, 1, 2 }) == 0);
	free(d);
	free(e);
}

int main(void)
{
	matches_lpm();
	empty_and_limit();
	return test_done();
}
