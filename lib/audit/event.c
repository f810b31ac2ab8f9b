/* SPDX-License-Identifier: Apache-2.0 */
/* event.c: the event builder, the rules every event obeys, and its canonical bytes. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit-internal.h"

/* Members whose values would be prompt or tool-input text: never stored (retention 0 days). */
static const char *const forbidden[] = { "prompt", "prompt_text", "tool_input", "completion", "response_text" };
/* Members the log sets ("v": the event format version, docs/formats/audit.md). */
static const char *const reserved[] = { "origin", "prev", "seq", "v" };
#define EXAI__EVENT_VERSION 1
#define EXAI__XSTR(x) #x
#define EXAI__STR(x) EXAI__XSTR(x)

static bool name_in(const char *const *list, size_t n, const char *k, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], k, len) == 0)
			return true;
	return false;
}

bool exai__event_name_forbidden(const char *k, size_t len)
{
	return name_in(forbidden, EXAI__ARRAY_SIZE(forbidden), k, len);
}

bool exai__event_name_reserved(const char *k, size_t len)
{
	return name_in(reserved, EXAI__ARRAY_SIZE(reserved), k, len);
}

/* Whether @v holds an integer beyond 2^53, which the core's JCS takes only as a double. */
static bool has_big_int(const json_t *v, int depth)
{
	if (depth > 200)
		return true;
	if (json_is_integer(v))
		return json_integer_value(v) > 9007199254740992LL || json_integer_value(v) < -9007199254740992LL;
	const char *k;
	json_t *c;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, c)
			if (has_big_int(c, depth + 1))
				return true;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			if (has_big_int(c, depth + 1))
				return true;
	}
	return false;
}

int exai__event_parse(json_t **ret, const char *text, size_t len)
{
	/* Integers stay integers, so that their canonical form is a plain "%lld" rather than the
	 * general ECMAScript double formatting (the same output for |n| <= 2^53); anything else
	 * (integers beyond that, parse errors) goes through the core's I-JSON parser (doubles). */
	json_error_t err;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (!v || has_big_int(v, 0)) {
		json_decref(v);
		return exai__json_parse(ret, text, len);
	}
	*ret = v;
	return 0;
}

int64_t exai__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

EXAI_API int exai_audit_event_new(exai_audit_event **ret, uint32_t class_uid, uint32_t activity_id,
				  const char *activity_name)
{
	if (!ret || class_uid == 0 || activity_id == 0)
		return exai__err(-EINVAL, "an audit event needs a non-zero class_uid and activity_id");
	exai_audit_event *ev = calloc(1, sizeof(*ev));
	if (!ev || !(ev->obj = json_object()))
		goto nomem;
	if (json_object_set_new(ev->obj, "class_uid", json_integer(class_uid)) ||
	    json_object_set_new(ev->obj, "activity_id", json_integer(activity_id)) ||
	    json_object_set_new(ev->obj, "type_uid", json_integer((json_int_t)class_uid * 100 + activity_id)) ||
	    json_object_set_new(ev->obj, "time", json_integer(exai__now_ms())))
		goto nomem;
	if (activity_name) {
		json_t *s = json_string(activity_name);
		if (!s) {
			exai_audit_event_free(ev);
			return exai__err(-EINVAL, "activity_name is not valid UTF-8");
		}
		json_object_set_new(ev->obj, "activity_name", s);
	}
	*ret = ev;
	return 0;
nomem:
	exai_audit_event_free(ev);
	return exai__err(-ENOMEM, "out of memory");
}

EXAI_API void exai_audit_event_free(exai_audit_event *ev)
{
	if (!ev)
		return;
	json_decref(ev->obj);
	free(ev);
}

