/* Building ONNX protobuf structs in tests (test_loader.c, test_strings.c, test_spconv.c): every
 * allocation comes from a pool freed together by pool_reset(); allocation failure aborts (these
 * are test programs). */
#ifndef IFD_TEST_PROTO_H
#define IFD_TEST_PROTO_H

#include "inferd/inferd.h"
#include "onnx/onnx_internal.h"

#include <stdlib.h>
#include <string.h>

static void **g_pool;
static size_t g_pool_n, g_pool_cap;

static inline void *talloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) abort();
    if (g_pool_n == g_pool_cap) {
        g_pool_cap = g_pool_cap ? g_pool_cap * 2 : 256;
        g_pool = realloc(g_pool, g_pool_cap * sizeof *g_pool);
        if (!g_pool) abort();
    }
    g_pool[g_pool_n++] = p;
    return p;
}

static inline void pool_reset(void) {
    for (size_t i = 0; i < g_pool_n; i++) free(g_pool[i]);
    g_pool_n = 0;
}

static inline char *tstr(const char *s) {
    char *d = talloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

/* A tensor type; rank < 0: no shape; dims[i] == -1: the symbolic dim "N" (other negative values
 * are written as they are, for tests of bad models). */
static inline Onnx__TypeProto *tensor_type(int elem, int rank, const int64_t *dims) {
    Onnx__TypeProto *tp = talloc(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = talloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = talloc(sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)rank;
        sh->dim = talloc(sizeof(void *) * (size_t)(rank + 1));
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = talloc(sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] == -1) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = tstr("N");
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            }
            sh->dim[i] = d;
        }
        tt->shape = sh;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    return tp;
}

static inline Onnx__ValueInfoProto *value_info(const char *name, Onnx__TypeProto *type) {
    Onnx__ValueInfoProto *v = talloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = tstr(name);
    v->type = type;
    return v;
}

/* A graph with room for 64 nodes, inputs, outputs and initializers (8 sparse ones). */
static inline Onnx__GraphProto *graph_new(const char *name) {
    Onnx__GraphProto *g = talloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = tstr(name);
    g->node = talloc(sizeof(void *) * 64);
    g->input = talloc(sizeof(void *) * 64);
    g->output = talloc(sizeof(void *) * 64);
    g->initializer = talloc(sizeof(void *) * 64);
    g->sparse_initializer = talloc(sizeof(void *) * 8);
    return g;
}

/* Load g as a model importing the default domain at opset and ai.onnx.ml at 4. */
static inline ifd_status load_graph(Onnx__GraphProto *g, int64_t opset, ifd_model **out) {
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 9;
    m.producer_name = tstr("inferd tests");
    m.opset_import = talloc(sizeof(void *) * 2);
    const char *domains[2] = {"", "ai.onnx.ml"};
    int64_t versions[2] = {opset, 4};
    for (int i = 0; i < 2; i++) {
        Onnx__OperatorSetIdProto *o = talloc(sizeof *o);
        onnx__operator_set_id_proto__init(o);
        o->domain = tstr(domains[i]);
        o->has_version = 1;
        o->version = versions[i];
        m.opset_import[m.n_opset_import++] = o;
    }
    m.graph = g;
    size_t size = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = talloc(size);
    onnx__model_proto__pack(&m, buf);
    return ifd_model_load_memory(buf, size, NULL, out);
}

#endif
