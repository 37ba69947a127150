/* main.c - tlsrpt-ingest: the options, the mode they choose, the dispatch.
 * With no FILE: one message on standard input (an MTA's delivery, deliver.c)
 * or, run by a web server, one HTTPS POST (cgi.c); with FILE arguments a
 * backfill (backfill.c); or one of the commands. What a failure becomes (the
 * exit status the MTA acts on, 0 only after COMMIT) is exits.c's. */
#include "autoconf.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfill.h"
#include "cgi.h"
#include "config.h"
#include "deliver.h"
#include "exits.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "purge.h"
#include "reprocess.h"
#include "schema.h"
#include "summary.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/tlsrpt-ingest.conf"

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
	"      --init-db            create or upgrade schema tlsrpt, store the policy\n"
	"                           file of published_sts_policy (if set), then exit\n"
	"      --partitioned        with --init-db on an empty database: report,\n"
	"                           policy and failure partitioned by month (their\n"
	"                           end), old months dropped whole by the purge\n"
	"      --grant=ROLE         with --init-db: let ROLE insert and select in\n"
	"                           schema tlsrpt, and nothing more\n"
	"      --grant-reader=ROLE  with --init-db: let ROLE (Grafana, an analyst) read\n"
	"                           schema tlsrpt's tables and views, except the raw\n"
	"                           bytes of rejected mail, and run its alert functions,\n"
	"                           now and after upgrades; nothing more\n"
	"      --dry-run            print the normalized reports as JSON lines;\n"
	"                           touch no database\n"
	"  -n, --check              check the configuration and the database, then exit\n"
	"      --summary            per policy domain: sessions, failure rate, the top\n"
	"                           result types with their MX hosts and what fixes them,\n"
	"                           and the failures under a stale MTA-STS policy\n"
	"      --days=N             with --summary: the last N days (default 7)\n"
	"      --domain=DOMAIN      with --summary: only that policy domain\n"
	"      --authenticated      with --summary: only reports with an aligned DKIM pass\n"
	"      --purge-older-than=DAYS  delete reports that ended (and rejected mail\n"
	"                           received) more than DAYS days ago, in batches\n"
	"      --reprocess          run the raw copies kept in tlsrpt.rejected through\n"
	"                           this program again: a row that now gives reports\n"
	"                           is stored and deleted, the rest keeps the new\n"
	"                           reason; truncated copies are listed, not retried\n"
	"      --since=DATE         with --reprocess: only rows received on or after\n"
	"                           DATE (YYYY-MM-DD, UTC)\n"
	"      --reason=TEXT        with --reprocess: only rows whose reason contains\n"
	"                           TEXT (case-insensitive)\n"
	"      --metrics            print metrics in Prometheus' text format (for\n"
	"                           node_exporter's textfile collector)\n"
	"  -v, --verbose            log to standard error as well as to syslog\n"
	"  -h, --help               show this help, then exit\n"
	"  -V, --version            show the version, then exit\n"
	"\n"
	"Exit status: 0 stored, already stored, or kept in tlsrpt.rejected;\n"
	"75 temporary failure (the MTA keeps the message and retries); 64 bad usage;\n"
	"66 an input file could not be read; 78 configuration error (interactive).\n"
	"On failure one line on standard error starts with an enhanced status code.\n";

/* What the command line asked for. */
struct main_options {
	const char *config_path, *database;
	char **overrides;
	size_t n_overrides;
	unsigned modes;     /* bits: the mode options given (1 << enum main_mode) */
	unsigned modifiers; /* bits: the options that go with one mode only (enum main_modifier) */
	bool verbose;
	const char *grant_role;  /* --grant */
	const char *grant_reader_role; /* --grant-reader */
	bool partitioned;              /* --partitioned */
	const char *domain;      /* --summary --domain */
	bool authenticated_only; /* --summary --authenticated */
	unsigned days;           /* --summary --days, 0: the default */
	unsigned purge_days;     /* --purge-older-than */
	const char *since;       /* --reprocess --since */
	const char *reason;      /* --reprocess --reason */
	char **files;
	size_t n_files;
	struct config cfg;
};

enum main_mode { MAIN_DELIVER, MAIN_CGI, MAIN_FILES, MAIN_DRY_RUN, MAIN_INIT_DB, MAIN_CHECK, MAIN_SUMMARY,
		 MAIN_PURGE, MAIN_REPROCESS, MAIN_METRICS, MAIN_N_MODES };
enum main_modifier { MAIN_GRANT = 1 << 0, MAIN_SUMMARY_SCOPE = 1 << 1, MAIN_REPROCESS_SCOPE = 1 << 2 };

