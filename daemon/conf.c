/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.c: exaid's configuration file. One "key = value" per line; blank lines and lines
 * whose first non-blank character is '#' are ignored. A value is the rest of the line with
 * surrounding blanks removed (no quoting, so '#' inside a value is part of it). Unknown keys,
 * keys set twice, empty and invalid values are errors that name the file, line, key and reason.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exai/exai.h>

#include "conf.h"

static const char *const target_names[] = {
	[EXAID_LOG_AUTO] = "auto",
	[EXAID_LOG_JOURNAL] = "journal",
	[EXAID_LOG_STDERR] = "stderr",
};

const char *exaid_log_target_name(enum exaid_log_target t)
{
	return (size_t)t < sizeof(target_names) / sizeof(target_names[0]) ? target_names[t] : "?";
}

void exaid_conf_defaults(struct exaid_conf *conf)
{
	*conf = (struct exaid_conf){ .log_level = EXAI_LOG_INFO, .log_target = EXAID_LOG_AUTO };
}

void exaid_conf_free(struct exaid_conf *conf)
{
	free(conf->state_dir);
	free(conf->state_dir_from);
	exaid_conf_defaults(conf);
}

/* The parse state of one file: where we are, for messages. */
struct parser {
	const char *path;
	unsigned line;
	char *err;
	size_t err_size;
	struct exaid_conf *conf;
	unsigned seen[3]; /* line each key was set on, to refuse a second setting */
};

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n = key ? snprintf(p->err, p->err_size, "%s:%u: %s: ", p->path, p->line, key)
		    : snprintf(p->err, p->err_size, "%s:%u: ", p->path, p->line);
	if (n < 0 || (size_t)n >= p->err_size)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int set_state_dir(struct parser *p, const char *key, const char *v)
{
	if (v[0] != '/')
		return fail(p, key, "'%s' is not an absolute path", v);
	if (strlen(v) >= 4096)
		return fail(p, key, "the path is longer than PATH_MAX");
	char *dup = strdup(v), *from = NULL;
	if (!dup || asprintf(&from, "%s:%u", p->path, p->line) < 0) {
		free(dup);
		return fail(p, key, "out of memory");
	}
	free(p->conf->state_dir);
	free(p->conf->state_dir_from);
	p->conf->state_dir = dup;
	p->conf->state_dir_from = from;
	return 0;
}

static int set_log_level(struct parser *p, const char *key, const char *v)
{
	for (int l = EXAI_LOG_ERROR; l <= EXAI_LOG_DEBUG; l++)
		if (!strcmp(v, exai_log_level_name(l))) {
			p->conf->log_level = l;
			return 0;
		}
	return fail(p, key, "'%s' is not one of error, warning, notice, info, debug", v);
}

static int set_log_target(struct parser *p, const char *key, const char *v)
{
	for (size_t t = 0; t < sizeof(target_names) / sizeof(target_names[0]); t++)
		if (!strcmp(v, target_names[t])) {
			p->conf->log_target = (enum exaid_log_target)t;
			return 0;
		}
	return fail(p, key, "'%s' is not one of auto, journal, stderr", v);
}

static const struct {
	const char *name;
	int (*set)(struct parser *p, const char *key, const char *value);
} keys[] = {
	{ "state_dir", set_state_dir },
	{ "log_level", set_log_level },
	{ "log_target", set_log_target },
};

static char *trim(char *s)
{
	while (isblank((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int parse_line(struct parser *p, char *line, size_t len)
{
	if (strlen(line) != len)
		return fail(p, NULL, "contains a NUL byte");
	char *s = trim(line);
	if (!s[0] || s[0] == '#')
		return 0;
	char *eq = strchr(s, '=');
	if (!eq)
		return fail(p, NULL, "expected 'key = value', got '%.64s'", s);
	*eq = '\0';
	char *key = trim(s), *value = trim(eq + 1);
	if (!key[0])
		return fail(p, NULL, "a line starts with '=' (no key)");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].name) != 0)
			continue;
		if (p->seen[i])
			return fail(p, key, "set a second time (first on line %u)", p->seen[i]);
		if (!value[0])
			return fail(p, key, "empty value (remove the line for the default)");
		p->seen[i] = p->line;
		return keys[i].set(p, key, value);
	}
	return fail(p, NULL, "unknown key '%.64s' (known: state_dir, log_level, log_target)", key);
}

int exaid_conf_read(struct exaid_conf *conf, FILE *f, const char *path, char *err, size_t err_size)
{
	struct parser p = { .path = path, .err = err, .err_size = err_size, .conf = conf };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	exaid_conf_defaults(conf);
	errno = 0;
	while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
		p.line++;
		r = parse_line(&p, line, (size_t)n);
		errno = 0;
	}
	if (r == 0 && ferror(f)) {
		r = errno > 0 ? -errno : -EIO;
		snprintf(err, err_size, "%s: cannot read (after line %u): %s", path, p.line, strerror(-r));
	}
	free(line);
	if (r < 0)
		exaid_conf_free(conf);
	return r;
}

int exaid_conf_load(struct exaid_conf *conf, const char *path, bool missing_ok, char *err, size_t err_size)
{
	exaid_conf_defaults(conf);
	FILE *f = fopen(path, "re");
	if (!f) {
		int r = -errno;
		if (r == -ENOENT && missing_ok)
			return 0;
		snprintf(err, err_size, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	int r = exaid_conf_read(conf, f, path, err, err_size);
	fclose(f);
	return r;
}
