/* Sparse-weight GEMM (see spgemm.h for the format and the idea).
 *
 * Loop nest of one product, split into tasks = (block of MB rows of op(A), piece of columns):
 *   At[k][MB] = transpose of the row block (rows past m are zero), packed by the block's
 *     tasks together, SP_KC values of k at a time
 *   for each slab of SLAB output columns of the piece:
 *     for each chunk of KC values of k:      (At[chunk] is 32 KB: it stays in L1 while
 *       for each column j of the slab:        every column of the slab reads it)
 *         part[j][0..MB) += sum over the column's entries in the chunk: val * At[row][0..MB)
 *     for each group of 16 (8) columns, each 16 (8) rows: transpose part in registers,
 *       epilogue, store into C
 * Without the k chunks At (up to 512 KB) is read from L2 once per nonzero, and L2 bandwidth,
 * not the FMAs, bounds the kernel (measured: half the speed).
 *
 * Threads: one parallel region per product. Whole row blocks are the tasks when they divide
 * among the threads, so each core packs and reads only its own At; packing all blocks in a
 * region of its own and then handing out (block, 128-column slab) tasks made every core read
 * At packed by the other one, behind a second barrier, and left the BERT encoder's 128 x 256
 * x 256 products (2 blocks x 2 slabs) no faster on 2 threads than on 1 (column_pieces). */
#include "kernels/spgemm.h"
#include "kernels/transpose16.h"

#include <immintrin.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#define MB_MAX 64  /* rows per block (AVX-512: 4 x 16; AVX2: 8 x 8; scalar: 16) */
#define SP_KC 128  /* k per chunk (and per pack unit): At chunk of KC x MB floats = 32 KB */
#define SP_SLAB 128 /* output columns whose partial sums a task holds at once */

struct ifd_spgemm_b {
    int64_t n, k, nnz;
    int64_t chunks;   /* ceil(k / SP_KC) */
    bool regular;     /* 2:4 layout: column j holds entries [j*k/2, (j+1)*k/2) */
    int64_t *ptr;     /* [n * chunks + 1]: first entry of column j's chunk c at j*chunks + c;
                         NULL when regular */
    uint32_t *row;    /* [nnz] k index of each entry */
    float *val;       /* [nnz] */
};

/* Entries of column j whose k lies in chunk c. */
static inline void chunk_range(const ifd_spgemm_b *b, int64_t j, int64_t c, int64_t *beg,
                               int64_t *end) {
    if (b->regular) {
        const int64_t base = j * (b->k / 2);
        *beg = base + c * (SP_KC / 2);
        *end = base + IFD_MIN(b->k, (c + 1) * SP_KC) / 2;
    } else {
        *beg = b->ptr[j * b->chunks + c];
        *end = b->ptr[j * b->chunks + c + 1];
    }
}

/* What one task needs: rows [m0, m0 + rows) of C, columns [j0, j0 + cols). */
typedef struct tile_args {
    const ifd_spgemm_b *b;
    const float *at; /* At of the row block: [k][ld] */
    int ld;          /* padded rows of the block: nv * lanes */
    int nv;          /* vectors per column of the block */
    int rows;        /* valid rows (<= ld) */
    int64_t j0;
    int cols;
    float *part; /* [cols][ld] partial sums */
    float alpha, beta;
    float *c; /* C + m0 * ldc */
    int64_t ldc;
    const float *bias_col; /* [n] or NULL */
    const float *bias_row; /* bias_row + m0, or NULL */
    const ifd_activation *act; /* NULL when none */
} tile_args;

typedef void (*pack_fn)(bool trans_a, const float *a, int64_t lda, int64_t m0, int rows,
                        int64_t k, float *at, int ld);
typedef void (*tile_fn)(const tile_args *t);

typedef struct sp_kernel {
    const char *name;
    int lanes; /* floats per vector */
    int nv;    /* vectors per block column: MB = lanes * nv */
    int cw;    /* output columns per tile */
    pack_fn pack;
    tile_fn tile;
} sp_kernel;

static bool act_inline(const ifd_activation *act) {
    return !act || act->kind == IFD_ACT_NONE || act->kind == IFD_ACT_RELU ||
           act->kind == IFD_ACT_CLIP || act->kind == IFD_ACT_LEAKY_RELU;
}

/* ---- scalar ------------------------------------------------------------------------------ */

static void scalar_pack(bool trans_a, const float *a, int64_t lda, int64_t m0, int rows,
                        int64_t k, float *at, int ld) {
    for (int64_t p = 0; p < k; p++) {
        float *d = at + p * ld;
        for (int i = 0; i < rows; i++) d[i] = trans_a ? a[p * lda + m0 + i] : a[(m0 + i) * lda + p];
        for (int i = rows; i < ld; i++) d[i] = 0;
    }
}

