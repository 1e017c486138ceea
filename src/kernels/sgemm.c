/* Packed, blocked SGEMM in the BLIS/GotoBLAS style.
 *
 * Loop nest for one thread's block of C (rows [i0,i1), columns [j0,j1)):
 *   for pc in K step KC:              (first block applies beta, later ones accumulate)
 *     for ic in rows step MC:         pack A[ic:ic+MC, pc:pc+KC] into MR-row micro-panels (L2)
 *       for jr in cols step NR:       pack B[pc:pc+KC, jr:jr+NR] (one micro-panel, L1)
 *         for ir in MC step MR:       microkernel: MR x NR register tile over KC
 * Packing buffers live on the stack (fixed size, about 260 KB), so a call never allocates.
 * Packed micro-panels are zero-padded to MR / NR, so the microkernel always runs full-length
 * FMA chains; edge tiles dispatch to a kernel instantiated for the exact row count, and
 * column edges use masked loads/stores.
 * Threads split C into independent column (or row) ranges of whole tiles. */
#include "kernels/sgemm.h"
#include "kernels/transpose16.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#ifndef KC_MAX
#define KC_MAX 256
#endif
#ifndef MC_ROWS_MAX
#define MC_ROWS_MAX 224 /* rows of A packed per block: 16 x 14, 56 x 4, 37 x 6 */
#endif
#define NR_MAX 32

/* pf / pf_lines: a slice of the next packed B micro-panel to prefetch, pf_lines 64-byte lines
 * (0: none). */
/* The epilogue folded into a microkernel's stores (kernels with fused_ep): bias of each tile
 * row (br[i]) and column (bc[j]), either NULL, then an inline activation. */
typedef struct tile_ep {
    const float *br, *bc;
    ifd_act_kind kind; /* NONE, RELU, CLIP [lo, hi], LEAKY_RELU (slope lo) */
    float lo, hi;
} tile_ep;

typedef void (*micro_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                         int mr, int nr, float alpha, float beta, const float *pf,
                         int64_t pf_lines, const tile_ep *te);
/* y[0..n) += s * x[0..n) */
typedef void (*axpy_fn)(int64_t n, float s, const float *x, float *y);
typedef float (*dot_fn)(int64_t n, const float *x, const float *y);
/* Transposing pack: rows [0, rows) of src (row stride ld), columns [0, kc), into
 * dst[p * dst_stride + i] for i < lanes (rows past `rows` written as zero). */
typedef void (*pack_t_fn)(const float *src, int64_t ld, int rows, int64_t kc, float *dst,
                          int dst_stride, int lanes);

typedef struct kernel_desc {
    const char *name;
    int mr, nr;
    micro_fn micro;
    axpy_fn axpy;
    dot_fn dot;
    pack_t_fn pack_t; /* NULL: scalar packing */
    bool fused_ep;    /* micro applies a tile_ep (else it ignores it) */
    /* row[j] = act(row[j] + bc[j] + br) for j < n (bc may be NULL) */
    void (*row_ep)(float *row, int64_t n, const float *bc, float br, const ifd_activation *act);
} kernel_desc;

static void scalar_row_ep(float *restrict row, int64_t n, const float *restrict bc, float br,
                          const ifd_activation *act) {
    if (bc)
        for (int64_t j = 0; j < n; j++) row[j] += bc[j] + br;
    else if (br != 0)
        for (int64_t j = 0; j < n; j++) row[j] += br;
    if (act && act->kind != IFD_ACT_NONE) ifd_activation_apply(act, row, n);
}

/* The activations cheap enough to run inline in vector registers; others go to
 * ifd_activation_apply after the bias. */
static bool act_inline(const ifd_activation *act) {
    return !act || act->kind == IFD_ACT_NONE || act->kind == IFD_ACT_RELU ||
           act->kind == IFD_ACT_CLIP || act->kind == IFD_ACT_LEAKY_RELU;
}

struct ifd_sgemm_packed_b {
    const kernel_desc *kern;
    int64_t n, k;
    int64_t npad; /* n rounded up to NR */
    float *data;  /* per KC block of rows: npad/NR micro-panels of kc x NR */
};

struct ifd_sgemm_packed_a {
    const kernel_desc *kern;
    int64_t m, k;
    int64_t mpad; /* m rounded up to MR */
    float *data;  /* per KC block of columns: mpad/MR micro-panels of kc x MR */
};

/* ---- scalar kernel ---------------------------------------------------------------------- */

#define SC_MR 4
#define SC_NR 16

