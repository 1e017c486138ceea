/* opt/onnx_edit: decode, change and re-encode ONNX models with protobuf-c (see onnx_edit.h). */
#include "opt/onnx_edit.h"

#include "onnx/onnx_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Protobuf messages nest this deep at most (graphs in attributes in nodes in graphs...);
 * the same bound the loader uses, so a file the loader accepts is accepted here. */
#define EDIT_MAX_MESSAGE_DEPTH 256

static ifd_status oom(void) { return ifd_error(IFD_ERR_NO_MEMORY, "out of memory editing the model"); }

/* ---- a set of names (open addressing; grows at half full) ------------------------------- */

typedef struct ifd_onnx_name_set {
    char **slots;
    long *values;
    size_t cap, count;
} name_set;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void set_free(name_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++) ifd_free(s->slots[i]);
    ifd_free(s->slots);
    ifd_free(s->values);
    ifd_free(s);
}

static long *set_find(const name_set *s, const char *name) {
    if (!s->cap) return NULL;
    for (size_t i = hash_str(name) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slots[i]) return NULL;
        if (!strcmp(s->slots[i], name)) return &s->values[i];
    }
}

static bool set_grow(name_set *s) {
    size_t cap = s->cap ? s->cap * 2 : 256;
    char **slots = ifd_calloc(cap, sizeof *slots);
    long *values = ifd_calloc(cap, sizeof *values);
    if (!slots || !values) {
        ifd_free(slots);
        ifd_free(values);
        return false;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i]) continue;
        size_t j = hash_str(s->slots[i]) & (cap - 1);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
        values[j] = s->values[i];
    }
    ifd_free(s->slots);
    ifd_free(s->values);
    s->slots = slots;
    s->values = values;
    s->cap = cap;
    return true;
}

/* Insert name (copied) with value unless present; false when out of memory. */
static bool set_put(name_set *s, const char *name, long value) {
    if (!name || !*name || set_find(s, name)) return true;
    if ((s->count + 1) * 2 > s->cap && !set_grow(s)) return false;
    size_t i = hash_str(name) & (s->cap - 1);
    while (s->slots[i]) i = (i + 1) & (s->cap - 1);
    if (!(s->slots[i] = ifd_strdup(name))) return false;
    s->values[i] = value;
    s->count++;
    return true;
}

static bool collect_graph_names(name_set *s, const Onnx__GraphProto *g);

static bool collect_node_names(name_set *s, const Onnx__NodeProto *n) {
    if (!set_put(s, n->name, 0)) return false;
    for (size_t j = 0; j < n->n_input; j++)
        if (!set_put(s, n->input[j], 0)) return false;
    for (size_t j = 0; j < n->n_output; j++)
        if (!set_put(s, n->output[j], 0)) return false;
    for (size_t a = 0; a < n->n_attribute; a++) {
        const Onnx__AttributeProto *at = n->attribute[a];
        if (at->g && !collect_graph_names(s, at->g)) return false;
        for (size_t k = 0; k < at->n_graphs; k++)
            if (!collect_graph_names(s, at->graphs[k])) return false;
    }
    return true;
}

static bool collect_graph_names(name_set *s, const Onnx__GraphProto *g) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!set_put(s, g->initializer[i]->name, 0)) return false;
    for (size_t i = 0; i < g->n_input; i++)
        if (!set_put(s, g->input[i]->name, 0)) return false;
    for (size_t i = 0; i < g->n_output; i++)
        if (!set_put(s, g->output[i]->name, 0)) return false;
    for (size_t i = 0; i < g->n_value_info; i++)
        if (!set_put(s, g->value_info[i]->name, 0)) return false;
    for (size_t i = 0; i < g->n_node; i++)
        if (!collect_node_names(s, g->node[i])) return false;
    return true;
}

/* ---- load / free / write ------------------------------------------------------------------ */

