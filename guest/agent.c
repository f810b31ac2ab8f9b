/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exai-agent: the guest side of libexai's agent protocol (docs/formats/agent.md).
 *
 * Runs as PID 1 of the guest's initramfs: mounts the pseudo file systems, loads the kernel
 * modules listed in /lib/modules/exai.order, configures the network from the kernel command
 * line (exai.ip=ADDR/PREFIX exai.gw=ADDR exai.mac=MAC exai.dns=ADDR), reaps every child, and
 * serves the protocol on the virtio-serial port named "exai.agent" (QEMU) and on AF_VSOCK port
 * 5252 when the kernel has vsock (Firecracker). Outside a VM (not PID 1) it serves a Unix
 * socket (--listen PATH) or one inherited descriptor (--fd N), so that the protocol is tested
 * end to end on the host.
 *
 * Everything the host sends is bounded: frame size, argument counts and lengths, per-process
 * buffers, concurrent processes and transfers, and the output queued per connection.
 * Depends on libc and lib/vm/agent-proto.c only; built with -static for the guest image.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __has_include
#if __has_include(<linux/vm_sockets.h>)
#include <linux/vm_sockets.h>
#define HAVE_VSOCK 1
#endif
#endif

#include "agent-proto.h"

#define MAX_SESSIONS 8
#define MAX_PROCS 64
#define MAX_XFERS 4            /* per session */
#define OUTQ_HIGH (2u << 20)   /* stop producing stream data above this much queued output */
#define OUTQ_HARD (8u << 20)   /* stop reading a connection above this */
#define PROC_BUF (256u << 10)  /* per output stream of a process */
#define STDIN_BUF (1u << 20)   /* per process, queued towards its stdin */
#define STREAM_CHUNK (64u << 10)

extern char **environ;

struct bytes {
	uint8_t *p;
	size_t off, len, cap; /* live bytes are p[off..len) */
};

struct xfer {
	bool used, is_get;
	uint32_t chan;
	int fd;
	char *path, *tmp;
	uint64_t size, done;
	uint32_t mode;
	struct exai_ap_sha256 sha;
};

struct session {
	bool used, is_port, hup;
	int fd;
	bool hello_done;
	uint32_t peer_max;
	uint8_t *in;
	size_t in_len;
	struct bytes out;
	struct xfer xfers[MAX_XFERS];
};

struct proc {
	bool used, exited, timed_out, stdin_eof;
	uint32_t id;
	pid_t pid;
	int fd_in, fd_out, fd_err;
	struct bytes obuf, ebuf, ibuf;
	struct session *sess;
	int status;
	uint64_t deadline_ms;
};

static struct session sessions[MAX_SESSIONS];
static struct proc procs[MAX_PROCS];
static uint8_t scratch[EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD];
static bool pid1;
static uint64_t start_ms;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "exai-agent: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- byte queues -------------------------------------------------------------------------- */

static size_t bytes_avail(const struct bytes *b)
{
	return b->len - b->off;
}

static int bytes_append(struct bytes *b, const void *p, size_t n)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len < n && b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n)
			cap *= 2;
		uint8_t *np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void bytes_consume(struct bytes *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static void bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Reads what @fd has (non-blocking) into @b up to @limit bytes queued: 1 on data, 0 on EOF,
 * -EAGAIN when nothing is there or the queue is full, other negative errno on error. */
static int bytes_read_fd(struct bytes *b, int fd, size_t limit)
{
	uint8_t buf[STREAM_CHUNK];
	size_t room = bytes_avail(b) < limit ? limit - bytes_avail(b) : 0;
	if (!room)
		return -EAGAIN;
	ssize_t n = read(fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (n == 0)
		return 0;
	return bytes_append(b, buf, (size_t)n) < 0 ? -ENOMEM : 1;
}

/* ---- sending ------------------------------------------------------------------------------ */

static void send_built(struct session *s, struct exai_ap_w *w, uint8_t type, uint8_t flags,
		       uint32_t chan)
{
	long n = exai__ap_w_finish(w, type, flags, chan);
	if (n < 0 || (uint32_t)(n - (long)EXAI_AP_HDR_LEN) > s->peer_max) {
		say("dropping an oversized %s frame", exai__ap_type_name(type));
		return;
	}
	if (bytes_append(&s->out, w->buf, (size_t)n) < 0)
		say("out of memory queueing a %s frame", exai__ap_type_name(type));
}

static void send_raw(struct session *s, uint8_t type, uint8_t flags, uint32_t chan,
		     const void *p, size_t n)
{
	struct exai_ap_w w;
	exai__ap_w_init(&w, scratch, sizeof(scratch));
	exai__ap_w_raw(&w, p, n);
	send_built(s, &w, type, flags, chan);
}

static void send_error(struct session *s, uint32_t chan, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void send_error(struct session *s, uint32_t chan, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct exai_ap_w w;
	exai__ap_w_init(&w, scratch, sizeof(scratch));
	exai__ap_w_u32(&w, EXAI_AP_TAG_CODE, (uint32_t)(err < 0 ? -err : err));
	exai__ap_w_str(&w, EXAI_AP_TAG_MESSAGE, msg);
	send_built(s, &w, EXAI_AP_T_ERROR, 0, chan);
}

/* ---- processes ---------------------------------------------------------------------------- */

static struct proc *proc_find(uint32_t id)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i].used && procs[i].id == id)
			return &procs[i];
	return NULL;
}

