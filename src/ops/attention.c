/* Operator family: attention (Attention, RotaryEmbedding).
 *
 * Attention runs in float whatever the input type (float16/bfloat16/double are converted on
 * entry and back on exit). Work is split into items (batch, q head, block of query rows); each
 * item does S = scale * Q K^T with the SGEMM, adds the bias (mask, causal, kv padding), softcap,
 * a stable softmax, and Y = P V with the SGEMM. Items run in parallel, each with its own score
 * buffer; the SGEMM gets the pool only when there is a single task.
 *
 * Semantics follow the ONNX test data: softcap is applied after the mask is added, and
 * qk_matmul_output_mode 0/1/2/3 exports the scaled QK^T / plus bias / after softcap / after
 * softmax. A query row whose keys are all masked yields zeros (the reference gives NaN). */
#include "kernels/sgemm.h"
#include "kernels/vecmath.h"
#include "ops/op.h"

#include <math.h>
#include <string.h>

/* ---- type conversion ------------------------------------------------------------------------ */

/* dst[0..n) = src[off..off+n) as float. */
static void at_load(const void *src, ifd_dtype dt, int64_t off, float *dst, int64_t n) {
    ifd_load_f32(dt, (const char *)src + (size_t)off * ifd_dtype_size(dt), dst, n);
}

/* dst[off..off+n) = src[0..n) converted from float. */
static void at_store(void *dst, ifd_dtype dt, int64_t off, const float *src, int64_t n) {
    ifd_store_f32(dt, src, (char *)dst + (size_t)off * ifd_dtype_size(dt), n);
}

/* ============================================================================================
 * Attention
 * ============================================================================================ */

/* Element (b, h, i, d) of a per-head view lives at base + b*sb + h*sh + i*ld + d. */
typedef struct at_view {
    const float *base;
    int64_t sb, sh, ld;
} at_view;

typedef struct at_job {
    int64_t B, Hq, Hkv, Lq, Lt, Lp, D, Dv, rep;
    at_view q, k, v;
    float *y;
    int64_t y_sb, y_sh, y_ld;
    /* mask, broadcast to [B, Hq, Lq, mk]; columns >= mk are masked */
    const void *mask;
    ifd_dtype mask_dt;
    int64_t m_sb, m_sh, m_si, mk;
    bool causal;
    const int64_t *causal_off; /* [B]: query i sees keys j <= i + off[b] */
    const int64_t *nonpad;     /* [B] or NULL: keys j >= nonpad[b] are masked */
    float scale, softcap;
    int mode;          /* qk_matmul_output_mode */
    void *qk;          /* [B, Hq, Lq, Lt] or NULL */
    ifd_dtype qk_dt;
    float *slots;      /* n_tasks score buffers of qb * Lt floats (+ a conversion row) */
    int64_t slot_stride;
    int64_t qb, n_qblk, n_items, n_tasks;
    ifd_thread_pool *gemm_pool;
} at_job;

/* Adds the mask row of query i to row (ncols entries) and sets the keys it may not see (mask
 * padding, causal frontier, kv padding) to -inf. */
