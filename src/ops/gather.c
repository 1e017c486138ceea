/* Operator family: gather. Index-driven data movement: Gather, GatherElements, GatherND,
 * Scatter, ScatterElements, ScatterND, TensorScatter, OneHot, Compress, NonZero.
 *
 * Data is moved dtype-agnostically by element size; only the scatter reductions (add, mul,
 * max, min) look at values. Indices are validated and normalized (negative -> from the end)
 * into int64 scratch before any data is touched, so a bad index is an error, never an
 * out-of-bounds access. */
#include "ops/op.h"

#include <math.h>
#include <string.h>

#define GATHER_CHUNK_BYTES ((int64_t)32 * 1024)

/* ---- helpers -------------------------------------------------------------------------------- */

static ifd_status require_index_type(const ifd_kernel_ctx *ctx, const ifd_tensor *t,
                                     const char *what) {
    if (t->dtype != IFD_DTYPE_INT64 && t->dtype != IFD_DTYPE_INT32)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%s must be int32 or int64, not %s",
                                what, ifd_dtype_name(t->dtype));
    return IFD_OK;
}

static int64_t prod(const int64_t *dims, int from, int to) {
    int64_t n = 1;
    for (int i = from; i < to; i++) n *= dims[i];
    return n;
}

/* Index i of an int32/int64 tensor, normalized against dim; false when out of range. */
static inline bool norm_index(const ifd_tensor *t, int64_t i, int64_t dim, int64_t *out) {
    int64_t v = t->dtype == IFD_DTYPE_INT64 ? ((const int64_t *)t->data)[i]
                                            : ((const int32_t *)t->data)[i];
    if (v < 0) v += dim;
    *out = v;
    return v >= 0 && v < dim;
}

static ifd_status index_error(const ifd_kernel_ctx *ctx, const ifd_tensor *t, int64_t i,
                              int64_t dim) {
    return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                            "index %lld (at position %lld) is out of range for a dimension of "
                            "length %lld", (long long)ifd_tensor_get_i64(t, i), (long long)i,
                            (long long)dim);
}

/* Copies one element of es bytes. */
static inline void copy_elem(char *d, const char *s, size_t es) {
    switch (es) {
    case 1: *d = *s; break;
    case 2: memcpy(d, s, 2); break;
    case 4: memcpy(d, s, 4); break;
    case 8: memcpy(d, s, 8); break;
    default: memcpy(d, s, es); break;
    }
}

/* ---- scatter reductions ---------------------------------------------------------------------- */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

/* dst[0..n) = dst op src */
typedef void (*combine_fn)(void *dst, const void *src, int64_t n);

#define DEF_MINMAX(NAME, T)                                                                      \
    static void max_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) dp[i] = sp[i] > dp[i] ? sp[i] : dp[i];                   \
    }                                                                                            \
    static void min_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) dp[i] = sp[i] < dp[i] ? sp[i] : dp[i];                   \
    }

#define DEF_INT_COMBINE(NAME, T)                                                                 \
    static void add_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) dp[i] = (T)(dp[i] + sp[i]);                              \
    }                                                                                            \
    static void mul_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) dp[i] = (T)(dp[i] * sp[i]);                              \
    }                                                                                            \
    DEF_MINMAX(NAME, T)

/* Unsigned arithmetic for the signed types too: wraps like NumPy instead of overflowing. */
DEF_INT_COMBINE(u8, uint8_t)
DEF_INT_COMBINE(u16, uint16_t)
DEF_INT_COMBINE(u32, uint32_t)
DEF_INT_COMBINE(u64, uint64_t)
DEF_MINMAX(i8, int8_t)
DEF_MINMAX(i16, int16_t)
DEF_MINMAX(i32, int32_t)
DEF_MINMAX(i64, int64_t)

