/* metrics.c - tlsrpt-ingest --metrics: Prometheus' text exposition format
 * (version 0.0.4), every family a gauge read from the views (which compute
 * what tlsrpt.refresh() has not rolled up yet, so no refresh is needed), all
 * in one read-only snapshot, written only once every query has answered. A
 * "day" is the views' (doc/views.md): the UTC date a report's period starts;
 * the last complete day is yesterday, UTC. */
#include "autoconf.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "pgconn.h"
#include "util.h"

#define METRICS_DAY "((now() AT TIME ZONE 'UTC')::date - 1)"

/* One family: its query gives one row per sample, the label values (NULL:
 * "") in the order of labels, then the value. */
static const struct metrics_family {
	const char *name;
	const char *help;
	const char *labels[3];
	const char *sql;
} metrics_families[] = {
	{"tlsrpt_last_complete_day_timestamp_seconds",
	 "Start (UTC midnight) of the last complete day, the day of the tlsrpt_daily_* figures.",
	 {NULL},
	 "SELECT extract(epoch FROM " METRICS_DAY "::timestamp AT TIME ZONE 'UTC')::bigint::text"},
	{"tlsrpt_daily_sessions",
	 "Sessions of the last complete day per policy domain, counted once per report (tlsrpt.daily_domain).",
	 {"policy_domain", "host_report"},
	 "SELECT policy_domain, host_report::text, sessions::text FROM tlsrpt.daily_domain"
	 " WHERE day = " METRICS_DAY " ORDER BY 1, 2"},
	{"tlsrpt_daily_failed_sessions",
	 "Failed sessions of the last complete day per policy domain (tlsrpt.daily_domain).",
	 {"policy_domain", "host_report"},
	 "SELECT policy_domain, host_report::text, failed::text FROM tlsrpt.daily_domain"
	 " WHERE day = " METRICS_DAY " ORDER BY 1, 2"},
	{"tlsrpt_daily_result_type_failed_sessions",
	 "Failed sessions of the last complete day per policy domain and result type (tlsrpt.failure_daily).",
	 {"policy_domain", "result_type", "host_report"},
	 "SELECT policy_domain, result_type, host_report::text, sum(failed_sessions)::text FROM tlsrpt.failure_daily"
	 " WHERE day = " METRICS_DAY " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"},
	{"tlsrpt_reporter_reports",
	 "Reports stored per reporter: organization and policy domain (tlsrpt.latest_report).",
	 {"organization", "policy_domain"},
	 "SELECT organization_name, policy_domain, reports::text FROM tlsrpt.latest_report ORDER BY 1, 2"},
	{"tlsrpt_reporter_last_report_age_seconds",
	 "Seconds since the period of the reporter's latest report ended (tlsrpt.latest_report.silent_for).",
	 {"organization", "policy_domain"},
	 "SELECT organization_name, policy_domain, round(extract(epoch FROM silent_for))::text"
	 " FROM tlsrpt.latest_report ORDER BY 1, 2"},
	{"tlsrpt_rejected_rows",
	 "Rows in tlsrpt.rejected; truncated: the raw copy was cut, --reprocess cannot retry it.",
	 {"truncated"},
	 "SELECT t::text, count(r.id)::text FROM unnest(ARRAY[false, true]) t"
	 " LEFT JOIN tlsrpt.rejected r ON r.raw_truncated = t GROUP BY t ORDER BY t"},
	{"tlsrpt_alerts",
	 "Alerts of tlsrpt.alerts() with its defaults, by severity.",
	 {"severity"},
	 "SELECT s, count(a.severity)::text FROM unnest(ARRAY['critical', 'warning']) s"
	 " LEFT JOIN tlsrpt.alerts() a ON lower(a.severity) = s GROUP BY s ORDER BY s"},
};

#define METRICS_N (sizeof metrics_families / sizeof metrics_families[0])

void
metrics_label_value(struct buf *b, const char *s)
{
	char *clean = text_clean(s ? s : "", s ? strlen(s) : 0, NULL);

	for (const char *p = clean; *p; p++) {
		if (*p == '\\' || *p == '"')
			buf_append(b, "\\", 1);
		if (*p == '\n')
			buf_puts(b, "\\n");
		else
			buf_append(b, p, 1);
	}
	free(clean);
}

static void
metrics_family_text(struct buf *b, const struct metrics_family *f, const PGresult *res)
{
	int nlabels = 0;

	while (nlabels < 3 && f->labels[nlabels] != NULL)
		nlabels++;
	buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", f->name, f->help, f->name);
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, nlabels))
			continue;
		buf_puts(b, f->name);
		for (int l = 0; l < nlabels; l++) {
			buf_printf(b, "%s%s=\"", l == 0 ? "{" : ",", f->labels[l]);
			metrics_label_value(b, PQgetisnull(res, i, l) ? NULL : PQgetvalue(res, i, l));
			buf_puts(b, "\"");
		}
		buf_printf(b, "%s %s\n", nlabels ? "}" : "", PQgetvalue(res, i, nlabels));
	}
}

int
metrics_print(const struct config *cfg, FILE *out, struct error *e)
{
	struct buf text = {0};
	PGconn *conn;
	int rc = -1;

	if ((conn = pgconn_open(cfg, e)) == NULL)
		return -1;
	if (pgconn_begin(conn, cfg, "ISOLATION LEVEL REPEATABLE READ READ ONLY", e) < 0)
		goto out;
	for (size_t i = 0; i < METRICS_N; i++) {
		PGresult *res = PQexec(conn, metrics_families[i].sql);

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			pgconn_failed(conn, res, metrics_families[i].name, e);
			PQclear(res);
			goto out;
		}
		metrics_family_text(&text, &metrics_families[i], res);
		PQclear(res);
	}
	fwrite(text.data, 1, text.len, out);
	rc = 0;
out:
	buf_free(&text);
	PQfinish(conn);
	return rc;
}
