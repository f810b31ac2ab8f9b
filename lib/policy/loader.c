/* SPDX-License-Identifier: Apache-2.0 */
/* loader.c: puts compiled policies onto devices. Loads the embedded programs (libbpf
 * skeleton), pins them and their maps under <bpffs>/exai/<ifname>/, attaches them to the
 * device's clsact hooks, switches policies atomically, reads counters and deny events. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exai-config.h"
#include "policy-internal.h"

#if EXAI_HAVE_BPF

#include <dirent.h>
#include <linux/magic.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "egress.skel.h"

#define DEFAULT_BPFFS "/sys/fs/bpf"

/* libbpf's LIBBPF_OPTS spelt out here, so that static analysers that do not read libbpf's
 * headers can follow it. The memset matters: libbpf refuses options whose padding after the
 * last field is not zero, and an initialiser alone does not promise that. */
#define BPF_OPTS(TYPE, NAME, ...)                                                                  \
	struct TYPE NAME = ({                                                                      \
		memset(&NAME, 0, sizeof(struct TYPE));                                             \
		(struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ };                           \
	})

/* libbpf prints to stderr unless told otherwise; the library never prints. While one of this
 * file's public functions runs on a thread, libbpf's messages go to the log of its context
 * (debug level; nowhere without one); at any other time to whatever printer was installed
 * before (an embedder's own use of libbpf keeps its behaviour). */
static _Thread_local bool libbpf_in_call;
static _Thread_local exai_ctx *libbpf_log_ctx;
static libbpf_print_fn_t libbpf_prev_print;

EXAI__PRINTF(2, 0) static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	if (!libbpf_in_call)
		return libbpf_prev_print ? libbpf_prev_print(level, fmt, ap) : 0;
	if (!libbpf_log_ctx || level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t len = strlen(line);
	if (len && line[len - 1] == '\n')
		line[len - 1] = '\0';
	exai__log_debug(libbpf_log_ctx, "policy", "libbpf: %s", line);
	return 0;
}

static void libbpf_log_init(void)
{
	libbpf_prev_print = libbpf_set_print(libbpf_log);
}

static exai_ctx *libbpf_log_begin(exai_ctx *ctx)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, libbpf_log_init);
	libbpf_in_call = true;
	libbpf_log_ctx = ctx;
	return ctx;
}

static void libbpf_log_end(exai_ctx **scope)
{
	(void)scope;
	libbpf_in_call = false;
	libbpf_log_ctx = NULL;
}

/* Routes libbpf's messages to @ctx until the enclosing function returns. */
#define LIBBPF_LOG_SCOPE(ctx)                                                                      \
	exai_ctx *libbpf_scope_ __attribute__((cleanup(libbpf_log_end), unused)) = libbpf_log_begin(ctx)

#define TC_HANDLE 0xe4a1
#define TC_PRIORITY 1
#define PROG_EGRESS_PIN "prog_egress"
#define PROG_INGRESS_PIN "prog_ingress"

static const char *const map_names[] = { "exai_cfg",    "exai_lpm4",   "exai_lpm6", "exai_dir4",
					 "exai_sets",   "exai_rules",  "exai_cnt",  "exai_ct",
					 "exai_events", "exai_bucket", "exai_fqdn", "exai_dns",  "exai_note" };
enum { M_CFG, M_LPM4, M_LPM6, M_DIR4, M_SETS, M_RULES, M_CNT, M_CT, M_EVENTS, M_BUCKET, M_FQDN, M_DNS, M_NOTE, M__COUNT };

struct dev {
	char ifname[IF_NAMESIZE];
	int ifindex;
	char dir[512];
	int fd[M__COUNT];
};

static void dev_close(struct dev *d)
{
	for (int i = 0; i < M__COUNT; i++)
		if (d->fd[i] >= 0) {
			close(d->fd[i]);
			d->fd[i] = -1;
		}
}

static int check_ifname(const char *ifname)
{
	if (!ifname || !ifname[0] || strlen(ifname) >= IF_NAMESIZE || strchr(ifname, '/') || !strcmp(ifname, ".") ||
	    !strcmp(ifname, ".."))
		return exai__err(-EINVAL, "\"%s\" is not a network device name", ifname ? ifname : "(null)");
	return 0;
}

/* Makes sure @root is a bpffs; mounts one at the default path if nothing is there. */
static int ensure_bpffs(const char *root, bool is_default)
{
	struct statfs st;
	if (statfs(root, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (!is_default)
		return exai__err(-ENOTDIR, "%s is not a bpffs mount", root);
	int r = exai__mkdir_p(root, 0700);
	if (r < 0)
		return exai__err_sys(r, "cannot create %s", root);
	if (mount("bpffs", root, "bpf", 0, "mode=0700") < 0)
		return exai__err_sys(exai__neg_errno(), "cannot mount bpffs on %s", root);
	return 0;
}

static int dev_init(struct dev *d, const char *ifname, const struct exai_policy_dev_opts *opts, bool need_device,
		    bool mount_ok)
{
	int r;
	memset(d, 0, sizeof(*d));
	for (int i = 0; i < M__COUNT; i++)
		d->fd[i] = -1;
	if ((r = check_ifname(ifname)) < 0)
		return r;
	snprintf(d->ifname, sizeof(d->ifname), "%s", ifname);
	d->ifindex = (int)if_nametoindex(ifname);
	if (!d->ifindex && need_device)
		return exai__err(-ENODEV, "network device \"%s\" does not exist", ifname);
	const char *root = EXAI__OPT(opts, bpffs, (const char *)NULL);
	bool is_default = !root;
	if (!root)
		root = DEFAULT_BPFFS;
	if (mount_ok && (r = ensure_bpffs(root, is_default)) < 0)
		return r;
	if ((size_t)snprintf(d->dir, sizeof(d->dir), "%s/exai/%s", root, ifname) >= sizeof(d->dir))
		return exai__err(-ENAMETOOLONG, "bpffs path %s is too long", root);
	return 0;
}

static int pin_path(char *buf, size_t size, const struct dev *d, const char *name)
{
	if ((size_t)snprintf(buf, size, "%s/%s", d->dir, name) >= size)
		return exai__err(-ENAMETOOLONG, "pin path under %s is too long", d->dir);
	return 0;
}

/* Opens every pinned map of the device. -ENOENT when no policy was ever applied there. */
static int dev_open_maps(struct dev *d)
{
	char p[600];
	for (int i = 0; i < M__COUNT; i++) {
		int r = pin_path(p, sizeof(p), d, map_names[i]);
		if (r < 0)
			return r;
		d->fd[i] = bpf_obj_get(p);
		if (d->fd[i] < 0) {
			r = exai__neg_errno();
			dev_close(d);
			if (r == -ENOENT)
				return exai__err(-ENOENT, "no egress policy is attached to %s (nothing pinned at %s)",
						 d->ifname, d->dir);
			return exai__err_sys(r, "cannot open pinned map %s", p);
		}
	}
	return 0;
}

static int set_link_down(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return exai__neg_errno();
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int r = 0;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		r = exai__neg_errno();
	else {
		ifr.ifr_flags &= ~IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			r = exai__neg_errno();
	}
	close(s);
	return r;
}

/* Unpins everything under the device's directory; the number of pins removed. What is attached
 * keeps its programs and their maps until it is replaced. */
static int unpin_all(const struct dev *d)
{
	int n = 0;
	DIR *dir = opendir(d->dir);
	if (!dir)
		return 0;
	struct dirent *de;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' && unlinkat(dirfd(dir), de->d_name, 0) == 0)
			n++;
	closedir(dir);
	return n;
}

/* Loads the embedded programs (reusing pinned maps, pinning new ones) and pins them. Maps pinned
 * by a libexai with another map layout cannot be reused: they are unpinned and the programs
 * loaded afresh (the programs attached until now keep enforcing until attach() replaces them;
 * the flows tracked so far are forgotten). */
static int load_programs(exai_ctx *ctx, struct dev *d)
{
	char p[600];
	int r = exai__mkdir_p(d->dir, 0700);
	if (r < 0)
		return exai__err_sys(r, "cannot create %s", d->dir);
	BPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = d->dir);
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return exai__err(-EIO, "cannot count the possible CPUs");
	struct exai_egress_bpf *skel = exai_egress_bpf__open_opts(&oo);
	if (!skel)
		return exai__err_sys(exai__neg_errno(), "cannot open the embedded BPF object");
	bpf_map__set_max_entries(skel->maps.exai_note, 2 * (__u32)ncpu); /* a note per CPU and direction */
	r = exai_egress_bpf__load(skel);
	if (r < 0 && unpin_all(d) > 0) {
		exai__log_warn(ctx, "policy", "%s: the maps pinned under %s could not be reused (another libexai "
					      "version?): loading afresh; the flows tracked so far are forgotten",
			       d->ifname, d->dir);
		exai_egress_bpf__destroy(skel);
		if (!(skel = exai_egress_bpf__open_opts(&oo)))
			return exai__err_sys(exai__neg_errno(), "cannot open the embedded BPF object");
		bpf_map__set_max_entries(skel->maps.exai_note, 2 * (__u32)ncpu);
		r = exai_egress_bpf__load(skel);
	}
	if (r < 0) {
		exai__err_sys(r, "cannot load the egress policy programs for %s (needs CAP_BPF and CAP_NET_ADMIN; a "
				 "map pinned by another libexai version under %s is also refused)",
			      d->ifname, d->dir);
		goto out;
	}
	struct {
		struct bpf_program *prog;
		const char *pin;
	} progs[] = { { skel->progs.exai_egress, PROG_EGRESS_PIN }, { skel->progs.exai_ingress, PROG_INGRESS_PIN } };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(progs); i++) {
		if ((r = pin_path(p, sizeof(p), d, progs[i].pin)) < 0)
			goto out;
		unlink(p); /* replaced: a filter still holds the old program until re-attached */
		r = bpf_program__pin(progs[i].prog, p);
		if (r < 0) {
			exai__err_sys(r, "cannot pin %s", p);
			goto out;
		}
	}
	exai__log_info(ctx, "policy", "loaded the egress policy programs for %s, pinned under %s", d->ifname, d->dir);
out:
	exai_egress_bpf__destroy(skel);
	return r;
}

