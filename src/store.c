/* store.c - one delivery, one transaction, through libpq.
 * Every value reaches the server as a parameter. Duplicates are absorbed by
 * the unique constraints (ON CONFLICT DO NOTHING), so parallel and repeated
 * deliveries of one report store it once. */
#include "autoconf.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pgconn.h"
#include "schema-sql.h"
#include "store.h"
#include "util.h"

#define MAX_ATTEMPTS 5
#define N_MIGRATIONS ((int)(sizeof schema_migrations / sizeof schema_migrations[0]))

struct store {
	PGconn *conn;
	unsigned statement_timeout;
	unsigned lock_timeout;
};

int
store_schema_version(void)
{
	return N_MIGRATIONS;
}

int
store_open(struct store **out, const struct config *cfg, struct error *e)
{
	PGconn *conn;

	*out = NULL;
	if ((conn = pgconn_open(cfg, e)) == NULL)
		return -1;
	*out = xcalloc(1, sizeof **out);
	(*out)->conn = conn;
	(*out)->statement_timeout = cfg->statement_timeout;
	(*out)->lock_timeout = cfg->lock_timeout;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	free(s);
}

static int
exec_ok(struct store *s, const char *sql, const char *what, enum pg_failure *kind, struct error *e)
{
	PGresult *res = PQexec(s->conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(res);
		return 0;
	}
	*kind = pgconn_failed(s->conn, res, what, e);
	PQclear(res);
	return -1;
}

static void
rollback(struct store *s)
{
	if (PQstatus(s->conn) != CONNECTION_OK)
		return;
	if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF) {
		/* a send that failed half-way: end the pipeline, drop what comes back */
		int nulls = 0;

		PQpipelineSync(s->conn);
		while (!PQexitPipelineMode(s->conn) && nulls < 2 && PQstatus(s->conn) == CONNECTION_OK) {
			PGresult *r = PQgetResult(s->conn);

			nulls = r == NULL ? nulls + 1 : 0;
			PQclear(r);
		}
	}
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
}

/* ---- schema ---- */

static int
schema_version_in_db(struct store *s, int *version, enum pg_failure *kind, struct error *e)
{
	PGresult *res = PQexec(s->conn, "SELECT coalesce(max(version), 0) FROM tlsrpt.schema_version");

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		*kind = pgconn_failed(s->conn, res, "reading the schema version", e);
		PQclear(res);
		return -1;
	}
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
store_init_schema(struct store *s, int *version_out, struct error *e)
{
	enum pg_failure kind = PG_FAIL_TEMP;
	int version = 0;

	if (exec_ok(s, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tlsrpt-ingest schema'));"
		       "CREATE SCHEMA IF NOT EXISTS tlsrpt;"
		       "CREATE TABLE IF NOT EXISTS tlsrpt.schema_version ("
		       " version integer PRIMARY KEY,"
		       " applied_at timestamptz NOT NULL DEFAULT now())",
		    "creating schema tlsrpt", &kind, e) < 0)
		goto fail;
	if (schema_version_in_db(s, &version, &kind, e) < 0)
		goto fail;
	if (version > N_MIGRATIONS) {
		error_set(e, ERR_CONFIG, "the database has schema version %d, newer than this program's %d",
			  version, N_MIGRATIONS);
		goto fail;
	}
	for (int v = version + 1; v <= N_MIGRATIONS; v++) {
		char vtext[16], what[64];
		const char *params[1] = {vtext};
		PGresult *res;

		snprintf(what, sizeof what, "schema migration %d", v);
		if (exec_ok(s, schema_migrations[v - 1], what, &kind, e) < 0)
			goto fail;
		snprintf(vtext, sizeof vtext, "%d", v);
		res = PQexecParams(s->conn, "INSERT INTO tlsrpt.schema_version (version) VALUES ($1::integer)",
				   1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			kind = pgconn_failed(s->conn, res, what, e);
			PQclear(res);
			goto fail;
		}
		PQclear(res);
		log_info("schema tlsrpt: applied migration %d", v);
	}
	if (exec_ok(s, "COMMIT", "COMMIT", &kind, e) < 0)
		goto fail;
	*version_out = N_MIGRATIONS;
	return 0;
fail:
	rollback(s);
	return -1;
}

