/* Sparse-weight convolution kernel (see spconv.h for the format and the idea).
 *
 * Loop nest of one ifd_spconv_block call (n <= 64 positions, rows [m0, m1)):
 *   for each slab of IFD_SPCONV_SLAB rows:
 *     for each chunk of IFD_SPCONV_KC values of k:   (the chunk's rows of X, 32 KB, stay in L1)
 *       for each row i of the slab:
 *         acc[0..n) = (first chunk ? 0 : part[i]) + sum over row i's entries in the chunk:
 *                     w * X[k][0..n)
 *         last chunk ? y[i] = clamp(acc + bias[i]) : part[i] = acc
 * With a single chunk (K <= 128, e.g. every 1x1 convolution up to 128 input channels) the
 * partial sums never leave the registers. */
#include "kernels/spconv.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IFD_SPCONV_X86 1
#endif

struct ifd_spconv_w {
    int64_t m, k, nnz;
    int64_t chunks; /* max(1, ceil(k / KC)): an empty weight still has one (empty) chunk */
    int64_t *ptr;   /* [m * chunks + 1]: first entry of row i's chunk c at i * chunks + c */
    uint32_t *col;  /* [nnz] k index of each entry */
    float *val;     /* [nnz] */
};

/* One call's arguments, shared by the kernels. */
typedef struct block_args {
    const ifd_spconv_w *w;
    const float *x;
    size_t ldx;
    int n;
    const float *bias; /* row m0's, or NULL */
    float lo, hi;
    bool clamp;
    float *y; /* row m0's plane */
    int64_t ldy;
    float *part;
} block_args;

typedef void (*slab_fn)(const block_args *a, int64_t r0, int64_t r1, int64_t m0);

typedef struct spc_kernel {
    const char *name;
    slab_fn slab; /* rows [r0, r1) (absolute), r1 - r0 <= SLAB; m0 locates y and bias */
} spc_kernel;

static inline float clampf(float v, float lo, float hi) {
    v = v > lo ? v : lo;
    return v < hi ? v : hi;
}

/* ---- scalar ------------------------------------------------------------------------------ */

static void scalar_slab(const block_args *a, int64_t r0, int64_t r1, int64_t m0) {
    const ifd_spconv_w *w = a->w;
    const int n = a->n;
    for (int64_t ch = 0; ch < w->chunks; ch++) {
        const bool first = ch == 0, last = ch == w->chunks - 1;
        for (int64_t i = r0; i < r1; i++) {
            float acc[IFD_SPCONV_BLOCK];
            float *part = a->part + (i - r0) * IFD_SPCONV_BLOCK;
            if (first)
                memset(acc, 0, sizeof acc);
            else
                memcpy(acc, part, sizeof(float) * (size_t)n);
            for (int64_t p = w->ptr[i * w->chunks + ch]; p < w->ptr[i * w->chunks + ch + 1]; p++) {
                const float v = w->val[p], *x = a->x + (size_t)w->col[p] * a->ldx;
                for (int q = 0; q < n; q++) acc[q] += v * x[q];
            }
            if (!last) {
                memcpy(part, acc, sizeof(float) * (size_t)n);
                continue;
            }
            const float b = a->bias ? a->bias[i - m0] : 0.0f;
            float *y = a->y + (i - m0) * a->ldy;
            for (int q = 0; q < n; q++)
                y[q] = a->clamp ? clampf(acc[q] + b, a->lo, a->hi) : acc[q] + b;
        }
    }
}

#ifdef IFD_SPCONV_X86
/* ---- AVX2 + FMA: 8 lanes, up to 8 vectors per row ----------------------------------------- */

static inline __attribute__((always_inline, target("avx2,fma"))) __m256i avx2_mask(int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
}

