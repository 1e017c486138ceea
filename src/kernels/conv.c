/* im2col / col2im over any number of spatial dimensions and the direct depthwise kernel.
 * Hot loops run in AVX-512 or AVX2+FMA variants picked once by CPUID, with scalar fallbacks. */
#include "kernels/conv.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "kernels/transpose16.h"
#define IFD_CONV_X86 1
#endif

enum { LEVEL_UNSET = -1, LEVEL_SCALAR = 0, LEVEL_AVX2 = 1, LEVEL_AVX512 = 2 };
static int g_level = LEVEL_UNSET;

static int simd_level(void) {
    int level = __atomic_load_n(&g_level, __ATOMIC_RELAXED);
    if (level != LEVEL_UNSET) return level;
    level = LEVEL_SCALAR;
#if defined(IFD_CONV_FORCE_LEVEL) /* testing the narrower paths on a wider machine */
    level = IFD_CONV_FORCE_LEVEL;
#elif defined(IFD_CONV_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        level = LEVEL_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        level = LEVEL_AVX2;
#endif
    __atomic_store_n(&g_level, level, __ATOMIC_RELAXED);
    return level;
}

bool ifd_conv_geom_finish(ifd_conv_geom *g) {
    int64_t in = 1, out = 1, k = 1;
    for (int i = 0; i < g->nd; i++)
        if (!ifd_mul_i64(in, g->in[i], &in) || !ifd_mul_i64(out, g->out[i], &out) ||
            !ifd_mul_i64(k, g->k[i], &k))
            return false;
    g->in_size = in;
    g->out_size = out;
    g->k_size = k;
    return true;
}

/* Column positions [lo, hi) within [0, nout) whose image index o*s + off lies in [0, n). */
static void valid_range(int64_t off, int64_t s, int64_t n, int64_t nout, int64_t *lo,
                        int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    if (h > nout) h = nout;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

static void unravel(int nd, const int64_t *dims, int64_t index, int64_t *coord) {
    for (int i = nd - 1; i >= 0; i--) {
        coord[i] = dims[i] ? index % dims[i] : 0;
        index = dims[i] ? index / dims[i] : 0;
    }
}

/* Offset in the image of the outer (all but last) dims for column coords oc and kernel
 * coords kc; -1 when any lies in the padding. */
static int64_t outer_offset(const ifd_conv_geom *g, const int64_t *istride, const int64_t *oc,
                            const int64_t *kc) {
    int64_t base = 0;
    for (int i = 0; i < g->nd - 1; i++) {
        int64_t ii = oc[i] * g->s[i] - g->pb[i] + kc[i] * g->d[i];
        if (ii < 0 || ii >= g->in[i]) return -1;
        base += ii * istride[i];
    }
    return base;
}

static void image_strides(const ifd_conv_geom *g, int64_t *istride) {
    int last = g->nd - 1;
    istride[last] = 1;
    for (int i = last - 1; i >= 0; i--) istride[i] = istride[i + 1] * g->in[i + 1];
}

#ifdef IFD_CONV_X86
/* Lanes l in [0, 16) with a <= l < b. */
static inline __mmask16 lane_range(int64_t a, int64_t b) {
    a = a < 0 ? 0 : a > 16 ? 16 : a;
    b = b < 0 ? 0 : b > 16 ? 16 : b;
    if (b <= a) return 0;
    return (__mmask16)((((uint32_t)1 << b) - 1u) & ~(((uint32_t)1 << a) - 1u));
}

/* 2-D, unit column stride: each output-row segment is one masked copy, the padding lanes
 * come out of the masked loads as zeros (masked-off lanes are never read). */
__attribute__((target("avx512f"))) static void im2col_2d_s1_avx512(const ifd_conv_geom *g,
                                                                  const float *img,
                                                                  int64_t channels,
                                                                  int64_t p_begin,
                                                                  int64_t p_count, float *col) {
    int64_t H = g->in[0], W = g->in[1], OW = g->out[1], KH = g->k[0], KW = g->k[1];
    int64_t kk = KH * KW, rows = channels * kk, oh0 = p_begin / OW, ow0 = p_begin % OW;
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / kk, kh = (r % kk) / KW, kw = r % KW;
        const float *imgc = img + c * H * W;
        float *dst = col + r * p_count;
        int64_t offw = kw * g->d[1] - g->pb[1];
        int64_t lo = offw < 0 ? -offw : 0, hi = IFD_MIN(OW, W - offw);
        int64_t oh = oh0, ow = ow0, rem = p_count;
        while (rem > 0) {
            int64_t seg = IFD_MIN(OW - ow, rem), ih = oh * g->s[0] - g->pb[0] + kh * g->d[0];
            bool row_ok = ih >= 0 && ih < H;
            /* element j of the segment reads imgc[ih*W + ow + j + offw] when valid */
            const float *src = imgc + (row_ok ? ih * W : 0);
            for (int64_t j = 0; j < seg; j += 16) {
                int64_t n = IFD_MIN(seg - j, 16), o = ow + j;
                __mmask16 mn = (__mmask16)(((uint32_t)1 << n) - 1u);
                __mmask16 mv = row_ok ? (__mmask16)(mn & lane_range(lo - o, hi - o)) : 0;
                __m512 v = mv ? _mm512_maskz_loadu_ps(mv, src + (o + offw)) : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(dst + j, mn, v);
            }
            dst += seg;
            rem -= seg;
            ow = 0;
            oh++;
        }
    }
}
#endif

void ifd_conv_im2col(const ifd_conv_geom *g, const float *img, int64_t channels,
                     int64_t p_begin, int64_t p_count, float *col) {
#ifdef IFD_CONV_X86
    if (g->nd == 2 && g->s[1] == 1 && p_count > 0 && simd_level() == LEVEL_AVX512) {
        im2col_2d_s1_avx512(g, img, channels, p_begin, p_count, col);
        return;
    }
#endif
    int last = g->nd - 1;
    int64_t istride[IFD_CONV_MAX_ND], o0[IFD_CONV_MAX_ND], oc[IFD_CONV_MAX_ND],
        kc[IFD_CONV_MAX_ND];
    image_strides(g, istride);
    unravel(g->nd, g->out, p_begin, o0);
    int64_t rows = channels * g->k_size, s_last = g->s[last];
    for (int64_t r = 0; r < rows; r++) {
        const float *imgc = img + (r / g->k_size) * g->in_size;
        unravel(g->nd, g->k, r % g->k_size, kc);
        float *dst = col + r * p_count;
        memcpy(oc, o0, sizeof(int64_t) * (size_t)g->nd);
        int64_t off = kc[last] * g->d[last] - g->pb[last], vlo, vhi;
        valid_range(off, s_last, g->in[last], g->out[last], &vlo, &vhi);
        int64_t rem = p_count;
        while (rem > 0) {
            int64_t a = oc[last], seg = IFD_MIN(g->out[last] - a, rem), b = a + seg;
            int64_t base = outer_offset(g, istride, oc, kc);
            if (base < 0) {
                memset(dst, 0, sizeof(float) * (size_t)seg);
            } else {
                const float *row = imgc + base + off;
                int64_t lo = IFD_MIN(IFD_MAX(vlo, a), b), hi = IFD_MAX(IFD_MIN(vhi, b), lo);
                if (lo > a) memset(dst, 0, sizeof(float) * (size_t)(lo - a));
                if (s_last == 1)
                    memcpy(dst + (lo - a), row + lo, sizeof(float) * (size_t)(hi - lo));
                else
                    for (int64_t o = lo; o < hi; o++) dst[o - a] = row[o * s_last];
                if (b > hi) memset(dst + (hi - a), 0, sizeof(float) * (size_t)(b - hi));
            }
            dst += seg;
            rem -= seg;
            oc[last] += seg;
            if (oc[last] == g->out[last]) {
                oc[last] = 0;
                for (int i = last - 1; i >= 0; i--) {
                    if (++oc[i] < g->out[i]) break;
                    oc[i] = 0;
                }
            }
        }
    }
}

