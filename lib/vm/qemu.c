/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qemu.c: the QEMU `microvm` backend. The VMM is started confined (jail.c) with no default
 * devices, the seccomp sandbox on, the guest kernel and initramfs from the image, the
 * agent's virtio-serial port on a Unix socket, and QMP on another. Control goes through QMP:
 * qmp_capabilities, stop/cont, query-status, quit; snapshots are migrations to a pipe handed
 * over with getfd (so the state stream passes through libexai, which checksums it and will
 * encrypt it), restores are `-incoming defer` + migrate-incoming from a pipe.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent-proto.h"
#include "vm-internal.h"

#define QEMU_BIN "/usr/bin/qemu-system-x86_64"
#define QMP_TIMEOUT_MS 30000
#define QMP_LINE_MAX (1u << 20)

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int qemu_available(bool *ret_kvm)
{
	if (access(QEMU_BIN, X_OK) < 0)
		return exai__err(-ENOENT, "%s is missing (Debian package qemu-system-x86)", QEMU_BIN);
	*ret_kvm = access("/dev/kvm", R_OK | W_OK) == 0;
	return 0;
}

/* Reads one JSON line from QMP, skipping asynchronous events. */
static int qmp_read(struct exai_vm *vm, json_t **ret, int64_t deadline)
{
	struct exai__buf line = { 0 };
	for (;;) {
		char c;
		struct pollfd p = { .fd = vm->qmp_fd, .events = POLLIN };
		int64_t left = deadline - mono_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			exai__buf_free(&line);
			return exai__err(-ETIMEDOUT, "QEMU did not answer on QMP in time");
		}
		ssize_t n = read(vm->qmp_fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			exai__buf_free(&line);
			return exai__err(-ECONNRESET, "QEMU closed its QMP socket");
		}
		if (c != '\n') {
			if (line.len >= QMP_LINE_MAX || exai__buf_putc(&line, c) < 0) {
				exai__buf_free(&line);
				return exai__err(-EPROTO, "a QMP message over %u bytes", QMP_LINE_MAX);
			}
			continue;
		}
		json_error_t jerr;
		json_t *v = json_loadb(line.data ? line.data : "", line.len, 0, &jerr);
		line.len = 0;
		if (!v || !json_is_object(v)) {
			json_decref(v);
			exai__buf_free(&line);
			return exai__err(-EPROTO, "QEMU sent a malformed QMP message");
		}
		if (json_object_get(v, "event")) {
			json_decref(v);
			continue;
		}
		exai__buf_free(&line);
		*ret = v;
		return 0;
	}
}

/* Runs one QMP command; *@ret (may be NULL) gets its "return" value. @fd >= 0 is passed
 * along with it (SCM_RIGHTS), for getfd. */
static int qmp_cmd(struct exai_vm *vm, const char *cmd, json_t *args, json_t **ret, int fd)
{
	json_t *req = json_pack("{s:s}", "execute", cmd);
	if (args)
		json_object_set_new(req, "arguments", args);
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return exai__err(-ENOMEM, "out of memory");
	size_t len = strlen(text);
	struct iovec iov = { .iov_base = text, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n = sendmsg(vm->qmp_fd, &msg, MSG_NOSIGNAL);
	free(text);
	if (n != (ssize_t)len)
		return exai__err_sys(n < 0 ? exai__neg_errno() : -EIO, "QMP %s: cannot send", cmd);
	json_t *resp;
	int r = qmp_read(vm, &resp, mono_ms() + QMP_TIMEOUT_MS);
	if (r < 0)
		return exai__err(r, "QMP %s: %s", cmd, exai_errmsg());
	json_t *err = json_object_get(resp, "error");
	if (err) {
		const char *desc = json_string_value(json_object_get(err, "desc"));
		r = exai__err(-EIO, "QMP %s failed: %.200s", cmd, desc ? desc : "(no description)");
		json_decref(resp);
		return r;
	}
	if (ret) {
		*ret = json_incref(json_object_get(resp, "return"));
		if (!*ret)
			*ret = json_object();
	}
	json_decref(resp);
	return 0;
}

static int qmp_connect(struct exai_vm *vm, int timeout_ms)
{
	char *path = exai__vm_run_path(vm, "qmp.sock");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int64_t deadline = mono_ms() + timeout_ms;
	int r = 0;

	if (!path)
		return exai__err(-ENOMEM, "out of memory");
	if (strlen(path) >= sizeof(sun.sun_path)) {
		r = exai__err(-ENAMETOOLONG, "QMP socket path %s is too long (state dir too deep)", path);
		free(path);
		return r;
	}
	strcpy(sun.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			r = exai__err_sys(exai__neg_errno(), "socket");
			break;
		}
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			vm->qmp_fd = fd;
			break;
		}
		close(fd);
		if (mono_ms() >= deadline || (vm->pid && !exai__proc_alive(vm->pid, vm->pid_start))) {
			r = exai__err(-ECONNREFUSED, "cannot connect to QEMU's QMP socket %s", path);
			break;
		}
		usleep(20000);
	}
	free(path);
	if (r < 0)
		return r;
	json_t *greeting;
	if ((r = qmp_read(vm, &greeting, deadline)) < 0 ||
	    (json_decref(greeting), r = qmp_cmd(vm, "qmp_capabilities", NULL, NULL, -1)) < 0) {
		close(vm->qmp_fd);
		vm->qmp_fd = -1;
		return r;
	}
	return 0;
}

