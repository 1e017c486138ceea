/* Sessions: compile a model's graphs into execution plans and run them.
 *
 * Compile (once, at ifd_session_create):
 *   1. one exec_graph per graph (subgraphs included); slots are the graph's values;
 *   2. constant folding: nodes whose inputs are all constants run once, their outputs become
 *      constants of the session;
 *   3. fusions: Conv+BatchNormalization folded into Conv weights; Relu/Clip/... folded into
 *      the epilogue of Conv/Gemm/MatMul;
 *   4. each kernel's prepare() (weight packing) with its constant inputs;
 *   5. last-use of every slot, for freeing and for the activation plan.
 * Run: nodes in topological order; each output buffer comes from the planned arena when the
 * input shapes match the plan (no malloc), else from the allocator; after a run on new shapes
 * the plan is rebuilt from the observed sizes and lifetimes (first-fit by size). */
#include "runtime/session_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PLAN_ALIGN 64
#define FOLD_MAX_BYTES ((size_t)256 << 20)

/* ---- small helpers --------------------------------------------------------------------- */

static ifd_status oom(const char *what) {
    return ifd_error(IFD_ERR_NO_MEMORY, "out of memory (%s)", what);
}

static ifd_status session_own(ifd_session *s, ifd_tensor *t) {
    if (s->n_owned == s->cap_owned) {
        size_t cap = s->cap_owned ? s->cap_owned * 2 : 16;
        ifd_tensor **n = ifd_realloc(s->owned_tensors, cap * sizeof *n);
        if (!n) return oom("session tensors");
        s->owned_tensors = n;
        s->cap_owned = cap;
    }
    s->owned_tensors[s->n_owned++] = t;
    return IFD_OK;
}

/* ---- compile ------------------------------------------------------------------------------ */

static void exec_graph_free(exec_graph *eg);

static void exec_graph_free_nodes(exec_graph *eg) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->state && en->op && en->op->release) en->op->release(en->state);
        if (en->subgraphs) {
            for (int a = 0; a < en->node->n_attrs; a++) exec_graph_free(en->subgraphs[a]);
            ifd_free(en->subgraphs);
        }
        ifd_free(en->in);
        ifd_free(en->out);
    }
    ifd_free(eg->nodes);
}

static void exec_graph_free(exec_graph *eg) {
    if (!eg) return;
    if (eg->nodes) exec_graph_free_nodes(eg);
    ifd_free(eg->constants);
    ifd_free(eg->last_use);
    ifd_free(eg->def_node);
    ifd_free(eg->outer);
    ifd_free(eg->plan_key);
    ifd_free(eg->plan_offset);
    ifd_free(eg->plan_bytes);
    ifd_free_aligned(eg->arena);
    ifd_free(eg);
}

static ifd_status compile_graph(const ifd_graph *g, exec_graph **out);

static ifd_status compile_node(const ifd_node *node, exec_node *en) {
    en->node = node;
    en->op = node->op;
    en->n_in = node->n_inputs;
    en->n_out = node->n_outputs;
    en->in = ifd_calloc((size_t)(node->n_inputs ? node->n_inputs : 1), sizeof(int));
    en->out = ifd_calloc((size_t)(node->n_outputs ? node->n_outputs : 1), sizeof(int));
    if (!en->in || !en->out) return oom("node plan");
    memcpy(en->in, node->inputs, (size_t)node->n_inputs * sizeof(int));
    memcpy(en->out, node->outputs, (size_t)node->n_outputs * sizeof(int));
    for (int a = 0; a < node->n_attrs; a++) {
        const ifd_attr *at = &node->attrs[a];
        if (at->type != IFD_ATTR_GRAPH) continue;
        if (!en->subgraphs) {
            en->subgraphs = ifd_calloc((size_t)node->n_attrs, sizeof(exec_graph *));
            if (!en->subgraphs) return oom("subgraph plan");
        }
        ifd_status st = compile_graph(at->g, &en->subgraphs[a]);
        if (st) return st;
    }
    if (!en->op)
        return ifd_error(IFD_ERR_UNSUPPORTED, "node '%s': unknown operator '%s'", node->name,
                         node->op_type);
    return IFD_OK;
}

/* Resolve an outer-scope value by name through the enclosing graphs. */
static ifd_status resolve_outer(const ifd_graph *g, const char *name, outer_ref *ref) {
    int up = 0;
    for (const ifd_graph *p = g->parent; p; p = p->parent) {
        up++;
        int v = ifd_graph_find_value(p, name);
        if (v >= 0 && p->values[v].kind != IFD_VALUE_OUTER) {
            ref->up = up;
            ref->slot = v;
            return IFD_OK;
        }
    }
    return ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': outer-scope value '%s' is not defined",
                     g->name ? g->name : "", name);
}

static ifd_status compile_graph(const ifd_graph *g, exec_graph **out) {
    ifd_status st = IFD_OK;
    size_t ns = (size_t)(g->n_values ? g->n_values : 1);
    exec_graph *eg = ifd_calloc(1, sizeof *eg);
    *out = NULL;
    if (!eg) return oom("graph plan");
    eg->graph = g;
    eg->n_slots = g->n_values;
    eg->constants = ifd_calloc(ns, sizeof *eg->constants);
    eg->last_use = ifd_calloc(ns, sizeof *eg->last_use);
    eg->def_node = ifd_calloc(ns, sizeof *eg->def_node);
    eg->outer = ifd_calloc(ns, sizeof *eg->outer);
    eg->plan_offset = ifd_calloc(ns, sizeof *eg->plan_offset);
    eg->plan_bytes = ifd_calloc(ns, sizeof *eg->plan_bytes);
    eg->nodes = ifd_calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *eg->nodes);
    if (!eg->constants || !eg->last_use || !eg->def_node || !eg->outer || !eg->nodes ||
        !eg->plan_offset || !eg->plan_bytes) {
        st = oom("graph plan");
        goto out;
    }
    eg->n_nodes = g->n_nodes;
    for (int v = 0; v < g->n_values; v++) {
        const ifd_value *val = &g->values[v];
        if (val->kind == IFD_VALUE_INITIALIZER) eg->constants[v] = val->constant;
        if (val->kind == IFD_VALUE_OUTER) {
            st = resolve_outer(g, val->name, &eg->outer[v]);
            if (st) goto out;
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        st = compile_node(&g->nodes[i], &eg->nodes[i]);
        if (st) goto out;
    }
    *out = eg;
    eg = NULL;
out:
    exec_graph_free(eg);
    return st;
}

/* Names read from enclosing scopes anywhere inside a node's subgraphs: the node implicitly
 * uses those values of its own graph (they must stay alive until it runs). */
