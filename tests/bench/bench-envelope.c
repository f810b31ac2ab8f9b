/* SPDX-License-Identifier: Apache-2.0 */
/* bench-envelope: envelope throughput on a 1 GiB stream (64 KiB frames) beside its physical
 * limit, `openssl speed -evp aes-256-gcm` at the same block size, and beside Debian's `age`
 * on the same 1 GiB file, all in one run; and the latency of getting a tenant DEK from the
 * cache, from the file KMS and from SoftHSM2. Size with EXAI_BENCH_MIB (default 1024). */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exai-config.h"
#include "keys/keys-internal.h"
#include "../unit/keys-vectors.h"
#include "test.h"

#define CHUNK (1u << 20)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: what `openssl speed` divides by by default (it measures user CPU
 * time unless -elapsed), so that both sides are compared on a machine shared with others. */
static double cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct mem {
	uint8_t *p;
	size_t len, cap;
};

static int mem_write(void *ud, const void *d, size_t n)
{
	struct mem *m = ud;
	if (m->len + n > m->cap)
		return -ENOSPC;
	memcpy(m->p + m->len, d, n);
	m->len += n;
	return 0;
}

static int discard(void *ud, const void *d, size_t n)
{
	(void)d;
	*(size_t *)ud += n;
	return 0;
}

static double openssl_speed(void)
{
	FILE *p = popen("openssl speed -evp aes-256-gcm -bytes 65536 -seconds 3 2>/dev/null", "r");
	if (!p)
		return 0;
	char line[512];
	double kbs = 0;
	while (fgets(line, sizeof(line), p)) {
		if (strncasecmp(line, "aes-256-gcm", 11) == 0) {
			char *k = strrchr(line, ' ');
			kbs = k ? atof(k) : 0;
		}
	}
	pclose(p);
	return kbs * 1000.0 / (1 << 20); /* MiB/s */
}

/* The same AES-256-GCM (OpenSSL EVP, one context, 64 KiB blocks, in cache) without the
 * message format: the limit the envelope can reach on this machine at this moment. */
static double raw_gcm(size_t total, const uint8_t *key, uint8_t *buf)
{
	struct exai__gcm g;
	uint8_t iv[12] = { 0 }, tag[16], aad[64] = { 0 };
	CHECK_OK(exai__gcm_init(&g, key, 32, true));
	double t0 = cpu();
	for (size_t off = 0; off < total; off += 65536) {
		iv[11]++;
		CHECK_OK(exai__gcm_seal(&g, iv, 12, aad, sizeof(aad), buf, 65536, buf + 65536, tag, 16));
	}
	double t = cpu() - t0;
	exai__gcm_done(&g);
	return (double)(total >> 20) / t;
}

static int fd_write(void *ud, const void *d, size_t n)
{
	int fd = *(int *)ud;
	while (n) {
		ssize_t w = write(fd, d, n);
		if (w < 0)
			return -errno;
		d = (const uint8_t *)d + w;
		n -= (size_t)w;
	}
	return 0;
}

/* Encrypts or decrypts dir/@in to dir/@out with read()/write(); CPU seconds of this thread. */
static double ours_file(bool encrypt, const char *dir, const char *in, const char *out, const uint8_t *key,
			uint8_t *buf)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, in);
	int fi = open(p, O_RDONLY);
	snprintf(p, sizeof(p), "%s/%s", dir, out);
	int fo = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	exai_envelope *e = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = fd_write, .write_data = &fo);
	double t0 = cpu();
	CHECK_OK(encrypt ? exai_envelope_encrypt_raw(&e, key, "bench", "k", &o)
			 : exai_envelope_decrypt_raw(&e, key, "bench", "k", &o));
	ssize_t n;
	while ((n = read(fi, buf, CHUNK)) > 0)
		CHECK_OK(exai_envelope_update(e, buf, (size_t)n));
	CHECK_OK(exai_envelope_final(e));
	double t = cpu() - t0;
	exai_envelope_free(e);
	close(fi);
	close(fo);
	return t;
}