static int prog_id_of(int fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return 0;
	return (int)info.id;
}

/* Attaches the pinned programs to both hooks unless they already are. */
static int attach(exai_ctx *ctx, struct dev *d)
{
	static const struct {
		enum bpf_tc_attach_point point;
		const char *pin;
		const char *what;
	} hooks[] = {
		{ BPF_TC_INGRESS, PROG_EGRESS_PIN, "ingress hook (guest egress)" },
		{ BPF_TC_EGRESS, PROG_INGRESS_PIN, "egress hook (towards the guest)" },
	};
	char p[600];
	int r = 0;

	for (size_t i = 0; i < EXAI__ARRAY_SIZE(hooks); i++) {
		if ((r = pin_path(p, sizeof(p), d, hooks[i].pin)) < 0)
			return r;
		int fd = bpf_obj_get(p);
		if (fd < 0)
			return exai__err_sys(exai__neg_errno(), "cannot open pinned program %s", p);
		BPF_OPTS(bpf_tc_hook, hook, .ifindex = d->ifindex, .attach_point = hooks[i].point);
		BPF_OPTS(bpf_tc_opts, q, .handle = TC_HANDLE, .priority = TC_PRIORITY);
		if (bpf_tc_query(&hook, &q) == 0 && (int)q.prog_id == prog_id_of(fd)) {
			close(fd);
			continue;
		}
		r = bpf_tc_hook_create(&hook);
		if (r < 0 && r != -EEXIST) {
			close(fd);
			return exai__err_sys(r, "cannot create the clsact qdisc on %s", d->ifname);
		}
		BPF_OPTS(bpf_tc_opts, a, .handle = TC_HANDLE, .priority = TC_PRIORITY, .prog_fd = fd,
			    .flags = BPF_TC_F_REPLACE);
		r = bpf_tc_attach(&hook, &a);
		close(fd);
		if (r < 0)
			return exai__err_sys(r, "cannot attach the egress policy to the %s of %s", hooks[i].what, d->ifname);
		exai__log_info(ctx, "policy", "attached to the %s of %s", hooks[i].what, d->ifname);
	}
	return 0;
}

/* ---- building a policy in the maps --------------------------------------------------------- */

static int update_many(int fd, const void *keys, const void *vals, size_t ksz, size_t vsz, size_t n, const char *what)
{
	/* Batches where the map supports them (arrays), else one call per element. */
	size_t done = 0;
	while (done < n) {
		__u32 count = (__u32)(n - done);
		BPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = 0, .flags = 0);
		int r = bpf_map_update_batch(fd, (const char *)keys + done * ksz, (const char *)vals + done * vsz, &count,
					     &bo);
		if (r == 0) {
			done += count;
			continue;
		}
		if (r != -EINVAL && r != -524 /* ENOTSUPP */ && r != -EOPNOTSUPP && r != -ENOTSUP)
			return exai__err_sys(r, "cannot write %s", what);
		for (; done < n; done++)
			if (bpf_map_update_elem(fd, (const char *)keys + done * ksz, (const char *)vals + done * vsz, BPF_ANY) < 0)
				return exai__err_sys(exai__neg_errno(), "cannot write %s", what);
	}
	return 0;
}

static void lpm_key(void *key, const struct exai__entry *e)
{
	if (e->pfx.family == 4) {
		struct exai_lpm4_key *k = key;
		k->prefixlen = e->pfx.plen;
		memcpy(k->addr, e->pfx.addr, 4);
	} else {
		struct exai_lpm6_key *k = key;
		k->prefixlen = e->pfx.plen;
		memcpy(k->addr, e->pfx.addr, 16);
	}
}

/* A fresh LPM trie holding @e, whose port sets are in @bank; returns its fd or a negative errno. */
static int make_trie(const struct exai__entry *e, size_t n, int family, uint32_t bank)
{
	size_t ksz = family == 4 ? sizeof(struct exai_lpm4_key) : sizeof(struct exai_lpm6_key);
	char name[16];
	snprintf(name, sizeof(name), "exai_lpm%d_b%u", family, bank);
	BPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, name, (__u32)ksz, sizeof(struct exai_lpm_val), EXAI_LPM_MAX, &mo);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot create an LPM trie for IPv%d", family);
	unsigned char *keys = calloc(n ? n : 1, ksz);
	struct exai_lpm_val *vals = calloc(n ? n : 1, sizeof(*vals));
	int r = 0;
	if (!keys || !vals)
		r = exai__err(-ENOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < n; i++) {
		lpm_key(keys + i * ksz, &e[i]);
		vals[i] = e[i].val;
		vals[i].set += bank * EXAI_MAX_SETS;
	}
	if (r == 0)
		r = update_many(fd, keys, vals, ksz, sizeof(*vals), n, family == 4 ? "IPv4 entries" : "IPv6 entries");
	free(keys);
	free(vals);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

#define DIR4_SPARE 64

/* A fresh IPv4 direct table for @e (port sets in @bank): its fd, -E2BIG (without a message) when
 * the entries need more chunks than it may have, or a negative errno. */
static int make_dir4(const struct exai__entry *e, size_t n, uint32_t bank)
{
	size_t nc = 0;
	int r = exai__dir4_size(&nc, e, n);
	if (r < 0)
		return r;
	/* spare chunks, zero, for the addresses learnt from DNS while the table is live */
	nc += nc + DIR4_SPARE <= EXAI_DIR_MAX_CHUNKS ? DIR4_SPARE : EXAI_DIR_MAX_CHUNKS - nc;
	/* Built in memory backed by huge pages where the kernel offers them (a table of 10 000
	 * prefixes is some 7 MiB: faulting it in page by page cost more than building it), then
	 * copied into the map in one call. */
	size_t len = nc * sizeof(struct exai_dir_chunk);
	size_t huge = 2u << 20, maplen = (len + huge - 1) / huge * huge + huge;
	uint8_t *raw = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return exai__err_sys(exai__neg_errno(), "cannot allocate the IPv4 direct table (%zu KiB)", len / 1024);
	struct exai_dir_chunk *c = (void *)(raw + (huge - (uintptr_t)raw % huge) % huge);
	madvise(c, maplen - huge, MADV_HUGEPAGE);
	__u32 *keys = calloc(nc, sizeof(*keys));
	int fd = -1;
	if (!keys) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nc; i++)
		keys[i] = (__u32)i;
	if ((r = exai__dir4_fill(c, nc, e, n, bank)) < 0)
		goto out;
	char name[16];
	snprintf(name, sizeof(name), "exai_dir4_b%u", bank);
	BPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_INNER_MAP);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(__u32), sizeof(*c), (__u32)nc, &mo);
	if (fd < 0) {
		r = exai__err_sys(exai__neg_errno(), "cannot create the IPv4 direct table (%zu KiB)", len / 1024);
		goto out;
	}
	r = update_many(fd, keys, c, sizeof(*keys), sizeof(*c), nc, "the IPv4 direct table");
