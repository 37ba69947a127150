/* origin.c - who really sent a report mail (RFC 8460 §3: reports are
 * DKIM-signed by the reporting domain; unsigned ones are to be ignored).
 *
 * Two ways to learn it, chosen by the "trust" setting:
 *   authentication-results  read the Authentication-Results header that our
 *                           own MTA added (opendkim, rspamd, ...), known by
 *                           its authserv-id; every other such header is
 *                           ignored, since a sender can write any;
 *   dkim-verify             verify the DKIM-Signature headers here, with
 *                           libopendkim; a signature with l= (covering only
 *                           part of the body) is refused.
 * Then: does the signing domain belong to the sender? Same organizational
 * domain (Public Suffix List, libpsl) as the From domain and, when present,
 * the TLS-Report-Submitter domain: Mail.ru signs as corp.mail.ru and submits
 * as mail.ru, which is aligned. */
#include "autoconf.h"

#include <ctype.h>
#include <dlfcn.h>
#include <gmime/gmime.h>
#include <libpsl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dkim.h>

#include "log.h"
#include "origin.h"
#include "util.h"

#define MAX_AR_RESULTS 16

/* ---- libpsl and libopendkim, loaded when trust needs them ----
 * A delivery with trust = none (the default) never calls them, and every
 * delivery is a new process: linking them would load libopendkim, libdb,
 * libbsd, libmd and libpsl at each start-up for nothing (bench/README). They
 * are opened (dlopen, by the soname configure found) the first time they are
 * needed; their headers are still checked and used at build time, and every
 * call below goes through a pointer of the function's own type. */
#define ORIGIN_PSL_FUNCS(X) \
	X(psl_latest) X(psl_dist_filename) X(psl_builtin) X(psl_suffix_count) X(psl_registrable_domain)
#define ORIGIN_DKIM_FUNCS(X)                                                                                      \
	X(dkim_init) X(dkim_options) X(dkim_set_prescreen) X(dkim_verify) X(dkim_chunk) X(dkim_eom)              \
	X(dkim_getsiglist) X(dkim_geterror) X(dkim_getresultstr) X(dkim_sig_getdomain) X(dkim_sig_getflags)      \
	X(dkim_sig_geterror) X(dkim_sig_geterrorstr) X(dkim_sig_getbh) X(dkim_sig_gettagvalue) X(dkim_sig_ignore) \
	X(dkim_free) X(dkim_close)
#define ORIGIN_FN_MEMBER(f) __typeof__(f) *f;
#define ORIGIN_FN_NAME(f) #f,
static struct {
	ORIGIN_PSL_FUNCS(ORIGIN_FN_MEMBER)
} psl_fn;
static struct {
	ORIGIN_DKIM_FUNCS(ORIGIN_FN_MEMBER)
} dkim_fn;
static const char *const psl_fn_names[] = {ORIGIN_PSL_FUNCS(ORIGIN_FN_NAME)};
static const char *const dkim_fn_names[] = {ORIGIN_DKIM_FUNCS(ORIGIN_FN_NAME)};
#define psl_latest psl_fn.psl_latest
#define psl_dist_filename psl_fn.psl_dist_filename
#define psl_builtin psl_fn.psl_builtin
#define psl_suffix_count psl_fn.psl_suffix_count
#define psl_registrable_domain psl_fn.psl_registrable_domain
#define dkim_init dkim_fn.dkim_init
#define dkim_options dkim_fn.dkim_options
#define dkim_set_prescreen dkim_fn.dkim_set_prescreen
#define dkim_verify dkim_fn.dkim_verify
#define dkim_chunk dkim_fn.dkim_chunk
#define dkim_eom dkim_fn.dkim_eom
#define dkim_getsiglist dkim_fn.dkim_getsiglist
#define dkim_geterror dkim_fn.dkim_geterror
#define dkim_getresultstr dkim_fn.dkim_getresultstr
#define dkim_sig_getdomain dkim_fn.dkim_sig_getdomain
#define dkim_sig_getflags dkim_fn.dkim_sig_getflags
#define dkim_sig_geterror dkim_fn.dkim_sig_geterror
#define dkim_sig_geterrorstr dkim_fn.dkim_sig_geterrorstr
#define dkim_sig_getbh dkim_fn.dkim_sig_getbh
#define dkim_sig_gettagvalue dkim_fn.dkim_sig_gettagvalue
#define dkim_sig_ignore dkim_fn.dkim_sig_ignore
#define dkim_free dkim_fn.dkim_free
#define dkim_close dkim_fn.dkim_close

