/* Operator family: resize. Resize (opset 10..19+), Upsample (7/9), GridSample, AffineGrid.
 *
 * Resize is separable: every resized axis gets a table of taps (clamped input index and
 * weight per output coordinate, built once per call in scratch), then
 *   - nearest (one tap per axis): a single gather pass over output rows, any dtype, exact;
 *   - linear / cubic (antialias too): one 1-D pass per resized axis, in float (double for
 *     double tensors), the axis that shrinks most first. A pass along an inner axis combines
 *     whole contiguous rows (vectorized); along the last axis it gathers within a row.
 * Coordinates follow the ONNX reference (onnx/reference/ops/op_resize.py). */
#include "kernels/vecmath.h"
#include "ops/op.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RS_X86 1
#else
#define RS_X86 0
#endif

/* ---- shared small helpers --------------------------------------------------------------- */

/* Integer results round to nearest and saturate. */
static double saturate_for(ifd_dtype dtype, double v) {
    double lo, hi;
    switch (dtype) {
    case IFD_DTYPE_INT8: lo = -128; hi = 127; break;
    case IFD_DTYPE_UINT8: lo = 0; hi = 255; break;
    case IFD_DTYPE_INT16: lo = -32768; hi = 32767; break;
    case IFD_DTYPE_UINT16: lo = 0; hi = 65535; break;
    case IFD_DTYPE_INT32: lo = -2147483648.0; hi = 2147483647.0; break;
    case IFD_DTYPE_UINT32: lo = 0; hi = 4294967295.0; break;
    case IFD_DTYPE_INT64: lo = -9223372036854775808.0; hi = 9223372036854774784.0; break;
    case IFD_DTYPE_UINT64: lo = 0; hi = 18446744073709549568.0; break;
    default: return v;
    }
    if (v != v) return 0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : v;
}

static bool is_int_type(ifd_dtype d) {
    return ifd_dtype_is_signed_int(d) || ifd_dtype_is_unsigned_int(d) || d == IFD_DTYPE_BOOL;
}

/* ---- Resize parameters ------------------------------------------------------------------ */

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum {
    CT_HALF_PIXEL, CT_HALF_PIXEL_SYMMETRIC, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS,
    CT_ASYMMETRIC, CT_TF_HALF_PIXEL_FOR_NN, CT_TF_CROP_AND_RESIZE
};
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct rs_axis {
    int64_t in, out;
    double scale, roi0, roi1;
    int n;            /* taps per output coordinate */
    int64_t *idx;     /* [out, n] clamped input indices */
    float *wf;        /* [out, n] */
    double *wd;       /* [out, n] */
    uint8_t *extrap;  /* [out] 1: coordinate outside the crop box (tf_crop_and_resize) */
    /* float two-tap / one-tap fast path: tap k of output l at i32[k * out + l], w2[k * out + l] */
    int32_t *i32;
    float *w2;
    bool any_extrap;
    bool identity;
} rs_axis;

typedef struct rs_params {
    int mode, ct, nm;
    double cubic_a, extrap_value;
    bool exclude_outside, antialias;
} rs_params;

static double keys_kernel(double x, double a) {
    x = fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0;
}

/* Input coordinate of output coordinate x along one axis. */
static double rs_source_coord(const rs_params *p, const rs_axis *a, int64_t x) {
    double s = a->scale, in = (double)a->in, out_w = s * in;
    switch (p->ct) {
    case CT_ALIGN_CORNERS: return out_w == 1 ? 0.0 : (double)x * (in - 1) / (out_w - 1);
    case CT_ASYMMETRIC: return (double)x / s;
    case CT_TF_HALF_PIXEL_FOR_NN: return ((double)x + 0.5) / s;
    case CT_TF_CROP_AND_RESIZE: {
        double r = out_w == 1 ? (a->roi1 - a->roi0) * (in - 1) / 2
                              : (double)x * (a->roi1 - a->roi0) * (in - 1) / (out_w - 1);
        return r + a->roi0 * (in - 1);
    }
    case CT_PYTORCH_HALF_PIXEL: return out_w == 1 ? -0.5 : ((double)x + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        double adjustment = (double)a->out / out_w, center = in / 2;
        return center * (1 - adjustment) + ((double)x + 0.5) / s - 0.5;
    }
    default: return ((double)x + 0.5) / s - 0.5;
    }
}

static int rs_taps(const rs_params *p, const rs_axis *a, int *start) {
    if (p->mode == RS_NEAREST) { *start = 0; return 1; }
    double s = p->antialias ? IFD_MIN(a->scale, 1.0) : 1.0;
    int st;
    if (p->mode == RS_LINEAR)
        st = p->antialias ? (int)floor(-1.0 / s) + 1 : 0;
    else
        st = p->antialias ? (int)floor(-2.0 / s) + 1 : -1;
    *start = st;
    return 2 - 2 * st;
}

/* Taps of output coordinate o: n clamped indices and weights. False when o falls outside the
 * crop box (tf_crop_and_resize) and takes the extrapolation value. */
