/* SPDX-License-Identifier: Apache-2.0 */
/* sd-notify.h: systemd's service notification protocol, without libsystemd. */
#ifndef EXAID_SD_NOTIFY_H
#define EXAID_SD_NOTIFY_H

#include <stdint.h>

/* Sends @state ("READY=1", "STATUS=...", newline-separated assignments) as one datagram to
 * $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). 0 when sent, 0 when
 * NOTIFY_SOCKET is unset (not started by systemd), else a negative errno. */
int sd_notify_send(const char *state);

/* The watchdog interval from $WATCHDOG_USEC (when $WATCHDOG_PID is unset or names this
 * process), in microseconds; 0 when no watchdog is requested, -EINVAL when malformed. */
int64_t sd_watchdog_usec(void);

#endif
