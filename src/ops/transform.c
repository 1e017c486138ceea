/* Operator family: transform. Data movement that rearranges elements without computing on
 * them: Transpose, Concat, Split, Slice, Tile, Trilu, ReverseSequence, DepthToSpace,
 * SpaceToDepth.
 *
 * Every kernel here is dtype-agnostic: it moves elements of ifd_dtype_size() bytes (those flagged
 * IFD_OP_STRINGS move string elements as ifd_string structs, then ifd_kernel_finish_move gives
 * the output its own copies). Most are
 * expressed as one strided view of the input copied into the contiguous output by
 * ifd_copy_strided(), which merges contiguous dimensions, copies contiguous runs with memcpy,
 * uses cache-blocked tiles when the source's contiguous axis is not the output's, and splits
 * the work over the thread pool. shape.c (Expand) and gather.c use it too. */
#include "ops/op.h"

#include <string.h>

/* ---- strided copy engine ------------------------------------------------------------------ */

/* Up to 2 * IFD_MAX_RANK dimensions: Tile views each axis as (repeat, dim). */
#define CP_MAX_RANK (2 * IFD_MAX_RANK)
/* Tile edge (elements) for the blocked transpose path. */
#define CP_TILE 32
/* Bytes a parallel chunk should move at least, so that thread hand-off stays cheap. */
#define CP_CHUNK_BYTES ((int64_t)32 * 1024)

enum { CP_RUN, CP_BCAST, CP_ELEM, CP_TILED };

/* A block-transpose kernel for the tiled path (see below). */
typedef void (*block_fn)(const char *s, int64_t sl, char *d, int64_t dj);

typedef struct copy_plan {
    int kind;
    int rank;
    int64_t dims[CP_MAX_RANK];
    int64_t sstr[CP_MAX_RANK]; /* source strides, bytes (may be 0 or negative) */
    int64_t dstr[CP_MAX_RANK]; /* destination strides, bytes (contiguous output) */
    size_t es;
    const char *src;
    char *dst;
    int tj;                    /* CP_TILED: the axis whose source stride is es */
    int n_outer;               /* axes walked by the unit counter, outermost first */
    int outer[CP_MAX_RANK];
    int64_t per;               /* units per outer position (tile strips along tj, or 1) */
    block_fn blk;              /* CP_TILED: K x K block kernel for es, or NULL */
    int blk_k;
} copy_plan;

static inline void copy_elems_strided(char *restrict d, const char *restrict s, int64_t n,
                                      int64_t ss, size_t es) {
    switch (es) {
    case 1:
        for (int64_t i = 0; i < n; i++) d[i] = s[i * ss];
        break;
    case 2:
        for (int64_t i = 0; i < n; i++) memcpy(d + 2 * i, s + i * ss, 2);
        break;
    case 4:
        for (int64_t i = 0; i < n; i++) memcpy(d + 4 * i, s + i * ss, 4);
        break;
    case 8:
        for (int64_t i = 0; i < n; i++) memcpy(d + 8 * i, s + i * ss, 8);
        break;
    default:
        for (int64_t i = 0; i < n; i++) memcpy(d + (size_t)i * es, s + i * ss, es);
        break;
    }
}

static inline void fill_elems(char *restrict d, const char *restrict v, int64_t n, size_t es) {
    switch (es) {
    case 1:
        memset(d, (unsigned char)v[0], (size_t)n);
        break;
    case 2: {
        uint16_t x;
        memcpy(&x, v, 2);
        uint16_t *restrict p = (uint16_t *)(void *)d;
        for (int64_t i = 0; i < n; i++) p[i] = x;
        break;
    }
    case 4: {
        uint32_t x;
        memcpy(&x, v, 4);
        uint32_t *restrict p = (uint32_t *)(void *)d;
        for (int64_t i = 0; i < n; i++) p[i] = x;
        break;
    }
    case 8: {
        uint64_t x;
        memcpy(&x, v, 8);
        uint64_t *restrict p = (uint64_t *)(void *)d;
        for (int64_t i = 0; i < n; i++) p[i] = x;
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++) memcpy(d + (size_t)i * es, v, es);
        break;
    }
}

