/* pipeline.c - deliveries in flight on one connection.
 * Each delivery is its own transaction: BEGIN, the timeouts (SET LOCAL), its
 * statements (store.c), and a Sync, so that an error aborts that segment only.
 * What ends the transaction travels at the head of the next delivery's
 * segment: COMMIT, a Flush (its answer comes back at once), then that
 * delivery's BEGIN...; COMMIT in a transaction an error has aborted rolls it
 * back, and the next delivery starts clean. A delivery counts as stored only
 * when the answer to its COMMIT has been read. In a backfill the last COMMIT
 * goes alone, once every other answer is in (pipeline_settle).
 *
 * A single delivery (pipeline_deliver_one) is one round trip: BEGIN, its
 * statements, its own COMMIT and a Sync, sent at once. Its COMMIT is then
 * queued behind statements that may wait for a lock: when a deadline or
 * SIGTERM ends us meanwhile with 75, the server may still run it. The rule is
 * "a 75 may be followed by a commit": the MTA's redelivery is then a
 * duplicate, which the unique constraints absorb (nothing lost, nothing
 * twice). A statement that fails skips the COMMIT (the pipeline is aborted up
 * to the Sync); the transaction stays open, aborted, and a resend's COMMIT
 * ends it, as in a backfill.
 *
 * Group commit (pipeline_group_commit, a backfill): each transaction sets
 * synchronous_commit off, so its COMMIT does not wait for the WAL flush, and
 * counts as committed, not yet stored (PIPELINE_COMMITTED). Every
 * PIPELINE_GROUP deliveries, every PIPELINE_HOLD_MS and at the end, once every
 * answer is in, the last transaction sets it on again and its COMMIT is sent
 * alone: its answer means the WAL is on disk up to it, so every transaction
 * committed before it on this connection is durable too, and only then are
 * they handed back as stored. A run that stops hands back the ones committed
 * since as not stored: they may be there after all, and a rerun counts them
 * as already stored. One WAL flush for up to 256 messages instead of one each.
 *
 * Between two Syncs the session is always inside a transaction ('T' or 'E'
 * in ReadyForQuery), and a pooler in transaction mode (PgBouncer) keeps the
 * server connection linked to us: an idle ReadyForQuery comes only after a
 * COMMIT sent alone, once every other answer is in, with nothing sent behind
 * it until it is read. Implicit transactions (a Sync per delivery, no BEGIN)
 * would not do: PgBouncer releases the server connection at an idle
 * ReadyForQuery when it has seen no further Sync, even with part of the next
 * delivery already forwarded to it. While the session is held (more than one
 * delivery), the report statement is prepared once (STORE_REPORT_STMT)
 * instead of being parsed and planned for every report; it is released before
 * the COMMIT that ends the hold, and if that fails the transaction stays open
 * and the session ends with the run (a pooler closes a server connection its
 * client left inside a transaction). A pooler that renames prepared
 * statements (PgBouncer 1.21 and later with max_prepared_statements) keeps it
 * itself, as for any client: then the server does not know our name, and we
 * neither release nor prepare it again. The hold ends every PIPELINE_HOLD_MS,
 * so other clients of a small pool get their turn. Only unnamed statements
 * (or that one, released) and SET LOCAL: nothing else outlives a transaction.
 *
 * The connection is non-blocking and we send and read at the same time (poll
 * on both directions), so neither side can stall the other with full
 * buffers, the deadlock the libpq documentation warns about. At most
 * PIPELINE_SEGMENTS segments, PIPELINE_BYTES of content (or one segment of
 * any size), are in flight. */
#include "autoconf.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pgconn.h"
#include "pipeline.h"
#include "util.h"

#define PIPELINE_ATTEMPTS 5
#define PIPELINE_SEGMENTS 64
#define PIPELINE_BYTES ((size_t)8 << 20)
#define PIPELINE_HOLD_MS 500 /* then the session goes idle once, for a pooler to share it */
#define PIPELINE_GROUP 256   /* group commit: at most this many deliveries wait for a durable COMMIT */

enum pipeline_entry_state {
	PIPELINE_SENT,       /* its segment's answers are not all in */
	PIPELINE_COMMITTING, /* its statements succeeded; the answer to its COMMIT is not in */
	PIPELINE_COMMITTED,  /* group commit: committed without waiting for the disk; not durable yet */
	PIPELINE_DONE        /* committed, durably */
};