static void scalar_tile(const tile_args *t) {
    const ifd_spgemm_b *b = t->b;
    const int ld = t->ld;
    memset(t->part, 0, sizeof(float) * (size_t)t->cols * (size_t)ld);
    for (int64_t ch = 0; ch < b->chunks; ch++)
        for (int c = 0; c < t->cols; c++) {
            float *acc = t->part + c * ld;
            int64_t beg, end;
            chunk_range(b, t->j0 + c, ch, &beg, &end);
            for (int64_t p = beg; p < end; p++) {
                const float w = b->val[p], *x = t->at + (size_t)b->row[p] * (size_t)ld;
                for (int i = 0; i < ld; i++) acc[i] += w * x[i];
            }
        }
    for (int c = 0; c < t->cols; c++) {
        const int64_t j = t->j0 + c;
        const float bc = t->bias_col ? t->bias_col[j] : 0.0f;
        for (int i = 0; i < t->rows; i++) {
            float *y = t->c + i * t->ldc + j;
            float v = t->alpha * t->part[c * ld + i];
            if (t->beta != 0) v += t->beta * *y;
            v += bc + (t->bias_row ? t->bias_row[i] : 0.0f);
            if (t->act) ifd_activation_apply(t->act, &v, 1);
            *y = v;
        }
    }
}

/* ---- AVX2 + FMA: 8 lanes, blocks of 32 rows, tiles of 8 columns ---------------------------- */

static inline __attribute__((always_inline, target("avx2,fma"))) void
avx2_transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < 2; g++) {
        u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma GCC unroll 8
    for (int e = 0; e < 4; e++) {
        r[e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x20);
        r[4 + e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x31);
    }
}

static inline __attribute__((always_inline, target("avx2,fma"))) __m256i avx2_mask(int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
}

__attribute__((target("avx2,fma"))) static void avx2_pack(bool trans_a, const float *a,
                                                          int64_t lda, int64_t m0, int rows,
                                                          int64_t k, float *at, int ld) {
    if (trans_a) {
        for (int64_t p = 0; p < k; p++) {
            const float *s = a + p * lda + m0;
            float *d = at + p * ld;
            for (int i = 0; i < ld; i += 8)
                _mm256_store_ps(d + i, _mm256_maskload_ps(s + i, avx2_mask(rows - i)));
        }
        return;
    }
    for (int r0 = 0; r0 < ld; r0 += 8) {
        for (int64_t p = 0; p < k; p += 8) {
            const int kv = (int)IFD_MIN((int64_t)8, k - p);
            const __m256i km = avx2_mask(kv);
            __m256 r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                r[i] = r0 + i < rows ? _mm256_maskload_ps(a + (m0 + r0 + i) * lda + p, km)
                                     : _mm256_setzero_ps();
            avx2_transpose8(r);
#pragma GCC unroll 16
            for (int e = 0; e < kv; e++) _mm256_store_ps(at + (p + e) * ld + r0, r[e]);
        }
    }
}

static inline __attribute__((always_inline, target("avx2,fma"))) void
avx2_columns(const int NV, const tile_args *t, int64_t ch) {
    const ifd_spgemm_b *b = t->b;
    const uint32_t *ri = b->row;
    const float *vv = b->val;
    const size_t ld = (size_t)t->ld;
    for (int c = 0; c < t->cols; c++) {
        int64_t p, end;
        chunk_range(b, t->j0 + c, ch, &p, &end);
        float *part = t->part + c * ld;
        __m256 s0[8], s1[4];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) s0[v] = ch ? _mm256_load_ps(part + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) s1[v] = _mm256_setzero_ps();
        if (NV > 4) {
            /* NV independent chains already cover the FMA latency */
            for (; p < end; p++) {
                const float *x0 = t->at + ri[p] * ld;
                const __m256 w0 = _mm256_broadcast_ss(vv + p);
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++)
                    s0[v] = _mm256_fmadd_ps(w0, _mm256_load_ps(x0 + 8 * v), s0[v]);
            }
        } else {
            for (; p + 2 <= end; p += 2) {
                const float *x0 = t->at + ri[p] * ld, *x1 = t->at + ri[p + 1] * ld;
                const __m256 w0 = _mm256_broadcast_ss(vv + p), w1 = _mm256_broadcast_ss(vv + p + 1);
#pragma GCC unroll 4
                for (int v = 0; v < NV && v < 4; v++) {
                    s0[v] = _mm256_fmadd_ps(w0, _mm256_load_ps(x0 + 8 * v), s0[v]);
                    s1[v] = _mm256_fmadd_ps(w1, _mm256_load_ps(x1 + 8 * v), s1[v]);
                }
            }
            if (p < end) {
                const float *x0 = t->at + ri[p] * ld;
                const __m256 w0 = _mm256_broadcast_ss(vv + p);
#pragma GCC unroll 4
                for (int v = 0; v < NV && v < 4; v++)
                    s0[v] = _mm256_fmadd_ps(w0, _mm256_load_ps(x0 + 8 * v), s0[v]);
            }
#pragma GCC unroll 4
            for (int v = 0; v < NV && v < 4; v++) s0[v] = _mm256_add_ps(s0[v], s1[v]);
        }
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) _mm256_store_ps(part + 8 * v, s0[v]);
    }
}

