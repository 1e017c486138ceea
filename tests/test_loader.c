/* Loader and graph validation tests. Models are built in C with the protobuf-c structs of the
 * generated ONNX schema and packed to bytes, so the test needs no Python. */
#include "onnx/model.h"
#include "onnx/onnx_internal.h"
#include "ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_check.h"

/* ---- test allocations: freed together by pool_reset() ------------------------------------ */

#include "test_proto.h"

/* ---- model construction -------------------------------------------------------------------- */

static Onnx__ValueInfoProto *fvinfo(const char *name) {
    static const int64_t dims[2] = {-1, 3};
    return value_info(name, tensor_type(1, 2, dims));
}

static Onnx__NodeProto *node(const char *op, const char *domain, const char *in0,
                             const char *in1, const char *out0) {
    Onnx__NodeProto *n = talloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = tstr(op);
    n->domain = tstr(domain ? domain : "");
    n->input = talloc(sizeof(char *) * 2);
    if (in0) n->input[n->n_input++] = tstr(in0);
    if (in1) n->input[n->n_input++] = tstr(in1);
    n->output = talloc(sizeof(char *));
    n->output[n->n_output++] = tstr(out0);
    return n;
}

static void node_add_attr(Onnx__NodeProto *n, Onnx__AttributeProto *a) {
    Onnx__AttributeProto **arr = talloc(sizeof(void *) * (n->n_attribute + 1));
    if (n->n_attribute) memcpy(arr, n->attribute, sizeof(void *) * n->n_attribute);
    arr[n->n_attribute++] = a;
    n->attribute = arr;
}

typedef struct gspec {
    Onnx__GraphProto *g;
} gspec;

static Onnx__TensorProto *tensor_f32(const char *name, int rank, const int64_t *dims, size_t n,
                                     const float *vals) {
    Onnx__TensorProto *t = talloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tstr(name);
    t->has_data_type = 1;
    t->data_type = 1;
    t->n_dims = (size_t)rank;
    t->dims = talloc(sizeof(int64_t) * (size_t)(rank + 1));
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->has_raw_data = 1;
    t->raw_data.len = n * 4;
    t->raw_data.data = talloc(n * 4);
    if (n) memcpy(t->raw_data.data, vals, n * 4);
    return t;
}

static Onnx__ModelProto *model_new(Onnx__GraphProto *g, int64_t opset) {
    Onnx__ModelProto *m = talloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->producer_name = tstr("test_loader");
    m->opset_import = talloc(sizeof(void *) * 4);
    Onnx__OperatorSetIdProto *o = talloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = tstr("");
    o->has_version = 1;
    o->version = opset;
    m->opset_import[m->n_opset_import++] = o;
    m->graph = g;
    return m;
}

static uint8_t *pack_model(const Onnx__ModelProto *m, size_t *size) {
    *size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = talloc(*size);
    onnx__model_proto__pack(m, buf);
    return buf;
}

static ifd_status load_model_proto(const Onnx__ModelProto *m, const char *base_dir,
                                   ifd_model **out) {
    size_t size;
    uint8_t *buf = pack_model(m, &size);
    return ifd_model_load_memory(buf, size, base_dir, out);
}

/* x -> Identity -> y, the smallest valid model. */
static Onnx__ModelProto *identity_model(void) {
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    return model_new(g, 13);
}

/* Expect a failing status; name the case; optionally require a code and a message part. */
static void expect_fail(const char *name, ifd_status st, ifd_model *m, ifd_status want,
                        const char *substr) {
    char detail[1400];
    bool ok = st != IFD_OK && m == NULL && (want == IFD_OK || st == want) &&
              (!substr || strstr(ifd_last_error(), substr));
    snprintf(detail, sizeof detail, "status %s, message '%s'", ifd_status_string(st),
             st ? ifd_last_error() : "");
    check(ok, name, detail);
    ifd_model_free(m);
}

