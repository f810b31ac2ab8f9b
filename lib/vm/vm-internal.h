/* SPDX-License-Identifier: Apache-2.0 */
/* vm-internal.h: the vm module's internals, shared by its files (and reachable by tests). */
#ifndef EXAI_VM_INTERNAL_H
#define EXAI_VM_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core-internal.h"
#include "exai/vm.h"
#include "exai/keys.h"
#include "backend.h"
#include "agent-client.h"

#define EXAI__VM_NAME_MAX 40
/* uids/gids of VMMs: base + a slot per workspace (hash of its name, probed). */
#define EXAI__VM_UID_BASE 3200000u
#define EXAI__VM_UID_SLOTS 65536u

/* A workspace's network (net.c): all empty when it has none. */
struct exai__vm_net {
	bool on;
	char netns[80]; /* exai-<state dir id>-<tenant>, under /run/netns */
	char tap[16];   /* in the tenant namespace */
	char ip[16], gw[16], mac[18];
};

/* What state.json holds (docs/formats/vm-state.md). */
struct exai__vm_spec {
	char name[EXAI__VM_NAME_MAX + 1];
	char host_id[9]; /* the state dir's id (exai__vm_state_id): part of every host-wide name */
	char tenant[64];
	int backend;
	bool kvm;
	uint32_t vcpus, mem_mib, pids_max, cpu_quota_pct;
	char cpuset[64];
	char image_dir[PATH_MAX];
	uid_t uid;
	uint32_t boot_timeout_ms;
	char cmdline[1024]; /* the guest kernel command line */
	uint32_t disk_mib;        /* the per-VM writable disk; 0: none */
	uint32_t disk_generation; /* DEK generation its key was derived from */
	uint32_t disk_old_generation; /* mid re-key: the generation whose keyslot is still to erase */
	bool disk_plain;          /* Firecracker without dm-crypt, allowed by the operator */
	struct exai__vm_net net;
};

struct exai_vm {
	exai_ctx *ctx;
	char *dir;     /* <state_dir>/vm/<name> */
	char *run_dir; /* <dir>/run: sockets and logs, owned by the VMM's uid, /vm in the jail */
	struct exai__vm_spec spec;
	int state;
	char failure[256]; /* why it is `failed` */
	pid_t pid;
	unsigned long long pid_start;
	const struct exai__backend *be;
	struct exai__agent *agent;
	int qmp_fd; /* QEMU: connected QMP socket, or -1 */
	int secret_fd; /* the next VMM's fd 3 (the disk key in a pipe), or -1 */
	int tap_fd;    /* the next VMM's fd 4 (its tap, QEMU), or -1 */
	char disk_dev[128]; /* Firecracker: the active dm-crypt device bound into the jail, or "" */
};

/* A short stable id of the state directory: 8 hex digits of the SHA-256 of its absolute path.
 * It is part of every name a workspace takes on the host (cgroup, network namespace, veth,
 * tap, dm-crypt device), so that two state directories never share or remove each other's. */
int exai__vm_state_id(exai_ctx *ctx, char ret[9]);
/* The workspace's cgroup name under exai/: <state dir id>-<name>. */
void exai__vm_cgroup_name(const struct exai_vm *vm, char *buf, size_t len);

/* Paths in run_dir, as the host sees them (the VMM sees them under /vm). */
char *exai__vm_run_path(const struct exai_vm *vm, const char *file);

/* ---- jail.c -------------------------------------------------------------------------------- */
struct exai__jail {
	const char *const *argv; /* argv[0]: absolute path of the VMM binary (under /usr) */
	const char *root_dir;    /* empty directory for the private root */
	const char *run_dir;     /* bound read-write at /vm */
	const char *image_dir;   /* bound read-only at /image */
	const char *log_path;    /* the VMM's stdout and stderr (host path) */
	const char *cgroup;      /* the VM's cgroup name, or NULL */
	uid_t uid;
	gid_t gid;
	uint32_t pids_max;
	bool kvm;
	int secret_fd; /* becomes the VMM's fd 3 when >= 0 (a pipe holding a key) */
	int tap_fd;    /* becomes the VMM's fd 4 when >= 0 (an open tap) */
	const char *disk_dev; /* when set, a block device bound at EXAI__VM_DM_JAIL_PATH */
	/* When set, the VMM runs in this network namespace (Firecracker opens its tap itself);
	 * otherwise in a new, empty one. */
	const char *netns;
};
int exai__jail_spawn(const struct exai__jail *j, pid_t *ret_pid);