static void at_add_bias(const at_job *j, int64_t b, int64_t h, int64_t i, float *row,
                        int64_t ncols) {
    if (j->mask) {
        int64_t off = b * j->m_sb + h * j->m_sh + i * j->m_si;
        int64_t mk = IFD_MIN(j->mk, ncols);
        switch (j->mask_dt) {
        case IFD_DTYPE_BOOL: {
            const uint8_t *m = (const uint8_t *)j->mask + off;
            for (int64_t c = 0; c < mk; c++)
                if (!m[c]) row[c] = -INFINITY;
            break;
        }
        case IFD_DTYPE_FLOAT: {
            const float *restrict m = (const float *)j->mask + off;
            for (int64_t c = 0; c < mk; c++) row[c] += m[c];
            break;
        }
        case IFD_DTYPE_FLOAT16: {
            const uint16_t *m = (const uint16_t *)j->mask + off;
            for (int64_t c = 0; c < mk; c++) row[c] += ifd_fp16_to_f32(m[c]);
            break;
        }
        case IFD_DTYPE_BFLOAT16: {
            const uint16_t *m = (const uint16_t *)j->mask + off;
            for (int64_t c = 0; c < mk; c++) row[c] += ifd_bf16_to_f32(m[c]);
            break;
        }
        case IFD_DTYPE_DOUBLE: {
            const double *m = (const double *)j->mask + off;
            for (int64_t c = 0; c < mk; c++) row[c] += (float)m[c];
            break;
        }
        default: break;
        }
        for (int64_t c = mk; c < ncols; c++) row[c] = -INFINITY;
    }
    int64_t lim = ncols;
    if (j->causal) lim = IFD_MIN(lim, IFD_MAX(i + j->causal_off[b] + 1, (int64_t)0));
    if (j->nonpad) lim = IFD_MIN(lim, IFD_MAX(j->nonpad[b], (int64_t)0));
    for (int64_t c = lim; c < ncols; c++) row[c] = -INFINITY;
}

/* ---- row reductions: AVX2 when the CPU has it (the build has no -march) ---- */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AT_X86 1
#else
#define AT_X86 0
#endif

#if AT_X86
__attribute__((target("avx2"))) static float at_max_avx2(const float *x, int64_t n) {
    __m256 a = _mm256_set1_ps(-INFINITY), b = a;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_max_ps(a, _mm256_loadu_ps(x + i));
        b = _mm256_max_ps(b, _mm256_loadu_ps(x + i + 8));
    }
    for (; i + 8 <= n; i += 8) a = _mm256_max_ps(a, _mm256_loadu_ps(x + i));
    a = _mm256_max_ps(a, b);
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    float r = _mm_cvtss_f32(m);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

__attribute__((target("avx2"))) static float at_sum_avx2(const float *x, int64_t n) {
    __m256 a = _mm256_setzero_ps(), b = a;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8));
    }
    for (; i + 8 <= n; i += 8) a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
    a = _mm256_add_ps(a, b);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += x[i];
    return r;
}
#endif

