/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-audit.c: exaictl audit append|verify|checkpoint|vkey|leaf|prove|consistency|tail|prune|sink. */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define LINE_MAX_BYTES (16u << 20)

struct aargs {
	const char *origin, *vkey, *tenant, *workspace, *action, *before, *keyring;
	const char *sink[3]; /* sink run: jsonl, postgres, nats targets */
	int64_t since_ms, before_ms;
	uint64_t size;
	bool has_size, follow, writer;
	long lines;
	int durability;
	char **ops; /* operands */
	int nops;
};

/* Parses the options of an audit leaf; @allowed lists the long option names it takes. */
static int parse(struct cli *cli, int argc, char **argv, const char *allowed, int min_ops, int max_ops, struct aargs *a)
{
	static const struct option opts[] = {
		{ "origin", required_argument, NULL, 'o' }, { "vkey", required_argument, NULL, 'k' },
		{ "size", required_argument, NULL, 's' },   { "follow", no_argument, NULL, 'f' },
		{ "tenant", required_argument, NULL, 't' }, { "workspace", required_argument, NULL, 'w' },
		{ "action", required_argument, NULL, 'a' }, { "since", required_argument, NULL, 'S' },
		{ "before", required_argument, NULL, 'b' }, { "json", no_argument, NULL, 'j' },
		{ "lines", required_argument, NULL, 'n' },  { "durability", required_argument, NULL, 'd' },
		{ "keyring", required_argument, NULL, 'K' }, { "jsonl", required_argument, NULL, 'J' },
		{ "postgres", required_argument, NULL, 'P' }, { "nats", required_argument, NULL, 'N' },
		{ "writer", no_argument, NULL, 'W' }, { 0 },
	};
	memset(a, 0, sizeof(*a));
	a->origin = "exai";
	a->lines = -1;
	optind = 0;
	int c;
	while ((c = cli_getopt(cli, argc, argv, "+:fn:", opts)) != -1) {
		if (c == '?')
			return EXIT_USAGE;
		const char *name = NULL;
		for (const struct option *o = opts; o->name; o++)
			if (o->val == c)
				name = o->name;
		if (!name || !strstr(allowed, name))
			return cli_usage_error(cli, "option '--%s' does not apply here", name ? name : "?");
		char *end = NULL;
		switch (c) {
		case 'o': a->origin = optarg; break;
		case 'k': a->vkey = optarg; break;
		case 'K': a->keyring = optarg; break;
		case 'J': a->sink[0] = optarg; break;
		case 'P': a->sink[1] = optarg; break;
		case 'N': a->sink[2] = optarg; break;
		case 'W': a->writer = true; break;
		case 'f': a->follow = true; break;
		case 't': a->tenant = optarg; break;
		case 'w': a->workspace = optarg; break;
		case 'a': a->action = optarg; break;
		case 'j': cli->json = true; break;
		case 's':
			a->size = strtoull(optarg, &end, 10);
			a->has_size = true;
			if (!*optarg || *end)
				return cli_usage_error(cli, "--size '%s' is not a number", optarg);
			break;
		case 'n':
			a->lines = strtol(optarg, &end, 10);
			if (!*optarg || *end || a->lines < 0)
				return cli_usage_error(cli, "--lines '%s' is not a count", optarg);
			break;
		case 'S':
		case 'b': {
			/* milliseconds since the epoch, or YYYY-MM-DD[THH:MM:SS[Z]] in UTC */
			int64_t ms;
			struct tm tm = { 0 };
			char *rest = strptime(optarg, "%Y-%m-%d", &tm);
			if (rest && *rest == 'T')
				rest = strptime(rest + 1, "%H:%M:%S", &tm);
			if (rest && *rest == 'Z')
				rest++;
			if (rest && !*rest) {
				ms = (int64_t)timegm(&tm) * 1000;
			} else {
				ms = strtoll(optarg, &end, 10);
				if (!*optarg || *end)
					return cli_usage_error(cli, "'%s' is neither milliseconds since the epoch nor "
								    "YYYY-MM-DD[THH:MM:SSZ]", optarg);
			}
			if (c == 'S')
				a->since_ms = ms;
			else
				a->before_ms = ms;
			break;
		}
		case 'd':
			if (strcmp(optarg, "sync") == 0)
				a->durability = EXAI_AUDIT_SYNC;
			else if (strcmp(optarg, "batch") == 0)
				a->durability = EXAI_AUDIT_BATCH;
			else
				return cli_usage_error(cli, "--durability must be sync or batch");
			break;
		}
	}
	a->ops = argv + optind;
	a->nops = argc - optind;
	if (a->nops < min_ops)
		return cli_usage_error(cli, "missing argument");
	if (a->nops > max_ops)
		return cli_usage_error(cli, "unexpected argument '%s'", a->ops[max_ops]);
	return -1;
}