static ifd_status check_no_external(const Onnx__GraphProto *g, int depth) {
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL ||
            t->n_external_data)
            return ifd_error(IFD_ERR_UNSUPPORTED,
                             "initializer '%s' stores its data in an external file; external "
                             "data is not supported here (save the model as one file)",
                             t->name ? t->name : "");
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t a = 0; a < n->n_attribute; a++) {
            const Onnx__AttributeProto *at = n->attribute[a];
            ifd_status st = IFD_OK;
            if (at->t && (at->t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL ||
                          at->t->n_external_data))
                return ifd_error(IFD_ERR_UNSUPPORTED,
                                 "node '%s' (%s): attribute '%s' stores its tensor in an external "
                                 "file; external data is not supported here",
                                 n->name ? n->name : "", n->op_type ? n->op_type : "",
                                 at->name ? at->name : "");
            if (depth < 64 && at->g) st = check_no_external(at->g, depth + 1);
            for (size_t k = 0; !st && depth < 64 && k < at->n_graphs; k++)
                st = check_no_external(at->graphs[k], depth + 1);
            if (st) return st;
        }
    }
    return IFD_OK;
}

void ifd_onnx_edit_free(ifd_onnx_edit *e) {
    if (!e) return;
    if (e->model) onnx__model_proto__free_unpacked(e->model, &ifd_pb_allocator);
    set_free(e->names);
    ifd_free(e);
}

ifd_status ifd_onnx_edit_load_memory(const void *data, size_t size, ifd_onnx_edit **out) {
    ifd_status st;
    ifd_onnx_edit *e = NULL;
    *out = NULL;
    if (size == 0) return ifd_error(IFD_ERR_CORRUPT_MODEL, "model is empty (0 bytes)");
    if (size > IFD_MAX_MODEL_BYTES)
        return ifd_error(IFD_ERR_TOO_BIG, "model is %zu bytes; the limit is %zu", size,
                         IFD_MAX_MODEL_BYTES);
    /* protobuf-c's unpack recurses per nested message: bound the depth first. */
    st = ifd_pb_check_nesting(data, size, &onnx__model_proto__descriptor, EDIT_MAX_MESSAGE_DEPTH,
                              "model");
    if (st) return st;
    if (!(e = ifd_calloc(1, sizeof *e))) return oom();
    ifd_pb_alloc_failed_take();
    e->model = onnx__model_proto__unpack(&ifd_pb_allocator, size, data);
    if (!e->model) {
        st = ifd_pb_alloc_failed_take()
                 ? ifd_error(IFD_ERR_NO_MEMORY, "out of memory decoding the model")
                 : ifd_error(IFD_ERR_CORRUPT_MODEL, "model is not a valid ONNX ModelProto");
        goto out;
    }
    if (!(e->graph = e->model->graph)) {
        st = ifd_error(IFD_ERR_CORRUPT_MODEL, "model has no graph");
        goto out;
    }
    if ((st = check_no_external(e->graph, 0))) goto out;
    if (!(e->names = ifd_calloc(1, sizeof *e->names)) || !collect_graph_names(e->names, e->graph)) {
        st = oom();
        goto out;
    }
    *out = e;
    e = NULL;
out:
    ifd_onnx_edit_free(e);
    return st;
}

ifd_status ifd_onnx_edit_load_file(const char *path, ifd_onnx_edit **out) {
    void *data = NULL;
    size_t size = 0;
    *out = NULL;
    ifd_status st = ifd_read_file(path, IFD_MAX_MODEL_BYTES, &data, &size);
    if (st) return st;
    st = ifd_onnx_edit_load_memory(data, size, out);
    ifd_free(data);
    if (st) ifd_error_prefix(st, "'%s'", path);
    return st;
}

ifd_status ifd_onnx_edit_pack(const ifd_onnx_edit *e, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    size_t n = onnx__model_proto__get_packed_size(e->model);
    if (n > IFD_MAX_MODEL_BYTES)
        return ifd_error(IFD_ERR_TOO_BIG, "the written model would be %zu bytes; the limit is %zu",
                         n, IFD_MAX_MODEL_BYTES);
    uint8_t *buf = ifd_malloc(n ? n : 1);
    if (!buf) return oom();
    size_t w = onnx__model_proto__pack(e->model, buf);
    if (w != n) {
        ifd_free(buf);
        return ifd_error(IFD_ERR_INTERNAL, "packing the model wrote %zu of %zu bytes", w, n);
    }
    *data = buf;
    *size = n;
    return IFD_OK;
}

