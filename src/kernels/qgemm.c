/* 8-bit integer GEMM (see qgemm.h).
 *
 * Both operands are brought to one signedness pair so that a single instruction multiplies
 * them: A' = A as uint8 (int8 A gets +128), B' = B as int8 (uint8 B gets -128). The zero
 * points absorb the shifts (za' = za + 128 for int8 A, zb' = zb - 128 for uint8 B), and
 *
 *     sum_k (A'-za')(B'-zb') = sum_k A'B' - zb'[n] * rowsum(A')[m] - za'[m] * (colsum(B')[n] - K zb'[n])
 *
 * so the inner loop is a plain u8 x s8 dot product:
 *   - AVX-512 VNNI: vpdpbusd on packed bytes (4 k values per lane, no saturation),
 *   - AVX2: operands widened to int16 at packing, vpmaddwd (2 k values per lane),
 *   - scalar: int32 loops on the unpacked operands.
 * Packed A: per block of MR rows, [K groups][MR][group] elements; packed B: per chunk of NC
 * columns, [K groups][NC][group]. Padding is zero so it adds nothing to the sums. */
#include "kernels/qgemm.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IFD_X86 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

typedef enum { PATH_SCALAR, PATH_AVX2, PATH_VNNI } qpath;

typedef struct {
    int mr, nc, kg, es; /* rows per block, columns per chunk, k per group, packed element bytes */
} qshape;

static const qshape g_shapes[] = {
    [PATH_SCALAR] = {1, 1, 1, 1},
    [PATH_AVX2] = {6, 16, 2, 2},
    [PATH_VNNI] = {8, 32, 4, 1},
};

static qpath g_path = (qpath)-1;

static qpath get_path(void) {
    if ((int)g_path < 0) { /* benign race: every thread computes the same value */
        qpath p = PATH_SCALAR;
#ifdef IFD_X86
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vnni"))
            p = PATH_VNNI;
        else if (__builtin_cpu_supports("avx2"))
            p = PATH_AVX2;
#endif
        g_path = p;
    }
    return g_path;
}

const char *ifd_qgemm_kernel_name(void) {
    switch (get_path()) {
    case PATH_VNNI: return "avx512vnni";
    case PATH_AVX2: return "avx2";
    default: return "scalar";
    }
}

static inline size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

typedef struct {
    size_t a_off, b_off, rs_off, cs_off, za_off, zb_off, total;
    int64_t mblocks, nchunks, kgroups;
} qlayout;

static bool layout(qpath path, int64_t m, int64_t n, int64_t k, qlayout *l) {
    const qshape *s = &g_shapes[path];
    memset(l, 0, sizeof *l);
    if (m < 0 || n < 0 || k < 0) return false;
    if (path == PATH_SCALAR) return true;
    l->mblocks = (m + s->mr - 1) / s->mr;
    l->nchunks = (n + s->nc - 1) / s->nc;
    l->kgroups = (k + s->kg - 1) / s->kg;
    size_t kpad, abytes, bbytes, t = 0;
    if (!ifd_mul_size((size_t)l->kgroups, (size_t)s->kg * (size_t)s->es, &kpad) ||
        !ifd_mul_size(kpad, (size_t)l->mblocks * (size_t)s->mr, &abytes) ||
        !ifd_mul_size(kpad, (size_t)l->nchunks * (size_t)s->nc, &bbytes))
        return false;
    size_t rows = (size_t)l->mblocks * (size_t)s->mr, cols = (size_t)l->nchunks * (size_t)s->nc;
    l->a_off = t;
    if (!ifd_add_size(t, align64(abytes), &t)) return false;
    l->b_off = t;
    if (!ifd_add_size(t, align64(bbytes), &t)) return false;
    l->rs_off = t;
    if (!ifd_add_size(t, align64(rows * 4), &t)) return false;
    l->cs_off = t;
    if (!ifd_add_size(t, align64(cols * 4), &t)) return false;
    l->za_off = t;
    if (!ifd_add_size(t, align64(rows * 4), &t)) return false;
    l->zb_off = t;
    if (!ifd_add_size(t, align64(cols * 4), &t)) return false;
    l->total = t;
    return true;
}

bool ifd_qgemm_workspace_size(int64_t m, int64_t n, int64_t k, size_t *bytes) {
    qlayout l;
    if (!layout(get_path(), m, n, k, &l)) return false;
    *bytes = l.total ? l.total : 64;
    return true;
}

/* ---- scalar path --------------------------------------------------------------------- */

