/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-vm-disk: the per-VM disk's one on-disk format for both backends (lib/vm/vmkeys.c,
 * lib/vm/dmcrypt.c), without a guest. qemu-img makes the LUKS1 AES-256-XTS disk under the
 * per-VM key derived from the tenant DEK (as for QEMU); libcryptsetup, which Firecracker's
 * dm-crypt path uses, loads it and checks the key without activating anything: the derived key
 * opens it, another workspace's key, another DEK generation's key and a wrong passphrase do not.
 * A restored copy is adopted by a new workspace (its keyslot re-keyed): the new key opens it,
 * the source's no longer does. With the argument "activate" (root, a kernel with
 * device-mapper and dm-crypt): the disk is activated as a dm-crypt device, written through it,
 * found again by a fresh handle (re-adoption), and deactivated; skipped with a sentence where
 * /dev/mapper/control is missing or has no driver behind it.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exai-config.h"
#include "test.h"
#include "vm-internal.h"

static void setup_vm(struct exai_vm *vm, exai_ctx *ctx, const char *dir, const char *name, char *buf, char *run)
{
	memset(vm, 0, sizeof(*vm));
	vm->ctx = ctx;
	vm->qmp_fd = vm->secret_fd = vm->tap_fd = -1;
	sprintf(buf, "%s/vm/%s", dir, name);
	sprintf(run, "%s/run", buf);
	vm->dir = buf;
	vm->run_dir = run;
	snprintf(vm->spec.name, sizeof(vm->spec.name), "%s", name);
	snprintf(vm->spec.tenant, sizeof(vm->spec.tenant), "acme");
	vm->spec.uid = getuid();
	vm->spec.disk_mib = 16;
	CHECK_OK(exai__mkdir_p(run, 0700));
	CHECK_OK(exai__vm_state_id(ctx, vm->spec.host_id));
}

