/* SPDX-License-Identifier: Apache-2.0 */
/* note.c: C2SP signed-note (Ed25519) and tlog-checkpoint; the log's signing key. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-internal.h"
#include "exai/keys.h"

#define NOTE_MAX_SIGS 100
#define NOTE_ALG_ED25519 0x01
static const char em_dash[] = "\xe2\x80\x94 ";

bool exai__origin_valid(const char *o)
{
	size_t n = o ? strlen(o) : 0;
	if (n == 0 || n > 128 || o[0] == '.' || o[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = o[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-' || c == '/'))
			return false;
	}
	return true;
}

/* A key name per signed-note: non-empty UTF-8, no Unicode space, no '+'. */
static bool name_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '+' || c == 0x7f)
			return false;
	}
	return true;
}

uint32_t exai__note_keyid(const char *name, const uint8_t pk[32])
{
	size_t n = strlen(name);
	uint8_t *buf = malloc(n + 34), h[32];
	if (!buf)
		return 0;
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = NOTE_ALG_ED25519;
	memcpy(buf + n + 2, pk, 32);
	exai__sha256(h, buf, n + 34);
	free(buf);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

char *exai__signer_vkey(const struct exai__signer *s)
{
	uint8_t k[33];
	char b64[64], *out;
	k[0] = NOTE_ALG_ED25519;
	memcpy(k + 1, s->pk, 32);
	exai__b64(b64, k, sizeof(k));
	if (asprintf(&out, "%s+%08x+%s", s->name, s->keyid, b64) < 0)
		return NULL;
	return out;
}

int exai__vkey_parse(struct exai__vkey *v, const char *vkey)
{
	const char *p1 = vkey ? strchr(vkey, '+') : NULL;
	const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	if (!p2 || (size_t)(p1 - vkey) >= sizeof(v->name) || !name_valid(vkey, (size_t)(p1 - vkey)) ||
	    p2 - p1 != 9)
		return exai__err(-EINVAL, "verifier key is not <name>+<8 hex digits>+<base64 key>");
	memcpy(v->name, vkey, (size_t)(p1 - vkey));
	v->name[p1 - vkey] = '\0';
	char hex[9];
	memcpy(hex, p1 + 1, 8);
	hex[8] = '\0';
	char *end;
	v->keyid = (uint32_t)strtoul(hex, &end, 16);
	if (*end || strspn(hex, "0123456789abcdef") != 8)
		return exai__err(-EINVAL, "verifier key %s: key id is not 8 lower-case hex digits", v->name);
	uint8_t k[64];
	size_t klen;
	if (exai__unb64(k, sizeof(k), &klen, p2 + 1, strlen(p2 + 1)) < 0)
		return exai__err(-EINVAL, "verifier key %s: key is not base64", v->name);
	if (klen != 33 || k[0] != NOTE_ALG_ED25519)
		return exai__err(-EINVAL, "verifier key %s: not an Ed25519 key (algorithm byte 0x01, 32 bytes)", v->name);
	memcpy(v->pk, k + 1, 32);
	if (exai__note_keyid(v->name, v->pk) != v->keyid)
		return exai__err(-EINVAL, "verifier key %s: key id %08x does not match the key", v->name, v->keyid);
	return 0;
}

/* Text of a note: valid UTF-8, no control characters but '\n', ends with '\n'. */
static bool text_valid(const char *t, size_t n)
{
	if (n == 0 || t[n - 1] != '\n')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return false;
	}
	json_t *s = json_stringn(t, n); /* jansson validates UTF-8 */
	json_decref(s);
	return s != NULL;
}