static int set_path(exai_audit_event *ev, const char *what, json_t *v, const char *k1, const char *k2,
		    const char *k3)
{
	if (!ev || !v) {
		json_decref(v);
		return exai__err(-EINVAL, "audit event %s: missing or not valid UTF-8", what);
	}
	json_t *o = ev->obj;
	const char *keys[3] = { k1, k2, k3 };
	int n = k3 ? 3 : k2 ? 2 : 1;
	for (int i = 0; i < n - 1; i++) {
		json_t *c = json_object_get(o, keys[i]);
		if (!json_is_object(c)) {
			c = json_object();
			if (!c || json_object_set_new(o, keys[i], c)) {
				json_decref(v);
				return exai__err(-ENOMEM, "out of memory");
			}
		}
		o = c;
	}
	if (json_object_set_new(o, keys[n - 1], v))
		return exai__err(-ENOMEM, "out of memory");
	return 0;
}

EXAI_API int exai_audit_event_set_time(exai_audit_event *ev, int64_t time_ms)
{
	if (time_ms < 0 || time_ms > 9007199254740992LL)
		return exai__err(-EINVAL, "audit event time %lld out of range", (long long)time_ms);
	return set_path(ev, "time", json_integer(time_ms), "time", NULL, NULL);
}

EXAI_API int exai_audit_event_set_actor(exai_audit_event *ev, const char *actor)
{
	return set_path(ev, "actor", actor ? json_string(actor) : NULL, "actor", "user", "name");
}

EXAI_API int exai_audit_event_set_target(exai_audit_event *ev, const char *target)
{
	return set_path(ev, "target", target ? json_string(target) : NULL, "target", "name", NULL);
}

EXAI_API int exai_audit_event_set_tenant(exai_audit_event *ev, const char *tenant)
{
	return set_path(ev, "tenant", tenant ? json_string(tenant) : NULL, "tenant", NULL, NULL);
}

EXAI_API int exai_audit_event_set_workspace(exai_audit_event *ev, const char *workspace)
{
	return set_path(ev, "workspace", workspace ? json_string(workspace) : NULL, "workspace", NULL, NULL);
}

EXAI_API int exai_audit_event_set_outcome(exai_audit_event *ev, bool success)
{
	int r = set_path(ev, "status_id", json_integer(success ? 1 : 2), "status_id", NULL, NULL);
	return r ? r : set_path(ev, "status", json_string(success ? "Success" : "Failure"), "status", NULL, NULL);
}

static int check_key(const char *key)
{
	if (!key || !*key)
		return exai__err(-EINVAL, "audit event detail: empty key");
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(forbidden); i++)
		if (strcmp(key, forbidden[i]) == 0)
			return exai__err(-EINVAL, "audit event detail.%s: prompt and tool-input text is never stored; "
				     "record a count or exai_audit_digest() instead", key);
	return 0;
}

EXAI_API int exai_audit_event_set_detail_str(exai_audit_event *ev, const char *key, const char *value)
{
	int r = check_key(key);
	return r ? r : set_path(ev, "detail", value ? json_string(value) : NULL, "detail", key, NULL);
}

EXAI_API int exai_audit_event_set_detail_int(exai_audit_event *ev, const char *key, int64_t value)
{
	int r = check_key(key);
	if (r == 0 && (value > 9007199254740992LL || value < -9007199254740992LL))
		r = exai__err(-ERANGE, "audit event detail.%s: integer beyond 2^53", key);
	return r ? r : set_path(ev, "detail", json_integer(value), "detail", key, NULL);
}

EXAI_API int exai_audit_event_set_detail_json(exai_audit_event *ev, const char *key, const char *json)
{
	int r = check_key(key);
	json_t *v = NULL;
	if (r == 0 && (!json || !*json))
		r = exai__err(-EINVAL, "audit event detail.%s: no JSON text", key);
	if (r == 0)
		r = exai__json_parse(&v, json, strlen(json));
	return r ? r : set_path(ev, "detail", v, "detail", key, NULL);
}