__attribute__((target("avx2,fma"))) static void avx2_store_group(const tile_args *t, int g,
                                                                 int cols);

__attribute__((target("avx2,fma"))) static void avx2_tile(const tile_args *t) {
    if (t->b->chunks == 0) memset(t->part, 0, sizeof(float) * (size_t)t->cols * (size_t)t->ld);
    for (int64_t ch = 0; ch < t->b->chunks; ch++) {
        switch (t->nv) {
        case 8: avx2_columns(8, t, ch); break;
        case 7: avx2_columns(7, t, ch); break;
        case 6: avx2_columns(6, t, ch); break;
        case 5: avx2_columns(5, t, ch); break;
        case 4: avx2_columns(4, t, ch); break;
        case 3: avx2_columns(3, t, ch); break;
        case 2: avx2_columns(2, t, ch); break;
        default: avx2_columns(1, t, ch); break;
        }
    }
    for (int g = 0; g < t->cols; g += 8)
        avx2_store_group(t, g, IFD_MIN(8, t->cols - g));
}

/* Columns [g, g + cols) of the task's partial sums, transposed into C with the epilogue. */
__attribute__((target("avx2,fma"))) static void avx2_store_group(const tile_args *t, int g,
                                                                   int cols) {
    const float *tile = t->part + (size_t)g * (size_t)t->ld;
    const int64_t j0 = t->j0 + g;
    const __m256i cm = avx2_mask(cols);
    const __m256 va = _mm256_set1_ps(t->alpha), vb = _mm256_set1_ps(t->beta);
    const __m256 zero = _mm256_setzero_ps();
    const bool inl = act_inline(t->act);
    const ifd_act_kind kind = inl && t->act ? t->act->kind : IFD_ACT_NONE;
    const __m256 lo = _mm256_set1_ps(t->act ? t->act->alpha : 0);
    const __m256 hi = _mm256_set1_ps(t->act ? t->act->beta : 0);
    const __m256 bc = t->bias_col ? _mm256_maskload_ps(t->bias_col + j0, cm) : zero;
#pragma GCC unroll 8
    for (int v = 0; v < t->nv; v++) {
        const int rows = IFD_MIN(8, t->rows - 8 * v);
        if (rows <= 0) break;
        __m256 r[8];
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
            r[c] = c < cols ? _mm256_load_ps(tile + c * t->ld + 8 * v) : zero;
        avx2_transpose8(r);
        for (int i = 0; i < rows; i++) {
            const int64_t m = 8 * v + i;
            float *y = t->c + m * t->ldc + j0;
            __m256 x = _mm256_mul_ps(r[i], va);
            if (t->beta != 0) x = _mm256_fmadd_ps(vb, _mm256_maskload_ps(y, cm), x);
            x = _mm256_add_ps(x, bc);
            if (t->bias_row) x = _mm256_add_ps(x, _mm256_set1_ps(t->bias_row[m]));
            switch (kind) {
            case IFD_ACT_RELU: x = _mm256_max_ps(x, zero); break;
            case IFD_ACT_CLIP: x = _mm256_min_ps(_mm256_max_ps(x, lo), hi); break;
            case IFD_ACT_LEAKY_RELU:
                x = _mm256_blendv_ps(x, _mm256_mul_ps(x, lo), _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
                break;
            default: break;
            }
            _mm256_maskstore_ps(y, cm, x);
            if (!inl) ifd_activation_apply(t->act, y, cols);
        }
    }
}

/* ---- AVX-512: 16 lanes, blocks of 64 rows, tiles of 16 columns ------------------------------ */


static inline __attribute__((always_inline, target("avx512f"))) __mmask16 avx512_mask(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

__attribute__((target("avx512f"))) static void avx512_pack(bool trans_a, const float *a,
                                                           int64_t lda, int64_t m0, int rows,
                                                           int64_t k, float *at, int ld) {
    if (trans_a) {
        for (int64_t p = 0; p < k; p++) {
            const float *s = a + p * lda + m0;
            float *d = at + p * ld;
            for (int i = 0; i < ld; i += 16)
                _mm512_store_ps(d + i, _mm512_maskz_loadu_ps(avx512_mask(rows - i), s + i));
        }
        return;
    }
    for (int r0 = 0; r0 < ld; r0 += 16) {
        for (int64_t p = 0; p < k; p += 16) {
            const int kv = (int)IFD_MIN((int64_t)16, k - p);
            const __mmask16 km = avx512_mask(kv);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = r0 + i < rows ? _mm512_maskz_loadu_ps(km, a + (m0 + r0 + i) * lda + p)
                                     : _mm512_setzero_ps();
            ifd_avx512_transpose16(r);
#pragma GCC unroll 16
            for (int e = 0; e < kv; e++) _mm512_store_ps(at + (p + e) * ld + r0, r[e]);
        }
    }
}

static inline __attribute__((always_inline, target("avx512f"))) void
avx512_columns(const int NV, const tile_args *t, int64_t ch) {
    const ifd_spgemm_b *b = t->b;
    const uint32_t *ri = b->row;
    const float *vv = b->val;
    const size_t ld = (size_t)t->ld;
    for (int c = 0; c < t->cols; c++) {
        int64_t p, end;
        chunk_range(b, t->j0 + c, ch, &p, &end);
        float *part = t->part + c * ld;
        __m512 s0[8], s1[4];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) s0[v] = ch ? _mm512_load_ps(part + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) s1[v] = _mm512_setzero_ps();
        if (NV > 4) {
            /* NV independent chains already cover the FMA latency */
            for (; p < end; p++) {
                const float *x0 = t->at + ri[p] * ld;
                const __m512 w0 = _mm512_set1_ps(vv[p]);
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++)
                    s0[v] = _mm512_fmadd_ps(w0, _mm512_load_ps(x0 + 16 * v), s0[v]);
            }
        } else {
            for (; p + 2 <= end; p += 2) {
                const float *x0 = t->at + ri[p] * ld, *x1 = t->at + ri[p + 1] * ld;
                const __m512 w0 = _mm512_set1_ps(vv[p]), w1 = _mm512_set1_ps(vv[p + 1]);
#pragma GCC unroll 4
                for (int v = 0; v < NV && v < 4; v++) {
                    s0[v] = _mm512_fmadd_ps(w0, _mm512_load_ps(x0 + 16 * v), s0[v]);
                    s1[v] = _mm512_fmadd_ps(w1, _mm512_load_ps(x1 + 16 * v), s1[v]);
                }
            }
            if (p < end) {
                const float *x0 = t->at + ri[p] * ld;
                const __m512 w0 = _mm512_set1_ps(vv[p]);
#pragma GCC unroll 4
                for (int v = 0; v < NV && v < 4; v++)
                    s0[v] = _mm512_fmadd_ps(w0, _mm512_load_ps(x0 + 16 * v), s0[v]);
            }
#pragma GCC unroll 4
            for (int v = 0; v < NV && v < 4; v++) s0[v] = _mm512_add_ps(s0[v], s1[v]);
        }
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) _mm512_store_ps(part + 16 * v, s0[v]);
    }
}

