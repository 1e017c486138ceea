/* Operator family: activation. Float, float16 and bfloat16 run vectorized float kernels
 * (half types converted in blocks by ifd_vec_map); double uses the same formulas in double;
 * integer types where the spec allows them (Relu, Shrink, LeakyRelu...) use scalar loops. */
#include "ops/op.h"

#include "kernels/vecmath.h"

#include <math.h>
#include <string.h>

/* Plain loops the compiler vectorizes; -O2 alone would not (gcc's cheap cost model), and the
 * build has no -march, so an AVX2 clone is chosen at load time where the CPU has it. */
#if defined(__x86_64__) || defined(__i386__)
#define ACT_VEC_CLONES target_clones("avx2", "default"),
#else
#define ACT_VEC_CLONES
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define ACT_VEC __attribute__((ACT_VEC_CLONES optimize("tree-vectorize", "vect-cost-model=dynamic")))
#elif defined(__x86_64__) || defined(__i386__)
#define ACT_VEC __attribute__((target_clones("avx2", "default")))
#else
#define ACT_VEC
#endif

#define ACT_GRAIN_CHEAP ((int64_t)1 << 15)
#define ACT_GRAIN_MATH ((int64_t)1 << 12)
#define ACT_BLOCK 1024

typedef enum act_kind {
    A_RELU,
    A_LEAKY,
    A_SIGMOID,
    A_HARD_SIGMOID,
    A_TANH,
    A_ELU,
    A_SELU,
    A_CELU,
    A_SOFTPLUS,
    A_SOFTSIGN,
    A_GELU,
    A_GELU_TANH,
    A_MISH,
    A_HARD_SWISH,
    A_THRESHOLDED_RELU,
    A_SHRINK,
    A_SWISH,
} act_kind;

typedef struct act_param {
    act_kind kind;
    float alpha, beta, gamma;
} act_param;

/* ---- float kernels --------------------------------------------------------------------------- */

static ACT_VEC void k_relu(const float *restrict x, float *restrict y, int64_t n,
                           const act_param *p) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? 0.0f : x[i];
}
static ACT_VEC void k_leaky(const float *restrict x, float *restrict y, int64_t n,
                            const act_param *p) {
    float a = p->alpha;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? a * x[i] : x[i];
}
static ACT_VEC void k_hard_sigmoid(const float *restrict x, float *restrict y, int64_t n,
                                   const act_param *p) {
    float a = p->alpha, b = p->beta;
    for (int64_t i = 0; i < n; i++) {
        float v = a * x[i] + b;
        v = v < 0 ? 0.0f : v;
        y[i] = v > 1 ? 1.0f : v;
    }
}
static ACT_VEC void k_hard_swish(const float *restrict x, float *restrict y, int64_t n,
                                 const act_param *p) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * (1.0f / 6.0f) + 0.5f;
        v = v < 0 ? 0.0f : v;
        v = v > 1 ? 1.0f : v;
        y[i] = x[i] * v;
    }
}
static ACT_VEC void k_softsign(const float *restrict x, float *restrict y, int64_t n,
                               const act_param *p) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + fabsf(x[i]));
}
static ACT_VEC void k_thresholded(const float *restrict x, float *restrict y, int64_t n,
                                  const act_param *p) {
    float a = p->alpha;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > a ? x[i] : 0.0f;
}
static ACT_VEC void k_shrink(const float *restrict x, float *restrict y, int64_t n,
                             const act_param *p) {
    float l = p->alpha, b = p->beta;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < -l ? x[i] + b : x[i] > l ? x[i] - b : 0.0f;
}

/* Kernels that need exp(x) of the negative part: computed blockwise into a local buffer. */
static ACT_VEC void combine_elu(const float *restrict x, const float *restrict e,
                                float *restrict y, int64_t n, float a) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? a * (e[i] - 1.0f) : x[i];
}
static ACT_VEC void combine_selu(const float *restrict x, const float *restrict e,
                                 float *restrict y, int64_t n, float a, float g) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? g * x[i] : g * (a * e[i] - a);
}
static ACT_VEC void combine_celu(const float *restrict x, const float *restrict e,
                                 float *restrict y, int64_t n, float a) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : a * (e[i] - 1.0f);
}
static ACT_VEC void clamp_neg_scaled(const float *restrict x, float *restrict t, int64_t n,
                                     float s) {
    for (int64_t i = 0; i < n; i++) t[i] = x[i] < 0 ? x[i] * s : 0.0f;
}
static ACT_VEC void mul_into(const float *restrict x, const float *restrict t,
                             float *restrict y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * t[i];
}

