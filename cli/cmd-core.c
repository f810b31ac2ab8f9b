/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-core.c: exaictl version, features, json canonicalize. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int run_version(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, &cli_cmd_version, argc, argv, 0);
	if (r >= 0)
		return r;
	if (cli->json)
		return cli_print_json(json_pack("{s:s, s:i}", "version", exai_version(), "number",
						(json_int_t)exai_version_number())) ? EXIT_FAIL : EXIT_OK;
	printf("exaictl %s (libexai %s)\n", exai_version(), exai_version());
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_version = {
	.name = "version",
	.summary = "Print the version of libexai",
	.usage = "[--json]",
	.run = run_version,
};

static int run_features(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, &cli_cmd_features, argc, argv, 0);
	if (r >= 0)
		return r;
	uint64_t have = exai_features();
	json_t *obj = json_object();
	for (uint64_t bit = 1; bit; bit <<= 1) {
		const char *name = exai_feature_name(bit);
		if (!name)
			continue;
		if (cli->json)
			json_object_set_new(obj, name, json_boolean(have & bit));
		else
			printf("%-12s %s\n", name, (have & bit) ? "yes" : "no");
	}
	if (cli->json)
		return cli_print_json(obj) ? EXIT_FAIL : EXIT_OK;
	json_decref(obj);
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_features = {
	.name = "features",
	.summary = "List the optional features this libexai was built with",
	.usage = "[--json]",
	.run = run_features,
};

#define JSON_MAX_INPUT (64u << 20)

static int run_canonicalize(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, NULL, argc, argv, 1);
	if (r >= 0)
		return r;
	const char *in = optind < argc ? argv[optind] : "-";
	char *text, *canon;
	size_t len, clen;
	r = cli_read_input(in, JSON_MAX_INPUT, &text, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, in, r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
		return EXIT_FAIL;
	}
	r = exai_jcs_canonicalize(&canon, &clen, text, len);
	free(text);
	if (r < 0)
		return cli_fail(cli, r, in);
	fwrite(canon, 1, clen, stdout);
	exai_free(canon);
	return EXIT_OK;
}

static const struct cli_cmd json_canonicalize = {
	.name = "canonicalize",
	.summary = "Print a JSON text in RFC 8785 canonical form (no trailing newline)",
	.usage = "[FILE|-]",
	.run = run_canonicalize,
};

static const struct cli_cmd *const json_subs[] = { &json_canonicalize, NULL };

const struct cli_cmd cli_cmd_json = {
	.name = "json",
	.summary = "JSON tools (RFC 8785 canonical form, as used by the audit log)",
	.subs = json_subs,
};
