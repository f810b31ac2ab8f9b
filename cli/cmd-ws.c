/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-ws.c: exaictl ws create|exec|cp|pause|resume|snapshot|restore|destroy|ls|inspect.
 * Workspaces are driven in-process for now (the daemon will own them next); the VMM outlives
 * exaictl, and the next exaictl call adopts it from the state directory. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static exai_vm *open_ws(struct cli *cli, const char *name)
{
	exai_ctx *ctx = cli_ctx(cli);
	exai_vm *vm = NULL;
	if (!ctx)
		return NULL;
	int r = exai_vm_open(&vm, ctx, name);
	if (r < 0) {
		cli_fail(cli, r, name);
		return NULL;
	}
	return vm;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* ---- egress policy ------------------------------------------------------------------------ */

#define WS_MAX_KEYS 8

/* --policy BUNDLE [--trusted-key PK]... [--allow-unsigned-policy]: the signature is
 * BUNDLE.minisig, the bundle's tenant must be the workspace's. */
struct ws_policy {
	const char *path;
	const char *keys[WS_MAX_KEYS];
	int nkeys;
	bool allow_unsigned;
	const char *floor[WS_MAX_KEYS + 1]; /* --floor-allow CIDR..., NULL-terminated */
	int nfloor;
};

/* Handles the policy options; 1 when @c was one of them, 0 if not, EXIT_USAGE on error. */
static int policy_opt(struct cli *cli, struct ws_policy *p, int c)
{
	switch (c) {
	case 'p':
		p->path = optarg;
		return 1;
	case 'K':
		if (p->nkeys == WS_MAX_KEYS)
			return cli_usage_error(cli, "at most %d --trusted-key options", WS_MAX_KEYS);
		p->keys[p->nkeys++] = optarg;
		return 1;
	case 'W':
		p->allow_unsigned = true;
		return 1;
	case 'F':
		if (p->nfloor == WS_MAX_KEYS)
			return cli_usage_error(cli, "at most %d --floor-allow options", WS_MAX_KEYS);
		p->floor[p->nfloor++] = optarg;
		return 1;
	default:
		return 0;
	}
}

#define WS_POLICY_OPTIONS                                                                                      \
	{ "policy", required_argument, NULL, 'p' }, { "trusted-key", required_argument, NULL, 'K' },         \
		{ "allow-unsigned-policy", no_argument, NULL, 'W' }, { "floor-allow", required_argument, NULL, 'F' }

/* Reads and checks the bundle; *@ret stays NULL without --policy. */
static int policy_load(struct cli *cli, const struct ws_policy *p, const char *tenant, exai_policy **ret)
{
	char *text = NULL, *sig = NULL, *keys[WS_MAX_KEYS + 1] = { 0 }, sigpath[PATH_MAX];
	size_t len = 0, klen;
	const char *bad = NULL;
	int r = 0;
	*ret = NULL;
	if (!p->path)
		return 0;
	if (!p->nkeys && !p->allow_unsigned)
		return cli_usage_error(cli, "--policy needs --trusted-key PK (or --allow-unsigned-policy for development)");
	snprintf(sigpath, sizeof(sigpath), "%s.minisig", p->path);
	if ((r = cli_read_input(p->path, 1u << 20, &text, &len)) < 0)
		bad = p->path;
	for (int i = 0; r == 0 && i < p->nkeys; i++)
		if ((r = cli_read_input(p->keys[i], 4096, &keys[i], &klen)) < 0)
			bad = p->keys[i];
	if (r == 0 && (r = cli_read_input(sigpath, 4096, &sig, &klen)) < 0 && (r != -ENOENT || !p->allow_unsigned))
		bad = sigpath;
	else
		r = 0;
	exai_ctx *ctx = r == 0 ? cli_ctx(cli) : NULL;
	if (bad)
		fprintf(stderr, "%s: %s: %s\n", cli->path, bad, strerror(-r));
	if (ctx) {
		EXAI_OPTS(exai_policy_parse_opts, o, .signature = sig, .trusted_keys = (const char *const *)keys,
			  .tenant = tenant, .flags = p->allow_unsigned ? EXAI_POLICY_ALLOW_UNSIGNED : 0);
		if ((r = exai_policy_parse(ret, ctx, text, len, &o)) < 0)
			cli_fail(cli, r, p->path);
	}
	free(text);
	free(sig);
	for (int i = 0; i < p->nkeys; i++)
		free(keys[i]);
	return (bad || !ctx || r < 0) ? EXIT_FAIL : 0;
}

/* ---- create ------------------------------------------------------------------------------- */

static int run_create(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' }, { "vcpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },    WS_POLICY_OPTIONS,
		{ "backend", required_argument, NULL, 'b' }, { "image", required_argument, NULL, 'i' },
		{ "no-boot", no_argument, NULL, 'n' },      { "disk", required_argument, NULL, 'd' },
		{ "allow-unencrypted-disk", no_argument, NULL, 'U' }, { 0 },
	};
	EXAI_OPTS(exai_vm_opts, o);
	struct ws_policy pol = { 0 };
	bool boot = true;
	int c;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "+:", opts)) != -1) {
		int pr = policy_opt(cli, &pol, c);
		if (pr == EXIT_USAGE)
			return pr;
		if (pr)
			continue;
		switch (c) {
		case 't':
			o.tenant = optarg;
			break;
		case 'c':
			if (!parse_u32(optarg, &o.vcpus) || !o.vcpus)
				return cli_usage_error(cli, "--vcpus wants a positive number, not '%s'", optarg);
			break;
		case 'm':
			if (!parse_u32(optarg, &o.mem_mib) || !o.mem_mib)
				return cli_usage_error(cli, "--mem wants MiB as a positive number, not '%s'", optarg);
			break;
		case 'b':
			if (!strcmp(optarg, "auto"))
				o.backend = EXAI_VM_BACKEND_AUTO;
			else if (!strcmp(optarg, "qemu"))
				o.backend = EXAI_VM_BACKEND_QEMU;
			else if (!strcmp(optarg, "firecracker"))
				o.backend = EXAI_VM_BACKEND_FIRECRACKER;
			else
				return cli_usage_error(cli, "--backend is auto, qemu or firecracker, not '%s'", optarg);
			break;
		case 'i':
			o.image_dir = optarg;
			break;
		case 'n':
			boot = false;
			break;
		case 'd':
			if (!parse_u32(optarg, &o.disk_mib) || !o.disk_mib)
				return cli_usage_error(cli, "--disk wants MiB as a positive number, not '%s'", optarg);
			break;
		case 'U':
			o.allow_unencrypted_disk = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected one workspace NAME");
	const char *name = argv[optind];
	exai_ctx *ctx = cli_ctx(cli);
	exai_vm *vm = NULL;
	exai_policy *policy = NULL;
	if (!ctx)
		return EXIT_FAIL;
	int r = policy_load(cli, &pol, o.tenant ? o.tenant : "default", &policy);
	if (r)
		return r;
	o.policy = policy;
	o.floor_allow = pol.nfloor ? pol.floor : NULL;
	r = exai_vm_create(&vm, ctx, name, &o);
	exai_policy_free(policy);
	if (r < 0)
		return cli_fail(cli, r, name);
	if (boot && (r = exai_vm_boot(vm)) < 0) {
		cli_fail(cli, r, name);
		exai_vm_free(vm);
		return EXIT_FAIL;
	}
	if (cli->json)
		cli_print_json(json_pack("{s:s, s:s}", "name", name, "state", exai_vm_state_name(exai_vm_state(vm))));
	else
		printf("%s %s\n", name, exai_vm_state_name(exai_vm_state(vm)));
	exai_vm_free(vm);
	return EXIT_OK;
}

/* ---- exec --------------------------------------------------------------------------------- */

static int write_out(void *ud, int stream, const void *p, size_t n)
{
	(void)ud;
	FILE *f = stream == 1 ? stdout : stderr;
	if (fwrite(p, 1, n, f) != n || fflush(f) != 0)
		return -EIO;
	return 0;
}

/* SIGINT, SIGTERM and SIGHUP on exaictl go to the command in the guest. */
static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
	caught_signal = sig;
}

