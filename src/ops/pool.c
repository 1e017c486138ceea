/* Operator family: pool (MaxPool, AveragePool, LpPool, the Global* pools, MaxUnpool,
 * MaxRoiPool, RoiAlign, Col2Im).
 *
 * Pooling works plane by plane (N*C planes in parallel). 2-D float max pooling hands each
 * thread's range of planes to one vector kernel (kernels/conv.h), which sets up the column
 * geometry once for all of them; 2-D average pooling accumulates whole output rows with
 * vectorized row operations; everything else (Indices,
 * LpPool, 1-D/3-D, double) takes a generic N-d window walk. Types without a float path
 * (float16, bfloat16, int8, uint8) convert to float and back, which is exact for max. */
#include "ops/op.h"

#include "kernels/conv.h"

#include <math.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------- */



static bool to_float_ok(ifd_dtype t) {
    return t == IFD_DTYPE_FLOAT16 || t == IFD_DTYPE_BFLOAT16 || t == IFD_DTYPE_INT8 ||
           t == IFD_DTYPE_UINT8;
}

static float load_as_f32(const ifd_tensor *t, int64_t i) {
    switch (t->dtype) {
    case IFD_DTYPE_FLOAT16: return ifd_fp16_to_f32(((const uint16_t *)t->data)[i]);
    case IFD_DTYPE_BFLOAT16: return ifd_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case IFD_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case IFD_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    default: return ((const float *)t->data)[i];
    }
}

static void store_from_f32(ifd_tensor *t, int64_t i, float v) {
    switch (t->dtype) {
    case IFD_DTYPE_FLOAT16: ((uint16_t *)t->data)[i] = ifd_f32_to_fp16(v); break;
    case IFD_DTYPE_BFLOAT16: ((uint16_t *)t->data)[i] = ifd_f32_to_bf16(v); break;
    case IFD_DTYPE_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case IFD_DTYPE_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    default: ((float *)t->data)[i] = v; break;
    }
}

/* Scratch is one block per kernel call: carve n aligned pieces (NULL for size 0) from it. */
static ifd_status scratch_multi(ifd_kernel_ctx *ctx, int n, const size_t *sizes, void **ptrs) {
    size_t total = 0, offs[8];
    for (int i = 0; i < n; i++) {
        size_t off = (total + 63) & ~(size_t)63;
        if (off < total || !ifd_add_size(off, sizes[i], &total))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "scratch buffers too large");
        offs[i] = off;
    }
    char *base = total ? ifd_kernel_scratch(ctx, total) : NULL;
    if (total && !base)
        return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "out of memory for %zu scratch bytes", total);
    for (int i = 0; i < n; i++) ptrs[i] = sizes[i] ? base + offs[i] : NULL;
    return IFD_OK;
}

/* Bytes of a float32 staging copy for a tensor of this type and count (0: used directly). */
static size_t stage_bytes(ifd_dtype t, int64_t count) {
    return t == IFD_DTYPE_FLOAT || t == IFD_DTYPE_DOUBLE ? 0 : (size_t)count * sizeof(float);
}

static ifd_status check_input_type(ifd_kernel_ctx *ctx, const ifd_tensor *x, bool allow_int) {
    if (x->dtype == IFD_DTYPE_FLOAT || x->dtype == IFD_DTYPE_DOUBLE) return IFD_OK;
    if (!to_float_ok(x->dtype) ||
        (!allow_int && (x->dtype == IFD_DTYPE_INT8 || x->dtype == IFD_DTYPE_UINT8)))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %d", x->dtype);
    return IFD_OK;
}

/* Input data as float or double (double inputs); other types converted into buf. */
static const void *input_compute(const ifd_tensor *x, void *buf, bool *is_double) {
    *is_double = x->dtype == IFD_DTYPE_DOUBLE;
    if (x->dtype == IFD_DTYPE_FLOAT || x->dtype == IFD_DTYPE_DOUBLE) return x->data;
    float *d = buf;
    for (int64_t i = 0; i < x->count; i++) d[i] = load_as_f32(x, i);
    return d;
}

/* Output buffer in the compute type: the output itself, or buf for output_finish. */
static void *output_compute(ifd_tensor *y, void *buf) {
    return y->dtype == IFD_DTYPE_FLOAT || y->dtype == IFD_DTYPE_DOUBLE ? y->data : buf;
}

static ifd_status shape_count(ifd_kernel_ctx *ctx, int rank, const int64_t *dims, int64_t *n) {
    size_t b;
    if (ifd_shape_count(rank, dims, n) || !ifd_mul_size((size_t)*n, sizeof(double), &b))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output too large");
    return IFD_OK;
}

static void output_finish(ifd_tensor *y, const void *data) {
    if (y->dtype == IFD_DTYPE_FLOAT || y->dtype == IFD_DTYPE_DOUBLE) return;
    for (int64_t i = 0; i < y->count; i++) store_from_f32(y, i, ((const float *)data)[i]);
}

/* ---- windowed pooling ------------------------------------------------------------------------ */

enum { POOL_MAX, POOL_AVG, POOL_LP };

typedef struct pool_job {
    ifd_conv_geom g;
    int64_t pe[IFD_CONV_MAX_ND]; /* end padding: bounds the windows counted by count_include_pad */
    int kind;
    bool include_pad;
    double p;
    int storage_order;
    bool is_double;
    const void *x;
    void *y;
    int64_t *ind;     /* Indices output or NULL */
    const float *col_inv; /* 2-D average fast path: per output column, nothing or 1/count */
} pool_job;