static int open_log(struct cli *cli, const struct aargs *a, uint32_t flags, exai_audit_log **ret)
{
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		return EXIT_FAIL;
	EXAI_OPTS(exai_audit_opts, o, .origin = a->origin, .durability = a->durability,
		  .flags = flags, .key_tenant = a->keyring);
	int r = exai_audit_open(ret, ctx, &o);
	if (r < 0)
		return cli_fail(cli, r, "cannot open the audit log");
	return -1;
}

static int seq_arg(struct cli *cli, const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-')
		return cli_usage_error(cli, "'%s' is not a seq (a number)", s);
	return -1;
}

static int run_append(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	int r = parse(cli, argc, argv, "origin durability json keyring", 0, 0, &a);
	if (r >= 0 || (r = open_log(cli, &a, EXAI_AUDIT_SPOOL_IF_BUSY, &log)) >= 0)
		return r;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int status = EXIT_OK;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		lineno++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		uint64_t seq;
		r = exai_audit_append_json(log, line, (size_t)n, &seq);
		if (r < 0) {
			fprintf(stderr, "%s: line %ld: %s\n", cli->path, lineno, exai_errmsg());
			status = EXIT_FAIL;
			break;
		}
		if (seq == EXAI_AUDIT_SEQ_SPOOLED)
			printf("spooled\n");
		else
			printf("%" PRIu64 "\n", seq);
	}
	free(line);
	fflush(stdout);
	r = exai_audit_close(log);
	if (r < 0 && status == EXIT_OK)
		return cli_fail(cli, r, "closing the audit log");
	return status;
}

static int run_verify(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	int r = parse(cli, argc, argv, "origin vkey json", 0, 0, &a);
	if (r >= 0)
		return r;
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		return EXIT_FAIL;
	struct exai_audit_verify_result res = { .sz = sizeof(res) };
	r = exai_audit_verify(ctx, a.origin, a.vkey, &res);
	if (cli->json) {
		cli_print_json(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "ok", r == 0, "first_seq",
					 (json_int_t)res.first_seq, "events", (json_int_t)res.events, "checkpoints",
					 (json_int_t)res.checkpoints, "sealed_size", (json_int_t)res.sealed_size, "unsealed",
					 (json_int_t)res.unsealed, "bad_seq", (json_int_t)res.bad_seq, "reason",
					 r ? exai_errmsg() : ""));
	} else if (r == 0) {
		printf("ok: %" PRIu64 " events from seq %" PRIu64 ", %" PRIu64 " checkpoints; sealed up to size %" PRIu64
		       ", %" PRIu64 " unsealed\n", res.events, res.first_seq, res.checkpoints, res.sealed_size, res.unsealed);
	}
	if (r < 0)
		return cli_fail(cli, r, "verification failed");
	return EXIT_OK;
}