__attribute__((target("avx512f"))) static void avx512_store_group(const tile_args *t, int g,
                                                                  int cols);

__attribute__((target("avx512f"))) static void avx512_tile(const tile_args *t) {
    if (t->b->chunks == 0) memset(t->part, 0, sizeof(float) * (size_t)t->cols * (size_t)t->ld);
    for (int64_t ch = 0; ch < t->b->chunks; ch++) {
        switch (t->nv) {
        case 4: avx512_columns(4, t, ch); break;
        case 3: avx512_columns(3, t, ch); break;
        case 2: avx512_columns(2, t, ch); break;
        default: avx512_columns(1, t, ch); break;
        }
    }
    for (int g = 0; g < t->cols; g += 16)
        avx512_store_group(t, g, IFD_MIN(16, t->cols - g));
}

/* Columns [g, g + cols) of the task's partial sums, transposed into C with the epilogue. */
__attribute__((target("avx512f"))) static void avx512_store_group(const tile_args *t, int g,
                                                                   int cols) {
    const float *tile = t->part + (size_t)g * (size_t)t->ld;
    const int64_t j0 = t->j0 + g;
    const __mmask16 cm = avx512_mask(cols);
    const __m512 va = _mm512_set1_ps(t->alpha), vb = _mm512_set1_ps(t->beta);
    const __m512 zero = _mm512_setzero_ps();
    const bool inl = act_inline(t->act);
    const ifd_act_kind kind = inl && t->act ? t->act->kind : IFD_ACT_NONE;
    const __m512 lo = _mm512_set1_ps(t->act ? t->act->alpha : 0);
    const __m512 hi = _mm512_set1_ps(t->act ? t->act->beta : 0);
    const __m512 bc = t->bias_col ? _mm512_maskz_loadu_ps(cm, t->bias_col + j0) : zero;
    for (int v = 0; v < t->nv; v++) {
        const int rows = IFD_MIN(16, t->rows - 16 * v);
        if (rows <= 0) break;
        __m512 r[16];
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++)
            r[c] = c < cols ? _mm512_load_ps(tile + c * t->ld + 16 * v) : zero;
        ifd_avx512_transpose16(r);
        for (int i = 0; i < rows; i++) {
            const int64_t m = 16 * v + i;
            float *y = t->c + m * t->ldc + j0;
            __m512 x = _mm512_mul_ps(r[i], va);
            if (t->beta != 0) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(cm, y), x);
            x = _mm512_add_ps(x, bc);
            if (t->bias_row) x = _mm512_add_ps(x, _mm512_set1_ps(t->bias_row[m]));
            switch (kind) {
            case IFD_ACT_RELU: x = _mm512_max_ps(x, zero); break;
            case IFD_ACT_CLIP: x = _mm512_min_ps(_mm512_max_ps(x, lo), hi); break;
            case IFD_ACT_LEAKY_RELU:
                x = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, lo);
                break;
            default: break;
            }
            _mm512_mask_storeu_ps(y, cm, x);
            if (!inl) ifd_activation_apply(t->act, y, cols);
        }
    }
}

