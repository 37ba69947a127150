/* pipeline.h - deliveries in flight on one connection, each its own
 * transaction, all of it or none: retried after a serialization failure or
 * deadlock, a report the database refuses kept as rejected instead, and
 * duplicates absorbed. A single delivery is a pipeline of one. */
#ifndef TLSRPT_PIPELINE_H
#define TLSRPT_PIPELINE_H

#include "ingest.h"
#include "status.h"
#include "store.h"

struct pipeline;

/* Called exactly once for every delivery added, in the order added: res set
 * when it is committed (its answer read; with group commit, the answer of a
 * durable COMMIT after it); res NULL when it is not stored,
 * with e saying why for the first such one (the run stops there) and NULL for
 * the ones after it. The caller keeps each delivery alive until its call. */
typedef void (*pipeline_done_fn)(void *arg, void *tag, const struct store_result *res, const struct error *e);

/* Starts a pipeline on s (pipeline and non-blocking mode); via is read for
 * every delivery and must outlive the pipeline. */
struct pipeline *pipeline_begin(struct store *s, const struct store_via *via, pipeline_done_fn done, void *arg,
				struct error *e);
/* Group commit, for a backfill: each delivery still its own transaction,
 * committed without waiting for the disk (synchronous_commit off), and every
 * so often (PIPELINE_GROUP deliveries, PIPELINE_HOLD_MS, the end) one COMMIT
 * that waits for it, once every answer before it is in; that flushes the WAL
 * of all the transactions before it, and only then are they handed back as
 * stored. One WAL flush for many deliveries instead of one each. */
void pipeline_group_commit(struct pipeline *p);
/* Sends d, reading answers as they come; waits only while too much is in
 * flight. -1: the run stops (every delivery has had its done call, e says
 * why); the store is then good only for store_close. */
int pipeline_add(struct pipeline *p, const struct delivery *d, void *tag, struct error *e);
/* Commits what is in flight and waits for every answer; leaves pipeline mode.
 * -1 as for pipeline_add. */
int pipeline_finish(struct pipeline *p, struct error *e);
void pipeline_free(struct pipeline *p);

/* One delivery, one transaction: a pipeline of one, one round trip (BEGIN,
 * its statements, its COMMIT, a Sync). A 75 after a deadline or SIGTERM may
 * be followed by that COMMIT on the server: the redelivery is a duplicate. */
int pipeline_deliver_one(struct store *s, const struct delivery *d, const struct store_via *via,
			 struct store_result *res, struct error *e);

#endif
