/* Operator family: matmul (Gemm, MatMul, Einsum).
 * float runs on the packed SGEMM (kernels/sgemm.h), with constant 2-D weights packed once at
 * prepare() and bias/activation fused into the GEMM epilogue; float16/bfloat16 go through
 * float; double and integer types use a plain, exact path (double / wrapping 64-bit).
 *
 * A constant float weight that is at least half zeros (a pruned model, `inferd prune`) is
 * also packed for the sparse kernel (kernels/spgemm.h), and prepare() times both kernels on
 * the layer's own shapes (the M of the input when its shape is fixed, else M = 1, 16 and
 * 128) and keeps, per M, the faster one: sparse only pays past a sparsity that depends on the
 * shapes and the machine, so it is measured, not guessed. IFD_SPARSE=off|on|auto (default
 * auto) turns this off or forces the sparse kernel, for tests and benchmarks;
 * IFD_SPARSE_LOG=1 prints each decision to stderr. */
#include "kernels/sgemm.h"
#include "kernels/spgemm.h"
#include "ops/op.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- shared helpers ---------------------------------------------------------------------- */

static bool is_int_type(ifd_dtype t) {
    return ifd_dtype_is_signed_int(t) || ifd_dtype_is_unsigned_int(t) || t == IFD_DTYPE_BOOL;
}

static bool dtype_supported(ifd_dtype t) {
    return ifd_dtype_is_std_float(t) || (is_int_type(t) && t != IFD_DTYPE_BOOL);
}

static void set_i64(ifd_tensor *t, int64_t i, int64_t v) {
    void *p = t->data;
    switch (t->dtype) {
    case IFD_DTYPE_INT64: ((int64_t *)p)[i] = v; break;
    case IFD_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case IFD_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; break;
    case IFD_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case IFD_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)(uint16_t)v; break;
    case IFD_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case IFD_DTYPE_INT8: case IFD_DTYPE_INT4: case IFD_DTYPE_INT2:
        ((int8_t *)p)[i] = (int8_t)(uint8_t)v; break;
    case IFD_DTYPE_UINT8: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2:
        ((uint8_t *)p)[i] = (uint8_t)v; break;
    case IFD_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: ifd_store_f64(p, t->dtype, i, (double)v); break;
    }
}

/* Tensor elements as floats (float16/bfloat16 converted; float returned as is). */
static const float *as_f32(const ifd_tensor *t, float *buf) {
    if (t->dtype == IFD_DTYPE_FLOAT) return t->data;
    ifd_load_f32(t->dtype, t->data, buf, t->count);
    return buf;
}

static void act_f64(const ifd_activation *act, double *x, int64_t n) {
    if (act->kind == IFD_ACT_NONE) return;
    for (int64_t i = 0; i < n; i++) {
        float f = (float)x[i];
        ifd_activation_apply(act, &f, 1);
        x[i] = f;
    }
}

#define GEMV_MAX_ROWS 2
/* A weight with fewer zeros never beats dense SGEMM with this sparse kernel. */
#define SPARSE_MIN_SPARSITY 0.5
#define SPARSE_MAX_MEASURED 3

/* State of a node whose B is a constant 2-D float weight, packed once. */
typedef struct packed_state {
    ifd_sgemm_packed_b *pb; /* NULL when the sparse kernel won at every measured M */
    int64_t k, n;           /* op(B) is k x n */
    ifd_spgemm_b *sp;       /* sparse packing, or NULL */
    int n_measured;         /* M values timed; the nearest (in log scale) decides at run time */
    int64_t measured_m[SPARSE_MAX_MEASURED];
    bool sparse_wins[SPARSE_MAX_MEASURED];
} packed_state;

static void release_packed(void *state) {
    packed_state *s = state;
    if (!s) return;
    ifd_sgemm_packed_b_free(s->pb);
    ifd_spgemm_free(s->sp);
    ifd_free(s);
}

/* The two sides of measure_sparse. */
typedef struct probe_args {
    const packed_state *s;
    bool gemv_rows, trans_b;
    const float *a, *b;
    int64_t ldb, m;
    float *c;
    void *scratch;
} probe_args;

static void probe_dense(void *arg) {
    const probe_args *p = arg;
    const packed_state *s = p->s;
    if (p->gemv_rows || !s->pb)
        ifd_sgemm_ex(false, p->trans_b, p->m, s->n, s->k, 1.0f, p->a, s->k, p->b, p->ldb, 0.0f,
                     p->c, s->n, NULL, NULL);
    else
        ifd_sgemm_packed_ex(false, p->m, p->a, s->k, 1.0f, s->pb, 0.0f, p->c, s->n, NULL, NULL);
}

static void probe_sparse(void *arg) {
    const probe_args *p = arg;
    ifd_spgemm_run(false, p->m, p->a, p->s->k, 1.0f, p->s->sp, 0.0f, p->c, p->s->n, NULL,
                   p->scratch, NULL);
}

/* Time dense and sparse on an m-row product, single-threaded (the ratio is what matters),
 * alternating the two so that a noisy neighbour hurts both; best of a few runs each. The
 * dense side is what run() would call: the packed panels, or the vector path for a few rows
 * of a Gemm. Returns false when the buffers cannot be had (then dense stays). */