static void expect_ok(const char *name, ifd_status st) {
    char detail[1400];
    snprintf(detail, sizeof detail, "%s: %s", ifd_status_string(st), ifd_last_error());
    check(st == IFD_OK, name, detail);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_valid(void) {
    ifd_model *m = NULL;
    ifd_status st = load_model_proto(identity_model(), NULL, &m);
    expect_ok("valid identity model loads", st);
    if (st) return;
    ifd_io_info info;
    check(ifd_model_input_count(m) == 1 && ifd_model_output_count(m) == 1, "io counts", "");
    st = ifd_model_input_info(m, 0, &info);
    check(!st && !strcmp(info.name, "x") && info.dtype == IFD_DTYPE_FLOAT && info.rank == 2 &&
              info.dims[0] < 0 && info.dim_names[0] && !strcmp(info.dim_names[0], "N") &&
              info.dims[1] == 3,
          "input info", "");
    const char *op, *dom;
    size_t cnt;
    check(ifd_model_op_kinds(m) == 1, "op kinds count", "");
    ifd_model_op_kind(m, 0, &op, &dom, &cnt);
    check(op && !strcmp(op, "Identity") && dom && !*dom && cnt == 1, "op kind", "");
    ifd_model_summary summary;
    ifd_model_summary_get(m, &summary);
    check(summary.ir_version == 8 && summary.node_count == 1 && summary.opset_count == 1 &&
              summary.opset_versions[0] == 13 && !strcmp(summary.producer_name, "test_loader"),
          "summary", "");
    check(m->graph->nodes[0].opset == 13 && m->graph->nodes[0].op != NULL &&
              !strcmp(m->graph->nodes[0].name, "Identity_0"),
          "node opset, op and default name", "");
    ifd_model_free(m);
}

static void test_topo_order(void) {
    /* Nodes listed consumer-first; validation must reorder them. */
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("z");
    g->node[g->n_node++] = node("Identity", "", "y", NULL, "z");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    ifd_model *m = NULL;
    ifd_status st = load_model_proto(model_new(g, 13), NULL, &m);
    expect_ok("out-of-order nodes load", st);
    if (st) return;
    const ifd_graph *gr = m->graph;
    int y = ifd_graph_find_value(gr, "y"), z = ifd_graph_find_value(gr, "z");
    check(y >= 0 && z >= 0 && gr->values[y].producer == 0 && gr->values[z].producer == 1 &&
              gr->nodes[0].outputs[0] == y,
          "topological reorder", "");
    ifd_model_free(m);
}

static void test_bad_bytes(void) {
    ifd_model *m = NULL;
    expect_fail("empty buffer", ifd_model_load_memory("", 0, NULL, &m), m, IFD_ERR_CORRUPT_MODEL,
                NULL);
    char path[] = "/tmp/ifd_test_loader_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        close(fd);
        m = NULL;
        expect_fail("empty file", ifd_model_load_file(path, &m), m, IFD_ERR_CORRUPT_MODEL, NULL);
        unlink(path);
    }
    m = NULL;
    expect_fail("missing file", ifd_model_load_file("/nonexistent/ifd/model.onnx", &m), m,
                IFD_ERR_IO, NULL);

    size_t size;
    uint8_t *buf = pack_model(identity_model(), &size);
    int truncated_ok = 0;
    for (size_t cut = 1; cut < size; cut++) {
        m = NULL;
        ifd_status st = ifd_model_load_memory(buf, cut, NULL, &m);
        if (st != IFD_OK && m == NULL) truncated_ok++;
        ifd_model_free(m);
    }
    check(truncated_ok == (int)size - 1, "every truncation rejected", "");

    unsigned seed = 12345;
    int random_ok = 0;
    uint8_t rnd[512];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 1 + (size_t)(iter * 7) % sizeof rnd;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            rnd[i] = (uint8_t)(seed >> 16);
        }
        m = NULL;
        ifd_status st = ifd_model_load_memory(rnd, n, NULL, &m);
        if (st != IFD_OK) random_ok++;
        ifd_model_free(m);
    }
    check(random_ok == 300, "random bytes rejected", "");

    /* Byte flips of a valid model: must not crash (either outcome is fine). */
    for (size_t i = 0; i < size; i++) {
        uint8_t save = buf[i];
        buf[i] ^= 0xff;
        m = NULL;
        ifd_model_load_memory(buf, size, NULL, &m);
        ifd_model_free(m);
        buf[i] = save;
    }
    check(true, "byte flips do not crash", "");
}