/* ---- block transposes for the tiled path ----
 * A kernel moves a K x K block: source "rows" are K steps of sl bytes along the output's last
 * axis, each holding K consecutive elements along tj; destination rows are K steps of dj
 * bytes along tj, each holding K consecutive elements along the last axis. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx"))) static void block8_f32_avx(const char *s, int64_t sl, char *d,
                                                           int64_t dj) {
    __m256 r0 = _mm256_loadu_ps((const float *)(const void *)(s + 0 * sl));
    __m256 r1 = _mm256_loadu_ps((const float *)(const void *)(s + 1 * sl));
    __m256 r2 = _mm256_loadu_ps((const float *)(const void *)(s + 2 * sl));
    __m256 r3 = _mm256_loadu_ps((const float *)(const void *)(s + 3 * sl));
    __m256 r4 = _mm256_loadu_ps((const float *)(const void *)(s + 4 * sl));
    __m256 r5 = _mm256_loadu_ps((const float *)(const void *)(s + 5 * sl));
    __m256 r6 = _mm256_loadu_ps((const float *)(const void *)(s + 6 * sl));
    __m256 r7 = _mm256_loadu_ps((const float *)(const void *)(s + 7 * sl));
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps((float *)(void *)(d + 0 * dj), _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps((float *)(void *)(d + 1 * dj), _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps((float *)(void *)(d + 2 * dj), _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps((float *)(void *)(d + 3 * dj), _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps((float *)(void *)(d + 4 * dj), _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps((float *)(void *)(d + 5 * dj), _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps((float *)(void *)(d + 6 * dj), _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps((float *)(void *)(d + 7 * dj), _mm256_permute2f128_ps(u3, u7, 0x31));
}

static void block4_f32_sse(const char *s, int64_t sl, char *d, int64_t dj) {
    __m128 r0 = _mm_loadu_ps((const float *)(const void *)(s + 0 * sl));
    __m128 r1 = _mm_loadu_ps((const float *)(const void *)(s + 1 * sl));
    __m128 r2 = _mm_loadu_ps((const float *)(const void *)(s + 2 * sl));
    __m128 r3 = _mm_loadu_ps((const float *)(const void *)(s + 3 * sl));
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps((float *)(void *)(d + 0 * dj), r0);
    _mm_storeu_ps((float *)(void *)(d + 1 * dj), r1);
    _mm_storeu_ps((float *)(void *)(d + 2 * dj), r2);
    _mm_storeu_ps((float *)(void *)(d + 3 * dj), r3);
}

static void block8_u16_sse(const char *s, int64_t sl, char *d, int64_t dj) {
    __m128i r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm_loadu_si128((const __m128i *)(const void *)(s + i * sl));
    __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]), a1 = _mm_unpackhi_epi16(r[0], r[1]);
    __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]), a3 = _mm_unpackhi_epi16(r[2], r[3]);
    __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]), a5 = _mm_unpackhi_epi16(r[4], r[5]);
    __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]), a7 = _mm_unpackhi_epi16(r[6], r[7]);
    __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
    __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
    __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
    __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
    _mm_storeu_si128((__m128i *)(void *)(d + 0 * dj), _mm_unpacklo_epi64(b0, b4));
    _mm_storeu_si128((__m128i *)(void *)(d + 1 * dj), _mm_unpackhi_epi64(b0, b4));
    _mm_storeu_si128((__m128i *)(void *)(d + 2 * dj), _mm_unpacklo_epi64(b1, b5));
    _mm_storeu_si128((__m128i *)(void *)(d + 3 * dj), _mm_unpackhi_epi64(b1, b5));
    _mm_storeu_si128((__m128i *)(void *)(d + 4 * dj), _mm_unpacklo_epi64(b2, b6));
    _mm_storeu_si128((__m128i *)(void *)(d + 5 * dj), _mm_unpackhi_epi64(b2, b6));
    _mm_storeu_si128((__m128i *)(void *)(d + 6 * dj), _mm_unpacklo_epi64(b3, b7));
    _mm_storeu_si128((__m128i *)(void *)(d + 7 * dj), _mm_unpackhi_epi64(b3, b7));
}

static void block8_u8_sse(const char *s, int64_t sl, char *d, int64_t dj) {
    __m128i r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm_loadl_epi64((const __m128i *)(const void *)(s + i * sl));
    __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]), a1 = _mm_unpacklo_epi8(r[2], r[3]);
    __m128i a2 = _mm_unpacklo_epi8(r[4], r[5]), a3 = _mm_unpacklo_epi8(r[6], r[7]);
    __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
    __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
    __m128i c[4] = {_mm_unpacklo_epi32(b0, b2), _mm_unpackhi_epi32(b0, b2),
                    _mm_unpacklo_epi32(b1, b3), _mm_unpackhi_epi32(b1, b3)};
    for (int i = 0; i < 4; i++) {
        _mm_storel_epi64((__m128i *)(void *)(d + (2 * i) * dj), c[i]);
        _mm_storel_epi64((__m128i *)(void *)(d + (2 * i + 1) * dj), _mm_unpackhi_epi64(c[i], c[i]));
    }
}

static void block2_u64_sse(const char *s, int64_t sl, char *d, int64_t dj) {
    __m128i r0 = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i r1 = _mm_loadu_si128((const __m128i *)(const void *)(s + sl));
    _mm_storeu_si128((__m128i *)(void *)d, _mm_unpacklo_epi64(r0, r1));
    _mm_storeu_si128((__m128i *)(void *)(d + dj), _mm_unpackhi_epi64(r0, r1));
}

static block_fn pick_block(size_t es, int *k) {
    switch (es) {
    case 1: *k = 8; return block8_u8_sse;
    case 2: *k = 8; return block8_u16_sse;
    case 4:
        if (__builtin_cpu_supports("avx")) {
            *k = 8;
            return block8_f32_avx;
        }
        *k = 4;
        return block4_f32_sse;
    case 8: *k = 2; return block2_u64_sse;
    default: *k = 0; return NULL;
    }
}
#else
static block_fn pick_block(size_t es, int *k) {
    *k = 0;
    return NULL;
}
#endif

/* One cache-blocked strip: rows [j0, j1) of axis tj times all of the last axis. The source
 * is contiguous along tj, the destination along the last axis. */
