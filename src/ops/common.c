/* Helpers shared by the operator families. */
#include "ops/op.h"

#include "kernels/vecmath.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

ifd_status ifd_broadcast_shape(int rank_a, const int64_t *a, int rank_b, const int64_t *b,
                               int *rank_out, int64_t *out) {
    int r = IFD_MAX(rank_a, rank_b);
    for (int i = 0; i < r; i++) {
        int ia = i - (r - rank_a), ib = i - (r - rank_b);
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da == db || db == 1)
            out[i] = da;
        else if (da == 1)
            out[i] = db;
        else {
            char sa[256], sb[256];
            return ifd_error(IFD_ERR_SHAPE, "shapes %s and %s do not broadcast",
                             ifd_shape_str(rank_a, a, sa, sizeof sa),
                             ifd_shape_str(rank_b, b, sb, sizeof sb));
        }
    }
    *rank_out = r;
    return IFD_OK;
}

ifd_status ifd_kernel_error(const ifd_kernel_ctx *ctx, ifd_status status, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ifd_error(status, "node '%s' (%s): %s", ctx->node->name, ctx->node->op_type, msg);
}

void *ifd_kernel_scratch_array(ifd_kernel_ctx *ctx, size_t count, size_t elem, ifd_status *st) {
    if (*st) return NULL;
    size_t bytes;
    if (!ifd_mul_size(count, elem, &bytes)) {
        *st = ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "scratch of %zu x %zu bytes overflows", count,
                               elem);
        return NULL;
    }
    void *p = ifd_kernel_scratch(ctx, bytes);
    if (!p) *st = ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "no scratch memory (%zu bytes)", bytes);
    return p;
}

enum { PAR_COPY_CHUNK = 32 * 1024 };

typedef struct par_copy_arg {
    char *dst;
    const char *src;
    size_t bytes;
} par_copy_arg;

static void par_copy_chunk(void *arg, int64_t begin, int64_t end) {
    const par_copy_arg *a = arg;
    size_t b = (size_t)begin * PAR_COPY_CHUNK;
    size_t e = IFD_MIN((size_t)end * PAR_COPY_CHUNK, a->bytes);
    memcpy(a->dst + b, a->src + b, e - b);
}

void ifd_parallel_memcpy(ifd_thread_pool *pool, void *dst, const void *src, size_t bytes) {
    if (bytes == 0 || dst == src) return;
    /* a task copies at least 8 chunks (256 KB): less is not worth waking a thread */
    if (bytes < (size_t)PAR_COPY_CHUNK * 8) {
        memcpy(dst, src, bytes);
        return;
    }
    par_copy_arg a = {dst, src, bytes};
    ifd_parallel_for(pool, (int64_t)((bytes + PAR_COPY_CHUNK - 1) / PAR_COPY_CHUNK), 8,
                     par_copy_chunk, &a);
}

bool ifd_dtype_is_std_float(ifd_dtype t) {
    return t == IFD_DTYPE_FLOAT || t == IFD_DTYPE_DOUBLE || t == IFD_DTYPE_FLOAT16 ||
           t == IFD_DTYPE_BFLOAT16;
}

void ifd_load_f32(ifd_dtype dt, const void *src, float *dst, int64_t n) {
    switch (dt) {
    case IFD_DTYPE_FLOAT: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case IFD_DTYPE_FLOAT16: ifd_vec_f16_to_f32(src, dst, n); break;
    case IFD_DTYPE_BFLOAT16: ifd_vec_bf16_to_f32(src, dst, n); break;
    case IFD_DTYPE_DOUBLE: {
        const double *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        break;
    }
    default: break;
    }
}

void ifd_store_f32(ifd_dtype dt, const float *src, void *dst, int64_t n) {
    switch (dt) {
    case IFD_DTYPE_FLOAT: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case IFD_DTYPE_FLOAT16: ifd_vec_f32_to_f16(src, dst, n); break;
    case IFD_DTYPE_BFLOAT16: ifd_vec_f32_to_bf16(src, dst, n); break;
    case IFD_DTYPE_DOUBLE: {
        double *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = src[i];
        break;
    }
    default: break;
    }
}

ifd_status ifd_normalize_axis(const ifd_kernel_ctx *ctx, int64_t axis, int rank, int *out) {
    if (axis < -(int64_t)rank || axis >= (int64_t)(rank ? rank : 1) ||
        (rank == 0 && axis != 0 && axis != -1))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                                (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return IFD_OK;
}

ifd_status ifd_kernel_elem_size(const ifd_kernel_ctx *ctx, ifd_dtype dtype, size_t *es) {
    *es = ifd_dtype_size(dtype);
    if (*es == 0)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "element type %s is not supported",
                                ifd_dtype_name(dtype));
    return IFD_OK;
}

ifd_status ifd_kernel_move_size(const ifd_kernel_ctx *ctx, ifd_dtype dtype, size_t *es) {
    if (dtype == IFD_DTYPE_STRING) {
        *es = sizeof(ifd_string);
        return IFD_OK;
    }
    return ifd_kernel_elem_size(ctx, dtype, es);
}

ifd_status ifd_kernel_finish_move(const ifd_kernel_ctx *ctx, ifd_tensor *y) {
    if (!y || y->dtype != IFD_DTYPE_STRING) return IFD_OK;
    ifd_status st = ifd_tensor_strings_unshare(y);
    if (st) return ifd_error_prefix(st, "node '%s' (%s)", ctx->node->name, ctx->node->op_type);
    return IFD_OK;
}

ifd_status ifd_kernel_require_input(const ifd_kernel_ctx *ctx, int index) {
    if (index >= ctx->n_inputs || !ctx->inputs[index])
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "required input %d is missing",
                                index);
    return IFD_OK;
}

