/* HTTP/1.1 request heads and chunked bodies (RFC 9112); see http1.h. */
#include "serve/http1.h"

#include <string.h>
#include <strings.h>

/* tchar (RFC 9110 5.6.2): what header names and methods are made of */
static bool is_tchar(unsigned char ch) {
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && memchr(extra, ch, sizeof extra - 1));
}

static bool token_eq(const char *s, size_t n, const char *lit) {
    return strlen(lit) == n && !strncasecmp(s, lit, n);
}

static int method_of(const char *s, size_t n) {
    static const struct { const char *name; int method; } k[] = {
        {"GET", IFD_HTTP_GET},         {"POST", IFD_HTTP_POST},       {"HEAD", IFD_HTTP_HEAD},
        {"PUT", IFD_HTTP_PUT},         {"DELETE", IFD_HTTP_DELETE},   {"OPTIONS", IFD_HTTP_OPTIONS},
        {"PATCH", IFD_HTTP_PATCH},     {"CONNECT", IFD_HTTP_CONNECT}, {"TRACE", IFD_HTTP_TRACE},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strlen(k[i].name) == n && !memcmp(k[i].name, s, n)) return k[i].method; /* case matters */
    return 0;
}

#define FAIL(status, msg) \
    do {                  \
        *why = (msg);     \
        return -(status); \
    } while (0)

/* Trim spaces and tabs from both ends of [*s, *s + *n). */
static void trim_ows(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* How many times does the comma-separated list [s, s + n) hold token `tok` (case-insensitive)?
 * *other is set when it holds anything else. */
static int list_has(const char *s, size_t n, const char *tok, bool *other) {
    int found = 0;
    while (n) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n;
        const char *e = s;
        size_t en = len;
        trim_ows(&e, &en);
        if (en) {
            if (token_eq(e, en, tok)) found++;
            else if (other) *other = true;
        }
        if (!comma) break;
        s = comma + 1;
        n -= len + 1;
    }
    return found;
}

static long parse_request_line(const char *p, size_t n, ifd_http_head *h, const char **why) {
    const char *sp1 = memchr(p, ' ', n);
    if (!sp1 || sp1 == p) FAIL(400, "malformed request line");
    size_t mlen = (size_t)(sp1 - p);
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)p[i])) FAIL(400, "malformed request line");
    h->method = method_of(p, mlen);
    if (!h->method) FAIL(400, "unknown request method");
    const char *t = sp1 + 1;
    const char *end = p + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t) FAIL(400, "malformed request line");
    const char *v = sp2 + 1;
    if ((size_t)(end - v) != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' ||
        v[5] > '9' || v[7] < '0' || v[7] > '9')
        FAIL(400, "malformed request line: expected METHOD TARGET HTTP/1.1");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) FAIL(505, "HTTP version not supported");
    h->version_minor = v[7] - '0';
    size_t tlen = (size_t)(sp2 - t);
    for (size_t i = 0; i < tlen; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '#') FAIL(400, "invalid character in the request target");
    }
    /* absolute-form (RFC 9112 3.2.2): the path part of http://authority/path */
    if (tlen >= 7 && (!strncasecmp(t, "http://", 7) || (tlen >= 8 && !strncasecmp(t, "https://", 8)))) {
        const char *a = t + (t[4] == ':' ? 7 : 8);
        const char *slash = memchr(a, '/', (size_t)(sp2 - a));
        const char *q = memchr(a, '?', (size_t)(sp2 - a));
        if (q && (!slash || q < slash)) slash = NULL;
        if (!slash) {
            /* no path: "/", taken from the "//" so that every pointer is into the buffer */
            h->path = a - 1;
            h->path_len = 1;
            h->query = q ? q + 1 : NULL;
            h->query_len = q ? (size_t)(sp2 - q - 1) : 0;
            return 0;
        }
        tlen -= (size_t)(slash - t);
        t = slash;
    }
    if (t[0] != '/') FAIL(400, "the request target must be a path");
    const char *q = memchr(t, '?', tlen);
    h->path = t;
    h->path_len = q ? (size_t)(q - t) : tlen;
    h->query = q ? q + 1 : NULL;
    h->query_len = q ? tlen - h->path_len - 1 : 0;
    return 0;
}

