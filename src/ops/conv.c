/* Operator family: conv (Conv, ConvTranspose, DeformConv).
 *
 * Conv runs as GEMM per group: Y_g[Mg, L] = W_g[Mg, K] * col[K, L], K = Cg * prod(kernel),
 * L = prod(output spatial). The columns are built tile by tile (a few hundred output positions,
 * so a tile stays in L2) and tiles of all images and groups run in parallel; 1x1 stride-1
 * unpadded convolutions skip im2col (the input plane already is the column matrix) and
 * depthwise convolutions run a direct vectorized kernel. Small planes (8x8 = 64 positions) of
 * a batch run as one product over the positions of all images, packed straight from the
 * images, so that per-image edge blocks and call overhead do not dominate. Non-float inputs (double, float16,
 * bfloat16) are converted to float and back.
 *
 * A constant float weight that is at least half zeros (a model pruned with `inferd prune`) is
 * also packed for the sparse convolution kernel (kernels/spconv.h), and prepare() times the
 * dense path above and the sparse one on the layer's own shapes (one image of the input's
 * static shape) and keeps the faster: the crossover depends on the sparsity, the shapes and the
 * machine, so it is measured, not guessed. As for MatMul/Gemm, IFD_SPARSE=off|on|auto (default
 * auto) turns this off or forces the sparse kernel, and IFD_SPARSE_LOG=1 prints each decision
 * to stderr. */
#include "ops/op.h"

#include "kernels/conv.h"
#include "kernels/sgemm.h"
#include "kernels/spconv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- shared helpers ------------------------------------------------------------------------ */



static bool is_convertible_float(ifd_dtype t) {
    return t == IFD_DTYPE_FLOAT || t == IFD_DTYPE_DOUBLE || t == IFD_DTYPE_FLOAT16 ||
           t == IFD_DTYPE_BFLOAT16;
}

/* Scratch is one block per kernel call: carve n aligned pieces (NULL for size 0) from it. */
static ifd_status scratch_multi(ifd_kernel_ctx *ctx, int n, const size_t *sizes, void **ptrs) {
    size_t total = 0, offs[8];
    for (int i = 0; i < n; i++) {
        size_t off = (total + 63) & ~(size_t)63;
        if (off < total || !ifd_add_size(off, sizes[i], &total))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "scratch buffers too large");
        offs[i] = off;
    }
    char *base = total ? ifd_kernel_scratch(ctx, total) : NULL;
    if (total && !base)
        return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "out of memory for %zu scratch bytes", total);
    for (int i = 0; i < n; i++) ptrs[i] = sizes[i] ? base + offs[i] : NULL;
    return IFD_OK;
}

/* Bytes a float32 copy of t needs (0 when t is absent or already float). */
static size_t f32_bytes(const ifd_tensor *t) {
    return t && t->dtype != IFD_DTYPE_FLOAT ? (size_t)t->count * sizeof(float) : 0;
}

/* A float32 view of t: t itself, or a converted copy in buf described by *tmp. */
static ifd_status as_f32(ifd_kernel_ctx *ctx, const ifd_tensor *t, ifd_tensor *tmp, void *buf,
                         const ifd_tensor **out) {
    if (!t || t->dtype == IFD_DTYPE_FLOAT) {
        *out = t;
        return IFD_OK;
    }
    if (!is_convertible_float(t->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported input type %d", t->dtype);
    *tmp = *t;
    tmp->dtype = IFD_DTYPE_FLOAT;
    tmp->nbytes = (size_t)t->count * sizeof(float);
    tmp->owns_data = false;
    float *d = buf;
    for (int64_t i = 0; i < t->count; i++) d[i] = (float)ifd_tensor_get_f64(t, i);
    tmp->data = d;
    *out = tmp;
    return IFD_OK;
}

/* Bytes of a float32 staging output for dtype and dims (0 when the output is float). */
static ifd_status out_bytes(const ifd_kernel_ctx *ctx, ifd_dtype dtype, int rank,
                            const int64_t *dims, size_t *bytes) {
    int64_t n;
    *bytes = 0;
    if (ifd_shape_count(rank, dims, &n) || !ifd_mul_size((size_t)n, sizeof(float), bytes))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output too large");
    if (dtype == IFD_DTYPE_FLOAT) *bytes = 0;
    return IFD_OK;
}

/* Output 0 with the node's dtype, computed in float32 (data) and converted by out_end. */
typedef struct f32_out {
    ifd_tensor *real;
    float *data;
} f32_out;

static ifd_status out_begin(ifd_kernel_ctx *ctx, int index, ifd_dtype dtype, int rank,
                            const int64_t *dims, void *staging, f32_out *o) {
    ifd_status st = ifd_kernel_output(ctx, index, dtype, rank, dims, &o->real);
    if (st) return st;
    o->data = NULL;
    if (!o->real) return IFD_OK;
    o->data = dtype == IFD_DTYPE_FLOAT ? o->real->data : staging;
    return IFD_OK;
}

static void out_end(f32_out *o) {
    if (!o->real || o->real->dtype == IFD_DTYPE_FLOAT) return;
    int64_t n = o->real->count;
    switch (o->real->dtype) {
    case IFD_DTYPE_DOUBLE:
        for (int64_t i = 0; i < n; i++) ((double *)o->real->data)[i] = o->data[i];
        break;
    case IFD_DTYPE_FLOAT16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)o->real->data)[i] = ifd_f32_to_fp16(o->data[i]);
        break;
    case IFD_DTYPE_BFLOAT16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)o->real->data)[i] = ifd_f32_to_bf16(o->data[i]);
        break;
    default: break;
    }
}

/* Bias plus fused activation over one output row (Relu/Clip folded into one clamp pass). */
static void epilogue(const ifd_activation *act, float *x, int64_t n, float bias) {
    switch (act->kind) {
    case IFD_ACT_NONE:
        if (bias != 0) ifd_conv_bias_clamp(x, n, bias, -INFINITY, INFINITY);
        return;
    case IFD_ACT_RELU: ifd_conv_bias_clamp(x, n, bias, 0.f, INFINITY); return;
    case IFD_ACT_CLIP: ifd_conv_bias_clamp(x, n, bias, act->alpha, act->beta); return;
    default:
        if (bias != 0) ifd_conv_bias_clamp(x, n, bias, -INFINITY, INFINITY);
        ifd_activation_apply(act, x, n);
        return;
    }
}

static ifd_status check_bias(const ifd_kernel_ctx *ctx, const ifd_tensor *B, int64_t M) {
    if (B && (B->rank != 1 || B->dims[0] != M))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "bias must have shape [%lld]", (long long)M);
    return IFD_OK;
}

/* ---- Conv ---------------------------------------------------------------------------------- */

#define SPARSE_SHAPES 4 /* input shapes measured per node; later ones run dense */

/* prepare(): constant float weights of the GEMM path packed once per group, as the left
 * operand W_g [Mg, K] (packed_a) or, for the transposed product, the right operand W_g^T
 * (packed_b); whichever orientation the input shape favours, both when it is unknown. */
typedef struct conv_state {
    int64_t group, M, K;
    ifd_sgemm_packed_a **packed;   /* [group] or entries NULL */
    ifd_sgemm_packed_b **packed_t; /* [group] or entries NULL */
    /* W [M, K] packed for the sparse kernel (a weight at least half zeros), or NULL. Which of
     * dense and sparse runs is measured per input spatial shape, at prepare() when the shape is
     * static there, else on first sight of the shape in run() (a session runs on one thread at
     * a time, so run() may update this). The first decision frees the loser's packing. */
    ifd_spconv_w *sparse;
    bool forced; /* IFD_SPARSE=on: sparse without measuring */
    int n_decided;
    int64_t decided_in[SPARSE_SHAPES][IFD_CONV_MAX_ND]; /* input spatial dims measured */
    bool decided_sparse[SPARSE_SHAPES];
    ifd_spconv_w *decided_shifted[SPARSE_SHAPES]; /* the weight for the shifted path, or NULL */
} conv_state;

static void release_conv(void *state) {
    conv_state *cs = state;
    if (!cs) return;
    for (int64_t g = 0; g < cs->group; g++) {
        if (cs->packed) ifd_sgemm_packed_a_free(cs->packed[g]);
        if (cs->packed_t) ifd_sgemm_packed_b_free(cs->packed_t[g]);
    }
    ifd_free(cs->packed);
    ifd_free(cs->packed_t);
    ifd_spconv_free(cs->sparse);
    for (int i = 0; i < cs->n_decided; i++) ifd_spconv_free(cs->decided_shifted[i]);
    ifd_free(cs);
}

static conv_state *conv_state_new(int64_t group, int64_t M, int64_t K) {
    conv_state *cs = ifd_calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->group = group;
    cs->M = M;
    cs->K = K;
    cs->packed = ifd_calloc((size_t)group, sizeof cs->packed[0]);
    cs->packed_t = ifd_calloc((size_t)group, sizeof cs->packed_t[0]);
    if (!cs->packed || !cs->packed_t) {
        release_conv(cs);
        return NULL;
    }
    return cs;
}

