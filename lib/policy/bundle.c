/* SPDX-License-Identifier: Apache-2.0 */
/* bundle.c: the policy bundle (docs/formats/policy.md): parsing, validation with JSON-path
 * errors, and compilation into the datapath's LPM entries and port sets. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy-internal.h"

/* ---- CIDRs ------------------------------------------------------------------------------ */

static bool bit_at(const uint8_t *a, unsigned i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

int exai__cidr_parse(struct exai__cidr *ret, const char *s, bool want_prefix, const char **why)
{
	char buf[64];
	struct exai__cidr c = { 0 };
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	if (alen == 0 || alen >= sizeof(buf)) {
		*why = "is not an IP address";
		return -EBADMSG;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, c.addr) == 1)
		c.family = 4;
	else if (inet_pton(AF_INET6, buf, c.addr) == 1)
		c.family = 6;
	else {
		*why = "is not an IPv4 or IPv6 address";
		return -EBADMSG;
	}
	unsigned max = c.family == 4 ? 32 : 128;
	if (!slash) {
		if (want_prefix) {
			*why = "needs a prefix length (e.g. /32)";
			return -EBADMSG;
		}
		c.plen = (uint8_t)max;
	} else {
		if (!want_prefix) {
			*why = "must be a single address, without a prefix length";
			return -EBADMSG;
		}
		const char *p = slash + 1;
		unsigned v = 0;
		if (!*p || strlen(p) > 3) {
			*why = "has a bad prefix length";
			return -EBADMSG;
		}
		for (; *p; p++) {
			if (!isdigit((unsigned char)*p)) {
				*why = "has a bad prefix length";
				return -EBADMSG;
			}
			v = v * 10 + (unsigned)(*p - '0');
		}
		if ((slash[1] == '0' && slash[2]) || v > max) {
			*why = c.family == 4 ? "has a prefix length outside 0..32" : "has a prefix length outside 0..128";
			return -EBADMSG;
		}
		c.plen = (uint8_t)v;
	}
	for (unsigned i = c.plen; i < max; i++)
		if (bit_at(c.addr, i)) {
			*why = "has host bits set beyond its prefix length";
			return -EBADMSG;
		}
	*ret = c;
	return 0;
}

const char *exai__cidr_str(const struct exai__cidr *c, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof(a));
	snprintf(buf, size, "%s/%u", a, c->plen);
	return buf;
}

bool exai__cidr_contains(const struct exai__cidr *outer, const struct exai__cidr *inner)
{
	if (outer->family != inner->family || outer->plen > inner->plen)
		return false;
	unsigned full = outer->plen / 8, rest = outer->plen % 8;
	if (memcmp(outer->addr, inner->addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((outer->addr[full] & mask) != (inner->addr[full] & mask))
			return false;
	}
	return true;
}

/* ---- parsing ---------------------------------------------------------------------------- */
/* Errors name the JSON path; every parse function gets the path of its value. */
/* The JSON path of a member or element (truncated paths only shorten the message). */
EXAI__PRINTF(3, 4) static void path_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

#define BAD(fmt, ...) exai__err(-EBADMSG, "%s: " fmt, __VA_ARGS__)

static int check_members(const json_t *obj, const char *path, const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strcmp(*k, key) == 0;
		if (!ok) {
			char list[256] = "";
			for (const char *const *k = known; *k; k++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k == known ? "" : ", ", *k);
			return BAD("unknown member \"%s\" (expected: %s)", path, key, list);
		}
	}
	return 0;
}

