/* Operator family: softmax (Softmax, LogSoftmax, Hardmax).
 *
 * Layout: the input is viewed as [outer, n, inner] with n the normalized extent. From opset 13
 * n is dims[axis] (default axis -1); before, the input is coerced to 2-D at axis (default 1),
 * so n = prod(dims[axis:]) and inner = 1. inner == 1 (the common case: last axis) runs row by
 * row with AVX2; inner > 1 runs over blocks of up to SM_BLOCK contiguous columns so every
 * memory access stays contiguous. */
#include "ops/op.h"

#include "kernels/vecmath.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SM_X86 1
#else
#define SM_X86 0
#endif

typedef enum sm_kind { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX } sm_kind;

enum { SM_BLOCK = 1024 }; /* widest column block (stack buffers) */

/* 0: scalar, 1: AVX2+FMA, 2: AVX-512F as well (only the exp pass uses it). */
static int sm_isa(void) {
#if SM_X86
    if (!ifd_cpu_has_avx2_fma()) return 0;
    return __builtin_cpu_supports("avx512f") ? 2 : 1;
#else
    return 0;
#endif
}

/* ---- AVX2 primitives ------------------------------------------------------------------- */
#if SM_X86
#define SM_AVX2 __attribute__((target("avx2,fma")))

SM_AVX2 static float sm_max_avx2(const float *x, int64_t n) {
    int64_t i = 0;
    float m = -INFINITY;
    if (n >= 32) {
        __m256 a = _mm256_loadu_ps(x), b = _mm256_loadu_ps(x + 8), c = _mm256_loadu_ps(x + 16),
               d = _mm256_loadu_ps(x + 24);
        for (i = 32; i + 32 <= n; i += 32) {
            a = _mm256_max_ps(a, _mm256_loadu_ps(x + i));
            b = _mm256_max_ps(b, _mm256_loadu_ps(x + i + 8));
            c = _mm256_max_ps(c, _mm256_loadu_ps(x + i + 16));
            d = _mm256_max_ps(d, _mm256_loadu_ps(x + i + 24));
        }
        m = ifd_hmax256_avx2(_mm256_max_ps(_mm256_max_ps(a, b), _mm256_max_ps(c, d)));
    }
    for (; i + 8 <= n; i += 8) m = fmaxf(m, ifd_hmax256_avx2(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* y = exp(x - m) (y may be NULL); returns the sum. */
SM_AVX2 static float sm_exp_sum_avx2(const float *x, float *y, int64_t n, float m) {
    __m256 vm = _mm256_set1_ps(m), s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        __m256 e1 = ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        if (y) {
            _mm256_storeu_ps(y + i, e0);
            _mm256_storeu_ps(y + i + 8, e1);
        }
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 e0 = ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        if (y) _mm256_storeu_ps(y + i, e0);
        s0 = _mm256_add_ps(s0, e0);
    }
    float s = ifd_hsum256_avx2(_mm256_add_ps(s0, s1));
    if (i < n) {
        float buf[8] = {0}, out[8];
        int64_t r = n - i;
        for (int64_t k = 0; k < 8; k++) buf[k] = k < r ? x[i + k] - m : -INFINITY;
        _mm256_storeu_ps(out, ifd_exp256_avx2(_mm256_loadu_ps(buf)));
        for (int64_t k = 0; k < r; k++) {
            if (y) y[i + k] = out[k];
            s += out[k];
        }
    }
    return s;
}

#define SM_AVX512 __attribute__((target("avx512f")))

/* exp for x <= 88; x below -87.3 gives exactly 0. scalef does the 2^n scaling. */
SM_AVX512 static inline __m512 sm_exp512(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3365447f);
    __mmask16 ok = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps(ok, _mm512_scalef_ps(p, n));
}

/* y = exp(x - m) (y may be NULL); returns the sum. Tail handled with masks. */
SM_AVX512 static float sm_exp_sum_avx512(const float *x, float *y, int64_t n, float m) {
    __m512 vm = _mm512_set1_ps(m), s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 e0 = sm_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        __m512 e1 = sm_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm));
        if (y) {
            _mm512_storeu_ps(y + i, e0);
            _mm512_storeu_ps(y + i + 16, e1);
        }
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = sm_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
        e = _mm512_maskz_mov_ps(k, e);
        if (y) _mm512_mask_storeu_ps(y + i, k, e);
        s0 = _mm512_add_ps(s0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

SM_AVX512 static void sm_vexp_acc_avx512(const float *x, const float *m, float *y, float *s,
                                         int64_t w) {
    for (int64_t i = 0; i < w; i += 16) {
        __mmask16 k = w - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (w - i)) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, m + i));
        __m512 e = sm_exp512(d);
        if (y) _mm512_mask_storeu_ps(y + i, k, e);
        _mm512_mask_storeu_ps(s + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, s + i), e));
    }
}

