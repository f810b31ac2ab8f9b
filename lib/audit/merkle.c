/* SPDX-License-Identifier: Apache-2.0 */
/* merkle.c: RFC 6962 / RFC 9162 Merkle tree: hashes, compact ranges, proofs. */
#include <stdlib.h>
#include <string.h>

#include "audit-internal.h"

EXAI_API void exai_audit_merkle_leaf_hash(uint8_t ret[32], const void *leaf, size_t len)
{
	exai__sha256_2(ret, "", 1, leaf, len); /* 0x00 || leaf */
}

EXAI_API void exai_audit_merkle_node_hash(uint8_t ret[32], const uint8_t left[32], const uint8_t right[32])
{
	uint8_t buf[65];
	buf[0] = 1;
	memcpy(buf + 1, left, 32);
	memcpy(buf + 33, right, 32);
	exai__sha256(ret, buf, sizeof(buf));
}

void exai__merkle_push(struct exai__merkle *m, const uint8_t leaf_hash[32])
{
	uint8_t h[32];
	memcpy(h, leaf_hash, 32);
	for (uint64_t s = m->size; s & 1; s >>= 1)
		exai_audit_merkle_node_hash(h, m->h[--m->n], h);
	memcpy(m->h[m->n++], h, 32);
	m->size++;
}

void exai__merkle_root(const struct exai__merkle *m, uint8_t out[32])
{
	if (m->n == 0) {
		exai__sha256(out, "", 0);
		return;
	}
	memcpy(out, m->h[m->n - 1], 32);
	for (unsigned i = m->n - 1; i-- > 0;)
		exai_audit_merkle_node_hash(out, m->h[i], out);
}

