/* int8 rewrite passes (main graph, after constant folding, before the float fusions): the
 * quantized patterns of the ONNX quantizers (qformat: `inferd quantize`, ONNX Runtime's tool)
 * become single int8 nodes whose kernels (ops/quantize.c) run one packed GEMM with the
 * scales, bias, activation and requantization in its epilogue.
 *
 *   dynamic:  MatMulInteger(xq, W const, xzp, wzp) -> Cast(FLOAT) -> Mul(., Mul(xs, Ws const))
 *             [-> Add(., bias const [N])]                      => QMatMulDynamicFused
 *             [-> GELU as PyTorch exports it: y * 0.5 * (1 + erf(y / sqrt 2)), five nodes]
 *                                                              => QMatMulDynamicGeluFused
 *   static:   DQ(xq) -> Conv(., DQ(Wq const) folded, bias const) [-> Relu | Clip] -> Q(y)
 *                                                              => QLinearConvFused (u8 -> u8)
 *             Add(DQ(aq), DQ(bq)) [-> Relu] -> Q(y)             => QLinearAddFused (u8 -> u8;
 *             the residual joins of ResNet, so blocks stay in uint8 between convolutions)
 *
 * A fused node keeps the head node's ifd_node (name, attributes) and gets a new input list of
 * slots; the nodes it absorbs are marked removed. Each intermediate must have exactly one
 * reader and must not be a graph output, so a Q/DQ pair shared by several consumers stays
 * (each consumer reads the quantized tensor), and a graph output is still produced. Nodes
 * left with no reader at all (a DQ whose consumers were all fused) are removed at the end. */
#include "runtime/session_int.h"

#include <math.h>
#include <string.h>

extern const ifd_op_def ifd_op_qmatmul_dyn_fused;
extern const ifd_op_def ifd_op_qmatmul_dyn_gelu_fused;
extern const ifd_op_def ifd_op_qconv_fused;
extern const ifd_op_def ifd_op_qadd_fused;

/* ---- pattern helpers ------------------------------------------------------------------------ */

static bool is_op(const exec_node *en, const char *op) {
    return en && !en->removed && !en->node->domain[0] && !strcmp(en->node->op_type, op) &&
           en->op == en->node->op;
}

/* The live node writing slot as its output `*index` (NULL when none, e.g. a graph input). */
static exec_node *producer(exec_graph *eg, int slot, int *index) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->removed) continue;
        for (int k = 0; k < en->n_out; k++)
            if (en->out[k] == slot) {
                if (index) *index = k;
                return en;
            }
    }
    return NULL;
}

/* The folded-away node that made constant `slot` (constant folding marks it removed). */
static exec_node *folded_producer(exec_graph *eg, int slot) {
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->removed && en->n_out >= 1 && en->out[0] == slot) return en;
    }
    return NULL;
}

static exec_node *sole_reader(exec_graph *eg, int slot, const int *uses) {
    if (slot < 0 || uses[slot] != 1) return NULL;
    for (int i = 0; i < eg->n_nodes; i++) {
        exec_node *en = &eg->nodes[i];
        if (en->removed) continue;
        for (int k = 0; k < en->n_in; k++)
            if (en->in[k] == slot) return en;
    }
    return NULL;
}

static const ifd_tensor *cinput(const exec_graph *eg, const exec_node *en, int k) {
    return k < en->n_in && en->in[k] >= 0 ? eg->constants[en->in[k]] : NULL;
}

static bool has_input(const exec_node *en, int k) { return k < en->n_in && en->in[k] >= 0; }

static bool scalar_of(const ifd_tensor *t, ifd_dtype dt) { return t && t->dtype == dt && t->count == 1; }

/* Replace en's inputs with `slots` (n of them; -1 = omitted) and its operator with op. */
static ifd_status rewire(exec_node *en, const ifd_op_def *op, const int *slots, int n) {
    int *in = ifd_calloc((size_t)n, sizeof(int));
    if (!in) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory (int8 fusion)");
    memcpy(in, slots, (size_t)n * sizeof(int));
    ifd_free(en->in);
    en->in = in;
    en->n_in = n;
    en->op = op;
    return IFD_OK;
}

/* ---- dynamic: MatMulInteger -> Cast -> Mul(scale) [-> Add(bias)] ----------------------------- */

