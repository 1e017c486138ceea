/* Operator family: control flow (If, Loop, Scan). Bodies run through ifd_kernel_run_subgraph,
 * which binds outer-scope values from the enclosing frame. */
#include "ops/op.h"

#include <string.h>

/* Copy a tensor into node output `index`. */
static ifd_status emit(ifd_kernel_ctx *ctx, int index, const ifd_tensor *src) {
    ifd_tensor *y;
    ifd_status st = ifd_kernel_output(ctx, index, src->dtype, src->rank, src->dims, &y);
    if (st) return st;
    if (src->nbytes) memcpy(y->data, src->data, src->nbytes);
    return IFD_OK;
}

static void free_all(ifd_tensor **t, int n) {
    for (int i = 0; i < n; i++) {
        ifd_tensor_free(t[i]);
        t[i] = NULL;
    }
}

static ifd_status run_if(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *cond = ctx->inputs[0];
    if (cond->count < 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "condition is an empty tensor");
    const ifd_graph *g = ifd_attr_graph(ctx->node, ifd_tensor_get_i64(cond, 0) ? "then_branch"
                                                                              : "else_branch");
    if (!g) return ifd_kernel_error(ctx, IFD_ERR_CORRUPT_MODEL, "branch attribute missing");
    if (g->n_outputs != ctx->n_outputs)
        return ifd_kernel_error(ctx, IFD_ERR_CORRUPT_MODEL, "branch '%s' has %d outputs, the node %d",
                                g->name, g->n_outputs, ctx->n_outputs);
    ifd_tensor *outs[64] = {0};
    if (g->n_outputs > 64) return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "more than 64 outputs");
    st = ifd_kernel_run_subgraph(ctx, g, 0, NULL, g->n_outputs, outs);
    for (int i = 0; !st && i < g->n_outputs; i++) st = emit(ctx, i, outs[i]);
    free_all(outs, g->n_outputs);
    return st;
}

/* Per-iteration outputs stacked along a new axis `axis` (0 for Loop). */
typedef struct stacker {
    ifd_tensor **items;
    int n, cap;
} stacker;

static ifd_status stacker_push(stacker *s, ifd_tensor *t) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        ifd_tensor **n = ifd_realloc(s->items, (size_t)cap * sizeof *n);
        if (!n) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory stacking scan outputs");
        s->items = n;
        s->cap = cap;
    }
    s->items[s->n++] = t;
    return IFD_OK;
}

static void stacker_free(stacker *s) {
    free_all(s->items, s->n);
    ifd_free(s->items);
    memset(s, 0, sizeof *s);
}

/* Write the stacked items to output `index`: new axis at `axis`, items in order, or reversed. */
static ifd_status stacker_emit(ifd_kernel_ctx *ctx, int index, stacker *s, int axis, bool reverse,
                               const ifd_value_type *fallback) {
    ifd_tensor *y;
    if (s->n == 0) {
        /* no iteration: an empty tensor shaped like the body output, with 0 along the axis */
        int64_t dims[IFD_MAX_RANK] = {0};
        int rank = 1;
        ifd_dtype dt = fallback && fallback->dtype ? fallback->dtype : IFD_DTYPE_FLOAT;
        if (fallback && fallback->rank >= 0 && fallback->rank < IFD_MAX_RANK) {
            rank = fallback->rank + 1;
            for (int d = 0, k = 0; d < rank; d++)
                dims[d] = d == axis ? 0 : (fallback->dims[k] > 0 ? fallback->dims[k++] : (k++, 1));
        }
        return ifd_kernel_output(ctx, index, dt, rank, dims, &y);
    }
    const ifd_tensor *first = s->items[0];
    if (first->rank + 1 > IFD_MAX_RANK)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "scan output rank too large");
    if (axis < 0) axis += first->rank + 1;
    if (axis < 0 || axis > first->rank)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "scan output axis out of range");
    for (int i = 1; i < s->n; i++) {
        const ifd_tensor *t = s->items[i];
        bool same = t->dtype == first->dtype && t->rank == first->rank;
        for (int d = 0; same && d < t->rank; d++) same = t->dims[d] == first->dims[d];
        if (!same)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "scan output %d changes shape between iterations", index);
    }
    int64_t dims[IFD_MAX_RANK];
    for (int d = 0, k = 0; d <= first->rank; d++) dims[d] = d == axis ? s->n : first->dims[k++];
    ifd_status st = ifd_kernel_output(ctx, index, first->dtype, first->rank + 1, dims, &y);
    if (st) return st;
    /* outer = prod(dims[0:axis]), inner = prod(item dims[axis:]) bytes */
    size_t es = ifd_dtype_size(first->dtype);
    int64_t outer = 1;
    for (int d = 0; d < axis; d++) outer *= first->dims[d];
    size_t inner = outer ? first->nbytes / (size_t)outer : 0;
    unsigned char *dst = y->data;
    (void)es;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < s->n; i++) {
            const ifd_tensor *t = s->items[reverse ? s->n - 1 - i : i];
            memcpy(dst, (const unsigned char *)t->data + (size_t)o * inner, inner);
            dst += inner;
        }
    return IFD_OK;
}

