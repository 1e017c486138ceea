/* Operator family: normalization (BatchNormalization, InstanceNormalization,
 * LayerNormalization, GroupNormalization, RMSNormalization, LRN, MeanVarianceNormalization,
 * LpNormalization).
 *
 * All kernels compute in float: float16/bfloat16/double inputs are widened into scratch and
 * the result narrowed back (the statistics are float either way, as with stash_type = 1).
 * Row statistics use AVX2 with scalar fallbacks; work is split over rows/planes. */
#include "ops/op.h"

#include "kernels/vecmath.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NM_X86 1
#else
#define NM_X86 0
#endif

/* ---- AVX2 row primitives ---------------------------------------------------------------- */
#if NM_X86
#define NM_AVX2 __attribute__((target("avx2,fma")))

/* sum of (x - c)^2 when sq, else sum of x. */
NM_AVX2 static float nm_sum_avx2(const float *x, int64_t n, bool sq, float c) {
    __m256 a = _mm256_setzero_ps(), b = a, d = a, e = a, vc = _mm256_set1_ps(c);
    int64_t i = 0;
    if (sq) {
        for (; i + 32 <= n; i += 32) {
            __m256 u = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vc);
            __m256 w = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), vc);
            __m256 z = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), vc);
            a = _mm256_fmadd_ps(u, u, a);
            b = _mm256_fmadd_ps(v, v, b);
            d = _mm256_fmadd_ps(w, w, d);
            e = _mm256_fmadd_ps(z, z, e);
        }
        for (; i + 8 <= n; i += 8) {
            __m256 u = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
            a = _mm256_fmadd_ps(u, u, a);
        }
    } else {
        for (; i + 32 <= n; i += 32) {
            a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
            b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8));
            d = _mm256_add_ps(d, _mm256_loadu_ps(x + i + 16));
            e = _mm256_add_ps(e, _mm256_loadu_ps(x + i + 24));
        }
        for (; i + 8 <= n; i += 8) a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
    }
    float s = ifd_hsum256_avx2(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(d, e)));
    for (; i < n; i++) s += sq ? (x[i] - c) * (x[i] - c) : x[i];
    return s;
}

/* One pass: *s1 = sum of (x - c), *s2 = sum of (x - c)^2. */
NM_AVX2 static void nm_moments_avx2(const float *x, int64_t n, float c, float *s1, float *s2) {
    __m256 a = _mm256_setzero_ps(), b = a, qa = a, qb = a, vc = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 u = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
        __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vc);
        a = _mm256_add_ps(a, u);
        b = _mm256_add_ps(b, v);
        qa = _mm256_fmadd_ps(u, u, qa);
        qb = _mm256_fmadd_ps(v, v, qb);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 u = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
        a = _mm256_add_ps(a, u);
        qa = _mm256_fmadd_ps(u, u, qa);
    }
    float t1 = ifd_hsum256_avx2(_mm256_add_ps(a, b)), t2 = ifd_hsum256_avx2(_mm256_add_ps(qa, qb));
    for (; i < n; i++) {
        float d = x[i] - c;
        t1 += d;
        t2 += d * d;
    }
    *s1 = t1;
    *s2 = t2;
}

/* y += x * x */
NM_AVX2 static void nm_sqacc_avx2(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, v, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += x[i] * x[i];
}

/* LRN with beta = 0.75: y = x / t^0.75 where t = bias + alpha_n * y (y holds the window's
 * sum of squares), as x / (sqrt(t) * sqrt(sqrt(t))). */
NM_AVX2 static void nm_lrn075_avx2(const float *x, float *y, int64_t n, float bias, float alpha_n) {
    __m256 vb = _mm256_set1_ps(bias), va = _mm256_set1_ps(alpha_n);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_fmadd_ps(va, _mm256_loadu_ps(y + i), vb);
        __m256 r = _mm256_sqrt_ps(t);
        r = _mm256_mul_ps(r, _mm256_sqrt_ps(r));
        _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(x + i), r));
    }
    for (; i < n; i++) {
        float r = sqrtf(bias + alpha_n * y[i]);
        y[i] = x[i] / (r * sqrtf(r));
    }
}

