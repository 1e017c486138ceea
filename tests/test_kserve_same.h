/* Shared by tests/test_kserve_json.c and fuzz/fuzz_kserve_json.c: whether two parsed KServe
 * requests are the same, and the same body forced onto the general (jansson) path. */
#ifndef IFD_TEST_KSERVE_SAME_H
#define IFD_TEST_KSERVE_SAME_H

#include "serve/serve.h"

#include <stdlib.h>
#include <string.h>

/* Whether two parsed requests are the same: inputs (names, dtypes, shapes, bytes or strings),
 * id, requested outputs and the binary-data choices. */
static bool same_request(const ifd_kserve_request *a, const ifd_kserve_request *b) {
    if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs ||
        a->binary_output != b->binary_output || !a->id != !b->id ||
        (a->id && strcmp(a->id, b->id)))
        return false;
    for (size_t i = 0; i < a->n_inputs; i++) {
        const ifd_kserve_input *x = &a->inputs[i], *y = &b->inputs[i];
        const ifd_tensor *s = x->tensor, *t = y->tensor;
        if (strcmp(x->name, y->name) || x->dtype != y->dtype ||
            ifd_tensor_dtype(s) != ifd_tensor_dtype(t) || ifd_tensor_rank(s) != ifd_tensor_rank(t) ||
            memcmp(ifd_tensor_dims(s), ifd_tensor_dims(t),
                   (size_t)ifd_tensor_rank(s) * sizeof(int64_t)) ||
            ifd_tensor_count(s) != ifd_tensor_count(t))
            return false;
        if (ifd_tensor_dtype(s) == IFD_DTYPE_STRING) {
            for (int64_t e = 0; e < ifd_tensor_count(s); e++) {
                size_t l1 = 0, l2 = 0;
                const char *p = ifd_tensor_get_string(s, e, &l1), *q = ifd_tensor_get_string(t, e, &l2);
                if (l1 != l2 || (l1 && memcmp(p, q, l1))) return false;
            }
        } else if (ifd_tensor_nbytes(s) != ifd_tensor_nbytes(t) ||
                   (ifd_tensor_nbytes(s) &&
                    memcmp(ifd_tensor_cdata(s), ifd_tensor_cdata(t), ifd_tensor_nbytes(s)))) {
            return false;
        }
    }
    for (size_t j = 0; j < a->n_outputs; j++)
        if (strcmp(a->outputs[j], b->outputs[j]) || a->output_binary[j] != b->output_binary[j])
            return false;
    return true;
}

/* body with its first "inputs" spelled "\u0069nputs": the same JSON, which the common-form
 * fast path does not take (it takes no escapes). malloc'd; NULL when the body has no
 * "inputs". */
static char *general_form(const char *body, size_t len, size_t *out_len) {
    const char *at = NULL;
    for (size_t i = 0; i + 8 <= len; i++)
        if (!memcmp(body + i, "\"inputs\"", 8)) {
            at = body + i;
            break;
        }
    if (!at) return NULL;
    char *g = malloc(len + 6);
    if (!g) return NULL;
    size_t pre = (size_t)(at - body);
    memcpy(g, body, pre);
    memcpy(g + pre, "\"\\u0069", 7);
    memcpy(g + pre + 7, at + 2, len - pre - 2);
    *out_len = len + 5;
    return g;
}

#endif
