/* SPDX-License-Identifier: Apache-2.0 */
/* vm.c: the workspace lifecycle (include/exai/vm.h): state machine persisted in
 * <state_dir>/vm/<name>/state.json, backend choice, boot, exec, files, pause/resume,
 * snapshot/restore, destroy. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "exai-config.h"
#include "vm-internal.h"

#ifndef EXAI_GUEST_IMAGE_DIR
#define EXAI_GUEST_IMAGE_DIR "/usr/lib/exai/guest"
#endif
#define STATE_MAX (64u << 10)

static const char *const state_names[] = {
	[EXAI_VM_CREATED] = "created",	 [EXAI_VM_BOOTING] = "booting", [EXAI_VM_RUNNING] = "running",
	[EXAI_VM_PAUSED] = "paused",	 [EXAI_VM_SNAPSHOTTING] = "snapshotting",
	[EXAI_VM_STOPPED] = "stopped",	 [EXAI_VM_DESTROYED] = "destroyed",
	[EXAI_VM_FAILED] = "failed",
};

const char *exai_vm_state_name(int state)
{
	if (state < EXAI_VM_CREATED || state > EXAI_VM_FAILED)
		return NULL;
	return state_names[state];
}

const char *exai_vm_backend_name(int backend)
{
	switch (backend) {
	case EXAI_VM_BACKEND_QEMU:
		return "qemu";
	case EXAI_VM_BACKEND_FIRECRACKER:
		return "firecracker";
	default:
		return NULL;
	}
}

static const struct exai__backend *backend_ops(int backend)
{
	return backend == EXAI_VM_BACKEND_FIRECRACKER ? &exai__backend_firecracker : &exai__backend_qemu;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *exai__vm_run_path(const struct exai_vm *vm, const char *file)
{
	return exai__path_join(vm->run_dir, file);
}

int exai__vm_state_id(exai_ctx *ctx, char ret[9])
{
	const char *dir = exai_ctx_state_dir(ctx);
	char abs[PATH_MAX];
	int r = exai__ctx_ensure_state_dir(ctx);
	if (r < 0)
		return r;
	if (!realpath(dir, abs))
		return exai__err_sys(exai__neg_errno(), "cannot resolve the state directory %s", dir);
	uint8_t d[32];
	unsigned int dl;
	if (!EVP_Digest(abs, strlen(abs), d, &dl, EVP_sha256(), NULL))
		return exai__err(-ENOMEM, "OpenSSL SHA-256 is unavailable");
	for (int i = 0; i < 4; i++)
		sprintf(ret + 2 * i, "%02x", d[i]);
	return 0;
}

void exai__vm_cgroup_name(const struct exai_vm *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%s", vm->spec.host_id, vm->spec.name);
}

/* OCSF class and activity of each vm event (docs/vm.md, "Audit events"). */
static const struct {
	const char *action;
	int class_uid, activity_id;
} ocsf_map[] = {
	{ "exec", 1007, 1 },		 /* Process Activity: Launch */
	{ "snapshot-delete", 1001, 4 },	 /* File Activity: Delete */
	{ "create", 6003, 1 },		 /* API Activity: Create */
	{ "restore", 6003, 1 },		 /* API Activity: Create (a new workspace) */
	{ "destroy", 6003, 4 },		 /* API Activity: Delete */
	{ "vmm-stop", 6003, 4 },	 { "cgroup-remove", 6003, 4 }, { "network-detach", 6003, 4 },
	{ "keys-shred", 6003, 4 },	 { "key-destroy", 6003, 4 },   { "files-delete", 6003, 4 },
	{ "disk-rekey", 6003, 3 },	 /* API Activity: Update */
	{ "disk-activate", 6003, 1 },	 { "disk-deactivate", 6003, 4 },
	{ "netns-create", 6003, 1 },	 { "tap-create", 6003, 1 },    { "policy-attach", 6003, 1 },
	{ "policy-detach", 6003, 4 },	 { "tap-remove", 6003, 4 },    { "netns-remove", 6003, 4 },
	/* boot, pause, resume, snapshot, stop, vmm-died: API Activity: Update */
};

void exai__vm_event(struct exai_vm *vm, const char *action, int r, json_t *extra)
{
	int class_uid = 6003, activity = 3;
	for (size_t i = 0; i < sizeof(ocsf_map) / sizeof(ocsf_map[0]); i++)
		if (!strcmp(ocsf_map[i].action, action)) {
			class_uid = ocsf_map[i].class_uid;
			activity = ocsf_map[i].activity_id;
		}
	char op[64];
	snprintf(op, sizeof(op), "vm.%s", action);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_t *ev = json_pack("{s:i, s:i, s:i, s:I, s:I, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
			       " s:{s:s, s:{s:i, s:i}}, s:{s:s, s:{s:s}}, s:[{s:s, s:s}], s:s}",
			       "class_uid", class_uid, "category_uid", class_uid / 1000, "activity_id", activity,
			       "type_uid", (json_int_t)class_uid * 100 + activity, "time",
			       (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "severity_id", r < 0 ? 3 : 1,
			       "status_id", r < 0 ? 2 : 1, "outcome", r < 0 ? "failure" : "success", "activity_name",
			       action, "module", "vm", "action", action, "vm", vm->spec.name, "workspace", vm->spec.name,
			       "tenant", vm->spec.tenant, "actor", "app_name", "libexai", "process", "pid", (int)getpid(),
			       "uid", (int)getuid(), "api", "operation", op, "service", "name", "exai.vm", "resources",
			       "type", "workspace", "uid", vm->spec.name, "metadata_product", "libexai");
	if (!ev) {
		json_decref(extra);
		return;
	}
	if (r < 0)
		json_object_set_new(ev, "status_detail", json_string(exai_errmsg()));
	if (extra)
		json_object_update(ev, extra);
	json_decref(extra);
	exai__ctx_emit(vm->ctx, ev);
	json_decref(ev);
}

static void emit(struct exai_vm *vm, const char *action, int r)
{
	exai__vm_event(vm, action, r, NULL);
}

static bool valid_name(const char *s, size_t max, bool allow_upper)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (i > 0 && (c == '-' || c == '_')) || (allow_upper && ((c >= 'A' && c <= 'Z') || c == '.'));
		if (!ok)
			return false;
	}
	return true;
}

/* ---- state.json ----------------------------------------------------------------------------- */

