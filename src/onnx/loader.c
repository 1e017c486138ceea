/* ModelProto -> IR: values, nodes, attributes, subgraphs (outer-scope capture), model-local
 * function inlining, then validation (graph/validate.c). */
#include "onnx/onnx_internal.h"
#include "ops/op.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Messages may nest: Model > Graph > (Node > Attribute > Graph) per subgraph level, plus tensor,
 * type and function messages below a graph. */
#define MAX_MESSAGE_DEPTH (2 + 3 * (IFD_MAX_GRAPH_DEPTH + 1) + 32)
/* Nested model-local function calls expanded at most this deep (recursion guard). */
#define MAX_FUNCTION_DEPTH 16
#define MAX_INLINED_NODES (1u << 20)

typedef struct gbuild gbuild;

typedef struct loader {
    ifd_model *m;
    const Onnx__ModelProto *mp;
    const char *base_dir;
    unsigned inline_counter, inlined_nodes;
    Onnx__AttributeProto **extra; /* decoded function attribute defaults */
    size_t n_extra, cap_extra;
} loader;

/* A graph under construction: a growable value table with a name hash. */
struct gbuild {
    ifd_graph *g;
    gbuild *parent;
    ifd_value *values;
    int n_values, cap_values;
    int *slots; /* open addressing; -1 = empty */
    size_t n_slots;
};

static bool is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static const char *norm_domain(const char *d) { return is_default_domain(d) ? "" : d; }

static ifd_status oom(void) { return ifd_error(IFD_ERR_NO_MEMORY, "out of memory loading model"); }

static ifd_status model_add_tensor(ifd_model *m, ifd_tensor *t) {
    if (m->n_tensors == m->cap_tensors) {
        size_t ncap = m->cap_tensors ? m->cap_tensors * 2 : 64;
        ifd_tensor **n = ifd_realloc(m->tensors, ncap * sizeof *n);
        if (!n) {
            ifd_tensor_free(t);
            return oom();
        }
        m->tensors = n;
        m->cap_tensors = ncap;
    }
    m->tensors[m->n_tensors++] = t;
    return IFD_OK;
}

/* ---- value table ------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int gb_find(const gbuild *b, const char *name) {
    if (!b->n_slots) return -1;
    size_t mask = b->n_slots - 1;
    for (size_t i = (size_t)hash_str(name) & mask;; i = (i + 1) & mask) {
        int v = b->slots[i];
        if (v < 0) return -1;
        if (!strcmp(b->values[v].name, name)) return v;
    }
}

static ifd_status gb_rehash(gbuild *b, size_t n_slots) {
    int *slots = ifd_malloc(n_slots * sizeof *slots);
    if (!slots) return oom();
    for (size_t i = 0; i < n_slots; i++) slots[i] = -1;
    for (int v = 0; v < b->n_values; v++) {
        size_t i = (size_t)hash_str(b->values[v].name) & (n_slots - 1);
        while (slots[i] >= 0) i = (i + 1) & (n_slots - 1);
        slots[i] = v;
    }
    ifd_free(b->slots);
    b->slots = slots;
    b->n_slots = n_slots;
    return IFD_OK;
}

/* Append a value (name must not exist yet); returns its index in *index. */
static ifd_status gb_add(loader *L, gbuild *b, const char *name, ifd_value_kind kind,
                         int *index) {
    if (b->n_values == INT32_MAX / 4)
        return ifd_error(IFD_ERR_TOO_BIG, "graph '%s' has too many values", b->g->name);
    if (b->n_values == b->cap_values) {
        int ncap = b->cap_values ? b->cap_values * 2 : 64;
        ifd_value *n = ifd_realloc(b->values, (size_t)ncap * sizeof *n);
        if (!n) return oom();
        b->values = n;
        b->cap_values = ncap;
    }
    if ((size_t)(b->n_values + 1) * 2 > b->n_slots) {
        ifd_status st = gb_rehash(b, b->n_slots ? b->n_slots * 2 : 128);
        if (st) return st;
    }
    ifd_value *v = &b->values[b->n_values];
    memset(v, 0, sizeof *v);
    v->name = ifd_arena_strdup(L->m->arena, name);
    if (!v->name) return oom();
    v->kind = kind;
    v->type.rank = -1;
    v->producer = -1;
    size_t mask = b->n_slots - 1, i = (size_t)hash_str(name) & mask;
    while (b->slots[i] >= 0) i = (i + 1) & mask;
    b->slots[i] = b->n_values;
    *index = b->n_values++;
    return IFD_OK;
}

/* Resolve a name read in b's graph but not defined there: it must be defined in an enclosing
 * graph; it becomes an OUTER value here (and in every graph in between, so each level's
 * executor frame and topological sort see the dependency). -1 when dangling. */
static ifd_status gb_resolve_outer(loader *L, gbuild *b, const char *name, int *index) {
    *index = gb_find(b, name);
    if (*index >= 0) return IFD_OK;
    if (!b->parent) return IFD_OK;
    int up;
    ifd_status st = gb_resolve_outer(L, b->parent, name, &up);
    if (st || up < 0) return st;
    st = gb_add(L, b, name, IFD_VALUE_OUTER, index);
    if (st) return st;
    b->values[*index].type = b->parent->values[up].type;
    return IFD_OK;
}

/* ---- types --------------------------------------------------------------------------------- */

typedef enum type_kind { TYPE_NONE, TYPE_TENSOR, TYPE_OTHER } type_kind;

static const char *type_case_name(const Onnx__TypeProto *tp) {
    switch (tp->value_case) {
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "sequence";
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "map";
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "optional";
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: return "sparse tensor";
    default: return "unknown";
    }
}

