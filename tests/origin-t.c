/* origin-t.c - src/origin.c without a database: organizational domains,
 * alignment, Authentication-Results parsing and whom to believe, and what
 * ingest_bytes() does with dkim_policy = require and our_domains. The DKIM
 * signatures themselves (keys made at test time) are in origin-t.sh. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ingest.h"
#include "mime.h"
#include "origin.h"
#include "tap.h"
#include "util.h"

static void
org(const char *domain, const char *want)
{
	char *got = origin_org_domain(domain);

	is_string(want, got, "organizational domain of %s", domain ? domain : "NULL");
	free(got);
}

static void
addr(const char *value, const char *want)
{
	char *got = origin_address_domain(value);

	is_string(want, got, "domain of From: %s", value);
	free(got);
}

/* A report mail with extra header lines on top. */
static char *
mail(const char *extra, const char *from, const char *submitter, const char *policy_domain)
{
	return xasprintf("%s"
			 "From: %s\n"
			 "To: tlsrpt@example.org\n"
			 "Subject: Report Domain: example.org\n"
			 "Message-ID: <origin-t.%s@%s>\n"
			 "TLS-Report-Domain: %s\n"
			 "TLS-Report-Submitter: %s\n"
			 "MIME-Version: 1.0\n"
			 "Content-Type: application/tlsrpt+json\n"
			 "\n"
			 "{\"organization-name\":\"Test\",\"report-id\":\"origin-t-%s\","
			 "\"date-range\":{\"start-datetime\":\"2024-03-01T00:00:00Z\",\"end-datetime\":\"2024-03-01T23:59:59Z\"},"
			 "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"%s\"},"
			 "\"summary\":{\"total-successful-session-count\":1,\"total-failure-session-count\":0}}]}\n",
			 extra, from, policy_domain, submitter, policy_domain, submitter, policy_domain, policy_domain);
}

struct ar_case {
	const char *what;
	const char *headers;
	const char *result, *domain, *method;
	enum tristate aligned;
};

static void
check_ar(const struct ar_case *c, const struct trust *t)
{
	char *m = mail(c->headers, "Mail.Ru <tlsrpt-noreply@mail.ru>", "mail.ru", "example.org");
	struct origin o;
	struct error e = {ERR_NONE, ""};

	struct mail *parsed = NULL;
	struct config cfg;

	config_defaults(&cfg);
	ok(mime_parse((unsigned char *)m, strlen(m), &cfg.limits, &parsed, &e) == 0, "%s: parsed", c->what);
	ok(origin_check((unsigned char *)m, strlen(m), parsed ? (const char *const *)parsed->auth_results : NULL,
			parsed ? parsed->n_auth_results : 0, "Mail.Ru <tlsrpt-noreply@mail.ru>", "mail.ru", t, &o,
			&e) == 0,
	   "%s: checked", c->what);
	mime_free(parsed);
	is_string(c->method, o.method, "%s: method", c->what);
	is_string(c->result, o.dkim_result, "%s: dkim_result", c->what);
	is_string(c->domain, o.dkim_domain, "%s: dkim_domain", c->what);
	is_int(c->aligned, o.aligned, "%s: aligned", c->what);
	if (o.detail)
		diag("%s: %s", c->what, o.detail);
	origin_free(&o);
	free(m);
}

static struct delivery *
ingest(const char *msg, const struct limits *lim, const char *what)
{
	struct delivery *d = NULL;
	struct error e = {ERR_NONE, ""};

	if (!ok(ingest_bytes((const unsigned char *)msg, strlen(msg), "stdin", lim, &d, &e) == 0,
		"%s: ingest_bytes succeeds", what))
		diag("%s", e.msg);
	return d;
}