/* y = (x - m) * k * (scale ? scale[i] : 1) + (bias ? bias[i] : b0). */
NM_AVX2 static void nm_apply_avx2(const float *x, float *y, int64_t n, float m, float k,
                                  const float *scale, const float *bias, float b0) {
    __m256 vm = _mm256_set1_ps(m), vk = _mm256_set1_ps(k), vb = _mm256_set1_ps(b0);
    int64_t i = 0;
    if (scale) {
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vk);
            __m256 bb = bias ? _mm256_loadu_ps(bias + i) : vb;
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(scale + i), bb));
        }
    } else {
        /* (x - m) * k + b == x * k + (b - m * k) */
        __m256 vc = _mm256_set1_ps(b0 - m * k);
        for (; i + 8 <= n; i += 8) {
            __m256 bb = bias ? _mm256_sub_ps(_mm256_loadu_ps(bias + i), _mm256_set1_ps(m * k)) : vc;
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vk, bb));
        }
    }
    for (; i < n; i++) {
        float t = (x[i] - m) * k;
        y[i] = t * (scale ? scale[i] : 1.0f) + (bias ? bias[i] : b0);
    }
}
#endif

static float nm_sum(bool avx2, const float *x, int64_t n, bool sq, float c) {
#if NM_X86
    if (avx2) return nm_sum_avx2(x, n, sq, c);
#endif
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += sq ? (x[i] - c) * (x[i] - c) : x[i];
    return s;
}

/* Mean and population variance of x[0..n) in one pass. Shifting by x[0] keeps the
 * E[d^2] - E[d]^2 form accurate when the mean is large relative to the spread. */
static void nm_mean_var(bool avx2, const float *x, int64_t n, float *mean, float *var) {
    if (n <= 0) {
        *mean = *var = 0;
        return;
    }
    float c = x[0], s1 = 0, s2 = 0;
#if NM_X86
    if (avx2) {
        nm_moments_avx2(x, n, c, &s1, &s2);
    } else
#endif
    {
        for (int64_t i = 0; i < n; i++) {
            float d = x[i] - c;
            s1 += d;
            s2 += d * d;
        }
    }
    float m1 = s1 / (float)n, v = s2 / (float)n - m1 * m1;
    *mean = c + m1;
    *var = v > 0 ? v : 0;
}

static void nm_apply(bool avx2, const float *x, float *y, int64_t n, float m, float k,
                     const float *scale, const float *bias, float b0) {
#if NM_X86
    if (avx2) {
        nm_apply_avx2(x, y, n, m, k, scale, bias, b0);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        float t = (x[i] - m) * k;
        y[i] = t * (scale ? scale[i] : 1.0f) + (bias ? bias[i] : b0);
    }
}

/* ---- float working copies ---------------------------------------------------------------- */

