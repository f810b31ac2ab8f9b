/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dmcrypt.c: the Firecracker backend's encrypted disk (docs/vm.md, "Disk").
 *
 * One on-disk format for both backends: run/disk.luks, the LUKS1 AES-256-XTS (plain64) file
 * that qemu-img makes under the per-VM disk key (vmkeys.c). QEMU opens it with its own LUKS
 * driver; Firecracker, which has no such driver, gets a device-mapper device: libcryptsetup
 * loads the LUKS1 header and activates the volume with the same key as dm-crypt device
 * `exai-<state dir id>-<name>` (over a loop device it sets up on the file), which is bound into
 * the jail at /dev/exai-disk and owned by the VMM's uid. The key only ever sits in locked
 * memory here (libcryptsetup copies it into its own locked memory, the kernel keeps the volume
 * key); it is never on a command line or in a file. The device lives as long as the VMM:
 * stop, destroy and a failed boot deactivate it; a process that adopts a running workspace
 * finds it by its name.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/dm-ioctl.h>

#include "exai-config.h"
#include "vm-internal.h"

#if EXAI_HAVE_CRYPTSETUP
#include <pthread.h>
#include <libcryptsetup.h>
#endif

#define MAPPER_DIR "/dev/mapper"
#define DM_CONTROL MAPPER_DIR "/control"

static void dm_name(const struct exai_vm *vm, char *buf, size_t len)
{
	snprintf(buf, len, "exai-%s-%s", vm->spec.host_id, vm->spec.name);
}

/* Whether the kernel's device-mapper lists, or can load, the "crypt" target. */
static bool crypt_target(int ctl)
{
	union {
		struct dm_ioctl io;
		char buf[16384];
	} u;
	memset(&u, 0, sizeof(u.io));
	u.io.version[0] = DM_VERSION_MAJOR;
	u.io.data_size = sizeof(u);
	u.io.data_start = sizeof(u.io);
	if (ioctl(ctl, DM_LIST_VERSIONS, &u) == 0 && !(u.io.flags & DM_BUFFER_FULL_FLAG)) {
		size_t off = u.io.data_start;
		while (off + sizeof(struct dm_target_versions) <= sizeof(u)) {
			struct dm_target_versions *t = (struct dm_target_versions *)(void *)(u.buf + off);
			if (!strncmp(t->name, "crypt", sizeof(u) - off - sizeof(*t)))
				return true;
			if (!t->next)
				break;
			off += t->next;
		}
	}
	/* not loaded yet: the kernel loads the module on first use when it has one */
	struct utsname un;
	char p[512];
	if (uname(&un) < 0)
		return false;
	const char *ext[] = { "", ".xz", ".zst", ".gz" };
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(ext); i++) {
		snprintf(p, sizeof(p), "/lib/modules/%s/kernel/drivers/md/dm-crypt.ko%s", un.release, ext[i]);
		if (access(p, R_OK) == 0)
			return true;
	}
	return false;
}

int exai__dm_supported(void)
{
#if !EXAI_HAVE_CRYPTSETUP
	return exai__err(-ENOTSUP, "this libexai was built without libcryptsetup (dm-crypt): rebuild it with "
				   "libcryptsetup-dev (meson option cryptsetup)");
#else
	int ctl = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		int e = exai__neg_errno();
		if (e == -ENOENT || e == -ENODEV || e == -ENXIO)
			return exai__err(-ENOTSUP,
					 "the host kernel has no device-mapper (%s: %s; needs CONFIG_BLK_DEV_DM, module dm_mod, and CONFIG_DM_CRYPT, module dm_crypt)",
					 DM_CONTROL, strerror(-e));
		return exai__err_sys(e, "cannot open %s (device-mapper)", DM_CONTROL);
	}
	struct dm_ioctl io = { .version = { DM_VERSION_MAJOR, 0, 0 }, .data_size = sizeof(io) };
	int r = 0;
	if (ioctl(ctl, DM_VERSION, &io) < 0)
		r = exai__err(-ENOTSUP, "the host kernel's device-mapper does not answer on %s (%s)", DM_CONTROL,
			      strerror(errno));
	else if (!crypt_target(ctl))
		r = exai__err(-ENOTSUP, "the host kernel's device-mapper has no dm-crypt target (needs CONFIG_DM_CRYPT, module dm_crypt)");
	close(ctl);
	return r;
