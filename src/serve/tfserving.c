/* TF Serving REST: the :predict body in the row ("instances") and columnar ("inputs") formats,
 * its reply ("predictions" / "outputs", shaped as TF Serving shapes them), model status
 * (model_version_status) and metadata (signature_def "serving_default"). Tensors go through
 * the same decoder and element writer as KServe JSON (kserve_json.c); http.c routes. */
#include "serve/serve.h"

#include <stdio.h>
#include <string.h>

static const struct {
    ifd_dtype dtype;
    const char *name;
} g_tf_dtypes[] = {
    {IFD_DTYPE_FLOAT, "DT_FLOAT"},   {IFD_DTYPE_DOUBLE, "DT_DOUBLE"},
    {IFD_DTYPE_FLOAT16, "DT_HALF"},  {IFD_DTYPE_BFLOAT16, "DT_BFLOAT16"},
    {IFD_DTYPE_INT8, "DT_INT8"},     {IFD_DTYPE_INT16, "DT_INT16"},
    {IFD_DTYPE_INT32, "DT_INT32"},   {IFD_DTYPE_INT64, "DT_INT64"},
    {IFD_DTYPE_UINT8, "DT_UINT8"},   {IFD_DTYPE_UINT16, "DT_UINT16"},
    {IFD_DTYPE_UINT32, "DT_UINT32"}, {IFD_DTYPE_UINT64, "DT_UINT64"},
    {IFD_DTYPE_BOOL, "DT_BOOL"},     {IFD_DTYPE_STRING, "DT_STRING"},
};

const char *ifd_tfs_dtype_name(ifd_dtype dtype) {
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_tf_dtypes); i++)
        if (g_tf_dtypes[i].dtype == dtype) return g_tf_dtypes[i].name;
    return NULL;
}

/* ---- request ------------------------------------------------------------------------------- */

static int failf(char *err, size_t errsize, const char *fmt, ...) IFD_PRINTF(3, 4);
static int failf(char *err, size_t errsize, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return 400;
}

static int oom(char *err, size_t errsize) {
    snprintf(err, errsize, "out of memory");
    return 500;
}

/* TF Serving's binary string: an object whose only member is "b64", a string. */
static bool is_b64(const json_t *v) {
    return json_is_object(v) && json_object_size(v) == 1 &&
           json_is_string(json_object_get(v, "b64"));
}

/* ---- base64 (RFC 4648 standard alphabet), TF Serving's encoding of binary strings ----------- */

static const char g_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode s[0, len) into out (room for len / 4 * 3 + 3 bytes); padding is optional, as absl's
 * Base64Unescape (TF Serving's decoder) takes it. False when s is not base64. */
static bool b64_decode(const char *s, size_t len, unsigned char *out, size_t *out_len) {
    size_t pad = 0;
    while (pad < 2 && len > 0 && s[len - 1] == '=') {
        len--;
        pad++;
    }
    /* "=" completes the last group of four, if it is there at all */
    if (len % 4 == 1 || (pad && pad != 4 - len % 4)) return false;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* the bits left over from a partial group must be zero (canonical encoding) */
    if (bits && (acc & ((1u << bits) - 1))) return false;
    *out_len = n;
    return true;
}

static void b64_put(ifd_sbuf *b, const unsigned char *p, size_t len) {
    char q[4];
    for (size_t i = 0; i < len && !b->failed; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        q[0] = g_b64[v >> 18];
        q[1] = g_b64[(v >> 12) & 63];
        q[2] = i + 1 < len ? g_b64[(v >> 6) & 63] : '=';
        q[3] = i + 2 < len ? g_b64[v & 63] : '=';
        ifd_sbuf_append(b, q, 4);
    }
}

/* The shape a nested list implies, read down its first elements. -1 past IFD_MAX_RANK. */
static int implied_shape(const json_t *v, int64_t *dims) {
    int rank = 0;
    while (json_is_array(v)) {
        if (rank == IFD_MAX_RANK) return -1;
        dims[rank++] = (int64_t)json_array_size(v);
        if (json_array_size(v) == 0) break;
        v = json_array_get(v, 0);
    }
    return rank;
}

/* True when v is exactly a dims[0..rank) nested list (no ragged lengths or depths). */
static bool conforms(const json_t *v, const int64_t *dims, int rank) {
    if (rank == 0) return !json_is_array(v);
    if (!json_is_array(v) || (int64_t)json_array_size(v) != dims[0]) return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!conforms(json_array_get(v, i), dims + 1, rank - 1)) return false;
    return true;
}

