/* Operator family: reduce (Reduce*, ArgMax/ArgMin, TopK, CumSum, NegativeLogLikelihoodLoss,
 * SoftmaxCrossEntropyLoss).
 *
 * Reductions view the input, after dropping size-1 dims and merging neighbours, as either
 * rows [outer, R] (reduce the contiguous tail) or [outer, R, inner] (reduce a middle block);
 * anything else is first transposed into [kept..., reduced...] order. float runs AVX2 kernels;
 * float16/bfloat16 are widened to float, narrow integers to int64, so the scalar kernels only
 * exist for float, double, int64 and uint64. */
#include "ops/op.h"

#include "kernels/vecmath.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RD_X86 1
#else
#define RD_X86 0
#endif

typedef enum rd_kind {
    RD_SUM,
    RD_MEAN,
    RD_MAX,
    RD_MIN,
    RD_PROD,
    RD_L1,
    RD_L2,
    RD_LOGSUM,
    RD_LOGSUMEXP,
    RD_SUMSQ,
} rd_kind;

/* What a reduction computes in (the element type of its working buffers). */
typedef enum rd_ctype { RD_CT_F32, RD_CT_F64, RD_CT_I64, RD_CT_U64 } rd_ctype;

enum { RD_BLOCK = 1024 }; /* widest column block (stack buffers) */

/* ---- dtype conversion helpers ---------------------------------------------------------- */

static rd_ctype rd_ctype_of(ifd_dtype dt) {
    switch (dt) {
    case IFD_DTYPE_FLOAT:
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16: return RD_CT_F32;
    case IFD_DTYPE_DOUBLE: return RD_CT_F64;
    case IFD_DTYPE_UINT64: return RD_CT_U64;
    default: return RD_CT_I64;
    }
}

static bool rd_dtype_ok(ifd_dtype dt) {
    switch (dt) {
    case IFD_DTYPE_FLOAT:
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16:
    case IFD_DTYPE_DOUBLE:
    case IFD_DTYPE_INT8:
    case IFD_DTYPE_INT16:
    case IFD_DTYPE_INT32:
    case IFD_DTYPE_INT64:
    case IFD_DTYPE_UINT8:
    case IFD_DTYPE_UINT16:
    case IFD_DTYPE_UINT32:
    case IFD_DTYPE_UINT64:
    case IFD_DTYPE_BOOL: return true;
    default: return false;
    }
}

static size_t rd_ctype_size(rd_ctype ct) { return ct == RD_CT_F32 ? 4 : 8; }

/* Whether a tensor of dtype dt already is in the working representation of ct. */
static bool rd_native(ifd_dtype dt, rd_ctype ct) {
    return (ct == RD_CT_F32 && dt == IFD_DTYPE_FLOAT) ||
           (ct == RD_CT_F64 && dt == IFD_DTYPE_DOUBLE) ||
           (ct == RD_CT_I64 && dt == IFD_DTYPE_INT64) ||
           (ct == RD_CT_U64 && dt == IFD_DTYPE_UINT64);
}

/* Widen n elements of src (dtype dt) into dst (working type ct). */
static void rd_widen(ifd_dtype dt, const void *src, rd_ctype ct, void *dst, int64_t n) {
    if (ct == RD_CT_F32) {
        if (dt == IFD_DTYPE_FLOAT16)
            ifd_vec_f16_to_f32(src, dst, n);
        else
            ifd_vec_bf16_to_f32(src, dst, n);
        return;
    }
    int64_t *d = dst;
    switch (dt) {
    case IFD_DTYPE_INT8:
        for (int64_t i = 0; i < n; i++) d[i] = ((const int8_t *)src)[i];
        break;
    case IFD_DTYPE_INT16:
        for (int64_t i = 0; i < n; i++) d[i] = ((const int16_t *)src)[i];
        break;
    case IFD_DTYPE_INT32:
        for (int64_t i = 0; i < n; i++) d[i] = ((const int32_t *)src)[i];
        break;
    case IFD_DTYPE_UINT8:
    case IFD_DTYPE_BOOL:
        for (int64_t i = 0; i < n; i++) d[i] = ((const uint8_t *)src)[i];
        break;
    case IFD_DTYPE_UINT16:
        for (int64_t i = 0; i < n; i++) d[i] = ((const uint16_t *)src)[i];
        break;
    case IFD_DTYPE_UINT32:
        for (int64_t i = 0; i < n; i++) d[i] = ((const uint32_t *)src)[i];
        break;
    default: memcpy(dst, src, (size_t)n * 8); break;
    }
}

/* Narrow n working values back into dst of dtype dt (integers wrap like a C cast). */
static void rd_narrow(rd_ctype ct, const void *src, ifd_dtype dt, void *dst, int64_t n) {
    if (ct == RD_CT_F32) {
        if (dt == IFD_DTYPE_FLOAT16)
            ifd_vec_f32_to_f16(src, dst, n);
        else
            ifd_vec_f32_to_bf16(src, dst, n);
        return;
    }
    const uint64_t *s = src;
    switch (dt) {
    case IFD_DTYPE_INT8:
    case IFD_DTYPE_UINT8:
        for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)s[i];
        break;
    case IFD_DTYPE_BOOL:
        for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = s[i] != 0;
        break;
    case IFD_DTYPE_INT16:
    case IFD_DTYPE_UINT16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = (uint16_t)s[i];
        break;
    case IFD_DTYPE_INT32:
    case IFD_DTYPE_UINT32:
        for (int64_t i = 0; i < n; i++) ((uint32_t *)dst)[i] = (uint32_t)s[i];
        break;
    default: memcpy(dst, src, (size_t)n * 8); break;
    }
}

/* double -> int64 saturating (NaN gives 0), for results computed in floating point. */
static int64_t rd_sat_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static uint64_t rd_sat_u64(double v) {
    if (!(v > 0)) return 0;
    if (v >= 18446744073709551615.0) return UINT64_MAX;
    return (uint64_t)v;
}