/* A constant float scalar within 1e-6 of want. */
static bool const_near(const exec_graph *eg, int slot, float want) {
    const ifd_tensor *c = slot >= 0 ? eg->constants[slot] : NULL;
    return scalar_of(c, IFD_DTYPE_FLOAT) && fabsf(((const float *)c->data)[0] - want) <= 1e-6f;
}

/* The other input of a two-input node, given one (-1 when it is not there). */
static int other_input(const exec_node *en, int slot) {
    if (en->n_in != 2) return -1;
    return en->in[0] == slot ? en->in[1] : en->in[1] == slot ? en->in[0] : -1;
}

/* GELU on x as torch.onnx writes nn.GELU(): Div(x, sqrt 2) -> Erf -> Add(., 1) ->
 * Mul(x, .) -> Mul(., 0.5), x read by the Div and the first Mul only. Fills the five nodes
 * and returns the slot of the result, or -1. */
static int match_gelu(exec_graph *eg, int x, const int *uses, exec_node *chain[5]) {
    if (x < 0 || uses[x] != 2) return -1;
    exec_node *div = NULL;
    for (int i = 0; i < eg->n_nodes && !div; i++)
        if (is_op(&eg->nodes[i], "Div") && eg->nodes[i].n_in == 2 && eg->nodes[i].in[0] == x)
            div = &eg->nodes[i];
    if (!div || div->out[0] < 0 || !const_near(eg, div->in[1], 1.41421356f)) return -1;
    exec_node *erf = sole_reader(eg, div->out[0], uses);
    if (!is_op(erf, "Erf") || erf->out[0] < 0) return -1;
    exec_node *add = sole_reader(eg, erf->out[0], uses);
    if (!is_op(add, "Add") || add->out[0] < 0 || !const_near(eg, other_input(add, erf->out[0]), 1.0f))
        return -1;
    exec_node *mul = sole_reader(eg, add->out[0], uses);
    if (!is_op(mul, "Mul") || mul->out[0] < 0 || other_input(mul, add->out[0]) != x) return -1;
    exec_node *half = sole_reader(eg, mul->out[0], uses);
    if (!is_op(half, "Mul") || half->out[0] < 0 ||
        !const_near(eg, other_input(half, mul->out[0]), 0.5f))
        return -1;
    chain[0] = div;
    chain[1] = erf;
    chain[2] = add;
    chain[3] = mul;
    chain[4] = half;
    return half->out[0];
}

