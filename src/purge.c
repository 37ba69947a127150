/* purge.c - tlsrpt-ingest --purge-older-than DAYS. The cut-off is fixed once,
 * then reports (their policies and failures go by ON DELETE CASCADE) and
 * rejected rows are deleted a batch at a time, each batch its own short
 * transaction with the configured statement and lock timeouts, so ingestion
 * never waits long behind a purge. After each batch the purge pauses as long
 * as the batch took: on a small server it takes at most half of a CPU and of
 * the disk from the deliveries running beside it. */
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
	" gone AS (DELETE FROM tlsrpt.report WHERE id IN (SELECT id FROM doomed) RETURNING id)"
	" SELECT (SELECT count(*) FROM gone),"
	" (SELECT count(*) FROM pol),"
	" (SELECT count(*) FROM tlsrpt.failure WHERE policy IN (SELECT id FROM pol))";

static const char sql_rejected[] =
	"WITH doomed AS ("
	" SELECT id FROM tlsrpt.rejected WHERE received_at < $1::timestamptz"
	" ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED),"
	" gone AS (DELETE FROM tlsrpt.rejected WHERE id IN (SELECT id FROM doomed) RETURNING id)"
	" SELECT (SELECT count(*) FROM gone), 0, 0";

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
	log_info("purged: reports=%lld policies=%lld failures=%lld rejected=%lld older than %u days (before %s)",
		 res->reports, res->policies, res->failures, res->rejected, days, res->cutoff);
	rc = 0;
out:
	PQfinish(conn);
	return rc;
}