static int get_string(const char **ret, const json_t *obj, const char *path, const char *name, bool required)
{
	json_t *v = json_object_get(obj, name);
	if (!v) {
		if (required)
			return BAD("missing required member \"%s\"", path, name);
		*ret = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return BAD("%s must be a string", path, name);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return BAD("%s contains a NUL character", path, name);
	*ret = json_string_value(v);
	return 0;
}

static int get_array(json_t **ret, const json_t *obj, const char *path, const char *name)
{
	json_t *v = json_object_get(obj, name);
	if (v && !json_is_array(v))
		return BAD("%s must be an array", path, name);
	*ret = v;
	return 0;
}

/* An integer port in 1..65535 (0 when absent). */
static int get_port(unsigned *ret, const json_t *obj, const char *path, const char *name)
{
	json_t *v = json_object_get(obj, name);
	*ret = 0;
	if (!v)
		return 0;
	if (json_is_string(v))
		return BAD("%s must be a port number; named ports (\"%s\") are not supported", path, name,
			   json_string_value(v));
	if (!json_is_integer(v))
		return BAD("%s must be an integer between 1 and 65535", path, name);
	json_int_t p = json_integer_value(v);
	if (p < 1 || p > 65535)
		return BAD("%s %lld is outside 1..65535", path, name, (long long)p);
	*ret = (unsigned)p;
	return 0;
}

static int parse_cidr_at(struct exai__cidr *ret, const char *s, const char *path, bool want_prefix)
{
	const char *why = "";
	if (exai__cidr_parse(ret, s, want_prefix, &why) < 0)
		return exai__err(-EBADMSG, "%s: \"%s\" %s", path, s, why);
	return 0;
}

static int parse_peer(struct exai__peer *peer, const json_t *v, const char *path)
{
	static const char *const known[] = { "cidr", "except", NULL };
	char sub[256];
	const char *cidr;
	json_t *exc = NULL;
	int r;

	if (!json_is_object(v))
		return BAD("must be an object with \"cidr\" (and optionally \"except\")", path);
	if ((r = check_members(v, path, known)) < 0 || (r = get_string(&cidr, v, path, "cidr", true)) < 0 ||
	    (r = get_array(&exc, v, path, "except")) < 0)
		return r;
	path_fmt(sub, sizeof(sub), "%s.cidr", path);
	if ((r = parse_cidr_at(&peer->cidr, cidr, sub, true)) < 0)
		return r;
	size_t n = exc ? json_array_size(exc) : 0;
	if (n) {
		peer->except = calloc(n, sizeof(*peer->except));
		if (!peer->except)
			return exai__err(-ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(exc, i);
		struct exai__cidr *c = &peer->except[i];
		char cs[64];
		path_fmt(sub, sizeof(sub), "%s.except[%zu]", path, i);
		if (!json_is_string(e))
			return BAD("must be a CIDR string", sub);
		if ((r = parse_cidr_at(c, json_string_value(e), sub, true)) < 0)
			return r;
		peer->nexcept = i + 1;
		if (c->family != peer->cidr.family)
			return BAD("\"%s\" is not of the same address family as cidr %s", sub, json_string_value(e),
				   exai__cidr_str(&peer->cidr, cs, sizeof(cs)));
		if (!exai__cidr_contains(&peer->cidr, c) || c->plen == peer->cidr.plen)
			return BAD("\"%s\" is not strictly inside cidr %s", sub, json_string_value(e),
				   exai__cidr_str(&peer->cidr, cs, sizeof(cs)));
		for (size_t j = 0; j < i; j++)
			if (!memcmp(&peer->except[j], c, sizeof(*c)))
				return BAD("\"%s\" repeats except[%zu]", sub, json_string_value(e), j);
	}
	return 0;
}

static bool valid_dns_name(const char *s, bool pattern, const char **why)
{
	size_t len = strlen(s);
	if (len && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253) {
		*why = "is not a DNS name of 1 to 253 characters";
		return false;
	}
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '.';
		if (c == '.') {
			if (label == 0) {
				*why = "has an empty label";
				return false;
			}
			label = 0;
			continue;
		}
		if (++label > 63) {
			*why = "has a label longer than 63 characters";
			return false;
		}
		if (c == '*' && pattern)
			continue;
		if (c == '*') {
			*why = "contains '*': wildcards belong in matchPattern";
			return false;
		}
		if (!isalnum((unsigned char)c) && c != '-' && c != '_') {
			*why = pattern ? "may contain only letters, digits, '-', '_', '.' and '*'"
				       : "may contain only letters, digits, '-', '_' and '.'";
			return false;
		}
	}
	return true;
}

static int parse_fqdn(struct exai__fqdn *f, const json_t *v, const char *path)
{
	static const char *const known[] = { "matchName", "matchPattern", NULL };
	const char *name, *pattern, *why = "";
	int r;

	if (!json_is_object(v))
		return BAD("must be an object with \"matchName\" or \"matchPattern\"", path);
	if ((r = check_members(v, path, known)) < 0 || (r = get_string(&name, v, path, "matchName", false)) < 0 ||
	    (r = get_string(&pattern, v, path, "matchPattern", false)) < 0)
		return r;
	const char *s = name ? name : pattern;
	if (!s || (name && pattern))
		return BAD("needs exactly one of \"matchName\" and \"matchPattern\"", path);
	if (!valid_dns_name(s, !name, &why))
		return exai__err(-EBADMSG, "%s.%s: \"%s\" %s", path, name ? "matchName" : "matchPattern", s, why);
	size_t len = strlen(s);
	if (s[len - 1] == '.')
		len--;
	f->name = strndup(s, len);
	if (!f->name)
		return exai__err(-ENOMEM, "out of memory");
	for (char *p = f->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	f->pattern = !name;
	return 0;
}

static int parse_ports(struct exai__rule *rule, const json_t *ports, const char *path, uint16_t index)
{
	static const char *const known[] = { "protocol", "port", "endPort", NULL };
	char sub[256];
	size_t n = ports ? json_array_size(ports) : 0;
	int r;

	if (n == 0) { /* Kubernetes: no ports means every port of every protocol */
		rule->ranges[0] = (struct exai_range){ .lo = 0, .hi = 65535, .proto = EXAI_PROTO_ANY, .rule = index };
		rule->nranges = 1;
		return 0;
	}
	if (n > EXAI_PORTSET_MAX)
		return exai__err(-E2BIG, "%s: %zu entries, more than the %d a rule may have", path, n, EXAI_PORTSET_MAX);
	for (size_t i = 0; i < n; i++) {
		const json_t *p = json_array_get(ports, i);
		const char *proto_s;
		unsigned port, end;
		uint8_t proto;
		path_fmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!json_is_object(p))
			return BAD("must be an object with \"protocol\", \"port\" and \"endPort\"", sub);
		if ((r = check_members(p, sub, known)) < 0 || (r = get_string(&proto_s, p, sub, "protocol", false)) < 0 ||
		    (r = get_port(&port, p, sub, "port")) < 0 || (r = get_port(&end, p, sub, "endPort")) < 0)
			return r;
		if (!proto_s || !strcmp(proto_s, "TCP"))
			proto = EXAI_PROTO_TCP;
		else if (!strcmp(proto_s, "UDP"))
			proto = EXAI_PROTO_UDP;
		else if (!strcmp(proto_s, "ICMP"))
			proto = EXAI_PROTO_ICMP;
		else if (!strcmp(proto_s, "ANY"))
			proto = EXAI_PROTO_ANY;
		else
			return BAD("protocol \"%s\" is not one of TCP, UDP, ICMP, ANY (upper case)", sub, proto_s);
		if (proto == EXAI_PROTO_ICMP && (port || end))
			return BAD("ICMP has no ports: remove port/endPort", sub);
		if (end && !port)
			return BAD("endPort needs port", sub);
		if (end && end < port)
			return BAD("endPort %u is below port %u", sub, end, port);
		struct exai_range *rg = &rule->ranges[rule->nranges++];
		*rg = (struct exai_range){ .proto = proto, .rule = index };
		if (port) {
			rg->lo = (uint16_t)port;
			rg->hi = (uint16_t)(end ? end : port);
		} else {
			rg->lo = 0;
			rg->hi = 65535;
		}
	}
	return 0;
}

static int parse_rule(struct exai__rule *rule, const json_t *v, const char *path, uint16_t index)
{
	static const char *const known[] = { "name", "to", "toFQDNs", "ports", NULL };
	char sub[256];
	const char *name;
	json_t *to = NULL, *fq = NULL, *ports = NULL;
	int r;

	if (!json_is_object(v))
		return BAD("must be an object", path);
	if ((r = check_members(v, path, known)) < 0 || (r = get_string(&name, v, path, "name", false)) < 0 ||
	    (r = get_array(&to, v, path, "to")) < 0 || (r = get_array(&fq, v, path, "toFQDNs")) < 0 ||
	    (r = get_array(&ports, v, path, "ports")) < 0)
		return r;
	if (name) {
		if (!name[0] || strlen(name) >= EXAI_RULE_NAME)
			return BAD("name must have 1 to %d characters", path, EXAI_RULE_NAME - 1);
		for (const char *p = name; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return BAD("name contains a control character", path);
		snprintf(rule->name, sizeof(rule->name), "%s", name);
	} else {
		snprintf(rule->name, sizeof(rule->name), "egress[%u]", index);
	}
	if (!to == !fq)
		return BAD("needs exactly one of \"to\" (CIDRs) and \"toFQDNs\"", path);
	const json_t *list = to ? to : fq;
	size_t n = json_array_size(list);
	if (n == 0)
		return BAD("%s is empty: a rule must allow something", path, to ? "to" : "toFQDNs");
	if (to) {
		rule->peers = calloc(n, sizeof(*rule->peers));
		if (!rule->peers)
			return exai__err(-ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			path_fmt(sub, sizeof(sub), "%s.to[%zu]", path, i);
			rule->npeers = i + 1;
			if ((r = parse_peer(&rule->peers[i], json_array_get(to, i), sub)) < 0)
				return r;
		}
	} else {
		rule->fqdns = calloc(n, sizeof(*rule->fqdns));
		if (!rule->fqdns)
			return exai__err(-ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			path_fmt(sub, sizeof(sub), "%s.toFQDNs[%zu]", path, i);
			rule->nfqdns = i + 1;
			if ((r = parse_fqdn(&rule->fqdns[i], json_array_get(fq, i), sub)) < 0)
				return r;
		}
	}
	path_fmt(sub, sizeof(sub), "%s.ports", path);
	return parse_ports(rule, ports, sub, index);
}

static int parse_bundle(exai_policy *p, const json_t *root)
{
	static const char *const known[] = { "version", "tenant", "resolvers", "egress", NULL };
	char sub[64];
	const char *tenant;
	json_t *res = NULL, *eg = NULL;
	int r;

	if (!json_is_object(root))
		return exai__err(-EBADMSG, "$: a policy bundle must be a JSON object");
	json_t *ver = json_object_get(root, "version");
	if (!ver)
		return exai__err(-EBADMSG, "$: missing required member \"version\"");
	if (!json_is_integer(ver) || json_integer_value(ver) != EXAI__POLICY_VERSION)
		return exai__err(-EBADMSG, "$.version: must be %d (the only version this libexai reads)",
				 EXAI__POLICY_VERSION);
	if ((r = check_members(root, "$", known)) < 0 || (r = get_string(&tenant, root, "$", "tenant", true)) < 0 ||
	    (r = get_array(&res, root, "$", "resolvers")) < 0 || (r = get_array(&eg, root, "$", "egress")) < 0)
		return r;
	if (!tenant[0] || strlen(tenant) > 128)
		return exai__err(-EBADMSG, "$.tenant: must have 1 to 128 characters");
	for (const char *c = tenant; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
			return exai__err(-EBADMSG, "$.tenant: \"%s\" may contain only letters, digits, '.', '_' and '-'",
					 tenant);
	if (!eg)
		return exai__err(-EBADMSG, "$: missing required member \"egress\" (use [] to deny everything)");
	p->version = EXAI__POLICY_VERSION;
	p->tenant = strdup(tenant);
	if (!p->tenant)
		return exai__err(-ENOMEM, "out of memory");

	size_t n = res ? json_array_size(res) : 0;
	if (n > 16)
		return exai__err(-E2BIG, "$.resolvers: %zu entries, more than 16", n);
	p->resolvers = calloc(n ? n : 1, sizeof(*p->resolvers));
	if (!p->resolvers)
		return exai__err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(res, i);
		path_fmt(sub, sizeof(sub), "$.resolvers[%zu]", i);
		if (!json_is_string(v))
			return exai__err(-EBADMSG, "%s: must be an IP address string", sub);
		if ((r = parse_cidr_at(&p->resolvers[i], json_string_value(v), sub, false)) < 0)
			return r;
		p->nresolvers = i + 1;
	}

	n = json_array_size(eg);
	if (n > EXAI_MAX_RULES)
		return exai__err(-E2BIG, "$.egress: %zu rules, more than the %d the datapath holds", n, EXAI_MAX_RULES);
	p->rules = calloc(n ? n : 1, sizeof(*p->rules));
	if (!p->rules)
		return exai__err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		path_fmt(sub, sizeof(sub), "$.egress[%zu]", i);
		p->nrules = i + 1;
		if ((r = parse_rule(&p->rules[i], json_array_get(eg, i), sub, (uint16_t)i)) < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(p->rules[j].name, p->rules[i].name))
				return exai__err(-EBADMSG, "%s.name: \"%s\" is already the name of $.egress[%zu]", sub,
						 p->rules[i].name, j);
	}
	return 0;
}

/* ---- compiler --------------------------------------------------------------------------- */

/* The built-in floor (docs/formats/policy.md): never reachable unless an operator overrides. */
static const char *const builtin_floor[] = { "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128" };

enum item_kind { IT_PEER, IT_EXCEPT, IT_FLOOR, IT_ALLOW, IT_RESOLVER };

struct item {
	struct exai__cidr pfx;
	uint8_t kind;
	uint32_t idx; /* peer number for IT_PEER / IT_EXCEPT */
};

struct peer_ref {
	uint32_t rule;
	bool in;
	uint32_t exc;
};

struct compile_state {
	const exai_policy *p;
	struct item *items;
	size_t nitems, capitems;
	struct peer_ref *peers;
	size_t npeers, cappeers;
	uint32_t *rule_act; /* active peers per rule */
	uint32_t *active;   /* sorted active rules */
	size_t nactive;
	/* port-set dedup: key = the active rule list */
	uint32_t **set_rules;
	size_t *set_nrules;
	size_t *hash;       /* open addressing: set index + 1 */
	size_t hashcap;
	struct exai__compiled *out;
	size_t cap4, cap6, capsets;
};

static int add_item(struct compile_state *s, const struct exai__cidr *c, uint8_t kind, uint32_t idx)
{
	if (s->nitems == s->capitems) {
		size_t nc = s->capitems ? s->capitems * 2 : 64;
		struct item *n = realloc(s->items, nc * sizeof(*n));
		if (!n)
			return exai__err(-ENOMEM, "out of memory");
		s->items = n;
		s->capitems = nc;
	}
	s->items[s->nitems++] = (struct item){ .pfx = *c, .kind = kind, .idx = idx };
	return 0;
}

static int add_peer(struct compile_state *s, uint32_t rule, const struct exai__cidr *cidr,
		    const struct exai__cidr *except, size_t nexcept)
{
	if (s->npeers == s->cappeers) {
		size_t nc = s->cappeers ? s->cappeers * 2 : 64;
		struct peer_ref *n = realloc(s->peers, nc * sizeof(*n));
		if (!n)
			return exai__err(-ENOMEM, "out of memory");
		s->peers = n;
		s->cappeers = nc;
	}
	uint32_t id = (uint32_t)s->npeers++;
	s->peers[id] = (struct peer_ref){ .rule = rule };
	int r = add_item(s, cidr, IT_PEER, id);
	for (size_t i = 0; r == 0 && i < nexcept; i++)
		r = add_item(s, &except[i], IT_EXCEPT, id);
	return r;
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->pfx.family != y->pfx.family)
		return x->pfx.family - y->pfx.family;
	int c = memcmp(x->pfx.addr, y->pfx.addr, 16);
	if (c)
		return c;
	if (x->pfx.plen != y->pfx.plen)
		return x->pfx.plen - y->pfx.plen;
	return x->kind - y->kind;
}

