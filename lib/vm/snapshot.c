/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c: snapshot files (docs/formats/snapshot.md).
 *
 *   "EXAISNAP" | version u32 BE (1) | header length u32 BE | header (RFC 8785 JSON)
 *   | payload (the VMM's state stream) | payload length u64 BE | SHA-256 (32) | "EXAIEND1"
 *
 * The SHA-256 covers everything before the trailer; restore checks it (and the header) in
 * full before the VMM reads a byte. It detects corruption and truncation, not a forger who
 * rewrites the file: authenticity and confidentiality come from the keys module, whose
 * envelope format (AES-256-GCM, per-snapshot data key) will wrap the payload in place of the
 * plain copy in seal_copy()/open_copy() below.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vm-internal.h"

#define MAGIC "EXAISNAP"
#define END_MAGIC "EXAIEND1"
#define TRAILER_LEN (8 + 32 + 8)
#define HEADER_MAX (64u << 10)

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

struct pump {
	int in, out;
	uint64_t limit; /* bytes to move; UINT64_MAX: until EOF */
	uint64_t done;
	EVP_MD_CTX *md; /* hashes what passes, when set */
	int err;
};

/* Moves bytes from in to out (the plain copy: where the envelope encryption goes). */
static void *pump_run(void *arg)
{
	struct pump *p = arg;
	static __thread uint8_t buf[1 << 16];
	while (p->done < p->limit) {
		size_t want = p->limit - p->done < sizeof(buf) ? (size_t)(p->limit - p->done) : sizeof(buf);
		ssize_t n = read(p->in, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			p->err = exai__neg_errno();
			break;
		}
		if (n == 0) {
			if (p->limit != UINT64_MAX)
				p->err = -EIO;
			break;
		}
		if (p->md)
			EVP_DigestUpdate(p->md, buf, (size_t)n);
		int r = exai__write_all(p->out, buf, (size_t)n);
		if (r < 0) {
			/* EPIPE: the VMM stopped reading; its own error says why. */
			p->err = r;
			break;
		}
		p->done += (uint64_t)n;
	}
	return NULL;
}

static int header_json(struct exai_vm *vm, bool was_running, char **ret, size_t *len)
{
	json_t *h = json_pack("{s:i, s:s, s:s, s:s, s:s, s:b, s:i, s:i, s:s, s:b}", "version", 1, "image_dir",
			      vm->spec.image_dir, "backend",
			      vm->be->name, "source", vm->spec.name, "tenant", vm->spec.tenant, "kvm",
			      vm->spec.kvm, "vcpus", (int)vm->spec.vcpus, "mem_mib", (int)vm->spec.mem_mib,
			      "cmdline", vm->spec.cmdline, "was_running", was_running);
	if (!h)
		return exai__err(-ENOMEM, "out of memory");
	int r = exai__jcs_dump(h, ret, len);
	json_decref(h);
	return r < 0 ? exai__err(r, "cannot encode the snapshot header") : 0;
}

int exai__vm_snapshot_write(struct exai_vm *vm, const char *path, bool was_running)
{
	char tmp[PATH_MAX], *hdr = NULL;
	size_t hlen;
	uint8_t pre[16], trailer[TRAILER_LEN];
	int fd = -1, p[2] = { -1, -1 }, r;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.partial", path) >= sizeof(tmp))
		r = exai__err(-ENAMETOOLONG, "snapshot path too long");
	else if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		r = exai__err(-ENOMEM, "OpenSSL SHA-256 is unavailable");
	else if (access(path, F_OK) == 0)
		r = exai__err(-EEXIST, "snapshot %s exists already", path);
	else
		r = header_json(vm, was_running, &hdr, &hlen);
	if (r < 0)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = exai__err_sys(exai__neg_errno(), "cannot create %s", tmp);
		goto out;
	}
	memcpy(pre, MAGIC, 8);
	put_be(pre + 8, 1, 4);
	put_be(pre + 12, hlen, 4);
	EVP_DigestUpdate(md, pre, sizeof(pre));
	EVP_DigestUpdate(md, hdr, hlen);
	if ((r = exai__write_all(fd, pre, sizeof(pre))) < 0 || (r = exai__write_all(fd, hdr, hlen)) < 0) {
		r = exai__err_sys(r, "write %s", tmp);
		goto out;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = exai__err_sys(exai__neg_errno(), "pipe");
		goto out;
	}
	struct pump pu = { .in = p[0], .out = fd, .limit = UINT64_MAX, .md = md };
	pthread_t th;
	if ((r = -pthread_create(&th, NULL, pump_run, &pu)) < 0) {
		r = exai__err(r, "cannot start the snapshot writer thread");
		goto out;
	}
	r = vm->be->snapshot(vm, p[1]);
	close(p[1]); /* the VMM closes its copy when the migration ends: EOF for the thread */
	p[1] = -1;
	if (r < 0) {
		close(p[0]); /* unblocks nothing by itself: the VMM's copy went with its failure */
		p[0] = -1;
	}
	pthread_join(th, NULL);
	if (r < 0)
		goto out;
	if (pu.err < 0) {
		r = exai__err_sys(pu.err, "writing snapshot %s", tmp);
		goto out;
	}
	unsigned int dl;
	put_be(trailer, pu.done, 8);
	EVP_DigestFinal_ex(md, trailer + 8, &dl);
	memcpy(trailer + 40, END_MAGIC, 8);
	if ((r = exai__write_all(fd, trailer, sizeof(trailer))) < 0 || fsync(fd) < 0) {
		r = exai__err_sys(r < 0 ? r : exai__neg_errno(), "write %s", tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		r = exai__err_sys(exai__neg_errno(), "rename %s to %s", tmp, path);
		goto out;
	}
	r = exai__fsync_parent(path);
	exai__log_info(vm->ctx, "vm", "%s: snapshot %s: %llu bytes of VMM state", vm->spec.name, path,
		       (unsigned long long)pu.done);
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (fd >= 0) {
		close(fd);
		if (r < 0)
			unlink(tmp);
	}
	EVP_MD_CTX_free(md);
	free(hdr);
	return r;
}

static int read_at(int fd, void *buf, size_t n, uint64_t off, const char *path)
{
	ssize_t got = pread(fd, buf, n, (off_t)off);
	if (got != (ssize_t)n)
		return exai__err(got < 0 ? exai__neg_errno() : -EBADMSG, "snapshot %s is truncated", path);
	return 0;
}

int exai__vm_snapshot_check(int fd, const char *path, struct exai__vm_spec *spec, bool *was_running,
			    uint64_t *ret_off, uint64_t *ret_len)
{
	struct stat st;
	uint8_t pre[16], trailer[TRAILER_LEN];
	int r;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return exai__err(-EINVAL, "snapshot %s is not a regular file", path);
	uint64_t size = (uint64_t)st.st_size;
	if (size < sizeof(pre) + TRAILER_LEN || (r = read_at(fd, pre, sizeof(pre), 0, path)) < 0 ||
	    memcmp(pre, MAGIC, 8) != 0)
		return exai__err(-EBADMSG, "%s is not a libexai snapshot", path);
	if (get_be(pre + 8, 4) != 1)
		return exai__err(-EBADMSG, "snapshot %s has version %llu; this libexai reads version 1",
				 path, (unsigned long long)get_be(pre + 8, 4));
	uint64_t hlen = get_be(pre + 12, 4);
	if (hlen > HEADER_MAX || hlen > size - sizeof(pre) - TRAILER_LEN)
		return exai__err(-EBADMSG, "snapshot %s: header length out of range", path);
	if ((r = read_at(fd, trailer, sizeof(trailer), size - TRAILER_LEN, path)) < 0)
		return r;
	uint64_t off = sizeof(pre) + hlen, len = get_be(trailer, 8);
	if (memcmp(trailer + 40, END_MAGIC, 8) != 0 || len != size - off - TRAILER_LEN)
		return exai__err(-EBADMSG, "snapshot %s is truncated or was not finished", path);

	/* The whole file's digest before anything else is believed. */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t buf[1 << 16], sum[32];
	unsigned int dl;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		return exai__err(-ENOMEM, "OpenSSL SHA-256 is unavailable");
	}
	for (uint64_t pos = 0, end = size - TRAILER_LEN; pos < end;) {
		size_t n = end - pos < sizeof(buf) ? (size_t)(end - pos) : sizeof(buf);
		if ((r = read_at(fd, buf, n, pos, path)) < 0) {
			EVP_MD_CTX_free(md);
			return r;
		}
		EVP_DigestUpdate(md, buf, n);
		pos += n;
	}
	EVP_DigestFinal_ex(md, sum, &dl);
	EVP_MD_CTX_free(md);
	if (exai_memeq_ct(sum, trailer + 8, 32) != 0)
		return exai__err(-EBADMSG, "snapshot %s fails its SHA-256 check (corrupted)", path);

	char *hdr = malloc(hlen + 1);
	json_t *h = NULL;
	if (!hdr)
		return exai__err(-ENOMEM, "out of memory");
	r = read_at(fd, hdr, hlen, sizeof(pre), path);
	if (r == 0 && (exai__json_parse(&h, hdr, hlen) < 0 || !json_is_object(h)))
		r = exai__err(-EBADMSG, "snapshot %s: the header is not a JSON object", path);
	free(hdr);
	if (r < 0)
		return r;
	const char *backend = json_string_value(json_object_get(h, "backend"));
	const char *cmdline = json_string_value(json_object_get(h, "cmdline"));
	const char *tenant = json_string_value(json_object_get(h, "tenant"));
	const char *image = json_string_value(json_object_get(h, "image_dir"));
	double vcpus = json_number_value(json_object_get(h, "vcpus"));
	double mem = json_number_value(json_object_get(h, "mem_mib"));
	if (!backend || !cmdline || !tenant || vcpus < 1 || vcpus > 32 || mem < 64 || mem > 65536 ||
	    strlen(cmdline) >= sizeof(spec->cmdline) || strlen(tenant) >= sizeof(spec->tenant) ||
	    (strcmp(backend, "qemu") != 0 && strcmp(backend, "firecracker") != 0)) {
		json_decref(h);
		return exai__err(-EBADMSG, "snapshot %s: the header lacks or has bad backend, tenant, vcpus, mem_mib or cmdline",
				 path);
	}
	spec->backend = !strcmp(backend, "qemu") ? EXAI_VM_BACKEND_QEMU : EXAI_VM_BACKEND_FIRECRACKER;
	spec->kvm = json_is_true(json_object_get(h, "kvm"));
	spec->vcpus = (uint32_t)vcpus;
	spec->mem_mib = (uint32_t)mem;
	snprintf(spec->cmdline, sizeof(spec->cmdline), "%s", cmdline);
	snprintf(spec->tenant, sizeof(spec->tenant), "%s", tenant);
	snprintf(spec->image_dir, sizeof(spec->image_dir), "%s", image && image[0] == '/' ? image : "");
	*was_running = json_is_true(json_object_get(h, "was_running"));
	json_decref(h);
	*ret_off = off;
	*ret_len = len;
	return 0;
}

int exai__vm_snapshot_feed(struct exai_vm *vm, int fd, uint64_t off, uint64_t len)
{
	int p[2];
	if (lseek(fd, (off_t)off, SEEK_SET) < 0)
		return exai__err_sys(exai__neg_errno(), "seek in the snapshot");
	if (pipe2(p, O_CLOEXEC) < 0)
		return exai__err_sys(exai__neg_errno(), "pipe");
	struct pump pu = { .in = fd, .out = p[1], .limit = len };
	pthread_t th;
	int r = -pthread_create(&th, NULL, pump_run, &pu);
	if (r < 0) {
		close(p[0]);
		close(p[1]);
		return exai__err(r, "cannot start the snapshot reader thread");
	}
	r = vm->be->restore(vm, p[0]);
	close(p[0]); /* a writer blocked on a VMM that failed gets EPIPE */
	pthread_join(th, NULL);
	close(p[1]);
	if (r == 0 && pu.err < 0)
		r = exai__err_sys(pu.err, "feeding the snapshot to the VMM");
	return r;
}