#endif
}

#if EXAI_HAVE_CRYPTSETUP
/* libcryptsetup prints to stderr unless told otherwise: library code never prints. Messages
 * of a device go to its context's log (they never hold key material). */
static void log_none(int level, const char *msg, void *ud)
{
	(void)level;
	(void)msg;
	(void)ud;
}

static void log_ctx(int level, const char *msg, void *ud)
{
	char line[256];
	snprintf(line, sizeof(line), "%s", msg);
	line[strcspn(line, "\n")] = '\0';
	if (level == CRYPT_LOG_ERROR)
		exai__log_warn(ud, "vm", "libcryptsetup: %s", line);
	else
		exai__log_debug(ud, "vm", "libcryptsetup: %s", line);
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void quiet_default(void)
{
	crypt_set_log_callback(NULL, log_none, NULL);
}

/* Loads the LUKS1 header of @path; checks it is the format libexai writes. */
static int load(exai_ctx *ctx, const char *path, struct crypt_device **ret)
{
	struct crypt_device *cd = NULL;
	pthread_once(&quiet_once, quiet_default);
	int r = crypt_init(&cd, path);
	if (r < 0)
		return exai__err(r, "cannot open the disk %s (libcryptsetup: %s)", path, strerror(-r));
	crypt_set_log_callback(cd, log_ctx, ctx);
	r = crypt_load(cd, CRYPT_LUKS1, NULL);
	const char *cipher = r == 0 ? crypt_get_cipher(cd) : NULL, *mode = r == 0 ? crypt_get_cipher_mode(cd) : NULL;
	if (r < 0)
		r = exai__err(-EBADMSG, "%s is not a LUKS1 disk (libcryptsetup: %s)", path, strerror(-r));
	else if (!cipher || !mode || strcmp(cipher, "aes") != 0 || strcmp(mode, "xts-plain64") != 0 ||
		 crypt_get_volume_key_size(cd) != 64)
		r = exai__err(-EBADMSG, "%s is LUKS1 with %s-%s and a %d-byte key, not AES-256-XTS (plain64)", path,
			      cipher ? cipher : "?", mode ? mode : "?", crypt_get_volume_key_size(cd));
	if (r < 0) {
		crypt_free(cd);
		return r;
	}
	*ret = cd;
	return 0;
}

/* Unlocks @cd with the disk key of @name: as @dev (NULL: only checks the key). */
static int unlock(struct exai_vm *vm, struct crypt_device *cd, const char *path, const char *name, uint32_t gen,
		  const char *dev)
{
	char *pass = exai_secure_alloc(EXAI__VM_DISK_PASS_LEN);
	int r = pass ? exai__vm_disk_passphrase(vm->ctx, vm->spec.tenant, name, gen, pass)
		     : exai__err(-ENOMEM, "out of memory");
	if (r == 0) {
		r = crypt_activate_by_passphrase(cd, dev, CRYPT_ANY_SLOT, pass, strlen(pass), 0);
		if (r == -EPERM)
			r = exai__err(-EACCES, "the disk key of %s (DEK generation %u) does not open %s", name, gen, path);
		else if (r < 0 && dev)
			r = exai__err(r, "cannot activate %s as the dm-crypt device %s: %s", path, dev, strerror(-r));
		else if (r < 0)
			r = exai__err(r, "cannot check the key of %s: %s", path, strerror(-r));
		else
			r = 0;
	}
	exai_secure_free(pass);
	return r;
}
#endif

int exai__vm_dm_check_key(struct exai_vm *vm, const char *path, const char *name, uint32_t generation)
{
#if !EXAI_HAVE_CRYPTSETUP
	(void)vm;
	(void)path;
	(void)name;
	(void)generation;
	return exai__dm_supported();
#else
	struct crypt_device *cd = NULL;
	int r = load(vm->ctx, path, &cd);
	if (r == 0)
		r = unlock(vm, cd, path, name, generation, NULL);
	crypt_free(cd);
	return r;
#endif
}

bool exai__vm_dm_active(struct exai_vm *vm)
{
#if !EXAI_HAVE_CRYPTSETUP
	(void)vm;
	return false;
#else
	char name[64];
	dm_name(vm, name, sizeof(name));
	/* only an encrypted Firecracker disk has one */
	if (vm->spec.backend != EXAI_VM_BACKEND_FIRECRACKER || !vm->spec.disk_mib || vm->spec.disk_plain ||
	    access(DM_CONTROL, F_OK) != 0)
		return false;
	pthread_once(&quiet_once, quiet_default);
	crypt_status_info st = crypt_status(NULL, name);
	return st == CRYPT_ACTIVE || st == CRYPT_BUSY;
#endif
}

int exai__vm_dm_open(struct exai_vm *vm)
{
	char name[64];
	dm_name(vm, name, sizeof(name));
	int r = exai__dm_supported();
	if (r < 0)
		return exai__err(r, "%s: cannot open its encrypted disk: %s", vm->spec.name, exai_errmsg());
#if EXAI_HAVE_CRYPTSETUP
	char dev[128], *path = exai__vm_run_path(vm, "disk.luks");
	snprintf(dev, sizeof(dev), MAPPER_DIR "/%s", name);
	if (!path)
		return exai__err(-ENOMEM, "out of memory");
	if (!exai__vm_dm_active(vm)) {
		struct crypt_device *cd = NULL;
		r = load(vm->ctx, path, &cd);
		if (r == 0)
			r = unlock(vm, cd, path, vm->spec.name, vm->spec.disk_generation, name);
		crypt_free(cd);
		exai__vm_event(vm, "disk-activate", r, json_pack("{s:s, s:s}", "device", dev, "cipher", "aes-xts-plain64"));
	} else {
		exai__log_info(vm->ctx, "vm", "%s: its dm-crypt device %s is active already: adopted", vm->spec.name, dev);
	}
	/* Firecracker opens it as the VMM's uid */
	if (r == 0 && (chown(dev, vm->spec.uid, vm->spec.uid) < 0 || chmod(dev, 0600) < 0))
		r = exai__err_sys(exai__neg_errno(), "cannot hand %s to the VMM's uid", dev);
	if (r == 0)
		snprintf(vm->disk_dev, sizeof(vm->disk_dev), "%s", dev);
	else if (exai__vm_dm_active(vm))
		exai__vm_dm_close(vm);
	free(path);
#endif
	return r;
}

int exai__vm_dm_flush(struct exai_vm *vm)
{
	if (!exai__vm_dm_active(vm))
		return 0;
	char name[64], dev[160];
	dm_name(vm, name, sizeof(name));
	snprintf(dev, sizeof(dev), MAPPER_DIR "/%s", name);
	int fd = open(dev, O_RDONLY | O_CLOEXEC), r = 0;
	if (fd < 0 || fsync(fd) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot flush %s", dev);
	if (fd >= 0)
		close(fd);
	return r;
}

int exai__vm_dm_close(struct exai_vm *vm)
{
	vm->disk_dev[0] = '\0';
	if (!exai__vm_dm_active(vm))
		return 0;
#if EXAI_HAVE_CRYPTSETUP
	char name[64];
	dm_name(vm, name, sizeof(name));
	int r = -EBUSY;
	/* the VMM's last descriptor may take a moment to go */
	for (int tries = 0; tries < 100 && r == -EBUSY; tries++) {
		r = crypt_deactivate(NULL, name);
		if (r == -EBUSY)
			usleep(20000);
	}
	if (r == -ENODEV)
		r = 0;
	if (r < 0)
		r = exai__err(r, "cannot deactivate the dm-crypt device %s: %s", name, strerror(-r));
	exai__vm_event(vm, "disk-deactivate", r, json_pack("{s:s}", "device", name));
	return r;
#else
	return 0;
#endif
}