/* ---- kernel selection ---------------------------------------------------------------------- */

static const sp_kernel k_scalar = {"scalar", 16, 1, 16, scalar_pack, scalar_tile};
static const sp_kernel k_avx2 = {"avx2", 8, 8, 8, avx2_pack, avx2_tile};
static const sp_kernel k_avx512 = {"avx512", 16, 4, 16, avx512_pack, avx512_tile};

static _Atomic(const sp_kernel *) g_kernel;

static bool cpu_has(const sp_kernel *k) {
    __builtin_cpu_init();
    if (k == &k_avx512) return __builtin_cpu_supports("avx512f");
    if (k == &k_avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return true;
}

static const sp_kernel *kernel_get(void) {
    const sp_kernel *k = atomic_load_explicit(&g_kernel, memory_order_acquire);
    if (k) return k;
    k = cpu_has(&k_avx512) ? &k_avx512 : cpu_has(&k_avx2) ? &k_avx2 : &k_scalar;
    atomic_store_explicit(&g_kernel, k, memory_order_release);
    return k;
}

bool ifd_spgemm_force_kernel(const char *name) {
    const sp_kernel *k = NULL;
    if (!name || !strcmp(name, "auto")) {
        atomic_store_explicit(&g_kernel, NULL, memory_order_release);
        return true;
    }
    if (!strcmp(name, "avx512")) k = &k_avx512;
    else if (!strcmp(name, "avx2")) k = &k_avx2;
    else if (!strcmp(name, "scalar")) k = &k_scalar;
    if (!k || !cpu_has(k)) return false;
    atomic_store_explicit(&g_kernel, k, memory_order_release);
    return true;
}

const char *ifd_spgemm_kernel_name(void) { return kernel_get()->name; }

/* ---- packing the weight -------------------------------------------------------------------- */

static inline float b_at(bool trans_b, const float *b, int64_t ldb, int64_t p, int64_t j) {
    return trans_b ? b[j * ldb + p] : b[p * ldb + j];
}

double ifd_spgemm_sparsity(bool trans_b, int64_t n, int64_t k, const float *b, int64_t ldb) {
    if (n <= 0 || k <= 0) return 0.0;
    int64_t zeros = 0;
    for (int64_t r = 0; r < (trans_b ? n : k); r++)
        for (int64_t c = 0; c < (trans_b ? k : n); c++) zeros += b[r * ldb + c] == 0.0f;
    return (double)zeros / ((double)n * (double)k);
}

/* Every group of 4 consecutive k (k a multiple of 4) holds at most 2 nonzeros. */
static bool is_2_4(bool trans_b, int64_t n, int64_t k, const float *b, int64_t ldb) {
    if (k % 4 != 0 || k == 0) return false;
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p += 4) {
            int nz = 0;
#pragma GCC unroll 8
            for (int e = 0; e < 4; e++) nz += b_at(trans_b, b, ldb, p + e, j) != 0.0f;
            if (nz > 2) return false;
        }
    return true;
}

