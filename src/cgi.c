/* cgi.c - one RFC 8460 section 5.4 POST, as a CGI program (RFC 3875).
 * The web server (nginx + fcgiwrap, Apache, ...) hands us the request in the
 * environment and the body on standard input; the answer goes to standard
 * output as CGI header lines and a one-line text body. Only the HTTP side is
 * here: the report goes through deliver.c like a mailed one, with source
 * https; the deadline's answer is exits.c's. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "deliver.h"
#include "exits.h"
#include "log.h"
#include "source.h"
#include "util.h"

#define CGI_RETRY_AFTER "Retry-After: 300\r\n"

bool
cgi_active(void)
{
	const char *gi = getenv("GATEWAY_INTERFACE");
	const char *method = getenv("REQUEST_METHOD");

	/* both, and a CGI/ prefix: a stray GATEWAY_INTERFACE in an MTA's
	 * environment must not turn a mail delivery into an HTTP answer */
	return gi != NULL && strncmp(gi, "CGI/", 4) == 0 && method != NULL && *method != '\0';
}

bool
cgi_argv_from_query(int argc)
{
	const char *q = getenv("QUERY_STRING");

	return argc > 1 && q != NULL && *q != '\0' && strchr(q, '=') == NULL;
}

static const char *
cgi_reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Bytes of the body not read yet, by CONTENT_LENGTH. */
static unsigned long long cgi_body_left;

/* Reads what is left of the body and throws it away: a web server that is
 * still writing it (fcgiwrap) takes a closed pipe for a crash (502). */
static void
cgi_drain_body(void)
{
	char scratch[65536];

	while (cgi_body_left > 0) {
		ssize_t n = read(STDIN_FILENO, scratch,
				 cgi_body_left < sizeof scratch ? (size_t)cgi_body_left : sizeof scratch);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cgi_body_left -= (unsigned long long)n;
	}
}

/* Writes the response; extra is more header lines, each ending in CRLF. */
static int cgi_respond(int status, const char *extra, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
cgi_respond(int status, const char *extra, const char *fmt, ...)
{
	char body[700];
	va_list ap;

	cgi_drain_body();
	alarm(0);
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	for (char *p = body; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	printf("Status: %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\n\r\n%s\n", status,
	       cgi_reason_phrase(status), extra ? extra : "", body);
	return fflush(stdout) == 0 ? 0 : exits_answer(ERR_TEMP)->status;
}

/* The answer for a failure of class cls (exits.h's HTTP column). */
static int
cgi_fail_as(enum err_class cls, const char *why, const char *told)
{
	int http = exits_answer(cls)->http;

	log_error("https: %s", why);
	if (http == 503 && told == NULL && cls == ERR_BUG)
		told = "internal error (see the server's log); try again later";
	if (http == 503)
		return cgi_respond(503, CGI_RETRY_AFTER, "%s", told ? told : why);
	if (http >= 500) /* the details are for the administrator, in the log */
		return cgi_respond(http, NULL, "the server is not set up right; see its log");
	return cgi_respond(http, NULL, "%s", why);
}

int
cgi_fail(const struct error *e)
{
	return cgi_fail_as(e->cls, e->msg, NULL);
}

/* "application/TLSRPT+gzip; charset=x" -> "application/tlsrpt+gzip" */
static void
cgi_media_type(const char *ct, char *out, size_t size)
{
	size_t j = 0;

	while (ct && isspace((unsigned char)*ct))
		ct++;
	for (; ct && *ct && *ct != ';' && !isspace((unsigned char)*ct) && j + 1 < size; ct++)
		out[j++] = (char)tolower((unsigned char)*ct);
	out[j] = '\0';
}

/* Method, type and length; then the body. 0 with the body in it, or the exit
 * status once the answer is written. */
static int
cgi_read_request(const struct limits *lim, char *type, size_t type_size, struct buf *body, size_t *total)
{
	const char *method = getenv("REQUEST_METHOD"), *clen = getenv("CONTENT_LENGTH");
	bool has_length = clen != NULL && *clen != '\0';
	unsigned long long declared = 0;

	if (has_length && parse_uint(clen, ~0ULL, &declared))
		cgi_body_left = declared;
	if (method == NULL || strcmp(method, "POST") != 0)
		return cgi_respond(405, "Allow: POST\r\n", "only POST is accepted here (RFC 8460 section 5.4)");
	cgi_media_type(getenv("CONTENT_TYPE"), type, type_size);
	if (strcmp(type, "application/tlsrpt+gzip") != 0 && strcmp(type, "application/tlsrpt+json") != 0)
		return cgi_respond(415, NULL, "Content-Type must be application/tlsrpt+gzip or application/tlsrpt+json");
	if (has_length && !parse_uint(clen, ~0ULL, &declared))
		return cgi_respond(400, NULL, "bad Content-Length");
	if (has_length && declared > lim->max_message_size)
		return cgi_respond(413, NULL, "the body is %llu bytes, over the limit of %zu", declared,
				   lim->max_message_size);
	if (source_read(STDIN_FILENO, has_length ? (size_t)declared : SIZE_MAX, lim->max_message_size, body, total) < 0)
		return cgi_respond(400, NULL, "reading the body: %s", strerror(errno));
	if (*total > lim->max_message_size)
		return cgi_respond(413, NULL, "the body is over the limit of %zu bytes", lim->max_message_size);
	if (has_length && *total < declared)
		return cgi_respond(400, NULL, "the body ended after %zu of %llu bytes", *total, declared);
	return -1;
}

/* The answer for a message that went through deliver_one. */
static int
cgi_answer(const struct deliver_result *r)
{
	if (r->n_reports == 0)
		return cgi_respond(400, NULL, "not a TLS-RPT report: %s (kept)", r->reason);
	if (r->outcome == DELIVER_STORED)
		return cgi_respond(201, NULL, "stored %zu report(s)", r->stored.reports_new);
	if (r->outcome == DELIVER_REJECTED) /* the database refused it as data: kept in tlsrpt.rejected */
		return cgi_respond(400, NULL, "refused by the database (kept)");
	return cgi_respond(200, NULL, "already stored");
}

int
cgi_main(const struct config *cfg)
{
	const char *remote = getenv("REMOTE_ADDR");
	struct error e = {ERR_NONE, ""};
	struct deliver_result result;
	struct store *store = NULL;
	struct buf body = {0};
	char type[128];
	size_t total = 0;
	int status;

	if (remote == NULL || *remote == '\0')
		remote = "-";
	alarm(cfg->deadline);
	if ((status = cgi_read_request(&cfg->limits, type, sizeof type, &body, &total)) < 0) {
		const struct deliver_input in = {"https", body.data, body.len, total, type, remote};
		/* who posted it, for the rejected row */
		const struct store_via via = {STORE_CHANNEL_HTTPS, remote[0] != '-' ? remote : NULL};

		if (deliver_one(&store, cfg, &in, &via, &result, &e) < 0)
			status = cgi_fail_as(e.cls, e.msg, e.cls == ERR_TEMP && result.stored_failed ?
					     "database unavailable, try again later" : NULL);
		else
			status = cgi_answer(&result);
	}
	alarm(0);
	store_close(store);
	buf_free(&body);
	return status;
}
