/* store.h - reports and rejections into PostgreSQL with libpq, one
 * transaction per delivery, duplicates absorbed by the database. */
#ifndef TLSRPT_STORE_H
#define TLSRPT_STORE_H

#include <stddef.h>

#include "config.h"
#include "ingest.h"
#include "status.h"

struct store;

enum source_channel { CHANNEL_MAIL, CHANNEL_FILE, CHANNEL_HTTPS };

struct store_result {
	size_t reports_new;
	size_t reports_duplicate;
	size_t rejected_new;
	size_t rejected_duplicate;
};

/* Connects (conninfo NULL or "": libpq defaults and environment). Notices go
 * to the log, never to stdout/stderr. ERR_TEMP when the server is unreachable. */
int store_open(struct store **out, const struct config *cfg, struct error *e);
void store_close(struct store *s);

/* Creates or upgrades schema tlsrpt; harmless to repeat. */
int store_init_schema(struct store *s, int *version_out, struct error *e);
/* Lets role (a name, quoted here) use schema tlsrpt: USAGE, SELECT and INSERT, nothing more. */
int store_grant_writer(struct store *s, const char *role, struct error *e);
/* ROLE may read schema tlsrpt (not tlsrpt.rejected.raw) and run its functions, nothing more. */
int store_grant_reader(struct store *s, const char *role, struct error *e);
/* ERR_CONFIG when the schema is missing or older than this program. */
int store_check_schema(struct store *s, int *version_out, struct error *e);

/* Stores a whole delivery in one transaction: all of it or none. Retries a
 * serialization failure or deadlock a few times. ERR_TEMP for anything that
 * may succeed later, ERR_CONFIG for schema or privilege trouble. */
int store_delivery(struct store *s, const struct delivery *d, enum source_channel ch,
		   struct store_result *res, struct error *e);

/* Files mode (many messages, one connection): deliveries in flight together.
 * Each is still its own transaction, all of it or none, with the same
 * retries, refused reports kept as rejected, and duplicates absorbed as
 * store_delivery; only the COMMIT of one travels with the next one's
 * statements (store.c says why that is safe behind PgBouncer).
 *
 * done is called exactly once for every delivery added, in the order added:
 * res set when it is committed (its answer read); res NULL when it is not
 * stored, with e saying why for the first such one (the run stops there)
 * and NULL for the ones after it. The caller keeps each delivery alive until
 * its done call. */
typedef void (*store_done_fn)(void *arg, void *tag, const struct store_result *res, const struct error *e);

int store_batch_begin(struct store *s, enum source_channel ch, store_done_fn done, void *arg, struct error *e);
/* Sends d, reading answers as they come; waits only while too much is in
 * flight. -1: the run stops (every delivery has had its done call, e says
 * why); the store is then good only for store_close. */
int store_batch_add(struct store *s, const struct delivery *d, void *tag, struct error *e);
/* Commits what is in flight and waits for every answer; ends the batch. -1 as
 * for store_batch_add. */
int store_batch_flush(struct store *s, struct error *e);

#endif