static int main_deliver(struct main_options *o);
static int main_cgi(struct main_options *o);
static int main_files(struct main_options *o);
static int main_init_db(struct main_options *o);
static int main_check(struct main_options *o);
static int main_summary(struct main_options *o);
static int main_purge(struct main_options *o);
static int main_reprocess(struct main_options *o);
static int main_metrics(struct main_options *o);

/* The modes. Those with an option go alone: two of them, FILE arguments
 * where files is false, or a modifier without its mode are a usage error,
 * told with the rule of the group that covers them (the lowest group of all
 * the conflicts; two modes of different groups conflict in the higher one). */
static const struct main_mode_info {
	const char *option;    /* NULL: chosen without one */
	unsigned group;        /* 0 to 2: main_rules[group] tells the rule */
	bool files;            /* FILE arguments allowed */
	unsigned modifiers;    /* the modifiers that go with it */
	enum exits_mode exits;
	int (*run)(struct main_options *o);
} main_modes[MAIN_N_MODES] = {
	[MAIN_DELIVER] = {NULL, 0, false, 0, EXITS_DELIVERY, main_deliver},
	[MAIN_CGI] = {NULL, 0, false, 0, EXITS_CGI, main_cgi},
	[MAIN_FILES] = {NULL, 0, true, 0, EXITS_FILES, main_files},
	[MAIN_DRY_RUN] = {"--dry-run", 0, true, 0, EXITS_COMMAND, main_files},
	[MAIN_INIT_DB] = {"--init-db", 0, false, MAIN_GRANT, EXITS_COMMAND, main_init_db},
	[MAIN_CHECK] = {"-n", 0, false, 0, EXITS_COMMAND, main_check},
	[MAIN_SUMMARY] = {"--summary", 1, false, MAIN_SUMMARY_SCOPE, EXITS_COMMAND, main_summary},
	[MAIN_PURGE] = {"--purge-older-than", 1, false, 0, EXITS_COMMAND, main_purge},
	[MAIN_REPROCESS] = {"--reprocess", 2, false, MAIN_REPROCESS_SCOPE, EXITS_FILES, main_reprocess},
	[MAIN_METRICS] = {"--metrics", 2, false, 0, EXITS_COMMAND, main_metrics},
};

static const struct {
	unsigned modifier;
	unsigned group;
} main_modifier_groups[] = {{MAIN_GRANT, 0}, {MAIN_SUMMARY_SCOPE, 1}, {MAIN_REPROCESS_SCOPE, 2}};

static const char *const main_rules[] = {
	"--init-db, --dry-run and -n go alone; --partitioned, --grant and --grant-reader go with --init-db",
	"--summary and --purge-older-than go alone; --days, --domain and --authenticated go with --summary",
	"--reprocess and --metrics go alone; --since and --reason go with --reprocess",
};

/* The lowest group a conflict among the options falls in; -1: none. */
static int
main_conflict(const struct main_options *o)
{
	unsigned modifiers_ok = 0;
	int worst = -1;

#define MAIN_NOTE(g) (worst = (worst < 0 || (int)(g) < worst) ? (int)(g) : worst)
	for (int m = 0; m < MAIN_N_MODES; m++) {
		if (!(o->modes & (1u << m)))
			continue;
		modifiers_ok |= main_modes[m].modifiers;
		if (o->n_files > 0 && !main_modes[m].files)
			MAIN_NOTE(main_modes[m].group);
		for (int k = m + 1; k < MAIN_N_MODES; k++)
			if (o->modes & (1u << k))
				MAIN_NOTE(main_modes[k].group > main_modes[m].group ? main_modes[k].group
										    : main_modes[m].group);
	}
	for (size_t i = 0; i < sizeof main_modifier_groups / sizeof main_modifier_groups[0]; i++)
		if ((o->modifiers & main_modifier_groups[i].modifier) & ~modifiers_ok)
			MAIN_NOTE(main_modifier_groups[i].group);
#undef MAIN_NOTE
	return worst;
}

/* The mode the options chose (after main_conflict found none). */
static enum main_mode
main_mode_of(const struct main_options *o)
{
	for (int m = 0; m < MAIN_N_MODES; m++)
		if (main_modes[m].option != NULL && (o->modes & (1u << m)))
			return (enum main_mode)m;
	return o->n_files > 0 ? MAIN_FILES : cgi_active() ? MAIN_CGI : MAIN_DELIVER;
}

