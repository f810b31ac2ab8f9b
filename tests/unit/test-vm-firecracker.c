/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-vm-firecracker: the Firecracker backend's API client (lib/vm/firecracker.c) against a
 * fake API server (fake-firecracker.py) that validates every request against
 * ../shared/specs/firecracker/firecracker-v1.16.1.yaml. Covers the configuration before
 * InstanceStart (drives and network interfaces included), pause/resume, the shutdown action, snapshot create (streamed out) and load
 * (streamed in), and that a request the spec forbids is refused with the API's fault message.
 * argv[1]: the fake server script.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exai-config.h"
#include "test.h"
#include "vm-internal.h"

int main(int argc, char **argv)
{
	if (argc < 2)
		test_skip("usage: test-vm-firecracker FAKE_SERVER_SCRIPT");
	if (system("python3 -c 'import yaml' 2>/dev/null") != 0)
		test_skip("python3-yaml is not installed (Debian package python3-yaml)");
	const char *spec = test_shared("specs/firecracker/firecracker-v1.16.1.yaml");
	if (access(spec, R_OK) != 0)
		test_skip("the Firecracker spec %s is missing", spec);

	char *dir = test_tmpdir(), run[512], sock[600], logp[600];
	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(sock, sizeof(sock), "%s/fc.sock", run);
	snprintf(logp, sizeof(logp), "%s/requests.jsonl", dir);
	mkdir(run, 0700);
	pid_t srv = fork();
	if (srv == 0) {
		execlp("python3", "python3", argv[1], "--spec", spec, "--socket", sock, "--log", logp,
		       "--run-dir", run, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10000);

	struct exai_vm vm = { .run_dir = run, .qmp_fd = -1 };
	snprintf(vm.spec.name, sizeof(vm.spec.name), "fc1");
	vm.spec.vcpus = 2;
	vm.spec.mem_mib = 256;
	vm.spec.uid = getuid();
	snprintf(vm.spec.cmdline, sizeof(vm.spec.cmdline), "console=ttyS0 quiet panic=-1");
	const struct exai__backend *be = &exai__backend_firecracker;

	/* a disk: encrypted with dm-crypt where the host has it; elsewhere (as on a kernel without
	 * device-mapper) refused with a sentence naming what is missing, unless the operator allows
	 * a plaintext one */
	vm.spec.disk_mib = 64;
	if (exai__dm_supported() == 0) {
		CHECK_OK(exai__fc_disk_check(&vm, false));
		CHECK(!vm.spec.disk_plain);
	} else {
		CHECK_RC(exai__fc_disk_check(&vm, false), -ENOTSUP);
		printf("no dm-crypt here: %s\n", exai_errmsg());
		CHECK(strstr(exai_errmsg(), "allow_unencrypted_disk") != NULL && !vm.spec.disk_plain);
		CHECK(strstr(exai_errmsg(), EXAI_HAVE_CRYPTSETUP ? "device-mapper" : "libcryptsetup") != NULL);
		if (access("/dev/mapper/control", F_OK) == 0 && EXAI_HAVE_CRYPTSETUP) /* a node, but no driver */
			CHECK(strstr(exai_errmsg(), "/dev/mapper/control") != NULL);
		CHECK_OK(exai__fc_disk_check(&vm, true));
		CHECK(vm.spec.disk_plain);
	}
	CHECK_OK(exai__fc_configure(&vm));
	CHECK_OK(exai__fc_add_drive(&vm, "base", "/image/base.ext4", true, false));
	CHECK_OK(exai__fc_add_drive(&vm, "work", "/vm/work.img", false, false));
	CHECK_OK(exai__fc_add_net(&vm, "eth0", "exai-t0", "06:00:ac:10:00:02"));
	CHECK_OK(exai__fc_call(sock, "PUT", "/actions", json_pack("{s:s}", "action_type", "InstanceStart"), NULL));
	CHECK_OK(be->pause(&vm));
	CHECK_OK(be->resume(&vm));

	/* snapshot: the two files Firecracker writes are streamed into the fd and removed */
	char stream[600];
	snprintf(stream, sizeof(stream), "%s/stream", dir);
	int fd = open(stream, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_OK(be->pause(&vm));
	CHECK_OK(be->snapshot(&vm, fd));
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == 8 + 1200 + 8 + (1 << 20));
	char p[700];
	snprintf(p, sizeof(p), "%s/snap.mem", run);
	CHECK(access(p, F_OK) != 0);
	/* load: the stream becomes the two files again, then /snapshot/load, whose network device
	 * is pointed at this workspace's tap (network_overrides) */
	lseek(fd, 0, SEEK_SET);
	vm.spec.net.on = true;
	snprintf(vm.spec.net.tap, sizeof(vm.spec.net.tap), "exai0badcafe");
	CHECK_OK(be->restore(&vm, fd));
	vm.spec.net.on = false;
	close(fd);
	CHECK(access(p, F_OK) != 0);
	CHECK_OK(be->quit(&vm));

	/* the fake refuses what the spec forbids, and the backend reports its fault message */
	CHECK_RC(exai__fc_call(sock, "PUT", "/machine-config", json_pack("{s:i}", "vcpu_count", 2), NULL), -EINVAL);
	CHECK(strstr(exai_errmsg(), "mem_size_mib") != NULL);
	CHECK_RC(exai__fc_call(sock, "PUT", "/machine-config",
			       json_pack("{s:s, s:i}", "vcpu_count", "two", "mem_size_mib", 256), NULL),
		 -EINVAL);
	CHECK_RC(exai__fc_call(sock, "PATCH", "/vm", json_pack("{s:s}", "state", "Frozen"), NULL), -EINVAL);
	CHECK_RC(exai__fc_call(sock, "PUT", "/no-such-endpoint", NULL, NULL), -EINVAL);
	CHECK_RC(exai__fc_call(sock, "PUT", "/drives/a",
			       json_pack("{s:s, s:b}", "drive_id", "b", "is_root_device", 0), NULL),
		 -EINVAL);
	char *body = NULL;
	CHECK_OK(exai__fc_call(sock, "GET", "/", NULL, &body));
	CHECK(body && strstr(body, "\"state\"") != NULL);
	free(body);

	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);

	/* every request the backend sent validated; the four bad ones did not */
	size_t len;
	char *log = test_read_file(logp, &len);
	const char *want[] = { "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source",
			       "PUT /vsock", "PUT /drives/base", "PUT /drives/work",
			       "PUT /network-interfaces/eth0", "PUT /actions", "PATCH /vm", "PATCH /vm", "PATCH /vm",
			       "PUT /snapshot/create", "PUT /snapshot/load", "PUT /actions" };
	size_t i = 0, bad = 0;
	for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"), i++) {
		json_t *j = json_loads(line, 0, NULL);
		char mp[128];
		snprintf(mp, sizeof(mp), "%s %s", json_string_value(json_object_get(j, "method")),
			 json_string_value(json_object_get(j, "path")));
		size_t nerr = json_array_size(json_object_get(j, "errors"));
		if (i < EXAI__ARRAY_SIZE(want)) {
			CHECK_STREQ(mp, want[i]);
			if (!strcmp(mp, "PUT /snapshot/load"))
				CHECK(strstr(line, "\"network_overrides\"") && strstr(line, "exai0badcafe"));
			if (nerr)
				fprintf(stderr, "request %zu (%s) failed validation: %s\n", i, mp, line);
			CHECK(nerr == 0);
		} else {
			bad += nerr > 0;
		}
		json_decref(j);
	}
	CHECK(i == EXAI__ARRAY_SIZE(want) + 6);
	CHECK(bad == 5);
	free(log);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