/* Whether the product runs transposed: Y^T [L, Mg] = col^T [L, K] * W_g^T [K, Mg] instead of
 * Y [Mg, L] = W_g * col. The microkernel computes mr x nr blocks, so the orientation that
 * wastes less of its edge blocks wins (e.g. L = 49 and Mg = 512: 49 columns fill 64 lanes,
 * while 49 rows fill 56); the transposed result costs one more pass over Y, which matters
 * only when K is small. */
static bool conv_swapped(int64_t Mg, int64_t L, int64_t K) {
    int mr, nr;
    ifd_sgemm_tile_shape(&mr, &nr);
    if (Mg < 2 || L < 2) return false;
    double fm = (double)Mg, fl = (double)L;
    double e_norm = fm / (double)((Mg + mr - 1) / mr * mr) * fl / (double)((L + nr - 1) / nr * nr);
    double e_swap = fl / (double)((L + mr - 1) / mr * mr) * fm / (double)((Mg + nr - 1) / nr * nr);
    return e_swap > e_norm * (1.0 + 8.0 / (double)K);
}

/* Whether Conv runs the direct depthwise kernel for weights [M, Cg, k...] and this group. */
static bool uses_depthwise(int nd, const int64_t *k, int64_t Cg, int64_t group) {
    bool small_k = nd <= 2 && k[0] <= 16 && (nd == 1 || k[1] <= 16);
    return Cg == 1 && group > 1 && small_k;
}

typedef struct conv_job {
    const ifd_conv_geom *g;
    const float *x, *w, *bias;
    float *y, *scratch;
    int64_t C, M, group, Cg, Mg, K, L, tile, ntiles, ntasks, nworkers;
    int64_t worker_floats; /* scratch per worker: column tile, then the transposed result */
    bool direct;  /* the input plane is the column matrix (1x1, stride 1, no padding) */
    bool swapped; /* Y^T = col^T * W^T (see conv_swapped) */
    bool gather;  /* swapped, and col^T packed straight from the image (no im2col pass) */
    bool batched; /* gather over the positions of all images at once (small planes) */
    int64_t P;    /* positions tiled per group: L, or N * L when batched */
    float lo, hi; /* Relu/Clip as a clamp in the transposed write-back */
    const ifd_activation *act;
    const conv_state *packed; /* or NULL: use w */
    bool task_parallel;       /* tasks split over the threads (else the GEMM splits) */
    int64_t cslabs;           /* slabs of output channels per tile (direct swapped; else 1) */
    int64_t panels, pnr;      /* the packed W^T's micro-panels over Mg, and their width */
    ifd_thread_pool *gemm_pool;
} conv_job;

typedef struct gather_arg {
    const ifd_conv_geom *g;
    const float *img;
    int64_t img_stride; /* batched: floats from one image to the next, else 0 */
    int64_t p0;
} gather_arg;

static void gather_pack(void *arg, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr,
                        float *dst) {
    const gather_arg *a = arg;
    if (a->img_stride)
        ifd_conv_pack_rows_batch(a->g, a->img, a->img_stride, a->p0 + i0, mc, k0, kc, mr, dst);
    else
        ifd_conv_pack_rows(a->g, a->img, a->p0 + i0, mc, k0, kc, mr, dst);
}

/* Batched gather: the tile's positions [q0, q0 + qc) over all images of group gi, computed as
 * yt [qc, Mg], written back image by image. */
static void conv_task_batched(const conv_job *j, int64_t t, float *yt) {
    int64_t ti = t % j->ntiles, gi = t / j->ntiles;
    int64_t q0 = ti * j->tile, qc = IFD_MIN(j->tile, j->P - q0);
    const float *bias = j->bias ? j->bias + gi * j->Mg : NULL;
    gather_arg ga = {j->g, j->x + gi * j->Cg * j->g->in_size, j->C * j->g->in_size, q0};
    ifd_sgemm_packed_cb_ex(qc, gather_pack, &ga, j->packed->packed_t[gi], 0.0f, yt, j->Mg, NULL,
                           j->gemm_pool);
    ifd_act_kind kind = j->act->kind;
    bool generic = kind != IFD_ACT_NONE && kind != IFD_ACT_RELU && kind != IFD_ACT_CLIP;
    for (int64_t q = q0; q < q0 + qc;) {
        int64_t n = q / j->L, p = q % j->L, run = IFD_MIN(j->L - p, q0 + qc - q);
        float *yg = j->y + (n * j->M + gi * j->Mg) * j->L; /* [Mg, L] */
        ifd_conv_transpose_bias_clamp(yt + (q - q0) * j->Mg, j->Mg, run, j->Mg, yg + p, j->L,
                                      bias, j->lo, j->hi);
        if (generic)
            for (int64_t m = 0; m < j->Mg; m++) ifd_activation_apply(j->act, yg + m * j->L + p, run);
        q += run;
    }
}

/* Output channels [c0, c1) of positions [p0, p0 + pc) from the transposed product yt
 * [pc, c1 - c0] into Y's group yg [Mg, L]: bias and Relu/Clip on the way, any other
 * activation after. */
static void store_transposed(const conv_job *j, const float *yt, int64_t c0, int64_t c1,
                             float *yg, int64_t p0, int64_t pc, const float *bias) {
    ifd_conv_transpose_bias_clamp(yt, c1 - c0, pc, c1 - c0, yg + c0 * j->L + p0, j->L,
                                  bias ? bias + c0 : NULL, j->lo, j->hi);
    ifd_act_kind kind = j->act->kind;
    if (kind != IFD_ACT_NONE && kind != IFD_ACT_RELU && kind != IFD_ACT_CLIP)
        for (int64_t m = c0; m < c1; m++) ifd_activation_apply(j->act, yg + m * j->L + p0, pc);
}

static void conv_task(const conv_job *j, int64_t t, float *col) {
    if (j->batched) {
        conv_task_batched(j, t, col);
        return;
    }
    int64_t slab = t % j->cslabs;
    t /= j->cslabs;
    int64_t ti = t % j->ntiles, ng = t / j->ntiles, gi = ng % j->group, n = ng / j->group;
    int64_t p0 = ti * j->tile, pc = IFD_MIN(j->tile, j->L - p0);
    const float *xg = j->x + (n * j->C + gi * j->Cg) * j->g->in_size; /* [Cg, in...] */
    float *yg = j->y + (n * j->M + gi * j->Mg) * j->L;                 /* [Mg, L] */
    const float *wg = j->w + gi * j->Mg * j->K;                        /* [Mg, K] */
    const float *bias = j->bias ? j->bias + gi * j->Mg : NULL;
    if (j->gather) {
        float *yt = col; /* [pc, Mg] */
        gather_arg ga = {j->g, xg, 0, p0};
        ifd_sgemm_packed_cb_ex(pc, gather_pack, &ga, j->packed->packed_t[gi], 0.0f, yt, j->Mg,
                               NULL, j->gemm_pool);
        store_transposed(j, yt, 0, j->Mg, yg, p0, pc, bias);
        return;
    }
    const float *bm;
    int64_t ldb;
    if (j->direct) {
        bm = xg + p0;
        ldb = j->L;
    } else {
        ifd_conv_im2col(j->g, xg, j->Cg, p0, pc, col); /* [K, pc] */
        bm = col;
        ldb = pc;
    }
    if (j->cslabs > 1) {
        /* output channels [c0, c1) of the tile: yt [pc, c1 - c0], written back as whole rows
         * of Y. Split by positions instead, the threads' transposed write-backs interleave in
         * every row of Y and cost more than the product on short rows: 64 -> 384 channels at
         * 14x14 took 68 us on 2 threads against 76 on one, and 41 split by channels. */
        int64_t c0 = slab * j->panels / j->cslabs * j->pnr;
        int64_t c1 = IFD_MIN(j->Mg, (slab + 1) * j->panels / j->cslabs * j->pnr);
        if (c0 >= c1) return;
        ifd_sgemm_packed_cols(true, pc, bm, ldb, j->packed->packed_t[gi], c0, c1, col, c1 - c0);
        store_transposed(j, col, c0, c1, yg, p0, pc, bias);
        return;
    }
    if (j->swapped) {
        float *yt = col + (j->direct ? 0 : j->K * j->tile); /* [pc, Mg] */
        const ifd_sgemm_packed_b *pt = j->packed ? j->packed->packed_t[gi] : NULL;
        if (pt)
            ifd_sgemm_packed_ex(true, pc, bm, ldb, 1.0f, pt, 0.0f, yt, j->Mg, NULL, j->gemm_pool);
        else
            ifd_sgemm_ex(true, true, pc, j->Mg, j->K, 1.0f, bm, ldb, wg, j->K, 0.0f, yt, j->Mg,
                         NULL, j->gemm_pool);
        store_transposed(j, yt, 0, j->Mg, yg, p0, pc, bias);
        return;
    }
    ifd_sgemm_epilogue ep = {NULL, bias, j->act};
    const ifd_sgemm_packed_a *pa = j->packed ? j->packed->packed[gi] : NULL;
    if (pa)
        ifd_sgemm_packed_a_ex(pa, false, pc, 1.0f, bm, ldb, 0.0f, yg + p0, j->L, &ep, j->gemm_pool);
    else
        ifd_sgemm_ex(false, false, j->Mg, pc, j->K, 1.0f, wg, j->K, bm, ldb, 0.0f, yg + p0, j->L,
                     &ep, j->gemm_pool);
}