typedef struct {
    const ifd_qgemm_params *p;
} scalar_job;

static void scalar_rows(void *arg, int64_t begin, int64_t end) {
    const ifd_qgemm_params *p = ((const scalar_job *)arg)->p;
    int64_t n = p->n;
    for (int64_t i = begin; i < end; i++) {
        uint32_t *restrict c = (uint32_t *)(p->c + i * p->ldc);
        int32_t za = p->a_zero_count == 0 ? 0 : p->a_zero[p->a_zero_count == 1 ? 0 : i];
        for (int64_t j = 0; j < n; j++) c[j] = 0;
        for (int64_t k = 0; k < p->k; k++) {
            uint8_t raw = p->a[i * p->lda + k];
            int32_t av = (p->a_signed ? (int32_t)(int8_t)raw : (int32_t)raw) - za;
            const uint8_t *restrict b = p->b + k * p->ldb;
            if (p->b_zero_count > 1) {
                const int32_t *restrict zb = p->b_zero;
                if (p->b_signed)
                    for (int64_t j = 0; j < n; j++)
                        c[j] += (uint32_t)(av * ((int32_t)(int8_t)b[j] - zb[j]));
                else
                    for (int64_t j = 0; j < n; j++) c[j] += (uint32_t)(av * ((int32_t)b[j] - zb[j]));
            } else {
                int32_t zb = p->b_zero_count ? p->b_zero[0] : 0;
                if (p->b_signed)
                    for (int64_t j = 0; j < n; j++)
                        c[j] += (uint32_t)(av * ((int32_t)(int8_t)b[j] - zb));
                else
                    for (int64_t j = 0; j < n; j++) c[j] += (uint32_t)(av * ((int32_t)b[j] - zb));
            }
        }
    }
}

/* ---- packing ------------------------------------------------------------------------- */

typedef struct {
    const ifd_qgemm_params *p;
    const qshape *s;
    qlayout l;
    uint8_t *ws;
} pack_job;

static void pack_a_blocks(void *arg, int64_t begin, int64_t end) {
    const pack_job *j = arg;
    const ifd_qgemm_params *p = j->p;
    const int mr = j->s->mr, kg = j->s->kg, es = j->s->es;
    const int64_t kgroups = j->l.kgroups, kfull = p->k / kg;
    size_t kpad = (size_t)kgroups * (size_t)kg;
    uint8_t flip = p->a_signed ? 0x80 : 0;
    int32_t *rs = (int32_t *)(j->ws + j->l.rs_off);
    int32_t *za = (int32_t *)(j->ws + j->l.za_off);
    for (int64_t mb = begin; mb < end; mb++) {
        uint8_t *dst8 = j->ws + j->l.a_off + (size_t)mb * mr * kpad * es;
        uint16_t *dst16 = (uint16_t *)dst8;
        for (int r = 0; r < mr; r++) {
            int64_t row = mb * mr + r;
            if (row >= p->m) { /* padding rows: zeros, no zero point */
                for (int64_t g = 0; g < kgroups; g++)
                    for (int e = 0; e < kg; e++) {
                        size_t at = ((size_t)g * mr + r) * kg + e;
                        if (es == 1) dst8[at] = 0; else dst16[at] = 0;
                    }
                rs[row] = 0;
                za[row] = 0;
                continue;
            }
            const uint8_t *restrict src = p->a + row * p->lda;
            uint32_t sum = 0;
            if (es == 1) {
                for (int64_t g = 0; g < kfull; g++)
                    for (int e = 0; e < 4; e++) {
                        uint8_t v = src[g * 4 + e] ^ flip;
                        dst8[((size_t)g * mr + r) * 4 + e] = v;
                        sum += v;
                    }
            } else {
                for (int64_t g = 0; g < kfull; g++)
                    for (int e = 0; e < 2; e++) {
                        uint8_t v = src[g * 2 + e] ^ flip;
                        dst16[((size_t)g * mr + r) * 2 + e] = v;
                        sum += v;
                    }
            }
            for (int64_t g = kfull; g < kgroups; g++) /* the partial last group */
                for (int e = 0; e < kg; e++) {
                    int64_t k = g * kg + e;
                    uint8_t v = k < p->k ? (uint8_t)(src[k] ^ flip) : 0;
                    size_t at = ((size_t)g * mr + r) * kg + e;
                    if (es == 1) dst8[at] = v; else dst16[at] = v;
                    sum += v;
                }
            rs[row] = (int32_t)sum;
            int32_t z = p->a_zero_count ? p->a_zero[p->a_zero_count == 1 ? 0 : row] : 0;
            za[row] = z + (p->a_signed ? 128 : 0);
        }
    }
}

