/* SPDX-License-Identifier: Apache-2.0 */
/* test-scrub: the engine on a test pack: findings and offsets, overlap resolution, redaction
 * modes, pseudonymisation and restore (whole and streamed), decoders, policy, bad packs, the
 * database cache, bad input, audit events. */
#include <ctype.h>
#include <sys/stat.h>

#include "scrub-stream-check.h"

static char *pack_text;

static char *read_src(const char *rel)
{
	char path[4096];
	const char *root = getenv("EXAI_SOURCE_ROOT");
	snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
	return test_read_file(path, NULL);
}

static exai_scrubber *mk(exai_ctx *ctx, uint32_t flags, const char *policy)
{
	const char *packs[] = { pack_text };
	static const uint8_t key[32] = { 1, 2, 3 };
	EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1,
		  .flags = flags | EXAI_SCRUBBER_NO_BUILTIN, .hash_key = key, .hash_key_len = sizeof(key),
		  .policy = policy);
	exai_scrubber *s = NULL;
	CHECK_OK(exai_scrubber_new(&s, ctx, &o));
	return s;
}

static exai_scrub_result *scrub(exai_scrubber *s, const char *text, int mode)
{
	EXAI_OPTS(exai_scrub_text_opts, o, .mode = mode);
	exai_scrub_result *r = NULL;
	CHECK_OK(exai_scrub_text(&r, s, text, strlen(text), &o));
	return r;
}

static void basics(void)
{
	exai_scrubber *s = mk(NULL, EXAI_SCRUBBER_NO_STAGE2, NULL);
	CHECK(exai_scrubber_pattern_count(s) == 5);
	const char *text = "hi bob.smith@mail.test.org, key tk_Q8fZ2mLp0Xc7Rw4Tn9Vb1Kd3 and card 4111-1111-1111-1111.";
	exai_scrub_result *r = scrub(s, text, EXAI_SCRUB_PLACEHOLDER);
	CHECK(exai_scrub_result_count(r) == 3);
	const struct exai_scrub_finding *f = exai_scrub_result_finding(r, 0);
	CHECK(f && f->start == 3 && f->end == 26 && strcmp(f->cls, "email") == 0 && f->stage == 1 &&
	      f->score == 1.0 && strcmp(f->pattern, "test.email") == 0);
	f = exai_scrub_result_finding(r, 1);
	CHECK(f && strncmp(text + f->start, "tk_Q8", 5) == 0 && f->end - f->start == 27 && f->score == 0.8);
	f = exai_scrub_result_finding(r, 2);
	CHECK(f && strcmp(f->cls, "payment_card") == 0);
	CHECK_STREQ(exai_scrub_result_text(r, NULL), "hi ‹EMAIL›, key ‹TEST_TOKEN› and card ‹PAYMENT_CARD›.");
	exai_scrub_result_free(r);

	r = scrub(s, text, EXAI_SCRUB_MASK);
	CHECK_STREQ(exai_scrub_result_text(r, NULL),
		    "hi ‹EMAIL:****›, key ‹TEST_TOKEN:tk_****› and card ‹PAYMENT_CARD:****›.");
	exai_scrub_result_free(r);

	/* hash: the same value gives the same token, another value another token */
	r = scrub(s, "a@corp.example.com b@corp.example.com a@corp.example.com", EXAI_SCRUB_HASH);
	const char *t = exai_scrub_result_text(r, NULL);
	CHECK(strlen(t) > 0 && strncmp(t, "‹EMAIL:", strlen("‹EMAIL:")) == 0);
	char tok[3][64];
	CHECK(sscanf(t, "%63s %63s %63s", tok[0], tok[1], tok[2]) == 3);
	CHECK(strcmp(tok[0], tok[2]) == 0 && strcmp(tok[0], tok[1]) != 0);
	exai_scrub_result_free(r);

	/* validators cut: a Luhn-invalid number is no card, a placeholder no token */
	r = scrub(s, "card 4111 1111 1111 1112 tk_xxxxxxxxxxxxxxxxxxxxxxxx", EXAI_SCRUB_MASK);
	CHECK(exai_scrub_result_count(r) == 0);
	exai_scrub_result_free(r);
	exai_scrubber_free(s);
}

