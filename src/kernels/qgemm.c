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
 *   - AMX (Sapphire Rapids and later): tdpb{u,s}{u,s}d on 16 x 64-byte tiles, a 32 x 32
 *     block of C in four accumulator tiles. AMX multiplies every signedness pair, so here
 *     nothing is flipped (za' = za, zb' = zb): with symmetric int8 weights (za = 0) a
 *     convolution needs no column sums of its im2col matrix. B keeps the VNNI layout (a tile
 *     row is one k quad of 16 columns, read with a 128-byte stride); A is packed in 64-byte
 *     k groups so that a tile row is 64 consecutive k of one row,
 *   - scalar: int32 loops on the unpacked operands.
 * Packed A: per block of MR rows, [K groups][MR][group] elements; packed B: per chunk of NC
 * columns, [K groups][NC][group]; K is padded to the path's alignment. Padding is zero so it
 * adds nothing to the sums. */
#include "kernels/qgemm.h"

#include "kernels/vecmath.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IFD_X86 1
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define IFD_AMX 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

typedef enum { PATH_SCALAR, PATH_AVX2, PATH_VNNI, PATH_AMX } qpath;

typedef struct {
    int mr, nc;  /* rows per A block, columns per B chunk */
    int kg, akg; /* k per interleaved group in packed B and in packed A */
    int kalign;  /* K is padded to a multiple of this (a multiple of kg and akg) */
    int es;      /* packed element bytes */
    bool flip;   /* operands brought to uint8 A x int8 B; AMX has all four signedness pairs */
} qshape;

static const qshape g_shapes[] = {
    [PATH_SCALAR] = {1, 1, 1, 1, 1, 1, false},
    [PATH_AVX2] = {6, 16, 2, 2, 2, 2, true},
    [PATH_VNNI] = {8, 32, 4, 4, 4, 1, true},
    [PATH_AMX] = {32, 32, 4, 64, 64, 1, false},
};

static qpath g_path = (qpath)-1;

#ifdef IFD_AMX
/* AMX needs the CPU's AMX-TILE and AMX-INT8 bits, the OS enabling the tile state in XCR0
 * (bits 17 and 18), and on Linux a per-process permission (ARCH_REQ_XCOMP_PERM for
 * XFEATURE_XTILEDATA) before the first tile instruction; without it that instruction faults.
 * The request is made once; when any step fails the VNNI path is used. */
static bool amx_usable(void) {
    static int state = -1; /* -1 unknown, 0 no, 1 yes; benign race: every caller agrees */
    if (state >= 0) return state == 1;
    unsigned a = 0, b = 0, c = 0, d = 0;
    bool ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 25 & 1);
    if (ok) { /* OSXSAVE, then XCR0 through xgetbv (encoded: no -mxsave needed) */
        unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
        ok = __get_cpuid(1, &a1, &b1, &c1, &d1) && (c1 >> 27 & 1);
        if (ok) {
            unsigned lo, hi;
            __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
            ok = (lo >> 17 & 3) == 3;
        }
    }
    if (ok) ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
    state = ok ? 1 : 0;
    return ok;
}
#endif

static qpath cpu_path(void) {
    qpath p = PATH_SCALAR;
#ifdef IFD_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        p = PATH_VNNI;
    else if (__builtin_cpu_supports("avx2"))
        p = PATH_AVX2;
#endif
#ifdef IFD_AMX
    if (p == PATH_VNNI && amx_usable()) p = PATH_AMX;
#endif
    return p;
}

static qpath get_path(void) {
    if ((int)g_path < 0) g_path = cpu_path(); /* benign race: every thread computes the same */
    return g_path;
}

