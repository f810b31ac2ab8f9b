/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jail.c: starting a VMM confined, the way Firecracker's jailer does it, and the per-VM
 * cgroup. The VMM runs
 *   - as its own uid/gid, without supplementary groups, with no_new_privs;
 *   - in new mount, PID, IPC and UTS namespaces, and a new, empty network namespace (QEMU
 *     gets its tap as an open descriptor) or the tenant's (Firecracker opens its tap), with
 *     a private root on a tmpfs holding only /usr (read-only), the devices it needs, the
 *     image (read-only, /image) and its run directory (/vm);
 *   - with a cleared environment, only descriptors 0-2 (stdin /dev/null, stdout and stderr
 *     to its log), and resource limits;
 *   - detached (its own session, reparented away from the caller) so that it outlives the
 *     process that created it, in a cgroup of its own.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "vm-internal.h"

#define CG_ROOT "/sys/fs/cgroup"
static const char *const cg_v1_controllers[] = { "cpu", "cpuset", "memory", "pids" };

/* ---- cgroups ------------------------------------------------------------------------------- */

static bool cgroup_v2(void)
{
	return access(CG_ROOT "/cgroup.controllers", F_OK) == 0;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", path);
	int r = exai__write_all(fd, val, strlen(val));
	close(fd);
	return r < 0 ? exai__err_sys(r, "cannot write \"%s\" to %s", val, path) : 0;
}

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return exai__neg_errno();
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Writes a printf-formatted value to @dir/@file. */
static int cg_set(const char *dir, const char *file, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cg_set(const char *dir, const char *file, const char *fmt, ...)
{
	char p[PATH_MAX + 64], v[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, file) >= sizeof(p))
		return exai__err(-ENAMETOOLONG, "cgroup path too long");
	return write_str(p, v);
}

/* cpuset v1: a new cpuset has empty cpus/mems; copy the parent's unless given. */
static int cpuset_fill(const char *dir, const char *parent, const char *cpus)
{
	char p[PATH_MAX + 64], v[256];
	const char *files[] = { "cpuset.cpus", "cpuset.mems" };
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", parent, files[i]);
		if (read_str(p, v, sizeof(v)) < 0)
			return exai__err(-EIO, "cannot read %s", p);
		int r = cg_set(dir, files[i], "%s", (i == 0 && cpus) ? cpus : v);
		if (r < 0)
			return r;
	}
	return 0;
}

static int cg_mkdir(char *dir, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cg_mkdir(char *dir, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dir, len, fmt, ap);
	va_end(ap);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return exai__err_sys(exai__neg_errno(), "cannot create cgroup %s", dir);
	return 0;
}