/* NV vectors of 8 positions; the last is masked to the valid lanes (tail). */
static inline __attribute__((always_inline, target("avx2,fma"))) void
avx2_rows(const int NV, const block_args *a, int64_t r0, int64_t r1, int64_t m0) {
    const ifd_spconv_w *w = a->w;
    const __m256i tail = avx2_mask(a->n - 8 * (NV - 1));
    const __m256 lo = _mm256_set1_ps(a->lo), hi = _mm256_set1_ps(a->hi);
    const size_t ldx = a->ldx;
    for (int64_t ch = 0; ch < w->chunks; ch++) {
        const bool first = ch == 0, last = ch == w->chunks - 1;
        for (int64_t i = r0; i < r1; i++) {
            float *part = a->part + (i - r0) * IFD_SPCONV_BLOCK;
            __m256 s0[8], s1[4];
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) s0[v] = first ? _mm256_setzero_ps() : _mm256_load_ps(part + 8 * v);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) s1[v] = _mm256_setzero_ps();
            int64_t p = w->ptr[i * w->chunks + ch];
            const int64_t end = w->ptr[i * w->chunks + ch + 1];
            if (NV > 4) {
                /* NV independent chains already cover the FMA latency */
                for (; p < end; p++) {
                    const float *x0 = a->x + w->col[p] * ldx;
                    const __m256 w0 = _mm256_broadcast_ss(w->val + p);
#pragma GCC unroll 8
                    for (int v = 0; v < NV; v++) {
                        __m256 xv = v == NV - 1 ? _mm256_maskload_ps(x0 + 8 * v, tail)
                                                : _mm256_loadu_ps(x0 + 8 * v);
                        s0[v] = _mm256_fmadd_ps(w0, xv, s0[v]);
                    }
                }
            } else {
                for (; p + 2 <= end; p += 2) {
                    const float *x0 = a->x + w->col[p] * ldx, *x1 = a->x + w->col[p + 1] * ldx;
                    const __m256 w0 = _mm256_broadcast_ss(w->val + p);
                    const __m256 w1 = _mm256_broadcast_ss(w->val + p + 1);
#pragma GCC unroll 4
                    for (int v = 0; v < NV && v < 4; v++) {
                        __m256 xa = v == NV - 1 ? _mm256_maskload_ps(x0 + 8 * v, tail)
                                                : _mm256_loadu_ps(x0 + 8 * v);
                        __m256 xb = v == NV - 1 ? _mm256_maskload_ps(x1 + 8 * v, tail)
                                                : _mm256_loadu_ps(x1 + 8 * v);
                        s0[v] = _mm256_fmadd_ps(w0, xa, s0[v]);
                        s1[v] = _mm256_fmadd_ps(w1, xb, s1[v]);
                    }
                }
                if (p < end) {
                    const float *x0 = a->x + w->col[p] * ldx;
                    const __m256 w0 = _mm256_broadcast_ss(w->val + p);
#pragma GCC unroll 4
                    for (int v = 0; v < NV && v < 4; v++) {
                        __m256 xa = v == NV - 1 ? _mm256_maskload_ps(x0 + 8 * v, tail)
                                                : _mm256_loadu_ps(x0 + 8 * v);
                        s0[v] = _mm256_fmadd_ps(w0, xa, s0[v]);
                    }
                }
#pragma GCC unroll 4
                for (int v = 0; v < NV && v < 4; v++) s0[v] = _mm256_add_ps(s0[v], s1[v]);
            }
            if (!last) {
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++) _mm256_store_ps(part + 8 * v, s0[v]);
                continue;
            }
            const __m256 b = _mm256_set1_ps(a->bias ? a->bias[i - m0] : 0.0f);
            float *y = a->y + (i - m0) * a->ldy;
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) {
                __m256 r = _mm256_add_ps(s0[v], b);
                if (a->clamp) r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
                if (v == NV - 1)
                    _mm256_maskstore_ps(y + 8 * v, tail, r);
                else
                    _mm256_storeu_ps(y + 8 * v, r);
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void avx2_slab(const block_args *a, int64_t r0,
                                                          int64_t r1, int64_t m0) {
    switch ((a->n + 7) / 8) {
    case 8: avx2_rows(8, a, r0, r1, m0); break;
    case 7: avx2_rows(7, a, r0, r1, m0); break;
    case 6: avx2_rows(6, a, r0, r1, m0); break;
    case 5: avx2_rows(5, a, r0, r1, m0); break;
    case 4: avx2_rows(4, a, r0, r1, m0); break;
    case 3: avx2_rows(3, a, r0, r1, m0); break;
    case 2: avx2_rows(2, a, r0, r1, m0); break;
    default: avx2_rows(1, a, r0, r1, m0); break;
    }
}

/* ---- AVX-512: 16 lanes, up to 4 vectors per row ------------------------------------------- */

static inline __attribute__((always_inline, target("avx512f"))) void
avx512_rows(const int NV, const block_args *a, int64_t r0, int64_t r1, int64_t m0) {
    const ifd_spconv_w *w = a->w;
    const int tn = a->n - 16 * (NV - 1);
    const __mmask16 tail = tn >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << tn) - 1u);
    const __m512 lo = _mm512_set1_ps(a->lo), hi = _mm512_set1_ps(a->hi);
    const size_t ldx = a->ldx;
    for (int64_t ch = 0; ch < w->chunks; ch++) {
        const bool first = ch == 0, last = ch == w->chunks - 1;
        for (int64_t i = r0; i < r1; i++) {
            float *part = a->part + (i - r0) * IFD_SPCONV_BLOCK;
            __m512 s0[4], s1[4];
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                s0[v] = first ? _mm512_setzero_ps() : _mm512_load_ps(part + 16 * v);
                s1[v] = _mm512_setzero_ps();
            }
            int64_t p = w->ptr[i * w->chunks + ch];
            const int64_t end = w->ptr[i * w->chunks + ch + 1];
            /* two nonzeros per step into two sets of sums: 2 * NV chains cover the FMA
             * latency for NV < 4 too */
            for (; p + 2 <= end; p += 2) {
                const float *x0 = a->x + w->col[p] * ldx, *x1 = a->x + w->col[p + 1] * ldx;
                const __m512 w0 = _mm512_set1_ps(w->val[p]), w1 = _mm512_set1_ps(w->val[p + 1]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) {
                    __m512 xa = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, x0 + 16 * v)
                                            : _mm512_loadu_ps(x0 + 16 * v);
                    __m512 xb = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, x1 + 16 * v)
                                            : _mm512_loadu_ps(x1 + 16 * v);
                    s0[v] = _mm512_fmadd_ps(w0, xa, s0[v]);
                    s1[v] = _mm512_fmadd_ps(w1, xb, s1[v]);
                }
            }
            if (p < end) {
                const float *x0 = a->x + w->col[p] * ldx;
                const __m512 w0 = _mm512_set1_ps(w->val[p]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) {
                    __m512 xa = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, x0 + 16 * v)
                                            : _mm512_loadu_ps(x0 + 16 * v);
                    s0[v] = _mm512_fmadd_ps(w0, xa, s0[v]);
                }
            }
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) s0[v] = _mm512_add_ps(s0[v], s1[v]);
            if (!last) {
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) _mm512_store_ps(part + 16 * v, s0[v]);
                continue;
            }
            const __m512 b = _mm512_set1_ps(a->bias ? a->bias[i - m0] : 0.0f);
            float *y = a->y + (i - m0) * a->ldy;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                __m512 r = _mm512_add_ps(s0[v], b);
                if (a->clamp) r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
                _mm512_mask_storeu_ps(y + 16 * v, v == NV - 1 ? tail : (__mmask16)0xffff, r);
            }
        }
    }
}

