/* SPDX-License-Identifier: Apache-2.0 */
/* agent-proto.c: frame and TLV codec of the agent protocol (docs/formats/agent.md), and the
 * SHA-256 that checks file transfers. libc only: linked into the static guest agent too. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent-proto.h"

static const struct {
	uint8_t type;
	const char *name;
} type_names[] = {
	{ EXAI_AP_T_HELLO, "HELLO" },   { EXAI_AP_T_ERROR, "ERROR" },
	{ EXAI_AP_T_HEALTH, "HEALTH" }, { EXAI_AP_T_HEALTH_REPLY, "HEALTH_REPLY" },
	{ EXAI_AP_T_EXEC, "EXEC" },     { EXAI_AP_T_STARTED, "STARTED" },
	{ EXAI_AP_T_STDIN, "STDIN" },   { EXAI_AP_T_STDOUT, "STDOUT" },
	{ EXAI_AP_T_STDERR, "STDERR" }, { EXAI_AP_T_SIGNAL, "SIGNAL" },
	{ EXAI_AP_T_EXIT, "EXIT" },     { EXAI_AP_T_ATTACH, "ATTACH" },
	{ EXAI_AP_T_ATTACHED, "ATTACHED" }, { EXAI_AP_T_PUT, "PUT" },
	{ EXAI_AP_T_GET, "GET" },       { EXAI_AP_T_DATA, "DATA" },
	{ EXAI_AP_T_END, "END" },       { EXAI_AP_T_PUT_DONE, "PUT_DONE" },
	{ EXAI_AP_T_GET_INFO, "GET_INFO" },
};

bool exai__ap_type_known(uint8_t type)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (type_names[i].type == type)
			return true;
	return false;
}

const char *exai__ap_type_name(uint8_t type)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return "unknown";
}

void exai__ap_header(uint8_t hdr[EXAI_AP_HDR_LEN], uint8_t type, uint8_t flags, uint32_t chan,
		     uint32_t len)
{
	hdr[0] = (uint8_t)(EXAI_AP_MAGIC >> 8);
	hdr[1] = (uint8_t)EXAI_AP_MAGIC;
	hdr[2] = type;
	hdr[3] = flags;
	exai__ap_put_be32(hdr + 4, chan);
	exai__ap_put_be32(hdr + 8, len);
}

int exai__ap_decode(struct exai_ap_frame *f, size_t *consumed, const uint8_t *buf, size_t len,
		    uint32_t max_payload)
{
	/* Check the magic as soon as its bytes are there: garbage is refused early. */
	if (len >= 1 && buf[0] != (uint8_t)(EXAI_AP_MAGIC >> 8))
		return -EBADMSG;
	if (len >= 2 && buf[1] != (uint8_t)EXAI_AP_MAGIC)
		return -EBADMSG;
	if (len < EXAI_AP_HDR_LEN)
		return 0;
	uint32_t plen = exai__ap_be32(buf + 8);
	if (plen > max_payload)
		return -EMSGSIZE;
	if (len - EXAI_AP_HDR_LEN < plen)
		return 0;
	f->type = buf[2];
	f->flags = buf[3];
	f->chan = exai__ap_be32(buf + 4);
	f->len = plen;
	f->payload = buf + EXAI_AP_HDR_LEN;
	*consumed = EXAI_AP_HDR_LEN + (size_t)plen;
	return 1;
}

void exai__ap_w_init(struct exai_ap_w *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = EXAI_AP_HDR_LEN;
	w->overflow = cap < EXAI_AP_HDR_LEN;
}

