/* report-fuzz.c - bytes -> report_parse -> report_to_json -> report_free. */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz-common.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct limits lim;
	struct error e = {ERR_NONE, ""};
	struct report *r = NULL, *again = NULL;
	struct buf out = {0};
	const char *fallback = size > 0 && (data[0] & 1) ? "fallback.example" : NULL;

	fuzz_limits(&lim);
	if (report_parse((const char *)data, size, fallback, &lim, &r, &e) < 0) {
		FUZZ_CHECK(r == NULL, "failed but returned a report");
		FUZZ_CHECK(e.cls == ERR_INPUT || e.cls == ERR_TEMP, "error class %d", (int)e.cls);
		FUZZ_CHECK(e.msg[0] != '\0', "failure without a reason");
		return 0;
	}
	FUZZ_CHECK(r != NULL, "success without a report");
	fuzz_check_report(r, &lim);
	report_to_json(r, &out);
#ifndef FUZZ_IGNORE_NOTES_UTF8 /* the notes are in it */
	fuzz_text(buf_cstr(&out), "report_to_json");
#endif
	/* what is stored as raw must read back as a report */
	if (strlen(r->raw_json) <= lim.max_json_size) {
		error_clear(&e);
		FUZZ_CHECK(report_parse(r->raw_json, strlen(r->raw_json), fallback, &lim, &again, &e) == 0,
			   "raw_json does not parse again: %s", e.msg);
		fuzz_check_report(again, &lim);
		FUZZ_CHECK(again->n_policies == r->n_policies, "policies %zu then %zu", r->n_policies,
			   again->n_policies);
		report_free(again);
	}
	buf_free(&out);
	report_free(r);
	return 0;
}
