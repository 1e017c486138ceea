/* opt/prune: magnitude pruning (see prune.h and docs/PRUNE.md).
 *
 * The steps: decode the model (onnx_edit), check inferd loads it, find the MatMul/Gemm/Conv
 * nodes with constant float weights, then either zero weights in place (unstructured, 2:4)
 * or remove output channels and rewrite their consumers (channel), check the result loads,
 * and write it (OUT.tmp, then rename). */
#include "opt/prune.h"

#include "base/base.h"
#include "onnx/onnx_internal.h" /* ifd_pb_allocator, to free what onnx_edit decoded */
#include "opt/onnx_edit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum pkind { P_MATMUL, P_GEMM, P_CONV } pkind;

typedef struct player {
    Onnx__NodeProto *node;
    char *name;
    pkind kind;
    const char *w; /* the node's weight input (owned by the node) */
    bool candidate; /* weight is a prunable constant */
    char *reason;
    bool pruned;
    int64_t params_before, params_after, nonzero_before, nonzero_after;
    int64_t channels_before, channels_after;
} player;

typedef struct pctx {
    const ifd_prune_options *o;
    ifd_onnx_edit *e;
    player *l;
    size_t nl;
} pctx;

static ifd_status oom(void) { return ifd_error(IFD_ERR_NO_MEMORY, "out of memory pruning"); }

static const char *kind_op(pkind k) {
    return k == P_MATMUL ? "MatMul" : k == P_GEMM ? "Gemm" : "Conv";
}

static bool is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

void ifd_prune_options_init(ifd_prune_options *o) {
    memset(o, 0, sizeof *o);
    o->pattern = IFD_PRUNE_UNSTRUCTURED;
    o->scope = IFD_PRUNE_SCOPE_LAYER;
}

void ifd_prune_result_free(ifd_prune_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_layers; i++) {
        ifd_free(r->layers[i].name);
        ifd_free(r->layers[i].op_type);
        ifd_free(r->layers[i].weight);
        ifd_free(r->layers[i].reason);
    }
    ifd_free(r->layers);
    ifd_free(r);
}

/* ---- tensors in the model ------------------------------------------------------------------ */

/* Replace an initializer's contents by t (raw little-endian data, t's shape). Everything hung
 * into the message comes from the accounted allocator, as onnx_edit requires. */
static ifd_status set_initializer(Onnx__TensorProto *tp, const ifd_tensor *t) {
    int64_t *dims = ifd_malloc(((size_t)t->rank + 1) * sizeof *dims);
    uint8_t *raw = ifd_malloc(t->nbytes ? t->nbytes : 1);
    if (!dims || !raw) {
        ifd_free(dims);
        ifd_free(raw);
        return oom();
    }
    for (int i = 0; i < t->rank; i++) dims[i] = t->dims[i];
    if (t->nbytes) memcpy(raw, t->data, t->nbytes);
    ifd_free(tp->dims);
    tp->dims = dims;
    tp->n_dims = (size_t)t->rank;
    ifd_free(tp->float_data);
    tp->float_data = NULL;
    tp->n_float_data = 0;
    ifd_free(tp->raw_data.data);
    tp->raw_data.data = raw;
    tp->raw_data.len = t->nbytes;
    tp->has_raw_data = 1;
    return IFD_OK;
}

static ifd_status load_float(pctx *c, const char *name, ifd_tensor **out) {
    *out = NULL;
    const Onnx__TensorProto *tp = ifd_onnx_edit_constant(c->e, name);
    if (!tp) return ifd_error(IFD_ERR_INTERNAL, "'%s' is not a constant", name);
    ifd_status st = ifd_onnx_edit_tensor(tp, out);
    if (!st && (*out)->dtype != IFD_DTYPE_FLOAT) {
        ifd_tensor_free(*out);
        *out = NULL;
        return ifd_error(IFD_ERR_UNSUPPORTED, "initializer '%s' is not float32", name);
    }
    return st;
}

static int64_t count_nonzero(const ifd_tensor *t) {
    const float *w = t->data;
    int64_t n = 0;
    for (int64_t i = 0; i < t->count; i++) n += w[i] != 0.0f;
    return n;
}

/* ---- which nodes ----------------------------------------------------------------------------- */

static bool name_in(const char *name, size_t n, const char *const *list) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name)) return true;
    return false;
}

/* Uses of `name` as the weight input of a candidate layer. */
static size_t weight_uses(const pctx *c, const char *name) {
    size_t n = 0;
    for (size_t i = 0; i < c->nl; i++) n += !strcmp(c->l[i].w, name);
    return n;
}

