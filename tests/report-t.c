/* report-t.c - report_parse() and report_normalize_datetime() on every JSON
 * quirk seen from real senders (the JSON files in tests/data), field by field. */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "report.h"
#include "status.h"
#include "util.h"

#include "tap.h"

static struct limits deflim;

/* Does msg name the limit (as the config key, '-' or '_')? */
static bool
names_limit(const char *msg, const char *key)
{
	char m[600], k[100];
	size_t i;

	snprintf(m, sizeof m, "%s", msg);
	snprintf(k, sizeof k, "%s", key);
	for (i = 0; m[i] != '\0'; i++)
		if (m[i] == '-')
			m[i] = '_';
	return strstr(m, k) != NULL;
}

static struct report *
parse_text(const char *text, size_t len, const char *fallback, const struct limits *lim,
	   const char *what)
{
	struct report *r = NULL;
	struct error e = {0};
	int rc = report_parse(text, len, fallback, lim, &r, &e);

	if (!ok(rc == 0 && r != NULL && e.cls == ERR_NONE, "%s: parses", what)) {
		diag("report_parse: rc %d, class %s, msg %s", rc, err_class_name(e.cls), e.msg);
		if (rc == 0 && r != NULL)
			report_free(r);
		return NULL;
	}
	return r;
}

static struct report *
parse_fixture(const char *name, const char *fallback)
{
	size_t len;
	unsigned char *data = read_data(name, &len);
	struct report *r = parse_text((const char *)data, len, fallback, &deflim, name);

	free(data);
	return r;
}

/* Expects refusal with ERR_INPUT; when key is set, the message must name it. */
static void
refuse_text(const char *text, size_t len, const struct limits *lim, const char *key,
	    const char *what)
{
	struct report *r = NULL;
	struct error e = {0};
	int rc = report_parse(text, len, NULL, lim, &r, &e);

	ok(rc == -1, "%s: refused", what);
	is_string(err_class_name(ERR_INPUT), err_class_name(e.cls), "%s: class is bad input", what);
	if (key != NULL)
		ok(names_limit(e.msg, key), "%s: message names %s (\"%s\")", what, key, e.msg);
	if (rc == 0 && r != NULL)
		report_free(r);
}

static void
refuse_fixture(const char *name, const struct limits *lim, const char *key, const char *what)
{
	size_t len;
	unsigned char *data = read_data(name, &len);

	refuse_text((const char *)data, len, lim, key, what);
	free(data);
}

static void
is_count(const struct count *c, long long expected, const char *what)
{
	if (ok(c->present, "%s present", what))
		is_int(expected, c->value, "%s value", what);
	else
		skip("%s absent", what);
}

static void
is_absent_count(const struct count *c, const char *what)
{
	ok(!c->present, "%s not present", what);
}

static bool
notes_mention(const struct report *r, const char *needle)
{
	size_t i;

	for (i = 0; i < r->notes.n; i++)
		if (r->notes.items[i] != NULL && strstr(r->notes.items[i], needle) != NULL)
			return true;
	return false;
}

static void
dump_notes(const struct report *r)
{
	size_t i;

	for (i = 0; i < r->notes.n; i++)
		diag("note: %s", r->notes.items[i]);
}

/* raw_json is valid JSON, an object, with this report-id. */
static void
check_raw_json(const struct report *r, const char *report_id, const char *what)
{
	json_object *o, *v;

	if (!ok(r->raw_json != NULL, "%s: raw_json kept", what)) {
		skip("no raw_json");
		return;
	}
	o = json_tokener_parse(r->raw_json);
	if (!ok(o != NULL && json_object_is_type(o, json_type_object), "%s: raw_json is a JSON object", what)) {
		json_object_put(o);
		return;
	}
	(void)json_object_object_get_ex(o, "report-id", &v);
	is_string(report_id, v ? json_object_get_string(v) : NULL, "%s: raw_json report-id", what);
	json_object_put(o);
}

static void
test_datetime(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"2023-01-10T00:00:00", "2023-01-10 00:00:00+00"},      /* Microsoft, no zone */
		{"2023-01-10T23:59:59", "2023-01-10 23:59:59+00"},
		{"2024-09-03T00:00:00+02:00", "2024-09-02 22:00:00+00"},
		{"2016-04-01T23:59:59Z", "2016-04-01 23:59:59+00"},
		{"2016-04-01 23:59:59Z", "2016-04-01 23:59:59+00"},     /* ' ' for 'T' */
		{"2016-04-01T23:59:59.999Z", "2016-04-01 23:59:59+00"}, /* fraction ignored */
		{"2020-01-01", "2020-01-01 00:00:00+00"},               /* date only */
		{"2023-01-26T00:00:00Z", "2023-01-26 00:00:00+00"},     /* next midnight */
		{"2024-01-01T01:00:00-05:30", "2024-01-01 06:30:00+00"},
		{"2023-12-31T23:30:00-01:00", "2024-01-01 00:30:00+00"}, /* year rollover */
		{"2024-03-01T00:30:00+01:00", "2024-02-29 23:30:00+00"}, /* leap day */
		{"2023-03-01T00:30:00+01:00", "2023-02-28 23:30:00+00"},
		{"2024-09-03T00:00:00+00:00", "2024-09-03 00:00:00+00"},
		{"garbage", NULL},
		{"", NULL},
		{"2024-13-01T00:00:00Z", NULL},
		{"2024-09-03T25:00:00Z", NULL},
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = report_normalize_datetime(cases[i].in);
		is_string(cases[i].out, got, "datetime \"%s\"", cases[i].in);
		free(got);
	}
}

