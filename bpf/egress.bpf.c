/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * egress.bpf.c: the egress policy datapath, two TC clsact programs on the host side of a VM's
 * tap or veth. exai_egress runs on the device's ingress hook (packets leaving the guest),
 * exai_ingress on its egress hook (packets towards the guest). Default deny both ways.
 * Map layouts: egress.h. Model: docs/formats/policy.md.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "egress.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A map pinned by name under the device's directory (so that a later process finds it). */
#define PINNED_MAP(NAME, TYPE, N, K, V)                                                            \
	struct {                                                                                   \
		__uint(type, TYPE);                                                                \
		__uint(max_entries, N);                                                            \
		__type(key, K);                                                                    \
		__type(value, V);                                                                  \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} NAME SEC(".maps")

/* A map of one map whose slot user space fills with a table built whole (egress.h). */
#define TABLE_SLOT(NAME, INNER)                                                                    \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                                          \
		__uint(max_entries, 1);                                                            \
		__type(key, __u32);                                                                \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
		__array(values, INNER);                                                            \
	} NAME SEC(".maps")

/* The inner maps' shapes: one LPM trie per family; the IPv4 direct table (its size varies). */
#define INNER_MAP(TAG, TYPE, N, KSZ, VSZ, FLAGS)                                                   \
	struct TAG {                                                                               \
		__uint(type, TYPE);                                                                \
		__uint(max_entries, N);                                                            \
		__uint(key_size, KSZ);                                                             \
		__uint(value_size, VSZ);                                                           \
		__uint(map_flags, FLAGS);                                                          \
	}
INNER_MAP(lpm4_trie, BPF_MAP_TYPE_LPM_TRIE, EXAI_LPM_MAX, sizeof(struct exai_lpm4_key), sizeof(struct exai_lpm_val),
	  BPF_F_NO_PREALLOC);
INNER_MAP(lpm6_trie, BPF_MAP_TYPE_LPM_TRIE, EXAI_LPM_MAX, sizeof(struct exai_lpm6_key), sizeof(struct exai_lpm_val),
	  BPF_F_NO_PREALLOC);
INNER_MAP(dir4_table, BPF_MAP_TYPE_ARRAY, 256, sizeof(__u32), sizeof(struct exai_dir_chunk), BPF_F_INNER_MAP);

PINNED_MAP(exai_cfg, BPF_MAP_TYPE_ARRAY, 1, __u32, struct exai_cfg);
TABLE_SLOT(exai_lpm4, struct lpm4_trie);
TABLE_SLOT(exai_lpm6, struct lpm6_trie);
TABLE_SLOT(exai_dir4, struct dir4_table); /* used instead of the IPv4 trie when present */
PINNED_MAP(exai_sets, BPF_MAP_TYPE_ARRAY, 2 * EXAI_MAX_SETS, __u32, struct exai_portset);
PINNED_MAP(exai_rules, BPF_MAP_TYPE_ARRAY, 2 * EXAI_MAX_RULES, __u32, struct exai_rule_info);
PINNED_MAP(exai_cnt, BPF_MAP_TYPE_PERCPU_ARRAY, EXAI_CNT_SLOTS, __u32, struct exai_counter);
PINNED_MAP(exai_ct, BPF_MAP_TYPE_LRU_HASH, EXAI_CT_ENTRIES, struct exai_ct_key, struct exai_ct_val);
PINNED_MAP(exai_fqdn, BPF_MAP_TYPE_HASH, EXAI_FQDN_ENTRIES, struct exai_fqdn_key, struct exai_fqdn_val);
PINNED_MAP(exai_bucket, BPF_MAP_TYPE_ARRAY, 1, __u32, struct exai_bucket);
PINNED_MAP(exai_note, BPF_MAP_TYPE_ARRAY, 1, __u32, struct exai_note); /* two per CPU: the loader sizes it */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EXAI_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exai_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EXAI_DNS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exai_dns SEC(".maps");

#define ETH_P_8021AD_ 0x88A8
#define IPPROTO_ICMPV6_ 58
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

union ct_key_words {
	struct exai_ct_key k;
	__u64 w[sizeof(struct exai_ct_key) / 8];
};

static __always_inline int ct_key_eq(const union ct_key_words *a, const union ct_key_words *b)
{
	__u64 d = 0;
	for (int i = 0; i < (int)(sizeof(a->w) / 8); i++)
		d |= a->w[i] ^ b->w[i];
	return d == 0;
}

/* What the parser learnt of one packet. Ports in network order. */
struct pkt {
	__u8 family; /* 0: not IP */
	__u8 proto;  /* IPPROTO_* as on the wire */
	__u8 hop;    /* TTL / hop limit */
	__u8 icmp_type;
	__u8 tcp_flags;
	__u8 pad[3];
	__u16 sport, dport;
	__u32 l4off;
	__u8 src[16];
	__u8 dst[16];
};