/* CPU seconds (user + system) that @cmd and its children used. */
static double children_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static double timed(const char *cmd)
{
	double t0 = children_cpu();
	int st = system(cmd);
	double t = children_cpu() - t0;
	return (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? t : -1;
}

/* Many small artefacts (1 KiB) through a tenant keyring: each message has its own data key,
 * derivation, header and locked buffers. */
static void small_messages(exai_keyring *kr)
{
	char text[1024];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	const int n = 1000;
	double t0 = now(), c0 = cpu();
	for (int i = 0; i < n; i++) {
		struct kv_sink m = { 0 };
		CHECK_OK(kv_seal(&m, kr, "bench", "small", text));
		CHECK_OK(kv_open(kr, &m, NULL));
		free(m.p);
	}
	printf("1 KiB artefacts through a tenant keyring: encrypt + decrypt %.0f us per message "
	       "(%.0f us of CPU)\n", (now() - t0) / n * 1e6, (cpu() - c0) / n * 1e6);
}

static void unwrap_latency(exai_ctx *ctx, exai_keyring *kr, const char *what)
{
	(void)ctx;
	uint8_t *k = exai_secure_alloc(32);
	const int n = 2000;
	/* Cached: derivation includes one HKDF-SHA512 (~1-2 us), as in both rows. */
	CHECK_OK(exai_keyring_derive_snapshot_key(k, kr, 0, "vm", "s"));
	double t0 = now();
	for (int i = 0; i < n; i++)
		exai_keyring_derive_snapshot_key(k, kr, 0, "vm", "s");
	double cached = (now() - t0) / n * 1e6;
	int m = 300;
	t0 = now();
	for (int i = 0; i < m; i++) {
		exai_keyring_flush_cache(kr);
		exai_keyring_derive_snapshot_key(k, kr, 0, "vm", "s");
	}
	double kms = (now() - t0) / m * 1e6;
	printf("DEK %-9s cached %7.2f us   unwrap from KMS %8.1f us   (x%.0f)\n", what, cached, kms, kms / cached);
	exai_secure_free(k);
}

int main(void)
{
	const char *env = getenv("EXAI_BENCH_MIB");
	size_t mib = env ? (size_t)atol(env) : 1024, total = mib << 20;
	char *dir = test_tmpdir();
	uint8_t key[32];
	randombytes_buf(key, sizeof(key));
	uint8_t *chunk = malloc(CHUNK);
	randombytes_buf(chunk, CHUNK);
	struct mem ct = { .cap = total + total / 1000 + (1 << 20) };
	ct.p = malloc(ct.cap);
	if (!ct.p)
		test_skip("not enough memory for a %zu MiB ciphertext buffer", mib);
	memset(ct.p, 1, ct.cap); /* fault the pages in before timing (non-zero: not turned into calloc) */

	uint8_t *scratch = malloc(2 * 65536);
	randombytes_buf(scratch, 2 * 65536);
	double raw1 = raw_gcm(total, key, scratch);
	/* Encrypt, timed into a sink that drops the output (a stream to a pipe or socket), then
	 * again into memory (untimed) for the decryption. */
	exai_envelope *e = NULL;
	size_t dropped = 0;
	EXAI_OPTS(exai_envelope_opts, o, .write = discard, .write_data = &dropped);
	double t0 = now(), c0 = cpu();
	CHECK_OK(exai_envelope_encrypt_raw(&e, key, "bench", "k", &o));
	for (size_t off = 0; off < total; off += CHUNK)
		CHECK_OK(exai_envelope_update(e, chunk, CHUNK));
	CHECK_OK(exai_envelope_final(e));
	double enc = now() - t0, encc = cpu() - c0;
	exai_envelope_free(e);
	EXAI_OPTS(exai_envelope_opts, om, .write = mem_write, .write_data = &ct);
	CHECK_OK(exai_envelope_encrypt_raw(&e, key, "bench", "k", &om));
	for (size_t off = 0; off < total; off += CHUNK)
		CHECK_OK(exai_envelope_update(e, chunk, CHUNK));
	CHECK_OK(exai_envelope_final(e));
	exai_envelope_free(e);
	/* Decrypt. */
	size_t got = 0;
	EXAI_OPTS(exai_envelope_opts, od, .write = discard, .write_data = &got);
	t0 = now(), c0 = cpu();
	CHECK_OK(exai_envelope_decrypt_raw(&e, key, "bench", "k", &od));
	for (size_t off = 0; off < ct.len; off += CHUNK)
		CHECK_OK(exai_envelope_update(e, ct.p + off, ct.len - off < CHUNK ? ct.len - off : CHUNK));
	CHECK_OK(exai_envelope_final(e));
	double dec = now() - t0, decc = cpu() - c0;
	exai_envelope_free(e);
	CHECK(got == total);
	double raw2 = raw_gcm(total, key, scratch), raw = (raw1 + raw2) / 2;
	free(scratch);
	double ossl = getenv("EXAI_BENCH_STREAM_ONLY") ? 0 : openssl_speed();
	double encr = (double)mib / encc, decr = (double)mib / decc;
	printf("envelope stream of %zu MiB, 64 KiB frames (encrypt: 1 MiB writes, output dropped; decrypt: from memory)\n", mib);
	printf("  encrypt  %8.0f MiB/s   %5.1f%% of openssl speed, %5.1f%% of raw EVP GCM\n", encr,
	       ossl > 0 ? 100 * encr / ossl : 0, 100 * encr / raw);
	printf("  decrypt  %8.0f MiB/s   %5.1f%% of openssl speed, %5.1f%% of raw EVP GCM\n", decr,
	       ossl > 0 ? 100 * decr / ossl : 0, 100 * decr / raw);
	printf("  (per CPU second, as openssl speed counts; wall clock: encrypt %.0f, decrypt %.0f MiB/s)\n",
	       (double)mib / enc, (double)mib / dec);
	printf("  openssl speed -evp aes-256-gcm -bytes 65536: %.0f MiB/s (run after ours)\n", ossl);
	printf("  raw EVP AES-256-GCM, 64 KiB blocks + tag per block, in process before and after ours: %.0f / %.0f MiB/s\n",
	       raw1, raw2);
	free(ct.p);

	if (getenv("EXAI_BENCH_STREAM_ONLY")) {
		free(chunk);
		test_rmrf(dir);
		free(dir);
		return test_done();
	}
	/* Beside age, file to file on the same 1 GiB file (page cache warm, output to tmpfs-less
	 * disk under TMPDIR): exaictl's library path through files vs `age`. */
	if (system("command -v age >/dev/null && command -v age-keygen >/dev/null") == 0) {
		char cmd[4096];
		snprintf(cmd, sizeof(cmd), "cd %s && age-keygen -o id.txt 2>/dev/null && "
			 "head -c %zu /dev/urandom > plain && cat plain > /dev/null", dir, total);
		if (system(cmd) == 0) {
			snprintf(cmd, sizeof(cmd), "cd %s && age -r $(age-keygen -y id.txt) -o plain.age plain", dir);
			double ae = timed(cmd);
			snprintf(cmd, sizeof(cmd), "cd %s && age -d -i id.txt -o plain.back plain.age", dir);
			double ad = timed(cmd);
			/* Ours through files, the way `exaictl encrypt/decrypt` works. */
			double oe = ours_file(true, dir, "plain", "plain.msg", key, chunk);
			double odf = ours_file(false, dir, "plain.msg", "plain.out", key, chunk);
			printf("beside age on the same %zu MiB file (file to file, page cache warm, per CPU second):\n", mib);
			printf("  age encrypt %7.0f MiB/s, decrypt %7.0f MiB/s\n", ae > 0 ? (double)mib / ae : 0,
			       ad > 0 ? (double)mib / ad : 0);
			printf("  ours encrypt %6.0f MiB/s (x%.1f of age), decrypt %6.0f MiB/s (x%.1f of age)\n",
			       (double)mib / oe, ae > 0 ? ae / oe : 0, (double)mib / odf, ad > 0 ? ad / odf : 0);
		}
	} else {
		printf("age not installed: comparison skipped\n");
	}

	/* DEK unwrap latency. */
	exai_ctx *ctx = NULL;
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	CHECK_OK(exai_ctx_new(&ctx, &co));
	exai_keyring *kr = NULL;
	CHECK_OK(exai_keyring_init(&kr, ctx, "bench-file", NULL));
	if (kr) {
		unwrap_latency(ctx, kr, "file KMS");
		small_messages(kr);
	}
	exai_keyring_unref(kr);
#if EXAI_HAVE_PKCS11
	const char *module = "/usr/lib/softhsm/libsofthsm2.so";
	char conf[1024], cmd[2048], pin[1024];
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	FILE *f = fopen(conf, "w");
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/tokens && SOFTHSM2_CONF=%s softhsm2-util --init-token --free "
		 "--label bench --pin 1234 --so-pin 5678 >/dev/null", dir, conf);
	if (access(module, R_OK) == 0 && system(cmd) == 0) {
		setenv("SOFTHSM2_CONF", conf, 1);
		snprintf(pin, sizeof(pin), "%s/pin", dir);
		f = fopen(pin, "w");
		fputs("1234\n", f);
		fclose(f);
		chmod(pin, 0600);
		struct exai_kms_provider kms;
		EXAI_OPTS(exai_kms_pkcs11_opts, po, .module = module, .token_label = "bench", .pin_file = pin);
		CHECK_OK(exai_kms_pkcs11_provider(&kms, ctx, &po));
		EXAI_OPTS(exai_keyring_opts, ko, .kms = &kms, .pkcs11 = &po);
		CHECK_OK(exai_keyring_init(&kr, ctx, "bench-hsm", &ko));
		if (kr)
			unwrap_latency(ctx, kr, "SoftHSM2");
		exai_keyring_unref(kr);
	}
#endif
	exai_ctx_unref(ctx);
	free(chunk);
	test_rmrf(dir);
	free(dir);
	return test_done();
}
