/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-corpus: the scrubber (built-in pack, both stages, decoders) on the development
 * corpus ../shared/corpora/scrub-dev/: recall on the positives of dev.jsonl and
 * pii-synthetic.jsonl (the expected `secret` fully covered by one finding of the same kind,
 * secret or personal data) and the share of benign negatives.jsonl texts with any finding.
 * Prints the numbers per class (docs/benchmarks.md records them). */
#include <unistd.h>

#include "scrub-builtin.h"
#include "scrub-stream-check.h"

#define MAX_CLASSES 256

struct cls_stat {
	char name[64];
	size_t pos, hit, neg, neg_flagged;
};

static struct cls_stat stats[MAX_CLASSES];
static size_t n_stats;

static struct cls_stat *stat_of(const char *name)
{
	for (size_t i = 0; i < n_stats; i++)
		if (strcmp(stats[i].name, name) == 0)
			return &stats[i];
	if (n_stats == MAX_CLASSES)
		return &stats[0];
	snprintf(stats[n_stats].name, sizeof(stats[n_stats].name), "%s", name);
	return &stats[n_stats++];
}

static bool verbose;

static void run_file(exai_scrubber *s, const char *rel, size_t *pos, size_t *hit, size_t *neg, size_t *neg_flagged,
		     bool count_negatives)
{
	size_t len;
	char *data = test_read_file(test_shared(rel), &len);
	char *line = data, *next;
	for (; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		json_error_t err;
		json_t *row = json_loads(line, 0, &err);
		CHECK(row != NULL);
		if (!row)
			continue;
		const char *text = json_string_value(json_object_get(row, "text"));
		const char *expect = json_string_value(json_object_get(row, "expect"));
		const char *secret = json_string_value(json_object_get(row, "secret"));
		const char *cls = json_string_value(json_object_get(row, "class"));
		size_t tl = json_string_length(json_object_get(row, "text"));
		exai_scrub_result *r = NULL;
		EXAI_OPTS(exai_scrub_text_opts, o, .no_audit = 1);
		CHECK_OK(exai_scrub_text(&r, s, text, tl, &o));
		struct cls_stat *st = stat_of(cls ? cls : "?");
		if (strcmp(expect, "none") != 0) {
			int kind = strcmp(expect, "pii") == 0 ? 2 : 1;
			size_t sl = strlen(secret);
			bool found = false;
			for (const char *at = strstr(text, secret); at && !found; at = strstr(at + 1, secret)) {
				size_t a = (size_t)(at - text), b = a + sl;
				for (size_t i = 0; i < exai_scrub_result_count(r) && !found; i++) {
					const struct exai_scrub_finding *f = exai_scrub_result_finding(r, i);
					found = f->start <= a && f->end >= b && f->kind == kind;
				}
			}
			(*pos)++;
			st->pos++;
			if (found) {
				(*hit)++;
				st->hit++;
			} else if (verbose) {
				printf("MISS %s: %.200s\n", json_string_value(json_object_get(row, "id")), secret);
			}
		} else if (count_negatives) {
			(*neg)++;
			st->neg++;
			if (exai_scrub_result_count(r)) {
				(*neg_flagged)++;
				st->neg_flagged++;
				if (verbose) {
					const struct exai_scrub_finding *f = exai_scrub_result_finding(r, 0);
					printf("FP %s: %s %.*s\n", json_string_value(json_object_get(row, "id")), f->pattern,
					       (int)(f->end - f->start > 80 ? 80 : f->end - f->start), text + f->start);
				}
			}
		}
		exai_scrub_result_free(r);
		json_decref(row);
	}
	free(data);
}

static void append_line(const char *text, size_t len, void *ud)
{
	CHECK(exai__buf_append(ud, text, len) == 0);
	CHECK(exai__buf_append(ud, "\n", 1) == 0);
}

