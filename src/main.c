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

#include "config.h"
#include "ingest.h"
#include "log.h"
#include "mime.h"
#include "store.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/tlsrpt-ingest.conf"

enum mode { MODE_DELIVER, MODE_FILES, MODE_DRY_RUN, MODE_INIT_DB, MODE_CHECK };

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

static void
setup_signals(unsigned deadline)
{
	struct sigaction sa;

	snprintf(deadline_line, sizeof deadline_line,
		 "4.3.0 tlsrpt-ingest: deadline of %u s reached, nothing stored\n", deadline);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* The one status line the MTA reads, then the exit. */
static int __attribute__((format(printf, 3, 4)))
fail(int status, const char *dsn, const char *fmt, ...)
{
	char msg[700];
	va_list ap;

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

/* Reads all of fd, keeping at most cap + 1 bytes; *total counts everything. */
static int
read_input(int fd, size_t cap, struct buf *b, size_t *total)
{
	unsigned char scratch[65536];

	*total = 0;
	for (;;) {
		size_t room = b->len <= cap ? cap + 1 - b->len : 0;
		size_t want = room > sizeof scratch ? sizeof scratch : room;
		ssize_t n;

		if (want > 0) {
			buf_reserve(b, want);
			n = read(fd, b->data + b->len, want);
		} else
			n = read(fd, scratch, sizeof scratch); /* drain, so the writer is not cut off */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (want > 0)
			b->len += (size_t)n;
		*total += (size_t)n;
	}
	buf_cstr(b);
	return 0;
}

struct run {
	enum mode mode;
	struct config cfg;
	struct store *store;
	const char *grant_role;
	size_t inputs, reports_new, reports_dup, rejected, unreadable;
};

static void
log_outcome(const struct delivery *d, const struct store_result *res, long long ms)
{
	struct buf line = {0};
	const char *outcome = d->n_reports == 0 ? "rejected" : res->reports_new > 0 ? "stored" : "duplicate";

	buf_printf(&line, "%s: source=%s message-id=<%s>", outcome, d->source,
		   d->message_id ? d->message_id : "");
	for (size_t i = 0; i < d->n_reports; i++) {
		const struct report *r = d->reports[i].report;
		const char *domain = r->n_policies ? r->policies[0].policy_domain : NULL;

		buf_printf(&line, " org=\"%s\" report-id=\"%s\" domain=%s",
			   r->organization_name ? r->organization_name : "",
			   r->report_id ? r->report_id : "", domain ? domain : "-");
	}
	buf_printf(&line, " reports=%zu new=%zu duplicate=%zu policies=%zu failures=%zu", d->n_reports,
		   res->reports_new, res->reports_duplicate, delivery_policies(d), delivery_failures(d));
	for (size_t i = 0; i < d->n_rejections; i++)
		buf_printf(&line, " rejected=\"%s\"", d->rejections[i].reason);
	if (res->rejected_duplicate)
		buf_printf(&line, " rejected-already-kept=%zu", res->rejected_duplicate);
	buf_printf(&line, " time=%lldms", ms);
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

/* One input: read, split, store. Returns an exit status, 0 to go on. */
static int
run_one(struct run *run, const char *name)
{
	struct buf in = {0};
	struct delivery *d = NULL;
	struct store_result res = {0};
	struct error e = {ERR_NONE, ""};
	long long t0 = now_ms();
	size_t total;
	int fd = STDIN_FILENO, status = 0;
	const char *source = strcmp(name, "-") == 0 ? "stdin" : name;

	alarm(run->cfg.deadline);
	if (strcmp(name, "-") != 0 && (fd = open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		log_error("cannot read %s: %s", name, strerror(errno));
		run->unreadable++;
		return 0;
	}
	if (read_input(fd, run->cfg.limits.max_message_size, &in, &total) < 0) {
		int err = errno;

		if (fd != STDIN_FILENO)
			close(fd);
		buf_free(&in);
		if (run->mode == MODE_DELIVER)
			return fail(EX_TEMPFAIL, "4.3.0", "reading the message: %s", strerror(err));
		log_error("cannot read %s: %s", name, strerror(err));
		run->unreadable++;
		return 0;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	run->inputs++;
	if (total > run->cfg.limits.max_message_size) {
		log_warn("%s: %zu bytes, over max_message_size (%zu)", source, total,
			 run->cfg.limits.max_message_size);
		ingest_oversized(in.data, in.len, total, source, &run->cfg.limits, &d);
	} else if (ingest_bytes(in.data, in.len, source, &run->cfg.limits, &d, &e) < 0) {
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
	if (store_delivery(run->store, d, run->mode == MODE_DELIVER ? CHANNEL_MAIL : CHANNEL_FILE, &res, &e) < 0) {
		int st = status_for(&e, run->mode);

		log_info("deferred: source=%s message-id=<%s> reason=\"%s\"", source,
			 d->message_id ? d->message_id : "", e.msg);
		if (run->mode == MODE_FILES)
			status = fail(st, dsn_for(st), "%s: %s; stopped after %zu of the inputs were stored",
				      source, e.msg, run->inputs - 1);
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
	buf_free(&in);
	return status;
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
		{NULL, 0, NULL, 0},
	};
	struct run run;
	struct error e = {ERR_NONE, ""};
	const char *config_path = NULL, *database = NULL;
	char **overrides;
	size_t n_overrides = 0;
	bool verbose = false, init_db = false, dry_run = false, check = false;
	int opt, status = 0;

	memset(&run, 0, sizeof run);
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
	run.mode = init_db ? MODE_INIT_DB : check ? MODE_CHECK : dry_run ? MODE_DRY_RUN
		 : optind < argc ? MODE_FILES : MODE_DELIVER;

	log_open("tlsrpt-ingest", verbose || (run.mode != MODE_DELIVER && isatty(STDERR_FILENO)), verbose);
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
	}
	free(overrides);
	overrides = NULL;
	if (database != NULL)
		config_set(&run.cfg, "database", database, &e);

	setup_signals(run.cfg.deadline);
	mime_init();
	switch (run.mode) {
	case MODE_INIT_DB:
		status = do_init_db(&run);
		break;
	case MODE_CHECK:
		status = do_check(&run);
		break;
	case MODE_DRY_RUN:
		if (optind == argc)
			status = run_one(&run, "-");
		for (int i = optind; i < argc && status == 0; i++)
			status = run_one(&run, argv[i]);
		break;
	case MODE_DELIVER:
	case MODE_FILES:
		if ((status = open_store(&run)) != 0)
			break;
		if (run.mode == MODE_DELIVER)
			status = run_one(&run, "-");
		for (int i = optind; i < argc && status == 0; i++)
			status = run_one(&run, argv[i]);
		if (run.mode == MODE_FILES && status == 0)
			log_info("done: %zu inputs, %zu reports stored, %zu already stored, %zu rejected, %zu unreadable",
				 run.inputs, run.reports_new, run.reports_dup, run.rejected, run.unreadable);
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
	status = run.mode == MODE_DELIVER ? EX_TEMPFAIL : EX_CONFIG;
	config_free(&run.cfg);
	return fail(status, dsn_for(status), "%s", e.msg);
}