int exai__vm_save(struct exai_vm *vm)
{
	json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:b, s:i, s:i, s:i, s:i, s:s, s:s, s:I, s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b}",
			      "version", 1, "name", vm->spec.name, "tenant", vm->spec.tenant, "backend",
			      vm->be->name, "kvm", vm->spec.kvm, "vcpus", (int)vm->spec.vcpus, "mem_mib",
			      (int)vm->spec.mem_mib, "pids_max", (int)vm->spec.pids_max, "cpu_quota_pct",
			      (int)vm->spec.cpu_quota_pct, "cpuset", vm->spec.cpuset, "image_dir",
			      vm->spec.image_dir, "uid", (json_int_t)vm->spec.uid, "boot_timeout_ms",
			      (int)vm->spec.boot_timeout_ms, "cmdline", vm->spec.cmdline, "state",
			      exai_vm_state_name(vm->state), "failure", vm->failure, "pid", (json_int_t)vm->pid,
			      "pid_start", (json_int_t)vm->pid_start, "disk_mib", (json_int_t)vm->spec.disk_mib,
			      "disk_generation", (json_int_t)vm->spec.disk_generation, "disk_plain", vm->spec.disk_plain);
	if (j)
		json_object_set_new(j, "host_id", json_string(vm->spec.host_id));
	if (j && vm->spec.disk_old_generation)
		json_object_set_new(j, "disk_old_generation", json_integer(vm->spec.disk_old_generation));
	const struct exai__vm_net *n = &vm->spec.net;
	if (j && n->on)
		json_object_set_new(j, "net", json_pack("{s:s, s:s, s:s, s:s, s:s}", "netns", n->netns, "tap", n->tap,
							"ip", n->ip, "gateway", n->gw, "mac", n->mac));
	if (!j)
		return exai__err(-ENOMEM, "out of memory");
	char *text, *path = exai__path_join(vm->dir, "state.json");
	size_t len;
	int r = exai__jcs_dump(j, &text, &len);
	json_decref(j);
	if (r == 0 && path)
		r = exai__write_file_atomic(path, text, len, 0600);
	else if (r == 0)
		r = exai__err(-ENOMEM, "out of memory");
	if (r == 0)
		free(text);
	free(path);
	return r;
}

static int load_state(struct exai_vm *vm)
{
	char *path = exai__path_join(vm->dir, "state.json"), *text = NULL;
	size_t len;
	json_t *j = NULL;
	int r;
	if (!path)
		return exai__err(-ENOMEM, "out of memory");
	r = exai__read_file(path, STATE_MAX, &text, &len);
	if (r == -ENOENT)
		r = exai__err(-ENOENT, "no workspace named \"%s\"", vm->spec.name);
	if (r == 0 && (exai__json_parse(&j, text, len) < 0 || !json_is_object(j)))
		r = exai__err(-EBADMSG, "%s is not a JSON object", path);
	if (r < 0)
		goto out;
	const char *st = json_string_value(json_object_get(j, "state"));
	const char *be = json_string_value(json_object_get(j, "backend"));
	const char *tenant = json_string_value(json_object_get(j, "tenant"));
	const char *image = json_string_value(json_object_get(j, "image_dir"));
	const char *cmdline = json_string_value(json_object_get(j, "cmdline"));
	const char *cpuset = json_string_value(json_object_get(j, "cpuset"));
	const char *failure = json_string_value(json_object_get(j, "failure"));
	vm->state = 0;
	for (int s = EXAI_VM_CREATED; st && s <= EXAI_VM_FAILED; s++)
		if (!strcmp(st, state_names[s]))
			vm->state = s;
	if (!vm->state || !be || !tenant || !image || !cmdline || !cpuset ||
	    (strcmp(be, "qemu") != 0 && strcmp(be, "firecracker") != 0)) {
		r = exai__err(-EBADMSG, "%s lacks or has a bad state, backend, tenant, image_dir, cmdline or cpuset", path);
		goto out;
	}
	vm->spec.backend = !strcmp(be, "qemu") ? EXAI_VM_BACKEND_QEMU : EXAI_VM_BACKEND_FIRECRACKER;
	vm->be = backend_ops(vm->spec.backend);
	snprintf(vm->spec.tenant, sizeof(vm->spec.tenant), "%s", tenant);
	snprintf(vm->spec.image_dir, sizeof(vm->spec.image_dir), "%s", image);
	snprintf(vm->spec.cmdline, sizeof(vm->spec.cmdline), "%s", cmdline);
	snprintf(vm->spec.cpuset, sizeof(vm->spec.cpuset), "%s", cpuset);
	snprintf(vm->failure, sizeof(vm->failure), "%s", failure ? failure : "");
	vm->spec.kvm = json_is_true(json_object_get(j, "kvm"));
	vm->spec.vcpus = (uint32_t)json_number_value(json_object_get(j, "vcpus"));
	vm->spec.mem_mib = (uint32_t)json_number_value(json_object_get(j, "mem_mib"));
	vm->spec.pids_max = (uint32_t)json_number_value(json_object_get(j, "pids_max"));
	vm->spec.cpu_quota_pct = (uint32_t)json_number_value(json_object_get(j, "cpu_quota_pct"));
	vm->spec.uid = (uid_t)json_number_value(json_object_get(j, "uid"));
	vm->spec.boot_timeout_ms = (uint32_t)json_number_value(json_object_get(j, "boot_timeout_ms"));
	vm->pid = (pid_t)json_number_value(json_object_get(j, "pid"));
	vm->pid_start = (unsigned long long)json_number_value(json_object_get(j, "pid_start"));
	vm->spec.disk_mib = (uint32_t)json_number_value(json_object_get(j, "disk_mib"));
	vm->spec.disk_generation = (uint32_t)json_number_value(json_object_get(j, "disk_generation"));
	vm->spec.disk_plain = json_is_true(json_object_get(j, "disk_plain"));
	vm->spec.disk_old_generation = (uint32_t)json_number_value(json_object_get(j, "disk_old_generation"));
	const char *hid = json_string_value(json_object_get(j, "host_id"));
	if (hid && (strlen(hid) != 8 || strspn(hid, "0123456789abcdef") != 8)) {
		r = exai__err(-EBADMSG, "%s: host_id is not 8 hex digits", path);
		goto out;
	}
	if (hid)
		memcpy(vm->spec.host_id, hid, 9);
	else if ((r = exai__vm_state_id(vm->ctx, vm->spec.host_id)) < 0) /* written before host_id was */
		goto out;
	json_t *net = json_object_get(j, "net");
	if (net) {
		struct exai__vm_net *n = &vm->spec.net;
		const char *v[5];
		const char *keys[5] = { "netns", "tap", "ip", "gateway", "mac" };
		char *dst[5] = { n->netns, n->tap, n->ip, n->gw, n->mac };
		size_t cap[5] = { sizeof(n->netns), sizeof(n->tap), sizeof(n->ip), sizeof(n->gw), sizeof(n->mac) };
		for (int i = 0; i < 5; i++) {
			v[i] = json_string_value(json_object_get(net, keys[i]));
			if (!v[i] || !v[i][0] || strlen(v[i]) >= cap[i] || strchr(v[i], '/')) {
				r = exai__err(-EBADMSG, "%s: net.%s is missing or invalid", path, keys[i]);
				goto out;
			}
			snprintf(dst[i], cap[i], "%s", v[i]);
		}
		n->on = true;
	}
out:
	json_decref(j);
	free(text);
	free(path);
	return r;
}

