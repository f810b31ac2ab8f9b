/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-scrub: the scrubber's numbers, driven by bench-scrub.sh (which runs secretlint on the
 * same files in the same run).
 *
 *   bench-scrub gen DIR MB           writes DIR/corpus-NNN.txt (1 MiB prompt-like files with
 *                                    planted secrets; DIR/planted.tsv lists them) and
 *                                    DIR/recall/NNNN.txt (one labelled positive of the dev
 *                                    corpus per file; DIR/recall.tsv: file, start, end, kind)
 *   bench-scrub throughput DIR       MB/s on one core: reading the bytes, Hyperscan alone, the run scan
 *                                    alone, stage 1, both stages
 *   bench-scrub latency DIR          p50/p95/p99 of 4 KiB prompts, both stages
 *   bench-scrub recall DIR           recall on DIR/recall (the secretlint comparison set)
 *   bench-scrub profile DIR          Hyperscan's scan rate per pattern, the slowest first
 *   bench-scrub plan DIR             each pattern's gate; how often each literal occurs
 *   bench-scrub literals DIR         Hyperscan's literals: each short or caseless one's hits, and
 *                                    the database's rate without each of them and without groups
 *                                    (BENCH_GROUPS_ONLY, BENCH_FILES, BENCH_ROUNDS, BENCH_CASE_VARIANTS,
 *                                    BENCH_EXTRA_LITS: see literals())
 *   bench-scrub loop DIR [ROUNDS [stage1|stage2|all]]
 *                                    the scrubber in a loop (to profile with perf record)
 */
#include <ctype.h>
#include <math.h>
#include <dirent.h>
#include <time.h>

#include "scrub/scrub-internal.h"
#include "test.h"

static unsigned long long rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	return test_xorshift(&rng);
}

static const char *const words[] = {
	"the", "request", "fails", "when", "the", "server", "returns", "a", "timeout", "and", "retries", "are",
	"exhausted", "please", "check", "config", "value", "for", "user", "account", "deploy", "build", "error",
	"warning", "module", "function", "returns", "null", "pointer", "cache", "miss", "database", "query",
	"latency", "increased", "after", "release", "version", "rollback", "kubernetes", "pod", "restart",
	"container", "image", "tag", "pipeline", "stage", "test", "passed", "failed", "why", "does", "this",
	"happen", "can", "you", "help", "me", "fix", "it", "thanks", "here", "is", "the", "log", "output",
};

static void gen_block(struct exai__buf *b)
{
	char tmp[512];
	switch (rnd() % 7) {
	case 0: /* prose */
		for (int i = 0, n = 20 + (int)(rnd() % 60); i < n; i++)
			CHECK(exai__buf_printf(b, "%s%s", words[rnd() % EXAI__ARRAY_SIZE(words)], i + 1 < n ? " " : ".\n") == 0);
		break;
	case 1: /* code */
		CHECK(exai__buf_printf(b, "def handle_%u(request, retries=%u):\n    result = client.fetch(request.url, timeout=%u)\n    if result.status != 200:\n        raise RuntimeError(\"bad status %%d\" %% result.status)\n    return result.json()\n\n",
				       (unsigned)(rnd() % 1000), (unsigned)(rnd() % 5), (unsigned)(rnd() % 60)) == 0);
		break;
	case 2: /* log lines with UUIDs and digests */
		for (int i = 0; i < 5; i++) {
			uint64_t a = rnd(), c = rnd();
			CHECK(exai__buf_printf(b, "2026-11-%02u T08:%02u:%02uZ INFO req=%08x-%04x-4%03x-a%03x-%012llx sha=%016llx%016llx latency_ms=%u\n",
					       (unsigned)(a % 28 + 1), (unsigned)(a % 60), (unsigned)(c % 60), (unsigned)a,
					       (unsigned)(c & 0xffff), (unsigned)(a >> 40 & 0xfff), (unsigned)(c >> 40 & 0xfff),
					       (unsigned long long)(rnd() & 0xffffffffffffull), (unsigned long long)rnd(),
					       (unsigned long long)rnd(), (unsigned)(rnd() % 900)) == 0);
		}
		break;
	case 3: /* JSON */
		snprintf(tmp, sizeof(tmp), "{\"id\": %u, \"name\": \"item-%u\", \"tags\": [\"a\", \"b\"], \"url\": \"https://api.example.org/v2/items/%u?expand=true\", \"enabled\": true}\n",
			 (unsigned)(rnd() % 100000), (unsigned)(rnd() % 1000), (unsigned)(rnd() % 100000));
		CHECK(exai__buf_append(b, tmp, strlen(tmp)) == 0);
		break;
	case 4: /* config */
		CHECK(exai__buf_printf(b, "[server]\nhost = \"10.0.%u.%u\"\nport = %u\nworkers = %u\nlog_level = \"info\"\npath = \"/var/lib/app/data-%u\"\n\n",
				       (unsigned)(rnd() % 256), (unsigned)(rnd() % 256), (unsigned)(1024 + rnd() % 60000),
				       (unsigned)(rnd() % 32), (unsigned)(rnd() % 100)) == 0);
		break;
	case 5: /* a stack trace */
		CHECK(exai__buf_printf(b, "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/app/main.py\", line %u, in run\n    self.loop.run_until_complete(task)\nValueError: invalid literal for int() with base 10: 'abc'\n\n",
				       (unsigned)(rnd() % 900)) == 0);
		break;
	default: /* markdown */
		CHECK(exai__buf_printf(b, "## Step %u\n\nRun `make install` then `systemctl restart app.service` and check `journalctl -u app` for errors (see v%u.%u.%u release notes).\n\n",
				       (unsigned)(rnd() % 10), (unsigned)(rnd() % 5), (unsigned)(rnd() % 20), (unsigned)(rnd() % 10)) == 0);
	}
}

