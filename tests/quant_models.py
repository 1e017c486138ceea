#!/usr/bin/python3
"""Build int8 ONNX models in exactly the shapes of /tmp/briefs/qformat.md (docs: the formats
`inferd quantize` writes and ONNX Runtime's quantizer also produces), for the int8 runtime's
tests and benchmarks. Written with onnx.helper + NumPy only (no ONNX Runtime in Python here).

    /usr/bin/python3 tests/quant_models.py INFERD_BIN OUTDIR [GOLDEN_DIR]

Writes OUTDIR/<name>/model.onnx + input_<k>_<name>.npy (the bench/ort/bench.js layout):
  qmlp_dyn    small synthetic MLP (MatMul+Add, Gemm with transB and GELU after it, MatMul
              without bias), dynamic
  qcnn_dyn    small synthetic CNN (Conv, grouped Conv, stride/pads), dynamic ConvInteger
  qcnn_qdq    small synthetic CNN, static QDQ: Conv+Relu, Conv without Relu, a Q/DQ pair shared
              by two convs, a residual Add(DQ, DQ) -> Relu -> Q (the uint8 Add fusion), a
              quantized conv output that is also a graph output, a MatMul with per-column
              weight scales
  qwide_qdq   static QDQ convolutions with stride 2 and output lines wider than 64 (the
              vectorized stride-2 im2col), 3x3 padded and 1x1; and 1-D convolutions (the
              generic im2col) with padding, stride and dilation
  qadd_qdq    QDQ residual joins alone: Add(DQ, DQ) -> Relu -> Q with NumPy broadcasting, and
              Add(DQ, DQ) -> Q of equal shapes, each followed by DQ to a float output
  bert_int8   the golden BERT-style encoder, dynamic (when GOLDEN_DIR/bert exists)
  resnet18_qdq  the golden ResNet-18, static QDQ calibrated on its input (GOLDEN_DIR/resnet18)
Static calibration runs the float model in inferd (INFERD_BIN run) with every tensor to be
quantized added as a graph output; ranges are min/max.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def inits(graph):
    return {i.name: i for i in graph.initializer}


def weight_scales(w, axis):
    """Per-channel symmetric int8 in [-127, 127] along `axis` (qformat: zero channel -> 1)."""
    red = tuple(i for i in range(w.ndim) if i != axis)
    mx = np.abs(w).max(axis=red)
    s = (mx / 127.0).astype(np.float32)
    s[s == 0] = 1.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / s.reshape(shape)), -127, 127).astype(np.int8)
    return q, s


def uniq(graph, base):
    names = {v for n in graph.node for v in list(n.input) + list(n.output)}
    names |= {i.name for i in graph.initializer} | {i.name for i in graph.input}
    k, name = 0, base
    while name in names:
        k += 1
        name = "%s_%d" % (base, k)
    return name


# ---- dynamic ------------------------------------------------------------------------------

def quantize_dynamic(model):
    g = model.graph
    ini = inits(g)
    new_nodes = []
    dql_of = {}  # activation -> (xq, xs, xzp): one DynamicQuantizeLinear per tensor
    added = []

    def dql(x, out):
        if x not in dql_of:
            xq, xs, xz = uniq(g, x + "_q"), uniq(g, x + "_scale"), uniq(g, x + "_zp")
            out.append(helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz],
                                        name=uniq(g, x + "_DQL")))
            dql_of[x] = (xq, xs, xz)
        return dql_of[x]

    for n in g.node:
        w = None
        if n.op_type in ("MatMul", "Gemm") and n.input[1] in ini:
            w = numpy_helper.to_array(ini[n.input[1]]).astype(np.float32)
            if w.ndim != 2:
                w = None
            elif n.op_type == "Gemm":
                a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
                if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                    w = None
                elif a.get("transB", 0):
                    w = w.T.copy()
        if n.op_type == "Conv" and n.input[1] in ini:
            w = numpy_helper.to_array(ini[n.input[1]]).astype(np.float32)
        if w is None:
            new_nodes.append(n)
            continue
        conv = n.op_type == "Conv"
        wq, ws = weight_scales(w, 0 if conv else 1)
        base = n.name or n.output[0]
        wqn, wsn, wzn = uniq(g, base + "_Wq"), uniq(g, base + "_Ws"), uniq(g, base + "_Wzp")
        added += [numpy_helper.from_array(wq, wqn),
                  numpy_helper.from_array(ws if not conv else ws.reshape(1, -1, 1, 1), wsn),
                  numpy_helper.from_array(np.zeros(ws.shape, np.int8), wzn)]
        xq, xs, xz = dql(n.input[0], new_nodes)
        y32, yf, s = uniq(g, base + "_i32"), uniq(g, base + "_f"), uniq(g, base + "_S")
        if conv:
            attrs = [a for a in n.attribute]
            qn = helper.make_node("ConvInteger", [xq, wqn, xz, wzn], [y32], name=base + "_quant")
            qn.attribute.extend(attrs)
        else:
            qn = helper.make_node("MatMulInteger", [xq, wqn, xz, wzn], [y32], name=base + "_quant")
        new_nodes.append(qn)
        new_nodes.append(helper.make_node("Cast", [y32], [yf], to=TensorProto.FLOAT,
                                          name=base + "_cast"))
        new_nodes.append(helper.make_node("Mul", [xs, wsn], [s], name=base + "_scale"))
        has_bias = (conv or n.op_type == "Gemm") and len(n.input) > 2 and n.input[2]
        y = uniq(g, base + "_nobias") if has_bias else n.output[0]
        new_nodes.append(helper.make_node("Mul", [yf, s], [y], name=base + "_mul"))
        if has_bias:
            b = n.input[2]
            if conv:
                bv = numpy_helper.to_array(ini[b]).astype(np.float32).reshape(1, -1, 1, 1)
                b = uniq(g, base + "_B4")
                added.append(numpy_helper.from_array(bv, b))
            new_nodes.append(helper.make_node("Add", [y, b], [n.output[0]], name=base + "_bias"))
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(added)
    drop_unused_initializers(g)
    return model


def drop_unused_initializers(g):
    used = {v for n in g.node for v in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


# ---- static QDQ ---------------------------------------------------------------------------

def run_inferd(inferd, model, inputs, names):
    """Values of the tensors `names` on `inputs`, from the float model run by inferd."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for nm in names:
        if nm not in have:
            m.graph.output.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT, None))
    tmp = tempfile.mkdtemp()
    try:
        onnx.save(m, os.path.join(tmp, "m.onnx"))
        args = [inferd, "run", os.path.join(tmp, "m.onnx"), "-o", os.path.join(tmp, "out")]
        for k, (nm, arr) in enumerate(inputs):
            p = os.path.join(tmp, "in%d.npy" % k)
            np.save(p, arr)
            args += ["-i", "%s=%s" % (nm, p)]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        out = {}
        for nm in names:
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in nm)
            out[nm] = np.load(os.path.join(tmp, "out", safe + ".npy"))
        return out
    finally:
        shutil.rmtree(tmp)