SM_AVX2 static void sm_scale_avx2(float *y, int64_t n, float a) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), va));
    for (; i < n; i++) y[i] *= a;
}

SM_AVX2 static void sm_add_avx2(const float *x, float *y, int64_t n, float a) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), va));
    for (; i < n; i++) y[i] = x[i] + a;
}

/* Column-block helpers (w <= SM_BLOCK). */
SM_AVX2 static void sm_vmax_avx2(float *m, const float *x, int64_t w) {
    int64_t i = 0;
    for (; i + 8 <= w; i += 8)
        _mm256_storeu_ps(m + i, _mm256_max_ps(_mm256_loadu_ps(m + i), _mm256_loadu_ps(x + i)));
    for (; i < w; i++) m[i] = x[i] > m[i] ? x[i] : m[i];
}

SM_AVX2 static void sm_vexp_acc_avx2(const float *x, const float *m, float *y, float *s,
                                     int64_t w) {
    int64_t i = 0;
    for (; i + 8 <= w; i += 8) {
        __m256 e = ifd_exp256_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(m + i)));
        if (y) _mm256_storeu_ps(y + i, e);
        _mm256_storeu_ps(s + i, _mm256_add_ps(_mm256_loadu_ps(s + i), e));
    }
    for (; i < w; i++) {
        float e = expf(x[i] - m[i]);
        if (y) y[i] = e;
        s[i] += e;
    }
}

SM_AVX2 static void sm_vmul_avx2(const float *x, const float *a, float *y, int64_t w) {
    int64_t i = 0;
    for (; i + 8 <= w; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(a + i)));
    for (; i < w; i++) y[i] = x[i] * a[i];
}

SM_AVX2 static void sm_vsub_avx2(const float *x, const float *a, float *y, int64_t w) {
    int64_t i = 0;
    for (; i + 8 <= w; i += 8)
        _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(a + i)));
    for (; i < w; i++) y[i] = x[i] - a[i];
}
#endif

/* ---- dispatching primitives (scalar fallbacks) ------------------------------------------ */
static float sm_max(int isa, const float *x, int64_t n) {
#if SM_X86
    if (isa) return sm_max_avx2(x, n);
#endif
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float sm_exp_sum(int isa, const float *x, float *y, int64_t n, float m) {
#if SM_X86
    if (isa == 2) return sm_exp_sum_avx512(x, y, n, m);
    if (isa) return sm_exp_sum_avx2(x, y, n, m);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - m);
        if (y) y[i] = e;
        s += e;
    }
    return s;
}

static void sm_scale(int isa, float *y, int64_t n, float a) {
#if SM_X86
    if (isa) {
        sm_scale_avx2(y, n, a);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] *= a;
}

