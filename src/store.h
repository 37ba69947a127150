/* store.h - the statements of one delivery: its reports (each with its
 * policies and failure rows, one statement) and its rejections, every value a
 * parameter, duplicates absorbed by the database (ON CONFLICT DO NOTHING).
 * pipeline.c sends them, one transaction per delivery. */
#ifndef TLSRPT_STORE_H
#define TLSRPT_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
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
	/* a reprocess (struct delivery's rejected_id): its row deleted (reports
	 * came out of it), or kept, with a reason that changed or not */
	size_t redo_deleted;
	size_t redo_kept;
	size_t redo_reason_changed;
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
	STORE_STEP_LOCK,     /* the lock before a report's statement (its report's, as STORE_STEP_REPORT) */
	STORE_STEP_REPORT,   /* a report: a row back when it is new */
	STORE_STEP_FIRST_COPY, /* a report as its first copy: a row back when stored, none when a copy is there */
	STORE_STEP_REJECTED, /* a rejection: a row back when it is new */
	STORE_STEP_COMMIT,
	STORE_STEP_SETUP,    /* preparing or releasing the report statement */
	STORE_STEP_CHECK,    /* whether the report statement is known by our name */
	STORE_STEP_REDO_DELETE, /* a reprocessed rejected row deleted: a row back when it was there */
	STORE_STEP_REDO_UPDATE  /* a reprocessed rejected row kept: a row back when its reason changed */
};

struct store_step {
	enum store_step_kind kind;
	const char *what; /* for the error message */
	size_t report;    /* STORE_STEP_REPORT and _LOCK: which of the delivery's reports */
};

/* What a delivery's statements fall back to after the database refused some
 * of it as data (pipeline.c sends it again, each time with more of it kept
 * as rejected): refused[i] not NULL: report i goes as a rejection with that
 * reason; ascii: every text of a rejection is written in ASCII (escapes for
 * the rest), which any server encoding takes. NULL: everything as it is. */
struct store_fallback {
	char **refused; /* d->n_reports reasons, or NULL */
	bool ascii;
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

/* Whether a transaction's timeouts are set already, or still to be set by
 * its first statement, as store_send_timeouts or _group would. */
enum store_timeouts { STORE_TIMEOUTS_SET, STORE_TIMEOUTS_LOCAL, STORE_TIMEOUTS_GROUP };

/* True when d's first statement is a report's lock (store_send_delivery),
 * which can set the transaction's timeouts as well. */
bool store_delivery_locks_first(const struct delivery *d, const struct store_fallback *fb);

/* Sends a delivery's statements (after BEGIN and the timeouts, or with
 * timeouts not STORE_TIMEOUTS_SET the first of them sets them): two per
 * report, its identity's lock and the report statement (fb, when not NULL:
 * the reports the database refused are kept as rejections instead, see
 * struct store_fallback), one per rejection. Every rejection's texts are mended (valid UTF-8) on the way.
 * A reprocessed one (d->rejected_id) first deletes its rejected row when
 * reports came out of it and none was refused; else it only updates that
 * row's reason (to the first refusal's), and nothing else is stored.
 * stmt: the name the report statement is prepared under, NULL to send its
 * text. One step each is recorded in steps from *n on. */
int store_send_delivery(struct store *s, const struct delivery *d, const struct store_via *via,
			const struct store_fallback *fb, enum store_timeouts timeouts,
			const char *stmt, struct store_step *steps, size_t *n, enum pg_failure *kind, struct error *e);

/* True when d may go as the first copy of its report (store_send_first_copy):
 * it is one report with a complete identity, and nothing else. */
bool store_delivery_first_copy(const struct delivery *d, const struct store_fallback *fb);

/* Sends d's report as the first copy of its report (migration 14), after
 * BEGIN and the timeouts: one statement that takes the identity's lock and
 * stores the report, not shadowed, unless any copy of it is stored already;
 * then it stores nothing (no row back) and the delivery is to go again in a
 * new transaction through store_send_delivery, which decides against the
 * copies there. One step. */
int store_send_first_copy(struct store *s, const struct delivery *d, const struct store_via *via,
			  struct store_step *steps, size_t *n, enum pg_failure *kind, struct error *e);

/* Prepares the report statement as STORE_REPORT_STMT (pipeline mode). */
int store_send_prepare_report(struct store *s, struct error *e);

#endif