struct exai__cg_limits {
	uint32_t vcpus, cpu_quota_pct, pids_max;
	uint64_t mem_bytes;
	const char *cpuset;
};
int exai__cgroup_create(const char *name, const struct exai__cg_limits *l);
int exai__cgroup_remove(const char *name);
bool exai__cgroup_exists(const char *name);
/* Start time of @pid from /proc (0: gone or a zombie). */
unsigned long long exai__proc_start_time(pid_t pid);
bool exai__proc_alive(pid_t pid, unsigned long long start_time);

/* ---- image.c ------------------------------------------------------------------------------- */
/* Checks the image in @dir before a boot: when the operator configured a trusted key
 * (<state_dir>/guest-image.pub, a minisign public key), manifest.json.minisig must be a valid
 * prehashed minisign signature of manifest.json by it (-EACCES: unsigned or another key;
 * -EBADMSG: bad signature); then manifest.json well-formed, and the size and SHA-256 of
 * @kernel ("vmlinuz" for QEMU, "vmlinux" for Firecracker) and initramfs.cpio.gz as recorded
 * (both must be listed). Without a trusted key the hashes alone are checked. */
#define EXAI__VM_IMAGE_KEY "guest-image.pub"
int exai__vm_image_verify(exai_ctx *ctx, const char *dir, const char *kernel);

/* ---- snapshot.c ---------------------------------------------------------------------------- */
/* A snapshot file: magic, header (JSON: the machine's shape, the snapshot id, the DEK
 * generation), the VMM's state stream as an envelope message under the snapshot's own key,
 * and a trailer with the SHA-256 of all before it (docs/formats/snapshot.md). */
int exai__vm_snapshot_write(struct exai_vm *vm, const char *path, bool was_running);
/* What a checked snapshot says about itself besides the machine's shape. */
struct exai__snap_info {
	bool was_running;
	uint64_t off, len;                  /* the envelope message in the file */
	char id[33];                        /* 32 hex digits */
	char source[EXAI__VM_NAME_MAX + 1]; /* the workspace whose key material seals it */
	uint32_t generation;                /* DEK generation of its key */
	char key_name[256];                 /* the envelope's key name */
	char header_sha256[65];             /* bound by the envelope's encryption context */
	uint64_t disk_off, disk_len;        /* version 3: the disk's envelope message; 0: none */
	uint32_t disk_generation;           /* the DEK generation of the source's disk key */
};
/* Checks an open snapshot's framing completely (header, size, SHA-256) before anything else;
 * fills *@spec (machine shape, backend, cmdline, tenant) and *@info. */
int exai__vm_snapshot_check(int fd, const char *path, struct exai__vm_spec *spec, struct exai__snap_info *info);
/* Derives the snapshot's key into @key (32 bytes, locked) and authenticates the whole
 * envelope message (decrypting into nothing). -ENOKEY: the source's key material was
 * shredded; -EBADMSG: altered; -EACCES: retired generation or revoked tenant. */
int exai__vm_snapshot_open(exai_ctx *ctx, int fd, const char *path, const char *tenant,
			   const struct exai__snap_info *info, uint8_t key[32]);
/* Decrypts the authenticated payload again, frame by authenticated frame, into a pipe that
 * the VM started with incoming = true reads. */
int exai__vm_snapshot_feed(struct exai_vm *vm, int fd, const struct exai__snap_info *info, const uint8_t key[32]);
/* Decrypts the authenticated disk message into the new workspace's disk file (run/disk.luks,
 * still under the source's LUKS keyslot: exai__vm_disk_adopt() follows; or run/disk.img). */
