/* SPDX-License-Identifier: Apache-2.0 */
/* keyring.c: per-tenant keyrings: DEK generations wrapped by a KEK in a KMS, the DEK cache,
 * rotation, revocation, derivation, audit events (docs/formats/keys.md). */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keys-internal.h"

#define RECORD_VERSION 1
#define RECORD_NAME "keyring.json"
#define RECORD_MAX (1u << 20)
#define DEFAULT_TTL_MS 20000u
#define MAX_TTL_MS 25000u
#define DEFAULT_ROTATION_DAYS 90u
#define DEK_NAMESPACE "exai-tenant-dek"

struct gen {
	uint32_t generation, kek_version;
	int64_t created;
	size_t wrapped_len;
	uint8_t wrapped[EXAI_KMS_WRAPPED_MAX];
};

struct cache_ent {
	uint32_t generation;
	int64_t expires_ms;
	uint8_t *dek; /* locked memory */
};

struct exai_keyring {
	atomic_int refs;
	exai_ctx *ctx;
	char *tenant;
	char *record_path;
	struct exai_kms_provider kms;
	pthread_mutex_t lock; /* guards everything below */
	uint32_t ttl_ms;
	/* the record */
	json_t *kms_record;
	uint32_t current, min_gen, kek_version, rotation_days;
	bool revoked;
	int64_t created, rotated;
	struct gen *gens;
	size_t ngens;
	/* the cache */
	struct cache_ent *cache;
	size_t ncache;
	uint8_t *scratch; /* 32 bytes of locked memory for a DEK in use, under the lock */
	struct stat record_st; /* the record as last read or written, to notice other writers */
	struct exai_keyring *next; /* the process's open keyrings */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static exai_keyring *registry;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int exai__tenant_name_check(const char *t)
{
	size_t n = t ? strlen(t) : 0;
	if (n == 0 || n > 64 || t[0] == '.')
		return exai__err(-EINVAL, "tenant name \"%.64s\": want 1 to 64 characters of [A-Za-z0-9._-], not starting with '.'",
				 t ? t : "");
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return exai__err(-EINVAL, "tenant name \"%.64s\": character '%c' not allowed (want [A-Za-z0-9._-])", t, c);
	}
	return 0;
}

/* ---- audit events ----------------------------------------------------------------------- */

/* One OCSF-shaped "API Activity" (class 6003) event: never key bytes. */
static void emit(exai_keyring *kr, int activity, const char *operation, const char *target_type,
		 uint32_t target_version, int rc)
{
	char uid[128];
	snprintf(uid, sizeof(uid), "%s/%u", kr->tenant, target_version);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_t *ev = json_pack("{s:i, s:i, s:i, s:i, s:I, s:i, s:i, s:s, s:s, s:{s:s, s:{s:i, s:i}},"
			       " s:{s:s, s:{s:s}}, s:{s:s, s:s, s:s}, s:[{s:s, s:s}], s:s}",
			       "class_uid", 6003, "category_uid", 6, "activity_id", activity,
			       "type_uid", 600300 + activity,
			       "time", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
			       "severity_id", rc == 0 ? 1 : 3, "status_id", rc == 0 ? 1 : 2,
			       "outcome", rc == 0 ? "success" : "failure", "tenant", kr->tenant,
			       "actor", "app_name", "libexai", "process", "pid", (int)getpid(), "uid", (int)getuid(),
			       "api", "operation", operation, "service", "name", "exai.keys",
			       "target", "type", target_type, "uid", uid, "kms", kr->kms.name ? kr->kms.name : "",
			       "resources", "type", target_type, "uid", uid,
			       "metadata_product", "libexai");
	if (!ev)
		return;
	if (rc < 0)
		json_object_set_new(ev, "status_detail", json_string(exai_errmsg()));
	(void)exai__ctx_emit(kr->ctx, ev);
	json_decref(ev);
}

/* ---- the cache -------------------------------------------------------------------------- */

static void cache_drop(exai_keyring *kr, size_t i)
{
	exai_secure_free(kr->cache[i].dek);
	kr->cache[i] = kr->cache[--kr->ncache];
}

static void cache_wipe(exai_keyring *kr)
{
	while (kr->ncache)
		cache_drop(kr, 0);
}

static void cache_expire(exai_keyring *kr)
{
	int64_t now = now_ms();
	for (size_t i = 0; i < kr->ncache;) {
		if (kr->cache[i].expires_ms <= now)
			cache_drop(kr, i);
		else
			i++;
	}
}

static struct gen *find_gen(exai_keyring *kr, uint32_t g)
{
	for (size_t i = 0; i < kr->ngens; i++)
		if (kr->gens[i].generation == g)
			return &kr->gens[i];
	return NULL;
}

static int record_read(exai_keyring *kr);

/* Serialises the read-modify-write of the record between processes (rotate, retire, revoke):
 * an exclusive flock on keyring.lock beside it. Returns the descriptor, or -1 (then the
 * in-process lock still holds; the failure is logged). */
static int record_lock(exai_keyring *kr)
{
	char *p = NULL;
	if (asprintf(&p, "%s.lock", kr->record_path) < 0)
		return -1;
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(p);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		exai__log_warn(kr->ctx, "keys", "tenant %s: cannot lock the keyring record: %m", kr->tenant);
	return fd;
}

