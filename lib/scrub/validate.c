/* SPDX-License-Identifier: Apache-2.0 */
/* validate.c: the validators a pattern names (docs/formats/scrub-pack.md gives their exact
 * rules), Shannon entropy, Keccak-256 and CRC-32. */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "scrub-internal.h"

static const char *const validator_names[EXAI__V_COUNT] = {
	[EXAI__V_NONE] = "none",
	[EXAI__V_LUHN] = "luhn",
	[EXAI__V_IBAN] = "iban",
	[EXAI__V_US_SSN] = "us_ssn",
	[EXAI__V_JWT] = "jwt",
	[EXAI__V_BASE58CHECK] = "base58check",
	[EXAI__V_BECH32] = "bech32",
	[EXAI__V_ETH_ADDRESS] = "eth_address",
	[EXAI__V_CRC32_BASE62] = "crc32_base62",
	[EXAI__V_IPV4_PUBLIC] = "ipv4_public",
	[EXAI__V_IPV6] = "ipv6",
	[EXAI__V_PHONE] = "phone",
	[EXAI__V_EMAIL] = "email",
	[EXAI__V_NOT_PLACEHOLDER] = "not_placeholder",
	[EXAI__V_UK_NHS] = "uk_nhs",
	[EXAI__V_IN_AADHAAR] = "in_aadhaar",
	[EXAI__V_ABA_ROUTING] = "aba_routing",
	[EXAI__V_CA_SIN] = "ca_sin",
	[EXAI__V_BR_CPF] = "br_cpf",
	[EXAI__V_BR_CNPJ] = "br_cnpj",
};

const char *exai__validator_name(int v)
{
	return v >= 0 && v < EXAI__V_COUNT ? validator_names[v] : NULL;
}

int exai__validator_from_name(const char *name)
{
	for (int i = 0; i < EXAI__V_COUNT; i++)
		if (strcmp(validator_names[i], name) == 0)
			return i;
	return -1;
}

/* log2 of the small counts, from libm once (the same values as calling it every time) */
#define LOG2_TAB 257
static double log2_tab[LOG2_TAB];
static pthread_once_t log2_once = PTHREAD_ONCE_INIT;

static void log2_init(void)
{
	log2_tab[0] = -INFINITY; /* log2(0) */
	for (size_t c = 1; c < LOG2_TAB; c++)
		log2_tab[c] = log2((double)c);
}

double exai__log2_count(size_t c)
{
	pthread_once(&log2_once, log2_init);
	return c < LOG2_TAB ? log2_tab[c] : log2((double)c);
}

double exai__shannon(const char *s, size_t n)
{
	if (!n)
		return 0;
	/* H = log2(n) - (1/n) sum c log2 c over the byte counts c; agrees with the training
	 * script's -sum p log2 p to 1e-12 (tests/unit/test-scrub-classify.c) */
	uint32_t count[256];
	unsigned char seen[256] = { 0 };
	size_t nseen = 0;
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (count[c]++ == 0)
			seen[nseen++] = c;
	}
	double sum = 0;
	for (size_t k = 0; k < nseen; k++) {
		uint32_t c = count[seen[k]];
		if (c > 1)
			sum += (double)c * exai__log2_count(c);
	}
	double h = exai__log2_count(n) - sum / (double)n;
	return h > 0 ? h : 0;
}

/* ---- Keccak-256 ------------------------------------------------------------------------- */

static const uint64_t keccak_rc[24] = {
	0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
	0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
	0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
	0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
	0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
	0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};
/* Rotation offsets and the pi permutation, in the order the combined rho-pi step walks. */
static const unsigned keccak_rotc[24] = { 1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14,
					  27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44 };
static const unsigned keccak_piln[24] = { 10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4,
					  15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1 };

static inline uint64_t rotl64(uint64_t x, unsigned n)
{
	return (x << n) | (x >> (64 - n));
}

static void keccak_f1600(uint64_t st[25])
{
	uint64_t bc[5], t;
	for (int round = 0; round < 24; round++) {
		/* theta */
		for (int i = 0; i < 5; i++)
			bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
		for (int i = 0; i < 5; i++) {
			t = bc[(i + 4) % 5] ^ rotl64(bc[(i + 1) % 5], 1);
			for (int j = 0; j < 25; j += 5)
				st[j + i] ^= t;
		}
		/* rho and pi */
		t = st[1];
		for (int i = 0; i < 24; i++) {
			unsigned j = keccak_piln[i];
			uint64_t tmp = st[j];
			st[j] = rotl64(t, keccak_rotc[i]);
			t = tmp;
		}
		/* chi */
		for (int j = 0; j < 25; j += 5) {
			for (int i = 0; i < 5; i++)
				bc[i] = st[j + i];
			for (int i = 0; i < 5; i++)
				st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5];
		}
		/* iota */
		st[0] ^= keccak_rc[round];
	}
}

void exai__keccak256(uint8_t out[32], const void *in, size_t len)
{
	enum { RATE = 136 };
	uint64_t st[25] = { 0 };
	const uint8_t *p = in;
	uint8_t block[RATE];

	for (;;) {
		size_t take = len < RATE ? len : RATE;
		memset(block, 0, RATE);
		memcpy(block, p, take);
		if (take < RATE) {
			/* Keccak padding (0x01 ... 0x80), not SHA-3's 0x06. */
			block[take] ^= 0x01;
			block[RATE - 1] ^= 0x80;
		}
		for (int i = 0; i < RATE / 8; i++) {
			uint64_t w = 0;
			for (int b = 7; b >= 0; b--)
				w = (w << 8) | block[i * 8 + b];
			st[i] ^= w;
		}
		keccak_f1600(st);
		if (take < RATE)
			break;
		p += RATE;
		len -= RATE;
	}
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 8; b++)
			out[i * 8 + b] = (uint8_t)(st[i] >> (8 * b));
}

