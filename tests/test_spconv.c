/* Sparse convolution tests.
 *  1. The kernel (kernels/spconv.h), every variant this CPU has (avx512, avx2, scalar), against
 *     a double-precision reference: odd row/position counts, padded row strides, several
 *     chunks of k, all-zero rows, a 100% zero weight, bias, Relu/Clip clamps.
 *  2. The Conv operator through a session: one-node models (built here with the protobuf-c
 *     structs of the ONNX schema) whose weights are mostly zeros, run with the sparse path
 *     forced (IFD_SPARSE=on) and with it off (the dense GEMM path), under each kernel, on 1 and
 *     2 threads: 1x1 (direct and strided), 3x3 stride 1 (the shifted, im2col-free path) and 2
 *     (im2col), padding, dilation, groups, 1-D,
 *     bias or not, fused Relu/Clip/Sigmoid, batch > 1, all-zero output channels, an all-zero
 *     weight.
 *  3. A pruned residual conv stack loads with the measured choice (IFD_SPARSE=auto): every
 *     pruned Conv is measured at load (IFD_SPARSE_LOG lines) and the outputs match the dense run.
 * `test_spconv --bench` prints sparse kernel vs dense conv times on ResNet-18's 3x3 shapes. */
#include "kernels/spconv.h"
#include "onnx/model.h"
#include "onnx/onnx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_check.h"

static uint64_t g_rng = 0x243f6a8885a308d3ull;

static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) & 0xffff) / 32768.0f - 1.0f;
}

/* Random weight [m, k] with the given fraction of zeros; rows i % zero_every == 1 all zero
 * (zero_every 0: none). */
static void make_weight(float *w, int64_t m, int64_t k, int64_t ldw, double sparsity,
                        int zero_every) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t p = 0; p < k; p++) {
            float v = frand();
            bool zero = (frand() + 1.0f) * 0.5f < (float)sparsity ||
                        (zero_every && i % zero_every == 1);
            w[i * ldw + p] = zero ? 0.0f : v;
        }
}

/* ---- 1. the kernel ------------------------------------------------------------------------- */

typedef struct kcase {
    int64_t m, k, n, pad; /* x rows of n positions with row stride n + pad */
    double sparsity;
    int zero_every;
    bool bias;
    float lo, hi;
    int64_t m0, m1; /* rows computed */
} kcase;

static void check_kernel(const char *kernel, const kcase *t) {
    const int64_t ldx = t->n + t->pad, ldy = t->n + 3;
    float *w = malloc(sizeof(float) * (size_t)(t->m * t->k + 1));
    float *x = malloc(sizeof(float) * (size_t)(t->k * ldx + 1));
    float *y = malloc(sizeof(float) * (size_t)(t->m * ldy + 1));
    float *bias = malloc(sizeof(float) * (size_t)(t->m + 1));
    float *part = ifd_malloc_aligned(sizeof(float) * IFD_SPCONV_PART_FLOATS);
    make_weight(w, t->m, t->k, t->k, t->sparsity, t->zero_every);
    for (int64_t i = 0; i < t->k * ldx; i++) x[i] = frand();
    for (int64_t i = 0; i < t->m * ldy; i++) y[i] = 12345.0f; /* sentinel */
    for (int64_t i = 0; i < t->m; i++) bias[i] = frand();
    ifd_spconv_w *sp = NULL;
    ifd_status st = ifd_spconv_pack(t->m, t->k, w, t->k, &sp);
    double max_err = 0;
    bool untouched = true;
    if (!st) {
        /* rows [m0, m1): y and bias point at row m0 */
        ifd_spconv_block(sp, t->m0, t->m1, x, ldx, t->n, t->bias ? bias + t->m0 : NULL, t->lo,
                         t->hi, y + t->m0 * ldy, ldy, part);
        for (int64_t i = 0; i < t->m; i++)
            for (int64_t p = 0; p < ldy; p++) {
                float got = y[i * ldy + p];
                if (i < t->m0 || i >= t->m1 || p >= t->n) {
                    untouched &= got == 12345.0f;
                    continue;
                }
                double ref = t->bias ? bias[i] : 0.0;
                for (int64_t q = 0; q < t->k; q++) ref += (double)w[i * t->k + q] * x[q * ldx + p];
                ref = fmin(fmax(ref, t->lo), t->hi);
                double err = fabs(got - ref) / (1.0 + fabs(ref));
                if (!(err <= max_err)) max_err = isnan(err) ? INFINITY : fmax(max_err, err);
            }
    }
    result(!st && max_err < 1e-5 && untouched && ifd_spconv_m(sp) == t->m &&
               ifd_spconv_k(sp) == t->k,
           "kernel %s m=%lld k=%lld n=%lld pad=%lld sparsity %.2f%s%s%s rows %lld..%lld "
           "(max rel err %.2g%s)",
           kernel, (long long)t->m, (long long)t->k, (long long)t->n, (long long)t->pad,
           t->sparsity, t->zero_every ? " zero-rows" : "", t->bias ? " bias" : "",
           t->lo > -INFINITY || t->hi < INFINITY ? " clamp" : "", (long long)t->m0,
           (long long)t->m1, max_err, untouched ? "" : ", wrote outside its rows/positions");
    ifd_spconv_free(sp);
    ifd_free_aligned(part);
    free(w);
    free(x);
    free(y);
    free(bias);
}

