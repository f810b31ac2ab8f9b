/* SPDX-License-Identifier: Apache-2.0 */
/* segment.c: segment files, record framing, the directory of a log, prune records. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-internal.h"

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* magic[8] version u32 reserved u32 first_seq u64 reserved u32 crc32c u32 */
void exai__seg_header(uint8_t out[EXAI__SEG_HDR], uint64_t first_seq)
{
	memset(out, 0, EXAI__SEG_HDR);
	memcpy(out, EXAI__SEG_MAGIC, 8);
	put32(out + 8, 1);
	put64(out + 16, first_seq);
	put32(out + 28, exai__crc32c(0, out, 28));
}

int exai__seg_header_check(const uint8_t *p, size_t n, uint64_t *retfirst)
{
	if (n < EXAI__SEG_HDR)
		return exai__err(-EBADMSG, "segment header truncated");
	if (memcmp(p, EXAI__SEG_MAGIC, 8) != 0)
		return exai__err(-EBADMSG, "segment header: bad magic");
	if (get32(p + 28) != exai__crc32c(0, p, 28))
		return exai__err(-EBADMSG, "segment header: checksum mismatch");
	if (get32(p + 8) != 1)
		return exai__err(-EBADMSG, "segment header: unknown version %u", get32(p + 8));
	*retfirst = get64(p + 16);
	return 0;
}

/* magic u32 "EXR1", type u8, reserved u8[3], seq u64, len u32, payload, crc32c u32 */
int exai__rec_frame(struct exai__buf *b, int type, uint64_t seq, const void *payload, size_t len)
{
	if (len > EXAI__REC_MAX)
		return exai__err(-EFBIG, "record of %zu bytes is too large", len);
	if (exai__buf_reserve(b, EXAI__REC_HDR + len + EXAI__REC_TRAILER) < 0)
		return exai__err(-ENOMEM, "out of memory");
	uint8_t *h = (uint8_t *)b->data + b->len;
	put32(h, EXAI__REC_MAGIC);
	h[4] = (uint8_t)type;
	h[5] = h[6] = h[7] = 0;
	put64(h + 8, seq);
	put32(h + 16, (uint32_t)len);
	memcpy(h + EXAI__REC_HDR, payload, len);
	put32(h + EXAI__REC_HDR + len, exai__crc32c(0, h, EXAI__REC_HDR + len));
	b->len += EXAI__REC_HDR + len + EXAI__REC_TRAILER;
	b->data[b->len] = '\0';
	return 0;
}

int exai__rec_decode(struct exai__rec *r, const uint8_t *p, size_t avail, size_t *retlen)
{
	if (avail < EXAI__REC_HDR)
		return -EAGAIN;
	if (get32(p) != EXAI__REC_MAGIC)
		return exai__err(-EBADMSG, "bad record magic");
	uint32_t len = get32(p + 16);
	if (len > EXAI__REC_MAX)
		return exai__err(-EBADMSG, "bad record length %u", len);
	if (avail < (size_t)EXAI__REC_HDR + len + EXAI__REC_TRAILER)
		return -EAGAIN;
	if (get32(p + EXAI__REC_HDR + len) != exai__crc32c(0, p, EXAI__REC_HDR + len))
		return exai__err(-EBADMSG, "record checksum mismatch");
	if (p[4] < EXAI__REC_EVENT || p[4] > EXAI__REC_PRUNE || p[5] || p[6] || p[7])
		return exai__err(-EBADMSG, "unknown record type %u", p[4]);
	r->type = p[4];
	r->seq = get64(p + 8);
	r->payload = (const char *)p + EXAI__REC_HDR;
	r->len = len;
	*retlen = EXAI__REC_HDR + len + EXAI__REC_TRAILER;
	return 0;
}

char *exai__seg_path(const char *dir, uint64_t first, const char *ext)
{
	char *p;
	if (asprintf(&p, "%s/%016" PRIx64 ".%s", dir, first, ext) < 0)
		return NULL;
	return p;
}

char *exai__log_dir(exai_ctx *ctx, const char *origin)
{
	struct exai__buf b = { 0 };
	int r = exai__buf_printf(&b, "%s/audit/", exai_ctx_state_dir(ctx));
	for (const char *c = origin; *c && r == 0; c++)
		r = *c == '/' ? exai__buf_append(&b, "%2F", 3) : exai__buf_putc(&b, *c);
	if (r) {
		exai__buf_free(&b);
		return NULL;
	}
	return exai__buf_steal(&b, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int exai__seglist_load(struct exai__seglist *l, const char *dir)
{
	memset(l, 0, sizeof(*l));
	DIR *d = opendir(dir);
	if (!d)
		return exai__err_sys(exai__neg_errno(), "cannot open %s", dir);
	struct dirent *e;
	size_t cap = 0;
	int r = 0;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n != 20 || strcmp(e->d_name + 16, ".seg") != 0 || strspn(e->d_name, "0123456789abcdef") != 16)
			continue;
		if (l->n == cap) {
			uint64_t *f = realloc(l->first, (cap = cap ? 2 * cap : 16) * sizeof(*f));
			if (!f) {
				r = exai__err(-ENOMEM, "out of memory");
				break;
			}
			l->first = f;
		}
		l->first[l->n++] = strtoull(e->d_name, NULL, 16);
	}
	closedir(d);
	if (r == 0)
		qsort(l->first, l->n, sizeof(*l->first), cmp_u64);
	return r;
}

void exai__seglist_free(struct exai__seglist *l)
{
	free(l->first);
	memset(l, 0, sizeof(*l));
}

/* {"first_seq":N,"hashes":[b64...],"origin":"...","prev":"hex","time":ms,"type":"prune","v":1} */
int exai__prune_parse(struct exai__prune *p, const char *text, size_t len)
{
	json_t *o = NULL;
	memset(p, 0, sizeof(*p));
	int r = exai__json_parse(&o, text, len);
	if (r < 0)
		return exai__err(-EBADMSG, "prune record: not JSON");
	json_t *first = json_object_get(o, "first_seq"), *hashes = json_object_get(o, "hashes");
	json_t *prev = json_object_get(o, "prev"), *v = json_object_get(o, "v");
	r = exai__err(-EBADMSG, "prune record: expected v 1, first_seq, prev and hashes");
	if (json_is_number(first) && json_is_array(hashes) && json_is_string(prev) && json_is_number(v) &&
	    json_number_value(v) == 1 && strlen(json_string_value(prev)) == 64 && json_number_value(first) >= 0 &&
	    json_array_size(hashes) <= EXAI__MERKLE_MAX) {
		p->first_seq = (uint64_t)json_number_value(first);
		memcpy(p->prev, json_string_value(prev), 65);
		p->prefix.size = p->first_seq;
		p->prefix.n = (unsigned)json_array_size(hashes);
		r = (unsigned)__builtin_popcountll(p->first_seq) == p->prefix.n ? 0 :
			exai__err(-EBADMSG, "prune record: %u hashes for tree size %llu", p->prefix.n,
				  (unsigned long long)p->first_seq);
		for (unsigned i = 0; i < p->prefix.n && r == 0; i++) {
			json_t *h = json_array_get(hashes, i);
			size_t hl;
			if (!json_is_string(h) || exai__unb64(p->prefix.h[i], 32, &hl, json_string_value(h),
							     json_string_length(h)) < 0 || hl != 32)
				r = exai__err(-EBADMSG, "prune record: hash %u is not base64 of 32 bytes", i);
		}
	}
	json_decref(o);
	return r;
}