static ifd_status parse_type(loader *L, const Onnx__TypeProto *tp, const char *what,
                             ifd_value_type *vt, type_kind *kind) {
    vt->dtype = IFD_DTYPE_UNDEFINED;
    vt->rank = -1;
    *kind = TYPE_NONE;
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) return IFD_OK;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
        *kind = TYPE_OTHER;
        return IFD_OK;
    }
    *kind = TYPE_TENSOR;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type) {
        if (tt->elem_type < 0 || tt->elem_type >= IFD_DTYPE_COUNT)
            return ifd_error(IFD_ERR_UNSUPPORTED, "%s: unsupported element type %d", what,
                             (int)tt->elem_type);
        vt->dtype = (ifd_dtype)tt->elem_type;
    }
    if (!tt->shape) return IFD_OK;
    if (tt->shape->n_dim > IFD_MAX_RANK)
        return ifd_error(IFD_ERR_UNSUPPORTED, "%s: rank %zu exceeds the maximum of %d", what,
                         tt->shape->n_dim, IFD_MAX_RANK);
    vt->rank = (int)tt->shape->n_dim;
    int64_t known = 1; /* product of the static dims */
    for (int i = 0; i < vt->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        vt->dims[i] = -1;
        vt->dim_names[i] = NULL;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return ifd_error(IFD_ERR_CORRUPT_MODEL, "%s: negative dimension %lld at axis %d",
                                 what, (long long)d->dim_value, i);
            vt->dims[i] = d->dim_value;
            if (!ifd_mul_i64(known, d->dim_value, &known))
                return ifd_error(IFD_ERR_CORRUPT_MODEL,
                                 "%s: dimensions multiply past the int64 range", what);
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && *d->dim_param) {
            vt->dim_names[i] = ifd_arena_strdup(L->m->arena, d->dim_param);
            if (!vt->dim_names[i]) return oom();
        }
    }
    return IFD_OK;
}

/* ---- model-local functions ------------------------------------------------------------------ */

static const Onnx__FunctionProto *find_function(loader *L, const char *domain, const char *name) {
    for (size_t i = 0; i < L->mp->n_functions; i++) {
        const Onnx__FunctionProto *f = L->mp->functions[i];
        if (f->name && !strcmp(f->name, name) &&
            !strcmp(norm_domain(f->domain), norm_domain(domain)))
            return f;
    }
    return NULL;
}

/* The node list of a graph with calls to model-local functions expanded in place. */
typedef struct node_list {
    const Onnx__NodeProto **nodes;
    size_t n, cap;
} node_list;

static ifd_status nl_push(node_list *nl, const Onnx__NodeProto *n) {
    if (nl->n == nl->cap) {
        size_t ncap = nl->cap ? nl->cap * 2 : 64;
        const Onnx__NodeProto **p = ifd_realloc(nl->nodes, ncap * sizeof *p);
        if (!p) return oom();
        nl->nodes = p;
        nl->cap = ncap;
    }
    nl->nodes[nl->n++] = n;
    return IFD_OK;
}

typedef struct name_map {
    const char **from, **to;
    size_t n;
} name_map;

static const char *map_name(const name_map *m, const char *name) {
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->from[i], name)) return m->to[i];
    return NULL;
}

static ifd_status expand_nodes(loader *L, Onnx__NodeProto *const *nodes, size_t n, int fdepth,
                               node_list *out);

/* FunctionProto.attribute_proto (field 11, attribute defaults) is newer than the onnx.proto we
 * compile (1.12), so protobuf-c keeps it as an unknown field: decode it here. The decoded
 * attributes live until the model proto is freed (tracked in L->extra). */
static ifd_status function_default_attr(loader *L, const Onnx__FunctionProto *f,
                                        const char *name, Onnx__AttributeProto **out) {
    *out = NULL;
    for (unsigned i = 0; i < f->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &f->base.unknown_fields[i];
        if (u->tag != 11 || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) continue;
        const uint8_t *p = u->data;
        size_t len = u->len;
        /* protobuf-c keeps the length prefix with the payload; skip it when present */
        uint64_t v = 0;
        size_t k = 0;
        for (int shift = 0; k < len && k < 10; shift += 7) {
            v |= (uint64_t)(p[k] & 0x7f) << shift;
            if (!(p[k++] & 0x80)) break;
        }
        if (k < len && v == len - k) {
            p += k;
            len -= k;
        }
        ifd_status st = ifd_pb_check_nesting(p, len, &onnx__attribute_proto__descriptor,
                                             3 * (IFD_MAX_GRAPH_DEPTH + 1) + 32,
                                             "function attribute default");
        if (st) return st;
        Onnx__AttributeProto *a = onnx__attribute_proto__unpack(&ifd_pb_allocator, len, p);
        if (!a)
            return ifd_error(IFD_ERR_CORRUPT_MODEL,
                             "function '%s': malformed attribute default", f->name);
        if (L->n_extra == L->cap_extra) {
            size_t ncap = L->cap_extra ? L->cap_extra * 2 : 8;
            Onnx__AttributeProto **n = ifd_realloc(L->extra, ncap * sizeof *n);
            if (!n) {
                onnx__attribute_proto__free_unpacked(a, &ifd_pb_allocator);
                return oom();
            }
            L->extra = n;
            L->cap_extra = ncap;
        }
        L->extra[L->n_extra++] = a;
        if (a->name && !strcmp(a->name, name)) *out = a;
        if (*out) return IFD_OK;
    }
    return IFD_OK;
}

/* Expand one call of f: formal inputs/outputs map to the call's names, internal names get a
 * unique prefix, attribute references (ref_attr_name) take the call's attribute values. */
