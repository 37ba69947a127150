/* store.c - the statements of one delivery, through libpq.
 * Every value reaches the server as a parameter. Duplicates are absorbed by
 * the unique constraints (ON CONFLICT DO NOTHING), so parallel and repeated
 * deliveries of one report store it once. The report statement (the report,
 * its policies and their failure rows together, through data-modifying CTEs
 * and unnest over array parameters) is written from one column table. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "store.h"
#include "util.h"

/* The report statement's shapes. The general one (every policy and failure
 * column an array, unnest) holds any report and is the one prepared for a
 * backfill. A report sent as text goes in the narrowest shape that holds it:
 * a new session plans each statement afresh, and scalars plan faster than
 * arrays, unnest and the policies' positions (a one-policy report, measured
 * on a fresh connection: 0.3 ms less, 0.6 ms with one failure row, of 2.8). */
enum store_shape {
	STORE_SHAPE_GENERAL,     /* any report: arrays */
	STORE_SHAPE_NO_FAILURES, /* no failure rows: the policies as arrays, no failure table */
	STORE_SHAPE_ONE,         /* one policy, as scalars, no failure rows */
	STORE_SHAPE_ONE_ONE,     /* one policy and one failure row, as scalars */
	STORE_SHAPE_ONE_MANY,    /* one policy as scalars, its failure rows as arrays */
	STORE_N_SHAPES
};

struct store {
	PGconn *conn;
	unsigned statement_timeout;
	unsigned lock_timeout;
	size_t max_rejected_raw;
	size_t raw_per_source_day, raw_per_day; /* the raw-copy budgets, 0: none */
	char *report_sql[STORE_N_SHAPES]; /* written from store_columns, one per shape */
	char *first_copy_sql[STORE_N_SHAPES]; /* the same storing a first copy (store_send_first_copy) */
	bool connecting;  /* store_open_start: pgconn_complete still to come (store_ready) */
};

/* ---- the report statement's columns ---- */

enum store_level { STORE_PER_REPORT, STORE_PER_POLICY, STORE_PER_FAILURE };

/* Where a column's value is read. */
enum store_from { STORE_FROM_REPORT, STORE_FROM_FOUND, STORE_FROM_DELIVERY, STORE_FROM_ORIGIN, STORE_FROM_VIA,
		  STORE_FROM_POLICY, STORE_FROM_FAILURE };

/* How it becomes text. */
enum store_fill {
	STORE_FILL_TEXT,       /* a char * (NULL: SQL NULL) */
	STORE_FILL_LIST,       /* a struct strlist: an array literal, NULL when absent */
	STORE_FILL_LIST_EMPTY, /* the same, {} when absent */
	STORE_FILL_COUNT,      /* a struct count */
	STORE_FILL_TRISTATE,   /* an enum tristate: true, false or NULL */
	STORE_FILL_CHANNEL,    /* the via's channel name */
	STORE_FILL_CLIENT_ADDR /* https: the via's sender when it is an IP address (REMOTE_ADDR), else NULL */
};

struct store_column {
	enum store_level level;
	const char *name;  /* the table's column */
	const char *type;  /* the parameter's type (of each element, for policies and failures) */
	const char *cast;  /* per policy or failure: the element's cast in the SELECT; NULL none */
	enum store_from from;
	size_t offset;     /* of the value in what from names */
	enum store_fill fill;
};

