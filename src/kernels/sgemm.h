/* Single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, row-major.
 *   op(A) is M x K (A is M x K, or K x M when trans_a), lda its row stride;
 *   op(B) is K x N (B is K x N, or N x K when trans_b), ldb its row stride;
 *   C is M x N with row stride ldc. beta == 0 means C is not read (may hold NaN).
 * The microkernel (AVX-512, AVX2+FMA or scalar) is chosen once by CPUID. */
#ifndef IFD_SGEMM_H
#define IFD_SGEMM_H

#include "base/base.h"
#include "ops/op.h"
#include "runtime/threadpool.h"

void ifd_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, ifd_thread_pool *pool);

/* B packed once (at load) for repeated products with different A. */
typedef struct ifd_sgemm_packed_b ifd_sgemm_packed_b;
ifd_status ifd_sgemm_pack_b(bool trans_b, int64_t n, int64_t k, const float *b, int64_t ldb,
                            ifd_sgemm_packed_b **out);
void ifd_sgemm_packed_b_free(ifd_sgemm_packed_b *packed);
/* C = alpha * op(A) * B + beta * C with B from ifd_sgemm_pack_b. */
void ifd_sgemm_packed(bool trans_a, int64_t m, const float *a, int64_t lda, float alpha,
                      const ifd_sgemm_packed_b *b, float beta, float *c, int64_t ldc,
                      ifd_thread_pool *pool);

/* Name of the microkernel in use: "avx512", "avx2", "scalar". */
const char *ifd_sgemm_kernel_name(void);

/* Register tile of the microkernel in use: C is computed in mr x nr blocks (edge blocks waste
 * the rest), so callers free to choose the orientation of a product can pick the better fit. */
void ifd_sgemm_tile_shape(int *mr, int *nr);

/* Columns [j0, j1) of C = op(A) * B (alpha 1, beta 0, no epilogue) with B from
 * ifd_sgemm_pack_b, on the calling thread; c points at C[0][j0] (ldc its row stride). j0 must
 * be a multiple of ifd_sgemm_packed_b_nr(b) (whole micro-panels of B); j1 is clamped to n.
 * Lets threads split a product by columns, each writing whole rows of a transposed result. */
void ifd_sgemm_packed_cols(bool trans_a, int64_t m, const float *a, int64_t lda,
                           const ifd_sgemm_packed_b *b, int64_t j0, int64_t j1, float *c,
                           int64_t ldc);
/* Width of a packed B's micro-panels (the column granularity of ifd_sgemm_packed_cols). */
int ifd_sgemm_packed_b_nr(const ifd_sgemm_packed_b *packed);

/* Shape of a packed B: op(B) is k x n. */
int64_t ifd_sgemm_packed_b_n(const ifd_sgemm_packed_b *packed);
int64_t ifd_sgemm_packed_b_k(const ifd_sgemm_packed_b *packed);

/* Fused epilogue, applied to each C tile while it is in cache, after alpha/beta:
 *   C[i][j] = act(C[i][j] + bias_col[j] + bias_row[i])
 * Any member may be NULL (act kind NONE is also "no activation"). bias_row suits Conv
 * (one bias per output channel = per row of W * col), bias_col suits Gemm/MatMul. */
typedef struct ifd_sgemm_epilogue {
    const float *bias_col; /* [n] */
    const float *bias_row; /* [m] */
    const ifd_activation *act;
} ifd_sgemm_epilogue;

void ifd_sgemm_ex(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                  int64_t ldc, const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool);
void ifd_sgemm_packed_ex(bool trans_a, int64_t m, const float *a, int64_t lda, float alpha,
                         const ifd_sgemm_packed_b *b, float beta, float *c, int64_t ldc,
                         const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool);

/* A packed once (a constant left operand, e.g. Conv weights [Cout, K]) for repeated
 * products C = alpha * A * op(B) + beta * C with different B. op(A) is m x k. */
typedef struct ifd_sgemm_packed_a ifd_sgemm_packed_a;
ifd_status ifd_sgemm_pack_a(bool trans_a, int64_t m, int64_t k, const float *a, int64_t lda,
                            ifd_sgemm_packed_a **out);
void ifd_sgemm_packed_a_free(ifd_sgemm_packed_a *packed);
int64_t ifd_sgemm_packed_a_m(const ifd_sgemm_packed_a *packed);
int64_t ifd_sgemm_packed_a_k(const ifd_sgemm_packed_a *packed);
void ifd_sgemm_packed_a_ex(const ifd_sgemm_packed_a *a, bool trans_b, int64_t n, float alpha,
                           const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                           const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool);

/* C = A * B + beta * C with B from ifd_sgemm_pack_b and A (m x k) never materialized: the
 * driver calls pack(arg, i0, mc, p0, kc, mr, dst) for each block it needs, which must write
 * op(A)[i0:i0+mc, p0:p0+kc] as ceil(mc/mr) micro-panels of [kc][mr] floats (lanes past mc
 * zero), mr being the packed B's microkernel rows (ifd_sgemm_tile_shape at packing time).
 * Suits convolution, whose A rows can be gathered straight from the image. */
typedef void (*ifd_sgemm_pack_a_fn)(void *arg, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                                    int mr, float *dst);
void ifd_sgemm_packed_cb_ex(int64_t m, ifd_sgemm_pack_a_fn pack, void *arg,
                            const ifd_sgemm_packed_b *b, float beta, float *c, int64_t ldc,
                            const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool);

/* Tests and benchmarks: force a microkernel ("avx512", "avx2", "scalar"; NULL or "auto" for
 * the CPUID choice). Returns false when the CPU lacks it (the choice is then unchanged).
 * Not thread-safe against concurrent GEMMs; B packed earlier keeps its own kernel. */
bool ifd_sgemm_force_kernel(const char *name);

#endif
