/* report.c - json-c to the report model, leniently, within limits.
 * Real senders break RFC 8460 in many small ways; each field is read on its
 * own so that one bad field never sinks a report, and what was mended is noted. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "report.h"

#define MAX_NOTES 50
/* The largest count a real reporter can send: a trillion sessions a day is
 * more than all mail on the internet. Anything above is left out (NULL, with
 * a note), so that no sum in the views, alerts or --summary can overflow:
 * 9.2 million such counts fit in a bigint. */
#define MAX_COUNT INT64_C(1000000000000)

struct parse_ctx {
	const struct limits *lim;
	struct report *r;
	struct error *e;
	const char *aliases_noted[16]; /* the key names read as aliases, noted once each */
	size_t n_aliases_noted;
};

static void
strlist_add(struct strlist *l, const char *s)
{
	l->items = xreallocarray(l->items, l->n + 1, sizeof *l->items);
	l->items[l->n++] = xstrdup(s);
	l->present = true;
}

static void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

static void __attribute__((format(printf, 2, 3)))
note(struct parse_ctx *ctx, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (ctx->r->notes.n >= MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (ctx->r->notes.n == MAX_NOTES - 1)
		snprintf(line, sizeof line, "more notes left out");
	/* a value quoted with %.64s, or the line itself, may end inside a character */
	ctx->r->notes.items = xreallocarray(ctx->r->notes.items, ctx->r->notes.n + 1, sizeof *ctx->r->notes.items);
	ctx->r->notes.items[ctx->r->notes.n++] = text_clean(line, strlen(line), NULL);
	ctx->r->notes.present = true;
}

/* ---- cleaning the tree: no NUL, valid UTF-8, no NaN, bounded strings ---- */

/* A scalar: 1 when it must become null (NaN, Infinity), -1 over a limit. */
static int
clean_scalar(struct parse_ctx *ctx, json_object *v, bool *mended)
{
	const char *s;
	size_t n;

	if (json_object_get_type(v) == json_type_double) {
		if (!isfinite(json_object_get_double(v))) {
			*mended = true;
			return 1;
		}
		/* json-c would write the number back as the sender spelled it, and
		 * jsonb refuses some spellings it parsed ("1e-100000"): write the value */
		json_object_set_serializer(v, NULL, NULL, NULL);
		return 0;
	}
	if (json_object_get_type(v) != json_type_string)
		return 0;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n > ctx->lim->max_string_length) {
		error_set(ctx->e, ERR_INPUT, "a JSON string is longer than max_string_length (%zu bytes)",
			  ctx->lim->max_string_length);
		return -1;
	}
	if (memchr(s, '\0', n) || !utf8_valid((const unsigned char *)s, n)) {
		char *c = text_clean(s, n, NULL);

		json_object_set_string(v, c);
		free(c);
		*mended = true;
	}
	return 0;
}

static int
clean_tree(struct parse_ctx *ctx, json_object *o, bool *mended)
{
	int rc;

	if (json_object_is_type(o, json_type_object)) {
		struct json_object_iterator it = json_object_iter_begin(o);
		struct json_object_iterator end = json_object_iter_end(o);

		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			const char *key = json_object_iter_peek_name(&it);

			if (strlen(key) > ctx->lim->max_string_length) {
				error_set(ctx->e, ERR_INPUT, "a JSON key is longer than max_string_length (%zu bytes)",
					  ctx->lim->max_string_length);
				return -1;
			}
			/* a key with invalid UTF-8 is never one we read; jsonb may refuse it,
			 * and then store.c keeps the report as rejected */
			if ((rc = clean_scalar(ctx, json_object_iter_peek_value(&it), mended)) < 0 ||
			    clean_tree(ctx, json_object_iter_peek_value(&it), mended) < 0)
				return -1;
			if (rc == 1)
				json_object_object_add(o, key, NULL);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			json_object *v = json_object_array_get_idx(o, i);

			if ((rc = clean_scalar(ctx, v, mended)) < 0 || clean_tree(ctx, v, mended) < 0)
				return -1;
			if (rc == 1)
				json_object_array_put_idx(o, i, NULL);
		}
	}
	return 0;
}