static void kernel_tests(const char *kernel) {
    const kcase cases[] = {
        {64, 576, 64, 0, 0.9, 0, true, -INFINITY, INFINITY, 0, 64},
        {37, 300, 49, 7, 0.8, 5, true, 0.0f, INFINITY, 0, 37},       /* 3 chunks, odd n */
        {130, 129, 17, 0, 0.95, 0, false, -INFINITY, INFINITY, 0, 130}, /* > 1 slab */
        {20, 50, 1, 3, 0.5, 3, true, -0.25f, 0.5f, 0, 20},           /* a single position */
        {9, 1000, 33, 0, 0.99, 0, true, -INFINITY, INFINITY, 2, 7},  /* a row range */
        {16, 64, 64, 16, 1.0, 0, true, 0.0f, 6.0f, 0, 16},           /* 100% zero: bias only */
        {16, 64, 8, 0, 1.0, 0, false, -INFINITY, INFINITY, 0, 16},   /* 100% zero, no bias */
        {5, 3, 31, 1, 0.0, 0, true, -INFINITY, INFINITY, 0, 5},      /* dense weight */
        {70, 256, 63, 0, 0.9, 2, false, -1.0f, 1.0f, 3, 69},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_kernel(kernel, &cases[i]);
}

/* ---- model construction (freed together by pool_reset) --------------------------------------- */

#include "test_proto.h"

static Onnx__ValueInfoProto *vinfo(const char *name, int rank, const int64_t *dims) {
    return value_info(name, tensor_type(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims));
}

static Onnx__NodeProto *node(const char *op, const char *name, int n_in, const char *const *in,
                             const char *out) {
    Onnx__NodeProto *n = talloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = tstr(op);
    n->name = tstr(name);
    n->domain = tstr("");
    n->input = talloc(sizeof(char *) * (size_t)(n_in + 1));
    for (int i = 0; i < n_in; i++) n->input[n->n_input++] = tstr(in[i]);
    n->output = talloc(sizeof(char *));
    n->output[n->n_output++] = tstr(out);
    n->attribute = talloc(sizeof(void *) * 8);
    return n;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    Onnx__AttributeProto *a = talloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tstr(name);
    a->has_type = 1;
    if (count < 0) { /* a single int */
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = v[0];
    } else {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        a->n_ints = (size_t)count;
        a->ints = talloc(sizeof(int64_t) * (size_t)(count + 1));
        memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
    }
    n->attribute[n->n_attribute++] = a;
}

static Onnx__TensorProto *tensor_f32(const char *name, int rank, const int64_t *dims,
                                     const float *vals) {
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= (size_t)dims[i];
    Onnx__TensorProto *t = talloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tstr(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)rank;
    t->dims = talloc(sizeof(int64_t) * (size_t)(rank + 1));
    if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->has_raw_data = 1;
    t->raw_data.len = count * 4;
    t->raw_data.data = talloc(count * 4 + 1);
    memcpy(t->raw_data.data, vals, count * 4);
    return t;
}

/* Run model on x with IFD_SPARSE=mode and threads; *y: the first output (caller frees). */
static ifd_status run_model(const ifd_model *model, const char *mode, int threads,
                            const ifd_tensor *x, ifd_tensor **y) {
    ifd_session *s = NULL;
    ifd_session_options o;
    ifd_session_options_init(&o);
    o.num_threads = threads;
    setenv("IFD_SPARSE", mode, 1);
    ifd_status st = ifd_session_create(model, &o, &s);
    unsetenv("IFD_SPARSE");
    const char *names[1] = {"x"};
    *y = NULL;
    if (!st) st = ifd_session_run(s, 1, names, &x, 1, NULL, y);
    ifd_session_free(s);
    return st;
}

static double max_rel_diff(const ifd_tensor *a, const ifd_tensor *b) {
    if (!a || !b || a->count != b->count || a->rank != b->rank) return INFINITY;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return INFINITY;
    double m = 0;
    const float *p = a->data, *q = b->data;
    for (int64_t i = 0; i < a->count; i++) {
        double e = fabs((double)p[i] - q[i]) / (1.0 + fabs((double)q[i]));
        if (!(e <= m)) m = isnan(e) ? INFINITY : e;
    }
    return m;
}

/* ---- 2. one Conv node: sparse forced against dense ------------------------------------------- */

typedef struct ccase {
    const char *name;
    int nd;
    int64_t n, c, m, group;
    int64_t in[2], k[2], s[2], d[2], pads[4];
    bool bias;
    const char *act; /* NULL, "Relu", "Clip", "Sigmoid" */
    double sparsity;
    int zero_every;
} ccase;

static Onnx__GraphProto *conv_graph(const ccase *t, ifd_tensor **x_out) {
    Onnx__GraphProto *g = graph_new("g");
    int64_t xd[4] = {t->n, t->c, t->in[0], t->in[1]}, wd[4] = {t->m, t->c / t->group, t->k[0], t->k[1]};
    int rank = t->nd + 2;
    int64_t kk = 1;
    for (int i = 0; i < t->nd; i++) kk *= t->k[i];
    int64_t wk = t->c / t->group * kk;
    float *w = talloc(sizeof(float) * (size_t)(t->m * wk));
    float *b = talloc(sizeof(float) * (size_t)t->m);
    make_weight(w, t->m, wk, wk, t->sparsity, t->zero_every);
    for (int64_t i = 0; i < t->m; i++) b[i] = frand();
    g->input[g->n_input++] = vinfo("x", rank, xd);
    g->output[g->n_output++] = vinfo("y", -1, NULL);
    g->initializer[g->n_initializer++] = tensor_f32("w", rank, wd, w);
    int64_t bd[1] = {t->m};
    if (t->bias) g->initializer[g->n_initializer++] = tensor_f32("b", 1, bd, b);
    const char *in[3] = {"x", "w", "b"};
    Onnx__NodeProto *n = node("Conv", "conv", t->bias ? 3 : 2, in, t->act ? "c" : "y");
    attr_ints(n, "kernel_shape", t->nd, t->k);
    attr_ints(n, "strides", t->nd, t->s);
    attr_ints(n, "dilations", t->nd, t->d);
    int64_t pads[4] = {t->pads[0], t->pads[1], t->pads[2], t->pads[3]};
    if (t->nd == 1) pads[1] = t->pads[2];
    attr_ints(n, "pads", 2 * t->nd, pads);
    attr_ints(n, "group", -1, &t->group);
    g->node[g->n_node++] = n;
    if (t->act) {
        const char *ain[3] = {"c", "lo", "hi"};
        bool clip = !strcmp(t->act, "Clip");
        if (clip) {
            float lo = 0.0f, hi = 0.5f;
            g->initializer[g->n_initializer++] = tensor_f32("lo", 0, NULL, &lo);
            g->initializer[g->n_initializer++] = tensor_f32("hi", 0, NULL, &hi);
        }
        g->node[g->n_node++] = node(t->act, "act", clip ? 3 : 1, ain, "y");
    }
    ifd_tensor *x = NULL;
    if (ifd_tensor_create(IFD_DTYPE_FLOAT, rank, xd, &x) == IFD_OK)
        for (int64_t i = 0; i < x->count; i++) ((float *)x->data)[i] = frand();
    *x_out = x;
    return g;
}

static void check_conv(const char *kernel, const ccase *t, int threads) {
    ifd_tensor *x = NULL, *yd = NULL, *ys = NULL;
    ifd_model *model = NULL;
    ifd_status st = load_graph(conv_graph(t, &x), 17, &model);
    if (!st) st = run_model(model, "off", threads, x, &yd);
    if (!st) st = run_model(model, "on", threads, x, &ys);
    double err = st ? INFINITY : max_rel_diff(ys, yd);
    result(!st && err < 1e-4, "conv %s [%s, %d thread%s] (max rel diff %.2g%s%s)", t->name, kernel,
           threads, threads > 1 ? "s" : "", err, st ? ": " : "", st ? ifd_last_error() : "");
    ifd_tensor_free(x);
    ifd_tensor_free(yd);
    ifd_tensor_free(ys);
    ifd_model_free(model);
    pool_reset();
}

static const ccase g_conv_cases[] = {
    /* name                       nd  n  c   m   grp in        k       s       d       pads */
    {"1x1 direct, bias", 2, 2, 24, 40, 1, {9, 11}, {1, 1}, {1, 1}, {1, 1}, {0}, true, NULL, 0.9, 0},
    {"1x1 stride 2", 2, 1, 20, 33, 1, {13, 10}, {1, 1}, {2, 2}, {1, 1}, {0}, false, "Relu", 0.8, 0},
    {"3x3 s1 pad 1, relu, batch 3", 2, 3, 16, 24, 1, {13, 17}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1},
     true, "Relu", 0.9, 0},
    {"3x3 s2 pad 1, clip", 2, 2, 12, 20, 1, {15, 12}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, true,
     "Clip", 0.85, 0},
    {"3x3 dilation 2, no pad, no bias", 2, 1, 8, 70, 1, {11, 14}, {3, 3}, {1, 1}, {2, 2}, {0}, false,
     NULL, 0.9, 0},
    {"5x3 asymmetric pads, sigmoid", 2, 2, 6, 10, 1, {9, 8}, {5, 3}, {1, 2}, {1, 1}, {2, 0, 1, 1},
     true, "Sigmoid", 0.7, 0},
    {"3x5 s1 asymmetric pads, sigmoid (shifted)", 2, 2, 7, 9, 1, {8, 21}, {3, 5}, {1, 1}, {1, 1},
     {0, 2, 1, 1}, true, "Sigmoid", 0.75, 0},
    {"3x3 s1 on a 1x30 strip (shifted)", 2, 1, 10, 12, 1, {1, 30}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, false, "Relu", 0.8, 0},
    {"3x3 K=576 (5 chunks), M=80 (2 slabs)", 2, 1, 64, 80, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, true, "Relu", 0.9, 0},
    {"deep 3x3 on a 5x5 plane (channel slabs)", 2, 1, 32, 128, 1, {5, 5}, {3, 3}, {1, 1}, {1, 1},
     {1, 1, 1, 1}, true, NULL, 0.9, 0},
    {"group 2", 2, 2, 16, 24, 2, {10, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, true, "Relu", 0.8, 0},
    {"1-D k5 s2", 1, 2, 10, 14, 1, {37, 0}, {5, 0}, {2, 0}, {1, 0}, {2, 0, 1, 0}, true, NULL, 0.8, 0},
    {"all-zero output channels", 2, 1, 16, 30, 1, {12, 12}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1},
     true, "Relu", 0.8, 4},
    {"100% zero weight", 2, 2, 8, 12, 1, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, true, NULL,
     1.0, 0},
};

