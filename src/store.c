/* store.c - one delivery, one transaction, through libpq.
 * Every value reaches the server as a parameter. Duplicates are absorbed by
 * the unique constraints (ON CONFLICT DO NOTHING), so parallel and repeated
 * deliveries of one report store it once. */
#include "autoconf.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
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

struct batch;

struct store {
	PGconn *conn;
	unsigned statement_timeout;
	unsigned lock_timeout;
	size_t max_rejected_raw;
	struct batch *batch; /* files mode: deliveries in flight (store_batch_begin) */
};

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
	(*out)->max_rejected_raw = cfg->limits.max_rejected_raw;
	return 0;
}

static void batch_free(struct store *s);

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	batch_free(s);
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

/* A reader (Grafana, an analyst): SELECT on every table and view of schema
 * tlsrpt except the raw bytes of rejected mail (column privileges on
 * tlsrpt.rejected leave out raw), EXECUTE on its functions (the alerts and the
 * policy parsers, all read-only), and default privileges so that views and
 * functions a later --init-db (a migration) creates are readable too. No
 * INSERT, UPDATE, DELETE, TRUNCATE or CREATE. */
static const char grant_reader_sql[] =
	"DO $grant$ DECLARE"
	" r text := current_setting('tlsrpt.grant_reader'); rel regclass; cols text;"
	" BEGIN"
	" EXECUTE format('GRANT USAGE ON SCHEMA tlsrpt TO %I', r);"
	" FOR rel IN SELECT c.oid::regclass FROM pg_class c"
	"   WHERE c.relnamespace = 'tlsrpt'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"
	"     AND c.oid <> 'tlsrpt.rejected'::regclass ORDER BY c.oid LOOP"
	"  EXECUTE format('GRANT SELECT ON %s TO %I', rel, r);"
	" END LOOP;"
	" SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute"
	"   WHERE attrelid = 'tlsrpt.rejected'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'raw';"
	" EXECUTE format('GRANT SELECT (%s) ON tlsrpt.rejected TO %I', cols, r);"
	" EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tlsrpt TO %I', r);"
	" EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA tlsrpt GRANT SELECT ON TABLES TO %I', r);"
	" EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA tlsrpt GRANT EXECUTE ON FUNCTIONS TO %I', r);"
	" END $grant$";

