/* Convolution building blocks on float32 NC[D]HW planes: im2col / col2im for any number of
 * spatial dimensions (the column layout the GEMM-based Conv, ConvTranspose, DeformConv and
 * Col2Im share), and a direct vectorized depthwise 2-D kernel. */
#ifndef IFD_KERNELS_CONV_H
#define IFD_KERNELS_CONV_H

#include "base/base.h"

#define IFD_CONV_MAX_ND 8

/* Geometry of one sliding-window product. "image" is the padded side (Conv input,
 * ConvTranspose output); "columns" is the strided side (Conv output, ConvTranspose input).
 * Column position o along dimension i reads image index o*s[i] - pb[i] + kk*d[i]. */
typedef struct ifd_conv_geom {
    int nd;
    int64_t in[IFD_CONV_MAX_ND];  /* image spatial dims */
    int64_t out[IFD_CONV_MAX_ND]; /* column spatial dims */
    int64_t k[IFD_CONV_MAX_ND];
    int64_t s[IFD_CONV_MAX_ND];
    int64_t d[IFD_CONV_MAX_ND];
    int64_t pb[IFD_CONV_MAX_ND]; /* padding at the beginning of each dimension */
    int64_t in_size, out_size, k_size; /* products of in, out, k */
} ifd_conv_geom;

/* Fill in_size/out_size/k_size; false when a product overflows. */
bool ifd_conv_geom_finish(ifd_conv_geom *g);

/* col[(c*k_size + kidx) * p_count + j] = image value (0 outside) for column position
 * p_begin + j, for c in [0, channels). img is [channels, in...]. */
void ifd_conv_im2col(const ifd_conv_geom *g, const float *img, int64_t channels,
                     int64_t p_begin, int64_t p_count, float *col);

/* img += the columns scattered back: the adjoint of ifd_conv_im2col over all out_size
 * positions. col is [channels * k_size, out_size], img is [channels, in...]. */
void ifd_conv_col2im(const ifd_conv_geom *g, const float *col, int64_t channels, float *img);

/* Depthwise 2-D planes [m_begin, m_end) of one image: y[m] = clamp(bias[m] + sum over the
 * kernel of w[m][kh,kw] * x[m / mper], lo, hi) (zero padding; pass -inf/inf for no clamp, NaN
 * passes through). x is [C, H, W], w is [M, KH*KW], bias [M] or NULL, y is [M, OH, OW];
 * g->nd must be 2 and the kernel at most 16x16. */
void ifd_conv_depthwise_2d(const ifd_conv_geom *g, int64_t m_begin, int64_t m_end, int64_t mper,
                           const float *x, const float *w, const float *bias, float lo, float hi,
                           const uint16_t *masks, float *y);

/* Small planes with stride 1 and OW == W run 16 flattened outputs (spanning rows) per vector;
 * their per-tap padding masks depend only on the geometry. Fills masks (IFD_CONV_DW_MASKS
 * entries) once per run for all the calls above, or returns false when that path does not
 * apply (then pass NULL). */
#define IFD_CONV_DW_MASKS 4096
bool ifd_conv_depthwise_masks(const ifd_conv_geom *g, uint16_t *masks);

/* y[c * ldy + r] = min(max(t[r * ldt + c] + bias[c], lo), hi) for r < rows, c < cols (bias may
 * be NULL; no clamp when lo = -inf and hi = inf): a GEMM result computed as [positions,
 * channels] written back as channel planes. */
void ifd_conv_transpose_bias_clamp(const float *t, int64_t ldt, int64_t rows, int64_t cols,
                                   float *y, int64_t ldy, const float *bias, float lo, float hi);

/* The transposed column matrix of one image, A[p][k] = col[k][p], written straight into SGEMM
 * micro-panels (see ifd_sgemm_packed_cb_ex): output positions [pos0, pos0 + mc) as
 * ceil(mc/mr) panels of [kc][mr] over column rows [k0, k0 + kc) (k = c*KH*KW + kh*KW + kw),
 * lanes past mc zero. img is [channels, H, W]. Only where ifd_conv_pack_rows_supported says so
 * (2-D, column stride 1 or 2, mr <= 16, AVX-512). */
bool ifd_conv_pack_rows_supported(const ifd_conv_geom *g, int mr);
void ifd_conv_pack_rows(const ifd_conv_geom *g, const float *img, int64_t pos0, int64_t mc,
                        int64_t k0, int64_t kc, int mr, float *dst);

/* ifd_conv_pack_rows over a batch of images img_stride floats apart: output position q is
 * position q % out_size of image q / out_size, and a panel may span images (small planes
 * batched into one product). Only where ifd_conv_pack_rows_batch_supported says so (that and
 * stride 1 with OW == W). */
bool ifd_conv_pack_rows_batch_supported(const ifd_conv_geom *g, int mr);
void ifd_conv_pack_rows_batch(const ifd_conv_geom *g, const float *img, int64_t img_stride,
                              int64_t pos0, int64_t mc, int64_t k0, int64_t kc, int mr,
                              float *dst);

/* nplanes planes of 2-D max pooling, x [nplanes, H, W] -> y [nplanes, OH, OW] (padding never
 * wins; a NaN input is skipped; an all-padding window gives -inf). Returns false, writing
 * nothing, when no vector path covers the geometry (column stride other than 1 or 2, no
 * AVX-512). */
bool ifd_conv_max_pool_2d(const ifd_conv_geom *g, const float *x, float *y, int64_t nplanes);

/* x[i] = min(max(x[i] + bias, lo), hi): the bias and Relu/Clip epilogue of a conv row. */
void ifd_conv_bias_clamp(float *x, int64_t n, float bias, float lo, float hi);

/* dst[i] += src[i * stride] and dst[i] = max(dst[i], src[i * stride]) for i < n (a NaN in src
 * is skipped); the row operations of pooling and col2im. */
void ifd_conv_row_add(float *dst, const float *src, int64_t n, int64_t stride);
void ifd_conv_row_max(float *dst, const float *src, int64_t n, int64_t stride);
/* Sum and max (NaN skipped; -inf when empty) of n floats. */
double ifd_conv_sum(const float *x, int64_t n);
float ifd_conv_max(const float *x, int64_t n);

/* Output length of a sliding window along one dimension, and the padding before it.
 * auto_pad: 0 NOTSET (explicit pb/pe), 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID. ceil_mode rounds
 * the window count up but drops a last window that would start in the end padding (pooling).
 * Returns false when the window does not fit or sizes overflow. */
bool ifd_conv_out_dim(int auto_pad, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb,
                      int64_t pe, bool ceil_mode, int64_t *out, int64_t *pad_begin);

#endif
