/* mimescan.c - the raw message's shape, measured before GMime parses it.
 * Linear in the message: each line is looked at once, and a line that
 * begins with "--" is compared with at most max_mime_depth boundaries. */
#include "autoconf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mimescan.h"
#include "util.h"

#define MAX_BOUNDARY 200   /* RFC 2046: at most 70 characters */
#define FIELD_KEEP 4096    /* bytes of a Content-Type value kept to find boundary= */

struct level {
	char boundary[MAX_BOUNDARY + 1]; /* "" for an attached message */
	size_t blen;
};

struct scan {
	const struct limits *lim;
	struct error *e;
	struct level *stack;
	size_t depth;
	size_t parts;
	size_t report_parts; /* labelled as reports by their type */
	/* the header block being read */
	size_t header_bytes, params;
	int field;          /* 0 other, 1 Content-Type, 2 Content-Disposition */
	bool in_quote;
	char ctype[FIELD_KEEP];
	size_t ctype_len;
};

static bool
field_is(const unsigned char *line, size_t n, const char *name)
{
	size_t k = strlen(name), i = k;

	if (n < k || strncasecmp((const char *)line, name, k) != 0)
		return false;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < n && line[i] == ':';
}

/* parameters: the ';' outside quoted strings, across folded lines */
static void
count_params(struct scan *s, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s->in_quote && p[i] == '\\') {
			i++;
		} else if (p[i] == '"') {
			s->in_quote = !s->in_quote;
		} else if (p[i] == ';' && !s->in_quote) {
			s->params++;
		}
	}
	if (s->field == 1 && s->ctype_len < sizeof s->ctype - 1) {
		size_t k = n < sizeof s->ctype - 1 - s->ctype_len ? n : sizeof s->ctype - 1 - s->ctype_len;

		memcpy(s->ctype + s->ctype_len, p, k);
		s->ctype_len += k;
		s->ctype[s->ctype_len] = '\0';
	}
}

/* The boundary parameter of a Content-Type value, unquoted; "" if none. */
static void
find_boundary(const char *v, char *out, size_t size)
{
	const char *p = v;

	out[0] = '\0';
	while ((p = strchr(p, ';')) != NULL) {
		size_t n = 0;

		p++;
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (strncasecmp(p, "boundary", 8) != 0)
			continue;
		p += 8;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"') {
			for (p++; *p && *p != '"' && n + 1 < size; p++) {
				if (*p == '\\' && p[1])
					p++;
				out[n++] = *p;
			}
		} else {
			for (; *p && *p != ';' && !isspace((unsigned char)*p) && n + 1 < size; p++)
				out[n++] = *p;
		}
		out[n] = '\0';
		return;
	}
}

static int
push(struct scan *s, const char *boundary)
{
	if (s->depth >= s->lim->max_mime_depth) {
		error_set(s->e, ERR_INPUT, "MIME parts nested deeper than max_mime_depth (%u)",
			  s->lim->max_mime_depth);
		return -1;
	}
	snprintf(s->stack[s->depth].boundary, sizeof s->stack[s->depth].boundary, "%s", boundary);
	s->stack[s->depth].blen = strlen(s->stack[s->depth].boundary);
	s->depth++;
	return 0;
}

/* End of a header block: 1 when the body is itself a header block (an
 * attached message), 0 otherwise, -1 over a limit. */
static int
header_end(struct scan *s)
{
	const char *v = s->ctype;
	char type[32];
	size_t n = 0;
	int rc = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	while (*v && *v != ';' && !isspace((unsigned char)*v) && n + 1 < sizeof type)
		type[n++] = (char)tolower((unsigned char)*v++);
	type[n] = '\0';
	/* mime.c's rule, by type only: the more specific limit names itself first */
	if (strcmp(type, "application/tlsrpt+gzip") == 0 || strcmp(type, "application/tlsrpt+json") == 0 ||
	    strcmp(type, "application/tlsrpt") == 0) {
		if (++s->report_parts > s->lim->max_report_parts) {
			error_set(s->e, ERR_INPUT, "more than max_report_parts (%zu) report parts in one message",
				  s->lim->max_report_parts);
			return -1;
		}
	}
	if (strncmp(type, "multipart/", 10) == 0) {
		char b[MAX_BOUNDARY + 1];

		find_boundary(s->ctype, b, sizeof b);
		if (b[0] && push(s, b) < 0)
			return -1;
	} else if (strcmp(type, "message/rfc822") == 0 || strcmp(type, "message/global") == 0) {
		if (push(s, "") < 0)
			return -1;
		rc = 1;
	}
	s->header_bytes = s->params = 0;
	s->field = 0;
	s->in_quote = false;
	s->ctype_len = 0;
	s->ctype[0] = '\0';
	return rc;
}