static void copy_tile_strip(const copy_plan *p, const char *s, char *d, int64_t j0, int64_t j1) {
    int last = p->rank - 1;
    int64_t nl = p->dims[last], sl = p->sstr[last], dj = p->dstr[p->tj];
    int64_t es = (int64_t)p->es;
    int k = p->blk_k;
    block_fn blk = p->blk;
    for (int64_t l0 = 0; l0 < nl; l0 += CP_TILE) {
        int64_t l1 = IFD_MIN(l0 + CP_TILE, nl);
        int64_t jv = j0;
        if (blk) {
            /* Full K x K blocks, then the ragged right and bottom edges element-wise. */
            int64_t jb = j0 + (j1 - j0) / k * k, lb = l0 + (l1 - l0) / k * k;
            for (int64_t j = j0; j < jb; j += k)
                for (int64_t l = l0; l < lb; l += k) blk(s + j * es + l * sl, sl, d + j * dj + l * es, dj);
            for (int64_t j = j0; j < jb; j++)
                copy_elems_strided(d + j * dj + lb * es, s + j * es + lb * sl, l1 - lb, sl,
                                   p->es);
            jv = jb;
        }
        for (int64_t j = jv; j < j1; j++)
            copy_elems_strided(d + j * dj + l0 * es, s + j * es + l0 * sl, l1 - l0, sl, p->es);
    }
}

static void copy_chunk(void *arg, int64_t begin, int64_t end) {
    const copy_plan *p = arg;
    int last = p->rank - 1;
    int64_t coord[CP_MAX_RANK];
    int64_t pos = begin / p->per, sub = begin % p->per;
    int64_t so = 0, dof = 0;
    for (int k = p->n_outer - 1; k >= 0; k--) {
        int a = p->outer[k];
        coord[k] = pos % p->dims[a];
        pos /= p->dims[a];
        so += coord[k] * p->sstr[a];
        dof += coord[k] * p->dstr[a];
    }
    int64_t n = p->dims[last];
    size_t es = p->es;
    for (int64_t u = begin; u < end; u++) {
        const char *s = p->src + so;
        char *d = p->dst + dof;
        switch (p->kind) {
        case CP_RUN: memcpy(d, s, (size_t)n * es); break;
        case CP_BCAST: fill_elems(d, s, n, es); break;
        case CP_ELEM: copy_elems_strided(d, s, n, p->sstr[last], es); break;
        default: {
            int64_t j0 = sub * CP_TILE;
            copy_tile_strip(p, s, d, j0, IFD_MIN(j0 + CP_TILE, p->dims[p->tj]));
            break;
        }
        }
        if (++sub < p->per) continue;
        sub = 0;
        for (int k = p->n_outer - 1; k >= 0; k--) {
            int a = p->outer[k];
            so += p->sstr[a];
            dof += p->dstr[a];
            if (++coord[k] < p->dims[a]) break;
            so -= p->dims[a] * p->sstr[a];
            dof -= p->dims[a] * p->dstr[a];
            coord[k] = 0;
        }
    }
}

/* Copy the strided view (dims[rank], byte strides sstr[rank], first element at src) into
 * the contiguous buffer dst. rank <= 2 * IFD_MAX_RANK. Callers have checked the view stays
 * inside the source. */