static int pending_signal(void *ud)
{
	(void)ud;
	int s = caught_signal;
	caught_signal = 0;
	return s;
}

static int run_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "env", required_argument, NULL, 'e' },     { "cwd", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 'T' }, { "stdin", no_argument, NULL, 'i' },
		{ 0 },
	};
	const char **envp = calloc((size_t)argc + 1, sizeof(*envp));
	size_t nenv = 0;
	EXAI_OPTS(exai_vm_exec_opts, o, .output = write_out);
	uint32_t timeout_s = 0;
	int c, ret = EXIT_USAGE;
	if (!envp)
		return EXIT_FAIL;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "+:i", opts)) != -1) {
		switch (c) {
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				cli_usage_error(cli, "--env wants NAME=value, not '%s'", optarg);
				goto out;
			}
			envp[nenv++] = optarg;
			break;
		case 'C':
			o.cwd = optarg;
			break;
		case 'T':
			if (!parse_u32(optarg, &timeout_s) || timeout_s > 86400) {
				cli_usage_error(cli, "--timeout wants seconds (at most 86400), not '%s'", optarg);
				goto out;
			}
			break;
		case 'i':
			o.stdin_fd = EXAI_VM_STDIN_FD0;
			break;
		default:
			goto out;
		}
	}
	/* NAME -- CMD [ARG]... (getopt stopped at NAME; "--" may follow it) */
	if (optind >= argc) {
		cli_usage_error(cli, "expected NAME -- CMD [ARG]...");
		goto out;
	}
	const char *name = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		cli_usage_error(cli, "expected a command after NAME --");
		goto out;
	}
	o.argv = (const char *const *)argv + optind;
	o.envp = nenv ? envp : NULL;
	o.timeout_ms = timeout_s * 1000;
	exai_vm *vm = open_ws(cli, name);
	if (!vm) {
		ret = EXIT_FAIL;
		goto out;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	o.pending_signal = pending_signal;
	int status = 0, r = exai_vm_exec(vm, &o, &status);
	exai_vm_free(vm);
	if (r < 0) {
		ret = cli_fail(cli, r, name);
		goto out;
	}
	/* The command's own status, as ssh and docker exec give it. */
	ret = status;
out:
	free(envp);
	return ret;
}