int
store_grant_reader(struct store *s, const char *role, struct error *e)
{
	enum pg_failure kind;
	const char *params[1] = {role};
	PGresult *res;

	if (exec_ok(s, "BEGIN", "granting", &kind, e) < 0)
		return -1;
	res = PQexecParams(s->conn, "SELECT set_config('tlsrpt.grant_reader', $1, true)", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_failed(s->conn, res, "granting", e);
		PQclear(res);
		rollback(s);
		return -1;
	}
	PQclear(res);
	if (exec_ok(s, grant_reader_sql, "granting", &kind, e) < 0 ||
	    exec_ok(s, "COMMIT", "granting", &kind, e) < 0) {
		rollback(s);
		return -1;
	}
	return 0;
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

enum step_kind { STEP_PLAIN, STEP_REPORT, STEP_REJECTED, STEP_COMMIT, STEP_SETUP, STEP_CHECK };

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

/* stmt: the name sql_report is prepared under, NULL to send it with the values. */
static int
send_report(struct store *s, const struct delivery *d, const struct found_report *fr, enum source_channel ch,
	    const char *stmt, enum pg_failure *kind, struct error *e)
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
	if (stmt == NULL) {
		rc = send_query(s, sql_report, REPORT_PARAMS, values, NULL, NULL, "storing a report", kind, e);
	} else if (PQsendQueryPrepared(s->conn, stmt, REPORT_PARAMS, values, NULL, NULL, 0)) {
		rc = 0;
	} else {
		*kind = pgconn_failed(s->conn, NULL, "storing a report", e);
		rc = -1;
	}
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
report_as_rejection(const struct store *s, const struct found_report *fr, struct rejection *rj)
{
	const char *raw = fr->report->raw_json;

	memset(rj, 0, sizeof *rj);
	rj->filename = fr->filename;
	rj->raw = (unsigned char *)raw;
	rj->original_len = strlen(raw);
	rj->raw_len = rj->original_len < s->max_rejected_raw ? rj->original_len : s->max_rejected_raw;
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
		if (PQstatus(s->conn) == CONNECTION_BAD) {
			if (rc == 0)
				*kind = pgconn_failed(s->conn, NULL, steps[i].what, e);
			return -1;
		}
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

/* What follows a delivery's BEGIN: the timeouts (SET LOCAL), one statement
 * per report (or, refused, one rejection per report), one per rejection. One
 * step each is recorded in steps from *n on. */
static int
send_statements(struct store *s, const struct delivery *d, enum source_channel ch, const char *refused,
		const char *stmt, struct step *steps, size_t *n, enum pg_failure *kind, struct error *e)
{
	char st_text[16], lt_text[16];
	const char *timeouts[2] = {st_text, lt_text};
	int rc;

	snprintf(st_text, sizeof st_text, "%us", s->statement_timeout);
	snprintf(lt_text, sizeof lt_text, "%us", s->lock_timeout);
	rc = send_query(s, sql_timeouts, 2, timeouts, NULL, NULL, "BEGIN", kind, e);
	steps[(*n)++] = (struct step){STEP_PLAIN, "BEGIN"};
	for (size_t i = 0; i < d->n_reports && rc == 0; i++) {
		if (refused == NULL) {
			rc = send_report(s, d, &d->reports[i], ch, stmt, kind, e);
			steps[(*n)++] = (struct step){STEP_REPORT, "storing a report"};
		} else {
			struct rejection rj;

			report_as_rejection(s, &d->reports[i], &rj);
			rc = send_rejection(s, d, &rj, refused, ch, kind, e);
			steps[(*n)++] = (struct step){STEP_REJECTED, "storing a rejected message"};
		}
	}
	for (size_t i = 0; i < d->n_rejections && rc == 0; i++) {
		rc = send_rejection(s, d, &d->rejections[i], d->rejections[i].reason, ch, kind, e);
		steps[(*n)++] = (struct step){STEP_REJECTED, "storing a rejected message"};
	}
	return rc;
}

static int
store_once(struct store *s, const struct delivery *d, enum source_channel ch, const char *refused,
	   struct store_result *res, enum pg_failure *kind, struct error *e)
{
	struct step *steps = xcalloc(d->n_reports + d->n_rejections + 3, sizeof *steps);
	size_t n = 0;
	int rc;

	memset(res, 0, sizeof *res);
	if (!PQenterPipelineMode(s->conn)) {
		free(steps);
		*kind = pgconn_failed(s->conn, NULL, "BEGIN", e);
		return -1;
	}
	rc = send_query(s, "BEGIN", 0, NULL, NULL, NULL, "BEGIN", kind, e);
	steps[n++] = (struct step){STEP_PLAIN, "BEGIN"};
	if (rc == 0)
		rc = send_statements(s, d, ch, refused, NULL, steps, &n, kind, e);
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

/* ---- files mode: many deliveries in flight ----
 * Each delivery is still its own transaction, as in store_delivery: BEGIN,
 * the timeouts (SET LOCAL), its statements, and a Sync, so that an error
 * aborts that segment only. What ends the transaction travels at the head of
 * the next delivery's segment: COMMIT, a Flush (its answer comes back at once),
 * then that delivery's BEGIN...; COMMIT in a transaction an error has aborted
 * rolls it back, and the next delivery starts clean. A delivery counts as
 * stored only when the answer to its COMMIT has been read.
 *
 * So between two Syncs the session is always inside a transaction ('T' or
 * 'E' in ReadyForQuery), and a pooler in transaction mode (PgBouncer) keeps
 * the server connection linked to us: an idle ReadyForQuery comes only after
 * a COMMIT sent alone, once every other answer is in, with nothing sent
 * behind it until it is read (batch_settle). Implicit transactions (a Sync
 * per delivery, no BEGIN) would not do: PgBouncer releases the server
 * connection at an idle ReadyForQuery when it has seen no further Sync, even
 * with part of the next delivery already forwarded to it. While the session
 * is held, the report statement is prepared once (REPORT_STMT) instead of
 * being parsed and planned for every report; it is released before the COMMIT
 * that ends the hold, and if that fails the transaction stays open and the
 * session ends with the run (a pooler closes a server connection its client
 * left inside a transaction). A pooler that renames prepared statements
 * (PgBouncer 1.21 and later with max_prepared_statements) keeps it itself, as
 * for any client: then the server does not know our name, and we neither
 * release nor prepare it again. The hold ends every BATCH_HOLD_MS, so other
 * clients of a small pool get their turn.
 *
 * While the batch runs the connection is non-blocking and we send and read
 * at the same time (poll on both directions), so neither side can stall the
 * other with full buffers, the deadlock the libpq documentation warns about.
 * At most BATCH_SEGMENTS segments, BATCH_BYTES of content (or one segment of
 * any size), are in flight. */

#define BATCH_SEGMENTS 64
#define BATCH_BYTES ((size_t)8 << 20)
#define BATCH_HOLD_MS 500 /* then the session goes idle once, for a pooler to share it */
#define REPORT_STMT "tlsrpt_ingest_report"

enum entry_state {
	ENTRY_SENT,       /* its segment's answers are not all in */
	ENTRY_COMMITTING, /* its statements succeeded; the answer to its COMMIT is not in */
	ENTRY_DONE        /* committed */
};

struct batch_entry {
	const struct delivery *d;
	void *tag;
	enum entry_state state;
	unsigned generation; /* segments sent for it; a resend is a new one */
	int attempt;
	size_t bytes;
	char refused[sizeof ((struct error *)0)->msg + 32];
	struct store_result res;
	struct batch_entry *next;
};

/* What was sent between two Syncs, answered in that order. */
struct segment {
	struct batch_entry *entry; /* NULL: only the last COMMIT */
	unsigned generation;
	struct batch_entry *commit_owner; /* when it holds a COMMIT: whose transaction that ends */
	unsigned commit_generation;
	struct step *steps;
	size_t n, pos;
	size_t bytes;
	bool failed;
	bool server_error; /* err came from the server (it has a SQLSTATE) */
	bool fatal; /* what failed was a COMMIT, BEGIN or the statement's preparation */
	const struct batch_entry *fatal_where;
	enum pg_failure kind;
	struct error err;
	struct segment *next;
};

struct batch {
	enum source_channel ch;
	store_done_fn done;
	void *arg;
	struct batch_entry *first, *last; /* not handed back yet, in the order added */
	struct segment *segs, *segs_last; /* sent, Sync not read yet */
	size_t n_segs, seg_bytes;
	bool open_tx;  /* the last segment sent leaves a transaction open */
	bool prepared; /* REPORT_STMT is (being) prepared in this session, ours to release */
	bool pooled;   /* a pooler renamed it on the server (PgBouncer >= 1.21 with
			* max_prepared_statements): the pooler keeps it, for every hold */
	long long held_since; /* when the session last left idle */
	struct batch_entry *open_owner;
	unsigned open_generation;
};

static size_t
delivery_bytes(const struct delivery *d)
{
	size_t n = 1024;

	for (size_t i = 0; i < d->n_reports; i++)
		n += 2 * strlen(d->reports[i].report->raw_json) + 256;
	for (size_t i = 0; i < d->n_rejections; i++)
		n += d->rejections[i].raw_len + 256;
	return n;
}

static void
segment_free(struct segment *g)
{
	if (g == NULL)
		return;
	free(g->steps);
	free(g);
}

static void
batch_free(struct store *s)
{
	struct batch *b = s->batch;

	if (b == NULL)
		return;
	while (b->segs != NULL) {
		struct segment *g = b->segs;

		b->segs = g->next;
		segment_free(g);
	}
	while (b->first != NULL) {
		struct batch_entry *x = b->first;

		b->first = x->next;
		free(x);
	}
	free(b);
	s->batch = NULL;
}

/* Hands back, in order, the deliveries at the head that are committed. */
static void
batch_hand_back(struct batch *b)
{
	while (b->first != NULL && b->first->state == ENTRY_DONE) {
		struct batch_entry *x = b->first;

		b->first = x->next;
		if (b->first == NULL)
			b->last = NULL;
		b->done(b->arg, x->tag, &x->res, NULL);
		free(x);
	}
}

/* The run stops: every delivery is handed back, the committed ones with their
 * result, the first one that is not with why (and where it happened, when
 * that was a later one), the rest with nothing. */
static int
batch_stop(struct store *s, const struct error *why, const struct batch_entry *where, struct error *e)
{
	struct batch *b = s->batch;
	struct error err = *why;
	bool first = true;

	if (err.cls == ERR_NONE)
		err.cls = ERR_TEMP;
	while (b->first != NULL) {
		struct batch_entry *x = b->first;

		b->first = x->next;
		if (x->state == ENTRY_DONE) {
			b->done(b->arg, x->tag, &x->res, NULL);
		} else if (first) {
			if (where != NULL && where != x) {
				char msg[sizeof err.msg + 16];

				snprintf(msg, sizeof msg, "%s (storing %s)", err.msg, where->d->source);
				memcpy(err.msg, msg, sizeof err.msg - 1);
				err.msg[sizeof err.msg - 1] = '\0';
			}
			b->done(b->arg, x->tag, NULL, &err);
			first = false;
		} else {
			b->done(b->arg, x->tag, NULL, NULL);
		}
		free(x);
	}
	b->last = NULL;
	batch_free(s);
	*e = err;
	return -1;
}

/* Sends one segment: the COMMIT of the transaction left open, if any, then
 * x's BEGIN, timeouts and statements (x NULL: nothing more), then a Sync. */
static int
batch_send(struct store *s, struct batch_entry *x, struct error *e)
{
	struct batch *b = s->batch;
	struct segment *g = xcalloc(1, sizeof *g);
	struct error err = {ERR_NONE, ""};
	enum pg_failure kind = PG_FAIL_TEMP;
	int rc = 0;

	g->steps = xcalloc(6 + (x != NULL ? x->d->n_reports + x->d->n_rejections : 0), sizeof *g->steps);
	g->entry = x;
	if (x == NULL && b->prepared && !b->pooled) {
		/* before the COMMIT: if this fails, the transaction stays open
		 * and the session, statement and all, ends with the run */
		rc = send_query(s, "DEALLOCATE " REPORT_STMT, 0, NULL, NULL, NULL, "releasing the report statement",
				&kind, &err);
		g->steps[g->n++] = (struct step){STEP_SETUP, "releasing the report statement"};
		b->prepared = false;
	}
	if (b->open_tx) {
		g->commit_owner = b->open_owner;
		g->commit_generation = b->open_generation;
		rc = send_query(s, "COMMIT", 0, NULL, NULL, NULL, "COMMIT", &kind, &err);
		g->steps[g->n++] = (struct step){STEP_COMMIT, "COMMIT"};
		if (rc == 0 && x != NULL && !PQsendFlushRequest(s->conn)) {
			pgconn_failed(s->conn, NULL, "COMMIT", &err);
			rc = -1;
		}
		b->open_tx = false;
	}
	if (x != NULL) {
		if (!b->open_tx)
			b->held_since = now_ms();
		x->generation++;
		x->state = ENTRY_SENT;
		memset(&x->res, 0, sizeof x->res);
		g->generation = x->generation;
		g->bytes = x->bytes;
		if (rc == 0)
			rc = send_query(s, "BEGIN", 0, NULL, NULL, NULL, "BEGIN", &kind, &err);
		g->steps[g->n++] = (struct step){STEP_SETUP, "BEGIN"};
		if (rc == 0 && !b->prepared && !b->pooled && x->d->n_reports > 0 && x->refused[0] == '\0') {
			/* parsed and planned once for the hold, which keeps the server
			 * connection (see above); released before its last COMMIT,
			 * unless a pooler renamed it and keeps it (then the server
			 * does not know it by our name) */
			if (!PQsendPrepare(s->conn, REPORT_STMT, sql_report, REPORT_PARAMS, NULL)) {
				pgconn_failed(s->conn, NULL, "preparing the report statement", &err);
				rc = -1;
			}
			g->steps[g->n++] = (struct step){STEP_SETUP, "preparing the report statement"};
			if (rc == 0)
				rc = send_query(s, "SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE name = '"
						REPORT_STMT "'", 0, NULL, NULL, NULL, "preparing the report statement",
						&kind, &err);
			g->steps[g->n++] = (struct step){STEP_CHECK, "preparing the report statement"};
			b->prepared = true;
		}
		if (rc == 0)
			rc = send_statements(s, x->d, b->ch, x->refused[0] ? x->refused : NULL,
					     b->prepared || b->pooled ? REPORT_STMT : NULL, g->steps, &g->n, &kind, &err);
		b->open_tx = true;
		b->open_owner = x;
		b->open_generation = x->generation;
	}
	if (rc == 0 && !PQpipelineSync(s->conn)) {
		pgconn_failed(s->conn, NULL, "sending", &err);
		rc = -1;
	}
	if (rc < 0) {
		segment_free(g);
		return batch_stop(s, &err, x, e);
	}
	if (b->segs_last != NULL)
		b->segs_last->next = g;
	else
		b->segs = g;
	b->segs_last = g;
	b->n_segs++;
	b->seg_bytes += g->bytes;
	return 0;
}

/* The Sync of the segment at the head: x's statements are in, or x goes again
 * (a serialization failure or deadlock; data the database refused: its
 * reports as rejected, as store_delivery does), or the run stops. */
static int
batch_segment_done(struct store *s, struct error *e)
{
	struct batch *b = s->batch;
	struct segment *g = b->segs;
	struct batch_entry *x = g->entry;
	int rc = 0;

	b->segs = g->next;
	if (b->segs == NULL)
		b->segs_last = NULL;
	b->n_segs--;
	b->seg_bytes -= g->bytes;
	if (!g->failed) {
		if (x != NULL)
			x->state = ENTRY_COMMITTING;
	} else if (g->fatal || x == NULL) {
		rc = batch_stop(s, &g->err, g->fatal_where, e);
	} else if (g->kind == PG_FAIL_RETRY && x->attempt < MAX_ATTEMPTS) {
		struct timespec pause = {0, (long)(20000000L * x->attempt + (rand() % 20) * 1000000L)};

		log_debug("retrying after: %s", g->err.msg);
		nanosleep(&pause, NULL);
		x->attempt++;
		rc = batch_send(s, x, e);
	} else if (g->kind == PG_FAIL_DATA && x->refused[0] == '\0' && x->d->n_reports > 0) {
		snprintf(x->refused, sizeof x->refused, "database refused the report: %s", g->err.msg);
		log_warn("%s; keeping it as rejected", g->err.msg);
		x->attempt++;
		rc = batch_send(s, x, e);
	} else {
		rc = batch_stop(s, &g->err, x, e);
	}
	segment_free(g);
	return rc;
}

static int
batch_result(struct store *s, PGresult *r, struct error *e)
{
	struct batch *b = s->batch;
	struct segment *g = b->segs;
	ExecStatusType st = PQresultStatus(r);
	const struct step *step;

	if (st == PGRES_PIPELINE_SYNC)
		return batch_segment_done(s, e);
	if (g->pos >= g->n) {
		struct error err = {ERR_NONE, ""};

		error_set(&err, ERR_BUG, "an answer nothing was sent for (%s)", PQresStatus(st));
		return batch_stop(s, &err, g->entry, e);
	}
	step = &g->steps[g->pos++];
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		bool added = PQntuples(r) > 0;
		struct batch_entry *owner = g->commit_owner;

		if (step->kind == STEP_COMMIT) {
			if (owner->generation != g->commit_generation || owner->state != ENTRY_COMMITTING)
				return 0; /* the end of a transaction that failed: it is sent again */
			if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
				struct error err = {ERR_NONE, ""};

				error_set(&err, ERR_BUG, "COMMIT answered %s", PQcmdStatus(r));
				return batch_stop(s, &err, owner, e);
			}
			owner->state = ENTRY_DONE;
		} else if (step->kind == STEP_REPORT) {
			*(added ? &g->entry->res.reports_new : &g->entry->res.reports_duplicate) += 1;
		} else if (step->kind == STEP_REJECTED) {
			*(added ? &g->entry->res.rejected_new : &g->entry->res.rejected_duplicate) += 1;
		} else if (step->kind == STEP_CHECK && !g->failed && strcmp(PQgetvalue(r, 0, 0), "0") == 0) {
			b->pooled = true;
			b->prepared = false;
		}
		return 0;
	}
	if (!g->failed) {
		g->failed = true;
		g->fatal = step->kind == STEP_COMMIT || step->kind == STEP_SETUP || step->kind == STEP_CHECK;
		g->fatal_where = step->kind == STEP_COMMIT ? g->commit_owner : g->entry;
		if (st == PGRES_PIPELINE_ABORTED) {
			g->kind = PG_FAIL_BUG;
			error_set(&g->err, ERR_BUG, "%s: aborted without an error", step->what);
		} else {
			g->kind = pgconn_failed(s->conn, r, step->what, &g->err);
			g->server_error = PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL;
		}
	}
	return 0;
}

/* Reads whatever answers have arrived, without waiting. */
static int
batch_read(struct store *s, struct error *e)
{
	struct batch *b = s->batch;
	bool input_ok = PQconsumeInput(s->conn) != 0;
	struct error lost = {ERR_NONE, ""};
	int nulls = 0;

	if (!input_ok) { /* libpq's message now, before later calls add to it */
		const struct segment *g = b->segs;

		pgconn_failed(s->conn, NULL, g != NULL && g->pos < g->n ? g->steps[g->pos].what : "COMMIT", &lost);
	}
	while (b->segs != NULL && !PQisBusy(s->conn)) {
		PGresult *r = PQgetResult(s->conn);
		int rc;

		if (r == NULL) { /* the end of one statement's answers */
			if (++nulls == 2)
				break;
			continue;
		}
		nulls = 0;
		rc = batch_result(s, r, e);
		PQclear(r);
		if (rc < 0)
			return -1;
		b = s->batch;
	}
	if (!input_ok || PQstatus(s->conn) == CONNECTION_BAD || nulls == 2) {
		struct segment *g = b->segs;
		struct error err = {ERR_NONE, ""};

		if (g != NULL && g->failed && (g->server_error || lost.cls == ERR_NONE))
			err = g->err;
		else if (lost.cls != ERR_NONE)
			err = lost;
		else if (input_ok && PQstatus(s->conn) != CONNECTION_BAD)
			error_set(&err, ERR_BUG, "the pipeline ended before its answers");
		else
			pgconn_failed(s->conn, NULL, g != NULL && g->pos < g->n ? g->steps[g->pos].what : "COMMIT",
				      &err);
		return batch_stop(s, &err, g != NULL ? g->entry : NULL, e);
	}
	batch_hand_back(b);
	return 0;
}

/* Sends what libpq holds and reads the answers as they come, until all is
 * sent and at most max_segs segments wait for their answers (and no more than
 * BATCH_BYTES of content, unless that is a single one). */
static int
batch_pump(struct store *s, size_t max_segs, struct error *e)
{
	for (;;) {
		struct batch *b = s->batch;
		int flushed = PQflush(s->conn);
		struct pollfd pfd;

		if (flushed < 0) {
			struct error err = {ERR_NONE, ""};

			pgconn_failed(s->conn, NULL, "sending", &err);
			return batch_stop(s, &err, NULL, e);
		}
		if (batch_read(s, e) < 0)
			return -1;
		if (flushed == 0 && (b->n_segs == 0 || (b->n_segs <= max_segs && (b->n_segs == 1 || b->seg_bytes <= BATCH_BYTES))))
			return 0;
		pfd.fd = PQsocket(s->conn);
		pfd.events = (short)(POLLIN | (flushed ? POLLOUT : 0));
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			struct error err = {ERR_NONE, ""};

			error_set(&err, ERR_TEMP, "waiting for the database: %s", strerror(errno));
			return batch_stop(s, &err, NULL, e);
		}
	}
}

