/* util.c - memory, buffers and text hygiene shared by every stage. */
#include "autoconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static void __attribute__((noreturn))
out_of_memory(void)
{
	static const char line[] = "4.3.0 tlsrpt-ingest: out of memory\n";

	(void)!write(STDERR_FILENO, line, sizeof line - 1);
	_exit(75);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		out_of_memory();
	return q;
}

void *
xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		out_of_memory();
	return xrealloc(p, nmemb * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory();
	return p;
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t want;

	if (extra > SIZE_MAX - b->len - 1)
		out_of_memory();
	want = b->len + extra + 1;
	if (want <= b->cap)
		return;
	if (b->cap < 64)
		b->cap = 64;
	while (b->cap < want)
		b->cap = b->cap > SIZE_MAX / 2 ? want : b->cap * 2;
	b->data = xrealloc(b->data, b->cap);
}

void
buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *
buf_cstr(struct buf *b)
{
	buf_reserve(b, 0);
	b->data[b->len] = '\0';
	return (char *)b->data;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return len >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (len < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0; /* surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (len < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0;
		if (c == 0xF4 && s[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

bool
utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((n = utf8_seq(s + i, len - i)) == 0)
			return false;
		i += n;
	}
	return true;
}

char *
text_clean(const char *s, size_t len, bool *changed)
{
	const unsigned char *u = (const unsigned char *)s;
	struct buf b = {0};
	size_t i = 0, n;
	bool mended = false;

	buf_reserve(&b, len);
	while (i < len) {
		if (u[i] == '\0') {
			mended = true;
			i++;
			continue;
		}
		if ((n = utf8_seq(u + i, len - i)) == 0) {
			buf_append(&b, "\xEF\xBF\xBD", 3);
			mended = true;
			i++;
			continue;
		}
		buf_append(&b, u + i, n);
		i += n;
	}
	if (changed)
		*changed = mended;
	return buf_cstr(&b);
}

size_t
skip_bom_space(const unsigned char *data, size_t len)
{
	size_t i = 0;

	if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF)
		i = 3;
	while (i < len && isspace(data[i]))
		i++;
	return i;
}

size_t
mbox_from_line_length(const unsigned char *data, size_t len)
{
	const unsigned char *nl;

	if (len >= 5 && memcmp(data, "From ", 5) == 0 && (nl = memchr(data, '\n', len)) != NULL)
		return (size_t)(nl - data) + 1;
	return 0;
}

bool
ends_with_ci(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

bool
parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (max - (unsigned)(*s - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(*s - '0');
	}
	*out = v;
	return true;
}

bool
parse_size(const char *s, size_t *out)
{
	char digits[32];
	size_t n = strlen(s), shift = 0;
	unsigned long long v;

	if (n == 0 || n >= sizeof digits)
		return false;
	memcpy(digits, s, n + 1);
	switch (digits[n - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	default: break;
	}
	if (shift)
		digits[--n] = '\0';
	if (!parse_uint(digits, SIZE_MAX >> shift, &v))
		return false;
	*out = (size_t)(v << shift);
	return true;
}

long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec parse_until;
static bool parse_clock_on;

static bool
cpu_now(struct timespec *t)
{
	return clock_gettime(CLOCK_PROCESS_CPUTIME_ID, t) == 0;
}

void
parse_clock_start(unsigned seconds)
{
	parse_clock_on = seconds > 0 && cpu_now(&parse_until);
	parse_until.tv_sec += (time_t)seconds;
}

bool
parse_clock_over(void)
{
	struct timespec t;

	if (!parse_clock_on || !cpu_now(&t))
		return false;
	return t.tv_sec > parse_until.tv_sec ||
	       (t.tv_sec == parse_until.tv_sec && t.tv_nsec >= parse_until.tv_nsec);
}

char *
text_ascii(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, n;
	struct buf b = {0};

	buf_reserve(&b, len);
	while (i < len) {
		unsigned long cp;

		if (u[i] < 0x80) {
			buf_append(&b, u + i++, 1);
			continue;
		}
		if ((n = utf8_seq(u + i, len - i)) == 0) {
			buf_printf(&b, "\\x%02x", u[i++]);
			continue;
		}
		cp = u[i] & (0xFFu >> (n + 1));
		for (size_t k = 1; k < n; k++)
			cp = (cp << 6) | (u[i + k] & 0x3Fu);
		buf_printf(&b, cp > 0xFFFF ? "\\U%08lx" : "\\u%04lx", cp);
		i += n;
	}
	return buf_cstr(&b);
}