/* ---- 3. a pruned residual stack with the measured choice ------------------------------------ */

/* x [2, 32, 20, 20] -> Conv3x3+Relu -> Conv3x3 -> Add x -> Relu -> Conv1x1 s2 (64) -> y, every
 * weight 90% zeros. */
static Onnx__GraphProto *stack_graph(ifd_tensor **x_out) {
    Onnx__GraphProto *g = graph_new("g");
    int64_t xd[4] = {2, 32, 20, 20};
    g->input[g->n_input++] = vinfo("x", 4, xd);
    g->output[g->n_output++] = vinfo("y", -1, NULL);
    static const char *const wn[3] = {"w1", "w2", "w3"}, *const bn[3] = {"b1", "b2", "b3"};
    const int64_t ms[3] = {32, 32, 64}, ks[3] = {3, 3, 1};
    for (int l = 0; l < 3; l++) {
        int64_t wd[4] = {ms[l], 32, ks[l], ks[l]}, bd[1] = {ms[l]};
        int64_t n = ms[l] * 32 * ks[l] * ks[l];
        float *w = talloc(sizeof(float) * (size_t)n), *b = talloc(sizeof(float) * (size_t)ms[l]);
        make_weight(w, ms[l], 32 * ks[l] * ks[l], 32 * ks[l] * ks[l], 0.9, 0);
        for (int64_t i = 0; i < ms[l]; i++) b[i] = frand();
        g->initializer[g->n_initializer++] = tensor_f32(wn[l], 4, wd, w);
        g->initializer[g->n_initializer++] = tensor_f32(bn[l], 1, bd, b);
    }
    const int64_t p1[4] = {1, 1, 1, 1}, s2[2] = {2, 2};
    const char *i1[3] = {"x", "w1", "b1"}, *i2[3] = {"a1", "w2", "b2"}, *i3[3] = {"r", "w3", "b3"};
    const char *ia[2] = {"c2", "x"}, *ir1[1] = {"c1"}, *ir2[1] = {"s"};
    Onnx__NodeProto *c1 = node("Conv", "conv1", 3, i1, "c1");
    attr_ints(c1, "pads", 4, p1);
    Onnx__NodeProto *c2 = node("Conv", "conv2", 3, i2, "c2");
    attr_ints(c2, "pads", 4, p1);
    Onnx__NodeProto *c3 = node("Conv", "down", 3, i3, "y");
    attr_ints(c3, "strides", 2, s2);
    g->node[g->n_node++] = c1;
    g->node[g->n_node++] = node("Relu", "relu1", 1, ir1, "a1");
    g->node[g->n_node++] = c2;
    g->node[g->n_node++] = node("Add", "add", 2, ia, "s");
    g->node[g->n_node++] = node("Relu", "relu2", 1, ir2, "r");
    g->node[g->n_node++] = c3;
    ifd_tensor *x = NULL;
    if (ifd_tensor_create(IFD_DTYPE_FLOAT, 4, xd, &x) == IFD_OK)
        for (int64_t i = 0; i < x->count; i++) ((float *)x->data)[i] = frand();
    *x_out = x;
    return g;
}