static int64_t count_of(const int64_t *dims, int rank, bool *overflow) {
    int64_t n = 1;
    *overflow = false;
    for (int i = 0; i < rank; i++)
        if (!ifd_mul_i64(n, dims[i], &n)) *overflow = true;
    return n;
}

/* The per-example shape of one value, checked. */
static int value_shape(const json_t *v, const ifd_io_info *io, int64_t *dims, int *rank,
                       char *err, size_t errsize) {
    const char *name = io->name;
    bool strings = io->dtype == IFD_DTYPE_STRING;
    if (is_b64(v) && !strings)
        return failf(err, errsize, "input '%s': binary strings ({\"b64\": ...}) are only for "
                     "DT_STRING inputs; the model wants %s", name,
                     ifd_tfs_dtype_name(io->dtype) ? ifd_tfs_dtype_name(io->dtype) : "?");
    if ((json_is_object(v) && !is_b64(v)) || json_is_null(v))
        return failf(err, errsize, "input '%s': expected %s or nested list", name,
                     strings ? "a string, a {\"b64\": ...} object" : "a number, boolean");
    *rank = implied_shape(v, dims);
    if (*rank < 0)
        return failf(err, errsize, "input '%s': nests deeper than %d", name, IFD_MAX_RANK);
    if (!conforms(v, dims, *rank))
        return failf(err, errsize, "input '%s': ragged list: nested lists differ in length or "
                     "depth", name);
    return 0;
}

/* DT_STRING elements of v (a conforming nested list of `rank` levels, or a leaf) into t from
 * element *at on: JSON strings as their bytes (\u0000 included), {"b64": ...} objects decoded.
 * Each element's bytes are charged to *budget. */
static int fill_strings(const json_t *v, int rank, ifd_tensor *t, int64_t *at, size_t *budget,
                        const char *name, char *err, size_t errsize) {
    if (rank > 0) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int rc = fill_strings(json_array_get(v, i), rank - 1, t, at, budget, name, err,
                                  errsize);
            if (rc) return rc;
        }
        return 0;
    }
    const char *bytes;
    size_t len;
    unsigned char *decoded = NULL;
    if (json_is_string(v)) {
        bytes = json_string_value(v);
        len = json_string_length(v);
    } else if (is_b64(v)) {
        const json_t *s = json_object_get(v, "b64");
        size_t slen = json_string_length(s);
        decoded = ifd_malloc(slen / 4 * 3 + 3);
        if (!decoded) return oom(err, errsize);
        if (!b64_decode(json_string_value(s), slen, decoded, &len)) {
            ifd_free(decoded);
            return failf(err, errsize, "input '%s': element %lld: \"b64\" is not valid base64",
                         name, (long long)*at);
        }
        bytes = (const char *)decoded;
    } else {
        return failf(err, errsize, "input '%s': element %lld is not a string or a {\"b64\": ...} "
                     "object (the model wants DT_STRING)", name, (long long)*at);
    }
    int rc = 0;
    if (len > *budget) {
        snprintf(err, errsize, "input '%s': string data needs more than the bytes of tensor data "
                 "a request may carry", name);
        rc = 413;
    } else if (ifd_tensor_set_string(t, *at, bytes, len) != IFD_OK) {
        rc = oom(err, errsize);
    } else {
        *budget -= len;
        ++*at;
    }
    ifd_free(decoded);
    return rc;
}

/* What a DT_STRING element costs against max_tensor_bytes besides its bytes, as in
 * kserve_json.c: its slot in the tensor. */
#define STRING_ELEMENT_COST 16

/* Charge an input's decoded size (count elements of per_element bytes) to the request's budget
 * and create its tensor: 0, 413 over the budget, 400 when the body cannot hold count elements
 * (JSON spends a byte or more per element: an impossible count is refused before allocating),
 * 500 out of memory. */
