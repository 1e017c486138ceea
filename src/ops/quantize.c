/* Operator family: quantize.
 *   QuantizeLinear, DequantizeLinear (per tensor, per axis, blocked), DynamicQuantizeLinear,
 *   MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv.
 * Integer products run in kernels/qgemm.c; conversions of exotic types in base/dtype_convert.c.
 * Rounding is half to even everywhere, as the ONNX reference (np.rint) does. */
#include "ops/op.h"

#include "base/dtype_convert.h"
#include "kernels/qgemm.h"

#include <math.h>
#include <string.h>

/* Quantize and requantize loops are the hot path: let gcc vectorize them at -O2. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

/* Round to nearest even for |v| <= 2^22 without a libm call, so loops vectorize (SSE2 has no
 * round instruction). Callers clamp v to the (small) integer output range first. */
static inline float rne_small(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

static inline double rne_small_d(double v) {
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    return (v + magic) - magic;
}

/* Integer range of a quantized type; false for float types. */
static bool quant_range(ifd_dtype t, int32_t *lo, int32_t *hi) {
    switch (t) {
    case IFD_DTYPE_UINT8: *lo = 0; *hi = 255; return true;
    case IFD_DTYPE_INT8: *lo = -128; *hi = 127; return true;
    case IFD_DTYPE_UINT16: *lo = 0; *hi = 65535; return true;
    case IFD_DTYPE_INT16: *lo = -32768; *hi = 32767; return true;
    case IFD_DTYPE_UINT4: *lo = 0; *hi = 15; return true;
    case IFD_DTYPE_INT4: *lo = -8; *hi = 7; return true;
    case IFD_DTYPE_UINT2: *lo = 0; *hi = 3; return true;
    case IFD_DTYPE_INT2: *lo = -2; *hi = 1; return true;
    default: return false;
    }
}

/* Round a float to the precision of t (float16/bfloat16), as NumPy arithmetic in t does. */
static inline float round_to(float v, ifd_dtype t) {
    if (t == IFD_DTYPE_FLOAT16) return ifd_fp16_to_f32(ifd_f32_to_fp16(v));
    if (t == IFD_DTYPE_BFLOAT16) return ifd_bf16_to_f32(ifd_f32_to_bf16(v));
    return v;
}

static void fill_floats(const ifd_tensor *t, float *dst) {
    (void)ifd_convert(t->dtype, t->data, IFD_DTYPE_FLOAT, dst, t->count, true);
}

static void fill_int32s(const ifd_tensor *t, int32_t *dst) {
    for (int64_t i = 0; i < t->count; i++) dst[i] = (int32_t)ifd_tensor_get_i64(t, i);
}

/* A scale (float) or zero point (int32) input copied into scratch; NULL when t is NULL or on
 * failure (*st set; see ifd_kernel_scratch_array). */
static float *scratch_f32(ifd_kernel_ctx *ctx, const ifd_tensor *t, ifd_status *st) {
    float *p = t ? ifd_kernel_scratch_array(ctx, (size_t)t->count, sizeof(float), st) : NULL;
    if (p) fill_floats(t, p);
    return p;
}
static int32_t *scratch_i32(ifd_kernel_ctx *ctx, const ifd_tensor *t, ifd_status *st) {
    int32_t *p = t ? ifd_kernel_scratch_array(ctx, (size_t)t->count, sizeof(int32_t), st) : NULL;
    if (p) fill_int32s(t, p);
    return p;
}

/* ---- layout of scale / zero point against x ------------------------------------------ */

typedef struct {
    int64_t outer, dim, inner; /* x viewed as [outer, dim, inner] around the axis */
    int64_t block;             /* block_size (blocked), else 0 */
    int64_t nblocks;           /* blocks along the axis */
    bool per_tensor;
} qlayout;

/* Converts n elements from flat index `first`, with scale/zero point at sidx (stride sstep). */
typedef void (*qspan_fn)(const void *job, int64_t first, int64_t n, int64_t sidx, int64_t sstep);

typedef struct {
    const qlayout *l;
    qspan_fn span;
    const void *job;
} qlayout_run;

static void qlayout_chunk(void *arg, int64_t begin, int64_t end) {
    const qlayout_run *q = arg;
    const qlayout *l = q->l;
    if (l->per_tensor) {
        q->span(q->job, begin, end - begin, 0, 0);
        return;
    }
    /* begin/end index runs of `inner` elements: run r is (o, d) = (r / dim, r % dim) */
    for (int64_t r = begin; r < end; r++) {
        int64_t o = r / l->dim, d = r % l->dim;
        if (l->block)
            q->span(q->job, r * l->inner, l->inner, (o * l->nblocks + d / l->block) * l->inner, 1);
        else
            q->span(q->job, r * l->inner, l->inner, d, 0);
    }
}

/* Runs span over all `count` elements of x laid out as l, split over the pool. */
static void qlayout_for(ifd_thread_pool *pool, const qlayout *l, int64_t count, qspan_fn span,
                        const void *job) {
    qlayout_run q = {l, span, job};
    if (l->per_tensor)
        ifd_parallel_for(pool, count, 1 << 15, qlayout_chunk, &q);
    else
        ifd_parallel_for(pool, l->outer * l->dim,
                         IFD_MAX((int64_t)1, (1 << 15) / IFD_MAX(l->inner, 1)), qlayout_chunk, &q);
}

/* Validate a scale (or zero point) shape and describe how it maps onto x. */
static ifd_status quant_layout(ifd_kernel_ctx *ctx, const ifd_tensor *x, const ifd_tensor *scale,
                               const char *what, qlayout *l) {
    memset(l, 0, sizeof *l);
    int64_t axis = ifd_attr_int(ctx->node, "axis", 1);
    int64_t block = ctx->opset >= 21 ? ifd_attr_int(ctx->node, "block_size", 0) : 0;
    if (block < 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "block_size %lld is negative",
                                (long long)block);
    if (scale->count == 1 && (block == 0 || scale->rank <= 1)) {
        l->per_tensor = true;
        return IFD_OK;
    }
    int a;
    ifd_status st = ifd_normalize_axis(ctx, axis, x->rank, &a);
    if (st) return st;
    l->outer = 1;
    l->inner = 1;
    for (int i = 0; i < a; i++) l->outer *= x->dims[i];
    for (int i = a + 1; i < x->rank; i++) l->inner *= x->dims[i];
    l->dim = x->dims[a];
    if (block == 0) {
        if (scale->rank != 1 || scale->dims[0] != l->dim)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "%s has %lld elements but axis %d of x has %lld (per-axis)",
                                    what, (long long)scale->count, a, (long long)l->dim);
        return IFD_OK;
    }
    l->block = block;
    l->nblocks = (l->dim + block - 1) / block;
    bool ok = scale->rank == x->rank;
    for (int i = 0; ok && i < x->rank; i++)
        ok = scale->dims[i] == (i == a ? l->nblocks : x->dims[i]);
    if (!ok) {
        char sx[128], ss[128];
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "%s shape %s does not block x shape %s by %lld on axis %d", what,
                                ifd_shape_str(scale->rank, scale->dims, ss, sizeof ss),
                                ifd_shape_str(x->rank, x->dims, sx, sizeof sx), (long long)block, a);
    }
    return IFD_OK;
}

/* ---- QuantizeLinear ------------------------------------------------------------------- */

/* y = clamp(rint(x / s) + zp) for one run sharing s and zp; float math as the reference. */
#define DEF_QUANT_RUN(NAME, T)                                                                  \
    static void NAME(const float *restrict x, T *restrict y, int64_t n, float s, int32_t zp,     \
                     int32_t qlo, int32_t qhi) {                                                 \
        float lo = (float)(qlo - zp), hi = (float)(qhi - zp);                                    \
        for (int64_t i = 0; i < n; i++) {                                                        \
            float q = x[i] / s;                                                                  \
            q = q >= lo ? q : lo; /* NaN goes to the low end like the reference */               \
            q = q <= hi ? q : hi;                                                                \
            y[i] = (T)((int32_t)rne_small(q) + zp);                                              \
        }                                                                                        \
    }
DEF_QUANT_RUN(quant_run_u8, uint8_t)
DEF_QUANT_RUN(quant_run_s8, int8_t)
DEF_QUANT_RUN(quant_run_u16, uint16_t)
DEF_QUANT_RUN(quant_run_s16, int16_t)

typedef struct {
    const ifd_tensor *x;
    ifd_dtype out_type, calc; /* calc: type the division is rounded to */
    bool saturate;
    qlayout l;
    const float *scale;
    const float *zp; /* NULL: zero */
    void *y;
    int32_t qlo, qhi;
    bool is_int;
} quant_job;

/* Quantize n elements starting at flat index `first`, with scale/zp at sidx (stride sstep). */
static void quant_span(const void *job, int64_t first, int64_t n, int64_t sidx, int64_t sstep) {
    const quant_job *j = job;
    enum { B = 512 };
    float buf[B], q[B];
    size_t es = ifd_dtype_size(j->out_type);
    for (int64_t off = 0; off < n; off += B) {
        int64_t m = IFD_MIN((int64_t)B, n - off);
        const float *xf;
        if (j->x->dtype == IFD_DTYPE_FLOAT) {
            xf = (const float *)j->x->data + first + off;
        } else {
            (void)ifd_convert(j->x->dtype, (const uint8_t *)j->x->data +
                                               (size_t)(first + off) * ifd_dtype_size(j->x->dtype),
                              IFD_DTYPE_FLOAT, buf, m, true);
            xf = buf;
        }
        uint8_t *yb = (uint8_t *)j->y + (size_t)(first + off) * es;
        int64_t s0 = sidx + off * sstep;
        if (sstep == 0 && j->is_int && j->calc == IFD_DTYPE_FLOAT) {
            float s = j->scale[s0];
            int32_t zp = j->zp ? (int32_t)j->zp[s0] : 0;
            switch (j->out_type) {
            case IFD_DTYPE_UINT8: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2:
                quant_run_u8(xf, yb, m, s, zp, j->qlo, j->qhi);
                continue;
            case IFD_DTYPE_INT8: case IFD_DTYPE_INT4: case IFD_DTYPE_INT2:
                quant_run_s8(xf, (int8_t *)yb, m, s, zp, j->qlo, j->qhi);
                continue;
            case IFD_DTYPE_UINT16: quant_run_u16(xf, (uint16_t *)yb, m, s, zp, j->qlo, j->qhi); continue;
            case IFD_DTYPE_INT16: quant_run_s16(xf, (int16_t *)yb, m, s, zp, j->qlo, j->qhi); continue;
            default: break;
            }
        }
        for (int64_t i = 0; i < m; i++) {
            int64_t si = s0 + i * sstep;
            float s = j->scale[si], zpf = j->zp ? j->zp[si] : 0.0f;
            float xv = xf[i];
            if (j->calc != IFD_DTYPE_FLOAT) {
                xv = round_to(xv, j->calc);
                s = round_to(s, j->calc);
            }
            q[i] = round_to(xv / s, j->calc);
            if (j->is_int) {
                float lo = (float)j->qlo - zpf, hi = (float)j->qhi - zpf;
                float v = q[i] >= lo ? q[i] : lo;
                v = v <= hi ? v : hi;
                int32_t r = (int32_t)rintf(v) + (int32_t)zpf;
                switch (es) {
                case 1: yb[i] = (uint8_t)r; break;
                default: ((uint16_t *)yb)[i] = (uint16_t)r; break;
                }
            } else if (j->out_type == IFD_DTYPE_FLOAT4E2M1) {
                yb[i] = ifd_f32_to_minifloat(j->out_type, q[i] + zpf, true);
            } else {
                yb[i] = ifd_f32_to_minifloat(j->out_type, q[i], j->saturate);
            }
        }
    }
}