int exai__note_verify(const struct exai__vkey *v, const char *note, size_t len, size_t *rettextlen)
{
	/* The text ends at the last "\n\n"; the signature block follows. */
	size_t split = 0;
	bool found = false;
	for (size_t i = len >= 2 ? len - 2 : 0; len >= 2; i--) {
		if (note[i] == '\n' && note[i + 1] == '\n') {
			split = i + 1;
			found = true;
			break;
		}
		if (i == 0)
			break;
	}
	if (!found || !text_valid(note, split) || len == split + 1 || note[len - 1] != '\n')
		return exai__err(-EBADMSG, "malformed note");
	const char *p = note + split + 1, *end = note + len;
	int nsig = 0;
	bool verified = false, bad = false;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || ++nsig > NOTE_MAX_SIGS || (size_t)(nl - p) < sizeof(em_dash) ||
		    memcmp(p, em_dash, sizeof(em_dash) - 1) != 0)
			return exai__err(-EBADMSG, "malformed note");
		const char *name = p + sizeof(em_dash) - 1;
		const char *sp = memchr(name, ' ', (size_t)(nl - name));
		if (!sp || !name_valid(name, (size_t)(sp - name)))
			return exai__err(-EBADMSG, "malformed note");
		uint8_t sig[128];
		size_t slen;
		if (exai__unb64(sig, sizeof(sig), &slen, sp + 1, (size_t)(nl - sp - 1)) < 0 || slen < 4)
			return exai__err(-EBADMSG, "malformed note");
		uint32_t id = (uint32_t)sig[0] << 24 | (uint32_t)sig[1] << 16 | (uint32_t)sig[2] << 8 | sig[3];
		if (id == v->keyid && (size_t)(sp - name) == strlen(v->name) && memcmp(name, v->name, (size_t)(sp - name)) == 0) {
			if (slen != 68 ||
			    crypto_sign_verify_detached(sig + 4, (const uint8_t *)note, split, v->pk) != 0)
				bad = true;
			else
				verified = true;
		}
		p = nl + 1;
	}
	if (bad)
		return exai__err(-EBADMSG, "invalid signature for key %s+%08x", v->name, v->keyid);
	if (!verified)
		return exai__err(-EBADMSG, "note has no verifiable signatures");
	if (rettextlen)
		*rettextlen = split;
	return 0;
}

EXAI_API int exai_audit_note_open(char **rettext, const char *note, size_t len, const char *vkey)
{
	struct exai__vkey v;
	size_t tlen;
	if (!note)
		return exai__err(-EINVAL, "no note");
	int r = exai__sodium_init();
	if (r == 0)
		r = exai__vkey_parse(&v, vkey);
	if (r == 0)
		r = exai__note_verify(&v, note, len, &tlen);
	if (r < 0)
		return r;
	if (rettext) {
		char *t = exai__strndup(note, tlen);
		if (!t)
			return exai__err(-ENOMEM, "out of memory");
		*rettext = t;
	}
	return 0;
}

int exai__note_sign(const struct exai__signer *s, const char *text, size_t len, char **ret, size_t *retlen)
{
	if (!text_valid(text, len))
		return exai__err(-EINVAL, "note text must be UTF-8 without control characters and end in a newline");
	uint8_t sig[68];
	sig[0] = (uint8_t)(s->keyid >> 24);
	sig[1] = (uint8_t)(s->keyid >> 16);
	sig[2] = (uint8_t)(s->keyid >> 8);
	sig[3] = (uint8_t)s->keyid;
	crypto_sign_detached(sig + 4, NULL, (const uint8_t *)text, len, s->sk);
	char b64[100];
	exai__b64(b64, sig, sizeof(sig));
	struct exai__buf b = { 0 };
	if (exai__buf_append(&b, text, len) || exai__buf_printf(&b, "\n%s%s %s\n", em_dash, s->name, b64)) {
		exai__buf_free(&b);
		return exai__err(-ENOMEM, "out of memory");
	}
	*ret = exai__buf_steal(&b, retlen);
	return 0;
}

int exai__checkpoint_text(char **ret, size_t *retlen, const char *origin, uint64_t size, const uint8_t root[32])
{
	char b64[48];
	exai__b64(b64, root, 32);
	int n = asprintf(ret, "%s\n%llu\n%s\n", origin, (unsigned long long)size, b64);
	if (n < 0)
		return exai__err(-ENOMEM, "out of memory");
	*retlen = (size_t)n;
	return 0;
}

