/* The operator registry: every family's table, searched by (domain, op_type). */
#include "ops/op.h"

#include <string.h>

#define IFD_FAMILIES(X)                                                                   \
    X(elementwise) X(activation) X(cast) X(quantize) X(matmul) X(conv) X(pool)            \
    X(normalization) X(reduce) X(softmax) X(shape) X(gather) X(transform) X(resize)       \
    X(spatial) X(misc) X(rnn) X(signal) X(attention) X(control) X(strings)

#define IFD_FAMILY_DECL_(f) extern const ifd_op_def ifd_ops_##f[];
IFD_FAMILIES(IFD_FAMILY_DECL_)
#undef IFD_FAMILY_DECL_

static const ifd_op_def *const g_families[] = {
#define IFD_FAMILY_REF_(f) ifd_ops_##f,
    IFD_FAMILIES(IFD_FAMILY_REF_)
#undef IFD_FAMILY_REF_
};

static bool same_domain(const char *a, const char *b) {
    /* "ai.onnx" is another spelling of the default domain. */
    if (!a || !strcmp(a, "ai.onnx")) a = "";
    if (!b || !strcmp(b, "ai.onnx")) b = "";
    return !strcmp(a, b);
}

const ifd_op_def *ifd_op_find(const char *domain, const char *name) {
    for (size_t f = 0; f < IFD_ARRAY_LEN(g_families); f++)
        for (const ifd_op_def *d = g_families[f]; d->name; d++)
            if (!strcmp(d->name, name) && same_domain(d->domain, domain)) return d;
    return NULL;
}

size_t ifd_op_count(void) {
    size_t n = 0;
    for (size_t f = 0; f < IFD_ARRAY_LEN(g_families); f++)
        for (const ifd_op_def *d = g_families[f]; d->name; d++) n++;
    return n;
}

const ifd_op_def *ifd_op_at(size_t index) {
    for (size_t f = 0; f < IFD_ARRAY_LEN(g_families); f++)
        for (const ifd_op_def *d = g_families[f]; d->name; d++)
            if (index-- == 0) return d;
    return NULL;
}