int
store_grant_writer(struct store *s, const char *role, struct error *e)
{
	enum pg_failure kind;
	char *ident, *sql;
	int rc;

	ident = PQescapeIdentifier(s->conn, role, strlen(role));
	if (ident == NULL) {
		error_set(e, ERR_CONFIG, "bad role name: %s", PQerrorMessage(s->conn));
		return -1;
	}
	sql = xasprintf("BEGIN; GRANT USAGE ON SCHEMA tlsrpt TO %s;"
			" GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tlsrpt TO %s; COMMIT",
			ident, ident);
	rc = exec_ok(s, sql, "granting", &kind, e);
	if (rc < 0)
		rollback(s);
	free(sql);
	PQfreemem(ident);
	return rc;
}

int
store_check_schema(struct store *s, int *version_out, struct error *e)
{
	enum pg_failure kind;
	int version;

	if (schema_version_in_db(s, &version, &kind, e) < 0)
		return -1;
	*version_out = version;
	if (version != N_MIGRATIONS) {
		error_set(e, ERR_CONFIG, "the database has schema version %d, this program needs %d%s", version,
			  N_MIGRATIONS, version < N_MIGRATIONS ? " (run tlsrpt-ingest --init-db)" : "");
		return -1;
	}
	return 0;
}

/* ---- parameters ---- */

/* A PostgreSQL array literal; NULL elements for missing values. */
static void
array_add(struct buf *b, const char *v)
{
	buf_puts(b, b->len > 1 ? "," : "");
	if (v == NULL) {
		buf_puts(b, "NULL");
		return;
	}
	buf_puts(b, "\"");
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_puts(b, "\"");
}

static char *
strlist_array(const struct strlist *l)
{
	struct buf b = {0};

	if (!l->present)
		return NULL;
	buf_puts(&b, "{");
	for (size_t i = 0; i < l->n; i++)
		array_add(&b, l->items[i]);
	buf_puts(&b, "}");
	return buf_cstr(&b);
}

static char *
count_text(struct count c)
{
	return c.present ? xasprintf("%lld", (long long)c.value) : NULL;
}

static const char *
channel_name(enum source_channel ch)
{
	return ch == CHANNEL_FILE ? "file" : ch == CHANNEL_HTTPS ? "https" : "mail";
}

/* ---- one delivery, one round trip ----
 * The whole transaction goes out in pipeline mode: BEGIN, the timeouts, one
 * statement per report (the report, its policies and their failure rows
 * together, through data-modifying CTEs and unnest over array parameters),
 * one per rejection and a Sync; the results are read in order, and only then
 * COMMIT is sent: two round trips. Only unnamed statements and set_config(..., true), which is SET
 * LOCAL: nothing outlives the transaction (PgBouncer transaction pooling). */

static const char sql_timeouts[] =
	"SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)";

/* The policies go in sorted by their position, so their identity values rise
 * in that order and row_number() over the ids gives each one's position back;
 * the failure rows carry the position of their policy. */
