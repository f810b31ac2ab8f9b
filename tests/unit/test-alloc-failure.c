/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-alloc-failure: "allocation failure is never fatal" (include/exai/core.h), checked by
 * failing each allocation in turn. The test is linked with --wrap for malloc, calloc, realloc
 * and sodium_malloc, so every such call that libexai's own code makes comes through here, and
 * it installs jansson's allocation functions, so that JSON values fail to allocate too; the
 * scenario (a context, RFC 8785 JSON, a tenant keyring with the file KMS: init, encrypt,
 * status, rotate, reopen, decrypt, disk key derivation, retirement, revocation; a minisign key
 * pair saved and loaded, a signature and its verification) is
 * run once with the N-th of those calls failing, for every N until a run makes fewer calls.
 * Each run must end in success or in -ENOMEM with a sentence, never a crash, never another
 * error that would blame the input, and under the sanitizers it must leak nothing
 * (LeakSanitizer checks at exit). Allocations made inside
 * OpenSSL, jansson, libsodium and libc are not failed here.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys/keys-internal.h"
#include "test.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_sodium_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_sodium_malloc(size_t n);

static long calls, fail_at; /* fail_at 0: nothing fails */

static bool fail_now(void)
{
	if (!fail_at)
		return false;
	if (++calls != fail_at)
		return false;
	errno = ENOMEM;
	return true;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

void *__wrap_sodium_malloc(size_t n)
{
	return fail_now() ? NULL : __real_sodium_malloc(n);
}

/* jansson's allocator (the keyring record, status and audit events are jansson values). */
static void *json_alloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

/* Output of envelope streams, in a fixed buffer (its own allocations would be failed too). */
struct sink {
	uint8_t p[4096];
	size_t len;
};

static int sink_write(void *ud, const void *data, size_t len)
{
	struct sink *s = ud;
	if (len > sizeof(s->p) - s->len)
		return -ENOSPC;
	memcpy(s->p + s->len, data, len);
	s->len += len;
	return 0;
}

static int stream(exai_envelope *e, int r, const void *data, size_t len)
{
	if (r == 0)
		r = exai_envelope_update(e, data, len);
	if (r == 0)
		r = exai_envelope_final(e);
	exai_envelope_free(e);
	return r;
}

static const char TEXT[] = "quarterly numbers";

static int keys_scenario(exai_ctx *ctx)
{
	exai_keyring *kr = NULL, *again = NULL;
	exai_envelope *e = NULL;
	struct sink msg = { .len = 0 }, back = { .len = 0 };
	char *status = NULL;
	int r = exai_keyring_init(&kr, ctx, "acme", NULL);
	if (r == 0) {
		EXAI_OPTS(exai_envelope_opts, o, .write = sink_write, .write_data = &msg);
		r = exai_keyring_encrypt(&e, kr, "export", "report-1", &o);
		r = stream(e, r, TEXT, sizeof(TEXT));
	}
	if (r == 0)
		r = exai_keyring_status(&status, kr);
	if (r == 0)
		r = exai_keyring_rotate(kr);
	if (r == 0)
		r = exai_keyring_open(&again, ctx, "acme", NULL);
	if (r == 0) {
		EXAI_OPTS(exai_envelope_opts, o, .write = sink_write, .write_data = &back);
		e = NULL;
		r = exai_keyring_decrypt(&e, again, &o);
		r = stream(e, r, msg.p, msg.len);
	}
	if (r == 0 && (back.len != sizeof(TEXT) || memcmp(back.p, TEXT, sizeof(TEXT)) != 0))
		r = exai__err(-EIO, "decrypted text differs");
	uint8_t *disk = r == 0 ? exai_secure_alloc(64) : NULL;
	if (r == 0)
		r = disk ? exai_keyring_derive_disk_key(disk, again, 0, "vm-1") : -ENOMEM;
	exai_secure_free(disk);
	if (r == 0)
		r = exai_keyring_set_min_generation(again, 2);
	if (r == 0)
		r = exai_keyring_revoke(again);
	exai_free(status);
	exai_keyring_unref(again);
	exai_keyring_unref(kr);
	return r;
}

static int sign_scenario(const char *state)
{
	exai_sign_key *key = NULL, *loaded = NULL;
	exai_sign_pubkey *pk = NULL;
	char *sig = NULL, *comment = NULL, sk_path[512], pk_path[512];
	size_t siglen = 0;
	snprintf(sk_path, sizeof(sk_path), "%s/sign.key", state);
	snprintf(pk_path, sizeof(pk_path), "%s/sign.pub", state);
	int r = exai_sign_keygen(&key);
	if (r == 0)
		r = exai_sign_key_save(key, sk_path, pk_path, NULL);
	if (r == 0)
		r = exai_sign_key_load(&loaded, sk_path, NULL);
	if (r == 0)
		r = exai_sign_data(&sig, &siglen, loaded, TEXT, sizeof(TEXT), "bundle v1", NULL);
	if (r == 0)
		r = exai_sign_pubkey_load(&pk, pk_path);
	if (r == 0)
		r = exai_sign_verify(&comment, pk, TEXT, sizeof(TEXT), sig, siglen, EXAI_SIGN_REQUIRE_PREHASHED);
	if (r == 0 && strcmp(comment, "bundle v1") != 0)
		r = exai__err(-EIO, "trusted comment differs");
	exai_free(comment);
	exai_free(sig);
	exai_sign_pubkey_free(pk);
	exai_sign_key_free(loaded);
	exai_sign_key_free(key);
	return r;
}

static int scenario(const char *state)
{
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = state);
	int r = exai_ctx_new(&ctx, &co);
	if (r < 0)
		return r;
	static const char json[] = "{\"b\":[1.0,1e21,0.000001],\"a\":\"caf\\u00e9\",\"c\":{\"z\":null,\"y\":true}}";
	char *canon = NULL;
	r = exai_jcs_canonicalize(&canon, NULL, json, sizeof(json) - 1);
	if (r == 0 && strcmp(canon, "{\"a\":\"café\",\"b\":[1,1e+21,0.000001],\"c\":{\"y\":true,\"z\":null}}") != 0)
		r = exai__err(-EIO, "canonical form differs: %s", canon);
	exai_free(canon);
	if (r == 0)
		r = keys_scenario(ctx);
	if (r == 0)
		r = sign_scenario(state);
	exai_ctx_unref(ctx);
	return r;
}

