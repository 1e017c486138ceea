/* ops/: one file per operator family. Each family file defines a table
 *
 *     const ifd_op_def ifd_ops_<family>[] = { {"", "Relu", 1, run_relu, NULL, NULL, 0}, ..., {0} };
 *
 * listed in ops/registry.c. A kernel receives its inputs (already computed tensors; NULL for an
 * omitted optional input), asks the runtime for each output buffer with ifd_kernel_output()
 * (the runtime decides where the memory lives: the planned arena, no malloc on the hot path),
 * and returns IFD_OK or an error made with ifd_error() naming what is wrong.
 *
 * Version-dependent semantics: ctx->opset is the model's opset for the node's domain; compare
 * it against the versions at which the operator changed (e.g. `if (ctx->opset < 13)` for the
 * attribute-based form of an operator that moved an attribute to an input in opset 13).
 */
#ifndef IFD_OP_H
#define IFD_OP_H

#include "base/base.h"
#include "graph/graph.h"
#include "runtime/threadpool.h"

#include <string.h>

/* Highest opset version of the default domain this build implements. */
#define IFD_MAX_OPSET 25

/* An activation fused into a producer's epilogue by the optimizer (Conv, Gemm, MatMul). */
typedef enum ifd_act_kind {
    IFD_ACT_NONE = 0,
    IFD_ACT_RELU,
    IFD_ACT_CLIP,       /* min(max(x, alpha), beta) */
    IFD_ACT_LEAKY_RELU, /* x < 0 ? alpha * x : x */
    IFD_ACT_SIGMOID,
    IFD_ACT_TANH,
    IFD_ACT_HARD_SIGMOID, /* max(0, min(1, alpha * x + beta)) */
    IFD_ACT_HARD_SWISH,
} ifd_act_kind;

typedef struct ifd_activation {
    ifd_act_kind kind;
    float alpha, beta;
} ifd_activation;

/* Apply an activation to n floats in place (vectorized where it matters). */
void ifd_activation_apply(const ifd_activation *act, float *x, int64_t n);

typedef struct ifd_kernel_ctx ifd_kernel_ctx;

struct ifd_kernel_ctx {
    const ifd_node *node;           /* attributes: ifd_attr_int(ctx->node, "axis", 0) etc. */
    int opset;                      /* model opset for the node's domain */
    int n_inputs;                   /* as written in the node, trailing omitted ones included */
    const ifd_tensor *const *inputs; /* inputs[i] NULL when omitted */
    int n_outputs;
    ifd_thread_pool *pool;          /* this session's threads; pass to ifd_parallel_for */
    void *state;                    /* what prepare() stored, or NULL */
    const ifd_activation *activation; /* fused epilogue, never NULL (kind NONE when none) */
    struct ifd_exec_frame *frame;   /* runtime internals; use the functions below */
    int node_index;
};

/* The buffer for output i with the given type and shape (contents uninitialized). When the
 * node omits output i, *out is still a valid buffer whose contents are discarded; check
 * ifd_kernel_output_wanted() to skip computing it. */
ifd_status ifd_kernel_output(ifd_kernel_ctx *ctx, int index, ifd_dtype dtype, int rank,
                             const int64_t *dims, ifd_tensor **out);
/* Whether output i is used (present in the node). */
bool ifd_kernel_output_wanted(const ifd_kernel_ctx *ctx, int index);
/* Scratch memory valid until the kernel returns, 64-byte aligned; NULL when out of memory.
 * Each call returns a separate piece (calls may be made any number of times); all of it is
 * released when the kernel returns. After the first run the pieces come from one arena. */
void *ifd_kernel_scratch(ifd_kernel_ctx *ctx, size_t bytes);
/* Run a subgraph attribute of this node (If/Loop/Scan): inputs bound in order to the
 * subgraph's inputs, outer-scope names resolved from the current frame. outputs[j] receives
 * a new tensor the caller frees with ifd_tensor_free. */
