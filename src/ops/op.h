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

/* ---- helpers every family uses (ops/common.c) -------------------------------------------- */

/* NumPy-style broadcast of two shapes; fails with IFD_ERR_SHAPE naming both shapes. */
ifd_status ifd_broadcast_shape(int rank_a, const int64_t *a, int rank_b, const int64_t *b,
                               int *rank_out, int64_t *out);
/* Normalize an axis in [-rank, rank) to [0, rank); error names the node. */
ifd_status ifd_normalize_axis(const ifd_kernel_ctx *ctx, int64_t axis, int rank, int *out);
/* Read element i of an integer tensor (any int dtype) as int64. */
int64_t ifd_tensor_get_i64(const ifd_tensor *t, int64_t i);
/* Read element i of a float/int tensor as double (float16/bfloat16 converted). */
double ifd_tensor_get_f64(const ifd_tensor *t, int64_t i);
/* Error helper that prefixes node name and op type. */
ifd_status ifd_kernel_error(const ifd_kernel_ctx *ctx, ifd_status status, const char *fmt, ...)
    IFD_PRINTF(3, 4);
/* Require input i present with one of the given dtypes... (convenience). */
ifd_status ifd_kernel_require_input(const ifd_kernel_ctx *ctx, int index);

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

#endif
