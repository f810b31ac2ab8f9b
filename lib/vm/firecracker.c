/* SPDX-License-Identifier: Apache-2.0 */
/*
 * firecracker.c: the Firecracker backend, driven through its REST API (HTTP/1.1 + JSON over
 * the Unix socket given with --api-sock), per ../shared/specs/firecracker/firecracker-v1.16.1.yaml:
 * logger, metrics, machine-config, boot-source, vsock (the agent's transport: hybrid vsock),
 * actions (InstanceStart, SendCtrlAltDel), PATCH /vm (Paused/Resumed), snapshot create/load.
 * The VMM is started confined like QEMU (jail.c). Inside the jail the image is /image and the
 * run directory /vm.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent-proto.h"
#include "vm-internal.h"

#define FC_RESPONSE_MAX (64u << 10)
#define FC_TIMEOUT_MS 10000
#define FC_GUEST_CID 3

static const char *const fc_paths[] = { "/usr/bin/firecracker", "/usr/local/bin/firecracker" };

static const char *fc_binary(void)
{
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(fc_paths); i++)
		if (access(fc_paths[i], X_OK) == 0)
			return fc_paths[i];
	return NULL;
}

static int fc_available(bool *ret_kvm)
{
	*ret_kvm = access("/dev/kvm", R_OK | W_OK) == 0;
	if (!fc_binary())
		return exai__err(-ENOENT, "no firecracker binary in /usr/bin or /usr/local/bin");
	if (!*ret_kvm)
		return exai__err(-ENODEV, "Firecracker needs /dev/kvm, which this host lacks");
	return 0;
}

/*
 * One API call: @method @path with the JSON @body (may be NULL), on a fresh connection to
 * @sock. 2xx is success; otherwise the API's fault_message becomes the sentence. *@ret_body
 * (if given) receives the response body (free()).
 */
int exai__fc_call(const char *sock, const char *method, const char *path, json_t *body, char **ret_body)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *text = NULL;
	struct exai__buf req = { 0 }, resp = { 0 };
	int fd = -1, r;

	if (strlen(sock) >= sizeof(sun.sun_path))
		return exai__err(-ENAMETOOLONG, "Firecracker API socket path %s is too long", sock);
	strcpy(sun.sun_path, sock);
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return exai__err(-ENOMEM, "out of memory");
	size_t blen = text ? strlen(text) : 0;
	if (exai__buf_printf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n", method, path) < 0 ||
	    (text && exai__buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen) < 0) ||
	    exai__buf_printf(&req, "\r\n") < 0 || (text && exai__buf_append(&req, text, blen) < 0)) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = exai__err_sys(exai__neg_errno(), "cannot connect to the Firecracker API at %s", sock);
		goto out;
	}
	if ((r = exai__write_all(fd, req.data, req.len)) < 0) {
		r = exai__err_sys(r, "Firecracker API %s %s: cannot send", method, path);
		goto out;
	}
	/* Read until the headers and Content-Length bytes of body are in. */
	size_t hdr_end = 0, want = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, FC_TIMEOUT_MS) <= 0) {
			r = exai__err(-ETIMEDOUT, "Firecracker API %s %s: no answer in %d ms", method, path, FC_TIMEOUT_MS);
			goto out;
		}
		if ((r = exai__buf_reserve(&resp, 4096)) < 0) {
			r = exai__err(-ENOMEM, "out of memory");
			goto out;
		}
		ssize_t n = read(fd, resp.data + resp.len, 4096);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		resp.len += (size_t)n;
		resp.data[resp.len] = '\0';
		if (resp.len > FC_RESPONSE_MAX) {
			r = exai__err(-EPROTO, "Firecracker API %s %s: response over %u bytes", method, path, FC_RESPONSE_MAX);
			goto out;
		}
		if (!hdr_end) {
			char *e = strstr(resp.data, "\r\n\r\n");
			if (!e)
				continue;
			hdr_end = (size_t)(e - resp.data) + 4;
			const char *cl = strcasestr(resp.data, "\r\nContent-Length:");
			want = cl && cl < e ? strtoul(cl + 17, NULL, 10) : 0;
		}
		if (hdr_end && resp.len >= hdr_end + want)
			break;
	}
	int status = 0;
	if (!resp.data || sscanf(resp.data, "HTTP/1.%*d %d", &status) != 1 || !hdr_end) {
		r = exai__err(-EPROTO, "Firecracker API %s %s: malformed HTTP response", method, path);
		goto out;
	}
	const char *rbody = resp.data + hdr_end;
	if (status < 200 || status > 299) {
		json_t *err = json_loads(rbody, 0, NULL);
		const char *fault = json_string_value(json_object_get(err, "fault_message"));
		r = exai__err(status == 400 ? -EINVAL : -EIO, "Firecracker API %s %s: HTTP %d: %.200s", method, path,
			      status, fault ? fault : "(no fault message)");
		json_decref(err);
		goto out;
	}
	if (ret_body && !(*ret_body = strdup(rbody)))
		r = exai__err(-ENOMEM, "out of memory");
	else
		r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	exai__buf_free(&req);
	exai__buf_free(&resp);
	json_decref(body);
	return r;
}

