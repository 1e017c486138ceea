/* HTTP/1.1 request framing (RFC 9112) without I/O: the request head, and chunked bodies decoded
 * in place. http.c feeds them the bytes of a connection's input buffer as they arrive.
 *
 * Strict where lenient parsing has let requests be smuggled or split: lines end in CRLF only
 * (a bare LF or CR is an error, not a line end), no NUL or other control byte in the head, no
 * whitespace before a header's colon, no obsolete line folding, one Content-Length of digits
 * only, Content-Length and Transfer-Encoding never together, and "chunked" the only transfer
 * coding. Sizes are checked before anything of that size is kept. */
#ifndef IFD_HTTP1_H
#define IFD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IFD_HTTP_MAX_HEADERS 64

enum {
    IFD_HTTP_GET = 1,
    IFD_HTTP_POST,
    /* known methods the server refuses with 405 */
    IFD_HTTP_HEAD,
    IFD_HTTP_PUT,
    IFD_HTTP_DELETE,
    IFD_HTTP_OPTIONS,
    IFD_HTTP_PATCH,
    IFD_HTTP_CONNECT,
    IFD_HTTP_TRACE,
};

typedef struct ifd_http_header {
    const char *name, *value; /* into the parsed buffer; value without surrounding spaces */
    size_t name_len, value_len;
} ifd_http_header;

typedef struct ifd_http_head {
    int method;                 /* IFD_HTTP_* */
    const char *path;           /* origin-form path (an absolute-form target's path part) */
    size_t path_len;
    const char *query;          /* after '?', NULL when there is none */
    size_t query_len;
    int version_minor;          /* HTTP/1.0 or HTTP/1.1 */
    bool keep_alive;            /* per version and Connection */
    bool chunked;               /* Transfer-Encoding: chunked */
    bool expect_continue;       /* Expect: 100-continue (ignored in HTTP/1.0, RFC 9110 10.1.1) */
    int64_t content_length;     /* -1: none; else <= max_body */
    size_t n_headers;
    ifd_http_header headers[IFD_HTTP_MAX_HEADERS];
} ifd_http_head;

/* Scan buf[0, len) for a request head, continuing at *scanned (0 for a new head; the bytes
 * before it were checked by earlier calls on the same buffer). Empty lines before the request
 * line are skipped (RFC 9112 2.2) but count as part of the head. Only buf[0, max_head) is ever
 * looked at, so the answer does not depend on how the bytes were split between calls.
 * Returns:
 *   > 0   the head's length through its empty line; *h describes it (pointers into buf);
 *   0     the head is not complete yet and nothing seen so far is wrong: call again with more
 *         bytes;
 *   < 0   minus an HTTP status, with *why set to a message: 400 (malformed, bare LF or CR, NUL or
 *         control byte, bad Content-Length, Content-Length with Transfer-Encoding, unknown
 *         method, chunked applied twice, Transfer-Encoding in HTTP/1.0), 413
 *         (Content-Length above max_body), 414 (the request line with its CRLF does not fit in
 *         max_head), 417 (an Expect other than 100-continue), 431 (the head does not fit in
 *         max_head, or more than IFD_HTTP_MAX_HEADERS headers), 501 (a transfer coding other
 *         than chunked), 505 (an HTTP version other than 1.0 and 1.1).
 *         Bytes that can never be part of a head (a bare LF or CR, a control byte) are errors as
 *         soon as they arrive; the rest only when the head is complete.
 * The returned head length is at most max_head.
 * The connection is not usable after an error: the caller answers and closes it. */
long ifd_http_parse_head(const char *buf, size_t len, size_t *scanned, size_t max_head,
                         uint64_t max_body, ifd_http_head *h, const char **why);

/* The first header named `name` (case-insensitive), or NULL; *count (when not NULL) is how many
 * there are. */
const ifd_http_header *ifd_http_find_header(const ifd_http_head *h, const char *name,
                                            int *count);

/* A chunked body decoded in place: the raw bytes from `raw` on are consumed, and their data
 * moved down to `out` (never past raw), so that the decoded body ends up contiguous at the start
 * of the body. Offsets are from the start of the body. */
typedef struct ifd_http_chunked {
    int state;
    uint64_t remaining;  /* data bytes left in the current chunk */
    size_t raw;          /* raw bytes consumed */
    size_t out;          /* decoded bytes so far: body[0, out) */
    size_t line;         /* bytes in the current size or trailer line */
    size_t trailer;      /* trailer bytes so far */
} ifd_http_chunked;

/* Decode what body[c->raw, len) holds. Returns 1 when the last chunk and the trailers are in
 * (body[0, c->out) is the body; the message ends c->raw bytes after the body's start), 0 when
 * more bytes are needed, or minus an HTTP status with *why: 400 (malformed framing: lines end in
 * CRLF, whitespace after the size only before a ';' extension, a size line of at most 1024
 * bytes), 413 (the decoded body would exceed max_body), 431 (trailers over 16 KiB). Once it has
 * returned 1 it keeps returning 1 and touches nothing: body[c->raw, len) is the next message. */
int ifd_http_chunked_decode(ifd_http_chunked *c, char *body, size_t len, uint64_t max_body,
                            const char **why);

#endif
