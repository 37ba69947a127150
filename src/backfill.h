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

/* Wipes the progress line, before anything else is written to stderr. */
void backfill_progress_clear(void);

#endif