static void conv_worker(void *arg, int64_t begin, int64_t end) {
    const conv_job *j = arg;
    for (int64_t wi = begin; wi < end; wi++) {
        float *col = j->worker_floats ? j->scratch + wi * j->worker_floats : NULL;
        int64_t t0 = wi * j->ntasks / j->nworkers, t1 = (wi + 1) * j->ntasks / j->nworkers;
        for (int64_t t = t0; t < t1; t++) conv_task(j, t, col);
    }
}

typedef struct dw_job {
    const ifd_conv_geom *g;
    const float *x, *w, *bias;
    float *y;
    int64_t C, Mper; /* output channels per input channel (depth multiplier) */
    const ifd_activation *act;
    const uint16_t *masks; /* flattened-path masks, or NULL */
} dw_job;

static void dw_worker(void *arg, int64_t begin, int64_t end) {
    const dw_job *j = arg;
    int64_t M = j->C * j->Mper;
    for (int64_t p = begin; p < end;) { /* p = n * M + m; runs of planes within one image */
        int64_t n = p / M, m0 = p % M, m1 = IFD_MIN(M, m0 + (end - p));
        /* Relu and Clip are applied by the kernel before its stores */
        ifd_act_kind kind = j->act->kind;
        float lo = kind == IFD_ACT_RELU ? 0.f : kind == IFD_ACT_CLIP ? j->act->alpha : -INFINITY;
        float hi = kind == IFD_ACT_CLIP ? j->act->beta : INFINITY;
        ifd_conv_depthwise_2d(j->g, m0, m1, j->Mper, j->x + n * j->C * j->g->in_size, j->w,
                              j->bias, lo, hi, j->masks, j->y + n * M * j->g->out_size);
        if (kind != IFD_ACT_NONE && kind != IFD_ACT_RELU && kind != IFD_ACT_CLIP)
            for (int64_t q = p; q < p + (m1 - m0); q++)
                epilogue(j->act, j->y + q * j->g->out_size, j->g->out_size, 0.f);
        p += m1 - m0;
    }
}

/* Shared by Conv and DeformConv: kernel/stride/dilation/pads/auto_pad into a geometry. */
static ifd_status conv_geometry(const ifd_kernel_ctx *ctx, const ifd_tensor *X,
                                const ifd_tensor *W, ifd_conv_geom *g) {
    int nd = X->rank - 2;
    if (X->rank < 3 || nd > IFD_CONV_MAX_ND)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input must have rank 3..%d, got %d",
                                IFD_CONV_MAX_ND + 2, X->rank);
    if (W->rank != X->rank)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "weight rank %d differs from input rank %d",
                                W->rank, X->rank);
    int64_t ks[IFD_CONV_MAX_ND], pads[2 * IFD_CONV_MAX_ND];
    bool has_k;
    int auto_pad = 0;
    ifd_status st;
    memset(g, 0, sizeof *g);
    g->nd = nd;
    if ((st = ifd_attr_ints_n(ctx, "kernel_shape", nd, 0, ks, &has_k)) ||
        (st = ifd_attr_ints_n(ctx, "strides", nd, 1, g->s, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "dilations", nd, 1, g->d, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "pads", 2 * nd, 0, pads, NULL)) || (st = ifd_parse_auto_pad(ctx, &auto_pad)))
        return st;
    for (int i = 0; i < nd; i++) {
        g->k[i] = W->dims[i + 2];
        if (has_k && ks[i] != g->k[i])
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "kernel_shape[%d]=%lld does not match weight dim %lld", i,
                                    (long long)ks[i], (long long)g->k[i]);
        g->in[i] = X->dims[i + 2];
        if (!ifd_conv_out_dim(auto_pad, g->in[i], g->k[i], g->s[i], g->d[i], pads[i],
                              pads[i + nd], false, &g->out[i], &g->pb[i]))
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "invalid window along spatial dim %d (input %lld, kernel "
                                    "%lld, stride %lld, dilation %lld, pads %lld/%lld)",
                                    i, (long long)g->in[i], (long long)g->k[i], (long long)g->s[i],
                                    (long long)g->d[i], (long long)pads[i], (long long)pads[i + nd]);
    }
    if (!ifd_conv_geom_finish(g))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "convolution sizes overflow");
    return IFD_OK;
}

/* A 1x1, stride-1, unpadded convolution: the input planes are the column matrix. */
static bool direct_geometry(const ifd_conv_geom *g) {
    for (int i = 0; i < g->nd; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] != 0 || g->out[i] != g->in[i]) return false;
    return true;
}

/* A fused Relu/Clip as the clamp [lo, hi] the output writers apply (none: +-inf). */
static void act_clamp(const ifd_activation *act, float *lo, float *hi) {
    *lo = act->kind == IFD_ACT_RELU ? 0.f : act->kind == IFD_ACT_CLIP ? act->alpha : -INFINITY;
    *hi = act->kind == IFD_ACT_CLIP ? act->beta : INFINITY;
}

/* ---- dense GEMM path: plan and run ----------------------------------------------------------- */

/* Plan the GEMM path for N images of geometry g on nthreads threads: orientation, tiles of
 * output positions, tasks, and the scratch floats per worker (*scratch_bytes in all). cs: the
 * packed weights, or NULL for the raw ones. False when a buffer size overflows. */
static bool dense_plan(conv_job *j, const ifd_conv_geom *g, int64_t N, int64_t C, int64_t M,
                       int64_t group, const ifd_activation *act, const conv_state *cs,
                       int nthreads, size_t *scratch_bytes) {
    memset(j, 0, sizeof *j);
    j->g = g;
    j->C = C, j->M = M, j->group = group, j->Cg = C / group, j->Mg = M / group;
    j->K = j->Cg * g->k_size;
    j->L = g->out_size;
    j->act = act;
    act_clamp(act, &j->lo, &j->hi);
    j->packed = cs;
    j->direct = direct_geometry(g);
    j->swapped = conv_swapped(j->Mg, j->L, j->K);
    /* weights packed for the other orientation only: follow them rather than repack per run */
    if (cs && j->swapped && !cs->packed_t[0]) j->swapped = false;
    if (cs && !j->swapped && !cs->packed[0]) j->swapped = true;
    int mr, nr;
    ifd_sgemm_tile_shape(&mr, &nr);
    j->gather = j->swapped && !j->direct && cs && cs->packed_t[0] &&
                ifd_conv_pack_rows_supported(g, mr);
    /* Small planes (8x8: 64 positions) make one product per image mostly edge blocks and
     * per-call overhead; the positions of all images are one product then, in tiles that may
     * span images. Planes of a few tiles or more gain little from it. */
    j->batched = j->gather && N > 1 && j->L < 4 * 16 * mr &&
                 ifd_conv_pack_rows_batch_supported(g, mr) && ifd_mul_i64(N, j->L, &j->P);
    if (!j->batched) j->P = j->L;
    /* tiles of output positions are whole microkernel blocks along L */
    int64_t unit = j->swapped ? mr : 16;

    /* Tiles of output positions: sized so the column tile stays in L2, then split further
     * until every thread gets whole rounds of tasks. */
    int64_t images = j->batched ? group : N * group; /* position spaces of P positions */
    int64_t unit_c = j->swapped ? mr : 32;
    int64_t cache_tile = IFD_MAX(64, ((128 * 1024) / IFD_MAX(j->K, 1)) / unit_c * unit_c);
    if (j->swapped) cache_tile = IFD_MAX(cache_tile, 16 * unit);
    const int64_t P = j->P;
    int64_t tile = IFD_MIN(j->direct && !j->swapped ? P : cache_tile, P);
    bool task_parallel = false;
    /* too few tiles of positions for the threads (splitting them is planned below) */
    const bool few_tiles = images * ((P + tile - 1) / tile) < nthreads;
    const int64_t whole_tile = tile;
    j->cslabs = 1;
    if (nthreads > 1) {
        int64_t tiles = (P + tile - 1) / tile, total = images * tiles;
        int64_t rounds = (total + nthreads - 1) / nthreads;
        int64_t per_img = (rounds * nthreads + images - 1) / images;
        int64_t t2 = ((P + per_img - 1) / per_img + unit - 1) / unit * unit;
        if (t2 < tile) tile = IFD_MAX(t2, unit);
        if (tile > P) tile = P;
        task_parallel = images * ((P + tile - 1) / tile) >= nthreads && (tile >= 48 || tile == P);
        if (!task_parallel) /* the GEMM splits over threads: give it wide column blocks */
            tile = IFD_MIN(P, j->direct ? P
                                        : IFD_MAX(cache_tile, ((2 << 20) / IFD_MAX(j->K, 1)) /
                                                                  unit_c * unit_c));
    }
    /* Too few tiles of positions for the threads and the weights packed as W^T: split the
     * output channels of whole tiles instead (see conv_task), when their micro-panels divide
     * evenly enough or the positions would not split over the threads at all. */
    if (nthreads > 1 && few_tiles && j->direct && j->swapped && !j->batched && cs &&
        cs->packed_t[0]) {
        j->pnr = ifd_sgemm_packed_b_nr(cs->packed_t[0]);
        j->panels = (j->Mg + j->pnr - 1) / j->pnr;
        if (j->panels >= nthreads &&
            (j->panels % nthreads == 0 || j->panels >= 4 * nthreads || !task_parallel)) {
            j->cslabs = nthreads;
            tile = whole_tile;
            task_parallel = true;
        }
    }
    j->tile = tile;
    j->ntiles = tile > 0 ? (P + tile - 1) / tile : 0;
    j->ntasks = images * j->ntiles * j->cslabs;
    j->nworkers = task_parallel ? IFD_MIN(nthreads, j->ntasks) : 1;
    j->task_parallel = task_parallel;
    size_t per_worker = 0, tmp;
    if (!j->direct && !j->gather && !ifd_mul_size((size_t)j->K, (size_t)tile, &per_worker))
        return false;
    if (j->swapped && (!ifd_mul_size((size_t)j->Mg, (size_t)tile, &tmp) ||
                       !ifd_add_size(per_worker, tmp, &per_worker)))
        return false;
    per_worker = (per_worker + 15) & ~(size_t)15; /* each worker's piece 64-byte aligned */
    j->worker_floats = (int64_t)per_worker;
    return ifd_mul_size((size_t)j->nworkers * sizeof(float), per_worker, scratch_bytes);
}

