/* HTTP/1.1 request framing tests (serve/http1.h): request heads and chunked bodies.
 *  1. Valid heads: methods, versions and their keep-alive defaults, Connection lists,
 *     origin- and absolute-form targets, query split, leading empty lines, trimmed values,
 *     obs-text, Content-Length, Transfer-Encoding: chunked, Expect: 100-continue, header lookup,
 *     a head followed by body bytes or by the next request.
 *  2. Every valid head fed one byte at a time (a fresh heap buffer of exactly the bytes so far
 *     each time, so ASan sees any read past them): 0 until the last byte, then the same answer
 *     as all at once.
 *  3. Errors with their exact status, all at once and byte by byte; byte-level errors (bare LF,
 *     bare CR, NUL, control bytes) as soon as the bad byte is in; the max_head boundaries
 *     (414 against 431).
 *  4. Chunked bodies decoded in place, all at once and with the length growing a byte per call:
 *     extensions, hex case, trailers, 100k one-byte chunks, every framing error, the sizes, and
 *     c->raw ending exactly at the message's end (what follows is left alone). */
#include "serve/http1.h"
#include "test_http1_same.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_check.h"

#define MAX_HEAD 8192
#define MAX_BODY (1u << 20)

/* a literal with its length, embedded NULs included */
#define B(s) s, sizeof(s) - 1

static char *dup_exact(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    if (!p) abort();
    memcpy(p, s, n);
    return p;
}

/* ---- heads ----------------------------------------------------------------------------------- */

static long parse_once(const char *buf, size_t len, size_t max_head, uint64_t max_body,
                       ifd_http_head *h, const char **why) {
    size_t scanned = 0;
    *why = NULL;
    return ifd_http_parse_head(buf, len, &scanned, max_head, max_body, h, why);
}

/* Feed text[0, len) one byte at a time, each call on a fresh buffer of exactly the bytes so far.
 * Returns the first nonzero answer (0 if none) and in *at the length it came at; *last is the
 * buffer of that call (the caller frees it), *h its head. */
static long parse_bytewise(const char *text, size_t len, size_t max_head, uint64_t max_body,
                           ifd_http_head *h, const char **why, size_t *at, char **last) {
    size_t scanned = 0;
    *last = NULL;
    *why = NULL;
    for (size_t n = 1; n <= len; n++) {
        char *buf = dup_exact(text, n);
        long rc = ifd_http_parse_head(buf, n, &scanned, max_head, max_body, h, why);
        if (rc || n == len) {
            *at = n;
            *last = buf;
            return rc;
        }
        free(buf);
        if (scanned > n) return -999; /* never */
    }
    *at = 0;
    return 0;
}

#define NONE ((const char *)1) /* no query expected */

typedef struct {
    const char *name;
    const char *text;
    size_t len;
    size_t head_len; /* 0: all of text */
    int method;
    const char *path;
    const char *query; /* NONE: NULL expected */
    int minor;
    bool keep_alive, chunked, expect;
    int64_t content_length;
    size_t n_headers;
} valid_case;

