/* SPDX-License-Identifier: Apache-2.0 */
/* redact.c: replacement text per mode, the pseudonymisation vault (docs/formats/
 * scrub-vault.md), restoring placeholders in model output (whole or streamed), and the audit
 * event of a request. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "scrub-internal.h"

#define LQ "\xe2\x80\xb9" /* ‹ */
#define RQ "\xe2\x80\xba" /* › */
#define VAULT_MAGIC "EXSV"
#define VAULT_VERSION 1
#define PH_MAX 47

static size_t class_upper(char *out, size_t cap, const char *cls)
{
	size_t n = 0;
	for (; *cls && n + 1 < cap; cls++)
		out[n++] = (*cls == '.' || *cls == '-') ? '_' : (char)toupper((unsigned char)*cls);
	out[n] = 0;
	return n;
}

/* ---- vault ------------------------------------------------------------------------------ */

void exai__vault_free(struct exai__vault *v)
{
	for (size_t i = 0; i < v->n; i++)
		exai_secure_free(v->v[i].value);
	free(v->v);
	memset(v, 0, sizeof(*v));
}

static int vault_add(struct exai__vault *v, const char *ph, size_t phl, const char *val, size_t n)
{
	if (phl > PH_MAX)
		return -EINVAL;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		struct exai__vault_entry *e = realloc(v->v, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		v->v = e;
		v->cap = cap;
	}
	struct exai__vault_entry *e = &v->v[v->n];
	memset(e, 0, sizeof(*e));
	e->value = exai_secure_alloc(n ? n : 1);
	if (!e->value)
		return -ENOMEM;
	memcpy(e->value, val, n);
	e->value_len = n;
	memcpy(e->ph, ph, phl);
	e->ph_len = phl;
	v->n++;
	return 0;
}

int exai__vault_serialize(const struct exai__vault *v, uint8_t **ret, size_t *retlen)
{
	size_t len = 4 + 1 + 4;
	for (size_t i = 0; i < v->n; i++)
		len += 1 + v->v[i].ph_len + 4 + v->v[i].value_len;
	uint8_t *p = exai_secure_alloc(len), *o = p;
	if (!p)
		return -ENOMEM;
	memcpy(o, VAULT_MAGIC, 4);
	o += 4;
	*o++ = VAULT_VERSION;
	uint32_t n = (uint32_t)v->n;
	for (int k = 3; k >= 0; k--)
		*o++ = (uint8_t)(n >> (8 * k));
	for (size_t i = 0; i < v->n; i++) {
		*o++ = (uint8_t)v->v[i].ph_len;
		memcpy(o, v->v[i].ph, v->v[i].ph_len);
		o += v->v[i].ph_len;
		uint32_t vl = (uint32_t)v->v[i].value_len;
		for (int k = 3; k >= 0; k--)
			*o++ = (uint8_t)(vl >> (8 * k));
		memcpy(o, v->v[i].value, v->v[i].value_len);
		o += v->v[i].value_len;
	}
	*ret = p;
	*retlen = len;
	return 0;
}

int exai__vault_parse(struct exai__vault *v, const uint8_t *p, size_t n)
{
	memset(v, 0, sizeof(*v));
	if (!p || n < 9 || memcmp(p, VAULT_MAGIC, 4) != 0)
		return exai__err(-EBADMSG, "scrub vault: not a vault (bad magic)");
	if (p[4] != VAULT_VERSION)
		return exai__err(-EBADMSG, "scrub vault: version %u is not supported", p[4]);
	uint32_t count = (uint32_t)p[5] << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8];
	size_t off = 9;
	for (uint32_t i = 0; i < count; i++) {
		if (off + 1 > n || p[off] == 0 || p[off] > PH_MAX || off + 1 + p[off] + 4 > n)
			goto bad;
		size_t phl = p[off];
		const char *ph = (const char *)p + off + 1;
		for (size_t k = 0; k < phl; k++)
			if (!isalnum((unsigned char)ph[k]) && ph[k] != '_')
				goto bad;
		off += 1 + phl;
		uint32_t vl = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 | (uint32_t)p[off + 2] << 8 | p[off + 3];
		off += 4;
		if (vl > n - off)
			goto bad;
		int r = vault_add(v, ph, phl, (const char *)p + off, vl);
		if (r < 0) {
			exai__vault_free(v);
			return r;
		}
		off += vl;
	}
	if (off != n)
		goto bad;
	return 0;