static bool measure_sparse(const packed_state *s, bool gemv_rows, bool trans_b, const float *b,
                           int64_t ldb, int64_t m, bool *sparse_wins, double *t_dense,
                           double *t_sparse) {
    size_t a_bytes, c_bytes, scratch = ifd_spgemm_scratch_bytes(s->sp, m);
    if (!ifd_mul_size((size_t)(m * s->k), sizeof(float), &a_bytes) ||
        !ifd_mul_size((size_t)(m * s->n), sizeof(float), &c_bytes) || scratch == SIZE_MAX)
        return false;
    float *a = ifd_malloc_aligned(a_bytes + 64), *c = ifd_malloc_aligned(c_bytes + 64);
    void *sc = ifd_malloc_aligned(scratch + 64);
    bool ok = a && c && sc;
    if (ok) {
        ifd_fill_probe_input(a, (size_t)(m * s->k));
        probe_args p = {s, gemv_rows, trans_b, a, b, ldb, m, c, sc};
        ifd_time_alternating(probe_dense, probe_sparse, &p, 2, 0.02, t_dense, t_sparse);
        *sparse_wins = *t_sparse < *t_dense;
    }
    ifd_free_aligned(a);
    ifd_free_aligned(c);
    ifd_free_aligned(sc);
    return ok;
}

/* The M a product of this node will have, when the input's static shape fixes it; else -1. */
static int64_t known_rows(const ifd_prepare_ctx *ctx, bool gemm) {
    const ifd_value_type *t = ctx->n_inputs > 0 ? ctx->input_types[0] : NULL;
    if (!t || t->rank < 1 || (gemm && t->rank != 2)) return -1;
    int64_t m = 1;
    if (gemm) {
        bool ta = ifd_attr_int(ctx->node, "transA", 0) != 0;
        m = t->dims[ta ? 1 : 0];
        return m > 0 ? m : -1;
    }
    for (int d = 0; d < t->rank - 1; d++)
        if (t->dims[d] <= 0 || !ifd_mul_i64(m, t->dims[d], &m)) return -1;
    return m;
}

/* Pack the weight for the sparse kernel when it is sparse enough, and keep it for the M
 * values at which it measured faster. Failures here only mean dense stays. */
static void prepare_sparse(ifd_prepare_ctx *ctx, packed_state *s, bool trans_b, bool gemm) {
    const ifd_tensor *b = ctx->constants[1];
    const char *mode = getenv("IFD_SPARSE");
    const char *log = getenv("IFD_SPARSE_LOG");
    const bool logging = log && *log && strcmp(log, "0");
    if (mode && !strcmp(mode, "off")) return;
    const bool forced = mode && !strcmp(mode, "on");
    const double sparsity = ifd_spgemm_sparsity(trans_b, s->n, s->k, b->data, b->dims[1]);
    if (sparsity < SPARSE_MIN_SPARSITY) return;
    if (ifd_spgemm_pack(trans_b, s->n, s->k, b->data, b->dims[1], &s->sp) != IFD_OK) {
        ifd_error_clear();
        return;
    }
    int64_t rows = known_rows(ctx, gemm);
    static const int64_t typical[SPARSE_MAX_MEASURED] = {1, 16, 128};
    int n = rows > 0 ? 1 : SPARSE_MAX_MEASURED;
    bool any = false, all = true;
    for (int i = 0; i < n; i++) {
        int64_t m = rows > 0 ? rows : typical[i];
        bool wins = forced;
        double td = 0, ts = 0;
        if (!forced &&
            !measure_sparse(s, gemm && m < GEMV_MAX_ROWS, trans_b, b->data, b->dims[1], m, &wins,
                            &td, &ts))
            wins = false;
        s->measured_m[s->n_measured] = m;
        s->sparse_wins[s->n_measured++] = wins;
        any |= wins;
        all &= wins;
        if (logging)
            fprintf(stderr,
                    "sparse: %s '%s' %lldx%lld sparsity %.3f%s, M=%lld: dense %.1f us, sparse "
                    "%.1f us -> %s\n",
                    ctx->node->op_type, ctx->node->name, (long long)s->k, (long long)s->n,
                    sparsity, ifd_spgemm_is_2_4(s->sp) ? " (2:4)" : "", (long long)m, td * 1e6,
                    ts * 1e6, wins ? "sparse" : "dense");
    }
    if (!any) {
        ifd_spgemm_free(s->sp);
        s->sp = NULL;
        s->n_measured = 0;
    } else if (all) {
        /* dense would never run: give its memory back (run() falls back to the unpacked
         * weight if it is ever needed) */
        ifd_sgemm_packed_b_free(s->pb);
        s->pb = NULL;
    }
}

static ifd_status prepare_packed(ifd_prepare_ctx *ctx, bool trans_b, bool gemm) {
    const ifd_tensor *b = ctx->n_inputs > 1 ? ctx->constants[1] : NULL;
    ctx->state = NULL;
    if (!b || b->dtype != IFD_DTYPE_FLOAT || b->rank != 2 || b->count == 0) return IFD_OK;
    packed_state *s = ifd_calloc(1, sizeof *s);
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory preparing %s", ctx->node->op_type);
    s->k = trans_b ? b->dims[1] : b->dims[0];
    s->n = trans_b ? b->dims[0] : b->dims[1];
    ifd_status st = ifd_sgemm_pack_b(trans_b, s->n, s->k, b->data, b->dims[1], &s->pb);
    if (st != IFD_OK) {
        ifd_free(s);
        return st;
    }
    prepare_sparse(ctx, s, trans_b, gemm);
    ctx->state = s;
    return IFD_OK;
}

/* The packed B applies when it has the shape of the runtime B (a caller could feed an
 * overridable initializer with another shape). */
static const ifd_sgemm_packed_b *packed_for(const ifd_kernel_ctx *ctx, int64_t k, int64_t n) {
    const packed_state *s = ctx->state;
    if (!s || !s->pb || s->k != k || s->n != n) return NULL;
    return s->pb;
}

/* The sparse weight, when it applies and measured faster at the M nearest this one. */
static const ifd_spgemm_b *sparse_for(const ifd_kernel_ctx *ctx, int64_t m, int64_t k,
                                      int64_t n) {
    const packed_state *s = ctx->state;
    if (!s || !s->sp || s->k != k || s->n != n || m <= 0) return NULL;
    int best = 0;
    double best_d = INFINITY;
    for (int i = 0; i < s->n_measured; i++) {
        double d = fabs(log((double)m) - log((double)s->measured_m[i]));
        if (d < best_d) best_d = d, best = i;
    }
    return s->sparse_wins[best] ? s->sp : NULL;
}