/* One delivery, from pipeline_add until its done call. */
struct pipeline_entry {
	const struct delivery *d;
	void *tag;
	enum pipeline_entry_state state;
	unsigned generation; /* segments sent for it; a resend is a new one */
	int attempt;
	size_t bytes;
	struct store_fallback fb; /* what the database refused of it as data, kept as rejected instead */
	size_t n_refused;         /* fb.refused's length (the delivery may be freed before the entry) */
	struct store_result res;
	bool try_first;    /* a single delivery of one report: it goes as its first copy (store_send_first_copy) */
	bool first_missed; /* that stored nothing (a copy is there): it goes again, the usual way */
	struct pipeline_entry *next;
};

/* What was sent between two Syncs, answered in that order. */
struct pipeline_segment {
	struct pipeline_entry *entry; /* NULL: only the last COMMIT */
	unsigned generation;
	struct pipeline_entry *commit_owner; /* when it holds a COMMIT: whose transaction that ends */
	unsigned commit_generation;
	bool commit_durable; /* that COMMIT waits for the WAL flush (synchronous_commit on) */
	bool tail_commit;    /* one round trip: entry's own COMMIT is its last step */
	struct store_step *steps;
	size_t n, pos;
	size_t bytes;
	bool failed;
	bool server_error; /* err came from the server (it has a SQLSTATE) */
	bool fatal; /* what failed was a COMMIT, BEGIN or the statement's preparation */
	const struct pipeline_entry *fatal_where;
	enum pg_failure kind;
	struct error err;
	struct store_step fail_step; /* the statement that failed first */
	struct pipeline_segment *next;
};

struct pipeline {
	struct store *store;
	PGconn *conn;
	const struct store_via *via;
	pipeline_done_fn done;
	void *arg;
	struct pipeline_entry *first, *last; /* not handed back yet, in the order added */
	struct pipeline_segment *segs, *segs_last; /* sent, Sync not read yet */
	size_t n_segs, seg_bytes;
	bool stopped;     /* every entry handed back; good only for pipeline_free */
	bool may_prepare; /* more than one delivery may come: worth preparing the report statement */
	bool open_tx;     /* the last segment sent leaves a transaction open */
	bool prepared;    /* STORE_REPORT_STMT is (being) prepared in this session, ours to release */
	bool pooled;      /* a pooler renamed it on the server: the pooler keeps it, for every hold */
	bool group_commit; /* transactions commit without waiting for the disk, every so often one durably */
	bool one_trip;     /* a single delivery: its COMMIT goes with its statements */
	size_t n_entries;  /* deliveries not handed back yet */
	long long held_since; /* when the session last left idle */
	bool held;            /* it has left idle since (a COMMIT sent alone makes it idle) */
	struct pipeline_entry *open_owner;
	unsigned open_generation;
};

/* The pause before attempt + 1 of a transaction. */
static void
pipeline_backoff(int attempt)
{
	struct timespec pause = {0, (long)(20000000L * attempt + (rand() % 20) * 1000000L)};

	nanosleep(&pause, NULL);
}

static size_t
pipeline_delivery_bytes(const struct delivery *d)
{
	size_t n = 1024;

	for (size_t i = 0; i < d->n_reports; i++)
		n += 2 * strlen(d->reports[i].report->raw_json) + 256;
	for (size_t i = 0; i < d->n_rejections; i++)
		n += d->rejections[i].raw_len + 256;
	return n;
}

static void
pipeline_entry_free(struct pipeline_entry *entry)
{
	for (size_t i = 0; i < entry->n_refused; i++)
		free(entry->fb.refused[i]);
	free(entry->fb.refused);
	free(entry);
}

static void
pipeline_segment_free(struct pipeline_segment *seg)
{
	if (seg == NULL)
		return;
	free(seg->steps);
	free(seg);
}

static void
pipeline_clear(struct pipeline *pl)
{
	while (pl->segs != NULL) {
		struct pipeline_segment *seg = pl->segs;

		pl->segs = seg->next;
		pipeline_segment_free(seg);
	}
	pl->segs_last = NULL;
	while (pl->first != NULL) {
		struct pipeline_entry *entry = pl->first;

		pl->first = entry->next;
		pipeline_entry_free(entry);
	}
	pl->last = NULL;
	pl->n_entries = 0;
}

