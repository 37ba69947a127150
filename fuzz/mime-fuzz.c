/* mime-fuzz.c - raw message bytes -> mime_parse -> report parts. */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz-common.h"
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
	struct mail *m = NULL;

	fuzz_limits(&lim);
	if (mime_parse(data, size, &lim, &m, &e) < 0) {
		FUZZ_CHECK(m == NULL, "failed but returned a mail");
		FUZZ_CHECK(e.cls == ERR_INPUT || e.cls == ERR_TEMP, "error class %d", (int)e.cls);
		FUZZ_CHECK(e.msg[0] != '\0', "failure without a reason");
		return 0;
	}
	FUZZ_CHECK(m != NULL, "success without a mail");
	FUZZ_CHECK(m->n_parts <= lim.max_report_parts, "%zu parts", m->n_parts);
	fuzz_text(m->message_id, "message_id");
	fuzz_text(m->from, "from");
	fuzz_text(m->subject, "subject");
	fuzz_text(m->report_domain, "report_domain");
	fuzz_text(m->submitter, "submitter");
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mail_part *p = &m->parts[i];

		FUZZ_CHECK(p->data != NULL, "part without data");
		FUZZ_CHECK(p->data[p->len] == '\0', "part data not terminated");
		fuzz_text(p->filename, "filename");
		FUZZ_CHECK(p->content_type != NULL && p->path != NULL, "part without type or path");
	}
	mime_free(m);
	return 0;
}
