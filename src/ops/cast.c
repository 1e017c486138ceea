/* Operator family: cast (Cast, CastLike). Conversions live in base/dtype_convert.c; casts to and
 * from strings in ops/strings.c. */
#include "ops/op.h"

#include "base/dtype_convert.h"

#include <string.h>

typedef struct {
    ifd_dtype st, dt;
    const uint8_t *src;
    uint8_t *dst;
    size_t ss, ds;
    bool saturate;
    ifd_e8m0_round round;
} cast_job;

static void cast_chunk(void *arg, int64_t begin, int64_t end) {
    const cast_job *j = arg;
    /* types are validated before the split, so this cannot fail */
    (void)ifd_convert_ex(j->st, j->src + (size_t)begin * j->ss, j->dt,
                         j->dst + (size_t)begin * j->ds, end - begin, j->saturate, j->round);
}

static ifd_status cast_to(ifd_kernel_ctx *ctx, ifd_dtype to) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    if (x->dtype == IFD_DTYPE_STRING || to == IFD_DTYPE_STRING) return ifd_string_cast(ctx, to);
    if (!ifd_convert_supported(x->dtype, to))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "cast from %s to %s is not supported",
                                ifd_dtype_name(x->dtype), ifd_dtype_name(to));
    bool saturate = ifd_attr_int(ctx->node, "saturate", 1) != 0;
    const char *rm = ifd_attr_string(ctx->node, "round_mode", "up");
    ifd_e8m0_round round;
    if (!strcmp(rm, "up"))
        round = IFD_E8M0_ROUND_UP;
    else if (!strcmp(rm, "down"))
        round = IFD_E8M0_ROUND_DOWN;
    else if (!strcmp(rm, "nearest"))
        round = IFD_E8M0_ROUND_NEAREST;
    else
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "round_mode '%s' is not one of up, down, nearest", rm);
    ifd_tensor *y;
    st = ifd_kernel_output(ctx, 0, to, x->rank, x->dims, &y);
    if (st || !y || x->count == 0) return st;
    cast_job j = {x->dtype, to, x->data, y->data, ifd_dtype_size(x->dtype),
                  ifd_dtype_size(to), saturate, round};
    /* cheap per element: only split big tensors */
    ifd_parallel_for(ctx->pool, x->count, 1 << 16, cast_chunk, &j);
    return IFD_OK;
}

static ifd_status run_cast(ifd_kernel_ctx *ctx) {
    const ifd_attr *a = ifd_attr_find(ctx->node, "to");
    if (a && a->type == IFD_ATTR_STRING) {
        /* Cast-1 names the type ("FLOAT") instead of numbering it */
        static const struct { const char *name; ifd_dtype t; } names[] = {
            {"FLOAT", IFD_DTYPE_FLOAT},   {"UINT8", IFD_DTYPE_UINT8},   {"INT8", IFD_DTYPE_INT8},
            {"UINT16", IFD_DTYPE_UINT16}, {"INT16", IFD_DTYPE_INT16},   {"INT32", IFD_DTYPE_INT32},
            {"INT64", IFD_DTYPE_INT64},   {"BOOL", IFD_DTYPE_BOOL},     {"FLOAT16", IFD_DTYPE_FLOAT16},
            {"DOUBLE", IFD_DTYPE_DOUBLE}, {"UINT32", IFD_DTYPE_UINT32}, {"UINT64", IFD_DTYPE_UINT64},
            {"STRING", IFD_DTYPE_STRING},
        };
        for (size_t i = 0; i < IFD_ARRAY_LEN(names); i++)
            if (!strcmp(a->s, names[i].name)) return cast_to(ctx, names[i].t);
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unknown target type '%s'", a->s);
    }
    if (!a || a->type != IFD_ATTR_INT)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "attribute 'to' is missing");
    if (a->i <= 0 || a->i >= IFD_DTYPE_COUNT)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unknown target type %lld",
                                (long long)a->i);
    return cast_to(ctx, (ifd_dtype)a->i);
}

static ifd_status run_cast_like(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 1);
    if (st) return st;
    return cast_to(ctx, ctx->inputs[1]->dtype);
}

const ifd_op_def ifd_ops_cast[] = {
    {"", "Cast", 1, run_cast, NULL, NULL, IFD_OP_STRINGS},
    {"", "CastLike", 15, run_cast_like, NULL, NULL, IFD_OP_STRINGS},
    {0},
};
