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

int exai__event_parse(json_t **ret, const char *text, size_t len)
{
	/* Integers stay integers, so that their canonical form is a plain "%lld" rather than the
	 * general ECMAScript double formatting (same output for |n| <= 2^53, which JCS enforces);
	 * integers beyond 64 bits fall back to the core's I-JSON parser (doubles). */
	json_error_t err;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (!v)
		return exai__json_parse(ret, text, len);
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
			for (size_t i = 0; i < EXAI__ARRAY_SIZE(forbidden); i++)
				if (strcmp(k, forbidden[i]) == 0)
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
	for (int i = 0; i < 4; i++)
		exai__buf_free(&p->part[i]);
}

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
					  json_real_value(t) == (double)(int64_t)json_real_value(t))))
		return exai__err(-EINVAL, "audit event member \"time\" must be milliseconds since the epoch");
	int r = check_tree(obj, 0);
	if (r)
		return r;
	/* Split the members by where the log's members sort (byte order equals RFC 8785 order
	 * against an ASCII name). */
	json_t *o[4] = { json_object(), json_object(), json_object(), json_object() };
	const char *k;
	json_t *v;
	r = 0;
	for (int i = 0; i < 4; i++)
		if (!o[i])
			r = exai__err(-ENOMEM, "out of memory");
	json_object_foreach(obj, k, v) {
		if (r)
			break;
		int i = strcmp(k, "origin") < 0 ? 0 : strcmp(k, "prev") < 0 ? 1 : strcmp(k, "seq") < 0 ? 2 : 3;
		if (json_object_set(o[i], k, v))
			r = exai__err(-ENOMEM, "out of memory");
	}
	/* "time" (when absent) and "v" both sort after "seq". */
	if (r == 0 && !t && json_object_set_new(o[3], "time", json_integer(exai__now_ms())))
		r = exai__err(-ENOMEM, "out of memory");
	if (r == 0 && json_object_set_new(o[3], "v", json_integer(EXAI__EVENT_VERSION)))
		r = exai__err(-ENOMEM, "out of memory");
	size_t total = 0;
	for (int i = 0; i < 4 && r == 0; i++) {
		if (json_object_size(o[i]) == 0)
			continue;
		r = exai__jcs_append(&p->part[i], o[i]);
		if (r == 0) { /* strip the braces */
			memmove(p->part[i].data, p->part[i].data + 1, p->part[i].len - 2);
			p->part[i].len -= 2;
			p->part[i].data[p->part[i].len] = '\0';
			total += p->part[i].len;
		}
	}
	for (int i = 0; i < 4; i++)
		json_decref(o[i]);
	/* origin <= 128, prev 64, seq <= 16 digits, names and punctuation < 64. */
	if (r == 0 && total + 128 + 64 + 16 + 64 > max_size)
		r = exai__err(-EFBIG, "audit event of %zu canonical bytes exceeds the limit of %zu bytes", total + 272,
			      max_size);
	if (r)
		exai__event_parts_free(p);
	return r;
}

int exai__event_assemble(struct exai__buf *out, const struct exai__event_parts *p, const char *origin,
			 const char *prev_hex, uint64_t seq)
{
	out->len = 0;
	int r = exai__buf_putc(out, '{');
	bool first = true;
#define PART(i)                                                                                    \
	if (r == 0 && p->part[i].len) {                                                            \
		if (!first)                                                                        \
			r = exai__buf_putc(out, ',');                                              \
		if (r == 0)                                                                        \
			r = exai__buf_append(out, p->part[i].data, p->part[i].len);               \
		first = false;                                                                     \
	}
	PART(0)
	if (r == 0)
		r = exai__buf_printf(out, "%s\"origin\":\"%s\"", first ? "" : ",", origin);
	first = false;
	PART(1)
	if (r == 0)
		r = exai__buf_printf(out, ",\"prev\":\"%s\"", prev_hex);
	PART(2)
	if (r == 0)
		r = exai__buf_printf(out, ",\"seq\":%llu", (unsigned long long)seq);
	PART(3)
#undef PART
	if (r == 0)
		r = exai__buf_putc(out, '}');
	return r < 0 ? exai__err(-ENOMEM, "out of memory") : 0;
}
