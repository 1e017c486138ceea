/* KServe v2 / Open Inference Protocol JSON tensors: request decoding into ifd_tensors (with
 * every size checked before it is allocated) and response encoding. A request of the common
 * form is read without jansson (see "the common request" below); otherwise small JSON values
 * go through jansson. The request's structure and its "data" arrays are read by a dedicated
 * decoder here (see "JSON text" below), numbers straight into the tensor's dtype. */
#include "serve/serve.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__)
#define COLD __attribute__((cold, noinline)) /* error and rare paths, kept out of the data loop */
#else
#define COLD
#endif

/* ---- growable buffer ------------------------------------------------------------------------ */

static bool sbuf_reserve(ifd_sbuf *b, size_t extra) {
    if (b->failed) return false;
    size_t need, limit = b->limit ? b->limit : SIZE_MAX;
    if (!ifd_add_size(b->len, extra, &need) || !ifd_add_size(need, 1, &need) || need > limit) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = ifd_realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

/* Room for n more bytes and the NUL without growing: what sbuf_reserve checks, for the
 * appends that fit (nearly all of them), without a call. */
static inline bool sbuf_has_room(const ifd_sbuf *b, size_t n) {
    return !b->failed && b->len < b->cap && b->cap - b->len > n &&
           (!b->limit || (b->len < b->limit && b->limit - b->len > n));
}

static inline void sbuf_put(ifd_sbuf *b, const void *p, size_t n) {
    if (IFD_UNLIKELY(!sbuf_has_room(b, n)) && !sbuf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

/* a string literal */
#define sbuf_lit(b, s) sbuf_put((b), "" s, sizeof(s) - 1)

void ifd_sbuf_append(ifd_sbuf *b, const void *p, size_t n) { sbuf_put(b, p, n); }

void ifd_sbuf_puts(ifd_sbuf *b, const char *s) { sbuf_put(b, s, strlen(s)); }

void ifd_sbuf_printf(ifd_sbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        ifd_sbuf_append(b, small, (size_t)n);
        return;
    }
    if (!sbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ifd_sbuf_json_string(ifd_sbuf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t plain = 0; /* bytes before the first one to escape */
    while (s[plain] && (unsigned char)s[plain] >= 0x20 && s[plain] != '"' && s[plain] != '\\')
        plain++;
    if (!s[plain] && sbuf_has_room(b, plain + 2)) { /* nothing to escape (names): one copy */
        char *p = b->data + b->len;
        p[0] = '"';
        memcpy(p + 1, s, plain);
        p[plain + 1] = '"';
        b->len += plain + 2;
        b->data[b->len] = 0;
        return;
    }
    ifd_sbuf_append(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ifd_sbuf_append(b, run, (size_t)(s - run));
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') ifd_sbuf_append(b, (char[]){'\\', (char)c}, 2);
        else ifd_sbuf_append(b, esc, 6);
        run = s + 1;
    }
    ifd_sbuf_append(b, run, (size_t)(s - run));
    ifd_sbuf_append(b, "\"", 1);
}

void ifd_sbuf_free(ifd_sbuf *b) {
    ifd_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- datatypes -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    ifd_dtype dtype;
} g_dtypes[] = {
    {"BOOL", IFD_DTYPE_BOOL},     {"UINT8", IFD_DTYPE_UINT8},   {"UINT16", IFD_DTYPE_UINT16},
    {"UINT32", IFD_DTYPE_UINT32}, {"UINT64", IFD_DTYPE_UINT64}, {"INT8", IFD_DTYPE_INT8},
    {"INT16", IFD_DTYPE_INT16},   {"INT32", IFD_DTYPE_INT32},   {"INT64", IFD_DTYPE_INT64},
    {"FP16", IFD_DTYPE_FLOAT16},  {"FP32", IFD_DTYPE_FLOAT},    {"FP64", IFD_DTYPE_DOUBLE},
    {"BF16", IFD_DTYPE_BFLOAT16}, {"BYTES", IFD_DTYPE_STRING},
};

/* The datatype named by p[0, len) (no NUL in it) */
static ifd_dtype dtype_from_span(const char *p, size_t len) {
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_dtypes); i++) {
        const char *name = g_dtypes[i].name;
        size_t k = 0;
        while (k < len && name[k] == p[k]) k++;
        if (k == len && name[k] == 0) return g_dtypes[i].dtype;
    }
    return IFD_DTYPE_UNDEFINED;
}

ifd_dtype ifd_kserve_dtype_from_name(const char *name) {
    return dtype_from_span(name, strlen(name));
}

const char *ifd_kserve_dtype_name(ifd_dtype dtype) {
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_dtypes); i++)
        if (g_dtypes[i].dtype == dtype) return g_dtypes[i].name;
    return NULL;
}

bool ifd_kserve_depth_ok(const char *body, size_t len, int max_depth) {
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

/* ---- half-precision conversions (round to nearest even) ------------------------------------- */

static uint16_t f32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504 */
    if (absx < 0x38800000u) {                                   /* subnormal or zero in fp16 */
        float a;
        memcpy(&a, &absx, 4);
        /* a * 2^24 rounded to nearest even is the subnormal's mantissa */
        return (uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.0f));
    }
    uint32_t mant = absx & 0x7fffffu, exp = (absx >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    float f;
    if (exp == 0) {
        f = ldexpf((float)mant, -24);
        return sign ? -f : f;
    }
    uint32_t x = exp == 31 ? sign | 0x7f800000u | (mant << 13)
                           : sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&f, &x, 4);
    return f;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static float bf16_to_f32(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- decoding ----------------------------------------------------------------------------------- */

typedef struct decoder {
    ifd_dtype dtype;
    unsigned char *dst; /* tensor storage */
    size_t esize;
    int64_t count;      /* elements the shape declares */
    int64_t written;
    char *err;
    size_t errsize;
    const char *name;
    const char *text;   /* the request's JSON text (for positions in messages); NULL: json_t */
    int rc;             /* the status of a failure in a pointer-returning step */
    /* BYTES: elements go into tensor one by one; their bytes are charged to *budget as they
     * are decoded; escaped strings are decoded in scratch first */
    ifd_tensor *tensor;
    size_t *budget;
    char *scratch;
    size_t scratch_cap;
} decoder;

static int fail(decoder *d, const char *fmt, ...) IFD_PRINTF(2, 3);
static int fail(decoder *d, const char *fmt, ...) {
    int n = snprintf(d->err, d->errsize, "input '%s': ", d->name);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < d->errsize) vsnprintf(d->err + n, d->errsize - (size_t)n, fmt, ap);
    va_end(ap);
    return 400;
}

/* A floating-point element: a number, or "NaN"/"Infinity"/"-Infinity". */
static bool element_double(const json_t *v, double *out) {
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "NaN") || !strcmp(s, "nan")) *out = NAN;
        else if (!strcmp(s, "Infinity") || !strcmp(s, "inf")) *out = INFINITY;
        else if (!strcmp(s, "-Infinity") || !strcmp(s, "-inf")) *out = -INFINITY;
        else return false;
        return true;
    }
    return false;
}

static int store_element(decoder *d, const json_t *v) {
    if (d->written >= d->count)
        return fail(d, "data holds more than the %lld elements its shape declares",
                    (long long)d->count);
    unsigned char *p = d->dst + (size_t)d->written * d->esize;
    int64_t index = d->written++;
    switch (d->dtype) {
    case IFD_DTYPE_BOOL:
        if (!json_is_boolean(v)) return fail(d, "element %lld is not true/false", (long long)index);
        *p = json_is_true(v) ? 1 : 0;
        return 0;
    case IFD_DTYPE_FLOAT:
    case IFD_DTYPE_DOUBLE:
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16: {
        double x;
        if (!element_double(v, &x)) return fail(d, "element %lld is not a number", (long long)index);
        if (d->dtype == IFD_DTYPE_DOUBLE) {
            memcpy(p, &x, 8);
            return 0;
        }
        if (isfinite(x) && fabs(x) > FLT_MAX)
            return fail(d, "element %lld (%g) is out of range for %s", (long long)index, x,
                        ifd_kserve_dtype_name(d->dtype));
        float f = (float)x;
        if (d->dtype == IFD_DTYPE_FLOAT) {
            memcpy(p, &f, 4);
        } else {
            uint16_t h = d->dtype == IFD_DTYPE_FLOAT16 ? f32_to_fp16(f) : f32_to_bf16(f);
            if (d->dtype == IFD_DTYPE_FLOAT16 && isfinite(f) && !isfinite(fp16_to_f32(h)))
                return fail(d, "element %lld (%g) is out of range for FP16", (long long)index, x);
            memcpy(p, &h, 2);
        }
        return 0;
    }
    default: break;
    }
    /* integers: jansson holds them as long long, so UINT64 above INT64_MAX is refused by it */
    if (!json_is_integer(v))
        return fail(d, "element %lld is not an integer", (long long)index);
    long long x = json_integer_value(v);
    long long lo, hi;
    switch (d->dtype) {
    case IFD_DTYPE_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
    case IFD_DTYPE_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
    case IFD_DTYPE_INT32: lo = INT32_MIN, hi = INT32_MAX; break;
    case IFD_DTYPE_INT64: lo = INT64_MIN, hi = INT64_MAX; break;
    case IFD_DTYPE_UINT8: lo = 0, hi = UINT8_MAX; break;
    case IFD_DTYPE_UINT16: lo = 0, hi = UINT16_MAX; break;
    case IFD_DTYPE_UINT32: lo = 0, hi = UINT32_MAX; break;
    case IFD_DTYPE_UINT64: lo = 0, hi = INT64_MAX; break;
    default: return fail(d, "datatype not supported");
    }
    if (x < lo || x > hi)
        return fail(d, "element %lld (%lld) is out of range for %s", (long long)index, x,
                    ifd_kserve_dtype_name(d->dtype));
    switch (d->esize) {
    case 1: *p = (unsigned char)x; break;
    case 2: { uint16_t y = (uint16_t)x; memcpy(p, &y, 2); } break;
    case 4: { uint32_t y = (uint32_t)x; memcpy(p, &y, 4); } break;
    default: { uint64_t y = (uint64_t)x; memcpy(p, &y, 8); } break;
    }
    return 0;
}

/* Walk nested arrays in row-major order. Siblings must agree: all arrays of one length, or all
 * scalars, so a ragged array is refused wherever it occurs. depth is bounded by the body's
 * pre-scan (IFD_KSERVE_MAX_DEPTH). */
static int walk(decoder *d, const json_t *v, int depth) {
    if (!json_is_array(v)) return store_element(d, v);
    if (depth > IFD_MAX_RANK) return fail(d, "data nests deeper than %d", IFD_MAX_RANK);
    size_t n = json_array_size(v);
    bool first_is_array = n > 0 && json_is_array(json_array_get(v, 0));
    size_t inner = first_is_array ? json_array_size(json_array_get(v, 0)) : 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (json_is_array(e) != first_is_array || (first_is_array && json_array_size(e) != inner))
            return fail(d, "ragged data: nested arrays differ in length or depth");
        int rc = walk(d, e, depth + 1);
        if (rc) return rc;
    }
    return 0;
}

int ifd_kserve_decode_values(const json_t *data, ifd_dtype dtype, int64_t count, void *dst,
                             const char *name, char *err, size_t errsize) {
    decoder d = {.dtype = dtype, .dst = dst, .esize = ifd_dtype_size(dtype), .count = count,
                 .err = err, .errsize = errsize, .name = name};
    int rc = walk(&d, data, 0);
    if (rc) return rc;
    if (d.written != d.count)
        return fail(&d, "data holds %lld elements, the shape needs %lld", (long long)d.written,
                    (long long)d.count);
    return 0;
}

/* ---- JSON text: whitespace, strings, skipping ------------------------------------------------ */

/* Infer request bodies are decoded here rather than by json_loadb: a 1x3x224x224 FP32 tensor is
 * 150528 numbers, and a json_t per number made JSON ingest slower than ResNet-18 itself. The
 * request is read in two passes over the text:
 *   1. parse_request: the object structure (root, "inputs" array, input objects) is parsed here
 *      with duplicate keys refused; every small value (id, parameters, name, shape, datatype,
 *      outputs, unknown keys) is found by skip_value and handed to jansson, and the span of each
 *      input's "data" is only recorded (skip_value counts brackets, it does not check them).
 *   2. decode_span: once the input's datatype and shape are known and checked, its "data" is
 *      checked against the JSON grammar and decoded in the same scan, straight into the tensor.
 * Nothing in either pass recurses on the body's nesting. Everything a request is accepted with
 * has been checked either by jansson or by decode_span, so an accepted body is valid JSON. */

static inline bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && is_ws(*p)) p++;
    return p;
}

static inline bool is_digit(char c) { return (unsigned)(c - '0') <= 9; }

