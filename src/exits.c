/* exits.c - (failure class x mode) -> exit status, enhanced status code,
 * HTTP status; and the lines written from the signal handlers. */
#include "autoconf.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "exits.h"
#include "log.h"

#define TEMP {EX_TEMPFAIL, "4.3.0", 503}
#define CONFIG_DEFER {EX_TEMPFAIL, "4.3.0", 500}
#define CONFIG_STOP {EX_CONFIG, "5.3.5", 500}
#define USAGE {EX_USAGE, "5.3.0", 400}
#define NOINPUT {EX_NOINPUT, "5.3.0", 400}

/* Rows: the failure class; columns: the mode. Bad input never ends a run (it
 * is kept as rejected), so ERR_INPUT reaching here is deferred like a bug.
 * An MTA delivery defers what the administrator must fix (the mail waits in
 * the queue until it is fixed); an interactive run says so with 78. */
static const struct exits_answer exits_table[ERR_N_CLASSES][EXITS_N_MODES] = {
	/*              DELIVERY      FILES        COMMAND      CGI */
	[ERR_NONE]    = {{0, "2.0.0", 200}, {0, "2.0.0", 200}, {0, "2.0.0", 200}, {0, "2.0.0", 200}},
	[ERR_TEMP]    = {TEMP, TEMP, TEMP, TEMP},
	[ERR_INPUT]   = {TEMP, TEMP, TEMP, TEMP},
	[ERR_CONFIG]  = {CONFIG_DEFER, CONFIG_STOP, CONFIG_STOP, CONFIG_DEFER},
	[ERR_USAGE]   = {USAGE, USAGE, USAGE, USAGE},
	[ERR_BUG]     = {TEMP, TEMP, TEMP, TEMP},
	[ERR_NOINPUT] = {NOINPUT, NOINPUT, NOINPUT, NOINPUT},
};

/* The lines the signal handlers write, prepared before any signal can come. */
static const char exits_line_term[] = "4.3.0 tlsrpt-ingest: terminated by a signal\n";
static const char exits_line_bus[] = "4.3.0 tlsrpt-ingest: an input file changed while it was read\n";
static const char exits_cgi_deadline[] =
	"Status: 503 Service Unavailable\r\n"
	"Retry-After: 300\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"deadline reached, nothing stored; try again later\n";
static char exits_line_deadline[200];

static enum exits_mode exits_current = EXITS_COMMAND;
static volatile sig_atomic_t exits_silent; /* a backfill lane: its run's first process says it all */
static void (*exits_before_line)(void);

static void
exits_write(int fd, const char *line)
{
	if (!exits_silent)
		(void)!write(fd, line, strlen(line));
}

static void
exits_on_alarm(int sig)
{
	(void)sig;
	if (exits_current == EXITS_CGI) {
		exits_write(STDOUT_FILENO, exits_cgi_deadline);
		_exit(0); /* answered; the server rolls back what was not committed */
	}
	exits_write(STDERR_FILENO, exits_line_deadline);
	_exit(EX_TEMPFAIL); /* the server rolls back what was not committed */
}

static void
exits_on_term(int sig)
{
	(void)sig;
	exits_write(STDERR_FILENO, exits_line_term);
	_exit(EX_TEMPFAIL);
}

static void
exits_on_bus(int sig)
{
	(void)sig;
	exits_write(STDERR_FILENO, exits_line_bus);
	_exit(EX_TEMPFAIL);
}

void
exits_init(enum exits_mode mode, void (*before_line)(void))
{
	exits_current = mode;
	exits_before_line = before_line;
}

void
exits_quiet(void)
{
	exits_silent = 1;
}

void
exits_signals(unsigned deadline)
{
	struct sigaction sa;

	snprintf(exits_line_deadline, sizeof exits_line_deadline,
		 exits_current != EXITS_FILES ? "4.3.0 tlsrpt-ingest: deadline of %u s reached, nothing stored\n"
				     : "4.3.0 tlsrpt-ingest: deadline of %u s reached on one message; the ones committed"
				       " before it stay stored, run the same command again to go on\n",
		 deadline);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = exits_on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = exits_on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = exits_on_bus;
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

const struct exits_answer *
exits_answer(enum err_class cls)
{
	if ((unsigned)cls >= ERR_N_CLASSES)
		cls = ERR_BUG;
	return &exits_table[cls][exits_current];
}

static int
exits_fail_text(enum err_class cls, char *msg)
{
	const struct exits_answer *a = exits_answer(cls == ERR_NONE ? ERR_BUG : cls);

	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (exits_before_line != NULL)
		exits_before_line();
	if (cls == ERR_BUG || cls == ERR_NONE)
		log_error("bug (an internal inconsistency; please report it): %s", msg);
	else
		log_error("%s", msg);
	fflush(stdout);
	fprintf(stderr, "%s tlsrpt-ingest: %s\n", a->dsn, msg);
	return a->status;
}

int
exits_fail(enum err_class cls, const char *fmt, ...)
{
	char msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return exits_fail_text(cls, msg);
}

int
exits_fail_error(const struct error *e)
{
	char msg[sizeof e->msg];

	memcpy(msg, e->msg, sizeof msg);
	msg[sizeof msg - 1] = '\0';
	return exits_fail_text(e->cls, msg);
}
