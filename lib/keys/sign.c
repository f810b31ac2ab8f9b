/* SPDX-License-Identifier: Apache-2.0 */
/* sign.c: Ed25519 signatures in the minisign format (docs/formats/minisign.md). */
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keys-internal.h"

#define SIG_ALG "Ed"
#define SIG_ALG_HASHED "ED"
#define KDF_ALG "Sc"
#define CHK_ALG "B2"
#define KEYID_LEN 8u
#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define TRUSTED_MAX 8000u  /* minisign: TRUSTEDCOMMENTMAXBYTES 8192 with the prefix */
#define COMMENT_MAX 1000u
#define SIG_TEXT_MAX 16384u
#define LEGACY_MAX ((size_t)1 << 30)

/* The binary layouts of minisign's base64 blobs. */
struct sk_blob {
	uint8_t sig_alg[2], kdf_alg[2], chk_alg[2];
	uint8_t salt[crypto_pwhash_scryptsalsa208sha256_SALTBYTES];
	uint8_t opslimit_le[8], memlimit_le[8];
	uint8_t keyid[KEYID_LEN];           /* from here on: encrypted with the scrypt stream */
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	uint8_t chk[crypto_generichash_BYTES];
};
#define SK_ENC_OFFSET offsetof(struct sk_blob, keyid)
#define SK_ENC_LEN (sizeof(struct sk_blob) - SK_ENC_OFFSET)
_Static_assert(sizeof(struct sk_blob) == 158, "minisign secret key blob is 158 bytes");

bool exai__sign_kdf_light;

struct exai_sign_key {
	uint8_t keyid[KEYID_LEN];
	uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key, as libsodium keeps it */
};

struct exai_sign_pubkey {
	uint8_t keyid[KEYID_LEN];
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
};

int exai__ed25519_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pk[32])
{
	if (exai__sodium_init() < 0)
		return -EIO;
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : -EBADMSG;
}

int exai__ed25519_sign(uint8_t sig[64], const exai_sign_key *key, const void *msg, size_t len)
{
	if (!key || (!msg && len))
		return exai__err(-EINVAL, "exai__ed25519_sign: NULL argument");
	crypto_sign_detached(sig, NULL, msg, len, key->sk);
	return 0;
}

void exai__sign_pubkey_raw(const exai_sign_pubkey *pk, uint8_t out[32])
{
	memcpy(out, pk->pk, 32);
}

static exai_sign_key *key_alloc(void)
{
	if (exai__sodium_init() < 0)
		return NULL;
	exai_sign_key *k = exai_secure_alloc(sizeof(*k));
	if (!k)
		exai__err(-ENOMEM, "out of locked memory for a signing key");
	return k;
}

EXAI_API int exai_sign_keygen(exai_sign_key **ret)
{
	if (!ret)
		return exai__err(-EINVAL, "exai_sign_keygen: ret is NULL");
	exai_sign_key *k = key_alloc();
	if (!k)
		return -ENOMEM;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	randombytes_buf(k->keyid, sizeof(k->keyid));
	crypto_sign_keypair(pk, k->sk);
	*ret = k;
	return 0;
}

EXAI_API void exai_sign_key_free(exai_sign_key *key)
{
	exai_secure_free(key);
}

static const uint8_t *key_pk(const exai_sign_key *k)
{
	return k->sk + crypto_sign_SECRETKEYBYTES - crypto_sign_PUBLICKEYBYTES;
}

EXAI_API int exai_sign_key_public(exai_sign_pubkey **ret, const exai_sign_key *key)
{
	if (!ret || !key)
		return exai__err(-EINVAL, "exai_sign_key_public: NULL argument");
	exai_sign_pubkey *pk = calloc(1, sizeof(*pk));
	if (!pk)
		return exai__err(-ENOMEM, "out of memory");
	memcpy(pk->keyid, key->keyid, KEYID_LEN);
	memcpy(pk->pk, key_pk(key), sizeof(pk->pk));
	*ret = pk;
	return 0;
}

EXAI_API void exai_sign_pubkey_free(exai_sign_pubkey *pk)
{
	free(pk);
}

static void sk_checksum(uint8_t out[crypto_generichash_BYTES], const struct sk_blob *b)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&st, b->sig_alg, sizeof(b->sig_alg));
	crypto_generichash_update(&st, b->keyid, sizeof(b->keyid));
	crypto_generichash_update(&st, b->sk, sizeof(b->sk));
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
	sodium_memzero(&st, sizeof(st));
}