int
main(void)
{
	struct config cfg;
	struct error e = {ERR_NONE, ""};
	struct ar_dkim r[4];
	char authserv[64];
	size_t n;

	plan_lazy();
	mime_init();
	config_defaults(&cfg);
	diag("organizational domains from %s", origin_psl_source());

	/* ---- organizational domains (PSL) ---- */
	org("corp.mail.ru", "mail.ru");
	org("mail.ru", "mail.ru");
	org("Smtp.Google.COM.", "google.com");
	org("a.b.example.co.uk", "example.co.uk");
	org("co.uk", NULL);
	org("com", NULL);
	org("", NULL);
	org(NULL, NULL);
	org("bad domain", NULL);
	ok(origin_same_org("corp.mail.ru", "mail.ru"), "corp.mail.ru and mail.ru: one organization");
	ok(origin_same_org("google.com", "smtp.google.com"), "google.com and smtp.google.com: one organization");
	ok(!origin_same_org("example.co.uk", "other.co.uk"), "example.co.uk and other.co.uk: two");
	ok(!origin_same_org("google.com", "google.com.evil.net"), "google.com and google.com.evil.net: two");
	ok(!origin_same_org("co.uk", "co.uk"), "a public suffix is no organization");

	addr("Google <noreply-smtp-tls-reporting@Google.COM>", "google.com");
	addr("tlsrpt@corp.mail.ru", "corp.mail.ru");
	addr("a@x.org, b@y.org", NULL);
	addr("undisclosed", NULL);

	ok(origin_domain_in_list("example.org", "example.org,example.net"), "our_domains: exact");
	ok(origin_domain_in_list("MAIL.Example.ORG.", "example.net  example.org"), "our_domains: a subdomain, any case");
	ok(!origin_domain_in_list("badexample.org", "example.org"), "our_domains: not a suffix match");
	ok(!origin_domain_in_list("example.org.evil.com", "example.org"), "our_domains: not a prefix match");
	ok(!origin_domain_in_list(NULL, "example.org"), "our_domains: no domain is not ours");

	/* ---- Authentication-Results, parsed ---- */
	ok(origin_parse_ar(" mx.example.org (Postfix); dkim=pass (2048-bit key; secure)"
			   " header.d=corp.mail.ru header.i=@corp.mail.ru header.b=\"Ab1;x\";"
			   " spf=pass smtp.mailfrom=mail.ru; dkim=fail reason=\"bad sig\" header.i=@Evil.example",
			   authserv, sizeof authserv, r, 4, &n) == 0, "A-R: parsed");
	is_string("mx.example.org", authserv, "A-R: authserv-id");
	is_int(2, (long long)n, "A-R: two dkim results (spf skipped)");
	is_string("pass", r[0].result, "A-R: first dkim result");
	is_string("corp.mail.ru", r[0].domain, "A-R: header.d");
	is_string("fail", n > 1 ? r[1].result : NULL, "A-R: second dkim result");
	is_string("evil.example", n > 1 ? r[1].domain : NULL, "A-R: header.i's domain without header.d");
	ok(origin_parse_ar("\"MX.Example.Org\" 1; none", authserv, sizeof authserv, r, 4, &n) == 0 && n == 0,
	   "A-R: quoted authserv-id, version, none");
	is_string("mx.example.org", authserv, "A-R: quoted authserv-id unquoted and lower case");
	ok(origin_parse_ar("  ", authserv, sizeof authserv, r, 4, &n) < 0, "A-R: empty refused");
	ok(origin_parse_ar("mx dkim=pass", authserv, sizeof authserv, r, 4, &n) < 0, "A-R: no ';' refused");
	ok(origin_parse_ar("mx; dkim/1 = pass header.d=(c) x.org", authserv, sizeof authserv, r, 4, &n) == 0 &&
	   n == 1 && strcmp(r[0].domain, "x.org") == 0, "A-R: method version and comments");
	/* bytes that are no result keyword or domain (fuzzing found them reaching
	 * dkim_result, a text column that refuses invalid UTF-8) are dropped */
	ok(origin_parse_ar("mx; dkim=pas\xae\xff header.d=x.org; dkim=pass header.d=b\xff" "d.org",
			   authserv, sizeof authserv, r, 4, &n) == 0 && n == 1,
	   "A-R: a result that is no keyword is dropped");
	is_string("pass", n == 1 ? r[0].result : NULL, "A-R: the keyword result is kept");
	is_string("", n == 1 ? r[0].domain : NULL, "A-R: a domain with stray bytes is dropped");

	/* ---- whom to believe ---- */
	config_set(&cfg, "trust", "authentication-results", &e);
	config_set(&cfg, "authserv_id", "mx.example.org, mx2.example.org", &e);
	{
		static const struct ar_case cases[] = {
			{"a forged header with a foreign authserv-id",
			 "Authentication-Results: mx.evil.example; dkim=pass header.d=mail.ru\n",
			 NULL, NULL, "authentication-results", TRI_UNKNOWN},
			{"our own header, aligned pass (corp.mail.ru for mail.ru)",
			 "Authentication-Results: mx.example.org;\n\tdkim=pass header.d=corp.mail.ru\n",
			 "pass", "corp.mail.ru", "authentication-results", TRI_TRUE},
			{"our own second MX's header",
			 "Authentication-Results: MX2.example.org; dkim=pass header.i=@mail.ru\n",
			 "pass", "mail.ru", "authentication-results", TRI_TRUE},
			{"ours on top, a forged one below with a foreign id",
			 "Authentication-Results: mx.example.org; dkim=fail header.d=mail.ru\n"
			 "Authentication-Results: mx.evil.example; dkim=pass header.d=mail.ru\n",
			 "fail", "mail.ru", "authentication-results", TRI_TRUE},
			{"a pass by an unrelated domain",
			 "Authentication-Results: mx.example.org; dkim=pass header.d=evil.example\n",
			 "pass", "evil.example", "authentication-results", TRI_FALSE},
			{"the aligned pass chosen among several signatures",
			 "Authentication-Results: mx.example.org; dkim=pass header.d=evil.example;"
			 " dkim=fail header.d=mail.ru; dkim=pass header.d=corp.mail.ru\n",
			 "pass", "corp.mail.ru", "authentication-results", TRI_TRUE},
			{"our header without a dkim result",
			 "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=mail.ru\n",
			 "none", NULL, "authentication-results", TRI_UNKNOWN},
			/* Postfix (and GMime) end the header section at a line that is
			 * no header: what follows is body, whatever it looks like */
			{"a forged header after a line that is not a header",
			 "X-Top: 1\nthis line is not a header\n"
			 "Authentication-Results: mx.example.org; dkim=pass header.d=mail.ru\n",
			 NULL, NULL, "authentication-results", TRI_UNKNOWN},
			/* RFC 8601: CFWS may come before the authserv-id, which may be quoted;
			 * such a header is ours (doc/trust.md's header_checks strips forged ones) */
			{"ours, with a comment, folding and quotes before the authserv-id",
			 "Authentication-Results: (our MTA)\n \"mx.example.org\"\n (v) 1; dkim=pass header.d=mail.ru\n",
			 "pass", "mail.ru", "authentication-results", TRI_TRUE},
			{"an authserv-id that only begins with ours",
			 "Authentication-Results: mx.example.org.evil.example; dkim=pass header.d=mail.ru\n",
			 NULL, NULL, "authentication-results", TRI_UNKNOWN},
		};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
			check_ar(&cases[i], &cfg.limits.trust);
	}

	/* ---- policy and our_domains, through ingest_bytes ---- */
	{
		char *good = mail("Authentication-Results: mx.example.org; dkim=pass header.d=corp.mail.ru\n",
				  "tlsrpt-noreply@mail.ru", "mail.ru", "example.org");
		char *forged = mail("Authentication-Results: mx.evil.example; dkim=pass header.d=mail.ru\n",
				    "tlsrpt-noreply@mail.ru", "mail.ru", "example.org");
		char *foreign = mail("Authentication-Results: mx.example.org; dkim=pass header.d=mail.ru\n",
				     "tlsrpt-noreply@mail.ru", "mail.ru", "victim.example");
		struct delivery *d;

		d = ingest(forged, &cfg.limits, "accept, forged header");
		is_int(1, d ? (long long)d->n_reports : -1, "accept: the report is kept");
		is_int(0, d ? (long long)d->n_rejections : -1, "accept: nothing rejected");
		ok(d && !origin_authenticated(&d->origin), "accept: but not authenticated");
		delivery_free(d);

		config_set(&cfg, "dkim_policy", "require", &e);
		d = ingest(good, &cfg.limits, "require, aligned pass");
		is_int(1, d ? (long long)d->n_reports : -1, "require: an aligned pass is stored");
		ok(d && origin_authenticated(&d->origin), "require: authenticated");
		delivery_free(d);

		d = ingest(forged, &cfg.limits, "require, forged header");
		is_int(0, d ? (long long)d->n_reports : -1, "require: no report from a forged header");
		is_int(1, d ? (long long)d->n_rejections : -1, "require: one rejection");
		if (d && d->n_rejections == 1) {
			ok(strstr(d->rejections[0].reason, "not authenticated") != NULL, "require: the reason says why: %s",
			   d->rejections[0].reason);
			is_int((long long)strlen(forged), (long long)d->rejections[0].raw_len,
			       "require: the whole message is kept");
		} else
			skip_block(2, "no rejection");
		delivery_free(d);

		config_set(&cfg, "our_domains", "example.org", &e);
		d = ingest(foreign, &cfg.limits, "our_domains, a report for another domain");
		is_int(0, d ? (long long)d->n_reports : -1, "our_domains: not stored as a report");
		is_int(1, d ? (long long)d->n_rejections : -1, "our_domains: kept in rejected");
		if (d && d->n_rejections == 1)
			is_string("policy domain victim.example is not one of our_domains", d->rejections[0].reason,
				  "our_domains: the reason");
		else
			skip("no rejection");
		delivery_free(d);
		d = ingest(good, &cfg.limits, "our_domains, a report for ours");
		is_int(1, d ? (long long)d->n_reports : -1, "our_domains: ours is stored");
		delivery_free(d);

		config_set(&cfg, "trust", "none", &e);
		d = ingest(good, &cfg.limits, "require with trust = none");
		is_int(0, d ? (long long)d->n_reports : -1, "trust = none with require: nothing is trusted");
		delivery_free(d);
		config_set(&cfg, "dkim_policy", "accept", &e);
		d = ingest(good, &cfg.limits, "trust = none");
		ok(d && d->origin.method == NULL && d->origin.dkim_result == NULL, "trust = none: nothing recorded");
		delivery_free(d);
		free(good);
		free(forged);
		free(foreign);
	}

	/* ---- the settings ---- */
	error_clear(&e);
	ok(config_set(&cfg, "trust", "dns", &e) < 0 && e.cls == ERR_CONFIG, "trust: a bad value refused: %s", e.msg);
	error_clear(&e);
	ok(config_set(&cfg, "dkim_policy", "maybe", &e) < 0 && e.cls == ERR_CONFIG, "dkim_policy: a bad value refused");

	config_free(&cfg);
	mime_shutdown();
	return 0;
}