static const char sql_report[] =
	"WITH r AS (INSERT INTO tlsrpt.report (organization_name, contact_info, report_id, date_start, date_end,"
	" report_domain, submitter, message_id, filename, source, notes, raw,"
	" dkim_result, dkim_domain, dkim_aligned, origin_method)"
	" VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6, $7, $8, $9, $10, $11::text[], $12::jsonb,"
	" $28, $29, $30::boolean, $31)"
	" ON CONFLICT ON CONSTRAINT report_identity DO NOTHING RETURNING id),"
	" p AS (INSERT INTO tlsrpt.policy (report, policy_type, policy_domain, policy_string, mx_host,"
	" total_successful_session_count, total_failure_session_count)"
	" SELECT r.id, x.t, x.d, x.s::text[], x.m::text[], x.ok, x.bad FROM r,"
	" unnest($13::text[], $14::text[], $15::text[], $16::text[], $17::bigint[], $18::bigint[])"
	" WITH ORDINALITY AS x(t, d, s, m, ok, bad, n) ORDER BY x.n RETURNING id),"
	" pn AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM p),"
	" f AS (INSERT INTO tlsrpt.failure (policy, result_type, sending_mta_ip, receiving_mx_hostname,"
	" receiving_mx_helo, receiving_ip, failed_session_count, additional_information, failure_reason_code)"
	" SELECT pn.id, y.rt, y.sip, y.mx, y.helo, y.rip, y.c, y.info, y.code"
	" FROM unnest($19::bigint[], $20::text[], $21::inet[], $22::text[], $23::text[], $24::inet[],"
	" $25::bigint[], $26::text[], $27::text[]) WITH ORDINALITY AS y(pol, rt, sip, mx, helo, rip, c, info, code, k)"
	" JOIN pn ON pn.n = y.pol ORDER BY y.k)"
	" SELECT id FROM r";

#define REPORT_ARRAYS 15 /* $13 to $27 */
#define REPORT_PARAMS (12 + REPORT_ARRAYS + 4) /* $28 to $31: the origin (origin.h) */

static const char sql_rejected[] =
	"INSERT INTO tlsrpt.rejected (message_id, sender, subject, filename, source, reason, raw, raw_size, digest)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7::bytea, $8::bigint, $9)"
	" ON CONFLICT (digest) DO NOTHING RETURNING id";

enum step_kind { STEP_PLAIN, STEP_REPORT, STEP_REJECTED };

struct step {
	enum step_kind kind;
	const char *what; /* for the error message */
};

static int
send_query(struct store *s, const char *sql, int n, const char *const *values, const int *lengths,
	   const int *formats, const char *what, enum pg_failure *kind, struct error *e)
{
	if (PQsendQueryParams(s->conn, sql, n, NULL, values, lengths, formats, 0))
		return 0;
	*kind = pgconn_failed(s->conn, NULL, what, e);
	return -1;
}

static int
send_report(struct store *s, const struct delivery *d, const struct found_report *fr, enum source_channel ch,
	    enum pg_failure *kind, struct error *e)
{
	const struct report *r = fr->report;
	char *notes = strlist_array(&r->notes);
	const char *values[REPORT_PARAMS] = {
		r->organization_name, r->contact_info, r->report_id, r->date_start, r->date_end,
		d->report_domain, d->submitter, d->message_id, fr->filename, channel_name(ch),
		notes ? notes : "{}", r->raw_json,
	};
	struct buf cols[REPORT_ARRAYS];
	int rc;

	memset(cols, 0, sizeof cols);
	for (int c = 0; c < REPORT_ARRAYS; c++)
		buf_puts(&cols[c], "{");
	for (size_t i = 0; i < r->n_policies; i++) {
		const struct policy *p = &r->policies[i];
		char *owned[4] = {
			strlist_array(&p->policy_string), strlist_array(&p->mx_host),
			count_text(p->total_successful_session_count), count_text(p->total_failure_session_count),
		};
		char pos[24];

		array_add(&cols[0], p->policy_type);
		array_add(&cols[1], p->policy_domain);
		for (int k = 0; k < 4; k++) {
			array_add(&cols[2 + k], owned[k]);
			free(owned[k]);
		}
		snprintf(pos, sizeof pos, "%zu", i + 1);
		for (size_t j = 0; j < p->n_failures; j++) {
			const struct failure *f = &p->failures[j];
			char count[24];

			if (f->failed_session_count.present)
				snprintf(count, sizeof count, "%lld", (long long)f->failed_session_count.value);
			array_add(&cols[6], pos);
			array_add(&cols[7], f->result_type);
			array_add(&cols[8], f->sending_mta_ip);
			array_add(&cols[9], f->receiving_mx_hostname);
			array_add(&cols[10], f->receiving_mx_helo);
			array_add(&cols[11], f->receiving_ip);
			array_add(&cols[12], f->failed_session_count.present ? count : NULL);
			array_add(&cols[13], f->additional_information);
			array_add(&cols[14], f->failure_reason_code);
		}
	}
	for (int c = 0; c < REPORT_ARRAYS; c++) {
		buf_puts(&cols[c], "}");
		values[12 + c] = buf_cstr(&cols[c]);
	}
	values[12 + REPORT_ARRAYS] = d->origin.dkim_result;
	values[13 + REPORT_ARRAYS] = d->origin.dkim_domain;
	values[14 + REPORT_ARRAYS] = d->origin.aligned == TRI_UNKNOWN ? NULL
				     : d->origin.aligned == TRI_TRUE ? "true" : "false";
	values[15 + REPORT_ARRAYS] = d->origin.method;
	rc = send_query(s, sql_report, REPORT_PARAMS, values, NULL, NULL, "storing a report", kind, e);
	free(notes);
	for (int c = 0; c < REPORT_ARRAYS; c++)
		buf_free(&cols[c]);
	return rc;
}