static ifd_status inline_call(loader *L, const Onnx__NodeProto *call,
                              const Onnx__FunctionProto *f, int fdepth, node_list *out) {
    ifd_arena *A = L->m->arena;
    if (fdepth >= MAX_FUNCTION_DEPTH)
        return ifd_error(IFD_ERR_UNSUPPORTED,
                         "node '%s': model-local function '%s' calls nest deeper than %d",
                         call->name ? call->name : "", f->name, MAX_FUNCTION_DEPTH);
    /* Calls nested in calls multiply: cap the expansion, not just its depth. */
    if (f->n_node > MAX_INLINED_NODES - L->inlined_nodes)
        return ifd_error(IFD_ERR_TOO_BIG,
                         "model-local functions expand to more than %u nodes", MAX_INLINED_NODES);
    L->inlined_nodes += (unsigned)f->n_node;
    unsigned id = L->inline_counter++;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s__%u__", f->name, id);

    /* Map of formal -> actual names; internal outputs are renamed on first sight. */
    size_t cap = f->n_input + f->n_output;
    for (size_t i = 0; i < f->n_node; i++) cap += f->node[i]->n_output;
    name_map nm = {ifd_arena_alloc(A, (cap + 1) * sizeof(char *)),
                   ifd_arena_alloc(A, (cap + 1) * sizeof(char *)), 0};
    if (!nm.from || !nm.to) return oom();
    for (size_t i = 0; i < f->n_input; i++) {
        nm.from[nm.n] = f->input[i];
        nm.to[nm.n++] = i < call->n_input ? call->input[i] : "";
    }
    for (size_t i = 0; i < f->n_output; i++) {
        nm.from[nm.n] = f->output[i];
        nm.to[nm.n++] = i < call->n_output ? call->output[i] : "";
    }
    for (size_t i = 0; i < f->n_node; i++)
        for (size_t j = 0; j < f->node[i]->n_output; j++) {
            const char *o = f->node[i]->output[j];
            if (!*o || map_name(&nm, o)) continue;
            size_t len = strlen(prefix) + strlen(o) + 1;
            char *r = ifd_arena_alloc(A, len);
            if (!r) return oom();
            snprintf(r, len, "%s%s", prefix, o);
            nm.from[nm.n] = o;
            nm.to[nm.n++] = r;
        }

    Onnx__NodeProto **copies = ifd_arena_alloc(A, (f->n_node + 1) * sizeof *copies);
    if (!copies) return oom();
    for (size_t i = 0; i < f->n_node; i++) {
        const Onnx__NodeProto *src = f->node[i];
        Onnx__NodeProto *c = ifd_arena_alloc(A, sizeof *c);
        if (!c) return oom();
        *c = *src;
        c->input = ifd_arena_alloc(A, (src->n_input + 1) * sizeof(char *));
        c->output = ifd_arena_alloc(A, (src->n_output + 1) * sizeof(char *));
        c->attribute = ifd_arena_alloc(A, (src->n_attribute + 1) * sizeof(void *));
        if (!c->input || !c->output || !c->attribute) return oom();
        for (size_t j = 0; j < src->n_input; j++) {
            const char *m = *src->input[j] ? map_name(&nm, src->input[j]) : "";
            c->input[j] = (char *)(m ? m : src->input[j]); /* unmapped: outer/graph name */
        }
        for (size_t j = 0; j < src->n_output; j++) {
            const char *m = *src->output[j] ? map_name(&nm, src->output[j]) : "";
            c->output[j] = (char *)(m ? m : "");
        }
        size_t na = 0;
        for (size_t j = 0; j < src->n_attribute; j++) {
            Onnx__AttributeProto *a = src->attribute[j];
            if (a->ref_attr_name && *a->ref_attr_name) {
                Onnx__AttributeProto *actual = NULL;
                for (size_t k = 0; k < call->n_attribute; k++)
                    if (call->attribute[k]->name &&
                        !strcmp(call->attribute[k]->name, a->ref_attr_name))
                        actual = call->attribute[k];
                if (!actual) {
                    ifd_status st = function_default_attr(L, f, a->ref_attr_name, &actual);
                    if (st) return st;
                }
                if (!actual) continue; /* no value and no default: the op's default applies */
                Onnx__AttributeProto *r = ifd_arena_alloc(A, sizeof *r);
                if (!r) return oom();
                *r = *actual;
                r->name = a->name;
                c->attribute[na++] = r;
            } else {
                c->attribute[na++] = a;
            }
        }
        c->n_attribute = na;
        if (!c->name || !*c->name) {
            size_t len = strlen(prefix) + 24;
            char *nn = ifd_arena_alloc(A, len);
            if (!nn) return oom();
            snprintf(nn, len, "%s%zu", prefix, i);
            c->name = nn;
        }
        copies[i] = c;
    }
    return expand_nodes(L, copies, f->n_node, fdepth + 1, out);
}

static ifd_status expand_nodes(loader *L, Onnx__NodeProto *const *nodes, size_t n, int fdepth,
                               node_list *out) {
    for (size_t i = 0; i < n; i++) {
        const Onnx__NodeProto *np = nodes[i];
        const Onnx__FunctionProto *f =
            L->mp->n_functions && np->op_type ? find_function(L, np->domain, np->op_type) : NULL;
        ifd_status st = f ? inline_call(L, np, f, fdepth, out) : nl_push(out, np);
        if (st) return st;
    }
    return IFD_OK;
}

/* ---- attributes ---------------------------------------------------------------------------- */

static ifd_status build_graph(loader *L, gbuild *parent, const Onnx__GraphProto *gp, int depth,
                              ifd_graph **out);

