/* Vectorized math over float arrays: AVX-512 / AVX2+FMA chosen at run time, scalar libm
 * otherwise. Every function accepts y == x (in place). Accuracy is a few float ulps except
 * erf (absolute error <= 2e-7), which is what the activation kernels need. */
#ifndef IFD_VECMATH_H
#define IFD_VECMATH_H

#include "base/base.h"
#include "runtime/threadpool.h"

void ifd_vec_exp(const float *x, float *y, int64_t n);
void ifd_vec_log(const float *x, float *y, int64_t n);
void ifd_vec_tanh(const float *x, float *y, int64_t n);
void ifd_vec_sigmoid(const float *x, float *y, int64_t n);
void ifd_vec_erf(const float *x, float *y, int64_t n);
/* x * sigmoid(alpha * x) (SiLU / Swish). */
void ifd_vec_swish(const float *x, float *y, int64_t n, float alpha);
/* 0.5 x (1 + erf(x / sqrt 2)). */
void ifd_vec_gelu(const float *x, float *y, int64_t n);
/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void ifd_vec_gelu_tanh(const float *x, float *y, int64_t n);
/* log(1 + exp(x)), without overflow for large x. */
void ifd_vec_softplus(const float *x, float *y, int64_t n);

/* float16 / bfloat16 bit patterns <-> float (round to nearest even, NaN kept). */
void ifd_vec_f16_to_f32(const uint16_t *x, float *y, int64_t n);
void ifd_vec_f32_to_f16(const float *x, uint16_t *y, int64_t n);
void ifd_vec_bf16_to_f32(const uint16_t *x, float *y, int64_t n);
void ifd_vec_f32_to_bf16(const float *x, uint16_t *y, int64_t n);

/* A float kernel over a contiguous block (y may equal x). */
typedef void (*ifd_vec_f32_fn)(const float *x, float *y, int64_t n, const void *param);

/* y = fn(x) for n elements of dtype FLOAT, FLOAT16 or BFLOAT16 (half types go through float
 * in small blocks), split over the pool in chunks of at least min_chunk elements.
 * Returns false for any other dtype. */
bool ifd_vec_map(ifd_thread_pool *pool, ifd_dtype dtype, const void *x, void *y, int64_t n,
                 ifd_vec_f32_fn fn, const void *param, int64_t min_chunk);


/* Whether this CPU runs AVX2 + FMA code (functions marked target("avx2,fma")). */
static inline bool ifd_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

/* ---- inline AVX2 primitives for fused loops (callers are target("avx2,fma") functions) ---- */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* exp for x <= 88 (Cephes polynomial, ~1 ulp); x below -87.3 gives exactly 0. No inf/NaN
 * handling: for x - max(x) in softmax-like loops (ifd_vec_exp handles everything). */
__attribute__((target("avx2,fma"))) static inline __m256 ifd_exp256_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3365447f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* Sum / max of the 8 lanes. */
__attribute__((target("avx2,fma"))) static inline float ifd_hsum256_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static inline float ifd_hmax256_avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
#endif

#endif
