/* inflate.h - gzip (and zlib) streams to bytes, within limits. */
#ifndef TLSRPT_INFLATE_H
#define TLSRPT_INFLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "status.h"
#include "util.h"

bool is_gzip(const unsigned char *data, size_t len);

/* Inflates every concatenated gzip member of in into out (appended).
 * Bytes after the last member that do not start another one (a CRLF, say)
 * are ignored (*trailing, may be NULL, tells how many). Output is accepted
 * only once a member's CRC has been checked. Fails with ERR_INPUT on corrupt
 * or truncated data, in any member, and on the max_inflated_size /
 * max_inflate_ratio limits (msg names the limit), ERR_TEMP when zlib is out
 * of memory. */
int inflate_gzip(const unsigned char *in, size_t len, const struct limits *lim,
		 struct buf *out, size_t *trailing, struct error *e);

#endif
