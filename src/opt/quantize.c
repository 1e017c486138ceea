/* opt/quantize: float model -> int8 model (see quantize.h and docs/QUANTIZE.md).
 *
 * The steps: decode the model (onnx_edit), check its opset, find the MatMul/Gemm/Conv nodes
 * with constant weights (and Gather nodes over large float tables), choose which to quantize,
 * calibrate activation ranges on sample data (static mode), rewrite the graph in the
 * standard int8 operators, check that inferd loads the result, measure the error if asked,
 * and write the file (OUT.tmp, then rename). */
#include "opt/quantize.h"

#include "base/base.h"
#include "opt/dataset.h"
#include "opt/onnx_edit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Embedding tables smaller than this stay float: their bytes do not matter. */
#define GATHER_MIN_ELEMENTS 4096
/* Histogram resolution for percentile and entropy calibration, and the number of quantized
 * levels on one side of zero the KL search compares against (TensorRT's choice for int8). */
#define CALIB_BINS 2048
#define CALIB_QUANT_BINS 128
/* The output format needs per-axis QuantizeLinear/DequantizeLinear: opset 13. */
#define TARGET_OPSET 13

typedef enum qkind { K_MATMUL, K_GEMM, K_CONV, K_GATHER } qkind;

typedef struct qnode {
    Onnx__NodeProto *node;
    char *name;      /* node name, or "<op>_<index>" as the loader names unnamed nodes */
    qkind kind;
    bool quantizable;
    char *reason;    /* why not (quantizable == false), or why it was left out */
    bool selected;
    /* Names are copies: the rewrite replaces the node's own input strings. */
    char *x;         /* activation input */
    char *w;         /* constant weight (initializer name) */
    char *b;         /* constant bias or NULL */
    char *out;       /* output of the node */
    char *pair_out;  /* static: the tensor that gets the output Q/DQ pair, or NULL */
} qnode;

typedef struct calib_tensor {
    char *name;
    float min, max;  /* observed */
    bool seen;
    double *hist;    /* |x| histogram over [0, amax] (percentile, entropy) */
    float amax;
    float lo, hi;    /* chosen range */
    float scale;
    uint8_t zero_point;
} calib_tensor;

typedef struct dql_entry {
    char *x, *xq, *xs, *xzp;
} dql_entry;

typedef struct ctx {
    const ifd_quantize_options *o;
    ifd_onnx_edit *e;
    qnode *q;
    size_t nq;
    calib_tensor *t;
    size_t nt;
    dql_entry *dql;
    size_t ndql;
    ifd_quantize_result *r;
} ctx;

static ifd_status oom(void) { return ifd_error(IFD_ERR_NO_MEMORY, "out of memory quantizing"); }

static const char *kind_op(qkind k) {
    return k == K_MATMUL ? "MatMul" : k == K_GEMM ? "Gemm" : k == K_CONV ? "Conv" : "Gather";
}

void ifd_quantize_options_init(ifd_quantize_options *o) {
    memset(o, 0, sizeof *o);
    o->mode = IFD_QUANTIZE_DYNAMIC;
    o->per_channel = true;
    o->method = IFD_CALIBRATE_MINMAX;
    o->percentile = 99.99;
}

void ifd_quantize_result_free(ifd_quantize_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_nodes; i++) {
        ifd_free(r->nodes[i].name);
        ifd_free(r->nodes[i].op_type);
        ifd_free(r->nodes[i].reason);
    }
    ifd_free(r->nodes);
    for (size_t i = 0; i < r->n_outputs; i++) ifd_free(r->outputs[i].name);
    ifd_free(r->outputs);
    ifd_free(r);
}

/* ---- opset ------------------------------------------------------------------------------- */

/* Operators whose definitions from opset 10 up to 13 differ at most in added types or in
 * backward-compatible additions (negative axes, optional inputs, new attributes with the old
 * behaviour as default): a model using only these keeps its meaning when its opset is raised
 * to 13. Softmax (axis semantics), Clip/Pad/Dropout/Split/Squeeze/Unsqueeze/ReduceSum
 * (attributes that became inputs), Resize/Upsample and control flow are not here. */
static const char *const g_opset13_safe[] = {
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
    "AveragePool", "BatchNormalization", "Cast", "Ceil", "Concat", "Constant", "ConstantOfShape",
    "Conv", "ConvInteger", "ConvTranspose", "Cos", "Cosh", "DepthToSpace", "DequantizeLinear",
    "Div", "DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten",
    "Floor", "GRU", "Gather", "GatherElements", "GatherND", "Gemm", "GlobalAveragePool",
    "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "Identity",
    "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM", "LeakyRelu", "Less", "LessOrEqual",
    "Log", "LpNormalization", "LpPool", "MatMul", "MatMulInteger", "Max", "MaxPool", "Mean",
    "Min", "Mod", "Mul", "Neg", "NonZero", "Not", "Or", "PRelu", "Pow", "QuantizeLinear", "RNN",
    "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
    "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Relu", "Reshape", "Round",
    "Selu", "Shape", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softplus", "Softsign",
    "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK",
    "Transpose", "Where", "Xor",
};

static ifd_status check_opset(ctx *c) {
    ifd_onnx_edit *e = c->e;
    int64_t v = ifd_onnx_edit_opset(e, "");
    if (v < 0 && e->model->n_opset_import == 0) v = 1; /* IR v1/v2: implicit opset 1 */
    c->r->opset_in = c->r->opset_out = v;
    if (v < 0)
        return ifd_error(IFD_ERR_UNSUPPORTED, "model imports no default-domain opset");
    if (v < 10)
        return ifd_error(IFD_ERR_UNSUPPORTED,
                         "model uses opset %lld; quantization needs opset 10 or later (re-export "
                         "the model with opset >= 13)",
                         (long long)v);
    if (v >= TARGET_OPSET) return IFD_OK;
    for (size_t i = 0; i < e->graph->n_node; i++) {
        const Onnx__NodeProto *n = e->graph->node[i];
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) continue;
        bool safe = false;
        for (size_t k = 0; k < IFD_ARRAY_LEN(g_opset13_safe) && !safe; k++)
            safe = !strcmp(n->op_type, g_opset13_safe[k]);
        if (!safe)
            return ifd_error(IFD_ERR_UNSUPPORTED,
                             "model uses opset %lld; the quantized format needs opset %d, and node "
                             "'%s' (%s) may change meaning between the two; re-export the model "
                             "with opset >= %d",
                             (long long)v, TARGET_OPSET, n->name ? n->name : "", n->op_type,
                             TARGET_OPSET);
    }
    ifd_status st = ifd_onnx_edit_set_opset(e, "", TARGET_OPSET);
    if (st) return st;
    /* Opset 13 needs IR version 7. */
    if (!e->model->has_ir_version || e->model->ir_version < 7) {
        e->model->has_ir_version = 1;
        e->model->ir_version = 7;
    }
    c->r->opset_out = TARGET_OPSET;
    return IFD_OK;
}

/* ---- which nodes ---------------------------------------------------------------------------- */

static bool is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static const char *dtype_of(const Onnx__TensorProto *t) {
    return ifd_dtype_name((ifd_dtype)(t->has_data_type ? t->data_type : 0));
}

