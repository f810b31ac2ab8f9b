/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-audit: the audit module's parsers on untrusted bytes: record frames, signed notes,
 * verifier keys, checkpoint bodies, prune records, spool ingest journals and events offered
 * for appending. */
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
	char *jfile = NULL;
	uint64_t jfirst;
	if (exai__spool_journal_parse((const char *)data, size, &jfile, &jfirst) == 0 && (!*jfile || strchr(jfile, '/')))
		__builtin_trap(); /* a journal may only name a file in the spool directory */
	free(jfile);
	char *s = exai__strndup((const char *)data, size);
	struct exai__vkey v;
	if (s)
		exai__vkey_parse(&v, s);
	free(s);
	/* The one-pass canonical check agrees with parse + core JCS. */
	struct exai__event_top top = { .columns = true };
	int fast = exai__canon_check((const char *)data, size, &top);
	json_t *t = NULL;
	if (fast != -E2BIG && size && exai__event_parse(&t, (const char *)data, size) == 0 && json_is_object(t)) {
		char *c = NULL;
		size_t cl;
		bool same = exai__jcs_dump(t, &c, &cl) == 0 && cl == size && memcmp(c, data, size) == 0;
		free(c);
		if (same != (fast == 0))
			__builtin_trap();
	} else if (fast == 0) {
		__builtin_trap(); /* accepted what does not even parse as an object */
	}
	json_decref(t);
	/* The text path without a parse tree gives exactly what parse + prepare give, or leaves
	 * the text to them. */
	struct exai__event_parts fastp;
	if (exai__event_prepare_text(&fastp, (const char *)data, size, 1 << 20) == 0) {
		json_t *slow = NULL;
		struct exai__event_parts slowp;
		if (exai__event_parse(&slow, (const char *)data, size) < 0 ||
		    exai__event_prepare(&slowp, slow, 1 << 20) < 0)
			__builtin_trap(); /* accepted what the general path refuses */
		struct exai__buf a = { 0 }, b = { 0 };
		if (exai__event_assemble(&a, &fastp, "fuzz", "00", 1) == 0 &&
		    exai__event_assemble(&b, &slowp, "fuzz", "00", 1) == 0) {
			/* the time each chose when absent may differ by a millisecond: compare the
			 * canonical bytes with it taken out */
			json_t *ja = NULL, *jb = NULL;
			if (exai__event_parse(&ja, a.data, a.len) == 0 && exai__event_parse(&jb, b.data, b.len) == 0) {
				json_object_set(ja, "time", json_object_get(jb, "time"));
				char *ca = NULL, *cb = NULL;
				size_t la, lb;
				if (exai__jcs_dump(ja, &ca, &la) < 0 || exai__jcs_dump(jb, &cb, &lb) < 0 || la != lb ||
				    memcmp(ca, cb, la) != 0 || (json_object_get(slow, "time") && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)))
					__builtin_trap();
				free(ca);
				free(cb);
			}
			json_decref(ja);
			json_decref(jb);
		}
		exai__buf_free(&a);
		exai__buf_free(&b);
		exai__event_parts_free(&slowp);
		exai__event_parts_free(&fastp);
		json_decref(slow);
	}
	json_t *o = NULL;
	if (size && exai__json_parse(&o, (const char *)data, size) == 0) {
		struct exai__event_parts parts;
		if (exai__event_prepare(&parts, o, 1 << 20) == 0) {
			/* The assembled event is exactly the core's JCS of the object with the log's
			 * members added. */
			struct exai__buf b = { 0 };
			if (exai__event_assemble(&b, &parts, "fuzz", "00", 1) == 0) {
				json_t *full = json_deep_copy(o);
				if (!json_object_get(full, "time")) { /* take the time the log chose */
					json_t *a = NULL;
					if (exai__event_parse(&a, b.data, b.len) == 0)
						json_object_set(full, "time", json_object_get(a, "time"));
					json_decref(a);
				}
				json_object_set_new(full, "origin", json_string("fuzz"));
				json_object_set_new(full, "prev", json_string("00"));
				json_object_set_new(full, "seq", json_integer(1));
				json_object_set_new(full, "v", json_integer(1));
				char *c = NULL;
				size_t cl;
				if (exai__jcs_dump(full, &c, &cl) == 0 && (cl != b.len || memcmp(c, b.data, cl) != 0))
					__builtin_trap();
				if (exai__canon_check(b.data, b.len, NULL) == -EBADMSG)
					__builtin_trap(); /* what we store passes our own check */
				free(c);
				json_decref(full);
			}
			exai__buf_free(&b);
			exai__event_parts_free(&parts);
		}
		json_decref(o);
	}
	return 0;
}