static int start_input(const ifd_io_info *io, int rank, const int64_t *dims, int64_t count,
                       size_t per_element, bool overflow, size_t body_len, size_t *budget,
                       ifd_kserve_input *out, char *err, size_t errsize) {
    size_t bytes;
    if (overflow || !ifd_mul_size((size_t)count, per_element, &bytes) || bytes > *budget) {
        snprintf(err, errsize, "input '%s': needs more than the %zu bytes of tensor data a "
                 "request may carry", io->name, *budget);
        return 413;
    }
    if ((uint64_t)count > body_len)
        return failf(err, errsize, "input '%s': %lld elements cannot fit in the body", io->name,
                     (long long)count);
    *budget -= bytes;
    out->name = io->name;
    out->dtype = io->dtype;
    if (ifd_tensor_create(io->dtype, rank, dims, &out->tensor) != IFD_OK) {
        snprintf(err, errsize, "input '%s': out of memory", io->name);
        return 500;
    }
    return 0;
}

/* make_tensor for a DT_STRING input: shapes are checked by the caller (count elements). */
static int make_string_tensor(const json_t *const *values, size_t n, const json_t *v,
                              const ifd_io_info *io, int rank, const int64_t *dims, int64_t count,
                              bool overflow, size_t body_len, size_t *budget,
                              ifd_kserve_input *out, char *err, size_t errsize) {
    int rc = start_input(io, rank, dims, count, STRING_ELEMENT_COST, overflow, body_len, budget,
                         out, err, errsize);
    if (rc) return rc;
    int64_t at = 0;
    if (!values) return fill_strings(v, rank, out->tensor, &at, budget, io->name, err, errsize);
    for (size_t i = 0; i < n; i++) {
        int64_t d2[IFD_MAX_RANK];
        int r2;
        int rc = value_shape(values[i], io, d2, &r2, err, errsize);
        if (rc) return rc;
        if (r2 != rank - 1 || memcmp(d2, dims + 1, sizeof *d2 * (size_t)r2))
            return failf(err, errsize, "input '%s': instance %zu has a different shape than "
                         "instance 0 (the row format batches them along a new dim 0)", io->name,
                         i);
        rc = fill_strings(values[i], rank - 1, out->tensor, &at, budget, io->name, err, errsize);
        if (rc) return rc;
    }
    return 0;
}

/* A tensor of model dtype from n values that share one shape (row format: dims gain a leading
 * n; values == NULL: the single value v itself). */
static int make_tensor(const json_t *const *values, size_t n, const json_t *v,
                       const ifd_io_info *io, size_t body_len, size_t *budget,
                       ifd_kserve_input *out, char *err, size_t errsize) {
    int64_t dims[IFD_MAX_RANK + 1];
    int rank;
    int rc = value_shape(values ? values[0] : v, io, dims + (values ? 1 : 0), &rank, err,
                         errsize);
    if (rc) return rc;
    if (values) {
        if (rank == IFD_MAX_RANK)
            return failf(err, errsize, "input '%s': nests deeper than %d", io->name,
                         IFD_MAX_RANK - 1);
        dims[0] = (int64_t)n;
        rank++;
    }
    if (!ifd_kserve_dtype_name(io->dtype))
        return failf(err, errsize, "input '%s': the model's datatype %s is not supported",
                     io->name, ifd_tfs_dtype_name(io->dtype) ? ifd_tfs_dtype_name(io->dtype)
                                                              : "?");
    bool overflow;
    int64_t per = count_of(dims + (values ? 1 : 0), rank - (values ? 1 : 0), &overflow);
    int64_t count = count_of(dims, rank, &overflow);
    if (io->dtype == IFD_DTYPE_STRING)
        return make_string_tensor(values, n, v, io, rank, dims, count, overflow, body_len, budget,
                                  out, err, errsize);
    size_t esize = ifd_dtype_size(io->dtype);
    rc = start_input(io, rank, dims, count, esize, overflow, body_len, budget, out, err, errsize);
    if (rc) return rc;
    unsigned char *dst = ifd_tensor_data(out->tensor);
    if (!values) return ifd_kserve_decode_values(v, io->dtype, count, dst, io->name, err, errsize);
    for (size_t i = 0; i < n; i++) {
        int64_t d2[IFD_MAX_RANK];
        int r2;
        rc = value_shape(values[i], io, d2, &r2, err, errsize);
        if (rc) return rc;
        if (r2 != rank - 1 || memcmp(d2, dims + 1, sizeof *d2 * (size_t)r2))
            return failf(err, errsize, "input '%s': instance %zu has a different shape than "
                         "instance 0 (the row format batches them along a new dim 0)", io->name,
                         i);
        rc = ifd_kserve_decode_values(values[i], io->dtype, per, dst + (size_t)per * esize * i,
                                      io->name, err, errsize);
        if (rc) return rc;
    }
    return 0;
}