int exai__vm_snapshot_unseal_disk(struct exai_vm *vm, int fd, const struct exai__snap_info *info, const uint8_t key[32]);

/* ---- vmkeys.c ------------------------------------------------------------------------------ */
/* Opens @tenant's keyring; with @create, makes one under the file KMS when there is none. */
int exai__vm_keyring(exai_ctx *ctx, const char *tenant, bool create, exai_keyring **ret);
/* The workspace's key material: a random seed sealed under the tenant keyring (vm-key.env). */
int exai__vm_keys_init(struct exai_vm *vm);
/* The key of snapshot @snapshot_id of workspace @vm_name (its seed and DEK @generation). */
int exai__vm_snapshot_key(uint8_t ret[32], exai_ctx *ctx, const char *tenant, const char *vm_name,
			  uint32_t generation, const char *snapshot_id);
/* The per-VM disk key (HKDF of the seed and exai_keyring_derive_disk_key(@generation)) as
 * base64 in a pipe: returns its read end (the key is in kernel memory only), or an error. */
int exai__vm_disk_secret_fd(struct exai_vm *vm, uint32_t generation);
/* The same key as LUKS passphrase text (base64 of 64 bytes, NUL-terminated) of workspace
 * @name into @ret: EXAI__VM_DISK_PASS_LEN bytes of locked memory (exai_secure_alloc). */
#define EXAI__VM_DISK_PASS_LEN 89
int exai__vm_disk_passphrase(exai_ctx *ctx, const char *tenant, const char *name, uint32_t generation, char *ret);
/* A restored copy of workspace @source's disk (run/disk.luks) becomes this workspace's: a
 * keyslot for its key at the current generation is added (the source's key, of
 * @source_generation, opens it), then the source's keyslot is erased; audit event disk-rekey. */
int exai__vm_disk_adopt(struct exai_vm *vm, const char *source, uint32_t source_generation);
#define EXAI__QEMU_IMG "/usr/bin/qemu-img"
/* Formats run/disk.luks (LUKS, AES-256-XTS) with qemu-img, the key passed as its fd 3. */
int exai__vm_disk_create(struct exai_vm *vm);
/* Before a boot: a disk under a retired generation is refused (-EACCES); one under an older
 * generation is re-keyed to the current one (LUKS keyslots changed with qemu-img amend; audit
 * event disk-rekey), and a re-key a crash interrupted is finished. */
int exai__vm_disk_check_generation(struct exai_vm *vm);
/* Appends @path (made absolute) to the workspace's list of snapshots, deleted on destroy. */
int exai__vm_snapshot_record(struct exai_vm *vm, const char *path);

/* ---- net.c -------------------------------------------------------------------------------- */
/* With @policy (and the operator's @floor_allow, may be NULL): the tenant namespace (made with its first VM), the VM's tap in it with
 * @policy attached before it is brought up, the routes; fills spec.net (the guest's
 * exai.ip/exai.gw/exai.mac). Without: nothing, and the VM has no network device (fail
 * closed). A failure leaves spec.net set for exai__vm_net_detach() to clean up. */
int exai__vm_net_attach(struct exai_vm *vm, const struct exai_policy *policy, const char *const *floor_allow);
/* Drains the tap's deny events, detaches the policy, removes the tap, and the tenant's
 * namespace and veth with its last VM; an audit event each; idempotent. */
int exai__vm_net_detach(struct exai_vm *vm);
/* An open descriptor of the VM's tap (for QEMU's -netdev tap,fd=). */
int exai__vm_net_tap_fd(struct exai_vm *vm);
/* Hands the deny events waiting on the VM's tap to the context's audit log. */
void exai__vm_net_drain(struct exai_vm *vm);
/* Live facts for exai_vm_inspect(): JSON null without a network. */
json_t *exai__vm_net_inspect(struct exai_vm *vm);
/* After a restore: gives the guest this workspace's address, MAC and route (through the agent). */
int exai__vm_net_guest_config(struct exai_vm *vm);

