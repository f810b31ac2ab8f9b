/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-scrub.c: exaictl scrub [options] [FILE|-], scrub restore, scrub patterns, scrub test. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/random.h>

#include "cli.h"

#define SCRUB_MAX_INPUT (64u << 20)
#define MAX_PACKS 64

static const struct cli_cmd scrub_restore, scrub_patterns, scrub_test;
static const struct cli_cmd *const scrub_subs[] = { &scrub_restore, &scrub_patterns, &scrub_test, NULL };

/* Reads a 256-bit key file (32 raw bytes, or 64 hex digits and an optional newline) into
 * secure memory. */
static int read_key(struct cli *cli, const char *path, uint8_t **ret)
{
	char *text = NULL;
	size_t len = 0;
	int r = cli_read_input(path, 4096, &text, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, path, strerror(-r));
		return -1;
	}
	uint8_t *key = exai_secure_alloc(32);
	size_t n = len;
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	bool ok = key != NULL;
	if (ok && len == 32) {
		memcpy(key, text, 32);
	} else if (ok && n == 64) {
		for (int i = 0; i < 32 && ok; i++) {
			unsigned v = 0;
			ok = isxdigit((unsigned char)text[2 * i]) && isxdigit((unsigned char)text[2 * i + 1]) &&
			     sscanf(text + 2 * i, "%2x", &v) == 1;
			key[i] = (uint8_t)v;
		}
	} else {
		ok = false;
	}
	exai_memzero(text, len);
	free(text);
	if (!ok) {
		exai_secure_free(key);
		fprintf(stderr, "%s: %s: a key file holds 32 bytes, or 64 hex digits\n", cli->path, path);
		return -1;
	}
	*ret = key;
	return 0;
}

static int read_text(struct cli *cli, const char *path, char **ret, size_t *len)
{
	int r = cli_read_input(path, SCRUB_MAX_INPUT, ret, len);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, path ? path : "-",
			r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
		return -1;
	}
	return 0;
}

static int mode_of(const char *s)
{
	static const char *const names[] = { "mask", "placeholder", "hash", "pseudo" };
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i + 1;
	return -1;
}

static int write_file(struct cli *cli, const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wbe");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return 0;
}