/* __builtin_cpu_supports is a load of libgcc's CPU table: cheap enough per row. */
static bool at_avx2(void) {
#if AT_X86
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

static float at_row_max(const float *x, int64_t n) {
#if AT_X86
    if (at_avx2()) return at_max_avx2(x, n);
#endif
    float m = -INFINITY;
    for (int64_t c = 0; c < n; c++) m = x[c] > m ? x[c] : m;
    return m;
}

static float at_row_sum(const float *x, int64_t n) {
#if AT_X86
    if (at_avx2()) return at_sum_avx2(x, n);
#endif
    float s = 0.0f;
    for (int64_t c = 0; c < n; c++) s += x[c];
    return s;
}

/* In-place softmax of row[0..n); an all -inf row becomes zeros. */
static void at_softmax(float *row, int64_t n) {
    float m = at_row_max(row, n);
    if (m == -INFINITY) {
        memset(row, 0, (size_t)n * sizeof(float));
        return;
    }
    float *restrict r = row;
    for (int64_t c = 0; c < n; c++) r[c] -= m;
    ifd_vec_exp(row, row, n);
    float inv = 1.0f / at_row_sum(row, n);
    for (int64_t c = 0; c < n; c++) r[c] *= inv;
}

static void at_export_row(const at_job *j, int64_t b, int64_t h, int64_t i, const float *row,
                          int64_t ncols) {
    int64_t off = ((b * j->Hq + h) * j->Lq + i) * j->Lt;
    at_store(j->qk, j->qk_dt, off, row, ncols);
}

static void at_item(const at_job *j, int64_t item, float *S) {
    int64_t qblk = item % j->n_qblk;
    int64_t bh = item / j->n_qblk;
    int64_t h = bh % j->Hq, b = bh / j->Hq;
    int64_t hk = h / j->rep;
    int64_t i0 = qblk * j->qb, i1 = IFD_MIN(i0 + j->qb, j->Lq);
    int64_t rows = i1 - i0;
    float *ybase = j->y + b * j->y_sb + h * j->y_sh + i0 * j->y_ld;

    /* Keys beyond the causal frontier or the padding never get weight, so unless the raw
     * scores are exported they need not be computed at all. */
    int64_t ncols = j->Lt;
    if (!j->qk) {
        if (j->causal) ncols = IFD_MIN(ncols, IFD_MAX(i1 - 1 + j->causal_off[b] + 1, (int64_t)0));
        if (j->nonpad) ncols = IFD_MIN(ncols, IFD_MAX(j->nonpad[b], (int64_t)0));
    }
    if (ncols == 0) {
        for (int64_t r = 0; r < rows; r++) memset(ybase + r * j->y_ld, 0, (size_t)j->Dv * 4);
        return;
    }

    const float *q = j->q.base + b * j->q.sb + h * j->q.sh + i0 * j->q.ld;
    const float *k = j->k.base + b * j->k.sb + hk * j->k.sh;
    const float *v = j->v.base + b * j->v.sb + hk * j->v.sh;
    /* S [rows, ncols] = scale * Q_bh[i0:i1] [rows, D] * K_bh^T [D, ncols] */
    ifd_sgemm(false, true, rows, ncols, j->D, j->scale, q, j->q.ld, k, j->k.ld, 0.0f, S, ncols,
              j->gemm_pool);

    for (int64_t r = 0; r < rows; r++) {
        int64_t i = i0 + r;
        float *row = S + r * ncols;
        if (j->qk && j->mode == 0) at_export_row(j, b, h, i, row, ncols);
        at_add_bias(j, b, h, i, row, ncols);
        if (j->qk && j->mode == 1) at_export_row(j, b, h, i, row, ncols);
        if (j->softcap > 0.0f) {
            float inv = 1.0f / j->softcap, cap = j->softcap;
            float *restrict rr = row;
            for (int64_t c = 0; c < ncols; c++) rr[c] *= inv;
            ifd_vec_tanh(row, row, ncols);
            for (int64_t c = 0; c < ncols; c++) rr[c] *= cap;
        }
        if (j->qk && j->mode == 2) at_export_row(j, b, h, i, row, ncols);
        at_softmax(row, ncols);
        if (j->qk && j->mode == 3) at_export_row(j, b, h, i, row, ncols);
    }
    /* Y_bh[i0:i1] [rows, Dv] = P [rows, ncols] * V_bh [ncols, Dv] */
    ifd_sgemm(false, false, rows, j->Dv, ncols, 1.0f, S, ncols, v, j->v.ld, 0.0f, ybase, j->y_ld,
              j->gemm_pool);
}

static void at_task(void *arg, int64_t begin, int64_t end) {
    const at_job *j = arg;
    for (int64_t t = begin; t < end; t++) {
        float *S = j->slots + t * j->slot_stride;
        int64_t a = j->n_items * t / j->n_tasks, z = j->n_items * (t + 1) / j->n_tasks;
        for (int64_t it = a; it < z; it++) at_item(j, it, S);
    }
}

/* Copies a [B, H, L, d] cache from `past` (may be NULL, Lp rows) and the new rows of `cur`
 * (3-D [B, L, H*d] or 4-D [B, H, L, d]) into float dst [B, H, Lp + L, d]. */
static void at_concat(float *dst, const ifd_tensor *past, const ifd_tensor *cur, int64_t B,
                      int64_t H, int64_t Lp, int64_t L, int64_t d) {
    int64_t Lt = Lp + L;
    bool r3 = cur->rank == 3;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            float *o = dst + (b * H + h) * Lt * d;
            if (past && Lp > 0) at_load(past->data, past->dtype, (b * H + h) * Lp * d, o, Lp * d);
            o += Lp * d;
            if (r3) {
                for (int64_t l = 0; l < L; l++)
                    at_load(cur->data, cur->dtype, (b * L + l) * H * d + h * d, o + l * d, d);
            } else {
                at_load(cur->data, cur->dtype, (b * H + h) * L * d, o, L * d);
            }
        }
}