static int api(struct exai_vm *vm, const char *method, const char *path, json_t *body)
{
	char *sock = exai__vm_run_path(vm, "fc.sock");
	if (!sock) {
		json_decref(body);
		return exai__err(-ENOMEM, "out of memory");
	}
	int r = exai__fc_call(sock, method, path, body, NULL);
	free(sock);
	return r;
}

int exai__fc_configure(struct exai_vm *vm)
{
	int r;
	if ((r = api(vm, "PUT", "/logger",
		     json_pack("{s:s, s:s, s:b}", "log_path", "/vm/fc.log", "level", "Info", "show_level", 1))) < 0 ||
	    (r = api(vm, "PUT", "/metrics", json_pack("{s:s}", "metrics_path", "/vm/fc.metrics"))) < 0 ||
	    (r = api(vm, "PUT", "/machine-config",
		     json_pack("{s:i, s:i, s:b}", "vcpu_count", (int)vm->spec.vcpus, "mem_size_mib",
			       (int)vm->spec.mem_mib, "smt", 0))) < 0 ||
	    (r = api(vm, "PUT", "/boot-source",
		     json_pack("{s:s, s:s, s:s}", "kernel_image_path", "/image/vmlinux", "initrd_path",
			       "/image/initramfs.cpio.gz", "boot_args", vm->spec.cmdline))) < 0 ||
	    (r = api(vm, "PUT", "/vsock", json_pack("{s:i, s:s}", "guest_cid", FC_GUEST_CID, "uds_path", "/vm/vsock.sock"))) < 0)
		return r;
	return 0;
}

int exai__fc_add_drive(struct exai_vm *vm, const char *id, const char *path_in_jail, bool read_only,
		       bool root)
{
	char path[128];
	if (snprintf(path, sizeof(path), "/drives/%s", id) >= (int)sizeof(path))
		return exai__err(-EINVAL, "drive id %s is too long", id);
	return api(vm, "PUT", path,
		   json_pack("{s:s, s:s, s:b, s:b, s:s}", "drive_id", id, "path_on_host", path_in_jail,
			     "is_read_only", read_only, "is_root_device", root, "io_engine", "Sync"));
}

int exai__fc_add_net(struct exai_vm *vm, const char *id, const char *tap, const char *mac)
{
	char path[128];
	if (snprintf(path, sizeof(path), "/network-interfaces/%s", id) >= (int)sizeof(path))
		return exai__err(-EINVAL, "interface id %s is too long", id);
	return api(vm, "PUT", path,
		   json_pack("{s:s, s:s, s:s}", "iface_id", id, "host_dev_name", tap, "guest_mac", mac));
}

/* Files Firecracker opens itself must exist, owned by the VMM's uid. */
static int make_owned_file(struct exai_vm *vm, const char *name)
{
	char *p = exai__vm_run_path(vm, name);
	int fd = p ? open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	int r = 0;
	if (fd < 0 || fchown(fd, vm->spec.uid, vm->spec.uid) < 0)
		r = exai__err_sys(p ? exai__neg_errno() : -ENOMEM, "cannot create %s", p ? p : name);
	if (fd >= 0)
		close(fd);
	free(p);
	return r;
}