void ifd_copy_strided(ifd_thread_pool *pool, size_t es, int rank, const int64_t *dims,
                      const int64_t *sstr, const void *src, void *dst) {
    copy_plan p;
    memset(&p, 0, sizeof p);
    p.es = es;
    p.src = src;
    p.dst = dst;
    /* Drop unit axes, then merge an axis into its inner neighbour when they are contiguous
     * with respect to each other (this also merges broadcast axes: 0 == 0 * n). */
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) return;
        if (dims[i] == 1) continue;
        p.dims[r] = dims[i];
        p.sstr[r] = sstr[i];
        r++;
    }
    if (r == 0) {
        memcpy(dst, src, es);
        return;
    }
    int m = 0;
    for (int i = 1; i < r; i++) {
        if (p.sstr[m] == p.sstr[i] * p.dims[i]) {
            p.dims[m] *= p.dims[i];
            p.sstr[m] = p.sstr[i];
        } else {
            m++;
            p.dims[m] = p.dims[i];
            p.sstr[m] = p.sstr[i];
        }
    }
    r = m + 1;
    p.rank = r;
    int64_t acc = (int64_t)es;
    for (int i = r - 1; i >= 0; i--) {
        p.dstr[i] = acc;
        acc *= p.dims[i];
    }
    int64_t total_bytes = acc;
    int last = r - 1;
    if (p.sstr[last] == (int64_t)es)
        p.kind = CP_RUN;
    else if (p.sstr[last] == 0)
        p.kind = CP_BCAST;
    else {
        p.kind = CP_ELEM;
        for (int i = last - 1; i >= 0; i--)
            if (p.sstr[i] == (int64_t)es) {
                p.kind = CP_TILED;
                p.tj = i;
                break;
            }
    }
    if (r == 1 && p.kind == CP_RUN) {
        ifd_parallel_memcpy(pool, dst, src, (size_t)total_bytes);
        return;
    }
    p.per = 1;
    p.n_outer = 0;
    for (int i = 0; i < last; i++)
        if (!(p.kind == CP_TILED && i == p.tj)) p.outer[p.n_outer++] = i;
    int64_t unit_bytes = p.dims[last] * (int64_t)es;
    if (p.kind == CP_TILED) {
        p.per = (p.dims[p.tj] + CP_TILE - 1) / CP_TILE;
        p.blk = pick_block(es, &p.blk_k);
        unit_bytes *= CP_TILE;
    }
    int64_t units = p.per;
    for (int k = 0; k < p.n_outer; k++) units *= p.dims[p.outer[k]];
    int64_t min_chunk = IFD_MAX((int64_t)1, CP_CHUNK_BYTES / IFD_MAX(unit_bytes, (int64_t)1));
    ifd_parallel_for(pool, units, min_chunk, copy_chunk, &p);
}

/* ---- helpers -------------------------------------------------------------------------------- */

static void contiguous_strides(int rank, const int64_t *dims, size_t es, int64_t *str) {
    int64_t acc = (int64_t)es;
    for (int i = rank - 1; i >= 0; i--) {
        str[i] = acc;
        acc *= dims[i];
    }
}

static int64_t prod(const int64_t *dims, int from, int to) {
    int64_t n = 1;
    for (int i = from; i < to; i++) n *= dims[i];
    return n;
}

/* Reads a 1-D int32/int64 tensor (e.g. starts, repeats) into out (at most max entries). */
static ifd_status read_int_list(const ifd_kernel_ctx *ctx, const ifd_tensor *t, const char *what,
                                int64_t *out, int max, int *n) {
    if (t->dtype != IFD_DTYPE_INT64 && t->dtype != IFD_DTYPE_INT32)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%s must be int32 or int64, not %s",
                                what, ifd_dtype_name(t->dtype));
    if (t->rank > 1 || t->count > max)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "%s must be a 1-D tensor of at most %d values", what, max);
    for (int64_t i = 0; i < t->count; i++) out[i] = ifd_tensor_get_i64(t, i);
    *n = (int)t->count;
    return IFD_OK;
}

/* ---- Transpose ------------------------------------------------------------------------------ */

static ifd_status run_transpose(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int r = x->rank;
    int perm[IFD_MAX_RANK];
    size_t np = 0;
    const int64_t *pa = ifd_attr_ints(ctx->node, "perm", &np);
    if (pa) {
        if ((int)np != r)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "perm has %zu entries for an input of rank %d", np, r);
        bool seen[IFD_MAX_RANK] = {0};
        for (int i = 0; i < r; i++) {
            int64_t a = pa[i] < 0 ? pa[i] + r : pa[i];
            if (a < 0 || a >= r || seen[a])
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "perm is not a permutation of 0..%d", r - 1);
            seen[a] = true;
            perm[i] = (int)a;
        }
    } else {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    }
    int64_t in_str[IFD_MAX_RANK], dims[IFD_MAX_RANK], sstr[IFD_MAX_RANK];
    contiguous_strides(r, x->dims, es, in_str);
    for (int i = 0; i < r; i++) {
        dims[i] = x->dims[perm[i]];
        sstr[i] = in_str[perm[i]];
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, dims, &y)) || !y) return st;
    if (x->count) ifd_copy_strided(ctx->pool, es, r, dims, sstr, x->data, y->data);
    return ifd_kernel_finish_move(ctx, y);
}

/* ---- Concat --------------------------------------------------------------------------------- */

typedef struct concat_arg {
    const ifd_kernel_ctx *ctx;
    char *dst;
    int64_t out_row;  /* bytes of one output row (all inputs) */
    const int64_t *row_bytes; /* per input */
} concat_arg;

