/* Operator family: shape. Operators that make, inspect or reinterpret shapes: Identity,
 * Constant, ConstantOfShape, Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Range,
 * EyeLike, Dropout (inference), Expand.
 *
 * Identity/Reshape/Flatten/Squeeze/Unsqueeze/Dropout copy their input for now (the runtime may
 * later alias them instead). All are dtype-agnostic: they move ifd_dtype_size() bytes. The ones
 * flagged IFD_OP_STRINGS also move string elements (deep copies, see op.h). */
#include "ops/op.h"

#include <math.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

/* Output 0 = input 0's bytes with a new shape. */
static ifd_status copy_as(ifd_kernel_ctx *ctx, const ifd_tensor *x, int rank, const int64_t *dims) {
    ifd_tensor *y;
    ifd_status st = ifd_kernel_output(ctx, 0, x->dtype, rank, dims, &y);
    if (st || !y) return st;
    if (x->dtype == IFD_DTYPE_STRING) {
        if (y->count != x->count)
            return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "output size differs from input size");
        st = ifd_tensor_copy_strings(y, 0, x, 0, x->count);
        if (st) return ifd_error_prefix(st, "node '%s' (%s)", ctx->node->name, ctx->node->op_type);
        return IFD_OK;
    }
    if (y->nbytes != x->nbytes)
        return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "output size differs from input size");
    ifd_parallel_memcpy(ctx->pool, y->data, x->data, x->nbytes);
    return IFD_OK;
}

/* Fills n elements of es bytes with the pattern at v. */
static void fill_pattern(void *dst, const void *v, int64_t n, size_t es) {
    char *d = dst;
    bool zero = true;
    for (size_t i = 0; i < es; i++) zero &= ((const unsigned char *)v)[i] == 0;
    if (zero || es == 1) {
        memset(d, *(const unsigned char *)v, (size_t)n * es);
        return;
    }
    if (n <= 0) return;
    memcpy(d, v, es);
    /* Doubling copies: log2(n) memcpy calls. */
    size_t have = es, total = (size_t)n * es;
    while (have < total) {
        size_t c = IFD_MIN(have, total - have);
        memcpy(d + have, d, c);
        have += c;
    }
}

/* Writes the value 1 of dtype into p; false for types without a representation here. */
static bool write_one(ifd_dtype dtype, void *p) {
    switch (dtype) {
    case IFD_DTYPE_FLOAT: { float v = 1.0f; memcpy(p, &v, 4); return true; }
    case IFD_DTYPE_DOUBLE: { double v = 1.0; memcpy(p, &v, 8); return true; }
    case IFD_DTYPE_FLOAT16: { uint16_t v = 0x3c00; memcpy(p, &v, 2); return true; }
    case IFD_DTYPE_BFLOAT16: { uint16_t v = 0x3f80; memcpy(p, &v, 2); return true; }
    case IFD_DTYPE_INT8: case IFD_DTYPE_UINT8: case IFD_DTYPE_BOOL: case IFD_DTYPE_INT4:
    case IFD_DTYPE_UINT4: case IFD_DTYPE_INT2: case IFD_DTYPE_UINT2:
        *(uint8_t *)p = 1;
        return true;
    case IFD_DTYPE_INT16: case IFD_DTYPE_UINT16: { uint16_t v = 1; memcpy(p, &v, 2); return true; }
    case IFD_DTYPE_INT32: case IFD_DTYPE_UINT32: { uint32_t v = 1; memcpy(p, &v, 4); return true; }
    case IFD_DTYPE_INT64: case IFD_DTYPE_UINT64: { uint64_t v = 1; memcpy(p, &v, 8); return true; }
    default: return false;
    }
}

/* Reads a 1-D int64 tensor of dims (a shape or axes) into out. */
static ifd_status read_i64_list(const ifd_kernel_ctx *ctx, const ifd_tensor *t, const char *what,
                                int64_t *out, int max, int *n) {
    if (t->dtype != IFD_DTYPE_INT64 && t->dtype != IFD_DTYPE_INT32)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%s must be int64, not %s", what,
                                ifd_dtype_name(t->dtype));
    if (t->rank > 1 || t->count > max)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "%s must be a 1-D tensor of at most %d values", what, max);
    for (int64_t i = 0; i < t->count; i++) out[i] = ifd_tensor_get_i64(t, i);
    *n = (int)t->count;
    return IFD_OK;
}

/* ---- Identity / Constant / ConstantOfShape -------------------------------------------------- */

static ifd_status run_identity(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    return copy_as(ctx, x, x->rank, x->dims);
}

