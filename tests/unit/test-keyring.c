/* SPDX-License-Identifier: Apache-2.0 */
/* test-keyring: tenant keyrings on the file KMS: init, encrypt/decrypt, rotation with re-wrap
 * and retirement of old KEK versions, min_decryption_generation, is_outdated, local revocation
 * (caches wiped at once), revocation in the KMS (decrypts fail within the cache TTL, measured
 * with the default settings), key file permissions, derivation, status, audit events. */
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
	return kv_seal(out, kr, "test", "obj-1", text);
}

#define open_ kv_open

/* A new keyring for @tenant holding one artefact: @text sealed into @out. */
static exai_keyring *init_sealed(exai_ctx *ctx, const char *tenant, const struct exai_keyring_opts *opts,
				 struct kv_sink *out, const char *text)
{
	exai_keyring *kr = NULL;
	CHECK_OK(exai_keyring_init(&kr, ctx, tenant, opts));
	if (kr)
		CHECK_OK(seal(out, kr, text));
	return kr;
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

/* Another process rotates, retires and revokes (here: another handle on the same record):
 * this keyring follows the record instead of using destroyed KEK versions. */
static void cross_process(exai_ctx *ctx)
{
	exai_keyring *a = NULL, *b = NULL;
	CHECK_OK(exai_keyring_init(&a, ctx, "cross", NULL));
	CHECK_OK(exai_keyring_open(&b, ctx, "cross", NULL));
	struct kv_sink m1 = { 0 }, m2 = { 0 }, m3 = { 0 };
	uint32_t g = 0;
	CHECK_OK(seal(&m1, a, "one"));
	usleep(10000); /* a different modification time for the record */
	CHECK_OK(exai_keyring_rotate(b)); /* destroys KEK version 1 */
	CHECK_OK(seal(&m2, b, "two"));
	exai_keyring_flush_cache(a);
	CHECK_OK(open_(a, &m1, &g)); /* generation 1, now wrapped under KEK version 2 */
	CHECK(g == 1);
	CHECK_OK(open_(a, &m2, &g));
	CHECK(g == 2);
	CHECK_OK(seal(&m3, a, "three")); /* a uses the current generation */
	CHECK_OK(open_(b, &m3, &g));
	CHECK(g == 2);
	usleep(10000);
	CHECK_OK(exai_keyring_set_min_generation(b, 2));
	exai_keyring_flush_cache(a);
	CHECK_RC(open_(a, &m1, NULL), -EACCES);
	CHECK_OK(open_(a, &m2, NULL));
	usleep(10000);
	CHECK_OK(exai_keyring_revoke(b));
	CHECK_RC(seal(&m3, a, "four"), -EACCES);
	free(m1.p), free(m2.p), free(m3.p);
	exai_keyring_unref(a);
	exai_keyring_unref(b);
}

/* Two processes rotating the same tenant at once: the record lock keeps every rotation. */
static void concurrent_rotation(exai_ctx *ctx)
{
	struct kv_sink m = { 0 };
	exai_keyring *kr = init_sealed(ctx, "race", NULL, &m, "before the race");
	exai_keyring_unref(kr);
	pid_t pid = fork();
	if (pid == 0) {
		exai_keyring *c = NULL;
		int bad = exai_keyring_open(&c, ctx, "race", NULL) != 0;
		for (int i = 0; i < 5 && !bad; i++)
			bad = exai_keyring_rotate(c) != 0;
		exai_keyring_unref(c);
		_exit(bad);
	}
	exai_keyring *p = NULL;
	CHECK_OK(exai_keyring_open(&p, ctx, "race", NULL));
	for (int i = 0; i < 5; i++)
		CHECK_OK(exai_keyring_rotate(p));
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	exai_keyring_unref(p);
	CHECK_OK(exai_keyring_open(&p, ctx, "race", NULL));
	CHECK(exai_keyring_generation(p) == 11);
	uint32_t g = 0;
	CHECK_OK(open_(p, &m, &g));
	CHECK(g == 1);
	free(m.p);
	exai_keyring_unref(p);
}

/* The KEK disabled in the KMS (by someone else): decrypts fail once the cache expires,
 * within 30 s with the default TTL. */
static void kms_revocation(exai_ctx *ctx)
{
	struct kv_sink a = { 0 };
	exai_keyring *kr = init_sealed(ctx, "initech", NULL, &a, "cached");
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

/* An embedder's provider, written against the public table only: KEKs in memory, and a
 * switch that makes the KMS time out (a fault, not a stand-in for a capability). */
struct memkms {
	uint8_t kek[4][32];
	uint32_t versions;
	bool disabled, timeout;
	int unwraps;
};

static int mem_create(void *d, const char *id, uint32_t *ret)
{
	struct memkms *m = d;
	(void)id;
	if (m->versions == 4)
		return -ENOSPC;
	randombytes_buf(m->kek[m->versions], 32);
	*ret = ++m->versions;
	return 0;
}

static int mem_wrap(void *d, const char *id, uint32_t v, const uint8_t dek[32], uint8_t *out, size_t *outlen)
{
	struct memkms *m = d;
	(void)id;
	if (m->timeout)
		return -ETIMEDOUT;
	if (m->disabled || v < 1 || v > m->versions)
		return -EACCES;
	out[0] = (uint8_t)v;
	for (int i = 0; i < 32; i++)
		out[1 + i] = dek[i] ^ m->kek[v - 1][i]; /* a toy wrapping, enough for the interface */
	*outlen = 33;
	return 0;
}

static int mem_unwrap(void *d, const char *id, uint32_t v, const uint8_t *in, size_t len, uint8_t dek[32])
{
	struct memkms *m = d;
	(void)id;
	m->unwraps++;
	if (m->timeout)
		return -ETIMEDOUT;
	if (m->disabled || v < 1 || v > m->versions)
		return -EACCES;
	if (len != 33 || in[0] != v)
		return -EBADMSG;
	for (int i = 0; i < 32; i++)
		dek[i] = in[1 + i] ^ m->kek[v - 1][i];
	return 0;
}

static int mem_describe(void *d, const char *id, struct exai_kms_key_info *info)
{
	struct memkms *m = d;
	(void)id;
	info->enabled = !m->disabled && m->versions;
	info->latest_version = m->versions;
	return 0;
}

static int mem_disable(void *d, const char *id)
{
	(void)id;
	((struct memkms *)d)->disabled = true;
	return 0;
}

static void custom_provider(exai_ctx *ctx)
{
	struct memkms m = { 0 };
	struct exai_kms_provider p = {
		.sz = sizeof(p), .name = "memkms", .data = &m, .create_key = mem_create, .wrap = mem_wrap,
		.unwrap = mem_unwrap, .describe = mem_describe, .disable = mem_disable,
	};
	EXAI_OPTS(exai_keyring_opts, ko, .kms = &p, .cache_ttl_ms = 1);
	struct kv_sink a = { 0 };
	exai_keyring *kr = init_sealed(ctx, "custom", &ko, &a, "through an embedder's KMS");
	CHECK_OK(exai_keyring_rotate(kr));
	usleep(5000); /* past the 1 ms TTL */
	int before = m.unwraps;
	CHECK_OK(open_(kr, &a, NULL));
	CHECK(m.unwraps > before);
	/* The KMS times out: a clear refusal, not a crash and not plaintext. */
	m.timeout = true;
	usleep(5000);
	CHECK_RC(open_(kr, &a, NULL), -EACCES);
	CHECK(strstr(test_errmsg(), "memkms") != NULL);
	m.timeout = false;
	CHECK_OK(open_(kr, &a, NULL));
	/* A provider recorded by name cannot be reopened without the table. */
	exai_keyring *kr2 = NULL;
	CHECK_RC(exai_keyring_open(&kr2, ctx, "custom", NULL), -EINVAL);
	CHECK(strstr(test_errmsg(), "memkms") != NULL);
	ko.cache_ttl_ms = 30000;
	CHECK_RC(exai_keyring_open(&kr2, ctx, "custom", &ko), -EINVAL);
	/* Another provider than the recorded one is refused. */
	struct exai_kms_provider filekms;
	CHECK_OK(exai_kms_file_provider(&filekms, ctx));
	EXAI_OPTS(exai_keyring_opts, kf, .kms = &filekms);
	CHECK_RC(exai_keyring_open(&kr2, ctx, "custom", &kf), -EINVAL);
	CHECK(strstr(test_errmsg(), "memkms") != NULL);
	/* A table without the required callbacks is refused. */
	struct exai_kms_provider broken = p;
	broken.unwrap = NULL;
	EXAI_OPTS(exai_keyring_opts, kb, .kms = &broken);
	CHECK_RC(exai_keyring_open(&kr2, ctx, "custom", &kb), -EINVAL);
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
	custom_provider(ctx);
	cross_process(ctx);
	concurrent_rotation(ctx);
	if (!getenv("EXAI_TEST_QUICK"))
		kms_revocation(ctx);
	json_decref(events);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