/* Store one double into element i of a tensor of any supported dtype (saturating ints). */
static void rd_store_f64(ifd_tensor *t, int64_t i, double v) {
    void *p = t->data;
    switch (t->dtype) {
    case IFD_DTYPE_FLOAT: ((float *)p)[i] = (float)v; break;
    case IFD_DTYPE_DOUBLE: ((double *)p)[i] = v; break;
    case IFD_DTYPE_FLOAT16: ((uint16_t *)p)[i] = ifd_f32_to_fp16((float)v); break;
    case IFD_DTYPE_BFLOAT16: ((uint16_t *)p)[i] = ifd_f32_to_bf16((float)v); break;
    case IFD_DTYPE_BOOL: ((uint8_t *)p)[i] = v > 0; break;
    case IFD_DTYPE_INT8:
        ((int8_t *)p)[i] = (int8_t)IFD_MAX(-128, IFD_MIN(127, rd_sat_i64(v)));
        break;
    case IFD_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)IFD_MIN(255, rd_sat_u64(v)); break;
    case IFD_DTYPE_INT16:
        ((int16_t *)p)[i] = (int16_t)IFD_MAX(-32768, IFD_MIN(32767, rd_sat_i64(v)));
        break;
    case IFD_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)IFD_MIN(65535, rd_sat_u64(v)); break;
    case IFD_DTYPE_INT32:
        ((int32_t *)p)[i] = (int32_t)IFD_MAX(INT32_MIN, IFD_MIN(INT32_MAX, rd_sat_i64(v)));
        break;
    case IFD_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)IFD_MIN(UINT32_MAX, rd_sat_u64(v)); break;
    case IFD_DTYPE_INT64: ((int64_t *)p)[i] = rd_sat_i64(v); break;
    case IFD_DTYPE_UINT64: ((uint64_t *)p)[i] = rd_sat_u64(v); break;
    default: break;
    }
}

/* ---- AVX2 float primitives --------------------------------------------------------------- */

/* Pre-map applied to each element before summing. */
typedef enum rd_map { RD_MAP_NONE, RD_MAP_ABS, RD_MAP_SQUARE } rd_map;

#if RD_X86
#define RD_AVX2 __attribute__((target("avx2,fma")))

RD_AVX2 static inline __m256 rd_map256(__m256 v, rd_map map) {
    if (map == RD_MAP_ABS) return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
    if (map == RD_MAP_SQUARE) return _mm256_mul_ps(v, v);
    return v;
}

RD_AVX2 static float rd_sum_avx2(const float *x, int64_t n, rd_map map) {
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm256_add_ps(a, rd_map256(_mm256_loadu_ps(x + i), map));
        b = _mm256_add_ps(b, rd_map256(_mm256_loadu_ps(x + i + 8), map));
        c = _mm256_add_ps(c, rd_map256(_mm256_loadu_ps(x + i + 16), map));
        d = _mm256_add_ps(d, rd_map256(_mm256_loadu_ps(x + i + 24), map));
    }
    for (; i + 8 <= n; i += 8) a = _mm256_add_ps(a, rd_map256(_mm256_loadu_ps(x + i), map));
    float s = ifd_hsum256_avx2(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
    for (; i < n; i++)
        s += map == RD_MAP_ABS ? fabsf(x[i]) : map == RD_MAP_SQUARE ? x[i] * x[i] : x[i];
    return s;
}

RD_AVX2 static float rd_minmax_avx2(const float *x, int64_t n, bool is_max) {
    int64_t i = 0;
    float m = x[0];
    if (n >= 16) {
        __m256 a = _mm256_loadu_ps(x), b = _mm256_loadu_ps(x + 8);
        for (i = 16; i + 16 <= n; i += 16) {
            __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
            a = is_max ? _mm256_max_ps(a, u) : _mm256_min_ps(a, u);
            b = is_max ? _mm256_max_ps(b, v) : _mm256_min_ps(b, v);
        }
        a = is_max ? _mm256_max_ps(a, b) : _mm256_min_ps(a, b);
        float buf[8];
        _mm256_storeu_ps(buf, a);
        m = buf[0];
        for (int k = 1; k < 8; k++)
            m = is_max ? (buf[k] > m ? buf[k] : m) : (buf[k] < m ? buf[k] : m);
    }
    for (; i < n; i++) m = is_max ? (x[i] > m ? x[i] : m) : (x[i] < m ? x[i] : m);
    return m;
}

RD_AVX2 static float rd_expsum_avx2(const float *x, int64_t n, float m) {
    __m256 vm = _mm256_set1_ps(m), s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_ps(s0, ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
        s1 = _mm256_add_ps(s1, ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm)));
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_add_ps(s0, ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
    float s = ifd_hsum256_avx2(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += expf(x[i] - m);
    return s;
}

/* Column-block accumulate: acc[c] op= map(x[c]) for c < w. */
RD_AVX2 static void rd_vacc_avx2(float *acc, const float *x, int64_t w, rd_kind k, rd_map map) {
    int64_t i = 0;
    for (; i + 8 <= w; i += 8) {
        __m256 a = _mm256_loadu_ps(acc + i), v = _mm256_loadu_ps(x + i);
        if (k == RD_MAX)
            a = _mm256_max_ps(a, v);
        else if (k == RD_MIN)
            a = _mm256_min_ps(a, v);
        else if (k == RD_PROD)
            a = _mm256_mul_ps(a, v);
        else
            a = _mm256_add_ps(a, rd_map256(v, map));
        _mm256_storeu_ps(acc + i, a);
    }
    for (; i < w; i++) {
        float v = x[i];
        if (k == RD_MAX)
            acc[i] = v > acc[i] ? v : acc[i];
        else if (k == RD_MIN)
            acc[i] = v < acc[i] ? v : acc[i];
        else if (k == RD_PROD)
            acc[i] *= v;
        else
            acc[i] += map == RD_MAP_ABS ? fabsf(v) : map == RD_MAP_SQUARE ? v * v : v;
    }
}

RD_AVX2 static void rd_vexpacc_avx2(float *s, const float *x, const float *m, int64_t w) {
    int64_t i = 0;
    for (; i + 8 <= w; i += 8) {
        __m256 e = ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(m + i)));
        _mm256_storeu_ps(s + i, _mm256_add_ps(_mm256_loadu_ps(s + i), e));
    }
    for (; i < w; i++) s[i] += expf(x[i] - m[i]);
}
#endif

static rd_map rd_map_of(rd_kind k) {
    return k == RD_L1 ? RD_MAP_ABS : (k == RD_L2 || k == RD_SUMSQ) ? RD_MAP_SQUARE : RD_MAP_NONE;
}

static float rd_sum_f32(bool avx2, const float *x, int64_t n, rd_map map) {
#if RD_X86
    if (avx2) return rd_sum_avx2(x, n, map);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += map == RD_MAP_ABS ? fabsf(x[i]) : map == RD_MAP_SQUARE ? x[i] * x[i] : x[i];
    return s;
}

static float rd_minmax_f32(bool avx2, const float *x, int64_t n, bool is_max) {
#if RD_X86
    if (avx2) return rd_minmax_avx2(x, n, is_max);
#endif
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = is_max ? (x[i] > m ? x[i] : m) : (x[i] < m ? x[i] : m);
    return m;
}

static float rd_expsum_f32(bool avx2, const float *x, int64_t n, float m) {
#if RD_X86
    if (avx2) return rd_expsum_avx2(x, n, m);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += expf(x[i] - m);
    return s;
}