static ifd_status run_attention(ifd_kernel_ctx *ctx) {
    const ifd_tensor *Q = ctx->n_inputs > 0 ? ctx->inputs[0] : NULL;
    const ifd_tensor *K = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
    const ifd_tensor *V = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    const ifd_tensor *mask = ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
    const ifd_tensor *pk = ctx->n_inputs > 4 ? ctx->inputs[4] : NULL;
    const ifd_tensor *pv = ctx->n_inputs > 5 ? ctx->inputs[5] : NULL;
    const ifd_tensor *nonpad = ctx->n_inputs > 6 ? ctx->inputs[6] : NULL;
    if (!Q || !K || !V) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "Q, K and V are required");
    ifd_dtype T = Q->dtype;
    if (!ifd_dtype_is_std_float(T))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported Q dtype %d", (int)T);
    if (K->dtype != T || V->dtype != T || (pk && pk->dtype != T) || (pv && pv->dtype != T))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "Q, K, V, past_key and past_value must share one dtype");
    if (Q->rank != K->rank || Q->rank != V->rank || (Q->rank != 3 && Q->rank != 4))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "Q, K, V must all be 3-D or all 4-D (ranks %d, %d, %d)", Q->rank,
                                K->rank, V->rank);
    if ((pk == NULL) != (pv == NULL))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "past_key and past_value must be given together");

    bool r3 = Q->rank == 3;
    int64_t B = Q->dims[0], Hq, Hkv, Lq, Lkv, D, Dk, Dv;
    if (r3) {
        Hq = ifd_attr_int(ctx->node, "q_num_heads", 0);
        Hkv = ifd_attr_int(ctx->node, "kv_num_heads", 0);
        if (Hq <= 0 || Hkv <= 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "3-D inputs need q_num_heads and kv_num_heads > 0");
        if (Q->dims[2] % Hq || K->dims[2] % Hkv || V->dims[2] % Hkv)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "hidden sizes %lld/%lld/%lld not divisible by heads %lld/%lld",
                                    (long long)Q->dims[2], (long long)K->dims[2],
                                    (long long)V->dims[2], (long long)Hq, (long long)Hkv);
        Lq = Q->dims[1];
        Lkv = K->dims[1];
        D = Q->dims[2] / Hq;
        Dk = K->dims[2] / Hkv;
        Dv = V->dims[2] / Hkv;
        if (V->dims[1] != Lkv)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "K and V sequence lengths differ");
    } else {
        Hq = Q->dims[1];
        Hkv = K->dims[1];
        Lq = Q->dims[2];
        Lkv = K->dims[2];
        D = Q->dims[3];
        Dk = K->dims[3];
        Dv = V->dims[3];
        if (V->dims[1] != Hkv || V->dims[2] != Lkv)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "K and V heads or sequence lengths differ");
    }
    if (K->dims[0] != B || V->dims[0] != B)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "Q, K, V batch sizes differ");
    if (Dk != D)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "Q head size %lld != K head size %lld",
                                (long long)D, (long long)Dk);
    if (Hkv <= 0 || Hq % Hkv)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "q heads %lld not a multiple of kv heads %lld",
                                (long long)Hq, (long long)Hkv);
    int64_t Lp = 0;
    if (pk) {
        if (pk->rank != 4 || pv->rank != 4 || pk->dims[0] != B || pk->dims[1] != Hkv ||
            pk->dims[3] != D || pv->dims[0] != B || pv->dims[1] != Hkv || pv->dims[3] != Dv ||
            pv->dims[2] != pk->dims[2])
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "past_key/past_value must be [B, kv_heads, past, head_size]");
        Lp = pk->dims[2];
    }
    int64_t Lt = Lp + Lkv;

    /* mask: right-aligned against [B, Hq, Lq, Lt]; a shorter last dim means masked padding */
    at_job j;
    memset(&j, 0, sizeof j);
    if (mask) {
        if (mask->dtype != IFD_DTYPE_BOOL && !ifd_dtype_is_std_float(mask->dtype))
            return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported attn_mask dtype %d",
                                    (int)mask->dtype);
        if (mask->rank < 2 || mask->rank > 4)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "attn_mask must be 2-D, 3-D or 4-D");
        int64_t want[4] = {B, Hq, Lq, Lt}, st[4] = {0, 0, 0, 0}, s = 1;
        for (int a = 3; a >= 0; a--) {
            int md = mask->rank - 4 + a;
            if (md < 0) break;
            int64_t d = mask->dims[md];
            if (a == 3) {
                if (d > Lt || d < 1)
                    return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                            "attn_mask last dim %lld exceeds total kv length %lld",
                                            (long long)d, (long long)Lt);
            } else if (d != 1 && d != want[a]) {
                return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                        "attn_mask dim %d (%lld) does not broadcast to %lld", md,
                                        (long long)d, (long long)want[a]);
            }
            st[a] = d == 1 && a != 3 ? 0 : s;
            s *= d;
        }
        j.mask = mask->data;
        j.mask_dt = mask->dtype;
        j.m_sb = st[0];
        j.m_sh = st[1];
        j.m_si = st[2];
        j.mk = mask->dims[mask->rank - 1];
    }
    if (nonpad) {
        if (nonpad->count != B)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "nonpad_kv_seqlen must have %lld entries",
                                    (long long)B);
    }

    int mode = (int)ifd_attr_int(ctx->node, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "qk_matmul_output_mode %d", mode);

    /* outputs */
    ifd_tensor *Y = NULL, *PK = NULL, *PV = NULL, *QK = NULL;
    int64_t ydims[4];
    if (r3) {
        ydims[0] = B, ydims[1] = Lq, ydims[2] = Hq * Dv;
    } else {
        ydims[0] = B, ydims[1] = Hq, ydims[2] = Lq, ydims[3] = Dv;
    }
    ifd_status st = ifd_kernel_output(ctx, 0, T, Q->rank, ydims, &Y);
    if (st) return st;
    bool want_pk = ctx->n_outputs > 1 && ifd_kernel_output_wanted(ctx, 1);
    bool want_pv = ctx->n_outputs > 2 && ifd_kernel_output_wanted(ctx, 2);
    bool want_qk = ctx->n_outputs > 3 && ifd_kernel_output_wanted(ctx, 3);
    int64_t pkd[4] = {B, Hkv, Lt, D}, pvd[4] = {B, Hkv, Lt, Dv}, qkd[4] = {B, Hq, Lq, Lt};
    bool f32 = T == IFD_DTYPE_FLOAT;
    /* float with a past: the present outputs double as the concatenated K/V */
    bool kv_in_present = f32 && pk;
    if (want_pk || kv_in_present) {
        if ((st = ifd_kernel_output(ctx, 1, T, 4, pkd, &PK))) return st;
    }
    if (want_pv || kv_in_present) {
        if ((st = ifd_kernel_output(ctx, 2, T, 4, pvd, &PV))) return st;
    }
    if (want_qk) {
        if ((st = ifd_kernel_output(ctx, 3, T, 4, qkd, &QK))) return st;
    }
    if (Y->count == 0 && !want_pk && !want_pv && !want_qk) return IFD_OK;

    /* work split */
    int nthreads = ifd_thread_pool_size(ctx->pool);
    int64_t BH = B * Hq;
    int64_t qb = Lq;
    if (BH > 0 && Lq > 0) {
        int64_t blocks_wanted = (2 * (int64_t)nthreads + BH - 1) / BH;
        qb = (Lq + blocks_wanted - 1) / blocks_wanted;
        qb = IFD_MAX(qb, IFD_MIN((int64_t)16, Lq));
        /* keep each score buffer near 1 MiB */
        int64_t cap = IFD_MAX((int64_t)1, ((int64_t)1 << 18) / IFD_MAX(Lt, (int64_t)1));
        qb = IFD_MIN(qb, IFD_MAX(cap, (int64_t)1));
        qb = IFD_MAX(qb, (int64_t)1);
    }
    int64_t n_qblk = Lq > 0 ? (Lq + qb - 1) / qb : 0;
    int64_t n_items;
    if (!ifd_mul_i64(BH, n_qblk, &n_items))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "too many attention items");
    int64_t n_tasks = IFD_MIN(n_items, (int64_t)nthreads);
    n_tasks = IFD_MAX(n_tasks, (int64_t)1);

    /* scratch */
    bool conv_kv = !f32; /* K/V total built in float scratch */
    size_t kcount = 0, vcount = 0, slot_floats = 0, all_slots = 0;
    if (!ifd_mul_size((size_t)B * (size_t)Hkv, (size_t)Lt * (size_t)D, &kcount) ||
        !ifd_mul_size((size_t)B * (size_t)Hkv, (size_t)Lt * (size_t)Dv, &vcount) ||
        !ifd_mul_size((size_t)qb, (size_t)IFD_MAX(Lt, (int64_t)1), &slot_floats) ||
        !ifd_mul_size((slot_floats + 15) & ~(size_t)15, (size_t)n_tasks, &all_slots))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "attention scratch size overflows");
    slot_floats = (slot_floats + 15) & ~(size_t)15;
    st = IFD_OK;
    float *q_conv = f32 ? NULL : ifd_kernel_scratch_array(ctx, (size_t)Q->count, 4, &st);
    float *y_conv = f32 ? NULL : ifd_kernel_scratch_array(ctx, (size_t)Y->count, 4, &st);
    float *k_conv = conv_kv ? ifd_kernel_scratch_array(ctx, kcount, 4, &st) : NULL;
    float *v_conv = conv_kv ? ifd_kernel_scratch_array(ctx, vcount, 4, &st) : NULL;
    float *slots = ifd_kernel_scratch_array(ctx, all_slots, 4, &st);
    int64_t *coff = ifd_kernel_scratch_array(ctx, (size_t)IFD_MAX(B, (int64_t)1), 8, &st);
    int64_t *np = nonpad ? ifd_kernel_scratch_array(ctx, (size_t)IFD_MAX(B, (int64_t)1), 8, &st)
                         : NULL;
    if (st) return st;

    /* Q view */
    const float *qf = f32 ? (const float *)Q->data : q_conv;
    if (!f32) at_load(Q->data, T, 0, q_conv, Q->count);
    if (r3) {
        j.q = (at_view){qf, Lq * Hq * D, D, Hq * D};
    } else {
        j.q = (at_view){qf, Hq * Lq * D, Lq * D, D};
    }

    /* K/V views: the new rows directly, or the concatenated [B, Hkv, Lt, d] cache */
    if (conv_kv || kv_in_present) {
        float *kt = conv_kv ? k_conv : (float *)PK->data;
        float *vt = conv_kv ? v_conv : (float *)PV->data;
        at_concat(kt, pk, K, B, Hkv, Lp, Lkv, D);
        at_concat(vt, pv, V, B, Hkv, Lp, Lkv, Dv);
        j.k = (at_view){kt, Hkv * Lt * D, Lt * D, D};
        j.v = (at_view){vt, Hkv * Lt * Dv, Lt * Dv, Dv};
        if (conv_kv) {
            if (want_pk) at_store(PK->data, T, 0, kt, (int64_t)kcount);
            if (want_pv) at_store(PV->data, T, 0, vt, (int64_t)vcount);
        }
    } else {
        const float *kf = K->data, *vf = V->data;
        if (r3) {
            j.k = (at_view){kf, Lkv * Hkv * D, D, Hkv * D};
            j.v = (at_view){vf, Lkv * Hkv * Dv, Dv, Hkv * Dv};
        } else {
            j.k = (at_view){kf, Hkv * Lkv * D, Lkv * D, D};
            j.v = (at_view){vf, Hkv * Lkv * Dv, Lkv * Dv, Dv};
        }
        if (want_pk) at_concat(PK->data, NULL, K, B, Hkv, 0, Lkv, D);
        if (want_pv) at_concat(PV->data, NULL, V, B, Hkv, 0, Lkv, Dv);
    }

    /* Y */
    j.y = f32 ? (float *)Y->data : y_conv;
    if (r3) {
        j.y_sb = Lq * Hq * Dv, j.y_sh = Dv, j.y_ld = Hq * Dv;
    } else {
        j.y_sb = Hq * Lq * Dv, j.y_sh = Lq * Dv, j.y_ld = Dv;
    }

    /* causal offsets: bottom-right alignment after a past, or per batch from the padding */
    for (int64_t b = 0; b < B; b++) {
        if (np) np[b] = ifd_tensor_get_i64(nonpad, b);
        coff[b] = pk ? Lp : (np ? np[b] - Lq : 0);
    }

    j.B = B, j.Hq = Hq, j.Hkv = Hkv, j.Lq = Lq, j.Lt = Lt, j.Lp = Lp, j.D = D, j.Dv = Dv;
    j.rep = Hq / Hkv;
    j.causal = ifd_attr_int(ctx->node, "is_causal", 0) != 0;
    j.causal_off = coff;
    j.nonpad = np;
    j.scale = ifd_attr_has(ctx->node, "scale") ? ifd_attr_float(ctx->node, "scale", 1.0f)
                                               : (float)(1.0 / sqrt((double)D));
    j.softcap = ifd_attr_float(ctx->node, "softcap", 0.0f);
    j.mode = mode;
    j.qk = want_qk ? QK->data : NULL;
    j.qk_dt = T;
    j.slots = slots;
    j.slot_stride = (int64_t)slot_floats;
    j.qb = qb, j.n_qblk = n_qblk, j.n_items = n_items, j.n_tasks = n_tasks;
    j.gemm_pool = n_tasks == 1 ? ctx->pool : NULL;

    if (n_items > 0) {
        if (n_tasks == 1)
            at_task(&j, 0, 1);
        else
            ifd_parallel_for(ctx->pool, n_tasks, 1, at_task, &j);
    }
    if (!f32) at_store(Y->data, T, 0, j.y, Y->count);
    return IFD_OK;
}