static bool
main_days(const char *arg, const char *what, unsigned *out)
{
	unsigned long long ull;

	if (!parse_uint(arg, 36500, &ull) || ull == 0) {
		exits_fail(ERR_USAGE, "%s wants 1 to 36500%s, not \"%s\"", what,
			   strcmp(what, "--days") == 0 ? "" : " days", arg);
		return false;
	}
	*out = (unsigned)ull;
	return true;
}

static const struct option main_longopts[] = {
	{"database", required_argument, NULL, 'd'},
	{"config", required_argument, NULL, 'c'},
	{"set", required_argument, NULL, 'o'},
	{"init-db", no_argument, NULL, 'I'},
	{"partitioned", no_argument, NULL, 'K'},
	{"grant", required_argument, NULL, 'G'},
	{"grant-reader", required_argument, NULL, 'R'},
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
	{"reprocess", no_argument, NULL, 'X'},
	{"since", required_argument, NULL, 'T'},
	{"reason", required_argument, NULL, 'W'},
	{"metrics", no_argument, NULL, 'M'},
	{NULL, 0, NULL, 0},
};

/* One option. 0 to go on, else 1 + the exit status (--help, --version, a usage error). */
static int
main_option(struct main_options *o, int opt, int argc, char **argv)
{
	switch (opt) {
	case 'd': o->database = optarg; break;
	case 'c': o->config_path = optarg; break;
	case 'o': o->overrides[o->n_overrides++] = optarg; break;
	case 'I': o->modes |= 1u << MAIN_INIT_DB; break;
	case 'K': o->partitioned = true; o->modifiers |= MAIN_GRANT; break;
	case 'G': o->grant_role = optarg; o->modifiers |= MAIN_GRANT; break;
	case 'R': o->grant_reader_role = optarg; o->modifiers |= MAIN_GRANT; break;
	case 'D': o->modes |= 1u << MAIN_DRY_RUN; break;
	case 'n': o->modes |= 1u << MAIN_CHECK; break;
	case 'S': o->modes |= 1u << MAIN_SUMMARY; break;
	case 'Y':
		o->modifiers |= MAIN_SUMMARY_SCOPE;
		return main_days(optarg, "--days", &o->days) ? 0 : 1 + exits_answer(ERR_USAGE)->status;
	case 'Z': o->domain = optarg; o->modifiers |= MAIN_SUMMARY_SCOPE; break;
	case 'A': o->authenticated_only = true; o->modifiers |= MAIN_SUMMARY_SCOPE; break;
	case 'P':
		o->modes |= 1u << MAIN_PURGE;
		return main_days(optarg, "--purge-older-than", &o->purge_days) ? 0 : 1 + exits_answer(ERR_USAGE)->status;
	case 'X': o->modes |= 1u << MAIN_REPROCESS; break;
	case 'T':
		o->since = optarg;
		o->modifiers |= MAIN_REPROCESS_SCOPE;
		if (reprocess_date_ok(optarg))
			break;
		return 1 + exits_fail(ERR_USAGE, "--since wants a date YYYY-MM-DD, not \"%s\"", optarg);
	case 'W': o->reason = optarg; o->modifiers |= MAIN_REPROCESS_SCOPE; break;
	case 'M': o->modes |= 1u << MAIN_METRICS; break;
	case 'v': o->verbose = true; break;
	case 'h': fputs(usage_text, stdout); return 1;
	case 'V': printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION); return 1;
	default:
		return 1 + exits_fail(ERR_USAGE, "bad option %s (see --help)",
				      optind > 1 && optind <= argc ? argv[optind - 1] : "");
	}
	return 0;
}

/* The options; 0 to go on, else 1 + the exit status. */
static int
main_parse(struct main_options *o, int argc, char **argv)
{
	int opt, done, conflict;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "d:c:o:nvhV", main_longopts, NULL)) != -1)
		if ((done = main_option(o, opt, argc, argv)) != 0)
			return done;
	o->files = argv + optind;
	o->n_files = (size_t)(argc - optind);
	if ((conflict = main_conflict(o)) >= 0)
		return 1 + exits_fail(ERR_USAGE, "%s", main_rules[conflict]);
	return 0;
}

/* The configuration: the file, then -o KEY=VALUE, then -d. A failure of it is
 * the administrator's to fix, whatever went wrong reading it. */