void
pipeline_free(struct pipeline *pl)
{
	if (pl == NULL)
		return;
	pipeline_clear(pl);
	free(pl);
}

/* Hands back, in order, the deliveries at the head that are committed. */
static void
pipeline_hand_back(struct pipeline *pl)
{
	while (pl->first != NULL && pl->first->state == PIPELINE_DONE) {
		struct pipeline_entry *entry = pl->first;

		pl->first = entry->next;
		if (pl->first == NULL)
			pl->last = NULL;
		pl->n_entries--;
		pl->done(pl->arg, entry->tag, &entry->res, NULL);
		pipeline_entry_free(entry);
	}
}

/* The run stops: every delivery is handed back, the committed ones with their
 * result, the first one that is not with why (and where it happened, when
 * that was a later one), the rest with nothing. */
static int
pipeline_stop(struct pipeline *pl, const struct error *why, const struct pipeline_entry *where, struct error *e)
{
	struct error err = *why;
	bool first = true;

	if (err.cls == ERR_NONE)
		err.cls = ERR_TEMP;
	while (pl->first != NULL) {
		struct pipeline_entry *entry = pl->first;

		pl->first = entry->next;
		if (entry->state == PIPELINE_DONE) {
			pl->done(pl->arg, entry->tag, &entry->res, NULL);
		} else if (first) {
			if (where != NULL && where != entry) {
				char msg[sizeof err.msg + 16];

				snprintf(msg, sizeof msg, "%s (storing %s)", err.msg, where->d->source);
				memcpy(err.msg, msg, sizeof err.msg - 1);
				err.msg[sizeof err.msg - 1] = '\0';
			}
			pl->done(pl->arg, entry->tag, NULL, &err);
			first = false;
		} else {
			pl->done(pl->arg, entry->tag, NULL, NULL);
		}
		pipeline_entry_free(entry);
	}
	pipeline_clear(pl);
	pl->stopped = true;
	*e = err;
	return -1;
}

/* The head of a segment: the report statement released (before the last
 * COMMIT: if this fails, the transaction stays open and the session,
 * statement and all, ends with the run), then the COMMIT of the transaction
 * left open. more: a delivery's statements follow. */
static int
pipeline_send_end(struct pipeline *pl, struct pipeline_segment *seg, bool more, struct error *err)
{
	enum pg_failure kind = PG_FAIL_TEMP;
	int rc = 0;

	if (!more && pl->prepared && !pl->pooled) {
		rc = store_send_plain(pl->store, "DEALLOCATE " STORE_REPORT_STMT, "releasing the report statement",
				      &kind, err);
		seg->steps[seg->n++] = (struct store_step){STORE_STEP_SETUP, "releasing the report statement", 0};
		pl->prepared = false;
	}
	if (pl->open_tx) {
		seg->commit_owner = pl->open_owner;
		seg->commit_generation = pl->open_generation;
		seg->commit_durable = !pl->group_commit || !more;
		if (pl->group_commit && !more) { /* every answer is in: that transaction is sound */
			if (rc == 0)
				rc = store_send_plain(pl->store, "SELECT pg_catalog.set_config('synchronous_commit', 'on', true)",
						      "COMMIT", &kind, err);
			seg->steps[seg->n++] = (struct store_step){STORE_STEP_SETUP, "COMMIT", 0};
		}
		if (rc == 0)
			rc = store_send_plain(pl->store, "COMMIT", "COMMIT", &kind, err);
		seg->steps[seg->n++] = (struct store_step){STORE_STEP_COMMIT, "COMMIT", 0};
		if (rc == 0 && more && !PQsendFlushRequest(pl->conn)) {
			pgconn_failed(pl->conn, NULL, "COMMIT", err);
			rc = -1;
		}
		pl->open_tx = false;
	}
	if (!more)
		pl->held = false; /* the session goes idle after this segment */
	return rc;
}

/* Parsed and planned once for the hold, which keeps the server connection
 * (see above); released before its last COMMIT, unless a pooler renamed it
 * and keeps it (then the server does not know it by our name). */
