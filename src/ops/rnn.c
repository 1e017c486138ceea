/* Operator family: recurrent layers (RNN, GRU, LSTM), float.
 *
 * Shapes (layout 0; layout 1 swaps the first two axes of X, Y and the state tensors):
 *   X [seq, batch, input]   W [dirs, G*hidden, input]   R [dirs, G*hidden, hidden]
 *   B [dirs, 2*G*hidden]    sequence_lens [batch]       initial_h / initial_c [dirs, batch, hidden]
 *   P [dirs, 3*hidden] (LSTM peepholes, order i, o, f)
 *   Y [seq, dirs, batch, hidden]   Y_h / Y_c [dirs, batch, hidden]
 * G is 1 (RNN), 3 (GRU, gates z r h) or 4 (LSTM, gates i o f c).
 * The input projection X*W^T for all time steps is one GEMM; each step adds H*R^T (GEMM). */
#include "kernels/sgemm.h"
#include "kernels/vecmath.h"
#include "ops/op.h"

#include <math.h>
#include <string.h>
#include <strings.h>

typedef enum { RNN_PLAIN, RNN_GRU, RNN_LSTM } rnn_kind;

typedef enum {
    ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_AFFINE, ACT_LEAKY_RELU, ACT_THRESHOLDED_RELU,
    ACT_SCALED_TANH, ACT_HARD_SIGMOID, ACT_ELU, ACT_SOFTSIGN, ACT_SOFTPLUS,
} act_kind;

typedef struct act_fn {
    act_kind kind;
    float alpha, beta;
} act_fn;

static float act_apply(const act_fn *a, float x) {
    switch (a->kind) {
    case ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case ACT_TANH: return tanhf(x);
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_AFFINE: return a->alpha * x + a->beta;
    case ACT_LEAKY_RELU: return x >= 0 ? x : a->alpha * x;
    case ACT_THRESHOLDED_RELU: return x > a->alpha ? x : 0;
    case ACT_SCALED_TANH: return a->alpha * tanhf(a->beta * x);
    case ACT_HARD_SIGMOID: return fmaxf(0.f, fminf(1.f, a->alpha * x + a->beta));
    case ACT_ELU: return x >= 0 ? x : a->alpha * (expf(x) - 1.0f);
    case ACT_SOFTSIGN: return x / (1.0f + fabsf(x));
    case ACT_SOFTPLUS: return logf(1.0f + expf(x));
    }
    return x;
}

/* In place over n values: the default gate functions vectorized, the others scalar. */
static void act_apply_vec(const act_fn *a, float *x, int64_t n) {
    if (a->kind == ACT_SIGMOID)
        ifd_vec_sigmoid(x, x, n);
    else if (a->kind == ACT_TANH)
        ifd_vec_tanh(x, x, n);
    else
        for (int64_t i = 0; i < n; i++) x[i] = act_apply(a, x[i]);
}

/* Weights packed at load, per direction: W^T and R^T as right-hand GEMM operands, and for GRU
 * the h-gate block of R alone (it multiplies r .* H). */
typedef struct rnn_state {
    int dirs;
    ifd_sgemm_packed_b *w[2], *r[2], *rh[2];
} rnn_state;

static void rnn_release(void *p) {
    rnn_state *s = p;
    if (!s) return;
    for (int d = 0; d < 2; d++) {
        ifd_sgemm_packed_b_free(s->w[d]);
        ifd_sgemm_packed_b_free(s->r[d]);
        ifd_sgemm_packed_b_free(s->rh[d]);
    }
    ifd_free(s);
}