#define COL(level, name, type, cast, from, st, field, fill) \
	{STORE_PER_##level, name, type, cast, STORE_FROM_##from, offsetof(struct st, field), STORE_FILL_##fill}

/* Adding a column: one line here (and its migration). */
static const struct store_column store_columns[] = {
	COL(REPORT, "organization_name", "text", NULL, REPORT, report, organization_name, TEXT),
	COL(REPORT, "contact_info", "text", NULL, REPORT, report, contact_info, TEXT),
	COL(REPORT, "report_id", "text", NULL, REPORT, report, report_id, TEXT),
	COL(REPORT, "date_start", "timestamptz", NULL, REPORT, report, date_start, TEXT),
	COL(REPORT, "date_end", "timestamptz", NULL, REPORT, report, date_end, TEXT),
	COL(REPORT, "report_domain", "text", NULL, DELIVERY, delivery, report_domain, TEXT),
	COL(REPORT, "submitter", "text", NULL, DELIVERY, delivery, submitter, TEXT),
	COL(REPORT, "message_id", "text", NULL, DELIVERY, delivery, message_id, TEXT),
	COL(REPORT, "filename", "text", NULL, FOUND, found_report, filename, TEXT),
	COL(REPORT, "source", "text", NULL, VIA, store_via, channel, CHANNEL),
	COL(REPORT, "notes", "text[]", NULL, REPORT, report, notes, LIST_EMPTY),
	COL(REPORT, "raw", "jsonb", NULL, REPORT, report, raw_json, TEXT),
	COL(REPORT, "dkim_result", "text", NULL, ORIGIN, origin, dkim_result, TEXT),
	COL(REPORT, "dkim_domain", "text", NULL, ORIGIN, origin, dkim_domain, TEXT),
	COL(REPORT, "dkim_aligned", "boolean", NULL, ORIGIN, origin, aligned, TRISTATE),
	COL(REPORT, "origin_method", "text", NULL, ORIGIN, origin, method, TEXT),
	COL(REPORT, "client_addr", "inet", NULL, VIA, store_via, channel, CLIENT_ADDR),
	COL(POLICY, "policy_type", "text", NULL, POLICY, policy, policy_type, TEXT),
	COL(POLICY, "policy_domain", "text", NULL, POLICY, policy, policy_domain, TEXT),
	COL(POLICY, "policy_string", "text", "text[]", POLICY, policy, policy_string, LIST),
	COL(POLICY, "mx_host", "text", "text[]", POLICY, policy, mx_host, LIST),
	COL(POLICY, "total_successful_session_count", "bigint", NULL, POLICY, policy,
	    total_successful_session_count, COUNT),
	COL(POLICY, "total_failure_session_count", "bigint", NULL, POLICY, policy, total_failure_session_count, COUNT),
	COL(FAILURE, "result_type", "text", NULL, FAILURE, failure, result_type, TEXT),
	COL(FAILURE, "sending_mta_ip", "inet", NULL, FAILURE, failure, sending_mta_ip, TEXT),
	COL(FAILURE, "receiving_mx_hostname", "text", NULL, FAILURE, failure, receiving_mx_hostname, TEXT),
	COL(FAILURE, "receiving_mx_helo", "text", NULL, FAILURE, failure, receiving_mx_helo, TEXT),
	COL(FAILURE, "receiving_ip", "inet", NULL, FAILURE, failure, receiving_ip, TEXT),
	COL(FAILURE, "failed_session_count", "bigint", NULL, FAILURE, failure, failed_session_count, COUNT),
	COL(FAILURE, "additional_information", "text", NULL, FAILURE, failure, additional_information, TEXT),
	COL(FAILURE, "failure_reason_code", "text", NULL, FAILURE, failure, failure_reason_code, TEXT),
};

#define STORE_N_COLUMNS (sizeof store_columns / sizeof store_columns[0])

/* The report's shadowed column is tlsrpt.report_claim() of these columns
 * (migration 6, doc/trust.md "Report identity"): whether another sender's
 * copy of the same report counts instead of this one; NULL: nothing to store
 * (the same sender's copy is stored already), so no row comes back. */
static const char *const store_claim_args[] = {
	"organization_name", "report_id", "date_start", "date_end", "raw", "dkim_result", "dkim_aligned",
	"dkim_domain", "source", "client_addr", "submitter",
};
/* The first four are the identity whose advisory lock the statement before
 * the report statement takes (store_sql_lock). */
#define STORE_LOCK_ARGS 4

/* One parameter per column, in their order, then (in the general shape) the
 * policy position of each failure row. */
#define STORE_REPORT_PARAMS ((int)STORE_N_COLUMNS + 1)
#define STORE_POSITIONS_PARAM STORE_REPORT_PARAMS

/* The first failure column (the columns are in their level's order). */
static size_t
store_first_failure_column(void)
{
	size_t c = 0;

	while (store_columns[c].level != STORE_PER_FAILURE)
		c++;
	return c;
}

/* The parameter number of column c (the positions come after the last). */
static int
store_param_number(size_t c)
{
	return (int)c + 1;
}

/* The per-report column of that name. */
static const struct store_column *
store_report_column(const char *name)
{
	for (size_t c = 0; c < STORE_N_COLUMNS; c++)
		if (store_columns[c].level == STORE_PER_REPORT && strcmp(store_columns[c].name, name) == 0)
			return &store_columns[c];
	abort(); /* a name missing from store_columns */
}

/* "$n::type" of the per-report column of that name, in a static buffer. */
static const char *
store_report_param(const char *name)
{
	static char text[64];
	const struct store_column *col = store_report_column(name);

	snprintf(text, sizeof text, "$%d::%s", store_param_number((size_t)(col - store_columns)), col->type);
	return text;
}

static void
store_sql_level(struct buf *sql, enum store_level level, const char *fmt)
{
	bool first = true;

	for (size_t c = 0; c < STORE_N_COLUMNS; c++) {
		const struct store_column *col = &store_columns[c];

		if (col->level != level)
			continue;
		buf_puts(sql, first ? "" : ", ");
		first = false;
		if (fmt[0] == 'n') /* the column's name */
			buf_puts(sql, col->name);
		else if (fmt[0] == 'v') /* the parameter, per report */
			buf_printf(sql, "$%d::%s", store_param_number(c), col->type);
		else if (fmt[0] == 's') /* the parameter, one policy's or failure row's */
			buf_printf(sql, "$%d::%s", store_param_number(c), col->cast ? col->cast : col->type);
		else if (fmt[0] == 'a') /* the parameter, an array */
			buf_printf(sql, "$%d::%s[]", store_param_number(c), col->type);
		else if (fmt[0] == 'c') /* the unnest alias */
			buf_printf(sql, "c%zu", c);
		else /* the SELECT's expression: fmt is the unnest's name */
			buf_printf(sql, "%s.c%zu%s%s", fmt, c, col->cast ? "::" : "", col->cast ? col->cast : "");
	}
}

/* The report statement of a shape. In the general shape the policies go in
 * sorted by their position, so their identity values rise in that order and
 * row_number() over the ids gives each one's position back; the failure rows
 * carry the position of their policy. With one policy the failure rows are
 * its own. first: it stores the report as its first copy
 * (store_send_first_copy). */
static char *
store_report_sql(enum store_shape shape, bool first)
{
	bool one = shape == STORE_SHAPE_ONE || shape == STORE_SHAPE_ONE_ONE || shape == STORE_SHAPE_ONE_MANY;
	struct buf sql = {0};

	buf_puts(&sql, "WITH r AS (INSERT INTO tlsrpt.report (");
	store_sql_level(&sql, STORE_PER_REPORT, "n");
	buf_puts(&sql, ", shadowed, period_month, first_copy) SELECT ");
	store_sql_level(&sql, STORE_PER_REPORT, "v");
	/* the partition key (migration 9): the month of date_end; policies and failures take their report's */
	if (first) {
		/* the identity's lock, taken before the row is inserted (migration 14) */
		buf_printf(&sql, ", false, tlsrpt.period_month(%s), true", store_report_param("date_end"));
		buf_puts(&sql, " FROM (SELECT pg_advisory_xact_lock(8460, tlsrpt.report_lock_key(");
		for (size_t a = 0; a < STORE_LOCK_ARGS; a++)
			buf_printf(&sql, "%s%s", a ? ", " : "", store_report_param(store_claim_args[a]));
		buf_puts(&sql, "))) AS l ON CONFLICT DO NOTHING RETURNING id, period_month),");
	} else {
		/* c.k: 0 the first copy (the common case without PL/pgSQL, migration
		 * 10: under the lock the statement before took, no copy stored yet
		 * of a complete identity), else report_claim()'s answer: 1 counted,
		 * 2 shadowed, NULL nothing to store */
		buf_printf(&sql, ", c.k = 2, tlsrpt.period_month(%s), c.k = 0", store_report_param("date_end"));
		buf_puts(&sql, " FROM (SELECT CASE WHEN ");
		for (size_t a = 0; a < STORE_LOCK_ARGS; a++)
			buf_printf(&sql, "%s IS NOT NULL AND ", store_report_param(store_claim_args[a]));
		buf_puts(&sql, "NOT EXISTS (SELECT FROM tlsrpt.report x WHERE x.content_key IS NULL");
		for (size_t a = 0; a < STORE_LOCK_ARGS; a++)
			buf_printf(&sql, " AND x.%s = %s", store_claim_args[a], store_report_param(store_claim_args[a]));
		buf_puts(&sql, ") THEN 0 ELSE CASE tlsrpt.report_claim(");
		for (size_t a = 0; a < sizeof store_claim_args / sizeof store_claim_args[0]; a++)
			buf_printf(&sql, "%s%s", a ? ", " : "", store_report_param(store_claim_args[a]));
		buf_puts(&sql, ") WHEN false THEN 1 WHEN true THEN 2 END END) AS c(k) WHERE c.k IS NOT NULL"
			       " ON CONFLICT ON CONSTRAINT report_identity DO NOTHING RETURNING id, period_month),");
	}
	buf_puts(&sql, " p AS (INSERT INTO tlsrpt.policy (report, period_month, ");
	store_sql_level(&sql, STORE_PER_POLICY, "n");
	buf_puts(&sql, ") SELECT r.id, r.period_month, ");
	if (one) {
		store_sql_level(&sql, STORE_PER_POLICY, "s");
		buf_puts(&sql, " FROM r");
	} else {
		store_sql_level(&sql, STORE_PER_POLICY, "x");
		buf_puts(&sql, " FROM r, unnest(");
		store_sql_level(&sql, STORE_PER_POLICY, "a");
		buf_puts(&sql, ") WITH ORDINALITY AS x(");
		store_sql_level(&sql, STORE_PER_POLICY, "c");
		buf_puts(&sql, ", n) ORDER BY x.n");
	}
	if (shape == STORE_SHAPE_NO_FAILURES || shape == STORE_SHAPE_ONE) {
		buf_puts(&sql, ") SELECT id FROM r");
		return buf_cstr(&sql);
	}
	buf_puts(&sql, " RETURNING id, period_month),");
	if (!one)
		buf_puts(&sql, " pn AS (SELECT id, period_month, row_number() OVER (ORDER BY id) AS n FROM p),");
	buf_puts(&sql, " f AS (INSERT INTO tlsrpt.failure (policy, period_month, ");
	store_sql_level(&sql, STORE_PER_FAILURE, "n");
	if (shape == STORE_SHAPE_ONE_ONE) {
		buf_puts(&sql, ") SELECT p.id, p.period_month, ");
		store_sql_level(&sql, STORE_PER_FAILURE, "s");
		buf_puts(&sql, " FROM p) SELECT id FROM r");
		return buf_cstr(&sql);
	}
	buf_printf(&sql, ") SELECT %s.id, %s.period_month, ", one ? "p" : "pn", one ? "p" : "pn");
	store_sql_level(&sql, STORE_PER_FAILURE, "y");
	if (one) {
		buf_puts(&sql, " FROM p, unnest(");
		store_sql_level(&sql, STORE_PER_FAILURE, "a");
		buf_puts(&sql, ") WITH ORDINALITY AS y(");
		store_sql_level(&sql, STORE_PER_FAILURE, "c");
		buf_puts(&sql, ", k) ORDER BY y.k) SELECT id FROM r");
		return buf_cstr(&sql);
	}
	buf_printf(&sql, " FROM unnest($%d::bigint[], ", STORE_POSITIONS_PARAM);
	store_sql_level(&sql, STORE_PER_FAILURE, "a");
	buf_puts(&sql, ") WITH ORDINALITY AS y(pol, ");
	store_sql_level(&sql, STORE_PER_FAILURE, "c");
	buf_puts(&sql, ", k) JOIN pn ON pn.n = y.pol ORDER BY y.k) SELECT id FROM r");
	return buf_cstr(&sql);
}

/* The shape a report sent as text goes in. */
static enum store_shape
store_shape_of(const struct report *r)
{
	size_t failures = report_failure_rows(r);

	if (r->n_policies != 1)
		return failures == 0 ? STORE_SHAPE_NO_FAILURES : STORE_SHAPE_GENERAL;
	return failures == 0 ? STORE_SHAPE_ONE : failures == 1 ? STORE_SHAPE_ONE_ONE : STORE_SHAPE_ONE_MANY;
}

/* How many parameters a shape's statement is sent: without failure rows the
 * report's and the policies' (numbered before the failures'), the positions
 * in the general shape only. */
static int
store_shape_params(enum store_shape shape)
{
	if (shape == STORE_SHAPE_NO_FAILURES || shape == STORE_SHAPE_ONE)
		return (int)store_first_failure_column();
	return shape == STORE_SHAPE_GENERAL ? STORE_REPORT_PARAMS : (int)STORE_N_COLUMNS;
}

/* A store on conn (open, or still connecting), with cfg's settings. */
static struct store *
store_new(PGconn *conn, bool connecting, const struct config *cfg)
{
	struct store *s = xcalloc(1, sizeof *s);

	s->conn = conn;
	s->connecting = connecting;
	s->statement_timeout = cfg->statement_timeout;
	s->lock_timeout = cfg->lock_timeout;
	s->max_rejected_raw = cfg->limits.max_rejected_raw;
	s->raw_per_source_day = cfg->limits.max_rejected_raw_per_source_day;
	s->raw_per_day = cfg->limits.max_rejected_raw_per_day;
	for (int shape = 0; shape < STORE_N_SHAPES; shape++) {
		s->report_sql[shape] = store_report_sql((enum store_shape)shape, false);
		s->first_copy_sql[shape] = store_report_sql((enum store_shape)shape, true);
	}
	return s;
}

int
store_open(struct store **out, const struct config *cfg, struct error *e)
{
	PGconn *conn;

	*out = NULL;
	if ((conn = pgconn_open(cfg, e)) == NULL)
		return -1;
	*out = store_new(conn, false, cfg);
	return 0;
}

int
store_open_start(struct store **out, const struct config *cfg, struct error *e)
{
	PGconn *conn;

	*out = NULL;
	if ((conn = pgconn_start(cfg, e)) == NULL)
		return -1;
	*out = store_new(conn, true, cfg);
	return 0;
}

int
store_ready(struct store *s, const struct config *cfg, struct error *e)
{
	if (!s->connecting)
		return 0;
	if (pgconn_complete(s->conn, cfg, e) < 0)
		return -1;
	s->connecting = false;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	PQfinish(s->conn);
	for (int shape = 0; shape < STORE_N_SHAPES; shape++) {
		free(s->report_sql[shape]);
		free(s->first_copy_sql[shape]);
	}
	free(s);
}

PGconn *
store_conn(const struct store *s)
{
	return s->conn;
}

/* ---- values as text ---- */

/* A PostgreSQL array literal; NULL elements for missing values. */
static void
store_array_add(struct buf *b, const char *v)
{
	buf_puts(b, b->len > 1 ? "," : "");
	if (v == NULL) {
		buf_puts(b, "NULL");
		return;
	}
	buf_puts(b, "\"");
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_puts(b, "\"");
}

static char *
store_list_text(const struct strlist *l)
{
	struct buf b = {0};

	if (!l->present)
		return NULL;
	buf_puts(&b, "{");
	for (size_t i = 0; i < l->n; i++)
		store_array_add(&b, l->items[i]);
	buf_puts(&b, "}");
	return buf_cstr(&b);
}

static const char *
store_channel_name(enum store_channel ch)
{
	return ch == STORE_CHANNEL_FILE ? "file" : ch == STORE_CHANNEL_HTTPS ? "https" : "mail";
}

/* What one report statement reads its values from. */
struct store_row {
	const void *from[STORE_FROM_FAILURE + 1];
};

/* Column col's value as text (NULL: SQL NULL); *owned is what to free. */
static const char *
store_value(const struct store_column *col, const struct store_row *row, char **owned)
{
	const char *at = (const char *)row->from[col->from] + col->offset;

	*owned = NULL;
	switch (col->fill) {
	case STORE_FILL_TEXT:
		return *(const char *const *)(const void *)at;
	case STORE_FILL_LIST:
	case STORE_FILL_LIST_EMPTY:
		*owned = store_list_text((const struct strlist *)(const void *)at);
		return *owned ? *owned : col->fill == STORE_FILL_LIST_EMPTY ? "{}" : NULL;
	case STORE_FILL_COUNT: {
		const struct count *n = (const struct count *)(const void *)at;

		return n->present ? (*owned = xasprintf("%lld", (long long)n->value)) : NULL;
	}
	case STORE_FILL_TRISTATE: {
		enum tristate t = *(const enum tristate *)(const void *)at;

		return t == TRI_UNKNOWN ? NULL : t == TRI_TRUE ? "true" : "false";
	}
	case STORE_FILL_CHANNEL:
		return store_channel_name(*(const enum store_channel *)(const void *)at);
	case STORE_FILL_CLIENT_ADDR: {
		const struct store_via *via = row->from[STORE_FROM_VIA];
		unsigned char addr[16];

		if (via->channel != STORE_CHANNEL_HTTPS || via->sender == NULL)
			return NULL;
		return inet_pton(AF_INET, via->sender, addr) == 1 || inet_pton(AF_INET6, via->sender, addr) == 1
			       ? via->sender : NULL;
	}
	}
	return NULL;
}

/* Appends one element per column of level to its array. */
static void
store_add_elements(struct buf *arrays, enum store_level level, const struct store_row *row)
{
	for (size_t c = 0; c < STORE_N_COLUMNS; c++) {
		char *owned;

		if (store_columns[c].level != level)
			continue;
		store_array_add(&arrays[c], store_value(&store_columns[c], row, &owned));
		free(owned);
	}
}

/* Whether a shape sends the columns of level as scalars (those of the first
 * policy, or of its first failure row). */
static bool
store_shape_scalar(enum store_shape shape, enum store_level level)
{
	if (level == STORE_PER_POLICY)
		return shape == STORE_SHAPE_ONE || shape == STORE_SHAPE_ONE_ONE || shape == STORE_SHAPE_ONE_MANY;
	return level == STORE_PER_REPORT || (level == STORE_PER_FAILURE && shape == STORE_SHAPE_ONE_ONE);
}

/* The report statement's values in a shape: per report as they are, per
 * policy and per failure as arrays (arrays[c] for column c, and the
 * positions) or, where the shape has scalars, as they are. */
static void
store_report_values(const struct delivery *d, const struct found_report *fr, const struct store_via *via,
		    enum store_shape shape, const char **values, char **owned, struct buf *arrays,
		    struct buf *positions)
{
	struct store_row row = {{fr->report, fr, d, &d->origin, via, NULL, NULL}};
	const struct report *r = fr->report;

	buf_puts(positions, "{");
	for (size_t c = 0; c < STORE_N_COLUMNS; c++)
		if (store_columns[c].level != STORE_PER_REPORT)
			buf_puts(&arrays[c], "{");
	for (size_t i = 0; i < r->n_policies; i++) {
		const struct policy *p = &r->policies[i];
		char pos[24];

		row.from[STORE_FROM_POLICY] = p;
		store_add_elements(arrays, STORE_PER_POLICY, &row);
		snprintf(pos, sizeof pos, "%zu", i + 1);
		for (size_t j = 0; j < p->n_failures; j++) {
			row.from[STORE_FROM_FAILURE] = &p->failures[j];
			store_add_elements(arrays, STORE_PER_FAILURE, &row);
			store_array_add(positions, pos);
		}
	}
	buf_puts(positions, "}");
	if (r->n_policies > 0) {
		row.from[STORE_FROM_POLICY] = &r->policies[0];
		row.from[STORE_FROM_FAILURE] = r->policies[0].n_failures > 0 ? &r->policies[0].failures[0] : NULL;
	}
	for (size_t c = 0; c < STORE_N_COLUMNS; c++) {
		int n = store_param_number(c) - 1;

		if (store_shape_scalar(shape, store_columns[c].level)) {
			values[n] = store_value(&store_columns[c], &row, &owned[c]);
			continue;
		}
		buf_puts(&arrays[c], "}");
		values[n] = buf_cstr(&arrays[c]);
	}
	values[STORE_POSITIONS_PARAM - 1] = buf_cstr(positions);
}

/* ---- statements ---- */

static int
store_send_params(struct store *s, const char *sql, int n, const char *const *values, const int *lengths,
		  const int *formats, const char *what, enum pg_failure *kind, struct error *e)
{
	if (PQsendQueryParams(s->conn, sql, n, NULL, values, lengths, formats, 0))
		return 0;
	*kind = pgconn_failed(s->conn, NULL, what, e);
	return -1;
}

int
store_send_plain(struct store *s, const char *sql, const char *what, enum pg_failure *kind, struct error *e)
{
	return store_send_params(s, sql, 0, NULL, NULL, NULL, what, kind, e);
}

int
store_send_prepare_report(struct store *s, struct error *e)
{
	if (PQsendPrepare(s->conn, STORE_REPORT_STMT, s->report_sql[STORE_SHAPE_GENERAL], STORE_REPORT_PARAMS, NULL))
		return 0;
	pgconn_failed(s->conn, NULL, "preparing the report statement", e);
	return -1;
}

/* Before each report statement, in a statement of its own (migration 10):
 * the identity's advisory lock, held until COMMIT, so that the report
 * statement, which starts after it, sees every copy of the report committed
 * before it (copies arriving at the same time take turns). */
/* The timeouts as set_config() values (each buffer 16 bytes). */
static void
store_timeout_texts(const struct store *s, char *st_text, char *lt_text)
{
	snprintf(st_text, 16, "%us", s->statement_timeout);
	snprintf(lt_text, 16, "%us", s->lock_timeout);
}

#define STORE_LOCK_KEY "tlsrpt.report_lock_key($1::text, $2::text, $3::timestamptz, $4::timestamptz)"
/* The lock, and the same setting the transaction's timeouts first (one
 * statement instead of two; store_send_timeouts): the subquery, which has
 * volatile functions, is evaluated before the lock is asked for. */
static const char *const store_sql_lock[] = {
	[STORE_TIMEOUTS_SET] = "SELECT pg_advisory_xact_lock(8460, " STORE_LOCK_KEY ")",
	[STORE_TIMEOUTS_LOCAL] = "SELECT pg_advisory_xact_lock(8460, t.k) FROM (SELECT"
				 " set_config('statement_timeout', $5, true) AS st, set_config('lock_timeout', $6, true) AS lt,"
				 " " STORE_LOCK_KEY " AS k) AS t",
	[STORE_TIMEOUTS_GROUP] = "SELECT pg_advisory_xact_lock(8460, t.k) FROM (SELECT"
				 " set_config('statement_timeout', $5, true) AS st, set_config('lock_timeout', $6, true) AS lt,"
				 " set_config('synchronous_commit', 'off', true) AS sc, " STORE_LOCK_KEY " AS k) AS t",
};

static int
store_send_lock(struct store *s, const struct delivery *d, const struct found_report *fr,
		const struct store_via *via, enum store_timeouts timeouts, enum pg_failure *kind, struct error *e)
{
	struct store_row row = {{fr->report, fr, d, &d->origin, via, NULL, NULL}};
	char st_text[16], lt_text[16];
	const char *values[STORE_LOCK_ARGS + 2] = {0};
	char *owned[STORE_LOCK_ARGS] = {0};
	int rc;

	for (size_t a = 0; a < STORE_LOCK_ARGS; a++)
		values[a] = store_value(store_report_column(store_claim_args[a]), &row, &owned[a]);
	store_timeout_texts(s, st_text, lt_text);
	values[STORE_LOCK_ARGS] = st_text;
	values[STORE_LOCK_ARGS + 1] = lt_text;
	rc = store_send_params(s, store_sql_lock[timeouts], STORE_LOCK_ARGS + 2 * (timeouts != STORE_TIMEOUTS_SET),
			       values, NULL, NULL, "storing a report", kind, e);
	for (size_t a = 0; a < STORE_LOCK_ARGS; a++)
		free(owned[a]);
	return rc;
}

bool
store_delivery_locks_first(const struct delivery *d, const struct store_fallback *fb)
{
	return d->rejected_id == 0 && d->n_reports > 0 && (fb == NULL || fb->refused == NULL || fb->refused[0] == NULL);
}

/* stmt: the name the report statement is prepared under, NULL to send its
 * text; first: as the report's first copy (store_send_first_copy; text). */
static int
store_send_report(struct store *s, const struct delivery *d, const struct found_report *fr,
		  const struct store_via *via, const char *stmt, bool first, enum pg_failure *kind, struct error *e)
{
	const char *values[STORE_REPORT_PARAMS] = {0};
	char *owned[STORE_N_COLUMNS] = {0};
	struct buf arrays[STORE_N_COLUMNS], positions = {0};
	enum store_shape shape = stmt != NULL ? STORE_SHAPE_GENERAL : store_shape_of(fr->report);
	int rc = 0;

	memset(arrays, 0, sizeof arrays);
	store_report_values(d, fr, via, shape, values, owned, arrays, &positions);
	if (stmt == NULL)
		rc = store_send_params(s, (first ? s->first_copy_sql : s->report_sql)[shape], store_shape_params(shape),
				       values, NULL, NULL, "storing a report", kind, e);
	else if (!PQsendQueryPrepared(s->conn, stmt, STORE_REPORT_PARAMS, values, NULL, NULL, 0)) {
		*kind = pgconn_failed(s->conn, NULL, "storing a report", e);
		rc = -1;
	}
	for (size_t c = 0; c < STORE_N_COLUMNS; c++) {
		free(owned[c]);
		buf_free(&arrays[c]);
	}
	buf_free(&positions);
	return rc;
}

/* The raw copy is kept while its source ($10) has stored at most $11 bytes of
 * raw copies in the last 24 hours and all sources together at most $12 (NULL:
 * no limit); past that the row keeps no bytes (raw_withheld). Each sum is one
 * index-only range (migration 007). Deliveries in parallel do not see each
 * other's rows before COMMIT: the budget may be passed by at most one
 * max_rejected_raw per delivery running at the same time. */
static const char store_sql_rejected[] =
	"INSERT INTO tlsrpt.rejected (message_id, sender, subject, filename, source, reason, raw, raw_size, digest,"
	" source_key, raw_withheld)"
	" SELECT $1, $2, $3, $4, $5, $6, CASE WHEN b.keep THEN $7::bytea ELSE ''::bytea END, $8::bigint, $9,"
	" $10::text, NOT b.keep"
	" FROM (SELECT octet_length($7::bytea) = 0 OR ("
	"  ($11::bigint IS NULL OR octet_length($7::bytea) + coalesce((SELECT sum(r.raw_stored)"
	"   FROM tlsrpt.rejected r WHERE r.source_key = $10::text AND r.raw_stored > 0"
	"   AND r.received_at > now() - interval '1 day'), 0) <= $11::bigint)"
	"  AND ($12::bigint IS NULL OR octet_length($7::bytea) + coalesce((SELECT sum(r.raw_stored)"
	"   FROM tlsrpt.rejected r WHERE r.raw_stored > 0"
	"   AND r.received_at > now() - interval '1 day'), 0) <= $12::bigint)) AS keep) b"
	" ON CONFLICT (digest) DO NOTHING RETURNING id";

/* Whose budget a rejection counts against: 'https:' and the client's address;
 * 'mail:' (or 'file:') and the sender's domain, lower case, '-' unknown. */
static char *
store_source_key(const struct delivery *d, const struct store_via *via)
{
	const char *who = via->sender ? via->sender : d->sender;
	const char *at = who ? strrchr(who, '@') : NULL;
	struct buf b = {0};

	buf_printf(&b, "%s:", store_channel_name(via->channel));
	if (via->channel == STORE_CHANNEL_HTTPS) {
		buf_puts(&b, who ? who : "-");
		return buf_cstr(&b);
	}
	if (at == NULL || at[1] == '\0' || strchr(".-", at[1]) != NULL) {
		buf_puts(&b, "-");
		return buf_cstr(&b);
	}
	for (const char *p = at + 1; *p && (isalnum((unsigned char)*p) || *p == '.' || *p == '-'); p++) {
		char c = (char)tolower((unsigned char)*p);

		buf_append(&b, &c, 1);
	}
	return buf_cstr(&b);
}

/* A rejection's text as it is stored: valid UTF-8 (a server's error text may
 * be cut inside a character), in ASCII when asked (any server encoding). */
static char *
store_text(const char *v, bool ascii)
{
	char *clean;

	if (v == NULL)
		return NULL;
	clean = text_clean(v, strlen(v), NULL);
	if (ascii) {
		char *a = text_ascii(clean);

		free(clean);
		return a;
	}
	return clean;
}

static int
store_send_rejection(struct store *s, const struct delivery *d, const struct rejection *rj, const char *reason,
		     const struct store_via *via, bool ascii, enum pg_failure *kind, struct error *e)
{
	char size[24], per_source[24], per_day[24];
	char *key = store_source_key(d, via);
	char *texts[6] = {
		store_text(d->message_id, ascii), store_text(via->sender ? via->sender : d->sender, ascii),
		store_text(d->subject, ascii), store_text(rj->filename, ascii), store_text(reason, ascii),
		store_text(key, ascii),
	};
	bool budget = via->channel != STORE_CHANNEL_FILE; /* a FILE run is the administrator's own */
	const char *values[12] = {
		texts[0], texts[1], texts[2], texts[3],
		store_channel_name(via->channel), texts[4], (const char *)rj->raw, size, rj->digest, texts[5],
		budget && s->raw_per_source_day ? per_source : NULL, budget && s->raw_per_day ? per_day : NULL,
	};
	int lengths[12] = {0, 0, 0, 0, 0, 0, (int)rj->raw_len, 0, 0, 0, 0, 0};
	int formats[12] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
	int rc;

	snprintf(size, sizeof size, "%zu", rj->original_len);
	snprintf(per_source, sizeof per_source, "%zu", s->raw_per_source_day);
	snprintf(per_day, sizeof per_day, "%zu", s->raw_per_day);
	rc = store_send_params(s, store_sql_rejected, 12, values, lengths, formats, "storing a rejected message",
			       kind, e);
	for (size_t i = 0; i < 6; i++)
		free(texts[i]);
	free(key);
	return rc;
}

/* A report the database refused as data (an over-long key, say) is kept as rejected instead. */
static void
store_report_as_rejection(const struct store *s, const struct found_report *fr, struct rejection *rj)
{
	const char *raw = fr->report->raw_json;

	memset(rj, 0, sizeof *rj);
	rj->filename = fr->filename;
	rj->raw = (unsigned char *)raw;
	rj->original_len = strlen(raw);
	rj->raw_len = rj->original_len < s->max_rejected_raw ? rj->original_len : s->max_rejected_raw;
	snprintf(rj->digest, sizeof rj->digest, "%s", fr->digest);
}

size_t
store_delivery_steps(const struct delivery *d)
{
	return 2 * d->n_reports + d->n_rejections + (d->rejected_id != 0);
}

/* A reprocess: the rejected row a delivery was read from goes when reports
 * came out of it (first, so that a piece of it kept again under the same
 * digest is inserted again, not absorbed); else it stays, with its reason. */
static const char store_sql_redo_delete[] = "DELETE FROM tlsrpt.rejected WHERE id = $1::bigint RETURNING id";
static const char store_sql_redo_update[] =
	"UPDATE tlsrpt.rejected SET reason = $2 WHERE id = $1::bigint AND reason IS DISTINCT FROM $2 RETURNING id";

/* the first reason the database refused one of d's reports for, or NULL */
static const char *
store_first_refused(const struct delivery *d, const struct store_fallback *fb)
{
	for (size_t i = 0; fb != NULL && fb->refused != NULL && i < d->n_reports; i++)
		if (fb->refused[i] != NULL)
			return fb->refused[i];
	return NULL;
}

/* 1: the delivery's statements follow (its reports replace the row, or stand
 * beside it when it stays); 0: that was all of it; -1: sending failed. */
static int
store_send_redo(struct store *s, const struct delivery *d, const char *refused, struct store_step *steps, size_t *n,
		enum pg_failure *kind, struct error *e)
{
	char id[24];
	const char *values[2] = {id, refused ? refused : d->rejected_reason ? d->rejected_reason : "reprocessed"};

	snprintf(id, sizeof id, "%lld", d->rejected_id);
	if (d->n_reports > 0 && refused == NULL && !d->rejected_stays) {
		steps[(*n)++] = (struct store_step){STORE_STEP_REDO_DELETE, "deleting the reprocessed rejected row", 0};
		return store_send_params(s, store_sql_redo_delete, 1, values, NULL, NULL,
					 "deleting the reprocessed rejected row", kind, e) < 0 ? -1 : 1;
	}
	steps[(*n)++] = (struct store_step){STORE_STEP_REDO_UPDATE, "updating the reprocessed rejected row", 0};
	if (store_send_params(s, store_sql_redo_update, 2, values, NULL, NULL, "updating the reprocessed rejected row",
			      kind, e) < 0)
		return -1;
	return d->n_reports > 0 && refused == NULL ? 1 : 0; /* rejected_stays: its reports follow */
}

static const char store_sql_timeouts[] =
	"SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)";

int
store_send_timeouts(struct store *s, enum pg_failure *kind, struct error *e)
{
	char st_text[16], lt_text[16];
	const char *timeouts[2] = {st_text, lt_text};

	store_timeout_texts(s, st_text, lt_text);
	return store_send_params(s, store_sql_timeouts, 2, timeouts, NULL, NULL, "BEGIN", kind, e);
}

/* The same, and this transaction's COMMIT does not wait for the disk (group
 * commit, pipeline.c): one statement instead of two for each message. */
static const char store_sql_timeouts_group[] =
	"SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true),"
	" set_config('synchronous_commit', 'off', true)";

int
store_send_timeouts_group(struct store *s, enum pg_failure *kind, struct error *e)
{
	char st_text[16], lt_text[16];
	const char *timeouts[2] = {st_text, lt_text};

	store_timeout_texts(s, st_text, lt_text);
	return store_send_params(s, store_sql_timeouts_group, 2, timeouts, NULL, NULL, "BEGIN", kind, e);
}

bool
store_delivery_first_copy(const struct delivery *d, const struct store_fallback *fb)
{
	const struct report *r = d->n_reports == 1 ? d->reports[0].report : NULL;

	return r != NULL && d->rejected_id == 0 && d->n_rejections == 0 && (fb == NULL || fb->refused == NULL) &&
	       r->organization_name != NULL && r->report_id != NULL && r->date_start != NULL && r->date_end != NULL;
}

int
store_send_first_copy(struct store *s, const struct delivery *d, const struct store_via *via,
		      struct store_step *steps, size_t *n, enum pg_failure *kind, struct error *e)
{
	steps[(*n)++] = (struct store_step){STORE_STEP_FIRST_COPY, "storing a report", 0};
	return store_send_report(s, d, &d->reports[0], via, NULL, true, kind, e);
}

int
store_send_delivery(struct store *s, const struct delivery *d, const struct store_via *via,
		    const struct store_fallback *fb, enum store_timeouts timeouts, const char *stmt,
		    struct store_step *steps, size_t *n, enum pg_failure *kind, struct error *e)
{
	bool ascii = fb != NULL && fb->ascii;
	struct store_via own;
	int rc = 0;

	if (d->rejected_id != 0) {
		if ((rc = store_send_redo(s, d, store_first_refused(d, fb), steps, n, kind, e)) <= 0)
			return rc;
		/* an HTTPS row's sender column is the address it was posted from */
		own = (struct store_via){(enum store_channel)d->rejected_source,
					 d->rejected_source == STORE_CHANNEL_HTTPS ? d->sender : via->sender};
		via = &own;
		rc = 0;
	}
	for (size_t i = 0; i < d->n_reports && rc == 0; i++) {
		const char *refused = fb != NULL && fb->refused != NULL ? fb->refused[i] : NULL;

		if (refused == NULL) {
			rc = store_send_lock(s, d, &d->reports[i], via, timeouts, kind, e);
			timeouts = STORE_TIMEOUTS_SET;
			steps[(*n)++] = (struct store_step){STORE_STEP_LOCK, "storing a report", i};
			if (rc == 0)
				rc = store_send_report(s, d, &d->reports[i], via, stmt, false, kind, e);
			steps[(*n)++] = (struct store_step){STORE_STEP_REPORT, "storing a report", i};
		} else {
			struct rejection rj;

			store_report_as_rejection(s, &d->reports[i], &rj);
			rc = store_send_rejection(s, d, &rj, refused, via, ascii, kind, e);
			steps[(*n)++] = (struct store_step){STORE_STEP_REJECTED, "storing a rejected message", i};
		}
	}
	for (size_t i = 0; i < d->n_rejections && rc == 0; i++) {
		rc = store_send_rejection(s, d, &d->rejections[i], d->rejections[i].reason, via, ascii, kind, e);
		steps[(*n)++] = (struct store_step){STORE_STEP_REJECTED, "storing a rejected message", 0};
	}
	return rc;
}