static void dense_exec(conv_job *j, const float *x, const float *w, const float *bias, float *y,
                       float *scratch, ifd_thread_pool *pool) {
    j->x = x, j->w = w, j->bias = bias, j->y = y;
    j->scratch = scratch;
    j->gemm_pool = j->task_parallel ? NULL : pool;
    if (j->task_parallel)
        ifd_parallel_for(pool, j->nworkers, 1, conv_worker, j);
    else
        conv_worker(j, 0, 1);
}

/* ---- sparse path: plan and run --------------------------------------------------------------- */

/* Tasks are (image and group, block of IFD_SPCONV_BLOCK output positions, slab of output
 * channels), in that order, split into one contiguous range per worker, so a worker builds the
 * input of a block once for all the channel slabs it runs on it. Channels are split only when
 * there are too few position blocks to keep every thread busy (deep layers with small planes).
 *
 * Three ways to feed the kernel the columns X[K, positions]:
 *   direct   1x1, stride 1, no padding: the input planes are the columns.
 *   shifted  2-D, stride 1 (3x3 and the like): the image is copied once, zero-padded, to
 *            [Cg, Hp, Wp]; output positions are counted over the padded width (o = oh*Wp + ow,
 *            the columns ow >= OW computed and dropped), so tap (c, kh, kw) of every output
 *            position is the padded image at a fixed offset c*Hp*Wp + kh*dh*Wp + kw*dw, which
 *            the weight stores instead of its column index (ifd_spconv_pack_mapped). No im2col:
 *            it would write K = 9*Cg floats per output position, as much memory traffic as the
 *            sparse products themselves at 90% zeros.
 *   im2col   everything else (strided, 1-D/3-D): a [K, 64] column block per task. */
typedef struct spconv_job {
    const ifd_conv_geom *g;
    const ifd_spconv_w *sp; /* column-indexed (direct, im2col) or offset-indexed (shifted) */
    const float *x, *bias;
    float *y, *scratch;
    int64_t C, M, group, Cg, Mg, K, L;
    int64_t P; /* positions the kernel computes per image: L, or OH * Wp when shifted */
    int64_t nblocks, slabs, slab_rows, ntasks, nworkers;
    int64_t worker_floats; /* input block (im2col or padded image), output tile, kernel tile */
    int64_t in_floats, tile_floats;
    bool direct, shifted;
    int64_t Hp, Wp;
    float lo, hi;
    const ifd_activation *act;
} spconv_job;

/* Padded extent of a stride-1 2-D geometry and the offset table of its taps (index[k] for
 * k = c*KH*KW + kh*KW + kw); false when it does not apply or the offsets pass 32 bits. */
static bool shifted_geometry(const ifd_conv_geom *g, int64_t Cg, int64_t *Hp, int64_t *Wp) {
    if (g->nd != 2 || g->s[0] != 1 || g->s[1] != 1) return false;
    if (direct_geometry(g)) return false;
    int64_t hp, wp, n;
    if (!ifd_mul_i64(g->k[0] - 1, g->d[0], &hp) || !ifd_add_i64(hp, g->out[0], &hp) ||
        !ifd_mul_i64(g->k[1] - 1, g->d[1], &wp) || !ifd_add_i64(wp, g->out[1], &wp) ||
        !ifd_mul_i64(hp, wp, &n) || !ifd_mul_i64(n, Cg, &n) || !ifd_add_i64(n, wp, &n) ||
        n >= (int64_t)UINT32_MAX)
        return false;
    *Hp = hp, *Wp = wp;
    return true;
}

static ifd_spconv_w *pack_shifted(const conv_state *cs, const ifd_conv_geom *g, const float *w) {
    int64_t Hp, Wp, Cg = cs->K / g->k_size, KW = g->k[1], kk = g->k_size;
    if (!shifted_geometry(g, Cg, &Hp, &Wp)) return NULL;
    uint32_t *index = ifd_malloc(sizeof(uint32_t) * (size_t)(cs->K + 1));
    ifd_spconv_w *sp = NULL;
    if (!index) return NULL;
    for (int64_t k = 0; k < cs->K; k++) {
        int64_t c = k / kk, kh = (k % kk) / KW, kw = k % KW;
        index[k] = (uint32_t)(c * Hp * Wp + kh * g->d[0] * Wp + kw * g->d[1]);
    }
    if (ifd_spconv_pack_mapped(cs->M, cs->K, w, cs->K, index, &sp) != IFD_OK) {
        ifd_error_clear();
        sp = NULL;
    }
    ifd_free(index);
    return sp;
}

/* sp: the column-indexed weight, shifted: the offset-indexed one for this geometry or NULL. */
static bool sparse_plan(spconv_job *j, const ifd_conv_geom *g, int64_t N, int64_t C, int64_t M,
                        int64_t group, const ifd_activation *act, const ifd_spconv_w *sp,
                        const ifd_spconv_w *shifted, int nthreads, size_t *scratch_bytes) {
    memset(j, 0, sizeof *j);
    j->g = g;
    j->C = C, j->M = M, j->group = group, j->Cg = C / group, j->Mg = M / group;
    j->K = j->Cg * g->k_size;
    j->L = g->out_size;
    j->act = act;
    act_clamp(act, &j->lo, &j->hi);
    j->direct = direct_geometry(g);
    j->shifted = shifted && shifted_geometry(g, j->Cg, &j->Hp, &j->Wp);
    j->sp = j->shifted ? shifted : sp;
    j->P = j->shifted ? g->out[0] * j->Wp : j->L;
    j->nblocks = (j->P + IFD_SPCONV_BLOCK - 1) / IFD_SPCONV_BLOCK;
    int64_t units;
    if (!ifd_mul_i64(N * group, j->nblocks, &units)) return false;
    j->slabs = 1;
    if (nthreads > 1 && units < 4 * (int64_t)nthreads && units > 0) {
        /* about 4 tasks per thread, slabs of at least 16 channels */
        j->slabs = IFD_MIN((4 * (int64_t)nthreads + units - 1) / units, (j->Mg + 15) / 16);
        if (j->slabs < 1) j->slabs = 1;
    }
    j->slab_rows = j->Mg > 0 ? (j->Mg + j->slabs - 1) / j->slabs : 1;
    j->slabs = j->Mg > 0 ? (j->Mg + j->slab_rows - 1) / j->slab_rows : 1;
    if (!ifd_mul_i64(units, j->slabs, &j->ntasks)) return false;
    j->nworkers = IFD_MAX((int64_t)1, IFD_MIN((int64_t)nthreads, j->ntasks));
    size_t in = 0, tile = 0, per_worker;
    if (j->shifted) {
        /* padded image, plus the (KW-1)*dw floats the dropped columns of the last row read */
        in = (size_t)(j->Cg * j->Hp * j->Wp + j->Wp);
        tile = (size_t)j->slab_rows * IFD_SPCONV_BLOCK;
    } else if (!j->direct && !ifd_mul_size((size_t)j->K, IFD_SPCONV_BLOCK, &in))
        return false;
    in = (in + 15) & ~(size_t)15; /* what follows 64-byte aligned */
    j->in_floats = (int64_t)in;
    j->tile_floats = (int64_t)tile;
    if (!ifd_add_size(in, tile, &per_worker) ||
        !ifd_add_size(per_worker, IFD_SPCONV_PART_FLOATS, &per_worker))
        return false;
    j->worker_floats = (int64_t)per_worker;
    return ifd_mul_size((size_t)j->nworkers * sizeof(float), per_worker, scratch_bytes);
}

