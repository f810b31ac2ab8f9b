/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-core.c: exaictl version, info, features, json canonicalize. */
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

/* {"<feature>": true|false, ...} in the order of the feature bits; NULL when out of memory. */
static json_t *features_object(void)
{
	uint64_t have = exai_features();
	json_t *obj = json_object();
	for (uint64_t bit = 1; obj && bit; bit <<= 1) {
		const char *name = exai_feature_name(bit);
		if (name && json_object_set_new(obj, name, json_boolean(have & bit)) < 0) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}

static void print_features(json_t *features, const char *indent)
{
	const char *name;
	json_t *v;
	json_object_foreach(features, name, v)
		printf("%s%-12s %s\n", indent, name, json_is_true(v) ? "yes" : "no");
}

static int run_features(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, &cli_cmd_features, argc, argv, 0);
	if (r >= 0)
		return r;
	json_t *obj = features_object();
	if (!obj)
		return cli_fail(cli, -ENOMEM, "features");
	if (cli->json)
		return cli_print_json(obj) ? EXIT_FAIL : EXIT_OK;
	print_features(obj, "");
	json_decref(obj);
	return EXIT_OK;
}

static int run_info(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, &cli_cmd_info, argc, argv, 0);
	if (r >= 0)
		return r;
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		return EXIT_FAIL;
	json_t *features = features_object();
	if (!features)
		return cli_fail(cli, -ENOMEM, "info");
	if (cli->json)
		return cli_print_json(json_pack("{s:s, s:s, s:o}", "version", exai_version(), "state_dir",
						exai_ctx_state_dir(ctx), "features", features)) ? EXIT_FAIL : EXIT_OK;
	printf("libexai %s\nstate directory: %s\nfeatures:\n", exai_version(), exai_ctx_state_dir(ctx));
	print_features(features, "  ");
	json_decref(features);
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_info = {
	.name = "info",
	.summary = "Show the version, the state directory in use and the built-in features",
	.usage = "[--json]",
	.run = run_info,
};

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
