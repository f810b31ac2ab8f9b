/* SPDX-License-Identifier: Apache-2.0 */
/* test-policy-datapath: the TC programs on crafted frames through BPF_PROG_TEST_RUN, after a
 * real exai_policy_apply onto a veth device in a private network namespace: IPv4/IPv6 with
 * TCP, UDP, ICMP; except; port ranges; fragments; truncated frames; VLAN; ARP; NDP; replies vs
 * new inbound flows; the floor; DNS; counters; deny events (OCSF) and their rate limit; atomic
 * replacement; a failed apply leaving the attached policy as it was. Needs root and BPF. */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include "policy/policy-internal.h"
#include "test.h"

#define DEV "exai-ut0"
static char *bpffs;
static int prog_eg = -1, prog_in = -1;

/* ---- frames ----------------------------------------------------------------------------- */

struct fr {
	int vlans;        /* 0, 1 or 2 tags */
	uint16_t ethertype; /* 0: from family */
	const char *src, *dst;
	uint8_t proto;
	uint16_t sport, dport;
	uint8_t icmp_type;
	uint16_t icmp_id;
	uint8_t tcp_flags;
	uint16_t frag;    /* IPv4 frag_off field (host order) */
	int v6frag;       /* IPv6: a fragment header with offset v6frag - 1 (8-byte units); 0: none */
	uint8_t hop;      /* 0: 64 */
	uint8_t ihl;      /* IPv4 header length field (0: 5) */
	size_t cut;       /* truncate the frame to this many bytes (0: no) */
	const void *inner; /* ICMP error: quoted packet */
	size_t ninner;
};

static size_t build(uint8_t *b, const struct fr *f)
{
	size_t n = 0;
	uint8_t s[16] = { 0 }, d[16] = { 0 };
	int fam = strchr(f->dst, ':') ? 6 : 4;
	inet_pton(fam == 4 ? AF_INET : AF_INET6, f->src, s);
	inet_pton(fam == 4 ? AF_INET : AF_INET6, f->dst, d);
	memset(b, 0, 2048);
	memcpy(b, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	n = 12;
	for (int i = 0; i < f->vlans; i++) {
		uint16_t tpid = htons(i == 0 && f->vlans == 2 ? 0x88a8 : 0x8100), tci = htons(100 + i);
		memcpy(b + n, &tpid, 2);
		memcpy(b + n + 2, &tci, 2);
		n += 4;
	}
	uint16_t et = htons(f->ethertype ? f->ethertype : fam == 4 ? 0x0800 : 0x86dd);
	memcpy(b + n, &et, 2);
	n += 2;
	size_t ip = n;
	uint8_t l4[1600] = { 0 };
	size_t l4n = 8;
	if (f->proto == IPPROTO_TCP) {
		l4n = 20;
		l4[12] = 5 << 4;
		l4[13] = f->tcp_flags;
	}
	if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) {
		uint16_t sp = htons(f->sport), dp = htons(f->dport);
		memcpy(l4, &sp, 2);
		memcpy(l4 + 2, &dp, 2);
	} else {
		uint16_t id = htons(f->icmp_id);
		l4[0] = f->icmp_type;
		memcpy(l4 + 4, &id, 2);
	}
	if (f->inner) {
		memcpy(l4 + 8, f->inner, f->ninner);
		l4n = 8 + f->ninner;
	}
	if (f->proto == IPPROTO_UDP) {
		uint16_t ulen = htons((uint16_t)l4n);
		memcpy(l4 + 4, &ulen, 2);
	}
	if (fam == 4) {
		uint16_t tot = htons((uint16_t)(20 + l4n)), fo = htons(f->frag);
		b[n] = (uint8_t)(0x40 | (f->ihl ? f->ihl : 5));
		memcpy(b + n + 2, &tot, 2);
		memcpy(b + n + 6, &fo, 2);
		b[n + 8] = f->hop ? f->hop : 64;
		b[n + 9] = f->proto;
		memcpy(b + n + 12, s, 4);
		memcpy(b + n + 16, d, 4);
		n += 20;
	} else {
		size_t ext = f->v6frag ? 8 : 0;
		uint16_t pl = htons((uint16_t)(ext + l4n));
		b[n] = 0x60;
		memcpy(b + n + 4, &pl, 2);
		b[n + 6] = ext ? 44 : f->proto;
		b[n + 7] = f->hop ? f->hop : 64;
		memcpy(b + n + 8, s, 16);
		memcpy(b + n + 24, d, 16);
		n += 40;
		if (ext) {
			uint16_t off = htons((uint16_t)((f->v6frag - 1) << 3) | 1);
			b[n] = f->proto;
			memcpy(b + n + 2, &off, 2);
			n += 8;
		}
	}
	(void)ip;
	memcpy(b + n, l4, l4n);
	n += l4n;
	if (n < 60 && !f->cut)
		n = 60; /* Ethernet minimum: padding must not confuse the parser */
	return f->cut ? f->cut : n;
}

static int run(int prog, const struct fr *f)
{
	uint8_t b[2048];
	size_t n = build(b, f);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = b, .data_size_in = (__u32)n, .repeat = 1);
	int r = bpf_prog_test_run_opts(prog, &o);
	if (r < 0) {
		fprintf(stderr, "bpf_prog_test_run_opts: %s\n", strerror(-r));
		return -1;
	}
	return (int)o.retval;
}

#define OUT(...) run(prog_eg, &(struct fr){ __VA_ARGS__ })
#define IN(...) run(prog_in, &(struct fr){ __VA_ARGS__ })
#define PASS TC_ACT_OK
#define DROP TC_ACT_SHOT
#define G4 "10.0.0.2"
#define G6 "fd10::2"

/* ---- policy helpers ---------------------------------------------------------------------- */

static const char *bundle1 =
	"{\"version\":1,\"tenant\":\"acme\",\"resolvers\":[\"10.99.0.53\",\"2001:db8::53\"],\"egress\":["
	"{\"name\":\"web\",\"to\":[{\"cidr\":\"10.99.0.0/24\",\"except\":[\"10.99.0.128/25\"]}],"
	" \"ports\":[{\"protocol\":\"TCP\",\"port\":8080,\"endPort\":8090}]},"
	"{\"name\":\"ping\",\"to\":[{\"cidr\":\"10.99.0.0/24\"}],\"ports\":[{\"protocol\":\"ICMP\"}]},"
	"{\"name\":\"v6udp\",\"to\":[{\"cidr\":\"2001:db8::/32\"}],\"ports\":[{\"protocol\":\"UDP\",\"port\":5000}]},"
	"{\"name\":\"v6tls\",\"to\":[{\"cidr\":\"2001:db8::/32\",\"except\":[\"2001:db8:bad::/48\"]}],"
	" \"ports\":[{\"protocol\":\"TCP\",\"port\":443}]},"
	"{\"name\":\"meta\",\"to\":[{\"cidr\":\"169.254.169.254/32\"}]}]}";

static const char *bundle2 = /* the swap: web moves to port 9000, ping is gone */
	"{\"version\":1,\"tenant\":\"acme\",\"egress\":["
	"{\"name\":\"web2\",\"to\":[{\"cidr\":\"10.99.0.0/24\"}],\"ports\":[{\"protocol\":\"TCP\",\"port\":9000}]}]}";

static exai_policy *policy(const char *json)
{
	exai_policy *p = NULL;
	EXAI_OPTS(exai_policy_parse_opts, o, .flags = EXAI_POLICY_ALLOW_UNSIGNED);
	CHECK_OK(exai_policy_parse(&p, NULL, json, strlen(json), &o));
	return p;
}