static void scalar_micro(int64_t kc, const float *restrict a, const float *restrict b,
                         float *restrict c, int64_t ldc, int mr, int nr, float alpha, float beta,
                         const float *pf, int64_t pf_lines, const tile_ep *te) {
    float acc[SC_MR][SC_NR];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kc; p++) {
        const float *bp = b + p * SC_NR, *ap = a + p * SC_MR;
        for (int i = 0; i < SC_MR; i++) {
            float ai = ap[i];
            for (int j = 0; j < SC_NR; j++) acc[i][j] += ai * bp[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        if (beta == 0)
            for (int j = 0; j < nr; j++) row[j] = alpha * acc[i][j];
        else
            for (int j = 0; j < nr; j++) row[j] = alpha * acc[i][j] + beta * row[j];
    }
}

static void scalar_axpy(int64_t n, float s, const float *restrict x, float *restrict y) {
    for (int64_t i = 0; i < n; i++) y[i] += s * x[i];
}

static float scalar_dot(int64_t n, const float *restrict x, const float *restrict y) {
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += x[i + j] * y[i + j];
    float t = 0;
    for (; i < n; i++) t += x[i] * y[i];
    for (int j = 0; j < 8; j++) t += s[j];
    return t;
}

/* ---- AVX2 + FMA: 6 x 16 ----------------------------------------------------------------- */

#define AVX2_MR 6
#define AVX2_NR 16

static inline __attribute__((always_inline, target("avx2,fma"))) void
avx2_tile(const int R, int64_t kc, const float *restrict a, const float *restrict b,
          float *restrict c, int64_t ldc, int nr, float alpha, float beta) {
    __m256 c0[AVX2_MR], c1[AVX2_MR];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < R; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        a += AVX2_MR;
        b += AVX2_NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (nr == AVX2_NR) {
#pragma GCC unroll 6
        for (int i = 0; i < R; i++) {
            float *row = c + i * ldc;
            __m256 r0 = _mm256_mul_ps(c0[i], va), r1 = _mm256_mul_ps(c1[i], va);
            if (beta != 0) {
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), r1);
            }
            _mm256_storeu_ps(row, r0);
            _mm256_storeu_ps(row + 8, r1);
        }
        return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) {
        float *row = c + i * ldc;
        __m256 r0 = _mm256_mul_ps(c0[i], va), r1 = _mm256_mul_ps(c1[i], va);
        if (beta != 0) {
            r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row, m0), r0);
            r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row + 8, m1), r1);
        }
        _mm256_maskstore_ps(row, m0, r0);
        _mm256_maskstore_ps(row + 8, m1, r1);
    }
}

__attribute__((target("avx2,fma"))) static void avx2_micro(int64_t kc, const float *a,
                                                           const float *b, float *c, int64_t ldc,
                                                           int mr, int nr, float alpha,
                                                           float beta, const float *pf,
                                                           int64_t pf_lines, const tile_ep *te) {
    switch (mr) {
    case 6: avx2_tile(6, kc, a, b, c, ldc, nr, alpha, beta); break;
    case 5: avx2_tile(5, kc, a, b, c, ldc, nr, alpha, beta); break;
    case 4: avx2_tile(4, kc, a, b, c, ldc, nr, alpha, beta); break;
    case 3: avx2_tile(3, kc, a, b, c, ldc, nr, alpha, beta); break;
    case 2: avx2_tile(2, kc, a, b, c, ldc, nr, alpha, beta); break;
    default: avx2_tile(1, kc, a, b, c, ldc, nr, alpha, beta); break;
    }
}

__attribute__((target("avx2,fma"))) static void avx2_axpy(int64_t n, float s,
                                                          const float *restrict x,
                                                          float *restrict y) {
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(y + i + 8,
                         _mm256_fmadd_ps(vs, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8)));
    }
    for (; i < n; i++) y[i] += s * x[i];
}

__attribute__((target("avx2,fma"))) static float avx2_dot(int64_t n, const float *x,
                                                          const float *y) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float t = _mm_cvtss_f32(h);
    for (; i < n; i++) t += x[i] * y[i];
    return t;
}

/* ---- AVX-512: 14 x 32 (28 zmm accumulators) --------------------------------------------- */

#define AVX512_MR 14
#define AVX512_NR 32

static inline __attribute__((always_inline, target("avx512f"))) void
avx512_tile(const int R, int64_t kc, const float *restrict a, const float *restrict b,
            float *restrict c, int64_t ldc, int nr, float alpha, float beta, const float *pf,
            int64_t pf_lines, const tile_ep *te) {
    __m512 c0[AVX512_MR], c1[AVX512_MR];
    int64_t pf_acc = 0;
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        /* pf_lines cache lines spread evenly over the kc steps */
        for (pf_acc += pf_lines; pf_acc >= kc; pf_acc -= kc, pf += 16)
            _mm_prefetch((const char *)pf, _MM_HINT_T0);
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
        for (int i = 0; i < R; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
        a += AVX512_MR;
        b += AVX512_NR;
    }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32   ? (__mmask16)0xffff
                   : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1)
                             : (__mmask16)0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) {
        float *row = c + i * ldc;
        __m512 r0 = _mm512_mul_ps(c0[i], va), r1 = _mm512_mul_ps(c1[i], va);
        if (beta != 0) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), r1);
        }
        if (te) { /* same operation order as avx512_row_ep */
            if (te->br) {
                __m512 v = _mm512_set1_ps(te->br[i]);
                r0 = _mm512_add_ps(r0, v);
                r1 = _mm512_add_ps(r1, v);
            }
            if (te->bc) {
                r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, te->bc));
                r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, te->bc + 16));
            }
            const __m512 zero = _mm512_setzero_ps(), lo = _mm512_set1_ps(te->lo);
            switch (te->kind) {
            case IFD_ACT_RELU:
                r0 = _mm512_max_ps(r0, zero);
                r1 = _mm512_max_ps(r1, zero);
                break;
            case IFD_ACT_CLIP: {
                const __m512 hi = _mm512_set1_ps(te->hi);
                r0 = _mm512_min_ps(_mm512_max_ps(r0, lo), hi);
                r1 = _mm512_min_ps(_mm512_max_ps(r1, lo), hi);
                break;
            }
            case IFD_ACT_LEAKY_RELU:
                r0 = _mm512_mask_mul_ps(r0, _mm512_cmp_ps_mask(r0, zero, _CMP_LT_OQ), r0, lo);
                r1 = _mm512_mask_mul_ps(r1, _mm512_cmp_ps_mask(r1, zero, _CMP_LT_OQ), r1, lo);
                break;
            default: break;
            }
        }
        _mm512_mask_storeu_ps(row, m0, r0);
        _mm512_mask_storeu_ps(row + 16, m1, r1);
    }
}

