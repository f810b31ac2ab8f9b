/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-vm-snapshot: encrypted snapshot files and crypto-shredding (lib/vm/snapshot.c,
 * lib/vm/vmkeys.c) without booting a guest. The VMM's side is a stand-in backend whose state
 * stream is a known byte pattern with a plaintext marker in it (only the VMM is stood in for;
 * the keys, the envelope messages and the files are the real ones). Proves: the tenant keyring
 * is created on first use; no plaintext of the stream is in any file under the state dir; two
 * snapshots use two ids and keys; restore gives the stream back byte for byte; a payload or
 * header altered under a recomputed SHA-256 trailer is refused before the VMM reads a byte;
 * destroy's shredding deletes the sealed seed and the recorded snapshot files, with events,
 * idempotently; a copy of a snapshot kept elsewhere can no longer be opened (-ENOKEY).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "test.h"
#include "vm-internal.h"

#define STREAM_LEN (3u << 20)
static const char marker[] = "EXAI-SNAPSHOT-MARKER-PLAINTEXT";
static uint8_t *stream;
static struct exai__buf restored;
static json_t *events;
static size_t restore_reads;

static int capture(void *data, json_t *ev)
{
	(void)data;
	json_array_append(events, ev);
	return 0;
}

static size_t count_action(const char *action)
{
	size_t i, n = 0;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		const char *a = json_string_value(json_object_get(ev, "action"));
		n += a && !strcmp(a, action);
	}
	return n;
}

static int fake_snapshot(struct exai_vm *vm, int fd)
{
	(void)vm;
	int r = exai__write_all(fd, stream, STREAM_LEN);
	return r;
}

static int fake_restore(struct exai_vm *vm, int fd)
{
	(void)vm;
	uint8_t buf[65536];
	ssize_t n;
	restore_reads = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		restore_reads += (size_t)n;
		if (exai__buf_append(&restored, buf, (size_t)n) < 0)
			return -ENOMEM;
	}
	return n < 0 ? -errno : 0;
}

static const struct exai__backend fake = { .name = "qemu", .snapshot = fake_snapshot, .restore = fake_restore };

static bool file_has(const char *path, const void *needle, size_t nlen)
{
	char *text = NULL;
	size_t len = 0;
	if (exai__read_file(path, 64u << 20, &text, &len) < 0)
		return false;
	bool found = memmem(text, len, needle, nlen) != NULL;
	free(text);
	return found;
}

/* Rewrites the SHA-256 trailer so that only the envelope can notice an alteration. */
static void refresh_trailer(const char *path)
{
	char *t = NULL;
	size_t len = 0;
	CHECK_OK(exai__read_file(path, 64u << 20, &t, &len));
	unsigned int dl;
	EVP_Digest(t, len - 48, (uint8_t *)t + len - 40, &dl, EVP_sha256(), NULL);
	int fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && exai__write_all(fd, t, len) == 0);
	close(fd);
	free(t);
}

static int try_restore(exai_ctx *ctx, const char *path, struct exai_vm *target)
{
	struct exai__vm_spec spec = { 0 };
	struct exai__snap_info info;
	uint8_t *key = exai_secure_alloc(32);
	int fd = open(path, O_RDONLY), r = exai__vm_snapshot_check(fd, path, &spec, &info);
	exai__buf_free(&restored);
	if (r == 0)
		r = exai__vm_snapshot_open(ctx, fd, path, spec.tenant, &info, key);
	if (r == 0) {
		snprintf(target->spec.tenant, sizeof(target->spec.tenant), "%s", spec.tenant);
		r = exai__vm_snapshot_feed(target, fd, &info, key);
	}
	close(fd);
	exai_secure_free(key);
	return r;
}

