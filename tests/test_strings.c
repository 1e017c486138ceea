/* String tensor tests: the public API (create/set/get/clone/free, wrap refused, bad calls),
 * string TensorProto decoding, and sessions running every operator that moves or computes on
 * strings, with models built in C from the protobuf-c structs (no Python needed). Includes an
 * allocation-failure sweep over a string model (no crash, no leak: LeakSanitizer in the
 * sanitizer build, ifd_memory_in_use() here) and the gate that keeps strings away from numeric
 * kernels. */
#include "base/base.h"
#include "onnx/onnx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_check.h"

/* ---- test allocations for protobuf structs: freed together by pool_reset() ---------------- */

#include "test_proto.h"

/* ---- model construction -------------------------------------------------------------------- */

/* rank < 0: no shape; dims[i] == -1: symbolic */
static Onnx__ValueInfoProto *vinfo(const char *name, int elem, int rank, const int64_t *dims) {
    return value_info(name, tensor_type(elem, rank, dims));
}

/* A string value of unknown shape. */
static Onnx__ValueInfoProto *svinfo(const char *name) { return vinfo(name, IFD_DTYPE_STRING, -1, NULL); }

/* ins/outs: NULL-terminated name lists ("" for an omitted input). */
static Onnx__NodeProto *node(const char *op, const char *domain, const char *const *ins,
                             const char *const *outs) {
    Onnx__NodeProto *n = talloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = tstr(op);
    n->name = tstr(op);
    n->domain = tstr(domain ? domain : "");
    n->input = talloc(sizeof(char *) * 8);
    n->output = talloc(sizeof(char *) * 8);
    for (int i = 0; ins && ins[i]; i++) n->input[n->n_input++] = tstr(ins[i]);
    for (int i = 0; outs && outs[i]; i++) n->output[n->n_output++] = tstr(outs[i]);
    n->attribute = talloc(sizeof(void *) * 8);
    return n;
}

static Onnx__AttributeProto *attr_new(Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = talloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tstr(name);
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, size_t k, const int64_t *v) {
    Onnx__AttributeProto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = k;
    a->ints = talloc(sizeof(int64_t) * (k + 1));
    memcpy(a->ints, v, sizeof(int64_t) * k);
}

static void attr_floats(Onnx__NodeProto *n, const char *name, size_t k, const float *v) {
    Onnx__AttributeProto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = k;
    a->floats = talloc(sizeof(float) * (k + 1));
    memcpy(a->floats, v, sizeof(float) * k);
}

static void attr_string(Onnx__NodeProto *n, const char *name, const char *v, size_t len) {
    Onnx__AttributeProto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = len;
    a->s.data = talloc(len + 1);
    memcpy(a->s.data, v, len);
}

static void attr_strings(Onnx__NodeProto *n, const char *name, size_t k, const char *const *v) {
    Onnx__AttributeProto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = k;
    a->strings = talloc(sizeof(ProtobufCBinaryData) * (k + 1));
    for (size_t i = 0; i < k; i++) {
        a->strings[i].len = strlen(v[i]);
        a->strings[i].data = (uint8_t *)tstr(v[i]);
    }
}

/* A string TensorProto; lens may be NULL (then strlen). */
static Onnx__TensorProto *tensor_strings(const char *name, int rank, const int64_t *dims, size_t n,
                                         const char *const *v, const size_t *lens) {
    Onnx__TensorProto *t = talloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tstr(name);
    t->has_data_type = 1;
    t->data_type = IFD_DTYPE_STRING;
    t->n_dims = (size_t)rank;
    t->dims = talloc(sizeof(int64_t) * (size_t)(rank + 1));
    if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->n_string_data = n;
    t->string_data = talloc(sizeof(ProtobufCBinaryData) * (n + 1));
    for (size_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(v[i]);
        t->string_data[i].len = l;
        t->string_data[i].data = talloc(l + 1);
        memcpy(t->string_data[i].data, v[i], l);
    }
    return t;
}

static Onnx__TensorProto *tensor_i64(const char *name, int rank, const int64_t *dims, size_t n,
                                     const int64_t *v) {
    Onnx__TensorProto *t = talloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tstr(name);
    t->has_data_type = 1;
    t->data_type = IFD_DTYPE_INT64;
    t->n_dims = (size_t)rank;
    t->dims = talloc(sizeof(int64_t) * (size_t)(rank + 1));
    if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->n_int64_data = n;
    t->int64_data = talloc(sizeof(int64_t) * (n + 1));
    memcpy(t->int64_data, v, sizeof(int64_t) * n);
    return t;
}

static Onnx__TensorProto *tensor_bool(const char *name, int rank, const int64_t *dims, size_t n,
                                      const int32_t *v) {
    Onnx__TensorProto *t = talloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tstr(name);
    t->has_data_type = 1;
    t->data_type = IFD_DTYPE_BOOL;
    t->n_dims = (size_t)rank;
    t->dims = talloc(sizeof(int64_t) * (size_t)(rank + 1));
    if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->n_int32_data = n;
    t->int32_data = talloc(sizeof(int32_t) * (n + 1));
    memcpy(t->int32_data, v, sizeof(int32_t) * n);
    return t;
}

/* ---- tensors ------------------------------------------------------------------------------- */

static ifd_tensor *make_strings(int rank, const int64_t *dims, const char *const *v) {
    ifd_tensor *t = NULL;
    if (ifd_tensor_create(IFD_DTYPE_STRING, rank, dims, &t)) abort();
    for (int64_t i = 0; i < ifd_tensor_count(t); i++)
        if (ifd_tensor_set_string(t, i, v[i], strlen(v[i]))) abort();
    return t;
}