struct row {
	char *text, *secret;
	int kind;
};

static struct row *load_positives(size_t *n)
{
	static const char *const files[] = { "corpora/scrub-dev/dev.jsonl", "corpora/scrub-dev/pii-synthetic.jsonl" };
	struct row *rows = NULL;
	size_t cnt = 0;
	for (size_t f = 0; f < 2; f++) {
		size_t len;
		char *data = test_read_file(test_shared(files[f]), &len), *line = data, *next;
		for (; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = 0;
			json_t *j = json_loads(line, 0, NULL);
			const char *expect = json_string_value(json_object_get(j, "expect"));
			if (expect && strcmp(expect, "none") != 0) {
				rows = realloc(rows, (cnt + 1) * sizeof(*rows));
				rows[cnt].text = strdup(json_string_value(json_object_get(j, "text")));
				rows[cnt].secret = strdup(json_string_value(json_object_get(j, "secret")));
				rows[cnt].kind = strcmp(expect, "pii") == 0 ? 2 : 1;
				cnt++;
			}
			json_decref(j);
		}
		free(data);
	}
	*n = cnt;
	return rows;
}

static int gen(const char *dir, size_t mb)
{
	size_t n;
	struct row *rows = load_positives(&n);
	char path[4096];
	snprintf(path, sizeof(path), "%s/planted.tsv", dir);
	FILE *planted = fopen(path, "w");
	for (size_t f = 0; f < mb; f++) {
		struct exai__buf b = { 0 };
		while (b.len < (1u << 20)) {
			gen_block(&b);
			if (rnd() % 40 == 0) { /* a labelled positive every ~20 KiB */
				struct row *r = &rows[rnd() % n];
				size_t at = b.len + (size_t)(strstr(r->text, r->secret) - r->text);
				CHECK(exai__buf_printf(&b, "%s\n\n", r->text) == 0);
				fprintf(planted, "corpus-%03zu.txt\t%zu\t%zu\t%d\n", f, at, at + strlen(r->secret), r->kind);
			}
		}
		snprintf(path, sizeof(path), "%s/corpus-%03zu.txt", dir, f);
		FILE *o = fopen(path, "w");
		fwrite(b.data, 1, b.len, o);
		fclose(o);
		exai__buf_free(&b);
	}
	fclose(planted);
	snprintf(path, sizeof(path), "%s/recall", dir);
	exai__mkdir_p(path, 0755);
	snprintf(path, sizeof(path), "%s/recall.tsv", dir);
	FILE *m = fopen(path, "w");
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/recall/%04zu.txt", dir, i);
		FILE *o = fopen(path, "w");
		fputs(rows[i].text, o);
		fclose(o);
		size_t at = (size_t)(strstr(rows[i].text, rows[i].secret) - rows[i].text);
		fprintf(m, "%04zu.txt\t%zu\t%zu\t%d\n", i, at, at + strlen(rows[i].secret), rows[i].kind);
		free(rows[i].text);
		free(rows[i].secret);
	}
	fclose(m);
	free(rows);
	printf("generated %zu MiB in %s and %zu recall files\n", mb, dir, n);
	return 0;
}

static double now_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_stderr(void *ud, int level, const char *mod, const char *msg)
{
	(void)ud, (void)level;
	fprintf(stderr, "%s: %s\n", mod, msg);
}

static exai_scrubber *mk(uint32_t flags)
{
	char state[4096];
	snprintf(state, sizeof(state), "%s/scrub-test-state", getenv("EXAI_BUILD_ROOT") ? getenv("EXAI_BUILD_ROOT") : "/tmp");
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state);
	if (getenv("BENCH_DEBUG")) { /* the scrubber's debug log (the plan's gate costs) on stderr */
		co.log_fn = log_stderr;
		co.log_level = EXAI_LOG_DEBUG;
	}
	exai_ctx *ctx = NULL;
	CHECK_OK(exai_ctx_new(&ctx, &co));
	EXAI_OPTS(exai_scrubber_opts, o, .flags = flags | (getenv("BENCH_DEBUG") ? EXAI_SCRUBBER_NO_CACHE : 0u),
		  .max_input = (size_t)1 << 30);
	exai_scrubber *s = NULL;
	CHECK_OK(exai_scrubber_new(&s, ctx, &o));
	exai_ctx_unref(ctx);
	if (!s)
		exit(1);
	return s;
}