/* Taps k in [0, K) with lo <= start + k*d < hi. */
static void tap_range(int64_t start, int64_t d, int64_t K, int64_t lo, int64_t hi, int64_t *k0,
                      int64_t *k1) {
    int64_t a = start >= lo ? 0 : (lo - start + d - 1) / d;
    int64_t b = hi - 1 - start < 0 ? 0 : (hi - 1 - start) / d + 1;
    if (b > K) b = K;
    if (a > b) a = b;
    *k0 = a;
    *k1 = b;
}

#define DEFINE_POOL_GENERIC(T, NAME)                                                            \
    static void NAME(const pool_job *j, int64_t plane) {                                        \
        const ifd_conv_geom *g = &j->g;                                                         \
        int nd = g->nd;                                                                         \
        const T *x = (const T *)j->x + plane * g->in_size;                                      \
        T *y = (T *)j->y + plane * g->out_size;                                                 \
        int64_t *ind = j->ind ? j->ind + plane * g->out_size : NULL;                            \
        int64_t istr[IFD_CONV_MAX_ND], cstr[IFD_CONV_MAX_ND], oc[IFD_CONV_MAX_ND];              \
        int64_t k0[IFD_CONV_MAX_ND], k1[IFD_CONV_MAX_ND], st[IFD_CONV_MAX_ND], kc[IFD_CONV_MAX_ND]; \
        istr[nd - 1] = 1;                                                                       \
        cstr[0] = 1;                                                                            \
        for (int i = nd - 2; i >= 0; i--) istr[i] = istr[i + 1] * g->in[i + 1];                 \
        for (int i = 1; i < nd; i++) cstr[i] = cstr[i - 1] * g->in[i - 1];                      \
        memset(oc, 0, sizeof oc);                                                               \
        for (int64_t p = 0; p < g->out_size; p++) {                                             \
            int64_t count = 1;                                                                  \
            bool empty = false;                                                                 \
            for (int i = 0; i < nd; i++) {                                                      \
                st[i] = oc[i] * g->s[i] - g->pb[i];                                             \
                tap_range(st[i], g->d[i], g->k[i], 0, g->in[i], &k0[i], &k1[i]);                \
                if (k1[i] <= k0[i]) empty = true;                                               \
                int64_t a, b;                                                                   \
                if (j->include_pad)                                                             \
                    tap_range(st[i], g->d[i], g->k[i], -g->pb[i], g->in[i] + j->pe[i], &a, &b); \
                else                                                                            \
                    a = k0[i], b = k1[i];                                                       \
                count *= b - a;                                                                 \
            }                                                                                   \
            double acc = j->kind == POOL_MAX ? -INFINITY : 0.0;                                 \
            int64_t best = -1;                                                                  \
            if (!empty) {                                                                       \
                memcpy(kc, k0, sizeof(int64_t) * (size_t)nd);                                   \
                for (;;) {                                                                      \
                    int64_t off = 0;                                                            \
                    for (int i = 0; i < nd; i++) off += (st[i] + kc[i] * g->d[i]) * istr[i];    \
                    double v = (double)x[off];                                                  \
                    if (j->kind == POOL_MAX) { /* first maximum wins; NaN is skipped */         \
                        if (best < 0 ? v == v : v > acc) {                                      \
                            acc = v;                                                            \
                            best = off;                                                         \
                        }                                                                       \
                    } else if (j->kind == POOL_AVG)                                             \
                        acc += v;                                                               \
                    else                                                                        \
                        acc += pow(fabs(v), j->p);                                              \
                    int i = nd - 1;                                                             \
                    for (; i >= 0; i--) {                                                       \
                        if (++kc[i] < k1[i]) break;                                             \
                        kc[i] = k0[i];                                                          \
                    }                                                                           \
                    if (i < 0) break;                                                           \
                }                                                                               \
            }                                                                                   \
            if (j->kind == POOL_AVG)                                                            \
                acc = acc / (double)count;                                                      \
            else if (j->kind == POOL_LP)                                                        \
                acc = pow(acc, 1.0 / j->p);                                                     \
            y[p] = (T)acc;                                                                      \
            if (ind) {                                                                          \
                int64_t flat = 0;                                                               \
                if (best >= 0 && j->storage_order == 1) {                                       \
                    int64_t rem = best;                                                         \
                    for (int i = 0; i < nd; i++) {                                              \
                        flat += (rem / istr[i]) * cstr[i];                                      \
                        rem %= istr[i];                                                         \
                    }                                                                           \
                } else                                                                          \
                    flat = best < 0 ? 0 : best;                                                 \
                ind[p] = plane * g->in_size + flat;                                             \
            }                                                                                   \
            for (int i = nd - 1; i >= 0; i--) {                                                 \
                if (++oc[i] < g->out[i]) break;                                                 \
                oc[i] = 0;                                                                      \
            }                                                                                   \
        }                                                                                       \
    }

DEFINE_POOL_GENERIC(float, pool_generic_f32)
DEFINE_POOL_GENERIC(double, pool_generic_f64)