struct l4hdr { /* the first 8 bytes of TCP, UDP, ICMP and ICMPv6 */
	union {
		struct {
			__be16 sport, dport;
		};
		struct {
			__u8 type, code;
			__be16 csum, id, seq;
		};
	};
};

static __always_inline void count_n(__u32 slot, __u64 packets, __u64 bytes)
{
	struct exai_counter *c = bpf_map_lookup_elem(&exai_cnt, &slot);
	if (c) {
		c->packets += packets;
		c->bytes += bytes;
	}
}

static __always_inline void count(__u32 slot, __u32 len)
{
	count_n(slot, 1, len);
}

#define barrier() asm volatile("" ::: "memory")

/* Moves the note's pending counts into exai_cnt (egress.h: "seq" odd meanwhile). The counts of a
 * rule of a policy no longer active (@id) are dropped: nothing reports them any more. */
static __always_inline void note_flush(struct exai_note *n, __u32 id)
{
	if (n->slot < EXAI_CNT_RULE_BASE || n->policy_id == id) {
		*(volatile __u16 *)&n->seq = n->seq + 1;
		barrier();
		count_n(n->slot, n->packets, n->bytes);
		barrier();
		n->packets = 0;
		n->bytes = 0;
		barrier();
		*(volatile __u16 *)&n->seq = n->seq + 1;
	} else {
		n->packets = 0;
		n->bytes = 0;
	}
}

static __always_inline int bucket_take(const struct exai_cfg *cfg)
{
	__u32 k = 0;
	__u64 interval = cfg->ev_interval_ns, burst = cfg->ev_burst_ns;
	struct exai_bucket *b = bpf_map_lookup_elem(&exai_bucket, &k);
	if (!b || !interval)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	int ok = 0;
	bpf_spin_lock(&b->lock);
	__u64 credit = b->credit_ns + (now - b->last_ns);
	if (credit > burst)
		credit = burst;
	b->last_ns = now;
	if (credit >= interval) {
		credit -= interval;
		ok = 1;
	}
	b->credit_ns = credit;
	bpf_spin_unlock(&b->lock);
	return ok;
}

static __always_inline int deny(struct __sk_buff *skb, const struct exai_cfg *cfg, const struct pkt *p, __u32 reason,
				__u8 dir)
{
	count(reason, skb->len);
	if (!cfg || !bucket_take(cfg)) {
		count(EXAI_R_EVENTS_DROPPED, 0);
		return TC_ACT_SHOT;
	}
	struct exai_event *e = bpf_ringbuf_reserve(&exai_events, sizeof(*e), 0);
	if (!e) {
		count(EXAI_R_EVENTS_DROPPED, 0);
		return TC_ACT_SHOT;
	}
	e->time_ns = bpf_ktime_get_boot_ns();
	e->ifindex = skb->ifindex;
	e->rule = reason;
	e->reason = (__u8)reason;
	e->dir = dir;
	e->family = p->family;
	e->proto = p->proto;
	e->sport = bpf_ntohs(p->sport);
	e->dport = bpf_ntohs(p->dport);
	e->len = skb->len > 0xffff ? 0xffff : (__u16)skb->len;
	e->pad = 0;
	__builtin_memcpy(e->src, p->src, 16);
	__builtin_memcpy(e->dst, p->dst, 16);
	bpf_ringbuf_submit(e, 0);
	return TC_ACT_SHOT;
}

/* Parses Ethernet (with up to two VLAN tags), IPv4/IPv6 (extension headers, fragments) and the
 * first bytes of the transport header. Returns -1 when allowed as link traffic (ARP), else a
 * deny reason, or EXAI_R_RULE (0) when @p is an IP packet to decide on.
 * The common headers are read in place (direct packet access); when they reach past the
 * linear part of the packet, NEED_PULL asks the caller to pull PULL_BYTES in and parse again
 * (@pulled). IPv6 extension headers, rare, are read through bpf_skb_load_bytes. */