/* ---- row helpers ------------------------------------------------------------------------- */

#ifdef IFD_CONV_X86
/* Even elements of 16 consecutive floats at p (p[15] is read). */
__attribute__((target("avx2,fma"))) static inline __m256 load_even_avx2(const float *p) {
    __m256 ev = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
}

__attribute__((target("avx2,fma"))) static int64_t add_row_avx2(float *restrict dst,
                                                                const float *restrict src,
                                                                int64_t n, int64_t stride) {
    int64_t i = 0;
    if (stride == 1)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
    else if (stride == 2)
        for (; i + 8 < n; i += 8) /* src[2i + 15] lies before the element of output i + 8 */
            _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), load_even_avx2(src + 2 * i)));
    return i;
}

__attribute__((target("avx2,fma"))) static int64_t max_row_avx2(float *restrict dst,
                                                                const float *restrict src,
                                                                int64_t n, int64_t stride) {
    int64_t i = 0;
    if (stride == 1)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_max_ps(_mm256_loadu_ps(src + i), _mm256_loadu_ps(dst + i)));
    else if (stride == 2)
        for (; i + 8 < n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_max_ps(load_even_avx2(src + 2 * i), _mm256_loadu_ps(dst + i)));
    return i;
}

__attribute__((target("avx2,fma"))) static int64_t sum_avx2(const float *x, int64_t n, double *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    double s = 0;
    for (int l = 0; l < 8; l++) s += lanes[l];
    *out = s;
    return i;
}

__attribute__((target("avx2,fma"))) static int64_t max_avx2(const float *x, int64_t n, float *out) {
    __m256 a0 = _mm256_set1_ps(-INFINITY), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_max_ps(_mm256_loadu_ps(x + i), a0);
        a1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), a1);
    }
    float lanes[8], m = -INFINITY;
    _mm256_storeu_ps(lanes, _mm256_max_ps(a0, a1));
    for (int l = 0; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
    *out = m;
    return i;
}
#endif

void ifd_conv_row_add(float *restrict dst, const float *restrict src, int64_t n, int64_t stride) {
    int64_t i = 0;
#ifdef IFD_CONV_X86
    if (n >= 8 && simd_level() >= LEVEL_AVX2) i = add_row_avx2(dst, src, n, stride);
#endif
    for (; i < n; i++) dst[i] += src[i * stride];
}

void ifd_conv_row_max(float *restrict dst, const float *restrict src, int64_t n, int64_t stride) {
    int64_t i = 0;
#ifdef IFD_CONV_X86
    if (n >= 8 && simd_level() >= LEVEL_AVX2) i = max_row_avx2(dst, src, n, stride);
#endif
    for (; i < n; i++) {
        float v = src[i * stride];
        dst[i] = v > dst[i] ? v : dst[i];
    }
}

double ifd_conv_sum(const float *x, int64_t n) {
    double s = 0;
    int64_t i = 0;
#ifdef IFD_CONV_X86
    if (n >= 32 && simd_level() >= LEVEL_AVX2) i = sum_avx2(x, n, &s);
#endif
    for (; i < n; i++) s += x[i];
    return s;
}

float ifd_conv_max(const float *x, int64_t n) {
    float m = -INFINITY;
    int64_t i = 0;
#ifdef IFD_CONV_X86
    if (n >= 16 && simd_level() >= LEVEL_AVX2) i = max_avx2(x, n, &m);
#endif
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

void ifd_conv_col2im(const ifd_conv_geom *g, const float *col, int64_t channels, float *img) {
    int last = g->nd - 1;
    int64_t istride[IFD_CONV_MAX_ND], oc[IFD_CONV_MAX_ND], kc[IFD_CONV_MAX_ND];
    image_strides(g, istride);
    int64_t rows = channels * g->k_size, s_last = g->s[last], n_last = g->out[last];
    if (n_last == 0) return;
    int64_t outer = g->out_size / n_last;
    for (int64_t r = 0; r < rows; r++) {
        float *imgc = img + (r / g->k_size) * g->in_size;
        unravel(g->nd, g->k, r % g->k_size, kc);
        const float *src = col + r * g->out_size;
        int64_t off = kc[last] * g->d[last] - g->pb[last], lo, hi;
        valid_range(off, s_last, g->in[last], n_last, &lo, &hi);
        memset(oc, 0, sizeof oc);
        for (int64_t q = 0; q < outer; q++, src += n_last) {
            int64_t base = outer_offset(g, istride, oc, kc);
            if (base >= 0 && hi > lo) {
                float *dst = imgc + base + off;
                if (s_last == 1)
                    ifd_conv_row_add(dst + lo, src + lo, hi - lo, 1);
                else
                    for (int64_t o = lo; o < hi; o++) dst[o * s_last] += src[o];
            }
            for (int i = last - 1; i >= 0; i--) {
                if (++oc[i] < g->out[i]) break;
                oc[i] = 0;
            }
        }
    }
}

/* ---- depthwise --------------------------------------------------------------------------- */

/* One output row: rows[v] are the input rows under the kernel rows wr[v] that fall inside
 * the image; interior columns [a, b) need no bounds checks. */
typedef struct dw_row {
    int nv;
    const float *rows[16];
    const float *wr[16];
    int64_t kw, dw, sw, pl, w_in, ow_n;
    float bias, lo, hi;
} dw_row;

static float dw_pixel(const dw_row *r, int64_t ow) {
    float acc = r->bias;
    int64_t start = ow * r->sw - r->pl;
    for (int v = 0; v < r->nv; v++)
        for (int64_t k = 0; k < r->kw; k++) {
            int64_t iw = start + k * r->dw;
            if (iw >= 0 && iw < r->w_in) acc += r->wr[v][k] * r->rows[v][iw];
        }
    return acc;
}

static void dw_interior_scalar(const dw_row *r, int64_t a, int64_t b, float *y) {
    for (int64_t ow = a; ow < b; ow++) {
        float acc = r->bias;
        const float *base = NULL;
        for (int v = 0; v < r->nv; v++) {
            base = r->rows[v] + ow * r->sw - r->pl;
            for (int64_t k = 0; k < r->kw; k++) acc += r->wr[v][k] * base[k * r->dw];
        }
        y[ow] = acc;
    }
}

#ifdef IFD_CONV_X86
__attribute__((target("avx2,fma"))) static int64_t dw_interior_avx2(const dw_row *r, int64_t a,
                                                                    int64_t b, float *y) {
    int64_t ow = a;
    if (r->sw == 1) {
        for (; ow + 16 <= b; ow += 16) {
            __m256 acc0 = _mm256_set1_ps(r->bias), acc1 = acc0;
            for (int v = 0; v < r->nv; v++) {
                const float *q = r->rows[v] + ow - r->pl, *wp = r->wr[v];
                for (int64_t k = 0; k < r->kw; k++, q += r->dw) {
                    __m256 wv = _mm256_broadcast_ss(wp + k);
                    acc0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(q), acc0);
                    acc1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(q + 8), acc1);
                }
            }
            _mm256_storeu_ps(y + ow, acc0);
            _mm256_storeu_ps(y + ow + 8, acc1);
        }
        for (; ow + 8 <= b; ow += 8) {
            __m256 acc0 = _mm256_set1_ps(r->bias);
            for (int v = 0; v < r->nv; v++) {
                const float *q = r->rows[v] + ow - r->pl, *wp = r->wr[v];
                for (int64_t k = 0; k < r->kw; k++, q += r->dw)
                    acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + k), _mm256_loadu_ps(q), acc0);
            }
            _mm256_storeu_ps(y + ow, acc0);
        }
    } else if (r->sw == 2) {
        /* 8 outputs read 15 inputs: stop while the 16th still lies under the next output */
        for (; ow + 9 <= b; ow += 8) {
            __m256 acc0 = _mm256_set1_ps(r->bias);
            for (int v = 0; v < r->nv; v++) {
                const float *q = r->rows[v] + 2 * ow - r->pl, *wp = r->wr[v];
                for (int64_t k = 0; k < r->kw; k++, q += r->dw) {
                    __m256 lo = _mm256_loadu_ps(q), hi = _mm256_loadu_ps(q + 8);
                    __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                    ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev),
                                                                _MM_SHUFFLE(3, 1, 2, 0)));
                    acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + k), ev, acc0);
                }
            }
            _mm256_storeu_ps(y + ow, acc0);
        }
    }
    return ow;
}