/* XORs the secret part of @b with the scrypt stream of @password. */
static int sk_crypt(struct sk_blob *b, const char *password)
{
	uint64_t ops = 0, mem = 0;
	for (int i = 7; i >= 0; i--) {
		ops = (ops << 8) | b->opslimit_le[i];
		mem = (mem << 8) | b->memlimit_le[i];
	}
	/* Bounds against a file that would make us spin or allocate without end. */
	if (ops > ((uint64_t)1 << 32) || mem > ((uint64_t)4 << 30))
		return exai__err(-EBADMSG, "secret key: scrypt limits out of range (opslimit %llu, memlimit %llu)",
				 (unsigned long long)ops, (unsigned long long)mem);
	uint8_t *stream = exai_secure_alloc(SK_ENC_LEN);
	if (!stream)
		return exai__err(-ENOMEM, "out of locked memory");
	if (crypto_pwhash_scryptsalsa208sha256(stream, SK_ENC_LEN, password, strlen(password), b->salt,
					       ops, (size_t)mem) != 0) {
		exai_secure_free(stream);
		return exai__err(-ENOMEM, "secret key: scrypt key derivation failed (out of memory?)");
	}
	uint8_t *p = (uint8_t *)b + SK_ENC_OFFSET;
	for (size_t i = 0; i < SK_ENC_LEN; i++)
		p[i] ^= stream[i];
	exai_secure_free(stream);
	return 0;
}

