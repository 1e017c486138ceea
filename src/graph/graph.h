/* graph/: the in-memory IR of an ONNX graph (decoded once by onnx/, immutable afterwards),
 * validation, and attribute access.
 *
 * Values are named edges. Every graph has its own value table; a value a subgraph reads from
 * an enclosing graph appears in the subgraph's table with kind IFD_VALUE_OUTER and is bound at
 * run time by name to the enclosing frame. */
#ifndef IFD_GRAPH_H
#define IFD_GRAPH_H

#include "base/base.h"

typedef struct ifd_graph ifd_graph;

/* ONNX AttributeProto.AttributeType values. */
typedef enum ifd_attr_type {
    IFD_ATTR_UNDEFINED = 0,
    IFD_ATTR_FLOAT = 1,
    IFD_ATTR_INT = 2,
    IFD_ATTR_STRING = 3,
    IFD_ATTR_TENSOR = 4,
    IFD_ATTR_GRAPH = 5,
    IFD_ATTR_FLOATS = 6,
    IFD_ATTR_INTS = 7,
    IFD_ATTR_STRINGS = 8,
    IFD_ATTR_TENSORS = 9,
    IFD_ATTR_GRAPHS = 10,
    IFD_ATTR_SPARSE_TENSOR = 11,
    IFD_ATTR_SPARSE_TENSORS = 12,
    IFD_ATTR_TYPE_PROTO = 13,
    IFD_ATTR_TYPE_PROTOS = 14,
} ifd_attr_type;

typedef struct ifd_attr {
    const char *name;
    ifd_attr_type type;
    float f;
    int64_t i;
    const char *s; /* STRING: bytes, NUL-terminated; length in s_len */
    size_t s_len;
    ifd_tensor *t;        /* TENSOR (and SPARSE_TENSOR, densified) */
    ifd_graph *g;         /* GRAPH */
    size_t n;             /* element count of the list below */
    float *floats;        /* FLOATS */
    int64_t *ints;        /* INTS */
    const char **strings; /* STRINGS */
    ifd_tensor **tensors; /* TENSORS */
    ifd_graph **graphs;   /* GRAPHS */
} ifd_attr;

typedef enum ifd_value_kind {
    IFD_VALUE_NODE_OUTPUT = 0,
    IFD_VALUE_INPUT,       /* graph input (not an initializer) */
    IFD_VALUE_INITIALIZER, /* constant; may also be listed as a graph input (old IR) */
    IFD_VALUE_OUTER,       /* read from an enclosing graph's scope */
} ifd_value_kind;

/* A value's static type: dtype 0 and rank -1 when unknown; dims[i] < 0 when symbolic. */
typedef struct ifd_value_type {
    ifd_dtype dtype;
    int rank;
    int64_t dims[IFD_MAX_RANK];
    const char *dim_names[IFD_MAX_RANK];
} ifd_value_type;

typedef struct ifd_value {
    const char *name;
    ifd_value_kind kind;
    ifd_value_type type;
    const ifd_tensor *constant; /* INITIALIZER: the data */
    bool overridable;           /* initializer also listed as graph input: a caller may feed it */
    int producer;               /* index of the producing node, or -1 */
} ifd_value;

struct ifd_op_def;

typedef struct ifd_node {
    const char *name; /* may be "" in the file; the loader fills "<op_type>_<index>" */
    const char *op_type;
    const char *domain; /* "" for the default ai.onnx domain */
    int opset;          /* the model's opset version for this node's domain */
    int n_inputs, n_outputs;
    int *inputs;  /* value index, or -1 for an omitted optional input */
    int *outputs; /* value index, or -1 for an omitted optional output */
    int n_attrs;
    ifd_attr *attrs;
    const struct ifd_op_def *op; /* resolved operator */
} ifd_node;

struct ifd_graph {
    const char *name;
    const ifd_graph *parent; /* enclosing graph for subgraphs */
    int n_values;
    ifd_value *values;
    int n_nodes;
    ifd_node *nodes;  /* in topological order after validation */
    int n_inputs;     /* graph inputs a caller binds (initializers excluded unless overridable) */
    int *inputs;
    int n_outputs;
    int *outputs;
    int depth;        /* nesting depth (0 = main graph) */
};

/* Attribute lookup by name; NULL when absent. */
const ifd_attr *ifd_attr_find(const ifd_node *node, const char *name);
bool ifd_attr_has(const ifd_node *node, const char *name);
int64_t ifd_attr_int(const ifd_node *node, const char *name, int64_t dflt);
float ifd_attr_float(const ifd_node *node, const char *name, float dflt);
const char *ifd_attr_string(const ifd_node *node, const char *name, const char *dflt);
/* List attributes: pointer and count, or NULL and 0 when absent. */
const int64_t *ifd_attr_ints(const ifd_node *node, const char *name, size_t *count);
const float *ifd_attr_floats(const ifd_node *node, const char *name, size_t *count);
const ifd_tensor *ifd_attr_tensor(const ifd_node *node, const char *name);
const ifd_graph *ifd_attr_graph(const ifd_node *node, const char *name);

/* Value index by name in this graph only; -1 when absent. */
int ifd_graph_find_value(const ifd_graph *graph, const char *name);

#endif