/* Floats: max/min propagate NaN like np.maximum/np.minimum. */
#define DEF_FLOAT_COMBINE(NAME, T, LOAD, STORE)                                                  \
    static void add_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) dp[i] = STORE(LOAD(dp[i]) + LOAD(sp[i]));                \
    }                                                                                            \
    static void mul_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) dp[i] = STORE(LOAD(dp[i]) * LOAD(sp[i]));                \
    }                                                                                            \
    static void max_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) {                                                        \
            double a = LOAD(dp[i]), b = LOAD(sp[i]);                                             \
            if (isnan(b) || b > a) dp[i] = sp[i];                                                \
        }                                                                                        \
    }                                                                                            \
    static void min_##NAME(void *d, const void *s, int64_t n) {                                  \
        T *restrict dp = d;                                                                      \
        const T *restrict sp = s;                                                                \
        for (int64_t i = 0; i < n; i++) {                                                        \
            double a = LOAD(dp[i]), b = LOAD(sp[i]);                                             \
            if (isnan(b) || b < a) dp[i] = sp[i];                                                \
        }                                                                                        \
    }
#define ID_(x) (x)
DEF_FLOAT_COMBINE(f32, float, ID_, ID_)
DEF_FLOAT_COMBINE(f64, double, ID_, ID_)
DEF_FLOAT_COMBINE(f16, uint16_t, ifd_fp16_to_f32, ifd_f32_to_fp16)
DEF_FLOAT_COMBINE(bf16, uint16_t, ifd_bf16_to_f32, ifd_f32_to_bf16)

static combine_fn pick_combine(ifd_dtype dt, int red) {
#define PICK_(a, m, x, n)                                                                        \
    return red == RED_ADD ? a : red == RED_MUL ? m : red == RED_MAX ? x : n
    switch (dt) {
    case IFD_DTYPE_FLOAT: PICK_(add_f32, mul_f32, max_f32, min_f32);
    case IFD_DTYPE_DOUBLE: PICK_(add_f64, mul_f64, max_f64, min_f64);
    case IFD_DTYPE_FLOAT16: PICK_(add_f16, mul_f16, max_f16, min_f16);
    case IFD_DTYPE_BFLOAT16: PICK_(add_bf16, mul_bf16, max_bf16, min_bf16);
    case IFD_DTYPE_UINT8: PICK_(add_u8, mul_u8, max_u8, min_u8);
    case IFD_DTYPE_UINT16: PICK_(add_u16, mul_u16, max_u16, min_u16);
    case IFD_DTYPE_UINT32: PICK_(add_u32, mul_u32, max_u32, min_u32);
    case IFD_DTYPE_UINT64: PICK_(add_u64, mul_u64, max_u64, min_u64);
    case IFD_DTYPE_INT8: PICK_(add_u8, mul_u8, max_i8, min_i8);
    case IFD_DTYPE_INT16: PICK_(add_u16, mul_u16, max_i16, min_i16);
    case IFD_DTYPE_INT32: PICK_(add_u32, mul_u32, max_i32, min_i32);
    case IFD_DTYPE_INT64: PICK_(add_u64, mul_u64, max_i64, min_i64);
    default: return NULL;
    }
#undef PICK_
}

/* The reduction attribute; reductions exist from opset 16 (add, mul) and 18 (max, min). */
static ifd_status get_reduction(const ifd_kernel_ctx *ctx, ifd_dtype dt, int *red,
                                combine_fn *fn) {
    const char *s = ifd_attr_string(ctx->node, "reduction", "none");
    *fn = NULL;
    if (!strcmp(s, "none")) *red = RED_NONE;
    else if (!strcmp(s, "add")) *red = RED_ADD;
    else if (!strcmp(s, "mul")) *red = RED_MUL;
    else if (!strcmp(s, "max")) *red = RED_MAX;
    else if (!strcmp(s, "min")) *red = RED_MIN;
    else
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown reduction '%s'", s);
    if (*red != RED_NONE && !(*fn = pick_combine(dt, *red)))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "reduction '%s' on %s is not supported",
                                s, ifd_dtype_name(dt));
    return IFD_OK;
}