static bool rs_coord_taps(const rs_params *p, const rs_axis *a, int64_t o, int start, int n,
                          int64_t *ix, double *w) {
    double x = rs_source_coord(p, a, o);
    if (p->ct == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(a->in - 1))) {
        for (int k = 0; k < n; k++) { ix[k] = 0; w[k] = 0; }
        return false;
    }
    /* the reference picks the pixel left of x: ratio in (0, 1] */
    double fx = floor(x);
    bool integral = fx == x;
    int64_t fl = integral ? (int64_t)fx - 1 : (int64_t)fx;
    double ratio = integral ? 1.0 : x - fx;
    if (p->mode == RS_NEAREST) {
        int64_t i;
        if (integral) i = (int64_t)fx;
        else {
            bool up;
            switch (p->nm) {
            case NM_ROUND_PREFER_CEIL: up = ratio >= 0.5; break;
            case NM_FLOOR: up = false; break;
            case NM_CEIL: up = true; break;
            case NM_SIMPLE: up = a->scale < 1.0; break; /* opset < 11: ceil when shrinking */
            default: up = ratio > 0.5; break;
            }
            i = up ? fl + 1 : fl;
        }
        ix[0] = i < 0 ? 0 : i >= a->in ? a->in - 1 : i;
        w[0] = 1.0;
        return true;
    }
    double s_aa = p->antialias ? IFD_MIN(a->scale, 1.0) : 1.0, sum = 0;
    for (int k = 0; k < n; k++) {
        int j = start + k;
        double arg = ((double)j - ratio) * s_aa, c;
        if (p->mode == RS_LINEAR) {
            c = 1.0 - fabs(arg);
            c = c < 0 ? 0 : c > 1 ? 1 : c;
        } else {
            c = keys_kernel(arg, p->cubic_a);
        }
        w[k] = c;
        ix[k] = fl + j;
        sum += c;
    }
    if (p->antialias && sum != 0)
        for (int k = 0; k < n; k++) w[k] /= sum;
    if (p->exclude_outside) {
        sum = 0;
        for (int k = 0; k < n; k++) {
            if (ix[k] < 0 || ix[k] >= a->in) w[k] = 0;
            sum += w[k];
        }
        if (sum != 0)
            for (int k = 0; k < n; k++) w[k] /= sum;
    }
    for (int k = 0; k < n; k++) ix[k] = ix[k] < 0 ? 0 : ix[k] >= a->in ? a->in - 1 : ix[k];
    return true;
}

/* Whether the axis maps every output coordinate onto the same input one with weight 1
 * (decided without tables, so that the scratch layout is known before they are built). */
static bool rs_axis_identity(const rs_params *p, const rs_axis *a) {
    int start, n = rs_taps(p, a, &start);
    if (a->in != a->out || n > 8) return false;
    int64_t ix[8];
    double w[8];
    for (int64_t o = 0; o < a->out; o++) {
        if (!rs_coord_taps(p, a, o, start, n, ix, w)) return false;
        for (int k = 0; k < n; k++)
            if (w[k] != 0 && (ix[k] != o || w[k] != 1.0)) return false;
    }
    return true;
}

/* Fill idx/weights/extrap for one axis (memory already assigned). */
static void rs_build_axis(const rs_params *p, rs_axis *a) {
    int start, n = rs_taps(p, a, &start);
    a->n = n;
    a->any_extrap = false;
    for (int64_t o = 0; o < a->out; o++) {
        bool in = rs_coord_taps(p, a, o, start, n, a->idx + o * n, a->wd + o * n);
        a->extrap[o] = !in;
        if (!in) a->any_extrap = true;
    }
    for (int64_t i = 0; i < a->out * n; i++) a->wf[i] = (float)a->wd[i];
}

/* ---- AVX2 row kernels (float two-tap rows, 4-byte gathers) --------------------------- */

#if RS_X86
__attribute__((target("avx2,fma"))) static void rs_row2_avx2(float *restrict d,
                                                             const float *restrict s,
                                                             const int32_t *restrict i0,
                                                             const int32_t *restrict i1,
                                                             const float *restrict w0,
                                                             const float *restrict w1,
                                                             int64_t n) {
    int64_t l = 0;
    for (; l + 8 <= n; l += 8) {
        __m256 a = _mm256_i32gather_ps(s, _mm256_loadu_si256((const __m256i *)(i0 + l)), 4);
        __m256 b = _mm256_i32gather_ps(s, _mm256_loadu_si256((const __m256i *)(i1 + l)), 4);
        __m256 r = _mm256_mul_ps(_mm256_loadu_ps(w0 + l), a);
        _mm256_storeu_ps(d + l, _mm256_fmadd_ps(_mm256_loadu_ps(w1 + l), b, r));
    }
    for (; l < n; l++) d[l] = w0[l] * s[i0[l]] + w1[l] * s[i1[l]];
}

__attribute__((target("avx2"))) static void rs_gather32_avx2(uint32_t *restrict d,
                                                             const uint32_t *restrict s,
                                                             const int32_t *restrict ix,
                                                             int64_t n) {
    int64_t l = 0;
    for (; l + 8 <= n; l += 8) {
        __m256i v = _mm256_i32gather_epi32((const int *)s,
                                           _mm256_loadu_si256((const __m256i *)(ix + l)), 4);
        _mm256_storeu_si256((__m256i *)(d + l), v);
    }
    for (; l < n; l++) d[l] = s[ix[l]];
}
#endif

/* ---- nearest: one gather pass over output rows ------------------------------------------ */

typedef struct rs_gather_job {
    int rank;
    const rs_axis *axes;
    int64_t in_strides[IFD_MAX_RANK];
    const uint8_t *x;
    uint8_t *y;
    size_t esize;
    uint8_t ev[16]; /* extrapolation value as the element type */
    bool avx2;      /* 4-byte rows through rs_gather32_avx2 (last axis i32 filled) */
} rs_gather_job;

static void rs_fill(uint8_t *dst, int64_t n, const uint8_t *v, size_t es) {
    for (int64_t i = 0; i < n; i++) memcpy(dst + (size_t)i * es, v, es);
}

