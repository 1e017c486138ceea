/* Status codes and the per-thread detail message. */
#include "base.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char g_detail[1024];

const char *ifd_status_string(ifd_status status) {
    switch (status) {
#define IFD_STATUS_CASE_(name, value, text) \
    case name:                              \
        return #name ": " text;
        IFD_STATUS_LIST(IFD_STATUS_CASE_)
#undef IFD_STATUS_CASE_
    default:
        return "IFD_ERR_UNKNOWN: unknown status code";
    }
}

const char *ifd_last_error(void) { return g_detail; }

void ifd_error_clear(void) { g_detail[0] = 0; }

ifd_status ifd_error(ifd_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_detail, sizeof g_detail, fmt, ap);
    va_end(ap);
    return status;
}

ifd_status ifd_error_prefix(ifd_status status, const char *fmt, ...) {
    char prefix[512];
    char old[sizeof g_detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_detail, sizeof old);
    /* built piecewise: the result is cut at the buffer size, which is intended */
    size_t n = strlen(prefix);
    const char *rest = old[0] ? old : ifd_status_string(status);
    memcpy(g_detail, prefix, n);
    if (n + 2 < sizeof g_detail) {
        g_detail[n++] = ':';
        g_detail[n++] = ' ';
        size_t r = strlen(rest);
        if (r > sizeof g_detail - 1 - n) r = sizeof g_detail - 1 - n;
        memcpy(g_detail + n, rest, r);
        n += r;
    }
    g_detail[n] = 0;
    return status;
}