static void pseudo_and_restore(void)
{
	exai_scrubber *s = mk(NULL, EXAI_SCRUBBER_NO_STAGE2, NULL);
	const char *text = "write to ann@corp.example.com and ann@corp.example.com, password: hunter2horse";
	exai_scrub_result *r = scrub(s, text, EXAI_SCRUB_PSEUDO);
	const char *out = exai_scrub_result_text(r, NULL);
	CHECK(strstr(out, "ann@") == NULL && strstr(out, "hunter2") == NULL);
	const char *p1 = strstr(out, "‹EMAIL_"), *p2 = p1 ? strstr(p1 + 1, "‹EMAIL_") : NULL;
	CHECK(p1 && p2 && strncmp(p1, p2, strlen("‹EMAIL_") + 9) == 0); /* same value, same placeholder */
	uint8_t *vault = NULL;
	size_t vlen = 0;
	CHECK_OK(exai_scrub_result_vault(&vault, &vlen, r));
	CHECK(vlen > 9 && memcmp(vault, "EXSV\x01", 5) == 0);

	/* the model answers with the placeholders, one of them in upper case and with <> */
	char model[512], ph[64];
	CHECK(sscanf(p1 + strlen("‹"), "%[A-Za-z0-9_]", ph) == 1);
	char upper[64];
	for (size_t i = 0; i <= strlen(ph); i++)
		upper[i] = (char)toupper((unsigned char)ph[i]);
	snprintf(model, sizeof(model), "Sent to ‹%s› (cc <%s>). Unknown ‹EMAIL_00000000› stays.", ph, upper);
	char *back = NULL;
	size_t blen = 0;
	CHECK_OK(exai_scrub_restore(&back, &blen, vault, vlen, model, strlen(model)));
	CHECK_STREQ(back, "Sent to ann@corp.example.com (cc ann@corp.example.com). Unknown ‹EMAIL_00000000› stays.");

	/* streamed restore, split at every possible point and byte by byte */
	size_t ml = strlen(model);
	for (size_t cut = 0; cut <= ml; cut++) {
		exai_scrub_restorer *rs = NULL;
		CHECK_OK(exai_scrub_restorer_new(&rs, vault, vlen));
		struct exai__buf acc = { 0 };
		char *o;
		size_t ol;
		CHECK_OK(exai_scrub_restorer_feed(rs, &o, &ol, model, cut));
		CHECK(exai__buf_append(&acc, o, ol) == 0);
		exai_free(o);
		for (size_t i = cut; i < ml; i++) {
			CHECK_OK(exai_scrub_restorer_feed(rs, &o, &ol, model + i, 1));
			CHECK(exai__buf_append(&acc, o, ol) == 0);
			exai_free(o);
		}
		CHECK_OK(exai_scrub_restorer_finish(rs, &o, &ol));
		CHECK(exai__buf_append(&acc, o, ol) == 0);
		exai_free(o);
		if (!acc.data || strcmp(acc.data, back) != 0) {
			fprintf(stderr, "streamed restore differs at cut %zu: %s\n", cut, acc.data ? acc.data : "");
			test_failures++;
			exai__buf_free(&acc);
			exai_scrub_restorer_free(rs);
			break;
		}
		exai__buf_free(&acc);
		exai_scrub_restorer_free(rs);
	}
	exai_free(back);

	/* sealed under the tenant's key, opened only with the same key, tenant and request */
	uint8_t key[32] = { 9, 8, 7 }, *sealed = NULL, *opened = NULL;
	size_t slen = 0, olen = 0;
	CHECK_OK(exai_scrub_vault_seal(&sealed, &slen, vault, vlen, key, "tenant-dek-1", "acme", "req-42"));
	CHECK(slen > vlen && sealed && sealed[0] == 0x02); /* AWS Encryption SDK message format v2 */
	CHECK(sealed && !memmem(sealed, slen, "ann@corp", 8));
	CHECK_OK(exai_scrub_vault_open(&opened, &olen, sealed, slen, key, "tenant-dek-1", "acme", "req-42"));
	CHECK(olen == vlen && opened && memcmp(opened, vault, vlen) == 0);
	exai_secure_free(opened);
	CHECK_RC(exai_scrub_vault_open(&opened, &olen, sealed, slen, key, "tenant-dek-1", "other", "req-42"), -EBADMSG);
	CHECK_RC(exai_scrub_vault_open(&opened, &olen, sealed, slen, key, "tenant-dek-1", "acme", "req-43"), -EBADMSG);
	key[0] ^= 1;
	CHECK_RC(exai_scrub_vault_open(&opened, &olen, sealed, slen, key, "tenant-dek-1", "acme", "req-42"), -EBADMSG);
	key[0] ^= 1;
	sealed[slen / 2] ^= 1;
	CHECK_RC(exai_scrub_vault_open(&opened, &olen, sealed, slen, key, "tenant-dek-1", "acme", "req-42"), -EBADMSG);
	exai_free(sealed);

	/* a damaged vault is refused */
	vault[vlen - 1 - 3] ^= 0x7f;
	CHECK_RC(exai_scrub_restore(&back, &blen, vault, vlen - 1, "x", 1), -EBADMSG);
	CHECK_RC(exai_scrub_restore(&back, &blen, (const uint8_t *)"EXSV\x02", 5, "x", 1), -EBADMSG);
	exai_secure_free(vault);
	exai_scrub_result_free(r);

	/* no vault outside pseudo mode */
	r = scrub(s, text, EXAI_SCRUB_MASK);
	CHECK_RC(exai_scrub_result_vault(&vault, &vlen, r), -ENOENT);
	exai_scrub_result_free(r);
	exai_scrubber_free(s);
}