static void rd_vacc_f32(bool avx2, float *acc, const float *x, int64_t w, rd_kind k) {
    rd_map map = rd_map_of(k);
#if RD_X86
    if (avx2) {
        rd_vacc_avx2(acc, x, w, k, map);
        return;
    }
#endif
    for (int64_t i = 0; i < w; i++) {
        float v = x[i];
        if (k == RD_MAX)
            acc[i] = v > acc[i] ? v : acc[i];
        else if (k == RD_MIN)
            acc[i] = v < acc[i] ? v : acc[i];
        else if (k == RD_PROD)
            acc[i] *= v;
        else
            acc[i] += map == RD_MAP_ABS ? fabsf(v) : map == RD_MAP_SQUARE ? v * v : v;
    }
}

static void rd_vexpacc_f32(bool avx2, float *s, const float *x, const float *m, int64_t w) {
#if RD_X86
    if (avx2) {
        rd_vexpacc_avx2(s, x, m, w);
        return;
    }
#endif
    for (int64_t i = 0; i < w; i++) s[i] += expf(x[i] - m[i]);
}

/* Final value from an accumulated sum-like result. */
static float rd_post_f32(rd_kind k, float acc, int64_t R) {
    switch (k) {
    case RD_MEAN: return acc / (float)R;
    case RD_L2: return sqrtf(acc);
    case RD_LOGSUM: return logf(acc);
    default: return acc;
    }
}

/* ---- float kernels ------------------------------------------------------------------------- */

typedef struct rd_job {
    rd_kind kind;
    rd_ctype ct;
    bool avx2;
    const void *x;                     /* [outer, R, inner] in the working type */
    void *y;                           /* [outer, inner] */
    int64_t outer, R, inner, nblk, bw; /* column blocks per outer slice, of bw columns */
} rd_job;

static float rd_row_f32(const rd_job *j, const float *x) {
    int64_t R = j->R;
    switch (j->kind) {
    case RD_MAX: return rd_minmax_f32(j->avx2, x, R, true);
    case RD_MIN: return rd_minmax_f32(j->avx2, x, R, false);
    case RD_PROD: {
        float p = 1;
        for (int64_t i = 0; i < R; i++) p *= x[i];
        return p;
    }
    case RD_LOGSUMEXP: {
        float m = rd_minmax_f32(j->avx2, x, R, true);
        if (isinf(m)) return m;
        return m + logf(rd_expsum_f32(j->avx2, x, R, m));
    }
    default: return rd_post_f32(j->kind, rd_sum_f32(j->avx2, x, R, rd_map_of(j->kind)), R);
    }
}

static void rd_rows_f32_task(void *arg, int64_t begin, int64_t end) {
    const rd_job *j = arg;
    const float *x = j->x;
    float *y = j->y;
    for (int64_t r = begin; r < end; r++) y[r] = rd_row_f32(j, x + r * j->R);
}

static void rd_cols_f32_task(void *arg, int64_t begin, int64_t end) {
    const rd_job *j = arg;
    int64_t R = j->R, inner = j->inner;
    float acc[RD_BLOCK], s[RD_BLOCK];
    for (int64_t t = begin; t < end; t++) {
        int64_t o = t / j->nblk, c0 = (t % j->nblk) * j->bw;
        int64_t w = IFD_MIN(j->bw, inner - c0);
        const float *x = (const float *)j->x + o * R * inner + c0;
        float *y = (float *)j->y + o * inner + c0;
        rd_kind k = j->kind;
        if (k == RD_MAX || k == RD_MIN || k == RD_PROD || k == RD_LOGSUMEXP) {
            memcpy(acc, x, (size_t)w * sizeof(float));
            for (int64_t r = 1; r < R; r++)
                rd_vacc_f32(j->avx2, acc, x + r * inner, w, k == RD_LOGSUMEXP ? RD_MAX : k);
        } else {
            memset(acc, 0, (size_t)w * sizeof(float));
            for (int64_t r = 0; r < R; r++) rd_vacc_f32(j->avx2, acc, x + r * inner, w, k);
        }
        if (k == RD_LOGSUMEXP) {
            memset(s, 0, (size_t)w * sizeof(float));
            for (int64_t r = 0; r < R; r++) rd_vexpacc_f32(j->avx2, s, x + r * inner, acc, w);
            for (int64_t c = 0; c < w; c++) y[c] = isinf(acc[c]) ? acc[c] : acc[c] + logf(s[c]);
        } else {
            for (int64_t c = 0; c < w; c++) y[c] = rd_post_f32(k, acc[c], R);
        }
    }
}

/* ---- scalar kernels for double / int64 / uint64 -------------------------------------------- */

/* One output from R elements spaced `stride` apart. Integer sums wrap (unsigned arithmetic);
 * the floating-point results of integer inputs truncate toward zero like a numpy astype. */
#define RD_SCALAR_KERNEL(NAME, T, IS_FLOAT, IS_SIGNED, FROM_DOUBLE)                                \
    static T NAME(rd_kind k, const T *x, int64_t R, int64_t stride) {                              \
        switch (k) {                                                                               \
        case RD_MAX:                                                                               \
        case RD_MIN: {                                                                             \
            T m = x[0];                                                                            \
            for (int64_t r = 1; r < R; r++) {                                                      \
                T v = x[r * stride];                                                               \
                if (k == RD_MAX ? v > m : v < m) m = v;                                            \
            }                                                                                      \
            return m;                                                                              \
        }                                                                                          \
        case RD_LOGSUMEXP: {                                                                       \
            T m = x[0];                                                                            \
            for (int64_t r = 1; r < R; r++)                                                        \
                if (x[r * stride] > m) m = x[r * stride];                                          \
            double md = (double)m, s = 0;                                                          \
            if (IS_FLOAT && isinf(md)) return m;                                                   \
            for (int64_t r = 0; r < R; r++) s += exp((double)x[r * stride] - md);                  \
            return FROM_DOUBLE(md + log(s));                                                       \
        }                                                                                          \
        default: break;                                                                            \
        }                                                                                          \
        if (IS_FLOAT) {                                                                            \
            double acc = k == RD_PROD ? 1.0 : 0.0;                                                 \
            for (int64_t r = 0; r < R; r++) {                                                      \
                double v = (double)x[r * stride];                                                  \
                if (k == RD_PROD)                                                                  \
                    acc *= v;                                                                      \
                else if (k == RD_L1)                                                               \
                    acc += fabs(v);                                                                \
                else if (k == RD_L2 || k == RD_SUMSQ)                                              \
                    acc += v * v;                                                                  \
                else                                                                               \
                    acc += v;                                                                      \
            }                                                                                      \
            switch (k) {                                                                           \
            case RD_MEAN: return FROM_DOUBLE(acc / (double)R);                                     \
            case RD_L2: return FROM_DOUBLE(sqrt(acc));                                             \
            case RD_LOGSUM: return FROM_DOUBLE(log(acc));                                          \
            default: return FROM_DOUBLE(acc);                                                      \
            }                                                                                      \
        }                                                                                          \
        uint64_t acc = k == RD_PROD ? 1 : 0;                                                       \
        for (int64_t r = 0; r < R; r++) {                                                          \
            T v = x[r * stride];                                                                   \
            uint64_t u = (uint64_t)v;                                                              \
            if (k == RD_PROD)                                                                      \
                acc *= u;                                                                          \
            else if (k == RD_L1)                                                                   \
                acc += (IS_SIGNED && (int64_t)u < 0) ? 0 - u : u;                                  \
            else if (k == RD_L2 || k == RD_SUMSQ)                                                  \
                acc += u * u;                                                                      \
            else                                                                                   \
                acc += u;                                                                          \
        }                                                                                          \
        T sum = (T)acc;                                                                            \
        switch (k) {                                                                               \
        case RD_MEAN: return sum / (T)R;                                                           \
        case RD_L2: return FROM_DOUBLE(sqrt((double)sum));                                         \
        case RD_LOGSUM: return FROM_DOUBLE(log((double)sum));                                      \
        default: return sum;                                                                       \
        }                                                                                          \
    }