static void rs_gather_rows(void *arg, int64_t begin, int64_t end) {
    const rs_gather_job *j = arg;
    int last = j->rank - 1;
    const rs_axis *al = &j->axes[last];
    int64_t lout = al->out;
    size_t es = j->esize;
    int64_t idx[IFD_MAX_RANK], rem = begin;
    for (int d = last - 1; d >= 0; d--) {
        idx[d] = rem % j->axes[d].out;
        rem /= j->axes[d].out;
    }
    int64_t prev_off = -1;
    const int64_t *restrict map = al->idx;
    for (int64_t row = begin; row < end; row++) {
        uint8_t *dst = j->y + (size_t)row * (size_t)lout * es;
        int64_t off = 0;
        bool ex = false;
        for (int d = 0; d < last; d++) {
            const rs_axis *a = &j->axes[d];
            if (a->any_extrap && a->extrap[idx[d]]) ex = true;
            off += a->idx[idx[d]] * j->in_strides[d];
        }
        if (ex) {
            rs_fill(dst, lout, j->ev, es);
            prev_off = -1;
        } else if (off == prev_off) {
            /* rows repeat when upsampling an outer axis */
            memcpy(dst, dst - (size_t)lout * es, (size_t)lout * es);
        } else {
            const uint8_t *src = j->x + (size_t)off * es;
            switch (es) {
            case 1: { uint8_t *restrict d = dst; const uint8_t *restrict s = src;
                for (int64_t o = 0; o < lout; o++) d[o] = s[map[o]];
                break; }
            case 2: { uint16_t *restrict d = (uint16_t *)(void *)dst;
                const uint16_t *restrict s = (const uint16_t *)(const void *)src;
                for (int64_t o = 0; o < lout; o++) d[o] = s[map[o]];
                break; }
            case 4: { uint32_t *restrict d = (uint32_t *)(void *)dst;
                const uint32_t *restrict s = (const uint32_t *)(const void *)src;
#if RS_X86
                if (j->avx2) {
                    rs_gather32_avx2(d, s, al->i32, lout);
                    break;
                }
#endif
                for (int64_t o = 0; o < lout; o++) d[o] = s[map[o]];
                break; }
            case 8: { uint64_t *restrict d = (uint64_t *)(void *)dst;
                const uint64_t *restrict s = (const uint64_t *)(const void *)src;
                for (int64_t o = 0; o < lout; o++) d[o] = s[map[o]];
                break; }
            default:
                for (int64_t o = 0; o < lout; o++)
                    memcpy(dst + (size_t)o * es, src + (size_t)map[o] * es, es);
            }
            if (al->any_extrap)
                for (int64_t o = 0; o < lout; o++)
                    if (al->extrap[o]) memcpy(dst + (size_t)o * es, j->ev, es);
            prev_off = al->any_extrap ? -1 : off;
        }
        for (int d = last - 1; d >= 0; d--) {
            if (++idx[d] < j->axes[d].out) break;
            idx[d] = 0;
        }
    }
}

/* ---- linear / cubic: one pass per axis --------------------------------------------------- */

typedef struct rs_pass_job {
    const void *src;
    void *dst;
    int64_t outer, lin, lout, inner;
    const rs_axis *ax;
    double ev;
    bool avx2;      /* AVX2+FMA available (float rows) */
    bool gather2;   /* last-axis float two-tap rows through rs_row2_avx2 (ax->i32/w2 set) */
} rs_pass_job;

#if RS_X86
__attribute__((target("avx2,fma"))) static void rs_lerp_avx2(float *restrict d,
                                                             const float *restrict a,
                                                             const float *restrict b, float w0,
                                                             float w1, int64_t n) {
    __m256 v0 = _mm256_set1_ps(w0), v1 = _mm256_set1_ps(w1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_fmadd_ps(v1, _mm256_loadu_ps(b + i),
                                                _mm256_mul_ps(v0, _mm256_loadu_ps(a + i))));
    for (; i < n; i++) d[i] = w0 * a[i] + w1 * b[i];
}

__attribute__((target("avx2,fma"))) static void rs_axpy_avx2(float *restrict d,
                                                             const float *restrict a, float w,
                                                             int64_t n) {
    __m256 vw = _mm256_set1_ps(w);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_fmadd_ps(vw, _mm256_loadu_ps(a + i), _mm256_loadu_ps(d + i)));
    for (; i < n; i++) d[i] += w * a[i];
}
#endif

/* d = w0 * a + w1 * b and d += w * a over rows (a and b may be the same row) */
static void rs_lerp_f32(float *restrict d, const float *a, const float *b, float w0, float w1,
                        int64_t n, bool avx2) {
#if RS_X86
    if (avx2) {
        rs_lerp_avx2(d, a, b, w0, w1, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) d[i] = w0 * a[i] + w1 * b[i];
}

static void rs_axpy_f32(float *restrict d, const float *restrict a, float w, int64_t n,
                        bool avx2) {
#if RS_X86
    if (avx2) {
        rs_axpy_avx2(d, a, w, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) d[i] += w * a[i];
}

static void rs_lerp_f64(double *restrict d, const double *a, const double *b, double w0,
                        double w1, int64_t n, bool avx2) {
    for (int64_t i = 0; i < n; i++) d[i] = w0 * a[i] + w1 * b[i];
}

static void rs_axpy_f64(double *restrict d, const double *restrict a, double w, int64_t n,
                        bool avx2) {
    for (int64_t i = 0; i < n; i++) d[i] += w * a[i];
}

#define RS_DEFINE_PASS(T, W, SUF)                                                          \
    static void rs_pass_last_##SUF(void *arg, int64_t begin, int64_t end) {                \
        const rs_pass_job *j = arg;                                                        \
        const int n = j->ax->n;                                                            \
        const int64_t *restrict ix = j->ax->idx;                                           \
        const T *restrict w = j->ax->W;                                                    \
        const uint8_t *ex = j->ax->any_extrap ? j->ax->extrap : NULL;                      \
        for (int64_t o = begin; o < end; o++) {                                            \
            const T *restrict s = (const T *)j->src + o * j->lin;                          \
            T *restrict d = (T *)j->dst + o * j->lout;                                     \
            if (n == 2) {                                                                  \
                for (int64_t l = 0; l < j->lout; l++)                                      \
                    d[l] = w[2 * l] * s[ix[2 * l]] + w[2 * l + 1] * s[ix[2 * l + 1]];      \
            } else {                                                                       \
                for (int64_t l = 0; l < j->lout; l++) {                                    \
                    T acc = 0;                                                             \
                    for (int k = 0; k < n; k++) acc += w[l * n + k] * s[ix[l * n + k]];    \
                    d[l] = acc;                                                            \
                }                                                                          \
            }                                                                              \
            if (ex)                                                                        \
                for (int64_t l = 0; l < j->lout; l++)                                      \
                    if (ex[l]) d[l] = (T)j->ev;                                            \
        }                                                                                  \
    }                                                                                      \
    static void rs_pass_inner_##SUF(void *arg, int64_t begin, int64_t end) {               \
        const rs_pass_job *j = arg;                                                        \
        const int n = j->ax->n;                                                            \
        const int64_t inner = j->inner;                                                    \
        for (int64_t u = begin; u < end; u++) {                                            \
            int64_t o = u / j->lout, l = u % j->lout;                                      \
            T *restrict d = (T *)j->dst + u * inner;                                       \
            const T *base = (const T *)j->src + o * j->lin * inner;                        \
            const int64_t *ix = j->ax->idx + l * n;                                        \
            const T *w = j->ax->W + l * n;                                                 \
            if (j->ax->any_extrap && j->ax->extrap[l]) {                                   \
                for (int64_t i = 0; i < inner; i++) d[i] = (T)j->ev;                       \
                continue;                                                                  \
            }                                                                              \
            if (n == 2) {                                                                  \
                rs_lerp_##SUF(d, base + ix[0] * inner, base + ix[1] * inner, w[0], w[1],   \
                              inner, j->avx2);                                             \
            } else {                                                                       \
                rs_lerp_##SUF(d, base + ix[0] * inner, base + ix[0] * inner, w[0], 0,      \
                              inner, j->avx2);                                             \
                for (int k = 1; k < n; k++)                                                \
                    if (w[k] != 0) rs_axpy_##SUF(d, base + ix[k] * inner, w[k], inner, j->avx2); \
            }                                                                              \
        }                                                                                  \
    }