__attribute__((target("avx512f"))) static void avx512_slab(const block_args *a, int64_t r0,
                                                           int64_t r1, int64_t m0) {
    switch ((a->n + 15) / 16) {
    case 4: avx512_rows(4, a, r0, r1, m0); break;
    case 3: avx512_rows(3, a, r0, r1, m0); break;
    case 2: avx512_rows(2, a, r0, r1, m0); break;
    default: avx512_rows(1, a, r0, r1, m0); break;
    }
}
#endif

/* ---- kernel selection ---------------------------------------------------------------------- */

static const spc_kernel k_scalar = {"scalar", scalar_slab};
#ifdef IFD_SPCONV_X86
static const spc_kernel k_avx2 = {"avx2", avx2_slab};
static const spc_kernel k_avx512 = {"avx512", avx512_slab};
#endif

static _Atomic(const spc_kernel *) g_kernel;

static bool cpu_has(const spc_kernel *k) {
#ifdef IFD_SPCONV_X86
    __builtin_cpu_init();
    if (k == &k_avx512) return __builtin_cpu_supports("avx512f");
    if (k == &k_avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return k == &k_scalar;
}

static const spc_kernel *kernel_get(void) {
    const spc_kernel *k = atomic_load_explicit(&g_kernel, memory_order_acquire);
    if (k) return k;
    k = &k_scalar;
#ifdef IFD_SPCONV_X86
    k = cpu_has(&k_avx512) ? &k_avx512 : cpu_has(&k_avx2) ? &k_avx2 : &k_scalar;
#endif
    atomic_store_explicit(&g_kernel, k, memory_order_release);
    return k;
}

bool ifd_spconv_force_kernel(const char *name) {
    const spc_kernel *k = NULL;
    if (!name || !strcmp(name, "auto")) {
        atomic_store_explicit(&g_kernel, NULL, memory_order_release);
        return true;
    }
    if (!strcmp(name, "scalar")) k = &k_scalar;
#ifdef IFD_SPCONV_X86
    else if (!strcmp(name, "avx512")) k = &k_avx512;
    else if (!strcmp(name, "avx2")) k = &k_avx2;
#endif
    if (!k || !cpu_has(k)) return false;
    atomic_store_explicit(&g_kernel, k, memory_order_release);
    return true;
}

const char *ifd_spconv_kernel_name(void) { return kernel_get()->name; }

/* ---- packing ------------------------------------------------------------------------------ */

double ifd_spconv_sparsity(int64_t m, int64_t k, const float *w, int64_t ldw) {
    if (m <= 0 || k <= 0) return 0.0;
    int64_t zeros = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t p = 0; p < k; p++) zeros += w[i * ldw + p] == 0.0f;
    return (double)zeros / ((double)m * (double)k);
}