static void
test_ms_no_tz(void)
{
	struct report *r = parse_fixture("ms-no-tz.json", NULL);
	const struct policy *p;

	if (r == NULL)
		return;
	is_string("Microsoft Corporation", r->organization_name, "ms-no-tz: organization-name");
	is_string("tlsrpt-noreply@microsoft.example.net", r->contact_info, "ms-no-tz: contact-info");
	is_string("133198585438131172+example.com", r->report_id, "ms-no-tz: report-id");
	is_string("2023-01-10 00:00:00+00", r->date_start, "ms-no-tz: start without zone taken as UTC");
	is_string("2023-01-10 23:59:59+00", r->date_end, "ms-no-tz: end without zone taken as UTC");
	if (is_int(1, (long long)r->n_policies, "ms-no-tz: one policy")) {
		p = &r->policies[0];
		is_string("sts", p->policy_type, "ms-no-tz: policy-type");
		is_string("example.com", p->policy_domain, "ms-no-tz: policy-domain");
		ok(p->policy_string.present, "ms-no-tz: policy-string present");
		if (is_int(4, (long long)p->policy_string.n, "ms-no-tz: 4 policy-string lines")) {
			is_string("version: STSv1", p->policy_string.items[0], "ms-no-tz: policy-string[0]");
			is_string("max_age: 1209600", p->policy_string.items[3], "ms-no-tz: policy-string[3]");
		}
		ok(!p->mx_host.present, "ms-no-tz: mx-host omitted -> not present");
		is_int(0, (long long)p->mx_host.n, "ms-no-tz: mx-host empty");
		is_count(&p->total_successful_session_count, 1, "ms-no-tz: successes");
		is_count(&p->total_failure_session_count, 0, "ms-no-tz: failures");
		is_int(0, (long long)p->n_failures, "ms-no-tz: no failure-details");
	}
	check_raw_json(r, "133198585438131172+example.com", "ms-no-tz");
	{
		struct buf b = {0};
		json_object *o, *v = NULL;

		report_to_json(r, &b);
		buf_cstr(&b);
		ok(b.len > 0 && memchr(b.data, '\n', b.len) == NULL, "report_to_json: one line");
		o = json_tokener_parse((const char *)b.data);
		ok(o != NULL && json_object_is_type(o, json_type_object), "report_to_json: a JSON object");
		if (o != NULL)
			(void)json_object_object_get_ex(o, "report-id", &v);
		if (v == NULL && o != NULL)
			(void)json_object_object_get_ex(o, "report_id", &v);
		is_string("133198585438131172+example.com", v ? json_object_get_string(v) : NULL,
			  "report_to_json: report id");
		ok(strstr((const char *)b.data, "2023-01-10 00:00:00+00") != NULL,
		   "report_to_json: normalized start date");
		json_object_put(o);
		buf_free(&b);
	}
	report_free(r);
}

static void
test_mailru(void)
{
	struct report *r = parse_fixture("mailru-next-midnight.json", NULL);
	const struct policy *p;
	const struct failure *f;

	if (r == NULL)
		return;
	is_string("Mail.example", r->organization_name, "mail.ru: organization-name (sorted keys)");
	is_string("tls_support@corp.mail.example.org", r->contact_info, "mail.ru: contact-info");
	is_string("c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org", r->report_id, "mail.ru: report-id");
	is_string("2023-01-25 00:00:00+00", r->date_start, "mail.ru: start");
	is_string("2023-01-26 00:00:00+00", r->date_end, "mail.ru: end is next midnight, kept");
	if (!is_int(1, (long long)r->n_policies, "mail.ru: one policy"))
		goto out;
	p = &r->policies[0];
	is_string("sts", p->policy_type, "mail.ru: policy-type");
	is_string("example.com", p->policy_domain, "mail.ru: policy-domain");
	ok(!p->policy_string.present, "mail.ru: sts without policy-string -> not present");
	ok(!p->mx_host.present, "mail.ru: no mx-host");
	is_count(&p->total_successful_session_count, 0, "mail.ru: successes");
	is_count(&p->total_failure_session_count, 1, "mail.ru: total failures 1 (kept though details sum to 2)");
	if (!is_int(2, (long long)p->n_failures, "mail.ru: two failure-details"))
		goto out;
	f = &p->failures[0];
	is_string("sts-policy-fetch-error", f->result_type, "mail.ru: [0] result-type");
	is_string(NULL, f->sending_mta_ip, "mail.ru: [0] no sending-mta-ip");
	is_string(NULL, f->receiving_mx_hostname, "mail.ru: [0] no receiving-mx-hostname");
	is_string(NULL, f->receiving_ip, "mail.ru: [0] no receiving-ip");
	is_string(NULL, f->receiving_mx_helo, "mail.ru: [0] no receiving-mx-helo");
	is_string(NULL, f->additional_information, "mail.ru: [0] no additional-information");
	is_count(&f->failed_session_count, 1, "mail.ru: [0] failed-session-count");
	is_string("Get \"https://mta-sts.example.com/.well-known/mta-sts.txt\": dial tcp 192.0.2.25:443: "
		  "connect: connection refused (while fetching the policy for \"example.com\", attempt 3 of 3)",
		  f->failure_reason_code, "mail.ru: [0] long failure-reason-code kept whole");
	f = &p->failures[1];
	is_string("bad https response code: 500", f->failure_reason_code, "mail.ru: [1] failure-reason-code");
	is_count(&f->failed_session_count, 1, "mail.ru: [1] failed-session-count");
out:
	report_free(r);
}

static void
test_stalwart(void)
{
	struct report *r = parse_fixture("stalwart-contact-null.json", NULL);
	const struct policy *p;

	if (r == NULL)
		return;
	is_string("mx.example.net", r->organization_name, "stalwart: organization-name");
	is_string(NULL, r->contact_info, "stalwart: contact-info null -> NULL");
	is_string("1730332800_11732957880687192466", r->report_id, "stalwart: report-id");
	is_string("2024-10-31 00:00:00+00", r->date_start, "stalwart: start");
	is_string("2024-11-01 00:00:00+00", r->date_end, "stalwart: end next midnight");
	if (is_int(1, (long long)r->n_policies, "stalwart: one policy")) {
		p = &r->policies[0];
		ok(p->policy_string.present, "stalwart: policy-string [] is present");
		is_int(0, (long long)p->policy_string.n, "stalwart: policy-string [] is empty");
		ok(p->mx_host.present, "stalwart: mx-host present");
		if (is_int(1, (long long)p->mx_host.n, "stalwart: one mx-host"))
			/* The host is kept; a receiver may strip the "mx: " copied from the
			 * policy text, but then says so in a note. raw_json keeps it as sent. */
			ok(strcmp(p->mx_host.items[0], "mx: mx.example.com") == 0 ||
			   (strcmp(p->mx_host.items[0], "mx.example.com") == 0 && notes_mention(r, "mx")),
			   "stalwart: \"mx: mx.example.com\" kept, or the prefix dropped with a note (%s)",
			   p->mx_host.items[0]);
		ok(r->raw_json != NULL && strstr(r->raw_json, "\"mx: mx.example.com\"") != NULL,
		   "stalwart: raw_json keeps the mx-host as sent");
		is_int(0, (long long)p->n_failures, "stalwart: failure-details []");
		is_count(&p->total_successful_session_count, 3, "stalwart: successes");
	}
	report_free(r);
}