int main(void)
{
	char *dir = test_tmpdir(), p[512], snap1[512], snap2[512], copy[512], cmd[4096];
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, copts, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &copts));
	events = json_array();
	CHECK_OK(exai__ctx_set_emitter(ctx, capture, NULL));

	stream = malloc(STREAM_LEN);
	for (size_t i = 0; i < STREAM_LEN; i++)
		stream[i] = (uint8_t)(i * 7 + (i >> 12));
	for (size_t off = 4096; off + sizeof(marker) < STREAM_LEN; off += 1u << 20)
		memcpy(stream + off, marker, sizeof(marker) - 1);

	struct exai_vm vm = { .ctx = ctx, .be = &fake, .qmp_fd = -1 };
	snprintf(p, sizeof(p), "%s/vm/src", dir);
	vm.dir = p;
	snprintf(vm.spec.name, sizeof(vm.spec.name), "src");
	snprintf(vm.spec.tenant, sizeof(vm.spec.tenant), "acme");
	snprintf(vm.spec.cmdline, sizeof(vm.spec.cmdline), "console=ttyS0");
	vm.spec.vcpus = 1;
	vm.spec.mem_mib = 256;
	CHECK_OK(exai__mkdir_p(p, 0700));

	/* no keyring yet: snapshots refuse; the workspace's key init creates one (file KMS) */
	snprintf(snap1, sizeof(snap1), "%s/one.snap", dir);
	CHECK_RC(exai__vm_snapshot_write(&vm, snap1, true), -ENOENT);
	CHECK(strstr(exai_errmsg(), "keyring") != NULL);
	CHECK_OK(exai__vm_keys_init(&vm));
	char kp[800];
	snprintf(kp, sizeof(kp), "%s/keys/acme/keyring.json", dir);
	CHECK(access(kp, F_OK) == 0);
	snprintf(kp, sizeof(kp), "%s/vm-key.env", p);
	CHECK(access(kp, F_OK) == 0);

	/* two snapshots: each its own id (hence key); no plaintext anywhere under the state dir */
	snprintf(snap2, sizeof(snap2), "%s/two.snap", dir);
	CHECK_OK(exai__vm_snapshot_write(&vm, snap1, true));
	CHECK_OK(exai__vm_snapshot_write(&vm, snap2, false));
	CHECK_RC(exai__vm_snapshot_write(&vm, snap2, false), -EEXIST);
	snprintf(cmd, sizeof(cmd), "grep -rqa %s %s", marker, dir);
	CHECK(system(cmd) != 0);
	CHECK(!file_has(snap1, stream + 100, 64));
	struct exai__vm_spec spec;
	struct exai__snap_info i1, i2;
	int fd = open(snap1, O_RDONLY);
	CHECK_OK(exai__vm_snapshot_check(fd, snap1, &spec, &i1));
	close(fd);
	fd = open(snap2, O_RDONLY);
	CHECK_OK(exai__vm_snapshot_check(fd, snap2, &spec, &i2));
	close(fd);
	CHECK(strcmp(i1.id, i2.id) != 0 && i1.was_running && !i2.was_running && i1.generation == 1);
	CHECK_STREQ(i1.source, "src");
	CHECK_STREQ(spec.tenant, "acme");

	/* restore: the stream comes back whole */
	struct exai_vm target = { .ctx = ctx, .be = &fake, .qmp_fd = -1 };
	CHECK_OK(try_restore(ctx, snap1, &target));
	CHECK(restored.len == STREAM_LEN && memcmp(restored.data, stream, STREAM_LEN) == 0);

	/* altered payload (trailer recomputed): refused, and no byte reaches the VMM */
	snprintf(copy, sizeof(copy), "%s/altered.snap", dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", snap1, copy);
	CHECK(system(cmd) == 0);
	fd = open(copy, O_RDWR);
	uint8_t b;
	CHECK(pread(fd, &b, 1, (off_t)(i1.off + i1.len / 2)) == 1);
	b ^= 1;
	CHECK(pwrite(fd, &b, 1, (off_t)(i1.off + i1.len / 2)) == 1);
	close(fd);
	CHECK_RC(try_restore(ctx, copy, &target), -EBADMSG); /* the SHA-256 trailer */
	refresh_trailer(copy);
	restore_reads = 0;
	CHECK_RC(try_restore(ctx, copy, &target), -EBADMSG); /* the envelope */
	CHECK(strstr(exai_errmsg(), "authenticate") != NULL && restore_reads == 0);
	/* altered header (vcpus 1 -> 2, trailer recomputed): its hash is in the encryption context */
	snprintf(cmd, sizeof(cmd), "cp %s %s && sed -i 's/\"vcpus\":1,/\"vcpus\":2,/' %s && grep -qa '\"vcpus\":2,' %s",
		 snap1, copy, copy, copy);
	CHECK(system(cmd) == 0);
	refresh_trailer(copy);
	CHECK_RC(try_restore(ctx, copy, &target), -EBADMSG);

	/* crypto-shredding: a copy kept outside the workspace's list */
	snprintf(cmd, sizeof(cmd), "cp %s %s", snap2, copy);
	CHECK(system(cmd) == 0);
	CHECK_OK(try_restore(ctx, copy, &target));
	CHECK_OK(exai__vm_keys_shred(&vm));
	CHECK(access(kp, F_OK) != 0 && access(snap1, F_OK) != 0 && access(snap2, F_OK) != 0);
	CHECK(count_action("key-destroy") == 1 && count_action("snapshot-delete") == 2);
	/* OCSF shape: File Activity Delete for files, API Activity Delete for the key */
	size_t ei;
	json_t *ev;
	json_array_foreach(events, ei, ev) {
		const char *a = json_string_value(json_object_get(ev, "action"));
		int cls = (int)json_integer_value(json_object_get(ev, "class_uid"));
		int act = (int)json_integer_value(json_object_get(ev, "activity_id"));
		if (a && !strcmp(a, "snapshot-delete"))
			CHECK(cls == 1001 && act == 4 && json_integer_value(json_object_get(ev, "type_uid")) == 100104 &&
			      json_string_value(json_object_get(json_object_get(ev, "file"), "path")));
		if (a && !strcmp(a, "key-destroy"))
			CHECK(cls == 6003 && act == 4 && !strcmp(json_string_value(json_object_get(ev, "workspace")), "src"));
	}
	CHECK_OK(exai__vm_keys_shred(&vm)); /* idempotent */
	CHECK(count_action("key-destroy") == 1);
	CHECK_RC(try_restore(ctx, copy, &target), -ENOKEY);
	CHECK(strstr(exai_errmsg(), "shredded") != NULL);

	exai__buf_free(&restored);
	json_decref(events);
	free(stream);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
