/* SPDX-License-Identifier: Apache-2.0 */
/*
 * egress.h: the one header that fixes the layout of every map shared by the egress policy
 * programs (bpf/egress.bpf.c) and the library that fills them (lib/policy). Both sides
 * include it; a change here changes both at once. See docs/formats/policy.md for the model.
 *
 * Two banks (0 and 1) of rules and port sets let a new policy be built beside the running one.
 * Each LPM trie is built whole by user space and put into the one slot of its map of maps;
 * its values name port sets by absolute index, so the trie alone decides which bank a packet
 * of its family sees, and replacing it switches that family at once. The kernel waits for
 * every program that may still see the replaced trie before the update returns.
 */
#ifndef EXAI_BPF_EGRESS_H
#define EXAI_BPF_EGRESS_H

#include <linux/bpf.h>
#include <linux/types.h>

#define EXAI_MAX_RULES 1024     /* rules per bank (counters, names) */
#define EXAI_MAX_SETS 2048      /* distinct port sets per bank */
#define EXAI_PORTSET_MAX 32     /* port ranges in one set */
#define EXAI_MAX_ENTRIES 131072 /* LPM entries per family and policy */
#define EXAI_LPM_MAX (EXAI_MAX_ENTRIES + 64)
#define EXAI_CT_ENTRIES 65536   /* tracked guest flows per device */
#define EXAI_RINGBUF_BYTES (256 * 1024)
#define EXAI_RULE_NAME 56

/* Pseudo protocol numbers in port ranges. ICMP means ICMP for IPv4 and ICMPv6 for IPv6. */
#define EXAI_PROTO_ICMP 1
#define EXAI_PROTO_TCP 6
#define EXAI_PROTO_UDP 17
#define EXAI_PROTO_ANY 255

/* exai_lpm_val.flags */
#define EXAI_F_FLOOR 1u    /* the floor: always denied */
#define EXAI_F_RESOLVER 2u /* a configured DNS resolver: port 53 allowed */

/* Verdict reasons: the first counters, and exai_event.reason. */
enum exai_reason {
	EXAI_R_RULE = 0,        /* allowed by a rule (counted in the rule's slot only) */
	EXAI_R_DNS_ALLOW,       /* DNS to a configured resolver */
	EXAI_R_REPLY,           /* inbound reply to a guest-initiated flow */
	EXAI_R_ARP,             /* ARP, both ways */
	EXAI_R_NDP,             /* neighbour discovery needed for the link */
	EXAI_R_ICMP_ERROR,      /* inbound ICMP error about a guest flow */
	EXAI_R_DENY_DEFAULT,    /* egress matching no rule */
	EXAI_R_DENY_FLOOR,      /* egress to the floor (link-local, metadata, host) */
	EXAI_R_DENY_DNS,        /* DNS to something not a configured resolver */
	EXAI_R_DENY_INBOUND,    /* inbound packet not a reply to a guest flow */
	EXAI_R_DENY_FRAGMENT,   /* non-first IP fragment */
	EXAI_R_DENY_MALFORMED,  /* truncated or malformed header */
	EXAI_R_DENY_ETHERTYPE,  /* neither IPv4, IPv6 nor ARP */
	EXAI_R_DENY_NO_POLICY,  /* no policy loaded yet */
	EXAI_R_EVENTS_DROPPED,  /* deny events suppressed by the rate limit or a full ring */
	EXAI_R__COUNT,
};
#define EXAI_R_FIRST_DENY EXAI_R_DENY_DEFAULT

/* Counter slots: reasons first, then EXAI_MAX_RULES per bank. */
#define EXAI_CNT_RULE_BASE 32
#define EXAI_CNT_SLOTS (EXAI_CNT_RULE_BASE + 2 * EXAI_MAX_RULES)

