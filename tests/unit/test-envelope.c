/* SPDX-License-Identifier: Apache-2.0 */
/* test-envelope: AWS Encryption SDK v2 messages (suite 0x0478): round trips over sizes and
 * chunkings, wrong key/name/context, every truncation, single-byte alterations at sampled
 * positions (and that no unauthenticated plaintext is released), reordered frames, unknown
 * version and suite, oversized lengths. Interop with the stock SDK: tests/integration. */
#include <sodium.h>

#include "keys/keys-internal.h"
#include "keys-vectors.h"
#include "test.h"


static const uint8_t KEY[32] = "0123456789abcdef0123456789abcdef";
static const char *const CTX[] = { "tenant", "acme", "purpose", "test", NULL };

static int encrypt(struct kv_sink *out, const uint8_t *pt, size_t len, uint32_t frame, size_t chunk)
{
	exai_envelope *e = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = out, .frame_length = frame, .context = CTX);
	int r = exai_envelope_encrypt_raw(&e, KEY, "exai-test", "key-1", &o);
	r = kv_stream(e, r, pt, len, chunk);
	exai_envelope_free(e);
	return r;
}

static int decrypt_with(struct kv_sink *out, const uint8_t *ct, size_t len, size_t chunk, const uint8_t *key,
			const char *name, const char *const *expect)
{
	exai_envelope *d = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = out, .context = expect);
	int r = exai_envelope_decrypt_raw(&d, key, "exai-test", name, &o);
	r = kv_stream(d, r, ct, len, chunk);
	exai_envelope_free(d);
	return r;
}

static int decrypt(struct kv_sink *out, const uint8_t *ct, size_t len, size_t chunk)
{
	return decrypt_with(out, ct, len, chunk, KEY, "key-1", NULL);
}

static void round_trips(void)
{
	size_t sizes[] = { 0, 1, 99, 100, 101, 300, 1000, 70000, 200000 };
	size_t chunks[] = { 1, 7, 100, 4096, 1 << 20 };
	uint8_t *pt = malloc(200000);
	randombytes_buf(pt, 200000);
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(sizes); i++) {
		for (size_t c = 0; c < EXAI__ARRAY_SIZE(chunks); c++) {
			if (chunks[c] == 1 && sizes[i] > 1000)
				continue;
			uint32_t frame = sizes[i] > 1000 ? 0 : 100;
			struct kv_sink ct = { 0 }, back = { 0 };
			CHECK_OK(encrypt(&ct, pt, sizes[i], frame, chunks[c]));
			CHECK_OK(decrypt(&back, ct.p, ct.len, chunks[c]));
			CHECK(back.len == sizes[i] && (sizes[i] == 0 || memcmp(back.p, pt, sizes[i]) == 0));
			free(ct.p);
			free(back.p);
		}
	}
	/* Frame count: 300 bytes in frames of 100 -> regular, regular, final(100). */
	struct kv_sink ct = { 0 };
	CHECK_OK(encrypt(&ct, pt, 300, 100, 300));
	struct kv_sink ct0 = { 0 };
	CHECK_OK(encrypt(&ct0, pt, 0, 100, 1));
	size_t header = ct0.len - (4 + 4 + 12 + 4 + 16);
	CHECK(ct.len == header + 2 * (4 + 12 + 100 + 16) + (4 + 4 + 12 + 4 + 100 + 16));
	free(ct.p);
	free(ct0.p);
	free(pt);
}

