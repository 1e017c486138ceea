/* onnx/: ModelProto -> IR. The loaded model is immutable and shared by its sessions. */
#ifndef IFD_ONNX_MODEL_H
#define IFD_ONNX_MODEL_H

#include "graph/graph.h"

/* Deepest If/Loop/Scan nesting accepted (a malicious file cannot exhaust the stack). */
#define IFD_MAX_GRAPH_DEPTH 32

typedef struct ifd_opset_entry {
    const char *domain; /* "" for ai.onnx */
    int64_t version;
} ifd_opset_entry;

typedef struct ifd_op_kind_count {
    const char *domain;
    const char *op_type;
    size_t count;
} ifd_op_kind_count;

struct ifd_model {
    ifd_arena *arena;   /* every string, array, node and graph of the IR */
    ifd_graph *graph;   /* the main graph, nodes topologically sorted */
    int64_t ir_version;
    const char *producer_name, *producer_version;
    size_t n_opsets;
    ifd_opset_entry opsets[16];
    ifd_tensor **tensors; /* every tensor the model owns (initializers, attribute tensors) */
    size_t n_tensors, cap_tensors;
    ifd_op_kind_count *op_kinds; /* histogram over all graphs */
    size_t n_op_kinds;
    int64_t param_count, param_bytes;
    const char *base_dir; /* folder of the model file (external data), or NULL */
};

/* Decode a serialized onnx.TensorProto into a new tensor. base_dir: folder where external data
 * may live (NULL refuses external data). name_for_errors names the tensor in messages. */
ifd_status ifd_onnx_tensor_from_bytes(const void *data, size_t size, const char *base_dir,
                                      ifd_tensor **out);

#endif