static const char *path_name(qpath p) {
    switch (p) {
    case PATH_AMX: return "amx";
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
    int64_t blocks, kgroups; /* row blocks (A) or column chunks (B); k groups of this side */
    int64_t kpad;            /* K padded to the path's alignment */
    size_t panel_bytes, sums_off, zeros_off, total;
} side_layout;

static bool side_size(qpath path, bool as_b, int64_t rows, int64_t k, side_layout *l) {
    const qshape *s = &g_shapes[path];
    int width = as_b ? s->nc : s->mr;
    memset(l, 0, sizeof *l);
    if (rows < 0 || k < 0 || k > INT64_MAX - s->kalign) return false;
    l->blocks = (rows + width - 1) / width;
    l->kpad = (k + s->kalign - 1) / s->kalign * s->kalign;
    l->kgroups = l->kpad / (as_b ? s->kg : s->akg);
    size_t kpad, padded = (size_t)l->blocks * (size_t)width, t = 0;
    if (!ifd_mul_size((size_t)l->kpad, (size_t)s->es, &kpad) ||
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

#ifdef IFD_X86
/* One uint8 row of A into the AMX layout: kfull groups of 64 bytes, group g at dst + g *
 * stride; returns the row sum (vpsadbw against zero). */
__attribute__((target("avx512f,avx512bw"))) static uint32_t
amx_pack_row_u8(const uint8_t *src, int64_t kfull, uint8_t *dst, size_t stride) {
    __m512i acc = _mm512_setzero_si512();
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t g = 0; g < kfull; g++, src += 64, dst += stride) {
        __m512i v = _mm512_loadu_si512((const void *)src);
        _mm512_storeu_si512((void *)dst, v);
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, zero));
    }
    return (uint32_t)_mm512_reduce_add_epi64(acc);
}
#endif

static void pack_a_blocks(void *arg, int64_t begin, int64_t end) {
    const pack_job *j = arg;
    const int mr = j->s->mr, kg = j->s->akg, es = j->s->es;
    const int64_t kgroups = j->kgroups, kfull = j->k / kg;
    size_t kpad = (size_t)kgroups * (size_t)kg;
    uint8_t flip = j->is_signed && j->s->flip ? 0x80 : 0;
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
            if (j->is_signed && !flip) { /* AMX: int8 kept as is, its row sum is signed */
                for (int64_t g = 0; g < kgroups; g++) {
                    uint8_t *restrict d = dst8 + ((size_t)g * mr + r) * kg;
                    for (int e = 0; e < kg; e++) {
                        int64_t k = g * kg + e;
                        uint8_t v = k < j->k ? src[k] : 0;
                        d[e] = v;
                        sum += (uint32_t)(int32_t)(int8_t)v;
                    }
                }
                rs[row] = (int32_t)sum;
                za[row] = j->zero_count ? j->zero[j->zero_count == 1 ? 0 : row] : 0;
                continue;
            }
            if (es == 1 && kg == 4) {
                for (int64_t g = 0; g < kfull; g++)
                    for (int e = 0; e < 4; e++) {
                        uint8_t v = src[g * 4 + e] ^ flip;
                        dst8[((size_t)g * mr + r) * 4 + e] = v;
                        sum += v;
                    }
            } else if (es == 1) { /* AMX: 64 consecutive k of the row per group (unsigned here) */
#ifdef IFD_X86
                sum = amx_pack_row_u8(src, kfull, dst8 + (size_t)r * 64, (size_t)mr * 64);
#else
                for (int64_t g = 0; g < kfull; g++) {
                    uint8_t *restrict d = dst8 + ((size_t)g * mr + r) * 64;
                    const uint8_t *restrict sg = src + g * 64;
                    for (int e = 0; e < 64; e++) {
                        uint8_t v = sg[e] ^ flip;
                        d[e] = v;
                        sum += v;
                    }
                }
#endif
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
            za[row] = z + (flip ? 128 : 0);
        }
    }
}

#ifdef IFD_X86
/* 32 columns of 4 rows (r, r + stride, ...) XORed with fx, interleaved bytewise per column as
 * VNNI wants them: *lo holds columns 0-15 (4 bytes each), *hi columns 16-31. */
static inline __attribute__((always_inline, target("avx512f,avx512bw"))) void
interleave4(const uint8_t *r, int64_t stride, __m256i fx, __m512i *lo, __m512i *hi) {
    __m256i r0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)r), fx);
    __m256i r1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + stride)), fx);
    __m256i r2 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + 2 * stride)), fx);
    __m256i r3 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + 3 * stride)), fx);
    __m256i t0 = _mm256_unpacklo_epi8(r0, r1), t1 = _mm256_unpackhi_epi8(r0, r1);
    __m256i t2 = _mm256_unpacklo_epi8(r2, r3), t3 = _mm256_unpackhi_epi8(r2, r3);
    __m256i u0 = _mm256_unpacklo_epi16(t0, t2), u1 = _mm256_unpackhi_epi16(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi16(t1, t3), u3 = _mm256_unpackhi_epi16(t1, t3);
    *lo = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_permute2x128_si256(u0, u1, 0x20)),
                             _mm256_permute2x128_si256(u2, u3, 0x20), 1);
    *hi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_permute2x128_si256(u0, u1, 0x31)),
                             _mm256_permute2x128_si256(u2, u3, 0x31), 1);
}