static void concat_chunk(void *arg, int64_t begin, int64_t end) {
    const concat_arg *a = arg;
    for (int64_t o = begin; o < end; o++) {
        char *d = a->dst + o * a->out_row;
        for (int i = 0; i < a->ctx->n_inputs; i++) {
            int64_t rb = a->row_bytes[i];
            if (!rb) continue;
            memcpy(d, (const char *)a->ctx->inputs[i]->data + o * rb, (size_t)rb);
            d += rb;
        }
    }
}

static ifd_status run_concat(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if (ctx->n_inputs < 1) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "no inputs");
    for (int i = 0; i < ctx->n_inputs; i++)
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *x0 = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x0->dtype, &es))) return st;
    int r = x0->rank;
    if (r == 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "inputs must have rank >= 1");
    if (ctx->opset >= 4 && !ifd_attr_has(ctx->node, "axis"))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "attribute 'axis' is required");
    int axis;
    if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 1), r, &axis))) return st;
    int64_t dims[IFD_MAX_RANK];
    memcpy(dims, x0->dims, sizeof(int64_t) * (size_t)r);
    dims[axis] = 0;
    for (int i = 0; i < ctx->n_inputs; i++) {
        const ifd_tensor *x = ctx->inputs[i];
        if (x->dtype != x0->dtype || x->rank != r)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "input %d is %s of rank %d; input 0 is %s of rank %d", i,
                                    ifd_dtype_name(x->dtype), x->rank, ifd_dtype_name(x0->dtype), r);
        for (int k = 0; k < r; k++)
            if (k != axis && x->dims[k] != x0->dims[k]) {
                char a[256], b[256];
                return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                        "input %d shape %s does not match input 0 shape %s "
                                        "outside axis %d", i, ifd_shape_str(r, x->dims, a, sizeof a),
                                        ifd_shape_str(r, x0->dims, b, sizeof b), axis);
            }
        if (!ifd_add_i64(dims[axis], x->dims[axis], &dims[axis]))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "concatenated axis overflows");
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x0->dtype, r, dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    int64_t outer = prod(dims, 0, axis), inner = prod(dims, axis + 1, r);
    int64_t *row_bytes = ifd_kernel_scratch(ctx, sizeof(int64_t) * (size_t)ctx->n_inputs);
    if (!row_bytes) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "scratch");
    for (int i = 0; i < ctx->n_inputs; i++)
        row_bytes[i] = ctx->inputs[i]->dims[axis] * inner * (int64_t)es;
    if (outer == 1) {
        char *d = y->data;
        for (int i = 0; i < ctx->n_inputs; i++) {
            ifd_parallel_memcpy(ctx->pool, d, ctx->inputs[i]->data, (size_t)row_bytes[i]);
            d += row_bytes[i];
        }
        return ifd_kernel_finish_move(ctx, y);
    }
    concat_arg a = {ctx, y->data, dims[axis] * inner * (int64_t)es, row_bytes};
    ifd_parallel_for(ctx->pool, outer, IFD_MAX((int64_t)1, CP_CHUNK_BYTES / a.out_row),
                     concat_chunk, &a);
    return ifd_kernel_finish_move(ctx, y);
}

/* ---- Split ---------------------------------------------------------------------------------- */

static ifd_status run_split(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int r = x->rank;
    if (r == 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank >= 1");
    int axis;
    if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 0), r, &axis))) return st;
    int n = ctx->n_outputs;
    if (n < 1) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "no outputs");
    int64_t *sizes = ifd_kernel_scratch(ctx, sizeof(int64_t) * (size_t)n);
    if (!sizes) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "scratch");
    int64_t dim = x->dims[axis];
    const ifd_tensor *split_in = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
    size_t n_attr = 0;
    const int64_t *split_attr = ifd_attr_ints(ctx->node, "split", &n_attr);
    if (split_in || split_attr) {
        int64_t cnt = split_in ? split_in->count : (int64_t)n_attr;
        if (split_in && split_in->dtype != IFD_DTYPE_INT64 && split_in->dtype != IFD_DTYPE_INT32)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "split must be int64");
        if (cnt != n)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "split has %lld entries for %d outputs", (long long)cnt, n);
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            sizes[i] = split_in ? ifd_tensor_get_i64(split_in, i) : split_attr[i];
            if (sizes[i] < 0 || !ifd_add_i64(sum, sizes[i], &sum))
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "split entry %d is %lld", i,
                                        (long long)sizes[i]);
        }
        if (sum != dim)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "split sums to %lld but axis %d has length %lld",
                                    (long long)sum, axis, (long long)dim);
    } else if (ifd_attr_has(ctx->node, "num_outputs")) {
        int64_t no = ifd_attr_int(ctx->node, "num_outputs", 0);
        if (no != n)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "num_outputs is %lld but the node has %d outputs",
                                    (long long)no, n);
        int64_t chunk = (dim + n - 1) / n;
        int64_t left = dim;
        for (int i = 0; i < n; i++) {
            sizes[i] = IFD_MIN(chunk, left);
            left -= sizes[i];
        }
    } else {
        if (dim % n)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "axis %d of length %lld does not split evenly into %d outputs",
                                    axis, (long long)dim, n);
        for (int i = 0; i < n; i++) sizes[i] = dim / n;
    }
    int64_t outer = prod(x->dims, 0, axis), inner = prod(x->dims, axis + 1, r);
    int64_t in_row = dim * inner * (int64_t)es, off = 0;
    for (int i = 0; i < n; i++) {
        int64_t dims[IFD_MAX_RANK];
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)r);
        dims[axis] = sizes[i];
        ifd_tensor *y;
        if ((st = ifd_kernel_output(ctx, i, x->dtype, r, dims, &y))) return st;
        if (y && y->count) {
            int64_t vd[2] = {outer, sizes[i] * inner * (int64_t)es};
            int64_t vs[2] = {in_row, 1};
            ifd_copy_strided(ctx->pool, 1, 2, vd, vs, (const char *)x->data + off, y->data);
            if ((st = ifd_kernel_finish_move(ctx, y))) return st;
        }
        off += sizes[i] * inner * (int64_t)es;
    }
    return IFD_OK;
}