ifd_status ifd_onnx_edit_clone(const ifd_onnx_edit *e, ifd_onnx_edit **out) {
    void *data;
    size_t size;
    *out = NULL;
    ifd_status st = ifd_onnx_edit_pack(e, &data, &size);
    if (st) return st;
    st = ifd_onnx_edit_load_memory(data, size, out);
    ifd_free(data);
    return st;
}

ifd_status ifd_onnx_edit_write_file(const ifd_onnx_edit *e, const char *path) {
    void *data = NULL;
    size_t size = 0;
    char *tmp = NULL;
    FILE *f = NULL;
    ifd_status st = ifd_onnx_edit_pack(e, &data, &size);
    if (st) return st;
    size_t len = strlen(path) + 5;
    if (!(tmp = ifd_malloc(len))) {
        st = oom();
        goto out;
    }
    snprintf(tmp, len, "%s.tmp", path);
    /* Write beside the target and rename: a reader (a model repository being polled) sees
     * either no file or the whole file, never half of one. */
    if (!(f = fopen(tmp, "wb"))) {
        st = ifd_error(IFD_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (fwrite(data, 1, size, f) != size || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = ifd_error(IFD_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        st = ifd_error(IFD_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        st = ifd_error(IFD_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto out;
    }
out:
    if (f) fclose(f);
    if (st && tmp) unlink(tmp);
    ifd_free(tmp);
    ifd_free(data);
    return st;
}

/* ---- opsets ------------------------------------------------------------------------------ */

static bool is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static bool same_domain(const char *a, const char *b) {
    if (is_default_domain(a) || is_default_domain(b))
        return is_default_domain(a) && is_default_domain(b);
    return !strcmp(a, b);
}

int64_t ifd_onnx_edit_opset(const ifd_onnx_edit *e, const char *domain) {
    for (size_t i = 0; i < e->model->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = e->model->opset_import[i];
        if (same_domain(o->domain, domain)) return o->has_version ? o->version : 0;
    }
    return -1;
}

ifd_status ifd_onnx_edit_set_opset(ifd_onnx_edit *e, const char *domain, int64_t version) {
    Onnx__ModelProto *m = e->model;
    for (size_t i = 0; i < m->n_opset_import; i++)
        if (same_domain(m->opset_import[i]->domain, domain)) {
            m->opset_import[i]->has_version = 1;
            m->opset_import[i]->version = version;
            return IFD_OK;
        }
    Onnx__OperatorSetIdProto *o = ifd_malloc(sizeof *o);
    Onnx__OperatorSetIdProto **arr =
        ifd_realloc(m->opset_import, (m->n_opset_import + 1) * sizeof *arr);
    if (!o || !arr) {
        ifd_free(o);
        if (arr) m->opset_import = arr;
        return oom();
    }
    m->opset_import = arr;
    onnx__operator_set_id_proto__init(o);
    if (!(o->domain = ifd_strdup(domain ? domain : ""))) {
        ifd_free(o);
        return oom();
    }
    o->has_version = 1;
    o->version = version;
    m->opset_import[m->n_opset_import++] = o;
    return IFD_OK;
}

/* ---- lookups ------------------------------------------------------------------------------ */

Onnx__TensorProto *ifd_onnx_edit_initializer(const ifd_onnx_edit *e, const char *name) {
    for (size_t i = 0; i < e->graph->n_initializer; i++)
        if (e->graph->initializer[i]->name && !strcmp(e->graph->initializer[i]->name, name))
            return e->graph->initializer[i];
    return NULL;
}

bool ifd_onnx_edit_is_graph_input(const ifd_onnx_edit *e, const char *name) {
    for (size_t i = 0; i < e->graph->n_input; i++)
        if (e->graph->input[i]->name && !strcmp(e->graph->input[i]->name, name)) return true;
    return false;
}

bool ifd_onnx_edit_is_graph_output(const ifd_onnx_edit *e, const char *name) {
    for (size_t i = 0; i < e->graph->n_output; i++)
        if (e->graph->output[i]->name && !strcmp(e->graph->output[i]->name, name)) return true;
    return false;
}

Onnx__TensorProto *ifd_onnx_edit_constant(const ifd_onnx_edit *e, const char *name) {
    if (!name || !*name || ifd_onnx_edit_is_graph_input(e, name)) return NULL;
    return ifd_onnx_edit_initializer(e, name);
}

long ifd_onnx_edit_producer(const ifd_onnx_edit *e, const char *name) {
    for (size_t i = 0; i < e->graph->n_node; i++) {
        const Onnx__NodeProto *n = e->graph->node[i];
        for (size_t j = 0; j < n->n_output; j++)
            if (!strcmp(n->output[j], name)) return (long)i;
    }
    return -1;
}

static size_t graph_use_count(const Onnx__GraphProto *g, const char *name, int depth) {
    size_t c = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t j = 0; j < n->n_input; j++) c += !strcmp(n->input[j], name);
        for (size_t a = 0; depth < 64 && a < n->n_attribute; a++) {
            const Onnx__AttributeProto *at = n->attribute[a];
            if (at->g) c += graph_use_count(at->g, name, depth + 1);
            for (size_t k = 0; k < at->n_graphs; k++)
                c += graph_use_count(at->graphs[k], name, depth + 1);
        }
    }
    if (depth > 0) /* a subgraph may return an outer value directly */
        for (size_t i = 0; i < g->n_output; i++)
            c += g->output[i]->name && !strcmp(g->output[i]->name, name);
    return c;
}

size_t ifd_onnx_edit_use_count(const ifd_onnx_edit *e, const char *name) {
    return graph_use_count(e->graph, name, 0);
}

ifd_status ifd_onnx_edit_tensor(const Onnx__TensorProto *tp, ifd_tensor **out) {
    char what[320];
    snprintf(what, sizeof what, "initializer '%.256s'", tp->name ? tp->name : "");
    return ifd_onnx_tensor_from_proto(tp, NULL, what, out);
}

/* ---- attributes ---------------------------------------------------------------------------- */

const Onnx__AttributeProto *ifd_onnx_edit_attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

int64_t ifd_onnx_edit_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
    const Onnx__AttributeProto *a = ifd_onnx_edit_attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

float ifd_onnx_edit_attr_float(const Onnx__NodeProto *n, const char *name, float dflt) {
    const Onnx__AttributeProto *a = ifd_onnx_edit_attr(n, name);
    return a && a->has_f ? a->f : dflt;
}

/* Remove attribute `name` if present and return a fresh one appended in its place. */
static Onnx__AttributeProto *fresh_attr(Onnx__NodeProto *n, const char *name,
                                        Onnx__AttributeProto__AttributeType type) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) {
            onnx__attribute_proto__free_unpacked(n->attribute[i], &ifd_pb_allocator);
            n->attribute[i] = n->attribute[--n->n_attribute];
            break;
        }
    Onnx__AttributeProto **arr = ifd_realloc(n->attribute, (n->n_attribute + 1) * sizeof *arr);
    if (!arr) return NULL;
    n->attribute = arr;
    Onnx__AttributeProto *a = ifd_malloc(sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    if (!(a->name = ifd_strdup(name))) {
        ifd_free(a);
        return NULL;
    }
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

ifd_status ifd_onnx_edit_set_attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = fresh_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return oom();
    a->has_i = 1;
    a->i = v;
    return IFD_OK;
}

ifd_status ifd_onnx_edit_set_attr_ints(Onnx__NodeProto *n, const char *name, size_t count,
                                       const int64_t *v) {
    Onnx__AttributeProto *a = fresh_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (!a || !(a->ints = ifd_malloc((count ? count : 1) * sizeof *v))) return oom();
    if (count) memcpy(a->ints, v, count * sizeof *v);
    a->n_ints = count;
    return IFD_OK;
}

ifd_status ifd_onnx_edit_set_attr_float(Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = fresh_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a) return oom();
    a->has_f = 1;
    a->f = v;
    return IFD_OK;
}

ifd_status ifd_onnx_edit_set_attr_string(Onnx__NodeProto *n, const char *name, const char *v) {
    Onnx__AttributeProto *a = fresh_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    size_t len = strlen(v);
    if (!a || !(a->s.data = ifd_malloc(len ? len : 1))) return oom();
    memcpy(a->s.data, v, len);
    a->s.len = len;
    a->has_s = 1;
    return IFD_OK;
}

ifd_status ifd_onnx_edit_copy_attrs(Onnx__NodeProto *to, const Onnx__NodeProto *from) {
    for (size_t i = 0; i < from->n_attribute; i++) {
        const Onnx__AttributeProto *src = from->attribute[i];
        size_t len = onnx__attribute_proto__get_packed_size(src);
        uint8_t *buf = ifd_malloc(len ? len : 1);
        if (!buf) return oom();
        onnx__attribute_proto__pack(src, buf);
        Onnx__AttributeProto *copy = onnx__attribute_proto__unpack(&ifd_pb_allocator, len, buf);
        ifd_free(buf);
        if (!copy) return oom();
        Onnx__AttributeProto *slot =
            fresh_attr(to, src->name ? src->name : "", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED);
        if (!slot) {
            onnx__attribute_proto__free_unpacked(copy, &ifd_pb_allocator);
            return oom();
        }
        /* Swap the placeholder for the copy (same position, same name). */
        to->attribute[to->n_attribute - 1] = copy;
        onnx__attribute_proto__free_unpacked(slot, &ifd_pb_allocator);
    }
    return IFD_OK;
}

/* ---- changes -------------------------------------------------------------------------------- */

char *ifd_onnx_edit_unique_name(ifd_onnx_edit *e, const char *base, const char *suffix) {
    size_t len = strlen(base) + strlen(suffix) + 24;
    char *s = ifd_malloc(len);
    if (!s) {
        oom();
        return NULL;
    }
    snprintf(s, len, "%s%s", base, suffix);
    for (unsigned k = 2; set_find(e->names, s); k++) snprintf(s, len, "%s%s_%u", base, suffix, k);
    if (!set_put(e->names, s, 0)) {
        ifd_free(s);
        oom();
        return NULL;
    }
    return s;
}

ifd_status ifd_onnx_edit_add_initializer(ifd_onnx_edit *e, const char *name,
                                         const ifd_tensor *t) {
    Onnx__GraphProto *g = e->graph;
    Onnx__TensorProto *tp = ifd_malloc(sizeof *tp);
    if (!tp) return oom();
    onnx__tensor_proto__init(tp);
    tp->name = ifd_strdup(name);
    tp->dims = ifd_malloc(((size_t)t->rank + 1) * sizeof *tp->dims);
    tp->raw_data.data = ifd_malloc(t->nbytes ? t->nbytes : 1);
    Onnx__TensorProto **arr = ifd_realloc(g->initializer, (g->n_initializer + 1) * sizeof *arr);
    if (arr) g->initializer = arr;
    if (!tp->name || !tp->dims || !tp->raw_data.data || !arr || !set_put(e->names, name, 0)) {
        onnx__tensor_proto__free_unpacked(tp, &ifd_pb_allocator);
        return oom();
    }
    tp->n_dims = (size_t)t->rank;
    for (int i = 0; i < t->rank; i++) tp->dims[i] = t->dims[i];
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    /* raw_data is little-endian, as the machines inferd runs on. */
    if (t->nbytes) memcpy(tp->raw_data.data, t->data, t->nbytes);
    tp->raw_data.len = t->nbytes;
    tp->has_raw_data = 1;
    g->initializer[g->n_initializer++] = tp;
    return IFD_OK;
}

static char *dup_or_empty(const char *s) { return ifd_strdup(s ? s : ""); }

Onnx__NodeProto *ifd_onnx_edit_append_node(ifd_onnx_edit *e, const char *op_type,
                                           const char *name, size_t n_inputs,
                                           const char *const *inputs, size_t n_outputs,
                                           const char *const *outputs) {
    Onnx__GraphProto *g = e->graph;
    Onnx__NodeProto *n = ifd_malloc(sizeof *n);
    if (!n) {
        oom();
        return NULL;
    }
    onnx__node_proto__init(n);
    bool ok = (n->op_type = ifd_strdup(op_type)) && (n->domain = ifd_strdup("")) &&
              (!name || (n->name = ifd_strdup(name))) &&
              (n->input = ifd_calloc(n_inputs + 1, sizeof *n->input)) &&
              (n->output = ifd_calloc(n_outputs + 1, sizeof *n->output));
    for (size_t i = 0; ok && i < n_inputs; i++, n->n_input++)
        ok = (n->input[i] = dup_or_empty(inputs[i])) != NULL;
    for (size_t i = 0; ok && i < n_outputs; i++, n->n_output++)
        ok = (n->output[i] = dup_or_empty(outputs[i])) && set_put(e->names, outputs[i], 0);
    ok = ok && (!name || set_put(e->names, name, 0));
    Onnx__NodeProto **arr = ok ? ifd_realloc(g->node, (g->n_node + 1) * sizeof *arr) : NULL;
    if (!arr) {
        onnx__node_proto__free_unpacked(n, &ifd_pb_allocator);
        oom();
        return NULL;
    }
    g->node = arr;
    g->node[g->n_node++] = n;
    return n;
}

void ifd_onnx_edit_remove_node(ifd_onnx_edit *e, size_t i) {
    Onnx__GraphProto *g = e->graph;
    if (i >= g->n_node) return;
    onnx__node_proto__free_unpacked(g->node[i], &ifd_pb_allocator);
    memmove(&g->node[i], &g->node[i + 1], (g->n_node - i - 1) * sizeof *g->node);
    g->n_node--;
}

ifd_status ifd_onnx_edit_replace_uses(ifd_onnx_edit *e, const char *from, const char *to,
                                      long except) {
    for (size_t i = 0; i < e->graph->n_node; i++) {
        if ((long)i == except) continue;
        Onnx__NodeProto *n = e->graph->node[i];
        for (size_t j = 0; j < n->n_input; j++) {
            if (strcmp(n->input[j], from)) continue;
            char *s = ifd_strdup(to);
            if (!s) return oom();
            ifd_free(n->input[j]);
            n->input[j] = s;
        }
    }
    return IFD_OK;
}

ifd_status ifd_onnx_edit_add_output(ifd_onnx_edit *e, const char *name, int32_t elem_type) {
    Onnx__GraphProto *g = e->graph;
    if (ifd_onnx_edit_is_graph_output(e, name)) return IFD_OK;
    Onnx__ValueInfoProto *vi = ifd_malloc(sizeof *vi);
    Onnx__TypeProto *tp = ifd_malloc(sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ifd_malloc(sizeof *tt);
    Onnx__ValueInfoProto **arr = ifd_realloc(g->output, (g->n_output + 1) * sizeof *arr);
    if (arr) g->output = arr;
    if (!vi || !tp || !tt || !arr) {
        ifd_free(vi);
        ifd_free(tp);
        ifd_free(tt);
        return oom();
    }
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    if (!(vi->name = ifd_strdup(name))) {
        onnx__value_info_proto__free_unpacked(vi, &ifd_pb_allocator);
        return oom();
    }
    g->output[g->n_output++] = vi;
    return IFD_OK;
}

ifd_status ifd_onnx_edit_remove_unused_initializers(ifd_onnx_edit *e) {
    Onnx__GraphProto *g = e->graph;
    size_t kept = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        const char *name = t->name ? t->name : "";
        if (ifd_onnx_edit_use_count(e, name) || ifd_onnx_edit_is_graph_output(e, name) ||
            ifd_onnx_edit_is_graph_input(e, name))
            g->initializer[kept++] = t;
        else
            onnx__tensor_proto__free_unpacked(t, &ifd_pb_allocator);
    }
    g->n_initializer = kept;
    return IFD_OK;
}

/* ---- topological sort ------------------------------------------------------------------------ */

typedef struct dep_list {
    long *idx;
    size_t n, cap;
} dep_list;

static bool dep_add(dep_list *d, long v) {
    for (size_t i = 0; i < d->n; i++)
        if (d->idx[i] == v) return true;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        long *p = ifd_realloc(d->idx, cap * sizeof *p);
        if (!p) return false;
        d->idx = p;
        d->cap = cap;
    }
    d->idx[d->n++] = v;
    return true;
}

