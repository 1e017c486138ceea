/* Operator family: misc. Unique, NonMaxSuppression, Det, TfIdfVectorizer (integer inputs).
 * Semantics follow the ONNX reference implementations (onnx/reference/ops). */
#include "ops/op.h"

#include <math.h>
#include <string.h>

/* ---- stable merge sort of int64 keys with a comparator ----------------------------------- */

typedef int (*cmp_fn)(const void *ctx, int64_t a, int64_t b);

/* Sorts v[0..n) using tmp[0..n) as scratch; equal elements keep their order. */
static void merge_sort(int64_t *v, int64_t *tmp, int64_t n, cmp_fn cmp, const void *c) {
    if (n < 2) return;
    if (n <= 16) { /* insertion sort for short runs */
        for (int64_t i = 1; i < n; i++) {
            int64_t x = v[i], k = i;
            while (k > 0 && cmp(c, v[k - 1], x) > 0) {
                v[k] = v[k - 1];
                k--;
            }
            v[k] = x;
        }
        return;
    }
    int64_t h = n / 2;
    merge_sort(v, tmp, h, cmp, c);
    merge_sort(v + h, tmp + h, n - h, cmp, c);
    if (cmp(c, v[h - 1], v[h]) <= 0) return;
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp(c, v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, (size_t)n * sizeof *v);
}

/* ---- Unique -------------------------------------------------------------------------------- */

typedef struct uq_ctx {
    const ifd_tensor *x;
    int64_t outer, len, inner; /* x viewed as [outer, len, inner]; items along len */
} uq_ctx;

static int elem_cmp(const ifd_tensor *t, int64_t i, int64_t j) {
    const void *p = t->data;
    switch (t->dtype) {
#define UQ_CMP(T) { T a = ((const T *)p)[i], b = ((const T *)p)[j]; return (a > b) - (a < b); }
    case IFD_DTYPE_FLOAT: UQ_CMP(float)
    case IFD_DTYPE_DOUBLE: UQ_CMP(double)
    case IFD_DTYPE_INT8: case IFD_DTYPE_INT4: case IFD_DTYPE_INT2: UQ_CMP(int8_t)
    case IFD_DTYPE_UINT8: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2: case IFD_DTYPE_BOOL:
        UQ_CMP(uint8_t)
    case IFD_DTYPE_INT16: UQ_CMP(int16_t)
    case IFD_DTYPE_UINT16: UQ_CMP(uint16_t)
    case IFD_DTYPE_INT32: UQ_CMP(int32_t)
    case IFD_DTYPE_UINT32: UQ_CMP(uint32_t)
    case IFD_DTYPE_INT64: UQ_CMP(int64_t)
    case IFD_DTYPE_UINT64: UQ_CMP(uint64_t)
#undef UQ_CMP
    default: {
        double a = ifd_tensor_get_f64(t, i), b = ifd_tensor_get_f64(t, j);
        return (a > b) - (a < b);
    }
    }
}

static int uq_cmp(const void *vc, int64_t a, int64_t b) {
    const uq_ctx *c = vc;
    if (a == b) return 0;
    for (int64_t o = 0; o < c->outer; o++) {
        int64_t base = o * c->len * c->inner;
        for (int64_t i = 0; i < c->inner; i++) {
            int r = elem_cmp(c->x, base + a * c->inner + i, base + b * c->inner + i);
            if (r) return r;
        }
    }
    return 0;
}