static void k_exp_family(const float *x, float *y, int64_t n, const act_param *p) {
    float t[ACT_BLOCK];
    for (int64_t s = 0; s < n; s += ACT_BLOCK) {
        int64_t m = IFD_MIN((int64_t)ACT_BLOCK, n - s);
        /* exp only of the negative part, so positive inputs cannot overflow */
        float sc = p->kind == A_CELU ? 1.0f / p->alpha : 1.0f;
        clamp_neg_scaled(x + s, t, m, sc);
        ifd_vec_exp(t, t, m);
        if (p->kind == A_ELU)
            combine_elu(x + s, t, y + s, m, p->alpha);
        else if (p->kind == A_SELU)
            combine_selu(x + s, t, y + s, m, p->alpha, p->gamma);
        else
            combine_celu(x + s, t, y + s, m, p->alpha);
    }
}

static void k_mish(const float *x, float *y, int64_t n, const act_param *p) {
    float t[ACT_BLOCK];
    for (int64_t s = 0; s < n; s += ACT_BLOCK) {
        int64_t m = IFD_MIN((int64_t)ACT_BLOCK, n - s);
        ifd_vec_softplus(x + s, t, m);
        ifd_vec_tanh(t, t, m);
        mul_into(x + s, t, y + s, m);
    }
}

static void act_f32(const float *x, float *y, int64_t n, const void *param) {
    const act_param *p = param;
    switch (p->kind) {
    case A_RELU: k_relu(x, y, n, p); break;
    case A_LEAKY: k_leaky(x, y, n, p); break;
    case A_SIGMOID: ifd_vec_sigmoid(x, y, n); break;
    case A_HARD_SIGMOID: k_hard_sigmoid(x, y, n, p); break;
    case A_TANH: ifd_vec_tanh(x, y, n); break;
    case A_ELU:
    case A_SELU:
    case A_CELU: k_exp_family(x, y, n, p); break;
    case A_SOFTPLUS: ifd_vec_softplus(x, y, n); break;
    case A_SOFTSIGN: k_softsign(x, y, n, p); break;
    case A_GELU: ifd_vec_gelu(x, y, n); break;
    case A_GELU_TANH: ifd_vec_gelu_tanh(x, y, n); break;
    case A_MISH: k_mish(x, y, n, p); break;
    case A_HARD_SWISH: k_hard_swish(x, y, n, p); break;
    case A_THRESHOLDED_RELU: k_thresholded(x, y, n, p); break;
    case A_SHRINK: k_shrink(x, y, n, p); break;
    case A_SWISH: ifd_vec_swish(x, y, n, p->alpha); break;
    }
}

/* ---- double (and integer) reference formulas -------------------------------------------------- */

static double act_d(const act_param *p, double x) {
    double a = p->alpha, b = p->beta, g = p->gamma;
    switch (p->kind) {
    case A_RELU: return x < 0 ? 0.0 : x;
    case A_LEAKY: return x < 0 ? a * x : x;
    case A_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case A_HARD_SIGMOID: return fmax(0.0, fmin(1.0, a * x + b));
    case A_TANH: return tanh(x);
    case A_ELU: return x < 0 ? a * expm1(x) : x;
    case A_SELU: return x > 0 ? g * x : g * (a * exp(x) - a);
    case A_CELU: return x > 0 ? x : a * expm1(x / a);
    case A_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case A_SOFTSIGN: return x / (1.0 + fabs(x));
    case A_GELU: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
    case A_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
    case A_MISH: return x * tanh(x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)));
    case A_HARD_SWISH: return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case A_THRESHOLDED_RELU: return x > a ? x : 0.0;
    case A_SHRINK: return x < -a ? x + b : x > a ? x - b : 0.0;
    case A_SWISH: return x / (1.0 + exp(-a * x));
    }
    return x;
}

