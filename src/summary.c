/* summary.c - tlsrpt-ingest --summary: per policy domain, the sessions, the
 * failure rate, the top result types with the MX hosts concerned, and what
 * usually fixes each, in 80 columns. Read-only, one snapshot; every value
 * reaches the server as a parameter. */
#include "autoconf.h"

#include <glib.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "summary.h"
#include "util.h"

#define WIDTH 80
#define TOP_RESULT_TYPES 5
#define NO_DOMAIN "(no policy domain)"

/* ---- advice ---- */

static const struct {
	const char *result_type;
	const char *advice;
} advice_table[] = {
	/* RFC 8460 section 4.3.1, negotiation failures */
	{"starttls-not-supported", "enable STARTTLS on that MX (certificate and key loaded, port 25)"},
	{"certificate-host-mismatch", "put the MX host name in the certificate's subjectAltName "
				      "(or fix the MX record / the policy's mx: lines)"},
	{"certificate-expired", "renew the certificate on that MX and reload the MTA"},
	{"certificate-not-trusted", "serve a certificate from a public CA with its full chain "
				    "(intermediates included)"},
	{"validation-failure", "check the certificate chain and the policy against that MX; "
			       "see failure_reason_code"},
	/* 4.3.2, MTA-STS */
	{"sts-policy-fetch-error", "serve https://mta-sts.<domain>/.well-known/mta-sts.txt "
				   "(DNS, web server, HTTP 200)"},
	{"sts-policy-invalid", "fix the syntax of https://mta-sts.<domain>/.well-known/mta-sts.txt: "
			       "version, mode, mx and max_age lines"},
	{"sts-webpki-invalid", "give the web server of mta-sts.<domain> a valid, trusted certificate"},
	/* 4.3.3, DANE */
	{"tlsa-invalid", "fix the TLSA record: usage, selector, matching type and data must "
			 "match the certificate"},
	{"dnssec-invalid", "fix the zone's DNSSEC: expired signatures, or a DS record that does "
			   "not match"},
	{"dane-required", "the sender requires DANE: publish TLSA records in a DNSSEC-signed zone"},
	{"unknown", "see additional_information and failure_reason_code in tlsrpt.failure"},
};

const char *
summary_advice(const char *result_type)
{
	for (size_t i = 0; i < sizeof advice_table / sizeof advice_table[0]; i++)
		if (result_type && strcmp(result_type, advice_table[i].result_type) == 0)
			return advice_table[i].advice;
	return NULL;
}

/* The advice with "<domain>" replaced by the policy domain (left as it is
 * without one), appended to b. */
static void
advice_for(struct buf *b, const char *advice, const char *domain)
{
	const char *p;

	while (domain != NULL && (p = strstr(advice, "<domain>")) != NULL) {
		buf_append(b, advice, (size_t)(p - advice));
		buf_puts(b, domain);
		advice = p + strlen("<domain>");
	}
	buf_puts(b, advice);
}

/* ---- output ---- */

/* text after prefix, wrapped at spaces to WIDTH columns; continuation lines
 * start with cont. A word longer than the line is cut. */
static void
put_wrapped(FILE *out, const char *prefix, const char *cont, const char *text)
{
	const char *lead = prefix;

	while (*text == ' ')
		text++;
	do {
		size_t room = WIDTH - strlen(lead), n = strlen(text), cut;

		if (n <= room) {
			cut = n;
		} else {
			cut = room;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = room;
		}
		while (cut > 0 && text[cut - 1] == ' ')
			cut--;
		fputs(lead, out);
		for (size_t i = 0, j; i < cut; i = j) { /* names from reports: no terminal escapes */
			for (j = i; j < cut && (unsigned char)text[j] >= 0x20 && text[j] != 0x7f; j++)
				;
			fwrite(text + i, 1, j - i, out);
			if (j < cut) {
				fputc('?', out);
				j++;
			}
		}
		fputc('\n', out);
		text += cut;
		while (*text == ' ')
			text++;
		lead = cont;
	} while (*text);
}