static ifd_status analyze(pctx *c, player *l) {
    const Onnx__NodeProto *n = l->node;
    char why[512] = "";
    const Onnx__TensorProto *w = ifd_onnx_edit_constant(c->e, l->w);
    if (!w) {
        snprintf(why, sizeof why, "its weight '%s' is not a constant initializer", l->w);
    } else if (!w->has_data_type || w->data_type != IFD_DTYPE_FLOAT) {
        snprintf(why, sizeof why, "its weight '%s' is %s, not float32", l->w,
                 ifd_dtype_name((ifd_dtype)w->data_type));
    } else if (l->kind != P_CONV && w->n_dims != 2) {
        snprintf(why, sizeof why, "its weight '%s' has rank %zu, not 2", l->w, w->n_dims);
    } else if (l->kind == P_CONV && w->n_dims < 3) {
        snprintf(why, sizeof why, "its weight '%s' has rank %zu (need [M, C/group, k...])", l->w,
                 w->n_dims);
    } else if (l->kind == P_GEMM && ifd_onnx_edit_attr_int(n, "transA", 0)) {
        snprintf(why, sizeof why, "transA=1 is not supported");
    } else if (ifd_onnx_edit_use_count(c->e, l->w) != weight_uses(c, l->w)) {
        snprintf(why, sizeof why, "its weight '%s' is also used by other operators", l->w);
    } else if (name_in(l->name, c->o->n_exclude, c->o->exclude)) {
        snprintf(why, sizeof why, "excluded (--exclude)");
    }
    if (*why) return (l->reason = ifd_strdup(why)) ? IFD_OK : oom();
    int64_t count = 1;
    for (size_t i = 0; i < w->n_dims; i++)
        if (w->dims[i] < 0 || !ifd_mul_i64(count, w->dims[i], &count))
            return ifd_error(IFD_ERR_CORRUPT_MODEL, "initializer '%s' has bad dims", l->w);
    l->candidate = true;
    l->params_before = l->params_after = count;
    return IFD_OK;
}

static ifd_status find_layers(pctx *c) {
    Onnx__GraphProto *g = c->e->graph;
    ifd_status st;
    if (!(c->l = ifd_calloc(g->n_node + 1, sizeof *c->l))) return oom();
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        pkind k;
        if (!is_default_domain(n->domain)) continue;
        if (!strcmp(n->op_type, "MatMul")) k = P_MATMUL;
        else if (!strcmp(n->op_type, "Gemm")) k = P_GEMM;
        else if (!strcmp(n->op_type, "Conv")) k = P_CONV;
        else continue;
        if (n->n_input < 2 || n->n_output < 1) continue;
        player *l = &c->l[c->nl++];
        l->node = n;
        l->kind = k;
        l->w = n->input[1];
        l->name = n->name && *n->name ? ifd_strdup(n->name) : ifd_strdup_printf("%s_%zu", n->op_type, i);
        if (!l->name) return oom();
    }
    for (size_t i = 0; i < c->nl; i++)
        if ((st = analyze(c, &c->l[i]))) return st;
    /* names on the command line must exist */
    for (size_t x = 0; x < c->o->n_exclude; x++) {
        bool found = false;
        for (size_t i = 0; i < g->n_node && !found; i++) {
            const char *nm = g->node[i]->name;
            found = nm && !strcmp(nm, c->o->exclude[x]);
        }
        for (size_t i = 0; i < c->nl && !found; i++) found = !strcmp(c->l[i].name, c->o->exclude[x]);
        if (!found)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "--exclude '%s': no node of that name",
                             c->o->exclude[x]);
    }
    return IFD_OK;
}

/* First candidate layer using weight `name` (shared weights are pruned once). */
static player *first_user(pctx *c, const char *name) {
    for (size_t i = 0; i < c->nl; i++)
        if (c->l[i].candidate && !strcmp(c->l[i].w, name)) return &c->l[i];
    return NULL;
}

/* ---- unstructured and 2:4 -------------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The |w| value below which weights go, so that `drop` of the `n` values in mags are below or
 * at it; *ties = how many values equal to it must still go. mags is sorted in place. */
static float threshold(float *mags, int64_t n, int64_t drop, int64_t *ties) {
    *ties = 0;
    if (drop <= 0) return -1.0f;
    qsort(mags, (size_t)n, sizeof *mags, cmp_float);
    float t = mags[drop - 1];
    int64_t below = 0;
    while (below < drop && mags[below] < t) below++;
    *ties = drop - below;
    return t;
}

static void apply_threshold(ifd_tensor *w, float t, int64_t *ties) {
    float *d = w->data;
    for (int64_t i = 0; i < w->count; i++) {
        float a = fabsf(d[i]);
        if (a < t) {
            d[i] = 0.0f;
        } else if (a == t && *ties > 0) {
            d[i] = 0.0f;
            (*ties)--;
        }
    }
}

/* The reduction axis of a weight as a (groups, length, stride) walk: element e of group g is
 * at g_base(g) + e * stride. MatMul [K, N], Gemm [K, N] or [N, K] (transB), Conv [M, C*k...]. */