int exai__cgroup_create(const char *name, const struct exai__cg_limits *l)
{
	char dir[PATH_MAX];
	int r;
	unsigned long long quota = (unsigned long long)l->vcpus * l->cpu_quota_pct * 1000; /* per 100 ms */

	if (cgroup_v2()) {
		if ((r = cg_mkdir(dir, sizeof(dir), CG_ROOT "/exai")) < 0)
			return r;
		cg_set(CG_ROOT, "cgroup.subtree_control", "+cpu +cpuset +memory +pids");
		cg_set(dir, "cgroup.subtree_control", "+cpu +cpuset +memory +pids");
		if ((r = cg_mkdir(dir, sizeof(dir), CG_ROOT "/exai/%s", name)) < 0 ||
		    (r = cg_set(dir, "cpu.max", "%llu 100000", quota)) < 0 ||
		    (l->cpuset && (r = cg_set(dir, "cpuset.cpus", "%s", l->cpuset)) < 0) ||
		    (r = cg_set(dir, "memory.max", "%llu", (unsigned long long)l->mem_bytes)) < 0)
			return r;
		return cg_set(dir, "pids.max", "%u", l->pids_max);
	}
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(cg_v1_controllers); i++) {
		const char *c = cg_v1_controllers[i];
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), CG_ROOT "/%s", c);
		if (access(parent, F_OK) < 0)
			return exai__err(-ENOENT, "cgroup v1 controller %s is not mounted at %s", c, parent);
		if ((r = cg_mkdir(dir, sizeof(dir), CG_ROOT "/%s/exai", c)) < 0)
			return r;
		if (!strcmp(c, "cpuset") && (r = cpuset_fill(dir, parent, NULL)) < 0)
			return r;
		if ((r = cg_mkdir(dir, sizeof(dir), CG_ROOT "/%s/exai/%s", c, name)) < 0)
			return r;
		if (!strcmp(c, "cpu")) {
			if ((r = cg_set(dir, "cpu.cfs_period_us", "100000")) == 0)
				r = cg_set(dir, "cpu.cfs_quota_us", "%llu", quota);
		} else if (!strcmp(c, "cpuset")) {
			r = cpuset_fill(dir, CG_ROOT "/cpuset/exai", l->cpuset);
		} else if (!strcmp(c, "memory")) {
			r = cg_set(dir, "memory.limit_in_bytes", "%llu", (unsigned long long)l->mem_bytes);
		} else {
			r = cg_set(dir, "pids.max", "%u", l->pids_max);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Moves @pid into the VM's cgroup(s). */
static int cgroup_join(const char *name, pid_t pid)
{
	char p[PATH_MAX], v[32];
	snprintf(v, sizeof(v), "%d", (int)pid);
	if (cgroup_v2()) {
		snprintf(p, sizeof(p), CG_ROOT "/exai/%s/cgroup.procs", name);
		return write_str(p, v);
	}
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(cg_v1_controllers); i++) {
		snprintf(p, sizeof(p), CG_ROOT "/%s/exai/%s/cgroup.procs", cg_v1_controllers[i], name);
		int r = write_str(p, v);
		if (r < 0)
			return r;
	}
	return 0;
}

int exai__cgroup_remove(const char *name)
{
	char dir[PATH_MAX];
	int r = 0;
	size_t n = cgroup_v2() ? 1 : EXAI__ARRAY_SIZE(cg_v1_controllers);
	for (size_t i = 0; i < n; i++) {
		if (cgroup_v2())
			snprintf(dir, sizeof(dir), CG_ROOT "/exai/%s", name);
		else
			snprintf(dir, sizeof(dir), CG_ROOT "/%s/exai/%s", cg_v1_controllers[i], name);
		/* The kernel removes a cgroup only once its last task is gone: retry briefly. */
		for (int tries = 0; tries < 100; tries++) {
			if (rmdir(dir) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY || tries == 99) {
				r = exai__err_sys(exai__neg_errno(), "cannot remove cgroup %s", dir);
				break;
			}
			usleep(20000);
		}
	}
	return r;
}

bool exai__cgroup_exists(const char *name)
{
	char dir[PATH_MAX];
	if (cgroup_v2())
		snprintf(dir, sizeof(dir), CG_ROOT "/exai/%s", name);
	else
		snprintf(dir, sizeof(dir), CG_ROOT "/memory/exai/%s", name);
	return access(dir, F_OK) == 0;
}

/* ---- the confined child ------------------------------------------------------------------- */

/* In the child: failures are reported as "step: errno" on the status pipe, then _exit. */
static __attribute__((noreturn)) void die(int pfd, const char *step)
{
	char msg[160];
	int e = errno;
	int n = snprintf(msg, sizeof(msg), "E%d %s", e, step);
	if (write(pfd, msg, (size_t)n) < 0)
		_exit(126);
	_exit(126);
}

