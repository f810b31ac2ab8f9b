/* SPDX-License-Identifier: Apache-2.0 */
/* bench-policy-apply: the time of a policy update through the library, split into reading the
 * bundle (JSON, validation, compilation) and exai_policy_apply (tables built beside the running
 * policy, the switch, the old entries removed). Alternates two bundles on an attached device.
 * Usage: bench-policy-apply DEV BPFFS BUNDLE_A BUNDLE_B [ROUNDS]. Used by bench-policy.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <exai/exai.h>

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s DEV BPFFS BUNDLE_A BUNDLE_B [ROUNDS]\n", argv[0]);
		return 2;
	}
	int rounds = argc > 5 ? atoi(argv[5]) : 5;
	if (rounds < 1 || rounds > 100)
		rounds = 5;
	size_t len[2];
	char *text[2] = { slurp(argv[3], &len[0]), slurp(argv[4], &len[1]) };
	if (!text[0] || !text[1]) {
		fprintf(stderr, "cannot read the bundles\n");
		return 1;
	}
	double parse[100], apply[100];
	EXAI_OPTS(exai_policy_parse_opts, po, .flags = EXAI_POLICY_ALLOW_UNSIGNED);
	EXAI_OPTS(exai_policy_dev_opts, dopts, .bpffs = argv[2], .flags = EXAI_POLICY_NO_HOST_FLOOR);
	for (int i = 0; i < rounds; i++) {
		exai_policy *p = NULL;
		double t0 = now_ms();
		int r = exai_policy_parse(&p, NULL, text[i % 2], len[i % 2], &po);
		double t1 = now_ms();
		if (r == 0)
			r = exai_policy_apply(NULL, argv[1], p, &dopts);
		double t2 = now_ms();
		exai_policy_free(p);
		if (r < 0) {
			fprintf(stderr, "%s\n", exai_errmsg());
			return 1;
		}
		parse[i] = t1 - t0;
		apply[i] = t2 - t1;
	}
	qsort(parse, (size_t)rounds, sizeof(double), cmp);
	qsort(apply, (size_t)rounds, sizeof(double), cmp);
	/* medians: read+validate+compile, and apply (build, switch, clean up) */
	printf("%.1f %.1f\n", parse[rounds / 2], apply[rounds / 2]);
	free(text[0]);
	free(text[1]);
	return 0;
}