static void two_four(const player *l, ifd_tensor *w) {
    float *d = w->data;
    int64_t outer, len, stride; /* per output channel: base, reduction length, stride */
    bool along_rows;            /* reduction runs down the rows of a 2-D [K, N] weight */
    if (l->kind == P_CONV) {
        outer = w->dims[0];
        len = w->count / (outer ? outer : 1);
        stride = 1;
        along_rows = false;
    } else if (l->kind == P_GEMM && ifd_onnx_edit_attr_int(l->node, "transB", 0)) {
        outer = w->dims[0];
        len = w->dims[1];
        stride = 1;
        along_rows = false;
    } else {
        outer = w->dims[1];
        len = w->dims[0];
        stride = w->dims[1];
        along_rows = true;
    }
    for (int64_t o = 0; o < outer; o++) {
        float *base = along_rows ? d + o : d + o * len;
        for (int64_t g = 0; g < len; g += 4) {
            const int n = (int)IFD_MIN((int64_t)4, len - g);
            float *x[4];
            for (int e = 0; e < n; e++) x[e] = &base[(g + e) * stride];
            /* zero the smallest |w| until at most 2 nonzeros remain (a short tail group of
             * 3 keeps 2; of 1 or 2 keeps them) */
            for (;;) {
                int nonzero = 0, smallest = -1;
                for (int e = 0; e < n; e++) {
                    if (*x[e] == 0.0f) continue;
                    nonzero++;
                    if (smallest < 0 || fabsf(*x[e]) < fabsf(*x[smallest])) smallest = e;
                }
                if (nonzero <= 2) break;
                *x[smallest] = 0.0f;
            }
        }
    }
}

static ifd_status prune_weights(pctx *c) {
    const ifd_prune_options *o = c->o;
    ifd_status st = IFD_OK;
    float *mags = NULL;
    ifd_tensor *w = NULL;
    if (o->pattern == IFD_PRUNE_UNSTRUCTURED && o->scope == IFD_PRUNE_SCOPE_GLOBAL) {
        /* one threshold over every prunable weight together */
        int64_t total = 0, pos = 0, ties = 0;
        for (size_t i = 0; i < c->nl; i++)
            if (c->l[i].candidate && first_user(c, c->l[i].w) == &c->l[i])
                total += c->l[i].params_before;
        size_t bytes;
        if (!ifd_mul_size((size_t)total + 1, sizeof(float), &bytes) || !(mags = ifd_malloc(bytes)))
            return oom();
        for (size_t i = 0; i < c->nl; i++) {
            player *l = &c->l[i];
            if (!l->candidate || first_user(c, l->w) != l) continue;
            if ((st = load_float(c, l->w, &w))) goto out;
            for (int64_t j = 0; j < w->count; j++) mags[pos++] = fabsf(((float *)w->data)[j]);
            ifd_tensor_free(w);
            w = NULL;
        }
        float t = threshold(mags, total, (int64_t)llround(o->sparsity * (double)total), &ties);
        for (size_t i = 0; i < c->nl; i++) {
            player *l = &c->l[i];
            if (!l->candidate || first_user(c, l->w) != l) continue;
            if ((st = load_float(c, l->w, &w))) goto out;
            l->nonzero_before = count_nonzero(w);
            apply_threshold(w, t, &ties);
            l->nonzero_after = count_nonzero(w);
            if ((st = set_initializer(ifd_onnx_edit_constant(c->e, l->w), w))) goto out;
            ifd_tensor_free(w);
            w = NULL;
        }
        goto mark;
    }
    for (size_t i = 0; i < c->nl; i++) {
        player *l = &c->l[i];
        if (!l->candidate || first_user(c, l->w) != l) continue;
        if ((st = load_float(c, l->w, &w))) goto out;
        l->nonzero_before = count_nonzero(w);
        if (o->pattern == IFD_PRUNE_2_4) {
            two_four(l, w);
        } else {
            size_t bytes;
            int64_t ties;
            if (!ifd_mul_size((size_t)w->count + 1, sizeof(float), &bytes) ||
                !(mags = ifd_malloc(bytes))) {
                st = oom();
                goto out;
            }
            for (int64_t j = 0; j < w->count; j++) mags[j] = fabsf(((float *)w->data)[j]);
            float t = threshold(mags, w->count,
                                (int64_t)llround(o->sparsity * (double)w->count), &ties);
            apply_threshold(w, t, &ties);
            ifd_free(mags);
            mags = NULL;
        }
        l->nonzero_after = count_nonzero(w);
        if ((st = set_initializer(ifd_onnx_edit_constant(c->e, l->w), w))) goto out;
        ifd_tensor_free(w);
        w = NULL;
    }
mark:
    /* layers sharing a weight report the same numbers */
    for (size_t i = 0; i < c->nl; i++) {
        player *l = &c->l[i];
        if (!l->candidate) continue;
        player *f = first_user(c, l->w);
        l->nonzero_before = f->nonzero_before;
        l->nonzero_after = f->nonzero_after;
        l->pruned = true;
    }
out:
    ifd_free(mags);
    ifd_tensor_free(w);
    return st;
}

/* ---- channel pruning ------------------------------------------------------------------------- */

/* An initializer to slice: along `axis`, whose length is channels * block (block consecutive
 * entries per channel: the spatial positions of a channel after Flatten). */
typedef struct slice_edit {
    const char *name;
    int axis;
    int64_t block;
} slice_edit;

#define MAX_EDITS 64
#define MAX_TRACKED 128