static int run_scrub(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "pack", required_argument, NULL, 'p' },
		{ "policy", required_argument, NULL, 'P' },
		{ "hash-key", required_argument, NULL, 'H' },
		{ "vault", required_argument, NULL, 'V' },
		{ "vault-key", required_argument, NULL, 'K' },
		{ "key-name", required_argument, NULL, 'N' },
		{ "tenant", required_argument, NULL, 'T' },
		{ "request-id", required_argument, NULL, 'R' },
		{ "no-stage2", no_argument, NULL, '2' },
		{ "no-decode", no_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const char *packs_path[MAX_PACKS];
	size_t n_packs = 0;
	const char *policy_path = NULL, *hash_key_path = NULL, *vault_path = NULL, *vault_key_path = NULL;
	const char *key_name = "scrub-vault", *tenant = "default", *request_id = NULL;
	int mode = EXAI_SCRUB_MASK, c;
	uint32_t flags = 0;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "+:", opts)) != -1) {
		switch (c) {
		case 'm':
			if ((mode = mode_of(optarg)) < 0)
				return cli_usage_error(cli, "--mode must be mask, placeholder, hash or pseudo");
			break;
		case 'p':
			if (n_packs == MAX_PACKS)
				return cli_usage_error(cli, "at most %d --pack options", MAX_PACKS);
			packs_path[n_packs++] = optarg;
			break;
		case 'P': policy_path = optarg; break;
		case 'H': hash_key_path = optarg; break;
		case 'V': vault_path = optarg; break;
		case 'K': vault_key_path = optarg; break;
		case 'N': key_name = optarg; break;
		case 'T': tenant = optarg; break;
		case 'R': request_id = optarg; break;
		case '2': flags |= EXAI_SCRUBBER_NO_STAGE2; break;
		case 'D': flags |= EXAI_SCRUBBER_NO_DECODE; break;
		case 'j': cli->json = true; break;
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (mode == EXAI_SCRUB_PSEUDO && (!vault_path || !vault_key_path))
		return cli_usage_error(cli, "--mode pseudo needs --vault FILE and --vault-key FILE (the vault is only ever written sealed)");
	if (mode == EXAI_SCRUB_HASH && !hash_key_path)
		return cli_usage_error(cli, "--mode hash needs --hash-key FILE (the tenant's key)");
	const char *in = optind < argc ? argv[optind] : "-";

	int rc = EXIT_FAIL, r;
	char *packs[MAX_PACKS] = { 0 }, *policy = NULL, *text = NULL;
	size_t len = 0, plen;
	uint8_t *hash_key = NULL, *vault_key = NULL;
	exai_scrubber *s = NULL;
	exai_scrub_result *res = NULL;
	for (size_t i = 0; i < n_packs; i++)
		if (read_text(cli, packs_path[i], &packs[i], &plen) < 0)
			goto out;
	if (policy_path && read_text(cli, policy_path, &policy, &plen) < 0)
		goto out;
	if (hash_key_path && read_key(cli, hash_key_path, &hash_key) < 0)
		goto out;
	if (vault_key_path && read_key(cli, vault_key_path, &vault_key) < 0)
		goto out;
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		goto out;
	EXAI_OPTS(exai_scrubber_opts, o, .packs = (const char *const *)packs, .n_packs = n_packs, .flags = flags,
		  .mode = mode, .hash_key = hash_key, .hash_key_len = hash_key ? 32 : 0, .policy = policy,
		  .tenant = tenant);
	if ((r = exai_scrubber_new(&s, ctx, &o)) < 0) {
		rc = cli_fail(cli, r, "cannot build the scrubber");
		goto out;
	}
	if (read_text(cli, in, &text, &len) < 0)
		goto out;
	if ((r = exai_scrub_text(&res, s, text, len, NULL)) < 0) {
		rc = cli_fail(cli, r, in);
		goto out;
	}
	char rid[33];
	if (mode == EXAI_SCRUB_PSEUDO) {
		if (!request_id) {
			uint8_t rb[16];
			if (getrandom(rb, sizeof(rb), 0) != (ssize_t)sizeof(rb)) {
				fprintf(stderr, "%s: getrandom: %s\n", cli->path, strerror(errno));
				goto out;
			}
			for (size_t i = 0; i < sizeof(rb); i++)
				snprintf(rid + 2 * i, 3, "%02x", rb[i]);
			request_id = rid;
		}
		uint8_t *v = NULL, *sealed = NULL;
		size_t vl = 0, sl = 0;
		r = exai_scrub_result_vault(&v, &vl, res);
		if (r == -ENOENT) {
			r = 0; /* nothing found: an empty vault still tells restore there is nothing */
			v = exai_secure_alloc(9);
			if (v) {
				memcpy(v, "EXSV\x01\0\0\0\0", 9);
				vl = 9;
			} else {
				r = -ENOMEM;
			}
		}
		if (r == 0)
			r = exai_scrub_vault_seal(&sealed, &sl, v, vl, vault_key, key_name, tenant, request_id);
		exai_secure_free(v);
		if (r < 0) {
			rc = cli_fail(cli, r, "cannot seal the vault");
			goto out;
		}
		r = write_file(cli, vault_path, sealed, sl);
		exai_free(sealed);
		if (r < 0)
			goto out;
	}
	size_t olen;
	const char *out = exai_scrub_result_text(res, &olen);
	if (cli->json) {
		json_t *fs = json_array();
		for (size_t i = 0; i < exai_scrub_result_count(res); i++) {
			const struct exai_scrub_finding *f = exai_scrub_result_finding(res, i);
			json_array_append_new(fs, json_pack("{s:s, s:s, s:I, s:I, s:i, s:f, s:s, s:i}", "class", f->cls,
							    "pattern", f->pattern, "start", (json_int_t)f->start, "end",
							    (json_int_t)f->end, "stage", f->stage, "score", f->score,
							    "kind", f->kind == 2 ? "pii" : "secret", "decoded", f->decoded));
		}
		json_t *obj = json_pack("{s:s%, s:o, s:b}", "text", out, olen, "findings", fs, "invalid_utf8",
					exai_scrub_result_invalid_utf8(res));
		if (mode == EXAI_SCRUB_PSEUDO && obj)
			json_object_set_new(obj, "request_id", json_string(request_id));
		if (!obj || cli_print_json(obj) < 0) {
			fprintf(stderr, "%s: the output is not valid UTF-8 JSON text; use it without --json\n", cli->path);
			goto out;
		}
	} else {
		fwrite(out, 1, olen, stdout);
	}
	rc = EXIT_OK;
out:
	exai_scrub_result_free(res);
	exai_scrubber_free(s);
	for (size_t i = 0; i < n_packs; i++)
		free(packs[i]);
	free(policy);
	free(text);
	exai_secure_free(hash_key);
	exai_secure_free(vault_key);
	return rc;
}

const struct cli_cmd cli_cmd_scrub = {
	.name = "scrub",
	.summary = "Find and redact secrets and personal data in a prompt (prints the scrubbed text)\n\n"
		   "Options:\n"
		   "  --mode M           mask (default), placeholder, hash or pseudo\n"
		   "  --json             {\"text\", \"findings\": [{class, pattern, start, end, stage, score}]};\n"
		   "                     start/end are byte offsets in the input\n"
		   "  --pack FILE        a custom pattern pack merged with the built-in one (repeatable)\n"
		   "  --policy FILE      the tenant's policy (allowlists, per-class enable and mode)\n"
		   "  --hash-key FILE    the tenant's key for --mode hash (32 bytes or 64 hex digits)\n"
		   "  --vault FILE       --mode pseudo: where the sealed vault goes\n"
		   "  --vault-key FILE   --mode pseudo: the tenant's 256-bit key that seals it\n"
		   "  --key-name NAME    the key's name in the envelope (default scrub-vault)\n"
		   "  --tenant T         tenant id (audit events, vault context; default \"default\")\n"
		   "  --request-id ID    the vault's object id (default: random, printed with --json)\n"
		   "  --no-stage2        patterns only; --no-decode: no base64/URL/escape/hex decoding",
	.usage = "[--mode mask|placeholder|hash|pseudo] [--json] [--pack FILE]... [FILE|-]\n"
		 "       exaictl scrub restore|patterns|test ...",
	.run = run_scrub,
	.subs = scrub_subs,
};

static int run_restore(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vault", required_argument, NULL, 'V' },
		{ "vault-key", required_argument, NULL, 'K' },
		{ "key-name", required_argument, NULL, 'N' },
		{ "tenant", required_argument, NULL, 'T' },
		{ "request-id", required_argument, NULL, 'R' },
		{ 0 },
	};
	const char *vault_path = NULL, *key_path = NULL, *key_name = "scrub-vault", *tenant = "default",
		   *request_id = NULL;
	int c;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "+:", opts)) != -1) {
		switch (c) {
		case 'V': vault_path = optarg; break;
		case 'K': key_path = optarg; break;
		case 'N': key_name = optarg; break;
		case 'T': tenant = optarg; break;
		case 'R': request_id = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (!vault_path || !key_path)
		return cli_usage_error(cli, "--vault FILE and --vault-key FILE are required");
	const char *in = optind < argc ? argv[optind] : "-";
	int rc = EXIT_FAIL, r;
	char *sealed = NULL, *text = NULL, *out = NULL;
	size_t sl = 0, len = 0, vl = 0, ol = 0;
	uint8_t *key = NULL, *vault = NULL;
	if (read_key(cli, key_path, &key) < 0 || read_text(cli, vault_path, &sealed, &sl) < 0)
		goto out;
	if ((r = exai_scrub_vault_open(&vault, &vl, (const uint8_t *)sealed, sl, key, key_name, tenant, request_id)) < 0) {
		rc = cli_fail(cli, r, vault_path);
		goto out;
	}
	if (read_text(cli, in, &text, &len) < 0)
		goto out;
	if ((r = exai_scrub_restore(&out, &ol, vault, vl, text, len)) < 0) {
		rc = cli_fail(cli, r, in);
		goto out;
	}
	fwrite(out, 1, ol, stdout);
	rc = EXIT_OK;
out:
	if (out)
		exai_memzero(out, ol);
	exai_free(out);
	exai_secure_free(vault);
	exai_secure_free(key);
	free(sealed);
	free(text);
	return rc;
}

static const struct cli_cmd scrub_restore = {
	.name = "restore",
	.summary = "Put the values a pseudo-mode scrub replaced back into a model's response",
	.usage = "--vault FILE --vault-key FILE [--key-name NAME] [--tenant T] [--request-id ID] [FILE|-]",
	.run = run_restore,
};

static int run_patterns(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, &scrub_patterns, argc, argv, 0);
	if (r >= 0)
		return r;
	exai_scrubber *s = NULL;
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		return EXIT_FAIL;
	EXAI_OPTS(exai_scrubber_opts, o, .flags = EXAI_SCRUBBER_NO_STAGE2);
	if ((r = exai_scrubber_new(&s, ctx, &o)) < 0)
		return cli_fail(cli, r, "cannot build the scrubber");
	size_t n = exai_scrubber_pattern_count(s);
	json_t *arr = cli->json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		const char *id, *cls, *v;
		int kind, sev;
		exai_scrubber_pattern(s, i, &id, &cls, &kind, &v, &sev);
		if (arr)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:i}", "id", id, "class", cls, "kind",
							     kind == 2 ? "pii" : "secret", "validator", v, "severity", sev));
		else
			printf("%-48s %-28s %-6s %-16s %d\n", id, cls, kind == 2 ? "pii" : "secret", v, sev);
	}
	exai_scrubber_free(s);
	if (arr)
		return cli_print_json(json_pack("{s:I, s:o}", "count", (json_int_t)n, "patterns", arr)) ? EXIT_FAIL : EXIT_OK;
	printf("%zu patterns\n", n);
	return EXIT_OK;
}