static long parse_header(const char *p, size_t n, uint64_t max_body, ifd_http_head *h, int *n_cl,
                         int *n_te, const char **why) {
    if (p[0] == ' ' || p[0] == '\t') FAIL(400, "obsolete header line folding");
    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p) FAIL(400, "malformed header line");
    size_t nlen = (size_t)(colon - p);
    for (size_t i = 0; i < nlen; i++)
        if (!is_tchar((unsigned char)p[i])) FAIL(400, "invalid character in a header name");
    const char *v = colon + 1;
    size_t vlen = n - nlen - 1;
    trim_ows(&v, &vlen);
    for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) FAIL(400, "control character in a header value");
    }
    if (h->n_headers == IFD_HTTP_MAX_HEADERS) FAIL(431, "too many header fields");
    ifd_http_header *hd = &h->headers[h->n_headers++];
    hd->name = p;
    hd->name_len = nlen;
    hd->value = v;
    hd->value_len = vlen;
    if (token_eq(p, nlen, "content-length")) {
        if (++*n_cl > 1) FAIL(400, "duplicate Content-Length");
        if (!vlen) FAIL(400, "Content-Length is not a number");
        uint64_t x = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9') FAIL(400, "Content-Length is not a number");
            if (x > (UINT64_MAX - 9) / 10) FAIL(413, "request body too large");
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (x > max_body || x > INT64_MAX) FAIL(413, "request body too large");
        h->content_length = (int64_t)x;
    } else if (token_eq(p, nlen, "transfer-encoding")) {
        if (++*n_te > 1) FAIL(400, "more than one Transfer-Encoding header");
        bool other = false;
        int n_chunked = list_has(v, vlen, "chunked", &other);
        if (!n_chunked || other) FAIL(501, "only the chunked transfer coding is supported");
        if (n_chunked > 1) FAIL(400, "chunked applied more than once"); /* RFC 9112 6.1 */
        h->chunked = true;
    } else if (token_eq(p, nlen, "connection")) {
        if (list_has(v, vlen, "close", NULL)) h->keep_alive = false;
        else if (list_has(v, vlen, "keep-alive", NULL)) h->keep_alive = true;
    } else if (token_eq(p, nlen, "expect")) {
        if (!token_eq(v, vlen, "100-continue")) FAIL(417, "only Expect: 100-continue is supported");
        h->expect_continue = true;
    }
    return 0;
}

long ifd_http_parse_head(const char *buf, size_t len, size_t *scanned, size_t max_head,
                         uint64_t max_body, ifd_http_head *h, const char **why) {
    /* Only buf[0, max_head) can be part of the head: bytes past it are never looked at, so a
     * head gets the same answer however its bytes are split between calls. Empty lines before
     * the request line count too (else a stream of CRLFs would be read without bound). */
    size_t lim = len < max_head ? len : max_head;
    size_t lead = 0; /* empty lines before the request line */
    while (lead + 1 < lim && buf[lead] == '\r' && buf[lead + 1] == '\n') lead += 2;
    size_t i = *scanned > lead ? *scanned : lead;
    size_t end = 0;
    for (; i < lim; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch >= 0x20 && ch != 0x7f) continue;
        if (ch == '\t') continue;
        if (ch != '\r') {
            if (ch == '\n') FAIL(400, "bare LF in the request head (lines end in CRLF)");
            FAIL(400, ch ? "control character in the request head" : "NUL in the request head");
        }
        if (i + 1 == lim) break; /* the LF may come next (if there is room for it) */
        if (buf[i + 1] != '\n') FAIL(400, "bare CR in the request head");
        if (i > lead && buf[i - 1] == '\n') { /* an empty line: the end of the head */
            end = i + 2;
            break;
        }
        i++; /* past the LF */
    }
    *scanned = i;
    if (!end) {
        if (len < max_head) return 0;
        /* the head does not fit: 414 when not even the request line's CRLF does */
        bool line_done = lim > lead && memchr(buf + lead, '\n', lim - lead) != NULL;
        if (line_done) FAIL(431, "request header fields too large");
        FAIL(414, "request URI too long");
    }
    memset(h, 0, offsetof(ifd_http_head, headers));
    h->content_length = -1;
    const char *p = buf + lead;
    const char *stop = buf + end - 2; /* the final empty line's CR */
    const char *eol = memchr(p, '\r', (size_t)(stop - p));
    long rc = parse_request_line(p, (size_t)(eol - p), h, why);
    if (rc) return rc;
    h->keep_alive = h->version_minor == 1;
    int n_cl = 0, n_te = 0;
    for (p = eol + 2; p < stop; p = eol + 2) {
        eol = memchr(p, '\r', (size_t)(stop - p));
        rc = parse_header(p, (size_t)(eol - p), max_body, h, &n_cl, &n_te, why);
        if (rc) return rc;
    }
    if (n_cl && n_te) FAIL(400, "Content-Length together with Transfer-Encoding");
    if (h->chunked && h->version_minor == 0) FAIL(400, "Transfer-Encoding in an HTTP/1.0 request");
    /* RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored */
    if (h->version_minor == 0) h->expect_continue = false;
    return (long)end;
}

