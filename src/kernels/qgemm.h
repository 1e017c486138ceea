/* 8-bit integer GEMM with zero points (MatMulInteger, ConvInteger, QLinear*, and the fused
 * int8 nodes of runtime/fuse_quant.c):
 *
 *     C[m][n] = sum_k (A[m][k] - a_zero[m]) * (B[k][n] - b_zero[n])
 *
 * A is M x K (row stride lda), B is K x N (row stride ldb), C is M x N (row stride ldc),
 * row-major. Each of A and B holds uint8 or int8 (its *_signed flag). a_zero has
 * a_zero_count values: 0 (NULL, all zero), 1 (per tensor) or M (per row); b_zero likewise
 * with 1 or N (per column). Sums wrap modulo 2^32 like the reference's int32 arithmetic.
 * The microkernel (AMX, AVX-512 VNNI, AVX2 or scalar) is chosen once by CPUID. The AVX2 path
 * widens both operands to int16 and multiplies with vpmaddwd, so no operand values (not even
 * uint8 255 x int8 -128) can saturate an intermediate, unlike vpmaddubsw's int16 pair sums
 * (tests/test_qkernels.c checks the extremes on every path). */
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

/* ---- constant operands packed once, fused epilogues ------------------------------------- */

/* A constant operand in the microkernel's layout, with its row or column sums and zero
 * points: packed as A (rows x cols = M x K, e.g. convolution weights [M, C*kh*kw]) or as B
 * (rows x cols = K x N, e.g. MatMul weights [K, N]). zero: NULL/0, 1 or one per row (A) or
 * per column (B). */
typedef struct ifd_qgemm_packed ifd_qgemm_packed;
ifd_status ifd_qgemm_pack(bool as_b, int64_t rows, int64_t cols, const uint8_t *src, int64_t ld,
                          bool is_signed, const int32_t *zero, int64_t zero_count,
                          ifd_qgemm_packed **out);
void ifd_qgemm_packed_free(ifd_qgemm_packed *p);

typedef enum ifd_qgemm_out {
    IFD_QGEMM_OUT_INT32 = 0, /* C int32, the plain sums */
    IFD_QGEMM_OUT_FLOAT,     /* C float: clamp(acc * s + bias, lo, hi) */
    IFD_QGEMM_OUT_UINT8,     /* C uint8: clamp(rint(clamp(acc * s + bias, lo, hi) + zero_point), 0, 255) */
} ifd_qgemm_out;

/* s = scale * row_scale[m] * col_scale[n] (each factor present or not), bias = row_bias[m] +
 * col_bias[n] (each optional). lo/hi: -INFINITY/INFINITY for no clamp (Relu: lo = 0).
 * gelu (IFD_QGEMM_OUT_FLOAT only): C = gelu(clamp(acc * s + bias, lo, hi)) with
 * gelu(v) = 0.5 v (1 + erf(v / sqrt 2)) as ifd_vec_gelu computes it. */
typedef struct ifd_qgemm_epilogue {
    ifd_qgemm_out kind;
    float scale;
    const float *row_scale, *col_scale;
    const float *row_bias, *col_bias;
    float lo, hi;
    float zero_point;
    bool gelu;
} ifd_qgemm_epilogue;

/* Fills rows [k0, k0 + nk) x columns [n0, n0 + nn) of B into dst (row stride ld); called
 * from several pool threads at once on disjoint pieces. */
typedef void (*ifd_qgemm_b_fill)(void *ctx, int64_t k0, int nk, int64_t n0, int nn, uint8_t *dst,
                                 int64_t ld);

/* One product: each operand either packed (pa / pb, made on the same kernel path) or given
 * raw as in ifd_qgemm_params, or B (pb and b NULL) made piece by piece by b_fill straight into
 * the packed panels (a convolution's im2col, with no column matrix in memory; the scalar and
 * AVX2 paths materialize it in the workspace). c has the epilogue's element type; ep NULL
 * means int32. */
typedef struct ifd_qgemm_args {
    int64_t m, n, k;
    const ifd_qgemm_packed *pa;
    const uint8_t *a;
    int64_t lda;
    bool a_signed;
    const int32_t *a_zero;
    int64_t a_zero_count;
    const ifd_qgemm_packed *pb;
    const uint8_t *b;
    int64_t ldb;
    bool b_signed;
    const int32_t *b_zero;
    int64_t b_zero_count;
    void *c;
    int64_t ldc;
    const ifd_qgemm_epilogue *ep;
    ifd_qgemm_b_fill b_fill;
    void *b_fill_ctx;
} ifd_qgemm_args;

/* Workspace for ifd_qgemm_ex; false when sizes overflow or a packed operand does not match
 * (its shape or kernel path). */
bool ifd_qgemm_ex_workspace_size(const ifd_qgemm_args *a, size_t *bytes);
void ifd_qgemm_ex(const ifd_qgemm_args *a, void *workspace, ifd_thread_pool *pool);

/* "amx", "avx512vnni", "avx2", "scalar". */
const char *ifd_qgemm_kernel_name(void);
/* Tests: force a kernel path by name ("amx", "avx512vnni", "avx2", "scalar"; NULL: CPUID);
 * false when this CPU cannot run it. Operands packed before the switch keep their path and
 * are rejected by the other paths. */
bool ifd_qgemm_force_kernel(const char *name);

#endif