static void test_graph_errors(void) {
    ifd_model *m = NULL;
    Onnx__GraphProto *g;

    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("b");
    g->node[g->n_node++] = node("Identity", "", "b", NULL, "a");
    g->node[g->n_node++] = node("Identity", "", "a", NULL, "b");
    m = NULL;
    expect_fail("cycle", load_model_proto(model_new(g, 13), NULL, &m), m, IFD_ERR_CORRUPT_MODEL,
                "cycle");

    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "", "nowhere", NULL, "y");
    m = NULL;
    expect_fail("input nothing produces", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "nowhere");

    g = graph_new("g");
    g->input[g->n_input++] = value_info("x", NULL);
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    m = NULL;
    expect_fail("missing input type", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "'x'");

    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("NoSuchOp", "", "x", NULL, "y");
    m = NULL;
    expect_fail("unknown op", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_UNSUPPORTED, "NoSuchOp");

    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "com.example", "x", NULL, "y");
    m = NULL;
    expect_fail("op in unknown domain", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_UNSUPPORTED, "com.example");

    m = NULL;
    expect_fail("opset 99", load_model_proto(model_new(identity_model()->graph, 99), NULL, &m), m,
                IFD_ERR_UNSUPPORTED, "99");
    m = NULL;
    expect_fail("opset 0", load_model_proto(model_new(identity_model()->graph, 0), NULL, &m), m,
                IFD_ERR_UNSUPPORTED, NULL);

    const ifd_op_def *trilu = ifd_op_find("", "Trilu");
    if (trilu && trilu->since > 1) {
        g = graph_new("g");
        g->input[g->n_input++] = fvinfo("x");
        g->output[g->n_output++] = fvinfo("y");
        g->node[g->n_node++] = node("Trilu", "", "x", NULL, "y");
        m = NULL;
        expect_fail("opset below operator's since",
                    load_model_proto(model_new(g, trilu->since - 1), NULL, &m), m,
                    IFD_ERR_CORRUPT_MODEL, "Trilu");
    }

    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    m = NULL;
    expect_fail("duplicate node outputs", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "duplicate");

    static const int64_t d3[1] = {3};
    static const float v3[3] = {1, 2, 3};
    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("w");
    g->initializer[g->n_initializer++] = tensor_f32("w", 1, d3, 3, v3);
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "w");
    m = NULL;
    expect_fail("initializer and node output share a name",
                load_model_proto(model_new(g, 13), NULL, &m), m, IFD_ERR_CORRUPT_MODEL, "'w'");

    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->initializer[g->n_initializer++] = tensor_f32("w", 1, d3, 2, v3);
    g->node[g->n_node++] = node("Identity", "", "w", NULL, "y");
    m = NULL;
    expect_fail("initializer data length mismatch", load_model_proto(model_new(g, 13), NULL, &m),
                m, IFD_ERR_CORRUPT_MODEL, "initializer 'w'");

    static const int64_t neg[2] = {-5, 3};
    g = graph_new("g");
    g->input[g->n_input++] = value_info("x", tensor_type(1, 2, neg));
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    m = NULL;
    expect_fail("negative input dim", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "'x'");

    static const int64_t big[3] = {1ll << 40, 1ll << 40, 3};
    g = graph_new("g");
    g->input[g->n_input++] = value_info("x", tensor_type(1, 3, big));
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    m = NULL;
    expect_fail("input dims overflowing int64", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "'x'");

    static const int64_t negd[1] = {-3};
    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->initializer[g->n_initializer++] = tensor_f32("w", 1, negd, 0, v3);
    g->node[g->n_node++] = node("Identity", "", "w", NULL, "y");
    m = NULL;
    expect_fail("negative initializer dim", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "'w'");

    static const int64_t huge[4] = {1ll << 40, 1ll << 40, 1ll << 40, 1};
    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->initializer[g->n_initializer++] = tensor_f32("w", 4, huge, 1, v3);
    g->node[g->n_node++] = node("Identity", "", "w", NULL, "y");
    m = NULL;
    expect_fail("overflowing initializer shape", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_OK, "'w'");

    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("never");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    m = NULL;
    expect_fail("graph output not produced", load_model_proto(model_new(g, 13), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "never");

    /* String tensor initializer without its string_data (shape [] needs one entry). */
    g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    Onnx__TensorProto *s = tensor_f32("s", 0, d3, 0, v3);
    s->data_type = IFD_DTYPE_STRING;
    s->has_raw_data = 0;
    g->initializer[g->n_initializer++] = s;
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");
    m = NULL;
    expect_fail("string initializer without string_data",
                load_model_proto(model_new(g, 13), NULL, &m), m, IFD_ERR_CORRUPT_MODEL,
                "string_data");
}

