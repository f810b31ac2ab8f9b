/* SPDX-License-Identifier: Apache-2.0 */
/* dir.c: the IPv4 direct table (map "exai_dir4", layout in bpf/egress.h), built from the compiled
 * LPM entries so that a lookup gives the same longest-prefix match as the trie. */
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"

_Static_assert(2 * EXAI_MAX_SETS <= 0x1000, "a port set index must fit in 12 bits of a direct-table entry");
_Static_assert((EXAI_F_FLOOR | EXAI_F_RESOLVER) <= 3, "the flags must fit in 2 bits of a direct-table entry");

static uint32_t be32(const uint8_t *a)
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int exai__dir4_size(size_t *ret, const struct exai__entry *e, size_t n)
{
	/* One chunk per first byte, one per /16 holding a longer prefix, one per /24 holding a
	 * prefix longer than /24. */
	uint8_t *seen16 = calloc(65536 / 8, 1);
	uint32_t *keys24 = malloc((n ? n : 1) * sizeof(*keys24));
	size_t chunks = 256, n24 = 0;
	if (!seen16 || !keys24) {
		free(seen16);
		free(keys24);
		return exai__err(-ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t a = be32(e[i].pfx.addr);
		if (e[i].pfx.plen > 16 && !(seen16[a >> 19] & 1u << (a >> 16 & 7))) {
			seen16[a >> 19] |= (uint8_t)(1u << (a >> 16 & 7));
			chunks++;
		}
		if (e[i].pfx.plen > 24)
			keys24[n24++] = a >> 8;
	}
	qsort(keys24, n24, sizeof(*keys24), cmp_u32);
	for (size_t i = 0; i < n24; i++)
		chunks += i == 0 || keys24[i] != keys24[i - 1];
	free(seen16);
	free(keys24);
	if (chunks > EXAI_DIR_MAX_CHUNKS)
		return -E2BIG;
	*ret = chunks;
	return 0;
}

struct dir {
	struct exai_dir_chunk *c;
	size_t n, cap;
};

/* The chunk an entry leads to, made (holding what the entry said) when it is a leaf. */
static int dir_descend(struct dir *d, size_t chunk, unsigned idx)
{
	uint16_t e = d->c[chunk].e[idx];
	if (e & EXAI_DIR_NEXT)
		return e & ~EXAI_DIR_NEXT;
	if (d->n == d->cap)
		return exai__err(-EINVAL, "the IPv4 direct table is smaller than its entries need");
	size_t n = d->n++;
	for (size_t i = 0; i < 256; i++)
		d->c[n].e[i] = e;
	d->c[chunk].e[idx] = (uint16_t)(EXAI_DIR_NEXT | n);
	return (int)n;
}

int exai__dir4_fill(struct exai_dir_chunk *c, size_t nchunks, const struct exai__entry *e, size_t n, uint32_t bank)
{
	struct dir d = { .c = c, .n = 256, .cap = nchunks };
	const struct exai__entry **order = malloc((n ? n : 1) * sizeof(*order));
	size_t start[34] = { 0 };
	int r = 0;

	if (!order)
		return exai__err(-ENOMEM, "out of memory");
	if (nchunks < 256)
		r = exai__err(-EINVAL, "the IPv4 direct table is smaller than its entries need");
	/* Shorter prefixes first (a counting sort by length): each longer one then overwrites its
	 * part of what covers it. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (e[i].pfx.family != 4 || e[i].pfx.plen > 32)
			r = exai__err(-EINVAL, "not an IPv4 prefix");
		else
			start[e[i].pfx.plen + 1]++;
	}
	for (size_t l = 1; l < 34; l++)
		start[l] += start[l - 1];
	for (size_t i = 0; r == 0 && i < n; i++)
		order[start[e[i].pfx.plen]++] = &e[i];
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct exai__cidr *p = &order[i]->pfx;
		const uint8_t *a = p->addr;
		uint16_t leaf = (uint16_t)(EXAI_DIR_MATCH | (order[i]->val.flags & 3u) << 12 |
					   (order[i]->val.set + bank * EXAI_MAX_SETS));
		if (p->plen <= 16) { /* a run of first-level entries, possibly over several chunks */
			uint32_t first = (uint32_t)a[0] << 8 | a[1], count = 1u << (16 - p->plen);
			for (uint32_t k = first; k < first + count; k++)
				c[k >> 8].e[k & 255] = leaf;
			continue;
		}
		int ch = dir_descend(&d, a[0], a[1]);
		unsigned at = a[2], bits = p->plen - 16;
		if (ch >= 0 && p->plen > 24) {
			ch = dir_descend(&d, (size_t)ch, a[2]);
			at = a[3];
			bits = p->plen - 24;
		}
		if (ch < 0) {
			r = ch;
			break;
		}
		for (unsigned k = at; k < at + (1u << (8 - bits)); k++)
			c[ch].e[k] = leaf;
	}
	free(order);
	return r;
}

uint16_t exai__dir4_lookup(const struct exai_dir_chunk *c, const uint8_t addr[4])
{
	uint16_t e = c[addr[0]].e[addr[1]];
	for (int level = 2; level < 4 && (e & EXAI_DIR_NEXT); level++)
		e = c[e & ~EXAI_DIR_NEXT].e[addr[level]];
	return e & EXAI_DIR_NEXT ? 0 : e;
}
