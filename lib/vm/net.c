/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net.c: workspace networking (docs/vm.md, "Network").
 *
 *   host netns                          tenant netns exai-<state dir id>-<tenant>
 *   exh<hash> 10.199.255.254/32 <-veth-> uplink 10.199.255.253/32  (default route: the host)
 *   route <vm /30> via .253 onlink      exai<hash> (a tap per VM) <gw>/30  [egress policy]
 *                                                |
 *                                        the guest's eth0 <ip>/30, default via <gw>
 *
 * Each VM gets the /30 10.192.0.0 + 4 * slot (slot: its uid's offset, unique in the state
 * dir): .1 the gateway on its tap, .2 the guest; its MAC is 02:00 and the guest address.
 * The tenant namespace, its veth and its routes are made with the tenant's first networked
 * VM and removed with its last. The tap is persistent (it outlives the process that made it)
 * and gets the tenant's policy before it is brought up; QEMU receives an open descriptor of
 * it, Firecracker runs inside the tenant namespace and opens it by name.
 *
 * Every name it takes on the host has the state dir's id in it (exai__vm_state_id: netns
 * exai-<id>-<tenant>, veth exh<h(id, tenant)>, tap exai<h(id, name)>), so that two state
 * dirs never share or remove each other's. Setting up and tearing down a tenant's network is
 * serialised by a lock file per tenant (<state_dir>/vm/.net-<tenant>.lock): two creates of one
 * tenant cannot both make its namespace, nor a destroy remove it under a create.
 *
 * Everything is plain rtnetlink and tun ioctls; work inside the tenant namespace is done by
 * the calling thread after setns() (and undone before returning), so nothing else of the
 * process changes namespace.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exai/policy.h"
#include "vm-internal.h"

#define NETNS_DIR "/run/netns"
#define HOST_ADDR 0x0ac7fffeu   /* 10.199.255.254: the host's end of every tenant veth */
#define TENANT_ADDR 0x0ac7fffdu /* 10.199.255.253: the tenant namespace's end */
#define VM_NET_BASE 0x0ac00000u /* 10.192.0.0/14: a /30 per VM */
#define UPLINK "uplink"