static ifd_status run_quantize_linear(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *scale = ctx->inputs[1];
    const ifd_tensor *zpt = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    ifd_dtype out = IFD_DTYPE_UINT8;
    int64_t odt = ctx->opset >= 21 ? ifd_attr_int(ctx->node, "output_dtype", 0) : 0;
    if (zpt) {
        if (odt && odt != zpt->dtype)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "output_dtype %lld differs from the zero point type %s",
                                    (long long)odt, ifd_dtype_name(zpt->dtype));
        out = zpt->dtype;
    } else if (odt > 0 && odt < IFD_DTYPE_COUNT) {
        out = (ifd_dtype)odt;
    }
    quant_job j;
    memset(&j, 0, sizeof j);
    j.is_int = quant_range(out, &j.qlo, &j.qhi);
    if (!j.is_int && !ifd_dtype_is_minifloat(out))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "output type %s is not a quantized type",
                                ifd_dtype_name(out));
    if (out == IFD_DTYPE_FLOAT8E8M0)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "float8e8m0 output is not supported");
    if (!ifd_dtype_is_float(x->dtype) && x->dtype != IFD_DTYPE_INT32)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "input type %s is not supported",
                                ifd_dtype_name(x->dtype));
    if ((st = quant_layout(ctx, x, scale, "y_scale", &j.l))) return st;
    if (zpt && zpt->count != scale->count)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "y_zero_point has %lld elements but y_scale has %lld",
                                (long long)zpt->count, (long long)scale->count);
    float *sc = scratch_f32(ctx, scale, &st), *zp = scratch_f32(ctx, zpt, &st);
    if (st) return st;
    int64_t prec = ctx->opset >= 23 ? ifd_attr_int(ctx->node, "precision", 0) : 0;
    j.calc = IFD_DTYPE_FLOAT;
    if (prec == IFD_DTYPE_FLOAT16 || prec == IFD_DTYPE_BFLOAT16)
        j.calc = (ifd_dtype)prec;
    else if (!prec && x->dtype == scale->dtype &&
             (x->dtype == IFD_DTYPE_FLOAT16 || x->dtype == IFD_DTYPE_BFLOAT16))
        j.calc = x->dtype;
    j.x = x;
    j.out_type = out;
    j.saturate = ctx->opset >= 19 ? ifd_attr_int(ctx->node, "saturate", 1) != 0 : true;
    j.scale = sc;
    j.zp = zp;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, out, x->rank, x->dims, &y)) || !y || !x->count) return st;
    j.y = y->data;
    qlayout_for(ctx->pool, &j.l, x->count, quant_span, &j);
    return IFD_OK;
}

/* ---- DequantizeLinear ----------------------------------------------------------------- */

#define DEF_DEQ_RUN(NAME, T)                                                                 \
    static void NAME(const T *restrict x, float *restrict y, int64_t n, float s, float zp) { \
        for (int64_t i = 0; i < n; i++) y[i] = ((float)x[i] - zp) * s;                      \
    }
DEF_DEQ_RUN(deq_run_u8, uint8_t)
DEF_DEQ_RUN(deq_run_s8, int8_t)
DEF_DEQ_RUN(deq_run_u16, uint16_t)
DEF_DEQ_RUN(deq_run_s16, int16_t)
DEF_DEQ_RUN(deq_run_f32, float)

typedef struct {
    const ifd_tensor *x;
    ifd_dtype out_type;
    qlayout l;
    const float *scale, *zp;
    void *y;
} deq_job;

static void deq_span(const void *job, int64_t first, int64_t n, int64_t sidx, int64_t sstep) {
    const deq_job *j = job;
    enum { B = 512 };
    float xb[B], yb[B];
    size_t xs = ifd_dtype_size(j->x->dtype), ys = ifd_dtype_size(j->out_type);
    const uint8_t *xp = (const uint8_t *)j->x->data;
    for (int64_t off = 0; off < n; off += B) {
        int64_t m = IFD_MIN((int64_t)B, n - off);
        const void *src = xp + (size_t)(first + off) * xs;
        float *dst = j->out_type == IFD_DTYPE_FLOAT ? (float *)j->y + first + off : yb;
        int64_t s0 = sidx + off * sstep;
        if (sstep == 0) {
            float s = j->scale[s0], zp = j->zp ? j->zp[s0] : 0.0f;
            switch (j->x->dtype) {
            case IFD_DTYPE_UINT8: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2:
                deq_run_u8(src, dst, m, s, zp);
                break;
            case IFD_DTYPE_INT8: case IFD_DTYPE_INT4: case IFD_DTYPE_INT2:
                deq_run_s8(src, dst, m, s, zp);
                break;
            case IFD_DTYPE_UINT16: deq_run_u16(src, dst, m, s, zp); break;
            case IFD_DTYPE_INT16: deq_run_s16(src, dst, m, s, zp); break;
            default:
                (void)ifd_convert(j->x->dtype, src, IFD_DTYPE_FLOAT, xb, m, true);
                deq_run_f32(xb, dst, m, s, zp);
                break;
            }
        } else {
            (void)ifd_convert(j->x->dtype, src, IFD_DTYPE_FLOAT, xb, m, true);
            for (int64_t i = 0; i < m; i++) {
                int64_t si = s0 + i * sstep;
                dst[i] = (xb[i] - (j->zp ? j->zp[si] : 0.0f)) * j->scale[si];
            }
        }
        if (dst == yb)
            (void)ifd_convert(IFD_DTYPE_FLOAT, yb, j->out_type,
                              (uint8_t *)j->y + (size_t)(first + off) * ys, m, true);
    }
}

static ifd_status run_dequantize_linear(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *scale = ctx->inputs[1];
    const ifd_tensor *zpt = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    int32_t lo, hi;
    bool minifloat = ifd_dtype_is_minifloat(x->dtype);
    if (!quant_range(x->dtype, &lo, &hi) && !minifloat && x->dtype != IFD_DTYPE_INT32)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "input type %s is not supported",
                                ifd_dtype_name(x->dtype));
    if (!ifd_dtype_is_float(scale->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "x_scale has type %s, not float",
                                ifd_dtype_name(scale->dtype));
    deq_job j;
    memset(&j, 0, sizeof j);
    if ((st = quant_layout(ctx, x, scale, "x_scale", &j.l))) return st;
    bool use_zp = zpt && !minifloat;
    if (use_zp) {
        /* float8/float4 zero points must be zero; the reference ignores them */
        if (zpt->dtype != x->dtype)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "x_zero_point type %s differs from x type %s",
                                    ifd_dtype_name(zpt->dtype), ifd_dtype_name(x->dtype));
        if (zpt->count != scale->count)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "x_zero_point has %lld elements but x_scale has %lld",
                                    (long long)zpt->count, (long long)scale->count);
    }
    float *sc = scratch_f32(ctx, scale, &st), *zp = scratch_f32(ctx, use_zp ? zpt : NULL, &st);
    if (st) return st;
    ifd_dtype out = scale->dtype;
    int64_t odt = ctx->opset >= 23 ? ifd_attr_int(ctx->node, "output_dtype", 0) : 0;
    if (odt) {
        if (odt != IFD_DTYPE_FLOAT && odt != IFD_DTYPE_FLOAT16 && odt != IFD_DTYPE_BFLOAT16)
            return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "output_dtype %lld is not a float type",
                                    (long long)odt);
        out = (ifd_dtype)odt;
    }
    j.x = x;
    j.out_type = out;
    j.scale = sc;
    j.zp = zp;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, out, x->rank, x->dims, &y)) || !y || !x->count) return st;
    j.y = y->data;
    qlayout_for(ctx->pool, &j.l, x->count, deq_span, &j);
    return IFD_OK;
}

/* ---- DynamicQuantizeLinear ------------------------------------------------------------ */

#if defined(__x86_64__)
#include <immintrin.h>
#define IFD_DQL_AVX512 1
static bool has_avx512(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }
    return have;
}

__attribute__((target("avx512f,avx512bw"))) static void minmax_avx512(const float *x, int64_t n,
                                                                     float *mn, float *mx) {
    __m512 lo = _mm512_setzero_ps(), hi = lo, lo2 = lo, hi2 = lo;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        lo = _mm512_min_ps(lo, a);
        hi = _mm512_max_ps(hi, a);
        lo2 = _mm512_min_ps(lo2, b);
        hi2 = _mm512_max_ps(hi2, b);
    }
    for (; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(k, x + i); /* masked-off lanes read as 0: in range */
        lo = _mm512_min_ps(lo, a);
        hi = _mm512_max_ps(hi, a);
    }
    *mn = _mm512_reduce_min_ps(_mm512_min_ps(lo, lo2));
    *mx = _mm512_reduce_max_ps(_mm512_max_ps(hi, hi2));
}

/* y = clamp(rint(x / s) + zp, 0, 255): the division and round-half-even as the reference. */
__attribute__((target("avx512f,avx512bw"))) static void quant_u8_avx512(const float *x, uint8_t *y,
                                                                       int64_t n, float s,
                                                                       int32_t zp) {
    const __m512 vs = _mm512_set1_ps(s), vlo = _mm512_set1_ps((float)(0 - zp)),
                 vhi = _mm512_set1_ps((float)(255 - zp));
    const __m512i vz = _mm512_set1_epi32(zp);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 q = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), vs);
        q = _mm512_min_ps(_mm512_max_ps(q, vlo), vhi); /* NaN -> low end (max returns vlo) */
        __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(q), vz);
        _mm512_mask_cvtusepi32_storeu_epi8(y + i, k, r);
    }
}
#endif