void exai__ap_w_raw(struct exai_ap_w *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void exai__ap_w_bytes(struct exai_ap_w *w, uint16_t tag, const void *p, size_t n)
{
	uint8_t h[6];
	if (n > UINT32_MAX) {
		w->overflow = true;
		return;
	}
	h[0] = (uint8_t)(tag >> 8);
	h[1] = (uint8_t)tag;
	exai__ap_put_be32(h + 2, (uint32_t)n);
	exai__ap_w_raw(w, h, sizeof(h));
	exai__ap_w_raw(w, p, n);
}

void exai__ap_w_str(struct exai_ap_w *w, uint16_t tag, const char *s)
{
	exai__ap_w_bytes(w, tag, s, strlen(s));
}

void exai__ap_w_u32(struct exai_ap_w *w, uint16_t tag, uint32_t v)
{
	uint8_t b[4];
	exai__ap_put_be32(b, v);
	exai__ap_w_bytes(w, tag, b, sizeof(b));
}

void exai__ap_w_u64(struct exai_ap_w *w, uint16_t tag, uint64_t v)
{
	uint8_t b[8];
	exai__ap_put_be32(b, (uint32_t)(v >> 32));
	exai__ap_put_be32(b + 4, (uint32_t)v);
	exai__ap_w_bytes(w, tag, b, sizeof(b));
}

long exai__ap_w_finish(struct exai_ap_w *w, uint8_t type, uint8_t flags, uint32_t chan)
{
	if (w->overflow)
		return -EMSGSIZE;
	exai__ap_header(w->buf, type, flags, chan, (uint32_t)(w->len - EXAI_AP_HDR_LEN));
	return (long)w->len;
}

void exai__ap_r_init(struct exai_ap_r *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

int exai__ap_r_next(struct exai_ap_r *r, uint16_t *tag, const uint8_t **val, uint32_t *vlen)
{
	if (r->off == r->len)
		return 0;
	if (r->len - r->off < 6)
		return -EBADMSG;
	const uint8_t *h = r->p + r->off;
	uint32_t n = exai__ap_be32(h + 2);
	if (n > r->len - r->off - 6)
		return -EBADMSG;
	*tag = (uint16_t)(h[0] << 8 | h[1]);
	*val = h + 6;
	*vlen = n;
	r->off += 6 + (size_t)n;
	return 1;
}

int exai__ap_val_u32(const uint8_t *val, uint32_t vlen, uint32_t *out)
{
	if (vlen != 4)
		return -EBADMSG;
	*out = exai__ap_be32(val);
	return 0;
}

int exai__ap_val_u64(const uint8_t *val, uint32_t vlen, uint64_t *out)
{
	if (vlen != 8)
		return -EBADMSG;
	*out = (uint64_t)exai__ap_be32(val) << 32 | exai__ap_be32(val + 4);
	return 0;
}

int exai__ap_val_str(const uint8_t *val, uint32_t vlen, size_t max, char **out)
{
	if (vlen > max || memchr(val, 0, vlen))
		return -EBADMSG;
	char *s = malloc((size_t)vlen + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, val, vlen);
	s[vlen] = '\0';
	*out = s;
	return 0;
}

long exai__ap_hello_build(struct exai_ap_w *w, const char *name, uint32_t max_payload)
{
	exai__ap_w_u32(w, EXAI_AP_TAG_VERSION_MIN, EXAI_AP_VERSION);
	exai__ap_w_u32(w, EXAI_AP_TAG_VERSION_MAX, EXAI_AP_VERSION);
	exai__ap_w_u32(w, EXAI_AP_TAG_MAX_PAYLOAD, max_payload);
	exai__ap_w_str(w, EXAI_AP_TAG_NAME, name);
	return exai__ap_w_finish(w, EXAI_AP_T_HELLO, 0, 0);
}

int exai__ap_hello_parse(struct exai_ap_hello *h, const struct exai_ap_frame *f)
{
	struct exai_ap_r r;
	uint16_t tag;
	const uint8_t *v;
	uint32_t vl;
	int rc, have = 0;

	if (f->type != EXAI_AP_T_HELLO || f->chan != 0)
		return -EBADMSG;
	memset(h, 0, sizeof(*h));
	exai__ap_r_init(&r, f->payload, f->len);
	while ((rc = exai__ap_r_next(&r, &tag, &v, &vl)) > 0) {
		switch (tag) {
		case EXAI_AP_TAG_VERSION_MIN:
			rc = exai__ap_val_u32(v, vl, &h->version_min);
			have |= 1;
			break;
		case EXAI_AP_TAG_VERSION_MAX:
			rc = exai__ap_val_u32(v, vl, &h->version_max);
			have |= 2;
			break;
		case EXAI_AP_TAG_MAX_PAYLOAD:
			rc = exai__ap_val_u32(v, vl, &h->max_payload);
			have |= 4;
			break;
		case EXAI_AP_TAG_NAME:
			if (vl >= sizeof(h->name) || memchr(v, 0, vl))
				return -EBADMSG;
			memcpy(h->name, v, vl);
			h->name[vl] = '\0';
			break;
		default: /* unknown tags are ignored: later versions may add some */
			break;
		}
		if (rc < 0)
			return rc;
	}
	if (rc < 0 || have != 7 || h->version_min > h->version_max)
		return -EBADMSG;
	return 0;
}

int exai__ap_negotiate(const struct exai_ap_hello *peer, uint32_t *version, uint32_t *peer_max)
{
	if (peer->version_min > EXAI_AP_VERSION || peer->version_max < EXAI_AP_VERSION)
		return -EPROTONOSUPPORT;
	*version = EXAI_AP_VERSION;
	uint32_t m = peer->max_payload;
	if (m < EXAI_AP_PREHELLO_MAX)
		m = EXAI_AP_PREHELLO_MAX;
	if (m > EXAI_AP_MAX_PAYLOAD)
		m = EXAI_AP_MAX_PAYLOAD;
	*peer_max = m;
	return 0;
}

/* ---- SHA-256 ------------------------------------------------------------------------------ */

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh;
	for (int i = 0; i < 16; i++)
		w[i] = exai__ap_be32(p + 4 * i);
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void exai__ap_sha256_init(struct exai_ap_sha256 *s)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	memcpy(s->h, iv, sizeof(iv));
	s->nbytes = 0;
	s->blen = 0;
}

void exai__ap_sha256_update(struct exai_ap_sha256 *s, const void *data, size_t n)
{
	const uint8_t *p = data;
	s->nbytes += n;
	if (s->blen) {
		size_t take = 64 - s->blen < n ? 64 - s->blen : n;
		memcpy(s->block + s->blen, p, take);
		s->blen += take;
		p += take;
		n -= take;
		if (s->blen < 64)
			return;
		sha256_block(s->h, s->block);
		s->blen = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		sha256_block(s->h, p);
	memcpy(s->block, p, n);
	s->blen = n;
}

void exai__ap_sha256_final(struct exai_ap_sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->nbytes * 8;
	uint8_t pad[72] = { 0x80 };
	size_t padlen = (s->blen < 56 ? 56 : 120) - s->blen;
	for (int i = 0; i < 8; i++)
		pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
	exai__ap_sha256_update(s, pad, padlen + 8);
	for (int i = 0; i < 8; i++)
		exai__ap_put_be32(out + 4 * i, s->h[i]);
	memset(s, 0, sizeof(*s));
}

int exai__ap_sha256_fd(int fd, uint8_t out[32])
{
	struct exai_ap_sha256 s;
	char buf[1 << 14];
	ssize_t n;
	exai__ap_sha256_init(&s);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		exai__ap_sha256_update(&s, buf, (size_t)n);
	}
	exai__ap_sha256_final(&s, out);
	return 0;
}