#define PULL_BYTES 128
#define NEED_PULL 100
#define SHORT() (!pulled && (__u32)(skb->data_end - skb->data) < skb->len ? NEED_PULL : EXAI_R_DENY_MALFORMED)
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p, struct l4hdr *l4, int pulled)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 off = 14;

	if (data + 14 > end)
		return SHORT();
	__be16 proto = *(__be16 *)(data + 12);
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD_))
			break;
		if (data + off + 4 > end)
			return SHORT();
		proto = *(__be16 *)(data + off + 2);
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_ARP))
		return -1;
	int ext = 0;
	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 *ip = data + off;
		if ((void *)(ip + 20) > end)
			return SHORT();
		__u32 ihl = (ip[0] & 0xf) * 4;
		__u32 tot = bpf_ntohs(*(__be16 *)(ip + 2));
		if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || off + tot > skb->len)
			return EXAI_R_DENY_MALFORMED;
		if (*(__be16 *)(ip + 6) & bpf_htons(0x1fff))
			return EXAI_R_DENY_FRAGMENT;
		p->family = 4;
		p->proto = ip[9];
		p->hop = ip[8];
		__builtin_memcpy(p->src, ip + 12, 4);
		__builtin_memcpy(p->dst, ip + 16, 4);
		off += ihl;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		__u8 *ip6 = data + off;
		if ((void *)(ip6 + 40) > end)
			return SHORT();
		__u32 plen = bpf_ntohs(*(__be16 *)(ip6 + 4));
		if ((ip6[0] >> 4) != 6 || (plen && off + 40 + plen > skb->len))
			return EXAI_R_DENY_MALFORMED;
		p->family = 6;
		p->hop = ip6[7];
		__builtin_memcpy(p->src, ip6 + 8, 16);
		__builtin_memcpy(p->dst, ip6 + 24, 16);
		off += 40;
		__u8 nh = ip6[6];
		for (int i = 0; i < 6; i++) {
			__u8 h[8];
			if (nh != 0 && nh != 43 && nh != 44 && nh != 60 && nh != 51)
				break;
			ext = 1;
			if (bpf_skb_load_bytes(skb, off, h, sizeof(h)) < 0)
				return EXAI_R_DENY_MALFORMED;
			if (nh == 44) { /* fragment header: offset in the top 13 bits of bytes 2-3 */
				if (((h[2] << 8) | h[3]) & 0xfff8)
					return EXAI_R_DENY_FRAGMENT;
				off += 8;
			} else if (nh == 51) {
				off += (h[1] + 2) * 4;
			} else {
				off += (h[1] + 1) * 8;
			}
			nh = h[0];
		}
		if (nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51)
			return EXAI_R_DENY_MALFORMED; /* too many extension headers */
		p->proto = nh;
	} else {
		return EXAI_R_DENY_ETHERTYPE;
	}
	p->l4off = off;
	__u32 need;
	if (p->proto == IPPROTO_TCP)
		need = 20;
	else if (p->proto == IPPROTO_UDP || p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6_)
		need = sizeof(*l4);
	else
		return EXAI_R_RULE;
	if (!ext && off <= 14 + 8 + 60) { /* in place */
		__u8 *t = data + off;
		if (need == 20) {
			if ((void *)(t + 20) > end)
				return SHORT();
			if ((t[12] >> 4) < 5)
				return EXAI_R_DENY_MALFORMED;
			p->tcp_flags = t[13];
		} else if ((void *)(t + sizeof(*l4)) > end) {
			return SHORT();
		}
		__builtin_memcpy(l4, t, sizeof(*l4));
	} else {
		__u8 t[20];
		if (bpf_skb_load_bytes(skb, off, t, need == 20 ? 20 : sizeof(*l4)) < 0 ||
		    (need == 20 && (t[12] >> 4) < 5))
			return EXAI_R_DENY_MALFORMED;
		p->tcp_flags = need == 20 ? t[13] : 0;
		__builtin_memcpy(l4, t, sizeof(*l4));
	}
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		p->sport = l4->sport;
		p->dport = l4->dport;
	} else {
		p->icmp_type = l4->type;
	}
	return EXAI_R_RULE;
}

static __always_inline int is_echo_request(const struct pkt *p)
{
	return (p->proto == IPPROTO_ICMP && p->icmp_type == 8) || (p->proto == IPPROTO_ICMPV6_ && p->icmp_type == 128);
}

static __always_inline int is_echo_reply(const struct pkt *p)
{
	return (p->proto == IPPROTO_ICMP && p->icmp_type == 0) || (p->proto == IPPROTO_ICMPV6_ && p->icmp_type == 129);
}