/* Every key of obj names a model input and every input is there. */
static int check_keys(const json_t *obj, const ifd_io_info *inputs, size_t n_inputs,
                      const char *where, char *err, size_t errsize) {
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        size_t k = 0;
        while (k < n_inputs && strcmp(inputs[k].name, key)) k++;
        if (k == n_inputs) return failf(err, errsize, "%s: unknown input '%.256s'", where, key);
    }
    for (size_t k = 0; k < n_inputs; k++)
        if (!json_object_get(obj, inputs[k].name))
            return failf(err, errsize, "%s: input '%s' is missing", where, inputs[k].name);
    return 0;
}

static int parse_row(const json_t *inst, const ifd_io_info *inputs, size_t n_inputs,
                     size_t body_len, size_t *budget, ifd_kserve_request *out, char *err,
                     size_t errsize) {
    if (!json_is_array(inst) || json_array_size(inst) == 0)
        return failf(err, errsize, "\"instances\" must be a non-empty list, one entry per "
                     "example");
    size_t n = json_array_size(inst);
    const json_t *first = json_array_get(inst, 0);
    bool named = json_is_object(first) && !is_b64(first);
    if (!named) {
        if (n_inputs != 1)
            return failf(err, errsize, "the model has %zu inputs: each instance must be an object "
                         "keyed by input name", n_inputs);
        const json_t **vals = ifd_calloc(n, sizeof *vals);
        if (!vals) return oom(err, errsize);
        for (size_t i = 0; i < n; i++) vals[i] = json_array_get(inst, i);
        int rc = make_tensor(vals, n, NULL, &inputs[0], body_len, budget, &out->inputs[0], err,
                             errsize);
        ifd_free(vals);
        return rc;
    }
    const json_t **vals = ifd_calloc(n, sizeof *vals);
    if (!vals) return oom(err, errsize);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const json_t *e = json_array_get(inst, i);
        char where[48];
        snprintf(where, sizeof where, "instance %zu", i);
        if (!json_is_object(e) || is_b64(e))
            rc = failf(err, errsize, "instance %zu is not an object keyed by input name like "
                       "instance 0", i);
        else rc = check_keys(e, inputs, n_inputs, where, err, errsize);
    }
    for (size_t k = 0; k < n_inputs && !rc; k++) {
        for (size_t i = 0; i < n; i++) vals[i] = json_object_get(json_array_get(inst, i),
                                                                 inputs[k].name);
        rc = make_tensor(vals, n, NULL, &inputs[k], body_len, budget, &out->inputs[k], err,
                         errsize);
    }
    ifd_free(vals);
    return rc;
}

static int parse_columnar(const json_t *in, const ifd_io_info *inputs, size_t n_inputs,
                          size_t body_len, size_t *budget, ifd_kserve_request *out, char *err,
                          size_t errsize) {
    if (json_is_object(in) && !is_b64(in)) {
        int rc = check_keys(in, inputs, n_inputs, "\"inputs\"", err, errsize);
        for (size_t k = 0; k < n_inputs && !rc; k++)
            rc = make_tensor(NULL, 0, json_object_get(in, inputs[k].name), &inputs[k], body_len,
                             budget, &out->inputs[k], err, errsize);
        return rc;
    }
    if (n_inputs != 1)
        return failf(err, errsize, "the model has %zu inputs: \"inputs\" must be an object keyed "
                     "by input name", n_inputs);
    return make_tensor(NULL, 0, in, &inputs[0], body_len, budget, &out->inputs[0], err, errsize);
}