static void test_initializers(void) {
    static const int64_t d4[1] = {5};
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->input[g->n_input++] = fvinfo("f"); /* also an initializer: overridable, not an input */
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Identity", "", "x", NULL, "y");

    /* int4 packed in raw_data, low nibble first: values 1,-1,7,-8,0 */
    Onnx__TensorProto *i4 = tensor_f32("i4", 1, d4, 0, NULL);
    i4->data_type = IFD_DTYPE_INT4;
    static const uint8_t packed[3] = {0xF1, 0x87, 0x00};
    i4->raw_data.len = 3;
    i4->raw_data.data = talloc(3);
    memcpy(i4->raw_data.data, packed, 3);
    g->initializer[g->n_initializer++] = i4;

    /* int8 in int32_data */
    Onnx__TensorProto *i8 = tensor_f32("i8", 1, d4, 0, NULL);
    i8->data_type = IFD_DTYPE_INT8;
    i8->has_raw_data = 0;
    i8->n_int32_data = 5;
    i8->int32_data = talloc(5 * sizeof(int32_t));
    for (int i = 0; i < 5; i++) i8->int32_data[i] = i - 2;
    g->initializer[g->n_initializer++] = i8;

    /* float in float_data */
    Onnx__TensorProto *f = tensor_f32("f", 1, d4, 0, NULL);
    f->has_raw_data = 0;
    f->n_float_data = 5;
    f->float_data = talloc(5 * sizeof(float));
    for (int i = 0; i < 5; i++) f->float_data[i] = (float)i * 0.5f;
    g->initializer[g->n_initializer++] = f;

    /* sparse [2,3] with values at (0,1)=4 and (1,2)=5 (linear indices 1 and 5) */
    Onnx__SparseTensorProto *sp = talloc(sizeof *sp);
    onnx__sparse_tensor_proto__init(sp);
    static const int64_t d2[1] = {2};
    static const float sv[2] = {4, 5};
    sp->values = tensor_f32("sp", 1, d2, 2, sv);
    Onnx__TensorProto *ix = tensor_f32("", 1, d2, 0, NULL);
    ix->data_type = IFD_DTYPE_INT64;
    ix->has_raw_data = 0;
    ix->n_int64_data = 2;
    ix->int64_data = talloc(2 * sizeof(int64_t));
    ix->int64_data[0] = 1;
    ix->int64_data[1] = 5;
    sp->indices = ix;
    sp->n_dims = 2;
    sp->dims = talloc(2 * sizeof(int64_t));
    sp->dims[0] = 2;
    sp->dims[1] = 3;
    g->sparse_initializer[g->n_sparse_initializer++] = sp;

    ifd_model *m = NULL;
    ifd_status st = load_model_proto(model_new(g, 13), NULL, &m);
    expect_ok("initializer storage forms load", st);
    if (st) return;
    const ifd_graph *gr = m->graph;
    const ifd_tensor *t;
    int v = ifd_graph_find_value(gr, "i4");
    t = v >= 0 ? gr->values[v].constant : NULL;
    const int8_t *p4 = t ? t->data : NULL;
    check(t && t->dtype == IFD_DTYPE_INT4 && t->count == 5 && p4[0] == 1 && p4[1] == -1 &&
              p4[2] == 7 && p4[3] == -8 && p4[4] == 0,
          "int4 unpacked and sign-extended", "");
    v = ifd_graph_find_value(gr, "i8");
    t = v >= 0 ? gr->values[v].constant : NULL;
    const int8_t *p8 = t ? t->data : NULL;
    check(t && p8[0] == -2 && p8[4] == 2, "int8 from int32_data", "");
    v = ifd_graph_find_value(gr, "f");
    t = v >= 0 ? gr->values[v].constant : NULL;
    check(t && ((const float *)t->data)[3] == 1.5f && gr->values[v].overridable &&
              gr->values[v].kind == IFD_VALUE_INITIALIZER && gr->n_inputs == 1,
          "float_data; initializer listed as input is overridable", "");
    v = ifd_graph_find_value(gr, "sp");
    t = v >= 0 ? gr->values[v].constant : NULL;
    const float *ps = t ? t->data : NULL;
    check(t && t->rank == 2 && t->count == 6 && ps[0] == 0 && ps[1] == 4 && ps[5] == 5 &&
              ps[4] == 0,
          "sparse initializer densified", "");
    check(m->param_count == 5 + 5 + 5 + 6, "param count", "");
    ifd_model_free(m);
}