/* t's data as float: the data itself when float, else a converted scratch copy. */
static ifd_status nm_as_f32(ifd_kernel_ctx *ctx, const ifd_tensor *t, const float **out) {
    if (t->dtype == IFD_DTYPE_FLOAT) {
        *out = t->data;
        return IFD_OK;
    }
    if (!ifd_dtype_is_std_float(t->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(t->dtype));
    ifd_status st = IFD_OK;
    float *f = ifd_kernel_scratch_array(ctx, (size_t)t->count, sizeof(float), &st);
    if (!f) return st;
    ifd_load_f32(t->dtype, t->data, f, t->count);
    *out = f;
    return IFD_OK;
}

/* Where to write float results for output t: its data when float, else scratch. */
static ifd_status nm_out_f32(ifd_kernel_ctx *ctx, ifd_tensor *t, float **out) {
    if (t->dtype == IFD_DTYPE_FLOAT) {
        *out = t->data;
        return IFD_OK;
    }
    ifd_status st = IFD_OK;
    *out = ifd_kernel_scratch_array(ctx, (size_t)t->count, sizeof(float), &st);
    return st;
}

static void nm_out_finish(ifd_tensor *t, const float *f) {
    if (t && t->dtype != IFD_DTYPE_FLOAT) ifd_store_f32(t->dtype, f, t->data, t->count);
}

/* A parameter (scale/bias) broadcast onto the normalized shape dims[0..n): a float array of
 * prod(dims) values (the tensor's own data when it already has that shape). */
static ifd_status nm_param(ifd_kernel_ctx *ctx, const ifd_tensor *p, const char *what, int n,
                           const int64_t *dims, int64_t size, const float **out) {
    const float *pf;
    ifd_status st = nm_as_f32(ctx, p, &pf);
    if (st) return st;
    if (p->count == size) {
        *out = pf;
        return IFD_OK;
    }
    if (p->rank > n)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "%s has rank %d, more than the %d normalized dims", what, p->rank,
                                n);
    int64_t pstride[IFD_MAX_RANK];
    int64_t s = 1;
    for (int i = n - 1; i >= 0; i--) {
        int pi = i - (n - p->rank);
        int64_t pd = pi >= 0 ? p->dims[pi] : 1;
        if (pd != 1 && pd != dims[i])
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "%s does not broadcast to the normalized shape", what);
        pstride[i] = pd == 1 ? 0 : s;
        s *= pd;
    }
    float *e = ifd_kernel_scratch_array(ctx, (size_t)size, sizeof(float), &st);
    if (!e) return st;
    int64_t idx[IFD_MAX_RANK] = {0};
    for (int64_t i = 0; i < size; i++) {
        int64_t off = 0;
        for (int d = 0; d < n; d++) off += idx[d] * pstride[d];
        e[i] = pf[off];
        for (int d = n - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    *out = e;
    return IFD_OK;
}

/* A per-channel vector of exactly `count` floats. */
static ifd_status nm_vec(ifd_kernel_ctx *ctx, int index, const char *what, int64_t count,
                         const float **out) {
    ifd_status st = ifd_kernel_require_input(ctx, index);
    if (st) return st;
    const ifd_tensor *t = ctx->inputs[index];
    if (t->count != count)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "%s has %lld elements, expected %lld", what,
                                (long long)t->count, (long long)count);
    return nm_as_f32(ctx, t, out);
}

static ifd_status nm_check_x(ifd_kernel_ctx *ctx, int min_rank) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    if (!ifd_dtype_is_std_float(X->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %s",
                                ifd_dtype_name(X->dtype));
    if (X->rank < min_rank)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input rank %d is below %d", X->rank, min_rank);
    return IFD_OK;
}

/* ---- per-plane affine / standardization jobs --------------------------------------------- */

/* Planes of `size` floats; plane p uses channel (p / cdiv) % C:
 *   mode AFFINE: y = x * a[c] + b[c]
 *   mode STATS:  y = (x - mean(plane)) / sqrt(var(plane) + eps) * a[c] + b[c] */
typedef enum nm_plane_mode { NM_AFFINE, NM_STATS } nm_plane_mode;

typedef struct nm_plane_job {
    nm_plane_mode mode;
    bool avx2;
    const float *x;
    float *y;
    int64_t size, C, cdiv;
    const float *a, *b;
    float eps;
} nm_plane_job;

static void nm_plane_task(void *arg, int64_t begin, int64_t end) {
    const nm_plane_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t c = (p / j->cdiv) % j->C;
        const float *x = j->x + p * j->size;
        float *y = j->y + p * j->size;
        float a = j->a ? j->a[c] : 1.0f, b = j->b ? j->b[c] : 0.0f;
        if (j->mode == NM_AFFINE) {
            nm_apply(j->avx2, x, y, j->size, 0.0f, a, NULL, NULL, b);
        } else {
            float mean, var;
            nm_mean_var(j->avx2, x, j->size, &mean, &var);
            float k = 1.0f / sqrtf(var + j->eps);
            nm_apply(j->avx2, x, y, j->size, mean, k * a, NULL, NULL, b);
        }
    }
}

static void nm_run_planes(ifd_kernel_ctx *ctx, nm_plane_job *j, int64_t planes) {
    j->avx2 = ifd_cpu_has_avx2_fma();
    ifd_parallel_for(ctx->pool, planes, IFD_MAX(1, 16384 / IFD_MAX(j->size, 1)), nm_plane_task, j);
}

/* ---- BatchNormalization -------------------------------------------------------------------- */

