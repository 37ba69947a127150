/* log.h - one line per event to syslog (facility mail), and to stderr when asked. */
#ifndef TLSRPT_LOG_H
#define TLSRPT_LOG_H

#include <stdbool.h>

#include "util.h"

void log_open(const char *ident, bool to_stderr, bool verbose);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));


/* Values from a message (organization, report-id, reasons, Message-ID,
 * domains) in a log line, so that none can forge a field of its own:
 * log_quote appends "s" with '"' and '\\' escaped by a backslash and control
 * characters as \xNN; log_token appends s bare with the same escapes and
 * space, '<', '>' and '=' as \xNN too. NULL: "" and "-". */
void log_quote(struct buf *b, const char *s);
void log_token(struct buf *b, const char *s);

#endif
