/* schema.c - schema tlsrpt: the migrations embedded at build time
 * (src/sql/NNN-*.sql, schema-sql.h), applied in one transaction under an
 * advisory lock so that two --init-db runs at once apply each one once. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exits.h"
#include "log.h"
#include "pgconn.h"
#include "schema-sql.h"
#include "schema.h"
#include "util.h"

#define SCHEMA_N_MIGRATIONS ((int)(sizeof schema_migrations / sizeof schema_migrations[0]))

static int
schema_exec(PGconn *conn, const char *sql, const char *what, struct error *e)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(res);
		return 0;
	}
	pgconn_failed(conn, res, what, e);
	PQclear(res);
	return -1;
}

static void
schema_rollback(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
}

static int
schema_version_in_db(PGconn *conn, int *version, struct error *e)
{
	PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM tlsrpt.schema_version");

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, res, "reading the schema version", e);
		PQclear(res);
		return -1;
	}
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* --init-db --partitioned on an empty database (doc/scaling.md, "Big tables:
 * monthly partitions"): the same migrations, with report, policy and failure
 * created partitioned by month. PostgreSQL wants the partition key in every
 * unique key and foreign key of a partitioned table, so the three tables carry
 * period_month (tlsrpt.period_month(date_end), migration 9: the UTC month of
 * the report's end, '-infinity' when it has none, a child row its report's),
 * their primary keys are (id, period_month), policy and failure reference
 * (report|policy, period_month), and the report identity includes it (a
 * function of date_end, which it holds already: the same report always falls
 * in the same month, so the identity stays unique across partitions). The
 * rest of every migration is the same text: only these lines differ, each
 * found exactly once (or --init-db stops: a bug). failure_fact (migration 5)
 * keeps no foreign key to failure: a purge deletes its rows itself. */
static const struct schema_partitioned_edit {
	int migration;
	const char *from, *to;
} schema_partitioned_edits[] = {
	{1, "    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n",
	 "    id                bigint GENERATED ALWAYS AS IDENTITY,\n"
	 "    period_month      date NOT NULL,\n"},
	{1, "        (organization_name, report_id, date_start, date_end, content_key)\n);\n",
	 "        (organization_name, report_id, date_start, date_end, content_key, period_month),\n"
	 "    PRIMARY KEY (id, period_month)\n"
	 ") PARTITION BY RANGE (period_month);\n"
	 "CREATE TABLE tlsrpt.report_default PARTITION OF tlsrpt.report DEFAULT;\n"},
	{1, "    id                             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	    "    report                         bigint NOT NULL REFERENCES tlsrpt.report (id) ON DELETE CASCADE,\n",
	 "    id                             bigint GENERATED ALWAYS AS IDENTITY,\n"
	 "    period_month                   date NOT NULL,\n"
	 "    report                         bigint NOT NULL,\n"},
	{1, "    total_failure_session_count    bigint\n);\n",
	 "    total_failure_session_count    bigint,\n"
	 "    PRIMARY KEY (id, period_month),\n"
	 "    FOREIGN KEY (report, period_month) REFERENCES tlsrpt.report (id, period_month) ON DELETE CASCADE\n"
	 ") PARTITION BY RANGE (period_month);\n"
	 "CREATE TABLE tlsrpt.policy_default PARTITION OF tlsrpt.policy DEFAULT;\n"},
	{1, "    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	    "    policy                 bigint NOT NULL REFERENCES tlsrpt.policy (id) ON DELETE CASCADE,\n",
	 "    id                     bigint GENERATED ALWAYS AS IDENTITY,\n"
	 "    period_month           date NOT NULL,\n"
	 "    policy                 bigint NOT NULL,\n"},
	{1, "    failure_reason_code    text\n);\n",
	 "    failure_reason_code    text,\n"
	 "    PRIMARY KEY (id, period_month),\n"
	 "    FOREIGN KEY (policy, period_month) REFERENCES tlsrpt.policy (id, period_month) ON DELETE CASCADE\n"
	 ") PARTITION BY RANGE (period_month);\n"
	 "CREATE TABLE tlsrpt.failure_default PARTITION OF tlsrpt.failure DEFAULT;\n"},
	{5, "    failure               bigint PRIMARY KEY REFERENCES tlsrpt.failure (id) ON DELETE CASCADE,\n",
	 "    failure               bigint PRIMARY KEY,\n"},
	{6, "(organization_name, report_id, date_start, date_end, content_key, sender);\n",
	 "(organization_name, report_id, date_start, date_end, content_key, sender, period_month);\n"},
};