/* Line and column (1-based, in bytes) of `at` in text, for messages. */
static void text_position(const char *text, const char *at, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

static bool hex4(const unsigned char *s, const unsigned char *end, unsigned *out) {
    if (end - s < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
        else return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Length of the UTF-8 sequence at s, 0 when it is invalid: overlong forms, surrogates and code
 * points past U+10FFFF are refused, as jansson refuses them. */
static size_t utf8_sequence(const unsigned char *s, const unsigned char *end) {
    unsigned c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        else if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        else if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* Check the JSON string whose opening quote is at p the way jansson does: no raw control
 * characters, only the defined escapes, \u escapes that pair surrogates and, unless allow_nul
 * (BYTES data, where a string is any bytes), are not \u0000, and valid UTF-8. Returns the
 * position after the closing quote, or NULL with *why set. */
static const char *scan_string(const char *p, const char *end, bool allow_nul, bool *escaped,
                               const char **why) {
    const unsigned char *s = (const unsigned char *)p + 1, *e = (const unsigned char *)end;
    *escaped = false;
    while (s < e) {
        unsigned c = *s;
        if (c == '"') return (const char *)s + 1;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            s++;
            continue;
        }
        if (c < 0x20) {
            *why = "control character in a string";
            return NULL;
        }
        if (c >= 0x80) {
            size_t n = utf8_sequence(s, e);
            if (!n) {
                *why = "invalid UTF-8 in a string";
                return NULL;
            }
            s += n;
            continue;
        }
        *escaped = true; /* a backslash */
        if (++s >= e) break;
        if (strchr("\"\\/bfnrt", (char)*s) && *s) {
            s++;
            continue;
        }
        unsigned u, u2;
        if (*s != 'u' || !hex4(s + 1, e, &u)) {
            *why = "invalid escape in a string";
            return NULL;
        }
        s += 5;
        if (u == 0 && !allow_nul) {
            *why = "\\u0000 is not allowed in a string";
            return NULL;
        }
        if (u >= 0xdc00 && u <= 0xdfff) {
            *why = "unpaired surrogate escape in a string";
            return NULL;
        }
        if (u >= 0xd800 && u <= 0xdbff) {
            if (e - s < 6 || s[0] != '\\' || s[1] != 'u' || !hex4(s + 2, e, &u2) ||
                u2 < 0xdc00 || u2 > 0xdfff) {
                *why = "unpaired surrogate escape in a string";
                return NULL;
            }
            s += 6;
        }
    }
    *why = "unexpected end of input in a string";
    return NULL;
}

/* Decode a string that scan_string accepted (p at its opening quote, q after its closing one)
 * into buf, which holds at least q - p bytes (decoding never lengthens a string). */
static size_t decode_string(const char *p, const char *q, char *buf) {
    const unsigned char *s = (const unsigned char *)p + 1, *e = (const unsigned char *)q - 1;
    size_t n = 0;
    while (s < e) {
        if (*s != '\\') {
            buf[n++] = (char)*s++;
            continue;
        }
        s++;
        unsigned u = 0, u2 = 0;
        switch (*s) {
        case 'b': buf[n++] = '\b'; s++; continue;
        case 'f': buf[n++] = '\f'; s++; continue;
        case 'n': buf[n++] = '\n'; s++; continue;
        case 'r': buf[n++] = '\r'; s++; continue;
        case 't': buf[n++] = '\t'; s++; continue;
        case 'u': break;
        default: buf[n++] = (char)*s++; continue;
        }
        hex4(s + 1, e, &u);
        s += 5;
        if (u >= 0xd800 && u <= 0xdbff) {
            hex4(s + 2, e, &u2);
            s += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (u2 - 0xdc00);
        }
        if (u < 0x80) {
            buf[n++] = (char)u;
        } else if (u < 0x800) {
            buf[n++] = (char)(0xc0 | u >> 6);
            buf[n++] = (char)(0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
            buf[n++] = (char)(0xe0 | u >> 12);
            buf[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
            buf[n++] = (char)(0x80 | (u & 0x3f));
        } else {
            buf[n++] = (char)(0xf0 | u >> 18);
            buf[n++] = (char)(0x80 | ((u >> 12) & 0x3f));
            buf[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
            buf[n++] = (char)(0x80 | (u & 0x3f));
        }
    }
    return n;
}

/* The request parser (pass 1). */
typedef struct span {
    const char *p, *end; /* NULL p: absent */
} span;

typedef struct jparse {
    const char *text, *end; /* the JSON part of the body */
    char *err;
    size_t errsize;
    int rc;                 /* 0, or the HTTP status of the first failure */
    span *data;             /* data[i]: the "data" text of inputs[i] */
    size_t n_data;
} jparse;

static void json_fail(jparse *ps, const char *at, const char *fmt, ...) IFD_PRINTF(3, 4);
static void json_fail(jparse *ps, const char *at, const char *fmt, ...) {
    if (ps->rc) return;
    ps->rc = 400;
    int line, col, n = snprintf(ps->err, ps->errsize, "invalid JSON: ");
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < ps->errsize) n += vsnprintf(ps->err + n, ps->errsize - (size_t)n, fmt, ap);
    va_end(ap);
    text_position(ps->text, at, &line, &col);
    if (n >= 0 && (size_t)n < ps->errsize)
        snprintf(ps->err + n, ps->errsize - (size_t)n, " (line %d, column %d)", line, col);
}

static void oom_fail(jparse *ps) {
    if (ps->rc) return;
    ps->rc = 500;
    snprintf(ps->err, ps->errsize, "out of memory");
}

/* Where the next of [ ] { } " (and a few harmless look-alikes) is at or after p, or end. Arrays
 * of numbers are megabytes long and hold none of them, so this is the whole cost of pass 1. */
static const char *next_structural(const char *p, const char *end) {
#if defined(__SSE2__)
    /* '[' ']' '{' '}' all equal 0x59 once bits 0x26 are cleared ('Y' '_' 'y' DEL do too, and
     * the caller steps over those) */
    const __m128i mask = _mm_set1_epi8((char)0xd9), brackets = _mm_set1_epi8(0x59),
                  quote = _mm_set1_epi8('"');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(_mm_and_si128(v, mask), brackets),
                                   _mm_cmpeq_epi8(v, quote));
        int bits = _mm_movemask_epi8(hit);
        if (bits) return p + __builtin_ctz((unsigned)bits);
        p += 16;
    }
#endif
    while (p < end && (*p & 0xd9) != 0x59 && *p != '"') p++;
    return p;
}

/* The end of the JSON value at p, whose enclosing container is at nesting depth `depth`.
 * Containers are only bracket-counted (the value is checked afterwards by jansson or by
 * decode_span), but nesting is held to IFD_KSERVE_MAX_DEPTH here, without recursion. Returns
 * NULL with ps->rc set when no value ends before end. */
static const char *skip_value(jparse *ps, const char *p, int depth) {
    const char *end = ps->end, *why;
    bool escaped;
    if (p >= end) {
        json_fail(ps, p, "unexpected end of input, a value expected");
        return NULL;
    }
    if (*p == '"') {
        /* \u0000 passes here: the value is checked again by jansson (which refuses it) or, as
         * BYTES data, by decode_span (which takes it) */
        const char *q = scan_string(p, end, true, &escaped, &why);
        if (!q) json_fail(ps, p, "%s", why);
        return q;
    }
    if (*p != '[' && *p != '{') {
        const char *q = p;
        while (q < end && !is_ws(*q) && *q != ',' && *q != ']' && *q != '}' && *q != ':') q++;
        if (q == p) json_fail(ps, p, "unexpected '%c', a value expected", *p);
        return q == p ? NULL : q;
    }
    int level = 0;
    for (;;) {
        p = next_structural(p, end);
        if (p >= end) break;
        switch (*p) {
        case '[':
        case '{':
            if (depth + ++level > IFD_KSERVE_MAX_DEPTH) {
                json_fail(ps, p, "nesting deeper than %d", IFD_KSERVE_MAX_DEPTH);
                return NULL;
            }
            break;
        case ']':
        case '}':
            if (--level == 0) return p + 1;
            break;
        case '"':
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\') p++;
            if (p >= end) goto eof;
            break;
        default: break;
        }
        p++;
    }
eof:
    json_fail(ps, end, "unexpected end of input");
    return NULL;
}

/* An integer literal of at most 18 digits ("-"? digits, no leading zero, no fraction or
 * exponent) in [p, q), or false: anything else goes through jansson. */
static bool small_int(const char *p, const char *q, json_int_t *out) {
    bool neg = p < q && *p == '-';
    if (neg) p++;
    if (p >= q || q - p > 18 || (*p == '0' && q - p > 1)) return false;
    json_int_t n = 0;
    for (; p < q; p++) {
        if (*p < '0' || *p > '9') return false;
        n = n * 10 + (*p - '0');
    }
    *out = neg ? -n : n;
    return true;
}

/* The values every request carries ("name", "datatype", "shape": plain strings, integers and
 * arrays of integers) built directly: one jansson parser per value costs more than the rest
 * of a small request. NULL (nothing consumed, no error) when the value is not of that simple
 * form; jansson then checks it. */
static json_t *simple_value(const char *p, const char *q) {
    json_int_t n;
    if (*p == '"') {
        /* no escapes, no control characters; json_stringn checks the UTF-8 */
        for (const char *c = p + 1; c < q - 1; c++)
            if (*c == '\\' || (unsigned char)*c < 0x20) return NULL;
        return json_stringn(p + 1, (size_t)(q - p - 2));
    }
    if (*p == '[') {
        json_t *arr = json_array();
        const char *c = p + 1;
        while (arr && c < q && is_ws(*c)) c++;
        if (arr && c < q && *c == ']' && c + 1 == q) return arr;
        while (arr) {
            const char *e = c;
            while (e < q && (*e == '-' || (*e >= '0' && *e <= '9'))) e++;
            json_t *v = small_int(c, e, &n) ? json_integer(n) : NULL;
            if (!v || json_array_append_new(arr, v)) break;
            while (e < q && is_ws(*e)) e++;
            if (e < q && *e == ',') {
                c = e + 1;
                while (c < q && is_ws(*c)) c++;
                continue;
            }
            if (e < q && *e == ']' && e + 1 == q) return arr;
            break;
        }
        json_decref(arr);
        return NULL;
    }
    return small_int(p, q, &n) ? json_integer(n) : NULL;
}

/* A small value (anything but tensor data) through jansson, which checks it fully. */
static json_t *load_value(jparse *ps, const char **pp, int depth) {
    const char *p = *pp, *q = skip_value(ps, p, depth);
    if (!q) return NULL;
    json_t *simple = simple_value(p, q);
    if (simple) {
        *pp = q;
        return simple;
    }
    json_error_t je;
    json_t *v = json_loadb(p, (size_t)(q - p), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        size_t at = je.position > 0 ? (size_t)je.position - 1 : 0;
        json_fail(ps, p + IFD_MIN(at, (size_t)(q - p)), "%s", je.text);
        return NULL;
    }
    *pp = q;
    return v;
}

enum { OBJ_ROOT, OBJ_INPUT };

static bool record_data_span(jparse *ps, size_t index, const char *p, const char *q) {
    if (index >= ps->n_data) {
        size_t n = IFD_MAX(index + 1, 2 * ps->n_data);
        span *s = ifd_realloc(ps->data, n * sizeof *s);
        if (!s) return false;
        memset(s + ps->n_data, 0, (n - ps->n_data) * sizeof *s);
        ps->data = s;
        ps->n_data = n;
    }
    ps->data[index] = (span){p, q};
    return true;
}

static json_t *parse_inputs(jparse *ps, const char **pp, int depth);

/* The object at *pp ('{'), at nesting depth `depth`, into a json_t; kind says which of its
 * members are parsed here rather than by jansson: "inputs" of the root, "data" of an input
 * (recorded as a span, with null in the json_t). */
static json_t *parse_object(jparse *ps, const char **pp, int depth, int kind, size_t index) {
    const char *p = *pp, *end = ps->end, *why;
    char *keybuf = NULL;
    json_t *obj = json_object();
    if (!obj) {
        oom_fail(ps);
        return NULL;
    }
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        *pp = p + 1;
        return obj;
    }
    for (;;) {
        if (p >= end || *p != '"') {
            json_fail(ps, p, p < end ? "string or '}' expected" : "unexpected end of input");
            goto fail;
        }
        bool escaped;
        const char *q = scan_string(p, end, false, &escaped, &why);
        if (!q) {
            json_fail(ps, p, "%s", why);
            goto fail;
        }
        const char *key = p + 1;
        size_t klen = (size_t)(q - p) - 2;
        if (escaped) {
            keybuf = ifd_malloc((size_t)(q - p));
            if (!keybuf) {
                oom_fail(ps);
                goto fail;
            }
            klen = decode_string(p, q, keybuf);
            key = keybuf;
        }
        const char *keypos = p;
        p = skip_ws(q, end);
        if (p >= end || *p != ':') {
            json_fail(ps, p, "':' expected");
            goto fail;
        }
        p = skip_ws(p + 1, end);
        if (json_object_getn(obj, key, klen)) {
            json_fail(ps, keypos, "duplicate object key \"%.*s\"", (int)IFD_MIN(klen, 64), key);
            goto fail;
        }
        json_t *v;
        if (kind == OBJ_ROOT && klen == 6 && !memcmp(key, "inputs", 6) && p < end && *p == '[') {
            v = parse_inputs(ps, &p, depth + 1);
        } else if (kind == OBJ_INPUT && klen == 4 && !memcmp(key, "data", 4)) {
            const char *vend = skip_value(ps, p, depth);
            if (vend && !record_data_span(ps, index, p, vend)) oom_fail(ps);
            v = vend && !ps->rc ? json_null() : NULL;
            if (v) p = vend;
        } else {
            v = load_value(ps, &p, depth);
        }
        if (!v) goto fail;
        if (json_object_setn_new(obj, key, klen, v)) {
            oom_fail(ps);
            goto fail;
        }
        ifd_free(keybuf);
        keybuf = NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') break;
        json_fail(ps, p, p < end ? "',' or '}' expected" : "unexpected end of input");
        goto fail;
    }
    *pp = p + 1;
    return obj;
fail:
    ifd_free(keybuf);
    json_decref(obj);
    return NULL;
}

/* The root's "inputs" array at *pp, at nesting depth `depth`; object elements are inputs. */
static json_t *parse_inputs(jparse *ps, const char **pp, int depth) {
    const char *p = *pp, *end = ps->end;
    json_t *arr = json_array();
    if (!arr) {
        oom_fail(ps);
        return NULL;
    }
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        *pp = p + 1;
        return arr;
    }
    for (size_t i = 0;; i++) {
        json_t *v = p < end && *p == '{' ? parse_object(ps, &p, depth + 1, OBJ_INPUT, i)
                                         : load_value(ps, &p, depth);
        if (!v) goto fail;
        if (json_array_append_new(arr, v)) {
            oom_fail(ps);
            goto fail;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']') break;
        json_fail(ps, p, p < end ? "',' or ']' expected" : "unexpected end of input");
        goto fail;
    }
    *pp = p + 1;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

/* Pass 1 over a request body: *root gets every member but the inputs' data. */
static int parse_request(jparse *ps, json_t **root) {
    const char *p = skip_ws(ps->text, ps->end);
    size_t len = (size_t)(ps->end - ps->text);
    if (p >= ps->end || *p != '{') {
        /* not an object: jansson says what is wrong with it, or it is the wrong kind of value */
        if (!ifd_kserve_depth_ok(ps->text, len, IFD_KSERVE_MAX_DEPTH)) {
            snprintf(ps->err, ps->errsize, "invalid JSON: nesting deeper than %d",
                     IFD_KSERVE_MAX_DEPTH);
            return 400;
        }
        json_error_t je;
        json_t *v = json_loadb(ps->text, len, JSON_REJECT_DUPLICATES, &je);
        if (!v) {
            snprintf(ps->err, ps->errsize, "invalid JSON: %s (line %d, column %d)", je.text,
                     je.line, je.column);
            return 400;
        }
        json_decref(v);
        snprintf(ps->err, ps->errsize, "request must be a JSON object");
        return 400;
    }
    *root = parse_object(ps, &p, 1, OBJ_ROOT, 0);
    if (!*root) return ps->rc;
    p = skip_ws(p, ps->end);
    if (p < ps->end) json_fail(ps, p, "end of input expected after the request object");
    return ps->rc;
}

/* ---- decimal numbers ---------------------------------------------------------------------- */

/* A JSON number as an exact decimal when it has at most 19 significant digits. */
typedef struct decimal {
    uint64_t w;   /* the significant digits (the first 19 when there are more) */
    int64_t e10;  /* value = (-1)^neg * w * 10^e10 when exact */
    bool neg;
    bool exact;   /* every nonzero digit is in w */
    bool integer; /* no fraction or exponent part */
} decimal;

static const uint64_t g_pow10_u64[20] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
    1000000000000000000ull, 10000000000000000000ull};

/* The run of digits (up to eight) at the start of the 8 bytes at p: *k gets its length and the
 * result its value. SWAR: bytes are digits when (byte ^ '0') < 10; the k digits are shifted to
 * the top of the word behind zeros and combined pairwise by three multiplies, so numbers cost
 * no per-digit branches. */
static inline uint64_t leading_digits(const char *p, int *k) {
    uint64_t x;
    memcpy(&x, p, 8); /* p[0] is the low byte (x86, little-endian ARM) */
    x ^= 0x3030303030303030ull;
    uint64_t nondigit =
        (((x & 0x7f7f7f7f7f7f7f7full) + 0x7676767676767676ull) | x) & 0x8080808080808080ull;
    int n = nondigit ? __builtin_ctzll(nondigit) >> 3 : 8;
    *k = n;
    if (n == 0) return 0;
    x <<= 8 * (8 - n);
    x = x * 10 + (x >> 8); /* byte i: 10 * digit i + digit i+1 */
    x = ((x & 0x000000ff000000ffull) * (100 + (1000000ull << 32)) +
         ((x >> 16) & 0x000000ff000000ffull) * (1 + (10000ull << 32))) >> 32;
    return (uint32_t)x;
}

/* Digits at p into *w while it stays below 10^19: *taken counts the digits that went in,
 * *dropped the ones after (with *lost set when one of those is not 0). */
static inline const char *take_digits(const char *p, const char *end, uint64_t *w,
                                      int64_t *taken, int64_t *dropped, bool *lost) {
    uint64_t v = *w;
    int64_t t = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8 && v < 100000000000ull) { /* 10^11: eight more digits fit */
        int k;
        uint64_t chunk = leading_digits(p, &k);
        v = v * g_pow10_u64[k] + chunk;
        t += k;
        p += k;
        if (k < 8) break; /* p is past the digits */
    }
#endif
    for (; p < end && is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v < 1000000000000000000ull) { /* 10^18 */
            v = v * 10 + d;
            t++;
        } else {
            ++*dropped;
            *lost |= d != 0;
        }
    }
    *w = v;
    *taken += t;
    return p;
}

