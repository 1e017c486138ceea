/* Operator family: spatial. Pad (constant / reflect / edge / wrap, negative pads crop) and
 * CenterCropPad, which is a constant-zero Pad with per-axis begin offsets.
 *
 * Both run on one engine: every output axis gets an index map (output coordinate -> input
 * coordinate, -1 for the constant value), then output rows along the last axis are filled
 * with one memcpy for the interior and the map for the borders. */
#include "ops/op.h"

#include <math.h>
#include <string.h>

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_job {
    int rank;
    int64_t in_dims[IFD_MAX_RANK], out_dims[IFD_MAX_RANK];
    int64_t begin[IFD_MAX_RANK];   /* pad before each axis; negative crops */
    int64_t in_strides[IFD_MAX_RANK];
    const int64_t *maps[IFD_MAX_RANK]; /* maps[d][o]: input coordinate or -1 */
    size_t esize;
    const uint8_t *x;
    uint8_t *y;
    uint8_t cval[16];
} pad_job;

/* Output coordinate -> input coordinate along one axis (-1: constant). */
static int64_t pad_map_coord(int mode, int64_t i, int64_t n) {
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : n - 1;
    case PAD_WRAP: { int64_t m = i % n; return m < 0 ? m + n : m; }
    case PAD_REFLECT: {
        if (n == 1) return 0;
        int64_t period = 2 * (n - 1), m = i % period;
        if (m < 0) m += period;
        return m >= n ? period - m : m;
    }
    default: return -1;
    }
}