RS_DEFINE_PASS(float, wf, f32)

#if RS_X86
static void rs_pass_last_f32_avx2(void *arg, int64_t begin, int64_t end) {
    const rs_pass_job *j = arg;
    const rs_axis *a = j->ax;
    for (int64_t o = begin; o < end; o++) {
        float *d = (float *)j->dst + o * j->lout;
        rs_row2_avx2(d, (const float *)j->src + o * j->lin, a->i32, a->i32 + a->out, a->w2,
                     a->w2 + a->out, j->lout);
        if (a->any_extrap)
            for (int64_t l = 0; l < j->lout; l++)
                if (a->extrap[l]) d[l] = (float)j->ev;
    }
}
#endif
RS_DEFINE_PASS(double, wd, f64)

/* ---- Resize kernel ----------------------------------------------------------------------- */

static int parse_ct(const char *s, int *out) {
    static const struct { const char *name; int v; } t[] = {
        {"half_pixel", CT_HALF_PIXEL}, {"half_pixel_symmetric", CT_HALF_PIXEL_SYMMETRIC},
        {"pytorch_half_pixel", CT_PYTORCH_HALF_PIXEL}, {"align_corners", CT_ALIGN_CORNERS},
        {"asymmetric", CT_ASYMMETRIC}, {"tf_half_pixel_for_nn", CT_TF_HALF_PIXEL_FOR_NN},
        {"tf_crop_and_resize", CT_TF_CROP_AND_RESIZE},
    };
    for (size_t i = 0; i < IFD_ARRAY_LEN(t); i++)
        if (!strcmp(s, t[i].name)) { *out = t[i].v; return 1; }
    return 0;
}

