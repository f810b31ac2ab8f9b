/* SPDX-License-Identifier: Apache-2.0 */
/* keys-vectors.h: helpers shared by the keys module's tests (hex, Wycheproof files). */
#ifndef EXAI_KEYS_VECTORS_H
#define EXAI_KEYS_VECTORS_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <exai/keys.h>

#include "test.h"

/* Decodes a hex string into a malloc'd buffer (at least 1 byte); *len gets the length. */
static inline uint8_t *kv_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *out = malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (uint8_t)v;
	}
	*len = n;
	return out;
}

/* Loads ../shared/vectors/wycheproof/<name>; aborts the test when missing. */
static inline json_t *kv_wycheproof(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "vectors/wycheproof/%s", name);
	json_error_t e;
	json_t *j = json_load_file(test_shared(rel), 0, &e);
	if (!j) {
		fprintf(stderr, "cannot load %s: %s\n", test_shared(rel), e.text);
		exit(1);
	}
	return j;
}

/* An output callback that collects bytes in memory (for envelope streams). */
struct kv_sink {
	uint8_t *p;
	size_t len, cap;
};

static inline int kv_sink_write(void *ud, const void *data, size_t len)
{
	struct kv_sink *s = ud;
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2 + 64;
		s->p = realloc(s->p, s->cap);
	}
	memcpy(s->p + s->len, data, len);
	s->len += len;
	return 0;
}

/* Runs a shell command built like printf; its exit status, or -1 when it did not exit. */
static inline int kv_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int kv_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Encrypts @text under the tenant keyring (purpose @purpose, object @object) into @out. */
static inline int kv_seal(struct kv_sink *out, exai_keyring *kr, const char *purpose, const char *object,
			  const char *text)
{
	exai_envelope *e = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = out);
	int r = exai_keyring_encrypt(&e, kr, purpose, object, &o);
	if (r == 0)
		r = exai_envelope_update(e, text, strlen(text));
	if (r == 0)
		r = exai_envelope_final(e);
	exai_envelope_free(e);
	return r;
}

/* Decrypts @in with the tenant keyring (the plaintext is dropped); *@gen gets the DEK
 * generation when @gen is not NULL. */
static inline int kv_open(exai_keyring *kr, const struct kv_sink *in, uint32_t *gen)
{
	struct kv_sink out = { 0 };
	exai_envelope *d = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = &out);
	int r = exai_keyring_decrypt(&d, kr, &o);
	if (r == 0)
		r = exai_envelope_update(d, in->p, in->len);
	if (r == 0)
		r = exai_envelope_final(d);
	if (r == 0 && gen)
		r = exai_envelope_generation(d, gen);
	exai_envelope_free(d);
	free(out.p);
	return r;
}

#define KV_STR(obj, key) json_string_value(json_object_get((obj), (key)))

#endif
