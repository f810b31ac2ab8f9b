/* SPDX-License-Identifier: Apache-2.0 */
/* verify.c: verification of a log from its files alone. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-internal.h"

int exai__event_check(const struct exai__rec *rec, uint64_t want_seq, const char *want_prev, const char *origin)
{
	if (rec->seq != want_seq)
		return exai__err(-EBADMSG, "record says seq %llu, expected %llu", (unsigned long long)rec->seq,
				 (unsigned long long)want_seq);
	json_t *o = NULL;
	if (exai__event_parse(&o, rec->payload, rec->len) < 0 || !json_is_object(o)) {
		json_decref(o);
		return exai__err(-EBADMSG, "event is not a JSON object");
	}
	json_t *s = json_object_get(o, "seq"), *p = json_object_get(o, "prev"), *g = json_object_get(o, "origin");
	int r = 0;
	if (!json_is_number(s) || json_number_value(s) != (double)want_seq)
		r = exai__err(-EBADMSG, "event member seq differs from its record");
	else if (!json_is_string(p) || strcmp(json_string_value(p), want_prev) != 0)
		r = exai__err(-EBADMSG, "hash chain broken: prev is not the hash of the previous event");
	else if (!json_is_string(g) || strcmp(json_string_value(g), origin) != 0)
		r = exai__err(-EBADMSG, "event origin differs from the log's origin");
	else if (!json_is_number(json_object_get(o, "v")) || json_number_value(json_object_get(o, "v")) != 1)
		r = exai__err(-EBADMSG, "event format version (member v) is not 1");
	else {
		/* Stored bytes must be canonical, or equal events could hash differently. */
		char *c = NULL;
		size_t cl;
		if (exai__jcs_dump(o, &c, &cl) < 0 || cl != rec->len || memcmp(c, rec->payload, cl) != 0)
			r = exai__err(-EBADMSG, "event bytes are not in RFC 8785 canonical form");
		free(c);
	}
	json_decref(o);
	return r;
}

struct verifier {
	const char *origin, *dir;
	struct exai__vkey vk;
	struct exai__merkle tree;
	char prev[65];
	uint64_t next, sealed, checkpoints, events;
	bool have_prune;
	struct exai__prune prune;
};

static int check_prune_state(struct verifier *v, const struct exai__prune *p)
{
	if (v->tree.size != p->first_seq || v->tree.n != p->prefix.n ||
	    memcmp(v->tree.h, p->prefix.h, (size_t)v->tree.n * 32) != 0 || strcmp(v->prev, p->prev) != 0)
		return exai__err(-EBADMSG, "prune record for seq %llu does not match the tree and chain there",
				 (unsigned long long)p->first_seq);
	return 0;
}

static int verify_record(struct verifier *v, const struct exai__rec *rec)
{
	int r;
	size_t tl;
	if (rec->type == EXAI__REC_EVENT) {
		r = exai__event_check(rec, v->next, v->prev, v->origin);
		if (r < 0)
			return r;
		uint8_t leaf[32], h[32];
		exai_audit_merkle_leaf_hash(leaf, rec->payload, rec->len);
		exai__sha256(h, rec->payload, rec->len);
		exai__hex(v->prev, h, 32);
		exai__merkle_push(&v->tree, leaf);
		v->next++;
		v->events++;
		if (v->have_prune && v->next == v->prune.first_seq)
			return check_prune_state(v, &v->prune);
		return 0;
	}
	r = exai__note_verify(&v->vk, rec->payload, rec->len, &tl);
	if (r < 0)
		return exai__err(r, "%s: %s", rec->type == EXAI__REC_CHECKPOINT ? "checkpoint" : "prune record",
				 exai_errmsg());
	if (rec->type == EXAI__REC_CHECKPOINT) {
		char *origin = NULL;
		uint64_t size;
		uint8_t root[32], mine[32];
		r = exai_audit_checkpoint_parse(&origin, &size, root, rec->payload, tl);
		if (r < 0)
			return r;
		bool same = strcmp(origin, v->origin) == 0;
		free(origin);
		if (!same)
			return exai__err(-EBADMSG, "checkpoint names another origin");
		if (size != v->tree.size || rec->seq != size)
			return exai__err(-EBADMSG, "checkpoint of size %llu where the tree has %llu events",
					 (unsigned long long)size, (unsigned long long)v->tree.size);
		exai__merkle_root(&v->tree, mine);
		if (memcmp(mine, root, 32) != 0)
			return exai__err(-EBADMSG, "checkpoint of size %llu: root hash differs from the events' tree",
					 (unsigned long long)size);
		v->sealed = size;
		v->checkpoints++;
		return 0;
	}
	struct exai__prune p;
	r = exai__prune_parse(&p, rec->payload, tl);
	if (r == 0 && p.first_seq > v->tree.size)
		r = exai__err(-EBADMSG, "prune record names seq %llu beyond the log", (unsigned long long)p.first_seq);
	return r;
}