static void bind_node(int pfd, const char *src, const char *dst, bool dir, unsigned long ro)
{
	if (dir) {
		if (mkdir(dst, 0755) < 0 && errno != EEXIST)
			die(pfd, dst);
	} else {
		int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			die(pfd, dst);
		close(fd);
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(pfd, src);
	if (ro && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		die(pfd, dst);
}

static __attribute__((noreturn)) void jailed(const struct exai__jail *j, int pfd, int logfd)
{
	char p[PATH_MAX];
	const char *root = j->root_dir;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die(pfd, "make / private");
	if (mount("exai-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") < 0)
		die(pfd, "mount the private root");
	snprintf(p, sizeof(p), "%s/usr", root);
	bind_node(pfd, "/usr", p, true, 1);
	/* Debian's merged /usr: the top-level directories are symlinks into it. */
	static const char *const links[][2] = { { "usr/bin", "bin" }, { "usr/sbin", "sbin" },
						{ "usr/lib", "lib" }, { "usr/lib64", "lib64" } };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(links); i++) {
		snprintf(p, sizeof(p), "%s/%s", root, links[i][1]);
		if (symlink(links[i][0], p) < 0)
			die(pfd, p);
	}
	snprintf(p, sizeof(p), "%s/dev", root);
	if (mkdir(p, 0755) < 0)
		die(pfd, p);
	static const char *const devs[] = { "null", "zero", "urandom", "random", "kvm", "net/tun" };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(devs); i++) {
		char src[64];
		snprintf(src, sizeof(src), "/dev/%s", devs[i]);
		if ((!strcmp(devs[i], "kvm") && !j->kvm) || (!strcmp(devs[i], "net/tun") && !j->netns))
			continue;
		if (!strcmp(devs[i], "net/tun")) {
			snprintf(p, sizeof(p), "%s/dev/net", root);
			if (mkdir(p, 0755) < 0)
				die(pfd, p);
		}
		snprintf(p, sizeof(p), "%s/dev/%s", root, devs[i]);
		bind_node(pfd, src, p, false, 0);
	}
	if (j->disk_dev) {
		snprintf(p, sizeof(p), "%s" EXAI__VM_DM_JAIL_PATH, root);
		bind_node(pfd, j->disk_dev, p, false, 0);
	}
	snprintf(p, sizeof(p), "%s/image", root);
	bind_node(pfd, j->image_dir, p, true, 1);
	snprintf(p, sizeof(p), "%s/vm", root);
	bind_node(pfd, j->run_dir, p, true, 0);
	snprintf(p, sizeof(p), "%s/proc", root);
	if (mkdir(p, 0555) < 0)
		die(pfd, p);
	snprintf(p, sizeof(p), "%s/tmp", root);
	if (mkdir(p, 01777) < 0)
		die(pfd, p);
	if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
	    chdir("/") < 0)
		die(pfd, "pivot_root into the private root");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") < 0)
		die(pfd, "mount /proc");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		die(pfd, "remount the private root read-only");

	struct rlimit nofile = { 4096, 4096 }, core = { 0, 0 };
	struct rlimit nproc = { j->pids_max, j->pids_max };
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_CORE, &core) < 0 ||
	    setrlimit(RLIMIT_NPROC, &nproc) < 0)
		die(pfd, "setrlimit");
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
		die(pfd, "stdio");
	if (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 ||
	    setresuid(j->uid, j->uid, j->uid) < 0)
		die(pfd, "drop to the VM's uid/gid");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die(pfd, "no_new_privs");
	/* Every descriptor but 0-2, the secret (as 3), the tap (as 4) and the status pipe
	 * (close-on-exec) goes. All are first moved above the targets, so none overwrites another. */
	int pass[2] = { j->secret_fd, j->tap_fd };
	for (int i = 0; i < 2; i++)
		if (pass[i] >= 0 && (pass[i] = fcntl(pass[i], F_DUPFD_CLOEXEC, 10)) < 0)
			die(pfd, "pass a descriptor to the VMM");
	if (pfd < 10 && (pfd = fcntl(pfd, F_DUPFD_CLOEXEC, 10)) < 0)
		_exit(126);
	for (int i = 0; i < 2; i++)
		if (pass[i] >= 0 && dup2(pass[i], 3 + i) < 0)
			die(pfd, "pass a descriptor to the VMM");
	for (int fd = 3; fd < 4096; fd++)
		if (fd != pfd && !(fd < 5 && pass[fd - 3] >= 0))
			close(fd);
	char *const envp[] = { NULL };
	execve(j->argv[0], (char *const *)j->argv, envp);
	die(pfd, j->argv[0]);
}

