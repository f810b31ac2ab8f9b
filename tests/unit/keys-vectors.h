/* SPDX-License-Identifier: Apache-2.0 */
/* keys-vectors.h: helpers shared by the keys module's tests (hex, Wycheproof files). */
#ifndef EXAI_KEYS_VECTORS_H
#define EXAI_KEYS_VECTORS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define KV_STR(obj, key) json_string_value(json_object_get((obj), (key)))

/* Runs @check on every test of the Wycheproof file @name (../shared/vectors/wycheproof/):
 * @check gets the test's group and the test, and returns whether the library did what the
 * test's "result" says. A failed test is reported with its tcId and counted; every test of
 * the file must have been run (numberOfTests). Returns the number of tests. */
static inline int kv_wycheproof_each(const char *name, bool (*check)(json_t *group, json_t *test, void *ud), void *ud)
{
	json_t *j = kv_wycheproof(name);
	size_t gi, ti;
	json_t *g, *t;
	int n = 0;
	json_array_foreach(json_object_get(j, "testGroups"), gi, g) {
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			if (!check(g, t, ud)) {
				fprintf(stderr, "wycheproof %s tcId %lld failed: %s\n", name,
					(long long)json_integer_value(json_object_get(t, "tcId")), test_errmsg());
				test_failures++;
			}
			n++;
		}
	}
	CHECK(n == json_integer_value(json_object_get(j, "numberOfTests")));
	json_decref(j);
	return n;
}

/* Whether a Wycheproof test expects success. */
static inline bool kv_valid(json_t *test)
{
	return strcmp(KV_STR(test, "result"), "valid") == 0;
}

/* Feeds @len bytes to the envelope stream @e in pieces of @chunk bytes (0: all at once) and
 * ends it; @r is the result of starting the stream (nothing is done unless it is 0). The
 * first error, or 0. The caller frees @e. */
static inline int kv_stream(exai_envelope *e, int r, const void *data, size_t len, size_t chunk)
{
	const uint8_t *p = data;
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t off = 0; r == 0 && off < len; off += chunk)
		r = exai_envelope_update(e, p + off, len - off < chunk ? len - off : chunk);
	return r == 0 ? exai_envelope_final(e) : r;
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

/* Encrypts @text under the tenant keyring (purpose @purpose, object @object) into @out. */
static inline int kv_seal(struct kv_sink *out, exai_keyring *kr, const char *purpose, const char *object,
			  const char *text)
{
	exai_envelope *e = NULL;
	EXAI_OPTS(exai_envelope_opts, o, .write = kv_sink_write, .write_data = out);
	int r = exai_keyring_encrypt(&e, kr, purpose, object, &o);
	r = kv_stream(e, r, text, strlen(text), 0);
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
	r = kv_stream(d, r, in->p, in->len, 0);
	if (r == 0 && gen)
		r = exai_envelope_generation(d, gen);
	exai_envelope_free(d);
	free(out.p);
	return r;
}

#endif