static int wait_api(struct exai_vm *vm)
{
	char *sock = exai__vm_run_path(vm, "fc.sock");
	int r = -ETIMEDOUT;
	for (int i = 0; sock && i < 500; i++) {
		if (access(sock, F_OK) == 0) {
			r = 0;
			break;
		}
		if (!exai__proc_alive(vm->pid, vm->pid_start)) {
			r = -ESRCH;
			break;
		}
		usleep(10000);
	}
	free(sock);
	return r < 0 ? exai__err(r, "Firecracker did not open its API socket") : 0;
}

static int fc_start(struct exai_vm *vm, bool incoming)
{
	const char *bin = fc_binary();
	int r;
	if (!bin)
		return exai__err(-ENOENT, "no firecracker binary");
	if ((r = make_owned_file(vm, "fc.log")) < 0 || (r = make_owned_file(vm, "fc.metrics")) < 0)
		return r;
	/* the encrypted disk: a dm-crypt device bound into the jail (a snapshot being loaded
	 * names it too) */
	if (vm->spec.disk_mib && !vm->spec.disk_plain && (r = exai__vm_dm_open(vm)) < 0)
		return r;
	const char *argv[] = { bin, "--api-sock", "/vm/fc.sock", "--id", vm->spec.name, NULL };
	if ((r = exai__vm_spawn(vm, argv)) < 0 || (r = wait_api(vm)) < 0)
		return r;
	if (incoming)
		return api(vm, "PUT", "/logger", json_pack("{s:s, s:s}", "log_path", "/vm/fc.log", "level", "Info"));
	if ((r = exai__fc_configure(vm)) < 0)
		return r;
	if (vm->spec.disk_mib)
		r = exai__fc_add_drive(vm, "work", vm->spec.disk_plain ? "/vm/disk.img" : EXAI__VM_DM_JAIL_PATH, false,
				       false);
	if (r == 0 && vm->spec.net.on)
		r = exai__fc_add_net(vm, "eth0", vm->spec.net.tap, vm->spec.net.mac);
	if (r < 0)
		return r;
	return api(vm, "PUT", "/actions", json_pack("{s:s}", "action_type", "InstanceStart"));
}

int exai__fc_disk_check(struct exai_vm *vm, bool allow_unencrypted)
{
	/* Firecracker has no LUKS driver: its disk is encrypted by the host kernel's dm-crypt */
	int r = exai__dm_supported();
	if (r == 0) {
		vm->spec.disk_plain = false;
		return 0;
	}
	if (!allow_unencrypted) {
		char why[384];
		snprintf(why, sizeof(why), "%s", exai_errmsg());
		return exai__err(-ENOTSUP,
				 "%s: a Firecracker workspace's disk is encrypted with dm-crypt, which this host cannot give: %s; use the QEMU backend, or allow an unencrypted disk explicitly (allow_unencrypted_disk, --allow-unencrypted-disk)",
				 vm->spec.name, why);
	}
	exai__log_warn(vm->ctx, "vm", "%s: the operator allowed an UNENCRYPTED disk (Firecracker without dm-crypt: %s)",
		       vm->spec.name, exai_errmsg());
	vm->spec.disk_plain = true;
	return 0;
}

static int fc_agent_connect(struct exai_vm *vm, struct exai__agent **ret, int timeout_ms)
{
	char *uds = exai__vm_run_path(vm, "vsock.sock");
	if (!uds)
		return exai__err(-ENOMEM, "out of memory");
	int r = exai__agent_connect_vsock(ret, uds, EXAI_AP_VSOCK_PORT, timeout_ms);
	free(uds);
	return r;
}

static int fc_pause(struct exai_vm *vm)
{
	return api(vm, "PATCH", "/vm", json_pack("{s:s}", "state", "Paused"));
}

static int fc_resume(struct exai_vm *vm)
{
	return api(vm, "PATCH", "/vm", json_pack("{s:s}", "state", "Resumed"));
}

static int fc_quit(struct exai_vm *vm)
{
	return api(vm, "PUT", "/actions", json_pack("{s:s}", "action_type", "SendCtrlAltDel"));
}