static long long
ll(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Sums of session counts: numeric in SQL (a sum of bigints never overflows
 * there), long double here (exact to 2^64, far past what bounded counts sum to). */
static long double
sum_of(const PGresult *res, int row, int col)
{
	return strtold(PQgetvalue(res, row, col), NULL);
}

static void
print_rate(struct buf *b, long double sessions, long double failed)
{
	if (sessions <= 0)
		buf_printf(b, "no sessions");
	else
		buf_printf(b, "%.0Lf sessions, %.0Lf failed (%.1f %%)", sessions, failed,
			   (double)(100.0L * failed / sessions));
}

static void
print_domain(FILE *out, const PGresult *dom, int d, const PGresult *types, GHashTable *first)
{
	const char *name = PQgetvalue(dom, d, 0);
	long double ok = sum_of(dom, d, 1), failed = sum_of(dom, d, 2), more_sessions = 0;
	long long reports = ll(dom, d, 3), n_reporters = ll(dom, d, 5);
	struct buf line = {0};
	int shown = 0, more = 0;

	fputc('\n', out);
	put_wrapped(out, "", "  ", name);
	print_rate(&line, ok + failed, failed);
	buf_printf(&line, "; %lld report%s from %lld reporter%s", reports, reports == 1 ? "" : "s",
		   n_reporters, n_reporters == 1 ? "" : "s");
	put_wrapped(out, "  ", "  ", buf_cstr(&line));
	if (*PQgetvalue(dom, d, 4))
		put_wrapped(out, "  reporters: ", "    ", PQgetvalue(dom, d, 4));
	/* the domain's rows are together (ordered by domain first): from its first on */
	gpointer at = g_hash_table_lookup(first, name);

	for (int t = at ? GPOINTER_TO_INT(at) - 1 : PQntuples(types); t < PQntuples(types); t++) {
		const char *rt = PQgetvalue(types, t, 1), *advice;

		if (strcmp(PQgetvalue(types, t, 0), name) != 0)
			break;
		if (shown == TOP_RESULT_TYPES) {
			more++;
			more_sessions += sum_of(types, t, 2);
			continue;
		}
		shown++;
		line.len = 0;
		buf_printf(&line, "%s: %s failed session%s", rt, PQgetvalue(types, t, 2),
			   strcmp(PQgetvalue(types, t, 2), "1") == 0 ? "" : "s");
		put_wrapped(out, "  ", "    ", buf_cstr(&line));
		put_wrapped(out, "    MX: ", "        ", PQgetvalue(types, t, 3));
		if (strcmp(PQgetvalue(types, t, 4), "0") != 0) {
			line.len = 0;
			buf_printf(&line, "%s of them under a stale MTA-STS policy: %s", PQgetvalue(types, t, 4),
				   PQgetvalue(types, t, 5));
			put_wrapped(out, "    stale: ", "           ", buf_cstr(&line));
		}
		advice = summary_advice(rt);
		line.len = 0;
		advice_for(&line, advice ? advice : "not a result type of RFC 8460; see tlsrpt.failure",
			   strcmp(name, NO_DOMAIN) == 0 ? NULL : name);
		put_wrapped(out, "    fix: ", "         ", buf_cstr(&line));
	}
	if (more > 0) {
		line.len = 0;
		buf_printf(&line, "and %d more result type%s (%.0Lf failed sessions)", more, more == 1 ? "" : "s",
			   more_sessions);
		put_wrapped(out, "  ", "    ", buf_cstr(&line));
	}
	if (shown == 0)
		put_wrapped(out, "  ", "    ", failed > 0 ? "no failure details reported" : "no failures");
	buf_free(&line);
}

/* ---- the queries ---- */

static const char sql_window[] =
	"SELECT to_char((now() - make_interval(days => $1::integer)) AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD HH24:MI')";

/* Sessions counted once per report and policy domain (tlsrpt.report_domain),
 * failure rows repeated under another policy of the report once
 * (failure_detail.counted_sessions); doc/views.md, "Counting". The sums of
 * report_domain since the start of the period come from
 * tlsrpt.domain_totals_since (migration 11: rolled up per day). */
static const char sql_domains[] =
	"SELECT coalesce(d.policy_domain, '" NO_DOMAIN "'),"
	" d.successful, d.failed, d.reports,"
	" array_to_string(d.reporter_names, ', '),"
	" cardinality(d.reporter_names)"
	" FROM tlsrpt.domain_totals_since(now() - make_interval(days => $1::integer)) d"
	" WHERE ($2::text IS NULL OR lower(d.policy_domain) = lower($2::text))"
	" ORDER BY 3 DESC, 2 DESC, 1";

/* Per domain and result type: the failed sessions, the MX hosts, and how
 * many of them came from reports that applied a stale MTA-STS policy for the
 * domain (tlsrpt.sts_policy_version: replaced longer ago than its max_age, or
 * not the published one), with what that policy was. The failure rows are
 * failure_detail's, read from the rollup (tlsrpt.failure_row; the coalesce,
 * implied by the date_end condition, is its index). Only the policies of the
 * failing reports of a domain that has a version stale by the report's day
 * are parsed (187 of 2,373 at a million reports, with drift): the versions
 * are computed once, and sts_drift()'s per-reporter days are not read (its
 * plan alone, in the new session each --summary is, took 27 ms). */
static const char sql_types[] =
	"WITH v AS ("
	" SELECT v.policy_domain, v.mode, v.max_age, v.mx, v.replaced_at, v.stale_after,"
	" EXISTS (SELECT FROM tlsrpt.published_sts_policy o"
	" WHERE o.policy_domain IS NULL OR o.policy_domain = v.policy_domain) AS not_published"
	" FROM tlsrpt.sts_policy_version v"
	" WHERE v.stale_after IS NOT NULL"
	" AND ($2::text IS NULL OR lower(v.policy_domain) = lower($2::text))),"
	" f AS ("
	" SELECT f.report, f.policy_domain, f.day_start, f.organization_name, f.result_type,"
	" f.receiving_mx_hostname, f.receiving_ip, f.counted_sessions"
	" FROM tlsrpt.failure_row f"
	" WHERE f.date_end > now() - make_interval(days => $1::integer)"
	" AND coalesce(f.date_end, f.received_at) > now() - make_interval(days => $1::integer)"
	" AND ($2::text IS NULL OR lower(f.policy_domain) = lower($2::text))),"
	" s AS ("
	" SELECT p.report, p.policy_domain,"
	" string_agg(DISTINCT format('mode %s, max_age %s, %s', coalesce(v.mode, '?'),"
	" coalesce(v.max_age::text, '?'),"
	" CASE WHEN v.not_published THEN 'not the published policy'"
	" ELSE 'replaced on ' || to_char(v.replaced_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') END), '; ') AS what"
	" FROM (SELECT DISTINCT f.report, f.policy_domain, f.day_start FROM f"
	" WHERE EXISTS (SELECT FROM v WHERE v.policy_domain = f.policy_domain AND v.stale_after <= f.day_start)) fr"
	" JOIN tlsrpt.policy p ON p.report = fr.report AND p.policy_domain = fr.policy_domain"
	" CROSS JOIN LATERAL tlsrpt.sts_parse(p.policy_string) x"
	" JOIN v ON v.policy_domain = p.policy_domain AND v.mode IS NOT DISTINCT FROM x.mode"
	" AND v.max_age IS NOT DISTINCT FROM x.max_age"
	" AND v.mx = (SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}') FROM unnest(x.mx) AS m)"
	" WHERE lower(p.policy_type) = 'sts' AND fr.day_start >= v.stale_after"
	" GROUP BY p.report, p.policy_domain),"
	" m AS ("
	" SELECT coalesce(f.policy_domain, '" NO_DOMAIN "') AS domain,"
	" coalesce(f.result_type, '(none)') AS result_type,"
	" coalesce(f.receiving_mx_hostname, host(f.receiving_ip), '(unknown MX)') AS mx,"
	" sum(f.counted_sessions) AS n,"
	" coalesce(sum(f.counted_sessions) FILTER (WHERE s.report IS NOT NULL), 0) AS stale,"
	" array_agg(DISTINCT s.what) FILTER (WHERE s.what IS NOT NULL) AS what"
	" FROM f LEFT JOIN s ON s.report = f.report AND s.policy_domain = f.policy_domain"
	" GROUP BY 1, 2, 3)"
	" SELECT domain, result_type, sum(n),"
	" string_agg(mx || ' (' || n || ')', ', ' ORDER BY n DESC, mx),"
	" sum(stale),"
	" CASE WHEN sum(stale) > 0 THEN"
	" coalesce(array_to_string(ARRAY(SELECT DISTINCT w FROM unnest(tlsrpt.array_concat(what)) AS w ORDER BY w),"
	" '; '), '') ELSE '' END"
	" FROM m GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2";

static PGresult *
query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what,
      struct error *e)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	pgconn_failed(conn, res, what, e);
	PQclear(res);
	return NULL;
}