/* Link-scope destination: fe80::/10 or ff02::/16. Such packets are never forwarded. */
static __always_inline int link_scope6(const __u8 *a)
{
	return (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || (a[0] == 0xff && (a[1] & 0x0f) == 2);
}

/* Neighbour discovery and MLD the link needs, in one direction (egress: from the guest). */
static __always_inline int ndp_ok(const struct pkt *p, int egress)
{
	if (p->family != 6 || p->proto != IPPROTO_ICMPV6_)
		return 0;
	__u8 t = p->icmp_type;
	if (t == 135 || t == 136) /* NS, NA */
		return p->hop == 255;
	if (egress && t == 133) /* RS */
		return p->hop == 255 && link_scope6(p->dst);
	if (!egress && t == 134) /* RA */
		return p->hop == 255;
	if (egress && (t == 130 || t == 131 || t == 132 || t == 143)) /* MLD */
		return link_scope6(p->dst);
	return 0;
}

static __always_inline void ct_key_egress(struct exai_ct_key *k, const struct pkt *p, const struct l4hdr *l4)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->proto = p->proto;
	__builtin_memcpy(k->gaddr, p->src, 16);
	__builtin_memcpy(k->raddr, p->dst, 16);
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		k->gport = p->sport;
		k->rport = p->dport;
	} else if (is_echo_request(p)) {
		k->gport = l4->id;
	}
}

#define NEXT -1

/* Bench-only ablation (bench-policy-ablate in tests/bench builds variants with -DEXAI_ABLATE=N):
 * the egress program stops at point N, to measure what each part costs under traffic. */
#ifdef EXAI_ABLATE
#define ABLATE(n)                                                                                  \
	do {                                                                                       \
		if (EXAI_ABLATE == (n))                                                            \
			return TC_ACT_OK;                                                          \
	} while (0)
#else
#define ABLATE(n) ((void)0)
#endif

/* What both directions do first: parse, allow ARP and the neighbour discovery the link needs,
 * drop what cannot be parsed. NEXT when @p is an IP packet for the policy to decide on. */
static __always_inline int link_layer(struct __sk_buff *skb, struct pkt *p, struct l4hdr *l4,
				      struct exai_cfg **cfg, __u8 dir)
{
	__u32 k0 = 0;

	__builtin_memset(p, 0, sizeof(*p));
	__builtin_memset(l4, 0, sizeof(*l4));
	*cfg = bpf_map_lookup_elem(&exai_cfg, &k0);
	if (dir == EXAI_DIR_EGRESS)
		ABLATE(1);
	int reason = parse(skb, p, l4, 0);
	if (reason == NEED_PULL) {
		bpf_skb_pull_data(skb, skb->len < PULL_BYTES ? skb->len : PULL_BYTES);
		__builtin_memset(p, 0, sizeof(*p));
		reason = parse(skb, p, l4, 1);
	}
	if (reason < 0) {
		count(EXAI_R_ARP, skb->len);
		return TC_ACT_OK;
	}
	if (reason != EXAI_R_RULE)
		return deny(skb, *cfg, p, reason, dir);
	if (ndp_ok(p, dir == EXAI_DIR_EGRESS)) {
		count(EXAI_R_NDP, skb->len);
		return TC_ACT_OK;
	}
	return NEXT;
}

static __always_inline int ct_expired(const struct exai_cfg *cfg, const struct exai_ct_val *v, __u8 proto, __u64 now)
{
	/* @now may be older than last_ns: another CPU can renew the entry between this CPU's clock
	 * read and the compare; such an entry is fresh, not idle for 2^64 ns. */
	return now > v->last_ns &&
	       now - v->last_ns > (__u64)exai_ct_timeout(cfg->ct_timeout_s, proto, v->flags) * 1000000000ull;
}

/* Notes the flow @key on this CPU's note @n (may be NULL) with its verdict (counter @slot under
 * policy @id) at jiffies @j, when the flow's conntrack idle timeout in state @flags outlives the
 * note (egress.h); else empties the note, whose flow may have changed state. */
static __always_inline void note_set(const struct exai_cfg *cfg, struct exai_note *n, const union ct_key_words *key,
				     __u64 flags, __u32 j, __u32 id, __u32 slot)
{
	if (!n)
		return;
	__u32 as = exai_ct_timeout(cfg->ct_timeout_s, key->k.proto, flags) >= EXAI_NOTE_MIN_TIMEOUT_S ? id : 0;
	/* The pending counts stay while the slot does (bounded: a busy flow comes here every
	 * EXAI_NOTE_JIFFIES at least). */
	if (n->packets && (n->slot != slot || n->policy_id != as || n->packets > (1u << 30)))
		note_flush(n, id);
	*(union ct_key_words *)&n->key = *key;
	n->jiffies = j;
	n->policy_id = as;
	n->slot = (__u16)slot;
}

/* The flow's conntrack entry after an allowed packet: made, renewed, or marked closing; and this
 * CPU's note @n (may be NULL) of the flow with its verdict (counter @slot under policy @id) at
 * jiffies @j. */