static ifd_status fuse_dynamic_matmul(exec_graph *eg, exec_node *mm, int *uses) {
    const ifd_tensor *w = cinput(eg, mm, 1);
    if (mm->n_out != 1 || mm->out[0] < 0 || !has_input(mm, 0) || !w || w->rank != 2 ||
        (w->dtype != IFD_DTYPE_INT8 && w->dtype != IFD_DTYPE_UINT8))
        return IFD_OK;
    int64_t n = w->dims[1];
    /* a_zero_point: omitted, a constant scalar, or DynamicQuantizeLinear's (one value) */
    if (has_input(mm, 2) && !eg->constants[mm->in[2]]) {
        int idx = -1;
        exec_node *dql = producer(eg, mm->in[2], &idx);
        if (!is_op(dql, "DynamicQuantizeLinear") || idx != 2) return IFD_OK;
    } else if (has_input(mm, 2) && eg->constants[mm->in[2]]->count != 1) {
        return IFD_OK;
    }
    const ifd_tensor *wz = cinput(eg, mm, 3);
    if (has_input(mm, 3) && (!wz || (wz->count != 1 && wz->count != n))) return IFD_OK;
    exec_node *cast = sole_reader(eg, mm->out[0], uses);
    if (!is_op(cast, "Cast") || cast->n_out != 1 || cast->out[0] < 0 ||
        ifd_attr_int(cast->node, "to", 0) != IFD_DTYPE_FLOAT)
        return IFD_OK;
    exec_node *mul = sole_reader(eg, cast->out[0], uses);
    if (!is_op(mul, "Mul") || mul->n_in != 2 || mul->out[0] < 0) return IFD_OK;
    int sslot = mul->in[0] == cast->out[0] ? mul->in[1] : mul->in[0];
    if (sslot < 0 || sslot == cast->out[0]) return IFD_OK;
    /* the scale: Mul(xs, ws) with xs a scalar (DynamicQuantizeLinear's or constant), ws const */
    exec_node *smul = sole_reader(eg, sslot, uses) == mul ? producer(eg, sslot, NULL) : NULL;
    if (!is_op(smul, "Mul") || smul->n_in != 2) return IFD_OK;
    int xs_slot = -1, ws_slot = -1;
    for (int k = 0; k < 2; k++) {
        const ifd_tensor *c = cinput(eg, smul, k);
        if (c && c->dtype == IFD_DTYPE_FLOAT && (c->count == n || c->count == 1) && ws_slot < 0 &&
            (c->rank <= 1 || (c->rank == 2 && c->dims[0] == 1)))
            ws_slot = smul->in[k];
        else
            xs_slot = smul->in[k];
    }
    if (xs_slot < 0 || ws_slot < 0) return IFD_OK;
    if (eg->constants[xs_slot]) {
        if (!scalar_of(eg->constants[xs_slot], IFD_DTYPE_FLOAT)) return IFD_OK;
    } else {
        int idx = -1;
        exec_node *dql = producer(eg, xs_slot, &idx);
        if (!is_op(dql, "DynamicQuantizeLinear") || idx != 1) return IFD_OK;
    }
    /* an optional bias Add of a constant float [N] */
    int out_slot = mul->out[0], bias_slot = -1;
    exec_node *add = sole_reader(eg, out_slot, uses);
    if (is_op(add, "Add") && add->n_in == 2 && add->out[0] >= 0) {
        int other = add->in[0] == out_slot ? add->in[1] : add->in[0];
        const ifd_tensor *b = other >= 0 ? eg->constants[other] : NULL;
        bool last_only = b && b->rank >= 1 && b->dims[b->rank - 1] == n && b->count == n;
        if (other != out_slot && last_only && b->dtype == IFD_DTYPE_FLOAT && b->rank <= 2) {
            bias_slot = other;
            out_slot = add->out[0];
        } else {
            add = NULL;
        }
    } else {
        add = NULL;
    }
    exec_node *gelu[5] = {0};
    int gelu_out = match_gelu(eg, out_slot, uses, gelu);
    int slots[7] = {mm->in[0], xs_slot, has_input(mm, 2) ? mm->in[2] : -1, mm->in[1],
                    has_input(mm, 3) ? mm->in[3] : -1, ws_slot, bias_slot};
    const ifd_op_def *op = gelu_out >= 0 ? &ifd_op_qmatmul_dyn_gelu_fused : &ifd_op_qmatmul_dyn_fused;
    ifd_status st = rewire(mm, op, slots, 7);
    if (st) return st;
    mm->out[0] = gelu_out >= 0 ? gelu_out : out_slot;
    cast->removed = mul->removed = true;
    if (add) add->removed = true;
    for (int k = 0; k < 5 && gelu_out >= 0; k++) gelu[k]->removed = true;
    /* the scale Mul may still have other readers; it is removed below when it has none */
    ifd_exec_count_uses(eg, uses);
    return IFD_OK;
}

/* ---- static QDQ: DQ -> Conv -> [Relu|Clip] -> Q --------------------------------------------- */

static bool qparams_ok(const exec_graph *eg, const exec_node *q, ifd_dtype zp_type) {
    const ifd_tensor *s = cinput(eg, q, 1), *z = cinput(eg, q, 2);
    if (!scalar_of(s, IFD_DTYPE_FLOAT)) return false;
    if (has_input(q, 2) ? !scalar_of(z, zp_type) : zp_type != IFD_DTYPE_UINT8) return false;
    return ifd_attr_int(q->node, "block_size", 0) == 0;
}

