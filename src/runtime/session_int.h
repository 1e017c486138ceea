/* runtime/: sessions. A session compiles a model's graphs into execution plans (constant
 * folding, fusions, kernel preparation) and runs them with a planned activation arena.
 * Private to runtime/. */
#ifndef IFD_SESSION_INT_H
#define IFD_SESSION_INT_H

#include "onnx/model.h"
#include "ops/op.h"

typedef struct exec_graph exec_graph;

typedef struct exec_node {
    const ifd_node *node;
    const ifd_op_def *op;
    int n_in, n_out;
    int *in;  /* slot per input, -1 when omitted */
    int *out; /* slot per output, -1 when omitted */
    void *state;
    ifd_activation act;
    bool removed;             /* folded or fused away */
    double profile_ns;        /* accumulated run time when IFD_PROFILE is set */
    int64_t profile_calls;
    exec_graph **subgraphs;   /* compiled subgraphs, parallel to node attrs (NULL if none) */
} exec_node;

/* Where an outer-scope slot comes from: `up` frames above, slot `slot` there. */
typedef struct outer_ref {
    int up, slot;
} outer_ref;

struct exec_graph {
    const ifd_graph *graph;
    int n_slots;                 /* one per value of the graph */
    int n_nodes;
    exec_node *nodes;
    const ifd_tensor **constants; /* per slot: initializer or folded constant, else NULL */
    int *last_use;               /* per slot: last node index reading it; INT32_MAX for outputs */
    int *def_node;               /* per slot: producing node index, -1 otherwise */
    outer_ref *outer;            /* per slot (kind OUTER): its source */
    /* activation plan, valid for input shapes equal to plan_key */
    bool plan_valid;
    int64_t *plan_key;           /* concatenated input ranks and dims */
    size_t plan_key_len;
    size_t *plan_offset;         /* per slot; SIZE_MAX when not planned */
    size_t *plan_bytes;          /* per slot */
    size_t plan_size;
    unsigned char *arena;
    size_t arena_size;
};

typedef struct ifd_exec_frame ifd_exec_frame;
struct ifd_exec_frame {
    ifd_session *session;
    exec_graph *eg;
    ifd_exec_frame *parent;
    ifd_tensor *slots;          /* per slot tensor storage */
    const ifd_tensor **values;  /* per slot: current value or NULL */
    bool *owned;                /* slots[i].data malloc'd by this frame */
    size_t *observed_bytes;     /* per slot: bytes requested this run (for planning) */
    bool use_plan;
    unsigned char *scratch;     /* per-kernel scratch arena, reset after every node */
    size_t scratch_size, scratch_used;
    size_t scratch_want;        /* what the last node needed in all: the next size */
    void **scratch_extra;       /* overflow pieces of this node, freed after it */
    size_t n_scratch_extra;
    ifd_tensor discard[8];      /* outputs a node omits: headers here, data from scratch */
    int discard_n;
    int64_t macs;
};

struct ifd_session {
    const ifd_model *model;
    ifd_session_options options;
    ifd_thread_pool *pool;
    exec_graph *main;
    ifd_tensor **owned_tensors; /* folded constants and rewritten weights */
    size_t n_owned, cap_owned;
    ifd_exec_frame *frame;      /* the main frame, reused across runs */
    int64_t last_macs;
    bool profile;               /* IFD_PROFILE=1: time every node, print a table at free */
};

/* Readers per slot of the main graph (subgraphs' outer-scope reads included); graph outputs
 * count 1000 extra so that no fusion treats them as private (session.c). */
void ifd_exec_count_uses(const exec_graph *eg, int *uses);
/* The int8 rewrite passes (fuse_quant.c). */
ifd_status ifd_fuse_quant(exec_graph *eg);

#endif
