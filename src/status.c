/* status.c - failure classes. */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

void
error_set(struct error *e, enum err_class cls, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL || e->cls != ERR_NONE)
		return;
	e->cls = cls;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

void
error_clear(struct error *e)
{
	e->cls = ERR_NONE;
	e->msg[0] = '\0';
}

const char *
err_class_name(enum err_class cls)
{
	switch (cls) {
	case ERR_NONE: return "ok";
	case ERR_TEMP: return "temporary";
	case ERR_INPUT: return "bad input";
	case ERR_CONFIG: return "configuration";
	case ERR_USAGE: return "usage";
	case ERR_BUG: return "bug";
	case ERR_NOINPUT: return "unreadable input";
	case ERR_N_CLASSES: break;
	}
	return "unknown";
}