static ifd_attr_type infer_attr_type(const Onnx__AttributeProto *a) {
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
        return (ifd_attr_type)a->type;
    /* IR v1 files may omit the type: take the field that is set. */
    if (a->has_f) return IFD_ATTR_FLOAT;
    if (a->has_i) return IFD_ATTR_INT;
    if (a->has_s) return IFD_ATTR_STRING;
    if (a->t) return IFD_ATTR_TENSOR;
    if (a->g) return IFD_ATTR_GRAPH;
    if (a->sparse_tensor) return IFD_ATTR_SPARSE_TENSOR;
    if (a->tp) return IFD_ATTR_TYPE_PROTO;
    if (a->n_floats) return IFD_ATTR_FLOATS;
    if (a->n_ints) return IFD_ATTR_INTS;
    if (a->n_strings) return IFD_ATTR_STRINGS;
    if (a->n_tensors) return IFD_ATTR_TENSORS;
    if (a->n_graphs) return IFD_ATTR_GRAPHS;
    if (a->n_sparse_tensors) return IFD_ATTR_SPARSE_TENSORS;
    if (a->n_type_protos) return IFD_ATTR_TYPE_PROTOS;
    return IFD_ATTR_UNDEFINED;
}

static ifd_status parse_attr(loader *L, gbuild *b, const ifd_node *node,
                             const Onnx__AttributeProto *a, ifd_attr *out) {
    ifd_arena *A = L->m->arena;
    ifd_status st;
    char what[512];
    const char *aname = a->name ? a->name : "";
    snprintf(what, sizeof what, "node '%s' (%s) attribute '%s'", node->name, node->op_type, aname);
    if (!*aname)
        return ifd_error(IFD_ERR_CORRUPT_MODEL, "node '%s' (%s): attribute without a name",
                         node->name, node->op_type);
    if (a->ref_attr_name && *a->ref_attr_name)
        return ifd_error(IFD_ERR_CORRUPT_MODEL,
                         "%s refers to attribute '%s' outside a function body", what,
                         a->ref_attr_name);
    out->name = ifd_arena_strdup(A, aname);
    if (!out->name) return oom();
    out->type = infer_attr_type(a);
    switch (out->type) {
    case IFD_ATTR_FLOAT: out->f = a->f; break;
    case IFD_ATTR_INT: out->i = a->i; break;
    case IFD_ATTR_STRING:
        out->s = ifd_arena_strndup(A, (const char *)a->s.data, a->s.len);
        if (!out->s) return oom();
        out->s_len = a->s.len;
        break;
    case IFD_ATTR_TENSOR:
    case IFD_ATTR_SPARSE_TENSOR: {
        ifd_tensor *t;
        if (out->type == IFD_ATTR_TENSOR) {
            if (!a->t) return ifd_error(IFD_ERR_CORRUPT_MODEL, "%s: tensor missing", what);
            st = ifd_onnx_tensor_from_proto(a->t, L->base_dir, what, &t);
        } else {
            if (!a->sparse_tensor)
                return ifd_error(IFD_ERR_CORRUPT_MODEL, "%s: sparse tensor missing", what);
            st = ifd_onnx_tensor_from_sparse(a->sparse_tensor, L->base_dir, what, &t);
        }
        if (st) return st;
        if ((st = model_add_tensor(L->m, t))) return st;
        out->t = t;
        break;
    }
    case IFD_ATTR_GRAPH:
        if (!a->g) return ifd_error(IFD_ERR_CORRUPT_MODEL, "%s: graph missing", what);
        st = build_graph(L, b, a->g, b->g->depth + 1, &out->g);
        if (st) return ifd_error_prefix(st, "%s", what);
        break;
    case IFD_ATTR_FLOATS:
        out->n = a->n_floats;
        out->floats = ifd_arena_alloc(A, (a->n_floats + 1) * sizeof(float));
        if (!out->floats) return oom();
        if (a->n_floats) memcpy(out->floats, a->floats, a->n_floats * sizeof(float));
        break;
    case IFD_ATTR_INTS:
        out->n = a->n_ints;
        out->ints = ifd_arena_alloc(A, (a->n_ints + 1) * sizeof(int64_t));
        if (!out->ints) return oom();
        if (a->n_ints) memcpy(out->ints, a->ints, a->n_ints * sizeof(int64_t));
        break;
    case IFD_ATTR_STRINGS:
        out->n = a->n_strings;
        out->strings = ifd_arena_alloc(A, (a->n_strings + 1) * sizeof(char *));
        if (!out->strings) return oom();
        for (size_t i = 0; i < a->n_strings; i++) {
            out->strings[i] =
                ifd_arena_strndup(A, (const char *)a->strings[i].data, a->strings[i].len);
            if (!out->strings[i]) return oom();
        }
        break;
    case IFD_ATTR_TENSORS:
    case IFD_ATTR_SPARSE_TENSORS: {
        size_t n = out->type == IFD_ATTR_TENSORS ? a->n_tensors : a->n_sparse_tensors;
        out->n = n;
        out->tensors = ifd_arena_alloc(A, (n + 1) * sizeof(ifd_tensor *));
        if (!out->tensors) return oom();
        for (size_t i = 0; i < n; i++) {
            ifd_tensor *t;
            st = out->type == IFD_ATTR_TENSORS
                     ? ifd_onnx_tensor_from_proto(a->tensors[i], L->base_dir, what, &t)
                     : ifd_onnx_tensor_from_sparse(a->sparse_tensors[i], L->base_dir, what, &t);
            if (st) return st;
            if ((st = model_add_tensor(L->m, t))) return st;
            out->tensors[i] = t;
        }
        break;
    }
    case IFD_ATTR_GRAPHS:
        out->n = a->n_graphs;
        out->graphs = ifd_arena_alloc(A, (a->n_graphs + 1) * sizeof(ifd_graph *));
        if (!out->graphs) return oom();
        for (size_t i = 0; i < a->n_graphs; i++) {
            st = build_graph(L, b, a->graphs[i], b->g->depth + 1, &out->graphs[i]);
            if (st) return ifd_error_prefix(st, "%s[%zu]", what, i);
        }
        break;
    case IFD_ATTR_TYPE_PROTO:
    case IFD_ATTR_TYPE_PROTOS:
        break; /* only sequence/optional operators use these */
    default:
        return ifd_error(IFD_ERR_CORRUPT_MODEL, "%s: unknown attribute type %d", what,
                         (int)a->type);
    }
    return IFD_OK;
}