#define AVX512_CASE(R)                                                                         \
    case R: avx512_tile(R, kc, a, b, c, ldc, nr, alpha, beta, pf, pf_lines, te); break;

__attribute__((target("avx512f"))) static void avx512_micro(int64_t kc, const float *a,
                                                            const float *b, float *c,
                                                            int64_t ldc, int mr, int nr,
                                                            float alpha, float beta,
                                                            const float *pf, int64_t pf_lines, const tile_ep *te) {
    switch (mr) {
        AVX512_CASE(14)
        AVX512_CASE(13)
        AVX512_CASE(12)
        AVX512_CASE(11)
        AVX512_CASE(10)
        AVX512_CASE(9)
        AVX512_CASE(8)
        AVX512_CASE(7)
        AVX512_CASE(6)
        AVX512_CASE(5)
        AVX512_CASE(4)
        AVX512_CASE(3)
        AVX512_CASE(2)
    default: avx512_tile(1, kc, a, b, c, ldc, nr, alpha, beta, pf, pf_lines, te); break;
    }
}

__attribute__((target("avx512f"))) static void avx512_axpy(int64_t n, float s,
                                                           const float *restrict x,
                                                           float *restrict y) {
    __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
        _mm512_storeu_ps(y + i + 16, _mm512_fmadd_ps(vs, _mm512_loadu_ps(x + i + 16),
                                                     _mm512_loadu_ps(y + i + 16)));
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(vs, _mm512_maskz_loadu_ps(m, x + i),
                                              _mm512_maskz_loadu_ps(m, y + i)));
    }
}

__attribute__((target("avx512f"))) static float avx512_dot(int64_t n, const float *x,
                                                           const float *y) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), s3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}


__attribute__((target("avx512f"))) static void avx512_pack_t(const float *src, int64_t ld,
                                                             int rows, int64_t kc, float *dst,
                                                             int dst_stride, int lanes) {
    const __mmask16 store = (__mmask16)((1u << lanes) - 1);
    if (rows > 16) rows = 16;
    for (int64_t p = 0; p < kc; p += 16) {
        const int cols = (int)IFD_MIN((int64_t)16, kc - p);
        const __mmask16 load = (__mmask16)((1u << cols) - 1);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            r[i] = i < rows ? _mm512_maskz_loadu_ps(load, src + i * ld + p) : _mm512_setzero_ps();
        ifd_avx512_transpose16(r);
        float *d = dst + p * dst_stride;
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++)
            if (c < cols) _mm512_mask_storeu_ps(d + c * dst_stride, store, r[c]);
    }
}

__attribute__((target("avx512f"))) static void avx512_row_ep(float *row, int64_t n,
                                                             const float *bc, float br,
                                                             const ifd_activation *act) {
    const bool inl = act_inline(act);
    const ifd_act_kind kind = inl && act ? act->kind : IFD_ACT_NONE;
    const __m512 vbr = _mm512_set1_ps(br), zero = _mm512_setzero_ps();
    const __m512 lo = _mm512_set1_ps(act ? act->alpha : 0), hi = _mm512_set1_ps(act ? act->beta : 0);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row + j), vbr);
        if (bc) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, bc + j));
        switch (kind) {
        case IFD_ACT_RELU: x = _mm512_max_ps(x, zero); break;
        case IFD_ACT_CLIP: x = _mm512_min_ps(_mm512_max_ps(x, lo), hi); break;
        case IFD_ACT_LEAKY_RELU:
            x = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, lo);
            break;
        default: break;
        }
        _mm512_mask_storeu_ps(row + j, m, x);
    }
    if (!inl) ifd_activation_apply(act, row, n);
}

__attribute__((target("avx2,fma"))) static void avx2_row_ep(float *row, int64_t n,
                                                            const float *bc, float br,
                                                            const ifd_activation *act) {
    const bool inl = act_inline(act);
    const ifd_act_kind kind = inl && act ? act->kind : IFD_ACT_NONE;
    const __m256 vbr = _mm256_set1_ps(br), zero = _mm256_setzero_ps();
    const __m256 lo = _mm256_set1_ps(act ? act->alpha : 0), hi = _mm256_set1_ps(act ? act->beta : 0);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_add_ps(_mm256_loadu_ps(row + j), vbr);
        if (bc) x = _mm256_add_ps(x, _mm256_loadu_ps(bc + j));
        switch (kind) {
        case IFD_ACT_RELU: x = _mm256_max_ps(x, zero); break;
        case IFD_ACT_CLIP: x = _mm256_min_ps(_mm256_max_ps(x, lo), hi); break;
        case IFD_ACT_LEAKY_RELU:
            x = _mm256_blendv_ps(x, _mm256_mul_ps(x, lo), _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
            break;
        default: break;
        }
        _mm256_storeu_ps(row + j, x);
    }
    if (j < n) scalar_row_ep(row + j, n - j, bc ? bc + j : NULL, br, inl ? act : NULL);
    if (!inl) ifd_activation_apply(act, row, n);
}

/* ---- kernel selection -------------------------------------------------------------------- */

static const kernel_desc k_scalar = {"scalar", SC_MR, SC_NR, scalar_micro, scalar_axpy,
                                     scalar_dot, NULL, false, scalar_row_ep};
static const kernel_desc k_avx2 = {"avx2", AVX2_MR, AVX2_NR, avx2_micro, avx2_axpy, avx2_dot,
                                   NULL, false, avx2_row_ep};