/* The zero-padded copy [Cg, Hp, Wp] (+ Wp zeros) of one image's group. */
static void pad_image(const spconv_job *j, const float *xg, float *xp) {
    const ifd_conv_geom *g = j->g;
    int64_t H = g->in[0], W = g->in[1], pt = g->pb[0], pl = g->pb[1];
    int64_t n = IFD_MIN(W, j->Wp - pl);
    memset(xp, 0, sizeof(float) * (size_t)(j->Cg * j->Hp * j->Wp + j->Wp));
    for (int64_t c = 0; c < j->Cg; c++)
        for (int64_t ih = 0; ih < H && ih + pt < j->Hp; ih++)
            if (n > 0) memcpy(xp + (c * j->Hp + ih + pt) * j->Wp + pl, xg + (c * H + ih) * W,
                              sizeof(float) * (size_t)n);
}

static void sparse_worker(void *arg, int64_t begin, int64_t end) {
    const spconv_job *j = arg;
    for (int64_t wi = begin; wi < end; wi++) {
        float *in = j->scratch + wi * j->worker_floats, *tile = in + j->in_floats;
        float *part = tile + j->tile_floats;
        int64_t t0 = wi * j->ntasks / j->nworkers, t1 = (wi + 1) * j->ntasks / j->nworkers;
        int64_t built = -1; /* the unit (im2col) or image and group (shifted) in holds */
        for (int64_t t = t0; t < t1; t++) {
            int64_t unit = t / j->slabs, s = t % j->slabs;
            int64_t bi = unit % j->nblocks, ng = unit / j->nblocks;
            int64_t gi = ng % j->group, n = ng / j->group;
            int64_t p0 = bi * IFD_SPCONV_BLOCK, pc = IFD_MIN((int64_t)IFD_SPCONV_BLOCK, j->P - p0);
            int64_t r0 = s * j->slab_rows, r1 = IFD_MIN(j->Mg, r0 + j->slab_rows);
            if (r0 >= r1) continue;
            const float *xg = j->x + (n * j->C + gi * j->Cg) * j->g->in_size; /* [Cg, in...] */
            float *yg = j->y + (n * j->M + gi * j->Mg + r0) * j->L;           /* row r0 */
            const float *bias = j->bias ? j->bias + gi * j->Mg + r0 : NULL;
            ifd_act_kind kind = j->act->kind;
            bool generic = kind != IFD_ACT_NONE && kind != IFD_ACT_RELU && kind != IFD_ACT_CLIP;
            if (j->shifted) {
                if (built != ng) pad_image(j, xg, in);
                built = ng;
                /* positions over the padded width into the tile, then the real ones out */
                ifd_spconv_block(j->sp, gi * j->Mg + r0, gi * j->Mg + r1, in + p0, 1, pc, bias,
                                 j->lo, j->hi, tile, IFD_SPCONV_BLOCK, part);
                int64_t OW = j->g->out[1];
                for (int64_t m = 0; m < r1 - r0; m++) {
                    float *src = tile + m * IFD_SPCONV_BLOCK;
                    if (generic) ifd_activation_apply(j->act, src, pc);
                    for (int64_t p = p0; p < p0 + pc;) {
                        int64_t oh = p / j->Wp, ow = p % j->Wp;
                        int64_t run = IFD_MIN(j->Wp - ow, p0 + pc - p);
                        if (ow < OW)
                            memcpy(yg + m * j->L + oh * OW + ow, src + (p - p0),
                                   sizeof(float) * (size_t)IFD_MIN(run, OW - ow));
                        p += run;
                    }
                }
                continue;
            }
            const float *cols;
            int64_t ldx;
            if (j->direct) {
                cols = xg + p0;
                ldx = j->L;
            } else {
                if (built != unit) ifd_conv_im2col(j->g, xg, j->Cg, p0, pc, in); /* [K, pc] */
                built = unit;
                cols = in;
                ldx = pc;
            }
            ifd_spconv_block(j->sp, gi * j->Mg + r0, gi * j->Mg + r1, cols, ldx, pc, bias, j->lo,
                             j->hi, yg + p0, j->L, part);
            if (generic)
                for (int64_t m = 0; m < r1 - r0; m++)
                    ifd_activation_apply(j->act, yg + m * j->L + p0, pc);
        }
    }
}

static void sparse_exec(spconv_job *j, const float *x, const float *bias, float *y,
                        float *scratch, ifd_thread_pool *pool) {
    j->x = x, j->bias = bias, j->y = y;
    j->scratch = scratch;
    if (j->ntasks == 0) return;
    ifd_parallel_for(pool, j->nworkers, 1, sparse_worker, j);
}

/* ---- prepare: pack, and measure dense against sparse ----------------------------------------- */

/* A weight with fewer zeros never beats the dense GEMM with this kernel (as for MatMul). */
#define SPARSE_MIN_SPARSITY 0.5

/* The two sides of measure_sparse. */
typedef struct probe_args {
    conv_job *dj;
    spconv_job *sj;
    const float *x, *w;
    float *y, *scratch;
} probe_args;

static void probe_dense(void *arg) {
    probe_args *p = arg;
    dense_exec(p->dj, p->x, p->w, NULL, p->y, p->scratch, NULL);
}

static void probe_sparse(void *arg) {
    probe_args *p = arg;
    sparse_exec(p->sj, p->x, NULL, p->y, p->scratch, NULL);
}

/* Time the dense path (what run() would do with the packed weights left) and the sparse one on
 * one image of geometry g, single-threaded (the ratio is what matters), alternating the two so
 * that a noisy neighbour hurts both; best of a few runs each. False when the buffers cannot be
 * had (then dense stays). */
static bool measure_sparse(const conv_state *cs, const ifd_conv_geom *g, int64_t C,
                           const float *w, const ifd_activation *act, const ifd_spconv_w *shifted,
                           double *t_dense, double *t_sparse) {
    conv_job dj;
    spconv_job sj;
    size_t d_bytes, s_bytes, x_bytes, y_bytes;
    if (!dense_plan(&dj, g, 1, C, cs->M, cs->group, act, cs, 1, &d_bytes) ||
        !sparse_plan(&sj, g, 1, C, cs->M, cs->group, act, cs->sparse, shifted, 1, &s_bytes) ||
        !ifd_mul_size((size_t)C * sizeof(float), (size_t)g->in_size, &x_bytes) ||
        !ifd_mul_size((size_t)cs->M * sizeof(float), (size_t)g->out_size, &y_bytes))
        return false;
    float *x = ifd_malloc_aligned(x_bytes + 64), *y = ifd_malloc_aligned(y_bytes + 64);
    float *sc = ifd_malloc_aligned(IFD_MAX(d_bytes, s_bytes) + 64);
    bool ok = x && y && sc;
    if (ok) {
        ifd_fill_probe_input(x, x_bytes / sizeof(float));
        probe_args p = {&dj, &sj, x, w, y, sc};
        ifd_time_alternating(probe_dense, probe_sparse, &p, 3, 0.03, t_dense, t_sparse);
    }
    ifd_free_aligned(x);
    ifd_free_aligned(y);
    ifd_free_aligned(sc);
    return ok;
}

static bool sparse_logging(void) {
    const char *log = getenv("IFD_SPARSE_LOG");
    return log && *log && strcmp(log, "0");
}

/* Whether sparse runs for geometry g (and *shifted, its offset-indexed weight or NULL): the
 * recorded decision for its input shape, else a new measurement (recorded, and printed under
 * IFD_SPARSE_LOG). The first decision frees the packing that lost; later shapes then measure
 * against what is left. */