static ifd_status run_constant(ifd_kernel_ctx *ctx) {
    const ifd_node *n = ctx->node;
    const ifd_attr *a = NULL;
    static const char *const names[] = {"value", "sparse_value", "value_float", "value_floats",
                                        "value_int", "value_ints", "value_string",
                                        "value_strings"};
    for (size_t i = 0; i < IFD_ARRAY_LEN(names) && !a; i++) a = ifd_attr_find(n, names[i]);
    if (!a) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "no value attribute");
    ifd_tensor *y;
    ifd_status st;
    const char *name = a->name;
    if (!strcmp(name, "value") || !strcmp(name, "sparse_value")) {
        const ifd_tensor *t = a->t;
        if (!t)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "attribute '%s' has no tensor",
                                    name);
        size_t es;
        if ((st = ifd_kernel_move_size(ctx, t->dtype, &es))) return st;
        if ((st = ifd_kernel_output(ctx, 0, t->dtype, t->rank, t->dims, &y)) || !y) return st;
        if (t->dtype == IFD_DTYPE_STRING) {
            if ((st = ifd_tensor_copy_strings(y, 0, t, 0, t->count)))
                return ifd_error_prefix(st, "node '%s' (Constant)", ctx->node->name);
        } else if (t->nbytes) {
            memcpy(y->data, t->data, t->nbytes);
        }
    } else if (!strcmp(name, "value_float")) {
        if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_FLOAT, 0, NULL, &y)) || !y) return st;
        memcpy(y->data, &a->f, sizeof(float));
    } else if (!strcmp(name, "value_int")) {
        if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT64, 0, NULL, &y)) || !y) return st;
        memcpy(y->data, &a->i, sizeof(int64_t));
    } else if (!strcmp(name, "value_floats")) {
        int64_t d = (int64_t)a->n;
        if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_FLOAT, 1, &d, &y)) || !y) return st;
        if (a->n) memcpy(y->data, a->floats, a->n * sizeof(float));
    } else if (!strcmp(name, "value_ints")) {
        int64_t d = (int64_t)a->n;
        if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT64, 1, &d, &y)) || !y) return st;
        if (a->n) memcpy(y->data, a->ints, a->n * sizeof(int64_t));
    } else if (!strcmp(name, "value_string")) {
        if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, 0, NULL, &y)) || !y) return st;
        if ((st = ifd_tensor_set_string(y, 0, a->s, a->s ? a->s_len : 0)))
            return ifd_error_prefix(st, "node '%s' (Constant)", ctx->node->name);
    } else {
        /* value_strings: the loader keeps list entries NUL-terminated (no lengths) */
        int64_t d = (int64_t)a->n;
        if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, 1, &d, &y)) || !y) return st;
        for (size_t i = 0; i < a->n; i++)
            if ((st = ifd_tensor_set_string(y, (int64_t)i, a->strings[i], strlen(a->strings[i]))))
                return ifd_error_prefix(st, "node '%s' (Constant)", ctx->node->name);
    }
    return IFD_OK;
}

static ifd_status run_constant_of_shape(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    int64_t dims[IFD_MAX_RANK];
    int r;
    if ((st = read_i64_list(ctx, ctx->inputs[0], "shape", dims, IFD_MAX_RANK, &r))) return st;
    for (int i = 0; i < r; i++)
        if (dims[i] < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "shape[%d] is negative (%lld)",
                                    i, (long long)dims[i]);
    const ifd_tensor *v = ifd_attr_tensor(ctx->node, "value");
    ifd_dtype dt = IFD_DTYPE_FLOAT;
    unsigned char zero[16] = {0};
    const void *pat = zero;
    if (v) {
        if (v->count != 1)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "attribute 'value' must hold one element, not %lld",
                                    (long long)v->count);
        dt = v->dtype;
        pat = v->data;
    }
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, dt, &es))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, dt, r, dims, &y)) || !y) return st;
    if (y->count) fill_pattern(y->data, pat, y->count, es);
    return IFD_OK;
}

/* ---- Shape / Size --------------------------------------------------------------------------- */

static ifd_status run_shape(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    int64_t r = x->rank;
    int64_t start = ifd_attr_int(ctx->node, "start", 0), end = ifd_attr_int(ctx->node, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = IFD_MAX((int64_t)0, IFD_MIN(start, r));
    end = IFD_MAX((int64_t)0, IFD_MIN(end, r));
    int64_t n = end > start ? end - start : 0;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT64, 1, &n, &y)) || !y) return st;
    if (n) memcpy(y->data, x->dims + start, (size_t)n * sizeof(int64_t));
    return IFD_OK;
}