/* Connection tracking idle timeouts (exai_cfg.ct_timeout_s), by the state of a flow. */
enum exai_ct_timeout {
	EXAI_CT_T_OPENING = 0, /* TCP: the guest's SYN, no answer yet */
	EXAI_CT_T_ESTABLISHED, /* TCP: answered, not closed */
	EXAI_CT_T_CLOSING,     /* TCP: RST either way, or FIN both ways */
	EXAI_CT_T_OTHER,       /* UDP and ICMP echo */
	EXAI_CT_T__COUNT,
};
#define EXAI_CT_DEFAULT_TIMEOUTS { 60, 21600, 10, 60 }

/* exai_cfg.flags */
#define EXAI_CFG_SNOOP_DNS 1u /* copy DNS answers from the resolvers to "exai_dns" (matchPattern) */

/* Ring buffer "exai_dns": DNS answers (UDP from port 53 of a flow the guest opened), read by
 * user space to learn the addresses of matchPattern names. */
#define EXAI_DNS_MAX 4096 /* EDNS(0) answers over UDP, as resolvers send them (RFC 6891) */
#define EXAI_DNS_RING_BYTES (512 * 1024)
struct exai_dns_msg {
	__u32 len; /* bytes of data */
	__u32 pad;
	__u8 data[EXAI_DNS_MAX];
};

/* Map "exai_cfg" (array, 1 entry). */
struct exai_cfg {
	__u32 policy_id;      /* 0: no policy, deny all IP; else the active policy, in bank policy_id & 1 */
	__u32 flags;          /* EXAI_CFG_* */
	__u64 ev_interval_ns; /* deny events: one token per interval (0: no events) */
	__u64 ev_burst_ns;    /* bucket depth, in ns of credit */
	__u32 ct_timeout_s[EXAI_CT_T__COUNT]; /* idle timeouts, seconds (enum exai_ct_timeout) */
};

/* Maps "exai_lpm4"/"exai_lpm6": arrays of one LPM trie (max EXAI_LPM_MAX entries,
 * BPF_F_NO_PREALLOC) with these keys; prefixlen = the address prefix length. An empty slot
 * means no policy. */
struct exai_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};
struct exai_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};
struct exai_lpm_val {
	__u32 set;   /* port set: bank * EXAI_MAX_SETS + index within the bank */
	__u32 flags; /* EXAI_F_* */
};

/* Map "exai_dir4" (array of one map): the IPv4 decisions as a direct table, used instead of
 * the IPv4 trie when present (it answers in at most three array lookups, where a trie of
 * 10 000 prefixes takes some fifteen node visits). The inner map is an array of chunks of 256
 * entries (BPF_F_INNER_MAP: its size varies). Chunk b (b < 256) is indexed by the second byte
 * of addresses b.x.y.z; an entry with EXAI_DIR_NEXT continues in the chunk it names, indexed
 * by the next byte (at most two more levels); otherwise EXAI_DIR_MATCH marks the longest
 * prefix's set (bank included) and flags, and 0 means no prefix covers the address. */
#define EXAI_DIR_NEXT 0x8000u  /* bits 0-14: the chunk to continue in */
#define EXAI_DIR_MATCH 0x4000u /* bits 0-11: port set (bank * EXAI_MAX_SETS + set), 12-13: flags */
#define EXAI_DIR_MAX_CHUNKS 32768u
struct exai_dir_chunk {
	__u16 e[256];
};

/* Map "exai_sets" (array, 2 * EXAI_MAX_SETS): port sets, bank b at b * EXAI_MAX_SETS. */
struct exai_range {
	__u16 lo, hi; /* inclusive destination port range; ICMP and portless protocols use 0 */
	__u8 proto;   /* EXAI_PROTO_* */
	__u8 pad;
	__u16 rule;   /* rule index within the bank */
};
struct exai_portset {
	__u32 n;
	__u32 pad;
	struct exai_range r[EXAI_PORTSET_MAX];
};

/* Map "exai_rules" (array, 2 * EXAI_MAX_RULES): rule names, for stats and events of any
 * later process. Only user space reads it. */