static int apply(const char *json, uint32_t rate, uint32_t burst)
{
	exai_policy *p = policy(json);
	if (!p)
		return -1;
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs, .event_rate = rate, .event_burst = burst);
	int r = exai_policy_apply(NULL, DEV, p, &o);
	exai_policy_free(p);
	return r;
}

static int open_prog(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/exai/%s/%s", bpffs, DEV, name);
	return bpf_obj_get(path);
}

static uint64_t counter(const char *name)
{
	struct exai_policy_counter *c = NULL;
	size_t n = 0;
	uint64_t v = UINT64_MAX;
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	CHECK_OK(exai_policy_stats(&c, &n, NULL, NULL, DEV, &o));
	for (size_t i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			v = c[i].packets;
	exai_free(c);
	return v;
}

/* The map in the slot of the map of maps @name (an fd), or -1 when the slot is empty. */
static int table_in(const char *name)
{
	char path[512];
	uint32_t inner_id = 0, slot = 0;
	snprintf(path, sizeof(path), "%s/exai/%s/%s", bpffs, DEV, name);
	int outer = bpf_obj_get(path);
	if (outer < 0)
		return -1;
	int r = bpf_map_lookup_elem(outer, &slot, &inner_id);
	close(outer);
	return r < 0 || !inner_id ? -1 : bpf_map_get_fd_by_id(inner_id);
}

/* The entry of the IPv4 direct table for @addr, or -1 without a table. */
static int dir4_entry(const char *addr)
{
	uint8_t a[4];
	struct exai_dir_chunk c;
	int fd = table_in("exai_dir4");
	if (fd < 0 || inet_pton(AF_INET, addr, a) != 1)
		return -1;
	uint32_t k = a[0];
	uint16_t e = bpf_map_lookup_elem(fd, &k, &c) == 0 ? c.e[a[1]] : 0;
	for (int level = 2; level < 4 && (e & EXAI_DIR_NEXT); level++) {
		k = e & ~EXAI_DIR_NEXT;
		e = bpf_map_lookup_elem(fd, &k, &c) == 0 ? c.e[a[level]] : 0;
	}
	close(fd);
	return e;
}

static bool slot_used(const char *name)
{
	int fd = table_in(name);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* ---- events ------------------------------------------------------------------------------ */

struct seen {
	int n;
	char last[2048];
};

static int emitted; /* events the context's audit sink received */

static int on_event(void *ud, const char *json)
{
	struct seen *s = ud;
	s->n++;
	snprintf(s->last, sizeof(s->last), "%s", json);
	return 0;
}

static int emit_cb(void *data, json_t *ev)
{
	(void)data;
	if (json_integer_value(json_object_get(ev, "class_uid")) == 4001)
		emitted++;
	return 0;
}

static int drain(exai_ctx *ctx, struct seen *s)
{
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	return exai_policy_events(ctx, DEV, &o, 0, on_event, s);
}

/* ---- the tests --------------------------------------------------------------------------- */

static void ipv4(void)
{
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 40000, .dport = 8080) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 40000, .dport = 8090) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 40000, .dport = 8091) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 40000, .dport = 8079) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_UDP, .sport = 40000, .dport = 8080) == DROP);
	/* except: 10.99.0.128/25 is carved out of web, but ping still covers it */
	CHECK(OUT(.src = G4, .dst = "10.99.0.200", .proto = IPPROTO_TCP, .sport = 40000, .dport = 8080) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.200", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 7) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.98.0.1", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 7) == DROP);
	CHECK(OUT(.src = G4, .dst = "192.0.2.1", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080) == DROP);
	/* the floor, even though rule "meta" names it */
	CHECK(OUT(.src = G4, .dst = "169.254.169.254", .proto = IPPROTO_TCP, .sport = 1, .dport = 80) == DROP);
	/* DNS only to the resolver */
	CHECK(OUT(.src = G4, .dst = "10.99.0.53", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.53", .proto = IPPROTO_TCP, .sport = 5353, .dport = 53) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53) == DROP);
	CHECK(OUT(.src = G4, .dst = "8.8.8.8", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53) == DROP);
	/* other L4 protocols: only rules without ports admit them */
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = 132) == DROP);
}

static void ipv6(void)
{
	CHECK(OUT(.src = G6, .dst = "2001:db8::1", .proto = IPPROTO_TCP, .sport = 40000, .dport = 443) == PASS);
	CHECK(OUT(.src = G6, .dst = "2001:db8:bad::1", .proto = IPPROTO_TCP, .sport = 40000, .dport = 443) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db8:bad::1", .proto = IPPROTO_UDP, .sport = 40000, .dport = 5000) == PASS);
	CHECK(OUT(.src = G6, .dst = "2001:db8::1", .proto = IPPROTO_UDP, .sport = 40000, .dport = 5001) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db8::1", .proto = 58, .icmp_type = 128, .icmp_id = 9) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db9::1", .proto = IPPROTO_TCP, .sport = 40000, .dport = 443) == DROP);
	CHECK(OUT(.src = G6, .dst = "fe80::1", .proto = IPPROTO_TCP, .sport = 40000, .dport = 443) == DROP);
	CHECK(OUT(.src = G6, .dst = "fd00:ec2::254", .proto = IPPROTO_TCP, .sport = 40000, .dport = 80) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db8::53", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53) == PASS);
	CHECK(OUT(.src = G6, .dst = "2001:db8::54", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53) == DROP);
	/* neighbour discovery: NS/NA with hop limit 255 pass; anything else does not */
	CHECK(OUT(.src = "fe80::2", .dst = "ff02::1:ff00:1", .proto = 58, .icmp_type = 135, .hop = 255) == PASS);
	CHECK(OUT(.src = "fe80::2", .dst = "ff02::1:ff00:1", .proto = 58, .icmp_type = 135, .hop = 64) == DROP);
	CHECK(IN(.src = "fe80::1", .dst = "fe80::2", .proto = 58, .icmp_type = 136, .hop = 255) == PASS);
	CHECK(OUT(.src = "fe80::2", .dst = "2001:db8::9", .proto = 58, .icmp_type = 133, .hop = 255) == DROP);
}

static void fragments_truncation_vlan_arp(void)
{
	uint64_t frag0 = counter("deny-fragment"), mal0 = counter("deny-malformed"), et0 = counter("deny-ethertype");
	/* IPv4: first fragment (MF set, offset 0) decided by its ports; later fragments dropped */
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080, .frag = 0x2000) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080, .frag = 0x2010) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080, .frag = 0x0010) == DROP);
	/* IPv6 fragment header */
	CHECK(OUT(.src = G6, .dst = "2001:db8::1", .proto = IPPROTO_TCP, .sport = 1, .dport = 443, .v6frag = 1) == PASS);
	CHECK(OUT(.src = G6, .dst = "2001:db8::1", .proto = IPPROTO_TCP, .sport = 1, .dport = 443, .v6frag = 5) == DROP);
	CHECK(counter("deny-fragment") == frag0 + 3);
	/* truncated (the kernel's test run refuses frames shorter than their IP header, so the cuts
	 * are in the transport header, the IPv6 fragment header and a VLAN tag), and a bad IHL */
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080, .cut = 14 + 20 + 10) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db8::1", .proto = IPPROTO_TCP, .sport = 1, .dport = 443, .cut = 14 + 40 + 12) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db8::1", .proto = IPPROTO_UDP, .sport = 1, .dport = 5000, .v6frag = 1, .cut = 14 + 40 + 4) == DROP);
	CHECK(OUT(.vlans = 1, .src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .dport = 8080, .cut = 16) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080, .ihl = 4) == DROP);
	CHECK(counter("deny-malformed") == mal0 + 5);
	/* VLAN: one 802.1Q tag, and QinQ */
	CHECK(OUT(.vlans = 1, .src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080) == PASS);
	CHECK(OUT(.vlans = 2, .src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080) == PASS);
	CHECK(OUT(.vlans = 1, .src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 22) == DROP);
	CHECK(OUT(.vlans = 2, .src = G6, .dst = "2001:db8:bad::1", .proto = IPPROTO_TCP, .sport = 1, .dport = 443) == DROP);
	/* ARP both ways; an unknown EtherType neither way */
	CHECK(OUT(.ethertype = 0x0806, .src = G4, .dst = "10.99.0.5") == PASS);
	CHECK(IN(.ethertype = 0x0806, .src = "10.99.0.5", .dst = G4) == PASS);
	CHECK(OUT(.ethertype = 0x88b5, .src = G4, .dst = "10.99.0.5") == DROP);
	CHECK(IN(.ethertype = 0x88b5, .src = "10.99.0.5", .dst = G4) == DROP);
	CHECK(counter("deny-ethertype") == et0 + 2);
	CHECK(counter("arp") >= 2);
}