static void wrong_keys_and_context(void)
{
	const uint8_t pt[] = "a secret artefact";
	struct kv_sink ct = { 0 }, out = { 0 };
	CHECK_OK(encrypt(&ct, pt, sizeof(pt), 0, 1000));
	uint8_t other[32];
	memcpy(other, KEY, 32);
	other[5] ^= 1;
	CHECK_RC(decrypt_with(&out, ct.p, ct.len, 1000, other, "key-1", NULL), -EBADMSG);
	CHECK_RC(decrypt_with(&out, ct.p, ct.len, 1000, KEY, "key-2", NULL), -EBADMSG);
	const char *const good[] = { "tenant", "acme", NULL };
	const char *const bad[] = { "tenant", "evil", NULL };
	const char *const missing[] = { "object", "x", NULL };
	CHECK_OK(decrypt_with(&out, ct.p, ct.len, 1000, KEY, "key-1", good));
	CHECK(out.len == sizeof(pt));
	CHECK_RC(decrypt_with(&out, ct.p, ct.len, 1000, KEY, "key-1", bad), -EBADMSG);
	CHECK_RC(decrypt_with(&out, ct.p, ct.len, 1000, KEY, "key-1", missing), -EBADMSG);
	CHECK(out.len == sizeof(pt)); /* nothing more was released */
	/* The context is readable after the header. */
	exai_envelope *d = NULL;
	struct kv_sink o2 = { 0 };
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = &o2);
	CHECK_OK(exai_envelope_decrypt_raw(&d, KEY, "exai-test", "key-1", &o));
	char *js = NULL;
	CHECK_RC(exai_envelope_context(&js, d), -EAGAIN);
	CHECK_OK(exai_envelope_update(d, ct.p, ct.len));
	CHECK_OK(exai_envelope_context(&js, d));
	CHECK_STREQ(js, "{\"purpose\":\"test\",\"tenant\":\"acme\"}");
	exai_free(js);
	exai_envelope_free(d);
	/* Bad contexts on encryption. */
	exai_envelope *e = NULL;
	const char *const reserved[] = { "aws-crypto-public-key", "x", NULL };
	const char *const dup[] = { "a", "1", "a", "2", NULL };
	EXAI_OPTS(exai_envelope_opts, o3, .write = kv_sink_write, .write_data = &o2, .context = reserved);
	CHECK_RC(exai_envelope_encrypt_raw(&e, KEY, "ns", "n", &o3), -EINVAL);
	o3.context = dup;
	CHECK_RC(exai_envelope_encrypt_raw(&e, KEY, "ns", "n", &o3), -EINVAL);
	o3.context = NULL;
	o3.frame_length = (16u << 20) + 1;
	CHECK_RC(exai_envelope_encrypt_raw(&e, KEY, "ns", "n", &o3), -EINVAL);
	CHECK(e == NULL);
	/* Options from a newer header with a field this library does not know: refused. */
	struct {
		struct exai_envelope_opts o;
		uint64_t future;
	} newer = { .o = { .sz = sizeof(newer), .write = kv_sink_write, .write_data = &o2 }, .future = 1 };
	CHECK_RC(exai_envelope_encrypt_raw(&e, KEY, "ns", "n", &newer.o), -E2BIG);
	newer.future = 0;
	CHECK_OK(exai_envelope_encrypt_raw(&e, KEY, "ns", "n", &newer.o));
	exai_envelope_free(e);
	e = NULL;
	free(ct.p);
	free(out.p);
	free(o2.p);
}

/* Every truncation, and single-byte changes at many positions: -EBADMSG, and whatever was
 * released is a prefix of the plaintext made of whole authenticated frames. */
