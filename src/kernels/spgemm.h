/* Sparse-weight GEMM: C = alpha * op(A) * W + beta * C (+ the sgemm epilogue), row-major, with
 * W (k x n) a constant, mostly-zero weight packed once at load (pruned MatMul/Gemm weights).
 *
 * Format: W^T in compressed sparse rows, i.e. for every output column j the list of (k index,
 * value) of its nonzeros. Weights pruned 2:4 along k (every group of 4 consecutive k holds at
 * most 2 nonzeros, k a multiple of 4) are stored in the regular variant: exactly k/2 entries
 * per column, two per group (a zero value pads a group with fewer), so no column pointers are
 * read and every column costs the same, which balances threads exactly.
 *
 * Kernel (XNNPACK's SpMM idea, with A on the other side): a block of MB rows of A is
 * transposed once into At[k][MB]; each output column j is then sum over its nonzeros of
 * w * At[k][0..MB), i.e. a broadcast of the weight and MB/lanes FMAs with vector loads of
 * contiguous A values, so the work is proportional to the nonzeros and every lane is useful.
 * Columns are computed 16 (AVX-512) or 8 (AVX2) at a time into a small tile that is then
 * transposed into C with the epilogue (alpha, beta, biases, activation) applied on the way.
 * AVX-512, AVX2+FMA and scalar kernels are chosen once by CPUID, like sgemm.
 *
 * Whether this beats dense SGEMM depends on the sparsity, the shapes and the machine: the
 * MatMul/Gemm prepare step measures both on the layer's shapes and keeps the faster one. */
#ifndef IFD_SPGEMM_H
#define IFD_SPGEMM_H

#include "base/base.h"
#include "kernels/sgemm.h"
#include "runtime/threadpool.h"

typedef struct ifd_spgemm_b ifd_spgemm_b;

/* Fraction of zero entries in op(B) (k x n; B is k x n, or n x k when trans_b). */
double ifd_spgemm_sparsity(bool trans_b, int64_t n, int64_t k, const float *b, int64_t ldb);

/* Pack op(B). The 2:4 layout is used when the weight qualifies (see above). Fails with
 * IFD_ERR_TOO_BIG when an index would not fit 32 bits, IFD_ERR_NO_MEMORY when out of memory. */
ifd_status ifd_spgemm_pack(bool trans_b, int64_t n, int64_t k, const float *b, int64_t ldb,
                           ifd_spgemm_b **out);
void ifd_spgemm_free(ifd_spgemm_b *b);
int64_t ifd_spgemm_n(const ifd_spgemm_b *b);
int64_t ifd_spgemm_k(const ifd_spgemm_b *b);
int64_t ifd_spgemm_nnz(const ifd_spgemm_b *b); /* stored entries (2:4 padding included) */
bool ifd_spgemm_is_2_4(const ifd_spgemm_b *b);
size_t ifd_spgemm_bytes(const ifd_spgemm_b *b); /* memory held by the packed weight */

/* Scratch bytes ifd_spgemm_run needs for m rows (0 when the product needs none); SIZE_MAX
 * when the size overflows. */
size_t ifd_spgemm_scratch_bytes(const ifd_spgemm_b *b, int64_t m);

/* C (m x n, row stride ldc) = alpha * op(A) * W + beta * C, then the epilogue (may be NULL).
 * op(A) is m x k: A is m x k (row stride lda), or k x m when trans_a. beta == 0: C is not
 * read. scratch: ifd_spgemm_scratch_bytes(b, m) bytes, 64-byte aligned. */
void ifd_spgemm_run(bool trans_a, int64_t m, const float *a, int64_t lda, float alpha,
                    const ifd_spgemm_b *b, float beta, float *c, int64_t ldc,
                    const ifd_sgemm_epilogue *epilogue, void *scratch, ifd_thread_pool *pool);

/* "avx512", "avx2" or "scalar". */
const char *ifd_spgemm_kernel_name(void);
/* Tests: force a kernel (NULL or "auto": the CPUID choice); false when the CPU lacks it.
 * Not thread-safe against concurrent products. */
bool ifd_spgemm_force_kernel(const char *name);

#endif
