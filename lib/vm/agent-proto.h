/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent-proto.h: the wire format between libexai (host) and exai-agent (guest), shared by
 * both sides. See docs/formats/agent.md. Depends on libc only: the guest agent is a static
 * binary that links this file and nothing else of libexai.
 *
 * A frame is a 12-byte header followed by a payload:
 *   magic   u16  0xEA1A (big-endian)
 *   type    u8   EXAI_AP_T_*
 *   flags   u8   EXAI_AP_F_*
 *   channel u32  the process or transfer the frame belongs to (0: the connection)
 *   length  u32  payload bytes, at most the receiver's announced maximum
 * Payloads of control frames are TLV lists (tag u16, length u32, value); stream frames
 * (STDIN, STDOUT, STDERR, DATA) carry raw bytes. All integers are big-endian.
 */
#ifndef EXAI_AGENT_PROTO_H
#define EXAI_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXAI_AP_MAGIC 0xEA1Au
#define EXAI_AP_HDR_LEN 12u
#define EXAI_AP_VERSION 1u
/* Largest payload either side may ever announce, and the default it announces. */
#define EXAI_AP_MAX_PAYLOAD (1u << 20)
/* Largest payload accepted before the handshake completed (a HELLO is far smaller). */
#define EXAI_AP_PREHELLO_MAX 4096u
/* Bounds on what an EXEC may carry. */
#define EXAI_AP_MAX_ARGS 4096u
#define EXAI_AP_MAX_STR 65536u
#define EXAI_AP_MAX_PATH 4095u
/* Chunk size of file transfers (a DATA payload). */
#define EXAI_AP_CHUNK (256u << 10)
/* The guest vsock port the agent listens on (Firecracker hybrid vsock, AF_VSOCK). */
#define EXAI_AP_VSOCK_PORT 5252u
/* The name of the virtio-serial port the agent serves (QEMU). */
#define EXAI_AP_PORT_NAME "exai.agent"

enum exai_ap_type {
	EXAI_AP_T_HELLO = 1,        /* both ways, first frame: versions, max payload, name */
	EXAI_AP_T_ERROR = 2,        /* either way: CODE (errno), MESSAGE; on a channel or 0 */
	EXAI_AP_T_HEALTH = 3,       /* host -> agent */
	EXAI_AP_T_HEALTH_REPLY = 4, /* agent -> host: UPTIME_MS, MEM_AVAIL_KIB, NPROCS */
	EXAI_AP_T_EXEC = 16,        /* host -> agent: ARG..., ENV..., CWD, UID, GID, TIMEOUT_MS */
	EXAI_AP_T_STARTED = 17,     /* agent -> host: PID */
	EXAI_AP_T_STDIN = 18,       /* host -> agent: raw bytes; flag EOF closes stdin */
	EXAI_AP_T_STDOUT = 19,      /* agent -> host: raw bytes */
	EXAI_AP_T_STDERR = 20,      /* agent -> host: raw bytes */
	EXAI_AP_T_SIGNAL = 21,      /* host -> agent: SIGNAL */
	EXAI_AP_T_EXIT = 22,        /* agent -> host: EXIT_CODE or SIGNAL, TIMED_OUT */
	EXAI_AP_T_ATTACH = 23,      /* host -> agent: take over a running process's streams */
	EXAI_AP_T_ATTACHED = 24,    /* agent -> host: PID */
	EXAI_AP_T_PUT = 32,         /* host -> agent: PATH, MODE, SIZE; DATA...; END */
	EXAI_AP_T_GET = 33,         /* host -> agent: PATH */
	EXAI_AP_T_DATA = 34,        /* either way: a chunk of a file */
	EXAI_AP_T_END = 35,         /* either way: SIZE, SHA256 of the whole file */
	EXAI_AP_T_PUT_DONE = 36,    /* agent -> host: SIZE, SHA256 as written */
	EXAI_AP_T_GET_INFO = 37,    /* agent -> host: SIZE, MODE, before the DATA frames */
};

enum exai_ap_flags {
	EXAI_AP_F_EOF = 1u << 0, /* STDIN: close the process's standard input after the data */
};

enum exai_ap_tag {
	EXAI_AP_TAG_VERSION_MIN = 1,  /* u32 */
	EXAI_AP_TAG_VERSION_MAX = 2,  /* u32 */
	EXAI_AP_TAG_MAX_PAYLOAD = 3,  /* u32 */
	EXAI_AP_TAG_NAME = 4,         /* string */
	EXAI_AP_TAG_CODE = 5,         /* u32, a positive errno */
	EXAI_AP_TAG_MESSAGE = 6,      /* string */
	EXAI_AP_TAG_ARG = 7,          /* string, repeated, argv[0] first */
	EXAI_AP_TAG_ENV = 8,          /* string "NAME=value", repeated */
	EXAI_AP_TAG_CWD = 9,          /* string, absolute path */
	EXAI_AP_TAG_UID = 10,         /* u32 */
	EXAI_AP_TAG_GID = 11,         /* u32 */
	EXAI_AP_TAG_TIMEOUT_MS = 12,  /* u64, 0: none */
	EXAI_AP_TAG_PID = 13,         /* u32 */
	EXAI_AP_TAG_EXIT_CODE = 14,   /* u32 */
	EXAI_AP_TAG_SIGNAL = 15,      /* u32 */
	EXAI_AP_TAG_TIMED_OUT = 16,   /* u32, 1 when the agent killed it at its timeout */
	EXAI_AP_TAG_PATH = 17,        /* string, absolute path */
	EXAI_AP_TAG_MODE = 18,        /* u32, permission bits */
	EXAI_AP_TAG_SIZE = 19,        /* u64 */
	EXAI_AP_TAG_SHA256 = 20,      /* 32 bytes */
	EXAI_AP_TAG_UPTIME_MS = 21,   /* u64 */
	EXAI_AP_TAG_MEM_AVAIL_KIB = 22, /* u64 */
	EXAI_AP_TAG_NPROCS = 23,      /* u32, processes the agent tracks */
};

