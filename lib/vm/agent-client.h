/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent-client.h: the host side of the agent protocol (docs/formats/agent.md). One
 * connection to one guest agent, used by one thread at a time. The guest is not trusted:
 * every frame is bounded, every field checked, and a guest that stops answering gets
 * -ETIMEDOUT rather than a hung caller.
 */
#ifndef EXAI_VM_AGENT_CLIENT_H
#define EXAI_VM_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct exai__agent;

/* Connects to a Unix socket that carries the protocol directly (QEMU's chardev socket of
 * the virtio-serial port, or `exai-agent --listen`), and does the handshake. Retries the
 * connection until @timeout_ms (the socket may not exist yet while the VMM starts). */
int exai__agent_connect_unix(struct exai__agent **ret, const char *path, int timeout_ms);
/* Connects through Firecracker's hybrid vsock: the Unix socket @uds, "CONNECT <port>\n",
 * "OK <n>\n", then the handshake. Retries until @timeout_ms (the agent may not listen yet). */
int exai__agent_connect_vsock(struct exai__agent **ret, const char *uds, uint32_t port,
			      int timeout_ms);
/* Handshake over an already connected @fd (taken over, closed by exai__agent_free). */
int exai__agent_open_fd(struct exai__agent **ret, int fd, int timeout_ms);
void exai__agent_free(struct exai__agent *a);
/* The connection's descriptor (still owned by @a). */
int exai__agent_fd(const struct exai__agent *a);
/* The name the agent announced in its HELLO (bounded, printable). */
const char *exai__agent_name(const struct exai__agent *a);

struct exai__agent_health {
	uint64_t uptime_ms, mem_avail_kib;
	uint32_t nprocs;
};
int exai__agent_health(struct exai__agent *a, struct exai__agent_health *ret, int timeout_ms);

struct exai__exec_req {
	const char *const *argv; /* NULL-terminated, argv[0] required */
	const char *const *envp; /* NULL-terminated "NAME=value", or NULL: the agent's default */
	const char *cwd;         /* NULL: "/" */
	int64_t uid, gid;        /* -1: the agent's (root) */
	uint64_t timeout_ms;     /* 0: none */
	uint32_t id;             /* 0: one is chosen; the process's id for attach/signal */
};

struct exai__exec_io {
	/* Output as it arrives; @stream is 1 (stdout) or 2 (stderr). A negative return stops
	 * waiting (the process keeps running in the guest and can be attached again). */
	int (*on_output)(void *ud, int stream, const void *p, size_t n);
	int stdin_fd;            /* read until EOF and streamed to the process; -1: none */
	const void *stdin_data;  /* or a buffer (when stdin_fd < 0); EOF after it */
	size_t stdin_len;
	/* Polled between frames: a signal number to forward to the process, or 0. */
	int (*pending_signal)(void *ud);
	void *ud;
	int idle_timeout_ms;     /* no frame at all for this long: -ETIMEDOUT; 0: none */
};

struct exai__exec_result {
	uint32_t id;
	uint32_t pid;
	int exit_code; /* -1 when killed by a signal */
	int signal;    /* 0 unless killed by one */
	bool timed_out;
};

/* Starts a process; *@ret_id is its id. Output produced meanwhile waits in the agent. */
int exai__agent_exec_start(struct exai__agent *a, const struct exai__exec_req *req, uint32_t *ret_id,
			   uint32_t *ret_pid);
/* Takes over a process by id (after exec_start, or after another client went away) and
 * streams its output, stdin and signals until it exits. */
int exai__agent_attach(struct exai__agent *a, uint32_t id, const struct exai__exec_io *io,
		       struct exai__exec_result *ret);
/* exec_start + attach. */
int exai__agent_exec(struct exai__agent *a, const struct exai__exec_req *req,
		     const struct exai__exec_io *io, struct exai__exec_result *ret);
/* Sends a signal to the process group of @id. */
int exai__agent_signal(struct exai__agent *a, uint32_t id, int sig);

/* Copies @local_fd (read to EOF; a regular file's size is announced) to @remote in the guest,
 * with @mode; the agent installs it only when the SHA-256 matches. @ret_sha may be NULL. */
int exai__agent_put(struct exai__agent *a, int local_fd, const char *remote, uint32_t mode,
		    uint8_t ret_sha[32]);
/* Copies @remote from the guest into @local_fd, at most @max_size bytes (0: no bound),
 * checking the SHA-256 the agent sends at the end. */
int exai__agent_get(struct exai__agent *a, const char *remote, int local_fd, uint64_t max_size,
		    uint8_t ret_sha[32]);

#endif