uint32_t exai__crc32(const void *p, size_t n)
{
	static uint32_t table[256];
	static _Atomic int ready;
	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	uint32_t c = 0xFFFFFFFFu;
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ b[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* ---- digits with a check ---------------------------------------------------------------- */

/* The digits of @s as values 0-9 into @d, skipping the bytes of @seps: their count, or -1 when
 * another byte or more than @max digits comes. */
static int digits_of(const char *s, size_t n, const char *seps, uint8_t *d, size_t max)
{
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= '0' && c <= '9') {
			if (nd == max)
				return -1;
			d[nd++] = (uint8_t)(c - '0');
		} else if (!c || !strchr(seps, c)) {
			return -1;
		}
	}
	return (int)nd;
}

static bool all_same(const uint8_t *d, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (d[i] != d[0])
			return false;
	return true;
}

/* The number the first @k digits of @d make. */
static long lead_num(const uint8_t *d, int k)
{
	long v = 0;
	for (int i = 0; i < k; i++)
		v = v * 10 + d[i];
	return v;
}

/* Luhn (mod 10, every second digit from the right doubled). */
static bool luhn_ok(const uint8_t *d, size_t n)
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v = d[n - 1 - i];
		if (i & 1)
			v = v * 2 > 9 ? v * 2 - 9 : v * 2;
		sum += v;
	}
	return sum % 10 == 0;
}

/* ---- payment cards ---------------------------------------------------------------------- */

static bool prefix_in(const uint8_t *d, int digits, long lo, long hi)
{
	long v = lead_num(d, digits);
	return v >= lo && v <= hi;
}

static bool card_issuer_ok(const uint8_t *d, size_t n)
{
	if (d[0] == 4)
		return n == 13 || n == 16 || n == 19; /* Visa */
	if (prefix_in(d, 2, 51, 55) || prefix_in(d, 4, 2221, 2720))
		return n == 16; /* Mastercard */
	if (prefix_in(d, 2, 34, 34) || prefix_in(d, 2, 37, 37))
		return n == 15; /* Amex */
	if (prefix_in(d, 4, 6011, 6011) || prefix_in(d, 3, 644, 649) || prefix_in(d, 2, 65, 65) ||
	    prefix_in(d, 6, 622126, 622925))
		return n >= 16 && n <= 19; /* Discover */
	if (prefix_in(d, 4, 3528, 3589))
		return n >= 16 && n <= 19; /* JCB */
	if (prefix_in(d, 3, 300, 305) || prefix_in(d, 4, 3095, 3095) || prefix_in(d, 2, 36, 36) ||
	    prefix_in(d, 2, 38, 39))
		return n >= 14 && n <= 19; /* Diners Club */
	if (prefix_in(d, 2, 62, 62) || prefix_in(d, 2, 81, 81))
		return n >= 16 && n <= 19; /* UnionPay */
	if (prefix_in(d, 2, 50, 50) || prefix_in(d, 2, 56, 69))
		return n >= 12 && n <= 19; /* Maestro */
	return false;
}

static bool v_luhn(const char *s, size_t n)
{
	uint8_t d[19];
	int nd = digits_of(s, n, " -", d, sizeof(d));
	return nd >= 12 && !all_same(d, (size_t)nd) && luhn_ok(d, (size_t)nd) && card_issuer_ok(d, (size_t)nd);
}

/* ---- IBAN ------------------------------------------------------------------------------- */

static const struct {
	char cc[3];
	unsigned char len;
} iban_lengths[] = {
	{ "AD", 24 }, { "AE", 23 }, { "AL", 28 }, { "AT", 20 }, { "AZ", 28 }, { "BA", 20 }, { "BE", 16 },
	{ "BG", 22 }, { "BH", 22 }, { "BI", 27 }, { "BR", 29 }, { "BY", 28 }, { "CH", 21 }, { "CR", 22 },
	{ "CY", 28 }, { "CZ", 24 }, { "DE", 22 }, { "DJ", 27 }, { "DK", 18 }, { "DO", 28 }, { "EE", 20 },
	{ "EG", 29 }, { "ES", 24 }, { "FI", 18 }, { "FK", 18 }, { "FO", 18 }, { "FR", 27 }, { "GB", 22 },
	{ "GE", 22 }, { "GI", 23 }, { "GL", 18 }, { "GR", 27 }, { "GT", 28 }, { "HR", 21 }, { "HU", 28 },
	{ "IE", 22 }, { "IL", 23 }, { "IQ", 23 }, { "IS", 26 }, { "IT", 27 }, { "JO", 30 }, { "KW", 30 },
	{ "KZ", 20 }, { "LB", 28 }, { "LC", 32 }, { "LI", 21 }, { "LT", 20 }, { "LU", 20 }, { "LV", 21 },
	{ "LY", 25 }, { "MC", 27 }, { "MD", 24 }, { "ME", 22 }, { "MK", 19 }, { "MN", 20 }, { "MR", 27 },
	{ "MT", 31 }, { "MU", 30 }, { "NI", 28 }, { "NL", 18 }, { "NO", 15 }, { "OM", 23 }, { "PK", 24 },
	{ "PL", 28 }, { "PS", 29 }, { "PT", 25 }, { "QA", 29 }, { "RO", 24 }, { "RS", 22 }, { "RU", 33 },
	{ "SA", 24 }, { "SC", 31 }, { "SD", 18 }, { "SE", 24 }, { "SI", 19 }, { "SK", 24 }, { "SM", 27 },
	{ "SO", 23 }, { "ST", 25 }, { "SV", 28 }, { "TL", 23 }, { "TN", 24 }, { "TR", 26 }, { "UA", 29 },
	{ "VA", 22 }, { "VG", 24 }, { "XK", 20 }, { "YE", 30 },
};

static bool v_iban(const char *s, size_t n)
{
	char b[40];
	size_t nb = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '-')
			continue;
		if (!isalnum(c) || nb == sizeof(b))
			return false;
		b[nb++] = (char)toupper(c);
	}
	if (nb < 15 || !isupper((unsigned char)b[0]) || !isupper((unsigned char)b[1]) ||
	    !isdigit((unsigned char)b[2]) || !isdigit((unsigned char)b[3]))
		return false;
	size_t want = 0;
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(iban_lengths); i++)
		if (b[0] == iban_lengths[i].cc[0] && b[1] == iban_lengths[i].cc[1])
			want = iban_lengths[i].len;
	if (want != nb)
		return false;
	unsigned rem = 0;
	for (size_t k = 0; k < nb; k++) {
		char c = b[(k + 4) % nb];
		if (isdigit((unsigned char)c))
			rem = (rem * 10 + (unsigned)(c - '0')) % 97;
		else
			rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
	}
	return rem == 1;
}

