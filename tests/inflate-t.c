/* inflate-t.c - inflate_gzip(): members, trailing bytes, damage, and the
 * size and ratio limits against a 1 GiB gzip bomb built here with zlib. */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <zlib.h>

#include "config.h"
#include "inflate.h"
#include "status.h"
#include "util.h"

#include "tap.h"

static struct limits deflim;

static bool
names_limit(const char *msg, const char *key)
{
	char m[600];
	size_t i;

	snprintf(m, sizeof m, "%s", msg);
	for (i = 0; m[i] != '\0'; i++)
		if (m[i] == '-')
			m[i] = '_';
	return strstr(m, key) != NULL;
}

static bool
same_bytes(const struct buf *b, const unsigned char *want, size_t wlen)
{
	return b->len == wlen && (wlen == 0 || memcmp(b->data, want, wlen) == 0);
}

/* Runs inflate_gzip and expects success with exactly want[0..wlen). */
static void
expect_ok(const unsigned char *in, size_t len, const struct limits *lim,
	  const unsigned char *want, size_t wlen, size_t want_trailing, const char *what)
{
	struct buf out = {0};
	struct error e = {0};
	size_t trailing = (size_t)-1;
	int rc = inflate_gzip(in, len, lim, &out, &trailing, &e);

	if (!ok(rc == 0 && e.cls == ERR_NONE, "%s: succeeds", what))
		diag("rc %d, %s: %s", rc, err_class_name(e.cls), e.msg);
	is_int((long long)wlen, (long long)out.len, "%s: output length", what);
	ok(same_bytes(&out, want, wlen), "%s: output bytes", what);
	is_int((long long)want_trailing, (long long)trailing, "%s: trailing bytes counted", what);
	buf_free(&out);
}

/* Expects ERR_INPUT; key (may be NULL) must be named in the message. No output
 * from a member whose CRC was not checked. */
static void
expect_input_error(const unsigned char *in, size_t len, const struct limits *lim,
		   const char *key, bool check_no_output, const char *what)
{
	struct buf out = {0};
	struct error e = {0};
	int rc = inflate_gzip(in, len, lim, &out, NULL, &e);

	ok(rc != 0, "%s: fails", what);
	is_string(err_class_name(ERR_INPUT), err_class_name(e.cls), "%s: bad input", what);
	if (key != NULL)
		ok(names_limit(e.msg, key), "%s: message names %s (\"%s\")", what, key, e.msg);
	if (check_no_output)
		is_int(0, (long long)out.len, "%s: nothing from the unchecked member", what);
	buf_free(&out);
}

static unsigned char *
cat2(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen, size_t *len)
{
	unsigned char *p = malloc(alen + blen + 1);

	if (p == NULL)
		bail("out of memory");
	memcpy(p, a, alen);
	memcpy(p + alen, b, blen);
	*len = alen + blen;
	return p;
}

/* gzip (windowBits 16+15) of `total` bytes produced by fill(), fed in 64 KiB
 * chunks so the plain text never sits in memory. */
static unsigned char *
gzip_stream(uint64_t total, void (*fill)(unsigned char *, size_t, uint64_t), size_t *outlen)
{
	static unsigned char chunk[1 << 16];
	z_stream zs;
	struct buf out = {0};
	uint64_t done = 0;
	int flush, zr;

	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_RLE) != Z_OK)
		bail("deflateInit2 failed");
	do {
		size_t n = total - done > sizeof chunk ? sizeof chunk : (size_t)(total - done);
		fill(chunk, n, done);
		done += n;
		flush = done == total ? Z_FINISH : Z_NO_FLUSH;
		zs.next_in = chunk;
		zs.avail_in = (uInt)n;
		do {
			buf_reserve(&out, 1 << 16);
			zs.next_out = out.data + out.len;
			zs.avail_out = (uInt)(out.cap - out.len);
			zr = deflate(&zs, flush);
			if (zr == Z_STREAM_ERROR)
				bail("deflate failed");
			out.len = out.cap - zs.avail_out;
		} while (zs.avail_out == 0);
	} while (flush != Z_FINISH);
	if (zr != Z_STREAM_END)
		bail("deflate did not finish");
	deflateEnd(&zs);
	*outlen = out.len;
	return out.data;
}

static void
fill_zeros(unsigned char *p, size_t n, uint64_t off)
{
	(void)off;
	memset(p, 0, n);
}

/* Incompressible bytes (xorshift), the same for the same offset. */
static uint32_t noise_state;
static void
fill_noise(unsigned char *p, size_t n, uint64_t off)
{
	size_t i;

	if (off == 0)
		noise_state = 2463534242u;
	for (i = 0; i < n; i++) {
		noise_state ^= noise_state << 13;
		noise_state ^= noise_state >> 17;
		noise_state ^= noise_state << 5;
		p[i] = (unsigned char)noise_state;
	}
}

static long
max_rss_kib(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss;
}

