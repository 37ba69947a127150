/* schema.h - schema tlsrpt: created or upgraded (--init-db) under an
 * advisory lock, one numbered migration at a time; a writer role granted
 * (--grant); the version checked (-n). */
#ifndef TLSRPT_SCHEMA_H
#define TLSRPT_SCHEMA_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"
#include "status.h"

/* Creates or upgrades schema tlsrpt; harmless to repeat. */
int schema_init(PGconn *conn, int *version_out, struct error *e);
/* The same; partitioned: a new schema gets report, policy and failure
 * partitioned by month (an existing plain one is refused: ERR_CONFIG). */
int schema_init_partitioned(PGconn *conn, bool partitioned, int *version_out, struct error *e);
/* Lets role (a name, quoted here) use schema tlsrpt: USAGE, SELECT and INSERT, nothing more. */
int schema_grant_writer(PGconn *conn, const char *role, struct error *e);
/* A partitioned schema's statistics, brought up to date where they need it
 * (tlsrpt.analyze_partitioned(), migration 12): --init-db and the end of a
 * backfill that stored reports call it. Its own transaction, bounded by
 * statement_timeout; a failure is only logged (a warning: the next
 * tlsrpt.refresh() does it). Next to nothing on a plain schema. */
void schema_analyze_partitioned(PGconn *conn, const struct config *cfg);
/* ERR_CONFIG when the schema is missing or older than this program. */
int schema_check(PGconn *conn, int *version_out, struct error *e);

/* The commands: connect, do it, say so on stdout; the exit status (exits.h).
 * --init-db [--grant=ROLE] [--grant-reader=ROLE]: a database that cannot be reached is for the
 * administrator to fix (78), as is a role that cannot be granted. */
/* ROLE may read schema tlsrpt (not tlsrpt.rejected.raw) and run its functions, nothing more. */
int schema_grant_reader(PGconn *conn, const char *role, struct error *e);
/* published_sts_policy: the MTA-STS policy file we publish (path, or NULL:
 * none) into tlsrpt.published_sts_policy; ERR_CONFIG when it cannot be read
 * or is not a policy. --init-db calls it. */
int schema_set_published_policy(PGconn *conn, const char *path, struct error *e);
int schema_command_init(const struct config *cfg, bool partitioned, const char *grant_role,
			const char *grant_reader_role);
/* -n: the configuration and the database, schema version included. */
int schema_command_check(const struct config *cfg);

#endif
