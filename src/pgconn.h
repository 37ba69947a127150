/* pgconn.h - a libpq connection as every command opens it, and the class of
 * a failed statement, shared by store.c, summary.c and purge.c. */
#ifndef TLSRPT_PGCONN_H
#define TLSRPT_PGCONN_H

#include <libpq-fe.h>

#include "config.h"
#include "status.h"

/* How a failed statement should be handled. */
enum pg_failure {
	PG_FAIL_TEMP,   /* connection lost, timeouts, resources: may succeed later */
	PG_FAIL_RETRY,  /* serialization failure or deadlock: retry the transaction now */
	PG_FAIL_DATA,   /* the data was refused (22xxx, 23xxx, 54xxx): it will be refused again */
	PG_FAIL_CONFIG, /* schema, privileges, authentication: the administrator's */
	PG_FAIL_BUG     /* a statement sent after an ignored error */
};

/* Connects with cfg->database (NULL or "": libpq's defaults and environment),
 * a connect_timeout and our application_name; notices go to the log. NULL and
 * ERR_TEMP when the server is unreachable. */
PGconn *pgconn_open(const struct config *cfg, struct error *e);
/* The same in two halves, for a delivery to read and parse its message while
 * the server starts the session: pgconn_start sends the start-up packet and
 * returns; pgconn_complete waits for the rest (connect_timeout for each wait).
 * -1 and ERR_TEMP as above; the caller PQfinish()es the connection. */
PGconn *pgconn_start(const struct config *cfg, struct error *e);
int pgconn_complete(PGconn *conn, const struct config *cfg, struct error *e);

/* Records a failed result (res may be NULL) in e as one line with its class;
 * returns its kind. A missing schema or function says to run --init-db. */
enum pg_failure pgconn_failed(PGconn *conn, const PGresult *res, const char *what, struct error *e);

/* BEGIN [mode], with this program's statement and lock timeouts as SET LOCAL
 * (nothing outlives the transaction: PgBouncer transaction pooling). */
int pgconn_begin(PGconn *conn, const struct config *cfg, const char *mode, struct error *e);

#endif