static void
test_ms_no_ips(void)
{
	struct report *r = parse_fixture("ms-no-ips.json", NULL);
	const struct failure *f;

	if (r == NULL)
		return;
	if (is_int(1, (long long)r->n_policies, "no-ips: one policy") &&
	    is_int(1, (long long)r->policies[0].n_failures, "no-ips: one failure-detail")) {
		ok(!r->policies[0].policy_string.present, "no-ips: no policy-string");
		f = &r->policies[0].failures[0];
		is_string("sts-policy-fetch-error", f->result_type, "no-ips: result-type");
		is_string(NULL, f->sending_mta_ip, "no-ips: sending-mta-ip missing -> NULL");
		is_string(NULL, f->receiving_mx_hostname, "no-ips: receiving-mx-hostname missing -> NULL");
		is_string(NULL, f->receiving_ip, "no-ips: receiving-ip missing -> NULL");
		is_string(NULL, f->failure_reason_code, "no-ips: failure-reason-code missing -> NULL");
		is_count(&f->failed_session_count, 4, "no-ips: failed-session-count");
		is_count(&r->policies[0].total_failure_session_count, 4, "no-ips: total failures");
	}
	report_free(r);
}

static void
test_empty_strings(void)
{
	struct report *r = parse_fixture("empty-strings.json", NULL);
	const struct failure *f;

	if (r == NULL)
		return;
	if (is_int(1, (long long)r->n_policies, "empty: one policy") &&
	    is_int(1, (long long)r->policies[0].n_failures, "empty: one failure-detail")) {
		f = &r->policies[0].failures[0];
		is_string(NULL, f->sending_mta_ip, "empty: sending-mta-ip \"\" -> NULL");
		is_string(NULL, f->receiving_ip, "empty: receiving-ip \"\" -> NULL");
		ok(f->receiving_mx_hostname == NULL || f->receiving_mx_hostname[0] == '\0',
		   "empty: receiving-mx-hostname \"\" -> NULL or empty");
		ok(f->additional_information == NULL || f->additional_information[0] == '\0',
		   "empty: additional-information \"\" -> NULL or empty");
		is_string("validation-failure", f->result_type, "empty: result-type");
		is_string("no-policy-served", f->failure_reason_code, "empty: failure-reason-code");
		is_count(&f->failed_session_count, 2, "empty: failed-session-count");
	}
	report_free(r);
}

static void
test_postfix(void)
{
	struct report *r;

	r = parse_fixture("postfix-no-domain.json", "example.com");
	if (r != NULL) {
		is_string("mail.example.org", r->organization_name, "postfix: organization-name");
		is_string("2025-09-20T00:00:00Z_idx1_example.com", r->report_id, "postfix: report-id (last key)");
		is_string("2025-09-20 00:00:00+00", r->date_start, "postfix: start");
		if (is_int(1, (long long)r->n_policies, "postfix: one policy")) {
			is_string("no-policy-found", r->policies[0].policy_type, "postfix: policy-type");
			is_string("example.com", r->policies[0].policy_domain,
				  "postfix: missing policy-domain filled from fallback");
			is_count(&r->policies[0].total_successful_session_count, 1,
				 "postfix: successes (summary before policy)");
			is_count(&r->policies[0].total_failure_session_count, 0, "postfix: failures");
			is_int(0, (long long)r->policies[0].n_failures, "postfix: failure-details []");
			ok(!r->policies[0].policy_string.present, "postfix: no policy-string");
		}
		report_free(r);
	}
	r = parse_fixture("postfix-no-domain.json", NULL);
	if (r != NULL) {
		if (is_int(1, (long long)r->n_policies, "postfix without fallback: one policy"))
			is_string(NULL, r->policies[0].policy_domain, "postfix without fallback: policy-domain NULL");
		report_free(r);
	}
}

static void
test_ms_tlsa(void)
{
	struct report *r = parse_fixture("ms-tlsa.json", NULL);
	const struct policy *p;

	if (r == NULL)
		return;
	if (!is_int(2, (long long)r->n_policies, "tlsa: two policies"))
		goto out;
	is_string("sts", r->policies[0].policy_type, "tlsa: [0] sts");
	is_string("example.com", r->policies[0].policy_domain, "tlsa: [0] domain");
	is_string("mx: *.example.com", r->policies[0].policy_string.n > 2 ? r->policies[0].policy_string.items[2] : NULL,
		  "tlsa: [0] wildcard mx line");
	p = &r->policies[1];
	is_string("tlsa", p->policy_type, "tlsa: [1] tlsa");
	is_string("example.com", p->policy_domain, "tlsa: [1] same domain as the sts policy");
	ok(p->policy_string.present, "tlsa: policy-string present");
	if (is_int(1, (long long)p->policy_string.n, "tlsa: one raw string, not expanded"))
		is_string("[\"3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC\","
			  "\"3 1 1 837C773D54C2E2BD71871A3FC352BE8214D5646CBAE5E3091401A7274717998B\"]",
			  p->policy_string.items[0], "tlsa: JSON-array-in-string kept as given");
	ok(!p->mx_host.present, "tlsa: no mx-host");
	is_count(&p->total_successful_session_count, 2, "tlsa: successes");
out:
	report_free(r);
}