def act_qparams(v):
    lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
    s = np.float32((hi - lo) / 255.0 if hi > lo else 1.0)
    zp = np.uint8(np.clip(np.rint(-lo / s), 0, 255))
    return s, zp


def quantize_static(model, inferd, inputs, exclude_first_last=True):
    g = model.graph
    ini = inits(g)
    quant = [n for n in g.node if n.op_type in ("Conv", "MatMul", "Gemm") and n.input[1] in ini
             and not (n.op_type == "Gemm" and any(a.name == "transA" and a.i for a in n.attribute))]
    if exclude_first_last and len(quant) > 2:
        quant = quant[1:-1]
    qset = {id(n) for n in quant}
    producers = {o: n for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for v in n.input:
            consumers.setdefault(v, []).append(n)
    # tensors that get a Q/DQ pair: inputs of quantized nodes and their outputs (after a
    # Relu/Clip that directly follows)
    qtensors = []
    out_of = {}
    for n in quant:
        qtensors.append(n.input[0])
        y = n.output[0]
        c = consumers.get(y, [])
        if len(c) == 1 and c[0].op_type in ("Relu", "Clip"):
            y = c[0].output[0]
        out_of[id(n)] = y
        qtensors.append(y)
    qtensors = list(dict.fromkeys(qtensors))
    vals = run_inferd(inferd, model, inputs, qtensors)
    qp = {t: act_qparams(vals[t]) for t in qtensors}
    added, nodes = [], []
    dq_name = {}
    for t in qtensors:
        s, zp = qp[t]
        sn, zn = uniq(g, t + "_scale"), uniq(g, t + "_zero_point")
        added += [numpy_helper.from_array(np.array(s, np.float32), sn),
                  numpy_helper.from_array(np.array(zp, np.uint8), zn)]
        qn, dqn = uniq(g, t + "_QuantizeLinear_Output"), uniq(g, t + "_DequantizeLinear_Output")
        dq_name[t] = (qn, dqn, sn, zn)
    # rewrite: every consumer of a Q/DQ'd tensor reads the DQ output
    for n in g.node:
        for i, v in enumerate(n.input):
            if v in dq_name:
                n.input[i] = dq_name[v][1]
    graph_outs = {o.name for o in g.output}
    for n in g.node:
        nodes.append(n)
        if id(n) in qset:
            x = n.input[0]
            xs = np.float32(qp[[t for t in qtensors if dq_name[t][1] == x][0]][0])
            w = numpy_helper.to_array(ini[n.input[1]]).astype(np.float32)
            conv = n.op_type == "Conv"
            tb = n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute)
            axis = 0 if (conv or tb) else 1
            wq, ws = weight_scales(w, axis)
            base = n.name or n.output[0]
            wqn, wsn, wzn, wdq = (uniq(g, base + s) for s in ("_Wq", "_Ws", "_Wzp", "_Wdq"))
            added += [numpy_helper.from_array(wq, wqn), numpy_helper.from_array(ws, wsn),
                      numpy_helper.from_array(np.zeros(ws.shape, np.int8), wzn)]
            nodes.insert(len(nodes) - 1, helper.make_node(
                "DequantizeLinear", [wqn, wsn, wzn], [wdq], axis=axis, name=base + "_Wdq"))
            n.input[1] = wdq
            if len(n.input) > 2 and n.input[2] in ini:
                b = numpy_helper.to_array(ini[n.input[2]]).astype(np.float32)
                bs = (xs * ws).astype(np.float32)
                bq = np.rint(b / bs).astype(np.int32)
                bqn, bsn, bzn, bdq = (uniq(g, base + s) for s in ("_Bq", "_Bs", "_Bzp", "_Bdq"))
                added += [numpy_helper.from_array(bq, bqn), numpy_helper.from_array(bs, bsn),
                          numpy_helper.from_array(np.zeros(bs.shape, np.int32), bzn)]
                nodes.insert(len(nodes) - 1, helper.make_node(
                    "DequantizeLinear", [bqn, bsn, bzn], [bdq], axis=0, name=base + "_Bdq"))
                n.input[2] = bdq
        for o in n.output:
            if o in dq_name:
                qn, dqn, sn, zn = dq_name[o]
                nodes.append(helper.make_node("QuantizeLinear", [o, sn, zn], [qn],
                                              name=o + "_Q"))
                nodes.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [dqn],
                                              name=o + "_DQ"))
    for t in qtensors:  # graph inputs that get a pair
        if t in {i.name for i in g.input}:
            qn, dqn, sn, zn = dq_name[t]
            nodes.insert(0, helper.make_node("DequantizeLinear", [qn, sn, zn], [dqn], name=t + "_DQ"))
            nodes.insert(0, helper.make_node("QuantizeLinear", [t, sn, zn], [qn], name=t + "_Q"))
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(added)
    # graph outputs keep their float value (the Q/DQ pair only feeds consumers)
    del graph_outs
    drop_unused_initializers(g)
    return model