static int
main_configure(struct main_options *o, struct error *e)
{
	config_defaults(&o->cfg);
	if (config_load(&o->cfg, o->config_path ? o->config_path : DEFAULT_CONFIG, o->config_path != NULL, e) < 0)
		return (e->cls = ERR_CONFIG, -1);
	for (size_t i = 0; i < o->n_overrides; i++) {
		char *eq = strchr(o->overrides[i], '='), key[64];

		if (eq == NULL || (size_t)(eq - o->overrides[i]) >= sizeof key) {
			error_set(e, ERR_USAGE, "-o wants KEY=VALUE, not \"%s\"", o->overrides[i]);
			return -1;
		}
		memcpy(key, o->overrides[i], (size_t)(eq - o->overrides[i]));
		key[eq - o->overrides[i]] = '\0';
		if (config_set(&o->cfg, key, eq + 1, e) < 0)
			return (e->cls = ERR_CONFIG, -1);
		if (strcmp(key, "database") == 0)
			config_warn_password(eq + 1, "-o database=");
	}
	if (o->database != NULL) {
		config_set(&o->cfg, "database", o->database, e);
		config_warn_password(o->database, "-d");
	}
	return 0;
}

static int
main_deliver(struct main_options *o)
{
	return deliver_stdin(&o->cfg);
}

static int
main_cgi(struct main_options *o)
{
	return cgi_main(&o->cfg);
}

static int
main_files(struct main_options *o)
{
	return backfill_run(&o->cfg, o->files, o->n_files, (o->modes & (1u << MAIN_DRY_RUN)) != 0, o->verbose);
}

static int
main_init_db(struct main_options *o)
{
	return schema_command_init(&o->cfg, o->partitioned, o->grant_role, o->grant_reader_role);
}

static int
main_check(struct main_options *o)
{
	return schema_command_check(&o->cfg);
}

static int
main_summary(struct main_options *o)
{
	struct error e = {ERR_NONE, ""};

	alarm(o->cfg.deadline);
	if (summary_print(&o->cfg, o->days ? o->days : 7, o->domain, o->authenticated_only, stdout, &e) < 0)
		return exits_fail_error(&e);
	return 0;
}

/* No deadline: each batch is bounded by statement_timeout instead. */
static int
main_purge(struct main_options *o)
{
	struct error e = {ERR_NONE, ""};
	struct purge_result res;

	if (purge_older_than(&o->cfg, o->purge_days, PURGE_BATCH, &res, &e) < 0)
		return exits_fail(e.cls, "%s; purged so far: reports=%lld policies=%lld failures=%lld rejected=%lld",
				  e.msg, res.reports, res.policies, res.failures, res.rejected);
	printf("purged reports=%lld policies=%lld failures=%lld rejected=%lld (older than %u days: before %s)\n",
	       res.reports, res.policies, res.failures, res.rejected, o->purge_days, res.cutoff);
	return 0;
}

static int
main_reprocess(struct main_options *o)
{
	return reprocess_run(&o->cfg, o->since, o->reason, o->verbose);
}

static int
main_metrics(struct main_options *o)
{
	struct error e = {ERR_NONE, ""};

	alarm(o->cfg.deadline);
	if (metrics_print(&o->cfg, stdout, &e) < 0)
		return exits_fail_error(&e);
	return 0;
}

/* Configured and set up for mode: runs it. */
static int
main_run(struct main_options *o, enum main_mode mode)
{
	struct error e = {ERR_NONE, ""};
	int status;

	if (main_configure(o, &e) < 0)
		return mode == MAIN_CGI ? cgi_fail(&e) : exits_fail_error(&e);
	exits_signals(o->cfg.deadline);
	mime_quiet_glib(); /* GMime itself is set up at the first parse (mime_init) */
	status = main_modes[mode].run(o);
	mime_shutdown();
	if (fflush(stdout) != 0 && status == 0)
		status = exits_fail(ERR_TEMP, "writing to standard output failed");
	return status;
}

int
main(int argc, char **argv)
{
	struct main_options o;
	enum main_mode mode;
	int status;

	memset(&o, 0, sizeof o);
	exits_init(cgi_active() ? EXITS_CGI : EXITS_DELIVERY, backfill_progress_clear);
	if (cgi_active() && cgi_argv_from_query(argc)) {
		struct error e = {ERR_USAGE, "arguments from a query string are refused"};

		return cgi_fail(&e);
	}
	o.overrides = xcalloc((size_t)argc + 1, sizeof *o.overrides);
	if ((status = main_parse(&o, argc, argv)) != 0) {
		free(o.overrides);
		return status - 1;
	}
	mode = main_mode_of(&o);
	exits_init(main_modes[mode].exits, backfill_progress_clear);
	/* FILE runs on a terminal show a progress line and a summary instead of a line per message */
	log_open("tlsrpt-ingest", o.verbose || (main_modes[mode].exits == EXITS_COMMAND && isatty(STDERR_FILENO)),
		 o.verbose);
	status = main_run(&o, mode);
	free(o.overrides);
	config_free(&o.cfg);
	return status;
}