static void rule_activate(struct compile_state *s, uint32_t rule, int delta)
{
	uint32_t before = s->rule_act[rule];
	s->rule_act[rule] = (uint32_t)((int)before + delta);
	if (before == 0 && delta > 0) { /* insert, keeping the list sorted */
		size_t i = s->nactive;
		while (i > 0 && s->active[i - 1] > rule) {
			s->active[i] = s->active[i - 1];
			i--;
		}
		s->active[i] = rule;
		s->nactive++;
	} else if (s->rule_act[rule] == 0 && delta < 0) {
		size_t i = 0;
		while (s->active[i] != rule)
			i++;
		memmove(&s->active[i], &s->active[i + 1], (s->nactive - i - 1) * sizeof(*s->active));
		s->nactive--;
	}
}

/* Applies (dir = +1) or undoes (dir = -1) one item's effect on the active rules. */
static void apply_item(struct compile_state *s, const struct item *it, int dir)
{
	if (it->kind != IT_PEER && it->kind != IT_EXCEPT)
		return;
	struct peer_ref *pr = &s->peers[it->idx];
	if (it->kind == IT_PEER) {
		if (dir > 0) {
			pr->in = true;
			if (pr->exc == 0)
				rule_activate(s, pr->rule, +1);
		} else {
			if (pr->exc == 0)
				rule_activate(s, pr->rule, -1);
			pr->in = false;
		}
	} else {
		if (dir > 0) {
			if (pr->in && pr->exc == 0)
				rule_activate(s, pr->rule, -1);
			pr->exc++;
		} else {
			pr->exc--;
			if (pr->in && pr->exc == 0)
				rule_activate(s, pr->rule, +1);
		}
	}
}