static ifd_status run_loop(ifd_kernel_ctx *ctx) {
    const ifd_graph *body = ifd_attr_graph(ctx->node, "body");
    ifd_status st = IFD_OK;
    if (!body) return ifd_kernel_error(ctx, IFD_ERR_CORRUPT_MODEL, "body attribute missing");
    int n_carried = ctx->n_inputs - 2;
    int n_scan = body->n_outputs - 1 - n_carried;
    if (n_carried < 0 || n_scan < 0 || body->n_inputs != n_carried + 2 || n_carried > 60 ||
        n_scan > 60 || ctx->n_outputs > n_carried + n_scan)
        return ifd_kernel_error(ctx, IFD_ERR_CORRUPT_MODEL,
                                "body has %d inputs and %d outputs for %d loop-carried values",
                                body->n_inputs, body->n_outputs, n_carried);
    int64_t max_trip = INT64_MAX;
    if (ctx->inputs[0] && ctx->inputs[0]->count > 0) max_trip = ifd_tensor_get_i64(ctx->inputs[0], 0);
    bool cond = true;
    if (ctx->n_inputs > 1 && ctx->inputs[1] && ctx->inputs[1]->count > 0)
        cond = ifd_tensor_get_i64(ctx->inputs[1], 0) != 0;
    ifd_tensor *iter_t = NULL, *cond_t = NULL;
    ifd_tensor *carried[64] = {0}, *outs[128] = {0};
    stacker scans[64];
    memset(scans, 0, sizeof scans);
    if ((st = ifd_tensor_create(IFD_DTYPE_INT64, 0, NULL, &iter_t)) != IFD_OK) goto out;
    if ((st = ifd_tensor_create(IFD_DTYPE_BOOL, 0, NULL, &cond_t)) != IFD_OK) goto out;
    for (int i = 0; i < n_carried; i++) {
        if (!ctx->inputs[2 + i]) {
            st = ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "loop-carried input %d missing", i);
            goto out;
        }
        if ((st = ifd_tensor_clone(ctx->inputs[2 + i], &carried[i])) != IFD_OK) goto out;
    }
    for (int64_t it = 0; it < max_trip && cond; it++) {
        const ifd_tensor *in[66];
        *(int64_t *)iter_t->data = it;
        *(uint8_t *)cond_t->data = cond;
        in[0] = iter_t;
        in[1] = cond_t;
        for (int i = 0; i < n_carried; i++) in[2 + i] = carried[i];
        st = ifd_kernel_run_subgraph(ctx, body, n_carried + 2, in, body->n_outputs, outs);
        if (st) goto out;
        cond = outs[0]->count > 0 && ifd_tensor_get_i64(outs[0], 0) != 0;
        ifd_tensor_free(outs[0]);
        outs[0] = NULL;
        for (int i = 0; i < n_carried; i++) {
            ifd_tensor_free(carried[i]);
            carried[i] = outs[1 + i];
            outs[1 + i] = NULL;
        }
        for (int k = 0; k < n_scan; k++) {
            if ((st = stacker_push(&scans[k], outs[1 + n_carried + k])) != IFD_OK) goto out;
            outs[1 + n_carried + k] = NULL;
        }
    }
    for (int i = 0; i < n_carried && i < ctx->n_outputs; i++)
        if ((st = emit(ctx, i, carried[i])) != IFD_OK) goto out;
    for (int k = 0; k < n_scan && n_carried + k < ctx->n_outputs; k++) {
        const ifd_value_type *ty = &body->values[body->outputs[1 + n_carried + k]].type;
        if ((st = stacker_emit(ctx, n_carried + k, &scans[k], 0, false, ty)) != IFD_OK) goto out;
    }
