/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c: snapshot files (docs/formats/snapshot.md).
 *
 *   "EXAISNAP" | version u32 BE (2, or 3 with a disk) | header length u32 BE | header (RFC 8785
 *   JSON) | payload | payload length u64 BE | SHA-256 (32) | "EXAIEND1"
 *
 * Version 3 (a workspace with a disk): payload = the state message | the disk message (the
 * per-VM disk file, still LUKS-encrypted under the source's disk key, sealed again under the
 * snapshot's key) | the disk message's length u64 BE. The disk is copied while the VM is
 * paused, after the VMM flushed it: consistent with the memory.
 *
 * The payload is an envelope message (keys module: AWS Encryption SDK format, AES-256-GCM)
 * of the VMM's state stream, under a key used for this snapshot alone (vmkeys.c), with the
 * header's SHA-256 in its encryption context. The SHA-256 trailer finds corruption and
 * truncation cheaply; the envelope authenticates. Restore authenticates the whole message
 * (decrypting into nothing) before a VMM starts, then decrypts it again, frame by
 * authenticated frame, into the pipe the VMM reads: guest memory never lies in plaintext in a
 * file, and the VMM only ever reads a prefix of a message that authenticated as a whole.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "vm-internal.h"
#include "keys/keys-internal.h"

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
	int in;
	exai_envelope *env; /* what the bytes read go to */
	uint64_t done;
	int err;
};

/* Moves the VMM's state stream from the pipe into the envelope encryption, until EOF. */
static void *pump_run(void *arg)
{
	struct pump *p = arg;
	static __thread uint8_t buf[1 << 16];
	for (;;) {
		ssize_t n = read(p->in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			p->err = n < 0 ? exai__neg_errno() : 0;
			break;
		}
		if ((p->err = exai_envelope_update(p->env, buf, (size_t)n)) < 0)
			break;
		p->done += (uint64_t)n;
	}
	return NULL;
}

static int header_json(struct exai_vm *vm, bool was_running, const char *id, uint32_t generation, char **ret,
		       size_t *len)
{
	json_t *disk = NULL;
	if (vm->spec.disk_mib && !(disk = json_pack("{s:I, s:I, s:b}", "mib", (json_int_t)vm->spec.disk_mib, "generation",
						    (json_int_t)vm->spec.disk_generation, "plain", vm->spec.disk_plain)))
		return exai__err(-ENOMEM, "out of memory");
	json_t *h = json_pack("{s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:b, s:i, s:i, s:s, s:b}", "version", disk ? 3 : 2,
			      "snapshot_id", id, "generation", (int)generation, "image_dir",
			      vm->spec.image_dir, "backend",
			      vm->be->name, "source", vm->spec.name, "tenant", vm->spec.tenant, "kvm",
			      vm->spec.kvm, "vcpus", (int)vm->spec.vcpus, "mem_mib", (int)vm->spec.mem_mib,
			      "cmdline", vm->spec.cmdline, "was_running", was_running);
	if (h && disk)
		json_object_set_new(h, "disk", disk);
	else
		json_decref(disk);
	if (!h)
		return exai__err(-ENOMEM, "out of memory");
	int r = exai__jcs_dump(h, ret, len);
	json_decref(h);
	return r < 0 ? exai__err(r, "cannot encode the snapshot header") : 0;
}

/* Where the envelope's output goes: the file, and the running SHA-256. */
struct sealed_out {
	int fd;
	EVP_MD_CTX *md;
	uint64_t len;
};

static int sealed_write(void *ud, const void *p, size_t n)
{
	struct sealed_out *o = ud;
	EVP_DigestUpdate(o->md, p, n);
	o->len += n;
	return exai__write_all(o->fd, p, n);
}