/* Every answer in, then the last COMMIT (and the statement released) alone:
 * the session is idle, and a pooler may lend the server connection to
 * another client. Nothing may follow that Sync before its answer is read. */
static int
batch_settle(struct store *s, struct error *e)
{
	if (batch_pump(s, 0, e) < 0)
		return -1;
	if ((s->batch->open_tx || s->batch->prepared) && (batch_send(s, NULL, e) < 0 || batch_pump(s, 0, e) < 0))
		return -1;
	return 0;
}

int
store_batch_begin(struct store *s, enum source_channel ch, store_done_fn done, void *arg, struct error *e)
{
	if (s->batch != NULL) {
		error_set(e, ERR_BUG, "a batch is already running");
		return -1;
	}
	if (!PQenterPipelineMode(s->conn)) {
		pgconn_failed(s->conn, NULL, "entering pipeline mode", e);
		return -1;
	}
	if (PQsetnonblocking(s->conn, 1) != 0) {
		pgconn_failed(s->conn, NULL, "entering non-blocking mode", e);
		PQexitPipelineMode(s->conn);
		return -1;
	}
	s->batch = xcalloc(1, sizeof *s->batch);
	s->batch->ch = ch;
	s->batch->done = done;
	s->batch->arg = arg;
	return 0;
}