/* One full chunk (32 columns) of B for VNNI: 4 rows interleaved bytewise per column, column
 * sums by vpdpbusd against ones. kfull: number of complete k-quads to do here. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
pack_b_vnni_full(const uint8_t *b, int64_t ldb, int64_t kfull, uint8_t flip, bool sum_unsigned,
                 uint8_t *dst, int32_t *sums) {
    const __m256i fx = _mm256_set1_epi8((char)flip);
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    for (int64_t g = 0; g < kfull; g++, dst += 128) {
        const uint8_t *r = b + g * 4 * ldb;
        __m512i lo, hi;
        interleave4(r, ldb, fx, &lo, &hi);
        _mm512_store_si512((void *)dst, lo);
        _mm512_store_si512((void *)(dst + 64), hi);
        if (sum_unsigned) {
            s0 = _mm512_dpbusd_epi32(s0, lo, ones);
            s1 = _mm512_dpbusd_epi32(s1, hi, ones);
        } else {
            s0 = _mm512_dpbusd_epi32(s0, ones, lo);
            s1 = _mm512_dpbusd_epi32(s1, ones, hi);
        }
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
    /* flip paths: uint8 B becomes int8 (-128); AMX keeps B as it is */
    uint8_t flip = j->is_signed || !j->s->flip ? 0 : 0x80;
    bool unsigned_sums = !j->is_signed && !j->s->flip;
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
                pack_b_vnni_full(j->src + col0, j->ld, kfull, flip, unsigned_sums, dst8, vs);
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
                        uint8_t v = src[c] ^ flip;
                        d[c * 4] = v;
                        sums[c] += unsigned_sums ? (int32_t)v : (int32_t)(int8_t)v;
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
            z -= flip ? 128 : 0;
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

#ifdef IFD_AMX
/* The tile palette: tiles 0-3 accumulate C (16 rows x 16 int32), 4-5 hold A (16 rows x 64
 * k), 6-7 hold B (16 k quads x 16 columns x 4). The layout is fixed by the hardware. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

__attribute__((target("amx-tile"))) static void amx_begin(void) {
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    /* gcc 12's _tile_loadconfig tells the compiler it reads only 8 bytes of cfg, so without
     * this barrier the stores of colsb and rows are dropped and tilezero faults */
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&cfg);
}

/* Tile state is per thread: released after each run of tiles so that the thread switches
 * without the 8 KiB of tile data. */
__attribute__((target("amx-tile"))) static void amx_end(void) { _tile_release(); }

/* acc[32][32] of sum AB over kb blocks of 64 k: A panel [kb][32][64], B panel [kb*16][32][4].
 * One kernel per signedness pair (tdpb{u,s}{u,s}d: A's type, then B's). */
#define IFD_AMX_KERNEL(name, dp)                                                            \
    __attribute__((target("amx-tile,amx-int8"))) static void name(                         \
        const uint8_t *ap, const uint8_t *bp, int64_t kb, int32_t *acc) {                  \
        _tile_zero(0);                                                                      \
        _tile_zero(1);                                                                      \
        _tile_zero(2);                                                                      \
        _tile_zero(3);                                                                      \
        for (int64_t q = 0; q < kb; q++, ap += 2048, bp += 2048) {                          \
            _tile_loadd(4, ap, 64);                                                         \
            _tile_loadd(6, bp, 128);                                                        \
            _tile_loadd(7, bp + 64, 128);                                                   \
            dp(0, 4, 6);                                                                    \
            dp(1, 4, 7);                                                                    \
            _tile_loadd(5, ap + 1024, 64);                                                  \
            dp(2, 5, 6);                                                                    \
            dp(3, 5, 7);                                                                    \
        }                                                                                   \
        _tile_stored(0, acc, 128);                                                          \
        _tile_stored(1, acc + 16, 128);                                                     \
        _tile_stored(2, acc + 16 * 32, 128);                                                \
        _tile_stored(3, acc + 16 * 32 + 16, 128);                                           \
    }
IFD_AMX_KERNEL(kernel_amx_uu, _tile_dpbuud)
IFD_AMX_KERNEL(kernel_amx_us, _tile_dpbusd)
IFD_AMX_KERNEL(kernel_amx_su, _tile_dpbsud)
IFD_AMX_KERNEL(kernel_amx_ss, _tile_dpbssd)
#undef IFD_AMX_KERNEL