# ---- synthetic models ---------------------------------------------------------------------

def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def mlp_model():
    ini = [numpy_helper.from_array(f32(64, 96, scale=0.2), "W1"),
           numpy_helper.from_array(f32(96, scale=0.1), "B1"),
           numpy_helper.from_array(f32(40, 96, scale=0.2), "W2"),  # Gemm transB
           numpy_helper.from_array(f32(40, scale=0.1), "B2"),
           numpy_helper.from_array(f32(40, 33, scale=0.2), "W3")]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h1"]),
             helper.make_node("Add", ["h1", "B1"], ["h1b"]),
             helper.make_node("Relu", ["h1b"], ["r1"]),
             helper.make_node("Reshape", ["r1", "shape2d"], ["r1_2d"]),
             helper.make_node("Gemm", ["r1_2d", "W2", "B2"], ["h2"], transB=1),
             # nn.GELU() as torch.onnx writes it (fused into the int8 projection before it)
             helper.make_node("Div", ["h2", "sqrt2"], ["g1"]),
             helper.make_node("Erf", ["g1"], ["g2"]),
             helper.make_node("Add", ["g2", "one"], ["g3"]),
             helper.make_node("Mul", ["h2", "g3"], ["g4"]),
             helper.make_node("Mul", ["g4", "half"], ["h2g"]),
             helper.make_node("MatMul", ["h2g", "W3"], ["y"])]
    ini.append(numpy_helper.from_array(np.array([-1, 96], np.int64), "shape2d"))
    ini += [numpy_helper.from_array(np.array(np.sqrt(2.0), np.float32), "sqrt2"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
            numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    g = helper.make_graph(nodes, "qmlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 7, 33])], ini)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), [("x", f32(2, 7, 64))]


def cnn_model(static):
    ini = [numpy_helper.from_array(f32(16, 3, 3, 3, scale=0.3), "Wa"),
           numpy_helper.from_array(f32(16, scale=0.1), "Ba"),
           numpy_helper.from_array(f32(24, 16, 3, 3, scale=0.1), "Wb"),  # stride 2, pads
           numpy_helper.from_array(f32(24, scale=0.1), "Bb"),
           numpy_helper.from_array(f32(24, 6, 3, 3, scale=0.2), "Wc"),   # group 4
           numpy_helper.from_array(f32(24, scale=0.1), "Bc"),
           numpy_helper.from_array(f32(24, 24, 1, 1, scale=0.2), "Wd"),  # 1x1, shares input
           numpy_helper.from_array(f32(32, 24, 3, 3, scale=0.1), "We"),  # no bias, shares input
           numpy_helper.from_array(f32(24, 10, scale=0.2), "Wf"),
           numpy_helper.from_array(f32(10, scale=0.1), "Bf"),
           numpy_helper.from_array(f32(10, 5, scale=0.3), "Wg")]
    nodes = [helper.make_node("Conv", ["x", "Wa", "Ba"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "Wb", "Bb"], ["b"], pads=[1, 0, 1, 2], strides=[2, 2]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("Conv", ["br", "Wc", "Bc"], ["c"], pads=[1, 1, 1, 1], group=4),
             helper.make_node("Conv", ["br", "Wd"], ["d"]),
             helper.make_node("Add", ["c", "d"], ["cd"]),
             helper.make_node("Relu", ["cd"], ["cdr"]),
             helper.make_node("Conv", ["cdr", "We"], ["e"], pads=[0, 0, 0, 0], dilations=[2, 2]),
             helper.make_node("GlobalAveragePool", ["cdr"], ["gp"]),
             helper.make_node("Flatten", ["gp"], ["fl"]),
             helper.make_node("MatMul", ["fl", "Wf"], ["f"]),
             helper.make_node("Add", ["f", "Bf"], ["fb"]),
             helper.make_node("MatMul", ["fb", "Wg"], ["y"])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5]),
            helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 32, 5, 6]),
            helper.make_tensor_value_info("br", TensorProto.FLOAT, [2, 24, 9, 10])]  # also a graph output
    g = helper.make_graph(nodes, "qcnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 17, 19])],
                          outs, ini)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), [("x", f32(2, 3, 17, 19))]