static int set_for_active(struct compile_state *s, const struct exai__cidr *at, uint32_t *ret)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < s->nactive; i++)
		h = (h ^ s->active[i]) * 1099511628211ull;
	size_t slot = (size_t)(h % s->hashcap);
	while (s->hash[slot]) {
		size_t idx = s->hash[slot] - 1;
		if (s->set_nrules[idx] == s->nactive &&
		    !memcmp(s->set_rules[idx], s->active, s->nactive * sizeof(*s->active))) {
			*ret = (uint32_t)idx;
			return 0;
		}
		slot = (slot + 1) % s->hashcap;
	}
	struct exai__compiled *o = s->out;
	if (o->nsets == EXAI_MAX_SETS)
		return exai__err(-E2BIG, "the rules overlap in more than %d distinct combinations (port sets)",
				 EXAI_MAX_SETS);
	struct exai_portset ps = { 0 };
	for (size_t i = 0; i < s->nactive; i++) {
		const struct exai__rule *rule = &s->p->rules[s->active[i]];
		if (ps.n + rule->nranges > EXAI_PORTSET_MAX) {
			char c[64];
			return exai__err(-E2BIG, "more than %d port ranges apply to %s (rules overlapping there: %zu)",
					 EXAI_PORTSET_MAX, exai__cidr_str(at, c, sizeof(c)), s->nactive);
		}
		memcpy(&ps.r[ps.n], rule->ranges, rule->nranges * sizeof(*rule->ranges));
		ps.n += (uint32_t)rule->nranges;
	}
	size_t idx = o->nsets++;
	o->sets[idx] = ps;
	s->set_rules[idx] = malloc((s->nactive ? s->nactive : 1) * sizeof(uint32_t));
	if (!s->set_rules[idx])
		return exai__err(-ENOMEM, "out of memory");
	memcpy(s->set_rules[idx], s->active, s->nactive * sizeof(uint32_t));
	s->set_nrules[idx] = s->nactive;
	s->hash[slot] = idx + 1;
	*ret = (uint32_t)idx;
	return 0;
}

