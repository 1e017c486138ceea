/* Attribute accessors and value lookup on the immutable IR. */
#include "graph/graph.h"

#include <string.h>

const ifd_attr *ifd_attr_find(const ifd_node *node, const char *name) {
    if (!node || !name) return NULL;
    for (int i = 0; i < node->n_attrs; i++)
        if (node->attrs[i].name && !strcmp(node->attrs[i].name, name)) return &node->attrs[i];
    return NULL;
}

bool ifd_attr_has(const ifd_node *node, const char *name) {
    return ifd_attr_find(node, name) != NULL;
}

int64_t ifd_attr_int(const ifd_node *node, const char *name, int64_t dflt) {
    const ifd_attr *a = ifd_attr_find(node, name);
    if (!a) return dflt;
    if (a->type == IFD_ATTR_INT) return a->i;
    if (a->type == IFD_ATTR_FLOAT) return (int64_t)a->f;
    return dflt;
}

float ifd_attr_float(const ifd_node *node, const char *name, float dflt) {
    const ifd_attr *a = ifd_attr_find(node, name);
    if (!a) return dflt;
    if (a->type == IFD_ATTR_FLOAT) return a->f;
    if (a->type == IFD_ATTR_INT) return (float)a->i;
    return dflt;
}

const char *ifd_attr_string(const ifd_node *node, const char *name, const char *dflt) {
    const ifd_attr *a = ifd_attr_find(node, name);
    if (!a || a->type != IFD_ATTR_STRING || !a->s) return dflt;
    return a->s;
}

const int64_t *ifd_attr_ints(const ifd_node *node, const char *name, size_t *count) {
    const ifd_attr *a = ifd_attr_find(node, name);
    if (!a || a->type != IFD_ATTR_INTS) {
        if (count) *count = 0;
        return NULL;
    }
    if (count) *count = a->n;
    return a->ints;
}

const float *ifd_attr_floats(const ifd_node *node, const char *name, size_t *count) {
    const ifd_attr *a = ifd_attr_find(node, name);
    if (!a || a->type != IFD_ATTR_FLOATS) {
        if (count) *count = 0;
        return NULL;
    }
    if (count) *count = a->n;
    return a->floats;
}

const ifd_tensor *ifd_attr_tensor(const ifd_node *node, const char *name) {
    const ifd_attr *a = ifd_attr_find(node, name);
    if (!a || (a->type != IFD_ATTR_TENSOR && a->type != IFD_ATTR_SPARSE_TENSOR)) return NULL;
    return a->t;
}

const ifd_graph *ifd_attr_graph(const ifd_node *node, const char *name) {
    const ifd_attr *a = ifd_attr_find(node, name);
    if (!a || a->type != IFD_ATTR_GRAPH) return NULL;
    return a->g;
}

int ifd_graph_find_value(const ifd_graph *graph, const char *name) {
    if (!graph || !name) return -1;
    for (int i = 0; i < graph->n_values; i++)
        if (!strcmp(graph->values[i].name, name)) return i;
    return -1;
}
