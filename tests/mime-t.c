/* mime-t.c - mime_parse() on every email fixture: the report candidates
 * (count, file name, type, decoded bytes) and the decoded, unfolded headers.
 * Each fixture is fed as it is, with CRLF turned into LF, and with LF turned
 * into CRLF. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "inflate.h"
#include "ingest.h"
#include "mime.h"
#include "status.h"
#include "util.h"

#include "tap.h"

/* A header not checked (its value depends on a choice the spec leaves open). */
#define ANY ((const char *)1)

#define MAXP 2

struct expect_part {
	const char *filename;    /* NULL: none */
	const char *ctype;
	const char *payload;     /* fixture the decoded content comes from */
	enum { GZ, PLAIN, EXACT } how; /* gzip of payload; payload itself; byte-exact file */
};

struct case_ {
	const char *file;
	size_t n_parts;
	const char *message_id, *subject, *report_domain, *submitter;
	struct expect_part parts[MAXP];
};

static const struct case_ cases[] = {
	{"google.eml", 1, "66d84a44.050a0220.1f2e.0001tls@google.example.net",
	 "Report Domain: example.com Submitter: google.example.net Report-ID: "
	 "<2024.09.03T00.00.00Z+example.com@google.example.net>",
	 "example.com", "google.example.net",
	 {{"google.example.net!example.com!1725321600!1725407999!001.json.gz", "application/tlsrpt+gzip",
	   "google-minified.json", GZ}}},
	{"google-crlf.eml", 1, "66d84a44.050a0220.1f2e.0001tls@google.example.net",
	 "Report Domain: example.com Submitter: google.example.net Report-ID: "
	 "<2024.09.03T00.00.00Z+example.com@google.example.net>",
	 "example.com", "google.example.net",
	 {{"google.example.net!example.com!1725321600!1725407999!001.json.gz", "application/tlsrpt+gzip",
	   "google-minified.json", GZ}}},
	{"microsoft.eml", 1, "133198585438131172+example.com@example.com",
	 "Report Domain: example.com Submitter: microsoft.example.net Report-ID: 133198585438131172+example.com",
	 "example.com", "microsoft.example.net",
	 {{"microsoft.example.net!example.com!1673308800!1673395199!133198585438131172.json.gz",
	   "application/tlsrpt+gzip", "ms-no-tz.json", GZ}}},
	{"mailru.eml", 1, "c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org",
	 "Report Domain: example.com Submitter: mail.example.org Report-ID: "
	 "<c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org>",
	 "example.com", "mail.example.org",
	 {{"mail.example.org!example.com!1674604800!1674691200!001.json.gz", "application/tlsrpt+gzip",
	   "mailru-next-midnight.json", GZ}}},
	{"tlsrpt-raw.eml", 1, "5065427c-23d3@sender.example.org",
	 "Report Domain: example.com Submitter: sender.example.org Report-ID: <5065427c-23d3@sender.example.org>",
	 "example.com", "sender.example.org",
	 {{"sender.example.org!example.com!1459468800!1459555199.json", "application/tlsrpt",
	   "rfc-example.json", PLAIN}}},
	{"tlsrpt-json.eml", 1, "json-2019-02-14@reporter.example.net",
	 "Report Domain: xn--bcher-kva.example Submitter: reporter.example.net Report-ID: "
	 "<2019-02-14@reporter.example.net>",
	 "xn--bcher-kva.example", "reporter.example.net",
	 {{"reporter.example.net!xn--bcher-kva.example!1550102400!1550188799.json", "application/tlsrpt+json",
	   "idn.json", PLAIN}}},
	{"octet-stream.eml", 1, "octet-1@sender.example.net", "TLS report for example.com", NULL, NULL,
	 {{"google.example.net!example.com!1725408000!1725494399!001.json.gz", "application/octet-stream",
	   "google-sts.json", GZ}}},
	{"rfc2231.eml", 1, "rfc2231-1@microsoft.example.net",
	 "R\xc3\xa9port Domain: example.com Submitter: microsoft.example.net", /* RFC 2047 decoded */
	 "example.com", "microsoft.example.net",
	 {{"r\xc3\xa9port-2024.json.gz", "application/gzip", "ms-tlsa.json", GZ}}},
	{"sniff.eml", 1, "sniff-1@sender.example.net", "daily report", NULL, NULL,
	 {{NULL, "application/octet-stream", "mx-host-shapes.json", GZ}}},
	{"singlepart.eml", 1, "single-1@mx.example.net",
	 "Report Domain: example.com Submitter: mx.example.net Report-ID: <1730332800_11732957880687192466>",
	 "example.com", "mx.example.net",
	 {{NULL, "application/tlsrpt+gzip", "stalwart-contact-null.json", GZ}}},
	{"forwarded.eml", 1, "fwd-1@example.com",
	 "Fwd: Report Domain: example.com Submitter: google.example.net", ANY, ANY,
	 {{"google.example.net!example.com!1725408000!1725494399!001.json.gz", "application/tlsrpt+gzip",
	   "google-sts.json", GZ}}},
	{"two-reports.eml", 2, "two-1@google.example.net",
	 "Report Domain: example.com Submitter: google.example.net Report-ID: <two@google.example.net>",
	 "example.com", "google.example.net",
	 {{"first.json.gz", "application/tlsrpt+gzip", "google-minified.json", GZ},
	  {"second.json.gz", "application/tlsrpt+gzip", "google-sts.json", GZ}}},
	{"two-reports-crlf.eml", 2, "two-1@google.example.net",
	 "Report Domain: example.com Submitter: google.example.net Report-ID: <two@google.example.net>",
	 "example.com", "google.example.net",
	 {{"first.json.gz", "application/tlsrpt+gzip", "google-minified.json", GZ},
	  {"second.json.gz", "application/tlsrpt+gzip", "google-sts.json", GZ}}},
	{"mbox-from.eml", 1, "mbox-1@socketlabs.example.net",
	 "Report Domain: example.org Submitter: socketlabs.example.net Report-ID: "
	 "<13B8FEDF21D3DBD6997654968E563122@socketlabs.example.net>",
	 "example.org", "socketlabs.example.net",
	 {{"socketlabs.example.net!example.org!1582761600!1582848000.json.gz", "application/tlsrpt+gzip",
	   "socketlabs-misspelled.json", GZ}}},
	{"fname-mtime.eml", 1, "735ff.e317+bf22029@sender.example.org",
	 /* RFC 5322 unfolding drops the CRLF only: the 5 spaces stay */
	 "Report Domain: example.com     Submitter: sender.example.org     "
	 "Report-ID: <735ff.e317+bf22029@sender.example.org>", "example.com", "sender.example.org",
	 {{"sender.example.org!example.com!1013662812!1013749130.json.gz", "application/tlsrpt+gzip",
	   "rfc-example.json", GZ}}},
	{"cron.eml", 0, "20240913062501.5C7A21F4@host.example.com",
	 "Cron <root@host> test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily", NULL, NULL, {{0}}},
	{"good-and-corrupt.eml", 2, "gc-1@mail.example.org",
	 "Report Domain: example.com Submitter: mail.example.org Report-ID: <2025-09-20T00:00:00Z_idx1_example.com>",
	 "example.com", "mail.example.org",
	 {{"good.json.gz", "application/tlsrpt+gzip", "postfix-no-domain.json", GZ},
	  {"corrupt.json.gz", "application/tlsrpt+gzip", "corrupt.json.gz", EXACT}}},
};

