/* util.h - memory that never returns NULL, a growable byte buffer, text hygiene. */
#ifndef TLSRPT_UTIL_H
#define TLSRPT_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* On exhaustion these print "4.3.0 out of memory" and exit 75 (EX_TEMPFAIL),
 * as Postfix's mymalloc does: the mail stays queued. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct buf {
	unsigned char *data;
	size_t len;
	size_t cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Terminates with a NUL that is not counted in len; returns data. */
char *buf_cstr(struct buf *b);
void buf_free(struct buf *b);

/* A copy of s[0..len) that is valid UTF-8 with no NUL: invalid sequences become
 * U+FFFD, NULs are dropped. *changed (may be NULL) tells whether anything was mended. */
char *text_clean(const char *s, size_t len, bool *changed);
bool utf8_valid(const unsigned char *s, size_t len);
/* s in ASCII: every other character as \uXXXX (\UXXXXXXXX), a byte that is
 * not UTF-8 as \xXX; for a database whose encoding cannot hold the rest. */
char *text_ascii(const char *s);

/* Bytes before the first significant one: a UTF-8 byte order mark and white space. */
size_t skip_bom_space(const unsigned char *data, size_t len);

/* Length of a leading mbox "From " line with its newline (local(8), procmail,
 * pipe(8) flags=F add one); 0 when there is none. */
size_t mbox_from_line_length(const unsigned char *data, size_t len);

/* Lower-case ASCII suffix test. */
bool ends_with_ci(const char *s, const char *suffix);

/* "64M", "512k", "1G", "1000" -> bytes; false on junk or overflow. */
bool parse_size(const char *s, size_t *out);
bool parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* Monotonic milliseconds. */
long long now_ms(void);

/* The CPU time spent on one message's parse (max_parse_time): started by
 * ingest_bytes, checked in the loops of the MIME walk, inflate and the
 * reports. CPU time of this process, so a slow database never counts. */
void parse_clock_start(unsigned seconds);
bool parse_clock_over(void);

#endif