/* Scan the JSON number (RFC 8259 grammar) at p. Returns its end, or NULL when p holds none. */
static const char *scan_number(const char *p, const char *end, decimal *n) {
    uint64_t w = 0;
    int64_t taken = 0, dropped = 0;
    bool lost = false;
    n->neg = p < end && *p == '-';
    n->integer = true;
    p += n->neg;
    if (p >= end || !is_digit(*p)) return NULL;
    if (*p == '0') p++;
    else p = take_digits(p, end, &w, &taken, &dropped, &lost);
    int64_t e10 = dropped; /* integer digits that did not fit scale what did */
    if (p < end && *p == '.') {
        p++;
        n->integer = false;
        if (p >= end || !is_digit(*p)) return NULL;
        taken = 0;
        p = take_digits(p, end, &w, &taken, &dropped, &lost);
        e10 -= taken;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        n->integer = false;
        bool eneg = p < end && *p == '-';
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !is_digit(*p)) return NULL;
        int64_t x = 0;
        /* saturating: past 10^8 (more than a body's digits can offset) every value is 0 or
         * infinite, and such exponents take the strtod path anyway */
        for (; p < end && is_digit(*p); p++)
            if (x < 100000000) x = x * 10 + (*p - '0');
        e10 += eneg ? -x : x;
    }
    n->w = w;
    n->e10 = e10;
    n->exact = !lost;
    return p;
}

__extension__ typedef unsigned __int128 u128;


/* (hi:lo) / d with hi < d, so that the quotient fits 64 bits. */
static inline uint64_t div_128_64(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *rem) {
#if defined(__x86_64__) && defined(__GNUC__)
    uint64_t q, r;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(d) : "cc");
    *rem = r;
    return q;
#else
    u128 n = (u128)hi << 64 | lo;
    uint64_t q = (uint64_t)(n / d);
    *rem = (uint64_t)(n - (u128)q * d);
    return q;
#endif
}

static inline int bit_length_128(u128 x) {
    uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
    return hi ? 128 - __builtin_clzll(hi) : lo ? 64 - __builtin_clzll(lo) : 0;
}

/* w * 10^e10 (w > 0, |e10| <= 19) correctly rounded (to nearest, ties to even) to a P-bit
 * significand, in exact integer arithmetic: for e10 >= 0 the product fits 128 bits; for e10 < 0
 * w * 2^s / 10^-e10 is one 128-by-64-bit division whose quotient has 63 or 64 bits, and its
 * remainder says whether anything lies below them, so the rounding sees the exact value.
 * Sets value = *mant * 2^*e2 with *mant in [2^(P-1), 2^P); false when e10 is out of reach. */
static bool round_exact(uint64_t w, int64_t e10, int P, uint64_t *mant, int *e2) {
    u128 n;
    bool sticky = false;
    int scale;
    if (e10 >= 0) {
        if (e10 > 19) return false;
        n = (u128)w * g_pow10_u64[e10];
        scale = 0;
    } else {
        if (e10 < -19) return false;
        uint64_t d = g_pow10_u64[-e10], rem;
        int lw = 64 - __builtin_clzll(w), ld = 64 - __builtin_clzll(d);
        int s = 63 - lw + ld; /* >= 0; w << s < 2^(63 + ld) <= 2^64 * d: the quotient fits */
        u128 num = (u128)w << s;
        if ((uint64_t)(num >> 64) >= d) return false; /* unreachable; keeps divq from trapping */
        n = div_128_64((uint64_t)(num >> 64), (uint64_t)num, d, &rem);
        sticky = rem != 0;
        scale = -s;
    }
    int len = bit_length_128(n);
    if (len <= P) { /* exact: only reached without a remainder (a quotient has >= 63 bits) */
        *mant = (uint64_t)n << (P - len);
        *e2 = scale - (P - len);
        return !sticky;
    }
    int shift = len - P;
    uint64_t m = (uint64_t)(n >> shift);
    u128 rest = n & (((u128)1 << shift) - 1), half = (u128)1 << (shift - 1);
    if (rest > half || (rest == half && (sticky || (m & 1)))) {
        if (++m >> P) {
            m >>= 1;
            shift++;
        }
    }
    *mant = m;
    *e2 = scale + shift;
    return true;
}

static const double g_pow10_f64[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The double nearest n when it can be had without strtod; false sends the caller to strtod.
 * Clinger's fast path first (w and 10^|e10| exact in a double, so one IEEE operation rounds the
 * exact value once), then round_exact. Both need arithmetic in the declared type's precision. */
static bool decimal_to_f64(const decimal *n, double *out) {
    double x;
    if (!n->exact) return false;
    if (n->w == 0) {
        x = 0.0;
    }
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    else if (n->w <= (1ull << 53) && n->e10 >= -22 && n->e10 <= 22) {
        x = (double)n->w;
        x = n->e10 < 0 ? x / g_pow10_f64[-n->e10] : x * g_pow10_f64[n->e10];
    }
#endif
    else {
        uint64_t m;
        int e2;
        if (!round_exact(n->w, n->e10, 53, &m, &e2)) return false;
        int biased = e2 + 52 + 1023;
        if (biased < 1 || biased > 2046) return false; /* not reached for |e10| <= 19 */
        uint64_t bits = (uint64_t)biased << 52 | (m & ((1ull << 52) - 1));
        memcpy(&x, &bits, 8);
    }
    *out = n->neg ? -x : x;
    return true;
}

/* 10^-22 .. 10^19 as the nearest doubles (exact from 10^0 up), indexed by e10 + 22. */
static const double g_pow10_scale[42] = {
    1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9,
    1e-8,  1e-7,  1e-6,  1e-5,  1e-4,  1e-3,  1e-2,  1e-1,  1e0,   1e1,   1e2,   1e3,   1e4,   1e5,
    1e6,   1e7,   1e8,   1e9,   1e10,  1e11,  1e12,  1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19};

/* The float nearest n (what strtof gives). Going through the nearest double could round twice,
 * and that double costs a division; instead y = w * 10^e10 is computed with one double
 * multiply: w, 10^e10 and the product are each rounded at most once, so |y - exact| < 3 ulps of
 * y. Rounding y to float then gives the float nearest the exact value unless y lies within 8
 * ulps of a point halfway between two floats (the low 29 of its 52 fraction bits near 2^28);
 * those (about 1 in 2^25, and exact halfway cases such as 16777217) go to round_exact. For
 * 10^-22 <= |y| < 2^64 * 10^19 every float involved is normal, so the bit test is the whole
 * story. */
static bool decimal_to_f32(const decimal *n, float *out) {
    float x;
    if (!n->exact) return false;
    if (n->w == 0) {
        x = 0.0f;
        goto done;
    }
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    if (n->e10 >= -22 && n->e10 <= 19) {
        double y = (double)n->w * g_pow10_scale[n->e10 + 22];
        uint64_t bits;
        memcpy(&bits, &y, 8);
        if (((bits & ((1ull << 29) - 1)) - ((1ull << 28) - 8)) > 16) {
            x = (float)y;
            goto done;
        }
    }
#endif
    uint64_t m;
    int e2;
    if (!round_exact(n->w, n->e10, 24, &m, &e2)) return false;
    int biased = e2 + 23 + 127;
    if (biased < 1 || biased > 254) return false; /* not reached for |e10| <= 19 */
    uint32_t bits = (uint32_t)biased << 23 | (uint32_t)(m & 0x7fffffu);
    memcpy(&x, &bits, 4);
done:
    *out = n->neg ? -x : x;
    return true;
}

static locale_t g_c_locale;
static pthread_once_t g_c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* strtod/strtof in the "C" locale on a NUL-terminated copy of the token [p, q). False only when
 * the copy cannot be allocated. */
COLD static bool number_by_libc(const char *p, const char *q, bool single, double *d, float *f) {
    char small[128], *buf = small;
    size_t len = (size_t)(q - p);
    if (len >= sizeof small && !(buf = ifd_malloc(len + 1))) return false;
    memcpy(buf, p, len);
    buf[len] = 0;
    pthread_once(&g_c_locale_once, c_locale_init);
    if (single) *f = g_c_locale ? strtof_l(buf, NULL, g_c_locale) : strtof(buf, NULL);
    else *d = g_c_locale ? strtod_l(buf, NULL, g_c_locale) : strtod(buf, NULL);
    if (buf != small) ifd_free(buf);
    return true;
}

/* ---- pass 2: a data span into tensor storage -------------------------------------------------- */

static inline bool is_value_end(char c) { return is_ws(c) || c == ',' || c == ']' || c == '}'; }

/* A grammar error inside an input's data. */
COLD static const char *data_json_fail(decoder *d, const char *at, const char *what) {
    int line, col;
    text_position(d->text, at, &line, &col);
    d->rc = fail(d, "invalid JSON in \"data\": %s (line %d, column %d)", what, line, col);
    return NULL;
}

COLD static const char *out_of_range(decoder *d, int64_t index, const char *p, const char *q) {
    int len = (int)IFD_MIN(q - p, 40);
    d->rc = fail(d, "element %lld (%.*s%s) is out of range for %s", (long long)index, len, p,
                 q - p > 40 ? "..." : "", ifd_kserve_dtype_name(d->dtype));
    return NULL;
}

/* "NaN", "Infinity", "-Infinity" (and nan, inf, -inf), the strings the encoder writes. */
COLD static bool special_float(const char *p, const char *q, bool escaped, double *x) {
    char buf[16];
    size_t len = (size_t)(q - p);
    if (len > 6 * sizeof buf) return false; /* each decoded byte takes at most 6 bytes of text */
    char tmp[6 * sizeof buf];
    if (escaped) {
        len = decode_string(p, q, tmp);
        if (len >= sizeof buf) return false;
        memcpy(buf, tmp, len);
    } else {
        if (len - 2 >= sizeof buf) return false;
        len -= 2;
        memcpy(buf, p + 1, len);
    }
    buf[len] = 0;
    if (!strcmp(buf, "NaN") || !strcmp(buf, "nan")) *x = NAN;
    else if (!strcmp(buf, "Infinity") || !strcmp(buf, "inf")) *x = INFINITY;
    else if (!strcmp(buf, "-Infinity") || !strcmp(buf, "-inf")) *x = -INFINITY;
    else return false;
    return true;
}

