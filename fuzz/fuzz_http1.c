/* libFuzzer target: HTTP/1.1 request heads and chunked bodies (serve/http1.c).
 *   - The input is parsed as a request head all at once, and again arriving in pieces (split at
 *     points taken from a hash of the input, and a byte at a time when it is short), each piece
 *     a fresh heap buffer of exactly the bytes so far: the first nonzero answer of the pieces is
 *     the all-at-once answer, with the same message, and 0 only if that is 0.
 *   - Under max_head 8192 and a small max_head from the hash, and a small max_body.
 *   - A head: length <= len and <= max_head; every pointer inside it; a known method, HTTP/1.0
 *     or 1.1, path from '/', Content-Length <= max_body and never with chunked; the head alone,
 *     and the head under max_head = its length, parse to the same thing.
 *   - An error: one of the statuses the header lists, with a message.
 *   - Chunked decoding of what follows a chunked head (and of the whole input, whatever it is),
 *     in a heap buffer of exact size, all at once and in pieces: out <= raw <= len, the same
 *     answer, raw, out and decoded bytes either way; after the end a call changes nothing and
 *     the bytes after the message are untouched.
 * A failed check aborts, which libFuzzer reports with the input. */
#include "serve/http1.h"
#include "../tests/test_http1_same.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(bool ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "fuzz_http1: %s\n", what);
    abort();
}

static char *dup_exact(const uint8_t *s, size_t n) {
    char *p = malloc(n ? n : 1);
    check(p != NULL, "out of memory");
    if (n) memcpy(p, s, n);
    return p;
}

static uint64_t fnv(const uint8_t *d, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 0x100000001b3ull;
    return h;
}

static void check_head(const ifd_http_head *h, const char *buf, long rc, size_t max_head,
                       uint64_t max_body) {
    size_t n = (size_t)rc;
    check(h->method >= IFD_HTTP_GET && h->method <= IFD_HTTP_TRACE, "unknown method accepted");
    check(h->version_minor == 0 || h->version_minor == 1, "version other than 1.0/1.1");
    check(inside(h->path, h->path_len, buf, n) && h->path_len && h->path[0] == '/',
          "path outside the head or not from '/'");
    check(!h->query || inside(h->query, h->query_len, buf, n), "query outside the head");
    check(h->query || !h->query_len, "query length without a query");
    check(h->n_headers <= IFD_HTTP_MAX_HEADERS, "too many headers");
    for (size_t i = 0; i < h->n_headers; i++) {
        const ifd_http_header *x = &h->headers[i];
        check(inside(x->name, x->name_len, buf, n) && x->name_len &&
                  inside(x->value, x->value_len, buf, n),
              "header outside the head");
        check(!x->value_len ||
                  (x->value[0] != ' ' && x->value[0] != '\t' && x->value[x->value_len - 1] != ' ' &&
                   x->value[x->value_len - 1] != '\t'),
              "header value not trimmed");
        for (size_t j = 0; j < x->value_len; j++)
            check((unsigned char)x->value[j] >= 0x20 || x->value[j] == '\t',
                  "control byte in a value");
    }
    int count = 0;
    const ifd_http_header *f = ifd_http_find_header(h, "content-length", &count);
    check(count <= 1 && (!f) == (count == 0) && (count == 1) == (h->content_length >= 0),
          "Content-Length header and content_length disagree");
    check(h->content_length >= -1 &&
              (h->content_length < 0 || (uint64_t)h->content_length <= max_body),
          "Content-Length over max_body");
    check(!(h->chunked && h->content_length >= 0), "chunked with Content-Length");
    check(!(h->chunked && h->version_minor == 0), "chunked in HTTP/1.0");
    check(n <= max_head, "head longer than max_head");
    check(n >= 4 && !memcmp(buf + n - 4, "\r\n\r\n", 4), "head does not end in CRLF CRLF");
}

static bool known_status(long rc) {
    return rc == -400 || rc == -413 || rc == -414 || rc == -417 || rc == -431 || rc == -501 ||
           rc == -505;
}