static void
test_rfc(void)
{
	struct report *r = parse_fixture("rfc-example.json", NULL);
	const struct policy *p;
	const struct failure *f;

	if (r == NULL)
		return;
	is_string("Company-X", r->organization_name, "rfc: organization-name");
	is_string("sts-reporting@example.org", r->contact_info, "rfc: contact-info");
	is_string("5065427c-23d3-47ca-b6e0-946ea0e8c4be", r->report_id, "rfc: report-id");
	is_string("2016-04-01 00:00:00+00", r->date_start, "rfc: start");
	is_string("2016-04-01 23:59:59+00", r->date_end, "rfc: end");
	if (!is_int(1, (long long)r->n_policies, "rfc: one policy"))
		goto out;
	p = &r->policies[0];
	is_string("sts", p->policy_type, "rfc: policy-type");
	is_int(4, (long long)p->policy_string.n, "rfc: 4 policy-string lines");
	ok(p->mx_host.present, "rfc: mx-host as a string is present");
	if (is_int(1, (long long)p->mx_host.n, "rfc: mx-host string -> 1-element list"))
		is_string("*.mail.example.com", p->mx_host.items[0], "rfc: mx-host value");
	is_count(&p->total_successful_session_count, 5326, "rfc: successes");
	is_count(&p->total_failure_session_count, 303, "rfc: failures");
	if (!is_int(3, (long long)p->n_failures, "rfc: three failure-details"))
		goto out;
	f = &p->failures[0];
	is_string("certificate-expired", f->result_type, "rfc: [0] result-type");
	is_string("2001:db8:abcd:12::1", f->sending_mta_ip, "rfc: [0] 2001:db8:abcd:0012::1 canonical");
	is_string("mx1.mail.example.com", f->receiving_mx_hostname, "rfc: [0] receiving-mx-hostname");
	is_string(NULL, f->receiving_ip, "rfc: [0] no receiving-ip");
	is_count(&f->failed_session_count, 100, "rfc: [0] failed-session-count");
	f = &p->failures[1];
	is_string("starttls-not-supported", f->result_type, "rfc: [1] result-type");
	is_string("2001:db8:abcd:13::1", f->sending_mta_ip, "rfc: [1] 2001:db8:abcd:0013::1 canonical");
	is_string("203.0.113.56", f->receiving_ip, "rfc: [1] receiving-ip");
	is_string("https://reports.example.org/report_info?id=5065427c-23d3#StarttlsNotSupported",
		  f->additional_information, "rfc: [1] additional-information");
	is_count(&f->failed_session_count, 200, "rfc: [1] failed-session-count");
	f = &p->failures[2];
	is_string("validation-failure", f->result_type, "rfc: [2] result-type");
	is_string("198.51.100.62", f->sending_mta_ip, "rfc: [2] IPv4 sending-mta-ip");
	is_string("203.0.113.58", f->receiving_ip, "rfc: [2] receiving-ip");
	is_string("mx-backup.mail.example.com", f->receiving_mx_hostname, "rfc: [2] receiving-mx-hostname");
	is_string("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED", f->failure_reason_code, "rfc: [2] failure-reason-code");
	is_count(&f->failed_session_count, 3, "rfc: [2] failed-session-count");
out:
	report_free(r);
}

static void
test_mx_shapes(void)
{
	struct report *r = parse_fixture("mx-host-shapes.json", NULL);
	const struct policy *p;

	if (r == NULL)
		return;
	if (!is_int(4, (long long)r->n_policies, "mx shapes: four policies"))
		goto out;
	p = &r->policies[0];
	ok(p->mx_host.present, "mx shapes: array present");
	if (is_int(2, (long long)p->mx_host.n, "mx shapes: array of two"))
		is_string("in2-smtp.example.net", p->mx_host.items[1], "mx shapes: array [1]");
	p = &r->policies[1];
	ok(p->mx_host.present, "mx shapes: [] present");
	is_int(0, (long long)p->mx_host.n, "mx shapes: [] empty");
	ok(!p->policy_string.present, "mx shapes: policy-string missing -> not present");
	p = &r->policies[2];
	ok(!p->mx_host.present, "mx shapes: omitted -> not present");
	is_int(0, (long long)p->mx_host.n, "mx shapes: omitted -> empty");
	p = &r->policies[3];
	ok(p->mx_host.n == 0 || (p->mx_host.n == 1 && p->mx_host.items[0] != NULL),
	   "mx shapes: \"\" -> empty or one element (n=%zu)", p->mx_host.n);
	is_count(&p->total_successful_session_count, 3, "mx shapes: [3] successes (policy after \"\" kept)");
out:
	report_free(r);
}

static void
test_socketlabs(void)
{
	struct report *r = parse_fixture("socketlabs-misspelled.json", NULL);
	const struct failure *f;

	if (r == NULL)
		return;
	is_string("2020-02-28 00:00:00+00", r->date_end, "socketlabs: end next midnight");
	if (!is_int(2, (long long)r->n_policies, "socketlabs: two policies"))
		goto out;
	is_string("example.org", r->policies[0].policy_domain, "socketlabs: [0] domain");
	is_string("example.org", r->policies[1].policy_domain, "socketlabs: [1] same domain");
	if (is_int(1, (long long)r->policies[0].mx_host.n, "socketlabs: [0] one mx-host"))
		is_string("mta-sts.example.org", r->policies[0].mx_host.items[0], "socketlabs: [0] mx-host");
	ok(r->policies[1].mx_host.present && r->policies[1].mx_host.n == 0, "socketlabs: [1] mx-host []");
	is_int(0, (long long)r->policies[0].n_failures, "socketlabs: [0] no failure-details key");
	if (is_int(1, (long long)r->policies[1].n_failures, "socketlabs: [1] one failure-detail")) {
		f = &r->policies[1].failures[0];
		is_string("mta-sts.example.org", f->receiving_mx_hostname,
			  "socketlabs: receiving-mx-host-name (misspelled) read");
		is_string("192.0.2.133", f->sending_mta_ip, "socketlabs: sending-mta-ip");
		is_string("203.0.113.132", f->receiving_ip, "socketlabs: receiving-ip");
		is_string("certificate-host-mismatch", f->result_type, "socketlabs: result-type");
		is_count(&f->failed_session_count, 2, "socketlabs: failed-session-count");
	}
out:
	report_free(r);
}