int ifd_tfs_request_parse(const char *body, size_t len, const ifd_io_info *inputs,
                          size_t n_inputs, size_t max_tensor_bytes, ifd_kserve_request *out,
                          char *err, size_t errsize) {
    memset(out, 0, sizeof *out);
    if (!ifd_kserve_depth_ok(body, len, IFD_KSERVE_MAX_DEPTH))
        return failf(err, errsize, "invalid JSON: nesting deeper than %d", IFD_KSERVE_MAX_DEPTH);
    json_error_t je;
    /* JSON_ALLOW_NUL: a DT_STRING element is any bytes, "\u0000" included (keys stay
     * NUL-free: jansson refuses NUL in object keys whatever the flags) */
    out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!out->root)
        return failf(err, errsize, "invalid JSON: %s (line %d, column %d)", je.text, je.line,
                     je.column);
    if (!json_is_object(out->root)) return failf(err, errsize, "request must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(out->root, key, val) {
        if (strcmp(key, "signature_name") && strcmp(key, "instances") && strcmp(key, "inputs"))
            return failf(err, errsize, "unknown field \"%.64s\" in the request; expected "
                         "\"instances\" or \"inputs\" and optionally \"signature_name\"", key);
    }
    const json_t *sig = json_object_get(out->root, "signature_name");
    if (sig && (!json_is_string(sig) || json_string_length(sig) != strlen("serving_default") ||
                strcmp(json_string_value(sig), "serving_default")))
        return failf(err, errsize, "unknown signature_name: the only signature is "
                     "\"serving_default\"");
    const json_t *inst = json_object_get(out->root, "instances");
    const json_t *cols = json_object_get(out->root, "inputs");
    if (!inst == !cols)
        return failf(err, errsize, "the request must have exactly one of \"instances\" (row "
                     "format) or \"inputs\" (columnar format)");
    out->tfs_format = inst ? IFD_TFS_ROW : IFD_TFS_COLUMNAR;
    if (n_inputs == 0) return failf(err, errsize, "the model takes no inputs");
    out->inputs = ifd_calloc(n_inputs, sizeof *out->inputs);
    if (!out->inputs) return oom(err, errsize);
    out->n_inputs = n_inputs;
    size_t budget = max_tensor_bytes;
    return inst ? parse_row(inst, inputs, n_inputs, len, &budget, out, err, errsize)
                : parse_columnar(cols, inputs, n_inputs, len, &budget, out, err, errsize);
}

/* ---- reply ----------------------------------------------------------------------------------- */

/* TF Serving's rule: a DT_STRING output whose name ends in "_bytes" holds binary data, and
 * each of its elements is written as {"b64": "<base64>"}. Other string elements are JSON
 * strings, except those that are not UTF-8: JSON text cannot carry them (TF Serving writes them
 * raw, which makes the reply invalid JSON), so they too are written as {"b64": ...}, the form
 * TF Serving clients already read. */
static bool is_bytes_name(const char *name) {
    size_t n = strlen(name);
    return n >= 6 && !strcmp(name + n - 6, "_bytes");
}

static void put_string_element(ifd_sbuf *b, const ifd_tensor *t, int64_t i, bool bytes) {
    size_t len = 0;
    const char *s = ifd_tensor_get_string(t, i, &len);
    if (!bytes && ifd_kserve_utf8_valid(s, len, NULL)) {
        ifd_kserve_put_string(b, s, len);
        return;
    }
    ifd_sbuf_puts(b, "{\"b64\":\"");
    b64_put(b, (const unsigned char *)s, len);
    ifd_sbuf_puts(b, "\"}");
}