/* Migration v's text, edited for a partitioned schema: a new string. */
static char *
schema_partitioned_text(int v, struct error *e)
{
	char *text = xstrdup(schema_migrations[v - 1]);

	for (size_t i = 0; i < sizeof schema_partitioned_edits / sizeof schema_partitioned_edits[0]; i++) {
		const struct schema_partitioned_edit *ed = &schema_partitioned_edits[i];
		char *at, *next;

		if (ed->migration != v)
			continue;
		at = strstr(text, ed->from);
		if (at == NULL || strstr(at + 1, ed->from) != NULL) {
			error_set(e, ERR_BUG, "migration %d: the line to partition is not there once: %.40s", v, ed->from);
			free(text);
			return NULL;
		}
		next = xasprintf("%.*s%s%s", (int)(at - text), text, ed->to, at + strlen(ed->from));
		free(text);
		text = next;
	}
	return text;
}

static int
schema_apply(PGconn *conn, int v, bool partitioned, struct error *e)
{
	char vtext[16], what[64];
	const char *params[1] = {vtext};
	PGresult *res;
	char *edited = NULL;
	int rc;

	snprintf(what, sizeof what, "schema migration %d", v);
	if (partitioned && (edited = schema_partitioned_text(v, e)) == NULL)
		return -1;
	rc = schema_exec(conn, edited ? edited : schema_migrations[v - 1], what, e);
	free(edited);
	if (rc < 0)
		return -1;
	snprintf(vtext, sizeof vtext, "%d", v);
	res = PQexecParams(conn, "INSERT INTO tlsrpt.schema_version (version) VALUES ($1::integer)", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_failed(conn, res, what, e);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	log_info("schema tlsrpt: applied migration %d", v);
	return 0;
}

/* The database must be UTF8: in SQL_ASCII nothing checks what is stored, in
 * LATIN1 and the like much of what reports hold cannot be stored at all. A
 * delivery into one still stores what it can hold and keeps the rest as
 * rejected (pipeline.c); --init-db and -n refuse it, at once. */
static int
schema_check_encoding(PGconn *conn, struct error *e)
{
	const char *enc = PQparameterStatus(conn, "server_encoding");

	if (enc == NULL || strcmp(enc, "UTF8") == 0)
		return 0;
	error_set(e, ERR_CONFIG, "the database's encoding is %s, not UTF8: reports hold any Unicode text;"
		  " create the database with createdb -E UTF8 -T template0", enc);
	return -1;
}

/* Whether tlsrpt.report is a partitioned table (--init-db --partitioned made it). */
static int
schema_is_partitioned(PGconn *conn, bool *out, struct error *e)
{
	PGresult *res = PQexec(conn, "SELECT coalesce((SELECT relkind = 'p' FROM pg_class"
				     " WHERE oid = to_regclass('tlsrpt.report')), false)");

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, res, "reading the schema", e);
		PQclear(res);
		return -1;
	}
	*out = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

int
schema_init(PGconn *conn, int *version_out, struct error *e)
{
	return schema_init_partitioned(conn, false, version_out, e);
}