const ifd_http_header *ifd_http_find_header(const ifd_http_head *h, const char *name, int *count) {
    const ifd_http_header *first = NULL;
    int n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        if (token_eq(h->headers[i].name, h->headers[i].name_len, name)) {
            if (!first) first = &h->headers[i];
            n++;
        }
    if (count) *count = n;
    return first;
}

/* ---- chunked bodies -------------------------------------------------------------------------- */

enum {
    CH_SIZE, CH_SIZE_WS, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER,
    CH_TRAILER_LF, CH_DONE
};

#define MAX_CHUNK_LINE 1024    /* a chunk-size line with its extensions */
#define MAX_TRAILER (16 << 10) /* trailer section */

static int hexval(unsigned char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int ifd_http_chunked_decode(ifd_http_chunked *c, char *body, size_t len, uint64_t max_body,
                            const char **why) {
    if (c->state == CH_DONE) return 1; /* the bytes after the message are not ours */
    while (c->raw < len) {
        if (c->state == CH_DATA) {
            size_t n = len - c->raw;
            if (n > c->remaining) n = (size_t)c->remaining;
            if (c->out != c->raw) memmove(body + c->out, body + c->raw, n);
            c->out += n;
            c->raw += n;
            c->remaining -= n;
            if (!c->remaining) c->state = CH_DATA_CR;
            continue;
        }
        unsigned char ch = (unsigned char)body[c->raw++];
        switch (c->state) {
        case CH_SIZE: {
            int d = hexval(ch);
            if (d >= 0) {
                if (c->remaining > (UINT64_MAX - 15) / 16) FAIL(413, "chunk size too large");
                c->remaining = c->remaining * 16 + (uint64_t)d;
                /* out <= max_body, so the difference does not wrap */
                if (c->remaining > max_body || c->remaining > max_body - c->out)
                    FAIL(413, "request body too large");
                if (++c->line > MAX_CHUNK_LINE) FAIL(400, "chunk size line too long");
            } else if (c->line && ch == ';') {
                c->state = CH_EXT;
            } else if (c->line && (ch == ' ' || ch == '\t')) {
                c->state = CH_SIZE_WS;
            } else if (c->line && ch == '\r') {
                c->state = CH_SIZE_LF;
            } else {
                FAIL(400, "malformed chunk size");
            }
            break;
        }
        case CH_SIZE_WS: /* BWS before a ';' (RFC 9112 7.1.1), nothing else */
            if (ch == ';') c->state = CH_EXT;
            else if (ch != ' ' && ch != '\t') FAIL(400, "malformed chunk size");
            else if (++c->line > MAX_CHUNK_LINE) FAIL(400, "chunk size line too long");
            break;
        case CH_EXT:
            if (ch == '\r') c->state = CH_SIZE_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) FAIL(400, "malformed chunk extension");
            else if (++c->line > MAX_CHUNK_LINE) FAIL(400, "chunk size line too long");
            break;
        case CH_SIZE_LF:
            if (ch != '\n') FAIL(400, "chunk size line not ended by CRLF");
            c->line = 0;
            c->state = c->remaining ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA_CR:
            if (ch != '\r') FAIL(400, "chunk data longer than its size");
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n') FAIL(400, "chunk data not ended by CRLF");
            c->state = CH_SIZE;
            c->line = 0;
            break;
        case CH_TRAILER:
            if (ch == '\r') c->state = CH_TRAILER_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) FAIL(400, "malformed trailer");
            else if (++c->trailer > MAX_TRAILER) FAIL(431, "trailer section too large");
            else c->line++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') FAIL(400, "trailer line not ended by CRLF");
            if (!c->line) {
                c->state = CH_DONE;
                return 1;
            }
            c->line = 0;
            c->state = CH_TRAILER;
            break;
        default: /* CH_DONE is answered above; CH_DATA in the loop's head */
            FAIL(400, "chunked decoder in a bad state");
        }
    }
    return c->state == CH_DONE;
}
