/* SPDX-License-Identifier: Apache-2.0 */
/* pack.c: loading and checking pattern packs (docs/formats/scrub-pack.md). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "scrub-internal.h"

#define PACK_ERR(name, id, ...) pack_err((name), (id), __VA_ARGS__)

static int pack_err(const char *pack, const char *id, const char *fmt, ...) EXAI__PRINTF(3, 4);
static int pack_err(const char *pack, const char *id, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (id)
		return exai__err(-EINVAL, "scrub pack '%s': pattern '%s': %s", pack, id, why);
	return exai__err(-EINVAL, "scrub pack '%s': %s", pack, why);
}

static int severity_from_json(const json_t *v)
{
	static const char *const names[] = { "low", "medium", "high", "critical" };
	if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 4)
		return (int)json_integer_value(v);
	if (json_is_string(v))
		for (int i = 0; i < 4; i++)
			if (strcmp(json_string_value(v), names[i]) == 0)
				return i + 1;
	return -1;
}

static bool id_ok(const char *s)
{
	if (!*s || strlen(s) > 128)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

/* The literal characters the regex gives the start of the secret ("ghp_", "AKIA"), <= 4. */
static void literal_prefix(char out[5], const char *re, unsigned group)
{
	const char *p = re;
	out[0] = 0;
	if (group) {
		unsigned n = 0;
		for (; *p; p++) {
			if (*p == '\\') {
				if (p[1])
					p++;
				continue;
			}
			if (*p == '[') { /* skip a class */
				p++;
				if (*p == '^')
					p++;
				if (*p == ']')
					p++;
				while (*p && *p != ']') {
					if (*p == '\\' && p[1])
						p++;
					p++;
				}
				if (!*p)
					return;
				continue;
			}
			if (*p != '(')
				continue;
			bool capturing = p[1] != '?' || (p[2] == '<' && p[3] != '=' && p[3] != '!') ||
					 p[2] == 'P' || p[2] == '\'';
			if (capturing && ++n == group) {
				p++;
				if (*p == '?') { /* named group: skip the name */
					const char *e = strpbrk(p, ">'");
					if (!e)
						return;
					p = e + 1;
				}
				break;
			}
		}
		if (!*p)
			return;
	}
	if (p[0] == '\\' && p[1] == 'b')
		p += 2;
	size_t n = 0;
	char tmp[8] = { 0 };
	while (n < 5 && (isalnum((unsigned char)*p) || *p == '_' || *p == '-')) {
		tmp[n++] = *p++;
	}
	/* a quantifier applies to the last literal character: it is not fixed */
	if (n && (*p == '?' || *p == '*' || *p == '{'))
		n--;
	if (*p == '|' || *p == '+') /* an alternative or a repeat: nothing is fixed for sure */
		n = *p == '+' && n ? n - 1 : (*p == '|' ? 0 : n);
	if (n > 4)
		n = 4;
	memcpy(out, tmp, n);
	out[n] = 0;
}

/* The expression Hyperscan compiles: the regex with every large bounded repeat {m,n}
 * (n > 64) loosened to {m,}. A superset: every match of the regex ends where one of the
 * loosened expression ends, and PCRE2 confirms the exact regex. Large bounded repeats are what
 * make Hyperscan slow to compile and to scan. */
static char *loosen(const char *re)
{
	size_t n = strlen(re);
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	bool in_class = false;
	for (size_t i = 0; i < n;) {
		char c = re[i];
		if (c == '\\' && i + 1 < n) {
			*o++ = re[i++];
			*o++ = re[i++];
			continue;
		}
		if (in_class) {
			if (c == ']')
				in_class = false;
			*o++ = re[i++];
			continue;
		}
		if (c == '[') {
			in_class = true;
			*o++ = re[i++];
			if (i < n && re[i] == '^')
				*o++ = re[i++];
			if (i < n && re[i] == ']')
				*o++ = re[i++];
			continue;
		}
		if (c == '{') {
			size_t j = i + 1, m0 = j;
			while (j < n && isdigit((unsigned char)re[j]))
				j++;
			size_t m1 = j;
			if (m1 > m0 && j < n && re[j] == ',') {
				size_t n0 = ++j;
				while (j < n && isdigit((unsigned char)re[j]))
					j++;
				if (j > n0 && j < n && re[j] == '}' && j - n0 <= 6 && atol(re + n0) > 64) {
					memcpy(o, re + i, m1 - i);
					o += m1 - i;
					*o++ = ',';
					*o++ = '}';
					i = j + 1;
					continue;
				}
			}
		}
		*o++ = re[i++];
	}
	*o = 0;
	return out;
}