void ifd_spconv_free(ifd_spconv_w *w) {
    if (!w) return;
    ifd_free(w->ptr);
    ifd_free(w->col);
    ifd_free(w->val);
    ifd_free(w);
}

ifd_status ifd_spconv_pack(int64_t m, int64_t k, const float *w, int64_t ldw, ifd_spconv_w **out) {
    return ifd_spconv_pack_mapped(m, k, w, ldw, NULL, out);
}

ifd_status ifd_spconv_pack_mapped(int64_t m, int64_t k, const float *w, int64_t ldw,
                                  const uint32_t *index, ifd_spconv_w **out) {
    *out = NULL;
    if (m < 0 || k < 0 || k > (int64_t)UINT32_MAX || ldw < k)
        return ifd_error(IFD_ERR_TOO_BIG, "sparse conv weight of %lld x %lld is too large",
                         (long long)m, (long long)k);
    ifd_spconv_w *s = ifd_calloc(1, sizeof *s);
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing a sparse conv weight");
    ifd_status st = IFD_OK;
    s->m = m;
    s->k = k;
    s->chunks = k > 0 ? (k + IFD_SPCONV_KC - 1) / IFD_SPCONV_KC : 1;
    int64_t nnz = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t p = 0; p < k; p++) nnz += w[i * ldw + p] != 0.0f;
    size_t cells, ptrs;
    if (!ifd_mul_size((size_t)nnz + 1, sizeof(float), &cells) ||
        !ifd_mul_size((size_t)m, (size_t)s->chunks, &ptrs) || !ifd_add_size(ptrs, 1, &ptrs) ||
        !ifd_mul_size(ptrs, sizeof(int64_t), &ptrs)) {
        st = ifd_error(IFD_ERR_TOO_BIG, "sparse conv weight too large");
        goto out;
    }
    s->nnz = nnz;
    s->col = ifd_malloc(cells);
    s->val = ifd_malloc(cells);
    s->ptr = ifd_malloc(ptrs);
    if (!s->col || !s->val || !s->ptr) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing a sparse conv weight");
        goto out;
    }
    int64_t q = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t c = 0; c < s->chunks; c++) {
            s->ptr[i * s->chunks + c] = q;
            int64_t end = IFD_MIN(k, (c + 1) * IFD_SPCONV_KC);
            for (int64_t p = c * IFD_SPCONV_KC; p < end; p++) {
                const float v = w[i * ldw + p];
                if (v != 0.0f) {
                    s->col[q] = index ? index[p] : (uint32_t)p;
                    s->val[q++] = v;
                }
            }
        }
    }
    s->ptr[m * s->chunks] = q;
out:
    if (st) {
        ifd_spconv_free(s);
        return st;
    }
    *out = s;
    return IFD_OK;
}

int64_t ifd_spconv_m(const ifd_spconv_w *w) { return w->m; }
int64_t ifd_spconv_k(const ifd_spconv_w *w) { return w->k; }
int64_t ifd_spconv_nnz(const ifd_spconv_w *w) { return w->nnz; }
size_t ifd_spconv_bytes(const ifd_spconv_w *w) {
    return sizeof *w + (size_t)w->nnz * (sizeof(uint32_t) + sizeof(float)) +
           sizeof(int64_t) * ((size_t)(w->m * w->chunks) + 1);
}

/* ---- the product ----------------------------------------------------------------------------- */

void ifd_spconv_block(const ifd_spconv_w *w, int64_t m0, int64_t m1, const float *x, int64_t ldx,
                      int64_t n, const float *bias, float lo, float hi, float *y, int64_t ldy,
                      float *part) {
    if (n <= 0 || m1 <= m0) return;
    const spc_kernel *kd = kernel_get();
    block_args a = {.w = w,
                    .x = x,
                    .ldx = (size_t)ldx,
                    .n = (int)IFD_MIN(n, (int64_t)IFD_SPCONV_BLOCK),
                    .bias = bias,
                    .lo = lo,
                    .hi = hi,
                    .clamp = lo > -INFINITY || hi < INFINITY,
                    .y = y,
                    .ldy = ldy,
                    .part = part};
    for (int64_t r0 = m0; r0 < m1; r0 += IFD_SPCONV_SLAB)
        kd->slab(&a, r0, IFD_MIN(m1, r0 + IFD_SPCONV_SLAB), m0);
}
