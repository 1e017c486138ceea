/* Graph validation: operator resolution and opset checks, topological sort (Kahn, stable:
 * among ready nodes the earliest in file order goes first) with cycle detection, outputs
 * produced. A node's dependencies include the values its subgraphs read from this graph. */
#include "onnx/onnx_internal.h"
#include "ops/op.h"

#include <string.h>

typedef struct name_index {
    const ifd_graph *g;
    int *slots;
    size_t mask;
} name_index;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static ifd_status index_build(name_index *ix, const ifd_graph *g) {
    size_t n = 16;
    while (n < (size_t)g->n_values * 2) n *= 2;
    ix->g = g;
    ix->mask = n - 1;
    ix->slots = ifd_malloc(n * sizeof(int));
    if (!ix->slots) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory validating graph");
    for (size_t i = 0; i < n; i++) ix->slots[i] = -1;
    for (int v = 0; v < g->n_values; v++) {
        size_t i = (size_t)hash_str(g->values[v].name) & ix->mask;
        while (ix->slots[i] >= 0) i = (i + 1) & ix->mask;
        ix->slots[i] = v;
    }
    return IFD_OK;
}

static int index_find(const name_index *ix, const char *name) {
    for (size_t i = (size_t)hash_str(name) & ix->mask;; i = (i + 1) & ix->mask) {
        int v = ix->slots[i];
        if (v < 0) return -1;
        if (!strcmp(ix->g->values[v].name, name)) return v;
    }
}

/* Dependency edges of node i: call fn(producer) for each producing node in g. */
typedef struct dep_sink {
    int *counts; /* per producer: number of consumers (CSR sizing), or NULL */
    int *adj, *fill, *start;
    int consumer;
    int *indeg;
    bool unsorted; /* check mode (counts and adj NULL): a producer at or after the consumer */
} dep_sink;

static void sink_edge(dep_sink *s, int producer) {
    if (producer < 0) return;
    if (!s->counts && !s->adj) {
        if (producer >= s->consumer) s->unsorted = true;
    } else if (s->counts) {
        s->counts[producer]++;
    } else {
        s->adj[s->start[producer] + s->fill[producer]++] = s->consumer;
        s->indeg[s->consumer]++;
    }
}

static void subgraph_deps(const name_index *ix, const ifd_graph *sub, dep_sink *s) {
    for (int v = 0; v < sub->n_values; v++) {
        if (sub->values[v].kind != IFD_VALUE_OUTER) continue;
        int p = index_find(ix, sub->values[v].name);
        if (p >= 0) sink_edge(s, ix->g->values[p].producer);
    }
}

static void node_deps(const name_index *ix, const ifd_node *n, dep_sink *s) {
    const ifd_graph *g = ix->g;
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0) sink_edge(s, g->values[n->inputs[j]].producer);
    for (int a = 0; a < n->n_attrs; a++) {
        const ifd_attr *at = &n->attrs[a];
        if (at->type == IFD_ATTR_GRAPH && at->g) subgraph_deps(ix, at->g, s);
        if (at->type == IFD_ATTR_GRAPHS)
            for (size_t k = 0; k < at->n; k++) subgraph_deps(ix, at->graphs[k], s);
    }
}

static void heap_push(int *h, int *n, int v) {
    int i = (*n)++;
    h[i] = v;
    while (i > 0 && h[(i - 1) / 2] > h[i]) {
        int p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static int heap_pop(int *h, int *n) {
    int top = h[0];
    h[0] = h[--(*n)];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m]) m = l;
        if (r < *n && h[r] < h[m]) m = r;
        if (m == i) break;
        int t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
    return top;
}

static ifd_status check_ops(const ifd_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const ifd_node *n = &g->nodes[i];
        if (!n->op)
            return ifd_error(IFD_ERR_UNSUPPORTED, "node '%s': unknown operator '%s:%s'", n->name,
                             *n->domain ? n->domain : "ai.onnx", n->op_type);
        if (n->opset <= 0)
            return ifd_error(IFD_ERR_CORRUPT_MODEL,
                             "node '%s' (%s): the model imports no opset for domain '%s'",
                             n->name, n->op_type, *n->domain ? n->domain : "ai.onnx");
        if (!*n->domain && n->opset > IFD_MAX_OPSET)
            return ifd_error(IFD_ERR_UNSUPPORTED,
                             "node '%s' (%s): opset %d is newer than the supported %d", n->name,
                             n->op_type, n->opset, IFD_MAX_OPSET);
        if (n->opset < n->op->since)
            return ifd_error(IFD_ERR_CORRUPT_MODEL,
                             "node '%s': operator '%s' exists since opset %d, the model imports "
                             "opset %d",
                             n->name, n->op_type, n->op->since, n->opset);
    }
    return IFD_OK;
}

