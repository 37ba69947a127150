/* main.c - tlsrpt-ingest: the command line around the stages.
 * Reads one message on stdin (an MTA's delivery) or the files named, stores
 * every TLS-RPT report found in PostgreSQL, and maps what happened to the
 * exit status the MTA acts on: 0 only after COMMIT, 75 for anything that may
 * succeed later, so the mail stays queued. This is the one place that exits. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cgi.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "mime.h"
#include "purge.h"
#include "source.h"
#include "store.h"
#include "summary.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/tlsrpt-ingest.conf"

enum mode { MODE_DELIVER, MODE_FILES, MODE_DRY_RUN, MODE_INIT_DB, MODE_CHECK, MODE_SUMMARY, MODE_PURGE };

static const char usage_text[] =
	"Usage: tlsrpt-ingest [OPTION]... [FILE]...\n"
	"Store TLS-RPT (RFC 8460) reports in PostgreSQL.\n"
	"\n"
	"With no FILE, read one mail message on standard input (a delivery from the\n"
	"MTA) and store every report in it. Each FILE is a mail message, a .json or a\n"
	".json.gz report, recognized by its content; - is standard input.\n"
	"\n"
	"  -d, --database=CONNINFO  libpq connection string or URI\n"
	"  -c, --config=FILE        configuration file (default " DEFAULT_CONFIG ")\n"
	"  -o, --set=KEY=VALUE      set a configuration key, as in the file\n"
	"      --init-db            create or upgrade schema tlsrpt, then exit\n"
	"      --grant=ROLE         with --init-db: let ROLE insert and select in\n"
	"                           schema tlsrpt, and nothing more\n"
	"      --dry-run            print the normalized reports as JSON lines;\n"
	"                           touch no database\n"
	"  -n, --check              check the configuration and the database, then exit\n"
	"      --summary            per policy domain: sessions, failure rate, the top\n"
	"                           result types with their MX hosts and what fixes them\n"
	"      --days=N             with --summary: the last N days (default 7)\n"
	"      --domain=DOMAIN      with --summary: only that policy domain\n"
	"      --authenticated      with --summary: only reports with an aligned DKIM pass\n"
	"      --purge-older-than=DAYS  delete reports that ended (and rejected mail\n"
	"                           received) more than DAYS days ago, in batches\n"
	"  -v, --verbose            log to standard error as well as to syslog\n"
	"  -h, --help               show this help, then exit\n"
	"  -V, --version            show the version, then exit\n"
	"\n"
	"Exit status: 0 stored, already stored, or kept in tlsrpt.rejected;\n"
	"75 temporary failure (the MTA keeps the message and retries); 64 bad usage;\n"
	"66 an input file could not be read; 78 configuration error (interactive).\n"
	"On failure one line on standard error starts with an enhanced status code.\n";

/* The line written from a signal handler: prepared in advance. */
static char deadline_line[160];
static char signal_line[] = "4.3.0 tlsrpt-ingest: terminated by a signal\n";

static void
on_alarm(int sig)
{
	(void)sig;
	(void)!write(STDERR_FILENO, deadline_line, strlen(deadline_line));
	_exit(EX_TEMPFAIL); /* the server rolls back what was not committed */
}

static void
on_term(int sig)
{
	(void)sig;
	(void)!write(STDERR_FILENO, signal_line, sizeof signal_line - 1);
	_exit(EX_TEMPFAIL);
}

/* A mapped input file cut short while it is read. */
static void
on_bus(int sig)
{
	static const char line[] = "4.3.0 tlsrpt-ingest: an input file changed while it was read\n";

	(void)sig;
	(void)!write(STDERR_FILENO, line, sizeof line - 1);
	_exit(EX_TEMPFAIL);
}