/* 2-D float max/average without Indices: whole output rows at a time. */
static void pool2d_f32(const pool_job *j, int64_t plane) {
    const ifd_conv_geom *g = &j->g;
    int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1];
    int64_t KH = g->k[0], KW = g->k[1], sh = g->s[0], sw = g->s[1], dh = g->d[0], dw = g->d[1];
    int64_t pt = g->pb[0], pl = g->pb[1];
    const float *x = (const float *)j->x + plane * g->in_size;
    float *y = (float *)j->y + plane * g->out_size;
    bool is_max = j->kind == POOL_MAX;
    for (int64_t oh = 0; oh < OH; oh++) {
        float *yr = y + oh * OW;
        float init = is_max ? -INFINITY : 0.f;
        for (int64_t ow = 0; ow < OW; ow++) yr[ow] = init;
        int64_t start = oh * sh - pt, k0, k1, a, b;
        tap_range(start, dh, KH, 0, H, &k0, &k1);
        if (j->include_pad)
            tap_range(start, dh, KH, -pt, H + j->pe[0], &a, &b);
        else
            a = k0, b = k1;
        for (int64_t kh = k0; kh < k1; kh++) {
            const float *xr = x + (start + kh * dh) * W;
            for (int64_t kw = 0; kw < KW; kw++) {
                /* output columns whose tap kw lands inside the row */
                int64_t off = kw * dw - pl, lo, hi;
                lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
                hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
                if (hi > OW) hi = OW;
                if (hi <= lo) continue;
                if (is_max)
                    ifd_conv_row_max(yr + lo, xr + lo * sw + off, hi - lo, sw);
                else
                    ifd_conv_row_add(yr + lo, xr + lo * sw + off, hi - lo, sw);
            }
        }
        if (!is_max) {
            float rinv = 1.0f / (float)(b - a);
            for (int64_t ow = 0; ow < OW; ow++) yr[ow] *= rinv * j->col_inv[ow];
        }
    }
}

static void pool_worker(void *arg, int64_t begin, int64_t end) {
    const pool_job *j = arg;
    /* 2-D float max pooling: the vector kernel takes the whole range of planes at once, so its
     * set-up (per column geometry) is paid once, not per (possibly 8x8) plane */
    if (j->g.nd == 2 && j->kind == POOL_MAX && !j->ind && !j->is_double &&
        ifd_conv_max_pool_2d(&j->g, (const float *)j->x + begin * j->g.in_size,
                             (float *)j->y + begin * j->g.out_size, end - begin))
        return;
    for (int64_t p = begin; p < end; p++) {
        if (j->col_inv || (j->g.nd == 2 && j->kind == POOL_MAX && !j->ind && !j->is_double))
            pool2d_f32(j, p);
        else if (j->is_double)
            pool_generic_f64(j, p);
        else
            pool_generic_f32(j, p);
    }
}

static ifd_status run_pool(ifd_kernel_ctx *ctx, int kind) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0))) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int nd = X->rank - 2;
    if (X->rank < 3 || nd > IFD_CONV_MAX_ND)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input must have rank 3..%d, got %d",
                                IFD_CONV_MAX_ND + 2, X->rank);
    pool_job j;
    memset(&j, 0, sizeof j);
    j.kind = kind;
    j.g.nd = nd;
    int64_t pads[2 * IFD_CONV_MAX_ND];
    bool has_k;
    int auto_pad = 0;
    if ((st = ifd_attr_ints_n(ctx, "kernel_shape", nd, 1, j.g.k, &has_k)) ||
        (st = ifd_attr_ints_n(ctx, "strides", nd, 1, j.g.s, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "dilations", nd, 1, j.g.d, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "pads", 2 * nd, 0, pads, NULL)) || (st = ifd_parse_auto_pad(ctx, &auto_pad)))
        return st;
    if (!has_k) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "kernel_shape is required");
    bool ceil_mode = ifd_attr_int(ctx->node, "ceil_mode", 0) != 0;
    j.include_pad = kind == POOL_AVG && ifd_attr_int(ctx->node, "count_include_pad", 0) != 0;
    j.storage_order = (int)ifd_attr_int(ctx->node, "storage_order", 0);
    if (kind == POOL_LP) {
        const ifd_attr *pa = ifd_attr_find(ctx->node, "p");
        j.p = !pa ? 2.0 : pa->type == IFD_ATTR_FLOAT ? (double)pa->f : (double)pa->i;
        if (!(j.p > 0))
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "p must be positive");
    }
    for (int i = 0; i < nd; i++) {
        j.g.in[i] = X->dims[i + 2];
        if (!ifd_conv_out_dim(auto_pad, j.g.in[i], j.g.k[i], j.g.s[i], j.g.d[i], pads[i],
                              pads[i + nd], ceil_mode, &j.g.out[i], &j.g.pb[i]))
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "invalid window along spatial dim %d (input %lld, kernel "
                                    "%lld, stride %lld, dilation %lld)",
                                    i, (long long)j.g.in[i], (long long)j.g.k[i],
                                    (long long)j.g.s[i], (long long)j.g.d[i]);
        if (auto_pad == 1 || auto_pad == 2) {
            int64_t total = (j.g.out[i] - 1) * j.g.s[i] + (j.g.k[i] - 1) * j.g.d[i] + 1 - j.g.in[i];
            j.pe[i] = IFD_MAX(total, 0) - j.g.pb[i];
        } else
            j.pe[i] = auto_pad == 3 ? 0 : pads[i + nd];
    }
    if (!ifd_conv_geom_finish(&j.g))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "pooling sizes overflow");
    int64_t dims[IFD_MAX_RANK];
    dims[0] = X->dims[0];
    dims[1] = X->dims[1];
    for (int i = 0; i < nd; i++) dims[i + 2] = j.g.out[i];
    int64_t ycount;
    if ((st = check_input_type(ctx, X, kind == POOL_MAX)) ||
        (st = shape_count(ctx, X->rank, dims, &ycount)))
        return st;
    bool avg2d = kind == POOL_AVG && nd == 2 && X->dtype != IFD_DTYPE_DOUBLE;
    size_t sizes[3] = {stage_bytes(X->dtype, X->count), stage_bytes(X->dtype, ycount),
                       avg2d ? (size_t)j.g.out[1] * sizeof(float) : 0};
    void *bufs[3];
    if ((st = scratch_multi(ctx, 3, sizes, bufs))) return st;
    ifd_tensor *Y, *I = NULL;
    if ((st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, dims, &Y))) return st;
    if (kind == POOL_MAX && ctx->n_outputs > 1 &&
        (st = ifd_kernel_output(ctx, 1, IFD_DTYPE_INT64, X->rank, dims, &I)))
        return st;
    if (!Y) return IFD_OK;
    void *yd = output_compute(Y, bufs[1]);
    j.x = input_compute(X, bufs[0], &j.is_double);
    j.y = yd;
    j.ind = I ? I->data : NULL;
    if (avg2d) {
        float *ci = bufs[2];
        for (int64_t ow = 0; ow < j.g.out[1]; ow++) {
            int64_t start = ow * j.g.s[1] - j.g.pb[1], a, b;
            if (j.include_pad)
                tap_range(start, j.g.d[1], j.g.k[1], -j.g.pb[1], j.g.in[1] + j.pe[1], &a, &b);
            else
                tap_range(start, j.g.d[1], j.g.k[1], 0, j.g.in[1], &a, &b);
            ci[ow] = 1.0f / (float)(b - a);
        }
        j.col_inv = ci;
    }
    int64_t planes = X->dims[0] * X->dims[1];
    if (Y->count > 0)
        ifd_parallel_for(ctx->pool, planes, IFD_MAX(1, 16384 / IFD_MAX(j.g.out_size * j.g.k_size, 1)),
                         pool_worker, &j);
    output_finish(Y, yd);
    return IFD_OK;
}