static const kernel_desc k_avx512 = {"avx512", AVX512_MR, AVX512_NR, avx512_micro, avx512_axpy,
                                     avx512_dot, avx512_pack_t, true, avx512_row_ep};

static _Atomic(const kernel_desc *) g_kernel;

static bool cpu_has(const kernel_desc *k) {
    __builtin_cpu_init();
    if (k == &k_avx512) return __builtin_cpu_supports("avx512f");
    if (k == &k_avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return true;
}

static const kernel_desc *kernel_auto(void) {
    if (cpu_has(&k_avx512)) return &k_avx512;
    if (cpu_has(&k_avx2)) return &k_avx2;
    return &k_scalar;
}

static const kernel_desc *kernel_get(void) {
    const kernel_desc *k = atomic_load_explicit(&g_kernel, memory_order_acquire);
    if (IFD_UNLIKELY(!k)) {
        k = kernel_auto();
        atomic_store_explicit(&g_kernel, k, memory_order_release);
    }
    return k;
}

bool ifd_sgemm_force_kernel(const char *name) {
    const kernel_desc *k;
    if (!name || !strcmp(name, "auto"))
        k = kernel_auto();
    else if (!strcmp(name, "avx512"))
        k = &k_avx512;
    else if (!strcmp(name, "avx2"))
        k = &k_avx2;
    else if (!strcmp(name, "scalar"))
        k = &k_scalar;
    else
        return false;
    if (!cpu_has(k)) return false;
    atomic_store_explicit(&g_kernel, k, memory_order_release);
    return true;
}

const char *ifd_sgemm_kernel_name(void) { return kernel_get()->name; }

void ifd_sgemm_tile_shape(int *mr, int *nr) {
    const kernel_desc *k = kernel_get();
    *mr = k->mr;
    *nr = k->nr;
}

/* K is cut into equal blocks of at most KC_MAX (a short last block would re-read and re-write
 * C for little work). Packed operands use the same blocking. */
static int64_t kc_block(int64_t k) {
    int64_t nb = (k + KC_MAX - 1) / KC_MAX;
    return nb ? (k + nb - 1) / nb : 1;
}

/* ---- packing ----------------------------------------------------------------------------- */

/* One MR-row micro-panel from A stored K x M: each k gives `rows` contiguous elements. */
__attribute__((target("avx512f"))) static void avx512_pack_a_t(const float *src, int64_t lda,
                                                               int rows, int64_t kc,
                                                               float *restrict dst) {
    const __mmask16 m = (__mmask16)((1u << rows) - 1u);
    for (int64_t p = 0; p < kc; p++)
        _mm512_mask_storeu_ps(dst + p * AVX512_MR, (__mmask16)((1u << AVX512_MR) - 1u),
                              _mm512_maskz_loadu_ps(m, src + p * lda));
}

/* op(A)[i0:i0+mc, p0:p0+kc] into micro-panels of MR rows: panel r holds [kc][MR],
 * rows past mc zero. */
static void pack_a(const kernel_desc *kd, bool trans_a, const float *a, int64_t lda, int64_t i0,
                   int64_t mc, int64_t p0, int64_t kc, float *restrict dst) {
    const int MR = kd->mr;
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int rows = (int)IFD_MIN((int64_t)MR, mc - ir);
        if (trans_a && kd == &k_avx512) {
            avx512_pack_a_t(a + p0 * lda + i0 + ir, lda, rows, kc, dst);
        } else if (trans_a) {
            /* A is K x M: each k gives MR contiguous elements */
            const float *src = a + p0 * lda + i0 + ir;
            for (int64_t p = 0; p < kc; p++) {
                const float *s = src + p * lda;
                float *d = dst + p * MR;
                int i = 0;
                for (; i < rows; i++) d[i] = s[i];
                for (; i < MR; i++) d[i] = 0;
            }
        } else if (kd->pack_t && MR <= 16) {
            kd->pack_t(a + (i0 + ir) * lda + p0, lda, rows, kc, dst, MR, MR);
        } else {
            const float *src = a + (i0 + ir) * lda + p0;
            for (int i = 0; i < rows; i++) {
                const float *s = src + i * lda;
                float *d = dst + i;
                for (int64_t p = 0; p < kc; p++) d[p * MR] = s[p];
            }
            for (int i = rows; i < MR; i++)
                for (int64_t p = 0; p < kc; p++) dst[p * MR + i] = 0;
        }
        dst += MR * kc;
    }
}