static ifd_status resize_core(ifd_kernel_ctx *ctx, const rs_params *p, const ifd_tensor *x,
                              rs_axis *axes) {
    int rank = x->rank;
    int64_t out_dims[IFD_MAX_RANK];
    for (int d = 0; d < rank; d++) out_dims[d] = axes[d].out;
    ifd_tensor *y;
    ifd_status st = ifd_kernel_output(ctx, 0, x->dtype, rank, out_dims, &y);
    if (st != IFD_OK || !y || y->count == 0) return st;
    size_t es = ifd_dtype_size(x->dtype);
    if (es == 0 || es > 16)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported element type %s",
                                ifd_dtype_name(x->dtype));
    if (x->count == 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "cannot resize an empty tensor to "
                                "a non-empty one");
    if (rank == 0) {
        memcpy(y->data, x->data, es);
        return IFD_OK;
    }

    /* which axes change, and how the work is laid out (the scratch sizes follow from it) */
    bool all_identity = true, all_single = true;
    for (int d = 0; d < rank; d++) {
        rs_axis *a = &axes[d];
        int start;
        a->n = rs_taps(p, a, &start);
        if (a->n <= 0 || a->n > (1 << 20))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "resize footprint of %d taps", a->n);
        a->identity = rs_axis_identity(p, a);
        if (!a->identity) all_identity = false;
        if (!a->identity && a->n != 1) all_single = false;
    }
    if (all_identity) {
        memcpy(y->data, x->data, x->nbytes);
        return IFD_OK;
    }
    bool dbl = x->dtype == IFD_DTYPE_DOUBLE;
    bool native = x->dtype == IFD_DTYPE_FLOAT || dbl;
    size_t ts = dbl ? sizeof(double) : sizeof(float);
    bool avx2 = ifd_cpu_has_avx2_fma();
    rs_axis *al = &axes[rank - 1];
    int order[IFD_MAX_RANK], nact = 0;
    size_t max_elems = 0;
    bool gather2 = false;
    if (!all_single) {
        for (int d = rank - 1; d >= 0; d--)
            if (!axes[d].identity) order[nact++] = d;
        /* shrinking axes first: later passes touch fewer elements (stable insertion sort) */
        for (int i = 1; i < nact; i++) {
            int v = order[i], k = i;
            double rv = (double)axes[v].out / (double)axes[v].in;
            while (k > 0 &&
                   (double)axes[order[k - 1]].out / (double)axes[order[k - 1]].in > rv) {
                order[k] = order[k - 1];
                k--;
            }
            order[k] = v;
        }
        int64_t cur[IFD_MAX_RANK];
        for (int d = 0; d < rank; d++) cur[d] = x->dims[d];
        for (int i = 0; i < nact - 1; i++) {
            cur[order[i]] = axes[order[i]].out;
            int64_t c = 1;
            for (int d = 0; d < rank; d++) c *= cur[d];
            if ((size_t)c > max_elems) max_elems = (size_t)c;
        }
        gather2 = RS_X86 && !dbl && avx2 && !al->identity && al->n == 2 && al->in <= INT32_MAX;
    }
    st = IFD_OK;
    for (int d = 0; d < rank; d++) {
        rs_axis *a = &axes[d];
        size_t cnt;
        if (!ifd_mul_size((size_t)a->out, (size_t)a->n, &cnt))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "resize scratch too large");
        a->wd = ifd_kernel_scratch_array(ctx, cnt, sizeof(double), &st);
        a->idx = ifd_kernel_scratch_array(ctx, cnt, sizeof(int64_t), &st);
        a->wf = ifd_kernel_scratch_array(ctx, cnt, sizeof(float), &st);
        a->extrap = ifd_kernel_scratch_array(ctx, (size_t)a->out, 1, &st);
        if (st) return st;
        rs_build_axis(p, a);
    }

    /* single-tap axes (nearest, or identity) everywhere: exact gather */
    if (all_single) {
        rs_gather_job g;
        memset(&g, 0, sizeof g);
        g.rank = rank;
        g.axes = axes;
        g.x = x->data;
        g.y = y->data;
        g.esize = es;
        int64_t s = 1;
        for (int d = rank - 1; d >= 0; d--) { g.in_strides[d] = s; s *= x->dims[d]; }
        for (int d = 0; d < rank; d++) {
            /* an identity axis may carry multi-tap tables; make it a plain index map */
            if (axes[d].identity) {
                for (int64_t o = 0; o < axes[d].out; o++) axes[d].idx[o] = o;
                axes[d].n = 1;
                axes[d].any_extrap = false;
            }
        }
        ifd_store_f64(g.ev, x->dtype, 0, p->extrap_value);
        al->i32 = ifd_kernel_scratch_array(ctx, (size_t)al->out, sizeof(int32_t), &st);
        if (st) return st;
        if (es == 4 && al->in <= INT32_MAX && avx2) {
            for (int64_t o = 0; o < al->out; o++) al->i32[o] = (int32_t)al->idx[o];
            g.avx2 = true;
        }
        int64_t lout = al->out, rows = y->count / lout;
        ifd_parallel_for(ctx->pool, rows, IFD_MAX((int64_t)1, 16384 / lout), rs_gather_rows, &g);
        return IFD_OK;
    }

    /* separable passes in float (double for double) */
    void *buf[2];
    buf[0] = ifd_kernel_scratch_array(ctx, max_elems, ts, &st);
    buf[1] = ifd_kernel_scratch_array(ctx, max_elems, ts, &st);
    if (st) return st;
    if (gather2) {
        al->i32 = ifd_kernel_scratch_array(ctx, (size_t)al->out * 2, sizeof(int32_t), &st);
        al->w2 = ifd_kernel_scratch_array(ctx, (size_t)al->out * 2, sizeof(float), &st);
        if (st) return st;
        for (int64_t l = 0; l < al->out; l++)
            for (int k = 0; k < 2; k++) {
                al->i32[k * al->out + l] = (int32_t)al->idx[l * 2 + k];
                al->w2[k * al->out + l] = al->wf[l * 2 + k];
            }
    }
    const void *src = x->data;
    float *conv_out = NULL;
    if (!native) {
        float *conv_in = ifd_kernel_scratch_array(ctx, (size_t)x->count, sizeof(float), &st);
        conv_out = ifd_kernel_scratch_array(ctx, (size_t)y->count, sizeof(float), &st);
        if (st) return st;
        for (int64_t i = 0; i < x->count; i++) conv_in[i] = (float)ifd_tensor_get_f64(x, i);
        src = conv_in;
    }
    int64_t cur[IFD_MAX_RANK];
    for (int d = 0; d < rank; d++) cur[d] = x->dims[d];
    for (int i = 0; i < nact; i++) {
        int ax = order[i];
        rs_pass_job pj;
        pj.outer = 1;
        pj.inner = 1;
        for (int d = 0; d < ax; d++) pj.outer *= cur[d];
        for (int d = ax + 1; d < rank; d++) pj.inner *= cur[d];
        pj.lin = cur[ax];
        pj.lout = axes[ax].out;
        pj.ax = &axes[ax];
        pj.ev = p->extrap_value;
        pj.avx2 = !dbl && avx2;
        pj.gather2 = gather2 && ax == rank - 1;
        pj.src = src;
        pj.dst = i == nact - 1 ? (native ? y->data : (void *)conv_out) : buf[i & 1];
        int64_t work = pj.lout * pj.inner * pj.ax->n;
        if (pj.inner == 1) {
            ifd_parallel_fn fn = dbl ? rs_pass_last_f64 : rs_pass_last_f32;
#if RS_X86
            if (pj.gather2) fn = rs_pass_last_f32_avx2;
#endif
            ifd_parallel_for(ctx->pool, pj.outer, IFD_MAX((int64_t)1, 32768 / IFD_MAX(work, 1)),
                             fn, &pj);
        }
        else
            ifd_parallel_for(ctx->pool, pj.outer * pj.lout,
                             IFD_MAX((int64_t)1, 32768 / IFD_MAX(pj.inner * pj.ax->n, 1)),
                             dbl ? rs_pass_inner_f64 : rs_pass_inner_f32, &pj);
        cur[ax] = axes[ax].out;
        src = pj.dst;
    }
    if (!native) {
        ifd_dtype dt = y->dtype;
        for (int64_t i = 0; i < y->count; i++) {
            double v = conv_out[i];
            if (is_int_type(dt)) v = saturate_for(dt, v);
            ifd_store_f64(y->data, dt, i, v);
        }
    }
    return IFD_OK;
}

