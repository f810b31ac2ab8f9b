/* SPDX-License-Identifier: Apache-2.0 */
/* test-audit-key: the log's signing key sealed by a tenant keyring: created sealed, migrated
 * from a plain file (sealed, plaintext wiped, same key), unusable once the keyring is revoked,
 * never needed by a reader; a named tenant without a keyring is refused. */
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit-internal.h"
#include "exai/keys.h"
#include "test.h"

static exai_ctx *ctx;

static bool exists(const char *dir, const char *name)
{
	char *p = exai__path_join(dir, name);
	bool e = access(p, F_OK) == 0;
	free(p);
	return e;
}

/* Reads a whole file (test helper). */
static char *slurp(const char *dir, const char *name, size_t *len)
{
	char *p = exai__path_join(dir, name), *t = NULL;
	CHECK_OK(exai__read_file(p, 1 << 20, &t, len));
	free(p);
	return t;
}

/* Opens @origin, appends an event, checkpoints, returns the vkey; verifies the log with it. */
static char *use_log(const char *origin, const char *tenant)
{
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, o, .origin = origin, .key_tenant = tenant);
	CHECK_OK(exai_audit_open(&log, ctx, &o));
	static const char ev[] = "{\"class_uid\":1001,\"activity_id\":1}";
	CHECK_OK(exai_audit_append_json(log, ev, strlen(ev), NULL));
	char *vkey = NULL, *note = NULL;
	CHECK_OK(exai_audit_checkpoint(log, &note, false));
	CHECK_OK(exai_audit_vkey(log, &vkey));
	CHECK_OK(exai_audit_note_open(NULL, note, strlen(note), vkey));
	CHECK_OK(exai_audit_close(log));
	CHECK_OK(exai_audit_verify(ctx, origin, vkey, NULL));
	free(note);
	return vkey;
}

/* The base64 seed part of a plain key file ("PRIVATE+KEY+name+id+B64": after the fourth '+',
 * since the base64 may hold '+' too). */
static char *seed_b64(const char *dir)
{
	size_t len;
	char *t = slurp(dir, "signing.key", &len), *last = t;
	for (int i = 0; i < 4 && last; i++)
		last = strchr(last + (i > 0), '+');
	CHECK(last != NULL);
	char *b = strndup(last + 1, strcspn(last + 1, "\n"));
	CHECK(strlen(b) == 44);
	free(t);
	return b;
}

int main(void)
{
	char *dir = test_tmpdir();
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));

	/* 1. No keyring yet: a plain 0600 file. */
	char *plain_dir = exai__log_dir(ctx, "old");
	char *vk_old = use_log("old", NULL);
	CHECK(exists(plain_dir, "signing.key") && !exists(plain_dir, "signing.key.sealed"));
	struct stat st;
	char *kp = exai__path_join(plain_dir, "signing.key");
	CHECK(stat(kp, &st) == 0 && (st.st_mode & 0777) == 0600);
	char *seed = seed_b64(plain_dir);

	/* A named tenant without a keyring is refused, naming it; the plain key stays. */
	exai_audit_log *log = NULL;
	EXAI_OPTS(exai_audit_opts, named, .origin = "old", .key_tenant = "acme");
	CHECK_RC(exai_audit_open(&log, ctx, &named), -ENOENT);
	CHECK(strstr(exai_errmsg(), "acme") != NULL);
	CHECK(exists(plain_dir, "signing.key"));

	/* 2. The host keyring appears: the next open seals the key and wipes the file. */
	exai_keyring *kr = NULL;
	CHECK_OK(exai_keyring_init(&kr, ctx, EXAI_AUDIT_KEY_TENANT, NULL));
	char *vk_migrated = use_log("old", NULL);
	CHECK_STREQ(vk_migrated, vk_old); /* the same key: old checkpoints still verify */
	CHECK(!exists(plain_dir, "signing.key") && exists(plain_dir, "signing.key.sealed"));
	size_t slen;
	char *sealed = slurp(plain_dir, "signing.key.sealed", &slen);
	CHECK(memmem(sealed, slen, seed, strlen(seed)) == NULL); /* ciphertext only */
	CHECK(memmem(sealed, slen, "PRIVATE+KEY", 11) == NULL);
	free(sealed);
	char *sp = exai__path_join(plain_dir, "signing.key.sealed");
	CHECK(stat(sp, &st) == 0 && (st.st_mode & 0777) == 0600);
	free(sp);
	/* Reopened, still the same key. */
	char *vk_again = use_log("old", NULL);
	CHECK_STREQ(vk_again, vk_old);

	/* 3. A new log under the host keyring is sealed from the start. */
	char *new_dir = exai__log_dir(ctx, "new");
	char *vk_new = use_log("new", NULL);
	CHECK(!exists(new_dir, "signing.key") && exists(new_dir, "signing.key.sealed") && exists(new_dir, "signing.pub"));
	/* ... and an explicitly named tenant's keyring works the same way. */
	exai_keyring *kr2 = NULL;
	CHECK_OK(exai_keyring_init(&kr2, ctx, "acme", NULL));
	char *acme_dir = exai__log_dir(ctx, "acme-log");
	char *vk_acme = use_log("acme-log", "acme");
	CHECK(exists(acme_dir, "signing.key.sealed") && !exists(acme_dir, "signing.key"));
	/* Sealed under acme, it does not open under the host keyring. */
	EXAI_OPTS(exai_audit_opts, wrong, .origin = "acme-log");
	CHECK(exai_audit_open(&log, ctx, &wrong) < 0);

	/* 4. Without its keyring the key is unusable: revoking it stops the writer... */
	CHECK_OK(exai_keyring_revoke(kr));
	EXAI_OPTS(exai_audit_opts, w, .origin = "new");
	CHECK_RC(exai_audit_open(&log, ctx, &w), -EACCES);
	CHECK(strstr(exai_errmsg(), "signing.key.sealed") != NULL);
	/* ... while readers and verification need no private key at all. */
	EXAI_OPTS(exai_audit_opts, ro, .origin = "new", .flags = EXAI_AUDIT_READONLY);
	CHECK_OK(exai_audit_open(&log, ctx, &ro));
	char *vk_ro = NULL;
	CHECK_OK(exai_audit_vkey(log, &vk_ro));
	CHECK_STREQ(vk_ro, vk_new);
	CHECK_OK(exai_audit_close(log));
	CHECK_OK(exai_audit_verify(ctx, "new", NULL, NULL));

	exai_keyring_unref(kr);
	exai_keyring_unref(kr2);
	free(vk_old);
	free(vk_migrated);
	free(vk_again);
	free(vk_new);
	free(vk_acme);
	free(vk_ro);
	free(seed);
	free(kp);
	free(plain_dir);
	free(new_dir);
	free(acme_dir);
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