static const char *store_float(decoder *d, const char *p, const char *end, unsigned char *dst,
                               int64_t index) {
    bool single = d->dtype != IFD_DTYPE_DOUBLE;
    double x = 0;
    float f = 0;
    const char *q;
    if (*p == '-' || is_digit(*p)) {
        decimal n;
        q = scan_number(p, end, &n);
        if (!q || (q < end && !is_value_end(*q))) return data_json_fail(d, q ? q : p, "bad number");
        bool done = single ? decimal_to_f32(&n, &f) : decimal_to_f64(&n, &x);
        if (!done && !number_by_libc(p, q, single, &x, &f)) {
            d->rc = 500;
            snprintf(d->err, d->errsize, "out of memory");
            return NULL;
        }
        if (single ? isinf(f) : isinf(x)) return out_of_range(d, index, p, q);
    } else if (*p == '"') {
        bool escaped;
        const char *why;
        q = scan_string(p, end, false, &escaped, &why);
        if (!q) return data_json_fail(d, p, why);
        if (!special_float(p, q, escaped, &x)) {
            d->rc = fail(d, "element %lld is not a number", (long long)index);
            return NULL;
        }
        f = (float)x;
        if (q < end && !is_value_end(*q)) return data_json_fail(d, q, "',' or ']' expected");
    } else {
        d->rc = fail(d, "element %lld is not a number", (long long)index);
        return NULL;
    }
    switch (d->dtype) {
    case IFD_DTYPE_DOUBLE: memcpy(dst, &x, 8); break;
    case IFD_DTYPE_FLOAT: memcpy(dst, &f, 4); break;
    case IFD_DTYPE_FLOAT16: {
        uint16_t h = f32_to_fp16(f);
        if (isfinite(f) && !isfinite(fp16_to_f32(h))) return out_of_range(d, index, p, q);
        memcpy(dst, &h, 2);
        break;
    }
    default: { /* BF16: FLT_MAX and its neighbours round up to infinity */
        uint16_t h = f32_to_bf16(f);
        if (isfinite(f) && !isfinite(bf16_to_f32(h))) return out_of_range(d, index, p, q);
        memcpy(dst, &h, 2);
        break;
    }
    }
    return q;
}

/* Integer elements are read exactly (no trip through double): sign and magnitude, then the
 * dtype's range. */
static const char *store_int(decoder *d, const char *p, const char *end, unsigned char *dst,
                             int64_t index) {
    const char *s = p;
    bool neg = *p == '-', over = false;
    uint64_t mag = 0;
    if (neg) p++;
    if (p >= end || !is_digit(*p)) {
        d->rc = fail(d, "element %lld is not an integer", (long long)index);
        return NULL;
    }
    if (*p == '0') {
        if (++p < end && is_digit(*p)) return data_json_fail(d, p, "bad number");
    } else {
        for (; p < end && is_digit(*p); p++) {
            unsigned dg = (unsigned)(*p - '0');
            if (mag > (UINT64_MAX - dg) / 10) over = true;
            else mag = mag * 10 + dg;
        }
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        d->rc = fail(d, "element %lld is not an integer", (long long)index);
        return NULL;
    }
    if (p < end && !is_value_end(*p)) return data_json_fail(d, p, "bad number");
    uint64_t max_pos, max_neg; /* largest magnitudes */
    switch (d->dtype) {
    case IFD_DTYPE_INT8: max_pos = INT8_MAX, max_neg = 128u; break;
    case IFD_DTYPE_INT16: max_pos = INT16_MAX, max_neg = 32768u; break;
    case IFD_DTYPE_INT32: max_pos = INT32_MAX, max_neg = 2147483648u; break;
    case IFD_DTYPE_INT64: max_pos = INT64_MAX, max_neg = (uint64_t)INT64_MAX + 1; break;
    case IFD_DTYPE_UINT8: max_pos = UINT8_MAX, max_neg = 0; break;
    case IFD_DTYPE_UINT16: max_pos = UINT16_MAX, max_neg = 0; break;
    case IFD_DTYPE_UINT32: max_pos = UINT32_MAX, max_neg = 0; break;
    case IFD_DTYPE_UINT64: max_pos = UINT64_MAX, max_neg = 0; break;
    default: d->rc = fail(d, "datatype not supported"); return NULL;
    }
    if (over || mag > (neg ? max_neg : max_pos)) return out_of_range(d, index, s, p);
    uint64_t v = neg ? 0 - mag : mag; /* two's complement of the value */
    switch (d->esize) {
    case 1: *dst = (unsigned char)v; break;
    case 2: { uint16_t y = (uint16_t)v; memcpy(dst, &y, 2); } break;
    case 4: { uint32_t y = (uint32_t)v; memcpy(dst, &y, 4); } break;
    default: memcpy(dst, &v, 8); break;
    }
    return p;
}

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0 && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The FP32 element most JSON encoders write for tensors, -?D.D{1,16} (json.dumps of float32
 * values, or of values rounded to some decimals), read in two SWAR steps with no per-digit
 * branches. Anything else (an exponent, more digits, a string, the last bytes of the text)
 * returns NULL and takes the general path, which rereads the token. The value is decided as in
 * decimal_to_f32, near-halfway cases included (they go to the general path). */
#define IFD_KSERVE_FAST_F32 1
static inline const char *fast_f32(const char *p, const char *end, float *out) {
    if (end - p < 20) return NULL; /* the reads below stay before p + 20 */
    bool neg = *p == '-';
    p += neg;
    unsigned d0 = (unsigned)(p[0] - '0');
    if (d0 > 9 || p[1] != '.') return NULL;
    int k1, k2 = 0;
    uint64_t w = leading_digits(p + 2, &k1);
    if (k1 == 0) return NULL;
    const char *q = p + 2 + k1;
    w += d0 * g_pow10_u64[k1];
    if (k1 == 8) {
        uint64_t v2 = leading_digits(q, &k2); /* 16 digits at most: w < 10^17 */
        w = w * g_pow10_u64[k2] + v2;
        q += k2;
    }
    if (!is_value_end(*q)) return NULL; /* a 17th digit, an exponent, or not JSON */
    double y = (double)w * g_pow10_scale[22 - k1 - k2];
    uint64_t bits;
    memcpy(&bits, &y, 8);
    if (((bits & ((1ull << 29) - 1)) - ((1ull << 28) - 8)) <= 16) return NULL;
    float x = (float)y;
    *out = neg ? -x : x;
    return q;
}
#endif

/* What a BYTES element costs against max_tensor_bytes besides its bytes: its slot in the
 * tensor (a pointer and a length), so that a request of many empty strings is bounded too. */
#define BYTES_ELEMENT_COST 16

/* Charge n bytes of BYTES data to the request's budget; false (413 set) when they do not fit. */
static bool charge_bytes(decoder *d, size_t n) {
    if (n <= *d->budget) {
        *d->budget -= n;
        return true;
    }
    snprintf(d->err, d->errsize, "input '%s': string data needs more than the bytes of tensor "
             "data a request may carry", d->name);
    d->rc = 413;
    return false;
}

/* A BYTES element: a JSON string, any bytes once decoded (\u0000 included). */
static const char *store_string(decoder *d, const char *p, const char *end, int64_t index) {
    bool escaped;
    const char *why;
    if (*p != '"') {
        d->rc = fail(d, "element %lld is not a string (BYTES data are JSON strings)",
                     (long long)index);
        return NULL;
    }
    const char *q = scan_string(p, end, true, &escaped, &why);
    if (!q) return data_json_fail(d, p, why);
    if (q < end && !is_value_end(*q)) return data_json_fail(d, q, "',' or ']' expected");
    const char *bytes = p + 1;
    size_t len = (size_t)(q - p) - 2;
    if (escaped) {
        /* decoding never lengthens a string, so the text's length bounds the scratch */
        if (d->scratch_cap < (size_t)(q - p)) {
            char *s = ifd_realloc(d->scratch, (size_t)(q - p));
            if (!s) {
                d->rc = 500;
                snprintf(d->err, d->errsize, "out of memory");
                return NULL;
            }
            d->scratch = s;
            d->scratch_cap = (size_t)(q - p);
        }
        len = decode_string(p, q, d->scratch);
        bytes = d->scratch;
    }
    if (!charge_bytes(d, len)) return NULL;
    if (ifd_tensor_set_string(d->tensor, index, bytes, len) != IFD_OK) {
        d->rc = 500;
        snprintf(d->err, d->errsize, "input '%s': out of memory", d->name);
        return NULL;
    }
    return q;
}

/* One scalar element at p (not '['); returns the position after it, or NULL with d->rc. */
static inline const char *store_scalar(decoder *d, const char *p, const char *end) {
    if (IFD_UNLIKELY(d->written >= d->count)) {
        d->rc = fail(d, "data holds more than the %lld elements its shape declares",
                     (long long)d->count);
        return NULL;
    }
    if (d->dtype == IFD_DTYPE_STRING) return store_string(d, p, end, d->written++);
    unsigned char *dst = d->dst + (size_t)d->written * d->esize;
#ifdef IFD_KSERVE_FAST_F32
    if (d->dtype == IFD_DTYPE_FLOAT) {
        float f;
        const char *q = fast_f32(p, end, &f);
        if (q) {
            memcpy(dst, &f, 4);
            d->written++;
            return q;
        }
    }
#endif
    int64_t index = d->written++;
    switch (d->dtype) {
    case IFD_DTYPE_FLOAT:
    case IFD_DTYPE_DOUBLE:
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16: return store_float(d, p, end, dst, index);
    case IFD_DTYPE_BOOL: {
        const char *q;
        if (end - p >= 4 && !memcmp(p, "true", 4)) {
            *dst = 1;
            q = p + 4;
        } else if (end - p >= 5 && !memcmp(p, "false", 5)) {
            *dst = 0;
            q = p + 5;
        } else {
            d->rc = fail(d, "element %lld is not true/false", (long long)index);
            return NULL;
        }
        if (q < end && !is_value_end(*q)) return data_json_fail(d, q, "bad literal");
        return q;
    }
    default: return store_int(d, p, end, dst, index);
    }
}

/* Decode the data text [p, end) into d->dst in row-major order, checking its grammar on the
 * way. As in walk(): siblings must agree, all arrays of the first one's length or all scalars,
 * arrays nest at most IFD_MAX_RANK deep, and the count is checked against the shape. Iterative:
 * one state per open array. */
static int decode_span(decoder *d, const char *p, const char *end) {
    struct level {
        int64_t n;        /* elements so far */
        int64_t inner;    /* length of the first child array; -1 before it closes */
        signed char kind; /* children: -1 none yet, 0 scalars, 1 arrays */
    } lv[IFD_MAX_RANK + 1];
    int depth = 0;
    p = skip_ws(p, end);
    if (p >= end) {
        data_json_fail(d, p, "value expected");
        return d->rc;
    }
    if (*p != '[') {
        if (!(p = store_scalar(d, p, end))) return d->rc;
        goto tail;
    }
    lv[0] = (struct level){0, -1, -1};
    p++;
    for (;;) {
        /* a value, or the ']' of an empty array */
        p = skip_ws(p, end);
        if (p >= end) {
            data_json_fail(d, p, "unexpected end of input");
            return d->rc;
        }
        struct level *l = &lv[depth];
        bool closing = false;
        if (*p == ']' && l->n == 0) {
            closing = true;
        } else {
            signed char kind = *p == '[';
            if (l->kind != kind) {
                if (l->kind >= 0) return fail(d, "ragged data: nested arrays differ in length or depth");
                l->kind = kind;
            }
            l->n++;
            if (kind) {
                if (depth + 1 > IFD_MAX_RANK) return fail(d, "data nests deeper than %d", IFD_MAX_RANK);
                lv[++depth] = (struct level){0, -1, -1};
                p++;
                continue;
            }
            if (*p == ']' || *p == ',') {
                data_json_fail(d, p, "value expected");
                return d->rc;
            }
            if (!(p = store_scalar(d, p, end))) return d->rc;
        }
        /* after a value: ',' for the next one, or ']' closing arrays */
        for (;;) {
            if (!closing) {
                p = skip_ws(p, end);
                if (p < end && *p == ',') {
                    p++;
                    break;
                }
                if (p >= end || *p != ']') {
                    data_json_fail(d, p, p < end ? "',' or ']' expected" : "unexpected end of input");
                    return d->rc;
                }
            }
            closing = false;
            p++;
            int64_t n = lv[depth].n;
            if (depth == 0) goto tail;
            l = &lv[--depth];
            if (l->inner < 0) l->inner = n;
            else if (l->inner != n) return fail(d, "ragged data: nested arrays differ in length or depth");
        }
    }
tail:
    p = skip_ws(p, end);
    if (p < end) data_json_fail(d, p, "',' or '}' expected after the data");
    return d->rc;
}

/* ---- requests ----------------------------------------------------------------------------- */

/* The binary section of a request, consumed in input order. */
typedef struct binsec {
    const char *data;
    size_t len, used;
    bool present; /* the request has an Inference-Header-Content-Length header */
} binsec;

/* An input's binary_data_size parameter: whether it is given, and whether it is a
 * non-negative integer (value). */
typedef struct size_param {
    bool present, valid;
    uint64_t value;
} size_param;

static size_param size_param_of(const json_t *v) {
    size_param s = {.present = v != NULL};
    if (v && json_is_integer(v) && json_integer_value(v) >= 0) {
        s.valid = true;
        s.value = (uint64_t)json_integer_value(v);
    }
    return s;
}

/* A BYTES input whose name, shape (dims, d->count elements) and parameters are checked: its
 * elements from the binary section (each a 4-byte little-endian length, then that many bytes;
 * binary_data_size is their total) or from the JSON strings of data. Sizes are checked before
 * the element array is allocated: every element takes at least 4 binary bytes or 1 byte of
 * JSON text, and costs BYTES_ELEMENT_COST plus its length against the budget. */