static struct xfer *xfer_find(struct session *s, uint32_t chan)
{
	for (int i = 0; i < MAX_XFERS; i++)
		if (s->xfers[i].used && s->xfers[i].chan == chan)
			return &s->xfers[i];
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void proc_free(struct proc *p)
{
	close_fd(&p->fd_in);
	close_fd(&p->fd_out);
	close_fd(&p->fd_err);
	bytes_free(&p->obuf);
	bytes_free(&p->ebuf);
	bytes_free(&p->ibuf);
	memset(p, 0, sizeof(*p));
	p->fd_in = p->fd_out = p->fd_err = -1;
}

struct exec_req {
	char *argv[EXAI_AP_MAX_ARGS + 1];
	char *envp[EXAI_AP_MAX_ARGS + 1];
	size_t argc, envc;
	char *cwd;
	uint32_t uid, gid;
	bool have_uid, have_gid;
	uint64_t timeout_ms;
};

static void exec_req_free(struct exec_req *r)
{
	for (size_t i = 0; i < r->argc; i++)
		free(r->argv[i]);
	for (size_t i = 0; i < r->envc; i++)
		free(r->envp[i]);
	free(r->cwd);
}

static int exec_req_parse(struct exec_req *r, const struct exai_ap_frame *f, const char **why)
{
	struct exai_ap_r rd;
	uint16_t tag;
	const uint8_t *v;
	uint32_t vl;
	int rc;

	exai__ap_r_init(&rd, f->payload, f->len);
	while ((rc = exai__ap_r_next(&rd, &tag, &v, &vl)) > 0) {
		switch (tag) {
		case EXAI_AP_TAG_ARG:
			if (r->argc == EXAI_AP_MAX_ARGS)
				return *why = "more than 4096 arguments", -E2BIG;
			if ((rc = exai__ap_val_str(v, vl, EXAI_AP_MAX_STR, &r->argv[r->argc])) < 0)
				return *why = "an argument is too long or contains NUL", rc;
			r->argc++;
			break;
		case EXAI_AP_TAG_ENV:
			if (r->envc == EXAI_AP_MAX_ARGS)
				return *why = "more than 4096 environment entries", -E2BIG;
			if ((rc = exai__ap_val_str(v, vl, EXAI_AP_MAX_STR, &r->envp[r->envc])) < 0)
				return *why = "an environment entry is too long or contains NUL", rc;
			r->envc++;
			if (!strchr(r->envp[r->envc - 1], '=') || r->envp[r->envc - 1][0] == '=')
				return *why = "an environment entry is not NAME=value", -EINVAL;
			break;
		case EXAI_AP_TAG_CWD:
			free(r->cwd);
			r->cwd = NULL;
			if ((rc = exai__ap_val_str(v, vl, EXAI_AP_MAX_PATH, &r->cwd)) < 0 || r->cwd[0] != '/')
				return *why = "cwd is not an absolute path", rc < 0 ? rc : -EINVAL;
			break;
		case EXAI_AP_TAG_UID:
			r->have_uid = true;
			if ((rc = exai__ap_val_u32(v, vl, &r->uid)) < 0)
				return *why = "uid is not a u32", rc;
			break;
		case EXAI_AP_TAG_GID:
			r->have_gid = true;
			if ((rc = exai__ap_val_u32(v, vl, &r->gid)) < 0)
				return *why = "gid is not a u32", rc;
			break;
		case EXAI_AP_TAG_TIMEOUT_MS:
			if ((rc = exai__ap_val_u64(v, vl, &r->timeout_ms)) < 0)
				return *why = "timeout_ms is not a u64", rc;
			break;
		default:
			break;
		}
	}
	if (rc < 0)
		return *why = "truncated TLV", rc;
	if (!r->argc)
		return *why = "no argv", -EINVAL;
	return 0;
}

static void child_exec(struct exec_req *r, int in, int out, int err, int errpipe)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	setsid();
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto fail;
	if (chdir(r->cwd ? r->cwd : "/") < 0)
		goto fail;
	if (r->have_gid || r->have_uid) {
		gid_t gid = r->have_gid ? r->gid : r->uid;
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0)
			goto fail;
	}
	if (r->have_uid && setresuid(r->uid, r->uid, r->uid) < 0)
		goto fail;
	static char *default_env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				       "HOME=/", "TERM=dumb", NULL };
	r->envp[r->envc] = NULL;
	r->argv[r->argc] = NULL;
	environ = r->envc ? r->envp : default_env;
	if (!getenv("PATH"))
		putenv(default_env[0]);
	execvp(r->argv[0], r->argv);
