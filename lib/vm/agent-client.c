/* SPDX-License-Identifier: Apache-2.0 */
/* agent-client.c: the host side of the agent protocol. See agent-client.h. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core-internal.h"
#include "agent-client.h"
#include "agent-proto.h"

/* Output queued towards the agent before the sender waits for the socket. */
#define OUT_HIGH (2u << 20)
/* Garbage skipped while looking for the agent's HELLO (stale bytes of an earlier session
 * on the virtio-serial port), at most. */
#define RESYNC_MAX (16u << 20)

struct exai__agent {
	int fd;
	bool hello_done;
	uint32_t peer_max;
	uint32_t next_id;
	char name[64];
	uint8_t *in;
	size_t in_len, in_used; /* in_used: bytes of the frame handed out last */
	struct exai__buf out;
	size_t out_off;
	uint8_t *wbuf; /* frame under construction: header + EXAI_AP_MAX_PAYLOAD */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t l = deadline - mono_ms();
	return l < 0 ? 0 : (int)(l > 1000000 ? 1000000 : l);
}

static int queue(struct exai__agent *a, struct exai_ap_w *w, uint8_t type, uint8_t flags,
		 uint32_t chan)
{
	long n = exai__ap_w_finish(w, type, flags, chan);
	if (n < 0 || (uint64_t)n - EXAI_AP_HDR_LEN > a->peer_max)
		return exai__err(-EMSGSIZE, "agent %s frame larger than the agent accepts (%u bytes)",
				 exai__ap_type_name(type), a->peer_max);
	if (exai__buf_append(&a->out, w->buf, (size_t)n) < 0)
		return exai__err(-ENOMEM, "out of memory");
	return 0;
}

static size_t out_pending(const struct exai__agent *a)
{
	return a->out.len - a->out_off;
}

/* One round of I/O: writes what it can, reads what it can, within @timeout_ms (-1: none).
 * Also polls @extra_fd for input when >= 0 and sets *@extra_ready. 0, or a negative errno
 * (-ETIMEDOUT when nothing happened at all, -ECONNRESET when the agent closed). */
static int pump(struct exai__agent *a, int timeout_ms, int extra_fd, bool *extra_ready)
{
	struct pollfd p[2] = { { .fd = a->fd, .events = POLLIN }, { .fd = extra_fd, .events = POLLIN } };
	size_t cap = EXAI_AP_HDR_LEN + (a->hello_done ? EXAI_AP_MAX_PAYLOAD : EXAI_AP_PREHELLO_MAX);
	if (a->in_len == cap)
		p[0].events = 0; /* a whole frame is waiting to be taken */
	if (out_pending(a))
		p[0].events |= POLLOUT;
	int n = poll(p, extra_fd >= 0 ? 2 : 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : exai__err_sys(exai__neg_errno(), "poll on the agent connection");
	if (n == 0)
		return -ETIMEDOUT;
	if (extra_ready)
		*extra_ready = extra_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR));
	if (p[0].revents & POLLOUT) {
		ssize_t w = send(a->fd, a->out.data + a->out_off, out_pending(a), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return exai__err_sys(-ECONNRESET, "writing to the agent");
		if (w > 0)
			a->out_off += (size_t)w;
		if (a->out_off == a->out.len)
			a->out_off = a->out.len = 0;
	}
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r = recv(a->fd, a->in + a->in_len, cap - a->in_len, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return exai__err(-ECONNRESET, "the agent closed the connection");
		if (r > 0)
			a->in_len += (size_t)r;
	}
	return 0;
}

/* The next whole frame from the buffer (valid until the next call), 1; 0 when none yet. */
static int take(struct exai__agent *a, struct exai_ap_frame *f)
{
	if (a->in_used) {
		memmove(a->in, a->in + a->in_used, a->in_len - a->in_used);
		a->in_len -= a->in_used;
		a->in_used = 0;
	}
	uint32_t max = a->hello_done ? EXAI_AP_MAX_PAYLOAD : EXAI_AP_PREHELLO_MAX;
	int r = exai__ap_decode(f, &a->in_used, a->in, a->in_len, max);
	if (r == -EMSGSIZE)
		return exai__err(-EPROTO, "the agent sent a frame over the %u-byte limit", max);
	if (r == -EBADMSG)
		return exai__err(-EPROTO, "the agent sent a frame with a bad magic");
	return r;
}