static void decoders(void)
{
	exai_scrubber *s = mk(NULL, EXAI_SCRUBBER_NO_STAGE2, NULL);
	/* base64 of "password: s3cr3t-Horse!!" */
	const char *b64 = "cGFzc3dvcmQ6IHMzY3IzdC1Ib3JzZSEh";
	char text[256];
	snprintf(text, sizeof(text), "config=%s end", b64);
	exai_scrub_result *r = scrub(s, text, EXAI_SCRUB_PLACEHOLDER);
	CHECK(exai_scrub_result_count(r) == 1);
	const struct exai_scrub_finding *f = exai_scrub_result_finding(r, 0);
	CHECK(f && f->decoded == 1 && strcmp(f->cls, "password") == 0);
	/* the secret's bytes are inside the base64 run, mapped back to it */
	CHECK(f && f->start >= 7 && f->end <= 7 + strlen(b64) && f->start > 7 + 8);
	exai_scrub_result_free(r);

	/* URL-encoded e-mail, and a PEM key inside a JSON string with escaped newlines */
	r = scrub(s, "GET /x?to=bob%2Esmith%40mail.test.org&y=1", EXAI_SCRUB_PLACEHOLDER);
	CHECK(exai_scrub_result_count(r) == 1);
	f = exai_scrub_result_finding(r, 0);
	CHECK(f && f->start == 10 && f->end == 10 + strlen("bob%2Esmith%40mail.test.org"));
	exai_scrub_result_free(r);
	const char *json = "{\"key\": \"-----BEGIN RSA PRIVATE KEY-----\\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\\n-----END RSA PRIVATE KEY-----\\n\"}";
	r = scrub(s, json, EXAI_SCRUB_PLACEHOLDER);
	CHECK(exai_scrub_result_count(r) == 1);
	CHECK_STREQ(exai_scrub_result_text(r, NULL), "{\"key\": \"‹PRIVATE_KEY›\\n\"}");
	exai_scrub_result_free(r);
	/* hex of base64 of a password assignment: depth 2 */
	char hex[256] = "";
	for (size_t i = 0; i < strlen(b64); i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)b64[i]);
	snprintf(text, sizeof(text), "blob %s", hex);
	r = scrub(s, text, EXAI_SCRUB_PLACEHOLDER);
	CHECK(exai_scrub_result_count(r) == 1 && exai_scrub_result_finding(r, 0)->decoded == 2);
	exai_scrub_result_free(r);
	exai_scrubber_free(s);
}

