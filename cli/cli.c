/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: dispatch, help, errors and output shared by all exaictl commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

void cli_help(FILE *f, const char *path, const struct cli_cmd *cmd)
{
	fprintf(f, "Usage: %s %s\n", path, cmd->usage ? cmd->usage : (cmd->subs ? "<command> [options]" : ""));
	if (cmd->summary)
		fprintf(f, "\n%s\n", cmd->summary);
	if (cmd->subs) {
		fprintf(f, "\nCommands:\n");
		for (const struct cli_cmd *const *s = cmd->subs; *s; s++)
			fprintf(f, "  %-14s %s\n", (*s)->name, (*s)->summary ? (*s)->summary : "");
		fprintf(f, "\nRun '%s <command> --help' for a command's options.\n", path);
	}
}

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli->path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", cli->path);
	return EXIT_USAGE;
}

int cli_fail(struct cli *cli, int err, const char *what)
{
	const char *msg = exai_errmsg();
	if (!msg || !msg[0])
		msg = exai_strerror(err);
	fprintf(stderr, "%s: %s: %s\n", cli->path, what, msg);
	return EXIT_FAIL;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

int cli_dispatch(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	char path[256];
	const char *parent = cli->path;

	/* argv[1] naming a sub-command goes to it, also for a command that runs itself too */
	for (const struct cli_cmd *const *s = cmd->subs; s && *s && argc >= 2; s++) {
		if (strcmp((*s)->name, argv[1]) != 0)
			continue;
		snprintf(path, sizeof(path), "%s %s", parent, (*s)->name);
		cli->path = path;
		int r = cli_dispatch(cli, *s, argc - 1, argv + 1);
		cli->path = parent;
		return r;
	}
	if (cmd->run) {
		if (wants_help(argc, argv)) {
			cli_help(stdout, cli->path, cmd);
			return EXIT_OK;
		}
		return cmd->run(cli, argc, argv);
	}
	if (argc < 2) {
		cli_help(stderr, cli->path, cmd);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		cli_help(stdout, cli->path, cmd);
		return EXIT_OK;
	}
	return cli_usage_error(cli, "unknown command '%s'", argv[1]);
}

int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	int idx;
	opterr = 0;
	int c = getopt_long(argc, argv, shortopts, longopts, &idx);
	if (c == '?') {
		if (optopt)
			cli_usage_error(cli, "unknown option '-%c'", optopt);
		else
			cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
	} else if (c == ':') {
		cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
		c = '?';
	}
	return c;
}

int cli_simple_args(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv, int max_args)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	int c;
	(void)cmd;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "+:", opts)) != -1) {
		if (c == 'j')
			cli->json = true;
		else
			return EXIT_USAGE;
	}
	if (argc - optind > max_args)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + max_args]);
	return -1;
}

/* -v: the library's log lines on standard error (one fprintf each: stdio locks the stream). */
static void cli_log(void *userdata, int level, const char *module, const char *message)
{
	(void)userdata;
	fprintf(stderr, "exaictl: %s: %s: %s\n", exai_log_level_name(level), module, message);
}

exai_ctx *cli_ctx(struct cli *cli)
{
	if (cli->ctx)
		return cli->ctx;
	EXAI_OPTS(exai_ctx_opts, o, .state_dir = cli->state_dir, .flags = EXAI_CTX_HARDEN_PROCESS,
		  .log_fn = cli->verbose ? cli_log : NULL,
		  .log_level = cli->verbose >= 2 ? EXAI_LOG_DEBUG : EXAI_LOG_INFO);
	int r = exai_ctx_new(&cli->ctx, &o);
	if (r < 0) {
		cli_fail(cli, r, "cannot create the libexai context");
		return NULL;
	}
	return cli->ctx;
}

int cli_print_json(json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (!text)
		return -ENOMEM;
	/* Canonical form, so that output is stable for scripts and diffs. */
	char *canon = NULL;
	size_t n = 0;
	int r = exai_jcs_canonicalize(&canon, &n, text, strlen(text));
	free(text);
	if (r < 0)
		return r;
	fwrite(canon, 1, n, stdout);
	fputc('\n', stdout);
	exai_free(canon);
	return fflush(stdout) == 0 ? 0 : -errno;
}

int cli_read_input(const char *path, size_t max, char **ret, size_t *retlen)
{
	FILE *f = stdin;
	if (path && strcmp(path, "-") != 0) {
		f = fopen(path, "rbe");
		if (!f)
			return -errno;
	}
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	int r = buf ? 0 : -ENOMEM;
	while (r == 0) {
		if (len == cap) {
			if (cap > max) {
				r = -EFBIG;
				break;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				r = -EIO;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (r == 0 && len > max)
		r = -EFBIG;
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[len] = '\0';
	*ret = buf;
	*retlen = len;
	return 0;
}