/* ---- fields ---- */

static json_object *
member(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v))
		return v;
	return NULL;
}

/* The first of several spellings that is present: keys[0] is the RFC 8460
 * name, the others names from its drafts or from senders; reading one of
 * those is noted on the report, once per name. */
static json_object *
member_alias(struct parse_ctx *ctx, json_object *o, const char *const *keys)
{
	json_object *v;

	for (const char *const *k = keys; *k; k++) {
		size_t i;

		if ((v = member(o, *k)) == NULL)
			continue;
		if (k == keys)
			return v;
		for (i = 0; i < ctx->n_aliases_noted && ctx->aliases_noted[i] != *k; i++)
			;
		if (i == ctx->n_aliases_noted && i < sizeof ctx->aliases_noted / sizeof ctx->aliases_noted[0]) {
			ctx->aliases_noted[ctx->n_aliases_noted++] = *k;
			note(ctx, "%s: read as %s (a name from a draft of RFC 8460 or a sender's variant)", *k, keys[0]);
		}
		return v;
	}
	return NULL;
}

/* ---- grouping keys ---- */

/* A host name as a grouping key (policy-domain, mx-host, receiving-mx-hostname):
 * ASCII white space removed, ASCII letters lowercased, trailing dots removed;
 * NULL (s freed) when nothing is left. Non-ASCII bytes stay as sent; report.raw
 * keeps the original. The same rule as tlsrpt.normalize_name() in
 * src/sql/004-true-numbers.sql, which normalized the rows stored before. */
static char *
normalize_name(char *s)
{
	size_t n = 0;

	if (s == NULL)
		return NULL;
	for (const char *p = s; *p; p++)
		if (!strchr(" \t\n\r\f\v", *p))
			s[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	while (n > 0 && s[n - 1] == '.')
		n--;
	s[n] = '\0';
	if (n == 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* A result type as a grouping key: ASCII white space trimmed at both ends,
 * ASCII letters lowercased (tlsrpt.normalize_result_type()). */
static char *
normalize_result_type(char *s)
{
	size_t n, start = 0;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	while (start < n && strchr(" \t\n\r\f\v", s[start]))
		start++;
	while (n > start && strchr(" \t\n\r\f\v", s[n - 1]))
		n--;
	memmove(s, s + start, n - start);
	s[n - start] = '\0';
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (*s == '\0') {
		free(s);
		return NULL;
	}
	return s;
}

static void
normalize_names(struct strlist *l)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		if ((l->items[i] = normalize_name(l->items[i])) != NULL)
			l->items[n++] = l->items[i];
	l->n = n;
}

/* A scalar as text: strings as they are, numbers and booleans as written. */
static char *
get_text(struct parse_ctx *ctx, json_object *o, const char *name)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		return NULL;
	case json_type_string:
		return xstrdup(json_object_get_string(o));
	case json_type_int:
	case json_type_double:
	case json_type_boolean:
		return xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	default:
		note(ctx, "%s: not a string, left out", name);
		return NULL;
	}
}

static bool
digits_to_count(const char *s, int64_t *out)
{
	char *end;
	long long v;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '+')
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end || v < 0 || v > MAX_COUNT)
		return false;
	*out = v;
	return true;
}

