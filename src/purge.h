/* purge.h - tlsrpt-ingest --purge-older-than: retention, in small transactions. */
#ifndef TLSRPT_PURGE_H
#define TLSRPT_PURGE_H

#include "config.h"
#include "status.h"

#define PURGE_BATCH 1000

struct purge_result {
	long long reports;  /* with them, by ON DELETE CASCADE: */
	long long policies;
	long long failures;
	long long rejected;
	char cutoff[64];    /* now() - days, as the server printed it */
};

/* Deletes the reports whose date_end (received_at when date_end is NULL) is
 * older than days days, with their policies and failures, and the rejected
 * rows received before then: batch ids per transaction, rows another session
 * holds skipped. *res counts what was deleted, also on failure (the batches
 * committed stay committed). ERR_TEMP/ERR_CONFIG as for --summary. */
int purge_older_than(const struct config *cfg, unsigned days, unsigned batch, struct purge_result *res,
		     struct error *e);

#endif