typedef void (*amx_kernel_fn)(const uint8_t *, const uint8_t *, int64_t, int32_t *);
static const amx_kernel_fn g_amx_kernels[2][2] = {{kernel_amx_uu, kernel_amx_us},
                                                   {kernel_amx_su, kernel_amx_ss}};
#endif

/* ---- B from a producer, straight into the panels (1-byte paths: VNNI, AMX) ------------- */

enum { FILL_COLS = 256 }; /* columns per producer call: 4 x 256 bytes stay in L1 */

typedef struct {
    const qshape *s;
    int64_t k, n;
    ifd_qgemm_b_fill fill;
    void *ctx;
    uint8_t flip;
    const side_layout *l;
    uint8_t *panels;
} fill_job;

#ifdef IFD_X86
/* Interleave 4 rows (stride FILL_COLS) of nchunks x 32 columns into the VNNI group layout:
 * per chunk, 32 columns x 4 bytes at dst + chunk * chunk_bytes. */
__attribute__((target("avx512f,avx512bw"))) static void
interleave_quad(const uint8_t *rows, int nchunks, uint8_t flip, uint8_t *dst, size_t chunk_bytes) {
    const __m256i fx = _mm256_set1_epi8((char)flip);
    for (int c = 0; c < nchunks; c++, rows += 32, dst += chunk_bytes) {
        __m512i lo, hi;
        interleave4(rows, FILL_COLS, fx, &lo, &hi);
        _mm512_storeu_si512((void *)dst, lo);
        _mm512_storeu_si512((void *)(dst + 64), hi);
    }
}
#endif

/* One k group (4 rows) per task, all columns in pieces of FILL_COLS. Rows past K and columns
 * past N are given the flip byte so that they pack to zero. */
static void fill_quads(void *arg, int64_t begin, int64_t end) {
    const fill_job *j = arg;
    _Alignas(64) uint8_t rows[4 * FILL_COLS];
    size_t chunk_bytes = (size_t)j->l->kpad * 32;
    for (int64_t q = begin; q < end; q++) {
        int64_t k0 = q * 4;
        int nk = (int)IFD_MAX((int64_t)0, IFD_MIN((int64_t)4, j->k - k0));
        for (int64_t n0 = 0; n0 < j->n; n0 += FILL_COLS) {
            int nn = (int)IFD_MIN((int64_t)FILL_COLS, j->n - n0);
            int nchunks = (nn + 31) / 32;
            if (nk) j->fill(j->ctx, k0, nk, n0, nn, rows, FILL_COLS);
            for (int r = 0; r < 4; r++) {
                int from = r < nk ? nn : 0;
                if (from < nchunks * 32)
                    memset(rows + r * FILL_COLS + from, j->flip, (size_t)(nchunks * 32 - from));
            }
            uint8_t *dst = j->panels + (size_t)(n0 / 32) * chunk_bytes + (size_t)q * 128;
#ifdef IFD_X86
            interleave_quad(rows, nchunks, j->flip, dst, chunk_bytes);
#else
            (void)dst;
#endif
        }
    }
}

typedef struct {
    int64_t k;
    const ifd_qgemm_args *a;
    const side_layout *l;
    uint8_t *panels;
    int32_t *sums, *zeros;
    bool flip, stored_signed, need_sums;
} fill_sums_job;

#ifdef IFD_X86
/* Column sums of one packed chunk (32 columns x kq groups of 4). */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
chunk_sums(const uint8_t *p, int64_t kq, bool stored_signed, int32_t *sums) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    for (int64_t g = 0; g < kq; g++, p += 128) {
        __m512i lo = _mm512_loadu_si512((const void *)p);
        __m512i hi = _mm512_loadu_si512((const void *)(p + 64));
        if (stored_signed) {
            s0 = _mm512_dpbusd_epi32(s0, ones, lo);
            s1 = _mm512_dpbusd_epi32(s1, ones, hi);
        } else {
            s0 = _mm512_dpbusd_epi32(s0, lo, ones);
            s1 = _mm512_dpbusd_epi32(s1, hi, ones);
        }
    }
    _mm512_storeu_si512((void *)sums, s0);
    _mm512_storeu_si512((void *)(sums + 16), s1);
}
#endif