/* op(B)[p0:p0+kc, j0:j0+nc] as one micro-panel [kc][NR] (nc <= NR), columns past nc zero. */
static void pack_b_panel(const kernel_desc *kd, bool trans_b, const float *b, int64_t ldb,
                         int64_t p0, int64_t kc, int64_t j0, int nc, float *restrict dst) {
    const int NR = kd->nr;
    if (!trans_b) {
        const float *src = b + p0 * ldb + j0;
        if (nc == NR) {
            /* the rows are ldb apart: prefetch the next panel's lines while copying this one,
             * since the hardware prefetcher does not follow hundreds of strided streams */
            if (NR == 32)
                for (int64_t p = 0; p < kc; p++) {
                    _mm_prefetch((const char *)(src + p * ldb + 32), _MM_HINT_T0);
                    _mm_prefetch((const char *)(src + p * ldb + 48), _MM_HINT_T0);
                    memcpy(dst + p * 32, src + p * ldb, 32 * sizeof(float));
                }
            else if (NR == 16)
                for (int64_t p = 0; p < kc; p++) memcpy(dst + p * 16, src + p * ldb, 16 * sizeof(float));
            else
                for (int64_t p = 0; p < kc; p++) memcpy(dst + p * NR, src + p * ldb, (size_t)NR * sizeof(float));
        } else {
            for (int64_t p = 0; p < kc; p++) {
                float *d = dst + p * NR;
                const float *s = src + p * ldb;
                int j = 0;
                for (; j < nc; j++) d[j] = s[j];
                for (; j < NR; j++) d[j] = 0;
            }
        }
    } else {
        /* B is N x K: column j of op(B) is row j of B, contiguous in k */
        const float *src = b + j0 * ldb + p0;
        if (kd->pack_t && NR % 16 == 0) {
            for (int h = 0; h < NR; h += 16)
                kd->pack_t(src + h * ldb, ldb, IFD_MAX(0, nc - h), kc, dst + h, NR, 16);
            return;
        }
        for (int j = 0; j < nc; j++) {
            const float *s = src + j * ldb;
            float *d = dst + j;
            for (int64_t p = 0; p < kc; p++) d[p * NR] = s[p];
        }
        for (int j = nc; j < NR; j++)
            for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = 0;
    }
}

/* ---- epilogue ---------------------------------------------------------------------------- */

static bool epilogue_active(const ifd_sgemm_epilogue *ep) {
    return ep && (ep->bias_col || ep->bias_row || (ep->act && ep->act->kind != IFD_ACT_NONE));
}

/* Rows [i0, i0+mr) x columns [j0, j0+nc) of C; c points at C[i0][j0]. */
static void apply_epilogue(const kernel_desc *kd, const ifd_sgemm_epilogue *ep, float *c,
                           int64_t ldc, int64_t i0, int64_t mr, int64_t j0, int64_t nc) {
    const ifd_activation *act = ep->act && ep->act->kind != IFD_ACT_NONE ? ep->act : NULL;
    const float *bc = ep->bias_col ? ep->bias_col + j0 : NULL;
    for (int64_t i = 0; i < mr; i++)
        kd->row_ep(c + i * ldc, nc, bc, ep->bias_row ? ep->bias_row[i0 + i] : 0.0f, act);
}

/* ---- the blocked driver ------------------------------------------------------------------ */

typedef struct gemm_job {
    const kernel_desc *kd;
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    const ifd_sgemm_packed_b *pb; /* or NULL: pack B on the fly */
    const ifd_sgemm_packed_a *pa; /* or NULL: pack A on the fly */
    ifd_sgemm_pack_a_fn pack_cb;  /* or NULL: pack A from a / lda */
    void *pack_arg;
    float *c;
    int64_t ldc;
    int64_t c_col0;               /* column of C that c points at (a column range of B) */
    const ifd_sgemm_epilogue *ep; /* NULL when inactive */
    bool split_n;                 /* threads split columns (else rows) */
} gemm_job;

static void gemm_block(const gemm_job *job, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const kernel_desc *kd = job->kd;
    const int MR = kd->mr, NR = kd->nr;
    const int64_t MC = (MC_ROWS_MAX / MR) * MR;
    float abuf[KC_MAX * MC_ROWS_MAX] __attribute__((aligned(64)));
    float bbuf[KC_MAX * NR_MAX] __attribute__((aligned(64)));
    const int64_t k = job->k;
    const int64_t kb = kc_block(k);
    const ifd_activation *act =
        job->ep && job->ep->act && job->ep->act->kind != IFD_ACT_NONE ? job->ep->act : NULL;
    const bool fuse = job->ep && kd->fused_ep && act_inline(act);
    for (int64_t pc = 0; pc < k; pc += kb) {
        const int64_t kc = IFD_MIN(kb, k - pc);
        const float beta = pc == 0 ? job->beta : 1.0f;
        const bool last = pc + kc == k;
        for (int64_t ic = i0; ic < i1; ic += MC) {
            const int64_t mc = IFD_MIN(MC, i1 - ic);
            const float *ap = abuf;
            if (job->pa)
                ap = job->pa->data + pc * job->pa->mpad + ic * kc;
            else if (job->pack_cb)
                job->pack_cb(job->pack_arg, ic, mc, pc, kc, MR, abuf);
            else
                pack_a(kd, job->trans_a, job->a, job->lda, ic, mc, pc, kc, abuf);
            for (int64_t jr = j0; jr < j1; jr += NR) {
                const int nc = (int)IFD_MIN((int64_t)NR, j1 - jr);
                const float *bp;
                if (job->pb) {
                    bp = job->pb->data + pc * job->pb->npad + (jr / NR) * kc * NR;
                } else {
                    pack_b_panel(kd, job->trans_b, job->b, job->ldb, pc, kc, jr, nc, bbuf);
                    bp = bbuf;
                }
                /* A constant B too big for the caches streams from memory once per use; its
                 * micro-panels are contiguous, so the calls on this panel fetch the next one
                 * in equal slices, keeping the stream going at the pace of the arithmetic. */
                tile_ep te = {0};
                if (fuse) {
                    te.bc = job->ep->bias_col ? job->ep->bias_col + jr : NULL;
                    te.kind = act ? act->kind : IFD_ACT_NONE;
                    te.lo = act ? act->alpha : 0;
                    te.hi = act ? act->beta : 0;
                }
                const int64_t nmicro = (mc + MR - 1) / MR;
                const float *next = NULL; /* the packed B panel used after this one */
                int64_t lines = 0;
                if (job->pb && jr + NR < j1) {
                    next = bp + kc * NR;
                    lines = kc * NR / 16;
                } else if (job->pb && ic + MC >= i1 && pc + kc < k) {
                    const int64_t kn = IFD_MIN(kb, k - pc - kc);
                    next = job->pb->data + (pc + kc) * job->pb->npad + (j0 / NR) * kn * NR;
                    lines = kn * NR / 16;
                }
                const int64_t slice = (lines + nmicro - 1) / nmicro;
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    const int mr = (int)IFD_MIN((int64_t)MR, mc - ir);
                    float *ct = job->c + (ic + ir) * job->ldc + (jr - job->c_col0);
                    const int64_t l0 = IFD_MIN(lines, (ir / MR) * slice);
                    te.br = fuse && job->ep->bias_row ? job->ep->bias_row + ic + ir : NULL;
                    kd->micro(kc, ap + ir * kc, bp, ct, job->ldc, mr, nc, job->alpha, beta,
                              next ? next + l0 * 16 : NULL, IFD_MIN(slice, lines - l0),
                              last && fuse ? &te : NULL);
                    if (last && job->ep && !fuse)
                        apply_epilogue(kd, job->ep, ct, job->ldc, ic + ir, mr, jr, nc);
                }
            }
        }
    }
}