typedef struct chan_plan {
    int64_t channels;
    bool nchw; /* channel axis 1 of a 4-D-ish activation (Conv), else the last axis */
    slice_edit edits[MAX_EDITS];
    int n_edits;
    const char *tracked[MAX_TRACKED]; /* values carrying the producer's channels */
    int n_tracked;
    char why[512];
} chan_plan;

static bool tracked(const chan_plan *p, const char *v) {
    for (int i = 0; i < p->n_tracked; i++)
        if (!strcmp(p->tracked[i], v)) return true;
    return false;
}

static bool add_edit(pctx *c, chan_plan *p, const char *name, int axis, int64_t block,
                     const char *who) {
    const Onnx__TensorProto *tp = ifd_onnx_edit_constant(c->e, name);
    if (!tp || tp->data_type != IFD_DTYPE_FLOAT) {
        snprintf(p->why, sizeof p->why, "%s: '%s' is not a float constant", who, name);
        return false;
    }
    if (ifd_onnx_edit_use_count(c->e, name) != 1) {
        snprintf(p->why, sizeof p->why, "%s: '%s' is shared with other nodes", who, name);
        return false;
    }
    if (axis < 0 || (size_t)axis >= tp->n_dims || tp->dims[axis] != p->channels * block) {
        snprintf(p->why, sizeof p->why, "%s: '%s' does not have %lld entries on axis %d", who,
                 name, (long long)(p->channels * block), axis);
        return false;
    }
    for (int i = 0; i < p->n_edits; i++)
        if (!strcmp(p->edits[i].name, name)) {
            snprintf(p->why, sizeof p->why, "%s: '%s' would be sliced twice", who, name);
            return false;
        }
    if (p->n_edits == MAX_EDITS) {
        snprintf(p->why, sizeof p->why, "too many tensors to rewrite");
        return false;
    }
    p->edits[p->n_edits++] = (slice_edit){name, axis, block};
    return true;
}

/* A constant operand of an elementwise op on a tracked value: a scalar passes, a per-channel
 * vector (broadcasting along the channel axis only) is sliced, anything else blocks. */
static bool elementwise_constant(pctx *c, chan_plan *p, const char *name, const char *who) {
    const Onnx__TensorProto *tp = ifd_onnx_edit_constant(c->e, name);
    if (!tp) {
        snprintf(p->why, sizeof p->why, "%s joins it with '%s', another branch", who, name);
        return false;
    }
    int64_t count = 1;
    for (size_t i = 0; i < tp->n_dims; i++) count *= tp->dims[i];
    if (count == 1) return true;
    /* per channel: [C] / [1, C] (last axis), or [C, 1, 1] / [1, C, 1, 1] (NCHW) */
    int axis = -1;
    for (size_t i = 0; i < tp->n_dims; i++)
        if (tp->dims[i] != 1) {
            if (axis >= 0) axis = -2;
            else axis = (int)i;
        }
    bool ok = axis >= 0 && tp->dims[axis] == p->channels;
    if (ok && p->nchw) ok = tp->n_dims - (size_t)axis == 3; /* [.., C, H=1, W=1] */
    if (ok && !p->nchw) ok = (size_t)axis == tp->n_dims - 1;
    if (!ok) {
        snprintf(p->why, sizeof p->why, "%s: its constant '%s' is not per channel", who, name);
        return false;
    }
    return add_edit(c, p, name, axis, 1, who);
}

static bool is_op(const Onnx__NodeProto *n, const char *const *ops) {
    if (!is_default_domain(n->domain)) return false;
    for (; *ops; ops++)
        if (!strcmp(n->op_type, *ops)) return true;
    return false;
}

static const char *const g_unary[] = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Softplus", "Softsign", "Identity", "Dropout", "Abs", "Neg", "Erf", "Gelu", "Mish", "Celu",
    "ThresholdedRelu", "Exp", "Sqrt", "Reciprocal", NULL};
static const char *const g_pool[] = {"MaxPool", "AveragePool", "GlobalAveragePool",
                                     "GlobalMaxPool", "LpPool", "GlobalLpPool", NULL};
static const char *const g_binary[] = {"Add", "Sub", "Mul", "Div", "Pow", NULL};

static bool plan_value(pctx *c, chan_plan *p, const char *v, int depth);

/* Elements of a constant operand: an initializer or the output of a Constant node (exporters
 * write the 0.5, 1 and sqrt 2 of GELU so); -1 when v is not a constant. */
static int64_t constant_count(pctx *c, const char *v) {
    const Onnx__TensorProto *tp = ifd_onnx_edit_constant(c->e, v);
    if (!tp) {
        long i = ifd_onnx_edit_producer(c->e, v);
        const Onnx__NodeProto *n = i >= 0 ? c->e->graph->node[i] : NULL;
        if (!n || !is_op(n, (const char *const[]){"Constant", NULL})) return -1;
        const Onnx__AttributeProto *a = ifd_onnx_edit_attr(n, "value");
        if (a && a->t) tp = a->t;
        else if (ifd_onnx_edit_attr(n, "value_float") || ifd_onnx_edit_attr(n, "value_int"))
            return 1;
        else return -1;
    }
    int64_t count = 1;
    for (size_t d = 0; d < tp->n_dims; d++) count *= tp->dims[d];
    return count;
}