static void mark_implicit_uses(const ifd_graph *owner, const ifd_graph *sub, int node_index,
                               int *last_use, int *uses) {
    for (int v = 0; v < sub->n_values; v++) {
        if (sub->values[v].kind != IFD_VALUE_OUTER) continue;
        int s = ifd_graph_find_value(owner, sub->values[v].name);
        if (s < 0) continue;
        if (last_use && last_use[s] < node_index) last_use[s] = node_index;
        if (uses) uses[s]++;
    }
    for (int n = 0; n < sub->n_nodes; n++)
        for (int a = 0; a < sub->nodes[n].n_attrs; a++)
            if (sub->nodes[n].attrs[a].type == IFD_ATTR_GRAPH)
                mark_implicit_uses(owner, sub->nodes[n].attrs[a].g, node_index, last_use, uses);
}

static void for_each_subgraph_mark(const exec_graph *eg, int i, int *last_use, int *uses) {
    const ifd_node *node = eg->nodes[i].node;
    for (int a = 0; a < node->n_attrs; a++)
        if (node->attrs[a].type == IFD_ATTR_GRAPH)
            mark_implicit_uses(eg->graph, node->attrs[a].g, i, last_use, uses);
}

static void compute_lifetimes(exec_graph *eg) {
    const ifd_graph *g = eg->graph;
    for (int s = 0; s < eg->n_slots; s++) {
        eg->last_use[s] = -1;
        eg->def_node[s] = -1;
    }
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->removed) continue;
        for (int k = 0; k < en->n_out; k++)
            if (en->out[k] >= 0) {
                eg->def_node[en->out[k]] = i;
                if (eg->last_use[en->out[k]] < i) eg->last_use[en->out[k]] = i;
            }
        for (int k = 0; k < en->n_in; k++)
            if (en->in[k] >= 0 && eg->last_use[en->in[k]] < i) eg->last_use[en->in[k]] = i;
        for_each_subgraph_mark(eg, i, eg->last_use, NULL);
    }
    for (int k = 0; k < g->n_outputs; k++) eg->last_use[g->outputs[k]] = INT32_MAX;
}

/* ---- frames ------------------------------------------------------------------------------ */

static void frame_release_values(ifd_exec_frame *f) {
    if (!f->slots || !f->values || !f->owned) return; /* partly created */
    for (int s = 0; s < f->eg->n_slots; s++) {
        if (f->owned[s]) ifd_tensor_free_data(&f->slots[s]);
        f->owned[s] = false;
        f->slots[s].data = NULL;
        f->values[s] = NULL;
    }
}

static void frame_free(ifd_exec_frame *f) {
    if (!f) return;
    frame_release_values(f);
    ifd_free(f->slots);
    ifd_free(f->values);
    ifd_free(f->owned);
    ifd_free(f->observed_bytes);
    ifd_free_aligned(f->scratch);
    ifd_free(f);
}

static ifd_status frame_create(ifd_session *s, exec_graph *eg, ifd_exec_frame *parent,
                               ifd_exec_frame **out) {
    size_t ns = (size_t)(eg->n_slots ? eg->n_slots : 1);
    ifd_exec_frame *f = ifd_calloc(1, sizeof *f);
    *out = NULL;
    if (!f) return oom("frame");
    f->session = s;
    f->eg = eg;
    f->parent = parent;
    f->slots = ifd_calloc(ns, sizeof *f->slots);
    f->values = ifd_calloc(ns, sizeof *f->values);
    f->owned = ifd_calloc(ns, sizeof *f->owned);
    f->observed_bytes = ifd_calloc(ns, sizeof *f->observed_bytes);
    if (!f->slots || !f->values || !f->owned || !f->observed_bytes) {
        frame_free(f);
        return oom("frame");
    }
    *out = f;
    return IFD_OK;
}

/* Constants and outer-scope values of a frame, before its nodes run. */
static ifd_status frame_bind_static(ifd_exec_frame *f) {
    exec_graph *eg = f->eg;
    for (int s = 0; s < eg->n_slots; s++) {
        if (eg->constants[s] && !f->values[s]) f->values[s] = eg->constants[s];
        if (eg->graph->values[s].kind == IFD_VALUE_OUTER) {
            ifd_exec_frame *p = f;
            for (int u = 0; u < eg->outer[s].up && p; u++) p = p->parent;
            if (!p || !p->values[eg->outer[s].slot])
                return ifd_error(IFD_ERR_INTERNAL, "outer-scope value '%s' has no value",
                                 eg->graph->values[s].name);
            f->values[s] = p->values[eg->outer[s].slot];
        }
    }
    return IFD_OK;
}

/* ---- kernel context API ------------------------------------------------------------------- */

/* A string output: a zeroed element array of its own (every element ""), never a piece of the
 * planned arena or of scratch, whose reuse would drop or alias the elements' allocations. The
 * frame owns it (freed with its strings in frame_release_values/release_dead, or by the discard
 * reset in run_node). */
static ifd_status string_output(ifd_kernel_ctx *ctx, ifd_tensor *t, int index, int rank,
                                const int64_t *dims) {
    if (!(ctx->frame->eg->nodes[ctx->node_index].op->flags & IFD_OP_STRINGS))
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED,
                                "output %d would be a string tensor; this operator does not "
                                "support strings", index);
    t->data = NULL;
    ifd_status st = ifd_tensor_set_string_shape(t, rank, dims);
    if (!st) st = ifd_tensor_alloc_strings(t);
    if (st) return ifd_error_prefix(st, "node '%s' (%s) output %d", ctx->node->name,
                                    ctx->node->op_type, index);
    return IFD_OK;
}

ifd_status ifd_kernel_output(ifd_kernel_ctx *ctx, int index, ifd_dtype dtype, int rank,
                             const int64_t *dims, ifd_tensor **out) {
    ifd_exec_frame *f = ctx->frame;
    exec_node *en = &f->eg->nodes[ctx->node_index];
    ifd_status st;
    *out = NULL;
    if (index < 0 || index >= en->n_out || en->out[index] < 0) {
        /* omitted output: a throwaway buffer from scratch, released after the node */
        if (index < 0 || f->discard_n >= (int)IFD_ARRAY_LEN(f->discard))
            return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "output index %d out of range", index);
        ifd_tensor *t = &f->discard[f->discard_n];
        if (dtype == IFD_DTYPE_STRING) {
            t->owns_data = false;
            if ((st = string_output(ctx, t, index, rank, dims)) != IFD_OK) {
                ifd_tensor_free_data(t);
                return st;
            }
            t->owns_data = true; /* run_node frees it after the node */
            f->discard_n++;
            *out = t;
            return IFD_OK;
        }
        st = ifd_tensor_set_shape(t, dtype, rank, dims);
        if (st) return ifd_error_prefix(st, "node '%s' (%s)", ctx->node->name, ctx->node->op_type);
        t->data = t->nbytes ? ifd_kernel_scratch(ctx, t->nbytes) : NULL;
        if (t->nbytes && !t->data)
            return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "out of memory for output %d", index);
        t->owns_data = false;
        f->discard_n++;
        *out = t;
        return IFD_OK;
    }
    int slot = en->out[index];
    ifd_tensor *t = &f->slots[slot];
    if (f->owned[slot]) {
        ifd_tensor_free_data(t);
        f->owned[slot] = false;
    }
    t->data = NULL;
    if (dtype == IFD_DTYPE_STRING) {
        /* observed 0 bytes: the planner never places a string slot in the arena */
        f->observed_bytes[slot] = 0;
        f->values[slot] = NULL;
        st = string_output(ctx, t, index, rank, dims);
        if (t->data) f->owned[slot] = true;
        if (st) return st;
        t->owns_data = false;
        f->values[slot] = t;
        *out = t;
        return IFD_OK;
    }
    st = ifd_tensor_set_shape(t, dtype, rank, dims);
    if (st) return ifd_error_prefix(st, "node '%s' (%s) output %d", ctx->node->name,
                                    ctx->node->op_type, index);
    f->observed_bytes[slot] = t->nbytes;
    exec_graph *eg = f->eg;
    if (f->use_plan && eg->plan_offset[slot] != SIZE_MAX && eg->plan_bytes[slot] == t->nbytes) {
        t->data = eg->arena + eg->plan_offset[slot];
    } else if (t->nbytes) {
        t->data = ifd_malloc_aligned(t->nbytes);
        if (!t->data)
            return ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "out of memory for output %d (%zu bytes)",
                                    index, t->nbytes);
        f->owned[slot] = true;
    }
    t->owns_data = false;
    f->values[slot] = t;
    *out = t;
    return IFD_OK;
}