static void minmax_span(const float *restrict x, int64_t n, float *mn, float *mx) {
    float lo = 0.0f, hi = 0.0f; /* the range always includes 0 */
#ifdef IFD_DQL_AVX512
    if (has_avx512()) {
        minmax_avx512(x, n, mn, mx);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

typedef struct {
    const float *x;
    int64_t n, parts;
    float mins[64], maxs[64];
} dql_job;

static void dql_part(void *arg, int64_t begin, int64_t end) {
    dql_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t a = j->n * p / j->parts, b = j->n * (p + 1) / j->parts;
        minmax_span(j->x + a, b - a, &j->mins[p], &j->maxs[p]);
    }
}

typedef struct {
    const float *x;
    uint8_t *y;
    float s;
    int32_t zp;
} dql_quant_job;

static void dql_quant(void *arg, int64_t begin, int64_t end) {
    const dql_quant_job *j = arg;
#ifdef IFD_DQL_AVX512
    if (has_avx512()) {
        quant_u8_avx512(j->x + begin, j->y + begin, end - begin, j->s, j->zp);
        return;
    }
#endif
    quant_run_u8(j->x + begin, j->y + begin, end - begin, j->s, j->zp, 0, 255);
}

static ifd_status run_dynamic_quantize_linear(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    if (x->dtype != IFD_DTYPE_FLOAT)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "input type %s is not float32",
                                ifd_dtype_name(x->dtype));
    dql_job mj;
    memset(&mj, 0, sizeof mj);
    mj.x = x->data;
    mj.n = x->count;
    mj.parts = IFD_MIN((int64_t)64, IFD_MAX((int64_t)1, x->count >> 15));
    ifd_parallel_for(ctx->pool, mj.parts, 1, dql_part, &mj);
    float mn = 0.0f, mx = 0.0f;
    for (int64_t p = 0; p < mj.parts; p++) {
        mn = mj.mins[p] < mn ? mj.mins[p] : mn;
        mx = mj.maxs[p] > mx ? mj.maxs[p] : mx;
    }
    /* an all-zero input has an empty range; the reference then defines the scale as 1 */
    float scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    float zpf = 0.0f - mn / scale;
    zpf = zpf < 0.0f ? 0.0f : zpf > 255.0f ? 255.0f : zpf;
    int32_t zp = (int32_t)rintf(zpf);
    ifd_tensor *y, *ys, *yz;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_UINT8, x->rank, x->dims, &y)) ||
        (st = ifd_kernel_output(ctx, 1, IFD_DTYPE_FLOAT, 0, NULL, &ys)) ||
        (st = ifd_kernel_output(ctx, 2, IFD_DTYPE_UINT8, 0, NULL, &yz)))
        return st;
    if (ys) *(float *)ys->data = scale;
    if (yz) *(uint8_t *)yz->data = (uint8_t)zp;
    if (y && x->count) {
        dql_quant_job qj = {x->data, y->data, scale, zp};
        ifd_parallel_for(ctx->pool, x->count, 1 << 15, dql_quant, &qj);
    }
    return IFD_OK;
}

/* ---- requantization ------------------------------------------------------------------- */

/* a * b / c with NumPy's arithmetic in type t (float16/bfloat16 round after each step). */
static float scale_mul_div(float a, float b, float c, ifd_dtype t) {
    return round_to(round_to(a * b, t) / c, t);
}

/* y[i] = clamp(rint((acc[i] + bias) * mult[i * mstep] + yzp)), as the reference's float64 math. */
#define DEF_REQUANT(NAME, T)                                                                    \
    static void NAME(const int32_t *restrict acc, T *restrict y, int64_t n, int32_t bias,        \
                     const float *restrict mult, int64_t mstep, double yzp, double lo,           \
                     double hi) {                                                                \
        if (mstep == 0) {                                                                        \
            double m = mult[0];                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                    \
                double v = (double)(int32_t)((uint32_t)acc[i] + (uint32_t)bias) * m + yzp;       \
                v = v >= lo ? v : lo;                                                            \
                v = v <= hi ? v : hi;                                                            \
                y[i] = (T)(int32_t)rne_small_d(v);                                               \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                    \
                double v = (double)(int32_t)((uint32_t)acc[i] + (uint32_t)bias) * (double)mult[i] \
                           + yzp;                                                                \
                v = v >= lo ? v : lo;                                                            \
                v = v <= hi ? v : hi;                                                            \
                y[i] = (T)(int32_t)rne_small_d(v);                                               \
            }                                                                                    \
        }                                                                                        \
    }
DEF_REQUANT(requant_u8, uint8_t)
DEF_REQUANT(requant_s8, int8_t)

static void requant_row(const int32_t *acc, void *y, bool y_signed, int64_t n, int32_t bias,
                        const float *mult, int64_t mstep, int32_t yzp) {
    if (y_signed)
        requant_s8(acc, y, n, bias, mult, mstep, yzp, -128.0, 127.0);
    else
        requant_u8(acc, y, n, bias, mult, mstep, yzp, 0.0, 255.0);
}

static bool is_8bit(ifd_dtype t) { return t == IFD_DTYPE_UINT8 || t == IFD_DTYPE_INT8; }

/* A zero point input as int32 values, checked against its allowed counts. */
static ifd_status zero_points(ifd_kernel_ctx *ctx, int index, const char *what, ifd_dtype like,
                              int64_t per_count, const ifd_tensor **out, int64_t *count) {
    const ifd_tensor *t = index < ctx->n_inputs ? ctx->inputs[index] : NULL;
    *out = t;
    *count = 0;
    if (!t) return IFD_OK;
    if (t->dtype != like)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%s has type %s, expected %s",
                                what, ifd_dtype_name(t->dtype), ifd_dtype_name(like));
    if (t->count != 1 && t->count != per_count)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "%s has %lld elements, expected 1 or %lld",
                                what, (long long)t->count, (long long)per_count);
    *count = t->count;
    return IFD_OK;
}

static ifd_status scales(ifd_kernel_ctx *ctx, int index, const char *what, int64_t per_count,
                         const ifd_tensor **out, int64_t *count) {
    ifd_status st = ifd_kernel_require_input(ctx, index);
    if (st) return st;
    const ifd_tensor *t = ctx->inputs[index];
    if (!ifd_dtype_is_float(t->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%s has type %s, not float", what,
                                ifd_dtype_name(t->dtype));
    if (t->count != 1 && t->count != per_count)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "%s has %lld elements, expected 1 or %lld",
                                what, (long long)t->count, (long long)per_count);
    *out = t;
    *count = t->count;
    return IFD_OK;
}

/* ---- MatMulInteger / QLinearMatMul ------------------------------------------------------ */

typedef struct {
    int64_t m, n, k, batch;
    int brank;                        /* batch rank of the output */
    int64_t bdims[IFD_MAX_RANK];      /* output batch dims */
    int64_t abd[IFD_MAX_RANK], bbd[IFD_MAX_RANK]; /* operands' batch dims, right-aligned, 1-padded */
    int out_rank;
    int64_t out_dims[IFD_MAX_RANK];
} mm_shape;

static ifd_status mm_setup(ifd_kernel_ctx *ctx, const ifd_tensor *a, const ifd_tensor *b,
                           mm_shape *s) {
    memset(s, 0, sizeof *s);
    if (a->rank < 1 || b->rank < 1)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "matmul inputs must have rank >= 1");
    int64_t k_a = a->dims[a->rank - 1];
    s->m = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t k_b = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    s->n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (k_a != k_b) {
        char sa[128], sb[128];
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "inner dims differ: A %s, B %s",
                                ifd_shape_str(a->rank, a->dims, sa, sizeof sa),
                                ifd_shape_str(b->rank, b->dims, sb, sizeof sb));
    }
    s->k = k_a;
    int ar = a->rank >= 2 ? a->rank - 2 : 0, br = b->rank >= 2 ? b->rank - 2 : 0;
    ifd_status st = ifd_broadcast_shape(ar, a->dims, br, b->dims, &s->brank, s->bdims);
    if (st) return ifd_kernel_error(ctx, st, "batch dims do not broadcast");
    s->batch = 1;
    for (int i = 0; i < s->brank; i++) {
        int ia = i - (s->brank - ar), ib = i - (s->brank - br);
        s->abd[i] = ia >= 0 ? a->dims[ia] : 1;
        s->bbd[i] = ib >= 0 ? b->dims[ib] : 1;
        s->batch *= s->bdims[i];
        s->out_dims[s->out_rank++] = s->bdims[i];
    }
    if (a->rank >= 2) s->out_dims[s->out_rank++] = s->m;
    if (b->rank >= 2) s->out_dims[s->out_rank++] = s->n;
    return IFD_OK;
}

/* Element offsets of batch bi's A and B matrices. */
static void mm_offsets(const mm_shape *s, int64_t bi, int64_t *aoff, int64_t *boff) {
    int64_t ao = 0, bo = 0, astr = s->m * s->k, bstr = s->k * s->n;
    for (int i = s->brank - 1; i >= 0; i--) {
        int64_t c = bi % s->bdims[i];
        bi /= s->bdims[i];
        if (s->abd[i] != 1) ao += c * astr;
        if (s->bbd[i] != 1) bo += c * bstr;
        astr *= s->abd[i];
        bstr *= s->bbd[i];
    }
    *aoff = ao;
    *boff = bo;
}

/* The QGEMM workspace for an m x n x k product (as ifd_kernel_scratch_array). */
static void *qgemm_workspace(ifd_kernel_ctx *ctx, int64_t m, int64_t n, int64_t k,
                             ifd_status *st) {
    size_t bytes = 0;
    if (!*st && !ifd_qgemm_workspace_size(m, n, k, &bytes))
        *st = ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "scratch size overflows");
    return ifd_kernel_scratch_array(ctx, bytes, 1, st);
}