void ifd_spgemm_free(ifd_spgemm_b *b) {
    if (!b) return;
    ifd_free(b->ptr);
    ifd_free(b->row);
    ifd_free(b->val);
    ifd_free(b);
}

ifd_status ifd_spgemm_pack(bool trans_b, int64_t n, int64_t k, const float *b, int64_t ldb,
                           ifd_spgemm_b **out) {
    *out = NULL;
    if (n < 0 || k < 0 || k > (int64_t)UINT32_MAX)
        return ifd_error(IFD_ERR_TOO_BIG, "sparse weight of %lld x %lld is too large", (long long)k,
                         (long long)n);
    ifd_spgemm_b *s = ifd_calloc(1, sizeof *s);
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing a sparse weight");
    s->n = n;
    s->k = k;
    s->chunks = (k + SP_KC - 1) / SP_KC;
    int64_t nnz = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p++) nnz += b_at(trans_b, b, ldb, p, j) != 0.0f;
    /* the 2:4 layout stores k/2 entries per column: only worth it near 50% */
    s->regular = is_2_4(trans_b, n, k, b, ldb) && nnz >= n * k * 2 / 5;
    if (s->regular) nnz = n * (k / 2);
    size_t cells, ptrs;
    ifd_status st = IFD_OK;
    if (!ifd_mul_size((size_t)nnz + 1, sizeof(float), &cells) ||
        !ifd_mul_size((size_t)n, (size_t)s->chunks, &ptrs) || !ifd_add_size(ptrs, 1, &ptrs) ||
        !ifd_mul_size(ptrs, sizeof(int64_t), &ptrs)) {
        st = ifd_error(IFD_ERR_TOO_BIG, "sparse weight too large");
        goto out;
    }
    s->nnz = nnz;
    s->row = ifd_malloc(cells);
    s->val = ifd_malloc(cells);
    s->ptr = s->regular ? NULL : ifd_malloc(ptrs);
    if (!s->row || !s->val || (!s->regular && !s->ptr)) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing a sparse weight");
        goto out;
    }
    int64_t q = 0;
    for (int64_t j = 0; j < n; j++) {
        for (int64_t p = 0; p < k; p += s->regular ? 4 : 1) {
            if (!s->regular) {
                if (p % SP_KC == 0) s->ptr[j * s->chunks + p / SP_KC] = q;
                float v = b_at(trans_b, b, ldb, p, j);
                if (v != 0.0f) {
                    s->row[q] = (uint32_t)p;
                    s->val[q++] = v;
                }
                continue;
            }
            /* two entries per group of 4; a zero value fills a group with fewer nonzeros */
            int stored = 0;
            for (int e = 0; e < 4 && stored < 2; e++) {
                float v = b_at(trans_b, b, ldb, p + e, j);
                if (v != 0.0f) {
                    s->row[q] = (uint32_t)(p + e);
                    s->val[q++] = v;
                    stored++;
                }
            }
            for (; stored < 2; stored++) {
                s->row[q] = (uint32_t)p;
                s->val[q++] = 0.0f;
            }
        }
    }
    if (!s->regular) s->ptr[n * s->chunks] = q;
out:
    if (st) {
        ifd_spgemm_free(s);
        return st;
    }
    *out = s;
    return IFD_OK;
}

int64_t ifd_spgemm_n(const ifd_spgemm_b *b) { return b->n; }
int64_t ifd_spgemm_k(const ifd_spgemm_b *b) { return b->k; }
int64_t ifd_spgemm_nnz(const ifd_spgemm_b *b) { return b->nnz; }
bool ifd_spgemm_is_2_4(const ifd_spgemm_b *b) { return b->regular; }
size_t ifd_spgemm_bytes(const ifd_spgemm_b *b) {
    return sizeof *b + (size_t)b->nnz * (sizeof(uint32_t) + sizeof(float)) +
           (b->regular ? 0 : sizeof(int64_t) * ((size_t)(b->n * b->chunks) + 1));
}

/* ---- the driver ---------------------------------------------------------------------------- */

static int block_rows(const sp_kernel *kd) { return kd->lanes * kd->nv; }

/* Below this many multiply-adds (about 5 us on one core) a task is not worth handing to another
 * thread: waking it and moving At between the cores' caches cost more than it saves. */