static void sm_add(int isa, const float *x, float *y, int64_t n, float a) {
#if SM_X86
    if (isa) {
        sm_add_avx2(x, y, n, a);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = x[i] + a;
}

static void sm_vmax(int isa, float *m, const float *x, int64_t w) {
#if SM_X86
    if (isa) {
        sm_vmax_avx2(m, x, w);
        return;
    }
#endif
    for (int64_t i = 0; i < w; i++) m[i] = x[i] > m[i] ? x[i] : m[i];
}

static void sm_vexp_acc(int isa, const float *x, const float *m, float *y, float *s, int64_t w) {
#if SM_X86
    if (isa == 2) {
        sm_vexp_acc_avx512(x, m, y, s, w);
        return;
    }
    if (isa) {
        sm_vexp_acc_avx2(x, m, y, s, w);
        return;
    }
#endif
    for (int64_t i = 0; i < w; i++) {
        float e = expf(x[i] - m[i]);
        if (y) y[i] = e;
        s[i] += e;
    }
}

static void sm_vmul(int isa, const float *x, const float *a, float *y, int64_t w) {
#if SM_X86
    if (isa) {
        sm_vmul_avx2(x, a, y, w);
        return;
    }
#endif
    for (int64_t i = 0; i < w; i++) y[i] = x[i] * a[i];
}

static void sm_vsub(int isa, const float *x, const float *a, float *y, int64_t w) {
#if SM_X86
    if (isa) {
        sm_vsub_avx2(x, a, y, w);
        return;
    }
#endif
    for (int64_t i = 0; i < w; i++) y[i] = x[i] - a[i];
}

/* ---- float kernels ---------------------------------------------------------------------- */

typedef struct sm_job {
    sm_kind kind;
    int isa;
    const float *x; /* [outer, n, inner] */
    float *y;       /* same shape */
    int64_t n, inner, nblk, bw; /* column blocks per outer slice, of bw columns */
} sm_job;

static void sm_row(const sm_job *j, const float *x, float *y) {
    int64_t n = j->n;
    if (j->kind == SM_HARDMAX) {
        int64_t best = 0;
        for (int64_t i = 1; i < n; i++)
            if (x[i] > x[best]) best = i;
        memset(y, 0, (size_t)n * sizeof(float));
        y[best] = 1.0f;
        return;
    }
    float m = sm_max(j->isa, x, n);
    if (j->kind == SM_SOFTMAX) {
        float s = sm_exp_sum(j->isa, x, y, n, m);
        sm_scale(j->isa, y, n, 1.0f / s);
    } else {
        float s = sm_exp_sum(j->isa, x, NULL, n, m);
        sm_add(j->isa, x, y, n, -(m + logf(s)));
    }
}

static void sm_rows_task(void *arg, int64_t begin, int64_t end) {
    const sm_job *j = arg;
    for (int64_t r = begin; r < end; r++) sm_row(j, j->x + r * j->n, j->y + r * j->n);
}

/* One task = one block of up to SM_BLOCK columns of one outer slice [n, inner]. */
static void sm_cols_task(void *arg, int64_t begin, int64_t end) {
    const sm_job *j = arg;
    int64_t n = j->n, inner = j->inner;
    float m[SM_BLOCK], s[SM_BLOCK];
    for (int64_t t = begin; t < end; t++) {
        int64_t o = t / j->nblk, c0 = (t % j->nblk) * j->bw;
        int64_t w = IFD_MIN(j->bw, inner - c0);
        const float *x = j->x + o * n * inner + c0;
        float *y = j->y + o * n * inner + c0;
        if (j->kind == SM_HARDMAX) {
            int64_t best[SM_BLOCK];
            for (int64_t c = 0; c < w; c++) {
                best[c] = 0;
                m[c] = x[c];
            }
            for (int64_t r = 1; r < n; r++)
                for (int64_t c = 0; c < w; c++)
                    if (x[r * inner + c] > m[c]) {
                        m[c] = x[r * inner + c];
                        best[c] = r;
                    }
            for (int64_t r = 0; r < n; r++) memset(y + r * inner, 0, (size_t)w * sizeof(float));
            for (int64_t c = 0; c < w; c++) y[best[c] * inner + c] = 1.0f;
            continue;
        }
        memcpy(m, x, (size_t)w * sizeof(float));
        for (int64_t r = 1; r < n; r++) sm_vmax(j->isa, m, x + r * inner, w);
        memset(s, 0, (size_t)w * sizeof(float));
        bool soft = j->kind == SM_SOFTMAX;
        for (int64_t r = 0; r < n; r++)
            sm_vexp_acc(j->isa, x + r * inner, m, soft ? y + r * inner : NULL, s, w);
        if (soft) {
            for (int64_t c = 0; c < w; c++) s[c] = 1.0f / s[c];
            for (int64_t r = 0; r < n; r++) sm_vmul(j->isa, y + r * inner, s, y + r * inner, w);
        } else {
            for (int64_t c = 0; c < w; c++) s[c] = m[c] + logf(s[c]);
            for (int64_t r = 0; r < n; r++) sm_vsub(j->isa, x + r * inner, s, y + r * inner, w);
        }
    }
}

static void sm_run_f32(ifd_kernel_ctx *ctx, sm_kind kind, const float *x, float *y, int64_t outer,
                       int64_t n, int64_t inner) {
    sm_job j = {kind, sm_isa(), x, y, n, inner, 0, 0};
    if (inner == 1) {
        ifd_parallel_for(ctx->pool, outer, IFD_MAX(1, 16384 / IFD_MAX(n, 1)), sm_rows_task, &j);
    } else {
        /* Wide blocks keep the strided walk over n cheap; narrow them only as far as needed
         * to give every thread a few tasks. */
        int64_t want = (4 * (int64_t)ifd_thread_pool_size(ctx->pool) + outer - 1) / outer;
        int64_t bw = (inner + want - 1) / want;
        bw = IFD_MIN(SM_BLOCK, IFD_MAX(64, (bw + 15) / 16 * 16));
        j.bw = bw;
        j.nblk = (inner + bw - 1) / bw;
        int64_t per = n * IFD_MIN(inner, bw);
        ifd_parallel_for(ctx->pool, outer * j.nblk, IFD_MAX(1, 16384 / IFD_MAX(per, 1)),
                         sm_cols_task, &j);
    }
}

/* Double precision: plain strided loops (rare in models). */
static void sm_run_f64(sm_kind kind, const double *x, double *y, int64_t outer, int64_t n,
                       int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            const double *xp = x + o * n * inner + c;
            double *yp = y + o * n * inner + c;
            double m = xp[0];
            int64_t best = 0;
            for (int64_t r = 1; r < n; r++)
                if (xp[r * inner] > m) {
                    m = xp[r * inner];
                    best = r;
                }
            if (kind == SM_HARDMAX) {
                for (int64_t r = 0; r < n; r++) yp[r * inner] = r == best ? 1.0 : 0.0;
                continue;
            }
            double s = 0;
            for (int64_t r = 0; r < n; r++) s += exp(xp[r * inner] - m);
            if (kind == SM_SOFTMAX)
                for (int64_t r = 0; r < n; r++) yp[r * inner] = exp(xp[r * inner] - m) / s;
            else
                for (int64_t r = 0; r < n; r++) yp[r * inner] = xp[r * inner] - m - log(s);
        }
}