int
store_batch_add(struct store *s, const struct delivery *d, void *tag, struct error *e)
{
	struct batch *b = s->batch;
	struct batch_entry *x;

	if (b == NULL) {
		error_set(e, ERR_BUG, "no batch running");
		return -1;
	}
	x = xcalloc(1, sizeof *x);
	x->d = d;
	x->tag = tag;
	x->attempt = 1;
	x->bytes = delivery_bytes(d);
	if (b->last != NULL)
		b->last->next = x;
	else
		b->first = x;
	b->last = x;
	if (b->open_tx && now_ms() - b->held_since >= BATCH_HOLD_MS && batch_settle(s, e) < 0)
		return -1;
	if (batch_send(s, x, e) < 0)
		return -1;
	return batch_pump(s, BATCH_SEGMENTS - 1, e);
}

int
store_batch_flush(struct store *s, struct error *e)
{
	struct batch *b = s->batch;

	if (b == NULL) {
		error_set(e, ERR_BUG, "no batch running");
		return -1;
	}
	if (batch_settle(s, e) < 0)
		return -1;
	b = s->batch;
	if (b->first != NULL || b->open_tx || b->prepared) {
		struct error err = {ERR_NONE, ""};

		error_set(&err, ERR_BUG, "deliveries left in the batch after its last COMMIT");
		return batch_stop(s, &err, NULL, e);
	}
	batch_free(s);
	if (PQsetnonblocking(s->conn, 0) != 0 || !PQexitPipelineMode(s->conn)) {
		pgconn_failed(s->conn, NULL, "leaving pipeline mode", e);
		return -1;
	}
	return 0;
}