static struct limits deflim;

static unsigned char *
convert(const unsigned char *in, size_t len, bool to_crlf, size_t *outlen)
{
	struct buf b = {0};
	size_t i;

	buf_reserve(&b, len * 2 + 1);
	for (i = 0; i < len; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
			continue; /* CRLF -> LF (re-added below when to_crlf) */
		if (in[i] == '\n' && to_crlf)
			buf_append(&b, "\r", 1);
		buf_append(&b, &in[i], 1);
	}
	*outlen = b.len;
	buf_cstr(&b);
	return b.data;
}

/* Without '\r' and without trailing white space. */
static char *
normalized(const unsigned char *p, size_t len)
{
	struct buf b = {0};
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != '\r')
			buf_append(&b, &p[i], 1);
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
		b.len--;
	return buf_cstr(&b);
}

static void
check_payload(const struct mail_part *mp, const struct expect_part *ep, const char *what)
{
	size_t wlen;
	unsigned char *want = read_data(ep->payload, &wlen);

	if (ep->how == GZ) {
		struct buf out = {0};
		struct error e = {0};
		ok(is_gzip(mp->data, mp->len), "%s: decoded content starts with gzip magic", what);
		if (inflate_gzip(mp->data, mp->len, &deflim, &out, NULL, &e) == 0)
			ok(out.len == wlen && memcmp(out.data, want, wlen) == 0,
			   "%s: decoded gzip inflates to %s", what, ep->payload);
		else
			ok(false, "%s: decoded gzip inflates (%s)", what, e.msg);
		buf_free(&out);
	} else if (ep->how == EXACT) {
		ok(mp->len == wlen && memcmp(mp->data, want, wlen) == 0,
		   "%s: decoded content is %s byte for byte", what, ep->payload);
	} else {
		char *a = normalized(mp->data, mp->len), *b = normalized(want, wlen);
		is_string(b, a, "%s: content is %s", what, ep->payload);
		free(a);
		free(b);
	}
	free(want);
}

