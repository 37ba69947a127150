/* report.h - an RFC 8460 report, normalized leniently from JSON.
 * Knows nothing of MIME or PostgreSQL. Every string held here is valid UTF-8
 * without NUL; a NULL pointer means the field was missing, null or unusable. */
#ifndef TLSRPT_REPORT_H
#define TLSRPT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"
#include "util.h"

struct strlist {
	char **items;
	size_t n;
	bool present; /* false: the key was absent or not an array/string */
};

struct count {
	int64_t value;
	bool present; /* false: missing, negative, non-numeric or out of range */
};

struct failure {
	char *result_type;
	char *sending_mta_ip;        /* canonical text of a valid IPv4/IPv6 address */
	char *receiving_mx_hostname; /* also from the misspelled "receiving-mx-host-name" */
	char *receiving_mx_helo;
	char *receiving_ip;
	struct count failed_session_count;
	char *additional_information; /* also from "additional-info-uri" */
	char *failure_reason_code;
};

struct policy {
	char *policy_type;
	char *policy_domain; /* falls back to the TLS-Report-Domain header */
	struct strlist policy_string;
	struct strlist mx_host; /* from an array, or a single string */
	struct count total_successful_session_count;
	struct count total_failure_session_count;
	struct failure *failures;
	size_t n_failures;
};

struct report {
	char *organization_name;
	char *contact_info;
	char *report_id;
	char *date_start; /* "YYYY-MM-DD HH:MM:SS+00", UTC; a missing zone is taken as UTC */
	char *date_end;
	struct policy *policies;
	size_t n_policies;
	char *raw_json; /* the report as received, re-serialized without NUL, for jsonb */
	struct strlist notes; /* what was mended or dropped, one line each */
};

/* Parses one JSON text. fallback_domain (may be NULL) fills a missing
 * policy-domain. Returns 0 and *out on success; -1 with ERR_INPUT when the
 * text is not JSON, not an object, not a report (none of organization-name,
 * report-id, date-range, policies), or over a limit (msg names it). */
int report_parse(const char *json, size_t len, const char *fallback_domain,
		 const struct limits *lim, struct report **out, struct error *e);
void report_free(struct report *r);
/* Its failure rows, over all its policies. */
size_t report_failure_rows(const struct report *r);
/* An upper bound of the JSON values in json[0..len), an object counting as 8
 * (what max_json_values and max_message_json_values count), in one linear pass. */
size_t report_count_values(const char *json, size_t len);

/* The normalized report as one line of JSON (no newline), for --dry-run;
 * or as a json-c object the caller adds to and frees with json_object_put. */
void report_to_json(const struct report *r, struct buf *out);
struct json_object;
struct json_object *report_to_json_object(const struct report *r);

/* Parses an RFC 3339 date-time leniently (no zone = UTC, 'T' or ' ',
 * fraction ignored, date only = midnight) into "YYYY-MM-DD HH:MM:SS+00". */
char *report_normalize_datetime(const char *s);

#endif