int exai__vm_set_state(struct exai_vm *vm, int state)
{
	vm->state = state;
	if (state != EXAI_VM_FAILED)
		vm->failure[0] = '\0';
	return exai__vm_save(vm);
}

/* Marks the workspace failed with the current error sentence; returns @r. */
static int fail(struct exai_vm *vm, int r)
{
	char why[256];
	snprintf(why, sizeof(why), "%s", exai_errmsg());
	snprintf(vm->failure, sizeof(vm->failure), "%s", why);
	vm->state = EXAI_VM_FAILED;
	exai__vm_save(vm);
	exai__log_err(vm->ctx, "vm", "%s: failed: %s", vm->spec.name, why);
	return exai__err(r, "%s", why);
}

static bool vmm_alive(const struct exai_vm *vm)
{
	return exai__proc_alive(vm->pid, vm->pid_start);
}

/* Notices a VMM that died behind our back. */
static void refresh(struct exai_vm *vm)
{
	bool live = vm->state == EXAI_VM_BOOTING || vm->state == EXAI_VM_RUNNING ||
		    vm->state == EXAI_VM_PAUSED || vm->state == EXAI_VM_SNAPSHOTTING;
	if (live && !vmm_alive(vm)) {
		exai__agent_free(vm->agent);
		vm->agent = NULL;
		exai__err(-ESRCH, "the VMM (pid %d) of workspace %s died", (int)vm->pid, vm->spec.name);
		fail(vm, -ESRCH);
		emit(vm, "vmm-died", -ESRCH);
	}
}

static int need_state(struct exai_vm *vm, const char *what, unsigned mask)
{
	refresh(vm);
	if (mask & (1u << vm->state))
		return 0;
	if (vm->state == EXAI_VM_FAILED)
		return exai__err(-EBUSY, "cannot %s workspace %s: it failed (%s); destroy it", what,
				 vm->spec.name, vm->failure);
	return exai__err(-EBUSY, "cannot %s workspace %s: it is %s", what, vm->spec.name,
			 exai_vm_state_name(vm->state));
}
#define S(x) (1u << EXAI_VM_##x)

/* ---- create / open --------------------------------------------------------------------------- */

static int vm_alloc(struct exai_vm **ret, exai_ctx *ctx, const char *name)
{
	if (!valid_name(name, EXAI__VM_NAME_MAX, false))
		return exai__err(-EINVAL, "workspace name \"%.64s\" is invalid: use 1-40 of [a-z0-9_-], starting with a letter or digit",
				 name ? name : "");
	struct exai_vm *vm = calloc(1, sizeof(*vm));
	char *base = vm ? exai__path_join(exai_ctx_state_dir(ctx), "vm") : NULL;
	if (vm && base)
		vm->dir = exai__path_join(base, name);
	if (vm && vm->dir)
		vm->run_dir = exai__path_join(vm->dir, "run");
	free(base);
	if (!vm || !vm->dir || !vm->run_dir) {
		if (vm) {
			free(vm->dir);
			free(vm->run_dir);
		}
		free(vm);
		return exai__err(-ENOMEM, "out of memory");
	}
	vm->ctx = exai_ctx_ref(ctx);
	vm->qmp_fd = -1;
	vm->secret_fd = -1;
	vm->tap_fd = -1;
	snprintf(vm->spec.name, sizeof(vm->spec.name), "%s", name);
	*ret = vm;
	return 0;
}

void exai_vm_free(exai_vm *vm)
{
	if (!vm)
		return;
	exai__agent_free(vm->agent);
	if (vm->qmp_fd >= 0)
		close(vm->qmp_fd);
	exai_ctx_unref(vm->ctx);
	free(vm->dir);
	free(vm->run_dir);
	free(vm);
}