static ifd_status topo_sort(ifd_graph *g) {
    int n = g->n_nodes;
    ifd_status st = IFD_OK;
    name_index ix = {0};
    int *counts = NULL, *start = NULL, *fill = NULL, *adj = NULL, *indeg = NULL, *heap = NULL,
        *order = NULL, *newpos = NULL;
    ifd_node *tmp = NULL;
    if (n == 0) return IFD_OK;
    if ((st = index_build(&ix, g))) return st;
    size_t nn = (size_t)n + 1;
    counts = ifd_calloc(nn, sizeof(int));
    start = ifd_calloc(nn, sizeof(int));
    fill = ifd_calloc(nn, sizeof(int));
    indeg = ifd_calloc(nn, sizeof(int));
    heap = ifd_calloc(nn, sizeof(int));
    order = ifd_calloc(nn, sizeof(int));
    newpos = ifd_calloc(nn, sizeof(int));
    if (!counts || !start || !fill || !indeg || !heap || !order || !newpos) goto nomem;

    /* Fast path: already in order (every dependency produced earlier). */
    bool sorted = true;
    for (int i = 0; i < n && sorted; i++) {
        dep_sink s = {NULL, NULL, NULL, NULL, i, NULL, false};
        node_deps(&ix, &g->nodes[i], &s);
        sorted = !s.unsorted;
    }
    if (sorted) goto out;

    memset(counts, 0, nn * sizeof(int));
    for (int i = 0; i < n; i++) {
        dep_sink s = {counts, NULL, NULL, NULL, i, NULL, false};
        node_deps(&ix, &g->nodes[i], &s);
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (total > (size_t)INT32_MAX) {
            st = ifd_error(IFD_ERR_TOO_BIG, "graph '%s' has too many edges", g->name);
            goto out;
        }
        start[i] = (int)total;
        total += (size_t)counts[i];
    }
    adj = ifd_malloc((total + 1) * sizeof(int));
    if (!adj) goto nomem;
    for (int i = 0; i < n; i++) {
        dep_sink s = {NULL, adj, fill, start, i, indeg, false};
        node_deps(&ix, &g->nodes[i], &s);
    }
    int hn = 0, done = 0;
    for (int i = 0; i < n; i++)
        if (indeg[i] == 0) heap_push(heap, &hn, i);
    while (hn > 0) {
        int v = heap_pop(heap, &hn);
        order[done++] = v;
        for (int e = start[v]; e < start[v] + counts[v]; e++)
            if (--indeg[adj[e]] == 0) heap_push(heap, &hn, adj[e]);
    }
    if (done < n) {
        int bad = 0;
        while (bad < n && indeg[bad] == 0) bad++;
        st = ifd_error(IFD_ERR_CORRUPT_MODEL,
                       "graph '%s' has a cycle: node '%s' (%s) depends on its own output",
                       g->name, g->nodes[bad].name, g->nodes[bad].op_type);
        goto out;
    }
    tmp = ifd_malloc((size_t)n * sizeof *tmp);
    if (!tmp) goto nomem;
    memcpy(tmp, g->nodes, (size_t)n * sizeof *tmp);
    for (int i = 0; i < n; i++) {
        g->nodes[i] = tmp[order[i]];
        newpos[order[i]] = i;
    }
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].producer >= 0) g->values[v].producer = newpos[g->values[v].producer];
    goto out;
nomem:
    st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory sorting graph '%s'", g->name);
out:
    ifd_free(ix.slots);
    ifd_free(counts);
    ifd_free(start);
    ifd_free(fill);
    ifd_free(adj);
    ifd_free(indeg);
    ifd_free(heap);
    ifd_free(order);
    ifd_free(newpos);
    ifd_free(tmp);
    return st;
}

ifd_status ifd_graph_validate(ifd_graph *g) {
    ifd_status st;
    if (g->depth > IFD_MAX_GRAPH_DEPTH)
        return ifd_error(IFD_ERR_TOO_BIG, "subgraphs nest deeper than %d levels",
                         IFD_MAX_GRAPH_DEPTH);
    if ((st = check_ops(g))) return st;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < 0 || g->outputs[i] >= g->n_values)
            return ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': output %d is not produced",
                             g->name, i);
    /* Subgraphs first: an unknown operator anywhere is reported as such. */
    for (int i = 0; i < g->n_nodes; i++) {
        ifd_node *n = &g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) {
            ifd_attr *at = &n->attrs[a];
            if (at->type == IFD_ATTR_GRAPH && at->g) st = ifd_graph_validate(at->g);
            for (size_t k = 0; !st && at->type == IFD_ATTR_GRAPHS && k < at->n; k++)
                st = ifd_graph_validate(at->graphs[k]);
            if (st)
                return ifd_error_prefix(st, "node '%s' (%s) attribute '%s'", n->name,
                                        n->op_type, at->name);
        }
    }
    return topo_sort(g);
}