static ifd_status run_batchnorm(ifd_kernel_ctx *ctx) {
    ifd_status st = nm_check_x(ctx, 2);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int64_t N = X->dims[0], C = X->dims[1], S = 1;
    for (int i = 2; i < X->rank; i++) S *= X->dims[i];
    float eps = ifd_attr_float(ctx->node, "epsilon", 1e-5f);
    float momentum = ifd_attr_float(ctx->node, "momentum", 0.9f);
    bool training = ctx->opset >= 14 && ifd_attr_int(ctx->node, "training_mode", 0) != 0;

    for (int i = 1; i < 5; i++) {
        st = ifd_kernel_require_input(ctx, i);
        if (st) return st;
    }
    /* Before opset 9, spatial = 0 gives per-activation parameters of shape [C, D...]. */
    int64_t pc = ctx->inputs[1]->count == C * S && S > 1 ? C * S : C;
    const float *scale, *bias, *mean, *var;
    if ((st = nm_vec(ctx, 1, "scale", pc, &scale)) ||
        (st = nm_vec(ctx, 2, "B", pc, &bias)) ||
        (st = nm_vec(ctx, 3, "input_mean", pc, &mean)) ||
        (st = nm_vec(ctx, 4, "input_var", pc, &var)))
        return st;

    const float *xf;
    if ((st = nm_as_f32(ctx, X, &xf))) return st;
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, X->dims, &Y);
    if (st || !Y) return st;
    float *yf;
    if ((st = nm_out_f32(ctx, Y, &yf))) return st;

    float *a = ifd_kernel_scratch_array(ctx, (size_t)pc * 2, sizeof(float), &st);
    if (!a) return st;
    float *b = a + pc;
    float *bmean = NULL, *bvar = NULL;
    if (training) {
        /* Batch statistics per channel (population variance), summed in double. */
        bmean = ifd_kernel_scratch_array(ctx, (size_t)C * 2, sizeof(float), &st);
        if (!bmean) return st;
        bvar = bmean + C;
        bool avx2 = ifd_cpu_has_avx2_fma();
        int64_t cnt = N * S;
        for (int64_t c = 0; c < C; c++) {
            double s = 0, q = 0;
            for (int64_t n = 0; n < N; n++) s += nm_sum(avx2, xf + (n * C + c) * S, S, false, 0);
            float m = cnt ? (float)(s / (double)cnt) : 0.0f;
            for (int64_t n = 0; n < N; n++) q += nm_sum(avx2, xf + (n * C + c) * S, S, true, m);
            bmean[c] = m;
            bvar[c] = cnt ? (float)(q / (double)cnt) : 0.0f;
        }
        for (int64_t c = 0; c < C; c++) {
            a[c] = scale[c] / sqrtf(bvar[c] + eps);
            b[c] = bias[c] - bmean[c] * a[c];
        }
    } else {
        for (int64_t c = 0; c < pc; c++) {
            a[c] = scale[c] / sqrtf(var[c] + eps);
            b[c] = bias[c] - mean[c] * a[c];
        }
    }
    if (pc == C && S == 1) { /* [N, C]: rows with per-column parameters */
        bool avx2 = ifd_cpu_has_avx2_fma();
        for (int64_t n = 0; n < N; n++) nm_apply(avx2, xf + n * C, yf + n * C, C, 0, 1, a, b, 0);
    } else if (pc == C) {
        nm_plane_job j = {NM_AFFINE, false, xf, yf, S, C, 1, a, b, eps};
        nm_run_planes(ctx, &j, N * C);
    } else {
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < pc; i++) yf[n * pc + i] = xf[n * pc + i] * a[i] + b[i];
    }
    nm_out_finish(Y, yf);

    if (training) {
        for (int o = 1; o <= 2; o++) {
            ifd_tensor *R;
            const ifd_tensor *in = ctx->inputs[o + 2];
            st = ifd_kernel_output(ctx, o, in->dtype, in->rank, in->dims, &R);
            if (st) return st;
            if (!R) continue;
            const float *run = o == 1 ? mean : var, *bat = o == 1 ? bmean : bvar;
            for (int64_t c = 0; c < C; c++) {
                double v = run[c] * momentum + bat[c] * (1.0f - momentum);
                if (R->dtype == IFD_DTYPE_FLOAT)
                    ((float *)R->data)[c] = (float)v;
                else if (R->dtype == IFD_DTYPE_DOUBLE)
                    ((double *)R->data)[c] = v;
                else if (R->dtype == IFD_DTYPE_FLOAT16)
                    ((uint16_t *)R->data)[c] = ifd_f32_to_fp16((float)v);
                else
                    ((uint16_t *)R->data)[c] = ifd_f32_to_bf16((float)v);
            }
        }
    }
    return IFD_OK;
}