int exai_vm_open(exai_vm **ret, exai_ctx *ctx, const char *name)
{
	struct exai_vm *vm;
	int r = vm_alloc(&vm, ctx, name);
	if (r < 0)
		return r;
	if ((r = load_state(vm)) < 0) {
		exai_vm_free(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

/* A uid for the VMM that no other workspace of this state dir has (the hash of the state dir's
 * id and the name: the same name in two state dirs gets two uids, and two subnets, unless
 * their hashes meet). */
static int pick_uid(exai_ctx *ctx, const char *host_id, const char *name, uid_t *ret)
{
	uint32_t h = 2166136261u;
	for (const char *p = host_id; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	char *names = NULL;
	int r = exai_vm_list(&names, ctx);
	if (r < 0)
		return r;
	for (uint32_t probe = 0; probe < EXAI__VM_UID_SLOTS; probe++) {
		uid_t uid = EXAI__VM_UID_BASE + (h + probe) % EXAI__VM_UID_SLOTS;
		bool used = false;
		for (char *s = names, *nl; s && *s && !used; s = nl + 1) {
			nl = strchr(s, '\n');
			*nl = '\0';
			exai_vm *o;
			if (exai_vm_open(&o, ctx, s) == 0) {
				used = o->spec.uid == uid;
				exai_vm_free(o);
			}
			*nl = '\n';
		}
		if (!used) {
			free(names);
			*ret = uid;
			return 0;
		}
	}
	free(names);
	return exai__err(-ENOSPC, "no free VMM uid left");
}

/* Directories: <dir> 0700 root, <dir>/run 0700 owned by the VMM's uid, <dir>/root (empty). */
static int make_dirs(struct exai_vm *vm)
{
	char *root = exai__path_join(vm->dir, "root");
	int r = root ? 0 : exai__err(-ENOMEM, "out of memory");
	if (r == 0 && (r = exai__ctx_ensure_state_dir(vm->ctx)) == 0) {
		char *base = exai__path_join(exai_ctx_state_dir(vm->ctx), "vm");
		r = base ? exai__mkdir_p(base, 0700) : exai__err(-ENOMEM, "out of memory");
		free(base);
	}
	if (r == 0 && mkdir(vm->dir, 0700) < 0)
		r = errno == EEXIST ? exai__err(-EEXIST, "workspace %s exists already", vm->spec.name)
				    : exai__err_sys(exai__neg_errno(), "cannot create %s", vm->dir);
	if (r == 0 && (mkdir(vm->run_dir, 0700) < 0 || mkdir(root, 0755) < 0 ||
		       chown(vm->run_dir, vm->spec.uid, vm->spec.uid) < 0))
		r = exai__err_sys(exai__neg_errno(), "cannot prepare %s", vm->dir);
	free(root);
	return r;
}

/* Fills the spec from options (create and restore). */
static int spec_from_opts(struct exai_vm *vm, const struct exai_vm_opts *opts, bool restore)
{
	const char *tenant = EXAI__OPT(opts, tenant, "default");
	const char *image = EXAI__OPT(opts, image_dir, NULL);
	const char *cpuset = EXAI__OPT(opts, cpuset, "");
	char from_snapshot[PATH_MAX];
	snprintf(from_snapshot, sizeof(from_snapshot), "%s", vm->spec.image_dir);
	if (!image && restore && from_snapshot[0])
		image = from_snapshot; /* the snapshot's; its manifest is checked again at start */
	if (!image)
		image = getenv("EXAI_GUEST_IMAGE_DIR");
	if (!image || !image[0])
		image = EXAI_GUEST_IMAGE_DIR;
	if (!restore) {
		if (!valid_name(tenant, 63, true))
			return exai__err(-EINVAL, "tenant \"%.64s\" is invalid: use 1-63 of [A-Za-z0-9_.-]", tenant);
		snprintf(vm->spec.tenant, sizeof(vm->spec.tenant), "%s", tenant);
		vm->spec.vcpus = EXAI__OPT(opts, vcpus, 1u);
		vm->spec.mem_mib = EXAI__OPT(opts, mem_mib, 256u);
		vm->spec.backend = EXAI__OPT(opts, backend, EXAI_VM_BACKEND_AUTO);
		vm->spec.disk_mib = EXAI__OPT(opts, disk_mib, 0u);
		if (vm->spec.disk_mib > 1048576)
			return exai__err(-EINVAL, "disk_mib %u is out of range (0-1048576)", vm->spec.disk_mib);
	}
	vm->spec.pids_max = EXAI__OPT(opts, pids_max, 512u);
	vm->spec.cpu_quota_pct = EXAI__OPT(opts, cpu_quota_pct, 100u);
	vm->spec.boot_timeout_ms = EXAI__OPT(opts, boot_timeout_ms, 120000u);
	if (vm->spec.vcpus > 32)
		return exai__err(-EINVAL, "vcpus %u is out of range (1-32)", vm->spec.vcpus);
	if (vm->spec.mem_mib < 64 || vm->spec.mem_mib > 65536)
		return exai__err(-EINVAL, "mem_mib %u is out of range (64-65536)", vm->spec.mem_mib);
	if (vm->spec.cpu_quota_pct > 100)
		return exai__err(-EINVAL, "cpu_quota_pct %u is out of range (1-100)", vm->spec.cpu_quota_pct);
	if (strlen(cpuset) >= sizeof(vm->spec.cpuset) || strspn(cpuset, "0123456789,-") != strlen(cpuset))
		return exai__err(-EINVAL, "cpuset \"%.64s\" is not a CPU list like 0-1,3", cpuset);
	snprintf(vm->spec.cpuset, sizeof(vm->spec.cpuset), "%s", cpuset);
	if (image[0] != '/' || strlen(image) >= sizeof(vm->spec.image_dir))
		return exai__err(-EINVAL, "image_dir \"%.64s\" must be an absolute path", image);
	snprintf(vm->spec.image_dir, sizeof(vm->spec.image_dir), "%s", image);
	char *m = exai__path_join(image, "manifest.json");
	int r = (m && access(m, R_OK) == 0) ? 0
		: exai__err(-ENOENT, "no guest image in %s (manifest.json missing): build it (meson builds guest/) or set EXAI_GUEST_IMAGE_DIR", image);
	free(m);
	if (r < 0)
		return r;
	if (geteuid() != 0)
		return exai__err(-EPERM, "workspaces need root (namespaces, cgroups, a uid per VMM)");
	/* The backend: asked for, or the best this host has. */
	bool kvm = false;
	if (vm->spec.backend == EXAI_VM_BACKEND_AUTO) {
		vm->spec.backend = exai__backend_firecracker.available(&kvm) == 0 && kvm ? EXAI_VM_BACKEND_FIRECRACKER
											  : EXAI_VM_BACKEND_QEMU;
	} else if (vm->spec.backend != EXAI_VM_BACKEND_QEMU && vm->spec.backend != EXAI_VM_BACKEND_FIRECRACKER) {
		return exai__err(-EINVAL, "backend %d is unknown", vm->spec.backend);
	}
	vm->be = backend_ops(vm->spec.backend);
	if ((r = vm->be->available(&kvm)) < 0)
		return r;
	if (!restore)
		vm->spec.kvm = kvm;
	bool allow_plain = EXAI__OPT(opts, allow_unencrypted_disk, false), snap_plain = restore && vm->spec.disk_plain;
	if (vm->spec.disk_mib && vm->spec.backend == EXAI_VM_BACKEND_FIRECRACKER &&
	    (r = exai__fc_disk_check(vm, allow_plain && (!restore || snap_plain))) < 0) /* encrypted stays so */
		return r;
	if (snap_plain && !allow_plain)
		return exai__err(-EACCES, "the snapshot holds an UNENCRYPTED disk: restoring it needs the operator's explicit allow_unencrypted_disk (--allow-unencrypted-disk)");
	if (snap_plain) /* a plaintext disk stays one: it is not re-keyed, dm-crypt cannot open it */
		vm->spec.disk_plain = true;
	if (vm->spec.kvm && !kvm)
		return exai__err(-ENODEV, "the snapshot was taken under KVM and this host has no /dev/kvm");
	return 0;
}

unsigned long exai__vm_tsc_khz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];
	double mhz = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
			break;
	if (f)
		fclose(f);
	return (unsigned long)(mhz * 1000);
}

static void build_cmdline(struct exai_vm *vm)
{
	char net[256] = "";
	if (vm->spec.net.on)
		snprintf(net, sizeof(net), " exai.ip=%s/30 exai.gw=%s exai.mac=%s", vm->spec.net.ip, vm->spec.net.gw,
			 vm->spec.net.mac);
	int n = snprintf(vm->spec.cmdline, sizeof(vm->spec.cmdline),
			 "console=ttyS0 quiet panic=-1 reboot=t%s", net);
	unsigned long khz = exai__vm_tsc_khz();
	/* Under TCG the guest cannot calibrate its TSC reliably: tell it the host's. */
	if (!vm->spec.kvm && khz)
		n += snprintf(vm->spec.cmdline + n, sizeof(vm->spec.cmdline) - (size_t)n,
			      " tsc_early_khz=%lu tsc=reliable", khz);
}

/* The per-VM disk: LUKS for QEMU; for Firecracker a plain file where the operator allowed it. */
static int make_disk(struct exai_vm *vm)
{
	exai_keyring *kr = NULL;
	int r = exai__vm_keyring(vm->ctx, vm->spec.tenant, false, &kr);
	if (r < 0)
		return r;
	vm->spec.disk_generation = exai_keyring_generation(kr);
	exai_keyring_unref(kr);
	if (!vm->spec.disk_plain) {
		r = exai__vm_disk_create(vm);
		/* Firecracker's dm-crypt reads the file QEMU's LUKS driver would: libcryptsetup
		 * checks here, without activating anything, that it opens under the key */
		char *luks = r == 0 && vm->spec.backend == EXAI_VM_BACKEND_FIRECRACKER ? exai__vm_run_path(vm, "disk.luks") : NULL;
		if (luks)
			r = exai__vm_dm_check_key(vm, luks, vm->spec.name, vm->spec.disk_generation);
		free(luks);
		return r;
	}
	char *path = exai__vm_run_path(vm, "disk.img");
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	if (fd < 0 || ftruncate(fd, (off_t)vm->spec.disk_mib << 20) < 0 || fchown(fd, vm->spec.uid, vm->spec.uid) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot create the disk %s", path ? path : "");
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

/* Cleans up after a failed create or restore, keeping the sentence that says why it failed. */
static void destroy_keep_error(struct exai_vm *vm, int keep)
{
	char why[512];
	snprintf(why, sizeof(why), "%s", exai_errmsg());
	exai_vm_destroy(vm);
	exai__err(keep, "%s", why);
}

/* The end of create and restore: the event, then the new workspace handed over, or on failure
 * everything made so far undone (except when the name was taken: that one is another's). */
static int finish_new(struct exai_vm *vm, const char *action, int r, exai_vm **ret)
{
	emit(vm, action, r);
	if (r < 0) {
		if (r != -EEXIST)
			destroy_keep_error(vm, r);
		exai_vm_free(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

int exai_vm_create(exai_vm **ret, exai_ctx *ctx, const char *name, const struct exai_vm_opts *opts)
{
	struct exai_vm *vm;
	int r = EXAI__OPTS_CHECK(opts, exai_vm_opts);
	if (r < 0)
		return r;
	if ((r = vm_alloc(&vm, ctx, name)) < 0)
		return r;
	if (access(vm->dir, F_OK) == 0)
		r = exai__err(-EEXIST, "workspace %s exists already", name);
	if (r == 0)
		r = spec_from_opts(vm, opts, false);
	if (r == 0)
		r = exai__vm_state_id(ctx, vm->spec.host_id);
	if (r == 0)
		r = pick_uid(ctx, vm->spec.host_id, name, &vm->spec.uid);
	if (r == 0)
		r = make_dirs(vm);
	if (r == 0)
		r = exai__vm_keys_init(vm);
	if (r == 0)
		r = exai__vm_net_attach(vm, EXAI__OPT(opts, policy, (const struct exai_policy *)NULL),
					EXAI__OPT(opts, floor_allow, (const char *const *)NULL));
	if (r == 0)
		build_cmdline(vm);
	if (r == 0 && vm->spec.disk_mib)
		r = make_disk(vm);
	if (r == 0)
		r = exai__vm_set_state(vm, EXAI_VM_CREATED);
	return finish_new(vm, "create", r, ret);
}

/* ---- boot ------------------------------------------------------------------------------------ */

/* The last non-empty line of a VMM log, for error messages. */
static void last_line(struct exai_vm *vm, const char *file, char *out, size_t len)
{
	char *path = exai__vm_run_path(vm, file), *text = NULL;
	size_t n;
	out[0] = '\0';
	/* n == 0: exai__read_file() leaves an empty file's buffer unterminated (core bug,
	 * reported), so nothing of it is read. */
	if (path && exai__read_file(path, 1u << 20, &text, &n) == 0 && n) {
		while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
			text[--n] = '\0';
		/* A guest kernel panic says more than whatever followed it. */
		char *panic = strstr(text, "Kernel panic - ");
		char *s = panic ? panic : strrchr(text, '\n');
		snprintf(out, len, "%s", s ? s + (panic ? 0 : 1) : text);
		out[strcspn(out, "\n")] = '\0';
		for (char *c = out; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = ' ';
	}
	free(text);
	free(path);
}

/* Stops the VMM: quit, then SIGKILL; waits until it is gone. */
static void stop_vmm(struct exai_vm *vm)
{
	exai__agent_free(vm->agent);
	vm->agent = NULL;
	if (vmm_alive(vm)) {
		vm->be->quit(vm);
		for (int i = 0; i < 100 && vmm_alive(vm); i++)
			usleep(20000);
		if (vmm_alive(vm))
			kill(vm->pid, SIGKILL);
		for (int i = 0; i < 500 && vmm_alive(vm); i++)
			usleep(10000);
	}
	if (vm->qmp_fd >= 0)
		close(vm->qmp_fd);
	vm->qmp_fd = -1;
}

int exai__vm_spawn(struct exai_vm *vm, const char *const *argv)
{
	char *root = exai__path_join(vm->dir, "root"), *log = exai__vm_run_path(vm, "vmm.log");
	int r = (root && log) ? 0 : exai__err(-ENOMEM, "out of memory");
	char netns[128] = "", cg[EXAI__VM_NAME_MAX + 16];
	exai__vm_cgroup_name(vm, cg, sizeof(cg));
	/* Firecracker opens its tap by name: it runs in the tenant's namespace */
	if (vm->spec.net.on && vm->spec.backend == EXAI_VM_BACKEND_FIRECRACKER)
		snprintf(netns, sizeof(netns), "/run/netns/%s", vm->spec.net.netns);
	struct exai__jail j = {
		.argv = argv,
		.root_dir = root,
		.run_dir = vm->run_dir,
		.image_dir = vm->spec.image_dir,
		.log_path = log,
		.cgroup = cg,
		.uid = vm->spec.uid,
		.gid = vm->spec.uid,
		.pids_max = vm->spec.pids_max,
		.kvm = vm->spec.kvm,
		.secret_fd = vm->secret_fd,
		.tap_fd = vm->tap_fd,
		.disk_dev = vm->disk_dev[0] ? vm->disk_dev : NULL,
		.netns = netns[0] ? netns : NULL,
	};
	if (r == 0)
		r = exai__jail_spawn(&j, &vm->pid);
	if (r == 0)
		vm->pid_start = exai__proc_start_time(vm->pid);
	free(root);
	free(log);
	return r;
}

static int start_vmm(struct exai_vm *vm, bool incoming)
{
	struct exai__cg_limits cg = {
		.vcpus = vm->spec.vcpus,
		.cpu_quota_pct = vm->spec.cpu_quota_pct,
		.pids_max = vm->spec.pids_max,
		/* guest RAM plus the VMM's own (TCG's translation cache is the larger part) */
		.mem_bytes = ((uint64_t)vm->spec.mem_mib + (vm->spec.kvm ? 128 : 512)) << 20,
		.cpuset = vm->spec.cpuset[0] ? vm->spec.cpuset : NULL,
	};
	char cgname[EXAI__VM_NAME_MAX + 16];
	exai__vm_cgroup_name(vm, cgname, sizeof(cgname));
	int r = exai__vm_image_verify(vm->ctx, vm->spec.image_dir,
				       vm->spec.backend == EXAI_VM_BACKEND_FIRECRACKER ? "vmlinux" : "vmlinuz");
	if (r == 0)
		r = exai__cgroup_create(cgname, &cg);
	if (r == 0)
		r = exai__vm_set_state(vm, EXAI_VM_BOOTING);
	if (r == 0)
		r = vm->be->start(vm, incoming);
	if (r == 0)
		r = exai__vm_save(vm); /* the pid */
	return r;
}

static int connect_agent(struct exai_vm *vm, int timeout_ms)
{
	if (vm->agent)
		return 0;
	int r = vm->be->agent_connect(vm, &vm->agent, timeout_ms);
	/* A VMM on its way out closes the sockets before its process is gone. */
	for (int i = 0; r < 0 && i < 100 && vmm_alive(vm); i++)
		usleep(20000);
	if (r < 0 && !vmm_alive(vm)) {
		char line[200];
		last_line(vm, "vmm.log", line, sizeof(line));
		return exai__err(-ESRCH, "the VMM exited while waiting for the guest agent: %s",
				 line[0] ? line : "(no message)");
	}
	return r;
}

int exai_vm_boot(exai_vm *vm)
{
	int r = need_state(vm, "boot", S(CREATED) | S(STOPPED));
	if (r < 0)
		return r;
	int64_t t0 = mono_ms();
	r = vm->spec.disk_mib && !vm->spec.disk_plain ? exai__vm_disk_check_generation(vm) : 0;
	if (r == 0)
		r = start_vmm(vm, false);
	if (r == 0)
		r = connect_agent(vm, (int)vm->spec.boot_timeout_ms);
	if (r < 0) {
		char line[200];
		int err = r;
		char why[256];
		snprintf(why, sizeof(why), "%s", exai_errmsg());
		last_line(vm, "console.log", line, sizeof(line));
		stop_vmm(vm);
		exai__vm_dm_close(vm);
		char cg[EXAI__VM_NAME_MAX + 16];
		exai__vm_cgroup_name(vm, cg, sizeof(cg));
		exai__cgroup_remove(cg);
		exai__err(err, "boot of %s failed: %s%s%s", vm->spec.name, why, line[0] ? "; guest console: " : "", line);
		r = fail(vm, err);
		emit(vm, "boot", r);
		return r;
	}
	r = exai__vm_set_state(vm, EXAI_VM_RUNNING);
	exai__log_info(vm->ctx, "vm", "%s: agent ready %lld ms after boot started", vm->spec.name,
		       (long long)(mono_ms() - t0));
	emit(vm, "boot", r);
	return r;
}

/* ---- exec and files -------------------------------------------------------------------------- */

struct out_fwd {
	exai_vm_output_fn fn;
	int (*sig)(void *ud);
	void *ud;
};

static int fwd_signal(void *ud)
{
	struct out_fwd *o = ud;
	return o->sig ? o->sig(o->ud) : 0;
}

static int fwd_output(void *ud, int stream, const void *p, size_t n)
{
	struct out_fwd *o = ud;
	return o->fn ? o->fn(o->ud, stream, p, n) : 0;
}

int exai_vm_exec(exai_vm *vm, const struct exai_vm_exec_opts *opts, int *ret_status)
{
	int r = EXAI__OPTS_CHECK(opts, exai_vm_exec_opts);
	if (r < 0)
		return r;
	if (!opts || !opts->argv || !opts->argv[0])
		return exai__err(-EINVAL, "exec: argv is required");
	if ((r = need_state(vm, "exec in", S(RUNNING))) < 0)
		return r;
	if ((r = connect_agent(vm, 10000)) < 0)
		return r;
	struct out_fwd fwd = { opts->output, EXAI__OPT(opts, pending_signal, NULL), opts->userdata };
	int in = opts->stdin_fd == EXAI_VM_STDIN_FD0 ? 0 : (opts->stdin_fd > 0 ? opts->stdin_fd : -1);
	struct exai__exec_req req = { .argv = opts->argv, .envp = opts->envp, .cwd = opts->cwd,
				      .uid = -1, .gid = -1, .timeout_ms = opts->timeout_ms };
	struct exai__exec_io io = { .on_output = fwd_output, .ud = &fwd, .stdin_fd = in,
				    .pending_signal = fwd.sig ? fwd_signal : NULL };
	struct exai__exec_result res;
	r = exai__agent_exec(vm->agent, &req, &io, &res);
	if (r < 0) {
		/* A broken connection is re-made on the next call. */
		if (r == -ECONNRESET || r == -EPROTO || r == -ETIMEDOUT) {
			exai__agent_free(vm->agent);
			vm->agent = NULL;
		}
		refresh(vm);
		exai__vm_event(vm, "exec", r, json_pack("{s:{s:s}}", "process", "name", opts->argv[0]));
		return r;
	}
	*ret_status = res.timed_out ? 124 : res.signal ? 128 + res.signal : res.exit_code;
	exai__vm_net_drain(vm); /* what the command was refused goes to the audit log */
	/* the program's name only: arguments and environment may hold secrets */
	exai__vm_event(vm, "exec", 0,
		       json_pack("{s:{s:s, s:i, s:s}, s:i}", "process", "name", opts->argv[0], "pid", (int)res.pid,
				 "cwd", opts->cwd ? opts->cwd : "/", "exit_code", *ret_status));
	return 0;
}

int exai_vm_put(exai_vm *vm, const char *local, const char *remote, uint32_t mode)
{
	int r = need_state(vm, "copy into", S(RUNNING));
	if (r < 0 || (r = connect_agent(vm, 10000)) < 0)
		return r;
	int fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", local);
	r = exai__agent_put(vm->agent, fd, remote, mode, NULL);
	close(fd);
	return r;
}

int exai_vm_get(exai_vm *vm, const char *remote, const char *local)
{
	int r = need_state(vm, "copy from", S(RUNNING));
	if (r < 0 || (r = connect_agent(vm, 10000)) < 0)
		return r;
	int fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot create %s", local);
	r = exai__agent_get(vm->agent, remote, fd, 0, NULL);
	if (r == 0 && fsync(fd) < 0)
		r = exai__err_sys(exai__neg_errno(), "fsync %s", local);
	close(fd);
	if (r < 0)
		unlink(local);
	return r;
}

/* ---- pause / resume / snapshot / restore ----------------------------------------------------- */

/* A transition that is one backend call: @from (a state mask) -> @op -> @to; an event. */
static int transition(struct exai_vm *vm, const char *action, unsigned from, int (*op)(struct exai_vm *), int to)
{
	int r = need_state(vm, action, from);
	if (r == 0)
		r = op(vm);
	if (r == 0)
		r = exai__vm_set_state(vm, to);
	emit(vm, action, r);
	return r;
}

int exai_vm_pause(exai_vm *vm)
{
	return transition(vm, "pause", S(RUNNING), vm->be->pause, EXAI_VM_PAUSED);
}

int exai_vm_resume(exai_vm *vm)
{
	return transition(vm, "resume", S(PAUSED), vm->be->resume, EXAI_VM_RUNNING);
}

int exai_vm_snapshot(exai_vm *vm, const char *path)
{
	int r = need_state(vm, "snapshot", S(RUNNING) | S(PAUSED));
	if (r < 0)
		return r;
	if (!path || !path[0])
		return exai__err(-EINVAL, "snapshot: a path is required");
	int was = vm->state;
	/* The agent connection does not survive into the snapshot's future: drop it first. */
	exai__agent_free(vm->agent);
	vm->agent = NULL;
	if ((r = exai__vm_set_state(vm, EXAI_VM_SNAPSHOTTING)) == 0 && was == EXAI_VM_RUNNING)
		r = vm->be->pause(vm);
	if (r == 0)
		r = exai__vm_snapshot_write(vm, path, was == EXAI_VM_RUNNING);
	int r2 = was == EXAI_VM_RUNNING ? vm->be->resume(vm) : 0;
	if (r == 0)
		r = r2;
	if (r < 0 && !vmm_alive(vm))
		return emit(vm, "snapshot", r), fail(vm, r);
	int r3 = exai__vm_set_state(vm, was);
	emit(vm, "snapshot", r < 0 ? r : r3);
	return r < 0 ? r : r3;
}

int exai_vm_restore(exai_vm **ret, exai_ctx *ctx, const char *path, const char *name,
		    const struct exai_vm_opts *opts)
{
	struct exai_vm *vm;
	struct exai__snap_info info = { 0 };
	uint8_t *key = exai_secure_alloc(32);
	int r = key ? EXAI__OPTS_CHECK(opts, exai_vm_opts) : exai__err(-ENOMEM, "out of memory");
	if (r < 0)
		return r;
	if (r < 0 || (r = vm_alloc(&vm, ctx, name)) < 0) {
		exai_secure_free(key);
		return r;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot open snapshot %s", path);
	if (r == 0 && access(vm->dir, F_OK) == 0)
		r = exai__err(-EEXIST, "workspace %s exists already", name);
	if (r == 0)
		r = exai__vm_snapshot_check(fd, path, &vm->spec, &info);
	/* authenticated in full before anything else happens */
	if (r == 0)
		r = exai__vm_snapshot_open(ctx, fd, path, vm->spec.tenant, &info, key);
	if (r == 0)
		r = spec_from_opts(vm, opts, true);
	if (r == 0)
		r = exai__vm_state_id(ctx, vm->spec.host_id);
	if (r == 0)
		r = pick_uid(ctx, vm->spec.host_id, name, &vm->spec.uid);
	if (r == 0)
		r = make_dirs(vm);
	if (r == 0)
		r = exai__vm_keys_init(vm);
	/* The restored machine has the devices of the snapshotted one: a network device needs
	 * a tap (and so a policy), and none can be added. */
	bool had_net = strstr(vm->spec.cmdline, " exai.ip=") != NULL;
	const struct exai_policy *policy = r == 0 ? EXAI__OPT(opts, policy, (const struct exai_policy *)NULL) : NULL;
	if (r == 0 && had_net && !policy)
		r = exai__err(-EACCES, "snapshot %s is of a workspace with a network device: restoring it needs the tenant's egress policy",
			      path);
	else if (r == 0 && !had_net && policy)
		r = exai__err(-EINVAL, "snapshot %s is of a workspace without a network device: it cannot get one (restore it without a policy)",
			      path);
	if (r == 0)
		r = exai__vm_net_attach(vm, policy, EXAI__OPT(opts, floor_allow, (const char *const *)NULL));
	if (r == 0)
		build_cmdline(vm);
	/* the disk copy, then its keyslot made this workspace's, before a VMM opens it */
	if (r == 0 && vm->spec.disk_mib)
		r = exai__vm_snapshot_unseal_disk(vm, fd, &info, key);
	if (r == 0 && vm->spec.disk_mib && !vm->spec.disk_plain)
		r = exai__vm_disk_adopt(vm, info.source, info.disk_generation);
	if (r == 0)
		r = exai__vm_set_state(vm, EXAI_VM_CREATED);
	if (r == 0)
		r = start_vmm(vm, true);
	if (r == 0)
		r = exai__vm_snapshot_feed(vm, fd, &info, key);
	exai_secure_free(key);
	/* The guest still has the source's address: it takes this workspace's through its agent
	 * before anything else can drive it; a snapshot taken paused runs that long and is
	 * paused again (it never resumes under an address that is not its own). */
	bool run = r == 0 && (info.was_running || vm->spec.net.on);
	if (r == 0 && run)
		r = vm->be->resume(vm);
	if (r == 0)
		r = exai__vm_set_state(vm, run ? EXAI_VM_RUNNING : EXAI_VM_PAUSED);
	if (r == 0 && run)
		r = connect_agent(vm, 30000);
	if (r == 0 && run)
		r = exai__vm_net_guest_config(vm);
	if (r == 0 && run && !info.was_running) {
		exai__agent_free(vm->agent);
		vm->agent = NULL;
		if ((r = vm->be->pause(vm)) == 0)
			r = exai__vm_set_state(vm, EXAI_VM_PAUSED);
	}
	if (fd >= 0)
		close(fd);
	return finish_new(vm, "restore", r, ret);
}

/* ---- destroy --------------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT ? -1 : 0;
}

/* Stops the VMM and removes its cgroup; each step an audit event. */
static int teardown(struct exai_vm *vm)
{
	int r = 0;
	if (vm->pid && vmm_alive(vm)) {
		stop_vmm(vm);
		if (vmm_alive(vm))
			r = exai__err(-EBUSY, "the VMM (pid %d) of %s does not die", (int)vm->pid, vm->spec.name);
		emit(vm, "vmm-stop", r);
	}
	/* the dm-crypt device (Firecracker) goes once nothing holds it */
	if (r == 0 && exai__vm_dm_active(vm))
		r = exai__vm_dm_close(vm);
	char cg[EXAI__VM_NAME_MAX + 16];
	exai__vm_cgroup_name(vm, cg, sizeof(cg));
	if (r == 0 && exai__cgroup_exists(cg)) {
		r = exai__cgroup_remove(cg);
		emit(vm, "cgroup-remove", r);
	}
	return r;
}

int exai_vm_stop(exai_vm *vm)
{
	int r = need_state(vm, "stop", S(RUNNING) | S(PAUSED));
	if (r < 0)
		return r;
	if ((r = teardown(vm)) == 0) {
		vm->pid = 0;
		vm->pid_start = 0;
		r = exai__vm_set_state(vm, EXAI_VM_STOPPED);
	}
	emit(vm, "stop", r);
	return r;
}

int exai_vm_destroy(exai_vm *vm)
{
	if (!vm || vm->state == EXAI_VM_DESTROYED)
		return 0;
	int r = teardown(vm);
	if (r == 0) {
		r = exai__vm_net_detach(vm);
		emit(vm, "network-detach", r);
	}
	if (r == 0) {
		r = exai__vm_keys_shred(vm);
		emit(vm, "keys-shred", r);
	}
	if (r == 0) {
		if (nftw(vm->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
			r = exai__err_sys(exai__neg_errno(), "cannot remove %s", vm->dir);
		emit(vm, "files-delete", r);
	}
	if (r == 0)
		vm->state = EXAI_VM_DESTROYED;
	emit(vm, "destroy", r);
	return r;
}

/* ---- queries --------------------------------------------------------------------------------- */

int exai_vm_state(exai_vm *vm)
{
	refresh(vm);
	return vm->state;
}

const char *exai_vm_name(const exai_vm *vm)
{
	return vm->spec.name;
}

int exai_vm_inspect(exai_vm *vm, char **ret_json)
{
	refresh(vm);
	char *path = exai__path_join(vm->dir, "state.json"), *text = NULL;
	size_t len;
	json_t *j = NULL;
	int r = path ? exai__read_file(path, STATE_MAX, &text, &len) : exai__err(-ENOMEM, "out of memory");
	free(path);
	if (r == 0 && exai__json_parse(&j, text, len) < 0)
		r = exai__err(-EBADMSG, "state.json of %s is corrupt", vm->spec.name);
	free(text);
	if (r < 0)
		return r;
	json_object_set_new(j, "vmm_alive", json_boolean(vmm_alive(vm)));
	char cg[EXAI__VM_NAME_MAX + 16];
	exai__vm_cgroup_name(vm, cg, sizeof(cg));
	json_object_set_new(j, "cgroup", json_boolean(exai__cgroup_exists(cg)));
	json_object_set_new(j, "cgroup_name", json_string(cg));
	if (vm->spec.disk_mib && vm->spec.backend == EXAI_VM_BACKEND_FIRECRACKER && !vm->spec.disk_plain)
		json_object_set_new(j, "disk_device_active", json_boolean(exai__vm_dm_active(vm)));
	json_object_set_new(j, "dir", json_string(vm->dir));
	json_object_set_new(j, "network", exai__vm_net_inspect(vm));
	r = exai__jcs_dump(j, ret_json, NULL);
	json_decref(j);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int exai_vm_list(char **ret_names, exai_ctx *ctx)
{
	char *base = exai__path_join(exai_ctx_state_dir(ctx), "vm");
	if (!base)
		return exai__err(-ENOMEM, "out of memory");
	DIR *d = opendir(base);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int r = 0;
	if (!d && errno != ENOENT)
		r = exai__err_sys(exai__neg_errno(), "cannot read %s", base);
	while (d && r == 0 && (e = readdir(d))) {
		if (!valid_name(e->d_name, EXAI__VM_NAME_MAX, false))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
			if (!nn) {
				r = exai__err(-ENOMEM, "out of memory");
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name)))
			r = exai__err(-ENOMEM, "out of memory");
		else
			n++;
	}
	if (d)
		closedir(d);
	free(base);
	struct exai__buf b = { 0 };
	if (r == 0 && n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && (exai__buf_append(&b, names[i], strlen(names[i])) < 0 || exai__buf_putc(&b, '\n') < 0))
			r = exai__err(-ENOMEM, "out of memory");
		free(names[i]);
	}
	free(names);
	if (r < 0) {
		exai__buf_free(&b);
		return r;
	}
	char *s = exai__buf_steal(&b, NULL);
	if (!s)
		return exai__err(-ENOMEM, "out of memory");
	*ret_names = s;
	return 0;
}