static int run_checkpoint(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	int r = parse(cli, argc, argv, "origin keyring", 0, 0, &a);
	if (r >= 0 || (r = open_log(cli, &a, 0, &log)) >= 0)
		return r;
	char *note = NULL;
	r = exai_audit_checkpoint(log, &note, false);
	if (r == 0)
		fwrite(note, 1, strlen(note), stdout);
	exai_free(note);
	int c = exai_audit_close(log);
	if (r < 0 || c < 0)
		return cli_fail(cli, r < 0 ? r : c, "checkpoint");
	return EXIT_OK;
}

static int run_vkey(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	int r = parse(cli, argc, argv, "origin", 0, 0, &a);
	if (r >= 0 || (r = open_log(cli, &a, EXAI_AUDIT_READONLY, &log)) >= 0)
		return r;
	char *v = NULL;
	r = exai_audit_vkey(log, &v);
	if (r == 0)
		printf("%s\n", v);
	exai_free(v);
	exai_audit_close(log);
	return r < 0 ? cli_fail(cli, r, "vkey") : EXIT_OK;
}

static int run_leaf(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	uint64_t seq;
	int r = parse(cli, argc, argv, "origin", 1, 1, &a);
	if (r >= 0 || (r = seq_arg(cli, a.ops[0], &seq)) >= 0 || (r = open_log(cli, &a, EXAI_AUDIT_READONLY, &log)) >= 0)
		return r;
	char *leaf = NULL;
	size_t len;
	r = exai_audit_leaf(log, seq, &leaf, &len);
	if (r == 0)
		fwrite(leaf, 1, len, stdout);
	exai_free(leaf);
	exai_audit_close(log);
	return r < 0 ? cli_fail(cli, r, "leaf") : EXIT_OK;
}

/* The size of the latest checkpoint, the default tree for proofs. */
static int checkpoint_size(exai_audit_log *log, uint64_t *ret)
{
	char *note = NULL;
	int r = exai_audit_latest_checkpoint(log, &note);
	if (r == 0)
		r = exai_audit_checkpoint_parse(NULL, ret, NULL, note, strlen(note));
	exai_free(note);
	return r;
}

static void print_proof(uint8_t (*p)[32], size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i++) {
		char out[45];
		size_t o = 0;
		for (size_t k = 0; k < 32; k += 3) {
			uint32_t v = (uint32_t)p[i][k] << 16 | (k + 1 < 32 ? (uint32_t)p[i][k + 1] << 8 : 0) |
				     (k + 2 < 32 ? p[i][k + 2] : 0);
			out[o++] = b64[v >> 18];
			out[o++] = b64[(v >> 12) & 63];
			out[o++] = k + 1 < 32 ? b64[(v >> 6) & 63] : '=';
			out[o++] = k + 2 < 32 ? b64[v & 63] : '=';
		}
		out[o] = '\0';
		printf("%s\n", out);
	}
}

static int run_prove(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	uint64_t seq, size;
	int r = parse(cli, argc, argv, "origin size", 1, 1, &a);
	if (r >= 0 || (r = seq_arg(cli, a.ops[0], &seq)) >= 0 || (r = open_log(cli, &a, EXAI_AUDIT_READONLY, &log)) >= 0)
		return r;
	uint8_t (*p)[32] = NULL;
	size_t n = 0;
	size = a.size;
	r = a.has_size ? 0 : checkpoint_size(log, &size);
	if (r == 0)
		r = exai_audit_prove(log, seq, size, &p, &n);
	if (r == 0)
		print_proof(p, n);
	exai_free(p);
	exai_audit_close(log);
	return r < 0 ? cli_fail(cli, r, "prove") : EXIT_OK;
}

static int run_consistency(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	uint64_t s1, s2;
	int r = parse(cli, argc, argv, "origin", 2, 2, &a);
	if (r >= 0 || (r = seq_arg(cli, a.ops[0], &s1)) >= 0 || (r = seq_arg(cli, a.ops[1], &s2)) >= 0 ||
	    (r = open_log(cli, &a, EXAI_AUDIT_READONLY, &log)) >= 0)
		return r;
	uint8_t (*p)[32] = NULL;
	size_t n = 0;
	r = exai_audit_consistency(log, s1, s2, &p, &n);
	if (r == 0)
		print_proof(p, n);
	exai_free(p);
	exai_audit_close(log);
	return r < 0 ? cli_fail(cli, r, "consistency") : EXIT_OK;
}