bool ifd_kernel_output_wanted(const ifd_kernel_ctx *ctx, int index) {
    const exec_node *en = &ctx->frame->eg->nodes[ctx->node_index];
    return index >= 0 && index < en->n_out && en->out[index] >= 0;
}

void *ifd_kernel_scratch(ifd_kernel_ctx *ctx, size_t bytes) {
    ifd_exec_frame *f = ctx->frame;
    size_t need = (bytes + 63) & ~(size_t)63;
    if (need < bytes) return NULL;
    if (need == 0) need = 64;
    if (!ifd_add_size(f->scratch_want, need, &f->scratch_want)) return NULL;
    if (f->scratch_size - f->scratch_used >= need) {
        void *p = f->scratch + f->scratch_used;
        f->scratch_used += need;
        return p;
    }
    /* does not fit this time: a piece of its own; the arena grows after the node */
    void **list = ifd_realloc(f->scratch_extra, (f->n_scratch_extra + 1) * sizeof *list);
    if (!list) return NULL;
    f->scratch_extra = list;
    void *p = ifd_malloc_aligned(need);
    if (p) f->scratch_extra[f->n_scratch_extra++] = p;
    return p;
}

/* After a node: free overflow pieces and grow the arena to what the node needed, so that the
 * next run of the same shapes allocates nothing. */
static void scratch_reset(ifd_exec_frame *f) {
    for (size_t i = 0; i < f->n_scratch_extra; i++) ifd_free_aligned(f->scratch_extra[i]);
    ifd_free(f->scratch_extra);
    f->scratch_extra = NULL;
    if (f->n_scratch_extra && f->scratch_want > f->scratch_size) {
        ifd_free_aligned(f->scratch);
        f->scratch_size = 0;
        f->scratch = ifd_malloc_aligned(f->scratch_want);
        if (f->scratch) f->scratch_size = f->scratch_want;
    }
    f->n_scratch_extra = 0;
    f->scratch_used = 0;
    f->scratch_want = 0;
}

/* ---- running ------------------------------------------------------------------------------- */

static int64_t node_macs(const exec_node *en, ifd_exec_frame *f) {
    const char *op = en->node->op_type;
    if (en->node->domain[0] || en->n_in < 2 || en->in[0] < 0 || en->in[1] < 0 || en->out[0] < 0)
        return 0;
    const ifd_tensor *a = f->values[en->in[0]], *w = f->values[en->in[1]];
    const ifd_tensor *y = f->values[en->out[0]];
    if (!a || !w || !y) return 0;
    int64_t per = 1;
    if (!strcmp(op, "Conv") || !strcmp(op, "ConvInteger") || !strcmp(op, "QLinearConv")) {
        if (!strcmp(op, "QLinearConv") && en->n_in > 3 && en->in[3] >= 0) w = f->values[en->in[3]];
        if (!w) return 0;
        for (int i = 1; i < w->rank; i++) per *= w->dims[i];
        return y->count * per;
    }
    if (!strcmp(op, "ConvTranspose")) {
        for (int i = 1; i < w->rank; i++) per *= w->dims[i];
        return a->count * per;
    }
    if (!strcmp(op, "MatMul") || !strcmp(op, "MatMulInteger") || !strcmp(op, "Gemm")) {
        if (a->rank < 1) return 0;
        int64_t k = a->dims[a->rank - 1];
        if (!strcmp(op, "Gemm") && a->rank == 2 && ifd_attr_int(en->node, "transA", 0))
            k = a->dims[0];
        return y->count * k;
    }
    return 0;
}

static ifd_status run_node(ifd_exec_frame *f, int i) {
    exec_graph *eg = f->eg;
    exec_node *en = &eg->nodes[i];
    const ifd_tensor *inputs_small[16];
    const ifd_tensor **inputs = inputs_small;
    ifd_status st = IFD_OK;
    if (en->n_in > 16) {
        inputs = ifd_calloc((size_t)en->n_in, sizeof *inputs);
        if (!inputs) return oom("node inputs");
    }
    for (int k = 0; k < en->n_in; k++) {
        int s = en->in[k];
        inputs[k] = s >= 0 ? f->values[s] : NULL;
        if (s >= 0 && !inputs[k]) {
            st = ifd_error(IFD_ERR_INTERNAL, "node '%s' (%s): input '%s' has no value",
                           en->node->name, en->node->op_type, eg->graph->values[s].name);
            goto out;
        }
        /* the one gate that keeps string element arrays away from numeric kernels */
        if (inputs[k] && inputs[k]->dtype == IFD_DTYPE_STRING && !(en->op->flags & IFD_OP_STRINGS)) {
            st = ifd_error(IFD_ERR_UNSUPPORTED,
                           "node '%s' (%s): input %d ('%s') is a string tensor; this operator "
                           "does not support strings", en->node->name, en->node->op_type, k,
                           eg->graph->values[s].name);
            goto out;
        }
    }
    ifd_kernel_ctx ctx = {
        .node = en->node,
        .opset = en->node->opset,
        .n_inputs = en->n_in,
        .inputs = inputs,
        .n_outputs = en->n_out,
        .pool = f->session->pool,
        .state = en->state,
        .activation = &en->act,
        .frame = f,
        .node_index = i,
    };
    struct timespec t0, t1;
    if (f->session->profile) clock_gettime(CLOCK_MONOTONIC, &t0);
    st = en->op->run(&ctx);
    if (f->session->profile) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        en->profile_ns += (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        en->profile_calls++;
    }
    if (st) {
        if (strncmp(ifd_last_error(), "node '", 6) != 0)
            ifd_error_prefix(st, "node '%s' (%s)", en->node->name, en->node->op_type);
        goto out;
    }
    for (int k = 0; k < en->n_out; k++)
        if (en->out[k] >= 0 && !f->values[en->out[k]]) {
            st = ifd_error(IFD_ERR_INTERNAL, "node '%s' (%s): output %d was not produced",
                           en->node->name, en->node->op_type, k);
            goto out;
        }
    f->macs += node_macs(en, f);
out:
    scratch_reset(f);
    for (int k = 0; k < f->discard_n; k++)
        if (f->discard[k].owns_data) {
            ifd_tensor_free_data(&f->discard[k]);
            f->discard[k].owns_data = false;
        }
    f->discard_n = 0;
    if (inputs != inputs_small) ifd_free(inputs);
    return st;
}