static const struct cli_cmd scrub_patterns = {
	.name = "patterns",
	.summary = "List the built-in patterns (id, class, kind, validator, severity 1-4)",
	.usage = "[--json]",
	.run = run_patterns,
};

static int run_test(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, &scrub_test, argc, argv, 1);
	if (r >= 0)
		return r;
	if (optind >= argc)
		return cli_usage_error(cli, "which pack? (a JSON file)");
	char *pack = NULL, *report = NULL;
	size_t len, failures = 0;
	if (read_text(cli, argv[optind], &pack, &len) < 0)
		return EXIT_FAIL;
	r = exai_scrub_pack_test(&failures, &report, NULL, pack);
	free(pack);
	if (r < 0)
		return cli_fail(cli, r, argv[optind]);
	if (cli->json) {
		r = cli_print_json(json_pack("{s:s, s:I, s:s}", "pack", argv[optind], "failures", (json_int_t)failures,
					     "report", report ? report : ""));
	} else {
		fputs(report ? report : "", stdout);
		printf("%s: %zu failure(s)\n", argv[optind], failures);
	}
	exai_free(report);
	return failures || r < 0 ? EXIT_FAIL : EXIT_OK;
}

static const struct cli_cmd scrub_test = {
	.name = "test",
	.summary = "Check a pattern pack and run its own examples (exit 1 on any failure)",
	.usage = "[--json] PACK",
	.run = run_test,
};