/* Whether v is computed from tracked values only through channel-wise ops (the other operand
 * of x * (1 + erf(x / sqrt 2)) in an exported GELU), so joining it keeps the channels. */
static bool derived_from_tracked(pctx *c, const chan_plan *p, const char *v, int depth) {
    if (tracked(p, v)) return true;
    if (depth > 16 || constant_count(c, v) >= 0) return false;
    long i = ifd_onnx_edit_producer(c->e, v);
    if (i < 0) return false;
    const Onnx__NodeProto *n = c->e->graph->node[i];
    if (is_op(n, g_unary) && !is_op(n, (const char *const[]){"Clip", NULL}))
        return n->n_input >= 1 && derived_from_tracked(c, p, n->input[0], depth + 1);
    if (!is_op(n, g_binary) || n->n_input != 2) return false;
    bool any = false;
    for (int k = 0; k < 2; k++) {
        int64_t count = constant_count(c, n->input[k]);
        if (count >= 0) {
            if (count != 1) return false; /* a per-channel constant here is not sliced */
            continue;
        }
        if (!derived_from_tracked(c, p, n->input[k], depth + 1)) return false;
        any = true;
    }
    return any;
}

/* A node consuming the flattened output of a Conv chain: a Gemm/MatMul whose K rows come in
 * channel-major blocks of K / channels. */
static bool plan_flattened(pctx *c, chan_plan *p, const char *v, const char *who) {
    Onnx__GraphProto *g = c->e->graph;
    if (ifd_onnx_edit_is_graph_output(c->e, v)) {
        snprintf(p->why, sizeof p->why, "%s: its output is a graph output", who);
        return false;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        for (size_t s = 0; s < n->n_input; s++) {
            if (strcmp(n->input[s], v)) continue;
            char nwho[300];
            snprintf(nwho, sizeof nwho, "%s '%s'", n->op_type, n->name ? n->name : "");
            bool gemm = is_op(n, (const char *const[]){"Gemm", NULL});
            bool mm = is_op(n, (const char *const[]){"MatMul", NULL});
            if (s != 0 || !(gemm || mm) || n->n_input < 2 ||
                (gemm && ifd_onnx_edit_attr_int(n, "transA", 0))) {
                snprintf(p->why, sizeof p->why, "%s consumes the flattened channels", nwho);
                return false;
            }
            const Onnx__TensorProto *w = ifd_onnx_edit_constant(c->e, n->input[1]);
            bool tb = gemm && ifd_onnx_edit_attr_int(n, "transB", 0);
            if (!w || w->n_dims != 2) {
                snprintf(p->why, sizeof p->why, "%s: weight is not a constant 2-D tensor", nwho);
                return false;
            }
            int axis = tb ? 1 : 0;
            int64_t kdim = w->dims[axis];
            if (kdim % p->channels != 0) {
                snprintf(p->why, sizeof p->why,
                         "%s: %lld input features are not a multiple of %lld channels", nwho,
                         (long long)kdim, (long long)p->channels);
                return false;
            }
            if (!add_edit(c, p, n->input[1], axis, kdim / p->channels, nwho)) return false;
        }
    }
    return true;
}