/* ============================================================================================
 * RotaryEmbedding
 * ============================================================================================ */

typedef struct rope_job {
    const void *x;
    void *y;
    ifd_dtype dt;
    const void *cosc, *sinc;
    ifd_dtype cdt;
    const ifd_tensor *pos; /* [B, S] or NULL (caches are then [B, S, rot/2]) */
    int64_t max_pos;
    int64_t B, S, H, hd, rot;
    bool interleaved, r3;
    int64_t *bad; /* set to an out-of-range position id */
} rope_job;

/* Rows are (b, s): each covers all heads of one token. */
static void rope_task(void *arg, int64_t begin, int64_t end) {
    const rope_job *j = arg;
    int64_t half = j->rot / 2;
    float buf[1024], cs[512], sn[512];
    for (int64_t r = begin; r < end; r++) {
        int64_t b = r / j->S, s = r % j->S;
        int64_t crow;
        if (j->pos) {
            int64_t pid = ifd_tensor_get_i64(j->pos, b * j->S + s);
            if (pid < 0 || pid >= j->max_pos) {
                __atomic_store_n(j->bad, pid, __ATOMIC_RELAXED);
                continue;
            }
            crow = pid * half;
        } else {
            crow = (b * j->S + s) * half;
        }
        for (int64_t k = 0; k < half; k++) {
            cs[k] = (float)ifd_load_f64(j->cosc, j->cdt, crow + k);
            sn[k] = (float)ifd_load_f64(j->sinc, j->cdt, crow + k);
        }
        for (int64_t h = 0; h < j->H; h++) {
            /* 4-D [B, H, S, hd]; 3-D [B, S, H*hd] */
            int64_t off = j->r3 ? ((b * j->S + s) * j->H + h) * j->hd
                                : ((b * j->H + h) * j->S + s) * j->hd;
            at_load(j->x, j->dt, off, buf, j->hd);
            float *restrict x = buf;
            if (j->interleaved) {
                for (int64_t k = 0; k < half; k++) {
                    float x1 = x[2 * k], x2 = x[2 * k + 1];
                    x[2 * k] = cs[k] * x1 - sn[k] * x2;
                    x[2 * k + 1] = sn[k] * x1 + cs[k] * x2;
                }
            } else {
                for (int64_t k = 0; k < half; k++) {
                    float x1 = x[k], x2 = x[k + half];
                    x[k] = cs[k] * x1 - sn[k] * x2;
                    x[k + half] = sn[k] * x1 + cs[k] * x2;
                }
            }
            /* the part beyond rot is stored back unchanged */
            at_store(j->y, j->dt, off, buf, j->hd);
        }
    }
}