/* ---- graphs ---------------------------------------------------------------------------------- */

static int64_t opset_for(const ifd_model *m, const char *domain) {
    const char *d = norm_domain(domain);
    for (size_t i = 0; i < m->n_opsets; i++)
        if (!strcmp(m->opsets[i].domain, d)) return m->opsets[i].version;
    /* IR v1/v2 files predate opset_import: the default domain is then opset 1. */
    if (!*d && m->n_opsets == 0) return 1;
    return 0; /* not imported: validation reports it for a known operator */
}

static ifd_status check_io_type(const char *role, const char *name, const Onnx__TypeProto *tp,
                                type_kind kind, const ifd_value_type *vt, bool required) {
    if (kind == TYPE_OTHER)
        return ifd_error(IFD_ERR_UNSUPPORTED, "%s '%s' has %s type (unsupported)", role, name,
                         type_case_name(tp));
    if (kind == TYPE_NONE) {
        if (required)
            return ifd_error(IFD_ERR_CORRUPT_MODEL, "%s '%s' has no tensor type", role, name);
        return IFD_OK;
    }
    if (vt->dtype == IFD_DTYPE_UNDEFINED && required)
        return ifd_error(IFD_ERR_CORRUPT_MODEL, "%s '%s' has no element type", role, name);
    return IFD_OK;
}