/* Refuses forbidden member names at any depth; @path names the place for the message. */
static int check_tree(const json_t *v, int depth)
{
	if (depth > 64)
		return exai__err(-EINVAL, "audit event nested deeper than 64 levels");
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach((json_t *)v, k, c) {
			if (exai__event_name_forbidden(k, strlen(k)))
				return exai__err(-EINVAL, "audit event member \"%s\": prompt and tool-input text is "
					     "never stored; record a count or exai_audit_digest() instead", k);
			int r = check_tree(c, depth + 1);
			if (r)
				return r;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			int r = check_tree(json_array_get(v, i), depth + 1);
			if (r)
				return r;
		}
	}
	return 0;
}

void exai__event_parts_free(struct exai__event_parts *p)
{
	exai__buf_free(&p->text);
}

/* Skips one JSON string of trusted canonical text at @p; returns the byte after it. */
static const char *skip_string(const char *p)
{
	for (p++; *p != '"'; p++)
		if (*p == '\\')
			p++;
	return p + 1;
}

/* Skips one canonical JSON value. */
static const char *skip_value(const char *p)
{
	int depth = 0;
	do {
		if (*p == '"') {
			p = skip_string(p);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		p++;
	} while (depth > 0 || (*p != ',' && *p != '}' && *p != ']' && *p != '\0'));
	return p;
}

/* Appends one member, with a comma unless it is the first. */
static int put_member(struct exai__buf *b, const char *m, size_t n)
{
	if (b->len && exai__buf_putc(b, ',') < 0)
		return -ENOMEM;
	return exai__buf_append(b, m, n);
}

static int merge(struct exai__event_parts *p, const struct exai__buf *canon, bool has_time, size_t max_size);

int exai__event_prepare(struct exai__event_parts *p, json_t *obj, size_t max_size)
{
	memset(p, 0, sizeof(*p));
	if (!json_is_object(obj))
		return exai__err(-EINVAL, "an audit event must be a JSON object");
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(reserved); i++)
		if (json_object_get(obj, reserved[i]))
			return exai__err(-EINVAL, "audit event member \"%s\" is reserved: the log sets it", reserved[i]);
	json_t *t = json_object_get(obj, "time");
	if (t && !(json_is_integer(t) || (json_is_real(t) && json_real_value(t) >= 0 &&
					  json_real_value(t) <= 9007199254740992.0 && /* no overflowing cast */
					  json_real_value(t) == (double)(int64_t)json_real_value(t))))
		return exai__err(-EINVAL, "audit event member \"time\" must be milliseconds since the epoch");
	int r = check_tree(obj, 0);
	if (r)
		return r;
	/* One canonical dump of the caller's members; the log's members are then merged in by
	 * name. Comparing bytes of a (possibly escaped) name with an all-lower-case ASCII name
	 * gives the RFC 8785 order: an escape's backslash, like the character it stands for,
	 * sorts before every lower-case letter. */
	struct exai__buf canon = { 0 };
	r = exai__jcs_append(&canon, obj);
	if (r == 0)
		r = merge(p, &canon, t != NULL, max_size);
	exai__buf_free(&canon);
	return r;
}

int exai__event_prepare_text(struct exai__event_parts *p, const char *text, size_t len, size_t max_size)
{
	memset(p, 0, sizeof(*p));
	struct exai__buf canon = { 0 };
	bool has_time = false;
	int r = exai__canon_reorder(&canon, text, len, &has_time);
	if (r == 0)
		r = merge(p, &canon, has_time, max_size);
	exai__buf_free(&canon);
	return r;
}