/* min(max(v, lo), hi) keeping NaN (the max/min instructions return their second operand
 * when either is NaN) */
#define CLAMP512(v, lo, hi) _mm512_min_ps(hi, _mm512_max_ps(lo, v))

/* A whole output row for column stride 1 or 2. Blocks inside the interior [a, b) load
 * unmasked; border blocks use masked loads, which read zeros wherever a tap falls in the
 * padding (masked-off lanes are never read). */
__attribute__((target("avx512f"))) static void dw_row_avx512(const dw_row *r, int64_t a,
                                                            int64_t b, float *y) {
    int64_t OW = r->ow_n, W = r->w_in, KW = r->kw, dw = r->dw, pl = r->pl;
    const __m512 vlo = _mm512_set1_ps(r->lo), vhi = _mm512_set1_ps(r->hi);
    __mmask16 m0[16], m1[16];
    if (r->sw == 1) {
        for (int64_t ow = 0; ow < OW;) {
            if (ow >= a && ow + 32 <= b) {
                __m512 acc0 = _mm512_set1_ps(r->bias), acc1 = acc0;
                for (int v = 0; v < r->nv; v++) {
                    const float *q = r->rows[v] + ow - pl, *wp = r->wr[v];
                    for (int64_t k = 0; k < KW; k++, q += dw) {
                        __m512 wv = _mm512_set1_ps(wp[k]);
                        acc0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q), acc0);
                        acc1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q + 16), acc1);
                    }
                }
                _mm512_storeu_ps(y + ow, CLAMP512(acc0, vlo, vhi));
                _mm512_storeu_ps(y + ow + 16, CLAMP512(acc1, vlo, vhi));
                ow += 32;
                continue;
            }
            __mmask16 sm = lane_range(0, OW - ow);
            for (int64_t k = 0; k < KW; k++) {
                int64_t base = ow - pl + k * dw;
                m0[k] = (__mmask16)(sm & lane_range(-base, W - base));
            }
            __m512 acc = _mm512_set1_ps(r->bias);
            for (int v = 0; v < r->nv; v++) {
                const float *q = r->rows[v] + ow - pl, *wp = r->wr[v];
                for (int64_t k = 0; k < KW; k++, q += dw)
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(wp[k]), _mm512_maskz_loadu_ps(m0[k], q), acc);
            }
            _mm512_mask_storeu_ps(y + ow, sm, CLAMP512(acc, vlo, vhi));
            ow += 16;
        }
    } else {
        const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6,
                                              4, 2, 0);
        for (int64_t ow = 0; ow < OW; ow += 16) {
            int64_t n = IFD_MIN(16, OW - ow), need = 2 * n - 1; /* inputs the outputs read */
            __mmask16 sm = lane_range(0, n);
            bool inside = ow >= a && ow + 16 <= b;
            for (int64_t k = 0; k < KW; k++) {
                int64_t base = 2 * ow - pl + k * dw;
                m0[k] = inside ? (__mmask16)0xffff
                               : (__mmask16)(lane_range(0, need) & lane_range(-base, W - base));
                m1[k] = inside ? (__mmask16)0x7fff
                               : (__mmask16)(lane_range(0, need - 16) &
                                             lane_range(-base - 16, W - base - 16));
            }
            __m512 acc = _mm512_set1_ps(r->bias);
            for (int v = 0; v < r->nv; v++) {
                const float *q = r->rows[v] + 2 * ow - pl, *wp = r->wr[v];
                for (int64_t k = 0; k < KW; k++, q += dw) {
                    __m512 lo = _mm512_maskz_loadu_ps(m0[k], q);
                    __m512 hi = _mm512_maskz_loadu_ps(m1[k], q + 16);
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(wp[k]), _mm512_permutex2var_ps(lo, even, hi),
                                          acc);
                }
            }
            _mm512_mask_storeu_ps(y + ow, sm, CLAMP512(acc, vlo, vhi));
        }
    }
}
#endif

static void dw_plane(const ifd_conv_geom *g, const float *x, const float *w, float bias,
                     float lo, float hi, float *y);

bool ifd_conv_depthwise_masks(const ifd_conv_geom *g, uint16_t *masks) {
    if (g->nd != 2 || simd_level() != LEVEL_AVX512) return false;
    int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1], KH = g->k[0],
            KW = g->k[1], taps = KH * KW, L = OH * OW, nb = (L + 15) / 16;
    if (g->s[0] != 1 || g->s[1] != 1 || OW != W || L == 0 || KH > 16 || KW > 16 ||
        nb * taps > IFD_CONV_DW_MASKS)
        return false;
    int64_t oh = 0, ow = 0; /* coordinates of the block's first output */
    for (int64_t b = 0; b < nb; b++) {
        int64_t lh[16], lw[16];
        for (int l = 0; l < 16; l++) {
            lh[l] = b * 16 + l < L ? oh : -(INT64_C(1) << 40); /* past the end: never valid */
            lw[l] = ow;
            if (++ow == OW) ow = 0, oh++;
        }
        for (int64_t t = 0; t < taps; t++) {
            int64_t dh = (t / KW) * g->d[0] - g->pb[0], dwc = (t % KW) * g->d[1] - g->pb[1];
            uint32_t m = 0;
            for (int l = 0; l < 16; l++)
                m |= (uint32_t)((uint64_t)(lh[l] + dh) < (uint64_t)H &&
                                (uint64_t)(lw[l] + dwc) < (uint64_t)W) << l;
            masks[b * taps + t] = (uint16_t)m;
        }
    }
    return true;
}