def wide_model():
    ini = [numpy_helper.from_array(f32(8, 4, 3, 3, scale=0.3), "Wa"),
           numpy_helper.from_array(f32(8, scale=0.1), "Ba"),
           numpy_helper.from_array(f32(6, 8, 1, 1, scale=0.3), "Wb"),
           numpy_helper.from_array(f32(6, scale=0.1), "Bb")]
    ini += [numpy_helper.from_array(f32(5, 3, 3, scale=0.3), "Wc"),
            numpy_helper.from_array(f32(4, 5, 2, scale=0.3), "Wd")]
    nodes = [helper.make_node("Conv", ["x", "Wa", "Ba"], ["a"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "Wb", "Bb"], ["y"], strides=[2, 2]),
             helper.make_node("Conv", ["s", "Wc"], ["c"], pads=[2, 1], strides=[2]),
             helper.make_node("Relu", ["c"], ["cr"]),
             helper.make_node("Conv", ["cr", "Wd"], ["z"], dilations=[3])]
    g = helper.make_graph(nodes, "qwide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 7, 301]),
                                           helper.make_tensor_value_info("s", TensorProto.FLOAT, [2, 3, 40])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 2, 76]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 4, 18])], ini)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), \
        [("x", f32(1, 4, 7, 301)), ("s", f32(2, 3, 40))]