int
summary_print(const struct config *cfg, unsigned days, const char *domain, bool authenticated_only,
	      FILE *out, struct error *e)
{
	PGresult *win = NULL, *dom = NULL, *types = NULL, *res;
	PGconn *conn;
	char dtext[16];
	const char *params[2] = {dtext, domain};
	const char *scope[1] = {authenticated_only ? "on" : "off"};
	struct buf head = {0};
	GHashTable *first = NULL;
	int rc = -1;

	if ((conn = pgconn_open(cfg, e)) == NULL)
		return -1;
	snprintf(dtext, sizeof dtext, "%u", days);
	if (pgconn_begin(conn, cfg, "ISOLATION LEVEL REPEATABLE READ READ ONLY", e) < 0)
		goto out;
	/* the views' scope (scoped_report), for this transaction only */
	if ((res = query(conn, "SELECT set_config('tlsrpt.authenticated_only', $1, true)", 1, scope,
			 "summary scope", e)) == NULL)
		goto out;
	PQclear(res);
	if ((win = query(conn, sql_window, 1, params, "summary", e)) == NULL ||
	    (dom = query(conn, sql_domains, 2, params, "summary of the domains", e)) == NULL ||
	    (types = query(conn, sql_types, 2, params, "summary of the result types", e)) == NULL)
		goto out;

	buf_printf(&head, "TLS-RPT summary, last %u day%s: reports ending after %s UTC", days,
		   days == 1 ? "" : "s", PQgetvalue(win, 0, 0));
	put_wrapped(out, "", "  ", buf_cstr(&head));
	if (domain != NULL)
		put_wrapped(out, "policy domain: ", "  ", domain);
	if (authenticated_only)
		put_wrapped(out, "", "  ", "only reports with an aligned DKIM pass");
	if (PQntuples(dom) == 0)
		fputs("\nno reports in that period\n", out);
	/* each domain's first row of types (a domain of thousands is not a scan of them all) */
	first = g_hash_table_new(g_str_hash, g_str_equal);
	for (int t = PQntuples(types) - 1; t >= 0; t--)
		g_hash_table_insert(first, PQgetvalue(types, t, 0), GINT_TO_POINTER(t + 1));
	for (int d = 0; d < PQntuples(dom); d++)
		print_domain(out, dom, d, types, first);
	rc = 0;
out:
	if (first != NULL)
		g_hash_table_destroy(first);
	buf_free(&head);
	PQclear(win);
	PQclear(dom);
	PQclear(types);
	PQfinish(conn);
	return rc;
}