/* ---- InstanceNormalization ------------------------------------------------------------------ */

static ifd_status run_instancenorm(ifd_kernel_ctx *ctx) {
    ifd_status st = nm_check_x(ctx, 2);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int64_t N = X->dims[0], C = X->dims[1], S = 1;
    for (int i = 2; i < X->rank; i++) S *= X->dims[i];
    const float *scale, *bias, *xf;
    if ((st = ifd_kernel_require_input(ctx, 1)) || (st = ifd_kernel_require_input(ctx, 2)))
        return st;
    if ((st = nm_vec(ctx, 1, "scale", C, &scale)) ||
        (st = nm_vec(ctx, 2, "B", C, &bias)) || (st = nm_as_f32(ctx, X, &xf)))
        return st;
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, X->dims, &Y);
    if (st || !Y) return st;
    float *yf;
    if ((st = nm_out_f32(ctx, Y, &yf))) return st;
    if (S > 0) {
        nm_plane_job j = {NM_STATS, false, xf, yf, S, C, 1, scale, bias,
                          ifd_attr_float(ctx->node, "epsilon", 1e-5f)};
        nm_run_planes(ctx, &j, N * C);
    }
    nm_out_finish(Y, yf);
    return IFD_OK;
}

/* ---- LayerNormalization / RMSNormalization ------------------------------------------------ */

typedef struct nm_row_job {
    bool avx2, rms;
    const float *x;
    float *y, *mean, *inv; /* mean / inv: per-row outputs, may be NULL */
    int64_t n;
    const float *scale, *bias;
    float eps;
} nm_row_job;

static void nm_row_task(void *arg, int64_t begin, int64_t end) {
    const nm_row_job *j = arg;
    int64_t n = j->n;
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * n;
        float m = 0, var;
        if (j->rms) {
            var = nm_sum(j->avx2, x, n, true, 0.0f) / (float)n;
        } else {
            nm_mean_var(j->avx2, x, n, &m, &var);
        }
        float k = 1.0f / sqrtf(var + j->eps);
        nm_apply(j->avx2, x, j->y + r * n, n, m, k, j->scale, j->bias, 0.0f);
        if (j->mean) j->mean[r] = m;
        if (j->inv) j->inv[r] = k;
    }
}

static ifd_status nm_rowwise(ifd_kernel_ctx *ctx, bool rms) {
    ifd_status st = nm_check_x(ctx, 1);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int axis;
    st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", -1), X->rank, &axis);
    if (st) return st;
    int64_t outer = 1, n = 1;
    for (int i = 0; i < X->rank; i++) {
        if (i < axis)
            outer *= X->dims[i];
        else
            n *= X->dims[i];
    }
    st = ifd_kernel_require_input(ctx, 1);
    if (st) return st;
    int nr = X->rank - axis;
    const int64_t *nd = X->dims + axis;
    const ifd_tensor *B = !rms && ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    ifd_dtype sdt = ifd_attr_int(ctx->node, "stash_type", 1) == 1 ? IFD_DTYPE_FLOAT : X->dtype;
    const float *scale, *bias = NULL, *xf;
    if ((st = nm_param(ctx, ctx->inputs[1], "scale", nr, nd, n, &scale))) return st;
    if (B && (st = nm_param(ctx, B, "B", nr, nd, n, &bias))) return st;
    if ((st = nm_as_f32(ctx, X, &xf))) return st;

    ifd_tensor *Y, *M = NULL, *I = NULL;
    st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, X->dims, &Y);
    if (st) return st;
    if (!rms) {
        /* Mean and InvStdDev: X's shape with the normalized dims set to 1, in the stash type. */
        int64_t sdims[IFD_MAX_RANK];
        for (int i = 0; i < X->rank; i++) sdims[i] = i < axis ? X->dims[i] : 1;
        if ((st = ifd_kernel_output(ctx, 1, sdt, X->rank, sdims, &M)) ||
            (st = ifd_kernel_output(ctx, 2, sdt, X->rank, sdims, &I)))
            return st;
    }
    nm_row_job j = {ifd_cpu_has_avx2_fma(), rms, xf, NULL, NULL, NULL, n, scale, bias,
                    ifd_attr_float(ctx->node, "epsilon", 1e-5f)};
    if (Y) {
        if ((st = nm_out_f32(ctx, Y, &j.y))) return st;
    } else if (!(j.y = ifd_kernel_scratch_array(ctx, (size_t)X->count, sizeof(float), &st))) {
        return st; /* a throwaway Y when only the statistics are wanted */
    }
    if (M && (st = nm_out_f32(ctx, M, &j.mean))) return st;
    if (I && (st = nm_out_f32(ctx, I, &j.inv))) return st;
    if (n > 0) ifd_parallel_for(ctx->pool, outer, IFD_MAX(1, 8192 / n), nm_row_task, &j);
    if (Y) nm_out_finish(Y, j.y);
    nm_out_finish(M, j.mean);
    nm_out_finish(I, j.inv);
    return IFD_OK;
}