static ifd_status run_matmul_integer(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *a = ctx->inputs[0], *b = ctx->inputs[1];
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "input types %s x %s are not 8-bit",
                                ifd_dtype_name(a->dtype), ifd_dtype_name(b->dtype));
    mm_shape s;
    if ((st = mm_setup(ctx, a, b, &s))) return st;
    const ifd_tensor *zat, *zbt;
    int64_t nza, nzb;
    if ((st = zero_points(ctx, 2, "a_zero_point", a->dtype, s.m, &zat, &nza)) ||
        (st = zero_points(ctx, 3, "b_zero_point", b->dtype, s.n, &zbt, &nzb)))
        return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT32, s.out_rank, s.out_dims, &y)) || !y ||
        !y->count)
        return st;
    int32_t *za = scratch_i32(ctx, zat, &st), *zb = scratch_i32(ctx, zbt, &st);
    void *ws = qgemm_workspace(ctx, s.m, s.n, s.k, &st);
    if (st) return st;
    for (int64_t bi = 0; bi < s.batch; bi++) {
        int64_t ao, bo;
        mm_offsets(&s, bi, &ao, &bo);
        ifd_qgemm_params p = {s.m, s.n, s.k, (const uint8_t *)a->data + ao, s.k,
                              a->dtype == IFD_DTYPE_INT8, za, nza, (const uint8_t *)b->data + bo,
                              s.n, b->dtype == IFD_DTYPE_INT8, zb, nzb,
                              (int32_t *)y->data + bi * s.m * s.n, s.n};
        ifd_qgemm(&p, ws, ctx->pool);
    }
    return IFD_OK;
}

static ifd_status run_qlinear_matmul(ifd_kernel_ctx *ctx) {
    ifd_status st;
    for (int i = 0; i < 8; i++)
        if (i != 2 && i != 5 && i != 7 && (st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *a = ctx->inputs[0], *b = ctx->inputs[3];
    const ifd_tensor *yzt = ctx->n_inputs > 7 ? ctx->inputs[7] : NULL;
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "input types %s x %s are not 8-bit",
                                ifd_dtype_name(a->dtype), ifd_dtype_name(b->dtype));
    ifd_dtype yt = yzt ? yzt->dtype : a->dtype;
    if (!is_8bit(yt))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "output type %s is not 8-bit",
                                ifd_dtype_name(yt));
    mm_shape s;
    if ((st = mm_setup(ctx, a, b, &s))) return st;
    const ifd_tensor *zat, *zbt, *yzt2, *ast, *bst, *yst;
    int64_t nza, nzb, nyz, nas, nbs, nys;
    if ((st = zero_points(ctx, 2, "a_zero_point", a->dtype, s.m, &zat, &nza)) ||
        (st = zero_points(ctx, 5, "b_zero_point", b->dtype, s.n, &zbt, &nzb)) ||
        (st = zero_points(ctx, 7, "y_zero_point", yt, 1, &yzt2, &nyz)) ||
        (st = scales(ctx, 1, "a_scale", s.m, &ast, &nas)) ||
        (st = scales(ctx, 4, "b_scale", s.n, &bst, &nbs)) ||
        (st = scales(ctx, 6, "y_scale", 1, &yst, &nys)))
        return st;
    ifd_dtype calc = ctx->inputs[1]->dtype;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, yt, s.out_rank, s.out_dims, &y)) || !y || !y->count)
        return st;
    int32_t *za = scratch_i32(ctx, zat, &st), *zb = scratch_i32(ctx, zbt, &st);
    int32_t *yz = scratch_i32(ctx, yzt2, &st);
    float *as = scratch_f32(ctx, ast, &st), *bs = scratch_f32(ctx, bst, &st);
    float *ys = scratch_f32(ctx, yst, &st);
    void *ws = qgemm_workspace(ctx, s.m, s.n, s.k, &st);
    int32_t *acc = ifd_kernel_scratch_array(ctx, (size_t)s.m * (size_t)s.n, sizeof(int32_t), &st);
    float *mrow = ifd_kernel_scratch_array(ctx, (size_t)s.n, sizeof(float), &st);
    if (st) return st;
    int32_t yzp = nyz ? yz[0] : 0;
    bool ysig = yt == IFD_DTYPE_INT8;
    for (int64_t bi = 0; bi < s.batch; bi++) {
        int64_t ao, bo;
        mm_offsets(&s, bi, &ao, &bo);
        ifd_qgemm_params p = {s.m, s.n, s.k, (const uint8_t *)a->data + ao, s.k,
                              a->dtype == IFD_DTYPE_INT8, za, nza, (const uint8_t *)b->data + bo,
                              s.n, b->dtype == IFD_DTYPE_INT8, zb, nzb, acc, s.n};
        ifd_qgemm(&p, ws, ctx->pool);
        uint8_t *yb = (uint8_t *)y->data + bi * s.m * s.n;
        for (int64_t i = 0; i < s.m; i++) {
            float sa = as[nas == 1 ? 0 : i];
            int64_t cnt = nbs == 1 ? 1 : s.n;
            for (int64_t jn = 0; jn < cnt; jn++) mrow[jn] = scale_mul_div(sa, bs[jn], ys[0], calc);
            requant_row(acc + i * s.n, yb + i * s.n, ysig, s.n, 0, mrow, nbs == 1 ? 0 : 1, yzp);
        }
    }
    return IFD_OK;
}

/* ---- ConvInteger / QLinearConv ------------------------------------------------------- */

enum { CONV_MAX_ND = IFD_MAX_RANK - 2 };

typedef struct {
    int nd;
    int64_t batch, c, m, group, cg, mg;
    int64_t in[CONV_MAX_ND], k[CONV_MAX_ND], out[CONV_MAX_ND], s[CONV_MAX_ND], d[CONV_MAX_ND],
        pb[CONV_MAX_ND];
    int64_t in_size, out_size, kvol;
    bool direct; /* 1x1, stride 1, no padding: x is already the column matrix */
} conv_geom;

static ifd_status conv_setup(ifd_kernel_ctx *ctx, const ifd_tensor *x, const ifd_tensor *w,
                             conv_geom *g, int64_t *out_dims) {
    memset(g, 0, sizeof *g);
    if (x->rank < 3 || w->rank != x->rank)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "x rank %d and w rank %d must match and be >= 3",
                                x->rank, w->rank);
    int nd = g->nd = x->rank - 2;
    g->batch = x->dims[0];
    g->c = x->dims[1];
    g->m = w->dims[0];
    g->group = ifd_attr_int(ctx->node, "group", 1);
    if (g->group < 1 || g->c % g->group || g->m % g->group || w->dims[1] * g->group != g->c)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "channels: x has %lld, w is [%lld, %lld, ...], group %lld",
                                (long long)g->c, (long long)g->m, (long long)w->dims[1],
                                (long long)g->group);
    g->cg = g->c / g->group;
    g->mg = g->m / g->group;
    int64_t pads[2 * CONV_MAX_ND], ks[CONV_MAX_ND];
    ifd_status st;
    if ((st = ifd_attr_ints_n(ctx, "strides", nd, 1, g->s, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "dilations", nd, 1, g->d, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "pads", 2 * nd, 0, pads, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "kernel_shape", nd, 0, ks, NULL)))
        return st;
    int ap;
    if ((st = ifd_parse_auto_pad(ctx, &ap)) != IFD_OK) return st;
    g->in_size = g->out_size = g->kvol = 1;
    bool direct = true;
    for (int i = 0; i < nd; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = w->dims[2 + i];
        if (ks[i] && ks[i] != g->k[i])
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "kernel_shape[%d] = %lld but w has %lld",
                                    i, (long long)ks[i], (long long)g->k[i]);
        if (g->s[i] < 1 || g->d[i] < 1)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "strides and dilations must be positive");
        int64_t ext = (g->k[i] - 1) * g->d[i] + 1;
        int64_t pe;
        if (ap == IFD_AUTO_PAD_NOTSET) {
            g->pb[i] = pads[i];
            pe = pads[nd + i];
            if (g->pb[i] < 0 || pe < 0)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "negative pads");
            g->out[i] = (g->in[i] + g->pb[i] + pe - ext) / g->s[i] + 1;
            if (g->in[i] + g->pb[i] + pe < ext) g->out[i] = 0;
        } else if (ap == IFD_AUTO_PAD_VALID) {
            g->pb[i] = pe = 0;
            g->out[i] = g->in[i] < ext ? 0 : (g->in[i] - ext) / g->s[i] + 1;
        } else { /* SAME_UPPER, SAME_LOWER */
            g->out[i] = (g->in[i] + g->s[i] - 1) / g->s[i];
            int64_t total = IFD_MAX((int64_t)0, (g->out[i] - 1) * g->s[i] + ext - g->in[i]);
            g->pb[i] = ap == IFD_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - g->pb[i];
        }
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] != 0 || pe != 0) direct = false;
        g->in_size *= g->in[i];
        g->out_size *= g->out[i];
        g->kvol *= g->k[i];
        out_dims[2 + i] = g->out[i];
    }
    g->direct = direct;
    out_dims[0] = g->batch;
    out_dims[1] = g->m;
    return IFD_OK;
}

typedef struct {
    const conv_geom *g;
    const uint8_t *x; /* this group's first channel */
    uint8_t *col;     /* [cg * kvol][out_size] */
    uint8_t pad;
} im2col_job;

static void im2col_rows(void *arg, int64_t begin, int64_t end) {
    const im2col_job *j = arg;
    const conv_geom *g = j->g;
    int nd = g->nd;
    int64_t last_out = g->out[nd - 1], last_in = g->in[nd - 1];
    int64_t lines = g->out_size / IFD_MAX(last_out, 1);
    int64_t instr[CONV_MAX_ND];
    instr[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) instr[i] = instr[i + 1] * g->in[i + 1];
    for (int64_t row = begin; row < end; row++) {
        int64_t c = row / g->kvol, kk = row % g->kvol, kidx[CONV_MAX_ND];
        for (int i = nd - 1; i >= 0; i--) {
            kidx[i] = kk % g->k[i];
            kk /= g->k[i];
        }
        const uint8_t *src = j->x + c * g->in_size;
        uint8_t *dst = j->col + row * g->out_size;
        int64_t s = g->s[nd - 1], x0 = kidx[nd - 1] * g->d[nd - 1] - g->pb[nd - 1];
        for (int64_t line = 0; line < lines; line++) {
            uint8_t *drow = dst + line * last_out;
            int64_t off = 0, t = line;
            bool valid = true;
            for (int i = nd - 2; i >= 0; i--) {
                int64_t o = t % g->out[i];
                t /= g->out[i];
                int64_t ix = o * g->s[i] + kidx[i] * g->d[i] - g->pb[i];
                if (ix < 0 || ix >= g->in[i]) valid = false;
                off += ix * instr[i];
            }
            if (!valid) {
                memset(drow, j->pad, (size_t)last_out);
                continue;
            }
            const uint8_t *srow = src + off;
            if (s == 1) { /* a contiguous run between the padding: memset, memcpy, memset */
                int64_t o_lo = IFD_MIN(IFD_MAX(-x0, (int64_t)0), last_out);
                int64_t o_hi = IFD_MAX(IFD_MIN(last_in - x0, last_out), o_lo);
                memset(drow, j->pad, (size_t)o_lo);
                memcpy(drow + o_lo, srow + o_lo + x0, (size_t)(o_hi - o_lo));
                memset(drow + o_hi, j->pad, (size_t)(last_out - o_hi));
                continue;
            }
            for (int64_t o = 0; o < last_out; o++) {
                int64_t ix = o * s + x0;
                drow[o] = (ix >= 0 && ix < last_in) ? srow[ix] : j->pad;
            }
        }
    }
}

