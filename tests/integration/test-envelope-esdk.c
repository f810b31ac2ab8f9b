/* SPDX-License-Identifier: Apache-2.0 */
/* test-envelope-esdk: interop with the stock AWS Encryption SDK for JavaScript
 * (npm @aws-crypto/client-node, RawAesKeyringNode), both directions, several sizes and
 * frame lengths, with an encryption context; the SDK's messages altered or truncated fail
 * here, ours altered fail there. The package is installed once per build directory. */
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "keys/keys-internal.h"
#include "../unit/keys-vectors.h"
#include "test.h"

static char dir[512], nodepath[1024], script[1024];

#define sh test_sh

static const char *path(const char *name)
{
	static char buf[4][768];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void write_file(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "wb");
	if (len)
		fwrite(data, 1, len, f);
	fclose(f);
}

static int file_write(void *ud, const void *data, size_t len)
{
	return fwrite(data, 1, len, ud) == len ? 0 : -EIO;
}

static uint8_t key[32];
static const char *const CTX[] = { "tenant", "acme", "purpose", "interop", "object", "obj-42", NULL };

static int ours(bool encrypt, const char *in, const char *out, uint32_t frame)
{
	FILE *fo = fopen(out, "wb");
	exai_envelope *e = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = file_write, .write_data = fo, .frame_length = frame, .context = CTX);
	int r = encrypt ? exai_envelope_encrypt_raw(&e, key, "exai-escrow", "tenant-acme-kek", &o)
			: exai_envelope_decrypt_raw(&e, key, "exai-escrow", "tenant-acme-kek", &o);
	size_t len;
	char *data = test_read_file(in, &len);
	/* In odd-sized pieces, to exercise the stream. */
	for (size_t off = 0; r == 0 && off < len; off += 1000)
		r = exai_envelope_update(e, data + off, len - off < 1000 ? len - off : 1000);
	if (r == 0)
		r = exai_envelope_final(e);
	exai_envelope_free(e);
	free(data);
	fclose(fo);
	return r;
}

static int node(const char *mode, const char *in, const char *out, uint32_t frame)
{
	return sh("NODE_PATH=%s node %s %s %s exai-escrow tenant-acme-kek %s %s %u tenant=acme purpose=interop object=obj-42",
		  nodepath, script, mode, path("key"), in, out, frame);
}

static bool same_files(const char *a, const char *b)
{
	return sh("cmp -s %s %s", a, b) == 0;
}

int main(void)
{
	if (sh("command -v npm >/dev/null && command -v node >/dev/null") != 0)
		test_skip("npm and node are not installed (Debian: nodejs, npm); the SDK interop needs them");
	const char *build = getenv("EXAI_BUILD_ROOT"), *src = getenv("EXAI_SOURCE_ROOT");
	if (!build || !src)
		test_skip("run through meson test (EXAI_BUILD_ROOT, EXAI_SOURCE_ROOT unset)");
	snprintf(nodepath, sizeof(nodepath), "%s/esdk/node_modules", build);
	snprintf(script, sizeof(script), "%s/tests/integration/esdk-interop.js", src);
	char probe[1200];
	snprintf(probe, sizeof(probe), "%s/@aws-crypto/client-node/package.json", nodepath);
	if (access(probe, R_OK) != 0 &&
	    sh("mkdir -p %s/esdk && cd %s/esdk && npm install --no-audit --no-fund --prefix . @aws-crypto/client-node >npm.log 2>&1",
	       build, build) != 0) {
		fprintf(stderr, "npm install @aws-crypto/client-node failed: see %s/esdk/npm.log\n", build);
		return 1;
	}
	char *d = test_tmpdir();
	snprintf(dir, sizeof(dir), "%s", d);
	randombytes_buf(key, sizeof(key));
	write_file(path("key"), key, sizeof(key));

	size_t sizes[] = { 0, 1, 4096, 4097, 100000, 1 << 20 };
	uint32_t frames[] = { 4096, 65536 };
	uint8_t *pt = malloc(1 << 20);
	randombytes_buf(pt, 1 << 20);
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(sizes); i++) {
		uint32_t frame = frames[i % 2];
		write_file(path("pt"), pt, sizes[i]);
		/* Ours -> SDK. */
		CHECK_OK(ours(true, path("pt"), path("ours.msg"), frame));
		CHECK(node("decrypt", path("ours.msg"), path("ours.back"), 0) == 0);
		CHECK(same_files(path("pt"), path("ours.back")));
		/* SDK -> ours. */
		CHECK(node("encrypt", path("pt"), path("sdk.msg"), frame) == 0);
		CHECK_OK(ours(false, path("sdk.msg"), path("sdk.back"), 0));
		CHECK(same_files(path("pt"), path("sdk.back")));
		if (test_failures)
			fprintf(stderr, "size %zu frame %u\n", sizes[i], frame);
	}
	/* The SDK's message, altered at sampled positions or truncated anywhere: refused here. */
	write_file(path("pt"), pt, 10000);
	CHECK(node("encrypt", path("pt"), path("sdk.msg"), 4096) == 0);
	size_t len;
	uint8_t *msg = (uint8_t *)test_read_file(path("sdk.msg"), &len);
	int bad = 0;
	for (size_t pos = 0; pos < len; pos += 37) {
		msg[pos] ^= 0x40;
		write_file(path("alt.msg"), msg, len);
		msg[pos] ^= 0x40;
		if (ours(false, path("alt.msg"), path("alt.back"), 0) != -EBADMSG && bad++ < 5)
			fprintf(stderr, "the SDK's message with byte %zu altered was accepted\n", pos);
	}
	for (size_t cut = 0; cut < len; cut++) {
		write_file(path("alt.msg"), msg, cut);
		if (ours(false, path("alt.msg"), path("alt.back"), 0) != -EBADMSG && bad++ < 5)
			fprintf(stderr, "the SDK's message cut to %zu bytes was accepted\n", cut);
	}
	CHECK(bad == 0);
	/* Ours, altered in the header and in a frame: refused by the SDK. */
	CHECK_OK(ours(true, path("pt"), path("ours.msg"), 4096));
	free(msg);
	msg = (uint8_t *)test_read_file(path("ours.msg"), &len);
	size_t positions[] = { 40, len / 2, len - 1 };
	for (size_t i = 0; i < 3; i++) {
		msg[positions[i]] ^= 1;
		write_file(path("alt.msg"), msg, len);
		msg[positions[i]] ^= 1;
		CHECK(node("decrypt", path("alt.msg"), path("alt.back"), 0) != 0);
	}
	free(msg);
	free(pt);
	test_rmrf(d);
	free(d);
	return test_done();
}
