/* SPDX-License-Identifier: Apache-2.0 */
/* test-keyring: tenant keyrings on the file KMS: init, encrypt/decrypt, rotation with re-wrap
 * and retirement of old KEK versions, min_decryption_generation, is_outdated, local revocation
 * (caches wiped at once), revocation in the KMS (decrypts fail within the cache TTL, measured
 * with the default settings), key file permissions, derivation, status, audit events. */
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys/keys-internal.h"
#include "keys-vectors.h"
#include "test.h"


static json_t *events;

static int capture(void *data, json_t *ev)
{
	(void)data;
	json_array_append(events, ev);
	return 0;
}

static int seal(struct kv_sink *out, exai_keyring *kr, const char *text)
{
	exai_envelope *e = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = out);
	int r = exai_keyring_encrypt(&e, kr, "test", "obj-1", &o);
	if (r == 0)
		r = exai_envelope_update(e, text, strlen(text));
	if (r == 0)
		r = exai_envelope_final(e);
	exai_envelope_free(e);
	return r;
}

static int open_(exai_keyring *kr, const struct kv_sink *in, uint32_t *gen)
{
	struct kv_sink out = { 0 };
	exai_envelope *d = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = &out);
	int r = exai_keyring_decrypt(&d, kr, &o);
	if (r == 0)
		r = exai_envelope_update(d, in->p, in->len);
	if (r == 0)
		r = exai_envelope_final(d);
	if (r == 0 && gen)
		r = exai_envelope_generation(d, gen);
	exai_envelope_free(d);
	free(out.p);
	return r;
}

static size_t count_events(const char *op)
{
	size_t i, n = 0;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		const char *o = json_string_value(json_object_get(json_object_get(ev, "api"), "operation"));
		if (o && strcmp(o, op) == 0)
			n++;
	}
	return n;
}

