/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-agent: the guest agent (guest/agent.c) and the host client (lib/vm/agent-client.c)
 * end to end over a Unix socket, without a VM: exec with exit codes and streamed output,
 * stdin, environment and cwd, signals, timeouts, reattach after the client went away, a
 * 100 MiB put/get with checksums, and malformed or oversized frames.
 * argv[1]: the exai-agent binary.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-client.h"
#include "agent-proto.h"
#include "core-internal.h"
#include "test.h"

static char *dir, sock[100];

struct cap {
	struct exai__buf out, err;
	int sig_to_send;
	int polls;
};

static int on_output(void *ud, int stream, const void *p, size_t n)
{
	struct cap *c = ud;
	return exai__buf_append(stream == 1 ? &c->out : &c->err, p, n);
}

static int pending_signal(void *ud)
{
	struct cap *c = ud;
	/* after a few polls (the process is surely running), send the signal once */
	if (c->sig_to_send && ++c->polls == 3) {
		int s = c->sig_to_send;
		c->sig_to_send = 0;
		return s;
	}
	return 0;
}

static void cap_free(struct cap *c)
{
	exai__buf_free(&c->out);
	exai__buf_free(&c->err);
}

static int run(struct exai__agent *a, const char *const *argv, const char *const *envp,
	       const char *cwd, struct cap *c, const char *in, uint64_t timeout_ms,
	       struct exai__exec_result *res)
{
	struct exai__exec_req req = { .argv = argv, .envp = envp, .cwd = cwd, .uid = -1, .gid = -1,
				      .timeout_ms = timeout_ms };
	struct exai__exec_io io = { .on_output = on_output, .stdin_fd = -1, .stdin_data = in,
				    .stdin_len = in ? strlen(in) : 0, .ud = c,
				    .pending_signal = pending_signal, .idle_timeout_ms = 20000 };
	return exai__agent_exec(a, &req, &io, res);
}

static void exec_basics(struct exai__agent *a)
{
	struct exai__exec_result res;
	struct cap c = { 0 };

	const char *sh[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	CHECK_OK(run(a, sh, NULL, NULL, &c, NULL, 0, &res));
	CHECK(res.exit_code == 3 && res.signal == 0 && !res.timed_out && res.pid > 0);
	CHECK_STREQ(c.out.data, "out\n");
	CHECK_STREQ(c.err.data, "err\n");
	cap_free(&c);

	/* stdin to EOF */
	memset(&c, 0, sizeof(c));
	const char *cat[] = { "cat", NULL };
	CHECK_OK(run(a, cat, NULL, NULL, &c, "hello, agent\n", 0, &res));
	CHECK(res.exit_code == 0);
	CHECK_STREQ(c.out.data, "hello, agent\n");
	cap_free(&c);

	/* environment (replaces the default one) and working directory */
	memset(&c, 0, sizeof(c));
	const char *envsh[] = { "/bin/sh", "-c", "echo \"$FOO\"; pwd; echo \"${HOME-unset}\"", NULL };
	const char *env[] = { "FOO=bar baz", "PATH=/usr/bin:/bin", NULL };
	CHECK_OK(run(a, envsh, env, "/tmp", &c, NULL, 0, &res));
	CHECK_STREQ(c.out.data, "bar baz\n/tmp\nunset\n");
	cap_free(&c);

	/* a lot of output: streamed in order, nothing lost */
	memset(&c, 0, sizeof(c));
	const char *seq[] = { "seq", "1", "200000", NULL };
	CHECK_OK(run(a, seq, NULL, NULL, &c, NULL, 0, &res));
	CHECK(res.exit_code == 0 && c.out.len == 1288895);
	CHECK(c.out.data && !strncmp(c.out.data, "1\n2\n3\n", 6) &&
	      !strcmp(c.out.data + c.out.len - 7, "200000\n"));
	cap_free(&c);

	/* a missing program: a clear error, not a hang */
	memset(&c, 0, sizeof(c));
	const char *missing[] = { "/nonexistent/program", NULL };
	CHECK_RC(run(a, missing, NULL, NULL, &c, NULL, 0, &res), -ENOENT);
	CHECK(strstr(exai_errmsg(), "/nonexistent/program") != NULL);
	cap_free(&c);
	/* bad requests */
	const char *relcwd[] = { "true", NULL };
	CHECK_RC(run(a, relcwd, NULL, "relative", &c, NULL, 0, &res), -EINVAL);
	const char *badenv[] = { "NOEQUALS", NULL };
	CHECK_RC(run(a, relcwd, badenv, NULL, &c, NULL, 0, &res), -EINVAL);
	cap_free(&c);

	/* another uid (the agent runs as root here, as in the guest) */
	if (geteuid() == 0) {
		memset(&c, 0, sizeof(c));
		const char *id[] = { "id", "-u", NULL };
		struct exai__exec_req req = { .argv = id, .uid = 65534, .gid = 65534 };
		struct exai__exec_io io = { .on_output = on_output, .stdin_fd = -1, .ud = &c };
		CHECK_OK(exai__agent_exec(a, &req, &io, &res));
		CHECK_STREQ(c.out.data, "65534\n");
		cap_free(&c);
	}
}

static void signals_and_timeouts(struct exai__agent *a)
{
	struct exai__exec_result res;
	struct cap c = { .sig_to_send = SIGTERM };
	const char *slp[] = { "sleep", "30", NULL };
	CHECK_OK(run(a, slp, NULL, NULL, &c, NULL, 0, &res));
	CHECK(res.exit_code == -1 && res.signal == SIGTERM && !res.timed_out);
	cap_free(&c);

	memset(&c, 0, sizeof(c));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_OK(run(a, slp, NULL, NULL, &c, NULL, 300, &res));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(res.timed_out && res.signal == SIGKILL);
	CHECK(t1.tv_sec - t0.tv_sec < 10);
	cap_free(&c);
}

static void reattach(void)
{
	struct exai__agent *a = NULL, *b = NULL;
	uint32_t id = 0, pid = 0;
	const char *sh[] = { "/bin/sh", "-c", "sleep 0.5; echo second; exit 7", NULL };
	struct exai__exec_req req = { .argv = sh, .uid = -1, .gid = -1 };

	CHECK_OK(exai__agent_connect_unix(&a, sock, 5000));
	if (!a)
		return;
	CHECK_OK(exai__agent_exec_start(a, &req, &id, &pid));
	exai__agent_free(a); /* the client goes away; the process keeps running */

	CHECK_OK(exai__agent_connect_unix(&b, sock, 5000));
	if (!b)
		return;
	struct cap c = { 0 };
	struct exai__exec_io io = { .on_output = on_output, .stdin_fd = -1, .ud = &c };
	struct exai__exec_result res;
	CHECK_OK(exai__agent_attach(b, id, &io, &res));
	CHECK(res.exit_code == 7 && res.pid == pid);
	CHECK_STREQ(c.out.data, "second\n");
	cap_free(&c);
	/* reported and forgotten: attaching again is a clear error */
	CHECK_RC(exai__agent_attach(b, id, &io, &res), -ENOENT);
	exai__agent_free(b);
}

static void sha_file(const char *path, uint8_t out[32])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && exai__ap_sha256_fd(fd, out) == 0);
	if (fd >= 0)
		close(fd);
}