/* Sets q->quantizable, or q->reason. Only errors are out-of-memory. */
static ifd_status analyze_node(ctx *c, qnode *q) {
    const Onnx__NodeProto *n = q->node;
    ifd_onnx_edit *e = c->e;
    bool dynamic = c->o->mode == IFD_QUANTIZE_DYNAMIC;
    char why[512] = "";
    size_t wi = q->kind == K_GATHER ? 0 : 1;
    if (n->n_input < 2 || n->n_output != 1 || !*n->output[0]) {
        snprintf(why, sizeof why, "has %zu inputs and %zu outputs", n->n_input, n->n_output);
        goto done;
    }
    if (!(q->out = ifd_strdup(n->output[0])) || !(q->w = ifd_strdup(n->input[wi])) ||
        !(q->x = ifd_strdup(n->input[q->kind == K_GATHER ? 1 : 0])))
        return oom();
    const Onnx__TensorProto *w = ifd_onnx_edit_constant(e, q->w);
    if (!w) {
        snprintf(why, sizeof why, "its weight '%s' is not a constant initializer", q->w);
        goto done;
    }
    if (!w->has_data_type || w->data_type != IFD_DTYPE_FLOAT) {
        snprintf(why, sizeof why, "its weight '%s' is %s, not float32", q->w, dtype_of(w));
        goto done;
    }
    if (q->kind != K_GATHER && ifd_onnx_edit_constant(e, q->x)) {
        snprintf(why, sizeof why, "its input '%s' is a constant too (nothing to quantize at run "
                 "time)", q->x);
        goto done;
    }
    switch (q->kind) {
    case K_MATMUL:
        if (w->n_dims != 2)
            snprintf(why, sizeof why, "its weight '%s' has rank %zu, not 2 ([K, N])", q->w,
                     w->n_dims);
        break;
    case K_GEMM: {
        int64_t trans_a = ifd_onnx_edit_attr_int(n, "transA", 0);
        float beta = ifd_onnx_edit_attr_float(n, "beta", 1.0f);
        if (w->n_dims != 2) {
            snprintf(why, sizeof why, "its weight '%s' has rank %zu, not 2", q->w, w->n_dims);
            break;
        }
        if (dynamic && trans_a) {
            snprintf(why, sizeof why, "transA=1 is not supported in dynamic mode");
            break;
        }
        if (n->n_input > 2 && *n->input[2]) {
            if (!(q->b = ifd_strdup(n->input[2]))) return oom();
            const Onnx__TensorProto *b = ifd_onnx_edit_constant(e, q->b);
            if (dynamic && beta != 1.0f && (!b || b->data_type != IFD_DTYPE_FLOAT))
                snprintf(why, sizeof why, "beta=%g with a bias C that is not a float constant",
                         (double)beta);
        }
        break;
    }
    case K_CONV:
        if (w->n_dims < 3) {
            snprintf(why, sizeof why, "its weight '%s' has rank %zu (need [M, C/group, k...])",
                     q->w, w->n_dims);
            break;
        }
        if (n->n_input > 2 && *n->input[2]) {
            if (!(q->b = ifd_strdup(n->input[2]))) return oom();
            const Onnx__TensorProto *b = ifd_onnx_edit_constant(e, q->b);
            if (!b || b->data_type != IFD_DTYPE_FLOAT || b->n_dims != 1 || b->dims[0] != w->dims[0])
                snprintf(why, sizeof why, "its bias '%s' is not a float constant of shape [%lld]",
                         q->b, (long long)w->dims[0]);
        }
        break;
    case K_GATHER: {
        int64_t count = 1;
        for (size_t i = 0; i < w->n_dims; i++)
            if (w->dims[i] < 0 || !ifd_mul_i64(count, w->dims[i], &count)) count = INT64_MAX;
        if (count < GATHER_MIN_ELEMENTS)
            snprintf(why, sizeof why, "its table '%s' has fewer than %d elements", q->w,
                     GATHER_MIN_ELEMENTS);
        break;
    }
    }
done:
    if (*why) {
        if (!(q->reason = ifd_strdup(why))) return oom();
        return IFD_OK;
    }
    q->quantizable = true;
    return IFD_OK;
}

static bool name_in(const char *name, size_t n, const char *const *list) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name)) return true;
    return false;
}

static ifd_status find_nodes(ctx *c) {
    ifd_onnx_edit *e = c->e;
    const ifd_quantize_options *o = c->o;
    ifd_status st;
    Onnx__GraphProto *g = e->graph;
    if (!(c->q = ifd_calloc(g->n_node + 1, sizeof *c->q))) return oom();
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        qkind k;
        if (!is_default_domain(n->domain)) continue;
        if (!strcmp(n->op_type, "MatMul")) k = K_MATMUL;
        else if (!strcmp(n->op_type, "Gemm")) k = K_GEMM;
        else if (!strcmp(n->op_type, "Conv")) k = K_CONV;
        else if (!strcmp(n->op_type, "Gather")) k = K_GATHER;
        else continue;
        /* A Gather is a candidate only over a float table (not shapes or indices). */
        if (k == K_GATHER) {
            const Onnx__TensorProto *w = n->n_input ? ifd_onnx_edit_constant(e, n->input[0]) : NULL;
            if (!w || w->data_type != IFD_DTYPE_FLOAT) continue;
        }
        qnode *q = &c->q[c->nq++];
        q->node = n;
        q->kind = k;
        q->name = n->name && *n->name ? ifd_strdup(n->name) : ifd_strdup_printf("%s_%zu", n->op_type, i);
        if (!q->name) return oom();
        if ((st = analyze_node(c, q))) return st;
    }
    /* Names given on the command line must exist. */
    for (size_t i = 0; i < o->n_exclude; i++) {
        bool found = false;
        for (size_t j = 0; j < g->n_node && !found; j++)
            found = g->node[j]->name && !strcmp(g->node[j]->name, o->exclude[i]);
        for (size_t j = 0; j < c->nq && !found; j++) found = !strcmp(c->q[j].name, o->exclude[i]);
        if (!found)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "--exclude '%s': no node has this name",
                             o->exclude[i]);
    }
    for (size_t i = 0; i < o->n_nodes; i++) {
        qnode *q = NULL;
        for (size_t j = 0; j < c->nq && !q; j++)
            if (!strcmp(c->q[j].name, o->nodes[i])) q = &c->q[j];
        if (!q)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                             "--node '%s': no MatMul, Gemm, Conv or Gather node (over a float "
                             "table) has this name",
                             o->nodes[i]);
        if (!q->quantizable)
            return ifd_error(IFD_ERR_UNSUPPORTED, "node '%s' (%s) cannot be quantized: %s",
                             q->name, kind_op(q->kind), q->reason);
        if (name_in(q->name, o->n_exclude, o->exclude))
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "node '%s' is both in --node and --exclude",
                             q->name);
    }
    /* Choose. Static mode keeps the first and last compute layers float by default: they see
     * the raw input and produce the final scores, where int8 error costs the most. */
    long first = -1, last = -1;
    for (size_t j = 0; j < c->nq; j++)
        if (c->q[j].quantizable && c->q[j].kind != K_GATHER) {
            if (first < 0) first = (long)j;
            last = (long)j;
        }
    for (size_t j = 0; j < c->nq; j++) {
        qnode *q = &c->q[j];
        if (!q->quantizable) continue;
        const char *why = NULL;
        if (o->n_nodes && !name_in(q->name, o->n_nodes, o->nodes))
            why = "not named by --node";
        else if (name_in(q->name, o->n_exclude, o->exclude))
            why = "excluded by --exclude";
        else if (!o->n_nodes && o->mode == IFD_QUANTIZE_STATIC && !o->include_first_last &&
                 ((long)j == first || (long)j == last) && first != last)
            why = (long)j == first ? "first quantizable layer (kept float by default; "
                                     "--include-first-last quantizes it)"
                                   : "last quantizable layer (kept float by default; "
                                     "--include-first-last quantizes it)";
        if (why) {
            if (!(q->reason = ifd_strdup(why))) return oom();
            continue;
        }
        q->selected = true;
    }
    size_t n_sel = 0, n_compute = 0;
    for (size_t j = 0; j < c->nq; j++) {
        n_sel += c->q[j].selected;
        n_compute += c->q[j].selected && c->q[j].kind != K_GATHER;
    }
    if (n_sel == 0 || (n_compute == 0 && !o->n_nodes)) {
        const qnode *why = NULL;
        for (size_t j = 0; j < c->nq && !why; j++)
            if (c->q[j].reason && c->q[j].kind != K_GATHER) why = &c->q[j];
        if (why)
            return ifd_error(IFD_ERR_UNSUPPORTED,
                             "no node to quantize: e.g. node '%s' (%s): %s", why->name,
                             kind_op(why->kind), why->reason);
        return ifd_error(IFD_ERR_UNSUPPORTED,
                         "no quantizable node: the model has no MatMul, Gemm or Conv with a "
                         "constant float weight");
    }
    /* Static: the output pair goes after a Relu/Clip that alone consumes the output, so the
     * fused runtime sees Conv+Relu then the scale. */
    if (o->mode == IFD_QUANTIZE_STATIC)
        for (size_t j = 0; j < c->nq; j++) {
            qnode *q = &c->q[j];
            if (!q->selected || q->kind == K_GATHER) continue;
            const char *t = q->out;
            if (ifd_onnx_edit_use_count(e, t) == 1 && !ifd_onnx_edit_is_graph_output(e, t)) {
                long p = -1;
                for (size_t i = 0; i < g->n_node && p < 0; i++)
                    for (size_t k = 0; k < g->node[i]->n_input; k++)
                        if (!strcmp(g->node[i]->input[k], t)) p = (long)i;
                const Onnx__NodeProto *f = p >= 0 ? g->node[p] : NULL;
                if (f && is_default_domain(f->domain) && f->n_output == 1 && f->n_input >= 1 &&
                    !strcmp(f->input[0], t) &&
                    (!strcmp(f->op_type, "Relu") || !strcmp(f->op_type, "Clip")))
                    t = f->output[0];
            }
            if (ifd_onnx_edit_use_count(e, t) && !(q->pair_out = ifd_strdup(t))) return oom();
        }
    return IFD_OK;
}