static int
send_rejection(struct store *s, const struct delivery *d, const struct rejection *rj, const char *reason,
	       enum source_channel ch, enum pg_failure *kind, struct error *e)
{
	char size[24];
	const char *values[9] = {
		d->message_id, d->sender, d->subject, rj->filename, channel_name(ch),
		reason, (const char *)rj->raw, size, rj->digest,
	};
	int lengths[9] = {0, 0, 0, 0, 0, 0, (int)rj->raw_len, 0, 0};
	int formats[9] = {0, 0, 0, 0, 0, 0, 1, 0, 0};

	snprintf(size, sizeof size, "%zu", rj->original_len);
	return send_query(s, sql_rejected, 9, values, lengths, formats, "storing a rejected message", kind, e);
}

/* A report the database refused as data (an over-long key, say) is kept as rejected instead. */
static void
report_as_rejection(const struct found_report *fr, struct rejection *rj)
{
	const char *raw = fr->report->raw_json;

	memset(rj, 0, sizeof *rj);
	rj->filename = fr->filename;
	rj->raw = (unsigned char *)raw;
	rj->raw_len = strlen(raw);
	rj->original_len = rj->raw_len;
	snprintf(rj->digest, sizeof rj->digest, "%s", fr->digest);
}

/* Reads the results of the steps sent, then the Sync. The first failure is
 * recorded; what follows it comes back aborted. */
static int
read_results(struct store *s, const struct step *steps, size_t n, struct store_result *res,
	     enum pg_failure *kind, struct error *e)
{
	int rc = 0;
	PGresult *r;