/* ---- Gather --------------------------------------------------------------------------------- */

typedef struct gather_arg {
    const char *src;
    char *dst;
    const int64_t *idx; /* normalized, [m] */
    int64_t m, axis_dim;
    size_t run; /* bytes per gathered slice */
} gather_arg;

/* Units are (outer, m) pairs: each copies one slice of `run` bytes. */
static void gather_chunk(void *arg, int64_t begin, int64_t end) {
    const gather_arg *a = arg;
    size_t run = a->run;
    int64_t o = begin / a->m, j = begin % a->m;
    for (int64_t u = begin; u < end;) {
        const char *src = a->src + (size_t)(o * a->axis_dim) * run;
        char *dst = a->dst + (size_t)u * run;
        int64_t stop = IFD_MIN(a->m, j + (end - u));
        switch (run) {
        case 1:
            for (int64_t k = j; k < stop; k++) dst[k - j] = src[a->idx[k]];
            break;
        case 2:
            for (int64_t k = j; k < stop; k++) memcpy(dst + 2 * (k - j), src + 2 * a->idx[k], 2);
            break;
        case 4:
            for (int64_t k = j; k < stop; k++) memcpy(dst + 4 * (k - j), src + 4 * a->idx[k], 4);
            break;
        case 8:
            for (int64_t k = j; k < stop; k++) memcpy(dst + 8 * (k - j), src + 8 * a->idx[k], 8);
            break;
        default:
            for (int64_t k = j; k < stop; k++)
                memcpy(dst + (size_t)(k - j) * run, src + (size_t)a->idx[k] * run, run);
            break;
        }
        u += stop - j;
        j = 0;
        o++;
    }
}

static ifd_status run_gather(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *ind = ctx->inputs[1];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es)) ||
        (st = require_index_type(ctx, ind, "indices")))
        return st;
    if (x->rank < 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "data must have rank >= 1");
    int axis;
    if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 0), x->rank, &axis)))
        return st;
    int r = x->rank - 1 + ind->rank;
    if (r > IFD_MAX_RANK)
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output rank %d exceeds %d", r, IFD_MAX_RANK);
    int64_t dims[IFD_MAX_RANK];
    int k = 0;
    for (int i = 0; i < axis; i++) dims[k++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++) dims[k++] = ind->dims[i];
    for (int i = axis + 1; i < x->rank; i++) dims[k++] = x->dims[i];
    int64_t A = x->dims[axis], m = ind->count;
    int64_t *idx = ifd_kernel_scratch(ctx, sizeof(int64_t) * (size_t)IFD_MAX(m, (int64_t)1));
    if (!idx) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "scratch for %lld indices",
                                      (long long)m);
    for (int64_t i = 0; i < m; i++)
        if (!norm_index(ind, i, A, &idx[i])) return index_error(ctx, ind, i, A);
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    gather_arg a = {x->data, y->data, idx, m, A,
                    (size_t)prod(x->dims, axis + 1, x->rank) * es};
    int64_t units = prod(x->dims, 0, axis) * m;
    ifd_parallel_for(ctx->pool, units,
                     IFD_MAX((int64_t)1, GATHER_CHUNK_BYTES / (int64_t)a.run), gather_chunk, &a);
    return ifd_kernel_finish_move(ctx, y);
}

/* ---- GatherElements / ScatterElements / Scatter --------------------------------------------- */

/* Element offsets into data for each position of indices (same rank, indices' own shape),
 * with the axis coordinate taken from indices. */