/* im2col as a qgemm B producer: rows [k0, k0 + nk) x output positions [n0, n0 + nn) of the
 * column matrix, written straight into the GEMM's packed panels (no column matrix). */
typedef struct {
    const conv_geom *g;
    const uint8_t *x; /* this group's first channel */
    uint8_t pad;      /* the zero point: padding contributes (x - xz) = 0 */
    /* 2-D: x copied with its padding around it, [cg][ph][pw] (NULL: use x) */
    const uint8_t *padded;
    int64_t ph, pw;
} im2col_fill_ctx;

/* The rows and columns of padded input that the output reads. */
static void padded_dims(const conv_geom *g, int64_t *ph, int64_t *pw) {
    *ph = (g->out[0] - 1) * g->s[0] + (g->k[0] - 1) * g->d[0] + 1;
    *pw = (g->out[1] - 1) * g->s[1] + (g->k[1] - 1) * g->d[1] + 1;
}

typedef struct {
    const conv_geom *g;
    const uint8_t *x;
    uint8_t *dst, pad;
    int64_t ph, pw;
} pad_copy_job;

static void pad_copy_channels(void *arg, int64_t begin, int64_t end) {
    const pad_copy_job *j = arg;
    const conv_geom *g = j->g;
    int64_t h = g->in[0], w = g->in[1], py0 = g->pb[0], px0 = g->pb[1];
    int64_t xlo = IFD_MIN(px0, j->pw), xhi = IFD_MAX(IFD_MIN(px0 + w, j->pw), xlo);
    for (int64_t c = begin; c < end; c++)
        for (int64_t py = 0; py < j->ph; py++) {
            uint8_t *d = j->dst + (c * j->ph + py) * j->pw;
            int64_t iy = py - py0;
            if (iy < 0 || iy >= h) {
                memset(d, j->pad, (size_t)j->pw);
                continue;
            }
            memset(d, j->pad, (size_t)xlo);
            memcpy(d + xlo, j->x + (c * h + iy) * w + (xlo - px0), (size_t)(xhi - xlo));
            memset(d + xhi, j->pad, (size_t)(j->pw - xhi));
        }
}

/* Short copies without library calls: the runs here are one output line (7 to 112 bytes in
 * ResNet), so call overhead would dominate. */
static inline void copy_run(uint8_t *restrict d, const uint8_t *restrict s, int64_t n) {
    if (n >= 16) {
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) memcpy(d + i, s + i, 16);
        if (i < n) memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        if (n > 0) d[0] = s[0];
        if (n > 1) d[1] = s[1];
        if (n > 2) d[2] = s[2];
    }
}

#ifdef IFD_DQL_AVX512
static bool has_vbmi(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = has_avx512() && __builtin_cpu_supports("avx512vbmi");
    }
    return have;
}

/* d[q] = s[2 q] for q < len (stride-2 convolutions), 64 at a time by a two-source byte
 * permute; reads s[0 .. 2 len - 2] only. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void
gather_stride2(uint8_t *d, const uint8_t *s, int64_t len) {
    _Alignas(64) uint8_t ix[64];
    for (int i = 0; i < 64; i++) ix[i] = (uint8_t)(2 * i);
    const __m512i idx = _mm512_load_si512((const void *)ix);
    int64_t q = 0;
    for (; q + 64 <= len; q += 64) {
        __m512i a = _mm512_loadu_si512((const void *)(s + 2 * q));
        __m512i b = _mm512_loadu_si512((const void *)(s + 2 * q + 64));
        _mm512_storeu_si512((void *)(d + q), _mm512_permutex2var_epi8(a, idx, b));
    }
    if (q < len) {
        int64_t n = len - q, span = 2 * n - 1; /* bytes to read */
        __mmask64 ma = span >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << span) - 1);
        __mmask64 mb = span <= 64 ? 0 : (((__mmask64)1 << (span - 64)) - 1);
        __m512i a = _mm512_maskz_loadu_epi8(ma, s + 2 * q);
        __m512i b = _mm512_maskz_loadu_epi8(mb, s + 2 * q + 64);
        _mm512_mask_storeu_epi8(d + q, ((__mmask64)1 << n) - 1, _mm512_permutex2var_epi8(a, idx, b));
    }
}
#endif

/* 2-D from the padded copy: every output line is one run (strided when the stride is not 1). */
static void im2col_fill_padded(const im2col_fill_ctx *j, int64_t k0, int nk, int64_t n0, int nn,
                               uint8_t *dst, int64_t ld) {
    const conv_geom *g = j->g;
    int64_t ow = g->out[1], sh = g->s[0], sw = g->s[1], kvol = g->kvol, kw_n = g->k[1];
    bool fast2 = false; /* stride 2 by byte permutes */
#ifdef IFD_DQL_AVX512
    fast2 = sw == 2 && has_vbmi();
#endif
    /* divisions once per call (they cost as much as copying a line): the next rows step kx,
     * then ky, then c */
    int64_t c = k0 / kvol, kk = k0 % kvol, ky = kk / kw_n, kx = kk % kw_n;
    int64_t line0 = n0 / ow, o0 = n0 % ow;
    for (int r = 0; r < nk; r++) {
        if (r > 0 && ++kx == kw_n) {
            kx = 0;
            if (++ky == g->k[0]) {
                ky = 0;
                c++;
            }
        }
        const uint8_t *plane = j->padded + c * j->ph * j->pw + ky * g->d[0] * j->pw + kx * g->d[1];
        uint8_t *drow = dst + r * ld;
        int64_t line = line0, o = o0, left = nn;
        while (left > 0) {
            int64_t len = IFD_MIN(ow - o, left);
            const uint8_t *srow = plane + line * sh * j->pw + o * sw;
            if (sw == 1) {
                copy_run(drow, srow, len);
            } else if (fast2) {
#ifdef IFD_DQL_AVX512
                gather_stride2(drow, srow, len);
#endif
            } else {
                uint8_t *restrict d = drow;
                for (int64_t q = 0; q < len; q++) d[q] = srow[q * sw];
            }
            drow += len;
            left -= len;
            o = 0;
            line++;
        }
    }
}

static void im2col_fill(void *arg, int64_t k0, int nk, int64_t n0, int nn, uint8_t *dst, int64_t ld) {
    const im2col_fill_ctx *j = arg;
    const conv_geom *g = j->g;
    int nd = g->nd;
    if (j->padded) { /* 2-D */
        im2col_fill_padded(j, k0, nk, n0, nn, dst, ld);
        return;
    }
    int64_t last_out = g->out[nd - 1], last_in = g->in[nd - 1], s = g->s[nd - 1];
    int64_t instr[CONV_MAX_ND];
    instr[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) instr[i] = instr[i + 1] * g->in[i + 1];
    for (int r = 0; r < nk; r++) {
        int64_t row = k0 + r, c = row / g->kvol, kk = row % g->kvol, kidx[CONV_MAX_ND];
        for (int i = nd - 1; i >= 0; i--) {
            kidx[i] = kk % g->k[i];
            kk /= g->k[i];
        }
        const uint8_t *src = j->x + c * g->in_size;
        uint8_t *drow = dst + r * ld;
        int64_t x0 = kidx[nd - 1] * g->d[nd - 1] - g->pb[nd - 1];
        int64_t line = n0 / last_out, o = n0 % last_out, left = nn;
        while (left > 0) {
            int64_t len = IFD_MIN(last_out - o, left);
            int64_t off = 0, t = line;
            bool valid = true;
            for (int i = nd - 2; i >= 0; i--) {
                int64_t oi = t % g->out[i];
                t /= g->out[i];
                int64_t ix = oi * g->s[i] + kidx[i] * g->d[i] - g->pb[i];
                if (ix < 0 || ix >= g->in[i]) valid = false;
                off += ix * instr[i];
            }
            if (!valid) {
                memset(drow, j->pad, (size_t)len);
            } else if (s == 1) { /* a contiguous run between the padding */
                const uint8_t *srow = src + off;
                int64_t lo = IFD_MIN(IFD_MAX(-x0, o), o + len);
                int64_t hi = IFD_MAX(IFD_MIN(last_in - x0, o + len), lo);
                memset(drow, j->pad, (size_t)(lo - o));
                memcpy(drow + (lo - o), srow + lo + x0, (size_t)(hi - lo));
                memset(drow + (hi - o), j->pad, (size_t)(o + len - hi));
            } else {
                const uint8_t *srow = src + off;
                for (int64_t q = 0; q < len; q++) {
                    int64_t ix = (o + q) * s + x0;
                    drow[q] = (ix >= 0 && ix < last_in) ? srow[ix] : j->pad;
                }
            }
            drow += len;
            left -= len;
            o = 0;
            line++;
        }
    }
}

/* Shared by ConvInteger (acc straight into y) and QLinearConv (acc then requantized). */
typedef struct {
    const ifd_tensor *x, *w, *xzt, *wzt;
    int64_t nwz;
    int32_t xz;
    bool has_xz;
    /* scratch pieces (conv_scratch) */
    void *ws;
    uint8_t *col;
    int32_t *acc, *wz;
} conv_q_in;

static ifd_status conv_scratch(ifd_kernel_ctx *ctx, const conv_geom *g, conv_q_in *in,
                               bool need_acc) {
    int64_t kdim = g->cg * g->kvol;
    ifd_status st = IFD_OK;
    in->wz = scratch_i32(ctx, in->wzt, &st);
    in->ws = qgemm_workspace(ctx, g->mg, g->out_size, kdim, &st);
    in->col = g->direct ? NULL
                        : ifd_kernel_scratch_array(ctx, (size_t)kdim, (size_t)g->out_size, &st);
    in->acc = need_acc ? ifd_kernel_scratch_array(ctx, (size_t)g->mg * (size_t)g->out_size,
                                                  sizeof(int32_t), &st)
                       : NULL;
    return st;
}

typedef void (*conv_epilogue)(void *arg, int64_t b, int64_t grp, const int32_t *acc);

/* acc_direct: the int32 output [N, M, out...] (ConvInteger), or NULL to use in->acc per group
 * and hand it to epi. */