static void conntrack(void)
{
	/* A new inbound flow is refused; after the guest opens it, the replies pass. */
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_TCP, .sport = 8080, .dport = 41000) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_TCP, .sport = 41000, .dport = 8080) == PASS);
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_TCP, .sport = 8080, .dport = 41000) == PASS);
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_TCP, .sport = 8080, .dport = 41001) == DROP);
	CHECK(IN(.src = "10.99.0.7", .dst = G4, .proto = IPPROTO_TCP, .sport = 8080, .dport = 41000) == DROP);
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_UDP, .sport = 8080, .dport = 41000) == DROP);
	/* a denied egress packet creates no state */
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_TCP, .sport = 41002, .dport = 22) == DROP);
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_TCP, .sport = 22, .dport = 41002) == DROP);
	/* UDP and ICMP echo, IPv6 */
	CHECK(OUT(.src = G6, .dst = "2001:db8::7", .proto = IPPROTO_UDP, .sport = 42000, .dport = 5000) == PASS);
	CHECK(IN(.src = "2001:db8::7", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 42000) == PASS);
	CHECK(IN(.src = "2001:db8::8", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 42000) == DROP);
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_ICMP, .icmp_type = 0, .icmp_id = 77) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 77) == PASS);
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_ICMP, .icmp_type = 0, .icmp_id = 77) == PASS);
	CHECK(IN(.src = "10.99.0.6", .dst = G4, .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 77) == DROP);
	/* an ICMP error quoting the guest's flow passes; one quoting another flow does not */
	uint8_t q[28] = { 0x45, 0, 0, 40, 0, 0, 0, 0, 64, IPPROTO_TCP, 0, 0, 10, 0, 0, 2, 10, 99, 0, 6,
			  0xa0, 0x28 /* 41000 */, 0x1f, 0x90 /* 8080 */ };
	CHECK(IN(.src = "10.99.0.1", .dst = G4, .proto = IPPROTO_ICMP, .icmp_type = 3, .inner = q, .ninner = 28) == PASS);
	q[21] = 0x29;
	CHECK(IN(.src = "10.99.0.1", .dst = G4, .proto = IPPROTO_ICMP, .icmp_type = 3, .inner = q, .ninner = 28) == DROP);
	CHECK(counter("reply") == 3);
	CHECK(counter("icmp-error") == 1);
	CHECK(counter("deny-inbound") >= 8);
}

/* Sets the conntrack idle timeouts of the attached policy (seconds; the loader writes the
 * defaults at every apply). */
static uint32_t set_ct_timeouts(uint32_t opening, uint32_t established, uint32_t closing, uint32_t other)
{
	char path[512];
	struct exai_cfg cfg;
	uint32_t k = 0;
	snprintf(path, sizeof(path), "%s/exai/%s/exai_cfg", bpffs, DEV);
	int fd = bpf_obj_get(path);
	CHECK(fd >= 0 && bpf_map_lookup_elem(fd, &k, &cfg) == 0);
	uint32_t was = cfg.ct_timeout_s[EXAI_CT_T_ESTABLISHED];
	cfg.ct_timeout_s[EXAI_CT_T_OPENING] = opening;
	cfg.ct_timeout_s[EXAI_CT_T_ESTABLISHED] = established;
	cfg.ct_timeout_s[EXAI_CT_T_CLOSING] = closing;
	cfg.ct_timeout_s[EXAI_CT_T_OTHER] = other;
	CHECK(bpf_map_update_elem(fd, &k, &cfg, BPF_ANY) == 0);
	close(fd);
	return was;
}

#define SYN 0x02
#define FIN 0x01
#define RST 0x04
#define ACK 0x10
#define TOUT(sp, fl) OUT(.src = G4, .dst = "10.99.0.20", .proto = IPPROTO_TCP, .sport = (sp), .dport = 8080, .tcp_flags = (fl))
#define TIN(dp, fl) IN(.src = "10.99.0.20", .dst = G4, .proto = IPPROTO_TCP, .sport = 8080, .dport = (dp), .tcp_flags = (fl))

/* Flows expire: a TCP flow after its idle timeout for its state (opening, established, closing
 * after RST or FIN both ways), UDP after its own; the guest's next packet starts afresh. */