static double rd_id_f64(double v) { return v; }
RD_SCALAR_KERNEL(rd_scalar_f64, double, 1, 1, rd_id_f64)
RD_SCALAR_KERNEL(rd_scalar_i64, int64_t, 0, 1, rd_sat_i64)
RD_SCALAR_KERNEL(rd_scalar_u64, uint64_t, 0, 0, rd_sat_u64)

static void rd_scalar_task(void *arg, int64_t begin, int64_t end) {
    const rd_job *j = arg;
    for (int64_t t = begin; t < end; t++) {
        int64_t o = t / j->inner, c = t % j->inner;
        int64_t off = o * j->R * j->inner + c;
        switch (j->ct) {
        case RD_CT_F64:
            ((double *)j->y)[t] =
                rd_scalar_f64(j->kind, (const double *)j->x + off, j->R, j->inner);
            break;
        case RD_CT_I64:
            ((int64_t *)j->y)[t] =
                rd_scalar_i64(j->kind, (const int64_t *)j->x + off, j->R, j->inner);
            break;
        case RD_CT_U64:
            ((uint64_t *)j->y)[t] =
                rd_scalar_u64(j->kind, (const uint64_t *)j->x + off, j->R, j->inner);
            break;
        default: break;
        }
    }
}

static void rd_execute(ifd_kernel_ctx *ctx, rd_job *j) {
    /* Wide column blocks keep the walk down R streaming; narrow them only as far as needed to
     * give every thread a few tasks. */
    int64_t want = (4 * (int64_t)ifd_thread_pool_size(ctx->pool) + j->outer - 1) / j->outer;
    int64_t bw = (j->inner + want - 1) / want;
    j->bw = IFD_MIN(RD_BLOCK, IFD_MAX(64, (bw + 15) / 16 * 16));
    int64_t work = j->R * IFD_MIN(j->inner, j->bw);
    int64_t min_chunk = IFD_MAX(1, 32768 / IFD_MAX(work, 1));
    if (j->ct != RD_CT_F32) {
        ifd_parallel_for(ctx->pool, j->outer * j->inner, IFD_MAX(1, 32768 / IFD_MAX(j->R, 1)),
                         rd_scalar_task, j);
    } else if (j->inner == 1) {
        ifd_parallel_for(ctx->pool, j->outer, min_chunk, rd_rows_f32_task, j);
    } else {
        j->nblk = (j->inner + j->bw - 1) / j->bw;
        ifd_parallel_for(ctx->pool, j->outer * j->nblk, min_chunk, rd_cols_f32_task, j);
    }
}

/* ---- layout ------------------------------------------------------------------------------ */

/* Copy src (shape dims, rank n) into dst with dims permuted by perm (dst dim k = src dim
 * perm[k]); elements are esize bytes (4 or 8). */
static void rd_transpose(const void *src, void *dst, int n, const int64_t *dims, const int *perm,
                         size_t esize, int64_t count) {
    int64_t sstride[IFD_MAX_RANK], pd[IFD_MAX_RANK], ps[IFD_MAX_RANK], idx[IFD_MAX_RANK] = {0};
    int64_t s = 1;
    for (int i = n - 1; i >= 0; i--) {
        sstride[i] = s;
        s *= dims[i];
    }
    for (int k = 0; k < n; k++) {
        pd[k] = dims[perm[k]];
        ps[k] = sstride[perm[k]];
    }
    int64_t off = 0;
    for (int64_t i = 0; i < count; i++) {
        if (esize == 4)
            ((uint32_t *)dst)[i] = ((const uint32_t *)src)[off];
        else
            ((uint64_t *)dst)[i] = ((const uint64_t *)src)[off];
        for (int k = n - 1; k >= 0; k--) {
            off += ps[k];
            if (++idx[k] < pd[k]) break;
            off -= ps[k] * pd[k];
            idx[k] = 0;
        }
    }
}

/* Axes of a Reduce* node: from input 1 (ReduceSum >= 13, others >= 18) or the attribute.
 * Returns *n_axes = -1 for "no axes given". */
static ifd_status rd_get_axes(ifd_kernel_ctx *ctx, bool axes_input, int64_t *axes, int *n_axes) {
    *n_axes = -1;
    if (axes_input) {
        const ifd_tensor *A = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
        if (!A) return IFD_OK;
        if (A->dtype != IFD_DTYPE_INT64 && A->dtype != IFD_DTYPE_INT32)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "axes must be int64");
        if (A->count > IFD_MAX_RANK)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "too many axes (%lld)",
                                    (long long)A->count);
        for (int64_t i = 0; i < A->count; i++) axes[i] = ifd_tensor_get_i64(A, i);
        *n_axes = (int)A->count;
        return IFD_OK;
    }
    size_t n = 0;
    const int64_t *a = ifd_attr_ints(ctx->node, "axes", &n);
    if (!a) return IFD_OK;
    if (n > IFD_MAX_RANK)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "too many axes (%zu)", n);
    memcpy(axes, a, n * sizeof(int64_t));
    *n_axes = (int)n;
    return IFD_OK;
}

