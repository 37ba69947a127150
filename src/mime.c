/* mime.c - the message's MIME tree, walked whole, to the parts that hold reports.
 * A part counts when its type says so, when its file name says so, or when
 * its decoded content looks like gzip or a JSON object: senders label reports
 * in many ways. */
#include "autoconf.h"

#include <ctype.h>
#include <gmime/gmime.h>
#include <string.h>

#include "log.h"
#include "mime.h"
#include "mimescan.h"
#include "util.h"

static void
glib_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
	(void)data;
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		log_error("%s: %s", domain ? domain : "glib", message);
	else
		log_debug("%s: %s", domain ? domain : "glib", message);
}

static GLogWriterOutput
glib_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
	const char *domain = NULL, *message = "";

	for (gsize i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
			domain = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
			message = fields[i].value;
	}
	glib_log_handler(domain, level, message, data);
	return G_LOG_WRITER_HANDLED;
}

static bool mime_quiet, mime_ready;

void
mime_quiet_glib(void)
{
	/* GLib must never write to stderr before our one status line. */
	if (mime_quiet)
		return;
	mime_quiet = true;
	g_log_set_default_handler(glib_log_handler, NULL);
	g_log_set_writer_func(glib_log_writer, NULL, NULL);
}

void
mime_init(void)
{
	mime_quiet_glib();
	if (!mime_ready)
		g_mime_init();
	mime_ready = true;
}

void
mime_shutdown(void)
{
	if (mime_ready)
		g_mime_shutdown();
	mime_ready = false;
}

static char *
clean_header(const char *v)
{
	char *c, *p;

	if (v == NULL)
		return NULL;
	while (isspace((unsigned char)*v))
		v++;
	c = text_clean(v, strlen(v), NULL);
	for (p = c + strlen(c); p > c && isspace((unsigned char)p[-1]);)
		*--p = '\0';
	return c;
}

/* The address of a From header with one mailbox, from GMime's parsed list;
 * the header text otherwise. */
static char *
sender_address(GMimeMessage *message)
{
	InternetAddressList *list = g_mime_message_get_from(message); /* borrowed */
	const char *header = g_mime_object_get_header(GMIME_OBJECT(message), "From");
	InternetAddress *a;
	const char *addr;

	if (header == NULL)
		return NULL;
	if (list != NULL && internet_address_list_length(list) == 1 &&
	    INTERNET_ADDRESS_IS_MAILBOX(a = internet_address_list_get_address(list, 0)) &&
	    (addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a))) != NULL && *addr)
		return clean_header(addr);
	return clean_header(header);
}

#define MAX_AUTH_RESULTS 64 /* our MTA's is at the top; more below are other hosts' */

static void
collect_auth_results(struct mail *m, GMimeMessage *message, gint64 header_end)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(GMIME_OBJECT(message));
	int n = list ? g_mime_header_list_get_count(list) : 0;

	for (int i = 0; i < n && m->n_auth_results < MAX_AUTH_RESULTS; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *name = h ? g_mime_header_get_name(h) : NULL, *raw;

		if (header_end >= 0 && g_mime_header_get_offset(h) >= header_end)
			break;
		if (name == NULL || g_ascii_strcasecmp(name, "Authentication-Results") != 0)
			continue;
		raw = g_mime_header_get_raw_value(h);
		m->auth_results = xreallocarray(m->auth_results, m->n_auth_results + 1, sizeof *m->auth_results);
		m->auth_results[m->n_auth_results++] = text_clean(raw ? raw : "", raw ? strlen(raw) : 0, NULL);
	}
}

static bool
is_report_type(const char *mime_type)
{
	return strcmp(mime_type, "application/tlsrpt+gzip") == 0 ||
	       strcmp(mime_type, "application/tlsrpt+json") == 0 ||
	       strcmp(mime_type, "application/tlsrpt") == 0;
}

static bool
is_report_name(const char *filename)
{
	return filename != NULL && (ends_with_ci(filename, ".json.gz") || ends_with_ci(filename, ".json") ||
				    ends_with_ci(filename, ".gz"));
}

/* gzip magic, or a JSON object (an array is no report; a text part is not sniffed) */
static bool
looks_like_report(const unsigned char *d, size_t len)
{
	size_t i = skip_bom_space(d, len);

	return (len >= 2 && d[0] == 0x1f && d[1] == 0x8b) || (i < len && d[i] == '{');
}

/* The transfer-decoded content, in a stream that owns it (unref when done). */
static GMimeStream *
decode_part(GMimePart *part, GByteArray **bytes)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *mem;

	if (w == NULL)
		return NULL;
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(w, mem) < 0) {
		g_object_unref(mem);
		return NULL;
	}
	*bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	return mem;
}

