/* ingest.c - one input to its reports and rejections: sniff, MIME walk,
 * inflate, report model. Whatever cannot become a report is kept, with a
 * reason, for tlsrpt.rejected. */
#include "autoconf.h"

#include <ctype.h>
#include <glib.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"
#include "ingest.h"
#include "mime.h"
#include "util.h"

enum input_kind
ingest_sniff(const unsigned char *data, size_t len)
{
	size_t i;

	if (is_gzip(data, len))
		return INPUT_GZIP;
	i = skip_bom_space(data, len);
	if (i < len && (data[i] == '{' || data[i] == '['))
		return INPUT_JSON;
	return INPUT_MAIL;
}

/* The dedup key of a piece of the input: the input's own digest, the piece's
 * and its position (the whole input: just its SHA-256). A redelivery (the same
 * bytes) gives the same keys; the same broken attachment in another message
 * does not, so each message keeps its row with its own sender and Message-ID. */
static void
piece_digest(const struct delivery *d, const unsigned char *raw, size_t len, char out[65])
{
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	gchar *piece = g_compute_checksum_for_data(G_CHECKSUM_SHA256, raw, len);
	char pos[32];

	if (strcmp(piece, d->input_digest) == 0) {
		/* the whole input: its plain SHA-256, which sha256sum finds again */
		snprintf(out, 65, "%s", piece);
		g_checksum_free(ck);
		g_free(piece);
		return;
	}
	snprintf(pos, sizeof pos, ":%zu:", d->n_reports + d->n_rejections);
	g_checksum_update(ck, (const guchar *)d->input_digest, (gssize)strlen(d->input_digest));
	g_checksum_update(ck, (const guchar *)pos, (gssize)strlen(pos));
	g_checksum_update(ck, (const guchar *)piece, (gssize)strlen(piece));
	snprintf(out, 65, "%s", g_checksum_get_string(ck));
	g_checksum_free(ck);
	g_free(piece);
}

/* Of the message without a leading mbox "From " line: the same message keeps
 * its key whether it comes from an mbox, a Maildir or a pipe(8) with flags=F. */
static void
set_input_digest(struct delivery *d, const unsigned char *data, size_t len)
{
	size_t from = mbox_from_line_length(data, len);
	gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data + from, len - from);

	snprintf(d->input_digest, sizeof d->input_digest, "%s", hex);
	g_free(hex);
}

static void
add_rejection(struct delivery *d, const struct limits *lim, const char *reason,
	      const char *filename, const unsigned char *raw, size_t len)
{
	struct rejection *r;
	size_t keep;
	char digest[65];

	piece_digest(d, raw, len, digest);
	keep = len < lim->max_rejected_raw ? len : lim->max_rejected_raw;
	if (d->whole != NULL) { /* a part of a mail: the message is what can be read again, once */
		raw = d->whole;
		len = d->whole_len;
		keep = d->whole_kept ? 0 : len < lim->max_rejected_raw ? len : lim->max_rejected_raw;
		d->whole_kept = true;
	}

	d->rejections = xreallocarray(d->rejections, d->n_rejections + 1, sizeof *d->rejections);
	r = &d->rejections[d->n_rejections++];
	memset(r, 0, sizeof *r);
	r->reason = text_clean(reason, strlen(reason), NULL);
	r->filename = filename ? xstrdup(filename) : NULL;
	r->raw = xmalloc(keep + 1);
	if (keep)
		memcpy(r->raw, raw, keep);
	r->raw_len = keep;
	r->original_len = len;
	memcpy(r->digest, digest, sizeof r->digest);
}

static void
add_report(struct delivery *d, struct report *rep, const char *filename)
{
	struct found_report *fr;
	char digest[65];

	piece_digest(d, (const unsigned char *)rep->raw_json, strlen(rep->raw_json), digest);
	d->reports = xreallocarray(d->reports, d->n_reports + 1, sizeof *d->reports);
	fr = &d->reports[d->n_reports++];
	fr->report = rep;
	fr->filename = filename ? xstrdup(filename) : NULL;
	memcpy(fr->digest, digest, sizeof fr->digest);
}

