/* ingest.h - one input (a mail, a .json or a .json.gz) to the reports it
 * holds and the pieces that have to be kept as rejected. No database here. */
#ifndef TLSRPT_INGEST_H
#define TLSRPT_INGEST_H

#include <stddef.h>

#include "config.h"
#include "origin.h"
#include "report.h"
#include "status.h"
#include "util.h"

enum input_kind { INPUT_MAIL, INPUT_JSON, INPUT_GZIP };

struct found_report {
	struct report *report;
	char *filename; /* attachment or file name, may be NULL */
	char digest[65]; /* its dedup key as a rejection, should it have to be one */
};

struct rejection {
	char *reason;
	char *filename;       /* may be NULL */
	unsigned char *raw;   /* at most max_rejected_raw bytes of what was refused */
	size_t raw_len;
	size_t original_len;  /* raw_len < original_len: it was cut */
	char digest[65];      /* the dedup key: hex SHA-256 over the input's digest,
			       * this piece's and its position in the delivery */
};

struct delivery {
	enum input_kind kind;
	char *source;     /* "stdin", a file name, "https" */
	char input_digest[65]; /* hex SHA-256 of the whole input */
	char *message_id; /* mail only, else NULL */
	char *sender;
	char *subject;
	char *report_domain;
	char *submitter;
	struct found_report *reports;
	size_t n_reports;
	struct rejection *rejections;
	size_t n_rejections;
	struct origin origin; /* mail only: what lim->trust found out about the sender */
	/* spent so far of the per-message limits */
	size_t inflated;    /* max_message_inflated */
	size_t json_values; /* max_message_json_values */
	size_t rows;        /* max_message_rows */
	/* A reprocess (reprocess.c): the tlsrpt.rejected row this delivery was
	 * read from (0: none). With reports, the row is deleted in their
	 * transaction (and its other pieces kept as rejections of their own);
	 * without, it stays with reason rejected_reason; nothing else is stored. */
	long long rejected_id;
	int rejected_source;   /* the row's source (enum store_channel): the reports' */
	char *rejected_reason; /* what the row's reason becomes when no report came out */
	bool rejected_stays;   /* its own piece came out again (the same digest): the row
				* stays with that reason, the reports are stored beside it */
	/* while a mail is split: the whole message, which its first rejected part
	 * keeps as its raw copy (the later ones: its size only, the bytes once a message) */
	const unsigned char *whole;
	size_t whole_len;
	bool whole_kept;
};

enum input_kind ingest_sniff(const unsigned char *data, size_t len);

/* Splits one input into reports and rejections. Bad content never fails
 * this call: it becomes a rejection with a reason. Fails only for ERR_TEMP.
 * lim->trust (origin.h): a mail's origin is checked and kept in d->origin;
 * with dkim_policy = require a mail that is not an aligned DKIM pass becomes
 * one rejection (the whole message); with our_domains set, a report for
 * another policy domain becomes a rejection. Whatever one message costs is
 * bounded before it is spent (config.h, "per message"): over a limit, the part
 * (or the whole message, for its MIME shape and max_parse_time) is rejected. */
int ingest_bytes(const unsigned char *data, size_t len, const char *source,
		 const struct limits *lim, struct delivery **out, struct error *e);
/* A delivery that keeps the whole input (its first head_len bytes of
 * total_len) as one rejection with reason. */
struct delivery *delivery_rejected(const unsigned char *head, size_t head_len, size_t total_len,
				   const char *source, const char *reason, const struct limits *lim);
/* An input over max_message_size: kept as rejected, its first bytes only. */
int ingest_oversized(const unsigned char *head, size_t head_len, size_t total_len,
		     const char *source, const struct limits *lim, struct delivery **out);
void delivery_free(struct delivery *d);

/* Counts for the log line. */
size_t delivery_policies(const struct delivery *d);
size_t delivery_failures(const struct delivery *d);

/* One line of JSON per report and per rejection, for --dry-run. */
void delivery_print_json(const struct delivery *d, struct buf *out);

#endif