EXAI_API int exai_audit_checkpoint_parse(char **retorigin, uint64_t *retsize, uint8_t retroot[32],
					 const char *text, size_t len)
{
	const char *l1 = text ? memchr(text, '\n', len) : NULL;
	const char *l2 = l1 ? memchr(l1 + 1, '\n', len - (size_t)(l1 + 1 - text)) : NULL;
	const char *l3 = l2 ? memchr(l2 + 1, '\n', len - (size_t)(l2 + 1 - text)) : NULL;
	if (!l3 || l1 == text)
		return exai__err(-EBADMSG, "checkpoint: expected origin, size and root hash lines");
	const char *sz = l1 + 1;
	bool digits = sz < l2 && (size_t)(l2 - sz) <= 20 && !(sz[0] == '0' && l2 - sz > 1);
	for (const char *c = sz; digits && c < l2; c++)
		digits = *c >= '0' && *c <= '9';
	if (!digits)
		return exai__err(-EBADMSG, "checkpoint: tree size is not a decimal number without leading zeros");
	uint8_t root[32];
	size_t rlen;
	if (exai__unb64(root, sizeof(root), &rlen, l2 + 1, (size_t)(l3 - l2 - 1)) < 0 || rlen != 32)
		return exai__err(-EBADMSG, "checkpoint: root hash is not base64 of 32 bytes");
	unsigned long long size = 0;
	for (const char *c = sz; c < l2; c++) {
		if (size > (UINT64_MAX - 9) / 10)
			return exai__err(-EBADMSG, "checkpoint: tree size out of range");
		size = size * 10 + (unsigned)(*c - '0');
	}
	if (retorigin) {
		char *o = exai__strndup(text, (size_t)(l1 - text));
		if (!o)
			return exai__err(-ENOMEM, "out of memory");
		*retorigin = o;
	}
	if (retsize)
		*retsize = size;
	if (retroot)
		memcpy(retroot, root, 32);
	return 0;
}

/* ---- the signing key ----------------------------------------------------------------------- */

void exai__audit_signer_free(struct exai__signer *s)
{
	if (s->sk)
		sodium_free(s->sk);
	free(s->name);
	memset(s, 0, sizeof(*s));
}

/* The public key first, then the private key (each atomically): a crash in between leaves no
 * private key, and the next open makes a new pair. */
static int signer_write_pub(const struct exai__signer *s, const char *pubpath)
{
	char *vk = exai__signer_vkey(s);
	if (!vk)
		return exai__err(-ENOMEM, "out of memory");
	size_t n = strlen(vk);
	vk[n] = '\n';
	int r = exai__write_file_atomic(pubpath, vk, n + 1, 0644);
	free(vk);
	return r;
}

#define KEY_LINE_MAX 300

/* "PRIVATE+KEY+<name>+<id>+base64(0x01||seed)\n" into @line (KEY_LINE_MAX bytes of locked
 * memory): the plain file's content and the sealed message's plaintext. */
static size_t signer_line(const struct exai__signer *s, char *line)
{
	uint8_t k[33];
	char b64[64];
	k[0] = NOTE_ALG_ED25519;
	crypto_sign_ed25519_sk_to_seed(k + 1, s->sk);
	exai__b64(b64, k, 33);
	int n = snprintf(line, KEY_LINE_MAX, "PRIVATE+KEY+%s+%08x+%s\n", s->name, s->keyid, b64);
	sodium_memzero(k, sizeof(k));
	sodium_memzero(b64, sizeof(b64));
	return n > 0 && n < KEY_LINE_MAX ? (size_t)n : 0;
}

/* Parses a private key line (@len bytes) into @s for the key name s->name; @what names the
 * source in the error. Never copies the line anywhere but locked memory. */
static int signer_parse(struct exai__signer *s, const char *text, size_t len, const char *what)
{
	int r = exai__err(-EBADMSG, "%s is not a signed-note private key for %s", what, s->name);
	char prefix[160];
	int pl = snprintf(prefix, sizeof(prefix), "PRIVATE+KEY+%s+", s->name);
	while (len && text[len - 1] == '\n')
		len--;
	if (pl > 0 && (size_t)pl < sizeof(prefix) && len > (size_t)pl + 9 && memcmp(text, prefix, (size_t)pl) == 0 &&
	    text[pl + 8] == '+') {
		uint8_t *k = sodium_malloc(64);
		size_t klen = 0;
		if (k && exai__unb64(k, 64, &klen, text + pl + 9, len - (size_t)pl - 9) == 0 && klen == 33 &&
		    k[0] == NOTE_ALG_ED25519) {
			crypto_sign_seed_keypair(s->pk, s->sk, k + 1);
			s->keyid = exai__note_keyid(s->name, s->pk);
			char id[9];
			snprintf(id, sizeof(id), "%08x", s->keyid);
			if (memcmp(text + pl, id, 8) == 0)
				r = 0;
		}
		if (k)
			sodium_free(k);
	}
	return r;
}