/* Per chunk: the column sums (when some A zero point is not zero) and zero points. */
static void fill_sums(void *arg, int64_t begin, int64_t end) {
    const fill_sums_job *j = arg;
    const ifd_qgemm_args *a = j->a;
    for (int64_t c = begin; c < end; c++) {
        int32_t sums[32] = {0};
#ifdef IFD_X86
        if (j->need_sums)
            chunk_sums(j->panels + (size_t)c * 32 * (size_t)j->l->kpad, j->l->kgroups,
                       j->stored_signed, sums);
#endif
        for (int e = 0; e < 32; e++) {
            int64_t col = c * 32 + e;
            int32_t z = col < a->n && a->b_zero_count ? a->b_zero[a->b_zero_count == 1 ? 0 : col] : 0;
            z -= j->flip ? 128 : 0;
            j->zeros[col] = z;
            j->sums[col] = (int32_t)((uint32_t)sums[e] - (uint32_t)j->k * (uint32_t)z);
        }
    }
}

/* B packed from the producer; A (already packed) tells whether column sums matter. */
static void pack_b_filled(const qshape *s, const ifd_qgemm_args *a, const side_layout *l,
                          const int32_t *a_zeros, int64_t a_rows, uint8_t *mem,
                          ifd_thread_pool *pool) {
    uint8_t flip = s->flip && !a->b_signed ? 0x80 : 0;
    fill_job fj = {s, a->k, a->n, a->b_fill, a->b_fill_ctx, flip, l, mem};
    ifd_parallel_for(pool, l->kgroups, IFD_MAX((int64_t)1, 8192 / IFD_MAX(a->n, (int64_t)1)),
                     fill_quads, &fj);
    bool need = false;
    for (int64_t r = 0; r < a_rows && !need; r++) need = a_zeros[r] != 0;
    fill_sums_job sj = {a->k, a, l, mem, (int32_t *)(mem + l->sums_off),
                        (int32_t *)(mem + l->zeros_off), flip != 0, a->b_signed || flip, need};
    ifd_parallel_for(pool, l->blocks, 8, fill_sums, &sj);
}

typedef struct {
    const ifd_qgemm_args *a;
    uint8_t *dst; /* K x N */
} materialize_job;

static void materialize_rows(void *arg, int64_t begin, int64_t end) {
    const materialize_job *j = arg;
    int64_t n = j->a->n;
    for (int64_t k0 = begin * 4; k0 < end * 4 && k0 < j->a->k; k0 += 4)
        for (int64_t n0 = 0; n0 < n; n0 += FILL_COLS)
            j->a->b_fill(j->a->b_fill_ctx, k0, (int)IFD_MIN((int64_t)4, j->a->k - k0), n0,
                         (int)IFD_MIN((int64_t)FILL_COLS, n - n0), j->dst + k0 * n + n0, n);
}

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
    bool is_signed; /* the operand's type (AMX multiplies it as it is) */
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
        if (ep->gelu) ifd_vec_gelu(c, c, cols);
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