static ifd_status run_unique(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st != IFD_OK) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es = ifd_dtype_size(x->dtype);
    if (es == 0)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported element type %s",
                                ifd_dtype_name(x->dtype));
    bool sorted = ifd_attr_int(ctx->node, "sorted", 1) != 0;
    bool has_axis = ifd_attr_has(ctx->node, "axis");
    uq_ctx c = {x, 1, x->count, 1};
    int axis = 0;
    if (has_axis) {
        if ((st = ifd_normalize_axis(ctx, ifd_attr_int(ctx->node, "axis", 0), x->rank, &axis)) !=
            IFD_OK)
            return st;
        if (x->rank == 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "axis given for a scalar");
        c.len = x->dims[axis];
        for (int d = 0; d < axis; d++) c.outer *= x->dims[d];
        for (int d = axis + 1; d < x->rank; d++) c.inner *= x->dims[d];
    }
    int64_t n = c.len;
    /* six int64 arrays of n: perm, tmp, group, first, cnt, remap */
    size_t nb = (size_t)(n > 0 ? n : 1), all;
    if (!ifd_mul_size(nb, 6 * sizeof(int64_t), &all))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "Unique input too large");
    int64_t *perm = ifd_kernel_scratch(ctx, all);
    if (!perm) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch for Unique");
    int64_t *tmp = perm + nb, *group = tmp + nb, *first = group + nb, *cnt = first + nb;
    int64_t *remap = cnt + nb;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    if (c.outer * c.inner > 0) merge_sort(perm, tmp, n, uq_cmp, &c);
    /* groups in sorted order; the first of each group is its first occurrence */
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || (c.outer * c.inner > 0 && uq_cmp(&c, perm[i - 1], perm[i]) != 0)) {
            first[u] = perm[i];
            cnt[u] = 0;
            u++;
        }
        group[perm[i]] = u - 1;
        cnt[u - 1]++;
    }
    /* output order: sorted groups, or by first occurrence */
    for (int64_t g = 0; g < u; g++) remap[g] = g;
    if (!sorted) {
        int64_t next = 0;
        for (int64_t g = 0; g < u; g++) remap[g] = -1;
        for (int64_t i = 0; i < n; i++)
            if (remap[group[i]] < 0) remap[group[i]] = next++;
    }
    /* tmp: output slot -> group */
    for (int64_t g = 0; g < u; g++) tmp[remap[g]] = g;

    int64_t ydims[IFD_MAX_RANK];
    int yrank;
    if (has_axis) {
        yrank = x->rank;
        for (int d = 0; d < x->rank; d++) ydims[d] = x->dims[d];
        ydims[axis] = u;
    } else {
        yrank = 1;
        ydims[0] = u;
    }
    ifd_tensor *y, *t_idx, *t_inv, *t_cnt;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, yrank, ydims, &y)) != IFD_OK) return st;
    if ((st = ifd_kernel_output(ctx, 1, IFD_DTYPE_INT64, 1, &u, &t_idx)) != IFD_OK) return st;
    if ((st = ifd_kernel_output(ctx, 2, IFD_DTYPE_INT64, 1, &n, &t_inv)) != IFD_OK) return st;
    if ((st = ifd_kernel_output(ctx, 3, IFD_DTYPE_INT64, 1, &u, &t_cnt)) != IFD_OK) return st;
    if (y && y->count > 0) {
        size_t row = (size_t)c.inner * es;
        for (int64_t o = 0; o < c.outer; o++)
            for (int64_t s = 0; s < u; s++)
                memcpy((uint8_t *)y->data + (size_t)(o * u + s) * row,
                       (const uint8_t *)x->data + (size_t)(o * n + first[tmp[s]]) * row, row);
    }
    if (t_idx)
        for (int64_t s = 0; s < u; s++) ((int64_t *)t_idx->data)[s] = first[tmp[s]];
    if (t_inv)
        for (int64_t i = 0; i < n; i++) ((int64_t *)t_inv->data)[i] = remap[group[i]];
    if (t_cnt)
        for (int64_t s = 0; s < u; s++) ((int64_t *)t_cnt->data)[s] = cnt[tmp[s]];
    return IFD_OK;
}

/* ---- NonMaxSuppression ------------------------------------------------------------------- */

typedef struct nms_ctx {
    const float *scores; /* one class row */
} nms_ctx;

/* score descending, then lower box index first */
static int nms_cmp(const void *vc, int64_t a, int64_t b) {
    const nms_ctx *c = vc;
    float sa = c->scores[a], sb = c->scores[b];
    if (sa > sb) return -1;
    if (sa < sb) return 1;
    return (a > b) - (a < b);
}

static void nms_corners(const float *b, int center, float *x0, float *y0, float *x1, float *y1) {
    if (center) {
        float hw = b[2] / 2, hh = b[3] / 2;
        *x0 = b[0] - hw;
        *x1 = b[0] + hw;
        *y0 = b[1] - hh;
        *y1 = b[1] + hh;
    } else {
        *y0 = IFD_MIN(b[0], b[2]);
        *y1 = IFD_MAX(b[0], b[2]);
        *x0 = IFD_MIN(b[1], b[3]);
        *x1 = IFD_MAX(b[1], b[3]);
    }
}

