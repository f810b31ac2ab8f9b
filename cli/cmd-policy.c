/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-policy.c: exaictl policy check|explain|sign|verify|apply|detach|stats|events. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define BUNDLE_MAX (32u << 20)
#define KEY_MAX 4096
#define MAX_LIST 16

/* Options shared by the commands that read a bundle or act on a device. */
struct pol_args {
	const char *dev;
	const char *bpffs;
	const char *host_netns;
	const char *sig_path;
	const char *tenant;
	const char *keys[MAX_LIST + 1];
	int nkeys;
	const char *floor_allow[MAX_LIST + 1];
	int nfloor;
	bool allow_unsigned;
	bool no_host_floor;
	bool follow;
	unsigned event_rate;
	const char *secret_key, *password_file, *trusted_comment, *output;
	bool follow_dns;
	unsigned dns_grace;
};

enum { O_DEV = 256, O_BPFFS, O_SIG, O_TENANT, O_KEY, O_UNSIGNED, O_FLOOR, O_NO_HOST, O_RATE, O_JSON, O_FOLLOW,
       O_SECRET, O_PWFILE, O_TCOMMENT, O_OUTPUT, O_FOLLOW_DNS, O_DNS_GRACE, O_HOST_NETNS };

static const struct option pol_opts[] = {
	{ "dev", required_argument, NULL, O_DEV },
	{ "bpffs", required_argument, NULL, O_BPFFS },
	{ "signature", required_argument, NULL, O_SIG },
	{ "tenant", required_argument, NULL, O_TENANT },
	{ "trusted-key", required_argument, NULL, O_KEY },
	{ "public-key", required_argument, NULL, O_KEY },
	{ "allow-unsigned", no_argument, NULL, O_UNSIGNED },
	{ "floor-allow", required_argument, NULL, O_FLOOR },
	{ "no-host-floor", no_argument, NULL, O_NO_HOST },
	{ "host-netns", required_argument, NULL, O_HOST_NETNS },
	{ "event-rate", required_argument, NULL, O_RATE },
	{ "json", no_argument, NULL, O_JSON },
	{ "follow", no_argument, NULL, O_FOLLOW },
	{ "secret-key", required_argument, NULL, O_SECRET },
	{ "password-file", required_argument, NULL, O_PWFILE },
	{ "trusted-comment", required_argument, NULL, O_TCOMMENT },
	{ "output", required_argument, NULL, O_OUTPUT },
	{ "follow-dns", no_argument, NULL, O_FOLLOW_DNS },
	{ "dns-grace", required_argument, NULL, O_DNS_GRACE },
	{ 0 },
};

/* Where each option lands in struct pol_args: a string, a flag, a list of strings (with its
 * count) or a number within bounds. */
enum { A_STR, A_FLAG, A_LIST, A_UINT };
static const struct pol_field {
	int opt;
	int kind;
	size_t off, count_off; /* count_off: the list's count */
	unsigned max;          /* A_UINT: 1..max */
	const char *what;      /* A_LIST: what the list holds; A_UINT: the option */
	const char *unit;      /* A_UINT: "" or " seconds" */
} pol_fields[] = {
	{ O_DEV, A_STR, offsetof(struct pol_args, dev), 0, 0, NULL, NULL },
	{ O_BPFFS, A_STR, offsetof(struct pol_args, bpffs), 0, 0, NULL, NULL },
	{ O_HOST_NETNS, A_STR, offsetof(struct pol_args, host_netns), 0, 0, NULL, NULL },
	{ O_SIG, A_STR, offsetof(struct pol_args, sig_path), 0, 0, NULL, NULL },
	{ O_TENANT, A_STR, offsetof(struct pol_args, tenant), 0, 0, NULL, NULL },
	{ O_SECRET, A_STR, offsetof(struct pol_args, secret_key), 0, 0, NULL, NULL },
	{ O_PWFILE, A_STR, offsetof(struct pol_args, password_file), 0, 0, NULL, NULL },
	{ O_TCOMMENT, A_STR, offsetof(struct pol_args, trusted_comment), 0, 0, NULL, NULL },
	{ O_OUTPUT, A_STR, offsetof(struct pol_args, output), 0, 0, NULL, NULL },
	{ O_UNSIGNED, A_FLAG, offsetof(struct pol_args, allow_unsigned), 0, 0, NULL, NULL },
	{ O_NO_HOST, A_FLAG, offsetof(struct pol_args, no_host_floor), 0, 0, NULL, NULL },
	{ O_FOLLOW, A_FLAG, offsetof(struct pol_args, follow), 0, 0, NULL, NULL },
	{ O_FOLLOW_DNS, A_FLAG, offsetof(struct pol_args, follow_dns), 0, 0, NULL, NULL },
	{ O_KEY, A_LIST, offsetof(struct pol_args, keys), offsetof(struct pol_args, nkeys), 0, "trusted keys", NULL },
	{ O_FLOOR, A_LIST, offsetof(struct pol_args, floor_allow), offsetof(struct pol_args, nfloor), 0,
	  "floor overrides", NULL },
	{ O_RATE, A_UINT, offsetof(struct pol_args, event_rate), 0, 1000000, "--event-rate", "" },
	{ O_DNS_GRACE, A_UINT, offsetof(struct pol_args, dns_grace), 0, 86400, "--dns-grace", " seconds" },
};

