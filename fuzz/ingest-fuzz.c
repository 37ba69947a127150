/* ingest-fuzz.c - one input end to end (sniff, MIME, inflate, report),
 * as main() hands it to the store, without the database. */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz-common.h"
#include "ingest.h"
#include "mime.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mime_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct limits lim;
	struct error e = {ERR_NONE, ""};
	struct delivery *d = NULL;
	struct buf out = {0};

	fuzz_limits(&lim);
	lim.max_message_size = (size_t)1 << 20;
	if (ingest_bytes(data, size, "stdin", &lim, &d, &e) < 0) {
		/* only ERR_TEMP may fail the call (ingest.h) */
		FUZZ_CHECK(e.cls == ERR_TEMP, "ingest_bytes failed with class %d: %s", (int)e.cls, e.msg);
		delivery_free(d);
		return 0;
	}
	FUZZ_CHECK(d != NULL, "no delivery");
	FUZZ_CHECK(d->n_reports + d->n_rejections > 0, "an input that is neither a report nor rejected");
	fuzz_text(d->message_id, "message_id");
	fuzz_text(d->sender, "sender");
	fuzz_text(d->subject, "subject");
	fuzz_text(d->report_domain, "report_domain");
	fuzz_text(d->submitter, "submitter");
	for (size_t i = 0; i < d->n_reports; i++) {
		fuzz_check_report(d->reports[i].report, &lim);
		fuzz_text(d->reports[i].filename, "filename");
		FUZZ_CHECK(strlen(d->reports[i].digest) == 64, "digest");
	}
	for (size_t i = 0; i < d->n_rejections; i++) {
		const struct rejection *r = &d->rejections[i];

		FUZZ_CHECK(r->reason != NULL && r->reason[0] != '\0', "rejection without a reason");
		fuzz_text(r->reason, "reason");
		fuzz_text(r->filename, "rejection filename");
		FUZZ_CHECK(r->raw_len <= lim.max_rejected_raw && r->raw_len <= r->original_len, "raw_len");
		FUZZ_CHECK(strlen(r->digest) == 64, "digest");
	}
	delivery_print_json(d, &out);
#ifndef FUZZ_IGNORE_NOTES_UTF8 /* the notes are in it */
	fuzz_text(buf_cstr(&out), "--dry-run output");
#endif
	buf_free(&out);
	delivery_free(d);
	return 0;
}