static int signer_read(struct exai__signer *s, const char *path)
{
	char *text = NULL;
	size_t len;
	int r = exai__read_file(path, 4096, &text, &len);
	if (r < 0)
		return r;
	r = signer_parse(s, text, len, path);
	sodium_memzero(text, len);
	free(text);
	return r;
}

/* The verifier key from signing.pub (a reader needs no private key). */
static int signer_read_pub(struct exai__signer *s, const char *pubpath)
{
	char *text = NULL;
	size_t len;
	int r = exai__read_file(pubpath, 4096, &text, &len);
	if (r < 0)
		return r == -ENOENT ? exai__err(r, "no verifier key %s", pubpath) : r;
	while (len && text[len - 1] == '\n')
		text[--len] = '\0';
	struct exai__vkey v;
	r = exai__vkey_parse(&v, text);
	free(text);
	if (r == 0 && strcmp(v.name, s->name) != 0)
		r = exai__err(-EBADMSG, "%s is the key of %s, not of %s", pubpath, v.name, s->name);
	if (r == 0) {
		memcpy(s->pk, v.pk, 32);
		s->keyid = v.keyid;
	}
	return r;
}

/* ---- the sealed key: an envelope message under a tenant keyring --------------------------- */

#define SEAL_PURPOSE "audit-signing-key"

struct secret_out {
	char *buf; /* KEY_LINE_MAX bytes of locked memory */
	size_t len;
};

static int secret_write(void *d, const void *data, size_t len)
{
	struct secret_out *o = d;
	if (len > KEY_LINE_MAX - o->len)
		return -EFBIG;
	memcpy(o->buf + o->len, data, len);
	o->len += len;
	return 0;
}

static int buf_write(void *d, const void *data, size_t len)
{
	return exai__buf_append(d, data, len) < 0 ? -ENOMEM : 0;
}

static int signer_seal(const struct exai__signer *s, exai_keyring *kr, const char *path)
{
	char *line = exai_secure_alloc(KEY_LINE_MAX);
	struct exai__buf msg = { 0 };
	exai_envelope *env = NULL;
	size_t n = line ? signer_line(s, line) : 0;
	EXAI_OPTS(exai_envelope_opts, eo, .write = buf_write, .write_data = &msg);
	int r = n ? exai_keyring_encrypt(&env, kr, SEAL_PURPOSE, s->name, &eo) : exai__err(-ENOMEM, "out of memory");
	if (r == 0 && (r = exai_envelope_update(env, line, n)) == 0)
		r = exai_envelope_final(env);
	if (r == 0)
		r = exai__write_file_atomic(path, msg.data, msg.len, 0600);
	exai_envelope_free(env);
	exai_secure_free(line);
	exai__buf_free(&msg);
	return r;
}

static int signer_unseal(struct exai__signer *s, exai_keyring *kr, const char *path)
{
	char *msg = NULL;
	size_t len;
	int r = exai__read_file(path, 1 << 16, &msg, &len);
	if (r < 0)
		return r;
	struct secret_out out = { exai_secure_alloc(KEY_LINE_MAX), 0 };
	exai_envelope *env = NULL;
	const char *const pairs[] = { "purpose", SEAL_PURPOSE, "object", s->name, NULL };
	EXAI_OPTS(exai_envelope_opts, eo, .write = secret_write, .write_data = &out, .context = pairs);
	r = out.buf ? exai_keyring_decrypt(&env, kr, &eo) : exai__err(-ENOMEM, "out of memory");
	if (r == 0 && (r = exai_envelope_update(env, msg, len)) == 0)
		r = exai_envelope_final(env);
	if (r < 0) {
		EXAI__WHY(why);
		r = exai__err(r, "cannot unseal the audit signing key %s: %s", path, why);
	} else {
		r = signer_parse(s, out.buf, out.len, path);
	}
	exai_envelope_free(env);
	exai_secure_free(out.buf);
	free(msg);
	return r;
}

/* Overwrites a plaintext key file with zeros, makes that durable, and removes it. (On a
 * journalling or copy-on-write file system, or flash, older copies of the blocks may survive:
 * docs/audit.md says so.) */