/* C = alpha * op(A) * W + beta * C on the sparse kernel; false when scratch is not to be had
 * (the error is in *st). */
static bool run_sparse(ifd_kernel_ctx *ctx, const ifd_spgemm_b *sp, bool ta, int64_t m,
                       const float *a, int64_t lda, float alpha, float beta, float *y,
                       const ifd_sgemm_epilogue *ep, ifd_status *st) {
    size_t bytes = ifd_spgemm_scratch_bytes(sp, m);
    if (bytes == SIZE_MAX) {
        *st = ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "sparse product of %lld rows is too large",
                               (long long)m);
        return false;
    }
    void *scratch = bytes ? ifd_kernel_scratch_array(ctx, bytes, 1, st) : NULL;
    if (*st) return false;
    ifd_spgemm_run(ta, m, a, lda, alpha, sp, beta, y, ifd_spgemm_n(sp), ep, scratch, ctx->pool);
    return true;
}


/* ---- Gemm ---------------------------------------------------------------------------------- */

static ifd_status prepare_gemm(ifd_prepare_ctx *ctx) {
    return prepare_packed(ctx, ifd_attr_int(ctx->node, "transB", 0) != 0, true);
}

static ifd_status run_gemm(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *A = ctx->inputs[0], *B = ctx->inputs[1];
    const ifd_tensor *C = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    const bool ta = ifd_attr_int(ctx->node, "transA", 0) != 0;
    const bool tb = ifd_attr_int(ctx->node, "transB", 0) != 0;
    const float alpha = ifd_attr_float(ctx->node, "alpha", 1.0f);
    float beta = ifd_attr_float(ctx->node, "beta", 1.0f);
    if (A->rank != 2 || B->rank != 2)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "A and B must be 2-D, got ranks %d and %d",
                                A->rank, B->rank);
    if (A->dtype != B->dtype || (C && C->dtype != A->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "A, B and C must have the same type");
    if (!dtype_supported(A->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported element type %d", (int)A->dtype);
    const int64_t m = ta ? A->dims[1] : A->dims[0], k = ta ? A->dims[0] : A->dims[1];
    const int64_t kb = tb ? B->dims[1] : B->dims[0], n = tb ? B->dims[0] : B->dims[1];
    if (k != kb)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "inner dimensions differ: op(A) is %lldx%lld, op(B) is %lldx%lld",
                                (long long)m, (long long)k, (long long)kb, (long long)n);
    /* C broadcasts unidirectionally to [M, N] */
    int64_t cm = 1, cn = 1;
    if (C) {
        if (C->rank > 2)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "C must have rank <= 2, got %d", C->rank);
        if (C->rank == 2) {
            cm = C->dims[0];
            cn = C->dims[1];
        } else if (C->rank == 1) {
            cn = C->dims[0];
        }
        if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "C of shape [%lld,%lld] does not broadcast to [%lld,%lld]",
                                    (long long)cm, (long long)cn, (long long)m, (long long)n);
        if (C->count == 0 && m * n != 0)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "C is empty");
    }
    if (!C) beta = 0;
    int64_t ydims[2] = {m, n};
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, A->dtype, 2, ydims, &Y))) return st;
    if (!Y || Y->count == 0) return IFD_OK;

    if (A->dtype == IFD_DTYPE_FLOAT || A->dtype == IFD_DTYPE_FLOAT16 ||
        A->dtype == IFD_DTYPE_BFLOAT16) {
        const bool f32 = A->dtype == IFD_DTYPE_FLOAT;
        float *abuf = f32 ? NULL : ifd_kernel_scratch_array(ctx, (size_t)A->count, 4, &st);
        float *bbuf = f32 ? NULL : ifd_kernel_scratch_array(ctx, (size_t)B->count, 4, &st);
        float *cbuf = f32 || !C ? NULL : ifd_kernel_scratch_array(ctx, (size_t)C->count, 4, &st);
        float *y = f32 ? Y->data : ifd_kernel_scratch_array(ctx, (size_t)Y->count, 4, &st);
        float *bias = ifd_kernel_scratch_array(ctx, (size_t)(m + n), 4, &st);
        if (st) return st;
        const float *a = as_f32(A, abuf), *b = as_f32(B, bbuf);
        const float *c = C ? as_f32(C, cbuf) : NULL;
        ifd_sgemm_epilogue ep = {NULL, NULL, ctx->activation};
        float gemm_beta = 0;
        if (C && beta != 0) {
            if (cm == m && cn == n && m > 1 && n > 1) {
                memcpy(y, c, (size_t)(m * n) * sizeof(float));
                gemm_beta = beta;
            } else if (cm == 1) { /* scalar or row vector: a per-column bias */
                for (int64_t j = 0; j < n; j++) bias[j] = beta * c[cn == 1 ? 0 : j];
                ep.bias_col = bias;
            } else { /* [M, 1]: a per-row bias */
                for (int64_t i = 0; i < m; i++) bias[n + i] = beta * c[i];
                ep.bias_row = bias + n;
            }
        }
        /* a few rows (batch-1 classifiers) stream B once with the vector path; the packed
         * panels pay off from a handful of rows up */
        const ifd_spgemm_b *sp = f32 ? sparse_for(ctx, m, k, n) : NULL;
        const ifd_sgemm_packed_b *pb = f32 && m >= GEMV_MAX_ROWS ? packed_for(ctx, k, n) : NULL;
        if (sp) {
            if (!run_sparse(ctx, sp, ta, m, a, A->dims[1], alpha, gemm_beta, y, &ep, &st))
                return st;
        } else if (pb)
            ifd_sgemm_packed_ex(ta, m, a, A->dims[1], alpha, pb, gemm_beta, y, n, &ep, ctx->pool);
        else
            ifd_sgemm_ex(ta, tb, m, n, k, alpha, a, A->dims[1], b, B->dims[1], gemm_beta, y, n,
                         &ep, ctx->pool);
        if (!f32) ifd_store_f32(Y->dtype, y, Y->data, Y->count);
        return IFD_OK;
    }

    /* double / integer: exact reference loops */
    const bool isint = is_int_type(A->dtype);
    const int64_t lda = A->dims[1], ldb = B->dims[1];
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t ci = C ? (cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j) : 0;
            if (isint) {
                uint64_t s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (uint64_t)ifd_tensor_get_i64(A, ta ? p * lda + i : i * lda + p) *
                         (uint64_t)ifd_tensor_get_i64(B, tb ? j * ldb + p : p * ldb + j);
                int64_t cv = C && beta != 0 ? ifd_tensor_get_i64(C, ci) : 0;
                if (alpha == 1 && (beta == 0 || beta == 1)) /* exact, wrapping */
                    set_i64(Y, i * n + j, (int64_t)(s + (uint64_t)cv));
                else
                    set_i64(Y, i * n + j, (int64_t)(alpha * (double)(int64_t)s + beta * (double)cv));
            } else {
                const double *a = A->data, *b = B->data;
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += a[ta ? p * lda + i : i * lda + p] * b[tb ? j * ldb + p : p * ldb + j];
                double v = alpha * s;
                if (C && beta != 0) v += beta * ((const double *)C->data)[ci];
                act_f64(ctx->activation, &v, 1);
                ((double *)Y->data)[i * n + j] = v;
            }
        }
    return IFD_OK;
}

