/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backend.h: what a VMM backend provides to the workspace lifecycle (vm.c). One instance
 * per VMM: QEMU microvm over QMP (qemu.c), Firecracker over its REST API (firecracker.c).
 * Every function is called with the workspace in the state that vm.c checked; each returns
 * 0 or a negative errno with the sentence set.
 */
#ifndef EXAI_VM_BACKEND_H
#define EXAI_VM_BACKEND_H

#include <stdbool.h>
#include <sys/types.h>

struct exai_vm;
struct exai__agent;

struct exai__backend {
	const char *name;
	/* Whether this host can run it (binary present; KVM where it needs it). Sets the
	 * sentence when not. */
	int (*available)(bool *ret_kvm);
	/* Starts the confined VMM (exai__jail_spawn) and configures it. @incoming: for a
	 * restore, the guest must not boot; restore() follows. Sets vm->pid. */
	int (*start)(struct exai_vm *vm, bool incoming);
	/* Connects to the guest agent (retrying until @timeout_ms). */
	int (*agent_connect)(struct exai_vm *vm, struct exai__agent **ret, int timeout_ms);
	int (*pause)(struct exai_vm *vm);
	int (*resume)(struct exai_vm *vm);
	/* The paused VM's memory and device state, written to @fd as one stream. */
	int (*snapshot)(struct exai_vm *vm, int fd);
	/* Loads the stream read from @fd into a VM started with incoming = true; leaves it paused. */
	int (*restore)(struct exai_vm *vm, int fd);
	/* Asks the VMM to exit (the caller kills it if it does not). */
	int (*quit)(struct exai_vm *vm);
};

extern const struct exai__backend exai__backend_qemu;
extern const struct exai__backend exai__backend_firecracker;

#endif