static void
setup_signals(unsigned deadline, bool one_message)
{
	struct sigaction sa;

	snprintf(deadline_line, sizeof deadline_line,
		 one_message ? "4.3.0 tlsrpt-ingest: deadline of %u s reached, nothing stored\n"
			     : "4.3.0 tlsrpt-ingest: deadline of %u s reached on one message; the ones committed"
			       " before it stay stored, run the same command again to go on\n",
		 deadline);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_bus;
	sigaction(SIGBUS, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* The progress line on a terminal: wiped before anything else is written. */
static bool progress_on_screen;

static void
progress_clear(void)
{
	if (progress_on_screen)
		fputs("\r\033[K", stderr);
	progress_on_screen = false;
}

/* The one status line the MTA reads, then the exit. */
static int __attribute__((format(printf, 3, 4)))
fail(int status, const char *dsn, const char *fmt, ...)
{
	char msg[700];
	va_list ap;

	progress_clear();
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	log_error("%s", msg);
	fflush(stdout);
	fprintf(stderr, "%s tlsrpt-ingest: %s\n", dsn, msg);
	return status;
}

static int
status_for(const struct error *e, enum mode mode)
{
	switch (e->cls) {
	case ERR_USAGE:
		return EX_USAGE;
	case ERR_CONFIG:
		return mode == MODE_DELIVER ? EX_TEMPFAIL : EX_CONFIG;
	default:
		return EX_TEMPFAIL;
	}
}

static const char *
dsn_for(int status)
{
	return status == EX_TEMPFAIL ? "4.3.0" : status == EX_CONFIG ? "5.3.5" : "5.3.0";
}

struct run {
	enum mode mode;
	struct config cfg;
	struct store *store;
	const char *grant_role;
	const char *domain;  /* --summary --domain */
	bool authenticated_only; /* --summary --authenticated */
	unsigned days;       /* --summary --days, 0: the default */
	unsigned purge_days; /* --purge-older-than */
	size_t inputs, reports_new, reports_dup, rejected, unreadable;
	size_t done;                /* FILE runs: messages committed (their answers read) */
	bool batching;              /* FILE runs: messages go to store_batch_add */
	int stop_status;            /* FILE runs: set where the batch stopped */
	struct source_stats walked; /* what the FILE arguments held */
	size_t total;               /* messages to do, when counted first; 0: unknown */
	bool progress;              /* a progress line on stderr (a terminal) */
	long long t_start, t_shown;
};

static void
log_outcome(const struct delivery *d, const struct store_result *res, long long ms)
{
	struct buf line = {0};
	const char *outcome = res->reports_new > 0 ? "stored" : res->reports_duplicate > 0 ? "duplicate" : "rejected";

	buf_printf(&line, "%s: source=", outcome);
	log_token(&line, d->source);
	buf_puts(&line, " message-id=<");
	if (d->message_id)
		log_token(&line, d->message_id);
	buf_puts(&line, ">");
	for (size_t i = 0; i < d->n_reports; i++) {
		const struct report *r = d->reports[i].report;
		const char *domain = r->n_policies ? r->policies[0].policy_domain : NULL;

		buf_puts(&line, " org=");
		log_quote(&line, r->organization_name);
		buf_puts(&line, " report-id=");
		log_quote(&line, r->report_id);
		buf_puts(&line, " domain=");
		log_token(&line, domain);
	}
	buf_printf(&line, " reports=%zu new=%zu duplicate=%zu policies=%zu failures=%zu", d->n_reports,
		   res->reports_new, res->reports_duplicate, delivery_policies(d), delivery_failures(d));
	for (size_t i = 0; i < d->n_rejections; i++) {
		buf_puts(&line, " rejected=");
		log_quote(&line, d->rejections[i].reason);
	}
	if (res->rejected_duplicate)
		buf_printf(&line, " rejected-already-kept=%zu", res->rejected_duplicate);
	buf_printf(&line, " time=%lldms", ms);
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

/* FILE runs: a message handed to the batch, until the batch hands it back. */
struct pending {
	struct run *run;
	struct delivery *d;
	long long t0;
};

/* The batch hands back every message once, in order: stored (res), or not
 * stored, the first of those with the reason the run stops (e). */
static void
batch_done(void *arg, void *tag, const struct store_result *res, const struct error *e)
{
	struct run *run = arg;
	struct pending *p = tag;
	const struct delivery *d = p->d;

	if (res != NULL) {
		run->done++;
		run->reports_new += res->reports_new;
		run->reports_dup += res->reports_duplicate;
		run->rejected += d->n_rejections;
		log_outcome(d, res, now_ms() - p->t0);
		alarm(run->cfg.deadline); /* it moves: the deadline runs from here */
	} else if (e != NULL) {
		int st = status_for(e, run->mode);

		log_info("deferred: source=%s message-id=<%s> reason=\"%s\"", d->source,
			 d->message_id ? d->message_id : "", e->msg);
		run->stop_status = fail(st, dsn_for(st), "stopped at %s: %s; the %zu message(s) before it are stored"
					" (%zu reports, %zu already there, %zu rejected); run the same command again"
					" to go on", d->source, e->msg, run->done, run->reports_new, run->reports_dup,
					run->rejected);
	}
	delivery_free(p->d);
	free(p);
}

/* FILE runs: commits what is in flight and ends the batch. 0 or an exit status. */
static int
batch_finish(struct run *run)
{
	struct error e = {ERR_NONE, ""};
	int status = 0;

	if (!run->batching)
		return 0;
	run->batching = false;
	alarm(run->cfg.deadline);
	if (store_batch_flush(run->store, &e) < 0)
		status = run->stop_status ? run->stop_status
					  : fail(status_for(&e, run->mode), dsn_for(status_for(&e, run->mode)),
						 "%s", e.msg);
	alarm(0);
	return status;
}

/* One message: split, store. Returns an exit status, 0 to go on. */
static int
run_message(struct run *run, const char *source, const unsigned char *data, size_t len, size_t total)
{
	struct delivery *d = NULL;
	struct store_result res = {0};
	struct error e = {ERR_NONE, ""};
	long long t0 = now_ms();
	int status = 0;

	if (run->mode != MODE_DELIVER)
		alarm(run->cfg.deadline);
	run->inputs++;
	if (total > run->cfg.limits.max_message_size) {
		log_warn("%s: %zu bytes, over max_message_size (%zu)", source, total,
			 run->cfg.limits.max_message_size);
		ingest_oversized(data, len, total, source, &run->cfg.limits, &d);
	} else if (ingest_bytes(data, len, source, &run->cfg.limits, &d, &e) < 0) {
		if ((status = batch_finish(run)) == 0) /* what came before it first */
			status = fail(status_for(&e, run->mode), "4.3.0", "%s: %s", source, e.msg);
		goto out;
	}
	if (run->mode == MODE_DRY_RUN) {
		struct buf json = {0};

		delivery_print_json(d, &json);
		fwrite(json.data, 1, json.len, stdout);
		buf_free(&json);
		goto out;
	}
	if (run->batching) {
		struct pending *p = xmalloc(sizeof *p);

		*p = (struct pending){run, d, t0};
		d = NULL; /* the batch's now, freed in batch_done */
		if (store_batch_add(run->store, p->d, p, &e) < 0) {
			run->batching = false;
			status = run->stop_status ? run->stop_status
						  : fail(status_for(&e, run->mode), dsn_for(status_for(&e, run->mode)),
							 "%s", e.msg);
		}
		goto out;
	}
	if (store_delivery(run->store, d, run->mode == MODE_DELIVER ? CHANNEL_MAIL : CHANNEL_FILE, &res, &e) < 0) {
		int st = status_for(&e, run->mode);

		log_info("deferred: source=%s message-id=<%s> reason=\"%s\"", source,
			 d->message_id ? d->message_id : "", e.msg);
		if (run->mode == MODE_FILES)
			status = fail(st, dsn_for(st), "stopped at %s: %s; the %zu message(s) before it are stored"
				      " (%zu reports, %zu already there, %zu rejected); run the same command again"
				      " to go on", source, e.msg, run->inputs - 1, run->reports_new,
				      run->reports_dup, run->rejected);
		else
			status = fail(st, dsn_for(st), "%s", e.msg);
		goto out;
	}
	run->reports_new += res.reports_new;
	run->reports_dup += res.reports_duplicate;
	run->rejected += d->n_rejections;
	log_outcome(d, &res, now_ms() - t0);
out:
	alarm(0);
	delivery_free(d);
	return status;
}

/* Standard input: the MTA's delivery, or "-". */
static int
run_stdin(struct run *run)
{
	struct buf in = {0};
	size_t total;
	int status;

	if (run->mode != MODE_DELIVER) /* a delivery's deadline runs from before the connection */
		alarm(run->cfg.deadline);
	if (source_read(STDIN_FILENO, SIZE_MAX, run->cfg.limits.max_message_size, &in, &total) < 0) {
		int err = errno;

		buf_free(&in);
		if (run->mode == MODE_DELIVER)
			return fail(EX_TEMPFAIL, "4.3.0", "reading the message: %s", strerror(err));
		log_error("cannot read standard input: %s", strerror(err));
		run->unreadable++;
		return 0;
	}
	status = run_message(run, "stdin", in.data, in.len, total);
	buf_free(&in);
	return status;
}

static void
progress(struct run *run, bool force)
{
	long long now = now_ms();
	double secs = (double)(now - run->t_start) / 1000.0;
	char line[256];
	int n;

	if (!run->progress || (!force && now - run->t_shown < 250))
		return;
	run->t_shown = now;
	if (run->total > 0)
		n = snprintf(line, sizeof line, "\r%zu of %zu messages (%.0f%%)", run->done, run->total,
			     100.0 * (double)run->done / (double)run->total);
	else
		n = snprintf(line, sizeof line, "\r%zu messages", run->done);
	snprintf(line + n, sizeof line - (size_t)n, ", %.0f/s: %zu stored, %zu duplicates, %zu rejected\033[K",
		 secs > 0 ? (double)run->done / secs : 0.0, run->reports_new, run->reports_dup, run->rejected);
	fputs(line, stderr);
	fflush(stderr);
	progress_on_screen = true;
}

/* The summary of a FILE run: on a terminal, or after a backfill (an mbox, a
 * Maildir, a directory); a few single files from a script stay quiet. */
static void
print_summary(struct run *run)
{
	double secs = (double)(now_ms() - run->t_start) / 1000.0;
	size_t unreadable = run->unreadable + run->walked.unreadable;

	log_info("done: %zu inputs, %zu reports stored, %zu already stored, %zu rejected, %zu unreadable",
		 run->inputs, run->reports_new, run->reports_dup, run->rejected, unreadable);
	progress_clear();
	if (!run->progress && run->walked.containers == 0)
		return;
	printf("tlsrpt-ingest: %zu message(s) from %zu file(s): %zu report(s) stored, %zu already stored, "
	       "%zu rejected", run->inputs, run->walked.files, run->reports_new, run->reports_dup, run->rejected);
	if (unreadable > 0)
		printf(", %zu unreadable (see the mail log)", unreadable);
	printf("; %.1f s, %.0f messages/s\n", secs, secs > 0 ? (double)run->inputs / secs : 0.0);
}

static int
walk_one(void *arg, const struct source_msg *m)
{
	struct run *run = arg;
	int status = run_message(run, m->label, m->data, m->len, m->size);

	progress(run, false);
	return status;
}

/* A FILE argument: one message, an mbox, a Maildir or a directory. */
static int
run_path(struct run *run, const char *path)
{
	return source_walk(path, run->cfg.limits.max_message_size, walk_one, run, &run->walked);
}

static int
open_store(struct run *run)
{
	struct error e = {ERR_NONE, ""};

	if (store_open(&run->store, &run->cfg, &e) == 0)
		return 0;
	if (run->mode == MODE_INIT_DB)
		return fail(EX_CONFIG, "5.3.5", "%s", e.msg);
	return fail(EX_TEMPFAIL, "4.3.0", "%s", e.msg);
}

static int
do_init_db(struct run *run)
{
	struct error e = {ERR_NONE, ""};
	int version, status;

	alarm(run->cfg.deadline);
	if ((status = open_store(run)) != 0)
		return status;
	if (store_init_schema(run->store, &version, &e) < 0)
		return fail(status_for(&e, run->mode), dsn_for(status_for(&e, run->mode)), "%s", e.msg);
	printf("schema tlsrpt is at version %d\n", version);
	if (run->grant_role != NULL) {
		if (store_grant_writer(run->store, run->grant_role, &e) < 0)
			return fail(EX_CONFIG, "5.3.5", "%s", e.msg);
		printf("role %s may now insert and select in schema tlsrpt\n", run->grant_role);
	}
	return 0;
}

static int
do_check(struct run *run)
{
	struct error e = {ERR_NONE, ""};
	int version, status;

	alarm(run->cfg.deadline);
	if ((status = open_store(run)) != 0)
		return status;
	if (store_check_schema(run->store, &version, &e) < 0) {
		status = status_for(&e, run->mode);
		return fail(status, dsn_for(status), "%s", e.msg);
	}
	printf("configuration and database OK, schema tlsrpt version %d\n", version);
	return 0;
}

static int
do_summary(struct run *run)
{
	struct error e = {ERR_NONE, ""};
	int status;

	alarm(run->cfg.deadline);
	if (summary_print(&run->cfg, run->days ? run->days : 7, run->domain, run->authenticated_only, stdout, &e) < 0) {
		status = status_for(&e, run->mode);
		return fail(status, dsn_for(status), "%s", e.msg);
	}
	return 0;
}

/* No deadline: each batch is bounded by statement_timeout instead. */
static int
do_purge(struct run *run)
{
	struct error e = {ERR_NONE, ""};
	struct purge_result res;
	int status;

	if (purge_older_than(&run->cfg, run->purge_days, PURGE_BATCH, &res, &e) < 0) {
		status = status_for(&e, run->mode);
		return fail(status, dsn_for(status), "%s; purged so far: reports=%lld policies=%lld failures=%lld rejected=%lld",
			    e.msg, res.reports, res.policies, res.failures, res.rejected);
	}
	printf("purged reports=%lld policies=%lld failures=%lld rejected=%lld (older than %u days: before %s)\n",
	       res.reports, res.policies, res.failures, res.rejected, run->purge_days, res.cutoff);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"database", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, 'o'},
		{"init-db", no_argument, NULL, 'I'},
		{"grant", required_argument, NULL, 'G'},
		{"dry-run", no_argument, NULL, 'D'},
		{"check", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"summary", no_argument, NULL, 'S'},
		{"days", required_argument, NULL, 'Y'},
		{"domain", required_argument, NULL, 'Z'},
		{"authenticated", no_argument, NULL, 'A'},
		{"purge-older-than", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	struct run run;
	struct error e = {ERR_NONE, ""};
	const char *config_path = NULL, *database = NULL;
	char **overrides;
	size_t n_overrides = 0;
	bool verbose = false, init_db = false, dry_run = false, check = false;
	bool summary = false, purge = false;
	unsigned long long ull;
	int opt, status = 0;

	memset(&run, 0, sizeof run);
	if (cgi_active() && cgi_argv_from_query(argc))
		return cgi_fail(400, "arguments from a query string are refused");
	overrides = xcalloc((size_t)argc + 1, sizeof *overrides);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "d:c:o:nvhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': database = optarg; break;
		case 'c': config_path = optarg; break;
		case 'o': overrides[n_overrides++] = optarg; break;
		case 'I': init_db = true; break;
		case 'G': run.grant_role = optarg; break;
		case 'D': dry_run = true; break;
		case 'n': check = true; break;
		case 'S': summary = true; break;
		case 'Y':
			if (!parse_uint(optarg, 36500, &ull) || ull == 0) {
				free(overrides);
				fprintf(stderr, "5.3.0 tlsrpt-ingest: --days wants 1 to 36500, not \"%s\"\n", optarg);
				return EX_USAGE;
			}
			run.days = (unsigned)ull;
			break;
		case 'Z': run.domain = optarg; break;
		case 'A': run.authenticated_only = true; break;
		case 'P':
			if (!parse_uint(optarg, 36500, &ull) || ull == 0) {
				free(overrides);
				fprintf(stderr, "5.3.0 tlsrpt-ingest: --purge-older-than wants 1 to 36500 days, not \"%s\"\n",
					optarg);
				return EX_USAGE;
			}
			purge = true;
			run.purge_days = (unsigned)ull;
			break;
		case 'v': verbose = true; break;
		case 'h': fputs(usage_text, stdout); free(overrides); return 0;
		case 'V': printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION); free(overrides); return 0;
		default:
			free(overrides);
			fprintf(stderr, "5.3.0 tlsrpt-ingest: bad option %s (see --help)\n",
				optind > 1 && optind <= argc ? argv[optind - 1] : "");
			return EX_USAGE;
		}
	}
	if ((int)init_db + (int)dry_run + (int)check > 1 || ((init_db || check) && optind < argc) ||
	    (run.grant_role != NULL && !init_db)) {
		free(overrides);
		fprintf(stderr, "5.3.0 tlsrpt-ingest: --init-db, --dry-run and -n go alone; --grant goes with --init-db\n");
		return EX_USAGE;
	}
	if (((summary || purge) && ((int)init_db + (int)dry_run + (int)check + (int)summary + (int)purge > 1 ||
				    optind < argc)) ||
	    ((run.days != 0 || run.domain != NULL || run.authenticated_only) && !summary)) {
		free(overrides);
		fprintf(stderr, "5.3.0 tlsrpt-ingest: --summary and --purge-older-than go alone; "
				"--days, --domain and --authenticated go with --summary\n");
		return EX_USAGE;
	}
	run.mode = init_db ? MODE_INIT_DB : check ? MODE_CHECK : dry_run ? MODE_DRY_RUN
		 : summary ? MODE_SUMMARY : purge ? MODE_PURGE
		 : optind < argc ? MODE_FILES : MODE_DELIVER;

	/* FILE runs on a terminal show a progress line and a summary instead of a line per message */
	log_open("tlsrpt-ingest", verbose || (run.mode != MODE_DELIVER && run.mode != MODE_FILES &&
					      isatty(STDERR_FILENO)), verbose);
	config_defaults(&run.cfg);
	if (config_load(&run.cfg, config_path ? config_path : DEFAULT_CONFIG, config_path != NULL, &e) < 0)
		goto config_failed;
	for (size_t i = 0; i < n_overrides; i++) {
		char *eq = strchr(overrides[i], '='), key[64];

		if (eq == NULL || (size_t)(eq - overrides[i]) >= sizeof key) {
			fprintf(stderr, "5.3.0 tlsrpt-ingest: -o wants KEY=VALUE, not \"%s\"\n", overrides[i]);
			free(overrides);
			config_free(&run.cfg);
			return EX_USAGE;
		}
		memcpy(key, overrides[i], (size_t)(eq - overrides[i]));
		key[eq - overrides[i]] = '\0';
		if (config_set(&run.cfg, key, eq + 1, &e) < 0)
			goto config_failed;
		if (strcmp(key, "database") == 0)
			config_warn_password(eq + 1, "-o database=");
	}
	free(overrides);
	overrides = NULL;
	if (database != NULL) {
		config_set(&run.cfg, "database", database, &e);
		config_warn_password(database, "-d");
	}

	setup_signals(run.cfg.deadline, run.mode != MODE_FILES);
	mime_init();
	switch (run.mode) {
	case MODE_INIT_DB:
		status = do_init_db(&run);
		break;
	case MODE_CHECK:
		status = do_check(&run);
		break;
	case MODE_SUMMARY:
		status = do_summary(&run);
		break;
	case MODE_PURGE:
		status = do_purge(&run);
		break;
	case MODE_DRY_RUN:
		if (optind == argc)
			status = run_stdin(&run);
		for (int i = optind; i < argc && status == 0; i++)
			status = run_path(&run, argv[i]);
		run.unreadable += run.walked.unreadable;
		break;
	case MODE_DELIVER:
	case MODE_FILES:
		if (run.mode == MODE_DELIVER && cgi_active()) {
			status = cgi_main(&run.cfg);
			break;
		}
		if (run.mode == MODE_DELIVER)
			alarm(run.cfg.deadline); /* one deadline for all of it, the connection included */
		if ((status = open_store(&run)) != 0)
			break;
		if (run.mode == MODE_DELIVER)
			status = run_stdin(&run);
		run.t_start = now_ms();
		run.progress = run.mode == MODE_FILES && !verbose && isatty(STDERR_FILENO);
		for (int i = optind; run.progress && i < argc; i++)
			run.total += source_count(argv[i]);
		if (run.mode == MODE_FILES && optind < argc) {
			/* many messages: several in flight at once (store_batch_add) */
			if (store_batch_begin(run.store, CHANNEL_FILE, batch_done, &run, &e) < 0) {
				status = fail(status_for(&e, run.mode), dsn_for(status_for(&e, run.mode)), "%s", e.msg);
				break;
			}
			run.batching = true;
		}
		for (int i = optind; i < argc && status == 0; i++)
			status = run_path(&run, argv[i]);
		if (status == 0)
			status = batch_finish(&run);
		if (run.mode == MODE_FILES && status == 0)
			print_summary(&run);
		run.unreadable += run.walked.unreadable;
		break;
	}
	if (status == 0 && run.unreadable > 0)
		status = fail(EX_NOINPUT, "5.3.0", "%zu input file(s) could not be read", run.unreadable);
	store_close(run.store);
	mime_shutdown();
	config_free(&run.cfg);
	if (fflush(stdout) != 0 && status == 0)
		status = fail(EX_TEMPFAIL, "4.3.0", "writing to standard output failed");
	return status;

config_failed:
	free(overrides);
	if (run.mode == MODE_DELIVER && cgi_active()) {
		config_free(&run.cfg);
		return cgi_fail(500, e.msg);
	}
	status = run.mode == MODE_DELIVER ? EX_TEMPFAIL : EX_CONFIG;
	config_free(&run.cfg);
	return fail(status, dsn_for(status), "%s", e.msg);
}
