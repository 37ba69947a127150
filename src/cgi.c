/* cgi.c - one RFC 8460 section 5.4 POST, as a CGI program (RFC 3875).
 * The web server (nginx + fcgiwrap, Apache, ...) hands us the request in the
 * environment and the body on standard input; the answer goes to standard
 * output as CGI header lines and a one-line text body. A report goes the same
 * way as a mailed one (ingest, then one transaction), with source https. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgi.h"
#include "ingest.h"
#include "log.h"
#include "source.h"
#include "store.h"
#include "util.h"

#define RETRY_AFTER "300"

static const char deadline_response[] =
	"Status: 503 Service Unavailable\r\n"
	"Retry-After: " RETRY_AFTER "\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"deadline reached, nothing stored; try again later\n";

static void
on_deadline(int sig)
{
	(void)sig;
	(void)!write(STDOUT_FILENO, deadline_response, sizeof deadline_response - 1);
	_exit(0); /* the server rolls back what was not committed */
}

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
reason_phrase(int status)
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
static unsigned long long body_left;

/* Reads what is left of the body and throws it away: a web server that is
 * still writing it (fcgiwrap) takes a closed pipe for a crash (502). */
static void
drain_body(void)
{
	char scratch[65536];

	while (body_left > 0) {
		ssize_t n = read(STDIN_FILENO, scratch, body_left < sizeof scratch ? (size_t)body_left : sizeof scratch);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		body_left -= (unsigned long long)n;
	}
}

