/* purge.c - tlsrpt-ingest --purge-older-than DAYS. The cut-off is fixed once,
 * then reports (their policies and failures go by ON DELETE CASCADE) and
 * rejected rows are deleted a batch at a time, each batch its own short
 * transaction with the configured statement and lock timeouts, so ingestion
 * never waits long behind a purge. After each batch the purge pauses as long
 * as the batch took: on a small server it takes at most half of a CPU and of
 * the disk from the deliveries running beside it. A partitioned schema
 * (--init-db --partitioned) drops the whole months before the cut-off first,
 * and gets its months ahead made. */
#include "autoconf.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "purge.h"
#include "pgconn.h"

static const char sql_cutoff[] = "SELECT now() - make_interval(days => $1::integer)";

/* Counts what cascades before it goes: one snapshot for the whole statement. */
static const char sql_reports[] =
	"WITH doomed AS ("
	" SELECT id FROM tlsrpt.report"
	" WHERE coalesce(date_end, received_at) < $1::timestamptz"
	" ORDER BY coalesce(date_end, received_at) LIMIT $2::integer FOR UPDATE SKIP LOCKED),"
	" pol AS (SELECT id FROM tlsrpt.policy WHERE report IN (SELECT id FROM doomed)),"
	" gone AS (DELETE FROM tlsrpt.report WHERE id IN (SELECT id FROM doomed) RETURNING id),"
	/* a partitioned failure has no foreign key from failure_fact (src/schema.c): its rows go here */
	" ff AS (DELETE FROM tlsrpt.failure_fact WHERE coalesce(date_end, received_at) < $1::timestamptz"
	"  AND report IN (SELECT id FROM doomed))"
	" SELECT (SELECT count(*) FROM gone),"
	" (SELECT count(*) FROM pol),"
	" (SELECT count(*) FROM tlsrpt.failure WHERE policy IN (SELECT id FROM pol))";

static const char sql_rejected[] =
	"WITH doomed AS ("
	" SELECT id FROM tlsrpt.rejected WHERE received_at < $1::timestamptz"
	" ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED),"
	" gone AS (DELETE FROM tlsrpt.rejected WHERE id IN (SELECT id FROM doomed) RETURNING id)"
	" SELECT (SELECT count(*) FROM gone), 0, 0";

/* A partitioned schema (--init-db --partitioned): whole months before the
 * cut-off go by DETACH and DROP, one month a transaction; the rows of the
 * month the cut-off falls in and of the DEFAULT partition go by batches as
 * in a plain schema. Empty on a plain schema. */
static const char sql_months[] = "SELECT m::text FROM tlsrpt.partition_expired($1::timestamptz) AS m";
static const char sql_month_drop[] = "SELECT reports, policies, failures FROM tlsrpt.partition_drop($1::date)";
/* and the months ahead, as --init-db makes them (this runs daily from cron) */
static const char sql_months_ahead[] = "SELECT tlsrpt.partition_create((now() AT TIME ZONE 'UTC')::date)";
/* autovacuum never analyzes a partitioned table itself (only its partitions):
 * without statistics on the parents the planner takes them for large and the
 * views' plans go wrong (seconds instead of milliseconds); the daily purge does it,
 * every time (migration 12: ANALYZE of each parent and its partitions; nothing on a plain schema) */
static const char sql_analyze[] = "DO $a$ BEGIN PERFORM tlsrpt.analyze_partitioned(true); END $a$";

static int
exec_cmd(PGconn *conn, const char *sql, const char *what, struct error *e)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		pgconn_failed(conn, res, what, e);
	PQclear(res);
	return ok ? 0 : -1;
}

static double
now_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* As long as the batch that started at start took, at most a second. */
static void
yield_since(double start)
{
	double took = now_seconds() - start;
	struct timespec pause;

	if (took > 1.0)
		took = 1.0;
	if (took <= 0)
		return;
	pause.tv_sec = (time_t)took;
	pause.tv_nsec = (long)((took - (double)pause.tv_sec) * 1e9);
	nanosleep(&pause, NULL);
}

