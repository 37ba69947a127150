/* reprocess.c - tlsrpt-ingest --reprocess: a backfill whose source is the
 * rows of tlsrpt.rejected. They are read in batches by id on a connection of
 * their own (at most REPROCESS_BATCH rows and REPROCESS_BYTES of raw copies
 * at once), up to the highest id there was at the start, so that the pieces a
 * run keeps as new rows are not read again by it; each becomes a delivery
 * (ingest.c, with the trust step for a whole mail exactly as at delivery) and
 * goes through backfill.c's pipeline, one transaction per row: its reports
 * and the DELETE of its row, or the UPDATE of its reason (store.c). */
#include "autoconf.h"

#include <glib.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfill.h"
#include "exits.h"
#include "ingest.h"
#include "log.h"
#include "pgconn.h"
#include "reprocess.h"
#include "store.h"
#include "util.h"

#define REPROCESS_BATCH 32
#define REPROCESS_BYTES ((size_t)16 << 20)
#define REPROCESS_REASON_MAX 2000

/* A raw copy that was cut (its first max_rejected_raw bytes kept, or the
 * first bytes of an input over max_message_size): it cannot be reprocessed.
 * The one place that knows what marks a cut copy (migration 1's generated
 * column: octet_length(raw) < raw_size). */
#define REPROCESS_CUT "r.raw_truncated"

/* The rows a run takes: $1 the date (or NULL), $2 the reason's text (or NULL). */
#define REPROCESS_WHERE \
	" ($1::date IS NULL OR r.received_at >= ($1::date)::timestamp AT TIME ZONE 'UTC')" \
	" AND ($2::text IS NULL OR strpos(lower(r.reason), lower($2::text)) > 0)"

static const char reprocess_sql_extent[] =
	"SELECT coalesce(max(r.id), 0)::text, (count(*) FILTER (WHERE NOT " REPROCESS_CUT "))::text"
	" FROM tlsrpt.rejected r WHERE" REPROCESS_WHERE;

/* A batch after id $3, up to id $4: at most REPROCESS_BATCH rows and $5 bytes
 * (always one row); a cut copy's bytes are not fetched. */
static const char reprocess_sql_batch[] =
	"WITH c0 AS (SELECT r.id, CASE WHEN " REPROCESS_CUT " THEN 0 ELSE octet_length(r.raw) END AS n"
	" FROM tlsrpt.rejected r WHERE r.id > $3::bigint AND r.id <= $4::bigint AND" REPROCESS_WHERE
	" ORDER BY r.id LIMIT " G_STRINGIFY(REPROCESS_BATCH) "),"
	" c AS (SELECT id, sum(n) OVER (ORDER BY id) AS upto FROM c0)"
	" SELECT r.id::text, r.source, r.message_id, r.sender, r.subject, r.filename, r.reason,"
	"  CASE WHEN " REPROCESS_CUT " THEN NULL ELSE r.raw END, (" REPROCESS_CUT ")::text,"
	"  octet_length(r.raw)::text, r.raw_size::text, to_char(r.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), r.digest"
	" FROM c JOIN tlsrpt.rejected r ON r.id = c.id"
	" WHERE c.upto <= $5::bigint OR c.id = (SELECT min(id) FROM c) ORDER BY r.id";

enum { COL_ID, COL_SOURCE, COL_MESSAGE_ID, COL_SENDER, COL_SUBJECT, COL_FILENAME, COL_REASON, COL_RAW, COL_CUT,
       COL_KEPT, COL_SIZE, COL_RECEIVED, COL_DIGEST };

struct reprocess {
	const struct config *cfg;
	PGconn *reader;
	const char *params[5];
	char after[24], upto[24], bytes[24];
	struct backfill *run;
	size_t truncated;
};

/* A column of the binary result, NULL for SQL NULL (text arrives as its bytes, NUL-terminated by libpq). */
static const char *
reprocess_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static char *
reprocess_dup(const PGresult *res, int row, int col)
{
	const char *v = reprocess_text(res, row, col);

	return v ? xstrdup(v) : NULL;
}

static enum store_channel
reprocess_channel(const char *source)
{
	return source == NULL ? STORE_CHANNEL_MAIL : strcmp(source, "file") == 0 ? STORE_CHANNEL_FILE
		: strcmp(source, "https") == 0 ? STORE_CHANNEL_HTTPS : STORE_CHANNEL_MAIL;
}

/* What the row's reason becomes: the reason of the rejection that is the
 * row's own piece again (the same digest: a whole message refused again, a
 * part refused again alone); else those of all d's rejections, each once,
 * joined by "; ". At most REPROCESS_REASON_MAX bytes (cut at a character). */