/* ---- MatMul -------------------------------------------------------------------------------- */

static ifd_status prepare_matmul(ifd_prepare_ctx *ctx) {
    return prepare_packed(ctx, false, false);
}

typedef struct mm_batch_job {
    const float *a, *b;
    float *y;
    int64_t m, n, k;
    const int64_t *aoff, *boff; /* per batch: element offsets */
    const ifd_sgemm_epilogue *ep;
} mm_batch_job;

static void mm_batch_task(void *arg, int64_t begin, int64_t end) {
    const mm_batch_job *j = arg;
    for (int64_t i = begin; i < end; i++)
        ifd_sgemm_ex(false, false, j->m, j->n, j->k, 1.0f, j->a + j->aoff[i], j->k,
                     j->b + j->boff[i], j->n, 0.0f, j->y + i * j->m * j->n, j->n, j->ep, NULL);
}

static ifd_status run_matmul(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *A = ctx->inputs[0], *B = ctx->inputs[1];
    if (A->dtype != B->dtype)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "A and B must have the same type");
    if (!dtype_supported(A->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported element type %d", (int)A->dtype);
    if (A->rank < 1 || B->rank < 1)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "MatMul operands must have rank >= 1");
    const bool a1 = A->rank == 1, b1 = B->rank == 1;
    const int64_t m = a1 ? 1 : A->dims[A->rank - 2], k = A->dims[A->rank - 1];
    const int64_t kb = b1 ? B->dims[0] : B->dims[B->rank - 2], n = b1 ? 1 : B->dims[B->rank - 1];
    if (k != kb) {
        char sa[128], sb[128];
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "shapes %s and %s: inner dimensions differ",
                                ifd_shape_str(A->rank, A->dims, sa, sizeof sa),
                                ifd_shape_str(B->rank, B->dims, sb, sizeof sb));
    }
    const int ra = a1 ? 0 : A->rank - 2, rb = b1 ? 0 : B->rank - 2;
    int rbatch;
    int64_t bdims[IFD_MAX_RANK];
    if ((st = ifd_broadcast_shape(ra, A->dims, rb, B->dims, &rbatch, bdims)))
        return ifd_error_prefix(st, "node '%s' (MatMul)", ctx->node->name);
    int64_t ydims[IFD_MAX_RANK];
    int ry = rbatch;
    memcpy(ydims, bdims, sizeof(int64_t) * (size_t)rbatch);
    if (!a1) ydims[ry++] = m;
    if (!b1) ydims[ry++] = n;
    if (ry > IFD_MAX_RANK) return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "result rank too large");
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, A->dtype, ry, ydims, &Y))) return st;
    if (!Y || Y->count == 0) return IFD_OK;
    int64_t batch = 1;
    for (int i = 0; i < rbatch; i++) batch *= bdims[i];
    int64_t abatch = 1, bbatch = 1;
    for (int i = 0; i < ra; i++) abatch *= A->dims[i];
    for (int i = 0; i < rb; i++) bbatch *= B->dims[i];

    const bool f32 = A->dtype == IFD_DTYPE_FLOAT;
    const bool fp = f32 || A->dtype == IFD_DTYPE_FLOAT16 || A->dtype == IFD_DTYPE_BFLOAT16;
    const bool conv = fp && !f32; /* float16/bfloat16 computed in float */
    float *abuf = conv ? ifd_kernel_scratch_array(ctx, (size_t)A->count, 4, &st) : NULL;
    float *bbuf = conv ? ifd_kernel_scratch_array(ctx, (size_t)B->count, 4, &st) : NULL;
    float *ybuf = conv ? ifd_kernel_scratch_array(ctx, (size_t)Y->count, 4, &st) : NULL;
    int64_t *aoff = ifd_kernel_scratch_array(ctx, (size_t)batch, 2 * sizeof(int64_t), &st);
    if (st) return st;
    int64_t *boff = aoff + batch;
    /* per output batch index: element offsets of its A and B matrices (broadcast strides) */
    {
        int64_t idx[IFD_MAX_RANK] = {0};
        for (int64_t bi = 0; bi < batch; bi++) {
            int64_t oa = 0, ob = 0, sa = 1, sb = 1;
            for (int d = rbatch - 1; d >= 0; d--) {
                int da = d - (rbatch - ra), db = d - (rbatch - rb);
                if (da >= 0) {
                    if (A->dims[da] != 1) oa += idx[d] * sa;
                    sa *= A->dims[da];
                }
                if (db >= 0) {
                    if (B->dims[db] != 1) ob += idx[d] * sb;
                    sb *= B->dims[db];
                }
            }
            aoff[bi] = oa * m * k;
            boff[bi] = ob * k * n;
            for (int d = rbatch - 1; d >= 0; d--) {
                if (++idx[d] < bdims[d]) break;
                idx[d] = 0;
            }
        }
    }

    if (fp) {
        const float *a = as_f32(A, abuf), *b = as_f32(B, bbuf);
        float *y = f32 ? Y->data : ybuf;
        /* a third input is the optimizer's fused bias [n] (MatMul followed by Add) */
        const ifd_tensor *bias = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
        if (bias && (bias->dtype != IFD_DTYPE_FLOAT || bias->count != n))
            return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "fused bias does not match the output");
        ifd_sgemm_epilogue ep = {bias ? bias->data : NULL, NULL, ctx->activation};
        if (bbatch == 1 && abatch == batch) {
            /* one B for every batch: the batches of A stack into one tall GEMM */
            const ifd_spgemm_b *sp = f32 ? sparse_for(ctx, batch * m, k, n) : NULL;
            const ifd_sgemm_packed_b *pb = f32 ? packed_for(ctx, k, n) : NULL;
            if (sp) {
                if (!run_sparse(ctx, sp, false, batch * m, a, k, 1.0f, 0.0f, y, &ep, &st))
                    return st;
            } else if (pb)
                ifd_sgemm_packed_ex(false, batch * m, a, k, 1.0f, pb, 0.0f, y, n, &ep, ctx->pool);
            else
                ifd_sgemm_ex(false, false, batch * m, n, k, 1.0f, a, k, b, n, 0.0f, y, n, &ep,
                             ctx->pool);
        } else {
            mm_batch_job job = {a, b, y, m, n, k, aoff, boff, &ep};
            int threads = ifd_thread_pool_size(ctx->pool);
            double flops = 2.0 * (double)m * (double)n * (double)k;
            if (threads > 1 && batch >= threads && flops < 4e7)
                ifd_parallel_for(ctx->pool, batch, IFD_MAX((int64_t)1, (int64_t)(2e5 / (flops + 1))),
                                 mm_batch_task, &job);
            else
                for (int64_t i = 0; i < batch; i++)
                    ifd_sgemm_ex(false, false, m, n, k, 1.0f, a + aoff[i], k, b + boff[i], n, 0.0f,
                                 y + i * m * n, n, &ep, ctx->pool);
        }
        if (!f32) ifd_store_f32(Y->dtype, y, Y->data, Y->count);
        return IFD_OK;
    }

    const bool isint = is_int_type(A->dtype);
    for (int64_t bi = 0; bi < batch; bi++) {
        int64_t ao = aoff[bi], bo = boff[bi], yo = bi * m * n;
        if (isint) {
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    uint64_t s = 0;
                    for (int64_t p = 0; p < k; p++)
                        s += (uint64_t)ifd_tensor_get_i64(A, ao + i * k + p) *
                             (uint64_t)ifd_tensor_get_i64(B, bo + p * n + j);
                    set_i64(Y, yo + i * n + j, (int64_t)s);
                }
        } else {
            const double *a = (const double *)A->data + ao, *b = (const double *)B->data + bo;
            double *y = (double *)Y->data + yo;
            for (int64_t i = 0; i < m; i++) {
                double *yr = y + i * n;
                for (int64_t j = 0; j < n; j++) yr[j] = 0;
                for (int64_t p = 0; p < k; p++) {
                    double av = a[i * k + p];
                    const double *br = b + p * n;
                    for (int64_t j = 0; j < n; j++) yr[j] += av * br[j];
                }
                act_f64(ctx->activation, yr, n);
            }
        }
    }
    return IFD_OK;
}