/* ---- cp ----------------------------------------------------------------------------------- */

/* "NAME:/path" -> name and path; false for a host path. */
static bool split_remote(char *arg, char **name, char **path)
{
	char *colon = strchr(arg, ':');
	if (!colon || colon == arg || colon[1] != '/' || strchr(arg, '/') < colon)
		return false;
	*colon = '\0';
	*name = arg;
	*path = colon + 1;
	return true;
}

static int run_cp(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, NULL, argc, argv, 2);
	if (r >= 0)
		return r;
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected SRC DST, one of them NAME:/path");
	char *src = argv[optind], *dst = argv[optind + 1], *name, *path;
	bool from = split_remote(src, &name, &path);
	bool to = !from && split_remote(dst, &name, &path);
	if (from == to)
		return cli_usage_error(cli, "exactly one of SRC and DST must be NAME:/absolute/path");
	exai_vm *vm = open_ws(cli, name);
	if (!vm)
		return EXIT_FAIL;
	r = from ? exai_vm_get(vm, path, dst) : exai_vm_put(vm, src, path, 0644);
	exai_vm_free(vm);
	return r < 0 ? cli_fail(cli, r, from ? src : dst) : EXIT_OK;
}

/* ---- pause, resume, destroy, inspect: NAME only ------------------------------------------ */