/* Stores one option's value in @a; -1 on success, else the exit code. */
static int pol_store(struct cli *cli, struct pol_args *a, int opt)
{
	char *base = (char *)a;
	for (size_t i = 0; i < sizeof(pol_fields) / sizeof(pol_fields[0]); i++) {
		const struct pol_field *f = &pol_fields[i];
		if (f->opt != opt)
			continue;
		switch (f->kind) {
		case A_STR:
			*(const char **)(void *)(base + f->off) = optarg;
			return -1;
		case A_FLAG:
			*(bool *)(base + f->off) = true;
			return -1;
		case A_LIST: {
			int *n = (int *)(void *)(base + f->count_off);
			if (*n == MAX_LIST)
				return cli_usage_error(cli, "at most %d %s", MAX_LIST, f->what);
			((const char **)(void *)(base + f->off))[(*n)++] = optarg;
			return -1;
		}
		default: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v == 0 || v > f->max)
				return cli_usage_error(cli, "%s must be between 1 and %u%s", f->what, f->max, f->unit);
			*(unsigned *)(void *)(base + f->off) = (unsigned)v;
			return -1;
		}
		}
	}
	return -1; /* O_JSON: not an argument of the command */
}

/* Parses the options; @allowed lists the O_* values the command takes (0-terminated).
 * Returns -1 on success, else the exit code. */
static int pol_parse(struct cli *cli, struct pol_args *a, int argc, char **argv, const int *allowed, int min_args,
		     int max_args)
{
	int c;
	memset(a, 0, sizeof(*a));
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "+:f", pol_opts)) != -1) {
		if (c == '?')
			return EXIT_USAGE;
		if (c == 'f')
			c = O_FOLLOW;
		bool ok = false;
		for (const int *p = allowed; *p && !ok; p++)
			ok = *p == c;
		if (!ok)
			return cli_usage_error(cli, "option '%s' does not apply here", argv[optind - 1]);
		if (c == O_JSON)
			cli->json = true;
		int r = pol_store(cli, a, c);
		if (r >= 0)
			return r;
	}
	int n = argc - optind;
	if (n < min_args)
		return cli_usage_error(cli, "missing argument");
	if (n > max_args)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + max_args]);
	for (const int *p = allowed; *p; p++)
		if (*p == O_DEV && !a->dev)
			return cli_usage_error(cli, "--dev IFACE is required");
	return -1;
}

static int read_or_fail(struct cli *cli, const char *path, size_t max, char **ret, size_t *len)
{
	int r = cli_read_input(path, max, ret, len);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, path, r == -EFBIG ? "file too large" : strerror(-r));
		return EXIT_FAIL;
	}
	return -1;
}