/* Whether t is a string tensor of shape (rank, dims) holding v; detail says what differs. */
static bool strings_are(const ifd_tensor *t, int rank, const int64_t *dims, const char *const *v,
                        char *detail, size_t size) {
    snprintf(detail, size, "ok");
    if (!t) {
        snprintf(detail, size, "no tensor (%s)", ifd_last_error());
        return false;
    }
    if (ifd_tensor_dtype(t) != IFD_DTYPE_STRING) {
        snprintf(detail, size, "dtype %s", ifd_dtype_name(ifd_tensor_dtype(t)));
        return false;
    }
    bool shape_ok = ifd_tensor_rank(t) == rank;
    for (int d = 0; shape_ok && d < rank; d++) shape_ok = ifd_tensor_dims(t)[d] == dims[d];
    if (!shape_ok) {
        char a[128];
        snprintf(detail, size, "shape %s",
                 ifd_shape_str(ifd_tensor_rank(t), ifd_tensor_dims(t), a, sizeof a));
        return false;
    }
    for (int64_t i = 0; i < ifd_tensor_count(t); i++) {
        size_t len;
        const char *s = ifd_tensor_get_string(t, i, &len);
        if (!s || len != strlen(v[i]) || memcmp(s, v[i], len) || s[len] != 0) {
            snprintf(detail, size, "element %lld is \"%s\", expected \"%s\"", (long long)i,
                     s ? s : "(null)", v[i]);
            return false;
        }
    }
    return true;
}

/* Load g, create a session (2 threads), run with the given inputs; outputs[] receive the
 * results (caller frees). Returns the first failing status. */
static ifd_status run_graph(Onnx__GraphProto *g, int64_t opset, size_t n_in,
                            const char *const *names, ifd_tensor *const *in, size_t n_out,
                            ifd_tensor **out) {
    ifd_model *m = NULL;
    ifd_session *s = NULL;
    ifd_session_options o;
    ifd_session_options_init(&o);
    o.num_threads = 2;
    ifd_status st = load_graph(g, opset, &m);
    if (!st) st = ifd_session_create(m, &o, &s);
    if (!st)
        st = ifd_session_run(s, n_in, names, (const ifd_tensor *const *)in, n_out, NULL, out);
    ifd_session_free(s);
    ifd_model_free(m);
    return st;
}

/* ---- API ------------------------------------------------------------------------------------ */

static void test_api(void) {
    char d[512];
    int64_t dims[2] = {2, 3};
    ifd_tensor *t = NULL, *c = NULL, *f = NULL;
    ifd_status st = ifd_tensor_create(IFD_DTYPE_STRING, 2, dims, &t);
    check(st == IFD_OK && t && ifd_tensor_count(t) == 6 && ifd_tensor_nbytes(t) == 0,
          "create [2,3] string tensor", ifd_last_error());
    bool all_empty = true;
    for (int64_t i = 0; i < 6; i++) {
        size_t len = 99;
        const char *s = ifd_tensor_get_string(t, i, &len);
        all_empty &= s && len == 0 && s[0] == 0;
    }
    check(all_empty, "new elements are empty strings", NULL);
    const ifd_string *arr = ifd_tensor_cdata(t);
    check(arr && arr[0].len == 0, "cdata is the ifd_string element array", NULL);

    /* bytes, NUL included */
    static const char nul[3] = {'a', 0, 'b'};
    st = ifd_tensor_set_string(t, 1, nul, 3);
    size_t len = 0;
    const char *s = ifd_tensor_get_string(t, 1, &len);
    check(st == IFD_OK && s && len == 3 && !memcmp(s, nul, 3) && s[3] == 0,
          "set/get keeps an embedded NUL and terminates", ifd_last_error());
    check(arr[1].len == 3 && arr[1].data == s, "element array reflects set_string", NULL);
    ifd_tensor_set_string(t, 0, "hello", 5);
    ifd_tensor_set_string(t, 5, "world!", 6);
    check(ifd_tensor_nbytes(t) == 14, "nbytes is the sum of the lengths", NULL);
    /* overwrite (the old bytes are freed: LeakSanitizer checks) and set back to empty */
    ifd_tensor_set_string(t, 0, "hi", 2);
    st = ifd_tensor_set_string(t, 5, NULL, 0);
    s = ifd_tensor_get_string(t, 5, &len);
    check(st == IFD_OK && s && len == 0 && ifd_tensor_nbytes(t) == 5,
          "overwrite, and NULL with length 0 sets \"\"", ifd_last_error());

    /* clone is deep */
    st = ifd_tensor_clone(t, &c);
    const char *cs = c ? ifd_tensor_get_string(c, 0, &len) : NULL;
    check(st == IFD_OK && cs && len == 2 && !memcmp(cs, "hi", 2) &&
              cs != ifd_tensor_get_string(t, 0, NULL),
          "clone copies every element's bytes", ifd_last_error());
    ifd_tensor_set_string(t, 0, "changed", 7);
    cs = ifd_tensor_get_string(c, 0, &len);
    check(len == 2 && !memcmp(cs, "hi", 2), "clone is independent of the source", NULL);
    ifd_tensor_free(t);
    cs = ifd_tensor_get_string(c, 1, &len);
    check(len == 3 && !memcmp(cs, nul, 3), "clone outlives the source", NULL);

    /* bad calls */
    st = ifd_tensor_set_string(c, 6, "x", 1);
    check(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "index 6"),
          "set index out of range", ifd_last_error());
    st = ifd_tensor_set_string(c, -1, "x", 1);
    check(st == IFD_ERR_INVALID_ARGUMENT, "set negative index", ifd_last_error());
    st = ifd_tensor_set_string(c, 0, NULL, 4);
    check(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "NULL"),
          "set NULL bytes with a length", ifd_last_error());
    st = ifd_tensor_set_string(NULL, 0, "x", 1);
    check(st == IFD_ERR_INVALID_ARGUMENT, "set on NULL tensor", ifd_last_error());
    len = 7;
    check(!ifd_tensor_get_string(c, 6, &len) && len == 0 && !ifd_tensor_get_string(c, -1, NULL),
          "get out of range is NULL", NULL);
    ifd_tensor_create(IFD_DTYPE_FLOAT, 2, dims, &f);
    st = ifd_tensor_set_string(f, 0, "x", 1);
    check(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "float32"),
          "set on a float tensor", ifd_last_error());
    check(!ifd_tensor_get_string(f, 0, NULL), "get on a float tensor is NULL", NULL);
    ifd_tensor_free(f);

    /* wrap refused */
    ifd_string raw[6] = {{0}};
    ifd_tensor *w = (ifd_tensor *)1;
    st = ifd_tensor_wrap(IFD_DTYPE_STRING, 2, dims, raw, sizeof raw, &w);
    check(st == IFD_ERR_INVALID_ARGUMENT && !w && strstr(ifd_last_error(), "string"),
          "wrap of a string tensor is refused", ifd_last_error());

    /* failed allocation keeps the old element */
    ifd_alloc_fail_at(1);
    st = ifd_tensor_set_string(c, 0, "new value", 9);
    ifd_alloc_fail_at(0);
    cs = ifd_tensor_get_string(c, 0, &len);
    check(st == IFD_ERR_NO_MEMORY && len == 2 && !memcmp(cs, "hi", 2),
          "set_string out of memory keeps the old value", ifd_last_error());
    ifd_tensor_free(c);

    /* scalar and empty */
    ifd_tensor *sc = NULL, *e = NULL;
    int64_t zero = 0;
    st = ifd_tensor_create(IFD_DTYPE_STRING, 0, NULL, &sc);
    check(st == IFD_OK && ifd_tensor_count(sc) == 1 && ifd_tensor_get_string(sc, 0, NULL),
          "scalar string tensor", ifd_last_error());
    st = ifd_tensor_create(IFD_DTYPE_STRING, 1, &zero, &e);
    check(st == IFD_OK && ifd_tensor_count(e) == 0 && !ifd_tensor_get_string(e, 0, NULL) &&
              ifd_tensor_nbytes(e) == 0,
          "empty string tensor", ifd_last_error());
    ifd_tensor *ec = NULL;
    st = ifd_tensor_clone(e, &ec);
    check(st == IFD_OK && ec && ifd_tensor_count(ec) == 0, "clone of an empty string tensor",
          ifd_last_error());
    ifd_tensor_free(ec);
    ifd_tensor_free(sc);
    ifd_tensor_free(e);
    ifd_tensor_free(NULL);
    (void)d;
}