static ifd_status run_resize(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st != IFD_OK) return st;
    const ifd_tensor *x = ctx->inputs[0];
    const ifd_node *node = ctx->node;
    bool upsample = !strcmp(node->op_type, "Upsample");
    bool old = upsample || ctx->opset < 11;
    int rank = x->rank;
    rs_params p;
    memset(&p, 0, sizeof p);

    const char *mode = ifd_attr_string(node, "mode", "nearest");
    if (!strcmp(mode, "nearest")) p.mode = RS_NEAREST;
    else if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear")) p.mode = RS_LINEAR;
    else if (!strcmp(mode, "cubic") && !old) p.mode = RS_CUBIC;
    else return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode);
    if (old) {
        p.ct = CT_ASYMMETRIC;
        p.nm = NM_SIMPLE;
        p.cubic_a = -0.75;
    } else {
        const char *ct = ifd_attr_string(node, "coordinate_transformation_mode", "half_pixel");
        if (!parse_ct(ct, &p.ct))
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "unknown coordinate_transformation_mode '%s'", ct);
        const char *nm = ifd_attr_string(node, "nearest_mode", "round_prefer_floor");
        if (!strcmp(nm, "round_prefer_floor")) p.nm = NM_ROUND_PREFER_FLOOR;
        else if (!strcmp(nm, "round_prefer_ceil")) p.nm = NM_ROUND_PREFER_CEIL;
        else if (!strcmp(nm, "floor")) p.nm = NM_FLOOR;
        else if (!strcmp(nm, "ceil")) p.nm = NM_CEIL;
        else return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown nearest_mode '%s'", nm);
        p.cubic_a = ifd_attr_float(node, "cubic_coeff_a", -0.75f);
        p.exclude_outside = ifd_attr_int(node, "exclude_outside", 0) != 0;
        p.extrap_value = ifd_attr_float(node, "extrapolation_value", 0.0f);
        p.antialias = ctx->opset >= 18 && ifd_attr_int(node, "antialias", 0) != 0;
        if (p.antialias && p.mode == RS_NEAREST) p.antialias = false;
    }

    /* axes the scales/sizes/roi refer to (opset 18) */
    int axes_list[IFD_MAX_RANK], naxes = rank;
    for (int d = 0; d < rank; d++) axes_list[d] = d;
    size_t nattr = 0;
    const int64_t *axattr = old ? NULL : ifd_attr_ints(node, "axes", &nattr);
    if (axattr) {
        if (nattr == 0 || nattr > (size_t)rank)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%zu axes for rank %d", nattr,
                                    rank);
        naxes = (int)nattr;
        for (int i = 0; i < naxes; i++) {
            if ((st = ifd_normalize_axis(ctx, axattr[i], rank, &axes_list[i])) != IFD_OK) return st;
            for (int k = 0; k < i; k++)
                if (axes_list[k] == axes_list[i])
                    return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "repeated axis %d",
                                            axes_list[i]);
        }
    }

    rs_axis axes[IFD_MAX_RANK];
    memset(axes, 0, sizeof axes);
    for (int d = 0; d < rank; d++) {
        axes[d].in = x->dims[d];
        axes[d].out = x->dims[d];
        axes[d].scale = 1.0;
        axes[d].roi0 = 0.0;
        axes[d].roi1 = 1.0;
    }

    const ifd_tensor *roi = NULL, *scales = NULL, *sizes = NULL;
    float attr_scales[IFD_MAX_RANK];
    if (upsample && ctx->opset < 9) {
        size_t n = 0;
        const float *sc = ifd_attr_floats(node, "scales", &n);
        if (!sc || n != (size_t)rank)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "scales attribute must hold %d values", rank);
        for (int d = 0; d < rank; d++) attr_scales[d] = sc[d];
    } else if (old) {
        if ((st = ifd_kernel_require_input(ctx, 1)) != IFD_OK) return st;
        scales = ctx->inputs[1];
    } else {
        roi = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
        scales = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
        sizes = ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
        if (scales && scales->count == 0) scales = NULL;
        if (sizes && sizes->count == 0) sizes = NULL;
        if (roi && roi->count == 0) roi = NULL;
        if (!scales && !sizes)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "one of scales and sizes must be given");
        if (scales && sizes)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "only one of scales and sizes may be given");
    }

    if (upsample && ctx->opset < 9) {
        for (int d = 0; d < rank; d++) {
            axes[d].scale = attr_scales[d];
            axes[d].out = (int64_t)floor(attr_scales[d] * (double)x->dims[d]);
        }
    } else if (scales) {
        if (scales->count != naxes)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "scales holds %lld values for %d axes",
                                    (long long)scales->count, naxes);
        for (int i = 0; i < naxes; i++) {
            rs_axis *a = &axes[axes_list[i]];
            double s = (double)(float)ifd_tensor_get_f64(scales, i);
            if (!(s > 0) || !isfinite(s))
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "scale %g must be positive", s);
            double o = floor(s * (double)a->in);
            if (o > 9.0e15)
                return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output size too large");
            a->scale = s;
            a->out = (int64_t)o;
        }
    } else {
        if (sizes->count != naxes)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "sizes holds %lld values for %d axes",
                                    (long long)sizes->count, naxes);
        const char *policy = ifd_attr_string(node, "keep_aspect_ratio_policy", "stretch");
        for (int i = 0; i < naxes; i++) {
            rs_axis *a = &axes[axes_list[i]];
            int64_t o = ifd_tensor_get_i64(sizes, i);
            if (o < 0)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "negative size %lld",
                                        (long long)o);
            if (a->in == 0 && o > 0)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "cannot resize an empty axis to %lld", (long long)o);
            a->out = o;
            a->scale = a->in ? (double)o / (double)a->in : 1.0;
        }
        if (strcmp(policy, "stretch") != 0) {
            bool larger = !strcmp(policy, "not_smaller");
            if (!larger && strcmp(policy, "not_larger") != 0)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "unknown keep_aspect_ratio_policy '%s'", policy);
            double s = axes[axes_list[0]].scale;
            for (int i = 1; i < naxes; i++) {
                double v = axes[axes_list[i]].scale;
                s = larger ? IFD_MAX(s, v) : IFD_MIN(s, v);
            }
            for (int i = 0; i < naxes; i++) {
                rs_axis *a = &axes[axes_list[i]];
                a->scale = s;
                a->out = (int64_t)(s * (double)a->in + 0.5);
            }
        }
    }
    for (int d = 0; d < rank; d++)
        if (axes[d].scale <= 0 && axes[d].in > 0 && axes[d].out > 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "bad scale on axis %d", d);
    if (p.ct == CT_TF_CROP_AND_RESIZE) {
        if (!roi)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "tf_crop_and_resize needs the roi input");
        if (roi->count != 2 * (int64_t)naxes)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "roi holds %lld values, expected %d", (long long)roi->count,
                                    2 * naxes);
        for (int i = 0; i < naxes; i++) {
            axes[axes_list[i]].roi0 = ifd_tensor_get_f64(roi, i);
            axes[axes_list[i]].roi1 = ifd_tensor_get_f64(roi, naxes + i);
        }
    }
    for (int d = 0; d < rank; d++) {
        if (axes[d].out > 0 && axes[d].in == 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "cannot resize an empty axis %d", d);
        if (axes[d].in == 0) axes[d].scale = 1.0;
    }
    return resize_core(ctx, &p, x, axes);
}