static int decode_bytes_input(decoder *d, int rank, const int64_t *dims, const size_param *bsize,
                              const span *data, size_t *budget, binsec *bin,
                              ifd_kserve_input *out) {
    size_t slots;
    if (!ifd_mul_size((size_t)d->count, BYTES_ELEMENT_COST, &slots) || slots > *budget) {
        snprintf(d->err, d->errsize, "input '%s': shape needs more than the %zu bytes of tensor "
                 "data a request may carry", d->name, *budget);
        return 413;
    }
    if (bsize->present && data)
        return fail(d, "has both \"data\" and a binary_data_size parameter");
    if (!bsize->present && !data) return fail(d, "\"data\" is missing");
    const char *src = NULL;
    size_t bs = 0;
    if (bsize->present) {
        if (!bsize->valid)
            return fail(d, "parameter binary_data_size must be a non-negative integer");
        if (!bin->present)
            return fail(d, "binary_data_size given but the request has no "
                           "Inference-Header-Content-Length header");
        if (bsize->value > (uint64_t)(bin->len - bin->used))
            return fail(d, "binary_data_size %lld runs past the end of the binary data (%zu bytes "
                           "left of %zu)", (long long)bsize->value,
                        bin->len - bin->used, bin->len);
        bs = (size_t)bsize->value;
        if ((uint64_t)d->count > bs / 4)
            return fail(d, "binary_data_size is %zu bytes; %lld BYTES elements need at least %llu "
                           "(a 4-byte length each)", bs, (long long)d->count,
                        (unsigned long long)d->count * 4);
        src = bin->data + bin->used;
        bin->used += bs;
    } else if ((uint64_t)d->count > (uint64_t)(data->end - data->p)) {
        return fail(d, "shape declares %lld elements; data cannot hold them", (long long)d->count);
    }
    *budget -= slots;
    if (ifd_tensor_create(IFD_DTYPE_STRING, rank, dims, &out->tensor) != IFD_OK) {
        snprintf(d->err, d->errsize, "input '%s': out of memory", d->name);
        return 500;
    }
    d->tensor = out->tensor;
    d->budget = budget;
    if (!bsize->present) {
        int rc = decode_span(d, data->p, data->end);
        ifd_free(d->scratch);
        d->scratch = NULL;
        if (rc) return rc;
        if (d->written != d->count)
            return fail(d, "data holds %lld elements, shape declares %lld", (long long)d->written,
                        (long long)d->count);
        return 0;
    }
    size_t at = 0;
    for (int64_t i = 0; i < d->count; i++) {
        if (bs - at < 4)
            return fail(d, "BYTES element %lld: its 4-byte length is cut off at byte %zu of the "
                           "%zu bytes of binary_data_size", (long long)i, at, bs);
        const unsigned char *l = (const unsigned char *)src + at;
        size_t len = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 | (size_t)l[3] << 24;
        at += 4;
        if (len > bs - at)
            return fail(d, "BYTES element %lld: its length %zu runs past the end of "
                           "binary_data_size (%zu bytes left of %zu)", (long long)i, len, bs - at,
                        bs);
        if (!charge_bytes(d, len)) return d->rc;
        if (ifd_tensor_set_string(out->tensor, i, src + at, len) != IFD_OK) {
            snprintf(d->err, d->errsize, "input '%s': out of memory", d->name);
            return 500;
        }
        at += len;
    }
    if (at != bs)
        return fail(d, "binary_data_size is %zu bytes; its %lld BYTES elements take %zu", bs,
                    (long long)d->count, at);
    return 0;
}

static int decode_tensor(decoder *d, int rank, const int64_t *dims, const size_param *bsize,
                         const span *data, size_t *budget, binsec *bin, void *storage,
                         ifd_kserve_input *out);

static int decode_input(const json_t *in, const span *data, const char *text, size_t index,
                        size_t *budget, binsec *bin, ifd_kserve_input *out, char *err,
                        size_t errsize) {
    decoder d = {.err = err, .errsize = errsize, .name = "?", .text = text};
    char idx[32];
    const json_t *name = json_object_get(in, "name"), *shape = json_object_get(in, "shape");
    const json_t *dt = json_object_get(in, "datatype");
    const json_t *params = json_object_get(in, "parameters");
    bool has_data = data && data->p;
    if (!json_is_string(name)) return fail(&d, "\"name\" must be a string");
    d.name = json_string_value(name);
    if (strlen(d.name) > IFD_KSERVE_MAX_NAME) {
        snprintf(idx, sizeof idx, "#%zu", index);
        d.name = idx;
        return fail(&d, "name longer than %d bytes", IFD_KSERVE_MAX_NAME);
    }
    out->name = d.name;
    if (params && !json_is_object(params)) return fail(&d, "\"parameters\" must be an object");
    const json_t *bsize = params ? json_object_get(params, "binary_data_size") : NULL;
    if (!json_is_string(dt)) return fail(&d, "\"datatype\" must be a string");
    d.dtype = ifd_kserve_dtype_from_name(json_string_value(dt));
    if (d.dtype == IFD_DTYPE_UNDEFINED)
        return fail(&d, "unknown datatype \"%.32s\"", json_string_value(dt));
    out->dtype = d.dtype;
    if (!json_is_array(shape)) return fail(&d, "\"shape\" must be an array of integers");
    size_t rank = json_array_size(shape);
    if (rank > IFD_MAX_RANK) return fail(&d, "rank %zu exceeds %d", rank, IFD_MAX_RANK);
    int64_t dims[IFD_MAX_RANK];
    /* The product of the non-zero dims must fit even when another dim is 0, so the verdict
     * does not depend on the order of the dims. */
    int64_t product = 1;
    bool zero = false;
    for (size_t i = 0; i < rank; i++) {
        const json_t *e = json_array_get(shape, i);
        if (!json_is_integer(e)) return fail(&d, "shape[%zu] is not an integer", i);
        dims[i] = json_integer_value(e);
        if (dims[i] < 0) return fail(&d, "shape[%zu] is negative (%lld)", i, (long long)dims[i]);
        if (dims[i] == 0) zero = true;
        else if (!ifd_mul_i64(product, dims[i], &product))
            return fail(&d, "shape's element count overflows");
    }
    d.count = zero ? 0 : product;
    size_param bs = size_param_of(bsize);
    return decode_tensor(&d, (int)rank, dims, &bs, has_data ? data : NULL, budget, bin, NULL,
                         out);
}

/* An input whose name, datatype (d->name, d->dtype) and shape (rank, dims; d->count elements)
 * are checked: its tensor, from data (NULL: no "data") or from the binary section. storage,
 * when not NULL, is where numeric elements from data go: the tensor borrows it (it holds the
 * tensor's bytes, 64-byte aligned, and outlives it); NULL: the tensor allocates its own. */
static int decode_tensor(decoder *d, int rank, const int64_t *dims, const size_param *bsize,
                         const span *data, size_t *budget, binsec *bin, void *storage,
                         ifd_kserve_input *out) {
    if (d->dtype == IFD_DTYPE_STRING)
        return decode_bytes_input(d, rank, dims, bsize, data, budget, bin, out);
    d->esize = ifd_dtype_size(d->dtype);
    size_t nbytes;
    if (!ifd_mul_size((size_t)d->count, d->esize, &nbytes) || nbytes > *budget) {
        snprintf(d->err, d->errsize,
                 "input '%s': shape needs more than the %zu bytes of tensor data a request may carry",
                 d->name, *budget);
        return 413;
    }
    if (bsize->present) {
        if (data) return fail(d, "has both \"data\" and a binary_data_size parameter");
        if (!bsize->valid)
            return fail(d, "parameter binary_data_size must be a non-negative integer");
        if (!bin->present)
            return fail(d, "binary_data_size given but the request has no "
                           "Inference-Header-Content-Length header");
        uint64_t bs = bsize->value;
        if (bs != (uint64_t)nbytes)
            return fail(d, "binary_data_size is %llu bytes; shape and datatype %s need %zu",
                        (unsigned long long)bs, ifd_kserve_dtype_name(d->dtype), nbytes);
        if (nbytes > bin->len - bin->used)
            return fail(d, "binary_data_size %zu runs past the end of the binary data (%zu bytes "
                           "left of %zu)", nbytes, bin->len - bin->used, bin->len);
        const char *src = bin->data + bin->used;
        bin->used += nbytes;
        *budget -= nbytes;
        if (d->dtype == IFD_DTYPE_BOOL)
            for (size_t i = 0; i < nbytes; i++)
                if ((unsigned char)src[i] > 1)
                    return fail(d, "BOOL element %zu is %u, not 0 or 1", i,
                                (unsigned char)src[i]);
        /* the body outlives the request's tensors: borrow the bytes when they are aligned */
        ifd_status st;
        if ((uintptr_t)src % d->esize == 0) {
            st = ifd_tensor_wrap(d->dtype, rank, dims, (void *)src, nbytes, &out->tensor);
        } else {
            st = ifd_tensor_create(d->dtype, rank, dims, &out->tensor);
            if (st == IFD_OK && nbytes) memcpy(ifd_tensor_data(out->tensor), src, nbytes);
        }
        if (st != IFD_OK) {
            snprintf(d->err, d->errsize, "input '%s': out of memory", d->name);
            return 500;
        }
        return 0;
    }
    if (!data) return fail(d, "\"data\" is missing");
    /* JSON needs at least one byte per element: refuse an impossible count before allocating */
    if ((uint64_t)d->count > (uint64_t)(data->end - data->p))
        return fail(d, "shape declares %lld elements; data cannot hold them", (long long)d->count);
    *budget -= nbytes;
    if ((storage ? ifd_tensor_wrap(d->dtype, rank, dims, storage, nbytes, &out->tensor)
                 : ifd_tensor_create(d->dtype, rank, dims, &out->tensor)) != IFD_OK) {
        snprintf(d->err, d->errsize, "input '%s': out of memory", d->name);
        return 500;
    }
    d->dst = ifd_tensor_data(out->tensor);
    int rc = decode_span(d, data->p, data->end);
    if (rc) return rc;
    if (d->written != d->count)
        return fail(d, "data holds %lld elements, shape declares %lld", (long long)d->written,
                    (long long)d->count);
    return 0;
}

int ifd_kserve_request_parse(const char *body, size_t len, size_t max_tensor_bytes,
                             ifd_kserve_request *out, char *err, size_t errsize) {
    return ifd_kserve_request_parse_binary(body, len, 0, max_tensor_bytes, out, err, errsize);
}

/* A boolean parameter: -1 when absent; 400 from the caller when present and not a boolean. */
static int bool_param(const json_t *params, const char *key) {
    const json_t *v = params ? json_object_get(params, key) : NULL;
    if (!v) return -1;
    return json_is_boolean(v) ? json_is_true(v) : -2;
}

static int request_fail(char *err, size_t errsize, int status, const char *fmt, ...)
    IFD_PRINTF(4, 5);
static int request_fail(char *err, size_t errsize, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- the common request, without jansson ---------------------------------------------------
 * Most requests are a few inputs with plain names, a datatype, a shape and data, maybe an id,
 * requested outputs and the binary-data parameters. Building a json_t for their small values
 * (a dozen allocations or more) cost more than the rest of a small request, so fast_parse
 * reads a body of that form directly into fast_request and builds the request with one
 * allocation besides the tensors. It accepts a subset of what parse_request accepts and gives
 * the same result for it: strings are printable ASCII without escapes, integers are what
 * small_int takes, objects hold only the keys named below, each once, parameters only the
 * binary-data ones with values of their type. Anything else, and every error but running out
 * of memory, makes it return FAST_FALLBACK, and the request is parsed again by the general
 * path, which alone writes error messages (so they do not depend on which path ran). */

#define FAST_FALLBACK (-1)
#define FAST_MAX_IO 16 /* more inputs or outputs go the general way */

typedef struct fast_str {
    const char *p; /* after the opening quote */
    size_t len;
} fast_str;

typedef struct fast_input {
    unsigned seen; /* FI_* bits */
    fast_str name, datatype;
    int rank;
    int64_t dims[IFD_MAX_RANK];
    span data;
    size_param bsize;
    /* pass 2 */
    ifd_dtype dtype;
    int64_t count;
    size_t storage;  /* offset of its elements in the request's block; 0: none there */
} fast_input;

enum { FI_NAME = 1, FI_DATATYPE = 2, FI_SHAPE = 4, FI_DATA = 8, FI_PARAMS = 16 };

typedef struct fast_output {
    fast_str name;
    int binary_data, binary_data_output; /* -1: not said */
} fast_output;

typedef struct fast_request {
    jparse ps;            /* for skip_value over "data" (its messages are not used) */
    bool has_id;
    fast_str id;
    int binary_output;    /* -1: not said */
    size_t n_inputs, n_outputs;
    size_t strings;       /* bytes of the names and the id, each with its NUL */
    fast_input inputs[FAST_MAX_IO];
    fast_output outputs[FAST_MAX_IO];
} fast_request;

/* A string of printable ASCII without escapes at p ('"'); NULL when not. */
static const char *fast_string(const char *p, const char *end, fast_str *out) {
    if (p >= end || *p != '"') return NULL;
    const char *s = ++p;
    while (s < end && *s != '"') {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '\\') return NULL;
        s++;
    }
    if (s >= end) return NULL;
    out->p = p;
    out->len = (size_t)(s - p);
    return s + 1;
}

static inline bool fast_key(const fast_str *k, const char *name, size_t n) {
    return k->len == n && !memcmp(k->p, name, n);
}

/* true or false */
static const char *fast_bool(const char *p, const char *end, int *out) {
    if (end - p >= 4 && !memcmp(p, "true", 4)) {
        *out = 1;
        return p + 4;
    }
    if (end - p >= 5 && !memcmp(p, "false", 5)) {
        *out = 0;
        return p + 5;
    }
    return NULL;
}

/* An integer as small_int takes it (the value simple_value would make) */
static const char *fast_int(const char *p, const char *end, int64_t *out) {
    const char *e = p;
    while (e < end && (*e == '-' || is_digit(*e))) e++;
    json_int_t n;
    if (!small_int(p, e, &n)) return NULL;
    *out = n;
    return e;
}

/* After a member or element: ',' (true, *more) or the closer (true, !*more). */
static const char *fast_next(const char *p, const char *end, char closer, bool *more) {
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    *more = *p == ',';
    if (*p != ',' && *p != closer) return NULL;
    return skip_ws(p + 1, end);
}

/* The key at p and the ':' after it; returns the value's position. */
static const char *fast_member(const char *p, const char *end, fast_str *key) {
    p = fast_string(p, end, key);
    if (!p) return NULL;
    p = skip_ws(p, end);
    if (p >= end || *p != ':') return NULL;
    return skip_ws(p + 1, end);
}

