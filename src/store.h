/* store.h - the statements of one delivery: its reports (each with its
 * policies and failure rows, one statement) and its rejections, every value a
 * parameter, duplicates absorbed by the database (ON CONFLICT DO NOTHING).
 * pipeline.c sends them, one transaction per delivery. */
#ifndef TLSRPT_STORE_H
#define TLSRPT_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "config.h"
#include "ingest.h"
#include "pgconn.h"
#include "status.h"

struct store;

/* How a delivery reached us: the report's and the rejected row's source column. */
enum store_channel { STORE_CHANNEL_MAIL, STORE_CHANNEL_FILE, STORE_CHANNEL_HTTPS };

struct store_via {
	enum store_channel channel;
	const char *sender; /* NULL: the delivery's own (From); https: who posted it */
};

struct store_result {
	size_t reports_new;
	size_t reports_duplicate;
	size_t rejected_new;
	size_t rejected_duplicate;
};

/* Connects (conninfo NULL or "": libpq defaults and environment). Notices go
 * to the log, never to stdout/stderr. ERR_TEMP when the server is unreachable. */
int store_open(struct store **out, const struct config *cfg, struct error *e);
/* The same in two halves (pgconn_start): store_ready completes the
 * connection, at once when store_open made it. Until then only store_close. */
int store_open_start(struct store **out, const struct config *cfg, struct error *e);
int store_ready(struct store *s, const struct config *cfg, struct error *e);
void store_close(struct store *s);
PGconn *store_conn(const struct store *s);

/* What each statement sent is, for reading its answer. */
enum store_step_kind {
	STORE_STEP_PLAIN,    /* BEGIN, the timeouts */
	STORE_STEP_REPORT,   /* a report: a row back when it is new */
	STORE_STEP_REJECTED, /* a rejection: a row back when it is new */
	STORE_STEP_COMMIT,
	STORE_STEP_SETUP,    /* preparing or releasing the report statement */
	STORE_STEP_CHECK     /* whether the report statement is known by our name */
};

struct store_step {
	enum store_step_kind kind;
	const char *what; /* for the error message */
};

/* The name the report statement is prepared under while a session is held. */
#define STORE_REPORT_STMT "tlsrpt_ingest_report"

/* Steps store_send_delivery records for d, at most. */
size_t store_delivery_steps(const struct delivery *d);

/* Sends a statement without parameters (pipeline mode: its answer comes later). */
int store_send_plain(struct store *s, const char *sql, const char *what, enum pg_failure *kind, struct error *e);

/* Sends this program's statement and lock timeouts as SET LOCAL: right after
 * BEGIN, before anything that may wait for a lock (preparing the report
 * statement does). */
int store_send_timeouts(struct store *s, enum pg_failure *kind, struct error *e);
/* The same with synchronous_commit off for the transaction (group commit). */
int store_send_timeouts_group(struct store *s, enum pg_failure *kind, struct error *e);

/* Sends a delivery's statements (after BEGIN and the timeouts): one
 * statement per report (refused not NULL: the database refused one, each
 * report is kept as a rejection with that reason instead), one per rejection.
 * stmt: the name the report statement is prepared under, NULL to send its
 * text. One step each is recorded in steps from *n on. */
int store_send_delivery(struct store *s, const struct delivery *d, const struct store_via *via, const char *refused,
			const char *stmt, struct store_step *steps, size_t *n, enum pg_failure *kind, struct error *e);

/* Prepares the report statement as STORE_REPORT_STMT (pipeline mode). */
int store_send_prepare_report(struct store *s, struct error *e);

#endif
