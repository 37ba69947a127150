/* ingest-t.c - ingest_bytes() on every email fixture and on raw .json and
 * .json.gz files: how many reports and rejections, and what a rejection
 * keeps (reason, file name, raw bytes cut at max_rejected_raw, digest). */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ingest.h"
#include "mime.h"
#include "report.h"
#include "status.h"
#include "util.h"

#include "tap.h"

#define MAXR 2

struct case_ {
	const char *file;
	enum input_kind kind;
	size_t n_reports, n_rejections;
	const char *report_ids[MAXR];
	const char *filenames[MAXR]; /* of the reports, in order */
};

#define NOFILE ((const char *)1) /* filename not checked */

static const struct case_ cases[] = {
	{"google.eml", INPUT_MAIL, 1, 0, {"2024-09-03T00:00:00Z_example.com"},
	 {"google.example.net!example.com!1725321600!1725407999!001.json.gz"}},
	{"google-crlf.eml", INPUT_MAIL, 1, 0, {"2024-09-03T00:00:00Z_example.com"},
	 {"google.example.net!example.com!1725321600!1725407999!001.json.gz"}},
	{"microsoft.eml", INPUT_MAIL, 1, 0, {"133198585438131172+example.com"},
	 {"microsoft.example.net!example.com!1673308800!1673395199!133198585438131172.json.gz"}},
	{"mailru.eml", INPUT_MAIL, 1, 0, {"c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org"},
	 {"mail.example.org!example.com!1674604800!1674691200!001.json.gz"}},
	{"tlsrpt-raw.eml", INPUT_MAIL, 1, 0, {"5065427c-23d3-47ca-b6e0-946ea0e8c4be"},
	 {"sender.example.org!example.com!1459468800!1459555199.json"}},
	{"tlsrpt-json.eml", INPUT_MAIL, 1, 0, {"2019-02-14T00:00:00Z_xn--bcher-kva.example"},
	 {"reporter.example.net!xn--bcher-kva.example!1550102400!1550188799.json"}},
	{"octet-stream.eml", INPUT_MAIL, 1, 0, {"2024-09-04T00:00:00Z_example.com"},
	 {"google.example.net!example.com!1725408000!1725494399!001.json.gz"}},
	{"rfc2231.eml", INPUT_MAIL, 1, 0, {"133925885310113267+example.com"}, {"r\xc3\xa9port-2024.json.gz"}},
	{"sniff.eml", INPUT_MAIL, 1, 0, {"2026-05-11T00:00:00Z_example.com"}, {NULL}},
	{"singlepart.eml", INPUT_MAIL, 1, 0, {"1730332800_11732957880687192466"}, {NULL}},
	{"forwarded.eml", INPUT_MAIL, 1, 0, {"2024-09-04T00:00:00Z_example.com"},
	 {"google.example.net!example.com!1725408000!1725494399!001.json.gz"}},
	{"two-reports.eml", INPUT_MAIL, 2, 0, {"2024-09-03T00:00:00Z_example.com", "2024-09-04T00:00:00Z_example.com"},
	 {"first.json.gz", "second.json.gz"}},
	{"two-reports-crlf.eml", INPUT_MAIL, 2, 0,
	 {"2024-09-03T00:00:00Z_example.com", "2024-09-04T00:00:00Z_example.com"}, {"first.json.gz", "second.json.gz"}},
	{"mbox-from.eml", INPUT_MAIL, 1, 0, {"13B8FEDF21D3DBD6997654968E563122"},
	 {"socketlabs.example.net!example.org!1582761600!1582848000.json.gz"}},
	{"fname-mtime.eml", INPUT_MAIL, 1, 0, {"5065427c-23d3-47ca-b6e0-946ea0e8c4be"},
	 {"sender.example.org!example.com!1013662812!1013749130.json.gz"}},
	{"cron.eml", INPUT_MAIL, 0, 1, {NULL}, {NULL}},
	{"dmarc.eml", INPUT_MAIL, 0, 1, {NULL}, {NULL}},
	{"good-and-corrupt.eml", INPUT_MAIL, 1, 1, {"2025-09-20T00:00:00Z_idx1_example.com"}, {"good.json.gz"}},
	{"rfc-example.json", INPUT_JSON, 1, 0, {"5065427c-23d3-47ca-b6e0-946ea0e8c4be"}, {NOFILE}},
	{"google-minified.json", INPUT_JSON, 1, 0, {"2024-09-03T00:00:00Z_example.com"}, {NOFILE}},
	{"ms-tlsa.json", INPUT_JSON, 1, 0, {"133925885310113267+example.com"}, {NOFILE}},
	{"array.json", INPUT_JSON, 0, 1, {NULL}, {NULL}},
	{"not-report.json", INPUT_JSON, 0, 1, {NULL}, {NULL}},
	{"google-sts.json.gz", INPUT_GZIP, 1, 0, {"2024-09-04T00:00:00Z_example.com"}, {NOFILE}},
	{"fname-mtime.json.gz", INPUT_GZIP, 1, 0, {"5065427c-23d3-47ca-b6e0-946ea0e8c4be"}, {NOFILE}},
	{"corrupt.json.gz", INPUT_GZIP, 0, 1, {NULL}, {NULL}},
};

