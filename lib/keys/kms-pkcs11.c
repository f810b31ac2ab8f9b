/* SPDX-License-Identifier: Apache-2.0 */
/* kms-pkcs11.c: the `pkcs11` KMS provider. Any PKCS#11 module, loaded by path with dlopen();
 * the KEK of tenant T, version N, is an AES-256 secret key generated on the token, labelled
 * "exai-kek:T:N", sensitive and not extractable; wrap/unwrap is CKM_AES_GCM through
 * C_Encrypt/C_Decrypt. Sessions: one long-lived session holds the login (login state is per
 * application in PKCS#11); each operation opens its own session, so concurrent callers never
 * share one (the module is initialised with CKF_OS_LOCKING_OK). */
#include "exai-config.h"
#include "keys-internal.h"

#if !EXAI_HAVE_PKCS11
EXAI_API int exai_kms_pkcs11_provider(struct exai_kms_provider *ret, exai_ctx *ctx,
				      const struct exai_kms_pkcs11_opts *opts)
{
	(void)ret, (void)ctx, (void)opts;
	return exai__err(-ENOTSUP, "this libexai was built without PKCS#11 support (meson option pkcs11)");
}
#else

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>
#include <sodium.h>

#define IV_LEN 12u
#define WRAPPED_LEN (IV_LEN + 32u + 16u)
#define LABEL_PREFIX "exai-kek:"

/* Loaded modules, shared by every provider of the process (C_Initialize/C_Finalize are
 * per process, so a module is finalised only when its last user goes). */
struct module {
	char *path;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	bool we_initialized;
	int refs;
	struct module *next;
};
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct module *modules;

struct p11 {
	struct module *m;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE login_session;
	char label[33];
};

static const char *rv_name(CK_RV rv)
{
	switch (rv) {
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
	case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
	case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
	case CKR_ENCRYPTED_DATA_LEN_RANGE: return "CKR_ENCRYPTED_DATA_LEN_RANGE";
	case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
	case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	default: return "a PKCS#11 error";
	}
}

static int p11_err(int err, CK_RV rv, const char *what)
{
	return exai__err(err, "PKCS#11: %s failed: %s (0x%lx)", what, rv_name(rv), (unsigned long)rv);
}

static void module_put(struct module *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&modules_lock);
	if (--m->refs == 0) {
		for (struct module **p = &modules; *p; p = &(*p)->next) {
			if (*p == m) {
				*p = m->next;
				break;
			}
		}
		if (m->we_initialized)
			m->f->C_Finalize(NULL);
		dlclose(m->dl);
		free(m->path);
		free(m);
	}
	pthread_mutex_unlock(&modules_lock);
}

static int module_get(struct module **ret, const char *path)
{
	int r = 0;
	pthread_mutex_lock(&modules_lock);
	struct module *m;
	for (m = modules; m; m = m->next)
		if (strcmp(m->path, path) == 0)
			break;
	if (m) {
		m->refs++;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		m = NULL;
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	if (access(path, R_OK) != 0) {
		r = exai__err_sys(exai__neg_errno(), "PKCS#11 module %s cannot be read", path);
		goto fail;
	}
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!m->dl) {
		r = exai__err(-ENOENT, "PKCS#11 module %s cannot be loaded: %s", path, dlerror());
		goto fail;
	}
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
	if (!gfl || gfl(&m->f) != CKR_OK || !m->f) {
		r = exai__err(-ENOENT, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
		goto fail;
	}
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_RV rv = m->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		r = p11_err(-EIO, rv, "C_Initialize");
		goto fail;
	}
	m->we_initialized = rv == CKR_OK;
	m->refs = 1;
	m->next = modules;
	modules = m;
	goto out;
fail:
	if (m->dl)
		dlclose(m->dl);
	free(m->path);
	free(m);
	m = NULL;
out:
	pthread_mutex_unlock(&modules_lock);
	if (r == 0)
		*ret = m;
	return r;
}

static int open_session(struct p11 *p, CK_SESSION_HANDLE *s)
{
	CK_RV rv = p->m->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
	return rv == CKR_OK ? 0 : p11_err(-EIO, rv, "C_OpenSession");
}

