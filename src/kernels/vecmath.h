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

#endif