static void files(struct exai__agent *a)
{
	char src[512], remote[512], back[512];
	uint8_t put_sha[32], get_sha[32], want[32], got[32];
	snprintf(src, sizeof(src), "%s/src.bin", dir);
	snprintf(remote, sizeof(remote), "%s/remote.bin", dir);
	snprintf(back, sizeof(back), "%s/back.bin", dir);

	/* 100 MiB of pseudo-random bytes */
	int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	static uint64_t block[1 << 16];
	for (int i = 0; i < 100 * 16 / 8; i++) {
		for (size_t k = 0; k < EXAI__ARRAY_SIZE(block); k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			block[k] = x;
		}
		CHECK(write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
	}
	close(fd);
	sha_file(src, want);

	fd = open(src, O_RDONLY);
	CHECK_OK(exai__agent_put(a, fd, remote, 0640, put_sha));
	close(fd);
	CHECK(memcmp(put_sha, want, 32) == 0);
	struct stat st;
	CHECK(stat(remote, &st) == 0 && st.st_size == 100 << 20 && (st.st_mode & 07777) == 0640);
	sha_file(remote, got);
	CHECK(memcmp(got, want, 32) == 0);

	fd = open(back, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK_OK(exai__agent_get(a, remote, fd, 0, get_sha));
	close(fd);
	CHECK(memcmp(get_sha, want, 32) == 0);
	sha_file(back, got);
	CHECK(memcmp(got, want, 32) == 0);

	/* bounded: a file larger than the caller allows */
	fd = open(back, O_WRONLY | O_TRUNC);
	CHECK_RC(exai__agent_get(a, remote, fd, 1000, NULL), -EFBIG);
	close(fd);
	/* errors: missing file, directory, relative path, unwritable place */
	fd = open(back, O_WRONLY | O_TRUNC);
	CHECK_RC(exai__agent_get(a, "/nonexistent/file", fd, 0, NULL), -ENOENT);
	CHECK_RC(exai__agent_get(a, "/", fd, 0, NULL), -EISDIR);
	CHECK_RC(exai__agent_get(a, "relative", fd, 0, NULL), -EINVAL);
	close(fd);
	fd = open(src, O_RDONLY);
	CHECK_RC(exai__agent_put(a, fd, "/nonexistent/dir/file", 0600, NULL), -ENOENT);
	close(fd);
	unlink(src);
	unlink(remote);
	unlink(back);
	/* the connection is still good after all the errors */
	struct exai__agent_health h;
	CHECK_OK(exai__agent_health(a, &h, 5000));
}

/* A raw connection: read the agent's HELLO, then misbehave. */
static void raw_abuse(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	uint8_t buf[8192];
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);

	for (int round = 0; round < 3; round++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
		struct timeval tv = { 5, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		uint8_t out[EXAI_AP_HDR_LEN + 64];
		if (round == 0) {
			/* garbage instead of a frame */
			memcpy(out, "GET / HTTP/1.1\r\n", 16);
			CHECK(write(fd, out, 16) == 16);
		} else if (round == 1) {
			/* a header announcing 16 MiB before the handshake */
			exai__ap_header(out, EXAI_AP_T_HELLO, 0, 0, 16u << 20);
			CHECK(write(fd, out, EXAI_AP_HDR_LEN) == EXAI_AP_HDR_LEN);
		} else {
			/* a well-formed frame that is not a HELLO */
			exai__ap_header(out, EXAI_AP_T_EXEC, 0, 5, 0);
			CHECK(write(fd, out, EXAI_AP_HDR_LEN) == EXAI_AP_HDR_LEN);
		}
		/* the agent answers with its HELLO and an ERROR, then closes */
		size_t got = 0;
		ssize_t n;
		while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
			got += (size_t)n;
		CHECK(n == 0); /* closed by the agent, not a timeout */
		struct exai_ap_frame f;
		size_t used, pos = 0;
		bool saw_error = false;
		while (exai__ap_decode(&f, &used, buf + pos, got - pos, EXAI_AP_MAX_PAYLOAD) == 1) {
			saw_error |= f.type == EXAI_AP_T_ERROR;
			pos += used;
		}
		CHECK(saw_error);
		close(fd);
	}
}

/* A second HELLO on a live session restarts it (what a restored VM's virtio-serial port sees):
 * the agent answers with a resync pad and its HELLO, and the host client finds the HELLO. */
static void hello_restart(void)
{
	struct exai__agent *a = NULL;
	CHECK_OK(exai__agent_connect_unix(&a, sock, 5000));
	if (!a)
		return;
	/* a process started in the first session survives the restart, detached */
	const char *sh[] = { "/bin/sh", "-c", "sleep 0.3; echo kept", NULL };
	struct exai__exec_req req = { .argv = sh, .uid = -1, .gid = -1 };
	uint32_t id = 0;
	CHECK_OK(exai__agent_exec_start(a, &req, &id, NULL));
	/* take the fd over and handshake again on the same connection */
	int fd = dup(exai__agent_fd(a));
	exai__agent_free(a);
	a = NULL;
	CHECK_OK(exai__agent_open_fd(&a, fd, 5000));
	if (!a)
		return;
	struct cap c = { 0 };
	struct exai__exec_io io = { .on_output = on_output, .stdin_fd = -1, .ud = &c };
	struct exai__exec_result res;
	CHECK_OK(exai__agent_attach(a, id, &io, &res));
	CHECK(res.exit_code == 0);
	CHECK_STREQ(c.out.data, "kept\n");
	cap_free(&c);
	exai__agent_free(a);
}

/* The host never trusts the guest: a fake agent on a socketpair answers the handshake,
 * then misbehaves; the client refuses each with a clear error instead of hanging or
 * overrunning. */
static void untrusted_guest(void)
{
	for (int round = 0; round < 4; round++) {
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		uint8_t buf[EXAI_AP_HDR_LEN + 256];
		struct exai_ap_w w;
		exai__ap_w_init(&w, buf, sizeof(buf));
		long n = exai__ap_hello_build(&w, "evil\001agent", EXAI_AP_MAX_PAYLOAD);
		/* stale garbage before the HELLO is skipped (a virtio-serial port's leftovers) */
		CHECK(write(sv[1], "\0\xea\x1a\x13junk", 8) == 8);
		CHECK(write(sv[1], buf, (size_t)n) == n);
		struct exai__agent *a = NULL;
		CHECK_OK(exai__agent_open_fd(&a, sv[0], 5000));
		if (!a) {
			close(sv[1]);
			continue;
		}
		CHECK_STREQ(exai__agent_name(a), "evil?agent"); /* made printable */
		struct exai__agent_health h;
		uint8_t hdr[EXAI_AP_HDR_LEN];
		int want;
		if (round == 0) {
			/* a frame over the 1 MiB limit */
			exai__ap_header(hdr, EXAI_AP_T_HEALTH_REPLY, 0, 0, EXAI_AP_MAX_PAYLOAD + 1);
			CHECK(write(sv[1], hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
			want = -EPROTO;
		} else if (round == 1) {
			/* bad magic */
			CHECK(write(sv[1], "HTTP/1.1 200 OK\r\n", 17) == 17);
			want = -EPROTO;
		} else if (round == 2) {
			/* silence: the deadline holds */
			want = -ETIMEDOUT;
		} else {
			/* the guest goes away */
			want = -ECONNRESET;
		}
		if (round == 3)
			close(sv[1]);
		CHECK_RC(exai__agent_health(a, &h, 300), want);
		exai__agent_free(a);
		if (round != 3)
			close(sv[1]);
	}
}

/* A stand-in for Firecracker's hybrid vsock muxer (its host side, as ../shared/specs/
 * firecracker/README.md describes it): accepts on a Unix socket, reads "CONNECT <port>\n"
 * byte by byte (32 bytes at most), and for port 5252 answers "OK 1073741824\n" and relays to
 * the agent; other ports get the connection closed without a word, as Firecracker does. */
struct muxer {
	int listen_fd;
	int conns;
};

static void relay(int a, int b)
{
	char buf[65536];
	struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0)
			return;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0)
				return;
			if (write(p[1 - i].fd, buf, (size_t)n) != n)
				return;
		}
	}
}