out:
	free(keys);
	munmap(raw, maplen);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

/* The map now in the slot of the map of maps @outer (an fd), or -ENOENT when it is empty. */
static int current_table(int outer)
{
	__u32 k = 0, id = 0;
	if (bpf_map_lookup_elem(outer, &k, &id) < 0 || !id)
		return -ENOENT;
	int fd = bpf_map_get_fd_by_id(id);
	return fd < 0 ? exai__neg_errno() : fd;
}

/* Puts map @fd into the slot of @outer, or empties the slot when @fd < 0. The kernel returns
 * only once no program can still be using the map it replaces (for maps of maps, updates and
 * deletions wait for an RCU grace period). */
static int swap_table(const struct dev *d, int outer, int fd, const char *what)
{
	__u32 k = 0;
	if (fd >= 0 ? bpf_map_update_elem(outer, &k, &fd, BPF_ANY) < 0
		    : bpf_map_delete_elem(outer, &k) < 0 && errno != ENOENT)
		return exai__err_sys(exai__neg_errno(), "cannot %s the %s of %s", fd >= 0 ? "install" : "remove", what,
				     d->ifname);
	return 0;
}

static int read_cfg(const struct dev *d, struct exai_cfg *cfg)
{
	__u32 k = 0;
	if (bpf_map_lookup_elem(d->fd[M_CFG], &k, cfg) < 0)
		return exai__err_sys(exai__neg_errno(), "cannot read the policy configuration of %s", d->ifname);
	return 0;
}

static int write_cfg(const struct dev *d, const struct exai_cfg *cfg)
{
	__u32 k = 0;
	if (bpf_map_update_elem(d->fd[M_CFG], &k, cfg, BPF_ANY) < 0)
		return exai__err_sys(exai__neg_errno(), "cannot write the policy configuration of %s", d->ifname);
	return 0;
}

/* Waits until every program run that started before now has finished: TC programs run in RCU
 * read-side sections, and MEMBARRIER_CMD_GLOBAL waits for an RCU grace period. */
static void wait_for_readers(void)
{
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) < 0)
		usleep(50 * 1000);
}

static int zero_bank_counters(const struct dev *d, uint32_t bank, size_t nrules)
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return exai__err(-EIO, "cannot count the possible CPUs");
	struct exai_counter *zero = calloc((size_t)ncpu, sizeof(*zero));
	if (!zero)
		return exai__err(-ENOMEM, "out of memory");
	int r = 0;
	for (size_t i = 0; r == 0 && i < nrules; i++) {
		__u32 slot = EXAI_CNT_RULE_BASE + bank * EXAI_MAX_RULES + (uint32_t)i;
		if (bpf_map_update_elem(d->fd[M_CNT], &slot, zero, BPF_ANY) < 0)
			r = exai__err_sys(exai__neg_errno(), "cannot reset counters");
	}
	free(zero);
	return r;
}

static bool has_patterns(const exai_policy *p)
{
	for (size_t ri = 0; ri < p->nrules; ri++)
		for (size_t k = 0; k < p->rules[ri].nfqdns; k++)
			if (p->rules[ri].fqdns[k].pattern)
				return true;
	return false;
}

/* Builds @c under a fresh policy id in the bank the running policy does not use (port sets, rule
 * names, counters, and a new LPM trie per family), then switches: each family's trie replaces
 * the running one in one step, and the policy id (which stats and events read) follows. */
static int build_and_switch(exai_ctx *ctx, struct dev *d, const exai_policy *p, const struct exai__compiled *c,
			    const struct exai_policy_dev_opts *opts)
{
	struct exai_cfg cfg;
	int r;

	if ((r = read_cfg(d, &cfg)) < 0)
		return r;
	uint32_t old = cfg.policy_id;
	uint32_t id = old + 1;
	if (id == 0)
		id = 2; /* wrapped: keep clear of 0 (no policy) and the bank of the running policy */
	if ((id & 1) == (old & 1))
		id++;
	uint32_t bank = id & 1;

	/* Port sets and rule names of the new bank. */
	__u32 *keys = calloc(c->nsets > p->nrules ? c->nsets + 1 : p->nrules + 1, sizeof(*keys));
	struct exai_rule_info *infos = calloc(p->nrules + 1, sizeof(*infos));
	if (!keys || !infos) {
		free(keys);
		free(infos);
		return exai__err(-ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < c->nsets; i++)
		keys[i] = bank * EXAI_MAX_SETS + (uint32_t)i;
	r = update_many(d->fd[M_SETS], keys, c->sets, sizeof(*keys), sizeof(*c->sets), c->nsets, "port sets");
	for (size_t i = 0; r == 0 && i < p->nrules; i++) {
		keys[i] = bank * EXAI_MAX_RULES + (uint32_t)i;
		snprintf(infos[i].name, sizeof(infos[i].name), "%s", p->rules[i].name);
		infos[i].policy_id = id;
	}
	if (r == 0)
		r = update_many(d->fd[M_RULES], keys, infos, sizeof(*keys), sizeof(*infos), p->nrules, "rule names");
	free(keys);
	free(infos);
	if (r == 0)
		r = zero_bank_counters(d, bank, p->nrules);
	/* IPv4: the direct table, or the trie when the table would be too large. */
	int t4 = -1, d4 = -1, t6 = -1, old6 = -1;
	if (r == 0 && (d4 = make_dir4(c->e4, c->n4, bank)) == -E2BIG && (t4 = make_trie(c->e4, c->n4, 4, bank)) < 0)
		r = t4;
	else if (r == 0 && d4 < 0 && d4 != -E2BIG)
		r = d4;
	if (r == 0 && (t6 = make_trie(c->e6, c->n6, 6, bank)) < 0)
		r = t6;
	if (r == 0 && (old6 = current_table(d->fd[M_LPM6])) < 0 && old6 != -ENOENT)
		r = exai__err_sys(old6, "cannot read the IPv6 table of %s", d->ifname);

	/* Until here the running policy never looked at this bank. The switch: IPv6, then IPv4 (a
	 * packet is of one family and sees one table); if IPv4 fails, IPv6 goes back. The datapath
	 * prefers the direct table: with it, the IPv4 trie slot is emptied afterwards; without, the
	 * new trie goes in first and removing the direct table is the switch. */
	if (r == 0 && (r = swap_table(d, d->fd[M_LPM6], t6, "IPv6 table")) == 0) {
		if (d4 >= 0) {
			r = swap_table(d, d->fd[M_DIR4], d4, "IPv4 direct table");
			if (r == 0 && swap_table(d, d->fd[M_LPM4], -1, "previous IPv4 table") < 0)
				exai__log_warn(ctx, "policy", "%s", exai_errmsg()); /* unused, only memory */
		} else {
			r = swap_table(d, d->fd[M_LPM4], t4, "IPv4 table");
			if (r == 0)
				r = swap_table(d, d->fd[M_DIR4], -1, "previous IPv4 direct table");
		}
		if (r < 0) {
			char why[512];
			snprintf(why, sizeof(why), "%s", exai_errmsg());
			if (swap_table(d, d->fd[M_LPM6], old6, "previous IPv6 table") < 0)
				exai__log_err(ctx, "policy", "%s", exai_errmsg());
			exai__err(r, "%s", why);
		}
	}
	if (t4 >= 0)
		close(t4); /* the maps of maps hold them now (or nothing does, and they go) */
	if (d4 >= 0)
		close(d4);
	if (t6 >= 0)
		close(t6);
	if (old6 >= 0)
		close(old6);
	if (r < 0)
		return r;

	uint32_t rate = EXAI__OPT(opts, event_rate, 100u), burst = EXAI__OPT(opts, event_burst, 200u);
	cfg.ev_interval_ns = 1000000000ull / rate;
	cfg.ev_burst_ns = cfg.ev_interval_ns * burst;
	static const __u32 timeouts[EXAI_CT_T__COUNT] = EXAI_CT_DEFAULT_TIMEOUTS;
	memcpy(cfg.ct_timeout_s, timeouts, sizeof(timeouts));
	cfg.flags = has_patterns(p) ? EXAI_CFG_SNOOP_DNS : 0;
	cfg.policy_id = id;
	if ((r = write_cfg(d, &cfg)) < 0)
		return r;
	/* A program run that read the old id may still reuse a verdict it noted under it (the
	 * per-CPU note); once this returns, none can. */
	wait_for_readers();
	exai__log_info(ctx, "policy", "%s: policy %u of tenant %s active (%zu IPv4, %zu IPv6 entries)", d->ifname, id,
		       p->tenant, c->n4, c->n6);
	return 0;
}

/* ---- floor and FQDNs ------------------------------------------------------------------------ */

struct cidr_list {
	struct exai__cidr *v;
	size_t n, cap;
};

static int cidr_list_add(struct cidr_list *l, const struct exai__cidr *c)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct exai__cidr *nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return exai__err(-ENOMEM, "out of memory");
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = *c;
	return 0;
}