/* Run with stderr captured into buf (the IFD_SPARSE_LOG lines). */
static ifd_status run_logged(const ifd_model *model, const char *mode, int threads,
                             const ifd_tensor *x, ifd_tensor **y, char *buf, size_t cap) {
    char path[] = "/tmp/test_spconv_log.XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    buf[0] = 0;
    if (fd < 0 || saved < 0) return ifd_error(IFD_ERR_IO, "cannot capture stderr");
    fflush(stderr);
    dup2(fd, 2);
    setenv("IFD_SPARSE_LOG", "1", 1);
    ifd_status st = run_model(model, mode, threads, x, y);
    unsetenv("IFD_SPARSE_LOG");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t got = pread(fd, buf, cap - 1, 0);
    buf[got > 0 ? got : 0] = 0;
    close(fd);
    unlink(path);
    return st;
}

static int count_lines(const char *buf, const char *needle) {
    int n = 0;
    for (const char *p = buf; (p = strstr(p, needle)); p++) n++;
    return n;
}

static void stack_tests(void) {
    ifd_tensor *x = NULL, *yd = NULL, *ya = NULL, *yo = NULL;
    ifd_model *model = NULL;
    static char log_auto[8192], log_on[8192];
    ifd_status st = load_graph(stack_graph(&x), 17, &model);
    if (!st) st = run_model(model, "off", 2, x, &yd);
    if (!st) st = run_logged(model, "auto", 2, x, &ya, log_auto, sizeof log_auto);
    double err = st ? INFINITY : max_rel_diff(ya, yd);
    int measured = count_lines(log_auto, "sparse: Conv '");
    result(!st && err < 1e-4 && measured == 3,
           "pruned residual stack, measured choice: 3 Convs measured at load (%d), outputs match "
           "dense (max rel diff %.2g)%s%s",
           measured, err, st ? ": " : "", st ? ifd_last_error() : "");
    for (const char *l = log_auto; *l;) { /* the decisions, indented under the result */
        const char *e = strchr(l, '\n');
        int len = e ? (int)(e - l) : (int)strlen(l);
        printf("  %.*s\n", len, l);
        l += len + (e != NULL);
    }
    st = st ? st : run_logged(model, "on", 1, x, &yo, log_on, sizeof log_on);
    err = st ? INFINITY : max_rel_diff(yo, yd);
    int forced = count_lines(log_on, "-> sparse (IFD_SPARSE=on)");
    result(!st && err < 1e-4 && forced == 3,
           "pruned residual stack, sparse forced: 3 Convs sparse (%d), outputs match dense (max "
           "rel diff %.2g)",
           forced, err);
    ifd_tensor_free(x);
    ifd_tensor_free(yd);
    ifd_tensor_free(ya);
    ifd_tensor_free(yo);
    ifd_model_free(model);
    pool_reset();
}