static ifd_status fuse_qdq_conv(exec_graph *eg, exec_node *conv, int *uses) {
    if (conv->n_out != 1 || conv->out[0] < 0 || conv->act.kind != IFD_ACT_NONE || conv->n_in < 2 ||
        !has_input(conv, 0) || !has_input(conv, 1))
        return IFD_OK;
    /* x: a live DequantizeLinear of uint8 with scalar scale and zero point */
    int idx = -1;
    exec_node *dqx = producer(eg, conv->in[0], &idx);
    if (!is_op(dqx, "DequantizeLinear") || idx != 0 || !qparams_ok(eg, dqx, IFD_DTYPE_UINT8))
        return IFD_OK;
    ifd_dtype xt = eg->graph->values[dqx->in[0]].type.dtype;
    if (xt != IFD_DTYPE_UINT8 && !(xt == IFD_DTYPE_UNDEFINED && has_input(dqx, 2))) return IFD_OK;
    /* W: a constant folded from DequantizeLinear(Wq int8, scale [M], zero point int8) */
    if (!eg->constants[conv->in[1]]) return IFD_OK;
    exec_node *dqw = folded_producer(eg, conv->in[1]);
    if (!dqw || strcmp(dqw->node->op_type, "DequantizeLinear") || dqw->node->domain[0]) return IFD_OK;
    const ifd_tensor *wq = cinput(eg, dqw, 0), *ws = cinput(eg, dqw, 1), *wz = cinput(eg, dqw, 2);
    if (!wq || wq->dtype != IFD_DTYPE_INT8 || wq->rank < 3 || !ws || ws->dtype != IFD_DTYPE_FLOAT ||
        (has_input(dqw, 2) && (!wz || wz->dtype != IFD_DTYPE_INT8 || wz->count != ws->count)) ||
        ifd_attr_int(dqw->node, "block_size", 0) != 0)
        return IFD_OK;
    int64_t m = wq->dims[0];
    if (ws->count != 1 && (ws->count != m || ws->rank != 1 || ifd_attr_int(dqw->node, "axis", 1) != 0))
        return IFD_OK;
    const ifd_tensor *bias = cinput(eg, conv, 2);
    if (has_input(conv, 2) && (!bias || bias->dtype != IFD_DTYPE_FLOAT || bias->count != m)) return IFD_OK;
    /* [Relu | Clip] -> QuantizeLinear to uint8 with scalar scale and zero point */
    exec_node *next = sole_reader(eg, conv->out[0], uses), *act_node = NULL;
    ifd_activation act = {IFD_ACT_NONE, 0, 0};
    if (is_op(next, "Relu") && next->out[0] >= 0) {
        act.kind = IFD_ACT_RELU;
    } else if (is_op(next, "Clip") && next->out[0] >= 0) {
        act = (ifd_activation){IFD_ACT_CLIP, -INFINITY, INFINITY};
        if (next->node->opset < 11) {
            act.alpha = ifd_attr_float(next->node, "min", -INFINITY);
            act.beta = ifd_attr_float(next->node, "max", INFINITY);
        } else {
            for (int k = 1; k < next->n_in && k < 3; k++) {
                if (next->in[k] < 0) continue;
                const ifd_tensor *c = eg->constants[next->in[k]];
                if (!scalar_of(c, IFD_DTYPE_FLOAT)) return IFD_OK;
                if (k == 1) act.alpha = ((const float *)c->data)[0];
                else act.beta = ((const float *)c->data)[0];
            }
        }
    }
    if (act.kind != IFD_ACT_NONE) {
        act_node = next;
        next = sole_reader(eg, act_node->out[0], uses);
    }
    if (!is_op(next, "QuantizeLinear") || next->out[0] < 0 || next->in[0] != (act_node ? act_node->out[0] : conv->out[0]) ||
        !qparams_ok(eg, next, IFD_DTYPE_UINT8))
        return IFD_OK;
    if (next->node->opset >= 21 && has_input(next, 2) == false &&
        ifd_attr_int(next->node, "output_dtype", 0) != 0 &&
        ifd_attr_int(next->node, "output_dtype", 0) != IFD_DTYPE_UINT8)
        return IFD_OK;
    int slots[9] = {dqx->in[0], dqx->in[1], has_input(dqx, 2) ? dqx->in[2] : -1, dqw->in[0],
                    dqw->in[1], has_input(dqw, 2) ? dqw->in[2] : -1,
                    has_input(conv, 2) ? conv->in[2] : -1, next->in[1],
                    has_input(next, 2) ? next->in[2] : -1};
    ifd_status st = rewire(conv, &ifd_op_qconv_fused, slots, 9);
    if (st) return st;
    conv->act = act;
    conv->out[0] = next->out[0];
    next->removed = true;
    if (act_node) act_node->removed = true;
    ifd_exec_count_uses(eg, uses);
    return IFD_OK;
}

/* ---- static QDQ: Add(DQ, DQ) -> [Relu] -> Q ------------------------------------------------- */

/* A live DequantizeLinear of uint8 with scalar scale and zero point writing `slot`. */
static exec_node *dq_u8_producer(exec_graph *eg, int slot) {
    int idx = -1;
    exec_node *dq = slot >= 0 ? producer(eg, slot, &idx) : NULL;
    if (!is_op(dq, "DequantizeLinear") || idx != 0 || !qparams_ok(eg, dq, IFD_DTYPE_UINT8)) return NULL;
    ifd_dtype t = eg->graph->values[dq->in[0]].type.dtype;
    if (t != IFD_DTYPE_UINT8 && !(t == IFD_DTYPE_UNDEFINED && has_input(dq, 2))) return NULL;
    return dq;
}