static bool matches(json_t *ev, const struct aargs *a)
{
	if (a->tenant && strcmp(json_string_value(json_object_get(ev, "tenant")) ?: "", a->tenant) != 0)
		return false;
	if (a->workspace && strcmp(json_string_value(json_object_get(ev, "workspace")) ?: "", a->workspace) != 0)
		return false;
	if (a->action && strcmp(json_string_value(json_object_get(ev, "activity_name")) ?: "", a->action) != 0)
		return false;
	if (a->since_ms && json_number_value(json_object_get(ev, "time")) < (double)a->since_ms)
		return false;
	return true;
}

static void print_event(struct cli *cli, const char *leaf, size_t len, json_t *ev)
{
	if (cli->json) {
		fwrite(leaf, 1, len, stdout);
		putchar('\n');
		return;
	}
	time_t t = (time_t)(json_number_value(json_object_get(ev, "time")) / 1000);
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *actor = json_object_get(json_object_get(json_object_get(ev, "actor"), "user"), "name");
	json_t *target = json_object_get(json_object_get(ev, "target"), "name");
	printf("%-8.0f %s %-20s %-12s %-14s %-14s %s\n", json_number_value(json_object_get(ev, "seq")), when,
	       json_string_value(json_object_get(ev, "activity_name")) ?: "-",
	       json_string_value(json_object_get(ev, "tenant")) ?: "-", json_string_value(actor) ?: "-",
	       json_string_value(target) ?: "-", json_string_value(json_object_get(ev, "status")) ?: "-");
}

static int run_tail(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	int r = parse(cli, argc, argv, "origin follow tenant workspace action since json lines", 0, 0, &a);
	if (r >= 0)
		return r;
	uint64_t from = 0;
	bool first = true;
	for (;;) {
		exai_audit_log *log;
		if ((r = open_log(cli, &a, EXAI_AUDIT_READONLY, &log)) >= 0)
			return r;
		uint64_t size;
		exai_audit_size(log, &size);
		if (first && a.lines >= 0 && !a.tenant && !a.workspace && !a.action && !a.since_ms)
			from = size > (uint64_t)a.lines ? size - (uint64_t)a.lines : 0;
		first = false;
		for (; from < size; from++) {
			char *leaf = NULL;
			size_t len;
			json_t *ev = NULL;
			if (exai_audit_leaf(log, from, &leaf, &len) < 0)
				continue; /* pruned */
			ev = json_loadb(leaf, len, 0, NULL);
			if (ev && matches(ev, &a))
				print_event(cli, leaf, len, ev);
			json_decref(ev);
			exai_free(leaf);
		}
		exai_audit_close(log);
		fflush(stdout);
		if (!a.follow)
			return EXIT_OK;
		usleep(500 * 1000);
	}
}

static int run_prune(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	int r = parse(cli, argc, argv, "origin before keyring", 0, 0, &a);
	if (r >= 0 || (r = open_log(cli, &a, 0, &log)) >= 0)
		return r;
	uint64_t first = 0;
	r = exai_audit_prune(log, a.before_ms, &first);
	int c = exai_audit_close(log);
	if (r < 0 || c < 0)
		return cli_fail(cli, r < 0 ? r : c, "prune");
	printf("first retained seq: %" PRIu64 "\n", first);
	return EXIT_OK;
}

static volatile sig_atomic_t sink_stop;

static void on_stop(int sig)
{
	(void)sig;
	sink_stop = 1;
}