static int
pipeline_send_prepare(struct pipeline *pl, struct pipeline_segment *seg, struct error *err)
{
	enum pg_failure kind = PG_FAIL_TEMP;
	int rc = store_send_prepare_report(pl->store, err);

	seg->steps[seg->n++] = (struct store_step){STORE_STEP_SETUP, "preparing the report statement", 0};
	if (rc == 0)
		rc = store_send_plain(pl->store, "SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE name = '"
				      STORE_REPORT_STMT "'", "preparing the report statement", &kind, err);
	seg->steps[seg->n++] = (struct store_step){STORE_STEP_CHECK, "preparing the report statement", 0};
	pl->prepared = true;
	return rc;
}

/* The rest of a segment: entry's BEGIN, timeouts and statements (the
 * timeouts with the first report's lock when it comes first and nothing is
 * prepared before it). rc: how the head went. */
static int
pipeline_send_entry(struct pipeline *pl, struct pipeline_segment *seg, struct pipeline_entry *entry, int rc,
		    struct error *err)
{
	enum pg_failure kind = PG_FAIL_TEMP;
	enum store_timeouts timeouts = pl->group_commit ? STORE_TIMEOUTS_GROUP : STORE_TIMEOUTS_LOCAL;
	bool prepare;

	if (!pl->held)
		pl->held_since = now_ms();
	pl->held = true;
	entry->generation++;
	entry->state = PIPELINE_SENT;
	memset(&entry->res, 0, sizeof entry->res);
	seg->generation = entry->generation;
	seg->bytes = entry->bytes;
	if (rc == 0)
		rc = store_send_plain(pl->store, "BEGIN", "BEGIN", &kind, err);
	seg->steps[seg->n++] = (struct store_step){STORE_STEP_SETUP, "BEGIN", 0};
	if (entry->try_first && store_delivery_first_copy(entry->d, &entry->fb)) {
		/* the timeouts before the statement that opens the tables */
		if (rc == 0)
			rc = store_send_timeouts(pl->store, &kind, err);
		seg->steps[seg->n++] = (struct store_step){STORE_STEP_PLAIN, "BEGIN", 0};
		if (rc == 0)
			rc = store_send_first_copy(pl->store, entry->d, pl->via, seg->steps, &seg->n, &kind, err);
		pl->open_tx = true;
		pl->open_owner = entry;
		pl->open_generation = entry->generation;
		return rc;
	}
	prepare = pl->may_prepare && !pl->prepared && !pl->pooled && entry->d->n_reports > 0 && entry->fb.refused == NULL;
	if (prepare || !store_delivery_locks_first(entry->d, &entry->fb)) {
		/* before the preparation, which may wait for a lock too */
		if (rc == 0)
			rc = timeouts == STORE_TIMEOUTS_GROUP ? store_send_timeouts_group(pl->store, &kind, err)
							      : store_send_timeouts(pl->store, &kind, err);
		seg->steps[seg->n++] = (struct store_step){STORE_STEP_PLAIN, "BEGIN", 0};
		timeouts = STORE_TIMEOUTS_SET;
	}
	if (rc == 0 && prepare)
		rc = pipeline_send_prepare(pl, seg, err);
	if (rc == 0)
		rc = store_send_delivery(pl->store, entry->d, pl->via, &entry->fb, timeouts,
					 pl->prepared || pl->pooled ? STORE_REPORT_STMT : NULL, seg->steps, &seg->n,
					 &kind, err);
	pl->open_tx = true;
	pl->open_owner = entry;
	pl->open_generation = entry->generation;
	return rc;
}

/* Sends one segment: the COMMIT of the transaction left open, if any, then
 * entry's statements (entry NULL: nothing more), then a Sync. */