/* ---- TensorProto decoding -------------------------------------------------------------------- */

static void test_tensorproto(void) {
    static const char *v[3] = {"x", "", "yz"};
    int64_t dims[1] = {3};
    Onnx__TensorProto *tp = tensor_strings("t", 1, dims, 3, v, NULL);
    size_t size = onnx__tensor_proto__get_packed_size(tp);
    uint8_t *buf = talloc(size);
    onnx__tensor_proto__pack(tp, buf);
    ifd_tensor *t = NULL;
    char d[256];
    ifd_status st = ifd_onnx_tensor_from_bytes(buf, size, NULL, &t);
    check(st == IFD_OK && strings_are(t, 1, dims, v, d, sizeof d), "string TensorProto decodes",
          st ? ifd_last_error() : d);
    ifd_tensor_free(t);

    tp->n_string_data = 2; /* shape says 3 */
    size = onnx__tensor_proto__get_packed_size(tp);
    buf = talloc(size);
    onnx__tensor_proto__pack(tp, buf);
    t = NULL;
    st = ifd_onnx_tensor_from_bytes(buf, size, NULL, &t);
    check(st == IFD_ERR_CORRUPT_MODEL && !t && strstr(ifd_last_error(), "string_data"),
          "string_data count must match the shape", ifd_last_error());

    tp->n_string_data = 3;
    tp->has_raw_data = 1;
    tp->raw_data.len = 3;
    tp->raw_data.data = (uint8_t *)tstr("abc");
    size = onnx__tensor_proto__get_packed_size(tp);
    buf = talloc(size);
    onnx__tensor_proto__pack(tp, buf);
    st = ifd_onnx_tensor_from_bytes(buf, size, NULL, &t);
    check(st == IFD_ERR_CORRUPT_MODEL && !t && strstr(ifd_last_error(), "raw_data"),
          "string tensor in raw_data is refused", ifd_last_error());
    pool_reset();
}

/* ---- sessions -------------------------------------------------------------------------------- */

static const char *const X6[6] = {"a", "bb", "", "d\xc3\xa9", "eeeee", "f"}; /* x: [2,3] */
static const int64_t D23[2] = {2, 3};

/* One node: x (string [2,3]) plus extra initializers -> op -> y; y compared to want. */
typedef struct op_case {
    const char *name;
    Onnx__NodeProto *n;
    int rank;
    int64_t dims[4];
    const char *want[16];
} op_case;

static void run_op_case(Onnx__GraphProto *g, op_case *c, int64_t opset) {
    char d[512];
    static const char *names[1] = {"x"};
    ifd_tensor *x = make_strings(2, D23, X6), *y = NULL;
    g->input[g->n_input++] = vinfo("x", IFD_DTYPE_STRING, 2, (const int64_t[]){-1, 3});
    g->output[g->n_output++] = svinfo("y");
    g->node[g->n_node++] = c->n;
    ifd_status st = run_graph(g, opset, 1, names, &x, 1, &y);
    check(st == IFD_OK && strings_are(y, c->rank, c->dims, c->want, d, sizeof d), c->name,
          st ? ifd_last_error() : d);
    ifd_tensor_free(x);
    ifd_tensor_free(y);
    pool_reset();
}