int
schema_init_partitioned(PGconn *conn, bool partitioned, int *version_out, struct error *e)
{
	int version = 0;
	bool is_partitioned = false;

	if (schema_check_encoding(conn, e) < 0)
		return -1;
	if (schema_exec(conn, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('tlsrpt-ingest schema'));"
			      "CREATE SCHEMA IF NOT EXISTS tlsrpt;"
			      "CREATE TABLE IF NOT EXISTS tlsrpt.schema_version ("
			      " version integer PRIMARY KEY,"
			      " applied_at timestamptz NOT NULL DEFAULT now())",
			"creating schema tlsrpt", e) < 0 ||
	    schema_version_in_db(conn, &version, e) < 0)
		goto fail;
	if (version > SCHEMA_N_MIGRATIONS) {
		error_set(e, ERR_CONFIG, "the database has schema version %d, newer than this program's %d",
			  version, SCHEMA_N_MIGRATIONS);
		goto fail;
	}
	if (schema_is_partitioned(conn, &is_partitioned, e) < 0)
		goto fail;
	/* the tables say how they were made; only a new schema can be made partitioned */
	if (partitioned && version > 0 && !is_partitioned) {
		error_set(e, ERR_CONFIG, "schema tlsrpt exists (version %d) and its tables are not partitioned:"
			  " --partitioned only creates a new schema (doc/scaling.md: create a new database with"
			  " --init-db --partitioned and copy the rows over)", version);
		goto fail;
	}
	for (int v = version + 1; v <= SCHEMA_N_MIGRATIONS; v++)
		if (schema_apply(conn, v, partitioned && version == 0, e) < 0)
			goto fail;
	/* the months ahead (and the one before): every --init-db and purge makes the missing ones */
	if (schema_exec(conn, "SELECT tlsrpt.partition_create((now() AT TIME ZONE 'UTC')::date - 31)",
			"creating partitions", e) < 0)
		goto fail;
	if (schema_exec(conn, "COMMIT", "COMMIT", e) < 0)
		goto fail;
	*version_out = SCHEMA_N_MIGRATIONS;
	return 0;
fail:
	schema_rollback(conn);
	return -1;
}

