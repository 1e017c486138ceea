/* onnx/ internals shared by loader.c, tensorproto.c and graph/validate.c (not public). */
#ifndef IFD_ONNX_INTERNAL_H
#define IFD_ONNX_INTERNAL_H

#include "onnx/model.h"

#include <onnx.pb-c.h>

/* Largest model file accepted (protobuf-c sizes are size_t, but a model this large is not a
 * model we can hold twice in memory). */
#define IFD_MAX_MODEL_BYTES ((size_t)4 << 30)

/* protobuf-c allocator routed through the accounted allocator. */
extern ProtobufCAllocator ifd_pb_allocator;
/* Whether an allocation through ifd_pb_allocator failed since the last call (and reset). */
bool ifd_pb_alloc_failed_take(void);

/* Walk the protobuf wire format of a message of type `desc` iteratively and fail (without
 * recursing) when messages nest deeper than max_depth, or when the bytes are malformed.
 * protobuf-c's unpack recurses once per nested message, so this runs before it. */
ifd_status ifd_pb_check_nesting(const void *data, size_t size,
                                const ProtobufCMessageDescriptor *desc, int max_depth,
                                const char *what);

/* TensorProto -> new tensor. base_dir: folder for external data (NULL refuses it).
 * what: names the tensor in error messages ("initializer 'w'"). */
ifd_status ifd_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const char *base_dir,
                                      const char *what, ifd_tensor **out);
/* Same, but may take over tp's raw_data buffer instead of copying it (tp must not be decoded
 * again). */
ifd_status ifd_onnx_tensor_take_proto(Onnx__TensorProto *tp, const char *base_dir,
                                      const char *what, ifd_tensor **out);
/* SparseTensorProto -> new dense tensor. */
ifd_status ifd_onnx_tensor_from_sparse(const Onnx__SparseTensorProto *sp, const char *base_dir,
                                       const char *what, ifd_tensor **out);

/* Validation of a built graph (graph/validate.c): topological sort of g->nodes (remapping
 * producers), cycle detection, operator resolution checks, graph outputs produced.
 * Recurses into subgraph attributes. */
ifd_status ifd_graph_validate(ifd_graph *g);

#endif