static void fill_const(uint8_t *dst, int64_t n, const uint8_t *cval, size_t esize) {
    if (n <= 0) return;
    switch (esize) {
    case 1:
        memset(dst, cval[0], (size_t)n);
        break;
    case 2: {
        uint16_t v, *restrict d = (uint16_t *)(void *)dst;
        memcpy(&v, cval, 2);
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    case 4: {
        uint32_t v, *restrict d = (uint32_t *)(void *)dst;
        memcpy(&v, cval, 4);
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    case 8: {
        uint64_t v, *restrict d = (uint64_t *)(void *)dst;
        memcpy(&v, cval, 8);
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++) memcpy(dst + (size_t)i * esize, cval, esize);
    }
}

static void gather_elems(uint8_t *dst, const uint8_t *src, const int64_t *map, int64_t n,
                         const uint8_t *cval, size_t esize) {
    for (int64_t o = 0; o < n; o++) {
        int64_t i = map[o];
        if (i < 0)
            memcpy(dst + (size_t)o * esize, cval, esize);
        else
            memcpy(dst + (size_t)o * esize, src + (size_t)i * esize, esize);
    }
}

static void pad_rows(void *arg, int64_t begin, int64_t end) {
    const pad_job *j = arg;
    int r = j->rank, last = r - 1;
    int64_t lout = j->out_dims[last], lin = j->in_dims[last], b = j->begin[last];
    size_t es = j->esize;
    /* interior [o0, o1) of the last axis copies contiguously */
    int64_t o0 = IFD_MAX(b, 0), o1 = IFD_MIN(lout, b + lin);
    int64_t idx[IFD_MAX_RANK];
    int64_t rem = begin;
    for (int d = last - 1; d >= 0; d--) {
        idx[d] = rem % j->out_dims[d];
        rem /= j->out_dims[d];
    }
    for (int64_t row = begin; row < end; row++) {
        uint8_t *dst = j->y + (size_t)row * (size_t)lout * es;
        int64_t off = 0;
        bool constant = false;
        for (int d = 0; d < last; d++) {
            int64_t i = j->maps[d][idx[d]];
            if (i < 0) { constant = true; break; }
            off += i * j->in_strides[d];
        }
        if (constant) {
            fill_const(dst, lout, j->cval, es);
        } else {
            const uint8_t *src = j->x + (size_t)off * es;
            if (o1 > o0) {
                gather_elems(dst, src, j->maps[last], o0, j->cval, es);
                memcpy(dst + (size_t)o0 * es, src + (size_t)(o0 - b) * es, (size_t)(o1 - o0) * es);
                gather_elems(dst + (size_t)o1 * es, src, j->maps[last] + o1, lout - o1, j->cval, es);
            } else {
                gather_elems(dst, src, j->maps[last], lout, j->cval, es);
            }
        }
        for (int d = last - 1; d >= 0; d--) {
            if (++idx[d] < j->out_dims[d]) break;
            idx[d] = 0;
        }
    }
}

/* Pad x into a new output 0 with begin/end per axis (end may be negative: crop). */
static ifd_status pad_execute(ifd_kernel_ctx *ctx, const ifd_tensor *x, const int64_t *begin,
                              const int64_t *endp, int mode, const uint8_t *cval) {
    pad_job j;
    memset(&j, 0, sizeof j);
    j.esize = ifd_dtype_size(x->dtype);
    if (j.esize == 0 || j.esize > sizeof j.cval)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported element type %s",
                                ifd_dtype_name(x->dtype));
    int rank = x->rank;
    int64_t out_dims[IFD_MAX_RANK];
    for (int d = 0; d < rank; d++) {
        int64_t o;
        if (!ifd_add_i64(x->dims[d], begin[d], &o) || !ifd_add_i64(o, endp[d], &o) || o < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "pads (%lld, %lld) on axis %d of size %lld give a negative "
                                    "or overflowing size", (long long)begin[d],
                                    (long long)endp[d], d, (long long)x->dims[d]);
        if (x->dims[d] == 0 && o > 0 && mode != PAD_CONSTANT)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "cannot pad empty axis %d in non-constant mode", d);
        out_dims[d] = o;
    }
    ifd_tensor *y;
    ifd_status st = ifd_kernel_output(ctx, 0, x->dtype, rank, out_dims, &y);
    if (st != IFD_OK || !y || y->count == 0) return st;
    memcpy(j.cval, cval, j.esize);
    if (rank == 0) {
        memcpy(y->data, x->data, j.esize);
        return IFD_OK;
    }
    j.rank = rank;
    j.x = x->data;
    j.y = y->data;
    size_t total = 0;
    for (int d = 0; d < rank; d++) {
        j.in_dims[d] = x->dims[d];
        j.out_dims[d] = out_dims[d];
        j.begin[d] = begin[d];
        total += (size_t)out_dims[d];
    }
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        j.in_strides[d] = s;
        s *= x->dims[d];
    }
    int64_t *maps = ifd_kernel_scratch(ctx, total * sizeof(int64_t));
    if (!maps) return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch for pad maps");
    for (int d = 0; d < rank; d++) {
        for (int64_t o = 0; o < out_dims[d]; o++)
            maps[o] = pad_map_coord(mode, o - begin[d], x->dims[d]);
        j.maps[d] = maps;
        maps += out_dims[d];
    }
    int64_t lout = out_dims[rank - 1];
    int64_t rows = y->count / lout;
    int64_t min_rows = IFD_MAX((int64_t)1, (int64_t)16384 / IFD_MAX(lout, (int64_t)1));
    ifd_parallel_for(ctx->pool, rows, min_rows, pad_rows, &j);
    return IFD_OK;
}

