/* SPDX-License-Identifier: Apache-2.0 */
/* vault.c: sealing a pseudonymisation vault as an envelope message under the tenant's key
 * (the keys module's AWS Encryption SDK v2 messages), and opening it again. */
#include <stdlib.h>
#include <string.h>

#include "keys/keys-internal.h"
#include "scrub-internal.h"

#define VAULT_NAMESPACE "exai-scrub"

static int check_names(const char *key_name, const char *tenant, const char *request_id)
{
	if (!key_name || !*key_name)
		return exai__err(-EINVAL, "scrub vault: the key name is missing");
	if (!tenant || !*tenant)
		return exai__err(-EINVAL, "scrub vault: the tenant is missing");
	if (request_id && !*request_id)
		return exai__err(-EINVAL, "scrub vault: the request id is empty");
	return 0;
}

static int to_buf(void *ud, const void *data, size_t len)
{
	return exai__buf_append(ud, data, len);
}

int exai_scrub_vault_seal(uint8_t **ret, size_t *retlen, const uint8_t *vault, size_t vault_len,
			  const uint8_t key[32], const char *key_name, const char *tenant, const char *request_id)
{
	if (!ret || !retlen || !key)
		return exai__err(-EINVAL, "exai_scrub_vault_seal: NULL argument");
	int r = check_names(key_name, tenant, request_id);
	if (r < 0)
		return r;
	if (!request_id)
		return exai__err(-EINVAL, "scrub vault: the request id is missing");
	struct exai__vault v;
	if ((r = exai__vault_parse(&v, vault, vault_len)) < 0) /* only a valid vault is sealed */
		return r;
	exai__vault_free(&v);
	struct exai__buf out = { 0 };
	const char *context[] = { "tenant", tenant, "purpose", "scrub-vault", "object", request_id, NULL };
	EXAI_OPTS(exai_envelope_opts, eo, .write = to_buf, .write_data = &out, .context = context);
	exai_envelope *env = NULL;
	r = exai_envelope_encrypt_raw(&env, key, VAULT_NAMESPACE, key_name, &eo);
	if (r == 0)
		r = exai_envelope_update(env, vault, vault_len);
	if (r == 0)
		r = exai_envelope_final(env);
	exai_envelope_free(env);
	if (r < 0) {
		exai__buf_free(&out);
		return r;
	}
	*ret = (uint8_t *)exai__buf_steal(&out, retlen);
	return *ret ? 0 : -ENOMEM;
}

struct secure_out {
	uint8_t *p;
	size_t len, cap;
};

static int to_secure(void *ud, const void *data, size_t len)
{
	struct secure_out *o = ud;
	if (len > o->cap - o->len)
		return -EBADMSG; /* the plaintext is never longer than the message */
	memcpy(o->p + o->len, data, len);
	o->len += len;
	return 0;
}

int exai_scrub_vault_open(uint8_t **ret, size_t *retlen, const uint8_t *msg, size_t len, const uint8_t key[32],
			  const char *key_name, const char *tenant, const char *request_id)
{
	if (!ret || !retlen || !key || (!msg && len))
		return exai__err(-EINVAL, "exai_scrub_vault_open: NULL argument");
	int r = check_names(key_name, tenant, request_id);
	if (r < 0)
		return r;
	struct secure_out o = { .cap = len };
	if (!(o.p = exai_secure_alloc(len ? len : 1)))
		return -ENOMEM;
	/* without a request id, any object of this tenant and purpose is accepted */
	const char *context[] = { "tenant", tenant, "purpose", "scrub-vault", request_id ? "object" : NULL, request_id, NULL };
	EXAI_OPTS(exai_envelope_opts, eo, .write = to_secure, .write_data = &o, .context = context);
	exai_envelope *env = NULL;
	r = exai_envelope_decrypt_raw(&env, key, VAULT_NAMESPACE, key_name, &eo);
	if (r == 0)
		r = exai_envelope_update(env, msg, len);
	if (r == 0)
		r = exai_envelope_final(env);
	exai_envelope_free(env);
	struct exai__vault v;
	if (r == 0 && (r = exai__vault_parse(&v, o.p, o.len)) == 0)
		exai__vault_free(&v);
	if (r < 0) {
		exai_secure_free(o.p);
		return r;
	}
	*ret = o.p;
	*retlen = o.len;
	return 0;
}