def qadd_model():
    def qp(name, s, zp):
        return [numpy_helper.from_array(np.array(s, np.float32), name + "_s"),
                numpy_helper.from_array(np.array(zp, np.uint8), name + "_z")]

    def qdq(t, name):
        return [helper.make_node("QuantizeLinear", [t, name + "_s", name + "_z"], [t + "_q"]),
                helper.make_node("DequantizeLinear", [t + "_q", name + "_s", name + "_z"], [t + "_dq"])]

    ini = qp("qa", 0.021, 120) + qp("qb", 0.017, 131) + qp("qc", 0.013, 90) + \
        qp("qy", 0.023, 3) + qp("qz", 0.031, 128)
    nodes = qdq("a", "qa") + qdq("b", "qb") + qdq("c", "qc") + [
        helper.make_node("Add", ["a_dq", "b_dq"], ["ab"]),
        helper.make_node("Relu", ["ab"], ["abr"])] + qdq("abr", "qy") + [
        helper.make_node("Identity", ["abr_dq"], ["y"]),
        helper.make_node("Add", ["a_dq", "c_dq"], ["ac"])] + qdq("ac", "qz") + [
        helper.make_node("Identity", ["ac_dq"], ["z"])]
    ins = [("a", f32(2, 4, 5, 6, scale=1.5)), ("b", f32(2, 1, 5, 1, scale=1.5)),
           ("c", f32(2, 4, 5, 6, scale=1.0))]
    g = helper.make_graph(nodes, "qadd",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape)) for n, v in ins],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 5, 6]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 4, 5, 6])], ini)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), ins


def save(outdir, name, model, inputs):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (nm, arr) in enumerate(inputs):
        np.save(os.path.join(d, "input_%d_%s.npy" % (k, nm)), arr)


def golden_inputs(d):
    out = []
    for f in sorted(os.listdir(d)):
        if f.startswith("input_") and f.endswith(".npy"):
            nm = f[len("input_"):-4].split("_", 1)[1]
            out.append((nm, np.load(os.path.join(d, f))))
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    inferd, outdir = sys.argv[1], sys.argv[2]
    golden = sys.argv[3] if len(sys.argv) > 3 else None
    m, x = mlp_model()
    save(outdir, "qmlp_dyn", quantize_dynamic(m), x)
    m, x = cnn_model(False)
    save(outdir, "qcnn_dyn", quantize_dynamic(m), x)
    m, x = cnn_model(True)
    save(outdir, "qcnn_qdq", quantize_static(m, inferd, x, exclude_first_last=False), x)
    m, x = qadd_model()
    save(outdir, "qadd_qdq", m, x)
    m, x = wide_model()
    save(outdir, "qwide_qdq", quantize_static(m, inferd, x, exclude_first_last=False), x)
    if golden and os.path.isdir(os.path.join(golden, "bert")):
        d = os.path.join(golden, "bert")
        save(outdir, "bert_int8", quantize_dynamic(onnx.load(os.path.join(d, "model.onnx"))),
             golden_inputs(d))
    if golden and os.path.isdir(os.path.join(golden, "resnet18")):
        d = os.path.join(golden, "resnet18")
        x = golden_inputs(d)
        save(outdir, "resnet18_qdq",
             quantize_static(onnx.load(os.path.join(d, "model.onnx")), inferd, x), x)
    return 0


if __name__ == "__main__":
    sys.exit(main())