#ifdef IFD_CONV_X86
/* The flattened path: the input offset of every tap is affine in the flattened output
 * index (stride 1, OW == W), so 16 outputs take one masked load per tap. */
__attribute__((target("avx512f"))) static void dw_flat_avx512(const ifd_conv_geom *g,
                                                             int64_t m_begin, int64_t m_end,
                                                             int64_t mper, const float *x,
                                                             const float *w, const float *bias,
                                                             float lo, float hi,
                                                             const uint16_t *masks, float *y) {
    int64_t H = g->in[0], W = g->in[1], KW = g->k[1], taps = g->k[0] * KW,
            L = g->out[0] * g->out[1], nb = (L + 15) / 16;
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    int64_t off[256];
    for (int64_t t = 0; t < taps; t++)
        off[t] = ((t / KW) * g->d[0] - g->pb[0]) * W + (t % KW) * g->d[1] - g->pb[1];
    for (int64_t mi = m_begin; mi < m_end; mi++) {
        const float *xp = x + (mi / mper) * H * W, *wp = w + mi * taps;
        float *yp = y + mi * L;
        __m512 vb = _mm512_set1_ps(bias ? bias[mi] : 0.f);
        int64_t b = 0;
        /* 8 blocks at a time: 8 independent accumulators instead of one chain per block */
        for (; b + 8 <= nb; b += 8) {
            __m512 acc[8];
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) acc[u] = vb;
            for (int64_t t = 0; t < taps; t++) {
                const __m512 wv = _mm512_set1_ps(wp[t]);
                const float *q = xp + b * 16 + off[t];
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++)
                    acc[u] = _mm512_fmadd_ps(
                        wv, _mm512_maskz_loadu_ps((__mmask16)masks[(b + u) * taps + t], q + u * 16),
                        acc[u]);
            }
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) {
                int64_t n = IFD_MIN(16, L - (b + u) * 16);
                _mm512_mask_storeu_ps(yp + (b + u) * 16, lane_range(0, n),
                                      CLAMP512(acc[u], vlo, vhi));
            }
        }
        for (; b < nb; b++) {
            const uint16_t *mk = masks + b * taps;
            const float *q = xp + b * 16;
            __m512 acc0 = vb, acc1 = _mm512_setzero_ps();
            int64_t t = 0;
            for (; t + 2 <= taps; t += 2) {
                acc0 = _mm512_fmadd_ps(_mm512_set1_ps(wp[t]),
                                       _mm512_maskz_loadu_ps((__mmask16)mk[t], q + off[t]), acc0);
                acc1 = _mm512_fmadd_ps(_mm512_set1_ps(wp[t + 1]),
                                       _mm512_maskz_loadu_ps((__mmask16)mk[t + 1], q + off[t + 1]),
                                       acc1);
            }
            if (t < taps)
                acc0 = _mm512_fmadd_ps(_mm512_set1_ps(wp[t]),
                                       _mm512_maskz_loadu_ps((__mmask16)mk[t], q + off[t]), acc0);
            int64_t n = IFD_MIN(16, L - b * 16);
            _mm512_mask_storeu_ps(yp + b * 16, lane_range(0, n),
                                  CLAMP512(_mm512_add_ps(acc0, acc1), vlo, vhi));
        }
    }
}
#endif

void ifd_conv_depthwise_2d(const ifd_conv_geom *g, int64_t m_begin, int64_t m_end, int64_t mper,
                           const float *x, const float *w, const float *bias, float lo, float hi,
                           const uint16_t *masks, float *y) {
#ifdef IFD_CONV_X86
    if (masks) {
        dw_flat_avx512(g, m_begin, m_end, mper, x, w, bias, lo, hi, masks, y);
        return;
    }
#endif
    for (int64_t m = m_begin; m < m_end; m++)
        dw_plane(g, x + (m / mper) * g->in_size, w + m * g->k_size, bias ? bias[m] : 0.f, lo, hi,
                 y + m * g->out_size);
}

#ifdef IFD_CONV_X86
/* Tiled depthwise plane for column stride 1 or 2: R output rows by B blocks of 16 columns per
 * step, R*B independent accumulators (one accumulator per block is bound by the FMA latency,
 * not its throughput). Every tap is a masked load, the masks of a block depend only on its
 * columns, so they are computed once per plane; input rows in the vertical padding read a
 * zero row. Rows past OH repeat the last row and blocks past the row's end load nothing; neither
 * is stored. */
#define DW_TILE_ZERO 4096 /* widest input row (floats) the tiled path takes */
#define DW_TILE_MASKS 1024 /* blocks x kernel columns */
static const float dw_zero_row[DW_TILE_ZERO];

typedef struct dw_tile_args {
    const ifd_conv_geom *g;
    const float *x, *w;
    float bias;
    float *y;
    const __mmask16 *m0, *m1, *sm; /* [blk * KW + k] load masks (m1: stride 2 upper half); sm
                                      [blk] the store mask */
} dw_tile_args;

static inline __attribute__((always_inline, target("avx512f"))) void
dw_tile_step(const int B, const int R, const int S, const dw_tile_args *t, int64_t oh0,
             int64_t rr, int64_t b0, int64_t bb, __m512 vlo, __m512 vhi) {
    const ifd_conv_geom *g = t->g;
    const int64_t H = g->in[0], W = g->in[1], OW = g->out[1], KH = g->k[0], KW = g->k[1];
    const int64_t dw = g->d[1], pl = g->pb[1];
    __m512 acc[8][4];
    const float *rowp[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int b = 0; b < B; b++) acc[r][b] = _mm512_set1_ps(t->bias);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t kh = 0; kh < KH; kh++) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            int64_t oh = oh0 + (r < rr ? r : rr - 1);
            int64_t ih = oh * g->s[0] - g->pb[0] + kh * g->d[0];
            rowp[r] = (ih >= 0 && ih < H ? t->x + ih * W : dw_zero_row) - pl;
        }
        const float *wp = t->w + kh * KW;
        for (int64_t k = 0; k < KW; k++) {
            const __m512 wv = _mm512_set1_ps(wp[k]);
#pragma GCC unroll 4
            for (int b = 0; b < B; b++) {
                const int64_t blk = b0 + b, off = blk * 16 * S + k * dw;
                const __mmask16 ma = b < bb ? t->m0[blk * KW + k] : 0;
                const __mmask16 mb = S == 2 && b < bb ? t->m1[blk * KW + k] : 0;
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    __m512 v = _mm512_maskz_loadu_ps(ma, rowp[r] + off);
                    if (S == 2)
                        v = _mm512_permutex2var_ps(v, even, _mm512_maskz_loadu_ps(mb, rowp[r] + off + 16));
                    acc[r][b] = _mm512_fmadd_ps(wv, v, acc[r][b]);
                }
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r >= rr) break;
#pragma GCC unroll 4
        for (int b = 0; b < B; b++)
            if (b < bb)
                _mm512_mask_storeu_ps(t->y + (oh0 + r) * OW + (b0 + b) * 16, t->sm[b0 + b],
                                      CLAMP512(acc[r][b], vlo, vhi));
    }
}