/* Waits for a frame until @deadline (-1: none). */
static int next_frame(struct exai__agent *a, struct exai_ap_frame *f, int64_t deadline)
{
	for (;;) {
		int r = take(a, f);
		if (r != 0)
			return r;
		r = pump(a, left_ms(deadline), -1, NULL);
		if (r == -ETIMEDOUT)
			return exai__err(-ETIMEDOUT, "the agent did not answer in time");
		if (r < 0)
			return r;
	}
}

/* Reads the TLVs of @f into the given u32/u64 slots. */
struct field {
	uint16_t tag;
	uint32_t *u32;
	uint64_t *u64;
	const uint8_t **bytes;
	uint32_t blen; /* required length of bytes */
	bool seen;
};

static int parse_fields(const struct exai_ap_frame *f, struct field *fs, size_t nfs)
{
	struct exai_ap_r r;
	uint16_t tag;
	const uint8_t *v;
	uint32_t vl;
	int rc;
	exai__ap_r_init(&r, f->payload, f->len);
	while ((rc = exai__ap_r_next(&r, &tag, &v, &vl)) > 0) {
		for (size_t i = 0; i < nfs; i++) {
			if (fs[i].tag != tag)
				continue;
			if (fs[i].u32)
				rc = exai__ap_val_u32(v, vl, fs[i].u32);
			else if (fs[i].u64)
				rc = exai__ap_val_u64(v, vl, fs[i].u64);
			else if (vl != fs[i].blen)
				rc = -EBADMSG;
			else
				*fs[i].bytes = v;
			if (rc < 0)
				return exai__err(-EPROTO, "the agent sent a malformed %s frame",
						 exai__ap_type_name(f->type));
			fs[i].seen = true;
		}
	}
	if (rc < 0)
		return exai__err(-EPROTO, "the agent sent a truncated %s frame", exai__ap_type_name(f->type));
	return 0;
}