/* Opens soname (then, if that fails, fallback) and fills fns from names; once.
 * 0, or -1 with why (the loader's message). */
static int
origin_dlopen(const char *soname, const char *fallback, const char *const *names, size_t n, void *fns,
	      int *state, char *why, size_t why_size)
{
	void *h;

	if (*state != 0)
		return *state > 0 ? 0 : -1;
	*state = -1;
	if ((h = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) == NULL && (h = dlopen(fallback, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *err = dlerror();

		snprintf(why, why_size, "cannot load %s: %s", soname, err ? err : "?");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		void *p = dlsym(h, names[i]);

		if (p == NULL) {
			snprintf(why, why_size, "%s has no %s", soname, names[i]);
			return -1;
		}
		memcpy((char *)fns + i * sizeof p, &p, sizeof p);
	}
	*state = 1;
	return 0;
}

static char origin_psl_why[200], origin_dkim_why[200];
static int origin_psl_state, origin_dkim_state;

static int
origin_load_psl(void)
{
	_Static_assert(sizeof psl_fn == sizeof psl_fn_names / sizeof psl_fn_names[0] * sizeof(void *),
		       "one pointer per name");
	return origin_dlopen(LIBPSL_SONAME, "libpsl.so", psl_fn_names, sizeof psl_fn_names / sizeof psl_fn_names[0],
			     &psl_fn, &origin_psl_state, origin_psl_why, sizeof origin_psl_why);
}

static int
origin_load_dkim(void)
{
	_Static_assert(sizeof dkim_fn == sizeof dkim_fn_names / sizeof dkim_fn_names[0] * sizeof(void *),
		       "one pointer per name");
	return origin_dlopen(OPENDKIM_SONAME, "libopendkim.so", dkim_fn_names,
			     sizeof dkim_fn_names / sizeof dkim_fn_names[0], &dkim_fn, &origin_dkim_state,
			     origin_dkim_why, sizeof origin_dkim_why);
}

/* ---- domains ---- */

static const psl_ctx_t *psl_ctx;
static bool psl_tried;
static char psl_where[300] = "fallback (last two labels)";

static const psl_ctx_t *
psl_get(void)
{
	if (!psl_tried) {
		psl_tried = true;
		if (origin_load_psl() < 0) {
			log_warn("libpsl: %s; organizational domains are the last two labels", origin_psl_why);
			snprintf(psl_where, sizeof psl_where, "fallback (last two labels; libpsl: %s)", origin_psl_why);
			return NULL;
		}
		/* The newest of the list libpsl was built with and the distribution's
		 * file (Debian: package publicsuffix). Loaded once per process. */
		psl_ctx = psl_latest(NULL);
		if (psl_ctx != NULL) {
			const char *f = psl_dist_filename();

			snprintf(psl_where, sizeof psl_where, "libpsl (%s)", f && *f ? f : "built in");
		} else if ((psl_ctx = psl_builtin()) != NULL && psl_suffix_count(psl_ctx) > 0)
			snprintf(psl_where, sizeof psl_where, "libpsl (built in)");
		else
			psl_ctx = NULL;
	}
	return psl_ctx;
}

const char *
origin_psl_source(void)
{
	psl_get();
	return psl_where;
}

/* Lower case, no surrounding space, no trailing dot; NULL when empty or not a host name. */
static char *
normalize_domain(const char *s, size_t len)
{
	char *d;

	while (len > 0 && isspace((unsigned char)*s))
		s++, len--;
	while (len > 0 && (isspace((unsigned char)s[len - 1]) || s[len - 1] == '.'))
		len--;
	if (len == 0 || len > 253)
		return NULL;
	d = xstrndup(s, len);
	for (char *p = d; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x80 && !isalnum(c) && c != '-' && c != '.' && c != '_') {
			free(d);
			return NULL;
		}
		*p = (char)tolower(c);
	}
	if (d[0] == '.' || strstr(d, "..") != NULL) {
		free(d);
		return NULL;
	}
	return d;
}

char *
origin_org_domain(const char *domain)
{
	const psl_ctx_t *psl = psl_get();
	char *d, *org = NULL;

	if (domain == NULL || (d = normalize_domain(domain, strlen(domain))) == NULL)
		return NULL;
	if (psl != NULL) {
		const char *r = psl_registrable_domain(psl, d);

		if (r != NULL)
			org = xstrdup(r);
	} else {
		/* Fallback without any list: the last two labels. Wrong for
		 * example.co.uk-style names; see doc/trust.md. */
		char *last = strrchr(d, '.');

		if (last != NULL) {
			char *p = last;

			while (p > d && p[-1] != '.')
				p--;
			org = xstrdup(p);
		}
	}
	free(d);
	return org;
}

bool
origin_same_org(const char *a, const char *b)
{
	char *oa = origin_org_domain(a), *ob = origin_org_domain(b);
	bool same = oa != NULL && ob != NULL && strcmp(oa, ob) == 0;

	free(oa);
	free(ob);
	return same;
}

char *
origin_address_domain(const char *header_value)
{
	InternetAddressList *list;
	InternetAddress *a;
	const char *addr, *at;
	char *domain = NULL;

	if (header_value == NULL)
		return NULL;
	list = internet_address_list_parse(NULL, header_value);
	if (list == NULL)
		return NULL;
	if (internet_address_list_length(list) == 1 &&
	    INTERNET_ADDRESS_IS_MAILBOX(a = internet_address_list_get_address(list, 0)) &&
	    (addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a))) != NULL &&
	    (at = strrchr(addr, '@')) != NULL)
		domain = normalize_domain(at + 1, strlen(at + 1));
	g_object_unref(list);
	return domain;
}