/* QMP serves one client at a time: every operation connects, and qmp_close() lets go, so
 * that another handle or process can drive the same VM. */
static int qmp(struct exai_vm *vm)
{
	if (vm->qmp_fd >= 0)
		return 0;
	return qmp_connect(vm, 5000);
}

static int qmp_close(struct exai_vm *vm, int r)
{
	if (vm->qmp_fd >= 0)
		close(vm->qmp_fd);
	vm->qmp_fd = -1;
	return r;
}

static int qemu_status(struct exai_vm *vm, char *buf, size_t len)
{
	json_t *ret;
	int r = qmp_cmd(vm, "query-status", NULL, &ret, -1);
	if (r < 0)
		return r;
	const char *s = json_string_value(json_object_get(ret, "status"));
	snprintf(buf, len, "%s", s ? s : "");
	json_decref(ret);
	return 0;
}

static int qemu_start(struct exai_vm *vm, bool incoming)
{
	char smp[16], mem[16], machine[128];
	int r;

	snprintf(smp, sizeof(smp), "%u", vm->spec.vcpus);
	snprintf(mem, sizeof(mem), "%u", vm->spec.mem_mib);
	/* Under TCG the PIT must be there for the guest to calibrate its clock. */
	snprintf(machine, sizeof(machine), "microvm,pit=on,pic=%s,rtc=on,isa-serial=on,acpi=on",
		 vm->spec.kvm ? "off" : "on");
	const char *argv[64];
	size_t n = 0;
	argv[n++] = QEMU_BIN;
	argv[n++] = "-name";
	argv[n++] = vm->spec.name;
	argv[n++] = "-machine";
	argv[n++] = machine;
	argv[n++] = "-accel";
	argv[n++] = vm->spec.kvm ? "kvm" : "tcg";
	argv[n++] = "-cpu";
	argv[n++] = vm->spec.kvm ? "host" : "max";
	argv[n++] = "-smp";
	argv[n++] = smp;
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-sandbox";
	argv[n++] = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
	argv[n++] = "-kernel";
	argv[n++] = "/image/vmlinuz";
	argv[n++] = "-initrd";
	argv[n++] = "/image/initramfs.cpio.gz";
	argv[n++] = "-append";
	argv[n++] = vm->spec.cmdline;
	argv[n++] = "-no-reboot";
	argv[n++] = "-serial";
	argv[n++] = "file:/vm/console.log";
	argv[n++] = "-device";
	argv[n++] = "virtio-serial-device";
	argv[n++] = "-chardev";
	argv[n++] = "socket,path=/vm/agent.sock,server=on,wait=off,id=agent";
	argv[n++] = "-device";
	argv[n++] = "virtserialport,chardev=agent,name=" EXAI_AP_PORT_NAME;
	argv[n++] = "-qmp";
	argv[n++] = "unix:/vm/qmp.sock,server=on,wait=off";
	if (vm->spec.disk_mib) {
		/* the disk key reaches QEMU as fd 3, a pipe: never its command line, never a file */
		int fd = exai__vm_disk_secret_fd(vm, vm->spec.disk_generation);
		if (fd < 0)
			return fd;
		/* QEMU reopens it through /proc as the VMM's uid */
		if (fchown(fd, vm->spec.uid, vm->spec.uid) < 0) {
			close(fd);
			return exai__err_sys(exai__neg_errno(), "chown the disk key pipe");
		}
		vm->secret_fd = fd;
		argv[n++] = "-object";
		argv[n++] = "secret,id=sec0,file=/proc/self/fd/3,format=raw";
		argv[n++] = "-blockdev";
		argv[n++] = "driver=luks,node-name=disk0,key-secret=sec0,file.driver=file,file.filename=/vm/disk.luks";
		argv[n++] = "-device";
		argv[n++] = "virtio-blk-device,drive=disk0";
	}
	char nic[96];
	if (vm->spec.net.on) {
		/* the tap reaches QEMU as fd 4, opened in the tenant's namespace: QEMU itself stays
		 * in an empty one and cannot create or reconfigure network devices */
		int fd = exai__vm_net_tap_fd(vm);
		if (fd < 0) {
			if (vm->secret_fd >= 0)
				close(vm->secret_fd);
			vm->secret_fd = -1;
			return fd;
		}
		vm->tap_fd = fd;
		snprintf(nic, sizeof(nic), "virtio-net-device,netdev=net0,mac=%s", vm->spec.net.mac);
		argv[n++] = "-netdev";
		argv[n++] = "tap,id=net0,fd=4";
		argv[n++] = "-device";
		argv[n++] = nic;
	}
	if (incoming) {
		argv[n++] = "-incoming";
		argv[n++] = "defer";
	}
	argv[n] = NULL;

	r = exai__vm_spawn(vm, argv);
	if (vm->secret_fd >= 0)
		close(vm->secret_fd);
	if (vm->tap_fd >= 0)
		close(vm->tap_fd);
	vm->secret_fd = vm->tap_fd = -1;
	if (r < 0)
		return r;
	exai__log_info(vm->ctx, "vm", "%s: QEMU started (pid %d, %s)", vm->spec.name, (int)vm->pid,
		       vm->spec.kvm ? "KVM" : "TCG");
	return qmp_close(vm, qmp_connect(vm, 30000));
}