static ifd_status rd_run(ifd_kernel_ctx *ctx, rd_kind kind) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    if (!rd_dtype_ok(X->dtype) || (X->dtype == IFD_DTYPE_BOOL && kind != RD_MAX && kind != RD_MIN))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(X->dtype));
    int rank = X->rank;
    bool is_sum = !strcmp(ctx->node->op_type, "ReduceSum");
    bool axes_input = ctx->opset >= (is_sum ? 13 : 18);
    int64_t axes[IFD_MAX_RANK];
    int n_axes;
    st = rd_get_axes(ctx, axes_input, axes, &n_axes);
    if (st) return st;
    bool noop = axes_input && ifd_attr_int(ctx->node, "noop_with_empty_axes", 0) != 0;
    bool keepdims = ifd_attr_int(ctx->node, "keepdims", 1) != 0;

    bool red[IFD_MAX_RANK] = {0};
    if (n_axes <= 0) {
        if (noop) { /* identity */
            ifd_tensor *Y;
            st = ifd_kernel_output(ctx, 0, X->dtype, rank, X->dims, &Y);
            if (st || !Y) return st;
            if (X->nbytes) memcpy(Y->data, X->data, X->nbytes);
            return IFD_OK;
        }
        for (int i = 0; i < rank; i++) red[i] = true;
    } else {
        for (int i = 0; i < n_axes; i++) {
            int a;
            st = ifd_normalize_axis(ctx, axes[i], rank, &a);
            if (st) return st;
            if (rank > 0) red[a] = true;
        }
    }

    int64_t odims[IFD_MAX_RANK];
    int orank = 0;
    int64_t R = 1;
    for (int i = 0; i < rank; i++) {
        if (red[i]) {
            R *= X->dims[i];
            if (keepdims) odims[orank++] = 1;
        } else {
            odims[orank++] = X->dims[i];
        }
    }
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, orank, odims, &Y);
    if (st || !Y) return st;
    if (Y->count == 0) return IFD_OK;

    if (R == 0) { /* reducing an empty set: the operation's identity */
        double v;
        switch (kind) {
        case RD_PROD: v = 1; break;
        case RD_MAX: v = X->dtype == IFD_DTYPE_BOOL ? 0 : -INFINITY; break;
        case RD_MIN: v = X->dtype == IFD_DTYPE_BOOL ? 1 : INFINITY; break;
        case RD_LOGSUM:
        case RD_LOGSUMEXP: v = -INFINITY; break;
        case RD_MEAN: v = NAN; break;
        default: v = 0; break;
        }
        for (int64_t i = 0; i < Y->count; i++) rd_store_f64(Y, i, v);
        return IFD_OK;
    }

    /* Merge non-unit dims into alternating kept/reduced groups. */
    int64_t gsize[IFD_MAX_RANK];
    bool gred[IFD_MAX_RANK];
    int ng = 0, nred = 0;
    for (int i = 0; i < rank; i++) {
        if (X->dims[i] == 1) continue;
        if (ng > 0 && gred[ng - 1] == red[i])
            gsize[ng - 1] *= X->dims[i];
        else {
            gsize[ng] = X->dims[i];
            gred[ng++] = red[i];
            nred += red[i];
        }
    }
    rd_ctype ct = rd_ctype_of(X->dtype);
    rd_job j = {kind, ct, ifd_cpu_has_avx2_fma(), X->data, Y->data, 1, R, 1, 0, 0};
    bool transpose = false;
    if (nred == 0) {
        j.outer = Y->count;
        j.R = 1;
    } else if (nred == 1 && gred[ng - 1] && ng <= 2) {
        j.outer = ng == 2 ? gsize[0] : 1;
    } else if (nred == 1 && ng >= 2 && gred[ng - 2] && ng <= 3) {
        j.outer = ng == 3 ? gsize[0] : 1;
        j.inner = gsize[ng - 1];
    } else {
        transpose = true;
        j.outer = Y->count;
    }

    /* Working copies: input widened and/or transposed, output narrowed afterwards. */
    size_t es = rd_ctype_size(ct);
    bool widen = !rd_native(X->dtype, ct), narrow = !rd_native(Y->dtype, ct);
    st = IFD_OK;
    void *xw = widen ? ifd_kernel_scratch_array(ctx, (size_t)X->count, es, &st) : NULL;
    void *xt = transpose ? ifd_kernel_scratch_array(ctx, (size_t)X->count, es, &st) : NULL;
    void *yw = narrow ? ifd_kernel_scratch_array(ctx, (size_t)Y->count, es, &st) : Y->data;
    if (st) return st;
    if (widen) {
        rd_widen(X->dtype, X->data, ct, xw, X->count);
        j.x = xw;
    }
    if (transpose) {
        int perm[IFD_MAX_RANK], np = 0;
        for (int g = 0; g < ng; g++)
            if (!gred[g]) perm[np++] = g;
        for (int g = 0; g < ng; g++)
            if (gred[g]) perm[np++] = g;
        rd_transpose(j.x, xt, ng, gsize, perm, es, X->count);
        j.x = xt;
    }
    j.y = yw;
    rd_execute(ctx, &j);
    if (yw != Y->data) rd_narrow(ct, yw, Y->dtype, Y->data, Y->count);
    return IFD_OK;
}

static ifd_status run_reduce_sum(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_SUM); }
static ifd_status run_reduce_mean(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_MEAN); }
static ifd_status run_reduce_max(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_MAX); }
static ifd_status run_reduce_min(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_MIN); }
static ifd_status run_reduce_prod(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_PROD); }
static ifd_status run_reduce_l1(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_L1); }
static ifd_status run_reduce_l2(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_L2); }
static ifd_status run_reduce_logsum(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_LOGSUM); }
static ifd_status run_reduce_logsumexp(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_LOGSUMEXP); }
static ifd_status run_reduce_sumsq(ifd_kernel_ctx *ctx) { return rd_run(ctx, RD_SUMSQ); }

/* ---- ArgMax / ArgMin ---------------------------------------------------------------------- */

/* out[o*inner + c] = index along n of the max (min) of x[o, :, c]; ties go to the first index,
 * or the last with select_last_index. NaN counts as the extreme value (first NaN wins). */
