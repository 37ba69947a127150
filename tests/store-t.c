/* store-t.c - store.c's statements and pipeline.c's engine against a real
 * PostgreSQL (tests/store-t.sh starts one and creates the schema): every
 * column of a report lands where the column table says, duplicates and
 * rejections, a refused report kept as rejected, the order and count of the
 * done calls, a stop handing every delivery back. */
#include "autoconf.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ingest.h"
#include "pipeline.h"
#include "store.h"
#include "util.h"

#include "tap.h"

static struct config cfg;
static PGconn *check; /* our own look at the database */

/* The first field of the first row of sql, "NULL" for NULL, "ERROR: ..." on failure. */
static char *
q(const char *sql)
{
	PGresult *r = PQexec(check, sql);
	char *v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		v = xasprintf("ERROR: %s", PQerrorMessage(check));
	else if (PQntuples(r) == 0 || PQnfields(r) == 0)
		v = xstrdup("");
	else
		v = xstrdup(PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static void
is_sql(const char *want, const char *sql, const char *name)
{
	char *got = q(sql);

	is_string(want, got, "%s", name);
	free(got);
}

static struct delivery *
json_delivery(const char *json)
{
	struct delivery *d = NULL;
	struct error e = {ERR_NONE, ""};

	if (ingest_bytes((const unsigned char *)json, strlen(json), "store-t", &cfg.limits, &d, &e) < 0)
		bail("ingest_bytes: %s", e.msg);
	return d;
}

/* n deliveries of an empty report each, report-ids PREFIX-0, PREFIX-1, ... */
static void
json_deliveries(const char *prefix, struct delivery **d, int n)
{
	for (int i = 0; i < n; i++) {
		char *json = xasprintf("{\"organization-name\": \"%s\", \"report-id\": \"%s-%d\", \"policies\": []}",
				       prefix, prefix, i);

		d[i] = json_delivery(json);
		free(json);
	}
}

static const char full_report[] =
	"{\"organization-name\": \"Org \\\"One\\\"\", \"contact-info\": \"tls@one.example\","
	" \"report-id\": \"store-t-1\","
	" \"date-range\": {\"start-datetime\": \"2024-05-01T00:00:00Z\", \"end-datetime\": \"2024-05-01T23:59:59Z\"},"
	" \"policies\": ["
	"  {\"policy\": {\"policy-type\": \"sts\", \"policy-domain\": \"a.example\","
	"    \"policy-string\": [\"version: STSv1\", \"mode: enforce\"], \"mx-host\": [\"mx1.a.example\", \"back\\\\slash\"]},"
	"   \"summary\": {\"total-successful-session-count\": 10, \"total-failure-session-count\": 3},"
	"   \"failure-details\": ["
	"    {\"result-type\": \"certificate-expired\", \"sending-mta-ip\": \"192.0.2.1\","
	"     \"receiving-mx-hostname\": \"mx1.a.example\", \"receiving-mx-helo\": \"helo.a.example\","
	"     \"receiving-ip\": \"2001:db8::1\", \"failed-session-count\": 2,"
	"     \"additional-information\": \"https://a.example/why\", \"failure-reason-code\": \"X509\"},"
	"    {\"result-type\": \"starttls-not-supported\", \"failed-session-count\": 1}]},"
	"  {\"policy\": {\"policy-type\": \"no-policy-found\", \"policy-domain\": \"b.example\"},"
	"   \"summary\": {\"total-successful-session-count\": 7, \"total-failure-session-count\": 0}}]}";

static void
test_report_columns(struct store *s)
{
	const struct store_via via = {STORE_CHANNEL_FILE, NULL};
	struct delivery *d = json_delivery(full_report);
	struct store_result res;
	struct error e = {ERR_NONE, ""};

	ok(pipeline_deliver_one(s, d, &via, &res, &e) == 0, "a delivery of one report is stored (%s)", e.msg);
	is_int(1, (long long)res.reports_new, "the result counts it as new");
	is_sql("Org \"One\"|tls@one.example|2024-05-01 00:00:00+00|2024-05-01 23:59:59+00|file",
	       "SELECT concat_ws('|', organization_name, contact_info, date_start, date_end, source)"
	       " FROM tlsrpt.report WHERE report_id = 'store-t-1'",
	       "the per-report columns hold the report's values, quotes and all");
	is_sql("sts|a.example|{\"version: STSv1\",\"mode: enforce\"}|{mx1.a.example,\"back\\\\slash\"}|10|3;"
	       "no-policy-found|b.example|NULL|NULL|7|0",
	       "SELECT string_agg(concat_ws('|', policy_type, policy_domain, coalesce(policy_string::text, 'NULL'),"
	       " coalesce(mx_host::text, 'NULL'), total_successful_session_count, total_failure_session_count), ';'"
	       " ORDER BY p.id) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report"
	       " WHERE r.report_id = 'store-t-1'",
	       "the policies, in order, their lists as arrays (escapes kept) and absent lists NULL");
	is_sql("a.example|certificate-expired|192.0.2.1|mx1.a.example|helo.a.example|2001:db8::1|2|"
	       "https://a.example/why|X509;a.example|starttls-not-supported|NULL|NULL|NULL|NULL|1|NULL|NULL",
	       "SELECT string_agg(concat_ws('|', p.policy_domain, result_type, coalesce(host(sending_mta_ip), 'NULL'),"
	       " coalesce(receiving_mx_hostname, 'NULL'), coalesce(receiving_mx_helo, 'NULL'),"
	       " coalesce(host(receiving_ip), 'NULL'), failed_session_count,"
	       " coalesce(additional_information, 'NULL'), coalesce(failure_reason_code, 'NULL')), ';' ORDER BY f.id)"
	       " FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report"
	       " WHERE r.report_id = 'store-t-1'",
	       "the failure rows belong to their own policy, missing values NULL");
	memset(&res, 0, sizeof res);
	ok(pipeline_deliver_one(s, d, &via, &res, &e) == 0, "the same report again: no error");
	is_int(1, (long long)res.reports_duplicate, "the same report again is counted as a duplicate");
	is_sql("1", "SELECT count(*) FROM tlsrpt.report WHERE report_id = 'store-t-1'",
	       "the same report again adds no row");
	delivery_free(d);
}

static void
test_rejection_sender(struct store *s)
{
	static const char body[] = "not a report at all";
	const struct store_via via = {STORE_CHANNEL_HTTPS, "198.51.100.7"};
	struct delivery *d = delivery_rejected((const unsigned char *)body, sizeof body - 1, sizeof body - 1, "https",
					       "store-t: refused", &cfg.limits);
	struct store_result res;
	struct error e = {ERR_NONE, ""};

	free(d->sender);
	d->sender = xstrdup("from-header@example.org");
	ok(pipeline_deliver_one(s, d, &via, &res, &e) == 0, "a rejection is stored (%s)", e.msg);
	is_int(1, (long long)res.rejected_new, "the result counts the rejection as new");
	is_sql("198.51.100.7|https|19|not a report at all",
	       "SELECT concat_ws('|', sender, source, raw_size, convert_from(raw, 'UTF8')) FROM tlsrpt.rejected"
	       " WHERE reason = 'store-t: refused'",
	       "the via's sender (who posted it) is the rejected row's sender, not the delivery's");
	ok(pipeline_deliver_one(s, d, &via, &res, &e) == 0 && res.rejected_duplicate == 1,
	   "the same rejection again is absorbed as a duplicate");
	delivery_free(d);
}

static void
test_refused_kept_as_rejected(struct store *s)
{
	const struct store_via via = {STORE_CHANNEL_MAIL, NULL};
	struct delivery *d = json_delivery("{\"organization-name\": \"refuse-me\", \"report-id\": \"store-t-2\","
					   " \"date-range\": {\"start-datetime\": \"2024-05-02T00:00:00Z\","
					   " \"end-datetime\": \"2024-05-02T23:59:59Z\"}, \"policies\": []}");
	struct store_result res;
	struct error e = {ERR_NONE, ""};
	char *r = q("ALTER TABLE tlsrpt.report ADD CONSTRAINT store_t_refuse CHECK (organization_name <> 'refuse-me')");

	free(r);
	ok(pipeline_deliver_one(s, d, &via, &res, &e) == 0, "a report the database refuses: no error (%s)", e.msg);
	is_int(0, (long long)(res.reports_new + res.reports_duplicate), "a refused report is not counted as stored");
	is_int(1, (long long)res.rejected_new, "a refused report is kept as one rejection");
	is_sql("1", "SELECT count(*) FROM tlsrpt.rejected WHERE reason LIKE 'database refused the report: %store_t_refuse%'",
	       "the rejection's reason names what the database said");
	free(q("ALTER TABLE tlsrpt.report DROP CONSTRAINT store_t_refuse"));
	delivery_free(d);
}

/* The done calls of a pipeline, as a string: "S" stored, "E" the stop, "-" after it. */
static char done_log[64];

static void
log_done(void *arg, void *tag, const struct store_result *res, const struct error *e)
{
	size_t n = strlen(done_log);

	(void)arg;
	if (n + 3 < sizeof done_log)
		snprintf(done_log + n, sizeof done_log - n, "%s%c", (const char *)tag,
			 res != NULL ? 'S' : e != NULL ? 'E' : '-');
}

static void
test_pipeline_order(struct store *s)
{
	static const char *const tags[] = {"1", "2", "3", "4", "5"};
	const struct store_via via = {STORE_CHANNEL_FILE, NULL};
	struct delivery *d[5];
	struct error e = {ERR_NONE, ""};
	struct pipeline *pl;
	int rc = 0;

	done_log[0] = '\0';
	json_deliveries("pipe", d, 5);
	pl = pipeline_begin(s, &via, log_done, NULL, &e);
	ok(pl != NULL, "a pipeline begins (%s)", e.msg);
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = pipeline_add(pl, d[i], (void *)tags[i], &e);
	ok(rc == 0 && pipeline_finish(pl, &e) == 0, "five deliveries in a pipeline are committed (%s)", e.msg);
	pipeline_free(pl);
	is_string("1S2S3S4S5S", done_log, "every delivery is handed back once, in the order added");
	is_sql("5", "SELECT count(*) FROM tlsrpt.report WHERE report_id LIKE 'pipe-%'", "five rows, one each");
	ok(PQpipelineStatus(store_conn(s)) == PQ_PIPELINE_OFF, "the connection is out of pipeline mode after it");
	{
		PGresult *r = PQexec(store_conn(s), "SELECT count(*) FROM pg_prepared_statements");

		is_string("0", PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : PQerrorMessage(store_conn(s)),
			  "the report statement prepared for the pipeline is released at its end");
		PQclear(r);
	}
	for (int i = 0; i < 5; i++)
		delivery_free(d[i]);
}

static void
test_pipeline_stop(void)
{
	static const char *const tags[] = {"1", "2", "3"};
	const struct store_via via = {STORE_CHANNEL_FILE, NULL};
	struct delivery *d[3];
	struct error e = {ERR_NONE, ""};
	struct store *s = NULL;
	struct pipeline *pl;
	int rc = 0;

	done_log[0] = '\0';
	cfg.lock_timeout = 1;
	if (store_open(&s, &cfg, &e) < 0)
		bail("store_open: %s", e.msg);
	free(q("BEGIN"));
	free(q("LOCK TABLE tlsrpt.report IN ACCESS EXCLUSIVE MODE"));
	json_deliveries("stop", d, 3);
	pl = pipeline_begin(s, &via, log_done, NULL, &e);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = pipeline_add(pl, d[i], (void *)tags[i], &e);
	if (rc == 0)
		rc = pipeline_finish(pl, &e);
	free(q("ROLLBACK"));
	ok(rc < 0, "a table locked past lock_timeout stops the pipeline");
	is_int(ERR_TEMP, e.cls, "the stop is a temporary failure (%s)", e.msg);
	is_string("1E2-3-", done_log, "a stop hands back every delivery: the first with why, the rest with nothing");
	is_sql("0", "SELECT count(*) FROM tlsrpt.report WHERE report_id LIKE 'stop-%'", "nothing of them is stored");
	pipeline_free(pl);
	store_close(s);
	cfg.lock_timeout = 5;
	for (int i = 0; i < 3; i++)
		delivery_free(d[i]);
}

int
main(void)
{
	struct error e = {ERR_NONE, ""};
	struct store *s = NULL;

	if (getenv("TLSRPT_STORE_TEST") == NULL)
		skip_all("run by tests/store-t.sh, which starts PostgreSQL");
	plan_lazy();
	config_defaults(&cfg);
	if ((check = PQconnectdb("")) == NULL || PQstatus(check) != CONNECTION_OK)
		bail("cannot connect: %s", check ? PQerrorMessage(check) : "");
	if (store_open(&s, &cfg, &e) < 0)
		bail("store_open: %s", e.msg);
	test_report_columns(s);
	test_rejection_sender(s);
	test_refused_kept_as_rejected(s);
	test_pipeline_order(s);
	store_close(s);
	test_pipeline_stop();
	PQfinish(check);
	config_free(&cfg);
	return 0;
}
