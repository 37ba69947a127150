/* summary.h - tlsrpt-ingest --summary: what the reports of the last days say,
 * per policy domain, readable in 80 columns. */
#ifndef TLSRPT_SUMMARY_H
#define TLSRPT_SUMMARY_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "status.h"

/* Prints the summary of the reports whose period ended within the last days
 * days (domain: only that policy domain, NULL: all; authenticated_only: only
 * reports with an aligned DKIM pass) to out. ERR_CONFIG when the
 * schema is missing or too old, ERR_TEMP for database trouble. */
int summary_print(const struct config *cfg, unsigned days, const char *domain, bool authenticated_only,
		  FILE *out, struct error *e);

/* The advice for a result type (RFC 8460 section 4.3), one line, or NULL. */
const char *summary_advice(const char *result_type);

#endif