fail:;
	int e = errno;
	if (write(errpipe, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static void handle_exec(struct session *s, const struct exai_ap_frame *f)
{
	struct exec_req *r = calloc(1, sizeof(*r));
	const char *why = "";
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, pe[2] = { -1, -1 };
	struct proc *p = NULL;
	int rc;

	if (!r) {
		send_error(s, f->chan, ENOMEM, "out of memory");
		return;
	}
	if (f->chan == 0 || proc_find(f->chan) || xfer_find(s, f->chan)) {
		send_error(s, f->chan, EEXIST, "channel %u is 0 or already in use", f->chan);
		goto out;
	}
	if ((rc = exec_req_parse(r, f, &why)) < 0) {
		send_error(s, f->chan, rc, "bad EXEC: %s", why);
		goto out;
	}
	for (int i = 0; i < MAX_PROCS && !p; i++)
		if (!procs[i].used)
			p = &procs[i];
	if (!p) {
		send_error(s, f->chan, EAGAIN, "the agent already tracks %d processes", MAX_PROCS);
		goto out;
	}
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 ||
	    pipe2(pe, O_CLOEXEC) < 0) {
		send_error(s, f->chan, errno, "pipe: %s", strerror(errno));
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		send_error(s, f->chan, errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(r, pin[0], pout[1], perr[1], pe[1]);
	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	close_fd(&pe[1]);
	int e = 0;
	ssize_t n;
	do
		n = read(pe[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(e)) {
		/* exec failed: the child exits 127; SIGCHLD reaps it as an unknown pid. */
		send_error(s, f->chan, e, "cannot execute %s: %s", r->argv[0], strerror(e));
		goto out;
	}
	memset(p, 0, sizeof(*p));
	p->used = true;
	p->id = f->chan;
	p->pid = pid;
	p->fd_in = pin[1];
	p->fd_out = pout[0];
	p->fd_err = perr[0];
	pin[1] = pout[0] = perr[0] = -1;
	fcntl(p->fd_in, F_SETFL, O_NONBLOCK);
	fcntl(p->fd_out, F_SETFL, O_NONBLOCK);
	fcntl(p->fd_err, F_SETFL, O_NONBLOCK);
	p->sess = s;
	p->deadline_ms = r->timeout_ms ? now_ms() + r->timeout_ms : 0;
	struct exai_ap_w w;
	exai__ap_w_init(&w, scratch, sizeof(scratch));
	exai__ap_w_u32(&w, EXAI_AP_TAG_PID, (uint32_t)pid);
	send_built(s, &w, EXAI_AP_T_STARTED, 0, f->chan);
out:
	close_fd(&pin[0]);
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&pout[1]);
	close_fd(&perr[0]);
	close_fd(&perr[1]);
	close_fd(&pe[0]);
	close_fd(&pe[1]);
	exec_req_free(r);
	free(r);
}

/* Moves a process's buffered output to its session, then its exit status once all is out. */
/* Reads what the process's pipes hold now; true when something was read. */
static bool proc_read_pipes(struct proc *p)
{
	int rc;
	size_t before = bytes_avail(&p->obuf) + bytes_avail(&p->ebuf);
	while (p->fd_out >= 0 && (rc = bytes_read_fd(&p->obuf, p->fd_out, PROC_BUF)) != -EAGAIN)
		if (rc <= 0)
			close_fd(&p->fd_out);
	while (p->fd_err >= 0 && (rc = bytes_read_fd(&p->ebuf, p->fd_err, PROC_BUF)) != -EAGAIN)
		if (rc <= 0)
			close_fd(&p->fd_err);
	return bytes_avail(&p->obuf) + bytes_avail(&p->ebuf) > before;
}

/* Moves a process's buffered output to its session, then its exit status once all is out. */
static void proc_pump(struct proc *p)
{
	proc_read_pipes(p);
	while (p->fd_in >= 0 && bytes_avail(&p->ibuf)) {
		ssize_t n = write(p->fd_in, p->ibuf.p + p->ibuf.off, bytes_avail(&p->ibuf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/* EPIPE: the process closed its stdin; drop what it will never read. */
			p->ibuf.off = p->ibuf.len = 0;
			close_fd(&p->fd_in);
			break;
		}
		bytes_consume(&p->ibuf, (size_t)n);
	}
	if (p->stdin_eof && !bytes_avail(&p->ibuf))
		close_fd(&p->fd_in);

	struct session *s = p->sess;
	if (!s)
		return;
	size_t chunk = s->peer_max < STREAM_CHUNK ? s->peer_max : STREAM_CHUNK;
	struct bytes *bufs[2] = { &p->obuf, &p->ebuf };
	do {
		for (int k = 0; k < 2; k++) {
			struct bytes *b = bufs[k];
			while (bytes_avail(b) && bytes_avail(&s->out) < OUTQ_HIGH) {
				size_t n = bytes_avail(b) < chunk ? bytes_avail(b) : chunk;
				send_raw(s, k ? EXAI_AP_T_STDERR : EXAI_AP_T_STDOUT, 0, p->id,
					 b->p + b->off, n);
				bytes_consume(b, n);
			}
		}
		if (!p->exited || bytes_avail(&p->obuf) || bytes_avail(&p->ebuf))
			return;
		/* Exited and the buffers are out: report once the pipes hold nothing more. A
		 * background grandchild that keeps them open does not hold the exit back. */
	} while (proc_read_pipes(p));
	struct exai_ap_w w;
	exai__ap_w_init(&w, scratch, sizeof(scratch));
	if (WIFEXITED(p->status))
		exai__ap_w_u32(&w, EXAI_AP_TAG_EXIT_CODE, (uint32_t)WEXITSTATUS(p->status));
	else if (WIFSIGNALED(p->status))
		exai__ap_w_u32(&w, EXAI_AP_TAG_SIGNAL, (uint32_t)WTERMSIG(p->status));
	if (p->timed_out)
		exai__ap_w_u32(&w, EXAI_AP_TAG_TIMED_OUT, 1);
	send_built(s, &w, EXAI_AP_T_EXIT, 0, p->id);
	proc_free(p);
}

static void reap_children(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_PROCS; i++) {
			if (procs[i].used && procs[i].pid == pid && !procs[i].exited) {
				procs[i].exited = true;
				procs[i].status = status;
			}
		}
	}
}

/* ---- file transfers ----------------------------------------------------------------------- */

static void xfer_free(struct xfer *x)
{
	if (x->fd >= 0)
		close(x->fd);
	if (x->tmp)
		unlink(x->tmp);
	free(x->tmp);
	free(x->path);
	memset(x, 0, sizeof(*x));
	x->fd = -1;
}

static struct xfer *xfer_new(struct session *s, uint32_t chan)
{
	if (chan == 0 || proc_find(chan) || xfer_find(s, chan)) {
		send_error(s, chan, EEXIST, "channel %u is 0 or already in use", chan);
		return NULL;
	}
	for (int i = 0; i < MAX_XFERS; i++) {
		if (!s->xfers[i].used) {
			struct xfer *x = &s->xfers[i];
			memset(x, 0, sizeof(*x));
			x->used = true;
			x->chan = chan;
			x->fd = -1;
			exai__ap_sha256_init(&x->sha);
			return x;
		}
	}
	send_error(s, chan, EAGAIN, "at most %d transfers per connection", MAX_XFERS);
	return NULL;
}

static int parse_path_req(const struct exai_ap_frame *f, char **path, uint32_t *mode,
			  uint64_t *size, bool *have_size)
{
	struct exai_ap_r rd;
	uint16_t tag;
	const uint8_t *v;
	uint32_t vl;
	int rc;
	exai__ap_r_init(&rd, f->payload, f->len);
	while ((rc = exai__ap_r_next(&rd, &tag, &v, &vl)) > 0) {
		if (tag == EXAI_AP_TAG_PATH && !*path)
			rc = exai__ap_val_str(v, vl, EXAI_AP_MAX_PATH, path);
		else if (tag == EXAI_AP_TAG_MODE && mode)
			rc = exai__ap_val_u32(v, vl, mode);
		else if (tag == EXAI_AP_TAG_SIZE && size) {
			rc = exai__ap_val_u64(v, vl, size);
			*have_size = true;
		}
		if (rc < 0)
			return rc;
	}
	if (rc < 0 || !*path || (*path)[0] != '/')
		return -EINVAL;
	return 0;
}

static void handle_put(struct session *s, const struct exai_ap_frame *f)
{
	struct xfer *x = xfer_new(s, f->chan);
	if (!x)
		return;
	bool have_size = false;
	x->mode = 0644;
	if (parse_path_req(f, &x->path, &x->mode, &x->size, &have_size) < 0 || !have_size) {
		send_error(s, f->chan, EINVAL, "bad PUT: PATH (absolute) and SIZE are required");
		xfer_free(x);
		return;
	}
	if (asprintf(&x->tmp, "%s.exai-put-%u", x->path, f->chan) < 0) {
		x->tmp = NULL;
		send_error(s, f->chan, ENOMEM, "out of memory");
		xfer_free(x);
		return;
	}
	x->fd = open(x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (x->fd < 0) {
		int e = errno;
		free(x->tmp);
		x->tmp = NULL;
		send_error(s, f->chan, e, "cannot create %s: %s", x->path, strerror(e));
		xfer_free(x);
	}
}

static void handle_data(struct session *s, const struct exai_ap_frame *f)
{
	struct xfer *x = xfer_find(s, f->chan);
	if (!x || x->is_get) {
		send_error(s, f->chan, ENOENT, "no upload on channel %u", f->chan);
		return;
	}
	if (f->len > x->size - x->done) {
		send_error(s, f->chan, EFBIG, "more data than the announced %llu bytes",
			   (unsigned long long)x->size);
		xfer_free(x);
		return;
	}
	const uint8_t *p = f->payload;
	size_t n = f->len;
	while (n) {
		ssize_t w = write(x->fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			send_error(s, f->chan, errno, "writing %s: %s", x->path, strerror(errno));
			xfer_free(x);
			return;
		}
		p += w;
		n -= (size_t)w;
	}
	exai__ap_sha256_update(&x->sha, f->payload, f->len);
	x->done += f->len;
}

static void handle_end(struct session *s, const struct exai_ap_frame *f)
{
	struct xfer *x = xfer_find(s, f->chan);
	struct exai_ap_r rd;
	uint16_t tag;
	const uint8_t *v = NULL, *want = NULL;
	uint32_t vl;
	uint8_t got[32];
	int rc;

	if (!x || x->is_get) {
		send_error(s, f->chan, ENOENT, "no upload on channel %u", f->chan);
		return;
	}
	exai__ap_r_init(&rd, f->payload, f->len);
	while ((rc = exai__ap_r_next(&rd, &tag, &v, &vl)) > 0)
		if (tag == EXAI_AP_TAG_SHA256 && vl == 32)
			want = v;
	exai__ap_sha256_final(&x->sha, got);
	if (rc < 0 || !want) {
		send_error(s, f->chan, EINVAL, "bad END: SHA256 (32 bytes) is required");
	} else if (x->done != x->size) {
		send_error(s, f->chan, EBADMSG, "%s: got %llu of %llu bytes", x->path,
			   (unsigned long long)x->done, (unsigned long long)x->size);
	} else if (memcmp(want, got, 32) != 0) {
		send_error(s, f->chan, EBADMSG, "%s: SHA-256 mismatch, file discarded", x->path);
	} else if (fchmod(x->fd, x->mode & 07777) < 0 || fsync(x->fd) < 0 ||
		   rename(x->tmp, x->path) < 0) {
		send_error(s, f->chan, errno, "cannot install %s: %s", x->path, strerror(errno));
	} else {
		free(x->tmp);
		x->tmp = NULL;
		struct exai_ap_w w;
		exai__ap_w_init(&w, scratch, sizeof(scratch));
		exai__ap_w_u64(&w, EXAI_AP_TAG_SIZE, x->done);
		exai__ap_w_bytes(&w, EXAI_AP_TAG_SHA256, got, 32);
		send_built(s, &w, EXAI_AP_T_PUT_DONE, 0, f->chan);
	}
	xfer_free(x);
}

static void handle_get(struct session *s, const struct exai_ap_frame *f)
{
	struct xfer *x = xfer_new(s, f->chan);
	struct stat st;
	if (!x)
		return;
	x->is_get = true;
	if (parse_path_req(f, &x->path, NULL, NULL, NULL) < 0) {
		send_error(s, f->chan, EINVAL, "bad GET: an absolute PATH is required");
		xfer_free(x);
		return;
	}
	x->fd = open(x->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (x->fd < 0 || fstat(x->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = x->fd < 0 ? errno : EISDIR;
		send_error(s, f->chan, e, "cannot read %s: %s", x->path,
			   x->fd < 0 ? strerror(e) : "not a regular file");
		xfer_free(x);
		return;
	}
	x->size = (uint64_t)st.st_size;
	struct exai_ap_w w;
	exai__ap_w_init(&w, scratch, sizeof(scratch));
	exai__ap_w_u64(&w, EXAI_AP_TAG_SIZE, x->size);
	exai__ap_w_u32(&w, EXAI_AP_TAG_MODE, st.st_mode & 07777);
	send_built(s, &w, EXAI_AP_T_GET_INFO, 0, f->chan);
}

/* Sends the next chunks of the session's downloads while its queue has room. */
static void xfers_pump(struct session *s)
{
	static uint8_t chunk[EXAI_AP_CHUNK];
	size_t max = s->peer_max < EXAI_AP_CHUNK ? s->peer_max : EXAI_AP_CHUNK;
	for (int i = 0; i < MAX_XFERS; i++) {
		struct xfer *x = &s->xfers[i];
		while (x->used && x->is_get && bytes_avail(&s->out) < OUTQ_HIGH) {
			ssize_t n = read(x->fd, chunk, max);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				send_error(s, x->chan, errno, "reading %s: %s", x->path, strerror(errno));
				xfer_free(x);
				break;
			}
			if (n == 0) {
				uint8_t sum[32];
				exai__ap_sha256_final(&x->sha, sum);
				struct exai_ap_w w;
				exai__ap_w_init(&w, scratch, sizeof(scratch));
				exai__ap_w_u64(&w, EXAI_AP_TAG_SIZE, x->done);
				exai__ap_w_bytes(&w, EXAI_AP_TAG_SHA256, sum, 32);
				send_built(s, &w, EXAI_AP_T_END, 0, x->chan);
				xfer_free(x);
				break;
			}
			exai__ap_sha256_update(&x->sha, chunk, (size_t)n);
			x->done += (uint64_t)n;
			send_raw(s, EXAI_AP_T_DATA, 0, x->chan, chunk, (size_t)n);
		}
	}
}

/* ---- sessions ----------------------------------------------------------------------------- */

static void session_start(struct session *s, bool restart)
{
	s->hello_done = false;
	s->peer_max = EXAI_AP_PREHELLO_MAX;
	s->out.off = s->out.len = 0;
	if (restart) {
		/* The transport may still hold the start of a frame of the previous session
		 * (virtio-serial keeps what the guest wrote while no host was connected). Zeros
		 * longer than the largest pre-handshake frame complete any such frame, then read
		 * as bad magic, which the host skips byte by byte until our HELLO. */
		static const uint8_t pad[EXAI_AP_HDR_LEN + EXAI_AP_PREHELLO_MAX];
		bytes_append(&s->out, pad, sizeof(pad));
	}
	struct exai_ap_w w;
	exai__ap_w_init(&w, scratch, sizeof(scratch));
	long n = exai__ap_hello_build(&w, "exai-agent", EXAI_AP_MAX_PAYLOAD);
	if (n > 0)
		bytes_append(&s->out, scratch, (size_t)n);
}

static struct session *session_new(int fd, bool is_port)
{
	for (int i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		if (s->used)
			continue;
		memset(s, 0, sizeof(*s));
		s->in = malloc(EXAI_AP_HDR_LEN + EXAI_AP_MAX_PAYLOAD);
		if (!s->in)
			return NULL;
		s->used = true;
		s->fd = fd;
		s->is_port = is_port;
		for (int k = 0; k < MAX_XFERS; k++)
			s->xfers[k].fd = -1;
		session_start(s, false);
		return s;
	}
	return NULL;
}

/* Its processes keep running, detached, until a client attaches; its transfers end. */
static void session_detach(struct session *s)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i].used && procs[i].sess == s)
			procs[i].sess = NULL;
	for (int k = 0; k < MAX_XFERS; k++)
		if (s->xfers[k].used)
			xfer_free(&s->xfers[k]);
}

/* The connection ended. */
static void session_end(struct session *s)
{
	session_detach(s);
	if (s->is_port) {
		/* The virtio-serial port stays open; a new host connection starts a new session. */
		s->hup = true;
		s->out.off = s->out.len = 0;
		s->in_len = 0;
		return;
	}
	/* Best effort: let a closing ERROR reach the peer. */
	if (bytes_avail(&s->out) && write(s->fd, s->out.p + s->out.off, bytes_avail(&s->out)) < 0)
		(void)0;
	close(s->fd);
	free(s->in);
	bytes_free(&s->out);
	memset(s, 0, sizeof(*s));
}

static void handle_frame(struct session *s, const struct exai_ap_frame *f)
{
	if (!s->hello_done) {
		struct exai_ap_hello h;
		uint32_t version;
		if (exai__ap_hello_parse(&h, f) < 0) {
			send_error(s, 0, EPROTO, "expected HELLO, got %s", exai__ap_type_name(f->type));
			return;
		}
		if (exai__ap_negotiate(&h, &version, &s->peer_max) < 0) {
			send_error(s, 0, EPROTONOSUPPORT, "no common protocol version (host speaks %u..%u, agent %u)",
				   h.version_min, h.version_max, EXAI_AP_VERSION);
			return;
		}
		s->hello_done = true;
		return;
	}
	switch (f->type) {
	case EXAI_AP_T_HEALTH: {
		struct sysinfo si;
		uint32_t n = 0;
		for (int i = 0; i < MAX_PROCS; i++)
			n += procs[i].used;
		sysinfo(&si);
		struct exai_ap_w w;
		exai__ap_w_init(&w, scratch, sizeof(scratch));
		exai__ap_w_u64(&w, EXAI_AP_TAG_UPTIME_MS, now_ms() - start_ms);
		exai__ap_w_u64(&w, EXAI_AP_TAG_MEM_AVAIL_KIB,
			       (uint64_t)si.freeram * si.mem_unit / 1024);
		exai__ap_w_u32(&w, EXAI_AP_TAG_NPROCS, n);
		send_built(s, &w, EXAI_AP_T_HEALTH_REPLY, 0, f->chan);
		break;
	}
	case EXAI_AP_T_EXEC:
		handle_exec(s, f);
		break;
	case EXAI_AP_T_STDIN: {
		struct proc *p = proc_find(f->chan);
		if (!p || p->sess != s) {
			send_error(s, f->chan, ENOENT, "no process attached on channel %u", f->chan);
			break;
		}
		if (p->fd_in >= 0 && !p->stdin_eof && bytes_append(&p->ibuf, f->payload, f->len) < 0)
			send_error(s, f->chan, ENOMEM, "out of memory for stdin");
		if (f->flags & EXAI_AP_F_EOF)
			p->stdin_eof = true;
		break;
	}
	case EXAI_AP_T_SIGNAL: {
		struct proc *p = proc_find(f->chan);
		struct exai_ap_r rd;
		uint16_t tag;
		const uint8_t *v;
		uint32_t vl, sig = 0;
		exai__ap_r_init(&rd, f->payload, f->len);
		while (exai__ap_r_next(&rd, &tag, &v, &vl) > 0)
			if (tag == EXAI_AP_TAG_SIGNAL && exai__ap_val_u32(v, vl, &sig) < 0)
				sig = 0;
		if (!p)
			send_error(s, f->chan, ENOENT, "no process on channel %u", f->chan);
		else if (sig < 1 || sig > 64)
			send_error(s, f->chan, EINVAL, "bad SIGNAL: %u is not a signal number", sig);
		else if (!p->exited && kill(-p->pid, (int)sig) < 0 && kill(p->pid, (int)sig) < 0)
			send_error(s, f->chan, errno, "kill: %s", strerror(errno));
		break;
	}
	case EXAI_AP_T_ATTACH: {
		struct proc *p = proc_find(f->chan);
		if (!p) {
			send_error(s, f->chan, ENOENT, "no process with id %u (finished and reported, or never started)", f->chan);
			break;
		}
		p->sess = s;
		struct exai_ap_w w;
		exai__ap_w_init(&w, scratch, sizeof(scratch));
		exai__ap_w_u32(&w, EXAI_AP_TAG_PID, (uint32_t)p->pid);
		send_built(s, &w, EXAI_AP_T_ATTACHED, 0, f->chan);
		break;
	}
	case EXAI_AP_T_PUT:
		handle_put(s, f);
		break;
	case EXAI_AP_T_DATA:
		handle_data(s, f);
		break;
	case EXAI_AP_T_END:
		handle_end(s, f);
		break;
	case EXAI_AP_T_GET:
		handle_get(s, f);
		break;
	case EXAI_AP_T_HELLO: {
		/* A new host on a transport that did not report the old one gone (a restored
		 * snapshot's virtio-serial port): restart the session. */
		struct exai_ap_hello h;
		uint32_t version;
		session_detach(s);
		session_start(s, true);
		if (exai__ap_hello_parse(&h, f) == 0 && exai__ap_negotiate(&h, &version, &s->peer_max) == 0)
			s->hello_done = true;
		else
			send_error(s, 0, EPROTO, "bad HELLO");
		break;
	}
	default:
		send_error(s, f->chan, EPROTO, "unexpected frame type %u (%s) from the host", f->type,
			   exai__ap_type_name(f->type));
		break;
	}
}

/* Stops reading a connection whose processes have stdin queued beyond the bound. */
static bool session_stdin_full(struct session *s)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i].used && procs[i].sess == s && bytes_avail(&procs[i].ibuf) >= STDIN_BUF)
			return true;
	return false;
}