static struct count
get_count(struct parse_ctx *ctx, json_object *o, const char *name)
{
	struct count c = {0, false};

	switch (json_object_get_type(o)) {
	case json_type_null:
		return c;
	case json_type_int: {
		int64_t v = json_object_get_int64(o);

		if (v < 0 || v > MAX_COUNT)
			note(ctx, "%s: %s is negative or over 10^12, left out", name,
			     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		else {
			c.value = v;
			c.present = true;
		}
		return c;
	}
	case json_type_double: {
		double d = json_object_get_double(o);

		if (d >= 0 && d <= (double)MAX_COUNT && floor(d) == d) {
			c.value = (int64_t)d;
			c.present = true;
		} else
			note(ctx, "%s: %s is not a whole number from 0 to 10^12, left out", name,
			     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		return c;
	}
	case json_type_string:
		if (digits_to_count(json_object_get_string(o), &c.value))
			c.present = true;
		else
			note(ctx, "%s: \"%.64s\" is not a count from 0 to 10^12, left out", name,
			     json_object_get_string(o));
		return c;
	default:
		note(ctx, "%s: not a number, left out", name);
		return c;
	}
}

static char *
get_ip(struct parse_ctx *ctx, json_object *o, const char *name)
{
	unsigned char addr[16];
	char text[INET6_ADDRSTRLEN], tmp[INET6_ADDRSTRLEN + 4];
	const char *s;
	size_t n;

	if (!json_object_is_type(o, json_type_string)) {
		if (o != NULL)
			note(ctx, "%s: not a string, left out", name);
		return NULL;
	}
	s = json_object_get_string(o);
	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n > 0 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0)
		return NULL;
	if (n < sizeof tmp) {
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		if (inet_pton(AF_INET, tmp, addr) == 1 && inet_ntop(AF_INET, addr, text, sizeof text))
			return xstrdup(text);
		if (inet_pton(AF_INET6, tmp, addr) == 1 && inet_ntop(AF_INET6, addr, text, sizeof text))
			return xstrdup(text);
	}
	note(ctx, "%s: \"%.64s\" is not an IP address, left out", name, json_object_get_string(o));
	return NULL;
}

/* policy-string and mx-host: an array of strings, or (against the RFC) one string. */
static void
get_strlist(struct parse_ctx *ctx, json_object *o, const char *name, bool mx, struct strlist *out)
{
	memset(out, 0, sizeof *out);
	switch (json_object_get_type(o)) {
	case json_type_null:
		return;
	case json_type_string:
		out->present = true;
		if (json_object_get_string_len(o) > 0)
			strlist_add(out, json_object_get_string(o));
		break;
	case json_type_array:
		out->present = true;
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			json_object *v = json_object_array_get_idx(o, i);

			if (json_object_is_type(v, json_type_string))
				strlist_add(out, json_object_get_string(v));
			else if (v != NULL)
				strlist_add(out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		}
		break;
	default:
		note(ctx, "%s: neither a list nor a string, left out", name);
		return;
	}
	if (!mx)
		return;
	/* "mx: mx.example.com" copied from the policy text: keep the host only */
	for (size_t i = 0; i < out->n; i++) {
		char *s = out->items[i], *h;

		if (strncasecmp(s, "mx:", 3) != 0)
			continue;
		for (h = s + 3; isspace((unsigned char)*h); h++)
			;
		memmove(s, h, strlen(h) + 1);
		note(ctx, "%s: \"mx:\" prefix removed", name);
	}
}

/* ---- date-time ---- */

static bool
take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

char *
report_normalize_datetime(const char *s)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0, sign = 0;
	const char *p = s;
	int64_t t;
	time_t tt;
	struct tm tm;
	char out[64];

	while (isspace((unsigned char)*p))
		p++;
	if (!take_digits(&p, 4, &y) || *p++ != '-' || !take_digits(&p, 2, &mo) || *p++ != '-' ||
	    !take_digits(&p, 2, &d))
		return NULL;
	if (*p == 'T' || *p == 't' || (*p == ' ' && isdigit((unsigned char)p[1]))) {
		p++;
		if (!take_digits(&p, 2, &h) || *p++ != ':' || !take_digits(&p, 2, &mi))
			return NULL;
		if (*p == ':') {
			p++;
			if (!take_digits(&p, 2, &sec))
				return NULL;
			if (*p == '.' || *p == ',')
				for (p++; isdigit((unsigned char)*p); p++)
					;
		}
	}
	while (*p == ' ')
		p++;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!take_digits(&p, 2, &zh))
			return NULL;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p) && !take_digits(&p, 2, &zm))
			return NULL;
	} else if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0) {
		p += 3;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0')
		return NULL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 24 ||
	    mi > 59 || sec > 60 || zh > 23 || zm > 59 || (h == 24 && (mi || sec)))
		return NULL;
	if (sec == 60)
		sec = 59;
	t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= (int64_t)sign * (zh * 3600 + zm * 60);
	tt = (time_t)t;
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return NULL;
	snprintf(out, sizeof out, "%04d-%02d-%02d %02d:%02d:%02d+00", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return xstrdup(out);
}