static void policy(void)
{
	exai_scrubber *s = mk(NULL, EXAI_SCRUBBER_NO_STAGE2,
			      "{\"version\":1, \"allow\":{\"literals\":[\"ok@corp.example.com\"], \"regexes\":[\"[a-z]+@allowed\\\\.org\"]},"
			      " \"classes\":{\"payment_card\":{\"enabled\":false}, \"email\":{\"mode\":\"placeholder\"}}}");
	exai_scrub_result *r = scrub(s, "ok@corp.example.com bad@corp.example.com joe@allowed.org 4111111111111111",
				     EXAI_SCRUB_MASK);
	CHECK_STREQ(exai_scrub_result_text(r, NULL), "ok@corp.example.com ‹EMAIL› joe@allowed.org 4111111111111111");
	exai_scrub_result_free(r);
	exai_scrubber_free(s);

	const char *packs[] = { pack_text };
	EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1, .flags = EXAI_SCRUBBER_NO_BUILTIN,
		  .policy = "{\"version\":1, \"classes\":{\"nope\":{\"enabled\":false}}}");
	CHECK_RC(exai_scrubber_new(&s, NULL, &o), -EINVAL);
	CHECK(strstr(exai_errmsg(), "classes.nope") != NULL);
	o.policy = "{\"version\":1, \"allow\":{\"regexes\":[\"(\"]}}";
	CHECK_RC(exai_scrubber_new(&s, NULL, &o), -EINVAL);
	CHECK(strstr(exai_errmsg(), "allow.regexes[0]") != NULL);
}

static void bad_pack(const char *patch_from, const char *patch_to, const char *want)
{
	char *p = strdup(pack_text);
	char *at = strstr(p, patch_from);
	CHECK(at != NULL);
	if (!at) {
		free(p);
		return;
	}
	size_t n = strlen(p) - strlen(patch_from) + strlen(patch_to) + 1;
	char *q = malloc(n);
	snprintf(q, n, "%.*s%s%s", (int)(at - p), p, patch_to, at + strlen(patch_from));
	const char *packs[] = { q };
	EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1, .flags = EXAI_SCRUBBER_NO_BUILTIN);
	exai_scrubber *s = NULL;
	CHECK_RC(exai_scrubber_new(&s, NULL, &o), -EINVAL);
	if (!strstr(exai_errmsg(), want)) {
		fprintf(stderr, "error '%s' lacks '%s'\n", exai_errmsg(), want);
		test_failures++;
	}
	exai_scrubber_free(s);
	free(q);
	free(p);
}

static void bad_packs(void)
{
	bad_pack("\"validator\": \"luhn\"", "\"validator\": \"lunh\"", "pattern 'test.card': unknown validator 'lunh'");
	bad_pack("\\\\b(tk_[A-Za-z0-9]{24})", "\\\\b(tk_[A-Za-z0-9{24})", "pattern 'test.token': invalid regex");
	bad_pack("\"negative\": [\n     \"a@b\"\n    ]", "\"negative\": []", "pattern 'test.email': missing examples");
	bad_pack("\"id\": \"test.email\"", "\"id\": \"test.token\"", "pattern 'test.token': duplicate id");
	bad_pack("\"group\": 1,\n   \"caseless\": false", "\"group\": 3,\n   \"caseless\": false", "capture groups");
	/* PCRE2 accepts it, Hyperscan cannot (a backreference-free construct it lacks: \\C-like
	 * atomic recursion) */
	bad_pack("\\\\b(tk_[A-Za-z0-9]{24})\\\\b", "(tk_(?R)?x)", "pattern 'test.token': Hyperscan cannot compile");
	bad_pack("{\n \"format\": 1", "{\n \"format\": 3", "'format' must be 1 or 2");
	bad_pack("\"kind\": \"pii\"", "\"kind\": \"pi\"", "'kind'");
	bad_pack("\"validator\": \"luhn\"", "\"validator\": \"luhn\", \"trigger\": {\"run\": \"digit\", \"min\": 12}",
		 "pattern 'test.card': 'trigger' needs \"format\": 2");
	bad_pack("\"validator\": \"luhn\"", "\"validator\": \"uk_nhs\"",
		 "pattern 'test.card': validator 'uk_nhs' needs \"format\": 2");

	/* the pack's own examples pass */
	size_t fails = 99;
	char *report = NULL;
	CHECK_OK(exai_scrub_pack_test(&fails, &report, NULL, pack_text));
	CHECK(fails == 0);
	if (fails)
		fprintf(stderr, "%s", report);
	exai_free(report);
}

