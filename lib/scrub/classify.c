/* SPDX-License-Identifier: Apache-2.0 */
/* classify.c: the stage-2 classifier: a logistic regression over features of a token and the
 * words before it. The features must be computed exactly as lib/scrub/train/train.py does
 * (tests/unit/test-scrub-classify.c compares both); the model (weights, standardisation and
 * threshold) is lib/scrub/train/model.json, produced by that script and embedded at build. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "scrub-internal.h"

/* generated from lib/scrub/train/model.json */
extern const double exai__cls_mean[EXAI__CLS_NFEAT], exai__cls_std[EXAI__CLS_NFEAT];
extern const double exai__cls_weight[EXAI__CLS_NFEAT], exai__cls_bias, exai__cls_thresh;

/* frequent English letter pairs (train.py's BIGRAMS, sorted) */
static const char bigrams[][3] = { "ac", "ad", "ag", "al", "am", "an", "ap", "ar", "as", "at", "av", "ay", "be", "bl", "br", "ca", "ce", "ch", "ci", "co", "ct", "de", "di", "do", "ea", "ec", "ed", "ei", "el", "em", "en", "ep", "er", "es", "et", "ew", "ex", "fi", "fo", "fr", "ge", "gr", "ha", "he", "hi", "ic", "id", "ie", "ig", "il", "im", "in", "io", "ir", "is", "it", "iv", "ke", "la", "ld", "le", "li", "ll", "lo", "ly", "ma", "me", "mi", "mo", "na", "nc", "nd", "ne", "ng", "ni", "no", "ns", "nt", "of", "ol", "om", "on", "op", "or", "os", "ot", "ou", "ow", "pa", "pe", "pl", "po", "pr", "qu", "ra", "rd", "re", "ri", "ro", "rs", "rt", "ry", "se", "sh", "si", "so", "sp", "ss", "st", "su", "ta", "te", "th", "ti", "to", "tr", "ts", "ty", "ul", "um", "un", "up", "ur", "us", "ut", "ve" };

static const char token_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_.-";
static bool token_table[256];
static unsigned char vowel_table[256];
static bool bigram_table[26][26];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void)
{
	for (const char *c = token_chars; *c; c++)
		token_table[(unsigned char)*c] = true;
	for (const char *c = "aeiouAEIOU"; *c; c++)
		vowel_table[(unsigned char)*c] = 1;
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(bigrams); i++)
		bigram_table[bigrams[i][0] - 'a'][bigrams[i][1] - 'a'] = true;
}

const bool *exai__cls_token_table(void)
{
	pthread_once(&tables_once, tables_init);
	return token_table;
}

static int cclass(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return 0;
	if (c >= 'A' && c <= 'Z')
		return 1;
	if (c >= '0' && c <= '9')
		return 2;
	return 3;
}

static double bigram_share(const char *t, size_t n)
{
	size_t pairs = 0, common = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char a = (unsigned char)t[i], b = (unsigned char)t[i + 1];
		if (!isalpha(a) || !isalpha(b))
			continue;
		pairs++;
		common += bigram_table[tolower(a) - 'a'][tolower(b) - 'a'];
	}
	return pairs ? (double)common / (double)pairs : 0;
}

static const char *const context_words[] = { "key", "token", "secret", "passw", "pwd", "auth",
					     "credential", "bearer", "api" };

void exai__cls_features(double f[EXAI__CLS_NFEAT], const char *tok, size_t n, const char *before, size_t nb)
{
	pthread_once(&tables_once, tables_init);
	size_t cnt[4] = { 0 }, trans = 0, slash_dot = 0, vowels = 0;
	size_t run_alpha = 0, best_alpha = 0, run_digit = 0, best_digit = 0;
	bool hexl = true, hexu = true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tok[i];
		int k = cclass(c);
		cnt[k]++;
		if (i && cclass((unsigned char)tok[i - 1]) != k)
			trans++;
		if (c == '/' || c == '.')
			slash_dot++;
		vowels += vowel_table[c];
		run_alpha = k <= 1 ? run_alpha + 1 : 0;
		run_digit = k == 2 ? run_digit + 1 : 0;
		if (run_alpha > best_alpha)
			best_alpha = run_alpha;
		if (run_digit > best_digit)
			best_digit = run_digit;
		hexl &= (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		hexu &= (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
	}
	bool uuid = n == 36;
	for (size_t i = 0; uuid && i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		uuid = dash ? tok[i] == '-' : isxdigit((unsigned char)tok[i]) != 0;
	}
	bool kw = false;
	char low[33];
	size_t m = nb < 32 ? nb : 32;
	for (size_t i = 0; i < m; i++)
		low[i] = (char)tolower((unsigned char)before[nb - m + i]);
	for (size_t i = 0; i + 3 <= m && !kw; i++) {
		if (!strchr("ktspacb", low[i]) || !low[i]) /* the words' first letters */
			continue;
		for (size_t w = 0; w < EXAI__ARRAY_SIZE(context_words) && !kw; w++) {
			size_t wl = strlen(context_words[w]);
			kw = i + wl <= m && low[i] == context_words[w][0] && memcmp(low + i, context_words[w], wl) == 0;
		}
	}
	double dn = (double)n;
	double h = exai__shannon(tok, n);
	f[0] = dn / 64.0;
	f[1] = h;
	f[2] = (double)cnt[0] / dn;
	f[3] = (double)cnt[1] / dn;
	f[4] = (double)cnt[2] / dn;
	f[5] = (double)cnt[3] / dn;
	f[6] = n > 1 ? (double)trans / (dn - 1) : 0;
	f[7] = (double)((cnt[0] > 0) + (cnt[1] > 0) + (cnt[2] > 0) + (cnt[3] > 0)) / 4.0;
	f[8] = (hexl || hexu) ? 1 : 0;
	f[9] = uuid ? 1 : 0;
	f[10] = kw ? 1 : 0;
	f[11] = (double)slash_dot / dn;
	f[12] = (double)best_alpha / dn;
	f[13] = cnt[0] + cnt[1] ? (double)vowels / (double)(cnt[0] + cnt[1]) : 0;
	f[14] = fmin(1.0, h / log2(dn));
	f[15] = (double)best_digit / dn;
	f[16] = bigram_share(tok, n);
}

double exai__cls_score(const double f[EXAI__CLS_NFEAT])
{
	double z = exai__cls_bias;
	for (int i = 0; i < EXAI__CLS_NFEAT; i++)
		z += exai__cls_weight[i] * ((f[i] - exai__cls_mean[i]) / exai__cls_std[i]);
	return 1.0 / (1.0 + exp(-z));
}

double exai__cls_threshold(void)
{
	return exai__cls_thresh;
}
