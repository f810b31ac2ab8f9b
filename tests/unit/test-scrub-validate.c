/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub-validate: the validators, Keccak-256 and CRC-32 against known vectors. */
#include "scrub/scrub-internal.h"
#include "test.h"

static bool V(int v, const char *s)
{
	return exai__validate(v, s, strlen(s));
}

static void hex_eq(const uint8_t *h, const char *want)
{
	char got[65];
	for (int i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", h[i]);
	CHECK_STREQ(got, want);
}

static void keccak(void)
{
	uint8_t h[32];
	exai__keccak256(h, "", 0);
	hex_eq(h, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
	exai__keccak256(h, "abc", 3);
	hex_eq(h, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
	/* exactly one rate block (136 bytes) and more: the padding goes into a block of its own */
	char buf[200];
	memset(buf, 'a', sizeof(buf));
	exai__keccak256(h, buf, 136);
	hex_eq(h, "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e");
	exai__keccak256(h, buf, 200);
	hex_eq(h, "96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d");
}

static void checksums(void)
{
	CHECK(exai__crc32("123456789", 9) == 0xCBF43926u);
	CHECK(V(EXAI__V_BASE58CHECK, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
	CHECK(V(EXAI__V_BASE58CHECK, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
	CHECK(!V(EXAI__V_BASE58CHECK, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"));
	CHECK(!V(EXAI__V_BASE58CHECK, "0OIl"));
	CHECK(V(EXAI__V_BASE58CHECK, "1111111111111111111114oLvT2")); /* leading zero bytes (hash160 0) */
	CHECK(V(EXAI__V_BASE58CHECK, "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ")); /* WIF */
	CHECK(!V(EXAI__V_BASE58CHECK, "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTK"));
	CHECK(!V(EXAI__V_BASE58CHECK, "1111111111111111111114oLvT3"));
	CHECK(V(EXAI__V_BECH32, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"));
	CHECK(V(EXAI__V_BECH32, "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"));
	CHECK(V(EXAI__V_BECH32, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0")); /* bech32m */
	CHECK(!V(EXAI__V_BECH32, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"));
	CHECK(!V(EXAI__V_BECH32, "bc1Qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")); /* mixed case */
	CHECK(V(EXAI__V_ETH_ADDRESS, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"));
	CHECK(V(EXAI__V_ETH_ADDRESS, "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"));
	CHECK(V(EXAI__V_ETH_ADDRESS, "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"));
	CHECK(V(EXAI__V_ETH_ADDRESS, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")); /* no checksum */
	CHECK(!V(EXAI__V_ETH_ADDRESS, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"));
	/* crc32_base62: build a token the way GitHub does and check it, then break it */
	static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char tok[64] = "ghp_Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3";
	uint32_t crc = exai__crc32(tok + 4, strlen(tok) - 4);
	char sum[7] = { 0 };
	for (int i = 5; i >= 0; i--) {
		sum[i] = b62[crc % 62];
		crc /= 62;
	}
	strcat(tok, sum);
	CHECK(V(EXAI__V_CRC32_BASE62, tok));
	tok[10] ^= 1;
	CHECK(!V(EXAI__V_CRC32_BASE62, tok));
}

static void pii(void)
{
	CHECK(V(EXAI__V_LUHN, "4111 1111 1111 1111"));
	CHECK(V(EXAI__V_LUHN, "5555-5555-5555-4444"));
	CHECK(V(EXAI__V_LUHN, "378282246310005"));       /* Amex */
	CHECK(V(EXAI__V_LUHN, "6011111111111117"));      /* Discover */
	CHECK(V(EXAI__V_LUHN, "3530111333300000"));      /* JCB */
	CHECK(V(EXAI__V_LUHN, "30569309025904"));        /* Diners */
	CHECK(V(EXAI__V_LUHN, "2223003122003222"));      /* Mastercard 2-series */
	CHECK(!V(EXAI__V_LUHN, "4111 1111 1111 1112"));  /* Luhn fails */
	CHECK(!V(EXAI__V_LUHN, "1234567812345670"));     /* Luhn ok, no issuer */
	CHECK(!V(EXAI__V_LUHN, "37828224631000"));       /* Amex length wrong */
	CHECK(V(EXAI__V_IBAN, "DE89 3704 0044 0532 0130 00"));
	CHECK(V(EXAI__V_IBAN, "GB82WEST12345698765432"));
	CHECK(V(EXAI__V_IBAN, "NO9386011117947"));
	CHECK(!V(EXAI__V_IBAN, "DE89 3704 0044 0532 0130 01"));
	CHECK(!V(EXAI__V_IBAN, "DE89370400440532013000 0")); /* length */
	CHECK(!V(EXAI__V_IBAN, "XX89370400440532013000"));
	CHECK(V(EXAI__V_US_SSN, "536-22-1234"));
	CHECK(!V(EXAI__V_US_SSN, "000-22-1234"));
	CHECK(!V(EXAI__V_US_SSN, "666-22-1234"));
	CHECK(!V(EXAI__V_US_SSN, "912-22-1234"));
	CHECK(!V(EXAI__V_US_SSN, "536-00-1234"));
	CHECK(!V(EXAI__V_US_SSN, "536-22-0000"));
	/* the publicly misused numbers, with or without separators */
	CHECK(!V(EXAI__V_US_SSN, "123-45-6789"));
	CHECK(!V(EXAI__V_US_SSN, "078-05-1120"));
	CHECK(!V(EXAI__V_US_SSN, "219 09 9999"));
	CHECK(!V(EXAI__V_US_SSN, "219099999"));
	CHECK(V(EXAI__V_US_SSN, "123-45-6788"));
	CHECK(V(EXAI__V_US_SSN, "078-05-1121"));
	CHECK(V(EXAI__V_IPV4_PUBLIC, "8.8.8.8"));
	CHECK(V(EXAI__V_IPV4_PUBLIC, "203.0.114.7"));
	CHECK(!V(EXAI__V_IPV4_PUBLIC, "10.1.2.3"));
	CHECK(!V(EXAI__V_IPV4_PUBLIC, "192.168.0.1"));
	CHECK(!V(EXAI__V_IPV4_PUBLIC, "172.20.0.1"));
	CHECK(!V(EXAI__V_IPV4_PUBLIC, "127.0.0.1"));
	CHECK(!V(EXAI__V_IPV4_PUBLIC, "256.1.1.1"));
	CHECK(!V(EXAI__V_IPV4_PUBLIC, "1.2.3"));
	CHECK(V(EXAI__V_IPV4_PUBLIC, "151.17.72.241:8443"));
	CHECK(!V(EXAI__V_IPV4_PUBLIC, "151.17.72.241:98443"));
	CHECK(V(EXAI__V_IPV6, "2606:4700:4700::1111"));
	CHECK(!V(EXAI__V_IPV6, "::1"));
	CHECK(!V(EXAI__V_IPV6, "::"));
	CHECK(!V(EXAI__V_IPV6, "2001:db8::1"));
	CHECK(!V(EXAI__V_IPV6, "2001:zz8::1"));
	CHECK(V(EXAI__V_PHONE, "+1 (415) 555-0132"));
	CHECK(V(EXAI__V_PHONE, "030 1234567"));
	CHECK(!V(EXAI__V_PHONE, "2026-11-23"));
	CHECK(!V(EXAI__V_PHONE, "1.2.3.4567"));
	CHECK(V(EXAI__V_PHONE, "646.555.0199"));
	CHECK(!V(EXAI__V_PHONE, "123456"));
	CHECK(!V(EXAI__V_PHONE, "0000000000"));
	CHECK(V(EXAI__V_EMAIL, "fatima.olga21@corp.example"));
	CHECK(!V(EXAI__V_EMAIL, "a@b"));
	CHECK(!V(EXAI__V_EMAIL, "a@-b.com"));
	CHECK(!V(EXAI__V_EMAIL, "a@b.c0m"));
	CHECK(!V(EXAI__V_EMAIL, "logo@2x.png"));
	CHECK(V(EXAI__V_JWT, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"));
	CHECK(!V(EXAI__V_JWT, "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc")); /* no alg */
	CHECK(!V(EXAI__V_JWT, "abc.def"));
}

/* Every change of one digit of @valid (a number its validator accepts) is rejected, and with
 * @swaps every swap of two adjacent different digits too. */
static void detects_errors(int v, const char *valid, bool swaps)
{
	char t[32];
	size_t n = strlen(valid);
	CHECK(n < sizeof(t));
	CHECK(V(v, valid));
	for (size_t i = 0; i < n; i++) {
		if (valid[i] < '0' || valid[i] > '9')
			continue;
		for (char c = '0'; c <= '9'; c++) {
			if (c == valid[i])
				continue;
			memcpy(t, valid, n + 1);
			t[i] = c;
			if (V(v, t)) {
				fprintf(stderr, "%s: '%s' accepted (a digit of '%s' changed)\n", exai__validator_name(v), t, valid);
				test_failures++;
			}
		}
		size_t j = i + 1;
		while (j < n && (valid[j] < '0' || valid[j] > '9'))
			j++;
		if (!swaps || j == n || valid[i] == valid[j])
			continue;
		memcpy(t, valid, n + 1);
		t[i] = valid[j];
		t[j] = valid[i];
		if (V(v, t)) {
			fprintf(stderr, "%s: '%s' accepted (two digits of '%s' swapped)\n", exai__validator_name(v), t, valid);
			test_failures++;
		}
	}
}

/* The national numbers' check digits. */
static void national(void)
{
	/* UK NHS (mod 11): NHS Digital's test number, a synthetic one; 10 is never a check digit */
	detects_errors(EXAI__V_UK_NHS, "943 476 5919", false);
	detects_errors(EXAI__V_UK_NHS, "4334229042", false);
	CHECK(V(EXAI__V_UK_NHS, "943-476-5919"));
	CHECK(!V(EXAI__V_UK_NHS, "0000000000"));     /* mod 11 holds, all one digit */
	CHECK(!V(EXAI__V_UK_NHS, "417 769 9960"));   /* the pack's old example: check digit 9 */
	CHECK(!V(EXAI__V_UK_NHS, "943 476 591"));    /* 9 digits */
	CHECK(!V(EXAI__V_UK_NHS, "943.476.5919"));   /* not a separator of the pattern */
	CHECK(!V(EXAI__V_UK_NHS, "1234567890"));     /* remainder 1: check digit 10, never issued */
	/* Aadhaar (Verhoeff): Verhoeff catches every single error and adjacent transposition */
	detects_errors(EXAI__V_IN_AADHAAR, "7114 7104 9746", true);
	detects_errors(EXAI__V_IN_AADHAAR, "812806192057", true);
	CHECK(!V(EXAI__V_IN_AADHAAR, "198259791907"));   /* Verhoeff holds, starts with 1 */
	CHECK(!V(EXAI__V_IN_AADHAAR, "8086 9619 8308")); /* the pack's old example */
	CHECK(!V(EXAI__V_IN_AADHAAR, "2363"));           /* Verhoeff holds (Wikipedia's 236 -> 3), too short */
	/* US ABA routing: Federal Reserve Bank of Boston, JPMorgan Chase NY, Bank of America TX */
	detects_errors(EXAI__V_ABA_ROUTING, "011000015", false);
	detects_errors(EXAI__V_ABA_ROUTING, "021000021", false);
	detects_errors(EXAI__V_ABA_ROUTING, "111000025", false);
	CHECK(!V(EXAI__V_ABA_ROUTING, "156224154")); /* 3-7-1 holds, 15 is no Federal Reserve prefix */
	CHECK(!V(EXAI__V_ABA_ROUTING, "000000000"));
	CHECK(!V(EXAI__V_ABA_ROUTING, "060385525")); /* the pack's old example */
	CHECK(!V(EXAI__V_ABA_ROUTING, "011-000-015"));
	/* Canadian SIN (Luhn) */
	detects_errors(EXAI__V_CA_SIN, "130 692 544", false);
	detects_errors(EXAI__V_CA_SIN, "741-374-847", false);
	CHECK(!V(EXAI__V_CA_SIN, "046 454 286")); /* Luhn holds, province 0 is never issued */
	CHECK(!V(EXAI__V_CA_SIN, "891 620 510")); /* nor 8 */
	CHECK(!V(EXAI__V_CA_SIN, "533-173-180")); /* the pack's old example */
	/* Brazilian CPF and CNPJ (two mod-11 digits): the usual test numbers */
	CHECK(V(EXAI__V_BR_CPF, "111.444.777-35"));
	CHECK(V(EXAI__V_BR_CPF, "11144477735"));
	CHECK(V(EXAI__V_BR_CPF, "808.820.313-92"));
	CHECK(!V(EXAI__V_BR_CPF, "111.444.777-36"));
	CHECK(!V(EXAI__V_BR_CPF, "111.444.777-45"));
	CHECK(!V(EXAI__V_BR_CPF, "111.111.111-11")); /* checks hold, all one digit */
	CHECK(!V(EXAI__V_BR_CPF, "657.097.556-93")); /* the pack's old example */
	CHECK(!V(EXAI__V_BR_CPF, "111.444.777/35"));
	CHECK(V(EXAI__V_BR_CNPJ, "11.222.333/0001-81"));
	CHECK(V(EXAI__V_BR_CNPJ, "45.589.338/3498-03"));
	CHECK(!V(EXAI__V_BR_CNPJ, "11.222.333/0001-82"));
	CHECK(!V(EXAI__V_BR_CNPJ, "11.222.333/0001-91"));
	CHECK(!V(EXAI__V_BR_CNPJ, "00.000.000/0000-00"));
	CHECK(!V(EXAI__V_BR_CNPJ, "49.142.742/9663-37")); /* the pack's old example */
	/* a change in the first twelve digits is caught by one of the two check digits */
	detects_errors(EXAI__V_BR_CNPJ, "11.222.333/0001-81", false);
	detects_errors(EXAI__V_BR_CPF, "111.444.777-35", false);
}

static void placeholders(void)
{
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "s3cr3t-Horse"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "tk_Q8fZ2mLp0Xc7Rw4Tn9Vb1Kd3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "aaaaaaaa"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "xxxxxxxxxxxx"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "<your-token>"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "${API_KEY}"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "changeme"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "YOUR_API_KEY"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "example-secret"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "dummy"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "[REDACTED]"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "****abcd"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "123456789"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "abcdefghij"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "0123456789abcdef0123456789abcdef"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "ENC[AES256_GCM,data:abc]"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "$NETRC_PASSWORD"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "config.db.password"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "user:password"));
	CHECK(exai__validator_from_name("luhn") == EXAI__V_LUHN);
	CHECK(exai__validator_from_name("nope") == -1);
	CHECK(exai__shannon("aaaa", 4) == 0.0);
	CHECK(exai__shannon("abcd", 4) == 2.0);
}

/* Rule 3: a call of snake/camel identifiers, `::` or `->`. */
static void placeholder_calls(void)
{
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "getpass()"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "config.get('db', 'password')"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "os.getenv(\"TOKEN\")"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "secrets.getSecretValue(id)"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "MyVault.Load(k)"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Config::get_secret"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "$this->apiKey"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "std::getenv"));
	/* random tokens before a '(' are not calls */
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "wUBCCkZZk(3Rq8)"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "a0AfH6SMBx.Load(1)"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "9fQz(kL2mPx"));
	/* ':' or '-' alone are no scope or member access */
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8:Lm3-Vt7>Rx"));
}

/* Rule 4: CONSTANT_NAME, or a dotted path of snake/camel or upper-case identifiers with a
 * lower-case word of 3+. */
static void placeholder_names(void)
{
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "DB_PASSWORD"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "A1_B2"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "self.token"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "os.environ"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "var.db_password"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "process.env.SECRET"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "settings.awsSecretKey"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "$scope.apiKey"));
	/* not names: one part, no lower-case word of 3+, a mixed-case random part, a part that
	 * starts with a digit, a part longer than 32, a path longer than 128 */
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "DB__PASSWORD9"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "ab.CD"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "ya29.a0AfH6SMBx3kL9"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "pat.S3AL2yXsbirzGHusBaIPMX.4db458e10ce84a065c8f69e7.V9e5DTHdmHAiQ8v0jjvd"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "cfg.qzmwkvbfhtrnplxgdjcsyvqwmzkhbrtfx"));
	char longpath[160] = "";
	for (int i = 0; i < 20; i++)
		strcat(longpath, i ? ".gqzwmv" : "gqzwmv");
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, longpath));
	longpath[6 * 18 + 17] = 0; /* 18 parts, 125 characters */
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, longpath));
}

/* Rule 5: printf placeholders with an optional (name) and one flag; URL escapes are none. */
static void placeholder_formats(void)
{
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8%sLm3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8%dLm3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8%rLm3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8%fLm3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "pw=%(user)s"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "pw=%(user)-s"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8%-sLm3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8% dLm3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8{}Lm3"));
	CHECK(!V(EXAI__V_NOT_PLACEHOLDER, "Zq8{7}Lm3"));
	/* URL escapes, widths, two flags, %x are no placeholders */
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8%40Lm3"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8%dfLm3"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8%F3Lm3"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8%10sLm3"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8%-+sLm3"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8%xLm3"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8%()sLm3"));
	CHECK(V(EXAI__V_NOT_PLACEHOLDER, "Zq8{12}Lm3"));
}

int main(void)
{
	keccak();
	checksums();
	pii();
	national();
	placeholders();
	placeholder_calls();
	placeholder_names();
	placeholder_formats();
	return test_done();
}
