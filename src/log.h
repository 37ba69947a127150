/* log.h - one line per event to syslog (facility mail), and to stderr when asked. */
#ifndef TLSRPT_LOG_H
#define TLSRPT_LOG_H

#include <stdbool.h>

void log_open(const char *ident, bool to_stderr, bool verbose);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