/* ---- GridSample -------------------------------------------------------------------------- */

enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };
#define GS_MAX_TAPS 256

typedef struct gs_job {
    int k;                    /* spatial rank */
    int mode;                 /* RS_NEAREST / RS_LINEAR / RS_CUBIC */
    int pad;
    bool align;
    int64_t n, c;
    int64_t in_dims[IFD_MAX_RANK];   /* spatial dims of X */
    int64_t in_strides[IFD_MAX_RANK];
    int64_t in_spatial, out_spatial;
    const ifd_tensor *x, *grid;
    ifd_tensor *y;
} gs_job;

static double gs_reflect(double x, double lo, double hi) {
    double rng = hi - lo;
    if (!(rng > 0)) return lo;
    if (x < lo) {
        double dx = lo - x;
        int64_t n = (int64_t)(dx / rng);
        double r = dx - (double)n * rng;
        return n % 2 == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi;
        int64_t n = (int64_t)(dx / rng);
        double r = dx - (double)n * rng;
        return n % 2 == 0 ? hi - r : lo + r;
    }
    return x;
}

/* Resolve an integer tap index through the padding mode; -1: contributes zero. */
static int64_t gs_index(const gs_job *j, int64_t i, int64_t dim, double lo, double hi) {
    if (i >= 0 && i < dim) return i;
    if (j->pad == GS_ZEROS) return -1;
    if (j->pad == GS_BORDER) return i < 0 ? 0 : dim - 1;
    int64_t r = (int64_t)gs_reflect((double)i, lo, hi);
    return r < 0 ? 0 : r >= dim ? dim - 1 : r;
}

static double gs_load(const ifd_tensor *t, int64_t i) {
    switch (t->dtype) {
    case IFD_DTYPE_FLOAT: return ((const float *)t->data)[i];
    case IFD_DTYPE_DOUBLE: return ((const double *)t->data)[i];
    default: return ifd_tensor_get_f64(t, i);
    }
}

static void gs_points(void *arg, int64_t begin, int64_t end) {
    const gs_job *j = arg;
    int k = j->k;
    int64_t offs[GS_MAX_TAPS];
    double wts[GS_MAX_TAPS];
    for (int64_t u = begin; u < end; u++) {
        int64_t b = u / j->out_spatial, pnt = u % j->out_spatial;
        /* per-dim taps */
        int64_t tix[IFD_MAX_RANK][4];
        double tw[IFD_MAX_RANK][4];
        int tn[IFD_MAX_RANK];
        bool zero_out = false;
        for (int d = 0; d < k; d++) {
            int64_t dim = j->in_dims[d];
            /* grid's last axis lists coordinates innermost-first (x, y, z) */
            double g = gs_load(j->grid, (b * j->out_spatial + pnt) * k + (k - 1 - d));
            double lo = j->align ? 0.0 : -0.5, hi = j->align ? (double)dim - 1 : (double)dim - 0.5;
            double xc = j->align ? (g + 1) / 2.0 * (double)(dim - 1)
                                 : ((g + 1) * (double)dim - 1) / 2.0;
            xc = (float)xc;
            if (j->mode == RS_NEAREST) xc = nearbyint(xc); /* ties to even, any rank */
            if (xc < lo || xc > hi) {
                if (j->pad == GS_BORDER) xc = xc < 0 ? 0 : xc > (double)(dim - 1) ? (double)(dim - 1) : xc;
                else if (j->pad == GS_REFLECTION) xc = (float)gs_reflect(xc, lo, hi);
            }
            if (j->mode == RS_NEAREST) {
                int64_t i = gs_index(j, (int64_t)xc, dim, lo, hi);
                if (i < 0) zero_out = true;
                tix[d][0] = i;
                tw[d][0] = 1.0;
                tn[d] = 1;
            } else {
                double x0 = floor(xc), t = xc - x0;
                int64_t i0 = (int64_t)x0;
                if (j->mode == RS_LINEAR) {
                    tn[d] = 2;
                    tw[d][0] = 1 - t;
                    tw[d][1] = t;
                    tix[d][0] = gs_index(j, i0, dim, lo, hi);
                    tix[d][1] = gs_index(j, i0 + 1, dim, lo, hi);
                } else {
                    tn[d] = 4;
                    for (int q = 0; q < 4; q++) {
                        tw[d][q] = keys_kernel((double)(q - 1) - t, -0.75);
                        tix[d][q] = gs_index(j, i0 - 1 + q, dim, lo, hi);
                    }
                }
            }
        }
        int nt = 0;
        if (!zero_out) {
            /* tensor product of per-dim taps, dropping zero-padded ones */
            int ci[IFD_MAX_RANK] = {0};
            for (;;) {
                int64_t off = 0;
                double w = 1.0;
                bool ok = true;
                for (int d = 0; d < k; d++) {
                    int64_t i = tix[d][ci[d]];
                    if (i < 0) { ok = false; break; }
                    off += i * j->in_strides[d];
                    w *= tw[d][ci[d]];
                }
                if (ok && w != 0 && nt < GS_MAX_TAPS) {
                    offs[nt] = off;
                    wts[nt] = w;
                    nt++;
                }
                int d = k - 1;
                while (d >= 0 && ++ci[d] == tn[d]) ci[d--] = 0;
                if (d < 0) break;
            }
        }
        for (int64_t c = 0; c < j->c; c++) {
            int64_t xbase = (b * j->c + c) * j->in_spatial;
            int64_t yi = (b * j->c + c) * j->out_spatial + pnt;
            if (j->x->dtype == IFD_DTYPE_FLOAT) {
                const float *xs = (const float *)j->x->data + xbase;
                float acc = 0;
                for (int t = 0; t < nt; t++) acc += (float)wts[t] * xs[offs[t]];
                ((float *)j->y->data)[yi] = acc;
            } else {
                double acc = 0;
                for (int t = 0; t < nt; t++) acc += wts[t] * gs_load(j->x, xbase + offs[t]);
                ifd_store_f64(j->y->data, j->y->dtype, yi, acc);
            }
        }
    }
}