static void *muxer_run(void *arg)
{
	struct muxer *m = arg;
	for (;;) {
		int c = accept(m->listen_fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char line[33];
		size_t n = 0;
		while (n < 32 && read(c, line + n, 1) == 1 && line[n++] != '\n')
			;
		line[n] = '\0';
		m->conns++;
		if (strcmp(line, "CONNECT 5252\n") != 0) {
			close(c);
			continue;
		}
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
		int g = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(g, (struct sockaddr *)&sun, sizeof(sun)) == 0 &&
		    write(c, "OK 1073741824\n", 14) == 14)
			relay(c, g);
		close(g);
		close(c);
	}
}

static void hybrid_vsock(void)
{
	char uds[100];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", uds);
	struct muxer m = { .listen_fd = socket(AF_UNIX, SOCK_STREAM, 0) };
	CHECK(bind(m.listen_fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 && listen(m.listen_fd, 4) == 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, muxer_run, &m) == 0);

	struct exai__agent *a = NULL;
	CHECK_OK(exai__agent_connect_vsock(&a, uds, EXAI_AP_VSOCK_PORT, 5000));
	if (a) {
		struct cap c = { 0 };
		struct exai__exec_result res;
		const char *echo[] = { "echo", "over vsock", NULL };
		CHECK_OK(run(a, echo, NULL, NULL, &c, NULL, 0, &res));
		CHECK_STREQ(c.out.data, "over vsock\n");
		cap_free(&c);
		exai__agent_free(a);
		a = NULL;
	}
	/* nobody on that guest port: the muxer hangs up; the client retries, then times out */
	int before = m.conns;
	CHECK_RC(exai__agent_connect_vsock(&a, uds, 1234, 300), -ETIMEDOUT);
	CHECK(m.conns > before);
	shutdown(m.listen_fd, SHUT_RDWR);
	close(m.listen_fd);
	pthread_join(th, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		test_skip("usage: test-agent EXAI_AGENT_BINARY");
	signal(SIGPIPE, SIG_IGN);
	dir = test_tmpdir();
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	pid_t agent = fork();
	if (agent == 0) {
		execl(argv[1], argv[1], "--listen", sock, (char *)NULL);
		_exit(127);
	}
	struct exai__agent *a = NULL;
	CHECK_OK(exai__agent_connect_unix(&a, sock, 10000));
	if (a) {
		CHECK_STREQ(exai__agent_name(a), "exai-agent");
		struct exai__agent_health h;
		CHECK_OK(exai__agent_health(a, &h, 5000));
		CHECK(h.nprocs == 0);
		exec_basics(a);
		signals_and_timeouts(a);
		files(a);
		exai__agent_free(a);
	}
	reattach();
	hybrid_vsock();
	hello_restart();
	untrusted_guest();
	raw_abuse();
	/* still serving after the abuse */
	a = NULL;
	CHECK_OK(exai__agent_connect_unix(&a, sock, 5000));
	exai__agent_free(a);

	kill(agent, SIGTERM);
	waitpid(agent, NULL, 0);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