static bool nms_suppress(const float *b1, const float *b2, int center, float iou_th) {
    float ax0, ay0, ax1, ay1, bx0, by0, bx1, by1;
    nms_corners(b1, center, &ax0, &ay0, &ax1, &ay1);
    nms_corners(b2, center, &bx0, &by0, &bx1, &by1);
    float ix0 = IFD_MAX(ax0, bx0), ix1 = IFD_MIN(ax1, bx1);
    if (ix1 <= ix0) return false;
    float iy0 = IFD_MAX(ay0, by0), iy1 = IFD_MIN(ay1, by1);
    if (iy1 <= iy0) return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    if (inter <= 0) return false;
    float a1 = (ax1 - ax0) * (ay1 - ay0), a2 = (bx1 - bx0) * (by1 - by0);
    float uni = a1 + a2 - inter;
    if (a1 <= 0 || a2 <= 0 || uni <= 0) return false;
    return inter / uni > iou_th;
}

static ifd_status run_nms(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) != IFD_OK ||
        (st = ifd_kernel_require_input(ctx, 1)) != IFD_OK)
        return st;
    const ifd_tensor *boxes = ctx->inputs[0], *scores = ctx->inputs[1];
    const ifd_tensor *t_max = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    const ifd_tensor *t_iou = ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
    const ifd_tensor *t_score = ctx->n_inputs > 4 ? ctx->inputs[4] : NULL;
    if (boxes->rank != 3 || boxes->dims[2] != 4 || scores->rank != 3 ||
        scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                "boxes must be [B, N, 4] and scores [B, C, N]");
    if (boxes->dtype != IFD_DTYPE_FLOAT || scores->dtype != IFD_DTYPE_FLOAT)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "boxes and scores must be float");
    int center = (int)ifd_attr_int(ctx->node, "center_point_box", 0);
    int64_t max_out = t_max && t_max->count > 0 ? ifd_tensor_get_i64(t_max, 0) : 0;
    if (max_out < 0) max_out = 0;
    float iou_th = t_iou && t_iou->count > 0 ? (float)ifd_tensor_get_f64(t_iou, 0) : 0.0f;
    bool use_score = t_score && t_score->count > 0;
    float score_th = use_score ? (float)ifd_tensor_get_f64(t_score, 0) : 0.0f;
    int64_t nb = boxes->dims[0], nbox = boxes->dims[1], ncls = scores->dims[1];
    int64_t per = IFD_MIN(max_out, nbox);
    size_t cap, bytes;
    if (!ifd_mul_size((size_t)(nb * ncls), (size_t)per, &cap) ||
        !ifd_mul_size(cap, 3 * sizeof(int64_t), &bytes))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "too many boxes");
    /* candidates / merge buffer / chosen per class, then the selections */
    size_t nbb = (size_t)(nbox > 0 ? nbox : 1), all;
    if (!ifd_mul_size(nbb, 3 * sizeof(int64_t), &all) || !ifd_add_size(all, bytes, &all))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "too many boxes");
    int64_t *cand = ifd_kernel_scratch(ctx, all);
    if (!cand) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch for NonMaxSuppression");
    int64_t *tmp = cand + nbb, *chosen = tmp + nbb, *sel = chosen + nbb;
    int64_t nsel = 0;
    for (int64_t b = 0; b < nb && per > 0; b++) {
        const float *bx = (const float *)boxes->data + b * nbox * 4;
        for (int64_t cl = 0; cl < ncls; cl++) {
            nms_ctx c = {(const float *)scores->data + (b * ncls + cl) * nbox};
            int64_t nc = 0;
            for (int64_t i = 0; i < nbox; i++)
                if (!use_score || c.scores[i] > score_th) cand[nc++] = i;
            merge_sort(cand, tmp, nc, nms_cmp, &c);
            int64_t nch = 0;
            for (int64_t i = 0; i < nc && nch < per; i++) {
                bool keep = true;
                for (int64_t s = 0; s < nch && keep; s++)
                    if (nms_suppress(bx + cand[i] * 4, bx + chosen[s] * 4, center, iou_th))
                        keep = false;
                if (!keep) continue;
                chosen[nch++] = cand[i];
                sel[nsel * 3] = b;
                sel[nsel * 3 + 1] = cl;
                sel[nsel * 3 + 2] = cand[i];
                nsel++;
            }
        }
    }
    int64_t dims[2] = {nsel, 3};
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT64, 2, dims, &y)) != IFD_OK || !y) return st;
    if (nsel) memcpy(y->data, sel, (size_t)nsel * 3 * sizeof(int64_t));
    return IFD_OK;
}