static __always_inline void ct_note_egress(const struct exai_cfg *cfg, const struct pkt *p, const union ct_key_words *key,
					   struct exai_note *n, __u64 now, __u32 j, __u32 id, __u32 slot)
{
	__u8 tf = p->tcp_flags;
	__u64 add = (tf & TCP_FIN ? EXAI_CT_FIN_OUT : 0) | (tf & TCP_RST ? EXAI_CT_RST : 0), flags = add;
	struct exai_ct_val *v = bpf_map_lookup_elem(&exai_ct, &key->k);
	/* A new flow: none yet, the last one idle past its timeout, or a fresh SYN on a closing one. */
	if (!v || ct_expired(cfg, v, p->proto, now) ||
	    ((tf & (TCP_SYN | TCP_ACK)) == TCP_SYN && (v->flags & (EXAI_CT_RST | EXAI_CT_FIN_OUT | EXAI_CT_FIN_IN)))) {
		struct exai_ct_val nv = { .last_ns = now, .policy_id = id, .flags = add };
		bpf_map_update_elem(&exai_ct, &key->k, &nv, BPF_ANY);
	} else {
		v->last_ns = now;
		if (v->policy_id != id)
			v->policy_id = id; /* the flow, decided again, is admitted by this policy too */
		flags |= v->flags;
		if (add & ~v->flags)
			__sync_fetch_and_or(&v->flags, add);
	}
	note_set(cfg, n, key, flags, j, id, slot);
}

/* The note's hit test, shared by all paths: the policy (a note is empty under none), the age,
 * and room to count. */
static __always_inline int note_hit(const struct exai_note *n, __u32 id, __u32 j)
{
	return n && id && n->policy_id == id && j - n->jiffies < EXAI_NOTE_JIFFIES && n->bytes < (1ull << 40);
}

/* The note's hit for the parsed packet @p of flow @key (not one that opens or closes
 * something): counted in the note. */
static __always_inline int note_take(struct exai_note *n, __u32 id, __u32 j, const struct pkt *p,
				     const union ct_key_words *key, __u32 len)
{
	if (!note_hit(n, id, j) || (p->tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST)) ||
	    !ct_key_eq((const union ct_key_words *)&n->key, key))
		return 0;
	n->packets++;
	n->bytes += len;
	return 1;
}

/* This CPU's note of direction @dir. */
static __always_inline struct exai_note *note_of(__u8 dir)
{
	__u32 k = EXAI_NOTE_INDEX(bpf_get_smp_processor_id(), dir);
	return bpf_map_lookup_elem(&exai_note, &k);
}

/* The common case first, in few instructions: an untagged IPv4 TCP or UDP packet with a plain
 * 20-byte header, no fragment, no SYN/FIN/RST, of the flow this CPU's note of direction @dir
 * holds (egress: the guest is the source; ingress: the destination). It is checked as parse()
 * would (version, lengths, TCP data offset) and compared with the note's key as ct_key_egress()
 * or exai_ingress would build it; anything else, or a miss, takes the full path (-1). */
static __always_inline int note_fast(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u8 *ip = data + 14;
	if ((void *)(ip + 20 + 20) > end || *(__be16 *)(data + 12) != bpf_htons(ETH_P_IP) || ip[0] != 0x45 ||
	    (*(__be16 *)(ip + 6) & bpf_htons(0x3fff)))
		return -1;
	__u32 tot = bpf_ntohs(*(__be16 *)(ip + 2));
	__u8 proto = ip[9];
	__u8 *t = ip + 20;
	if (tot < 20 || 14 + tot > skb->len)
		return -1;
	if (proto == IPPROTO_TCP) {
		if ((t[12] >> 4) < 5 || (t[13] & (TCP_SYN | TCP_FIN | TCP_RST)))
			return -1;
	} else if (proto != IPPROTO_UDP) {
		return -1;
	}
	ABLATE(8);
#if defined(EXAI_ABLATE) && EXAI_ABLATE == 11
	__u32 c0 = 0;
	struct exai_cfg *c = bpf_map_lookup_elem(&exai_cfg, &c0);
	return c && c->policy_id ? TC_ACT_OK : -1;
#endif
	struct exai_note *n = note_of(dir);
#if defined(EXAI_ABLATE) && (EXAI_ABLATE == 7 || EXAI_ABLATE == 9)
	if (!n || (EXAI_ABLATE == 7 && !note_hit(n, n->policy_id, (__u32)bpf_jiffies64())) || !n->policy_id)
		return -1;
#else
	__u32 k0 = 0;
	struct exai_cfg *cfg = bpf_map_lookup_elem(&exai_cfg, &k0);
	if (!cfg || !note_hit(n, cfg->policy_id, (__u32)bpf_jiffies64()))
		return -1;
#endif
	/* struct exai_ct_key as words: family, proto, ports | guest address | 0 | remote | 0 */
	const __u64 *w = (const __u64 *)&n->key;
	__u64 sp = *(__u16 *)t, dp = *(__u16 *)(t + 2), sa = *(__u32 *)(ip + 12), da = *(__u32 *)(ip + 16);
	__u64 w0 = 4 | (__u64)proto << 8 | (dir == EXAI_DIR_EGRESS ? sp << 16 | dp << 32 : dp << 16 | sp << 32);
	if (w[0] != w0 || w[1] != (dir == EXAI_DIR_EGRESS ? sa : da) || w[2] ||
	    w[3] != (dir == EXAI_DIR_EGRESS ? da : sa) || w[4])
		return -1;
	ABLATE(9);
	n->packets++;
	n->bytes += skb->len;
	return TC_ACT_OK;
}