static uint32_t fnv(const char *a, const char *b)
{
	uint32_t h = 2166136261u;
	for (const char *s = a; s && *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *s = b; s && *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void netns_path(const struct exai_vm *vm, char *buf, size_t len)
{
	snprintf(buf, len, NETNS_DIR "/%s", vm->spec.net.netns);
}

static void host_veth(const struct exai_vm *vm, char buf[IF_NAMESIZE])
{
	snprintf(buf, IF_NAMESIZE, "exh%08x", fnv(vm->spec.host_id, vm->spec.tenant));
}

/* ---- rtnetlink ------------------------------------------------------------------------------ */

struct nlreq {
	union {
		struct nlmsghdr n;
		char raw[1024];
	};
};

static void *nl_init(struct nlreq *q, uint16_t type, uint16_t flags, size_t hdr_len)
{
	memset(q, 0, sizeof(*q));
	q->n.nlmsg_len = (uint32_t)NLMSG_LENGTH(hdr_len);
	q->n.nlmsg_type = type;
	q->n.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
	return q->raw + NLMSG_HDRLEN;
}

/* Appends an attribute (the requests are small and fixed: they always fit). */
static struct rtattr *nl_put(struct nlreq *q, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(void *)(q->raw + NLMSG_ALIGN(q->n.nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	q->n.nlmsg_len = NLMSG_ALIGN(q->n.nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

static void nl_put_u32(struct nlreq *q, unsigned short type, uint32_t v)
{
	nl_put(q, type, &v, sizeof(v));
}

static void nl_end(struct nlreq *q, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)(q->raw + q->n.nlmsg_len - (char *)nest);
}

/* Sends @q in the calling thread's network namespace and returns the kernel's answer. */
static int nl_call(struct nlreq *q, const char *what)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "%s: netlink socket", what);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char ans[4096];
	int r = 0;
	q->n.nlmsg_seq = 1;
	if (sendto(fd, &q->n, q->n.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = exai__neg_errno();
	ssize_t n = r ? -1 : recv(fd, ans, sizeof(ans), 0);
	if (!r && n < 0)
		r = exai__neg_errno();
	const struct nlmsghdr *h = (const struct nlmsghdr *)(void *)ans;
	if (!r && (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR))
		r = -EPROTO;
	if (!r)
		r = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
	close(fd);
	return r < 0 ? exai__err_sys(r, "%s", what) : 0;
}

static int link_up(const char *ifname)
{
	struct nlreq q;
	struct ifinfomsg *ifi = nl_init(&q, RTM_NEWLINK, 0, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)if_nametoindex(ifname);
	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	char what[64];
	snprintf(what, sizeof(what), "bring %s up", ifname);
	return ifi->ifi_index ? nl_call(&q, what) : exai__err(-ENODEV, "no network device %s", ifname);
}

static int link_del(const char *ifname)
{
	struct nlreq q;
	struct ifinfomsg *ifi = nl_init(&q, RTM_DELLINK, 0, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)if_nametoindex(ifname);
	char what[64];
	snprintf(what, sizeof(what), "delete %s", ifname);
	return ifi->ifi_index ? nl_call(&q, what) : 0;
}

static int addr_add(const char *ifname, uint32_t addr, unsigned plen)
{
	struct nlreq q;
	struct ifaddrmsg *ifa = nl_init(&q, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)plen;
	ifa->ifa_index = if_nametoindex(ifname);
	uint32_t a = htonl(addr);
	nl_put(&q, IFA_LOCAL, &a, 4);
	nl_put(&q, IFA_ADDRESS, &a, 4);
	char what[64];
	snprintf(what, sizeof(what), "add an address to %s", ifname);
	return ifa->ifa_index ? nl_call(&q, what) : exai__err(-ENODEV, "no network device %s", ifname);
}

/* A route to @dst/@plen through @gw, reachable on @ifname without a covering prefix (onlink). */
static int route(bool add, uint32_t dst, unsigned plen, uint32_t gw, const char *ifname)
{
	struct nlreq q;
	struct rtmsg *rt = nl_init(&q, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0,
				   sizeof(*rt));
	rt->rtm_family = AF_INET;
	rt->rtm_dst_len = (unsigned char)plen;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_STATIC;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	rt->rtm_flags = RTNH_F_ONLINK;
	uint32_t d = htonl(dst), g = htonl(gw), oif = if_nametoindex(ifname);
	if (plen)
		nl_put(&q, RTA_DST, &d, 4);
	nl_put(&q, RTA_GATEWAY, &g, 4);
	nl_put_u32(&q, RTA_OIF, oif);
	char what[96];
	snprintf(what, sizeof(what), "%s a route via %s", add ? "add" : "delete", ifname);
	return oif ? nl_call(&q, what) : exai__err(-ENODEV, "no network device %s", ifname);
}

/* A veth pair: @host here, its peer "uplink" in the namespace @nsfd. */
static int veth_add(const char *host, int nsfd)
{
	struct nlreq q;
	struct ifinfomsg *ifi = nl_init(&q, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	nl_put(&q, IFLA_IFNAME, host, strlen(host) + 1);
	struct rtattr *info = nl_put(&q, IFLA_LINKINFO, NULL, 0);
	nl_put(&q, IFLA_INFO_KIND, "veth", 5);
	struct rtattr *data = nl_put(&q, IFLA_INFO_DATA, NULL, 0);
	struct rtattr *peer = nl_put(&q, VETH_INFO_PEER, NULL, 0);
	struct ifinfomsg pifi = { .ifi_family = AF_UNSPEC };
	memcpy(q.raw + q.n.nlmsg_len, &pifi, sizeof(pifi));
	q.n.nlmsg_len += NLMSG_ALIGN(sizeof(pifi));
	nl_put(&q, IFLA_IFNAME, UPLINK, sizeof(UPLINK));
	nl_put_u32(&q, IFLA_NET_NS_FD, (uint32_t)nsfd);
	nl_end(&q, peer);
	nl_end(&q, data);
	nl_end(&q, info);
	return nl_call(&q, "create the tenant's veth pair");
}

/* ---- namespaces ----------------------------------------------------------------------------- */

/* Runs the rest of the calling thread's work in the namespace @path until netns_leave(). */
static int netns_enter(const char *path, int *saved)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = self < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	int r = 0;
	if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot enter the network namespace %s", path);
	if (fd >= 0)
		close(fd);
	if (r < 0 && self >= 0)
		close(self);
	*saved = r < 0 ? -1 : self;
	return r;
}

static void netns_leave(int saved)
{
	if (saved < 0)
		return;
	/* Returning to the namespace we came from cannot fail for a thread that left it. */
	if (setns(saved, CLONE_NEWNET) < 0)
		abort();
	close(saved);
}

/* /run/netns as iproute2 keeps it: a shared mount, so that other mount namespaces (and
 * `ip netns exec`) see the namespaces bound there. */
static int netns_dir(void)
{
	int r = exai__mkdir_p(NETNS_DIR, 0755);
	if (r < 0)
		return exai__err_sys(r, "cannot create " NETNS_DIR);
	if (mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL || mount(NETNS_DIR, NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0 ||
	    mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
		return exai__err_sys(exai__neg_errno(), "cannot make " NETNS_DIR " a shared mount");
	return 0;
}

/* A new network namespace bound at @path (as `ip netns add`). */
static int netns_create(const char *path)
{
	int r = netns_dir();
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot create %s", path);
	close(fd);
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0 || unshare(CLONE_NEWNET) < 0) {
		r = exai__err_sys(exai__neg_errno(), "cannot create a network namespace");
	} else {
		if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
			r = exai__err_sys(exai__neg_errno(), "cannot bind the new network namespace at %s", path);
		netns_leave(self);
		self = -1;
	}
	if (self >= 0)
		close(self);
	if (r < 0)
		unlink(path);
	return r;
}

static int netns_remove(const char *path)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return exai__err_sys(exai__neg_errno(), "cannot unmount %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return exai__err_sys(exai__neg_errno(), "cannot remove %s", path);
	return 0;
}

static int write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int r = fd < 0 ? exai__neg_errno() : exai__write_all(fd, val, strlen(val));
	if (fd >= 0)
		close(fd);
	return r < 0 ? exai__err_sys(r, "cannot write %s", path) : 0;
}

/* The tenant namespace's own configuration (called inside it). */
static int tenant_inside(void)
{
	int r;
	if ((r = link_up("lo")) < 0 || (r = addr_add(UPLINK, TENANT_ADDR, 32)) < 0 || (r = link_up(UPLINK)) < 0 ||
	    (r = route(true, 0, 0, HOST_ADDR, UPLINK)) < 0)
		return r;
	/* IPv4 only: without IPv6 the taps send the guests no router or listener queries, which
	 * the policy would refuse and report (noise in the audit log). */
	if (access("/proc/sys/net/ipv6", F_OK) == 0 &&
	    ((r = write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")) < 0 ||
	     (r = write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1")) < 0))
		return r;
	return write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
}

/* Creates the tenant namespace and its veth unless they exist. */
static int tenant_ensure(struct exai_vm *vm, bool *created)
{
	char path[PATH_MAX], veth[IF_NAMESIZE];
	netns_path(vm, path, sizeof(path));
	host_veth(vm, veth);
	*created = false;
	if (access(path, F_OK) == 0 && if_nametoindex(veth))
		return 0;
	int r = access(path, F_OK) == 0 ? 0 : netns_create(path);
	if (r < 0)
		return r;
	*created = true;
	int nsfd = open(path, O_RDONLY | O_CLOEXEC), saved;
	if (nsfd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", path);
	r = veth_add(veth, nsfd);
	close(nsfd);
	if (r == 0 && (r = addr_add(veth, HOST_ADDR, 32)) == 0 && (r = link_up(veth)) == 0 &&
	    (r = netns_enter(path, &saved)) == 0) {
		r = tenant_inside();
		netns_leave(saved);
	}
	return r;
}

/* ---- taps ------------------------------------------------------------------------------------ */

/* Opens (with @create: makes, persistent and owned by @uid) the tap @name in the calling
 * thread's namespace. */
static int tap_open(const char *name, bool create, uid_t uid, int *ret_fd)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open /dev/net/tun");
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (create ? IFF_TUN_EXCL : 0);
	int r = 0;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot %s the tap %s", create ? "create" : "open", name);
	else if (create && (ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
			    ioctl(fd, TUNSETGROUP, (unsigned long)uid) < 0 || ioctl(fd, TUNSETPERSIST, 1UL) < 0))
		r = exai__err_sys(exai__neg_errno(), "cannot make the tap %s persistent", name);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int tap_remove(const char *name)
{
	if (!if_nametoindex(name))
		return 0;
	int fd, r = tap_open(name, false, 0, &fd);
	if (r == 0) {
		if (ioctl(fd, TUNSETPERSIST, 0UL) < 0)
			r = exai__err_sys(exai__neg_errno(), "cannot remove the tap %s", name);
		close(fd);
	}
	/* Busy (a VMM still holds it) or not a tap of ours: delete the link itself. */
	return r < 0 && link_del(name) == 0 ? 0 : r;
}

int exai__vm_net_tap_fd(struct exai_vm *vm)
{
	char path[PATH_MAX];
	int saved, fd = -1;
	netns_path(vm, path, sizeof(path));
	int r = netns_enter(path, &saved);
	if (r < 0)
		return r;
	r = tap_open(vm->spec.net.tap, false, 0, &fd);
	netns_leave(saved);
	return r < 0 ? r : fd;
}

/* ---- attach / detach ------------------------------------------------------------------------ */

static void ip_str(uint32_t a, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static uint32_t vm_subnet(const struct exai_vm *vm)
{
	return VM_NET_BASE + ((vm->spec.uid - EXAI__VM_UID_BASE) % EXAI__VM_UID_SLOTS) * 4;
}

static json_t *net_json(const struct exai_vm *vm)
{
	return json_pack("{s:{s:s, s:s, s:s, s:s}}", "network", "netns", vm->spec.net.netns, "tap", vm->spec.net.tap,
			 "ip", vm->spec.net.ip, "mac", vm->spec.net.mac);
}

/* Takes the tenant's network lock (flock on <state_dir>/vm/.net-<tenant>.lock): returns its
 * descriptor (closing it lets go) or an error. */
static int tenant_lock(struct exai_vm *vm)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/vm/.net-%s.lock", exai_ctx_state_dir(vm->ctx), vm->spec.tenant) >=
	    sizeof(path))
		return exai__err(-ENAMETOOLONG, "state dir path too long");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open the tenant's network lock %s", path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = exai__err_sys(exai__neg_errno(), "cannot lock %s", path);
			close(fd);
			return r;
		}
	}
	return fd;
}

/* Whether another workspace of the state dir has a network in @vm's tenant. */
static bool tenant_in_use(struct exai_vm *vm)
{
	char *names = NULL;
	bool used = false;
	if (exai_vm_list(&names, vm->ctx) < 0)
		return true; /* when in doubt, keep the namespace */
	for (char *s = names, *nl; s && *s && !used; s = nl + 1) {
		nl = strchr(s, '\n');
		*nl = '\0';
		exai_vm *o;
		if (strcmp(s, vm->spec.name) != 0 && exai_vm_open(&o, vm->ctx, s) == 0) {
			used = o->spec.net.on && !strcmp(o->spec.net.netns, vm->spec.net.netns);
			exai_vm_free(o);
		}
	}
	free(names);
	return used;
}

static int net_attach_locked(struct exai_vm *vm, const exai_policy *policy, const char *const *floor_allow);

int exai__vm_net_attach(struct exai_vm *vm, const exai_policy *policy, const char *const *floor_allow)
{
	memset(&vm->spec.net, 0, sizeof(vm->spec.net));
	if (!policy) {
		exai__log_info(vm->ctx, "vm", "%s: no egress policy: no network device (fail closed)", vm->spec.name);
		return 0;
	}
	int lock = tenant_lock(vm);
	if (lock < 0)
		return lock;
	int r = net_attach_locked(vm, policy, floor_allow);
	/* recorded before the lock goes, so that a destroy in the tenant that takes it next
	 * sees this workspace (and keeps the namespace) */
	if (r == 0)
		r = exai__vm_set_state(vm, EXAI_VM_CREATED);
	close(lock);
	return r;
}

static int net_attach_locked(struct exai_vm *vm, const exai_policy *policy, const char *const *floor_allow)
{
	struct exai__vm_net *n = &vm->spec.net;
	const char *pt = exai_policy_tenant(policy);
	if (!pt || strcmp(pt, vm->spec.tenant) != 0)
		return exai__err(-EACCES, "the egress policy is for tenant \"%s\", not for the workspace's tenant \"%s\"",
				 pt ? pt : "", vm->spec.tenant);
	uint32_t sub = vm_subnet(vm);
	n->on = true;
	snprintf(n->netns, sizeof(n->netns), "exai-%s-%s", vm->spec.host_id, vm->spec.tenant);
	snprintf(n->tap, sizeof(n->tap), "exai%08x", fnv(vm->spec.host_id, vm->spec.name));
	ip_str(sub + 2, n->ip, sizeof(n->ip));
	ip_str(sub + 1, n->gw, sizeof(n->gw));
	snprintf(n->mac, sizeof(n->mac), "02:00:%02x:%02x:%02x:%02x", (sub + 2) >> 24, ((sub + 2) >> 16) & 255,
		 ((sub + 2) >> 8) & 255, (sub + 2) & 255);
	/* Set first, so that a failure below is cleaned up by exai__vm_net_detach(). */
	bool created = false;
	int r = tenant_ensure(vm, &created);
	if (created)
		exai__vm_event(vm, "netns-create", r, net_json(vm));
	char path[PATH_MAX], veth[IF_NAMESIZE];
	int saved = -1, fd = -1;
	netns_path(vm, path, sizeof(path));
	host_veth(vm, veth);
	if (r == 0 && (r = netns_enter(path, &saved)) == 0) {
		/* the tap: made down, given its address, the policy, and only then brought up */
		r = tap_open(n->tap, true, vm->spec.uid, &fd);
		if (fd >= 0)
			close(fd);
		if (r == 0)
			r = addr_add(n->tap, sub + 1, 30);
		exai__vm_event(vm, "tap-create", r, net_json(vm));
		if (r == 0) {
			/* the floor's "host addresses" are the host's (the namespace this thread came
			 * from), not the tenant namespace's */
			char host_ns[64];
			snprintf(host_ns, sizeof(host_ns), "/proc/thread-self/fd/%d", saved);
			EXAI_OPTS(exai_policy_dev_opts, po, .host_netns = host_ns, .floor_allow = floor_allow);
			r = exai_policy_apply(vm->ctx, n->tap, policy, &po);
			exai__vm_event(vm, "policy-attach", r, net_json(vm));
		}
		if (r == 0)
			r = link_up(n->tap);
		netns_leave(saved);
	}
	if (r == 0)
		r = route(true, sub, 30, TENANT_ADDR, veth);
	if (r < 0) {
		char why[512];
		snprintf(why, sizeof(why), "%s", exai_errmsg());
		return exai__err(r, "network of %s: %s", vm->spec.name, why);
	}
	exai__log_info(vm->ctx, "vm", "%s: tap %s in netns %s, guest %s/30 via %s, policy attached", vm->spec.name,
		       n->tap, n->netns, n->ip, n->gw);
	return 0;
}

void exai__vm_net_drain(struct exai_vm *vm)
{
	if (!vm->spec.net.on)
		return;
	int r = exai_policy_events(vm->ctx, vm->spec.net.tap, NULL, 0, NULL, NULL);
	if (r < 0 && r != -ENOENT)
		exai__log_warn(vm->ctx, "vm", "%s: cannot read the deny events of %s: %s", vm->spec.name,
			       vm->spec.net.tap, exai_errmsg());
}

static int net_detach_locked(struct exai_vm *vm);

int exai__vm_net_detach(struct exai_vm *vm)
{
	if (!vm->spec.net.on)
		return 0;
	int lock = tenant_lock(vm);
	if (lock < 0)
		return lock;
	int r = net_detach_locked(vm);
	close(lock);
	return r;
}

static int net_detach_locked(struct exai_vm *vm)
{
	struct exai__vm_net *n = &vm->spec.net;
	char path[PATH_MAX], veth[IF_NAMESIZE];
	netns_path(vm, path, sizeof(path));
	host_veth(vm, veth);
	int r = 0, saved;
	struct in_addr a;
	if (if_nametoindex(veth) && inet_pton(AF_INET, n->ip, &a) == 1)
		route(false, (ntohl(a.s_addr) & ~3u), 30, TENANT_ADDR, veth); /* gone with the veth anyway */
	if (access(path, F_OK) == 0 && (r = netns_enter(path, &saved)) == 0) {
		if (if_nametoindex(n->tap)) {
			exai__vm_net_drain(vm);
			int r2 = exai_policy_detach(vm->ctx, n->tap, NULL);
			if (r2 != -ENOENT)
				exai__vm_event(vm, "policy-detach", r2, net_json(vm));
			r = tap_remove(n->tap);
			exai__vm_event(vm, "tap-remove", r, net_json(vm));
		}
		netns_leave(saved);
	}
	/* the pins outlive the tap: remove them whether or not it was still there */
	if (r == 0 && exai_policy_detach(vm->ctx, n->tap, NULL) == 0)
		exai__vm_event(vm, "policy-detach", 0, net_json(vm));
	if (r == 0 && !tenant_in_use(vm) && (access(path, F_OK) == 0 || if_nametoindex(veth))) {
		r = link_del(veth);
		if (r == 0)
			r = netns_remove(path);
		exai__vm_event(vm, "netns-remove", r, net_json(vm));
	}
	return r;
}

json_t *exai__vm_net_inspect(struct exai_vm *vm)
{
	const struct exai__vm_net *n = &vm->spec.net;
	if (!n->on)
		return json_null();
	char path[PATH_MAX], pin[PATH_MAX];
	int saved;
	bool tap = false;
	netns_path(vm, path, sizeof(path));
	if (access(path, F_OK) == 0 && netns_enter(path, &saved) == 0) {
		tap = if_nametoindex(n->tap) != 0;
		netns_leave(saved);
	}
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/exai/%s", n->tap);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "netns", n->netns, "tap", n->tap, "ip", n->ip,
			 "gateway", n->gw, "mac", n->mac, "netns_present", access(path, F_OK) == 0, "tap_present",
			 tap, "policy_pinned", access(pin, F_OK) == 0);
}

/* After a restore the guest still has the address of the workspace it was snapshotted from:
 * give it this one's (busybox ip, through the agent). */
int exai__vm_net_guest_config(struct exai_vm *vm)
{
	const struct exai__vm_net *n = &vm->spec.net;
	if (!n->on)
		return 0;
	char script[512];
	snprintf(script, sizeof(script),
		 "ip link set dev eth0 down && ip link set dev eth0 address %s && ip addr flush dev eth0 && "
		 "ip addr add %s/30 dev eth0 && ip link set dev eth0 up && ip route replace default via %s",
		 n->mac, n->ip, n->gw);
	const char *argv[] = { "/bin/busybox", "sh", "-c", script, NULL };
	struct exai__exec_req req = { .argv = argv, .uid = -1, .gid = -1, .timeout_ms = 10000 };
	struct exai__exec_io io = { .stdin_fd = -1 };
	struct exai__exec_result res;
	int r = exai__agent_exec(vm->agent, &req, &io, &res);
	if (r == 0 && (res.exit_code || res.signal || res.timed_out))
		r = exai__err(-EIO, "the guest could not take its new address %s (status %d)", n->ip, res.exit_code);
	return r;
}
