/* fuzz-common.h - what every harness checks besides "no crash": the
 * promises the stage headers make about what they hand on. A broken promise
 * aborts, so libFuzzer keeps the input as a crash. */
#ifndef TLSRPT_FUZZ_COMMON_H
#define TLSRPT_FUZZ_COMMON_H

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "report.h"
#include "util.h"

#define FUZZ_CHECK(cond, ...)                                                \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz invariant broken: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/* Small limits, so that the fuzzer reaches them quickly and runs fast. */
static inline void
fuzz_limits(struct limits *lim)
{
	/* kept for the whole run: the limits may point into it (strings) */
	static struct config c;
	static int ready;

	if (!ready) {
		config_defaults(&c);
		ready = 1;
	}
	*lim = c.limits;
	lim->max_inflated_size = (size_t)4 << 20;
	lim->max_inflate_ratio = 200;
	lim->max_json_size = (size_t)2 << 20;
	lim->max_json_depth = 32;
	lim->max_policies = 200;
	lim->max_failures_per_policy = 2000;
	lim->max_string_length = (size_t)16 << 10;
	lim->max_report_parts = 50;
	lim->max_rejected_raw = 4096;
}

/* "valid UTF-8 without NUL" (report.h, mime.h) - what PostgreSQL text needs. */
static inline void
fuzz_text(const char *s, const char *what)
{
	if (s == NULL)
		return;
	FUZZ_CHECK(utf8_valid((const unsigned char *)s, strlen(s)), "%s is not valid UTF-8", what);
}

static inline void
fuzz_strlist(const struct strlist *l, const char *what)
{
	FUZZ_CHECK(l->n == 0 || l->items != NULL, "%s: items NULL", what);
	for (size_t i = 0; i < l->n; i++) {
		FUZZ_CHECK(l->items[i] != NULL, "%s: NULL item", what);
		fuzz_text(l->items[i], what);
	}
}

/* jsonb refuses \u0000: no string in raw_json may hold a NUL once parsed */
static inline void
fuzz_no_nul(json_object *o, int depth)
{
	FUZZ_CHECK(depth < 1000, "raw_json nested %d deep", depth);
	switch (json_object_get_type(o)) {
	case json_type_string:
		FUZZ_CHECK(memchr(json_object_get_string(o), '\0', (size_t)json_object_get_string_len(o)) == NULL,
			   "raw_json holds a string with \\u0000 (jsonb refuses it)");
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			fuzz_no_nul(json_object_array_get_idx(o, i), depth + 1);
		break;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			fuzz_no_nul(v, depth + 1);
		}
		break;
	}
	default:
		break;
	}
}

static inline void
fuzz_check_report(const struct report *r, const struct limits *lim)
{
	struct json_tokener *tok;
	json_object *o;

	fuzz_text(r->organization_name, "organization_name");
	fuzz_text(r->contact_info, "contact_info");
	fuzz_text(r->report_id, "report_id");
	fuzz_text(r->date_start, "date_start");
	fuzz_text(r->date_end, "date_end");
	fuzz_strlist(&r->notes, "notes"); /* fuzz/crashes/report-notes-utf8-cut.json, fixed */
	FUZZ_CHECK(r->n_policies <= lim->max_policies, "%zu policies", r->n_policies);
	for (size_t i = 0; i < r->n_policies; i++) {
		const struct policy *p = &r->policies[i];

		fuzz_text(p->policy_type, "policy_type");
		fuzz_text(p->policy_domain, "policy_domain");
		fuzz_strlist(&p->policy_string, "policy_string");
		fuzz_strlist(&p->mx_host, "mx_host");
		FUZZ_CHECK(p->n_failures <= lim->max_failures_per_policy, "%zu failures", p->n_failures);
		FUZZ_CHECK(!p->total_successful_session_count.present || p->total_successful_session_count.value >= 0, "count");
		FUZZ_CHECK(!p->total_failure_session_count.present || p->total_failure_session_count.value >= 0, "count");
		for (size_t j = 0; j < p->n_failures; j++) {
			const struct failure *f = &p->failures[j];

			fuzz_text(f->result_type, "result_type");
			fuzz_text(f->sending_mta_ip, "sending_mta_ip");
			fuzz_text(f->receiving_mx_hostname, "receiving_mx_hostname");
			fuzz_text(f->receiving_mx_helo, "receiving_mx_helo");
			fuzz_text(f->receiving_ip, "receiving_ip");
			fuzz_text(f->additional_information, "additional_information");
			fuzz_text(f->failure_reason_code, "failure_reason_code");
			FUZZ_CHECK(!f->failed_session_count.present || f->failed_session_count.value >= 0, "count");
		}
	}
	/* raw_json goes to a jsonb column: valid UTF-8, no NUL, and JSON again */
	FUZZ_CHECK(r->raw_json != NULL, "raw_json is NULL");
	fuzz_text(r->raw_json, "raw_json");
	tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, r->raw_json, (int)strlen(r->raw_json));
	FUZZ_CHECK(json_tokener_get_error(tok) == json_tokener_success, "raw_json does not parse: %s",
		   json_tokener_error_desc(json_tokener_get_error(tok)));
	FUZZ_CHECK(json_object_is_type(o, json_type_object), "raw_json is not an object");
	fuzz_no_nul(o, 0);
	json_object_put(o);
	json_tokener_free(tok);
}

#endif
