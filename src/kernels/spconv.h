/* Sparse-weight convolution: Y[M, n] = W[M, K] * X[K, n] with W a constant, mostly-zero Conv
 * weight (a model pruned with `inferd prune --pattern unstructured`) packed once at load, X the
 * im2col'ed input of n output positions (or, for a 1x1 stride-1 unpadded convolution, the
 * input planes themselves: no im2col at all) and Y output channel planes, i.e. the NCHW layout
 * the Conv operator writes, so no transpose is needed on either side.
 *
 * Format: the rows of W (one per output channel) in compressed sparse rows, each row's entries
 * cut into chunks of IFD_SPCONV_KC consecutive k so that the rows of X one chunk touches
 * (IFD_SPCONV_KC x IFD_SPCONV_BLOCK floats, 32 KB) stay in L1 while every output channel reads
 * them.
 *
 * Kernel: for a block of up to 64 output positions, output row m is
 *   sum over the nonzeros (k, w) of row m of  w * X[k][0..64)
 * a broadcast of the weight and 4 AVX-512 (8 AVX2) FMAs over contiguous pixels per nonzero, so
 * the work is proportional to the nonzeros and every lane is useful. Partial sums of a slab of
 * rows live in a small scratch tile between chunks; the last chunk applies the bias and the
 * Relu/Clip clamp and stores straight into the output planes. AVX-512, AVX2+FMA and scalar
 * kernels are chosen once by CPUID.
 *
 * Whether this beats the dense GEMM convolution depends on the sparsity, the shapes and the
 * machine: the Conv prepare step (ops/conv.c) times both on the layer's shapes and keeps the
 * faster one. */
#ifndef IFD_SPCONV_H
#define IFD_SPCONV_H

#include "base/base.h"

#define IFD_SPCONV_BLOCK 64 /* output positions per ifd_spconv_block call */
#define IFD_SPCONV_KC 128   /* k per chunk */
#define IFD_SPCONV_SLAB 64  /* output rows whose partial sums are kept across chunks */
/* floats of the scratch tile ifd_spconv_block needs */
#define IFD_SPCONV_PART_FLOATS (IFD_SPCONV_SLAB * IFD_SPCONV_BLOCK)

typedef struct ifd_spconv_w ifd_spconv_w;

/* Fraction of zero entries of w [m, k] (row stride ldw); 0 when empty. */
double ifd_spconv_sparsity(int64_t m, int64_t k, const float *w, int64_t ldw);

/* Pack w [m, k] (row stride ldw). Fails with IFD_ERR_TOO_BIG when k does not fit the 32-bit
 * indices, IFD_ERR_NO_MEMORY when out of memory. */
ifd_status ifd_spconv_pack(int64_t m, int64_t k, const float *w, int64_t ldw, ifd_spconv_w **out);
/* The same with the entry of column p stored as index[p] instead of p: the kernel then reads
 * x + index[p] * ldx. With ldx = 1 an index is any element offset, e.g. where tap (c, kh, kw)
 * of a stride-1 convolution starts in a zero-padded image (no im2col). Chunks still follow p. */
ifd_status ifd_spconv_pack_mapped(int64_t m, int64_t k, const float *w, int64_t ldw,
                                  const uint32_t *index, ifd_spconv_w **out);
void ifd_spconv_free(ifd_spconv_w *w);
int64_t ifd_spconv_m(const ifd_spconv_w *w);
int64_t ifd_spconv_k(const ifd_spconv_w *w);
int64_t ifd_spconv_nnz(const ifd_spconv_w *w);
size_t ifd_spconv_bytes(const ifd_spconv_w *w); /* memory held by the packed weight */

/* Rows [m0, m1) of the product for n <= IFD_SPCONV_BLOCK positions:
 *   y[(i - m0) * ldy + p] = min(max(bias[i - m0] + sum_k W[i][k] * x[k * ldx + p], lo), hi)
 * for p < n. x rows are read at [0, n) only (safe at the end of a buffer). bias may be NULL;
 * lo = -inf and hi = inf: no clamp (NaN passes through). part: IFD_SPCONV_PART_FLOATS floats,
 * 64-byte aligned. Single-threaded: callers split rows or positions over threads. */
void ifd_spconv_block(const ifd_spconv_w *w, int64_t m0, int64_t m1, const float *x, int64_t ldx,
                      int64_t n, const float *bias, float lo, float hi, float *y, int64_t ldy,
                      float *part);

/* "avx512", "avx2" or "scalar". */
const char *ifd_spconv_kernel_name(void);
/* Tests: force a kernel (NULL or "auto": the CPUID choice); false when the CPU lacks it.
 * Not thread-safe against concurrent products. */
bool ifd_spconv_force_kernel(const char *name);

#endif
