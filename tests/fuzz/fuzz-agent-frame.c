/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-agent-frame: the agent protocol's frame decoder, TLV reader and HELLO parser
 * (lib/vm/agent-proto.c), which both the host and the guest agent run on untrusted input. */
#include <stdint.h>
#include <stdlib.h>

#include "agent-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	for (int limit = 0; limit < 2; limit++) {
		uint32_t max = limit ? EXAI_AP_PREHELLO_MAX : EXAI_AP_MAX_PAYLOAD;
		pos = 0;
		for (;;) {
			struct exai_ap_frame f;
			size_t used = 0;
			int r = exai__ap_decode(&f, &used, data + pos, size - pos, max);
			if (r <= 0)
				break;
			if (used < EXAI_AP_HDR_LEN || used > size - pos || f.len > max)
				abort();
			struct exai_ap_hello h;
			uint32_t version, peer_max;
			if (exai__ap_hello_parse(&h, &f) == 0 &&
			    exai__ap_negotiate(&h, &version, &peer_max) == 0 &&
			    (peer_max < EXAI_AP_PREHELLO_MAX || peer_max > EXAI_AP_MAX_PAYLOAD))
				abort();
			struct exai_ap_r rd;
			uint16_t tag;
			const uint8_t *v;
			uint32_t vl, u32;
			uint64_t u64;
			exai__ap_r_init(&rd, f.payload, f.len);
			while (exai__ap_r_next(&rd, &tag, &v, &vl) > 0) {
				if (v < f.payload || v + vl > f.payload + f.len)
					abort();
				char *s = NULL;
				(void)exai__ap_val_u32(v, vl, &u32);
				(void)exai__ap_val_u64(v, vl, &u64);
				if (exai__ap_val_str(v, vl, EXAI_AP_MAX_STR, &s) == 0)
					free(s);
			}
			pos += used;
		}
	}
	return 0;
}
