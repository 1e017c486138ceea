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

static qpath cpu_path(void) {
    qpath p = PATH_SCALAR;
#ifdef IFD_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        p = PATH_VNNI;
    else if (__builtin_cpu_supports("avx2"))
        p = PATH_AVX2;
#endif
    return p;
}

static qpath get_path(void) {
    if ((int)g_path < 0) g_path = cpu_path(); /* benign race: every thread computes the same */
    return g_path;
}

static const char *path_name(qpath p) {
    switch (p) {
    case PATH_VNNI: return "avx512vnni";
    case PATH_AVX2: return "avx2";
    default: return "scalar";
    }
}

const char *ifd_qgemm_kernel_name(void) { return path_name(get_path()); }

bool ifd_qgemm_force_kernel(const char *name) {
    qpath best = cpu_path();
    if (!name) {
        g_path = best;
        return true;
    }
    for (int p = PATH_SCALAR; p <= (int)best; p++)
        if (!strcmp(name, path_name((qpath)p))) {
            g_path = (qpath)p;
            return true;
        }
    return false;
}

static inline size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* One operand's packed form: panels, then a sum (row sums of A', column sums of B' less
 * K * zero point) and the adjusted zero point per row/column (padding included). */
typedef struct {
    int64_t blocks, kgroups; /* row blocks (A) or column chunks (B); k groups */
    size_t panel_bytes, sums_off, zeros_off, total;
} side_layout;

static bool side_size(qpath path, bool as_b, int64_t rows, int64_t k, side_layout *l) {
    const qshape *s = &g_shapes[path];
    int width = as_b ? s->nc : s->mr;
    memset(l, 0, sizeof *l);
    if (rows < 0 || k < 0) return false;
    l->blocks = (rows + width - 1) / width;
    l->kgroups = (k + s->kg - 1) / s->kg;
    size_t kpad, padded = (size_t)l->blocks * (size_t)width, t = 0;
    if (!ifd_mul_size((size_t)l->kgroups, (size_t)s->kg * (size_t)s->es, &kpad) ||
        !ifd_mul_size(kpad, padded, &l->panel_bytes) || padded > SIZE_MAX / 8)
        return false;
    if (!ifd_add_size(t, align64(l->panel_bytes), &t)) return false;
    l->sums_off = t;
    if (!ifd_add_size(t, align64(padded * 4), &t)) return false;
    l->zeros_off = t;
    if (!ifd_add_size(t, align64(padded * 4), &t)) return false;
    l->total = t;
    return true;
}

bool ifd_qgemm_workspace_size(int64_t m, int64_t n, int64_t k, size_t *bytes) {
    ifd_qgemm_args a = {.m = m, .n = n, .k = k};
    return ifd_qgemm_ex_workspace_size(&a, bytes);
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
    const qshape *s;
    int64_t rows, k, kgroups; /* rows: M (A) or N (B) */
    const uint8_t *src;
    int64_t ld;
    bool is_signed;
    const int32_t *zero;
    int64_t zero_count;
    uint8_t *dst;
    int32_t *sums, *zeros;
} pack_job;

