/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-vm-disk: the per-VM disk's one on-disk format for both backends (lib/vm/vmkeys.c,
 * lib/vm/dmcrypt.c), without a guest. qemu-img makes the LUKS1 AES-256-XTS disk under the
 * per-VM key derived from the tenant DEK (as for QEMU); libcryptsetup, which Firecracker's
 * dm-crypt path uses, loads it and checks the key without activating anything: the derived key
 * opens it, another workspace's key, another DEK generation's key and a wrong passphrase do not.
 * A restored copy is adopted by a new workspace (its keyslot re-keyed): the new key opens it,
 * the source's no longer does. A snapshot with a disk (format version 3) carries the disk as a
 * second sealed message, restored byte for byte and re-keyed. With the argument "activate" (root, a kernel with
 * device-mapper and dm-crypt): the disk is activated as a dm-crypt device, written through it,
 * found again by a fresh handle (re-adoption), and deactivated; skipped with a sentence where
 * /dev/mapper/control is missing or has no driver behind it.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "exai-config.h"
#include "test.h"
#include "vm-internal.h"

/* A shell function that runs qemu-img up to three times: its LUKS PBKDF2 sizing gives up on a
 * busy host ("Unable to get accurate CPU usage"), as the library's own runs allow for. */
#define QEMU_IMG_TRIED \
	"qemu_img() { for t in 1 2 3; do " EXAI__QEMU_IMG " \"$@\" && return 0; done; return 1; }; "

static int fake_snapshot(struct exai_vm *vm, int fd)
{
	(void)vm;
	static const char stream[] = "a stand-in for the VMM's state stream";
	return exai__write_all(fd, stream, sizeof(stream));
}

static const struct exai__backend fake = { .name = "qemu", .snapshot = fake_snapshot };

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
	vm->spec.backend = EXAI_VM_BACKEND_FIRECRACKER; /* the backend that opens it with dm-crypt */
	vm->spec.vcpus = 1;
	vm->spec.mem_mib = 256;
	snprintf(vm->spec.cmdline, sizeof(vm->spec.cmdline), "console=ttyS0");
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
		 QEMU_IMG_TRIED "printf wrong > %s/pw && qemu_img create -q -f luks --object secret,id=s,file=%s/pw "
		 "-o key-secret=s,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256,iter-time=10 %s/other.luks 4M",
		 dir, dir, dir);
	CHECK(system(cmd) == 0);
	snprintf(disk2, sizeof(disk2), "%s/other.luks", dir);
	CHECK_RC(exai__vm_dm_check_key(&src, disk2, "src", 1), -EACCES);
	/* not LUKS at all; LUKS1 with another cipher */
	snprintf(disk2, sizeof(disk2), "%s/pw", dir);
	CHECK_RC(exai__vm_dm_check_key(&src, disk2, "src", 1), -EBADMSG);
	snprintf(cmd, sizeof(cmd),
		 QEMU_IMG_TRIED "qemu_img create -q -f luks --object secret,id=s,file=%s/pw "
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

	/* a snapshot with a disk (version 3; the VMM's stream stood in for): the disk is sealed as
	 * a second message, authenticated with the first, restored byte for byte into a new
	 * workspace and re-keyed there; an altered disk message is refused */
	struct exai_vm dst2;
	char d4[512], r4[600], snap[600], disk3[700];
	setup_vm(&dst2, ctx, dir, "dst2", d4, r4);
	CHECK_OK(exai__vm_keys_init(&dst2));
	src.be = &fake;
	snprintf(snap, sizeof(snap), "%s/disk.snap", dir);
	CHECK_OK(exai__vm_snapshot_write(&src, snap, false));
	struct exai__vm_spec spec = { 0 };
	struct exai__snap_info info;
	uint8_t *key = exai_secure_alloc(32);
	fd = open(snap, O_RDONLY);
	char ver[12];
	CHECK(pread(fd, ver, 12, 0) == 12 && ver[11] == 3);
	CHECK_OK(exai__vm_snapshot_check(fd, snap, &spec, &info));
	CHECK(spec.disk_mib == 16 && !spec.disk_plain && info.disk_generation == 1 && info.disk_len > (16u << 20));
	CHECK(info.off + info.len == info.disk_off);
	CHECK_OK(exai__vm_snapshot_open(ctx, fd, snap, "acme", &info, key));
	CHECK_OK(exai__vm_snapshot_unseal_disk(&dst2, fd, &info, key));
	close(fd);
	snprintf(disk3, sizeof(disk3), "%s/disk.luks", r4);
	snprintf(cmd, sizeof(cmd), "cmp -s %s %s", disk, disk3);
	CHECK(system(cmd) == 0);
	CHECK_OK(exai__vm_disk_adopt(&dst2, "src", info.disk_generation));
	CHECK_OK(exai__vm_dm_check_key(&dst2, disk3, "dst2", 2));
	CHECK_RC(exai__vm_dm_check_key(&dst2, disk3, "src", 1), -EACCES);
	/* one flipped byte in the disk message, the SHA-256 trailer made to match: refused */
	char *t = NULL;
	size_t tlen = 0;
	CHECK_OK(exai__read_file(snap, 256u << 20, &t, &tlen));
	t[info.disk_off + info.disk_len / 2] ^= 1;
	unsigned int dl;
	EVP_Digest(t, tlen - 48, (uint8_t *)t + tlen - 40, &dl, EVP_sha256(), NULL);
	fd = open(snap, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && exai__write_all(fd, t, tlen) == 0);
	close(fd);
	free(t);
	fd = open(snap, O_RDONLY);
	CHECK_OK(exai__vm_snapshot_check(fd, snap, &spec, &info));
	CHECK_RC(exai__vm_snapshot_open(ctx, fd, snap, "acme", &info, key), -EBADMSG);
	close(fd);
	exai_secure_free(key);

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