out:
    free_all(outs, body->n_outputs < 128 ? body->n_outputs : 128);
    free_all(carried, n_carried);
    for (int k = 0; k < n_scan && k < 64; k++) stacker_free(&scans[k]);
    ifd_tensor_free(iter_t);
    ifd_tensor_free(cond_t);
    return st;
}

/* Slice `t` at index `i` along `axis` (the axis removed) into a new tensor. */
static ifd_status take_slice(const ifd_tensor *t, int axis, int64_t i, ifd_tensor **out) {
    int64_t dims[IFD_MAX_RANK];
    *out = NULL;
    if (t->rank < 1 || axis < 0 || axis >= t->rank || i < 0 || i >= t->dims[axis])
        return ifd_error(IFD_ERR_SHAPE, "cannot take slice %lld along axis %d of a rank-%d tensor",
                         (long long)i, axis, t->rank);
    for (int d = 0, k = 0; d < t->rank; d++)
        if (d != axis) dims[k++] = t->dims[d];
    ifd_status st = ifd_tensor_create(t->dtype, t->rank - 1, dims, out);
    if (st) return st;
    int64_t outer = 1;
    for (int d = 0; d < axis; d++) outer *= t->dims[d];
    size_t inner = (*out)->nbytes / (size_t)(outer ? outer : 1);
    const unsigned char *src = t->data;
    unsigned char *dst = (*out)->data;
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + (size_t)o * inner,
               src + ((size_t)o * (size_t)t->dims[axis] + (size_t)i) * inner, inner);
    return IFD_OK;
}