static ifd_status run_pad(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st != IFD_OK) return st;
    const ifd_tensor *x = ctx->inputs[0];
    int rank = x->rank;
    const char *mode_s = ifd_attr_string(ctx->node, "mode", "constant");
    int mode;
    if (!strcmp(mode_s, "constant")) mode = PAD_CONSTANT;
    else if (!strcmp(mode_s, "reflect")) mode = PAD_REFLECT;
    else if (!strcmp(mode_s, "edge")) mode = PAD_EDGE;
    else if (!strcmp(mode_s, "wrap")) mode = PAD_WRAP;
    else return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode_s);

    int64_t begin[IFD_MAX_RANK] = {0}, endp[IFD_MAX_RANK] = {0};
    uint8_t cval[16] = {0};
    size_t es = ifd_dtype_size(x->dtype);
    if (es == 0 || es > sizeof cval)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unsupported element type %s",
                                ifd_dtype_name(x->dtype));

    if (ctx->opset < 11) {
        size_t n = 0;
        const int64_t *pads = ifd_attr_ints(ctx->node, ctx->opset < 2 ? "paddings" : "pads", &n);
        if (!pads) pads = ifd_attr_ints(ctx->node, "pads", &n);
        if (!pads || n != 2 * (size_t)rank)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "pads attribute must hold %d values, has %zu", 2 * rank, n);
        for (int d = 0; d < rank; d++) {
            begin[d] = pads[d];
            endp[d] = pads[rank + d];
        }
        ifd_store_f64(cval, x->dtype, 0, ifd_attr_float(ctx->node, "value", 0.0f));
    } else {
        if ((st = ifd_kernel_require_input(ctx, 1)) != IFD_OK) return st;
        const ifd_tensor *pads = ctx->inputs[1];
        int axes[IFD_MAX_RANK];
        int naxes = rank;
        for (int d = 0; d < rank; d++) axes[d] = d;
        const ifd_tensor *ax = ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
        if (ax && ax->count > 0) {
            if (ax->count > rank)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                        "%lld axes for rank %d", (long long)ax->count, rank);
            naxes = (int)ax->count;
            for (int i = 0; i < naxes; i++) {
                if ((st = ifd_normalize_axis(ctx, ifd_tensor_get_i64(ax, i), rank, &axes[i])) !=
                    IFD_OK)
                    return st;
            }
        }
        if (pads->count != 2 * (int64_t)naxes)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "pads input must hold %d values, has %lld", 2 * naxes,
                                    (long long)pads->count);
        for (int i = 0; i < naxes; i++) {
            begin[axes[i]] = ifd_tensor_get_i64(pads, i);
            endp[axes[i]] = ifd_tensor_get_i64(pads, naxes + i);
        }
        const ifd_tensor *cv = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
        if (cv && cv->count > 0) {
            if (cv->dtype == x->dtype)
                memcpy(cval, cv->data, es);
            else
                ifd_store_f64(cval, x->dtype, 0, ifd_tensor_get_f64(cv, 0));
        }
    }
    return pad_execute(ctx, x, begin, endp, mode, cval);
}

static ifd_status run_center_crop_pad(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) != IFD_OK ||
        (st = ifd_kernel_require_input(ctx, 1)) != IFD_OK)
        return st;
    const ifd_tensor *x = ctx->inputs[0], *shape = ctx->inputs[1];
    int rank = x->rank;
    int axes[IFD_MAX_RANK];
    int naxes = rank;
    size_t nattr = 0;
    const int64_t *ax = ifd_attr_ints(ctx->node, "axes", &nattr);
    if (ax) {
        if (nattr > (size_t)rank)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%zu axes for rank %d",
                                    nattr, rank);
        naxes = (int)nattr;
        for (int i = 0; i < naxes; i++)
            if ((st = ifd_normalize_axis(ctx, ax[i], rank, &axes[i])) != IFD_OK) return st;
    } else {
        for (int d = 0; d < rank; d++) axes[d] = d;
    }
    if (shape->count != naxes)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "shape input holds %lld values for %d axes",
                                (long long)shape->count, naxes);
    int64_t begin[IFD_MAX_RANK] = {0}, endp[IFD_MAX_RANK] = {0};
    for (int i = 0; i < naxes; i++) {
        int a = axes[i];
        int64_t want = ifd_tensor_get_i64(shape, i), have = x->dims[a];
        if (want < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "negative target size %lld",
                                    (long long)want);
        /* crop start (dim - want) / 2, pad before (want - dim) / 2, both rounded down */
        int64_t b = want >= have ? (want - have) / 2 : -((have - want) / 2);
        begin[a] = b;
        endp[a] = want - have - b;
    }
    uint8_t zero[16] = {0};
    return pad_execute(ctx, x, begin, endp, PAD_CONSTANT, zero);
}

const ifd_op_def ifd_ops_spatial[] = {
    {"", "Pad", 1, run_pad, NULL, NULL, 0},
    {"", "CenterCropPad", 18, run_center_crop_pad, NULL, NULL, 0},
    {0},
};