static ifd_status run_size(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_INT64, 0, NULL, &y)) || !y) return st;
    int64_t n = ctx->inputs[0]->count;
    memcpy(y->data, &n, sizeof n);
    return IFD_OK;
}

/* ---- Reshape / Flatten / Squeeze / Unsqueeze ------------------------------------------------ */

static ifd_status run_reshape(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int64_t dims[IFD_MAX_RANK];
    int r;
    if (ctx->opset < 5) {
        size_t n = 0;
        const int64_t *s = ifd_attr_ints(ctx->node, "shape", &n);
        if (!s) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "attribute 'shape' missing");
        if (n > IFD_MAX_RANK)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "shape has rank %zu", n);
        memcpy(dims, s, n * sizeof(int64_t));
        r = (int)n;
    } else {
        if ((st = ifd_kernel_require_input(ctx, 1))) return st;
        if ((st = read_i64_list(ctx, ctx->inputs[1], "shape", dims, IFD_MAX_RANK, &r))) return st;
    }
    bool allowzero = ctx->opset >= 14 && ifd_attr_int(ctx->node, "allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < r; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                        "shape[%d] is 0 (copy) but the input has rank %d", i,
                                        x->rank);
            dims[i] = x->dims[i];
        }
        if (dims[i] == -1) {
            if (infer >= 0)
                return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "shape has two -1 entries");
            infer = i;
            continue;
        }
        if (dims[i] < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "shape[%d] is %lld", i,
                                    (long long)dims[i]);
        if (!ifd_mul_i64(known, dims[i], &known))
            return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "shape overflows");
    }
    if (infer >= 0) {
        if (known == 0 || x->count % known)
            return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                    "cannot infer the -1 dimension: %lld elements into blocks of "
                                    "%lld", (long long)x->count, (long long)known);
        dims[infer] = x->count / known;
    } else if (known != x->count) {
        char a[256], b[256];
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "cannot reshape %s into %s",
                                ifd_shape_str(x->rank, x->dims, a, sizeof a),
                                ifd_shape_str(r, dims, b, sizeof b));
    }
    return copy_as(ctx, x, r, dims);
}

static ifd_status run_flatten(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int64_t axis = ifd_attr_int(ctx->node, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "axis %lld out of range for rank %d",
                                (long long)ifd_attr_int(ctx->node, "axis", 1), x->rank);
    int64_t dims[2] = {1, 1};
    for (int i = 0; i < x->rank; i++) dims[i >= axis] *= x->dims[i];
    return copy_as(ctx, x, 2, dims);
}

/* Axes from the attribute (before opset 13) or from input 1; *n = -1 when absent. */
static ifd_status get_axes(ifd_kernel_ctx *ctx, int64_t *axes, int *n) {
    *n = -1;
    if (ctx->opset < 13) {
        size_t c = 0;
        const int64_t *a = ifd_attr_ints(ctx->node, "axes", &c);
        if (!a) return IFD_OK;
        if (c > IFD_MAX_RANK)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "too many axes (%zu)", c);
        memcpy(axes, a, c * sizeof(int64_t));
        *n = (int)c;
        return IFD_OK;
    }
    if (ctx->n_inputs < 2 || !ctx->inputs[1]) return IFD_OK;
    return read_i64_list(ctx, ctx->inputs[1], "axes", axes, IFD_MAX_RANK, n);
}

static ifd_status run_squeeze(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int64_t axes[IFD_MAX_RANK];
    int na;
    if ((st = get_axes(ctx, axes, &na))) return st;
    bool drop[IFD_MAX_RANK] = {0};
    if (na < 0) {
        for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
    } else {
        for (int i = 0; i < na; i++) {
            int a;
            if ((st = ifd_normalize_axis(ctx, axes[i], x->rank, &a))) return st;
            if (x->dims[a] != 1)
                return ifd_kernel_error(ctx, IFD_ERR_SHAPE,
                                        "cannot squeeze axis %d of length %lld", a,
                                        (long long)x->dims[a]);
            drop[a] = true;
        }
    }
    int64_t dims[IFD_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i]) dims[r++] = x->dims[i];
    return copy_as(ctx, x, r, dims);
}