/* Nest `levels` If nodes: each then/else branch holds the next If. */
static Onnx__GraphProto *nested_if(int levels, const char *outer_name) {
    Onnx__GraphProto *g = graph_new("branch");
    g->output[g->n_output++] = fvinfo("r");
    if (levels == 0) {
        g->node[g->n_node++] = node("Identity", "", outer_name, NULL, "r");
        return g;
    }
    Onnx__NodeProto *n = node("If", "", "cond", NULL, "r");
    Onnx__AttributeProto *a = talloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tstr("then_branch");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    a->g = nested_if(levels - 1, outer_name);
    node_add_attr(n, a);
    Onnx__AttributeProto *b = talloc(sizeof *b);
    *b = *a;
    b->name = tstr("else_branch");
    b->g = nested_if(0, outer_name); /* sharing a->g would double the bytes per level */
    node_add_attr(n, b);
    g->node[g->n_node++] = n;
    return g;
}

static Onnx__ModelProto *nested_model(int levels, const char *outer_name) {
    Onnx__GraphProto *g = nested_if(levels, outer_name);
    g->name = tstr("main");
    g->input[g->n_input++] = value_info("cond", tensor_type(IFD_DTYPE_BOOL, 0, NULL));
    g->input[g->n_input++] = fvinfo("x");
    return model_new(g, 13);
}

/* Appends bytes in front of a buffer filled from its end. */
typedef struct rbuf {
    uint8_t *base;
    size_t start, cap;
} rbuf;

static void rb_prepend(rbuf *b, const void *p, size_t n) {
    b->start -= n;
    memcpy(b->base + b->start, p, n);
}