static int
pipeline_send(struct pipeline *pl, struct pipeline_entry *entry, struct error *e)
{
	struct pipeline_segment *seg = xcalloc(1, sizeof *seg);
	struct error err = {ERR_NONE, ""};
	int rc;

	seg->steps = xcalloc(9 + (entry != NULL ? store_delivery_steps(entry->d) : 0), sizeof *seg->steps);
	seg->entry = entry;
	rc = pipeline_send_end(pl, seg, entry != NULL, &err);
	if (entry != NULL)
		rc = pipeline_send_entry(pl, seg, entry, rc, &err);
	if (entry != NULL && pl->one_trip) { /* its COMMIT right behind: see pipeline_deliver_one */
		if (rc == 0)
			rc = store_send_plain(pl->store, "COMMIT", "COMMIT", &(enum pg_failure){PG_FAIL_TEMP}, &err);
		seg->steps[seg->n++] = (struct store_step){STORE_STEP_COMMIT, "COMMIT", 0};
		seg->tail_commit = true;
		pl->open_tx = false;
		pl->held = false;
	}
	if (rc == 0 && !PQpipelineSync(pl->conn)) {
		pgconn_failed(pl->conn, NULL, "sending", &err);
		rc = -1;
	}
	if (rc < 0) {
		pipeline_segment_free(seg);
		return pipeline_stop(pl, &err, entry, e);
	}
	if (pl->segs_last != NULL)
		pl->segs_last->next = seg;
	else
		pl->segs = seg;
	pl->segs_last = seg;
	pl->n_segs++;
	pl->seg_bytes += seg->bytes;
	return 0;
}

/* Data the database refused (a SQLSTATE of class 22, 23 or 54): what of the
 * delivery goes as rejected the next time. A report that failed: that report
 * alone (the others are tried again); a rejection that failed: every text of
 * the rejections in ASCII, which any server and encoding takes. Each refusal
 * takes one more thing away, so a delivery is sent at most n_reports + 2
 * times; false when nothing is left to take (then the run stops: the
 * database refuses even that, which is no longer the message's doing). */
static bool
pipeline_fall_back(struct pipeline_entry *entry, const struct store_step *step, const struct error *err)
{
	const struct delivery *d = entry->d;

	if ((step->kind == STORE_STEP_REPORT || step->kind == STORE_STEP_LOCK || step->kind == STORE_STEP_FIRST_COPY) &&
	    step->report < d->n_reports) {
		if (entry->fb.refused == NULL) {
			entry->fb.refused = xcalloc(d->n_reports, sizeof *entry->fb.refused);
			entry->n_refused = d->n_reports;
		}
		if (entry->fb.refused[step->report] != NULL)
			return false;
		entry->fb.refused[step->report] = xasprintf("database refused the report: %s", err->msg);
		log_warn("%s: %s; keeping that report as rejected", d->source, err->msg);
		return true;
	}
	if (step->kind == STORE_STEP_REJECTED && !entry->fb.ascii) {
		entry->fb.ascii = true;
		log_warn("%s: %s; keeping it as rejected, its texts in ASCII", d->source, err->msg);
		return true;
	}
	return false;
}

/* The Sync of the segment at the head: its entry's statements are in, or it
 * goes again (a serialization failure or deadlock; data the database
 * refused: that part as rejected, pipeline_fall_back), or the run stops. */
static int
pipeline_segment_done(struct pipeline *pl, struct error *e)
{
	struct pipeline_segment *seg = pl->segs;
	struct pipeline_entry *entry = seg->entry;
	int rc = 0;

	pl->segs = seg->next;
	if (pl->segs == NULL)
		pl->segs_last = NULL;
	pl->n_segs--;
	pl->seg_bytes -= seg->bytes;
	if (seg->failed && seg->tail_commit && !seg->fatal) {
		/* its COMMIT did not run: the transaction is open, aborted; the resend's COMMIT ends it */
		pl->open_tx = true;
		pl->open_owner = entry;
		pl->open_generation = seg->generation;
	}
	if (!seg->failed && entry != NULL && entry->first_missed) {
		/* a copy of its report is stored: its transaction stored nothing; again, the usual way */
		entry->first_missed = false;
		entry->try_first = false;
		rc = pipeline_send(pl, entry, e);
	} else if (!seg->failed) {
		if (entry != NULL && entry->state != PIPELINE_DONE)
			entry->state = PIPELINE_COMMITTING;
	} else if (seg->fatal || entry == NULL) {
		rc = pipeline_stop(pl, &seg->err, seg->fatal_where, e);
	} else if (seg->kind == PG_FAIL_RETRY && entry->attempt < PIPELINE_ATTEMPTS) {
		log_debug("retrying after: %s", seg->err.msg);
		pipeline_backoff(entry->attempt);
		entry->attempt++;
		rc = pipeline_send(pl, entry, e);
	} else if (seg->kind == PG_FAIL_DATA && pipeline_fall_back(entry, &seg->fail_step, &seg->err)) {
		rc = pipeline_send(pl, entry, e);
	} else {
		rc = pipeline_stop(pl, &seg->err, entry, e);
	}
	pipeline_segment_free(seg);
	return rc;
}

