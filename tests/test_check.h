/* The pass/fail lines of the C unit tests: "PASS name" / "FAIL name: why", counted in g_pass
 * and g_fail for the closing "N passed, M failed" line. */
#ifndef IFD_TEST_CHECK_H
#define IFD_TEST_CHECK_H

#include "base/base.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int g_pass, g_fail;

/* One check; fmt names it (and says why when it failed). */
static inline void result(bool ok, const char *fmt, ...) IFD_PRINTF(2, 3);
static inline void result(bool ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf(ok ? "PASS " : "FAIL ");
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    ok ? g_pass++ : g_fail++;
}

/* One check named name; detail is printed only on failure. */
static inline void check(bool ok, const char *name, const char *detail) {
    if (ok) result(true, "%s", name);
    else result(false, "%s: %s", name, detail ? detail : "");
}

#endif