static void gemm_task(void *arg, int64_t begin, int64_t end) {
    const gemm_job *job = arg;
    if (job->split_n) {
        int64_t nr = job->kd->nr;
        gemm_block(job, 0, job->m, begin * nr, IFD_MIN(end * nr, job->n));
    } else {
        int64_t mr = job->kd->mr;
        gemm_block(job, begin * mr, IFD_MIN(end * mr, job->m), 0, job->n);
    }
}

/* C = beta * C (or 0), then the epilogue: the k == 0 product. */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc,
                    const ifd_sgemm_epilogue *ep) {
    for (int64_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0)
            memset(row, 0, (size_t)n * sizeof(float));
        else if (beta != 1)
            for (int64_t j = 0; j < n; j++) row[j] *= beta;
        if (ep) apply_epilogue(kernel_get(), ep, row, ldc, i, 1, 0, n);
    }
}

static void run_job(gemm_job *job, ifd_thread_pool *pool) {
    const int64_t m = job->m, n = job->n, k = job->k;
    const int64_t tiles_m = (m + job->kd->mr - 1) / job->kd->mr;
    const int64_t tiles_n = (n + job->kd->nr - 1) / job->kd->nr;
    const double flops = 2.0 * (double)m * (double)n * (double)k;
    const int threads = ifd_thread_pool_size(pool);
    if (threads <= 1 || flops < 8e6) {
        gemm_block(job, 0, m, 0, n);
        return;
    }
    job->split_n = tiles_n >= tiles_m || tiles_m < 2;
    /* each chunk should carry at least ~1 MFLOP so the split pays for the extra packing */
    double per_tile = job->split_n ? 2.0 * (double)m * (double)k * job->kd->nr
                                   : 2.0 * (double)n * (double)k * job->kd->mr;
    int64_t min_chunk = (int64_t)(1e6 / per_tile) + 1;
    /* Every chunk packs the operand the threads share again (all of A for a split of the
     * columns, B per block of MC rows for a split of the rows). With A packed on the fly a
     * 32-column tile does about as much arithmetic per packed element as packing it costs, so
     * small chunks (the default 4 per thread: 2 tiles each for the 512 output channels of a
     * 7x7 conv) spend a good part of their time repacking. One chunk per thread then (a
     * thread that comes late has its chunk taken by another); operands packed beforehand
     * repack nothing and keep the small chunks. */
    if (job->split_n && !job->pa)
        min_chunk = IFD_MAX(min_chunk, (tiles_n + threads - 1) / threads);
    else if (!job->split_n && !job->pb)
        min_chunk = IFD_MAX(min_chunk, IFD_MIN((tiles_m + threads - 1) / threads,
                                               (int64_t)(MC_ROWS_MAX / job->kd->mr)));
    ifd_parallel_for(pool, job->split_n ? tiles_n : tiles_m, min_chunk, gemm_task, job);
}

/* ---- GEMV paths (M == 1 or N == 1): no packing, memory-bound ------------------------------ */

typedef struct gemv_job {
    const kernel_desc *kd;
    int64_t k;
    float alpha, beta;
    const float *x; /* the vector operand, contiguous, length k */
    const float *mat;
    int64_t ldm;
    float *y;
    int64_t incy;
    const ifd_sgemm_epilogue *ep;
    bool rows_are_outputs; /* y[i] = dot(mat row i, x), else y[j] = sum_p x[p] * mat[p][j] */
    int64_t xstride;       /* for the axpy form: x[p * xstride] */
    bool ep_rows;          /* epilogue index runs over rows of C (N == 1) */
} gemv_job;

static void gemv_task(void *arg, int64_t begin, int64_t end) {
    const gemv_job *g = arg;
    if (g->rows_are_outputs) {
        for (int64_t i = begin; i < end; i++) {
            float d = g->alpha * g->kd->dot(g->k, g->mat + i * g->ldm, g->x);
            float *yi = g->y + i * g->incy;
            *yi = g->beta == 0 ? d : d + g->beta * *yi;
            if (g->ep) {
                if (g->ep_rows)
                    apply_epilogue(g->kd, g->ep, yi, 1, i, 1, 0, 1);
                else
                    apply_epilogue(g->kd, g->ep, yi, 1, 0, 1, i, 1);
            }
        }
        return;
    }
    /* y[begin:end] (contiguous) accumulates rows of mat; done in column chunks so the
     * accumulator stays in L1 */
    for (int64_t j0 = begin; j0 < end; j0 += 2048) {
        int64_t nc = IFD_MIN((int64_t)2048, end - j0);
        float *y = g->y + j0;
        if (g->beta == 0)
            memset(y, 0, (size_t)nc * sizeof(float));
        else if (g->beta != 1)
            for (int64_t j = 0; j < nc; j++) y[j] *= g->beta;
        for (int64_t p = 0; p < g->k; p++)
            g->kd->axpy(nc, g->alpha * g->x[p * g->xstride], g->mat + p * g->ldm + j0, y);
        if (g->ep) apply_epilogue(g->kd, g->ep, y, 0, 0, 1, j0, nc);
    }
}