ifd_status ifd_kernel_run_subgraph(ifd_kernel_ctx *ctx, const ifd_graph *graph, int n_inputs,
                                   const ifd_tensor *const *inputs, int n_outputs,
                                   ifd_tensor **outputs);

/* Load-time hook: validate attributes and constant inputs, precompute (e.g. pack weights).
 * constants[i] is the input's data when it is an initializer or was folded to a constant,
 * else NULL. Set *state for run() to read; release() frees it. */
typedef struct ifd_prepare_ctx {
    const ifd_node *node;
    int opset;
    int n_inputs;
    const ifd_tensor *const *constants;
    const ifd_value_type *const *input_types; /* static types; entries may be NULL */
    const ifd_activation *activation;
    void *state;
} ifd_prepare_ctx;

typedef ifd_status (*ifd_op_run_fn)(ifd_kernel_ctx *ctx);
typedef ifd_status (*ifd_op_prepare_fn)(ifd_prepare_ctx *ctx);
typedef void (*ifd_op_release_fn)(void *state);

enum {
    IFD_OP_FUSES_ACTIVATION = 1u << 0, /* run() honours ctx->activation */
    IFD_OP_NO_CONSTANT_FOLD = 1u << 1, /* never fold (nondeterministic or control flow) */
    /* run() handles string tensors (IFD_DTYPE_STRING) in every input and output it accepts:
     * it moves string elements only through ifd_tensor_copy_strings/ifd_tensor_set_string and
     * never reads the element array as numbers. The runtime refuses a string input to, or a
     * string output from, an operator without this flag (session.c), so no other kernel ever
     * sees one. */
    IFD_OP_STRINGS = 1u << 2,
};

typedef struct ifd_op_def {
    const char *domain;   /* "" for ai.onnx */
    const char *name;     /* op_type */
    int since;            /* first opset version where the operator exists */
    ifd_op_run_fn run;
    ifd_op_prepare_fn prepare; /* optional */
    ifd_op_release_fn release; /* optional */
    unsigned flags;
} ifd_op_def;

/* Lookup used by the loader: NULL when unknown. */
const ifd_op_def *ifd_op_find(const char *domain, const char *name);
/* Iterate all registered operators (for docs/OPERATORS.md). */
size_t ifd_op_count(void);
const ifd_op_def *ifd_op_at(size_t index);

/* ---- string kernels shared with other families (ops/strings.c) ----------------------------- */
/* Equal of two string tensors (bool output, broadcast). */
ifd_status ifd_string_equal(ifd_kernel_ctx *ctx);
/* Where with string X and Y. */
ifd_status ifd_string_where(ifd_kernel_ctx *ctx);
/* Cast when the input or the target type `to` is a string. */
ifd_status ifd_string_cast(ifd_kernel_ctx *ctx, ifd_dtype to);

/* ---- helpers every family uses (ops/common.c) -------------------------------------------- */

/* Load-time crossover measurements (dense vs sparse weights, matmul.c and conv.c). */
/* Activations of either sign and never zero (zeros are free in neither kernel), deterministic. */
void ifd_fill_probe_input(float *x, size_t n);
/* Best-of times of a and b called alternately (so a noisy neighbour hurts both), the first call
 * of each not counted (it warms caches and pages): at most 6 rounds, stopping after min_rounds
 * once budget_s seconds are spent. */
void ifd_time_alternating(void (*a)(void *), void (*b)(void *), void *arg, int min_rounds,
                          double budget_s, double *t_a, double *t_b);

/* NumPy-style broadcast of two shapes; fails with IFD_ERR_SHAPE naming both shapes. */
ifd_status ifd_broadcast_shape(int rank_a, const int64_t *a, int rank_b, const int64_t *b,
                               int *rank_out, int64_t *out);