int
main(void)
{
	struct config cfg;
	struct limits lim;
	size_t gzlen, gz2len, jsonlen, json2len, len, i;
	unsigned char *gz, *gz2, *json, *json2, *p, *q;
	struct buf out = {0};
	struct error e = {0};
	int rc;

	config_defaults(&cfg);
	deflim = cfg.limits;
	plan_lazy();

	gz = read_data("google-sts.json.gz", &gzlen);
	json = read_data("google-sts.json", &jsonlen);
	gz2 = read_data("ms-tlsa.json.gz", &gz2len);
	json2 = read_data("ms-tlsa.json", &json2len);

	/* is_gzip */
	ok(is_gzip(gz, gzlen), "is_gzip: a gzip file");
	ok(!is_gzip(json, jsonlen), "is_gzip: JSON is not gzip");
	ok(!is_gzip(gz, 1), "is_gzip: one byte is not enough");
	ok(!is_gzip((const unsigned char *)"", 0), "is_gzip: empty");

	/* One member. */
	expect_ok(gz, gzlen, &deflim, json, jsonlen, 0, "single member");

	/* FNAME and mtime in the header change nothing. */
	{
		size_t flen, rlen;
		unsigned char *f = read_data("fname-mtime.json.gz", &flen);
		unsigned char *r = read_data("rfc-example.json", &rlen);
		ok(flen > 10 && (f[3] & 0x08) != 0, "fixture fname-mtime.json.gz has FNAME");
		expect_ok(f, flen, &deflim, r, rlen, 0, "member with FNAME and mtime");
		free(f);
		free(r);
	}

	/* Two members: the outputs are concatenated. */
	p = cat2(gz, gzlen, gz2, gz2len, &len);
	q = cat2(json, jsonlen, json2, json2len, &i);
	expect_ok(p, len, &deflim, q, i, 0, "two concatenated members");
	free(p);
	free(q);

	/* Trailing CRLF (Mimecast), garbage, NULs. */
	p = cat2(gz, gzlen, (const unsigned char *)"\r\n", 2, &len);
	expect_ok(p, len, &deflim, json, jsonlen, 2, "member + CRLF");
	free(p);
	p = cat2(gz, gzlen, (const unsigned char *)"garbage!!", 9, &len);
	expect_ok(p, len, &deflim, json, jsonlen, 9, "member + 9 bytes of garbage");
	free(p);
	p = cat2(gz, gzlen, (const unsigned char *)"\0\0\0\0", 4, &len);
	expect_ok(p, len, &deflim, json, jsonlen, 4, "member + 4 NULs");
	free(p);

	/* Output is appended to what out already holds. */
	buf_puts(&out, "prefix:");
	rc = inflate_gzip(gz, gzlen, &deflim, &out, NULL, &e);
	ok(rc == 0, "append: succeeds");
	ok(out.len == 7 + jsonlen && memcmp(out.data, "prefix:", 7) == 0 &&
	   memcmp(out.data + 7, json, jsonlen) == 0, "append: output after the existing bytes");
	buf_free(&out);
	error_clear(&e);

	/* Damage. */
	expect_input_error(gz, gzlen - 4, &deflim, NULL, true, "truncated (no ISIZE)");
	expect_input_error(gz, gzlen - 8, &deflim, NULL, true, "truncated (no trailer)");
	expect_input_error(gz, gzlen / 2, &deflim, NULL, true, "truncated in the middle");
	expect_input_error(gz, 10, &deflim, NULL, true, "header only");
	{
		size_t clen;
		unsigned char *c = read_data("corrupt.json.gz", &clen);
		expect_input_error(c, clen, &deflim, NULL, true, "corrupt CRC");
		free(c);
	}
	p = cat2(gz, gzlen, (const unsigned char *)"", 0, &len);
	p[len - 1] ^= 0x01; /* ISIZE */
	expect_input_error(p, len, &deflim, NULL, true, "wrong ISIZE");
	memcpy(p, gz, gzlen);
	p[gzlen / 2] ^= 0x55; /* deflate data */
	expect_input_error(p, len, &deflim, NULL, true, "corrupt deflate data");
	free(p);
	expect_input_error(json, jsonlen, &deflim, NULL, true, "not gzip (JSON)");
	expect_input_error((const unsigned char *)"", 0, &deflim, NULL, true, "empty input");
	expect_input_error((const unsigned char *)"\x1f\x8b", 2, &deflim, NULL, true, "magic only");
	/* A good member, then a damaged one: refused whole, so that the raw bytes
	 * are kept in rejected rather than half a report stored (inflate.h). */
	p = cat2(gz, gzlen, gz2, gz2len - 4, &len);
	expect_input_error(p, len, &deflim, NULL, true, "good member + truncated member");
	free(p);

	/* A small cap on a small member: 688 bytes out, cap 200 and 687; 688 is fine. */
	lim = deflim;
	lim.max_inflated_size = 200;
	expect_input_error(gz, gzlen, &lim, "max_inflated_size", true, "688 bytes out, cap 200");
	lim.max_inflated_size = jsonlen - 1;
	expect_input_error(gz, gzlen, &lim, "max_inflated_size", true, "688 bytes out, cap 687");
	lim.max_inflated_size = jsonlen;
	expect_ok(gz, gzlen, &lim, json, jsonlen, 0, "688 bytes out, cap 688");

	/* Within limits: 4 MiB of zeros with an 8 MiB cap and no ratio limit. */
	{
		size_t blen;
		unsigned char *bomb = gzip_stream((uint64_t)4 << 20, fill_zeros, &blen);
		struct buf o = {0};
		struct error e2 = {0};
		bool zeros = true;

		lim = deflim;
		lim.max_inflated_size = (size_t)8 << 20;
		lim.max_inflate_ratio = 100000;
		rc = inflate_gzip(bomb, blen, &lim, &o, NULL, &e2);
		ok(rc == 0, "4 MiB zeros, cap 8 MiB: succeeds (%s)", e2.msg);
		is_int((long long)4 << 20, (long long)o.len, "4 MiB zeros: all of it");
		for (i = 0; i < o.len; i++)
			if (o.data[i] != 0) {
				zeros = false;
				break;
			}
		ok(zeros, "4 MiB zeros: all zero");
		buf_free(&o);
		/* The same with a ratio limit of 100: 4 MiB from ~4 KiB is over it. */
		lim.max_inflate_ratio = 100;
		expect_input_error(bomb, blen, &lim, "max_inflate_ratio", false, "4 MiB zeros, ratio 100");
		/* Exactly at the cap is fine, one byte under is not. */
		lim.max_inflate_ratio = 100000;
		lim.max_inflated_size = (size_t)4 << 20;
		o.len = 0;
		error_clear(&e2);
		rc = inflate_gzip(bomb, blen, &lim, &o, NULL, &e2);
		ok(rc == 0, "4 MiB zeros, cap exactly 4 MiB: succeeds (%s)", e2.msg);
		buf_free(&o);
		lim.max_inflated_size = ((size_t)4 << 20) - 1;
		expect_input_error(bomb, blen, &lim, "max_inflated_size", false, "4 MiB zeros, cap 4 MiB - 1");
		free(bomb);
	}

	/* The ratio is checked once out > 1 MiB: 1 MiB + 32 KiB of zeros (~1 KiB of
	 * gzip) is far over 100:1; 1 MiB exactly is not checked yet. */
	{
		size_t blen;
		unsigned char *z = gzip_stream(((uint64_t)1 << 20) + (32 << 10), fill_zeros, &blen);

		lim = deflim;
		lim.max_inflate_ratio = 100;
		expect_input_error(z, blen, &lim, "max_inflate_ratio", true, "1 MiB + 32 KiB zeros, ratio 100");
		free(z);
		z = gzip_stream((uint64_t)1 << 20, fill_zeros, &blen);
		{
			struct buf o = {0};
			struct error e2 = {0};
			rc = inflate_gzip(z, blen, &lim, &o, NULL, &e2);
			ok(rc == 0 && o.len == (size_t)1 << 20, "1 MiB zeros, ratio 100: under the 1 MiB floor (%s)", e2.msg);
			buf_free(&o);
		}
		free(z);
	}

	/* Incompressible data passes a ratio limit of 2. */
	{
		size_t nlen;
		unsigned char *noise = gzip_stream((uint64_t)3 << 20, fill_noise, &nlen);
		struct buf o = {0};
		struct error e2 = {0};

		lim = deflim;
		lim.max_inflate_ratio = 2;
		rc = inflate_gzip(noise, nlen, &lim, &o, NULL, &e2);
		ok(rc == 0, "3 MiB noise, ratio 2: succeeds (%s)", e2.msg);
		is_int((long long)3 << 20, (long long)o.len, "3 MiB noise: all of it");
		buf_free(&o);
		free(noise);
	}

	/* The bomb: 1 GiB of zeros (~1 MB of gzip). */
	{
		size_t blen;
		unsigned char *bomb = gzip_stream((uint64_t)1 << 30, fill_zeros, &blen);
		long rss;

		diag("1 GiB of zeros: %zu bytes of gzip", blen);
		lim = deflim;
		lim.max_inflate_ratio = 100000;
		lim.max_inflated_size = (size_t)16 << 20;
		expect_input_error(bomb, blen, &lim, "max_inflated_size", false, "1 GiB bomb, cap 16 MiB");
		lim = deflim;
		lim.max_inflated_size = (size_t)1 << 31;
		lim.max_inflate_ratio = 20;
		expect_input_error(bomb, blen, &lim, "max_inflate_ratio", false, "1 GiB bomb, ratio 20, cap 2 GiB");
		expect_input_error(bomb, blen, &deflim, NULL, false, "1 GiB bomb, default limits");
		rss = max_rss_kib();
#ifdef __SANITIZE_ADDRESS__
		skip("max RSS %ld KiB: AddressSanitizer's quarantine holds freed memory", rss);
#else
		ok(rss > 0 && rss < 200L * 1024, "memory stayed small (max RSS %ld KiB)", rss);
#endif
		free(bomb);
	}

	free(gz);
	free(gz2);
	free(json);
	free(json2);
	config_free(&cfg);
	return 0;
}