static void tampering(void)
{
	uint8_t pt[1000];
	randombytes_buf(pt, sizeof(pt));
	struct kv_sink ct = { 0 };
	CHECK_OK(encrypt(&ct, pt, sizeof(pt), 128, sizeof(pt)));
	int fails = 0;
	for (size_t cut = 0; cut < ct.len; cut++) {
		struct kv_sink out = { 0 };
		int r = decrypt(&out, ct.p, cut, 4096);
		if (r != -EBADMSG || out.len % 128 != 0 || (out.len && memcmp(out.p, pt, out.len) != 0)) {
			if (fails++ < 5)
				fprintf(stderr, "truncation at %zu: r=%d released %zu\n", cut, r, out.len);
		}
		free(out.p);
	}
	/* Every position of this 1000-byte message, each with a few different bit flips. */
	for (size_t pos = 0; pos < ct.len; pos++) {
		for (int bit = 0; bit < 8; bit += 3) {
			ct.p[pos] ^= (uint8_t)(1u << bit);
			struct kv_sink out = { 0 };
			int r = decrypt(&out, ct.p, ct.len, pos % 2 ? 4096 : 17);
			if (r != -EBADMSG || out.len % 128 != 0 || (out.len && memcmp(out.p, pt, out.len) != 0)) {
				if (fails++ < 5)
					fprintf(stderr, "alteration at %zu bit %d: r=%d released %zu\n", pos, bit, r, out.len);
			}
			ct.p[pos] ^= (uint8_t)(1u << bit);
			free(out.p);
		}
	}
	CHECK(fails == 0);
	/* Trailing bytes after the final frame. */
	struct kv_sink out = { 0 };
	uint8_t *longer = malloc(ct.len + 1);
	memcpy(longer, ct.p, ct.len);
	longer[ct.len] = 0;
	CHECK_RC(decrypt(&out, longer, ct.len + 1, 4096), -EBADMSG);
	free(longer);
	free(out.p);
	free(ct.p);
}

static void reorder_and_fields(void)
{
	uint8_t pt[400];
	randombytes_buf(pt, sizeof(pt));
	struct kv_sink ct = { 0 }, ct0 = { 0 }, out = { 0 };
	CHECK_OK(encrypt(&ct, pt, sizeof(pt), 100, sizeof(pt)));
	CHECK_OK(encrypt(&ct0, pt, 0, 100, 1));
	size_t header = ct0.len - (4 + 4 + 12 + 4 + 16), fl = 4 + 12 + 100 + 16;
	/* Swap frames 1 and 2. */
	uint8_t tmp[4 + 12 + 100 + 16];
	memcpy(tmp, ct.p + header, fl);
	memcpy(ct.p + header, ct.p + header + fl, fl);
	memcpy(ct.p + header + fl, tmp, fl);
	CHECK_RC(decrypt(&out, ct.p, ct.len, 100000), -EBADMSG);
	CHECK(strstr(test_errmsg(), "expected") != NULL);
	CHECK(out.len == 0);
	/* Unknown version and suite are named. */
	ct0.p[0] = 1;
	CHECK_RC(decrypt(&out, ct0.p, ct0.len, 100000), -EBADMSG);
	CHECK(strstr(test_errmsg(), "version") != NULL);
	ct0.p[0] = 2;
	ct0.p[2] = 0x78 ^ 0x01;
	CHECK_RC(decrypt(&out, ct0.p, ct0.len, 100000), -EBADMSG);
	CHECK(strstr(test_errmsg(), "suite") != NULL);
	/* An oversized frame length field in a crafted header. */
	uint8_t hdr[3 + 32 + 2 + 2 + 2 + 1 + 2 + 20 + 2 + 48 + 1 + 4] = { 2, 0x04, 0x78 };
	size_t off = 3 + 32;
	hdr[off + 1] = 0;                       /* empty context */
	off += 2;
	hdr[off + 1] = 1;                       /* one data key */
	off += 2;
	hdr[off + 1] = 1, hdr[off + 2] = 'n';   /* namespace "n" */
	off += 3;
	hdr[off + 1] = 20;                      /* info: empty name + tails */
	off += 22;
	hdr[off + 1] = 48;
	off += 50;
	hdr[off++] = 2;
	exai__be32(hdr + off, 0xFFFFFFFF);
	CHECK_RC(decrypt(&out, hdr, sizeof(hdr), 100000), -EBADMSG);
	CHECK(strstr(test_errmsg(), "frame length") != NULL);
	free(ct.p);
	free(ct0.p);
	free(out.p);
}

int main(void)
{
	round_trips();
	wrong_keys_and_context();
	tampering();
	reorder_and_fields();
	return test_done();
}
