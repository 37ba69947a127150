/* metrics.h - tlsrpt-ingest --metrics: the figures a monitoring system
 * watches, in Prometheus' text exposition format (for node_exporter's
 * textfile collector: contrib/cron.d-tlsrpt-ingest writes them atomically). */
#ifndef TLSRPT_METRICS_H
#define TLSRPT_METRICS_H

#include <stdio.h>

#include "config.h"
#include "status.h"
#include "util.h"

/* Reads every figure in one snapshot, then writes them all to out (nothing
 * when a query failed). ERR_CONFIG when the schema is missing or too old,
 * ERR_TEMP for database trouble. */
int metrics_print(const struct config *cfg, FILE *out, struct error *e);

/* Appends s as a label value of the text format: \ " and newline escaped,
 * invalid UTF-8 mended (U+FFFD). */
void metrics_label_value(struct buf *b, const char *s);

#endif