/* Reads and handles what the connection has. false: the connection is over. */
static bool session_read(struct session *s)
{
	size_t cap = EXAI_AP_HDR_LEN + (s->hello_done ? EXAI_AP_MAX_PAYLOAD : EXAI_AP_PREHELLO_MAX);
	ssize_t n = read(s->fd, s->in + s->in_len, cap - s->in_len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	s->in_len += (size_t)n;
	size_t pos = 0;
	for (;;) {
		struct exai_ap_frame f;
		size_t used;
		uint32_t max = s->hello_done ? EXAI_AP_MAX_PAYLOAD : EXAI_AP_PREHELLO_MAX;
		int rc = exai__ap_decode(&f, &used, s->in + pos, s->in_len - pos, max);
		if (rc == 0)
			break;
		if (rc < 0) {
			send_error(s, 0, rc == -EMSGSIZE ? EMSGSIZE : EBADMSG, "%s; closing the connection",
				   rc == -EMSGSIZE ? "frame larger than the maximum payload" : "bad frame magic");
			return false;
		}
		bool was_hello = s->hello_done;
		handle_frame(s, &f);
		pos += used;
		if (!was_hello && !s->hello_done)
			return false; /* handshake failed: the error is queued, drop after flushing */
	}
	memmove(s->in, s->in + pos, s->in_len - pos);
	s->in_len -= pos;
	return true;
}

/* ---- PID 1 duties ------------------------------------------------------------------------- */

static void init_mounts(void)
{
	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/dev", 0755);
	mkdir("/tmp", 01777);
	mkdir("/run", 0755);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		say("mount /proc: %s", strerror(errno));
	if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		say("mount /sys: %s", strerror(errno));
	if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY)
		say("mount /dev: %s", strerror(errno));
	mkdir("/dev/pts", 0755);
	mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
	mkdir("/dev/shm", 01777);
	mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		say("mount /tmp: %s", strerror(errno));
	mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	/* The initramfs has no /dev/console, so the kernel started us without stdio: take
	 * the console now that devtmpfs is there (the ready line and messages go to it). */
	if (fcntl(1, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (fd >= 0) {
			for (int i = 0; i < 3; i++)
				if (fd != i)
					dup2(fd, i);
			if (fd > 2)
				close(fd);
		}
	}
}

/* Loads the modules named in /lib/modules/exai.order, one file name per line, in order. */
static void init_modules(void)
{
	FILE *f = fopen("/lib/modules/exai.order", "re");
	char line[256];
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char path[512];
		snprintf(path, sizeof(path), "/lib/modules/%s", line);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0) {
			if (errno != EEXIST)
				say("cannot load module %s: %s", line, strerror(errno));
		}
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
}

