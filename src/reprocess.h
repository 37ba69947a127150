/* reprocess.h - tlsrpt-ingest --reprocess: the raw copies kept in
 * tlsrpt.rejected run again through today's code (a fixed parser, a raised
 * limit, a corrected our_domains). A row that now yields reports is stored
 * and deleted in one transaction; the rest stays, with the new reason. */
#ifndef TLSRPT_REPROCESS_H
#define TLSRPT_REPROCESS_H

#include <stdbool.h>

#include "config.h"

/* since: "YYYY-MM-DD" (received on or after that UTC day) or NULL; reason:
 * only rows whose reason contains it (case-insensitive), or NULL. Returns
 * the exit status, as for a FILE run (exits.h). */
int reprocess_run(const struct config *cfg, const char *since, const char *reason, bool verbose);

/* since is a date reprocess_run takes. */
bool reprocess_date_ok(const char *since);

#endif