/* Free what no later node reads. */
static void release_dead(ifd_exec_frame *f, int i) {
    exec_graph *eg = f->eg;
    exec_node *en = &eg->nodes[i];
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? en->n_out : en->n_in;
        const int *sl = pass ? en->out : en->in;
        for (int k = 0; k < n; k++) {
            int s = sl[k];
            if (s < 0 || eg->last_use[s] != i || eg->constants[s] ||
                eg->graph->values[s].kind != IFD_VALUE_NODE_OUTPUT)
                continue;
            if (f->owned[s]) ifd_tensor_free_data(&f->slots[s]);
            f->owned[s] = false;
            f->slots[s].data = NULL;
            f->values[s] = NULL;
        }
    }
}

static ifd_status frame_run_nodes(ifd_exec_frame *f) {
    ifd_status st = frame_bind_static(f);
    if (st) return st;
    for (int i = 0; i < f->eg->n_nodes; i++) {
        if (f->eg->nodes[i].removed) continue;
        st = run_node(f, i);
        if (st) return st;
        release_dead(f, i);
    }
    return IFD_OK;
}

/* Hand a slot's value to the caller as a new tensor: ownership moves when the frame owns the
 * buffer, otherwise the data is copied. */
static ifd_status take_output(ifd_exec_frame *f, int slot, ifd_tensor **out) {
    const ifd_tensor *v = f->values[slot];
    *out = NULL;
    if (!v)
        return ifd_error(IFD_ERR_INTERNAL, "graph output '%s' was not computed",
                         f->eg->graph->values[slot].name);
    if (f->owned[slot]) {
        ifd_tensor *t = ifd_calloc(1, sizeof *t);
        if (!t) return oom("output tensor");
        *t = f->slots[slot];
        t->owns_data = true;
        f->owned[slot] = false;
        f->slots[slot].data = NULL;
        /* the caller owns it now; a duplicate output name clones from it */
        f->values[slot] = t;
        *out = t;
        return IFD_OK;
    }
    return ifd_tensor_clone(v, out);
}

ifd_status ifd_kernel_run_subgraph(ifd_kernel_ctx *ctx, const ifd_graph *graph, int n_inputs,
                                   const ifd_tensor *const *inputs, int n_outputs,
                                   ifd_tensor **outputs) {
    ifd_exec_frame *pf = ctx->frame;
    exec_node *en = &pf->eg->nodes[ctx->node_index];
    exec_graph *eg = NULL;
    ifd_exec_frame *f = NULL;
    ifd_status st = IFD_OK;
    int taken = 0;
    for (int a = 0; en->subgraphs && a < en->node->n_attrs; a++)
        if (en->subgraphs[a] && en->subgraphs[a]->graph == graph) eg = en->subgraphs[a];
    if (!eg) return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "subgraph is not one of this node's");
    if (n_inputs != graph->n_inputs || n_outputs != graph->n_outputs)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "subgraph '%s' takes %d inputs and gives %d outputs, called with "
                                "%d and %d", graph->name, graph->n_inputs, graph->n_outputs,
                                n_inputs, n_outputs);
    st = frame_create(pf->session, eg, pf, &f);
    if (st) return st;
    for (int k = 0; k < n_inputs; k++) {
        if (!inputs[k]) {
            st = ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "subgraph input %d missing", k);
            goto out;
        }
        f->values[graph->inputs[k]] = inputs[k];
    }
    st = frame_run_nodes(f);
    if (st) goto out;
    for (taken = 0; taken < n_outputs; taken++) {
        ifd_tensor *t = NULL;
        st = take_output(f, graph->outputs[taken], &t);
        if (st) goto out;
        outputs[taken] = t;
    }
out:
    if (st)
        for (int k = 0; k < taken; k++) {
            ifd_tensor_free(outputs[k]);
            outputs[k] = NULL;
        }
    pf->macs += f ? f->macs : 0;
    frame_free(f);
    return st;
}

/* ---- activation plan ------------------------------------------------------------------------- */

typedef struct plan_item {
    int slot;
    int first, last;
    size_t bytes, offset;
} plan_item;

static int cmp_item_size_desc(const void *a, const void *b) {
    const plan_item *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->slot - y->slot;
}