static void close_session(struct p11 *p, CK_SESSION_HANDLE s)
{
	p->m->f->C_CloseSession(s);
}

static void key_label(char *out, size_t len, const char *key_id, uint32_t version)
{
	snprintf(out, len, LABEL_PREFIX "%s:%u", key_id, version);
}

/* Finds the KEK object of (@key_id, @version); 0 with *@ret = CK_INVALID_HANDLE when absent. */
static int find_key(struct p11 *p, CK_SESSION_HANDLE s, const char *key_id, uint32_t version, CK_OBJECT_HANDLE *ret)
{
	char label[128];
	key_label(label, sizeof(label), key_id, version);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, label, strlen(label) },
	};
	CK_ULONG n = 0;
	*ret = CK_INVALID_HANDLE;
	CK_RV rv = p->m->f->C_FindObjectsInit(s, tmpl, 2);
	if (rv != CKR_OK)
		return p11_err(-EIO, rv, "C_FindObjectsInit");
	rv = p->m->f->C_FindObjects(s, ret, 1, &n);
	p->m->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return p11_err(-EIO, rv, "C_FindObjects");
	if (n == 0)
		*ret = CK_INVALID_HANDLE;
	return 0;
}

/* Opens a session and finds the KEK (@key_id, @version) in it: -ENOENT (with the sentence) when
 * the token has no such key. On failure no session is left open. */
static int open_key(struct p11 *p, const char *key_id, uint32_t version, CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *h)
{
	int r = open_session(p, s);
	if (r < 0)
		return r;
	r = find_key(p, *s, key_id, version, h);
	if (r == 0 && *h == CK_INVALID_HANDLE)
		r = exai__err(-ENOENT, "PKCS#11: KEK %s version %u is not on token \"%s\" (destroyed?)", key_id, version,
			      p->label);
	if (r < 0)
		close_session(p, *s);
	return r;
}

/* The newest version of @key_id on the token: one search over the secret keys, reading the
 * labels "exai-kek:<key_id>:<N>". */
static int latest_version(struct p11 *p, CK_SESSION_HANDLE s, const char *key_id, uint32_t *ret)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl = { CKA_CLASS, &cls, sizeof(cls) };
	char prefix[128];
	int plen = snprintf(prefix, sizeof(prefix), LABEL_PREFIX "%s:", key_id);
	CK_RV rv = p->m->f->C_FindObjectsInit(s, &tmpl, 1);
	if (rv != CKR_OK)
		return p11_err(-EIO, rv, "C_FindObjectsInit");
	uint32_t v = 0;
	CK_OBJECT_HANDLE hs[64];
	CK_ULONG n = 0;
	int r = 0;
	do {
		rv = p->m->f->C_FindObjects(s, hs, EXAI__ARRAY_SIZE(hs), &n);
		if (rv != CKR_OK) {
			r = p11_err(-EIO, rv, "C_FindObjects");
			break;
		}
		for (CK_ULONG i = 0; i < n; i++) {
			char label[160] = "";
			CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof(label) - 1 };
			if (p->m->f->C_GetAttributeValue(s, hs[i], &a, 1) != CKR_OK || a.ulValueLen >= sizeof(label))
				continue;
			label[a.ulValueLen] = '\0';
			char *end;
			if (strncmp(label, prefix, (size_t)plen) != 0)
				continue;
			unsigned long ver = strtoul(label + plen, &end, 10);
			if (*end == '\0' && ver > v && ver < UINT32_MAX)
				v = (uint32_t)ver;
		}
	} while (n == EXAI__ARRAY_SIZE(hs));
	p->m->f->C_FindObjectsFinal(s);
	if (r == 0)
		*ret = v;
	return r;
}

/* Opens a session and finds the newest version of @key_id (0: none). On failure no session is
 * left open. */
static int open_latest(struct p11 *p, const char *key_id, CK_SESSION_HANDLE *s, uint32_t *ret_version)
{
	int r = open_session(p, s);
	if (r < 0)
		return r;
	r = latest_version(p, *s, key_id, ret_version);
	if (r < 0)
		close_session(p, *s);
	return r;
}