static uint64_t split_point(uint64_t n) /* largest power of two < n (n >= 2) */
{
	uint64_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

#define LEAF_CHUNK 4096

int exai__merkle_subtree(const struct exai__merkle_src *src, uint64_t lo, uint64_t hi, uint8_t out[32])
{
	if (lo < src->pruned) {
		/* Only whole subtrees of the pruned prefix's compact range are known. */
		uint64_t a = 0;
		for (unsigned i = 0; src->prefix && i < src->prefix->n; i++) {
			uint64_t width = (uint64_t)1 << (63 - __builtin_clzll(src->pruned - a));
			if (a == lo && a + width == hi) {
				memcpy(out, src->prefix->h[i], 32);
				return 0;
			}
			a += width;
		}
		if (hi - lo >= 2) {
			uint64_t k = split_point(hi - lo);
			uint8_t l[32], r[32];
			int rc = exai__merkle_subtree(src, lo, lo + k, l);
			if (rc == 0)
				rc = exai__merkle_subtree(src, lo + k, hi, r);
			if (rc == 0)
				exai_audit_merkle_node_hash(out, l, r);
			return rc;
		}
		return exai__err(-ENOENT, "leaves %llu..%llu were pruned", (unsigned long long)lo,
				 (unsigned long long)hi - 1);
	}
	struct exai__merkle m = { 0 };
	uint8_t (*buf)[32] = malloc(LEAF_CHUNK * 32);
	if (!buf)
		return exai__err(-ENOMEM, "out of memory");
	for (uint64_t i = lo; i < hi;) {
		uint64_t n = hi - i < LEAF_CHUNK ? hi - i : LEAF_CHUNK;
		int r = src->leaves(src->data, i, n, buf);
		if (r < 0) {
			free(buf);
			return r;
		}
		for (uint64_t k = 0; k < n; k++)
			exai__merkle_push(&m, buf[k]);
		i += n;
	}
	free(buf);
	exai__merkle_root(&m, out);
	return 0;
}

struct proof {
	uint8_t (*h)[32];
	size_t n;
};

static int proof_add(struct proof *p, const struct exai__merkle_src *src, uint64_t lo, uint64_t hi)
{
	uint8_t (*h)[32] = realloc(p->h, (p->n + 1) * 32);
	if (!h)
		return exai__err(-ENOMEM, "out of memory");
	p->h = h;
	return exai__merkle_subtree(src, lo, hi, p->h[p->n++]);
}

/* RFC 9162 2.1.3.1 PATH(m, D[lo:hi]), leaf-level first. */
static int path(struct proof *p, const struct exai__merkle_src *src, uint64_t m, uint64_t lo, uint64_t hi)
{
	if (hi - lo <= 1)
		return 0;
	uint64_t k = split_point(hi - lo);
	int r;
	if (m < k) {
		r = path(p, src, m, lo, lo + k);
		return r ? r : proof_add(p, src, lo + k, hi);
	}
	r = path(p, src, m - k, lo + k, hi);
	return r ? r : proof_add(p, src, lo, lo + k);
}

/* RFC 9162 2.1.4.1 SUBPROOF(m, D[lo:hi], b). */
static int subproof(struct proof *p, const struct exai__merkle_src *src, uint64_t m, uint64_t lo, uint64_t hi, bool b)
{
	uint64_t n = hi - lo;
	if (m == n)
		return b ? 0 : proof_add(p, src, lo, hi);
	uint64_t k = split_point(n);
	int r;
	if (m <= k) {
		r = subproof(p, src, m, lo, lo + k, b);
		return r ? r : proof_add(p, src, lo + k, hi);
	}
	r = subproof(p, src, m - k, lo + k, hi, false);
	return r ? r : proof_add(p, src, lo, lo + k);
}

int exai__merkle_inclusion(const struct exai__merkle_src *src, uint64_t index, uint64_t size,
			   uint8_t (**ret)[32], size_t *retn)
{
	if (index >= size)
		return exai__err(-ERANGE, "seq %llu is not in a tree of size %llu", (unsigned long long)index,
				 (unsigned long long)size);
	if (index < src->pruned)
		return exai__err(-ENOENT, "seq %llu was pruned", (unsigned long long)index);
	struct proof p = { 0 };
	int r = path(&p, src, index, 0, size);
	if (r < 0) {
		free(p.h);
		return r;
	}
	*ret = p.h;
	*retn = p.n;
	return 0;
}

int exai__merkle_consistency(const struct exai__merkle_src *src, uint64_t size1, uint64_t size2,
			     uint8_t (**ret)[32], size_t *retn)
{
	if (size1 == 0 || size1 > size2)
		return exai__err(-ERANGE, "no consistency proof from size %llu to %llu", (unsigned long long)size1,
				 (unsigned long long)size2);
	if (size1 < src->pruned)
		return exai__err(-ENOENT, "tree size %llu is inside the pruned prefix (first retained seq %llu)",
				 (unsigned long long)size1, (unsigned long long)src->pruned);
	struct proof p = { 0 };
	int r = subproof(&p, src, size1, 0, size2, true);
	if (r < 0) {
		free(p.h);
		return r;
	}
	*ret = p.h;
	*retn = p.n;
	return 0;
}

/* The RFC 9162 walk shared by both proof checks, over proof[i..n): a hash on the left goes
 * into @sr and, when given, @fr (the old root of a consistency proof); one on the right into
 * @sr only. */
static int proof_walk(const char *what, uint64_t fn, uint64_t sn, const uint8_t (*proof)[32], size_t i, size_t n,
		      uint8_t *fr, uint8_t sr[32])
{
	for (; i < n; i++) {
		if (sn == 0)
			return exai__err(-EBADMSG, "%s proof: too many hashes (%zu)", what, n);
		if ((fn & 1) || fn == sn) {
			if (fr)
				exai_audit_merkle_node_hash(fr, proof[i], fr);
			exai_audit_merkle_node_hash(sr, proof[i], sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			exai_audit_merkle_node_hash(sr, sr, proof[i]);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return exai__err(-EBADMSG, "%s proof: too few hashes (%zu)", what, n);
	return 0;
}

EXAI_API int exai_audit_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf_hash[32],
						const uint8_t (*proof)[32], size_t n, const uint8_t root[32])
{
	if (index >= size)
		return exai__err(-EBADMSG, "inclusion proof: index %llu is not below tree size %llu",
				 (unsigned long long)index, (unsigned long long)size);
	uint64_t fn = index, sn = size - 1;
	uint8_t r[32];
	memcpy(r, leaf_hash, 32);
	int e = proof_walk("inclusion", fn, sn, proof, 0, n, NULL, r);
	if (e < 0)
		return e;
	if (memcmp(r, root, 32) != 0)
		return exai__err(-EBADMSG, "inclusion proof: computed root differs from the expected root");
	return 0;
}

EXAI_API int exai_audit_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t (*proof)[32],
						  size_t n, const uint8_t root1[32], const uint8_t root2[32])
{
	if (size1 == 0)
		return exai__err(-EBADMSG, "consistency proof from the empty tree is meaningless");
	if (size2 < size1)
		return exai__err(-EBADMSG, "consistency proof: size2 %llu < size1 %llu", (unsigned long long)size2,
				 (unsigned long long)size1);
	if (size1 == size2) {
		if (n != 0)
			return exai__err(-EBADMSG, "consistency proof between equal sizes must be empty");
		if (memcmp(root1, root2, 32) != 0)
			return exai__err(-EBADMSG, "consistency proof: equal sizes but different roots");
		return 0;
	}
	if (n == 0)
		return exai__err(-EBADMSG, "consistency proof: empty proof for different sizes");
	size_t i = 0;
	uint8_t fr[32], sr[32];
	if ((size1 & (size1 - 1)) == 0) { /* size1 is a power of two: the proof omits root1 */
		memcpy(fr, root1, 32);
	} else {
		memcpy(fr, proof[i++], 32);
	}
	memcpy(sr, fr, 32);
	uint64_t fn = size1 - 1, sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	int e = proof_walk("consistency", fn, sn, proof, i, n, fr, sr);
	if (e < 0)
		return e;
	if (memcmp(fr, root1, 32) != 0)
		return exai__err(-EBADMSG, "consistency proof: computed old root differs from root1");
	if (memcmp(sr, root2, 32) != 0)
		return exai__err(-EBADMSG, "consistency proof: computed new root differs from root2");
	return 0;
}