static void streaming(void)
{
	exai_scrubber *s = mk(NULL, 0, NULL);
	/* a long text with findings everywhere, some across every possible chunk boundary */
	struct exai__buf t = { 0 };
	for (int i = 0; i < 3000; i++)
		CHECK(exai__buf_printf(&t, "line %d: mail u%d@corp.example.com pw password=Zq%dxHorse tk_Q8fZ2mLp0Xc7Rw4Tn9Vb%04d é\n",
				       i, i, i, i) == 0);
	CHECK(exai__buf_append(&t, "\xff\xfe tail", 7) == 0); /* invalid UTF-8 passes through */
	exai_scrub_result *whole = NULL;
	EXAI_OPTS(exai_scrub_text_opts, to, .mode = EXAI_SCRUB_PLACEHOLDER);
	CHECK_OK(exai_scrub_text(&whole, s, t.data, t.len, &to));
	CHECK(exai_scrub_result_count(whole) >= 9000);
	CHECK(exai_scrub_result_invalid_utf8(whole));
	srand(7);
	for (int round = 0; round < 4; round++) {
		bool same;
		exai_scrub_stream *st = stream_check(s, &to, t.data, t.len, round == 0 ? 7 : 5000, whole, &same);
		CHECK(exai_scrub_result_invalid_utf8(exai_scrub_stream_result(st)));
		exai_scrub_stream_free(st);
	}
	exai_scrub_result_free(whole);

	/* the hold-back is what the stream keeps: on text without findings the output lags the
	 * input by at most exai_scrubber_holdback() bytes after every feed, and by less than that
	 * only a step (4 KiB) after the first full hold-back */
	t.len = 0;
	while (t.len < 300000)
		CHECK(exai__buf_printf(&t, "the request fails when the server returns a timeout %zu\n", t.len % 97) == 0);
	exai_scrub_stream *st = NULL;
	CHECK_OK(exai_scrub_stream_new(&st, s, &to));
	size_t fed = 0, outn = 0, most = 0, hb = exai_scrubber_holdback(s);
	CHECK(hb > EXAI__SCRUB_WINDOW_MAX && hb < 3 * EXAI__SCRUB_WINDOW_MAX);
	for (size_t chunk = 1000; fed < t.len; chunk = chunk == 1000 ? 70000 : 1000) {
		size_t n = t.len - fed < chunk ? t.len - fed : chunk;
		char *p;
		size_t pl;
		CHECK_OK(exai_scrub_stream_feed(st, &p, &pl, t.data + fed, n));
		fed += n;
		outn += pl;
		exai_free(p);
		CHECK(fed - outn <= hb);
		most = fed - outn > most ? fed - outn : most;
	}
	CHECK(most + EXAI__SCRUB_WINDOW_MAX >= hb); /* the bound is reached, not loose */
	exai_scrub_stream_free(st);
	exai__buf_free(&t);
	exai_scrubber_free(s);
}

struct seen {
	int events;
	char last[4096];
};

static int on_event(void *data, json_t *ev)
{
	struct seen *s = data;
	char *d = json_dumps(ev, JSON_SORT_KEYS);
	s->events++;
	snprintf(s->last, sizeof(s->last), "%s", d);
	free(d);
	return 0;
}

