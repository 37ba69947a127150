/* tap.c - a tiny TAP producer; see tap.h. No assert(): every check is a
 * test point, and a failure is counted, never fatal. */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

static unsigned long planned;
static unsigned long current;
static unsigned long failures;
static bool lazy;
static bool have_plan;
static bool registered;
static pid_t owner;

static void
finish(void)
{
	if (getpid() != owner)
		return;
	if (lazy)
		printf("1..%lu\n", current);
	else if (have_plan && planned != current)
		printf("# planned %lu tests but ran %lu\n", planned, current);
	if (failures > 0)
		printf("# %lu of %lu tests failed\n", failures, current);
	fflush(stdout);
	if (failures > 0 || (have_plan && !lazy && planned != current))
		_exit(1);
}

static void
start(void)
{
	if (!registered) {
		registered = true;
		owner = getpid();
		setvbuf(stdout, NULL, _IOLBF, 0);
		atexit(finish);
	}
}

void
plan(unsigned long n)
{
	start();
	planned = n;
	have_plan = true;
	lazy = false;
	printf("1..%lu\n", n);
}

void
plan_lazy(void)
{
	start();
	have_plan = true;
	lazy = true;
}

void
skip_all(const char *fmt, ...)
{
	va_list ap;

	printf("1..0 # SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	_exit(77);
}

static void
vresult(bool pass, const char *fmt, va_list ap)
{
	start();
	current++;
	if (!pass)
		failures++;
	printf("%sok %lu", pass ? "" : "not ", current);
	if (fmt != NULL && *fmt != '\0') {
		printf(" - ");
		vprintf(fmt, ap);
	}
	printf("\n");
}

bool
ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vresult(cond, fmt, ap);
	va_end(ap);
	return cond;
}

bool
is_int(long long expected, long long got, const char *fmt, ...)
{
	va_list ap;
	bool pass = expected == got;

	va_start(ap, fmt);
	vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		printf("#     wanted: %lld\n", expected);
		printf("#       seen: %lld\n", got);
	}
	return pass;
}

static void
print_quoted(const char *label, const char *s)
{
	printf("# %11s: ", label);
	if (s == NULL) {
		printf("(null)\n");
		return;
	}
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n')
			printf("\\n");
		else if (c == '\r')
			printf("\\r");
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"\n");
}

bool
is_string(const char *expected, const char *got, const char *fmt, ...)
{
	va_list ap;
	bool pass;

	if (expected == NULL || got == NULL)
		pass = expected == got;
	else
		pass = strcmp(expected, got) == 0;
	va_start(ap, fmt);
	vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		print_quoted("wanted", expected);
		print_quoted("seen", got);
	}
	return pass;
}

static void
skip_one(const char *fmt, va_list ap)
{
	current++;
	printf("ok %lu # skip ", current);
	vprintf(fmt, ap);
	printf("\n");
}

void
skip(const char *fmt, ...)
{
	va_list ap;

	start();
	va_start(ap, fmt);
	skip_one(fmt, ap);
	va_end(ap);
}

void
skip_block(unsigned long n, const char *fmt, ...)
{
	va_list ap;
	unsigned long i;

	start();
	for (i = 0; i < n; i++) {
		va_start(ap, fmt);
		skip_one(fmt, ap);
		va_end(ap);
	}
}

void
diag(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

void
bail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	_exit(255);
}

unsigned long
tap_failures(void)
{
	return failures;
}

char *
test_data_path(const char *name)
{
	const char *top = getenv("top_srcdir");
	size_t n;
	char *p;

	if (top == NULL || *top == '\0')
		top = ".";
	n = strlen(top) + strlen("/tests/data/") + strlen(name) + 1;
	p = malloc(n);
	if (p == NULL)
		bail("out of memory");
	snprintf(p, n, "%s/tests/data/%s", top, name);
	return p;
}

unsigned char *
read_file(const char *path, size_t *len)
{
	FILE *f;
	unsigned char *data = NULL, *bigger;
	size_t cap = 0, n = 0, got;

	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			cap = cap == 0 ? 8192 : cap * 2;
			bigger = realloc(data, cap + 1);
			if (bigger == NULL) {
				free(data);
				fclose(f);
				return NULL;
			}
			data = bigger;
		}
		got = fread(data + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(data);
		fclose(f);
		return NULL;
	}
	fclose(f);
	data[n] = '\0';
	if (len != NULL)
		*len = n;
	return data;
}

unsigned char *
read_data(const char *name, size_t *len)
{
	char *path = test_data_path(name);
	unsigned char *data = read_file(path, len);

	if (data == NULL)
		bail("cannot read fixture %s: %s (is top_srcdir set?)", path, strerror(errno));
	free(path);
	return data;
}