/* ---- Slice ---------------------------------------------------------------------------------- */

static ifd_status run_slice(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int r = x->rank;
    int64_t starts[IFD_MAX_RANK], ends[IFD_MAX_RANK], axes[IFD_MAX_RANK], steps[IFD_MAX_RANK];
    int ns = 0, ne = 0, na = -1, nst = -1;
    if (ctx->opset < 10) {
        size_t c1 = 0, c2 = 0, c3 = 0;
        const int64_t *s = ifd_attr_ints(ctx->node, "starts", &c1);
        const int64_t *e = ifd_attr_ints(ctx->node, "ends", &c2);
        const int64_t *a = ifd_attr_ints(ctx->node, "axes", &c3);
        if (!s || !e)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "attributes 'starts' and 'ends' are required");
        if (c1 > IFD_MAX_RANK || c2 > IFD_MAX_RANK || c3 > IFD_MAX_RANK)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "too many slice entries");
        ns = (int)c1;
        ne = (int)c2;
        memcpy(starts, s, c1 * sizeof(int64_t));
        memcpy(ends, e, c2 * sizeof(int64_t));
        if (a) {
            na = (int)c3;
            memcpy(axes, a, c3 * sizeof(int64_t));
        }
    } else {
        if ((st = ifd_kernel_require_input(ctx, 1)) || (st = ifd_kernel_require_input(ctx, 2)))
            return st;
        if ((st = read_int_list(ctx, ctx->inputs[1], "starts", starts, IFD_MAX_RANK, &ns)) ||
            (st = read_int_list(ctx, ctx->inputs[2], "ends", ends, IFD_MAX_RANK, &ne)))
            return st;
        if (ctx->n_inputs > 3 && ctx->inputs[3] &&
            (st = read_int_list(ctx, ctx->inputs[3], "axes", axes, IFD_MAX_RANK, &na)))
            return st;
        if (ctx->n_inputs > 4 && ctx->inputs[4] &&
            (st = read_int_list(ctx, ctx->inputs[4], "steps", steps, IFD_MAX_RANK, &nst)))
            return st;
    }
    if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "starts, ends, axes and steps must have the same length");
    if (na < 0)
        for (int i = 0; i < ns; i++) axes[i] = i;
    if (nst < 0)
        for (int i = 0; i < ns; i++) steps[i] = 1;
    int64_t in_str[IFD_MAX_RANK], dims[IFD_MAX_RANK], sstr[IFD_MAX_RANK], first[IFD_MAX_RANK];
    contiguous_strides(r, x->dims, es, in_str);
    bool seen[IFD_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) {
        dims[i] = x->dims[i];
        first[i] = 0;
        sstr[i] = in_str[i];
    }
    for (int i = 0; i < ns; i++) {
        int a;
        if ((st = ifd_normalize_axis(ctx, axes[i], r, &a))) return st;
        if (seen[a])
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "axis %d repeats in axes", a);
        seen[a] = true;
        int64_t d = x->dims[a], step = steps[i], s = starts[i], e = ends[i];
        if (step == 0) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "step is 0");
        if (s < 0) s = s < -d ? -d - 1 : s + d; /* saturating: s + d may not overflow */
        if (e < 0) e = e < -d ? -d - 1 : e + d;
        int64_t cnt;
        if (step > 0) {
            s = IFD_MAX((int64_t)0, IFD_MIN(s, d));
            e = IFD_MAX((int64_t)0, IFD_MIN(e, d));
            cnt = e > s ? (e - s - 1) / step + 1 : 0;
        } else {
            s = IFD_MAX((int64_t)-1, IFD_MIN(s, d - 1));
            e = IFD_MAX((int64_t)-1, IFD_MIN(e, d - 1));
            /* step == INT64_MIN would overflow -step; it behaves as "one element". */
            int64_t ms = step == INT64_MIN ? INT64_MAX : -step;
            cnt = s > e ? (s - e - 1) / ms + 1 : 0;
        }
        dims[a] = cnt;
        first[a] = cnt ? s : 0;
        sstr[a] = cnt > 1 ? in_str[a] * step : in_str[a];
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    int64_t off = 0;
    for (int i = 0; i < r; i++) off += first[i] * in_str[i];
    ifd_copy_strided(ctx->pool, es, r, dims, sstr, (const char *)x->data + off, y->data);
    return ifd_kernel_finish_move(ctx, y);
}