int main(void)
{
	/* Key files are fsync'ed: a tmpfs keeps hundreds of runs quick. */
	if (!getenv("TMPDIR") && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	exai__sign_kdf_light = true;
	json_set_alloc_funcs(json_alloc, free);
	int failed_runs = 0, enomem = 0, truncated = 0;
	long n;
	for (n = 1;; n++) {
		char *dir = test_tmpdir();
		calls = 0;
		fail_at = n;
		int r = scenario(dir);
		long made = calls;
		fail_at = 0;
		test_rmrf(dir);
		free(dir);
		if (made < n) { /* nothing failed in this run: every call site has been tried */
			CHECK_OK(r);
			break;
		}
		if (r == -ENOMEM)
			enomem++;
		if (r < 0 && !exai_errmsg()[0]) {
			fprintf(stderr, "allocation %ld failed: error %d without a sentence\n", n, r);
			failed_runs++;
		} else if (r == -EBADMSG && strstr(exai_errmsg(), "keyring.json: ") &&
			   (strstr(exai_errmsg(), " is malformed") || strstr(exai_errmsg(), "not a keyring record"))) {
			/* jansson drops a character of a string token when its buffer cannot grow (its
			 * lexer ignores the failure), so the record can read back shortened: the record's
			 * own checks refuse it (a wrapped DEK's base64, a member name). Reported as a
			 * damaged record, never used; any other complaint about the record is a failure. */
			truncated++;
		} else if (r < 0 && r != -ENOMEM) {
			fprintf(stderr, "allocation %ld failed, reported as %d: %s\n", n, r, exai_errmsg());
			failed_runs++;
		}
	}
	printf("%ld allocation sites tried in the scenario; %d runs ended in -ENOMEM, %d in a record that jansson "
	       "read back shortened\n", n - 1, enomem, truncated);
	CHECK(n > 50); /* the wrap is in effect */
	CHECK(failed_runs == 0);
	return test_done();
}