static ifd_status run_grid_sample(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) != IFD_OK ||
        (st = ifd_kernel_require_input(ctx, 1)) != IFD_OK)
        return st;
    const ifd_tensor *x = ctx->inputs[0], *grid = ctx->inputs[1];
    gs_job j;
    memset(&j, 0, sizeof j);
    const char *mode = ifd_attr_string(ctx->node, "mode", ctx->opset >= 20 ? "linear" : "bilinear");
    if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear")) j.mode = RS_LINEAR;
    else if (!strcmp(mode, "nearest")) j.mode = RS_NEAREST;
    else if (!strcmp(mode, "cubic") || !strcmp(mode, "bicubic")) j.mode = RS_CUBIC;
    else return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode);
    const char *pad = ifd_attr_string(ctx->node, "padding_mode", "zeros");
    if (!strcmp(pad, "zeros")) j.pad = GS_ZEROS;
    else if (!strcmp(pad, "border")) j.pad = GS_BORDER;
    else if (!strcmp(pad, "reflection")) j.pad = GS_REFLECTION;
    else return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown padding_mode '%s'", pad);
    j.align = ifd_attr_int(ctx->node, "align_corners", 0) != 0;
    if (!ifd_dtype_is_float(x->dtype) || ifd_dtype_size(x->dtype) < 2)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "X must be float16/bfloat16/float/double,"
                                " got %s", ifd_dtype_name(x->dtype));
    int k = x->rank - 2;
    if (k < 1 || grid->rank != x->rank || grid->dims[0] != x->dims[0] ||
        grid->dims[grid->rank - 1] != k)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "X rank %d and grid rank %d (last dim %lld) "
                                "do not match", x->rank, grid->rank,
                                (long long)(grid->rank ? grid->dims[grid->rank - 1] : 0));
    int maxk = j.mode == RS_CUBIC ? 4 : j.mode == RS_LINEAR ? 8 : IFD_MAX_RANK;
    if (k > maxk)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "%d spatial dims too many for mode %s",
                                k, mode);
    j.k = k;
    j.n = x->dims[0];
    j.c = x->dims[1];
    int64_t ydims[IFD_MAX_RANK];
    ydims[0] = j.n;
    ydims[1] = j.c;
    j.in_spatial = 1;
    j.out_spatial = 1;
    for (int d = 0; d < k; d++) {
        j.in_dims[d] = x->dims[2 + d];
        j.in_spatial *= x->dims[2 + d];
        ydims[2 + d] = grid->dims[1 + d];
        j.out_spatial *= grid->dims[1 + d];
    }
    int64_t s = 1;
    for (int d = k - 1; d >= 0; d--) { j.in_strides[d] = s; s *= j.in_dims[d]; }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, x->rank, ydims, &y)) != IFD_OK || !y ||
        y->count == 0)
        return st;
    if (j.in_spatial == 0) {
        memset(y->data, 0, y->nbytes);
        return IFD_OK;
    }
    j.x = x;
    j.grid = grid;
    j.y = y;
    ifd_parallel_for(ctx->pool, j.n * j.out_spatial, IFD_MAX((int64_t)1, 2048 / IFD_MAX(j.c, 1)),
                     gs_points, &j);
    return IFD_OK;
}

/* ---- AffineGrid -------------------------------------------------------------------------- */

static ifd_status run_affine_grid(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) != IFD_OK ||
        (st = ifd_kernel_require_input(ctx, 1)) != IFD_OK)
        return st;
    const ifd_tensor *theta = ctx->inputs[0], *size = ctx->inputs[1];
    bool align = ifd_attr_int(ctx->node, "align_corners", 0) != 0;
    if (size->count != 4 && size->count != 5)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "size must hold 4 or 5 values");
    int k = (int)size->count - 2;
    int64_t n = ifd_tensor_get_i64(size, 0);
    if (theta->rank != 3 || theta->dims[0] != n || theta->dims[1] != k || theta->dims[2] != k + 1)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "theta must be [%lld, %d, %d]", (long long)n,
                                k, k + 1);
    if (!ifd_dtype_is_float(theta->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "theta must be a float type");
    int64_t sp[3], ydims[5];
    ydims[0] = n;
    for (int d = 0; d < k; d++) {
        sp[d] = ifd_tensor_get_i64(size, 2 + d);
        if (sp[d] < 0) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "negative size");
        ydims[1 + d] = sp[d];
    }
    ydims[1 + k] = k;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, theta->dtype, k + 2, ydims, &y)) != IFD_OK || !y ||
        y->count == 0)
        return st;
    size_t es = ifd_dtype_size(theta->dtype);
    uint8_t *out = y->data;
    int64_t pts = y->count / (n * k), q = 0;
    for (int64_t b = 0; b < n; b++) {
        double th[12];
        for (int i = 0; i < k * (k + 1); i++) th[i] = ifd_tensor_get_f64(theta, b * k * (k + 1) + i);
        for (int64_t p = 0; p < pts; p++) {
            /* base coordinates: innermost spatial axis is x */
            double base[4];
            int64_t rem = p;
            for (int d = k - 1; d >= 0; d--) {
                int64_t i = rem % sp[d], dim = sp[d];
                rem /= sp[d];
                double v = align ? (dim > 1 ? -1.0 + 2.0 * (double)i / (double)(dim - 1) : -1.0)
                                 : -1.0 + (2.0 * (double)i + 1.0) / (double)dim;
                base[k - 1 - d] = v;
            }
            base[k] = 1.0;
            for (int r = 0; r < k; r++) {
                double acc = 0;
                for (int c = 0; c <= k; c++) acc += th[r * (k + 1) + c] * base[c];
                ifd_store_f64(out + (size_t)q * es, theta->dtype, 0, acc);
                q++;
            }
        }
    }
    return IFD_OK;
}

const ifd_op_def ifd_ops_resize[] = {
    {"", "Resize", 10, run_resize, NULL, NULL, 0},
    {"", "Upsample", 7, run_resize, NULL, NULL, 0},
    {"", "GridSample", 16, run_grid_sample, NULL, NULL, 0},
    {"", "AffineGrid", 20, run_affine_grid, NULL, NULL, 0},
    {0},
};