static ifd_status element_offsets(const ifd_kernel_ctx *ctx, const ifd_tensor *data,
                                  const ifd_tensor *ind, int axis, int64_t *offs) {
    int r = data->rank;
    if (ind->rank != r)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "indices have rank %d but data has rank %d",
                                ind->rank, r);
    for (int i = 0; i < r; i++)
        if (i != axis && ind->dims[i] > data->dims[i]) {
            char a[256], b[256];
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "indices shape %s exceeds data shape %s at axis %d",
                                    ifd_shape_str(r, ind->dims, a, sizeof a),
                                    ifd_shape_str(r, data->dims, b, sizeof b), i);
        }
    int64_t dstr[IFD_MAX_RANK], coord[IFD_MAX_RANK] = {0};
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        dstr[i] = acc;
        acc *= data->dims[i];
    }
    int64_t A = data->dims[axis], base = 0, n = ind->count;
    for (int64_t p = 0; p < n; p++) {
        int64_t v;
        if (!norm_index(ind, p, A, &v)) return index_error(ctx, ind, p, A);
        offs[p] = base + v * dstr[axis];
        for (int i = r - 1; i >= 0; i--) {
            if (i != axis) base += dstr[i];
            if (++coord[i] < ind->dims[i]) break;
            if (i != axis) base -= coord[i] * dstr[i];
            coord[i] = 0;
        }
    }
    return IFD_OK;
}

static ifd_status run_gather_elements(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *ind = ctx->inputs[1];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es)) ||
        (st = require_index_type(ctx, ind, "indices")))
        return st;
    if (x->rank < 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "data must have rank >= 1");
    int axis;
    if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 0), x->rank, &axis)))
        return st;
    int64_t n = ind->count;
    int64_t *offs = ifd_kernel_scratch(ctx, sizeof(int64_t) * (size_t)IFD_MAX(n, (int64_t)1));
    if (!offs) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "scratch");
    if ((st = element_offsets(ctx, x, ind, axis, offs))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, ind->rank, ind->dims, &y)) || !y) return st;
    const char *s = x->data;
    char *d = y->data;
    switch (es) {
    case 4:
        for (int64_t i = 0; i < n; i++) memcpy(d + 4 * i, s + 4 * offs[i], 4);
        break;
    case 8:
        for (int64_t i = 0; i < n; i++) memcpy(d + 8 * i, s + 8 * offs[i], 8);
        break;
    default:
        for (int64_t i = 0; i < n; i++) copy_elem(d + (size_t)i * es, s + (size_t)offs[i] * es, es);
        break;
    }
    return IFD_OK;
}

static ifd_status run_scatter_elements(ifd_kernel_ctx *ctx) {
    ifd_status st;
    for (int i = 0; i < 3; i++)
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *x = ctx->inputs[0], *ind = ctx->inputs[1], *upd = ctx->inputs[2];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es)) ||
        (st = require_index_type(ctx, ind, "indices")))
        return st;
    if (x->rank < 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "data must have rank >= 1");
    if (upd->dtype != x->dtype || upd->rank != ind->rank ||
        memcmp(upd->dims, ind->dims, sizeof(int64_t) * (size_t)ind->rank))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "updates must have the data's type and the indices' shape");
    int red;
    combine_fn fn;
    if ((st = get_reduction(ctx, x->dtype, &red, &fn))) return st;
    int axis;
    if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 0), x->rank, &axis)))
        return st;
    int64_t n = ind->count;
    int64_t *offs = ifd_kernel_scratch(ctx, sizeof(int64_t) * (size_t)IFD_MAX(n, (int64_t)1));
    if (!offs) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "scratch");
    if ((st = element_offsets(ctx, x, ind, axis, offs))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, x->rank, x->dims, &y)) || !y) return st;
    if (x->nbytes) memcpy(y->data, x->data, x->nbytes);
    char *d = y->data;
    const char *u = upd->data;
    for (int64_t i = 0; i < n; i++) {
        if (fn)
            fn(d + (size_t)offs[i] * es, u + (size_t)i * es, 1);
        else
            copy_elem(d + (size_t)offs[i] * es, u + (size_t)i * es, es);
    }
    return IFD_OK;
}