/* Elements [*at, ...) of t as nested lists of dims[0..rank); bytes: the "_bytes" rule. */
static void put_nested(ifd_sbuf *b, const ifd_tensor *t, bool bytes, const int64_t *dims,
                       int rank, int64_t *at) {
    if (rank == 0) {
        if (ifd_tensor_dtype(t) == IFD_DTYPE_STRING) put_string_element(b, t, (*at)++, bytes);
        else ifd_kserve_put_element(b, ifd_tensor_dtype(t), ifd_tensor_cdata(t), (*at)++);
        return;
    }
    ifd_sbuf_append(b, "[", 1);
    for (int64_t i = 0; i < dims[0] && !b->failed; i++) {
        if (i) ifd_sbuf_append(b, ",", 1);
        put_nested(b, t, bytes, dims + 1, rank - 1, at);
    }
    ifd_sbuf_append(b, "]", 1);
}

static void put_tensor(ifd_sbuf *b, const ifd_tensor *t, const char *name) {
    int64_t at = 0;
    put_nested(b, t, is_bytes_name(name), ifd_tensor_dims(t), ifd_tensor_rank(t), &at);
}

int ifd_tfs_encode_response(ifd_sbuf *b, const ifd_kserve_request *req, size_t n,
                            const char *const *names, ifd_tensor *const *outs, char *err,
                            size_t errsize) {
    if (req->tfs_format == IFD_TFS_COLUMNAR) {
        ifd_sbuf_puts(b, "{\"outputs\":");
        if (n == 1) {
            put_tensor(b, outs[0], names[0]);
        } else {
            ifd_sbuf_puts(b, "{");
            for (size_t j = 0; j < n; j++) {
                if (j) ifd_sbuf_puts(b, ",");
                ifd_sbuf_json_string(b, names[j]);
                ifd_sbuf_puts(b, ":");
                put_tensor(b, outs[j], names[j]);
            }
            ifd_sbuf_puts(b, "}");
        }
        ifd_sbuf_puts(b, "}");
        return 0;
    }
    /* row format: every output is batched along dim 0, one prediction per instance */
    for (size_t j = 0; j < n; j++) {
        if (ifd_tensor_rank(outs[j]) == 0 ||
            ifd_tensor_dims(outs[j])[0] != ifd_tensor_dims(outs[0])[0])
            return failf(err, errsize, "output '%s' has no batch dim 0 shared by every output; "
                         "use the columnar format (\"inputs\")", names[j]);
    }
    ifd_sbuf_puts(b, "{\"predictions\":");
    if (n == 1) {
        put_tensor(b, outs[0], names[0]);
    } else {
        int64_t rows = n ? ifd_tensor_dims(outs[0])[0] : 0;
        int64_t *at = ifd_calloc(n + 1, sizeof *at);
        if (!at) {
            b->failed = true;
            return 0;
        }
        ifd_sbuf_puts(b, "[");
        for (int64_t r = 0; r < rows && !b->failed; r++) {
            ifd_sbuf_puts(b, r ? ",{" : "{");
            for (size_t j = 0; j < n; j++) {
                if (j) ifd_sbuf_puts(b, ",");
                ifd_sbuf_json_string(b, names[j]);
                ifd_sbuf_puts(b, ":");
                const ifd_tensor *t = outs[j];
                put_nested(b, t, is_bytes_name(names[j]), ifd_tensor_dims(t) + 1,
                           ifd_tensor_rank(t) - 1, &at[j]);
            }
            ifd_sbuf_puts(b, "}");
        }
        ifd_sbuf_puts(b, "]");
        ifd_free(at);
    }
    ifd_sbuf_puts(b, "}");
    return 0;
}

/* ---- status and metadata --------------------------------------------------------------------- */

static void put_version_status(ifd_sbuf *b, const ifd_serve_version *v, bool first) {
    int st = atomic_load(&((ifd_serve_version *)v)->state);
    ifd_sbuf_printf(b, "%s{\"version\":\"%lld\",\"state\":\"%s\",\"status\":{\"error_code\":"
                    "\"%s\",\"error_message\":", first ? "" : ",", (long long)v->number,
                    st == IFD_VERSION_AVAILABLE ? "AVAILABLE"
                    : st == IFD_VERSION_LOADING ? "LOADING" : "END",
                    st == IFD_VERSION_FAILED ? "UNKNOWN" : "OK");
    /* a failed load, or a failed reload of a version that keeps serving */
    ifd_sbuf_json_string(b, v->error ? v->error : "");
    ifd_sbuf_puts(b, "}}");
}