	for (size_t i = 0; i < n; i++) {
		ExecStatusType st;

		if ((r = PQgetResult(s->conn)) == NULL) {
			if (rc == 0)
				*kind = pgconn_failed(s->conn, NULL, steps[i].what, e);
			return -1;
		}
		st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			bool added = PQntuples(r) > 0;

			if (steps[i].kind == STEP_REPORT)
				*(added ? &res->reports_new : &res->reports_duplicate) += 1;
			else if (steps[i].kind == STEP_REJECTED)
				*(added ? &res->rejected_new : &res->rejected_duplicate) += 1;
		} else if (rc == 0) {
			*kind = st == PGRES_PIPELINE_ABORTED ? PG_FAIL_BUG : pgconn_failed(s->conn, r, steps[i].what, e);
			if (st == PGRES_PIPELINE_ABORTED)
				error_set(e, ERR_BUG, "%s: aborted without an error", steps[i].what);
			rc = -1;
		}
		PQclear(r);
		if (PQstatus(s->conn) == CONNECTION_BAD)
			return -1;
		while ((r = PQgetResult(s->conn)) != NULL) /* the NULL that ends each statement's results */
			PQclear(r);
	}
	r = PQgetResult(s->conn);
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && rc == 0) {
		*kind = pgconn_failed(s->conn, r, "COMMIT", e);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

static int
store_once(struct store *s, const struct delivery *d, enum source_channel ch, const char *refused,
	   struct store_result *res, enum pg_failure *kind, struct error *e)
{
	struct step *steps = xcalloc(d->n_reports + d->n_rejections + 3, sizeof *steps);
	char st_text[16], lt_text[16];
	const char *timeouts[2] = {st_text, lt_text};
	size_t n = 0;
	int rc;

	memset(res, 0, sizeof *res);
	if (!PQenterPipelineMode(s->conn)) {
		free(steps);
		*kind = pgconn_failed(s->conn, NULL, "BEGIN", e);
		return -1;
	}
	snprintf(st_text, sizeof st_text, "%us", s->statement_timeout);
	snprintf(lt_text, sizeof lt_text, "%us", s->lock_timeout);
	rc = send_query(s, "BEGIN", 0, NULL, NULL, NULL, "BEGIN", kind, e);
	steps[n++] = (struct step){STEP_PLAIN, "BEGIN"};
	if (rc == 0)
		rc = send_query(s, sql_timeouts, 2, timeouts, NULL, NULL, "BEGIN", kind, e);
	steps[n++] = (struct step){STEP_PLAIN, "BEGIN"};
	for (size_t i = 0; i < d->n_reports && rc == 0; i++) {
		if (refused == NULL) {
			rc = send_report(s, d, &d->reports[i], ch, kind, e);
			steps[n++] = (struct step){STEP_REPORT, "storing a report"};
		} else {
			struct rejection rj;

			report_as_rejection(&d->reports[i], &rj);
			rc = send_rejection(s, d, &rj, refused, ch, kind, e);
			steps[n++] = (struct step){STEP_REJECTED, "storing a rejected message"};
		}
	}
	for (size_t i = 0; i < d->n_rejections && rc == 0; i++) {
		rc = send_rejection(s, d, &d->rejections[i], d->rejections[i].reason, ch, kind, e);
		steps[n++] = (struct step){STEP_REJECTED, "storing a rejected message"};
	}
	if (rc == 0 && !PQpipelineSync(s->conn)) {
		*kind = pgconn_failed(s->conn, NULL, "sending", e);
		rc = -1;
	}
	if (rc == 0)
		rc = read_results(s, steps, n, res, kind, e);
	/* COMMIT only once every result is in: a COMMIT queued behind a statement
	 * that waits for a lock would still run after a deadline or SIGTERM had
	 * ended us with "nothing stored". */
	if (rc == 0)
		rc = send_query(s, "COMMIT", 0, NULL, NULL, NULL, "COMMIT", kind, e);
	if (rc == 0 && !PQpipelineSync(s->conn)) {
		*kind = pgconn_failed(s->conn, NULL, "COMMIT", e);
		rc = -1;
	}
	if (rc == 0) {
		steps[0] = (struct step){STEP_PLAIN, "COMMIT"};
		rc = read_results(s, steps, 1, res, kind, e);
	}
	free(steps);
	if (!PQexitPipelineMode(s->conn) && rc == 0) {
		*kind = pgconn_failed(s->conn, NULL, "leaving pipeline mode", e);
		rc = -1;
	}
	return rc;
}

int
store_delivery(struct store *s, const struct delivery *d, enum source_channel ch,
	       struct store_result *res, struct error *e)
{
	char refused[sizeof e->msg + 32] = "";

	for (int attempt = 1;; attempt++) {
		enum pg_failure kind = PG_FAIL_TEMP;

		error_clear(e);
		if (store_once(s, d, ch, refused[0] ? refused : NULL, res, &kind, e) == 0)
			return 0;
		rollback(s);
		if (kind == PG_FAIL_RETRY && attempt < MAX_ATTEMPTS) {
			struct timespec pause = {0, (long)(20000000L * attempt + (rand() % 20) * 1000000L)};

			log_debug("retrying after: %s", e->msg);
			nanosleep(&pause, NULL);
			continue;
		}
		if (kind == PG_FAIL_DATA && refused[0] == '\0' && d->n_reports > 0) {
			snprintf(refused, sizeof refused, "database refused the report: %s", e->msg);
			log_warn("%s; keeping it as rejected", e->msg);
			continue;
		}
		return -1;
	}
}