static void record_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* Another process (exaictl key rotate/revoke/retire) may have replaced the record: when its
 * inode or modification time changed, read it again, so that this keyring follows rotations
 * (old KEK versions are destroyed by them), retirements and revocations. Lock held. */
static void record_refresh(exai_keyring *kr)
{
	struct stat st;
	if (stat(kr->record_path, &st) < 0 ||
	    (st.st_ino == kr->record_st.st_ino && st.st_mtim.tv_sec == kr->record_st.st_mtim.tv_sec &&
	     st.st_mtim.tv_nsec == kr->record_st.st_mtim.tv_nsec && st.st_size == kr->record_st.st_size))
		return;
	exai_keyring tmp = { .tenant = kr->tenant, .record_path = kr->record_path };
	if (record_read(&tmp) < 0) {
		exai__log_warn(kr->ctx, "keys", "tenant %s: keeping the keyring in memory: %s", kr->tenant, exai_errmsg());
		json_decref(tmp.kms_record);
		free(tmp.gens);
		return;
	}
	exai_memzero(kr->gens, kr->ngens * sizeof(*kr->gens));
	free(kr->gens);
	json_decref(kr->kms_record);
	kr->gens = tmp.gens;
	kr->ngens = tmp.ngens;
	kr->kms_record = tmp.kms_record;
	kr->kek_version = tmp.kek_version;
	kr->current = tmp.current;
	kr->min_gen = tmp.min_gen;
	kr->revoked = kr->revoked || tmp.revoked;
	kr->created = tmp.created;
	kr->rotated = tmp.rotated;
	kr->rotation_days = tmp.rotation_days;
	kr->record_st = tmp.record_st;
	if (kr->revoked)
		cache_wipe(kr);
	for (size_t i = 0; i < kr->ncache;) {
		if (kr->cache[i].generation < kr->min_gen)
			cache_drop(kr, i);
		else
			i++;
	}
}

/* Copies the DEK of generation @g to @out: from the cache, else unwrapped by the KMS (an
 * audit event) and cached. Called with the lock held. */
static int get_dek(exai_keyring *kr, uint32_t g, uint8_t out[32])
{
	if (kr->revoked)
		return exai__err(-EACCES, "tenant %s is revoked", kr->tenant);
	if (g < kr->min_gen)
		return exai__err(-EACCES, "tenant %s: DEK generation %u is retired (min_decryption_generation %u)",
				 kr->tenant, g, kr->min_gen);
	cache_expire(kr);
	for (size_t i = 0; i < kr->ncache; i++) {
		if (kr->cache[i].generation == g) {
			memcpy(out, kr->cache[i].dek, 32);
			return 0;
		}
	}
	record_refresh(kr);
	if (kr->revoked)
		return exai__err(-EACCES, "tenant %s is revoked", kr->tenant);
	if (g < kr->min_gen)
		return exai__err(-EACCES, "tenant %s: DEK generation %u is retired (min_decryption_generation %u)",
				 kr->tenant, g, kr->min_gen);
	struct gen *ge = find_gen(kr, g);
	if (!ge)
		return exai__err(-EACCES, "tenant %s has no DEK generation %u", kr->tenant, g);
	int r = kr->kms.unwrap(kr->kms.data, kr->tenant, ge->kek_version, ge->wrapped, ge->wrapped_len, out);
	if (r < 0 && r != -ENOMEM && r != -EBADMSG)
		r = -EACCES;
	if (r < 0) {
		char tmp[1024];
		snprintf(tmp, sizeof(tmp), "%s", exai_errmsg());
		exai__err(r, "tenant %s: the KMS (%s) refused to unwrap DEK generation %u: %s", kr->tenant,
			  kr->kms.name, g, tmp);
	}
	emit(kr, 2, "dek.unwrap", "dek", g, r);
	if (r < 0)
		return r;
	struct cache_ent *c = realloc(kr->cache, (kr->ncache + 1) * sizeof(*c));
	if (!c)
		return 0; /* works uncached */
	kr->cache = c;
	uint8_t *dek = exai_secure_alloc(32);
	if (!dek)
		return 0;
	memcpy(dek, out, 32);
	kr->cache[kr->ncache++] = (struct cache_ent){ .generation = g, .expires_ms = now_ms() + kr->ttl_ms, .dek = dek };
	return 0;
}

/* ---- the record ------------------------------------------------------------------------- */