struct exai_rule_info {
	char name[EXAI_RULE_NAME];
	__u32 policy_id;
	__u32 pad;
};

/* Map "exai_cnt" (per-CPU array, EXAI_CNT_SLOTS). */
struct exai_counter {
	__u64 packets;
	__u64 bytes;
};

/* Map "exai_ct" (LRU hash): flows the guest started, keyed from the guest's side. */
struct exai_ct_key {
	__u8 family; /* 4 or 6 */
	__u8 proto;  /* IPPROTO_* (ICMPv6 as 58) */
	__u16 gport; /* guest's port (ICMP echo: the identifier), network order */
	__u16 rport; /* remote port (ICMP echo: 0), network order */
	__u16 pad;
	__u8 gaddr[16];
	__u8 raddr[16];
};
struct exai_ct_val {
	__u64 last_ns;   /* bpf_ktime_get_coarse_ns() of the last packet either way */
	__u64 flags;     /* EXAI_CT_* (64 bits: BPF's atomic OR without -mcpu=v3) */
	__u32 policy_id; /* the policy that last admitted the flow (replies under another decide it again) */
	__u32 pad;
};
#define EXAI_CT_REPLIED 1u /* something came back */
#define EXAI_CT_FIN_OUT 2u /* TCP: the guest sent FIN */
#define EXAI_CT_FIN_IN 4u  /* TCP: the remote sent FIN */
#define EXAI_CT_RST 8u     /* TCP: RST either way */

/* The idle timeout that applies to a flow of protocol @proto (IPPROTO_*) in state @flags. */
static inline __u32 exai_ct_timeout(const __u32 *timeout_s, __u8 proto, __u64 flags)
{
	if (proto != 6)
		return timeout_s[EXAI_CT_T_OTHER];
	if ((flags & EXAI_CT_RST) || (flags & (EXAI_CT_FIN_OUT | EXAI_CT_FIN_IN)) == (EXAI_CT_FIN_OUT | EXAI_CT_FIN_IN))
		return timeout_s[EXAI_CT_T_CLOSING];
	return timeout_s[flags & EXAI_CT_REPLIED ? EXAI_CT_T_ESTABLISHED : EXAI_CT_T_OPENING];
}

/* Map "exai_note" (array, two entries per possible CPU: EXAI_NOTE_INDEX): for each direction,
 * the guest flow the CPU last allowed and its verdict, so that the flow's following packets under
 * the same policy, within EXAI_NOTE_JIFFIES, skip the tables and conntrack. Egress: the guest's
 * packets of a flow the policy allowed; replies: the packets towards the guest of a flow whose
 * conntrack entry let them in (slot EXAI_R_REPLY). A plain array (one allocation in the kernel's
 * linear mapping) rather than a per-CPU one, and one value holding everything the hit needs,
 * including its counts: what a packet of an established flow costs is the memory it touches.
 * The packets allowed by the note are counted in it (packets, bytes, for counter slot "slot")
 * and moved into "exai_cnt" when the note changes to another slot; "seq" is odd while that move
 * is under way, so that a reader (exai_policy_stats) can tell a consistent view: the sum of
 * exai_cnt and the pending counts of notes whose rule slots belong to the current policy (reason
 * slots, below EXAI_CNT_RULE_BASE, always count).
 * A flow is noted only while its conntrack idle timeout is at least EXAI_NOTE_MIN_TIMEOUT_S,
 * longer than a note lives: the entry, renewed when the note was made, outlives every hit, so a
 * hit lets in exactly what the full path would (the conntrack entry may be renewed once per
 * note's life only: both directions' full paths renew it). */
