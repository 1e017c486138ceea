/* opt/onnx_edit: read an ONNX ModelProto, change it, write it back (shared by quantize and
 * prune).
 *
 * The model is held as protobuf-c's decoded ModelProto; callers read and change its fields
 * directly (e->graph->node[i]->input[j] ...). Everything hung into the message must be
 * allocated through the accounted allocator (ifd_malloc, or the helpers here), because
 * ifd_onnx_edit_free hands the whole tree to protobuf-c's free with that allocator.
 *
 *     ifd_onnx_edit *e;
 *     ifd_onnx_edit_load_file("in.onnx", &e);          // refuses external data
 *     char *name = ifd_onnx_edit_unique_name(e, "w", "_quantized");
 *     ifd_onnx_edit_add_initializer(e, name, tensor);   // copies the tensor's bytes
 *     Onnx__NodeProto *n = ifd_onnx_edit_append_node(e, "DequantizeLinear", name_of_node,
 *                                                    3, ins, 1, outs);
 *     ifd_onnx_edit_set_attr_int(n, "axis", 0);
 *     ifd_onnx_edit_remove_unused_initializers(e);
 *     ifd_onnx_edit_topo_sort(e);                        // appended nodes move into place
 *     ifd_onnx_edit_write_file(e, "out.onnx");           // OUT.tmp, then rename
 *     ifd_onnx_edit_free(e);
 *
 * Only the main graph is edited; subgraphs (If/Loop/Scan bodies) are kept as they are, and
 * the names they use from the outer scope count as dependencies when sorting. */
#ifndef IFD_OPT_ONNX_EDIT_H
#define IFD_OPT_ONNX_EDIT_H

#include "base/base.h"

#include <onnx.pb-c.h>

typedef struct ifd_onnx_edit {
    Onnx__ModelProto *model;
    Onnx__GraphProto *graph; /* model->graph, never NULL */
    struct ifd_onnx_name_set *names; /* every name in use (values, nodes), for unique_name */
} ifd_onnx_edit;

/* Decode a model. Fails on a file that is not a ModelProto, on a model without a graph, and
 * on initializers (or Constant tensors) stored as external data, naming the tensor. */
ifd_status ifd_onnx_edit_load_file(const char *path, ifd_onnx_edit **out);
ifd_status ifd_onnx_edit_load_memory(const void *data, size_t size, ifd_onnx_edit **out);
/* An independent deep copy (pack + decode). */
ifd_status ifd_onnx_edit_clone(const ifd_onnx_edit *e, ifd_onnx_edit **out);
void ifd_onnx_edit_free(ifd_onnx_edit *e);

/* Serialize: *data is ifd_malloc'd (caller frees with ifd_free). */
ifd_status ifd_onnx_edit_pack(const ifd_onnx_edit *e, void **data, size_t *size);
/* Write to PATH.tmp, then rename to PATH; on failure nothing is left at either name. */
ifd_status ifd_onnx_edit_write_file(const ifd_onnx_edit *e, const char *path);

/* Opset of a domain ("" or "ai.onnx" for the default one); -1 when not imported. */
int64_t ifd_onnx_edit_opset(const ifd_onnx_edit *e, const char *domain);
ifd_status ifd_onnx_edit_set_opset(ifd_onnx_edit *e, const char *domain, int64_t version);

/* ---- lookups (linear scans: fine for the graph sizes ONNX files have) ---------------- */
Onnx__TensorProto *ifd_onnx_edit_initializer(const ifd_onnx_edit *e, const char *name);
/* A constant: an initializer that is not also a graph input (those can be overridden). */
Onnx__TensorProto *ifd_onnx_edit_constant(const ifd_onnx_edit *e, const char *name);
bool ifd_onnx_edit_is_graph_input(const ifd_onnx_edit *e, const char *name);
bool ifd_onnx_edit_is_graph_output(const ifd_onnx_edit *e, const char *name);
/* Index of the main-graph node producing `name`, or -1 (graph input, initializer, unknown). */
long ifd_onnx_edit_producer(const ifd_onnx_edit *e, const char *name);
/* Number of uses of `name` as a node input (subgraph references included). */
size_t ifd_onnx_edit_use_count(const ifd_onnx_edit *e, const char *name);
/* Decode an initializer's data into a new tensor (what: names it in errors). */
ifd_status ifd_onnx_edit_tensor(const Onnx__TensorProto *tp, ifd_tensor **out);

/* ---- attributes ---------------------------------------------------------------------- */
const Onnx__AttributeProto *ifd_onnx_edit_attr(const Onnx__NodeProto *n, const char *name);
int64_t ifd_onnx_edit_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt);
float ifd_onnx_edit_attr_float(const Onnx__NodeProto *n, const char *name, float dflt);
/* Set (replace or add) an attribute. */
ifd_status ifd_onnx_edit_set_attr_int(Onnx__NodeProto *n, const char *name, int64_t v);
ifd_status ifd_onnx_edit_set_attr_ints(Onnx__NodeProto *n, const char *name, size_t count,
                                       const int64_t *v);
ifd_status ifd_onnx_edit_set_attr_float(Onnx__NodeProto *n, const char *name, float v);
ifd_status ifd_onnx_edit_set_attr_string(Onnx__NodeProto *n, const char *name, const char *v);
/* Copy every attribute of `from` to `to` (replacing same-named ones). */
ifd_status ifd_onnx_edit_copy_attrs(Onnx__NodeProto *to, const Onnx__NodeProto *from);

/* ---- changes --------------------------------------------------------------------------- */

/* "BASE" + "SUFFIX", or with "_2", "_3"... appended until no value or node uses the name;
 * the name is then reserved. Returns an ifd_malloc'd string, or NULL when out of memory. */
char *ifd_onnx_edit_unique_name(ifd_onnx_edit *e, const char *base, const char *suffix);
/* Add an initializer holding a copy of t (stored as raw_data, little-endian). */
ifd_status ifd_onnx_edit_add_initializer(ifd_onnx_edit *e, const char *name,
                                         const ifd_tensor *t);
/* A new node at the end of the main graph (ifd_onnx_edit_topo_sort puts it in place).
 * name may be NULL. Empty input names ("") mark omitted optional inputs. Returns NULL when
 * out of memory (the error is recorded). */
Onnx__NodeProto *ifd_onnx_edit_append_node(ifd_onnx_edit *e, const char *op_type,
                                           const char *name, size_t n_inputs,
                                           const char *const *inputs, size_t n_outputs,
                                           const char *const *outputs);
/* Remove main-graph node i (freed; indices after it shift down by one). */
void ifd_onnx_edit_remove_node(ifd_onnx_edit *e, size_t i);
/* Replace input `from` by `to` in every main-graph node, except node `except` (-1: none).
 * Subgraphs and graph outputs keep their references. */
ifd_status ifd_onnx_edit_replace_uses(ifd_onnx_edit *e, const char *from, const char *to,
                                      long except);
/* Add a graph output (a float or other tensor of unknown shape) unless already one. */
ifd_status ifd_onnx_edit_add_output(ifd_onnx_edit *e, const char *name, int32_t elem_type);
/* Drop initializers that nothing uses (no node input, subgraph reference or graph output). */
ifd_status ifd_onnx_edit_remove_unused_initializers(ifd_onnx_edit *e);
/* Order the main graph's nodes so each comes after the producers of its inputs (and of the
 * outer names its subgraphs use), keeping the current order where it already is. Fails on
 * a cycle, naming a node on it. */
ifd_status ifd_onnx_edit_topo_sort(ifd_onnx_edit *e);

#endif