/* ---- Det ------------------------------------------------------------------------------------ */

static ifd_status run_det(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st != IFD_OK) return st;
    const ifd_tensor *x = ctx->inputs[0];
    if (!ifd_dtype_is_std_float(x->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "Det needs a float type, got %s",
                                ifd_dtype_name(x->dtype));
    if (x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2])
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input must be [..., M, M]");
    int64_t m = x->dims[x->rank - 1];
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, x->rank - 2, x->dims, &y)) != IFD_OK || !y ||
        y->count == 0)
        return st;
    size_t mm;
    if (!ifd_mul_size((size_t)m, (size_t)m, &mm) || mm > ((size_t)1 << 40))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "matrix too large");
    double *a = ifd_kernel_scratch(ctx, (mm ? mm : 1) * sizeof(double));
    if (!a) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch for Det");
    for (int64_t b = 0; b < y->count; b++) {
        for (size_t i = 0; i < mm; i++) a[i] = ifd_tensor_get_f64(x, b * (int64_t)mm + (int64_t)i);
        /* LU with partial pivoting */
        double det = 1.0;
        for (int64_t k = 0; k < m && det != 0; k++) {
            int64_t p = k;
            double best = fabs(a[k * m + k]);
            for (int64_t r = k + 1; r < m; r++)
                if (fabs(a[r * m + k]) > best) { best = fabs(a[r * m + k]); p = r; }
            if (best == 0) { det = 0; break; }
            if (p != k) {
                for (int64_t cc = 0; cc < m; cc++) {
                    double t = a[k * m + cc];
                    a[k * m + cc] = a[p * m + cc];
                    a[p * m + cc] = t;
                }
                det = -det;
            }
            double piv = a[k * m + k];
            det *= piv;
            for (int64_t r = k + 1; r < m; r++) {
                double f = a[r * m + k] / piv;
                if (f == 0) continue;
                for (int64_t cc = k + 1; cc < m; cc++) a[r * m + cc] -= f * a[k * m + cc];
            }
        }
        ifd_store_f64(y->data, y->dtype, b, det);
    }
    return IFD_OK;
}

/* ---- TfIdfVectorizer ------------------------------------------------------------------------ */

enum { TF_TF, TF_IDF, TF_TFIDF };

typedef struct tfidf_state {
    int64_t min_n, max_n, max_skip;
    int mode;
    int64_t out_size;
    int64_t count[8];      /* grams of each size (index n, n <= 7) */
    int64_t *grams[8];     /* [count, n] tokens, sorted */
    int64_t *out_idx[8];   /* output index of each gram */
    float *weights;
    size_t n_weights;
} tfidf_state;

static void tfidf_release(void *p) {
    tfidf_state *s = p;
    if (!s) return;
    for (int n = 0; n < 8; n++) {
        ifd_free(s->grams[n]);
        ifd_free(s->out_idx[n]);
    }
    ifd_free(s->weights);
    ifd_free(s);
}

typedef struct tf_sort_ctx {
    const int64_t *tok; /* gram g starts at tok[g * n] */
    int n;
} tf_sort_ctx;

static int tf_gram_cmp(const void *vc, int64_t a, int64_t b) {
    const tf_sort_ctx *c = vc;
    for (int i = 0; i < c->n; i++) {
        int64_t x = c->tok[a * c->n + i], y = c->tok[b * c->n + i];
        if (x != y) return x < y ? -1 : 1;
    }
    return (a > b) - (a < b);
}