static int one_name(struct cli *cli, int argc, char **argv, exai_vm **vm)
{
	int r = cli_simple_args(cli, NULL, argc, argv, 1);
	if (r >= 0)
		return r;
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected one workspace NAME");
	*vm = open_ws(cli, argv[optind]);
	return *vm ? -1 : EXIT_FAIL;
}

static int simple(struct cli *cli, int argc, char **argv, int (*fn)(exai_vm *), const char *done)
{
	exai_vm *vm = NULL;
	int r = one_name(cli, argc, argv, &vm);
	if (r >= 0)
		return r;
	r = fn(vm);
	if (r < 0)
		r = cli_fail(cli, r, exai_vm_name(vm));
	else {
		if (!cli->json)
			printf("%s %s\n", exai_vm_name(vm), done);
		r = EXIT_OK;
	}
	exai_vm_free(vm);
	return r;
}

static int run_pause(struct cli *cli, int argc, char **argv)
{
	return simple(cli, argc, argv, exai_vm_pause, "paused");
}

static int run_resume(struct cli *cli, int argc, char **argv)
{
	return simple(cli, argc, argv, exai_vm_resume, "running");
}

static int run_destroy(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, NULL, argc, argv, 1);
	if (r >= 0)
		return r;
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected one workspace NAME");
	exai_ctx *ctx = cli_ctx(cli);
	exai_vm *vm = NULL;
	if (!ctx)
		return EXIT_FAIL;
	r = exai_vm_open(&vm, ctx, argv[optind]);
	if (r == -ENOENT) {
		/* idempotent: nothing to destroy */
		printf("%s destroyed\n", argv[optind]);
		return EXIT_OK;
	}
	if (r < 0)
		return cli_fail(cli, r, argv[optind]);
	r = exai_vm_destroy(vm);
	exai_vm_free(vm);
	if (r < 0)
		return cli_fail(cli, r, argv[optind]);
	printf("%s destroyed\n", argv[optind]);
	return EXIT_OK;
}

static int run_inspect(struct cli *cli, int argc, char **argv)
{
	exai_vm *vm = NULL;
	int r = one_name(cli, argc, argv, &vm);
	if (r >= 0)
		return r;
	char *json = NULL;
	r = exai_vm_inspect(vm, &json);
	exai_vm_free(vm);
	if (r < 0)
		return cli_fail(cli, r, argv[optind]);
	json_t *j = json_loads(json, 0, NULL);
	exai_free(json);
	if (!j)
		return EXIT_FAIL;
	if (cli->json)
		return cli_print_json(j) ? EXIT_FAIL : EXIT_OK;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		printf("%-16s %s\n", k, s ? s : "?");
		free(s);
	}
	json_decref(j);
	return EXIT_OK;
}

/* ---- snapshot, restore, ls ---------------------------------------------------------------- */

static int run_snapshot(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "out", required_argument, NULL, 'o' }, { 0 } };
	const char *out = NULL;
	int c;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, ":o:", opts)) != -1) {
		if (c == 'o')
			out = optarg;
		else
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "expected one workspace NAME");
	const char *name = argv[optind];
	char def[PATH_MAX];
	if (!out) {
		snprintf(def, sizeof(def), "%s.snap", name);
		out = def;
	}
	exai_vm *vm = open_ws(cli, name);
	if (!vm)
		return EXIT_FAIL;
	int r = exai_vm_snapshot(vm, out);
	exai_vm_free(vm);
	if (r < 0)
		return cli_fail(cli, r, name);
	printf("%s\n", out);
	return EXIT_OK;
}