/* Dependencies of a node: producers of its inputs and of any name its subgraphs read (names
 * are unique across scopes in ONNX, so a subgraph name that a main-graph node produces is an
 * outer reference). */
static bool node_deps(const name_set *producers, const Onnx__NodeProto *n, long self,
                      dep_list *d, int depth) {
    for (size_t j = 0; j < n->n_input; j++) {
        const long *p = set_find(producers, n->input[j]);
        if (p && *p != self && !dep_add(d, *p)) return false;
    }
    for (size_t a = 0; depth < 64 && a < n->n_attribute; a++) {
        const Onnx__AttributeProto *at = n->attribute[a];
        size_t ng = at->g ? 1 : at->n_graphs;
        for (size_t k = 0; k < ng; k++) {
            const Onnx__GraphProto *sg = at->g ? at->g : at->graphs[k];
            for (size_t i = 0; i < sg->n_node; i++)
                if (!node_deps(producers, sg->node[i], self, d, depth + 1)) return false;
            for (size_t i = 0; i < sg->n_output; i++) {
                const long *p = sg->output[i]->name ? set_find(producers, sg->output[i]->name) : NULL;
                if (p && *p != self && !dep_add(d, *p)) return false;
            }
        }
    }
    return true;
}

ifd_status ifd_onnx_edit_topo_sort(ifd_onnx_edit *e) {
    Onnx__GraphProto *g = e->graph;
    size_t n = g->n_node;
    ifd_status st = IFD_OK;
    name_set producers = {0};
    dep_list *deps = ifd_calloc(n + 1, sizeof *deps);
    unsigned char *state = ifd_calloc(n + 1, 1); /* 0 new, 1 on the stack, 2 placed */
    long *stack = ifd_malloc((n + 1) * sizeof *stack);
    size_t *next = ifd_calloc(n + 1, sizeof *next);
    Onnx__NodeProto **order = ifd_malloc((n + 1) * sizeof *order);
    size_t placed = 0;
    if (!deps || !state || !stack || !next || !order) {
        st = oom();
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < g->node[i]->n_output; j++)
            if (!set_put(&producers, g->node[i]->output[j], (long)i)) {
                st = oom();
                goto out;
            }
    for (size_t i = 0; i < n; i++)
        if (!node_deps(&producers, g->node[i], (long)i, &deps[i], 0)) {
            st = oom();
            goto out;
        }
    /* Depth-first from each node in the current order: producers are placed just before the
     * first node that needs them, everything else keeps its place. Iterative (a long chain of
     * nodes must not overflow the C stack). */
    for (size_t root = 0; root < n; root++) {
        if (state[root]) continue;
        size_t sp = 0;
        stack[sp++] = (long)root;
        state[root] = 1;
        next[root] = 0;
        while (sp) {
            long v = stack[sp - 1];
            if (next[v] < deps[v].n) {
                long w = deps[v].idx[next[v]++];
                if (state[w] == 1) {
                    const Onnx__NodeProto *c = g->node[w];
                    st = ifd_error(IFD_ERR_CORRUPT_MODEL, "graph has a cycle through node '%s' (%s)",
                                   c->name ? c->name : "", c->op_type ? c->op_type : "");
                    goto out;
                }
                if (state[w] == 0) {
                    state[w] = 1;
                    next[w] = 0;
                    stack[sp++] = w;
                }
                continue;
            }
            state[v] = 2;
            order[placed++] = g->node[v];
            sp--;
        }
    }
    memcpy(g->node, order, n * sizeof *order);
out:
    for (size_t i = 0; deps && i < n; i++) ifd_free(deps[i].idx);
    ifd_free(deps);
    ifd_free(state);
    ifd_free(stack);
    ifd_free(next);
    ifd_free(order);
    for (size_t i = 0; i < producers.cap; i++) ifd_free(producers.slots[i]);
    ifd_free(producers.slots);
    ifd_free(producers.values);
    return st;
}