#define RD_ARG_KERNEL(NAME, T, IS_FLOAT)                                                           \
    static void NAME(const T *x, int64_t *out, int64_t outer, int64_t n, int64_t inner,            \
                     bool is_max, bool last) {                                                     \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const T *base = x + o * n * inner;                                                     \
            int64_t *ob = out + o * inner;                                                         \
            for (int64_t c = 0; c < inner; c++) ob[c] = 0;                                         \
            for (int64_t r = 1; r < n; r++) {                                                      \
                const T *row = base + r * inner;                                                   \
                for (int64_t c = 0; c < inner; c++) {                                              \
                    T v = row[c], b = base[ob[c] * inner + c];                                     \
                    if (IS_FLOAT && b != b) continue;                                              \
                    bool take = (IS_FLOAT && v != v) ||                                            \
                                (is_max ? (last ? v >= b : v > b) : (last ? v <= b : v < b));      \
                    if (take) ob[c] = r;                                                           \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

RD_ARG_KERNEL(rd_arg_f32, float, 1)
RD_ARG_KERNEL(rd_arg_f64, double, 1)
RD_ARG_KERNEL(rd_arg_i8, int8_t, 0)
RD_ARG_KERNEL(rd_arg_i16, int16_t, 0)
RD_ARG_KERNEL(rd_arg_i32, int32_t, 0)
RD_ARG_KERNEL(rd_arg_i64, int64_t, 0)
RD_ARG_KERNEL(rd_arg_u8, uint8_t, 0)
RD_ARG_KERNEL(rd_arg_u16, uint16_t, 0)
RD_ARG_KERNEL(rd_arg_u32, uint32_t, 0)
RD_ARG_KERNEL(rd_arg_u64, uint64_t, 0)

static ifd_status rd_arg_run(ifd_kernel_ctx *ctx, bool is_max) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int rank = X->rank, axis = 0;
    st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 0), rank, &axis);
    if (st) return st;
    bool keepdims = ifd_attr_int(ctx->node, "keepdims", 1) != 0;
    bool last = ifd_attr_int(ctx->node, "select_last_index", 0) != 0;
    int64_t odims[IFD_MAX_RANK], outer = 1, n = rank ? X->dims[axis] : 1, inner = 1;
    int orank = 0;
    for (int i = 0; i < rank; i++) {
        if (i < axis) outer *= X->dims[i];
        if (i > axis) inner *= X->dims[i];
        if (i != axis)
            odims[orank++] = X->dims[i];
        else if (keepdims)
            odims[orank++] = 1;
    }
    if (n == 0 && outer * inner > 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "cannot reduce an empty axis");
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT64, orank, odims, &Y);
    if (st || !Y || Y->count == 0) return st;
    const void *x = X->data;
    int64_t *y = Y->data;
    switch (X->dtype) {
    case IFD_DTYPE_FLOAT: rd_arg_f32(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_DOUBLE: rd_arg_f64(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_INT8: rd_arg_i8(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_INT16: rd_arg_i16(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_INT32: rd_arg_i32(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_INT64: rd_arg_i64(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_UINT8:
    case IFD_DTYPE_BOOL: rd_arg_u8(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_UINT16: rd_arg_u16(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_UINT32: rd_arg_u32(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_UINT64: rd_arg_u64(x, y, outer, n, inner, is_max, last); break;
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16: {
        size_t bytes;
        if (!ifd_mul_size((size_t)X->count, sizeof(float), &bytes))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "input too large");
        float *xf = ifd_kernel_scratch(ctx, bytes);
        if (!xf) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch memory");
        rd_widen(X->dtype, x, RD_CT_F32, xf, X->count);
        rd_arg_f32(xf, y, outer, n, inner, is_max, last);
        break;
    }
    default:
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(X->dtype));
    }
    return IFD_OK;
}

static ifd_status run_argmax(ifd_kernel_ctx *ctx) { return rd_arg_run(ctx, true); }
static ifd_status run_argmin(ifd_kernel_ctx *ctx) { return rd_arg_run(ctx, false); }

/* ---- TopK ---------------------------------------------------------------------------------- */

/* Elements are compared through an order-preserving unsigned key (NaN above everything). */
typedef struct rd_pair {
    uint64_t key;
    int64_t idx;
} rd_pair;

static uint64_t rd_key_f64(double v) {
    if (v != v) return UINT64_MAX;
    if (v == 0) v = 0; /* -0 == +0 */
    uint64_t b;
    memcpy(&b, &v, 8);
    return (b >> 63) ? ~b : b | (1ull << 63);
}

static uint64_t rd_key(const ifd_tensor *t, int64_t i) {
    const void *p = t->data;
    switch (t->dtype) {
    case IFD_DTYPE_FLOAT: return rd_key_f64(((const float *)p)[i]);
    case IFD_DTYPE_DOUBLE: return rd_key_f64(((const double *)p)[i]);
    case IFD_DTYPE_FLOAT16: return rd_key_f64(ifd_fp16_to_f32(((const uint16_t *)p)[i]));
    case IFD_DTYPE_BFLOAT16: return rd_key_f64(ifd_bf16_to_f32(((const uint16_t *)p)[i]));
    case IFD_DTYPE_UINT64: return ((const uint64_t *)p)[i];
    default:
        if (ifd_dtype_is_unsigned_int(t->dtype) || t->dtype == IFD_DTYPE_BOOL)
            return (uint64_t)ifd_tensor_get_i64(t, i);
        return (uint64_t)ifd_tensor_get_i64(t, i) ^ (1ull << 63);
    }
}

/* a ranks before b: larger (or smaller) key first, then lower index. */
static inline bool rd_before(const rd_pair *a, const rd_pair *b, bool largest) {
    if (a->key != b->key) return largest ? a->key > b->key : a->key < b->key;
    return a->idx < b->idx;
}

static int rd_cmp_largest(const void *a, const void *b) {
    return rd_before(a, b, true) ? -1 : rd_before(b, a, true) ? 1 : 0;
}
static int rd_cmp_smallest(const void *a, const void *b) {
    return rd_before(a, b, false) ? -1 : rd_before(b, a, false) ? 1 : 0;
}

/* Heap with the worst kept element at the root. */
static void rd_sift_down(rd_pair *h, int64_t n, int64_t i, bool largest) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && rd_before(&h[w], &h[l], largest)) w = l;
        if (r < n && rd_before(&h[w], &h[r], largest)) w = r;
        if (w == i) return;
        rd_pair t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

typedef struct rd_topk_job {
    const ifd_tensor *X;
    ifd_tensor *V, *I;
    rd_pair *scratch;
    int64_t n, inner, k, per; /* per: scratch pairs per slice */
    bool largest, use_heap;
    size_t esize;
} rd_topk_job;

static void rd_topk_task(void *arg, int64_t begin, int64_t end) {
    const rd_topk_job *j = arg;
    int64_t n = j->n, inner = j->inner, k = j->k;
    for (int64_t s = begin; s < end; s++) {
        int64_t o = s / inner, c = s % inner;
        int64_t base = o * n * inner + c;
        rd_pair *p = j->scratch + s * j->per;
        if (j->use_heap) {
            for (int64_t r = 0; r < k; r++) p[r] = (rd_pair){rd_key(j->X, base + r * inner), r};
            for (int64_t i = k / 2 - 1; i >= 0; i--) rd_sift_down(p, k, i, j->largest);
            for (int64_t r = k; r < n; r++) {
                rd_pair q = {rd_key(j->X, base + r * inner), r};
                if (rd_before(&q, &p[0], j->largest)) {
                    p[0] = q;
                    rd_sift_down(p, k, 0, j->largest);
                }
            }
        } else {
            for (int64_t r = 0; r < n; r++) p[r] = (rd_pair){rd_key(j->X, base + r * inner), r};
        }
        qsort(p, (size_t)(j->use_heap ? k : n), sizeof(rd_pair),
              j->largest ? rd_cmp_largest : rd_cmp_smallest);
        int64_t obase = o * k * inner + c;
        const char *xs = j->X->data;
        char *vs = j->V ? j->V->data : NULL;
        int64_t *is = j->I ? j->I->data : NULL;
        for (int64_t r = 0; r < k; r++) {
            int64_t oi = obase + r * inner;
            if (vs) memcpy(vs + oi * j->esize, xs + (base + p[r].idx * inner) * j->esize, j->esize);
            if (is) is[oi] = p[r].idx;
        }
    }
}

static ifd_status run_topk(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    if (!rd_dtype_ok(X->dtype) || X->dtype == IFD_DTYPE_BOOL)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(X->dtype));
    int rank = X->rank, axis = 0;
    if (rank == 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank >= 1");
    st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", -1), rank, &axis);
    if (st) return st;
    int64_t k;
    if (ctx->opset < 10) {
        k = ifd_attr_int(ctx->node, "k", -1);
    } else {
        st = ifd_kernel_require_input(ctx, 1);
        if (st) return st;
        const ifd_tensor *K = ctx->inputs[1];
        if (K->count != 1 || (K->dtype != IFD_DTYPE_INT64 && K->dtype != IFD_DTYPE_INT32))
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "K must be a single int64");
        k = ifd_tensor_get_i64(K, 0);
    }
    bool largest = ctx->opset < 11 || ifd_attr_int(ctx->node, "largest", 1) != 0;
    int64_t n = X->dims[axis], outer = 1, inner = 1;
    if (k < 0 || k > n)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "k=%lld out of range for axis size %lld", (long long)k,
                                (long long)n);
    for (int i = 0; i < rank; i++) {
        if (i < axis) outer *= X->dims[i];
        if (i > axis) inner *= X->dims[i];
    }
    int64_t odims[IFD_MAX_RANK];
    memcpy(odims, X->dims, sizeof(int64_t) * (size_t)rank);
    odims[axis] = k;
    ifd_tensor *V, *I;
    st = ifd_kernel_output(ctx, 0, X->dtype, rank, odims, &V);
    if (st) return st;
    st = ifd_kernel_output(ctx, 1, IFD_DTYPE_INT64, rank, odims, &I);
    if (st) return st;
    int64_t slices = outer * inner;
    if (k == 0 || slices == 0 || (!V && !I)) return IFD_OK;
    rd_topk_job j = {X, V, I, NULL, n, inner, k, 0, largest, k * 8 < n, ifd_dtype_size(X->dtype)};
    j.per = j.use_heap ? k : n;
    size_t bytes;
    if (!ifd_mul_size((size_t)slices, (size_t)j.per, &bytes) ||
        !ifd_mul_size(bytes, sizeof(rd_pair), &bytes))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "input too large");
    j.scratch = ifd_kernel_scratch(ctx, bytes);
    if (!j.scratch) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch memory");
    ifd_parallel_for(ctx->pool, slices, IFD_MAX(1, 8192 / IFD_MAX(n, 1)), rd_topk_task, &j);
    return IFD_OK;
}

/* ---- CumSum ------------------------------------------------------------------------------- */

/* Along n of [outer, n, inner]: each output row is the previous output row plus an input row,
 * so the inner loop runs over contiguous memory. */
#define RD_CUMSUM_KERNEL(NAME, T)                                                                  \
    static void NAME(const T *x, T *y, int64_t outer, int64_t n, int64_t inner, bool excl,         \
                     bool rev) {                                                                   \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const T *xb = x + o * n * inner;                                                       \
            T *yb = y + o * n * inner;                                                             \
            for (int64_t s = 0; s < n; s++) {                                                      \
                int64_t r = rev ? n - 1 - s : s, pr = rev ? r + 1 : r - 1;                         \
                T *restrict yr = yb + r * inner;                                                   \
                if (s == 0) {                                                                      \
                    for (int64_t c = 0; c < inner; c++) yr[c] = excl ? (T)0 : xb[r * inner + c];   \
                    continue;                                                                      \
                }                                                                                  \
                const T *restrict yp = yb + pr * inner;                                            \
                const T *restrict xr = xb + (excl ? pr : r) * inner;                               \
                for (int64_t c = 0; c < inner; c++) yr[c] = (T)(yp[c] + xr[c]);                    \
            }                                                                                      \
        }                                                                                          \
    }

RD_CUMSUM_KERNEL(rd_cumsum_f32, float)
RD_CUMSUM_KERNEL(rd_cumsum_f64, double)
RD_CUMSUM_KERNEL(rd_cumsum_i32, int32_t)
RD_CUMSUM_KERNEL(rd_cumsum_u32, uint32_t)
RD_CUMSUM_KERNEL(rd_cumsum_u64, uint64_t)

static ifd_status run_cumsum(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (!st) st = ifd_kernel_require_input(ctx, 1);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0], *A = ctx->inputs[1];
    if (A->count != 1 || (A->dtype != IFD_DTYPE_INT64 && A->dtype != IFD_DTYPE_INT32))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "axis must be a single int32/int64");
    int rank = X->rank, axis = 0;
    if (rank == 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank >= 1");
    st = ifd_normalize_axis(ctx, ifd_tensor_get_i64(A, 0), rank, &axis);
    if (st) return st;
    bool excl = ifd_attr_int(ctx->node, "exclusive", 0) != 0;
    bool rev = ifd_attr_int(ctx->node, "reverse", 0) != 0;
    int64_t outer = 1, n = X->dims[axis], inner = 1;
    for (int i = 0; i < rank; i++) {
        if (i < axis) outer *= X->dims[i];
        if (i > axis) inner *= X->dims[i];
    }
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, rank, X->dims, &Y);
    if (st || !Y || Y->count == 0) return st;
    switch (X->dtype) {
    case IFD_DTYPE_FLOAT: rd_cumsum_f32(X->data, Y->data, outer, n, inner, excl, rev); break;
    case IFD_DTYPE_DOUBLE: rd_cumsum_f64(X->data, Y->data, outer, n, inner, excl, rev); break;
    case IFD_DTYPE_INT32: rd_cumsum_i32(X->data, Y->data, outer, n, inner, excl, rev); break;
    case IFD_DTYPE_UINT32: rd_cumsum_u32(X->data, Y->data, outer, n, inner, excl, rev); break;
    case IFD_DTYPE_INT64:
    case IFD_DTYPE_UINT64: rd_cumsum_u64(X->data, Y->data, outer, n, inner, excl, rev); break;
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16: {
        size_t bytes;
        if (!ifd_mul_size((size_t)X->count, 2 * sizeof(float), &bytes))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "input too large");
        float *xf = ifd_kernel_scratch(ctx, bytes);
        if (!xf) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch memory");
        rd_widen(X->dtype, X->data, RD_CT_F32, xf, X->count);
        rd_cumsum_f32(xf, xf + X->count, outer, n, inner, excl, rev);
        rd_narrow(RD_CT_F32, xf + X->count, X->dtype, Y->data, X->count);
        break;
    }
    default:
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(X->dtype));
    }
    return IFD_OK;
}

