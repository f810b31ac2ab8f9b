/* SPDX-License-Identifier: Apache-2.0 */
/* audit-check.h: checks the audit tests share. */
#ifndef EXAI_AUDIT_CHECK_H
#define EXAI_AUDIT_CHECK_H

#include "exai/audit.h"
#include "test.h"

/* The leaf of event @seq, proved included in the tree of @size events whose root is @root. */
static inline void check_inclusion(exai_audit_log *log, uint64_t seq, uint64_t size, const uint8_t root[32])
{
	uint8_t (*p)[32] = NULL, lh[32];
	size_t n, len;
	char *leaf = NULL;
	CHECK_OK(exai_audit_leaf(log, seq, &leaf, &len));
	exai_audit_merkle_leaf_hash(lh, leaf, len);
	exai_free(leaf);
	CHECK_OK(exai_audit_prove(log, seq, size, &p, &n));
	CHECK_OK(exai_audit_merkle_verify_inclusion(seq, size, lh, p, n, root));
	exai_free(p);
}

#endif