static int p11_create_key(void *data, const char *key_id, uint32_t *ret_version)
{
	struct p11 *p = data;
	CK_SESSION_HANDLE s;
	uint32_t v = 0;
	int r = exai__tenant_name_check(key_id);
	if (r < 0 || (r = open_latest(p, key_id, &s, &v)) < 0)
		return r;
	char label[128];
	key_label(label, sizeof(label), key_id, v + 1);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 32;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &yes, sizeof(yes) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_MODIFIABLE, &yes, sizeof(yes) },
		{ CKA_LABEL, label, strlen(label) },
		{ CKA_ID, label, strlen(label) },
	};
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_OBJECT_HANDLE h;
	CK_RV rv = p->m->f->C_GenerateKey(s, &mech, tmpl, EXAI__ARRAY_SIZE(tmpl), &h);
	if (rv != CKR_OK)
		r = p11_err(-EIO, rv, "C_GenerateKey (AES-256 KEK on the token)");
	else
		*ret_version = v + 1;
	close_session(p, s);
	return r;
}


static int crypt_op(struct p11 *p, const char *key_id, uint32_t version, bool encrypt, uint8_t iv[IV_LEN],
		    const uint8_t *in, size_t inlen, uint8_t *out, CK_ULONG *outlen)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	int r = open_key(p, key_id, version, &s, &h);
	if (r < 0)
		return r == -ENOENT ? -EACCES : r; /* a destroyed KEK: the KMS refuses */
	uint8_t aad[128];
	CK_GCM_PARAMS gcm = {
		.iv_ptr = iv, .iv_len = IV_LEN, .iv_bits = IV_LEN * 8,
		.aad_ptr = aad, .aad_len = exai__kek_wrap_aad(aad, key_id, version), .tag_bits = 128,
	};
	CK_MECHANISM mech = { CKM_AES_GCM, &gcm, sizeof(gcm) };
	CK_RV rv = encrypt ? p->m->f->C_EncryptInit(s, &mech, h) : p->m->f->C_DecryptInit(s, &mech, h);
	if (rv == CKR_OK)
		rv = encrypt ? p->m->f->C_Encrypt(s, (CK_BYTE_PTR)in, inlen, out, outlen)
			     : p->m->f->C_Decrypt(s, (CK_BYTE_PTR)in, inlen, out, outlen);
	close_session(p, s);
	if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED)
		return exai__err(-EACCES, "PKCS#11: KEK %s version %u is disabled on the token", key_id, version);
	if (!encrypt && (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_FUNCTION_FAILED))
		return exai__err(-EBADMSG, "PKCS#11: wrapped DEK does not authenticate under KEK %s version %u", key_id, version);
	if (rv != CKR_OK)
		return p11_err(-EIO, rv, encrypt ? "C_Encrypt (AES-GCM)" : "C_Decrypt (AES-GCM)");
	return 0;
}

static int p11_wrap(void *data, const char *key_id, uint32_t version, const uint8_t dek[32], uint8_t *out,
		    size_t *outlen)
{
	struct p11 *p = data;
	uint8_t iv[IV_LEN];
	randombytes_buf(iv, IV_LEN);
	CK_ULONG n = 48;
	int r = crypt_op(p, key_id, version, true, iv, dek, 32, out + IV_LEN, &n);
	if (r < 0)
		return r;
	if (n != 48)
		return exai__err(-EIO, "PKCS#11: AES-GCM gave %lu bytes for a 32-byte key (want 48)", (unsigned long)n);
	/* Some HSMs choose the IV themselves and write it back into the parameters. */
	memcpy(out, iv, IV_LEN);
	*outlen = WRAPPED_LEN;
	return 0;
}