int exai__jail_spawn(const struct exai__jail *j, pid_t *ret_pid)
{
	int pfd[2], logfd;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return exai__err_sys(exai__neg_errno(), "pipe");
	logfd = open(j->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (logfd < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return exai__err_sys(exai__neg_errno(), "cannot open the VMM log %s", j->log_path);
	}
	pid_t a = fork();
	if (a < 0) {
		int e = exai__neg_errno();
		close(pfd[0]);
		close(pfd[1]);
		close(logfd);
		return exai__err_sys(e, "fork");
	}
	if (a == 0) {
		/* A: detach, join the cgroup (inherited by B), start B in new namespaces, report
		 * B's pid, leave. B is then reparented away from the caller. */
		close(pfd[0]);
		setsid();
		if (j->cgroup && cgroup_join(j->cgroup, getpid()) < 0)
			die(pfd[1], "join the VM's cgroup");
		if (j->netns) {
			int ns = open(j->netns, O_RDONLY | O_CLOEXEC);
			if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
				die(pfd[1], "join the tenant's network namespace");
			close(ns);
		}
		pid_t b = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
						     (j->netns ? 0 : CLONE_NEWNET) | SIGCHLD,
					 NULL, NULL, NULL, NULL);
		if (b < 0)
			die(pfd[1], "clone into new namespaces");
		if (b == 0)
			jailed(j, pfd[1], logfd);
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "P%d", (int)b);
		if (write(pfd[1], msg, (size_t)n) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	close(logfd);
	int st;
	while (waitpid(a, &st, 0) < 0 && errno == EINTR)
		;
	/* "P<pid>" from A, then either EOF (B exec'ed: the pipe closed on exec) or "E<errno>
	 * <step>" from B. */
	char buf[256];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(buf) - 1 && (n = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
	}
	close(pfd[0]);
	buf[len] = '\0';
	int pid = 0, e = 0, off = 0;
	if (sscanf(buf, "P%d%n", &pid, &off) == 1 && buf[off] == 'E' && sscanf(buf + off, "E%d", &e) == 1) {
		waitpid(pid, NULL, WNOHANG);
		return exai__err(-(e ? e : EIO), "cannot start the VMM confined: %s: %s",
				 strchr(buf + off, ' ') ? strchr(buf + off, ' ') + 1 : "?", strerror(e));
	}
	if (buf[0] == 'E' && sscanf(buf, "E%d", &e) == 1)
		return exai__err(-(e ? e : EIO), "cannot start the VMM confined: %s: %s",
				 strchr(buf, ' ') ? strchr(buf, ' ') + 1 : "?", strerror(e));
	if (pid <= 0)
		return exai__err(-EIO, "the VMM launcher failed (status %d)", st);
	*ret_pid = pid;
	return 0;
}

/* ---- liveness ----------------------------------------------------------------------------- */

unsigned long long exai__proc_start_time(pid_t pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	if (read_str(p, buf, sizeof(buf)) < 0)
		return 0;
	/* Field 22 (starttime), counted after the ")" that ends the command name. */
	char *s = strrchr(buf, ')');
	if (!s)
		return 0;
	char state = s[2];
	if (state == 'Z' || state == 'X')
		return 0; /* a zombie is as dead as it gets */
	unsigned long long v = 0;
	int field = 3; /* s[2] is field 3, the state */
	for (char *t = s + 2; *t; t++) {
		if (*t == ' ' && ++field == 22) {
			v = strtoull(t + 1, NULL, 10);
			break;
		}
	}
	return v;
}

bool exai__proc_alive(pid_t pid, unsigned long long start_time)
{
	return pid > 0 && start_time && exai__proc_start_time(pid) == start_time;
}
