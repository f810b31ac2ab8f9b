/* SPDX-License-Identifier: Apache-2.0 */
/* envelope.c: messages in the AWS Encryption SDK message format, version 2, algorithm suite
 * 0x0478 (AES-256-GCM, HKDF-SHA512, key commitment), framed; data keys wrapped as the SDK's
 * raw AES keyring does. Streaming in both directions (docs/formats/envelope.md). */
#include <string.h>

#include <sodium.h>

#include "keys-internal.h"

#define SUITE_ID 0x0478u
#define MSGID_LEN 32u
#define IV_LEN 12u
#define TAG_LEN 16u
#define COMMIT_LEN 32u
#define DK_LEN 32u
#define EDK_CT_LEN (DK_LEN + TAG_LEN)
#define RAW_INFO_TAIL (4u + 4u + IV_LEN) /* tag bits, IV length, IV after the key name */
#define CONTENT_FRAMED 0x02
#define FINAL_SEQ 0xFFFFFFFFu
#define REGULAR_OVERHEAD (4u + IV_LEN + TAG_LEN)
#define FINAL_PREFIX (4u + 4u + IV_LEN + 4u)
#define DEFAULT_FRAME (64u * 1024u)
#define MAX_FRAME (16u << 20)
#define MAX_EDKS 64u
#define MAX_HEADER (1u << 20)

static const char AAD_FRAME[] = "AWSKMSEncryptionClient Frame";
static const char AAD_FINAL[] = "AWSKMSEncryptionClient Final Frame";

enum state { ST_HEADER, ST_BODY, ST_DONE, ST_FAILED };

struct exai_envelope {
	bool encrypt;
	enum state state;
	exai_envelope_write_fn write;
	void *write_data;
	uint32_t frame_len;
	uint32_t max_frame;
	uint32_t seq; /* sequence number of the next frame */
	uint8_t msgid[MSGID_LEN];
	struct exai__gcm gcm; /* keyed with the derived data key */
	json_t *context;      /* the message's encryption context */
	/* encrypt: the header, until written; decrypt: the bytes of the unit being gathered */
	struct exai__buf hold;
	bool header_written;
	uint8_t *pt;      /* up to one frame of plaintext, locked memory, grown on demand */
	size_t pt_len, pt_cap;
	uint8_t *ct;      /* one frame of ciphertext as serialized */
	/* decrypt: expected pairs, and how wrapping keys are found */
	json_t *expect;
	exai__unwrap_lookup_fn lookup;
	void *lookup_data;
	void (*lookup_free)(void *data);
	char *wrap_name; /* key name of the data key that opened the message */
};

/* ---- encryption context ----------------------------------------------------------------- */

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Serializes @ctx (sorted by key bytes) as the SDK does: count, then (len, key, len, value).
 * An empty context serializes to nothing. */
static int ctx_serialize(struct exai__buf *out, json_t *ctx)
{
	size_t n = json_object_size(ctx);
	if (n == 0)
		return 0;
	if (n > 0xFFFF)
		return exai__err(-EINVAL, "encryption context: more than 65535 pairs");
	const char **keys = malloc(n * sizeof(*keys));
	if (!keys)
		return exai__err(-ENOMEM, "out of memory");
	const char *k;
	json_t *v;
	size_t i = 0;
	json_object_foreach(ctx, k, v) keys[i++] = k;
	qsort(keys, n, sizeof(*keys), cmp_keys);
	uint8_t b2[2];
	exai__be16(b2, (uint16_t)n);
	int r = exai__buf_append(out, b2, 2);
	for (i = 0; i < n && r == 0; i++) {
		const char *val = json_string_value(json_object_get(ctx, keys[i]));
		size_t kl = strlen(keys[i]), vl = json_string_length(json_object_get(ctx, keys[i]));
		if (kl > 0xFFFF || vl > 0xFFFF) {
			r = exai__err(-EINVAL, "encryption context: key or value \"%.40s\" longer than 65535 bytes", keys[i]);
			break;
		}
		exai__be16(b2, (uint16_t)kl);
		r = exai__buf_append(out, b2, 2);
		if (r == 0)
			r = exai__buf_append(out, keys[i], kl);
		exai__be16(b2, (uint16_t)vl);
		if (r == 0)
			r = exai__buf_append(out, b2, 2);
		if (r == 0)
			r = exai__buf_append(out, val, vl);
	}
	free(keys);
	if (r == -ENOMEM)
		return exai__err(-ENOMEM, "out of memory");
	if (r == 0 && out->len > 0xFFFF)
		return exai__err(-EINVAL, "encryption context: serialized form longer than 65535 bytes");
	return r;
}