static int p11_unwrap(void *data, const char *key_id, uint32_t version, const uint8_t *in, size_t inlen,
		      uint8_t dek[32])
{
	struct p11 *p = data;
	if (inlen != WRAPPED_LEN)
		return exai__err(-EBADMSG, "wrapped DEK of %zu bytes (want %u)", inlen, WRAPPED_LEN);
	uint8_t iv[IV_LEN];
	memcpy(iv, in, IV_LEN);
	/* Decrypt into locked memory with room for a module that writes more than it should. */
	uint8_t *buf = exai_secure_alloc(64);
	if (!buf)
		return exai__err(-ENOMEM, "out of locked memory");
	CK_ULONG n = 64;
	int r = crypt_op(p, key_id, version, false, iv, in + IV_LEN, inlen - IV_LEN, buf, &n);
	if (r == 0 && n != 32)
		r = exai__err(-EBADMSG, "PKCS#11: unwrapped DEK of %lu bytes (want 32)", (unsigned long)n);
	if (r == 0)
		memcpy(dek, buf, 32);
	exai_secure_free(buf);
	return r;
}

static int get_bool(struct p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, bool *ret)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { t, &v, sizeof(v) };
	CK_RV rv = p->m->f->C_GetAttributeValue(s, h, &a, 1);
	if (rv != CKR_OK)
		return p11_err(-EIO, rv, "C_GetAttributeValue");
	*ret = v == CK_TRUE;
	return 0;
}

static int p11_describe(void *data, const char *key_id, struct exai_kms_key_info *info)
{
	struct p11 *p = data;
	CK_SESSION_HANDLE s;
	uint32_t v = 0;
	int r = open_latest(p, key_id, &s, &v);
	if (r < 0)
		return r;
	info->latest_version = v;
	info->enabled = false;
	if (v) {
		CK_OBJECT_HANDLE h;
		bool dec = false;
		r = find_key(p, s, key_id, v, &h);
		if (r == 0 && h != CK_INVALID_HANDLE && get_bool(p, s, h, CKA_DECRYPT, &dec) == 0)
			info->enabled = dec;
	}
	close_session(p, s);
	return r;
}

static int p11_disable(void *data, const char *key_id)
{
	struct p11 *p = data;
	CK_SESSION_HANDLE s;
	uint32_t v = 0;
	int r = open_latest(p, key_id, &s, &v);
	if (r < 0)
		return r;
	for (uint32_t i = 1; r == 0 && i <= v; i++) {
		CK_OBJECT_HANDLE h;
		r = find_key(p, s, key_id, i, &h);
		if (r < 0 || h == CK_INVALID_HANDLE)
			continue;
		CK_BBOOL no = CK_FALSE;
		CK_ATTRIBUTE a[] = { { CKA_ENCRYPT, &no, sizeof(no) }, { CKA_DECRYPT, &no, sizeof(no) } };
		CK_RV rv = p->m->f->C_SetAttributeValue(s, h, a, 2);
		if (rv != CKR_OK) {
			/* A token that will not change usage flags: destroy the key instead. */
			rv = p->m->f->C_DestroyObject(s, h);
			if (rv != CKR_OK)
				r = p11_err(-EIO, rv, "disabling the KEK (C_SetAttributeValue, C_DestroyObject)");
		}
	}
	close_session(p, s);
	return r;
}

static int p11_destroy_version(void *data, const char *key_id, uint32_t version)
{
	struct p11 *p = data;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	int r = open_key(p, key_id, version, &s, &h);
	if (r < 0)
		return r;
	CK_RV rv = p->m->f->C_DestroyObject(s, h);
	if (rv != CKR_OK)
		r = p11_err(-EIO, rv, "C_DestroyObject");
	close_session(p, s);
	return r;
}

static void p11_free(void *data)
{
	struct p11 *p = data;
	if (!p)
		return;
	/* No C_Logout: the login belongs to the whole application, and other providers (other
	 * keyrings) may use the same token. Closing the last session logs out by itself. */
	if (p->m && p->login_session != CK_INVALID_HANDLE)
		p->m->f->C_CloseSession(p->login_session);
	module_put(p->m);
	free(p);
}

