/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-classify: the C side computes the stage-2 features exactly as the training
 * script does (lib/scrub/train/train.py --features), and the model separates obvious cases. */
#include <math.h>

#include "scrub/scrub-internal.h"
#include "test.h"

static const char *const samples[][2] = {
	{ "tk_Q8fZ2mLp0Xc7Rw4Tn9Vb1Kd3", "api_key = " },
	{ "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", "token: " },
	{ "550e8400-e29b-41d4-a716-446655440000", "id " },
	{ "da39a3ee5e6b4b0d3255bfef95601890afd80709", "commit " },
	{ "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "" },
	{ "VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcw==", "see " },
	{ "/usr/local/lib/python3.11/site-packages", "path " },
	{ "release-1.22.3-beta.4", "version " },
	{ "BasicAuthDetector", "the " },
	{ "get_user_account_settings", "call " },
	{ "//github.com/org/repo/blob/main/file.py", "url: " },
	{ "sk-proj-SevzWEV_NmNnMndQ5gn6PjFcX_9ay5SEKse8AL0EuYAB0cIgFW7Equ3", "Authorization: Bearer " },
	{ "aaaaaaaaaaaaaaaaaaaa", "x" },
	{ "0123456789012345", "PASSWORD=" },
};

int main(void)
{
	const char *root = getenv("EXAI_SOURCE_ROOT");
	char cmd[8192];
	int n = snprintf(cmd, sizeof(cmd), "python3 %s/lib/scrub/train/train.py --features", root ? root : ".");
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(samples); i++)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s' '%s'", samples[i][0], samples[i][1]);
	FILE *p = popen(cmd, "r");
	if (!p)
		test_skip("cannot run python3");
	char out[65536];
	size_t len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = 0;
	if (pclose(p) != 0)
		test_skip("python3 or the training script is not available: %s", cmd);
	json_t *arr = json_loads(out, 0, NULL);
	CHECK(json_is_array(arr) && json_array_size(arr) == EXAI__ARRAY_SIZE(samples));
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(samples) && i < json_array_size(arr); i++) {
		double f[EXAI__CLS_NFEAT];
		const char *tok = samples[i][0], *before = samples[i][1];
		exai__cls_features(f, tok, strlen(tok), before, strlen(before));
		json_t *py = json_array_get(arr, i);
		CHECK(json_array_size(py) == EXAI__CLS_NFEAT);
		for (size_t k = 0; k < EXAI__CLS_NFEAT; k++) {
			double want = json_number_value(json_array_get(py, k));
			if (fabs(f[k] - want) > 1e-12) {
				fprintf(stderr, "sample %zu feature %zu: C %.17g, Python %.17g\n", i, k, f[k], want);
				test_failures++;
			}
		}
		printf("%-60s %.4f\n", tok, exai__cls_score(f));
	}
	json_decref(arr);

	/* the model: a keyed random token is a secret, look-alikes are not */
	double f[EXAI__CLS_NFEAT];
	const double thr = exai__cls_threshold();
	CHECK(thr >= 0.5 && thr < 1);
	exai__cls_features(f, samples[0][0], strlen(samples[0][0]), samples[0][1], strlen(samples[0][1]));
	CHECK(exai__cls_score(f) >= thr);
	for (size_t i = 2; i <= 10; i++) {
		exai__cls_features(f, samples[i][0], strlen(samples[i][0]), samples[i][1], strlen(samples[i][1]));
		if (exai__cls_score(f) >= thr) {
			fprintf(stderr, "look-alike %s scores %.4f >= %.4f\n", samples[i][0], exai__cls_score(f), thr);
			test_failures++;
		}
	}
	return test_done();
}