static char *
get_datetime(struct parse_ctx *ctx, json_object *o, const char *name)
{
	char *t;

	if (o == NULL)
		return NULL;
	if (!json_object_is_type(o, json_type_string)) {
		note(ctx, "%s: not a date-time string, left out", name);
		return NULL;
	}
	if ((t = report_normalize_datetime(json_object_get_string(o))) == NULL)
		note(ctx, "%s: \"%.64s\" is not a date-time, left out", name, json_object_get_string(o));
	return t;
}

/* ---- the report ---- */

/* Key names: the RFC's first, then aliases. "mx-host-pattern" and
 * "additional-info-uri" are the placeholders of RFC 8460 section 4.4 used as
 * keys; "receiving-mx-host-name" is SocketLabs' spelling; the rest come from
 * the drafts (draft-ietf-uta-smtp-tlsrpt, 2016-2018): "receiving-mta-hostname",
 * "applied-policy" and "report-items" (-00), "success-count"/"failure-count",
 * "success-aggregate"/"failure-aggregate" and "session-count" (2016-2017),
 * "failure-error-code" (until 2018). A draft's "message-count" counted
 * messages, not sessions, and is not read. */
static const char *const k_mx_host[] = {"mx-host", "mx-host-pattern", NULL};
static const char *const k_rcpt_mx[] = {"receiving-mx-hostname", "receiving-mx-host-name",
					"receiving-mta-hostname", NULL};
static const char *const k_addinfo[] = {"additional-information", "additional-info-uri", NULL};
static const char *const k_reason[] = {"failure-reason-code", "failure-error-code", NULL};
static const char *const k_failed[] = {"failed-session-count", "session-count", NULL};
static const char *const k_total_ok[] = {"total-successful-session-count", "success-aggregate",
					 "success-count", NULL};
static const char *const k_total_failed[] = {"total-failure-session-count", "failure-aggregate",
					     "failure-count", NULL};
static const char *const k_policy[] = {"policy", "applied-policy", NULL};
static const char *const k_details[] = {"failure-details", "report-items", NULL};

static void
parse_failure(struct parse_ctx *ctx, json_object *o, struct failure *f)
{
	memset(f, 0, sizeof *f);
	if (!json_object_is_type(o, json_type_object)) {
		note(ctx, "failure-details: an entry is not an object, left out");
		return;
	}
	f->result_type = normalize_result_type(get_text(ctx, member(o, "result-type"), "result-type"));
	f->sending_mta_ip = get_ip(ctx, member(o, "sending-mta-ip"), "sending-mta-ip");
	f->receiving_mx_hostname =
		normalize_name(get_text(ctx, member_alias(ctx, o, k_rcpt_mx), "receiving-mx-hostname"));
	f->receiving_mx_helo = get_text(ctx, member(o, "receiving-mx-helo"), "receiving-mx-helo");
	f->receiving_ip = get_ip(ctx, member(o, "receiving-ip"), "receiving-ip");
	f->failed_session_count = get_count(ctx, member_alias(ctx, o, k_failed), "failed-session-count");
	f->additional_information = get_text(ctx, member_alias(ctx, o, k_addinfo), "additional-information");
	f->failure_reason_code = get_text(ctx, member_alias(ctx, o, k_reason), "failure-reason-code");
}

