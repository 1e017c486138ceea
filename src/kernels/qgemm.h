/* 8-bit integer GEMM with zero points, int32 result (MatMulInteger, ConvInteger, QLinear*):
 *
 *     C[m][n] = sum_k (A[m][k] - a_zero[m]) * (B[k][n] - b_zero[n])
 *
 * A is M x K (row stride lda), B is K x N (row stride ldb), C is M x N (row stride ldc),
 * row-major. Each of A and B holds uint8 or int8 (its *_signed flag). a_zero has
 * a_zero_count values: 0 (NULL, all zero), 1 (per tensor) or M (per row); b_zero likewise
 * with 1 or N (per column). Sums wrap modulo 2^32 like the reference's int32 arithmetic.
 * The microkernel (AVX-512 VNNI, AVX2 or scalar) is chosen once by CPUID. */
#ifndef IFD_QGEMM_H
#define IFD_QGEMM_H

#include "base/base.h"
#include "runtime/threadpool.h"

typedef struct ifd_qgemm_params {
    int64_t m, n, k;
    const uint8_t *a;
    int64_t lda;
    bool a_signed;
    const int32_t *a_zero;
    int64_t a_zero_count;
    const uint8_t *b;
    int64_t ldb;
    bool b_signed;
    const int32_t *b_zero;
    int64_t b_zero_count;
    int32_t *c;
    int64_t ldc;
} ifd_qgemm_params;

/* Bytes of workspace ifd_qgemm needs for these sizes (64-byte aligned memory); false when
 * the size overflows. */
bool ifd_qgemm_workspace_size(int64_t m, int64_t n, int64_t k, size_t *bytes);
/* workspace: at least ifd_qgemm_workspace_size bytes, 64-byte aligned. */
void ifd_qgemm(const ifd_qgemm_params *p, void *workspace, ifd_thread_pool *pool);

/* "avx512vnni", "avx2", "scalar". */
const char *ifd_qgemm_kernel_name(void);

#endif