static void conntrack_expiry(void)
{
	CHECK(set_ct_timeouts(1, 3, 1, 1) == 21600); /* the default was there */
	/* 41100: closed with FIN both ways */
	CHECK(TOUT(41100, SYN) == PASS && TIN(41100, SYN | ACK) == PASS);
	CHECK(TOUT(41100, FIN | ACK) == PASS && TIN(41100, FIN | ACK) == PASS && TOUT(41100, ACK) == PASS);
	/* 41101: reset by the remote (the RST itself passes) */
	CHECK(TOUT(41101, SYN) == PASS && TIN(41101, SYN | ACK) == PASS && TIN(41101, RST) == PASS);
	/* 41102: never answered */
	CHECK(TOUT(41102, SYN) == PASS);
	/* 41103: half-closed by the guest, still established */
	CHECK(TOUT(41103, SYN) == PASS && TIN(41103, SYN | ACK) == PASS && TOUT(41103, FIN | ACK) == PASS);
	/* 41104: reset, then the same ports opened again: a new, established flow */
	CHECK(TOUT(41104, SYN) == PASS && TIN(41104, SYN | ACK) == PASS && TIN(41104, RST) == PASS);
	CHECK(TOUT(41104, SYN) == PASS && TIN(41104, SYN | ACK) == PASS);
	/* UDP */
	CHECK(OUT(.src = G6, .dst = "2001:db8::9", .proto = IPPROTO_UDP, .sport = 42100, .dport = 5000) == PASS);
	CHECK(IN(.src = "2001:db8::9", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 42100) == PASS);

	usleep(1600 * 1000);
	CHECK(TIN(41100, ACK) == DROP);
	CHECK(TIN(41101, ACK) == DROP);
	CHECK(TIN(41102, SYN | ACK) == DROP);
	CHECK(TIN(41103, ACK) == PASS);
	CHECK(TIN(41104, ACK) == PASS);
	CHECK(IN(.src = "2001:db8::9", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 42100) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db8::9", .proto = IPPROTO_UDP, .sport = 42100, .dport = 5000) == PASS);
	CHECK(IN(.src = "2001:db8::9", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 42100) == PASS);
	/* the expired entries are gone from the table, the live ones stay */
	char path[512];
	snprintf(path, sizeof(path), "%s/exai/%s/exai_ct", bpffs, DEV);
	int fd = bpf_obj_get(path);
	struct exai_ct_key k = { .family = 4, .proto = IPPROTO_TCP, .gport = htons(41100), .rport = htons(8080) };
	struct exai_ct_val v;
	inet_pton(AF_INET, G4, k.gaddr);
	inet_pton(AF_INET, "10.99.0.20", k.raddr);
	CHECK(fd >= 0 && bpf_map_lookup_elem(fd, &k, &v) < 0);
	k.gport = htons(41103);
	CHECK(bpf_map_lookup_elem(fd, &k, &v) == 0 && (v.flags & (EXAI_CT_REPLIED | EXAI_CT_FIN_OUT)) ==
							      (EXAI_CT_REPLIED | EXAI_CT_FIN_OUT));
	/* an entry the other CPU renewed after this CPU read the clock (last_ns ahead of its now)
	 * is fresh: the reply passes and the entry stays */
	struct exai_ct_key u = { .family = 6, .proto = IPPROTO_UDP, .gport = htons(42100), .rport = htons(5000) };
	inet_pton(AF_INET6, G6, u.gaddr);
	inet_pton(AF_INET6, "2001:db8::9", u.raddr);
	CHECK(bpf_map_lookup_elem(fd, &u, &v) == 0);
	v.last_ns += 5000000000ull;
	CHECK(bpf_map_update_elem(fd, &u, &v, BPF_EXIST) == 0);
	CHECK(IN(.src = "2001:db8::9", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 42100) == PASS);
	CHECK(bpf_map_lookup_elem(fd, &u, &v) == 0);
	if (fd >= 0)
		close(fd);
	set_ct_timeouts(60, 21600, 10, 60);
}

/* DNS answers (see test-policy-fqdn.c): api.example.test CNAME edge.cdn.test A 10.50.0.7 TTL 30;
 * api.other.test A 10.50.0.8 TTL 30. */
static const uint8_t dns_api_example[] = {
	0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x61, 0x70, 0x69, 0x07, 0x65,
	0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0x03, 0x61,
	0x70, 0x69, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x05,
	0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x0f, 0x04, 0x65, 0x64, 0x67, 0x65, 0x03, 0x63, 0x64, 0x6e, 0x04,
	0x74, 0x65, 0x73, 0x74, 0x00, 0x04, 0x65, 0x64, 0x67, 0x65, 0x03, 0x63, 0x64, 0x6e, 0x04, 0x74, 0x65, 0x73,
	0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x04, 0x0a, 0x32, 0x00, 0x07
};
static const uint8_t dns_api_other[] = {
	0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x03, 0x61, 0x70, 0x69, 0x05, 0x6f,
	0x74, 0x68, 0x65, 0x72, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0x03, 0x61, 0x70, 0x69,
	0x05, 0x6f, 0x74, 0x68, 0x65, 0x72, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
	0x00, 0x1e, 0x00, 0x04, 0x0a, 0x32, 0x00, 0x08
};

/* A DNS answer: @name type A (@alen 4) or AAAA (16) at @addr, TTL 30; with @txt, a TXT record of
 * 3 x 200 bytes in the additional section (an EDNS-sized answer, over 512 bytes). */
static size_t dns_answer(uint8_t *m, const char *name, const uint8_t *addr, size_t alen, bool txt)
{
	const uint8_t head[] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, txt };
	size_t n = sizeof(head);
	memcpy(m, head, n);
	for (const char *l = name; *l;) {
		size_t len = strcspn(l, ".");
		m[n++] = (uint8_t)len;
		memcpy(m + n, l, len);
		n += len;
		l += len + (l[len] == '.');
	}
	m[n++] = 0;
	uint8_t type = alen == 4 ? 1 : 28;
	const uint8_t tail[] = { 0, type, 0, 1, 0xc0, 0x0c, 0, type, 0, 1, 0, 0, 0, 30, 0, (uint8_t)alen };
	memcpy(m + n, tail, sizeof(tail));
	n += sizeof(tail);
	memcpy(m + n, addr, alen);
	n += alen;
	if (txt) {
		const uint8_t rr[] = { 0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 30, 603 >> 8, 603 & 0xff };
		memcpy(m + n, rr, sizeof(rr));
		n += sizeof(rr);
		for (int i = 0; i < 3; i++) {
			m[n++] = 200;
			memset(m + n, 'x', 200);
			n += 200;
		}
	}
	return n;
}

#define DNS_OUT() OUT(.src = G4, .dst = "10.99.0.53", .proto = IPPROTO_UDP, .sport = 5353, .dport = 53)
#define DNS_IN(m) IN(.src = "10.99.0.53", .dst = G4, .proto = IPPROTO_UDP, .sport = 53, .dport = 5353, .inner = (m), .ninner = sizeof(m))
#define TLS(a, port) OUT(.src = G4, .dst = (a), .proto = IPPROTO_TCP, .sport = 40001, .dport = (port))

/* matchPattern: the answers the guest gets from its resolver teach the rule its addresses;
 * they are enforced at once (the live tables), and by every apply for their TTL plus the grace
 * period. */