/* {"k": true|false, ...} with only the keys k0 and k1 (k1 may be NULL), each at most once;
 * their values in *v0 and *v1 (untouched when absent). */
static const char *fast_bool_params(const char *p, const char *end, const char *k0, int *v0,
                                    const char *k1, int *v1) {
    if (p >= end || *p != '{') return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return p + 1;
    unsigned seen = 0;
    for (bool more = true; more;) {
        fast_str key;
        if (!(p = fast_member(p, end, &key))) return NULL;
        unsigned bit = fast_key(&key, k0, strlen(k0)) ? 1 : k1 && fast_key(&key, k1, strlen(k1)) ? 2 : 0;
        if (!bit || (seen & bit)) return NULL;
        seen |= bit;
        if (!(p = fast_bool(p, end, bit == 1 ? v0 : v1))) return NULL;
        if (!(p = fast_next(p, end, '}', &more))) return NULL;
    }
    return p;
}

/* [int, ...] of at most IFD_MAX_RANK integers */
static const char *fast_shape(const char *p, const char *end, fast_input *in) {
    if (p >= end || *p != '[') return NULL;
    p = skip_ws(p + 1, end);
    in->rank = 0;
    if (p < end && *p == ']') return p + 1;
    for (bool more = true; more;) {
        if (in->rank == IFD_MAX_RANK || !(p = fast_int(p, end, &in->dims[in->rank]))) return NULL;
        in->rank++;
        if (!(p = fast_next(p, end, ']', &more))) return NULL;
    }
    return p;
}

static const char *fast_input_object(fast_request *r, const char *p, fast_input *in) {
    const char *end = r->ps.end;
    if (p >= end || *p != '{') return NULL;
    in->seen = 0;
    in->bsize = (size_param){0};
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return NULL; /* no name: the general path says so */
    for (bool more = true; more;) {
        fast_str key;
        if (!(p = fast_member(p, end, &key))) return NULL;
        unsigned bit = fast_key(&key, "name", 4)       ? FI_NAME
                       : fast_key(&key, "datatype", 8)   ? FI_DATATYPE
                       : fast_key(&key, "shape", 5)      ? FI_SHAPE
                       : fast_key(&key, "data", 4)       ? FI_DATA
                       : fast_key(&key, "parameters", 10) ? FI_PARAMS
                                                         : 0;
        if (!bit || (in->seen & bit)) return NULL;
        in->seen |= bit;
        switch (bit) {
        case FI_NAME: p = fast_string(p, end, &in->name); break;
        case FI_DATATYPE: p = fast_string(p, end, &in->datatype); break;
        case FI_SHAPE: p = fast_shape(p, end, in); break;
        case FI_DATA: {
            /* as parse_object records it: the input object is at depth 3 */
            const char *q = skip_value(&r->ps, p, 3);
            in->data = (span){p, q};
            p = q;
            break;
        }
        default: { /* {"binary_data_size": N} or {} */
            if (p >= end || *p != '{') return NULL;
            p = skip_ws(p + 1, end);
            if (p < end && *p == '}') {
                p++;
                break;
            }
            fast_str k;
            int64_t n;
            if (!(p = fast_member(p, end, &k)) || !fast_key(&k, "binary_data_size", 16) ||
                !(p = fast_int(p, end, &n)) || n < 0)
                return NULL;
            in->bsize = (size_param){.present = true, .valid = true, .value = (uint64_t)n};
            p = skip_ws(p, end);
            if (p >= end || *p != '}') return NULL;
            p++;
            break;
        }
        }
        if (!p || !(p = fast_next(p, end, '}', &more))) return NULL;
    }
    if (!(in->seen & FI_NAME) || !(in->seen & FI_DATATYPE) || !(in->seen & FI_SHAPE) ||
        in->name.len > IFD_KSERVE_MAX_NAME)
        return NULL;
    r->strings += in->name.len + 1;
    return p;
}

static const char *fast_output_object(fast_request *r, const char *p, fast_output *o) {
    const char *end = r->ps.end;
    if (p >= end || *p != '{') return NULL;
    o->binary_data = o->binary_data_output = -1;
    unsigned seen = 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return NULL;
    for (bool more = true; more;) {
        fast_str key;
        if (!(p = fast_member(p, end, &key))) return NULL;
        unsigned bit = fast_key(&key, "name", 4) ? 1 : fast_key(&key, "parameters", 10) ? 2 : 0;
        if (!bit || (seen & bit)) return NULL;
        seen |= bit;
        p = bit == 1 ? fast_string(p, end, &o->name)
                     : fast_bool_params(p, end, "binary_data", &o->binary_data,
                                        "binary_data_output", &o->binary_data_output);
        if (!p || !(p = fast_next(p, end, '}', &more))) return NULL;
    }
    if (!(seen & 1)) return NULL;
    r->strings += o->name.len + 1;
    return p;
}

/* "inputs" or "outputs": a non-empty array of objects (an empty "outputs" too) */
static const char *fast_array(fast_request *r, const char *p, bool inputs) {
    const char *end = r->ps.end;
    if (p >= end || *p != '[') return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return inputs ? NULL : p + 1;
    for (bool more = true; more;) {
        size_t *n = inputs ? &r->n_inputs : &r->n_outputs;
        if (*n == FAST_MAX_IO) return NULL;
        p = inputs ? fast_input_object(r, p, &r->inputs[*n]) : fast_output_object(r, p, &r->outputs[*n]);
        if (!p) return NULL;
        ++*n;
        if (!(p = fast_next(p, end, ']', &more))) return NULL;
    }
    return p;
}

/* Pass 1 of the fast path over the whole body: false to fall back. */
static bool fast_scan(fast_request *r) {
    const char *end = r->ps.end, *p = skip_ws(r->ps.text, end);
    if (p >= end || *p != '{') return false;
    p = skip_ws(p + 1, end);
    unsigned seen = 0;
    for (bool more = true; more;) {
        fast_str key;
        if (!(p = fast_member(p, end, &key))) return false;
        unsigned bit = fast_key(&key, "inputs", 6)       ? 1
                       : fast_key(&key, "outputs", 7)    ? 2
                       : fast_key(&key, "id", 2)         ? 4
                       : fast_key(&key, "parameters", 10) ? 8
                                                         : 0;
        if (!bit || (seen & bit)) return false;
        seen |= bit;
        switch (bit) {
        case 1: p = fast_array(r, p, true); break;
        case 2: p = fast_array(r, p, false); break;
        case 4:
            if ((p = fast_string(p, end, &r->id))) r->strings += r->id.len + 1;
            r->has_id = true;
            break;
        default:
            p = fast_bool_params(p, end, "binary_data_output", &r->binary_output, NULL, NULL);
            break;
        }
        if (!p || !(p = fast_next(p, end, '}', &more))) return false;
    }
    return p == end && (seen & 1);
}

static char *fast_copy(char **at, const fast_str *s) {
    char *d = *at;
    memcpy(d, s->p, s->len);
    d[s->len] = 0;
    *at += s->len + 1;
    return d;
}

/* The request from a body of the common form: 0, 500 (out of memory, err set), or
 * FAST_FALLBACK with out to be freed. */
/* Numeric inputs up to this size (JSON data) keep their elements in the request's block
 * rather than in an allocation of their own. */
#define FAST_BLOCK_TENSOR_BYTES 4096

static int fast_parse(const char *body, size_t json_len, size_t max_tensor_bytes, binsec *bin,
                      ifd_kserve_request *out, char *err, size_t errsize) {
    fast_request r;
    r.ps = (jparse){.text = body, .end = body + json_len, .err = err, .errsize = errsize};
    r.has_id = false;
    r.binary_output = -1;
    r.n_inputs = r.n_outputs = r.strings = 0;
    if (!fast_scan(&r)) return FAST_FALLBACK;
    /* one block, out->inputs: the inputs, the strings they and the outputs borrow, then the
     * elements of small numeric inputs, each 64-byte aligned (the block is) */
    size_t n = r.n_inputs, m = r.n_outputs, head = n * sizeof *out->inputs;
    size_t size = (head + r.strings + 63) & ~(size_t)63;
    for (size_t i = 0; i < n; i++) {
        fast_input *in = &r.inputs[i];
        in->dtype = dtype_from_span(in->datatype.p, in->datatype.len);
        if (in->dtype == IFD_DTYPE_UNDEFINED) return FAST_FALLBACK;
        int64_t product = 1;
        bool zero = false;
        for (int k = 0; k < in->rank; k++) {
            if (in->dims[k] < 0) return FAST_FALLBACK;
            if (in->dims[k] == 0) zero = true;
            else if (!ifd_mul_i64(product, in->dims[k], &product)) return FAST_FALLBACK;
        }
        in->count = zero ? 0 : product;
        in->storage = 0;
        /* the bound keeps a shape that lies about its size from making a large block: JSON
         * data has at least a byte per element */
        size_t nbytes = (size_t)in->count * ifd_dtype_size(in->dtype);
        if (in->dtype != IFD_DTYPE_STRING && (in->seen & FI_DATA) && !in->bsize.present &&
            in->count > 0 && in->count <= FAST_BLOCK_TENSOR_BYTES &&
            in->count <= in->data.end - in->data.p && nbytes <= FAST_BLOCK_TENSOR_BYTES) {
            in->storage = size;
            size += (nbytes + 63) & ~(size_t)63;
        }
    }
    char *block = ifd_malloc(size);
    if (!block) return request_fail(err, errsize, 500, "out of memory");
    memset(block, 0, head);
    out->inputs = (ifd_kserve_input *)(void *)block;
    out->n_inputs = n;
    char *at = block + head;
    if (r.has_id) out->id = fast_copy(&at, &r.id);
    out->binary_output = r.binary_output == 1;
    size_t budget = max_tensor_bytes;
    for (size_t i = 0; i < n; i++) {
        const fast_input *in = &r.inputs[i];
        ifd_kserve_input *o = &out->inputs[i];
        decoder d = {.err = err, .errsize = errsize, .text = body};
        d.name = o->name = fast_copy(&at, &in->name);
        d.dtype = o->dtype = in->dtype;
        d.count = in->count;
        int rc = decode_tensor(&d, in->rank, in->dims, &in->bsize,
                               in->seen & FI_DATA ? &in->data : NULL, &budget, bin,
                               in->storage ? block + in->storage : NULL, o);
        if (rc) return rc == 500 ? 500 : FAST_FALLBACK;
    }
    if (bin->used != bin->len) return FAST_FALLBACK;
    if (m) {
        out->outputs = ifd_calloc(m, sizeof *out->outputs);
        out->output_binary = ifd_calloc(m, sizeof *out->output_binary);
        if (!out->outputs || !out->output_binary)
            return request_fail(err, errsize, 500, "out of memory");
        for (size_t j = 0; j < m; j++) {
            const fast_output *o = &r.outputs[j];
            out->outputs[j] = fast_copy(&at, &o->name);
            out->output_binary[j] =
                (signed char)(o->binary_data >= 0 ? o->binary_data : o->binary_data_output);
        }
        out->n_outputs = m;
    }
    return 0;
}

int ifd_kserve_request_parse_binary(const char *body, size_t body_len, size_t json_len,
                                    size_t max_tensor_bytes, ifd_kserve_request *out, char *err,
                                    size_t errsize) {
    memset(out, 0, sizeof *out);
    bool present = json_len != 0;
    if (!present) json_len = body_len;
    if (json_len > body_len)
        return request_fail(err, errsize, 400, "Inference-Header-Content-Length (%zu) is larger "
                            "than the body (%zu bytes)", json_len, body_len);
    binsec bin = {.data = body + json_len, .len = body_len - json_len, .present = present};
    int rc = fast_parse(body, json_len, max_tensor_bytes, &bin, out, err, errsize);
    if (rc != FAST_FALLBACK) return rc;
    ifd_kserve_request_free(out);
    bin.used = 0;
    jparse ps = {.text = body, .end = body + json_len, .err = err, .errsize = errsize};
    rc = parse_request(&ps, &out->root);
    if (rc) goto out;
    const char *key;
    json_t *val;
    json_object_foreach(out->root, key, val) {
        if (strcmp(key, "id") && strcmp(key, "parameters") && strcmp(key, "inputs") &&
            strcmp(key, "outputs")) {
            rc = request_fail(err, errsize, 400, "unknown field \"%.64s\" in the request", key);
            goto out;
        }
    }
    const json_t *id = json_object_get(out->root, "id");
    if (id) {
        if (!json_is_string(id)) {
            rc = request_fail(err, errsize, 400, "\"id\" must be a string");
            goto out;
        }
        out->id = json_string_value(id);
    }
    const json_t *params = json_object_get(out->root, "parameters");
    if (params && !json_is_object(params)) {
        rc = request_fail(err, errsize, 400, "\"parameters\" must be an object");
        goto out;
    }
    int bo = bool_param(params, "binary_data_output");
    if (bo == -2) {
        rc = request_fail(err, errsize, 400, "parameter binary_data_output must be true or false");
        goto out;
    }
    out->binary_output = bo == 1;
    const json_t *inputs = json_object_get(out->root, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) == 0) {
        rc = request_fail(err, errsize, 400, "\"inputs\" must be a non-empty array");
        goto out;
    }
    size_t n = json_array_size(inputs);
    out->inputs = ifd_calloc(n, sizeof *out->inputs);
    if (!out->inputs) {
        rc = request_fail(err, errsize, 500, "out of memory");
        goto out;
    }
    out->n_inputs = n;
    size_t budget = max_tensor_bytes;
    for (size_t i = 0; i < n; i++) {
        rc = decode_input(json_array_get(inputs, i), i < ps.n_data ? &ps.data[i] : NULL, body, i,
                          &budget, &bin, &out->inputs[i], err, errsize);
        if (rc) goto out;
    }
    if (bin.used != bin.len) {
        rc = request_fail(err, errsize, 400, "the inputs' binary_data_size values add up to %zu "
                          "bytes, the binary data after the %zu-byte JSON header is %zu bytes",
                          bin.used, json_len, bin.len);
        goto out;
    }
    const json_t *outputs = json_object_get(out->root, "outputs");
    if (outputs) {
        if (!json_is_array(outputs)) {
            rc = request_fail(err, errsize, 400, "\"outputs\" must be an array");
            goto out;
        }
        size_t m = json_array_size(outputs);
        out->outputs = m ? ifd_calloc(m, sizeof *out->outputs) : NULL;
        out->output_binary = m ? ifd_calloc(m, sizeof *out->output_binary) : NULL;
        if (m && (!out->outputs || !out->output_binary)) {
            rc = request_fail(err, errsize, 500, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < m; i++) {
            const json_t *o = json_array_get(outputs, i);
            const json_t *nm = json_object_get(o, "name"), *op = json_object_get(o, "parameters");
            if (!json_is_object(o) || !json_is_string(nm)) {
                rc = request_fail(err, errsize, 400,
                                  "outputs[%zu] must be an object with a string \"name\"", i);
                goto out;
            }
            if (op && !json_is_object(op)) {
                rc = request_fail(err, errsize, 400, "outputs[%zu].parameters must be an object", i);
                goto out;
            }
            int b1 = bool_param(op, "binary_data"), b2 = bool_param(op, "binary_data_output");
            if (b1 == -2 || b2 == -2) {
                rc = request_fail(err, errsize, 400,
                                  "outputs[%zu]: parameter binary_data must be true or false", i);
                goto out;
            }
            out->output_binary[out->n_outputs] = (signed char)(b1 >= 0 ? b1 : b2);
            out->outputs[out->n_outputs++] = json_string_value(nm);
        }
    }
out:
    ifd_free(ps.data);
    return rc;
}