typedef struct act_job {
    const act_param *p;
    const void *x;
    void *y;
    ifd_dtype dtype;
} act_job;

static void act_task_other(void *arg, int64_t b, int64_t e) {
    const act_job *j = arg;
    switch (j->dtype) {
    case IFD_DTYPE_DOUBLE: {
        const double *x = j->x;
        double *y = j->y;
        for (int64_t i = b; i < e; i++) y[i] = act_d(j->p, x[i]);
        break;
    }
#define ACT_INT_CASE(DT, T)                                                                  \
    case DT: {                                                                               \
        const T *x = j->x;                                                                   \
        T *y = j->y;                                                                         \
        if (j->p->kind == A_RELU) {                                                          \
            for (int64_t i = b; i < e; i++) y[i] = x[i] > 0 ? x[i] : 0;                      \
        } else {                                                                             \
            for (int64_t i = b; i < e; i++) {                                                \
                double v = act_d(j->p, (double)x[i]);                                        \
                /* out-of-range float -> int conversion is undefined in C: saturate first */ \
                v = v != v ? 0.0 : v < -9.2e18 ? -9.2e18 : v > 9.2e18 ? 9.2e18 : v;          \
                y[i] = (T)(int64_t)v;                                                        \
            }                                                                                \
        }                                                                                    \
        break;                                                                               \
    }
        ACT_INT_CASE(IFD_DTYPE_INT8, int8_t)
        ACT_INT_CASE(IFD_DTYPE_INT16, int16_t)
        ACT_INT_CASE(IFD_DTYPE_INT32, int32_t)
        ACT_INT_CASE(IFD_DTYPE_INT64, int64_t)
#undef ACT_INT_CASE
    default: break;
    }
}

/* Which integer types each activation accepts (per the spec). */
static bool act_int_ok(act_kind kind, ifd_dtype dt) {
    if (kind != A_RELU && kind != A_SHRINK) return false;
    return dt == IFD_DTYPE_INT8 || dt == IFD_DTYPE_INT16 || dt == IFD_DTYPE_INT32 ||
           dt == IFD_DTYPE_INT64;
}

static ifd_status run_act(ifd_kernel_ctx *ctx, const act_param *p) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0))) return st;
    const ifd_tensor *x = ctx->inputs[0];
    ifd_dtype dt = x->dtype;
    bool flt = dt == IFD_DTYPE_FLOAT || dt == IFD_DTYPE_FLOAT16 || dt == IFD_DTYPE_BFLOAT16;
    if (!flt && dt != IFD_DTYPE_DOUBLE && !act_int_ok(p->kind, dt))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "type %s is not supported",
                                ifd_dtype_name(dt));
    ifd_tensor *out;
    if ((st = ifd_kernel_output(ctx, 0, dt, x->rank, x->dims, &out)) || !out) return st;
    if (x->count == 0) return IFD_OK;
    bool cheap = p->kind == A_RELU || p->kind == A_LEAKY || p->kind == A_HARD_SIGMOID ||
                 p->kind == A_HARD_SWISH || p->kind == A_THRESHOLDED_RELU ||
                 p->kind == A_SHRINK || p->kind == A_SOFTSIGN;
    int64_t grain = cheap ? ACT_GRAIN_CHEAP : ACT_GRAIN_MATH;
    if (flt) {
        ifd_vec_map(ctx->pool, dt, x->data, out->data, x->count, act_f32, p, grain);
        return IFD_OK;
    }
    act_job j = {p, x->data, out->data, dt};
    ifd_parallel_for(ctx->pool, x->count, grain / 4, act_task_other, &j);
    return IFD_OK;
}