static ifd_status run_unsqueeze(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int64_t axes[IFD_MAX_RANK];
    int na;
    if ((st = get_axes(ctx, axes, &na))) return st;
    if (na < 0) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "axes are required");
    int r = x->rank + na;
    if (r > IFD_MAX_RANK)
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output rank %d exceeds %d", r, IFD_MAX_RANK);
    bool ins[IFD_MAX_RANK] = {0};
    for (int i = 0; i < na; i++) {
        int a;
        if ((st = ifd_normalize_axis(ctx, axes[i], r, &a))) return st;
        if (ins[a])
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "axis %d repeats in axes", a);
        ins[a] = true;
    }
    int64_t dims[IFD_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    return copy_as(ctx, x, r, dims);
}

/* ---- Range / EyeLike ------------------------------------------------------------------------ */

static ifd_status run_range(ifd_kernel_ctx *ctx) {
    ifd_status st;
    for (int i = 0; i < 3; i++)
        if ((st = ifd_kernel_require_input(ctx, i))) return st;
    const ifd_tensor *ts = ctx->inputs[0], *tl = ctx->inputs[1], *td = ctx->inputs[2];
    ifd_dtype dt = ts->dtype;
    if (tl->dtype != dt || td->dtype != dt)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "start, limit and delta must have the same type");
    if (ts->count != 1 || tl->count != 1 || td->count != 1)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "start, limit and delta must be scalars");
    int64_t n;
    ifd_tensor *y;
    if (ifd_dtype_is_std_float(dt)) {
        double s = ifd_tensor_get_f64(ts, 0), l = ifd_tensor_get_f64(tl, 0),
               d = ifd_tensor_get_f64(td, 0);
        if (d == 0 || !isfinite(d) || !isfinite(s) || !isfinite(l))
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                    "start, limit and delta must be finite and delta nonzero");
        double c = ceil((l - s) / d);
        if (c > 4e18) return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "range of %g elements", c);
        n = c > 0 ? (int64_t)c : 0;
        if ((st = ifd_kernel_output(ctx, 0, dt, 1, &n, &y)) || !y) return st;
        for (int64_t i = 0; i < n; i++) ifd_store_f64(y->data, dt, i, s + (double)i * d);
        return IFD_OK;
    }
    if (dt != IFD_DTYPE_INT16 && dt != IFD_DTYPE_INT32 && dt != IFD_DTYPE_INT64 &&
        dt != IFD_DTYPE_INT8 && dt != IFD_DTYPE_UINT8 && dt != IFD_DTYPE_UINT16 &&
        dt != IFD_DTYPE_UINT32)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "Range of %s is not supported",
                                ifd_dtype_name(dt));
    int64_t s = ifd_tensor_get_i64(ts, 0), l = ifd_tensor_get_i64(tl, 0),
            d = ifd_tensor_get_i64(td, 0);
    if (d == 0) return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "delta is 0");
    /* ceil((l - s) / d) in 128-bit arithmetic: l - s can overflow int64. */
    __int128 diff = (__int128)l - s, q = diff / d;
    if (q * d != diff && ((diff > 0) == (d > 0))) q++;
    if (q > ((__int128)1 << 62))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "range too long");
    n = q > 0 ? (int64_t)q : 0;
    if ((st = ifd_kernel_output(ctx, 0, dt, 1, &n, &y)) || !y) return st;
    size_t es = ifd_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)((__int128)s + (__int128)i * d);
        switch (es) {
        case 1: ((int8_t *)y->data)[i] = (int8_t)v; break;
        case 2: ((int16_t *)y->data)[i] = (int16_t)v; break;
        case 4: ((int32_t *)y->data)[i] = (int32_t)v; break;
        default: ((int64_t *)y->data)[i] = v; break;
        }
    }
    return IFD_OK;
}

static ifd_status run_eyelike(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    if (x->rank != 2)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "input must have rank 2, not %d",
                                x->rank);
    ifd_dtype dt = (ifd_dtype)ifd_attr_int(ctx->node, "dtype", x->dtype);
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, dt, &es))) return st;
    unsigned char one[16];
    if (!write_one(dt, one))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "EyeLike of %s is not supported",
                                ifd_dtype_name(dt));
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, dt, 2, x->dims, &y)) || !y) return st;
    if (!y->count) return IFD_OK;
    memset(y->data, 0, y->nbytes);
    int64_t rows = x->dims[0], cols = x->dims[1], k = ifd_attr_int(ctx->node, "k", 0);
    for (int64_t i = IFD_MAX((int64_t)0, k < 0 ? -k : 0); i < rows; i++) {
        if (k >= 0 && i >= cols - k) break; /* i + k >= cols, written to avoid overflow */
        int64_t j = i + k;
        memcpy((char *)y->data + (size_t)(i * cols + j) * es, one, es);
    }
    return IFD_OK;
}