static ifd_status run_max_pool(ifd_kernel_ctx *ctx) { return run_pool(ctx, POOL_MAX); }
static ifd_status run_average_pool(ifd_kernel_ctx *ctx) { return run_pool(ctx, POOL_AVG); }
static ifd_status run_lp_pool(ifd_kernel_ctx *ctx) { return run_pool(ctx, POOL_LP); }

/* ---- global pooling -------------------------------------------------------------------------- */

typedef struct global_job {
    int kind;
    double p;
    bool is_double;
    int64_t size; /* spatial elements per plane */
    const void *x;
    void *y;
} global_job;

static void global_worker(void *arg, int64_t begin, int64_t end) {
    const global_job *j = arg;
    for (int64_t c = begin; c < end; c++) {
        double r;
        if (j->is_double) {
            const double *x = (const double *)j->x + c * j->size;
            double acc = j->kind == POOL_MAX ? -INFINITY : 0.0;
            for (int64_t i = 0; i < j->size; i++) {
                if (j->kind == POOL_MAX)
                    acc = x[i] > acc ? x[i] : acc;
                else
                    acc += j->kind == POOL_AVG ? x[i] : pow(fabs(x[i]), j->p);
            }
            r = acc;
        } else {
            const float *x = (const float *)j->x + c * j->size;
            if (j->kind == POOL_MAX)
                r = ifd_conv_max(x, j->size);
            else if (j->kind == POOL_AVG)
                r = ifd_conv_sum(x, j->size);
            else if (j->p == 2.0) {
                double acc = 0;
                for (int64_t i = 0; i < j->size; i++) acc += (double)x[i] * x[i];
                r = acc;
            } else {
                double acc = 0;
                for (int64_t i = 0; i < j->size; i++) acc += pow(fabs((double)x[i]), j->p);
                r = acc;
            }
        }
        if (j->kind == POOL_AVG)
            r /= (double)j->size;
        else if (j->kind == POOL_LP)
            r = pow(r, 1.0 / j->p);
        if (j->is_double)
            ((double *)j->y)[c] = r;
        else
            ((float *)j->y)[c] = (float)r;
    }
}

static ifd_status run_global(ifd_kernel_ctx *ctx, int kind) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0))) return st;
    const ifd_tensor *X = ctx->inputs[0];
    if (X->rank < 2)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input must have rank >= 2, got %d", X->rank);
    global_job j = {kind, 2.0, false, 1, NULL, NULL};
    if (kind == POOL_LP) {
        const ifd_attr *pa = ifd_attr_find(ctx->node, "p");
        j.p = !pa ? 2.0 : pa->type == IFD_ATTR_FLOAT ? (double)pa->f : (double)pa->i;
    }
    int64_t dims[IFD_MAX_RANK];
    dims[0] = X->dims[0];
    dims[1] = X->dims[1];
    for (int i = 2; i < X->rank; i++) {
        dims[i] = 1;
        j.size *= X->dims[i];
    }
    int64_t ycount;
    if ((st = check_input_type(ctx, X, kind == POOL_MAX)) ||
        (st = shape_count(ctx, X->rank, dims, &ycount)))
        return st;
    size_t sizes[2] = {stage_bytes(X->dtype, X->count), stage_bytes(X->dtype, ycount)};
    void *bufs[2];
    if ((st = scratch_multi(ctx, 2, sizes, bufs))) return st;
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, dims, &Y))) return st;
    if (!Y) return IFD_OK;
    void *yd = output_compute(Y, bufs[1]);
    j.x = input_compute(X, bufs[0], &j.is_double);
    j.y = yd;
    ifd_parallel_for(ctx->pool, Y->count, IFD_MAX(1, 32768 / IFD_MAX(j.size, 1)), global_worker, &j);
    output_finish(Y, yd);
    return IFD_OK;
}

