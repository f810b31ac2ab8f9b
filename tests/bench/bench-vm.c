/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-vm: workspace costs beside their physical peer, in one run.
 *   - create -> agent ready through libexai (image check, cgroup, confined VMM) versus a bare
 *     qemu-system-x86_64 command line booting the same kernel and initramfs to the same
 *     ready point (the agent's HELLO on the virtio-serial socket); the ratio is the overhead;
 *   - agent round trips in the guest: HEALTH (the protocol alone) and exec of `true`, p50/p90;
 *   - snapshot and restore of a 256 MiB guest.
 * Needs root, QEMU and the guest image. Run: meson test -C build --suite bench bench-vm -v
 * (BENCH_RUNS=N: N interleaved boots of each kind, default 3).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "vm-internal.h"

#define RUNS_MAX 32 /* BENCH_RUNS: boots of each kind (default 3) */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *v, int n, int p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[(n - 1) * p / 100];
}

/* The peer: the same machine, kernel, initramfs and command line, without libexai. */
static double bare_boot(const char *image, const char *dir, const char *cmdline)
{
	char sock[600], kernel[600], initrd[600], chardev[700];
	snprintf(sock, sizeof(sock), "%s/bare-agent.sock", dir);
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", image);
	snprintf(initrd, sizeof(initrd), "%s/initramfs.cpio.gz", image);
	snprintf(chardev, sizeof(chardev), "socket,path=%s,server=on,wait=off,id=agent", sock);
	unlink(sock);
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/bin/qemu-system-x86_64", "qemu-system-x86_64", "-machine",
		      "microvm,pit=on,pic=on,rtc=on,isa-serial=on,acpi=on", "-accel", "tcg", "-cpu", "max", "-m",
		      "256", "-nodefaults", "-no-user-config", "-display", "none", "-kernel", kernel, "-initrd",
		      initrd, "-append", cmdline, "-no-reboot", "-serial", "null", "-device",
		      "virtio-serial-device", "-chardev", chardev, "-device",
		      "virtserialport,chardev=agent,name=exai.agent", (char *)NULL);
		_exit(127);
	}
	struct exai__agent *a = NULL;
	int r = exai__agent_connect_unix(&a, sock, 120000);
	double t = now_ms() - t0;
	exai__agent_free(a);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return r == 0 ? t : -1;
}