/* The addresses of the namespace @netns (NULL: the calling thread's): the thread enters it
 * for getifaddrs() only. */
static int host_addresses(struct cidr_list *l, const char *netns)
{
	struct ifaddrs *ifa, *i;
	int r = 0, self = -1, ns = -1, got;
	if (netns && ((self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0 ||
		      (ns = open(netns, O_RDONLY | O_CLOEXEC)) < 0 || setns(ns, CLONE_NEWNET) < 0)) {
		r = exai__err_sys(exai__neg_errno(), "cannot enter the host's network namespace %s", netns);
		if (self >= 0)
			close(self);
		if (ns >= 0)
			close(ns);
		return r;
	}
	got = getifaddrs(&ifa);
	int e = exai__neg_errno();
	if (netns) {
		if (setns(self, CLONE_NEWNET) < 0) /* back where it came from: cannot fail */
			abort();
		close(self);
		close(ns);
	}
	if (got < 0)
		return exai__err_sys(e, "cannot list the host's addresses");
	for (i = ifa; r == 0 && i; i = i->ifa_next) {
		struct exai__cidr c = { 0 };
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			c.family = 4;
			c.plen = 32;
			memcpy(c.addr, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			c.family = 6;
			c.plen = 128;
			memcpy(c.addr, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		r = cidr_list_add(l, &c);
	}
	freeifaddrs(ifa);
	return r;
}

/* One address a matchName resolved to, with the name's TTL. */
struct fresh {
	uint64_t hash;
	uint32_t ttl;
	struct exai__cidr addr;
};

struct fresh_list {
	struct fresh *v;
	size_t n, cap;
};

/* Resolves every matchName of @p (glibc's resolver, with TTLs) into @out. */
static int resolve_fqdns(exai_ctx *ctx, const exai_policy *p, struct fresh_list *out)
{
	for (size_t ri = 0; ri < p->nrules; ri++) {
		const struct exai__rule *rule = &p->rules[ri];
		for (size_t k = 0; k < rule->nfqdns; k++) {
			const struct exai__fqdn *f = &rule->fqdns[k];
			if (f->pattern) /* learnt from DNS answers: exai_policy_learn_dns() */
				continue;
			struct exai__cidr *addrs = NULL;
			size_t n = 0;
			uint32_t ttl;
			int r = exai__fqdn_resolve(f->name, &addrs, &n, &ttl);
			if (r < 0)
				return r;
			if (!n) /* remembered as family 0, so that the name is asked again after its TTL */
				exai__log_warn(ctx, "policy", "rule %s: %s resolves to no address", rule->name, f->name);
			for (size_t i = 0; i < (n ? n : 1); i++) {
				if (out->n == out->cap) {
					size_t nc = out->cap ? out->cap * 2 : 16;
					struct fresh *nv = realloc(out->v, nc * sizeof(*nv));
					if (!nv) {
						free(addrs);
						return exai__err(-ENOMEM, "out of memory");
					}
					out->v = nv;
					out->cap = nc;
				}
				out->v[out->n++] = (struct fresh){ .hash = exai__fqdn_hash(f->name), .ttl = ttl };
				if (n)
					out->v[out->n - 1].addr = addrs[i];
			}
			free(addrs);
		}
	}
	return 0;
}

static uint64_t boottime_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_BOOTTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void fqdn_key(struct exai_fqdn_key *k, uint64_t hash, const struct exai__cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->name_hash = hash;
	k->family = c->family;
	memcpy(k->addr, c->addr, c->family == 4 ? 4 : 16);
}

/* Adds @c to @l unless it is there. */
static int cidr_list_add_new(struct cidr_list *l, const struct exai__cidr *c)
{
	for (size_t i = 0; i < l->n; i++)
		if (!memcmp(&l->v[i], c, sizeof(*c)))
			return 0;
	return cidr_list_add(l, c);
}

/* The addresses each rule of @p admits by name: what the names resolve to now, plus, when the
 * device's map of earlier answers is open (@fd >= 0), what they resolved to before and what
 * DNS answers taught for its patterns (exai_policy_learn_dns), while their TTL and grace have
 * not run out. Records the fresh answers in that map and forgets expired ones and those of
 * names and patterns the policy no longer has. */
static int fqdn_lists(int fd, const exai_policy *p, const struct fresh_list *fr, uint32_t grace_s,
		      struct cidr_list *lists)
{
	uint64_t now = boottime_ns();
	int r = 0;

	for (size_t i = 0; r == 0 && i < fr->n; i++)
		for (size_t ri = 0; r == 0 && ri < p->nrules; ri++)
			for (size_t k = 0; r == 0 && k < p->rules[ri].nfqdns; k++)
				if (fr->v[i].addr.family && !p->rules[ri].fqdns[k].pattern &&
				    exai__fqdn_hash(p->rules[ri].fqdns[k].name) == fr->v[i].hash)
					r = cidr_list_add_new(&lists[ri], &fr->v[i].addr);
	if (r < 0 || fd < 0)
		return r;
	for (size_t i = 0; i < fr->n; i++) {
		struct exai_fqdn_key key;
		struct exai_fqdn_val val = { .refresh_ns = now + (uint64_t)fr->v[i].ttl * 900000000ull,
					     .expires_ns = now + ((uint64_t)fr->v[i].ttl + grace_s) * 1000000000ull };
		fqdn_key(&key, fr->v[i].hash, &fr->v[i].addr);
		if (bpf_map_update_elem(fd, &key, &val, BPF_ANY) < 0)
			return exai__err_sys(exai__neg_errno(), "cannot record the DNS answers (%zu addresses)", fr->n);
	}
	struct exai_fqdn_key cur, next;
	void *prev = NULL;
	while (r == 0 && bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct exai_fqdn_val val;
		bool keep = false;
		if (bpf_map_lookup_elem(fd, &next, &val) == 0 && val.expires_ns > now) {
			struct exai__cidr c = { .family = next.family, .plen = next.family == 4 ? 32 : 128 };
			memcpy(c.addr, next.addr, 16);
			for (size_t ri = 0; r == 0 && ri < p->nrules; ri++)
				for (size_t k = 0; r == 0 && k < p->rules[ri].nfqdns; k++)
					if (exai__fqdn_hash(p->rules[ri].fqdns[k].name) == next.name_hash) {
						keep = true;
						if (c.family) /* family 0: a name without addresses, kept for its retry time */
							r = cidr_list_add_new(&lists[ri], &c);
					}
		}
		if (!keep) {
			bpf_map_delete_elem(fd, &next); /* the walk goes on from the previous key */
			continue;
		}
		cur = next;
		prev = &cur;
	}
	return r;
}

/* Compiles @p with everything the device adds: host addresses, overrides, the addresses of
 * matchName rules (@fr, plus earlier answers still within TTL and grace when @fqdn_fd >= 0). */
static int compile_for_device(exai_ctx *ctx, struct exai__compiled *out, const exai_policy *p,
			      const struct exai_policy_dev_opts *opts, const struct fresh_list *fr, int fqdn_fd)
{
	struct cidr_list extra = { 0 }, allow = { 0 };
	struct cidr_list *fq = calloc(p->nrules + 1, sizeof(*fq));
	const struct exai__cidr **fqv = calloc(p->nrules + 1, sizeof(*fqv));
	size_t *fqn = calloc(p->nrules + 1, sizeof(*fqn));
	int r = 0;

	if (!fq || !fqv || !fqn)
		r = exai__err(-ENOMEM, "out of memory");
	uint32_t flags = EXAI__OPT(opts, flags, 0u);
	if (r == 0 && !(flags & EXAI_POLICY_NO_HOST_FLOOR))
		r = host_addresses(&extra, EXAI__OPT(opts, host_netns, (const char *)NULL));
	const char *const *fa = EXAI__OPT(opts, floor_allow, (const char *const *)NULL);
	for (size_t i = 0; r == 0 && fa && fa[i]; i++) {
		struct exai__cidr c;
		const char *why = "";
		if (exai__cidr_parse(&c, fa[i], true, &why) < 0)
			r = exai__err(-EINVAL, "floor override \"%s\" %s", fa[i], why);
		else
			r = cidr_list_add(&allow, &c);
		if (r == 0)
			exai__log_warn(ctx, "policy", "operator override: %s is carved out of the floor", fa[i]);
	}
	if (r == 0)
		r = fqdn_lists(fqdn_fd, p, fr, EXAI__OPT(opts, fqdn_grace_s, 60u), fq);
	if (r == 0) {
		for (size_t i = 0; i < p->nrules; i++) {
			fqv[i] = fq[i].v;
			fqn[i] = fq[i].n;
		}
		struct exai__floor fl = { .extra = extra.v, .nextra = extra.n, .allow = allow.v, .nallow = allow.n,
					  .fqdn_addrs = fqv, .fqdn_naddrs = fqn };
		r = exai__policy_compile(out, p, &fl);
	}
	for (size_t i = 0; fq && i < p->nrules; i++)
		free(fq[i].v);
	free(fq);
	free(fqv);
	free(fqn);
	free(extra.v);
	free(allow.v);
	return r;
}

/* ---- public --------------------------------------------------------------------------------- */

static int check_dev_opts(const struct exai_policy_dev_opts *opts)
{
	int r = EXAI__OPTS_CHECK(opts, exai_policy_dev_opts);
	if (r < 0)
		return r;
	uint32_t flags = EXAI__OPT(opts, flags, 0u);
	if (flags & ~(uint32_t)EXAI_POLICY_NO_HOST_FLOOR)
		return exai__err(-EINVAL, "exai_policy_dev_opts.flags has unknown bits 0x%x",
				 flags & ~(uint32_t)EXAI_POLICY_NO_HOST_FLOOR);
	uint32_t rate = EXAI__OPT(opts, event_rate, 100u);
	if (rate > 1000000)
		return exai__err(-EINVAL, "exai_policy_dev_opts.event_rate %u is above 1000000 per second", rate);
	return 0;
}

EXAI_API int exai_policy_apply(exai_ctx *ctx, const char *ifname, const exai_policy *p,
			       const struct exai_policy_dev_opts *opts)
{
	struct exai__compiled c = { 0 };
	struct dev d;
	char pin[600];
	int r;

	LIBBPF_LOG_SCOPE(ctx);

	if (!p)
		return exai__err(-EINVAL, "exai_policy_apply: policy is NULL");
	if ((r = check_dev_opts(opts)) < 0 || (r = dev_init(&d, ifname, opts, true, false)) < 0)
		return r; /* no such device, or bad arguments: nothing to protect */

	/* "unprotected": no policy was attached to the device before this call, or attaching
	 * failed. Then any failure leaves the device down (fail closed); otherwise the running
	 * policy stays as it was. */
	struct fresh_list fr = { 0 };
	bool loaded = false;
	if ((r = pin_path(pin, sizeof(pin), &d, PROG_EGRESS_PIN)) < 0)
		goto out;
	bool unprotected = access(pin, F_OK) != 0;
	if ((r = dev_init(&d, ifname, opts, true, true)) < 0 || (r = resolve_fqdns(ctx, p, &fr)) < 0)
		goto fail_closed;

	/* Compile before loading anything, so that a policy that does not fit changes nothing. */
	loaded = !unprotected && dev_open_maps(&d) == 0;
	unprotected = unprotected || !loaded;
	if ((r = compile_for_device(ctx, &c, p, opts, &fr, loaded ? d.fd[M_FQDN] : -1)) < 0)
		goto fail_closed;
	if (!loaded) {
		if ((r = load_programs(ctx, &d)) < 0 || (r = dev_open_maps(&d)) < 0)
			goto fail_closed;
		/* record the answers this first compilation used */
		struct cidr_list *none = calloc(p->nrules + 1, sizeof(*none));
		if (!none) {
			r = exai__err(-ENOMEM, "out of memory");
			goto fail_closed;
		}
		r = fqdn_lists(d.fd[M_FQDN], p, &fr, EXAI__OPT(opts, fqdn_grace_s, 60u), none);
		for (size_t i = 0; i < p->nrules; i++)
			free(none[i].v);
		free(none);
		if (r < 0)
			goto fail_closed;
	}
	if ((r = build_and_switch(ctx, &d, p, &c, opts)) < 0)
		goto fail_closed;
	if ((r = attach(ctx, &d)) < 0) {
		unprotected = true; /* whatever was attached before is not trustworthy now */
		goto fail_closed;
	}
	goto out;

fail_closed:
	if (unprotected) {
		char why[1024];
		snprintf(why, sizeof(why), "%s", exai_errmsg());
		int r2 = set_link_down(d.ifname);
		if (r2 < 0)
			exai__err(r, "%s; and setting %s down failed too (%s): the device may pass traffic unfiltered", why,
				  d.ifname, exai_strerror(r2));
		else
			exai__err(r, "%s; %s has been set down (fail closed)", why, d.ifname);
		exai__log_err(ctx, "policy", "%s", exai_errmsg());
	}
out:
	dev_close(&d);
	exai__compiled_free(&c);
	free(fr.v);
	return r;
}

EXAI_API int exai_policy_detach(exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts)
{
	struct dev d;
	int r, found = 0;

	LIBBPF_LOG_SCOPE(ctx);

	if ((r = check_dev_opts(opts)) < 0 || (r = dev_init(&d, ifname, opts, false, false)) < 0)
		return r;
	if (d.ifindex) {
		enum bpf_tc_attach_point points[] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
		for (size_t i = 0; i < 2; i++) {
			BPF_OPTS(bpf_tc_hook, hook, .ifindex = d.ifindex, .attach_point = points[i]);
			BPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY);
			r = bpf_tc_detach(&hook, &o);
			if (r == 0)
				found = 1;
			else if (r != -ENOENT && r != -EINVAL)
				return exai__err_sys(r, "cannot detach the egress policy from %s", d.ifname);
		}
	}
	if (unpin_all(&d) > 0)
		found = 1;
	if (rmdir(d.dir) < 0 && errno != ENOENT)
		return exai__err_sys(exai__neg_errno(), "cannot remove %s", d.dir);
	if (!found)
		return exai__err(-ENOENT, "no egress policy is attached to %s", d.ifname);
	exai__log_info(ctx, "policy", "detached the egress policy from %s and removed %s", d.ifname, d.dir);
	return 0;
}

/* The CPUs' notes (egress.h: struct exai_note) into @notes (@nnotes of them, two per CPU; a
 * missing one reads as empty). */
static int read_notes(const struct dev *d, struct exai_note *notes, int nnotes)
{
	for (int i = 0; i < nnotes; i++) {
		__u32 k = (__u32)i;
		if (bpf_map_lookup_elem(d->fd[M_NOTE], &k, &notes[i]) < 0) {
			if (errno != ENOENT)
				return exai__err_sys(exai__neg_errno(), "cannot read the flow notes of %s", d->ifname);
			memset(&notes[i], 0, sizeof(notes[i]));
		}
	}
	return 0;
}

/* The counters of the policy @cfg into @out (EXAI_R__COUNT reasons, then the rules; *@nout set),
 * from exai_cnt alone. */
static int read_counters(const struct dev *d, const struct exai_cfg *cfg, struct exai_counter *pc, int ncpu,
			 struct exai_policy_counter *out, size_t *nout)
{
	size_t n = 0;
	uint32_t bank = cfg->policy_id & 1;
	memset(out, 0, (EXAI_R__COUNT + EXAI_MAX_RULES) * sizeof(*out));
	for (uint32_t slot = 0; slot < EXAI_R__COUNT + EXAI_MAX_RULES; slot++) {
		struct exai_policy_counter *o = &out[n];
		__u32 key = slot;
		if (slot >= EXAI_R__COUNT) {
			struct exai_rule_info info;
			__u32 ri = bank * EXAI_MAX_RULES + (slot - EXAI_R__COUNT);
			if (!cfg->policy_id || bpf_map_lookup_elem(d->fd[M_RULES], &ri, &info) < 0 ||
			    info.policy_id != cfg->policy_id)
				break;
			info.name[sizeof(info.name) - 1] = '\0';
			snprintf(o->name, sizeof(o->name), "rule:%s", info.name);
			key = EXAI_CNT_RULE_BASE + ri;
		} else {
			snprintf(o->name, sizeof(o->name), "%s", exai__policy_reason_name(slot));
			o->deny = slot >= EXAI_R_FIRST_DENY && slot != EXAI_R_EVENTS_DROPPED;
		}
		if (bpf_map_lookup_elem(d->fd[M_CNT], &key, pc) < 0)
			return exai__err_sys(exai__neg_errno(), "cannot read the counters of %s", d->ifname);
		for (int cpu = 0; cpu < ncpu; cpu++) {
			o->packets += pc[cpu].packets;
			o->bytes += pc[cpu].bytes;
		}
		n++;
	}
	*nout = n;
	return 0;
}

/* Adds the counts pending in @notes to @out (as read_counters() left it, @n entries). */
static void add_notes(const struct exai_note *notes, int nnotes, const struct exai_cfg *cfg,
		      struct exai_policy_counter *out, size_t n)
{
	for (int k = 0; k < nnotes; k++) {
		const struct exai_note *nt = &notes[k];
		size_t i = SIZE_MAX;
		if (!nt->packets)
			continue;
		if (nt->slot < EXAI_R__COUNT)
			i = nt->slot;
		else if (nt->slot >= EXAI_CNT_RULE_BASE && nt->policy_id == cfg->policy_id &&
			 (uint32_t)(nt->slot - EXAI_CNT_RULE_BASE) / EXAI_MAX_RULES == (cfg->policy_id & 1))
			i = EXAI_R__COUNT + (uint32_t)(nt->slot - EXAI_CNT_RULE_BASE) % EXAI_MAX_RULES;
		if (i < n) {
			out[i].packets += nt->packets;
			out[i].bytes += nt->bytes;
		}
	}
}

EXAI_API int exai_policy_stats(struct exai_policy_counter **ret, size_t *retn, uint32_t *ret_policy_id,
			       exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts)
{
	struct dev d;
	struct exai_cfg cfg;
	int r;

	LIBBPF_LOG_SCOPE(ctx);

	if (!ret || !retn)
		return exai__err(-EINVAL, "exai_policy_stats: ret and retn must not be NULL");
	if ((r = check_dev_opts(opts)) < 0 || (r = dev_init(&d, ifname, opts, false, false)) < 0 ||
	    (r = dev_open_maps(&d)) < 0)
		return r;
	if ((r = read_cfg(&d, &cfg)) < 0)
		goto out;
	int ncpu = libbpf_num_possible_cpus();
	size_t nc = ncpu > 0 ? (size_t)ncpu : 1;
	struct exai_counter *pc = calloc(nc, sizeof(*pc));
	struct exai_note *before = calloc(2 * nc, sizeof(*before)), *after = calloc(2 * nc, sizeof(*after));
	struct exai_policy_counter *out = calloc(EXAI_R__COUNT + EXAI_MAX_RULES, sizeof(*out));
	size_t n = 0;
	if (!pc || !before || !after || !out || ncpu <= 0) {
		r = exai__err(-ENOMEM, "out of memory");
		goto done;
	}
	/* The packets of established flows wait in the CPUs' notes until a note changes slot, when
	 * they move to exai_cnt. A reading is consistent when no move happened on any CPU while
	 * exai_cnt was read (the notes' "seq" the same, and even, before and after); a few tries
	 * get one unless the traffic alternates rules on every packet, and then the last is used
	 * (off, at most, by the packets of the moves under way). */
	for (int attempt = 0; attempt < 8; attempt++) {
		if ((r = read_notes(&d, before, 2 * ncpu)) < 0 || (r = read_counters(&d, &cfg, pc, ncpu, out, &n)) < 0 ||
		    (r = read_notes(&d, after, 2 * ncpu)) < 0)
			break;
		bool stable = true;
		for (int i = 0; i < 2 * ncpu; i++)
			if (before[i].seq != after[i].seq || (after[i].seq & 1))
				stable = false;
		if (stable)
			break;
	}
	if (r == 0)
		add_notes(after, 2 * ncpu, &cfg, out, n);
done:
	free(pc);
	free(before);
	free(after);
	if (r < 0) {
		free(out);
		goto out;
	}
	/* The datapath counts a packet a rule allows only in that rule's slot. */
	for (size_t i = EXAI_R__COUNT; i < n; i++) {
		out[EXAI_R_RULE].packets += out[i].packets;
		out[EXAI_R_RULE].bytes += out[i].bytes;
	}
	*ret = out;
	*retn = n;
	if (ret_policy_id)
		*ret_policy_id = cfg.policy_id;
out:
	dev_close(&d);
	return r;
}

EXAI_API int exai_policy_refresh_in(uint32_t *ret_ms, exai_ctx *ctx, const char *ifname,
				    const struct exai_policy_dev_opts *opts)
{
	struct dev d;
	int r;

	LIBBPF_LOG_SCOPE(ctx);
	if (!ret_ms)
		return exai__err(-EINVAL, "exai_policy_refresh_in: ret_ms is NULL");
	if ((r = check_dev_opts(opts)) < 0 || (r = dev_init(&d, ifname, opts, false, false)) < 0 ||
	    (r = dev_open_maps(&d)) < 0)
		return r;
	uint64_t now = boottime_ns(), best = UINT64_MAX;
	struct exai_fqdn_key cur, next;
	void *prev = NULL;
	while (bpf_map_get_next_key(d.fd[M_FQDN], prev, &next) == 0) {
		struct exai_fqdn_val val;
		if (bpf_map_lookup_elem(d.fd[M_FQDN], &next, &val) == 0) {
			/* an address no longer in the answers is due when it expires */
			uint64_t at = val.refresh_ns > now || val.expires_ns <= val.refresh_ns ? val.refresh_ns : val.expires_ns;
			if (at < best)
				best = at;
		}
		cur = next;
		prev = &cur;
	}
	dev_close(&d);
	if (best == UINT64_MAX)
		*ret_ms = UINT32_MAX;
	else if (best <= now)
		*ret_ms = 0;
	else
		*ret_ms = (best - now) / 1000000 > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)((best - now) / 1000000);
	return 0;
}

/* ---- addresses of matchPattern rules, from DNS answers --------------------------------------- */

struct learn_state {
	exai_ctx *ctx;
	const exai_policy *p;
	const char *ifname;
	int fd; /* exai_fqdn */
	uint32_t grace_s;
	int added;
	struct cidr_list fresh; /* the addresses new to exai_fqdn */
};

/* Whether the policy running on @d (@cfg) is @p: the same rule names, in order, in its bank. */
static bool running_is(const struct dev *d, const struct exai_cfg *cfg, const exai_policy *p)
{
	uint32_t bank = cfg->policy_id & 1;
	if (!cfg->policy_id || p->nrules > EXAI_MAX_RULES)
		return false;
	for (size_t i = 0; i <= p->nrules && i < EXAI_MAX_RULES; i++) {
		struct exai_rule_info info;
		__u32 k = bank * EXAI_MAX_RULES + (uint32_t)i;
		bool have = bpf_map_lookup_elem(d->fd[M_RULES], &k, &info) == 0 && info.policy_id == cfg->policy_id;
		if (i == p->nrules)
			return !have;
		info.name[sizeof(info.name) - 1] = '\0';
		if (!have || strcmp(info.name, p->rules[i].name))
			return false;
	}
	return true;
}

/* The index (bank-relative) of a port set of @bank equal to @ps, or -1. */
static int find_set(const struct dev *d, uint32_t bank, const struct exai_portset *ps)
{
	for (uint32_t i = 0; i < EXAI_MAX_SETS; i++) {
		struct exai_portset cur;
		__u32 k = bank * EXAI_MAX_SETS + i;
		if (bpf_map_lookup_elem(d->fd[M_SETS], &k, &cur) == 0 && !memcmp(&cur, ps, sizeof(cur)))
			return (int)i;
	}
	return -1;
}

/* Sets the entry for the /32 @addr in the live IPv4 direct table @fd (of @nchunks chunks) to
 * @val, taking spare chunks (all zero: a used one holds at least the entry it was taken for)
 * where the path stops short of the last byte. Chunks are written before what points to them,
 * so the datapath sees the old value or the new one. 0, or -ENOSPC when no spare chunk is left. */
static int dir4_insert(int fd, uint32_t nchunks, const uint8_t addr[4], uint16_t val)
{
	struct exai_dir_chunk path[3], fresh;
	__u32 idx[3] = { addr[0] }, k;
	int depth = 0, spare_from = nchunks > DIR4_SPARE ? (int)(nchunks - DIR4_SPARE) : 256;
	for (;;) {
		if (bpf_map_lookup_elem(fd, &idx[depth], &path[depth]) < 0)
			return exai__err_sys(exai__neg_errno(), "cannot read the IPv4 direct table");
		uint16_t e = path[depth].e[addr[depth + 1]];
		if (depth == 2 || !(e & EXAI_DIR_NEXT))
			break;
		idx[depth + 1] = e & ~EXAI_DIR_NEXT;
		depth++;
	}
	/* Below path[depth]: new chunks for the remaining bytes, each filled with what covered
	 * the address so far, the last holding @val. */
	uint16_t cover = path[depth].e[addr[depth + 1]];
	uint16_t down = val;
	for (int level = 2; level > depth; level--) {
		for (k = (__u32)spare_from; k < nchunks; k++) {
			bool zero = bpf_map_lookup_elem(fd, &k, &fresh) == 0;
			for (int i = 0; zero && i < 256; i++)
				zero = fresh.e[i] == 0;
			if (zero)
				break;
		}
		if (k >= nchunks)
			return -ENOSPC;
		for (int i = 0; i < 256; i++)
			fresh.e[i] = cover;
		fresh.e[addr[level + 1]] = down;
		if (bpf_map_update_elem(fd, &k, &fresh, BPF_ANY) < 0)
			return exai__err_sys(exai__neg_errno(), "cannot write the IPv4 direct table");
		down = (uint16_t)(EXAI_DIR_NEXT | k);
	}
	path[depth].e[addr[depth + 1]] = down;
	if (bpf_map_update_elem(fd, &idx[depth], &path[depth], BPF_ANY) < 0)
		return exai__err_sys(exai__neg_errno(), "cannot write the IPv4 direct table");
	return 0;
}

/* Puts the addresses just learnt (@l) into the live tables of @d, where the running policy is
 * @p: each as the /32 or /128 entry the next apply would make (compiled from the same rules and
 * answers), naming an equal port set of the running bank. An addition can only allow what the
 * bundle's matchPattern allows, so no swap is needed. An address that cannot go in live (no
 * equal port set, no spare chunk, another policy running) waits for the next apply. Returns
 * how many went in. */
static int learn_live(exai_ctx *ctx, struct dev *d, const exai_policy *p, const struct exai_policy_dev_opts *opts,
		      const struct cidr_list *l)
{
	struct exai__compiled c = { 0 };
	struct exai_cfg cfg;
	struct fresh_list none = { 0 };
	int r, done = 0;

	if ((r = read_cfg(d, &cfg)) < 0)
		return r;
	if (!running_is(d, &cfg, p)) {
		exai__log_info(ctx, "policy", "%s: another policy is running: the learnt addresses wait for the next apply",
			       d->ifname);
		return 0;
	}
	if ((r = compile_for_device(ctx, &c, p, opts, &none, d->fd[M_FQDN])) < 0)
		return r;
	uint32_t bank = cfg.policy_id & 1;
	for (size_t i = 0; r >= 0 && i < l->n; i++) {
		const struct exai__cidr *a = &l->v[i];
		const struct exai__entry *e = a->family == 4 ? c.e4 : c.e6, *hit = NULL;
		size_t n = a->family == 4 ? c.n4 : c.n6;
		for (size_t k = 0; k < n && !hit; k++)
			if (!memcmp(&e[k].pfx, a, sizeof(*a)))
				hit = &e[k];
		int set = hit ? find_set(d, bank, &c.sets[hit->val.set]) : -1;
		if (set < 0)
			continue;
		uint32_t abs = bank * EXAI_MAX_SETS + (uint32_t)set;
		int dir = a->family == 4 ? current_table(d->fd[M_DIR4]) : -ENOENT;
		if (dir >= 0) {
			struct bpf_map_info info = { 0 };
			__u32 len = sizeof(info);
			r = bpf_obj_get_info_by_fd(dir, &info, &len) < 0
				    ? exai__err_sys(exai__neg_errno(), "cannot read the IPv4 direct table of %s", d->ifname)
				    : dir4_insert(dir, info.max_entries, a->addr,
						  (uint16_t)(EXAI_DIR_MATCH | (hit->val.flags & 3) << 12 | abs));
			close(dir);
		} else {
			int trie = current_table(d->fd[a->family == 4 ? M_LPM4 : M_LPM6]);
			if (trie < 0)
				continue;
			unsigned char key[sizeof(struct exai_lpm6_key)];
			struct exai_lpm_val v = { .set = abs, .flags = hit->val.flags };
			lpm_key(key, hit);
			r = bpf_map_update_elem(trie, key, &v, BPF_ANY) < 0
				    ? exai__err_sys(exai__neg_errno(), "cannot add a learnt address to %s", d->ifname)
				    : 0;
			close(trie);
		}
		if (r == 0)
			done++;
		else if (r == -ENOSPC)
			r = 0; /* the table's spare chunks are used up: the next apply makes a new one */
	}
	exai__compiled_free(&c);
	return r < 0 ? r : done;
}

static int on_dns(void *data, void *raw, size_t size)
{
	struct learn_state *st = data;
	const struct exai_dns_msg *m = raw;
	char qname[300];
	struct exai__cidr *a = NULL;
	size_t n = 0;
	uint32_t ttl;

	if (size < sizeof(*m) || m->len > EXAI_DNS_MAX ||
	    exai__dns_answers(m->data, m->len, qname, sizeof(qname), &a, &n, &ttl) < 0)
		return 0; /* not an answer to learn from (truncated, an error, no question) */
	uint64_t now = boottime_ns();
	for (size_t ri = 0; ri < st->p->nrules; ri++)
		for (size_t k = 0; k < st->p->rules[ri].nfqdns; k++) {
			const struct exai__fqdn *f = &st->p->rules[ri].fqdns[k];
			if (!f->pattern || !exai__fqdn_match(f->name, qname))
				continue;
			for (size_t i = 0; i < n; i++) {
				struct exai_fqdn_key key;
				struct exai_fqdn_val old, val;
				fqdn_key(&key, exai__fqdn_hash(f->name), &a[i]);
				/* kept until the TTL and the grace have passed; then the next apply drops it */
				val.expires_ns = now + ((uint64_t)ttl + st->grace_s) * 1000000000ull;
				val.refresh_ns = val.expires_ns;
				bool had = bpf_map_lookup_elem(st->fd, &key, &old) == 0 && old.expires_ns > now;
				if (had && old.expires_ns >= val.expires_ns)
					continue;
				if (bpf_map_update_elem(st->fd, &key, &val, BPF_ANY) < 0) {
					exai__log_warn(st->ctx, "policy", "%s: cannot record an address of %s: %s", st->ifname,
						       qname, strerror(errno));
					continue;
				}
				if (!had) {
					char c[64];
					st->added++;
					if (cidr_list_add_new(&st->fresh, &a[i]) < 0)
						exai__log_warn(st->ctx, "policy", "%s: %s", st->ifname, exai_errmsg());
					exai__log_info(st->ctx, "policy", "%s: rule %s: %s (matchPattern %s) is at %s, TTL %u s",
						       st->ifname, st->p->rules[ri].name, qname, f->name,
						       exai__cidr_str(&a[i], c, sizeof(c)), ttl);
				}
			}
		}
	free(a);
	return 0;
}

EXAI_API int exai_policy_learn_dns(exai_ctx *ctx, const char *ifname, const exai_policy *policy,
				   const struct exai_policy_dev_opts *opts, int timeout_ms)
{
	struct dev d;
	int r;

	LIBBPF_LOG_SCOPE(ctx);
	if (!policy)
		return exai__err(-EINVAL, "exai_policy_learn_dns: policy is NULL");
	if (!has_patterns(policy))
		return exai__err(-ENOMSG, "the policy has no matchPattern rules: there is nothing to learn");
	if ((r = check_dev_opts(opts)) < 0 || (r = dev_init(&d, ifname, opts, false, false)) < 0 ||
	    (r = dev_open_maps(&d)) < 0)
		return r;
	struct learn_state st = { .ctx = ctx, .p = policy, .ifname = d.ifname, .fd = d.fd[M_FQDN],
				  .grace_s = EXAI__OPT(opts, fqdn_grace_s, 60u) };
	struct ring_buffer *rb = ring_buffer__new(d.fd[M_DNS], on_dns, &st, NULL);
	if (!rb) {
		r = exai__err_sys(exai__neg_errno(), "cannot open the DNS answer ring of %s", d.ifname);
		goto out;
	}
	r = ring_buffer__poll(rb, timeout_ms < 0 ? 0 : timeout_ms);
	if (r == -EINTR)
		r = 0;
	r = r < 0 ? exai__err_sys(r, "cannot read the DNS answers of %s", d.ifname) : st.added;
	ring_buffer__free(rb);
	if (r > 0 && st.fresh.n) {
		int live = learn_live(ctx, &d, policy, opts, &st.fresh);
		if (live < 0)
			exai__log_warn(ctx, "policy", "%s: the learnt addresses wait for the next apply: %s", d.ifname,
				       exai_errmsg());
		else
			exai__log_info(ctx, "policy", "%s: %d of %zu learnt addresses enforced at once", d.ifname, live,
				       st.fresh.n);
	}
	free(st.fresh.v);
out:
	dev_close(&d);
	return r;
}

/* ---- deny events ---------------------------------------------------------------------------- */

struct ev_state {
	exai_ctx *ctx;
	const char *ifname;
	exai_policy_event_fn fn;
	void *ud;
	int count;
	int stop;
	int64_t boot_to_real_ns;
};

static const char *proto_str(uint8_t proto)
{
	switch (proto) {
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 1:
		return "icmp";
	case 58:
		return "ipv6-icmp";
	default:
		return "other";
	}
}

/* The OCSF Network Activity (class 4001, activity 5 "Refuse") object of one deny event. */
static json_t *event_ocsf(const struct exai_event *e, const char *ifname, int64_t boot_to_real_ns)
{
	char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "";
	if (e->family == 4 || e->family == 6) {
		inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->src, src, sizeof(src));
		inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->dst, dst, sizeof(dst));
	}
	int64_t real_ms = ((int64_t)e->time_ns + boot_to_real_ns) / 1000000;
	bool egress = e->dir == EXAI_DIR_EGRESS;
	const char *reason = exai__policy_reason_name(e->reason);
	json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:s, s:I, s:i, s:s, s:i, s:i, s:i, s:s, s:s,"
			      " s:{s:s, s:{s:s, s:s}}, s:{s:s}, s:{s:i, s:s, s:i, s:s, s:i},"
			      " s:{s:s, s:s, s:i}}",
			      "class_uid", 4001, "category_uid", 4, "activity_id", 5, "type_uid", 400105, "activity_name",
			      "Refuse", "time", (json_int_t)real_ms, "severity_id", 3, "severity", "Medium", "action_id", 2,
			      "disposition_id", 2, "status_id", 2, "action", "Denied", "message", reason, "metadata",
			      "version", "1.1.0", "product", "name", "libexai", "vendor_name", "libexai", "device",
			      "interface_name", ifname, "connection_info", "protocol_num", (int)e->proto, "protocol_name",
			      proto_str(e->proto), "direction_id", egress ? 2 : 1, "direction",
			      egress ? "Outbound" : "Inbound", "protocol_ver_id", e->family == 6 ? 6 : 4, "unmapped",
			      "reason", reason, "policy_module", "policy", "bytes", (int)e->len);
	if (!o)
		return NULL;
	if (e->family) {
		json_t *s = json_pack("{s:s}", "ip", src), *d = json_pack("{s:s}", "ip", dst);
		if (e->sport || e->proto == 6 || e->proto == 17)
			json_object_set_new(s, "port", json_integer(e->sport));
		if (e->dport || e->proto == 6 || e->proto == 17)
			json_object_set_new(d, "port", json_integer(e->dport));
		json_object_set_new(o, "src_endpoint", s);
		json_object_set_new(o, "dst_endpoint", d);
	}
	return o;
}