static int cmp_item_offset(const void *a, const void *b) {
    const plan_item *x = *(const plan_item *const *)a, *y = *(const plan_item *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* First-fit placement by decreasing size among buffers whose lifetimes overlap. */
static ifd_status build_plan(exec_graph *eg, const size_t *observed) {
    ifd_status st = IFD_OK;
    const ifd_graph *g = eg->graph;
    plan_item *items = ifd_calloc((size_t)eg->n_slots + 1, sizeof *items);
    plan_item **live = ifd_calloc((size_t)eg->n_slots + 1, sizeof *live);
    int n = 0;
    size_t total = 0;
    if (!items || !live) {
        st = oom("memory plan");
        goto out;
    }
    for (int s = 0; s < eg->n_slots; s++) {
        eg->plan_offset[s] = SIZE_MAX;
        eg->plan_bytes[s] = 0;
        if (g->values[s].kind != IFD_VALUE_NODE_OUTPUT || eg->constants[s] || eg->def_node[s] < 0 ||
            eg->last_use[s] == INT32_MAX || observed[s] == 0)
            continue;
        size_t bytes = (observed[s] + PLAN_ALIGN - 1) & ~(size_t)(PLAN_ALIGN - 1);
        if (bytes < observed[s]) continue;
        items[n++] = (plan_item){s, eg->def_node[s], eg->last_use[s], bytes, 0};
    }
    qsort(items, (size_t)n, sizeof *items, cmp_item_size_desc);
    for (int i = 0; i < n; i++) {
        int nl = 0;
        for (int j = 0; j < i; j++)
            if (items[j].first <= items[i].last && items[i].first <= items[j].last)
                live[nl++] = &items[j];
        qsort(live, (size_t)nl, sizeof *live, cmp_item_offset);
        size_t off = 0;
        for (int j = 0; j < nl; j++) {
            if (live[j]->offset >= off + items[i].bytes) break;
            if (live[j]->offset + live[j]->bytes > off) off = live[j]->offset + live[j]->bytes;
        }
        items[i].offset = off;
        if (off + items[i].bytes > total) total = off + items[i].bytes;
    }
    if (total > eg->arena_size) {
        ifd_free_aligned(eg->arena);
        eg->arena_size = 0;
        eg->arena = ifd_malloc_aligned(total);
        if (!eg->arena) {
            st = oom("activation arena");
            goto out;
        }
        eg->arena_size = total;
    }
    for (int i = 0; i < n; i++) {
        eg->plan_offset[items[i].slot] = items[i].offset;
        eg->plan_bytes[items[i].slot] = observed[items[i].slot];
    }
    eg->plan_size = total;
out:
    if (st) eg->plan_valid = false;
    ifd_free(items);
    ifd_free(live);
    return st;
}

/* ---- optimization passes (main graph) --------------------------------------------------------- */

void ifd_exec_count_uses(const exec_graph *eg, int *uses) {
    memset(uses, 0, (size_t)eg->n_slots * sizeof(int));
    for (int i = 0; i < eg->n_nodes; i++) {
        const exec_node *en = &eg->nodes[i];
        if (en->removed) continue;
        for (int k = 0; k < en->n_in; k++)
            if (en->in[k] >= 0) uses[en->in[k]]++;
        for_each_subgraph_mark(eg, i, NULL, uses);
    }
    for (int k = 0; k < eg->graph->n_outputs; k++) uses[eg->graph->outputs[k]] += 1000;
}

static bool node_has_subgraph(const ifd_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == IFD_ATTR_GRAPH || n->attrs[a].type == IFD_ATTR_GRAPHS) return true;
    return false;
}

static ifd_status fold_constants(ifd_session *s, exec_graph *eg, ifd_exec_frame *f) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->removed || (en->op->flags & IFD_OP_NO_CONSTANT_FOLD) || node_has_subgraph(en->node))
            continue;
        bool all_const = true;
        for (int k = 0; k < en->n_in; k++)
            if (en->in[k] >= 0) {
                if (!eg->constants[en->in[k]]) all_const = false;
            }
        if (!all_const) continue;
        for (int k = 0; k < en->n_in; k++)
            if (en->in[k] >= 0) f->values[en->in[k]] = eg->constants[en->in[k]];
        ifd_status st = run_node(f, i);
        if (st) {
            /* leave it to fail (or succeed) at run time with the same message */
            ifd_error_clear();
            frame_release_values(f);
            continue;
        }
        bool ok = true;
        for (int k = 0; k < en->n_out && ok; k++) {
            int sl = en->out[k];
            if (sl < 0) continue;
            if (ifd_tensor_storage_bytes(&f->slots[sl]) > FOLD_MAX_BYTES) ok = false;
        }
        if (ok) {
            for (int k = 0; k < en->n_out; k++) {
                int sl = en->out[k];
                if (sl < 0) continue;
                ifd_tensor *t = NULL;
                st = take_output(f, sl, &t);
                if (!st) st = session_own(s, t);
                if (st) {
                    ifd_tensor_free(t);
                    frame_release_values(f);
                    return st;
                }
                eg->constants[sl] = t;
            }
            en->removed = true;
        }
        frame_release_values(f);
    }
    return IFD_OK;
}

static const ifd_tensor *const_input(const exec_graph *eg, const exec_node *en, int k) {
    if (k >= en->n_in || en->in[k] < 0) return NULL;
    return eg->constants[en->in[k]];
}

static exec_node *sole_consumer(exec_graph *eg, int slot, const int *uses) {
    if (uses[slot] != 1) return NULL;
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->removed) continue;
        for (int k = 0; k < en->n_in; k++)
            if (en->in[k] == slot) return en;
    }
    return NULL;
}

/* Conv -> BatchNormalization (inference) becomes one Conv with rescaled weights and bias. */
static ifd_status fuse_conv_bn(ifd_session *s, exec_graph *eg, int *uses) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *conv = &eg->nodes[i];
        if (conv->removed || strcmp(conv->node->op_type, "Conv") || conv->node->domain[0] ||
            conv->n_out != 1 || conv->out[0] < 0)
            continue;
        const ifd_tensor *w = const_input(eg, conv, 0 + 1);
        const ifd_tensor *b = conv->n_in > 2 && conv->in[2] >= 0 ? const_input(eg, conv, 2) : NULL;
        if (!w || w->dtype != IFD_DTYPE_FLOAT || w->rank < 3 || (conv->n_in > 2 && conv->in[2] >= 0 && !b))
            continue;
        exec_node *bn = sole_consumer(eg, conv->out[0], uses);
        if (!bn || strcmp(bn->node->op_type, "BatchNormalization") || bn->node->domain[0] ||
            bn->n_in != 5 || bn->in[0] != conv->out[0] || ifd_attr_int(bn->node, "training_mode", 0))
            continue;
        bool extra_out = false;
        for (int k = 1; k < bn->n_out; k++)
            if (bn->out[k] >= 0) extra_out = true;
        if (extra_out || bn->out[0] < 0) continue;
        const ifd_tensor *scale = const_input(eg, bn, 1), *bias = const_input(eg, bn, 2);
        const ifd_tensor *mean = const_input(eg, bn, 3), *var = const_input(eg, bn, 4);
        int64_t oc = w->dims[0];
        if (!scale || !bias || !mean || !var) continue;
        if (scale->dtype != IFD_DTYPE_FLOAT || bias->dtype != IFD_DTYPE_FLOAT ||
            mean->dtype != IFD_DTYPE_FLOAT || var->dtype != IFD_DTYPE_FLOAT || scale->count != oc ||
            bias->count != oc || mean->count != oc || var->count != oc ||
            (b && (b->dtype != IFD_DTYPE_FLOAT || b->count != oc)))
            continue;
        float eps = ifd_attr_float(bn->node, "epsilon", 1e-5f);
        ifd_tensor *nw = NULL, *nb = NULL;
        ifd_status st = ifd_tensor_clone(w, &nw);
        if (!st) st = ifd_tensor_create(IFD_DTYPE_FLOAT, 1, &oc, &nb);
        if (st) {
            ifd_tensor_free(nw);
            return st;
        }
        int64_t per = w->count / oc;
        float *wd = nw->data, *bd = nb->data;
        const float *sc = scale->data, *bi = bias->data, *mu = mean->data, *va = var->data;
        for (int64_t c = 0; c < oc; c++) {
            double k = sc[c] / sqrt((double)va[c] + eps);
            for (int64_t j = 0; j < per; j++) wd[c * per + j] = (float)(wd[c * per + j] * k);
            double b0 = b ? ((const float *)b->data)[c] : 0.0;
            bd[c] = (float)((b0 - mu[c]) * k + bi[c]);
        }
        if ((st = session_own(s, nw)) != IFD_OK) {
            ifd_tensor_free(nw);
            ifd_tensor_free(nb);
            return st;
        }
        if ((st = session_own(s, nb)) != IFD_OK) {
            ifd_tensor_free(nb);
            return st;
        }
        /* The new weights live in the BN node's now-unused parameter slots: slot of BN scale
         * holds W', slot of BN bias holds B'. Those slots are constants only BN read. */
        int wslot = bn->in[1], bslot = bn->in[2];
        if (uses[wslot] != 1 || uses[bslot] != 1 || wslot == bslot) {
            /* shared parameters: cannot reuse the slots; give up on this pair */
            continue;
        }
        eg->constants[wslot] = nw;
        eg->constants[bslot] = nb;
        uses[conv->in[1]]--;
        if (conv->n_in > 2 && conv->in[2] >= 0) uses[conv->in[2]]--;
        if (conv->n_in < 3) {
            int *nin = ifd_realloc(conv->in, 3 * sizeof(int));
            if (!nin) return oom("fusion");
            conv->in = nin;
            conv->n_in = 3;
        }
        conv->in[1] = wslot;
        conv->in[2] = bslot;
        conv->out[0] = bn->out[0];
        bn->removed = true;
    }
    return IFD_OK;
}