void ifd_kserve_request_free(ifd_kserve_request *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_inputs; i++) ifd_tensor_free(r->inputs[i].tensor);
    ifd_free(r->inputs);
    ifd_free(r->outputs);
    ifd_free(r->output_binary);
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}

/* ---- encoding ------------------------------------------------------------------------------- */

/* ---- numbers out ---------------------------------------------------------------------------- */

/* Floating-point elements are written with the fewest significant digits whose decimal reads
 * back (correctly rounded, as strtof/strtod and every JSON parser round) as the same value: the
 * smallest P for which x correctly rounded to P digits (what %.Pg prints) round-trips. 0.1f is
 * "0.1", not %.9g's "0.100000001", and no printf runs per element (a 1000-class reply used to
 * make 1000 vfprintf calls). Notation follows %g and Python's repr: fixed for exponents -4 <= X
 * < 9 (float) or < 16 (double), else d.ddde+XX; integral values carry no ".0" ("3", as %.9g
 * printed them); -0 stays "-0". */

/* 5^0 .. 5^55 (5^55 < 2^128) as {high, low} 64-bit halves. */
static const uint64_t g_pow5_u128[56][2] = {
    {0x0000000000000000ull, 0x0000000000000001ull}, {0x0000000000000000ull, 0x0000000000000005ull},
    {0x0000000000000000ull, 0x0000000000000019ull}, {0x0000000000000000ull, 0x000000000000007dull},
    {0x0000000000000000ull, 0x0000000000000271ull}, {0x0000000000000000ull, 0x0000000000000c35ull},
    {0x0000000000000000ull, 0x0000000000003d09ull}, {0x0000000000000000ull, 0x000000000001312dull},
    {0x0000000000000000ull, 0x000000000005f5e1ull}, {0x0000000000000000ull, 0x00000000001dcd65ull},
    {0x0000000000000000ull, 0x00000000009502f9ull}, {0x0000000000000000ull, 0x0000000002e90eddull},
    {0x0000000000000000ull, 0x000000000e8d4a51ull}, {0x0000000000000000ull, 0x0000000048c27395ull},
    {0x0000000000000000ull, 0x000000016bcc41e9ull}, {0x0000000000000000ull, 0x000000071afd498dull},
    {0x0000000000000000ull, 0x0000002386f26fc1ull}, {0x0000000000000000ull, 0x000000b1a2bc2ec5ull},
    {0x0000000000000000ull, 0x000003782dace9d9ull}, {0x0000000000000000ull, 0x00001158e460913dull},
    {0x0000000000000000ull, 0x000056bc75e2d631ull}, {0x0000000000000000ull, 0x0001b1ae4d6e2ef5ull},
    {0x0000000000000000ull, 0x000878678326eac9ull}, {0x0000000000000000ull, 0x002a5a058fc295edull},
    {0x0000000000000000ull, 0x00d3c21bcecceda1ull}, {0x0000000000000000ull, 0x0422ca8b0a00a425ull},
    {0x0000000000000000ull, 0x14adf4b7320334b9ull}, {0x0000000000000000ull, 0x6765c793fa10079dull},
    {0x0000000000000002ull, 0x04fce5e3e2502611ull}, {0x000000000000000aull, 0x18f07d736b90be55ull},
    {0x0000000000000032ull, 0x7cb2734119d3b7a9ull}, {0x00000000000000fcull, 0x6f7c40458122964dull},
    {0x00000000000004eeull, 0x2d6d415b85acef81ull}, {0x00000000000018a6ull, 0xe32246c99c60ad85ull},
    {0x0000000000007b42ull, 0x6fab61f00de36399ull}, {0x000000000002684cull, 0x2e58e9b04570f1fdull},
    {0x00000000000c097cull, 0xe7bc90715b34b9f1ull}, {0x00000000003c2f70ull, 0x86aed236c807a1b5ull},
    {0x00000000012ced32ull, 0xa16a1b11e8262889ull}, {0x0000000005e0a1fdull, 0x2712875988becaadull},
    {0x000000001d6329f1ull, 0xc35ca4bfabb9f561ull}, {0x0000000092efd1b8ull, 0xd0cf37be5aa1cae5ull},
    {0x00000002deaf189cull, 0x140c16b7c528f679ull}, {0x0000000e596b7b0cull, 0x643c7196d9ccd05dull},
    {0x00000047bf19673dull, 0xf52e37f2410011d1ull}, {0x00000166bb7f0435ull, 0xc9e717bb45005915ull},
    {0x00000701a97b150cull, 0xf18376a85901bd69ull}, {0x000023084f676940ull, 0xb7915149bd08b30dull},
    {0x0000af298d050e43ull, 0x95d69670b12b7f41ull}, {0x00036bcfc1194751ull, 0xed30f03375d97c45ull},
    {0x00111b0ec57e6499ull, 0xa1f4b1014d3f6d59ull}, {0x00558749db77f700ull, 0x29c77506823d22bdull},
    {0x01aba4714957d300ull, 0xd0e549208b31adb1ull}, {0x085a36366eb71f04ull, 0x147a6da2b7f86475ull},
    {0x29c30f1029939b14ull, 0x6664242d97d9f649ull}, {0xd0cf4b50cfe20765ull, 0xfff4b4e3f741cf6dull}
};

static inline u128 pow5_u128(int t) { return (u128)g_pow5_u128[t][0] << 64 | g_pow5_u128[t][1]; }

/* M * 2^e2 * 10^t split into its integer part *whole (< 2^64: callers pick t so that it has
 * about ten digits) and whether a fraction is left. Exact: for t >= 0 the product M * 5^t
 * (M < 2^26, t <= 54: under 2^152) is kept in 192 bits before the binary shift; for t < 0 (only
 * floats of 10^10 and more, whose e2 is 8 or more and above -t) the value is M * 2^s, s >= 0,
 * over 5^-t, one 128-bit division. */
static bool scale_exact(uint64_t M, int e2, int t, uint64_t *whole) {
    int s = e2 + t;
    if (t < 0) {
        u128 num = (u128)M << s, d = pow5_u128(-t), q = num / d; /* s >= 0: see above */
        *whole = (uint64_t)q;
        return num - q * d != 0;
    }
    u128 p5 = pow5_u128(t);
    u128 lo = (u128)M * (uint64_t)p5, hi = (u128)M * (uint64_t)(p5 >> 64);
    hi += lo >> 64; /* the product is hi * 2^64 + (uint64_t)lo */
    uint64_t lo64 = (uint64_t)lo;
    if (s >= 0) { /* then the product is below 2^40 (the result has about ten digits) */
        *whole = lo64 << s;
        return false;
    }
    int k = -s;
    if (k < 64) {
        *whole = (uint64_t)(hi << (64 - k)) | lo64 >> k;
        return (lo64 & ((1ull << k) - 1)) != 0;
    }
    if (k == 64) {
        *whole = (uint64_t)hi;
        return lo64 != 0;
    }
    *whole = (uint64_t)(hi >> (k - 64));
    return lo64 != 0 || (hi & (((u128)1 << (k - 64)) - 1)) != 0;
}

/* floor(q * log10(2)) for |q| <= 1650 (78913 / 2^18 is log10(2) to 6 digits). */
static inline int floor_log10_pow2(int q) {
    return q >= 0 ? (int)((uint32_t)q * 78913u >> 18)
                  : -(int)(((uint32_t)-q * 78913u + (1u << 18) - 1) >> 18);
}

static const char g_digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The n decimal digits of v (leading zeros included) at p. */
static void put_digits(char *p, uint64_t v, int n) {
    while (n >= 2) {
        memcpy(p + n - 2, g_digit_pairs + 2 * (v % 100), 2);
        v /= 100;
        n -= 2;
    }
    if (n) p[0] = (char)('0' + v % 10);
}

static int digit_count(uint64_t v) {
    int n = 1;
    while (n < 20 && v >= g_pow10_u64[n]) n++;
    return n;
}

/* (-1)^neg * D * 10^(X - digits(D) + 1), D > 0, in JSON number syntax at out (at most 32
 * bytes: 17 digits, sign, point, e-308, or 0.0000 and 17 digits). X is the decimal exponent
 * of D's first digit. Returns the length. */
static size_t format_decimal(char *out, bool neg, uint64_t D, int X, int fixed_below) {
    while (D % 10 == 0) { /* a carry (9.99 -> 10.0) leaves trailing zeros */
        D /= 10;
    }
    int n = digit_count(D);
    char *p = out;
    if (neg) *p++ = '-';
    if (X >= -4 && X < fixed_below) {
        if (X < 0) { /* 0.000ddd */
            memcpy(p, "0.0000", (size_t)(1 - X));
            p += 1 - X;
            put_digits(p, D, n);
            p += n;
        } else if (X >= n - 1) { /* ddd000: an integral value */
            put_digits(p, D, n);
            p += n;
            memset(p, '0', (size_t)(X - n + 1));
            p += X - n + 1;
        } else { /* dd.ddd */
            put_digits(p, D, n);
            for (int i = n; i > X + 1; i--) p[i] = p[i - 1]; /* a few bytes: no memmove call */
            p[X + 1] = '.';
            p += n + 1;
        }
        return (size_t)(p - out);
    }
    put_digits(p + 1, D, n); /* d.ddde+XX as %g writes it */
    p[0] = p[1];
    if (n > 1) {
        p[1] = '.';
        p += n + 1;
    } else {
        p += 1;
    }
    *p++ = 'e';
    *p++ = X < 0 ? '-' : '+';
    int a = X < 0 ? -X : X;
    if (a >= 100) *p++ = (char)('0' + a / 100);
    memcpy(p, g_digit_pairs + 2 * (a % 100), 2);
    p += 2;
    return (size_t)(p - out);
}

/* A float scaled by 10^t (see format_float): N = floor(f * 10^t) in [10^9, 10^10), the scaled
 * ends L and H of its rounding interval as integer parts, whether each has a fraction left,
 * and whether the ends are included (the float's significand is even). */
typedef struct float_digits {
    uint64_t N, L, H;
    bool n_frac, l_frac, h_frac, even;
} float_digits;

/* f correctly rounded (half to even, as printf does) to P significant digits, into *D; whether
 * that decimal reads back as f. */
static inline bool round_trips(const float_digits *fd, int P, uint64_t *D) {
    uint64_t unit = g_pow10_u64[10 - P], d = fd->N / unit, r = fd->N - d * unit, half = unit / 2;
    if (r > half || (r == half && (fd->n_frac || (d & 1)))) d++;
    *D = d;
    uint64_t Z = d * unit; /* the decimal, scaled like N */
    if (fd->even) return (Z > fd->L || (Z == fd->L && !fd->l_frac)) && Z <= fd->H;
    return Z > fd->L && (Z < fd->H || (Z == fd->H && fd->h_frac));
}

/* The float f (finite) in shortest round-trip form at out (32 bytes); returns the length.
 * f = m * 2^e; its rounding interval (the reals strtof reads back as f) runs between the
 * midpoints to its neighbours, (4m - 2 or, at a power of two, 4m - 1) * 2^(e-2) and
 * (4m + 2) * 2^(e-2), ends included when m is even (ties go to the even neighbour). With t =
 * 9 - X (X = floor(log10 f)), f * 10^t and the two ends are computed exactly (integer part
 * and whether a fraction is left) with N = floor(f * 10^t) in [10^9, 10^10); f rounded to P
 * digits is then N rounded at 10 - P digits, and it round-trips when that value, times
 * 10^(10-P), lies in the scaled interval. Every step is integer arithmetic, so the answer is
 * exact; tests check it against a %.Pg + strtof search. */
