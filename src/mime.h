/* mime.h - an RFC 5322 message to its report parts, with GMime. */
#ifndef TLSRPT_MIME_H
#define TLSRPT_MIME_H

#include <stddef.h>

#include "config.h"
#include "status.h"

struct mail_part {
	unsigned char *data; /* transfer-decoded content */
	size_t len;
	char *filename;     /* from Content-Disposition or Content-Type name=, or NULL */
	char *content_type; /* "type/subtype", lower case */
	char *path;         /* position in the MIME tree, "1.2", for logs */
};

struct mail {
	char *message_id; /* without <> */
	char *from;       /* the From address (the header text when it is not one mailbox) */
	char *subject;
	char *report_domain; /* TLS-Report-Domain */
	char *submitter;     /* TLS-Report-Submitter */
	char **auth_results; /* Authentication-Results values (raw, folded), top to bottom,
			      * from GMime's header list: where the header section really ends */
	size_t n_auth_results;
	struct mail_part *parts; /* the report candidates, in tree order */
	size_t n_parts;
	char *parser_warnings; /* GMime's warnings in words ("a; b"), or NULL: for a rejection's reason */
};

/* GLib's messages to our log, never to stderr: first thing, once. */
void mime_quiet_glib(void);
/* GMime set up (and GLib quiet): at the first parse, or before, once;
 * a delivery's connection is started before it (deliver.c). */
void mime_init(void);
void mime_shutdown(void);

/* Parses msg[0..len) (an optional leading mbox "From " line is skipped),
 * walks the whole tree including attached message/rfc822, and collects every
 * part that is a report by type, by file name or by sniffed content.
 * Fails with ERR_INPUT when the bytes are not a message at all, hold more
 * than max_report_parts candidates, are over a limit of mimescan.h (checked
 * before GMime sees them) or over max_parse_time. Header values are valid UTF-8 without NUL. */
int mime_parse(const unsigned char *msg, size_t len, const struct limits *lim,
	       struct mail **out, struct error *e);
void mime_free(struct mail *m);
/* Only the header fields of a message mime_parse refused (Message-ID, From,
 * Subject, the TLS-Report ones; no parts, no Authentication-Results), for its
 * rejected row: the header section, at most max_header_size bytes, parsed
 * alone. NULL when even that cannot be read. */
struct mail *mime_parse_headers(const unsigned char *msg, size_t len, const struct limits *lim);

/* A GMimeParserWarning code in words, or NULL for a code this GMime does not name. */
const char *mime_warning_text(int code);

#endif
