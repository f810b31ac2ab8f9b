/* SPDX-License-Identifier: Apache-2.0 */
/* disabled.c: the scrub API of a libexai built without Hyperscan or PCRE2 (-Dhyperscan=disabled
 * or the libraries missing): every call fails with -ENOTSUP and says why, so that the ABI is
 * the same in every build and exai_features() tells the feature is absent. */
#include "core-internal.h"
#include "exai/scrub.h"

static int off(void)
{
	return exai__err(-ENOTSUP, "scrub: this libexai was built without the scrubber (Hyperscan and PCRE2)");
}

int exai_scrubber_new(exai_scrubber **ret, exai_ctx *ctx, const struct exai_scrubber_opts *opts)
{
	(void)ret, (void)ctx, (void)opts;
	return off();
}
void exai_scrubber_free(exai_scrubber *s)
{
	(void)s;
}
size_t exai_scrubber_pattern_count(const exai_scrubber *s)
{
	(void)s;
	return 0;
}
int exai_scrubber_pattern(const exai_scrubber *s, size_t i, const char **id, const char **cls, int *kind,
			  const char **validator, int *severity)
{
	(void)s, (void)i, (void)id, (void)cls, (void)kind, (void)validator, (void)severity;
	return off();
}
size_t exai_scrubber_holdback(const exai_scrubber *s)
{
	(void)s;
	return 0;
}
int exai_scrub_pack_test(size_t *failures, char **report, exai_ctx *ctx, const char *pack)
{
	(void)failures, (void)report, (void)ctx, (void)pack;
	return off();
}
int exai_scrub_text(exai_scrub_result **ret, exai_scrubber *s, const char *text, size_t len,
		    const struct exai_scrub_text_opts *opts)
{
	(void)ret, (void)s, (void)text, (void)len, (void)opts;
	return off();
}
const char *exai_scrub_result_text(const exai_scrub_result *r, size_t *len)
{
	(void)r;
	if (len)
		*len = 0;
	return "";
}
size_t exai_scrub_result_count(const exai_scrub_result *r)
{
	(void)r;
	return 0;
}
const struct exai_scrub_finding *exai_scrub_result_finding(const exai_scrub_result *r, size_t i)
{
	(void)r, (void)i;
	return NULL;
}
int exai_scrub_result_invalid_utf8(const exai_scrub_result *r)
{
	(void)r;
	return 0;
}
int exai_scrub_result_vault(uint8_t **ret, size_t *retlen, const exai_scrub_result *r)
{
	(void)ret, (void)retlen, (void)r;
	return off();
}
int exai_scrub_vault_seal(uint8_t **ret, size_t *retlen, const uint8_t *vault, size_t vault_len, const uint8_t key[32],
			  const char *key_name, const char *tenant, const char *request_id)
{
	(void)ret, (void)retlen, (void)vault, (void)vault_len, (void)key, (void)key_name, (void)tenant, (void)request_id;
	return off();
}
int exai_scrub_vault_open(uint8_t **ret, size_t *retlen, const uint8_t *msg, size_t len, const uint8_t key[32],
			  const char *key_name, const char *tenant, const char *request_id)
{
	(void)ret, (void)retlen, (void)msg, (void)len, (void)key, (void)key_name, (void)tenant, (void)request_id;
	return off();
}
void exai_scrub_result_free(exai_scrub_result *r)
{
	(void)r;
}
int exai_scrub_stream_new(exai_scrub_stream **ret, exai_scrubber *s, const struct exai_scrub_text_opts *opts)
{
	(void)ret, (void)s, (void)opts;
	return off();
}
int exai_scrub_stream_feed(exai_scrub_stream *st, char **ret, size_t *retlen, const char *chunk, size_t len)
{
	(void)st, (void)ret, (void)retlen, (void)chunk, (void)len;
	return off();
}
int exai_scrub_stream_finish(exai_scrub_stream *st, char **ret, size_t *retlen)
{
	(void)st, (void)ret, (void)retlen;
	return off();
}
const exai_scrub_result *exai_scrub_stream_result(const exai_scrub_stream *st)
{
	(void)st;
	return NULL;
}
void exai_scrub_stream_free(exai_scrub_stream *st)
{
	(void)st;
}
int exai_scrub_restore(char **ret, size_t *retlen, const uint8_t *vault, size_t vault_len, const char *text, size_t len)
{
	(void)ret, (void)retlen, (void)vault, (void)vault_len, (void)text, (void)len;
	return off();
}
int exai_scrub_restorer_new(exai_scrub_restorer **ret, const uint8_t *vault, size_t vault_len)
{
	(void)ret, (void)vault, (void)vault_len;
	return off();
}
int exai_scrub_restorer_feed(exai_scrub_restorer *r, char **ret, size_t *retlen, const char *chunk, size_t len)
{
	(void)r, (void)ret, (void)retlen, (void)chunk, (void)len;
	return off();
}
int exai_scrub_restorer_finish(exai_scrub_restorer *r, char **ret, size_t *retlen)
{
	(void)r, (void)ret, (void)retlen;
	return off();
}
void exai_scrub_restorer_free(exai_scrub_restorer *r)
{
	(void)r;
}