/* MatMul with a constant 2-D float B [K, N], then Add of a constant 1-D float bias [N]: the
 * bias becomes MatMul's (internal) third input, added in the GEMM epilogue. */
static ifd_status fuse_matmul_bias(exec_graph *eg, int *uses) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *mm = &eg->nodes[i];
        if (mm->removed || strcmp(mm->node->op_type, "MatMul") || mm->node->domain[0] ||
            mm->n_in != 2 || mm->n_out != 1 || mm->out[0] < 0 || mm->act.kind != IFD_ACT_NONE)
            continue;
        const ifd_tensor *b = const_input(eg, mm, 1);
        if (!b || b->dtype != IFD_DTYPE_FLOAT || b->rank != 2) continue;
        exec_node *add = sole_consumer(eg, mm->out[0], uses);
        if (!add || strcmp(add->node->op_type, "Add") || add->node->domain[0] || add->n_in != 2 ||
            add->out[0] < 0)
            continue;
        int other = add->in[0] == mm->out[0] ? 1 : 0;
        if (add->in[1 - other] != mm->out[0] || add->in[other] < 0) continue;
        const ifd_tensor *bias = eg->constants[add->in[other]];
        if (!bias || bias->dtype != IFD_DTYPE_FLOAT || bias->rank != 1 || bias->dims[0] != b->dims[1])
            continue;
        int *nin = ifd_realloc(mm->in, 3 * sizeof(int));
        if (!nin) return oom("fusion");
        mm->in = nin;
        mm->in[2] = add->in[other];
        mm->n_in = 3;
        mm->out[0] = add->out[0];
        add->removed = true;
    }
    return IFD_OK;
}

static bool activation_of(const exec_graph *eg, const exec_node *en, ifd_activation *act) {
    const char *op = en->node->op_type;
    if (en->node->domain[0] || en->n_out != 1) return false;
    memset(act, 0, sizeof *act);
    if (!strcmp(op, "Relu")) act->kind = IFD_ACT_RELU;
    else if (!strcmp(op, "Sigmoid")) act->kind = IFD_ACT_SIGMOID;
    else if (!strcmp(op, "Tanh")) act->kind = IFD_ACT_TANH;
    else if (!strcmp(op, "LeakyRelu")) {
        act->kind = IFD_ACT_LEAKY_RELU;
        act->alpha = ifd_attr_float(en->node, "alpha", 0.01f);
    } else if (!strcmp(op, "HardSigmoid")) {
        act->kind = IFD_ACT_HARD_SIGMOID;
        act->alpha = ifd_attr_float(en->node, "alpha", 0.2f);
        act->beta = ifd_attr_float(en->node, "beta", 0.5f);
    } else if (!strcmp(op, "HardSwish")) act->kind = IFD_ACT_HARD_SWISH;
    else if (!strcmp(op, "Clip")) {
        act->kind = IFD_ACT_CLIP;
        act->alpha = -INFINITY;
        act->beta = INFINITY;
        if (en->node->opset < 11) {
            act->alpha = ifd_attr_float(en->node, "min", -INFINITY);
            act->beta = ifd_attr_float(en->node, "max", INFINITY);
        } else {
            for (int k = 1; k < en->n_in && k < 3; k++) {
                if (en->in[k] < 0) continue;
                const ifd_tensor *c = eg->constants[en->in[k]];
                if (!c || c->dtype != IFD_DTYPE_FLOAT || c->count != 1) return false;
                if (k == 1) act->alpha = ((const float *)c->data)[0];
                else act->beta = ((const float *)c->data)[0];
            }
        }
    } else
        return false;
    return true;
}

/* Conv/Gemm/MatMul -> activation: the activation runs in the producer's epilogue. Only when
 * the producer's output is float: its weight is a float constant or its input type is float. */
static void fuse_activations(exec_graph *eg, int *uses) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *p = &eg->nodes[i];
        if (p->removed || !(p->op->flags & IFD_OP_FUSES_ACTIVATION) || p->act.kind != IFD_ACT_NONE ||
            p->n_out < 1 || p->out[0] < 0)
            continue;
        bool is_float = false;
        for (int k = 0; k < p->n_in && k < 2; k++) {
            if (p->in[k] < 0) continue;
            const ifd_tensor *c = eg->constants[p->in[k]];
            const ifd_value_type *ty = &eg->graph->values[p->in[k]].type;
            if ((c && c->dtype == IFD_DTYPE_FLOAT) || ty->dtype == IFD_DTYPE_FLOAT) is_float = true;
        }
        if (!is_float) continue;
        exec_node *a = sole_consumer(eg, p->out[0], uses);
        ifd_activation act;
        if (!a || a->in[0] != p->out[0] || a->out[0] < 0 || !activation_of(eg, a, &act)) continue;
        p->act = act;
        p->out[0] = a->out[0];
        a->removed = true;
    }
}