static int emit_entry(struct compile_state *s, const struct exai__cidr *pfx, uint32_t flags)
{
	struct exai__compiled *o = s->out;
	bool v4 = pfx->family == 4;
	struct exai__entry **arr = v4 ? &o->e4 : &o->e6;
	size_t *n = v4 ? &o->n4 : &o->n6, *cap = v4 ? &s->cap4 : &s->cap6;
	uint32_t set = 0;
	int r;

	if (*n == EXAI_MAX_ENTRIES)
		return exai__err(-E2BIG, "more than %d IPv%d prefixes (rules, excepts and floor)", EXAI_MAX_ENTRIES,
				 pfx->family);
	if ((r = set_for_active(s, pfx, &set)) < 0)
		return r;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct exai__entry *na = realloc(*arr, nc * sizeof(*na));
		if (!na)
			return exai__err(-ENOMEM, "out of memory");
		*arr = na;
		*cap = nc;
	}
	(*arr)[(*n)++] = (struct exai__entry){ .pfx = *pfx, .val = { .set = set, .flags = flags } };
	return 0;
}

struct frame {
	size_t first, last; /* items of this prefix: [first, last) */
	bool floor;
};

static int sweep(struct compile_state *s)
{
	struct frame stack[130];
	size_t depth = 0;
	size_t i = 0;
	int r;

	while (i < s->nitems) {
		size_t j = i + 1;
		while (j < s->nitems && s->items[j].pfx.family == s->items[i].pfx.family &&
		       s->items[j].pfx.plen == s->items[i].pfx.plen &&
		       !memcmp(s->items[j].pfx.addr, s->items[i].pfx.addr, 16))
			j++;
		const struct exai__cidr *pfx = &s->items[i].pfx;
		while (depth && !exai__cidr_contains(&s->items[stack[depth - 1].first].pfx, pfx)) {
			depth--;
			for (size_t k = stack[depth].last; k-- > stack[depth].first;)
				apply_item(s, &s->items[k], -1);
		}
		bool floor = depth ? stack[depth - 1].floor : false, has_floor = false, has_allow = false;
		uint32_t flags = 0;
		for (size_t k = i; k < j; k++) {
			apply_item(s, &s->items[k], +1);
			has_floor |= s->items[k].kind == IT_FLOOR;
			has_allow |= s->items[k].kind == IT_ALLOW;
			if (s->items[k].kind == IT_RESOLVER)
				flags |= EXAI_F_RESOLVER;
		}
		if (has_allow) /* an explicit operator override wins over the floor at the same prefix */
			floor = false;
		else if (has_floor)
			floor = true;
		if (floor)
			flags |= EXAI_F_FLOOR;
		stack[depth++] = (struct frame){ .first = i, .last = j, .floor = floor };
		if ((r = emit_entry(s, pfx, flags)) < 0)
			return r;
		i = j;
	}
	return 0;
}

void exai__compiled_free(struct exai__compiled *c)
{
	if (!c)
		return;
	free(c->e4);
	free(c->e6);
	free(c->sets);
	memset(c, 0, sizeof(*c));
}