/* The optional "trigger" member: {"run": CLASS, "min": N, "separators": "...",
 * "min_separators": N, "adjacent_separators": bool} (docs/formats/scrub-pack.md). */
static int trigger_from_json(struct exai__trigger *t, json_t *j, const char *name, const char *id)
{
	if (!json_is_object(j))
		return PACK_ERR(name, id, "'trigger' must be an object");
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v) {
		if (strcmp(key, "run") != 0 && strcmp(key, "min") != 0 && strcmp(key, "separators") != 0 &&
		    strcmp(key, "min_separators") != 0 && strcmp(key, "adjacent_separators") != 0 &&
		    strcmp(key, "before") != 0 && strcmp(key, "first") != 0 && strcmp(key, "shapes") != 0 &&
		    strcmp(key, "lead") != 0 && strcmp(key, "validate") != 0)
			return PACK_ERR(name, id, "trigger: unknown field '%s'", key);
	}
	json_t *run = json_object_get(j, "run"), *min = json_object_get(j, "min"), *seps = json_object_get(j, "separators");
	json_t *mins = json_object_get(j, "min_separators"), *adj = json_object_get(j, "adjacent_separators");
	t->run = json_is_string(run) ? exai__run_from_name(json_string_value(run)) : -1;
	if (t->run < 0)
		return PACK_ERR(name, id, "trigger: 'run' must be one of digit, hex, upper-alnum, base58, base64");
	if (!json_is_integer(min) || json_integer_value(min) < 1 || json_integer_value(min) > 4096)
		return PACK_ERR(name, id, "trigger: 'min' must be an integer from 1 to 4096");
	t->min = (unsigned)json_integer_value(min);
	if (seps) {
		const char *sv = json_string_value(seps);
		if (!sv || strlen(sv) > 8)
			return PACK_ERR(name, id, "trigger: 'separators' must be a string of at most 8 characters");
		for (const char *c = sv; *c; c++)
			if (!ispunct((unsigned char)*c) && *c != ' ')
				return PACK_ERR(name, id, "trigger: separator '%c' is not ASCII punctuation or a space", *c);
		snprintf(t->seps, sizeof(t->seps), "%s", sv);
	}
	if (mins && (!json_is_integer(mins) || json_integer_value(mins) < 0 || json_integer_value(mins) > 4096))
		return PACK_ERR(name, id, "trigger: 'min_separators' must be an integer from 0 to 4096");
	t->min_seps = mins ? (unsigned)json_integer_value(mins) : 0;
	if (adj && !json_is_boolean(adj))
		return PACK_ERR(name, id, "trigger: 'adjacent_separators' must be true or false");
	t->adjacent = json_is_true(adj);
	if (t->min_seps && !t->seps[0])
		return PACK_ERR(name, id, "trigger: 'min_separators' without 'separators'");
	static const char *const sets[] = { "before", "first" };
	for (int i = 0; i < 2; i++) {
		json_t *b = json_object_get(j, sets[i]);
		if (!b)
			continue;
		const char *bv = json_string_value(b);
		if (!bv || !*bv || strlen(bv) > 8)
			return PACK_ERR(name, id, "trigger: '%s' must be a string of 1 to 8 characters", sets[i]);
		if (t->seps[0])
			return PACK_ERR(name, id, "trigger: '%s' cannot be used with 'separators'", sets[i]);
		snprintf(i ? t->first : t->before, sizeof(t->first), "%s", bv);
	}
	json_t *shapes = json_object_get(j, "shapes"), *lead = json_object_get(j, "lead"), *val = json_object_get(j, "validate");
	if (shapes) {
		if (!json_is_array(shapes) || json_array_size(shapes) < 1 || json_array_size(shapes) > EXAI__SHAPES_MAX)
			return PACK_ERR(name, id, "trigger: 'shapes' must be an array of 1 to %d strings", EXAI__SHAPES_MAX);
		size_t i;
		json_t *sv;
		json_array_foreach(shapes, i, sv) {
			const char *str = json_string_value(sv);
			if (!str || exai__shape_parse(&t->shapes[i], str) < 0)
				return PACK_ERR(name, id,
						"trigger: shape #%zu must be 1 to %d group lengths 'N' or 'N-M' (1 to 4096) separated by spaces",
						i + 1, EXAI__SHAPE_GROUPS_MAX);
		}
		t->n_shapes = (unsigned)json_array_size(shapes);
	}
	if (lead && (!json_is_integer(lead) || json_integer_value(lead) < 0 || json_integer_value(lead) > 64))
		return PACK_ERR(name, id, "trigger: 'lead' must be an integer from 0 to 64");
	t->lead = lead ? (unsigned)json_integer_value(lead) : 1;
	if (val && !json_is_boolean(val))
		return PACK_ERR(name, id, "trigger: 'validate' must be true or false");
	t->validate = json_is_true(val);
	if ((lead || t->validate) && !t->n_shapes)
		return PACK_ERR(name, id, "trigger: '%s' needs 'shapes'", lead ? "lead" : "validate");
	return 0;
}