int64_t ifd_tensor_get_i64(const ifd_tensor *t, int64_t i) {
    const void *p = t->data;
    switch (t->dtype) {
    case IFD_DTYPE_INT64: return ((const int64_t *)p)[i];
    case IFD_DTYPE_INT32: return ((const int32_t *)p)[i];
    case IFD_DTYPE_INT16: return ((const int16_t *)p)[i];
    case IFD_DTYPE_INT8: case IFD_DTYPE_INT4: case IFD_DTYPE_INT2: return ((const int8_t *)p)[i];
    case IFD_DTYPE_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case IFD_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case IFD_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case IFD_DTYPE_UINT8: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2: case IFD_DTYPE_BOOL:
        return ((const uint8_t *)p)[i];
    default:
        /* floating types convert; anything else (string, complex) has no integer value */
        if (ifd_dtype_is_float(t->dtype)) {
            double v = ifd_tensor_get_f64(t, i);
            if (v != v) return 0; /* NaN */
            if (v >= 9223372036854775807.0) return INT64_MAX;
            if (v <= -9223372036854775808.0) return INT64_MIN;
            return (int64_t)v;
        }
        return 0;
    }
}

double ifd_tensor_get_f64(const ifd_tensor *t, int64_t i) {
    const void *p = t->data;
    switch (t->dtype) {
    case IFD_DTYPE_FLOAT: return ((const float *)p)[i];
    case IFD_DTYPE_DOUBLE: return ((const double *)p)[i];
    case IFD_DTYPE_FLOAT16: return ifd_fp16_to_f32(((const uint16_t *)p)[i]);
    case IFD_DTYPE_BFLOAT16: return ifd_bf16_to_f32(((const uint16_t *)p)[i]);
    case IFD_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
    default:
        if (ifd_dtype_is_signed_int(t->dtype) || ifd_dtype_is_unsigned_int(t->dtype) ||
            t->dtype == IFD_DTYPE_BOOL)
            return (double)ifd_tensor_get_i64(t, i);
        return NAN; /* 8-bit floats and types without a real value */
    }
}

float ifd_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0)
            bits = sign;
        else { /* subnormal: normalize */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ifd_f32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to inf */
    if (absx < 0x38800000u) { /* subnormal or zero in half */
        float af;
        memcpy(&af, &absx, 4);
        /* scale so that the half subnormal ulp (2^-24) becomes 1, round to nearest even */
        float scaled = af * 16777216.0f;
        uint32_t m = (uint32_t)lrintf(scaled);
        return (uint16_t)(sign | m);
    }
    uint32_t mant = absx & 0x7fffff;
    uint32_t exp = (absx >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float ifd_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ifd_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    uint32_t rounding = 0x7fff + ((x >> 16) & 1);
    return (uint16_t)((x + rounding) >> 16);
}

void ifd_activation_apply(const ifd_activation *act, float *x, int64_t n) {
    switch (act->kind) {
    case IFD_ACT_NONE: return;
    case IFD_ACT_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        return;
    case IFD_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] < act->alpha ? act->alpha : x[i];
            x[i] = v > act->beta ? act->beta : v;
        }
        return;
    case IFD_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < 0 ? act->alpha * x[i] : x[i];
        return;
    case IFD_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        return;
    case IFD_ACT_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        return;
    case IFD_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = fmaxf(0.f, fminf(1.f, act->alpha * x[i] + act->beta));
        return;
    case IFD_ACT_HARD_SWISH:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * fmaxf(0.f, fminf(1.f, x[i] / 6.f + 0.5f));
        return;
    }
}

ifd_status ifd_parse_auto_pad(const ifd_kernel_ctx *ctx, int *out) {
    const char *s = ifd_attr_string(ctx->node, "auto_pad", "NOTSET");
    if (!strcmp(s, "NOTSET") || !*s)
        *out = IFD_AUTO_PAD_NOTSET;
    else if (!strcmp(s, "SAME_UPPER"))
        *out = IFD_AUTO_PAD_SAME_UPPER;
    else if (!strcmp(s, "SAME_LOWER"))
        *out = IFD_AUTO_PAD_SAME_LOWER;
    else if (!strcmp(s, "VALID"))
        *out = IFD_AUTO_PAD_VALID;
    else
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "unknown auto_pad '%s'", s);
    return IFD_OK;
}

ifd_status ifd_attr_ints_n(const ifd_kernel_ctx *ctx, const char *name, int n, int64_t dflt,
                           int64_t *out, bool *present) {
    size_t cnt = 0;
    const int64_t *v = ifd_attr_ints(ctx->node, name, &cnt);
    if (present) *present = v && cnt;
    if (!v || !cnt) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return IFD_OK;
    }
    if (cnt != (size_t)n)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "attribute '%s' has %zu values, expected %d", name, cnt, n);
    memcpy(out, v, sizeof(int64_t) * (size_t)n);
    return IFD_OK;
}

void ifd_fill_probe_input(float *x, size_t n) {
    uint32_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 9) * (1.0f / 8388608.0f) - 0.5f;
    }
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ifd_time_alternating(void (*a)(void *), void (*b)(void *), void *arg, int min_rounds,
                          double budget_s, double *t_a, double *t_b) {
    double best_a = INFINITY, best_b = INFINITY, spent = 0;
    for (int round = 0; round < 6; round++) {
        double t0 = now_seconds();
        a(arg);
        double t1 = now_seconds();
        b(arg);
        double t2 = now_seconds();
        if (round > 0) {
            best_a = fmin(best_a, t1 - t0);
            best_b = fmin(best_b, t2 - t1);
        }
        spent += t2 - t0;
        if (round >= min_rounds && spent > budget_s) break; /* big layers: a few runs are plenty */
    }
    *t_a = best_a;
    *t_b = best_b;
}
