/* inflate.c - capped, multi-member gunzip with zlib. */
#include "autoconf.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "inflate.h"
#include "util.h"

#define RATIO_FLOOR ((size_t)1 << 20) /* the ratio limit applies past 1 MiB of output */
#define CHUNK ((size_t)64 << 10)

bool
is_gzip(const unsigned char *data, size_t len)
{
	return len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

static bool
is_zlib(const unsigned char *data, size_t len)
{
	return len >= 2 && (data[0] & 0x0f) == 8 && ((data[0] << 8) | data[1]) % 31 == 0;
}

int
inflate_gzip(const unsigned char *in, size_t len, const struct limits *lim,
	     struct buf *out, size_t *trailing, struct error *e)
{
	z_stream zs;
	size_t start_len = out->len, accepted = out->len, member_end = 0;
	int zr, rc = -1;

	if (trailing)
		*trailing = 0;
	if (!is_gzip(in, len) && !is_zlib(in, len)) {
		error_set(e, ERR_INPUT, "not gzip data");
		return -1;
	}
	if (len > UINT_MAX) {
		error_set(e, ERR_INPUT, "compressed part over 4 GiB");
		return -1;
	}
	memset(&zs, 0, sizeof zs);
	if ((zr = inflateInit2(&zs, 32 + MAX_WBITS)) != Z_OK) {
		error_set(e, zr == Z_MEM_ERROR ? ERR_TEMP : ERR_BUG, "inflateInit2: %s",
			  zs.msg ? zs.msg : "failed");
		return -1;
	}
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	for (;;) {
		size_t produced;

		buf_reserve(out, CHUNK);
		zs.next_out = out->data + out->len;
		zs.avail_out = (uInt)CHUNK;
		zr = inflate(&zs, Z_NO_FLUSH);
		out->len += CHUNK - zs.avail_out;
		produced = out->len - start_len;
		if (produced > lim->max_inflated_size) {
			error_set(e, ERR_INPUT, "inflated size over max_inflated_size (%zu bytes)",
				  lim->max_inflated_size);
			break;
		}
		/* against what was consumed so far: a bomb is caught after 1 MiB, not
		 * after ratio times its whole size */
		if (produced > RATIO_FLOOR && produced / (len - zs.avail_in + 1) > lim->max_inflate_ratio) {
			error_set(e, ERR_INPUT, "inflate ratio over max_inflate_ratio (%u:1)",
				  lim->max_inflate_ratio);
			break;
		}
		if (parse_clock_over()) {
			error_set(e, ERR_INPUT, "the message takes more than max_parse_time (%u s) to parse",
				  lim->max_parse_time);
			break;
		}
		if (zr == Z_OK || (zr == Z_BUF_ERROR && zs.avail_in > 0))
			continue;
		if (zr == Z_STREAM_END) {
			/* the member's CRC and length have been checked: keep its output */
			member_end = len - zs.avail_in;
			accepted = out->len;
			if (is_gzip(in + member_end, len - member_end)) {
				inflateReset(&zs);
				continue;
			}
			rc = 0;
			break;
		}
		if (zr == Z_MEM_ERROR) {
			error_set(e, ERR_TEMP, "zlib: out of memory");
			break;
		}
		if (zr == Z_BUF_ERROR)
			error_set(e, ERR_INPUT, "gzip data truncated");
		else
			error_set(e, ERR_INPUT, "corrupt gzip data: %s", zs.msg ? zs.msg : "error");
		break;
	}
	inflateEnd(&zs);
	if (rc == 0 && trailing)
		*trailing = len - member_end;
	out->len = rc == 0 ? accepted : start_len;
	buf_reserve(out, 0);
	out->data[out->len] = '\0';
	return rc;
}