/* A statement's answer that is not an error. */
static int
pipeline_answered(struct pipeline *pl, struct pipeline_segment *seg, const struct store_step *step, PGresult *r,
		  struct error *e)
{
	bool added = PQntuples(r) > 0;
	struct pipeline_entry *owner = seg->commit_owner;

	if (step->kind == STORE_STEP_COMMIT && seg->tail_commit && step == &seg->steps[seg->n - 1]) {
		if (seg->failed || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
			struct error err = {ERR_NONE, ""};

			error_set(&err, ERR_BUG, "COMMIT answered %s", PQcmdStatus(r));
			return pipeline_stop(pl, &err, seg->entry, e);
		}
		if (!seg->entry->first_missed)
			seg->entry->state = PIPELINE_DONE;
	} else if (step->kind == STORE_STEP_COMMIT) {
		if (owner->generation != seg->commit_generation || owner->state != PIPELINE_COMMITTING)
			return 0; /* the end of a transaction that failed: it is sent again */
		if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
			struct error err = {ERR_NONE, ""};

			error_set(&err, ERR_BUG, "COMMIT answered %s", PQcmdStatus(r));
			return pipeline_stop(pl, &err, owner, e);
		}
		if (!seg->commit_durable) {
			owner->state = PIPELINE_COMMITTED;
			return 0;
		}
		/* the WAL is on disk up to this COMMIT: every transaction committed before it is durable too */
		for (struct pipeline_entry *e2 = pl->first; e2 != NULL; e2 = e2->next)
			if (e2->state == PIPELINE_COMMITTED)
				e2->state = PIPELINE_DONE;
		owner->state = PIPELINE_DONE;
	} else if (step->kind == STORE_STEP_REPORT) {
		*(added ? &seg->entry->res.reports_new : &seg->entry->res.reports_duplicate) += 1;
	} else if (step->kind == STORE_STEP_FIRST_COPY) {
		if (added)
			seg->entry->res.reports_new++;
		else
			seg->entry->first_missed = true;
	} else if (step->kind == STORE_STEP_REJECTED) {
		*(added ? &seg->entry->res.rejected_new : &seg->entry->res.rejected_duplicate) += 1;
	} else if (step->kind == STORE_STEP_REDO_DELETE) {
		seg->entry->res.redo_deleted += added;
	} else if (step->kind == STORE_STEP_REDO_UPDATE) {
		seg->entry->res.redo_kept++;
		seg->entry->res.redo_reason_changed += added;
	} else if (step->kind == STORE_STEP_CHECK && !seg->failed && strcmp(PQgetvalue(r, 0, 0), "0") == 0) {
		pl->pooled = true;
		pl->prepared = false;
	}
	return 0;
}

static int
pipeline_result(struct pipeline *pl, PGresult *r, struct error *e)
{
	struct pipeline_segment *seg = pl->segs;
	ExecStatusType st = PQresultStatus(r);
	const struct store_step *step;

	if (st == PGRES_PIPELINE_SYNC)
		return pipeline_segment_done(pl, e);
	if (seg->pos >= seg->n) {
		struct error err = {ERR_NONE, ""};

		error_set(&err, ERR_BUG, "an answer nothing was sent for (%s)", PQresStatus(st));
		return pipeline_stop(pl, &err, seg->entry, e);
	}
	step = &seg->steps[seg->pos++];
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return pipeline_answered(pl, seg, step, r, e);
	if (!seg->failed) { /* the first failure; what follows it comes back aborted */
		seg->failed = true;
		seg->fail_step = *step;
		seg->fatal = step->kind == STORE_STEP_COMMIT || step->kind == STORE_STEP_SETUP ||
			     step->kind == STORE_STEP_CHECK;
		seg->fatal_where = step->kind == STORE_STEP_COMMIT ? seg->commit_owner : seg->entry;
		if (st == PGRES_PIPELINE_ABORTED) {
			seg->kind = PG_FAIL_BUG;
			error_set(&seg->err, ERR_BUG, "%s: aborted without an error", step->what);
		} else {
			seg->kind = pgconn_failed(pl->conn, r, step->what, &seg->err);
			seg->server_error = PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL;
		}
	}
	return 0;
}