/* Caller holds m->mu. */
static int model_status_locked(ifd_serve_model *m, int64_t version, const char *label,
                               ifd_sbuf *b, char *err, size_t errsize) {
    if (label) {
        size_t i = 0;
        while (i < m->config.n_labels && strcmp(m->config.labels[i], label)) i++;
        if (i == m->config.n_labels) {
            snprintf(err, errsize, "Unrecognized servable version label: %s", label);
            return 404;
        }
        version = m->config.label_version[i];
    }
    if (m->n_versions == 0) {
        snprintf(err, errsize, "Could not find any versions of model %s%s%s", m->name,
                 m->error ? ": " : m->unloaded ? ": unloaded" : "", m->error ? m->error : "");
        return 404;
    }
    ifd_sbuf_puts(b, "{\"model_version_status\":[");
    bool first = true;
    for (size_t i = m->n_versions; i-- > 0;) {
        if (version && m->versions[i]->number != version) continue;
        put_version_status(b, m->versions[i], first);
        first = false;
    }
    ifd_sbuf_puts(b, "]}");
    if (first) {
        ifd_sbuf_free(b);
        snprintf(err, errsize, "Could not find version %lld of model %s", (long long)version,
                 m->name);
        return 404;
    }
    return 200;
}

int ifd_tfs_model_status(ifd_serve_repo *repo, const char *model, int64_t version,
                         const char *label, ifd_sbuf *b, char *err, size_t errsize) {
    ifd_serve_model *m = ifd_serve_repo_find(repo, model);
    if (!m) {
        snprintf(err, errsize, "Could not find any versions of model %s", model);
        return 404;
    }
    pthread_mutex_lock(&m->mu);
    int status = m->removed && m->n_versions == 0 ? 404 : 0;
    if (status) snprintf(err, errsize, "Could not find any versions of model %s", model);
    else status = model_status_locked(m, version, label, b, err, errsize);
    pthread_mutex_unlock(&m->mu);
    return status;
}


static void put_signature_io(ifd_sbuf *b, const ifd_io_info *io, size_t n) {
    ifd_sbuf_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i) ifd_sbuf_puts(b, ",");
        ifd_sbuf_json_string(b, io[i].name);
        const char *dt = ifd_tfs_dtype_name(io[i].dtype);
        ifd_sbuf_printf(b, ":{\"dtype\":\"%s\",\"tensor_shape\":{", dt ? dt : "DT_INVALID");
        if (io[i].rank < 0) {
            ifd_sbuf_puts(b, "\"dim\":[],\"unknown_rank\":true}");
        } else {
            ifd_sbuf_puts(b, "\"dim\":[");
            for (int d = 0; d < io[i].rank; d++)
                ifd_sbuf_printf(b, "%s{\"size\":\"%lld\",\"name\":\"\"}", d ? "," : "",
                                (long long)(io[i].dims[d] < 0 ? -1 : io[i].dims[d]));
            ifd_sbuf_puts(b, "],\"unknown_rank\":false}");
        }
        ifd_sbuf_puts(b, ",\"name\":");
        ifd_sbuf_json_string(b, io[i].name);
        ifd_sbuf_puts(b, "}");
    }
    ifd_sbuf_puts(b, "}");
}

void ifd_tfs_model_metadata(ifd_serve_version *v, ifd_sbuf *b) {
    ifd_sbuf_puts(b, "{\"model_spec\":{\"name\":");
    ifd_sbuf_json_string(b, v->model->name);
    ifd_sbuf_printf(b, ",\"signature_name\":\"\",\"version\":\"%lld\"},\"metadata\":"
                    "{\"signature_def\":{\"signature_def\":{\"serving_default\":{\"inputs\":",
                    (long long)v->number);
    put_signature_io(b, v->inputs, v->n_inputs);
    ifd_sbuf_puts(b, ",\"outputs\":");
    put_signature_io(b, v->outputs, v->n_outputs);
    ifd_sbuf_puts(b, ",\"method_name\":\"tensorflow/serving/predict\"}}}}}");
}