/* Calls back for each item of a comma or space separated list until fn returns true. */
static bool
list_any(const char *list, bool (*fn)(const char *item, size_t len, const void *arg), const void *arg)
{
	const char *p = list;

	while (p != NULL && *p) {
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n > 0 && fn(p, n, arg))
			return true;
		p += n;
	}
	return false;
}

static bool
is_domain_or_sub(const char *item, size_t len, const void *arg)
{
	const char *domain = arg;
	char *want = normalize_domain(item, len);
	size_t dl = strlen(domain), wl;
	bool match = false;

	if (want == NULL)
		return false;
	wl = strlen(want);
	if (dl == wl)
		match = strcmp(domain, want) == 0;
	else if (dl > wl)
		match = domain[dl - wl - 1] == '.' && strcmp(domain + dl - wl, want) == 0;
	free(want);
	return match;
}

bool
origin_domain_in_list(const char *domain, const char *list)
{
	char *d;
	bool in;

	if (domain == NULL || (d = normalize_domain(domain, strlen(domain))) == NULL)
		return false;
	in = list_any(list, is_domain_or_sub, d);
	free(d);
	return in;
}

static bool
is_same_word(const char *item, size_t len, const void *arg)
{
	const char *word = arg;

	return strlen(word) == len && strncasecmp(word, item, len) == 0;
}

/* ---- Authentication-Results (RFC 8601) ---- */

static void
skip_cfws(const char **pp)
{
	const char *p = *pp;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			break;
		for (int depth = 0; *p; p++) {
			if (*p == '\\' && p[1]) {
				p++;
				continue;
			}
			if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
	*pp = p;
}

/* A token (up to a character of stops, space, '(' or '"') or a quoted string. */
static size_t
read_word(const char **pp, char *out, size_t size, const char *stops)
{
	const char *p = *pp;
	size_t n = 0;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 < size)
				out[n++] = *p;
		}
		if (*p == '"')
			p++;
	} else {
		for (; *p && !strchr(stops, *p) && !strchr(" \t\r\n(\"", *p); p++)
			if (n + 1 < size)
				out[n++] = *p;
	}
	out[n] = '\0';
	*pp = p;
	return n;
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* A result keyword or a domain as RFC 8601 spells them: letters, digits, '-',
 * '.', '_' (a domain may also be empty). Anything else in a header value is
 * a forgery or damage, and must never reach a stored column or a log line. */