/* The verdict of the tables for a packet of the guest to @addr (of @family), protocol @proto
 * (IPPROTO_*) and destination port @port (host order): an enum exai_reason, and in *@slot the
 * counter slot of an allowed one (the rule's, or the reason's). */
static __always_inline int table_verdict(__u8 family, const __u8 *addr, __u8 proto, __u16 port, __u32 *slot)
{
	__u32 k0 = 0;
	*slot = EXAI_R_DENY_DEFAULT;
	/* The table decides the bank: its entries name port sets of the bank it was built for. */
	struct exai_lpm_val *v = NULL, dv;
	void *dir = family == 4 ? bpf_map_lookup_elem(&exai_dir4, &k0) : NULL;
	if (dir) {
		__u32 c = addr[0];
		struct exai_dir_chunk *ch = bpf_map_lookup_elem(dir, &c);
		__u16 e = ch ? ch->e[addr[1]] : 0;
		if (e & EXAI_DIR_NEXT) {
			c = e & ~EXAI_DIR_NEXT;
			ch = bpf_map_lookup_elem(dir, &c);
			e = ch ? ch->e[addr[2]] : 0;
			if (e & EXAI_DIR_NEXT) {
				c = e & ~EXAI_DIR_NEXT;
				ch = bpf_map_lookup_elem(dir, &c);
				e = ch ? ch->e[addr[3]] : 0;
			}
		}
		if ((e & (EXAI_DIR_NEXT | EXAI_DIR_MATCH)) == EXAI_DIR_MATCH) {
			dv.set = e & 0xfff;
			dv.flags = (e >> 12) & 3;
			v = &dv;
		}
	} else {
		void *trie = family == 4 ? bpf_map_lookup_elem(&exai_lpm4, &k0) : bpf_map_lookup_elem(&exai_lpm6, &k0);
		if (!trie)
			return EXAI_R_DENY_NO_POLICY;
		if (family == 4) {
			struct exai_lpm4_key key = { .prefixlen = 32 };
			__builtin_memcpy(key.addr, addr, 4);
			v = bpf_map_lookup_elem(trie, &key);
		} else {
			struct exai_lpm6_key key = { .prefixlen = 128 };
			__builtin_memcpy(key.addr, addr, 16);
			v = bpf_map_lookup_elem(trie, &key);
		}
	}
	struct exai_portset *ps = NULL;
	__u32 bank = 0;
	if (v) {
		__u32 set = v->set;
		if (set >= 2 * EXAI_MAX_SETS)
			return EXAI_R_DENY_DEFAULT;
		bank = set >= EXAI_MAX_SETS;
		ps = bpf_map_lookup_elem(&exai_sets, &set);
	}
	int rule;
	int reason = exai_decide(v, ps, proto == IPPROTO_ICMPV6_ ? EXAI_PROTO_ICMP : proto, port, &rule);
	*slot = rule >= 0 && rule < EXAI_MAX_RULES ? EXAI_CNT_RULE_BASE + bank * EXAI_MAX_RULES + rule : (__u32)reason;
	return reason;
}