static int run_restore(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "tenant", required_argument, NULL, 't' }, WS_POLICY_OPTIONS,
					      { "allow-unencrypted-disk", no_argument, NULL, 'U' }, { 0 } };
	struct ws_policy pol = { 0 };
	const char *tenant = "default";
	bool allow_plain = false;
	int c, r;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, ":", opts)) != -1) {
		if ((r = policy_opt(cli, &pol, c)) == EXIT_USAGE)
			return r;
		if (c == 't')
			tenant = optarg;
		else if (c == 'U')
			allow_plain = true;
		else if (!r)
			return EXIT_USAGE;
	}
	if (argc - optind != 2)
		return cli_usage_error(cli, "expected SNAP NEWNAME");
	exai_ctx *ctx = cli_ctx(cli);
	exai_vm *vm = NULL;
	exai_policy *policy = NULL;
	if (!ctx)
		return EXIT_FAIL;
	if ((r = policy_load(cli, &pol, tenant, &policy)) != 0)
		return r;
	EXAI_OPTS(exai_vm_opts, o, .policy = policy, .floor_allow = pol.nfloor ? pol.floor : NULL,
		  .allow_unencrypted_disk = allow_plain);
	r = exai_vm_restore(&vm, ctx, argv[optind], argv[optind + 1], &o);
	exai_policy_free(policy);
	if (r < 0)
		return cli_fail(cli, r, argv[optind]);
	printf("%s %s\n", argv[optind + 1], exai_vm_state_name(exai_vm_state(vm)));
	exai_vm_free(vm);
	return EXIT_OK;
}

static int run_ls(struct cli *cli, int argc, char **argv)
{
	int r = cli_simple_args(cli, NULL, argc, argv, 0);
	if (r >= 0)
		return r;
	exai_ctx *ctx = cli_ctx(cli);
	char *names = NULL;
	if (!ctx)
		return EXIT_FAIL;
	if ((r = exai_vm_list(&names, ctx)) < 0)
		return cli_fail(cli, r, "list");
	json_t *arr = json_array();
	for (char *s = names, *nl; *s; s = nl + 1) {
		nl = strchr(s, '\n');
		*nl = '\0';
		exai_vm *vm = NULL;
		const char *state = "unreadable";
		if (exai_vm_open(&vm, ctx, s) == 0)
			state = exai_vm_state_name(exai_vm_state(vm));
		if (cli->json)
			json_array_append_new(arr, json_pack("{s:s, s:s}", "name", s, "state", state));
		else
			printf("%-40s %s\n", s, state);
		exai_vm_free(vm);
	}
	exai_free(names);
	if (cli->json)
		return cli_print_json(arr) ? EXIT_FAIL : EXIT_OK;
	json_decref(arr);
	return EXIT_OK;
}

/* ---- audit ------------------------------------------------------------------------------- */

/* Runs @fn with the state dir's audit log (origin "exai") attached to the context, so that the
 * workspace's events (and the policy's deny events) are recorded. */
static int audited(struct cli *cli, int (*fn)(struct cli *, int, char **), int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return fn(cli, argc, argv);
	exai_ctx *ctx = cli_ctx(cli);
	exai_audit_log *log = NULL;
	if (!ctx)
		return EXIT_FAIL;
	/* beside another writer (exaid, a parallel exaictl) the events are spooled, not lost */
	EXAI_OPTS(exai_audit_opts, o, .flags = EXAI_AUDIT_SPOOL_IF_BUSY);
	int r = exai_audit_open(&log, ctx, &o);
	if (r == 0 && (r = exai_audit_attach(ctx, log)) < 0) {
		exai_audit_close(log);
		log = NULL;
	}
	if (r < 0)
		fprintf(stderr, "%s: warning: workspace events are not recorded in the audit log: %s\n", cli->path,
			exai_errmsg());
	int code = fn(cli, argc, argv);
	if (log) {
		exai_audit_detach(ctx, log);
		if (exai_audit_close(log) < 0) {
			fprintf(stderr, "%s: the audit log: %s\n", cli->path, exai_errmsg());
			code = EXIT_FAIL;
		}
	}
	return code;
}