/* ---- GatherND / ScatterND ------------------------------------------------------------------- */

/* Flat element offsets of the slices addressed by the last axis of indices (k components
 * addressing data axes [b, b + k)), each tuple also offset by its batch (first b axes). */
static ifd_status nd_offsets(const ifd_kernel_ctx *ctx, const ifd_tensor *data,
                             const ifd_tensor *ind, int b, int64_t *offs, int64_t *n_tuples,
                             int64_t *slice) {
    int q = ind->rank, r = data->rank;
    if (q < 1) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "indices must have rank >= 1");
    int64_t k = ind->dims[q - 1];
    if (k < 1 || k > r - b)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "indices' last dimension %lld must be in [1, %d]", (long long)k,
                                r - b);
    int64_t str[IFD_MAX_RANK], acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        str[i] = acc;
        acc *= data->dims[i];
    }
    *slice = prod(data->dims, b + (int)k, r);
    int64_t nt = ind->count / k; /* tuples */
    int64_t per_batch = prod(ind->dims, b, q - 1);
    int64_t batch_stride = prod(data->dims, b, r);
    for (int64_t t = 0; t < nt; t++) {
        int64_t off = per_batch ? (t / per_batch) * batch_stride : 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t v, dim = data->dims[b + j];
            if (!norm_index(ind, t * k + j, dim, &v)) return index_error(ctx, ind, t * k + j, dim);
            off += v * str[b + j];
        }
        offs[t] = off;
    }
    *n_tuples = nt;
    return IFD_OK;
}

static ifd_status run_gather_nd(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *ind = ctx->inputs[1];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es)) ||
        (st = require_index_type(ctx, ind, "indices")))
        return st;
    int64_t b = ifd_attr_int(ctx->node, "batch_dims", 0);
    int q = ind->rank, r = x->rank;
    if (b < 0 || b >= IFD_MIN(q, r))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "batch_dims %lld must be in [0, min(rank(data), rank(indices)))",
                                (long long)b);
    for (int i = 0; i < b; i++)
        if (x->dims[i] != ind->dims[i])
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "batch axis %d differs: data %lld, indices %lld", i,
                                    (long long)x->dims[i], (long long)ind->dims[i]);
    if (q < 1 || ind->dims[q - 1] < 1 || ind->dims[q - 1] > r - b)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "indices' last dimension must be in [1, %d]",
                                (int)(r - b));
    int64_t k = ind->dims[q - 1];
    int64_t dims[IFD_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < q - 1; i++) dims[orank++] = ind->dims[i];
    for (int i = (int)(b + k); i < r; i++) {
        if (orank >= IFD_MAX_RANK)
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output rank exceeds %d", IFD_MAX_RANK);
        dims[orank++] = x->dims[i];
    }
    int64_t nt = ind->count / k, slice, ntup;
    int64_t *offs = ifd_kernel_scratch(ctx, sizeof(int64_t) * (size_t)IFD_MAX(nt, (int64_t)1));
    if (!offs) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "scratch");
    if ((st = nd_offsets(ctx, x, ind, (int)b, offs, &ntup, &slice))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, orank, dims, &y)) || !y) return st;
    size_t run = (size_t)slice * es;
    for (int64_t t = 0; t < ntup; t++)
        memcpy((char *)y->data + (size_t)t * run, (const char *)x->data + (size_t)offs[t] * es,
               run);
    return IFD_OK;
}