static bool decide_sparse(conv_state *cs, const ifd_node *node, const ifd_conv_geom *g,
                          const float *w, const ifd_activation *act,
                          const ifd_spconv_w **shifted) {
    *shifted = NULL;
    if (!cs->sparse) return false;
    for (int i = 0; i < cs->n_decided; i++)
        if (!memcmp(cs->decided_in[i], g->in, sizeof(int64_t) * (size_t)g->nd)) {
            *shifted = cs->decided_shifted[i];
            return cs->decided_sparse[i];
        }
    if (cs->n_decided == SPARSE_SHAPES) return false;
    ifd_spconv_w *sh = pack_shifted(cs, g, w);
    bool wins = cs->forced;
    double td = 0, ts = 0;
    if (!cs->forced &&
        measure_sparse(cs, g, cs->K / g->k_size * cs->group, w, act, sh, &td, &ts))
        wins = ts < td;
    if (sparse_logging()) {
        char shape[64];
        if (g->nd == 2)
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)g->out[0], (long long)g->out[1]);
        else
            snprintf(shape, sizeof shape, "%lld", (long long)g->out_size);
        fprintf(stderr,
                "sparse: Conv '%s' %lldx%lld sparsity %.3f, output %s%s: dense %.1f us, sparse "
                "%.1f us -> %s%s\n",
                node->name, (long long)cs->M, (long long)cs->K,
                1.0 - (double)ifd_spconv_nnz(cs->sparse) / ((double)cs->M * (double)cs->K),
                shape, sh ? " (shifted)" : "", td * 1e6, ts * 1e6, wins ? "sparse" : "dense",
                cs->forced ? " (IFD_SPARSE=on)" : "");
    }
    if (!wins) {
        ifd_spconv_free(sh);
        sh = NULL;
    }
    int i = cs->n_decided++;
    memcpy(cs->decided_in[i], g->in, sizeof(int64_t) * (size_t)g->nd);
    cs->decided_sparse[i] = wins;
    cs->decided_shifted[i] = sh;
    if (i == 0 && !wins) {
        ifd_spconv_free(cs->sparse);
        cs->sparse = NULL;
    } else if (i == 0) {
        for (int64_t gi = 0; gi < cs->group; gi++) {
            ifd_sgemm_packed_a_free(cs->packed[gi]);
            ifd_sgemm_packed_b_free(cs->packed_t[gi]);
            cs->packed[gi] = NULL;
            cs->packed_t[gi] = NULL;
        }
    }
    *shifted = sh;
    return wins;
}

/* Pack W for the sparse kernel when it is sparse enough (IFD_SPARSE=off: never). Failures here
 * only mean dense stays. */
static void prepare_sparse(conv_state *cs, const float *w) {
    const char *mode = getenv("IFD_SPARSE");
    if (mode && !strcmp(mode, "off")) return;
    cs->forced = mode && !strcmp(mode, "on");
    if (ifd_spconv_sparsity(cs->M, cs->K, w, cs->K) < SPARSE_MIN_SPARSITY) return;
    if (ifd_spconv_pack(cs->M, cs->K, w, cs->K, &cs->sparse) != IFD_OK) ifd_error_clear();
}

static ifd_status prepare_conv(ifd_prepare_ctx *p) {
    const ifd_tensor *W = p->n_inputs > 1 ? p->constants[1] : NULL;
    /* anything unusual is left to run(), which reports it */
    if (!W || W->dtype != IFD_DTYPE_FLOAT || W->rank < 3 || W->rank - 2 > IFD_CONV_MAX_ND)
        return IFD_OK;
    int64_t group = ifd_attr_int(p->node, "group", 1), M = W->dims[0], Cg = W->dims[1], K = Cg;
    if (group < 1 || M % group != 0 || M == 0 || group > M) return IFD_OK;
    if (uses_depthwise(W->rank - 2, W->dims + 2, Cg, group)) return IFD_OK;
    for (int i = 2; i < W->rank; i++)
        if (!ifd_mul_i64(K, W->dims[i], &K)) return IFD_OK;
    int64_t Mg = M / group;
    /* The geometry of one image follows from the input's static spatial shape when it is known
     * (the strides, pads and dilations of run() agree with it or run() falls back to
     * unpacked): it picks the GEMM orientation and is what dense and sparse are timed on. */
    bool want_a = true, want_t = true, known = false;
    ifd_conv_geom g;
    memset(&g, 0, sizeof g);
    const ifd_value_type *xt = p->input_types ? p->input_types[0] : NULL;
    if (xt && xt->rank == W->rank) {
        known = true;
        int nd = W->rank - 2;
        g.nd = nd;
        int64_t pads[2 * IFD_CONV_MAX_ND];
        size_t n;
        const int64_t *v;
        const char *ap = ifd_attr_string(p->node, "auto_pad", "NOTSET");
        int auto_pad = !strcmp(ap, "SAME_UPPER") ? 1 : !strcmp(ap, "SAME_LOWER") ? 2
                       : !strcmp(ap, "VALID")    ? 3 : 0;
        for (int i = 0; i < nd; i++) g.s[i] = g.d[i] = 1, pads[i] = pads[i + nd] = 0;
        if ((v = ifd_attr_ints(p->node, "strides", &n)) && n == (size_t)nd) memcpy(g.s, v, n * 8);
        if ((v = ifd_attr_ints(p->node, "dilations", &n)) && n == (size_t)nd) memcpy(g.d, v, n * 8);
        if ((v = ifd_attr_ints(p->node, "pads", &n)) && n == 2 * (size_t)nd) memcpy(pads, v, n * 8);
        for (int i = 0; i < nd && known; i++) {
            g.in[i] = xt->dims[i + 2];
            g.k[i] = W->dims[i + 2];
            known = g.in[i] > 0 &&
                    ifd_conv_out_dim(auto_pad, g.in[i], g.k[i], g.s[i], g.d[i], pads[i],
                                     pads[i + nd], false, &g.out[i], &g.pb[i]);
        }
        known = known && ifd_conv_geom_finish(&g);
        if (known) {
            bool sw = conv_swapped(Mg, g.out_size, K);
            want_a = !sw;
            want_t = sw;
        }
    }
    conv_state *cs = conv_state_new(group, M, K);
    if (!cs) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory preparing Conv weights");
    for (int64_t gi = 0; gi < group; gi++) {
        const float *wg = (const float *)W->data + gi * Mg * K;
        ifd_status st = IFD_OK;
        if (want_a) st = ifd_sgemm_pack_a(false, Mg, K, wg, K, &cs->packed[gi]);
        if (!st && want_t) st = ifd_sgemm_pack_b(true, Mg, K, wg, K, &cs->packed_t[gi]);
        if (st) {
            release_conv(cs);
            return st;
        }
    }
    prepare_sparse(cs, W->data);
    static const ifd_activation none = {IFD_ACT_NONE, 0, 0};
    if (known && cs->sparse) {
        const ifd_spconv_w *unused;
        decide_sparse(cs, p->node, &g, W->data, p->activation ? p->activation : &none, &unused);
    }
    p->state = cs;
    return IFD_OK;
}

static ifd_status run_conv(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *X0 = ctx->inputs[0], *W0 = ctx->inputs[1];
    const ifd_tensor *B0 = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (W0->dtype != X0->dtype || (B0 && B0->dtype != X0->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "X, W and B must share a type");
    ifd_conv_geom g;
    if ((st = conv_geometry(ctx, X0, W0, &g))) return st;
    int64_t N = X0->dims[0], C = X0->dims[1], M = W0->dims[0], Cg = W0->dims[1];
    int64_t group = ifd_attr_int(ctx->node, "group", 1);
    if (group < 1 || Cg * group != C || M % group != 0)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "channels do not match: input %lld, weight %lldx%lld, group %lld",
                                (long long)C, (long long)M, (long long)Cg, (long long)group);
    if ((st = check_bias(ctx, B0, M))) return st;

    int64_t dims[IFD_MAX_RANK];
    dims[0] = N;
    dims[1] = M;
    for (int i = 0; i < g.nd; i++) dims[i + 2] = g.out[i];
    size_t sizes[5] = {f32_bytes(X0), f32_bytes(W0), f32_bytes(B0), 0, 0};
    void *bufs[5];
    if ((st = out_bytes(ctx, X0->dtype, X0->rank, dims, &sizes[3]))) return st;
    int nthreads = ifd_thread_pool_size(ctx->pool);

    /* Depthwise (optionally with a depth multiplier): direct kernel, 1-D as 2-D with H = 1. */
    if (uses_depthwise(g.nd, g.k, Cg, group)) {
        ifd_conv_geom g2 = g;
        if (g.nd == 1) {
            g2.nd = 2;
            g2.in[1] = g.in[0], g2.out[1] = g.out[0], g2.k[1] = g.k[0];
            g2.s[1] = g.s[0], g2.d[1] = g.d[0], g2.pb[1] = g.pb[0];
            g2.in[0] = g2.out[0] = g2.k[0] = g2.s[0] = g2.d[0] = 1;
            g2.pb[0] = 0;
        }
        if ((st = scratch_multi(ctx, 4, sizes, bufs))) return st;
        ifd_tensor tx, tw, tb;
        const ifd_tensor *X, *W, *B;
        f32_out out;
        if ((st = as_f32(ctx, X0, &tx, bufs[0], &X)) || (st = as_f32(ctx, W0, &tw, bufs[1], &W)) ||
            (st = as_f32(ctx, B0, &tb, bufs[2], &B)) ||
            (st = out_begin(ctx, 0, X0->dtype, X0->rank, dims, bufs[3], &out)))
            return st;
        if (!out.real || out.real->count == 0) return IFD_OK;
        uint16_t masks[IFD_CONV_DW_MASKS];
        bool flat = ifd_conv_depthwise_masks(&g2, masks);
        dw_job j = {&g2, X->data, W->data, B ? B->data : NULL, out.data, C, M / C, ctx->activation,
                    flat ? masks : NULL};
        /* one contiguous range of planes per thread, the first to the calling thread: a 1x1
         * convolution before it that splits its output channels the same way (conv_task's
         * slabs) leaves each thread's planes in its own core's cache */
        ifd_parallel_for(ctx->pool, N * M, (N * M + nthreads - 1) / nthreads, dw_worker, &j);
        out_end(&out);
        return IFD_OK;
    }

    /* the packed weights apply when they have the shape of the runtime W (a caller could feed
     * an overridable initializer with another shape) */
    conv_state *cs = ctx->state;
    if (!cs || cs->group != group || cs->M != M || cs->K != Cg * g.k_size ||
        W0->dtype != IFD_DTYPE_FLOAT)
        cs = NULL;
    conv_job dj;
    spconv_job sj;
    const ifd_spconv_w *shifted = NULL;
    bool sparse = cs && decide_sparse(cs, ctx->node, &g, W0->data, ctx->activation, &shifted);
    if (sparse ? !sparse_plan(&sj, &g, N, C, M, group, ctx->activation, cs->sparse, shifted,
                              nthreads, &sizes[4])
               : !dense_plan(&dj, &g, N, C, M, group, ctx->activation, cs, nthreads, &sizes[4]))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "column buffer too large");
    if ((st = scratch_multi(ctx, 5, sizes, bufs))) return st;
    ifd_tensor tx, tw, tb;
    const ifd_tensor *X, *W, *B;
    f32_out out;
    if ((st = as_f32(ctx, X0, &tx, bufs[0], &X)) || (st = as_f32(ctx, W0, &tw, bufs[1], &W)) ||
        (st = as_f32(ctx, B0, &tb, bufs[2], &B)) ||
        (st = out_begin(ctx, 0, X0->dtype, X0->rank, dims, bufs[3], &out)))
        return st;
    if (!out.real || out.real->count == 0) return IFD_OK;
    if (sparse)
        sparse_exec(&sj, X->data, B ? B->data : NULL, out.data, bufs[4], ctx->pool);
    else
        dense_exec(&dj, X->data, W->data, B ? B->data : NULL, out.data, bufs[4], ctx->pool);
    out_end(&out);
    return IFD_OK;
}