/* Parse data[0, size) arriving as data[0, cuts[0]), [0, cuts[1]), ..., [0, size). exact: each
 * call on a fresh copy of exactly the bytes so far (ASan sees a read past them); else all on
 * one copy (cheap enough for a byte at a time). Returns the first nonzero answer (0: none);
 * *last: that call's buffer. */
static long parse_pieces(const uint8_t *data, size_t size, const size_t *cuts, size_t n_cuts,
                         bool exact, size_t max_head, uint64_t max_body, ifd_http_head *h,
                         const char **why, char **last) {
    size_t scanned = 0;
    char *one = exact ? NULL : dup_exact(data, size);
    for (size_t k = 0; k <= n_cuts; k++) {
        size_t n = k < n_cuts ? cuts[k] : size;
        char *buf = exact ? dup_exact(data, n) : one;
        size_t before = scanned;
        long rc = ifd_http_parse_head(buf, n, &scanned, max_head, max_body, h, why);
        if (rc || k == n_cuts) {
            *last = buf;
            return rc;
        }
        check(scanned >= before && scanned <= n, "scanned went back or past len");
        if (exact) free(buf);
    }
    *last = one;
    return 0;
}

static void heads(const uint8_t *data, size_t size, size_t max_head, uint64_t max_body,
                  uint64_t hash, long *head_len, bool *chunked) {
    char *buf = dup_exact(data, size);
    ifd_http_head h, h2;
    const char *why = NULL, *why2 = NULL;
    size_t scanned = 0;
    long rc = ifd_http_parse_head(buf, size, &scanned, max_head, max_body, &h, &why);
    *head_len = rc;
    *chunked = rc > 0 && h.chunked;
    check(rc <= (long)size, "head longer than the input");
    if (rc < 0)
        check(known_status(rc) && why && *why, "error without a listed status or a message");
    if (rc > 0) {
        check_head(&h, buf, rc, max_head, max_body);
        /* again: the same */
        scanned = 0;
        long rc2 = ifd_http_parse_head(buf, size, &scanned, max_head, max_body, &h2, &why2);
        check(rc2 == rc && same_head(&h, buf, &h2, buf), "a second parse differs");
        /* the head alone, and with max_head just its length */
        char *alone = dup_exact(data, (size_t)rc);
        scanned = 0;
        rc2 = ifd_http_parse_head(alone, (size_t)rc, &scanned, (size_t)rc, max_body, &h2, &why2);
        check(rc2 == rc && same_head(&h, buf, &h2, alone), "the head alone parses differently");
        free(alone);
    }

    /* in pieces: three cuts from the hash */
    size_t cuts[3];
    for (int k = 0; k < 3; k++) cuts[k] = size ? (size_t)((hash >> (k * 16)) % (size + 1)) : 0;
    for (int a = 0; a < 3; a++) /* sort */
        for (int b = a + 1; b < 3; b++)
            if (cuts[b] < cuts[a]) {
                size_t t = cuts[a];
                cuts[a] = cuts[b];
                cuts[b] = t;
            }
    char *last;
    long rcp = parse_pieces(data, size, cuts, 3, true, max_head, max_body, &h2, &why2, &last);
    check(rcp == rc, "in pieces the answer differs from all at once");
    if (rc < 0) check(!strcmp(why, why2), "in pieces the message differs");
    if (rc > 0) check(same_head(&h, buf, &h2, last), "in pieces the head differs");
    free(last);

    /* a byte at a time */
    if (size <= 4096) {
        size_t *all = malloc((size ? size : 1) * sizeof *all);
        check(all != NULL, "out of memory");
        for (size_t i = 0; i < size; i++) all[i] = i + 1;
        rcp = parse_pieces(data, size, all, size ? size - 1 : 0, false, max_head, max_body, &h2,
                           &why2, &last);
        check(rcp == rc, "byte by byte the answer differs from all at once");
        if (rc < 0) check(!strcmp(why, why2), "byte by byte the message differs");
        if (rc > 0) check(same_head(&h, buf, &h2, last), "byte by byte the head differs");
        free(last);
        free(all);
    }
    free(buf);
}

/* Decode body[0, len) (a copy of data) with the length growing through cuts[]. exact: the buffer
 * is reallocated to exactly the bytes in each time; else it holds len bytes from the start. */