/* One report candidate: maybe compressed, then JSON. */
static int
take_part(struct delivery *d, const unsigned char *data, size_t len, const char *filename,
	  const char *fallback_domain, const struct limits *lim, struct error *e)
{
	struct error perr = {ERR_NONE, ""};
	struct buf plain = {0};
	const unsigned char *json = data;
	size_t json_len = len, i, values, rows;
	struct report *rep;

	if (len == 0) {
		add_rejection(d, lim, "empty report part", filename, data, len);
		return 0;
	}
	if (len >= 4 && memcmp(data, "PK\3\4", 4) == 0) {
		add_rejection(d, lim, "zip archive: only gzip and plain JSON reports are read", filename, data, len);
		return 0;
	}
	if (parse_clock_over()) {
		error_set(&perr, ERR_INPUT, "the message takes more than max_parse_time (%u s) to parse",
			  lim->max_parse_time);
		goto refused;
	}
	if (ingest_sniff(data, len) != INPUT_JSON) {
		/* this part may inflate to what the message has left, at most */
		struct limits part = *lim;
		bool message_cap = lim->max_message_inflated - d->inflated < lim->max_inflated_size;

		if (message_cap)
			part.max_inflated_size = lim->max_message_inflated - d->inflated;
		if (inflate_gzip(data, len, &part, &plain, NULL, &perr) < 0) {
			if (message_cap && perr.cls == ERR_INPUT && strncmp(perr.msg, "inflated size over", 18) == 0) {
				error_clear(&perr);
				error_set(&perr, ERR_INPUT, "the message's gzip parts inflate to more than "
					  "max_message_inflated (%zu bytes)", lim->max_message_inflated);
			}
			goto refused;
		}
		d->inflated += plain.len;
		json = plain.data;
		json_len = plain.len;
	}
	i = skip_bom_space(json, json_len);
	if (i < json_len && json[i] == '<') {
		add_rejection(d, lim, "XML, not a TLS-RPT report (a DMARC report?)", filename, data, len);
		buf_free(&plain);
		return 0;
	}
	values = report_count_values((const char *)json + i, json_len - i);
	/* over max_json_values, report_parse refuses the one report, with that reason */
	if (values <= lim->max_json_values && values > lim->max_message_json_values - d->json_values) {
		error_set(&perr, ERR_INPUT, "the message's reports hold more than max_message_json_values (%zu) "
			  "JSON values, an object counting as 8", lim->max_message_json_values);
		goto refused;
	}
	d->json_values += values;
	if (report_parse((const char *)json + i, json_len - i, fallback_domain, lim, &rep, &perr) < 0)
		goto refused;
	buf_free(&plain);
	rows = rep->n_policies + report_failure_rows(rep);
	if (rows > lim->max_message_rows - d->rows) {
		report_free(rep);
		error_set(&perr, ERR_INPUT, "the message's reports hold more than max_message_rows (%zu) "
			  "policies and failure-details", lim->max_message_rows);
		goto refused;
	}
	d->rows += rows;
	add_report(d, rep, filename);
	return 0;
refused:
	buf_free(&plain);
	if (perr.cls == ERR_TEMP) {
		error_set(e, ERR_TEMP, "%s", perr.msg);
		return -1;
	}
	add_rejection(d, lim, perr.msg, filename, data, len);
	return 0;
}

/* with our_domains set, a report for any other policy domain is kept aside */
static void
keep_our_domains(struct delivery *d, const struct limits *lim)
{
	size_t kept = 0;

	if (lim->trust.our_domains == NULL)
		return;
	for (size_t i = 0; i < d->n_reports; i++) {
		struct found_report *fr = &d->reports[i];
		const struct report *r = fr->report;
		const char *foreign = NULL;
		bool any = false;

		for (size_t j = 0; j < r->n_policies && foreign == NULL; j++) {
			any = true;
			if (!origin_domain_in_list(r->policies[j].policy_domain, lim->trust.our_domains))
				foreign = r->policies[j].policy_domain ? r->policies[j].policy_domain : "(none)";
		}
		if (!any && !origin_domain_in_list(d->report_domain, lim->trust.our_domains))
			foreign = d->report_domain ? d->report_domain : "(none)";
		if (foreign == NULL) {
			d->reports[kept++] = *fr;
			continue;
		}
		char *reason = xasprintf("policy domain %s is not one of our_domains", foreign);

		add_rejection(d, lim, reason, fr->filename, (const unsigned char *)r->raw_json,
			      strlen(r->raw_json));
		free(reason);
		report_free(fr->report);
		free(fr->filename);
	}
	d->n_reports = kept;
}