static int record_write(exai_keyring *kr)
{
	json_t *gens = json_array();
	for (size_t i = 0; gens && i < kr->ngens; i++) {
		const struct gen *g = &kr->gens[i];
		char b64[sodium_base64_ENCODED_LEN(EXAI_KMS_WRAPPED_MAX, sodium_base64_VARIANT_ORIGINAL)];
		sodium_bin2base64(b64, sizeof(b64), g->wrapped, g->wrapped_len, sodium_base64_VARIANT_ORIGINAL);
		/* A generation that failed to go in must fail the write: a record without it would
		 * lose that DEK, and every artefact under it, for good. */
		if (json_array_append_new(gens, json_pack("{s:i, s:i, s:I, s:s}", "generation", (int)g->generation,
							  "kek_version", (int)g->kek_version, "created",
							  (json_int_t)g->created, "wrapped_dek", b64)) < 0) {
			json_decref(gens);
			gens = NULL;
		}
	}
	json_t *rec = json_pack("{s:i, s:s, s:O, s:i, s:i, s:i, s:b, s:I, s:I, s:i, s:o}", "version", RECORD_VERSION,
				"tenant", kr->tenant, "kms", kr->kms_record, "kek_version", (int)kr->kek_version,
				"current_generation", (int)kr->current, "min_decryption_generation", (int)kr->min_gen,
				"revoked", kr->revoked, "created", (json_int_t)kr->created, "rotated",
				(json_int_t)kr->rotated, "rotation_days", (int)kr->rotation_days, "generations", gens);
	if (!rec)
		return exai__err(-ENOMEM, "out of memory");
	char *text;
	size_t len;
	int r = exai__jcs_dump(rec, &text, &len);
	json_decref(rec);
	if (r < 0)
		return r;
	r = exai__write_file_atomic(kr->record_path, text, len, 0600);
	free(text);
	if (r < 0)
		return exai__err_sys(r, "cannot write %s", kr->record_path);
	(void)stat(kr->record_path, &kr->record_st);
	return 0;
}