/* The protocol's own cost: exai-agent on the host (--listen), no VM. */
static void host_agent(const char *agent_bin, const char *dir)
{
	char sock[600];
	snprintf(sock, sizeof(sock), "%s/host-agent.sock", dir);
	pid_t pid = fork();
	if (pid == 0) {
		execl(agent_bin, agent_bin, "--listen", sock, (char *)NULL);
		_exit(127);
	}
	struct exai__agent *a = NULL;
	if (exai__agent_connect_unix(&a, sock, 10000) == 0) {
		enum { N = 200 };
		double h[N], e[N];
		struct exai__agent_health hh;
		const char *argv[] = { "/bin/true", NULL };
		struct exai__exec_req req = { .argv = argv, .uid = -1, .gid = -1 };
		struct exai__exec_result res;
		for (int i = 0; i < N; i++) {
			double t0 = now_ms();
			CHECK_OK(exai__agent_health(a, &hh, 5000));
			h[i] = now_ms() - t0;
			t0 = now_ms();
			CHECK_OK(exai__agent_exec(a, &req, NULL, &res));
			e[i] = now_ms() - t0;
		}
		printf("host agent over a Unix socket (no VM): HEALTH p50 %.3f ms; exec /bin/true p50 %.3f ms, p90 %.3f ms\n",
		       pct(h, N, 50), pct(e, N, 50), pct(e, N, 90));
		/* the peer: fork+exec+wait of the same program, without the protocol */
		for (int i = 0; i < N; i++) {
			double t0 = now_ms();
			pid_t c = fork();
			if (c == 0) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(127);
			}
			waitpid(c, NULL, 0);
			e[i] = now_ms() - t0;
		}
		printf("peer: fork+exec+wait of /bin/true on the host: p50 %.3f ms\n", pct(e, N, 50));
	}
	exai__agent_free(a);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	if (geteuid() != 0)
		test_skip("needs root");
	const char *build = getenv("EXAI_BUILD_ROOT");
	char image[512], m[600];
	snprintf(image, sizeof(image), "%s/guest", build ? build : ".");
	snprintf(m, sizeof(m), "%s/manifest.json", image);
	if (access(m, R_OK) != 0 || access("/usr/bin/qemu-system-x86_64", X_OK) != 0)
		test_skip("needs QEMU and the guest image in %s", image);
	char *dir = test_tmpdir();
	if (argc > 1)
		host_agent(argv[1], dir);
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, copts, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &copts));
	EXAI_OPTS(exai_vm_opts, o, .image_dir = image, .mem_mib = 256, .backend = EXAI_VM_BACKEND_QEMU);

	int runs = getenv("BENCH_RUNS") ? atoi(getenv("BENCH_RUNS")) : 3;
	if (runs < 1 || runs > RUNS_MAX)
		test_skip("BENCH_RUNS must be 1..%d", RUNS_MAX);
	double lib[RUNS_MAX], bare[RUNS_MAX];
	char cmdline[1024] = "";
	exai_vm *vm = NULL;
	for (int i = 0; i < runs; i++) {
		/* alternate, so that the machine's load hits both alike */
		double t0 = now_ms();
		CHECK_OK(exai_vm_create(&vm, ctx, "bench", &o));
		CHECK_OK(exai_vm_boot(vm));
		lib[i] = now_ms() - t0;
		snprintf(cmdline, sizeof(cmdline), "%s", vm->spec.cmdline);
		CHECK_OK(exai_vm_destroy(vm)); /* no guest of ours runs beside the bare boot */
		exai_vm_free(vm);
		vm = NULL;
		bare[i] = bare_boot(image, dir, cmdline);
	}
	/* the guest for the round trips below (not timed) */
	CHECK_OK(exai_vm_create(&vm, ctx, "bench", &o));
	CHECK_OK(exai_vm_boot(vm));
	double lib_p50 = pct(lib, runs, 50), bare_p50 = pct(bare, runs, 50);
	printf("create->agent ready (TCG, 256 MiB, %d boots each): libexai p50 %.0f ms, bare qemu p50 %.0f ms, ratio %.3f "
	       "(overhead %+.0f ms)\n",
	       runs, lib_p50, bare_p50, lib_p50 / bare_p50, lib_p50 - bare_p50);

	/* round trips in the booted guest */
	enum { N = 50 };
	double h[N], e[N];
	struct exai__agent_health hh;
	CHECK_OK(exai__agent_health(vm->agent, &hh, 5000)); /* connected since boot */
	for (int i = 0; i < N; i++) {
		double t0 = now_ms();
		CHECK_OK(exai__agent_health(vm->agent, &hh, 5000));
		h[i] = now_ms() - t0;
	}
	const char *true_argv[] = { "true", NULL };
	EXAI_OPTS(exai_vm_exec_opts, xo, .argv = true_argv);
	for (int i = 0; i < N; i++) {
		int status;
		double t0 = now_ms();
		CHECK_OK(exai_vm_exec(vm, &xo, &status));
		e[i] = now_ms() - t0;
	}
	printf("agent HEALTH round trip (protocol only): p50 %.2f ms, p90 %.2f ms\n", pct(h, N, 50), pct(h, N, 90));
	printf("exec `true` round trip (fork+exec in a TCG guest): p50 %.2f ms, p90 %.2f ms\n", pct(e, N, 50),
	       pct(e, N, 90));

	char snap[600];
	snprintf(snap, sizeof(snap), "%s/bench.snap", dir);
	double t0 = now_ms();
	CHECK_OK(exai_vm_snapshot(vm, snap));
	double ts = now_ms() - t0;
	struct stat st;
	stat(snap, &st);
	exai_vm *r = NULL;
	t0 = now_ms();
	CHECK_OK(exai_vm_restore(&r, ctx, snap, "bench2", NULL));
	double tr = now_ms() - t0;
	printf("snapshot of a 256 MiB guest: %.0f ms (%.1f MiB file); restore to agent ready: %.0f ms\n", ts,
	       st.st_size / 1048576.0, tr);
	exai_vm_destroy(r);
	exai_vm_free(r);
	exai_vm_destroy(vm);
	exai_vm_free(vm);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
