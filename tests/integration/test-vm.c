/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-vm: workspaces on real QEMU microvm guests (TCG here, KVM where present), as root.
 * Two boots in all: one workspace is created and booted, the other is restored from its
 * snapshot. Exec with exit codes and streamed output, a 100 MiB put/get with checksums,
 * pause/resume, illegal transitions, re-adoption by another handle, snapshot and restore into
 * a new workspace where a tmpfs counter survives, VMM death detection, and a destroy that
 * leaves no process, cgroup or file.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <exai/exai.h>

#include "agent-proto.h"
#include "core-internal.h"
#include "test.h"
#include "vm-internal.h"

struct cap {
	struct exai__buf out, err;
};

static int on_output(void *ud, int stream, const void *p, size_t n)
{
	struct cap *c = ud;
	return exai__buf_append(stream == 1 ? &c->out : &c->err, p, n);
}

static int sh(exai_vm *vm, const char *script, struct cap *c, int *status)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	EXAI_OPTS(exai_vm_exec_opts, o, .argv = argv, .output = on_output, .userdata = c, .timeout_ms = 60000);
	exai__buf_free(&c->out);
	exai__buf_free(&c->err);
	return exai_vm_exec(vm, &o, status);
}

static json_t *events;

static int capture(void *data, json_t *ev)
{
	(void)data;
	json_array_append(events, ev);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sha_file(const char *path, uint8_t out[32])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && exai__ap_sha256_fd(fd, out) == 0);
	if (fd >= 0)
		close(fd);
}

/* Its cgroup is named <state dir id>-<name> (host-wide unique). */
static bool cgroup_gone(const struct exai_vm *vm)
{
	char p[512], name[64];
	exai__vm_cgroup_name(vm, name, sizeof(name));
	const char *ctl[] = { "cpu", "cpuset", "memory", "pids" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/exai/%s", ctl[i], name);
		if (access(p, F_OK) == 0)
			return false;
	}
	snprintf(p, sizeof(p), "/sys/fs/cgroup/exai/%s", name);
	return access(p, F_OK) != 0;
}

