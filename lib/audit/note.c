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

static int signer_write(const struct exai__signer *s, const char *path, const char *pubpath)
{
	/* "PRIVATE+KEY+<name>+<id>+base64(0x01||seed)" in locked memory. */
	uint8_t *k = sodium_malloc(33);
	char *line = sodium_malloc(300);
	int r = k && line ? signer_write_pub(s, pubpath) : exai__err(-ENOMEM, "out of memory");
	if (r == 0) {
		k[0] = NOTE_ALG_ED25519;
		crypto_sign_ed25519_sk_to_seed(k + 1, s->sk);
		char b64[64];
		exai__b64(b64, k, 33);
		int n = snprintf(line, 300, "PRIVATE+KEY+%s+%08x+%s\n", s->name, s->keyid, b64);
		sodium_memzero(b64, sizeof(b64));
		r = exai__write_file_atomic(path, line, (size_t)n, 0600);
	}
	if (k)
		sodium_free(k);
	if (line)
		sodium_free(line);
	return r;
}

static int signer_read(struct exai__signer *s, const char *path)
{
	char *text = NULL;
	size_t len;
	int r = exai__read_file(path, 4096, &text, &len);
	if (r < 0)
		return r;
	r = exai__err(-EBADMSG, "%s is not a signed-note private key for %s", path, s->name);
	char *prefix = NULL;
	if (asprintf(&prefix, "PRIVATE+KEY+%s+", s->name) < 0)
		prefix = NULL;
	size_t pl = prefix ? strlen(prefix) : 0;
	while (len && (text[len - 1] == '\n'))
		len--;
	if (prefix && len > pl + 9 && memcmp(text, prefix, pl) == 0 && text[pl + 8] == '+') {
		uint8_t *k = sodium_malloc(64);
		size_t klen = 0;
		if (k && exai__unb64(k, 64, &klen, text + pl + 9, len - pl - 9) == 0 && klen == 33 &&
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
	free(prefix);
	sodium_memzero(text, len);
	free(text);
	return r;
}

/* The one place that knows where the log's key lives: a 0600 file for now. When the keys
 * module lands, a sealed key replaces signer_read()/signer_write() here. */
int exai__audit_signer_load(struct exai__signer *s, const char *dir, const char *name, bool create)
{
	int r = exai__sodium_init();
	if (r < 0)
		return r;
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	char *path = exai__path_join(dir, "signing.key");
	char *pub = exai__path_join(dir, "signing.pub");
	if (!s->name || !s->sk || !path || !pub) {
		r = exai__err(-ENOMEM, "out of memory");
		goto out;
	}
	if (access(path, F_OK) == 0) {
		r = signer_read(s, path);
		if (r == 0 && create && access(pub, F_OK) < 0)
			r = signer_write_pub(s, pub);
	} else if (!create) {
		r = exai__err(-ENOENT, "no signing key %s", path);
	} else {
		crypto_sign_keypair(s->pk, s->sk);
		s->keyid = exai__note_keyid(name, s->pk);
		r = signer_write(s, path, pub);
	}
out:
	free(path);
	free(pub);
	if (r < 0)
		exai__audit_signer_free(s);
	return r;
}
