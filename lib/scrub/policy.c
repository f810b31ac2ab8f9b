/* SPDX-License-Identifier: Apache-2.0 */
/* policy.c: a tenant's scrub policy (docs/formats/scrub-policy.md): allowlists and per-class
 * or per-pattern enable/disable and mode. */
#include <stdlib.h>
#include <string.h>

#include "scrub-internal.h"

static int mode_from_name(const char *s)
{
	static const char *const names[] = { "mask", "placeholder", "hash", "pseudo" };
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i + 1;
	return -1;
}

static int apply(struct exai__pack_set *set, const char *what, const char *name, json_t *rule, bool by_class)
{
	if (!json_is_object(rule))
		return exai__err(-EINVAL, "scrub policy: %s.%s must be an object", what, name);
	json_t *en = json_object_get(rule, "enabled"), *mo = json_object_get(rule, "mode");
	const char *key;
	json_t *v;
	json_object_foreach(rule, key, v) if (strcmp(key, "enabled") != 0 && strcmp(key, "mode") != 0)
		return exai__err(-EINVAL, "scrub policy: %s.%s: unknown field '%s'", what, name, key);
	if (en && !json_is_boolean(en))
		return exai__err(-EINVAL, "scrub policy: %s.%s.enabled must be true or false", what, name);
	int mode = 0;
	if (mo && (!json_is_string(mo) || (mode = mode_from_name(json_string_value(mo))) < 0))
		return exai__err(-EINVAL, "scrub policy: %s.%s.mode must be mask, placeholder, hash or pseudo", what,
				 name);
	size_t hits = 0;
	for (size_t i = 0; i < set->n; i++) {
		struct exai__pattern *p = &set->pats[i];
		if (strcmp(by_class ? p->cls : p->id, name) != 0)
			continue;
		hits++;
		if (en)
			p->disabled = !json_is_true(en);
		if (mode)
			p->mode = mode;
	}
	if (!hits)
		return exai__err(-EINVAL, "scrub policy: %s.%s: no pattern has this %s", what, name,
				 by_class ? "class" : "id");
	return 0;
}

int exai__policy_load(struct exai__scrub_policy *pol, struct exai__pack_set *set, const char *json)
{
	memset(pol, 0, sizeof(*pol));
	if (!json)
		return 0;
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	int r = 0;
	if (!root)
		return exai__err(-EINVAL, "scrub policy: not valid JSON: line %d column %d: %s", jerr.line, jerr.column,
				 jerr.text);
	if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1) {
		r = exai__err(-EINVAL, "scrub policy: 'version' must be 1");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "version") == 0)
			continue;
		if (strcmp(key, "classes") == 0 || strcmp(key, "patterns") == 0) {
			if (!json_is_object(v)) {
				r = exai__err(-EINVAL, "scrub policy: '%s' must be an object", key);
				goto out;
			}
			const char *name;
			json_t *rule;
			json_object_foreach(v, name, rule) {
				r = apply(set, key, name, rule, key[0] == 'c');
				if (r < 0)
					goto out;
			}
		} else if (strcmp(key, "allow") == 0) {
			json_t *lit = json_object_get(v, "literals"), *re = json_object_get(v, "regexes");
			if (!json_is_object(v) || (lit && !json_is_array(lit)) || (re && !json_is_array(re))) {
				r = exai__err(-EINVAL, "scrub policy: 'allow' must be {\"literals\": [...], \"regexes\": [...]}");
				goto out;
			}
			size_t nl = json_array_size(lit), nr = json_array_size(re), i;
			json_t *e;
			pol->literals = calloc(nl + 1, sizeof(char *));
			pol->regexes = calloc(nr + 1, sizeof(pcre2_code *));
			if (!pol->literals || !pol->regexes) {
				r = -ENOMEM;
				goto out;
			}
			json_array_foreach(lit, i, e) {
				if (!json_is_string(e)) {
					r = exai__err(-EINVAL, "scrub policy: allow.literals[%zu] must be a string", i);
					goto out;
				}
				if (!(pol->literals[pol->n_literals] = strdup(json_string_value(e)))) {
					r = -ENOMEM;
					goto out;
				}
				pol->n_literals++;
			}
			json_array_foreach(re, i, e) {
				int err;
				PCRE2_SIZE off;
				if (!json_is_string(e)) {
					r = exai__err(-EINVAL, "scrub policy: allow.regexes[%zu] must be a string", i);
					goto out;
				}
				pcre2_code *c = pcre2_compile((PCRE2_SPTR)json_string_value(e), PCRE2_ZERO_TERMINATED,
							      PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &off, NULL);
				if (!c) {
					PCRE2_UCHAR msg[256];
					pcre2_get_error_message(err, msg, sizeof(msg));
					r = exai__err(-EINVAL, "scrub policy: allow.regexes[%zu]: invalid regex at offset %zu: %s",
						      i, (size_t)off, (char *)msg);
					goto out;
				}
				pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
				pol->regexes[pol->n_regexes++] = c;
			}
		} else {
			r = exai__err(-EINVAL, "scrub policy: unknown field '%s'", key);
			goto out;
		}
	}
out:
	json_decref(root);
	if (r < 0)
		exai__policy_free(pol);
	return r;
}

bool exai__policy_allowed(const struct exai__scrub_policy *pol, pcre2_match_data *md, const char *s, size_t n)
{
	for (size_t i = 0; i < pol->n_literals; i++)
		if (strlen(pol->literals[i]) == n && memcmp(pol->literals[i], s, n) == 0)
			return true;
	for (size_t i = 0; i < pol->n_regexes; i++)
		if (pcre2_match(pol->regexes[i], (PCRE2_SPTR)s, n, 0, 0, md, NULL) >= 0)
			return true;
	return false;
}

void exai__policy_free(struct exai__scrub_policy *pol)
{
	for (size_t i = 0; i < pol->n_literals; i++)
		free(pol->literals[i]);
	free(pol->literals);
	for (size_t i = 0; i < pol->n_regexes; i++)
		pcre2_code_free(pol->regexes[i]);
	free(pol->regexes);
	memset(pol, 0, sizeof(*pol));
}