static ifd_status rnn_prepare_kind(ifd_prepare_ctx *ctx, int G, bool gru) {
    const ifd_tensor *W = ctx->n_inputs > 1 ? ctx->constants[1] : NULL;
    const ifd_tensor *R = ctx->n_inputs > 2 ? ctx->constants[2] : NULL;
    if (!W || !R || W->dtype != IFD_DTYPE_FLOAT || R->dtype != IFD_DTYPE_FLOAT || W->rank != 3 ||
        R->rank != 3 || W->dims[0] != R->dims[0] || W->dims[0] < 1 || W->dims[0] > 2 ||
        W->dims[1] != R->dims[1] || R->dims[1] != G * R->dims[2])
        return IFD_OK; /* not constant or malformed: run() checks and works unpacked */
    rnn_state *s = ifd_calloc(1, sizeof *s);
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory packing RNN weights");
    int64_t gh = W->dims[1], in = W->dims[2], H = R->dims[2];
    s->dirs = (int)W->dims[0];
    ifd_status st = IFD_OK;
    for (int d = 0; d < s->dirs && !st; d++) {
        const float *w = (const float *)W->data + (size_t)d * (size_t)gh * (size_t)in;
        const float *r = (const float *)R->data + (size_t)d * (size_t)gh * (size_t)H;
        st = ifd_sgemm_pack_b(true, gh, in, w, in, &s->w[d]);
        if (!st) st = ifd_sgemm_pack_b(true, gh, H, r, H, &s->r[d]);
        if (!st && gru) st = ifd_sgemm_pack_b(true, H, H, r + (size_t)2 * (size_t)H * (size_t)H, H, &s->rh[d]);
    }
    if (st) {
        rnn_release(s);
        return st;
    }
    ctx->state = s;
    return IFD_OK;
}

static ifd_status rnn_prepare(ifd_prepare_ctx *ctx) { return rnn_prepare_kind(ctx, 1, false); }
static ifd_status gru_prepare(ifd_prepare_ctx *ctx) { return rnn_prepare_kind(ctx, 3, true); }
static ifd_status lstm_prepare(ifd_prepare_ctx *ctx) { return rnn_prepare_kind(ctx, 4, false); }

static const struct {
    const char *name;
    act_kind kind;
    int n_params; /* how many of alpha, beta it takes */
    float alpha, beta;
} g_acts[] = {
    {"Sigmoid", ACT_SIGMOID, 0, 0, 0},          {"Tanh", ACT_TANH, 0, 0, 0},
    {"Relu", ACT_RELU, 0, 0, 0},                {"Affine", ACT_AFFINE, 2, 1.f, 0.f},
    {"LeakyRelu", ACT_LEAKY_RELU, 1, 0.01f, 0}, {"ThresholdedRelu", ACT_THRESHOLDED_RELU, 1, 1.f, 0},
    {"ScaledTanh", ACT_SCALED_TANH, 2, 1.f, 1.f}, {"HardSigmoid", ACT_HARD_SIGMOID, 2, 0.2f, 0.5f},
    {"Elu", ACT_ELU, 1, 1.f, 0},                {"Softsign", ACT_SOFTSIGN, 0, 0, 0},
    {"Softplus", ACT_SOFTPLUS, 0, 0, 0},
};

/* Activations of the node: n_per_dir per direction (RNN 1, GRU 2, LSTM 3). */
static ifd_status parse_activations(ifd_kernel_ctx *ctx, int dirs, int n_per_dir, act_fn *out) {
    static const char *defaults[3][3] = {{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
    const ifd_attr *names = ifd_attr_find(ctx->node, "activations");
    size_t n_alpha = 0, n_beta = 0, ia = 0, ib = 0;
    const float *alpha = ifd_attr_floats(ctx->node, "activation_alpha", &n_alpha);
    const float *beta = ifd_attr_floats(ctx->node, "activation_beta", &n_beta);
    int total = dirs * n_per_dir;
    if (names && names->type == IFD_ATTR_STRINGS && (int)names->n != total && (int)names->n != n_per_dir)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "expected %d activations, got %zu",
                                total, names->n);
    for (int i = 0; i < total; i++) {
        const char *name = defaults[n_per_dir - 1][i % n_per_dir];
        if (names && names->type == IFD_ATTR_STRINGS) name = names->strings[(size_t)i % names->n];
        size_t k = 0;
        while (k < IFD_ARRAY_LEN(g_acts) && strcasecmp(g_acts[k].name, name)) k++;
        if (k == IFD_ARRAY_LEN(g_acts))
            return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "unknown activation '%s'", name);
        out[i].kind = g_acts[k].kind;
        out[i].alpha = g_acts[k].alpha;
        out[i].beta = g_acts[k].beta;
        if (g_acts[k].n_params >= 1 && alpha && ia < n_alpha) out[i].alpha = alpha[ia++];
        if (g_acts[k].n_params >= 2 && beta && ib < n_beta) out[i].beta = beta[ib++];
    }
    return IFD_OK;
}

