/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-merkle: RFC 6962/9162 hashes, proofs and their verification against the vectors
 * in ../shared/vectors/merkle (transparency-dev/merkle test data). */
#include <ftw.h>

#include "audit/audit-internal.h"
#include "test.h"

static uint8_t leaves[8][32];
static int files_seen, files_ok;

static int unhex(uint8_t *out, const char *hex)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
	return (int)n;
}

/* Decodes a base64 field; -1 when it is not 32 bytes (such "hashes" must make checks fail). */
static int b64_32(const json_t *v, uint8_t out[32])
{
	size_t n;
	if (!json_is_string(v) || exai__unb64(out, 32, &n, json_string_value(v), json_string_length(v)) < 0 || n != 32)
		return -1;
	return 0;
}

static int proof_of(const json_t *p, uint8_t (**ret)[32], size_t *retn)
{
	size_t n = json_array_size(p);
	*ret = calloc(n + 1, 32);
	*retn = n;
	for (size_t i = 0; i < n; i++)
		if (b64_32(json_array_get(p, i), (*ret)[i]) < 0)
			return -1;
	return 0;
}

static uint64_t u64_field(const char *text, const char *name)
{
	char key[32];
	snprintf(key, sizeof(key), "\"%s\":", name);
	const char *p = strstr(text, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static int mem_leaves(void *d, uint64_t lo, uint64_t n, uint8_t (*out)[32])
{
	(void)d;
	for (uint64_t i = 0; i < n; i++)
		memcpy(out[i], leaves[lo + i], 32);
	return 0;
}

static int one_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag != FTW_F || !strstr(path, ".json"))
		return 0;
	json_error_t e;
	/* Integers up to 2^64-1 occur: read them from the text (u64_field), the rest as JSON. */
	json_t *o = json_load_file(path, JSON_DECODE_INT_AS_REAL, &e);
	char *text = test_read_file(path, NULL);
	CHECK(o != NULL);
	if (!o)
		return 0;
	files_seen++;
	bool want_err = json_is_true(json_object_get(o, "wantErr"));
	uint8_t (*proof)[32] = NULL;
	size_t n = 0;
	int bad = proof_of(json_object_get(o, "proof"), &proof, &n);
	int r;
	if (json_object_get(o, "leafIdx")) {
		uint8_t root[32], leaf[32];
		uint64_t idx = u64_field(text, "leafIdx");
		uint64_t size = u64_field(text, "treeSize");
		bad |= b64_32(json_object_get(o, "root"), root) | b64_32(json_object_get(o, "leafHash"), leaf);
		r = bad ? -EBADMSG : exai_audit_merkle_verify_inclusion(idx, size, leaf, proof, n, root);
		/* For the valid ones, our own generator must give the same proof. */
		if (!want_err && size <= 8) {
			struct exai__merkle_src src = { .leaves = mem_leaves };
			uint8_t (*mine)[32] = NULL;
			size_t mn = 0;
			CHECK_OK(exai__merkle_inclusion(&src, idx, size, &mine, &mn));
			CHECK(mn == n && (n == 0 || memcmp(mine, proof, n * 32) == 0));
			free(mine);
		}
	} else {
		uint8_t r1[32], r2[32];
		uint64_t s1 = u64_field(text, "size1");
		uint64_t s2 = u64_field(text, "size2");
		bad |= b64_32(json_object_get(o, "root1"), r1) | b64_32(json_object_get(o, "root2"), r2);
		/* The API takes 32-byte roots. For equal sizes the answer depends only on whether the
		 * roots are equal bytes, so equal placeholders of another length go in zero-padded. */
		const char *t1 = json_string_value(json_object_get(o, "root1"));
		const char *t2 = json_string_value(json_object_get(o, "root2"));
		if (bad && s1 == s2 && t1 && t2 && strcmp(t1, t2) == 0 && n == 0) {
			size_t l;
			memset(r1, 0, 32);
			bad = exai__unb64(r1, 32, &l, t1, strlen(t1));
			memcpy(r2, r1, 32);
		}
		r = bad ? -EBADMSG : exai_audit_merkle_verify_consistency(s1, s2, proof, n, r1, r2);
		if (!want_err && s2 <= 8 && s1 > 0) {
			struct exai__merkle_src src = { .leaves = mem_leaves };
			uint8_t (*mine)[32] = NULL;
			size_t mn = 0;
			CHECK_OK(exai__merkle_consistency(&src, s1, s2, &mine, &mn));
			CHECK(mn == n && (n == 0 || memcmp(mine, proof, n * 32) == 0));
			free(mine);
		}
	}
	if ((r != 0) == want_err)
		files_ok++;
	else
		fprintf(stderr, "%s: got %d, wantErr %d (%s)\n", path, r, want_err, test_errmsg());
	free(proof);
	free(text);
	json_decref(o);
	return 0;
}

