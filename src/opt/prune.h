/* opt/prune: magnitude pruning of a float ONNX model (docs/PRUNE.md).
 *
 *   unstructured  zero the smallest-|w| fraction S of every prunable weight (MatMul/Gemm
 *                 constant 2-D weights, Conv weights), per layer or over all of them
 *                 together (global scope). The layout stays dense: ONNX has no sparse weight
 *                 format that runtimes execute, so the file compresses but does not shrink;
 *                 inferd's MatMul/Gemm pick a sparse kernel at load where it measures faster.
 *   2:4           in every group of 4 consecutive weights along the reduction axis keep the 2
 *                 largest (50% sparsity, regular).
 *   channel       remove the fraction S of output channels (Conv filters, Gemm/MatMul output
 *                 features) with the smallest L1 norm, and rewrite what consumes them (the
 *                 next Conv's input channels, BatchNormalization statistics, per-channel
 *                 constants, the next Gemm/MatMul's input features, through Flatten), so the
 *                 file and the FLOPs shrink. A layer whose output reaches anything that
 *                 cannot be rewritten safely (a residual Add of two branches, Concat,
 *                 Reshape, a graph output, a grouped Conv...) is left alone, with the reason.
 * The output is written as OUT.tmp then renamed; on any error nothing is left behind. */
#ifndef IFD_OPT_PRUNE_H
#define IFD_OPT_PRUNE_H

#include "inferd/inferd.h"

#include <stdbool.h>

typedef enum ifd_prune_pattern {
    IFD_PRUNE_UNSTRUCTURED,
    IFD_PRUNE_2_4,
    IFD_PRUNE_CHANNEL
} ifd_prune_pattern;

typedef enum ifd_prune_scope { IFD_PRUNE_SCOPE_LAYER, IFD_PRUNE_SCOPE_GLOBAL } ifd_prune_scope;

typedef struct ifd_prune_options {
    double sparsity;            /* in (0, 1); 2:4 takes 0.5 (or 0: not given) */
    ifd_prune_pattern pattern;  /* default unstructured */
    ifd_prune_scope scope;      /* default layer (unstructured only) */
    size_t n_exclude;           /* node names left alone; each must exist */
    const char *const *exclude;
} ifd_prune_options;

void ifd_prune_options_init(ifd_prune_options *o);

/* One MatMul/Gemm/Conv node with a constant weight. */
typedef struct ifd_prune_layer {
    char *name;
    char *op_type;
    char *weight;            /* initializer name */
    bool pruned;
    char *reason;            /* why not (NULL when pruned) */
    int64_t params_before;   /* elements of the weight */
    int64_t params_after;
    int64_t nonzero_before;
    int64_t nonzero_after;
    int64_t channels_before; /* output channels (channel pattern) */
    int64_t channels_after;
} ifd_prune_layer;

typedef struct ifd_prune_result {
    size_t n_layers;
    ifd_prune_layer *layers;
    size_t n_pruned;
    /* every float initializer of the model */
    int64_t params_before, params_after;
    int64_t nonzero_before, nonzero_after;
    size_t bytes_in, bytes_out;
} ifd_prune_result;

/* Prune in_path into out_path. *result (may be NULL) receives what was done, also on some
 * failures (then it may be partial); free it with ifd_prune_result_free. */
ifd_status ifd_prune_file(const char *in_path, const char *out_path,
                          const ifd_prune_options *options, ifd_prune_result **result);
void ifd_prune_result_free(ifd_prune_result *r);

#endif