int exai__policy_compile(struct exai__compiled *ret, const exai_policy *p, const struct exai__floor *floor)
{
	struct compile_state s = { .p = p };
	struct exai__compiled out = { 0 };
	int r = 0;

	s.out = &out;
	for (size_t i = 0; r == 0 && i < EXAI__ARRAY_SIZE(builtin_floor); i++) {
		struct exai__cidr c;
		const char *why;
		r = exai__cidr_parse(&c, builtin_floor[i], true, &why);
		if (r == 0)
			r = add_item(&s, &c, IT_FLOOR, 0);
	}
	for (size_t i = 0; r == 0 && floor && i < floor->nextra; i++)
		r = add_item(&s, &floor->extra[i], IT_FLOOR, 0);
	for (size_t i = 0; r == 0 && floor && i < floor->nallow; i++)
		r = add_item(&s, &floor->allow[i], IT_ALLOW, 0);
	for (size_t i = 0; r == 0 && i < p->nresolvers; i++)
		r = add_item(&s, &p->resolvers[i], IT_RESOLVER, 0);
	for (size_t ri = 0; r == 0 && ri < p->nrules; ri++) {
		const struct exai__rule *rule = &p->rules[ri];
		for (size_t k = 0; r == 0 && k < rule->npeers; k++)
			r = add_peer(&s, (uint32_t)ri, &rule->peers[k].cidr, rule->peers[k].except, rule->peers[k].nexcept);
		if (floor && floor->fqdn_addrs)
			for (size_t k = 0; r == 0 && k < floor->fqdn_naddrs[ri]; k++)
				r = add_peer(&s, (uint32_t)ri, &floor->fqdn_addrs[ri][k], NULL, 0);
	}
	if (r < 0)
		goto out;
	qsort(s.items, s.nitems, sizeof(*s.items), cmp_item);

	s.rule_act = calloc(p->nrules + 1, sizeof(*s.rule_act));
	s.active = calloc(p->nrules + 1, sizeof(*s.active));
	s.set_rules = calloc(EXAI_MAX_SETS, sizeof(*s.set_rules));
	s.set_nrules = calloc(EXAI_MAX_SETS, sizeof(*s.set_nrules));
	s.hashcap = 2 * EXAI_MAX_SETS + 1;
	s.hash = calloc(s.hashcap, sizeof(*s.hash));
	out.sets = calloc(EXAI_MAX_SETS, sizeof(*out.sets));
	if (!s.rule_act || !s.active || !s.set_rules || !s.set_nrules || !s.hash || !out.sets) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	r = sweep(&s);
	/* The port set of each matchPattern rule alone, so that an address learnt from DNS can go
	 * into the live tables at once (exai_policy_learn_dns) wherever no other rule covers it. */
	for (size_t ri = 0; r == 0 && ri < p->nrules; ri++)
		for (size_t k = 0; r == 0 && k < p->rules[ri].nfqdns; k++)
			if (p->rules[ri].fqdns[k].pattern) {
				static const struct exai__cidr any = { .family = 4 }; /* one rule always fits */
				uint32_t idx;
				s.nactive = 1;
				s.active[0] = (uint32_t)ri;
				r = set_for_active(&s, &any, &idx);
				break;
			}
out:
	for (size_t i = 0; s.set_rules && i < out.nsets; i++)
		free(s.set_rules[i]);
	free(s.set_rules);
	free(s.set_nrules);
	free(s.hash);
	free(s.rule_act);
	free(s.active);
	free(s.items);
	free(s.peers);
	if (r < 0) {
		exai__compiled_free(&out);
		return r;
	}
	*ret = out;
	return 0;
}

int exai__policy_decide(const struct exai__compiled *c, const struct exai__cidr *dst, uint8_t proto,
			uint16_t port, const struct exai__entry **ret_entry, int *ret_rule)
{
	const struct exai__entry *e = dst->family == 4 ? c->e4 : c->e6, *best = NULL;
	size_t n = dst->family == 4 ? c->n4 : c->n6;
	for (size_t i = 0; i < n; i++)
		if (exai__cidr_contains(&e[i].pfx, dst) && (!best || e[i].pfx.plen > best->pfx.plen))
			best = &e[i];
	*ret_entry = best;
	return exai_decide(best ? &best->val : NULL, best ? &c->sets[best->val.set] : NULL, proto, port, ret_rule);
}

/* ---- public ----------------------------------------------------------------------------- */

static void policy_free_rules(exai_policy *p)
{
	for (size_t i = 0; i < p->nrules; i++) {
		struct exai__rule *r = &p->rules[i];
		for (size_t k = 0; k < r->npeers; k++)
			free(r->peers[k].except);
		free(r->peers);
		for (size_t k = 0; k < r->nfqdns; k++)
			free(r->fqdns[k].name);
		free(r->fqdns);
	}
	free(p->rules);
}

EXAI_API void exai_policy_free(exai_policy *p)
{
	if (!p)
		return;
	policy_free_rules(p);
	free(p->resolvers);
	free(p->tenant);
	exai__compiled_free(&p->tables);
	free(p);
}

EXAI_API const char *exai_policy_tenant(const exai_policy *p)
{
	return p ? p->tenant : "";
}