/* ---- US SSN ----------------------------------------------------------------------------- */

static bool v_us_ssn(const char *s, size_t n)
{
	uint8_t d[9];
	if (digits_of(s, n, "- ", d, sizeof(d)) != 9)
		return false;
	long area = lead_num(d, 3), group = d[3] * 10 + d[4], serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
	/* numbers printed on wallet inserts and in ads, used by many as their own */
	static const long misused[] = { 123456789, 78051120, 219099999 };
	for (size_t k = 0; k < EXAI__ARRAY_SIZE(misused); k++)
		if (lead_num(d, 9) == misused[k])
			return false;
	return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

/* ---- national numbers with check digits ------------------------------------------------- */

/* UK NHS number: 10 digits; the weights 10..2 on the first nine, 11 - (sum mod 11) (11 -> 0;
 * 10 is never issued) is the tenth. */
static bool v_uk_nhs(const char *s, size_t n)
{
	uint8_t d[10];
	if (digits_of(s, n, " -", d, sizeof(d)) != 10 || all_same(d, 10))
		return false;
	unsigned sum = 0;
	for (int i = 0; i < 9; i++)
		sum += d[i] * (unsigned)(10 - i);
	unsigned check = 11 - sum % 11;
	return check != 10 && check % 11 == d[9];
}

/* Verhoeff's dihedral-group check (the Aadhaar's last digit): multiplication in D5, the
 * permutation applied i times to the i-th digit from the right; valid when the product is 0. */
static bool verhoeff_ok(const uint8_t *d, size_t n)
{
	static const uint8_t mul[10][10] = {
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, { 1, 2, 3, 4, 0, 6, 7, 8, 9, 5 }, { 2, 3, 4, 0, 1, 7, 8, 9, 5, 6 },
		{ 3, 4, 0, 1, 2, 8, 9, 5, 6, 7 }, { 4, 0, 1, 2, 3, 9, 5, 6, 7, 8 }, { 5, 9, 8, 7, 6, 0, 4, 3, 2, 1 },
		{ 6, 5, 9, 8, 7, 1, 0, 4, 3, 2 }, { 7, 6, 5, 9, 8, 2, 1, 0, 4, 3 }, { 8, 7, 6, 5, 9, 3, 2, 1, 0, 4 },
		{ 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 },
	};
	static const uint8_t perm[8][10] = {
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, { 1, 5, 7, 6, 2, 8, 3, 0, 9, 4 }, { 5, 8, 0, 3, 7, 9, 6, 1, 4, 2 },
		{ 8, 9, 1, 6, 0, 4, 3, 5, 2, 7 }, { 9, 4, 5, 3, 1, 2, 6, 8, 7, 0 }, { 4, 2, 8, 6, 5, 7, 3, 9, 0, 1 },
		{ 2, 7, 9, 3, 8, 0, 6, 4, 1, 5 }, { 7, 0, 4, 6, 9, 1, 3, 2, 5, 8 },
	};
	unsigned c = 0;
	for (size_t i = 0; i < n; i++)
		c = mul[c][perm[i % 8][d[n - 1 - i]]];
	return c == 0;
}

/* Aadhaar: 12 digits, the first 2-9, Verhoeff's check. */
static bool v_in_aadhaar(const char *s, size_t n)
{
	uint8_t d[12];
	return digits_of(s, n, " -", d, sizeof(d)) == 12 && d[0] >= 2 && !all_same(d, 12) && verhoeff_ok(d, 12);
}

/* US ABA routing number: 9 digits, a Federal Reserve prefix (00-12, 21-32, 61-72, 80), and
 * 3 (d1 + d4 + d7) + 7 (d2 + d5 + d8) + (d3 + d6 + d9) = 0 (mod 10). */
static bool v_aba_routing(const char *s, size_t n)
{
	uint8_t d[9];
	if (digits_of(s, n, "", d, sizeof(d)) != 9 || all_same(d, 9))
		return false;
	long fed = lead_num(d, 2);
	if (!(fed <= 12 || (fed >= 21 && fed <= 32) || (fed >= 61 && fed <= 72) || fed == 80))
		return false;
	unsigned sum = 0;
	for (int i = 0; i < 9; i += 3)
		sum += 3u * d[i] + 7u * d[i + 1] + d[i + 2];
	return sum % 10 == 0;
}

/* Canadian SIN: 9 digits, Luhn, the first digit (the province) not 0 or 8 (never issued). */
static bool v_ca_sin(const char *s, size_t n)
{
	uint8_t d[9];
	return digits_of(s, n, " -", d, sizeof(d)) == 9 && d[0] != 0 && d[0] != 8 && luhn_ok(d, 9);
}

/* The Brazilian mod-11 check digit over d[0..n) with weights w[0..n): 0 when the remainder of
 * the weighted sum is 0 or 1, else 11 - remainder (CPF and CNPJ alike). */
static unsigned br_check(const uint8_t *d, const uint8_t *w, size_t n)
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += d[i] * (unsigned)w[i];
	return sum % 11 < 2 ? 0 : 11 - sum % 11;
}

/* CPF: 11 digits, not all the same, two check digits (weights 10..2, then 11..2). */
static bool v_br_cpf(const char *s, size_t n)
{
	static const uint8_t w[] = { 11, 10, 9, 8, 7, 6, 5, 4, 3, 2 };
	uint8_t d[11];
	return digits_of(s, n, ".-", d, sizeof(d)) == 11 && !all_same(d, 11) && br_check(d, w + 1, 9) == d[9] &&
	       br_check(d, w, 10) == d[10];
}

/* CNPJ: 14 digits, not all the same, two check digits (weights 5..2 9..2, then 6..2 9..2). */
static bool v_br_cnpj(const char *s, size_t n)
{
	static const uint8_t w[] = { 6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2 };
	uint8_t d[14];
	return digits_of(s, n, "./-", d, sizeof(d)) == 14 && !all_same(d, 14) && br_check(d, w + 1, 12) == d[12] &&
	       br_check(d, w, 13) == d[13];
}