/* ---- Einsum -------------------------------------------------------------------------------- */

#define EIN_LETTERS 52
#define EIN_MAX_LABELS (EIN_LETTERS + IFD_MAX_RANK)
#define EIN_MAX_INPUTS 16

typedef struct ein_spec {
    int n_in;
    int rank[EIN_MAX_INPUTS];
    int labels[EIN_MAX_INPUTS][IFD_MAX_RANK];
    int out_rank;
    int out_labels[IFD_MAX_RANK];
    int64_t size[EIN_MAX_LABELS];
    bool used[EIN_MAX_LABELS];
    /* strides[t][l]: element stride of label l in input t (repeated labels add up: a diagonal;
     * broadcast size-1 dims and absent labels give 0) */
    int64_t strides[EIN_MAX_INPUTS][EIN_MAX_LABELS];
} ein_spec;

static int ein_letter(char ch) {
    if (ch >= 'a' && ch <= 'z') return ch - 'a';
    if (ch >= 'A' && ch <= 'Z') return 26 + ch - 'A';
    return -1;
}

/* Parse one term (no spaces) into label ids; ellipsis expands to e_rank ids ending at
 * EIN_LETTERS + ell_total. Returns the number of labels, or -1 with *err set. */
static int ein_term(const char *s, size_t len, int tensor_rank, int ell_total, int *labels,
                    bool *has_ell, const char **err) {
    int letters = 0;
    *has_ell = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (*has_ell || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.') {
                *err = "malformed ellipsis";
                return -1;
            }
            *has_ell = true;
            i += 2;
        } else if (ein_letter(s[i]) < 0) {
            *err = "invalid character";
            return -1;
        } else {
            letters++;
        }
    }
    int e_rank = 0;
    if (tensor_rank >= 0) {
        e_rank = tensor_rank - letters;
        if (e_rank < 0 || (!*has_ell && e_rank != 0)) {
            *err = "term does not match the input rank";
            return -1;
        }
    } else {
        e_rank = ell_total; /* the output: all broadcast ellipsis dims */
    }
    if (e_rank > ell_total) {
        *err = "ellipsis rank mismatch";
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            for (int e = 0; e < e_rank; e++) labels[n++] = EIN_LETTERS + ell_total - e_rank + e;
            i += 2;
        } else {
            labels[n++] = ein_letter(s[i]);
        }
    }
    return n;
}