/* Reads and parses the bundle @path with its signature and trusted keys. */
static int load_bundle(struct cli *cli, const struct pol_args *a, const char *path, exai_policy **ret)
{
	char *text = NULL, *sig = NULL, *keys[MAX_LIST + 1] = { 0 };
	size_t len, slen;
	int code = EXIT_FAIL, r;

	if ((r = read_or_fail(cli, path, BUNDLE_MAX, &text, &len)) >= 0)
		return r;
	for (int i = 0; i < a->nkeys; i++)
		if ((r = read_or_fail(cli, a->keys[i], KEY_MAX, &keys[i], &slen)) >= 0)
			goto out;
	char sigpath[4096];
	const char *sp = a->sig_path;
	if (!sp && strcmp(path, "-") != 0) {
		snprintf(sigpath, sizeof(sigpath), "%s.minisig", path);
		sp = sigpath;
	}
	if (sp) {
		r = cli_read_input(sp, KEY_MAX, &sig, &slen);
		if (r < 0 && (a->sig_path || r != -ENOENT)) {
			fprintf(stderr, "%s: %s: %s\n", cli->path, sp, strerror(-r));
			goto out;
		}
	}
	EXAI_OPTS(exai_policy_parse_opts, o, .signature = sig, .trusted_keys = (const char *const *)keys,
		  .tenant = a->tenant, .flags = a->allow_unsigned ? EXAI_POLICY_ALLOW_UNSIGNED : 0);
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		goto out;
	r = exai_policy_parse(ret, ctx, text, len, &o);
	if (r < 0)
		cli_fail(cli, r, path);
	else
		code = -1;
out:
	free(text);
	free(sig);
	for (int i = 0; i < a->nkeys; i++)
		free(keys[i]);
	return code;
}

/* The start of the commands that read one bundle (and @nargs - 1 more arguments): the options
 * in @allowed (NULL: those of check and explain), then the bundle with its signature checked
 * (a trusted key required when @need_key). -1 on success, else the exit code. */
static int bundle_cmd(struct cli *cli, struct pol_args *a, exai_policy **p, int argc, char **argv, const int *allowed,
		      int nargs, bool need_key)
{
	static const int bundle_opts[] = { O_SIG, O_TENANT, O_KEY, O_UNSIGNED, O_JSON, 0 };
	int r = pol_parse(cli, a, argc, argv, allowed ? allowed : bundle_opts, nargs, nargs);
	if (r >= 0)
		return r;
	if (need_key && !a->nkeys)
		return cli_usage_error(cli, "--public-key PK is required");
	return load_bundle(cli, a, argv[optind], p);
}

static int run_check(struct cli *cli, int argc, char **argv)
{
	struct pol_args a;
	exai_policy *p = NULL;
	char *dump = NULL;
	int r = bundle_cmd(cli, &a, &p, argc, argv, NULL, 1, false);
	if (r >= 0)
		return r;
	r = exai_policy_dump(&dump, p);
	exai_policy_free(p);
	if (r < 0)
		return cli_fail(cli, r, "cannot print the compiled policy");
	if (cli->json) {
		json_t *v = json_loads(dump, 0, NULL);
		exai_free(dump);
		return v && cli_print_json(v) == 0 ? EXIT_OK : EXIT_FAIL;
	}
	printf("%s\n", dump);
	exai_free(dump);
	return EXIT_OK;
}

static int run_explain(struct cli *cli, int argc, char **argv)
{
	struct pol_args a;
	exai_policy *p = NULL;
	char *out = NULL;
	int r = bundle_cmd(cli, &a, &p, argc, argv, NULL, 2, false);
	if (r >= 0)
		return r;
	r = exai_policy_explain(&out, p, argv[optind + 1]);
	exai_policy_free(p);
	if (r < 0)
		return cli_fail(cli, r, argv[optind + 1]);
	json_t *v = json_loads(out, 0, NULL);
	exai_free(out);
	if (!v)
		return EXIT_FAIL;
	if (cli->json)
		return cli_print_json(v) == 0 ? EXIT_OK : EXIT_FAIL;
	const char *rule = json_string_value(json_object_get(v, "rule"));
	const char *entry = json_string_value(json_object_get(v, "entry"));
	printf("%s %s: %s", json_string_value(json_object_get(v, "verdict")), argv[optind + 1],
	       json_string_value(json_object_get(v, "reason")));
	if (rule)
		printf(" (rule \"%s\")", rule);
	if (entry)
		printf(" [entry %s]", entry);
	printf("\n");
	json_decref(v);
	return EXIT_OK;
}

/* Signs a bundle after validating it: the signing itself is `exaictl sign` (keys module), with
 * the tenant in the trusted comment unless one is given. */