static void conv_q_run(ifd_kernel_ctx *ctx, const conv_geom *g, const conv_q_in *in,
                       int32_t *acc_direct, conv_epilogue epi, void *epi_arg) {
    int64_t kdim = g->cg * g->kvol;
    const uint8_t *xd = in->x->data, *wd = in->w->data;
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t grp = 0; grp < g->group; grp++) {
            const uint8_t *xg = xd + (b * g->c + grp * g->cg) * g->in_size;
            const uint8_t *bmat = xg;
            if (!g->direct) {
                /* padding holds the zero point so that it contributes (x - xz) = 0 */
                im2col_job ij = {g, xg, in->col, (uint8_t)in->xz};
                ifd_parallel_for(ctx->pool, kdim,
                                 IFD_MAX((int64_t)1, 16384 / IFD_MAX(g->out_size, 1)), im2col_rows,
                                 &ij);
                bmat = in->col;
            }
            int32_t *c = acc_direct ? acc_direct + (b * g->m + grp * g->mg) * g->out_size : in->acc;
            ifd_qgemm_params p = {g->mg, g->out_size, kdim, wd + grp * g->mg * kdim, kdim,
                                  in->w->dtype == IFD_DTYPE_INT8,
                                  in->nwz > 1 ? in->wz + grp * g->mg : in->wz,
                                  in->nwz > 1 ? g->mg : in->nwz, bmat, g->out_size,
                                  in->x->dtype == IFD_DTYPE_INT8, in->has_xz ? &in->xz : NULL,
                                  in->has_xz ? 1 : 0, c, g->out_size};
            ifd_qgemm(&p, in->ws, ctx->pool);
            if (epi) epi(epi_arg, b, grp, c);
        }
}

static ifd_status conv_inputs(ifd_kernel_ctx *ctx, int xi, int wi, int xzi, int wzi,
                              conv_geom *g, int64_t *out_dims, conv_q_in *in) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, xi)) || (st = ifd_kernel_require_input(ctx, wi)))
        return st;
    memset(in, 0, sizeof *in);
    in->x = ctx->inputs[xi];
    in->w = ctx->inputs[wi];
    if (!is_8bit(in->x->dtype) || !is_8bit(in->w->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "input types %s x %s are not 8-bit",
                                ifd_dtype_name(in->x->dtype), ifd_dtype_name(in->w->dtype));
    if ((st = conv_setup(ctx, in->x, in->w, g, out_dims))) return st;
    int64_t nxz;
    if ((st = zero_points(ctx, xzi, "x_zero_point", in->x->dtype, 1, &in->xzt, &nxz)) ||
        (st = zero_points(ctx, wzi, "w_zero_point", in->w->dtype, g->m, &in->wzt, &in->nwz)))
        return st;
    in->has_xz = nxz > 0;
    in->xz = nxz ? (int32_t)ifd_tensor_get_i64(in->xzt, 0) : 0;
    return IFD_OK;
}

static ifd_status run_conv_integer(ifd_kernel_ctx *ctx) {
    conv_geom g;
    conv_q_in in;
    int64_t od[IFD_MAX_RANK];
    ifd_status st = conv_inputs(ctx, 0, 1, 2, 3, &g, od, &in);
    if (st) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT32, in.x->rank, od, &y)) || !y || !y->count)
        return st;
    if ((st = conv_scratch(ctx, &g, &in, false))) return st;
    conv_q_run(ctx, &g, &in, y->data, NULL, NULL);
    return IFD_OK;
}

typedef struct {
    const conv_geom *g;
    uint8_t *y;
    bool ysig;
    const float *mult; /* per output channel (m) */
    int64_t nmult;
    const int32_t *bias; /* [m] or NULL */
    int32_t yzp;
} qconv_epi;

static void qlinear_conv_epilogue(void *arg, int64_t b, int64_t grp, const int32_t *acc) {
    const qconv_epi *e = arg;
    const conv_geom *g = e->g;
    for (int64_t i = 0; i < g->mg; i++) {
        int64_t m = grp * g->mg + i;
        const float *mult = e->mult + (e->nmult == 1 ? 0 : m);
        requant_row(acc + i * g->out_size, e->y + (b * g->m + m) * g->out_size, e->ysig,
                    g->out_size, e->bias ? e->bias[m] : 0, mult, 0, e->yzp);
    }
}

static ifd_status run_qlinear_conv(ifd_kernel_ctx *ctx) {
    conv_geom g;
    conv_q_in in;
    int64_t od[IFD_MAX_RANK];
    ifd_status st = conv_inputs(ctx, 0, 3, 2, 5, &g, od, &in);
    if (st) return st;
    const ifd_tensor *yzt = ctx->n_inputs > 7 ? ctx->inputs[7] : NULL;
    ifd_dtype yt = yzt ? yzt->dtype : in.x->dtype;
    if (!is_8bit(yt))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "output type %s is not 8-bit",
                                ifd_dtype_name(yt));
    const ifd_tensor *xst, *wst, *yst, *yzt2;
    int64_t nxs, nws, nys, nyz;
    if ((st = scales(ctx, 1, "x_scale", 1, &xst, &nxs)) ||
        (st = scales(ctx, 4, "w_scale", g.m, &wst, &nws)) ||
        (st = scales(ctx, 6, "y_scale", 1, &yst, &nys)) ||
        (st = zero_points(ctx, 7, "y_zero_point", yt, 1, &yzt2, &nyz)))
        return st;
    const ifd_tensor *bt = ctx->n_inputs > 8 ? ctx->inputs[8] : NULL;
    if (bt && (bt->dtype != IFD_DTYPE_INT32 || bt->count != g.m))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "B must be int32 with %lld elements", (long long)g.m);
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, yt, in.x->rank, od, &y)) || !y || !y->count) return st;
    float *xs = scratch_f32(ctx, xst, &st), *ws = scratch_f32(ctx, wst, &st);
    float *ys = scratch_f32(ctx, yst, &st);
    float *mult = ifd_kernel_scratch_array(ctx, (size_t)nws, sizeof(float), &st);
    if (st || (st = conv_scratch(ctx, &g, &in, true))) return st;
    ifd_dtype calc = ctx->inputs[1]->dtype;
    for (int64_t i = 0; i < nws; i++) mult[i] = scale_mul_div(xs[0], ws[i], ys[0], calc);
    qconv_epi e = {&g, y->data, yt == IFD_DTYPE_INT8, mult, nws, bt ? bt->data : NULL,
                   nyz ? (int32_t)ifd_tensor_get_i64(yzt2, 0) : 0};
    conv_q_run(ctx, &g, &in, NULL, qlinear_conv_epilogue, &e);
    return IFD_OK;
}

/* ---- fused int8 nodes (made by runtime/fuse_quant.c, never read from a model) ---------- */

/* Dynamic: DynamicQuantizeLinear's (xq, xs, xzp) -> MatMulInteger with constant B -> Cast ->
 * Mul by xs * ws -> [Add bias], as one GEMM over B packed at load with the scales and the
 * bias in its epilogue. Inputs: 0 xq uint8/int8 [..., M, K], 1 xs float scalar, 2 xzp scalar
 * (optional), 3 B 8-bit [K, N] (constant), 4 b_zero_point [N] or scalar (constant, optional),
 * 5 ws float [N] or scalar (constant), 6 bias float [N] (constant, optional). Out: float
 * [..., M, N]. */
typedef struct {
    ifd_qgemm_packed *pb;
    int64_t k, n;
    float *col_scale; /* [n] */
    float *bias;      /* [n] or NULL */
    bool gelu;        /* QMatMulDynamicGeluFused: GELU (erf form) on the output */
} qmm_dyn_state;

static void qmm_dyn_release(void *p) {
    qmm_dyn_state *s = p;
    if (!s) return;
    ifd_qgemm_packed_free(s->pb);
    ifd_free(s->col_scale);
    ifd_free(s->bias);
    ifd_free(s);
}

static ifd_status prepare_error(const ifd_prepare_ctx *ctx, const char *what) {
    return ifd_error(IFD_ERR_INVALID_ARGUMENT, "node '%s' (%s, fused int8): %s", ctx->node->name,
                     ctx->node->op_type, what);
}

/* A constant's values as int32 (zero points) into a new array; NULL t gives count 0. */
static ifd_status const_i32(const ifd_tensor *t, int32_t **out, int64_t *count) {
    *out = NULL;
    *count = t ? t->count : 0;
    if (!t) return IFD_OK;
    *out = ifd_calloc((size_t)(t->count ? t->count : 1), sizeof(int32_t));
    if (!*out) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    fill_int32s(t, *out);
    return IFD_OK;
}

static ifd_status qmm_dyn_prepare(ifd_prepare_ctx *ctx) {
    const ifd_tensor *b = ctx->n_inputs > 3 ? ctx->constants[3] : NULL;
    const ifd_tensor *bz = ctx->n_inputs > 4 ? ctx->constants[4] : NULL;
    const ifd_tensor *ws = ctx->n_inputs > 5 ? ctx->constants[5] : NULL;
    const ifd_tensor *bias = ctx->n_inputs > 6 ? ctx->constants[6] : NULL;
    if (!b || b->rank != 2 || !is_8bit(b->dtype)) return prepare_error(ctx, "B must be a constant 8-bit matrix");
    int64_t k = b->dims[0], n = b->dims[1];
    if (!ws || ws->dtype != IFD_DTYPE_FLOAT || (ws->count != 1 && ws->count != n))
        return prepare_error(ctx, "the weight scale must be a float constant of 1 or N values");
    if (bz && (bz->dtype != b->dtype || (bz->count != 1 && bz->count != n)))
        return prepare_error(ctx, "b_zero_point must match B's type with 1 or N values");
    if (bias && (bias->dtype != IFD_DTYPE_FLOAT || bias->count != n))
        return prepare_error(ctx, "the bias must be a float constant of N values");
    qmm_dyn_state *s = ifd_calloc(1, sizeof *s);
    int32_t *zb = NULL;
    int64_t nzb = 0;
    ifd_status st = IFD_OK;
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    s->k = k;
    s->n = n;
    s->col_scale = ifd_calloc((size_t)(n ? n : 1), sizeof(float));
    s->bias = bias ? ifd_calloc((size_t)(n ? n : 1), sizeof(float)) : NULL;
    if (!s->col_scale || (bias && !s->bias)) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (int64_t j = 0; j < n; j++) s->col_scale[j] = ((const float *)ws->data)[ws->count == 1 ? 0 : j];
    if (bias) memcpy(s->bias, bias->data, (size_t)n * sizeof(float));
    if ((st = const_i32(bz, &zb, &nzb))) goto out;
    st = ifd_qgemm_pack(true, k, n, b->data, n, b->dtype == IFD_DTYPE_INT8, zb, nzb, &s->pb);
out:
    ifd_free(zb);
    if (st) qmm_dyn_release(s);
    else ctx->state = s;
    return st;
}