static int run_sink_run(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	int r = parse(cli, argc, argv, "origin jsonl postgres nats writer keyring", 0, 0, &a);
	if (r >= 0)
		return r;
	if (!a.sink[0] && !a.sink[1] && !a.sink[2])
		return cli_usage_error(cli, "name at least one sink: --jsonl, --postgres or --nats");
	if ((r = open_log(cli, &a, a.writer ? 0 : EXAI_AUDIT_READONLY, &log)) >= 0)
		return r;
	static const char *const names[3] = { "jsonl", "postgres", "nats" };
	static const int kinds[3] = { EXAI_AUDIT_SINK_JSONL, EXAI_AUDIT_SINK_POSTGRES, EXAI_AUDIT_SINK_NATS };
	for (int i = 0; i < 3; i++) {
		if (!a.sink[i])
			continue;
		EXAI_OPTS(exai_audit_sink_opts, so, .kind = kinds[i], .name = names[i], .target = a.sink[i]);
		if ((r = exai_audit_sink_add(log, &so)) < 0) {
			exai_audit_close(log);
			return cli_fail(cli, r, i == 0 ? "cannot start the jsonl sink" : i == 1 ? "cannot start the postgres sink" :
						    "cannot start the nats sink");
		}
	}
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!sink_stop)
		usleep(100000);
	r = exai_audit_close(log); /* stops the sinks, saving their cursors */
	return r < 0 ? cli_fail(cli, r, "closing the audit log") : EXIT_OK;
}

static int run_sink_status(struct cli *cli, int argc, char **argv)
{
	struct aargs a;
	exai_audit_log *log;
	int r = parse(cli, argc, argv, "origin json", 0, 0, &a);
	if (r >= 0 || (r = open_log(cli, &a, EXAI_AUDIT_READONLY, &log)) >= 0)
		return r;
	struct exai_audit_sink_status st[64];
	size_t n = 0;
	r = exai_audit_sink_status(log, st, 64, &n);
	exai_audit_close(log);
	if (r < 0)
		return cli_fail(cli, r, "sink status");
	json_t *arr = cli->json ? json_array() : NULL;
	for (size_t i = 0; i < n && i < 64; i++) {
		if (arr)
			json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "name", st[i].name, "cursor",
							     (json_int_t)st[i].cursor, "backlog", (json_int_t)st[i].backlog));
		else
			printf("%-24s cursor %-10" PRIu64 " backlog %" PRIu64 "\n", st[i].name, st[i].cursor, st[i].backlog);
	}
	if (arr)
		return cli_print_json(arr) ? EXIT_FAIL : EXIT_OK;
	return EXIT_OK;
}

#define ORIGIN_HELP "  --origin NAME  the log (default: exai)\n"
#define KEYRING_HELP "  --keyring T    tenant whose keyring seals the log's signing key (default: the host\n" \
		     "                 keyring when it exists, else a plain 0600 file)\n"

