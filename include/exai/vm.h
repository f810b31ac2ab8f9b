/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file exai/vm.h
 * @brief Workspaces: one untrusted agent workspace = one microVM.
 *
 * A workspace is a microVM (QEMU `microvm`, or Firecracker where /dev/kvm and its binary
 * exist) booted from the guest image (kernel + initramfs with exai-agent, checked against
 * its manifest before every boot), with its VMM confined (own uid/gid, mount and PID
 * namespaces with a private root, cleared environment, closed descriptors, resource limits,
 * QEMU's seccomp sandbox) in its own cgroup (cpu quota, cpuset, memory, pids).
 *
 * Its state lives under `<state_dir>/vm/<name>/` (state.json, written crash-safely), so that
 * another process (the next exaictl call, a restarted daemon) finds and adopts it with
 * exai_vm_open(). The lifecycle:
 *
 *     created -> booting -> running <-> paused
 *                              |  \-> snapshotting -> running | paused
 *                              v
 *                           stopped -> destroyed        (any state -> failed -> destroyed)
 *
 * A call that does not fit the current state fails with -EBUSY and a sentence naming both.
 * A VMM that died is noticed by every call (the workspace becomes `failed`).
 *
 * Threads: an ::exai_vm handle is used by one thread at a time. Two handles (in one process
 * or two) must not drive the same workspace at once: a handle keeps its connection to the
 * guest agent until exai_vm_free(), and the agent's virtio-serial port serves one host
 * connection at a time (the daemon will serialise access).
 */
#ifndef EXAI_VM_H
#define EXAI_VM_H

#include <stdbool.h>
#include <exai/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct exai_vm exai_vm;
struct exai_policy; /* exai/policy.h */

/** Lifecycle states (persisted by name in state.json). */
enum exai_vm_state {
	EXAI_VM_CREATED = 1,
	EXAI_VM_BOOTING,
	EXAI_VM_RUNNING,
	EXAI_VM_PAUSED,
	EXAI_VM_SNAPSHOTTING,
	EXAI_VM_STOPPED,
	EXAI_VM_DESTROYED,
	EXAI_VM_FAILED,
};
/** "created", "running", ...; NULL for an unknown value. */
EXAI_API const char *exai_vm_state_name(int state);

/** VMM backends. */
enum exai_vm_backend {
	EXAI_VM_BACKEND_AUTO = 0,    /**< Firecracker with /dev/kvm and its binary, else QEMU (KVM, else TCG) */
	EXAI_VM_BACKEND_QEMU = 1,
	EXAI_VM_BACKEND_FIRECRACKER = 2,
};
/** "qemu", "firecracker"; NULL for an unknown value. */
EXAI_API const char *exai_vm_backend_name(int backend);

struct exai_vm_opts {
	size_t sz;              /**< sizeof(struct exai_vm_opts); set by EXAI_OPTS() */
	const char *tenant;     /**< tenant id ([A-Za-z0-9_.-], <= 63); NULL: "default" */
	uint32_t vcpus;         /**< 0: 1 (the floor); at most 32 */
	uint32_t mem_mib;       /**< 0: 256; 64 .. 65536 */
	int backend;            /**< ::exai_vm_backend */
	/** Directory holding vmlinuz, initramfs.cpio.gz and manifest.json. NULL:
	 *  `$EXAI_GUEST_IMAGE_DIR`, else the build's default. */
	const char *image_dir;
	uint32_t boot_timeout_ms; /**< until the agent answers; 0: 120000 (TCG is slow) */
	uint32_t pids_max;      /**< pids.max of the VMM's cgroup; 0: 512 */
	uint32_t cpu_quota_pct; /**< CPU bandwidth in percent of one CPU per vCPU; 0: 100 */
	const char *cpuset;     /**< cpuset.cpus of the VMM (e.g. "0-1"); NULL: the parent's */
	/** A writable per-VM disk of this many MiB (the guest mounts it at /work), encrypted at
	 *  rest under the workspace's disk key: QEMU's LUKS driver, AES-256-XTS. 0: no disk.
	 *  At most 1048576. Firecracker: the same LUKS file opened by the host kernel's dm-crypt
	 *  (libcryptsetup; see allow_unencrypted_disk). A snapshot carries the disk with the
	 *  memory; a restore re-keys its copy for the new workspace. Each boot re-keys a disk
	 *  under an older DEK generation to the current one (and refuses one under a retired
	 *  generation, -EACCES). */
	uint32_t disk_mib;
	/** Firecracker only: accept a plaintext disk where dm-crypt (libcryptsetup in this
	 *  build, device-mapper and dm-crypt in the host kernel) is not available; without it
	 *  such a create fails with -ENOTSUP naming what is missing. Restoring a snapshot with a
	 *  plaintext disk needs it too (-EACCES). */
	bool allow_unencrypted_disk;
	/** The tenant's egress policy (exai/policy.h; its tenant must be the workspace's). With
	 *  it, the workspace gets a network device: a tap in the tenant's network namespace
	 *  `exai-<state dir id>-<tenant>` (created with its first such workspace, removed with
	 *  its last) with
	 *  the policy attached before the VMM starts, and an address, gateway and MAC handed to
	 *  the guest on its kernel command line (docs/vm.md, "Network"). NULL: no network device
	 *  at all (fail closed). Only read during the call. */
	const struct exai_policy *policy;
	/** Operator override, NULL-terminated CIDRs carved out of the policy's floor (which holds
	 *  the host's own addresses, 10.199.255.254 included): e.g. "10.199.255.254/32" lets a
	 *  bundle that allows it reach a service on the host. Logged. Only read during the call. */
	const char *const *floor_allow;
};

/**
 * Creates workspace @p name (`[a-z0-9][a-z0-9_-]*`, <= 40 bytes) in state `created`:
 * checks the options, chooses the backend, records state.json. Does not boot it.
 * @retval -EINVAL bad name or option (the sentence names it)
 * @retval -EEXIST a workspace of that name exists
 * @retval -ENOENT the image or the VMM binary is missing
 * @retval -E2BIG  unknown options tail
 * @retval -EACCES the policy is for another tenant
 * @retval other   setting up the network or attaching the policy failed (the sentence says
 *         which step); everything made for the workspace is removed again
 */
EXAI_API int exai_vm_create(exai_vm **ret, exai_ctx *ctx, const char *name,
			    const struct exai_vm_opts *opts);
/** Opens an existing workspace (from another process too). -ENOENT if unknown. */
EXAI_API int exai_vm_open(exai_vm **ret, exai_ctx *ctx, const char *name);
/** Releases the handle (not the workspace, which keeps running). NULL is accepted. */
EXAI_API void exai_vm_free(exai_vm *vm);

/**
 * Verifies the image, starts the confined VMM and waits until the guest agent answers.
 * created|stopped -> booting -> running; on failure everything started is stopped and the
 * state is `failed` (the sentence says why: missing kernel, bad manifest, VMM exit with its
 * console's last line, agent timeout).
 */
EXAI_API int exai_vm_boot(exai_vm *vm);

/** Output callback of exai_vm_exec: @p stream 1 = stdout, 2 = stderr. */
typedef int (*exai_vm_output_fn)(void *userdata, int stream, const void *data, size_t len);

struct exai_vm_exec_opts {
	size_t sz;
	const char *const *argv;  /**< NULL-terminated; required */
	const char *const *envp;  /**< NULL-terminated NAME=value; NULL: the agent's default */
	const char *cwd;          /**< absolute; NULL: "/" */
	uint32_t timeout_ms;      /**< the guest kills the command after it; 0: none */
	int stdin_fd;             /**< streamed to the command until EOF; 0 means none (use
				   *   -1 too); to pass fd 0 give EXAI_VM_STDIN_FD0 */
	exai_vm_output_fn output; /**< NULL: output discarded */
	void *userdata;
	/** Polled about every 100 ms while the command runs: a signal number to send to the
	 *  command's process group in the guest (e.g. after a SIGINT on the caller's side), or 0.
	 *  NULL: none. */
	int (*pending_signal)(void *userdata);
};
/** exai_vm_exec_opts::stdin_fd value meaning "standard input (fd 0)". */
#define EXAI_VM_STDIN_FD0 (-100)

/**
 * Runs a command in a running workspace, streaming its output, and gives its status in
 * *@p ret_status: the exit code (0..255), 128 + N when killed by signal N, 124 when the
 * timeout killed it.
 * @retval -EBUSY not running; -ENOENT the program does not exist in the guest;
 *         -ETIMEDOUT the agent stopped answering; -EPROTO the guest broke the protocol
 */
EXAI_API int exai_vm_exec(exai_vm *vm, const struct exai_vm_exec_opts *opts, int *ret_status);

/** Copies host file @p local into the guest at absolute @p remote (mode @p mode), checked
 *  end to end with SHA-256. */
EXAI_API int exai_vm_put(exai_vm *vm, const char *local, const char *remote, uint32_t mode);
/** Copies guest file @p remote to host file @p local (created 0600 or truncated), checked
 *  with SHA-256; a partial copy is removed. */
EXAI_API int exai_vm_get(exai_vm *vm, const char *remote, const char *local);

/** running -> paused (vCPUs stopped, memory kept). */
EXAI_API int exai_vm_pause(exai_vm *vm);
/** paused -> running. */
EXAI_API int exai_vm_resume(exai_vm *vm);
/**
 * Saves memory and device state to @p path (a new file): running|paused -> snapshotting ->
 * back to the state it came from. The file carries the machine configuration and a SHA-256
 * that exai_vm_restore() checks before the VMM loads anything; the state is sealed under a
 * key of this snapshot alone (docs/formats/snapshot.md). A workspace with a disk has it
 * copied into the file while paused, after the memory (format version 3): disk and memory
 * of one instant; the file is then as large as the disk plus the memory.
 */
EXAI_API int exai_vm_snapshot(exai_vm *vm, const char *path);
/** Creates workspace @p name from snapshot @p path and runs it (or leaves it paused when the
 *  snapshot was taken paused). @p opts may override only image_dir, boot_timeout_ms and the
 *  cgroup limits, and gives the policy (and floor_allow): a snapshot of a workspace with a
 *  network needs one (-EACCES without), and the new workspace gets its own tap, address and
 *  MAC (the guest is reconfigured through its agent before the call returns, a paused one
 *  too); one without cannot get one (-EINVAL). A snapshot with a disk gives the new
 *  workspace its own copy, re-keyed to its own disk key before its VMM starts; one with an
 *  unencrypted disk needs allow_unencrypted_disk (-EACCES). -EBADMSG: corrupt or altered;
 *  -ENOKEY: the source workspace was destroyed (its snapshots are shredded). */
EXAI_API int exai_vm_restore(exai_vm **ret, exai_ctx *ctx, const char *path, const char *name,
			     const struct exai_vm_opts *opts);
/** running|paused -> stopped: the VMM exits (guest memory is lost), its cgroup goes; the
 *  workspace stays and exai_vm_boot() starts it afresh. */
EXAI_API int exai_vm_stop(exai_vm *vm);
/**
 * Stops the VMM (quit, then SIGKILL), removes its cgroup and every file of the workspace.
 * Idempotent: destroying a destroyed or half-created workspace succeeds. The handle stays
 * valid (state `destroyed`) until exai_vm_free().
 */
EXAI_API int exai_vm_destroy(exai_vm *vm);

/** The current state, after checking that the VMM is alive (a dead one makes it `failed`). */
EXAI_API int exai_vm_state(exai_vm *vm);
/** The workspace's name. Valid while the handle lives. */
EXAI_API const char *exai_vm_name(const exai_vm *vm);
/** state.json plus live facts (pid, cgroup, sockets) as a JSON text; exai_free() it. */
EXAI_API int exai_vm_inspect(exai_vm *vm, char **ret_json);
/** The names of all workspaces under the state dir, sorted, as one string of names each
 *  followed by '\n' ("" when none); exai_free() it. */
EXAI_API int exai_vm_list(char **ret_names, exai_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* EXAI_VM_H */
