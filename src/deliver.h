/* deliver.h - one message: ingest -> store -> outcome -> one log line. The
 * MTA's delivery on standard input, each message of a FILE run (backfill.c)
 * and the CGI request (cgi.c) all go this way. */
#ifndef TLSRPT_DELIVER_H
#define TLSRPT_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "ingest.h"
#include "status.h"
#include "store.h"

struct deliver_input {
	const char *source;        /* "stdin", FILE or FILE#N, "https": the log's and the delivery's label */
	const unsigned char *data;
	size_t len;                /* bytes at data */
	size_t size;               /* the whole input; size > len when it was cut at max_message_size */
	const char *http_type;     /* https: the media type; a body that is not gzip or JSON is kept as rejected */
	const char *remote;        /* https: who posted it, for the log and the rejected row's sender; NULL */
};

enum deliver_outcome { DELIVER_STORED, DELIVER_DUPLICATE, DELIVER_REJECTED };

struct deliver_result {
	bool stored_failed; /* deliver_one failed storing it (not ingesting it) */
	enum deliver_outcome outcome;
	struct store_result stored;
	size_t n_reports;
	char reason[256]; /* no report in it: the first rejection's reason */
};

/* Splits in into a delivery: an input over max_message_size is kept as
 * rejected (its first bytes); bad content becomes rejections. Fails only with
 * ERR_TEMP. */
int deliver_prepare(const struct deliver_input *in, const struct limits *lim, struct delivery **out,
		    struct error *e);

/* The one line per message: what became of it, what it held, how long it took. */
void deliver_log_outcome(const struct delivery *d, const char *remote, const struct store_result *res, long long ms);
/* The line for a message left to a retry (the MTA's, or the next run's). */
void deliver_log_deferred(const char *source, const char *remote, const char *message_id, const char *reason);

/* One message, one transaction: prepared, stored (*store opened first when
 * NULL), logged. -1: nothing stored, e says why (already logged as deferred;
 * e->msg starts with the source when ingesting failed). */
int deliver_one(struct store **store, const struct config *cfg, const struct deliver_input *in,
		const struct store_via *via, struct deliver_result *out, struct error *e);

/* The MTA's delivery: one message on standard input, stored; the exit status
 * (exits.h), 0 only after COMMIT. The deadline runs from before the connection. */
int deliver_stdin(const struct config *cfg);

#endif