static void match_pattern(exai_ctx *ctx)
{
	static const char *bundle = "{\"version\":1,\"tenant\":\"acme\",\"resolvers\":[\"10.99.0.53\"],\"egress\":["
				    "{\"name\":\"api\",\"toFQDNs\":[{\"matchPattern\":\"*.example.test\"}],"
				    "\"ports\":[{\"protocol\":\"TCP\",\"port\":443}]}]}";
	exai_policy *p = policy(bundle), *plain = policy(bundle1);
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	CHECK_OK(exai_policy_apply(ctx, DEV, p, &o));
	CHECK_RC(exai_policy_learn_dns(ctx, DEV, plain, &o, 0), -ENOMSG);
	CHECK(exai_policy_learn_dns(ctx, DEV, p, &o, 0) == 0);
	CHECK(TLS("10.50.0.7", 443) == DROP);

	CHECK(DNS_OUT() == PASS);
	CHECK(DNS_IN(dns_api_example) == PASS);
	CHECK(exai_policy_learn_dns(ctx, DEV, p, &o, 100) == 1);
	/* enforced at once: the learnt /32 went into the live direct table (spare chunks for
	 * 10.50.0.0/24), naming the pattern rule's port set; nothing else opened */
	CHECK(TLS("10.50.0.7", 443) == PASS);
	CHECK(TLS("10.50.0.7", 80) == DROP && TLS("10.50.0.6", 443) == DROP && TLS("10.50.1.7", 443) == DROP);
	/* a second address in the same /24 reuses those chunks; an IPv6 one goes into the live trie */
	uint8_t m[1024], a4[4] = { 10, 50, 0, 9 }, a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x77 };
	a6[15] = 7;
	size_t mn = dns_answer(m, "b.example.test", a4, 4, false);
	CHECK(IN(.src = "10.99.0.53", .dst = G4, .proto = IPPROTO_UDP, .sport = 53, .dport = 5353, .inner = m,
		 .ninner = mn) == PASS);
	mn = dns_answer(m, "c.example.test", a6, 16, false);
	CHECK(IN(.src = "10.99.0.53", .dst = G4, .proto = IPPROTO_UDP, .sport = 53, .dport = 5353, .inner = m,
		 .ninner = mn) == PASS);
	CHECK(exai_policy_learn_dns(ctx, DEV, p, &o, 100) == 2);
	CHECK(TLS("10.50.0.9", 443) == PASS && TLS("10.50.0.7", 443) == PASS && TLS("10.50.0.8", 443) == DROP);
	CHECK(OUT(.src = G6, .dst = "2001:db8:77::7", .proto = IPPROTO_TCP, .sport = 40001, .dport = 443) == PASS);
	CHECK(OUT(.src = G6, .dst = "2001:db8:77::8", .proto = IPPROTO_TCP, .sport = 40001, .dport = 443) == DROP);
	/* an answer longer than 512 bytes (EDNS) teaches too */
	a4[3] = 10;
	mn = dns_answer(m, "d.example.test", a4, 4, true);
	CHECK(mn > 600);
	CHECK(IN(.src = "10.99.0.53", .dst = G4, .proto = IPPROTO_UDP, .sport = 53, .dport = 5353, .inner = m,
		 .ninner = mn) == PASS);
	CHECK(exai_policy_learn_dns(ctx, DEV, p, &o, 100) == 1);
	CHECK(TLS("10.50.0.10", 443) == PASS);
	CHECK_OK(exai_policy_apply(ctx, DEV, p, &o));
	CHECK(TLS("10.50.0.7", 443) == PASS);
	CHECK(TLS("10.50.0.7", 80) == DROP);

	/* the same answer again teaches nothing new; a name outside the pattern nothing at all */
	CHECK(DNS_IN(dns_api_example) == PASS && DNS_IN(dns_api_other) == PASS);
	CHECK(exai_policy_learn_dns(ctx, DEV, p, &o, 100) == 0);
	CHECK_OK(exai_policy_apply(ctx, DEV, p, &o));
	CHECK(TLS("10.50.0.7", 443) == PASS && TLS("10.50.0.8", 443) == DROP);
	/* the next apply is due when the address expires: TTL 30 s + grace 60 s */
	uint32_t ms = 0;
	CHECK_OK(exai_policy_refresh_in(&ms, ctx, DEV, &o));
	CHECK(ms > 80000 && ms <= 90000);

	/* a policy without the pattern forgets what it taught */
	CHECK_OK(exai_policy_apply(ctx, DEV, plain, &o));
	CHECK(TLS("10.50.0.7", 443) == DROP);
	CHECK_OK(exai_policy_refresh_in(&ms, ctx, DEV, &o));
	CHECK(ms == UINT32_MAX);
	exai_policy_free(p);
	exai_policy_free(plain);
}

static void counters_and_events(exai_ctx *ctx)
{
	struct seen s = { 0 };
	drain(ctx, &s); /* what the tests above left */
	uint64_t web0 = counter("rule:web"), def0 = counter("deny-default");
	CHECK(web0 >= 5);
	CHECK(OUT(.src = G4, .dst = "10.99.0.9", .proto = IPPROTO_TCP, .sport = 1, .dport = 8081) == PASS);
	CHECK(OUT(.src = G4, .dst = "192.0.2.77", .proto = IPPROTO_TCP, .sport = 4242, .dport = 25) == DROP);
	CHECK(counter("rule:web") == web0 + 1);
	CHECK(counter("deny-default") == def0 + 1);
	memset(&s, 0, sizeof(s));
	int before = emitted;
	CHECK(drain(ctx, &s) == 1);
	CHECK(s.n == 1 && emitted == before + 1);
	CHECK(strstr(s.last, "\"class_uid\":4001") && strstr(s.last, "\"ip\":\"192.0.2.77\"") &&
	      strstr(s.last, "\"port\":25") && strstr(s.last, "\"deny-default\"") && strstr(s.last, "\"Outbound\""));
}

static void rate_limit(exai_ctx *ctx)
{
	/* 5 events per second with a burst of 3: a flood of 50 yields a handful. */
	CHECK_OK(apply(bundle1, 5, 3));
	struct seen s = { 0 };
	drain(ctx, &s);
	uint64_t dropped0 = counter("events-dropped");
	for (int i = 0; i < 50; i++)
		CHECK(OUT(.src = G4, .dst = "192.0.2.8", .proto = IPPROTO_UDP, .sport = (uint16_t)(1000 + i), .dport = 9) == DROP);
	memset(&s, 0, sizeof(s));
	int n = drain(ctx, &s);
	CHECK(n >= 1 && n <= 5);
	CHECK(counter("events-dropped") >= dropped0 + 45);
	CHECK_OK(apply(bundle1, 0, 0));
}

/* The note of CPU @cpu for direction @dir (bpf/egress.h: struct exai_note). */
static struct exai_note note_read(uint32_t cpu, int dir)
{
	char path[512];
	struct exai_note n = { 0 };
	snprintf(path, sizeof(path), "%s/exai/%s/exai_note", bpffs, DEV);
	int fd = bpf_obj_get(path);
	uint32_t k = EXAI_NOTE_INDEX(cpu, dir);
	if (fd < 0 || bpf_map_lookup_elem(fd, &k, &n) < 0)
		n.packets = UINT32_MAX;
	if (fd >= 0)
		close(fd);
	return n;
}

/* The packets pending in the egress note of CPU @cpu, and its counter slot. */
static uint64_t note_pending(uint32_t cpu, uint32_t *slot)
{
	struct exai_note n = note_read(cpu, EXAI_DIR_EGRESS);
	*slot = n.slot;
	return n.packets;
}

/* The packets of an established flow are counted in the CPU's note, not in exai_cnt, until the
 * note moves to another rule: the counters stay exact through the hits, the move, and a policy
 * switch (the old policy's pending counts never reach the new policy's counters). */
static void note_counts(void)
{
	cpu_set_t one, was;
	CHECK(sched_getaffinity(0, sizeof(was), &was) == 0);
	CPU_ZERO(&one);
	CPU_SET((int)sched_getcpu(), &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0); /* BPF_PROG_TEST_RUN runs on this CPU */
	uint32_t cpu = (uint32_t)sched_getcpu(), slot = 0;

	uint64_t web0 = counter("rule:web"), ping0 = counter("rule:ping"), rule0 = counter("rule");
	for (int i = 0; i < 10; i++)
		CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_TCP, .sport = 7, .dport = 8085, .tcp_flags = 0x10) ==
		      PASS);
	CHECK(note_pending(cpu, &slot) == 9); /* the first went through the tables */
	CHECK(slot >= EXAI_CNT_RULE_BASE);
	CHECK(counter("rule:web") == web0 + 10 && counter("rule") == rule0 + 10);
	/* the flow's non-first fragments, and its packets truncated or with a bad length, are still
	 * refused (the fast path takes only what the full parser would accept) */
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_TCP, .sport = 7, .dport = 8085, .tcp_flags = 0x10,
		  .frag = 1) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_TCP, .sport = 7, .dport = 8085, .tcp_flags = 0x10,
		  .cut = 50) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_TCP, .sport = 7, .dport = 8085, .tcp_flags = 0x10,
		  .ihl = 6) == DROP);
	CHECK(note_pending(cpu, &slot) == 9 && counter("rule:web") == web0 + 10);
	/* a SYN is never answered from the note; nor a flow of another rule, which moves the note */
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_TCP, .sport = 7, .dport = 8085, .tcp_flags = 0x02) ==
	      PASS);
	CHECK(note_pending(cpu, &slot) == 9 && counter("rule:web") == web0 + 11);
	for (int i = 0; i < 4; i++)
		CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 3) == PASS);
	CHECK(note_pending(cpu, &slot) == 3);
	CHECK(counter("rule:web") == web0 + 11 && counter("rule:ping") == ping0 + 4 && counter("rule") == rule0 + 15);

	/* the switch: the new policy's counters start at zero, and the pending packets of the old
	 * one stay out of them even when the old rule's bank is reused by the next policy */
	CHECK_OK(apply(bundle2, 0, 0));
	CHECK(counter("rule:web2") == 0);
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 3) == DROP);
	CHECK_OK(apply(bundle1, 0, 0));
	CHECK(counter("rule:ping") == 0 && counter("rule:web") == 0);
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 3) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.6", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 3) == PASS);
	CHECK(counter("rule:ping") == 2 && counter("rule:web") == 0);
	CHECK(sched_setaffinity(0, sizeof(was), &was) == 0);
}