static int load_vkey(struct verifier *v, const char *vkey)
{
	char *text = NULL;
	if (!vkey) {
		char *path = exai__path_join(v->dir, "signing.pub");
		size_t len;
		int r = path ? exai__read_file(path, 4096, &text, &len) : -ENOMEM;
		free(path);
		if (r < 0)
			return exai__err(r, "no verifier key given and %s/signing.pub unreadable", v->dir);
		while (len && text[len - 1] == '\n')
			text[--len] = '\0';
		vkey = text;
	}
	int r = exai__vkey_parse(&v->vk, vkey);
	free(text);
	if (r == 0 && strcmp(v->vk.name, v->origin) != 0)
		r = exai__err(-EINVAL, "verifier key is for %s, not for the log %s", v->vk.name, v->origin);
	return r;
}

static int load_prune(struct verifier *v)
{
	char *path = exai__path_join(v->dir, "pruned"), *note = NULL;
	size_t len, tl;
	int r = path ? exai__read_file(path, 1 << 16, &note, &len) : -ENOMEM;
	free(path);
	if (r == -ENOENT)
		return 0;
	if (r == 0)
		r = exai__note_verify(&v->vk, note, len, &tl);
	if (r == 0)
		r = exai__prune_parse(&v->prune, note, tl);
	free(note);
	if (r < 0)
		return exai__err(-EBADMSG, "prune record file: %s", exai_errmsg());
	v->have_prune = true;
	return 0;
}

EXAI_API int exai_audit_verify(exai_ctx *ctx, const char *origin, const char *vkey,
			       struct exai_audit_verify_result *res)
{
	if (!ctx || !origin)
		return exai__err(-EINVAL, "exai_audit_verify: no context or origin");
	if (!exai__origin_valid(origin))
		return exai__err(-EINVAL, "\"%.140s\" is not a valid log origin", origin);
	struct verifier v = { .origin = origin };
	struct exai__seglist segs = { 0 };
	char *dir = exai__log_dir(ctx, origin);
	int64_t bad = -1;
	int r = dir ? 0 : exai__err(-ENOMEM, "out of memory");
	v.dir = dir;
	memset(v.prev, '0', 64);
	if (r == 0)
		r = exai__sodium_init();
	if (r == 0)
		r = exai__seglist_load(&segs, dir);
	if (r == 0 && segs.n == 0)
		r = exai__err(-ENOENT, "the audit log %s has no segments", dir);
	if (r == 0)
		r = load_vkey(&v, vkey);
	if (r == 0)
		r = load_prune(&v);
	uint64_t first_seq = 0;
	if (r == 0 && segs.first[0] > 0) {
		if (!v.have_prune || v.prune.first_seq != segs.first[0]) {
			bad = 0;
			r = exai__err(-EBADMSG, "seq 0: events before seq %llu are missing and no signed prune record "
				      "accounts for them", (unsigned long long)segs.first[0]);
		} else {
			v.tree = v.prune.prefix;
			memcpy(v.prev, v.prune.prev, 65);
			v.next = first_seq = v.prune.first_seq;
		}
	}
	for (size_t i = 0; r == 0 && i < segs.n; i++) {
		char *path = exai__seg_path(dir, segs.first[i], "seg"), *data = NULL;
		size_t len = 0;
		r = path ? exai__read_file(path, (size_t)1 << 40, &data, &len) : -ENOMEM;
		uint64_t hfirst = 0;
		if (r == 0 && (exai__seg_header_check((uint8_t *)data, len, &hfirst) < 0 || hfirst != segs.first[i] ||
			       hfirst != v.next)) {
			bad = (int64_t)v.next;
			r = exai__err(-EBADMSG, "segment %016" PRIx64 " should start at seq %llu: %s", segs.first[i],
				      (unsigned long long)v.next, hfirst != segs.first[i] ? "bad header" : "wrong first seq");
		}
		for (size_t off = EXAI__SEG_HDR; r == 0 && off < len;) {
			struct exai__rec rec;
			size_t rl = 0;
			int d = exai__rec_decode(&rec, (uint8_t *)data + off, len - off, &rl);
			if (d == -EAGAIN)
				d = exai__err(-EBADMSG, "truncated record");
			if (d == 0)
				d = verify_record(&v, &rec);
			if (d < 0) {
				bad = (int64_t)v.next;
				r = exai__err(-EBADMSG, "seq %llu: %s (segment %016" PRIx64 ", offset %zu)",
					      (unsigned long long)v.next, exai_errmsg(), segs.first[i], off);
			}
			off += rl;
		}
		free(data);
		free(path);
	}
	if (r == 0 && v.have_prune && v.next < v.prune.first_seq) {
		bad = (int64_t)v.next;
		r = exai__err(-EBADMSG, "seq %llu: the log ends before the first seq %llu of its prune record",
			      (unsigned long long)v.next, (unsigned long long)v.prune.first_seq);
	}
	if (res) {
		size_t sz = res->sz ? res->sz : sizeof(*res);
		struct exai_audit_verify_result out = { .sz = sz, .first_seq = first_seq, .events = v.events,
							.checkpoints = v.checkpoints, .sealed_size = v.sealed,
							.unsealed = v.tree.size - v.sealed, .bad_seq = bad };
		if (r < 0)
			snprintf(out.reason, sizeof(out.reason), "%s", exai_errmsg());
		memcpy(res, &out, sz < sizeof(out) ? sz : sizeof(out));
	}
	exai__seglist_free(&segs);
	free(dir);
	return r;
}