/* ---- Tile ----------------------------------------------------------------------------------- */

static ifd_status run_tile(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    if (ctx->opset < 6)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "Tile before opset 6 is not supported");
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int r = x->rank, nr;
    int64_t reps[IFD_MAX_RANK];
    if ((st = read_int_list(ctx, ctx->inputs[1], "repeats", reps, IFD_MAX_RANK, &nr))) return st;
    if (nr != r)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "repeats has %d entries for an input of rank %d", nr, r);
    int64_t dims[IFD_MAX_RANK], in_str[IFD_MAX_RANK];
    int64_t vd[CP_MAX_RANK], vs[CP_MAX_RANK];
    contiguous_strides(r, x->dims, es, in_str);
    for (int i = 0; i < r; i++) {
        if (reps[i] < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "repeats[%d] is negative", i);
        if (!ifd_mul_i64(x->dims[i], reps[i], &dims[i]))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output dimension %d overflows", i);
        vd[2 * i] = reps[i];
        vs[2 * i] = 0;
        vd[2 * i + 1] = x->dims[i];
        vs[2 * i + 1] = in_str[i];
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, dims, &y)) || !y) return st;
    if (y->count) ifd_copy_strided(ctx->pool, es, 2 * r, vd, vs, x->data, y->data);
    return ifd_kernel_finish_move(ctx, y);
}

/* ---- Trilu ---------------------------------------------------------------------------------- */

static ifd_status run_trilu(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es))) return st;
    if (x->rank < 2)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank >= 2");
    int64_t k = 0;
    if (ctx->n_inputs > 1 && ctx->inputs[1]) {
        const ifd_tensor *kt = ctx->inputs[1];
        if (kt->count != 1 || (kt->dtype != IFD_DTYPE_INT64 && kt->dtype != IFD_DTYPE_INT32))
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "k must be one int64 value");
        k = ifd_tensor_get_i64(kt, 0);
    }
    bool upper = ifd_attr_int(ctx->node, "upper", 1) != 0;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, x->rank, x->dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    int64_t mats = x->count / (rows * cols);
    /* k beyond the matrix keeps everything or nothing; clamp so j bounds stay in range. */
    k = IFD_MAX(-rows - 1, IFD_MIN(k, cols + 1));
    const char *s = x->data;
    char *d = y->data;
    size_t rb = (size_t)cols * es;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++) {
            /* Kept columns: upper keeps j >= i + k, lower keeps j <= i + k. */
            int64_t lo = upper ? IFD_MAX((int64_t)0, IFD_MIN(i + k, cols)) : 0;
            int64_t hi = upper ? cols : IFD_MAX((int64_t)0, IFD_MIN(i + k + 1, cols));
            size_t off = (size_t)((m * rows + i) * cols);
            char *dr = d + off * es;
            const char *sr = s + off * es;
            if (lo > 0) memset(dr, 0, (size_t)lo * es);
            if (hi > lo) memcpy(dr + lo * (int64_t)es, sr + lo * (int64_t)es, (size_t)(hi - lo) * es);
            if (hi < cols) memset(dr + hi * (int64_t)es, 0, rb - (size_t)hi * es);
        }
    return IFD_OK;
}

/* ---- ReverseSequence ------------------------------------------------------------------------ */

static ifd_status run_reverse_sequence(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0], *lens = ctx->inputs[1];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es))) return st;
    if (x->rank < 2)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank >= 2");
    int64_t ta = ifd_attr_int(ctx->node, "time_axis", 0), ba = ifd_attr_int(ctx->node, "batch_axis", 1);
    if (!((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "time_axis and batch_axis must be 0 and 1 in some order");
    int64_t T = x->dims[ta], B = x->dims[ba];
    if (lens->rank != 1 || lens->count != B ||
        (lens->dtype != IFD_DTYPE_INT64 && lens->dtype != IFD_DTYPE_INT32))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "sequence_lens must be a 1-D int64 tensor of length %lld",
                                (long long)B);
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, x->rank, x->dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    size_t run = (size_t)prod(x->dims, 2, x->rank) * es;
    /* Byte strides of one time step and one batch entry. */
    int64_t ts = (int64_t)run * (ta == 0 ? B : 1), bs = (int64_t)run * (ba == 0 ? T : 1);
    const char *s = x->data;
    char *d = y->data;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = ifd_tensor_get_i64(lens, b);
        if (len < 0 || len > T)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "sequence_lens[%lld] = %lld is outside [0, %lld]",
                                    (long long)b, (long long)len, (long long)T);
        for (int64_t t = 0; t < T; t++) {
            int64_t src_t = t < len ? len - 1 - t : t;
            memcpy(d + b * bs + t * ts, s + b * bs + src_t * ts, run);
        }
    }
    return IFD_OK;
}