/* The same with GELU, 0.5 y (1 + erf(y / sqrt 2)), applied to each output row piece in the
 * GEMM epilogue (the five nodes PyTorch exports for nn.GELU after the projection). */
static ifd_status qmm_dyn_gelu_prepare(ifd_prepare_ctx *ctx) {
    ifd_status st = qmm_dyn_prepare(ctx);
    if (!st) ((qmm_dyn_state *)ctx->state)->gelu = true;
    return st;
}

static ifd_status run_qmm_dyn(ifd_kernel_ctx *ctx) {
    const qmm_dyn_state *s = ctx->state;
    ifd_status st;
    if (!s) return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "fused int8 MatMul was not prepared");
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1))) return st;
    const ifd_tensor *x = ctx->inputs[0], *xs = ctx->inputs[1];
    const ifd_tensor *xz = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (!is_8bit(x->dtype) || x->rank < 1 || x->dims[x->rank - 1] != s->k)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "A must be 8-bit with last dim %lld", (long long)s->k);
    if (xs->dtype != IFD_DTYPE_FLOAT || xs->count != 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "the input scale must be one float");
    if (xz && (xz->dtype != x->dtype || xz->count != 1))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "a_zero_point must be one %s",
                                ifd_dtype_name(x->dtype));
    int64_t od[IFD_MAX_RANK];
    for (int i = 0; i < x->rank - 1; i++) od[i] = x->dims[i];
    od[x->rank - 1] = s->n;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_FLOAT, x->rank, od, &y)) || !y || !y->count) return st;
    int32_t za = xz ? (int32_t)ifd_tensor_get_i64(xz, 0) : 0;
    ifd_qgemm_epilogue ep = {IFD_QGEMM_OUT_FLOAT, ((const float *)xs->data)[0], NULL, s->col_scale,
                             NULL, s->bias, -INFINITY, INFINITY, 0.0f, s->gelu};
    ifd_qgemm_args a = {.m = x->count / IFD_MAX(s->k, (int64_t)1), .n = s->n, .k = s->k,
                        .a = x->data, .lda = s->k, .a_signed = x->dtype == IFD_DTYPE_INT8,
                        .a_zero = &za, .a_zero_count = 1, .pb = s->pb, .c = y->data,
                        .ldc = s->n, .ep = &ep};
    if (s->k == 0) a.m = y->count / IFD_MAX(s->n, (int64_t)1);
    size_t bytes;
    if (!ifd_qgemm_ex_workspace_size(&a, &bytes))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "scratch size overflows");
    void *w = ifd_kernel_scratch_array(ctx, bytes, 1, &st);
    if (st) return st;
    ifd_qgemm_ex(&a, w, ctx->pool);
    return IFD_OK;
}

/* Static QDQ: DQ(xq) -> Conv(., DQ(Wq), bias) [-> Relu/Clip] -> Q as one int8 convolution
 * with uint8 in and out, the weights packed per group at load and the requantization (per
 * channel multiplier, bias, activation clamp, zero point) in the GEMM epilogue. Inputs (the
 * node keeps Conv's attributes): 0 xq uint8, 1 x_scale, 2 x_zero_point (optional), 3 Wq int8
 * [M, C/g, k...], 4 w_scale [M] or scalar, 5 w_zero_point (optional), 6 bias float [M]
 * (optional, already dequantized), 7 y_scale, 8 y_zero_point uint8 (optional). The Relu or
 * Clip comes as the node's activation. */
typedef struct {
    ifd_qgemm_packed **pa; /* one per group */
    int64_t group, m;
    float *mult, *bias;    /* [m]: x_scale * w_scale / y_scale, bias / y_scale */
    float lo, hi, yzp;
    int32_t xz;
} qconv_state;

static void qconv_release(void *p) {
    qconv_state *s = p;
    if (!s) return;
    for (int64_t g = 0; s->pa && g < s->group; g++) ifd_qgemm_packed_free(s->pa[g]);
    ifd_free(s->pa);
    ifd_free(s->mult);
    ifd_free(s->bias);
    ifd_free(s);
}

static bool const_scalar(const ifd_tensor *t, ifd_dtype want) {
    return t && t->dtype == want && t->count == 1;
}

static ifd_status qconv_prepare(ifd_prepare_ctx *ctx) {
    const ifd_tensor *const *c = ctx->constants;
    if (ctx->n_inputs != 9) return prepare_error(ctx, "expects 9 inputs");
    const ifd_tensor *xs = c[1], *xz = c[2], *w = c[3], *wsc = c[4], *wz = c[5], *bias = c[6];
    const ifd_tensor *ys = c[7], *yz = c[8];
    if (!const_scalar(xs, IFD_DTYPE_FLOAT) || !const_scalar(ys, IFD_DTYPE_FLOAT) ||
        (ctx->input_types[2] && !xz) || (ctx->input_types[8] && !yz) ||
        (xz && !const_scalar(xz, IFD_DTYPE_UINT8)) || (yz && !const_scalar(yz, IFD_DTYPE_UINT8)))
        return prepare_error(ctx, "scales and zero points must be constant scalars (uint8)");
    if (!w || w->dtype != IFD_DTYPE_INT8 || w->rank < 3) return prepare_error(ctx, "W must be a constant int8 tensor");
    int64_t m = w->dims[0], group = ifd_attr_int(ctx->node, "group", 1);
    if (m < 1 || group < 1 || m % group) return prepare_error(ctx, "bad group or output channels");
    if (!wsc || wsc->dtype != IFD_DTYPE_FLOAT || (wsc->count != 1 && wsc->count != m) ||
        (wz && (wz->dtype != IFD_DTYPE_INT8 || (wz->count != 1 && wz->count != m))) ||
        (bias && (bias->dtype != IFD_DTYPE_FLOAT || bias->count != m)))
        return prepare_error(ctx, "weight scale / zero point / bias do not match W's channels");
    qconv_state *s = ifd_calloc(1, sizeof *s);
    int32_t *wzv = NULL;
    int64_t nwz = 0;
    ifd_status st = IFD_OK;
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    s->group = group;
    s->m = m;
    s->pa = ifd_calloc((size_t)group, sizeof *s->pa);
    s->mult = ifd_calloc((size_t)m, sizeof(float));
    s->bias = ifd_calloc((size_t)m, sizeof(float));
    if (!s->pa || !s->mult || !s->bias) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    float xsv = ((const float *)xs->data)[0], ysv = ((const float *)ys->data)[0];
    for (int64_t i = 0; i < m; i++) {
        float wv = ((const float *)wsc->data)[wsc->count == 1 ? 0 : i];
        s->mult[i] = (float)((double)xsv * wv / ysv);
        s->bias[i] = bias ? (float)(((const float *)bias->data)[i] / (double)ysv) : 0.0f;
    }
    s->xz = xz ? ((const uint8_t *)xz->data)[0] : 0;
    s->yzp = yz ? (float)((const uint8_t *)yz->data)[0] : 0.0f;
    s->lo = -INFINITY;
    s->hi = INFINITY;
    const ifd_activation *act = ctx->activation;
    if (act->kind == IFD_ACT_RELU) s->lo = 0.0f;
    else if (act->kind == IFD_ACT_CLIP) {
        s->lo = (float)(act->alpha / (double)ysv);
        s->hi = (float)(act->beta / (double)ysv);
    } else if (act->kind != IFD_ACT_NONE) {
        st = prepare_error(ctx, "only Relu or Clip can be fused");
        goto out;
    }
    if ((st = const_i32(wz, &wzv, &nwz))) goto out;
    int64_t mg = m / group, kdim = w->count / m;
    for (int64_t g = 0; g < group && !st; g++)
        st = ifd_qgemm_pack(false, mg, kdim, (const uint8_t *)w->data + g * mg * kdim, kdim, true,
                            nwz > 1 ? wzv + g * mg : wzv, nwz > 1 ? mg : nwz, &s->pa[g]);
out:
    ifd_free(wzv);
    if (st) qconv_release(s);
    else ctx->state = s;
    return st;
}

static ifd_status run_qconv(ifd_kernel_ctx *ctx) {
    const qconv_state *s = ctx->state;
    ifd_status st;
    if (!s) return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "fused int8 Conv was not prepared");
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 3))) return st;
    const ifd_tensor *x = ctx->inputs[0], *w = ctx->inputs[3];
    if (x->dtype != IFD_DTYPE_UINT8)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "x must be uint8, got %s", ifd_dtype_name(x->dtype));
    conv_geom g;
    int64_t od[IFD_MAX_RANK];
    if ((st = conv_setup(ctx, x, w, &g, od))) return st;
    if (g.group != s->group || g.m != s->m)
        return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "group or channels changed after prepare");
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_UINT8, x->rank, od, &y)) || !y || !y->count) return st;
    int64_t kdim = g.cg * g.kvol;
    ifd_qgemm_epilogue ep = {IFD_QGEMM_OUT_UINT8, 1.0f, NULL, NULL, NULL, NULL, s->lo, s->hi,
                             s->yzp, false};
    im2col_fill_ctx fc = {&g, NULL, (uint8_t)s->xz, NULL, 0, 0};
    uint8_t *padded = NULL;
    if (!g.direct && g.nd == 2) { /* one padded copy per group: the im2col runs have no edges */
        padded_dims(&g, &fc.ph, &fc.pw);
        size_t plane;
        if (!ifd_mul_size((size_t)fc.ph, (size_t)fc.pw, &plane))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "scratch size overflows");
        padded = ifd_kernel_scratch_array(ctx, (size_t)g.cg, plane, &st);
        if (st) return st;
        fc.padded = padded;
    }
    ifd_qgemm_args a = {.m = g.mg, .n = g.out_size, .k = kdim, .lda = kdim, .a_signed = true,
                        .ldb = g.out_size, .a_zero_count = 0, .b_zero = &s->xz, .b_zero_count = 1,
                        .ldc = g.out_size, .ep = &ep};
    a.pa = s->pa[0];
    if (!g.direct) { /* the column matrix is made piece by piece into the packed panels */
        a.b_fill = im2col_fill;
        a.b_fill_ctx = &fc;
    } else {
        a.b = x->data; /* a stand-in for the workspace size; set per group below */
    }
    size_t bytes;
    if (!st && !ifd_qgemm_ex_workspace_size(&a, &bytes))
        st = ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "scratch size overflows");
    void *ws = st ? NULL : ifd_kernel_scratch_array(ctx, bytes, 1, &st);
    if (st) return st;
    const uint8_t *xd = x->data;
    for (int64_t b = 0; b < g.batch; b++)
        for (int64_t grp = 0; grp < g.group; grp++) {
            const uint8_t *xg = xd + (b * g.c + grp * g.cg) * g.in_size;
            if (g.direct) a.b = xg;
            else fc.x = xg;
            if (padded) {
                pad_copy_job pj = {&g, xg, padded, (uint8_t)s->xz, fc.ph, fc.pw};
                int64_t grain = IFD_MAX((int64_t)1, 16384 / IFD_MAX(fc.ph * fc.pw, 1));
                ifd_parallel_for(ctx->pool, g.cg, grain, pad_copy_channels, &pj);
            }
            a.pa = s->pa[grp];
            a.c = (uint8_t *)y->data + (b * g.m + grp * g.mg) * g.out_size;
            ep.row_scale = s->mult + grp * g.mg;
            ep.row_bias = s->bias + grp * g.mg;
            ifd_qgemm_ex(&a, ws, ctx->pool);
        }
    return IFD_OK;
}