#define DW_TILE_FN(B, R, S)                                                                    \
    __attribute__((target("avx512f"))) static void dw_tile_##B##_##R##_##S(                    \
        const dw_tile_args *t, int64_t oh0, int64_t rr, int64_t b0, int64_t bb, __m512 vlo,    \
        __m512 vhi) {                                                                          \
        dw_tile_step(B, R, S, t, oh0, rr, b0, bb, vlo, vhi);                                   \
    }
DW_TILE_FN(4, 2, 1)
DW_TILE_FN(3, 2, 1)
DW_TILE_FN(2, 4, 1)
DW_TILE_FN(1, 8, 1)
DW_TILE_FN(4, 2, 2)
DW_TILE_FN(3, 2, 2)
DW_TILE_FN(2, 4, 2)
DW_TILE_FN(1, 8, 2)

typedef void (*dw_tile_fn)(const dw_tile_args *, int64_t, int64_t, int64_t, int64_t, __m512,
                           __m512);

/* False (nothing written) when the geometry is outside what the tiled path takes. */
__attribute__((target("avx512f"))) static bool dw_plane_tiled(const ifd_conv_geom *g,
                                                              const float *x, const float *w,
                                                              float bias, float lo, float hi,
                                                              float *y) {
    const int64_t W = g->in[1], OH = g->out[0], OW = g->out[1], KW = g->k[1], S = g->s[1];
    /* tiny planes: the per-plane setup costs more than the latency it hides */
    if ((S != 1 && S != 2) || W > DW_TILE_ZERO || OW <= 0 || OH <= 0 || OH * OW < 64)
        return false;
    const int64_t nblk = (OW + 15) / 16;
    if (nblk * KW > DW_TILE_MASKS) return false;
    __mmask16 m0[DW_TILE_MASKS], m1[DW_TILE_MASKS], sm[DW_TILE_MASKS];
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t ow = blk * 16, n = IFD_MIN(16, OW - ow);
        sm[blk] = lane_range(0, n);
        for (int64_t k = 0; k < KW; k++) {
            int64_t base = S * ow - g->pb[1] + k * g->d[1];
            if (S == 1) {
                m0[blk * KW + k] = (__mmask16)(sm[blk] & lane_range(-base, W - base));
            } else {
                int64_t need = 2 * n - 1; /* inputs the outputs read */
                m0[blk * KW + k] = (__mmask16)(lane_range(0, need) & lane_range(-base, W - base));
                m1[blk * KW + k] = (__mmask16)(lane_range(0, need - 16) &
                                               lane_range(-base - 16, W - base - 16));
            }
        }
    }
    dw_tile_args t = {g, x, w, bias, y, m0, m1, sm};
    const int B = nblk >= 4 ? 4 : (int)nblk, R = 8 / B;
    dw_tile_fn fn;
    if (S == 1)
        fn = B == 4 ? dw_tile_4_2_1 : B == 3 ? dw_tile_3_2_1 : B == 2 ? dw_tile_2_4_1 : dw_tile_1_8_1;
    else
        fn = B == 4 ? dw_tile_4_2_2 : B == 3 ? dw_tile_3_2_2 : B == 2 ? dw_tile_2_4_2 : dw_tile_1_8_2;
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int64_t oh0 = 0; oh0 < OH; oh0 += R)
        for (int64_t b0 = 0; b0 < nblk; b0 += B)
            fn(&t, oh0, IFD_MIN((int64_t)R, OH - oh0), b0, IFD_MIN((int64_t)B, nblk - b0), vlo, vhi);
    return true;
}
#endif

static void dw_plane(const ifd_conv_geom *g, const float *x, const float *w, float bias,
                     float lo, float hi, float *y) {
    int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1];
    int64_t KH = g->k[0], KW = g->k[1];
    dw_row r;
    r.kw = KW;
    r.dw = g->d[1];
    r.sw = g->s[1];
    r.pl = g->pb[1];
    r.w_in = W;
    r.ow_n = OW;
    r.bias = bias;
    r.lo = lo;
    r.hi = hi;
    bool clamp = lo != -INFINITY || hi != INFINITY;
    int64_t a, b, lo2, hi2;
    valid_range(-g->pb[1], g->s[1], W, OW, &a, &hi2);
    valid_range((KW - 1) * g->d[1] - g->pb[1], g->s[1], W, OW, &lo2, &b);
    if (b < a) b = a;
    int level = simd_level();
#ifdef IFD_CONV_X86
    if (level == LEVEL_AVX512 && dw_plane_tiled(g, x, w, bias, lo, hi, y)) return;
#endif
    for (int64_t oh = 0; oh < OH; oh++) {
        r.nv = 0;
        for (int64_t kh = 0; kh < KH && r.nv < 16; kh++) {
            int64_t ih = oh * g->s[0] - g->pb[0] + kh * g->d[0];
            if (ih < 0 || ih >= H) continue;
            r.rows[r.nv] = x + ih * W;
            r.wr[r.nv] = w + kh * KW;
            r.nv++;
        }
        float *yr = y + oh * OW;
#ifdef IFD_CONV_X86
        if (level == LEVEL_AVX512 && (r.sw == 1 || r.sw == 2)) {
            dw_row_avx512(&r, a, b, yr);
            continue;
        }
#endif
        for (int64_t ow = 0; ow < a && ow < OW; ow++) yr[ow] = dw_pixel(&r, ow);
        int64_t done = a;
#ifdef IFD_CONV_X86
        if (level >= LEVEL_AVX2) done = dw_interior_avx2(&r, a, b, yr);
#else
        (void)level;
#endif
        dw_interior_scalar(&r, done, b, yr);
        for (int64_t ow = IFD_MAX(b, a); ow < OW; ow++) yr[ow] = dw_pixel(&r, ow);
        if (clamp) ifd_conv_bias_clamp(yr, OW, 0.f, lo, hi);
    }
}

/* ---- epilogue and shape arithmetic -------------------------------------------------------- */

#ifdef IFD_CONV_X86
__attribute__((target("avx512f"))) static void bias_clamp_avx512(float *x, int64_t n, float bias,
                                                                 float lo, float hi) {
    __m512 vb = _mm512_set1_ps(bias), vl = _mm512_set1_ps(lo), vh = _mm512_set1_ps(hi);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(_mm512_loadu_ps(x + i), vb), vl), vh));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), vb);
        _mm512_mask_storeu_ps(x + i, m, _mm512_min_ps(_mm512_max_ps(v, vl), vh));
    }
}

__attribute__((target("avx2,fma"))) static void bias_clamp_avx2(float *x, int64_t n, float bias,
                                                                float lo, float hi) {
    __m256 vb = _mm256_set1_ps(bias), vl = _mm256_set1_ps(lo), vh = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_loadu_ps(x + i), vb), vl), vh));
    for (; i < n; i++) {
        float v = x[i] + bias;
        v = v > lo ? v : lo;
        x[i] = v < hi ? v : hi;
    }
}
#endif

void ifd_conv_bias_clamp(float *x, int64_t n, float bias, float lo, float hi) {
#ifdef IFD_CONV_X86
    int level = simd_level();
    if (level == LEVEL_AVX512) {
        bias_clamp_avx512(x, n, bias, lo, hi);
        return;
    }
    if (level == LEVEL_AVX2) {
        bias_clamp_avx2(x, n, bias, lo, hi);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] + bias;
        v = v > lo ? v : lo;
        x[i] = v < hi ? v : hi;
    }
}