/* ---- weights ----------------------------------------------------------------------------------- */

/* Symmetric int8 in [-127, 127] with one scale per channel: element i belongs to channel
 * (axis_last ? i % channels : i / inner). A channel of zeros gets scale 1. */
static void quantize_symmetric(const float *w, size_t count, size_t channels, bool axis_last,
                               int8_t *q, float *scales) {
    size_t inner = channels ? count / channels : count;
    for (size_t ch = 0; ch < channels; ch++) scales[ch] = 0.0f;
    for (size_t i = 0; i < count; i++) {
        size_t ch = axis_last ? i % channels : i / inner;
        float a = fabsf(w[i]);
        if (a > scales[ch]) scales[ch] = a; /* NaN compares false: ignored */
    }
    for (size_t ch = 0; ch < channels; ch++) {
        scales[ch] = scales[ch] > 0.0f && isfinite(scales[ch]) ? scales[ch] / 127.0f : 1.0f;
    }
    for (size_t i = 0; i < count; i++) {
        size_t ch = axis_last ? i % channels : i / inner;
        float v = nearbyintf(w[i] / scales[ch]);
        if (!(v >= -127.0f)) v = isnan(v) ? 0.0f : -127.0f;
        if (v > 127.0f) v = 127.0f;
        q[i] = (int8_t)v;
    }
}

/* Add an initializer built from raw values; returns its name (ifd_malloc'd) or NULL. */
static char *add_init(ctx *c, const char *base, const char *suffix, ifd_dtype dtype, int rank,
                      const int64_t *dims, const void *data) {
    ifd_tensor *t = NULL;
    char *name = NULL;
    if (ifd_tensor_create(dtype, rank, dims, &t)) return NULL;
    if (t->nbytes) memcpy(t->data, data, t->nbytes);
    if (!(name = ifd_onnx_edit_unique_name(c->e, base, suffix)) ||
        ifd_onnx_edit_add_initializer(c->e, name, t)) {
        ifd_free(name);
        name = NULL;
    }
    ifd_tensor_free(t);
    return name;
}

static ifd_status load_weight(ctx *c, const char *name, ifd_tensor **out) {
    const Onnx__TensorProto *tp = ifd_onnx_edit_constant(c->e, name);
    if (!tp) return ifd_error(IFD_ERR_INTERNAL, "initializer '%s' vanished", name);
    return ifd_onnx_edit_tensor(tp, out);
}

/* ---- dynamic mode ---------------------------------------------------------------------------------- */

/* One DynamicQuantizeLinear per activation, shared by all its quantized consumers. */
static ifd_status dynamic_quantize_input(ctx *c, const char *x, dql_entry **out) {
    for (size_t i = 0; i < c->ndql; i++)
        if (!strcmp(c->dql[i].x, x)) {
            *out = &c->dql[i];
            return IFD_OK;
        }
    dql_entry *d = &c->dql[c->ndql++]; /* counted first: freed at the end even if half-filled */
    if (!(d->x = ifd_strdup(x)) || !(d->xq = ifd_onnx_edit_unique_name(c->e, x, "_quantized")) ||
        !(d->xs = ifd_onnx_edit_unique_name(c->e, x, "_scale")) ||
        !(d->xzp = ifd_onnx_edit_unique_name(c->e, x, "_zero_point")))
        return oom();
    char *nn = ifd_onnx_edit_unique_name(c->e, x, "_DynamicQuantizeLinear");
    const char *outs[3] = {d->xq, d->xs, d->xzp};
    Onnx__NodeProto *n = nn ? ifd_onnx_edit_append_node(c->e, "DynamicQuantizeLinear", nn, 1, &x, 3,
                                                       outs)
                            : NULL;
    ifd_free(nn);
    if (!n) return oom();
    *out = d;
    return IFD_OK;
}

static Onnx__NodeProto *append(ctx *c, const char *op, const char *base, size_t ni,
                               const char *const *ins, const char *out) {
    char *nn = ifd_onnx_edit_unique_name(c->e, base, op);
    Onnx__NodeProto *n = nn ? ifd_onnx_edit_append_node(c->e, op, nn, ni, ins, 1, &out) : NULL;
    ifd_free(nn);
    return n;
}

