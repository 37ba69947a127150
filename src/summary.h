/* summary.h - tlsrpt-ingest --summary: what the reports of the last days say,
 * per policy domain, readable in 80 columns; and the small libpq helpers the
 * administrative commands (--summary, --purge-older-than) share. */
#ifndef TLSRPT_SUMMARY_H
#define TLSRPT_SUMMARY_H

#include <stdio.h>

#include "config.h"
#include "status.h"

struct pg_conn;

/* Prints the summary of the reports whose period ended within the last days
 * days (domain: only that policy domain, NULL: all) to out. ERR_CONFIG when the
 * schema is missing or too old, ERR_TEMP for database trouble. */
int summary_print(const struct config *cfg, unsigned days, const char *domain, FILE *out,
		  struct error *e);

/* The advice for a result type (RFC 8460 section 4.3), one line, or NULL. */
const char *summary_advice(const char *result_type);

/* A connection for an administrative command (cfg->database, else libpq's
 * defaults and environment); NULL and ERR_TEMP when the server is unreachable. */
struct pg_conn *admin_connect(const struct config *cfg, struct error *e);
/* Records a failed statement in e, classified as store.c does: ERR_CONFIG for
 * a missing schema or privilege trouble, ERR_TEMP for the rest. */
struct pg_result;
void admin_failed(struct pg_conn *conn, const struct pg_result *res, const char *what,
		  struct error *e);

#endif