/* Static QDQ residual join: Add(DQ(aq), DQ(bq)) [-> Relu] -> Q as one uint8 op with the
 * same float steps as the unfused nodes (dequantize each side, add, relu, divide by y_scale,
 * round to nearest even), so its results are bit-identical to theirs. Inputs: 0 aq uint8,
 * 1 a_scale, 2 a_zero_point (optional), 3 bq uint8, 4 b_scale, 5 b_zero_point (optional),
 * 6 y_scale, 7 y_zero_point (optional), all scalars constant; NumPy broadcasting of aq and
 * bq as Add does. The Relu comes as the node's activation. */
typedef struct {
    float sa, za, sb, zb, sy, zy;
    bool relu;
} qadd_state;

static ifd_status qadd_prepare(ifd_prepare_ctx *ctx) {
    const ifd_tensor *const *c = ctx->constants;
    if (ctx->n_inputs != 8) return prepare_error(ctx, "expects 8 inputs");
    static const int scale_at[3] = {1, 4, 6}, zero_at[3] = {2, 5, 7};
    float v[6];
    for (int i = 0; i < 3; i++) {
        const ifd_tensor *sc = c[scale_at[i]], *zp = c[zero_at[i]];
        if (!const_scalar(sc, IFD_DTYPE_FLOAT) || (ctx->input_types[zero_at[i]] && !zp) ||
            (zp && !const_scalar(zp, IFD_DTYPE_UINT8)))
            return prepare_error(ctx, "scales and zero points must be constant scalars (uint8)");
        v[2 * i] = ((const float *)sc->data)[0];
        v[2 * i + 1] = zp ? (float)((const uint8_t *)zp->data)[0] : 0.0f;
    }
    if (ctx->activation->kind != IFD_ACT_NONE && ctx->activation->kind != IFD_ACT_RELU)
        return prepare_error(ctx, "only Relu can be fused");
    qadd_state *s = ifd_calloc(1, sizeof *s);
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    *s = (qadd_state){v[0], v[1], v[2], v[3], v[4], v[5], ctx->activation->kind == IFD_ACT_RELU};
    ctx->state = s;
    return IFD_OK;
}

static void qadd_release(void *p) { ifd_free(p); }

static inline uint8_t qadd_one(const qadd_state *s, uint8_t a, uint8_t b) {
    float f = ((float)a - s->za) * s->sa + ((float)b - s->zb) * s->sb;
    if (s->relu) f = f > 0.0f ? f : 0.0f;
    float q = f / s->sy, lo = -s->zy, hi = 255.0f - s->zy;
    q = q >= lo ? q : lo;
    q = q <= hi ? q : hi;
    return (uint8_t)((int32_t)rne_small(q) + (int32_t)s->zy);
}

typedef struct {
    const qadd_state *s;
    const uint8_t *a, *b;
    uint8_t *y;
    /* broadcasting (NULL astr: same shapes, flat) */
    int rank;
    const int64_t *dims, *astr, *bstr;
} qadd_job;

#ifdef IFD_DQL_AVX512
/* The flat loop of qadd_span, 16 at a time: the same operations in the same order. */
__attribute__((target("avx512f,avx512bw"))) static void
qadd_flat_avx512(const qadd_state *s, const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n) {
    const __m512 za = _mm512_set1_ps(s->za), sa = _mm512_set1_ps(s->sa), zb = _mm512_set1_ps(s->zb),
                 sb = _mm512_set1_ps(s->sb), sy = _mm512_set1_ps(s->sy),
                 lo = _mm512_set1_ps(-s->zy), hi = _mm512_set1_ps(255.0f - s->zy),
                 floor0 = _mm512_set1_ps(s->relu ? 0.0f : -INFINITY);
    const __m512i zy = _mm512_set1_epi32((int32_t)s->zy);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m128i a8 = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8((__mmask64)k, a + i));
        __m128i b8 = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8((__mmask64)k, b + i));
        __m512 fa = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(a8));
        __m512 fb = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b8));
        __m512 f = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(fa, za), sa),
                                 _mm512_mul_ps(_mm512_sub_ps(fb, zb), sb));
        __m512 q = _mm512_div_ps(_mm512_max_ps(f, floor0), sy);
        q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
        __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(q), zy); /* nearest even */
        _mm512_mask_cvtusepi32_storeu_epi8(y + i, k, r);
    }
}
#endif

static void qadd_span(void *arg, int64_t begin, int64_t end) {
    const qadd_job *j = arg;
    const qadd_state *s = j->s;
#ifdef IFD_DQL_AVX512
    if (!j->astr && has_avx512()) {
        qadd_flat_avx512(s, j->a + begin, j->b + begin, j->y + begin, end - begin);
        return;
    }
#endif
    if (!j->astr) {
        const uint8_t *restrict a = j->a, *restrict b = j->b;
        uint8_t *restrict y = j->y;
        float za = s->za, sa = s->sa, zb = s->zb, sb = s->sb, sy = s->sy, zy = s->zy;
        float lo = -zy, hi = 255.0f - zy, floor0 = s->relu ? 0.0f : -INFINITY;
        for (int64_t i = begin; i < end; i++) { /* the loop qadd_one spells out, vectorized */
            float f = ((float)a[i] - za) * sa + ((float)b[i] - zb) * sb;
            f = f > floor0 ? f : floor0;
            float q = f / sy;
            q = q >= lo ? q : lo;
            q = q <= hi ? q : hi;
            y[i] = (uint8_t)((int32_t)rne_small(q) + (int32_t)zy);
        }
        return;
    }
    for (int64_t i = begin; i < end; i++) {
        int64_t t = i, ao = 0, bo = 0;
        for (int d = j->rank - 1; d >= 0; d--) {
            int64_t x = t % j->dims[d];
            t /= j->dims[d];
            ao += x * j->astr[d];
            bo += x * j->bstr[d];
        }
        j->y[i] = qadd_one(s, j->a[ao], j->b[bo]);
    }
}

static ifd_status run_qadd(ifd_kernel_ctx *ctx) {
    const qadd_state *s = ctx->state;
    ifd_status st;
    if (!s) return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "fused int8 Add was not prepared");
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 3))) return st;
    const ifd_tensor *a = ctx->inputs[0], *b = ctx->inputs[3];
    if (a->dtype != IFD_DTYPE_UINT8 || b->dtype != IFD_DTYPE_UINT8)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "inputs must be uint8, got %s and %s",
                                ifd_dtype_name(a->dtype), ifd_dtype_name(b->dtype));
    int64_t od[IFD_MAX_RANK];
    int rank;
    if ((st = ifd_broadcast_shape(a->rank, a->dims, b->rank, b->dims, &rank, od))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_UINT8, rank, od, &y)) || !y || !y->count) return st;
    qadd_job j = {s, a->data, b->data, y->data, rank, od, NULL, NULL};
    int64_t astr[IFD_MAX_RANK], bstr[IFD_MAX_RANK];
    if (a->count != y->count || b->count != y->count) { /* strides 0 on broadcast dimensions */
        int64_t sa = 1, sb = 1;
        for (int d = rank - 1; d >= 0; d--) {
            int da = d - (rank - a->rank), db = d - (rank - b->rank);
            int64_t na = da >= 0 ? a->dims[da] : 1, nb = db >= 0 ? b->dims[db] : 1;
            astr[d] = na == 1 ? 0 : sa;
            bstr[d] = nb == 1 ? 0 : sb;
            sa *= na;
            sb *= nb;
        }
        j.astr = astr;
        j.bstr = bstr;
    }
    ifd_parallel_for(ctx->pool, y->count, 16384, qadd_span, &j);
    return IFD_OK;
}

/* Looked up by runtime/fuse_quant.c only; the domain keeps them apart from model operators. */
const ifd_op_def ifd_op_qmatmul_dyn_fused = {"com.inferd", "QMatMulDynamicFused", 1, run_qmm_dyn,
                                             qmm_dyn_prepare, qmm_dyn_release, IFD_OP_NO_CONSTANT_FOLD};
const ifd_op_def ifd_op_qmatmul_dyn_gelu_fused = {"com.inferd", "QMatMulDynamicGeluFused", 1,
                                                  run_qmm_dyn, qmm_dyn_gelu_prepare,
                                                  qmm_dyn_release, IFD_OP_NO_CONSTANT_FOLD};
const ifd_op_def ifd_op_qconv_fused = {"com.inferd", "QLinearConvFused", 1, run_qconv,
                                       qconv_prepare, qconv_release, IFD_OP_NO_CONSTANT_FOLD};
const ifd_op_def ifd_op_qadd_fused = {"com.inferd", "QLinearAddFused", 1, run_qadd, qadd_prepare,
                                      qadd_release, IFD_OP_NO_CONSTANT_FOLD};

const ifd_op_def ifd_ops_quantize[] = {
    {"", "QuantizeLinear", 10, run_quantize_linear, NULL, NULL, 0},
    {"", "DequantizeLinear", 10, run_dequantize_linear, NULL, NULL, 0},
    {"", "DynamicQuantizeLinear", 11, run_dynamic_quantize_linear, NULL, NULL, 0},
    {"", "MatMulInteger", 10, run_matmul_integer, NULL, NULL, 0},
    {"", "QLinearMatMul", 10, run_qlinear_matmul, NULL, NULL, 0},
    {"", "ConvInteger", 10, run_conv_integer, NULL, NULL, 0},
    {"", "QLinearConv", 10, run_qlinear_conv, NULL, NULL, 0},
    {0},
};