/* Check every use of tracked value v can follow the channel removal; record the edits. */
static bool plan_value(pctx *c, chan_plan *p, const char *v, int depth) {
    Onnx__GraphProto *g = c->e->graph;
    if (depth > 64) {
        snprintf(p->why, sizeof p->why, "the chain of consumers is too long");
        return false;
    }
    if (tracked(p, v)) return true;
    if (p->n_tracked == MAX_TRACKED) {
        snprintf(p->why, sizeof p->why, "too many values carry the channels");
        return false;
    }
    p->tracked[p->n_tracked++] = v;
    if (ifd_onnx_edit_is_graph_output(c->e, v)) {
        snprintf(p->why, sizeof p->why, "its channels reach the graph output '%s'", v);
        return false;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *n = g->node[i];
        for (size_t s = 0; s < n->n_input; s++) {
            if (strcmp(n->input[s], v)) continue;
            char who[300];
            snprintf(who, sizeof who, "%s '%s'", n->op_type, n->name ? n->name : "");
            const char *out = n->n_output ? n->output[0] : "";
            if (is_op(n, g_unary) && s == 0) {
                if (!plan_value(c, p, out, depth + 1)) return false;
            } else if (is_op(n, (const char *const[]){"Clip", NULL})) {
                snprintf(p->why, sizeof p->why, "%s takes it as a bound", who);
                return false;
            } else if (is_op(n, g_pool) && s == 0 && p->nchw) {
                if (!plan_value(c, p, out, depth + 1)) return false;
            } else if (is_op(n, (const char *const[]){"BatchNormalization", NULL}) && s == 0 &&
                       n->n_input == 5) {
                for (int k = 1; k < 5; k++)
                    if (!add_edit(c, p, n->input[k], 0, 1, who)) return false;
                if (!plan_value(c, p, out, depth + 1)) return false;
            } else if (is_op(n, (const char *const[]){"PRelu", NULL}) && s == 0) {
                if (!elementwise_constant(c, p, n->input[1], who)) return false;
                if (!plan_value(c, p, out, depth + 1)) return false;
            } else if (is_op(n, g_binary) && n->n_input == 2) {
                const char *other = n->input[1 - s];
                if (constant_count(c, other) == 1) {
                    /* a scalar broadcasts to any number of channels */
                } else if (constant_count(c, other) < 0) {
                    if (!derived_from_tracked(c, p, other, 0)) {
                        snprintf(p->why, sizeof p->why, "%s joins it with '%s', another branch",
                                 who, other);
                        return false;
                    }
                } else if (!elementwise_constant(c, p, other, who)) {
                    return false;
                }
                if (!plan_value(c, p, out, depth + 1)) return false;
            } else if (is_op(n, (const char *const[]){"Conv", NULL}) && s == 0 && p->nchw) {
                if (ifd_onnx_edit_attr_int(n, "group", 1) != 1) {
                    snprintf(p->why, sizeof p->why, "%s is a grouped convolution", who);
                    return false;
                }
                if (!add_edit(c, p, n->input[1], 1, 1, who)) return false;
            } else if (is_op(n, (const char *const[]){"Flatten", NULL}) && s == 0 && p->nchw) {
                if (ifd_onnx_edit_attr_int(n, "axis", 1) != 1) {
                    snprintf(p->why, sizeof p->why, "%s does not flatten at axis 1", who);
                    return false;
                }
                if (!plan_flattened(c, p, out, who)) return false;
            } else if (!p->nchw && s == 0 &&
                       (is_op(n, (const char *const[]){"MatMul", NULL}) ||
                        (is_op(n, (const char *const[]){"Gemm", NULL}) &&
                         !ifd_onnx_edit_attr_int(n, "transA", 0)))) {
                const Onnx__TensorProto *w =
                    n->n_input > 1 ? ifd_onnx_edit_constant(c->e, n->input[1]) : NULL;
                if (!w || w->n_dims != 2) {
                    snprintf(p->why, sizeof p->why, "%s: weight is not a constant 2-D tensor",
                             who);
                    return false;
                }
                int axis = is_op(n, (const char *const[]){"Gemm", NULL}) &&
                                   ifd_onnx_edit_attr_int(n, "transB", 0)
                               ? 1
                               : 0;
                if (!add_edit(c, p, n->input[1], axis, 1, who)) return false;
            } else {
                snprintf(p->why, sizeof p->why, "%s consumes its channels", who);
                return false;
            }
        }
    }
    return true;
}

/* Keep the entries of `axis` (length channels * block) whose channel has keep[ch]. */
static ifd_status slice_tensor(const ifd_tensor *t, int axis, int64_t block, const bool *keep,
                               int64_t kept, ifd_tensor **out) {
    int64_t dims[IFD_MAX_RANK];
    memcpy(dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    dims[axis] = kept * block;
    ifd_status st = ifd_tensor_create(IFD_DTYPE_FLOAT, t->rank, dims, out);
    if (st) return st;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++) inner *= t->dims[i];
    const float *s = t->data;
    float *d = (*out)->data;
    const int64_t len = t->dims[axis];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < len; a++) {
            if (!keep[a / block]) continue;
            memcpy(d, s + (o * len + a) * inner, sizeof(float) * (size_t)inner);
            d += inner;
        }
    return IFD_OK;
}

static ifd_status apply_slice(pctx *c, const char *name, int axis, int64_t block,
                              const bool *keep, int64_t kept) {
    ifd_tensor *t = NULL, *s = NULL;
    ifd_status st = load_float(c, name, &t);
    if (!st) st = slice_tensor(t, axis, block, keep, kept, &s);
    if (!st) st = set_initializer(ifd_onnx_edit_constant(c->e, name), s);
    ifd_tensor_free(t);
    ifd_tensor_free(s);
    return st;
}

typedef struct chan_norm {
    double l1;
    int64_t index;
} chan_norm;