static ifd_status run_layernorm(ifd_kernel_ctx *ctx) { return nm_rowwise(ctx, false); }
static ifd_status run_rmsnorm(ifd_kernel_ctx *ctx) { return nm_rowwise(ctx, true); }

/* ---- GroupNormalization ------------------------------------------------------------------- */

typedef struct nm_group_job {
    bool avx2;
    const float *x;
    float *y;
    int64_t G, cpg, S; /* groups, channels per group, spatial size */
    const float *scale, *bias;
    bool per_group; /* opset 18: scale/bias are [G] */
    float eps;
} nm_group_job;

static void nm_group_task(void *arg, int64_t begin, int64_t end) {
    const nm_group_job *j = arg;
    int64_t len = j->cpg * j->S;
    for (int64_t p = begin; p < end; p++) {
        int64_t g = p % j->G;
        const float *x = j->x + p * len;
        float *y = j->y + p * len;
        float m, var;
        nm_mean_var(j->avx2, x, len, &m, &var);
        float k = 1.0f / sqrtf(var + j->eps);
        for (int64_t c = 0; c < j->cpg; c++) {
            int64_t pi = j->per_group ? g : g * j->cpg + c;
            nm_apply(j->avx2, x + c * j->S, y + c * j->S, j->S, m, k * j->scale[pi], NULL, NULL,
                     j->bias[pi]);
        }
    }
}

static ifd_status run_groupnorm(ifd_kernel_ctx *ctx) {
    ifd_status st = nm_check_x(ctx, 2);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int64_t N = X->dims[0], C = X->dims[1], S = 1;
    for (int i = 2; i < X->rank; i++) S *= X->dims[i];
    int64_t G = ifd_attr_int(ctx->node, "num_groups", 0);
    if (G <= 0 || C % G)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "num_groups %lld must be positive and divide the %lld channels",
                                (long long)G, (long long)C);
    st = ifd_kernel_require_input(ctx, 1);
    if (st) return st;
    bool per_group = ctx->opset < 21 && ctx->inputs[1]->count == G && G != C;
    int64_t pc = per_group ? G : C;
    const float *scale, *bias, *xf;
    if ((st = ifd_kernel_require_input(ctx, 2))) return st;
    if ((st = nm_vec(ctx, 1, "scale", pc, &scale)) ||
        (st = nm_vec(ctx, 2, "bias", pc, &bias)) || (st = nm_as_f32(ctx, X, &xf)))
        return st;
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, X->dims, &Y);
    if (st || !Y) return st;
    float *yf;
    if ((st = nm_out_f32(ctx, Y, &yf))) return st;
    nm_group_job j = {ifd_cpu_has_avx2_fma(), xf, yf, G, C / G, S, scale, bias, per_group,
                      ifd_attr_float(ctx->node, "epsilon", 1e-5f)};
    if (S > 0)
        ifd_parallel_for(ctx->pool, N * G, IFD_MAX(1, 16384 / IFD_MAX(j.cpg * S, 1)),
                         nm_group_task, &j);
    nm_out_finish(Y, yf);
    return IFD_OK;
}

