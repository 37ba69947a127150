/* inflate-fuzz.c - bytes -> inflate_gzip, with small limits. */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz-common.h"
#include "inflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct limits lim;
	struct error e = {ERR_NONE, ""};
	struct buf out = {0};
	size_t trailing = (size_t)-1;
	int rc;

	fuzz_limits(&lim);
	lim.max_inflated_size = (size_t)1 << 20;
	lim.max_inflate_ratio = 50;
	/* something already in the buffer must stay as it is */
	buf_puts(&out, "prefix");
	rc = inflate_gzip(data, size, &lim, &out, &trailing, &e);
	FUZZ_CHECK(out.len >= 6 && memcmp(out.data, "prefix", 6) == 0, "the buffer's prefix was lost");
	FUZZ_CHECK(out.data[out.len] == '\0', "output not terminated");
	if (rc == 0) {
		FUZZ_CHECK(e.cls == ERR_NONE, "success with an error set");
		FUZZ_CHECK(trailing <= size, "trailing %zu of %zu", trailing, size);
		/* inflate.h: fails on the max_inflated_size limit */
		FUZZ_CHECK(out.len - 6 <= lim.max_inflated_size, "accepted %zu bytes, over max_inflated_size %zu",
			   out.len - 6, lim.max_inflated_size);
	} else {
		FUZZ_CHECK(rc == -1, "rc %d", rc);
		FUZZ_CHECK(out.len == 6, "failure left %zu bytes of output", out.len - 6);
		FUZZ_CHECK(e.cls == ERR_INPUT || e.cls == ERR_TEMP, "error class %d", (int)e.cls);
		FUZZ_CHECK(e.msg[0] != '\0', "failure without a reason");
	}
	buf_free(&out);
	return 0;
}