EXAI_API int exai_policy_parse(exai_policy **ret, exai_ctx *ctx, const char *json, size_t len,
			       const struct exai_policy_parse_opts *opts)
{
	json_error_t jerr;
	int r;

	if (!ret || !json)
		return exai__err(-EINVAL, "exai_policy_parse: ret and json must not be NULL");
	if ((r = EXAI__OPTS_CHECK(opts, exai_policy_parse_opts)) < 0)
		return r;
	uint32_t flags = EXAI__OPT(opts, flags, 0u);
	if (flags & ~(uint32_t)EXAI_POLICY_ALLOW_UNSIGNED)
		return exai__err(-EINVAL, "exai_policy_parse_opts.flags has unknown bits 0x%x",
				 flags & ~(uint32_t)EXAI_POLICY_ALLOW_UNSIGNED);
	if (len > EXAI__POLICY_MAX_BYTES)
		return exai__err(-E2BIG, "policy bundle is %zu bytes, more than %u", len, EXAI__POLICY_MAX_BYTES);

	const char *sig = EXAI__OPT(opts, signature, (const char *)NULL);
	const char *const *keys = EXAI__OPT(opts, trusted_keys, (const char *const *)NULL);
	if (sig || !(flags & EXAI_POLICY_ALLOW_UNSIGNED)) {
		if (!sig)
			return exai__err(-EACCES, "policy bundle is not signed (a minisign signature is required; "
						  "--allow-unsigned is for development only)");
		if (!keys || !keys[0])
			return exai__err(-EACCES, "policy bundle is signed but no trusted public key is configured");
		if ((r = exai__policy_verify_signature(json, len, sig, keys)) < 0)
			return r;
	} else {
		exai__log_warn(ctx, "policy", "accepting an UNSIGNED policy bundle (development flag set)");
	}

	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return exai__err(-EBADMSG, "policy bundle is not valid JSON: line %d, column %d: %s", jerr.line,
				 jerr.column, jerr.text);
	exai_policy *p = calloc(1, sizeof(*p));
	if (!p) {
		json_decref(root);
		return exai__err(-ENOMEM, "out of memory");
	}
	r = parse_bundle(p, root);
	json_decref(root);
	const char *want = EXAI__OPT(opts, tenant, (const char *)NULL);
	if (r == 0 && want && strcmp(want, p->tenant) != 0)
		r = exai__err(-EACCES, "policy bundle is for tenant \"%s\", not \"%s\"", p->tenant, want);
	if (r == 0)
		r = exai__policy_compile(&p->tables, p, NULL);
	if (r < 0) {
		exai_policy_free(p);
		return r;
	}
	exai__log_debug(ctx, "policy", "bundle for tenant %s: %zu rules, %zu IPv4 and %zu IPv6 entries, %zu port sets",
			p->tenant, p->nrules, p->tables.n4, p->tables.n6, p->tables.nsets);
	*ret = p;
	return 0;
}

static const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case EXAI_PROTO_TCP:
		return "TCP";
	case EXAI_PROTO_UDP:
		return "UDP";
	case EXAI_PROTO_ICMP:
		return "ICMP";
	default:
		return "ANY";
	}
}

static json_t *range_json(const struct exai_range *r)
{
	json_t *o = json_pack("{s:s}", "protocol", proto_name(r->proto));
	if (o && !(r->lo == 0 && r->hi == 65535)) {
		json_object_set_new(o, "port", json_integer(r->lo));
		if (r->hi != r->lo)
			json_object_set_new(o, "endPort", json_integer(r->hi));
	}
	return o;
}

static json_t *entries_json(const exai_policy *p, const struct exai__entry *e, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		char c[64];
		const struct exai_portset *ps = &p->tables.sets[e[i].val.set];
		json_t *rules = json_array();
		for (uint32_t k = 0; rules && k < ps->n; k++) {
			const char *name = p->rules[ps->r[k].rule].name;
			size_t m = json_array_size(rules);
			if (!m || strcmp(json_string_value(json_array_get(rules, m - 1)), name) != 0)
				json_array_append_new(rules, json_string(name));
		}
		json_t *o = json_pack("{s:s, s:i, s:o}", "cidr", exai__cidr_str(&e[i].pfx, c, sizeof(c)), "set",
				      (json_int_t)e[i].val.set, "rules", rules);
		if (o && (e[i].val.flags & EXAI_F_FLOOR))
			json_object_set_new(o, "floor", json_true());
		if (o && (e[i].val.flags & EXAI_F_RESOLVER))
			json_object_set_new(o, "resolver", json_true());
		json_array_append_new(a, o);
	}
	return a;
}

EXAI_API int exai_policy_dump(char **ret, const exai_policy *p)
{
	if (!ret || !p)
		return exai__err(-EINVAL, "exai_policy_dump: ret and policy must not be NULL");
	json_t *rules = json_array(), *sets = json_array(), *res = json_array();
	for (size_t i = 0; i < p->nrules; i++) {
		const struct exai__rule *r = &p->rules[i];
		json_t *ports = json_array(), *to = json_array();
		for (size_t k = 0; k < r->nranges; k++)
			json_array_append_new(ports, range_json(&r->ranges[k]));
		for (size_t k = 0; k < r->npeers; k++) {
			char c[64];
			json_t *peer = json_pack("{s:s}", "cidr", exai__cidr_str(&r->peers[k].cidr, c, sizeof(c)));
			json_t *exc = json_array();
			for (size_t x = 0; x < r->peers[k].nexcept; x++)
				json_array_append_new(exc, json_string(exai__cidr_str(&r->peers[k].except[x], c, sizeof(c))));
			json_object_set_new(peer, "except", exc);
			json_array_append_new(to, peer);
		}
		for (size_t k = 0; k < r->nfqdns; k++)
			json_array_append_new(to, json_pack("{s:s}", r->fqdns[k].pattern ? "matchPattern" : "matchName",
							    r->fqdns[k].name));
		json_array_append_new(rules, json_pack("{s:i, s:s, s:o, s:o}", "index", (json_int_t)i, "name", r->name,
						       r->nfqdns ? "toFQDNs" : "to", to, "ports", ports));
	}
	for (size_t i = 0; i < p->tables.nsets; i++) {
		json_t *s = json_array();
		for (uint32_t k = 0; k < p->tables.sets[i].n; k++) {
			json_t *o = range_json(&p->tables.sets[i].r[k]);
			json_object_set_new(o, "rule", json_string(p->rules[p->tables.sets[i].r[k].rule].name));
			json_array_append_new(s, o);
		}
		json_array_append_new(sets, s);
	}
	for (size_t i = 0; i < p->nresolvers; i++) {
		char c[64];
		json_array_append_new(res, json_string(exai__cidr_str(&p->resolvers[i], c, sizeof(c))));
	}
	json_t *o = json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:o}", "version", (json_int_t)p->version, "tenant",
			      p->tenant, "resolvers", res, "rules", rules, "sets", sets, "ipv4",
			      entries_json(p, p->tables.e4, p->tables.n4), "ipv6",
			      entries_json(p, p->tables.e6, p->tables.n6));
	if (!o)
		return exai__err(-ENOMEM, "out of memory");
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return exai__err(-ENOMEM, "out of memory");
	*ret = text;
	return 0;
}