static ifd_status quantize_dynamic_node(ctx *c, qnode *q) {
    ifd_status st = IFD_OK;
    ifd_tensor *w = NULL, *b = NULL;
    int8_t *wq = NULL;
    float *ws = NULL, *wt = NULL;
    char *wq_name = NULL, *ws_name = NULL, *wzp_name = NULL, *y32 = NULL, *yf = NULL, *s = NULL,
         *ymm = NULL, *b_name = NULL;
    dql_entry *d = NULL;
    const Onnx__NodeProto *n = q->node;
    const char *base = q->out;
    if ((st = load_weight(c, q->w, &w))) goto out;
    size_t count = (size_t)w->count;
    bool conv = q->kind == K_CONV;
    size_t channels = conv ? (size_t)w->dims[0] : (size_t)w->dims[w->rank - 1];
    float alpha = q->kind == K_GEMM ? ifd_onnx_edit_attr_float(n, "alpha", 1.0f) : 1.0f;
    const float *wf = w->data;
    int64_t wdims[IFD_MAX_RANK];
    for (int i = 0; i < w->rank; i++) wdims[i] = w->dims[i];
    if (q->kind == K_GEMM && ifd_onnx_edit_attr_int(n, "transB", 0)) {
        /* [N, K] -> [K, N]: MatMulInteger has no transpose. */
        size_t nn = (size_t)w->dims[0], kk = (size_t)w->dims[1];
        if (!(wt = ifd_malloc((count ? count : 1) * sizeof *wt))) {
            st = oom();
            goto out;
        }
        for (size_t i = 0; i < nn; i++)
            for (size_t k = 0; k < kk; k++) wt[k * nn + i] = wf[i * kk + k];
        wf = wt;
        wdims[0] = (int64_t)kk;
        wdims[1] = (int64_t)nn;
        channels = nn;
    }
    if (!c->o->per_channel) channels = 1;
    wq = ifd_malloc(count ? count : 1);
    ws = ifd_malloc((channels ? channels : 1) * sizeof *ws);
    if (!wq || !ws) {
        st = oom();
        goto out;
    }
    quantize_symmetric(wf, count, channels, !conv, wq, ws);
    for (size_t i = 0; i < channels; i++) ws[i] *= alpha;
    int8_t zero = 0;
    /* Scales as [1, M, 1, ...] for Conv (broadcast over NCHW), [N] for MatMul, scalar
     * per-tensor. The zero point is a scalar 0: the weights are symmetric, and ONNX Runtime's
     * ConvInteger accepts only a scalar weight zero point. */
    int64_t sdims[IFD_MAX_RANK];
    int srank = 0;
    if (channels > 1 || c->o->per_channel) {
        if (conv) {
            srank = w->rank;
            for (int i = 0; i < srank; i++) sdims[i] = i == 1 ? (int64_t)channels : 1;
        } else {
            srank = 1;
            sdims[0] = (int64_t)channels;
        }
    }
    if (!(wq_name = add_init(c, q->w, "_quantized", IFD_DTYPE_INT8, w->rank, wdims, wq)) ||
        !(ws_name = add_init(c, q->w, "_scale", IFD_DTYPE_FLOAT, srank, sdims, ws)) ||
        !(wzp_name = add_init(c, q->w, "_zero_point", IFD_DTYPE_INT8, 0, NULL, &zero))) {
        st = oom();
        goto out;
    }
    if ((st = dynamic_quantize_input(c, q->x, &d))) goto out;
    if (!(y32 = ifd_onnx_edit_unique_name(c->e, base, "_int32")) ||
        !(yf = ifd_onnx_edit_unique_name(c->e, base, "_float")) ||
        !(s = ifd_onnx_edit_unique_name(c->e, base, "_scale"))) {
        st = oom();
        goto out;
    }
    const char *ins[4] = {d->xq, wq_name, d->xzp, wzp_name};
    Onnx__NodeProto *mm = append(c, conv ? "ConvInteger" : "MatMulInteger", base, 4, ins, y32);
    if (!mm) {
        st = oom();
        goto out;
    }
    if (conv && (st = ifd_onnx_edit_copy_attrs(mm, n))) goto out;
    Onnx__NodeProto *cast = append(c, "Cast", base, 1, (const char *[]){y32}, yf);
    if (!cast || (st = ifd_onnx_edit_set_attr_int(cast, "to", IFD_DTYPE_FLOAT))) {
        st = st ? st : oom();
        goto out;
    }
    if (!append(c, "Mul", s, 2, (const char *[]){d->xs, ws_name}, s)) {
        st = oom();
        goto out;
    }
    /* Bias: Conv's B reshaped to [1, M, 1, ...]; Gemm's C (times beta) added as Gemm would. */
    const char *bias = NULL;
    if (q->b) {
        if ((st = load_weight(c, q->b, &b))) goto out;
        float beta = q->kind == K_GEMM ? ifd_onnx_edit_attr_float(n, "beta", 1.0f) : 1.0f;
        if (conv) {
            int64_t bdims[IFD_MAX_RANK];
            for (int i = 0; i < w->rank; i++) bdims[i] = i == 1 ? w->dims[0] : 1;
            if (!(b_name = add_init(c, q->b, "_reshaped", IFD_DTYPE_FLOAT, w->rank, bdims, b->data))) {
                st = oom();
                goto out;
            }
            bias = b_name;
        } else if (beta != 1.0f) {
            float *bd = b->data;
            for (int64_t i = 0; i < b->count; i++) bd[i] *= beta;
            if (!(b_name = add_init(c, q->b, "_scaled", IFD_DTYPE_FLOAT, b->rank, b->dims, b->data))) {
                st = oom();
                goto out;
            }
            bias = b_name;
        } else {
            bias = q->b;
        }
    }
    if (bias && !(ymm = ifd_onnx_edit_unique_name(c->e, base, "_nobias"))) {
        st = oom();
        goto out;
    }
    if (!append(c, "Mul", base, 2, (const char *[]){yf, s}, bias ? ymm : q->out) ||
        (bias && !append(c, "Add", base, 2, (const char *[]){ymm, bias}, q->out))) {
        st = oom();
        goto out;
    }
out:
    ifd_tensor_free(w);
    ifd_tensor_free(b);
    ifd_free(wq);
    ifd_free(ws);
    ifd_free(wt);
    ifd_free(wq_name);
    ifd_free(ws_name);
    ifd_free(wzp_name);
    ifd_free(y32);
    ifd_free(yf);
    ifd_free(s);
    ifd_free(ymm);
    ifd_free(b_name);
    if (st) ifd_error_prefix(st, "node '%s' (%s)", q->name, kind_op(q->kind));
    return st;
}

/* Gather over an embedding table: int8 table, gather, then DequantizeLinear with one scale
 * (the gathered rows are what is read: the table is never expanded back to float). */
static ifd_status quantize_gather(ctx *c, qnode *q) {
    ifd_status st;
    ifd_tensor *w = NULL;
    int8_t *wq = NULL;
    float scale;
    int8_t zero = 0;
    char *wq_name = NULL, *s_name = NULL, *zp_name = NULL, *g = NULL;
    if ((st = load_weight(c, q->w, &w))) goto out;
    if (!(wq = ifd_malloc((size_t)w->count ? (size_t)w->count : 1))) {
        st = oom();
        goto out;
    }
    quantize_symmetric(w->data, (size_t)w->count, 1, false, wq, &scale);
    if (!(wq_name = add_init(c, q->w, "_quantized", IFD_DTYPE_INT8, w->rank, w->dims, wq)) ||
        !(s_name = add_init(c, q->w, "_scale", IFD_DTYPE_FLOAT, 0, NULL, &scale)) ||
        !(zp_name = add_init(c, q->w, "_zero_point", IFD_DTYPE_INT8, 0, NULL, &zero)) ||
        !(g = ifd_onnx_edit_unique_name(c->e, q->out, "_quantized"))) {
        st = oom();
        goto out;
    }
    Onnx__NodeProto *n = append(c, "Gather", q->out, 2, (const char *[]){wq_name, q->x}, g);
    if (!n || (st = ifd_onnx_edit_copy_attrs(n, q->node)) ||
        !append(c, "DequantizeLinear", q->out, 3, (const char *[]){g, s_name, zp_name}, q->out)) {
        st = st ? st : oom();
        goto out;
    }
out:
    ifd_tensor_free(w);
    ifd_free(wq);
    ifd_free(wq_name);
    ifd_free(s_name);
    ifd_free(zp_name);
    ifd_free(g);
    if (st) ifd_error_prefix(st, "node '%s' (Gather)", q->name);
    return st;
}

/* ---- calibration ------------------------------------------------------------------------------------ */