/* ---- bench ------------------------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One Conv node of ResNet-18's shapes at 90% zeros: dense vs sparse, 1 thread, best of 20. */
static void bench(void) {
    static const struct { int64_t c, m, hw, k, s; } shapes[] = {
        {64, 64, 56, 3, 1}, {128, 128, 28, 3, 1}, {256, 256, 14, 3, 1}, {512, 512, 7, 3, 1},
        {64, 128, 56, 3, 2}, {256, 512, 14, 1, 2}, {3, 64, 224, 7, 2},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t pad = shapes[i].k / 2;
        ccase t = {"bench", 2, 1, shapes[i].c, shapes[i].m, 1, {shapes[i].hw, shapes[i].hw},
                   {shapes[i].k, shapes[i].k}, {shapes[i].s, shapes[i].s}, {1, 1},
                   {pad, pad, pad, pad}, true, "Relu", 0.9, 0};
        ifd_tensor *x = NULL;
        ifd_model *model = NULL;
        double best[2] = {INFINITY, INFINITY};
        if (load_graph(conv_graph(&t, &x), 17, &model) == IFD_OK) {
            for (int mode = 0; mode < 2; mode++) {
                ifd_session *s = NULL;
                ifd_session_options o;
                ifd_session_options_init(&o);
                o.num_threads = 1;
                setenv("IFD_SPARSE", mode ? "on" : "off", 1);
                if (ifd_session_create(model, &o, &s) != IFD_OK) continue;
                const char *names[1] = {"x"};
                for (int r = 0; r < 20; r++) {
                    ifd_tensor *y = NULL;
                    double t0 = now_s();
                    ifd_session_run(s, 1, names, (const ifd_tensor *const *)&x, 1, NULL, &y);
                    best[mode] = fmin(best[mode], now_s() - t0);
                    ifd_tensor_free(y);
                }
                ifd_session_free(s);
            }
            unsetenv("IFD_SPARSE");
        }
        printf("C=%-3lld M=%-3lld %3lldx%-3lld k%lld s%lld: dense %8.1f us  sparse %8.1f us  (%.2fx)\n",
               (long long)t.c, (long long)t.m, (long long)t.in[0], (long long)t.in[1],
               (long long)t.k[0], (long long)t.s[0], best[0] * 1e6, best[1] * 1e6,
               best[0] / best[1]);
        ifd_tensor_free(x);
        ifd_model_free(model);
        pool_reset();
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        printf("kernel %s\n", ifd_spconv_kernel_name());
        bench();
        return 0;
    }
    static const char *const kernels[] = {"avx512", "avx2", "scalar"};
    for (int i = 0; i < 3; i++) {
        if (!ifd_spconv_force_kernel(kernels[i])) {
            printf("(kernel %s: not on this CPU, skipped)\n", kernels[i]);
            continue;
        }
        kernel_tests(kernels[i]);
        for (size_t c = 0; c < sizeof g_conv_cases / sizeof g_conv_cases[0]; c++) {
            check_conv(kernels[i], &g_conv_cases[c], 1);
            check_conv(kernels[i], &g_conv_cases[c], 2);
        }
    }
    ifd_spconv_force_kernel("auto");
    /* bad input: an index that would not fit, and the error names the problem */
    ifd_spconv_w *sp = NULL;
    float w1 = 1.0f;
    ifd_status st = ifd_spconv_pack(1, (int64_t)UINT32_MAX + 1, &w1, (int64_t)UINT32_MAX + 1, &sp);
    result(st == IFD_ERR_TOO_BIG && !sp && strstr(ifd_last_error(), "too large"),
           "pack refuses k past 32-bit indices (%s)", ifd_last_error());
    stack_tests();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