/* Turns an ERROR frame into the matching return value and sentence. */
static int agent_error(const struct exai_ap_frame *f, const char *what)
{
	uint32_t code = EIO;
	char msg[256] = "";
	struct exai_ap_r r;
	uint16_t tag;
	const uint8_t *v;
	uint32_t vl;
	exai__ap_r_init(&r, f->payload, f->len);
	while (exai__ap_r_next(&r, &tag, &v, &vl) > 0) {
		if (tag == EXAI_AP_TAG_CODE && exai__ap_val_u32(v, vl, &code) == 0 && (code == 0 || code > 4095))
			code = EIO;
		if (tag == EXAI_AP_TAG_MESSAGE) {
			/* Bounded and printable only: the text comes from the guest. */
			size_t n = vl < sizeof(msg) - 1 ? vl : sizeof(msg) - 1;
			for (size_t i = 0; i < n; i++)
				msg[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? (char)v[i] : '?';
			msg[n] = '\0';
		}
	}
	return exai__err(-(int)code, "%s: the agent says: %s", what, msg[0] ? msg : "(no message)");
}

static int handshake(struct exai__agent *a, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct exai_ap_w w;
	struct exai_ap_frame f;
	size_t skipped = 0;

	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	a->peer_max = EXAI_AP_PREHELLO_MAX;
	long n = exai__ap_hello_build(&w, "libexai", EXAI_AP_MAX_PAYLOAD);
	if (n < 0 || exai__buf_append(&a->out, a->wbuf, (size_t)n) < 0)
		return exai__err(-ENOMEM, "out of memory");
	for (;;) {
		int r = exai__ap_decode(&f, &a->in_used, a->in, a->in_len, EXAI_AP_PREHELLO_MAX);
		if (r == 1 && f.type == EXAI_AP_T_HELLO)
			break;
		if (r != 0) {
			/* Not a HELLO at this position: stale bytes from an earlier session. */
			size_t drop = r == 1 ? a->in_used : 1;
			memmove(a->in, a->in + drop, a->in_len - drop);
			a->in_len -= drop;
			a->in_used = 0;
			if ((skipped += drop) > RESYNC_MAX)
				return exai__err(-EPROTO, "no HELLO from the agent in the first %u bytes", RESYNC_MAX);
			continue;
		}
		r = pump(a, left_ms(deadline), -1, NULL);
		if (r == -ETIMEDOUT)
			return exai__err(-ETIMEDOUT, "the agent did not say HELLO within %d ms", timeout_ms);
		if (r < 0)
			return r;
	}
	struct exai_ap_hello h;
	uint32_t version;
	if (exai__ap_hello_parse(&h, &f) < 0)
		return exai__err(-EPROTO, "the agent's HELLO is malformed");
	if (exai__ap_negotiate(&h, &version, &a->peer_max) < 0)
		return exai__err(-EPROTONOSUPPORT, "the agent speaks protocol versions %u..%u, libexai %u",
				 h.version_min, h.version_max, EXAI_AP_VERSION);
	for (size_t i = 0; h.name[i]; i++)
		a->name[i] = (h.name[i] >= 0x20 && h.name[i] < 0x7f) ? h.name[i] : '?';
	a->hello_done = true;
	/* Make sure our HELLO is out before anything else is sent. */
	while (out_pending(a)) {
		int r = pump(a, left_ms(deadline), -1, NULL);
		if (r == -ETIMEDOUT)
			return exai__err(-ETIMEDOUT, "the agent did not take our HELLO within %d ms", timeout_ms);
		if (r < 0)
			return r;
	}
	return 0;
}

int exai__agent_open_fd(struct exai__agent **ret, int fd, int timeout_ms)
{
	struct exai__agent *a = calloc(1, sizeof(*a));
	if (a) {
		a->in = malloc(EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
		a->wbuf = malloc(EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	}
	if (!a || !a->in || !a->wbuf) {
		if (a) {
			free(a->in);
			free(a->wbuf);
		}
		free(a);
		close(fd);
		return exai__err(-ENOMEM, "out of memory");
	}
	a->fd = fd;
	uint32_t seed;
	if (getentropy(&seed, sizeof(seed)) < 0)
		seed = (uint32_t)mono_ms();
	a->next_id = (seed & 0x3fffffff) | 1;
	int r = handshake(a, timeout_ms);
	if (r < 0) {
		exai__agent_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

void exai__agent_free(struct exai__agent *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a->in);
	free(a->wbuf);
	exai__buf_free(&a->out);
	free(a);
}

int exai__agent_fd(const struct exai__agent *a)
{
	return a->fd;
}

const char *exai__agent_name(const struct exai__agent *a)
{
	return a->name;
}

static int connect_retry(const char *path, int64_t deadline, int *ret_fd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path))
		return exai__err(-ENAMETOOLONG, "socket path %s is too long", path);
	strcpy(sun.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return exai__err_sys(exai__neg_errno(), "socket");
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			*ret_fd = fd;
			return 0;
		}
		int e = exai__neg_errno();
		close(fd);
		if ((e != -ENOENT && e != -ECONNREFUSED && e != -EAGAIN) || left_ms(deadline) == 0)
			return exai__err_sys(e, "cannot connect to %s", path);
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
	}
}

int exai__agent_connect_unix(struct exai__agent **ret, const char *path, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	int fd, r = connect_retry(path, deadline, &fd);
	if (r < 0)
		return r;
	return exai__agent_open_fd(ret, fd, left_ms(deadline));
}

int exai__agent_connect_vsock(struct exai__agent **ret, const char *uds, uint32_t port, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		int fd, r = connect_retry(uds, deadline, &fd);
		if (r < 0)
			return r;
		char req[32], line[33];
		size_t n = 0;
		snprintf(req, sizeof(req), "CONNECT %u\n", port);
		if (exai__write_all(fd, req, strlen(req)) == 0) {
			/* One byte at a time up to the LF, 32 at most: nothing of the guest's data may
			 * be consumed here. */
			while (n < 32) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				if (poll(&p, 1, left_ms(deadline)) <= 0 || read(fd, line + n, 1) != 1)
					break;
				if (line[n++] == '\n')
					break;
			}
		}
		line[n] = '\0';
		unsigned long hp;
		if (n > 3 && line[n - 1] == '\n' && sscanf(line, "OK %lu", &hp) == 1)
			return exai__agent_open_fd(ret, fd, left_ms(deadline));
		close(fd);
		/* Firecracker closes the connection while nobody listens on the guest port. */
		if (left_ms(deadline) == 0)
			return exai__err(-ETIMEDOUT, "the guest agent did not accept vsock port %u via %s in time",
					 port, uds);
		struct timespec ts = { 0, 50 * 1000000 };
		nanosleep(&ts, NULL);
	}
}