/* A mail's origin (origin.h); with dkim_policy = require, no aligned pass
 * turns the whole message into one rejection. */
static int
check_origin(struct delivery *d, const unsigned char *data, size_t len, const struct mail *m,
	     const struct limits *lim, struct error *e)
{
	const struct origin *o = &d->origin;
	char *reason;

	if (origin_check(data, len, (const char *const *)m->auth_results, m->n_auth_results, d->sender,
			 d->submitter, &lim->trust, &d->origin, e) < 0)
		return -1;
	if (lim->trust.policy != DKIM_POLICY_REQUIRE || d->n_reports == 0 || origin_authenticated(o))
		return 0;
	if (lim->trust.mode == TRUST_DKIM_VERIFY && o->dkim_result && strcmp(o->dkim_result, "temperror") == 0) {
		error_set(e, ERR_TEMP, "DKIM key not available now: %s", o->detail ? o->detail : "");
		return -1;
	}
	reason = xasprintf("not authenticated (dkim_policy = require): %s",
			   lim->trust.mode == TRUST_NONE ? "trust = none checks nothing"
			   : o->detail ? o->detail : "no DKIM result");
	add_rejection(d, lim, reason, NULL, data, len);
	free(reason);
	for (size_t i = 0; i < d->n_reports; i++) {
		report_free(d->reports[i].report);
		free(d->reports[i].filename);
	}
	d->n_reports = 0;
	return 0;
}

/* GMime's warnings about the message explain why it or a part of it was
 * rejected; they are added to those reasons only. */
static void
explain_rejections(struct delivery *d, size_t from, const char *warnings)
{
	for (size_t i = from; i < d->n_rejections; i++) {
		struct rejection *r = &d->rejections[i];
		size_t n = strlen(r->reason) + strlen(warnings) + sizeof " (GMime: )";
		char *reason = xmalloc(n);

		snprintf(reason, n, "%s (GMime: %s)", r->reason, warnings);
		free(r->reason);
		r->reason = reason;
	}
}

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int
ingest_bytes(const unsigned char *data, size_t len, const char *source,
	     const struct limits *lim, struct delivery **out, struct error *e)
{
	struct error perr = {ERR_NONE, ""};
	struct delivery *d = xcalloc(1, sizeof *d);
	struct mail *m;
	int rc = 0;

	*out = d;
	parse_clock_start(lim->max_parse_time);
	d->source = xstrdup(source ? source : "stdin");
	d->kind = ingest_sniff(data, len);
	set_input_digest(d, data, len);
	if (len == 0) {
		add_rejection(d, lim, "empty input", NULL, data, len);
		return 0;
	}
	if (len > lim->max_message_size) {
		delivery_free(d);
		return ingest_oversized(data, len, len, source, lim, out);
	}
	if (d->kind != INPUT_MAIL) {
		const char *base = strrchr(d->source, '/');

		rc = take_part(d, data, len, base ? base + 1 : d->source, NULL, lim, e);
		if (rc == 0)
			keep_our_domains(d, lim);
		return rc;
	}
	if (mime_parse(data, len, lim, &m, &perr) < 0) {
		/* whose it was: the header fields alone, for the rejected row */
		if ((m = mime_parse_headers(data, len, lim)) != NULL) {
			d->message_id = dup_or_null(m->message_id);
			d->sender = dup_or_null(m->from);
			d->subject = dup_or_null(m->subject);
			d->report_domain = dup_or_null(m->report_domain);
			d->submitter = dup_or_null(m->submitter);
			mime_free(m);
		}
		add_rejection(d, lim, perr.msg, NULL, data, len);
		return 0;
	}
	d->message_id = dup_or_null(m->message_id);
	d->sender = dup_or_null(m->from);
	d->subject = dup_or_null(m->subject);
	d->report_domain = dup_or_null(m->report_domain);
	d->submitter = dup_or_null(m->submitter);
	if (m->n_parts == 0)
		add_rejection(d, lim, "no TLS-RPT report found in the message", NULL, data, len);
	d->whole = data;
	d->whole_len = len;
	for (size_t i = 0; i < m->n_parts && rc == 0; i++)
		rc = take_part(d, m->parts[i].data, m->parts[i].len, m->parts[i].filename,
			       m->report_domain, lim, e);
	d->whole = NULL;
	d->whole_len = 0;
	if (m->parser_warnings != NULL)
		explain_rejections(d, 0, m->parser_warnings);
	if (rc == 0)
		rc = check_origin(d, data, len, m, lim, e);
	mime_free(m);
	if (rc == 0) { /* a report kept aside keeps the mail too: --reprocess reads its headers again */
		d->whole = data;
		d->whole_len = len;
		keep_our_domains(d, lim);
		d->whole = NULL;
		d->whole_len = 0;
	}
	return rc;
}