/* ---- LRN --------------------------------------------------------------------------------- */

typedef struct nm_lrn_job {
    bool avx2;
    const float *x;
    float *y;
    int64_t C, S, lo, hi; /* window: channels [c - lo, c + hi] */
    float alpha_n, beta, bias;
} nm_lrn_job;

static void nm_lrn_task(void *arg, int64_t begin, int64_t end) {
    const nm_lrn_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t n = p / j->C, c = p % j->C;
        int64_t c0 = IFD_MAX(0, c - j->lo), c1 = IFD_MIN(j->C - 1, c + j->hi);
        const float *x = j->x + p * j->S;
        float *y = j->y + p * j->S;
        /* y first holds the window's sum of squares. */
        memset(y, 0, (size_t)j->S * sizeof(float));
        for (int64_t cc = c0; cc <= c1; cc++) {
            const float *xc = j->x + (n * j->C + cc) * j->S;
#if NM_X86
            if (j->avx2) {
                nm_sqacc_avx2(y, xc, j->S);
                continue;
            }
#endif
            for (int64_t s = 0; s < j->S; s++) y[s] += xc[s] * xc[s];
        }
#if NM_X86
        if (j->avx2 && j->beta == 0.75f) {
            nm_lrn075_avx2(x, y, j->S, j->bias, j->alpha_n);
            continue;
        }
#endif
        /* x * t^-beta = x * exp(-beta * log t) */
        for (int64_t s = 0; s < j->S; s++) y[s] = j->bias + j->alpha_n * y[s];
        ifd_vec_log(y, y, j->S);
        for (int64_t s = 0; s < j->S; s++) y[s] *= -j->beta;
        ifd_vec_exp(y, y, j->S);
        for (int64_t s = 0; s < j->S; s++) y[s] *= x[s];
    }
}

static ifd_status run_lrn(ifd_kernel_ctx *ctx) {
    ifd_status st = nm_check_x(ctx, 2);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int64_t size = ifd_attr_int(ctx->node, "size", 0);
    if (size <= 0) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "size must be positive");
    int64_t N = X->dims[0], C = X->dims[1], S = 1;
    for (int i = 2; i < X->rank; i++) S *= X->dims[i];
    const float *xf;
    if ((st = nm_as_f32(ctx, X, &xf))) return st;
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, X->dims, &Y);
    if (st || !Y) return st;
    float *yf;
    if ((st = nm_out_f32(ctx, Y, &yf))) return st;
    nm_lrn_job j = {ifd_cpu_has_avx2_fma(), xf, yf, C, S, (size - 1) / 2, size / 2,
                    ifd_attr_float(ctx->node, "alpha", 1e-4f) / (float)size,
                    ifd_attr_float(ctx->node, "beta", 0.75f),
                    ifd_attr_float(ctx->node, "bias", 1.0f)};
    if (S > 0)
        ifd_parallel_for(ctx->pool, N * C, IFD_MAX(1, 4096 / IFD_MAX(S * size, 1)), nm_lrn_task,
                         &j);
    nm_out_finish(Y, yf);
    return IFD_OK;
}

/* ---- MeanVarianceNormalization ------------------------------------------------------------ */

