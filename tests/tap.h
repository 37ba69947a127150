/* tap.h - a tiny TAP producer for the unit tests (after c-tap-harness).
 *
 * plan(n) or plan_lazy() first; then ok(), is_int(), is_string() once per
 * test point. At exit the plan line is printed when lazy, and the process
 * exits non-zero when a test failed or the count does not match the plan. */
#ifndef TLSRPT_TAP_H
#define TLSRPT_TAP_H

#include <stdbool.h>
#include <stddef.h>

#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

void plan(unsigned long n);
void plan_lazy(void);
/* "1..0 # SKIP reason", exit 77 (automake's skip status). */
void skip_all(const char *fmt, ...) TAP_PRINTF(1, 2) __attribute__((noreturn));

bool ok(bool cond, const char *fmt, ...) TAP_PRINTF(2, 3);
bool is_int(long long expected, long long got, const char *fmt, ...) TAP_PRINTF(3, 4);
/* NULL matches only NULL. */
bool is_string(const char *expected, const char *got, const char *fmt, ...) TAP_PRINTF(3, 4);
/* One test point reported as "ok N # skip reason". */
void skip(const char *fmt, ...) TAP_PRINTF(1, 2);
/* n test points skipped at once. */
void skip_block(unsigned long n, const char *fmt, ...) TAP_PRINTF(2, 3);

/* "# ..." on stdout (TAP comments). */
void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
/* "Bail out! ..." and exit 255. */
void bail(const char *fmt, ...) TAP_PRINTF(1, 2) __attribute__((noreturn));

/* Failures so far. */
unsigned long tap_failures(void);

/* $top_srcdir/tests/data/name (top_srcdir from the environment, else ".");
 * malloc'd, never NULL. */
char *test_data_path(const char *name);
/* The whole file, NUL-terminated (not counted in *len); NULL on error. */
unsigned char *read_file(const char *path, size_t *len);
/* read_file(test_data_path(name)), bailing out when it cannot be read. */
unsigned char *read_data(const char *name, size_t *len);

#endif