static ifd_status prepare_nodes(exec_graph *eg) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->removed) continue;
        if (en->subgraphs)
            for (int a = 0; a < en->node->n_attrs; a++)
                if (en->subgraphs[a]) {
                    ifd_status st = prepare_nodes(en->subgraphs[a]);
                    if (st) return st;
                }
        if (!en->op->prepare) continue;
        const ifd_tensor *consts_small[16];
        const ifd_value_type *types_small[16];
        const ifd_tensor **consts = consts_small;
        const ifd_value_type **types = types_small;
        if (en->n_in > 16) {
            consts = ifd_calloc((size_t)en->n_in, sizeof *consts);
            types = ifd_calloc((size_t)en->n_in, sizeof *types);
            if (!consts || !types) {
                ifd_free(consts);
                ifd_free(types);
                return oom("prepare");
            }
        }
        for (int k = 0; k < en->n_in; k++) {
            consts[k] = en->in[k] >= 0 ? eg->constants[en->in[k]] : NULL;
            types[k] = en->in[k] >= 0 ? &eg->graph->values[en->in[k]].type : NULL;
        }
        ifd_prepare_ctx pc = {en->node, en->node->opset, en->n_in, consts, types, &en->act, NULL};
        ifd_status st = en->op->prepare(&pc);
        en->state = pc.state;
        if (consts != consts_small) ifd_free(consts);
        if (types != types_small) ifd_free(types);
        if (st) {
            if (strncmp(ifd_last_error(), "node '", 6) != 0)
                ifd_error_prefix(st, "node '%s' (%s)", en->node->name, en->node->op_type);
            return st;
        }
    }
    for (int i = 0; i < eg->n_nodes; i++)
        if (eg->nodes[i].subgraphs)
            for (int a = 0; a < eg->nodes[i].node->n_attrs; a++)
                if (eg->nodes[i].subgraphs[a]) compute_lifetimes(eg->nodes[i].subgraphs[a]);
    compute_lifetimes(eg);
    return IFD_OK;
}

/* ---- public API ------------------------------------------------------------------------------ */

void ifd_session_options_init(ifd_session_options *o) {
    memset(o, 0, sizeof *o);
    o->num_threads = 0;
    o->optimize = 1;
    o->plan_at_load = 1;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void plan_at_load(ifd_session *s);

ifd_status ifd_session_create(const ifd_model *model, const ifd_session_options *options,
                              ifd_session **out) {
    ifd_status st = IFD_OK;
    ifd_session *s = NULL;
    int *uses = NULL;
    *out = NULL;
    if (!model) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "model is NULL");
    s = ifd_calloc(1, sizeof *s);
    if (!s) return oom("session");
    s->model = model;
    if (options)
        s->options = *options;
    else
        ifd_session_options_init(&s->options);
    const char *prof = getenv("IFD_PROFILE");
    s->profile = prof && prof[0] && strcmp(prof, "0");
    int threads = s->options.num_threads > 0 ? s->options.num_threads : default_threads();
    if ((st = ifd_thread_pool_create(threads, &s->pool)) != IFD_OK) goto fail;
    if ((st = compile_graph(model->graph, &s->main)) != IFD_OK) goto fail;
    if ((st = frame_create(s, s->main, NULL, &s->frame)) != IFD_OK) goto fail;
    if (s->options.optimize) {
        uses = ifd_calloc((size_t)s->main->n_slots + 1, sizeof *uses);
        if (!uses) {
            st = oom("optimizer");
            goto fail;
        }
        if ((st = fold_constants(s, s->main, s->frame)) != IFD_OK) goto fail;
        if ((st = ifd_fuse_quant(s->main)) != IFD_OK) goto fail; /* int8 patterns: fuse_quant.c */
        ifd_exec_count_uses(s->main, uses);
        if ((st = fuse_conv_bn(s, s->main, uses)) != IFD_OK) goto fail;
        ifd_exec_count_uses(s->main, uses);
        if ((st = fuse_matmul_bias(s->main, uses)) != IFD_OK) goto fail;
        ifd_exec_count_uses(s->main, uses);
        fuse_activations(s->main, uses);
    }
    if ((st = prepare_nodes(s->main)) != IFD_OK) goto fail;
    ifd_free(uses);
    if (s->options.plan_at_load) plan_at_load(s);
    *out = s;
    return IFD_OK;
fail:
    ifd_free(uses);
    ifd_session_free(s);
    return st;
}

/* When every input's shape is fixed, run once on zeros so that shapes are known and the
 * activation plan exists before the first request (a warm-up, as servers do). A failure here
 * (zeros can be invalid data, e.g. a shape tensor) only means planning waits for real input. */
static void plan_at_load(ifd_session *s) {
    const ifd_graph *g = s->main->graph;
    ifd_tensor *in[64] = {0}, *out[64] = {0};
    const char *names[64];
    if (g->n_inputs > 64 || g->n_outputs > 64) return;
    for (int i = 0; i < g->n_inputs; i++) {
        const ifd_value_type *t = &g->values[g->inputs[i]].type;
        if (t->dtype == IFD_DTYPE_UNDEFINED || t->rank < 0) return;
        for (int d = 0; d < t->rank; d++)
            if (t->dims[d] < 0) return;
    }
    int made = 0;
    for (; made < g->n_inputs; made++) {
        const ifd_value *v = &g->values[g->inputs[made]];
        names[made] = v->name;
        if (ifd_tensor_create(v->type.dtype, v->type.rank, v->type.dims, &in[made]) != IFD_OK) break;
    }
    if (made == g->n_inputs)
        ifd_session_run(s, (size_t)made, names, (const ifd_tensor *const *)in, (size_t)g->n_outputs,
                        NULL, out);
    for (int i = 0; i < 64; i++) {
        ifd_tensor_free(in[i]);
        ifd_tensor_free(out[i]);
    }
    ifd_error_clear();
}

static int cmp_node_time(const void *a, const void *b) {
    double x = (*(const exec_node *const *)a)->profile_ns, y = (*(const exec_node *const *)b)->profile_ns;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* IFD_PROFILE: where the time went, per node of the main graph, slowest first. */
static void print_profile(const ifd_session *s) {
    exec_graph *eg = s->main;
    exec_node **order = ifd_calloc((size_t)eg->n_nodes + 1, sizeof *order);
    double total = 0;
    int n = 0;
    if (!order) return;
    for (int i = 0; i < eg->n_nodes; i++)
        if (!eg->nodes[i].removed && eg->nodes[i].profile_calls) {
            order[n++] = &eg->nodes[i];
            total += eg->nodes[i].profile_ns;
        }
    qsort(order, (size_t)n, sizeof *order, cmp_node_time);
    fprintf(stderr, "inferd profile: %d nodes, %.3f ms per run in kernels\n", n,
            n ? total / 1e6 / (double)order[0]->profile_calls : 0.0);
    for (int i = 0; i < n && i < 40; i++)
        fprintf(stderr, "  %6.2f%%  %9.3f ms  %-18s %s%s\n", 100.0 * order[i]->profile_ns / total,
                order[i]->profile_ns / 1e6 / (double)order[i]->profile_calls, order[i]->node->op_type,
                order[i]->node->name, order[i]->act.kind ? " (+activation)" : "");
    ifd_free(order);
}

void ifd_session_free(ifd_session *s) {
    if (!s) return;
    if (s->profile && s->main) print_profile(s);
    frame_free(s->frame);
    exec_graph_free(s->main);
    for (size_t i = 0; i < s->n_owned; i++) ifd_tensor_free(s->owned_tensors[i]);
    ifd_free(s->owned_tensors);
    ifd_thread_pool_free(s->pool);
    ifd_free(s);
}

size_t ifd_session_input_count(const ifd_session *s) { return ifd_model_input_count(s->model); }
size_t ifd_session_output_count(const ifd_session *s) { return ifd_model_output_count(s->model); }
ifd_status ifd_session_input_info(const ifd_session *s, size_t i, ifd_io_info *out) {
    return ifd_model_input_info(s->model, i, out);
}
ifd_status ifd_session_output_info(const ifd_session *s, size_t i, ifd_io_info *out) {
    return ifd_model_output_info(s->model, i, out);
}
int64_t ifd_session_last_run_macs(const ifd_session *s) { return s->last_macs; }

static ifd_status expected_inputs_error(const ifd_graph *g, ifd_status st, const char *fmt,
                                        const char *name) {
    char list[512];
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; i < g->n_inputs && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "",
                                 g->values[g->inputs[i]].name);
    char msg[256];
    snprintf(msg, sizeof msg, fmt, name);
    return ifd_error(st, "%s; the model's inputs are: %s", msg, list);
}