/* ---- JWT -------------------------------------------------------------------------------- */

static bool v_jwt(const char *s, size_t n)
{
	/* two or three parts; the first two non-empty (the signature may be empty: alg none) */
	const char *dot1 = memchr(s, '.', n);
	if (!dot1 || dot1 == s)
		return false;
	const char *rest = dot1 + 1, *end = s + n;
	const char *dot2 = memchr(rest, '.', (size_t)(end - rest));
	const char *p2end = dot2 ? dot2 : end;
	if (p2end == rest)
		return false;
	if (dot2 && memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)))
		return false;
	for (const char *p = rest; p < end; p++)
		if (p != dot2 && (exai__b64_value((unsigned char)*p) < 0 || *p == '+' || *p == '/'))
			return false;
	size_t hl = (size_t)(dot1 - s);
	if (hl > 4096)
		return false;
	uint8_t hdr[3100];
	long dl = exai__b64_decode(hdr, s, hl);
	if (dl <= 0)
		return false;
	json_t *j = json_loadb((const char *)hdr, (size_t)dl, JSON_REJECT_DUPLICATES, NULL);
	bool ok = json_is_object(j) && json_object_get(j, "alg") != NULL;
	json_decref(j);
	return ok;
}

/* ---- base58check ------------------------------------------------------------------------ */

/* The value of each base58 character plus one (0: not in the alphabet). */
static const uint8_t b58_value[256] = {
#define B58(c, v) [c] = (v) + 1
	B58('1', 0), B58('2', 1), B58('3', 2), B58('4', 3), B58('5', 4), B58('6', 5), B58('7', 6), B58('8', 7),
	B58('9', 8), B58('A', 9), B58('B', 10), B58('C', 11), B58('D', 12), B58('E', 13), B58('F', 14),
	B58('G', 15), B58('H', 16), B58('J', 17), B58('K', 18), B58('L', 19), B58('M', 20), B58('N', 21),
	B58('P', 22), B58('Q', 23), B58('R', 24), B58('S', 25), B58('T', 26), B58('U', 27), B58('V', 28),
	B58('W', 29), B58('X', 30), B58('Y', 31), B58('Z', 32), B58('a', 33), B58('b', 34), B58('c', 35),
	B58('d', 36), B58('e', 37), B58('f', 38), B58('g', 39), B58('h', 40), B58('i', 41), B58('j', 42),
	B58('k', 43), B58('m', 44), B58('n', 45), B58('o', 46), B58('p', 47), B58('q', 48), B58('r', 49),
	B58('s', 50), B58('t', 51), B58('u', 52), B58('v', 53), B58('w', 54), B58('x', 55), B58('y', 56),
	B58('z', 57),
#undef B58
};

static bool v_base58check(const char *s, size_t n)
{
	/* the number in 32-bit limbs, least significant first (a byte at a time was four times
	 * the work); 150 characters are at most 110 bytes */
	uint32_t limb[28];
	size_t nl = 0;
	if (n == 0 || n > 150)
		return false;
	size_t zeros = 0;
	while (zeros < n && s[zeros] == '1')
		zeros++;
	for (size_t i = 0; i < n; i++) {
		uint64_t carry = b58_value[(unsigned char)s[i]];
		if (!carry--)
			return false;
		for (size_t k = 0; k < nl; k++) {
			carry += (uint64_t)limb[k] * 58;
			limb[k] = (uint32_t)carry;
			carry >>= 32;
		}
		if (carry) {
			if (nl == EXAI__ARRAY_SIZE(limb))
				return false;
			limb[nl++] = (uint32_t)carry;
		}
	}
	/* big-endian bytes: the leading zero bytes, then the number without its leading zeros */
	uint8_t dec[128];
	size_t blen = 4 * nl;
	while (blen && !(limb[(blen - 1) / 4] >> (8 * ((blen - 1) % 4)) & 0xff))
		blen--;
	size_t total = zeros + blen;
	if (total < 5 || total > sizeof(dec))
		return false;
	memset(dec, 0, zeros);
	for (size_t k = 0; k < blen; k++)
		dec[total - 1 - k] = (uint8_t)(limb[k / 4] >> (8 * (k % 4)));
	/* libsodium's SHA-256: no algorithm fetch and no lock per call, unlike OpenSSL 3's SHA256() */
	uint8_t h1[crypto_hash_sha256_BYTES], h2[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h1, dec, total - 4);
	crypto_hash_sha256(h2, h1, sizeof(h1));
	return memcmp(h2, dec + total - 4, 4) == 0;
}

/* ---- bech32 / bech32m ------------------------------------------------------------------- */

static bool v_bech32(const char *s, size_t n)
{
	static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
	if (n < 8 || n > 4096)
		return false;
	bool lower = false, upper = false;
	size_t sep = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126)
			return false;
		lower |= islower(c) != 0;
		upper |= isupper(c) != 0;
		if (c == '1')
			sep = i;
	}
	if ((lower && upper) || sep < 1 || sep + 7 > n)
		return false;
	uint32_t chk = 1;
#define POLYMOD_STEP(v)                                                                            \
	do {                                                                                       \
		uint32_t b_ = chk >> 25;                                                           \
		chk = ((chk & 0x1ffffff) << 5) ^ (v);                                              \
		if (b_ & 1) chk ^= 0x3b6a57b2;                                                     \
		if (b_ & 2) chk ^= 0x26508e6d;                                                     \
		if (b_ & 4) chk ^= 0x1ea119fa;                                                     \
		if (b_ & 8) chk ^= 0x3d4233dd;                                                     \
		if (b_ & 16) chk ^= 0x2a1462b3;                                                    \
	} while (0)
	for (size_t i = 0; i < sep; i++)
		POLYMOD_STEP((uint32_t)tolower((unsigned char)s[i]) >> 5);
	POLYMOD_STEP(0);
	for (size_t i = 0; i < sep; i++)
		POLYMOD_STEP((uint32_t)tolower((unsigned char)s[i]) & 31);
	for (size_t i = sep + 1; i < n; i++) {
		const char *p = memchr(charset, tolower((unsigned char)s[i]), 32);
		if (!p)
			return false;
		POLYMOD_STEP((uint32_t)(p - charset));
	}