static int cmp_norm(const void *a, const void *b) {
    const chan_norm *x = a, *y = b;
    if (x->l1 != y->l1) return x->l1 < y->l1 ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static ifd_status prune_channels_of(pctx *c, player *l, chan_plan *p) {
    ifd_status st;
    ifd_tensor *w = NULL;
    bool *keep = NULL;
    chan_norm *norms = NULL;
    const Onnx__NodeProto *n = l->node;
    const bool tb = l->kind == P_GEMM && ifd_onnx_edit_attr_int(n, "transB", 0);
    /* the producer's own output axis of W: Conv [M, ...] and Gemm transB [N, K]: 0; else 1 */
    const int waxis = l->kind == P_CONV || tb ? 0 : 1;
    if ((st = load_float(c, l->w, &w))) return st;
    const int64_t ch = w->dims[waxis];
    l->channels_before = l->channels_after = ch;
    memset(p, 0, sizeof *p);
    p->channels = ch;
    p->nchw = l->kind == P_CONV;
    const int64_t drop = (int64_t)llround(c->o->sparsity * (double)ch);
    if (l->kind == P_CONV && ifd_onnx_edit_attr_int(n, "group", 1) != 1) {
        snprintf(p->why, sizeof p->why, "grouped convolution");
    } else if (drop <= 0) {
        snprintf(p->why, sizeof p->why, "%.3g of %lld channels rounds to none", c->o->sparsity,
                 (long long)ch);
    } else if (drop >= ch) {
        snprintf(p->why, sizeof p->why, "would remove all %lld channels", (long long)ch);
    } else if (n->n_output != 1) {
        snprintf(p->why, sizeof p->why, "has %zu outputs", n->n_output);
    } else {
        char who[300];
        snprintf(who, sizeof who, "its bias");
        bool ok = add_edit(c, p, l->w, waxis, 1, "its weight");
        if (ok && n->n_input > 2 && *n->input[2]) {
            const Onnx__TensorProto *b = ifd_onnx_edit_constant(c->e, n->input[2]);
            int64_t cnt = 1;
            for (size_t i = 0; b && i < b->n_dims; i++) cnt *= b->dims[i];
            if (l->kind == P_GEMM && b && cnt == 1)
                ; /* a scalar C broadcasts to any width */
            else
                ok = add_edit(c, p, n->input[2], b && b->n_dims ? (int)b->n_dims - 1 : 0, 1, who);
        }
        if (ok) ok = plan_value(c, p, n->output[0], 0);
        if (ok) p->why[0] = 0;
    }
    if (p->why[0]) {
        l->reason = ifd_strdup(p->why);
        st = l->reason ? IFD_OK : oom();
        goto out;
    }
    /* L1 norm of each output channel's weights */
    norms = ifd_calloc((size_t)ch + 1, sizeof *norms);
    keep = ifd_calloc((size_t)ch + 1, sizeof *keep);
    if (!norms || !keep) {
        st = oom();
        goto out;
    }
    const float *d = w->data;
    const int64_t per = w->count / ch;
    for (int64_t o = 0; o < ch; o++) norms[o].index = o;
    for (int64_t i = 0; i < w->count; i++) {
        int64_t o = waxis == 0 ? i / per : i % ch;
        norms[o].l1 += fabs((double)d[i]);
    }
    qsort(norms, (size_t)ch, sizeof *norms, cmp_norm);
    for (int64_t i = drop; i < ch; i++) keep[norms[i].index] = true;
    for (int i = 0; i < p->n_edits && !st; i++)
        st = apply_slice(c, p->edits[i].name, p->edits[i].axis, p->edits[i].block, keep,
                         ch - drop);
    if (st) goto out;
    l->pruned = true;
    l->channels_after = ch - drop;
    l->params_after = l->params_before / ch * (ch - drop);
out:
    ifd_tensor_free(w);
    ifd_free(keep);
    ifd_free(norms);
    return st;
}

static ifd_status prune_channels(pctx *c) {
    ifd_status st;
    chan_plan *p = ifd_malloc(sizeof *p);
    if (!p) return oom();
    for (size_t i = 0; i < c->nl; i++) {
        player *l = &c->l[i];
        if (!l->candidate) continue;
        /* params of this layer now (an earlier layer may have cut its inputs) */
        const Onnx__TensorProto *tp = ifd_onnx_edit_constant(c->e, l->w);
        int64_t count = 1;
        for (size_t d = 0; d < tp->n_dims; d++) count *= tp->dims[d];
        if ((st = prune_channels_of(c, l, p))) goto out;
        if (!l->pruned) l->params_after = count;
        else l->params_after = count / l->channels_before * l->channels_after;
    }
    /* shapes recorded for intermediate values may now be wrong: let readers infer them */
    for (size_t i = 0; i < c->e->graph->n_value_info; i++)
        onnx__value_info_proto__free_unpacked(c->e->graph->value_info[i], &ifd_pb_allocator);
    c->e->graph->n_value_info = 0;
    st = IFD_OK;
out:
    ifd_free(p);
    return st;
}

/* ---- entry point ----------------------------------------------------------------------------- */

static ifd_status check_options(const ifd_prune_options *o) {
    if (o->pattern == IFD_PRUNE_2_4) {
        if (o->sparsity != 0 && o->sparsity != 0.5)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                             "the 2:4 pattern keeps exactly half: --sparsity must be 0.5 "
                             "(or left out), not %g",
                             o->sparsity);
        if (o->scope == IFD_PRUNE_SCOPE_GLOBAL)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "--scope global applies to unstructured");
        return IFD_OK;
    }
    if (!(o->sparsity > 0 && o->sparsity < 1))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "sparsity %g is not in (0, 1)", o->sparsity);
    if (o->pattern == IFD_PRUNE_CHANNEL && o->scope == IFD_PRUNE_SCOPE_GLOBAL)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "--scope global applies to unstructured");
    if (o->pattern != IFD_PRUNE_UNSTRUCTURED && o->pattern != IFD_PRUNE_CHANNEL)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "unknown pattern %d", (int)o->pattern);
    return IFD_OK;
}