static ifd_status sm_run(ifd_kernel_ctx *ctx, sm_kind kind) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int rank = X->rank;
    int64_t axis_attr = ifd_attr_int(ctx->node, "axis", ctx->opset < 13 ? 1 : -1);
    int axis = 0;
    if (rank > 0) {
        st = ifd_normalize_axis(ctx, axis_attr, rank, &axis);
        if (st) return st;
    }
    int64_t outer = 1, n = 1, inner = 1;
    for (int i = 0; i < rank; i++) {
        if (i < axis)
            outer *= X->dims[i];
        else if (i == axis || ctx->opset < 13)
            n *= X->dims[i];
        else
            inner *= X->dims[i];
    }
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, rank, X->dims, &Y);
    if (st || !Y) return st;
    if (X->count == 0) return IFD_OK;

    switch (X->dtype) {
    case IFD_DTYPE_FLOAT:
        sm_run_f32(ctx, kind, X->data, Y->data, outer, n, inner);
        return IFD_OK;
    case IFD_DTYPE_DOUBLE:
        sm_run_f64(kind, X->data, Y->data, outer, n, inner);
        return IFD_OK;
    case IFD_DTYPE_FLOAT16:
    case IFD_DTYPE_BFLOAT16: {
        size_t bytes;
        if (!ifd_mul_size((size_t)X->count, 2 * sizeof(float), &bytes))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "input too large");
        float *xf = ifd_kernel_scratch(ctx, bytes);
        if (!xf) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch memory");
        float *yf = xf + X->count;
        const uint16_t *xs = X->data;
        uint16_t *ys = Y->data;
        bool half = X->dtype == IFD_DTYPE_FLOAT16;
        if (half)
            ifd_vec_f16_to_f32(xs, xf, X->count);
        else
            ifd_vec_bf16_to_f32(xs, xf, X->count);
        sm_run_f32(ctx, kind, xf, yf, outer, n, inner);
        if (half)
            ifd_vec_f32_to_f16(yf, ys, X->count);
        else
            ifd_vec_f32_to_bf16(yf, ys, X->count);
        return IFD_OK;
    }
    default:
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(X->dtype));
    }
}

static ifd_status run_softmax(ifd_kernel_ctx *ctx) { return sm_run(ctx, SM_SOFTMAX); }
static ifd_status run_logsoftmax(ifd_kernel_ctx *ctx) { return sm_run(ctx, SM_LOGSOFTMAX); }
static ifd_status run_hardmax(ifd_kernel_ctx *ctx) { return sm_run(ctx, SM_HARDMAX); }

const ifd_op_def ifd_ops_softmax[] = {
    {"", "Softmax", 1, run_softmax, NULL, NULL, 0},
    {"", "LogSoftmax", 1, run_logsoftmax, NULL, NULL, 0},
    {"", "Hardmax", 1, run_hardmax, NULL, NULL, 0},
    {0},
};