static void test_movement_ops(void) {
    Onnx__GraphProto *g;
    op_case c;

    g = graph_new("g");
    c = (op_case){"Identity", node("Identity", "", (const char *[]){"x", 0}, (const char *[]){"y", 0}),
                  2, {2, 3}, {"a", "bb", "", "d\xc3\xa9", "eeeee", "f"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_i64("shape", 1, (const int64_t[]){2}, 2,
                                                    (const int64_t[]){3, -1});
    c = (op_case){"Reshape", node("Reshape", "", (const char *[]){"x", "shape", 0}, (const char *[]){"y", 0}),
                  2, {3, 2}, {"a", "bb", "", "d\xc3\xa9", "eeeee", "f"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    c = (op_case){"Flatten", node("Flatten", "", (const char *[]){"x", 0}, (const char *[]){"y", 0}),
                  2, {1, 6}, {"a", "bb", "", "d\xc3\xa9", "eeeee", "f"}};
    attr_int(c.n, "axis", 0);
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_i64("axes", 1, (const int64_t[]){1}, 1,
                                                    (const int64_t[]){1});
    c = (op_case){"Unsqueeze", node("Unsqueeze", "", (const char *[]){"x", "axes", 0}, (const char *[]){"y", 0}),
                  3, {2, 1, 3}, {"a", "bb", "", "d\xc3\xa9", "eeeee", "f"}};
    run_op_case(g, &c, 17);

    /* Unsqueeze then Squeeze: two string nodes, an intermediate string slot */
    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_i64("axes", 1, (const int64_t[]){1}, 1,
                                                    (const int64_t[]){0});
    g->node[g->n_node++] = node("Unsqueeze", "", (const char *[]){"x", "axes", 0},
                                (const char *[]){"u", 0});
    c = (op_case){"Unsqueeze -> Squeeze", node("Squeeze", "", (const char *[]){"u", "axes", 0}, (const char *[]){"y", 0}),
                  2, {2, 3}, {"a", "bb", "", "d\xc3\xa9", "eeeee", "f"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    c = (op_case){"Transpose", node("Transpose", "", (const char *[]){"x", 0}, (const char *[]){"y", 0}),
                  2, {3, 2}, {"a", "d\xc3\xa9", "bb", "eeeee", "", "f"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    c = (op_case){"Concat axis 1", node("Concat", "", (const char *[]){"x", "x", 0}, (const char *[]){"y", 0}),
                  2, {2, 6}, {"a", "bb", "", "a", "bb", "", "d\xc3\xa9", "eeeee", "f", "d\xc3\xa9", "eeeee", "f"}};
    attr_int(c.n, "axis", 1);
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] =
        tensor_strings("k", 2, (const int64_t[]){1, 3}, 3, (const char *[]){"k1", "k2", "k3"}, NULL);
    c = (op_case){"Concat axis 0 with a string initializer", node("Concat", "", (const char *[]){"k", "x", 0}, (const char *[]){"y", 0}),
                  2, {3, 3}, {"k1", "k2", "k3", "a", "bb", "", "d\xc3\xa9", "eeeee", "f"}};
    attr_int(c.n, "axis", 0);
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_i64("i", 1, (const int64_t[]){3}, 3,
                                                    (const int64_t[]){2, 0, -1});
    c = (op_case){"Gather axis 1", node("Gather", "", (const char *[]){"x", "i", 0}, (const char *[]){"y", 0}),
                  2, {2, 3}, {"", "a", "", "f", "d\xc3\xa9", "f"}};
    attr_int(c.n, "axis", 1);
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_i64("s", 1, (const int64_t[]){1}, 1, (const int64_t[]){1});
    g->initializer[g->n_initializer++] = tensor_i64("e", 1, (const int64_t[]){1}, 1, (const int64_t[]){3});
    g->initializer[g->n_initializer++] = tensor_i64("a", 1, (const int64_t[]){1}, 1, (const int64_t[]){1});
    c = (op_case){"Slice", node("Slice", "", (const char *[]){"x", "s", "e", "a", 0}, (const char *[]){"y", 0}),
                  2, {2, 2}, {"bb", "", "eeeee", "f"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_i64("shape", 1, (const int64_t[]){3}, 3,
                                                    (const int64_t[]){2, 1, 1});
    c = (op_case){"Expand", node("Expand", "", (const char *[]){"x", "shape", 0}, (const char *[]){"y", 0}),
                  3, {2, 2, 3}, {"a", "bb", "", "d\xc3\xa9", "eeeee", "f", "a", "bb", "", "d\xc3\xa9", "eeeee", "f"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_i64("r", 1, (const int64_t[]){2}, 2, (const int64_t[]){1, 2});
    c = (op_case){"Tile", node("Tile", "", (const char *[]){"x", "r", 0}, (const char *[]){"y", 0}),
                  2, {2, 6}, {"a", "bb", "", "a", "bb", "", "d\xc3\xa9", "eeeee", "f", "d\xc3\xa9", "eeeee", "f"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    int32_t cond[6] = {1, 0, 1, 0, 1, 0};
    g->initializer[g->n_initializer++] = tensor_bool("c", 2, D23, 6, cond);
    g->initializer[g->n_initializer++] = tensor_strings("o", 0, NULL, 1, (const char *[]){"other"}, NULL);
    c = (op_case){"Where", node("Where", "", (const char *[]){"c", "x", "o", 0}, (const char *[]){"y", 0}),
                  2, {2, 3}, {"a", "other", "", "other", "eeeee", "other"}};
    run_op_case(g, &c, 17);

    g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_strings("sfx", 1, (const int64_t[]){1}, 1, (const char *[]){".com"}, NULL);
    c = (op_case){"StringConcat broadcast", node("StringConcat", "", (const char *[]){"x", "sfx", 0}, (const char *[]){"y", 0}),
                  2, {2, 3}, {"a.com", "bb.com", ".com", "d\xc3\xa9.com", "eeeee.com", "f.com"}};
    run_op_case(g, &c, 20);

    /* Split: two string outputs */
    {
        char d[512];
        ifd_tensor *x = make_strings(2, D23, X6), *out[2] = {0};
        g = graph_new("g");
        g->initializer[g->n_initializer++] = tensor_i64("sp", 1, (const int64_t[]){2}, 2, (const int64_t[]){1, 2});
        g->input[g->n_input++] = svinfo("x");
        g->output[g->n_output++] = svinfo("y0");
        g->output[g->n_output++] = svinfo("y1");
        Onnx__NodeProto *n = node("Split", "", (const char *[]){"x", "sp", 0}, (const char *[]){"y0", "y1", 0});
        attr_int(n, "axis", 1);
        g->node[g->n_node++] = n;
        ifd_status st = run_graph(g, 17, 1, (const char *[]){"x"}, &x, 2, out);
        bool ok = st == IFD_OK &&
                  strings_are(out[0], 2, (const int64_t[]){2, 1}, (const char *[]){"a", "d\xc3\xa9"}, d, sizeof d) &&
                  strings_are(out[1], 2, (const int64_t[]){2, 2}, (const char *[]){"bb", "", "eeeee", "f"}, d, sizeof d);
        check(ok, "Split into two string outputs", st ? ifd_last_error() : d);
        ifd_tensor_free(x);
        ifd_tensor_free(out[0]);
        ifd_tensor_free(out[1]);
        pool_reset();
    }
}

static void test_numeric_results(void) {
    char d[256];
    ifd_tensor *x = make_strings(2, D23, X6), *out[2] = {0};
    /* Shape, Size, Equal against a constant: numeric outputs of string inputs */
    Onnx__GraphProto *g = graph_new("g");
    g->initializer[g->n_initializer++] = tensor_strings("k", 1, (const int64_t[]){3}, 3,
                                                        (const char *[]){"a", "", "f"}, NULL);
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("shape", IFD_DTYPE_INT64, -1, NULL);
    g->output[g->n_output++] = vinfo("eq", IFD_DTYPE_BOOL, -1, NULL);
    g->node[g->n_node++] = node("Shape", "", (const char *[]){"x", 0}, (const char *[]){"shape", 0});
    g->node[g->n_node++] = node("Equal", "", (const char *[]){"x", "k", 0}, (const char *[]){"eq", 0});
    ifd_status st = run_graph(g, 19, 1, (const char *[]){"x"}, &x, 2, out);
    bool ok = st == IFD_OK && ifd_tensor_count(out[0]) == 2 &&
              ((const int64_t *)ifd_tensor_cdata(out[0]))[0] == 2 &&
              ((const int64_t *)ifd_tensor_cdata(out[0]))[1] == 3 &&
              ifd_tensor_dtype(out[1]) == IFD_DTYPE_BOOL && ifd_tensor_count(out[1]) == 6;
    static const uint8_t want_eq[6] = {1, 0, 0, 0, 0, 1};
    if (ok) ok = !memcmp(ifd_tensor_cdata(out[1]), want_eq, 6);
    snprintf(d, sizeof d, "%s", st ? ifd_last_error() : "wrong values");
    check(ok, "Shape and Equal (broadcast) of a string tensor", d);
    ifd_tensor_free(out[0]);
    ifd_tensor_free(out[1]);
    pool_reset();

    /* Size */
    g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("n", IFD_DTYPE_INT64, -1, NULL);
    g->node[g->n_node++] = node("Size", "", (const char *[]){"x", 0}, (const char *[]){"n", 0});
    out[0] = NULL;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &x, 1, out);
    check(st == IFD_OK && ((const int64_t *)ifd_tensor_cdata(out[0]))[0] == 6,
          "Size of a string tensor", ifd_last_error());
    ifd_tensor_free(out[0]);
    ifd_tensor_free(x);
    pool_reset();
}

static void test_cast(void) {
    char d[512];
    /* string -> float, int64 */
    static const char *nums[6] = {"1.5", "-2", "1e3", "INF", "-inf", "NaN"};
    ifd_tensor *x = make_strings(1, (const int64_t[]){6}, nums), *y = NULL;
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("y", IFD_DTYPE_FLOAT, -1, NULL);
    Onnx__NodeProto *n = node("Cast", "", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_int(n, "to", IFD_DTYPE_FLOAT);
    g->node[g->n_node++] = n;
    ifd_status st = run_graph(g, 19, 1, (const char *[]){"x"}, &x, 1, &y);
    const float *f = y ? ifd_tensor_cdata(y) : NULL;
    check(st == IFD_OK && f && f[0] == 1.5f && f[1] == -2.0f && f[2] == 1000.0f && isinf(f[3]) &&
              f[3] > 0 && isinf(f[4]) && f[4] < 0 && isnan(f[5]),
          "Cast string -> float (INF, -inf, NaN in any case)", ifd_last_error());
    ifd_tensor_free(x);
    ifd_tensor_free(y);
    pool_reset();

    static const char *ints[3] = {"100.5", "-7", "9007199254740993"};
    x = make_strings(1, (const int64_t[]){3}, ints);
    y = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("y", IFD_DTYPE_INT64, -1, NULL);
    n = node("Cast", "", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_int(n, "to", IFD_DTYPE_INT64);
    g->node[g->n_node++] = n;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &x, 1, &y);
    const int64_t *iv = y ? ifd_tensor_cdata(y) : NULL;
    check(st == IFD_OK && iv && iv[0] == 100 && iv[1] == -7 && iv[2] == 9007199254740993LL,
          "Cast string -> int64 (\"100.5\" is 100, big values exact)", ifd_last_error());
    ifd_tensor_free(x);
    ifd_tensor_free(y);
    pool_reset();

    static const char *bad[2] = {"12", "twelve"};
    x = make_strings(1, (const int64_t[]){2}, bad);
    y = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("y", IFD_DTYPE_FLOAT, -1, NULL);
    n = node("Cast", "", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_int(n, "to", IFD_DTYPE_FLOAT);
    g->node[g->n_node++] = n;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &x, 1, &y);
    check(st == IFD_ERR_INVALID_ARGUMENT && !y && strstr(ifd_last_error(), "element 1") &&
              strstr(ifd_last_error(), "twelve"),
          "Cast of a non-number string fails naming the element", ifd_last_error());
    ifd_tensor_free(x);
    ifd_tensor_free(y);
    pool_reset();

    /* float / int64 / bool -> string */
    ifd_tensor *fx = NULL;
    ifd_tensor_create(IFD_DTYPE_FLOAT, 1, (const int64_t[]){6}, &fx);
    float fv[6] = {0.1f, 1.0f, -2.5f, 1e-5f, INFINITY, NAN};
    memcpy(ifd_tensor_data(fx), fv, sizeof fv);
    y = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = vinfo("x", IFD_DTYPE_FLOAT, -1, NULL);
    g->output[g->n_output++] = svinfo("y");
    n = node("Cast", "", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_int(n, "to", IFD_DTYPE_STRING);
    g->node[g->n_node++] = n;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &fx, 1, &y);
    check(st == IFD_OK && strings_are(y, 1, (const int64_t[]){6},
                                      (const char *[]){"0.1", "1.0", "-2.5", "1e-05", "inf", "nan"},
                                      d, sizeof d),
          "Cast float -> string (shortest round trip, NumPy style)", st ? ifd_last_error() : d);
    ifd_tensor_free(fx);
    ifd_tensor_free(y);
    pool_reset();

    ifd_tensor *ix = NULL;
    ifd_tensor_create(IFD_DTYPE_INT64, 1, (const int64_t[]){2}, &ix);
    ((int64_t *)ifd_tensor_data(ix))[0] = -9007199254740993LL;
    ((int64_t *)ifd_tensor_data(ix))[1] = 42;
    y = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = vinfo("x", IFD_DTYPE_INT64, -1, NULL);
    g->output[g->n_output++] = svinfo("y");
    n = node("Cast", "", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_int(n, "to", IFD_DTYPE_STRING);
    g->node[g->n_node++] = n;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &ix, 1, &y);
    check(st == IFD_OK && strings_are(y, 1, (const int64_t[]){2},
                                      (const char *[]){"-9007199254740993", "42"}, d, sizeof d),
          "Cast int64 -> string", st ? ifd_last_error() : d);
    ifd_tensor_free(ix);
    ifd_tensor_free(y);
    pool_reset();
}

static void test_label_encoder(void) {
    char d[512];
    /* string -> int64 with keys_strings / values_int64s / default_int64 */
    static const char *in[5] = {"b", "zz", "a", "", "c"};
    ifd_tensor *x = make_strings(1, (const int64_t[]){5}, in), *y = NULL;
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("y", IFD_DTYPE_INT64, -1, NULL);
    Onnx__NodeProto *n = node("LabelEncoder", "ai.onnx.ml", (const char *[]){"x", 0},
                              (const char *[]){"y", 0});
    attr_strings(n, "keys_strings", 4, (const char *[]){"c", "a", "b", ""});
    attr_ints(n, "values_int64s", 4, (const int64_t[]){30, 10, 20, 99});
    attr_int(n, "default_int64", -5);
    g->node[g->n_node++] = n;
    ifd_status st = run_graph(g, 19, 1, (const char *[]){"x"}, &x, 1, &y);
    const int64_t *v = y ? ifd_tensor_cdata(y) : NULL;
    check(st == IFD_OK && v && v[0] == 20 && v[1] == -5 && v[2] == 10 && v[3] == 99 && v[4] == 30,
          "LabelEncoder string -> int64", ifd_last_error());
    ifd_tensor_free(x);
    ifd_tensor_free(y);
    pool_reset();

    /* int64 -> string with keys_int64s / values_strings and the default "_Unused" */
    ifd_tensor *ix = NULL;
    ifd_tensor_create(IFD_DTYPE_INT64, 2, (const int64_t[]){2, 2}, &ix);
    int64_t iv[4] = {7, -1, 3, 7};
    memcpy(ifd_tensor_data(ix), iv, sizeof iv);
    y = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = vinfo("x", IFD_DTYPE_INT64, -1, NULL);
    g->output[g->n_output++] = svinfo("y");
    n = node("LabelEncoder", "ai.onnx.ml", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_ints(n, "keys_int64s", 2, (const int64_t[]){3, 7});
    attr_strings(n, "values_strings", 2, (const char *[]){"three", "seven"});
    g->node[g->n_node++] = n;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &ix, 1, &y);
    check(st == IFD_OK && strings_are(y, 2, (const int64_t[]){2, 2},
                                      (const char *[]){"seven", "_Unused", "three", "seven"}, d,
                                      sizeof d),
          "LabelEncoder int64 -> string (default _Unused)", st ? ifd_last_error() : d);
    ifd_tensor_free(ix);
    ifd_tensor_free(y);
    pool_reset();

    /* string -> float */
    x = make_strings(1, (const int64_t[]){5}, in);
    y = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("y", IFD_DTYPE_FLOAT, -1, NULL);
    n = node("LabelEncoder", "ai.onnx.ml", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_strings(n, "keys_strings", 2, (const char *[]){"a", "b"});
    attr_floats(n, "values_floats", 2, (const float[]){0.5f, 1.5f});
    g->node[g->n_node++] = n;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &x, 1, &y);
    const float *fv = y ? ifd_tensor_cdata(y) : NULL;
    check(st == IFD_OK && fv && fv[0] == 1.5f && fv[2] == 0.5f && fv[1] == 0.0f && signbit(fv[1]),
          "LabelEncoder string -> float (default -0.0)", ifd_last_error());
    ifd_tensor_free(y);
    pool_reset();

    /* bad: repeated key, and keys/values count mismatch */
    ifd_model *m = NULL;
    ifd_session *s = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = vinfo("y", IFD_DTYPE_INT64, -1, NULL);
    n = node("LabelEncoder", "ai.onnx.ml", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_strings(n, "keys_strings", 2, (const char *[]){"a", "a"});
    attr_ints(n, "values_int64s", 2, (const int64_t[]){1, 2});
    g->node[g->n_node++] = n;
    st = load_graph(g, 19, &m);
    if (!st) st = ifd_session_create(m, NULL, &s);
    check(st == IFD_ERR_INVALID_ARGUMENT && strstr(ifd_last_error(), "twice"),
          "LabelEncoder repeated key is refused", ifd_last_error());
    ifd_session_free(s);
    ifd_model_free(m);
    pool_reset();

    /* bad: int64 input to string keys */
    ifd_tensor_create(IFD_DTYPE_INT64, 1, (const int64_t[]){1}, &ix);
    y = NULL;
    g = graph_new("g");
    g->input[g->n_input++] = vinfo("x", IFD_DTYPE_INT64, -1, NULL);
    g->output[g->n_output++] = vinfo("y", IFD_DTYPE_INT64, -1, NULL);
    n = node("LabelEncoder", "ai.onnx.ml", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    attr_strings(n, "keys_strings", 1, (const char *[]){"a"});
    attr_ints(n, "values_int64s", 1, (const int64_t[]){1});
    g->node[g->n_node++] = n;
    st = run_graph(g, 19, 1, (const char *[]){"x"}, &ix, 1, &y);
    check(st == IFD_ERR_INVALID_ARGUMENT && !y && strstr(ifd_last_error(), "int64"),
          "LabelEncoder input type must match the keys", ifd_last_error());
    ifd_tensor_free(ix);
    ifd_tensor_free(x);
    pool_reset();
}

/* Session behaviour: repeated runs (plan reuse and new shapes), constant folding of string
 * nodes, an initializer as the graph output, a string graph input as the graph output. */
static void test_session_paths(void) {
    char d[512];
    ifd_model *m = NULL;
    ifd_session *s = NULL;
    /* x -> Identity -> t -> StringConcat(t, c) -> y, c = Concat(Constant k1, Constant k2)
     * (folded at creation); outputs y, t, x itself, and the initializer "init" */
    Onnx__GraphProto *g = graph_new("g");
    g->initializer[g->n_initializer++] =
        tensor_strings("init", 1, (const int64_t[]){2}, 2, (const char *[]){"i0", "i1"}, NULL);
    g->input[g->n_input++] = vinfo("x", IFD_DTYPE_STRING, 1, (const int64_t[]){-1});
    g->output[g->n_output++] = svinfo("y");
    g->output[g->n_output++] = svinfo("t");
    g->output[g->n_output++] = svinfo("x");
    g->output[g->n_output++] = svinfo("init");
    Onnx__NodeProto *k1 = node("Constant", "", NULL, (const char *[]){"k1", 0});
    attr_strings(k1, "value_strings", 1, (const char *[]){"-"});
    Onnx__NodeProto *k2 = node("Constant", "", NULL, (const char *[]){"k2", 0});
    attr_string(k2, "value_string", "!\0?", 3);
    Onnx__NodeProto *k2r = node("Reshape", "", (const char *[]){"k2", "one", 0},
                                (const char *[]){"k2v", 0});
    g->initializer[g->n_initializer++] = tensor_i64("one", 1, (const int64_t[]){1}, 1, (const int64_t[]){1});
    Onnx__NodeProto *cc = node("StringConcat", "", (const char *[]){"k1", "k2v", 0},
                               (const char *[]){"c", 0});
    g->node[g->n_node++] = k1;
    g->node[g->n_node++] = k2;
    g->node[g->n_node++] = k2r;
    g->node[g->n_node++] = cc;
    g->node[g->n_node++] = node("Identity", "", (const char *[]){"x", 0}, (const char *[]){"t", 0});
    g->node[g->n_node++] = node("StringConcat", "", (const char *[]){"t", "c", 0},
                                (const char *[]){"y", 0});
    ifd_status st = load_graph(g, 20, &m);
    if (!st) st = ifd_session_create(m, NULL, &s);
    check(st == IFD_OK, "session with folded string constants", ifd_last_error());
    if (st) {
        ifd_model_free(m);
        pool_reset();
        return;
    }
    size_t in_use = 0;
    for (int round = 0; round < 3; round++) {
        int64_t n = round == 2 ? 3 : 2; /* a new shape on the last round */
        static const char *vals[3] = {"p", "", "r"};
        ifd_tensor *x = make_strings(1, &n, vals), *out[4] = {0};
        st = ifd_session_run(s, 1, (const char *[]){"x"}, (const ifd_tensor *const *)&x, 4, NULL,
                             out);
        /* y = x + "-" + "!\0?" (a NUL inside: compare bytes) */
        bool ok = st == IFD_OK && ifd_tensor_count(out[0]) == n;
        for (int64_t i = 0; ok && i < n; i++) {
            size_t len;
            const char *e = ifd_tensor_get_string(out[0], i, &len);
            char want[16];
            size_t wl = strlen(vals[i]);
            memcpy(want, vals[i], wl);
            memcpy(want + wl, "-!\0?", 4);
            ok = len == wl + 4 && !memcmp(e, want, len);
        }
        snprintf(d, sizeof d, "%s", st ? ifd_last_error() : "wrong y");
        check(ok, round == 0 ? "run 1: y = x + folded constant (NUL kept)"
                  : round == 1 ? "run 2 (same shapes, planned)"
                               : "run 3 (new shape)",
              d);
        ok = st == IFD_OK && strings_are(out[1], 1, &n, vals, d, sizeof d) &&
             strings_are(out[2], 1, &n, vals, d, sizeof d) &&
             strings_are(out[3], 1, (const int64_t[]){2}, (const char *[]){"i0", "i1"}, d, sizeof d);
        check(ok, "intermediate, graph input and initializer as string outputs", d);
        ok = out[2] && out[2] != x && ifd_tensor_get_string(out[2], 0, NULL) !=
                                          ifd_tensor_get_string(x, 0, NULL);
        check(ok, "a graph input returned as output is a deep copy", NULL);
        for (int i = 0; i < 4; i++) ifd_tensor_free(out[i]);
        ifd_tensor_free(x);
        /* the first run builds the plan (arena, scratch); the second must hold nothing more */
        if (round == 0) in_use = ifd_memory_in_use();
        if (round == 1)
            check(ifd_memory_in_use() == in_use, "a planned run holds no memory afterwards",
                  "ifd_memory_in_use() grew");
    }
    ifd_session_free(s);
    ifd_model_free(m);
    pool_reset();
}

/* Operators without string support refuse string inputs with a clear error. */
static void test_gate(void) {
    static const char *ops[4] = {"Relu", "Neg", "ReduceSum", "Softmax"};
    for (int k = 0; k < 4; k++) {
        char name[128];
        ifd_tensor *x = make_strings(2, D23, X6), *y = NULL;
        Onnx__GraphProto *g = graph_new("g");
        g->input[g->n_input++] = svinfo("x");
        g->output[g->n_output++] = svinfo("y");
        g->node[g->n_node++] = node("Identity", "", (const char *[]){"x", 0}, (const char *[]){"t", 0});
        g->node[g->n_node++] = node(ops[k], "", (const char *[]){"t", 0}, (const char *[]){"y", 0});
        ifd_status st = run_graph(g, 17, 1, (const char *[]){"x"}, &x, 1, &y);
        snprintf(name, sizeof name, "%s refuses a string input", ops[k]);
        check(st != IFD_OK && !y && strstr(ifd_last_error(), "string") &&
                  strstr(ifd_last_error(), ops[k]),
              name, st ? ifd_last_error() : "ran");
        ifd_tensor_free(x);
        ifd_tensor_free(y);
        pool_reset();
    }
    /* Add of two strings */
    ifd_tensor *x = make_strings(2, D23, X6), *y = NULL;
    Onnx__GraphProto *g = graph_new("g");
    g->input[g->n_input++] = svinfo("x");
    g->output[g->n_output++] = svinfo("y");
    g->node[g->n_node++] = node("Add", "", (const char *[]){"x", "x", 0}, (const char *[]){"y", 0});
    ifd_status st = run_graph(g, 17, 1, (const char *[]){"x"}, &x, 1, &y);
    check(st == IFD_ERR_UNSUPPORTED && !y && strstr(ifd_last_error(), "string"),
          "Add refuses string inputs", ifd_last_error());
    ifd_tensor_free(x);
    pool_reset();

    /* a float tensor bound to a string input */
    ifd_tensor *f = NULL;
    ifd_tensor_create(IFD_DTYPE_FLOAT, 2, D23, &f);
    g = graph_new("g");
    g->input[g->n_input++] = vinfo("x", IFD_DTYPE_STRING, 2, (const int64_t[]){-1, 3});
    g->output[g->n_output++] = svinfo("y");
    g->node[g->n_node++] = node("Identity", "", (const char *[]){"x", 0}, (const char *[]){"y", 0});
    y = NULL;
    st = run_graph(g, 17, 1, (const char *[]){"x"}, &f, 1, &y);
    check(st == IFD_ERR_INVALID_ARGUMENT && !y && strstr(ifd_last_error(), "must be string"),
          "float tensor for a string input is refused", ifd_last_error());
    ifd_tensor_free(f);
    pool_reset();
}

/* Every allocation of load, session creation and a run of a string model fails in turn:
 * a clean error each time, and nothing held afterwards. */
static void test_alloc_failures(void) {
    size_t before = ifd_memory_in_use();
    int failures = 0, bad = 0, n;
    for (n = 1; n < 2000; n++) {
        ifd_tensor *x = make_strings(2, D23, X6), *out[2] = {0};
        Onnx__GraphProto *g = graph_new("g");
        g->initializer[g->n_initializer++] = tensor_i64("i", 1, (const int64_t[]){2}, 2,
                                                        (const int64_t[]){1, 0});
        g->initializer[g->n_initializer++] =
            tensor_strings("k", 2, (const int64_t[]){1, 3}, 3, (const char *[]){"k1", "", "k3"}, NULL);
        g->input[g->n_input++] = svinfo("x");
        g->output[g->n_output++] = svinfo("y");
        g->output[g->n_output++] = vinfo("e", IFD_DTYPE_BOOL, -1, NULL);
        Onnx__NodeProto *cat = node("Concat", "", (const char *[]){"x", "k", 0}, (const char *[]){"c", 0});
        attr_int(cat, "axis", 0);
        g->node[g->n_node++] = cat;
        g->node[g->n_node++] = node("Gather", "", (const char *[]){"c", "i", 0}, (const char *[]){"gt", 0});
        g->node[g->n_node++] = node("Transpose", "", (const char *[]){"gt", 0}, (const char *[]){"tr", 0});
        g->node[g->n_node++] = node("StringConcat", "", (const char *[]){"tr", "tr", 0}, (const char *[]){"y", 0});
        g->node[g->n_node++] = node("Equal", "", (const char *[]){"y", "y", 0}, (const char *[]){"e", 0});
        ifd_alloc_fail_at(n);
        ifd_status st = run_graph(g, 20, 1, (const char *[]){"x"}, &x, 2, out);
        ifd_alloc_fail_at(0);
        if (st == IFD_OK) {
            for (int i = 0; i < 2; i++) ifd_tensor_free(out[i]);
            ifd_tensor_free(x);
            pool_reset();
            break;
        }
        failures++;
        if (st != IFD_ERR_NO_MEMORY || out[0] || out[1]) bad++;
        ifd_tensor_free(x);
        pool_reset();
    }
    char d[256];
    snprintf(d, sizeof d, "%d injected failures, %d without a clean IFD_ERR_NO_MEMORY; in use "
             "%zu -> %zu bytes", failures, bad, before, ifd_memory_in_use());
    check(failures > 20 && bad == 0 && ifd_memory_in_use() == before,
          "allocation failure at every step of a string model", d);
}

int main(void) {
    test_api();
    test_tensorproto();
    test_movement_ops();
    test_numeric_results();
    test_cast();
    test_label_encoder();
    test_session_paths();
    test_gate();
    test_alloc_failures();
    pool_reset();
    free(g_pool);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