SEC("tc")
int exai_egress(struct __sk_buff *skb)
{
	struct pkt p;
	struct l4hdr l4;
	struct exai_cfg *cfg;
#ifdef EXAI_ABLATE /* the steps of the full path are measured without the fast one in front */
	if (EXAI_ABLATE >= 6 && EXAI_ABLATE != 10)
		return note_fast(skb, EXAI_DIR_EGRESS) == TC_ACT_OK ? TC_ACT_OK : TC_ACT_UNSPEC;
#else
	if (note_fast(skb, EXAI_DIR_EGRESS) == TC_ACT_OK)
		return TC_ACT_OK;
#endif
	int verdict = link_layer(skb, &p, &l4, &cfg, EXAI_DIR_EGRESS);
	if (verdict != NEXT)
		return verdict;
	ABLATE(2);
	__u32 id = cfg ? *(volatile __u32 *)&cfg->policy_id : 0;
	if (!id)
		return deny(skb, cfg, &p, EXAI_R_DENY_NO_POLICY, EXAI_DIR_EGRESS);

	/* The flows that have replies to let in. The packets of the flow this CPU last allowed,
	 * under the same policy and within EXAI_NOTE_JIFFIES, get its verdict again at once and are
	 * counted in the note, unless they open or close something (a new policy has a new id, so
	 * nothing stale is reused). The one cache line of the note is all this path touches beyond
	 * the packet and exai_cfg; jiffies is a load (the verifier inlines bpf_jiffies64). */
	int tracked = p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP || is_echo_request(&p);
	union ct_key_words key;
	struct exai_note *note = NULL;
	__u64 now = 0;
	__u32 j = 0;
	if (tracked) {
		ct_key_egress(&key.k, &p, &l4);
		ABLATE(4);
		note = note_of(EXAI_DIR_EGRESS);
#ifdef EXAI_ABLATE
		if (EXAI_ABLATE == 5)
			return note && note->policy_id == id ? TC_ACT_OK : TC_ACT_UNSPEC;
#endif
		j = (__u32)bpf_jiffies64();
		int hit = note_take(note, id, j, &p, &key, skb->len);
		ABLATE(3);
		if (hit)
			return TC_ACT_OK;
		now = bpf_ktime_get_coarse_ns();
	}

	__u32 slot;
	int reason = table_verdict(p.family, p.dst, p.proto, bpf_ntohs(p.dport), &slot);
	if (reason >= EXAI_R_FIRST_DENY)
		return deny(skb, cfg, &p, reason, EXAI_DIR_EGRESS);
	/* Allowed by a rule: counted once, in the rule's slot (user space sums them for "rule"). */
	count(slot, skb->len);
	/* Remember the flow so that its replies may come in (and when it was last seen, and how far
	 * TCP has got in closing it). */
	if (tracked)
		ct_note_egress(cfg, &p, &key, note, now, j, id, slot);
	return TC_ACT_OK;
}

/* The live conntrack entry of @k (NULL when there is none or it has expired: then it goes). */
static __always_inline struct exai_ct_val *ct_live(const struct exai_cfg *cfg, const struct exai_ct_key *k,
						   __u64 now)
{
	struct exai_ct_val *v = bpf_map_lookup_elem(&exai_ct, k);
	if (v && ct_expired(cfg, v, k->proto, now)) {
		bpf_map_delete_elem(&exai_ct, k);
		return NULL;
	}
	return v;
}

/* An inbound ICMP error quoting a packet the guest sent: its inner header names the flow. */
static __always_inline int icmp_error_for_guest(struct __sk_buff *skb, const struct exai_cfg *cfg,
						const struct pkt *p)
{
	struct exai_ct_key k;
	__u32 off = p->l4off + 8;
	__u8 inner_proto;

	__builtin_memset(&k, 0, sizeof(k));
	if (p->family == 4) {
		if (p->icmp_type != 3 && p->icmp_type != 11 && p->icmp_type != 12)
			return 0;
		__u8 ip[20];
		if (bpf_skb_load_bytes(skb, off, ip, sizeof(ip)) < 0 || (ip[0] >> 4) != 4)
			return 0;
		inner_proto = ip[9];
		__builtin_memcpy(k.gaddr, ip + 12, 4);
		__builtin_memcpy(k.raddr, ip + 16, 4);
		off += (ip[0] & 0xf) * 4;
	} else {
		if (p->icmp_type < 1 || p->icmp_type > 4)
			return 0;
		__u8 ip6[40];
		if (bpf_skb_load_bytes(skb, off, ip6, sizeof(ip6)) < 0 || (ip6[0] >> 4) != 6)
			return 0;
		inner_proto = ip6[6];
		__builtin_memcpy(k.gaddr, ip6 + 8, 16);
		__builtin_memcpy(k.raddr, ip6 + 24, 16);
		off += 40;
	}
	struct l4hdr in;
	if (bpf_skb_load_bytes(skb, off, &in, 8) < 0)
		return 0;
	k.family = p->family;
	k.proto = inner_proto;
	if (inner_proto == IPPROTO_TCP || inner_proto == IPPROTO_UDP) {
		k.gport = in.sport;
		k.rport = in.dport;
	} else if ((inner_proto == IPPROTO_ICMP && in.type == 8) || (inner_proto == IPPROTO_ICMPV6_ && in.type == 128)) {
		k.gport = in.id;
	} else {
		return 0;
	}
	return ct_live(cfg, &k, bpf_ktime_get_coarse_ns()) != NULL;
}