/* One batch in one transaction; *n[0..2] get the counts of the batch. */
static int
batch_once(PGconn *conn, const struct config *cfg, const char *sql, const char *const *params,
	   long long n[3], struct error *e)
{
	PGresult *res;

	if (pgconn_begin(conn, cfg, NULL, e) < 0)
		return -1;
	res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pgconn_failed(conn, res, "purging", e);
		PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	for (int i = 0; i < 3; i++)
		n[i] = strtoll(PQgetvalue(res, 0, i), NULL, 10);
	PQclear(res);
	return exec_cmd(conn, "COMMIT", "COMMIT", e);
}

/* The whole months before the cut-off, each its own transaction. */
static int
purge_months(PGconn *conn, const struct config *cfg, const char *cutoff, struct purge_result *out,
	     struct error *e)
{
	const char *params[1] = {cutoff};
	PGresult *months = PQexecParams(conn, sql_months, 1, NULL, params, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(months) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, months, "listing the months to drop", e);
		PQclear(months);
		return -1;
	}
	for (int i = 0; i < PQntuples(months) && rc == 0; i++) {
		const char *month[1] = {PQgetvalue(months, i, 0)};
		PGresult *r;

		if (pgconn_begin(conn, cfg, NULL, e) < 0) {
			rc = -1;
			break;
		}
		r = PQexecParams(conn, sql_month_drop, 1, NULL, month, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			pgconn_failed(conn, r, "dropping a month", e);
			PQclear(r);
			PQclear(PQexec(conn, "ROLLBACK"));
			rc = -1;
			break;
		}
		out->reports += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		out->policies += strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		out->failures += strtoll(PQgetvalue(r, 0, 2), NULL, 10);
		PQclear(r);
		if ((rc = exec_cmd(conn, "COMMIT", "COMMIT", e)) == 0)
			log_info("purge: month %.7s dropped (its report, policy and failure partitions)", month[0]);
	}
	PQclear(months);
	return rc;
}

int
purge_older_than(const struct config *cfg, unsigned days, unsigned batch, struct purge_result *res,
		 struct error *e)
{
	char dtext[16], btext[16];
	const char *params[2] = {dtext, btext};
	PGconn *conn;
	PGresult *r;
	long long n[3];
	int rc = -1;

	memset(res, 0, sizeof *res);
	if ((conn = pgconn_open(cfg, e)) == NULL)
		return -1;
	snprintf(dtext, sizeof dtext, "%u", days);
	snprintf(btext, sizeof btext, "%u", batch ? batch : PURGE_BATCH);
	r = PQexecParams(conn, sql_cutoff, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, r, "purge cut-off", e);
		PQclear(r);
		goto out;
	}
	snprintf(res->cutoff, sizeof res->cutoff, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	params[0] = res->cutoff; /* the same instant for every batch */
	if (purge_months(conn, cfg, res->cutoff, res, e) < 0)
		goto out;

	do {
		double start = now_seconds();

		if (batch_once(conn, cfg, sql_reports, params, n, e) < 0)
			goto out;
		if (n[0] > 0)
			yield_since(start);
		res->reports += n[0];
		res->policies += n[1];
		res->failures += n[2];
		if (n[0] > 0)
			log_debug("purge: %lld reports deleted in this batch", n[0]);
	} while (n[0] > 0);
	do {
		if (batch_once(conn, cfg, sql_rejected, params, n, e) < 0)
			goto out;
		res->rejected += n[0];
	} while (n[0] > 0);
	if (pgconn_begin(conn, cfg, NULL, e) < 0)
		goto out;
	r = PQexec(conn, sql_months_ahead);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, r, "creating the months ahead", e);
		PQclear(r);
		PQclear(PQexec(conn, "ROLLBACK"));
		goto out;
	}
	PQclear(r);
	if (exec_cmd(conn, "COMMIT", "COMMIT", e) < 0 || exec_cmd(conn, sql_analyze, "analyzing the partitioned tables", e) < 0)
		goto out;
	log_info("purged: reports=%lld policies=%lld failures=%lld rejected=%lld older than %u days (before %s)",
		 res->reports, res->policies, res->failures, res->rejected, days, res->cutoff);
	rc = 0;
out:
	PQfinish(conn);
	return rc;
}