static float clipf(float x, float c) { return c > 0 ? fmaxf(-c, fminf(c, x)) : x; }

static ifd_status run_rnn_kind(ifd_kernel_ctx *ctx, rnn_kind kind) {
    const int G = kind == RNN_LSTM ? 4 : kind == RNN_GRU ? 3 : 1;
    const int n_act = kind == RNN_LSTM ? 3 : kind == RNN_GRU ? 2 : 1;
    ifd_status st;
    for (int i = 0; i < 3; i++)
        if ((st = ifd_kernel_require_input(ctx, i)) != IFD_OK) return st;
    const ifd_tensor *X = ctx->inputs[0], *W = ctx->inputs[1], *R = ctx->inputs[2];
    const ifd_tensor *B = ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
    const ifd_tensor *SL = ctx->n_inputs > 4 ? ctx->inputs[4] : NULL;
    const ifd_tensor *H0 = ctx->n_inputs > 5 ? ctx->inputs[5] : NULL;
    const ifd_tensor *C0 = kind == RNN_LSTM && ctx->n_inputs > 6 ? ctx->inputs[6] : NULL;
    const ifd_tensor *P = kind == RNN_LSTM && ctx->n_inputs > 7 ? ctx->inputs[7] : NULL;
    if (X->dtype != IFD_DTYPE_FLOAT || W->dtype != IFD_DTYPE_FLOAT || R->dtype != IFD_DTYPE_FLOAT)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "only float tensors are supported");
    int layout = (int)ifd_attr_int(ctx->node, "layout", 0);
    const char *dir = ifd_attr_string(ctx->node, "direction", "forward");
    int dirs = !strcmp(dir, "bidirectional") ? 2 : 1;
    bool reverse_only = !strcmp(dir, "reverse");
    if (X->rank != 3 || W->rank != 3 || R->rank != 3)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "X, W and R must be 3-D");
    int64_t seq = layout ? X->dims[1] : X->dims[0], batch = layout ? X->dims[0] : X->dims[1];
    int64_t in = X->dims[2];
    int64_t H = ifd_attr_int(ctx->node, "hidden_size", R->dims[2]);
    float clip = ifd_attr_float(ctx->node, "clip", 0.f);
    bool linear_before_reset = ifd_attr_int(ctx->node, "linear_before_reset", 0) != 0;
    bool input_forget = ifd_attr_int(ctx->node, "input_forget", 0) != 0;
    if (W->dims[0] != dirs || W->dims[1] != G * H || W->dims[2] != in || R->dims[0] != dirs ||
        R->dims[1] != G * H || R->dims[2] != H)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "W/R shapes do not match hidden_size %lld, "
                                "%d direction(s), input size %lld", (long long)H, dirs, (long long)in);
    if (B && (B->dtype != IFD_DTYPE_FLOAT || B->count != dirs * 2 * G * H))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "B must hold %lld floats", (long long)(dirs * 2 * G * H));
    if (H0 && (H0->dtype != IFD_DTYPE_FLOAT || H0->count != dirs * batch * H))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "initial_h has the wrong size");
    if (C0 && (C0->dtype != IFD_DTYPE_FLOAT || C0->count != dirs * batch * H))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "initial_c has the wrong size");
    if (P && (P->dtype != IFD_DTYPE_FLOAT || P->count != dirs * 3 * H))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "P has the wrong size");
    if (SL && SL->dtype != IFD_DTYPE_INT32 && SL->dtype != IFD_DTYPE_INT64)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "sequence_lens must be int32, got %s",
                                ifd_dtype_name(SL->dtype));
    if (SL && SL->count != batch)
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "sequence_lens must have %lld entries", (long long)batch);
    act_fn acts[6];
    if ((st = parse_activations(ctx, dirs, n_act, acts)) != IFD_OK) return st;

    /* outputs */
    int64_t ydims[4], hdims[3];
    if (layout) {
        ydims[0] = batch, ydims[1] = seq, ydims[2] = dirs, ydims[3] = H;
        hdims[0] = batch, hdims[1] = dirs, hdims[2] = H;
    } else {
        ydims[0] = seq, ydims[1] = dirs, ydims[2] = batch, ydims[3] = H;
        hdims[0] = dirs, hdims[1] = batch, hdims[2] = H;
    }
    ifd_tensor *Y, *Yh, *Yc = NULL;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_FLOAT, 4, ydims, &Y)) != IFD_OK) return st;
    if ((st = ifd_kernel_output(ctx, 1, IFD_DTYPE_FLOAT, 3, hdims, &Yh)) != IFD_OK) return st;
    if (kind == RNN_LSTM && (st = ifd_kernel_output(ctx, 2, IFD_DTYPE_FLOAT, 3, hdims, &Yc)) != IFD_OK)
        return st;
    float *y = Y->data, *yh = Yh->data, *yc = Yc ? Yc->data : NULL;
    if (Y->nbytes) memset(y, 0, Y->nbytes);

    /* scratch: xw [seq*batch, G*H], gates [batch, G*H], h, c [batch, H], xs (layout 1 copy) */
    size_t gh = (size_t)(G * H), sb = (size_t)(seq * batch);
    size_t n_xw, n_xs;
    if (!ifd_mul_size(sb, gh, &n_xw) || !ifd_mul_size(sb, (size_t)in, &n_xs))
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "sequence too large");
    float *xw = ifd_kernel_scratch_array(ctx, n_xw, sizeof(float), &st);
    float *gates = ifd_kernel_scratch_array(ctx, (size_t)batch * gh, sizeof(float), &st);
    float *hr = ifd_kernel_scratch_array(ctx, (size_t)batch * gh, sizeof(float), &st);
    float *h = ifd_kernel_scratch_array(ctx, (size_t)(batch * H), sizeof(float), &st);
    float *c = ifd_kernel_scratch_array(ctx, (size_t)(batch * H), sizeof(float), &st);
    float *hprev_r = ifd_kernel_scratch_array(ctx, (size_t)(batch * H), sizeof(float), &st);
    float *xs = layout ? ifd_kernel_scratch_array(ctx, n_xs, sizeof(float), &st) : NULL;
    if (st) return st;
    const float *x = X->data;
    if (layout) { /* [batch, seq, in] -> [seq, batch, in] */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t t = 0; t < seq; t++)
                memcpy(xs + ((size_t)t * (size_t)batch + (size_t)b) * (size_t)in,
                       x + ((size_t)b * (size_t)seq + (size_t)t) * (size_t)in, (size_t)in * sizeof(float));
        x = xs;
    }
    for (int d = 0; d < dirs; d++) {
        bool rev = reverse_only || d == 1;
        const float *w = (const float *)W->data + (size_t)d * gh * (size_t)in;
        const float *r = (const float *)R->data + (size_t)d * gh * (size_t)H;
        const float *wb = B ? (const float *)B->data + (size_t)d * 2 * gh : NULL;
        const float *rb = wb ? wb + gh : NULL;
        const float *p = P ? (const float *)P->data + (size_t)d * 3 * (size_t)H : NULL;
        const act_fn *f = &acts[d * n_act], *g = n_act > 1 ? &acts[d * n_act + 1] : NULL;
        const act_fn *hact = n_act > 2 ? &acts[d * n_act + 2] : NULL;
        /* xw = X W^T (+ Wb, and + Rb except GRU's h gate when linear_before_reset) */
        const rnn_state *ps = ctx->state;
        bool packed = ps && ps->dirs == dirs;
        if (sb && packed)
            ifd_sgemm_packed(false, (int64_t)sb, x, in, 1.0f, ps->w[d], 0.0f, xw, (int64_t)gh, ctx->pool);
        else if (sb)
            ifd_sgemm(false, true, (int64_t)sb, (int64_t)gh, in, 1.0f, x, in, w, in, 0.0f, xw, (int64_t)gh, ctx->pool);
        for (size_t i = 0; i < sb && wb; i++)
            for (size_t j = 0; j < gh; j++) {
                bool rb_later = kind == RNN_GRU && j >= 2 * (size_t)H;
                xw[i * gh + j] += wb[j] + (rb_later ? 0.f : rb[j]);
            }
        for (int64_t b = 0; b < batch; b++)
            for (int64_t k = 0; k < H; k++) {
                h[b * H + k] = H0 ? ((const float *)H0->data)[layout ? (b * dirs + d) * H + k : (d * batch + b) * H + k] : 0.f;
                c[b * H + k] = C0 ? ((const float *)C0->data)[layout ? (b * dirs + d) * H + k : (d * batch + b) * H + k] : 0.f;
            }
        for (int64_t step = 0; step < seq; step++) {
            /* hr = H_{t-1} R^T  [batch, G*H] */
            if (packed)
                ifd_sgemm_packed(false, batch, h, H, 1.0f, ps->r[d], 0.0f, hr, (int64_t)gh, NULL);
            else
                ifd_sgemm(false, true, batch, (int64_t)gh, H, 1.0f, h, H, r, H, 0.0f, hr, (int64_t)gh, NULL);
            /* gate pre-activations and the gates that do not wait on anything */
            for (int64_t b = 0; b < batch; b++) {
                int64_t len = SL ? ifd_tensor_get_i64(SL, b) : seq;
                if (len > seq) len = seq;
                if (step >= len) continue;
                int64_t t = rev ? len - 1 - step : step;
                const float *xt = xw + ((size_t)t * (size_t)batch + (size_t)b) * gh;
                float *gb = gates + b * (int64_t)gh, *hrb = hr + b * (int64_t)gh, *cb = c + b * H;
                int64_t pre_n = kind == RNN_GRU ? 2 * H : (int64_t)gh;
                for (int64_t j = 0; j < pre_n; j++) gb[j] = xt[j] + hrb[j];
                if (kind == RNN_LSTM && p)
                    for (int64_t k = 0; k < H; k++) {
                        gb[k] += p[k] * cb[k];             /* i */
                        gb[2 * H + k] += p[2 * H + k] * cb[k]; /* f */
                    }
                if (clip > 0)
                    for (int64_t j = 0; j < pre_n; j++) gb[j] = clipf(gb[j], clip);
                if (kind == RNN_PLAIN) {
                    act_apply_vec(f, gb, H);
                } else if (kind == RNN_GRU) {
                    act_apply_vec(f, gb, 2 * H); /* z, r */
                } else {
                    act_apply_vec(f, gb, H);              /* i */
                    act_apply_vec(f, gb + 2 * H, H);      /* f */
                    act_apply_vec(g, gb + 3 * H, H);      /* c~ */
                    if (!p) act_apply_vec(f, gb + H, H);  /* o (no peephole: ready now) */
                }
            }
            /* GRU without linear_before_reset: (r .* H_{t-1}) Rh^T for all rows at once */
            if (kind == RNN_GRU && !linear_before_reset) {
                for (int64_t b = 0; b < batch; b++)
                    for (int64_t k = 0; k < H; k++) hprev_r[b * H + k] = gates[b * (int64_t)gh + H + k] * h[b * H + k];
                float *rh_out = hr; /* reuse: the z/r part of hr is consumed */
                if (packed)
                    ifd_sgemm_packed(false, batch, hprev_r, H, 1.0f, ps->rh[d], 0.0f, rh_out, H, NULL);
                else
                    ifd_sgemm(false, true, batch, H, H, 1.0f, hprev_r, H, r + (size_t)2 * (size_t)H * (size_t)H,
                              H, 0.0f, rh_out, H, NULL);
            }
            for (int64_t b = 0; b < batch; b++) {
                int64_t len = SL ? ifd_tensor_get_i64(SL, b) : seq;
                if (len > seq) len = seq;
                if (step >= len) continue;
                int64_t t = rev ? len - 1 - step : step;
                const float *xt = xw + ((size_t)t * (size_t)batch + (size_t)b) * gh;
                float *gb = gates + b * (int64_t)gh, *hb = h + b * H, *cb = c + b * H;
                float *yt = y + (layout ? (((size_t)b * (size_t)seq + (size_t)t) * (size_t)dirs + (size_t)d) * (size_t)H
                                        : (((size_t)t * (size_t)dirs + (size_t)d) * (size_t)batch + (size_t)b) * (size_t)H);
                if (kind == RNN_PLAIN) {
                    memcpy(hb, gb, (size_t)H * sizeof(float));
                } else if (kind == RNN_GRU) {
                    float *hh = gb + 2 * H;
                    for (int64_t k = 0; k < H; k++) {
                        float rbh = rb ? rb[2 * H + k] : 0.f;
                        if (linear_before_reset)
                            hh[k] = xt[2 * H + k] + gb[H + k] * (hr[b * (int64_t)gh + 2 * H + k] + rbh);
                        else
                            hh[k] = xt[2 * H + k] + rbh + hr[b * H + k];
                        if (clip > 0) hh[k] = clipf(hh[k], clip);
                    }
                    act_apply_vec(g, hh, H);
                    for (int64_t k = 0; k < H; k++) hb[k] = (1.f - gb[k]) * hh[k] + gb[k] * hb[k];
                } else {
                    float *cn = hprev_r + b * H; /* new cell state, then h(cn) */
                    for (int64_t k = 0; k < H; k++) {
                        float i_ = gb[k], f_ = input_forget ? 1.f - gb[k] : gb[2 * H + k];
                        cn[k] = f_ * cb[k] + i_ * gb[3 * H + k];
                    }
                    if (p) {
                        for (int64_t k = 0; k < H; k++) {
                            float o = gb[H + k] + p[H + k] * cn[k];
                            gb[H + k] = clip > 0 ? clipf(o, clip) : o;
                        }
                        act_apply_vec(f, gb + H, H);
                    }
                    memcpy(cb, cn, (size_t)H * sizeof(float));
                    act_apply_vec(hact, cn, H);
                    for (int64_t k = 0; k < H; k++) hb[k] = gb[H + k] * cn[k];
                }
                memcpy(yt, hb, (size_t)H * sizeof(float));
            }
        }
        for (int64_t b = 0; b < batch; b++) {
            size_t off = layout ? ((size_t)b * (size_t)dirs + (size_t)d) * (size_t)H
                                : ((size_t)d * (size_t)batch + (size_t)b) * (size_t)H;
            memcpy(yh + off, h + b * H, (size_t)H * sizeof(float));
            if (yc) memcpy(yc + off, c + b * H, (size_t)H * sizeof(float));
        }
    }
    return IFD_OK;
}

static ifd_status run_rnn(ifd_kernel_ctx *ctx) { return run_rnn_kind(ctx, RNN_PLAIN); }
static ifd_status run_gru(ifd_kernel_ctx *ctx) { return run_rnn_kind(ctx, RNN_GRU); }
static ifd_status run_lstm(ifd_kernel_ctx *ctx) { return run_rnn_kind(ctx, RNN_LSTM); }

const ifd_op_def ifd_ops_rnn[] = {
    {"", "RNN", 1, run_rnn, rnn_prepare, rnn_release, 0},
    {"", "GRU", 1, run_gru, gru_prepare, rnn_release, 0},
    {"", "LSTM", 1, run_lstm, lstm_prepare, rnn_release, 0},
    {0},
};