/* The key name of a snapshot's wrapping key and the encryption context binding its header. */
static void snap_names(char *keyname, size_t klen, char *hsum, const char *tenant, const char *vm, const char *id,
		       uint32_t gen, const char *hdr, size_t hlen)
{
	uint8_t d[32];
	unsigned int dl;
	snprintf(keyname, klen, "%s/%s/%s/%u", tenant, vm, id, gen);
	EVP_Digest(hdr, hlen, d, &dl, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(hsum + 2 * i, "%02x", d[i]);
}

#define SNAP_NS "exai-vm-snapshot"
#define PURPOSE_STATE "vm-snapshot"
#define PURPOSE_DISK "vm-snapshot-disk"

/* The disk file of the workspace: LUKS, or plaintext where the operator allowed it. */
static char *disk_path(const struct exai_vm *vm)
{
	return exai__vm_run_path(vm, vm->spec.disk_plain ? "disk.img" : "disk.luks");
}

/* Seals the paused VM's disk file as the snapshot's second message, then its length. */
static int seal_disk(struct exai_vm *vm, struct sealed_out *so, const uint8_t *key, const char *keyname,
		     const char *const *pairs)
{
	exai_envelope *env = NULL;
	char *path = disk_path(vm);
	int in = -1, r = exai__vm_dm_flush(vm); /* Firecracker: dm-crypt's queue reaches the file */
	if (r == 0 && (!path || (in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0))
		r = exai__err_sys(path ? exai__neg_errno() : -ENOMEM, "cannot read the disk %s", path ? path : "");
	uint64_t start = so->len;
	EXAI_OPTS(exai_envelope_opts, eo, .write = sealed_write, .write_data = so, .context = pairs,
		  .frame_length = 1u << 20);
	if (r == 0)
		r = exai_envelope_encrypt_raw(&env, key, SNAP_NS, keyname, &eo);
	static __thread uint8_t buf[1 << 16];
	ssize_t n = 0;
	while (r == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		r = exai_envelope_update(env, buf, (size_t)n);
	if (r == 0 && n < 0)
		r = exai__err_sys(exai__neg_errno(), "read %s", path);
	if (r == 0)
		r = exai_envelope_final(env);
	if (r == 0) {
		uint8_t len[8];
		put_be(len, so->len - start, 8);
		r = sealed_write(so, len, 8);
	}
	if (in >= 0)
		close(in);
	exai_envelope_free(env);
	free(path);
	return r;
}

int exai__vm_snapshot_write(struct exai_vm *vm, const char *path, bool was_running)
{
	char tmp[PATH_MAX], *hdr = NULL, id[33], keyname[256], hsum[65];
	size_t hlen;
	uint8_t pre[16], trailer[TRAILER_LEN], rnd[16];
	int fd = -1, p[2] = { -1, -1 }, r;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	exai_envelope *env = NULL;
	exai_keyring *kr = NULL;
	uint8_t *key = exai_secure_alloc(32);
	uint32_t gen = 0;

	randombytes_buf(rnd, sizeof(rnd)); /* a fresh id, hence a fresh key, for every snapshot */
	for (int i = 0; i < 16; i++)
		sprintf(id + 2 * i, "%02x", rnd[i]);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.partial", path) >= sizeof(tmp))
		r = exai__err(-ENAMETOOLONG, "snapshot path too long");
	else if (!md || !key || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		r = exai__err(-ENOMEM, "out of memory (or OpenSSL SHA-256 is unavailable)");
	else if (access(path, F_OK) == 0)
		r = exai__err(-EEXIST, "snapshot %s exists already", path);
	else
		r = exai__vm_keyring(vm->ctx, vm->spec.tenant, false, &kr);
	if (r == 0) {
		gen = exai_keyring_generation(kr);
		r = exai__vm_snapshot_key(key, vm->ctx, vm->spec.tenant, vm->spec.name, gen, id);
	}
	if (r == 0)
		r = header_json(vm, was_running, id, gen, &hdr, &hlen);
	if (r < 0)
		goto out;
	snap_names(keyname, sizeof(keyname), hsum, vm->spec.tenant, vm->spec.name, id, gen, hdr, hlen);
	/* recorded before it exists, so that a destroy finds even a half-written one */
	if ((r = exai__vm_snapshot_record(vm, path)) < 0)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = exai__err_sys(exai__neg_errno(), "cannot create %s", tmp);
		goto out;
	}
	memcpy(pre, MAGIC, 8);
	put_be(pre + 8, vm->spec.disk_mib ? 3 : 2, 4);
	put_be(pre + 12, hlen, 4);
	EVP_DigestUpdate(md, pre, sizeof(pre));
	EVP_DigestUpdate(md, hdr, hlen);
	if ((r = exai__write_all(fd, pre, sizeof(pre))) < 0 || (r = exai__write_all(fd, hdr, hlen)) < 0) {
		r = exai__err_sys(r, "write %s", tmp);
		goto out;
	}
	struct sealed_out so = { .fd = fd, .md = md };
	const char *const pairs[] = { "tenant", vm->spec.tenant, "purpose", PURPOSE_STATE, "object", id,
				      "header-sha256", hsum, NULL };
	const char *const disk_pairs[] = { "tenant", vm->spec.tenant, "purpose", PURPOSE_DISK, "object", id,
					   "header-sha256", hsum, NULL };
	EXAI_OPTS(exai_envelope_opts, eo, .write = sealed_write, .write_data = &so, .context = pairs,
		  .frame_length = 1u << 20);
	if ((r = exai_envelope_encrypt_raw(&env, key, SNAP_NS, keyname, &eo)) < 0)
		goto out;
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = exai__err_sys(exai__neg_errno(), "pipe");
		goto out;
	}
	struct pump pu = { .in = p[0], .env = env };
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
	if (pu.err < 0 || (r = exai_envelope_final(env)) < 0) {
		r = exai__err_sys(pu.err < 0 ? pu.err : r, "writing snapshot %s", tmp);
		goto out;
	}
	if (vm->spec.disk_mib && (r = seal_disk(vm, &so, key, keyname, disk_pairs)) < 0) {
		r = exai__err_sys(r, "writing the disk into snapshot %s", tmp);
		goto out;
	}
	unsigned int dl;
	put_be(trailer, so.len, 8);
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
	exai__log_info(vm->ctx, "vm", "%s: snapshot %s (id %s, DEK generation %u): %llu bytes of VMM state, %llu encrypted",
		       vm->spec.name, path, id, gen, (unsigned long long)pu.done, (unsigned long long)so.len);
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
	exai_envelope_free(env);
	exai_keyring_unref(kr);
	exai_secure_free(key);
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

static const char *tenant_of(json_t *h)
{
	const char *t = json_string_value(json_object_get(h, "tenant"));
	return t ? t : "";
}

int exai__vm_snapshot_check(int fd, const char *path, struct exai__vm_spec *spec, struct exai__snap_info *info)
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
	uint64_t version = get_be(pre + 8, 4);
	if (version != 2 && version != 3)
		return exai__err(-EBADMSG, "snapshot %s has version %llu; this libexai reads versions 2 and 3 (encrypted)",
				 path, (unsigned long long)version);
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
	const char *sid = json_string_value(json_object_get(h, "snapshot_id"));
	const char *src = json_string_value(json_object_get(h, "source"));
	double gen = json_number_value(json_object_get(h, "generation"));
	if (r == 0 && (!sid || strlen(sid) != 32 || strspn(sid, "0123456789abcdef") != 32 || !src ||
		       strlen(src) >= sizeof(info->source) || gen < 1 || gen > UINT32_MAX))
		r = exai__err(-EBADMSG, "snapshot %s: the header lacks or has a bad snapshot_id, source or generation", path);
	if (r == 0) {
		memcpy(info->id, sid, 33);
		snprintf(info->source, sizeof(info->source), "%s", src);
		info->generation = (uint32_t)gen;
		snap_names(info->key_name, sizeof(info->key_name), info->header_sha256, tenant_of(h),
			   src, sid, info->generation, hdr, hlen);
	}
	free(hdr);
	if (r < 0) {
		json_decref(h);
		return r;
	}
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
	/* version 3: the disk's message follows the state's, its length last in the payload */
	json_t *disk = json_object_get(h, "disk");
	double dmib = json_number_value(json_object_get(disk, "mib"));
	double dgen = json_number_value(json_object_get(disk, "generation"));
	bool dplain = json_is_true(json_object_get(disk, "plain"));
	uint64_t dlen = 0;
	uint8_t dl8[8];
	if ((version == 3) != (disk != NULL) ||
	    (disk && (dmib < 1 || dmib > 1048576 || dgen > UINT32_MAX || (!dplain && dgen < 1))) ||
	    (disk && (len < 8 || read_at(fd, dl8, 8, off + len - 8, path) < 0 ||
		      (dlen = get_be(dl8, 8)) > len - 8))) {
		json_decref(h);
		return exai__err(-EBADMSG, "snapshot %s: version %llu with a bad or missing disk section", path,
				 (unsigned long long)version);
	}
	spec->disk_mib = disk ? (uint32_t)dmib : 0;
	spec->disk_plain = dplain;
	info->disk_generation = (uint32_t)dgen;
	info->disk_len = dlen;
	info->disk_off = disk ? off + len - 8 - dlen : 0;
	if (disk)
		len -= 8 + dlen;
	spec->backend = !strcmp(backend, "qemu") ? EXAI_VM_BACKEND_QEMU : EXAI_VM_BACKEND_FIRECRACKER;
	spec->kvm = json_is_true(json_object_get(h, "kvm"));
	spec->vcpus = (uint32_t)vcpus;
	spec->mem_mib = (uint32_t)mem;
	snprintf(spec->cmdline, sizeof(spec->cmdline), "%s", cmdline);
	snprintf(spec->tenant, sizeof(spec->tenant), "%s", tenant);
	snprintf(spec->image_dir, sizeof(spec->image_dir), "%s", image && image[0] == '/' ? image : "");
	info->was_running = json_is_true(json_object_get(h, "was_running"));
	json_decref(h);
	info->off = off;
	info->len = len;
	return 0;
}

struct unsealed_out {
	int fd; /* -1: nowhere (authentication pass) */
};

static int unsealed_write(void *ud, const void *p, size_t n)
{
	struct unsealed_out *o = ud;
	return o->fd < 0 ? 0 : exai__write_all(o->fd, p, n);
}

/* Decrypts a checked message of @fd (the state's, or with @disk the disk's) into @out (-1:
 * nowhere). */
static int unseal(const struct exai__snap_info *info, bool disk, const char *tenant, const uint8_t *key, int fd,
		  int out)
{
	exai_envelope *env = NULL;
	struct unsealed_out uo = { .fd = out };
	uint64_t off = disk ? info->disk_off : info->off, len = disk ? info->disk_len : info->len;
	const char *const pairs[] = { "tenant", tenant, "purpose", disk ? PURPOSE_DISK : PURPOSE_STATE, "object",
				      info->id, "header-sha256", info->header_sha256, NULL };
	EXAI_OPTS(exai_envelope_opts, eo, .write = unsealed_write, .write_data = &uo, .context = pairs,
		  .max_frame_length = 1u << 20);
	int r = exai_envelope_decrypt_raw(&env, key, SNAP_NS, info->key_name, &eo);
	static __thread uint8_t buf[1 << 16];
	for (uint64_t pos = 0; r == 0 && pos < len;) {
		size_t n = len - pos < sizeof(buf) ? (size_t)(len - pos) : sizeof(buf);
		ssize_t got = pread(fd, buf, n, (off_t)(off + pos));
		if (got <= 0) {
			r = got < 0 ? exai__neg_errno() : -EBADMSG;
			break;
		}
		r = exai_envelope_update(env, buf, (size_t)got);
		pos += (uint64_t)got;
	}
	if (r == 0)
		r = exai_envelope_final(env);
	exai_envelope_free(env);
	return r;
}

/* The second pass: decrypts into the pipe the VMM reads; closes it at the end. */
struct feed {
	const struct exai__snap_info *info;
	const char *tenant;
	const uint8_t *key;
	int fd, out, err;
};

static void *feed_run(void *arg)
{
	struct feed *f = arg;
	f->err = unseal(f->info, false, f->tenant, f->key, f->fd, f->out);
	close(f->out);
	return NULL;
}

int exai__vm_snapshot_open(exai_ctx *ctx, int fd, const char *path, const char *tenant,
			   const struct exai__snap_info *info, uint8_t key[32])
{
	int r = exai__vm_snapshot_key(key, ctx, tenant, info->source, info->generation, info->id);
	if (r < 0)
		return exai__err_prefix(r, path);
	r = unseal(info, false, tenant, key, fd, -1);
	if (r == 0 && info->disk_len)
		r = unseal(info, true, tenant, key, fd, -1);
	if (r == -EBADMSG)
		return exai__err(r, "snapshot %s does not authenticate (altered, or not this workspace's key)", path);
	if (r < 0)
		return exai__err_sys(r, "snapshot %s", path);
	return 0;
}

int exai__vm_snapshot_feed(struct exai_vm *vm, int fd, const struct exai__snap_info *info, const uint8_t key[32])
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return exai__err_sys(exai__neg_errno(), "pipe");
	struct feed f = { .info = info, .tenant = vm->spec.tenant, .key = key, .fd = fd, .out = p[1] };
	pthread_t th;
	int r = -pthread_create(&th, NULL, feed_run, &f);
	if (r < 0) {
		close(p[0]);
		close(p[1]);
		return exai__err(r, "cannot start the snapshot reader thread");
	}
	r = vm->be->restore(vm, p[0]);
	close(p[0]); /* a writer blocked on a VMM that failed gets EPIPE */
	pthread_join(th, NULL);
	if (r == 0 && f.err < 0)
		r = exai__err_sys(f.err, "feeding the snapshot to the VMM (the file changed since it authenticated?)");
	return r;
}

int exai__vm_snapshot_unseal_disk(struct exai_vm *vm, int fd, const struct exai__snap_info *info, const uint8_t key[32])
{
	char *path = disk_path(vm);
	int out = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600) : -1, r = 0;
	if (out < 0 || fchown(out, vm->spec.uid, vm->spec.uid) < 0)
		r = exai__err_sys(path ? exai__neg_errno() : -ENOMEM, "cannot create the disk %s", path ? path : "");
	if (r == 0 && (r = unseal(info, true, vm->spec.tenant, key, fd, out)) < 0)
		r = exai__err_sys(r, "restoring the disk into %s (the snapshot changed since it authenticated?)", path);
	if (r == 0 && fsync(out) < 0)
		r = exai__err_sys(exai__neg_errno(), "fsync %s", path);
	if (out >= 0)
		close(out);
	free(path);
	return r;
}