static ifd_status run_scatter_nd(ifd_kernel_ctx *ctx) {
    ifd_status st;
    for (int i = 0; i < 3; i++)
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *x = ctx->inputs[0], *ind = ctx->inputs[1], *upd = ctx->inputs[2];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es)) ||
        (st = require_index_type(ctx, ind, "indices")))
        return st;
    int red;
    combine_fn fn;
    if ((st = get_reduction(ctx, x->dtype, &red, &fn))) return st;
    int q = ind->rank, r = x->rank;
    if (q < 1 || ind->dims[q - 1] < 1 || ind->dims[q - 1] > r)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "indices' last dimension must be in [1, %d]", r);
    int64_t k = ind->dims[q - 1];
    /* updates: indices.shape[:-1] + data.shape[k:] */
    bool ok = upd->dtype == x->dtype && upd->rank == q - 1 + r - (int)k;
    for (int i = 0; ok && i < q - 1; i++) ok = upd->dims[i] == ind->dims[i];
    for (int i = 0; ok && i < r - k; i++) ok = upd->dims[q - 1 + i] == x->dims[k + i];
    if (!ok) {
        char a[256];
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "updates %s must be %s with shape indices.shape[:-1] + "
                                "data.shape[%lld:]",
                                ifd_shape_str(upd->rank, upd->dims, a, sizeof a),
                                ifd_dtype_name(x->dtype), (long long)k);
    }
    int64_t nt = ind->count / k, slice, ntup;
    int64_t *offs = ifd_kernel_scratch(ctx, sizeof(int64_t) * (size_t)IFD_MAX(nt, (int64_t)1));
    if (!offs) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "scratch");
    if ((st = nd_offsets(ctx, x, ind, 0, offs, &ntup, &slice))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, x->dims, &y)) || !y) return st;
    if (x->nbytes) memcpy(y->data, x->data, x->nbytes);
    size_t run = (size_t)slice * es;
    for (int64_t t = 0; t < ntup; t++) {
        char *d = (char *)y->data + (size_t)offs[t] * es;
        const char *u = (const char *)upd->data + (size_t)t * run;
        if (fn)
            fn(d, u, slice);
        else
            memcpy(d, u, run);
    }
    return IFD_OK;
}

/* ---- TensorScatter (opset 24: KV-cache update) ---------------------------------------------- */

static ifd_status run_tensor_scatter(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *upd = ctx->inputs[1];
    const ifd_tensor *wi = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es))) return st;
    int r = x->rank, axis;
    if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", -2), r, &axis))) return st;
    if (axis == 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "axis must not be the batch axis 0");
    const char *mode = ifd_attr_string(ctx->node, "mode", "linear");
    bool circular = !strcmp(mode, "circular");
    if (!circular && strcmp(mode, "linear"))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode);
    if (upd->dtype != x->dtype || upd->rank != r)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "update must match past_cache's type and rank");
    for (int i = 0; i < r; i++)
        if (i == axis ? upd->dims[i] > x->dims[i] : upd->dims[i] != x->dims[i]) {
            char a[256], b[256];
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "update shape %s is incompatible with past_cache shape %s",
                                    ifd_shape_str(r, upd->dims, a, sizeof a),
                                    ifd_shape_str(r, x->dims, b, sizeof b));
        }
    int64_t B = x->dims[0];
    if (wi) {
        if ((st = require_index_type(ctx, wi, "write_indices"))) return st;
        if (wi->rank != 1 || wi->count != B)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "write_indices must have shape [%lld]", (long long)B);
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, x->dims, &y)) || !y) return st;
    if (x->nbytes) memcpy(y->data, x->data, x->nbytes);
    if (!upd->count) return IFD_OK;
    int64_t L = x->dims[axis], S = upd->dims[axis];
    size_t run = (size_t)prod(x->dims, axis + 1, r) * es;
    int64_t per_batch = prod(x->dims, 1, axis); /* prefix positions per batch entry */
    for (int64_t bi = 0; bi < B; bi++) {
        int64_t w = wi ? ifd_tensor_get_i64(wi, bi) : 0;
        if (w < 0 || (circular ? w >= L : w + S > L))
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "write_indices[%lld] = %lld does not fit %lld updates in a "
                                    "cache of %lld", (long long)bi, (long long)w, (long long)S,
                                    (long long)L);
        for (int64_t p = 0; p < per_batch; p++) {
            int64_t pre = bi * per_batch + p;
            char *d = (char *)y->data + (size_t)(pre * L) * run;
            const char *u = (const char *)upd->data + (size_t)(pre * S) * run;
            if (!circular) {
                memcpy(d + (size_t)w * run, u, (size_t)S * run);
                continue;
            }
            for (int64_t s = 0; s < S; s++)
                memcpy(d + (size_t)((w + s) % L) * run, u + (size_t)s * run, run);
        }
    }
    return IFD_OK;
}