static void cache_audit_and_input(void)
{
	char *dir = test_tmpdir();
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = dir);
	exai_ctx *ctx = NULL;
	CHECK_OK(exai_ctx_new(&ctx, &co));
	exai_scrubber *s = mk(ctx, 0, NULL);
	char scrubdir[4096];
	snprintf(scrubdir, sizeof(scrubdir), "%s/scrub", dir);
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "ls %s/*.hsdb >/dev/null 2>&1", scrubdir);
	CHECK(system(cmd) == 0);
	exai_scrubber_free(s);
	/* corrupt the cache: it is rebuilt, not trusted */
	snprintf(cmd, sizeof(cmd), "for f in %s/*.hsdb; do printf 'garbage' | dd of=$f bs=1 seek=100 conv=notrunc 2>/dev/null; done", scrubdir);
	CHECK(system(cmd) == 0);
	s = mk(ctx, 0, NULL);
	exai_scrub_result *r = scrub(s, "mail bob.smith@mail.test.org", EXAI_SCRUB_MASK);
	CHECK(exai_scrub_result_count(r) == 1);
	exai_scrub_result_free(r);
	exai_scrubber_free(s);
	/* truncated cache */
	snprintf(cmd, sizeof(cmd), "for f in %s/*.hsdb; do truncate -s 20 $f; done", scrubdir);
	CHECK(system(cmd) == 0);
	s = mk(ctx, 0, NULL);

	struct seen seen = { 0 };
	CHECK_OK(exai__ctx_set_emitter(ctx, on_event, &seen));
	const char *text = "mail bob.smith@mail.test.org pw password=Sup3rSecretHorse";
	r = scrub(s, text, EXAI_SCRUB_MASK);
	CHECK(seen.events == 1);
	CHECK(strstr(seen.last, "\"email\": 1") && strstr(seen.last, "\"password\": 1"));
	CHECK(!strstr(seen.last, "bob.smith") && !strstr(seen.last, "Sup3r") && !strstr(seen.last, "mail "));
	exai_scrub_result_free(r);

	/* NUL bytes and invalid UTF-8 pass through; an oversized text is refused */
	const char nul[] = "a\0b bob.smith@mail.test.org \xc3\x28 end";
	exai_scrub_result *rr = NULL;
	EXAI_OPTS(exai_scrub_text_opts, to, .mode = EXAI_SCRUB_PLACEHOLDER, .no_audit = 1);
	CHECK_OK(exai_scrub_text(&rr, s, nul, sizeof(nul) - 1, &to));
	size_t ol;
	const char *o = exai_scrub_result_text(rr, &ol);
	CHECK(ol == sizeof("a\0b ‹EMAIL› \xc3\x28 end") - 1 && memcmp(o, "a\0b ‹EMAIL› \xc3\x28 end", ol) == 0);
	CHECK(exai_scrub_result_invalid_utf8(rr));
	exai_scrub_result_free(rr);
	CHECK(seen.events == 1);
	exai_scrubber_free(s);

	const char *packs[] = { pack_text };
	EXAI_OPTS(exai_scrubber_opts, o2, .packs = packs, .n_packs = 1, .flags = EXAI_SCRUBBER_NO_BUILTIN, .max_input = 16);
	CHECK_OK(exai_scrubber_new(&s, NULL, &o2));
	CHECK_RC(exai_scrub_text(&rr, s, "01234567890123456789", 20, NULL), -E2BIG);
	/* hash mode without a key */
	EXAI_OPTS(exai_scrub_text_opts, th, .mode = EXAI_SCRUB_HASH);
	CHECK_RC(exai_scrub_text(&rr, s, "x", 1, &th), -EINVAL);
	exai_scrubber_free(s);
	/* pathological input: bounded time (the test's timeout guards it) */
	struct exai__buf big = { 0 };
	for (int i = 0; i < 200000; i++)
		CHECK(exai__buf_append(&big, i % 50 ? "a" : "\n", 1) == 0);
	s = mk(NULL, 0, NULL);
	CHECK_OK(exai_scrub_text(&rr, s, big.data, big.len, &to));
	exai_scrub_result_free(rr);
	exai_scrubber_free(s);
	exai__buf_free(&big);
	CHECK_OK(exai__ctx_set_emitter(ctx, NULL, NULL));
	exai_ctx_unref(ctx);
	test_rmrf(dir);
	free(dir);
}

/* A literal-free regex with keywords is gated: Hyperscan looks for the keyword and PCRE2 for
 * the regex around it; the keyword counts from 64 bytes before the match to its end. */