/* Whether a virtio block device (virtio id 2) is present. */
static bool have_virtio_blk(void)
{
	DIR *d = opendir("/sys/bus/virtio/devices");
	struct dirent *e;
	bool found = false;
	while (d && !found && (e = readdir(d))) {
		char p[300], id[16] = "";
		snprintf(p, sizeof(p), "/sys/bus/virtio/devices/%s/device", e->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, id, sizeof(id) - 1);
		close(fd);
		found = n > 0 && strtol(id, NULL, 0) == 2;
	}
	if (d)
		closedir(d);
	return found;
}

/* The per-VM disk (/dev/vda; encrypted on the host, plain to the guest): an ext2 file system
 * made with busybox mke2fs on first boot (no ext2/3/4 superblock magic at byte 1080), mounted
 * at /work by the kernel's ext4 driver. */
static void init_disk(void)
{
	if (!have_virtio_blk())
		return;
	for (int i = 0; i < 100 && access("/dev/vda", F_OK) != 0; i++)
		usleep(20000);
	int fd = open("/dev/vda", O_RDONLY | O_CLOEXEC);
	uint8_t magic[2] = { 0, 0 };
	if (fd < 0) {
		say("a virtio disk is present but /dev/vda is not: %s", strerror(errno));
		return;
	}
	bool formatted = pread(fd, magic, 2, 1080) == 2 && magic[0] == 0x53 && magic[1] == 0xef;
	close(fd);
	if (!formatted) {
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/mke2fs", "mke2fs", "-q", "-L", "work", "/dev/vda", (char *)NULL);
			_exit(127);
		}
		int st = 0;
		while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			say("mke2fs /dev/vda failed (status %d)", st);
			return;
		}
	}
	mkdir("/work", 0755);
	if (mount("/dev/vda", "/work", "ext4", MS_NOSUID | MS_NODEV, NULL) < 0)
		say("mount /dev/vda on /work: %s", strerror(errno));
}