static int
parse_policy(struct parse_ctx *ctx, json_object *o, const char *fallback_domain, struct policy *p)
{
	json_object *pol, *sum, *fd;
	size_t n;

	memset(p, 0, sizeof *p);
	if (!json_object_is_type(o, json_type_object)) {
		note(ctx, "policies: an entry is not an object, left out");
		return 0;
	}
	pol = member_alias(ctx, o, k_policy);
	if (pol != NULL && !json_object_is_type(pol, json_type_object)) {
		note(ctx, "policy: not an object, left out");
		pol = NULL;
	}
	p->policy_type = get_text(ctx, member(pol, "policy-type"), "policy-type");
	p->policy_domain = normalize_name(get_text(ctx, member(pol, "policy-domain"), "policy-domain"));
	if (p->policy_domain == NULL && fallback_domain != NULL &&
	    (p->policy_domain = normalize_name(xstrdup(fallback_domain))) != NULL)
		note(ctx, "policy-domain missing, taken from TLS-Report-Domain");
	get_strlist(ctx, member(pol, "policy-string"), "policy-string", false, &p->policy_string);
	get_strlist(ctx, member_alias(ctx, pol, k_mx_host), "mx-host", true, &p->mx_host);
	normalize_names(&p->mx_host);

	sum = member(o, "summary");
	p->total_successful_session_count =
		get_count(ctx, member_alias(ctx, sum, k_total_ok), "total-successful-session-count");
	p->total_failure_session_count =
		get_count(ctx, member_alias(ctx, sum, k_total_failed), "total-failure-session-count");

	fd = member_alias(ctx, o, k_details);
	if (fd == NULL)
		return 0;
	if (json_object_is_type(fd, json_type_object)) {
		p->failures = xcalloc(1, sizeof *p->failures);
		p->n_failures = 1;
		parse_failure(ctx, fd, &p->failures[0]);
		return 0;
	}
	if (!json_object_is_type(fd, json_type_array)) {
		note(ctx, "failure-details: not a list, left out");
		return 0;
	}
	n = json_object_array_length(fd);
	if (n > ctx->lim->max_failures_per_policy) {
		error_set(ctx->e, ERR_INPUT, "%zu failure-details in one policy, over max_failures_per_policy (%zu)",
			  n, ctx->lim->max_failures_per_policy);
		return -1;
	}
	p->failures = xcalloc(n, sizeof *p->failures);
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(fd, i);

		if (!json_object_is_type(v, json_type_object)) {
			note(ctx, "failure-details: entry %zu is not an object, left out", i + 1);
			continue;
		}
		parse_failure(ctx, v, &p->failures[p->n_failures++]);
	}
	return 0;
}

static int
parse_policies(struct parse_ctx *ctx, json_object *pols, const char *fallback_domain)
{
	struct report *r = ctx->r;
	size_t n;

	if (pols == NULL)
		return 0;
	if (json_object_is_type(pols, json_type_object)) {
		r->policies = xcalloc(1, sizeof *r->policies);
		r->n_policies = 1;
		return parse_policy(ctx, pols, fallback_domain, &r->policies[0]);
	}
	if (!json_object_is_type(pols, json_type_array)) {
		note(ctx, "policies: not a list, left out");
		return 0;
	}
	n = json_object_array_length(pols);
	if (n > ctx->lim->max_policies) {
		error_set(ctx->e, ERR_INPUT, "%zu policies, over max_policies (%zu)", n, ctx->lim->max_policies);
		return -1;
	}
	r->policies = xcalloc(n, sizeof *r->policies);
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(pols, i);

		if (!json_object_is_type(v, json_type_object)) {
			note(ctx, "policies: entry %zu is not an object, left out", i + 1);
			continue;
		}
		if (parse_policy(ctx, v, fallback_domain, &r->policies[r->n_policies++]) < 0)
			return -1;
	}
	return 0;
}

/* An upper bound of the values json-c would build, an object counting as 8:
 * a value costs it about a hundred bytes and an object, with its hash table,
 * about eight hundred, so a few megabytes of "{}," would cost gigabytes. */
size_t
report_count_values(const char *json, size_t len)
{
	size_t n = 1;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = json[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{') {
			n += 8;
		} else if (c == '[' || c == ',') {
			n++;
		}
	}
	return n;
}