/* ---- DepthToSpace / SpaceToDepth ------------------------------------------------------------ */

/* Copies x viewed with view dims vd (contiguous) permuted by perm into y. */
static void copy_permuted_view(ifd_kernel_ctx *ctx, size_t es, int rank, const int64_t *vd,
                               const int *perm, const void *src, void *dst) {
    int64_t vstr[8], dims[8], sstr[8];
    contiguous_strides(rank, vd, es, vstr);
    for (int i = 0; i < rank; i++) {
        dims[i] = vd[perm[i]];
        sstr[i] = vstr[perm[i]];
    }
    ifd_copy_strided(ctx->pool, es, rank, dims, sstr, src, dst);
}

static ifd_status get_blocksize(ifd_kernel_ctx *ctx, const ifd_tensor *x, int64_t *bs) {
    if (x->rank != 4)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank 4, not %d",
                                x->rank);
    *bs = ifd_attr_int(ctx->node, "blocksize", 0);
    if (*bs <= 0 || *bs > (int64_t)1 << 20)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "blocksize %lld is invalid",
                                (long long)*bs);
    return IFD_OK;
}

static ifd_status run_depth_to_space(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    int64_t b;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es)) || (st = get_blocksize(ctx, x, &b)))
        return st;
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (C % (b * b))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "channels %lld not divisible by blocksize^2",
                                (long long)C);
    const char *mode = ifd_attr_string(ctx->node, "mode", "DCR");
    bool crd = !strcmp(mode, "CRD");
    if (!crd && strcmp(mode, "DCR"))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "mode '%s' is not DCR or CRD", mode);
    int64_t c = C / (b * b);
    int64_t dims[4] = {N, c, H * b, W * b};
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, 4, dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    if (crd) {
        /* [N, c, b, b, H, W] -> [N, c, H, b, W, b] */
        int64_t vd[6] = {N, c, b, b, H, W};
        int perm[6] = {0, 1, 4, 2, 5, 3};
        copy_permuted_view(ctx, es, 6, vd, perm, x->data, y->data);
    } else {
        /* [N, b, b, c, H, W] -> [N, c, H, b, W, b] */
        int64_t vd[6] = {N, b, b, c, H, W};
        int perm[6] = {0, 3, 4, 1, 5, 2};
        copy_permuted_view(ctx, es, 6, vd, perm, x->data, y->data);
    }
    return IFD_OK;
}

static ifd_status run_space_to_depth(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    int64_t b;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es)) || (st = get_blocksize(ctx, x, &b)))
        return st;
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (H % b || W % b)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "height %lld and width %lld must be "
                                "divisible by blocksize %lld", (long long)H, (long long)W,
                                (long long)b);
    int64_t cc;
    if (!ifd_mul_i64(C, b * b, &cc))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output channels overflow");
    int64_t dims[4] = {N, cc, H / b, W / b};
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, 4, dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    /* [N, C, H/b, b, W/b, b] -> [N, b, b, C, H/b, W/b] */
    int64_t vd[6] = {N, C, H / b, b, W / b, b};
    int perm[6] = {0, 3, 5, 1, 2, 4};
    copy_permuted_view(ctx, es, 6, vd, perm, x->data, y->data);
    return IFD_OK;
}

const ifd_op_def ifd_ops_transform[] = {
    {"", "Transpose", 1, run_transpose, NULL, NULL, IFD_OP_STRINGS},
    {"", "Concat", 1, run_concat, NULL, NULL, IFD_OP_STRINGS},
    {"", "Split", 1, run_split, NULL, NULL, IFD_OP_STRINGS},
    {"", "Slice", 1, run_slice, NULL, NULL, IFD_OP_STRINGS},
    {"", "Tile", 1, run_tile, NULL, NULL, IFD_OP_STRINGS},
    {"", "Trilu", 14, run_trilu, NULL, NULL, 0},
    {"", "ReverseSequence", 10, run_reverse_sequence, NULL, NULL, 0},
    {"", "DepthToSpace", 1, run_depth_to_space, NULL, NULL, 0},
    {"", "SpaceToDepth", 1, run_space_to_depth, NULL, NULL, 0},
    {0},
};
