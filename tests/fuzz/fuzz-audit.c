/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-audit: the audit module's parsers on untrusted bytes: record frames, signed notes,
 * verifier keys, checkpoint bodies, prune records and events offered for appending. */
#include <stdlib.h>
#include <string.h>

#include "audit/audit-internal.h"

static const char vkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct exai__vkey vk;
	static bool init;
	if (!init) {
		exai__sodium_init();
		exai__vkey_parse(&vk, vkey);
		init = true;
	}
	/* frames, one after another */
	for (size_t off = 0; off < size;) {
		struct exai__rec r;
		size_t len;
		if (exai__rec_decode(&r, data + off, size - off, &len) < 0)
			break;
		off += len;
	}
	uint64_t first;
	exai__seg_header_check(data, size, &first);
	size_t tl;
	exai__note_verify(&vk, (const char *)data, size, &tl);
	char *origin = NULL;
	uint64_t n;
	uint8_t root[32];
	if (exai_audit_checkpoint_parse(&origin, &n, root, (const char *)data, size) == 0)
		exai_free(origin);
	struct exai__prune p;
	exai__prune_parse(&p, (const char *)data, size);
	char *s = exai__strndup((const char *)data, size);
	struct exai__vkey v;
	if (s)
		exai__vkey_parse(&v, s);
	free(s);
	json_t *o = NULL;
	if (size && exai__json_parse(&o, (const char *)data, size) == 0) {
		struct exai__event_parts parts;
		if (exai__event_prepare(&parts, o, 65536) == 0) {
			struct exai__buf b = { 0 };
			exai__event_assemble(&b, &parts, "fuzz", "00", 1);
			exai__buf_free(&b);
			exai__event_parts_free(&parts);
		}
		json_decref(o);
	}
	return 0;
}