/* Scan, opset 9+: no batch axis; opset 8: batch axis 0 and an optional sequence_lens input. */
static ifd_status run_scan(ifd_kernel_ctx *ctx) {
    const ifd_graph *body = ifd_attr_graph(ctx->node, "body");
    ifd_status st = IFD_OK;
    if (!body) return ifd_kernel_error(ctx, IFD_ERR_CORRUPT_MODEL, "body attribute missing");
    bool v8 = ctx->opset < 9;
    int first = v8 ? 1 : 0; /* opset 8: input 0 is sequence_lens */
    int64_t n_scan_in = ifd_attr_int(ctx->node, "num_scan_inputs", 0);
    int n_in = ctx->n_inputs - first;
    int n_state = n_in - (int)n_scan_in;
    int n_scan_out = body->n_outputs - n_state;
    if (n_scan_in < 1 || n_state < 0 || n_scan_out < 0 || body->n_inputs != n_in || n_in > 60 ||
        n_scan_out > 60)
        return ifd_kernel_error(ctx, IFD_ERR_CORRUPT_MODEL,
                                "body has %d inputs and %d outputs for %lld scan inputs",
                                body->n_inputs, body->n_outputs, (long long)n_scan_in);
    size_t n_axes = 0, n_dirs = 0, n_oaxes = 0, n_odirs = 0;
    const int64_t *in_axes = ifd_attr_ints(ctx->node, "scan_input_axes", &n_axes);
    const int64_t *in_dirs = ifd_attr_ints(ctx->node, v8 ? "directions" : "scan_input_directions", &n_dirs);
    const int64_t *out_axes = ifd_attr_ints(ctx->node, "scan_output_axes", &n_oaxes);
    const int64_t *out_dirs = ifd_attr_ints(ctx->node, "scan_output_directions", &n_odirs);
    int64_t batch = 1;
    if (v8) {
        if (!ctx->inputs[first] || ctx->inputs[first]->rank < 1)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "missing batched input");
        batch = ctx->inputs[first]->dims[0];
    }
    ifd_tensor *state[64] = {0}, *outs[128] = {0}, *slices[64] = {0};
    ifd_tensor *batched_state[64] = {0};
    stacker scans[64];
    memset(scans, 0, sizeof scans);
    ifd_tensor **final_scan = NULL; /* opset 8: per batch, per scan output: stacked result */
    for (int64_t b = 0; b < batch; b++) {
        /* states for this batch element */
        for (int i = 0; i < n_state; i++) {
            const ifd_tensor *init = ctx->inputs[first + i];
            if (!init) {
                st = ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "state input %d missing", i);
                goto out;
            }
            st = v8 ? take_slice(init, 0, b, &state[i]) : ifd_tensor_clone(init, &state[i]);
            if (st) goto out;
        }
        int64_t seq_len = -1;
        int axes[64];
        ifd_tensor *scan_src[64] = {0}; /* per scan input, the (batch-sliced) source */
        for (int j = 0; j < n_scan_in; j++) {
            const ifd_tensor *x = ctx->inputs[first + n_state + j];
            if (!x) {
                st = ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "scan input %d missing", j);
                goto out;
            }
            if (v8) {
                st = take_slice(x, 0, b, &scan_src[j]);
                if (st) goto out;
            } else {
                st = ifd_tensor_clone(x, &scan_src[j]);
                if (st) goto out;
            }
            int64_t ax = (!v8 && in_axes && (size_t)j < n_axes) ? in_axes[j] : 0;
            if (ax < 0) ax += scan_src[j]->rank;
            if (ax < 0 || ax >= scan_src[j]->rank) {
                for (int k = 0; k <= j; k++) ifd_tensor_free(scan_src[k]);
                st = ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "scan input axis out of range");
                goto out;
            }
            axes[j] = (int)ax;
            int64_t len = scan_src[j]->dims[ax];
            if (seq_len >= 0 && len != seq_len) {
                for (int k = 0; k <= j; k++) ifd_tensor_free(scan_src[k]);
                st = ifd_kernel_error(ctx, IFD_ERR_SHAPE, "scan inputs differ in sequence length");
                goto out;
            }
            seq_len = len;
        }
        if (v8 && ctx->inputs[0] && ctx->inputs[0]->count > b) {
            int64_t len = ifd_tensor_get_i64(ctx->inputs[0], b);
            if (len < 0 || len > seq_len) {
                for (int j = 0; j < n_scan_in; j++) ifd_tensor_free(scan_src[j]);
                st = ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                      "sequence_lens[%lld] = %lld outside [0, %lld]", (long long)b,
                                      (long long)len, (long long)seq_len);
                goto out;
            }
            seq_len = len;
        }
        for (int64_t t = 0; t < seq_len && !st; t++) {
            const ifd_tensor *in[128];
            for (int i = 0; i < n_state; i++) in[i] = state[i];
            for (int j = 0; j < n_scan_in && !st; j++) {
                bool rev = in_dirs && (size_t)j < n_dirs && in_dirs[j] == 1;
                st = take_slice(scan_src[j], axes[j], rev ? seq_len - 1 - t : t, &slices[j]);
                in[n_state + j] = slices[j];
            }
            if (!st) st = ifd_kernel_run_subgraph(ctx, body, n_in, in, body->n_outputs, outs);
            free_all(slices, (int)n_scan_in);
            if (st) break;
            for (int i = 0; i < n_state; i++) {
                ifd_tensor_free(state[i]);
                state[i] = outs[i];
                outs[i] = NULL;
            }
            for (int k = 0; k < n_scan_out && !st; k++) {
                st = stacker_push(&scans[k], outs[n_state + k]);
                if (!st) outs[n_state + k] = NULL;
            }
        }
        for (int j = 0; j < n_scan_in; j++) ifd_tensor_free(scan_src[j]);
        if (st) goto out;
        if (!v8) {
            for (int i = 0; i < n_state; i++)
                if ((st = emit(ctx, i, state[i])) != IFD_OK) goto out;
            for (int k = 0; k < n_scan_out; k++) {
                int64_t ax = out_axes && (size_t)k < n_oaxes ? out_axes[k] : 0;
                bool rev = out_dirs && (size_t)k < n_odirs && out_dirs[k] == 1;
                const ifd_value_type *ty = &body->values[body->outputs[n_state + k]].type;
                if ((st = stacker_emit(ctx, n_state + k, &scans[k], (int)ax, rev, ty)) != IFD_OK)
                    goto out;
            }
        } else {
            /* opset 8: gather per-batch results; emitted after the batch loop */
            if (!final_scan) {
                size_t cnt;
                if (!ifd_mul_size((size_t)batch, (size_t)(n_scan_out + n_state), &cnt) ||
                    !(final_scan = ifd_calloc(cnt ? cnt : 1, sizeof *final_scan))) {
                    st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory in Scan");
                    goto out;
                }
            }
            int per = n_scan_out + n_state;
            for (int i = 0; i < n_state; i++) {
                final_scan[b * per + i] = state[i];
                state[i] = NULL;
            }
            for (int k = 0; k < n_scan_out; k++) {
                /* stack this batch element's iterations into one tensor */
                stacker *s = &scans[k];
                if (s->n == 0) continue;
                int64_t dims[IFD_MAX_RANK];
                dims[0] = s->n;
                for (int d = 0; d < s->items[0]->rank; d++) dims[d + 1] = s->items[0]->dims[d];
                ifd_tensor *t = NULL;
                if ((st = ifd_tensor_create(s->items[0]->dtype, s->items[0]->rank + 1, dims, &t)) != IFD_OK)
                    goto out;
                unsigned char *dst = t->data;
                for (int i = 0; i < s->n; i++) {
                    const ifd_tensor *it = s->items[out_dirs && (size_t)k < n_odirs && out_dirs[k] == 1 ? s->n - 1 - i : i];
                    if (it->nbytes * (size_t)s->n != t->nbytes) {
                        ifd_tensor_free(t);
                        st = ifd_kernel_error(ctx, IFD_ERR_SHAPE, "scan output changes shape");
                        goto out;
                    }
                    memcpy(dst, it->data, it->nbytes);
                    dst += it->nbytes;
                }
                final_scan[b * per + n_state + k] = t;
                stacker_free(s);
            }
        }
        for (int i = 0; i < n_state; i++) {
            ifd_tensor_free(state[i]);
            state[i] = NULL;
        }
        for (int k = 0; k < n_scan_out; k++) stacker_free(&scans[k]);
    }
    if (v8 && final_scan) {
        int per = n_scan_out + n_state;
        for (int o = 0; o < per && o < ctx->n_outputs; o++) {
            const ifd_tensor *f0 = final_scan[o];
            if (!f0) continue;
            int64_t dims[IFD_MAX_RANK];
            dims[0] = batch;
            for (int d = 0; d < f0->rank; d++) dims[d + 1] = f0->dims[d];
            ifd_tensor *y;
            if ((st = ifd_kernel_output(ctx, o, f0->dtype, f0->rank + 1, dims, &y)) != IFD_OK) goto out;
            for (int64_t b = 0; b < batch; b++) {
                const ifd_tensor *fb = final_scan[b * per + o];
                if (!fb || fb->nbytes != f0->nbytes) {
                    st = ifd_kernel_error(ctx, IFD_ERR_SHAPE, "batch results differ in shape");
                    goto out;
                }
                memcpy((unsigned char *)y->data + (size_t)b * f0->nbytes, fb->data, fb->nbytes);
            }
        }
    }
out:
    if (final_scan) {
        free_all(final_scan, (int)(batch * (n_scan_out + n_state)));
        ifd_free(final_scan);
    }
    free_all(outs, body->n_outputs < 128 ? body->n_outputs : 128);
    free_all(state, n_state);
    free_all(batched_state, n_state);
    for (int k = 0; k < n_scan_out && k < 64; k++) stacker_free(&scans[k]);
    return st;
}

const ifd_op_def ifd_ops_control[] = {
    {"", "If", 1, run_if, NULL, NULL, IFD_OP_NO_CONSTANT_FOLD},
    {"", "Loop", 1, run_loop, NULL, NULL, IFD_OP_NO_CONSTANT_FOLD},
    {"", "Scan", 8, run_scan, NULL, NULL, IFD_OP_NO_CONSTANT_FOLD},
    {0},
};