static void pattern_free(struct exai__pattern *p)
{
	free(p->hs_regex);
	free(p->id);
	free(p->cls);
	free(p->regex);
	for (size_t i = 0; i < p->n_keywords; i++)
		free(p->keywords[i]);
	free(p->keywords);
	pcre2_code_free(p->re);
}

static int load_pattern(struct exai__pack_set *set, const char *name, const char *group, int format, size_t idx,
			json_t *jp)
{
	json_t *jid = json_object_get(jp, "id");
	char idbuf[32];
	snprintf(idbuf, sizeof(idbuf), "#%zu", idx);
	if (!json_is_object(jp))
		return PACK_ERR(name, idbuf, "not a JSON object");
	if (!json_is_string(jid) || !id_ok(json_string_value(jid)))
		return PACK_ERR(name, idbuf, "'id' must be a string of lower-case letters, digits, '.', '_', '-'");
	const char *id = json_string_value(jid);
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->pats[i].id, id) == 0)
			return PACK_ERR(name, id, "duplicate id (also in pack '%s')", set->pats[i].pack);

	static const char *const known[] = { "id", "class", "kind", "severity", "regex", "group", "caseless",
					     "keywords", "validator", "min_entropy", "examples", "description",
					     "provider", "notes", "mask_prefix", "confidence", "tags", "trigger", "gate", NULL };
	const char *key;
	json_t *val;
	json_object_foreach(jp, key, val) {
		size_t k = 0;
		while (known[k] && strcmp(known[k], key) != 0)
			k++;
		if (!known[k])
			return PACK_ERR(name, id, "unknown field '%s'", key);
	}

	json_t *jcls = json_object_get(jp, "class"), *jkind = json_object_get(jp, "kind");
	json_t *jre = json_object_get(jp, "regex"), *jgroup = json_object_get(jp, "group");
	json_t *jcase = json_object_get(jp, "caseless"), *jkw = json_object_get(jp, "keywords");
	json_t *jval = json_object_get(jp, "validator"), *jent = json_object_get(jp, "min_entropy");
	json_t *jex = json_object_get(jp, "examples");
	if (!json_is_string(jcls) || !id_ok(json_string_value(jcls)))
		return PACK_ERR(name, id, "'class' must be a lower-case identifier");
	int kind = !json_is_string(jkind) ? -1
		   : strcmp(json_string_value(jkind), "secret") == 0 ? EXAI__KIND_SECRET
		   : strcmp(json_string_value(jkind), "pii") == 0	 ? EXAI__KIND_PII
								 : -1;
	if (kind < 0)
		return PACK_ERR(name, id, "'kind' must be \"secret\" or \"pii\"");
	int sev = severity_from_json(json_object_get(jp, "severity"));
	if (sev < 0)
		return PACK_ERR(name, id, "'severity' must be low, medium, high or critical (or 1-4)");
	if (!json_is_string(jre) || json_string_length(jre) == 0 || json_string_length(jre) > 4096)
		return PACK_ERR(name, id, "'regex' must be a non-empty string of at most 4096 bytes");
	if (jgroup && (!json_is_integer(jgroup) || json_integer_value(jgroup) < 0 || json_integer_value(jgroup) > 32))
		return PACK_ERR(name, id, "'group' must be an integer from 0 to 32");
	if (jcase && !json_is_boolean(jcase))
		return PACK_ERR(name, id, "'caseless' must be true or false");
	if (jkw && !json_is_array(jkw))
		return PACK_ERR(name, id, "'keywords' must be an array of strings");
	if (!json_is_string(jval))
		return PACK_ERR(name, id, "'validator' must be a string");
	int v = exai__validator_from_name(json_string_value(jval));
	if (v < 0)
		return PACK_ERR(name, id, "unknown validator '%s'", json_string_value(jval));
	if (v >= EXAI__V_FORMAT2_FIRST && format < 2) /* the national numbers' check digits */
		return PACK_ERR(name, id, "validator '%s' needs \"format\": 2", json_string_value(jval));
	if (jent && (!json_is_number(jent) || json_number_value(jent) < 0 || json_number_value(jent) > 8))
		return PACK_ERR(name, id, "'min_entropy' must be a number from 0 to 8");
	json_t *pos = json_object_get(jex, "positive"), *neg = json_object_get(jex, "negative");
	if (!json_is_object(jex) || !json_is_array(pos) || json_array_size(pos) == 0 || !json_is_array(neg) ||
	    json_array_size(neg) == 0)
		return PACK_ERR(name, id, "missing examples: 'examples' needs at least one positive and one negative");
	size_t i;
	json_t *e;
	json_array_foreach(pos, i, e) {
		if (!json_is_string(json_object_get(e, "text")) || !json_is_string(json_object_get(e, "secret")) ||
		    json_string_length(json_object_get(e, "secret")) == 0)
			return PACK_ERR(name, id, "positive example %zu needs 'text' and a non-empty 'secret'", i);
		if (!strstr(json_string_value(json_object_get(e, "text")), json_string_value(json_object_get(e, "secret"))))
			return PACK_ERR(name, id, "positive example %zu: 'secret' is not in 'text'", i);
	}
	json_array_foreach(neg, i, e) if (!json_is_string(e))
		return PACK_ERR(name, id, "negative example %zu must be a string", i);

	struct exai__trigger trig = { .run = -1 };
	json_t *jtrig = json_object_get(jp, "trigger");
	if (jtrig && format < 2)
		return PACK_ERR(name, id, "'trigger' needs \"format\": 2");
	if (jtrig) {
		int r = trigger_from_json(&trig, jtrig, name, id);
		if (r < 0)
			return r;
	}

	/* "gate": what finds the candidates, when the pack's author knows better than the
	 * engine's estimate (engine.c) */
	json_t *jgate = json_object_get(jp, "gate");
	int gate_req = 0;
	if (jgate && format < 2)
		return PACK_ERR(name, id, "'gate' needs \"format\": 2");
	if (jgate) {
		const char *g = json_string_value(jgate);
		gate_req = !g ? -1 : strcmp(g, "literal") == 0 ? EXAI__GATE_LITERAL : strcmp(g, "keywords") == 0 ? EXAI__GATE_KEYWORD : -1;
		if (gate_req < 0)
			return PACK_ERR(name, id, "'gate' must be \"literal\" or \"keywords\"");
		if (jtrig)
			return PACK_ERR(name, id, "'gate' and 'trigger' cannot both be given");
		if (gate_req == EXAI__GATE_KEYWORD && json_array_size(jkw) == 0)
			return PACK_ERR(name, id, "'gate' is \"keywords\" but the pattern has none");
		if (gate_req == EXAI__GATE_KEYWORD && json_array_size(jkw) > EXAI__LITS_MAX)
			return PACK_ERR(name, id, "'gate' is \"keywords\": at most %d keywords", EXAI__LITS_MAX);
	}

	if (set->n % 64 == 0) {
		struct exai__pattern *np = realloc(set->pats, (set->n + 64) * sizeof(*np));
		if (!np)
			return -ENOMEM;
		set->pats = np;
	}
	struct exai__pattern *p = &set->pats[set->n];
	memset(p, 0, sizeof(*p));
	p->id = strdup(id);
	p->cls = strdup(json_string_value(jcls));
	p->regex = strdup(json_string_value(jre));
	p->pack = group;
	p->kind = kind;
	p->severity = sev;
	p->group = jgroup ? (unsigned)json_integer_value(jgroup) : 0;
	p->caseless = json_is_true(jcase);
	p->validator = v;
	p->min_entropy = jent ? json_number_value(jent) : 0;
	p->trigger = trig;
	p->gate_req = gate_req;
	if (!p->id || !p->cls || !p->regex) {
		pattern_free(p);
		return -ENOMEM;
	}
	if (jkw && json_array_size(jkw)) {
		p->keywords = calloc(json_array_size(jkw), sizeof(char *));
		if (!p->keywords) {
			pattern_free(p);
			return -ENOMEM;
		}
		json_array_foreach(jkw, i, e) {
			if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > 64) {
				pattern_free(p);
				return PACK_ERR(name, id, "keyword %zu must be a non-empty string of at most 64 bytes", i);
			}
			char *k = strdup(json_string_value(e));
			if (!k) {
				pattern_free(p);
				return -ENOMEM;
			}
			for (char *c = k; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			p->keywords[p->n_keywords++] = k;
		}
	}
	if (kind == EXAI__KIND_SECRET)
		literal_prefix(p->prefix, p->regex, p->group);
	json_t *mp = json_object_get(jp, "mask_prefix");
	if (json_is_string(mp) && json_string_length(mp) <= 4)
		snprintf(p->prefix, sizeof(p->prefix), "%s", json_string_value(mp));
	if (json_array_append(set->examples, jex) < 0) {
		pattern_free(p);
		return -ENOMEM;
	}
	set->n++;
	return 0;
}