/* ---- Dropout (inference) -------------------------------------------------------------------- */

static ifd_status run_dropout(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_elem_size(ctx, x->dtype, &es))) return st;
    if (ctx->opset >= 12 && ctx->n_inputs > 2 && ctx->inputs[2]) {
        const ifd_tensor *tm = ctx->inputs[2];
        if (tm->count != 1)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "training_mode must be a scalar");
        if (ifd_tensor_get_i64(tm, 0)) {
            /* Training drops elements at random; only ratio 0 (keep all) is deterministic. */
            double ratio = 0.5;
            if (ctx->n_inputs > 1 && ctx->inputs[1]) {
                if (ctx->inputs[1]->count != 1)
                    return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "ratio must be a scalar");
                ratio = ifd_tensor_get_f64(ctx->inputs[1], 0);
            }
            if (ratio != 0)
                return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED,
                                        "training mode with ratio %g is random (not supported)",
                                        ratio);
        }
    }
    if ((st = copy_as(ctx, x, x->rank, x->dims))) return st;
    ifd_tensor *mask;
    /* The mask is bool from opset 10; before it has the input's type. */
    ifd_dtype mdt = ctx->opset >= 10 ? IFD_DTYPE_BOOL : x->dtype;
    if ((st = ifd_kernel_output(ctx, 1, mdt, x->rank, x->dims, &mask)) || !mask) return st;
    unsigned char one[16];
    if (!write_one(mdt, one))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "mask of %s is not supported",
                                ifd_dtype_name(mdt));
    if (mask->count) fill_pattern(mask->data, one, mask->count, ifd_dtype_size(mdt));
    return IFD_OK;
}

/* ---- Expand --------------------------------------------------------------------------------- */

static ifd_status run_expand(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = ifd_kernel_require_input(ctx, 1)))
        return st;
    const ifd_tensor *x = ctx->inputs[0];
    size_t es;
    if ((st = ifd_kernel_move_size(ctx, x->dtype, &es))) return st;
    int64_t shape[IFD_MAX_RANK], dims[IFD_MAX_RANK];
    int ns, r;
    if ((st = read_i64_list(ctx, ctx->inputs[1], "shape", shape, IFD_MAX_RANK, &ns))) return st;
    for (int i = 0; i < ns; i++)
        if (shape[i] < 0)
            return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "shape[%d] is negative", i);
    if ((st = ifd_broadcast_shape(x->rank, x->dims, ns, shape, &r, dims)))
        return ifd_error_prefix(st, "node '%s' (Expand)", ctx->node->name);
    int64_t in_str[IFD_MAX_RANK], sstr[IFD_MAX_RANK];
    int64_t acc = (int64_t)es;
    for (int i = x->rank - 1; i >= 0; i--) {
        in_str[i] = acc;
        acc *= x->dims[i];
    }
    for (int i = 0; i < r; i++) {
        int j = i - (r - x->rank);
        sstr[i] = (j < 0 || x->dims[j] == 1) ? 0 : in_str[j];
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, x->dtype, r, dims, &y)) || !y) return st;
    if (y->count) ifd_copy_strided(ctx->pool, es, r, dims, sstr, x->data, y->data);
    return ifd_kernel_finish_move(ctx, y);
}

const ifd_op_def ifd_ops_shape[] = {
    {"", "Identity", 1, run_identity, NULL, NULL, IFD_OP_STRINGS},
    {"", "Constant", 1, run_constant, NULL, NULL, IFD_OP_STRINGS},
    {"", "ConstantOfShape", 9, run_constant_of_shape, NULL, NULL, 0},
    {"", "Shape", 1, run_shape, NULL, NULL, IFD_OP_STRINGS},
    {"", "Size", 1, run_size, NULL, NULL, IFD_OP_STRINGS},
    {"", "Reshape", 1, run_reshape, NULL, NULL, IFD_OP_STRINGS},
    {"", "Flatten", 1, run_flatten, NULL, NULL, IFD_OP_STRINGS},
    {"", "Squeeze", 1, run_squeeze, NULL, NULL, IFD_OP_STRINGS},
    {"", "Unsqueeze", 1, run_unsqueeze, NULL, NULL, IFD_OP_STRINGS},
    {"", "Range", 11, run_range, NULL, NULL, 0},
    {"", "EyeLike", 9, run_eyelike, NULL, NULL, 0},
    {"", "Dropout", 1, run_dropout, NULL, NULL, 0},
    {"", "Expand", 8, run_expand, NULL, NULL, IFD_OP_STRINGS},
    {0},
};