#define AUDITED(fn)                                                                                             \
	static int fn##_audited(struct cli *cli, int argc, char **argv)                                         \
	{                                                                                                       \
		return audited(cli, fn, argc, argv);                                                            \
	}
AUDITED(run_create)
AUDITED(run_exec)
AUDITED(run_cp)
AUDITED(run_pause)
AUDITED(run_resume)
AUDITED(run_snapshot)
AUDITED(run_restore)
AUDITED(run_destroy)

static const struct cli_cmd ws_create = { "create", "Create a workspace (a microVM) and boot it",
	"[--tenant T] [--vcpus N] [--mem MIB] [--disk MIB [--allow-unencrypted-disk]] [--backend auto|qemu|firecracker] [--image DIR]\n"
	"       [--policy BUNDLE (--trusted-key PK)... | --allow-unsigned-policy] [--floor-allow CIDR]... [--no-boot] NAME\n\n"
	"Without --policy the workspace has no network device (fail closed). With it, the signed bundle\n"
	"(signature in BUNDLE.minisig, tenant = --tenant) is attached to the workspace's tap before the\n"
	"VM starts; its deny events go to the audit log after each exec. The host's own addresses\n"
	"(10.199.255.254 included) stay refused whatever the bundle says, except those the operator\n"
	"carves out with --floor-allow (e.g. 10.199.255.254/32 for a service on the host).",
	run_create_audited, NULL };
static const struct cli_cmd ws_exec = { "exec", "Run a command in a workspace; exits with its status",
	"[--env K=V]... [--cwd DIR] [--timeout S] [-i|--stdin] NAME -- CMD [ARG]...", run_exec_audited, NULL };
static const struct cli_cmd ws_cp = { "cp", "Copy a file into or out of a workspace (SHA-256 checked)",
	"SRC DST   (one side NAME:/absolute/path)", run_cp_audited, NULL };
static const struct cli_cmd ws_pause = { "pause", "Pause a running workspace", "NAME", run_pause_audited, NULL };
static const struct cli_cmd ws_resume = { "resume", "Resume a paused workspace", "NAME", run_resume_audited, NULL };
static const struct cli_cmd ws_snapshot = { "snapshot", "Save a workspace's memory and device state",
	"NAME [--out SNAP]   (default ./NAME.snap)", run_snapshot_audited, NULL };
static const struct cli_cmd ws_restore = { "restore", "Start a new workspace from a snapshot",
	"[--tenant T --policy BUNDLE (--trusted-key PK)... [--floor-allow CIDR]...] [--allow-unencrypted-disk] SNAP NEWNAME\n\n"
	"A snapshot of a workspace with a network needs the tenant's policy; the new workspace gets\n"
	"its own tap, address and MAC. A snapshot with a disk gives the new workspace its own copy,\n"
	"re-keyed; one with an unencrypted (Firecracker) disk needs --allow-unencrypted-disk.", run_restore_audited, NULL };
static const struct cli_cmd ws_destroy = { "destroy", "Stop a workspace and delete everything of it",
	"NAME", run_destroy_audited, NULL };
static const struct cli_cmd ws_ls = { "ls", "List workspaces and their states", "[--json]", run_ls, NULL };
static const struct cli_cmd ws_inspect = { "inspect", "Show a workspace's state and facts",
	"NAME [--json]", run_inspect, NULL };

static const struct cli_cmd *const ws_subs[] = { &ws_create, &ws_exec, &ws_cp, &ws_pause, &ws_resume,
						 &ws_snapshot, &ws_restore, &ws_destroy, &ws_ls,
						 &ws_inspect, NULL };

const struct cli_cmd cli_cmd_ws = {
	.name = "ws",
	.summary = "Workspaces: one microVM per untrusted agent workspace",
	.subs = ws_subs,
};