int exai__pack_load(struct exai__pack_set *set, const char *name, const char *json, size_t len)
{
	json_t *root = NULL;
	int r;
	if (!set->examples && !(set->examples = json_array()))
		return -ENOMEM;
	json_error_t jerr;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return exai__err(-EINVAL, "scrub pack '%s': not valid JSON: line %d column %d: %s", name, jerr.line,
				 jerr.column, jerr.text);
	json_t *fmt = json_object_get(root, "format"), *grp = json_object_get(root, "group");
	json_t *pats = json_object_get(root, "patterns");
	if (!json_is_object(root) || !json_is_integer(fmt) || json_integer_value(fmt) < 1 || json_integer_value(fmt) > 2) {
		r = PACK_ERR(name, NULL, "'format' must be 1 or 2");
		goto out;
	}
	if (!json_is_string(grp) || !id_ok(json_string_value(grp))) {
		r = PACK_ERR(name, NULL, "'group' must be a lower-case identifier");
		goto out;
	}
	if (!json_is_array(pats)) {
		r = PACK_ERR(name, NULL, "'patterns' must be an array");
		goto out;
	}
	char **ng = realloc(set->groups, (set->n_groups + 1) * sizeof(char *));
	if (!ng) {
		r = -ENOMEM;
		goto out;
	}
	set->groups = ng;
	if (!(set->groups[set->n_groups] = strdup(json_string_value(grp)))) {
		r = -ENOMEM;
		goto out;
	}
	const char *group = set->groups[set->n_groups++];
	size_t i;
	json_t *jp;
	json_array_foreach(pats, i, jp) {
		r = load_pattern(set, name, group, (int)json_integer_value(fmt), i, jp);
		if (r < 0)
			goto out;
	}
	/* The set's hash chains the canonical form of every pack, in order. */
	char *canon = NULL;
	size_t clen = 0;
	r = exai__jcs_dump(root, &canon, &clen);
	if (r < 0)
		goto out;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned mdlen = 0;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) || !EVP_DigestUpdate(md, set->sha256, 32) ||
	    !EVP_DigestUpdate(md, canon, clen) || !EVP_DigestFinal_ex(md, set->sha256, &mdlen))
		r = -ENOMEM;
	EVP_MD_CTX_free(md);
	free(canon);
