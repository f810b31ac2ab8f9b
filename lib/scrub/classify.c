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

/* What the features need of each byte, in one table: its class (0 lower, 1 upper, 2 digit,
 * 3 other), whether it is a lower or upper hex digit, its letter index (26: not a letter), and
 * what it adds to the counters the pass keeps packed in one register (10 bits each: the four
 * classes, vowels, '/' and '.'). */
enum { B_HEXL = 4, B_HEXU = 8 };
#define PACK_BITS 10
#define PACK_MAX ((1u << PACK_BITS) - 1) /* bytes between two unpackings */
enum { P_VOWEL = 4, P_SLASH_DOT = 5 };
struct byte_info {
	uint64_t add;
	uint64_t seen_lo, seen_hi; /* its bit among the bytes 0x20..0x5f and 0x60..0x9f */
	uint8_t cls, letter;       /* cls: B_OTHER for a byte outside 0x20..0x9f */
};
enum { B_OTHER = 16 };
static struct byte_info byte_info[256];
/* per pair of letter indices (26: not a letter): 1 when both are letters, plus 1 << 16 when
 * they are a frequent English pair */
static uint32_t bigram_add[27 * 32];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
/* the words that make a token's context (train.py's CONTEXT_WORDS) */
static const char *const context_words[] = { "key", "token", "secret", "passw", "pwd", "auth",
					     "credential", "bearer", "api" };
static struct exai__words context;

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

static void tables_init(void)
{
	for (const char *c = token_chars; *c; c++)
		token_table[(unsigned char)*c] = true;
	for (int c = 0; c < 256; c++) {
		struct byte_info *b = &byte_info[c];
		int k = cclass((unsigned char)c);
		b->cls = (uint8_t)k;
		b->add = 1ull << (PACK_BITS * k);
		if (c && strchr("aeiouAEIOU", c))
			b->add |= 1ull << (PACK_BITS * P_VOWEL);
		if (c == '/' || c == '.')
			b->add |= 1ull << (PACK_BITS * P_SLASH_DOT);
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
			b->cls |= B_HEXL;
		if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))
			b->cls |= B_HEXU;
		b->letter = (uint8_t)(k <= 1 ? (c | 0x20) - 'a' : 26);
		if (c >= 0x20 && c < 0x60)
			b->seen_lo = 1ull << (c - 0x20);
		else if (c >= 0x60 && c < 0xa0)
			b->seen_hi = 1ull << (c - 0x60);
		else
			b->cls |= B_OTHER;
	}
	for (int x = 0; x < 26; x++)
		for (int y = 0; y < 26; y++)
			bigram_add[x * 32 + y] = 1;
	for (size_t i = 0; i < EXAI__ARRAY_SIZE(bigrams); i++)
		bigram_add[(bigrams[i][0] - 'a') * 32 + bigrams[i][1] - 'a'] |= 1u << 16;
	exai__words_init(&context, context_words, EXAI__ARRAY_SIZE(context_words));
}

const bool *exai__cls_token_table(void)
{
	pthread_once(&tables_once, tables_init);
	return token_table;
}


/* What one pass over a token counts: each byte's table entry gives its class, vowel, '/' '.',
 * hex and letter facts; the pair of letter indices gives the English bigrams; a bit per byte
 * value the distinct bytes. */
struct tally {
	size_t cnt[4], trans, slash_dot, vowels, pairs, common, best_alpha, best_digit, distinct;
	bool hex, uuid, kw;
};

static void unpack(struct tally *t, uint64_t *acc)
{
	for (int k = 0; k < 4; k++)
		t->cnt[k] += (*acc >> (PACK_BITS * k)) & PACK_MAX;
	t->vowels += (*acc >> (PACK_BITS * P_VOWEL)) & PACK_MAX;
	t->slash_dot += (*acc >> (PACK_BITS * P_SLASH_DOT)) & PACK_MAX;
	*acc = 0;
}

static void tally(struct tally *t, const char *tok, size_t n, const char *before, size_t nb)
{
	pthread_once(&tables_once, tables_init);
	memset(t, 0, sizeof(*t));
	size_t run_alpha = 0, run_digit = 0, best_alpha = 0, best_digit = 0, trans = 0, pairs = 0, common = 0;
	unsigned hex = B_HEXL | B_HEXU, prev_k = 4, prev_l = 26, other = 0;
	/* the distinct bytes: a bit per byte 0x20..0x9f in two words; any other byte and the
	 * count is only bounded by n */
	uint64_t seen_lo = 0, seen_hi = 0;
	for (size_t i = 0; i < n;) {
		uint64_t acc = 0, acc2 = 0; /* acc2: pairs of letters, and frequent ones << 16 */
		for (size_t e = n - i < PACK_MAX ? n : i + PACK_MAX; i < e; i++) {
			const struct byte_info *b = &byte_info[(unsigned char)tok[i]];
			unsigned k = b->cls & 3, l = b->letter;
			acc += b->add;
			trans += prev_k != k;
			prev_k = k;
			hex &= b->cls;
			other |= b->cls;
			run_alpha = k <= 1 ? run_alpha + 1 : 0;
			run_digit = k == 2 ? run_digit + 1 : 0;
			best_alpha = run_alpha > best_alpha ? run_alpha : best_alpha;
			best_digit = run_digit > best_digit ? run_digit : best_digit;
			acc2 += bigram_add[prev_l * 32 + l];
			prev_l = l;
			seen_lo |= b->seen_lo;
			seen_hi |= b->seen_hi;
		}
		unpack(t, &acc);
		pairs += acc2 & 0xffff;
		common += acc2 >> 16;
	}
	t->trans = n ? trans - 1 : 0; /* the first byte is no transition */
	t->pairs = pairs;
	t->common = common;
	t->best_alpha = best_alpha;
	t->best_digit = best_digit;
	t->distinct = other & B_OTHER ? n : (size_t)(__builtin_popcountll(seen_lo) + __builtin_popcountll(seen_hi));
	t->hex = hex & (B_HEXL | B_HEXU);
	t->uuid = n == 36;
	for (size_t i = 0; t->uuid && i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		t->uuid = dash ? tok[i] == '-' : isxdigit((unsigned char)tok[i]) != 0;
	}
	/* a context word in the last 32 bytes before the token */
	size_t m = nb < 32 ? nb : 32;
	t->kw = exai__words_in(&context, before + nb - m, m);
}