const char *
mime_warning_text(int code)
{
	switch ((GMimeParserWarning)code) {
	case GMIME_WARN_DUPLICATED_HEADER: return "a header that may appear once is repeated";
	case GMIME_WARN_DUPLICATED_PARAMETER: return "a header parameter is repeated";
	case GMIME_WARN_UNENCODED_8BIT_HEADER: return "a header holds unencoded 8-bit characters";
	case GMIME_WARN_INVALID_CONTENT_TYPE: return "an invalid Content-Type (read as application/octet-stream)";
	case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE: return "an invalid RFC 2047 encoded word in a header";
	case GMIME_WARN_MALFORMED_MULTIPART: return "a multipart holds no parts";
	case GMIME_WARN_TRUNCATED_MESSAGE: return "the message is truncated (it ends before a closing MIME boundary)";
	case GMIME_WARN_MALFORMED_MESSAGE: return "the message is malformed";
	case GMIME_CRIT_INVALID_HEADER_NAME: return "an invalid header name (what follows may have been skipped)";
	case GMIME_CRIT_CONFLICTING_HEADER: return "conflicting headers";
	case GMIME_CRIT_CONFLICTING_PARAMETER: return "conflicting header parameters";
	case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "a multipart without a boundary parameter";
	case GMIME_WARN_INVALID_PARAMETER: return "an invalid header parameter";
	case GMIME_WARN_INVALID_ADDRESS_LIST: return "an invalid address list";
	case GMIME_CRIT_NESTING_OVERFLOW: return "MIME parts nested too deep";
	case GMIME_WARN_PART_WITHOUT_CONTENT: return "a part's headers end at a boundary (no content)";
	case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "a part with neither headers nor content";
	}
	return NULL;
}

/* GMime's complaints about a message, kept (each kind once, the first place)
 * to explain a rejection; an ordinary message is not reported for them. */
struct parser_warnings {
	GString *text;
	guint64 seen; /* bit per GMimeParserWarning code */
	gint64 first_bad_header;
};

#define MAX_WARNING_ITEM 64

static void
parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data)
{
	struct parser_warnings *w = data;
	const char *what = mime_warning_text((int)code);
	guint64 bit = (unsigned)code < 64 ? (guint64)1 << (unsigned)code : 0;

	/* GMime reads on past a line that is no header; Postfix (RFC 5322) ends
	 * the header section there: what follows is body */
	if (code == GMIME_CRIT_INVALID_HEADER_NAME && (w->first_bad_header < 0 || offset < w->first_bad_header))
		w->first_bad_header = offset;
	if (w->seen & bit)
		return;
	w->seen |= bit;
	if (w->text->len > 0)
		g_string_append(w->text, "; ");
	if (what != NULL)
		g_string_append(w->text, what);
	else
		g_string_append_printf(w->text, "parser warning %d", (int)code);
	if (offset >= 0)
		g_string_append_printf(w->text, " at byte %lld", (long long)offset);
	if (item != NULL && *item) {
		size_t n = strlen(item);
		char *clean = text_clean(item, n < MAX_WARNING_ITEM ? n : MAX_WARNING_ITEM, NULL);

		g_string_append_printf(w->text, ": \"%s%s\"", clean, n > MAX_WARNING_ITEM ? "..." : "");
		free(clean);
	}
}

static void
add_part(struct mail *m, GByteArray *bytes, const char *filename, const char *mime_type, const char *path)
{
	struct mail_part *p;

	m->parts = xreallocarray(m->parts, m->n_parts + 1, sizeof *m->parts);
	p = &m->parts[m->n_parts++];
	p->data = xmalloc(bytes->len + 1);
	if (bytes->len > 0)
		memcpy(p->data, bytes->data, bytes->len);
	p->data[bytes->len] = '\0';
	p->len = bytes->len;
	p->filename = filename ? clean_header(filename) : NULL;
	p->content_type = xstrdup(mime_type);
	p->path = xstrdup(path);
}