static void
test_testing(void)
{
	struct report *r = parse_fixture("testing-xxxx.json", NULL);
	const struct failure *f;

	if (r == NULL)
		return;
	if (is_int(1, (long long)r->n_policies, "testing: one policy") &&
	    is_int(1, (long long)r->policies[0].n_failures, "testing: one failure-detail")) {
		f = &r->policies[0].failures[0];
		is_string("testing", f->result_type, "testing: unknown result-type kept, lowercased");
		ok(strstr(r->raw_json, "\"Testing\"") != NULL, "testing: raw keeps \"Testing\"");
		is_string(NULL, f->sending_mta_ip, "testing: \"x.x.x.x\" -> NULL");
		is_string("testing.example.org", f->additional_information,
			  "testing: additional-info-uri read as additional-information");
		is_string("testing.example.org", f->receiving_mx_hostname, "testing: receiving-mx-hostname");
		is_string("123", f->failure_reason_code, "testing: failure-reason-code");
		is_count(&f->failed_session_count, 3, "testing: failed-session-count");
		is_count(&r->policies[0].total_failure_session_count, 2, "testing: total failures");
	}
	report_free(r);
}

static void
test_three_policies(void)
{
	struct report *r = parse_fixture("google-three-policies.json", NULL);
	size_t i;

	if (r == NULL)
		return;
	if (!is_int(3, (long long)r->n_policies, "three: three policies"))
		goto out;
	is_string("no-policy-found", r->policies[0].policy_type, "three: [0] no-policy-found");
	is_string("sts", r->policies[1].policy_type, "three: [1] sts");
	is_string("sts", r->policies[2].policy_type, "three: [2] sts");
	for (i = 0; i < 3; i++)
		is_string("example.net", r->policies[i].policy_domain, "three: [%zu] same policy-domain", i);
	is_int(2, (long long)r->policies[1].n_failures, "three: [1] two failure-details");
	if (r->policies[1].n_failures == 2)
		is_string("198.51.100.193", r->policies[1].failures[1].sending_mta_ip, "three: [1][1] sending-mta-ip");
	if (is_int(5, (long long)r->policies[2].policy_string.n, "three: [2] five policy-string lines"))
		is_string("mx: *.example.net", r->policies[2].policy_string.items[4], "three: [2] last line");
	is_count(&r->policies[2].total_successful_session_count, 5, "three: [2] successes");
out:
	report_free(r);
}

static void
test_invalid_type(void)
{
	struct report *r = parse_fixture("invalid-policy-type.json", "example.org");

	if (r == NULL)
		return;
	if (is_int(2, (long long)r->n_policies, "invalid type: both policies kept")) {
		is_string("no-policy-found", r->policies[0].policy_type, "invalid type: [0] type");
		is_string("invalid-policy-type", r->policies[1].policy_type, "invalid type: [1] unknown type kept raw");
		is_string("example.org", r->policies[1].policy_domain, "invalid type: [1] domain from fallback");
		is_count(&r->policies[1].total_successful_session_count, 1, "invalid type: [1] successes");
		is_absent_count(&r->policies[1].total_failure_session_count,
				"invalid type: [1] missing total-failure-session-count");
		is_absent_count(&r->policies[0].total_failure_session_count,
				"invalid type: [0] missing total-failure-session-count");
	}
	report_free(r);
}

static void
test_minified(void)
{
	size_t len;
	unsigned char *data = read_data("google-minified.json", &len);
	struct report *r;

	ok(len > 0 && data[len - 1] == '}', "minified: fixture has no trailing newline");
	r = parse_text((const char *)data, len, NULL, &deflim, "minified");
	if (r != NULL) {
		is_string("Google Inc.", r->organization_name, "minified: organization-name");
		is_string("2024-09-03T00:00:00Z_example.com", r->report_id, "minified: report-id");
		if (is_int(1, (long long)r->n_policies, "minified: one policy")) {
			is_string("no-policy-found", r->policies[0].policy_type, "minified: policy-type");
			is_count(&r->policies[0].total_successful_session_count, 7, "minified: successes");
			ok(!r->policies[0].policy_string.present, "minified: no policy-string");
		}
		report_free(r);
	}
	/* The same bytes, not NUL-terminated at len: parse exactly len bytes. */
	{
		char *copy = malloc(len + 8);
		struct report *r2;

		if (copy == NULL)
			bail("out of memory");
		memcpy(copy, data, len);
		memcpy(copy + len, "GARBAGE", 8);
		r2 = parse_text(copy, len, NULL, &deflim, "minified, bytes after len ignored");
		if (r2 != NULL)
			report_free(r2);
		free(copy);
	}
	free(data);
}

static void
test_idn(void)
{
	struct report *r = parse_fixture("idn.json", NULL);

	if (r == NULL)
		return;
	if (is_int(1, (long long)r->n_policies, "idn: one policy")) {
		is_string("xn--bcher-kva.example", r->policies[0].policy_domain, "idn: A-label domain kept");
		if (is_int(1, (long long)r->policies[0].mx_host.n, "idn: mx-host string -> one"))
			is_string("mx.xn--bcher-kva.example", r->policies[0].mx_host.items[0], "idn: mx-host");
		is_count(&r->policies[0].total_successful_session_count, 99, "idn: successes");
		is_count(&r->policies[0].total_failure_session_count, 102, "idn: failures");
	}
	report_free(r);
}

