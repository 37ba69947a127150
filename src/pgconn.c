/* pgconn.c - connecting, and classifying what the server refused. */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"

static void
notice_to_log(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("server: %.*s", (int)n, message);
}

/* libpq's messages span lines; the MTA reads one. */
static void
one_line(char *dst, size_t size, const char *src)
{
	size_t j = 0;

	for (size_t i = 0; src && src[i] && j + 1 < size; i++) {
		char c = src[i];

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		if (c == ' ' && (j == 0 || dst[j - 1] == ' '))
			continue;
		dst[j++] = c;
	}
	while (j > 0 && dst[j - 1] == ' ')
		j--;
	if (j > 0) { /* cut at size: never inside a UTF-8 character */
		size_t k = j, need;
		unsigned char lead;

		while (k > 0 && ((unsigned char)dst[k - 1] & 0xC0) == 0x80)
			k--;
		lead = k > 0 ? (unsigned char)dst[k - 1] : 0;
		need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
		if (k > 0 && lead >= 0xC0 && j - (k - 1) < need)
			j = k - 1;
	}
	dst[j] = '\0';
}

/* The connection's parameters, for pgconn_open and pgconn_start alike.
 * client_encoding: we send and read UTF-8, whatever the database's own
 * encoding (a LATIN1 database converts, and refuses what it cannot hold). */
static const char *const pgconn_keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname", NULL};

static void
pgconn_values(const struct config *cfg, char *timeout, size_t timeout_size, const char *values[5])
{
	snprintf(timeout, timeout_size, "%u", cfg->connect_timeout);
	values[0] = getenv("PGCONNECT_TIMEOUT") ? NULL : timeout;
	values[1] = "tlsrpt-ingest";
	values[2] = "UTF8";
	values[3] = cfg->database ? cfg->database : "";
	values[4] = NULL;
}

/* A connection that failed: libpq's reason, on one line, as a temporary error. */
static void
pgconn_unavailable(PGconn *conn, struct error *e)
{
	char msg[400];

	one_line(msg, sizeof msg, PQerrorMessage(conn));
	error_set(e, ERR_TEMP, "database unavailable: %s", msg);
}

PGconn *
pgconn_open(const struct config *cfg, struct error *e)
{
	const char *values[5];
	char timeout[16];
	PGconn *conn;

	pgconn_values(cfg, timeout, sizeof timeout, values);
	conn = PQconnectdbParams(pgconn_keys, values, 1);
	if (conn == NULL) {
		error_set(e, ERR_TEMP, "database connection: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		pgconn_unavailable(conn, e);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	return conn;
}

/* The connection started, its start-up packet sent (PQconnectPoll until it
 * waits for the server's answer): the server starts its backend while we go
 * on. pgconn_complete finishes it. */
PGconn *
pgconn_start(const struct config *cfg, struct error *e)
{
	const char *values[5];
	char timeout[16];
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *conn;

	pgconn_values(cfg, timeout, sizeof timeout, values);
	conn = PQconnectStartParams(pgconn_keys, values, 1);
	if (conn == NULL) {
		error_set(e, ERR_TEMP, "database connection: out of memory");
		return NULL;
	}
	/* a Unix socket or a local TCP connect completes at once: send the start-up packet now */
	for (int i = 0; i < 4 && PQstatus(conn) != CONNECTION_BAD && st == PGRES_POLLING_WRITING; i++) {
		struct pollfd pfd = {PQsocket(conn), POLLOUT, 0};

		if (poll(&pfd, 1, 0) <= 0)
			break;
		st = PQconnectPoll(conn);
	}
	if (PQstatus(conn) == CONNECTION_BAD) {
		pgconn_unavailable(conn, e);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	return conn;
}

int
pgconn_complete(PGconn *conn, const struct config *cfg, struct error *e)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	while (PQstatus(conn) != CONNECTION_OK && PQstatus(conn) != CONNECTION_BAD) {
		struct pollfd pfd = {PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
		int n = poll(&pfd, 1, cfg->connect_timeout > 0 ? (int)cfg->connect_timeout * 1000 : -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			error_set(e, ERR_TEMP, "database unavailable: %s", n == 0 ? "timeout expired" : strerror(errno));
			return -1;
		}
		if ((st = PQconnectPoll(conn)) == PGRES_POLLING_OK || st == PGRES_POLLING_FAILED)
			break;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		pgconn_unavailable(conn, e);
		return -1;
	}
	return 0;
}

static bool
state_is(const char *state, const char *prefix)
{
	return strncmp(state, prefix, strlen(prefix)) == 0;
}

static enum pg_failure
classify(PGconn *conn, const char *state)
{
	if (PQstatus(conn) == CONNECTION_BAD || state == NULL)
		return PG_FAIL_TEMP;
	if (state_is(state, "40001") || state_is(state, "40P01"))
		return PG_FAIL_RETRY;
	if (state_is(state, "22") || state_is(state, "23") || state_is(state, "54"))
		return PG_FAIL_DATA;
	if (state_is(state, "42") || state_is(state, "3D") || state_is(state, "3F") ||
	    state_is(state, "28") || state_is(state, "0A"))
		return PG_FAIL_CONFIG;
	if (state_is(state, "25P02"))
		return PG_FAIL_BUG;
	return PG_FAIL_TEMP; /* 08, 53, 55P03, 57014, 57P0x, 58, 25006, XX... */
}

int
pgconn_begin(PGconn *conn, const struct config *cfg, const char *mode, struct error *e)
{
	char sql[256];
	PGresult *res;
	int rc = 0;

	snprintf(sql, sizeof sql, "BEGIN %s; SET LOCAL statement_timeout = '%us'; SET LOCAL lock_timeout = '%us'",
		 mode ? mode : "", cfg->statement_timeout, cfg->lock_timeout);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_failed(conn, res, "BEGIN", e);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

enum pg_failure
pgconn_failed(PGconn *conn, const PGresult *res, const char *what, struct error *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	enum pg_failure k = classify(conn, state);
	static const enum err_class cls[] = {
		[PG_FAIL_TEMP] = ERR_TEMP, [PG_FAIL_RETRY] = ERR_TEMP, [PG_FAIL_DATA] = ERR_INPUT,
		[PG_FAIL_CONFIG] = ERR_CONFIG, [PG_FAIL_BUG] = ERR_BUG,
	};
	char msg[400];

	one_line(msg, sizeof msg, res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
								   : PQerrorMessage(conn));
	if (k == PG_FAIL_CONFIG && (state_is(state, "42P01") || state_is(state, "3F000") ||
				    state_is(state, "42883") || state_is(state, "42703")))
		error_set(e, ERR_CONFIG, "%s: %s [%s] (run tlsrpt-ingest --init-db)", what, msg, state);
	else if (state != NULL)
		error_set(e, cls[k], "%s: %s [%s]", what, msg, state);
	else
		error_set(e, cls[k], "%s: %s", what, msg);
	return k;
}