/* Normalize an axis in [-rank, rank) to [0, rank); error names the node. */
ifd_status ifd_normalize_axis(const ifd_kernel_ctx *ctx, int64_t axis, int rank, int *out);
/* Read element i of an integer tensor (any int dtype) as int64. */
int64_t ifd_tensor_get_i64(const ifd_tensor *t, int64_t i);
/* Read element i of a float/int tensor as double (float16/bfloat16 converted). */
double ifd_tensor_get_f64(const ifd_tensor *t, int64_t i);
/* The auto_pad attribute of Conv/ConvTranspose/pooling ops ("NOTSET" when absent). */
enum { IFD_AUTO_PAD_NOTSET = 0, IFD_AUTO_PAD_SAME_UPPER = 1, IFD_AUTO_PAD_SAME_LOWER = 2,
       IFD_AUTO_PAD_VALID = 3 };
ifd_status ifd_parse_auto_pad(const ifd_kernel_ctx *ctx, int *out);
/* List attribute of exactly n values, or dflt everywhere when absent or empty; *present (may
 * be NULL) says whether it was given. */
ifd_status ifd_attr_ints_n(const ifd_kernel_ctx *ctx, const char *name, int n, int64_t dflt,
                           int64_t *out, bool *present);
/* Error helper that prefixes node name and op type. */
ifd_status ifd_kernel_error(const ifd_kernel_ctx *ctx, ifd_status status, const char *fmt, ...)
    IFD_PRINTF(3, 4);
/* *es = the element size of dtype; IFD_ERR_UNSUPPORTED naming the type when it has none. */
ifd_status ifd_kernel_elem_size(const ifd_kernel_ctx *ctx, ifd_dtype dtype, size_t *es);
/* For kernels that move whole elements without looking at them (IFD_OP_STRINGS data movement):
 * *es = the element size of dtype, for IFD_DTYPE_STRING the size of one ifd_string. Such a
 * kernel moves string elements as opaque structs and must call ifd_kernel_finish_move() on
 * every output it filled that way, straight after the move, before anything can fail. */
ifd_status ifd_kernel_move_size(const ifd_kernel_ctx *ctx, ifd_dtype dtype, size_t *es);
/* For a string output filled by moving ifd_string structs: give every element its own copy
 * of its bytes (ifd_tensor_strings_unshare). No-op for other types and for NULL. */
ifd_status ifd_kernel_finish_move(const ifd_kernel_ctx *ctx, ifd_tensor *y);
/* Require input i present with one of the given dtypes... (convenience). */
ifd_status ifd_kernel_require_input(const ifd_kernel_ctx *ctx, int index);

/* Scratch for count elements of elem bytes each, 64-byte aligned (ifd_kernel_scratch with the
 * size checked). On failure: NULL, with *st set to an error naming the node (IFD_ERR_TOO_BIG
 * when the size overflows, IFD_ERR_NO_MEMORY when memory runs out). While *st already holds an
 * error it returns NULL and asks for nothing, so several requests can share one check:
 *     float *a = ifd_kernel_scratch_array(ctx, n, sizeof(float), &st);
 *     int64_t *b = ifd_kernel_scratch_array(ctx, m, sizeof(int64_t), &st);
 *     if (st) return st; */
void *ifd_kernel_scratch_array(ifd_kernel_ctx *ctx, size_t count, size_t elem, ifd_status *st);

/* FLOAT, DOUBLE, FLOAT16 or BFLOAT16: the types the float kernels compute on (ifd_dtype_is_float
 * also counts the 8- and 4-bit formats). */
bool ifd_dtype_is_std_float(ifd_dtype dtype);

/* dst[0..n) = src[0..n) as float, src of type FLOAT, FLOAT16, BFLOAT16 or DOUBLE (the half types
 * vectorized); and back (round to nearest even). Other types are left untouched. */
void ifd_load_f32(ifd_dtype dtype, const void *src, float *dst, int64_t n);
void ifd_store_f32(ifd_dtype dtype, const float *src, void *dst, int64_t n);

/* memcpy split over the pool when large (nothing when dst == src). */
void ifd_parallel_memcpy(ifd_thread_pool *pool, void *dst, const void *src, size_t bytes);