static size_t format_float(char *out, float f) {
    /* an integral value below 2^24 (class labels, counts, 1.0): the float spacing there is at
     * most 1, so no decimal with fewer significant digits than the integer's own lies in its
     * rounding interval, and those digits are the answer */
    if (fabsf(f) < 16777216.0f) {
        int32_t i = (int32_t)f;
        if ((float)i == f && i != 0) {
            uint64_t n = i < 0 ? (uint64_t)-(int64_t)i : (uint64_t)i;
            return format_decimal(out, i < 0, n, digit_count(n) - 1, 9);
        }
    }
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bool neg = bits >> 31;
    uint32_t biased = bits >> 23 & 0xff, frac = bits & 0x7fffff;
    if (biased == 0 && frac == 0) {
        if (!neg) {
            out[0] = '0';
            return 1;
        }
        memcpy(out, "-0", 2);
        return 2;
    }
    uint64_t m = biased ? frac | 1u << 23 : frac;
    int e = biased ? (int)biased - 150 : -149;
    uint64_t lo_m = 4 * m - (frac == 0 && biased > 1 ? 1 : 2), hi_m = 4 * m + 2;
    int X = floor_log10_pow2(e + 63 - __builtin_clzll(m)); /* X or X - 1 */
    uint64_t N, L, H;
    bool n_frac;
    for (;;) {
        n_frac = scale_exact(4 * m, e - 2, 9 - X, &N);
        if (N < 10000000000ull) break;
        X++;
    }
    bool l_frac = scale_exact(lo_m, e - 2, 9 - X, &L);
    bool h_frac = scale_exact(hi_m, e - 2, 9 - X, &H);
    float_digits fd = {N, L, H, n_frac, l_frac, h_frac, (m & 1) == 0};
    uint64_t D = 0;
    int P = 0;
    if (frac == 0 && biased > 1) { /* lopsided interval: the first P that works, upwards */
        for (int p = 1; p <= 9 && !P; p++)
            if (round_trips(&fd, p, &D)) P = p;
    } else { /* success at P implies it at P + 1: down from 8 until one fails (model outputs
              * mostly need 8 or 9 digits, so this usually stops after one or two tries) */
        uint64_t Dp;
        for (int p = 8; p >= 1 && round_trips(&fd, p, &Dp); p--) {
            P = p;
            D = Dp;
        }
        if (!P && round_trips(&fd, 9, &D)) P = 9;
    }
    if (P) return format_decimal(out, neg, D, D == g_pow10_u64[P] ? X + 1 : X, 9);
    /* not reached: nine digits always round-trip a float */
    int n = snprintf(out, 32, "%.9g", (double)f);
    return n > 0 && n < 32 ? (size_t)n : 0;
}

/* The double d (finite) in shortest round-trip form at out (32 bytes); returns the length.
 * FP64 outputs are rare, so this searches with printf's correctly rounded digits and strtod
 * rather than carrying bignum arithmetic: 15 significant digits first, because any decimal of
 * at most 15 digits (DBL_DIG) that rounds to a normal double comes back from %.14e with its
 * digits intact, so when some P <= 15 round-trips, the 15-digit form is that P-digit decimal
 * with zeros after it. Subnormals have fewer bits than that argument needs and try every P. */
static size_t format_double(char *out, double d) {
    if (d == 0) {
        if (signbit(d)) {
            memcpy(out, "-0", 2);
            return 2;
        }
        out[0] = '0';
        return 1;
    }
    pthread_once(&g_c_locale_once, c_locale_init);
    size_t len = 0;
    for (int P = fabs(d) < DBL_MIN ? 1 : 15; P <= 17; P++) {
        char buf[40];
        int n = snprintf(buf, sizeof buf, "%.*e", P - 1, d); /* -d.ddde-XXX */
        if (n <= 0 || n >= (int)sizeof buf) break;
        uint64_t D = 0;
        const char *s = buf + (buf[0] == '-');
        for (; *s && *s != 'e'; s++)
            if (*s >= '0' && *s <= '9') D = D * 10 + (uint64_t)(*s - '0'); /* skips the point */
        if (*s != 'e' || D == 0) break;
        int X = atoi(s + 1);
        len = format_decimal(out, d < 0, D, X, 16);
        out[len] = 0;
        double back = g_c_locale ? strtod_l(out, NULL, g_c_locale) : strtod(out, NULL);
        if (back == d) return len;
    }
    return len; /* 17 digits always round-trip; len is their form */
}

/* Unsigned v in decimal at out (20 bytes); returns the length. */
static size_t format_u64(char *out, uint64_t v) {
    int n = digit_count(v);
    put_digits(out, v, n);
    return (size_t)n;
}

static void put_int(ifd_sbuf *b, int64_t v) {
    char buf[24];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        buf[n++] = '-';
        u = 0 - u; /* INT64_MIN too */
    }
    n += format_u64(buf + n, u);
    sbuf_put(b, buf, n);
}

static void put_uint(ifd_sbuf *b, uint64_t v) {
    char buf[24];
    sbuf_put(b, buf, format_u64(buf, v));
}

static void put_float(ifd_sbuf *b, float x) {
    if (isnan(x)) {
        sbuf_put(b, "\"NaN\"", 5);
    } else if (isinf(x)) {
        ifd_sbuf_puts(b, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else if (!b->failed && b->cap - b->len > 32 && (!b->limit || b->limit - b->len > 32)) {
        /* room under the capacity and the cap: format in place, no copy */
        b->len += format_float(b->data + b->len, x);
        b->data[b->len] = 0;
    } else { /* the buffer grows (or hits its cap) as for any append */
        char buf[32];
        sbuf_put(b, buf, format_float(buf, x));
    }
}

static void put_double(ifd_sbuf *b, double x) {
    char buf[40];
    if (isnan(x)) sbuf_put(b, "\"NaN\"", 5);
    else if (isinf(x)) ifd_sbuf_puts(b, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else sbuf_put(b, buf, format_double(buf, x));
}

void ifd_kserve_put_element(ifd_sbuf *b, ifd_dtype dt, const void *data, int64_t i) {
    const unsigned char *p = data;
    switch (dt) {
    case IFD_DTYPE_BOOL: ifd_sbuf_puts(b, p[i] ? "true" : "false"); break;
    case IFD_DTYPE_FLOAT: put_float(b, ((const float *)p)[i]); break;
    case IFD_DTYPE_DOUBLE: put_double(b, ((const double *)p)[i]); break;
    /* half types as the float they widen to exactly: its shortest form reads back through a
     * float or a double to the same half, where a half's own shortest could round twice */
    case IFD_DTYPE_FLOAT16: put_float(b, fp16_to_f32(((const uint16_t *)p)[i])); break;
    case IFD_DTYPE_BFLOAT16: put_float(b, bf16_to_f32(((const uint16_t *)p)[i])); break;
    case IFD_DTYPE_INT8: put_int(b, ((const int8_t *)p)[i]); break;
    case IFD_DTYPE_INT16: put_int(b, ((const int16_t *)p)[i]); break;
    case IFD_DTYPE_INT32: put_int(b, ((const int32_t *)p)[i]); break;
    case IFD_DTYPE_INT64: put_int(b, ((const int64_t *)p)[i]); break;
    case IFD_DTYPE_UINT8: put_uint(b, p[i]); break;
    case IFD_DTYPE_UINT16: put_uint(b, ((const uint16_t *)p)[i]); break;
    case IFD_DTYPE_UINT32: put_uint(b, ((const uint32_t *)p)[i]); break;
    case IFD_DTYPE_UINT64: put_uint(b, ((const uint64_t *)p)[i]); break;
    default: sbuf_lit(b, "null"); break;
    }
}

bool ifd_kserve_utf8_valid(const char *s, size_t len, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    while (p < e) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = utf8_sequence(p, e);
        if (!n) {
            if (bad_at) *bad_at = (size_t)(p - (const unsigned char *)s);
            return false;
        }
        p += n;
    }
    return true;
}

void ifd_kserve_put_string(ifd_sbuf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *e = p + len, *run = p;
    sbuf_put(b, "\"", 1);
    while (p < e) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
            continue;
        }
        size_t n = c >= 0x80 ? utf8_sequence(p, e) : 0;
        if (n) {
            p += n;
            continue;
        }
        sbuf_put(b, run, (size_t)(p - run));
        if (c == '"' || c == '\\') sbuf_put(b, (char[]){'\\', (char)c}, 2);
        else if (c == '\n') sbuf_put(b, "\\n", 2);
        else if (c == '\t') sbuf_put(b, "\\t", 2);
        else if (c == '\r') sbuf_put(b, "\\r", 2);
        else if (c < 0x20)
            sbuf_put(b, (char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
        else sbuf_put(b, "\\ufffd", 6); /* not UTF-8: callers that care check first */
        run = ++p;
    }
    sbuf_put(b, run, (size_t)(p - run));
    sbuf_put(b, "\"", 1);
}

/* Whether output j of a response goes in binary form: a per-output parameter wins over the
 * request's binary_data_output. */
static bool output_is_binary(const ifd_kserve_request *req, size_t j) {
    int ob = req->n_outputs && req->output_binary ? req->output_binary[j] : -1;
    return ob >= 0 ? ob == 1 : req->binary_output;
}

/* The binary form of a BYTES tensor: each element as a 4-byte little-endian length and its
 * bytes. Its size in *size; false when an element is too long for the length field. */
static bool bytes_binary_size(const ifd_tensor *t, size_t *size) {
    size_t total = 0;
    for (int64_t i = 0; i < ifd_tensor_count(t); i++) {
        size_t len = 0;
        ifd_tensor_get_string(t, i, &len);
        if (len > UINT32_MAX || !ifd_add_size(total, 4 + len, &total)) return false;
    }
    *size = total;
    return true;
}

static void put_bytes_binary(ifd_sbuf *b, const ifd_tensor *t) {
    for (int64_t i = 0; i < ifd_tensor_count(t) && !b->failed; i++) {
        size_t len = 0;
        const char *s = ifd_tensor_get_string(t, i, &len);
        unsigned char l[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                              (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
        sbuf_put(b, l, 4);
        sbuf_put(b, s, len);
    }
}

/* {"name":..., "datatype":..., "shape":[d0,d1 (the caller closes the shape). No printf: for a
 * small tensor it cost more than the rest of the reply. */
static void put_name_type_shape(ifd_sbuf *b, const char *name, const ifd_tensor *t) {
    sbuf_lit(b, "{\"name\":");
    ifd_sbuf_json_string(b, name);
    sbuf_lit(b, ",\"datatype\":\"");
    const char *dtype = ifd_kserve_dtype_name(ifd_tensor_dtype(t));
    ifd_sbuf_puts(b, dtype ? dtype : "(null)"); /* what printf made of a type KServe lacks */
    sbuf_lit(b, "\",\"shape\":[");
    for (int i = 0; i < ifd_tensor_rank(t); i++) {
        if (i) sbuf_put(b, ",", 1);
        put_int(b, ifd_tensor_dims(t)[i]);
    }
}

int ifd_kserve_encode_response(ifd_sbuf *b, const char *model_name, int64_t version,
                               const ifd_kserve_request *req, size_t n, const char *const *names,
                               ifd_tensor *const *outs, size_t *json_len, char *err,
                               size_t errsize) {
    bool any_binary = false;
    *json_len = 0;
    /* A JSON string holds UTF-8 text only. Triton writes BYTES elements into JSON as they are,
     * which makes the reply invalid JSON when they are not UTF-8, and tells clients to ask for
     * such outputs in binary form; here that is an error saying so, before anything is
     * written (escaping the bytes would hand the client different bytes without a sign). */
    for (size_t j = 0; j < n; j++) {
        const ifd_tensor *t = outs[j];
        if (ifd_tensor_dtype(t) != IFD_DTYPE_STRING) continue;
        if (output_is_binary(req, j)) {
            size_t size;
            if (!bytes_binary_size(t, &size)) {
                snprintf(err, errsize, "output '%s' has a BYTES element longer than 4 GiB, more "
                         "than the binary form's 4-byte length can say", names[j]);
                return 500;
            }
            continue;
        }
        for (int64_t i = 0; i < ifd_tensor_count(t); i++) {
            size_t len = 0, at = 0;
            const char *s = ifd_tensor_get_string(t, i, &len);
            if (!ifd_kserve_utf8_valid(s, len, &at)) {
                snprintf(err, errsize, "output '%s' element %lld is not valid UTF-8 (byte %zu), "
                         "which a JSON string cannot carry; ask for it in binary form with the "
                         "output parameter \"binary_data\": true", names[j], (long long)i, at);
                return 400;
            }
        }
    }
    sbuf_lit(b, "{\"model_name\":");
    ifd_sbuf_json_string(b, model_name);
    sbuf_lit(b, ",\"model_version\":\"");
    put_int(b, version);
    sbuf_put(b, "\"", 1);
    if (req->id) {
        sbuf_lit(b, ",\"id\":");
        ifd_sbuf_json_string(b, req->id);
    }
    sbuf_lit(b, ",\"outputs\":[");
    for (size_t j = 0; j < n; j++) {
        if (j) sbuf_lit(b, ",");
        if (!output_is_binary(req, j)) {
            ifd_kserve_encode_tensor(b, names[j], outs[j]);
            continue;
        }
        any_binary = true;
        const ifd_tensor *t = outs[j];
        size_t size = ifd_tensor_nbytes(t);
        if (ifd_tensor_dtype(t) == IFD_DTYPE_STRING) bytes_binary_size(t, &size);
        put_name_type_shape(b, names[j], t);
        sbuf_lit(b, "],\"parameters\":{\"binary_data_size\":");
        put_uint(b, size);
        sbuf_put(b, "}}", 2);
    }
    sbuf_lit(b, "]}");
    if (!any_binary || b->failed) return 0;
    *json_len = b->len;
    for (size_t j = 0; j < n; j++) {
        if (!output_is_binary(req, j)) continue;
        if (ifd_tensor_dtype(outs[j]) == IFD_DTYPE_STRING) put_bytes_binary(b, outs[j]);
        else sbuf_put(b, ifd_tensor_cdata(outs[j]), ifd_tensor_nbytes(outs[j]));
    }
    return 0;
}

void ifd_kserve_encode_tensor(ifd_sbuf *b, const char *name, const ifd_tensor *t) {
    ifd_dtype dt = ifd_tensor_dtype(t);
    put_name_type_shape(b, name, t);
    sbuf_lit(b, "],\"data\":[");
    int64_t n = ifd_tensor_count(t);
    if (dt == IFD_DTYPE_STRING) {
        for (int64_t i = 0; i < n && !b->failed; i++) {
            size_t len = 0;
            const char *s = ifd_tensor_get_string(t, i, &len);
            if (i) sbuf_put(b, ",", 1);
            ifd_kserve_put_string(b, s, len);
        }
        sbuf_lit(b, "]}");
        return;
    }
    const unsigned char *p = ifd_tensor_cdata(t);
    for (int64_t i = 0; i < n && !b->failed; i++) {
        if (i) sbuf_put(b, ",", 1);
        ifd_kserve_put_element(b, dt, p, i);
    }
    sbuf_lit(b, "]}");
}