#define EXAI_NOTE_INDEX(cpu, dir) ((cpu) * 2 + (dir)) /* dir: EXAI_DIR_EGRESS or EXAI_DIR_INGRESS */
#define EXAI_NOTE_MIN_TIMEOUT_S 3
#define EXAI_NOTE_JIFFIES 250 /* 0.25 s to 2.5 s (CONFIG_HZ 1000 .. 100): below EXAI_NOTE_MIN_TIMEOUT_S */
struct exai_note { /* 64 bytes */
	struct exai_ct_key key; /* the flow (the conntrack key) */
	__u64 bytes;            /* pending counts */
	__u32 packets;
	__u32 policy_id;        /* the policy that allowed the flow; 0: the note is empty */
	__u32 jiffies;          /* low bits of jiffies when the flow was last looked up in full */
	__u16 seq;              /* odd while the pending counts move to exai_cnt */
	__u16 slot;             /* counter slot of the verdict */
};

/* Map "exai_bucket" (array, 1 entry): deny-event token bucket. */
struct exai_bucket {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 credit_ns;
	__u64 last_ns;
};

/* Map "exai_fqdn" (hash, EXAI_FQDN_ENTRIES): addresses resolved for matchName rules, kept
 * until their TTL plus a grace period has passed. Only user space reads it. */
#define EXAI_FQDN_ENTRIES 16384
struct exai_fqdn_key {
	__u64 name_hash; /* FNV-1a of the lower-case name */
	__u8 family;
	__u8 pad[7];
	__u8 addr[16];
};
struct exai_fqdn_val {
	__u64 refresh_ns; /* CLOCK_BOOTTIME: ask again from here (90% of the TTL) */
	__u64 expires_ns; /* CLOCK_BOOTTIME: drop after this (TTL + grace) */
};

/* Ring buffer "exai_events": one record per denied packet (rate-limited). */
#define EXAI_DIR_EGRESS 0 /* from the guest */
#define EXAI_DIR_INGRESS 1 /* towards the guest */
struct exai_event {
	__u64 time_ns; /* bpf_ktime_get_boot_ns() */
	__u32 ifindex;
	__u32 rule;    /* counter slot that decided (reason, or EXAI_CNT_RULE_BASE + rule) */
	__u8 reason;   /* enum exai_reason */
	__u8 dir;      /* EXAI_DIR_* */
	__u8 family;   /* 4, 6, or 0 when not IP */
	__u8 proto;
	__u16 sport, dport; /* host order */
	__u16 len;
	__u16 pad;
	__u8 src[16];
	__u8 dst[16];
};

/* The decision both sides share: the rule index of the first range in @ps that admits
 * @proto (EXAI_PROTO_*, already folded) and destination @port, or -1. */
static inline int exai_portset_match(const struct exai_portset *ps, __u8 proto, __u16 port)
{
	__u32 n = ps->n;
	for (__u32 i = 0; i < EXAI_PORTSET_MAX; i++) {
		if (i >= n)
			break;
		const struct exai_range *r = &ps->r[i];
		if (r->proto != EXAI_PROTO_ANY && r->proto != proto)
			continue;
		if (port >= r->lo && port <= r->hi)
			return r->rule;
	}
	return -1;
}

/* The egress verdict for a destination whose longest LPM match is @v (NULL: none) with port
 * set @ps: an enum exai_reason; *rule gets the rule index when a rule allows it, else -1.
 * The floor comes first, then DNS (port 53 only to resolvers), then the rules. */
static inline int exai_decide(const struct exai_lpm_val *v, const struct exai_portset *ps, __u8 proto,
			      __u16 port, int *rule)
{
	*rule = -1;
	if (v && (v->flags & EXAI_F_FLOOR))
		return EXAI_R_DENY_FLOOR;
	if (port == 53 && (proto == EXAI_PROTO_TCP || proto == EXAI_PROTO_UDP))
		return v && (v->flags & EXAI_F_RESOLVER) ? EXAI_R_DNS_ALLOW : EXAI_R_DENY_DNS;
	if (!v || !ps)
		return EXAI_R_DENY_DEFAULT;
	int r = exai_portset_match(ps, proto, port);
	if (r < 0)
		return EXAI_R_DENY_DEFAULT;
	*rule = r;
	return EXAI_R_RULE;
}

#endif /* EXAI_BPF_EGRESS_H */