#ifdef IFD_X86
/* One full chunk (32 columns) of B for VNNI: 4 rows interleaved bytewise per column, column
 * sums by vpdpbusd against ones. kfull: number of complete k-quads to do here. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
pack_b_vnni_full(const uint8_t *b, int64_t ldb, int64_t kfull, uint8_t flip, uint8_t *dst,
                 int32_t *sums) {
    const __m256i fx = _mm256_set1_epi8((char)flip);
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    for (int64_t g = 0; g < kfull; g++, dst += 128) {
        const uint8_t *r = b + g * 4 * ldb;
        __m256i r0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)r), fx);
        __m256i r1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + ldb)), fx);
        __m256i r2 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + 2 * ldb)), fx);
        __m256i r3 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + 3 * ldb)), fx);
        __m256i t0 = _mm256_unpacklo_epi8(r0, r1), t1 = _mm256_unpackhi_epi8(r0, r1);
        __m256i t2 = _mm256_unpacklo_epi8(r2, r3), t3 = _mm256_unpackhi_epi8(r2, r3);
        __m256i u0 = _mm256_unpacklo_epi16(t0, t2), u1 = _mm256_unpackhi_epi16(t0, t2);
        __m256i u2 = _mm256_unpacklo_epi16(t1, t3), u3 = _mm256_unpackhi_epi16(t1, t3);
        __m256i o0 = _mm256_permute2x128_si256(u0, u1, 0x20);
        __m256i o1 = _mm256_permute2x128_si256(u2, u3, 0x20);
        __m256i o2 = _mm256_permute2x128_si256(u0, u1, 0x31);
        __m256i o3 = _mm256_permute2x128_si256(u2, u3, 0x31);
        __m512i lo = _mm512_inserti64x4(_mm512_castsi256_si512(o0), o1, 1);
        __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(o2), o3, 1);
        _mm512_store_si512((void *)dst, lo);
        _mm512_store_si512((void *)(dst + 64), hi);
        s0 = _mm512_dpbusd_epi32(s0, ones, lo);
        s1 = _mm512_dpbusd_epi32(s1, ones, hi);
    }
    _mm512_storeu_si512((void *)sums, s0);
    _mm512_storeu_si512((void *)(sums + 16), s1);
}

/* One full chunk (16 columns) of B for AVX2: 2 rows interleaved and widened to int16. */
__attribute__((target("avx2"))) static void pack_b_avx2_full(const uint8_t *b, int64_t ldb,
                                                             int64_t kfull, uint8_t flip,
                                                             int16_t *dst, int32_t *sums) {
    const __m128i fx = _mm_set1_epi8((char)flip);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    for (int64_t g = 0; g < kfull; g++, dst += 32) {
        const uint8_t *r = b + g * 2 * ldb;
        __m128i r0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r), fx);
        __m128i r1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r + ldb)), fx);
        __m256i lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(r0, r1));
        __m256i hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(r0, r1));
        _mm256_store_si256((__m256i *)dst, lo);
        _mm256_store_si256((__m256i *)(dst + 16), hi);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(lo, ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(hi, ones));
    }
    _mm256_storeu_si256((__m256i *)sums, s0);
    _mm256_storeu_si256((__m256i *)(sums + 8), s1);
}
#endif