static void reference(void)
{
	json_error_t e;
	json_t *o = json_load_file(test_shared("vectors/merkle/merkle-reference.json"), 0, &e);
	CHECK(o != NULL);
	json_t *lv = json_object_get(o, "leaves_hex"), *lh = json_object_get(o, "leaf_hashes_hex");
	json_t *roots = json_object_get(o, "roots_hex_by_size");
	struct exai__merkle m = { 0 };
	uint8_t want[32], got[32], raw[64];
	unhex(want, json_string_value(json_object_get(roots, "0")));
	exai__merkle_root(&m, got);
	CHECK(memcmp(got, want, 32) == 0);
	for (size_t i = 0; i < 8; i++) {
		int n = unhex(raw, json_string_value(json_array_get(lv, i)));
		exai_audit_merkle_leaf_hash(leaves[i], raw, (size_t)n);
		unhex(want, json_string_value(json_array_get(lh, i)));
		CHECK(memcmp(leaves[i], want, 32) == 0);
		exai__merkle_push(&m, leaves[i]);
		exai__merkle_root(&m, got);
		char key[4];
		snprintf(key, sizeof(key), "%zu", i + 1);
		unhex(want, json_string_value(json_object_get(roots, key)));
		CHECK(memcmp(got, want, 32) == 0);
	}
	json_decref(o);
}

/* Generated proofs verify for every (index, size) and (size1, size2) up to 8, with and without
 * a pruned prefix standing in for the leaves below it. */
static void roundtrip(void)
{
	struct exai__merkle prefix[9] = { 0 };
	uint8_t roots[9][32];
	for (int i = 0; i <= 8; i++) {
		if (i)
			prefix[i] = prefix[i - 1], exai__merkle_push(&prefix[i], leaves[i - 1]);
		exai__merkle_root(&prefix[i], roots[i]);
	}
	for (uint64_t p = 0; p <= 8; p++) {
		struct exai__merkle_src src = { .leaves = mem_leaves, .pruned = p, .prefix = &prefix[p] };
		for (uint64_t size = 1; size <= 8; size++) {
			for (uint64_t i = p; i < size; i++) {
				uint8_t (*pr)[32] = NULL;
				size_t n = 0;
				CHECK_OK(exai__merkle_inclusion(&src, i, size, &pr, &n));
				CHECK_OK(exai_audit_merkle_verify_inclusion(i, size, leaves[i], pr, n, roots[size]));
				if (n) { /* a flipped bit must fail */
					pr[0][3] ^= 1;
					CHECK(exai_audit_merkle_verify_inclusion(i, size, leaves[i], pr, n, roots[size]) == -EBADMSG);
				}
				free(pr);
			}
			for (uint64_t s1 = p ? p : 1; s1 <= size; s1++) {
				uint8_t (*pr)[32] = NULL;
				size_t n = 0;
				CHECK_OK(exai__merkle_consistency(&src, s1, size, &pr, &n));
				CHECK_OK(exai_audit_merkle_verify_consistency(s1, size, pr, n, roots[s1], roots[size]));
				free(pr);
			}
			uint8_t sub[32];
			CHECK_OK(exai__merkle_subtree(&src, 0, size < p ? p : size, sub));
		}
	}
}

int main(void)
{
	reference();
	nftw(test_shared("vectors/merkle/testdata/inclusion"), one_file, 16, FTW_PHYS);
	nftw(test_shared("vectors/merkle/testdata/consistency"), one_file, 16, FTW_PHYS);
	printf("%d vector files, %d as expected\n", files_seen, files_ok);
	CHECK(files_seen == 196);
	CHECK(files_ok == files_seen);
	roundtrip();
	return test_done();
}