/* ---- NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss ----------------------------------- */

typedef enum rd_reduction { RD_RED_NONE, RD_RED_SUM, RD_RED_MEAN } rd_reduction;

static ifd_status rd_loss_common(ifd_kernel_ctx *ctx, bool softmax) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (!st) st = ifd_kernel_require_input(ctx, 1);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0], *T = ctx->inputs[1];
    const ifd_tensor *W = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (X->dtype != IFD_DTYPE_FLOAT && X->dtype != IFD_DTYPE_DOUBLE &&
        X->dtype != IFD_DTYPE_FLOAT16 && X->dtype != IFD_DTYPE_BFLOAT16)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(X->dtype));
    if (T->dtype != IFD_DTYPE_INT64 && T->dtype != IFD_DTYPE_INT32)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "target must be int32 or int64");
    if (X->rank < 2 || T->rank != X->rank - 1)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "input must be [N, C, d...] and target [N, d...]");
    int64_t N = X->dims[0], C = X->dims[1], D = 1;
    if (T->dims[0] != N) return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "target batch size mismatch");
    for (int i = 2; i < X->rank; i++) {
        if (T->dims[i - 1] != X->dims[i])
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "target shape does not match input");
        D *= X->dims[i];
    }
    if (W && (W->rank != 1 || W->dims[0] != C))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "weight must be [C]");
    const char *red = ifd_attr_string(ctx->node, "reduction", "mean");
    rd_reduction reduction;
    if (!strcmp(red, "none"))
        reduction = RD_RED_NONE;
    else if (!strcmp(red, "sum"))
        reduction = RD_RED_SUM;
    else if (!strcmp(red, "mean"))
        reduction = RD_RED_MEAN;
    else
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown reduction '%s'", red);
    bool has_ii = ifd_attr_has(ctx->node, "ignore_index");
    int64_t ii = ifd_attr_int(ctx->node, "ignore_index", 0);

    /* Work in double: logits [N, C, D] -> log-probabilities when softmax. */
    size_t bytes;
    if (!ifd_mul_size((size_t)X->count, sizeof(double), &bytes))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "input too large");
    double *lp = ifd_kernel_scratch(ctx, bytes);
    if (!lp) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch memory");
    for (int64_t i = 0; i < X->count; i++) lp[i] = ifd_tensor_get_f64(X, i);
    if (softmax) {
        for (int64_t nn = 0; nn < N; nn++)
            for (int64_t d = 0; d < D; d++) {
                double *p = lp + nn * C * D + d, m = -INFINITY, s = 0;
                for (int64_t c = 0; c < C; c++) m = p[c * D] > m ? p[c * D] : m;
                for (int64_t c = 0; c < C; c++) s += exp(p[c * D] - m);
                double ls = m + log(s);
                for (int64_t c = 0; c < C; c++) p[c * D] -= ls;
            }
        ifd_tensor *LP;
        st = ifd_kernel_output(ctx, 1, X->dtype, X->rank, X->dims, &LP);
        if (st) return st;
        if (LP)
            for (int64_t i = 0; i < X->count; i++) rd_store_f64(LP, i, lp[i]);
    }

    ifd_tensor *L;
    if (reduction == RD_RED_NONE)
        st = ifd_kernel_output(ctx, 0, X->dtype, T->rank, T->dims, &L);
    else
        st = ifd_kernel_output(ctx, 0, X->dtype, 0, NULL, &L);
    if (st) return st;
    double total = 0, wsum = 0;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t d = 0; d < D; d++) {
            int64_t t = ifd_tensor_get_i64(T, nn * D + d);
            double loss = 0, w = 0;
            if (!(has_ii && t == ii)) {
                if (t < 0 || t >= C)
                    return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                            "target %lld out of range [0, %lld)", (long long)t,
                                            (long long)C);
                w = W ? ifd_tensor_get_f64(W, t) : 1.0;
                loss = -lp[(nn * C + t) * D + d] * w;
            }
            if (reduction == RD_RED_NONE && L) rd_store_f64(L, nn * D + d, loss);
            total += loss;
            wsum += w;
        }
    if (reduction != RD_RED_NONE && L)
        rd_store_f64(L, 0, reduction == RD_RED_SUM ? total : total / wsum);
    return IFD_OK;
}