static const valid_case valid[] = {
    {"get", B("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, IFD_HTTP_GET, "/", NONE, 1, true, false,
     false, -1, 1},
    {"get no headers", B("GET /v2/health/ready HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET,
     "/v2/health/ready", NONE, 1, true, false, false, -1, 0},
    {"post cl", B("POST /v2/models/m/infer HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n"), 0,
     IFD_HTTP_POST, "/v2/models/m/infer", NONE, 1, true, false, false, 12, 2},
    {"http/1.0 default close", B("GET / HTTP/1.0\r\n\r\n"), 0, IFD_HTTP_GET, "/", NONE, 0, false,
     false, false, -1, 0},
    {"http/1.0 keep-alive", B("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0, IFD_HTTP_GET,
     "/", NONE, 0, true, false, false, -1, 1},
    {"http/1.0 Keep-Alive case", B("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n"), 0,
     IFD_HTTP_GET, "/", NONE, 0, true, false, false, -1, 1},
    {"http/1.1 close", B("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), 0, IFD_HTTP_GET, "/", NONE,
     1, false, false, false, -1, 1},
    {"http/1.1 close in list", B("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n"), 0,
     IFD_HTTP_GET, "/", NONE, 1, false, false, false, -1, 1},
    {"http/1.1 CLOSE spaced list", B("GET / HTTP/1.1\r\nConnection: te ,  CLOSE ,x\r\n\r\n"), 0,
     IFD_HTTP_GET, "/", NONE, 1, false, false, false, -1, 1},
    {"http/1.0 keep-alive in list", B("GET / HTTP/1.0\r\nConnection: upgrade, keep-alive\r\n\r\n"),
     0, IFD_HTTP_GET, "/", NONE, 0, true, false, false, -1, 1},
    {"close beats keep-alive", B("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), 0,
     IFD_HTTP_GET, "/", NONE, 0, false, false, false, -1, 1},
    {"connection other", B("GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n"), 0, IFD_HTTP_GET, "/",
     NONE, 1, true, false, false, -1, 1},
    {"close-ish token is not close", B("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n"), 0,
     IFD_HTTP_GET, "/", NONE, 1, true, false, false, -1, 1},
    {"absolute-form", B("GET http://host:8000/v2/x?y=1 HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET, "/v2/x",
     "y=1", 1, true, false, false, -1, 0},
    {"absolute-form no path", B("GET http://host HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET, "/", NONE, 1,
     true, false, false, -1, 0},
    {"absolute-form no path, query", B("GET http://host:1?a=b/c HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET,
     "/", "a=b/c", 1, true, false, false, -1, 0},
    {"absolute-form https upper", B("GET HTTPS://h.example/p/q HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET,
     "/p/q", NONE, 1, true, false, false, -1, 0},
    {"query", B("GET /v2/models?x=1&y=2 HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET, "/v2/models",
     "x=1&y=2", 1, true, false, false, -1, 0},
    {"empty query", B("GET /a? HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET, "/a", "", 1, true, false, false,
     -1, 0},
    {"query with ?", B("GET /a?b?c HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET, "/a", "b?c", 1, true, false,
     false, -1, 0},
    {"leading empty lines", B("\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"), 0, IFD_HTTP_GET, "/x",
     NONE, 1, true, false, false, -1, 1},
    {"values trimmed, tabs", B("GET / HTTP/1.1\r\nA:  \t b c \t \r\nB:\r\nC:x\r\n\r\n"), 0,
     IFD_HTTP_GET, "/", NONE, 1, true, false, false, -1, 3},
    {"obs-text in value", B("GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9 \xff\x80\r\n\r\n"), 0,
     IFD_HTTP_GET, "/", NONE, 1, true, false, false, -1, 1},
    {"content-length 0", B("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0, IFD_HTTP_POST, "/",
     NONE, 1, true, false, false, 0, 1},
    {"content-length leading zeros",
     B("POST / HTTP/1.1\r\ncontent-length:  0000000000000000000000000000005 \r\n\r\n"), 0,
     IFD_HTTP_POST, "/", NONE, 1, true, false, false, 5, 1},
    {"content-length = max_body", B("POST / HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n"), 0,
     IFD_HTTP_POST, "/", NONE, 1, true, false, false, 1048576, 1},
    {"chunked", B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, IFD_HTTP_POST, "/",
     NONE, 1, true, true, false, -1, 1},
    {"chunked case", B("POST / HTTP/1.1\r\ntransfer-encoding:   CHUNKED \r\n\r\n"), 0,
     IFD_HTTP_POST, "/", NONE, 1, true, true, false, -1, 1},
    {"expect 100-continue",
     B("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"), 0, IFD_HTTP_POST,
     "/", NONE, 1, true, false, true, 3, 2},
    {"expect case", B("POST / HTTP/1.1\r\nexpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"), 0,
     IFD_HTTP_POST, "/", NONE, 1, true, false, true, 3, 2},
    {"expect ignored in 1.0",
     B("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"), 0, IFD_HTTP_POST,
     "/", NONE, 0, false, false, false, 3, 2},
    {"head then body", B("POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), 39, IFD_HTTP_POST,
     "/a", NONE, 1, true, false, false, 5, 1},
    {"head then partial body", B("POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe"), 39,
     IFD_HTTP_POST, "/a", NONE, 1, true, false, false, 5, 1},
    {"head then body with CRLF", B("POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\n"), 39,
     IFD_HTTP_POST, "/a", NONE, 1, true, false, false, 4, 1},
    {"pipelined", B("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), 19, IFD_HTTP_GET, "/a", NONE,
     1, true, false, false, -1, 0},
    {"head then bytes not a head", B("GET /a HTTP/1.1\r\n\r\n\n\x00\r\x01"), 19, IFD_HTTP_GET, "/a",
     NONE, 1, true, false, false, -1, 0},
    {"HEAD", B("HEAD / HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_HEAD, "/", NONE, 1, true, false, false, -1,
     0},
    {"PUT", B("PUT /x HTTP/1.1\r\nContent-Length: 1\r\n\r\n"), 0, IFD_HTTP_PUT, "/x", NONE, 1, true,
     false, false, 1, 1},
    {"DELETE", B("DELETE /x HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_DELETE, "/x", NONE, 1, true, false,
     false, -1, 0},
    {"OPTIONS", B("OPTIONS / HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_OPTIONS, "/", NONE, 1, true, false,
     false, -1, 0},
    {"PATCH", B("PATCH / HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_PATCH, "/", NONE, 1, true, false, false,
     -1, 0},
    {"CONNECT", B("CONNECT /h:443 HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_CONNECT, "/h:443", NONE, 1, true,
     false, false, -1, 0},
    {"TRACE", B("TRACE / HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_TRACE, "/", NONE, 1, true, false, false,
     -1, 0},
    {"tchar header names",
     B("GET / HTTP/1.1\r\nX-a_b.c!#$%&'*+^`|~9: v\r\nHost: h\r\nUser-Agent: curl/8 (x; y)\r\n\r\n"),
     0, IFD_HTTP_GET, "/", NONE, 1, true, false, false, -1, 3},
    {"target chars", B("GET /a%20b/~x;p=1,2@:!$&'()*+=-._ HTTP/1.1\r\n\r\n"), 0, IFD_HTTP_GET,
     "/a%20b/~x;p=1,2@:!$&'()*+=-._", NONE, 1, true, false, false, -1, 0},
};

static void test_valid_heads(void) {
    for (size_t k = 0; k < sizeof valid / sizeof valid[0]; k++) {
        const valid_case *v = &valid[k];
        size_t want = v->head_len ? v->head_len : v->len;
        char *buf = dup_exact(v->text, v->len);
        ifd_http_head h;
        const char *why;
        long rc = parse_once(buf, v->len, MAX_HEAD, MAX_BODY, &h, &why);
        if (rc != (long)want) {
            result(false, "head %s: returned %ld (%s), want %zu", v->name, rc, why ? why : "",
                   want);
            free(buf);
            continue;
        }
        bool q_ok = v->query == NONE ? h.query == NULL
                                     : h.query && h.query_len == strlen(v->query) &&
                                           !memcmp(h.query, v->query, h.query_len);
        bool ptrs = inside(h.path, h.path_len, buf, want) &&
                    (!h.query || inside(h.query, h.query_len, buf, want));
        for (size_t i = 0; i < h.n_headers; i++)
            ptrs &= inside(h.headers[i].name, h.headers[i].name_len, buf, want) &&
                    inside(h.headers[i].value, h.headers[i].value_len, buf, want);
        result(h.method == v->method && h.path_len == strlen(v->path) &&
                   !memcmp(h.path, v->path, h.path_len) && q_ok && h.version_minor == v->minor &&
                   h.keep_alive == v->keep_alive && h.chunked == v->chunked &&
                   h.expect_continue == v->expect && h.content_length == v->content_length &&
                   h.n_headers == v->n_headers && ptrs,
               "head %s: method %d path '%.*s' query %s%.*s v1.%d ka %d chunked %d expect %d "
               "cl %lld headers %zu, pointers into the head %d",
               v->name, h.method, (int)h.path_len, h.path, h.query ? "'" : "(none)",
               (int)h.query_len, h.query ? h.query : "", h.version_minor, h.keep_alive, h.chunked,
               h.expect_continue, (long long)h.content_length, h.n_headers, ptrs);

        /* the same again (a parse leaves nothing behind) */
        ifd_http_head h2;
        long rc2 = parse_once(buf, v->len, MAX_HEAD, MAX_BODY, &h2, &why);
        check(rc2 == rc && same_head(&h, buf, &h2, buf), v->name, "second parse differs");

        /* byte by byte */
        size_t at = 0;
        char *last;
        long rcb = parse_bytewise(v->text, v->len, MAX_HEAD, MAX_BODY, &h2, &why, &at, &last);
        result(rcb == rc && at == want && same_head(&h, buf, &h2, last),
               "head %s byte by byte: %ld at %zu bytes (want %ld at %zu), same head", v->name, rcb,
               at, rc, want);
        free(last);

        /* max_head exactly the head's length is enough; one less is not */
        rc2 = parse_once(buf, v->len, want, MAX_BODY, &h2, &why);
        long rc3 = parse_once(buf, v->len, want - 1, MAX_BODY, &h2, &why);
        result(rc2 == rc && (rc3 == -431 || rc3 == -414),
               "head %s: max_head %zu -> %ld, %zu -> %ld", v->name, want, rc2, want - 1, rc3);
        free(buf);
    }
}

static void test_find_header(void) {
    static const char text[] =
        "GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nAccept: */*\r\nx-dup:  2 \r\nX-DUP: 3\r\n\r\n";
    ifd_http_head h;
    const char *why;
    long rc = parse_once(text, sizeof text - 1, MAX_HEAD, MAX_BODY, &h, &why);
    check(rc == (long)(sizeof text - 1), "find_header: parse", why);
    int n = -1;
    const ifd_http_header *x = ifd_http_find_header(&h, "x-dup", &n);
    check(x == &h.headers[1] && n == 3 && x->value_len == 1 && x->value[0] == '1',
          "find_header: first of three duplicates, count 3", NULL);
    x = ifd_http_find_header(&h, "HOST", &n);
    check(x == &h.headers[0] && n == 1 && x->value_len == 1 && x->value[0] == 'a',
          "find_header: case-insensitive", NULL);
    x = ifd_http_find_header(&h, "accept", NULL);
    check(x == &h.headers[2] && x->value_len == 3 && !memcmp(x->value, "*/*", 3),
          "find_header: count may be NULL", NULL);
    n = -1;
    x = ifd_http_find_header(&h, "content-length", &n);
    check(!x && n == 0, "find_header: missing -> NULL, count 0", NULL);
    x = ifd_http_find_header(&h, "x-du", &n);
    check(!x && n == 0, "find_header: a prefix does not match", NULL);
    x = ifd_http_find_header(&h, "x-dupe", &n);
    check(!x && n == 0, "find_header: a longer name does not match", NULL);
    x = ifd_http_find_header(&h, "X-Dup", &n);
    check(x && n == 3 && h.headers[3].value_len == 1 && h.headers[3].value[0] == '2',
          "find_header: duplicate value trimmed", NULL);
}

static void test_pipelined_heads(void) {
    static const char text[] = "\r\nPOST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\r\n"
                               "GET /b?q HTTP/1.1\r\n\r\nGET /c HTTP/1.0\r\n\r\n";
    char *buf = dup_exact(text, sizeof text - 1);
    size_t len = sizeof text - 1, off = 0;
    ifd_http_head h;
    const char *why;
    long rc = parse_once(buf, len, MAX_HEAD, MAX_BODY, &h, &why);
    check(rc == 41 && h.content_length == 3 && h.path_len == 2 && h.path == buf + 7,
          "pipelined: first head (with a leading empty line)", why);
    off = (size_t)rc + 3; /* its body; the CRLF after it counts as an empty line of the next */
    rc = parse_once(buf + off, len - off, MAX_HEAD, MAX_BODY, &h, &why);
    check(rc == 23 && h.method == IFD_HTTP_GET && h.path == buf + off + 6 && h.query_len == 1 &&
              h.query[0] == 'q',
          "pipelined: second head after a stray CRLF", why);
    off += (size_t)rc;
    rc = parse_once(buf + off, len - off, MAX_HEAD, MAX_BODY, &h, &why);
    check(rc == 19 && off + 19 == len && h.version_minor == 0 && !h.keep_alive,
          "pipelined: third head ends the buffer", why);
    free(buf);
}

/* ---- head errors ----------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *text;
    size_t len;
    long want;         /* -status */
    size_t max_head;   /* 0: MAX_HEAD */
    uint64_t max_body; /* 0: MAX_BODY */
    size_t early;      /* > 0: byte by byte, the error comes with this many bytes in */
} error_case;

static const error_case errors[] = {
    {"bare LF in request line", B("GET / HTTP/1.1\nHost: a\r\n\r\n"), -400, 0, 0, 15},
    {"bare LF in target", B("GET /a\nb HTTP/1.1\r\n\r\n"), -400, 0, 0, 7},
    {"bare LF first", B("\nGET / HTTP/1.1\r\n\r\n"), -400, 0, 0, 1},
    {"bare LF after empty line", B("\r\n\nGET / HTTP/1.1\r\n\r\n"), -400, 0, 0, 3},
    {"bare LF in header", B("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), -400, 0, 0, 24},
    {"bare LF ends head", B("GET / HTTP/1.1\r\nHost: a\r\n\n"), -400, 0, 0, 26},
    {"LF LF ends head", B("GET / HTTP/1.1\n\n"), -400, 0, 0, 15},
    {"bare CR in request line", B("GET / HTTP/1.1\rHost: a\r\n\r\n"), -400, 0, 0, 16},
    {"bare CR in header", B("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), -400, 0, 0, 22},
    {"CR CR LF", B("GET / HTTP/1.1\r\r\n\r\n"), -400, 0, 0, 16},
    {"bare CR at end of head", B("GET / HTTP/1.1\r\nA: b\r\n\rX"), -400, 0, 0, 24},
    {"NUL in request line", B("GET /a\0b HTTP/1.1\r\n\r\n"), -400, 0, 0, 7},
    {"NUL in method", B("G\0T / HTTP/1.1\r\n\r\n"), -400, 0, 0, 2},
    {"NUL in header value", B("GET / HTTP/1.1\r\nA: x\0y\r\n\r\n"), -400, 0, 0, 21},
    {"NUL in header name", B("GET / HTTP/1.1\r\nA\0: x\r\n\r\n"), -400, 0, 0, 18},
    {"control byte in value", B("GET / HTTP/1.1\r\nA: \x01\r\n\r\n"), -400, 0, 0, 20},
    {"ESC in request line", B("GET /\x1b HTTP/1.1\r\n\r\n"), -400, 0, 0, 6},
    {"DEL in value", B("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n"), -400, 0, 0, 21},
    {"DEL in target", B("GET /\x7f HTTP/1.1\r\n\r\n"), -400, 0, 0, 6},
    {"vertical tab", B("GET / HTTP/1.1\r\nA:\vb\r\n\r\n"), -400, 0, 0, 19},
    {"form feed", B("GET / HTTP/1.1\r\nA: b\f\r\n\r\n"), -400, 0, 0, 21},
    {"unknown method", B("FOO / HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"lowercase get", B("get / HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"Get", B("Get / HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"GETS", B("GETS / HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"method with slash", B("GE/T / HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"leading space", B(" GET / HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"tab as separator", B("GET\t/ HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"two spaces", B("GET  / HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"HTTP/9.9", B("GET / HTTP/9.9\r\n\r\n"), -505, 0, 0, 0},
    {"HTTP/1.2", B("GET / HTTP/1.2\r\n\r\n"), -505, 0, 0, 0},
    {"HTTP/2.0", B("GET / HTTP/2.0\r\n\r\n"), -505, 0, 0, 0},
    {"HTTP/0.9", B("GET / HTTP/0.9\r\n\r\n"), -505, 0, 0, 0},
    {"HTTP/1.1x", B("GET / HTTP/1.1x\r\n\r\n"), -400, 0, 0, 0},
    {"HTTP/1.10", B("GET / HTTP/1.10\r\n\r\n"), -400, 0, 0, 0},
    {"HTTP/1", B("GET / HTTP/1\r\n\r\n"), -400, 0, 0, 0},
    {"http/1.1 lowercase", B("GET / http/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"HTTP/a.1", B("GET / HTTP/a.1\r\n\r\n"), -400, 0, 0, 0},
    {"HTTP/1,1", B("GET / HTTP/1,1\r\n\r\n"), -400, 0, 0, 0},
    {"missing version", B("GET /\r\n\r\n"), -400, 0, 0, 0},
    {"empty version", B("GET / \r\n\r\n"), -400, 0, 0, 0},
    {"trailing space", B("GET / HTTP/1.1 \r\n\r\n"), -400, 0, 0, 0},
    {"method only", B("GET\r\n\r\n"), -400, 0, 0, 0},
    {"space before colon", B("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400, 0, 0, 0},
    {"tab before colon", B("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), -400, 0, 0, 0},
    {"no colon", B("GET / HTTP/1.1\r\nHost a\r\n\r\n"), -400, 0, 0, 0},
    {"obs-fold", B("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), -400, 0, 0, 0},
    {"obs-fold tab", B("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n"), -400, 0, 0, 0},
    {"fold as first header", B("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), -400, 0, 0, 0},
    {"empty header name", B("GET / HTTP/1.1\r\n: x\r\n\r\n"), -400, 0, 0, 0},
    {"bad char in name", B("GET / HTTP/1.1\r\nA(b): x\r\n\r\n"), -400, 0, 0, 0},
    {"obs-text in name", B("GET / HTTP/1.1\r\nA\xc3\xa9: x\r\n\r\n"), -400, 0, 0, 0},
    {"target not /", B("GET a/b HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"target *", B("OPTIONS * HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"authority-form", B("CONNECT h:443 HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"target ?q", B("GET ?q HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"target #", B("GET /a#b HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"target space", B("GET /a b HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"target 0x80", B("GET /\x80 HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"target 0xff", B("GET /a\xff HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"target tab", B("GET /a\tb HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"http:/ not absolute", B("GET http:/x HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"ftp://", B("GET ftp://h/x HTTP/1.1\r\n\r\n"), -400, 0, 0, 0},
    {"duplicate content-length",
     B("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), -400, 0, 0, 0},
    {"duplicate content-length case",
     B("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-LENGTH: 6\r\n\r\n"), -400, 0, 0, 0},
    {"content-length negative", B("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), -400, 0, 0, 0},
    {"content-length plus", B("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"), -400, 0, 0, 0},
    {"content-length abc", B("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"), -400, 0, 0, 0},
    {"content-length empty", B("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), -400, 0, 0, 0},
    {"content-length spaces only", B("POST / HTTP/1.1\r\nContent-Length:   \r\n\r\n"), -400, 0, 0,
     0},
    {"content-length list", B("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), -400, 0, 0, 0},
    {"content-length inner space", B("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"), -400, 0, 0,
     0},
    {"content-length hex", B("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), -400, 0, 0, 0},
    {"content-length 30 digits",
     B("POST / HTTP/1.1\r\nContent-Length: 123456789012345678901234567890\r\n\r\n"), -413, 0, 0, 0},
    {"content-length 30 digits, max body unlimited",
     B("POST / HTTP/1.1\r\nContent-Length: 123456789012345678901234567890\r\n\r\n"), -413, 0,
     UINT64_MAX, 0},
    {"content-length past int64, max body unlimited",
     B("POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n"), -413, 0, UINT64_MAX, 0},
    {"content-length uint64 max",
     B("POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"), -413, 0, UINT64_MAX, 0},
    {"content-length > max_body", B("POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n"), -413, 0,
     0, 0},
    {"content-length > small max_body", B("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), -413, 0,
     10, 0},
    {"content-length + chunked",
     B("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), -400, 0, 0,
     0},
    {"chunked + content-length",
     B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), -400, 0, 0,
     0},
    {"TE gzip", B("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), -501, 0, 0, 0},
    {"TE gzip, chunked", B("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -501, 0,
     0, 0},
    {"TE chunked, gzip", B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), -501, 0,
     0, 0},
    {"TE identity", B("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"), -501, 0, 0, 0},
    {"TE empty", B("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n"), -501, 0, 0, 0},
    {"TE chunked;x", B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), -501, 0, 0, 0},
    {"TE chunked, chunked", B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
     -400, 0, 0, 0},
    {"two TE headers",
     B("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), -400,
     0, 0, 0},
    {"TE in HTTP/1.0", B("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400, 0, 0, 0},
    {"Expect: foo", B("POST / HTTP/1.1\r\nExpect: foo\r\n\r\n"), -417, 0, 0, 0},
    {"Expect: empty", B("POST / HTTP/1.1\r\nExpect:\r\n\r\n"), -417, 0, 0, 0},
    {"Expect: 100-continue, foo", B("POST / HTTP/1.1\r\nExpect: 100-continue, foo\r\n\r\n"), -417,
     0, 0, 0},
    {"Expect: foo in 1.0", B("POST / HTTP/1.0\r\nExpect: foo\r\n\r\n"), -417, 0, 0, 0},
    /* max_head: bytes past it are never looked at */
    {"request line over max_head, no CRLF", B("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), -414, 16,
     0, 16},
    {"request line over max_head, whole request", B("GET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n"),
     -414, 16, 0, 16},
    {"request line CR at max_head - 1", B("GET /abcdef HTTP/1.1\r\nHost: a\r\n\r\n"), -414, 21, 0,
     21},
    {"request line LF at max_head - 1", B("GET /abcdef HTTP/1.1\r\nHost: a\r\n\r\n"), -431, 22, 0,
     22},
    {"headers over max_head", B("GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
     -431, 32, 0, 32},
    {"complete head over max_head by one (final CR at max_head - 1)",
     B("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -431, 26, 0, 26},
    {"complete head over max_head by two", B("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -431, 25, 0, 25},
    {"complete head far over max_head", B("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -431, 18, 0, 18},
    {"bad byte past max_head", B("GET / HTTP/1.1\r\nHost: aaaaaaa\n"), -431, 20, 0, 20},
    {"bad byte past max_head in request line", B("GET /aaaaaaaaaaaa\0"), -414, 10, 0, 10},
    {"CRLF flood", B("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"), -414, 16, 0, 16},
    {"CRLF flood, odd max_head", B("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"), -414, 15, 0, 15},
    {"leading empty lines count", B("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), -431, 21, 0, 21},
};

static void test_errors(void) {
    for (size_t k = 0; k < sizeof errors / sizeof errors[0]; k++) {
        const error_case *e = &errors[k];
        size_t mh = e->max_head ? e->max_head : MAX_HEAD;
        uint64_t mb = e->max_body ? e->max_body : MAX_BODY;
        char *buf = dup_exact(e->text, e->len);
        ifd_http_head h;
        const char *why;
        long rc = parse_once(buf, e->len, mh, mb, &h, &why);
        result(rc == e->want && why && *why, "error %s: %ld (%s), want %ld", e->name, rc,
               why ? why : "no message", e->want);
        /* the same after the head is complete byte by byte, and as early as the bad byte */
        size_t at = 0;
        char *last;
        long rcb = parse_bytewise(e->text, e->len, mh, mb, &h, &why, &at, &last);
        free(last);
        size_t want_at = e->early ? e->early : e->len;
        if (!e->early) { /* found when the head is complete: at its final LF */
            const char *end = NULL;
            for (size_t i = 0; i + 3 < e->len && !end; i++)
                if (!memcmp(e->text + i, "\r\n\r\n", 4)) end = e->text + i + 4;
            if (end) want_at = (size_t)(end - e->text);
        }
        result(rcb == e->want && at == want_at,
               "error %s byte by byte: %ld at %zu bytes, want %ld at %zu", e->name, rcb, at,
               e->want, want_at);
        /* the prefix that holds the bad byte is already an error, not 0 */
        if (e->early) {
            rc = parse_once(buf, e->early, mh, mb, &h, &why);
            result(rc == e->want, "error %s with %zu bytes in: %ld", e->name, e->early, rc);
            if (e->early > 1) {
                rc = parse_once(buf, e->early - 1, mh, mb, &h, &why);
                result(rc == 0, "error %s: one byte before it, 0 (%ld)", e->name, rc);
            }
        }
        free(buf);
    }
}

/* Known methods the server refuses still parse, with their codes. */
static void test_methods(void) {
    static const struct {
        const char *m;
        int code;
    } k[] = {
        {"GET", IFD_HTTP_GET},     {"POST", IFD_HTTP_POST},       {"HEAD", IFD_HTTP_HEAD},
        {"PUT", IFD_HTTP_PUT},     {"DELETE", IFD_HTTP_DELETE},   {"OPTIONS", IFD_HTTP_OPTIONS},
        {"PATCH", IFD_HTTP_PATCH}, {"CONNECT", IFD_HTTP_CONNECT}, {"TRACE", IFD_HTTP_TRACE},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        char text[64];
        int n = snprintf(text, sizeof text, "%s /m HTTP/1.1\r\n\r\n", k[i].m);
        ifd_http_head h;
        const char *why;
        long rc = parse_once(text, (size_t)n, MAX_HEAD, MAX_BODY, &h, &why);
        result(rc == n && h.method == k[i].code, "method %s -> %d (rc %ld)", k[i].m, h.method, rc);
    }
}

/* CR as the last byte so far: 0, wherever it is. */
static void test_cr_last(void) {
    static const char *const t[] = {
        "\r",
        "\r\n\r",
        "GET / HTTP/1.1\r",
        "GET / HTTP/1.1\r\nA: b\r",
        "GET / HTTP/1.1\r\n\r",
        "GET / HTTP/1.1\r\nA: b\r\n\r",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t len = strlen(t[i]), scanned = 0;
        char *buf = dup_exact(t[i], len);
        ifd_http_head h;
        const char *why = NULL;
        long rc = ifd_http_parse_head(buf, len, &scanned, MAX_HEAD, MAX_BODY, &h, &why);
        result(rc == 0 && scanned <= len, "CR last (case %zu): 0 (%ld %s), scanned %zu of %zu", i,
               rc, why ? why : "", scanned, len);
        free(buf);
    }
    /* and an empty buffer */
    size_t scanned = 0;
    ifd_http_head h;
    const char *why = NULL;
    check(ifd_http_parse_head("", 0, &scanned, MAX_HEAD, MAX_BODY, &h, &why) == 0 && !scanned,
          "empty buffer: 0", why);
}

/* 64 headers fit; a 65th is 431. */
static void test_header_count(void) {
    for (int n = 63; n <= 66; n++) {
        char text[4096];
        size_t len = (size_t)snprintf(text, sizeof text, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(text + len, sizeof text - len, "H%d: %d\r\n", i, i);
        len += (size_t)snprintf(text + len, sizeof text - len, "\r\n");
        ifd_http_head h;
        const char *why;
        long rc = parse_once(text, len, MAX_HEAD, MAX_BODY, &h, &why);
        long want = n <= IFD_HTTP_MAX_HEADERS ? (long)len : -431;
        result(rc == want && (rc < 0 || h.n_headers == (size_t)n), "%d headers: %ld, want %ld", n,
               rc, want);
        if (rc > 0) {
            int count;
            const ifd_http_header *x = ifd_http_find_header(&h, "h62", &count);
            check(x && count == 1 && x->value_len == 2 && !memcmp(x->value, "62", 2),
                  "find_header among 64", NULL);
        }
    }
}

/* Scanning resumes where it left off: bytes arriving in uneven pieces give the same answer, and
 * a big head arriving in pieces is scanned once (the *scanned it reports never goes back). */
static void test_pieces(void) {
    static char text[MAX_HEAD];
    size_t len = (size_t)snprintf(text, sizeof text, "POST /v2/models/m/infer HTTP/1.1\r\n");
    for (int i = 0; i < 60; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "X-Pad-%d: %080d\r\n", i, i);
    len += (size_t)snprintf(text + len, sizeof text - len, "Content-Length: 7\r\n\r\n");
    ifd_http_head h, h2;
    const char *why;
    long all = parse_once(text, len, MAX_HEAD, MAX_BODY, &h, &why);
    check(all == (long)len && h.n_headers == 61 && h.content_length == 7, "big head all at once",
          why);
    for (size_t step = 2; step < 700; step = step * 3 + 1) {
        size_t scanned = 0, prev = 0, n = 0;
        long rc = 0;
        bool monotone = true;
        while (!rc && n < len) {
            n = n + step < len ? n + step : len;
            rc = ifd_http_parse_head(text, n, &scanned, MAX_HEAD, MAX_BODY, &h2, &why);
            monotone &= scanned >= prev && scanned <= n;
            prev = scanned;
        }
        result(rc == all && same_head(&h, text, &h2, text) && monotone,
               "big head in pieces of %zu: %ld, scanned never goes back", step, rc);
    }
}

/* ---- chunked --------------------------------------------------------------------------------- */

typedef struct {
    int rc;
    size_t raw, out;
    char *body; /* decoded body (malloc'd copy of body[0, out)) */
    const char *why;
} decoded;

static decoded decode_all(const char *raw, size_t len, uint64_t max_body) {
    decoded d = {0};
    char *buf = dup_exact(raw, len);
    ifd_http_chunked c = {0};
    d.rc = ifd_http_chunked_decode(&c, buf, len, max_body, &d.why);
    d.raw = c.raw;
    d.out = c.out;
    d.body = dup_exact(buf, c.out);
    if (d.rc == 1) { /* done: a second call answers the same and touches nothing */
        ifd_http_chunked c2 = c;
        const char *why = NULL;
        int rc2 = ifd_http_chunked_decode(&c2, buf, len, max_body, &why);
        if (rc2 != 1 || memcmp(&c, &c2, sizeof c) || memcmp(buf + c.raw, raw + c.raw, len - c.raw))
            d.rc = -999;
    }
    free(buf);
    return d;
}

/* The length grows by one per call; exact: the buffer is reallocated to exactly the bytes in
 * (ASan catches a read past them). */
static decoded decode_bytewise(const char *raw, size_t len, uint64_t max_body, bool exact) {
    decoded d = {0};
    char *buf = exact ? NULL : dup_exact(raw, len);
    ifd_http_chunked c = {0};
    for (size_t n = 1; n <= len; n++) {
        if (exact) {
            buf = realloc(buf, n);
            if (!buf) abort();
            buf[n - 1] = raw[n - 1];
        }
        d.rc = ifd_http_chunked_decode(&c, buf, n, max_body, &d.why);
        if (c.out > c.raw || c.raw > n) d.rc = -998;
        if (d.rc) break;
    }
    d.raw = c.raw;
    d.out = c.out;
    d.body = buf ? dup_exact(buf, c.out) : dup_exact("", 0);
    free(buf);
    return d;
}

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int want;          /* 1, 0 or -status */
    const char *body;  /* when want == 1 */
    size_t msg_len;    /* when want == 1: c->raw (0: all of raw) */
    uint64_t max_body; /* 0: MAX_BODY */
} chunk_case;

static const chunk_case chunks[] = {
    {"simple", B("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 1, "hello world", 0, 0},
    {"empty body", B("0\r\n\r\n"), 1, "", 0, 0},
    {"000 last chunk", B("000\r\n\r\n"), 1, "", 0, 0},
    {"leading zeros", B("0005\r\nhello\r\n0\r\n\r\n"), 1, "hello", 0, 0},
    {"extensions", B("5;a=b\r\nhello\r\n1;x;y=\"q;\"\r\n!\r\n0;last\r\n\r\n"), 1, "hello!", 0, 0},
    {"BWS before ;", B("5 ;a=b\r\nhello\r\n0\t ; z\r\n\r\n"), 1, "hello", 0, 0},
    {"obs-text in extension", B("1;n=\xc3\xa9\r\nx\r\n0\r\n\r\n"), 1, "x", 0, 0},
    {"uppercase hex", B("A\r\n0123456789\r\n1F\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n"), 1,
     "01234567890123456789abcdefghijklmnopqrstu", 0, 0},
    {"lowercase hex", B("a\r\n0123456789\r\n0\r\n\r\n"), 1, "0123456789", 0, 0},
    {"data with CRLF inside", B("4\r\n\r\n\r\n\r\n0\r\n\r\n"), 1, "\r\n\r\n", 0, 0},
    {"data with NUL", B("3\r\na\0b\r\n0\r\n\r\n"), 1, "a\0b", 0, 0},
    {"trailers", B("3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\t\r\n\r\n"), 1, "abc", 0, 0},
    {"pipelined after", B("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 1, "abc", 13, 0},
    {"pipelined after trailer", B("1\r\nz\r\n0\r\nT: v\r\n\r\n0\r\n\r\n"), 1, "z", 17, 0},
    {"body = max_body", B("5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n"), 1, "abcdefghij", 0, 10},
    {"incomplete size", B("5"), 0, NULL, 0, 0},
    {"incomplete data", B("5\r\nhel"), 0, NULL, 0, 0},
    {"incomplete after data", B("5\r\nhello\r"), 0, NULL, 0, 0},
    {"incomplete last chunk", B("5\r\nhello\r\n0\r\n"), 0, NULL, 0, 0},
    {"incomplete trailer", B("0\r\nA: b\r\n"), 0, NULL, 0, 0},
    {"incomplete final CR", B("0\r\n\r"), 0, NULL, 0, 0},
    {"missing CRLF after data", B("5\r\nhelloX\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"CR then not LF after data", B("5\r\nhello\rX0\r\n\r\n"), -400, NULL, 0, 0},
    {"bare LF after data", B("5\r\nhello\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"data longer than size", B("3\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"bad hex", B("g\r\nx\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"hex then junk", B("5x\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"0x prefix", B("0x5\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"negative size", B("-5\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"size line no digits", B("\r\n"), -400, NULL, 0, 0},
    {"size line only extension", B(";a=b\r\n"), -400, NULL, 0, 0},
    {"size line leading space", B(" 5\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"space then junk", B("5 x\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"space then digit", B("5 6\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"trailing space", B("5 \r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"bare LF in size line", B("5\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"bare CR in size line", B("5\rhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"bare LF in extension", B("5;a\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"NUL in extension", B("5;a\0\r\nhello\r\n0\r\n\r\n"), -400, NULL, 0, 0},
    {"bare LF after last chunk", B("0\r\n\n"), -400, NULL, 0, 0},
    {"bare LF in trailer", B("0\r\nA: b\n\r\n"), -400, NULL, 0, 0},
    {"control byte in trailer", B("0\r\nA: \x01\r\n\r\n"), -400, NULL, 0, 0},
    {"bare CR in trailer", B("0\r\nA: b\rc\r\n\r\n"), -400, NULL, 0, 0},
    {"oversize size", B("ffffffffffffffffff\r\n"), -413, NULL, 0, 0},
    {"oversize size, unlimited body", B("ffffffffffffffffff\r\n"), -413, NULL, 0, UINT64_MAX},
    {"17 hex digits, unlimited body", B("10000000000000000\r\n"), -413, NULL, 0, UINT64_MAX},
    {"chunk over max_body", B("b\r\nhello world\r\n0\r\n\r\n"), -413, NULL, 0, 10},
    {"sum over max_body", B("5\r\nabcde\r\n6\r\nfghijk\r\n0\r\n\r\n"), -413, NULL, 0, 10},
    {"sum over max_body, unlimited-ish", B("1\r\na\r\nfffffffffffffffe\r\n"), -413, NULL, 0,
     UINT64_MAX - 1},
};

static void test_chunked_cases(void) {
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        const chunk_case *t = &chunks[k];
        uint64_t mb = t->max_body ? t->max_body : MAX_BODY;
        size_t blen = t->body ? strlen(t->body) : 0;
        if (t->body && !strcmp(t->name, "data with NUL")) blen = 3;
        size_t msg = t->msg_len ? t->msg_len : t->len;
        decoded d = decode_all(t->raw, t->len, mb);
        bool ok = d.rc == t->want;
        if (t->want == 1) ok &= d.out == blen && !memcmp(d.body, t->body, blen) && d.raw == msg;
        if (t->want == 0) ok &= d.raw == t->len;
        if (t->want < 0) ok &= d.why && *d.why;
        result(ok, "chunked %s: %d (%s) out %zu raw %zu, want %d", t->name, d.rc,
               d.why ? d.why : "", d.out, d.raw, t->want);
        decoded b = decode_bytewise(t->raw, t->len, mb, true);
        ok = b.rc == d.rc && b.out == d.out && b.raw == d.raw && !memcmp(b.body, d.body, d.out);
        result(ok, "chunked %s byte by byte: %d out %zu raw %zu", t->name, b.rc, b.out, b.raw);
        free(d.body);
        free(b.body);
    }
}

static void test_chunked_limits(void) {
    /* a size line of 1024 bytes is allowed; 1025 is not */
    char line[1100 + 64];
    for (int n = 1023; n <= 1026; n++) {
        memset(line, '0', (size_t)n);
        line[n - 1] = '1';
        memcpy(line + n, "\r\nx\r\n0\r\n\r\n", 10);
        decoded d = decode_all(line, (size_t)n + 10, MAX_BODY);
        int want = n <= 1024 ? 1 : -400;
        result(d.rc == want && (want < 0 || (d.out == 1 && d.body[0] == 'x')),
               "chunk size line of %d digits: %d (%s), want %d", n, d.rc, d.why ? d.why : "", want);
        free(d.body);
    }
    /* extension makes the line long */
    memcpy(line, "1;", 2);
    memset(line + 2, 'a', 1100);
    memcpy(line + 1102, "\r\nx\r\n0\r\n\r\n", 10);
    decoded d = decode_all(line, 1112, MAX_BODY);
    check(d.rc == -400, "chunk line over 1024 bytes (extension)", d.why);
    free(d.body);
    d = decode_bytewise(line, 1112, MAX_BODY, false);
    check(d.rc == -400 && d.raw <= 1030, "chunk line over 1024 bytes, byte by byte", d.why);
    free(d.body);

    /* trailers: up to 16 KiB; one huge trailer line is 431 */
    size_t tl = 3 + 3 + 20000 + 4;
    char *t = malloc(tl);
    memcpy(t, "0\r\nX: ", 6);
    memset(t + 6, 'a', 20000);
    memcpy(t + 20006, "\r\n\r\n", 4);
    d = decode_all(t, tl, MAX_BODY);
    check(d.rc == -431, "huge trailer: 431", d.why);
    free(d.body);
    d = decode_bytewise(t, tl, MAX_BODY, false);
    check(d.rc == -431 && d.raw <= 16 * 1024 + 16, "huge trailer byte by byte: 431 early", d.why);
    free(d.body);
    free(t);
    /* many short trailer lines add up too: 3300 lines of 5 bytes (and their CRLFs) */
    tl = 3 + 3300 * 7 + 2;
    t = malloc(tl);
    memcpy(t, "0\r\n", 3);
    for (size_t i = 0; i < 3300; i++) memcpy(t + 3 + i * 7, "Ab: c\r\n", 7);
    memcpy(t + tl - 2, "\r\n", 2);
    d = decode_all(t, tl, MAX_BODY);
    check(d.rc == -431, "3300 trailer lines: 431", d.why);
    free(d.body);
    d = decode_all(t, 3 + 3000 * 7, MAX_BODY);
    check(d.rc == 0, "3000 trailer lines: still reading", d.why);
    free(d.body);
    memcpy(t + 3 + 3000 * 7, "\r\n", 2);
    d = decode_all(t, 3 + 3000 * 7 + 2, MAX_BODY);
    check(d.rc == 1 && d.raw == 3 + 3000 * 7 + 2, "3000 trailer lines (15000 bytes): accepted",
          d.why);
    free(d.body);
    free(t);

    /* a trailer just under the cap is fine */
    tl = 3 + 3 + 16000 + 4;
    t = malloc(tl);
    memcpy(t, "0\r\nX: ", 6);
    memset(t + 6, 'b', 16000);
    memcpy(t + 16006, "\r\n\r\n", 4);
    d = decode_all(t, tl, MAX_BODY);
    check(d.rc == 1 && d.out == 0 && d.raw == tl, "16000-byte trailer accepted", d.why);
    free(d.body);
    free(t);
}

/* 100k one-byte chunks: the state machine loops, it does not recurse; in place, all at once and
 * with the length growing one byte per call. */
static void test_many_chunks(void) {
    const size_t n = 100000;
    size_t len = n * 6 + 5 + 6;
    char *raw = malloc(len);
    for (size_t i = 0; i < n; i++) {
        memcpy(raw + i * 6, "1\r\nx\r\n", 6);
        raw[i * 6 + 3] = (char)('a' + i % 26);
    }
    memcpy(raw + n * 6, "0\r\n\r\nGARBAG", 11);
    len = n * 6 + 5;
    size_t total = len + 6;
    for (int pass = 0; pass < 2; pass++) {
        decoded d =
            pass ? decode_bytewise(raw, total, MAX_BODY, false) : decode_all(raw, total, MAX_BODY);
        bool ok = d.rc == 1 && d.out == n && d.raw == len;
        for (size_t i = 0; ok && i < n; i++) ok = d.body[i] == (char)('a' + i % 26);
        result(ok, "100k one-byte chunks %s: %d out %zu raw %zu (want %zu)",
               pass ? "byte by byte" : "all at once", d.rc, d.out, d.raw, len);
        free(d.body);
    }
    /* the same count over max_body */
    decoded d = decode_all(raw, total, n - 1);
    check(d.rc == -413 && d.out == n - 1, "100k one-byte chunks over max_body: 413", d.why);
    free(d.body);
    free(raw);
}

/* A whole exchange: a head, its chunked body decoded in place right after it, the next request
 * untouched after the body. */
static void test_head_then_chunked(void) {
    static const char text[] = "POST /v2/models/m/infer HTTP/1.1\r\nHost: h\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"
                               "4;x=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nT: 1\r\n\r\n"
                               "GET /v2/health/live HTTP/1.1\r\n\r\n";
    size_t len = sizeof text - 1;
    char *buf = dup_exact(text, len);
    ifd_http_head h;
    const char *why;
    long rc = parse_once(buf, len, MAX_HEAD, MAX_BODY, &h, &why);
    check(rc > 0 && h.chunked && h.content_length == -1, "exchange: head", why);
    if (rc <= 0) {
        free(buf);
        return;
    }
    ifd_http_chunked c = {0};
    int r = ifd_http_chunked_decode(&c, buf + rc, len - (size_t)rc, MAX_BODY, &why);
    check(r == 1 && c.out == 7 && !memcmp(buf + rc, "{\"a\":1}", 7), "exchange: body in place",
          why);
    size_t next = (size_t)rc + c.raw;
    check(!memcmp(buf + next, "GET /v2/health/live", 19), "exchange: c->raw ends the message",
          NULL);
    rc = parse_once(buf + next, len - next, MAX_HEAD, MAX_BODY, &h, &why);
    check(rc == (long)(len - next) && h.path_len == 15, "exchange: the next head parses", why);
    free(buf);
}

int main(void) {
    test_valid_heads();
    test_find_header();
    test_pipelined_heads();
    test_methods();
    test_cr_last();
    test_header_count();
    test_pieces();
    test_errors();
    test_chunked_cases();
    test_chunked_limits();
    test_many_chunks();
    test_head_then_chunked();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
