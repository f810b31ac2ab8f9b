/* SPDX-License-Identifier: Apache-2.0 */
/* test-agent-proto: the agent protocol codec (lib/vm/agent-proto.c): frames, TLVs, the
 * handshake, and SHA-256 against the FIPS 180-4 examples; malformed, truncated and oversized
 * input. */
#include <errno.h>

#include "agent-proto.h"
#include "test.h"

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void sha256_vectors(void)
{
	struct {
		const char *in;
		const char *want;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct exai_ap_sha256 s;
		uint8_t out[32];
		char h[65];
		exai__ap_sha256_init(&s);
		/* fed one byte at a time, then all at once: the same digest */
		for (const char *p = v[i].in; *p; p++)
			exai__ap_sha256_update(&s, p, 1);
		exai__ap_sha256_final(&s, out);
		hex(h, out, 32);
		CHECK_STREQ(h, v[i].want);
		exai__ap_sha256_init(&s);
		exai__ap_sha256_update(&s, v[i].in, strlen(v[i].in));
		exai__ap_sha256_final(&s, out);
		hex(h, out, 32);
		CHECK_STREQ(h, v[i].want);
	}
	/* one million 'a' (FIPS 180-4 example) in odd-sized pieces */
	struct exai_ap_sha256 s;
	uint8_t out[32], a[997];
	char h[65];
	memset(a, 'a', sizeof(a));
	exai__ap_sha256_init(&s);
	size_t left = 1000000;
	while (left) {
		size_t n = left < sizeof(a) ? left : sizeof(a);
		exai__ap_sha256_update(&s, a, n);
		left -= n;
	}
	exai__ap_sha256_final(&s, out);
	hex(h, out, 32);
	CHECK_STREQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void frames(void)
{
	uint8_t buf[EXAI_AP_HDR_LEN + 256];
	struct exai_ap_w w;
	struct exai_ap_frame f;
	size_t used;

	exai__ap_w_init(&w, buf, sizeof(buf));
	exai__ap_w_str(&w, EXAI_AP_TAG_ARG, "echo");
	exai__ap_w_u32(&w, EXAI_AP_TAG_UID, 1000);
	exai__ap_w_u64(&w, EXAI_AP_TAG_TIMEOUT_MS, 0x123456789aULL);
	long n = exai__ap_w_finish(&w, EXAI_AP_T_EXEC, 0, 77);
	CHECK(n == (long)(EXAI_AP_HDR_LEN + 6 + 4 + 6 + 4 + 6 + 8));

	/* every truncation asks for more; the whole frame decodes */
	for (long i = 0; i < n; i++)
		CHECK(exai__ap_decode(&f, &used, buf, (size_t)i, EXAI_AP_MAX_PAYLOAD) == 0);
	CHECK(exai__ap_decode(&f, &used, buf, (size_t)n, EXAI_AP_MAX_PAYLOAD) == 1);
	CHECK(used == (size_t)n && f.type == EXAI_AP_T_EXEC && f.chan == 77 && f.flags == 0);

	struct exai_ap_r r;
	uint16_t tag;
	const uint8_t *v;
	uint32_t vl, u32;
	uint64_t u64;
	char *str = NULL;
	exai__ap_r_init(&r, f.payload, f.len);
	CHECK(exai__ap_r_next(&r, &tag, &v, &vl) == 1 && tag == EXAI_AP_TAG_ARG);
	CHECK(exai__ap_val_str(v, vl, 100, &str) == 0);
	CHECK_STREQ(str, "echo");
	free(str);
	CHECK(exai__ap_val_str(v, vl, 3, &str) == -EBADMSG); /* over the bound */
	CHECK(exai__ap_r_next(&r, &tag, &v, &vl) == 1 && tag == EXAI_AP_TAG_UID);
	CHECK(exai__ap_val_u32(v, vl, &u32) == 0 && u32 == 1000);
	CHECK(exai__ap_val_u64(v, vl, &u64) == -EBADMSG); /* wrong width */
	CHECK(exai__ap_r_next(&r, &tag, &v, &vl) == 1 && tag == EXAI_AP_TAG_TIMEOUT_MS);
	CHECK(exai__ap_val_u64(v, vl, &u64) == 0 && u64 == 0x123456789aULL);
	CHECK(exai__ap_r_next(&r, &tag, &v, &vl) == 0);

	/* a TLV whose length runs past the payload, and one cut inside its header */
	uint8_t bad[] = { 0, 7, 0, 0, 0, 9, 'a', 'b' };
	exai__ap_r_init(&r, bad, sizeof(bad));
	CHECK(exai__ap_r_next(&r, &tag, &v, &vl) == -EBADMSG);
	exai__ap_r_init(&r, bad, 3);
	CHECK(exai__ap_r_next(&r, &tag, &v, &vl) == -EBADMSG);
	/* a NUL inside a string */
	const uint8_t nul[] = { 'a', 0, 'b' };
	CHECK(exai__ap_val_str(nul, 3, 100, &str) == -EBADMSG);

	/* bad magic: refused as soon as the first byte is wrong */
	uint8_t junk[EXAI_AP_HDR_LEN] = { 'G', 'E', 'T', ' ' };
	CHECK(exai__ap_decode(&f, &used, junk, 1, EXAI_AP_MAX_PAYLOAD) == -EBADMSG);
	junk[0] = 0xEA;
	CHECK(exai__ap_decode(&f, &used, junk, 2, EXAI_AP_MAX_PAYLOAD) == -EBADMSG);

	/* oversized: refused from the header alone, before the payload arrives */
	uint8_t big[EXAI_AP_HDR_LEN];
	exai__ap_header(big, EXAI_AP_T_STDIN, 0, 1, EXAI_AP_MAX_PAYLOAD + 1);
	CHECK(exai__ap_decode(&f, &used, big, sizeof(big), EXAI_AP_MAX_PAYLOAD) == -EMSGSIZE);
	exai__ap_header(big, EXAI_AP_T_STDIN, 0, 1, EXAI_AP_PREHELLO_MAX + 1);
	CHECK(exai__ap_decode(&f, &used, big, sizeof(big), EXAI_AP_PREHELLO_MAX) == -EMSGSIZE);
	exai__ap_header(big, EXAI_AP_T_STDIN, 0, 1, 0xffffffffu);
	CHECK(exai__ap_decode(&f, &used, big, sizeof(big), EXAI_AP_MAX_PAYLOAD) == -EMSGSIZE);

	/* the writer refuses to overflow its buffer */
	uint8_t small[EXAI_AP_HDR_LEN + 8];
	exai__ap_w_init(&w, small, sizeof(small));
	exai__ap_w_str(&w, EXAI_AP_TAG_PATH, "/a/long/path");
	CHECK(exai__ap_w_finish(&w, EXAI_AP_T_GET, 0, 1) == -EMSGSIZE);

	CHECK(exai__ap_type_known(EXAI_AP_T_EXEC) && !exai__ap_type_known(200));
	CHECK_STREQ(exai__ap_type_name(EXAI_AP_T_PUT_DONE), "PUT_DONE");
	CHECK_STREQ(exai__ap_type_name(0), "unknown");
}

static void hello(void)
{
	uint8_t buf[EXAI_AP_HDR_LEN + 256];
	struct exai_ap_w w;
	struct exai_ap_frame f;
	struct exai_ap_hello h;
	size_t used;
	uint32_t version, max;

	exai__ap_w_init(&w, buf, sizeof(buf));
	long n = exai__ap_hello_build(&w, "test", 1u << 16);
	CHECK(n > 0);
	CHECK(exai__ap_decode(&f, &used, buf, (size_t)n, EXAI_AP_PREHELLO_MAX) == 1);
	CHECK(exai__ap_hello_parse(&h, &f) == 0);
	CHECK_STREQ(h.name, "test");
	CHECK(exai__ap_negotiate(&h, &version, &max) == 0 && version == EXAI_AP_VERSION && max == 1u << 16);

	/* the peer's maximum is clamped into [PREHELLO_MAX, MAX_PAYLOAD] */
	h.max_payload = 10;
	CHECK(exai__ap_negotiate(&h, &version, &max) == 0 && max == EXAI_AP_PREHELLO_MAX);
	h.max_payload = 0xffffffffu;
	CHECK(exai__ap_negotiate(&h, &version, &max) == 0 && max == EXAI_AP_MAX_PAYLOAD);
	/* no common version */
	h.version_min = h.version_max = EXAI_AP_VERSION + 1;
	CHECK(exai__ap_negotiate(&h, &version, &max) == -EPROTONOSUPPORT);

	/* a HELLO missing a field, with min > max, or with an overlong name */
	exai__ap_w_init(&w, buf, sizeof(buf));
	exai__ap_w_u32(&w, EXAI_AP_TAG_VERSION_MIN, 1);
	exai__ap_w_u32(&w, EXAI_AP_TAG_VERSION_MAX, 1);
	n = exai__ap_w_finish(&w, EXAI_AP_T_HELLO, 0, 0);
	CHECK(exai__ap_decode(&f, &used, buf, (size_t)n, EXAI_AP_PREHELLO_MAX) == 1);
	CHECK(exai__ap_hello_parse(&h, &f) == -EBADMSG);
	exai__ap_w_init(&w, buf, sizeof(buf));
	exai__ap_w_u32(&w, EXAI_AP_TAG_VERSION_MIN, 2);
	exai__ap_w_u32(&w, EXAI_AP_TAG_VERSION_MAX, 1);
	exai__ap_w_u32(&w, EXAI_AP_TAG_MAX_PAYLOAD, 4096);
	n = exai__ap_w_finish(&w, EXAI_AP_T_HELLO, 0, 0);
	CHECK(exai__ap_decode(&f, &used, buf, (size_t)n, EXAI_AP_PREHELLO_MAX) == 1);
	CHECK(exai__ap_hello_parse(&h, &f) == -EBADMSG);
	char name[100];
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	exai__ap_w_init(&w, buf, sizeof(buf));
	exai__ap_hello_build(&w, name, 4096);
	n = exai__ap_w_finish(&w, EXAI_AP_T_HELLO, 0, 0);
	CHECK(exai__ap_decode(&f, &used, buf, (size_t)n, EXAI_AP_PREHELLO_MAX) == 1);
	CHECK(exai__ap_hello_parse(&h, &f) == -EBADMSG);
	/* not a HELLO at all, or on a channel */
	exai__ap_w_init(&w, buf, sizeof(buf));
	n = exai__ap_hello_build(&w, "x", 4096);
	buf[2] = EXAI_AP_T_EXEC;
	CHECK(exai__ap_decode(&f, &used, buf, (size_t)n, EXAI_AP_PREHELLO_MAX) == 1);
	CHECK(exai__ap_hello_parse(&h, &f) == -EBADMSG);
}

int main(void)
{
	sha256_vectors();
	frames();
	hello();
	return test_done();
}
