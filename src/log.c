/* log.c - syslog(LOG_MAIL) always, stderr for interactive use and -v. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static bool to_stderr;
static bool verbose;
static const char *ident = "tlsrpt-ingest";

void
log_open(const char *name, bool stderr_too, bool be_verbose)
{
	ident = name;
	to_stderr = stderr_too;
	verbose = be_verbose;
	openlog(name, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static void
log_emit(int prio, const char *label, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof line, fmt, ap);
	/* org names, report-ids and reasons come from the message: no terminal
	 * escapes or line breaks of theirs in the log */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	syslog(prio, "%s%s", label, line);
	if (to_stderr)
		fprintf(stderr, "%s: %s%s\n", ident, label, line);
}

#define LOG_FN(name, prio, label, gate)                   \
	void name(const char *fmt, ...)                   \
	{                                                 \
		va_list ap;                               \
		if (!(gate))                              \
			return;                           \
		va_start(ap, fmt);                        \
		log_emit(prio, label, fmt, ap);           \
		va_end(ap);                               \
	}

LOG_FN(log_info, LOG_INFO, "", 1)
LOG_FN(log_warn, LOG_WARNING, "warning: ", 1)
LOG_FN(log_error, LOG_ERR, "error: ", 1)
LOG_FN(log_debug, LOG_DEBUG, "debug: ", verbose)

static void
put_escaped(struct buf *b, const char *s, const char *hex_too)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f || strchr(hex_too, *p))
			buf_printf(b, "\\x%02x", *p);
		else
			buf_append(b, p, 1);
	}
}

void
log_quote(struct buf *b, const char *s)
{
	buf_puts(b, "\"");
	if (s != NULL)
		put_escaped(b, s, "");
	buf_puts(b, "\"");
}

void
log_token(struct buf *b, const char *s)
{
	if (s == NULL || *s == '\0')
		buf_puts(b, "-");
	else
		put_escaped(b, s, " <>=");
}