/* ---- OneHot --------------------------------------------------------------------------------- */

static ifd_status run_onehot(ifd_kernel_ctx *ctx) {
    ifd_status st;
    for (int i = 0; i < 3; i++)
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *ind = ctx->inputs[0], *dep = ctx->inputs[1], *vals = ctx->inputs[2];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, vals->dtype, &es))) return st;
    if (vals->count != 2)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "values must hold [off_value, on_value]");
    if (dep->count != 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "depth must be a scalar");
    if (ifd_kernel_elem_size(ctx, ind->dtype, &(size_t){0}) ||
        ifd_kernel_elem_size(ctx, dep->dtype, &(size_t){0}))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "indices/depth type not supported");
    double dd = ifd_tensor_get_f64(dep, 0);
    if (!(dd >= 1) || dd > 1e15)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "depth %g is invalid", dd);
    int64_t depth = (int64_t)dd;
    int r = ind->rank + 1;
    if (r > IFD_MAX_RANK)
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output rank exceeds %d", IFD_MAX_RANK);
    int axis;
    if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", -1), r, &axis))) return st;
    int64_t dims[IFD_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) dims[i] = i == axis ? depth : ind->dims[j++];
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, vals->dtype, r, dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    const char *off = vals->data, *on = off + es;
    char *d = y->data;
    /* Off everywhere, by doubling copies. */
    memcpy(d, off, es);
    for (size_t have = es, total = y->nbytes; have < total;) {
        size_t c = IFD_MIN(have, total - have);
        memcpy(d + have, d, c);
        have += c;
    }
    int64_t inner = prod(ind->dims, axis, ind->rank);
    bool is_float = ifd_dtype_is_float(ind->dtype);
    for (int64_t i = 0; i < ind->count; i++) {
        int64_t v;
        if (is_float) {
            double f = ifd_tensor_get_f64(ind, i);
            if (f < 0) f += (double)depth;
            if (!(f >= 0 && f < (double)depth) || f != floor(f)) continue;
            v = (int64_t)f;
        } else {
            v = ifd_tensor_get_i64(ind, i);
            if (ind->dtype == IFD_DTYPE_UINT64 && v < 0) continue;
            if (v < 0) v += depth;
            if (v < 0 || v >= depth) continue; /* out of range: all off, as the spec says */
        }
        int64_t o = i / inner, in = i % inner;
        memcpy(d + (size_t)((o * depth + v) * inner + in) * es, on, es);
    }
    return IFD_OK;
}

/* ---- Compress ------------------------------------------------------------------------------- */

static ifd_status run_compress(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *cond = ctx->inputs[1];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es))) return st;
    if (cond->rank != 1 || ifd_dtype_size(cond->dtype) != 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "condition must be a 1-D bool tensor");
    bool has_axis = ifd_attr_has(ctx->node, "axis");
    int axis = 0, r;
    int64_t dims[IFD_MAX_RANK], outer, A, inner;
    if (has_axis) {
        if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 0), x->rank, &axis)))
            return st;
        if (x->rank < 1)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank >= 1");
        r = x->rank;
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)r);
        outer = prod(x->dims, 0, axis);
        A = x->dims[axis];
        inner = prod(x->dims, axis + 1, r);
    } else {
        r = 1;
        outer = 1;
        A = x->count;
        inner = 1;
    }
    const uint8_t *c = cond->data;
    int64_t n = 0;
    for (int64_t i = 0; i < cond->count; i++)
        if (c[i]) {
            if (i >= A)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "condition selects index %lld beyond axis length %lld",
                                        (long long)i, (long long)A);
            n++;
        }
    dims[has_axis ? axis : 0] = n;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    size_t run = (size_t)inner * es;
    const char *s = x->data;
    char *d = y->data;
    int64_t lim = IFD_MIN(cond->count, A);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < lim; i++)
            if (c[i]) {
                memcpy(d, s + (size_t)(o * A + i) * run, run);
                d += run;
            }
    return IFD_OK;
}