static void pack_a_blocks(void *arg, int64_t begin, int64_t end) {
    const pack_job *j = arg;
    const int mr = j->s->mr, kg = j->s->kg, es = j->s->es;
    const int64_t kgroups = j->kgroups, kfull = j->k / kg;
    size_t kpad = (size_t)kgroups * (size_t)kg;
    uint8_t flip = j->is_signed ? 0x80 : 0;
    int32_t *rs = j->sums, *za = j->zeros;
    for (int64_t mb = begin; mb < end; mb++) {
        uint8_t *dst8 = j->dst + (size_t)mb * mr * kpad * es;
        uint16_t *dst16 = (uint16_t *)dst8;
        for (int r = 0; r < mr; r++) {
            int64_t row = mb * mr + r;
            if (row >= j->rows) { /* padding rows: zeros, no zero point */
                for (int64_t g = 0; g < kgroups; g++)
                    for (int e = 0; e < kg; e++) {
                        size_t at = ((size_t)g * mr + r) * kg + e;
                        if (es == 1) dst8[at] = 0; else dst16[at] = 0;
                    }
                rs[row] = 0;
                za[row] = 0;
                continue;
            }
            const uint8_t *restrict src = j->src + row * j->ld;
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
                    uint8_t v = k < j->k ? (uint8_t)(src[k] ^ flip) : 0;
                    size_t at = ((size_t)g * mr + r) * kg + e;
                    if (es == 1) dst8[at] = v; else dst16[at] = v;
                    sum += v;
                }
            rs[row] = (int32_t)sum;
            int32_t z = j->zero_count ? j->zero[j->zero_count == 1 ? 0 : row] : 0;
            za[row] = z + (j->is_signed ? 128 : 0);
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
    const int nc_w = j->s->nc, kg = j->s->kg, es = j->s->es;
    size_t kpad = (size_t)j->kgroups * (size_t)kg;
    uint8_t flip = j->is_signed ? 0 : 0x80;
    int32_t *cs = j->sums, *zb = j->zeros;
    for (int64_t nc = begin; nc < end; nc++) {
        uint8_t *dst8 = j->dst + (size_t)nc * nc_w * kpad * es;
        int16_t *dst16 = (int16_t *)dst8;
        int64_t col0 = nc * nc_w;
        int ncols = (int)IFD_MIN((int64_t)nc_w, j->rows - col0);
        int32_t sums[32] = {0};
        int64_t g0 = 0;
#ifdef IFD_X86
        if (ncols == nc_w) { /* full chunk: vector transpose of the complete k groups */
            int64_t kfull = j->k / kg;
            int32_t vs[32];
            if (es == 1)
                pack_b_vnni_full(j->src + col0, j->ld, kfull, flip, dst8, vs);
            else
                pack_b_avx2_full(j->src + col0, j->ld, kfull, flip, dst16, vs);
            for (int c = 0; c < nc_w; c++) sums[c] = vs[c];
            g0 = kfull;
        }
#endif
        for (int64_t g = g0; g < j->kgroups; g++)
            for (int e = 0; e < kg; e++) {
                int64_t k = g * kg + e;
                int cols = k < j->k ? ncols : 0;
                const uint8_t *restrict src = j->src + (k < j->k ? k : 0) * j->ld + col0;
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
            if (c < ncols && j->zero_count) z = j->zero[j->zero_count == 1 ? 0 : col];
            z -= j->is_signed ? 0 : 128;
            zb[col] = z;
            cs[col] = (int32_t)((uint32_t)sums[c] - (uint32_t)j->k * (uint32_t)z);
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

/* ---- packed operands ------------------------------------------------------------------ */

struct ifd_qgemm_packed {
    bool as_b;
    qpath path;
    int64_t rows, cols; /* as given: M x K (A) or K x N (B) */
    side_layout l;
    uint8_t *mem;       /* vector paths: side_layout's bytes; scalar: a copy of the operand */
    int32_t *zero;      /* scalar path: the zero points as given */
    int64_t zero_count;
    bool is_signed;
};

/* Views of one operand as the tiles read it. */
typedef struct {
    const uint8_t *panels;
    const int32_t *sums, *zeros;
    side_layout l;
} side_view;

static void pack_side(const qshape *s, bool as_b, int64_t rows, int64_t k, const uint8_t *src,
                      int64_t ld, bool is_signed, const int32_t *zero, int64_t zero_count,
                      const side_layout *l, uint8_t *mem, ifd_thread_pool *pool) {
    pack_job pj = {s, rows, k, l->kgroups, src, ld, is_signed, zero, zero_count, mem,
                   (int32_t *)(mem + l->sums_off), (int32_t *)(mem + l->zeros_off)};
    if (as_b)
        ifd_parallel_for(pool, l->blocks, 2, pack_b_chunks, &pj);
    else
        ifd_parallel_for(pool, l->blocks, 4, pack_a_blocks, &pj);
}

ifd_status ifd_qgemm_pack(bool as_b, int64_t rows, int64_t cols, const uint8_t *src, int64_t ld,
                          bool is_signed, const int32_t *zero, int64_t zero_count,
                          ifd_qgemm_packed **out) {
    *out = NULL;
    int64_t per = as_b ? cols : rows; /* zero points follow A's rows or B's columns */
    if (rows < 0 || cols < 0 || ld < (as_b ? cols : cols) || (rows > 0 && !src) ||
        (zero_count != 0 && zero_count != 1 && zero_count != per) || (zero_count && !zero))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "qgemm pack: bad operand (%lld x %lld, ld %lld, "
                         "%lld zero points)", (long long)rows, (long long)cols, (long long)ld,
                         (long long)zero_count);
    ifd_qgemm_packed *p = ifd_calloc(1, sizeof *p);
    if (!p) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing int8 weights");
    p->as_b = as_b;
    p->path = get_path();
    p->rows = rows;
    p->cols = cols;
    p->is_signed = is_signed;
    p->zero_count = zero_count;
    size_t bytes;
    if (p->path == PATH_SCALAR) {
        if (!ifd_mul_size((size_t)rows, (size_t)cols, &bytes)) goto too_big;
        p->mem = ifd_malloc_aligned(bytes ? bytes : 1);
        p->zero = ifd_calloc((size_t)(zero_count ? zero_count : 1), sizeof(int32_t));
        if (!p->mem || !p->zero) goto oom;
        for (int64_t r = 0; r < rows; r++)
            memcpy(p->mem + (size_t)(r * cols), src + r * ld, (size_t)cols);
        if (zero_count) memcpy(p->zero, zero, (size_t)zero_count * sizeof(int32_t));
    } else {
        /* A: its rows are M and its depth K = cols; B: its columns N = cols, depth K = rows */
        if (!side_size(p->path, as_b, as_b ? cols : rows, as_b ? rows : cols, &p->l)) goto too_big;
        p->mem = ifd_malloc_aligned(p->l.total ? p->l.total : 64);
        if (!p->mem) goto oom;
        pack_side(&g_shapes[p->path], as_b, as_b ? cols : rows, as_b ? rows : cols, src, ld,
                  is_signed, zero, zero_count, &p->l, p->mem, NULL);
    }
    *out = p;
    return IFD_OK;
too_big:
    ifd_qgemm_packed_free(p);
    return ifd_error(IFD_ERR_TOO_BIG, "qgemm pack: %lld x %lld operand is too big", (long long)rows,
                     (long long)cols);
oom:
    ifd_qgemm_packed_free(p);
    return ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing int8 weights");
}

void ifd_qgemm_packed_free(ifd_qgemm_packed *p) {
    if (!p) return;
    ifd_free_aligned(p->mem);
    ifd_free(p->zero);
    ifd_free(p);
}

/* ---- epilogues ------------------------------------------------------------------------- */

/* Round to nearest even for |v| <= 2^22 with adds only, so the loops vectorize. */
static inline float rne_small(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

/* One row piece of corrected int32 sums v[0..cols) at (row, col0) to C. cs/cb: the column
 * factors and biases of these columns (ones/zeros when absent). */
static void store_row(const ifd_qgemm_args *a, int64_t row, int64_t col0, int cols,
                      const int32_t *restrict v, const float *restrict cs,
                      const float *restrict cb) {
    const ifd_qgemm_epilogue *ep = a->ep;
    if (!ep || ep->kind == IFD_QGEMM_OUT_INT32) {
        memcpy((int32_t *)a->c + row * a->ldc + col0, v, (size_t)cols * sizeof(int32_t));
        return;
    }
    float rs = ep->scale * (ep->row_scale ? ep->row_scale[row] : 1.0f);
    float rb = ep->row_bias ? ep->row_bias[row] : 0.0f;
    float lo = ep->lo, hi = ep->hi;
    if (ep->kind == IFD_QGEMM_OUT_FLOAT) {
        float *restrict c = (float *)a->c + row * a->ldc + col0;
        for (int n = 0; n < cols; n++) {
            float f = (float)v[n] * (rs * cs[n]) + (rb + cb[n]);
            f = f > lo ? f : lo;
            c[n] = f < hi ? f : hi;
        }
        return;
    }
    uint8_t *restrict c = (uint8_t *)a->c + row * a->ldc + col0;
    float zp = ep->zero_point;
    /* clamp in the real domain (the activation), then to uint8 around the zero point */
    lo = lo > -zp ? lo : -zp;
    hi = hi < 255.0f - zp ? hi : 255.0f - zp;
    for (int n = 0; n < cols; n++) {
        float f = (float)v[n] * (rs * cs[n]) + (rb + cb[n]);
        f = f > lo ? f : lo;
        f = f < hi ? f : hi;
        c[n] = (uint8_t)(int32_t)rne_small(f + zp);
    }
}

/* The column factors and biases of columns [col0, col0 + cols). */
static void column_terms(const ifd_qgemm_epilogue *ep, int64_t col0, int cols, float *cs,
                         float *cb) {
    for (int n = 0; n < cols; n++) {
        cs[n] = ep && ep->col_scale ? ep->col_scale[col0 + n] : 1.0f;
        cb[n] = ep && ep->col_bias ? ep->col_bias[col0 + n] : 0.0f;
    }
}

/* ---- tiles ----------------------------------------------------------------------------- */

typedef struct {
    const ifd_qgemm_args *a;
    const qshape *s;
    side_view A, B;
    qpath path;
    bool a_inner; /* tiles walk all row blocks per column chunk (A is re-read, B once) */
} tile_job;

static void tiles(void *arg, int64_t begin, int64_t end) {
    const tile_job *j = arg;
    const ifd_qgemm_args *p = j->a;
    const qshape *s = j->s;
    size_t kpad = (size_t)j->A.l.kgroups * (size_t)s->kg;
    const int32_t *rs = j->A.sums, *za = j->A.zeros, *cs = j->B.sums, *zb = j->B.zeros;
    int32_t acc[8 * 32], v[32];
    float csc[32], cbias[32];
    int64_t last_nc = -1;
    for (int64_t t = begin; t < end; t++) {
        int64_t mb, nc;
        if (j->a_inner) {
            nc = t / j->A.l.blocks;
            mb = t % j->A.l.blocks;
        } else {
            mb = t / j->B.l.blocks;
            nc = t % j->B.l.blocks;
        }
        const uint8_t *ap = j->A.panels + (size_t)mb * s->mr * kpad * s->es;
        const uint8_t *bp = j->B.panels + (size_t)nc * s->nc * kpad * s->es;
#ifdef IFD_X86
        if (j->path == PATH_VNNI)
            kernel_vnni(ap, bp, j->A.l.kgroups, acc);
        else
            kernel_avx2(ap, bp, j->A.l.kgroups, acc);
#endif
        int64_t m0 = mb * s->mr, n0 = nc * s->nc;
        int rows = (int)IFD_MIN((int64_t)s->mr, p->m - m0);
        int cols = (int)IFD_MIN((int64_t)s->nc, p->n - n0);
        if (nc != last_nc) {
            column_terms(p->ep, n0, cols, csc, cbias);
            last_nc = nc;
        }
        for (int r = 0; r < rows; r++) {
            const uint32_t *restrict ar = (const uint32_t *)(acc + r * s->nc);
            const uint32_t *restrict zbn = (const uint32_t *)(zb + n0);
            const uint32_t *restrict csn = (const uint32_t *)(cs + n0);
            uint32_t rsm = (uint32_t)rs[m0 + r], zam = (uint32_t)za[m0 + r];
            for (int n = 0; n < cols; n++) v[n] = (int32_t)(ar[n] - zbn[n] * rsm - zam * csn[n]);
            store_row(p, m0 + r, n0, cols, v, csc, cbias);
        }
    }
}

/* ---- driver ----------------------------------------------------------------------------- */

static bool packed_ok(const ifd_qgemm_packed *pk, bool as_b, int64_t rows, int64_t cols,
                      qpath path) {
    return pk->as_b == as_b && pk->rows == rows && pk->cols == cols && pk->path == path;
}

/* The path of this product and the workspace layout of its raw operands (and, on the scalar
 * path with an epilogue, the int32 sums). */
typedef struct {
    qpath path;
    side_layout la, lb;
    size_t a_off, b_off, c_off, total;
} ex_layout;

static bool ex_plan(const ifd_qgemm_args *a, ex_layout *x) {
    memset(x, 0, sizeof *x);
    if (a->m < 0 || a->n < 0 || a->k < 0) return false;
    x->path = a->pa ? a->pa->path : a->pb ? a->pb->path : get_path();
    if ((a->pa && !packed_ok(a->pa, false, a->m, a->k, x->path)) ||
        (a->pb && !packed_ok(a->pb, true, a->k, a->n, x->path)))
        return false;
    size_t t = 0;
    if (x->path == PATH_SCALAR) {
        if (a->ep && a->ep->kind != IFD_QGEMM_OUT_INT32) {
            size_t mn;
            if (!ifd_mul_size((size_t)a->m, (size_t)a->n, &mn) || !ifd_mul_size(mn, 4, &t))
                return false;
        }
        x->total = t;
        return true;
    }
    if (a->pa) x->la = a->pa->l;
    else if (!side_size(x->path, false, a->m, a->k, &x->la)) return false;
    if (a->pb) x->lb = a->pb->l;
    else if (!side_size(x->path, true, a->n, a->k, &x->lb)) return false;
    x->a_off = t;
    if (!a->pa && !ifd_add_size(t, x->la.total, &t)) return false;
    x->b_off = t;
    if (!a->pb && !ifd_add_size(t, x->lb.total, &t)) return false;
    x->total = t;
    return true;
}

bool ifd_qgemm_ex_workspace_size(const ifd_qgemm_args *a, size_t *bytes) {
    ex_layout x;
    if (!ex_plan(a, &x)) return false;
    *bytes = x.total ? x.total : 64;
    return true;
}

typedef struct {
    const ifd_qgemm_args *a;
    const int32_t *sums; /* m x n */
} scalar_epi_job;

static void scalar_epilogue(void *arg, int64_t begin, int64_t end) {
    const scalar_epi_job *j = arg;
    const ifd_qgemm_args *a = j->a;
    float cs[64], cb[64];
    for (int64_t n0 = 0; n0 < a->n; n0 += 64) {
        int cols = (int)IFD_MIN((int64_t)64, a->n - n0);
        column_terms(a->ep, n0, cols, cs, cb);
        for (int64_t r = begin; r < end; r++) store_row(a, r, n0, cols, j->sums + r * a->n + n0, cs, cb);
    }
}

void ifd_qgemm_ex(const ifd_qgemm_args *a, void *workspace, ifd_thread_pool *pool) {
    ex_layout x;
    if (a->m <= 0 || a->n <= 0 || !ex_plan(a, &x)) return; /* the caller sized the workspace */
    uint8_t *ws = workspace;
    if (a->k == 0) { /* empty sums: C is the epilogue of zeros */
        int32_t zeros[64] = {0};
        float cs[64], cb[64];
        for (int64_t n0 = 0; n0 < a->n; n0 += 64) {
            int cols = (int)IFD_MIN((int64_t)64, a->n - n0);
            column_terms(a->ep, n0, cols, cs, cb);
            for (int64_t r = 0; r < a->m; r++) store_row(a, r, n0, cols, zeros, cs, cb);
        }
        return;
    }
    if (x.path == PATH_SCALAR) {
        bool direct = !a->ep || a->ep->kind == IFD_QGEMM_OUT_INT32;
        ifd_qgemm_params p = {a->m, a->n, a->k, a->a, a->lda, a->a_signed, a->a_zero,
                              a->a_zero_count, a->b, a->ldb, a->b_signed, a->b_zero,
                              a->b_zero_count, direct ? a->c : (int32_t *)ws,
                              direct ? a->ldc : a->n};
        if (a->pa) {
            p.a = a->pa->mem; p.lda = a->k; p.a_signed = a->pa->is_signed;
            p.a_zero = a->pa->zero; p.a_zero_count = a->pa->zero_count;
        }
        if (a->pb) {
            p.b = a->pb->mem; p.ldb = a->n; p.b_signed = a->pb->is_signed;
            p.b_zero = a->pb->zero; p.b_zero_count = a->pb->zero_count;
        }
        scalar_job sj = {&p};
        int64_t grain = IFD_MAX((int64_t)1, 32768 / IFD_MAX((int64_t)1, a->n * IFD_MAX(a->k, 1)));
        ifd_parallel_for(pool, a->m, grain, scalar_rows, &sj);
        if (!direct) {
            scalar_epi_job ej = {a, (const int32_t *)ws};
            ifd_parallel_for(pool, a->m, IFD_MAX((int64_t)1, 4096 / a->n), scalar_epilogue, &ej);
        }
        return;
    }
    const qshape *s = &g_shapes[x.path];
    tile_job tj = {a, s, {0}, {0}, x.path, false};
    if (a->pa) {
        tj.A = (side_view){a->pa->mem, (const int32_t *)(a->pa->mem + a->pa->l.sums_off),
                           (const int32_t *)(a->pa->mem + a->pa->l.zeros_off), a->pa->l};
    } else {
        uint8_t *mem = ws + x.a_off;
        pack_side(s, false, a->m, a->k, a->a, a->lda, a->a_signed, a->a_zero, a->a_zero_count,
                  &x.la, mem, pool);
        tj.A = (side_view){mem, (const int32_t *)(mem + x.la.sums_off),
                           (const int32_t *)(mem + x.la.zeros_off), x.la};
    }
    if (a->pb) {
        tj.B = (side_view){a->pb->mem, (const int32_t *)(a->pb->mem + a->pb->l.sums_off),
                           (const int32_t *)(a->pb->mem + a->pb->l.zeros_off), a->pb->l};
    } else {
        uint8_t *mem = ws + x.b_off;
        pack_side(s, true, a->n, a->k, a->b, a->ldb, a->b_signed, a->b_zero, a->b_zero_count,
                  &x.lb, mem, pool);
        tj.B = (side_view){mem, (const int32_t *)(mem + x.lb.sums_off),
                           (const int32_t *)(mem + x.lb.zeros_off), x.lb};
    }
    /* re-read the smaller packed operand; it is the likelier one to stay in cache */
    tj.a_inner = a->m <= a->n;
    int64_t ntiles = x.la.blocks * x.lb.blocks;
    /* a tile is MR*NC*K multiply-adds; aim for chunks of ~256k of them */
    int64_t per_tile = (int64_t)s->mr * s->nc * IFD_MAX(a->k, 1);
    int64_t grain = IFD_MAX((int64_t)1, ((int64_t)1 << 18) / per_tile);
    ifd_parallel_for(pool, ntiles, grain, tiles, &tj);
}

void ifd_qgemm(const ifd_qgemm_params *p, void *workspace, ifd_thread_pool *pool) {
    ifd_qgemm_args a = {.m = p->m, .n = p->n, .k = p->k, .a = p->a, .lda = p->lda,
                        .a_signed = p->a_signed, .a_zero = p->a_zero,
                        .a_zero_count = p->a_zero_count, .b = p->b, .ldb = p->ldb,
                        .b_signed = p->b_signed, .b_zero = p->b_zero,
                        .b_zero_count = p->b_zero_count, .c = p->c, .ldc = p->ldc};
    ifd_qgemm_ex(&a, workspace, pool);
}