static ifd_status add_calib_tensor(ctx *c, const char *name) {
    for (size_t i = 0; i < c->nt; i++)
        if (!strcmp(c->t[i].name, name)) return IFD_OK;
    calib_tensor *t = &c->t[c->nt];
    memset(t, 0, sizeof *t);
    if (!(t->name = ifd_strdup(name))) return oom();
    c->nt++;
    return IFD_OK;
}

static calib_tensor *find_calib(ctx *c, const char *name) {
    for (size_t i = 0; i < c->nt; i++)
        if (!strcmp(c->t[i].name, name)) return &c->t[i];
    return NULL;
}

/* Load a model from an edit (a copy with extra outputs) and open a session on it. */
static ifd_status open_session(const ifd_onnx_edit *e, int threads, ifd_model **m,
                               ifd_session **s) {
    void *data = NULL;
    size_t size = 0;
    ifd_status st = ifd_onnx_edit_pack(e, &data, &size);
    if (st) return st;
    st = ifd_model_load_memory(data, size, NULL, m);
    ifd_free(data);
    if (st) return st;
    ifd_session_options so;
    ifd_session_options_init(&so);
    so.num_threads = threads;
    return ifd_session_create(*m, &so, s);
}

static ifd_status open_dataset(ctx *c, const ifd_model *m, ifd_dataset **d) {
    size_t n = ifd_model_input_count(m);
    ifd_io_info *infos = ifd_calloc(n + 1, sizeof *infos);
    ifd_status st = IFD_OK;
    if (!infos) return oom();
    for (size_t i = 0; i < n && !st; i++) st = ifd_model_input_info(m, i, &infos[i]);
    if (!st) st = ifd_dataset_open(c->o->calibration_dir, n, infos, d);
    ifd_free(infos);
    if (!st && ifd_dataset_count(*d) == 0) {
        ifd_dataset_free(*d);
        *d = NULL;
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "calibration folder '%s' holds no samples",
                       c->o->calibration_dir);
    }
    if (st && st != IFD_ERR_NO_MEMORY) ifd_error_prefix(st, "calibration data");
    return st;
}

/* Run batch i and hand back the outputs named in `names` (n of them). */
static ifd_status run_batch(ifd_session *s, const ifd_dataset *d, size_t i, size_t n,
                            const char *const *names, ifd_tensor **outs) {
    ifd_status st = ifd_session_run(s, ifd_session_input_count(s), ifd_dataset_input_names(d),
                                    ifd_dataset_batch(d, i), n, names, outs);
    if (st) ifd_error_prefix(st, "calibration batch %zu", i);
    return st;
}

static ifd_status check_float(const ifd_tensor *t, const char *name) {
    if (t->dtype != IFD_DTYPE_FLOAT)
        return ifd_error(IFD_ERR_UNSUPPORTED, "tensor '%s' is %s; only float32 activations are "
                         "quantized", name, ifd_dtype_name(t->dtype));
    return IFD_OK;
}

static void observe_minmax(calib_tensor *t, const ifd_tensor *v) {
    const float *x = v->data;
    for (int64_t i = 0; i < v->count; i++) {
        float a = x[i];
        if (!isfinite(a)) continue;
        if (!t->seen) {
            t->min = t->max = a;
            t->seen = true;
        }
        if (a < t->min) t->min = a;
        if (a > t->max) t->max = a;
    }
}

/* skip_zeros (entropy): exact zeros (half of a ReLU output) are exact at any threshold and
 * would otherwise dominate the KL comparison and pull the threshold far down. */
static void observe_hist(calib_tensor *t, const ifd_tensor *v, bool skip_zeros) {
    const float *x = v->data;
    double width = t->amax > 0 ? (double)t->amax / CALIB_BINS : 1.0;
    for (int64_t i = 0; i < v->count; i++) {
        float a = fabsf(x[i]);
        if (!isfinite(a) || (skip_zeros && a == 0.0f)) continue;
        double b = a / width;
        size_t k = b >= CALIB_BINS - 1 ? CALIB_BINS - 1 : (size_t)b;
        t->hist[k] += 1.0;
    }
}

static double percentile_threshold(const double *hist, double amax, double pct) {
    double total = 0, acc = 0;
    for (size_t i = 0; i < CALIB_BINS; i++) total += hist[i];
    if (total <= 0) return amax;
    double want = total * pct / 100.0;
    for (size_t i = 0; i < CALIB_BINS; i++) {
        acc += hist[i];
        if (acc >= want) return amax * (double)(i + 1) / CALIB_BINS;
    }
    return amax;
}

/* TensorRT's entropy calibration: for each candidate threshold bin i, compare the clipped
 * distribution P (outliers folded into its last bin) with Q, P's first i bins merged into 128
 * levels and spread back; keep the threshold with the smallest KL(P || Q). */