out:
	json_decref(root);
	return r;
}

/* Hyperscan's analysis of @re: exact if it can, else as a prefilter (then *flags gains
 * HS_FLAG_PREFILTER). On failure the pattern's error is recorded and -EINVAL returned. */
static int expr_info(const struct exai__pattern *p, const char *re, unsigned *flags, hs_expr_info_t **info)
{
	hs_compile_error_t *cerr = NULL;
	if (hs_expression_info(re, *flags, info, &cerr) == HS_SUCCESS)
		return 0;
	hs_free_compile_error(cerr);
	cerr = NULL;
	if (hs_expression_info(re, *flags | HS_FLAG_PREFILTER, info, &cerr) == HS_SUCCESS) {
		*flags |= HS_FLAG_PREFILTER;
		return 0;
	}
	int r = PACK_ERR(p->pack, p->id, "Hyperscan cannot compile the regex: %s",
			 cerr ? cerr->message : "unknown reason");
	hs_free_compile_error(cerr);
	return r;
}

int exai__pack_compile(struct exai__pack_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct exai__pattern *p = &set->pats[i];
		int err;
		PCRE2_SIZE off;
		/* the offset limit bounds where a match may start (the engine's windows) */
		uint32_t opts = (p->caseless ? PCRE2_CASELESS : 0) | PCRE2_USE_OFFSET_LIMIT;
		p->re = pcre2_compile((PCRE2_SPTR)p->regex, PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
		if (!p->re) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(err, msg, sizeof(msg));
			return PACK_ERR(p->pack, p->id, "invalid regex at offset %zu: %s", (size_t)off, (char *)msg);
		}
		uint32_t ncap = 0;
		pcre2_pattern_info(p->re, PCRE2_INFO_CAPTURECOUNT, &ncap);
		if (p->group > ncap)
			return PACK_ERR(p->pack, p->id, "'group' is %u but the regex has %u capture groups", p->group, ncap);
		pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
		if (!(p->hs_regex = loosen(p->regex)))
			return -ENOMEM;
	}
	return 0;
}