/* Writes the response; extra is more header lines, each ending in CRLF. */
static int
respond(int status, const char *extra, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
respond(int status, const char *extra, const char *fmt, ...)
{
	char body[700];
	va_list ap;

	drain_body();
	alarm(0);
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	for (char *p = body; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	printf("Status: %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\n\r\n%s\n", status,
	       reason_phrase(status), extra ? extra : "", body);
	return fflush(stdout) == 0 ? 0 : 75;
}

int
cgi_fail(int http_status, const char *why)
{
	log_error("https: %s", why);
	if (http_status == 503)
		return respond(503, "Retry-After: " RETRY_AFTER "\r\n", "%s", why);
	if (http_status >= 500) /* the details are for the administrator, in the log */
		return respond(http_status, NULL, "the server is not set up right; see its log");
	return respond(http_status, NULL, "%s", why);
}

/* "application/TLSRPT+gzip; charset=x" -> "application/tlsrpt+gzip" */
static void
media_type(const char *ct, char *out, size_t size)
{
	size_t j = 0;

	while (ct && isspace((unsigned char)*ct))
		ct++;
	for (; ct && *ct && *ct != ';' && !isspace((unsigned char)*ct) && j + 1 < size; ct++)
		out[j++] = (char)tolower((unsigned char)*ct);
	out[j] = '\0';
}


/* A body that is neither gzip nor JSON: kept as rejected, with the reason. */
static struct delivery *
not_a_report(const unsigned char *body, size_t len, const char *type, const struct limits *lim)
{
	char *reason = len == 0 ? xstrdup("https: empty body")
				: xasprintf("https: a %s body that is neither gzip nor JSON", type);
	struct delivery *d = delivery_rejected(body, len, len, "https", reason, lim);

	free(reason);
	return d;
}

static void
log_request(const char *outcome, const struct delivery *d, const struct store_result *res, const char *remote,
	    long long ms)
{
	struct buf line = {0};

	buf_printf(&line, "%s: source=https remote=%s", outcome, remote);
	for (size_t i = 0; i < d->n_reports; i++) {
		const struct report *r = d->reports[i].report;

		buf_puts(&line, " org=");
		log_quote(&line, r->organization_name);
		buf_puts(&line, " report-id=");
		log_quote(&line, r->report_id);
	}
	buf_printf(&line, " reports=%zu new=%zu duplicate=%zu policies=%zu failures=%zu", d->n_reports,
		   res->reports_new, res->reports_duplicate, delivery_policies(d), delivery_failures(d));
	for (size_t i = 0; i < d->n_rejections; i++) {
		buf_puts(&line, " rejected=");
		log_quote(&line, d->rejections[i].reason);
	}
	buf_printf(&line, " time=%lldms", ms);
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

int
cgi_main(const struct config *cfg)
{
	const char *method = getenv("REQUEST_METHOD"), *clen = getenv("CONTENT_LENGTH");
	const char *remote = getenv("REMOTE_ADDR");
	const struct limits *lim = &cfg->limits;
	struct error e = {ERR_NONE, ""};
	struct store_result res = {0};
	struct delivery *d = NULL;
	struct store *store = NULL;
	struct buf body = {0};
	struct sigaction sa;
	unsigned long long declared = 0;
	long long t0 = now_ms();
	char type[128];
	size_t total;
	int status;

	if (remote == NULL || *remote == '\0')
		remote = "-";
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_deadline;
	sigaction(SIGALRM, &sa, NULL);
	alarm(cfg->deadline);

	if (clen != NULL && *clen != '\0' && parse_uint(clen, ~0ULL, &declared))
		body_left = declared;
	if (method == NULL || strcmp(method, "POST") != 0)
		return respond(405, "Allow: POST\r\n", "only POST is accepted here (RFC 8460 section 5.4)");
	media_type(getenv("CONTENT_TYPE"), type, sizeof type);
	if (strcmp(type, "application/tlsrpt+gzip") != 0 && strcmp(type, "application/tlsrpt+json") != 0)
		return respond(415, NULL, "Content-Type must be application/tlsrpt+gzip or application/tlsrpt+json");
	if (clen != NULL && *clen != '\0' && !parse_uint(clen, ~0ULL, &declared))
		return respond(400, NULL, "bad Content-Length");
	if (clen != NULL && *clen != '\0' && declared > lim->max_message_size)
		return respond(413, NULL, "the body is %llu bytes, over the limit of %zu", declared,
			       lim->max_message_size);
	if (source_read(STDIN_FILENO, clen != NULL && *clen != '\0' ? (size_t)declared : SIZE_MAX, lim->max_message_size, &body,
		      &total) < 0) {
		buf_free(&body);
		return respond(400, NULL, "reading the body: %s", strerror(errno));
	}
	if (total > lim->max_message_size) {
		buf_free(&body);
		return respond(413, NULL, "the body is over the limit of %zu bytes", lim->max_message_size);
	}
	if (clen != NULL && *clen != '\0' && total < declared) {
		buf_free(&body);
		return respond(400, NULL, "the body ended after %zu of %llu bytes", total, declared);
	}

	if (ingest_sniff(body.data, body.len) == INPUT_MAIL)
		d = not_a_report(body.data, body.len, type, lim);
	else if (ingest_bytes(body.data, body.len, "https", lim, &d, &e) < 0) {
		status = cgi_fail(503, e.msg);
		goto out;
	}
	if (remote[0] != '-') {
		free(d->sender);
		d->sender = xstrdup(remote); /* who posted it, for the rejected row */
	}
	if (store_open(&store, cfg, &e) < 0 || store_delivery(store, d, CHANNEL_HTTPS, &res, &e) < 0) {
		log_info("deferred: source=https remote=%s reason=\"%s\"", remote, e.msg);
		status = e.cls == ERR_TEMP ? cgi_fail(503, "database unavailable, try again later")
					   : cgi_fail(500, e.msg);
		goto out;
	}
	if (d->n_reports == 0) {
		log_request("rejected", d, &res, remote, now_ms() - t0);
		status = respond(400, NULL, "not a TLS-RPT report: %s (kept)", d->rejections[0].reason);
	} else if (res.reports_new > 0) {
		log_request("stored", d, &res, remote, now_ms() - t0);
		status = respond(201, NULL, "stored %zu report(s)", res.reports_new);
	} else if (res.reports_duplicate == 0) {
		/* the database refused it as data: kept in tlsrpt.rejected */
		log_request("rejected", d, &res, remote, now_ms() - t0);
		status = respond(400, NULL, "refused by the database (kept)");
	} else {
		log_request("duplicate", d, &res, remote, now_ms() - t0);
		status = respond(200, NULL, "already stored");
	}
out:
	alarm(0);
	store_close(store);
	delivery_free(d);
	buf_free(&body);
	return status;
}