static bool
is_ar_token(const char *s)
{
	for (; *s; s++)
		if (!g_ascii_isalnum(*s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	return true;
}

int
origin_parse_ar(const char *value, char *authserv, size_t authserv_size, struct ar_dkim *out,
		size_t max, size_t *n)
{
	const char *p = value;
	char method[64], result[64], key[64], val[256];

	*n = 0;
	skip_cfws(&p);
	if (read_word(&p, authserv, authserv_size, ";") == 0)
		return -1;
	lower(authserv);
	skip_cfws(&p);
	while (isdigit((unsigned char)*p)) /* authres-version */
		p++;
	skip_cfws(&p);
	if (*p == '\0')
		return 0;
	if (*p != ';')
		return -1;
	while (*p == ';') {
		struct ar_dkim r = {"", ""};
		char idomain[256] = "";

		p++;
		skip_cfws(&p);
		if (read_word(&p, method, sizeof method, "=/;") == 0) {
			/* nothing here: skip to the next resinfo */
			p += strcspn(p, ";");
			continue;
		}
		lower(method);
		skip_cfws(&p);
		if (*p == '/') {
			p++;
			skip_cfws(&p);
			while (isdigit((unsigned char)*p))
				p++;
			skip_cfws(&p);
		}
		if (*p != '=') { /* "none", or junk */
			p += strcspn(p, ";");
			continue;
		}
		p++;
		skip_cfws(&p);
		read_word(&p, result, sizeof result, ";");
		lower(result);
		for (;;) {
			skip_cfws(&p);
			if (*p == '\0' || *p == ';')
				break;
			if (read_word(&p, key, sizeof key, "=;") == 0) {
				if (*p != '\0') /* an empty "" ends at the NUL: never step past it */
					p++;
				continue;
			}
			lower(key);
			skip_cfws(&p);
			if (*p != '=')
				continue;
			p++;
			skip_cfws(&p);
			read_word(&p, val, sizeof val, ";");
			if (strcmp(key, "header.d") == 0)
				snprintf(r.domain, sizeof r.domain, "%s", val);
			else if (strcmp(key, "header.i") == 0 && strchr(val, '@'))
				snprintf(idomain, sizeof idomain, "%s", strchr(val, '@') + 1);
		}
		if (strcmp(method, "dkim") == 0 && *n < max && result[0] != '\0' && is_ar_token(result)) {
			snprintf(r.result, sizeof r.result, "%s", result);
			if (r.domain[0] == '\0')
				snprintf(r.domain, sizeof r.domain, "%s", idomain);
			lower(r.domain);
			if (!is_ar_token(r.domain))
				r.domain[0] = '\0';
			out[(*n)++] = r;
		}
	}
	return 0;
}

/* ---- choosing among several signatures ---- */

static int
rank(const char *result, bool aligned)
{
	static const char *const order[] = {"permerror", "temperror", "neutral", "fail", "policy", "pass"};

	for (int i = 5; i >= 0; i--)
		if (strcmp(result, order[i]) == 0)
			return 2 * i + 2 + (aligned && i == 5);
	return 1; /* none, or a word we do not know */
}

static bool
aligned_with(const char *dkim_domain, const char *from_domain, const char *submitter)
{
	if (dkim_domain == NULL || *dkim_domain == '\0' || from_domain == NULL)
		return false;
	if (!origin_same_org(dkim_domain, from_domain))
		return false;
	return submitter == NULL || origin_same_org(dkim_domain, submitter);
}

struct candidate {
	const char *result;
	char domain[256];
	char why[200];
};

/* Keeps the best of the candidates in o. */
static void
choose(struct origin *o, const struct candidate *c, size_t n, const char *from_domain, const char *submitter)
{
	int best = -1, best_rank = 0;

	for (size_t i = 0; i < n; i++) {
		int r = rank(c[i].result, aligned_with(c[i].domain, from_domain, submitter));

		if (r > best_rank) {
			best = (int)i;
			best_rank = r;
		}
	}
	if (best < 0) {
		o->dkim_result = xstrdup("none");
		o->aligned = TRI_UNKNOWN;
		return;
	}
	o->dkim_result = xstrdup(c[best].result);
	if (c[best].domain[0]) {
		o->dkim_domain = normalize_domain(c[best].domain, strlen(c[best].domain));
		o->aligned = aligned_with(o->dkim_domain, from_domain, submitter) ? TRI_TRUE : TRI_FALSE;
	}
	if (c[best].why[0])
		o->detail = xstrdup(c[best].why);
}

/* ---- the two methods ---- */

static void
by_auth_results(const char *const *vals, size_t nvals, const struct trust *t, const char *from_domain,
		const char *submitter, struct origin *o)
{
	struct ar_dkim found[MAX_AR_RESULTS];
	struct candidate cand[MAX_AR_RESULTS];
	char authserv[256];
	size_t nfound = 0, ignored = 0;
	bool have = false;

	o->method = "authentication-results";
	for (size_t i = 0; i < nvals && !have; i++) {
		if (origin_parse_ar(vals[i], authserv, sizeof authserv, found, MAX_AR_RESULTS, &nfound) < 0 ||
		    t->authserv_id == NULL || !list_any(t->authserv_id, is_same_word, authserv)) {
			ignored++; /* another host's, or a sender's forgery: worth nothing */
			continue;
		}
		have = true; /* the topmost one of ours: added last, by our MTA */
	}
	if (!have) {
		o->detail = xasprintf("no Authentication-Results header from authserv-id %s (%zu other%s ignored)",
				      t->authserv_id ? t->authserv_id : "(authserv_id not set)", ignored,
				      ignored == 1 ? "" : "s");
		return;
	}
	for (size_t i = 0; i < nfound; i++) {
		cand[i].result = found[i].result;
		snprintf(cand[i].domain, sizeof cand[i].domain, "%s", found[i].domain);
		cand[i].why[0] = '\0';
	}
	choose(o, cand, nfound, from_domain, submitter);
	if (o->detail == NULL)
		o->detail = xasprintf("Authentication-Results from %s: dkim=%s%s%s", authserv, o->dkim_result,
				      o->dkim_domain ? " header.d=" : "", o->dkim_domain ? o->dkim_domain : "");
}

static const char *
sig_result(DKIM_SIGINFO *sig, char *why, size_t why_size)
{
	unsigned flags = dkim_sig_getflags(sig);
	int err = dkim_sig_geterror(sig);
	const char *errstr = err > 0 ? dkim_sig_geterrorstr(err) : NULL;

	why[0] = '\0';
	if (flags & DKIM_SIGFLAG_IGNORE) {
		snprintf(why, why_size, "signature ignored: %s", errstr ? errstr : "not usable");
		return "neutral";
	}
	if ((flags & DKIM_SIGFLAG_PASSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
		if (dkim_sig_gettagvalue(sig, false, (u_char *)"l") != NULL) {
			snprintf(why, why_size, "signature with l= refused: it covers only part of the body");
			return "policy";
		}
		return "pass";
	}
	if (errstr)
		snprintf(why, why_size, "%s", errstr);
	else if (dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH)
		snprintf(why, why_size, "body hash mismatch: the body was changed after signing");
	switch (err) {
	case DKIM_SIGERROR_KEYFAIL:
	case DKIM_SIGERROR_MULTIREPLY:
		return "temperror";
	case DKIM_SIGERROR_NOKEY:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYREVOKED:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_KEYTOOSMALL:
		return "permerror";
	default:
		return (flags & DKIM_SIGFLAG_PROCESSED) || err > 0 ? "fail" : "permerror";
	}
}

/* Each signature may cost key look-ups: a message with hundreds of them must
 * not use up the deadline on every retry. The first MAX_SIGNATURES are read. */
#define MAX_SIGNATURES 8

static DKIM_CBSTAT
verify_first_few(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	(void)dkim;
	for (int i = MAX_SIGNATURES; i < nsigs; i++)
		dkim_sig_ignore(sigs[i]);
	return DKIM_CBSTAT_CONTINUE;
}

static int
by_dkim_verify(const unsigned char *msg, size_t len, const struct trust *t, const char *from_domain,
	       const char *submitter, struct origin *o, struct error *e)
{
	size_t skip = mbox_from_line_length(msg, len);
	unsigned flags = DKIM_LIBFLAGS_FIXCRLF;
	DKIM_SIGINFO **sigs = NULL;
	struct candidate *cand;
	DKIM_STAT st;
	DKIM_LIB *lib;
	DKIM *dkim;
	int nsigs = 0;
	_Bool testkey = 0;

	o->method = "dkim-verify";
	if (origin_load_dkim() < 0) {
		error_set(e, ERR_CONFIG, "libopendkim: %s", origin_dkim_why);
		return -1;
	}
	if ((lib = dkim_init(NULL, NULL)) == NULL) {
		error_set(e, ERR_TEMP, "libopendkim: cannot initialize");
		return -1;
	}
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
	if (t->dkim_key_file != NULL) {
		dkim_query_t qm = DKIM_QUERY_FILE;

		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof qm);
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, t->dkim_key_file,
			     strlen(t->dkim_key_file));
	}
	dkim_set_prescreen(lib, verify_first_few);
	dkim = dkim_verify(lib, (const unsigned char *)"tlsrpt-ingest", NULL, &st);
	if (dkim == NULL) {
		dkim_close(lib);
		error_set(e, ERR_TEMP, "libopendkim: %s", dkim_getresultstr(st));
		return -1;
	}
	st = dkim_chunk(dkim, (u_char *)(msg + skip), len - skip);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(dkim, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(dkim, &testkey);
	if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK)
		nsigs = 0;
	if (nsigs == 0 && (st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG)) {
		o->dkim_result = xstrdup("none");
		o->detail = xstrdup("no DKIM signature");
	} else if (nsigs == 0) {
		const char *why = dkim_geterror(dkim);

		/* a signature header libopendkim cannot read, or no resources */
		o->dkim_result = xstrdup(st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL ? "temperror"
											     : "permerror");
		o->detail = xasprintf("DKIM: %s", why && *why ? why : dkim_getresultstr(st));
	} else {
		cand = xcalloc((size_t)nsigs, sizeof *cand);
		for (int i = 0; i < nsigs; i++) {
			const unsigned char *d = dkim_sig_getdomain(sigs[i]);

			cand[i].result = sig_result(sigs[i], cand[i].why, sizeof cand[i].why);
			snprintf(cand[i].domain, sizeof cand[i].domain, "%s", d ? (const char *)d : "");
		}
		choose(o, cand, (size_t)nsigs, from_domain, submitter);
		free(cand);
		if (o->detail == NULL)
			o->detail = xasprintf("DKIM signature d=%s: %s", o->dkim_domain ? o->dkim_domain : "?",
					      o->dkim_result);
		else {
			char *d = xasprintf("DKIM signature d=%s: %s (%s)", o->dkim_domain ? o->dkim_domain : "?",
					    o->dkim_result, o->detail);

			free(o->detail);
			o->detail = d;
		}
	}
	dkim_free(dkim);
	dkim_close(lib);
	return 0;
}

int
origin_check(const unsigned char *msg, size_t len, const char *const *auth_results, size_t n_auth_results,
	     const char *from, const char *submitter, const struct trust *t, struct origin *o, struct error *e)
{
	char *from_domain, *sub = NULL;
	int rc = 0;

	memset(o, 0, sizeof *o);
	if (t->mode == TRUST_NONE)
		return 0;
	from_domain = origin_address_domain(from);
	if (submitter != NULL)
		sub = normalize_domain(submitter, strlen(submitter));
	if (t->mode == TRUST_AUTH_RESULTS)
		by_auth_results(auth_results, n_auth_results, t, from_domain, sub, o);
	else
		rc = by_dkim_verify(msg, len, t, from_domain, sub, o, e);
	if (rc == 0 && o->dkim_domain != NULL && o->aligned == TRI_FALSE) {
		char *d = xasprintf("%s; d=%s is not the organizational domain of From %s%s%s", o->detail,
				    o->dkim_domain, from_domain ? from_domain : "(none)",
				    sub ? " / TLS-Report-Submitter " : "", sub ? sub : "");

		free(o->detail);
		o->detail = d;
	}
	free(from_domain);
	free(sub);
	return rc;
}

bool
origin_authenticated(const struct origin *o)
{
	return o->dkim_result != NULL && strcmp(o->dkim_result, "pass") == 0 && o->aligned == TRI_TRUE;
}

void
origin_free(struct origin *o)
{
	free(o->dkim_result);
	free(o->detail);
	free(o->dkim_domain);
	memset(o, 0, sizeof *o);
}