static int wipe_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	int r = 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot wipe %s", path);
	if (r == 0 && st.st_size > 0) {
		char zero[4096] = { 0 };
		for (off_t at = 0; r == 0 && at < st.st_size; at += (off_t)sizeof(zero)) {
			size_t n = (size_t)(st.st_size - at) < sizeof(zero) ? (size_t)(st.st_size - at) : sizeof(zero);
			if (pwrite(fd, zero, n, at) != (ssize_t)n)
				r = exai__err_sys(exai__neg_errno(), "cannot wipe %s", path);
		}
		if (r == 0 && fdatasync(fd) < 0)
			r = exai__err_sys(exai__neg_errno(), "cannot wipe %s", path);
	}
	if (fd >= 0)
		close(fd);
	if (r == 0 && unlink(path) < 0)
		r = exai__err_sys(exai__neg_errno(), "cannot remove %s", path);
	if (r == 0)
		r = exai__fsync_parent(path);
	return r;
}

/* The keyring that seals the key: @tenant's (it must exist), or with @tenant NULL the host
 * keyring EXAI_AUDIT_KEY_TENANT when it exists; *@ret NULL: none (plain file). */
static int sealing_keyring(exai_ctx *ctx, const char *tenant, exai_keyring **ret)
{
	*ret = NULL;
	if (!tenant) {
		char *rec = NULL;
		if (asprintf(&rec, "%s/keys/%s/keyring.json", exai_ctx_state_dir(ctx), EXAI_AUDIT_KEY_TENANT) < 0)
			return exai__err(-ENOMEM, "out of memory");
		bool exists = access(rec, F_OK) == 0;
		free(rec);
		if (!exists)
			return 0;
		tenant = EXAI_AUDIT_KEY_TENANT;
	}
	int r = exai_keyring_open(ret, ctx, tenant, NULL);
	if (r < 0) {
		EXAI__WHY(why);
		return exai__err(r, "the audit signing key is to be sealed by tenant %s's keyring: %s", tenant, why);
	}
	return 0;
}

int exai__audit_signer_load(struct exai__signer *s, exai_ctx *ctx, const char *dir, const char *name,
			    const char *tenant, bool create)
{
	int r = exai__sodium_init();
	if (r < 0)
		return r;
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	char *path = exai__path_join(dir, "signing.key");
	char *sealed = exai__path_join(dir, "signing.key.sealed");
	char *pub = exai__path_join(dir, "signing.pub");
	exai_keyring *kr = NULL;
	if (!s->name || !path || !sealed || !pub) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	if (!create) { /* a reader: the public key is all it needs */
		r = signer_read_pub(s, pub);
		goto out;
	}
	if (!(s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES))) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	r = sealing_keyring(ctx, tenant, &kr);
	bool have_sealed = access(sealed, F_OK) == 0, have_plain = access(path, F_OK) == 0;
	if (r < 0) {
		goto out;
	} else if (have_sealed) {
		r = kr ? signer_unseal(s, kr, sealed) :
			exai__err(-EACCES, "%s is sealed by a tenant keyring, and no keyring was given "
				  "(exai_audit_opts.key_tenant) nor does the %s keyring exist", sealed, EXAI_AUDIT_KEY_TENANT);
		if (r == 0 && have_plain) /* a migration cut short: the sealed copy is complete */
			r = wipe_file(path);
	} else if (have_plain) {
		r = signer_read(s, path);
		if (r == 0 && kr) { /* migration: seal, then wipe the plaintext */
			r = signer_seal(s, kr, sealed);
			if (r == 0)
				r = wipe_file(path);
			if (r == 0)
				exai__log_info(ctx, "audit", "%s: signing key sealed under tenant %s's keyring; the plain "
						 "file was wiped", name, tenant ? tenant : EXAI_AUDIT_KEY_TENANT);
		}
	} else {
		crypto_sign_keypair(s->pk, s->sk);
		s->keyid = exai__note_keyid(name, s->pk);
		r = signer_write_pub(s, pub);
		if (r == 0 && kr) {
			r = signer_seal(s, kr, sealed);
		} else if (r == 0) {
			char *line = exai_secure_alloc(KEY_LINE_MAX);
			size_t n = line ? signer_line(s, line) : 0;
			r = n ? exai__write_file_atomic(path, line, n, 0600) : exai__err(-ENOMEM, "out of memory");
			exai_secure_free(line);
		}
	}
	if (r == 0 && (have_sealed || have_plain) && access(pub, F_OK) < 0)
		r = signer_write_pub(s, pub);
out:
	exai_keyring_unref(kr);
	free(path);
	free(sealed);
	free(pub);
	if (r < 0)
		exai__audit_signer_free(s);
	return r;
}