static double entropy_threshold(const double *hist, double amax) {
    double best_kl = INFINITY;
    size_t best = CALIB_BINS;
    double p[CALIB_BINS], qd[CALIB_BINS], suffix[CALIB_BINS + 1];
    suffix[CALIB_BINS] = 0;
    for (size_t i = CALIB_BINS; i-- > 0;) suffix[i] = suffix[i + 1] + hist[i];
    if (suffix[0] <= 0) return amax;
    for (size_t i = CALIB_QUANT_BINS; i <= CALIB_BINS; i++) {
        double outliers = suffix[i];
        double psum = 0;
        for (size_t k = 0; k < i; k++) {
            p[k] = hist[k];
            psum += p[k];
        }
        p[i - 1] += outliers;
        psum += outliers;
        if (psum <= 0) continue;
        /* Merge hist[0:i] into CALIB_QUANT_BINS levels, spread each level's mass evenly over
         * its nonzero bins. */
        double qsum = 0;
        for (size_t j = 0; j < CALIB_QUANT_BINS; j++) {
            size_t start = j * i / CALIB_QUANT_BINS, end = (j + 1) * i / CALIB_QUANT_BINS;
            double mass = 0;
            size_t nonzero = 0;
            for (size_t k = start; k < end; k++) {
                mass += hist[k];
                nonzero += hist[k] != 0;
            }
            for (size_t k = start; k < end; k++) {
                qd[k] = hist[k] != 0 && nonzero ? mass / (double)nonzero : 0;
                qsum += qd[k];
            }
        }
        if (qsum <= 0) continue;
        double kl = 0;
        for (size_t k = 0; k < i; k++) {
            if (p[k] <= 0) continue;
            double pk = p[k] / psum;
            double qk = qd[k] > 0 ? qd[k] / qsum : 1e-12; /* smoothed: P has mass Q lacks */
            kl += pk * log(pk / qk);
        }
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    double thr = amax * ((double)best + 0.5) / CALIB_BINS;
    return thr > amax ? amax : thr;
}

/* uint8 asymmetric parameters for [lo, hi] (widened to include 0, so that 0 is exact). */
static void choose_qparams(calib_tensor *t) {
    double lo = t->lo < 0 ? t->lo : 0, hi = t->hi > 0 ? t->hi : 0;
    double scale = (hi - lo) / 255.0;
    if (!(scale > 1e-30) || !isfinite(scale)) {
        t->scale = 1.0f;
        t->zero_point = 0;
        return;
    }
    double zp = nearbyint(-lo / scale);
    if (zp < 0) zp = 0;
    if (zp > 255) zp = 255;
    t->scale = (float)scale;
    t->zero_point = (uint8_t)zp;
}

static ifd_status calibrate(ctx *c) {
    ifd_status st = IFD_OK;
    ifd_onnx_edit *aug = NULL;
    ifd_model *m = NULL;
    ifd_session *s = NULL;
    ifd_dataset *d = NULL;
    ifd_tensor **outs = NULL;
    const char **names = NULL;
    const ifd_quantize_options *o = c->o;
    if (!(c->t = ifd_calloc(2 * c->nq + 1, sizeof *c->t))) return oom();
    for (size_t j = 0; j < c->nq && !st; j++) {
        qnode *q = &c->q[j];
        if (!q->selected || q->kind == K_GATHER) continue;
        st = add_calib_tensor(c, q->x);
        if (!st && q->pair_out) st = add_calib_tensor(c, q->pair_out);
    }
    if (st) return st;
    if (!(names = ifd_calloc(c->nt + 1, sizeof *names)) ||
        !(outs = ifd_calloc(c->nt + 1, sizeof *outs)))
        return oom();
    for (size_t i = 0; i < c->nt; i++) names[i] = c->t[i].name;
    if ((st = ifd_onnx_edit_clone(c->e, &aug))) goto out;
    for (size_t i = 0; i < c->nt && !st; i++)
        st = ifd_onnx_edit_add_output(aug, c->t[i].name, IFD_DTYPE_FLOAT);
    if (st || (st = open_session(aug, o->num_threads, &m, &s))) goto out;
    if ((st = open_dataset(c, m, &d))) goto out;
    c->r->calibration_batches = ifd_dataset_count(d);
    bool hist = o->method != IFD_CALIBRATE_MINMAX;
    for (int pass = 0; pass < (hist ? 2 : 1); pass++) {
        for (size_t b = 0; b < ifd_dataset_count(d); b++) {
            if ((st = run_batch(s, d, b, c->nt, names, outs))) goto out;
            for (size_t i = 0; i < c->nt && !st; i++) {
                st = check_float(outs[i], c->t[i].name);
                if (!st && pass == 0) observe_minmax(&c->t[i], outs[i]);
                if (!st && pass == 1) observe_hist(&c->t[i], outs[i], o->method == IFD_CALIBRATE_ENTROPY);
            }
            for (size_t i = 0; i < c->nt; i++) {
                ifd_tensor_free(outs[i]);
                outs[i] = NULL;
            }
            if (st) goto out;
        }
        if (pass == 0 && hist)
            for (size_t i = 0; i < c->nt; i++) {
                calib_tensor *t = &c->t[i];
                t->amax = fmaxf(fabsf(t->min), fabsf(t->max));
                if (!(t->hist = ifd_calloc(CALIB_BINS, sizeof *t->hist))) {
                    st = oom();
                    goto out;
                }
            }
    }
    for (size_t i = 0; i < c->nt; i++) {
        calib_tensor *t = &c->t[i];
        t->lo = t->min;
        t->hi = t->max;
        if (hist) {
            double thr = o->method == IFD_CALIBRATE_PERCENTILE
                             ? percentile_threshold(t->hist, t->amax, o->percentile)
                             : entropy_threshold(t->hist, t->amax);
            if (t->lo < -thr) t->lo = (float)-thr;
            if (t->hi > thr) t->hi = (float)thr;
        }
        choose_qparams(t);
    }
out:
    for (size_t i = 0; outs && i < c->nt; i++) ifd_tensor_free(outs[i]);
    ifd_free(outs);
    ifd_free(names);
    ifd_dataset_free(d);
    ifd_session_free(s);
    ifd_model_free(m);
    ifd_onnx_edit_free(aug);
    return st;
}

/* ---- static mode (QDQ) ----------------------------------------------------------------------------- */

static ifd_status insert_qdq_pair(ctx *c, calib_tensor *t) {
    ifd_status st = IFD_OK;
    char *s = NULL, *zp = NULL, *qn = NULL, *dqn = NULL;
    if (!(s = add_init(c, t->name, "_scale", IFD_DTYPE_FLOAT, 0, NULL, &t->scale)) ||
        !(zp = add_init(c, t->name, "_zero_point", IFD_DTYPE_UINT8, 0, NULL, &t->zero_point)) ||
        !(qn = ifd_onnx_edit_unique_name(c->e, t->name, "_quantized")) ||
        !(dqn = ifd_onnx_edit_unique_name(c->e, t->name, "_dequantized"))) {
        st = oom();
        goto out;
    }
    /* Every consumer reads the dequantized value (graph outputs keep the float one). */
    if ((st = ifd_onnx_edit_replace_uses(c->e, t->name, dqn, -1))) goto out;
    if (!append(c, "QuantizeLinear", t->name, 3, (const char *[]){t->name, s, zp}, qn) ||
        !append(c, "DequantizeLinear", t->name, 3, (const char *[]){qn, s, zp}, dqn))
        st = oom();
out:
    ifd_free(s);
    ifd_free(zp);
    ifd_free(qn);
    ifd_free(dqn);
    return st;
}

static ifd_status set_input(Onnx__NodeProto *n, size_t k, const char *name) {
    char *s = ifd_strdup(name);
    if (!s) return oom();
    ifd_free(n->input[k]);
    n->input[k] = s;
    return IFD_OK;
}

static ifd_status quantize_static_node(ctx *c, qnode *q) {
    ifd_status st = IFD_OK;
    ifd_tensor *w = NULL, *b = NULL;
    int8_t *wq = NULL, *wzp = NULL;
    float *ws = NULL, *bs = NULL;
    int32_t *bq = NULL, *bzp = NULL;
    char *wq_name = NULL, *ws_name = NULL, *wzp_name = NULL, *wdq = NULL;
    char *bq_name = NULL, *bs_name = NULL, *bzp_name = NULL, *bdq = NULL;
    Onnx__NodeProto *n = q->node;
    if ((st = load_weight(c, q->w, &w))) goto out;
    size_t count = (size_t)w->count;
    /* The output-channel axis: Conv [M, C/g, k...] axis 0; MatMul [K, N] axis 1; Gemm's B is
     * [K, N] (axis 1) or, with transB, [N, K] (axis 0). */
    int axis = q->kind == K_MATMUL ? 1
               : q->kind == K_GEMM ? (ifd_onnx_edit_attr_int(n, "transB", 0) ? 0 : 1)
                                   : 0;
    size_t channels = c->o->per_channel ? (size_t)w->dims[axis] : 1;
    wq = ifd_malloc(count ? count : 1);
    ws = ifd_malloc(channels * sizeof *ws);
    wzp = ifd_calloc(channels, 1);
    if (!wq || !ws || !wzp) {
        st = oom();
        goto out;
    }
    quantize_symmetric(w->data, count, channels, axis == 1 && w->rank == 2, wq, ws);
    int64_t cdim = (int64_t)channels;
    int crank = c->o->per_channel ? 1 : 0;
    if (!(wq_name = add_init(c, q->w, "_quantized", IFD_DTYPE_INT8, w->rank, w->dims, wq)) ||
        !(ws_name = add_init(c, q->w, "_scale", IFD_DTYPE_FLOAT, crank, &cdim, ws)) ||
        !(wzp_name = add_init(c, q->w, "_zero_point", IFD_DTYPE_INT8, crank, &cdim, wzp)) ||
        !(wdq = ifd_onnx_edit_unique_name(c->e, q->w, "_dequantized"))) {
        st = oom();
        goto out;
    }
    Onnx__NodeProto *dq =
        append(c, "DequantizeLinear", q->w, 3, (const char *[]){wq_name, ws_name, wzp_name}, wdq);
    if (!dq || (c->o->per_channel && (st = ifd_onnx_edit_set_attr_int(dq, "axis", axis)))) {
        st = st ? st : oom();
        goto out;
    }
    if ((st = set_input(n, 1, wdq))) goto out;
    /* Bias as int32 with scale Xs * Ws[m], so an integer runtime adds it to the accumulator.
     * Left float when Gemm scales it (alpha, beta), when it is not 1-D [M], or when a value
     * would not fit in int32. */
    calib_tensor *xt = find_calib(c, q->x);
    bool gemm_plain = q->kind != K_GEMM || (ifd_onnx_edit_attr_float(n, "alpha", 1.0f) == 1.0f &&
                                            ifd_onnx_edit_attr_float(n, "beta", 1.0f) == 1.0f);
    size_t m = (size_t)w->dims[axis];
    if (q->b && xt && gemm_plain) {
        const Onnx__TensorProto *btp = ifd_onnx_edit_constant(c->e, q->b);
        if (!btp || btp->data_type != IFD_DTYPE_FLOAT) goto out;
        if ((st = load_weight(c, q->b, &b))) goto out;
        if (b->rank != 1 || (size_t)b->dims[0] != m) goto out;
        bq = ifd_malloc(m * sizeof *bq);
        bs = ifd_malloc(m * sizeof *bs);
        bzp = ifd_calloc(m, sizeof *bzp);
        if (!bq || !bs || !bzp) {
            st = oom();
            goto out;
        }
        const float *bf = b->data;
        for (size_t i = 0; i < m; i++) {
            bs[i] = xt->scale * ws[channels == 1 ? 0 : i];
            double v = nearbyint((double)bf[i] / (double)bs[i]);
            if (!(fabs(v) <= 2147483647.0)) goto out; /* keeps the float bias */
            bq[i] = (int32_t)v;
        }
        int64_t md = (int64_t)m;
        if (!(bq_name = add_init(c, q->b, "_quantized", IFD_DTYPE_INT32, 1, &md, bq)) ||
            !(bs_name = add_init(c, q->b, "_scale", IFD_DTYPE_FLOAT, 1, &md, bs)) ||
            !(bzp_name = add_init(c, q->b, "_zero_point", IFD_DTYPE_INT32, 1, &md, bzp)) ||
            !(bdq = ifd_onnx_edit_unique_name(c->e, q->b, "_dequantized"))) {
            st = oom();
            goto out;
        }
        Onnx__NodeProto *bn = append(c, "DequantizeLinear", q->b, 3,
                                     (const char *[]){bq_name, bs_name, bzp_name}, bdq);
        if (!bn || (st = ifd_onnx_edit_set_attr_int(bn, "axis", 0))) {
            st = st ? st : oom();
            goto out;
        }
        if ((st = set_input(n, 2, bdq))) goto out;
    }
out:
    ifd_tensor_free(w);
    ifd_tensor_free(b);
    ifd_free(wq);
    ifd_free(wzp);
    ifd_free(ws);
    ifd_free(bs);
    ifd_free(bq);
    ifd_free(bzp);
    ifd_free(wq_name);
    ifd_free(ws_name);
    ifd_free(wzp_name);
    ifd_free(wdq);
    ifd_free(bq_name);
    ifd_free(bs_name);
    ifd_free(bzp_name);
    ifd_free(bdq);
    if (st) ifd_error_prefix(st, "node '%s' (%s)", q->name, kind_op(q->kind));
    return st;
}

/* ---- rewrite ------------------------------------------------------------------------------------------ */

static ifd_status rewrite(ctx *c) {
    ifd_status st = IFD_OK;
    ifd_onnx_edit *e = c->e;
    if (c->o->mode == IFD_QUANTIZE_DYNAMIC) {
        if (!(c->dql = ifd_calloc(c->nq + 1, sizeof *c->dql))) return oom();
        for (size_t j = 0; j < c->nq && !st; j++) {
            qnode *q = &c->q[j];
            if (!q->selected) continue;
            st = q->kind == K_GATHER ? quantize_gather(c, q) : quantize_dynamic_node(c, q);
        }
        if (st) return st;
        /* The originals go; their outputs are now produced by the new nodes. */
        for (size_t j = 0; j < c->nq; j++) {
            if (!c->q[j].selected) continue;
            for (size_t i = 0; i < e->graph->n_node; i++)
                if (e->graph->node[i] == c->q[j].node) {
                    ifd_onnx_edit_remove_node(e, i);
                    break;
                }
            c->q[j].node = NULL;
        }
    } else {
        for (size_t i = 0; i < c->nt && !st; i++) st = insert_qdq_pair(c, &c->t[i]);
        for (size_t j = 0; j < c->nq && !st; j++) {
            qnode *q = &c->q[j];
            if (!q->selected || q->kind == K_GATHER) continue;
            st = quantize_static_node(c, q);
        }
        if (st) return st;
        for (size_t j = 0; j < c->nq; j++) {
            qnode *q = &c->q[j];
            if (!q->selected || q->kind != K_GATHER) continue;
            /* The Gather node is replaced: remove it after its replacement is built. */
            Onnx__NodeProto *orig = q->node;
            if ((st = quantize_gather(c, q))) return st;
            for (size_t i = 0; i < e->graph->n_node; i++)
                if (e->graph->node[i] == orig) {
                    ifd_onnx_edit_remove_node(e, i);
                    break;
                }
            q->node = NULL;
        }
    }
    if ((st = ifd_onnx_edit_remove_unused_initializers(e))) return st;
    return ifd_onnx_edit_topo_sort(e);
}

/* ---- report ------------------------------------------------------------------------------------------- */

typedef struct err_acc {
    double max_abs, diff2, ref2, dot, q2;
} err_acc;

static void accumulate(err_acc *a, const ifd_tensor *f, const ifd_tensor *q) {
    const float *x = f->data, *y = q->data;
    for (int64_t i = 0; i < f->count; i++) {
        double d = (double)y[i] - (double)x[i];
        if (fabs(d) > a->max_abs || isnan(d)) a->max_abs = isnan(d) ? INFINITY : fabs(d);
        a->diff2 += d * d;
        a->ref2 += (double)x[i] * x[i];
        a->q2 += (double)y[i] * y[i];
        a->dot += (double)x[i] * y[i];
    }
}

static ifd_status report(ctx *c, const ifd_onnx_edit *float_model) {
    ifd_status st = IFD_OK;
    ifd_onnx_edit *fa = NULL, *qa = NULL;
    ifd_model *fm = NULL, *qm = NULL;
    ifd_session *fs = NULL, *qs = NULL;
    ifd_dataset *d = NULL;
    size_t n_out = float_model->graph->n_output, nn = 0;
    const char **names = NULL;
    ifd_tensor **fo = NULL, **qo = NULL;
    err_acc *acc = NULL;
    size_t *node_of = NULL;
    ifd_quantize_result *r = c->r;
    if (!(names = ifd_calloc(n_out + c->nq + 1, sizeof *names)) ||
        !(fo = ifd_calloc(n_out + c->nq + 1, sizeof *fo)) ||
        !(qo = ifd_calloc(n_out + c->nq + 1, sizeof *qo)) ||
        !(acc = ifd_calloc(n_out + c->nq + 1, sizeof *acc)) ||
        !(node_of = ifd_calloc(n_out + c->nq + 1, sizeof *node_of))) {
        st = oom();
        goto out;
    }
    for (size_t i = 0; i < n_out; i++) names[nn++] = float_model->graph->output[i]->name;
    for (size_t j = 0; j < c->nq; j++)
        if (c->q[j].selected && !ifd_onnx_edit_is_graph_output(float_model, c->q[j].out)) {
            node_of[nn] = j;
            names[nn++] = c->q[j].out;
        }
    if ((st = ifd_onnx_edit_clone(float_model, &fa)) || (st = ifd_onnx_edit_clone(c->e, &qa)))
        goto out;
    for (size_t i = n_out; i < nn && !st; i++) {
        st = ifd_onnx_edit_add_output(fa, names[i], IFD_DTYPE_FLOAT);
        if (!st) st = ifd_onnx_edit_add_output(qa, names[i], IFD_DTYPE_FLOAT);
    }
    if (st || (st = open_session(fa, c->o->num_threads, &fm, &fs)) ||
        (st = open_session(qa, c->o->num_threads, &qm, &qs)) || (st = open_dataset(c, fm, &d)))
        goto out;
    r->calibration_batches = ifd_dataset_count(d);
    for (size_t b = 0; b < ifd_dataset_count(d); b++) {
        if ((st = run_batch(fs, d, b, nn, names, fo)) || (st = run_batch(qs, d, b, nn, names, qo)))
            goto out;
        for (size_t i = 0; i < nn; i++) {
            if (fo[i]->dtype == IFD_DTYPE_FLOAT && qo[i]->dtype == IFD_DTYPE_FLOAT &&
                fo[i]->count == qo[i]->count)
                accumulate(&acc[i], fo[i], qo[i]);
            ifd_tensor_free(fo[i]);
            ifd_tensor_free(qo[i]);
            fo[i] = qo[i] = NULL;
        }
    }
    if (!(r->outputs = ifd_calloc(n_out + 1, sizeof *r->outputs))) {
        st = oom();
        goto out;
    }
    for (size_t i = 0; i < n_out; i++) {
        ifd_quantize_output *ro = &r->outputs[r->n_outputs];
        if (!(ro->name = ifd_strdup(names[i]))) {
            st = oom();
            goto out;
        }
        r->n_outputs++;
        double den = sqrt(acc[i].ref2) * sqrt(acc[i].q2);
        ro->cosine = den > 0 ? acc[i].dot / den : (acc[i].diff2 == 0 ? 1.0 : 0.0);
        ro->max_abs_error = acc[i].max_abs;
    }
    for (size_t i = n_out; i < nn; i++) {
        ifd_quantize_node *rn = &r->nodes[node_of[i]];
        rn->has_error = true;
        rn->max_abs_error = acc[i].max_abs;
        rn->rel_error = acc[i].ref2 > 0 ? sqrt(acc[i].diff2 / acc[i].ref2)
                                        : (acc[i].diff2 > 0 ? INFINITY : 0);
    }
out:
    for (size_t i = 0; fo && qo && i < nn; i++) {
        ifd_tensor_free(fo[i]);
        ifd_tensor_free(qo[i]);
    }
    ifd_free(names);
    ifd_free(fo);
    ifd_free(qo);
    ifd_free(acc);
    ifd_free(node_of);
    ifd_dataset_free(d);
    ifd_session_free(fs);
    ifd_session_free(qs);
    ifd_model_free(fm);
    ifd_model_free(qm);
    ifd_onnx_edit_free(fa);
    ifd_onnx_edit_free(qa);
    if (st && st != IFD_ERR_NO_MEMORY) ifd_error_prefix(st, "report");
    return st;
}

/* ---- entry point ------------------------------------------------------------------------------------- */

static ifd_status check_options(const ifd_quantize_options *o) {
    if (o->mode != IFD_QUANTIZE_DYNAMIC && o->mode != IFD_QUANTIZE_STATIC)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "unknown quantization mode %d", (int)o->mode);
    if (o->mode == IFD_QUANTIZE_STATIC && !o->calibration_dir)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "static mode needs calibration data (--calibration DIR)");
    if (o->report && !o->calibration_dir)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "the report runs on calibration data: give --calibration DIR");
    if (o->method == IFD_CALIBRATE_PERCENTILE && !(o->percentile > 0 && o->percentile <= 100))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "percentile %g is not in (0, 100]",
                         o->percentile);
    return IFD_OK;
}