/* Each leaf part: is it a report? */
static int
visit_part(struct mail *m, GMimePart *part, const char *path, bool sole_body,
	   const struct limits *lim, struct error *e)
{
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	char *mime_type = g_mime_content_type_get_mime_type(ct);
	const char *filename = g_mime_part_get_filename(part);
	bool by_type, by_name, is_text;
	GByteArray *bytes = NULL;
	GMimeStream *content;
	int rc = 0;

	for (char *c = mime_type; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	by_type = is_report_type(mime_type);
	by_name = is_report_name(filename);
	is_text = g_mime_content_type_is_type(ct, "text", "*");
	if (!by_type && !by_name && is_text && !sole_body)
		goto out;
	if ((content = decode_part(part, &bytes)) == NULL)
		goto out;
	if (by_type || by_name || looks_like_report(bytes->data, bytes->len)) {
		if (m->n_parts >= lim->max_report_parts) {
			error_set(e, ERR_INPUT, "more than max_report_parts (%zu) report parts in one message",
				  lim->max_report_parts);
			rc = -1;
		} else
			add_part(m, bytes, filename, mime_type, path);
	}
	g_object_unref(content);
out:
	g_free(mime_type);
	return rc;
}

/* GMime's message from len bytes; its parser's warnings collected in w
 * (w->text: the caller's to free) */
static GMimeMessage *
construct_message(const unsigned char *msg, size_t len, struct parser_warnings *w)
{
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeParserOptions *opts;

	mime_init();
	stream = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	parser = g_mime_parser_new_with_stream(stream);
	opts = g_mime_parser_options_new();
	GMimeMessage *message;

	g_object_unref(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	w->text = g_string_new(NULL);
	g_mime_parser_options_set_warning_callback(opts, parser_warning, w);
	message = g_mime_parser_construct_message(parser, opts);
	g_mime_parser_options_free(opts);
	g_object_unref(parser);
	return message;
}

int
mime_parse(const unsigned char *msg, size_t len, const struct limits *lim,
	   struct mail **out, struct error *e)
{
	GMimeMessage *message;
	GMimePartIter *it;
	struct parser_warnings warnings = {NULL, 0, -1};
	struct mail *m;
	bool single;
	int rc = 0;

	*out = NULL;
	if (mimescan_check(msg, len, lim, e) < 0)
		return -1;
	message = construct_message(msg, len, &warnings);
	if (message == NULL) {
		if (warnings.text->len > 0)
			error_set(e, ERR_INPUT, "not a mail message (no headers could be read; GMime: %s)",
				  warnings.text->str);
		else
			error_set(e, ERR_INPUT, "not a mail message (no headers could be read)");
		g_string_free(warnings.text, TRUE);
		return -1;
	}

	m = xcalloc(1, sizeof *m);
	m->parser_warnings = warnings.text->len > 0 ? xstrdup(warnings.text->str) : NULL;
	g_string_free(warnings.text, TRUE);
	m->message_id = clean_header(g_mime_message_get_message_id(message));
	m->subject = clean_header(g_mime_message_get_subject(message));
	m->from = sender_address(message);
	collect_auth_results(m, message, warnings.first_bad_header);
	m->report_domain = clean_header(g_mime_object_get_header(GMIME_OBJECT(message), "TLS-Report-Domain"));
	m->submitter = clean_header(g_mime_object_get_header(GMIME_OBJECT(message), "TLS-Report-Submitter"));

	single = GMIME_IS_PART(g_mime_message_get_mime_part(message));
	it = g_mime_part_iter_new(GMIME_OBJECT(message));
	do {
		GMimeObject *cur = g_mime_part_iter_get_current(it);
		char *path;

		if (parse_clock_over()) {
			error_set(e, ERR_INPUT, "the message takes more than max_parse_time (%u s) to parse",
				  lim->max_parse_time);
			rc = -1;
			break;
		}
		if (cur == NULL || !GMIME_IS_PART(cur))
			continue;
		path = g_mime_part_iter_get_path(it);
		rc = visit_part(m, GMIME_PART(cur), path ? path : "0", single, lim, e);
		g_free(path);
	} while (rc == 0 && g_mime_part_iter_next(it));
	g_mime_part_iter_free(it);
	g_object_unref(message);
	if (rc < 0) {
		mime_free(m);
		return -1;
	}
	*out = m;
	return 0;
}

void
mime_free(struct mail *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_parts; i++) {
		free(m->parts[i].data);
		free(m->parts[i].filename);
		free(m->parts[i].content_type);
		free(m->parts[i].path);
	}
	free(m->parts);
	free(m->message_id);
	free(m->from);
	free(m->subject);
	free(m->report_domain);
	free(m->submitter);
	free(m->parser_warnings);
	for (size_t i = 0; i < m->n_auth_results; i++)
		free(m->auth_results[i]);
	free(m->auth_results);
	free(m);
}

struct mail *
mime_parse_headers(const unsigned char *msg, size_t len, const struct limits *lim)
{
	size_t end = len < lim->max_header_size ? len : lim->max_header_size;
	GMimeMessage *message;
	struct parser_warnings warnings = {NULL, 0, -1};
	struct mail *m;

	for (size_t i = 0; i + 1 < end; i++) /* the header section only: to its empty line */
		if (msg[i] == '\n' && (msg[i + 1] == '\n' || (msg[i + 1] == '\r' && i + 2 < end && msg[i + 2] == '\n'))) {
			end = i + 1;
			break;
		}
	message = construct_message(msg, end, &warnings);
	g_string_free(warnings.text, TRUE);
	if (message == NULL)
		return NULL;
	m = xcalloc(1, sizeof *m);
	m->message_id = clean_header(g_mime_message_get_message_id(message));
	m->subject = clean_header(g_mime_message_get_subject(message));
	m->from = sender_address(message);
	m->report_domain = clean_header(g_mime_object_get_header(GMIME_OBJECT(message), "TLS-Report-Domain"));
	m->submitter = clean_header(g_mime_object_get_header(GMIME_OBJECT(message), "TLS-Report-Submitter"));
	g_object_unref(message);
	return m;
}