static uint32_t policy_id_now(void)
{
	struct exai_policy_counter *c = NULL;
	size_t n = 0;
	uint32_t id = 0;
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	CHECK_OK(exai_policy_stats(&c, &n, &id, NULL, DEV, &o));
	exai_free(c);
	return id;
}

/* The conntrack entry of the guest's TCP flow from port @gport to 10.99.0.30:@rport (false: none). */
static bool ct_entry(uint16_t gport, uint16_t rport, struct exai_ct_val *v)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/exai/%s/exai_ct", bpffs, DEV);
	int fd = bpf_obj_get(path);
	struct exai_ct_key k = { .family = 4, .proto = IPPROTO_TCP, .gport = htons(gport), .rport = htons(rport) };
	inet_pton(AF_INET, G4, k.gaddr);
	inet_pton(AF_INET, "10.99.0.30", k.raddr);
	bool found = fd >= 0 && bpf_map_lookup_elem(fd, &k, v) == 0;
	if (fd >= 0)
		close(fd);
	return found;
}

#define ROUT(sp, dp, fl) OUT(.src = G4, .dst = "10.99.0.30", .proto = IPPROTO_TCP, .sport = (sp), .dport = (dp), .tcp_flags = (fl))
#define RIN(dp, sp, fl, ...) IN(.src = "10.99.0.30", .dst = G4, .proto = IPPROTO_TCP, .sport = (sp), .dport = (dp), .tcp_flags = (fl), __VA_ARGS__)

/* Replies to the guest's flows use a note of their own on each CPU: the answers of an established
 * flow skip conntrack, yet pass exactly when the full path would let them (the flow, its entry's
 * age, the policy), and are counted exactly. */