/* What to say when the connection or the pipeline ended before the answers. */
static int
pipeline_lost(struct pipeline *pl, bool input_ok, const struct error *lost, struct error *e)
{
	struct pipeline_segment *seg = pl->segs;
	struct error err = {ERR_NONE, ""};

	if (seg != NULL && seg->failed && (seg->server_error || lost->cls == ERR_NONE))
		err = seg->err;
	else if (lost->cls != ERR_NONE)
		err = *lost;
	else if (input_ok && PQstatus(pl->conn) != CONNECTION_BAD)
		error_set(&err, ERR_BUG, "the pipeline ended before its answers");
	else
		pgconn_failed(pl->conn, NULL, seg != NULL && seg->pos < seg->n ? seg->steps[seg->pos].what : "COMMIT",
			      &err);
	return pipeline_stop(pl, &err, seg != NULL ? seg->entry : NULL, e);
}

/* Reads whatever answers have arrived, without waiting. */
static int
pipeline_read(struct pipeline *pl, struct error *e)
{
	bool input_ok = PQconsumeInput(pl->conn) != 0;
	struct error lost = {ERR_NONE, ""};
	int nulls = 0;

	if (!input_ok) { /* libpq's message now, before later calls add to it */
		const struct pipeline_segment *seg = pl->segs;

		pgconn_failed(pl->conn, NULL, seg != NULL && seg->pos < seg->n ? seg->steps[seg->pos].what : "COMMIT",
			      &lost);
	}
	while (pl->segs != NULL && !PQisBusy(pl->conn)) {
		PGresult *r = PQgetResult(pl->conn);
		int rc;

		if (r == NULL) { /* the end of one statement's answers */
			if (++nulls == 2)
				break;
			continue;
		}
		nulls = 0;
		rc = pipeline_result(pl, r, e);
		PQclear(r);
		if (rc < 0)
			return -1;
	}
	if (!input_ok || PQstatus(pl->conn) == CONNECTION_BAD || nulls == 2)
		return pipeline_lost(pl, input_ok, &lost, e);
	pipeline_hand_back(pl);
	return 0;
}

/* Sends what libpq can of what it holds; *flushed: 1 when some is left. */
static int
pipeline_flush(struct pipeline *pl, int *flushed, struct error *e)
{
	struct error err = {ERR_NONE, ""};

	if ((*flushed = PQflush(pl->conn)) >= 0)
		return 0;
	pgconn_failed(pl->conn, NULL, "sending", &err);
	return pipeline_stop(pl, &err, NULL, e);
}

/* Sends what libpq holds and reads the answers as they come, until all is
 * sent and at most max_segs segments wait for their answers (and no more than
 * PIPELINE_BYTES of content, unless that is a single one). */
static int
pipeline_pump(struct pipeline *pl, size_t max_segs, struct error *e)
{
	for (;;) {
		int flushed;
		struct pollfd pfd;

		if (pipeline_flush(pl, &flushed, e) < 0 || pipeline_read(pl, e) < 0)
			return -1;
		/* a segment sent again while reading (pipeline_segment_done) adds to what libpq holds */
		if (flushed == 0 && pipeline_flush(pl, &flushed, e) < 0)
			return -1;
		if (flushed == 0 && (pl->n_segs == 0 || (pl->n_segs <= max_segs &&
							 (pl->n_segs == 1 || pl->seg_bytes <= PIPELINE_BYTES))))
			return 0;
		pfd.fd = PQsocket(pl->conn);
		pfd.events = (short)(POLLIN | (flushed ? POLLOUT : 0));
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			struct error err = {ERR_NONE, ""};

			error_set(&err, ERR_TEMP, "waiting for the database: %s", strerror(errno));
			return pipeline_stop(pl, &err, NULL, e);
		}
	}
}

/* Every answer in, then the last COMMIT (and the statement released) alone:
 * the session is idle, and a pooler may lend the server connection to
 * another client. Nothing may follow that Sync before its answer is read. */
