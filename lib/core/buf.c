/* SPDX-License-Identifier: Apache-2.0 */
/* buf.c: a growable, always NUL-terminated byte buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core-internal.h"

int exai__buf_reserve(struct exai__buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	p[b->len] = '\0'; /* a fresh buffer is an empty string, not garbage */
	b->data = p;
	b->cap = cap;
	return 0;
}

int exai__buf_append(struct exai__buf *b, const void *p, size_t n)
{
	int r = exai__buf_reserve(b, n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int exai__buf_putc(struct exai__buf *b, char c)
{
	return exai__buf_append(b, &c, 1);
}

int exai__buf_printf(struct exai__buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int r = exai__buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *exai__buf_steal(struct exai__buf *b, size_t *retlen)
{
	char *p = b->data;
	if (!p)
		p = calloc(1, 1);
	if (p && retlen)
		*retlen = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void exai__buf_free(struct exai__buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