static int decode_pieces(const uint8_t *data, size_t len, const size_t *cuts, size_t n_cuts,
                         bool exact, uint64_t max_body, ifd_http_chunked *c, char **body,
                         const char **why) {
    char *buf = exact ? NULL : malloc(len ? len : 1);
    size_t have = 0;
    int rc = 0;
    memset(c, 0, sizeof *c);
    for (size_t k = 0; k <= n_cuts; k++) {
        size_t n = k < n_cuts ? cuts[k] : len;
        if (n < have) continue;
        if (exact) buf = realloc(buf, n ? n : 1);
        check(buf != NULL, "out of memory");
        memcpy(buf + have, data + have, n - have);
        have = n;
        rc = ifd_http_chunked_decode(c, buf, n, max_body, why);
        check(c->out <= c->raw && c->raw <= n, "out <= raw <= len broken");
        check(c->out <= max_body, "decoded past max_body");
        if (rc) break;
    }
    *body = buf;
    return rc;
}

static void chunked(const uint8_t *data, size_t len, uint64_t max_body, uint64_t hash) {
    ifd_http_chunked c, c2;
    const char *why = NULL, *why2 = NULL;
    char *body = dup_exact(data, len);
    memset(&c, 0, sizeof c);
    int rc = ifd_http_chunked_decode(&c, body, len, max_body, &why);
    check(c.out <= c.raw && c.raw <= len, "out <= raw <= len broken");
    check(rc == 1 || rc == 0 || rc == -400 || rc == -413 || rc == -431, "unlisted answer");
    if (rc < 0) check(why && *why, "error without a message");
    if (rc == 0) check(c.raw == len, "0 before all the bytes were read");
    if (rc == 1) {
        check(!memcmp(body + c.raw, data + c.raw, len - c.raw), "bytes after the message changed");
        c2 = c;
        check(ifd_http_chunked_decode(&c2, body, len, max_body, &why2) == 1 &&
                  !memcmp(&c, &c2, sizeof c),
              "a call after the end changed something");
    }

    size_t cuts[4];
    for (int k = 0; k < 4; k++) cuts[k] = len ? (size_t)((hash >> (k * 13 + 7)) % (len + 1)) : 0;
    for (int a = 0; a < 4; a++)
        for (int b = a + 1; b < 4; b++)
            if (cuts[b] < cuts[a]) {
                size_t t = cuts[a];
                cuts[a] = cuts[b];
                cuts[b] = t;
            }
    char *body2;
    int rc2 = decode_pieces(data, len, cuts, 4, true, max_body, &c2, &body2, &why2);
    check(rc2 == rc && c2.raw == c.raw && c2.out == c.out && !memcmp(body, body2, c.out),
          "chunked in pieces differs from all at once");
    if (rc < 0) check(!strcmp(why, why2), "chunked in pieces: another message");
    free(body2);
    if (len <= 4096) {
        size_t *all = malloc((len ? len : 1) * sizeof *all);
        check(all != NULL, "out of memory");
        for (size_t i = 0; i < len; i++) all[i] = i + 1;
        rc2 = decode_pieces(data, len, all, len ? len - 1 : 0, false, max_body, &c2, &body2, &why2);
        check(rc2 == rc && c2.raw == c.raw && c2.out == c.out && !memcmp(body, body2, c.out),
              "chunked byte by byte differs from all at once");
        free(body2);
        free(all);
    }
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t hash = fnv(data, size);
    long head_len;
    bool is_chunked;
    heads(data, size, 8192, 1 << 20, hash, &head_len, &is_chunked);
    if (head_len > 0 && is_chunked)
        chunked(data + head_len, size - (size_t)head_len, 1 << 20, hash);
    /* a small max_head (around the input's size) and max_body */
    size_t small_head = 1 + (size_t)((hash >> 48) % (size + 2));
    uint64_t small_body = (hash >> 32) % 64;
    long hl2;
    bool ch2;
    heads(data, size, small_head, small_body, hash * 31, &hl2, &ch2);
    if (hl2 > 0 && ch2) chunked(data + hl2, size - (size_t)hl2, small_body, hash * 17);
    /* the chunked decoder on anything */
    chunked(data, size, small_body + 8, hash * 7);
    return 0;
}
