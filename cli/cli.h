/* SPDX-License-Identifier: Apache-2.0 */
/* cli.h: the exaictl command framework, shared by every command file (cmd-*.c). */
#ifndef EXAI_CLI_H
#define EXAI_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include <exai/exai.h>

/* Exit codes: the contract of every command. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cli {
	const char *state_dir; /* --state-dir, or NULL for the library's default */
	bool json;             /* --json: machine-readable output */
	int verbose;           /* -v: log level raised per -v */
	exai_ctx *ctx;         /* created on first use by cli_ctx() */
	const char *path;      /* "exaictl key init": for messages */
};

struct cli_cmd {
	const char *name;
	const char *summary;             /* one line for the parent's --help */
	const char *usage;               /* full help text after "Usage: <path> " */
	int (*run)(struct cli *cli, int argc, char **argv); /* argv[0] is the command name */
	const struct cli_cmd *const *subs; /* or sub-commands (NULL-terminated) */
	/* with both run and subs: argv[1] naming a sub goes to it, everything else to run() */
};

/* Runs @cmd: a leaf's run(), or dispatches argv[1] among its subs; handles --help. */
int cli_dispatch(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv);

/* The context, created on first use with the global options. NULL after printing an error. */
exai_ctx *cli_ctx(struct cli *cli);

/* Prints "exaictl: <what>: <exai_errmsg() or strerror>" to stderr; returns EXIT_FAIL. */
int cli_fail(struct cli *cli, int err, const char *what);
/* Prints "<path>: <message>" and a hint to --help; returns EXIT_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses the options of a leaf command that takes only --help and --json (and no more than
 * @max_args operands); returns -1 on success, else the exit code to return. */
int cli_simple_args(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv, int max_args);
/* getopt_long with the leaf's --help handled; wraps the common loop. Returns the option, -1 at
 * the end, or '?' after printing a usage error (return EXIT_USAGE then). */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts, const struct option *longopts);
/* Prints @v (stealing the reference) as one line of RFC 8785 canonical JSON. */
int cli_print_json(json_t *v);
/* Prints a command's help to @f. */
void cli_help(FILE *f, const char *path, const struct cli_cmd *cmd);
/* Reads a whole file, or standard input for NULL or "-", bounded by @max. */
int cli_read_input(const char *path, size_t max, char **ret, size_t *retlen);

/* Commands, one set per file. */
extern const struct cli_cmd cli_cmd_version;
extern const struct cli_cmd cli_cmd_info;
extern const struct cli_cmd cli_cmd_features;
extern const struct cli_cmd cli_cmd_json;
/* cmd-keys.c */
extern const struct cli_cmd cli_cmd_key;
extern const struct cli_cmd cli_cmd_encrypt;
extern const struct cli_cmd cli_cmd_decrypt;
extern const struct cli_cmd cli_cmd_sign;
extern const struct cli_cmd cli_cmd_verify;
extern const struct cli_cmd cli_cmd_keygen;
extern const struct cli_cmd cli_cmd_audit;
extern const struct cli_cmd cli_cmd_policy;
extern const struct cli_cmd cli_cmd_scrub;
extern const struct cli_cmd cli_cmd_ws;

#endif
