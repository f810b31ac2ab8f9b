/* SPDX-License-Identifier: Apache-2.0 */
/* sd-notify.c: sd_notify(3)'s protocol implemented directly: one AF_UNIX datagram of
 * newline-separated VAR=value assignments to the socket named by $NOTIFY_SOCKET. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd-notify.h"

int sd_notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!path || !path[0])
		return 0;
	size_t n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT; /* vsock: and relative paths are not supported */
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace: the name's length counts, no NUL */
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	int r = sent < 0 ? -errno : 0;
	close(fd);
	return r;
}

int64_t sd_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;

	if (!usec || !usec[0])
		return 0;
	if (pid && pid[0]) {
		errno = 0;
		long long p = strtoll(pid, &end, 10);
		if (errno || *end || p <= 0)
			return -EINVAL;
		if (p != (long long)getpid())
			return 0; /* meant for another process of the service */
	}
	errno = 0;
	unsigned long long v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0 || v > INT64_MAX || usec[0] == '-')
		return -EINVAL;
	return (int64_t)v;
}
