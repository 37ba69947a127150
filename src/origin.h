/* origin.h - what is known about where a report mail comes from: its DKIM
 * result and signing domain, whether that domain is the sender's own (same
 * organizational domain as the From and TLS-Report-Submitter domains), and
 * how that was learned. See doc/trust.md. */
#ifndef TLSRPT_ORIGIN_H
#define TLSRPT_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "status.h"

/* Tri-state for dkim_aligned: NULL in the database when unknown. */
enum tristate { TRI_UNKNOWN = 0, TRI_FALSE, TRI_TRUE };

struct origin {
	const char *method; /* "authentication-results", "dkim-verify", or NULL: nothing checked */
	char *dkim_result;  /* RFC 8601 words: pass fail neutral none policy temperror permerror; NULL unknown */
	char *dkim_domain;  /* d= of the signature the result is about, lower case; NULL none */
	enum tristate aligned; /* dkim_domain vs the From / TLS-Report-Submitter domains */
	char *detail;       /* one line for logs and rejection reasons; NULL when nothing checked */
};

/* Checks one raw mail message (an optional mbox "From " line first) as
 * t->mode says, with auth_results (the message's Authentication-Results
 * values, top to bottom, as GMime's header list holds them: mime.h), from
 * (the From header value) and submitter (the TLS-Report-Submitter value),
 * either may be NULL. Fills *o, which the
 * caller frees with origin_free. Fails only with ERR_TEMP (a key lookup
 * that may succeed later, out of resources) or ERR_CONFIG. */
int origin_check(const unsigned char *msg, size_t len, const char *const *auth_results, size_t n_auth_results,
		 const char *from, const char *submitter, const struct trust *t, struct origin *o, struct error *e);
void origin_free(struct origin *o);

/* An aligned pass: the mail is authenticated as coming from its sender. */
bool origin_authenticated(const struct origin *o);

/* ---- pieces, exposed for the tests ---- */

/* The organizational domain (registrable domain, by the Public Suffix List)
 * of a domain name, lower case, without a trailing dot; NULL for a public
 * suffix itself or junk. Free it. */
char *origin_org_domain(const char *domain);
/* Same organizational domain. */
bool origin_same_org(const char *a, const char *b);
/* Where the organizational domain comes from: "libpsl (FILE)", "libpsl (built in)"
 * or "fallback (last two labels)". */
const char *origin_psl_source(void);
/* The domain of the (single) address in a From header value; NULL if none or several. */
char *origin_address_domain(const char *header_value);
/* domain equals, or is a subdomain of, one of the comma (or space) separated list. */
bool origin_domain_in_list(const char *domain, const char *list);

/* One dkim result read from an Authentication-Results header value. */
struct ar_dkim {
	char result[64];
	char domain[256]; /* header.d, else the domain of header.i; "" when absent */
};
/* Parses an Authentication-Results header value (RFC 8601). Returns -1 when
 * it cannot be read; else 0, the authserv-id in authserv (lower case) and up
 * to max dkim results in out[], their count in *n. */
int origin_parse_ar(const char *value, char *authserv, size_t authserv_size, struct ar_dkim *out,
		    size_t max, size_t *n);

#endif
