/* KServe v2 / Open Inference Protocol JSON tensors: request decoding into ifd_tensors (with
 * every size checked before it is allocated) and response encoding. Control JSON goes through
 * jansson; this file owns the "data" arrays. */
#include "serve/serve.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

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

void ifd_sbuf_append(ifd_sbuf *b, const void *p, size_t n) {
    if (!sbuf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void ifd_sbuf_puts(ifd_sbuf *b, const char *s) { ifd_sbuf_append(b, s, strlen(s)); }

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

ifd_dtype ifd_kserve_dtype_from_name(const char *name) {
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_dtypes); i++)
        if (!strcmp(name, g_dtypes[i].name)) return g_dtypes[i].dtype;
    return IFD_DTYPE_UNDEFINED;
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

/* The binary section of a request, consumed in input order. */
typedef struct binsec {
    const char *data;
    size_t len, used;
    bool present; /* the request has an Inference-Header-Content-Length header */
} binsec;

static int decode_input(const json_t *in, size_t index, size_t body_len, size_t *budget,
                        binsec *bin, ifd_kserve_input *out, char *err, size_t errsize) {
    decoder d = {.err = err, .errsize = errsize, .name = "?"};
    char idx[32];
    snprintf(idx, sizeof idx, "#%zu", index);
    d.name = idx;
    if (!json_is_object(in)) return fail(&d, "must be an object");
    const json_t *name = json_object_get(in, "name"), *shape = json_object_get(in, "shape");
    const json_t *dt = json_object_get(in, "datatype"), *data = json_object_get(in, "data");
    const json_t *params = json_object_get(in, "parameters");
    if (!json_is_string(name)) return fail(&d, "\"name\" must be a string");
    d.name = json_string_value(name);
    if (strlen(d.name) > IFD_KSERVE_MAX_NAME) {
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
    if (d.dtype == IFD_DTYPE_STRING) return fail(&d, "datatype BYTES is not supported");
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
    d.esize = ifd_dtype_size(d.dtype);
    size_t nbytes;
    if (!ifd_mul_size((size_t)d.count, d.esize, &nbytes) || nbytes > *budget) {
        snprintf(err, errsize,
                 "input '%s': shape needs more than the %zu bytes of tensor data a request may carry",
                 d.name, *budget);
        return 413;
    }
    if (bsize) {
        if (data) return fail(&d, "has both \"data\" and a binary_data_size parameter");
        if (!json_is_integer(bsize) || json_integer_value(bsize) < 0)
            return fail(&d, "parameter binary_data_size must be a non-negative integer");
        if (!bin->present)
            return fail(&d, "binary_data_size given but the request has no "
                            "Inference-Header-Content-Length header");
        uint64_t bs = (uint64_t)json_integer_value(bsize);
        if (bs != (uint64_t)nbytes)
            return fail(&d, "binary_data_size is %llu bytes; shape and datatype %s need %zu",
                        (unsigned long long)bs, ifd_kserve_dtype_name(d.dtype), nbytes);
        if (nbytes > bin->len - bin->used)
            return fail(&d, "binary_data_size %zu runs past the end of the binary data (%zu bytes "
                            "left of %zu)", nbytes, bin->len - bin->used, bin->len);
        const char *src = bin->data + bin->used;
        bin->used += nbytes;
        *budget -= nbytes;
        if (d.dtype == IFD_DTYPE_BOOL)
            for (size_t i = 0; i < nbytes; i++)
                if ((unsigned char)src[i] > 1)
                    return fail(&d, "BOOL element %zu is %u, not 0 or 1", i,
                                (unsigned char)src[i]);
        /* the body outlives the request's tensors: borrow the bytes when they are aligned */
        ifd_status st;
        if ((uintptr_t)src % d.esize == 0) {
            st = ifd_tensor_wrap(d.dtype, (int)rank, dims, (void *)src, nbytes, &out->tensor);
        } else {
            st = ifd_tensor_create(d.dtype, (int)rank, dims, &out->tensor);
            if (st == IFD_OK && nbytes) memcpy(ifd_tensor_data(out->tensor), src, nbytes);
        }
        if (st != IFD_OK) {
            snprintf(err, errsize, "input '%s': out of memory", d.name);
            return 500;
        }
        return 0;
    }
    if (!data) return fail(&d, "\"data\" is missing");
    /* JSON needs at least one byte per element: refuse an impossible count before allocating */
    if ((uint64_t)d.count > body_len)
        return fail(&d, "shape declares %lld elements; data cannot hold them", (long long)d.count);
    *budget -= nbytes;
    if (ifd_tensor_create(d.dtype, (int)rank, dims, &out->tensor) != IFD_OK) {
        snprintf(err, errsize, "input '%s': out of memory", d.name);
        return 500;
    }
    d.dst = ifd_tensor_data(out->tensor);
    int rc = walk(&d, data, 0);
    if (rc) return rc;
    if (d.written != d.count)
        return fail(&d, "data holds %lld elements, shape declares %lld", (long long)d.written,
                    (long long)d.count);
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

int ifd_kserve_request_parse_binary(const char *body, size_t body_len, size_t json_len,
                                    size_t max_tensor_bytes, ifd_kserve_request *out, char *err,
                                    size_t errsize) {
    memset(out, 0, sizeof *out);
    bool present = json_len != 0;
    if (!present) json_len = body_len;
    if (json_len > body_len) {
        snprintf(err, errsize, "Inference-Header-Content-Length (%zu) is larger than the body "
                 "(%zu bytes)", json_len, body_len);
        return 400;
    }
    binsec bin = {.data = body + json_len, .len = body_len - json_len, .present = present};
    size_t len = json_len;
    if (!ifd_kserve_depth_ok(body, len, IFD_KSERVE_MAX_DEPTH)) {
        snprintf(err, errsize, "invalid JSON: nesting deeper than %d", IFD_KSERVE_MAX_DEPTH);
        return 400;
    }
    json_error_t je;
    out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!out->root) {
        snprintf(err, errsize, "invalid JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        return 400;
    }
    if (!json_is_object(out->root)) {
        snprintf(err, errsize, "request must be a JSON object");
        return 400;
    }
    const char *key;
    json_t *val;
    json_object_foreach(out->root, key, val) {
        if (strcmp(key, "id") && strcmp(key, "parameters") && strcmp(key, "inputs") &&
            strcmp(key, "outputs")) {
            snprintf(err, errsize, "unknown field \"%.64s\" in the request", key);
            return 400;
        }
    }
    const json_t *id = json_object_get(out->root, "id");
    if (id) {
        if (!json_is_string(id)) {
            snprintf(err, errsize, "\"id\" must be a string");
            return 400;
        }
        out->id = json_string_value(id);
    }
    const json_t *params = json_object_get(out->root, "parameters");
    if (params && !json_is_object(params)) {
        snprintf(err, errsize, "\"parameters\" must be an object");
        return 400;
    }
    int bo = bool_param(params, "binary_data_output");
    if (bo == -2) {
        snprintf(err, errsize, "parameter binary_data_output must be true or false");
        return 400;
    }
    out->binary_output = bo == 1;
    const json_t *inputs = json_object_get(out->root, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) == 0) {
        snprintf(err, errsize, "\"inputs\" must be a non-empty array");
        return 400;
    }
    size_t n = json_array_size(inputs);
    out->inputs = ifd_calloc(n, sizeof *out->inputs);
    if (!out->inputs) {
        snprintf(err, errsize, "out of memory");
        return 500;
    }
    out->n_inputs = n;
    size_t budget = max_tensor_bytes;
    for (size_t i = 0; i < n; i++) {
        int rc = decode_input(json_array_get(inputs, i), i, len, &budget, &bin, &out->inputs[i],
                              err, errsize);
        if (rc) return rc;
    }
    if (bin.used != bin.len) {
        snprintf(err, errsize, "the inputs' binary_data_size values add up to %zu bytes, the "
                 "binary data after the %zu-byte JSON header is %zu bytes", bin.used, json_len,
                 bin.len);
        return 400;
    }
    const json_t *outputs = json_object_get(out->root, "outputs");
    if (outputs) {
        if (!json_is_array(outputs)) {
            snprintf(err, errsize, "\"outputs\" must be an array");
            return 400;
        }
        size_t m = json_array_size(outputs);
        out->outputs = m ? ifd_calloc(m, sizeof *out->outputs) : NULL;
        out->output_binary = m ? ifd_calloc(m, sizeof *out->output_binary) : NULL;
        if (m && (!out->outputs || !out->output_binary)) {
            snprintf(err, errsize, "out of memory");
            return 500;
        }
        for (size_t i = 0; i < m; i++) {
            const json_t *o = json_array_get(outputs, i);
            const json_t *nm = json_object_get(o, "name"), *op = json_object_get(o, "parameters");
            if (!json_is_object(o) || !json_is_string(nm)) {
                snprintf(err, errsize, "outputs[%zu] must be an object with a string \"name\"", i);
                return 400;
            }
            if (op && !json_is_object(op)) {
                snprintf(err, errsize, "outputs[%zu].parameters must be an object", i);
                return 400;
            }
            int b1 = bool_param(op, "binary_data"), b2 = bool_param(op, "binary_data_output");
            if (b1 == -2 || b2 == -2) {
                snprintf(err, errsize, "outputs[%zu]: parameter binary_data must be true or false",
                         i);
                return 400;
            }
            out->output_binary[out->n_outputs] = (signed char)(b1 >= 0 ? b1 : b2);
            out->outputs[out->n_outputs++] = json_string_value(nm);
        }
    }
    return 0;
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

static void put_double(ifd_sbuf *b, double x, bool single) {
    if (isnan(x)) ifd_sbuf_puts(b, "\"NaN\"");
    else if (isinf(x)) ifd_sbuf_puts(b, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else ifd_sbuf_printf(b, single ? "%.9g" : "%.17g", x);
}

void ifd_kserve_put_element(ifd_sbuf *b, ifd_dtype dt, const void *data, int64_t i) {
    const unsigned char *p = data;
    switch (dt) {
    case IFD_DTYPE_BOOL: ifd_sbuf_puts(b, p[i] ? "true" : "false"); break;
    case IFD_DTYPE_FLOAT: put_double(b, ((const float *)p)[i], true); break;
    case IFD_DTYPE_DOUBLE: put_double(b, ((const double *)p)[i], false); break;
    case IFD_DTYPE_FLOAT16: put_double(b, fp16_to_f32(((const uint16_t *)p)[i]), true); break;
    case IFD_DTYPE_BFLOAT16: put_double(b, bf16_to_f32(((const uint16_t *)p)[i]), true); break;
    case IFD_DTYPE_INT8: ifd_sbuf_printf(b, "%d", ((const int8_t *)p)[i]); break;
    case IFD_DTYPE_INT16: ifd_sbuf_printf(b, "%d", ((const int16_t *)p)[i]); break;
    case IFD_DTYPE_INT32: ifd_sbuf_printf(b, "%d", ((const int32_t *)p)[i]); break;
    case IFD_DTYPE_INT64: ifd_sbuf_printf(b, "%lld", (long long)((const int64_t *)p)[i]); break;
    case IFD_DTYPE_UINT8: ifd_sbuf_printf(b, "%u", p[i]); break;
    case IFD_DTYPE_UINT16: ifd_sbuf_printf(b, "%u", ((const uint16_t *)p)[i]); break;
    case IFD_DTYPE_UINT32: ifd_sbuf_printf(b, "%u", ((const uint32_t *)p)[i]); break;
    case IFD_DTYPE_UINT64:
        ifd_sbuf_printf(b, "%llu", (unsigned long long)((const uint64_t *)p)[i]);
        break;
    default: ifd_sbuf_puts(b, "null"); break;
    }
}

void ifd_kserve_encode_response(ifd_sbuf *b, const char *model_name, int64_t version,
                                const ifd_kserve_request *req, size_t n, const char *const *names,
                                ifd_tensor *const *outs, size_t *json_len) {
    bool any_binary = false;
    *json_len = 0;
    ifd_sbuf_puts(b, "{\"model_name\":");
    ifd_sbuf_json_string(b, model_name);
    ifd_sbuf_printf(b, ",\"model_version\":\"%lld\"", (long long)version);
    if (req->id) {
        ifd_sbuf_puts(b, ",\"id\":");
        ifd_sbuf_json_string(b, req->id);
    }
    ifd_sbuf_puts(b, ",\"outputs\":[");
    for (size_t j = 0; j < n; j++) {
        if (j) ifd_sbuf_puts(b, ",");
        /* a per-output parameter wins over the request's binary_data_output */
        int ob = req->n_outputs && req->output_binary ? req->output_binary[j] : -1;
        bool binary = ob >= 0 ? ob == 1 : req->binary_output;
        if (!binary) {
            ifd_kserve_encode_tensor(b, names[j], outs[j]);
            continue;
        }
        any_binary = true;
        const ifd_tensor *t = outs[j];
        ifd_sbuf_puts(b, "{\"name\":");
        ifd_sbuf_json_string(b, names[j]);
        ifd_sbuf_printf(b, ",\"datatype\":\"%s\",\"shape\":[",
                        ifd_kserve_dtype_name(ifd_tensor_dtype(t)));
        for (int i = 0; i < ifd_tensor_rank(t); i++)
            ifd_sbuf_printf(b, i ? ",%lld" : "%lld", (long long)ifd_tensor_dims(t)[i]);
        ifd_sbuf_printf(b, "],\"parameters\":{\"binary_data_size\":%zu}}", ifd_tensor_nbytes(t));
    }
    ifd_sbuf_puts(b, "]}");
    if (!any_binary || b->failed) return;
    *json_len = b->len;
    for (size_t j = 0; j < n; j++) {
        int ob = req->n_outputs && req->output_binary ? req->output_binary[j] : -1;
        if (ob >= 0 ? ob == 1 : req->binary_output)
            ifd_sbuf_append(b, ifd_tensor_cdata(outs[j]), ifd_tensor_nbytes(outs[j]));
    }
}

void ifd_kserve_encode_tensor(ifd_sbuf *b, const char *name, const ifd_tensor *t) {
    ifd_dtype dt = ifd_tensor_dtype(t);
    ifd_sbuf_puts(b, "{\"name\":");
    ifd_sbuf_json_string(b, name);
    ifd_sbuf_printf(b, ",\"datatype\":\"%s\",\"shape\":[", ifd_kserve_dtype_name(dt));
    for (int i = 0; i < ifd_tensor_rank(t); i++)
        ifd_sbuf_printf(b, i ? ",%lld" : "%lld", (long long)ifd_tensor_dims(t)[i]);
    ifd_sbuf_puts(b, "],\"data\":[");
    const unsigned char *p = ifd_tensor_cdata(t);
    int64_t n = ifd_tensor_count(t);
    for (int64_t i = 0; i < n && !b->failed; i++) {
        if (i) ifd_sbuf_append(b, ",", 1);
        ifd_kserve_put_element(b, dt, p, i);
    }
    ifd_sbuf_puts(b, "]}");
}