static void lifecycle(exai_ctx *ctx, const char *state)
{
	exai_keyring *kr = NULL, *kr2 = NULL;
	CHECK_RC(exai_keyring_init(&kr, ctx, "bad/name", NULL), -EINVAL);
	CHECK_RC(exai_keyring_init(&kr, ctx, ".hidden", NULL), -EINVAL);
	CHECK_RC(exai_keyring_open(&kr, ctx, "acme", NULL), -ENOENT);
	CHECK_OK(exai_keyring_init(&kr, ctx, "acme", NULL));
	CHECK_RC(exai_keyring_init(&kr2, ctx, "acme", NULL), -EEXIST);
	CHECK(count_events("key.init") == 1);
	char p[1024];
	struct stat st;
	snprintf(p, sizeof(p), "%s/keys/acme/kek-1.bin", state);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);

	struct kv_sink a1 = { 0 }, a2 = { 0 };
	uint32_t g = 0;
	CHECK_OK(seal(&a1, kr, "artefact under generation 1"));
	CHECK_OK(open_(kr, &a1, &g));
	CHECK(g == 1);
	CHECK(count_events("dek.unwrap") == 1); /* the second use came from the cache */

	/* Rotation: new generation, old artefacts still open, the old KEK version is gone. */
	CHECK_OK(exai_keyring_rotate(kr));
	CHECK(exai_keyring_generation(kr) == 2);
	CHECK(stat(p, &st) != 0);
	snprintf(p, sizeof(p), "%s/keys/acme/kek-2.bin", state);
	CHECK(stat(p, &st) == 0);
	CHECK_OK(seal(&a2, kr, "artefact under generation 2"));
	exai_keyring_flush_cache(kr);
	CHECK_OK(open_(kr, &a1, &g));
	CHECK(g == 1);
	CHECK_OK(open_(kr, &a2, &g));
	CHECK(g == 2);
	bool outdated = false;
	CHECK_OK(exai_keyring_is_outdated(kr, 1, &outdated));
	CHECK(outdated);
	CHECK_OK(exai_keyring_is_outdated(kr, 2, &outdated));
	CHECK(!outdated);
	/* A second handle (as another process would) reads the same record. */
	CHECK_OK(exai_keyring_open(&kr2, ctx, "acme", NULL));
	CHECK_OK(open_(kr2, &a1, NULL));

	/* A group-readable KEK file is refused. */
	chmod(p, 0640);
	exai_keyring_flush_cache(kr);
	CHECK_RC(open_(kr, &a2, NULL), -EACCES);
	CHECK(strstr(test_errmsg(), "0600") != NULL);
	chmod(p, 0600);
	CHECK_OK(open_(kr, &a2, NULL));

	/* Another tenant's keyring does not open acme's artefacts. */
	exai_keyring *other = NULL;
	CHECK_OK(exai_keyring_init(&other, ctx, "globex", NULL));
	CHECK_RC(open_(other, &a2, NULL), -EBADMSG);

	/* Retire generation 1. */
	CHECK_RC(exai_keyring_set_min_generation(kr, 3), -EINVAL);
	CHECK_OK(exai_keyring_set_min_generation(kr, 2));
	CHECK_RC(open_(kr, &a1, NULL), -EACCES);
	CHECK(strstr(test_errmsg(), "retired") != NULL);
	CHECK_RC(exai_keyring_is_outdated(kr, 1, &outdated), -EACCES);
	CHECK_OK(open_(kr, &a2, NULL));

	/* Status. */
	char *js = NULL;
	CHECK_OK(exai_keyring_status(&js, kr));
	json_t *s = json_loads(js ? js : "", 0, NULL);
	CHECK(json_integer_value(json_object_get(s, "current_generation")) == 2);
	CHECK(json_integer_value(json_object_get(s, "min_decryption_generation")) == 2);
	CHECK(json_is_true(json_object_get(s, "kek_enabled")));
	CHECK(json_integer_value(json_object_get(s, "rotation_days")) == 90);
	json_decref(s);
	exai_free(js);

	/* Derivation: 64-byte XTS keys with distinct halves, per VM and generation. */
	uint8_t *k1 = exai_secure_alloc(64), *k2 = exai_secure_alloc(64), *k3 = exai_secure_alloc(64);
	CHECK_OK(exai_keyring_derive_disk_key(k1, kr, 0, "vm-1"));
	CHECK_OK(exai_keyring_derive_disk_key(k2, kr, 2, "vm-1"));
	CHECK(memcmp(k1, k2, 64) == 0);
	CHECK(memcmp(k1, k1 + 32, 32) != 0);
	CHECK_OK(exai_keyring_derive_disk_key(k2, kr, 0, "vm-2"));
	CHECK(memcmp(k1, k2, 64) != 0);
	CHECK_OK(exai_keyring_derive_snapshot_key(k3, kr, 0, "vm-1", "snap-1"));
	CHECK(memcmp(k3, k1, 32) != 0);
	CHECK_RC(exai_keyring_derive_disk_key(k2, kr, 1, "vm-1"), -EACCES);
	CHECK_RC(exai_keyring_derive_disk_key(k2, kr, 0, ""), -EINVAL);
	uint8_t sector[4096], enc[4096], back[4096], tweak[16] = { 7 };
	randombytes_buf(sector, sizeof(sector));
	CHECK_OK(exai__aes_xts(k1, 64, tweak, sector, sizeof(sector), enc, true));
	CHECK_OK(exai__aes_xts(k1, 64, tweak, enc, sizeof(enc), back, false));
	CHECK(memcmp(back, sector, sizeof(sector)) == 0);
	exai_secure_free(k1);
	exai_secure_free(k2);
	exai_secure_free(k3);

	/* Local revocation: every open keyring of the tenant stops at once. */
	CHECK_OK(open_(kr2, &a2, NULL)); /* cached in kr2 */
	CHECK_OK(exai_keyring_revoke(kr));
	CHECK_RC(open_(kr, &a2, NULL), -EACCES);
	CHECK_RC(open_(kr2, &a2, NULL), -EACCES);
	struct kv_sink a3 = { 0 };
	CHECK_RC(seal(&a3, kr, "x"), -EACCES);
	CHECK_RC(exai_keyring_rotate(kr), -EACCES);
	CHECK(count_events("key.revoke") == 1);
	CHECK(count_events("key.rotate") == 2);
	exai_keyring *kr3 = NULL;
	CHECK_OK(exai_keyring_open(&kr3, ctx, "acme", NULL));
	CHECK_RC(open_(kr3, &a2, NULL), -EACCES);

	/* Every event is OCSF-shaped and names the tenant. */
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		CHECK(json_integer_value(json_object_get(ev, "class_uid")) == 6003);
		CHECK(json_object_get(ev, "activity_id") && json_object_get(ev, "actor") && json_object_get(ev, "target"));
		CHECK(json_object_get(ev, "tenant") && json_object_get(ev, "outcome"));
	}

	/* A damaged record. */
	snprintf(p, sizeof(p), "%s/keys/globex/keyring.json", state);
	FILE *f = fopen(p, "w");
	fputs("{\"version\":1}", f);
	fclose(f);
	exai_keyring *bad = NULL;
	CHECK_RC(exai_keyring_open(&bad, ctx, "globex", NULL), -EBADMSG);

	free(a1.p), free(a2.p), free(a3.p);
	exai_keyring_unref(other);
	exai_keyring_unref(kr3);
	exai_keyring_unref(kr2);
	exai_keyring_unref(kr);
}

/* The KEK disabled in the KMS (by someone else): decrypts fail once the cache expires,
 * within 30 s with the default TTL. */
static void kms_revocation(exai_ctx *ctx)
{
	exai_keyring *kr = NULL;
	CHECK_OK(exai_keyring_init(&kr, ctx, "initech", NULL));
	struct kv_sink a = { 0 };
	CHECK_OK(seal(&a, kr, "cached"));
	CHECK_OK(open_(kr, &a, NULL));
	struct exai_kms_provider kms;
	CHECK_OK(exai_kms_file_provider(&kms, ctx));
	CHECK_OK(kms.disable(kms.data, "initech"));
	kms.free(kms.data);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_OK(open_(kr, &a, NULL)); /* still cached */
	double waited = 0;
	int r = 0;
	while ((r = open_(kr, &a, NULL)) == 0 && waited < 35) {
		usleep(250 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	}
	CHECK_RC(r, -EACCES);
	CHECK(waited < 30);
	printf("KEK disabled in the KMS: decrypt refused after %.1f s (TTL 20 s)\n", waited);
	free(a.p);
	exai_keyring_unref(kr);
}

int main(void)
{
	char *dir = test_tmpdir();
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	events = json_array();
	CHECK_OK(exai__ctx_set_emitter(ctx, capture, NULL));
	lifecycle(ctx, dir);
	if (!getenv("EXAI_TEST_QUICK"))
		kms_revocation(ctx);
	json_decref(events);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
