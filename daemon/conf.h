/* SPDX-License-Identifier: Apache-2.0 */
/* conf.h: exaid's configuration file (docs/exaid.conf.5). */
#ifndef EXAID_CONF_H
#define EXAID_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum exaid_log_target {
	EXAID_LOG_AUTO,    /* journal when stderr is the journal ($JOURNAL_STREAM), else stderr */
	EXAID_LOG_JOURNAL, /* "<N>" syslog-level prefixes that journald reads from stderr */
	EXAID_LOG_STDERR,  /* "exaid: level: module: message" */
};

struct exaid_conf {
	char *state_dir; /* NULL: the library's default ($EXAI_STATE_DIR, else the built-in one) */
	int log_level;   /* EXAI_LOG_* */
	enum exaid_log_target log_target;
	/* Where each key was set ("FILE:LINE"), or NULL for its default: for messages. */
	char *state_dir_from;
};

/* Fills @conf with the defaults. */
void exaid_conf_defaults(struct exaid_conf *conf);

/* Fills @conf with the defaults, then with the settings of @path. A missing file is an error
 * unless @missing_ok (then @conf holds the defaults). On error @conf holds the defaults (and
 * nothing to free), "PATH:LINE: KEY: reason" (or the file's error) is written to @err (of
 * @err_size bytes) and a negative errno returned: -EINVAL for a bad line, key or value. */
int exaid_conf_load(struct exaid_conf *conf, const char *path, bool missing_ok, char *err, size_t err_size);

/* The same for an open stream; @path names it in messages. */
int exaid_conf_read(struct exaid_conf *conf, FILE *f, const char *path, char *err, size_t err_size);

/* Frees what @conf owns. */
void exaid_conf_free(struct exaid_conf *conf);

/* The name of a log target, for --check-config. */
const char *exaid_log_target_name(enum exaid_log_target t);

#endif