static ifd_status ein_parse(const ifd_kernel_ctx *ctx, ein_spec *sp) {
    const char *eq_raw = ifd_attr_string(ctx->node, "equation", NULL);
    if (!eq_raw) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "missing equation");
    char eq[512];
    size_t len = 0;
    for (const char *p = eq_raw; *p; p++)
        if (*p != ' ' && *p != '\t') {
            if (len + 1 >= sizeof eq)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "equation too long");
            eq[len++] = *p;
        }
    eq[len] = 0;
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : len;
    memset(sp, 0, sizeof *sp);
    sp->n_in = ctx->n_inputs;
    if (sp->n_in < 1 || sp->n_in > EIN_MAX_INPUTS)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "Einsum needs 1..%d inputs",
                                EIN_MAX_INPUTS);
    /* split the left side into terms */
    const char *term[EIN_MAX_INPUTS];
    size_t tlen[EIN_MAX_INPUTS];
    int nt = 0;
    size_t start = 0;
    for (size_t i = 0; i <= lhs_len; i++)
        if (i == lhs_len || eq[i] == ',') {
            if (nt == EIN_MAX_INPUTS)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "too many terms");
            term[nt] = eq + start;
            tlen[nt++] = i - start;
            start = i + 1;
        }
    if (nt != sp->n_in)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "equation '%s' has %d terms for %d inputs", eq_raw, nt, sp->n_in);
    /* ellipsis rank: the largest any input gives it */
    int ell_total = 0;
    for (int t = 0; t < nt; t++) {
        const ifd_tensor *x = ctx->inputs[t];
        if (!x) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input %d missing", t);
        int letters = 0;
        for (size_t i = 0; i < tlen[t]; i++) letters += ein_letter(term[t][i]) >= 0;
        if (memchr(term[t], '.', tlen[t]) && x->rank - letters > ell_total)
            ell_total = x->rank - letters;
    }
    bool any_ell = false;
    for (int t = 0; t < nt; t++) {
        const char *err = NULL;
        bool has_ell;
        int n = ein_term(term[t], tlen[t], ctx->inputs[t]->rank, ell_total, sp->labels[t],
                         &has_ell, &err);
        if (n < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "equation '%s', input %d: %s",
                                    eq_raw, t, err);
        any_ell |= has_ell;
        sp->rank[t] = n;
    }
    /* label sizes (size-1 dims broadcast) and strides */
    for (int l = 0; l < EIN_MAX_LABELS; l++) sp->size[l] = 1;
    for (int t = 0; t < nt; t++) {
        const ifd_tensor *x = ctx->inputs[t];
        for (int d = 0; d < sp->rank[t]; d++) {
            int l = sp->labels[t][d];
            int64_t dim = x->dims[d];
            if (sp->used[l] && sp->size[l] != dim && dim != 1 && sp->size[l] != 1)
                return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                        "equation '%s': dimension sizes %lld and %lld for one label",
                                        eq_raw, (long long)sp->size[l], (long long)dim);
            if (!sp->used[l] || sp->size[l] == 1) sp->size[l] = dim;
            sp->used[l] = true;
        }
    }
    for (int t = 0; t < nt; t++) {
        const ifd_tensor *x = ctx->inputs[t];
        int64_t stride = 1;
        for (int d = sp->rank[t] - 1; d >= 0; d--) {
            int l = sp->labels[t][d];
            /* a size-1 dim broadcast against a larger one keeps stride 0 */
            if (x->dims[d] != 1) sp->strides[t][l] += stride;
            stride *= x->dims[d];
        }
    }
    /* output labels */
    if (arrow) {
        const char *err = NULL;
        bool has_ell;
        const char *o = arrow + 2;
        int n = ein_term(o, strlen(o), -1, ell_total, sp->out_labels, &has_ell, &err);
        if (n < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "equation '%s', output: %s",
                                    eq_raw, err);
        if (!has_ell && ell_total > 0) {
            /* numpy: dims under an ellipsis not in the output are summed; allowed */
        }
        for (int i = 0; i < n; i++) {
            if (!sp->used[sp->out_labels[i]])
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "equation '%s': output label not in any input", eq_raw);
            for (int j = 0; j < i; j++)
                if (sp->out_labels[j] == sp->out_labels[i])
                    return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                            "equation '%s': repeated output label", eq_raw);
        }
        sp->out_rank = n;
    } else {
        /* implicit: ellipsis dims, then letters that appear once, in alphabetical order */
        int n = 0, count[EIN_LETTERS] = {0};
        if (any_ell)
            for (int e = 0; e < ell_total; e++) sp->out_labels[n++] = EIN_LETTERS + e;
        for (int t = 0; t < nt; t++)
            for (int d = 0; d < sp->rank[t]; d++)
                if (sp->labels[t][d] < EIN_LETTERS) count[sp->labels[t][d]]++;
        /* ASCII order: upper case (ids 26..51) before lower case (0..25) */
        for (int pass = 0; pass < 2; pass++)
            for (int l = pass ? 0 : 26; l < (pass ? 26 : 52); l++)
                if (count[l] == 1) {
                    if (n >= IFD_MAX_RANK)
                        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "result rank too large");
                    sp->out_labels[n++] = l;
                }
        sp->out_rank = n;
    }
    return IFD_OK;
}