static void
test_counts(void)
{
	struct report *r = parse_fixture("bad-counts.json", NULL);
	const struct policy *p;

	if (r == NULL)
		return;
	is_string("2024-09-02 22:00:00+00", r->date_start, "counts: +02:00 start converted to UTC");
	is_string("2024-09-03 21:59:59+00", r->date_end, "counts: +02:00 end with fraction converted to UTC");
	if (!is_int(1, (long long)r->n_policies, "counts: one policy"))
		goto out;
	p = &r->policies[0];
	is_count(&p->total_successful_session_count, 17, "counts: \"17\" -> 17");
	is_absent_count(&p->total_failure_session_count, "counts: -5");
	ok(notes_mention(r, "total-failure-session-count"), "counts: a note names total-failure-session-count");
	if (is_int(3, (long long)p->n_failures, "counts: three failure-details kept")) {
		is_absent_count(&p->failures[0].failed_session_count, "counts: \"abc\"");
		is_absent_count(&p->failures[1].failed_session_count, "counts: 92233720368547758080 (> int64)");
		is_count(&p->failures[2].failed_session_count, 0, "counts: 0 is a count");
		is_string("192.0.2.1", p->failures[0].sending_mta_ip, "counts: [0] rest of the detail kept");
	}
	ok(notes_mention(r, "failed-session-count"), "counts: a note names failed-session-count");
	{
		/* Just past INT64_MAX (json-c keeps it as uint64) and just below INT64_MIN. */
		static const char big[] =
			"{\"report-id\":\"big\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\"},"
			"\"summary\":{\"total-successful-session-count\":9223372036854775808,"
			"\"total-failure-session-count\":-9223372036854775809}}]}";
		struct report *rb = parse_text(big, sizeof big - 1, NULL, &deflim, "counts past int64");
		if (rb != NULL) {
			if (is_int(1, (long long)rb->n_policies, "counts past int64: one policy")) {
				is_absent_count(&rb->policies[0].total_successful_session_count,
						"counts: 9223372036854775808");
				is_absent_count(&rb->policies[0].total_failure_session_count,
						"counts: -9223372036854775809");
			}
			ok(rb->notes.n >= 2, "counts past int64: two notes (n=%zu)", rb->notes.n);
			report_free(rb);
		}
	}
	if (!ok(r->notes.n >= 3, "counts: a note for each of the 3 dropped counts (n=%zu)", r->notes.n))
		dump_notes(r);
out:
	report_free(r);
}

static bool
has_nul_escape(const char *s)
{
	return s != NULL && strstr(s, "\\u0000") != NULL;
}

static void
test_nul(void)
{
	struct report *r = parse_fixture("nul.json", NULL);
	const struct policy *p;
	json_object *o, *v;

	if (r == NULL)
		return;
	is_string("EvilCorp", r->organization_name, "nul: NUL dropped from organization-name");
	is_string("ab@example.net", r->contact_info, "nul: NUL dropped from contact-info");
	is_string("nulid", r->report_id, "nul: NUL dropped from report-id");
	if (is_int(1, (long long)r->n_policies, "nul: one policy")) {
		p = &r->policies[0];
		is_string("example.com", p->policy_domain, "nul: policy-domain");
		is_string("version: STSv1", p->policy_string.n == 1 ? p->policy_string.items[0] : NULL,
			  "nul: policy-string");
		is_string("mx.example.com", p->mx_host.n == 1 ? p->mx_host.items[0] : NULL, "nul: mx-host");
		if (is_int(1, (long long)p->n_failures, "nul: one failure-detail")) {
			is_string("certificate-expired", p->failures[0].result_type, "nul: result-type");
			is_string("xy", p->failures[0].failure_reason_code, "nul: failure-reason-code");
		}
	}
	if (ok(r->raw_json != NULL, "nul: raw_json kept")) {
		ok(!has_nul_escape(r->raw_json), "nul: no \\u0000 in raw_json");
		o = json_tokener_parse(r->raw_json);
		ok(o != NULL, "nul: raw_json still parses");
		v = NULL;
		if (o != NULL)
			(void)json_object_object_get_ex(o, "organization-name", &v);
		is_string("EvilCorp", v ? json_object_get_string(v) : NULL, "nul: raw_json organization-name");
		json_object_put(o);
	} else {
		skip_block(3, "no raw_json");
	}
	report_free(r);
}