static void
check_header(const char *want, const char *got, const char *where, const char *what)
{
	if (want == ANY)
		ok(got == NULL || (strchr(got, '\n') == NULL && strchr(got, '\r') == NULL),
		   "%s: %s has no line breaks", where, what);
	else
		is_string(want, got, "%s: %s", where, what);
}

static void
run_case(const struct case_ *c, const unsigned char *msg, size_t len, const char *variant)
{
	struct mail *m = NULL;
	struct error e = {0};
	char what[200];
	size_t i;
	int rc;

	rc = mime_parse(msg, len, &deflim, &m, &e);
	snprintf(what, sizeof what, "%s (%s)", c->file, variant);
	if (!ok(rc == 0 && m != NULL, "%s: parses", what)) {
		diag("rc %d, %s: %s", rc, err_class_name(e.cls), e.msg);
		return;
	}
	check_header(c->message_id, m->message_id, what, "message_id");
	check_header(c->subject, m->subject, what, "subject");
	check_header(c->report_domain, m->report_domain, what, "report_domain");
	check_header(c->submitter, m->submitter, what, "submitter");
	if (is_int((long long)c->n_parts, (long long)m->n_parts, "%s: report candidates", what)) {
		for (i = 0; i < c->n_parts && i < MAXP; i++) {
			char pw[240];
			snprintf(pw, sizeof pw, "%s part %zu", what, i + 1);
			is_string(c->parts[i].filename, m->parts[i].filename, "%s: filename", pw);
			is_string(c->parts[i].ctype, m->parts[i].content_type, "%s: content type", pw);
			ok(m->parts[i].path != NULL && m->parts[i].path[0] != '\0', "%s: has a tree path (%s)", pw,
			   m->parts[i].path ? m->parts[i].path : "NULL");
			check_payload(&m->parts[i], &c->parts[i], pw);
		}
	}
	mime_free(m);
}

static void
expect_refused(const unsigned char *msg, size_t len, const struct limits *lim, const char *key,
	       const char *what)
{
	struct mail *m = NULL;
	struct error e = {0};
	int rc = mime_parse(msg, len, lim, &m, &e);

	ok(rc != 0, "%s: refused", what);
	is_string(err_class_name(ERR_INPUT), err_class_name(e.cls), "%s: bad input", what);
	if (key != NULL)
		ok(strstr(e.msg, key) != NULL, "%s: message names %s (\"%s\")", what, key, e.msg);
	if (rc == 0)
		mime_free(m);
}