struct delivery *
delivery_rejected(const unsigned char *head, size_t head_len, size_t total_len, const char *source,
		  const char *reason, const struct limits *lim)
{
	struct delivery *d = xcalloc(1, sizeof *d);

	d->source = xstrdup(source ? source : "stdin");
	d->kind = ingest_sniff(head, head_len);
	set_input_digest(d, head, head_len);
	add_rejection(d, lim, reason, NULL, head, head_len);
	d->rejections[0].original_len = total_len;
	return d;
}

int
ingest_oversized(const unsigned char *head, size_t head_len, size_t total_len,
		 const char *source, const struct limits *lim, struct delivery **out)
{
	char reason[128];

	snprintf(reason, sizeof reason, "input of %zu bytes, over max_message_size (%zu)", total_len,
		 lim->max_message_size);
	*out = delivery_rejected(head, head_len, total_len, source, reason, lim);
	return 0;
}

void
delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n_reports; i++) {
		report_free(d->reports[i].report);
		free(d->reports[i].filename);
	}
	for (size_t i = 0; i < d->n_rejections; i++) {
		free(d->rejections[i].reason);
		free(d->rejections[i].filename);
		free(d->rejections[i].raw);
	}
	free(d->reports);
	free(d->rejections);
	free(d->source);
	free(d->message_id);
	free(d->sender);
	free(d->subject);
	free(d->report_domain);
	free(d->submitter);
	free(d->rejected_reason);
	origin_free(&d->origin);
	free(d);
}

size_t
delivery_policies(const struct delivery *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_reports; i++)
		n += d->reports[i].report->n_policies;
	return n;
}

size_t
delivery_failures(const struct delivery *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_reports; i++)
		n += report_failure_rows(d->reports[i].report);
	return n;
}

static void
add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

void
delivery_print_json(const struct delivery *d, struct buf *out)
{
	const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

	for (size_t i = 0; i < d->n_reports; i++) {
		json_object *o = report_to_json_object(d->reports[i].report);

		add_str(o, "source", d->source);
		add_str(o, "filename", d->reports[i].filename);
		add_str(o, "message_id", d->message_id);
		add_str(o, "report_domain", d->report_domain);
		add_str(o, "submitter", d->submitter);
		add_str(o, "origin_method", d->origin.method);
		add_str(o, "dkim_result", d->origin.dkim_result);
		add_str(o, "dkim_domain", d->origin.dkim_domain);
		json_object_object_add(o, "dkim_aligned", d->origin.aligned == TRI_UNKNOWN ? NULL
				       : json_object_new_boolean(d->origin.aligned == TRI_TRUE));
		buf_puts(out, json_object_to_json_string_ext(o, flags));
		buf_puts(out, "\n");
		json_object_put(o);
	}
	for (size_t i = 0; i < d->n_rejections; i++) {
		const struct rejection *r = &d->rejections[i];
		json_object *o = json_object_new_object();

		add_str(o, "rejected", r->reason);
		add_str(o, "source", d->source);
		add_str(o, "filename", r->filename);
		add_str(o, "message_id", d->message_id);
		json_object_object_add(o, "size", json_object_new_int64((int64_t)r->original_len));
		add_str(o, "digest", r->digest);
		buf_puts(out, json_object_to_json_string_ext(o, flags));
		buf_puts(out, "\n");
		json_object_put(o);
	}
}
