#!/usr/bin/python3
"""Test material for tests/test_quantize.sh (Debian's python3-onnx and numpy):

    /usr/bin/python3 tests/quantize/make_inputs.py GOLDEN_DIR OUTDIR

OUTDIR/cal_<model>/     calibration samples for the golden models: standard normal like the
                        golden inputs, from another seed (so the checks do not run on the
                        calibration data)
OUTDIR/<case>/model.onnx small models for the opset and error cases, with input_0_x.npy and
                        reference_0.npy (numpy) where they are expected to work
OUTDIR/bad_cal/         a digits calibration folder holding a sample of the wrong shape
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh

golden, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(11)


def save(name, model, inputs=None, reference=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    if inputs is not None:
        np.save(os.path.join(d, "input_0_x.npy"), inputs)
        np.save(os.path.join(d, "reference_0.npy"), reference)


for m, n in (("cnn", 4), ("resnet18", 3), ("mobilenetv2", 3), ("mlp", 4), ("bert", 0)):
    if not n:
        continue
    x = np.load(os.path.join(golden, m, "input_0_x.npy"))
    d = os.path.join(out, "cal_" + m)
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        np.save(os.path.join(d, "sample_%d.npy" % i), rng.standard_normal(x.shape, dtype=np.float32))

# An MLP at a given opset: Gemm(transB) -> Relu -> Gemm [-> Softmax].
w1 = rng.standard_normal((64, 32), dtype=np.float32) * 0.2
b1 = rng.standard_normal(64, dtype=np.float32) * 0.1
w2 = rng.standard_normal((10, 64), dtype=np.float32) * 0.2
x = rng.standard_normal((8, 32), dtype=np.float32)


def mlp(opset, softmax=False):
    nodes = [h.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             h.make_node("Relu", ["h"], ["r"], name="relu"),
             h.make_node("Gemm", ["r", "w2"], ["y" if not softmax else "z"], name="fc2", transB=1)]
    if softmax:
        nodes.append(h.make_node("Softmax", ["z"], ["y"], name="softmax", axis=1))
    g = h.make_graph(nodes, "mlp", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 32])],
                     [h.make_tensor_value_info("y", T.FLOAT, ["batch", 10])],
                     [nh.from_array(w1, "w1"), nh.from_array(b1, "b1"), nh.from_array(w2, "w2")])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 6 if opset < 13 else 8
    return m


ref = np.maximum(x @ w1.T + b1, 0) @ w2.T
save("opset11", mlp(11), x, ref.astype(np.float32))
save("opset9", mlp(9))
save("opset11_softmax", mlp(11, softmax=True))

# Nothing to quantize: Relu and Add only.
g = h.make_graph([h.make_node("Relu", ["x"], ["r"], name="relu"),
                  h.make_node("Add", ["r", "x"], ["y"], name="add")], "noquant",
                 [h.make_tensor_value_info("x", T.FLOAT, [2, 4])],
                 [h.make_tensor_value_info("y", T.FLOAT, [2, 4])])
save("noquant", h.make_model(g, opset_imports=[h.make_opsetid("", 17)]))

# MatMul of two activations (named 'scores'), plus one quantizable MatMul.
g = h.make_graph([h.make_node("MatMul", ["x", "x_t"], ["s"], name="scores"),
                  h.make_node("MatMul", ["s", "w"], ["y"], name="proj")], "act",
                 [h.make_tensor_value_info("x", T.FLOAT, [4, 8]),
                  h.make_tensor_value_info("x_t", T.FLOAT, [8, 4])],
                 [h.make_tensor_value_info("y", T.FLOAT, [4, 16])],
                 [nh.from_array(rng.standard_normal((4, 16), dtype=np.float32), "w")])
save("act_matmul", h.make_model(g, opset_imports=[h.make_opsetid("", 17)]))

# Weights in an external file.
m = mlp(17)
d = os.path.join(out, "external")
os.makedirs(d, exist_ok=True)
onnx.save(m, os.path.join(d, "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
          location="weights.bin", size_threshold=0)

# Digits calibration with one sample of the wrong shape.
d = os.path.join(out, "bad_cal")
os.makedirs(d, exist_ok=True)
np.save(os.path.join(d, "a.npy"), np.zeros((1, 1, 8, 8), np.float32))
np.save(os.path.join(d, "b.npy"), np.zeros((1, 3, 8, 8), np.float32))
os.makedirs(os.path.join(out, "empty_cal"), exist_ok=True)