static ifd_status run_rotary(ifd_kernel_ctx *ctx) {
    const ifd_tensor *X = ctx->inputs[0];
    const ifd_tensor *C = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
    const ifd_tensor *Sn = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    const ifd_tensor *P = ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
    if (!X || !C || !Sn)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input, cos_cache and sin_cache are required");
    if (!ifd_dtype_is_std_float(X->dtype) || !ifd_dtype_is_std_float(C->dtype) ||
        Sn->dtype != C->dtype)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported dtypes");
    rope_job j;
    memset(&j, 0, sizeof j);
    j.interleaved = ifd_attr_int(ctx->node, "interleaved", 0) != 0;
    int64_t nh = ifd_attr_int(ctx->node, "num_heads", 0);
    if (X->rank == 4) {
        j.B = X->dims[0], j.H = X->dims[1], j.S = X->dims[2], j.hd = X->dims[3];
    } else if (X->rank == 3) {
        if (nh <= 0 || X->dims[2] % nh)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "3-D input needs num_heads dividing the hidden size %lld",
                                    (long long)X->dims[2]);
        j.B = X->dims[0], j.S = X->dims[1], j.H = nh, j.hd = X->dims[2] / nh, j.r3 = true;
    } else {
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input must be 3-D or 4-D (rank %d)", X->rank);
    }
    int64_t rot = ifd_attr_int(ctx->node, "rotary_embedding_dim", 0);
    if (rot == 0) rot = j.hd;
    if (rot < 0 || rot > j.hd || rot % 2)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "rotary_embedding_dim %lld invalid for head size %lld",
                                (long long)rot, (long long)j.hd);
    if (j.hd > 1024)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "head size %lld above 1024",
                                (long long)j.hd);
    j.rot = rot;
    int64_t half = rot / 2;
    if (C->rank != Sn->rank || memcmp(C->dims, Sn->dims, sizeof(int64_t) * (size_t)C->rank))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "cos_cache and sin_cache shapes differ");
    if (P) {
        if (P->rank != 2 || P->dims[0] != j.B || P->dims[1] != j.S)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "position_ids must be [batch, seq]");
        if (C->rank != 2 || C->dims[1] != half)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "cos_cache must be [max_position, %lld]", (long long)half);
        j.max_pos = C->dims[0];
    } else {
        if (C->rank != 3 || C->dims[0] != j.B || C->dims[1] != j.S || C->dims[2] != half)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "without position_ids cos_cache must be [batch, seq, %lld]",
                                    (long long)half);
    }
    ifd_tensor *Y;
    ifd_status st = ifd_kernel_output(ctx, 0, X->dtype, X->rank, X->dims, &Y);
    if (st) return st;
    if (X->count == 0) return IFD_OK;
    int64_t bad = INT64_MIN;
    j.x = X->data, j.y = Y->data, j.dt = X->dtype;
    j.cosc = C->data, j.sinc = Sn->data, j.cdt = C->dtype, j.pos = P, j.bad = &bad;
    int64_t per_row = IFD_MAX(j.H * j.hd, (int64_t)1);
    ifd_parallel_for(ctx->pool, j.B * j.S, IFD_MAX((int64_t)1, 16384 / per_row), rope_task, &j);
    if (bad != INT64_MIN)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "position id %lld outside the cache of %lld positions",
                                (long long)bad, (long long)j.max_pos);
    return IFD_OK;
}

const ifd_op_def ifd_ops_attention[] = {
    {"", "Attention", 23, run_attention, NULL, NULL, 0},
    {"", "RotaryEmbedding", 23, run_rotary, NULL, NULL, 0},
    {0},
};