/* Copy a strided view (label order `ls`, sizes from sp, strides `st`) into dense dst. */
static void ein_gather_f32(const float *src, const int *ls, int nl, const ein_spec *sp,
                           const int64_t *st, float *restrict dst) {
    int64_t idx[EIN_MAX_LABELS] = {0}, total = 1;
    for (int i = 0; i < nl; i++) total *= sp->size[ls[i]];
    if (total == 0) return;
    int64_t inner = nl ? sp->size[ls[nl - 1]] : 1, istride = nl ? st[ls[nl - 1]] : 0;
    int64_t off = 0;
    for (int64_t done = 0; done < total; done += inner) {
        const float *s = src + off;
        if (istride == 1)
            memcpy(dst, s, (size_t)inner * sizeof(float));
        else
            for (int64_t i = 0; i < inner; i++) dst[i] = s[i * istride];
        dst += inner;
        for (int d = nl - 2; d >= 0; d--) {
            off += st[ls[d]];
            if (++idx[d] < sp->size[ls[d]]) break;
            off -= st[ls[d]] * sp->size[ls[d]];
            idx[d] = 0;
        }
    }
}

typedef struct ein_batch_job {
    const float *a, *b;
    float *c;
    int64_t m, n, k;
    const ifd_sgemm_epilogue *ep;
} ein_batch_job;

static void ein_batch_task(void *arg, int64_t begin, int64_t end) {
    const ein_batch_job *j = arg;
    for (int64_t i = begin; i < end; i++)
        ifd_sgemm_ex(false, false, j->m, j->n, j->k, 1.0f, j->a + i * j->m * j->k, j->k,
                     j->b + i * j->k * j->n, j->n, 0.0f, j->c + i * j->m * j->n, j->n, j->ep,
                     NULL);
}

/* The two-input float case as a batched GEMM: [batch, m, k] x [batch, k, n]. *handled stays
 * false (and IFD_OK is returned) when the equation has a form this lowering does not cover. */
static ifd_status ein_gemm(ifd_kernel_ctx *ctx, const ein_spec *sp, ifd_tensor *Y,
                           bool *handled) {
    *handled = false;
    int kl[EIN_MAX_LABELS], nk = 0;
    bool in_a[EIN_MAX_LABELS] = {0}, in_b[EIN_MAX_LABELS] = {0}, in_o[EIN_MAX_LABELS] = {0};
    for (int d = 0; d < sp->rank[0]; d++) {
        if (in_a[sp->labels[0][d]]) return IFD_OK; /* diagonal */
        in_a[sp->labels[0][d]] = true;
    }
    for (int d = 0; d < sp->rank[1]; d++) {
        if (in_b[sp->labels[1][d]]) return IFD_OK;
        in_b[sp->labels[1][d]] = true;
    }
    for (int d = 0; d < sp->out_rank; d++) in_o[sp->out_labels[d]] = true;
    int64_t B = 1, M = 1, N = 1, K = 1;
    for (int l = 0; l < EIN_MAX_LABELS; l++) {
        if (!sp->used[l]) continue;
        if (in_o[l] && in_a[l] && in_b[l]) B *= sp->size[l];
        else if (in_o[l] && in_a[l]) M *= sp->size[l];
        else if (in_o[l] && in_b[l]) N *= sp->size[l];
        else if (!in_o[l] && in_a[l] && in_b[l]) kl[nk++] = l, K *= sp->size[l];
        else return IFD_OK; /* summed over in one operand only */
    }
    /* order: result labels as the output lists them, so the final copy is often a no-op */
    int order_b[EIN_MAX_LABELS], order_m[EIN_MAX_LABELS], order_n[EIN_MAX_LABELS];
    int ob = 0, om = 0, on = 0;
    for (int d = 0; d < sp->out_rank; d++) {
        int l = sp->out_labels[d];
        if (in_a[l] && in_b[l]) order_b[ob++] = l;
        else if (in_a[l]) order_m[om++] = l;
        else order_n[on++] = l;
    }
    int la[EIN_MAX_LABELS], lb[EIN_MAX_LABELS], lc[EIN_MAX_LABELS];
    int na = 0, nbb = 0, nc = 0;
    for (int i = 0; i < ob; i++) la[na++] = lb[nbb++] = lc[nc++] = order_b[i];
    for (int i = 0; i < om; i++) la[na++] = lc[nc++] = order_m[i];
    for (int i = 0; i < nk; i++) la[na++] = kl[i];
    for (int i = 0; i < nk; i++) lb[nbb++] = kl[i];
    for (int i = 0; i < on; i++) lb[nbb++] = lc[nc++] = order_n[i];
    bool direct = true; /* the [batch, m, n] result is already in output order */
    for (int d = 0; d < sp->out_rank; d++) direct &= lc[d] == sp->out_labels[d];
    *handled = true;
    ifd_status st = IFD_OK;
    float *a = ifd_kernel_scratch_array(ctx, (size_t)(B * M * K), 4, &st);
    float *b = ifd_kernel_scratch_array(ctx, (size_t)(B * K * N), 4, &st);
    float *c = direct ? Y->data : ifd_kernel_scratch_array(ctx, (size_t)(B * M * N), 4, &st);
    if (st) return st;
    ein_gather_f32(ctx->inputs[0]->data, la, na, sp, sp->strides[0], a);
    ein_gather_f32(ctx->inputs[1]->data, lb, nbb, sp, sp->strides[1], b);
    ifd_sgemm_epilogue ep = {NULL, NULL, ctx->activation};
    ein_batch_job job = {a, b, c, M, N, K, &ep};
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int threads = ifd_thread_pool_size(ctx->pool);
    if (threads > 1 && B >= threads && flops < 4e7)
        ifd_parallel_for(ctx->pool, B, IFD_MAX((int64_t)1, (int64_t)(2e5 / (flops + 1))),
                         ein_batch_task, &job);
    else
        for (int64_t i = 0; i < B; i++)
            ifd_sgemm_ex(false, false, M, N, K, 1.0f, a + i * M * K, K, b + i * K * N, N, 0.0f,
                         c + i * M * N, N, &ep, ctx->pool);
    if (!direct) {
        /* c is laid out in label order lc; write it in output order */
        int64_t cst[EIN_MAX_LABELS] = {0}, s = 1;
        for (int d = nc - 1; d >= 0; d--) {
            cst[lc[d]] = sp->size[lc[d]] == 1 ? 0 : s;
            s *= sp->size[lc[d]];
        }
        ein_gather_f32(c, sp->out_labels, sp->out_rank, sp, cst, Y->data);
    }
    return IFD_OK;
}