static ifd_status run_global_max(ifd_kernel_ctx *ctx) { return run_global(ctx, POOL_MAX); }
static ifd_status run_global_avg(ifd_kernel_ctx *ctx) { return run_global(ctx, POOL_AVG); }
static ifd_status run_global_lp(ifd_kernel_ctx *ctx) { return run_global(ctx, POOL_LP); }

/* ---- MaxUnpool --------------------------------------------------------------------------------- */

static size_t elem_size(ifd_dtype t) {
    switch (t) {
    case IFD_DTYPE_DOUBLE: case IFD_DTYPE_INT64: case IFD_DTYPE_UINT64: return 8;
    case IFD_DTYPE_FLOAT: case IFD_DTYPE_INT32: case IFD_DTYPE_UINT32: return 4;
    case IFD_DTYPE_FLOAT16: case IFD_DTYPE_BFLOAT16: case IFD_DTYPE_INT16: case IFD_DTYPE_UINT16:
        return 2;
    case IFD_DTYPE_INT8: case IFD_DTYPE_UINT8: case IFD_DTYPE_BOOL: return 1;
    default: return 0;
    }
}

static ifd_status run_max_unpool(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1))) return st;
    const ifd_tensor *X = ctx->inputs[0], *I = ctx->inputs[1];
    const ifd_tensor *S = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    int nd = X->rank - 2;
    size_t es = elem_size(X->dtype);
    if (X->rank < 3 || nd > IFD_CONV_MAX_ND || !es)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input rank %d or type %d",
                                X->rank, X->dtype);
    if (I->count != X->count || (I->dtype != IFD_DTYPE_INT64 && I->dtype != IFD_DTYPE_INT32))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "indices must be int64 with the shape of X");
    int64_t ks[IFD_CONV_MAX_ND], ss[IFD_CONV_MAX_ND], pads[2 * IFD_CONV_MAX_ND], dims[IFD_MAX_RANK];
    bool has_k;
    if ((st = ifd_attr_ints_n(ctx, "kernel_shape", nd, 1, ks, &has_k)) ||
        (st = ifd_attr_ints_n(ctx, "strides", nd, 1, ss, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "pads", 2 * nd, 0, pads, NULL)))
        return st;
    if (!has_k) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "kernel_shape is required");
    /* Indices address the inferred unpooled shape; an explicit output_shape places that
     * result in its leading corner (zeros elsewhere). */
    int64_t inferred[IFD_MAX_RANK], inferred_count = 1;
    inferred[0] = X->dims[0];
    inferred[1] = X->dims[1];
    for (int i = 0; i < nd; i++)
        inferred[i + 2] = (X->dims[i + 2] - 1) * ss[i] + ks[i] - pads[i] - pads[i + nd];
    for (int i = 0; i < X->rank; i++) {
        if (inferred[i] < 0 || !ifd_mul_i64(inferred_count, inferred[i], &inferred_count))
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "invalid unpooled shape");
        dims[i] = inferred[i];
    }
    if (S) {
        if (S->rank != 1 || S->dims[0] != X->rank)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "output_shape must have %d values", X->rank);
        for (int i = 0; i < X->rank; i++) dims[i] = ifd_tensor_get_i64(S, i);
    }
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, dims, &Y))) return st;
    if (!Y) return IFD_OK;
    if (Y->nbytes) memset(Y->data, 0, Y->nbytes); /* data may be NULL when empty */
    for (int64_t i = 0; i < X->count; i++) {
        int64_t idx = ifd_tensor_get_i64(I, i);
        if (idx < 0 || idx >= inferred_count)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "index %lld out of range for an unpooled size of %lld",
                                    (long long)idx, (long long)inferred_count);
        int64_t o = 0, stride = 1;
        bool inside = true;
        for (int d = X->rank - 1; d >= 0; d--) {
            int64_t c = idx % inferred[d];
            idx /= inferred[d];
            if (c >= dims[d]) inside = false;
            o += c * stride;
            stride *= dims[d];
        }
        if (inside)
            memcpy((char *)Y->data + (size_t)o * es, (const char *)X->data + (size_t)i * es, es);
    }
    return IFD_OK;
}

/* ---- MaxRoiPool -------------------------------------------------------------------------------- */