/* Value of "key=" on the kernel command line, in @out; false when absent. */
static bool cmdline_get(const char *key, char *out, size_t outlen)
{
	static char cmdline[4096];
	static bool loaded;
	if (!loaded) {
		int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, cmdline, sizeof(cmdline) - 1) : -1;
		cmdline[n > 0 ? n : 0] = '\0';
		if (fd >= 0)
			close(fd);
		loaded = true;
	}
	size_t kl = strlen(key);
	for (char *p = cmdline; *p;) {
		while (*p == ' ' || *p == '\n')
			p++;
		size_t wl = strcspn(p, " \n");
		if (wl > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = wl - kl - 1;
			if (vl >= outlen)
				return false;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return true;
		}
		p += wl;
	}
	return false;
}

static int if_up(int sk, const char *name)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(sk, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

/* Finds the interface whose MAC is @mac (or the first non-loopback one). */
static bool find_iface(int sk, const char *mac, char name[IF_NAMESIZE])
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	bool found = false;
	for (i = ifs; i && i->if_name && !found; i++) {
		if (!strcmp(i->if_name, "lo"))
			continue;
		struct ifreq ifr = { 0 };
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (mac[0] && ioctl(sk, SIOCGIFHWADDR, &ifr) == 0) {
			char got[18];
			const unsigned char *h = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
			snprintf(got, sizeof(got), "%02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3],
				 h[4], h[5]);
			if (strcasecmp(got, mac) != 0)
				continue;
		}
		snprintf(name, IF_NAMESIZE, "%s", i->if_name);
		found = true;
	}
	if (ifs)
		if_freenameindex(ifs);
	return found;
}