/* The PIN, from the file (first line) or the environment, in locked memory. */
static int read_pin(const struct exai_kms_pkcs11_opts *o, char **ret, size_t *retlen)
{
	if (o->pin_file) {
		int r = exai__read_secret_file(o->pin_file, 256, true, ret, retlen);
		if (r < 0)
			return exai__err_prefix(r, "PKCS#11 PIN file");
		char *nl = strpbrk(*ret, "\r\n");
		if (nl)
			*nl = '\0';
		*retlen = strlen(*ret);
		return 0;
	}
	const char *var = o->pin_env ? o->pin_env : "EXAI_PKCS11_PIN";
	const char *v = getenv(var);
	if (!v || !*v)
		return exai__err(-EACCES, "PKCS#11: no PIN: give a PIN file, or set %s", var);
	size_t n = strlen(v);
	*ret = exai_secure_alloc(n + 1);
	if (!*ret)
		return exai__err(-ENOMEM, "out of locked memory");
	memcpy(*ret, v, n + 1);
	*retlen = n;
	return 0;
}

static int find_slot(struct p11 *p, const char *label)
{
	CK_ULONG n = 0;
	CK_RV rv = p->m->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK)
		return p11_err(-EIO, rv, "C_GetSlotList");
	CK_SLOT_ID *slots = calloc(n ? n : 1, sizeof(*slots));
	if (!slots)
		return exai__err(-ENOMEM, "out of memory");
	rv = p->m->f->C_GetSlotList(CK_TRUE, slots, &n);
	int r = rv == CKR_OK ? -ENOENT : p11_err(-EIO, rv, "C_GetSlotList");
	for (CK_ULONG i = 0; r == -ENOENT && i < n; i++) {
		CK_TOKEN_INFO ti;
		if (p->m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		size_t l = sizeof(ti.label);
		while (l && ti.label[l - 1] == ' ')
			l--;
		if (l == strlen(label) && memcmp(ti.label, label, l) == 0) {
			p->slot = slots[i];
			r = 0;
		}
	}
	free(slots);
	if (r == -ENOENT)
		return exai__err(-ENOENT, "PKCS#11: no token labelled \"%s\" (of %lu present)", label, (unsigned long)n);
	return r;
}

EXAI_API int exai_kms_pkcs11_provider(struct exai_kms_provider *ret, exai_ctx *ctx,
				      const struct exai_kms_pkcs11_opts *opts)
{
	int r = EXAI__OPTS_CHECK(opts, exai_kms_pkcs11_opts);
	if (r < 0)
		return r;
	if (!ret || !ctx || !opts || !opts->module || !opts->token_label)
		return exai__err(-EINVAL, "PKCS#11 provider: the module path and the token label are required");
	if (strlen(opts->token_label) > 32)
		return exai__err(-EINVAL, "PKCS#11 provider: token label longer than 32 bytes");
	struct p11 *p = calloc(1, sizeof(*p));
	if (!p)
		return exai__err(-ENOMEM, "out of memory");
	p->login_session = CK_INVALID_HANDLE;
	snprintf(p->label, sizeof(p->label), "%s", opts->token_label);
	char *pin = NULL;
	size_t pinlen = 0;
	r = module_get(&p->m, opts->module);
	if (r == 0)
		r = find_slot(p, opts->token_label);
	if (r == 0)
		r = read_pin(opts, &pin, &pinlen);
	if (r == 0)
		r = open_session(p, &p->login_session);
	if (r == 0) {
		CK_RV rv = p->m->f->C_Login(p->login_session, CKU_USER, (CK_UTF8CHAR_PTR)pin, pinlen);
		if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE)
			r = exai__err(-EACCES, "PKCS#11: wrong PIN for token \"%s\"", opts->token_label);
		else if (rv == CKR_PIN_LOCKED)
			r = exai__err(-EACCES, "PKCS#11: the PIN of token \"%s\" is locked", opts->token_label);
		else if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
			r = p11_err(-EIO, rv, "C_Login");
	}
	exai_secure_free(pin);
	if (r < 0) {
		p11_free(p);
		return r;
	}
	*ret = (struct exai_kms_provider){
		.sz = sizeof(*ret),
		.name = "pkcs11",
		.data = p,
		.create_key = p11_create_key,
		.wrap = p11_wrap,
		.unwrap = p11_unwrap,
		.describe = p11_describe,
		.disable = p11_disable,
		.destroy_version = p11_destroy_version,
		.free = p11_free,
	};
	(void)ctx;
	return 0;
}
#endif