bool ifd_conv_out_dim(int auto_pad, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb,
                      int64_t pe, bool ceil_mode, int64_t *out, int64_t *pad_begin) {
    int64_t eff, span;
    if (in < 0 || k < 1 || s < 1 || d < 1 || pb < 0 || pe < 0) return false;
    if (!ifd_mul_i64(k - 1, d, &eff) || !ifd_add_i64(eff, 1, &eff)) return false;
    if (auto_pad == 1 || auto_pad == 2) {
        int64_t o = in / s + (in % s != 0), total;
        if (!ifd_mul_i64(o > 0 ? o - 1 : 0, s, &total) || !ifd_add_i64(total, eff, &total))
            return false;
        total -= in;
        if (total < 0) total = 0;
        *out = o;
        *pad_begin = auto_pad == 1 ? total / 2 : total - total / 2;
        return true;
    }
    if (auto_pad == 3) pb = pe = 0;
    if (!ifd_add_i64(in, pb, &span) || !ifd_add_i64(span, pe, &span)) return false;
    span -= eff;
    if (span < 0) return false;
    int64_t o = span / s + 1;
    if (ceil_mode && span % s != 0) {
        o++;
        if ((o - 1) * s >= in + pb) o--; /* last window would start inside the end padding */
    }
    *out = o;
    *pad_begin = pb;
    return true;
}

/* ---- transposed GEMM result back to planes ------------------------------------------------ */

#ifdef IFD_CONV_X86

__attribute__((target("avx512f"))) static void transpose_bias_clamp_avx512(
    const float *t, int64_t ldt, int64_t rows, int64_t cols, float *y, int64_t ldy,
    const float *bias, float lo, float hi) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const bool clamp = lo > -INFINITY || hi < INFINITY;
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int nr = (int)IFD_MIN((int64_t)16, rows - r0);
        __mmask16 rm = (__mmask16)(((uint32_t)1 << nr) - 1u);
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int nc = (int)IFD_MIN((int64_t)16, cols - c0);
            __mmask16 cm = (__mmask16)(((uint32_t)1 << nc) - 1u);
            __m512 v[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = i < nr ? _mm512_maskz_loadu_ps(cm, t + (r0 + i) * ldt + c0)
                              : _mm512_setzero_ps();
            ifd_avx512_transpose16(v);
#pragma GCC unroll 16
            for (int c = 0; c < 16; c++) {
                if (c >= nc) break;
                __m512 x = v[c];
                if (bias) x = _mm512_add_ps(x, _mm512_set1_ps(bias[c0 + c]));
                if (clamp) x = _mm512_min_ps(_mm512_max_ps(x, vlo), vhi);
                _mm512_mask_storeu_ps(y + (c0 + c) * ldy + r0, rm, x);
            }
        }
    }
}
#endif

void ifd_conv_transpose_bias_clamp(const float *t, int64_t ldt, int64_t rows, int64_t cols,
                                   float *y, int64_t ldy, const float *bias, float lo, float hi) {
#ifdef IFD_CONV_X86
    if (simd_level() == LEVEL_AVX512) {
        transpose_bias_clamp_avx512(t, ldt, rows, cols, y, ldy, bias, lo, hi);
        return;
    }
#endif
    const bool clamp = lo > -INFINITY || hi < INFINITY;
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
        int64_t c1 = IFD_MIN(cols, c0 + 16);
        for (int64_t r = 0; r < rows; r++) {
            const float *src = t + r * ldt;
            for (int64_t c = c0; c < c1; c++) {
                float x = src[c] + (bias ? bias[c] : 0.f);
                if (clamp) {
                    x = x > lo ? x : lo;
                    x = x < hi ? x : hi;
                }
                y[c * ldy + r] = x;
            }
        }
    }
}

/* ---- im2col straight into GEMM micro-panels ------------------------------------------------- */

bool ifd_conv_pack_rows_supported(const ifd_conv_geom *g, int mr) {
#ifdef IFD_CONV_X86
    return g->nd == 2 && (g->s[1] == 1 || g->s[1] == 2) && mr >= 1 && mr <= 16 &&
           g->in[1] < (INT64_C(1) << 30) && simd_level() == LEVEL_AVX512;
#else
    (void)g, (void)mr;
    return false;
#endif
}

#ifdef IFD_CONV_X86
/* Lane l of a segment at tap column kw reads row[off + l * sw]: the masked loads of up to 32
 * source elements (16 for sw == 1) give zeros for padding, and lanes outside the segment are
 * dropped by the caller. */
static inline __attribute__((always_inline, target("avx512f"))) __m512
pack_load(const float *row, int64_t off, int64_t sw, __mmask16 m0, __mmask16 m1, __m512i even) {
    if (sw == 1) return _mm512_maskz_loadu_ps(m0, row + off);
    __m512 lo = _mm512_maskz_loadu_ps(m0, row + off);
    __m512 hi = _mm512_maskz_loadu_ps(m1, row + off + 16);
    return _mm512_permutex2var_ps(lo, even, hi);
}

#define PACK_KW_MAX 16

__attribute__((target("avx512f"))) static void pack_rows_avx512(const ifd_conv_geom *g,
                                                                const float *img, int64_t pos0,
                                                                int64_t mc, int64_t k0,
                                                                int64_t kc, int mr, float *dst) {
    const int64_t H = g->in[0], W = g->in[1], OW = g->out[1], KH = g->k[0], KW = g->k[1];
    const int64_t sh = g->s[0], sw = g->s[1], dh = g->d[0], dw = g->d[1];
    const __mmask16 store = (__mmask16)(((uint32_t)1 << mr) - 1u);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const int64_t kk = KH * KW;
    /* per segment (a run of lanes within one output row) and tap column: source offset and
     * load masks; taps past PACK_KW_MAX are recomputed on the fly */
    int64_t ih0[16], offs[16][PACK_KW_MAX];
    __mmask16 lanes[16], m0[16][PACK_KW_MAX], m1[16][PACK_KW_MAX];
    const int64_t kwt = IFD_MIN(KW, (int64_t)PACK_KW_MAX);
    for (int64_t ir = 0; ir < mc; ir += mr, dst += (int64_t)mr * kc) {
        int rows = (int)IFD_MIN((int64_t)mr, mc - ir);
        int nseg = 0;
        for (int lane = 0; lane < rows; nseg++) {
            int64_t p = pos0 + ir + lane, oh = p / OW, ow = p % OW;
            int len = (int)IFD_MIN(OW - ow, (int64_t)(rows - lane));
            ih0[nseg] = oh * sh - g->pb[0];
            lanes[nseg] = lane_range(lane, lane + len);
            int64_t base = ow * sw - g->pb[1] - lane * sw;
            for (int64_t kw = 0; kw < kwt; kw++) {
                int64_t off = base + kw * dw;
                offs[nseg][kw] = off;
                m0[nseg][kw] = lane_range(-off, W - off);
                m1[nseg][kw] = lane_range(-off - 16, W - off - 16);
            }
            lane += len;
        }
        int64_t c = k0 / kk, kh = (k0 % kk) / KW, kw = k0 % KW;
        for (int64_t p = 0; p < kc;) {
            /* taps kw.. of image row kh of channel c */
            int64_t n = IFD_MIN(KW - kw, kc - p);
            const float *plane = img + c * H * W;
            float *d = dst + p * mr;
            if (nseg == 1 && kw + n <= kwt) {
                int64_t ih = ih0[0] + kh * dh;
                if (ih < 0 || ih >= H) {
                    for (int64_t t = 0; t < n; t++)
                        _mm512_mask_storeu_ps(d + t * mr, store, _mm512_setzero_ps());
                } else {
                    const float *row = plane + ih * W;
                    for (int64_t t = 0; t < n; t++) {
                        int64_t q = kw + t;
                        __m512 x = pack_load(row, offs[0][q], sw, m0[0][q], m1[0][q], even);
                        _mm512_mask_storeu_ps(d + t * mr, store, x);
                    }
                }
            } else {
                for (int64_t t = 0; t < n; t++) {
                    int64_t q = kw + t;
                    __m512 v = _mm512_setzero_ps();
                    for (int sg = 0; sg < nseg; sg++) {
                        int64_t ih = ih0[sg] + kh * dh;
                        if (ih < 0 || ih >= H) continue;
                        int64_t off;
                        __mmask16 a0, a1;
                        if (q < kwt) {
                            off = offs[sg][q], a0 = m0[sg][q], a1 = m1[sg][q];
                        } else {
                            off = offs[sg][0] + q * dw;
                            a0 = lane_range(-off, W - off);
                            a1 = lane_range(-off - 16, W - off - 16);
                        }
                        __m512 x = pack_load(plane + ih * W, off, sw, a0, a1, even);
                        v = _mm512_mask_mov_ps(v, lanes[sg], x);
                    }
                    _mm512_mask_storeu_ps(d + t * mr, store, v);
                }
            }
            p += n;
            kw = 0;
            if (++kh == KH) {
                kh = 0;
                c++;
            }
        }
    }
}
#endif

