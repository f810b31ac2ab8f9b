/* SPDX-License-Identifier: Apache-2.0 */
/* hash.c: CRC32C for record framing, SHA-256, hex and base64 for the audit formats. */
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <sodium.h>

#include "audit-internal.h"

/* CRC32C (Castagnoli, reflected 0x82F63B78): SSE4.2 when the CPU has it, else slice-by-8. */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
	for (; n; n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

uint32_t exai__crc32c(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;
	uint32_t c = ~crc;
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse42(c, p, n);
#endif
	for (; n >= 8; n -= 8, p += 8) {
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
		    crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
		    crc_tab[0][p[7]];
	}
	for (; n; n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
	return ~c;
}

/* OpenSSL's low-level SHA-256 (SHA-NI/AVX2 code, no provider lookup or locking per call: the
 * one-shot SHA256() of OpenSSL 3 fetches the algorithm under a lock every time, which costs
 * more than hashing a 300-byte event). Deprecated in OpenSSL 3 but kept by it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void exai__sha256_2(uint8_t out[32], const void *a, size_t an, const void *b, size_t bn)
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, a, an);
	if (bn)
		SHA256_Update(&c, b, bn);
	SHA256_Final(out, &c);
}
#pragma GCC diagnostic pop

void exai__sha256(uint8_t out[32], const void *p, size_t n)
{
	exai__sha256_2(out, p, n, NULL, 0);
}

char *exai__strndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Hashes are public: a table beats libsodium's constant-time encoder on the verify path. */
void exai__hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void exai__b64(char *out, const uint8_t *p, size_t n)
{
	sodium_bin2base64(out, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), p, n,
			  sodium_base64_VARIANT_ORIGINAL);
}

int exai__unb64(uint8_t *out, size_t max, size_t *retlen, const char *s, size_t n)
{
	size_t len;
	const char *end;
	if (n % 4 != 0 || sodium_base642bin(out, max, s, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != s + n)
		return -EBADMSG;
	*retlen = len;
	return 0;
}