int
main(void)
{
	struct config cfg;
	struct limits lim;
	size_t i, len, clen;
	unsigned char *msg, *conv;

	config_defaults(&cfg);
	deflim = cfg.limits;
	plan_lazy();
	mime_init();

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		msg = read_data(cases[i].file, &len);
		run_case(&cases[i], msg, len, "as is");
		conv = convert(msg, len, false, &clen);
		if (clen != len)
			run_case(&cases[i], conv, clen, "CRLF -> LF");
		free(conv);
		conv = convert(msg, len, true, &clen);
		if (memchr(msg, '\r', len) == NULL)
			run_case(&cases[i], conv, clen, "LF -> CRLF");
		free(conv);
		free(msg);
	}

	/* Fixture sanity: the quirks are really in the bytes. */
	msg = read_data("mailru.eml", &len);
	ok(strstr((char *)msg, "------=_NextPart_1674691838991563614--") == NULL,
	   "mailru.eml has no closing boundary");
	ok(strstr((char *)msg, "Subject: Report\r\n Domain:") != NULL, "mailru.eml subject folded per token, CRLF");
	free(msg);
	msg = read_data("google.eml", &len);
	ok(strstr((char *)msg, "application/tlsrpt+gzip; \n\tname=") != NULL,
	   "google.eml has \"; \" before the folded name=");
	free(msg);
	msg = read_data("mbox-from.eml", &len);
	ok(strncmp((char *)msg, "From ", 5) == 0, "mbox-from.eml starts with a From line");
	free(msg);

	/* The From line and the folded sender header. */
	{
		struct mail *m = NULL;
		struct error e = {0};
		unsigned char *msg2;
		size_t len2;
		msg = read_data("mbox-from.eml", &len);
		if (mime_parse(msg, len, &deflim, &m, &e) == 0) {
			ok(m->from != NULL && strstr(m->from, "tlsrpt-feedback@socketlabs.example.net") != NULL,
			   "mbox-from: From header, not the mbox line (%s)", m->from ? m->from : "NULL");
			mime_free(m);
		} else {
			ok(false, "mbox-from: parses (%s)", e.msg);
		}
		/* A display name or comment is left out: the sender is the address. */
		msg2 = read_data("cron.eml", &len2);
		m = NULL;
		if (mime_parse(msg2, len2, &deflim, &m, &e) == 0) {
			is_string("root@host.example.com", m->from, "cron: From comment left out");
			mime_free(m);
		} else {
			ok(false, "cron: parses (%s)", e.msg);
		}
		free(msg2);
		msg2 = read_data("forwarded.eml", &len2);
		m = NULL;
		if (mime_parse(msg2, len2, &deflim, &m, &e) == 0) {
			is_string("postmaster@example.com", m->from, "forwarded: From display name left out");
			mime_free(m);
		} else {
			ok(false, "forwarded: parses (%s)", e.msg);
		}
		free(msg2);
		free(msg);
	}

	/* A DMARC report is no TLS report: at most its gzip part is a candidate. */
	{
		struct mail *m = NULL;
		struct error e = {0};
		msg = read_data("dmarc.eml", &len);
		if (ok(mime_parse(msg, len, &deflim, &m, &e) == 0, "dmarc.eml: parses")) {
			ok(m->n_parts <= 1, "dmarc.eml: at most 1 candidate (%zu)", m->n_parts);
			is_string("17246583212345678901@example.net", m->message_id, "dmarc.eml: message_id");
			is_string(NULL, m->report_domain, "dmarc.eml: no TLS-Report-Domain");
			mime_free(m);
		}
		free(msg);
	}

	/* 8-bit junk in headers still comes out as valid UTF-8. */
	{
		static const char raw8[] =
			"From: reports@sender.example.net\n"
			"Subject: caf\xe9 \xff\xfe report\n"
			"TLS-Report-Domain: exa\xc3mple.com\n"
			"Message-ID: <8bit-1@sender.example.net>\n"
			"MIME-Version: 1.0\n"
			"Content-Type: text/plain\n"
			"\n"
			"nothing here\n";
		struct mail *m = NULL;
		struct error e = {0};

		if (ok(mime_parse((const unsigned char *)raw8, sizeof raw8 - 1, &deflim, &m, &e) == 0,
		       "8-bit headers: parses")) {
			ok(m->subject != NULL && utf8_valid((const unsigned char *)m->subject, strlen(m->subject)),
			   "8-bit headers: subject is valid UTF-8");
			ok(m->subject != NULL && strncmp(m->subject, "caf", 3) == 0 && strstr(m->subject, "report") != NULL,
			   "8-bit headers: subject text kept around the junk");
			ok(m->report_domain != NULL &&
			   utf8_valid((const unsigned char *)m->report_domain, strlen(m->report_domain)),
			   "8-bit headers: report_domain is valid UTF-8");
			is_int(0, (long long)m->n_parts, "8-bit headers: no candidate");
			mime_free(m);
		}
	}

	/* Limits and non-messages. */
	lim = deflim;
	lim.max_report_parts = 1;
	msg = read_data("two-reports.eml", &len);
	expect_refused(msg, len, &lim, "max_report_parts", "two candidates, max_report_parts 1");
	lim.max_report_parts = 2;
	{
		struct mail *m = NULL;
		struct error e = {0};
		ok(mime_parse(msg, len, &lim, &m, &e) == 0 && m->n_parts == 2,
		   "two candidates, max_report_parts 2: accepted");
		if (m != NULL)
			mime_free(m);
	}
	free(msg);
	msg = read_data("google-sts.json.gz", &len);
	expect_refused(msg, len, &deflim, NULL, "gzip bytes are not a message");
	free(msg);
	expect_refused((const unsigned char *)"", 0, &deflim, NULL, "empty input");

	/* GMime's warnings: in words, kept on the mail, used only to explain a rejection. */
	{
		const char *seen[18] = {0};
		bool all_named = true, distinct = true;
		struct mail *m = NULL;
		struct error e = {0};
		struct delivery *d = NULL;
		/* multipart, its only part text, no closing boundary: nothing to store */
		static const char truncated_text[] =
			"From: a@example.org\nSubject: t\nMIME-Version: 1.0\n"
			"Content-Type: multipart/mixed; boundary=\"b1\"\n\n"
			"--b1\nContent-Type: text/plain\n\nhello\n";
		const char *want = "no TLS-RPT report found in the message (GMime: the message is truncated";

		/* GMimeParserWarning codes 1..17 (gmime-parser-options.h, GMime 3.2) */
		for (int c = 1; c <= 17; c++) {
			seen[c] = mime_warning_text(c);
			if (seen[c] == NULL || strstr(seen[c], "warning") != NULL)
				all_named = false;
			for (int k = 1; k < c; k++)
				if (seen[c] && seen[k] && strcmp(seen[c], seen[k]) == 0)
					distinct = false;
		}
		ok(all_named, "every GMime parser warning code 1..17 has words");
		ok(distinct, "the words differ from code to code");
		ok(mime_warning_text(0) == NULL && mime_warning_text(999) == NULL, "unknown codes: NULL");
		/* the "warning 7" -v printed for the Mail.ru sample */
		ok(mime_warning_text(7) != NULL && strstr(mime_warning_text(7), "truncated") != NULL,
		   "code 7 (GMIME_WARN_TRUNCATED_MESSAGE) reads \"truncated\"");

		msg = read_data("mailru.eml", &len);
		if (ok(mime_parse(msg, len, &deflim, &m, &e) == 0, "mailru.eml parses")) {
			ok(m->parser_warnings != NULL && strstr(m->parser_warnings, "truncated") != NULL,
			   "mailru.eml: the missing closing boundary is kept as words (%s)",
			   m->parser_warnings ? m->parser_warnings : "NULL");
			mime_free(m);
		}
		ok(ingest_bytes(msg, len, "mailru.eml", &deflim, &d, &e) == 0 && d->n_reports == 1 &&
		   d->n_rejections == 0, "mailru.eml: stored, the warning explains nothing and shows nowhere");
		delivery_free(d);
		d = NULL;
		free(msg);

		msg = read_data("google.eml", &len);
		m = NULL;
		ok(mime_parse(msg, len, &deflim, &m, &e) == 0 && m->parser_warnings == NULL,
		   "google.eml: no parser warning");
		mime_free(m);
		free(msg);

		if (ok(ingest_bytes((const unsigned char *)truncated_text, sizeof truncated_text - 1, "t.eml",
				    &deflim, &d, &e) == 0 && d->n_rejections == 1,
		       "truncated multipart without a report: one rejection")) {
			ok(strncmp(d->rejections[0].reason, want, strlen(want)) == 0,
			   "its reason says, in words, what GMime saw (%s)", d->rejections[0].reason);
			ok(strstr(d->rejections[0].reason, "warning 7") == NULL, "no bare code in the reason");
		}
		delivery_free(d);
	}

	mime_shutdown();
	config_free(&cfg);
	return 0;
}