/* A boundary line of an open multipart: the level it opens a part of, or -1. */
static long
boundary_level(const struct scan *s, const unsigned char *line, size_t n, bool *closing)
{
	if (n < 2 || line[0] != '-' || line[1] != '-')
		return -1;
	for (size_t k = s->depth; k-- > 0;) {
		const struct level *l = &s->stack[k];

		if (l->blen == 0 || n - 2 < l->blen || memcmp(line + 2, l->boundary, l->blen) != 0)
			continue;
		*closing = n - 2 >= l->blen + 2 && line[2 + l->blen] == '-' && line[3 + l->blen] == '-';
		return (long)k;
	}
	return -1;
}

int
mimescan_check(const unsigned char *msg, size_t len, const struct limits *lim, struct error *e)
{
	struct level stack_storage[64];
	struct scan s;
	size_t i = mbox_from_line_length(msg, len);
	bool in_header = true;
	int rc = 0;

	memset(&s, 0, sizeof s);
	s.lim = lim;
	s.e = e;
	s.stack = lim->max_mime_depth <= 64 ? stack_storage : xcalloc(lim->max_mime_depth, sizeof *s.stack);
	while (i < len && rc == 0) {
		const unsigned char *line = msg + i, *nl = memchr(line, '\n', len - i);
		size_t n = nl ? (size_t)(nl - line) : len - i, next = i + n + (nl != NULL);

		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (in_header) {
			if (n == 0) {
				int r = header_end(&s);

				if (r < 0)
					rc = -1;
				in_header = r == 1;
				i = next;
				continue;
			}
			s.header_bytes += next - i;
			if (s.header_bytes > lim->max_header_size) {
				error_set(e, ERR_INPUT, "a header block of more than max_header_size (%zu bytes)",
					  lim->max_header_size);
				rc = -1;
				break;
			}
			if (line[0] == ' ' || line[0] == '\t') {
				if (s.field)
					count_params(&s, line, n);
			} else {
				const unsigned char *colon = memchr(line, ':', n);
				bool closing;

				/* a boundary where a header was expected: GMime ends the block there */
				if (boundary_level(&s, line, n, &closing) >= 0) {
					if (header_end(&s) < 0) {
						rc = -1;
						break;
					}
					in_header = false;
					continue; /* read it again as a body line */
				}
				s.in_quote = false;
				s.field = field_is(line, n, "Content-Type") ? 1
					  : field_is(line, n, "Content-Disposition") ? 2 : 0;
				if (s.field == 1 && s.ctype_len > 0) /* a second Content-Type: the last counts */
					s.ctype_len = 0;
				if (s.field && colon)
					count_params(&s, colon + 1, n - (size_t)(colon + 1 - line));
			}
			if (s.params > lim->max_header_params) {
				error_set(e, ERR_INPUT, "more than max_header_params (%zu) Content-Type or "
					  "Content-Disposition parameters in one header block", lim->max_header_params);
				rc = -1;
			}
		} else {
			bool closing = false;
			long k = boundary_level(&s, line, n, &closing);

			if (k >= 0) {
				if (++s.parts > lim->max_mime_parts) {
					error_set(e, ERR_INPUT, "more than max_mime_parts (%zu) MIME parts in one message",
						  lim->max_mime_parts);
					rc = -1;
					break;
				}
				s.depth = (size_t)k + 1;
				if (closing)
					s.depth--;
				else
					in_header = true;
			}
		}
		i = next;
	}
	if (rc == 0 && in_header && header_end(&s) < 0) /* a message that is all header */
		rc = -1;
	if (s.stack != stack_storage)
		free(s.stack);
	return rc;
}
