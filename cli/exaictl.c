/* SPDX-License-Identifier: Apache-2.0 */
/* exaictl: the command line of libexai. `exaictl <noun> <verb> [options]`. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* One line per noun; each module's commands live in cli/cmd-<module>.c. */
static const struct cli_cmd *const nouns[] = {
	&cli_cmd_version,
	&cli_cmd_info,
	&cli_cmd_features,
	&cli_cmd_json,
	&cli_cmd_key, &cli_cmd_encrypt, &cli_cmd_decrypt, &cli_cmd_sign, &cli_cmd_verify, &cli_cmd_keygen,
	&cli_cmd_audit,
	&cli_cmd_policy,
	&cli_cmd_scrub,
	&cli_cmd_ws,
	NULL,
};

static const struct cli_cmd root = {
	.name = "exaictl",
	.summary = "Operate libexai: workspaces, keys, scrubbing, audit and egress policy.\n\n"
		   "Global options (before the command):\n"
		   "  --state-dir DIR  state directory (default: $EXAI_STATE_DIR, else /var/lib/exai)\n"
		   "  --json           machine-readable output on commands that print data\n"
		   "  -v, --verbose    the library's log on standard error (-v info, -vv debug)\n"
		   "  --version        print the version and exit\n"
		   "  -h, --help       print this help and exit\n\n"
		   "Exit status: 0 success, 1 failure, 2 usage error.",
	.usage = "[global options] <command> [options]",
	.subs = nouns,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cli cli = { .path = "exaictl" };
	int c;

	/* '+': stop at the first operand, which is the command. */
	while ((c = cli_getopt(&cli, argc, argv, "+:vh", opts)) != -1) {
		switch (c) {
		case 's':
			cli.state_dir = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		case 'v':
			cli.verbose++;
			break;
		case 'V':
			printf("exaictl %s\n", exai_version());
			return EXIT_OK;
		case 'h':
			cli_help(stdout, "exaictl", &root);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_help(stderr, "exaictl", &root);
		return EXIT_USAGE;
	}
	int r = cli_dispatch(&cli, &root, argc - optind + 1, argv + optind - 1);
	exai_ctx_unref(cli.ctx);
	return r;
}
