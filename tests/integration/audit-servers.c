/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit-servers.h"
#include "test.h"

#define PGBIN "/usr/lib/postgresql/15/bin"

int audit_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		a.sin_port = 0;
	if (fd >= 0)
		close(fd);
	return ntohs(a.sin_port);
}

void audit_sleep_ms(int ms)
{
	usleep((useconds_t)ms * 1000);
}

bool audit_pg_init(struct audit_pg *pg, const char *tmp)
{
	memset(pg, 0, sizeof(*pg));
	if (access(PGBIN "/initdb", X_OK) != 0) {
		printf("PostgreSQL: %s/initdb not found (package postgresql-15)\n", PGBIN);
		return false;
	}
	snprintf(pg->dir, sizeof(pg->dir), "%s/pg", tmp);
	mkdir(pg->dir, 0700);
	if (geteuid() == 0) { /* postgres refuses root: run it as nobody in a directory it owns */
		struct passwd *pw = getpwnam("nobody");
		if (!pw || chmod(tmp, 0755) < 0 || chown(pg->dir, pw->pw_uid, pw->pw_gid) < 0) {
			printf("PostgreSQL: cannot hand %s to the user nobody\n", pg->dir);
			return false;
		}
		snprintf(pg->run, sizeof(pg->run), "runuser -u nobody --");
	}
	pg->port = audit_free_port();
	snprintf(pg->conninfo, sizeof(pg->conninfo),
		 "host=127.0.0.1 port=%d dbname=postgres user=postgres connect_timeout=2", pg->port);
	if (test_sh("%s %s/initdb -D %s -A trust -U postgres >/dev/null", pg->run, PGBIN, pg->dir) != 0) {
		printf("PostgreSQL: initdb failed\n");
		return false;
	}
	return audit_pg_ctl(pg, true) == 0;
}

int audit_pg_ctl(struct audit_pg *pg, bool start)
{
	if (start)
		return test_sh("%s %s/pg_ctl -D %s -l %s/log -o '-k %s -p %d -c listen_addresses=127.0.0.1' -w start >/dev/null",
			  pg->run, PGBIN, pg->dir, pg->dir, pg->dir, pg->port);
	return test_sh("%s %s/pg_ctl -D %s -m immediate -w stop >/dev/null 2>&1", pg->run, PGBIN, pg->dir);
}

bool audit_nats_init(struct audit_nats *n, const char *tmp)
{
	memset(n, 0, sizeof(*n));
	if (test_sh("command -v nats-server >/dev/null") != 0) {
		printf("NATS: nats-server not found (package nats-server)\n");
		return false;
	}
	snprintf(n->dir, sizeof(n->dir), "%s/nats", tmp);
	n->port = audit_free_port();
	snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
	return audit_nats_ctl(n, true) == 0;
}

int audit_nats_ctl(struct audit_nats *n, bool start)
{
	if (!start) {
		if (n->pid > 0) {
			kill(n->pid, SIGKILL);
			waitpid(n->pid, NULL, 0);
		}
		n->pid = 0;
		return 0;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", n->port);
	n->pid = fork();
	if (n->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd", n->dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) { /* until it accepts connections */
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)n->port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok) {
			audit_sleep_ms(200);
			return 0;
		}
		audit_sleep_ms(50);
	}
	return -1;
}