/* Returns false when the shape/layout is not a GEMV this path handles. */
static bool try_gemv(const kernel_desc *kd, bool trans_a, bool trans_b, int64_t m, int64_t n,
                     int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                     int64_t ldb, float beta, float *c, int64_t ldc,
                     const ifd_sgemm_epilogue *ep, ifd_thread_pool *pool) {
    gemv_job g = {.kd = kd, .k = k, .alpha = alpha, .beta = beta, .ep = ep};
    int64_t outputs;
    if (m == 1) {
        if (!trans_b) { /* y = x^T B: axpy over rows of B */
            g.x = a;
            g.xstride = trans_a ? lda : 1;
            g.mat = b;
            g.ldm = ldb;
            g.y = c;
            g.rows_are_outputs = false;
            outputs = n;
            int64_t min_chunk = IFD_MAX((int64_t)256, (int64_t)(262144 / (k + 1)));
            ifd_parallel_for(pool, outputs, min_chunk, gemv_task, &g);
            return true;
        }
        if (trans_a && lda != 1 && k > 1) return false;
        g.x = a; /* y[j] = dot(row j of B (N x K), a) */
        g.mat = b;
        g.ldm = ldb;
        g.y = c;
        g.incy = 1;
        g.rows_are_outputs = true;
        outputs = n;
    } else if (n == 1) {
        if (trans_a || (!trans_b && ldb != 1 && k > 1)) return false;
        g.x = b;
        g.mat = a;
        g.ldm = lda;
        g.y = c;
        g.incy = ldc;
        g.rows_are_outputs = true;
        g.ep_rows = true;
        outputs = m;
    } else {
        return false;
    }
    int64_t min_chunk = IFD_MAX((int64_t)16, (int64_t)(262144 / (k + 1)));
    ifd_parallel_for(pool, outputs, min_chunk, gemv_task, &g);
    return true;
}

/* ---- public entry points ------------------------------------------------------------------ */

void ifd_sgemm_ex(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                  int64_t ldc, const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool) {
    if (m <= 0 || n <= 0) return;
    const ifd_sgemm_epilogue *ep = epilogue_active(epilogue) ? epilogue : NULL;
    if (k <= 0) {
        scale_c(m, n, beta, c, ldc, ep);
        return;
    }
    const kernel_desc *kd = kernel_get();
    if ((m == 1 || n == 1) &&
        try_gemv(kd, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep, pool))
        return;
    gemm_job job = {.kd = kd, .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k,
                    .alpha = alpha, .beta = beta, .a = a, .lda = lda, .b = b, .ldb = ldb,
                    .c = c, .ldc = ldc, .ep = ep};
    run_job(&job, pool);
}

void ifd_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, ifd_thread_pool *pool) {
    ifd_sgemm_ex(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, pool);
}

ifd_status ifd_sgemm_pack_b(bool trans_b, int64_t n, int64_t k, const float *b, int64_t ldb,
                            ifd_sgemm_packed_b **out) {
    *out = NULL;
    if (n < 0 || k < 0) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "negative GEMM dimension");
    const kernel_desc *kd = kernel_get();
    ifd_sgemm_packed_b *p = ifd_calloc(1, sizeof *p);
    if (!p) goto oom;
    p->kern = kd;
    p->n = n;
    p->k = k;
    p->npad = (n + kd->nr - 1) / kd->nr * kd->nr;
    size_t count, bytes;
    if (!ifd_mul_size((size_t)p->npad, (size_t)k, &count) ||
        !ifd_mul_size(count, sizeof(float), &bytes))
        goto oom;
    if (bytes) {
        p->data = ifd_malloc_aligned(bytes);
        if (!p->data) goto oom;
    }
    const int64_t kb = kc_block(k);
    for (int64_t pc = 0; pc < k; pc += kb) {
        int64_t kc = IFD_MIN(kb, k - pc);
        for (int64_t jr = 0; jr < n; jr += kd->nr) {
            int nc = (int)IFD_MIN((int64_t)kd->nr, n - jr);
            pack_b_panel(kd, trans_b, b, ldb, pc, kc, jr, nc,
                         p->data + pc * p->npad + (jr / kd->nr) * kc * kd->nr);
        }
    }
    *out = p;
    return IFD_OK;
oom:
    ifd_free(p);
    return ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing a %lldx%lld GEMM operand",
                     (long long)k, (long long)n);
}

void ifd_sgemm_packed_b_free(ifd_sgemm_packed_b *packed) {
    if (!packed) return;
    ifd_free_aligned(packed->data);
    ifd_free(packed);
}

int64_t ifd_sgemm_packed_b_n(const ifd_sgemm_packed_b *packed) { return packed->n; }
int64_t ifd_sgemm_packed_b_k(const ifd_sgemm_packed_b *packed) { return packed->k; }