int main(int argc, char **argv)
{
	bool activate = argc > 1 && !strcmp(argv[1], "activate");
	if (access(EXAI__QEMU_IMG, X_OK) != 0)
		test_skip("%s is missing (Debian package qemu-utils): it makes the disks", EXAI__QEMU_IMG);
	if (!EXAI_HAVE_CRYPTSETUP)
		test_skip("this libexai was built without libcryptsetup (libcryptsetup-dev)");
	if (activate && geteuid() != 0)
		test_skip("activating a dm-crypt device needs root");
	if (activate && exai__dm_supported() < 0)
		test_skip("no dm-crypt activation here: %s", exai_errmsg());

	char *dir = test_tmpdir(), d1[512], r1[600], d2[512], r2[600], disk[700], disk2[700], cmd[2048];
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, copts, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &copts));
	struct exai_vm src, dst;
	setup_vm(&src, ctx, dir, "src", d1, r1);
	setup_vm(&dst, ctx, dir, "dst", d2, r2);
	CHECK_OK(exai__vm_keys_init(&src)); /* makes the tenant's keyring (file KMS) */
	CHECK_OK(exai__vm_keys_init(&dst));
	src.spec.disk_generation = dst.spec.disk_generation = 1;

	/* the state dir's id: 8 hex digits, the same every time */
	char id2[9];
	CHECK_OK(exai__vm_state_id(ctx, id2));
	CHECK(strlen(id2) == 8 && strspn(id2, "0123456789abcdef") == 8 && !strcmp(id2, src.spec.host_id));

	/* qemu-img makes the disk (LUKS1, as QEMU's driver reads it) */
	CHECK_OK(exai__vm_disk_create(&src));
	snprintf(disk, sizeof(disk), "%s/disk.luks", r1);
	int fd = open(disk, O_RDONLY);
	char magic[6] = "";
	CHECK(fd >= 0 && read(fd, magic, 6) == 6 && !memcmp(magic, "LUKS\xba\xbe", 6));
	if (fd >= 0)
		close(fd);

	/* libcryptsetup: the derived key opens it; nothing else does */
	CHECK_OK(exai__vm_dm_check_key(&src, disk, "src", 1));
	CHECK_RC(exai__vm_dm_check_key(&src, disk, "dst", 1), -EACCES); /* another workspace's key */
	CHECK(strstr(exai_errmsg(), "does not open") != NULL);
	exai_keyring *kr = NULL;
	CHECK_OK(exai_keyring_open(&kr, ctx, "acme", NULL));
	CHECK_OK(exai_keyring_rotate(kr));
	exai_keyring_unref(kr);
	CHECK_RC(exai__vm_dm_check_key(&src, disk, "src", 2), -EACCES); /* another generation's key */
	/* a LUKS1 disk under a passphrase that is not the derived key */
	snprintf(cmd, sizeof(cmd),
		 "printf wrong > %s/pw && " EXAI__QEMU_IMG " create -q -f luks --object secret,id=s,file=%s/pw "
		 "-o key-secret=s,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256,iter-time=10 %s/other.luks 4M",
		 dir, dir, dir);
	CHECK(system(cmd) == 0);
	snprintf(disk2, sizeof(disk2), "%s/other.luks", dir);
	CHECK_RC(exai__vm_dm_check_key(&src, disk2, "src", 1), -EACCES);
	/* not LUKS at all; LUKS1 with another cipher */
	snprintf(disk2, sizeof(disk2), "%s/pw", dir);
	CHECK_RC(exai__vm_dm_check_key(&src, disk2, "src", 1), -EBADMSG);
	snprintf(cmd, sizeof(cmd),
		 EXAI__QEMU_IMG " create -q -f luks --object secret,id=s,file=%s/pw "
		 "-o key-secret=s,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256,hash-alg=sha256,iter-time=10 %s/cbc.luks 4M",
		 dir, dir);
	CHECK(system(cmd) == 0);
	snprintf(disk2, sizeof(disk2), "%s/cbc.luks", dir);
	CHECK_RC(exai__vm_dm_check_key(&src, disk2, "src", 1), -EBADMSG);
	CHECK(strstr(exai_errmsg(), "AES-256-XTS") != NULL);

	/* a restored copy becomes the new workspace's: its key opens it, the source's not */
	snprintf(disk2, sizeof(disk2), "%s/disk.luks", r2);
	snprintf(cmd, sizeof(cmd), "cp %s %s", disk, disk2);
	CHECK(system(cmd) == 0);
	CHECK_OK(exai__vm_disk_adopt(&dst, "src", 1));
	CHECK(dst.spec.disk_generation == 2);
	CHECK_OK(exai__vm_dm_check_key(&dst, disk2, "dst", 2));
	CHECK_RC(exai__vm_dm_check_key(&dst, disk2, "src", 1), -EACCES);
	CHECK_OK(exai__vm_dm_check_key(&src, disk, "src", 1)); /* the source's own disk is untouched */
	/* the source's key no longer adopts it either */
	CHECK(exai__vm_disk_adopt(&dst, "src", 1) < 0);

	if (activate) {
		/* dm-crypt: activate, write through it, adopt it from a fresh handle, deactivate */
		CHECK(!exai__vm_dm_active(&src));
		CHECK_OK(exai__vm_dm_open(&src));
		CHECK(exai__vm_dm_active(&src) && src.disk_dev[0] == '/');
		struct stat st;
		CHECK(stat(src.disk_dev, &st) == 0 && S_ISBLK(st.st_mode) && st.st_uid == src.spec.uid);
		static const char marker[] = "EXAI-DM-MARKER-PLAINTEXT";
		int bd = open(src.disk_dev, O_RDWR);
		CHECK(bd >= 0 && pwrite(bd, marker, sizeof(marker), 4096) == (ssize_t)sizeof(marker) && fsync(bd) == 0);
		if (bd >= 0)
			close(bd);
		CHECK_OK(exai__vm_dm_flush(&src));
		snprintf(cmd, sizeof(cmd), "grep -qa %s %s", marker, disk);
		CHECK(system(cmd) != 0); /* ciphertext on the host */
		struct exai_vm again;
		char d3[512], r3[600];
		setup_vm(&again, ctx, dir, "src", d3, r3);
		again.spec.disk_generation = 1;
		CHECK(exai__vm_dm_active(&again));
		CHECK_OK(exai__vm_dm_open(&again)); /* found active: adopted, not activated twice */
		CHECK_OK(exai__vm_dm_close(&again));
		CHECK(!exai__vm_dm_active(&src));
		CHECK_OK(exai__vm_dm_close(&src)); /* idempotent */
		/* activated again, the data is there */
		CHECK_OK(exai__vm_dm_open(&src));
		char back[sizeof(marker)] = "";
		bd = open(src.disk_dev, O_RDONLY);
		CHECK(bd >= 0 && pread(bd, back, sizeof(back), 4096) == (ssize_t)sizeof(back) && !memcmp(back, marker, sizeof(marker)));
		if (bd >= 0)
			close(bd);
		CHECK_OK(exai__vm_dm_close(&src));
	}

	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
