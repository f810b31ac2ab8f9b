/* SPDX-License-Identifier: Apache-2.0 */
/* policy-internal.h: the policy module's internals (bundle model, compiler, loader). */
#ifndef EXAI_POLICY_INTERNAL_H
#define EXAI_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core-internal.h"
#include "exai/policy.h"

#include "../../bpf/egress.h"

#define EXAI__POLICY_VERSION 1
#define EXAI__POLICY_MAX_BYTES (32u << 20)

/* One prefix; addr holds 4 or 16 bytes, host bits zero. */
struct exai__cidr {
	uint8_t family; /* 4 or 6 */
	uint8_t plen;
	uint8_t addr[16];
};

struct exai__peer {
	struct exai__cidr cidr;
	size_t nexcept;
	struct exai__cidr *except;
};

struct exai__fqdn {
	char *name;   /* lower case, no trailing dot */
	bool pattern; /* matchPattern ('*' wildcards) */
};

struct exai__rule {
	char name[EXAI_RULE_NAME];
	size_t npeers;
	struct exai__peer *peers;
	size_t nfqdns;
	struct exai__fqdn *fqdns;
	size_t nranges;
	struct exai_range ranges[EXAI_PORTSET_MAX];
};

struct exai__entry {
	struct exai__cidr pfx;
	struct exai_lpm_val val;
};

/* The tables of one policy, in the datapath's own layout (bank-relative indices). */
struct exai__compiled {
	struct exai__entry *e4, *e6;
	size_t n4, n6;
	struct exai_portset *sets;
	size_t nsets;
};

struct exai_policy {
	unsigned version;
	char *tenant;
	size_t nrules;
	struct exai__rule *rules;
	size_t nresolvers;
	struct exai__cidr *resolvers;
	struct exai__compiled tables; /* with the built-in floor, FQDNs unresolved */
};

/* What exai__policy_compile adds to a bundle's own rules. */
struct exai__floor {
	const struct exai__cidr *extra; /* denied, e.g. the host's addresses */
	size_t nextra;
	const struct exai__cidr *allow; /* operator overrides carved out of the floor */
	size_t nallow;
	/* Addresses resolved for each FQDN rule: per rule, a list of /32 or /128. */
	const struct exai__cidr *const *fqdn_addrs;
	const size_t *fqdn_naddrs;
};

/* Parses "a.b.c.d/len" or "v6/len" (@want_prefix) or a bare address (then len = 32/128). */
int exai__cidr_parse(struct exai__cidr *ret, const char *s, bool want_prefix, const char **why);
/* Formats as "addr/len" into @buf (at least 64 bytes). */
const char *exai__cidr_str(const struct exai__cidr *c, char *buf, size_t size);
bool exai__cidr_contains(const struct exai__cidr *outer, const struct exai__cidr *inner);

/* Compiles @p with the built-in floor plus @floor (may be NULL). */
int exai__policy_compile(struct exai__compiled *ret, const exai_policy *p, const struct exai__floor *floor);
void exai__compiled_free(struct exai__compiled *c);
/* The datapath's decision for one destination on the compiled tables; *ret_entry is the
 * deciding LPM entry or NULL, *ret_rule the rule index or -1. Returns an enum exai_reason. */
int exai__policy_decide(const struct exai__compiled *c, const struct exai__cidr *dst, uint8_t proto,
			uint16_t port, const struct exai__entry **ret_entry, int *ret_rule);

/* The IPv4 direct table (bpf/egress.h, "exai_dir4") for the IPv4 entries @e of a policy:
 * exai__dir4_size gives the number of chunks it takes (-E2BIG, without a message, beyond
 * EXAI_DIR_MAX_CHUNKS: the trie serves then); exai__dir4_fill writes it into @c (@nchunks
 * chunks, zeroed by the caller) with the port sets in @bank. */
int exai__dir4_size(size_t *ret, const struct exai__entry *e, size_t n);
int exai__dir4_fill(struct exai_dir_chunk *c, size_t nchunks, const struct exai__entry *e, size_t n, uint32_t bank);
/* The entry of the table @c for @addr: 0 (no prefix covers it) or EXAI_DIR_MATCH | flags | set. */
uint16_t exai__dir4_lookup(const struct exai_dir_chunk *c, const uint8_t addr[4]);

/* The counter/reason name of an enum exai_reason ("deny-floor", ...). */
const char *exai__policy_reason_name(unsigned reason);

/* Resolves @name (A and AAAA) with glibc's resolver: the addresses (/32, /128; free()) and their
 * smallest TTL, clamped to 5 s .. 1 day (30 s when there is no answer). */
int exai__fqdn_resolve(const char *name, struct exai__cidr **ret, size_t *retn, uint32_t *ret_ttl);
/* The answer to one question in the DNS message @msg: its name (lower case, no trailing dot)
 * into @qname, the A/AAAA addresses of that name and its CNAME chain (free()) and their smallest
 * TTL, clamped to 5 s .. 1 day. -EBADMSG when @msg is not a successful answer. */
int exai__dns_answers(const uint8_t *msg, size_t len, char *qname, size_t qsize, struct exai__cidr **ret,
		      size_t *retn, uint32_t *ret_ttl);
/* Whether @name matches the matchPattern @pattern ('*' alone: every name; otherwise each '*'
 * stands for any characters within one label). Both lower case, without trailing dots. */
bool exai__fqdn_match(const char *pattern, const char *name);
/* FNV-1a of a name, the key of the pinned map of resolved addresses. */
uint64_t exai__fqdn_hash(const char *name);

/* Bundle signature check (minisign): 0 when @sig verifies @data under one of @keys. */
int exai__policy_verify_signature(const char *data, size_t len, const char *sig, const char *const *keys);

#endif /* EXAI_POLICY_INTERNAL_H */