static ifd_status fill_result_nodes(ctx *c) {
    ifd_quantize_result *r = c->r;
    if (!(r->nodes = ifd_calloc(c->nq + 1, sizeof *r->nodes))) return oom();
    for (size_t j = 0; j < c->nq; j++) {
        ifd_quantize_node *rn = &r->nodes[r->n_nodes++];
        const qnode *q = &c->q[j];
        rn->quantized = q->selected;
        r->n_quantized += q->selected;
        if (!(rn->name = ifd_strdup(q->name)) || !(rn->op_type = ifd_strdup(kind_op(q->kind))) ||
            (q->reason && !q->selected && !(rn->reason = ifd_strdup(q->reason))))
            return oom();
    }
    return IFD_OK;
}

ifd_status ifd_quantize_file(const char *in_path, const char *out_path,
                             const ifd_quantize_options *options, ifd_quantize_result **result) {
    ifd_status st;
    ctx c = {0};
    ifd_onnx_edit *original = NULL;
    ifd_model *check = NULL;
    void *data = NULL;
    size_t size = 0;
    ifd_quantize_options defaults;
    if (result) *result = NULL;
    if (!options) {
        ifd_quantize_options_init(&defaults);
        options = &defaults;
    }
    c.o = options;
    if (!in_path || !out_path)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "input or output path is NULL");
    if ((st = check_options(options))) return st;
    if (!(c.r = ifd_calloc(1, sizeof *c.r))) return oom();
    if ((st = ifd_onnx_edit_load_file(in_path, &c.e))) goto out;
    if ((st = ifd_onnx_edit_pack(c.e, &data, &size))) goto out;
    c.r->bytes_in = size;
    /* The input must be a model inferd accepts: its errors are clearer than ours would be. */
    st = ifd_model_load_memory(data, size, NULL, &check);
    ifd_free(data);
    data = NULL;
    ifd_model_free(check);
    check = NULL;
    if (st) {
        ifd_error_prefix(st, "'%s'", in_path);
        goto out;
    }
    if ((st = check_opset(&c))) goto out;
    if ((st = find_nodes(&c))) goto out;
    if ((st = fill_result_nodes(&c))) goto out;
    if (options->report && (st = ifd_onnx_edit_clone(c.e, &original))) goto out;
    if (options->mode == IFD_QUANTIZE_STATIC && (st = calibrate(&c))) goto out;
    if ((st = rewrite(&c))) goto out;
    /* What we write must load: check it here rather than leave a broken file behind. */
    if ((st = ifd_onnx_edit_pack(c.e, &data, &size))) goto out;
    c.r->bytes_out = size;
    if ((st = ifd_model_load_memory(data, size, NULL, &check))) {
        ifd_error_prefix(st, "internal error: the quantized model does not load");
        goto out;
    }
    ifd_model_free(check);
    check = NULL;
    if (options->report && (st = report(&c, original))) goto out;
    st = ifd_onnx_edit_write_file(c.e, out_path);
out:
    ifd_free(data);
    ifd_onnx_edit_free(original);
    ifd_onnx_edit_free(c.e);
    for (size_t j = 0; j < c.nq; j++) {
        ifd_free(c.q[j].name);
        ifd_free(c.q[j].reason);
        ifd_free(c.q[j].x);
        ifd_free(c.q[j].w);
        ifd_free(c.q[j].b);
        ifd_free(c.q[j].out);
        ifd_free(c.q[j].pair_out);
    }
    ifd_free(c.q);
    for (size_t i = 0; i < c.nt; i++) {
        ifd_free(c.t[i].name);
        ifd_free(c.t[i].hist);
    }
    ifd_free(c.t);
    for (size_t i = 0; i < c.ndql; i++) {
        ifd_free(c.dql[i].x);
        ifd_free(c.dql[i].xq);
        ifd_free(c.dql[i].xs);
        ifd_free(c.dql[i].xzp);
    }
    ifd_free(c.dql);
    if (result)
        *result = c.r;
    else
        ifd_quantize_result_free(c.r);
    return st;
}