static void init_network(void)
{
	char ip[64], gw[64] = "", mac[32] = "", dns[64], name[IF_NAMESIZE];
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return;
	if_up(sk, "lo");
	if (!cmdline_get("exai.ip", ip, sizeof(ip))) {
		close(sk);
		return;
	}
	cmdline_get("exai.gw", gw, sizeof(gw));
	cmdline_get("exai.mac", mac, sizeof(mac));
	char *slash = strchr(ip, '/');
	unsigned prefix = 24;
	if (slash) {
		*slash = '\0';
		prefix = (unsigned)strtoul(slash + 1, NULL, 10);
		if (prefix > 32)
			prefix = 24;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1 || !find_iface(sk, mac, name)) {
		say("network: bad exai.ip or no interface with MAC %s", mac[0] ? mac : "(any)");
		close(sk);
		return;
	}
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
	if (ioctl(sk, SIOCSIFADDR, &ifr) < 0)
		say("network: %s: cannot set address: %s", name, strerror(errno));
	sin.sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
	memcpy(&ifr.ifr_netmask, &sin, sizeof(sin));
	if (ioctl(sk, SIOCSIFNETMASK, &ifr) < 0)
		say("network: %s: cannot set netmask: %s", name, strerror(errno));
	if (if_up(sk, name) < 0)
		say("network: %s: cannot bring it up", name);
	if (gw[0]) {
		struct rtentry rt = { 0 };
		struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
		struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway;
		struct sockaddr_in *m = (struct sockaddr_in *)&rt.rt_genmask;
		dst->sin_family = g->sin_family = m->sin_family = AF_INET;
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		if (inet_pton(AF_INET, gw, &g->sin_addr) != 1 || ioctl(sk, SIOCADDRT, &rt) < 0)
			say("network: cannot add the default route via %s", gw);
	}
	if (cmdline_get("exai.dns", dns, sizeof(dns))) {
		mkdir("/etc", 0755);
		FILE *f = fopen("/etc/resolv.conf", "we");
		if (f) {
			fprintf(f, "nameserver %s\n", dns);
			fclose(f);
		}
	}
	close(sk);
}

/* The /dev node of the virtio-serial port named exai.agent; false when there is none. */
static bool find_port(char *path, size_t len)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	bool found = false;
	while (d && (e = readdir(d)) && !found) {
		char p[512], name[64] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", e->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, name, sizeof(name) - 1) : -1;
		if (fd >= 0)
			close(fd);
		name[n > 0 ? n : 0] = '\0';
		name[strcspn(name, "\n")] = '\0';
		if (!strcmp(name, EXAI_AP_PORT_NAME)) {
			snprintf(path, len, "/dev/%s", e->d_name);
			found = true;
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* ---- main loop ---------------------------------------------------------------------------- */

static int listen_on(int family, const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, sa, len) < 0 || listen(fd, 8) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	unlink(path);
	return listen_on(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun));
}

static int listen_vsock(void)
{
#ifdef HAVE_VSOCK
	struct sockaddr_vm svm = { .svm_family = AF_VSOCK, .svm_port = EXAI_AP_VSOCK_PORT,
				   .svm_cid = VMADDR_CID_ANY };
	return listen_on(AF_VSOCK, (struct sockaddr *)&svm, sizeof(svm));
#else
	return -EAFNOSUPPORT;
#endif
}

static int usage(void)
{
	fprintf(stderr, "usage: exai-agent [--listen PATH | --fd N]\n"
			"As PID 1 (the guest's init) it takes no arguments.\n");
	return 2;
}