static void reply_note(void)
{
	cpu_set_t one, was;
	CHECK(sched_getaffinity(0, sizeof(was), &was) == 0);
	CPU_ZERO(&one);
	CPU_SET((int)sched_getcpu(), &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
	uint32_t cpu = (uint32_t)sched_getcpu(), id = policy_id_now();
	uint64_t r0 = counter("reply");

	/* hits: the first answer goes through conntrack, the next ten are counted in the note */
	CHECK(ROUT(7200, 8085, SYN) == PASS && RIN(7200, 8085, SYN | ACK) == PASS);
	for (int i = 0; i < 10; i++)
		CHECK(RIN(7200, 8085, ACK) == PASS);
	struct exai_note n = note_read(cpu, EXAI_DIR_INGRESS);
	CHECK(n.packets == 10 && n.slot == EXAI_R_REPLY && n.policy_id == id && n.key.gport == htons(7200));
	CHECK(counter("reply") == r0 + 11);
	/* what the full path refuses, the note does not let in: another port, another remote, a
	 * later fragment, a truncated frame, a bad header length */
	CHECK(RIN(7201, 8085, ACK) == DROP);
	CHECK(IN(.src = "10.99.0.31", .dst = G4, .proto = IPPROTO_TCP, .sport = 8085, .dport = 7200, .tcp_flags = ACK) == DROP);
	CHECK(RIN(7200, 8085, ACK, .frag = 1) == DROP);
	CHECK(RIN(7200, 8085, ACK, .cut = 50) == DROP);
	CHECK(RIN(7200, 8085, ACK, .ihl = 6) == DROP);
	CHECK(note_read(cpu, EXAI_DIR_INGRESS).packets == 10 && counter("reply") == r0 + 11);
	/* FIN and RST are never answered from the note: they mark the entry (and pass) */
	struct exai_ct_val v;
	CHECK(RIN(7200, 8085, FIN | ACK) == PASS);
	CHECK(ct_entry(7200, 8085, &v) && (v.flags & EXAI_CT_FIN_IN));
	CHECK(RIN(7200, 8085, RST) == PASS);
	CHECK(ct_entry(7200, 8085, &v) && (v.flags & EXAI_CT_RST));
	CHECK(RIN(7200, 8085, ACK) == PASS); /* closing, not expired */
	CHECK(note_read(cpu, EXAI_DIR_INGRESS).packets == 11 && counter("reply") == r0 + 14);

	/* IPv6 and ICMP echo replies, through the parser, use it too */
	CHECK(OUT(.src = G6, .dst = "2001:db8::30", .proto = IPPROTO_UDP, .sport = 7300, .dport = 5000) == PASS);
	for (int i = 0; i < 3; i++)
		CHECK(IN(.src = "2001:db8::30", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 7300) == PASS);
	n = note_read(cpu, EXAI_DIR_INGRESS);
	CHECK(n.key.family == 6 && n.key.gport == htons(7300) && n.packets == 13);
	CHECK(IN(.src = "2001:db8::31", .dst = G6, .proto = IPPROTO_UDP, .sport = 5000, .dport = 7300) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.30", .proto = IPPROTO_ICMP, .icmp_type = 8, .icmp_id = 71) == PASS);
	for (int i = 0; i < 3; i++)
		CHECK(IN(.src = "10.99.0.30", .dst = G4, .proto = IPPROTO_ICMP, .icmp_type = 0, .icmp_id = 71) == PASS);
	CHECK(IN(.src = "10.99.0.30", .dst = G4, .proto = IPPROTO_ICMP, .icmp_type = 0, .icmp_id = 72) == DROP);
	CHECK(note_read(cpu, EXAI_DIR_INGRESS).packets == 15 && counter("reply") == r0 + 20);

	/* a policy switch: under the new policy the note is not used; a flow the new policy admits
	 * too keeps its replies, one it denies loses them at once (and its entry) */
	CHECK(ROUT(7210, 8085, SYN) == PASS && RIN(7210, 8085, SYN | ACK) == PASS && RIN(7210, 8085, ACK) == PASS);
	CHECK_OK(apply(bundle1, 0, 0));
	uint32_t id2 = policy_id_now();
	CHECK(RIN(7210, 8085, ACK) == PASS);
	n = note_read(cpu, EXAI_DIR_INGRESS);
	CHECK(n.policy_id == id2 && n.packets == 0 && counter("reply") == r0 + 23);
	CHECK(ct_entry(7210, 8085, &v) && v.policy_id == id2);
	CHECK(RIN(7210, 8085, ACK) == PASS && note_read(cpu, EXAI_DIR_INGRESS).packets == 1);
	uint64_t in0 = counter("deny-inbound");
	CHECK_OK(apply(bundle2, 0, 0)); /* web2: port 9000 only */
	CHECK(RIN(7210, 8085, ACK) == DROP);
	CHECK(!ct_entry(7210, 8085, &v));
	CHECK(counter("deny-inbound") == in0 + 1 && counter("reply") == r0 + 24);
	/* and one opened under the new policy is noted again */
	CHECK(ROUT(7211, 9000, SYN) == PASS && RIN(7211, 9000, SYN | ACK) == PASS && RIN(7211, 9000, ACK) == PASS);
	CHECK(note_read(cpu, EXAI_DIR_INGRESS).packets == 1);
	CHECK_OK(apply(bundle1, 0, 0));

	/* expiry: a flow whose idle timeout is shorter than a note lives is not noted, and its entry
	 * expires as before; one with a longer timeout is, and its replies stop with the entry */
	set_ct_timeouts(1, 1, 1, 1);
	CHECK(ROUT(7220, 8085, SYN) == PASS && RIN(7220, 8085, SYN | ACK) == PASS && RIN(7220, 8085, ACK) == PASS);
	CHECK(note_read(cpu, EXAI_DIR_INGRESS).policy_id == 0);
	usleep(1300 * 1000);
	CHECK(RIN(7220, 8085, ACK) == DROP);
	set_ct_timeouts(EXAI_NOTE_MIN_TIMEOUT_S, EXAI_NOTE_MIN_TIMEOUT_S, EXAI_NOTE_MIN_TIMEOUT_S, EXAI_NOTE_MIN_TIMEOUT_S);
	CHECK(ROUT(7221, 8085, SYN) == PASS && RIN(7221, 8085, SYN | ACK) == PASS && RIN(7221, 8085, ACK) == PASS);
	CHECK(note_read(cpu, EXAI_DIR_INGRESS).policy_id == policy_id_now());
	usleep((EXAI_NOTE_MIN_TIMEOUT_S * 1000 + 300) * 1000);
	CHECK(RIN(7221, 8085, ACK) == DROP);
	CHECK(!ct_entry(7221, 8085, &v));
	set_ct_timeouts(60, 21600, 10, 60);
	CHECK(sched_setaffinity(0, sizeof(was), &was) == 0);
}

/* The floor's host addresses come from the namespace exai_policy_dev_opts::host_netns names. */
static void host_netns_floor(void)
{
	if (system("ip netns add exai-ut-host && ip -n exai-ut-host addr add 10.99.0.77/32 dev lo") != 0) {
		fprintf(stderr, "host_netns_floor: cannot make a network namespace, skipped\n");
		return;
	}
	exai_policy *p = policy(bundle1);
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	EXAI_OPTS(exai_policy_dev_opts, h, .bpffs = bpffs, .host_netns = "/run/netns/exai-ut-host");
	EXAI_OPTS(exai_policy_dev_opts, bad, .bpffs = bpffs, .host_netns = "/run/netns/exai-ut-none");
	CHECK_OK(exai_policy_apply(NULL, DEV, p, &o));
	CHECK(OUT(.src = G4, .dst = "10.99.0.77", .proto = IPPROTO_TCP, .sport = 2, .dport = 8080) == PASS);
	CHECK_OK(exai_policy_apply(NULL, DEV, p, &h));
	CHECK(OUT(.src = G4, .dst = "10.99.0.77", .proto = IPPROTO_TCP, .sport = 3, .dport = 8080) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.78", .proto = IPPROTO_TCP, .sport = 3, .dport = 8080) == PASS);
	CHECK_RC(exai_policy_apply(NULL, DEV, p, &bad), -ENOENT);
	CHECK(strstr(exai_errmsg(), "cannot enter the host's network namespace /run/netns/exai-ut-none") != NULL);
	CHECK(OUT(.src = G4, .dst = "10.99.0.77", .proto = IPPROTO_TCP, .sport = 4, .dport = 8080) == DROP);
	CHECK_OK(exai_policy_apply(NULL, DEV, p, &o));
	exai_policy_free(p);
	CHECK(system("ip netns del exai-ut-host") == 0);
}

static void atomic_replace_and_failures(void)
{
	struct exai_policy_counter *c = NULL;
	size_t n = 0;
	uint32_t id1 = 0, id2 = 0;
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	CHECK_OK(exai_policy_stats(&c, &n, &id1, NULL, DEV, &o));
	exai_free(c);

	/* a failed apply (bad operator override) leaves the policy as it was */
	exai_policy *p2 = policy(bundle2);
	const char *bad_floor[] = { "169.254.0.0/99", NULL };
	EXAI_OPTS(exai_policy_dev_opts, bo, .bpffs = bpffs, .floor_allow = bad_floor);
	CHECK_RC(exai_policy_apply(NULL, DEV, p2, &bo), -EINVAL);
	CHECK(strstr(exai_errmsg(), "floor override \"169.254.0.0/99\"") != NULL);
	CHECK_RC(exai_policy_apply(NULL, "exai-nodev9", p2, &o), -ENODEV);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080) == PASS);

	/* the swap: at once the old port is denied, the new one allowed */
	CHECK_OK(exai_policy_apply(NULL, DEV, p2, &o));
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 9000) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_ICMP, .icmp_type = 8) == DROP);
	CHECK_OK(exai_policy_stats(&c, &n, &id2, NULL, DEV, &o));
	CHECK(id2 > id1 && (id2 & 1) != (id1 & 1));
	CHECK(n > 0 && !strcmp(c[n - 1].name, "rule:web2"));
	exai_free(c);
	/* IPv4 is decided by a direct table (the IPv4 trie slot is empty), whose entries name port
	 * sets of the new bank; IPv6 by the new trie */
	int e = dir4_entry("10.99.0.5");
	CHECK(e > 0 && (e & EXAI_DIR_MATCH) && (uint32_t)(e & 0xfff) / EXAI_MAX_SETS == (id2 & 1));
	CHECK(dir4_entry("10.98.0.5") == 0);
	CHECK(!slot_used("exai_lpm4") && slot_used("exai_lpm6"));

	/* the floor override is explicit and narrow */
	const char *allow_meta[] = { "169.254.169.254/32", NULL };
	exai_policy *p1 = policy(bundle1);
	EXAI_OPTS(exai_policy_dev_opts, ov, .bpffs = bpffs, .floor_allow = allow_meta);
	CHECK_OK(exai_policy_apply(NULL, DEV, p1, &ov));
	CHECK(OUT(.src = G4, .dst = "169.254.169.254", .proto = IPPROTO_TCP, .sport = 1, .dport = 80) == PASS);
	CHECK(OUT(.src = G4, .dst = "169.254.169.253", .proto = IPPROTO_TCP, .sport = 1, .dport = 80) == DROP);
	CHECK_OK(exai_policy_apply(NULL, DEV, p1, &o));
	CHECK(OUT(.src = G4, .dst = "169.254.169.254", .proto = IPPROTO_TCP, .sport = 1, .dport = 80) == DROP);
	exai_policy_free(p1);
	exai_policy_free(p2);
}

/* IPv4 prefixes that would make the direct table too large (a /32 in each of 16 400 /16s)
 * are served by the IPv4 trie; the next smaller policy goes back to a direct table. */