static int run_sign(struct cli *cli, int argc, char **argv)
{
	static const int allowed[] = { O_SECRET, O_PWFILE, O_TCOMMENT, O_OUTPUT, 0 };
	struct pol_args a;
	exai_policy *p = NULL;
	int r = pol_parse(cli, &a, argc, argv, allowed, 1, 1);
	if (r >= 0)
		return r;
	if (!a.secret_key)
		return cli_usage_error(cli, "--secret-key SK is required");
	const char *bundle = argv[optind];
	struct pol_args check = { .allow_unsigned = true };
	if ((r = load_bundle(cli, &check, bundle, &p)) >= 0)
		return r;
	char tc[256];
	snprintf(tc, sizeof(tc), "libexai policy bundle, tenant:%s", exai_policy_tenant(p));
	exai_policy_free(p);
	char *args[12];
	int n = 0;
	args[n++] = (char *)"sign";
	args[n++] = (char *)"--secret-key";
	args[n++] = (char *)a.secret_key;
	args[n++] = (char *)"--trusted-comment";
	args[n++] = a.trusted_comment ? (char *)a.trusted_comment : tc;
	if (a.password_file) {
		args[n++] = (char *)"--password-file";
		args[n++] = (char *)a.password_file;
	}
	if (a.output) {
		args[n++] = (char *)"--output";
		args[n++] = (char *)a.output;
	}
	args[n++] = (char *)bundle;
	args[n] = NULL;
	return cli_cmd_sign.run(cli, n, args);
}

static int run_verify(struct cli *cli, int argc, char **argv)
{
	static const int allowed[] = { O_KEY, O_SIG, O_TENANT, 0 };
	struct pol_args a;
	exai_policy *p = NULL;
	int r = bundle_cmd(cli, &a, &p, argc, argv, allowed, 1, true);
	if (r >= 0)
		return r;
	printf("signature and bundle OK (tenant %s)\n", exai_policy_tenant(p));
	exai_policy_free(p);
	return EXIT_OK;
}

#define DEV_OPTS(a)                                                                                                \
	EXAI_OPTS(exai_policy_dev_opts, dopts, .bpffs = (a).bpffs,                                                 \
		  .floor_allow = (a).nfloor ? (const char *const *)(a).floor_allow : NULL,                         \
		  .flags = (a).no_host_floor ? EXAI_POLICY_NO_HOST_FLOOR : 0, .event_rate = (a).event_rate,      \
		  .fqdn_grace_s = (a).dns_grace, .host_netns = (a).host_netns)

static volatile sig_atomic_t stop_events;

static void on_signal(int sig)
{
	(void)sig;
	stop_events = 1;
}