#ifdef IFD_X86
/* store_row for a whole tile of the 1-byte paths (VNNI, AMX: up to MR x 32), with the
 * zero-point correction of the sums folded in and the same float steps in the same order as
 * store_row. What does not change along the rows (column scales times a uniform scale, the
 * column biases, a uniform A zero point's correction) is computed once per tile: with K in
 * the hundreds the epilogue costs as much as the AMX products. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
tile_out_avx512(const ifd_qgemm_args *a, const int32_t *acc, int ldacc, int64_t m0, int rows,
                int64_t n0, int cols, const int32_t *rs, const int32_t *za, const int32_t *zbn,
                const int32_t *csn, bool zb_all0, const float *cs, const float *cb) {
    const ifd_qgemm_epilogue *ep = a->ep;
    ifd_qgemm_out kind = ep ? ep->kind : IFD_QGEMM_OUT_INT32;
    float lo = -INFINITY, hi = INFINITY, zp = 0;
    if (kind != IFD_QGEMM_OUT_INT32) {
        lo = ep->lo;
        hi = ep->hi;
        if (kind == IFD_QGEMM_OUT_UINT8) {
            zp = ep->zero_point;
            lo = lo > -zp ? lo : -zp;
            hi = hi < 255.0f - zp ? hi : 255.0f - zp;
        }
    }
    bool clamp = lo > -INFINITY || hi < INFINITY;
    bool za_same = true;
    for (int r = 1; r < rows && za_same; r++) za_same = za[m0 + r] == za[m0];
    __mmask16 mk[2];
    __m512i zbv[2], csv[2], corr[2];
    __m512 sv[2], bv[2];
    for (int h = 0; h < 2; h++) {
        int cnt = cols - 16 * h;
        cnt = cnt < 0 ? 0 : cnt > 16 ? 16 : cnt;
        mk[h] = (__mmask16)(cnt == 16 ? 0xffffu : (1u << cnt) - 1);
        zbv[h] = _mm512_maskz_loadu_epi32(mk[h], zbn + 16 * h);
        csv[h] = _mm512_maskz_loadu_epi32(mk[h], csn + 16 * h);
        corr[h] = _mm512_mullo_epi32(csv[h], _mm512_set1_epi32(za[m0]));
        __m512 c_s = _mm512_maskz_loadu_ps(mk[h], cs + 16 * h);
        sv[h] = _mm512_mul_ps(_mm512_set1_ps(kind == IFD_QGEMM_OUT_INT32 ? 1.0f : ep->scale), c_s);
        bv[h] = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(mk[h], cb + 16 * h));
    }
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), vzp = _mm512_set1_ps(zp);
    bool per_row_scale = kind != IFD_QGEMM_OUT_INT32 && ep->row_scale;
    bool per_row_bias = kind != IFD_QGEMM_OUT_INT32 && ep->row_bias;
    bool gelu = kind == IFD_QGEMM_OUT_FLOAT && ep->gelu;
    for (int r = 0; r < rows; r++) {
        int64_t row = m0 + r;
        __m512 rsv = _mm512_setzero_ps(), rbv = rsv;
        if (per_row_scale) rsv = _mm512_set1_ps(ep->scale * ep->row_scale[row]);
        if (per_row_bias) rbv = _mm512_set1_ps(ep->row_bias[row]);
        for (int h = 0; h < 2; h++) {
            if (!mk[h]) break;
            __m512i v = _mm512_maskz_loadu_epi32(mk[h], acc + r * ldacc + 16 * h);
            if (!zb_all0)
                v = _mm512_sub_epi32(v, _mm512_mullo_epi32(zbv[h], _mm512_set1_epi32(rs[row])));
            if (za_same) v = _mm512_sub_epi32(v, corr[h]);
            else v = _mm512_sub_epi32(v, _mm512_mullo_epi32(csv[h], _mm512_set1_epi32(za[row])));
            int64_t at = row * a->ldc + n0 + 16 * h;
            if (kind == IFD_QGEMM_OUT_INT32) {
                _mm512_mask_storeu_epi32((int32_t *)a->c + at, mk[h], v);
                continue;
            }
            /* (float)v * (rs * cs[n]) + (rb + cb[n]) as store_row rounds it */
            __m512 sc = sv[h], bi = bv[h];
            if (per_row_scale) sc = _mm512_mul_ps(rsv, _mm512_maskz_loadu_ps(mk[h], cs + 16 * h));
            if (per_row_bias) bi = _mm512_add_ps(rbv, _mm512_maskz_loadu_ps(mk[h], cb + 16 * h));
            __m512 f = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), sc), bi);
            if (clamp) f = _mm512_min_ps(_mm512_max_ps(f, vlo), vhi);
            if (kind == IFD_QGEMM_OUT_FLOAT) {
                if (mk[h] == 0xffff) _mm512_storeu_ps((float *)a->c + at, f);
                else _mm512_mask_storeu_ps((float *)a->c + at, mk[h], f);
                continue;
            }
            __m512i q = _mm512_cvtps_epi32(_mm512_add_ps(f, vzp)); /* nearest even */
            _mm_mask_storeu_epi8((uint8_t *)a->c + at, mk[h], _mm512_cvtusepi32_epi8(q));
        }
        if (gelu) { /* on the row piece while it is in L1 */
            float *c = (float *)a->c + row * a->ldc + n0;
            ifd_vec_gelu(c, c, cols);
        }
    }
}
#endif

/* ---- tiles ----------------------------------------------------------------------------- */

typedef struct {
    const ifd_qgemm_args *a;
    const qshape *s;
    side_view A, B;
    qpath path;
    bool a_inner; /* tiles walk all row blocks per column chunk (A is re-read, B once) */
    bool zb_all0; /* every (adjusted) B zero point is 0 */
} tile_job;