static void pack_b_chunks(void *arg, int64_t begin, int64_t end) {
    const pack_job *j = arg;
    const ifd_qgemm_params *p = j->p;
    const int nc_w = j->s->nc, kg = j->s->kg, es = j->s->es;
    size_t kpad = (size_t)j->l.kgroups * (size_t)kg;
    uint8_t flip = p->b_signed ? 0 : 0x80;
    int32_t *cs = (int32_t *)(j->ws + j->l.cs_off);
    int32_t *zb = (int32_t *)(j->ws + j->l.zb_off);
    for (int64_t nc = begin; nc < end; nc++) {
        uint8_t *dst8 = j->ws + j->l.b_off + (size_t)nc * nc_w * kpad * es;
        int16_t *dst16 = (int16_t *)dst8;
        int64_t col0 = nc * nc_w;
        int ncols = (int)IFD_MIN((int64_t)nc_w, p->n - col0);
        int32_t sums[32] = {0};
        int64_t g0 = 0;
#ifdef IFD_X86
        if (ncols == nc_w) { /* full chunk: vector transpose of the complete k groups */
            int64_t kfull = p->k / kg;
            int32_t vs[32];
            if (es == 1)
                pack_b_vnni_full(p->b + col0, p->ldb, kfull, flip, dst8, vs);
            else
                pack_b_avx2_full(p->b + col0, p->ldb, kfull, flip, dst16, vs);
            for (int c = 0; c < nc_w; c++) sums[c] = vs[c];
            g0 = kfull;
        }
#endif
        for (int64_t g = g0; g < j->l.kgroups; g++)
            for (int e = 0; e < kg; e++) {
                int64_t k = g * kg + e;
                int cols = k < p->k ? ncols : 0;
                const uint8_t *restrict src = p->b + (k < p->k ? k : 0) * p->ldb + col0;
                if (es == 1) {
                    uint8_t *restrict d = dst8 + (size_t)g * nc_w * kg + e;
                    for (int c = 0; c < cols; c++) {
                        int8_t v = (int8_t)(src[c] ^ flip);
                        d[c * 4] = (uint8_t)v;
                        sums[c] += v;
                    }
                    for (int c = cols; c < nc_w; c++) d[c * 4] = 0;
                } else {
                    int16_t *restrict d = dst16 + (size_t)g * nc_w * kg + e;
                    for (int c = 0; c < cols; c++) {
                        int8_t v = (int8_t)(src[c] ^ flip);
                        d[c * 2] = v;
                        sums[c] += v;
                    }
                    for (int c = cols; c < nc_w; c++) d[c * 2] = 0;
                }
            }
        for (int c = 0; c < nc_w; c++) {
            int64_t col = col0 + c;
            int32_t z = 0;
            if (c < ncols && p->b_zero_count) z = p->b_zero[p->b_zero_count == 1 ? 0 : col];
            z -= p->b_signed ? 0 : 128;
            zb[col] = z;
            cs[col] = (int32_t)((uint32_t)sums[c] - (uint32_t)p->k * (uint32_t)z);
        }
    }
}

/* ---- microkernels: acc[MR][NC] of sum A'B' over the packed K -------------------------- */

#ifdef IFD_X86
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
kernel_vnni(const uint8_t *ap, const uint8_t *bp, int64_t kq, int32_t *acc) {
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
            c61 = c00, c70 = c00, c71 = c00;
    for (int64_t q = 0; q < kq; q++, ap += 32, bp += 128) {
        __m512i b0 = _mm512_load_si512((const void *)bp);
        __m512i b1 = _mm512_load_si512((const void *)(bp + 64));
        __m512i a;
        int32_t w;
#define ROW_(r)                                                 \
    memcpy(&w, ap + 4 * (r), 4);                                \
    a = _mm512_set1_epi32(w);                                   \
    c##r##0 = _mm512_dpbusd_epi32(c##r##0, a, b0);              \
    c##r##1 = _mm512_dpbusd_epi32(c##r##1, a, b1);
        ROW_(0) ROW_(1) ROW_(2) ROW_(3) ROW_(4) ROW_(5) ROW_(6) ROW_(7)
#undef ROW_
    }
#define ST_(r)                                                    \
    _mm512_storeu_si512((void *)(acc + (r) * 32), c##r##0);       \
    _mm512_storeu_si512((void *)(acc + (r) * 32 + 16), c##r##1);
    ST_(0) ST_(1) ST_(2) ST_(3) ST_(4) ST_(5) ST_(6) ST_(7)
#undef ST_
}

__attribute__((target("avx2"))) static void kernel_avx2(const uint8_t *ap8, const uint8_t *bp8,
                                                        int64_t kh, int32_t *acc) {
    const int16_t *ap = (const int16_t *)ap8, *bp = (const int16_t *)bp8;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t q = 0; q < kh; q++, ap += 12, bp += 32) {
        __m256i b0 = _mm256_load_si256((const __m256i *)bp);
        __m256i b1 = _mm256_load_si256((const __m256i *)(bp + 16));
        __m256i a;
        int32_t w;
#define ROW_(r)                                                                  \
    memcpy(&w, ap + 2 * (r), 4);                                                 \
    a = _mm256_set1_epi32(w);                                                    \
    c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(a, b0));               \
    c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(a, b1));
        ROW_(0) ROW_(1) ROW_(2) ROW_(3) ROW_(4) ROW_(5)
#undef ROW_
    }