/* Crypto-shredding (vmkeys.c): deletes the workspace's sealed seed (no key of it can be
 * derived again) and the snapshot files it wrote; an audit event each; idempotent. */
int exai__vm_keys_shred(struct exai_vm *vm);

/* ---- dmcrypt.c ---------------------------------------------------------------------------- */
/* The Firecracker backend's encrypted disk: run/disk.luks (the LUKS1 file qemu-img made, as
 * for QEMU) opened by the kernel's dm-crypt through libcryptsetup as /dev/mapper/<dm name>,
 * bound into the jail at EXAI__VM_DM_JAIL_PATH. */
#define EXAI__VM_DM_JAIL_PATH "/dev/exai-disk"
/* 0 when dm-crypt disks can be opened here; else -ENOTSUP with a sentence naming what is
 * missing (libcryptsetup in this build, the kernel's device-mapper, its crypt target). */
int exai__dm_supported(void);
/* Checks that the key of workspace @name (DEK @generation) opens the LUKS1 disk @path, without
 * activating anything (no device-mapper needed): 0, -EACCES (the key does not open it),
 * -EBADMSG (not a LUKS1 AES-256-XTS disk), -ENOTSUP (no libcryptsetup in this build). */
int exai__vm_dm_check_key(struct exai_vm *vm, const char *path, const char *name, uint32_t generation);
/* Activates the workspace's disk as /dev/mapper/<dm name> (or finds it active: re-adoption),
 * owned by the VMM's uid; sets vm->disk_dev. Audit event disk-activate. */
int exai__vm_dm_open(struct exai_vm *vm);
/* Flushes the active device (before its backing file is copied); 0 when not active. */
int exai__vm_dm_flush(struct exai_vm *vm);
/* Deactivates it if active (event disk-deactivate); idempotent. */
int exai__vm_dm_close(struct exai_vm *vm);
bool exai__vm_dm_active(struct exai_vm *vm);

/* ---- firecracker.c ------------------------------------------------------------------------ */
/* One REST call on the API socket @sock; consumes @body. *@ret_body (may be NULL) gets the
 * response body (free()). Non-2xx: -EINVAL (400) or -EIO with the API's fault_message. */
int exai__fc_call(const char *sock, const char *method, const char *path, json_t *body, char **ret_body);
/* The requests that configure a fresh Firecracker before InstanceStart. */
int exai__fc_configure(struct exai_vm *vm);
/* A block device (before InstanceStart). */
int exai__fc_add_drive(struct exai_vm *vm, const char *id, const char *path_in_jail, bool read_only,
		       bool root);
/* Whether a Firecracker workspace may have its disk: encrypted where this libexai has
 * libcryptsetup and the host kernel device-mapper with dm-crypt (exai__dm_supported());
 * otherwise -ENOTSUP naming what is missing, unless @allow_unencrypted (then spec.disk_plain
 * is set and a warning logged). */
int exai__fc_disk_check(struct exai_vm *vm, bool allow_unencrypted);
/* A virtio-net device on tap @tap (in the tenant namespace Firecracker runs in) with MAC
 * @mac (before InstanceStart). */
int exai__fc_add_net(struct exai_vm *vm, const char *id, const char *tap, const char *mac);

/* ---- vm.c ---------------------------------------------------------------------------------- */
/* Emits an OCSF-shaped audit event for @action (class and activity from the table in vm.c;
 * docs/vm.md), outcome from @r (and the error sentence), plus @extra's members (consumed,
 * may be NULL). */
void exai__vm_event(struct exai_vm *vm, const char *action, int r, json_t *extra);
int exai__vm_set_state(struct exai_vm *vm, int state);
/* Starts @argv (the VMM) confined for @vm (exai__jail_spawn); sets vm->pid and pid_start. */
int exai__vm_spawn(struct exai_vm *vm, const char *const *argv);
int exai__vm_save(struct exai_vm *vm);
/* Host TSC frequency in kHz for the guest's tsc_early_khz= under TCG (0: unknown). */
unsigned long exai__vm_tsc_khz(void);

#endif