int exai__agent_health(struct exai__agent *a, struct exai__agent_health *ret, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	uint32_t chan = a->next_id++;
	struct exai_ap_w w;
	struct exai_ap_frame f;
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	int r = queue(a, &w, EXAI_AP_T_HEALTH, 0, chan);
	if (r < 0)
		return r;
	while ((r = next_frame(a, &f, deadline)) > 0) {
		if (f.chan != chan)
			continue;
		if (f.type == EXAI_AP_T_ERROR)
			return agent_error(&f, "health");
		if (f.type != EXAI_AP_T_HEALTH_REPLY)
			return exai__err(-EPROTO, "the agent answered HEALTH with %s", exai__ap_type_name(f.type));
		struct exai__agent_health h = { 0 };
		struct field fs[] = {
			{ .tag = EXAI_AP_TAG_UPTIME_MS, .u64 = &h.uptime_ms },
			{ .tag = EXAI_AP_TAG_MEM_AVAIL_KIB, .u64 = &h.mem_avail_kib },
			{ .tag = EXAI_AP_TAG_NPROCS, .u32 = &h.nprocs },
		};
		if ((r = parse_fields(&f, fs, EXAI__ARRAY_SIZE(fs))) < 0)
			return r;
		*ret = h;
		return 0;
	}
	return r;
}

int exai__agent_exec_start(struct exai__agent *a, const struct exai__exec_req *req, uint32_t *ret_id,
			   uint32_t *ret_pid)
{
	struct exai_ap_w w;
	struct exai_ap_frame f;
	int r;

	if (!req->argv || !req->argv[0])
		return exai__err(-EINVAL, "exec: argv is empty");
	uint32_t id = req->id ? req->id : a->next_id++;
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	for (size_t i = 0; req->argv[i]; i++)
		exai__ap_w_str(&w, EXAI_AP_TAG_ARG, req->argv[i]);
	for (size_t i = 0; req->envp && req->envp[i]; i++)
		exai__ap_w_str(&w, EXAI_AP_TAG_ENV, req->envp[i]);
	if (req->cwd)
		exai__ap_w_str(&w, EXAI_AP_TAG_CWD, req->cwd);
	if (req->uid >= 0)
		exai__ap_w_u32(&w, EXAI_AP_TAG_UID, (uint32_t)req->uid);
	if (req->gid >= 0)
		exai__ap_w_u32(&w, EXAI_AP_TAG_GID, (uint32_t)req->gid);
	if (req->timeout_ms)
		exai__ap_w_u64(&w, EXAI_AP_TAG_TIMEOUT_MS, req->timeout_ms);
	if ((r = queue(a, &w, EXAI_AP_T_EXEC, 0, id)) < 0)
		return exai__err(r, "exec: argv and environment exceed the agent's %u-byte frame", a->peer_max);
	int64_t deadline = mono_ms() + 30000;
	while ((r = next_frame(a, &f, deadline)) > 0) {
		if (f.chan != id)
			continue;
		if (f.type == EXAI_AP_T_ERROR)
			return agent_error(&f, req->argv[0]);
		if (f.type != EXAI_AP_T_STARTED)
			return exai__err(-EPROTO, "the agent answered EXEC with %s", exai__ap_type_name(f.type));
		uint32_t pid = 0;
		struct field fs[] = { { .tag = EXAI_AP_TAG_PID, .u32 = &pid } };
		if ((r = parse_fields(&f, fs, 1)) < 0)
			return r;
		*ret_id = id;
		if (ret_pid)
			*ret_pid = pid;
		return 0;
	}
	return r;
}

int exai__agent_signal(struct exai__agent *a, uint32_t id, int sig)
{
	struct exai_ap_w w;
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	exai__ap_w_u32(&w, EXAI_AP_TAG_SIGNAL, (uint32_t)sig);
	return queue(a, &w, EXAI_AP_T_SIGNAL, 0, id);
}

static int queue_stdin(struct exai__agent *a, uint32_t id, const void *p, size_t n, bool eof)
{
	struct exai_ap_w w;
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	exai__ap_w_raw(&w, p, n);
	return queue(a, &w, EXAI_AP_T_STDIN, eof ? EXAI_AP_F_EOF : 0, id);
}

