/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmkeys.c: a workspace's key material (docs/vm.md, "Keys and crypto-shredding").
 *
 * Every workspace has a 32-byte random seed, stored only as an envelope message under its
 * tenant's keyring (<dir>/vm-key.env: purpose "vm-key", object = workspace name). Keys of the
 * workspace are HKDF-SHA256(salt = seed, ikm = the keys module's derived key, info = label):
 * the per-snapshot key from exai_keyring_derive_snapshot_key() with a fresh random snapshot
 * id. The DEK makes them the tenant's (revoke the tenant and they go); the seed makes them the
 * workspace's: deleting vm-key.env on destroy leaves no way to derive them again, whatever
 * copies of its snapshots exist (crypto-shredding).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "vm-internal.h"
#include "keys/keys-internal.h"

#define SEED_FILE "vm-key.env"
#define SNAP_LIST "snapshots.list"

int exai__vm_keyring(exai_ctx *ctx, const char *tenant, bool create, exai_keyring **ret)
{
	int r = exai_keyring_open(ret, ctx, tenant, NULL);
	if (r != -ENOENT || !create)
		return r == -ENOENT ? exai__err(r, "tenant %s has no keyring (exaictl key init %s)", tenant, tenant) : r;
	/* First workspace of a tenant on an embedded install: a keyring under the file KMS, as
	 * `exaictl key init` would make it (an operator with an HSM runs key init first). */
	r = exai_keyring_init(ret, ctx, tenant, NULL);
	if (r == -EEXIST) /* another process won the race */
		r = exai_keyring_open(ret, ctx, tenant, NULL);
	if (r == 0)
		exai__log_info(ctx, "vm", "tenant %s had no keyring: created one under the file KMS", tenant);
	return r;
}

struct sink {
	uint8_t *buf;
	size_t len, cap;
};

static int sink_write(void *ud, const void *p, size_t n)
{
	struct sink *s = ud;
	if (n > s->cap - s->len)
		return -EBADMSG;
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static int fd_write(void *ud, const void *p, size_t n)
{
	return exai__write_all(*(int *)ud, p, n);
}

int exai__vm_keys_init(struct exai_vm *vm)
{
	exai_keyring *kr = NULL;
	exai_envelope *env = NULL;
	uint8_t *seed = exai_secure_alloc(32);
	char *path = exai__path_join(vm->dir, SEED_FILE), tmp[PATH_MAX];
	int fd = -1, r = seed && path ? 0 : exai__err(-ENOMEM, "out of memory");
	const char *const pairs[] = { NULL };
	if (r == 0)
		r = exai__vm_keyring(vm->ctx, vm->spec.tenant, true, &kr);
	if (r == 0 && (size_t)snprintf(tmp, sizeof(tmp), "%s.partial", path) >= sizeof(tmp))
		r = exai__err(-ENAMETOOLONG, "path too long");
	if (r == 0 && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot create %s", tmp);
	if (r == 0) {
		randombytes_buf(seed, 32);
		EXAI_OPTS(exai_envelope_opts, eo, .write = fd_write, .write_data = &fd, .context = pairs);
		r = exai_keyring_encrypt(&env, kr, "vm-key", vm->spec.name, &eo);
	}
	if (r == 0 && (r = exai_envelope_update(env, seed, 32)) == 0)
		r = exai_envelope_final(env);
	if (r == 0 && fsync(fd) < 0)
		r = exai__err_sys(exai__neg_errno(), "fsync %s", tmp);
	if (fd >= 0)
		close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = exai__err_sys(exai__neg_errno(), "rename %s", tmp);
	if (r < 0 && fd >= 0)
		unlink(tmp);
	exai_envelope_free(env);
	exai_keyring_unref(kr);
	exai_secure_free(seed);
	free(path);
	return r;
}

/* The seed of workspace @name of @tenant into @seed (32 bytes of locked memory). */
static int load_seed(exai_ctx *ctx, exai_keyring *kr, const char *name, uint8_t *seed)
{
	char *base = exai__path_join(exai_ctx_state_dir(ctx), "vm"), *dir = base ? exai__path_join(base, name) : NULL;
	char *path = dir ? exai__path_join(dir, SEED_FILE) : NULL, *text = NULL;
	size_t len = 0;
	exai_envelope *env = NULL;
	struct sink s = { .buf = seed, .cap = 32 };
	int r = path ? exai__read_file(path, 4096, &text, &len) : exai__err(-ENOMEM, "out of memory");
	if (r == -ENOENT)
		r = exai__err(-ENOKEY, "the key material of workspace %s is gone (destroyed: crypto-shredded)", name);
	const char *const pairs[] = { "purpose", "vm-key", "object", name, NULL };
	EXAI_OPTS(exai_envelope_opts, eo, .write = sink_write, .write_data = &s, .context = pairs);
	if (r == 0)
		r = exai_keyring_decrypt(&env, kr, &eo);
	if (r == 0 && (r = exai_envelope_update(env, text, len)) == 0)
		r = exai_envelope_final(env);
	if (r == 0 && s.len != 32)
		r = -EBADMSG;
	if (r == -EBADMSG)
		r = exai__err(r, "the key material of workspace %s (%s) does not authenticate", name, path);
	exai_envelope_free(env);
	free(text);
	free(path);
	free(dir);
	free(base);
	return r;
}

int exai__vm_snapshot_key(uint8_t ret[32], exai_ctx *ctx, const char *tenant, const char *vm_name,
			  uint32_t generation, const char *snapshot_id)
{
	exai_keyring *kr = NULL;
	uint8_t *m = exai_secure_alloc(64); /* seed | derived */
	int r = m ? exai__vm_keyring(ctx, tenant, false, &kr) : exai__err(-ENOMEM, "out of memory");
	if (r == 0)
		r = load_seed(ctx, kr, vm_name, m);
	if (r == 0)
		r = exai_keyring_derive_snapshot_key(m + 32, kr, generation, vm_name, snapshot_id);
	static const char info[] = "exai vm snapshot key v1";
	if (r == 0)
		r = exai__hkdf("SHA256", m, 32, m + 32, 32, (const uint8_t *)info, sizeof(info) - 1, ret, 32);
	exai_keyring_unref(kr);
	exai_secure_free(m);
	return r;
}

int exai__vm_snapshot_record(struct exai_vm *vm, const char *path)
{
	char abs[PATH_MAX], dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (!dir[0])
		snprintf(dir, sizeof(dir), "/");
	if (!realpath(dir, abs))
		return exai__err_sys(exai__neg_errno(), "cannot resolve %s", dir);
	char *list = exai__path_join(vm->dir, SNAP_LIST);
	if (!list)
		return exai__err(-ENOMEM, "out of memory");
	int fd = open(list, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600), r = 0;
	if (fd < 0 || dprintf(fd, "%s/%s\n", abs, slash ? slash + 1 : path) < 0 || fsync(fd) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot record the snapshot in %s", list);
	if (fd >= 0)
		close(fd);
	free(list);
	return r;
}

/* Removes @p (and @p.partial) if it is a snapshot file (magic), emitting an event. */
static int delete_snapshot(struct exai_vm *vm, const char *p)
{
	char partial[PATH_MAX + 16], magic[8];
	int r = 0;
	snprintf(partial, sizeof(partial), "%s.partial", p);
	const char *cand[] = { p, partial };
	for (int i = 0; i < 2; i++) {
		int fd = open(cand[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		bool ours = read(fd, magic, 8) == 8 && !memcmp(magic, "EXAISNAP", 8);
		close(fd);
		if (!ours) {
			exai__log_warn(vm->ctx, "vm", "%s: %s is no longer a snapshot file: left alone", vm->spec.name,
				       cand[i]);
			continue;
		}
		int u = unlink(cand[i]) < 0 && errno != ENOENT ? exai__err_sys(exai__neg_errno(), "cannot delete %s", cand[i]) : 0;
		exai__vm_event(vm, "snapshot-delete", u, json_pack("{s:{s:s, s:i}}", "file", "path", cand[i], "type_id", 1));
		if (u < 0 && r == 0)
			r = u;
	}
	return r;
}

int exai__vm_keys_shred(struct exai_vm *vm)
{
	char *list = exai__path_join(vm->dir, SNAP_LIST), *seed = exai__path_join(vm->dir, SEED_FILE), *text = NULL;
	size_t len = 0;
	int r = list && seed ? 0 : exai__err(-ENOMEM, "out of memory");
	/* 1. the key material: without the seed no key of this workspace can be derived again */
	if (r == 0 && unlink(seed) == 0) {
		exai__vm_event(vm, "key-destroy", 0, json_pack("{s:s}", "key", "vm-key (the disk and snapshot keys)"));
	} else if (r == 0 && errno != ENOENT) {
		r = exai__err_sys(exai__neg_errno(), "cannot delete %s", seed);
	}
	/* 2. the snapshot files it wrote (useless now; deleted all the same) */
	int rr = r == 0 ? exai__read_file(list, 16u << 20, &text, &len) : 0;
	if (rr < 0 && rr != -ENOENT)
		r = rr;
	for (char *line = text, *nl; r == 0 && line && *line; line = nl ? nl + 1 : NULL) {
		if ((nl = strchr(line, '\n')))
			*nl = '\0';
		if (line[0] == '/')
			r = delete_snapshot(vm, line);
		if (!nl)
			break;
	}
	if (r == 0 && text && unlink(list) < 0 && errno != ENOENT)
		r = exai__err_sys(exai__neg_errno(), "cannot delete %s", list);
	free(text);
	free(list);
	free(seed);
	return r;
}

/* ---- the per-VM disk ---------------------------------------------------------------------- */

int exai__vm_disk_passphrase(exai_ctx *ctx, const char *tenant, const char *name, uint32_t generation, char *ret)
{
	exai_keyring *kr = NULL;
	uint8_t *m = exai_secure_alloc(32 + 64 + 64); /* seed | derived | key */
	int r = m ? exai__vm_keyring(ctx, tenant, false, &kr) : exai__err(-ENOMEM, "out of memory");
	if (r == 0)
		r = load_seed(ctx, kr, name, m);
	if (r == 0)
		r = exai_keyring_derive_disk_key(m + 32, kr, generation, name);
	static const char info[] = "exai vm disk key v1";
	if (r == 0)
		r = exai__hkdf("SHA256", m, 32, m + 32, 64, (const uint8_t *)info, sizeof(info) - 1, m + 96, 64);
	/* its base64 text is the LUKS passphrase (QEMU wants UTF-8) */
	if (r == 0)
		sodium_bin2base64(ret, EXAI__VM_DISK_PASS_LEN, m + 96, 64, sodium_base64_VARIANT_ORIGINAL);
	exai_keyring_unref(kr);
	exai_secure_free(m);
	return r;
}

/* The disk key of workspace @name in a pipe: its read end (the key is in kernel memory only;
 * its reader is the VMM or qemu-img), or an error. */
static int secret_fd_of(exai_ctx *ctx, const char *tenant, const char *name, uint32_t generation)
{
	char *b64 = exai_secure_alloc(EXAI__VM_DISK_PASS_LEN);
	int p[2] = { -1, -1 };
	int r = b64 ? exai__vm_disk_passphrase(ctx, tenant, name, generation, b64) : exai__err(-ENOMEM, "out of memory");
	if (r == 0) {
		if (pipe2(p, O_CLOEXEC) < 0)
			r = exai__err_sys(exai__neg_errno(), "pipe");
		else if ((r = exai__write_all(p[1], b64, strlen(b64))) < 0)
			r = exai__err_sys(r, "pipe");
	}
	if (p[1] >= 0)
		close(p[1]);
	if (r < 0 && p[0] >= 0)
		close(p[0]);
	exai_secure_free(b64);
	return r < 0 ? r : p[0];
}

int exai__vm_disk_secret_fd(struct exai_vm *vm, uint32_t generation)
{
	return secret_fd_of(vm->ctx, vm->spec.tenant, vm->spec.name, generation);
}

/* Runs qemu-img with @fds (pipes holding keys) as its descriptors 3, 4, ...; consumes them.
 * Nothing else of ours reaches it: no environment, stdin /dev/null. */
/* qemu-img sizes LUKS's PBKDF2 by timing it on the thread's CPU clock and gives up ("Unable to
 * get accurate CPU usage") when a busy host's clock shows no time at all: a run that fails is
 * tried again (each try with fresh key pipes), up to this many runs in all. */
#define QEMU_IMG_TRIES 3

static int run_qemu_img(const char *const *argv, int *fds, int nfds, const char *what)
{
	if (access(EXAI__QEMU_IMG, X_OK) != 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return exai__err(-ENOENT, "%s is missing (Debian package qemu-utils): it %s", EXAI__QEMU_IMG, what);
	}
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull < 0 || dup2(devnull, 0) < 0)
			_exit(127);
		/* move them above the targets first, so that none overwrites another */
		for (int i = 0; i < nfds; i++)
			if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
				_exit(127);
		for (int i = 0; i < nfds; i++)
			if (dup2(fds[i], 3 + i) < 0)
				_exit(127);
		char *const envp[] = { NULL };
		execve(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	int r = pid < 0 ? exai__err_sys(exai__neg_errno(), "fork") : 0, st = 0;
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		r = exai__err(-EIO, "%s %s failed (status %d): it %s", EXAI__QEMU_IMG, argv[1], st, what);
	return r;
}

int exai__vm_disk_create(struct exai_vm *vm)
{
	char *path = exai__vm_run_path(vm, "disk.luks"), size[32];
	if (!path)
		return exai__err(-ENOMEM, "out of memory");
	snprintf(size, sizeof(size), "%uM", vm->spec.disk_mib);
	int r = 0;
	/* The key reaches qemu-img as fd 3 (a pipe), never on its command line or in a file. The
	 * passphrase is a 512-bit random key: PBKDF2 iterations add nothing, hence iter-time=10. */
	const char *argv[] = { EXAI__QEMU_IMG, "create", "-q", "-f", "luks", "--object",
			       "secret,id=sec0,file=/proc/self/fd/3,format=raw", "-o",
			       "key-secret=sec0,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256,iter-time=10",
			       path, size, NULL };
	for (int tries = QEMU_IMG_TRIES; tries--;) {
		int fd = exai__vm_disk_secret_fd(vm, vm->spec.disk_generation);
		r = fd < 0 ? fd : run_qemu_img(argv, &fd, 1, "formats the encrypted disk");
		if (r != -EIO)
			break;
	}
	if (r == 0 && chown(path, vm->spec.uid, vm->spec.uid) < 0)
		r = exai__err_sys(exai__neg_errno(), "chown %s", path);
	if (r == 0)
		exai__log_info(vm->ctx, "vm", "%s: encrypted disk %s (LUKS, AES-256-XTS, %u MiB, DEK generation %u)",
			       vm->spec.name, path, vm->spec.disk_mib, vm->spec.disk_generation);
	free(path);
	return r;
}

/* One LUKS keyslot change (qemu-img amend): @opts with the secrets "old" (fd 3, the key of
 * workspace @from_name, generation @from) and "new" (fd 4, this workspace's of @to); @unlock
 * names the one that opens the disk. */
static int disk_amend_once(struct exai_vm *vm, const char *from_name, uint32_t from, uint32_t to, const char *unlock,
			   const char *opts, const char *what)
{
	char *path = exai__vm_run_path(vm, "disk.luks"), image[PATH_MAX + 64];
	int fds[2] = { secret_fd_of(vm->ctx, vm->spec.tenant, from_name, from), -1 }, r = 0;
	if (fds[0] >= 0)
		fds[1] = exai__vm_disk_secret_fd(vm, to);
	if (!path || fds[0] < 0 || fds[1] < 0) {
		r = !path ? exai__err(-ENOMEM, "out of memory") : fds[0] < 0 ? fds[0] : fds[1];
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		free(path);
		return r;
	}
	snprintf(image, sizeof(image), "driver=luks,key-secret=%s,file.filename=%s", unlock, path);
	const char *argv[] = { EXAI__QEMU_IMG, "amend", "-q", "--object", "secret,id=old,file=/proc/self/fd/3,format=raw",
			       "--object", "secret,id=new,file=/proc/self/fd/4,format=raw", "--image-opts", image,
			       "-o", opts, NULL };
	r = run_qemu_img(argv, fds, 2, what);
	free(path);
	return r;
}

static int disk_amend(struct exai_vm *vm, const char *from_name, uint32_t from, uint32_t to, const char *unlock,
		      const char *opts, const char *what)
{
	int r = -EIO;
	for (int tries = QEMU_IMG_TRIES; tries-- && r == -EIO;)
		r = disk_amend_once(vm, from_name, from, to, unlock, opts, what);
	return r;
}

/* Re-keys the disk from its generation to @to: a keyslot for the new key is added (the state
 * records the new generation and the old one still to remove), then the old key's keyslot is
 * erased. A crash between the steps is finished on the next boot. */
static int disk_rekey(struct exai_vm *vm, uint32_t to)
{
	uint32_t from = vm->spec.disk_old_generation ? vm->spec.disk_old_generation : vm->spec.disk_generation;
	int r = 0;
	if (!vm->spec.disk_old_generation) {
		r = disk_amend(vm, vm->spec.name, from, to, "old", "state=active,new-secret=new,iter-time=10",
			       "adds the new key's keyslot");
		if (r == 0) {
			vm->spec.disk_old_generation = from;
			vm->spec.disk_generation = to;
			r = exai__vm_save(vm);
		}
	}
	if (r == 0)
		r = disk_amend(vm, vm->spec.name, from, to, "new", "state=inactive,old-secret=old",
			       "erases the old key's keyslot");
	if (r == 0) {
		vm->spec.disk_old_generation = 0;
		r = exai__vm_save(vm);
	}
	exai__vm_event(vm, "disk-rekey", r, json_pack("{s:i, s:i}", "from_generation", (int)from, "generation", (int)to));
	if (r == 0)
		exai__log_info(vm->ctx, "vm", "%s: the disk was re-keyed from DEK generation %u to %u", vm->spec.name,
			       from, to);
	return r;
}

int exai__vm_disk_check_generation(struct exai_vm *vm)
{
	exai_keyring *kr = NULL;
	bool outdated = false;
	uint32_t current = 0;
	int r = exai__vm_keyring(vm->ctx, vm->spec.tenant, false, &kr);
	if (r == 0)
		r = exai_keyring_is_outdated(kr, vm->spec.disk_generation, &outdated);
	if (r == 0)
		current = exai_keyring_generation(kr);
	exai_keyring_unref(kr);
	if (r == -EACCES)
		return exai__err(r, "the disk of %s is under DEK generation %u, which is retired: it cannot be opened",
				 vm->spec.name, vm->spec.disk_generation);
	if (r == 0 && (outdated || vm->spec.disk_old_generation)) {
		exai__log_info(vm->ctx, "vm", "%s: the disk is under DEK generation %u, older than the current %u: re-keying it",
			       vm->spec.name, vm->spec.disk_generation, current);
		r = disk_rekey(vm, outdated ? current : vm->spec.disk_generation);
	}
	return r;
}

int exai__vm_disk_adopt(struct exai_vm *vm, const char *source, uint32_t source_generation)
{
	exai_keyring *kr = NULL;
	int r = exai__vm_keyring(vm->ctx, vm->spec.tenant, false, &kr);
	uint32_t to = r == 0 ? exai_keyring_generation(kr) : 0;
	exai_keyring_unref(kr);
	/* a keyslot for this workspace's key (the source's opens the copy), then the source's
	 * keyslot erased: the copy is this workspace's alone from here on */
	if (r == 0)
		r = disk_amend(vm, source, source_generation, to, "old", "state=active,new-secret=new,iter-time=10",
			       "adds the restored workspace's keyslot to its disk");
	if (r == 0)
		r = disk_amend(vm, source, source_generation, to, "new", "state=inactive,old-secret=old",
			       "erases the source workspace's keyslot from the restored disk");
	if (r == 0)
		vm->spec.disk_generation = to;
	exai__vm_event(vm, "disk-rekey", r,
		       json_pack("{s:s, s:i, s:i}", "from_workspace", source, "from_generation", (int)source_generation,
				 "generation", (int)to));
	return r;
}