/* ---- ConvTranspose ------------------------------------------------------------------------- */

static int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

typedef struct col2im_job {
    const ifd_conv_geom *g;
    const float *col;
    float *img;
} col2im_job;

static void col2im_worker(void *arg, int64_t begin, int64_t end) {
    const col2im_job *j = arg;
    ifd_conv_col2im(j->g, j->col + begin * j->g->k_size * j->g->out_size, end - begin,
                    j->img + begin * j->g->in_size);
}

/* prepare(): constant float weights [C, Mg, k...] packed per group as the transposed left
 * operand of col[Mg*kprod, L] = W_g^T * X_g. Reuses conv_state (M = C, K = Mg*kprod). */
static ifd_status prepare_conv_transpose(ifd_prepare_ctx *p) {
    const ifd_tensor *W = p->n_inputs > 1 ? p->constants[1] : NULL;
    if (!W || W->dtype != IFD_DTYPE_FLOAT || W->rank < 3 || W->rank - 2 > IFD_CONV_MAX_ND)
        return IFD_OK;
    int64_t group = ifd_attr_int(p->node, "group", 1), C = W->dims[0], rows = W->dims[1];
    if (group < 1 || C % group != 0 || C == 0) return IFD_OK;
    for (int i = 2; i < W->rank; i++)
        if (!ifd_mul_i64(rows, W->dims[i], &rows)) return IFD_OK;
    conv_state *cs = conv_state_new(group, C, rows);
    if (!cs) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory preparing ConvTranspose weights");
    int64_t Cg = C / group;
    for (int64_t g = 0; g < group; g++) {
        ifd_status st = ifd_sgemm_pack_a(true, rows, Cg, (const float *)W->data + g * Cg * rows,
                                         rows, &cs->packed[g]);
        if (st) {
            release_conv(cs);
            return st;
        }
    }
    p->state = cs;
    return IFD_OK;
}

static ifd_status run_conv_transpose(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *X0 = ctx->inputs[0], *W0 = ctx->inputs[1];
    const ifd_tensor *B0 = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (W0->dtype != X0->dtype || (B0 && B0->dtype != X0->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "X, W and B must share a type");
    int nd = X0->rank - 2;
    if (X0->rank < 3 || nd > IFD_CONV_MAX_ND || W0->rank != X0->rank)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input rank %d / weight rank %d unsupported",
                                X0->rank, W0->rank);
    int64_t N = X0->dims[0], C = X0->dims[1], Mg = W0->dims[1];
    int64_t group = ifd_attr_int(ctx->node, "group", 1);
    if (group < 1 || W0->dims[0] != C || C % group != 0)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "channels do not match: input %lld, weight dim0 %lld, group %lld",
                                (long long)C, (long long)W0->dims[0], (long long)group);
    int64_t Cg = C / group, M = Mg * group;
    if ((st = check_bias(ctx, B0, M))) return st;

    ifd_conv_geom g;
    memset(&g, 0, sizeof g);
    g.nd = nd;
    int64_t ks[IFD_CONV_MAX_ND], pads[2 * IFD_CONV_MAX_ND], opad[IFD_CONV_MAX_ND];
    int64_t oshape[IFD_MAX_RANK];
    bool has_k;
    int auto_pad = 0;
    if ((st = ifd_attr_ints_n(ctx, "kernel_shape", nd, 0, ks, &has_k)) ||
        (st = ifd_attr_ints_n(ctx, "strides", nd, 1, g.s, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "dilations", nd, 1, g.d, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "pads", 2 * nd, 0, pads, NULL)) ||
        (st = ifd_attr_ints_n(ctx, "output_padding", nd, 0, opad, NULL)) ||
        (st = ifd_parse_auto_pad(ctx, &auto_pad)))
        return st;
    size_t n_os = 0;
    const int64_t *os = ifd_attr_ints(ctx->node, "output_shape", &n_os);
    if (os && n_os) {
        if (n_os != (size_t)nd && n_os != (size_t)nd + 2)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "output_shape has %zu values for %d spatial dims", n_os, nd);
        memcpy(oshape, os + (n_os - (size_t)nd), sizeof(int64_t) * (size_t)nd);
    } else
        os = NULL;
    for (int i = 0; i < nd; i++) {
        int64_t k = W0->dims[i + 2], in = X0->dims[i + 2], s = g.s[i], d = g.d[i];
        if (has_k && ks[i] != k)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "kernel_shape does not match the weight");
        if (s < 1 || d < 1 || k < 1 || in < 0 || opad[i] < 0 || pads[i] < 0 || pads[i + nd] < 0 ||
            k > (INT64_C(1) << 31) || d > (INT64_C(1) << 31) || s > (INT64_C(1) << 31) ||
            in > (INT64_C(1) << 40))
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "invalid kernel/stride/dilation/padding along dim %d", i);
        /* full = extent of the un-cropped output */
        int64_t full = s * (in > 0 ? in - 1 : 0) + opad[i] + (k - 1) * d + 1, out, pb;
        if (os) {
            out = oshape[i];
            int64_t total = full - out;
            if (total < 0) total = 0;
            pb = auto_pad == 1 ? total / 2 : total - total / 2;
        } else if (auto_pad == 1 || auto_pad == 2) {
            out = in * s;
            int64_t total = full - out;
            pb = auto_pad == 1 ? floor_div2(total) : total - floor_div2(total);
        } else if (auto_pad == 3) {
            out = full;
            pb = 0;
        } else {
            out = full - pads[i] - pads[i + nd];
            pb = pads[i];
        }
        if (out < 0)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "negative output size along dim %d", i);
        g.k[i] = k;
        g.in[i] = out; /* image side: the output */
        g.out[i] = in; /* column side: the input */
        g.pb[i] = pb;
    }
    if (!ifd_conv_geom_finish(&g))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "convolution sizes overflow");

    int64_t dims[IFD_MAX_RANK];
    dims[0] = N;
    dims[1] = M;
    for (int i = 0; i < nd; i++) dims[i + 2] = g.in[i];
    int64_t rows = Mg * g.k_size, Lin = g.out_size, Lout = g.in_size;
    size_t sizes[5] = {f32_bytes(X0), f32_bytes(W0), f32_bytes(B0), 0, 0};
    void *bufs[5];
    if ((st = out_bytes(ctx, X0->dtype, X0->rank, dims, &sizes[3]))) return st;
    if (!ifd_mul_size((size_t)rows * sizeof(float), (size_t)Lin, &sizes[4]))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "column buffer too large");
    if ((st = scratch_multi(ctx, 5, sizes, bufs))) return st;
    ifd_tensor tx, tw, tb;
    const ifd_tensor *X, *W, *B;
    f32_out out;
    if ((st = as_f32(ctx, X0, &tx, bufs[0], &X)) || (st = as_f32(ctx, W0, &tw, bufs[1], &W)) ||
        (st = as_f32(ctx, B0, &tb, bufs[2], &B)) ||
        (st = out_begin(ctx, 0, X0->dtype, X0->rank, dims, bufs[3], &out)))
        return st;
    if (!out.real || out.real->count == 0) return IFD_OK;
    float *col = bufs[4];
    const float *x = X->data, *w = W->data, *bias = B ? B->data : NULL;
    const conv_state *cs = ctx->state;
    if (cs && (cs->group != group || cs->M != C || cs->K != rows || W0->dtype != IFD_DTYPE_FLOAT))
        cs = NULL;
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < group; gi++) {
            float *y = out.data + (n * M + gi * Mg) * Lout; /* [Mg, out...] */
            for (int64_t m = 0; m < Mg; m++) {
                float b = bias ? bias[gi * Mg + m] : 0.f;
                for (int64_t p = 0; p < Lout; p++) y[m * Lout + p] = b;
            }
            if (Lin == 0 || Cg == 0) continue;
            /* col[Mg*kprod, Lin] = W_g^T [Mg*kprod, Cg] * X_g [Cg, Lin] */
            if (cs)
                ifd_sgemm_packed_a_ex(cs->packed[gi], false, Lin, 1.0f, x + (n * C + gi * Cg) * Lin,
                                      Lin, 0.0f, col, Lin, NULL, ctx->pool);
            else
                ifd_sgemm(true, false, rows, Lin, Cg, 1.0f, w + gi * Cg * rows, rows,
                          x + (n * C + gi * Cg) * Lin, Lin, 0.0f, col, Lin, ctx->pool);
            col2im_job cj = {&g, col, y};
            ifd_parallel_for(ctx->pool, Mg, 1, col2im_worker, &cj);
        }
    out_end(&out);
    return IFD_OK;
}