static ifd_status run_max_roi_pool(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1))) return st;
    const ifd_tensor *X = ctx->inputs[0], *R = ctx->inputs[1];
    if (X->rank != 4 || R->rank != 2 || R->dims[1] != 5)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "expected X [N,C,H,W] and rois [R,5]");
    size_t n = 0;
    const int64_t *ps = ifd_attr_ints(ctx->node, "pooled_shape", &n);
    if (!ps || n != 2 || ps[0] < 1 || ps[1] < 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "pooled_shape must be 2 positive values");
    float scale = ifd_attr_float(ctx->node, "spatial_scale", 1.0f);
    int64_t N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3], PH = ps[0], PW = ps[1];
    int64_t dims[4] = {R->dims[0], C, PH, PW};
    int64_t ycount;
    if ((st = check_input_type(ctx, X, false)) || (st = shape_count(ctx, 4, dims, &ycount)))
        return st;
    size_t sizes[2] = {stage_bytes(X->dtype, X->count), stage_bytes(X->dtype, ycount)};
    void *bufs[2];
    if ((st = scratch_multi(ctx, 2, sizes, bufs))) return st;
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, X->dtype, 4, dims, &Y))) return st;
    if (!Y) return IFD_OK;
    bool is_double;
    const void *xd = input_compute(X, bufs[0], &is_double);
    void *yd = output_compute(Y, bufs[1]);
    for (int64_t r = 0; r < R->dims[0]; r++) {
        int64_t b = (int64_t)ifd_tensor_get_f64(R, r * 5);
        if (b < 0 || b >= N)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "roi %lld has batch index %lld",
                                    (long long)r, (long long)b);
        int64_t x1 = (int64_t)roundf((float)ifd_tensor_get_f64(R, r * 5 + 1) * scale);
        int64_t y1 = (int64_t)roundf((float)ifd_tensor_get_f64(R, r * 5 + 2) * scale);
        int64_t x2 = (int64_t)roundf((float)ifd_tensor_get_f64(R, r * 5 + 3) * scale);
        int64_t y2 = (int64_t)roundf((float)ifd_tensor_get_f64(R, r * 5 + 4) * scale);
        int64_t rh = IFD_MAX(y2 - y1 + 1, 1), rw = IFD_MAX(x2 - x1 + 1, 1);
        float bh = (float)rh / (float)PH, bw = (float)rw / (float)PW;
        for (int64_t c = 0; c < C; c++) {
            int64_t plane = (b * C + c) * H * W;
            for (int64_t ph = 0; ph < PH; ph++)
                for (int64_t pw = 0; pw < PW; pw++) {
                    int64_t hs = (int64_t)floorf((float)ph * bh) + y1;
                    int64_t he = (int64_t)ceilf((float)(ph + 1) * bh) + y1;
                    int64_t ws = (int64_t)floorf((float)pw * bw) + x1;
                    int64_t we = (int64_t)ceilf((float)(pw + 1) * bw) + x1;
                    hs = IFD_MIN(IFD_MAX(hs, 0), H), he = IFD_MIN(IFD_MAX(he, 0), H);
                    ws = IFD_MIN(IFD_MAX(ws, 0), W), we = IFD_MIN(IFD_MAX(we, 0), W);
                    double m = (he <= hs || we <= ws) ? 0.0 : -INFINITY;
                    for (int64_t h = hs; h < he; h++)
                        for (int64_t w = ws; w < we; w++) {
                            double v = is_double ? ((const double *)xd)[plane + h * W + w]
                                                 : ((const float *)xd)[plane + h * W + w];
                            if (v > m) m = v;
                        }
                    int64_t o = ((r * C + c) * PH + ph) * PW + pw;
                    if (is_double)
                        ((double *)yd)[o] = m;
                    else
                        ((float *)yd)[o] = (float)m;
                }
        }
    }
    output_finish(Y, yd);
    return IFD_OK;
}

/* ---- RoiAlign ---------------------------------------------------------------------------------- */

typedef struct roi_sample {
    int64_t pos[4];
    double w[4];
} roi_sample;

/* Adaptive sampling grids are capped per dimension so a huge ROI cannot demand unbounded
 * scratch (the reference would sample ceil(roi / bins) points). */
#define ROI_GRID_CAP 256

typedef struct roi_job {
    const void *x;
    void *y;
    bool is_double, is_max, half_pixel;
    int64_t N, C, H, W, PH, PW, sampling;
    double scale;
    const ifd_tensor *rois, *batch;
    roi_sample *samples; /* per worker: max_grid samples of one bin */
    int64_t max_grid;
    int64_t nworkers, nrois;
} roi_job;

static int64_t grid_count(double v) {
    if (!(v > 0)) return 0;
    v = ceil(v);
    return v > ROI_GRID_CAP ? ROI_GRID_CAP : (int64_t)v;
}

/* ROI r in feature-map coordinates (start x/y, size w/h) and its sampling grid per bin. */
static void roi_box(const roi_job *j, int64_t r, double *x1, double *y1, double *rw, double *rh,
                    int64_t *gh, int64_t *gw) {
    double off = j->half_pixel ? 0.5 : 0.0;
    *x1 = ifd_tensor_get_f64(j->rois, r * 4) * j->scale - off;
    *y1 = ifd_tensor_get_f64(j->rois, r * 4 + 1) * j->scale - off;
    double x2 = ifd_tensor_get_f64(j->rois, r * 4 + 2) * j->scale - off;
    double y2 = ifd_tensor_get_f64(j->rois, r * 4 + 3) * j->scale - off;
    *rw = x2 - *x1;
    *rh = y2 - *y1;
    if (!j->half_pixel) { /* malformed ROIs become 1x1 */
        *rw = *rw > 1.0 ? *rw : 1.0;
        *rh = *rh > 1.0 ? *rh : 1.0;
    }
    *gh = j->sampling > 0 ? j->sampling : grid_count(*rh / (double)j->PH);
    *gw = j->sampling > 0 ? j->sampling : grid_count(*rw / (double)j->PW);
}