int main(int argc, char **argv)
{
	int listeners[2] = { -1, -1 }, nlisten = 0;
	const char *listen_path = NULL;
	int serve_fd = -1;
	struct session *port = NULL;

	start_ms = now_ms();
	pid1 = getpid() == 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--listen") && i + 1 < argc)
			listen_path = argv[++i];
		else if (!strcmp(argv[i], "--fd") && i + 1 < argc)
			serve_fd = atoi(argv[++i]);
		else if (!pid1)
			return usage();
	}
	if (!pid1 && !listen_path && serve_fd < 0)
		return usage();

	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	for (int i = 0; i < MAX_PROCS; i++)
		procs[i].fd_in = procs[i].fd_out = procs[i].fd_err = -1;

	if (pid1) {
		init_mounts();
		init_modules();
		init_disk();
		init_network();
		char path[300];
		if (find_port(path, sizeof(path))) {
			int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			if (fd < 0 || !(port = session_new(fd, true)))
				say("cannot open %s: %s", path, strerror(errno));
		}
		int v = listen_vsock();
		if (v >= 0)
			listeners[nlisten++] = v;
		if (!port && v < 0)
			say("no virtio-serial port named %s and no vsock: nothing to serve", EXAI_AP_PORT_NAME);
	} else if (listen_path) {
		int l = listen_unix(listen_path);
		if (l < 0) {
			say("cannot listen on %s: %s", listen_path, strerror(-l));
			return 1;
		}
		listeners[nlisten++] = l;
	} else {
		fcntl(serve_fd, F_SETFL, O_NONBLOCK);
		fcntl(serve_fd, F_SETFD, FD_CLOEXEC);
		if (!session_new(serve_fd, false))
			return 1;
	}
	/* The ready line: the host's boot benchmark and logs look for it. */
	printf("exai-agent: ready (protocol %u)\n", EXAI_AP_VERSION);
	fflush(stdout);

	for (;;) {
		struct pollfd pfd[2 + 1 + MAX_SESSIONS + 3 * MAX_PROCS];
		void *who[sizeof(pfd) / sizeof(pfd[0])];
		int kind[sizeof(pfd) / sizeof(pfd[0])];
		int n = 0, timeout = -1;
		uint64_t now = now_ms();

		pfd[n] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		kind[n++] = 0;
		for (int i = 0; i < nlisten; i++) {
			pfd[n] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
			kind[n++] = 1;
		}
		for (int i = 0; i < MAX_SESSIONS; i++) {
			struct session *s = &sessions[i];
			if (!s->used)
				continue;
			short ev = 0;
			if (s->hup) {
				timeout = 100; /* the port reports POLLHUP until a host connects */
			} else {
				if (bytes_avail(&s->out) < OUTQ_HARD && !session_stdin_full(s))
					ev |= POLLIN;
				if (bytes_avail(&s->out))
					ev |= POLLOUT;
			}
			pfd[n] = (struct pollfd){ .fd = s->hup ? -1 : s->fd, .events = ev };
			who[n] = s;
			kind[n++] = 2;
		}
		bool no_session = true;
		for (int i = 0; i < MAX_SESSIONS; i++)
			no_session &= !sessions[i].used || sessions[i].hup;
		for (int i = 0; i < MAX_PROCS; i++) {
			struct proc *p = &procs[i];
			if (!p->used)
				continue;
			if (p->deadline_ms && !p->exited) {
				if (now >= p->deadline_ms) {
					p->timed_out = true;
					p->deadline_ms = 0;
					kill(-p->pid, SIGKILL);
					kill(p->pid, SIGKILL);
				} else {
					uint64_t left = p->deadline_ms - now;
					if (timeout < 0 || (uint64_t)timeout > left)
						timeout = (int)(left > 60000 ? 60000 : left);
				}
			}
			if (p->fd_out >= 0 && bytes_avail(&p->obuf) < PROC_BUF) {
				pfd[n] = (struct pollfd){ .fd = p->fd_out, .events = POLLIN };
				who[n] = p;
				kind[n++] = 3;
			}
			if (p->fd_err >= 0 && bytes_avail(&p->ebuf) < PROC_BUF) {
				pfd[n] = (struct pollfd){ .fd = p->fd_err, .events = POLLIN };
				who[n] = p;
				kind[n++] = 3;
			}
			if (p->fd_in >= 0 && bytes_avail(&p->ibuf)) {
				pfd[n] = (struct pollfd){ .fd = p->fd_in, .events = POLLOUT };
				who[n] = p;
				kind[n++] = 3;
			}
		}
		if (!pid1 && serve_fd >= 0 && no_session)
			break; /* --fd mode: the one connection is over */

		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			say("poll: %s", strerror(errno));
			sleep(1);
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (kind[i] == 0 && pfd[i].revents) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
					;
			} else if (kind[i] == 1 && (pfd[i].revents & POLLIN)) {
				int c = accept4(pfd[i].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (c >= 0 && !session_new(c, false))
					close(c);
			} else if (kind[i] == 2) {
				struct session *s = who[i];
				if (!s->used || s->hup)
					continue;
				if ((pfd[i].revents & POLLIN) && !session_read(s)) {
					session_end(s);
					continue;
				}
				if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL) &&
				    !(pfd[i].revents & POLLIN)) {
					session_end(s);
					continue;
				}
				if ((pfd[i].revents & POLLOUT) && bytes_avail(&s->out)) {
					ssize_t w = write(s->fd, s->out.p + s->out.off, bytes_avail(&s->out));
					if (w > 0)
						bytes_consume(&s->out, (size_t)w);
					else if (w < 0 && errno != EAGAIN && errno != EINTR)
						session_end(s);
				}
			}
		}
		/* A host connected to the port again: a new session begins with our HELLO. */
		if (port && port->hup) {
			struct pollfd pp = { .fd = port->fd, .events = POLLOUT };
			if (poll(&pp, 1, 0) == 1 && !(pp.revents & POLLHUP)) {
				port->hup = false;
				session_start(port, true);
			}
		}
		reap_children();
		for (int i = 0; i < MAX_PROCS; i++)
			if (procs[i].used)
				proc_pump(&procs[i]);
		for (int i = 0; i < MAX_SESSIONS; i++)
			if (sessions[i].used && !sessions[i].hup && sessions[i].hello_done)
				xfers_pump(&sessions[i]);
	}
	return 0;
}