#define SP_MIN_TASK_WORK 100000.0

/* Per row block: how the packing of At is shared by the tasks that read it. Packing is split
 * into units of SP_KC values of k; a task claims units with `next` until none are left, then
 * waits for `done` to reach the count. A task only ever waits for units another running task
 * has claimed, so a single thread running every task in turn (no workers, or a nested call)
 * never waits at all. One cache line each, so that blocks do not share one. */
typedef struct block_sync {
    atomic_int next, done;
    char pad[64 - 2 * sizeof(atomic_int)];
} block_sync;

/* Scratch layout: the block_syncs ([blocks], a cache line each), At of every row block
 * ([blocks][k][MB]), then the partial sums of every task: task (block, piece) has
 * [min(piece columns, SP_SLAB)][MB], and pieces * min(piece columns, SP_SLAB) <= n + SP_SLAB
 * however the columns are split (pieces are never narrower than needed to cover n). */
size_t ifd_spgemm_scratch_bytes(const ifd_spgemm_b *b, int64_t m) {
    const sp_kernel *kd = kernel_get();
    const int64_t mb = block_rows(kd);
    if (m <= 0 || b->n <= 0) return 0;
    const size_t blocks = (size_t)((m + mb - 1) / mb);
    size_t sync, at, part, bytes;
    if (!ifd_mul_size(blocks, sizeof(block_sync), &sync) ||
        !ifd_mul_size(blocks, (size_t)b->k, &at) ||
        !ifd_mul_size(at, (size_t)mb * sizeof(float), &at) ||
        !ifd_add_size((size_t)b->n, SP_SLAB, &part) || !ifd_mul_size(part, blocks, &part) ||
        !ifd_mul_size(part, (size_t)mb * sizeof(float), &part) ||
        !ifd_add_size(sync, at, &bytes) || !ifd_add_size(bytes, part, &bytes))
        return SIZE_MAX;
    return bytes;
}

typedef struct sp_job {
    const sp_kernel *kd;
    bool trans_a;
    const float *a;
    int64_t lda, m;
    float alpha, beta;
    const ifd_spgemm_b *b;
    float *c;
    int64_t ldc;
    const ifd_sgemm_epilogue *ep;
    block_sync *sync; /* [blocks] */
    float *at;        /* blocks of [k][MB] */
    float *part;      /* per task: [part_cols][MB] */
    int64_t pieces;   /* tasks per row block, each a range of piece_cols columns */
    int64_t piece_cols, part_cols;
} sp_job;

/* geometry of row block i: first row, valid rows, vectors */
static void block_geom(const sp_job *j, int64_t i, int64_t *m0, int *rows, int *nv) {
    const int mb = block_rows(j->kd);
    *m0 = i * mb;
    *rows = (int)IFD_MIN((int64_t)mb, j->m - *m0);
    *nv = (*rows + j->kd->lanes - 1) / j->kd->lanes;
}

static inline void spin_pause(int spins) {
    if (spins < 4096)
        _mm_pause();
    else
        sched_yield(); /* the packer was preempted: let it run */
}

/* Make At of row block bi ready: pack the units nobody has claimed yet, then wait for those
 * that other tasks are packing. */
static void pack_block(const sp_job *j, int64_t bi, float *at, int64_t m0, int rows, int ld) {
    block_sync *s = &j->sync[bi];
    const int64_t k = j->b->k;
    const int units = (int)((k + SP_KC - 1) / SP_KC);
    for (;;) {
        const int u = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
        if (u >= units) break;
        const int64_t p0 = (int64_t)u * SP_KC, kk = IFD_MIN((int64_t)SP_KC, k - p0);
        /* the pack kernels index op(A) from k = 0: start them at this unit's column */
        const float *a = j->trans_a ? j->a + p0 * j->lda : j->a + p0;
        j->kd->pack(j->trans_a, a, j->lda, m0, rows, kk, at + p0 * ld, ld);
        atomic_fetch_add_explicit(&s->done, 1, memory_order_release);
    }
    for (int spins = 0; atomic_load_explicit(&s->done, memory_order_acquire) < units; spins++)
        spin_pause(spins);
}

/* Task = (row block, piece of columns): pack (a share of) the block's At, then compute the
 * piece slab by slab into C. Tasks run in block-major order, so on one thread a block's At is
 * packed just before its columns read it. */