/* base64 (original alphabet, padded) of @len bytes into a malloc'd string; NULL on ENOMEM. */
static char *b64(const void *bin, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(n);
	if (s)
		sodium_bin2base64(s, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

/* Decodes exactly @want bytes of base64 from @s[0..len); -1 otherwise. */
static int unb64(void *bin, size_t want, const char *s, size_t len)
{
	size_t got = 0;
	const char *end = NULL;
	if (sodium_base642bin(bin, want, s, len, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	if (got != want || end != s + len)
		return -1;
	return 0;
}

/* Splits @text into lines (LF, an optional CR before it dropped). Returns the number found,
 * at most @max; @lines[i]/@lens[i] point into @text. */
static size_t split_lines(const char *text, size_t len, const char **lines, size_t *lens, size_t max)
{
	size_t n = 0, i = 0;
	while (i < len && n < max) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t l = nl ? (size_t)(nl - (text + i)) : len - i;
		lines[n] = text + i;
		lens[n] = (l && text[i + l - 1] == '\r') ? l - 1 : l;
		n++;
		i += l + 1;
	}
	return n;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);
	return len >= pl && memcmp(s, prefix, pl) == 0;
}

EXAI_API int exai_sign_key_save(const exai_sign_key *key, const char *sk_path, const char *pk_path,
				const char *password)
{
	if (!key || !sk_path)
		return exai__err(-EINVAL, "exai_sign_key_save: NULL key or path");
	struct sk_blob *b = exai_secure_alloc(sizeof(*b));
	if (!b)
		return exai__err(-ENOMEM, "out of locked memory");
	memset(b, 0, sizeof(*b));
	memcpy(b->sig_alg, SIG_ALG, 2);
	memcpy(b->chk_alg, CHK_ALG, 2);
	memcpy(b->keyid, key->keyid, KEYID_LEN);
	memcpy(b->sk, key->sk, sizeof(b->sk));
	sk_checksum(b->chk, b);
	int r = 0;
	bool encrypted = password && *password;
	if (encrypted) {
		memcpy(b->kdf_alg, KDF_ALG, 2);
		randombytes_buf(b->salt, sizeof(b->salt));
		uint64_t ops = exai__sign_kdf_light ? crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_INTERACTIVE
						    : crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE;
		uint64_t mem = exai__sign_kdf_light ? crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_INTERACTIVE
						    : crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE;
		for (int i = 0; i < 8; i++) {
			b->opslimit_le[i] = (uint8_t)(ops >> (8 * i));
			b->memlimit_le[i] = (uint8_t)(mem >> (8 * i));
		}
		r = sk_crypt(b, password);
	}
	/* else kdf_alg stays "\0\0": minisign's unencrypted form (-W). */
	char *text = NULL;
	if (r == 0) {
		size_t n = sodium_base64_ENCODED_LEN(sizeof(*b), sodium_base64_VARIANT_ORIGINAL);
		const char *comment = encrypted ? "minisign encrypted secret key" : "minisign secret key (unencrypted)";
		size_t tlen = strlen(UNTRUSTED_PREFIX) + strlen(comment) + 1 + n + 1;
		text = exai_secure_alloc(tlen);
		if (!text) {
			r = exai__err(-ENOMEM, "out of locked memory");
		} else {
			int off = snprintf(text, tlen, "%s%s\n", UNTRUSTED_PREFIX, comment);
			sodium_bin2base64(text + off, n, (const unsigned char *)b, sizeof(*b),
					  sodium_base64_VARIANT_ORIGINAL);
			strcat(text, "\n");
			r = exai__write_new_file(sk_path, text, strlen(text), 0600);
		}
	}
	exai_secure_free(text);
	exai_secure_free(b);
	if (r < 0 || !pk_path)
		return r;
	exai_sign_pubkey *pk = NULL;
	char *pkb = NULL, *pkfile = NULL;
	char id[17];
	r = exai_sign_key_public(&pk, key);
	if (r == 0)
		r = exai_sign_pubkey_base64(&pkb, pk);
	if (r == 0) {
		exai_sign_pubkey_id(pk, id);
		if (asprintf(&pkfile, "untrusted comment: minisign public key %s\n%s\n", id, pkb) < 0) {
			pkfile = NULL;
			r = exai__err(-ENOMEM, "out of memory");
		} else {
			r = exai__write_new_file(pk_path, pkfile, strlen(pkfile), 0644);
		}
	}
	free(pkfile);
	exai_free(pkb);
	exai_sign_pubkey_free(pk);
	return r;
}

EXAI_API int exai_sign_key_load(exai_sign_key **ret, const char *sk_path, const char *password)
{
	if (!ret || !sk_path)
		return exai__err(-EINVAL, "exai_sign_key_load: NULL argument");
	int r = exai__sodium_init();
	if (r < 0)
		return r;
	char *text = NULL;
	size_t len;
	r = exai__read_secret_file(sk_path, 4096, false, &text, &len);
	if (r < 0)
		return r;
	const char *lines[2];
	size_t lens[2];
	struct sk_blob *b = exai_secure_alloc(sizeof(*b));
	exai_sign_key *k = NULL;
	if (!b) {
		r = exai__err(-ENOMEM, "out of locked memory");
		goto out;
	}
	if (split_lines(text, len, lines, lens, 2) != 2 || !has_prefix(lines[0], lens[0], UNTRUSTED_PREFIX) ||
	    unb64(b, sizeof(*b), lines[1], lens[1]) < 0) {
		r = exai__err(-EBADMSG, "%s: not a minisign secret key (want an untrusted comment line and a base64 line of 158 bytes)", sk_path);
		goto out;
	}
	if (memcmp(b->sig_alg, SIG_ALG, 2) != 0 || memcmp(b->chk_alg, CHK_ALG, 2) != 0) {
		r = exai__err(-EBADMSG, "%s: unsupported signature or checksum algorithm", sk_path);
		goto out;
	}
	uint8_t chk[crypto_generichash_BYTES];
	if (memcmp(b->kdf_alg, KDF_ALG, 2) == 0) {
		if (!password) {
			r = exai__err(-EACCES, "%s: the secret key is encrypted and no password was given", sk_path);
			goto out;
		}
		r = sk_crypt(b, password);
		if (r < 0)
			goto out;
		sk_checksum(chk, b);
		if (sodium_memcmp(chk, b->chk, sizeof(chk)) != 0) {
			r = exai__err(-EBADMSG, "%s: wrong password for this secret key (checksum mismatch)", sk_path);
			goto out;
		}
	} else if (memcmp(b->kdf_alg, "\0\0", 2) == 0) {
		/* minisign -W leaves the checksum zero; ours carries it. Check it when present. */
		sk_checksum(chk, b);
		if (!sodium_is_zero(b->chk, sizeof(b->chk)) && sodium_memcmp(chk, b->chk, sizeof(chk)) != 0) {
			r = exai__err(-EBADMSG, "%s: secret key checksum mismatch (corrupted file)", sk_path);
			goto out;
		}
	} else {
		r = exai__err(-EBADMSG, "%s: unsupported key derivation function", sk_path);
		goto out;
	}
	sodium_memzero(chk, sizeof(chk));
	k = key_alloc();
	if (!k) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(k->keyid, b->keyid, KEYID_LEN);
	memcpy(k->sk, b->sk, sizeof(k->sk));
	*ret = k;
	r = 0;
out:
	exai_secure_free(b);
	exai_secure_free(text);
	return r;
}

EXAI_API int exai_sign_pubkey_parse(exai_sign_pubkey **ret, const char *text, size_t len)
{
	if (!ret || !text)
		return exai__err(-EINVAL, "exai_sign_pubkey_parse: NULL argument");
	int r = exai__sodium_init();
	if (r < 0)
		return r;
	const char *lines[2];
	size_t lens[2];
	size_t n = split_lines(text, len, lines, lens, 2);
	const char *b64s;
	size_t b64len;
	if (n >= 1 && has_prefix(lines[0], lens[0], UNTRUSTED_PREFIX)) {
		if (n < 2)
			return exai__err(-EBADMSG, "public key: missing the base64 line after the comment");
		b64s = lines[1];
		b64len = lens[1];
	} else if (n >= 1) {
		b64s = lines[0];
		b64len = lens[0];
	} else {
		return exai__err(-EBADMSG, "public key: empty");
	}
	uint8_t blob[2 + KEYID_LEN + crypto_sign_PUBLICKEYBYTES];
	if (unb64(blob, sizeof(blob), b64s, b64len) < 0)
		return exai__err(-EBADMSG, "public key: not base64 of %zu bytes", sizeof(blob));
	if (memcmp(blob, SIG_ALG, 2) != 0)
		return exai__err(-EBADMSG, "public key: algorithm is not Ed25519 (\"Ed\")");
	exai_sign_pubkey *pk = calloc(1, sizeof(*pk));
	if (!pk)
		return exai__err(-ENOMEM, "out of memory");
	memcpy(pk->keyid, blob + 2, KEYID_LEN);
	memcpy(pk->pk, blob + 2 + KEYID_LEN, sizeof(pk->pk));
	*ret = pk;
	return 0;
}

EXAI_API int exai_sign_pubkey_load(exai_sign_pubkey **ret, const char *path)
{
	char *text;
	size_t len;
	int r = exai__read_file(path, 4096, &text, &len);
	if (r < 0)
		return exai__err_sys(r, "cannot read public key %s", path);
	r = exai_sign_pubkey_parse(ret, text, len);
	free(text);
	return r < 0 ? exai__err_prefix(r, path) : 0;
}

EXAI_API void exai_sign_pubkey_id(const exai_sign_pubkey *pk, char ret[17])
{
	/* The 8 bytes are a little-endian number that minisign prints in hex. */
	for (int i = 0; i < 8; i++)
		snprintf(ret + 2 * i, 3, "%02X", pk->keyid[7 - i]);
}

EXAI_API int exai_sign_pubkey_base64(char **ret, const exai_sign_pubkey *pk)
{
	if (!ret || !pk)
		return exai__err(-EINVAL, "exai_sign_pubkey_base64: NULL argument");
	int r = exai__sodium_init();
	if (r < 0)
		return r;
	uint8_t blob[2 + KEYID_LEN + crypto_sign_PUBLICKEYBYTES];
	memcpy(blob, SIG_ALG, 2);
	memcpy(blob + 2, pk->keyid, KEYID_LEN);
	memcpy(blob + 2 + KEYID_LEN, pk->pk, sizeof(pk->pk));
	char *s = b64(blob, sizeof(blob));
	if (!s)
		return exai__err(-ENOMEM, "out of memory");
	*ret = s;
	return 0;
}

static int check_comment(const char *c, size_t max, const char *what)
{
	if (strlen(c) > max)
		return exai__err(-EINVAL, "%s comment is longer than %zu bytes", what, max);
	if (strpbrk(c, "\r\n"))
		return exai__err(-EINVAL, "%s comment contains a line break", what);
	return 0;
}

/* Builds the .minisig text from the BLAKE2b-512 @hash of the data. */
static int sign_hash(char **ret, size_t *retlen, const exai_sign_key *key, const uint8_t hash[64],
		     const char *trusted_comment, const char *untrusted_comment)
{
	char tsbuf[64];
	if (!trusted_comment) {
		snprintf(tsbuf, sizeof(tsbuf), "timestamp:%lld", (long long)time(NULL));
		trusted_comment = tsbuf;
	}
	if (!untrusted_comment)
		untrusted_comment = "signature from libexai secret key";
	int r = check_comment(trusted_comment, TRUSTED_MAX, "trusted");
	if (r == 0)
		r = check_comment(untrusted_comment, COMMENT_MAX, "untrusted");
	if (r < 0)
		return r;
	uint8_t sigblob[2 + KEYID_LEN + crypto_sign_BYTES];
	memcpy(sigblob, SIG_ALG_HASHED, 2);
	memcpy(sigblob + 2, key->keyid, KEYID_LEN);
	crypto_sign_detached(sigblob + 2 + KEYID_LEN, NULL, hash, 64, key->sk);

	size_t tclen = strlen(trusted_comment);
	uint8_t *global_msg = malloc(crypto_sign_BYTES + tclen);
	if (!global_msg)
		return exai__err(-ENOMEM, "out of memory");
	memcpy(global_msg, sigblob + 2 + KEYID_LEN, crypto_sign_BYTES);
	memcpy(global_msg + crypto_sign_BYTES, trusted_comment, tclen);
	uint8_t global_sig[crypto_sign_BYTES];
	crypto_sign_detached(global_sig, NULL, global_msg, crypto_sign_BYTES + tclen, key->sk);
	free(global_msg);

	char *s1 = b64(sigblob, sizeof(sigblob)), *s2 = b64(global_sig, sizeof(global_sig));
	struct exai__buf out = { 0 };
	r = (s1 && s2) ? 0 : -ENOMEM;
	if (r == 0)
		r = exai__buf_printf(&out, "%s%s\n%s\n%s%s\n%s\n", UNTRUSTED_PREFIX, untrusted_comment, s1,
				     TRUSTED_PREFIX, trusted_comment, s2);
	free(s1);
	free(s2);
	if (r < 0) {
		exai__buf_free(&out);
		return exai__err(-ENOMEM, "out of memory");
	}
	*ret = exai__buf_steal(&out, retlen);
	return 0;
}

EXAI_API int exai_sign_data(char **ret, size_t *retlen, const exai_sign_key *key, const void *data,
			    size_t len, const char *trusted_comment, const char *untrusted_comment)
{
	if (!ret || !key || (!data && len))
		return exai__err(-EINVAL, "exai_sign_data: NULL argument");
	uint8_t hash[64];
	crypto_generichash(hash, sizeof(hash), data, len, NULL, 0);
	return sign_hash(ret, retlen, key, hash, trusted_comment, untrusted_comment);
}

/* BLAKE2b-512 of a file, streamed. */
static int hash_file(uint8_t hash[64], const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", path);
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 64);
	static const size_t bufsz = 1 << 16;
	uint8_t *buf = malloc(bufsz);
	int r = buf ? 0 : exai__err(-ENOMEM, "out of memory");
	while (r == 0) {
		ssize_t n = read(fd, buf, bufsz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = exai__err_sys(exai__neg_errno(), "cannot read %s", path);
		else if (n == 0)
			break;
		else
			crypto_generichash_update(&st, buf, (size_t)n);
	}
	free(buf);
	close(fd);
	if (r == 0)
		crypto_generichash_final(&st, hash, 64);
	return r;
}

EXAI_API int exai_sign_file(char **ret, size_t *retlen, const exai_sign_key *key, const char *path,
			    const char *trusted_comment, const char *untrusted_comment)
{
	if (!ret || !key || !path)
		return exai__err(-EINVAL, "exai_sign_file: NULL argument");
	uint8_t hash[64];
	int r = hash_file(hash, path);
	if (r < 0)
		return r;
	return sign_hash(ret, retlen, key, hash, trusted_comment, untrusted_comment);
}

struct parsed_sig {
	uint8_t blob[2 + KEYID_LEN + crypto_sign_BYTES];
	uint8_t global[crypto_sign_BYTES];
	const char *tc;
	size_t tclen;
	bool prehashed;
};

/* Parses and checks the signature text up to the key id (libsodium initialised first). */
static int parse_sig(struct parsed_sig *p, const exai_sign_pubkey *pk, const char *sig, size_t siglen,
		     uint32_t flags)
{
	if (exai__sodium_init() < 0)
		return -EIO;
	if (siglen > SIG_TEXT_MAX)
		return exai__err(-EBADMSG, "signature: longer than %u bytes", SIG_TEXT_MAX);
	const char *lines[4];
	size_t lens[4];
	if (split_lines(sig, siglen, lines, lens, 4) != 4)
		return exai__err(-EBADMSG, "signature: want four lines (comment, signature, trusted comment, global signature)");
	if (!has_prefix(lines[0], lens[0], UNTRUSTED_PREFIX))
		return exai__err(-EBADMSG, "signature: line 1 is not an untrusted comment");
	if (unb64(p->blob, sizeof(p->blob), lines[1], lens[1]) < 0)
		return exai__err(-EBADMSG, "signature: line 2 is not base64 of %zu bytes", sizeof(p->blob));
	if (!has_prefix(lines[2], lens[2], TRUSTED_PREFIX))
		return exai__err(-EBADMSG, "signature: line 3 is not a trusted comment");
	if (unb64(p->global, sizeof(p->global), lines[3], lens[3]) < 0)
		return exai__err(-EBADMSG, "signature: line 4 is not base64 of %zu bytes", sizeof(p->global));
	p->tc = lines[2] + strlen(TRUSTED_PREFIX);
	p->tclen = lens[2] - strlen(TRUSTED_PREFIX);
	if (memcmp(p->blob, SIG_ALG_HASHED, 2) == 0)
		p->prehashed = true;
	else if (memcmp(p->blob, SIG_ALG, 2) == 0)
		p->prehashed = false;
	else
		return exai__err(-EBADMSG, "signature: unsupported algorithm");
	if (!p->prehashed && (flags & EXAI_SIGN_REQUIRE_PREHASHED))
		return exai__err(-EACCES, "signature: legacy (not prehashed) signature refused");
	if (memcmp(p->blob + 2, pk->keyid, KEYID_LEN) != 0) {
		char want[17];
		exai_sign_pubkey_id(pk, want);
		return exai__err(-EACCES, "signature: made by another key than %s (key id mismatch)", want);
	}
	return 0;
}

/* The data signature is checked; now the global signature over sig || trusted comment. */
static int finish_verify(char **ret_tc, const exai_sign_pubkey *pk, const struct parsed_sig *p)
{
	uint8_t *msg = malloc(crypto_sign_BYTES + p->tclen + 1);
	if (!msg)
		return exai__err(-ENOMEM, "out of memory");
	memcpy(msg, p->blob + 2 + KEYID_LEN, crypto_sign_BYTES);
	memcpy(msg + crypto_sign_BYTES, p->tc, p->tclen);
	int ok = exai__ed25519_verify(p->global, msg, crypto_sign_BYTES + p->tclen, pk->pk);
	if (ok != 0) {
		free(msg);
		return exai__err(-EBADMSG, "signature: the trusted comment does not verify (global signature)");
	}
	if (ret_tc) {
		memmove(msg, msg + crypto_sign_BYTES, p->tclen);
		msg[p->tclen] = '\0';
		*ret_tc = (char *)msg;
	} else {
		free(msg);
	}
	return 0;
}

EXAI_API int exai_sign_verify(char **ret_trusted_comment, const exai_sign_pubkey *pk, const void *data,
			      size_t len, const char *sig, size_t siglen, uint32_t flags)
{
	if (!pk || !sig || (!data && len))
		return exai__err(-EINVAL, "exai_sign_verify: NULL argument");
	struct parsed_sig p;
	int r = parse_sig(&p, pk, sig, siglen, flags);
	if (r < 0)
		return r;
	const uint8_t *s = p.blob + 2 + KEYID_LEN;
	if (p.prehashed) {
		uint8_t hash[64];
		crypto_generichash(hash, sizeof(hash), data, len, NULL, 0);
		r = exai__ed25519_verify(s, hash, sizeof(hash), pk->pk);
	} else {
		r = exai__ed25519_verify(s, data, len, pk->pk);
	}
	if (r != 0)
		return exai__err(-EBADMSG, "signature: the data does not verify");
	return finish_verify(ret_trusted_comment, pk, &p);
}

EXAI_API int exai_sign_verify_file(char **ret_trusted_comment, const exai_sign_pubkey *pk,
				   const char *path, const char *sig, size_t siglen, uint32_t flags)
{
	if (!pk || !sig || !path)
		return exai__err(-EINVAL, "exai_sign_verify_file: NULL argument");
	struct parsed_sig p;
	int r = parse_sig(&p, pk, sig, siglen, flags);
	if (r < 0)
		return r;
	if (p.prehashed) {
		uint8_t hash[64];
		r = hash_file(hash, path);
		if (r < 0)
			return r;
		if (exai__ed25519_verify(p.blob + 2 + KEYID_LEN, hash, sizeof(hash), pk->pk) != 0)
			return exai__err(-EBADMSG, "signature: %s does not verify", path);
		return finish_verify(ret_trusted_comment, pk, &p);
	}
	char *data;
	size_t len;
	r = exai__read_file(path, LEGACY_MAX, &data, &len);
	if (r < 0)
		return exai__err_sys(r, "cannot read %s", path);
	r = exai_sign_verify(ret_trusted_comment, pk, data, len, sig, siglen, flags);
	free(data);
	return r;
}
