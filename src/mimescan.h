/* mimescan.h - one linear pass over a raw message that bounds what GMime is
 * asked to parse: header bytes and Content-Type/Content-Disposition parameters
 * of every header block (GMime's parameter parsing is quadratic), MIME parts
 * and nesting depth (GMime builds the whole tree in memory first). */
#ifndef TLSRPT_MIMESCAN_H
#define TLSRPT_MIMESCAN_H

#include <stddef.h>

#include "config.h"
#include "status.h"

/* 0 when msg[0..len) stays within lim's max_header_size, max_header_params,
 * max_mime_parts, max_mime_depth and max_report_parts (parts whose type is a
 * report type); else -1 with ERR_INPUT naming the limit.
 * The counts are upper bounds of what GMime will find: a line that begins
 * with "--" and a known boundary counts as a part whatever follows it. */
int mimescan_check(const unsigned char *msg, size_t len, const struct limits *lim, struct error *e);

#endif