static ifd_status fuse_qdq_add(exec_graph *eg, exec_node *add, int *uses) {
    if (add->n_in != 2 || add->n_out != 1 || add->out[0] < 0 || add->act.kind != IFD_ACT_NONE)
        return IFD_OK;
    exec_node *dqa = dq_u8_producer(eg, add->in[0]), *dqb = dq_u8_producer(eg, add->in[1]);
    if (!dqa || !dqb) return IFD_OK;
    exec_node *next = sole_reader(eg, add->out[0], uses), *relu = NULL;
    if (is_op(next, "Relu") && next->out[0] >= 0) {
        relu = next;
        next = sole_reader(eg, relu->out[0], uses);
    }
    if (!is_op(next, "QuantizeLinear") || next->out[0] < 0 ||
        next->in[0] != (relu ? relu->out[0] : add->out[0]) || !qparams_ok(eg, next, IFD_DTYPE_UINT8))
        return IFD_OK;
    if (next->node->opset >= 21 && !has_input(next, 2) &&
        ifd_attr_int(next->node, "output_dtype", 0) != 0 &&
        ifd_attr_int(next->node, "output_dtype", 0) != IFD_DTYPE_UINT8)
        return IFD_OK;
    int slots[8] = {dqa->in[0], dqa->in[1], has_input(dqa, 2) ? dqa->in[2] : -1,
                    dqb->in[0], dqb->in[1], has_input(dqb, 2) ? dqb->in[2] : -1,
                    next->in[1], has_input(next, 2) ? next->in[2] : -1};
    ifd_status st = rewire(add, &ifd_op_qadd_fused, slots, 8);
    if (st) return st;
    add->act = (ifd_activation){relu ? IFD_ACT_RELU : IFD_ACT_NONE, 0, 0};
    add->out[0] = next->out[0];
    next->removed = true;
    if (relu) relu->removed = true;
    /* the DequantizeLinear nodes stay while other nodes read them; remove_dead drops them */
    ifd_exec_count_uses(eg, uses);
    return IFD_OK;
}

/* Nodes none of whose outputs is read (fused consumers took their place). */
static void remove_dead(exec_graph *eg, int *uses) {
    for (int i = eg->n_nodes - 1; i >= 0; i--) {
        exec_node *en = &eg->nodes[i];
        if (en->removed || en->subgraphs) continue;
        bool used = false;
        for (int k = 0; k < en->n_out; k++)
            if (en->out[k] >= 0 && uses[en->out[k]]) used = true;
        if (used) continue;
        en->removed = true;
        for (int k = 0; k < en->n_in; k++)
            if (en->in[k] >= 0) uses[en->in[k]]--;
    }
}

ifd_status ifd_fuse_quant(exec_graph *eg) {
    ifd_status st = IFD_OK;
    bool any = false;
    for (int i = 0; i < eg->n_nodes; i++)
        if (!eg->nodes[i].node->domain[0] &&
            (!strcmp(eg->nodes[i].node->op_type, "MatMulInteger") ||
             !strcmp(eg->nodes[i].node->op_type, "DequantizeLinear")))
            any = true;
    if (!any) return IFD_OK;
    int *uses = ifd_calloc((size_t)eg->n_slots + 1, sizeof *uses);
    if (!uses) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory (int8 fusion)");
    ifd_exec_count_uses(eg, uses);
    for (int i = 0; i < eg->n_nodes && !st; i++) {
        exec_node *en = &eg->nodes[i];
        if (is_op(en, "MatMulInteger")) st = fuse_dynamic_matmul(eg, en, uses);
        else if (is_op(en, "Conv")) st = fuse_qdq_conv(eg, en, uses);
    }
    /* after the convolutions: their fused nodes read the uint8 tensors, so the Adds' DQ
     * inputs are left with the Add as their only reader and go away with it */
    for (int i = 0; i < eg->n_nodes && !st; i++)
        if (is_op(&eg->nodes[i], "Add")) st = fuse_qdq_add(eg, &eg->nodes[i], uses);
    if (!st) remove_dead(eg, uses);
    ifd_free(uses);
    return st;
}