static json_object *
parse_json_text(struct parse_ctx *ctx, const char *json, size_t len)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	json_object *root;
	size_t end;

	if (report_count_values(json, len) > ctx->lim->max_json_values) {
		error_set(ctx->e, ERR_INPUT, "JSON of more than max_json_values (%zu) values, an object counting as 8",
			  ctx->lim->max_json_values);
		return NULL;
	}
	tok = json_tokener_new_ex((int)ctx->lim->max_json_depth);
	if (tok == NULL) {
		error_set(ctx->e, ERR_TEMP, "json_tokener_new_ex failed");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, json, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_continue) {
		json_object_put(root);
		error_set(ctx->e, ERR_INPUT, "JSON stops before its end");
		return NULL;
	}
	if (jerr == json_tokener_error_depth) {
		error_set(ctx->e, ERR_INPUT, "JSON nested deeper than max_json_depth (%u)", ctx->lim->max_json_depth);
		return NULL;
	}
	if (jerr != json_tokener_success) {
		error_set(ctx->e, ERR_INPUT, "invalid JSON at byte %zu: %s", end, json_tokener_error_desc(jerr));
		return NULL;
	}
	if (root == NULL) { /* json-c's null is a NULL pointer */
		error_set(ctx->e, ERR_INPUT, "the JSON value is null, not an object");
		return NULL;
	}
	for (; end < len; end++) {
		if (!isspace((unsigned char)json[end]) && json[end] != '\0') {
			json_object_put(root);
			error_set(ctx->e, ERR_INPUT, "data after the JSON value at byte %zu", end);
			return NULL;
		}
	}
	return root;
}

int
report_parse(const char *json, size_t len, const char *fallback_domain,
	     const struct limits *lim, struct report **out, struct error *e)
{
	struct parse_ctx ctx = {.lim = lim, .e = e};
	json_object *root = NULL, *dr;
	char *mended_text = NULL;
	bool mended = false;

	*out = NULL;
	if (len > lim->max_json_size) {
		error_set(e, ERR_INPUT, "JSON of %zu bytes, over max_json_size (%zu)", len, lim->max_json_size);
		return -1;
	}
	if (len > INT32_MAX - 1) {
		error_set(e, ERR_INPUT, "JSON over 2 GiB");
		return -1;
	}
	if (!utf8_valid((const unsigned char *)json, len) || memchr(json, '\0', len)) {
		mended_text = text_clean(json, len, NULL);
		json = mended_text;
		len = strlen(mended_text);
		mended = true;
	}
	ctx.r = xcalloc(1, sizeof *ctx.r);
	if (mended)
		note(&ctx, "invalid UTF-8 or NUL bytes replaced");
	root = parse_json_text(&ctx, json, len);
	free(mended_text);
	if (root == NULL)
		goto fail;
	if (!json_object_is_type(root, json_type_object)) {
		error_set(e, ERR_INPUT, "the JSON value is %s, not an object",
			  json_type_to_name(json_object_get_type(root)));
		goto fail;
	}
	mended = false;
	if (clean_tree(&ctx, root, &mended) < 0)
		goto fail;
	/* after mending: raw_json is this tree, and must read back as a report
	 * (a non-finite number becomes null, and a null member is no member) */
	if (!member(root, "organization-name") && !member(root, "report-id") &&
	    !member(root, "date-range") && !member(root, "policies")) {
		error_set(e, ERR_INPUT, "JSON object is not a TLS-RPT report "
			  "(none of organization-name, report-id, date-range, policies)");
		goto fail;
	}
	if (mended)
		note(&ctx, "NUL characters, invalid UTF-8 or non-finite numbers mended");

	ctx.r->organization_name = get_text(&ctx, member(root, "organization-name"), "organization-name");
	ctx.r->contact_info = get_text(&ctx, member(root, "contact-info"), "contact-info");
	ctx.r->report_id = get_text(&ctx, member(root, "report-id"), "report-id");
	dr = member(root, "date-range");
	if (dr != NULL && !json_object_is_type(dr, json_type_object))
		note(&ctx, "date-range: not an object, left out");
	ctx.r->date_start = get_datetime(&ctx, member(dr, "start-datetime"), "start-datetime");
	ctx.r->date_end = get_datetime(&ctx, member(dr, "end-datetime"), "end-datetime");
	if (member(root, "policies") == NULL && member_alias(&ctx, root, k_policy) != NULL) {
		/* the drafts until 2017: one policy, its summary and failure-details
		 * at the top level */
		note(&ctx, "policy at the top level (a draft of RFC 8460) read as the one entry of policies");
		if (parse_policies(&ctx, root, fallback_domain) < 0)
			goto fail;
	} else if (parse_policies(&ctx, member(root, "policies"), fallback_domain) < 0)
		goto fail;
	ctx.r->raw_json = xstrdup(json_object_to_json_string_ext(root,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	*out = ctx.r;
	return 0;
fail:
	json_object_put(root);
	report_free(ctx.r);
	return -1;
}

static void
failure_free(struct failure *f)
{
	free(f->result_type);
	free(f->sending_mta_ip);
	free(f->receiving_mx_hostname);
	free(f->receiving_mx_helo);
	free(f->receiving_ip);
	free(f->additional_information);
	free(f->failure_reason_code);
}

size_t
report_failure_rows(const struct report *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_policies; i++)
		n += r->policies[i].n_failures;
	return n;
}

void
report_free(struct report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_policies; i++) {
		struct policy *p = &r->policies[i];

		free(p->policy_type);
		free(p->policy_domain);
		strlist_free(&p->policy_string);
		strlist_free(&p->mx_host);
		for (size_t j = 0; j < p->n_failures; j++)
			failure_free(&p->failures[j]);
		free(p->failures);
	}
	free(r->policies);
	free(r->organization_name);
	free(r->contact_info);
	free(r->report_id);
	free(r->date_start);
	free(r->date_end);
	free(r->raw_json);
	strlist_free(&r->notes);
	free(r);
}