static char *
reprocess_reason(const struct delivery *d, const char *digest)
{
	struct buf b = {0};
	bool own = false;

	for (size_t i = 0; i < d->n_rejections && !own; i++)
		own = strcmp(d->rejections[i].digest, digest) == 0;
	for (size_t i = 0; i < d->n_rejections; i++) {
		bool seen = own && strcmp(d->rejections[i].digest, digest) != 0;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(d->rejections[i].reason, d->rejections[j].reason) == 0;
		if (seen)
			continue;
		buf_puts(&b, b.len ? "; " : "");
		buf_puts(&b, d->rejections[i].reason);
	}
	if (b.len == 0)
		buf_puts(&b, "no report found on reprocessing");
	if (b.len > REPROCESS_REASON_MAX) {
		b.len = REPROCESS_REASON_MAX;
		while (b.len > 0 && (b.data[b.len] & 0xC0) == 0x80)
			b.len--;
	}
	return buf_cstr(&b);
}

/* A row holding a whole mail for one broken part of it (ingest.c keeps the
 * message with its first rejected part) gives that mail's good reports and the
 * same broken part again, under the row's digest: the row stays, with that
 * part's reason, and the reports are stored beside it. Deleting the row and
 * inserting the part anew would change tlsrpt.rejected on every run. */
static void
reprocess_find_own(struct delivery *d, const char *digest)
{
	for (size_t i = 0; i < d->n_rejections; i++)
		if (strcmp(d->rejections[i].digest, digest) == 0) {
			d->rejected_stays = true;
			free(d->rejected_reason);
			d->rejected_reason = xstrdup(d->rejections[i].reason);
			return;
		}
}

/* No report may come out of d: it stays rejected with reason. */
static void
reprocess_keep(struct delivery *d, const char *reason)
{
	for (size_t i = 0; i < d->n_reports; i++) {
		report_free(d->reports[i].report);
		free(d->reports[i].filename);
	}
	d->n_reports = 0;
	free(d->rejected_reason);
	d->rejected_reason = xstrdup(reason);
}

/* Row i of res as a delivery: the whole mail through ingest.c (its origin
 * checked again); a piece (a report part, a report's JSON, a file's content)
 * with the mail's Message-ID, From, Subject and the part's file name from the
 * row. -1: ERR_TEMP (e). */
static int
reprocess_prepare(const struct reprocess *rp, const PGresult *res, int i, struct delivery **out, struct error *e)
{
	const struct limits *lim = &rp->cfg->limits;
	const unsigned char *raw = (const unsigned char *)PQgetvalue(res, i, COL_RAW);
	size_t len = (size_t)PQgetlength(res, i, COL_RAW);
	enum store_channel channel = reprocess_channel(reprocess_text(res, i, COL_SOURCE));
	char *label = xasprintf("rejected#%s", PQgetvalue(res, i, COL_ID));
	struct delivery *d;

	*out = NULL;
	if (channel == STORE_CHANNEL_HTTPS && ingest_sniff(raw, len) == INPUT_MAIL) {
		/* a posted body that is neither gzip nor JSON: it stays what it was */
		d = delivery_rejected(raw, len, len, label, PQgetvalue(res, i, COL_REASON), lim);
	} else if (ingest_bytes(raw, len, label, lim, &d, e) < 0) {
		delivery_free(d);
		free(label);
		return -1;
	}
	free(label);
	d->rejected_id = g_ascii_strtoll(PQgetvalue(res, i, COL_ID), NULL, 10);
	d->rejected_source = (int)channel;
	if (d->kind != INPUT_MAIL) {
		if (d->message_id == NULL)
			d->message_id = reprocess_dup(res, i, COL_MESSAGE_ID);
		if (d->sender == NULL)
			d->sender = reprocess_dup(res, i, COL_SENDER);
		if (d->subject == NULL)
			d->subject = reprocess_dup(res, i, COL_SUBJECT);
		for (size_t k = 0; k < d->n_reports; k++) {
			free(d->reports[k].filename);
			d->reports[k].filename = reprocess_dup(res, i, COL_FILENAME);
		}
		if (channel == STORE_CHANNEL_MAIL && lim->trust.policy == DKIM_POLICY_REQUIRE && d->n_reports > 0)
			reprocess_keep(d, "a piece of a mail, not the whole message: its origin cannot be checked "
					  "again (dkim_policy = require)");
	}
	if (d->n_reports == 0 && d->rejected_reason == NULL)
		d->rejected_reason = reprocess_reason(d, PQgetvalue(res, i, COL_DIGEST));
	else if (d->n_reports > 0)
		reprocess_find_own(d, PQgetvalue(res, i, COL_DIGEST));
	*out = d;
	return 0;
}

/* A cut copy: listed, left alone. */
static void
reprocess_list_cut(struct reprocess *rp, const PGresult *res, int i)
{
	rp->truncated++;
	backfill_progress_clear();
	printf("not reprocessable: rejected row %s (received %s, %s of %s bytes kept): %s\n",
	       PQgetvalue(res, i, COL_ID), PQgetvalue(res, i, COL_RECEIVED), PQgetvalue(res, i, COL_KEPT),
	       PQgetvalue(res, i, COL_SIZE), PQgetvalue(res, i, COL_REASON));
	log_info("not reprocessable: source=rejected#%s truncated raw copy (%s of %s bytes)",
		 PQgetvalue(res, i, COL_ID), PQgetvalue(res, i, COL_KEPT), PQgetvalue(res, i, COL_SIZE));
}

