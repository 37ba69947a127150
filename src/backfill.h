/* backfill.h - a FILE run: every message under the FILE arguments (files,
 * mbox files, Maildirs, directories; "-" standard input) stored on one
 * connection, several in flight at once, with a progress line on a terminal
 * and a closing summary; or, with --dry-run, printed as JSON lines. */
#ifndef TLSRPT_BACKFILL_H
#define TLSRPT_BACKFILL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* paths[0..n): the FILE arguments (n 0 with dry_run: standard input).
 * Returns the exit status (exits.h). */
int backfill_run(const struct config *cfg, char *const *paths, size_t n, bool dry_run, bool verbose);

/* A run whose deliveries are prepared elsewhere (reprocess.c: the rows of
 * tlsrpt.rejected): the same pipeline, progress line ("rows"; total 0:
 * unknown) and exit statuses as a FILE run. backfill_feed_begin's *status
 * is an exit status (0: go on; else only backfill_feed_end may follow). */
struct backfill;
struct backfill_tally {
	size_t inputs, reports_new, reports_dup;
	size_t rejected_new;   /* pieces kept as rejected rows of their own */
	size_t deleted, kept, reason_changed; /* the rows: deleted (reports came out), kept */
	double secs;
};
struct backfill *backfill_feed_begin(const struct config *cfg, size_t total, bool verbose, int *status);
/* Hands d (struct delivery's rejected_id set) to the pipeline, which owns it
 * now. Returns an exit status, 0 to go on. */
struct delivery;
int backfill_feed(struct backfill *run, struct delivery *d);
/* Commits what is in flight (unless status, the run's so far, is not 0),
 * frees run, fills t; returns the exit status. */
int backfill_feed_end(struct backfill *run, int status, struct backfill_tally *t);

/* Wipes the progress line, before anything else is written to stderr. */
void backfill_progress_clear(void);

#endif