static ifd_status build_graph(loader *L, gbuild *parent, const Onnx__GraphProto *gp, int depth,
                              ifd_graph **out) {
    ifd_model *m = L->m;
    ifd_arena *A = m->arena;
    ifd_status st = IFD_OK;
    gbuild b = {0};
    node_list nl = {0};
    char what[512];
    int idx;

    if (depth > IFD_MAX_GRAPH_DEPTH)
        return ifd_error(IFD_ERR_TOO_BIG, "subgraphs nest deeper than %d levels",
                         IFD_MAX_GRAPH_DEPTH);
    ifd_graph *g = ifd_arena_alloc(A, sizeof *g);
    if (!g) return oom();
    g->name = ifd_arena_strdup(A, gp->name ? gp->name : "");
    if (!g->name) return oom();
    g->parent = parent ? parent->g : NULL;
    g->depth = depth;
    b.g = g;
    b.parent = parent;

    if (gp->n_node > (size_t)INT32_MAX / 4 || gp->n_input > (size_t)INT32_MAX / 4 ||
        gp->n_output > (size_t)INT32_MAX / 4 || gp->n_initializer > (size_t)INT32_MAX / 4) {
        st = ifd_error(IFD_ERR_TOO_BIG, "graph '%s' is too large", g->name);
        goto out;
    }

    /* Initializers (dense and sparse). */
    size_t n_init = gp->n_initializer + gp->n_sparse_initializer;
    for (size_t i = 0; i < n_init; i++) {
        bool sparse = i >= gp->n_initializer;
        const Onnx__SparseTensorProto *sp = sparse ? gp->sparse_initializer[i - gp->n_initializer]
                                                   : NULL;
        const Onnx__TensorProto *tp = sparse ? sp->values : gp->initializer[i];
        const char *name = tp && tp->name ? tp->name : "";
        ifd_tensor *t;
        if (!*name) {
            st = ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': initializer %zu has no name",
                           g->name, i);
            goto out;
        }
        if (gb_find(&b, name) >= 0) {
            st = ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': duplicate initializer '%s'",
                           g->name, name);
            goto out;
        }
        snprintf(what, sizeof what, "initializer '%s'", name);
        /* The main graph's initializers are decoded once: adopt protobuf-c's copy of the
         * bytes (peak memory ~1x the weights). Subgraphs may be built more than once (a
         * function body's graph attribute inlined twice), so they copy. */
        if (sparse)
            st = ifd_onnx_tensor_from_sparse(sp, L->base_dir, what, &t);
        else if (depth == 0)
            st = ifd_onnx_tensor_take_proto((Onnx__TensorProto *)tp, L->base_dir, what, &t);
        else
            st = ifd_onnx_tensor_from_proto(tp, L->base_dir, what, &t);
        if (st) goto out;
        if ((st = model_add_tensor(m, t))) goto out;
        if ((st = gb_add(L, &b, name, IFD_VALUE_INITIALIZER, &idx))) goto out;
        ifd_value *v = &b.values[idx];
        v->constant = t;
        v->type.dtype = t->dtype;
        v->type.rank = t->rank;
        for (int r = 0; r < t->rank; r++) v->type.dims[r] = t->dims[r];
        if (depth == 0) {
            if (!ifd_add_i64(m->param_count, t->count, &m->param_count) ||
                !ifd_add_i64(m->param_bytes, (int64_t)ifd_tensor_nbytes(t), &m->param_bytes)) {
                st = ifd_error(IFD_ERR_TOO_BIG, "model parameters overflow");
                goto out;
            }
        }
    }

    /* Graph inputs; initializers also listed as inputs stay initializers (overridable). */
    g->inputs = ifd_arena_alloc(A, (gp->n_input + 1) * sizeof(int));
    if (!g->inputs) {
        st = oom();
        goto out;
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = vi->name ? vi->name : "";
        ifd_value_type vt;
        type_kind kind;
        if (!*name) {
            st = ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': input %zu has no name", g->name, i);
            goto out;
        }
        snprintf(what, sizeof what, "graph input '%s'", name);
        if ((st = parse_type(L, vi->type, what, &vt, &kind))) goto out;
        int ex = gb_find(&b, name);
        if (ex >= 0 && b.values[ex].kind == IFD_VALUE_INITIALIZER && !b.values[ex].overridable) {
            b.values[ex].overridable = true;
            continue;
        }
        if (ex >= 0) {
            st = ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': duplicate input '%s'", g->name,
                           name);
            goto out;
        }
        if ((st = check_io_type("graph input", name, vi->type, kind, &vt, depth == 0))) goto out;
        if ((st = gb_add(L, &b, name, IFD_VALUE_INPUT, &idx))) goto out;
        b.values[idx].type = vt;
        g->inputs[g->n_inputs++] = idx;
    }

    /* Nodes (model-local function calls expanded); register their outputs first so a node
     * may be listed before its producer (validation sorts them). */
    if ((st = expand_nodes(L, gp->node, gp->n_node, 0, &nl))) goto out;
    if (nl.n > (size_t)INT32_MAX / 4) {
        st = ifd_error(IFD_ERR_TOO_BIG, "graph '%s' has too many nodes", g->name);
        goto out;
    }
    g->n_nodes = (int)nl.n;
    g->nodes = ifd_arena_alloc(A, (nl.n + 1) * sizeof(ifd_node));
    if (!g->nodes) {
        st = oom();
        goto out;
    }
    for (size_t i = 0; i < nl.n; i++) {
        const Onnx__NodeProto *np = nl.nodes[i];
        ifd_node *n = &g->nodes[i];
        const char *op_type = np->op_type ? np->op_type : "";
        if (!*op_type) {
            st = ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': node %zu has no op_type", g->name,
                           i);
            goto out;
        }
        n->op_type = ifd_arena_strdup(A, op_type);
        n->domain = ifd_arena_strdup(A, norm_domain(np->domain));
        if (np->name && *np->name) {
            n->name = ifd_arena_strdup(A, np->name);
        } else {
            char buf[64];
            snprintf(buf, sizeof buf, "_%zu", i);
            size_t len = strlen(op_type) + strlen(buf) + 1;
            char *s = ifd_arena_alloc(A, len);
            if (s) snprintf(s, len, "%s%s", op_type, buf);
            n->name = s;
        }
        if (!n->op_type || !n->domain || !n->name) {
            st = oom();
            goto out;
        }
        int64_t ver = opset_for(m, n->domain);
        n->opset = ver > INT32_MAX ? INT32_MAX : (int)ver;
        n->op = ifd_op_find(n->domain, n->op_type);
        if (np->n_input > 65536 || np->n_output > 65536 || np->n_attribute > 65536) {
            st = ifd_error(IFD_ERR_TOO_BIG, "node '%s': too many inputs, outputs or attributes",
                           n->name);
            goto out;
        }
        n->n_outputs = (int)np->n_output;
        n->outputs = ifd_arena_alloc(A, (np->n_output + 1) * sizeof(int));
        if (!n->outputs) {
            st = oom();
            goto out;
        }
        for (size_t j = 0; j < np->n_output; j++) {
            const char *o = np->output[j];
            n->outputs[j] = -1;
            if (!*o) continue;
            int ex = gb_find(&b, o);
            if (ex >= 0) {
                const ifd_value *e = &b.values[ex];
                const char *kind = e->kind == IFD_VALUE_INITIALIZER ? "an initializer"
                                   : e->kind == IFD_VALUE_INPUT     ? "a graph input"
                                                                    : "another node's output";
                st = ifd_error(IFD_ERR_CORRUPT_MODEL,
                               "node '%s' (%s): output '%s' is also %s (duplicate value name)",
                               n->name, n->op_type, o, kind);
                goto out;
            }
            if ((st = gb_add(L, &b, o, IFD_VALUE_NODE_OUTPUT, &idx))) goto out;
            b.values[idx].producer = (int)i;
            n->outputs[j] = idx;
        }
    }
    /* Declared types of intermediate values and outputs. */
    for (size_t pass = 0; pass < 2; pass++) {
        size_t cnt = pass ? gp->n_output : gp->n_value_info;
        Onnx__ValueInfoProto **vis = pass ? gp->output : gp->value_info;
        for (size_t i = 0; i < cnt; i++) {
            const char *name = vis[i]->name ? vis[i]->name : "";
            int ex = gb_find(&b, name);
            ifd_value_type vt;
            type_kind kind;
            if (ex < 0 || b.values[ex].type.dtype != IFD_DTYPE_UNDEFINED) continue;
            snprintf(what, sizeof what, "value '%s'", name);
            if ((st = parse_type(L, vis[i]->type, what, &vt, &kind))) goto out;
            if (kind == TYPE_TENSOR) b.values[ex].type = vt;
        }
    }
    /* Node inputs and attributes (subgraphs capture outer names into this table). */
    for (size_t i = 0; i < nl.n; i++) {
        const Onnx__NodeProto *np = nl.nodes[i];
        ifd_node *n = &g->nodes[i];
        n->n_inputs = (int)np->n_input;
        n->inputs = ifd_arena_alloc(A, (np->n_input + 1) * sizeof(int));
        if (!n->inputs) {
            st = oom();
            goto out;
        }
        for (size_t j = 0; j < np->n_input; j++) {
            const char *in = np->input[j];
            n->inputs[j] = -1;
            if (!*in) continue;
            if ((st = gb_resolve_outer(L, &b, in, &idx))) goto out;
            if (idx < 0) {
                st = ifd_error(IFD_ERR_CORRUPT_MODEL,
                               "node '%s' (%s): input '%s' is not produced by any node, graph "
                               "input or initializer%s",
                               n->name, n->op_type, in, depth ? " (nor an outer scope)" : "");
                goto out;
            }
            n->inputs[j] = idx;
        }
        n->n_attrs = (int)np->n_attribute;
        n->attrs = ifd_arena_alloc(A, (np->n_attribute + 1) * sizeof(ifd_attr));
        if (!n->attrs) {
            st = oom();
            goto out;
        }
        for (size_t j = 0; j < np->n_attribute; j++) {
            if ((st = parse_attr(L, &b, n, np->attribute[j], &n->attrs[j]))) goto out;
            for (size_t k = 0; k < j; k++)
                if (!strcmp(n->attrs[k].name, n->attrs[j].name)) {
                    st = ifd_error(IFD_ERR_CORRUPT_MODEL, "node '%s' (%s): duplicate attribute '%s'",
                                   n->name, n->op_type, n->attrs[j].name);
                    goto out;
                }
        }
    }

    /* Graph outputs. */
    g->n_outputs = (int)gp->n_output;
    g->outputs = ifd_arena_alloc(A, (gp->n_output + 1) * sizeof(int));
    if (!g->outputs) {
        st = oom();
        goto out;
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = vi->name ? vi->name : "";
        ifd_value_type vt;
        type_kind kind;
        snprintf(what, sizeof what, "graph output '%s'", name);
        if ((st = parse_type(L, vi->type, what, &vt, &kind))) goto out;
        if ((st = check_io_type("graph output", name, vi->type, kind, &vt, false))) goto out;
        if (!*name) {
            st = ifd_error(IFD_ERR_CORRUPT_MODEL, "graph '%s': output %zu has no name", g->name, i);
            goto out;
        }
        if ((st = gb_resolve_outer(L, &b, name, &idx))) goto out;
        if (idx < 0) {
            st = ifd_error(IFD_ERR_CORRUPT_MODEL,
                           "graph '%s': output '%s' is not produced by any node, input or "
                           "initializer",
                           g->name, name);
            goto out;
        }
        g->outputs[i] = idx;
    }

    /* Freeze the value table into the arena. */
    g->n_values = b.n_values;
    g->values = ifd_arena_alloc(A, ((size_t)b.n_values + 1) * sizeof(ifd_value));
    if (!g->values) {
        st = oom();
        goto out;
    }
    if (b.n_values) memcpy(g->values, b.values, (size_t)b.n_values * sizeof(ifd_value));
    *out = g;