void ifd_sgemm_packed_ex(bool trans_a, int64_t m, const float *a, int64_t lda, float alpha,
                         const ifd_sgemm_packed_b *b, float beta, float *c, int64_t ldc,
                         const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool) {
    const int64_t n = b->n, k = b->k;
    if (m <= 0 || n <= 0) return;
    const ifd_sgemm_epilogue *ep = epilogue_active(epilogue) ? epilogue : NULL;
    if (k <= 0) {
        scale_c(m, n, beta, c, ldc, ep);
        return;
    }
    gemm_job job = {.kd = b->kern, .trans_a = trans_a, .m = m, .n = n, .k = k, .alpha = alpha,
                    .beta = beta, .a = a, .lda = lda, .pb = b, .c = c, .ldc = ldc, .ep = ep};
    run_job(&job, pool);
}

void ifd_sgemm_packed_cb_ex(int64_t m, ifd_sgemm_pack_a_fn pack, void *arg,
                            const ifd_sgemm_packed_b *b, float beta, float *c, int64_t ldc,
                            const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool) {
    const int64_t n = b->n, k = b->k;
    if (m <= 0 || n <= 0) return;
    const ifd_sgemm_epilogue *ep = epilogue_active(epilogue) ? epilogue : NULL;
    if (k <= 0) {
        scale_c(m, n, beta, c, ldc, ep);
        return;
    }
    gemm_job job = {.kd = b->kern, .m = m, .n = n, .k = k, .alpha = 1.0f, .beta = beta,
                    .pack_cb = pack, .pack_arg = arg, .pb = b, .c = c, .ldc = ldc, .ep = ep};
    run_job(&job, pool);
}

void ifd_sgemm_packed_cols(bool trans_a, int64_t m, const float *a, int64_t lda,
                           const ifd_sgemm_packed_b *b, int64_t j0, int64_t j1, float *c,
                           int64_t ldc) {
    const int64_t k = b->k;
    if (j1 > b->n) j1 = b->n;
    if (m <= 0 || j0 >= j1 || j0 < 0 || j0 % b->kern->nr != 0) return;
    if (k <= 0) {
        scale_c(m, j1 - j0, 0.0f, c, ldc, NULL);
        return;
    }
    gemm_job job = {.kd = b->kern, .trans_a = trans_a, .m = m, .n = j1, .k = k, .alpha = 1.0f,
                    .beta = 0.0f, .a = a, .lda = lda, .pb = b, .c = c, .ldc = ldc,
                    .c_col0 = j0};
    gemm_block(&job, 0, m, j0, j1);
}

int ifd_sgemm_packed_b_nr(const ifd_sgemm_packed_b *packed) { return packed->kern->nr; }

void ifd_sgemm_packed(bool trans_a, int64_t m, const float *a, int64_t lda, float alpha,
                      const ifd_sgemm_packed_b *b, float beta, float *c, int64_t ldc,
                      ifd_thread_pool *pool) {
    ifd_sgemm_packed_ex(trans_a, m, a, lda, alpha, b, beta, c, ldc, NULL, pool);
}

ifd_status ifd_sgemm_pack_a(bool trans_a, int64_t m, int64_t k, const float *a, int64_t lda,
                            ifd_sgemm_packed_a **out) {
    *out = NULL;
    if (m < 0 || k < 0) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "negative GEMM dimension");
    const kernel_desc *kd = kernel_get();
    ifd_sgemm_packed_a *p = ifd_calloc(1, sizeof *p);
    if (!p) goto oom;
    p->kern = kd;
    p->m = m;
    p->k = k;
    p->mpad = (m + kd->mr - 1) / kd->mr * kd->mr;
    size_t count, bytes;
    if (!ifd_mul_size((size_t)p->mpad, (size_t)k, &count) ||
        !ifd_mul_size(count, sizeof(float), &bytes))
        goto oom;
    if (bytes) {
        p->data = ifd_malloc_aligned(bytes);
        if (!p->data) goto oom;
    }
    const int64_t kb = kc_block(k);
    for (int64_t pc = 0; pc < k; pc += kb) {
        int64_t kc = IFD_MIN(kb, k - pc);
        pack_a(kd, trans_a, a, lda, 0, m, pc, kc, p->data + pc * p->mpad);
    }
    *out = p;
    return IFD_OK;
oom:
    ifd_free(p);
    return ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing a %lldx%lld GEMM operand",
                     (long long)m, (long long)k);
}

void ifd_sgemm_packed_a_free(ifd_sgemm_packed_a *packed) {
    if (!packed) return;
    ifd_free_aligned(packed->data);
    ifd_free(packed);
}

int64_t ifd_sgemm_packed_a_m(const ifd_sgemm_packed_a *packed) { return packed->m; }
int64_t ifd_sgemm_packed_a_k(const ifd_sgemm_packed_a *packed) { return packed->k; }

void ifd_sgemm_packed_a_ex(const ifd_sgemm_packed_a *a, bool trans_b, int64_t n, float alpha,
                           const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                           const ifd_sgemm_epilogue *epilogue, ifd_thread_pool *pool) {
    const int64_t m = a->m, k = a->k;
    if (m <= 0 || n <= 0) return;
    const ifd_sgemm_epilogue *ep = epilogue_active(epilogue) ? epilogue : NULL;
    if (k <= 0) {
        scale_c(m, n, beta, c, ldc, ep);
        return;
    }
    gemm_job job = {.kd = a->kern, .trans_b = trans_b, .m = m, .n = n, .k = k, .alpha = alpha,
                    .beta = beta, .b = b, .ldb = ldb, .pa = a, .c = c, .ldc = ldc, .ep = ep};
    run_job(&job, pool);
}