static struct limits deflim;
static char *sums;

/* The digest of a fixture, from tests/data/SHA256SUMS (written by make-fixtures.sh). */
static const char *
digest_of(const char *name)
{
	static char hex[65];
	const char *line = sums;
	size_t nlen = strlen(name);

	while (line != NULL && *line != '\0') {
		const char *eol = strchr(line, '\n');
		size_t llen = eol ? (size_t)(eol - line) : strlen(line);
		if (llen == 64 + 2 + nlen && memcmp(line + 66, name, nlen) == 0) {
			memcpy(hex, line, 64);
			hex[64] = '\0';
			return hex;
		}
		line = eol ? eol + 1 : NULL;
	}
	bail("no digest for %s in SHA256SUMS", name);
}

static bool
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

static const char *
kind_name(enum input_kind k)
{
	switch (k) {
	case INPUT_MAIL: return "mail";
	case INPUT_JSON: return "json";
	case INPUT_GZIP: return "gzip";
	}
	return "?";
}

static struct delivery *
ingest(const unsigned char *data, size_t len, const char *source, const struct limits *lim, const char *what)
{
	struct delivery *d = NULL;
	struct error e = {0};
	int rc = ingest_bytes(data, len, source, lim, &d, &e);

	if (!ok(rc == 0 && d != NULL, "%s: ingest_bytes succeeds", what)) {
		diag("rc %d, %s: %s", rc, err_class_name(e.cls), e.msg);
		if (rc == 0 && d != NULL)
			delivery_free(d);
		return NULL;
	}
	return d;
}

static void
check_rejections(const struct delivery *d, const char *what)
{
	size_t i;

	for (i = 0; i < d->n_rejections; i++) {
		const struct rejection *r = &d->rejections[i];
		ok(r->reason != NULL && r->reason[0] != '\0', "%s: rejection %zu has a reason (%s)", what, i,
		   r->reason ? r->reason : "NULL");
		ok(is_hex64(r->digest), "%s: rejection %zu digest is 64 lower-case hex (%s)", what, i, r->digest);
		ok(r->raw_len <= r->original_len && r->raw_len <= deflim.max_rejected_raw,
		   "%s: rejection %zu raw_len %zu <= original_len %zu", what, i, r->raw_len, r->original_len);
		ok(r->raw_len == 0 || r->raw != NULL, "%s: rejection %zu raw bytes kept", what, i);
	}
}