/* The features as train.py computes them, each the same expression on the same counts; @h
 * the token's entropy. */
static void features_of(double f[EXAI__CLS_NFEAT], const struct tally *t, size_t n, double h)
{
	double dn = (double)n;
	f[0] = dn / 64.0;
	f[1] = h;
	f[2] = (double)t->cnt[0] / dn;
	f[3] = (double)t->cnt[1] / dn;
	f[4] = (double)t->cnt[2] / dn;
	f[5] = (double)t->cnt[3] / dn;
	f[6] = n > 1 ? (double)t->trans / (dn - 1) : 0;
	f[7] = (double)((t->cnt[0] > 0) + (t->cnt[1] > 0) + (t->cnt[2] > 0) + (t->cnt[3] > 0)) / 4.0;
	f[8] = t->hex ? 1 : 0;
	f[9] = t->uuid ? 1 : 0;
	f[10] = t->kw ? 1 : 0;
	f[11] = (double)t->slash_dot / dn;
	f[12] = (double)t->best_alpha / dn;
	f[13] = t->cnt[0] + t->cnt[1] ? (double)t->vowels / (double)(t->cnt[0] + t->cnt[1]) : 0;
	f[14] = fmin(1.0, h / exai__log2_count(n));
	f[15] = (double)t->best_digit / dn;
	f[16] = t->pairs ? (double)t->common / (double)t->pairs : 0;
}

void exai__cls_features(double f[EXAI__CLS_NFEAT], const char *tok, size_t n, const char *before, size_t nb)
{
	struct tally t;
	tally(&t, tok, n, before, nb);
	features_of(f, &t, n, exai__shannon(tok, n));
}

static double term(int i, double v)
{
	return exai__cls_weight[i] * ((v - exai__cls_mean[i]) / exai__cls_std[i]);
}

static double cls_z(const double f[EXAI__CLS_NFEAT])
{
	double z = exai__cls_bias;
	for (int i = 0; i < EXAI__CLS_NFEAT; i++)
		z += term(i, f[i]);
	return z;
}

double exai__cls_score(const double f[EXAI__CLS_NFEAT])
{
	return 1.0 / (1.0 + exp(-cls_z(f)));
}

/* The threshold's logit less a margin far above the rounding of the score: a token whose z
 * (or a bound of it) is below it scores under the threshold. */
static double z_floor;
static pthread_once_t z_once = PTHREAD_ONCE_INIT;

static void z_init(void)
{
	z_floor = log(exai__cls_thresh / (1.0 - exai__cls_thresh)) - 1e-6;
}

/* The entropy (features 1 and 14) is the costly feature. Of a token with d distinct bytes it
 * lies in [0, log2 d], and each of its two terms is monotonic in it: the larger of each term's
 * values at both ends, with the other features exact, bounds z from above. */
static double z_bound(const double f[EXAI__CLS_NFEAT], const struct tally *t, size_t n)
{
	double hmax = exai__log2_count(t->distinct), ln = exai__log2_count(n);
	double z = exai__cls_bias;
	for (int i = 0; i < EXAI__CLS_NFEAT; i++)
		if (i != 1 && i != 14)
			z += term(i, f[i]);
	z += fmax(term(1, 0), term(1, hmax));
	z += fmax(term(14, 0), term(14, fmin(1.0, hmax / ln)));
	return z;
}

bool exai__cls_secret(const char *tok, size_t n, const char *before, size_t nb, double *score)
{
	pthread_once(&z_once, z_init);
	struct tally t;
	tally(&t, tok, n, before, nb);
	double f[EXAI__CLS_NFEAT];
	features_of(f, &t, n, 0);
	if (n >= 2 && z_bound(f, &t, n) < z_floor)
		return false;
	features_of(f, &t, n, exai__shannon(tok, n));
	double z = cls_z(f);
	if (z < z_floor)
		return false;
	*score = 1.0 / (1.0 + exp(-z));
	return *score >= exai__cls_thresh;
}

double exai__cls_threshold(void)
{
	return exai__cls_thresh;
}
