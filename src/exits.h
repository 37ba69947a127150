/* exits.h - the one place a failure becomes what the caller sees: the exit
 * status the MTA acts on, the enhanced status code (RFC 3463) that starts the
 * one line on standard error, the HTTP status of a CGI answer, and the lines
 * the signal handlers write. One table, in the spirit of Postfix's
 * src/global/sys_exits.c: (failure class x mode) -> all of these. */
#ifndef TLSRPT_EXITS_H
#define TLSRPT_EXITS_H

#include "status.h"

/* How the program was run, as far as a failure's answer depends on it. */
enum exits_mode {
	EXITS_DELIVERY, /* one message on standard input from an MTA: 75 keeps it queued */
	EXITS_FILES,    /* FILE arguments: an administrator's backfill; --reprocess */
	EXITS_COMMAND,  /* --dry-run, --init-db, -n, --summary, --purge-older-than, --metrics */
	EXITS_CGI,      /* one HTTPS POST through a web server */
	EXITS_N_MODES
};

struct exits_answer {
	int status;      /* the exit status (sysexits.h) */
	const char *dsn; /* the enhanced status code for that status */
	int http;        /* the HTTP status of a CGI answer */
};

/* Sets the mode for the rest of the run. before_line, when not NULL, runs
 * before a status line is written (a progress line to wipe). */
void exits_init(enum exits_mode mode, void (*before_line)(void));

/* Installs the signal handlers: SIGALRM (the deadline of deadline seconds),
 * SIGTERM, SIGINT, SIGHUP, SIGBUS (a mapped input file cut short) each write
 * the mode's line and exit 75 (a CGI deadline: a 503 answer on standard
 * output and exit 0); SIGPIPE is ignored. */
void exits_signals(unsigned deadline);
/* From now on the signal handlers end the process without a line (a
 * backfill lane: the run's first process tells what became of it). */
void exits_quiet(void);

/* The answer for a failure of class cls in the current mode. */
const struct exits_answer *exits_answer(enum err_class cls);

/* Logs the failure (ERR_BUG as a bug), writes the one status line
 * "DSN tlsrpt-ingest: text" on standard error and returns the exit status. */
int exits_fail(enum err_class cls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a struct error. */
int exits_fail_error(const struct error *e);

#endif