struct file {
	char name[256];
	char *data;
	size_t len;
};

static struct file *load_dir(const char *dir, const char *prefix, size_t *n, size_t *total, size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct file *fs = NULL;
	*n = *total = 0;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || *n >= max)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fs = realloc(fs, (*n + 1) * sizeof(*fs));
		memcpy(fs[*n].name, e->d_name, sizeof(fs[*n].name));
		fs[*n].data = test_read_file(path, &fs[*n].len);
		*total += fs[*n].len;
		(*n)++;
	}
	if (d)
		closedir(d);
	return fs;
}

/* The first @max corpus files of @dir (skips the test when there are none). */
static struct file *corpus(const char *dir, size_t max, size_t *n, size_t *total)
{
	struct file *fs = load_dir(dir, "corpus-", n, total, max);
	if (!*n)
		test_skip("no corpus in %s (run gen first)", dir);
	/* the first touch of freshly read pages faults (0.9 ms per MB on a 2-core VM, more than
	 * Hyperscan's scan): touched here, not in the first timed pass */
	volatile char sink = 0;
	for (size_t i = 0; i < *n; i++)
		for (size_t k = 0; k < fs[i].len; k += 4096)
			sink ^= fs[i].data[k];
	(void)sink;
	return fs;
}

static void corpus_free(struct file *fs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(fs[i].data);
	free(fs);
}

static int on_hs(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ud)
{
	(void)id, (void)from, (void)to, (void)flags;
	(*(size_t *)ud)++;
	return 0;
}

static int on_run_count(void *ud, unsigned spec, size_t start, size_t end, unsigned body, unsigned seps)
{
	(void)start, (void)end, (void)body, (void)seps;
	((size_t *)ud)[0]++;
	((size_t *)ud)[1 + spec]++;
	return 0;
}

/* One pass of the scrubber over the corpus, as an embedding runs it: each result is read
 * (planted secrets covered by one finding of the right kind) and freed before the next call.
 * The timing holds the calls and the frees; it used to hold 100 results of 1 MiB kept alive
 * to the end, whose fresh pages' first-touch faults cost as much as stage 1 on this VM. */
static void run_pass(const char *what, exai_scrubber *s, struct file *fs, size_t n, size_t total, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/planted.tsv", dir);
	FILE *p = fopen(path, "r");
	/* planted.tsv lists the planted secrets file by file, in the files' order */
	struct plant {
		char name[64];
		size_t a, b;
		int kind;
	} *pl = NULL;
	size_t n_pl = 0, cap = 0;
	struct plant x;
	while (p && fscanf(p, "%63s %zu %zu %d", x.name, &x.a, &x.b, &x.kind) == 4) {
		if (n_pl == cap) {
			cap = cap ? 2 * cap : 1024;
			pl = realloc(pl, cap * sizeof(*pl));
			CHECK(pl != NULL);
		}
		pl[n_pl++] = x;
	}
	if (p)
		fclose(p);
	size_t planted = 0, found = 0, findings = 0;
	EXAI_OPTS(exai_scrub_text_opts, o, .mode = EXAI_SCRUB_PLACEHOLDER, .no_audit = 1);
	double cpu = 0, wall = 0;
	for (size_t i = 0; i < n; i++) {
		exai_scrub_result *r = NULL;
		double c0 = now_cpu(), w0 = now_wall();
		CHECK_OK(exai_scrub_text(&r, s, fs[i].data, fs[i].len, &o));
		cpu += now_cpu() - c0;
		wall += now_wall() - w0;
		size_t nf = exai_scrub_result_count(r);
		findings += nf;
		for (size_t j = 0; j < n_pl; j++) {
			if (strcmp(pl[j].name, fs[i].name) != 0)
				continue;
			planted++;
			for (size_t k = 0; k < nf; k++) {
				const struct exai_scrub_finding *f = exai_scrub_result_finding(r, k);
				if (f->start <= pl[j].a && f->end >= pl[j].b && f->kind == pl[j].kind) {
					found++;
					break;
				}
			}
		}
		c0 = now_cpu();
		w0 = now_wall();
		exai_scrub_result_free(r);
		cpu += now_cpu() - c0;
		wall += now_wall() - w0;
	}
	free(pl);
	printf("%-28s %8.1f MB/s per CPU-second (%.1f MB/s wall), %zu MB, %zu findings, planted recall %zu/%zu = %.1f%%\n",
	       what, (double)total / 1e6 / cpu, (double)total / 1e6 / wall, total >> 20, findings, found, planted,
	       planted ? 100.0 * (double)found / (double)planted : 0);
}