#undef POLYMOD_STEP
	return chk == 1 || chk == 0x2bc830a3;
}

/* ---- Ethereum (EIP-55) ------------------------------------------------------------------ */

static bool v_eth_address(const char *s, size_t n)
{
	if (n != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return false;
	bool lower = false, upper = false;
	char low[40];
	for (int i = 0; i < 40; i++) {
		unsigned char c = (unsigned char)s[2 + i];
		if (!isxdigit(c))
			return false;
		lower |= c >= 'a' && c <= 'f';
		upper |= c >= 'A' && c <= 'F';
		low[i] = (char)tolower(c);
	}
	int distinct = 0;
	bool seen[16] = { false };
	for (int i = 0; i < 40; i++) {
		int v = isdigit((unsigned char)low[i]) ? low[i] - '0' : low[i] - 'a' + 10;
		if (!seen[v]) {
			seen[v] = true;
			distinct++;
		}
	}
	if (distinct <= 2) /* 0x000...0 and the like */
		return false;
	if (!(lower && upper))
		return true; /* no checksum to check */
	uint8_t h[32];
	exai__keccak256(h, low, 40);
	for (int i = 0; i < 40; i++) {
		unsigned char c = (unsigned char)s[2 + i];
		if (!isalpha(c))
			continue;
		int nib = (i & 1) ? (h[i / 2] & 0x0f) : (h[i / 2] >> 4);
		if ((nib >= 8) != (c >= 'A' && c <= 'F'))
			return false;
	}
	return true;
}

/* ---- CRC-32 in base62 (GitHub, npm) ----------------------------------------------------- */

static bool v_crc32_base62(const char *s, size_t n)
{
	static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	if (n < 8)
		return false;
	size_t body_end = n - 6;
	const char *us = memchr(s, '_', body_end);
	if (!us)
		return false;
	const char *body = us + 1;
	size_t blen = (size_t)(s + body_end - body);
	if (!blen)
		return false;
	uint32_t crc = exai__crc32(body, blen);
	char want[6];
	for (int i = 5; i >= 0; i--) {
		want[i] = b62[crc % 62];
		crc /= 62;
	}
	return memcmp(want, s + body_end, 6) == 0;
}

/* ---- IP addresses ----------------------------------------------------------------------- */

static bool v_ipv4_public(const char *s, size_t n)
{
	unsigned o[4];
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		if (k) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		size_t d0 = i;
		unsigned v = 0;
		while (i < n && isdigit((unsigned char)s[i]) && i - d0 < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == d0 || v > 255 || (i - d0 > 1 && s[d0] == '0'))
			return false;
		o[k] = v;
	}
	if (i < n && s[i] == ':') { /* an optional port */
		size_t d0 = ++i;
		unsigned port = 0;
		while (i < n && isdigit((unsigned char)s[i]) && i - d0 < 5)
			port = port * 10 + (unsigned)(s[i++] - '0');
		if (i == d0 || port == 0 || port > 65535)
			return false;
	}
	if (i != n)
		return false;
	if (o[0] == 0 || o[0] == 10 || o[0] == 127 || o[0] >= 224)
		return false;
	if ((o[0] == 1 && o[1] == 2 && o[2] == 3 && o[3] == 4) || (o[0] == 4 && o[1] == 3 && o[2] == 2 && o[3] == 1))
		return false; /* the universal examples */
	if (o[0] == 100 && o[1] >= 64 && o[1] < 128)
		return false;
	if (o[0] == 169 && o[1] == 254)
		return false;
	if (o[0] == 172 && o[1] >= 16 && o[1] < 32)
		return false;
	if (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
		return false;
	if (o[0] == 192 && o[1] == 168)
		return false;
	if (o[0] == 198 && (o[1] == 18 || o[1] == 19))
		return false;
	if (o[0] == 198 && o[1] == 51 && o[2] == 100)
		return false;
	if (o[0] == 203 && o[1] == 0 && o[2] == 113)
		return false;
	return true;
}

static bool v_ipv6(const char *s, size_t n)
{
	char b[64];
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	const char *pct = memchr(s, '%', n);
	if (pct)
		n = (size_t)(pct - s);
	if (n >= sizeof(b) || n < 2)
		return false;
	memcpy(b, s, n);
	b[n] = 0;
	uint8_t a[16];
	if (inet_pton(AF_INET6, b, a) != 1)
		return false;
	static const uint8_t zero[16], loop[16] = { [15] = 1 };
	if (!memcmp(a, zero, 16) || !memcmp(a, loop, 16))
		return false;
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return false;
	return true;
}

/* ---- phone numbers ---------------------------------------------------------------------- */

static bool v_phone(const char *s, size_t n)
{
	size_t digits = 0, dots = 0, other_sep = 0, groups = 0;
	int g[8] = { 0 }; /* digits per group */
	bool in = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isdigit(c)) {
			digits++;
			if (!in) {
				in = true;
				groups++;
			}
			if (groups <= 8)
				g[groups - 1]++;
			continue;
		}
		in = false;
		if (c == '.')
			dots++;
		else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '+' || c == '/')
			other_sep++;
		else
			return false;
	}
	if (digits < 7 || digits > 15)
		return false;
	/* all one digit: 0000000 */
	bool same = true;
	char first = 0;
	for (size_t i = 0; i < n; i++)
		if (isdigit((unsigned char)s[i])) {
			if (!first)
				first = s[i];
			else if (s[i] != first)
				same = false;
		}
	if (same)
		return false;
	/* a version: only dots between the groups, at least two of them, and a one-digit group */
	bool one_digit_group = false;
	for (size_t k = 0; k < groups && k < 8; k++)
		one_digit_group |= g[k] == 1;
	if (dots >= 2 && !other_sep && one_digit_group)
		return false;
	/* a date: 2026-11-23, 23/11/2026, 2026.11.23, optionally with a time */
	if (groups == 3 && ((g[0] == 4 && g[1] <= 2 && g[2] <= 2) || (g[0] <= 2 && g[1] <= 2 && g[2] == 4)) &&
	    s[0] != '+' && s[0] != '(')
		return false;
	return true;
}

/* ---- e-mail ----------------------------------------------------------------------------- */