/* The epilogue of one computed tile (acc: MR x NC int32) into C. */
static void tile_finish(const tile_job *j, const int32_t *acc, int64_t mb, int64_t nc,
                        const float *csc, const float *cbias) {
    const ifd_qgemm_args *p = j->a;
    const qshape *s = j->s;
    const int32_t *rs = j->A.sums, *za = j->A.zeros, *cs = j->B.sums, *zb = j->B.zeros;
    int64_t m0 = mb * s->mr, n0 = nc * s->nc;
    int rows = (int)IFD_MIN((int64_t)s->mr, p->m - m0);
    int cols = (int)IFD_MIN((int64_t)s->nc, p->n - n0);
#ifdef IFD_X86
    if (s->es == 1) {
        tile_out_avx512(p, acc, s->nc, m0, rows, n0, cols, rs, za, zb + n0, cs + n0, j->zb_all0,
                        csc, cbias);
        return;
    }
#endif
    int32_t v[32];
    for (int r = 0; r < rows; r++) {
        const uint32_t *restrict ar = (const uint32_t *)(acc + r * s->nc);
        const uint32_t *restrict zbn = (const uint32_t *)(zb + n0);
        const uint32_t *restrict csn = (const uint32_t *)(cs + n0);
        uint32_t rsm = (uint32_t)rs[m0 + r], zam = (uint32_t)za[m0 + r];
        for (int n = 0; n < cols; n++) v[n] = (int32_t)(ar[n] - zbn[n] * rsm - zam * csn[n]);
        store_row(p, m0 + r, n0, cols, v, csc, cbias);
    }
}

/* Tiles [begin, end). Each tile's epilogue runs after the next tile's products are issued:
 * the AMX unit works through its tile instructions while the vector units finish the
 * previous tile (two accumulator buffers). */
static void tiles(void *arg, int64_t begin, int64_t end) {
    const tile_job *j = arg;
    const ifd_qgemm_args *p = j->a;
    const qshape *s = j->s;
    size_t kpad = (size_t)j->A.l.kpad;
    _Alignas(64) int32_t acc[2][32 * 32];
    float csc[2][32], cbias[2][32];
    int64_t slot_nc[2] = {-1, -1}, pend_mb = -1, pend_nc = -1;
    int pend = -1; /* slot of the tile waiting for its epilogue */
#ifdef IFD_AMX
    amx_kernel_fn amx_kernel = g_amx_kernels[j->A.is_signed][j->B.is_signed];
    if (j->path == PATH_AMX) amx_begin();
#endif
    for (int64_t t = begin; t < end; t++) {
        int64_t mb, nc;
        if (j->a_inner) {
            nc = t / j->A.l.blocks;
            mb = t % j->A.l.blocks;
        } else {
            mb = t / j->B.l.blocks;
            nc = t % j->B.l.blocks;
        }
        int slot = pend == 0 ? 1 : 0;
        const uint8_t *ap = j->A.panels + (size_t)mb * s->mr * kpad * s->es;
        const uint8_t *bp = j->B.panels + (size_t)nc * s->nc * kpad * s->es;
#ifdef IFD_AMX
        if (j->path == PATH_AMX)
            amx_kernel(ap, bp, (int64_t)kpad / 64, acc[slot]);
        else
#endif
#ifdef IFD_X86
        if (j->path == PATH_VNNI)
            kernel_vnni(ap, bp, j->A.l.kgroups, acc[slot]);
        else
            kernel_avx2(ap, bp, j->A.l.kgroups, acc[slot]);
#endif
        if (slot_nc[slot] != nc) {
            int64_t n0 = nc * s->nc;
            column_terms(p->ep, n0, (int)IFD_MIN((int64_t)s->nc, p->n - n0), csc[slot], cbias[slot]);
            slot_nc[slot] = nc;
        }
        if (pend >= 0) tile_finish(j, acc[pend], pend_mb, pend_nc, csc[pend], cbias[pend]);
        pend = slot;
        pend_mb = mb;
        pend_nc = nc;
    }
    if (pend >= 0) tile_finish(j, acc[pend], pend_mb, pend_nc, csc[pend], cbias[pend]);
#ifdef IFD_AMX
    if (j->path == PATH_AMX) amx_end();
#endif
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
    size_t a_off, b_off, raw_off, total; /* raw_off: B from b_fill, materialized (scalar, AVX2) */
    bool b_fill_panels;                   /* b_fill writes the panels (1-byte paths) */
} ex_layout;

/* t += K x N bytes (a materialized B), rounded to 64. */
static bool raw_bytes(const ifd_qgemm_args *a, size_t *t) {
    size_t kn;
    return ifd_mul_size((size_t)a->k, (size_t)a->n, &kn) && kn <= SIZE_MAX - 64 &&
           ifd_add_size(*t, align64(kn), t);
}

