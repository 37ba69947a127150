/* header-fuzz.c - the header paths a hostile sender controls: the pre-scan
 * that bounds GMime (mimescan), Authentication-Results values (origin's RFC
 * 8601 reader) and a whole message read with trust = authentication-results,
 * where a verdict may only come from our own authserv-id. */
#include "autoconf.h"

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "ingest.h"
#include "mime.h"
#include "mimescan.h"
#include "origin.h"

#define FUZZ_AUTHSERV "mx.ours.example"

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

/* our authserv-id anywhere in the input, in any case (it is a domain name) */
static int
has_authserv(const uint8_t *data, size_t size)
{
	size_t len = strlen(FUZZ_AUTHSERV);

	for (size_t i = 0; i + len <= size; i++)
		if (g_ascii_strncasecmp((const char *)data + i, FUZZ_AUTHSERV, len) == 0)
			return 1;
	return 0;
}

static void
check_ar_value(const uint8_t *data, size_t size)
{
	char *value = malloc(size + 1);
	char authserv[256];
	struct ar_dkim out[4];
	size_t n = 0;

	FUZZ_CHECK(value != NULL, "out of memory");
	memcpy(value, data, size);
	value[size] = '\0';
	if (origin_parse_ar(value, authserv, sizeof authserv, out, 4, &n) == 0) {
		FUZZ_CHECK(n <= 4, "more results than asked for");
		FUZZ_CHECK(strnlen(authserv, sizeof authserv) < sizeof authserv, "authserv not terminated");
		for (const char *c = authserv; *c; c++)
			FUZZ_CHECK(!(*c >= 'A' && *c <= 'Z'), "authserv-id not lower case: %s", authserv);
		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(strnlen(out[i].result, sizeof out[i].result) < sizeof out[i].result, "result");
			FUZZ_CHECK(strnlen(out[i].domain, sizeof out[i].domain) < sizeof out[i].domain, "domain");
		}
	}
	free(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct limits lim;
	struct error e = {ERR_NONE, ""};
	struct delivery *d = NULL;
	int rc;

	fuzz_limits(&lim);
	lim.max_message_size = (size_t)1 << 20;
	lim.max_header_size = 16 << 10;
	lim.max_header_params = 16;
	lim.max_mime_parts = 64;
	lim.max_mime_depth = 8;
	lim.trust.mode = TRUST_AUTH_RESULTS;
	lim.trust.authserv_id = FUZZ_AUTHSERV;

	if (size <= 4096)
		check_ar_value(data, size);

	rc = mimescan_check(data, size, &lim, &e);
	FUZZ_CHECK(rc == 0 || (rc == -1 && e.cls == ERR_INPUT), "mimescan_check: %d, class %d", rc, (int)e.cls);

	e = (struct error){ERR_NONE, ""};
	if (ingest_bytes(data, size, "stdin", &lim, &d, &e) < 0) {
		FUZZ_CHECK(e.cls == ERR_TEMP, "ingest_bytes failed with class %d: %s", (int)e.cls, e.msg);
		delivery_free(d);
		return 0;
	}
	FUZZ_CHECK(d != NULL, "no delivery");
	FUZZ_CHECK(d->n_reports + d->n_rejections > 0, "an input that is neither a report nor rejected");
	/* what the pre-scan refuses never reaches GMime, so never yields a report */
	if (rc != 0 && d->kind == INPUT_MAIL)
		FUZZ_CHECK(d->n_reports == 0, "a report from a message the pre-scan refused");
	fuzz_text(d->origin.dkim_result, "dkim_result");
	fuzz_text(d->origin.dkim_domain, "dkim_domain");
	fuzz_text(d->origin.detail, "origin detail");
	if (d->origin.dkim_result != NULL && strcmp(d->origin.dkim_result, "pass") == 0)
		FUZZ_CHECK(d->origin.method != NULL && strcmp(d->origin.method, "authentication-results") == 0,
			   "a pass from nowhere");
	if (origin_authenticated(&d->origin)) {
		FUZZ_CHECK(d->origin.dkim_domain != NULL && d->origin.dkim_domain[0] != '\0', "pass without a domain");
		FUZZ_CHECK(d->origin.aligned == TRI_TRUE, "authenticated but not aligned");
		/* a verdict is only ever read from our own authserv-id */
		FUZZ_CHECK(has_authserv(data, size), "authenticated without our authserv-id in the message");
	}
	for (size_t i = 0; i < d->n_rejections; i++) {
		FUZZ_CHECK(d->rejections[i].reason != NULL && d->rejections[i].reason[0] != '\0', "no reason");
		fuzz_text(d->rejections[i].reason, "reason");
	}
	delivery_free(d);
	return 0;
}
