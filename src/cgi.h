/* cgi.h - the HTTPS transport of RFC 8460 section 5.4: tlsrpt-ingest run as a
 * CGI program (GATEWAY_INTERFACE set) takes one POSTed report and answers
 * with an HTTP status. */
#ifndef TLSRPT_CGI_H
#define TLSRPT_CGI_H

#include <stdbool.h>

#include "config.h"
#include "status.h"

/* GATEWAY_INTERFACE is set: a web server runs us. */
bool cgi_active(void);

/* Arguments the web server made from a query string without '=' (the old
 * ISINDEX rule of RFC 3875 section 4.4): such a request is refused, as no
 * client may choose our options. */
bool cgi_argv_from_query(int argc);

/* Reads the request from the environment and standard input, stores what it
 * holds like a mailed report (source https) and writes the CGI response on
 * standard output:
 *   405 not POST (checked first, with Allow: POST)
 *   415 a Content-Type other than application/tlsrpt+gzip or application/tlsrpt+json
 *   413 a body over max_message_size
 *   400 a body that is not a report (kept in tlsrpt.rejected)
 *   201 stored, 200 already stored
 *   503 with Retry-After when the database is unavailable, the deadline
 *       passed, or on an internal error
 *   500 configuration or schema trouble
 * Returns the exit status: 0 once a response was written. */
int cgi_main(const struct config *cfg);

/* A response for a failure before cgi_main could run (a configuration or
 * usage error): the HTTP status from exits.h's table. */
int cgi_fail(const struct error *e);

#endif