bad:
	exai__vault_free(v);
	return exai__err(-EBADMSG, "scrub vault: truncated or malformed entry");
}

/* ---- redaction -------------------------------------------------------------------------- */

int exai__redact_one(exai_scrubber *s, struct exai__vault *vault, struct exai__buf *out, int mode, int pat,
		     const char *value, size_t n)
{
	const struct exai__pattern *p = pat >= 0 ? &s->set.pats[pat] : NULL;
	char cls[80];
	class_upper(cls, sizeof(cls), p ? p->cls : "secret");
	if (p && p->mode)
		mode = p->mode;
	switch (mode) {
	case EXAI_SCRUB_PLACEHOLDER:
		return exai__buf_printf(out, LQ "%s" RQ, cls);
	case EXAI_SCRUB_HASH: {
		if (!s->have_hash_key)
			return exai__err(-EINVAL, "scrub: hash mode needs the tenant's key (exai_scrubber_opts.hash_key)");
		uint8_t mac[32];
		crypto_auth_hmacsha256_state st;
		crypto_auth_hmacsha256_init(&st, s->hash_key, s->hash_key_len);
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)(p ? p->cls : "secret"), strlen(p ? p->cls : "secret") + 1);
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)value, n);
		crypto_auth_hmacsha256_final(&st, mac);
		return exai__buf_printf(out, LQ "%s:%02x%02x%02x%02x%02x%02x%02x%02x" RQ, cls, mac[0], mac[1], mac[2],
					mac[3], mac[4], mac[5], mac[6], mac[7]);
	}
	case EXAI_SCRUB_PSEUDO: {
		/* the same value within a request keeps its placeholder */
		size_t cl = strlen(cls);
		if (cl > PH_MAX - 9)
			cl = PH_MAX - 9;
		for (size_t i = 0; i < vault->n; i++)
			if (vault->v[i].value_len == n && memcmp(vault->v[i].value, value, n) == 0 &&
			    vault->v[i].ph_len == cl + 9 && memcmp(vault->v[i].ph, cls, cl) == 0)
				return exai__buf_printf(out, LQ "%.*s" RQ, (int)vault->v[i].ph_len, vault->v[i].ph);
		char ph[PH_MAX + 1];
		for (;;) {
			uint32_t rnd = randombytes_random();
			snprintf(ph, sizeof(ph), "%.*s_%08x", (int)cl, cls, rnd);
			bool clash = false;
			for (size_t i = 0; i < vault->n && !clash; i++)
				clash = vault->v[i].ph_len == cl + 9 && strncasecmp(vault->v[i].ph, ph, cl + 9) == 0;
			if (!clash)
				break;
		}
		int r = vault_add(vault, ph, cl + 9, value, n);
		if (r < 0)
			return r;
		return exai__buf_printf(out, LQ "%s" RQ, ph);
	}
	default: {
		const char *pre = p ? p->prefix : "";
		size_t pl = strlen(pre);
		if (pl > n / 2) /* never give away half of a short value */
			pl = 0;
		return exai__buf_printf(out, LQ "%s:%.*s****" RQ, cls, (int)pl, value);
	}
	}
}

/* ---- restore ---------------------------------------------------------------------------- */

struct exai_scrub_restorer {
	struct exai__vault vault;
	struct exai__buf pending;
	bool done;
};

static bool idc(unsigned char c)
{
	return isalnum(c) || c == '_';
}

static const struct exai__vault_entry *vault_find(const struct exai__vault *v, const char *s, size_t n)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i].ph_len == n && strncasecmp(v->v[i].ph, s, n) == 0)
			return &v->v[i];
	return NULL;
}

