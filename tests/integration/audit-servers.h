/* SPDX-License-Identifier: Apache-2.0 */
/* audit-servers.h: PostgreSQL 15 and nats-server started in a temporary directory on free
 * loopback ports, for the audit sink tests and benchmarks. */
#ifndef EXAI_AUDIT_SERVERS_H
#define EXAI_AUDIT_SERVERS_H

#include <stdbool.h>
#include <sys/types.h>

struct audit_pg {
	char dir[512], run[64], conninfo[256];
	int port;
};
/* initdb + start (as nobody when root); false with a printed reason when PostgreSQL is missing. */
bool audit_pg_init(struct audit_pg *pg, const char *tmp);
/* start (true) or stop -m immediate (false); returns 0 on success. */
int audit_pg_ctl(struct audit_pg *pg, bool start);

struct audit_nats {
	char dir[512], url[64];
	int port;
	pid_t pid;
};
bool audit_nats_init(struct audit_nats *n, const char *tmp);
/* start (true) or SIGKILL (false). */
int audit_nats_ctl(struct audit_nats *n, bool start);

int audit_free_port(void);
void audit_sleep_ms(int ms);

#endif