static void
test_ips(void)
{
	static const struct {
		const char *in, *out;
	} ips[] = {
		{"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},    /* RFC 5952: lower case, :: */
		{"2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
		{"198.51.100.7", "198.51.100.7"},
		{"256.1.1.1", NULL},
		{"mx.example.com", NULL},
		{"192.0.2.1/24", NULL},
	};
	size_t i;

	for (i = 0; i < sizeof ips / sizeof ips[0]; i++) {
		char json[512];
		struct report *r;
		int n = snprintf(json, sizeof json,
				 "{\"report-id\":\"ip\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\"},"
				 "\"failure-details\":[{\"result-type\":\"validation-failure\","
				 "\"sending-mta-ip\":\"%s\",\"receiving-ip\":\"%s\",\"failed-session-count\":1}]}]}",
				 ips[i].in, ips[i].in);

		r = parse_text(json, (size_t)n, NULL, &deflim, ips[i].in);
		if (r == NULL)
			continue;
		if (r->n_policies == 1 && r->policies[0].n_failures == 1) {
			is_string(ips[i].out, r->policies[0].failures[0].sending_mta_ip, "ip \"%s\": sending-mta-ip",
				  ips[i].in);
			is_string(ips[i].out, r->policies[0].failures[0].receiving_ip, "ip \"%s\": receiving-ip",
				  ips[i].in);
			is_count(&r->policies[0].failures[0].failed_session_count, 1, "ip: the rest of the detail");
		} else {
			ok(false, "ip \"%s\": one policy with one failure-detail", ips[i].in);
		}
		report_free(r);
	}
}

/* Only report-id: a report (one of the four keys), with nothing else. */
static void
test_minimal(void)
{
	static const char json[] = "{\"report-id\":\"only-id\"}";
	struct report *r = parse_text(json, sizeof json - 1, NULL, &deflim, "only report-id");

	if (r == NULL)
		return;
	is_string("only-id", r->report_id, "minimal: report-id");
	is_string(NULL, r->organization_name, "minimal: no organization-name");
	is_string(NULL, r->date_start, "minimal: no start");
	is_string(NULL, r->date_end, "minimal: no end");
	is_int(0, (long long)r->n_policies, "minimal: no policies");
	report_free(r);
}

static void
test_refusals(void)
{
	static const char deep_head[] = "{\"report-id\":\"deep\",\"organization-name\":\"x\",\"extra\":";
	struct limits lim;
	struct buf b = {0};
	int i;
	struct report *r;

	refuse_fixture("array.json", &deflim, NULL, "a JSON array");
	refuse_fixture("not-report.json", &deflim, NULL, "an object that is not a report");
	refuse_text("this is not json", 16, &deflim, NULL, "not JSON");
	refuse_text("", 0, &deflim, NULL, "empty input");
	refuse_text("{\"report-id\":\"x\"", 16, &deflim, NULL, "truncated JSON");
	refuse_text("\"a string\"", 10, &deflim, NULL, "a JSON string");

	/* Nesting: 50 levels with max_json_depth 10 is refused, 5 is fine. */
	lim = deflim;
	lim.max_json_depth = 10;
	buf_puts(&b, deep_head);
	for (i = 0; i < 50; i++)
		buf_puts(&b, "[");
	for (i = 0; i < 50; i++)
		buf_puts(&b, "]");
	buf_puts(&b, "}");
	refuse_text((const char *)b.data, b.len, &lim, "max_json_depth", "50 levels deep, max_json_depth 10");
	b.len = 0;
	buf_puts(&b, deep_head);
	for (i = 0; i < 5; i++)
		buf_puts(&b, "[");
	for (i = 0; i < 5; i++)
		buf_puts(&b, "]");
	buf_puts(&b, "}");
	r = parse_text((const char *)b.data, b.len, NULL, &lim, "7 levels deep, max_json_depth 10");
	if (r != NULL) {
		is_string("deep", r->report_id, "shallow nesting: report-id");
		report_free(r);
	}
	/* A huge default-depth nesting must not crash either. */
	b.len = 0;
	buf_puts(&b, deep_head);
	for (i = 0; i < 100000; i++)
		buf_puts(&b, "[");
	buf_puts(&b, "}");
	refuse_text((const char *)b.data, b.len, &deflim, "max_json_depth", "100000 '[' with default limits");
	buf_free(&b);

	/* Limits, each just under and just over. */
	lim = deflim;
	lim.max_policies = 2;
	refuse_fixture("google-three-policies.json", &lim, "max_policies", "3 policies, max_policies 2");
	lim.max_policies = 3;
	{
		size_t len;
		unsigned char *d = read_data("google-three-policies.json", &len);
		r = parse_text((const char *)d, len, NULL, &lim, "3 policies, max_policies 3");
		if (r != NULL) {
			is_int(3, (long long)r->n_policies, "max_policies 3: all three kept");
			report_free(r);
		}
		free(d);
	}
	lim = deflim;
	lim.max_failures_per_policy = 2;
	refuse_fixture("rfc-example.json", &lim, "max_failures_per_policy", "3 failure-details, limit 2");
	lim.max_failures_per_policy = 3;
	{
		size_t len;
		unsigned char *d = read_data("rfc-example.json", &len);
		r = parse_text((const char *)d, len, NULL, &lim, "3 failure-details, limit 3");
		if (r != NULL)
			report_free(r);
		free(d);
	}
	lim = deflim;
	lim.max_string_length = 100; /* the long failure-reason-code has 173 bytes */
	refuse_fixture("mailru-next-midnight.json", &lim, "max_string_length", "173-byte string, limit 100");
	lim.max_string_length = 200;
	{
		size_t len;
		unsigned char *d = read_data("mailru-next-midnight.json", &len);
		r = parse_text((const char *)d, len, NULL, &lim, "173-byte string, limit 200");
		if (r != NULL)
			report_free(r);
		free(d);
	}
	lim = deflim;
	lim.max_json_size = 100;
	refuse_fixture("rfc-example.json", &lim, "max_json_size", "1482-byte JSON, max_json_size 100");
}

/* Grouping keys normalized: white space, ASCII case, trailing dots; raw keeps
 * the original. */
static void
test_normalize(void)
{
	static const char json[] =
		"{\"organization-name\":\"Norm\",\"report-id\":\"n-1\",\"policies\":["
		"{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\" Example.ORG. \","
		"\"mx-host\":[\"MX1.Example.org.\",\" \",\"mx: MX2.example.org\",\"B\xc3\x9c" "cher.Example\"]},"
		"\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":2},"
		"\"failure-details\":[{\"result-type\":\" Certificate-Expired\\t\",\"receiving-mx-hostname\":\"MX1.EXAMPLE.ORG..\","
		"\"failed-session-count\":2},{\"result-type\":\"  \",\"receiving-mx-hostname\":\" . \"}]},"
		"{\"policy\":{\"policy-type\":\"tlsa\",\"policy-domain\":\"\\t.\\n\"},"
		"\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":0}}]}";
	struct report *r = parse_text(json, sizeof json - 1, "Fallback.Example.", &deflim, "normalize");
	const struct policy *p;

	if (r == NULL)
		return;
	if (!is_int(2, (long long)r->n_policies, "normalize: two policies"))
		goto out;
	p = &r->policies[0];
	is_string("example.org", p->policy_domain, "normalize: policy-domain trimmed, lowercased, dot removed");
	if (is_int(3, (long long)p->mx_host.n, "normalize: mx-host, the blank one left out")) {
		is_string("mx1.example.org", p->mx_host.items[0], "normalize: mx-host [0]");
		is_string("mx2.example.org", p->mx_host.items[1], "normalize: mx-host [1], prefix removed too");
		is_string("b\xc3\x9c" "cher.example", p->mx_host.items[2], "normalize: mx-host [2], non-ASCII kept as sent");
	}
	if (is_int(2, (long long)p->n_failures, "normalize: two failure-details")) {
		is_string("certificate-expired", p->failures[0].result_type, "normalize: result-type trimmed, lowercased");
		is_string("mx1.example.org", p->failures[0].receiving_mx_hostname, "normalize: receiving-mx-hostname");
		is_string(NULL, p->failures[1].result_type, "normalize: a blank result-type -> NULL");
		is_string(NULL, p->failures[1].receiving_mx_hostname, "normalize: \" . \" -> NULL");
	}
	is_string("fallback.example", r->policies[1].policy_domain,
		  "normalize: a blank policy-domain is missing: the header's, normalized");
	ok(strstr(r->raw_json, "\" Example.ORG. \"") != NULL && strstr(r->raw_json, "MX1.EXAMPLE.ORG..") != NULL &&
	   strstr(r->raw_json, "\" Certificate-Expired\\t\"") != NULL, "normalize: raw keeps what was sent");
out:
	report_free(r);
}

static size_t
notes_count(const struct report *r, const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; i < r->notes.n; i++)
		if (strstr(r->notes.items[i], needle) != NULL)
			n++;
	return n;
}

