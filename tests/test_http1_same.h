/* Shared by tests/test_http1.c and fuzz/fuzz_http1.c: whether two parsed heads are the same,
 * each pointer compared by its offset into its own buffer, and whether [p, p + n) lies inside
 * buf[0, len). */
#ifndef IFD_TEST_HTTP1_SAME_H
#define IFD_TEST_HTTP1_SAME_H

#include "serve/http1.h"

static bool inside(const char *p, size_t n, const char *buf, size_t len) {
    return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

static bool same_head(const ifd_http_head *a, const char *abuf, const ifd_http_head *b,
                      const char *bbuf) {
    if (a->method != b->method || a->path_len != b->path_len || a->query_len != b->query_len ||
        a->version_minor != b->version_minor || a->keep_alive != b->keep_alive ||
        a->chunked != b->chunked || a->expect_continue != b->expect_continue ||
        a->content_length != b->content_length || a->n_headers != b->n_headers ||
        a->path - abuf != b->path - bbuf || !a->query != !b->query ||
        (a->query && a->query - abuf != b->query - bbuf))
        return false;
    for (size_t i = 0; i < a->n_headers; i++) {
        const ifd_http_header *x = &a->headers[i], *y = &b->headers[i];
        if (x->name - abuf != y->name - bbuf || x->value - abuf != y->value - bbuf ||
            x->name_len != y->name_len || x->value_len != y->value_len)
            return false;
    }
    return true;
}

#endif