/* Copy the strided view (dims[rank], byte strides sstr[rank] (0 broadcasts, negative walks
 * backwards), first element at src) into the contiguous buffer dst, memcpy for contiguous
 * runs, split over the pool. rank <= 2 * IFD_MAX_RANK. The caller has checked the view stays
 * inside the source. (ops/transform.c) */
void ifd_copy_strided(ifd_thread_pool *pool, size_t es, int rank, const int64_t *dims,
                      const int64_t *sstr, const void *src, void *dst);

/* float16 / bfloat16 <-> float32 (round to nearest even). */
float ifd_fp16_to_f32(uint16_t h);
uint16_t ifd_f32_to_fp16(float f);
float ifd_bf16_to_f32(uint16_t h);
uint16_t ifd_f32_to_bf16(float f);

/* Element i of a FLOAT, DOUBLE, FLOAT16 or BFLOAT16 array as double; 0 for other types. */
static inline double ifd_load_f64(const void *p, ifd_dtype dtype, int64_t i) {
    switch (dtype) {
    case IFD_DTYPE_FLOAT: return ((const float *)p)[i];
    case IFD_DTYPE_DOUBLE: return ((const double *)p)[i];
    case IFD_DTYPE_FLOAT16: return ifd_fp16_to_f32(((const uint16_t *)p)[i]);
    case IFD_DTYPE_BFLOAT16: return ifd_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return 0.0;
    }
}

/* Store v into element i of an array of a numeric dtype (p need not be aligned): float types
 * round, integers truncate toward zero through int64 (as NumPy's astype; sub-byte types one per
 * byte), bool is v != 0. Other types get zero bytes. */
static inline void ifd_store_f64(void *p, ifd_dtype dtype, int64_t i, double v) {
#define IFD_STORE_AS(T, x)                                                                        \
    do {                                                                                          \
        T t_ = (x);                                                                               \
        memcpy((char *)p + (size_t)i * sizeof(T), &t_, sizeof(T));                                \
    } while (0)
    switch (dtype) {
    case IFD_DTYPE_FLOAT: IFD_STORE_AS(float, (float)v); break;
    case IFD_DTYPE_DOUBLE: IFD_STORE_AS(double, v); break;
    case IFD_DTYPE_FLOAT16: IFD_STORE_AS(uint16_t, ifd_f32_to_fp16((float)v)); break;
    case IFD_DTYPE_BFLOAT16: IFD_STORE_AS(uint16_t, ifd_f32_to_bf16((float)v)); break;
    case IFD_DTYPE_INT8: case IFD_DTYPE_INT4: case IFD_DTYPE_INT2:
        IFD_STORE_AS(int8_t, (int8_t)(int64_t)v); break;
    case IFD_DTYPE_UINT8: case IFD_DTYPE_UINT4: case IFD_DTYPE_UINT2:
        IFD_STORE_AS(uint8_t, (uint8_t)(int64_t)v); break;
    case IFD_DTYPE_INT16: IFD_STORE_AS(int16_t, (int16_t)(int64_t)v); break;
    case IFD_DTYPE_UINT16: IFD_STORE_AS(uint16_t, (uint16_t)(int64_t)v); break;
    case IFD_DTYPE_INT32: IFD_STORE_AS(int32_t, (int32_t)(int64_t)v); break;
    case IFD_DTYPE_UINT32: IFD_STORE_AS(uint32_t, (uint32_t)(int64_t)v); break;
    case IFD_DTYPE_INT64: IFD_STORE_AS(int64_t, (int64_t)v); break;
    case IFD_DTYPE_UINT64:
        IFD_STORE_AS(uint64_t, v >= 0 ? (uint64_t)v : (uint64_t)(int64_t)v); break;
    case IFD_DTYPE_BOOL: IFD_STORE_AS(uint8_t, v != 0.0); break;
    default: {
        size_t es = ifd_dtype_size(dtype);
        memset((char *)p + (size_t)i * es, 0, es);
        break;
    }
    }
#undef IFD_STORE_AS
}

#endif