void
schema_analyze_partitioned(PGconn *conn, const struct config *cfg)
{
	struct error e = {ERR_NONE, ""};
	PGresult *res;

	/* This session's own inserts are counted in pg_stat_user_tables (which
	 * analyze_partitioned() reads) at most once a second: all of them, now.
	 * A statement of its own (the flush happens when it is over); should it
	 * fail, the next statement says why. */
	PQclear(PQexec(conn, "SELECT pg_stat_force_next_flush()"));
	if (pgconn_begin(conn, cfg, NULL, &e) < 0)
		goto fail;
	res = PQexec(conn, "SELECT tlsrpt.analyze_partitioned()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, res, "analyzing the partitioned tables", &e);
		PQclear(res);
		goto fail;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_info("partitioned schema: %s table(s) analyzed", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (schema_exec(conn, "COMMIT", "COMMIT", &e) == 0)
		return;
fail:
	schema_rollback(conn);
	log_warn("the partitioned tables' statistics were not brought up to date (the next"
		 " SELECT tlsrpt.refresh() does it): %s", e.msg);
}

int
schema_grant_writer(PGconn *conn, const char *role, struct error *e)
{
	char *ident, *sql;
	int rc;

	ident = PQescapeIdentifier(conn, role, strlen(role));
	if (ident == NULL) {
		error_set(e, ERR_CONFIG, "bad role name: %s", PQerrorMessage(conn));
		return -1;
	}
	sql = xasprintf("BEGIN; GRANT USAGE ON SCHEMA tlsrpt TO %s;"
			" GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tlsrpt TO %s;"
			/* an authenticated copy shadows the others (migration 6, tlsrpt.report_claim) */
			" GRANT UPDATE (shadowed) ON tlsrpt.report TO %s; GRANT UPDATE (rebuild) ON tlsrpt.rollup_state TO %s;"
			" COMMIT",
			ident, ident, ident, ident);
	rc = schema_exec(conn, sql, "granting", e);
	if (rc < 0)
		schema_rollback(conn);
	free(sql);
	PQfreemem(ident);
	return rc;
}

/* A reader (Grafana, an analyst): SELECT on every table and view of schema
 * tlsrpt except the raw bytes of rejected mail (column privileges on
 * tlsrpt.rejected leave out raw), EXECUTE on its functions (the alerts and the
 * policy parsers, all read-only), and default privileges so that views and
 * functions a later --init-db (a migration) creates are readable too. No
 * INSERT, UPDATE, DELETE, TRUNCATE or CREATE. The role is passed as a setting,
 * never spliced into the text. */
static const char schema_grant_reader_sql[] =
	"DO $grant$ DECLARE"
	" r text := current_setting('tlsrpt.grant_reader'); rel regclass; cols text;"
	" BEGIN"
	" EXECUTE format('GRANT USAGE ON SCHEMA tlsrpt TO %I', r);"
	" FOR rel IN SELECT c.oid::regclass FROM pg_class c"
	"   WHERE c.relnamespace = 'tlsrpt'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"
	"     AND c.oid <> 'tlsrpt.rejected'::regclass ORDER BY c.oid LOOP"
	"  EXECUTE format('GRANT SELECT ON %s TO %I', rel, r);"
	" END LOOP;"
	" SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute"
	"   WHERE attrelid = 'tlsrpt.rejected'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'raw';"
	" EXECUTE format('GRANT SELECT (%s) ON tlsrpt.rejected TO %I', cols, r);"
	" EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tlsrpt TO %I', r);"
	" EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA tlsrpt GRANT SELECT ON TABLES TO %I', r);"
	" EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA tlsrpt GRANT EXECUTE ON FUNCTIONS TO %I', r);"
	" END $grant$";

int
schema_grant_reader(PGconn *conn, const char *role, struct error *e)
{
	const char *params[1] = {role};
	PGresult *res;

	if (schema_exec(conn, "BEGIN", "granting", e) < 0)
		return -1;
	res = PQexecParams(conn, "SELECT set_config('tlsrpt.grant_reader', $1, true)", 1, NULL, params, NULL,
			   NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, res, "granting", e);
		PQclear(res);
		schema_rollback(conn);
		return -1;
	}
	PQclear(res);
	if (schema_exec(conn, schema_grant_reader_sql, "granting", e) < 0 ||
	    schema_exec(conn, "COMMIT", "granting", e) < 0) {
		schema_rollback(conn);
		return -1;
	}
	return 0;
}

int
schema_check(PGconn *conn, int *version_out, struct error *e)
{
	int version;

	if (schema_check_encoding(conn, e) < 0 || schema_version_in_db(conn, &version, e) < 0)
		return -1;
	*version_out = version;
	if (version != SCHEMA_N_MIGRATIONS) {
		error_set(e, ERR_CONFIG, "the database has schema version %d, this program needs %d%s", version,
			  SCHEMA_N_MIGRATIONS, version < SCHEMA_N_MIGRATIONS ? " (run tlsrpt-ingest --init-db)" : "");
		return -1;
	}
	return 0;
}

/* The MTA-STS policy we publish (published_sts_policy): at most
 * PUBLISHED_POLICY_MAX bytes of UTF-8 text (RFC 8461 policies are a few
 * hundred bytes), from a regular file. */
#define PUBLISHED_POLICY_MAX 65536

static int
read_policy_file(const char *path, struct buf *out, struct error *e)
{
	char chunk[4096];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		error_set(e, ERR_CONFIG, "published_sts_policy: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		error_set(e, ERR_CONFIG, "published_sts_policy: %s is not a regular file", path);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof chunk)) > 0) {
		if (out->len + (size_t)n > PUBLISHED_POLICY_MAX) {
			close(fd);
			error_set(e, ERR_CONFIG, "published_sts_policy: %s is larger than %d bytes", path,
				  PUBLISHED_POLICY_MAX);
			return -1;
		}
		buf_append(out, chunk, (size_t)n);
	}
	close(fd);
	if (n < 0) {
		error_set(e, ERR_CONFIG, "published_sts_policy: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (memchr(buf_cstr(out), '\0', out->len) != NULL ||
	    !utf8_valid((const unsigned char *)buf_cstr(out), out->len)) {
		error_set(e, ERR_CONFIG, "published_sts_policy: %s is not UTF-8 text", path);
		return -1;
	}
	return 0;
}

/* Stores the policy named by published_sts_policy (or none) in
 * tlsrpt.published_sts_policy, for the drift view (doc/views.md). */
int
schema_set_published_policy(PGconn *conn, const char *path, struct error *e)
{
	struct buf text = {0};
	const char *params[1] = {NULL};
	PGresult *res;
	int rc = -1;

	if (path != NULL) {
		if (read_policy_file(path, &text, e) < 0)
			goto out;
		params[0] = buf_cstr(&text);
	}
	if (schema_exec(conn, "BEGIN", "storing the published MTA-STS policy", e) < 0)
		goto out;
	res = PQexecParams(conn, "SELECT tlsrpt.set_published_sts_policy($1::text)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		PQclear(res);
		/* (a statement of its own: it sees what the one before wrote) */
		res = PQexec(conn, "SELECT count(*) FROM tlsrpt.published_sts_policy"
				   " WHERE mode IS NULL OR cardinality(mx) = 0 AND lower(mode) <> 'none'");
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_failed(conn, res, "storing the published MTA-STS policy", e);
		PQclear(res);
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
		error_set(e, ERR_CONFIG, "published_sts_policy: %s is not an MTA-STS policy (no mode or no mx line)",
			  path);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	rc = schema_exec(conn, "COMMIT", "storing the published MTA-STS policy", e);
out:
	if (rc < 0)
		schema_rollback(conn);
	buf_free(&text);
	return rc;
}

int
schema_command_init(const struct config *cfg, bool partitioned, const char *grant_role,
		    const char *grant_reader_role)
{
	struct error e = {ERR_NONE, ""};
	PGconn *conn;
	int version, status = 0;

	alarm(cfg->deadline);
	if ((conn = pgconn_open(cfg, &e)) == NULL)
		return exits_fail(ERR_CONFIG, "%s", e.msg);
	if (schema_init_partitioned(conn, partitioned, &version, &e) < 0) {
		status = exits_fail_error(&e);
		goto out;
	}
	if (schema_set_published_policy(conn, cfg->published_sts_policy, &e) < 0) {
		status = exits_fail(e.cls, "%s", e.msg);
		goto out;
	}
	/* a new partitioned schema's parents and months, at once (milliseconds: they are empty) */
	alarm(cfg->deadline);
	schema_analyze_partitioned(conn, cfg);
	printf("schema tlsrpt is at version %d\n", version);
	if (cfg->published_sts_policy != NULL)
		printf("published MTA-STS policy: %s\n", cfg->published_sts_policy);
	if (grant_role != NULL) {
		if (schema_grant_writer(conn, grant_role, &e) < 0) {
			status = exits_fail(ERR_CONFIG, "%s", e.msg);
			goto out;
		}
		printf("role %s may now insert and select in schema tlsrpt\n", grant_role);
	}
	if (grant_reader_role != NULL) {
		if (schema_grant_reader(conn, grant_reader_role, &e) < 0) {
			status = exits_fail(ERR_CONFIG, "%s", e.msg);
			goto out;
		}
		printf("role %s may now read schema tlsrpt (not tlsrpt.rejected.raw) and run its functions\n",
		       grant_reader_role);
	}
out:
	PQfinish(conn);
	return status;
}

int
schema_command_check(const struct config *cfg)
{
	struct error e = {ERR_NONE, ""};
	PGconn *conn;
	int version, status = 0;

	alarm(cfg->deadline);
	if ((conn = pgconn_open(cfg, &e)) == NULL)
		return exits_fail_error(&e);
	if (schema_check(conn, &version, &e) < 0)
		status = exits_fail_error(&e);
	else
		printf("configuration and database OK, schema tlsrpt version %d\n", version);
	PQfinish(conn);
	return status;
}