static ifd_status tfidf_prepare(ifd_prepare_ctx *pc) {
    const ifd_node *node = pc->node;
    ifd_status st = IFD_OK;
    int64_t *perm = NULL, *tmp = NULL, *tok = NULL, *ord = NULL;
    tfidf_state *s = ifd_calloc(1, sizeof *s);
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "TfIdfVectorizer state");
    s->min_n = ifd_attr_int(node, "min_gram_length", 1);
    s->max_n = ifd_attr_int(node, "max_gram_length", 1);
    s->max_skip = ifd_attr_int(node, "max_skip_count", 0);
    const char *mode = ifd_attr_string(node, "mode", "TF");
    if (!strcmp(mode, "TF")) s->mode = TF_TF;
    else if (!strcmp(mode, "IDF")) s->mode = TF_IDF;
    else if (!strcmp(mode, "TFIDF")) s->mode = TF_TFIDF;
    else { st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "TfIdfVectorizer: unknown mode '%s'", mode); goto out; }
    if (s->min_n < 1 || s->max_n < s->min_n || s->max_n > 7 || s->max_skip < 0) {
        st = ifd_error(IFD_ERR_UNSUPPORTED, "TfIdfVectorizer: gram lengths [%lld, %lld] or skip "
                       "%lld unsupported", (long long)s->min_n, (long long)s->max_n,
                       (long long)s->max_skip);
        goto out;
    }
    if (ifd_attr_has(node, "pool_strings")) {
        st = ifd_error(IFD_ERR_UNSUPPORTED, "TfIdfVectorizer: string pools are not supported");
        goto out;
    }
    size_t ncounts = 0, nidx = 0, npool = 0, nw = 0;
    const int64_t *counts = ifd_attr_ints(node, "ngram_counts", &ncounts);
    const int64_t *indexes = ifd_attr_ints(node, "ngram_indexes", &nidx);
    const int64_t *pool = ifd_attr_ints(node, "pool_int64s", &npool);
    const float *w = ifd_attr_floats(node, "weights", &nw);
    if (!indexes || nidx == 0) {
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "TfIdfVectorizer: ngram_indexes missing");
        goto out;
    }
    s->out_size = 0;
    for (size_t i = 0; i < nidx; i++) {
        if (indexes[i] < 0) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "TfIdfVectorizer: negative ngram index");
            goto out;
        }
        if (indexes[i] + 1 > s->out_size) s->out_size = indexes[i] + 1;
    }
    if (w && nw) {
        s->weights = ifd_malloc(nw * sizeof(float));
        if (!s->weights) { st = ifd_error(IFD_ERR_NO_MEMORY, "TfIdfVectorizer weights"); goto out; }
        memcpy(s->weights, w, nw * sizeof(float));
        s->n_weights = nw;
    }
    int64_t ordinal = 0; /* gram number across the whole pool */
    for (size_t gi = 0; gi < ncounts; gi++) {
        int n = (int)gi + 1;
        int64_t b = counts[gi], e = gi + 1 < ncounts ? counts[gi + 1] : (int64_t)npool;
        if (b < 0 || e > (int64_t)npool || e < b) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "TfIdfVectorizer: bad ngram_counts");
            goto out;
        }
        int64_t ng = (e - b) / n;
        if (n < s->min_n || n > s->max_n || ng == 0) {
            ordinal += ng;
            continue;
        }
        if (ordinal + ng > (int64_t)nidx) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "TfIdfVectorizer: ngram_indexes too short");
            goto out;
        }
        perm = ifd_malloc((size_t)ng * sizeof(int64_t));
        tmp = ifd_malloc((size_t)ng * sizeof(int64_t));
        tok = ifd_malloc((size_t)ng * (size_t)n * sizeof(int64_t));
        ord = ifd_malloc((size_t)ng * sizeof(int64_t));
        if (!perm || !tmp || !tok || !ord) {
            st = ifd_error(IFD_ERR_NO_MEMORY, "TfIdfVectorizer pool");
            goto out;
        }
        for (int64_t g = 0; g < ng; g++) perm[g] = g;
        tf_sort_ctx sc = {pool + b, n};
        merge_sort(perm, tmp, ng, tf_gram_cmp, &sc);
        /* duplicates: the later gram wins, as in the reference's trie */
        int64_t u = 0;
        for (int64_t i = 0; i < ng; i++) {
            int64_t g = perm[i];
            bool dup = false;
            if (u > 0) {
                dup = !memcmp(tok + (u - 1) * n, pool + b + g * n, (size_t)n * sizeof(int64_t));
            }
            if (!dup) {
                memcpy(tok + u * n, pool + b + g * n, (size_t)n * sizeof(int64_t));
                u++;
            }
            ord[u - 1] = indexes[ordinal + g];
        }
        s->grams[n] = tok;
        s->out_idx[n] = ord;
        s->count[n] = u;
        tok = ord = NULL;
        ifd_free(perm);
        ifd_free(tmp);
        perm = tmp = NULL;
        ordinal += ng;
    }
    pc->state = s;
    s = NULL;