out:
    ifd_free(b.values);
    ifd_free(b.slots);
    ifd_free(nl.nodes);
    return st;
}

/* ---- model ------------------------------------------------------------------------------------ */

static ifd_status count_op_kinds(ifd_model *m, const ifd_graph *g, size_t *cap) {
    for (int i = 0; i < g->n_nodes; i++) {
        const ifd_node *n = &g->nodes[i];
        size_t k;
        for (k = 0; k < m->n_op_kinds; k++)
            if (!strcmp(m->op_kinds[k].op_type, n->op_type) &&
                !strcmp(m->op_kinds[k].domain, n->domain))
                break;
        if (k == m->n_op_kinds) {
            if (m->n_op_kinds == *cap) {
                size_t ncap = *cap ? *cap * 2 : 32;
                ifd_op_kind_count *p = ifd_realloc(m->op_kinds, ncap * sizeof *p);
                if (!p) return oom();
                m->op_kinds = p;
                *cap = ncap;
            }
            m->op_kinds[k].op_type = n->op_type;
            m->op_kinds[k].domain = n->domain;
            m->op_kinds[k].count = 0;
            m->n_op_kinds++;
        }
        m->op_kinds[k].count++;
        for (int a = 0; a < n->n_attrs; a++) {
            const ifd_attr *at = &n->attrs[a];
            ifd_status st = IFD_OK;
            if (at->type == IFD_ATTR_GRAPH && at->g) st = count_op_kinds(m, at->g, cap);
            for (size_t j = 0; !st && at->type == IFD_ATTR_GRAPHS && j < at->n; j++)
                st = count_op_kinds(m, at->graphs[j], cap);
            if (st) return st;
        }
    }
    return IFD_OK;
}

static ifd_status build_model(loader *L) {
    ifd_model *m = L->m;
    const Onnx__ModelProto *mp = L->mp;
    ifd_status st;
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->producer_name = ifd_arena_strdup(m->arena, mp->producer_name ? mp->producer_name : "");
    m->producer_version =
        ifd_arena_strdup(m->arena, mp->producer_version ? mp->producer_version : "");
    if (!m->producer_name || !m->producer_version) return oom();
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *d = norm_domain(o->domain);
        int64_t ver = o->has_version ? o->version : 0;
        size_t k;
        for (k = 0; k < m->n_opsets; k++)
            if (!strcmp(m->opsets[k].domain, d)) break;
        if (k == m->n_opsets) {
            if (m->n_opsets == IFD_ARRAY_LEN(m->opsets))
                return ifd_error(IFD_ERR_TOO_BIG, "model imports more than %zu opsets",
                                 IFD_ARRAY_LEN(m->opsets));
            m->opsets[k].domain = ifd_arena_strdup(m->arena, d);
            if (!m->opsets[k].domain) return oom();
            m->n_opsets++;
        }
        m->opsets[k].version = ver;
        if (!*d && (ver < 1 || ver > IFD_MAX_OPSET))
            return ifd_error(IFD_ERR_UNSUPPORTED,
                             "model imports opset %lld of the default domain; supported: 1 to %d",
                             (long long)ver, IFD_MAX_OPSET);
    }
    if (m->n_opsets == 0 && m->ir_version >= 3)
        return ifd_error(IFD_ERR_CORRUPT_MODEL,
                         "model (IR version %lld) imports no opset (opset_import is empty)",
                         (long long)m->ir_version);
    if (!mp->graph) return ifd_error(IFD_ERR_CORRUPT_MODEL, "model has no graph");
    st = build_graph(L, NULL, mp->graph, 0, &m->graph);
    if (st) return st;
    st = ifd_graph_validate(m->graph);
    if (st) return st;
    size_t cap = 0;
    return count_op_kinds(m, m->graph, &cap);
}