static void rb_wrap(rbuf *b, unsigned field) {
    uint64_t len = b->cap - b->start;
    uint8_t tmp[12];
    size_t n = 0;
    tmp[n++] = (uint8_t)(field << 3 | 2);
    uint8_t v[10];
    size_t vn = 0;
    do {
        v[vn++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
        len >>= 7;
    } while (len);
    memcpy(tmp + n, v, vn);
    rb_prepend(b, tmp, n + vn);
}

static void test_nesting(void) {
    ifd_model *m = NULL;
    ifd_status st = load_model_proto(nested_model(3, "x"), NULL, &m);
    bool if_known = ifd_op_find("", "If") != NULL;
    if (if_known) {
        expect_ok("3-level If with outer-scope read loads", st);
        if (!st) {
            /* the innermost branch reads x from the main graph: OUTER in every level */
            const ifd_graph *br = ifd_attr_graph(&m->graph->nodes[0], "then_branch");
            int v = br ? ifd_graph_find_value(br, "x") : -1;
            check(v >= 0 && br->values[v].kind == IFD_VALUE_OUTER && br->depth == 1 &&
                      br->parent == m->graph,
                  "outer-scope value captured", "");
        }
        ifd_model_free(m);
    } else {
        expect_fail("3-level If (If not registered yet)", st, m, IFD_ERR_UNSUPPORTED, "If");
    }
    if (if_known) {
        /* The If is listed before the producer of the value its branches read: the implicit
         * dependency must order the producer first. */
        Onnx__ModelProto *mp = nested_model(1, "t");
        Onnx__GraphProto *g = mp->graph;
        g->node[g->n_node++] = node("Identity", "", "x", NULL, "t");
        g->output[0] = fvinfo("r");
        m = NULL;
        st = load_model_proto(mp, NULL, &m);
        expect_ok("subgraph capture of a later-listed value loads", st);
        if (!st) {
            const ifd_graph *gr = m->graph;
            check(gr->n_nodes == 2 && !strcmp(gr->nodes[0].op_type, "Identity") &&
                      !strcmp(gr->nodes[1].op_type, "If"),
                  "subgraph capture orders its producer first", "");
            ifd_model_free(m);
        }
    }
    m = NULL;
    expect_fail("subgraph reads an undefined name",
                load_model_proto(nested_model(2, "undefined_name"), NULL, &m), m,
                IFD_ERR_CORRUPT_MODEL, "undefined_name");
    m = NULL;
    expect_fail("If nested 33 levels", load_model_proto(nested_model(33, "x"), NULL, &m), m,
                IFD_ERR_TOO_BIG, NULL);
    m = NULL;
    expect_fail("If nested 100 levels", load_model_proto(nested_model(100, "x"), NULL, &m), m,
                IFD_ERR_TOO_BIG, NULL);

    /* 50,000 levels of Graph > Node > Attribute > Graph as raw bytes (protobuf-c would
     * recurse once per message). */
    rbuf b = {NULL, 0, 0};
    b.cap = 50000u * 3u * 8u + 64;
    b.base = talloc(b.cap);
    b.start = b.cap;
    for (int i = 0; i < 50000; i++) {
        rb_wrap(&b, 6); /* AttributeProto.g */
        rb_wrap(&b, 5); /* NodeProto.attribute */
        rb_wrap(&b, 1); /* GraphProto.node */
    }
    rb_wrap(&b, 7); /* ModelProto.graph */
    m = NULL;
    expect_fail("50,000-deep nesting", ifd_model_load_memory(b.base + b.start, b.cap - b.start,
                                                            NULL, &m),
                m, IFD_ERR_TOO_BIG, NULL);
    /* The same as a TensorProto-shaped blob (nesting via segment fields is bounded too). */
    ifd_tensor *t = NULL;
    st = ifd_onnx_tensor_from_bytes(b.base + b.start, b.cap - b.start, NULL, &t);
    check(st != IFD_OK && t == NULL, "deep bytes as TensorProto rejected", ifd_last_error());
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static Onnx__ModelProto *external_model(const char *location, const char *offset,
                                        const char *length) {
    static const int64_t d3[1] = {3};
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    Onnx__TensorProto *w = tensor_f32("w", 1, d3, 0, NULL);
    w->has_raw_data = 0;
    w->has_data_location = 1;
    w->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    w->external_data = talloc(sizeof(void *) * 3);
    const char *keys[3] = {"location", "offset", "length"};
    const char *vals[3] = {location, offset, length};
    for (int i = 0; i < 3; i++) {
        if (!vals[i]) continue;
        Onnx__StringStringEntryProto *e = talloc(sizeof *e);
        onnx__string_string_entry_proto__init(e);
        e->key = tstr(keys[i]);
        e->value = tstr(vals[i]);
        w->external_data[w->n_external_data++] = e;
    }
    g->initializer[g->n_initializer++] = w;
    g->node[g->n_node++] = node("Identity", "", "w", NULL, "y");
    return model_new(g, 13);
}

static ifd_status load_external(const char *dir, const char *location, const char *offset,
                                const char *length, ifd_model **m) {
    char path[512];
    size_t size;
    uint8_t *buf = pack_model(external_model(location, offset, length), &size);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    write_file(path, buf, size);
    *m = NULL;
    return ifd_model_load_file(path, m);
}

static void test_external(void) {
    char root[] = "/tmp/ifd_test_ext_XXXXXX";
    if (!mkdtemp(root)) {
        check(false, "external data temp dir", "mkdtemp failed");
        return;
    }
    char dir[600], path[700], outside[700];
    snprintf(dir, sizeof dir, "%s/model", root);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/sub", dir);
    mkdir(path, 0700);
    float w[4] = {1.5f, -2.0f, 3.25f, 9.0f};
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    write_file(path, w, sizeof w);
    snprintf(outside, sizeof outside, "%s/secret.bin", root);
    write_file(outside, w, sizeof w);
    snprintf(path, sizeof path, "%s/link.bin", dir);
    if (symlink(outside, path) != 0) perror("symlink");

    ifd_model *m = NULL;
    ifd_status st = load_external(dir, "weights.bin", NULL, "12", &m);
    expect_ok("external data loads", st);
    if (!st) {
        int v = ifd_graph_find_value(m->graph, "w");
        const float *p = v >= 0 && m->graph->values[v].constant
                             ? m->graph->values[v].constant->data
                             : NULL;
        check(p && p[0] == 1.5f && p[2] == 3.25f, "external data values", "");
        ifd_model_free(m);
    }
    st = load_external(dir, "weights.bin", "4", "12", &m);
    expect_ok("external data with offset loads", st);
    if (!st) {
        int v = ifd_graph_find_value(m->graph, "w");
        const float *p = m->graph->values[v].constant->data;
        check(p[0] == -2.0f && p[2] == 9.0f, "external data offset honoured", "");
        ifd_model_free(m);
    }
    st = load_external(dir, "sub/../weights.bin", "0", "12", &m);
    expect_ok("external data with inner '..' staying inside loads", st);
    ifd_model_free(m);

    st = load_external(dir, "../../etc/passwd", NULL, NULL, &m);
    expect_fail("external ../../etc/passwd", st, m, IFD_OK, NULL);
    st = load_external(dir, "../secret.bin", "0", "12", &m);
    expect_fail("external ../ escape to an existing file", st, m, IFD_ERR_CORRUPT_MODEL,
                "outside");
    st = load_external(dir, "/etc/passwd", NULL, NULL, &m);
    expect_fail("external absolute path", st, m, IFD_ERR_CORRUPT_MODEL, "absolute");
    st = load_external(dir, "link.bin", "0", "12", &m);
    expect_fail("external symlink pointing outside", st, m, IFD_ERR_CORRUPT_MODEL, "outside");
    st = load_external(dir, "weights.bin", "8", "12", &m);
    expect_fail("external offset+length past EOF", st, m, IFD_ERR_CORRUPT_MODEL, NULL);
    st = load_external(dir, "weights.bin", "99999999999999999999", "12", &m);
    expect_fail("external absurd offset", st, m, IFD_ERR_CORRUPT_MODEL, NULL);
    st = load_external(dir, "weights.bin", "0", "8", &m);
    expect_fail("external length not matching shape", st, m, IFD_ERR_CORRUPT_MODEL, NULL);
    st = load_external(dir, ".", "0", "12", &m);
    expect_fail("external location is a folder", st, m, IFD_OK, NULL);
    st = load_external(dir, "missing.bin", "0", "12", &m);
    expect_fail("external file missing", st, m, IFD_OK, NULL);

    size_t size;
    uint8_t *buf = pack_model(external_model("weights.bin", NULL, NULL), &size);
    m = NULL;
    expect_fail("external data from memory without base dir",
                ifd_model_load_memory(buf, size, NULL, &m), m, IFD_OK, NULL);

    snprintf(path, sizeof path, "%s/model.onnx", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/link.bin", dir);
    unlink(path);
    unlink(outside);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
    rmdir(root);
}

static void test_functions(void) {
    /* Model-local function local.Twice(a) = Identity(Identity(a)) called once. */
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->node[g->n_node++] = node("Twice", "local", "x", NULL, "y");
    Onnx__ModelProto *mp = model_new(g, 13);
    Onnx__OperatorSetIdProto *o = talloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = tstr("local");
    o->has_version = 1;
    o->version = 1;
    mp->opset_import[mp->n_opset_import++] = o;
    Onnx__FunctionProto *f = talloc(sizeof *f);
    onnx__function_proto__init(f);
    f->name = tstr("Twice");
    f->domain = tstr("local");
    f->n_input = 1;
    f->input = talloc(sizeof(char *));
    f->input[0] = tstr("a");
    f->n_output = 1;
    f->output = talloc(sizeof(char *));
    f->output[0] = tstr("b");
    f->n_node = 2;
    f->node = talloc(2 * sizeof(void *));
    f->node[0] = node("Identity", "", "a", NULL, "t");
    f->node[1] = node("Identity", "", "t", NULL, "b");
    mp->n_functions = 1;
    mp->functions = talloc(sizeof(void *));
    mp->functions[0] = f;
    ifd_model *m = NULL;
    ifd_status st = load_model_proto(mp, NULL, &m);
    expect_ok("model-local function inlined", st);
    if (!st) {
        const char *op;
        size_t cnt;
        ifd_model_op_kind(m, 0, &op, NULL, &cnt);
        check(m->graph->n_nodes == 2 && ifd_model_op_kinds(m) == 1 && !strcmp(op, "Identity") &&
                  cnt == 2,
              "inlined nodes", "");
        ifd_model_free(m);
    }
    /* A function that calls itself twice: rejected, neither endless nor exponential. */
    f->node[0] = node("Twice", "local", "a", NULL, "t");
    f->node[1] = node("Twice", "local", "t", NULL, "b");
    m = NULL;
    expect_fail("recursive model-local function", load_model_proto(mp, NULL, &m), m, IFD_OK,
                NULL);
}

static Onnx__AttributeProto *float_attr(const char *name, float v, const char *ref) {
    Onnx__AttributeProto *a = talloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tstr(name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (ref) {
        a->ref_attr_name = tstr(ref);
    } else {
        a->has_f = 1;
        a->f = v;
    }
    return a;
}

static void test_function_defaults(void) {
    /* local.K() = Constant(value_float = @v), v defaults to 2.5 (FunctionProto.attribute_proto,
     * field 11, unknown to the 1.12 schema: packed here as an unknown field). */
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = fvinfo("x");
    g->output[g->n_output++] = fvinfo("y");
    g->output[g->n_output++] = fvinfo("z");
    Onnx__NodeProto *c1 = node("K", "local", NULL, NULL, "y");
    Onnx__NodeProto *c2 = node("K", "local", NULL, NULL, "z");
    node_add_attr(c2, float_attr("v", 4.0f, NULL));
    g->node[g->n_node++] = c1;
    g->node[g->n_node++] = c2;
    Onnx__ModelProto *mp = model_new(g, 13);
    Onnx__OperatorSetIdProto *o = talloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = tstr("local");
    o->has_version = 1;
    o->version = 1;
    mp->opset_import[mp->n_opset_import++] = o;
    Onnx__FunctionProto *f = talloc(sizeof *f);
    onnx__function_proto__init(f);
    f->name = tstr("K");
    f->domain = tstr("local");
    f->n_output = 1;
    f->output = talloc(sizeof(char *));
    f->output[0] = tstr("out");
    f->n_attribute = 1;
    f->attribute = talloc(sizeof(char *));
    f->attribute[0] = tstr("v");
    Onnx__NodeProto *body = node("Constant", "", NULL, NULL, "out");
    node_add_attr(body, float_attr("value_float", 0, "v"));
    f->n_node = 1;
    f->node = talloc(sizeof(void *));
    f->node[0] = body;
    Onnx__AttributeProto *dflt = float_attr("v", 2.5f, NULL);
    size_t an = onnx__attribute_proto__get_packed_size(dflt);
    uint8_t *payload = talloc(an + 1);
    payload[0] = (uint8_t)an; /* small: one-byte length prefix */
    onnx__attribute_proto__pack(dflt, payload + 1);
    ProtobufCMessageUnknownField *u = talloc(sizeof *u);
    u->tag = 11;
    u->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    u->len = an + 1;
    u->data = payload;
    f->base.n_unknown_fields = 1;
    f->base.unknown_fields = u;
    mp->n_functions = 1;
    mp->functions = talloc(sizeof(void *));
    mp->functions[0] = f;
    ifd_model *m = NULL;
    ifd_status st = load_model_proto(mp, NULL, &m);
    f->base.n_unknown_fields = 0; /* test-owned memory */
    f->base.unknown_fields = NULL;
    expect_ok("function with attribute reference loads", st);
    if (st) return;
    const ifd_graph *gr = m->graph;
    float vy = -1, vz = -1;
    for (int i = 0; i < gr->n_nodes; i++) {
        const char *out = gr->values[gr->nodes[i].outputs[0]].name;
        float v = ifd_attr_float(&gr->nodes[i], "value_float", -1);
        if (!strcmp(out, "y")) vy = v;
        if (!strcmp(out, "z")) vz = v;
    }
    char detail[128];
    snprintf(detail, sizeof detail, "y %g (want 2.5), z %g (want 4)", vy, vz);
    check(vy == 2.5f && vz == 4.0f, "function attribute default and override", detail);
    ifd_model_free(m);
}

static void test_tensor_bytes(void) {
    ifd_tensor *t = NULL;
    static const int64_t d3[1] = {3};
    static const float v3[3] = {1, 2, 3};
    Onnx__TensorProto *tp = tensor_f32("t", 1, d3, 3, v3);
    size_t n = onnx__tensor_proto__get_packed_size(tp);
    uint8_t *buf = talloc(n);
    onnx__tensor_proto__pack(tp, buf);
    ifd_status st = ifd_onnx_tensor_from_bytes(buf, n, NULL, &t);
    check(!st && t && t->count == 3 && ((float *)t->data)[2] == 3.0f, "TensorProto from bytes",
          ifd_last_error());
    ifd_tensor_free(t);
    t = NULL;
    st = ifd_onnx_tensor_from_bytes(buf, n - 1, NULL, &t);
    check(st != IFD_OK && !t, "truncated TensorProto rejected", "");
    /* A SequenceProto-like blob: field 1 is a name string. */
    static const uint8_t seq[] = {0x0a, 0x03, 's', 'e', 'q', 0x10, 0x01};
    t = NULL;
    st = ifd_onnx_tensor_from_bytes(seq, sizeof seq, NULL, &t);
    check(st == IFD_ERR_UNSUPPORTED && !t, "sequence blob is unsupported", ifd_last_error());
}

int main(void) {
    test_valid();
    pool_reset();
    test_topo_order();
    pool_reset();
    test_bad_bytes();
    pool_reset();
    test_graph_errors();
    pool_reset();
    test_initializers();
    pool_reset();
    test_nesting();
    pool_reset();
    test_external();
    pool_reset();
    test_functions();
    pool_reset();
    test_function_defaults();
    pool_reset();
    test_tensor_bytes();
    pool_reset();
    free(g_pool);
    if (ifd_memory_in_use() != 0) {
        g_fail++;
        printf("FAIL no leaks: %zu bytes still allocated\n", ifd_memory_in_use());
    } else {
        g_pass++;
        printf("PASS no leaks\n");
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