static const char *const reason_names[EXAI_R__COUNT] = {
	[EXAI_R_RULE] = "rule",
	[EXAI_R_DNS_ALLOW] = "dns-resolver",
	[EXAI_R_REPLY] = "reply",
	[EXAI_R_ARP] = "arp",
	[EXAI_R_NDP] = "ndp",
	[EXAI_R_ICMP_ERROR] = "icmp-error",
	[EXAI_R_DENY_DEFAULT] = "deny-default",
	[EXAI_R_DENY_FLOOR] = "deny-floor",
	[EXAI_R_DENY_DNS] = "deny-dns",
	[EXAI_R_DENY_INBOUND] = "deny-inbound",
	[EXAI_R_DENY_FRAGMENT] = "deny-fragment",
	[EXAI_R_DENY_MALFORMED] = "deny-malformed",
	[EXAI_R_DENY_ETHERTYPE] = "deny-ethertype",
	[EXAI_R_DENY_NO_POLICY] = "deny-no-policy",
	[EXAI_R_EVENTS_DROPPED] = "events-dropped",
};

const char *exai__policy_reason_name(unsigned reason)
{
	return reason < EXAI_R__COUNT && reason_names[reason] ? reason_names[reason] : "unknown";
}

/* Parses ADDR, ADDR:PORT, [V6]:PORT, each with an optional /tcp|/udp|/icmp. */
static int parse_dst(const char *dst, struct exai__cidr *addr, uint8_t *proto, uint16_t *port)
{
	char buf[128];
	const char *why = "";
	if (strlen(dst) >= sizeof(buf))
		return exai__err(-EINVAL, "destination \"%.40s...\" is too long", dst);
	snprintf(buf, sizeof(buf), "%s", dst);
	*proto = EXAI_PROTO_TCP;
	*port = 0;
	char *slash = strrchr(buf, '/');
	if (slash) {
		*slash++ = '\0';
		if (!strcasecmp(slash, "tcp"))
			*proto = EXAI_PROTO_TCP;
		else if (!strcasecmp(slash, "udp"))
			*proto = EXAI_PROTO_UDP;
		else if (!strcasecmp(slash, "icmp"))
			*proto = EXAI_PROTO_ICMP;
		else
			return exai__err(-EINVAL, "destination \"%s\": protocol \"%s\" is not tcp, udp or icmp", dst, slash);
	}
	char *host = buf, *portstr = NULL;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (!close || (close[1] && close[1] != ':'))
			return exai__err(-EINVAL, "destination \"%s\": unbalanced [ ]", dst);
		*close = '\0';
		host = buf + 1;
		portstr = close[1] ? close + 2 : NULL;
	} else {
		char *colon = strchr(buf, ':');
		if (colon && !strchr(colon + 1, ':')) { /* exactly one colon: IPv4 with a port */
			*colon = '\0';
			portstr = colon + 1;
		}
	}
	if (exai__cidr_parse(addr, host, false, &why) < 0)
		return exai__err(-EINVAL, "destination \"%s\": \"%s\" %s", dst, host, why);
	if (portstr) {
		char *end;
		long v = strtol(portstr, &end, 10);
		if (!*portstr || *end || v < 1 || v > 65535)
			return exai__err(-EINVAL, "destination \"%s\": port \"%s\" is not in 1..65535", dst, portstr);
		if (*proto == EXAI_PROTO_ICMP)
			return exai__err(-EINVAL, "destination \"%s\": ICMP has no port", dst);
		*port = (uint16_t)v;
	}
	return 0;
}

EXAI_API int exai_policy_explain(char **ret, const exai_policy *p, const char *dst)
{
	struct exai__cidr addr;
	uint8_t proto = 0;
	uint16_t port = 0;
	const struct exai__entry *e;
	int rule, r;
	char c[64];

	if (!ret || !p || !dst)
		return exai__err(-EINVAL, "exai_policy_explain: ret, policy and dst must not be NULL");
	if ((r = parse_dst(dst, &addr, &proto, &port)) < 0)
		return r;
	int reason = exai__policy_decide(&p->tables, &addr, proto, port, &e, &rule);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i}", "verdict", reason < EXAI_R_FIRST_DENY ? "allow" : "deny",
			      "reason", exai__policy_reason_name((unsigned)reason), "destination",
			      exai__cidr_str(&addr, c, sizeof(c)), "protocol", proto_name(proto), "port", (json_int_t)port);
	if (o && e)
		json_object_set_new(o, "entry", json_string(exai__cidr_str(&e->pfx, c, sizeof(c))));
	if (o && rule >= 0)
		json_object_set_new(o, "rule", json_string(p->rules[rule].name));
	if (!o)
		return exai__err(-ENOMEM, "out of memory");
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return exai__err(-ENOMEM, "out of memory");
	*ret = text;
	return 0;
}