/* owned: the caller's buffer holding data, freed right after unpacking (peak memory). */
static ifd_status load_impl(const void *data, size_t size, const char *base_dir, void **owned,
                            ifd_model **out) {
    ifd_status st;
    ifd_model *m = NULL;
    Onnx__ModelProto *mp = NULL;
    if (!out) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!data && size) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "data is NULL");
    if (size == 0) return ifd_error(IFD_ERR_CORRUPT_MODEL, "model is empty (0 bytes)");
    if (size > IFD_MAX_MODEL_BYTES)
        return ifd_error(IFD_ERR_TOO_BIG, "model is %zu bytes; the limit is %zu", size,
                         IFD_MAX_MODEL_BYTES);
    st = ifd_pb_check_nesting(data, size, &onnx__model_proto__descriptor, MAX_MESSAGE_DEPTH,
                              "model");
    if (st) return st;
    ifd_pb_alloc_failed_take();
    mp = onnx__model_proto__unpack(&ifd_pb_allocator, size, data);
    if (!mp) {
        if (ifd_pb_alloc_failed_take())
            return ifd_error(IFD_ERR_NO_MEMORY, "out of memory decoding the model");
        return ifd_error(IFD_ERR_CORRUPT_MODEL, "model is not a valid ONNX ModelProto");
    }
    if (owned) {
        ifd_free(*owned);
        *owned = NULL;
    }
    m = ifd_calloc(1, sizeof *m);
    if (!m || !(m->arena = ifd_arena_create(65536))) {
        st = oom();
        goto out;
    }
    if (base_dir && !(m->base_dir = ifd_arena_strdup(m->arena, base_dir))) {
        st = oom();
        goto out;
    }
    loader L = {m, mp, m->base_dir, 0, 0, NULL, 0, 0};
    st = build_model(&L);
    for (size_t i = 0; i < L.n_extra; i++)
        onnx__attribute_proto__free_unpacked(L.extra[i], &ifd_pb_allocator);
    ifd_free(L.extra);
    if (st) goto out;
    *out = m;
    m = NULL;
out:
    onnx__model_proto__free_unpacked(mp, &ifd_pb_allocator);
    ifd_model_free(m);
    return st;
}

ifd_status ifd_model_load_memory(const void *data, size_t size, const char *base_dir,
                                 ifd_model **out) {
    return load_impl(data, size, base_dir, NULL, out);
}

ifd_status ifd_model_load_file(const char *path, ifd_model **out) {
    void *data = NULL;
    size_t size = 0;
    char *dir = NULL;
    ifd_status st;
    if (!out || !path) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "path or out is NULL");
    *out = NULL;
    /* Read, not mmap: a file truncated or rewritten while it is being loaded (a model
     * repository being updated) must give an error, not SIGBUS. */
    st = ifd_read_file(path, IFD_MAX_MODEL_BYTES, &data, &size);
    if (st) return st;
    const char *slash = strrchr(path, '/');
    dir = slash ? ifd_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : ifd_strdup(".");
    if (!dir) {
        st = oom();
        goto out;
    }
    st = load_impl(data, size, dir, &data, out);
    if (st) ifd_error_prefix(st, "'%s'", path);
out:
    ifd_free(dir);
    ifd_free(data);
    return st;
}

void ifd_model_free(ifd_model *model) {
    if (!model) return;
    for (size_t i = 0; i < model->n_tensors; i++) ifd_tensor_free(model->tensors[i]);
    ifd_free(model->tensors);
    ifd_free(model->op_kinds);
    ifd_arena_free(model->arena);
    ifd_free(model);
}

size_t ifd_model_input_count(const ifd_model *model) {
    return model && model->graph ? (size_t)model->graph->n_inputs : 0;
}

size_t ifd_model_output_count(const ifd_model *model) {
    return model && model->graph ? (size_t)model->graph->n_outputs : 0;
}

static void fill_info(const ifd_value *v, ifd_io_info *out) {
    memset(out, 0, sizeof *out);
    out->name = v->name;
    out->dtype = v->type.dtype;
    out->rank = v->type.rank;
    for (int i = 0; i < v->type.rank && i < IFD_MAX_RANK; i++) {
        out->dims[i] = v->type.dims[i];
        out->dim_names[i] = v->type.dim_names[i];
    }
}

ifd_status ifd_model_input_info(const ifd_model *model, size_t index, ifd_io_info *out) {
    if (!model || !out || index >= ifd_model_input_count(model))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "input index %zu out of range", index);
    fill_info(&model->graph->values[model->graph->inputs[index]], out);
    return IFD_OK;
}

ifd_status ifd_model_output_info(const ifd_model *model, size_t index, ifd_io_info *out) {
    if (!model || !out || index >= ifd_model_output_count(model))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "output index %zu out of range", index);
    fill_info(&model->graph->values[model->graph->outputs[index]], out);
    return IFD_OK;
}

void ifd_model_summary_get(const ifd_model *model, ifd_model_summary *out) {
    memset(out, 0, sizeof *out);
    if (!model) return;
    out->ir_version = model->ir_version;
    out->producer_name = model->producer_name;
    out->producer_version = model->producer_version;
    out->opset_count = model->n_opsets;
    for (size_t i = 0; i < model->n_opsets && i < 16; i++) {
        out->opset_domains[i] = model->opsets[i].domain;
        out->opset_versions[i] = model->opsets[i].version;
    }
    out->node_count = model->graph ? (size_t)model->graph->n_nodes : 0;
    out->param_count = model->param_count;
    out->param_bytes = model->param_bytes;
}

size_t ifd_model_op_kinds(const ifd_model *model) { return model ? model->n_op_kinds : 0; }

void ifd_model_op_kind(const ifd_model *model, size_t index, const char **op_type,
                       const char **domain, size_t *count) {
    if (!model || index >= model->n_op_kinds) {
        if (op_type) *op_type = NULL;
        if (domain) *domain = NULL;
        if (count) *count = 0;
        return;
    }
    if (op_type) *op_type = model->op_kinds[index].op_type;
    if (domain) *domain = model->op_kinds[index].domain;
    if (count) *count = model->op_kinds[index].count;
}