/* Merges the log's members into @canon, the caller's members in canonical form. */
static int merge(struct exai__event_parts *p, const struct exai__buf *canon, bool has_time, size_t max_size)
{
	int r = 0;
	char time_member[48] = "";
	if (!has_time)
		snprintf(time_member, sizeof(time_member), "\"time\":%lld", (long long)exai__now_ms());
	static const char v_member[] = "\"v\":" EXAI__STR(EXAI__EVENT_VERSION);
	struct ins {
		const char *name, *member; /* member NULL: a cut where the log inserts it later */
	} ins[5];
	size_t n = 0, ni = 0, ncut = 0;
	ins[n++] = (struct ins){ "origin", NULL };
	ins[n++] = (struct ins){ "prev", NULL };
	ins[n++] = (struct ins){ "seq", NULL };
	if (!has_time)
		ins[n++] = (struct ins){ "time", time_member };
	ins[n++] = (struct ins){ "v", v_member };
	const char *q = canon->data + 1; /* after '{' */
	while (r == 0 && *q != '}') {
		const char *m = q, *kend = skip_string(q) - 1;
		size_t klen = (size_t)(kend - (m + 1));
		/* the log's members that sort before this one */
		for (; r == 0 && ni < n; ni++) {
			size_t nl = strlen(ins[ni].name);
			int c = memcmp(m + 1, ins[ni].name, klen < nl ? klen : nl);
			if (c < 0 || (c == 0 && klen <= nl))
				break;
			if (ins[ni].member)
				r = put_member(&p->text, ins[ni].member, strlen(ins[ni].member));
			else
				p->cut[ncut++] = p->text.len;
		}
		q = skip_value(kend + 2);
		if (r == 0)
			r = put_member(&p->text, m, (size_t)(q - m));
		if (*q == ',')
			q++;
	}
	for (; r == 0 && ni < n; ni++) {
		if (ins[ni].member)
			r = put_member(&p->text, ins[ni].member, strlen(ins[ni].member));
		else
			p->cut[ncut++] = p->text.len;
	}
	if (r < 0)
		r = exai__err(-ENOMEM, "out of memory");
	/* origin <= 128, prev 64, seq <= 16 digits, names and punctuation < 64. */
	if (r == 0 && p->text.len + 128 + 64 + 16 + 64 > max_size)
		r = exai__err(-EFBIG, "audit event of %zu canonical bytes exceeds the limit of %zu bytes",
			      p->text.len + 272, max_size);
	if (r)
		exai__event_parts_free(p);
	return r;
}

int exai__event_assemble(struct exai__buf *out, const struct exai__event_parts *p, const char *origin,
			 const char *prev_hex, uint64_t seq)
{
	/* text[0, cut0) "origin" text[cut0, cut1) "prev" text[cut1, cut2) "seq" text[cut2, end) */
	char digits[24], *d = digits + sizeof(digits);
	do
		*--d = (char)('0' + seq % 10);
	while (seq /= 10);
	size_t olen = strlen(origin), plen = strlen(prev_hex), dlen = (size_t)(digits + sizeof(digits) - d);
	const struct {
		const char *name, *v;
		size_t vlen;
		bool quoted;
	} mine[3] = { { "\"origin\":", origin, olen, true }, { "\"prev\":", prev_hex, plen, true },
		      { "\"seq\":", d, dlen, false } };
	out->len = 0;
	/* everything at once: the text, three members with their commas, braces */
	if (exai__buf_reserve(out, p->text.len + olen + plen + dlen + 40) < 0)
		return exai__err(-ENOMEM, "out of memory");
	char *o = out->data;
	size_t w = 0, at = 0;
	o[w++] = '{';
	for (int i = 0; i <= 3; i++) {
		size_t end = i < 3 ? p->cut[i] : p->text.len;
		if (end > at) { /* a run of members; the text has commas between them */
			const char *s = p->text.data + at;
			size_t n = end - at;
			if (*s == ',')
				s++, n--;
			if (n && s[n - 1] == ',')
				n--;
			if (n && w > 1)
				o[w++] = ',';
			memcpy(o + w, s, n);
			w += n;
		}
		if (i < 3) {
			if (w > 1)
				o[w++] = ',';
			size_t nl = strlen(mine[i].name);
			memcpy(o + w, mine[i].name, nl);
			w += nl;
			if (mine[i].quoted)
				o[w++] = '"';
			memcpy(o + w, mine[i].v, mine[i].vlen);
			w += mine[i].vlen;
			if (mine[i].quoted)
				o[w++] = '"';
		}
		at = end;
	}
	o[w++] = '}';
	o[w] = '\0';
	out->len = w;
	return 0;
}