#ifdef IFD_CONV_X86
#define FLAT_TAPS_MAX 16

/* Whether pack_rows_flat_avx512 applies: stride 1 both ways and OW == W (a "same" width). */
static bool pack_flat_ok(const ifd_conv_geom *g) {
    return g->s[0] == 1 && g->s[1] == 1 && g->out[1] == g->in[1] && g->k[0] <= FLAT_TAPS_MAX &&
           g->k[1] <= FLAT_TAPS_MAX && g->in_size < (INT64_C(1) << 30) &&
           g->out_size < (INT64_C(1) << 30) && g->k[0] * g->d[0] < (INT64_C(1) << 30) &&
           g->k[1] * g->d[1] < (INT64_C(1) << 30);
}

/* Lanes whose coordinate v (int32 lanes) satisfies 0 <= v + t < n. */
static inline __attribute__((always_inline, target("avx512f"))) __mmask16
coord_valid(__m512i v, int64_t t, int64_t n) {
    int64_t lo = -t, hi = n - t; /* lo <= v < hi; |t|, n < 2^30 */
    return _mm512_cmp_epi32_mask(v, _mm512_set1_epi32((int32_t)lo), _MM_CMPINT_NLT) &
           _mm512_cmp_epi32_mask(v, _mm512_set1_epi32((int32_t)hi), _MM_CMPINT_LT);
}

/* Stride 1 with OW == W: output position p = oh*W + ow and tap (kh, kw) read the plane at
 * p + (kh*dh - pt)*W + (kw*dw - pl) whenever the tap lies inside the image, so the mr
 * positions of a panel are one masked load per tap however many output rows they span (small
 * planes: a 14-lane panel of an 8-wide image spans two or three rows, which the segment walk
 * of pack_rows_avx512 pays for per tap). The masks depend on the tap, not the channel.
 * Positions run on through a batch of images img_stride floats apart (position q is image
 * q / L), so a panel may hold lanes of several images: one masked load per image then. */
__attribute__((target("avx512f"))) static void pack_rows_flat_avx512(const ifd_conv_geom *g,
                                                                     const float *img,
                                                                     int64_t img_stride,
                                                                     int64_t pos0, int64_t mc,
                                                                     int64_t k0, int64_t kc,
                                                                     int mr, float *dst) {
    const int64_t H = g->in[0], W = g->in[1], KH = g->k[0], KW = g->k[1], kk = KH * KW;
    const int64_t plane = H * W, L = g->out_size;
    const __mmask16 store = (__mmask16)(((uint32_t)1 << mr) - 1u);
    __mmask16 rmask[FLAT_TAPS_MAX], cmask[FLAT_TAPS_MAX], tmask[FLAT_TAPS_MAX * FLAT_TAPS_MAX];
    int64_t toff[FLAT_TAPS_MAX * FLAT_TAPS_MAX];
    for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++)
            toff[kh * KW + kw] = (kh * g->d[0] - g->pb[0]) * W + kw * g->d[1] - g->pb[1];
    for (int64_t ir = 0; ir < mc; ir += mr, dst += (int64_t)mr * kc) {
        int rows = (int)IFD_MIN((int64_t)mr, mc - ir);
        int64_t q = pos0 + ir, n = q / L, p = q % L;
        /* per lane: output row and column within its image; per image segment of lanes: its
         * lanes and the address lane 0 would have (the segment's lanes are contiguous there) */
        int32_t oh[16], ow[16];
        const float *segbase[16];
        __mmask16 seglanes[16];
        int nseg = 0;
        int64_t h = p / W, w = p % W;
        for (int l = 0; l < 16; l++) {
            if (l == 0 || (h == 0 && w == 0)) {
                if (l) n++;
                segbase[nseg] = img + n * img_stride + (h * W + w) - l;
                seglanes[nseg++] = 0;
            }
            if (l < rows) seglanes[nseg - 1] |= (__mmask16)(1u << l);
            oh[l] = (int32_t)h, ow[l] = (int32_t)w;
            if (++w == W) {
                w = 0;
                if (++h == g->out[0]) h = 0;
            }
        }
        __m512i voh = _mm512_loadu_si512(oh), vow = _mm512_loadu_si512(ow);
        for (int64_t kh = 0; kh < KH; kh++)
            rmask[kh] = coord_valid(voh, kh * g->d[0] - g->pb[0], H);
        for (int64_t kw = 0; kw < KW; kw++)
            cmask[kw] = coord_valid(vow, kw * g->d[1] - g->pb[1], W);
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) tmask[kh * KW + kw] = rmask[kh] & cmask[kw];
        /* channel by channel, each a run of taps [tap, tap + n) */
        int64_t c = k0 / kk, tap = k0 % kk, left = kc;
        float *d = dst;
        /* masked-off lanes are never read, so addresses may point outside the planes */
        while (left > 0) {
            int64_t n = IFD_MIN(kk - tap, left);
            if (nseg == 1) {
                const float *bc = segbase[0] + c * plane;
                __mmask16 live = seglanes[0];
                for (int64_t t = tap; t < tap + n; t++, d += mr)
                    _mm512_mask_storeu_ps(d, store,
                                          _mm512_maskz_loadu_ps(live & tmask[t], bc + toff[t]));
            } else {
                for (int64_t t = tap; t < tap + n; t++, d += mr) {
                    __m512 v = _mm512_setzero_ps();
                    for (int sg = 0; sg < nseg; sg++)
                        v = _mm512_mask_loadu_ps(v, tmask[t] & seglanes[sg],
                                                 segbase[sg] + c * plane + toff[t]);
                    _mm512_mask_storeu_ps(d, store, v);
                }
            }
            left -= n;
            tap = 0;
            c++;
        }
    }
}
#endif