static void
run_case(const struct case_ *c)
{
	size_t len, i;
	unsigned char *data = read_data(c->file, &len);
	struct delivery *d;

	is_string(kind_name(c->kind), kind_name(ingest_sniff(data, len)), "%s: sniffed kind", c->file);
	d = ingest(data, len, c->file, &deflim, c->file);
	if (d == NULL) {
		free(data);
		return;
	}
	is_string(kind_name(c->kind), kind_name(d->kind), "%s: delivery kind", c->file);
	is_string(c->file, d->source, "%s: source kept", c->file);
	is_int((long long)c->n_reports, (long long)d->n_reports, "%s: reports", c->file);
	if (!is_int((long long)c->n_rejections, (long long)d->n_rejections, "%s: rejections", c->file)) {
		for (i = 0; i < d->n_rejections; i++)
			diag("rejection: %s", d->rejections[i].reason);
	}
	for (i = 0; i < c->n_reports && i < d->n_reports && i < MAXR; i++) {
		is_string(c->report_ids[i], d->reports[i].report ? d->reports[i].report->report_id : NULL,
			  "%s: report %zu report-id", c->file, i);
		if (c->filenames[i] != NOFILE)
			is_string(c->filenames[i], d->reports[i].filename, "%s: report %zu file name", c->file, i);
	}
	check_rejections(d, c->file);
	if (c->kind != INPUT_MAIL)
		is_string(NULL, d->message_id, "%s: no message_id outside mail", c->file);
	delivery_free(d);
	free(data);
}

