/* SPDX-License-Identifier: Apache-2.0 */
/* error.c: the thread-local error sentence and errno descriptions. */
#include <stdio.h>
#include <string.h>

#include "core-internal.h"

static _Thread_local char errmsg[1024];

EXAI__PRINTF(1, 0) static void set_msg(const char *fmt, va_list ap, int append_err)
{
	int n = vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	if (n < 0) {
		errmsg[0] = '\0';
		return;
	}
	if (append_err && (size_t)n < sizeof(errmsg))
		snprintf(errmsg + n, sizeof(errmsg) - (size_t)n, ": %s", exai_strerror(append_err));
}

int exai__err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_msg(fmt, ap, 0);
	va_end(ap);
	return err;
}

int exai__err_sys(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_msg(fmt, ap, err);
	va_end(ap);
	return err;
}

int exai__neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

EXAI_API const char *exai_errmsg(void)
{
	return errmsg;
}

EXAI_API const char *exai_strerror(int err)
{
	static _Thread_local char buf[128];
	if (err == 0)
		return "success";
	if (err > 0)
		err = -err;
	switch (err) {
	case -EBADMSG:
		return "authentication failed or malformed message";
	case -EACCES:
		return "denied by policy or key state";
	case -E2BIG:
		return "options struct has fields this library does not know";
	default:
		break;
	}
	/* strerror_r (GNU) is thread-safe; copy to the thread's buffer for a stable pointer. */
	const char *s = strerror_r(-err, buf, sizeof(buf));
	if (s != buf)
		snprintf(buf, sizeof(buf), "%s", s);
	return buf;
}