/* Streams process @id until its EXIT. @attached: the process is this session's already (it
 * started here: its output may precede any ATTACHED, which is then never sent); otherwise
 * an ATTACH is sent and stdin waits for ATTACHED. */
static int wait_proc(struct exai__agent *a, uint32_t id, uint32_t pid, bool attached,
		     const struct exai__exec_io *io, struct exai__exec_result *ret)
{
	static const struct exai__exec_io none = { .stdin_fd = -1 };
	struct exai_ap_w w;
	struct exai_ap_frame f;
	struct exai__exec_result res = { .id = id, .pid = pid, .exit_code = -1 };
	int r;

	if (!io)
		io = &none;
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	if (!attached && (r = queue(a, &w, EXAI_AP_T_ATTACH, 0, id)) < 0)
		return r;
	bool stdin_open = io->stdin_fd >= 0;
	size_t data_off = 0;
	bool data_done = io->stdin_fd >= 0 || !io->stdin_data;
	size_t chunk = a->peer_max < (64u << 10) ? a->peer_max : (64u << 10);
	int64_t idle_deadline = io->idle_timeout_ms ? mono_ms() + io->idle_timeout_ms : -1;

	for (;;) {
		/* Feed stdin while the outgoing queue has room (only once attached). */
		if (attached && !data_done && out_pending(a) < OUT_HIGH) {
			size_t n = io->stdin_len - data_off < chunk ? io->stdin_len - data_off : chunk;
			data_done = data_off + n == io->stdin_len;
			if ((r = queue_stdin(a, id, (const char *)io->stdin_data + data_off, n, data_done)) < 0)
				return r;
			data_off += n;
		}
		if (attached && io->pending_signal) {
			int sig = io->pending_signal(io->ud);
			if (sig > 0 && (r = exai__agent_signal(a, id, sig)) < 0)
				return r;
		}
		while ((r = take(a, &f)) > 0) {
			if (f.chan != id)
				continue; /* another process's leftovers: not ours to report */
			if (io->idle_timeout_ms)
				idle_deadline = mono_ms() + io->idle_timeout_ms;
			switch (f.type) {
			case EXAI_AP_T_ATTACHED: {
				struct field fs[] = { { .tag = EXAI_AP_TAG_PID, .u32 = &res.pid } };
				if ((r = parse_fields(&f, fs, 1)) < 0)
					return r;
				attached = true;
				break;
			}
			case EXAI_AP_T_STDOUT:
			case EXAI_AP_T_STDERR:
				if (io->on_output &&
				    io->on_output(io->ud, f.type == EXAI_AP_T_STDOUT ? 1 : 2, f.payload, f.len) < 0)
					return exai__err(-ECANCELED, "stopped waiting for process %u", id);
				break;
			case EXAI_AP_T_EXIT: {
				uint32_t code = 0, sig = 0, to = 0;
				struct field fs[] = {
					{ .tag = EXAI_AP_TAG_EXIT_CODE, .u32 = &code },
					{ .tag = EXAI_AP_TAG_SIGNAL, .u32 = &sig },
					{ .tag = EXAI_AP_TAG_TIMED_OUT, .u32 = &to },
				};
				if ((r = parse_fields(&f, fs, EXAI__ARRAY_SIZE(fs))) < 0)
					return r;
				if (code > 255 || sig > 64 || (fs[0].seen == fs[1].seen))
					return exai__err(-EPROTO, "the agent sent an impossible exit status");
				res.exit_code = fs[0].seen ? (int)code : -1;
				res.signal = (int)sig;
				res.timed_out = to != 0;
				*ret = res;
				return 0;
			}
			case EXAI_AP_T_ERROR:
				return agent_error(&f, "process");
			default:
				return exai__err(-EPROTO, "unexpected %s frame for process %u",
						 exai__ap_type_name(f.type), id);
			}
		}
		if (r < 0)
			return r;
		bool ready = false;
		int fd = (attached && stdin_open && out_pending(a) < OUT_HIGH) ? io->stdin_fd : -1;
		int t = left_ms(idle_deadline);
		if (io->pending_signal && (t < 0 || t > 100))
			t = 100;
		r = pump(a, t, fd, &ready);
		if (r == -ETIMEDOUT) {
			if (idle_deadline >= 0 && left_ms(idle_deadline) == 0)
				return exai__err(-ETIMEDOUT, "no word from the agent about process %u for %d ms",
						 id, io->idle_timeout_ms);
			continue;
		}
		if (r < 0)
			return r;
		if (ready) {
			char buf[64 << 10];
			ssize_t n = read(io->stdin_fd, buf, chunk < sizeof(buf) ? chunk : sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				stdin_open = false;
			if ((r = queue_stdin(a, id, buf, n > 0 ? (size_t)n : 0, n <= 0)) < 0)
				return r;
		}
	}
}

int exai__agent_attach(struct exai__agent *a, uint32_t id, const struct exai__exec_io *io,
		       struct exai__exec_result *ret)
{
	return wait_proc(a, id, 0, false, io, ret);
}

int exai__agent_exec(struct exai__agent *a, const struct exai__exec_req *req,
		     const struct exai__exec_io *io, struct exai__exec_result *ret)
{
	uint32_t id, pid;
	int r = exai__agent_exec_start(a, req, &id, &pid);
	if (r < 0)
		return r;
	return wait_proc(a, id, pid, true, io, ret);
}

/* Waits for the answer to a transfer on @chan, while sending what is queued. */
static int xfer_wait(struct exai__agent *a, uint32_t chan, int64_t deadline, struct exai_ap_frame *f,
		     const char *what)
{
	int r;
	while ((r = next_frame(a, f, deadline)) > 0) {
		if (f->chan != chan)
			continue;
		if (f->type == EXAI_AP_T_ERROR)
			return agent_error(f, what);
		return 1;
	}
	return r;
}

int exai__agent_put(struct exai__agent *a, int local_fd, const char *remote, uint32_t mode,
		    uint8_t ret_sha[32])
{
	struct stat st;
	struct exai_ap_w w;
	struct exai_ap_frame f;
	struct exai_ap_sha256 sha;
	uint8_t sum[32];
	int r;

	if (!remote || remote[0] != '/' || strlen(remote) > EXAI_AP_MAX_PATH)
		return exai__err(-EINVAL, "put: the guest path must be absolute (and at most %u bytes)",
				 EXAI_AP_MAX_PATH);
	if (fstat(local_fd, &st) < 0 || !S_ISREG(st.st_mode))
		return exai__err(-EINVAL, "put: the source of %s is not a regular file", remote);
	uint64_t size = (uint64_t)st.st_size;
	uint32_t chan = a->next_id++;
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	exai__ap_w_str(&w, EXAI_AP_TAG_PATH, remote);
	exai__ap_w_u32(&w, EXAI_AP_TAG_MODE, mode & 07777);
	exai__ap_w_u64(&w, EXAI_AP_TAG_SIZE, size);
	if ((r = queue(a, &w, EXAI_AP_T_PUT, 0, chan)) < 0)
		return r;
	exai__ap_sha256_init(&sha);
	size_t chunk = a->peer_max < EXAI_AP_CHUNK ? a->peer_max : EXAI_AP_CHUNK;
	uint64_t sent = 0;
	while (sent < size) {
		if (out_pending(a) >= OUT_HIGH) {
			r = pump(a, 60000, -1, NULL);
			if (r == -ETIMEDOUT)
				return exai__err(-ETIMEDOUT, "put %s: the agent stopped reading", remote);
			if (r < 0)
				return r;
			/* An early ERROR (cannot create the file) ends the transfer. */
			while ((r = take(a, &f)) > 0)
				if (f.chan == chan && f.type == EXAI_AP_T_ERROR)
					return agent_error(&f, remote);
			if (r < 0)
				return r;
			continue;
		}
		exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
		size_t want = size - sent < chunk ? (size_t)(size - sent) : chunk;
		ssize_t n = read(local_fd, a->wbuf + EXAI_AP_HDR_LEN, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return exai__err(n < 0 ? exai__neg_errno() : -EIO,
					 "put %s: the local file shrank or cannot be read", remote);
		w.len += (size_t)n;
		exai__ap_sha256_update(&sha, a->wbuf + EXAI_AP_HDR_LEN, (size_t)n);
		if ((r = queue(a, &w, EXAI_AP_T_DATA, 0, chan)) < 0)
			return r;
		sent += (uint64_t)n;
	}
	exai__ap_sha256_final(&sha, sum);
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	exai__ap_w_u64(&w, EXAI_AP_TAG_SIZE, size);
	exai__ap_w_bytes(&w, EXAI_AP_TAG_SHA256, sum, 32);
	if ((r = queue(a, &w, EXAI_AP_T_END, 0, chan)) < 0)
		return r;
	if ((r = xfer_wait(a, chan, mono_ms() + 120000, &f, remote)) < 0)
		return r;
	const uint8_t *got = NULL;
	uint64_t got_size = 0;
	struct field fs[] = { { .tag = EXAI_AP_TAG_SIZE, .u64 = &got_size },
			      { .tag = EXAI_AP_TAG_SHA256, .bytes = &got, .blen = 32 } };
	if (f.type != EXAI_AP_T_PUT_DONE)
		return exai__err(-EPROTO, "the agent answered PUT with %s", exai__ap_type_name(f.type));
	if ((r = parse_fields(&f, fs, 2)) < 0)
		return r;
	if (!got || got_size != size || memcmp(got, sum, 32) != 0)
		return exai__err(-EBADMSG, "put %s: the agent reports another size or checksum", remote);
	if (ret_sha)
		memcpy(ret_sha, sum, 32);
	return 0;
}

int exai__agent_get(struct exai__agent *a, const char *remote, int local_fd, uint64_t max_size,
		    uint8_t ret_sha[32])
{
	struct exai_ap_w w;
	struct exai_ap_frame f;
	struct exai_ap_sha256 sha;
	uint64_t size = 0, got = 0;
	bool have_info = false;
	int r;

	if (!remote || remote[0] != '/' || strlen(remote) > EXAI_AP_MAX_PATH)
		return exai__err(-EINVAL, "get: the guest path must be absolute (and at most %u bytes)",
				 EXAI_AP_MAX_PATH);
	uint32_t chan = a->next_id++;
	exai__ap_w_init(&w, a->wbuf, EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
	exai__ap_w_str(&w, EXAI_AP_TAG_PATH, remote);
	if ((r = queue(a, &w, EXAI_AP_T_GET, 0, chan)) < 0)
		return r;
	exai__ap_sha256_init(&sha);
	for (;;) {
		if ((r = xfer_wait(a, chan, mono_ms() + 60000, &f, remote)) < 0)
			return r;
		if (f.type == EXAI_AP_T_GET_INFO && !have_info) {
			uint32_t mode = 0;
			struct field fs[] = { { .tag = EXAI_AP_TAG_SIZE, .u64 = &size },
					      { .tag = EXAI_AP_TAG_MODE, .u32 = &mode } };
			if ((r = parse_fields(&f, fs, 2)) < 0)
				return r;
			if (!fs[0].seen)
				return exai__err(-EPROTO, "get %s: the agent announced no size", remote);
			if (max_size && size > max_size)
				return exai__err(-EFBIG, "get %s: %llu bytes, more than the %llu allowed", remote,
						 (unsigned long long)size, (unsigned long long)max_size);
			have_info = true;
		} else if (f.type == EXAI_AP_T_DATA && have_info) {
			if (f.len > size - got)
				return exai__err(-EPROTO, "get %s: the agent sent more than the %llu bytes it announced",
						 remote, (unsigned long long)size);
			if ((r = exai__write_all(local_fd, f.payload, f.len)) < 0)
				return exai__err_sys(r, "get %s: writing the local copy", remote);
			exai__ap_sha256_update(&sha, f.payload, f.len);
			got += f.len;
		} else if (f.type == EXAI_AP_T_END && have_info) {
			const uint8_t *want = NULL;
			uint64_t end_size = 0;
			uint8_t sum[32];
			struct field fs[] = { { .tag = EXAI_AP_TAG_SIZE, .u64 = &end_size },
					      { .tag = EXAI_AP_TAG_SHA256, .bytes = &want, .blen = 32 } };
			if ((r = parse_fields(&f, fs, 2)) < 0)
				return r;
			exai__ap_sha256_final(&sha, sum);
			if (!want || end_size != got || got != size)
				return exai__err(-EBADMSG, "get %s: got %llu bytes, the agent announced %llu",
						 remote, (unsigned long long)got, (unsigned long long)size);
			if (memcmp(want, sum, 32) != 0)
				return exai__err(-EBADMSG, "get %s: SHA-256 mismatch", remote);
			if (ret_sha)
				memcpy(ret_sha, sum, 32);
			return 0;
		} else {
			return exai__err(-EPROTO, "get %s: unexpected %s frame", remote, exai__ap_type_name(f.type));
		}
	}
}