SEC("tc")
int exai_ingress(struct __sk_buff *skb)
{
	struct pkt p;
	struct l4hdr l4;
	struct exai_cfg *cfg;
#if !defined(EXAI_ABLATE) || EXAI_ABLATE != 10 /* 10: the replies without their note */
	if (note_fast(skb, EXAI_DIR_INGRESS) == TC_ACT_OK)
		return TC_ACT_OK;
#endif
	int verdict = link_layer(skb, &p, &l4, &cfg, EXAI_DIR_INGRESS);
	if (verdict != NEXT)
		return verdict;
	if (!cfg)
		return deny(skb, cfg, &p, EXAI_R_DENY_INBOUND, EXAI_DIR_INGRESS);

	/* A reply: the guest is the destination, so the key is the packet reversed. */
	union ct_key_words kw;
	struct exai_ct_key *key = &kw.k;
	__builtin_memset(key, 0, sizeof(*key));
	key->family = p.family;
	key->proto = p.proto;
	__builtin_memcpy(key->gaddr, p.dst, 16);
	__builtin_memcpy(key->raddr, p.src, 16);
	if (p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP) {
		key->gport = p.dport;
		key->rport = p.sport;
	} else if (is_echo_reply(&p)) {
		key->gport = l4.id;
	} else if (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6_) {
		if (icmp_error_for_guest(skb, cfg, &p)) {
			count(EXAI_R_ICMP_ERROR, skb->len);
			return TC_ACT_OK;
		}
		return deny(skb, cfg, &p, EXAI_R_DENY_INBOUND, EXAI_DIR_INGRESS);
	} else {
		return deny(skb, cfg, &p, EXAI_R_DENY_INBOUND, EXAI_DIR_INGRESS);
	}
	/* The flow this CPU last let in, as on the egress side: its conntrack entry was live when
	 * noted and outlives the note (egress.h), so the note's age stands for the entry's. */
	__u32 id = *(volatile __u32 *)&cfg->policy_id, j = (__u32)bpf_jiffies64();
	struct exai_note *note = note_of(EXAI_DIR_INGRESS);
#if defined(EXAI_ABLATE) && EXAI_ABLATE == 10
	note = NULL;
#endif
	if (note_take(note, id, j, &p, &kw, skb->len))
		return TC_ACT_OK;
	__u64 now = bpf_ktime_get_coarse_ns();
	struct exai_ct_val *v = ct_live(cfg, key, now);
	if (!v || !id)
		return deny(skb, cfg, &p, EXAI_R_DENY_INBOUND, EXAI_DIR_INGRESS);
	if (v->policy_id != id) {
		/* Admitted under another policy: the flow stays only if the active one admits it too
		 * (as the guest's next packet would be judged), so a swap that denies a flow stops its
		 * replies at once, and the flow is forgotten. */
		__u32 slot;
		if (table_verdict(p.family, p.src, p.proto, bpf_ntohs(p.sport), &slot) >= EXAI_R_FIRST_DENY) {
			bpf_map_delete_elem(&exai_ct, key);
			return deny(skb, cfg, &p, EXAI_R_DENY_INBOUND, EXAI_DIR_INGRESS);
		}
		v->policy_id = id;
	}
	__u8 tf = p.tcp_flags;
	__u64 add = EXAI_CT_REPLIED | (tf & TCP_FIN ? EXAI_CT_FIN_IN : 0) | (tf & TCP_RST ? EXAI_CT_RST : 0);
	__u64 flags = v->flags | add;
	if (add & ~v->flags)
		__sync_fetch_and_or(&v->flags, add);
	if (v->last_ns != now)
		v->last_ns = now;
	count(EXAI_R_REPLY, skb->len);
	/* DNS answers are never noted: each one is copied below when the policy asks for it. */
	if (p.proto != IPPROTO_UDP || p.sport != bpf_htons(53))
		note_set(cfg, note, &kw, flags, j, id, EXAI_R_REPLY);
	/* A DNS answer over UDP for the guest (only resolvers can send one: DNS goes nowhere else):
	 * a copy for user space, which learns the addresses of matchPattern names from it. */
	if ((cfg->flags & EXAI_CFG_SNOOP_DNS) && p.proto == IPPROTO_UDP && p.sport == bpf_htons(53)) {
		__u32 n = bpf_ntohs(l4.id); /* the UDP length */
		n = n > 8 ? n - 8 : 0;
		if (n > EXAI_DNS_MAX)
			n = EXAI_DNS_MAX;
		struct exai_dns_msg *m = n >= 12 ? bpf_ringbuf_reserve(&exai_dns, sizeof(*m), 0) : NULL;
		if (m) {
			m->len = n;
			m->pad = 0;
			if (bpf_skb_load_bytes(skb, p.l4off + 8, m->data, n) == 0)
				bpf_ringbuf_submit(m, 0);
			else
				bpf_ringbuf_discard(m, 0);
		}
	}
	return TC_ACT_OK;
}