static int
pipeline_settle(struct pipeline *pl, struct error *e)
{
	if (pipeline_pump(pl, 0, e) < 0)
		return -1;
	if ((pl->open_tx || pl->prepared) && (pipeline_send(pl, NULL, e) < 0 || pipeline_pump(pl, 0, e) < 0))
		return -1;
	return 0;
}

static int
pipeline_stopped(const struct pipeline *pl, struct error *e)
{
	if (!pl->stopped)
		return 0;
	error_set(e, ERR_BUG, "the pipeline has stopped");
	return -1;
}

struct pipeline *
pipeline_begin(struct store *s, const struct store_via *via, pipeline_done_fn done, void *arg, struct error *e)
{
	PGconn *conn = store_conn(s);
	struct pipeline *pl;

	if (!PQenterPipelineMode(conn)) {
		pgconn_failed(conn, NULL, "entering pipeline mode", e);
		return NULL;
	}
	if (PQsetnonblocking(conn, 1) != 0) {
		pgconn_failed(conn, NULL, "entering non-blocking mode", e);
		PQexitPipelineMode(conn);
		return NULL;
	}
	pl = xcalloc(1, sizeof *pl);
	pl->store = s;
	pl->conn = conn;
	pl->via = via;
	pl->done = done;
	pl->arg = arg;
	pl->may_prepare = true;
	return pl;
}

void
pipeline_group_commit(struct pipeline *pl)
{
	pl->group_commit = true;
}

int
pipeline_add(struct pipeline *pl, const struct delivery *d, void *tag, struct error *e)
{
	struct pipeline_entry *entry;

	if (pipeline_stopped(pl, e) < 0)
		return -1;
	entry = xcalloc(1, sizeof *entry);
	entry->d = d;
	entry->tag = tag;
	entry->attempt = 1;
	entry->bytes = pipeline_delivery_bytes(d);
	entry->try_first = pl->one_trip && store_delivery_first_copy(d, NULL);
	if (pl->last != NULL)
		pl->last->next = entry;
	else
		pl->first = entry;
	pl->last = entry;
	pl->n_entries++;
	if (pl->open_tx &&
	    (now_ms() - pl->held_since >= PIPELINE_HOLD_MS || (pl->group_commit && pl->n_entries > PIPELINE_GROUP)) &&
	    pipeline_settle(pl, e) < 0)
		return -1;
	if (pipeline_send(pl, entry, e) < 0)
		return -1;
	return pipeline_pump(pl, PIPELINE_SEGMENTS - 1, e);
}

int
pipeline_finish(struct pipeline *pl, struct error *e)
{
	if (pipeline_stopped(pl, e) < 0 || pipeline_settle(pl, e) < 0)
		return -1;
	if (pl->first != NULL || pl->open_tx || pl->prepared) {
		struct error err = {ERR_NONE, ""};

		error_set(&err, ERR_BUG, "deliveries left in the pipeline after its last COMMIT");
		return pipeline_stop(pl, &err, NULL, e);
	}
	pl->stopped = true;
	if (PQsetnonblocking(pl->conn, 0) != 0 || !PQexitPipelineMode(pl->conn)) {
		pgconn_failed(pl->conn, NULL, "leaving pipeline mode", e);
		return -1;
	}
	return 0;
}

/* pipeline_deliver_one's done call: the result of its one delivery. */
static void
pipeline_one_done(void *arg, void *tag, const struct store_result *res, const struct error *e)
{
	(void)e;
	if (res != NULL)
		*(struct store_result *)arg = *res;
	*(bool *)tag = res != NULL;
}

int
pipeline_deliver_one(struct store *s, const struct delivery *d, const struct store_via *via,
		     struct store_result *res, struct error *e)
{
	struct pipeline *pl;
	bool stored = false;
	int rc;

	memset(res, 0, sizeof *res);
	if ((pl = pipeline_begin(s, via, pipeline_one_done, res, e)) == NULL)
		return -1;
	pl->may_prepare = false; /* one delivery: nothing to gain */
	pl->one_trip = true;
	rc = pipeline_add(pl, d, &stored, e);
	if (rc == 0)
		rc = pipeline_finish(pl, e);
	pipeline_free(pl);
	if (rc == 0 && !stored) {
		error_set(e, ERR_BUG, "a delivery committed without its answer");
		return -1;
	}
	return rc;
}
