/* libFuzzer target: the KServe v2 JSON infer request decoder (serve/kserve_json.c), checked
 * against jansson, and the response encoder on whatever it decoded.
 *   - A body the decoder accepts must be valid JSON to jansson too (the decoder reads "data"
 *     itself; jansson only differs on integers past long long ("too big (negative) integer"), which
 *     the decoder reads exactly or as floats).
 *   - Then every input must be what jansson's tree says: name, datatype, shape, and the values
 *     as ifd_kserve_decode_values (the json_t path TF Serving uses) decodes them, bit for bit
 *     except the last unit of FP32/FP16/BF16, which that path rounds through double.
 *   - BYTES inputs hold exactly jansson's strings (read with JSON_ALLOW_NUL: \u0000 is data), in
 *     row-major order, and survive encode -> decode unchanged.
 *   - The same bytes are also parsed as a binary-extension request, split by the last byte; a
 *     BYTES input taken from the binary section must account for every byte of its
 *     binary_data_size (4 + length per element).
 *   - A body the common-form fast path read (no json_t kept) reads the same with its "inputs"
 *     key escaped, which sends it the general way: id, outputs and binary choices included.
 * A failed check aborts, which libFuzzer reports with the input. */
#include "serve/serve.h"
#include "../tests/test_kserve_same.h"

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(bool ok, const char *what, const char *err) {
    if (ok) return;
    fprintf(stderr, "fuzz_kserve_json: %s%s%s\n", what, err ? ": " : "", err ? err : "");
    abort();
}

static bool is_float16ish(ifd_dtype dt) {
    return dt == IFD_DTYPE_FLOAT || dt == IFD_DTYPE_FLOAT16 || dt == IFD_DTYPE_BFLOAT16;
}

/* The strings of nested arrays v in row-major order against t from element *at on. */
static void compare_strings(const json_t *v, const ifd_tensor *t, int64_t *at, int depth) {
    check(depth <= IFD_MAX_RANK, "BYTES data nests deeper than accepted", NULL);
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            compare_strings(json_array_get(v, i), t, at, depth + 1);
        return;
    }
    size_t len = 0;
    const char *got = ifd_tensor_get_string(t, *at, &len);
    check(json_is_string(v) && got && len == json_string_length(v) &&
              !memcmp(got, json_string_value(v), len),
          "BYTES element differs from jansson's string", NULL);
    ++*at;
}

/* Encode a BYTES tensor as JSON and decode it again: the same bytes come back. */
static void bytes_round_trip(const ifd_tensor *t) {
    ifd_sbuf b = {.limit = 64u << 20};
    ifd_sbuf_puts(&b, "{\"inputs\":[");
    ifd_kserve_encode_tensor(&b, "s", t);
    ifd_sbuf_puts(&b, "]}");
    if (b.failed) {
        ifd_sbuf_free(&b);
        return;
    }
    ifd_kserve_request r;
    char err[512];
    int rc = ifd_kserve_request_parse(b.data, b.len, SIZE_MAX, &r, err, sizeof err);
    check(rc == 0, "re-decoding an encoded BYTES tensor failed", err);
    const ifd_tensor *u = r.inputs[0].tensor;
    check(ifd_tensor_count(u) == ifd_tensor_count(t), "BYTES round trip changed the count", NULL);
    for (int64_t i = 0; i < ifd_tensor_count(t); i++) {
        size_t l1, l2;
        const char *s1 = ifd_tensor_get_string(t, i, &l1), *s2 = ifd_tensor_get_string(u, i, &l2);
        check(l1 == l2 && !memcmp(s1, s2, l1), "BYTES round trip changed an element", NULL);
    }
    ifd_kserve_request_free(&r);
    ifd_sbuf_free(&b);
}