static int record_read(exai_keyring *kr)
{
	char *text;
	size_t len;
	(void)stat(kr->record_path, &kr->record_st);
	int r = exai__read_file(kr->record_path, RECORD_MAX, &text, &len);
	if (r == -ENOENT)
		return exai__err(-ENOENT, "tenant %s has no keyring (%s missing): run key init", kr->tenant, kr->record_path);
	if (r < 0)
		return exai__err_sys(r, "cannot read %s", kr->record_path);
	json_t *rec = NULL;
	r = exai__json_load(&rec, text, len, JSON_REJECT_DUPLICATES);
	free(text);
	if (r < 0)
		return exai__err_prefix(r == -ENOMEM ? r : -EBADMSG, kr->record_path);
	json_t *gens = NULL;
	int version = 0, kv = 0, cur = 0, min = 0, rot = 0, revoked = 0;
	json_int_t created = 0, rotated = 0;
	const char *tenant = NULL;
	json_error_t je; /* json_unpack allocates: its out-of-memory is not a damaged record */
	if (json_unpack_ex(rec, &je, 0, "{s:i, s:s, s:o, s:i, s:i, s:i, s:b, s:I, s:I, s:i, s:o}", "version", &version,
				"tenant", &tenant, "kms", &kr->kms_record, "kek_version", &kv, "current_generation", &cur,
				"min_decryption_generation", &min, "revoked", &revoked, "created", &created, "rotated",
				&rotated, "rotation_days", &rot, "generations", &gens) < 0 ||
	    !json_is_array(gens) || !json_is_object(kr->kms_record)) {
		json_decref(rec);
		kr->kms_record = NULL;
		if (json_error_code(&je) == json_error_out_of_memory)
			return exai__err(-ENOMEM, "out of memory");
		return exai__err(-EBADMSG, "%s: not a keyring record (missing or mistyped fields)", kr->record_path);
	}
	json_incref(kr->kms_record);
	r = 0;
	if (version != RECORD_VERSION)
		r = exai__err(-EBADMSG, "%s: record version %d is not supported", kr->record_path, version);
	else if (strcmp(tenant, kr->tenant) != 0)
		r = exai__err(-EBADMSG, "%s: record is for tenant %s", kr->record_path, tenant);
	else if (cur < 1 || min < 1 || min > cur || kv < 1)
		r = exai__err(-EBADMSG, "%s: generations out of range", kr->record_path);
	size_t n = json_array_size(gens);
	kr->gens = calloc(n ? n : 1, sizeof(*kr->gens));
	if (!kr->gens && r == 0)
		r = exai__err(-ENOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < n; i++) {
		int g = 0, v = 0;
		json_int_t c = 0;
		const char *w = NULL;
		struct gen *ge = &kr->gens[i];
		int ur = json_unpack_ex(json_array_get(gens, i), &je, 0, "{s:i, s:i, s:I, s:s}", "generation", &g,
					"kek_version", &v, "created", &c, "wrapped_dek", &w);
		if (ur < 0 && json_error_code(&je) == json_error_out_of_memory) {
			r = exai__err(-ENOMEM, "out of memory");
			break;
		}
		if (ur < 0 || g < 1 || v < 1 ||
		    sodium_base642bin(ge->wrapped, sizeof(ge->wrapped), w, strlen(w), NULL, &ge->wrapped_len, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0) {
			r = exai__err(-EBADMSG, "%s: generation entry %zu is malformed", kr->record_path, i);
			break;
		}
		ge->generation = (uint32_t)g;
		ge->kek_version = (uint32_t)v;
		ge->created = c;
		kr->ngens++;
	}
	kr->kek_version = (uint32_t)kv;
	kr->current = (uint32_t)cur;
	kr->min_gen = (uint32_t)min;
	kr->revoked = revoked;
	kr->created = created;
	kr->rotated = rotated;
	kr->rotation_days = (uint32_t)rot;
	if (r == 0 && !find_gen(kr, kr->current))
		r = exai__err(-EBADMSG, "%s: the current generation %u has no entry", kr->record_path, kr->current);
	json_decref(rec);
	return r;
}

/* ---- life cycle ------------------------------------------------------------------------- */

/* Allocates the keyring object; on failure releases the caller's provider table as the API
 * promises (the keyring owns it from the call on). */
static int keyring_alloc_(exai_keyring **ret, exai_ctx *ctx, const char *tenant, const struct exai_keyring_opts *opts);
static int keyring_alloc(exai_keyring **ret, exai_ctx *ctx, const char *tenant, const struct exai_keyring_opts *opts)
{
	int r = keyring_alloc_(ret, ctx, tenant, opts);
	if (r < 0 && opts && EXAI__OPTS_HAS(opts, kms) && opts->kms && opts->kms->free)
		opts->kms->free(opts->kms->data);
	return r;
}

static int keyring_alloc_(exai_keyring **ret, exai_ctx *ctx, const char *tenant, const struct exai_keyring_opts *opts)
{
	int r = EXAI__OPTS_CHECK(opts, exai_keyring_opts);
	if (r < 0)
		return r;
	if (!ret || !ctx)
		return exai__err(-EINVAL, "keyring: NULL argument");
	r = exai__tenant_name_check(tenant);
	if (r < 0)
		return r;
	uint32_t ttl = EXAI__OPT(opts, cache_ttl_ms, DEFAULT_TTL_MS);
	if (ttl > MAX_TTL_MS)
		return exai__err(-EINVAL, "keyring: cache_ttl_ms %u is above %u (revocation must bite within 30 s)", ttl, MAX_TTL_MS);
	exai_keyring *kr = calloc(1, sizeof(*kr));
	if (!kr)
		return exai__err(-ENOMEM, "out of memory");
	atomic_init(&kr->refs, 1);
	kr->ctx = exai_ctx_ref(ctx);
	kr->ttl_ms = ttl;
	pthread_mutex_init(&kr->lock, NULL);
	kr->scratch = exai_secure_alloc(32);
	if (!kr->scratch) {
		exai_keyring_unref(kr);
		return exai__err(-ENOMEM, "out of locked memory");
	}
	kr->tenant = strdup(tenant);
	if (!kr->tenant || asprintf(&kr->record_path, "%s/keys/%s/" RECORD_NAME, exai_ctx_state_dir(ctx), tenant) < 0) {
		kr->record_path = NULL;
		exai_keyring_unref(kr);
		return exai__err(-ENOMEM, "out of memory");
	}
	if (EXAI__OPTS_HAS(opts, kms) && opts->kms) {
		if (opts->kms->sz < offsetof(struct exai_kms_provider, free) + sizeof(opts->kms->free) ||
		    !opts->kms->create_key || !opts->kms->wrap || !opts->kms->unwrap || !opts->kms->describe ||
		    !opts->kms->disable || !opts->kms->name) {
			exai_keyring_unref(kr);
			return exai__err(-EINVAL, "keyring: the KMS provider table lacks a name or a required callback");
		}
		kr->kms = *opts->kms;
	}
	*ret = kr;
	return 0;
}

static void registry_add(exai_keyring *kr)
{
	pthread_mutex_lock(&registry_lock);
	kr->next = registry;
	registry = kr;
	pthread_mutex_unlock(&registry_lock);
}

EXAI_API exai_keyring *exai_keyring_ref(exai_keyring *kr)
{
	if (kr)
		atomic_fetch_add(&kr->refs, 1);
	return kr;
}

EXAI_API exai_keyring *exai_keyring_unref(exai_keyring *kr)
{
	if (!kr || atomic_fetch_sub(&kr->refs, 1) != 1)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	for (exai_keyring **p = &registry; *p; p = &(*p)->next) {
		if (*p == kr) {
			*p = kr->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	cache_wipe(kr);
	free(kr->cache);
	exai_secure_free(kr->scratch);
	if (kr->kms.free)
		kr->kms.free(kr->kms.data);
	json_decref(kr->kms_record);
	if (kr->gens)
		exai_memzero(kr->gens, kr->ngens * sizeof(*kr->gens));
	free(kr->gens);
	pthread_mutex_destroy(&kr->lock);
	exai_ctx_unref(kr->ctx);
	free(kr->tenant);
	free(kr->record_path);
	free(kr);
	return NULL;
}

/* The pkcs11 options a keyring record keeps, so that open() can load the provider again. */
static const struct {
	const char *member;
	size_t offset;
} pkcs11_record[] = {
	{ "module", offsetof(struct exai_kms_pkcs11_opts, module) },
	{ "token", offsetof(struct exai_kms_pkcs11_opts, token_label) },
	{ "pin_file", offsetof(struct exai_kms_pkcs11_opts, pin_file) },
	{ "pin_env", offsetof(struct exai_kms_pkcs11_opts, pin_env) },
};

#define PKCS11_FIELD(opts, i) (*(const char **)((char *)(opts) + pkcs11_record[i].offset))

static json_t *kms_record_for(const struct exai_keyring_opts *opts, const char *name)
{
	const struct exai_kms_pkcs11_opts *p = EXAI__OPTS_HAS(opts, pkcs11) ? opts->pkcs11 : NULL;
	json_t *o = json_pack("{s:s}", "provider", name);
	for (size_t i = 0; o && p && strcmp(name, "pkcs11") == 0 && i < EXAI__ARRAY_SIZE(pkcs11_record); i++)
		if (PKCS11_FIELD(p, i) &&
		    json_object_set_new(o, pkcs11_record[i].member, json_string(PKCS11_FIELD(p, i))) < 0) {
			json_decref(o); /* a record without the module or token could not be opened again */
			o = NULL;
		}
	return o;
}

EXAI_API int exai_keyring_init(exai_keyring **ret, exai_ctx *ctx, const char *tenant,
			       const struct exai_keyring_opts *opts)
{
	exai_keyring *kr;
	int r = keyring_alloc(&kr, ctx, tenant, opts);
	if (r < 0)
		return r;
	if (!kr->kms.name && (r = exai_kms_file_provider(&kr->kms, ctx)) < 0)
		goto fail;
	struct stat st;
	if (stat(kr->record_path, &st) == 0) {
		r = exai__err(-EEXIST, "tenant %s has a keyring already (%s)", tenant, kr->record_path);
		goto fail;
	}
	char *dir = strdup(kr->record_path);
	if (!dir) {
		r = exai__err(-ENOMEM, "out of memory");
		goto fail;
	}
	*strrchr(dir, '/') = '\0';
	r = exai__mkdir_p(dir, 0700);
	if (r < 0)
		r = exai__err_sys(r, "cannot create %s", dir);
	free(dir);
	if (r < 0)
		goto fail;
	kr->kms_record = kms_record_for(opts, kr->kms.name);
	kr->gens = calloc(1, sizeof(*kr->gens));
	uint8_t *dek = exai_secure_alloc(32);
	if (!kr->kms_record || !kr->gens || !dek) {
		exai_secure_free(dek);
		r = exai__err(-ENOMEM, "out of memory");
		goto fail;
	}
	r = kr->kms.create_key(kr->kms.data, tenant, &kr->kek_version);
	if (r == 0) {
		randombytes_buf(dek, 32);
		struct gen *g = &kr->gens[0];
		g->generation = 1;
		g->kek_version = kr->kek_version;
		g->created = time(NULL);
		r = kr->kms.wrap(kr->kms.data, tenant, kr->kek_version, dek, g->wrapped, &g->wrapped_len);
	}
	exai_secure_free(dek);
	if (r == 0) {
		kr->ngens = 1;
		kr->current = kr->min_gen = 1;
		kr->created = kr->rotated = time(NULL);
		kr->rotation_days = EXAI__OPT(opts, rotation_days, DEFAULT_ROTATION_DAYS);
		r = record_write(kr);
	}
	emit(kr, 1, "key.init", "kek", kr->kek_version, r);
	if (r < 0)
		goto fail;
	registry_add(kr);
	*ret = kr;
	return 0;
fail:
	exai_keyring_unref(kr);
	return r;
}

EXAI_API int exai_keyring_open(exai_keyring **ret, exai_ctx *ctx, const char *tenant,
			       const struct exai_keyring_opts *opts)
{
	exai_keyring *kr;
	int r = keyring_alloc(&kr, ctx, tenant, opts);
	if (r < 0)
		return r;
	r = record_read(kr);
	const char *prov = json_string_value(json_object_get(kr->kms_record, "provider"));
	if (r == 0 && kr->kms.name && (!prov || strcmp(prov, kr->kms.name) != 0))
		r = exai__err(-EINVAL, "tenant %s: its KEK is in the KMS provider \"%s\", not \"%s\"", tenant,
			      prov ? prov : "?", kr->kms.name);
	if (r == 0 && !kr->kms.name) {
		if (prov && strcmp(prov, "file") == 0) {
			r = exai_kms_file_provider(&kr->kms, ctx);
		} else if (prov && strcmp(prov, "pkcs11") == 0) {
			EXAI_OPTS(exai_kms_pkcs11_opts, po);
			for (size_t i = 0; i < EXAI__ARRAY_SIZE(pkcs11_record); i++)
				PKCS11_FIELD(&po, i) = json_string_value(json_object_get(kr->kms_record, pkcs11_record[i].member));
			r = exai_kms_pkcs11_provider(&kr->kms, ctx, &po);
		} else {
			r = exai__err(-EINVAL, "tenant %s uses the KMS provider \"%s\": pass it in opts->kms", tenant,
				      prov ? prov : "?");
		}
	}
	if (r < 0) {
		exai_keyring_unref(kr);
		return r;
	}
	registry_add(kr);
	*ret = kr;
	return 0;
}

/* ---- rotation, retirement, revocation --------------------------------------------------- */

EXAI_API int exai_keyring_rotate(exai_keyring *kr)
{
	if (!kr)
		return exai__err(-EINVAL, "exai_keyring_rotate: NULL keyring");
	pthread_mutex_lock(&kr->lock);
	int lockfd = record_lock(kr);
	record_refresh(kr);
	int r = 0;
	uint32_t newv = 0;
	size_t n = kr->ngens, gens_len = n + 1;
	struct gen *gens = calloc(gens_len, sizeof(*gens));
	uint8_t *dek = exai_secure_alloc(32);
	if (!gens || !dek) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	if (kr->revoked) {
		r = exai__err(-EACCES, "tenant %s is revoked", kr->tenant);
		goto out;
	}
	r = kr->kms.create_key(kr->kms.data, kr->tenant, &newv);
	/* Re-wrap every retained generation under the new KEK version. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		gens[i] = kr->gens[i];
		r = get_dek(kr, gens[i].generation, dek);
		if (r == 0)
			r = kr->kms.wrap(kr->kms.data, kr->tenant, newv, dek, gens[i].wrapped, &gens[i].wrapped_len);
		gens[i].kek_version = newv;
	}
	if (r == 0) {
		struct gen *g = &gens[n];
		randombytes_buf(dek, 32);
		g->generation = kr->current + 1;
		g->kek_version = newv;
		g->created = time(NULL);
		r = kr->kms.wrap(kr->kms.data, kr->tenant, newv, dek, g->wrapped, &g->wrapped_len);
	}
	if (r < 0)
		goto out;
	/* Commit: the record first, then retire old KEK versions. */
	struct gen *old = kr->gens;
	uint32_t oldv = kr->kek_version, oldcur = kr->current;
	int64_t oldrot = kr->rotated;
	kr->gens = gens;
	kr->ngens = n + 1;
	kr->kek_version = newv;
	kr->current++;
	kr->rotated = time(NULL);
	r = record_write(kr);
	if (r < 0) {
		kr->gens = old;
		kr->ngens = n;
		kr->kek_version = oldv;
		kr->current = oldcur;
		kr->rotated = oldrot;
		goto out;
	}
	gens = old; /* freed below */
	gens_len = n;
	if (kr->kms.destroy_version) {
		for (uint32_t v = 1; v < newv; v++) {
			int dr = kr->kms.destroy_version(kr->kms.data, kr->tenant, v);
			if (dr < 0 && dr != -ENOENT)
				exai__log_warn(kr->ctx, "keys", "tenant %s: cannot retire KEK version %u: %s", kr->tenant,
					       v, exai_errmsg());
		}
	}
	exai__log_info(kr->ctx, "keys", "tenant %s rotated: DEK generation %u under KEK version %u", kr->tenant,
		       kr->current, newv);
out:
	emit(kr, 3, "key.rotate", "kek", newv ? newv : kr->kek_version, r);
	if (gens)
		exai_memzero(gens, gens_len * sizeof(*gens));
	free(gens);
	exai_secure_free(dek);
	record_unlock(lockfd);
	pthread_mutex_unlock(&kr->lock);
	return r;
}

EXAI_API int exai_keyring_set_min_generation(exai_keyring *kr, uint32_t generation)
{
	if (!kr)
		return exai__err(-EINVAL, "exai_keyring_set_min_generation: NULL keyring");
	pthread_mutex_lock(&kr->lock);
	int lockfd = record_lock(kr);
	record_refresh(kr);
	int r = 0;
	if (generation < kr->min_gen || generation > kr->current) {
		r = exai__err(-EINVAL, "min_decryption_generation %u: want %u to %u", generation, kr->min_gen, kr->current);
		goto out;
	}
	uint32_t oldmin = kr->min_gen;
	kr->min_gen = generation;
	size_t oldn = kr->ngens;
	struct gen *keep = calloc(oldn, sizeof(*keep));
	if (!keep) {
		kr->min_gen = oldmin;
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < oldn; i++)
		if (kr->gens[i].generation >= generation)
			keep[k++] = kr->gens[i];
	struct gen *old = kr->gens;
	kr->gens = keep;
	kr->ngens = k;
	r = record_write(kr);
	if (r < 0) {
		kr->gens = old;
		kr->ngens = oldn;
		kr->min_gen = oldmin;
		free(keep);
		goto out;
	}
	exai_memzero(old, oldn * sizeof(*old));
	free(old);
	for (size_t i = 0; i < kr->ncache;) {
		if (kr->cache[i].generation < generation)
			cache_drop(kr, i);
		else
			i++;
	}
	emit(kr, 4, "dek.retire", "dek", generation, 0);
out:
	record_unlock(lockfd);
	pthread_mutex_unlock(&kr->lock);
	return r;
}

EXAI_API int exai_keyring_revoke(exai_keyring *kr)
{
	if (!kr)
		return exai__err(-EINVAL, "exai_keyring_revoke: NULL keyring");
	/* Wipe first: whatever happens with the KMS, this process stops using the DEKs now. */
	pthread_mutex_lock(&registry_lock);
	for (exai_keyring *o = registry; o; o = o->next) {
		if (strcmp(o->tenant, kr->tenant) != 0 || strcmp(exai_ctx_state_dir(o->ctx), exai_ctx_state_dir(kr->ctx)) != 0)
			continue;
		pthread_mutex_lock(&o->lock);
		o->revoked = true;
		cache_wipe(o);
		pthread_mutex_unlock(&o->lock);
	}
	pthread_mutex_unlock(&registry_lock);
	pthread_mutex_lock(&kr->lock);
	int lockfd = record_lock(kr);
	record_refresh(kr);
	kr->revoked = true;
	cache_wipe(kr);
	int r = kr->kms.disable(kr->kms.data, kr->tenant);
	int w = record_write(kr);
	if (r == 0)
		r = w;
	emit(kr, 4, "key.revoke", "kek", kr->kek_version, r);
	record_unlock(lockfd);
	pthread_mutex_unlock(&kr->lock);
	return r;
}

EXAI_API void exai_keyring_flush_cache(exai_keyring *kr)
{
	if (!kr)
		return;
	pthread_mutex_lock(&kr->lock);
	cache_wipe(kr);
	pthread_mutex_unlock(&kr->lock);
}

/* ---- status ----------------------------------------------------------------------------- */

EXAI_API int exai_keyring_status(char **ret_json, exai_keyring *kr)
{
	if (!ret_json || !kr)
		return exai__err(-EINVAL, "exai_keyring_status: NULL argument");
	struct exai_kms_key_info info = { .sz = sizeof(info) };
	int dr = kr->kms.describe(kr->kms.data, kr->tenant, &info);
	pthread_mutex_lock(&kr->lock);
	record_refresh(kr);
	cache_expire(kr);
	json_t *gens = json_array(), *cached = json_array();
	for (size_t i = 0; i < kr->ngens; i++)
		json_array_append_new(gens, json_pack("{s:i, s:i, s:I}", "generation", (int)kr->gens[i].generation,
						      "kek_version", (int)kr->gens[i].kek_version, "created",
						      (json_int_t)kr->gens[i].created));
	for (size_t i = 0; i < kr->ncache; i++)
		json_array_append_new(cached, json_integer(kr->cache[i].generation));
	json_t *st = json_pack("{s:s, s:O, s:o, s:i, s:i, s:i, s:o, s:b, s:I, s:I, s:i, s:I, s:i, s:o}", "tenant",
			       kr->tenant, "kms", kr->kms_record, "kek_enabled",
			       dr == 0 ? json_boolean(info.enabled) : json_null(), "kek_version", (int)kr->kek_version,
			       "current_generation", (int)kr->current, "min_decryption_generation", (int)kr->min_gen,
			       "generations", gens, "revoked", kr->revoked, "created", (json_int_t)kr->created,
			       "rotated", (json_int_t)kr->rotated, "rotation_days", (int)kr->rotation_days,
			       "rotation_due", (json_int_t)(kr->rotated + (int64_t)kr->rotation_days * 86400),
			       "cache_ttl_ms", (int)kr->ttl_ms, "cached_generations", cached);
	pthread_mutex_unlock(&kr->lock);
	if (!st)
		return exai__err(-ENOMEM, "out of memory");
	int r = exai__jcs_dump(st, ret_json, NULL);
	json_decref(st);
	return r;
}

EXAI_API uint32_t exai_keyring_generation(const exai_keyring *kr)
{
	return kr ? kr->current : 0;
}

EXAI_API int exai_keyring_is_outdated(exai_keyring *kr, uint32_t generation, bool *ret_outdated)
{
	if (!kr || !ret_outdated)
		return exai__err(-EINVAL, "exai_keyring_is_outdated: NULL argument");
	pthread_mutex_lock(&kr->lock);
	int r = 0;
	if (generation < kr->min_gen)
		r = exai__err(-EACCES, "tenant %s: generation %u is retired", kr->tenant, generation);
	else if (generation > kr->current)
		r = exai__err(-EINVAL, "tenant %s: generation %u does not exist yet", kr->tenant, generation);
	else
		*ret_outdated = generation < kr->current;
	pthread_mutex_unlock(&kr->lock);
	return r;
}

/* ---- envelopes -------------------------------------------------------------------------- */

static int dek_name(char *out, size_t len, const char *tenant, uint32_t g)
{
	return (size_t)snprintf(out, len, "%s/%u", tenant, g) < len ? 0 : -ENAMETOOLONG;
}

EXAI_API int exai_keyring_encrypt(exai_envelope **ret, exai_keyring *kr, const char *purpose,
				  const char *object_id, const struct exai_envelope_opts *opts)
{
	if (!ret || !kr)
		return exai__err(-EINVAL, "exai_keyring_encrypt: NULL argument");
	char name[128];
	const char *extra[7] = { "tenant", kr->tenant };
	size_t n = 2;
	if (purpose)
		extra[n++] = "purpose", extra[n++] = purpose;
	if (object_id)
		extra[n++] = "object", extra[n++] = object_id;
	extra[n] = NULL;
	/* The DEK stays in the keyring's locked scratch buffer, under the lock, while the
	 * stream wraps its data key with it. */
	pthread_mutex_lock(&kr->lock);
	record_refresh(kr);
	uint32_t g = kr->current;
	dek_name(name, sizeof(name), kr->tenant, g);
	int r = get_dek(kr, g, kr->scratch);
	if (r == 0)
		r = exai__envelope_encrypt_new(ret, kr->scratch, DEK_NAMESPACE, name, extra, opts);
	exai_memzero(kr->scratch, 32);
	pthread_mutex_unlock(&kr->lock);
	return r;
}

static int keyring_lookup(void *data, const char *ns, size_t nslen, const char *name, size_t namelen, uint8_t key[32])
{
	exai_keyring *kr = data;
	size_t tl = strlen(kr->tenant);
	if (nslen != strlen(DEK_NAMESPACE) || memcmp(ns, DEK_NAMESPACE, nslen) != 0 || namelen <= tl + 1 ||
	    namelen > tl + 11 || memcmp(name, kr->tenant, tl) != 0 || name[tl] != '/')
		return -ENOENT;
	uint32_t g = 0;
	for (size_t i = tl + 1; i < namelen; i++) {
		if (name[i] < '0' || name[i] > '9' || g > 400000000u)
			return -ENOENT;
		g = g * 10 + (uint32_t)(name[i] - '0');
	}
	pthread_mutex_lock(&kr->lock);
	int r = get_dek(kr, g, key);
	pthread_mutex_unlock(&kr->lock);
	return r;
}

static void keyring_lookup_free(void *data)
{
	exai_keyring_unref(data);
}

EXAI_API int exai_keyring_decrypt(exai_envelope **ret, exai_keyring *kr, const struct exai_envelope_opts *opts)
{
	if (!ret || !kr)
		return exai__err(-EINVAL, "exai_keyring_decrypt: NULL argument");
	int r = EXAI__OPTS_CHECK(opts, exai_envelope_opts);
	if (r < 0)
		return r;
	if (!opts)
		return exai__err(-EINVAL, "envelope: opts->write (the output callback) is required");
	/* The message must name this tenant, on top of what the caller expects. */
	size_t n = 0;
	const char *const *caller = EXAI__OPTS_HAS(opts, context) ? opts->context : NULL;
	while (caller && caller[n])
		n++;
	const char **pairs = calloc(n + 3, sizeof(*pairs));
	struct exai_envelope_opts o = { 0 };
	if (!pairs)
		return exai__err(-ENOMEM, "out of memory");
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	o.sz = sizeof(o);
	pairs[0] = "tenant";
	pairs[1] = kr->tenant;
	for (size_t i = 0; i < n; i++)
		pairs[2 + i] = caller[i];
	o.context = pairs;
	r = exai__envelope_decrypt_new(ret, keyring_lookup, exai_keyring_ref(kr), keyring_lookup_free, &o);
	free(pairs);
	return r;
}

EXAI_API int exai_envelope_generation(const exai_envelope *env, uint32_t *ret_generation)
{
	if (!env || !ret_generation)
		return exai__err(-EINVAL, "exai_envelope_generation: NULL argument");
	const char *name = exai__envelope_key_name(env);
	const char *slash = name ? strrchr(name, '/') : NULL;
	if (!slash)
		return exai__err(-EAGAIN, "envelope: no tenant data key opened yet");
	*ret_generation = (uint32_t)strtoul(slash + 1, NULL, 10);
	return 0;
}

/* ---- derivation ------------------------------------------------------------------------- */

#define DERIVE_SALT "exai/keys/derive/v1"

static int derive(exai_keyring *kr, uint32_t generation, const char *label, const char *const *parts,
		  uint8_t *out, size_t outlen, bool xts)
{
	if (!kr || !out)
		return exai__err(-EINVAL, "keyring derive: NULL argument");
	struct exai__buf info = { 0 };
	int r = exai__buf_append(&info, label, strlen(label) + 1);
	r = r ? r : exai__buf_append(&info, kr->tenant, strlen(kr->tenant) + 1);
	for (size_t i = 0; r == 0 && parts[i]; i++) {
		if (!*parts[i] || strlen(parts[i]) > 256) {
			exai__buf_free(&info);
			return exai__err(-EINVAL, "keyring derive: identifier \"%.40s\" empty or longer than 256 bytes", parts[i]);
		}
		r = exai__buf_append(&info, parts[i], strlen(parts[i]) + 1);
	}
	if (r < 0) {
		exai__buf_free(&info);
		return exai__err(-ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&kr->lock);
	uint32_t g = generation ? generation : kr->current;
	r = g > kr->current ? exai__err(-EINVAL, "tenant %s: generation %u does not exist", kr->tenant, g)
			    : get_dek(kr, g, kr->scratch);
	/* A counter byte ends the info; it moves on only in the (2^-256) case of equal XTS halves. */
	for (uint8_t ctr = 0; r == 0; ctr++) {
		if (exai__buf_putc(&info, (char)ctr) < 0) {
			r = exai__err(-ENOMEM, "out of memory");
			break;
		}
		r = exai__hkdf("SHA512", (const uint8_t *)DERIVE_SALT, strlen(DERIVE_SALT), kr->scratch, 32,
			       (const uint8_t *)info.data, info.len, out, outlen);
		info.len--;
		if (r < 0 || !xts || exai_memeq_ct(out, out + outlen / 2, outlen / 2) != 0)
			break;
	}
	exai_memzero(kr->scratch, 32);
	pthread_mutex_unlock(&kr->lock);
	exai__buf_free(&info);
	return r;
}

EXAI_API int exai_keyring_derive_disk_key(uint8_t ret[64], exai_keyring *kr, uint32_t generation, const char *vm_id)
{
	const char *parts[] = { vm_id ? vm_id : "", NULL };
	return derive(kr, generation, "exai disk-key aes-256-xts v1", parts, ret, 64, true);
}

EXAI_API int exai_keyring_derive_snapshot_key(uint8_t ret[32], exai_keyring *kr, uint32_t generation,
					      const char *vm_id, const char *snapshot_id)
{
	const char *parts[] = { vm_id ? vm_id : "", snapshot_id ? snapshot_id : "", NULL };
	return derive(kr, generation, "exai snapshot-key v1", parts, ret, 32, false);
}
