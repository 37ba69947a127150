/* util-t.c - util.c: the growable buffer, UTF-8 checks and mending, the
 * leading BOM and mbox From line, suffixes, numbers and sizes. */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "tap.h"

static void
test_buf(void)
{
	struct buf b = {0};

	for (int i = 0; i < 1000; i++)
		buf_puts(&b, "ab");
	buf_printf(&b, "%d-%s", 42, "x");
	is_int(2004, (long long)b.len, "a buffer grows to hold 1000 appends and a printf");
	ok(memcmp(b.data + 2000, "42-x", 4) == 0, "buf_printf appends at the end");
	is_int(0, buf_cstr(&b)[2004], "buf_cstr terminates without counting the NUL");
	is_int(2004, (long long)b.len, "buf_cstr leaves the length alone");
	buf_free(&b);
	ok(b.data == NULL && b.len == 0, "buf_free leaves an empty buffer");
}

static void
test_utf8(void)
{
	bool changed = true;
	char *s;

	ok(utf8_valid((const unsigned char *)"caf\xc3\xa9", 5), "valid two-byte UTF-8 is valid");
	ok(!utf8_valid((const unsigned char *)"caf\xc3", 4), "a sequence cut at the end is invalid");
	ok(!utf8_valid((const unsigned char *)"\xc0\xaf", 2), "an overlong encoding is invalid");
	ok(!utf8_valid((const unsigned char *)"\xed\xa0\x80", 3), "a UTF-16 surrogate is invalid");
	s = text_clean("ok", 2, &changed);
	ok(strcmp(s, "ok") == 0 && !changed, "clean text comes back unchanged and says so");
	free(s);
	s = text_clean("a\xff" "b\0c", 5, &changed);
	is_string("a\xef\xbf\xbd" "bc", s, "text_clean: a bad byte becomes U+FFFD, a NUL is dropped");
	ok(changed, "text_clean says it mended something");
	free(s);
}

static void
test_prefixes(void)
{
	static const unsigned char bom[] = "\xef\xbb\xbf \r\n{";
	static const unsigned char from[] = "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n";

	is_int(6, (long long)skip_bom_space(bom, sizeof bom - 1), "a BOM and white space are skipped");
	is_int(0, (long long)skip_bom_space((const unsigned char *)"{}", 2), "nothing to skip: 0");
	is_int(34, (long long)mbox_from_line_length(from, sizeof from - 1), "an mbox From line's length, newline included");
	is_int(0, (long long)mbox_from_line_length((const unsigned char *)"From: a@b\n", 10),
	       "a From: header is not an mbox From line");
	ok(ends_with_ci("report.JSON.GZ", ".json.gz"), "ends_with_ci ignores case");
	ok(!ends_with_ci("gz", ".json.gz"), "ends_with_ci: a suffix longer than the string does not match");
}

static void
test_numbers(void)
{
	unsigned long long v = 0;
	size_t sz = 0;

	ok(parse_uint("36500", 36500, &v) && v == 36500, "parse_uint takes the maximum itself");
	ok(!parse_uint("36501", 36500, &v), "parse_uint refuses one over the maximum");
	ok(!parse_uint("", 10, &v) && !parse_uint("1x", 10, &v) && !parse_uint("-1", 10, &v),
	   "parse_uint refuses empty, junk and a sign");
	ok(!parse_uint("18446744073709551616", ~0ULL, &v), "parse_uint refuses 2^64 (overflow)");
	ok(parse_size("64M", &sz) && sz == (size_t)64 << 20, "64M is 64 MiB");
	ok(parse_size("512k", &sz) && sz == 512 * 1024, "512k is 512 KiB");
	ok(parse_size("1000", &sz) && sz == 1000, "a plain number is bytes");
	ok(!parse_size("1T", &sz) && !parse_size("M", &sz), "parse_size refuses an unknown unit and a unit alone");
	ok(now_ms() > 0, "now_ms is positive (monotonic)");
}

int
main(void)
{
	plan_lazy();
	test_buf();
	test_utf8();
	test_prefixes();
	test_numbers();
	return 0;
}