static int throughput(const char *dir)
{
	size_t n, total;
	struct file *fs = corpus(dir, SIZE_MAX, &n, &total);
	exai_scrubber *s = mk(EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	/* the physical limit of one core: reading every byte once (memchr for a byte no file holds) */
	size_t held = 0;
	double c0 = now_cpu();
	for (size_t i = 0; i < n; i++)
		held += memchr(fs[i].data, 0x01, fs[i].len) != NULL;
	double cpu = now_cpu() - c0;
	printf("%-28s %8.1f MB/s per CPU-second (%zu files hold the byte)\n", "reading the bytes (memchr)",
	       (double)total / 1e6 / cpu, held);
	/* the floor: Hyperscan alone over the same bytes, no confirmation */
	size_t hits = 0;
	c0 = now_cpu();
	for (size_t i = 0; i < n; i++)
		hs_scan(s->db, fs[i].data, (unsigned)fs[i].len, 0, s->scratch, on_hs, &hits);
	cpu = now_cpu() - c0;
	printf("%-28s %8.1f MB/s per CPU-second, %zu literal hits and candidate ends\n", "hyperscan alone (floor)",
	       (double)total / 1e6 / cpu, hits);
	/* the run scan alone (the literal-free patterns' triggers) */
	size_t runs[1 + EXAI__RUN_SPECS_MAX] = { 0 };
	c0 = now_cpu();
	for (size_t i = 0; i < n; i++)
		exai__runs_scan_plan(&s->run_plan, fs[i].data, fs[i].len, on_run_count, runs, EXAI__SIMD_BEST);
	cpu = now_cpu() - c0;
	printf("%-28s %8.1f MB/s per CPU-second, %zu runs (", "run scan alone (floor)", (double)total / 1e6 / cpu, runs[0]);
	for (unsigned k = 0; k < s->n_run_specs; k++)
		printf("%s%s%s%s %zu", k ? ", " : "", exai__run_name(s->run_specs[k].run), s->run_specs[k].n_seps ? "+seps" : "",
		       s->run_specs[k].min_seps ? "(needed)" : "", runs[1 + k]);
	printf(")\n");
	run_pass("stage 1 (patterns)", s, fs, n, total, dir);
	exai_scrubber_free(s);
	s = mk(EXAI_SCRUBBER_NO_DECODE);
	run_pass("stage 1 + stage 2", s, fs, n, total, dir);
	exai_scrubber_free(s);
	s = mk(0);
	run_pass("both stages + decoders", s, fs, n, total, dir);
	exai_scrubber_free(s);
	corpus_free(fs, n);
	return 0;
}

/* Hyperscan's literals (the first 8 MiB): the rate of databases that leave some out, to see
 * which literals make the scan slow. A database of the plan's literals (and regexes) less
 * those @skip says, scanned with a null callback; its rate and its reports. */
/* One scan of the files (valgrind --tool=callgrind --toggle-collect=hs_scan_all
 * --dump-after=hs_scan_all counts each database's instructions apart). */
__attribute__((noinline)) static void hs_scan_all(const hs_database_t *db, hs_scratch_t *scr, struct file *fs, size_t n,
						  size_t *reports)
{
	for (size_t k = 0; k < n; k++)
		hs_scan(db, fs[k].data, (unsigned)fs[k].len, 0, scr, on_hs, reports);
}

static double db_rate(const exai_scrubber *s, struct file *fs, size_t n, size_t total, bool (*skip)(const exai_scrubber *, size_t, void *),
		      void *ud, size_t *reports)
{
	size_t m = 0, cap = s->set.n + 3 * s->n_lits + 32;
	const char **e = calloc(cap, sizeof(*e));
	unsigned *fl = calloc(cap, sizeof(*fl)), *ids = calloc(cap, sizeof(*ids));
	size_t cap_b = 3 * s->n_lits + 1;
	char (*buf)[4 * EXAI__LIT_MAX + 1] = calloc(cap_b, sizeof(*buf));
	/* BENCH_CASE_VARIANTS=L: each caseless literal of at most L letters as all its case
	 * variants (case-sensitive), to compare Hyperscan's caseless matching with them */
	int variants = getenv("BENCH_CASE_VARIANTS") ? atoi(getenv("BENCH_CASE_VARIANTS")) : -1;
	size_t nb = 0;
	for (size_t i = 0; i < s->set.n; i++)
		if (s->set.pats[i].gate == EXAI__GATE_REGEX && !skip(s, SIZE_MAX - i, ud)) {
			e[m] = s->set.pats[i].hs_regex;
			fl[m] = s->set.pats[i].hs_flags;
			ids[m++] = (unsigned)i;
		}
	for (size_t k = 0; k < s->n_lits; k++) {
		if (skip(s, k, ud))
			continue;
		const struct exai__lit *l = &s->lits[k];
		int letters = 0;
		for (size_t j = 0; j < l->len; j++)
			letters += isalpha((unsigned char)l->s[j]) != 0;
		bool expand = l->caseless && letters <= variants;
		for (unsigned v = 0; v < (expand ? 1u << letters : 1u); v++) {
			if (nb == cap_b) {
				cap_b *= 2;
				buf = realloc(buf, cap_b * sizeof(*buf));
				e = realloc(e, (cap_b + cap) * sizeof(*e));
				fl = realloc(fl, (cap_b + cap) * sizeof(*fl));
				ids = realloc(ids, (cap_b + cap) * sizeof(*ids));
			}
			for (size_t j = 0, b = 0; j < l->len; j++) {
				int c = (unsigned char)l->s[j];
				if (expand && isalpha(c))
					c = v >> b++ & 1 ? toupper(c) : tolower(c);
				snprintf(buf[nb] + 4 * j, 5, "\\x%02x", c);
			}
			e[m] = buf[nb++];
			fl[m] = l->caseless && !expand ? HS_FLAG_CASELESS : 0;
			ids[m++] = (unsigned)(s->set.n + k);
		}
	}
	const char *extra = getenv("BENCH_EXTRA_LITS"); /* "A,B": literals added to every database */
	char xbuf[32][4 * EXAI__LIT_MAX + 1];
	for (unsigned x = 0; extra && *extra && x < 32; x++) {
		size_t l = strcspn(extra, ",");
		for (size_t j = 0; j < l && j < EXAI__LIT_MAX; j++)
			snprintf(xbuf[x] + 4 * j, 5, "\\x%02x", (unsigned char)extra[j]);
		e = realloc(e, (m + 1) * sizeof(*e));
		fl = realloc(fl, (m + 1) * sizeof(*fl));
		ids = realloc(ids, (m + 1) * sizeof(*ids));
		e[m] = xbuf[x];
		fl[m] = 0;
		ids[m++] = 100000 + x;
		extra += l + (extra[l] == ',');
	}
	hs_database_t *db = NULL;
	hs_scratch_t *scr = NULL;
	hs_compile_error_t *err = NULL;
	double rate = 0;
	*reports = 0;
	if (m && hs_compile_multi(e, fl, ids, (unsigned)m, HS_MODE_BLOCK, NULL, &db, &err) == HS_SUCCESS &&
	    hs_alloc_scratch(db, &scr) == HS_SUCCESS) {
		double best = 1e300;
		/* the best of BENCH_ROUNDS (3): the machine is shared */
		int rounds = getenv("BENCH_ROUNDS") ? atoi(getenv("BENCH_ROUNDS")) : 3;
		for (int round = 0; round < rounds; round++) {
			size_t r = 0;
			double c0 = now_cpu();
			hs_scan_all(db, scr, fs, n, &r);
			double t = now_cpu() - c0;
			best = t < best ? t : best;
			*reports = r;
		}
		rate = (double)total / 1e6 / best;
	}
	hs_free_compile_error(err);
	hs_free_scratch(scr);
	hs_free_database(db);
	free(e);
	free(fl);
	free(ids);
	free(buf);
	return rate;
}

/* what to leave out: SIZE_MAX - i is pattern i's regex, else literal k */
static bool skip_none(const exai_scrubber *s, size_t k, void *ud)
{
	(void)s, (void)k, (void)ud;
	return false;
}
static bool skip_regexes(const exai_scrubber *s, size_t k, void *ud)
{
	(void)s, (void)ud;
	return k >= s->n_lits;
}
static bool skip_short(const exai_scrubber *s, size_t k, void *ud)
{
	return k >= s->n_lits || s->lits[k].len <= *(unsigned *)ud;
}
static bool skip_caseless(const exai_scrubber *s, size_t k, void *ud)
{
	(void)ud;
	return k >= s->n_lits || s->lits[k].caseless;
}
static bool skip_one(const exai_scrubber *s, size_t k, void *ud)
{
	return k >= s->n_lits || k == *(size_t *)ud;
}

/* Hyperscan's cost per pattern: each pattern's database alone over the first 8 MiB, the
 * slowest first (where the scan time goes). */
struct pat_cost {
	double cpu;
	size_t ends;
	unsigned i;
};

static int cost_cmp(const void *a, const void *b)
{
	const struct pat_cost *x = a, *y = b;
	return x->cpu < y->cpu ? 1 : x->cpu > y->cpu ? -1 : 0;
}

static int profile(const char *dir)
{
	size_t n, total;
	struct file *fs = corpus(dir, 8, &n, &total);
	exai_scrubber *s = mk(EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	struct pat_cost *c = calloc(s->set.n, sizeof(*c));
	for (unsigned i = 0; i < s->set.n; i++) {
		const struct exai__pattern *p = &s->set.pats[i];
		hs_database_t *db = NULL;
		hs_scratch_t *scr = NULL;
		hs_compile_error_t *e = NULL;
		c[i].i = i;
		if (p->gate != EXAI__GATE_REGEX) /* literals (measured together below) or a run trigger */
			continue;
		if (hs_compile(p->hs_regex, p->hs_flags, HS_MODE_BLOCK, NULL, &db, &e) != HS_SUCCESS) {
			hs_free_compile_error(e);
			continue;
		}
		hs_alloc_scratch(db, &scr);
		double c0 = now_cpu();
		for (size_t k = 0; k < n; k++)
			hs_scan(db, fs[k].data, (unsigned)fs[k].len, 0, scr, on_hs, &c[i].ends);
		c[i].cpu = now_cpu() - c0;
		hs_free_scratch(scr);
		hs_free_database(db);
	}
	size_t ends;
	double rate = db_rate(s, fs, n, total, skip_regexes, NULL, &ends);
	printf("%7.1f MB/s %9zu ends: the %zu literals of the gated patterns\n", rate, ends, s->n_lits);
	qsort(c, s->set.n, sizeof(*c), cost_cmp);
	double sum = 0;
	for (unsigned i = 0; i < s->set.n; i++)
		sum += c[i].cpu;
	printf("%zu MB, sum of the patterns' scan times %.2f s\n", total >> 20, sum);
	for (unsigned i = 0; i < s->set.n && i < 40 && c[i].cpu > 0; i++) {
		const struct exai__pattern *p = &s->set.pats[c[i].i];
		printf("%7.1f MB/s %9zu ends %3zu kw  %-36s %s\n", (double)total / 1e6 / c[i].cpu, c[i].ends, p->n_keywords,
		       p->id, p->hs_flags & HS_FLAG_PREFILTER ? "prefilter" : "");
	}
	free(c);
	exai_scrubber_free(s);
	corpus_free(fs, n);
	return 0;
}

/* The plan: each pattern's gate and literals, and how often Hyperscan reports each of its ids
 * over the first 8 MiB (where the candidate windows come from), the most frequent first. */
static int on_count(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ud)
{
	(void)from, (void)to, (void)flags;
	((size_t *)ud)[id]++;
	return 0;
}

static int plan(const char *dir)
{
	size_t n, total;
	struct file *fs = corpus(dir, 8, &n, &total);
	exai_scrubber *s = mk(EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	size_t ids = s->set.n + s->n_lits;
	size_t *cnt = calloc(ids, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		hs_scan(s->db, fs[i].data, (unsigned)fs[i].len, 0, s->scratch, on_count, cnt);
	size_t by_gate[4] = { 0 };
	for (size_t i = 0; i < s->set.n; i++)
		by_gate[s->set.pats[i].gate]++;
	printf("%zu patterns: %zu regex, %zu literal, %zu keyword, %zu trigger; %zu literals\n", s->set.n, by_gate[0],
	       by_gate[1], by_gate[2], by_gate[3], s->n_lits);
	for (size_t i = 0; i < s->set.n; i++)
		if (s->set.pats[i].gate == EXAI__GATE_REGEX)
			printf("%9zu ends/%zuMB regex   %s\n", cnt[i], total >> 20, s->set.pats[i].id);
	for (size_t k = 0; k < s->n_lits; k++) {
		if (cnt[s->set.n + k] < 50)
			continue;
		printf("%9zu hits/%zuMB literal %s'%.*s' ->", cnt[s->set.n + k], total >> 20, s->lits[k].caseless ? "(?i)" : "",
		       (int)s->lits[k].len, s->lits[k].s);
		for (unsigned u = s->lit_first[k]; u < s->lit_first[k + 1]; u++)
			printf(" %s[%d,%d]", s->set.pats[s->lit_uses[u].pat].id, s->lit_uses[u].lo, s->lit_uses[u].hi);
		printf("\n");
	}
	/* the confirmation's time per pattern, the most costly first */
	struct exai__pat_stats *ps = calloc(s->set.n, sizeof(*ps));
	s->stats = ps;
	EXAI_OPTS(exai_scrub_text_opts, o, .mode = EXAI_SCRUB_PLACEHOLDER, .no_audit = 1);
	double c0 = now_cpu();
	for (size_t i = 0; i < n; i++) {
		exai_scrub_result *r = NULL;
		CHECK_OK(exai_scrub_text(&r, s, fs[i].data, fs[i].len, &o));
		exai_scrub_result_free(r);
	}
	double all = now_cpu() - c0, sum = 0;
	s->stats = NULL;
	unsigned *order = calloc(s->set.n, sizeof(unsigned));
	size_t windows = 0;
	for (unsigned i = 0; i < s->set.n; i++) {
		order[i] = i;
		sum += ps[i].seconds;
		windows += ps[i].windows;
	}
	for (unsigned i = 0; i < s->set.n; i++) /* a selection sort of the top 40 is enough */
		for (unsigned j = i + 1; j < s->set.n && i < 40; j++)
			if (ps[order[j]].seconds > ps[order[i]].seconds) {
				unsigned t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
	printf("stage 1: %.3f CPU-s for %zu MB, of which confirming %zu windows %.3f s\n", all, total >> 20, windows, sum);
	for (unsigned i = 0; i < 40 && i < s->set.n; i++) {
		const struct exai__pat_stats *x = &ps[order[i]];
		printf("%8.2f ms %8zu windows %10zu bytes  %-8s %s\n", x->seconds * 1e3, x->windows, x->bytes,
		       s->set.pats[order[i]].gate == EXAI__GATE_REGEX ? "regex" : s->set.pats[order[i]].gate == EXAI__GATE_LITERAL ? "literal" : s->set.pats[order[i]].gate == EXAI__GATE_KEYWORD ? "keyword" : "trigger",
		       s->set.pats[order[i]].id);
	}
	free(order);
	free(ps);
	free(cnt);
	exai_scrubber_free(s);
	corpus_free(fs, n);
	return 0;
}

static int literals(const char *dir)
{
	size_t n, total;
	struct file *fs = corpus(dir, getenv("BENCH_FILES") ? (size_t)atoi(getenv("BENCH_FILES")) : 8, &n, &total);
	exai_scrubber *s = mk(EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	size_t *cnt = calloc(s->set.n + s->n_lits, sizeof(size_t)), rep;
	for (size_t i = 0; i < n; i++)
		hs_scan(s->db, fs[i].data, (unsigned)fs[i].len, 0, s->scratch, on_count, cnt);
	size_t n_short = 0, n_cl = 0;
	for (size_t k = 0; k < s->n_lits; k++) {
		n_short += s->lits[k].len <= 3;
		n_cl += s->lits[k].caseless;
	}
	printf("%zu MB, %zu literals (%zu of 1-3 bytes, %zu caseless)\n", total >> 20, s->n_lits, n_short, n_cl);
	double best = 1e300;
	for (int round = 0; round < 3; round++) {
		rep = 0;
		double c0 = now_cpu();
		hs_scan_all(s->db, s->scratch, fs, n, &rep);
		best = fmin(best, now_cpu() - c0);
	}
	printf("%8.1f MB/s %9zu reports: the scrubber's database\n", (double)total / 1e6 / best, rep);
	double r = db_rate(s, fs, n, total, skip_none, NULL, &rep);
	printf("%8.1f MB/s %9zu reports: the database (each caseless literal one expression)\n", r, rep);
	double base = db_rate(s, fs, n, total, skip_regexes, NULL, &rep);
	printf("%8.1f MB/s %9zu reports: its literals alone (no regex)\n", base, rep);
	for (unsigned l = 1; l <= 3; l++) {
		r = db_rate(s, fs, n, total, skip_short, &l, &rep);
		printf("%8.1f MB/s %9zu reports: without the literals of 1-%u bytes\n", r, rep, l);
	}
	r = db_rate(s, fs, n, total, skip_caseless, NULL, &rep);
	printf("%8.1f MB/s %9zu reports: without the caseless literals\n", r, rep);
	/* each short or caseless-and-short literal: the literals' rate without it */
	if (getenv("BENCH_GROUPS_ONLY"))
		goto out;
	printf("the literals alone, less one of the 1-3 byte or caseless 4-byte ones (the gain first in the order of the table):\n");
	for (size_t k = 0; k < s->n_lits; k++) {
		if (s->lits[k].len > 3 && !(s->lits[k].caseless && s->lits[k].len <= 4))
			continue;
		r = getenv("BENCH_LIST") ? base : db_rate(s, fs, n, total, skip_one, &k, &rep); /* BENCH_LIST: no rates */
		printf("%+7.1f%% %8.1f MB/s %9zu hits %s'%.*s' ->", 100 * (r / base - 1), r, cnt[s->set.n + k],
		       s->lits[k].caseless ? "(?i)" : "", (int)s->lits[k].len, s->lits[k].s);
		for (unsigned u = s->lit_first[k]; u < s->lit_first[k + 1]; u++)
			printf(" %s", s->set.pats[s->lit_uses[u].pat].id);
		printf("\n");
	}
out:
	free(cnt);
	exai_scrubber_free(s);
	corpus_free(fs, n);
	return 0;
}

/* Stage 1 alone (@what "stage1"), both stages ("stage2") or everything ("all") over the corpus
 * @rounds times: a loop to profile (perf record) without the scrubber's construction in the
 * picture. */
static int loop(const char *dir, int rounds, const char *what)
{
	size_t n, total;
	struct file *fs = corpus(dir, 16, &n, &total);
	exai_scrubber *s = mk(strcmp(what, "all") == 0 ? 0
			      : strcmp(what, "stage2") == 0 ? EXAI_SCRUBBER_NO_DECODE
							    : EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	EXAI_OPTS(exai_scrub_text_opts, o, .mode = EXAI_SCRUB_PLACEHOLDER, .no_audit = 1);
	double c0 = now_cpu();
	for (int k = 0; k < rounds; k++)
		for (size_t i = 0; i < n; i++) {
			exai_scrub_result *r = NULL;
			CHECK_OK(exai_scrub_text(&r, s, fs[i].data, fs[i].len, &o));
			exai_scrub_result_free(r);
		}
	printf("%s: %.1f MB/s per CPU-second over %d rounds of %zu MB\n", what,
	       (double)total * rounds / 1e6 / (now_cpu() - c0), rounds, total >> 20);
	exai_scrubber_free(s);
	corpus_free(fs, n);
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int latency(const char *dir)
{
	size_t n, total;
	struct file *fs = load_dir(dir, "corpus-", &n, &total, 8); /* 8 MiB to draw prompts from */
	if (!n)
		test_skip("no corpus in %s (run gen first)", dir);
	exai_scrubber *s = mk(0);
	enum { N = 5000, SZ = 4096 };
	double *t = malloc(N * sizeof(double));
	EXAI_OPTS(exai_scrub_text_opts, o, .mode = EXAI_SCRUB_PLACEHOLDER, .no_audit = 1);
	for (int i = 0; i < N + 200; i++) {
		struct file *f = &fs[rnd() % n];
		size_t at = rnd() % (f->len - SZ);
		exai_scrub_result *r = NULL;
		double c0 = now_cpu();
		CHECK_OK(exai_scrub_text(&r, s, f->data + at, SZ, &o));
		double c1 = now_cpu();
		exai_scrub_result_free(r);
		if (i >= 200) /* warm-up */
			t[i - 200] = (c1 - c0) * 1e6;
	}
	qsort(t, N, sizeof(double), cmp_d);
	printf("4 KiB prompt, both stages + decoders (CPU time per call, %d calls): p50 %.1f us, p95 %.1f us, p99 %.1f us, max %.1f us\n",
	       N, t[N / 2], t[N * 95 / 100], t[N * 99 / 100], t[N - 1]);
	free(t);
	exai_scrubber_free(s);
	corpus_free(fs, n);
	return 0;
}

static int recall(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/recall.tsv", dir);
	FILE *m = fopen(path, "r");
	if (!m)
		test_skip("no %s (run gen first)", path);
	exai_scrubber *s = mk(0);
	char name[64];
	size_t a, b, files = 0, found = 0, bytes = 0;
	int kind;
	double c0 = now_cpu();
	while (fscanf(m, "%63s %zu %zu %d", name, &a, &b, &kind) == 4) {
		snprintf(path, sizeof(path), "%s/recall/%s", dir, name);
		size_t len;
		char *text = test_read_file(path, &len);
		exai_scrub_result *r = NULL;
		EXAI_OPTS(exai_scrub_text_opts, o, .no_audit = 1);
		CHECK_OK(exai_scrub_text(&r, s, text, len, &o));
		for (size_t k = 0; k < exai_scrub_result_count(r); k++) {
			const struct exai_scrub_finding *f = exai_scrub_result_finding(r, k);
			if (f->start <= a && f->end >= b) {
				found++;
				break;
			}
		}
		files++;
		bytes += len;
		exai_scrub_result_free(r);
		free(text);
	}
	fclose(m);
	printf("libexai recall on %zu labelled files: %zu = %.1f%% (%.2f ms CPU for %zu bytes)\n", files, found,
	       100.0 * (double)found / (double)files, (now_cpu() - c0) * 1e3, bytes);
	exai_scrubber_free(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "gen") == 0)
		return gen(argv[2], (size_t)atoi(argv[3]));
	if (argc >= 3 && strcmp(argv[1], "throughput") == 0)
		return throughput(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "latency") == 0)
		return latency(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "loop") == 0)
		return loop(argv[2], argc >= 4 ? atoi(argv[3]) : 5, argc >= 5 ? argv[4] : "stage1");
	if (argc >= 3 && strcmp(argv[1], "plan") == 0)
		return plan(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "literals") == 0)
		return literals(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "profile") == 0)
		return profile(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "recall") == 0)
		return recall(argv[2]);
	fprintf(stderr, "usage: bench-scrub gen DIR MB | throughput DIR | latency DIR | recall DIR | profile DIR | plan DIR | literals DIR | loop DIR [ROUNDS [stage1|stage2|all]]\n");
	return 2;
}