out:
    ifd_free(perm);
    ifd_free(tmp);
    ifd_free(tok);
    ifd_free(ord);
    tfidf_release(s);
    return st;
}

/* Output index of gram g[0..n) or -1. */
static int64_t tfidf_find(const tfidf_state *s, int n, const int64_t *g) {
    int64_t lo = 0, hi = s->count[n];
    const int64_t *t = s->grams[n];
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        int r = 0;
        for (int i = 0; i < n && !r; i++)
            r = t[mid * n + i] < g[i] ? -1 : t[mid * n + i] > g[i] ? 1 : 0;
        if (r == 0) return s->out_idx[n][mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static ifd_status run_tfidf(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st != IFD_OK) return st;
    const tfidf_state *s = ctx->state;
    if (!s) return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "not prepared");
    const ifd_tensor *x = ctx->inputs[0];
    if (x->dtype != IFD_DTYPE_INT32 && x->dtype != IFD_DTYPE_INT64)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "input must be int32 or int64, got %s",
                                ifd_dtype_name(x->dtype));
    int64_t rows, cols, dims[2];
    int yrank;
    if (x->rank <= 1) {
        rows = 1;
        cols = x->rank == 0 ? 1 : x->dims[0];
        yrank = 1;
        dims[0] = s->out_size;
    } else if (x->rank == 2) {
        rows = x->dims[0];
        cols = x->dims[1];
        yrank = 2;
        dims[0] = rows;
        dims[1] = s->out_size;
    } else {
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input must be [C] or [B, C]");
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_FLOAT, yrank, dims, &y)) != IFD_OK || !y ||
        y->count == 0)
        return st;
    float *out = y->data;
    memset(out, 0, y->nbytes);
    for (int64_t r = 0; r < rows; r++) {
        float *f = out + r * s->out_size;
        int64_t start_n = s->min_n;
        for (int64_t skip = 1; skip <= s->max_skip + 1; skip++) {
            for (int64_t st0 = 0; st0 < cols; st0++) {
                if (st0 + skip * (start_n - 1) >= cols) break;
                int64_t g[8];
                int64_t item = st0;
                for (int n = 1; n <= s->max_n && item < cols; n++, item += skip) {
                    g[n - 1] = ifd_tensor_get_i64(x, r * cols + item);
                    if (n < start_n || s->count[n] == 0) continue;
                    int64_t oi = tfidf_find(s, n, g);
                    if (oi >= 0) f[oi] += 1.0f;
                }
            }
            /* unigrams do not depend on the skip distance: count them once */
            if (start_n == 1) {
                start_n = 2;
                if (start_n > s->max_n) break;
            }
        }
        if (s->mode != TF_TF) {
            for (int64_t i = 0; i < s->out_size; i++) {
                float wv = (size_t)i < s->n_weights ? s->weights[i] : 1.0f;
                if (s->mode == TF_IDF) f[i] = f[i] > 0 ? (s->n_weights ? wv : 1.0f) : 0.0f;
                else f[i] = s->n_weights ? wv * f[i] : f[i];
            }
        }
    }
    return IFD_OK;
}

const ifd_op_def ifd_ops_misc[] = {
    {"", "Unique", 11, run_unique, NULL, NULL, 0},
    {"", "NonMaxSuppression", 10, run_nms, NULL, NULL, 0},
    {"", "Det", 11, run_det, NULL, NULL, 0},
    {"", "TfIdfVectorizer", 9, run_tfidf, tfidf_prepare, tfidf_release, 0},
    {0},
};