static void count_params(const ifd_onnx_edit *e, int64_t *total, int64_t *nonzero) {
    *total = *nonzero = 0;
    for (size_t i = 0; i < e->graph->n_initializer; i++) {
        const Onnx__TensorProto *tp = e->graph->initializer[i];
        ifd_tensor *t = NULL;
        if (!tp->has_data_type || tp->data_type != IFD_DTYPE_FLOAT) continue;
        if (ifd_onnx_edit_tensor(tp, &t)) {
            ifd_error_clear();
            continue;
        }
        *total += t->count;
        *nonzero += count_nonzero(t);
        ifd_tensor_free(t);
    }
}

static ifd_status fill_result(pctx *c, ifd_prune_result *r) {
    if (!(r->layers = ifd_calloc(c->nl + 1, sizeof *r->layers))) return oom();
    for (size_t i = 0; i < c->nl; i++) {
        const player *l = &c->l[i];
        ifd_prune_layer *rl = &r->layers[r->n_layers++];
        rl->pruned = l->pruned;
        r->n_pruned += l->pruned;
        rl->params_before = l->params_before;
        rl->params_after = l->params_after;
        rl->nonzero_before = l->nonzero_before;
        rl->nonzero_after = l->nonzero_after;
        rl->channels_before = l->channels_before;
        rl->channels_after = l->channels_after;
        if (!(rl->name = ifd_strdup(l->name)) || !(rl->op_type = ifd_strdup(kind_op(l->kind))) ||
            !(rl->weight = ifd_strdup(l->w)) || (l->reason && !(rl->reason = ifd_strdup(l->reason))))
            return oom();
    }
    return IFD_OK;
}

ifd_status ifd_prune_file(const char *in_path, const char *out_path,
                          const ifd_prune_options *options, ifd_prune_result **result) {
    ifd_status st;
    pctx c = {0};
    ifd_model *check = NULL;
    void *data = NULL;
    size_t size = 0;
    ifd_prune_result *r = NULL;
    if (result) *result = NULL;
    if (!in_path || !out_path || !options)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "input path, output path or options is NULL");
    if ((st = check_options(options))) return st;
    c.o = options;
    if (!(r = ifd_calloc(1, sizeof *r))) return oom();
    if ((st = ifd_onnx_edit_load_file(in_path, &c.e))) goto out;
    if ((st = ifd_onnx_edit_pack(c.e, &data, &size))) goto out;
    r->bytes_in = size;
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
    count_params(c.e, &r->params_before, &r->nonzero_before);
    if ((st = find_layers(&c))) goto out;
    size_t candidates = 0;
    for (size_t i = 0; i < c.nl; i++) candidates += c.l[i].candidate;
    if (candidates == 0) {
        if (c.nl == 0)
            st = ifd_error(IFD_ERR_UNSUPPORTED,
                           "nothing to prune: the model has no MatMul, Gemm or Conv node");
        else
            st = ifd_error(IFD_ERR_UNSUPPORTED, "nothing to prune: node '%s' (%s): %s%s",
                           c.l[0].name, kind_op(c.l[0].kind), c.l[0].reason,
                           c.nl > 1 ? " (and the others likewise; see the report)" : "");
        goto out;
    }
    if (options->pattern == IFD_PRUNE_CHANNEL)
        st = prune_channels(&c);
    else
        st = prune_weights(&c);
    if (st) goto out;
    if ((st = fill_result(&c, r))) goto out;
    if (r->n_pruned == 0) {
        const player *l = &c.l[0];
        for (size_t i = 0; i < c.nl; i++)
            if (c.l[i].candidate) {
                l = &c.l[i];
                break;
            }
        st = ifd_error(IFD_ERR_UNSUPPORTED, "nothing could be pruned: node '%s' (%s): %s",
                       l->name, kind_op(l->kind), l->reason ? l->reason : "not prunable");
        goto out;
    }
    if ((st = ifd_onnx_edit_remove_unused_initializers(c.e))) goto out;
    count_params(c.e, &r->params_after, &r->nonzero_after);
    /* What we write must load: check it here rather than leave a broken file behind. */
    if ((st = ifd_onnx_edit_pack(c.e, &data, &size))) goto out;
    r->bytes_out = size;
    if ((st = ifd_model_load_memory(data, size, NULL, &check))) {
        ifd_error_prefix(st, "internal error: the pruned model does not load");
        goto out;
    }
    ifd_model_free(check);
    check = NULL;
    st = ifd_onnx_edit_write_file(c.e, out_path);
out:
    ifd_free(data);
    ifd_onnx_edit_free(c.e);
    for (size_t i = 0; i < c.nl; i++) {
        ifd_free(c.l[i].name);
        ifd_free(c.l[i].reason);
    }
    ifd_free(c.l);
    if (result)
        *result = r;
    else
        ifd_prune_result_free(r);
    return st;
}