/* ---- NonZero -------------------------------------------------------------------------------- */

static inline bool elem_nonzero(const unsigned char *p, size_t es, uint64_t zero_mask) {
    uint64_t v = 0;
    memcpy(&v, p, es); /* little-endian: low bytes */
    return (v & zero_mask) != 0;
}

static ifd_status run_nonzero(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es))) return st;
    if (es > 8)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "NonZero of %s is not supported",
                                ifd_dtype_name(x->dtype));
    /* Bits that make an element nonzero: all, except the sign bit of IEEE-style floats
     * (-0.0 is zero). NaN is nonzero. The FNUZ float8 types have no negative zero. */
    uint64_t mask = es == 8 ? ~(uint64_t)0 : (((uint64_t)1 << (8 * es)) - 1);
    switch (x->dtype) {
    case IFD_DTYPE_FLOAT: case IFD_DTYPE_DOUBLE: case IFD_DTYPE_FLOAT16: case IFD_DTYPE_BFLOAT16:
    case IFD_DTYPE_FLOAT8E4M3FN: case IFD_DTYPE_FLOAT8E5M2: case IFD_DTYPE_FLOAT4E2M1:
        mask &= ~((uint64_t)1 << (8 * es - 1));
        break;
    default: break;
    }
    const unsigned char *p = x->data;
    int64_t n = 0, cnt = x->count;
    for (int64_t i = 0; i < cnt; i++) n += elem_nonzero(p + (size_t)i * es, es, mask);
    int r = x->rank;
    /* A scalar behaves as a 1-element vector (NumPy's nonzero on 0-d input). */
    int rows = r ? r : 1;
    int64_t dims[2] = {rows, n};
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT64, 2, dims, &y)) || !y) return st;
    if (!n) return IFD_OK;
    int64_t *out = y->data, coord[IFD_MAX_RANK] = {0}, k = 0;
    for (int64_t i = 0; i < cnt; i++) {
        if (elem_nonzero(p + (size_t)i * es, es, mask)) {
            for (int a = 0; a < rows; a++) out[(size_t)a * (size_t)n + (size_t)k] = r ? coord[a] : 0;
            k++;
        }
        for (int a = r - 1; a >= 0; a--) {
            if (++coord[a] < x->dims[a]) break;
            coord[a] = 0;
        }
    }
    return IFD_OK;
}

const ifd_op_def ifd_ops_gather[] = {
    {"", "Gather", 1, run_gather, NULL, NULL, IFD_OP_STRINGS},
    {"", "GatherElements", 11, run_gather_elements, NULL, NULL, 0},
    {"", "GatherND", 11, run_gather_nd, NULL, NULL, 0},
    {"", "Scatter", 9, run_scatter_elements, NULL, NULL, 0},
    {"", "ScatterElements", 11, run_scatter_elements, NULL, NULL, 0},
    {"", "ScatterND", 11, run_scatter_nd, NULL, NULL, 0},
    {"", "TensorScatter", 24, run_tensor_scatter, NULL, NULL, 0},
    {"", "OneHot", 9, run_onehot, NULL, NULL, 0},
    {"", "Compress", 9, run_compress, NULL, NULL, 0},
    {"", "NonZero", 9, run_nonzero, NULL, NULL, 0},
    {0},
};