struct exai_ap_frame {
	uint8_t type;
	uint8_t flags;
	uint32_t chan;
	uint32_t len;
	const uint8_t *payload; /* points into the decoded buffer */
};

/* Decodes one frame from @buf[0..@len). Returns 1 and sets *@f and *@consumed when a whole
 * frame is there, 0 when more bytes are needed, -EBADMSG on a bad magic and -EMSGSIZE when
 * the announced payload exceeds @max_payload (both fatal for the connection). */
int exai__ap_decode(struct exai_ap_frame *f, size_t *consumed, const uint8_t *buf, size_t len,
		    uint32_t max_payload);
/* Writes a header. */
void exai__ap_header(uint8_t hdr[EXAI_AP_HDR_LEN], uint8_t type, uint8_t flags, uint32_t chan,
		     uint32_t len);
/* Whether @type is one this version knows (others get an ERROR, not a disconnect). */
bool exai__ap_type_known(uint8_t type);
/* A name for @type, for messages ("EXEC", ...); "unknown" otherwise. */
const char *exai__ap_type_name(uint8_t type);

/* ---- building a frame in a caller's buffer ----------------------------------------------- */
struct exai_ap_w {
	uint8_t *buf;
	size_t cap; /* header + at most the peer's max payload */
	size_t len; /* starts at EXAI_AP_HDR_LEN */
	bool overflow;
};
void exai__ap_w_init(struct exai_ap_w *w, uint8_t *buf, size_t cap);
void exai__ap_w_bytes(struct exai_ap_w *w, uint16_t tag, const void *p, size_t n);
void exai__ap_w_str(struct exai_ap_w *w, uint16_t tag, const char *s);
void exai__ap_w_u32(struct exai_ap_w *w, uint16_t tag, uint32_t v);
void exai__ap_w_u64(struct exai_ap_w *w, uint16_t tag, uint64_t v);
/* Appends raw bytes (stream frames). */
void exai__ap_w_raw(struct exai_ap_w *w, const void *p, size_t n);
/* Writes the header; returns the frame's total length, or -EMSGSIZE if it overflowed. */
long exai__ap_w_finish(struct exai_ap_w *w, uint8_t type, uint8_t flags, uint32_t chan);

/* ---- reading a TLV payload --------------------------------------------------------------- */
struct exai_ap_r {
	const uint8_t *p;
	size_t len, off;
};
void exai__ap_r_init(struct exai_ap_r *r, const uint8_t *p, size_t len);
/* Next item: 1 with *@tag, *@val, *@vlen set; 0 at the end; -EBADMSG when truncated. */
int exai__ap_r_next(struct exai_ap_r *r, uint16_t *tag, const uint8_t **val, uint32_t *vlen);
/* Value decoders: -EBADMSG on a wrong length (or a NUL inside / too long a string). */
int exai__ap_val_u32(const uint8_t *val, uint32_t vlen, uint32_t *out);
int exai__ap_val_u64(const uint8_t *val, uint32_t vlen, uint64_t *out);
/* Copies a string value into a new NUL-terminated malloc'd string (at most @max bytes). */
int exai__ap_val_str(const uint8_t *val, uint32_t vlen, size_t max, char **out);

/* ---- handshake --------------------------------------------------------------------------- */
struct exai_ap_hello {
	uint32_t version_min, version_max, max_payload;
	char name[64];
};
/* Builds this side's HELLO into @w. */
long exai__ap_hello_build(struct exai_ap_w *w, const char *name, uint32_t max_payload);
/* Parses the peer's HELLO. -EBADMSG when malformed or a field is missing. */
int exai__ap_hello_parse(struct exai_ap_hello *h, const struct exai_ap_frame *f);
/* The version both speak, or -EPROTONOSUPPORT. Clamps the peer's max payload into
 * [EXAI_AP_PREHELLO_MAX, EXAI_AP_MAX_PAYLOAD] in *@peer_max. */
int exai__ap_negotiate(const struct exai_ap_hello *peer, uint32_t *version, uint32_t *peer_max);

/* ---- SHA-256 (FIPS 180-4), so that the static guest needs no crypto library -------------- */
struct exai_ap_sha256 {
	uint32_t h[8];
	uint64_t nbytes;
	uint8_t block[64];
	size_t blen;
};
void exai__ap_sha256_init(struct exai_ap_sha256 *s);
void exai__ap_sha256_update(struct exai_ap_sha256 *s, const void *p, size_t n);
void exai__ap_sha256_final(struct exai_ap_sha256 *s, uint8_t out[32]);
/* The SHA-256 of everything read from @fd until EOF. 0, or -errno of a failed read. */
int exai__ap_sha256_fd(int fd, uint8_t out[32]);

static inline uint32_t exai__ap_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void exai__ap_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif /* EXAI_AGENT_PROTO_H */