#define ST_(r)                                                          \
    _mm256_storeu_si256((__m256i *)(acc + (r) * 16), c##r##0);          \
    _mm256_storeu_si256((__m256i *)(acc + (r) * 16 + 8), c##r##1);
    ST_(0) ST_(1) ST_(2) ST_(3) ST_(4) ST_(5)
#undef ST_
}
#endif

typedef struct {
    const ifd_qgemm_params *p;
    const qshape *s;
    qlayout l;
    uint8_t *ws;
    qpath path;
    bool a_inner; /* tiles walk all row blocks per column chunk (A is re-read, B once) */
} tile_job;

static void tiles(void *arg, int64_t begin, int64_t end) {
    const tile_job *j = arg;
    const ifd_qgemm_params *p = j->p;
    const qshape *s = j->s;
    size_t kpad = (size_t)j->l.kgroups * (size_t)s->kg;
    const int32_t *rs = (const int32_t *)(j->ws + j->l.rs_off);
    const int32_t *cs = (const int32_t *)(j->ws + j->l.cs_off);
    const int32_t *za = (const int32_t *)(j->ws + j->l.za_off);
    const int32_t *zb = (const int32_t *)(j->ws + j->l.zb_off);
    int32_t acc[8 * 32];
    for (int64_t t = begin; t < end; t++) {
        int64_t mb, nc;
        if (j->a_inner) {
            nc = t / j->l.mblocks;
            mb = t % j->l.mblocks;
        } else {
            mb = t / j->l.nchunks;
            nc = t % j->l.nchunks;
        }
        const uint8_t *ap = j->ws + j->l.a_off + (size_t)mb * s->mr * kpad * s->es;
        const uint8_t *bp = j->ws + j->l.b_off + (size_t)nc * s->nc * kpad * s->es;
#ifdef IFD_X86
        if (j->path == PATH_VNNI)
            kernel_vnni(ap, bp, j->l.kgroups, acc);
        else
            kernel_avx2(ap, bp, j->l.kgroups, acc);
#endif
        int64_t m0 = mb * s->mr, n0 = nc * s->nc;
        int rows = (int)IFD_MIN((int64_t)s->mr, p->m - m0);
        int cols = (int)IFD_MIN((int64_t)s->nc, p->n - n0);
        for (int r = 0; r < rows; r++) {
            uint32_t *restrict c = (uint32_t *)(p->c + (m0 + r) * p->ldc + n0);
            const uint32_t *restrict ar = (const uint32_t *)(acc + r * s->nc);
            const uint32_t *restrict zbn = (const uint32_t *)(zb + n0);
            const uint32_t *restrict csn = (const uint32_t *)(cs + n0);
            uint32_t rsm = (uint32_t)rs[m0 + r], zam = (uint32_t)za[m0 + r];
            for (int n = 0; n < cols; n++) c[n] = ar[n] - zbn[n] * rsm - zam * csn[n];
        }
    }
}

void ifd_qgemm(const ifd_qgemm_params *p, void *workspace, ifd_thread_pool *pool) {
    if (p->m <= 0 || p->n <= 0) return;
    qpath path = get_path();
    if (path == PATH_SCALAR || p->k == 0) {
        scalar_job sj = {p};
        int64_t grain = IFD_MAX((int64_t)1, 32768 / IFD_MAX((int64_t)1, p->n * IFD_MAX(p->k, 1)));
        ifd_parallel_for(pool, p->m, grain, scalar_rows, &sj);
        return;
    }
    pack_job pj = {p, &g_shapes[path], {0}, workspace};
    if (!layout(path, p->m, p->n, p->k, &pj.l)) return; /* caller sized the workspace */
    ifd_parallel_for(pool, pj.l.mblocks, 4, pack_a_blocks, &pj);
    ifd_parallel_for(pool, pj.l.nchunks, 2, pack_b_chunks, &pj);
    /* re-read the smaller packed operand; it is the likelier one to stay in cache */
    tile_job tj = {p, pj.s, pj.l, workspace, path, p->m <= p->n};
    int64_t ntiles = pj.l.mblocks * pj.l.nchunks;
    /* a tile is MR*NC*K multiply-adds; aim for chunks of ~256k of them */
    int64_t per_tile = (int64_t)pj.s->mr * pj.s->nc * IFD_MAX(p->k, 1);
    int64_t grain = IFD_MAX((int64_t)1, ((int64_t)1 << 18) / per_tile);
    ifd_parallel_for(pool, ntiles, grain, tiles, &tj);
}