/* ---- DeformConv (2-D) ---------------------------------------------------------------------- */

typedef struct deform_job {
    const ifd_conv_geom *g;
    const float *x;      /* [Cg, H, W] of this image and group */
    const float *offset; /* [offset_group, kh, kw, 2, OH, OW] of this image */
    const float *mask;   /* [offset_group, kh, kw, OH, OW] of this image, or NULL */
    float *col;          /* [Cg*kh*kw, OH*OW] */
    int64_t c0, per_og;  /* global channel of the group's first channel; channels per offset group */
} deform_job;

static float bilinear_zero(const float *img, int64_t H, int64_t W, float h, float w) {
    if (!(h > -1.f && h < (float)H && w > -1.f && w < (float)W)) return 0.f;
    float hf = floorf(h), wf = floorf(w);
    int64_t h0 = (int64_t)hf, w0 = (int64_t)wf;
    float lh = h - hf, lw = w - wf, v = 0.f;
    if (h0 >= 0 && w0 >= 0) v += (1 - lh) * (1 - lw) * img[h0 * W + w0];
    if (h0 >= 0 && w0 + 1 < W) v += (1 - lh) * lw * img[h0 * W + w0 + 1];
    if (h0 + 1 < H && w0 >= 0) v += lh * (1 - lw) * img[(h0 + 1) * W + w0];
    if (h0 + 1 < H && w0 + 1 < W) v += lh * lw * img[(h0 + 1) * W + w0 + 1];
    return v;
}

static void deform_worker(void *arg, int64_t begin, int64_t end) {
    const deform_job *j = arg;
    const ifd_conv_geom *g = j->g;
    int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1], KH = g->k[0],
            KW = g->k[1], L = OH * OW, kk = KH * KW;
    for (int64_t c = begin; c < end; c++) {
        int64_t og = (j->c0 + c) / j->per_og;
        const float *img = j->x + c * H * W;
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) {
                int64_t ki = kh * KW + kw;
                float *dst = j->col + (c * kk + ki) * L;
                const float *offh = j->offset + ((og * kk + ki) * 2) * L, *offw = offh + L;
                const float *mk = j->mask ? j->mask + (og * kk + ki) * L : NULL;
                for (int64_t oh = 0; oh < OH; oh++)
                    for (int64_t ow = 0; ow < OW; ow++) {
                        int64_t p = oh * OW + ow;
                        float h = (float)(oh * g->s[0] - g->pb[0] + kh * g->d[0]) + offh[p];
                        float w = (float)(ow * g->s[1] - g->pb[1] + kw * g->d[1]) + offw[p];
                        float v = bilinear_zero(img, H, W, h, w);
                        dst[p] = mk ? v * mk[p] : v;
                    }
            }
    }
}

static ifd_status run_deform_conv(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)) ||
        (st = ifd_kernel_require_input(ctx, 2)))
        return st;
    const ifd_tensor *X0 = ctx->inputs[0], *W0 = ctx->inputs[1], *O0 = ctx->inputs[2];
    const ifd_tensor *B0 = ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
    const ifd_tensor *K0 = ctx->n_inputs > 4 ? ctx->inputs[4] : NULL;
    if (X0->rank != 4)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "only 2-D DeformConv is supported");
    ifd_conv_geom g;
    if ((st = conv_geometry(ctx, X0, W0, &g))) return st;
    int64_t N = X0->dims[0], C = X0->dims[1], M = W0->dims[0], Cg = W0->dims[1];
    int64_t group = ifd_attr_int(ctx->node, "group", 1);
    int64_t ogroups = ifd_attr_int(ctx->node, "offset_group", 1);
    if (group < 1 || Cg * group != C || M % group != 0 || ogroups < 1 || C % ogroups != 0)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "channel counts do not match group/offset_group");
    if ((st = check_bias(ctx, B0, M))) return st;
    int64_t kk = g.k_size;
    if (O0->rank != 4 || O0->dims[0] != N || O0->dims[1] != ogroups * kk * 2 ||
        O0->dims[2] != g.out[0] || O0->dims[3] != g.out[1])
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "offset shape does not match the output");
    if (K0 && (K0->rank != 4 || K0->dims[0] != N || K0->dims[1] != ogroups * kk ||
               K0->dims[2] != g.out[0] || K0->dims[3] != g.out[1]))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "mask shape does not match the output");
    int64_t dims[4] = {N, M, g.out[0], g.out[1]};
    int64_t L = g.out_size, Kdim = Cg * kk, Mg = M / group;
    size_t sizes[7] = {f32_bytes(X0), f32_bytes(W0), f32_bytes(B0), f32_bytes(O0), f32_bytes(K0), 0, 0};
    void *bufs[7];
    if ((st = out_bytes(ctx, X0->dtype, 4, dims, &sizes[5]))) return st;
    if (!ifd_mul_size((size_t)Kdim * sizeof(float), (size_t)L, &sizes[6]))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "column buffer too large");
    if ((st = scratch_multi(ctx, 7, sizes, bufs))) return st;
    ifd_tensor tx, tw, tb, to, tk;
    const ifd_tensor *X, *W, *B, *O, *K;
    f32_out out;
    if ((st = as_f32(ctx, X0, &tx, bufs[0], &X)) || (st = as_f32(ctx, W0, &tw, bufs[1], &W)) ||
        (st = as_f32(ctx, B0, &tb, bufs[2], &B)) || (st = as_f32(ctx, O0, &to, bufs[3], &O)) ||
        (st = as_f32(ctx, K0, &tk, bufs[4], &K)) ||
        (st = out_begin(ctx, 0, X0->dtype, 4, dims, bufs[5], &out)))
        return st;
    if (!out.real || out.real->count == 0) return IFD_OK;
    float *col = bufs[6];
    const float *x = X->data, *w = W->data, *bias = B ? B->data : NULL;
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < group; gi++) {
            deform_job j = {&g, x + (n * C + gi * Cg) * g.in_size,
                            (const float *)O->data + n * ogroups * kk * 2 * L,
                            K ? (const float *)K->data + n * ogroups * kk * L : NULL, col,
                            gi * Cg, C / ogroups};
            ifd_parallel_for(ctx->pool, Cg, 1, deform_worker, &j);
            float *y = out.data + (n * M + gi * Mg) * L;
            ifd_sgemm(false, false, Mg, L, Kdim, 1.0f, w + gi * Mg * Kdim, Kdim, col, L, 0.0f, y, L,
                      ctx->pool);
            if (bias)
                for (int64_t m = 0; m < Mg; m++)
                    ifd_conv_bias_clamp(y + m * L, L, bias[gi * Mg + m], -INFINITY, INFINITY);
        }
    out_end(&out);
    return IFD_OK;
}

const ifd_op_def ifd_ops_conv[] = {
    {"", "Conv", 1, run_conv, prepare_conv, release_conv, IFD_OP_FUSES_ACTIVATION},
    {"", "ConvTranspose", 1, run_conv_transpose, prepare_conv_transpose, release_conv, 0},
    {"", "DeformConv", 19, run_deform_conv, NULL, NULL, 0},
    {0},
};