static const struct cli_cmd audit_append = {
	.name = "append",
	.summary = "Append events: one JSON object per line on standard input; prints each seq (or \"spooled\")",
	.usage = "[--origin NAME] [--keyring T] [--durability sync|batch] < events.jsonl\n\n" ORIGIN_HELP KEYRING_HELP
		 "The log sets seq, origin and prev; events that set them, or carry prompt text, are refused.\n"
		 "When another process holds the log for writing (exaid), the events are spooled, durably, and\n"
		 "that process chains them once this one ends: each line then prints \"spooled\".",
	.run = run_append,
};
static const struct cli_cmd audit_verify = {
	.name = "verify",
	.summary = "Verify framing, chain, tree and every signature; exit 0 only when all verify",
	.usage = "[--origin NAME] [--vkey VKEY] [--json]\n\n" ORIGIN_HELP
		 "  --vkey VKEY    the verifier key you trust (default: the log's own signing.pub)",
	.run = run_verify,
};
static const struct cli_cmd audit_checkpoint = {
	.name = "checkpoint",
	.summary = "Seal unsealed events and print the latest signed checkpoint note, byte-exact",
	.usage = "[--origin NAME] [--keyring T]\n\n" ORIGIN_HELP KEYRING_HELP,
	.run = run_checkpoint,
};
static const struct cli_cmd audit_vkey = {
	.name = "vkey",
	.summary = "Print the log's verifier key (<name>+<hex key id>+<base64 key>)",
	.usage = "[--origin NAME]",
	.run = run_vkey,
};
static const struct cli_cmd audit_leaf = {
	.name = "leaf",
	.summary = "Print the canonical bytes of one event (its Merkle leaf)",
	.usage = "[--origin NAME] SEQ",
	.run = run_leaf,
};
static const struct cli_cmd audit_prove = {
	.name = "prove",
	.summary = "Print the RFC 9162 inclusion proof of SEQ, one base64 hash per line",
	.usage = "[--origin NAME] [--size N] SEQ\n\n  --size N  tree size (default: the latest checkpoint's)",
	.run = run_prove,
};
static const struct cli_cmd audit_consistency = {
	.name = "consistency",
	.summary = "Print the RFC 9162 consistency proof between two tree sizes",
	.usage = "[--origin NAME] OLD NEW",
	.run = run_consistency,
};
static const struct cli_cmd audit_tail = {
	.name = "tail",
	.summary = "Print events, filtered; -f to follow",
	.usage = "[--origin NAME] [-f] [-n N] [--tenant T] [--workspace W] [--action A] [--since TIME] [--json]\n\n"
		 "  TIME: milliseconds since the epoch or YYYY-MM-DD[THH:MM:SSZ] (UTC)",
	.run = run_tail,
};
static const struct cli_cmd audit_prune = {
	.name = "prune",
	.summary = "Remove whole segments past retention, leaving a signed prune record",
	.usage = "[--origin NAME] [--keyring T] [--before TIME]\n\n" ORIGIN_HELP KEYRING_HELP,
	.run = run_prune,
};
static const struct cli_cmd audit_sink_status = {
	.name = "status",
	.summary = "Print each sink's cursor and backlog",
	.usage = "[--origin NAME] [--json]",
	.run = run_sink_status,
};
static const struct cli_cmd audit_sink_run = {
	.name = "run",
	.summary = "Deliver the log to sinks until SIGTERM or SIGINT (the long-running sink process)",
	.usage = "[--origin NAME] [--jsonl PATH|-] [--postgres CONNINFO] [--nats URL] [--writer [--keyring T]]\n\n" ORIGIN_HELP
		 "  --jsonl PATH   JSON lines (OCSF-shaped events) appended to PATH, or '-' for stdout\n"
		 "  --postgres C   PostgreSQL (libpq connection string)\n"
		 "  --nats URL     NATS JetStream server\n"
		 "  --writer       open the log for writing (no other process may write it); default:\n"
		 "                 follow the process that writes it and deliver each event once a\n"
		 "                 checkpoint has sealed it (within checkpoint_ms, default 1 s)\n" KEYRING_HELP
		 "Sinks are named jsonl, postgres and nats; each resumes from sinks/<name>.cursor.",
	.run = run_sink_run,
};
static const struct cli_cmd *const sink_subs[] = { &audit_sink_status, &audit_sink_run, NULL };
static const struct cli_cmd audit_sink = {
	.name = "sink",
	.summary = "Audit sinks (PostgreSQL, NATS JetStream, JSON lines)",
	.subs = sink_subs,
};

static const struct cli_cmd *const audit_subs[] = {
	&audit_append, &audit_verify, &audit_checkpoint, &audit_vkey, &audit_leaf, &audit_prove,
	&audit_consistency, &audit_tail, &audit_prune, &audit_sink, NULL,
};

const struct cli_cmd cli_cmd_audit = {
	.name = "audit",
	.summary = "The audit log: append, verify, checkpoints, proofs, tail, retention, sinks",
	.subs = audit_subs,
};