static void ipv4_trie_fallback(void)
{
	struct exai__buf b = { 0 };
	CHECK_OK(exai__buf_printf(&b, "{\"version\":1,\"tenant\":\"acme\",\"egress\":[{\"name\":\"many\",\"to\":["));
	for (unsigned i = 0; i < 16400; i++)
		CHECK_OK(exai__buf_printf(&b, "%s{\"cidr\":\"%u.%u.0.1/32\"}", i ? "," : "", 11 + i / 256, i % 256));
	CHECK_OK(exai__buf_printf(&b, "],\"ports\":[{\"protocol\":\"TCP\",\"port\":7000}]},"
				      "{\"name\":\"web2\",\"to\":[{\"cidr\":\"10.99.0.0/24\"}],"
				      "\"ports\":[{\"protocol\":\"TCP\",\"port\":9000}]}]}"));
	CHECK_OK(apply(b.data, 0, 0));
	exai__buf_free(&b);
	CHECK(slot_used("exai_lpm4") && !slot_used("exai_dir4"));
	CHECK(OUT(.src = G4, .dst = "12.3.0.1", .proto = IPPROTO_TCP, .sport = 1, .dport = 7000) == PASS);
	CHECK(OUT(.src = G4, .dst = "75.15.0.1", .proto = IPPROTO_TCP, .sport = 1, .dport = 7000) == PASS);
	CHECK(OUT(.src = G4, .dst = "12.3.0.2", .proto = IPPROTO_TCP, .sport = 1, .dport = 7000) == DROP);
	CHECK(OUT(.src = G4, .dst = "12.3.0.1", .proto = IPPROTO_TCP, .sport = 1, .dport = 7001) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 9000) == PASS);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 8080) == DROP);
	CHECK(OUT(.src = G4, .dst = "169.254.169.254", .proto = IPPROTO_TCP, .sport = 1, .dport = 80) == DROP);

	CHECK_OK(apply(bundle2, 0, 0));
	CHECK(!slot_used("exai_lpm4") && slot_used("exai_dir4"));
	CHECK(OUT(.src = G4, .dst = "12.3.0.1", .proto = IPPROTO_TCP, .sport = 1, .dport = 7000) == DROP);
	CHECK(OUT(.src = G4, .dst = "10.99.0.5", .proto = IPPROTO_TCP, .sport = 1, .dport = 9000) == PASS);
}

static bool link_up(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
	if (fd >= 0)
		close(fd);
	return up;
}

/* If attaching fails, the device is left down and the error says so. The failure is made by
 * removing the filter and pinning a map where the egress program should be. */
static void fail_closed(void)
{
	char prog[512], map[512];
	snprintf(prog, sizeof(prog), "%s/exai/%s/prog_egress", bpffs, DEV);
	snprintf(map, sizeof(map), "%s/exai/%s/exai_cfg", bpffs, DEV);
	CHECK(link_up(DEV));
	CHECK(system("tc filter del dev " DEV " ingress") == 0);
	int fd = bpf_obj_get(map);
	CHECK(fd >= 0 && unlink(prog) == 0 && bpf_obj_pin(fd, prog) == 0);
	if (fd >= 0)
		close(fd);
	exai_policy *p = policy(bundle1);
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	CHECK(exai_policy_apply(NULL, DEV, p, &o) < 0);
	CHECK(strstr(exai_errmsg(), "cannot attach the egress policy to the ingress hook") != NULL);
	CHECK(strstr(exai_errmsg(), "has been set down (fail closed)") != NULL);
	CHECK(!link_up(DEV));

	/* A first apply that fails (here: the bpffs path is not a bpffs) leaves the device down
	 * too: it had no policy, so up would mean unfiltered. */
	if (system("ip link add exai-ut2 type veth peer name exai-ut3 && ip link set exai-ut2 up") == 0) {
		char *notbpf = test_tmpdir();
		EXAI_OPTS(exai_policy_dev_opts, nb, .bpffs = notbpf);
		CHECK(link_up("exai-ut2"));
		CHECK_RC(exai_policy_apply(NULL, "exai-ut2", p, &nb), -ENOTDIR);
		CHECK(strstr(exai_errmsg(), "is not a bpffs mount") && strstr(exai_errmsg(), "set down (fail closed)"));
		CHECK(!link_up("exai-ut2"));
		test_rmrf(notbpf);
		free(notbpf);
	}
	exai_policy_free(p);
}

/* Maps pinned by a libexai with another map layout (here an exai_cfg of another size) are
 * replaced by a fresh load, not refused with the device set down. */
static void stale_pins(void)
{
	if (system("ip link add exai-ut4 type veth peer name exai-ut5 && ip link set exai-ut4 up") != 0)
		return;
	char dir[512], path[600];
	snprintf(dir, sizeof(dir), "%s/exai/exai-ut4", bpffs);
	snprintf(path, sizeof(path), "%s/exai_cfg", dir);
	CHECK(mkdir(dir, 0700) == 0);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "exai_cfg", 4, 8, 1, NULL);
	CHECK(fd >= 0 && bpf_obj_pin(fd, path) == 0);
	if (fd >= 0)
		close(fd);
	exai_policy *p = policy(bundle1);
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	CHECK_OK(exai_policy_apply(NULL, "exai-ut4", p, &o));
	CHECK(link_up("exai-ut4"));
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	fd = bpf_obj_get(path);
	CHECK(fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.value_size == sizeof(struct exai_cfg));
	if (fd >= 0)
		close(fd);
	CHECK_OK(exai_policy_detach(NULL, "exai-ut4", &o));
	exai_policy_free(p);
}

int main(void)
{
	if (geteuid() != 0)
		test_skip("the datapath tests need root (BPF programs, a network namespace, a bpffs mount)");
	if (!(exai_features() & EXAI_FEATURE_BPF))
		test_skip("this libexai was built without BPF support");
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
		test_skip("cannot create a network and mount namespace: %s", strerror(errno));
	mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	bpffs = test_tmpdir();
	if (mount("bpffs", bpffs, "bpf", 0, "mode=0700") < 0)
		test_skip("cannot mount a bpffs: %s", strerror(errno));
	if (system("ip link add " DEV " type veth peer name exai-ut1 && ip link set " DEV " up") != 0)
		test_skip("cannot create a veth pair (ip link add ... type veth)");

	exai_ctx *ctx = NULL;
	CHECK_OK(exai_ctx_new(&ctx, NULL));
	CHECK_OK(exai__ctx_set_emitter(ctx, emit_cb, NULL));

	/* before any policy: nothing attached */
	EXAI_OPTS(exai_policy_dev_opts, o, .bpffs = bpffs);
	struct exai_policy_counter *c = NULL;
	size_t n;
	CHECK_RC(exai_policy_stats(&c, &n, NULL, ctx, DEV, &o), -ENOENT);

	int r = apply(bundle1, 0, 0);
	if (r == -EPERM)
		test_skip("loading BPF programs is not permitted here: %s", exai_errmsg());
	CHECK_OK(r);
	uint32_t ms = 0;
	CHECK_OK(exai_policy_refresh_in(&ms, ctx, DEV, &o));
	CHECK(ms == UINT32_MAX); /* no matchName rules: nothing to refresh */
	prog_eg = open_prog("prog_egress");
	prog_in = open_prog("prog_ingress");
	CHECK(prog_eg >= 0 && prog_in >= 0);
	if (prog_eg >= 0 && prog_in >= 0) {
		ipv4();
		ipv6();
		fragments_truncation_vlan_arp();
		conntrack();
		conntrack_expiry();
		counters_and_events(ctx);
		rate_limit(ctx);
		note_counts();
		reply_note();
		host_netns_floor();
		match_pattern(ctx);
		atomic_replace_and_failures();
		ipv4_trie_fallback();
		fail_closed();
		stale_pins();
	}
	CHECK_OK(exai_policy_detach(ctx, DEV, &o));
	CHECK_RC(exai_policy_detach(ctx, DEV, &o), -ENOENT);
	exai__ctx_set_emitter(ctx, NULL, NULL);
	exai_ctx_unref(ctx);
	umount(bpffs);
	test_rmrf(bpffs);
	free(bpffs);
	return test_done();
}