static ifd_status run_relu(ifd_kernel_ctx *ctx) {
    act_param p = {A_RELU, 0, 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_leaky_relu(ifd_kernel_ctx *ctx) {
    act_param p = {A_LEAKY, ifd_attr_float(ctx->node, "alpha", 0.01f), 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_sigmoid(ifd_kernel_ctx *ctx) {
    act_param p = {A_SIGMOID, 0, 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_hard_sigmoid(ifd_kernel_ctx *ctx) {
    act_param p = {A_HARD_SIGMOID, ifd_attr_float(ctx->node, "alpha", 0.2f),
                   ifd_attr_float(ctx->node, "beta", 0.5f), 0};
    return run_act(ctx, &p);
}
static ifd_status run_tanh(ifd_kernel_ctx *ctx) {
    act_param p = {A_TANH, 0, 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_elu(ifd_kernel_ctx *ctx) {
    act_param p = {A_ELU, ifd_attr_float(ctx->node, "alpha", 1.0f), 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_selu(ifd_kernel_ctx *ctx) {
    act_param p = {A_SELU, ifd_attr_float(ctx->node, "alpha", 1.67326319217681884765625f), 0,
                   ifd_attr_float(ctx->node, "gamma", 1.05070102214813232421875f)};
    return run_act(ctx, &p);
}
static ifd_status run_celu(ifd_kernel_ctx *ctx) {
    act_param p = {A_CELU, ifd_attr_float(ctx->node, "alpha", 1.0f), 0, 0};
    if (p.alpha == 0)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "alpha must not be 0");
    return run_act(ctx, &p);
}
static ifd_status run_softplus(ifd_kernel_ctx *ctx) {
    act_param p = {A_SOFTPLUS, 0, 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_softsign(ifd_kernel_ctx *ctx) {
    act_param p = {A_SOFTSIGN, 0, 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_gelu(ifd_kernel_ctx *ctx) {
    const char *ap = ifd_attr_string(ctx->node, "approximate", "none");
    act_param p = {A_GELU, 0, 0, 0};
    if (!strcmp(ap, "tanh"))
        p.kind = A_GELU_TANH;
    else if (strcmp(ap, "none"))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "approximate must be 'none' or 'tanh', got '%s'", ap);
    return run_act(ctx, &p);
}
static ifd_status run_mish(ifd_kernel_ctx *ctx) {
    act_param p = {A_MISH, 0, 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_hard_swish(ifd_kernel_ctx *ctx) {
    act_param p = {A_HARD_SWISH, 0, 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_thresholded_relu(ifd_kernel_ctx *ctx) {
    act_param p = {A_THRESHOLDED_RELU, ifd_attr_float(ctx->node, "alpha", 1.0f), 0, 0};
    return run_act(ctx, &p);
}
static ifd_status run_shrink(ifd_kernel_ctx *ctx) {
    act_param p = {A_SHRINK, ifd_attr_float(ctx->node, "lambd", 0.5f),
                   ifd_attr_float(ctx->node, "bias", 0.0f), 0};
    return run_act(ctx, &p);
}
static ifd_status run_swish(ifd_kernel_ctx *ctx) {
    act_param p = {A_SWISH, ifd_attr_float(ctx->node, "alpha", 1.0f), 0, 0};
    return run_act(ctx, &p);
}

const ifd_op_def ifd_ops_activation[] = {
    {"", "Relu", 1, run_relu, NULL, NULL, 0},
    {"", "LeakyRelu", 1, run_leaky_relu, NULL, NULL, 0},
    {"", "Sigmoid", 1, run_sigmoid, NULL, NULL, 0},
    {"", "HardSigmoid", 1, run_hard_sigmoid, NULL, NULL, 0},
    {"", "Tanh", 1, run_tanh, NULL, NULL, 0},
    {"", "Elu", 1, run_elu, NULL, NULL, 0},
    {"", "Selu", 1, run_selu, NULL, NULL, 0},
    {"", "Celu", 12, run_celu, NULL, NULL, 0},
    {"", "Softplus", 1, run_softplus, NULL, NULL, 0},
    {"", "Softsign", 1, run_softsign, NULL, NULL, 0},
    {"", "Gelu", 20, run_gelu, NULL, NULL, 0},
    {"", "Mish", 18, run_mish, NULL, NULL, 0},
    {"", "HardSwish", 14, run_hard_swish, NULL, NULL, 0},
    {"", "ThresholdedRelu", 10, run_thresholded_relu, NULL, NULL, 0},
    {"", "Shrink", 9, run_shrink, NULL, NULL, 0},
    {"", "Swish", 24, run_swish, NULL, NULL, 0},
    {0},
};