static void roi_one(const roi_job *j, int64_t r, roi_sample *pc) {
    double x1, y1, rw, rh;
    int64_t gh, gw;
    roi_box(j, r, &x1, &y1, &rw, &rh, &gh, &gw);
    double bh = rh / (double)j->PH, bw = rw / (double)j->PW;
    double count = (double)IFD_MAX(gh * gw, 1);
    int64_t H = j->H, W = j->W, b = ifd_tensor_get_i64(j->batch, r), per_bin = gh * gw;
    for (int64_t ph = 0; ph < j->PH; ph++)
        for (int64_t pw = 0; pw < j->PW; pw++) {
            /* bilinear taps of this bin's samples, shared by all channels */
            int64_t ns = 0;
            for (int64_t iy = 0; iy < gh; iy++) {
                double yy = y1 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                for (int64_t ix = 0; ix < gw; ix++, ns++) {
                    double xx = x1 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                    roi_sample *s = &pc[ns];
                    if (H < 1 || W < 1 ||
                        !(yy >= -1.0 && yy <= (double)H && xx >= -1.0 && xx <= (double)W)) {
                        memset(s, 0, sizeof *s);
                        continue;
                    }
                    double y = yy > 0 ? yy : 0, x = xx > 0 ? xx : 0;
                    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
                    if (yl >= H - 1) {
                        yh = yl = H - 1;
                        y = (double)yl;
                    } else
                        yh = yl + 1;
                    if (xl >= W - 1) {
                        xh = xl = W - 1;
                        x = (double)xl;
                    } else
                        xh = xl + 1;
                    double ly = y - (double)yl, lx = x - (double)xl, hy = 1 - ly, hx = 1 - lx;
                    s->pos[0] = yl * W + xl, s->pos[1] = yl * W + xh;
                    s->pos[2] = yh * W + xl, s->pos[3] = yh * W + xh;
                    s->w[0] = hy * hx, s->w[1] = hy * lx, s->w[2] = ly * hx, s->w[3] = ly * lx;
                }
            }
            for (int64_t c = 0; c < j->C; c++) {
                int64_t plane = (b * j->C + c) * H * W;
                double acc = 0;
                for (int64_t q = 0; q < per_bin; q++) {
                    double v[4];
                    for (int t = 0; t < 4; t++)
                        v[t] = pc[q].w[t] * (j->is_double ? ((const double *)j->x)[plane + pc[q].pos[t]]
                                                          : ((const float *)j->x)[plane + pc[q].pos[t]]);
                    if (j->is_max) {
                        double m = v[0];
                        for (int t = 1; t < 4; t++) m = v[t] > m ? v[t] : m;
                        acc = q == 0 ? m : (m > acc ? m : acc);
                    } else
                        acc += v[0] + v[1] + v[2] + v[3];
                }
                if (!j->is_max) acc /= count;
                int64_t o = ((r * j->C + c) * j->PH + ph) * j->PW + pw;
                if (j->is_double)
                    ((double *)j->y)[o] = acc;
                else
                    ((float *)j->y)[o] = (float)acc;
            }
        }
}

static void roi_worker(void *arg, int64_t begin, int64_t end) {
    const roi_job *j = arg;
    for (int64_t wi = begin; wi < end; wi++) {
        int64_t r0 = wi * j->nrois / j->nworkers, r1 = (wi + 1) * j->nrois / j->nworkers;
        for (int64_t r = r0; r < r1; r++) roi_one(j, r, j->samples + wi * j->max_grid);
    }
}

static ifd_status run_roi_align(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)) ||
        (st = ifd_kernel_require_input(ctx, 2)))
        return st;
    const ifd_tensor *X = ctx->inputs[0], *R = ctx->inputs[1], *B = ctx->inputs[2];
    if (X->rank != 4 || R->rank != 2 || R->dims[1] != 4 || B->rank != 1 || B->dims[0] != R->dims[0])
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "expected X [N,C,H,W], rois [R,4] and batch_indices [R]");
    roi_job j;
    memset(&j, 0, sizeof j);
    j.N = X->dims[0], j.C = X->dims[1], j.H = X->dims[2], j.W = X->dims[3];
    j.PH = ifd_attr_int(ctx->node, "output_height", 1);
    j.PW = ifd_attr_int(ctx->node, "output_width", 1);
    j.sampling = ifd_attr_int(ctx->node, "sampling_ratio", 0);
    j.scale = ifd_attr_float(ctx->node, "spatial_scale", 1.0f);
    const char *mode = ifd_attr_string(ctx->node, "mode", "avg");
    const char *ctm = ifd_attr_string(ctx->node, "coordinate_transformation_mode",
                                      ctx->opset >= 16 ? "half_pixel" : "output_half_pixel");
    if (strcmp(mode, "avg") && strcmp(mode, "max"))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode);
    if (strcmp(ctm, "half_pixel") && strcmp(ctm, "output_half_pixel"))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "unknown coordinate_transformation_mode '%s'", ctm);
    j.is_max = !strcmp(mode, "max");
    j.half_pixel = !strcmp(ctm, "half_pixel");
    if (j.PH < 1 || j.PW < 1 || j.PH > (1 << 20) || j.PW > (1 << 20) || j.sampling < 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "invalid output size or sampling_ratio");
    for (int64_t r = 0; r < R->dims[0]; r++) {
        int64_t b = ifd_tensor_get_i64(B, r);
        if (b < 0 || b >= j.N)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "batch index %lld out of range",
                                    (long long)b);
    }
    if (j.sampling > ROI_GRID_CAP)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "sampling_ratio %lld too large",
                                (long long)j.sampling);
    j.rois = R;
    j.batch = B;
    j.max_grid = 1; /* samples per bin, the largest over the ROIs */
    for (int64_t r = 0; r < R->dims[0]; r++) {
        double x1, y1, rw, rh;
        int64_t gh, gw;
        roi_box(&j, r, &x1, &y1, &rw, &rh, &gh, &gw);
        j.max_grid = IFD_MAX(j.max_grid, gh * gw);
    }
    j.nrois = R->dims[0];
    int64_t dims[4] = {R->dims[0], j.C, j.PH, j.PW};
    int64_t ycount;
    if ((st = check_input_type(ctx, X, false)) || (st = shape_count(ctx, 4, dims, &ycount)))
        return st;
    j.nworkers = IFD_MAX(1, IFD_MIN(ifd_thread_pool_size(ctx->pool), j.nrois));
    size_t sizes[3] = {stage_bytes(X->dtype, X->count), stage_bytes(X->dtype, ycount), 0};
    if (!ifd_mul_size(sizeof(roi_sample), (size_t)j.max_grid, &sizes[2]) ||
        !ifd_mul_size(sizes[2], (size_t)j.nworkers, &sizes[2]))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "RoiAlign sampling grid too large");
    void *bufs[3];
    if ((st = scratch_multi(ctx, 3, sizes, bufs))) return st;
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, X->dtype, 4, dims, &Y))) return st;
    if (!Y) return IFD_OK;
    void *yd = output_compute(Y, bufs[1]);
    j.x = input_compute(X, bufs[0], &j.is_double);
    j.y = yd;
    j.samples = bufs[2];
    if (j.nrois > 0) ifd_parallel_for(ctx->pool, j.nworkers, 1, roi_worker, &j);
    output_finish(Y, yd);
    return IFD_OK;
}

