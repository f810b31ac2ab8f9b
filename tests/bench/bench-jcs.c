/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-jcs: RFC 8785 canonicalisation (exai_jcs_canonicalize) of an audit-event-sized JSON
 * text, beside its peer: jansson parsing the same text and dumping it compact with sorted
 * keys (no UTF-16 key order, no ECMAScript numbers, no duplicate check). Prints both rates
 * and the ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <exai/core.h>

static const char event[] =
	"{\"seq\": 1234567, \"time\": \"2026-11-23T08:30:00.123456Z\", \"origin\": \"host-01.example\","
	" \"prev\": \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
	" \"class_uid\": 6003, \"activity_id\": 1, \"severity_id\": 1, \"status_id\": 1,"
	" \"actor\": {\"user\": {\"name\": \"agent-7\", \"uid\": \"u-8812\"}, \"session\": {\"uid\": \"s-1\"}},"
	" \"target\": {\"workspace\": \"ws-2231\", \"tenant\": \"acme\", \"path\": \"/srv/data/caf\\u00e9.csv\"},"
	" \"metadata\": {\"version\": \"1.1.0\", \"product\": {\"name\": \"libexai\", \"vendor_name\": \"libexai\"}},"
	" \"metrics\": {\"bytes\": 1048576, \"duration_ms\": 12.5, \"ratio\": 0.000125, \"big\": 1e21},"
	" \"labels\": [\"prod\", \"eu-west\", \"\\u20ac\", \"\\ud83d\\ude00\"], \"outcome\": \"success\"}";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_exai(long n, size_t len, size_t *sink)
{
	for (long i = 0; i < n; i++) {
		char *canon;
		size_t clen;
		if (exai_jcs_canonicalize(&canon, &clen, event, len) < 0) {
			fprintf(stderr, "bench-jcs: %s\n", exai_errmsg());
			return -1;
		}
		*sink += clen;
		exai_free(canon);
	}
	return 0;
}

static int run_peer(long n, size_t len, size_t *sink)
{
	for (long i = 0; i < n; i++) {
		json_error_t e;
		json_t *v = json_loadb(event, len, JSON_REJECT_DUPLICATES, &e);
		char *out = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		if (!out) {
			fprintf(stderr, "bench-jcs: jansson: %s\n", e.text);
			return -1;
		}
		*sink += strlen(out);
		free(out);
		json_decref(v);
	}
	return 0;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 200000;
	const int rounds = 10;
	long n = iters / rounds > 0 ? iters / rounds : 1;
	size_t len = strlen(event), sink = 0;
	double best_exai = 1e9, best_peer = 1e9;

	/* Alternating rounds, best of each: the machine is shared, and the best round is the one
	 * least disturbed by others. */
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		if (run_exai(n, len, &sink) < 0)
			return 1;
		double t1 = now();
		if (run_peer(n, len, &sink) < 0)
			return 1;
		double t2 = now();
		if (t1 - t0 < best_exai)
			best_exai = t1 - t0;
		if (t2 - t1 < best_peer)
			best_peer = t2 - t1;
	}
	printf("document: %zu bytes, %d rounds of %ld, best round of each (checksum %zu)\n", len, rounds, n, sink);
	printf("exai_jcs_canonicalize:            %9.0f docs/s %7.1f MB/s\n", n / best_exai, n * len / best_exai / 1e6);
	printf("jansson load+dump (sorted, peer): %9.0f docs/s %7.1f MB/s\n", n / best_peer, n * len / best_peer / 1e6);
	printf("ratio libexai/peer: %.2f\n", best_peer / best_exai);
	return 0;
}