/* Adds NULL-terminated (key, value) pairs to @ctx, refusing duplicates and reserved keys. */
int exai__ctx_add_pairs(json_t *ctx, const char *const *pairs)
{
	for (size_t i = 0; pairs && pairs[i]; i += 2) {
		if (!pairs[i + 1])
			return exai__err(-EINVAL, "encryption context: key \"%.40s\" has no value", pairs[i]);
		if (strncmp(pairs[i], "aws-crypto-", 11) == 0)
			return exai__err(-EINVAL, "encryption context: key \"%.40s\" is reserved by the SDK", pairs[i]);
		if (json_object_get(ctx, pairs[i]))
			return exai__err(-EINVAL, "encryption context: key \"%.40s\" given twice", pairs[i]);
		if (!exai__utf8_valid(pairs[i], strlen(pairs[i])) || !exai__utf8_valid(pairs[i + 1], strlen(pairs[i + 1])))
			return exai__err(-EINVAL, "encryption context: key or value of \"%.40s\" is not valid UTF-8", pairs[i]);
		if (json_object_set_new(ctx, pairs[i], json_string(pairs[i + 1])) < 0)
			return exai__err(-ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- key derivation --------------------------------------------------------------------- */

/* The derived data key and the commit key of suite 0x0478 (HKDF-SHA512, salt = message id). */
static int derive(uint8_t enc[DK_LEN], uint8_t commit[COMMIT_LEN], const uint8_t *dk, const uint8_t msgid[MSGID_LEN])
{
	static const uint8_t info_enc[] = { 0x04, 0x78, 'D', 'E', 'R', 'I', 'V', 'E', 'K', 'E', 'Y' };
	static const uint8_t info_commit[] = { 'C', 'O', 'M', 'M', 'I', 'T', 'K', 'E', 'Y' };
	int r = exai__hkdf("SHA512", msgid, MSGID_LEN, dk, DK_LEN, info_enc, sizeof(info_enc), enc, DK_LEN);
	if (r == 0)
		r = exai__hkdf("SHA512", msgid, MSGID_LEN, dk, DK_LEN, info_commit, sizeof(info_commit), commit, COMMIT_LEN);
	return r;
}

static void frame_iv(uint8_t iv[IV_LEN], uint32_t seq)
{
	memset(iv, 0, IV_LEN - 4);
	exai__be32(iv + IV_LEN - 4, seq);
}

static size_t body_aad(uint8_t *aad, const uint8_t msgid[MSGID_LEN], bool final, uint32_t seq, uint64_t len)
{
	const char *s = final ? AAD_FINAL : AAD_FRAME;
	size_t sl = strlen(s);
	memcpy(aad, msgid, MSGID_LEN);
	memcpy(aad + MSGID_LEN, s, sl);
	exai__be32(aad + MSGID_LEN + sl, seq);
	exai__be64(aad + MSGID_LEN + sl + 4, len);
	return MSGID_LEN + sl + 12;
}
#define BODY_AAD_MAX (MSGID_LEN + sizeof(AAD_FINAL) + 12)

/* ---- common ----------------------------------------------------------------------------- */

static int envelope_alloc(exai_envelope **ret, const struct exai_envelope_opts *opts, bool encrypt)
{
	int r = EXAI__OPTS_CHECK(opts, exai_envelope_opts);
	if (r < 0)
		return r;
	if (!ret || !opts || !opts->write)
		return exai__err(-EINVAL, "envelope: opts->write (the output callback) is required");
	uint32_t frame = EXAI__OPT(opts, frame_length, DEFAULT_FRAME);
	uint32_t maxf = EXAI__OPT(opts, max_frame_length, MAX_FRAME);
	if (frame > MAX_FRAME)
		return exai__err(-EINVAL, "envelope: frame_length %u is larger than %u", frame, MAX_FRAME);
	if (maxf > MAX_FRAME)
		return exai__err(-EINVAL, "envelope: max_frame_length %u is larger than %u", maxf, MAX_FRAME);
	exai_envelope *e = calloc(1, sizeof(*e));
	if (!e)
		return exai__err(-ENOMEM, "out of memory");
	e->encrypt = encrypt;
	e->write = opts->write;
	e->write_data = opts->write_data;
	e->frame_len = frame;
	e->max_frame = maxf;
	e->seq = 1;
	e->context = json_object();
	if (!e->context) {
		free(e);
		return exai__err(-ENOMEM, "out of memory");
	}
	*ret = e;
	return 0;
}

EXAI_API void exai_envelope_free(exai_envelope *e)
{
	if (!e)
		return;
	exai__gcm_done(&e->gcm);
	json_decref(e->context);
	json_decref(e->expect);
	exai__buf_free(&e->hold);
	exai_secure_free(e->pt);
	free(e->ct);
	free(e->wrap_name);
	if (e->lookup_free)
		e->lookup_free(e->lookup_data);
	free(e);
}

static int fail(exai_envelope *e, int r)
{
	e->state = ST_FAILED;
	if (e->pt)
		exai_memzero(e->pt, e->pt_cap);
	return r;
}

static int buffers_alloc(exai_envelope *e)
{
	e->ct = malloc((size_t)e->frame_len + FINAL_PREFIX + TAG_LEN);
	if (!e->ct)
		return exai__err(-ENOMEM, "out of memory for a frame of %u bytes", e->frame_len);
	return 0;
}

/* Makes room for @need bytes of plaintext (at most a frame). Locked allocations are costly
 * (system calls), so the buffer starts small and doubles: a small message never pays for a
 * whole frame, a long stream reaches the frame size after a few steps. */
static int pt_reserve(exai_envelope *e, size_t need)
{
	if (need <= e->pt_cap)
		return 0;
	size_t cap = e->pt_cap ? 2 * e->pt_cap : 4096;
	if (cap < need)
		cap = need;
	if (cap > e->frame_len)
		cap = e->frame_len > need ? e->frame_len : need;
	uint8_t *p = exai_secure_alloc(cap);
	if (!p)
		return exai__err(-ENOMEM, "out of locked memory for %zu bytes of plaintext", cap);
	if (e->pt_len)
		memcpy(p, e->pt, e->pt_len);
	exai_secure_free(e->pt);
	e->pt = p;
	e->pt_cap = cap;
	return 0;
}

/* ---- encryption ------------------------------------------------------------------------- */

int exai__envelope_encrypt_new(exai_envelope **ret, const uint8_t wrap_key[32], const char *ns, const char *name,
			       const char *const *extra_pairs, const struct exai_envelope_opts *opts)
{
	if (!wrap_key || !ns || !name)
		return exai__err(-EINVAL, "envelope: wrapping key, key namespace and key name are required");
	if (strlen(ns) > 0xFFFF || strlen(name) > 0xFFFF - RAW_INFO_TAIL)
		return exai__err(-EINVAL, "envelope: key namespace or name too long");
	exai_envelope *e;
	int r = envelope_alloc(&e, opts, true);
	if (r < 0)
		return r;
	if (e->frame_len == 0) {
		exai_envelope_free(e);
		return exai__err(-EINVAL, "envelope: frame_length must not be 0");
	}
	uint8_t *keys = exai_secure_alloc(2 * DK_LEN + COMMIT_LEN); /* dk | derived | commit */
	struct exai__buf aad = { 0 }, *h = &e->hold;
	struct exai__gcm wrap = { 0 };
	if (!keys) {
		r = exai__err(-ENOMEM, "out of locked memory");
		goto out;
	}
	r = exai__ctx_add_pairs(e->context, extra_pairs);
	if (r == 0)
		r = exai__ctx_add_pairs(e->context, EXAI__OPTS_HAS(opts, context) ? opts->context : NULL);
	if (r == 0)
		r = ctx_serialize(&aad, e->context);
	if (r == 0)
		r = buffers_alloc(e);
	if (r < 0)
		goto out;
	uint8_t *dk = keys, *dkey = keys + DK_LEN, *commit = keys + 2 * DK_LEN;
	randombytes_buf(dk, DK_LEN);
	randombytes_buf(e->msgid, MSGID_LEN);
	r = derive(dkey, commit, dk, e->msgid);
	if (r < 0)
		goto out;

	/* Header body. */
	uint8_t b[8];
	b[0] = 0x02;
	exai__be16(b + 1, SUITE_ID);
	r = exai__buf_append(h, b, 3);
	r = r ? r : exai__buf_append(h, e->msgid, MSGID_LEN);
	exai__be16(b, (uint16_t)aad.len);
	r = r ? r : exai__buf_append(h, b, 2);
	r = r ? r : exai__buf_append(h, aad.data, aad.len);
	exai__be16(b, 1); /* one encrypted data key */
	r = r ? r : exai__buf_append(h, b, 2);
	size_t nsl = strlen(ns), nl = strlen(name);
	exai__be16(b, (uint16_t)nsl);
	r = r ? r : exai__buf_append(h, b, 2);
	r = r ? r : exai__buf_append(h, ns, nsl);
	exai__be16(b, (uint16_t)(nl + RAW_INFO_TAIL));
	r = r ? r : exai__buf_append(h, b, 2);
	r = r ? r : exai__buf_append(h, name, nl);
	exai__be32(b, TAG_LEN * 8);
	exai__be32(b + 4, IV_LEN);
	r = r ? r : exai__buf_append(h, b, 8);
	uint8_t iv[IV_LEN], edk[EDK_CT_LEN];
	randombytes_buf(iv, IV_LEN);
	r = r ? r : exai__buf_append(h, iv, IV_LEN);
	if (r < 0) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	r = exai__gcm_init(&wrap, wrap_key, EXAI__KEY_LEN, true);
	if (r == 0)
		r = exai__gcm_seal(&wrap, iv, IV_LEN, (const uint8_t *)aad.data, aad.len, dk, DK_LEN, edk,
				   edk + DK_LEN, TAG_LEN);
	if (r < 0)
		goto out;
	exai__be16(b, EDK_CT_LEN);
	r = exai__buf_append(h, b, 2);
	r = r ? r : exai__buf_append(h, edk, EDK_CT_LEN);
	b[0] = CONTENT_FRAMED;
	exai__be32(b + 1, e->frame_len);
	r = r ? r : exai__buf_append(h, b, 5);
	r = r ? r : exai__buf_append(h, commit, COMMIT_LEN);
	r = r ? r : exai__buf_reserve(h, TAG_LEN);
	if (r < 0) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	/* Header authentication (v2: the tag only; IV zero; AAD = header body + the serialized
	 * "context to only authenticate", which is empty here). */
	r = exai__gcm_init(&e->gcm, dkey, DK_LEN, true);
	if (r == 0) {
		uint8_t zero_iv[IV_LEN] = { 0 };
		r = exai__gcm_seal(&e->gcm, zero_iv, IV_LEN, (const uint8_t *)h->data, h->len, NULL, 0, NULL,
				   (uint8_t *)h->data + h->len, TAG_LEN);
		h->len += TAG_LEN;
	}
out:
	exai__gcm_done(&wrap);
	exai__buf_free(&aad);
	exai_secure_free(keys);
	if (r < 0) {
		exai_envelope_free(e);
		return r;
	}
	e->state = ST_BODY;
	*ret = e;
	return 0;
}

EXAI_API int exai_envelope_encrypt_raw(exai_envelope **ret, const uint8_t key[32], const char *key_namespace,
				       const char *key_name, const struct exai_envelope_opts *opts)
{
	return exai__envelope_encrypt_new(ret, key, key_namespace, key_name, NULL, opts);
}

static int write_header(exai_envelope *e)
{
	if (e->header_written)
		return 0;
	int r = e->write(e->write_data, e->hold.data, e->hold.len);
	if (r < 0)
		return exai__err(r, "envelope: the output callback failed writing the header");
	e->header_written = true;
	exai__buf_free(&e->hold);
	return 0;
}

/* Encrypts and writes one frame of @len bytes at @in. */
static int put_frame(exai_envelope *e, const uint8_t *in, size_t len, bool final)
{
	if (!final && e->seq == FINAL_SEQ - 1)
		return exai__err(-EFBIG, "envelope: message too long (2^32 - 1 frames)");
	uint8_t aad[BODY_AAD_MAX], iv[IV_LEN];
	size_t aadlen = body_aad(aad, e->msgid, final, e->seq, len);
	frame_iv(iv, e->seq);
	uint8_t *p = e->ct;
	if (final) {
		exai__be32(p, FINAL_SEQ);
		p += 4;
	}
	exai__be32(p, e->seq);
	memcpy(p + 4, iv, IV_LEN);
	p += 4 + IV_LEN;
	if (final) {
		exai__be32(p, (uint32_t)len);
		p += 4;
	}
	int r = exai__gcm_seal(&e->gcm, iv, IV_LEN, aad, aadlen, in, len, p, p + len, TAG_LEN);
	if (r < 0)
		return r;
	size_t total = (size_t)(p + len + TAG_LEN - e->ct);
	r = e->write(e->write_data, e->ct, total);
	if (r < 0)
		return exai__err(r, "envelope: the output callback failed (frame %u)", e->seq);
	e->seq++;
	return 0;
}

static int encrypt_update(exai_envelope *e, const uint8_t *in, size_t len)
{
	int r = write_header(e);
	if (r < 0)
		return r;
	while (len) {
		if (e->pt_len == 0 && len > e->frame_len) {
			/* A whole frame and more: straight from the input. */
			r = put_frame(e, in, e->frame_len, false);
			if (r < 0)
				return r;
			in += e->frame_len;
			len -= e->frame_len;
			continue;
		}
		if (e->pt_len == e->frame_len) {
			/* Full, and more follows: it is a regular frame. */
			r = put_frame(e, e->pt, e->pt_len, false);
			if (r < 0)
				return r;
			e->pt_len = 0;
			continue;
		}
		size_t take = e->frame_len - e->pt_len;
		if (take > len)
			take = len;
		r = pt_reserve(e, e->pt_len + take);
		if (r < 0)
			return r;
		memcpy(e->pt + e->pt_len, in, take);
		e->pt_len += take;
		in += take;
		len -= take;
	}
	return 0;
}

/* ---- decryption ------------------------------------------------------------------------- */

struct raw_lookup {
	uint8_t key[EXAI__KEY_LEN];
	char *ns, *name;
};

static int raw_lookup(void *data, const char *ns, size_t nslen, const char *name, size_t namelen,
		      uint8_t key[EXAI__KEY_LEN])
{
	const struct raw_lookup *rl = data;
	if (strlen(rl->ns) != nslen || memcmp(rl->ns, ns, nslen) != 0 || strlen(rl->name) != namelen ||
	    memcmp(rl->name, name, namelen) != 0)
		return -ENOENT;
	memcpy(key, rl->key, EXAI__KEY_LEN);
	return 0;
}

static void raw_lookup_free(void *data)
{
	struct raw_lookup *rl = data;
	if (!rl)
		return;
	free(rl->ns);
	free(rl->name);
	exai_secure_free(rl);
}

int exai__envelope_decrypt_new(exai_envelope **ret, exai__unwrap_lookup_fn lookup, void *data,
			       void (*data_free)(void *), const struct exai_envelope_opts *opts)
{
	exai_envelope *e = NULL;
	int r = envelope_alloc(&e, opts, false);
	if (r < 0) {
		if (data_free)
			data_free(data);
		return r;
	}
	e->lookup = lookup;
	e->lookup_data = data;
	e->lookup_free = data_free;
	e->state = ST_HEADER;
	if (EXAI__OPTS_HAS(opts, context) && opts->context) {
		e->expect = json_object();
		r = e->expect ? exai__ctx_add_pairs(e->expect, opts->context) : exai__err(-ENOMEM, "out of memory");
		if (r < 0) {
			exai_envelope_free(e);
			return r;
		}
	}
	*ret = e;
	return 0;
}

EXAI_API int exai_envelope_decrypt_raw(exai_envelope **ret, const uint8_t key[32], const char *key_namespace,
				       const char *key_name, const struct exai_envelope_opts *opts)
{
	if (!key || !key_namespace || !key_name)
		return exai__err(-EINVAL, "envelope: wrapping key, key namespace and key name are required");
	struct raw_lookup *rl = exai_secure_alloc(sizeof(*rl));
	if (!rl)
		return exai__err(-ENOMEM, "out of locked memory");
	memcpy(rl->key, key, EXAI__KEY_LEN);
	rl->ns = strdup(key_namespace);
	rl->name = strdup(key_name);
	if (!rl->ns || !rl->name) {
		raw_lookup_free(rl);
		return exai__err(-ENOMEM, "out of memory");
	}
	return exai__envelope_decrypt_new(ret, raw_lookup, rl, raw_lookup_free, opts);
}

/* A bounded reader over the bytes gathered so far. "Short" means: more bytes needed. */
struct rd {
	const uint8_t *p;
	size_t len, off;
	size_t need; /* when short: how many bytes in all are needed at least */
};

static bool rd_take(struct rd *r, size_t n, const uint8_t **out)
{
	if (r->len - r->off < n) {
		r->need = r->off + n;
		return false;
	}
	*out = r->p + r->off;
	r->off += n;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;
	if (!rd_take(r, 2, &p))
		return false;
	*v = exai__ld16(p);
	return true;
}

#define BAD(...) exai__err(-EBADMSG, "envelope: " __VA_ARGS__)

/* Parses the serialized encryption context (@len bytes, the AAD field of the header) into
 * @ctx: a count, then sorted unique pairs, exactly filling the field. */
static int parse_context(json_t *ctx, const uint8_t *p, size_t len)
{
	if (len == 0)
		return 0;
	struct rd r = { .p = p, .len = len };
	uint16_t count, kl, vl;
	const uint8_t *k, *v, *prev = NULL;
	size_t prevlen = 0;
	if (!rd_u16(&r, &count) || count == 0)
		return BAD("encryption context: bad pair count");
	for (unsigned i = 0; i < count; i++) {
		if (!rd_u16(&r, &kl) || !rd_take(&r, kl, &k) || !rd_u16(&r, &vl) || !rd_take(&r, vl, &v))
			return BAD("encryption context: pair %u runs past the field", i);
		if (prev) {
			size_t m = prevlen < kl ? prevlen : kl;
			int c = memcmp(prev, k, m);
			if (c > 0 || (c == 0 && prevlen >= kl))
				return BAD("encryption context: keys not sorted or duplicated");
		}
		prev = k;
		prevlen = kl;
		if (memchr(k, 0, kl))
			return BAD("encryption context: key %u contains a NUL byte", i);
		if (!exai__utf8_valid((const char *)k, kl) || !exai__utf8_valid((const char *)v, vl))
			return BAD("encryption context: pair %u is not valid UTF-8 text", i);
		char *ks = strndup((const char *)k, kl);
		int set = ks ? json_object_set_new(ctx, ks, json_stringn((const char *)v, vl)) : -1;
		free(ks);
		if (set < 0)
			return exai__err(-ENOMEM, "out of memory");
	}
	if (r.off != len)
		return BAD("encryption context: %zu stray bytes after the pairs", len - r.off);
	return 0;
}

struct edk {
	const uint8_t *ns, *info, *ct;
	uint16_t nslen, infolen, ctlen;
};

/* Tries the encrypted data keys in order until the lookup gives a wrapping key that opens
 * one; the plaintext data key goes to @dk. */
static int unwrap_data_key(exai_envelope *e, const struct edk *edks, unsigned n, const uint8_t *aad,
			   size_t aadlen, uint8_t dk[DK_LEN], uint8_t wk[EXAI__KEY_LEN])
{
	int r = -ENOENT;
	for (unsigned i = 0; i < n; i++) {
		const struct edk *k = &edks[i];
		/* Raw AES keyring: info = name | tag bits (4) | IV length (4) | IV (12). */
		if (k->infolen < RAW_INFO_TAIL || k->ctlen != EDK_CT_LEN)
			continue;
		size_t namelen = k->infolen - RAW_INFO_TAIL;
		const uint8_t *tail = k->info + namelen;
		if (exai__ld32(tail) != TAG_LEN * 8 || exai__ld32(tail + 4) != IV_LEN)
			continue;
		int lr = e->lookup(e->lookup_data, (const char *)k->ns, k->nslen, (const char *)k->info, namelen, wk);
		if (lr == -ENOENT)
			continue;
		if (lr < 0) {
			r = lr; /* e.g. the KEK is disabled: the message must not open */
			break;
		}
		struct exai__gcm g;
		lr = exai__gcm_init(&g, wk, EXAI__KEY_LEN, false);
		if (lr == 0)
			lr = exai__gcm_open(&g, tail + 8, IV_LEN, aad, aadlen, k->ct, DK_LEN, dk, k->ct + DK_LEN, TAG_LEN);
		exai__gcm_done(&g);
		if (lr == 0) {
			free(e->wrap_name);
			e->wrap_name = strndup((const char *)k->info, namelen);
			r = e->wrap_name ? 0 : exai__err(-ENOMEM, "out of memory");
			break;
		}
		r = BAD("the encrypted data key for key \"%.*s\" does not authenticate (wrong key or altered message)",
			(int)(namelen > 80 ? 80 : namelen), (const char *)k->info);
	}
	exai_memzero(wk, EXAI__KEY_LEN);
	if (r == -ENOENT)
		return BAD("no encrypted data key in the message is wrapped by a key given (wrong key name, or altered message)");
	return r;
}

/* Parses the header in @p[0..len). Returns 1 with *@used set when it is complete and
 * authenticated, 0 with *@need set when more bytes are needed, or a negative errno. */
static int parse_header(exai_envelope *e, const uint8_t *p, size_t len, size_t *need, size_t *used)
{
	struct rd r = { .p = p, .len = len };
	const uint8_t *f, *aad, *commit, *tag;
	uint16_t aadlen, nedk;
	struct edk edks[MAX_EDKS];
#define TAKE(n, out) do { if (!rd_take(&r, (n), (out))) goto short_; } while (0)
#define U16(out) do { if (!rd_u16(&r, (out))) goto short_; } while (0)
	TAKE(1, &f);
	if (f[0] != 0x02)
		return BAD("message format version %u is not supported (want 2)", f[0]);
	TAKE(2, &f);
	if (exai__ld16(f) != SUITE_ID)
		return BAD("algorithm suite 0x%04x is not supported (want 0x0478)", exai__ld16(f));
	TAKE(MSGID_LEN, &f);
	memcpy(e->msgid, f, MSGID_LEN);
	U16(&aadlen);
	TAKE(aadlen, &aad);
	U16(&nedk);
	if (nedk == 0 || nedk > MAX_EDKS)
		return BAD("%u encrypted data keys (want 1 to %u)", nedk, MAX_EDKS);
	for (unsigned i = 0; i < nedk; i++) {
		struct edk *k = &edks[i];
		U16(&k->nslen);
		TAKE(k->nslen, &k->ns);
		U16(&k->infolen);
		TAKE(k->infolen, &k->info);
		U16(&k->ctlen);
		TAKE(k->ctlen, &k->ct);
	}
	TAKE(1, &f);
	if (f[0] != CONTENT_FRAMED)
		return BAD("content type %u is not supported (want 2, framed)", f[0]);
	TAKE(4, &f);
	uint32_t frame = exai__ld32(f);
	if (frame == 0 || frame > e->max_frame)
		return BAD("frame length %u out of range (1 to %u)", frame, e->max_frame);
	TAKE(COMMIT_LEN, &commit);
	size_t body_len = r.off;
	TAKE(TAG_LEN, &tag);
#undef TAKE
#undef U16

	/* Complete: check it. */
	int rc = parse_context(e->context, aad, aadlen);
	if (rc < 0)
		return rc;
	/* One locked block: data key | derived key | commit key | wrapping key. */
	uint8_t *keys = exai_secure_alloc(2 * DK_LEN + COMMIT_LEN + EXAI__KEY_LEN);
	if (!keys)
		return exai__err(-ENOMEM, "out of locked memory");
	uint8_t *dk = keys, *dkey = keys + DK_LEN, *want = keys + 2 * DK_LEN;
	rc = unwrap_data_key(e, edks, nedk, aad, aadlen, dk, keys + 2 * DK_LEN + COMMIT_LEN);
	if (rc == 0)
		rc = derive(dkey, want, dk, e->msgid);
	if (rc == 0 && exai_memeq_ct(want, commit, COMMIT_LEN) != 0)
		rc = BAD("key commitment mismatch");
	if (rc == 0)
		rc = exai__gcm_init(&e->gcm, dkey, DK_LEN, false);
	if (rc == 0) {
		uint8_t zero_iv[IV_LEN] = { 0 };
		rc = exai__gcm_open(&e->gcm, zero_iv, IV_LEN, p, body_len, NULL, 0, NULL, tag, TAG_LEN);
		if (rc < 0)
			rc = BAD("header authentication failed");
	}
	exai_secure_free(keys);
	if (rc < 0)
		return rc;
	/* The caller's expected pairs must be in the authenticated context, with equal values. */
	const char *k;
	json_t *v;
	json_object_foreach(e->expect, k, v) {
		json_t *got = json_object_get(e->context, k);
		if (!got || !json_equal(got, v))
			return BAD("encryption context: \"%.40s\" is %s in the message", k, got ? "different" : "missing");
	}
	e->frame_len = frame;
	rc = buffers_alloc(e);
	if (rc < 0)
		return rc;
	*used = r.off;
	e->state = ST_BODY;
	return 1;
short_:
	if (r.need > MAX_HEADER)
		return BAD("header longer than %u bytes", MAX_HEADER);
	*need = r.need;
	return 0;
}

/* How many bytes the frame starting at @p needs, from the @len bytes seen so far. */
static int frame_need(exai_envelope *e, const uint8_t *p, size_t len, size_t *need)
{
	if (len < 4) {
		*need = 4;
		return 0;
	}
	if (exai__ld32(p) != FINAL_SEQ) {
		*need = REGULAR_OVERHEAD + e->frame_len;
		return 0;
	}
	if (len < FINAL_PREFIX) {
		*need = FINAL_PREFIX;
		return 0;
	}
	uint32_t clen = exai__ld32(p + 4 + 4 + IV_LEN);
	if (clen > e->frame_len)
		return BAD("final frame content length %u exceeds the frame length %u", clen, e->frame_len);
	*need = FINAL_PREFIX + clen + TAG_LEN;
	return 0;
}

/* Authenticates and decrypts one whole frame, then releases its plaintext. */
static int open_frame(exai_envelope *e, const uint8_t *p, size_t len)
{
	bool final = exai__ld32(p) == FINAL_SEQ;
	if (final)
		p += 4;
	uint32_t seq = exai__ld32(p);
	if (seq != e->seq)
		return BAD("frame %u found where frame %u was expected (reordered or dropped frames)", seq, e->seq);
	if (!final && seq == FINAL_SEQ - 1)
		return BAD("too many frames");
	uint8_t iv[IV_LEN];
	frame_iv(iv, seq);
	if (memcmp(iv, p + 4, IV_LEN) != 0)
		return BAD("frame %u has an unexpected IV", seq);
	p += 4 + IV_LEN;
	size_t clen = final ? exai__ld32(p) : e->frame_len;
	if (final)
		p += 4;
	(void)len;
	uint8_t aad[BODY_AAD_MAX];
	size_t aadlen = body_aad(aad, e->msgid, final, seq, clen);
	int rr = pt_reserve(e, clen ? clen : 1);
	if (rr < 0)
		return rr;
	if (exai__gcm_open(&e->gcm, iv, IV_LEN, aad, aadlen, p, clen, e->pt, p + clen, TAG_LEN) < 0)
		return BAD("frame %u does not authenticate", seq);
	e->seq++;
	if (final)
		e->state = ST_DONE;
	if (clen) {
		/* The buffer is locked memory, overwritten by the next frame and wiped when the
		 * stream fails or is freed (a per-frame wipe would cost a fifth of the throughput). */
		int r = e->write(e->write_data, e->pt, clen);
		if (r < 0)
			return exai__err(r, "envelope: the output callback failed (frame %u)", seq);
	}
	return 0;
}

/* The size of the unit (header or frame) that starts at @p, as far as @len bytes tell;
 * for a complete header, processes it (returns 1, *@used set). */
static int unit_need(exai_envelope *e, const uint8_t *p, size_t len, size_t *need, size_t *used)
{
	if (e->state == ST_HEADER)
		return parse_header(e, p, len, need, used);
	int r = frame_need(e, p, len, need);
	return r < 0 ? r : 0;
}

static int decrypt_update(exai_envelope *e, const uint8_t *in, size_t len)
{
	struct exai__buf *h = &e->hold;
	while (len) {
		if (e->state == ST_DONE)
			return BAD("%zu bytes after the final frame", len);
		size_t need = 0, used = 0;
		int r;
		if (h->len == 0) {
			/* Nothing held: work straight on the input when it holds the whole unit. */
			r = unit_need(e, in, len, &need, &used);
			if (r < 0)
				return r;
			if (r == 1) {
				in += used;
				len -= used;
				continue;
			}
			if (len >= need) {
				r = open_frame(e, in, need);
				if (r < 0)
					return r;
				in += need;
				len -= need;
				continue;
			}
		}
		/* Gather: never take more than the unit is known to need. */
		for (;;) {
			r = unit_need(e, (const uint8_t *)h->data, h->len, &need, &used);
			if (r < 0)
				return r;
			if (r == 1) {
				h->len = 0;
				break;
			}
			if (h->len == need && e->state == ST_BODY) {
				r = open_frame(e, (const uint8_t *)h->data, need);
				if (r < 0)
					return r;
				h->len = 0;
				break;
			}
			if (!len)
				break;
			size_t take = need - h->len;
			if (take > len)
				take = len;
			if (exai__buf_append(h, in, take) < 0)
				return exai__err(-ENOMEM, "out of memory");
			in += take;
			len -= take;
		}
	}
	return 0;
}

/* ---- the stream API --------------------------------------------------------------------- */

EXAI_API int exai_envelope_update(exai_envelope *e, const void *data, size_t len)
{
	if (!e || (!data && len))
		return exai__err(-EINVAL, "exai_envelope_update: NULL argument");
	if (e->state == ST_FAILED)
		return exai__err(-EBADMSG, "envelope: the stream failed earlier");
	int r = e->encrypt ? encrypt_update(e, data, len) : decrypt_update(e, data, len);
	return r < 0 ? fail(e, r) : 0;
}

EXAI_API int exai_envelope_final(exai_envelope *e)
{
	if (!e)
		return exai__err(-EINVAL, "exai_envelope_final: NULL argument");
	if (e->state == ST_FAILED)
		return exai__err(-EBADMSG, "envelope: the stream failed earlier");
	int r;
	if (e->encrypt) {
		if (e->state == ST_DONE)
			return exai__err(-EINVAL, "envelope: final() called twice");
		r = write_header(e);
		if (r == 0)
			r = put_frame(e, e->pt, e->pt_len, true);
		exai_memzero(e->pt, e->pt_len);
		e->pt_len = 0;
		if (r == 0)
			e->state = ST_DONE;
	} else {
		r = e->state == ST_DONE ? 0
		    : BAD("message truncated (%s)", e->state == ST_HEADER ? "in the header" : "no final frame");
	}
	return r < 0 ? fail(e, r) : 0;
}

EXAI_API int exai_envelope_context(char **ret, const exai_envelope *e)
{
	if (!ret || !e)
		return exai__err(-EINVAL, "exai_envelope_context: NULL argument");
	if (e->state == ST_HEADER || e->state == ST_FAILED)
		return exai__err(-EAGAIN, "envelope: the header has not been authenticated");
	return exai__jcs_dump(e->context, ret, NULL);
}

const char *exai__envelope_key_name(const exai_envelope *e)
{
	return e->wrap_name;
}
