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

/* A report of n policies, policy i with failures[i] failure rows, every
 * value set and distinct; report-id ID. */
static char *
shape_report(const char *id, int n, const int *failures)
{
	struct buf b = {0};

	buf_printf(&b, "{\"organization-name\": \"Shapes\", \"report-id\": \"%s\","
		   " \"date-range\": {\"start-datetime\": \"2024-06-01T00:00:00Z\", \"end-datetime\": \"2024-06-01T23:59:59Z\"},"
		   " \"policies\": [", id);
	for (int i = 0; i < n; i++) {
		buf_printf(&b, "%s{\"policy\": {\"policy-type\": \"sts\", \"policy-domain\": \"p%d.shape.example\","
			   " \"policy-string\": [\"version: STSv1\", \"mx: \\\"q\\\\%d\"], \"mx-host\": [\"mx%d.shape.example\"]},"
			   " \"summary\": {\"total-successful-session-count\": %d, \"total-failure-session-count\": %d},"
			   " \"failure-details\": [", i ? ", " : "", i, i, i, 100 + i, failures[i]);
		for (int j = 0; j < failures[i]; j++)
			buf_printf(&b, "%s{\"result-type\": \"type-%d-%d\", \"sending-mta-ip\": \"192.0.2.%d\","
				   " \"receiving-mx-hostname\": \"mx%d.shape.example\", \"receiving-mx-helo\": \"helo%d\","
				   " \"receiving-ip\": \"2001:db8::%d\", \"failed-session-count\": %d,"
				   " \"additional-information\": \"info %d\", \"failure-reason-code\": \"code %d\"}",
				   j ? ", " : "", i, j, j + 1, i, j, j + 1, j + 1, j, j);
		buf_puts(&b, "]}");
	}
	buf_puts(&b, "]}");
	return buf_cstr(&b);
}

/* The stored policies, then the failure rows (each with its policy's
 * domain), in the order stored. */
static char *
shape_rows(const char *id)
{
	char *sql = xasprintf(
		"SELECT coalesce((SELECT string_agg(concat_ws('|', p.policy_type, p.policy_domain, p.policy_string::text,"
		" p.mx_host::text, p.total_successful_session_count, p.total_failure_session_count, p.period_month), ';'"
		" ORDER BY p.id) FROM tlsrpt.policy p JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = '%s'), '')"
		" || ' / ' || coalesce((SELECT string_agg(concat_ws('|', p.policy_domain, f.result_type,"
		" host(f.sending_mta_ip), f.receiving_mx_hostname, f.receiving_mx_helo, host(f.receiving_ip),"
		" f.failed_session_count, f.additional_information, f.failure_reason_code, f.period_month), ';' ORDER BY f.id)"
		" FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy JOIN tlsrpt.report r ON r.id = p.report"
		" WHERE r.report_id = '%s'), '')", id, id);
	char *v = q(sql);

	free(sql);
	return v;
}

/* A report sent alone goes in the narrowest statement that holds it (one
 * policy as scalars, one failure row as scalars, ...), a backfill's in the
 * general one it prepares: each shape stores what the general one does. */
static void
test_report_shapes(struct store *s)
{
	static const int f10[] = {0}, f11[] = {1}, f13[] = {3}, f20[] = {0, 0}, f21[] = {2, 1}, f30[] = {0, 2, 0};
	static const struct {
		const char *name;
		int n;
		const int *failures;
	} shapes[] = {
		{"one policy, no failure rows", 1, f10},    {"one policy, one failure row", 1, f11},
		{"one policy, three failure rows", 1, f13}, {"two policies, no failure rows", 2, f20},
		{"two policies with failure rows", 2, f21}, {"three policies, the middle one with failure rows", 3, f30},
	};
	enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };
	const struct store_via via = {STORE_CHANNEL_FILE, NULL};
	struct delivery *alone[N_SHAPES], *backfill[N_SHAPES];
	struct error e = {ERR_NONE, ""};
	struct pipeline *pl;
	int rc = 0;

	for (size_t i = 0; i < N_SHAPES; i++) {
		char id[32], *json;
		struct store_result res;

		snprintf(id, sizeof id, "alone-%zu", i);
		json = shape_report(id, shapes[i].n, shapes[i].failures);
		alone[i] = json_delivery(json);
		free(json);
		ok(pipeline_deliver_one(s, alone[i], &via, &res, &e) == 0 && res.reports_new == 1,
		   "%s, sent alone: stored (%s)", shapes[i].name, e.msg);
		snprintf(id, sizeof id, "backfill-%zu", i);
		json = shape_report(id, shapes[i].n, shapes[i].failures);
		backfill[i] = json_delivery(json);
		free(json);
	}
	done_log[0] = '\0';
	pl = pipeline_begin(s, &via, log_done, NULL, &e);
	for (size_t i = 0; i < N_SHAPES && rc == 0; i++)
		rc = pipeline_add(pl, backfill[i], (void *)"b", &e);
	ok(rc == 0 && pipeline_finish(pl, &e) == 0, "the same reports in one pipeline (the prepared statement) (%s)",
	   e.msg);
	pipeline_free(pl);
	for (size_t i = 0; i < N_SHAPES; i++) {
		char id[32], *want, *got;

		snprintf(id, sizeof id, "backfill-%zu", i);
		want = shape_rows(id);
		snprintf(id, sizeof id, "alone-%zu", i);
		got = shape_rows(id);
		ok(strchr(want, '|') != NULL, "%s: the backfill stored its policies", shapes[i].name);
		is_string(want, got, "%s: sent alone, the same policies and failure rows, in order", shapes[i].name);
		free(want);
		free(got);
		delivery_free(alone[i]);
		delivery_free(backfill[i]);
	}
	is_sql("p0.shape.example|type-0-0|192.0.2.1|mx0.shape.example|helo0|2001:db8::1|1|info 0|code 0|2024-06-01",
	       "SELECT concat_ws('|', p.policy_domain, f.result_type, host(f.sending_mta_ip), f.receiving_mx_hostname,"
	       " f.receiving_mx_helo, host(f.receiving_ip), f.failed_session_count, f.additional_information,"
	       " f.failure_reason_code, f.period_month) FROM tlsrpt.failure f JOIN tlsrpt.policy p ON p.id = f.policy"
	       " JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'alone-1'",
	       "one policy, one failure row, sent alone: each value in its column");
	is_sql("sts|p0.shape.example|{\"version: STSv1\",\"mx: \\\"q\\\\0\"}|{mx0.shape.example}|100|0",
	       "SELECT concat_ws('|', p.policy_type, p.policy_domain, p.policy_string, p.mx_host,"
	       " p.total_successful_session_count, p.total_failure_session_count) FROM tlsrpt.policy p"
	       " JOIN tlsrpt.report r ON r.id = p.report WHERE r.report_id = 'alone-0'",
	       "one policy sent alone: its lists as arrays, escapes kept");
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
	test_report_shapes(s);
	test_rejection_sender(s);
	test_refused_kept_as_rejected(s);
	test_pipeline_order(s);
	store_close(s);
	test_pipeline_stop();
	PQfinish(check);
	config_free(&cfg);
	return 0;
}