static bool ex_plan(const ifd_qgemm_args *a, ex_layout *x) {
    memset(x, 0, sizeof *x);
    if (a->m < 0 || a->n < 0 || a->k < 0) return false;
    x->path = a->pa ? a->pa->path : a->pb ? a->pb->path : get_path();
    if ((a->pa && !packed_ok(a->pa, false, a->m, a->k, x->path)) ||
        (a->pb && !packed_ok(a->pb, true, a->k, a->n, x->path)) ||
        (a->b_fill && (a->pb || a->b)))
        return false;
    size_t t = 0;
    x->b_fill_panels = a->b_fill && g_shapes[x->path].es == 1 && x->path != PATH_SCALAR;
    if (x->path == PATH_SCALAR) {
        if (a->ep && a->ep->kind != IFD_QGEMM_OUT_INT32) {
            size_t mn;
            if (!ifd_mul_size((size_t)a->m, (size_t)a->n, &mn) || !ifd_mul_size(mn, 4, &t))
                return false;
        }
        t = align64(t);
        x->raw_off = t;
        if (a->b_fill && !raw_bytes(a, &t)) return false;
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
    x->raw_off = t;
    if (a->b_fill && !x->b_fill_panels && !raw_bytes(a, &t)) return false;
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
    ifd_qgemm_args local;
    if (a->b_fill && !x.b_fill_panels && a->k > 0) {
        /* this path reads B from memory: let the producer write it there first */
        materialize_job mj = {a, ws + x.raw_off};
        ifd_parallel_for(pool, (a->k + 3) / 4, IFD_MAX((int64_t)1, 4096 / a->n), materialize_rows,
                         &mj);
        local = *a;
        local.b = ws + x.raw_off;
        local.ldb = a->n;
        local.b_fill = NULL;
        a = &local;
    }
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
    tile_job tj = {a, s, {0}, {0}, x.path, false, false};
    if (a->pa) {
        tj.A = (side_view){a->pa->mem, (const int32_t *)(a->pa->mem + a->pa->l.sums_off),
                           (const int32_t *)(a->pa->mem + a->pa->l.zeros_off), a->pa->l,
                           a->pa->is_signed};
    } else {
        uint8_t *mem = ws + x.a_off;
        pack_side(s, false, a->m, a->k, a->a, a->lda, a->a_signed, a->a_zero, a->a_zero_count,
                  &x.la, mem, pool);
        tj.A = (side_view){mem, (const int32_t *)(mem + x.la.sums_off),
                           (const int32_t *)(mem + x.la.zeros_off), x.la, a->a_signed};
    }
    if (a->pb) {
        tj.B = (side_view){a->pb->mem, (const int32_t *)(a->pb->mem + a->pb->l.sums_off),
                           (const int32_t *)(a->pb->mem + a->pb->l.zeros_off), a->pb->l,
                           a->pb->is_signed};
    } else {
        uint8_t *mem = ws + x.b_off;
        if (a->b_fill)
            pack_b_filled(s, a, &x.lb, tj.A.zeros, x.la.blocks * s->mr, mem, pool);
        else
            pack_side(s, true, a->n, a->k, a->b, a->ldb, a->b_signed, a->b_zero,
                      a->b_zero_count, &x.lb, mem, pool);
        tj.B = (side_view){mem, (const int32_t *)(mem + x.lb.sums_off),
                           (const int32_t *)(mem + x.lb.zeros_off), x.lb, a->b_signed};
    }
    /* re-read the smaller packed operand; it is the likelier one to stay in cache */
    tj.a_inner = a->m <= a->n;
    tj.zb_all0 = true;
    for (int64_t c = 0; c < x.lb.blocks * s->nc && tj.zb_all0; c++) tj.zb_all0 = tj.B.zeros[c] == 0;
    int64_t ntiles = x.la.blocks * x.lb.blocks;
    /* a tile is MR*NC*K multiply-adds; aim for chunks of ~256k of them */
    int64_t per_tile = (int64_t)s->mr * s->nc * IFD_MAX(a->k, 1);
    int64_t grain = IFD_MAX((int64_t)1, ((int64_t)1 << 18) / per_tile);
    if (x.path == PATH_AMX) /* two chunks per thread: measured faster than four (BERT, 2 threads) */
        grain = IFD_MAX(grain, ntiles / (2 * (int64_t)ifd_thread_pool_size(pool)));
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