/* ---- Col2Im ------------------------------------------------------------------------------------ */

static ifd_status run_col2im(ifd_kernel_ctx *ctx) {
    ifd_status st;
    for (int i = 0; i < 3; i++)
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *X = ctx->inputs[0], *IS = ctx->inputs[1], *BS = ctx->inputs[2];
    if (X->rank != 3 || IS->rank != 1 || BS->rank != 1 || IS->dims[0] != BS->dims[0] ||
        IS->dims[0] < 1 || IS->dims[0] > IFD_CONV_MAX_ND)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "expected input [N, C*prod(block), L] and 1-D image/block shapes");
    int nd = (int)IS->dims[0];
    ifd_conv_geom g;
    memset(&g, 0, sizeof g);
    g.nd = nd;
    int64_t pads[2 * IFD_CONV_MAX_ND];
    if ((st = ifd_attr_ints_n(ctx, "strides", nd, 1, g.s, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "dilations", nd, 1, g.d, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "pads", 2 * nd, 0, pads, NULL)))
        return st;
    for (int i = 0; i < nd; i++) {
        g.in[i] = ifd_tensor_get_i64(IS, i);
        g.k[i] = ifd_tensor_get_i64(BS, i);
        if (!ifd_conv_out_dim(0, g.in[i], g.k[i], g.s[i], g.d[i], pads[i], pads[i + nd], false,
                              &g.out[i], &g.pb[i]))
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "invalid block along dim %d", i);
    }
    if (!ifd_conv_geom_finish(&g) || g.k_size < 1)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "invalid image/block shape");
    if (X->dims[1] % g.k_size != 0 || X->dims[2] != g.out_size)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "input dims %lldx%lld do not match %lld blocks of %lld elements",
                                (long long)X->dims[1], (long long)X->dims[2],
                                (long long)g.out_size, (long long)g.k_size);
    int64_t N = X->dims[0], C = X->dims[1] / g.k_size, dims[IFD_MAX_RANK];
    dims[0] = N;
    dims[1] = C;
    for (int i = 0; i < nd; i++) dims[i + 2] = g.in[i];
    int64_t ycount;
    if ((st = check_input_type(ctx, X, false)) || (st = shape_count(ctx, nd + 2, dims, &ycount)))
        return st;
    bool f32 = X->dtype == IFD_DTYPE_FLOAT;
    size_t sizes[2] = {f32 ? 0 : (size_t)X->count * sizeof(float),
                       f32 ? 0 : (size_t)ycount * sizeof(float)};
    void *bufs[2];
    if ((st = scratch_multi(ctx, 2, sizes, bufs))) return st;
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, X->dtype, nd + 2, dims, &Y))) return st;
    if (!Y) return IFD_OK;
    const float *xd = X->data;
    float *yd = Y->data;
    if (!f32) {
        float *d = bufs[0];
        for (int64_t i = 0; i < X->count; i++) d[i] = (float)ifd_tensor_get_f64(X, i);
        xd = d;
        yd = bufs[1];
    }
    memset(yd, 0, (size_t)Y->count * sizeof(float));
    if (Y->count > 0) ifd_conv_col2im(&g, xd, N * C, yd);
    if (Y->dtype == IFD_DTYPE_DOUBLE)
        for (int64_t i = 0; i < Y->count; i++) ((double *)Y->data)[i] = yd[i];
    else
        output_finish(Y, yd);
    return IFD_OK;
}

const ifd_op_def ifd_ops_pool[] = {
    {"", "MaxPool", 1, run_max_pool, NULL, NULL, 0},
    {"", "AveragePool", 1, run_average_pool, NULL, NULL, 0},
    {"", "LpPool", 1, run_lp_pool, NULL, NULL, 0},
    {"", "GlobalMaxPool", 1, run_global_max, NULL, NULL, 0},
    {"", "GlobalAveragePool", 1, run_global_avg, NULL, NULL, 0},
    {"", "GlobalLpPool", 1, run_global_lp, NULL, NULL, 0},
    {"", "MaxUnpool", 9, run_max_unpool, NULL, NULL, 0},
    {"", "MaxRoiPool", 1, run_max_roi_pool, NULL, NULL, 0},
    {"", "RoiAlign", 10, run_roi_align, NULL, NULL, 0},
    {"", "Col2Im", 18, run_col2im, NULL, NULL, 0},
    {0},
};
