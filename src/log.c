/* log.c - syslog(LOG_MAIL) always, stderr for interactive use and -v. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
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