/* General case: iterate every label combination (output labels outer, summed inner). */
static ifd_status ein_general(ifd_kernel_ctx *ctx, const ein_spec *sp, ifd_tensor *Y) {
    const bool isint = is_int_type(Y->dtype);
    int labels[EIN_MAX_LABELS], nl = 0;
    bool in_o[EIN_MAX_LABELS] = {0};
    for (int d = 0; d < sp->out_rank; d++) labels[nl++] = sp->out_labels[d], in_o[sp->out_labels[d]] = true;
    int n_out_labels = nl;
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (sp->used[l] && !in_o[l]) labels[nl++] = l;
    int64_t sum_count = 1;
    for (int i = n_out_labels; i < nl; i++) sum_count *= sp->size[labels[i]];
    /* inputs as double (float types) or int64 (integers) */
    ifd_status st = IFD_OK;
    const void *in[EIN_MAX_INPUTS];
    for (int t = 0; t < sp->n_in; t++) {
        const ifd_tensor *x = ctx->inputs[t];
        void *dst = ifd_kernel_scratch_array(ctx, (size_t)x->count, 8, &st);
        if (st) return st;
        if (isint)
            for (int64_t i = 0; i < x->count; i++) ((int64_t *)dst)[i] = ifd_tensor_get_i64(x, i);
        else
            for (int64_t i = 0; i < x->count; i++) ((double *)dst)[i] = ifd_tensor_get_f64(x, i);
        in[t] = dst;
    }
    int64_t idx[EIN_MAX_LABELS] = {0}, off[EIN_MAX_INPUTS] = {0};
    for (int64_t o = 0; o < Y->count; o++) {
        double acc = 0;
        uint64_t iacc = 0;
        for (int64_t s = 0; s < sum_count; s++) {
            if (isint) {
                uint64_t prod = 1;
                for (int t = 0; t < sp->n_in; t++) prod *= (uint64_t)((const int64_t *)in[t])[off[t]];
                iacc += prod;
            } else {
                double prod = 1;
                for (int t = 0; t < sp->n_in; t++) prod *= ((const double *)in[t])[off[t]];
                acc += prod;
            }
            /* advance the odometer over all labels; summed labels are innermost */
            for (int d = nl - 1; d >= 0; d--) {
                int l = labels[d];
                for (int t = 0; t < sp->n_in; t++) off[t] += sp->strides[t][l];
                if (++idx[d] < sp->size[l]) break;
                for (int t = 0; t < sp->n_in; t++) off[t] -= sp->strides[t][l] * sp->size[l];
                idx[d] = 0;
            }
        }
        if (sum_count == 0) {
            /* an empty sum: the odometer never moved; step the output labels by hand */
            for (int d = n_out_labels - 1; d >= 0; d--) {
                int l = labels[d];
                for (int t = 0; t < sp->n_in; t++) off[t] += sp->strides[t][l];
                if (++idx[d] < sp->size[l]) break;
                for (int t = 0; t < sp->n_in; t++) off[t] -= sp->strides[t][l] * sp->size[l];
                idx[d] = 0;
            }
        }
        if (isint) {
            set_i64(Y, o, (int64_t)iacc);
        } else {
            act_f64(ctx->activation, &acc, 1);
            if (Y->dtype == IFD_DTYPE_DOUBLE)
                ((double *)Y->data)[o] = acc;
            else
                ifd_store_f64(Y->data, Y->dtype, o, acc);
        }
    }
    return IFD_OK;
}

static ifd_status run_einsum(ifd_kernel_ctx *ctx) {
    ein_spec spec;
    ifd_status st = ein_parse(ctx, &spec);
    if (st) return st;
    ifd_dtype dt = ctx->inputs[0]->dtype;
    if (!dtype_supported(dt))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported element type %d", (int)dt);
    for (int t = 1; t < spec.n_in; t++)
        if (ctx->inputs[t]->dtype != dt)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "inputs must have the same type");
    int64_t ydims[IFD_MAX_RANK];
    for (int d = 0; d < spec.out_rank; d++) ydims[d] = spec.size[spec.out_labels[d]];
    ifd_tensor *Y;
    if ((st = ifd_kernel_output(ctx, 0, dt, spec.out_rank, ydims, &Y))) return st;
    if (!Y || Y->count == 0) return IFD_OK;
    if (dt == IFD_DTYPE_FLOAT && spec.n_in == 2) {
        bool handled;
        st = ein_gemm(ctx, &spec, Y, &handled);
        if (st || handled) return st;
    }
    return ein_general(ctx, &spec, Y);
}

const ifd_op_def ifd_ops_matmul[] = {
    {"", "Gemm", 1, run_gemm, prepare_gemm, release_packed, IFD_OP_FUSES_ACTIVATION},
    {"", "MatMul", 1, run_matmul, prepare_matmul, release_packed, IFD_OP_FUSES_ACTIVATION},
    {"", "Einsum", 12, run_einsum, NULL, NULL, 0},
    {0},
};