static int on_event(void *data, void *raw, size_t size)
{
	struct ev_state *st = data;
	if (size < sizeof(struct exai_event))
		return 0;
	struct exai_event e;
	memcpy(&e, raw, sizeof(e));
	json_t *o = event_ocsf(&e, st->ifname, st->boot_to_real_ns);
	if (!o)
		return -ENOMEM;
	int r = exai__ctx_emit(st->ctx, o);
	if (r < 0)
		exai__log_err(st->ctx, "policy", "%s: cannot hand a deny event to the audit log: %s", st->ifname,
			      exai_errmsg());
	st->count++;
	if (st->fn) {
		char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		if (text) {
			st->stop = st->fn(st->ud, text);
			free(text);
		}
	}
	json_decref(o);
	return st->stop ? st->stop : 0;
}

static int64_t boot_to_real(void)
{
	struct timespec b, rt;
	clock_gettime(CLOCK_BOOTTIME, &b);
	clock_gettime(CLOCK_REALTIME, &rt);
	return ((int64_t)rt.tv_sec - b.tv_sec) * 1000000000 + (rt.tv_nsec - b.tv_nsec);
}

EXAI_API int exai_policy_events(exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts,
				int timeout_ms, exai_policy_event_fn fn, void *userdata)
{
	struct dev d;
	int r;

	LIBBPF_LOG_SCOPE(ctx);

	if ((r = check_dev_opts(opts)) < 0 || (r = dev_init(&d, ifname, opts, false, false)) < 0 ||
	    (r = dev_open_maps(&d)) < 0)
		return r;
	struct ev_state st = { .ctx = ctx, .ifname = d.ifname, .fn = fn, .ud = userdata,
			       .boot_to_real_ns = boot_to_real() };
	struct ring_buffer *rb = ring_buffer__new(d.fd[M_EVENTS], on_event, &st, NULL);
	if (!rb) {
		r = exai__err_sys(exai__neg_errno(), "cannot open the deny-event ring of %s", d.ifname);
		goto out;
	}
	do {
		r = ring_buffer__poll(rb, timeout_ms < 0 ? 1000 : timeout_ms);
		if (r == -EINTR)
			r = 0;
	} while (r >= 0 && !st.stop && timeout_ms < 0);
	if (st.stop)
		r = st.stop;
	else if (r >= 0)
		r = st.count;
	else
		r = exai__err_sys(r, "cannot read the deny events of %s", d.ifname);
	ring_buffer__free(rb);
out:
	dev_close(&d);
	return r;
}