/* Copies a file of the run dir into @fd as (u64 BE length, bytes), then removes it. */
static int stream_out(struct exai_vm *vm, const char *name, int fd)
{
	char *p = exai__vm_run_path(vm, name);
	int in = p ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1, r = 0;
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0) {
		r = exai__err_sys(p ? exai__neg_errno() : -ENOMEM, "cannot read %s", p ? p : name);
		goto out;
	}
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)st.st_size >> (56 - 8 * i));
	if ((r = exai__write_all(fd, len, 8)) < 0)
		goto out;
	char buf[1 << 16];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if ((r = exai__write_all(fd, buf, (size_t)n)) < 0)
			goto out;
	if (n < 0)
		r = exai__err_sys(exai__neg_errno(), "read %s", p);
out:
	if (r < 0 && r != -ENOMEM)
		r = exai__err_sys(r, "streaming %s", name);
	if (in >= 0)
		close(in);
	if (p)
		unlink(p);
	free(p);
	return r;
}

static int stream_in(struct exai_vm *vm, const char *name, int fd)
{
	uint8_t len[8];
	size_t got = 0;
	while (got < 8) {
		ssize_t n = read(fd, len + got, 8 - got);
		if (n <= 0)
			return exai__err(-EBADMSG, "the snapshot stream ends early");
		got += (size_t)n;
	}
	uint64_t size = 0;
	for (int i = 0; i < 8; i++)
		size = size << 8 | len[i];
	char *p = exai__vm_run_path(vm, name);
	int out = p ? open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1, r = 0;
	if (out < 0 || fchown(out, vm->spec.uid, vm->spec.uid) < 0)
		r = exai__err_sys(p ? exai__neg_errno() : -ENOMEM, "cannot create %s", p ? p : name);
	char buf[1 << 16];
	while (r == 0 && size) {
		ssize_t n = read(fd, buf, size < sizeof(buf) ? (size_t)size : sizeof(buf));
		if (n <= 0)
			r = exai__err(-EBADMSG, "the snapshot stream ends early");
		else if ((r = exai__write_all(out, buf, (size_t)n)) == 0)
			size -= (uint64_t)n;
	}
	if (out >= 0)
		close(out);
	free(p);
	return r;
}

static int fc_snapshot(struct exai_vm *vm, int fd)
{
	/* Firecracker writes the two files itself (in the jail's /vm); they are streamed out and
	 * removed at once. On a host with dm-crypt the run dir is where the encrypted scratch
	 * belongs. */
	int r = api(vm, "PUT", "/snapshot/create",
		    json_pack("{s:s, s:s, s:s}", "snapshot_type", "Full", "snapshot_path", "/vm/snap.state",
			      "mem_file_path", "/vm/snap.mem"));
	if (r == 0)
		r = stream_out(vm, "snap.state", fd);
	if (r == 0)
		r = stream_out(vm, "snap.mem", fd);
	return r;
}

static int fc_restore(struct exai_vm *vm, int fd)
{
	int r = stream_in(vm, "snap.state", fd);
	if (r == 0)
		r = stream_in(vm, "snap.mem", fd);
	json_t *load = r == 0 ? json_pack("{s:s, s:{s:s, s:s}, s:b, s:{s:s}}", "snapshot_path", "/vm/snap.state",
					  "mem_backend", "backend_type", "File", "backend_path", "/vm/snap.mem",
					  "resume_vm", 0, "vsock_override", "uds_path", "/vm/vsock.sock")
			       : NULL;
	/* the network device opens this workspace's tap, not the source's */
	if (load && vm->spec.net.on)
		json_object_set_new(load, "network_overrides",
				    json_pack("[{s:s, s:s}]", "iface_id", "eth0", "host_dev_name", vm->spec.net.tap));
	if (r == 0)
		r = load ? api(vm, "PUT", "/snapshot/load", load) : exai__err(-ENOMEM, "out of memory");
	char *a = exai__vm_run_path(vm, "snap.state"), *b = exai__vm_run_path(vm, "snap.mem");
	if (a)
		unlink(a);
	/* The memory file backs the guest's RAM (mapped private): it may go once loaded. */
	if (b)
		unlink(b);
	free(a);
	free(b);
	return r;
}

const struct exai__backend exai__backend_firecracker = {
	.name = "firecracker",
	.available = fc_available,
	.start = fc_start,
	.agent_connect = fc_agent_connect,
	.pause = fc_pause,
	.resume = fc_resume,
	.snapshot = fc_snapshot,
	.restore = fc_restore,
	.quit = fc_quit,
};