static PGresult *
reprocess_query(struct reprocess *rp, const char *sql, int n, int format, const char *what, struct error *e)
{
	PGresult *res;

	alarm(rp->cfg->deadline);
	res = PQexecParams(rp->reader, sql, n, NULL, rp->params, NULL, NULL, format);
	alarm(0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_failed(rp->reader, res, what, e);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* One batch. 0: go on; 1: none left; else an exit status (the run has ended). */
static int
reprocess_batch(struct reprocess *rp)
{
	struct error e = {ERR_NONE, ""};
	PGresult *res = reprocess_query(rp, reprocess_sql_batch, 5, 1, "reading tlsrpt.rejected", &e);
	struct backfill_tally t;
	int n, status = 0;

	if (res == NULL) {
		status = backfill_feed_end(rp->run, 0, &t);
		rp->run = NULL;
		return status ? status : exits_fail_error(&e);
	}
	if ((n = PQntuples(res)) == 0) {
		PQclear(res);
		return 1;
	}
	for (int i = 0; i < n && status == 0; i++) {
		struct delivery *d;

		if (strcmp(PQgetvalue(res, i, COL_CUT), "true") == 0) {
			reprocess_list_cut(rp, res, i);
		} else if (reprocess_prepare(rp, res, i, &d, &e) < 0) {
			/* what came before it first, as in a FILE run */
			if ((status = backfill_feed_end(rp->run, 0, &t)) == 0)
				status = exits_fail(e.cls, "rejected#%s: %s; the rows before it are done; run the same "
						    "command again to go on", PQgetvalue(res, i, COL_ID), e.msg);
			rp->run = NULL;
		} else if ((status = backfill_feed(rp->run, d)) != 0) {
			backfill_feed_end(rp->run, status, &t);
			rp->run = NULL;
		}
	}
	snprintf(rp->after, sizeof rp->after, "%s", PQgetvalue(res, n - 1, COL_ID));
	PQclear(res);
	return status;
}

static void
reprocess_summary(const struct reprocess *rp, const struct backfill_tally *t)
{
	printf("tlsrpt-ingest: %zu rejected row(s) reprocessed: %zu gave reports (%zu report(s) stored, %zu already "
	       "stored), %zu still rejected (%zu with a new reason)", t->inputs, t->deleted, t->reports_new,
	       t->reports_dup, t->kept, t->reason_changed);
	if (t->rejected_new > 0)
		printf(", %zu piece(s) of them kept as rejected rows of their own", t->rejected_new);
	if (rp->truncated > 0)
		printf("; %zu truncated, not reprocessable (listed above)", rp->truncated);
	printf("; %.1f s, %.0f rows/s\n", t->secs, t->secs > 0 ? (double)t->inputs / t->secs : 0.0);
}

bool
reprocess_date_ok(const char *since)
{
	unsigned y, m, d;
	char end;

	return strlen(since) == 10 && sscanf(since, "%4u-%2u-%2u%c", &y, &m, &d, &end) == 3 && since[4] == '-' &&
	       since[7] == '-' && g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y);
}

int
reprocess_run(const struct config *cfg, const char *since, const char *reason, bool verbose)
{
	struct reprocess rp = {.cfg = cfg};
	struct error e = {ERR_NONE, ""};
	struct backfill_tally t;
	PGresult *res;
	int status = 0;

	rp.params[0] = since;
	rp.params[1] = reason;
	rp.params[2] = rp.after;
	rp.params[3] = rp.upto;
	rp.params[4] = rp.bytes;
	snprintf(rp.after, sizeof rp.after, "0");
	snprintf(rp.bytes, sizeof rp.bytes, "%zu", REPROCESS_BYTES);
	alarm(cfg->deadline);
	rp.reader = pgconn_open(cfg, &e);
	alarm(0);
	if (rp.reader == NULL)
		return exits_fail_error(&e);
	if ((res = reprocess_query(&rp, reprocess_sql_extent, 2, 0, "reading tlsrpt.rejected", &e)) == NULL) {
		PQfinish(rp.reader);
		return exits_fail_error(&e);
	}
	snprintf(rp.upto, sizeof rp.upto, "%s", PQgetvalue(res, 0, 0));
	rp.run = backfill_feed_begin(cfg, (size_t)g_ascii_strtoull(PQgetvalue(res, 0, 1), NULL, 10), verbose,
				     &status);
	PQclear(res);
	while (status == 0)
		status = reprocess_batch(&rp);
	if (status == 1)
		status = 0;
	if (rp.run != NULL)
		status = backfill_feed_end(rp.run, status, &t);
	if (status == 0)
		reprocess_summary(&rp, &t);
	PQfinish(rp.reader);
	return status;
}
