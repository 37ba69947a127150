/* config.h - settings from defaults, the config file and the command line. */
#ifndef TLSRPT_CONFIG_H
#define TLSRPT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "status.h"

/* Who a report mail really comes from (origin.h, doc/trust.md). Zero is the
 * default: nothing checked, everything accepted, every domain ours. */
enum trust_mode { TRUST_NONE = 0, TRUST_AUTH_RESULTS, TRUST_DKIM_VERIFY };
enum dkim_policy { DKIM_POLICY_ACCEPT = 0, DKIM_POLICY_REQUIRE };

struct trust {
	enum trust_mode mode;    /* trust = none | authentication-results | dkim-verify */
	enum dkim_policy policy; /* dkim_policy = accept | require */
	char *authserv_id;   /* authserv-id(s) of our own MTA's Authentication-Results, comma list */
	char *our_domains;   /* policy domains we own, comma list; NULL: any */
	char *dkim_key_file; /* keys from this file, not DNS (tests): "sel._domainkey.dom v=DKIM1; p=..." */
};

struct limits {
	size_t max_message_size;        /* bytes read from one input */
	size_t max_inflated_size;       /* bytes out of one gzip attachment */
	unsigned max_inflate_ratio;     /* out/in, checked once out > 1 MiB */
	unsigned max_json_depth;
	size_t max_json_size;           /* bytes of one JSON report */
	size_t max_json_values;         /* values in one report, an object counting as 8 */
	size_t max_policies;            /* per report */
	size_t max_failures_per_policy; /* failure-details entries per policy */
	size_t max_string_length;       /* bytes of one JSON string value */
	size_t max_report_parts;        /* candidate report parts per message */
	size_t max_rejected_raw;        /* bytes kept in tlsrpt.rejected.raw */
	/* per message, whatever its parts (mimescan.c, ingest.c) */
	size_t max_header_size;         /* bytes of one header block (the message's, a part's) */
	size_t max_header_params;       /* Content-Type + Content-Disposition parameters per block */
	size_t max_mime_parts;          /* MIME parts of any kind */
	unsigned max_mime_depth;        /* multiparts and attached messages, nested */
	size_t max_message_inflated;    /* bytes out of all gzip parts together */
	size_t max_message_json_values; /* values of all reports together, an object counting as 8 */
	size_t max_message_rows;        /* policies + failure-details rows of all reports together */
	unsigned max_parse_time;        /* CPU seconds to parse one message (not the database's time) */
	/* raw copies in tlsrpt.rejected, in any 24 hours (0: no limit); past them a row keeps no bytes */
	size_t max_rejected_raw_per_source_day; /* per HTTPS client address, per mail sender domain */
	size_t max_rejected_raw_per_day;        /* all sources together */
	struct trust trust;             /* origin checks: ingest_bytes() reads them here */
};

struct config {
	char *database;           /* libpq conninfo or URI; NULL: libpq defaults */
	unsigned deadline;        /* seconds for one run of the program */
	unsigned connect_timeout; /* seconds, passed to libpq */
	unsigned statement_timeout; /* seconds, SET LOCAL in each transaction */
	unsigned lock_timeout;      /* seconds */
	char *published_sts_policy; /* path of the mta-sts.txt we publish (--init-db stores it); NULL: none */
	unsigned backfill_jobs;     /* processes (and connections) a FILE run stores with, at most */
	struct limits limits;
};

void config_defaults(struct config *c);
/* Reads "key = value" lines; '#' starts a comment. Unknown keys are refused.
 * A file that does not exist is fine when !must_exist. A file holding a
 * password (in database) that group or others can read is refused, as is
 * one anyone may write, and anything that is not a regular file (a FIFO is
 * refused at once, not waited on). */
int config_load(struct config *c, const char *path, bool must_exist, struct error *e);
int config_set(struct config *c, const char *key, const char *value, struct error *e);
void config_free(struct config *c);
/* Warns (log_warn) when conninfo, given on the command line as where
 * ("-d", "-o database="), holds a password. */
void config_warn_password(const char *conninfo, const char *where);

#endif