static bool v_email(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || at == s || (size_t)(at - s) > 64 || memchr(at + 1, '@', n - (size_t)(at + 1 - s)))
		return false;
	for (const char *p = s; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		if (!isalnum(c) && !strchr(".!#$%&'*+/=?^_`{|}~-", c))
			return false;
	}
	if (s[0] == '.' || at[-1] == '.' || memmem(s, (size_t)(at - s), "..", 2))
		return false;
	/* a scale suffix as the first domain label: logo@2x.png, icon@1.5x.svg */
	{
		const char *q = at + 1;
		while (q < s + n && (isdigit((unsigned char)*q) || *q == '.'))
			q++;
		if (q > at + 1 && q < s + n && (*q == 'x' || *q == 'X') && (q + 1 == s + n || q[1] == '.'))
			return false;
	}
	const char *d = at + 1, *end = s + n;
	size_t labels = 0;
	const char *last = d;
	for (const char *p = d; p <= end; p++) {
		if (p == end || *p == '.') {
			size_t l = (size_t)(p - last);
			if (l == 0 || l > 63 || last[0] == '-' || p[-1] == '-')
				return false;
			labels++;
			if (p == end)
				break;
			last = p + 1;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
	}
	if (labels < 2)
		return false;
	size_t tl = (size_t)(end - last);
	if (tl < 2 || tl > 24)
		return false;
	for (const char *p = last; p < end; p++)
		if (!isalpha((unsigned char)*p))
			return false;
	/* a file name (logo@2x.png), not an address */
	static const char *const ext[] = { "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "js", "mjs", "ts",
					   "css", "map", "json", "xml", "yaml", "yml", "txt", "md", "html", "htm", "php",
					   "py", "rb", "go", "rs", "java", "c", "h", "cpp", "so", "dll", "exe", "zip", "gz",
					   "tar", "tgz", "pdf", "woff", "woff2", "ttf", "otf", "lock", "toml", "ini", "cfg",
					   "conf", "log", "sh", "bat", "ps1", "mp3", "mp4", "wav", "avi", "mov", "git" };
	for (size_t k = 0; k < EXAI__ARRAY_SIZE(ext); k++)
		if (strlen(ext[k]) == tl && strncasecmp(last, ext[k], tl) == 0)
			return false;
	return true;
}

/* ---- placeholders ----------------------------------------------------------------------- */

/* Rule 9's placeholder words (at most 64: a bit each). */
const char *const exai__placeholder_words[] = {
	"xxxx", "****", "####", "...", "____", "----", "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2",
	"changeme", "change_me", "change-me", "changeit", "your_", "your-", "yourkey", "yoursecret", "yourtoken",
	"yourpassword", "<your", "example", "dummy", "redacted", "placeholder", "sample", "insert", "replace_me",
	"replaceme", "fake", "notreal", "not_real", "not-real", "lorem", "todo", "fixme", "goes_here", "goeshere",
	"here>", "put_your", "enter_your", "secret_here", "token_here", "key_here", "password_here", "foobar",
};

const size_t exai__placeholder_words_count = EXAI__ARRAY_SIZE(exai__placeholder_words);

/* Rule 11's sequences: keyboard and alphabet orders, the cyclic ones written twice. */
const char *const exai__placeholder_sequences[] = {
	"01234567890123456789", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
	"qwertyuiopasdfghjklzxcvbnm", "98765432109876543210", "zyxwvutsrqponmlkjihgfedcbazyxwvutsrqponmlkjihgfedcba",
};
const size_t exai__placeholder_sequences_count = EXAI__ARRAY_SIZE(exai__placeholder_sequences);
#define N_SEQ EXAI__ARRAY_SIZE(exai__placeholder_sequences)

void exai__words_init(struct exai__words *ws, const char *const *w, size_t n)
{
	memset(ws, 0, sizeof(*ws));
	ws->w = w;
	ws->n = n < 64 ? n : 64;
	for (size_t k = 0; k < ws->n; k++) {
		ws->first[(unsigned char)tolower((unsigned char)w[k][0])] |= 1ull << k;
		ws->second[(unsigned char)tolower((unsigned char)w[k][1])] |= 1ull << k;
		ws->len[k] = (uint8_t)strlen(w[k]);
	}
}

bool exai__words_in(const struct exai__words *ws, const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t m = ws->first[(unsigned char)tolower((unsigned char)s[i])] &
			     ws->second[(unsigned char)tolower((unsigned char)s[i + 1])];
		for (; m; m &= m - 1) {
			int k = __builtin_ctzll(m);
			if (ws->len[k] <= n - i && strncasecmp(s + i, ws->w[k], ws->len[k]) == 0)
				return true;
		}
	}
	return false;
}

/* placeholder_words: rule 9's; seq_next[k][c]: the byte after c in sequence k (0: none; each
 * byte is followed by the same one wherever it occurs in a sequence, as the cyclic ones are
 * written whole). */
static struct exai__words placeholder_words;
static unsigned char seq_next[N_SEQ][256];
static pthread_once_t placeholder_once = PTHREAD_ONCE_INIT;

static void placeholder_init(void)
{
	_Static_assert(EXAI__ARRAY_SIZE(exai__placeholder_words) <= 64, "a bit per word");
	exai__words_init(&placeholder_words, exai__placeholder_words, EXAI__ARRAY_SIZE(exai__placeholder_words));
	for (size_t k = 0; k < N_SEQ; k++)
		for (const char *q = exai__placeholder_sequences[k]; q[1]; q++)
			seq_next[k][(unsigned char)q[0]] = (unsigned char)q[1];
}

static bool ident_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$';
}

/* An identifier in snake or camel case, `[A-Za-z_$][a-z0-9_$]*([A-Z][a-z0-9_$]+)*` (rules 3
 * and 4): `getpass`, `db_password`, `getPass`, `MyClass`; not `wUBCCkZZk` or `a0AfH6SMBx`. */
static bool ident_snake_camel(const char *s, size_t n)
{
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == '$'))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isupper(c)) {
			if (i + 1 == n || isupper((unsigned char)s[i + 1]))
				return false;
		} else if (!islower(c) && !isdigit(c) && c != '_' && c != '$') {
			return false;
		}
	}
	return true;
}