/* The input req.inputs[i] against the same input in jansson's tree. */
static void compare_input(const ifd_kserve_input *in, const json_t *jin) {
    const json_t *shape = json_object_get(jin, "shape"), *data = json_object_get(jin, "data");
    check(json_is_string(json_object_get(jin, "name")) &&
              !strcmp(in->name, json_string_value(json_object_get(jin, "name"))),
          "input name differs from jansson's", in->name);
    const ifd_tensor *t = in->tensor;
    check(ifd_tensor_rank(t) == (int)json_array_size(shape), "rank differs", in->name);
    for (int d = 0; d < ifd_tensor_rank(t); d++)
        check(ifd_tensor_dims(t)[d] == json_integer_value(json_array_get(shape, (size_t)d)),
              "dim differs", in->name);
    if (!data) return; /* binary_data_size */
    if (in->dtype == IFD_DTYPE_STRING) {
        int64_t at = 0;
        compare_strings(data, t, &at, 0);
        check(at == ifd_tensor_count(t), "BYTES element count differs from jansson's", in->name);
        bytes_round_trip(t);
        return;
    }
    int64_t count = ifd_tensor_count(t);
    size_t es = ifd_dtype_size(in->dtype);
    void *want = calloc((size_t)count + 1, es);
    char err[512];
    int rc = ifd_kserve_decode_values(data, in->dtype, count, want, in->name, err, sizeof err);
    const unsigned char *got = ifd_tensor_cdata(t), *w = want;
    if (rc) {
        /* the json_t path compares the double with FLT_MAX, so it refuses decimals just past
         * FLT_MAX that round down to it (as strtof does, and this decoder) */
        bool has_max = false;
        for (int64_t i = 0; in->dtype == IFD_DTYPE_FLOAT && i < count; i++) {
            float f;
            memcpy(&f, got + (size_t)i * es, 4);
            has_max |= f == FLT_MAX || f == -FLT_MAX;
        }
        check(has_max, "accepted data that the jansson path refuses", err);
    }
    for (int64_t i = 0; !rc && i < count; i++) {
        const unsigned char *a = got + (size_t)i * es, *b = w + (size_t)i * es;
        if (!memcmp(a, b, es)) continue;
        uint64_t x = 0, y = 0, sign = 1ull << (8 * es - 1);
        memcpy(&x, a, es);
        memcpy(&y, b, es);
        /* jansson reads the token -0 as the integer 0; strtod (and this decoder) as -0.0 */
        bool minus_zero = ifd_dtype_is_float(in->dtype) && x == sign && y == 0;
        check(minus_zero || (is_float16ish(in->dtype) && (x - y == 1 || y - x == 1)),
              "value differs from the jansson path", in->name);
    }
    free(want);
}

static void encode(const ifd_kserve_request *req) {
    ifd_sbuf b = {.limit = 16u << 20};
    for (size_t i = 0; i < req->n_inputs; i++)
        ifd_kserve_encode_tensor(&b, req->inputs[i].name, req->inputs[i].tensor);
    ifd_sbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    ifd_kserve_request req;
    const char *body = (const char *)data;
    /* a small tensor cap keeps the fuzzer's memory flat */
    if (ifd_kserve_request_parse(body, size, 1 << 20, &req, err, sizeof err) == 0) {
        json_error_t je;
        json_t *root = json_loadb(body, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        check(root || strstr(je.text, "too big"), "accepted what jansson refuses", je.text);
        const json_t *inputs = json_object_get(root, "inputs");
        for (size_t i = 0; root && i < req.n_inputs; i++)
            compare_input(&req.inputs[i], json_array_get(inputs, i));
        json_decref(root);
        encode(&req);
        size_t glen = 0;
        char *general = req.root ? NULL : general_form(body, size, &glen);
        if (general) {
            ifd_kserve_request r2;
            int rc2 = ifd_kserve_request_parse(general, glen, 1 << 20, &r2, err, sizeof err);
            check(rc2 == 0, "the general path refuses what the fast path read", err);
            check(same_request(&req, &r2), "the fast and general paths read different requests",
                  NULL);
            ifd_kserve_request_free(&r2);
            free(general);
        }
    }
    ifd_kserve_request_free(&req);
    /* binary extension: the last byte says how many bytes before it are the binary section */
    if (size > 1) {
        size_t bin = data[size - 1] % 64, json_len = size - 1 > bin ? size - 1 - bin : 0;
        if (json_len && ifd_kserve_request_parse_binary(body, size - 1, json_len, 1 << 20, &req,
                                                        err, sizeof err) == 0) {
            json_error_t je;
            json_t *root = json_loadb(body, json_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
            check(root || strstr(je.text, "too big"), "binary: accepted what jansson refuses", je.text);
            const json_t *inputs = json_object_get(root, "inputs");
            for (size_t i = 0; root && i < req.n_inputs; i++) {
                const json_t *size_v = json_object_get(
                    json_object_get(json_array_get(inputs, i), "parameters"), "binary_data_size");
                const ifd_tensor *t = req.inputs[i].tensor;
                if (req.inputs[i].dtype != IFD_DTYPE_STRING || !size_v) continue;
                size_t total = 0;
                for (int64_t e = 0; e < ifd_tensor_count(t); e++) {
                    size_t len = 0;
                    ifd_tensor_get_string(t, e, &len);
                    total += 4 + len;
                }
                check(total == (size_t)json_integer_value(size_v),
                      "binary BYTES elements do not add up to binary_data_size",
                      req.inputs[i].name);
            }
            json_decref(root);
            encode(&req);
        }
        ifd_kserve_request_free(&req);
    }
    return 0;
}
