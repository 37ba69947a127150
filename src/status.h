/* status.h - the class of a failure, carried from where it happens to main(),
 * and exits.c alone maps it to an exit status and a status line. */
#ifndef TLSRPT_STATUS_H
#define TLSRPT_STATUS_H

enum err_class {
	ERR_NONE = 0,
	ERR_TEMP,   /* may succeed later: database, resources, deadline -> 75 */
	ERR_INPUT,  /* the content is bad and will stay bad -> rejected, exit 0 */
	ERR_CONFIG, /* the administrator must fix something -> 75 when delivering */
	ERR_USAGE,  /* bad command line -> 64 */
	ERR_BUG,    /* an internal inconsistency -> 75, logged as a bug */
	ERR_NOINPUT, /* an input file named on the command line could not be read -> 66 */
	ERR_N_CLASSES
};

struct error {
	enum err_class cls;
	char msg[512];
};

/* Records the first failure only: later calls keep the original cause. */
void error_set(struct error *e, enum err_class cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void error_clear(struct error *e);
const char *err_class_name(enum err_class cls);

#endif