static void keyword_gate(void)
{
	static const char pack[] =
		"{\"format\":1,\"group\":\"gate\",\"patterns\":[{\"id\":\"acct\",\"class\":\"account\","
		"\"kind\":\"pii\",\"severity\":\"high\",\"regex\":\"\\\\b([0-9]{3}-[0-9]{4}(?: [0-9]{2}){0,100})\\\\b\","
		"\"group\":1,\"caseless\":false,\"keywords\":[\"acct\"],\"validator\":\"none\",\"min_entropy\":0,"
		"\"examples\":{\"positive\":[{\"text\":\"acct 123-4567\",\"secret\":\"123-4567\"}],\"negative\":[\"123-4567\"]}}]}";
	const char *packs[] = { pack };
	EXAI_OPTS(exai_scrubber_opts, o, .packs = packs, .n_packs = 1,
		  .flags = EXAI_SCRUBBER_NO_BUILTIN | EXAI_SCRUBBER_NO_STAGE2 | EXAI_SCRUBBER_NO_DECODE);
	exai_scrubber *s = NULL;
	CHECK_OK(exai_scrubber_new(&s, NULL, &o));
	CHECK(s && s->set.pats[0].gate == EXAI__GATE_KEYWORD && s->n_lits == 1);
	char text[1024];
	struct {
		size_t gap; /* bytes between the keyword's start and the match */
		bool found;
	} cases[] = { { 5, true }, { 64, true }, { 65, false }, { 300, false } };
	for (size_t k = 0; k < EXAI__ARRAY_SIZE(cases); k++) {
		snprintf(text, sizeof(text), "ACCT%*s123-4567 end", (int)cases[k].gap - 4, "");
		exai_scrub_result *r = scrub(s, text, EXAI_SCRUB_PLACEHOLDER);
		CHECK(exai_scrub_result_count(r) == (cases[k].found ? 1u : 0u));
		if (cases[k].found && exai_scrub_result_count(r) == 1)
			CHECK(exai_scrub_result_finding(r, 0)->start == cases[k].gap);
		exai_scrub_result_free(r);
	}
	/* a keyword after the match does not count; one at the far end of a long match does */
	exai_scrub_result *r = scrub(s, "123-4567 acct", EXAI_SCRUB_PLACEHOLDER);
	CHECK(exai_scrub_result_count(r) == 0);
	exai_scrub_result_free(r);
	struct exai__buf b = { 0 };
	CHECK(exai__buf_printf(&b, "x 123-4567") == 0);
	for (int i = 0; i < 90; i++)
		CHECK(exai__buf_printf(&b, " %02d", i) == 0);
	CHECK(exai__buf_printf(&b, " acct") == 0); /* ends the match's last group: 'acct' at me + 1 */
	EXAI_OPTS(exai_scrub_text_opts, to, .mode = EXAI_SCRUB_PLACEHOLDER);
	CHECK_OK(exai_scrub_text(&r, s, b.data, b.len, &to));
	CHECK(exai_scrub_result_count(r) == 0);
	exai_scrub_result_free(r);
	b.len -= 5;
	CHECK(exai__buf_printf(&b, "acct") == 0); /* "... 89acct": no \b, the match stops at 88 */
	CHECK_OK(exai_scrub_text(&r, s, b.data, b.len, &to));
	CHECK(exai_scrub_result_count(r) == 0);
	exai_scrub_result_free(r);
	/* many occurrences, windows merged: every one found once */
	b.len = 0;
	for (int i = 0; i < 500; i++)
		CHECK(exai__buf_printf(&b, "acct %03d-%04d; ", i, i * 7) == 0);
	CHECK_OK(exai_scrub_text(&r, s, b.data, b.len, &to));
	CHECK(exai_scrub_result_count(r) == 500);
	exai_scrub_result_free(r);
	exai__buf_free(&b);
	exai_scrubber_free(s);
}

/* Overlaps: a secret outranks personal data over the same bytes. The built-in e-mail pattern
 * reads "Wd8!kR2qLz@db.prod.internal" as an address; the credential must win, whole. */
static void secret_over_pii(void)
{
	EXAI_OPTS(exai_scrubber_opts, o, .flags = EXAI_SCRUBBER_NO_STAGE2);
	exai_scrubber *s = NULL;
	CHECK_OK(exai_scrubber_new(&s, NULL, &o));
	const char *text = "DATABASE_URL=postgresql://app:Wd8!kR2qLz@db.prod.internal:5432/app";
	exai_scrub_result *r = scrub(s, text, EXAI_SCRUB_PLACEHOLDER);
	const char *pw = strstr(text, "Wd8!");
	CHECK(exai_scrub_result_count(r) == 1);
	const struct exai_scrub_finding *f = exai_scrub_result_finding(r, 0);
	CHECK(f && strcmp(f->cls, "url_with_credentials") == 0 && f->start <= (size_t)(pw - text) &&
	      f->end >= (size_t)(pw - text) + 10);
	CHECK(strstr(exai_scrub_result_text(r, NULL), "Wd8") == NULL);
	exai_scrub_result_free(r);
	exai_scrubber_free(s);
}

int main(void)
{
	pack_text = read_src("tests/unit/data/scrub-test-pack.json");
	basics();
	secret_over_pii();
	pseudo_and_restore();
	decoders();
	policy();
	bad_packs();
	streaming();
	keyword_gate();
	cache_audit_and_input();
	free(pack_text);
	return test_done();
}