/* Sleeps @ms, or less when a signal asks to stop. */
static void nap(uint32_t ms)
{
	while (ms && !stop_events) {
		uint32_t step = ms < 200 ? ms : 200;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* With --follow-dns: waits @ms (UINT32_MAX: for ever) for the next refresh of matchName
 * addresses, meanwhile learning matchPattern addresses from DNS answers. 1 when the policy
 * must be applied again now, 0 to stop (signal, or nothing to follow), else the exit code. */
static int follow(struct cli *cli, const struct pol_args *a, const exai_policy *p,
		  const struct exai_policy_dev_opts *dopts, uint32_t ms)
{
	for (;;) {
		uint32_t step = ms < 500 ? ms : 500;
		int r = exai_policy_learn_dns(cli_ctx(cli), a->dev, p, dopts, (int)step);
		if (r == -ENOMSG) { /* no patterns: only the TTLs of matchName addresses matter */
			if (ms == UINT32_MAX) {
				printf("%s: no matchName or matchPattern rules: nothing to follow\n", a->dev);
				return 0;
			}
			nap(step);
		} else if (r < 0) {
			return cli_fail(cli, r, a->dev);
		} else if (r > 0) {
			return 1;
		}
		if (stop_events)
			return 0;
		if (ms != UINT32_MAX && (ms -= step) == 0)
			return 1;
	}
}

static int run_apply(struct cli *cli, int argc, char **argv)
{
	static const int allowed[] = { O_DEV, O_BPFFS, O_SIG,	  O_TENANT,	O_KEY,	     O_UNSIGNED,
				       O_FLOOR, O_NO_HOST, O_HOST_NETNS, O_RATE, O_FOLLOW_DNS, O_DNS_GRACE, 0 };
	struct pol_args a;
	int r = pol_parse(cli, &a, argc, argv, allowed, 1, 1);
	if (r >= 0)
		return r;
	DEV_OPTS(a);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (;;) {
		/* Each round reads and checks the bundle again: it may have been re-signed meanwhile. */
		exai_policy *p = NULL;
		if ((r = load_bundle(cli, &a, argv[optind], &p)) >= 0)
			return r;
		r = exai_policy_apply(cli_ctx(cli), a.dev, p, &dopts);
		if (r < 0) {
			exai_policy_free(p);
			return cli_fail(cli, r, a.dev);
		}
		if (!cli->json)
			printf("applied the policy of tenant %s to %s\n", exai_policy_tenant(p), a.dev);
		uint32_t ms = 0;
		if (a.follow_dns && (r = exai_policy_refresh_in(&ms, cli_ctx(cli), a.dev, &dopts)) < 0)
			r = cli_fail(cli, r, a.dev);
		else if (a.follow_dns) {
			fflush(stdout);
			r = follow(cli, &a, p, &dopts, ms);
		}
		exai_policy_free(p);
		if (!a.follow_dns || r == 0)
			return EXIT_OK;
		if (r != 1)
			return r;
	}
}

/* The start of the commands that observe or change a device: the options in @allowed, no
 * arguments, and the context. -1 on success, else the exit code. */
static int dev_cmd(struct cli *cli, struct pol_args *a, exai_ctx **ctx, int argc, char **argv, const int *allowed)
{
	int r = pol_parse(cli, a, argc, argv, allowed, 0, 0);
	if (r >= 0)
		return r;
	*ctx = cli_ctx(cli);
	return *ctx ? -1 : EXIT_FAIL;
}

static int run_detach(struct cli *cli, int argc, char **argv)
{
	static const int allowed[] = { O_DEV, O_BPFFS, 0 };
	struct pol_args a;
	exai_ctx *ctx;
	int r = dev_cmd(cli, &a, &ctx, argc, argv, allowed);
	if (r >= 0)
		return r;
	DEV_OPTS(a);
	r = exai_policy_detach(ctx, a.dev, &dopts);
	if (r < 0)
		return cli_fail(cli, r, a.dev);
	return EXIT_OK;
}

static int run_stats(struct cli *cli, int argc, char **argv)
{
	static const int allowed[] = { O_DEV, O_BPFFS, O_JSON, 0 };
	struct pol_args a;
	struct exai_policy_counter *c = NULL;
	size_t n = 0;
	uint32_t id = 0;
	exai_ctx *ctx;
	int r = dev_cmd(cli, &a, &ctx, argc, argv, allowed);
	if (r >= 0)
		return r;
	DEV_OPTS(a);
	r = exai_policy_stats(&c, &n, &id, ctx, a.dev, &dopts);
	if (r < 0)
		return cli_fail(cli, r, a.dev);
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I}", "name", c[i].name, "verdict",
							     c[i].deny ? "deny" : "allow", "packets", (json_int_t)c[i].packets,
							     "bytes", (json_int_t)c[i].bytes));
		exai_free(c);
		return cli_print_json(json_pack("{s:s, s:i, s:o}", "dev", a.dev, "policy_id", (json_int_t)id, "counters",
						arr)) == 0
			       ? EXIT_OK
			       : EXIT_FAIL;
	}
	printf("%s: policy %" PRIu32 "\n", a.dev, id);
	printf("%-40s %-6s %12s %14s\n", "counter", "", "packets", "bytes");
	for (size_t i = 0; i < n; i++)
		printf("%-40s %-6s %12" PRIu64 " %14" PRIu64 "\n", c[i].name, c[i].deny ? "deny" : "allow", c[i].packets,
		       c[i].bytes);
	exai_free(c);
	return EXIT_OK;
}

static int print_event(void *ud, const char *json)
{
	struct cli *cli = ud;
	json_t *v = json_loads(json, 0, NULL);
	if (!v)
		return 0;
	if (cli->json) {
		cli_print_json(v);
	} else {
		json_t *s = json_object_get(v, "src_endpoint"), *d = json_object_get(v, "dst_endpoint");
		json_t *ci = json_object_get(v, "connection_info");
		printf("%s %s %s %s:%lld -> %s:%lld\n", json_string_value(json_object_get(v, "message")),
		       json_string_value(json_object_get(ci, "direction")),
		       json_string_value(json_object_get(ci, "protocol_name")),
		       s ? json_string_value(json_object_get(s, "ip")) : "-",
		       (long long)json_integer_value(json_object_get(s, "port")),
		       d ? json_string_value(json_object_get(d, "ip")) : "-",
		       (long long)json_integer_value(json_object_get(d, "port")));
		json_decref(v);
	}
	fflush(stdout);
	return stop_events ? 1 : 0;
}

