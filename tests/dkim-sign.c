/* dkim-sign.c - signs a mail message with libopendkim, for tests/origin-t.sh.
 *   dkim-sign KEY.pem SELECTOR DOMAIN [BODY-LENGTH] < message > signed
 * BODY-LENGTH (a number of bytes, or "all") adds l= to the signature.
 * Writes the DKIM-Signature header, then the message unchanged. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dkim.h>

int
main(int argc, char **argv)
{
	static unsigned char msg[1 << 20], key[16384], hdr[8192];
	size_t len, klen;
	ssize_t blen = -1;
	unsigned flags = DKIM_LIBFLAGS_FIXCRLF;
	DKIM_LIB *lib;
	DKIM_STAT st;
	DKIM *dkim;
	FILE *kf;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: dkim-sign KEY.pem SELECTOR DOMAIN [BODY-LENGTH] < msg\n");
		return 2;
	}
	if ((kf = fopen(argv[1], "r")) == NULL) {
		perror(argv[1]);
		return 2;
	}
	klen = fread(key, 1, sizeof key - 1, kf);
	fclose(kf);
	key[klen] = '\0';
	len = fread(msg, 1, sizeof msg, stdin);
	if (argc == 5)
		blen = strcmp(argv[4], "all") == 0 ? (ssize_t)len : (ssize_t)atol(argv[4]);
	if ((lib = dkim_init(NULL, NULL)) == NULL)
		return 1;
	if (blen >= 0)
		flags |= DKIM_LIBFLAGS_SIGNLEN;
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
	dkim = dkim_sign(lib, (const unsigned char *)"test", NULL, key, (const unsigned char *)argv[2],
			 (const unsigned char *)argv[3], DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
			 DKIM_SIGN_RSASHA256, argc == 5 && strcmp(argv[4], "all") != 0 ? blen : -1, &st);
	if (dkim == NULL) {
		fprintf(stderr, "dkim_sign: %s\n", dkim_getresultstr(st));
		return 1;
	}
	st = dkim_chunk(dkim, msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(dkim, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(dkim, NULL);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr(dkim, hdr, sizeof hdr, strlen("DKIM-Signature: "));
	if (st != DKIM_STAT_OK) {
		fprintf(stderr, "signing: %s (%s)\n", dkim_getresultstr(st), dkim_geterror(dkim) ? dkim_geterror(dkim) : "");
		return 1;
	}
	/* folded with CRLF; the message is in LF, as an MTA hands it to a pipe */
	fputs("DKIM-Signature: ", stdout);
	for (unsigned char *p = hdr; *p; p++)
		if (*p != '\r')
			putchar(*p);
	putchar('\n');
	fwrite(msg, 1, len, stdout);
	dkim_free(dkim);
	dkim_close(lib);
	return 0;
}
