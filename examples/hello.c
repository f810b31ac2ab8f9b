/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hello.c: the smallest real program that embeds libexai.
 *
 * Build it against an installed libexai:
 *   cc -std=c11 hello.c $(pkg-config --cflags --libs libexai) -o hello
 * Run: ./hello [STATE_DIR]
 *
 * It checks that the loaded library is compatible with the header it was built against,
 * creates a context with options (EXAI_OPTS), prints the version, the built-in features and
 * the state directory, canonicalises a JSON text (RFC 8785, the form the audit log hashes),
 * and shows how errors are reported: a negative errno plus exai_errmsg()'s sentence.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exai/exai.h>

/* The library never prints; it hands log lines to this callback (any thread may call it). */
static void log_line(void *userdata, int level, const char *module, const char *message)
{
	fprintf((FILE *)userdata, "hello: log <%d> %s: %s\n", level, module, message);
}

/* Reports a failed libexai call the way every embedder should: errno name and sentence. */
static int report(const char *what, int err)
{
	printf("%s failed: %s (%d): %s\n", what, exai_strerror(err), err, exai_errmsg());
	return err;
}

int main(int argc, char **argv)
{
	int r;

	/* Same major version, and a library at least as new as the header. */
	if (exai_version_number() >> 16 != EXAI_VERSION_MAJOR || exai_version_number() < EXAI_VERSION_NUMBER) {
		fprintf(stderr, "hello: built for libexai %d.%d.%d, loaded %s\n", EXAI_VERSION_MAJOR,
			EXAI_VERSION_MINOR, EXAI_VERSION_PATCH, exai_version());
		return 1;
	}
	printf("libexai %s\n", exai_version());

	uint64_t have = exai_features();
	printf("features:");
	for (uint64_t bit = 1; bit; bit <<= 1) {
		const char *name = exai_feature_name(bit);
		if (name)
			printf(" %s=%s", name, (have & bit) ? "yes" : "no");
	}
	printf("\n");

	/* An option the library rejects, to show the error contract. */
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, bad, .log_level = 42);
	r = exai_ctx_new(&ctx, &bad);
	if (r >= 0 || ctx) {
		fprintf(stderr, "hello: exai_ctx_new accepted log_level 42\n");
		return 1;
	}
	report("exai_ctx_new", r);

	/* The real context: state directory from argv[1] (else $EXAI_STATE_DIR or the default). */
	EXAI_OPTS(exai_ctx_opts, opts, .state_dir = argc > 1 ? argv[1] : NULL, .log_fn = log_line,
		  .log_userdata = stderr, .log_level = EXAI_LOG_DEBUG);
	r = exai_ctx_new(&ctx, &opts);
	if (r < 0)
		return report("exai_ctx_new", r), 1;
	printf("state directory: %s\n", exai_ctx_state_dir(ctx));

	static const char json[] = "{ \"b\": [1.0, 1e21, 0.000001], \"\\u20ac\": true, \"a\": \"caf\\u00e9\" }";
	char *canon = NULL;
	size_t len = 0;
	r = exai_jcs_canonicalize(&canon, &len, json, strlen(json));
	if (r < 0) {
		exai_ctx_unref(ctx);
		return report("exai_jcs_canonicalize", r), 1;
	}
	printf("canonical (%zu bytes): %s\n", len, canon);
	exai_free(canon);

	static const char broken[] = "{\"a\": 1,}";
	r = exai_jcs_canonicalize(&canon, &len, broken, strlen(broken));
	if (r >= 0) {
		fprintf(stderr, "hello: exai_jcs_canonicalize accepted %s\n", broken);
		exai_free(canon);
		exai_ctx_unref(ctx);
		return 1;
	}
	report("exai_jcs_canonicalize", r);

	exai_ctx_unref(ctx);
	return 0;
}