static ifd_status check_input(const ifd_value *v, const ifd_tensor *t) {
    char a[256], b[256];
    if (v->type.dtype != IFD_DTYPE_UNDEFINED && v->type.dtype != t->dtype)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "input '%s' must be %s, got %s", v->name,
                         ifd_dtype_name(v->type.dtype), ifd_dtype_name(t->dtype));
    if (v->type.rank < 0) return IFD_OK;
    bool bad = v->type.rank != t->rank;
    for (int d = 0; !bad && d < t->rank; d++)
        if (v->type.dims[d] >= 0 && v->type.dims[d] != t->dims[d]) bad = true;
    if (bad) {
        int64_t dims[IFD_MAX_RANK];
        for (int d = 0; d < v->type.rank; d++) dims[d] = v->type.dims[d];
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "input '%s' has shape %s, the model expects %s "
                         "(-1: any)", v->name, ifd_shape_str(t->rank, t->dims, a, sizeof a),
                         ifd_shape_str(v->type.rank, dims, b, sizeof b));
    }
    return IFD_OK;
}

ifd_status ifd_session_run(ifd_session *s, size_t n_inputs, const char *const *input_names,
                           const ifd_tensor *const *inputs, size_t n_outputs,
                           const char *const *output_names, ifd_tensor **outputs) {
    ifd_status st = IFD_OK;
    size_t taken = 0;
    int64_t key_small[64];
    int64_t *key = key_small;
    size_t key_len = 0;
    if (!s || (n_inputs && (!input_names || !inputs)) || (n_outputs && !outputs))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "NULL argument to ifd_session_run");
    exec_graph *eg = s->main;
    const ifd_graph *g = eg->graph;
    ifd_exec_frame *f = s->frame;
    for (size_t j = 0; j < n_outputs; j++) outputs[j] = NULL;
    frame_release_values(f);
    f->macs = 0;
    /* bind inputs by name */
    for (size_t i = 0; i < n_inputs; i++) {
        int v = input_names[i] ? ifd_graph_find_value(g, input_names[i]) : -1;
        if (v < 0 || !(g->values[v].kind == IFD_VALUE_INPUT ||
                       (g->values[v].kind == IFD_VALUE_INITIALIZER && g->values[v].overridable))) {
            st = expected_inputs_error(g, IFD_ERR_INVALID_ARGUMENT, "unknown input '%s'",
                                       input_names[i] ? input_names[i] : "(null)");
            goto out;
        }
        if (!inputs[i]) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "input '%s' is NULL", input_names[i]);
            goto out;
        }
        if (f->values[v]) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "input '%s' given twice", input_names[i]);
            goto out;
        }
        if ((st = check_input(&g->values[v], inputs[i])) != IFD_OK) goto out;
        f->values[v] = inputs[i];
    }
    for (int k = 0; k < g->n_inputs; k++)
        if (!f->values[g->inputs[k]]) {
            st = expected_inputs_error(g, IFD_ERR_INVALID_ARGUMENT, "missing input '%s'",
                                       g->values[g->inputs[k]].name);
            goto out;
        }
    /* plan key: the shapes of all graph inputs */
    {
        size_t need = 0;
        for (int k = 0; k < g->n_inputs; k++) need += 1 + (size_t)f->values[g->inputs[k]]->rank;
        if (need > IFD_ARRAY_LEN(key_small)) {
            key = ifd_calloc(need, sizeof *key);
            if (!key) {
                st = oom("plan key");
                goto out;
            }
        }
        for (int k = 0; k < g->n_inputs; k++) {
            const ifd_tensor *t = f->values[g->inputs[k]];
            key[key_len++] = t->rank * 64 + t->dtype;
            for (int d = 0; d < t->rank; d++) key[key_len++] = t->dims[d];
        }
        f->use_plan = eg->plan_valid && eg->plan_key_len == key_len &&
                      !memcmp(eg->plan_key, key, key_len * sizeof *key);
    }
    memset(f->observed_bytes, 0, (size_t)eg->n_slots * sizeof *f->observed_bytes);
    if ((st = frame_run_nodes(f)) != IFD_OK) goto out;
    /* outputs */
    for (taken = 0; taken < n_outputs; taken++) {
        int v = -1;
        if (output_names) {
            for (int k = 0; k < g->n_outputs; k++)
                if (!strcmp(g->values[g->outputs[k]].name, output_names[taken])) v = g->outputs[k];
            if (v < 0) {
                st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "unknown output '%s'", output_names[taken]);
                goto out;
            }
        } else {
            if (taken >= (size_t)g->n_outputs) {
                st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "asked for %zu outputs, the model has %d",
                               n_outputs, g->n_outputs);
                goto out;
            }
            v = g->outputs[taken];
        }
        if ((st = take_output(f, v, &outputs[taken])) != IFD_OK) goto out;
    }
    /* (re)plan when this run did not match the plan */
    {
        bool mismatch = !f->use_plan;
        for (int sl = 0; !mismatch && sl < eg->n_slots; sl++)
            if (eg->plan_offset[sl] != SIZE_MAX && f->observed_bytes[sl] != eg->plan_bytes[sl])
                mismatch = true;
        if (mismatch) {
            ifd_free(eg->plan_key);
            eg->plan_key = ifd_calloc(key_len ? key_len : 1, sizeof *key);
            eg->plan_valid = false;
            if (eg->plan_key) {
                memcpy(eg->plan_key, key, key_len * sizeof *key);
                eg->plan_key_len = key_len;
                /* values still point into the old arena until released below */
                frame_release_values(f);
                if (build_plan(eg, f->observed_bytes) == IFD_OK) eg->plan_valid = true;
                ifd_error_clear();
            }
        }
    }
    s->last_macs = f->macs;
out:
    if (st)
        for (size_t j = 0; j < taken && j < n_outputs; j++) {
            ifd_tensor_free(outputs[j]);
            outputs[j] = NULL;
        }
    frame_release_values(f);
    if (key != key_small) ifd_free(key);
    return st;
}