static int run_events(struct cli *cli, int argc, char **argv)
{
	static const int allowed[] = { O_DEV, O_BPFFS, O_JSON, O_FOLLOW, 0 };
	struct pol_args a;
	exai_ctx *ctx;
	int r = dev_cmd(cli, &a, &ctx, argc, argv, allowed);
	if (r >= 0)
		return r;
	DEV_OPTS(a);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	do {
		r = exai_policy_events(ctx, a.dev, &dopts, a.follow ? 500 : 0, print_event, cli);
	} while (r >= 0 && a.follow && !stop_events);
	if (r < 0)
		return cli_fail(cli, r, a.dev);
	return EXIT_OK;
}

static const struct cli_cmd policy_check = {
	.name = "check",
	.summary = "Validate a bundle and print its compiled rules",
	.usage = "[--trusted-key PK]... [--signature SIG] [--allow-unsigned] [--tenant T] [--json] BUNDLE",
	.run = run_check,
};
static const struct cli_cmd policy_explain = {
	.name = "explain",
	.summary = "Print the verdict for a destination and the rule that decides it",
	.usage = "[--allow-unsigned | --trusted-key PK...] [--json] BUNDLE DST[:PORT][/tcp|udp|icmp]\n\n"
		 "DST is an IPv4 address, or an IPv6 address in brackets when a port follows: [2001:db8::1]:443/tcp.",
	.run = run_explain,
};
static const struct cli_cmd policy_sign = {
	.name = "sign",
	.summary = "Validate and sign a bundle (minisign format; writes BUNDLE.minisig)",
	.usage = "--secret-key SK [--password-file F] [--trusted-comment C] [--output SIG] BUNDLE\n\n"
		 "An encrypted secret key's password comes from --password-file or $EXAI_SIGN_PASSWORD.\n"
		 "The trusted comment defaults to \"libexai policy bundle, tenant:<tenant>\".",
	.run = run_sign,
};
static const struct cli_cmd policy_verify = {
	.name = "verify",
	.summary = "Verify a bundle's minisign signature",
	.usage = "--public-key PK... [--signature SIG] [--tenant T] BUNDLE",
	.run = run_verify,
};
static const struct cli_cmd policy_apply = {
	.name = "apply",
	.summary = "Attach a bundle to a device, or atomically replace the attached one",
	.usage = "--dev IFACE [--trusted-key PK]... [--signature SIG] [--allow-unsigned] [--tenant T]\n"
		 "       [--floor-allow CIDR]... [--no-host-floor] [--host-netns PATH] [--event-rate N]\n"
		 "       [--bpffs DIR] [--follow-dns [--dns-grace SECONDS]] BUNDLE\n\n"
		 "--follow-dns keeps running and applies the bundle again before the DNS TTL of any\n"
		 "matchName address runs out, and as soon as a DNS answer the guest receives gives a\n"
		 "matchPattern name a new address; an address that drops out stays allowed for\n"
		 "--dns-grace seconds (default 60) after its TTL so that open flows can finish.\n\n"
		 "The signature is read from BUNDLE.minisig unless --signature names it. --allow-unsigned is\n"
		 "for development only. --floor-allow and --no-host-floor are operator overrides of the floor\n"
		 "(link-local, metadata and the host's own addresses). The host's addresses are those of the\n"
		 "network namespace --host-netns names (e.g. /proc/1/ns/net), by default the command's own.\n"
		 "If attaching fails the device is set down.",
	.run = run_apply,
};
static const struct cli_cmd policy_detach = {
	.name = "detach",
	.summary = "Remove the policy from a device and its pins",
	.usage = "--dev IFACE [--bpffs DIR]",
	.run = run_detach,
};
static const struct cli_cmd policy_stats = {
	.name = "stats",
	.summary = "Print the counters of a device's policy, by verdict reason and rule",
	.usage = "--dev IFACE [--bpffs DIR] [--json]",
	.run = run_stats,
};
static const struct cli_cmd policy_events = {
	.name = "events",
	.summary = "Print deny events (OCSF Network Activity) and pass them to the audit log",
	.usage = "--dev IFACE [-f|--follow] [--bpffs DIR] [--json]",
	.run = run_events,
};

static const struct cli_cmd *const policy_subs[] = { &policy_check, &policy_explain, &policy_sign, &policy_verify,
						     &policy_apply, &policy_detach, &policy_stats, &policy_events, NULL };

const struct cli_cmd cli_cmd_policy = {
	.name = "policy",
	.summary = "eBPF egress policy: check, sign, apply and observe tenant bundles",
	.subs = policy_subs,
};