static int qemu_agent_connect(struct exai_vm *vm, struct exai__agent **ret, int timeout_ms)
{
	char *path = exai__vm_run_path(vm, "agent.sock");
	if (!path)
		return exai__err(-ENOMEM, "out of memory");
	int r = exai__agent_connect_unix(ret, path, timeout_ms);
	free(path);
	return r;
}

static int qemu_pause(struct exai_vm *vm)
{
	int r = qmp(vm);
	return qmp_close(vm, r < 0 ? r : qmp_cmd(vm, "stop", NULL, NULL, -1));
}

static int qemu_resume(struct exai_vm *vm)
{
	int r = qmp(vm);
	return qmp_close(vm, r < 0 ? r : qmp_cmd(vm, "cont", NULL, NULL, -1));
}

static int qemu_quit(struct exai_vm *vm)
{
	int r = qmp(vm);
	if (r < 0)
		return r;
	r = qmp_close(vm, qmp_cmd(vm, "quit", NULL, NULL, -1));
	/* QEMU may close the socket before answering: that is success too. */
	return r == -ECONNRESET ? 0 : r;
}

/* Polls query-migrate until the migration ends. */
static int migration_wait(struct exai_vm *vm, const char *what)
{
	int64_t deadline = mono_ms() + 600000;
	for (;;) {
		json_t *ret;
		int r = qmp_cmd(vm, "query-migrate", NULL, &ret, -1);
		if (r < 0)
			return r;
		const char *st = json_string_value(json_object_get(ret, "status"));
		char status[32];
		snprintf(status, sizeof(status), "%s", st ? st : "");
		const char *desc = json_string_value(json_object_get(ret, "error-desc"));
		char why[200];
		snprintf(why, sizeof(why), "%s", desc ? desc : "no reason given");
		json_decref(ret);
		if (!strcmp(status, "completed"))
			return 0;
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled"))
			return exai__err(-EIO, "%s: QEMU's migration %s: %s", what, status, why);
		if (mono_ms() > deadline)
			return exai__err(-ETIMEDOUT, "%s: the migration did not finish in 10 minutes", what);
		usleep(20000);
	}
}

static int qemu_snapshot(struct exai_vm *vm, int fd)
{
	int r = qmp(vm);
	if (r < 0)
		return r;
	/* No bandwidth cap: the stream goes to a local pipe. */
	json_t *params = json_pack("{s:I}", "max-bandwidth", (json_int_t)1 << 40);
	if ((r = qmp_cmd(vm, "migrate-set-parameters", params, NULL, -1)) < 0 ||
	    (r = qmp_cmd(vm, "getfd", json_pack("{s:s}", "fdname", "exai-snap"), NULL, fd)) < 0)
		return qmp_close(vm, r);
	if ((r = qmp_cmd(vm, "migrate", json_pack("{s:s}", "uri", "fd:exai-snap"), NULL, -1)) < 0)
		return qmp_close(vm, r);
	return qmp_close(vm, migration_wait(vm, "snapshot"));
}

static int restore_wait(struct exai_vm *vm)
{
	int64_t deadline = mono_ms() + 600000;
	for (;;) {
		char st[32];
		int r = qemu_status(vm, st, sizeof(st));
		if (r < 0)
			return r;
		if (strcmp(st, "inmigrate") != 0) {
			if (!strcmp(st, "paused") || !strcmp(st, "running") || !strcmp(st, "postmigrate"))
				return 0;
			return exai__err(-EIO, "restore: QEMU is in state \"%s\" after loading the snapshot", st);
		}
		if (mono_ms() > deadline)
			return exai__err(-ETIMEDOUT, "restore: QEMU did not finish loading in 10 minutes");
		usleep(20000);
	}
}

static int qemu_restore(struct exai_vm *vm, int fd)
{
	int r = qmp(vm);
	if (r < 0)
		return r;
	if ((r = qmp_cmd(vm, "getfd", json_pack("{s:s}", "fdname", "exai-snap"), NULL, fd)) < 0 ||
	    (r = qmp_cmd(vm, "migrate-incoming", json_pack("{s:s}", "uri", "fd:exai-snap"), NULL, -1)) < 0)
		return qmp_close(vm, r);
	return qmp_close(vm, restore_wait(vm));
}

const struct exai__backend exai__backend_qemu = {
	.name = "qemu",
	.available = qemu_available,
	.start = qemu_start,
	.agent_connect = qemu_agent_connect,
	.pause = qemu_pause,
	.resume = qemu_resume,
	.snapshot = qemu_snapshot,
	.restore = qemu_restore,
	.quit = qemu_quit,
};