#else /* !EXAI_HAVE_BPF */

static int no_bpf(void)
{
	return exai__err(-ENOTSUP, "this libexai was built without eBPF support (meson option bpf)");
}

EXAI_API int exai_policy_apply(exai_ctx *ctx, const char *ifname, const exai_policy *p,
			       const struct exai_policy_dev_opts *opts)
{
	(void)ctx, (void)ifname, (void)p, (void)opts;
	return no_bpf();
}

EXAI_API int exai_policy_detach(exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts)
{
	(void)ctx, (void)ifname, (void)opts;
	return no_bpf();
}

EXAI_API int exai_policy_stats(struct exai_policy_counter **ret, size_t *retn, uint32_t *ret_policy_id,
			       exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts)
{
	(void)ret, (void)retn, (void)ret_policy_id, (void)ctx, (void)ifname, (void)opts;
	return no_bpf();
}

EXAI_API int exai_policy_events(exai_ctx *ctx, const char *ifname, const struct exai_policy_dev_opts *opts,
				int timeout_ms, exai_policy_event_fn fn, void *userdata)
{
	(void)ctx, (void)ifname, (void)opts, (void)timeout_ms, (void)fn, (void)userdata;
	return no_bpf();
}

EXAI_API int exai_policy_refresh_in(uint32_t *ret_ms, exai_ctx *ctx, const char *ifname,
				    const struct exai_policy_dev_opts *opts)
{
	(void)ret_ms, (void)ctx, (void)ifname, (void)opts;
	return no_bpf();
}

EXAI_API int exai_policy_learn_dns(exai_ctx *ctx, const char *ifname, const exai_policy *policy,
				   const struct exai_policy_dev_opts *opts, int timeout_ms)
{
	(void)ctx, (void)ifname, (void)policy, (void)opts, (void)timeout_ms;
	return no_bpf();
}

#endif