/* ---- --dry-run output ---- */

static void
add_text(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

static void
add_count(json_object *o, const char *key, struct count c)
{
	json_object_object_add(o, key, c.present ? json_object_new_int64(c.value) : NULL);
}

static void
add_list(json_object *o, const char *key, const struct strlist *l)
{
	json_object *a;

	if (!l->present) {
		json_object_object_add(o, key, NULL);
		return;
	}
	a = json_object_new_array();
	for (size_t i = 0; i < l->n; i++)
		json_object_array_add(a, json_object_new_string(l->items[i]));
	json_object_object_add(o, key, a);
}

json_object *
report_to_json_object(const struct report *r)
{
	json_object *o = json_object_new_object(), *pols = json_object_new_array();

	add_text(o, "organization_name", r->organization_name);
	add_text(o, "contact_info", r->contact_info);
	add_text(o, "report_id", r->report_id);
	add_text(o, "date_start", r->date_start);
	add_text(o, "date_end", r->date_end);
	for (size_t i = 0; i < r->n_policies; i++) {
		const struct policy *p = &r->policies[i];
		json_object *po = json_object_new_object(), *fa = json_object_new_array();

		add_text(po, "policy_type", p->policy_type);
		add_text(po, "policy_domain", p->policy_domain);
		add_list(po, "policy_string", &p->policy_string);
		add_list(po, "mx_host", &p->mx_host);
		add_count(po, "total_successful_session_count", p->total_successful_session_count);
		add_count(po, "total_failure_session_count", p->total_failure_session_count);
		for (size_t j = 0; j < p->n_failures; j++) {
			const struct failure *f = &p->failures[j];
			json_object *fo = json_object_new_object();

			add_text(fo, "result_type", f->result_type);
			add_text(fo, "sending_mta_ip", f->sending_mta_ip);
			add_text(fo, "receiving_mx_hostname", f->receiving_mx_hostname);
			add_text(fo, "receiving_mx_helo", f->receiving_mx_helo);
			add_text(fo, "receiving_ip", f->receiving_ip);
			add_count(fo, "failed_session_count", f->failed_session_count);
			add_text(fo, "additional_information", f->additional_information);
			add_text(fo, "failure_reason_code", f->failure_reason_code);
			json_object_array_add(fa, fo);
		}
		json_object_object_add(po, "failures", fa);
		json_object_array_add(pols, po);
	}
	json_object_object_add(o, "policies", pols);
	add_list(o, "notes", &r->notes);
	if (json_object_object_get(o, "notes") == NULL)
		json_object_object_add(o, "notes", json_object_new_array());
	return o;
}

void
report_to_json(const struct report *r, struct buf *out)
{
	json_object *o = report_to_json_object(r);

	buf_puts(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}