/* Streaming equals whole-text scanning: every corpus text, concatenated into one long text,
 * fed in random chunkings (a few bytes to a few KiB), gives the same findings and output. */
static void stream_property(exai_scrubber *s)
{
	struct exai__buf all = { 0 };
	scrub_dev_texts(append_line, &all);
	EXAI_OPTS(exai_scrub_text_opts, o, .mode = EXAI_SCRUB_PLACEHOLDER, .no_audit = 1);
	exai_scrub_result *whole = NULL;
	CHECK_OK(exai_scrub_text(&whole, s, all.data, all.len, &o));
	srand(42);
	for (int round = 0; round < 3; round++) {
		bool same;
		exai_scrub_stream *st = stream_check(s, &o, all.data, all.len, round == 0 ? 16 : round == 1 ? 700 : 9000,
						     whole, &same);
		printf("stream round %d: %zu bytes, %zu findings, same as whole: %s\n", round, all.len,
		       exai_scrub_result_count(exai_scrub_stream_result(st)), same ? "yes" : "NO");
		exai_scrub_stream_free(st);
	}
	exai_scrub_result_free(whole);
	exai__buf_free(&all);
}

int main(int argc, char **argv)
{
	verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	if (access(test_shared("corpora/scrub-dev/dev.jsonl"), R_OK) != 0)
		test_skip("no corpus at %s", test_shared("corpora/scrub-dev/"));
	/* Hyperscan takes seconds to compile the pack: share the cache among the tests. */
	char state[4096];
	snprintf(state, sizeof(state), "%s/scrub-test-state", getenv("EXAI_BUILD_ROOT") ? getenv("EXAI_BUILD_ROOT") : "/tmp");
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state);
	exai_ctx *ctx = NULL;
	CHECK_OK(exai_ctx_new(&ctx, &co));
	EXAI_OPTS(exai_scrubber_opts, o, .flags = 0);
	exai_scrubber *s = NULL;
	CHECK_OK(exai_scrubber_new(&s, ctx, &o));
	exai_ctx_unref(ctx);
	if (!s)
		return test_done();
	size_t pos = 0, hit = 0, neg = 0, negf = 0, dpos = 0, dhit = 0, dneg = 0, dnegf = 0;
	run_file(s, "corpora/scrub-dev/dev.jsonl", &dpos, &dhit, &dneg, &dnegf, true);
	run_file(s, "corpora/scrub-dev/pii-synthetic.jsonl", &dpos, &dhit, &dneg, &dnegf, true);
	pos = dpos;
	hit = dhit;
	size_t z0 = 0, z1 = 0;
	run_file(s, "corpora/scrub-dev/negatives.jsonl", &z0, &z1, &neg, &negf, true);

	printf("%-28s %9s %9s %9s %12s\n", "class", "positives", "found", "recall", "negatives hit");
	for (size_t i = 0; i < n_stats; i++)
		printf("%-28s %9zu %9zu %8.1f%% %6zu / %-5zu\n", stats[i].name, stats[i].pos, stats[i].hit,
		       stats[i].pos ? 100.0 * (double)stats[i].hit / (double)stats[i].pos : 100.0, stats[i].neg_flagged,
		       stats[i].neg);
	double recall = pos ? (double)hit / (double)pos : 0, nrate = neg ? (double)negf / (double)neg : 0;
	printf("recall (dev + pii-synthetic positives): %zu / %zu = %.2f%%\n", hit, pos, 100 * recall);
	printf("negatives.jsonl texts with any finding: %zu / %zu = %.2f%%\n", negf, neg, 100 * nrate);
	printf("rule-negative rows (dev, pii-synthetic) with any finding: %zu / %zu = %.2f%% (informational)\n", dnegf,
	       dneg, dneg ? 100.0 * (double)dnegf / (double)dneg : 0);
	CHECK(recall >= 0.95);
	CHECK(nrate <= 0.02);
	stream_property(s);
	exai_scrubber_free(s);
	return test_done();
}