int
main(void)
{
	struct config cfg;
	struct limits lim;
	struct delivery *d;
	size_t i, len, glen;
	unsigned char *data, *gz;

	config_defaults(&cfg);
	deflim = cfg.limits;
	sums = (char *)read_data("SHA256SUMS", &len);
	plan_lazy();
	mime_init();

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i]);

	/* Headers of a mail delivery. */
	data = read_data("mailru.eml", &len);
	if ((d = ingest(data, len, "stdin", &deflim, "mailru headers")) != NULL) {
		is_string("c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org", d->message_id, "mailru: message_id");
		is_string("example.com", d->report_domain, "mailru: report_domain");
		is_string("mail.example.org", d->submitter, "mailru: submitter");
		is_string("Report Domain: example.com Submitter: mail.example.org Report-ID: "
			  "<c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.example.org>", d->subject, "mailru: subject unfolded");
		ok(d->sender != NULL && strstr(d->sender, "noreply-smtp-tls-reporting@corp.mail.example.org") != NULL,
		   "mailru: sender (%s)", d->sender ? d->sender : "NULL");
		is_string("stdin", d->source, "mailru: source");
		if (d->n_reports == 1) {
			const struct report *r = d->reports[0].report;
			is_string("2023-01-26 00:00:00+00", r->date_end, "mailru: report normalized (date_end)");
			is_int(1, (long long)delivery_policies(d), "mailru: delivery_policies");
			is_int(2, (long long)delivery_failures(d), "mailru: delivery_failures");
		}
		delivery_free(d);
	}
	free(data);

	/* Counts over several reports. */
	data = read_data("two-reports.eml", &len);
	if ((d = ingest(data, len, "two", &deflim, "two-reports counts")) != NULL) {
		is_int(2, (long long)delivery_policies(d), "two-reports: 1 + 1 policies");
		is_int(1, (long long)delivery_failures(d), "two-reports: 0 + 1 failure-details");
		delivery_free(d);
	}
	free(data);
	data = read_data("rfc-example.json", &len);
	if ((d = ingest(data, len, "rfc", &deflim, "rfc counts")) != NULL) {
		is_int(1, (long long)delivery_policies(d), "rfc-example.json: 1 policy");
		is_int(3, (long long)delivery_failures(d), "rfc-example.json: 3 failure-details");
		delivery_free(d);
	}
	free(data);

	/* Missing policy-domain is filled from TLS-Report-Domain. */
	data = read_data("good-and-corrupt.eml", &len);
	gz = read_data("corrupt.json.gz", &glen);
	if ((d = ingest(data, len, "gc", &deflim, "good-and-corrupt")) != NULL) {
		if (d->n_reports == 1 && d->reports[0].report->n_policies == 1)
			is_string("example.com", d->reports[0].report->policies[0].policy_domain,
				  "good-and-corrupt: policy-domain from TLS-Report-Domain");
		else
			ok(false, "good-and-corrupt: one report with one policy");
		if (d->n_rejections == 1) {
			const struct rejection *r = &d->rejections[0];
			is_string("corrupt.json.gz", r->filename, "good-and-corrupt: rejection file name");
			/* the message is what a rerun can read again (issue 10 section 6) */
			is_int((long long)len, (long long)r->original_len, "good-and-corrupt: original_len = the message's");
			ok(r->raw_len == len && memcmp(r->raw, data, len) == 0,
			   "good-and-corrupt: raw = the whole message, not the decoded attachment");
			ok(glen > 0 && gz != NULL, "good-and-corrupt: the attachment is read (%zu bytes)", glen);
			is_string(digest_of("good-and-corrupt.eml"), d->input_digest, "good-and-corrupt: input digest");
			ok(strcmp(r->digest, d->input_digest) != 0, "good-and-corrupt: the part has its own key");
			/* the same broken attachment in another message is another row */
			{
				struct delivery *d2;
				unsigned char *other = xmalloc(len + 32);
				size_t olen = (size_t)snprintf((char *)other, 32, "X-Other: 1\n");

				memcpy(other + olen, data, len);
				olen += len;
				if ((d2 = ingest(other, olen, "gc2", &deflim, "good-and-corrupt, other message")) != NULL) {
					ok(d2->n_rejections == 1 && strcmp(d2->rejections[0].digest, r->digest) != 0,
					   "same attachment in another message: another key");
					delivery_free(d2);
				}
				free(other);
			}
			/* a redelivery is the same key */
			{
				struct delivery *d3 = ingest(data, len, "gc", &deflim, "good-and-corrupt again");

				if (d3 != NULL) {
					ok(d3->n_rejections == 1 && strcmp(d3->rejections[0].digest, r->digest) == 0,
					   "same message again: the same key");
					delivery_free(d3);
				}
			}
		} else {
			skip_block(7, "no single rejection");
		}
		delivery_free(d);
	}
	free(gz);
	free(data);

	/* Rejected raw: whole when small, cut at max_rejected_raw, digest of all. */
	data = read_data("cron.eml", &len);
	if ((d = ingest(data, len, "cron", &deflim, "cron whole")) != NULL) {
		is_int(0, (long long)d->n_reports, "cron: no report");
		if (is_int(1, (long long)d->n_rejections, "cron: one rejection")) {
			const struct rejection *r = &d->rejections[0];
			is_int((long long)len, (long long)r->original_len, "cron: original_len = message");
			ok(r->raw_len == len && memcmp(r->raw, data, len) == 0, "cron: raw = the whole message");
			is_string(digest_of("cron.eml"), d->input_digest, "cron: input digest of the message");
		}
		is_string("20240913062501.5C7A21F4@host.example.com", d->message_id, "cron: message_id kept");
		delivery_free(d);
	}
	lim = deflim;
	lim.max_rejected_raw = 100;
	if ((d = ingest(data, len, "cron", &lim, "cron cut")) != NULL) {
		if (is_int(1, (long long)d->n_rejections, "cron cut: one rejection")) {
			const struct rejection *r = &d->rejections[0];
			is_int(100, (long long)r->raw_len, "cron cut: raw_len = max_rejected_raw");
			is_int((long long)len, (long long)r->original_len, "cron cut: original_len kept");
			ok(r->raw != NULL && memcmp(r->raw, data, 100) == 0, "cron cut: raw = first 100 bytes");
			is_string(digest_of("cron.eml"), d->input_digest, "cron cut: input digest of all bytes");
		}
		delivery_free(d);
	}
	lim.max_rejected_raw = 0;
	if ((d = ingest(data, len, "cron", &lim, "cron nothing kept")) != NULL) {
		if (is_int(1, (long long)d->n_rejections, "cron, max_rejected_raw 0: one rejection")) {
			is_int(0, (long long)d->rejections[0].raw_len, "cron, max_rejected_raw 0: raw_len 0");
			is_string(digest_of("cron.eml"), d->input_digest, "cron, max_rejected_raw 0: input digest");
		}
		delivery_free(d);
	}
	free(data);

	/* Raw JSON that is not a report: the whole file is the rejected raw. */
	data = read_data("array.json", &len);
	if ((d = ingest(data, len, "array.json", &deflim, "array raw")) != NULL) {
		if (is_int(1, (long long)d->n_rejections, "array.json: one rejection")) {
			is_string(digest_of("array.json"), d->input_digest, "array.json: input digest of the file");
			ok(d->rejections[0].raw_len == len && memcmp(d->rejections[0].raw, data, len) == 0,
			   "array.json: raw = the file");
		}
		delivery_free(d);
	}
	free(data);
	data = read_data("corrupt.json.gz", &len);
	if ((d = ingest(data, len, "corrupt.json.gz", &deflim, "corrupt raw")) != NULL) {
		if (is_int(1, (long long)d->n_rejections, "corrupt.json.gz: one rejection"))
			is_string(digest_of("corrupt.json.gz"), d->input_digest, "corrupt.json.gz: input digest");
		delivery_free(d);
	}
	free(data);

	/* Over max_report_parts: nothing is lost, the mail is a rejection. */
	data = read_data("two-reports.eml", &len);
	lim = deflim;
	lim.max_report_parts = 1;
	if ((d = ingest(data, len, "two", &lim, "two-reports, max_report_parts 1")) != NULL) {
		is_int(0, (long long)d->n_reports, "max_report_parts 1: no report");
		is_int(1, (long long)d->n_rejections, "max_report_parts 1: one rejection");
		check_rejections(d, "max_report_parts 1");
		delivery_free(d);
	}
	free(data);

	/* A limit hit inside an attachment rejects that attachment, naming the limit. */
	{
		static const struct {
			const char *file, *key;
			size_t value;
		} lims[] = {
			{"google.eml", "max_inflated_size", 200},  /* the report inflates to 397 bytes */
			{"google-sts.json.gz", "max_json_size", 100}, /* 688 bytes of JSON */
			{"google-sts.json.gz", "max_inflated_size", 200},
			{"rfc-example.json", "max_json_size", 100},
		};
		for (i = 0; i < sizeof lims / sizeof lims[0]; i++) {
			char what[120];
			snprintf(what, sizeof what, "%s, %s %zu", lims[i].file, lims[i].key, lims[i].value);
			lim = deflim;
			if (strcmp(lims[i].key, "max_inflated_size") == 0)
				lim.max_inflated_size = lims[i].value;
			else
				lim.max_json_size = lims[i].value;
			data = read_data(lims[i].file, &len);
			if ((d = ingest(data, len, lims[i].file, &lim, what)) != NULL) {
				is_int(0, (long long)d->n_reports, "%s: no report", what);
				if (is_int(1, (long long)d->n_rejections, "%s: one rejection", what))
					ok(d->rejections[0].reason != NULL && strstr(d->rejections[0].reason, lims[i].key) != NULL,
					   "%s: reason names the limit (%s)", what,
					   d->rejections[0].reason ? d->rejections[0].reason : "NULL");
				delivery_free(d);
			}
			free(data);
		}
	}

	/* The same report twice in one file is still two reports. */
	{
		size_t a;
		unsigned char *gz1 = read_data("google-sts.json.gz", &a);
		unsigned char *two = malloc(2 * a);
		if (two == NULL)
			bail("out of memory");
		memcpy(two, gz1, a);
		memcpy(two + a, gz1, a);
		if ((d = ingest(two, 2 * a, "twice.json.gz", &deflim, "two gzip members")) != NULL) {
			/* Concatenated members form one byte stream: two JSON texts in a row
			 * are not one report, so this is a rejection, not a crash. */
			ok(d->n_reports + d->n_rejections >= 1, "two gzip members: something recorded (%zu reports, %zu rejections)",
			   d->n_reports, d->n_rejections);
			check_rejections(d, "two gzip members");
			delivery_free(d);
		}
		free(two);
		free(gz1);
	}

	/* Empty input. */
	if ((d = ingest((const unsigned char *)"", 0, "empty", &deflim, "empty input")) != NULL) {
		is_int(0, (long long)d->n_reports, "empty input: no report");
		is_int(1, (long long)d->n_rejections, "empty input: one rejection");
		check_rejections(d, "empty input");
		delivery_free(d);
	}

	mime_shutdown();
	free(sums);
	config_free(&cfg);
	return 0;
}