int exai__pack_hs_check(struct exai__pack_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct exai__pattern *p = &set->pats[i];
		hs_expr_info_t *info = NULL;
		unsigned flags = p->caseless ? HS_FLAG_CASELESS : 0;
		/* the window comes from the exact regex (when Hyperscan can analyse it) */
		int r = expr_info(p, p->regex, &flags, &info);
		if (r < 0)
			return r;
		unsigned window = info->max_width;
		free(info);
		info = NULL;
		flags = p->caseless ? HS_FLAG_CASELESS : 0;
		if ((r = expr_info(p, p->hs_regex, &flags, &info)) < 0)
			return r;
		if (info->min_width == 0) {
			free(info);
			return PACK_ERR(p->pack, p->id, "the regex matches the empty string");
		}
		p->window = window > EXAI__SCRUB_WINDOW_MAX ? EXAI__SCRUB_WINDOW_MAX : window;
		free(info);
		p->hs_flags = flags;
	}
	return 0;
}

void exai__pack_set_free(struct exai__pack_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		pattern_free(&set->pats[i]);
	free(set->pats);
	for (size_t i = 0; i < set->n_groups; i++)
		free(set->groups[i]);
	free(set->groups);
	json_decref(set->examples);
	memset(set, 0, sizeof(*set));
}