/* Restores [0, len) of @t into @out. */
static int restore_into(const struct exai__vault *v, struct exai__buf *out, const char *t, size_t len)
{
	size_t i = 0, copied = 0;
	int r = 0;
	while (i < len && r == 0) {
		if (!idc((unsigned char)t[i]) || (i > 0 && idc((unsigned char)t[i - 1]))) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && idc((unsigned char)t[j]))
			j++;
		const struct exai__vault_entry *e = j - i <= PH_MAX ? vault_find(v, t + i, j - i) : NULL;
		if (e) {
			size_t a = i, b = j;
			if (a >= 3 && memcmp(t + a - 3, LQ, 3) == 0)
				a -= 3;
			else if (a >= 1 && t[a - 1] == '<')
				a -= 1;
			if (a < copied)
				a = i;
			if (b + 3 <= len && memcmp(t + b, RQ, 3) == 0)
				b += 3;
			else if (b < len && t[b] == '>')
				b += 1;
			r = exai__buf_append(out, t + copied, a - copied);
			if (r == 0)
				r = exai__buf_append(out, e->value, e->value_len);
			copied = b;
		}
		i = j;
	}
	if (r == 0)
		r = exai__buf_append(out, t + copied, len - copied);
	return r;
}

static int finish_buf(struct exai__buf *b, char **ret, size_t *retlen, int r)
{
	if (r < 0) {
		if (b->data)
			exai_memzero(b->data, b->len);
		exai__buf_free(b);
		return r;
	}
	char *p = exai__buf_steal(b, retlen);
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int exai_scrub_restore(char **ret, size_t *retlen, const uint8_t *vault, size_t vault_len, const char *text,
		       size_t len)
{
	struct exai__vault v;
	if (!ret || (!text && len))
		return exai__err(-EINVAL, "exai_scrub_restore: ret or text is NULL");
	int r = exai__vault_parse(&v, vault, vault_len);
	if (r < 0)
		return r;
	struct exai__buf b = { 0 };
	r = exai__buf_reserve(&b, len + 1);
	if (r == 0)
		r = restore_into(&v, &b, text ? text : "", len);
	exai__vault_free(&v);
	return finish_buf(&b, ret, retlen, r);
}

int exai_scrub_restorer_new(exai_scrub_restorer **ret, const uint8_t *vault, size_t vault_len)
{
	exai_scrub_restorer *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	int r = exai__vault_parse(&rs->vault, vault, vault_len);
	if (r < 0) {
		free(rs);
		return r;
	}
	*ret = rs;
	return 0;
}

/* Where the undecided tail of @t starts: an identifier run that touches the end (or is
 * followed only by a partial closer), with its opener. */
static size_t restore_cut(const char *t, size_t len)
{
	size_t end = len;
	/* a partial closer "\xe2" or "\xe2\x80" at the very end */
	if (end >= 1 && (unsigned char)t[end - 1] == 0xe2)
		end -= 1;
	else if (end >= 2 && (unsigned char)t[end - 2] == 0xe2 && (unsigned char)t[end - 1] == 0x80)
		end -= 2;
	size_t i = end;
	while (i > 0 && idc((unsigned char)t[i - 1]) && end - i <= PH_MAX)
		i--;
	if (end - i > PH_MAX)
		return end == len ? len : end; /* too long to be a placeholder */
	if (i == end && end == len) {
		/* no run at the end: hold a partial or complete opener */
		if (len >= 1 && ((unsigned char)t[len - 1] == 0xe2 || t[len - 1] == '<'))
			return len - 1;
		if (len >= 2 && (unsigned char)t[len - 2] == 0xe2 && (unsigned char)t[len - 1] == 0x80)
			return len - 2;
		if (len >= 3 && memcmp(t + len - 3, LQ, 3) == 0)
			return len - 3;
		return len;
	}
	if (i >= 3 && memcmp(t + i - 3, LQ, 3) == 0)
		return i - 3;
	if (i >= 1 && t[i - 1] == '<')
		return i - 1;
	return i;
}

int exai_scrub_restorer_feed(exai_scrub_restorer *rs, char **ret, size_t *retlen, const char *chunk, size_t len)
{
	if (!rs || rs->done)
		return exai__err(-EINVAL, "exai_scrub_restorer_feed: the restorer is finished");
	int r = exai__buf_append(&rs->pending, chunk, len);
	if (r < 0)
		return r;
	size_t cut = restore_cut(rs->pending.data, rs->pending.len);
	struct exai__buf out = { 0 };
	r = exai__buf_reserve(&out, cut + 1);
	if (r == 0)
		r = restore_into(&rs->vault, &out, rs->pending.data, cut);
	if (r == 0) {
		memmove(rs->pending.data, rs->pending.data + cut, rs->pending.len - cut);
		rs->pending.len -= cut;
		rs->pending.data[rs->pending.len] = 0;
	}
	return finish_buf(&out, ret, retlen, r);
}

int exai_scrub_restorer_finish(exai_scrub_restorer *rs, char **ret, size_t *retlen)
{
	if (!rs || rs->done)
		return exai__err(-EINVAL, "exai_scrub_restorer_finish: the restorer is finished");
	struct exai__buf out = { 0 };
	int r = exai__buf_reserve(&out, rs->pending.len + 1);
	if (r == 0)
		r = restore_into(&rs->vault, &out, rs->pending.data ? rs->pending.data : "", rs->pending.len);
	rs->done = true;
	return finish_buf(&out, ret, retlen, r);
}

void exai_scrub_restorer_free(exai_scrub_restorer *rs)
{
	if (!rs)
		return;
	exai__vault_free(&rs->vault);
	if (rs->pending.data)
		exai_memzero(rs->pending.data, rs->pending.len);
	exai__buf_free(&rs->pending);
	free(rs);
}

/* ---- audit ------------------------------------------------------------------------------ */

void exai__audit_acc_free(struct exai__audit_acc *a)
{
	json_decref(a->counts);
	json_decref(a->digests);
	memset(a, 0, sizeof(*a));
}

int exai__audit_add(exai_scrubber *s, struct exai__audit_acc *a, const char *cls, const char *value, size_t n)
{
	if (!s->ctx)
		return 0;
	if (!a->counts && !(a->counts = json_object()))
		return -ENOMEM;
	if (!a->digests && !(a->digests = json_array()))
		return -ENOMEM;
	json_t *cnt = json_object_get(a->counts, cls);
	if (json_object_set_new(a->counts, cls, json_integer(cnt ? json_integer_value(cnt) + 1 : 1)) < 0)
		return -ENOMEM;
	uint8_t d[16];
	crypto_generichash_state st;
	crypto_generichash_init(&st, s->digest_key, sizeof(s->digest_key), sizeof(d));
	crypto_generichash_update(&st, (const uint8_t *)cls, strlen(cls) + 1);
	crypto_generichash_update(&st, (const uint8_t *)value, n);
	crypto_generichash_final(&st, d, sizeof(d));
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
	if (json_array_append_new(a->digests, json_pack("{s:s, s:s}", "class", cls, "digest", hex)) < 0)
		return -ENOMEM;
	a->n++;
	return 0;
}

int exai__audit_emit(exai_scrubber *s, struct exai__audit_acc *a, size_t len)
{
	if (!s->ctx)
		return 0;
	json_t *ev = json_pack("{s:i, s:i, s:s, s:s, s:I, s:I, s:o, s:o, s:s}", "class_uid", 6003, /* OCSF API Activity */
			       "activity_id", 99, "type", "scrub.request", "origin", "scrub", "bytes", (json_int_t)len,
			       "findings", (json_int_t)a->n, "counts", a->counts ? json_incref(a->counts) : json_object(),
			       "digests", a->digests ? json_incref(a->digests) : json_array(), "digest_alg",
			       "blake2b-128-keyed");
	if (!ev)
		return -ENOMEM;
	if (s->tenant)
		json_object_set_new(ev, "tenant", json_string(s->tenant));
	int r = exai__ctx_emit(s->ctx, ev);
	json_decref(ev);
	return r;
}