bool ifd_conv_pack_rows_batch_supported(const ifd_conv_geom *g, int mr) {
#ifdef IFD_CONV_X86
    return ifd_conv_pack_rows_supported(g, mr) && pack_flat_ok(g) && g->out_size > 0;
#else
    (void)g, (void)mr;
    return false;
#endif
}

void ifd_conv_pack_rows_batch(const ifd_conv_geom *g, const float *img, int64_t img_stride,
                              int64_t pos0, int64_t mc, int64_t k0, int64_t kc, int mr,
                              float *dst) {
#ifdef IFD_CONV_X86
    pack_rows_flat_avx512(g, img, img_stride, pos0, mc, k0, kc, mr, dst);
#else
    (void)g, (void)img, (void)img_stride, (void)pos0, (void)mc, (void)k0, (void)kc, (void)mr,
        (void)dst;
#endif
}

void ifd_conv_pack_rows(const ifd_conv_geom *g, const float *img, int64_t pos0, int64_t mc,
                        int64_t k0, int64_t kc, int mr, float *dst) {
#ifdef IFD_CONV_X86
    if (pack_flat_ok(g))
        pack_rows_flat_avx512(g, img, 0, pos0, mc, k0, kc, mr, dst);
    else
        pack_rows_avx512(g, img, pos0, mc, k0, kc, mr, dst);
#else
    (void)g, (void)img, (void)pos0, (void)mc, (void)k0, (void)kc, (void)mr, (void)dst;
#endif
}

/* ---- 2-D max pooling -------------------------------------------------------------------------- */

#ifdef IFD_CONV_X86
#define POOL_CHUNKS 32 /* column chunks of 16 outputs set up at a time */
#define POOL_KW_MAX 16
#define POOL_ROWS 256 /* output rows whose kernel-row range is set up at a time */

/* Per chunk of 16 output columns: a 32-float window of each input row starting at b0, loaded
 * once per kernel row with -inf outside [0, W), from which every tap column kw whose lanes all
 * lie inside it (sw*15 + kw*dw < 32) is one permute; other taps load on their own. All of it
 * depends on the column geometry only, so it is set up once for all planes and rows (small
 * planes used to recompute it per tap, more work than the max itself). */
typedef struct pool_chunk {
    int64_t b0;
    __mmask16 lo, hi, store;
} pool_chunk;

__attribute__((target("avx512f"))) static void max_pool_planes_avx512(const ifd_conv_geom *g,
                                                                      const float *x, float *y,
                                                                      int64_t nplanes) {
    const int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1];
    const int64_t KH = g->k[0], KW = g->k[1], sh = g->s[0], sw = g->s[1], dh = g->d[0],
                  dw = g->d[1], pt = g->pb[0], pl = g->pb[1];
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int64_t nchunks = (OW + 15) / 16;
    /* taps served by the window: kw < kw_win */
    int64_t kw_win = 0;
    while (kw_win < KW && kw_win < POOL_KW_MAX && sw * 15 + kw_win * dw < 32) kw_win++;
    __m512i idx[POOL_KW_MAX];
    for (int64_t kw = 0; kw < kw_win; kw++)
        idx[kw] = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32((int32_t)sw)),
                                   _mm512_set1_epi32((int32_t)(kw * dw)));
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    pool_chunk ck[POOL_CHUNKS];
    int64_t rk0[POOL_ROWS], rk1[POOL_ROWS]; /* kernel rows inside the image, per output row */
    for (int64_t rb = 0; rb < OH; rb += POOL_ROWS) {
    int64_t nrows = IFD_MIN((int64_t)POOL_ROWS, OH - rb);
    for (int64_t r = 0; r < nrows; r++) {
        int64_t start = (rb + r) * sh - pt;
        int64_t k0 = start >= 0 ? 0 : (-start + dh - 1) / dh;
        int64_t k1 = H - 1 - start < 0 ? 0 : (H - 1 - start) / dh + 1;
        rk0[r] = k0;
        rk1[r] = k1 > KH ? KH : k1;
    }
    for (int64_t cb = 0; cb < nchunks; cb += POOL_CHUNKS) {
        int64_t nc = IFD_MIN((int64_t)POOL_CHUNKS, nchunks - cb);
        for (int64_t i = 0; i < nc; i++) {
            int64_t ow0 = (cb + i) * 16, b0 = ow0 * sw - pl;
            ck[i].b0 = b0;
            ck[i].lo = lane_range(-b0, W - b0);
            ck[i].hi = lane_range(-b0 - 16, W - b0 - 16);
            ck[i].store = lane_range(0, OW - ow0);
        }
        for (int64_t pi = 0; pi < nplanes; pi++) {
            const float *xp = x + pi * H * W;
            float *yp = y + pi * OH * OW;
            for (int64_t oh = rb; oh < rb + nrows; oh++) {
                int64_t start = oh * sh - pt, k0 = rk0[oh - rb], k1 = rk1[oh - rb];
                for (int64_t i = 0; i < nc; i++) {
                    const pool_chunk *c = &ck[i];
                    __m512 acc = ninf;
                    for (int64_t kh = k0; kh < k1; kh++) {
                        const float *row = xp + (start + kh * dh) * W;
                        __m512 wlo = _mm512_mask_loadu_ps(ninf, c->lo, row + c->b0);
                        __m512 whi = _mm512_mask_loadu_ps(ninf, c->hi, row + c->b0 + 16);
                        for (int64_t kw = 0; kw < kw_win; kw++) /* a NaN in v is skipped */
                            acc = _mm512_max_ps(_mm512_permutex2var_ps(wlo, idx[kw], whi), acc);
                        for (int64_t kw = kw_win; kw < KW; kw++) {
                            /* lane l reads row[base + l * sw]; outside [0, W) is -inf */
                            int64_t base = c->b0 + kw * dw;
                            __m512 v;
                            if (sw == 1) {
                                v = _mm512_mask_loadu_ps(ninf, lane_range(-base, W - base), row + base);
                            } else {
                                __m512 a = _mm512_mask_loadu_ps(ninf, lane_range(-base, W - base),
                                                                row + base);
                                __m512 b = _mm512_mask_loadu_ps(
                                    ninf, lane_range(-base - 16, W - base - 16), row + base + 16);
                                v = _mm512_permutex2var_ps(a, even, b);
                            }
                            acc = _mm512_max_ps(v, acc);
                        }
                    }
                    _mm512_mask_storeu_ps(yp + oh * OW + (cb + i) * 16, c->store, acc);
                }
            }
        }
    }
    }
}
#endif

bool ifd_conv_max_pool_2d(const ifd_conv_geom *g, const float *x, float *y, int64_t nplanes) {
#ifdef IFD_CONV_X86
    if (g->nd != 2 || (g->s[1] != 1 && g->s[1] != 2) || simd_level() != LEVEL_AVX512 ||
        g->in[1] >= (INT64_C(1) << 30) || g->d[1] >= (INT64_C(1) << 26))
        return false;
    max_pool_planes_avx512(g, x, y, nplanes);
    return true;
#else
    (void)g, (void)x, (void)y, (void)nplanes;
    return false;
#endif
}