static ifd_status run_nllloss(ifd_kernel_ctx *ctx) { return rd_loss_common(ctx, false); }
static ifd_status run_sceloss(ifd_kernel_ctx *ctx) { return rd_loss_common(ctx, true); }

const ifd_op_def ifd_ops_reduce[] = {
    {"", "ReduceSum", 1, run_reduce_sum, NULL, NULL, 0},
    {"", "ReduceMean", 1, run_reduce_mean, NULL, NULL, 0},
    {"", "ReduceMax", 1, run_reduce_max, NULL, NULL, 0},
    {"", "ReduceMin", 1, run_reduce_min, NULL, NULL, 0},
    {"", "ReduceProd", 1, run_reduce_prod, NULL, NULL, 0},
    {"", "ReduceL1", 1, run_reduce_l1, NULL, NULL, 0},
    {"", "ReduceL2", 1, run_reduce_l2, NULL, NULL, 0},
    {"", "ReduceLogSum", 1, run_reduce_logsum, NULL, NULL, 0},
    {"", "ReduceLogSumExp", 1, run_reduce_logsumexp, NULL, NULL, 0},
    {"", "ReduceSumSquare", 1, run_reduce_sumsq, NULL, NULL, 0},
    {"", "ArgMax", 1, run_argmax, NULL, NULL, 0},
    {"", "ArgMin", 1, run_argmin, NULL, NULL, 0},
    {"", "TopK", 1, run_topk, NULL, NULL, 0},
    {"", "CumSum", 11, run_cumsum, NULL, NULL, 0},
    {"", "NegativeLogLikelihoodLoss", 12, run_nllloss, NULL, NULL, 0},
    {"", "SoftmaxCrossEntropyLoss", 12, run_sceloss, NULL, NULL, 0},
    {0},
};