/* An upper-case identifier, `[A-Z][A-Z0-9_]*` (rule 4): `SECRET`, `DB_PASS`. */
static bool ident_upper(const char *s, size_t n)
{
	if (!n || !isupper((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* A lower-case word of 3+ characters (rule 4): lower-case letters and `_`, starting with a
 * letter (`env`, `db_password`). */
static bool lower_word(const char *s, size_t n)
{
	if (n < 3 || !islower((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!islower((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* Rule 3: an optionally dotted snake/camel identifier immediately followed by `(`, or `::` /
 * `->` anywhere. */
static bool looks_like_call(const char *s, size_t n)
{
	if (memmem(s, n, "::", 2) || memmem(s, n, "->", 2))
		return true;
	size_t i = 0;
	for (;;) {
		size_t j = i;
		while (j < n && ident_char((unsigned char)s[j]))
			j++;
		if (!ident_snake_camel(s + i, j - i) || j == n)
			return false;
		if (s[j] == '(')
			return true;
		if (s[j] != '.')
			return false;
		i = j + 1;
	}
}

/* Rule 4: a CONSTANT_NAME `[A-Z][A-Z0-9]*(_[A-Z0-9]+)+`, or a dotted path (at most 128
 * characters) of two or more identifiers of at most 32 characters, each snake/camel or upper
 * case, one of them a lower-case word of 3+ characters. */
static bool looks_like_name(const char *s, size_t n)
{
	if (isupper((unsigned char)s[0]) && s[n - 1] != '_' && !memmem(s, n, "__", 2) && memchr(s, '_', n)) {
		bool constant = true;
		for (size_t i = 1; i < n && constant; i++)
			constant = isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_';
		if (constant)
			return true;
	}
	if (n > 128)
		return false;
	size_t parts = 0;
	bool word = false;
	for (size_t i = 0; i <= n;) {
		const char *dot = memchr(s + i, '.', n - i);
		size_t j = dot ? (size_t)(dot - s) : n;
		size_t l = j - i;
		if (l == 0 || l > 32 || !(ident_snake_camel(s + i, l) || ident_upper(s + i, l)))
			return false;
		word |= lower_word(s + i, l);
		parts++;
		i = j + 1;
	}
	return parts >= 2 && word;
}

/* Rule 5: a printf placeholder `%[(name)][-+# ]{s,d,r,f}` that is not a URL escape (`%` and
 * two hex digits: `%40`, `%df`), or `{}` / `{0}`..`{9}`. */
static bool has_format_placeholder(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] == '{' && (s[i + 1] == '}' || (isdigit((unsigned char)s[i + 1]) && i + 2 < n && s[i + 2] == '}')))
			return true;
		if (s[i] != '%')
			continue;
		if (i + 2 < n && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2]))
			continue; /* a URL escape */
		size_t j = i + 1;
		if (s[j] == '(') {
			size_t k = j + 1;
			while (k < n && ident_char((unsigned char)s[k]))
				k++;
			if (k == j + 1 || k == n || s[k] != ')')
				continue;
			j = k + 1;
		}
		if (j < n && strchr("-+# ", s[j]) && s[j])
			j++;
		if (j < n && strchr("sdrf", s[j]) && s[j])
			return true;
	}
	return false;
}

static bool in_list(const char *s, size_t n, const char *const *list, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		if (strlen(list[i]) == n && strncasecmp(s, list[i], n) == 0)
			return true;
	return false;
}

/* rule 8 of the pack's README: values that are placeholders as a whole */
static const char *const placeholder_values[] = {
	"abc123", "access_token", "admin", "api-key", "api_key", "apikey", "authorization", "bar", "basic", "baz",
	"bearer", "blank", "credentials", "default", "demo", "empty", "env", "example", "false", "foo", "guest",
	"hunter2", "key", "letmein", "login", "myapikey", "mypassword", "mysecret", "mytoken", "n/a", "na", "nil",
	"none", "null", "optional", "pass", "passwd", "password", "password1", "password123", "pwd", "qwerty",
	"required", "root", "sample", "secret", "secret123", "secret_key", "str", "string", "tbd", "test", "test123",
	"testing", "tests", "token", "true", "undefined", "unknown", "unset", "user", "username", "value",
};

/* Rule 11: a substring (4+ characters) of a keyboard or alphabet sequence, or containing 8
 * consecutive characters of one. */
static bool sequential(const char *s, size_t n)
{
	char low[64];
	if (n >= 4 && n <= sizeof(low)) {
		for (size_t i = 0; i < n; i++)
			low[i] = (char)tolower((unsigned char)s[i]);
		for (size_t k = 0; k < N_SEQ; k++)
			if (memmem(exai__placeholder_sequences[k], strlen(exai__placeholder_sequences[k]), low, n))
				return true;
	}
	/* 8 consecutive characters of a sequence are 7 steps in a row, each to the byte that
	 * follows in that sequence */
	pthread_once(&placeholder_once, placeholder_init);
	unsigned run[N_SEQ] = { 0 };
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char a = (unsigned char)tolower((unsigned char)s[i]), b = (unsigned char)tolower((unsigned char)s[i + 1]);
		for (size_t k = 0; k < N_SEQ; k++) {
			run[k] = seq_next[k][a] && seq_next[k][a] == b ? run[k] + 1 : 0;
			if (run[k] >= 7)
				return true;
		}
	}
	return false;
}

/* The `not_placeholder` validator: the 13 rules of lib/scrub/pack/README.md (and
 * docs/formats/scrub-pack.md), in their order. */
static bool v_not_placeholder(const char *s, size_t n)
{
	static const char *const words7[] = { "here", "some", "your", "token", "secret", "password", "passwd",
					      "apikey", "key", "value", "dummy", "test", "sample", "foo", "none",
					      "null", "empty", "default", "insert", "replace" };
	/* trim white space, then quotes */
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	while (n && (*s == '\'' || *s == '"' || *s == '`'))
		s++, n--;
	while (n && (s[n - 1] == '\'' || s[n - 1] == '"' || s[n - 1] == '`'))
		n--;
	/* 1: empty, one repeated character */
	if (!n)
		return false;
	bool one = true;
	for (size_t i = 1; i < n; i++)
		one &= s[i] == s[0];
	if (one)
		return false;
	/* 2: template or variable references */
	if ((n >= 3 && s[0] == '$' && (s[1] == '{' || s[1] == '(')) || (n >= 2 && s[0] == '$' && (isalpha((unsigned char)s[1]) || s[1] == '_')) ||
	    (n >= 3 && s[0] == '%' && s[n - 1] == '%') || (s[0] == '<' && s[n - 1] == '>') ||
	    (n >= 4 && s[0] == '{' && s[1] == '{' && s[n - 1] == '}') || (n >= 3 && s[0] == '#' && s[1] == '{' && s[n - 1] == '}') ||
	    (n >= 3 && s[0] == '@' && s[n - 1] == '@'))
		return false;
	if (n >= 3 && (s[0] == '[' || s[0] == '{') && s[n - 1] == (s[0] == '[' ? ']' : '}')) {
		bool words = true;
		for (size_t i = 1; i + 1 < n; i++)
			words &= isalpha((unsigned char)s[i]) || s[i] == ' ' || s[i] == '_' || s[i] == '-';
		if (words)
			return false;
	}
	/* 3: a function call, scope or member access */
	if (looks_like_call(s, n))
		return false;
	/* 4: CONSTANT_NAME or a dotted path */
	if (looks_like_name(s, n))
		return false;
	/* 5: format placeholders */
	if (has_format_placeholder(s, n))
		return false;
	/* 6: paths and digest labels */
	if (s[0] == '/' || (n >= 2 && s[0] == '~' && s[1] == '/') ||
	    (n >= 3 && isalpha((unsigned char)s[0]) && s[1] == ':' && s[2] == '\\'))
		return false;
	{
		static const char *const dl[] = { "sha1", "sha256", "sha384", "sha512", "md5" };
		for (size_t k = 0; k < EXAI__ARRAY_SIZE(dl); k++) {
			size_t l = strlen(dl[k]);
			if (n > l && strncasecmp(s, dl[k], l) == 0 && (s[l] == '-' || s[l] == ':'))
				return false;
		}
	}
	/* 7: 12+ of lower-case letters, '_' and '-' with a placeholder word */
	if (n >= 12) {
		bool lw = true;
		for (size_t i = 0; i < n && lw; i++)
			lw = islower((unsigned char)s[i]) || s[i] == '_' || s[i] == '-';
		for (size_t k = 0; lw && k < EXAI__ARRAY_SIZE(words7); k++)
			if (memmem(s, n, words7[k], strlen(words7[k])))
				return false;
	}
	/* 8: a placeholder value */
	if (in_list(s, n, placeholder_values, EXAI__ARRAY_SIZE(placeholder_values)))
		return false;
	/* 9: containing a placeholder word */
	pthread_once(&placeholder_once, placeholder_init);
	if (exai__words_in(&placeholder_words, s, n))
		return false;
	/* 10: only masking characters */
	{
		bool mask = true;
		for (size_t i = 0; i < n && mask;) {
			if (n - i >= 3 && memcmp(s + i, "\xe2\x80\xa2", 3) == 0) {
				i += 3;
				continue;
			}
			mask = strchr("xX*#.-_0 ", s[i]) != NULL;
			i++;
		}
		if (mask)
			return false;
	}
	/* 11: sequences */
	if (sequential(s, n))
		return false;
	/* 12: encrypted values */
	if ((n >= 4 && strncmp(s, "ENC[", 4) == 0) || (n >= 7 && strncmp(s, "vault:v", 7) == 0) ||
	    (n >= 6 && strncmp(s, "AQICAH", 6) == 0))
		return false;
	/* 13: user:password of placeholders, or both parts at most 3 characters */
	const char *colon = memchr(s, ':', n);
	if (colon) {
		const char *u = s, *pw = colon + 1;
		size_t ul = (size_t)(colon - s), pl = n - ul - 1;
		while (ul && (*u == '\'' || *u == '"'))
			u++, ul--;
		while (ul && (u[ul - 1] == '\'' || u[ul - 1] == '"'))
			ul--;
		while (pl && (*pw == '\'' || *pw == '"'))
			pw++, pl--;
		while (pl && (pw[pl - 1] == '\'' || pw[pl - 1] == '"'))
			pl--;
		bool up = !ul || in_list(u, ul, placeholder_values, EXAI__ARRAY_SIZE(placeholder_values));
		bool pp = !pl || in_list(pw, pl, placeholder_values, EXAI__ARRAY_SIZE(placeholder_values));
		if ((up && pp) || (ul <= 3 && pl <= 3))
			return false;
	}
	return true;
}

bool exai__validate(int v, const char *s, size_t n)
{
	switch (v) {
	case EXAI__V_NONE:
		return true;
	case EXAI__V_LUHN:
		return v_luhn(s, n);
	case EXAI__V_IBAN:
		return v_iban(s, n);
	case EXAI__V_US_SSN:
		return v_us_ssn(s, n);
	case EXAI__V_JWT:
		return v_jwt(s, n);
	case EXAI__V_BASE58CHECK:
		return v_base58check(s, n);
	case EXAI__V_BECH32:
		return v_bech32(s, n);
	case EXAI__V_ETH_ADDRESS:
		return v_eth_address(s, n);
	case EXAI__V_CRC32_BASE62:
		return v_crc32_base62(s, n);
	case EXAI__V_IPV4_PUBLIC:
		return v_ipv4_public(s, n);
	case EXAI__V_IPV6:
		return v_ipv6(s, n);
	case EXAI__V_PHONE:
		return v_phone(s, n);
	case EXAI__V_EMAIL:
		return v_email(s, n);
	case EXAI__V_NOT_PLACEHOLDER:
		return v_not_placeholder(s, n);
	case EXAI__V_UK_NHS:
		return v_uk_nhs(s, n);
	case EXAI__V_IN_AADHAAR:
		return v_in_aadhaar(s, n);
	case EXAI__V_ABA_ROUTING:
		return v_aba_routing(s, n);
	case EXAI__V_CA_SIN:
		return v_ca_sin(s, n);
	case EXAI__V_BR_CPF:
		return v_br_cpf(s, n);
	case EXAI__V_BR_CNPJ:
		return v_br_cnpj(s, n);
	}
	return false;
}