static void tile_task(void *arg, int64_t begin, int64_t end) {
    const sp_job *j = arg;
    const int mb = block_rows(j->kd);
    const ifd_activation *act =
        j->ep && j->ep->act && j->ep->act->kind != IFD_ACT_NONE ? j->ep->act : NULL;
    for (int64_t task = begin; task < end; task++) {
        const int64_t bi = task / j->pieces, pc = task % j->pieces;
        int64_t m0;
        int rows, nv;
        block_geom(j, bi, &m0, &rows, &nv);
        const int ld = nv * j->kd->lanes;
        float *at = j->at + bi * j->b->k * mb;
        pack_block(j, bi, at, m0, rows, ld);
        const int64_t jend = IFD_MIN(j->b->n, (pc + 1) * j->piece_cols);
        for (int64_t j0 = pc * j->piece_cols; j0 < jend; j0 += SP_SLAB) {
            tile_args t = {
                .b = j->b,
                .at = at,
                .ld = ld,
                .nv = nv,
                .rows = rows,
                .j0 = j0,
                .cols = (int)IFD_MIN((int64_t)SP_SLAB, jend - j0),
                .part = j->part + task * j->part_cols * mb,
                .alpha = j->alpha,
                .beta = j->beta,
                .c = j->c + m0 * j->ldc,
                .ldc = j->ldc,
                .bias_col = j->ep ? j->ep->bias_col : NULL,
                .bias_row = j->ep && j->ep->bias_row ? j->ep->bias_row + m0 : NULL,
                .act = act,
            };
            j->kd->tile(&t);
        }
    }
}

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        const int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Column pieces per row block. Whole blocks make the best tasks: a block's At is packed and
 * read by one core only. But when the blocks do not divide evenly among the threads (M = 64:
 * one block for two threads; 3 blocks for 2) a thread would idle for a whole block, so each
 * block is cut into pieces of columns, enough that blocks * pieces is a multiple of the
 * threads. Many blocks (>= 4 per thread) balance well enough whole. */
static int64_t column_pieces(int64_t blocks, int64_t n, int cw, int threads, double work) {
    if (threads <= 1 || blocks >= 4 * (int64_t)threads) return 1;
    int64_t pieces = threads / gcd64(blocks, threads);
    pieces = IFD_MIN(pieces, (n + cw - 1) / cw);
    /* fewer, larger tasks when the product is small */
    while (pieces > 1 && work / (double)(blocks * pieces) < SP_MIN_TASK_WORK) pieces--;
    return pieces;
}

void ifd_spgemm_run(bool trans_a, int64_t m, const float *a, int64_t lda, float alpha,
                    const ifd_spgemm_b *b, float beta, float *c, int64_t ldc,
                    const ifd_sgemm_epilogue *epilogue, void *scratch, ifd_thread_pool *pool) {
    if (m <= 0 || b->n <= 0) return;
    const sp_kernel *kd = kernel_get();
    const int64_t mb = block_rows(kd);
    const int64_t blocks = (m + mb - 1) / mb;
    /* multiply-adds, rows padded to whole vectors as the kernel computes them */
    const int64_t m_pad = (m + kd->lanes - 1) / kd->lanes * kd->lanes;
    const double work = (double)m_pad * (double)b->nnz;
    const int threads = ifd_thread_pool_size(pool);
    int64_t pieces = column_pieces(blocks, b->n, kd->cw, threads, work);
    /* piece width: whole store groups, and as even as that allows */
    int64_t piece_cols = (b->n + pieces - 1) / pieces;
    piece_cols = (piece_cols + kd->cw - 1) / kd->cw * kd->cw;
    pieces = (b->n + piece_cols - 1) / piece_cols;
    block_sync *sync = scratch;
    sp_job job = {.kd = kd, .trans_a = trans_a, .a = a, .lda = lda, .m = m, .alpha = alpha,
                  .beta = beta, .b = b, .c = c, .ldc = ldc, .ep = epilogue, .sync = sync,
                  .at = (float *)(sync + blocks),
                  .pieces = pieces, .piece_cols = piece_cols,
                  .part_cols = IFD_MIN(piece_cols, (int64_t)SP_SLAB)};
    job.part = job.at + blocks * b->k * mb;
    for (int64_t i = 0; i < blocks; i++) {
        atomic_init(&sync[i].next, 0);
        atomic_init(&sync[i].done, 0);
    }
    const int64_t tasks = blocks * pieces;
    /* tasks of at least SP_MIN_TASK_WORK, so small products stay on one thread */
    const int64_t min_chunk =
        (int64_t)IFD_MIN((double)tasks, SP_MIN_TASK_WORK / (work / (double)tasks) + 1);
    ifd_parallel_for(pool, tasks, min_chunk, tile_task, &job);
}