static ifd_status run_mvn(ifd_kernel_ctx *ctx) {
    ifd_status st = nm_check_x(ctx, 0);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int rank = X->rank;
    bool red[IFD_MAX_RANK] = {0};
    size_t na = 0;
    const int64_t *axes = ifd_attr_ints(ctx->node, "axes", &na);
    static const int64_t dflt[] = {0, 2, 3};
    if (!axes) {
        axes = dflt;
        na = 3;
    }
    for (size_t i = 0; i < na; i++) {
        int a;
        st = ifd_normalize_axis(ctx, axes[i], rank, &a);
        if (st) return st;
        red[a] = true;
    }
    /* Each element's statistics slot: its index over the kept dims. */
    int64_t kstride[IFD_MAX_RANK], nk = 1;
    for (int i = rank - 1; i >= 0; i--) {
        kstride[i] = red[i] ? 0 : nk;
        if (!red[i]) nk *= X->dims[i];
    }
    const float *xf;
    if ((st = nm_as_f32(ctx, X, &xf))) return st;
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, rank, X->dims, &Y);
    if (st || !Y || X->count == 0) return st;
    float *yf;
    if ((st = nm_out_f32(ctx, Y, &yf))) return st;
    double *sum = ifd_kernel_scratch_array(ctx, (size_t)nk * 2, sizeof(double), &st);
    if (!sum) return st;
    double *sq = sum + nk;
    memset(sum, 0, (size_t)nk * 2 * sizeof(double));
    int64_t cnt = X->count / nk;
    for (int pass = 0; pass < 3; pass++) {
        int64_t idx[IFD_MAX_RANK] = {0}, slot = 0;
        for (int64_t i = 0; i < X->count; i++) {
            double v = xf[i];
            if (pass == 0)
                sum[slot] += v;
            else if (pass == 1)
                sq[slot] += (v - sum[slot]) * (v - sum[slot]);
            else
                yf[i] = (float)((v - sum[slot]) / (sqrt(sq[slot]) + 1e-9));
            for (int d = rank - 1; d >= 0; d--) {
                slot += kstride[d];
                if (++idx[d] < X->dims[d]) break;
                slot -= kstride[d] * X->dims[d];
                idx[d] = 0;
            }
        }
        for (int64_t k = 0; k < nk; k++) {
            if (pass == 0) sum[k] /= (double)cnt;
            if (pass == 1) sq[k] /= (double)cnt;
        }
    }
    nm_out_finish(Y, yf);
    return IFD_OK;
}

/* ---- LpNormalization ---------------------------------------------------------------------- */

static ifd_status run_lpnorm(ifd_kernel_ctx *ctx) {
    ifd_status st = nm_check_x(ctx, 1);
    if (st) return st;
    const ifd_tensor *X = ctx->inputs[0];
    int axis;
    st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", -1), X->rank, &axis);
    if (st) return st;
    int64_t p = ifd_attr_int(ctx->node, "p", 2);
    if (p != 1 && p != 2)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "p must be 1 or 2, got %lld",
                                (long long)p);
    int64_t outer = 1, n = X->dims[axis], inner = 1;
    for (int i = 0; i < X->rank; i++) {
        if (i < axis) outer *= X->dims[i];
        if (i > axis) inner *= X->dims[i];
    }
    const float *xf;
    if ((st = nm_as_f32(ctx, X, &xf))) return st;
    ifd_tensor *Y;
    st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, X->dims, &Y);
    if (st || !Y) return st;
    float *yf;
    if ((st = nm_out_f32(ctx, Y, &yf))) return st;
    bool avx2 = ifd_cpu_has_avx2_fma();
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            const float *x = xf + o * n * inner + c;
            float *y = yf + o * n * inner + c;
            float norm;
            if (inner == 1 && p == 2) {
                norm = sqrtf(nm_sum(avx2, x, n, true, 0.0f));
            } else {
                double s = 0;
                for (int64_t r = 0; r < n; r++) {
                    double v = x[r * inner];
                    s += p == 1 ? fabs(v) : v * v;
                }
                norm = (float)(p == 1 ? s : sqrt(s));
            }
            /* A zero norm gives NaN (0/0), as the reference does. */
            for (int64_t r = 0; r < n; r++) y[r * inner] = x[r * inner] / norm;
        }
    nm_out_finish(Y, yf);
    return IFD_OK;
}

const ifd_op_def ifd_ops_normalization[] = {
    {"", "BatchNormalization", 1, run_batchnorm, NULL, NULL, 0},
    {"", "InstanceNormalization", 1, run_instancenorm, NULL, NULL, 0},
    {"", "LayerNormalization", 17, run_layernorm, NULL, NULL, 0},
    {"", "GroupNormalization", 18, run_groupnorm, NULL, NULL, 0},
    {"", "RMSNormalization", 23, run_rmsnorm, NULL, NULL, 0},
    {"", "LRN", 1, run_lrn, NULL, NULL, 0},
    {"", "MeanVarianceNormalization", 9, run_mvn, NULL, NULL, 0},
    {"", "LpNormalization", 1, run_lpnorm, NULL, NULL, 0},
    {0},
};