/* Key names of the drafts of RFC 8460 and senders' variants, read as the RFC's. */
static void
test_aliases(void)
{
	/* the shape of the 2017 drafts: one policy at the top level */
	static const char draft[] =
		"{\"organization-name\":\"Draft Org\",\"report-id\":\"d-1\","
		"\"date-range\":{\"start-datetime\":\"2017-07-01T00:00:00Z\",\"end-datetime\":\"2017-07-01T23:59:59Z\"},"
		"\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"draft.example\",\"mx-host\":\"mx.draft.example\"},"
		"\"summary\":{\"success-aggregate\":90,\"failure-aggregate\":10},"
		"\"failure-details\":[{\"result-type\":\"certificate-expired\",\"sending-mta-ip\":\"192.0.2.1\","
		"\"receiving-mx-hostname\":\"mx.draft.example\",\"session-count\":6},"
		"{\"result-type\":\"validation-failure\",\"receiving-mx-hostname\":\"mx.draft.example\","
		"\"session-count\":4,\"failure-error-code\":\"X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED\"}]}";
	/* draft -00's names inside policies, and the 2016 summary names */
	static const char draft00[] =
		"{\"organization-name\":\"Old Draft\",\"report-id\":\"d-2\",\"policies\":["
		"{\"applied-policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"old.example\"},"
		"\"summary\":{\"success-count\":5,\"failure-count\":1},"
		"\"report-items\":[{\"result-type\":\"starttls-not-supported\","
		"\"receiving-mta-hostname\":\"MX.Old.Example\",\"message-count\":3}]}]}";
	/* both spellings: the RFC's wins, and nothing is noted */
	static const char both[] =
		"{\"organization-name\":\"Both\",\"report-id\":\"d-3\",\"policies\":["
		"{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"both.example\"},"
		"\"summary\":{\"total-successful-session-count\":7,\"success-count\":700,"
		"\"total-failure-session-count\":0},"
		"\"failure-details\":[{\"result-type\":\"dane-required\",\"failed-session-count\":1,\"session-count\":100}]}]}";
	struct report *r;
	const struct policy *p;

	if ((r = parse_text(draft, sizeof draft - 1, NULL, &deflim, "draft shape")) != NULL) {
		if (is_int(1, (long long)r->n_policies, "draft shape: the top-level policy is one entry")) {
			p = &r->policies[0];
			is_string("draft.example", p->policy_domain, "draft shape: policy-domain");
			is_count(&p->total_successful_session_count, 90, "draft shape: success-aggregate");
			is_count(&p->total_failure_session_count, 10, "draft shape: failure-aggregate");
			if (is_int(2, (long long)p->n_failures, "draft shape: two failure-details")) {
				is_count(&p->failures[0].failed_session_count, 6, "draft shape: session-count [0]");
				is_count(&p->failures[1].failed_session_count, 4, "draft shape: session-count [1]");
				is_string("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED", p->failures[1].failure_reason_code,
					  "draft shape: failure-error-code read as failure-reason-code");
			}
		}
		ok(notes_mention(r, "policy at the top level"), "draft shape: noted");
		is_int(1, (long long)notes_count(r, "session-count: read as failed-session-count"),
		       "draft shape: session-count noted once for two rows");
		ok(notes_mention(r, "success-aggregate: read as total-successful-session-count") &&
		   notes_mention(r, "failure-aggregate: read as total-failure-session-count") &&
		   notes_mention(r, "failure-error-code: read as failure-reason-code"),
		   "draft shape: every alias noted");
		report_free(r);
	}
	if ((r = parse_text(draft00, sizeof draft00 - 1, NULL, &deflim, "draft -00 names")) != NULL) {
		if (is_int(1, (long long)r->n_policies, "draft -00 names: one policy")) {
			p = &r->policies[0];
			is_string("old.example", p->policy_domain, "draft -00 names: applied-policy read as policy");
			is_count(&p->total_successful_session_count, 5, "draft -00 names: success-count");
			is_count(&p->total_failure_session_count, 1, "draft -00 names: failure-count");
			if (is_int(1, (long long)p->n_failures, "draft -00 names: report-items read as failure-details")) {
				is_string("mx.old.example", p->failures[0].receiving_mx_hostname,
					  "draft -00 names: receiving-mta-hostname, normalized");
				is_absent_count(&p->failures[0].failed_session_count,
						"draft -00 names: message-count (messages) is not a session count");
			}
		}
		ok(notes_mention(r, "applied-policy: read as policy") && notes_mention(r, "report-items: read as failure-details") &&
		   notes_mention(r, "receiving-mta-hostname: read as receiving-mx-hostname"),
		   "draft -00 names: noted");
		report_free(r);
	}
	if ((r = parse_text(both, sizeof both - 1, NULL, &deflim, "both spellings")) != NULL) {
		if (is_int(1, (long long)r->n_policies, "both spellings: one policy") &&
		    is_int(1, (long long)r->policies[0].n_failures, "both spellings: one failure")) {
			is_count(&r->policies[0].total_successful_session_count, 7, "both spellings: the RFC's count");
			is_count(&r->policies[0].failures[0].failed_session_count, 1, "both spellings: the RFC's failed count");
		}
		is_int(0, (long long)notes_count(r, "read as"), "both spellings: no alias noted");
		report_free(r);
	}
	/* the existing variants now say so too */
	if ((r = parse_fixture("socketlabs-misspelled.json", NULL)) != NULL) {
		ok(notes_mention(r, "receiving-mx-host-name: read as receiving-mx-hostname"),
		   "socketlabs: the misspelling is noted");
		report_free(r);
	}
}

int
main(void)
{
	struct config cfg;

	config_defaults(&cfg);
	deflim = cfg.limits;
	plan_lazy();

	test_datetime();
	test_ms_no_tz();
	test_mailru();
	test_stalwart();
	test_ms_no_ips();
	test_empty_strings();
	test_postfix();
	test_ms_tlsa();
	test_rfc();
	test_mx_shapes();
	test_socketlabs();
	test_testing();
	test_three_policies();
	test_invalid_type();
	test_minified();
	test_idn();
	test_counts();
	test_nul();
	test_ips();
	test_minimal();
	test_refusals();
	test_normalize();
	test_aliases();

	config_free(&cfg);
	return 0;
}