int main(int argc, char **argv)
{
	/* argv[1]: "qemu" (default) or "firecracker": the same tests on either backend. */
	bool fc = argc > 1 && !strcmp(argv[1], "firecracker");
	if (geteuid() != 0)
		test_skip("workspaces need root (namespaces, cgroups, a uid per VMM)");
	if (fc && (access("/dev/kvm", R_OK | W_OK) != 0 ||
		   (access("/usr/bin/firecracker", X_OK) != 0 && access("/usr/local/bin/firecracker", X_OK) != 0)))
		test_skip("real Firecracker needs /dev/kvm and a firecracker binary; this host has %s",
			  access("/dev/kvm", F_OK) == 0 ? "no firecracker binary" : "no /dev/kvm");
	if (!fc && access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
		test_skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)");
	const char *build = getenv("EXAI_BUILD_ROOT");
	char image[512];
	snprintf(image, sizeof(image), "%s/guest", build ? build : ".");
	char mpath[600];
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", image);
	if (access(mpath, R_OK) != 0)
		test_skip("no guest image in %s (needs linux-image-cloud-amd64, busybox-static, cpio)", image);
	snprintf(mpath, sizeof(mpath), "%s/vmlinux", image);
	if (fc && access(mpath, R_OK) != 0)
		test_skip("Firecracker boots an uncompressed vmlinux, which the image in %s lacks", image);

	char *dir = test_tmpdir();
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, copts, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &copts));
	events = json_array();
	CHECK_OK(exai__ctx_set_emitter(ctx, capture, NULL));

	/* bad input first: no VM is started */
	exai_vm *vm = NULL, *vm2 = NULL, *again = NULL;
	EXAI_OPTS(exai_vm_opts, bad, .image_dir = "/nonexistent");
	CHECK_RC(exai_vm_create(&vm, ctx, "Bad Name", NULL), -EINVAL);
	CHECK_RC(exai_vm_create(&vm, ctx, "noimage", &bad), -ENOENT);
	CHECK(strstr(exai_errmsg(), "/nonexistent") != NULL);
	CHECK_RC(exai_vm_open(&vm, ctx, "unknown"), -ENOENT);

	/* a tampered image is refused before any VMM starts; a guest that cannot come up (no
	 * working init) makes the VMM exit: both end `failed`, with nothing left running */
	if (!fc) {
		char bad_dir[600], f[700], cmd[4096], good_manifest[600];
		snprintf(good_manifest, sizeof(good_manifest), "%s/manifest.json", image);
		snprintf(bad_dir, sizeof(bad_dir), "%s/badimage", dir);
		snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s/vmlinuz %s/initramfs.cpio.gz %s/manifest.json %s/",
			 bad_dir, image, image, image, bad_dir);
		CHECK(system(cmd) == 0);
		snprintf(f, sizeof(f), "%s/initramfs.cpio.gz", bad_dir);
		int tf = open(f, O_WRONLY | O_APPEND);
		CHECK(write(tf, "x", 1) == 1);
		close(tf);
		EXAI_OPTS(exai_vm_opts, bo, .image_dir = bad_dir, .backend = EXAI_VM_BACKEND_QEMU,
			  .boot_timeout_ms = 60000);
		exai_vm *b = NULL;
		CHECK_OK(exai_vm_create(&b, ctx, "badimage", &bo));
		if (b) {
			CHECK_RC(exai_vm_boot(b), -EBADMSG);
			CHECK(strstr(exai_errmsg(), "initramfs.cpio.gz") != NULL);
			CHECK(exai_vm_state(b) == EXAI_VM_FAILED && b->pid == 0);
			CHECK(cgroup_gone(b));
			/* now a consistent manifest over an initramfs the kernel cannot use */
			tf = open(f, O_WRONLY | O_TRUNC);
			CHECK(write(tf, "not a cpio archive", 18) == 18);
			close(tf);
			uint8_t h[32];
			char hex[65], mf[2048];
			sha_file(f, h);
			for (int i = 0; i < 32; i++)
				sprintf(hex + 2 * i, "%02x", h[i]);
			char *m = test_read_file(good_manifest, NULL); /* the good manifest: keep its vmlinuz entry */
			char *entry = strstr(m, "{\"name\":\"initramfs.cpio.gz\"");
			if (entry) {
				*entry = '\0';
				snprintf(mf, sizeof(mf), "%s{\"name\":\"initramfs.cpio.gz\",\"size\":18,\"sha256\":\"%s\"}]}\n", m, hex);
				snprintf(f, sizeof(f), "%s/manifest.json", bad_dir);
				tf = open(f, O_WRONLY | O_TRUNC);
				CHECK(write(tf, mf, strlen(mf)) == (ssize_t)strlen(mf));
				close(tf);
			}
			free(m);
			CHECK_OK(exai_vm_destroy(b));
			exai_vm_free(b);
			b = NULL;
			CHECK_OK(exai_vm_create(&b, ctx, "badimage", &bo));
		}
		if (b) {
			int rb = exai_vm_boot(b);
			CHECK(rb == -ESRCH);
			printf("boot with an unusable initramfs: %s\n", exai_errmsg());
			CHECK(exai_vm_state(b) == EXAI_VM_FAILED);
			CHECK(!exai__proc_alive(b->pid, b->pid_start));
			CHECK(cgroup_gone(b));
			CHECK_OK(exai_vm_destroy(b));
			exai_vm_free(b);
		}
	}

	EXAI_OPTS(exai_vm_opts, opts, .image_dir = image, .mem_mib = 512,
		  .backend = fc ? EXAI_VM_BACKEND_FIRECRACKER : EXAI_VM_BACKEND_QEMU);
	CHECK_OK(exai_vm_create(&vm, ctx, "itest", &opts));
	if (!vm)
		return test_done();
	CHECK_RC(exai_vm_create(&again, ctx, "itest", &opts), -EEXIST);
	CHECK(exai_vm_state(vm) == EXAI_VM_CREATED);
	CHECK_RC(exai_vm_pause(vm), -EBUSY);
	CHECK(strstr(exai_errmsg(), "created") != NULL);

	double t0 = now_s();
	CHECK_OK(exai_vm_boot(vm));
	printf("boot to agent ready: %.2f s\n", now_s() - t0);
	CHECK(exai_vm_state(vm) == EXAI_VM_RUNNING);
	CHECK_RC(exai_vm_boot(vm), -EBUSY);
	CHECK_RC(exai_vm_resume(vm), -EBUSY);

	/* the VMM is confined: its own uid, a cgroup with the limits */
	CHECK(vm->pid > 0 && exai__proc_alive(vm->pid, vm->pid_start));
	struct stat st;
	char p[600];
	snprintf(p, sizeof(p), "/proc/%d", (int)vm->pid);
	CHECK(stat(p, &st) == 0 && st.st_uid == vm->spec.uid && st.st_uid >= EXAI__VM_UID_BASE);
	char cgn[64], cgp[600];
	exai__vm_cgroup_name(vm, cgn, sizeof(cgn));
	CHECK(strlen(cgn) == 8 + 1 + 5 && !strcmp(cgn + 9, "itest"));
	snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/exai/%s/memory.limit_in_bytes", cgn);
	if (access("/sys/fs/cgroup/memory", F_OK) == 0) {
		char *lim = test_read_file(p, NULL);
		CHECK(strtoull(lim, NULL, 10) == (512ull + (vm->spec.kvm ? 128 : 512)) << 20);
		free(lim);
		snprintf(cgp, sizeof(cgp), "/sys/fs/cgroup/cpu/exai/%s/cpu.cfs_quota_us", cgn);
		char *q = test_read_file(cgp, NULL);
		CHECK(strtoll(q, NULL, 10) == 100000); /* 1 vCPU (the floor) at 100 % of a 100 ms period */
		free(q);
		snprintf(cgp, sizeof(cgp), "/sys/fs/cgroup/pids/exai/%s/pids.max", cgn);
		q = test_read_file(cgp, NULL);
		CHECK(strtoll(q, NULL, 10) == 512);
		free(q);
		snprintf(cgp, sizeof(cgp), "/sys/fs/cgroup/pids/exai/%s/cgroup.procs", cgn);
		char *procs = test_read_file(cgp, NULL);
		char want[32];
		snprintf(want, sizeof(want), "%d\n", (int)vm->pid);
		CHECK(strstr(procs, want) != NULL);
		free(procs);
	}

	/* exec: exit codes and streamed output */
	struct cap c = { 0 };
	int status = -1;
	double e0 = now_s();
	CHECK_OK(sh(vm, "echo hello; echo oops >&2; exit 5", &c, &status));
	printf("exec round trip: %.1f ms\n", (now_s() - e0) * 1000);
	CHECK(status == 5);
	CHECK_STREQ(c.out.data, "hello\n");
	CHECK_STREQ(c.err.data, "oops\n");
	CHECK_OK(sh(vm, "seq 1 50000 | tail -n 1; uname -r", &c, &status));
	CHECK(status == 0 && c.out.data && strncmp(c.out.data, "50000\n", 6) == 0);
	CHECK_OK(sh(vm, "kill -TERM $$", &c, &status));
	CHECK(status == 128 + SIGTERM);
	const char *missing[] = { "/no/such/program", NULL };
	EXAI_OPTS(exai_vm_exec_opts, mo, .argv = missing);
	CHECK_RC(exai_vm_exec(vm, &mo, &status), -ENOENT);

	/* 100 MiB put and get back, checked end to end */
	char src[600], back[600];
	snprintf(src, sizeof(src), "%s/big.bin", dir);
	snprintf(back, sizeof(back), "%s/back.bin", dir);
	int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	static uint64_t block[1 << 14];
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 100 * 8; i++) {
		for (size_t k = 0; k < EXAI__ARRAY_SIZE(block); k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			block[k] = x;
		}
		CHECK(write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
	}
	close(fd);
	double p0 = now_s();
	CHECK_OK(exai_vm_put(vm, src, "/tmp/big.bin", 0600));
	double p1 = now_s();
	CHECK_OK(exai_vm_get(vm, "/tmp/big.bin", back));
	double p2 = now_s();
	printf("100 MiB put: %.1f s (%.1f MiB/s), get: %.1f s (%.1f MiB/s)\n", p1 - p0, 100 / (p1 - p0),
	       p2 - p1, 100 / (p2 - p1));
	uint8_t h1[32], h2[32];
	sha_file(src, h1);
	sha_file(back, h2);
	CHECK(memcmp(h1, h2, 32) == 0);
	CHECK_OK(sh(vm, "sha256sum /tmp/big.bin | cut -c1-64; rm /tmp/big.bin", &c, &status));
	char hex[65];
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", h1[i]);
	CHECK(c.out.data && strncmp(c.out.data, hex, 64) == 0);
	unlink(src);
	unlink(back);

	/* a marker written inside the guest reaches no file of the workspace's state (logs,
	 * console, state.json); checked again below once a snapshot (guest memory) exists */
	CHECK_OK(sh(vm, "echo EXAI-MARKER-$((6 * 7))-PLAINTEXT > /tmp/marker; echo EXAI-MARKER-$((6 * 7))-PLAINTEXT >&2",
		    &c, &status));
	snprintf(p, sizeof(p), "grep -rqa EXAI-MARKER-42-PLAINTEXT %s/vm", dir);
	CHECK(system(p) != 0);

	/* pause / resume; another handle adopts the running workspace */
	CHECK_OK(sh(vm, "echo 41 > /tmp/counter", &c, &status));
	CHECK_OK(exai_vm_pause(vm));
	CHECK(exai_vm_state(vm) == EXAI_VM_PAUSED);
	CHECK_RC(sh(vm, "true", &c, &status), -EBUSY);
	/* as another process would: this handle goes, a new one adopts the workspace */
	exai_vm_free(vm);
	vm = NULL;
	CHECK_OK(exai_vm_open(&again, ctx, "itest"));
	if (again) {
		CHECK(exai_vm_state(again) == EXAI_VM_PAUSED);
		CHECK_OK(exai_vm_resume(again));
		CHECK_OK(sh(again, "cat /tmp/counter", &c, &status));
		CHECK_STREQ(c.out.data, "41\n");
		exai_vm_free(again);
		again = NULL;
	}
	CHECK_OK(exai_vm_open(&vm, ctx, "itest"));
	if (!vm)
		return test_done();
	CHECK(exai_vm_state(vm) == EXAI_VM_RUNNING);

	/* snapshot, restore into a new workspace: the tmpfs counter survives */
	char snap[600];
	snprintf(snap, sizeof(snap), "%s/itest.snap", dir);
	double s0 = now_s();
	CHECK_OK(exai_vm_snapshot(vm, snap));
	printf("snapshot (512 MiB guest): %.2f s\n", now_s() - s0);
	CHECK(exai_vm_state(vm) == EXAI_VM_RUNNING);
	CHECK_RC(exai_vm_snapshot(vm, snap), -EEXIST);
	/* the snapshot holds the guest's memory, /tmp/marker included: encrypted, so the marker
	 * is in no file under the state dir (the snapshot is written there) */
	snprintf(p, sizeof(p), "grep -rqa EXAI-MARKER-42-PLAINTEXT %s", dir);
	CHECK(system(p) != 0);
	double r0 = now_s();
	CHECK_OK(exai_vm_restore(&vm2, ctx, snap, "itest2", NULL));
	printf("restore to agent ready: %.2f s\n", now_s() - r0);
	if (vm2) {
		CHECK(exai_vm_state(vm2) == EXAI_VM_RUNNING);
		CHECK_OK(sh(vm2, "n=$(cat /tmp/counter); echo $((n + 1)) > /tmp/counter; cat /tmp/counter", &c, &status));
		CHECK_STREQ(c.out.data, "42\n");
		/* the original is untouched */
		CHECK_OK(sh(vm, "cat /tmp/counter", &c, &status));
		CHECK_STREQ(c.out.data, "41\n");
	}
	/* a corrupted snapshot is refused before any VMM sees it */
	fd = open(snap, O_RDWR);
	unsigned char byte = 0; /* flipped, not overwritten: the byte may be that value already */
	CHECK(pread(fd, &byte, 1, 4096) == 1);
	byte ^= 0x01;
	CHECK(pwrite(fd, &byte, 1, 4096) == 1);
	close(fd);
	exai_vm *bad2 = NULL;
	CHECK_RC(exai_vm_restore(&bad2, ctx, snap, "itest3", NULL), -EBADMSG);
	snprintf(p, sizeof(p), "%s/vm/itest3", dir);
	CHECK(access(p, F_OK) != 0);

	/* a VMM that dies is noticed */
	if (vm2) {
		pid_t pid2 = vm2->pid;
		kill(pid2, SIGKILL);
		for (int i = 0; i < 200 && exai__proc_alive(pid2, vm2->pid_start); i++)
			usleep(10000);
		CHECK(exai_vm_state(vm2) == EXAI_VM_FAILED);
		CHECK_RC(sh(vm2, "true", &c, &status), -EBUSY);
		CHECK(strstr(exai_errmsg(), "died") != NULL);
		CHECK_OK(exai_vm_destroy(vm2));
		CHECK(cgroup_gone(vm2));
		exai_vm_free(vm2);
	}

	/* stop: the VMM and its cgroup go, the workspace stays (and can boot again) */
	pid_t pid = vm->pid;
	unsigned long long start = vm->pid_start;
	CHECK_OK(exai_vm_stop(vm));
	CHECK(exai_vm_state(vm) == EXAI_VM_STOPPED);
	CHECK(!exai__proc_alive(pid, start));
	CHECK(cgroup_gone(vm));
	CHECK_RC(exai_vm_stop(vm), -EBUSY);
	CHECK_RC(sh(vm, "true", &c, &status), -EBUSY);

	/* destroy leaves nothing: no process, cgroup or file; and it is idempotent */
	CHECK_OK(exai_vm_destroy(vm));
	CHECK_OK(exai_vm_destroy(vm));
	CHECK(!exai__proc_alive(pid, start));
	CHECK(cgroup_gone(vm));
	snprintf(p, sizeof(p), "%s/vm/itest", dir);
	CHECK(access(p, F_OK) != 0);
	CHECK(access(snap, F_OK) != 0); /* its snapshot went with its key material */
	/* a writable disk, encrypted at rest (LUKS, AES-256-XTS, key through an inherited pipe):
	 * the guest formats and mounts it at /work; its plaintext is nowhere in the host file; it
	 * survives a stop and a second boot (the key derived again); no snapshots with a disk */
	if (!fc && access(EXAI__QEMU_IMG, X_OK) != 0) {
		printf("# no %s (qemu-utils): the encrypted disk is not tested\n", EXAI__QEMU_IMG);
	} else if (!fc) {
		exai_vm *d = NULL;
		EXAI_OPTS(exai_vm_opts, dopts, .image_dir = image, .mem_mib = 256, .disk_mib = 64,
			  .backend = EXAI_VM_BACKEND_QEMU);
		CHECK_OK(exai_vm_create(&d, ctx, "disk1", &dopts));
		if (d) {
			char disk[700];
			snprintf(disk, sizeof(disk), "%s/vm/disk1/run/disk.luks", dir);
			int dfd = open(disk, O_RDONLY);
			char luks[6] = "";
			CHECK(dfd >= 0 && read(dfd, luks, 6) == 6 && memcmp(luks, "LUKS\xba\xbe", 6) == 0);
			if (dfd >= 0)
				close(dfd);
			CHECK_OK(exai_vm_boot(d));
			char cl[4096] = "";
			snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)d->pid);
			int cfd = open(p, O_RDONLY);
			ssize_t cn = cfd >= 0 ? read(cfd, cl, sizeof(cl) - 1) : -1;
			if (cfd >= 0)
				close(cfd);
			for (ssize_t i = 0; i < cn; i++)
				if (!cl[i])
					cl[i] = ' ';
			CHECK(cn > 0 && strstr(cl, "file=/proc/self/fd/3") && !strstr(cl, "data="));
			CHECK_OK(sh(d, "grep -q ' /work ' /proc/mounts && echo EXAI-DISK-MARKER-$((6 * 7))-PLAINTEXT > /work/m && sync && cat /work/m",
				    &c, &status));
			CHECK(status == 0 && c.out.data && strstr(c.out.data, "EXAI-DISK-MARKER-42-PLAINTEXT"));
			snprintf(p, sizeof(p), "grep -rqa EXAI-DISK-MARKER-42-PLAINTEXT %s", dir);
			CHECK(system(p) != 0);
			/* a snapshot with the disk: memory and disk taken together while paused; the
			 * marker (on the disk and in the guest's page cache) is in no file under the
			 * state dir; the restored workspace has its own copy under its own key */
			char dsnap[600];
			snprintf(dsnap, sizeof(dsnap), "%s/disk1.snap", dir);
			double ds0 = now_s();
			CHECK_OK(exai_vm_snapshot(d, dsnap));
			printf("snapshot (256 MiB guest, 64 MiB disk): %.2f s\n", now_s() - ds0);
			CHECK(system(p) != 0);
			exai_vm *d2 = NULL;
			double dr0 = now_s();
			CHECK_OK(exai_vm_restore(&d2, ctx, dsnap, "disk2", NULL));
			printf("restore with a 64 MiB disk to agent ready: %.2f s\n", now_s() - dr0);
			if (d2) {
				CHECK_OK(sh(d2, "cat /work/m && echo EXAI-DISK2-CHANGED > /work/m && sync", &c, &status));
				CHECK(status == 0 && c.out.data && strstr(c.out.data, "EXAI-DISK-MARKER-42-PLAINTEXT"));
				CHECK(d2->spec.disk_generation == d->spec.disk_generation);
				CHECK_OK(sh(d, "cat /work/m", &c, &status)); /* the source's disk is its own */
				CHECK(status == 0 && c.out.data && strstr(c.out.data, "EXAI-DISK-MARKER-42-PLAINTEXT"));
				char disk2[700], cmd2[2048];
				snprintf(disk2, sizeof(disk2), "%s/vm/disk2/run/disk.luks", dir);
				int sfd = exai__vm_disk_secret_fd(d, d->spec.disk_generation);
				CHECK(sfd >= 0);
				if (sfd >= 0) {
					fcntl(sfd, F_SETFD, 0);
					snprintf(cmd2, sizeof(cmd2),
						 EXAI__QEMU_IMG " convert --object secret,id=o,file=/proc/self/fd/%d,format=raw --image-opts "
						 "driver=luks,key-secret=o,file.filename=%s -n -O raw /dev/null 2>&1 | grep -q 'Invalid password'",
						 sfd, disk2);
					CHECK(system(cmd2) == 0); /* the source's key does not open the copy */
					close(sfd);
				}
				CHECK(system(p) != 0);
				CHECK_OK(exai_vm_destroy(d2));
				CHECK(access(disk2, F_OK) != 0 && cgroup_gone(d2));
				exai_vm_free(d2);
			}
			CHECK_OK(exai_vm_stop(d));
			/* the tenant's DEK rotates while it is stopped: the next boot re-keys the disk
			 * (a keyslot for the new key, the old one erased), and its data stays */
			uint32_t old_gen = d->spec.disk_generation;
			exai_keyring *kr = NULL;
			CHECK_OK(exai_keyring_open(&kr, ctx, "default", NULL));
			if (kr)
				CHECK_OK(exai_keyring_rotate(kr));
			exai_keyring_unref(kr);
			CHECK_OK(exai_vm_boot(d));
			CHECK(d->spec.disk_generation == old_gen + 1 && d->spec.disk_old_generation == 0);
			CHECK_OK(sh(d, "cat /work/m", &c, &status));
			CHECK(status == 0 && c.out.data && strstr(c.out.data, "EXAI-DISK-MARKER-42-PLAINTEXT"));
			int ofd = exai__vm_disk_secret_fd(d, old_gen);
			CHECK(ofd >= 0);
			if (ofd >= 0) {
				char cmd[2048];
				fcntl(ofd, F_SETFD, 0);
				snprintf(cmd, sizeof(cmd),
					 EXAI__QEMU_IMG " convert --object secret,id=o,file=/proc/self/fd/%d,format=raw --image-opts "
					 "driver=luks,key-secret=o,file.filename=%s -n -O raw /dev/null 2>&1 | grep -q 'Invalid password'",
					 ofd, disk);
				CHECK(system(cmd) == 0); /* the old generation's key opens it no more */
				close(ofd);
			}
			bool rekeyed = false;
			size_t ei0;
			json_t *ev0;
			json_array_foreach(events, ei0, ev0)
				rekeyed |= !strcmp(json_string_value(json_object_get(ev0, "action")) ?: "", "disk-rekey") &&
					   !strcmp(json_string_value(json_object_get(ev0, "outcome")) ?: "", "success");
			CHECK(rekeyed);
			CHECK_OK(exai_vm_destroy(d));
			CHECK(access(disk, F_OK) != 0);
			exai_vm_free(d);
		}
	}

	/* audit events in OCSF shape: exec is Process Activity (1007) Launch with the exit code;
	 * create is API Activity (6003) Create */
	size_t ei, n_exec = 0, n_create = 0;
	json_t *ev;
	json_array_foreach(events, ei, ev) {
		const char *a = json_string_value(json_object_get(ev, "action"));
		int cls = (int)json_integer_value(json_object_get(ev, "class_uid"));
		int act = (int)json_integer_value(json_object_get(ev, "activity_id"));
		n_exec += a && !strcmp(a, "exec") && cls == 1007 && act == 1 && json_object_get(ev, "exit_code") &&
			  json_object_get(json_object_get(ev, "process"), "name");
		n_create += a && !strcmp(a, "create") && cls == 6003 && act == 1;
	}
	CHECK(n_exec > 5 && n_create >= 2);
	json_decref(events);

	char *names = NULL;
	CHECK_OK(exai_vm_list(&names, ctx));
	CHECK_STREQ(names, "");
	exai_free(names);
	exai_vm_free(vm);
	exai__buf_free(&c.out);
	exai__buf_free(&c.err);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
