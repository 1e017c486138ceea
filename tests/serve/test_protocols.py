#!/usr/bin/python3
"""Black-box tests of `inferd serve` for Triton's binary tensor data extension (KServe v2) and
the TF Serving REST API (:predict in the row and columnar formats, model status, metadata).
Python standard library only.

    tests/serve/test_protocols.py BUILD/inferd ONNX_TESTS_ROOT

Builds a model repository in a temporary folder from the ONNX conformance models and
examples/models/digits, starts the server on a free port, and prints "PASS name" /
"FAIL name: why", then "N passed, M failed".
"""
import base64
import http.client
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ONNX = os.path.abspath(sys.argv[2])
NODE = os.path.join(ONNX, "node")
HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "..", "..", "examples", "models", "digits")

from harness import tensorproto_fields, BIN, SLOW, START_TIMEOUT, Server, finish, free_port, report, test, stop_checked  # noqa: E402,F401
from harness import pb_field as _field  # noqa: E402



# ---- a minimal onnx.TensorProto reader (the conformance data) ---------------------------------------

# onnx data type -> (KServe datatype, struct format, TF Serving dtype)
DTYPES = {1: ("FP32", "f", "DT_FLOAT"), 2: ("UINT8", "B", "DT_UINT8"), 3: ("INT8", "b", "DT_INT8"),
          4: ("UINT16", "H", "DT_UINT16"), 5: ("INT16", "h", "DT_INT16"),
          6: ("INT32", "i", "DT_INT32"), 7: ("INT64", "q", "DT_INT64"),
          9: ("BOOL", "?", "DT_BOOL"), 10: ("FP16", "e", "DT_HALF"),
          11: ("FP64", "d", "DT_DOUBLE"), 12: ("UINT32", "I", "DT_UINT32"),
          13: ("UINT64", "Q", "DT_UINT64"), 16: ("BF16", "H", "DT_BFLOAT16")}
KFMT = {v[0]: v[1] for v in DTYPES.values()}


def read_tensorproto(path):
    """(onnx data type, dims, raw little-endian bytes of the elements)"""
    dtype, dims, raw, ints, floats, doubles = tensorproto_fields(path)
    if raw is None:
        fmt = DTYPES[dtype][1]
        if dtype == 1:
            raw = struct.pack("<%df" % len(floats), *floats)
        elif dtype == 11:
            raw = struct.pack("<%dd" % len(doubles), *doubles)
        else:
            size = struct.calcsize(fmt)
            raw = b"".join((v & ((1 << (8 * size)) - 1)).to_bytes(size, "little") for v in ints)
    return dtype, dims, raw


def unpack(datatype, raw):
    fmt = KFMT[datatype]
    return list(struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw))


def close(a, b, tol=1e-5):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) or isinstance(y, float):
            if math.isnan(x) and math.isnan(y):
                continue
            if abs(x - y) > tol * max(1.0, abs(y)):
                return False
        elif x != y:
            return False
    return True


def flatten(v):
    if isinstance(v, list):
        out = []
        for e in v:
            out += flatten(e)
        return out
    return [v]


def nest(flat, dims):
    if not dims:
        return flat[0]
    step = len(flat) // dims[0] if dims[0] else 0
    return [nest(flat[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]


# ---- the server ---------------------------------------------------------------------------------------

SRV = None


def request(method, path, body=None, headers=None):
    """(status, parsed JSON or raw bytes, response)"""
    c = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=60)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data
    return r.status, parsed, r


def binary_request(path, header, blobs, pad=0, hdr=None):
    """POST JSON header (padded with pad spaces) + blobs; returns (status, json, {name: bytes}, r)"""
    js = json.dumps(header).encode() + b" " * pad
    headers = {"Inference-Header-Content-Length": str(len(js)) if hdr is None else hdr,
               "Content-Type": "application/octet-stream"}
    c = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=60)
    c.request("POST", path, body=js + b"".join(blobs), headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    n = r.getheader("Inference-Header-Content-Length")
    if n is None:
        return r.status, (json.loads(data) if data else None), {}, r
    n = int(n)
    reply = json.loads(data[:n])
    raw, at = {}, n
    for o in reply.get("outputs", []):
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            raw[o["name"]] = data[at:at + size]
            at += size
    assert at == len(data), "binary section is %d bytes, outputs claim %d" % (len(data) - n, at - n)
    return r.status, reply, raw, r


def expect_error(status, body, code, words=()):
    assert status == code, "status %s (want %s): %s" % (status, code, body)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    for w in words:
        assert w.lower() in body["error"].lower(), "%r not in %r" % (w, body["error"])


# ---- the repository -----------------------------------------------------------------------------------

CASES = {"add": "test_add", "add_int8": "test_add_int8", "add_uint16": "test_add_uint16",
         "add_uint32": "test_add_uint32", "add_uint64": "test_add_uint64",
         "add_int16": "test_add_int16", "add_uint8": "test_add_uint8",
         "max_int64": "test_max_int64", "and_bool": "test_and2d",
         "cast_f32_f64": "test_cast_FLOAT_to_DOUBLE", "cast_f32_f16": "test_cast_FLOAT_to_FLOAT16",
         "cast_f16_f32": "test_cast_FLOAT16_to_FLOAT", "cast_bf16_f32": "test_cast_BFLOAT16_to_FLOAT",
         "relu": "test_relu", "size": "test_size_example", "split": "test_split_equal_parts_2d_opset13", "topk": "test_top_k"}


# ---- string models built by hand (protobuf wire format) -------------------------------------------

ONNX_STRING, ONNX_FLOAT, ONNX_BOOL, ONNX_INT64 = 8, 1, 9, 7


def _value_info(name, elem, dims):
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, elem) + _field(2, shape)))


def _node(op, ins, outs, domain=None, attrs=b""):
    n = b"".join(_field(1, i) for i in ins) + b"".join(_field(2, o) for o in outs)
    n += _field(3, op + "_" + outs[0]) + _field(4, op) + attrs
    return n + (_field(7, domain) if domain else b"")


def _model(nodes, inputs, outputs, inits=b"", ml=False, opset=13):
    graph = b"".join(_field(1, n) for n in nodes) + _field(2, "g") + inits
    graph += b"".join(_field(11, _value_info(*i)) for i in inputs)
    graph += b"".join(_field(12, _value_info(*o)) for o in outputs)
    opsets = _field(8, _field(1, "") + _field(2, opset))
    if ml:
        opsets += _field(8, _field(1, "ai.onnx.ml") + _field(2, 2))
    return _field(1, 8) + opsets + _field(7, graph)


def string_models():
    """{name: (model bytes, config or None)}"""
    ident = _model([_node("Identity", ["x"], ["y"]), _node("Identity", ["x"], ["y_bytes"])],
                   [("x", ONNX_STRING, ["a", "b"])],
                   [("y", ONNX_STRING, ["a", "b"]), ("y_bytes", ONNX_STRING, ["a", "b"])])
    cat = _field(2, ONNX_STRING) + _field(6, b"cat") + _field(8, "c")  # a scalar "cat"
    equal = _model([_node("Equal", ["x", "c"], ["y"])], [("x", ONNX_STRING, ["n"])],
                   [("y", ONNX_BOOL, ["n"])], inits=_field(5, cat), opset=19)  # strings: Equal-19
    mix = _model([_node("Identity", ["s"], ["s_out"]), _node("Identity", ["f"], ["f_out"])],
                 [("s", ONNX_STRING, ["n"]), ("f", ONNX_FLOAT, ["n"])],
                 [("s_out", ONNX_STRING, ["n"]), ("f_out", ONNX_FLOAT, ["n"])])
    keys = b"".join(_field(9, k) for k in (b"cat", b"dog", b"\xff\xfebin"))
    attrs = (_field(5, _field(1, "keys_strings") + _field(20, 8) + keys) +
             _field(5, _field(1, "values_int64s") + _field(20, 7) +
                    b"".join(_field(8, v) for v in (1, 2, 3))) +
             _field(5, _field(1, "default_int64") + _field(20, 2) + _field(3, 99)))
    label = _model([_node("LabelEncoder", ["x"], ["y"], "ai.onnx.ml", attrs)],
                   [("x", ONNX_STRING, ["n"])], [("y", ONNX_INT64, ["n"])], ml=True)
    return {"str_identity": (ident, None), "str_equal": (equal, None), "str_mix": (mix, None),
            "str_label": (label, None),
            "str_batched": (ident, {"max_batch_size": 8, "dynamic_batching":
                                    {"max_queue_delay_microseconds": 20000}})}


def build_repo(root):
    for name, (data, config) in string_models().items():
        os.makedirs(os.path.join(root, name, "1"))
        with open(os.path.join(root, name, "1", "model.onnx"), "wb") as f:
            f.write(data)
        if config is not None:
            with open(os.path.join(root, name, "config.json"), "w") as f:
                json.dump(config, f)
    for name, case in CASES.items():
        d = os.path.join(root, name, "1")
        os.makedirs(d)
        shutil.copy(os.path.join(NODE, case, "model.onnx"), os.path.join(d, "model.onnx"))
    os.makedirs(os.path.join(root, "relu", "2"))
    shutil.copy(os.path.join(NODE, "test_relu", "model.onnx"), os.path.join(root, "relu", "2"))
    os.makedirs(os.path.join(root, "broken", "1"))
    with open(os.path.join(root, "broken", "1", "model.onnx"), "wb") as f:
        f.write(b"\x08\x07not a model")
    shutil.copytree(DIGITS, os.path.join(root, "digits"))


def case_io(name):
    """[(input name, datatype, dims, raw)], [(output name, datatype, dims, raw)] from the case"""
    d = os.path.join(NODE, CASES[name], "test_data_set_0")
    names = model_io(name)
    ins, outs = [], []
    for kind, dest in (("input", ins), ("output", outs)):
        i = 0
        while os.path.exists(os.path.join(d, "%s_%d.pb" % (kind, i))):
            dt, dims, raw = read_tensorproto(os.path.join(d, "%s_%d.pb" % (kind, i)))
            dest.append((names[kind][i], DTYPES[dt][0], dims, raw))
            i += 1
    return ins, outs


_META = {}


def model_io(name):
    if name not in _META:
        st, body, _ = request("GET", "/v2/models/" + name)
        assert st == 200, body
        _META[name] = {"input": [i["name"] for i in body["inputs"]],
                       "output": [o["name"] for o in body["outputs"]]}
    return _META[name]


# ---- binary tensor data -------------------------------------------------------------------------------

def binary_roundtrip(name, pad=0):
    ins, outs = case_io(name)
    header = {"id": "r-" + name, "inputs": [
        {"name": n, "datatype": t, "shape": dims, "parameters": {"binary_data_size": len(raw)}}
        for n, t, dims, raw in ins],
        "outputs": [{"name": n, "parameters": {"binary_data": True}} for n, _, _, _ in outs]}
    st, reply, raw, r = binary_request("/v2/models/%s/infer" % name, header,
                                       [x[3] for x in ins], pad)
    assert st == 200, reply
    assert reply.get("id") == "r-" + name, reply
    assert r.getheader("Content-Type") == "application/octet-stream", r.getheaders()
    for (n, t, dims, want), o in zip(outs, reply["outputs"]):
        assert o["name"] == n and o["datatype"] == t and o["shape"] == dims, o
        assert "data" not in o and o["parameters"]["binary_data_size"] == len(want), o
        got = unpack(t, raw[n])
        tol = 1e-2 if t in ("FP16", "BF16") else 1e-6
        assert close(got, unpack(t, want), tol), "%s: %s != %s" % (n, got[:8], unpack(t, want)[:8])


def binary_dtype_tests():
    for name in ("add", "add_int8", "add_int16", "add_uint8", "add_uint16", "add_uint32",
                 "add_uint64", "max_int64", "and_bool", "cast_f32_f64", "cast_f32_f16",
                 "cast_f16_f32", "cast_bf16_f32", "split", "topk"):
        test(lambda: binary_roundtrip(name), "binary_roundtrip_" + name)
    # an odd-length JSON header leaves the tensor bytes unaligned: they are copied, not wrapped
    for pad in (1, 2, 3):
        test(lambda: binary_roundtrip("add", pad), "binary_unaligned_pad%d" % pad)
        test(lambda: binary_roundtrip("max_int64", pad), "binary_unaligned_int64_pad%d" % pad)


X = [float(i) - 30 for i in range(60)]
Y = [float(i % 7) for i in range(60)]
F32 = lambda v: struct.pack("<%df" % len(v), *v)  # noqa: E731
SUM = [x + y for x, y in zip(X, Y)]


def add_header(xs=None, ys=None, **extra):
    xs = {"binary_data_size": 240} if xs is None else xs
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4, 5], "parameters": xs},
                       {"name": "y", "datatype": "FP32", "shape": [3, 4, 5],
                        "data": Y} if ys is None else ys]}
    body.update(extra)
    return body


def binary_mixed_json_and_binary_inputs():
    st, reply, raw, r = binary_request("/v2/models/add/infer", add_header(), [F32(X)])
    assert st == 200, reply
    assert r.getheader("Inference-Header-Content-Length") is None, r.getheaders()
    assert raw == {} and close(reply["outputs"][0]["data"], SUM), reply


def binary_output_from_json_request():
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4, 5], "data": X},
                       {"name": "y", "datatype": "FP32", "shape": [3, 4, 5], "data": Y}],
            "parameters": {"binary_data_output": True}}
    st, reply, raw, r = binary_request("/v2/models/add/infer", body, [], hdr=None)
    assert st == 200, reply
    assert close(unpack("FP32", raw["sum"]), SUM), raw
    # without the request header at all: plain JSON request, binary reply
    c = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=60)
    c.request("POST", "/v2/models/add/infer", body=json.dumps(body))
    r = c.getresponse()
    data = r.read()
    n = int(r.getheader("Inference-Header-Content-Length"))
    js = json.loads(data[:n])
    assert js["outputs"][0]["parameters"]["binary_data_size"] == 240, js
    assert close(unpack("FP32", data[n:]), SUM)


def binary_output_per_output_overrides():
    body = add_header(parameters={"binary_data_output": True},
                      outputs=[{"name": "sum", "parameters": {"binary_data": False}}])
    st, reply, raw, r = binary_request("/v2/models/add/infer", body, [F32(X)])
    assert st == 200 and raw == {} and close(reply["outputs"][0]["data"], SUM), reply
    # split: one output binary, the other JSON
    ins, outs = case_io("split")
    body = {"inputs": [{"name": ins[0][0], "datatype": "FP32", "shape": ins[0][2],
                        "parameters": {"binary_data_size": len(ins[0][3])}}],
            "outputs": [{"name": outs[0][0], "parameters": {"binary_data": True}},
                        {"name": outs[1][0]}]}
    st, reply, raw, r = binary_request("/v2/models/split/infer", body, [ins[0][3]])
    assert st == 200, reply
    assert list(raw) == [outs[0][0]], raw
    assert close(unpack("FP32", raw[outs[0][0]]), unpack("FP32", outs[0][3])), raw
    assert close(reply["outputs"][1]["data"], unpack("FP32", outs[1][3])), reply


def binary_large_tensor():
    n = 1 << 18  # 1 MiB of FP32 through relu, both ways binary
    xs = [float((i % 13) - 6) for i in range(n)]
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4, 5],
                        "parameters": {"binary_data_size": 240}}]}
    st, reply, raw, _ = binary_request("/v2/models/relu/infer", dict(
        body, parameters={"binary_data_output": True}), [F32(xs[:60])])
    assert st == 200 and close(unpack("FP32", raw["y"]), [max(v, 0.0) for v in xs[:60]]), reply
    img = [float(i % 17) for i in range(64 * 64)]
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [64, 1, 8, 8],
                        "parameters": {"binary_data_size": 4 * 64 * 64}}],
            "parameters": {"binary_data_output": True}}
    st, reply, raw, _ = binary_request("/v2/models/digits/infer", body, [F32(img)])
    assert st == 200, reply
    assert reply["outputs"][0]["shape"] == [64, 10] and len(raw["probabilities"]) == 64 * 40, reply
    st, js, _ = request("POST", "/v2/models/digits/infer", {"inputs": [
        {"name": "image", "datatype": "FP32", "shape": [64, 1, 8, 8], "data": img}]})
    assert st == 200 and close(unpack("FP32", raw["probabilities"]), js["outputs"][0]["data"],
                               1e-5), js


def binary_errors():
    x = F32(X)
    cases = [
        ("header_larger_than_body", add_header(), [x], {"hdr": "999999"}, ["larger than"]),
        ("header_not_a_number", add_header(), [x], {"hdr": "abc"}, ["Inference-Header"]),
        ("header_negative", add_header(), [x], {"hdr": "-5"}, ["Inference-Header"]),
        ("header_zero", add_header(), [x], {"hdr": "0"}, ["Inference-Header"]),
        ("header_overflowing", add_header(), [x], {"hdr": "99999999999999999999999"},
         ["Inference-Header"]),
        ("header_cuts_json", add_header(), [x], {"hdr": "20"}, ["invalid JSON"]),
        ("size_not_shape", add_header({"binary_data_size": 236}), [x[:236]], {}, ["need 240"]),
        ("size_too_big_for_shape", add_header({"binary_data_size": 244}), [x + b"\0" * 4], {},
         ["need 240"]),
        ("sum_short_of_section", add_header(), [x + b"\0\0\0\0"], {}, ["add up to"]),
        ("size_past_end", add_header(), [x[:200]], {}, ["past the end"]),
        ("size_negative", add_header({"binary_data_size": -240}), [x], {}, ["non-negative"]),
        ("size_not_integer", add_header({"binary_data_size": "240"}), [x], {}, ["integer"]),
        ("size_float", add_header({"binary_data_size": 240.0}), [x], {}, ["integer"]),
        ("size_huge", add_header({"binary_data_size": 1 << 62}), [x], {}, ["need 240"]),
        ("size_overflowing_json", add_header({"binary_data_size": 1 << 70}), [x], {}, ["JSON"]),
        ("data_and_size", add_header({"binary_data_size": 240}, {
            "name": "y", "datatype": "FP32", "shape": [3, 4, 5], "data": Y,
            "parameters": {"binary_data_size": 240}}), [x, x], {}, ["both"]),
        ("shape_overflow", {"inputs": [{"name": "x", "datatype": "FP32",
                                        "shape": [1 << 40, 1 << 40, 1 << 40],
                                        "parameters": {"binary_data_size": 240}}]}, [x], {},
         ["overflow"]),
        ("negative_dim", {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, -4, 5],
                                      "parameters": {"binary_data_size": 240}}]}, [x], {},
         ["negative"]),
        ("bytes_for_fp32_input", {"inputs": [
            {"name": "x", "datatype": "BYTES", "shape": [3, 4, 5],
             "parameters": {"binary_data_size": 480}},
            {"name": "y", "datatype": "FP32", "shape": [3, 4, 5], "data": Y}]},
         [(struct.pack("<I", 4) + b"abcd") * 60], {}, ["BYTES", "FP32"]),
        ("bad_output_flag", add_header(parameters={"binary_data_output": "yes"}), [x], {},
         ["binary_data_output"]),
        ("bad_per_output_flag", add_header(outputs=[{"name": "sum",
                                                     "parameters": {"binary_data": 1}}]),
         [x], {}, ["binary_data"]),
    ]
    for name, header, blobs, kw, words in cases:
        def one(header=header, blobs=blobs, kw=kw, words=words):
            st, reply, _, _ = binary_request("/v2/models/add/infer", header, blobs, **kw)
            expect_error(st, reply, 400, words)
        test(one, "binary_error_" + name)

    def size_without_header():
        st, body, _ = request("POST", "/v2/models/add/infer", add_header())
        expect_error(st, body, 400, ["Inference-Header-Content-Length"])

    def bool_not_0_or_1():
        hdr = {"inputs": [{"name": n, "datatype": "BOOL", "shape": [3, 4],
                           "parameters": {"binary_data_size": 12}} for n in ("x", "y")]}
        st, body, _, _ = binary_request("/v2/models/and_bool/infer", hdr,
                                        [b"\x01" * 12, b"\x01" * 11 + b"\x02"])
        expect_error(st, body, 400, ["BOOL"])

    def wrong_dtype_for_model():
        hdr = {"inputs": [{"name": n, "datatype": "FP64", "shape": [3, 4, 5],
                           "parameters": {"binary_data_size": 480}} for n in ("x", "y")]}
        st, body, _, _ = binary_request("/v2/models/add/infer", hdr, [b"\0" * 480] * 2)
        expect_error(st, body, 400, ["FP64"])

    def duplicate_header():
        js = json.dumps(add_header()).encode()
        raw = (b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"Inference-Header-Content-Length: %d\r\nInference-Header-Content-Length: %d\r\n"
               b"Connection: close\r\n\r\n" % (len(js) + 240, len(js), len(js))) + js + x
        s = socket.create_connection(("127.0.0.1", SRV.port), timeout=30)
        s.sendall(raw)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        assert out.startswith(b"HTTP/1.1 400"), out[:200]

    for t in (size_without_header, bool_not_0_or_1, wrong_dtype_for_model, duplicate_header):
        test(t, "binary_error_" + t.__name__)


def server_lists_extension():
    st, body, _ = request("GET", "/v2")
    assert st == 200 and "binary_tensor_data" in body["extensions"], body


# ---- TF Serving ------------------------------------------------------------------------------------

def tfs_digits_row_matches_kserve():
    imgs = [[[[float((i * 7 + j * 3 + k) % 16) for k in range(8)] for j in range(8)]]
            for i in range(3)]
    st, body, _ = request("POST", "/v1/models/digits:predict", {"instances": imgs})
    assert st == 200, body
    p = body["predictions"]
    assert isinstance(p, list) and len(p) == 3 and all(len(r) == 10 for r in p), body
    st, js, _ = request("POST", "/v2/models/digits/infer", {"inputs": [
        {"name": "image", "datatype": "FP32", "shape": [3, 1, 8, 8], "data": imgs}]})
    assert st == 200 and close(flatten(p), js["outputs"][0]["data"]), js
    st, body, _ = request("POST", "/v1/models/digits/versions/1:predict",
                          {"signature_name": "serving_default", "instances": imgs[:1]})
    assert st == 200 and len(body["predictions"]) == 1 and close(body["predictions"][0], p[0]), body


def tfs_row_single_input():
    xs = nest(X, [3, 4, 5])
    st, body, _ = request("POST", "/v1/models/relu:predict", {"instances": xs})
    assert st == 200, body
    assert body == {"predictions": nest([max(v, 0.0) for v in X], [3, 4, 5])}, body
    st, body, _ = request("POST", "/v1/models/relu:predict", {"instances": [{"x": r} for r in xs]})
    assert st == 200 and body["predictions"] == nest([max(v, 0.0) for v in X], [3, 4, 5]), body


def tfs_columnar_single_input():
    want = nest([max(v, 0.0) for v in X], [3, 4, 5])
    st, body, _ = request("POST", "/v1/models/relu:predict", {"inputs": nest(X, [3, 4, 5])})
    assert st == 200 and body == {"outputs": want}, body
    st, body, _ = request("POST", "/v1/models/relu/versions/2:predict",
                          {"inputs": {"x": nest(X, [3, 4, 5])}})
    assert st == 200 and body == {"outputs": want}, body


def tfs_row_multi_input():
    xs, ys = nest(X, [3, 4, 5]), nest(Y, [3, 4, 5])
    st, body, _ = request("POST", "/v1/models/add:predict",
                          {"instances": [{"x": a, "y": b} for a, b in zip(xs, ys)]})
    assert st == 200 and body == {"predictions": nest(SUM, [3, 4, 5])}, body


def tfs_columnar_multi_input_and_output():
    st, body, _ = request("POST", "/v1/models/add:predict",
                          {"inputs": {"x": nest(X, [3, 4, 5]), "y": nest(Y, [3, 4, 5])}})
    assert st == 200 and body == {"outputs": nest(SUM, [3, 4, 5])}, body
    ins, outs = case_io("topk")
    x = nest(unpack("FP32", ins[0][3]), ins[0][2])
    k = unpack("INT64", ins[1][3])
    st, body, _ = request("POST", "/v1/models/topk:predict", {"inputs": {"x": x, "k": k}})
    assert st == 200, body
    o = body["outputs"]
    assert set(o) == {"values", "indices"}, body
    assert close(flatten(o["values"]), unpack("FP32", outs[0][3])), body
    assert flatten(o["indices"]) == unpack("INT64", outs[1][3]), body
    assert all(isinstance(v, int) for v in flatten(o["indices"])), body


def tfs_row_multi_output():
    ins, outs = case_io("split")
    rows = nest(unpack("FP32", ins[0][3]), ins[0][2])
    st, body, _ = request("POST", "/v1/models/split:predict", {"instances": rows})
    assert st == 200, body
    p = body["predictions"]
    a = nest(unpack("FP32", outs[0][3]), outs[0][2])
    b = nest(unpack("FP32", outs[1][3]), outs[1][2])
    assert p == [{outs[0][0]: a[i], outs[1][0]: b[i]} for i in range(2)], body
    st, body, _ = request("POST", "/v1/models/split:predict", {"inputs": rows})
    assert st == 200 and body == {"outputs": {outs[0][0]: a, outs[1][0]: b}}, body


def tfs_bool_and_ints():
    xs = [[bool((i + j) % 2) for j in range(4)] for i in range(3)]
    ys = [[bool(i % 2 or j == 1) for j in range(4)] for i in range(3)]
    st, body, _ = request("POST", "/v1/models/and_bool:predict", {"inputs": {"x": xs, "y": ys}})
    assert st == 200, body
    assert body["outputs"] == [[a and b for a, b in zip(r, q)] for r, q in zip(xs, ys)], body
    xi = [[[(i * 5 + j) % 100 for j in range(5)] for _ in range(4)] for i in range(3)]
    st, body, _ = request("POST", "/v1/models/add_uint8:predict", {"inputs": {"x": xi, "y": xi}})
    assert st == 200, body
    assert body["outputs"] == [[[2 * v for v in r] for r in m] for m in xi], body
    st, body, _ = request("POST", "/v1/models/add_int8:predict",
                          {"inputs": {"x": xi, "y": [[[300] * 5] * 4] * 3}})
    expect_error(st, body, 400, ["out of range"])


def tfs_status():
    st, body, _ = request("GET", "/v1/models/relu")
    assert st == 200, body
    vs = body["model_version_status"]
    assert sorted(v["version"] for v in vs) == ["2"], body  # latest 1 by default
    for v in vs:
        assert v["state"] == "AVAILABLE", v
        assert v["status"] == {"error_code": "OK", "error_message": ""}, v
    st, body, _ = request("GET", "/v1/models/relu/versions/2")
    assert st == 200 and [v["version"] for v in body["model_version_status"]] == ["2"], body
    st, body, _ = request("GET", "/v1/models/relu/versions/7")
    expect_error(st, body, 404, ["version 7"])
    st, body, _ = request("GET", "/v1/models/broken")
    assert st == 200, body
    v = body["model_version_status"][0]
    assert v["version"] == "1" and v["state"] == "END", body
    assert v["status"]["error_code"] != "OK" and v["status"]["error_message"], body
    st, body, _ = request("GET", "/v1/models/nosuchmodel")
    expect_error(st, body, 404, ["nosuchmodel"])


def tfs_metadata():
    st, body, _ = request("GET", "/v1/models/add/metadata")
    assert st == 200, body
    assert body["model_spec"] == {"name": "add", "signature_name": "", "version": "1"}, body
    sd = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sd["method_name"] == "tensorflow/serving/predict", sd
    x = sd["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT" and x["name"] == "x", x
    assert x["tensor_shape"] == {"dim": [{"size": "3", "name": ""}, {"size": "4", "name": ""},
                                         {"size": "5", "name": ""}], "unknown_rank": False}, x
    assert set(sd["outputs"]) == {"sum"}, sd
    st, body, _ = request("GET", "/v1/models/digits/versions/1/metadata")
    assert st == 200, body
    sd = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sd["inputs"]["image"]["tensor_shape"]["dim"][0]["size"] == "-1", sd
    st, body, _ = request("GET", "/v1/models/topk/metadata")
    sd = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sd["inputs"]["k"]["dtype"] == "DT_INT64" and sd["outputs"]["indices"]["dtype"] == \
        "DT_INT64", sd
    st, body, _ = request("GET", "/v1/models/cast_f32_f16/metadata")
    sd = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(sd["outputs"].values())[0]["dtype"] == "DT_HALF", sd
    st, body, _ = request("GET", "/v1/models/relu/versions/9/metadata")
    expect_error(st, body, 404, [])
    st, body, _ = request("GET", "/v1/models/broken/metadata")
    assert st in (404, 503) and "error" in body, body


def tfs_errors():
    xs = nest(X, [3, 4, 5])
    cases = [
        ("both_keys", "relu", {"instances": xs, "inputs": xs}, 400, ["exactly one"]),
        ("no_keys", "relu", {"signature_name": "serving_default"}, 400, ["exactly one"]),
        ("unknown_field", "relu", {"instances": xs, "foo": 1}, 400, ["foo"]),
        ("bad_signature", "relu", {"signature_name": "predict_images", "instances": xs}, 400,
         ["signature"]),
        ("instances_not_list", "relu", {"instances": 3}, 400, ["instances"]),
        ("instances_empty", "relu", {"instances": []}, 400, ["instances"]),
        ("ragged", "relu", {"inputs": [[[1.0] * 5] * 4, [[1.0] * 5] * 4, [[1.0] * 4] * 4]}, 400,
         ["ragged"]),
        ("ragged_depth", "relu", {"inputs": [[[1.0] * 5] * 4, [[1.0] * 5] * 4,
                                             [[[1.0]] * 5] * 4]}, 400, ["ragged"]),
        ("instances_differ", "relu", {"instances": [[[1.0] * 5] * 4, [[1.0] * 5] * 3]}, 400,
         ["instance 1"]),
        ("wrong_shape", "relu", {"inputs": [[1.0, 2.0]]}, 400, ["shape"]),
        ("string_value", "relu", {"inputs": [[["a"] * 5] * 4] * 3}, 400, ["not a number"]),
        ("b64", "relu", {"inputs": {"b64": "AAAA"}}, 400, ["b64"]),
        ("null_value", "relu", {"inputs": None}, 400, ["expected"]),
        ("multi_input_needs_names", "add", {"instances": xs}, 400, ["keyed by input name"]),
        ("columnar_needs_names", "add", {"inputs": xs}, 400, ["keyed by input name"]),
        ("missing_input", "add", {"instances": [{"x": r} for r in xs]}, 400, ["'y' is missing"]),
        ("unknown_input", "add", {"inputs": {"x": xs, "y": xs, "z": xs}}, 400, ["'z'"]),
        ("mixed_instances", "add", {"instances": [{"x": xs[0], "y": xs[0]}, xs[1]]}, 400,
         ["instance 1"]),
        ("unknown_model", "nosuchmodel", {"instances": xs}, 404, ["nosuchmodel"]),
    ]
    for name, model, body, code, words in cases:
        def one(model=model, body=body, code=code, words=words):
            st, reply, _ = request("POST", "/v1/models/%s:predict" % model, body)
            expect_error(st, reply, code, words)
        test(one, "tfs_error_" + name)

    def invalid_json():
        st, body, _ = request("POST", "/v1/models/relu:predict", "{nope")
        expect_error(st, body, 400, ["JSON"])

    def empty_body():
        st, body, _ = request("POST", "/v1/models/relu:predict", "")
        expect_error(st, body, 400, ["empty"])

    def unknown_version():
        st, body, _ = request("POST", "/v1/models/relu/versions/9:predict", {"instances": xs})
        expect_error(st, body, 404, ["version 9"])

    def unknown_label():
        st, body, _ = request("POST", "/v1/models/relu/labels/stable:predict", {"instances": xs})
        expect_error(st, body, 404, ["label 'stable'"])
        st, body, _ = request("GET", "/v1/models/relu/labels/stable")
        expect_error(st, body, 404, ["stable"])
        st, body, _ = request("GET", "/v1/models/relu/labels/a.b")
        expect_error(st, body, 400, ["label"])

    def other_verbs():
        st, body, _ = request("POST", "/v1/models/relu:classify", {"examples": []})
        expect_error(st, body, 400, [":predict"])
        st, body, _ = request("GET", "/v1/models/relu:predict")
        expect_error(st, body, 405, [])
        st, body, _ = request("POST", "/v1/models/relu", {"instances": xs})
        expect_error(st, body, 405, [])

    def bad_paths():
        for path, code in (("/v1/models", 404), ("/v1/models/relu/versions", 404),
                           ("/v1/models/relu/versions/x", 400), ("/v1/models/re%20lu", 400),
                           ("/v1/models/relu/versions/1/metadata/x", 404), ("/v1/foo", 404),
                           ("/v1/models/.hidden", 400), ("/v1/models/relu/versions/0", 400)):
            st, body, _ = request("GET", path)
            expect_error(st, body, code, [])

    def row_scalar_output_refused():
        # Size's output is a scalar: the row format needs one prediction per instance (dim 0)
        st, body, _ = request("POST", "/v1/models/size:predict", {"instances": [[1.0] * 3] * 2})
        expect_error(st, body, 400, ["columnar"])
        st, body, _ = request("POST", "/v1/models/size:predict", {"inputs": [[1.0] * 3] * 2})
        assert st == 200 and body == {"outputs": 6}, body

    for t in (invalid_json, empty_body, unknown_version, unknown_label, other_verbs, bad_paths,
              row_scalar_output_refused):
        test(t, "tfs_error_" + t.__name__)


# ---- BYTES (KServe) and DT_STRING (TF Serving) ------------------------------------------------------

STRS = ["plain", "h\u00e9llo w\u00f6rld \u2713", "emoji \U0001F600", "", "q\" b\\ /\n\t\r\x01\x7f",
        "nul\x00inside"]


def pack_bytes(items):
    """BYTES binary form: each element as a 4-byte little-endian length and its bytes"""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def unpack_bytes(raw):
    out, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack("<I", raw[at:at + 4])
        out.append(raw[at + 4:at + 4 + n])
        at += 4 + n
    assert at == len(raw), "BYTES binary form runs past its size"
    return out


def bytes_metadata():
    st, body, _ = request("GET", "/v2/models/str_identity")
    assert st == 200, body
    assert body["inputs"] == [{"name": "x", "datatype": "BYTES", "shape": [-1, -1]}], body
    assert [o["datatype"] for o in body["outputs"]] == ["BYTES", "BYTES"], body
    st, body, _ = request("GET", "/v2/models/str_equal")
    assert st == 200 and body["outputs"][0]["datatype"] == "BOOL", body
    st, body, _ = request("GET", "/v1/models/str_mix/metadata")
    assert st == 200, body
    sd = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sd["inputs"]["s"]["dtype"] == "DT_STRING" and sd["inputs"]["f"]["dtype"] == "DT_FLOAT", sd
    assert sd["outputs"]["s_out"]["dtype"] == "DT_STRING", sd


def bytes_json_roundtrip():
    # ASCII-escaped (\uXXXX, surrogate pairs for the emoji, \u0000) and raw UTF-8 requests
    for ascii_only in (True, False):
        body = json.dumps({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [2, 3],
                                       "data": [STRS[:3], STRS[3:]]}],
                           "outputs": [{"name": "y"}]}, ensure_ascii=ascii_only)
        st, reply, _ = request("POST", "/v2/models/str_identity/infer", body.encode("utf-8"))
        assert st == 200, reply
        o = reply["outputs"]
        assert len(o) == 1 and o[0]["name"] == "y" and o[0]["datatype"] == "BYTES", reply
        assert o[0]["shape"] == [2, 3] and o[0]["data"] == STRS, reply


def bytes_json_flat_and_empty():
    st, reply, _ = request("POST", "/v2/models/str_identity/infer", {"inputs": [
        {"name": "x", "datatype": "BYTES", "shape": [3, 1], "data": ["", "", ""]}]})
    assert st == 200, reply
    assert [o["data"] for o in reply["outputs"]] == [["", "", ""]] * 2, reply
    st, reply, _ = request("POST", "/v2/models/str_identity/infer", {"inputs": [
        {"name": "x", "datatype": "BYTES", "shape": [0, 2], "data": []}]})
    assert st == 200 and reply["outputs"][0]["shape"] == [0, 2], reply
    assert reply["outputs"][0]["data"] == [], reply


def bytes_binary_in_and_out():
    items = [b"\xff\xfe binary", b"", b"nul\x00\x00", "caf\u00e9".encode(), b"\x80"]
    blob = pack_bytes(items)
    header = {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [5, 1],
                          "parameters": {"binary_data_size": len(blob)}}],
              "outputs": [{"name": "y", "parameters": {"binary_data": True}},
                          {"name": "y_bytes", "parameters": {"binary_data": True}}]}
    for pad in (0, 1, 3):  # unaligned length prefixes too
        st, reply, raw, r = binary_request("/v2/models/str_identity/infer", header, [blob], pad)
        assert st == 200, reply
        for o in reply["outputs"]:
            assert o["datatype"] == "BYTES" and o["shape"] == [5, 1], o
            assert o["parameters"]["binary_data_size"] == len(blob), o
            assert unpack_bytes(raw[o["name"]]) == items, raw


def bytes_binary_in_json_out():
    items = ["a", "\u00e9t\u00e9", "", "x\x00y"]
    blob = pack_bytes([i.encode() for i in items])
    header = {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [2, 2],
                          "parameters": {"binary_data_size": len(blob)}}]}
    st, reply, raw, r = binary_request("/v2/models/str_identity/infer", header, [blob])
    assert st == 200 and raw == {}, reply
    assert all(o["data"] == items for o in reply["outputs"]), reply
    # JSON in, binary out
    st, reply, raw, r = binary_request("/v2/models/str_identity/infer", {
        "inputs": [{"name": "x", "datatype": "BYTES", "shape": [2, 2], "data": items}],
        "parameters": {"binary_data_output": True}}, [])
    assert st == 200 and unpack_bytes(raw["y"]) == [i.encode() for i in items], reply


def bytes_non_utf8_needs_binary_output():
    blob = pack_bytes([b"ok", b"\xc3\x28"])
    header = {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1, 2],
                          "parameters": {"binary_data_size": len(blob)}}],
              "outputs": [{"name": "y"}]}
    st, reply, _, _ = binary_request("/v2/models/str_identity/infer", header, [blob])
    expect_error(st, reply, 400, ["output 'y' element 1", "UTF-8", "binary_data"])
    header["outputs"] = [{"name": "y", "parameters": {"binary_data": True}}]
    st, reply, raw, _ = binary_request("/v2/models/str_identity/infer", header, [blob])
    assert st == 200 and unpack_bytes(raw["y"]) == [b"ok", b"\xc3\x28"], reply


def bytes_equal_gives_bool():
    st, reply, _ = request("POST", "/v2/models/str_equal/infer", {"inputs": [
        {"name": "x", "datatype": "BYTES", "shape": [4], "data": ["cat", "dog", "", "cat"]}]})
    assert st == 200, reply
    assert reply["outputs"][0]["datatype"] == "BOOL", reply
    assert reply["outputs"][0]["data"] == [True, False, False, True], reply


def bytes_label_encoder():
    st, reply, _ = request("POST", "/v2/models/str_label/infer", {"inputs": [
        {"name": "x", "datatype": "BYTES", "shape": [4], "data": ["dog", "cat", "bird", "dog"]}]})
    assert st == 200, reply
    assert reply["outputs"][0]["data"] == [2, 1, 99, 2], reply
    blob = pack_bytes([b"\xff\xfebin", b"cat"])
    st, reply, _, _ = binary_request("/v2/models/str_label/infer", {"inputs": [
        {"name": "x", "datatype": "BYTES", "shape": [2],
         "parameters": {"binary_data_size": len(blob)}}]}, [blob])
    assert st == 200 and reply["outputs"][0]["data"] == [3, 1], reply


def bytes_mixed_inputs():
    st, reply, _ = request("POST", "/v2/models/str_mix/infer", {"inputs": [
        {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]},
        {"name": "f", "datatype": "FP32", "shape": [2], "data": [1.5, -2]}]})
    assert st == 200, reply
    assert {o["name"]: o["data"] for o in reply["outputs"]} == {"s_out": ["a", "b"],
                                                                "f_out": [1.5, -2.0]}, reply


def bytes_errors():
    def ident(data, shape, dtype="BYTES"):
        return {"inputs": [{"name": "x", "datatype": dtype, "shape": shape, "data": data}]}

    json_cases = [
        ("number_for_bytes", "str_identity", ident([["a", 5]], [1, 2]), ["element 1", "string"]),
        ("bool_for_bytes", "str_identity", ident([[True]], [1, 1]), ["element 0", "string"]),
        ("nested_object", "str_identity", ident([[{"b64": "AA=="}]], [1, 1]), ["string"]),
        ("wrong_count", "str_identity", ident(["a", "b", "c"], [2, 2]), ["3 elements", "4"]),
        ("too_many", "str_identity", ident(["a", "b", "c"], [1, 2]), ["more than the 2"]),
        ("ragged", "str_identity", ident([["a", "b"], ["c"]], [2, 2]), ["ragged"]),
        ("fp32_for_bytes_input", "str_identity", ident([[1.0]], [1, 1], "FP32"),
         ["FP32", "BYTES"]),
        ("string_for_fp32", "str_mix", {"inputs": [
            {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["a"]},
            {"name": "f", "datatype": "FP32", "shape": [1], "data": ["abc"]}]},
         ["input 'f'", "not a number"]),
        ("bytes_for_fp32", "str_mix", {"inputs": [
            {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["a"]},
            {"name": "f", "datatype": "BYTES", "shape": [1], "data": ["1"]}]},
         ["input 'f'", "BYTES", "FP32"]),
        ("wrong_rank", "str_identity", ident(["a"], [1]), ["shape"]),
    ]
    for name, model, body, words in json_cases:
        def one(model=model, body=body, words=words):
            st, reply, _ = request("POST", "/v2/models/%s/infer" % model, body)
            expect_error(st, reply, 400, words)
        test(one, "bytes_error_" + name)

    def lone_surrogate():
        body = ('{"inputs":[{"name":"x","datatype":"BYTES","shape":[1,1],'
                '"data":["\\ud800"]}]}')
        st, reply, _ = request("POST", "/v2/models/str_identity/infer", body)
        expect_error(st, reply, 400, ["surrogate"])
    test(lone_surrogate, "bytes_error_lone_surrogate")

    def hdr(size, shape=(1, 2)):
        return {"inputs": [{"name": "x", "datatype": "BYTES", "shape": list(shape),
                            "parameters": {"binary_data_size": size}}]}
    good = pack_bytes([b"ab", b"c"])  # 11 bytes
    bin_cases = [
        ("truncated_length_prefix", hdr(8), [struct.pack("<I", 2) + b"ab" + b"\x01\x00"],
         ["input 'x'", "element 1", "cut off"]),
        ("length_past_end", hdr(12), [struct.pack("<I", 2) + b"ab" + struct.pack("<I", 9) +
                                      b"abcd"], ["input 'x'", "element 1", "past the end"]),
        ("size_larger_than_elements", hdr(13), [good + b"zz"], ["input 'x'", "take 11"]),
        ("size_smaller_than_elements", hdr(10), [good[:10]], ["input 'x'", "element 1"]),
        ("size_past_section", hdr(40), [good], ["input 'x'", "past the end"]),
        ("size_below_4_per_element", hdr(4, (2, 2)), [b"\0" * 4], ["input 'x'", "at least 16"]),
        ("section_longer_than_sizes", hdr(11), [good + b"\0"], ["add up to"]),
        ("size_negative", hdr(-11), [good], ["non-negative"]),
    ]
    for name, header, blobs, words in bin_cases:
        def one(header=header, blobs=blobs, words=words):
            st, reply, _, _ = binary_request("/v2/models/str_identity/infer", header, blobs)
            expect_error(st, reply, 400, words)
        test(one, "bytes_binary_error_" + name)

    def batching_strings():
        # a string model with dynamic batching: 8 clients at once, each must get its own strings
        # back (the batcher copies string elements into the batch and out of it), and the
        # version must have run fewer batches than requests
        import concurrent.futures
        _, before, _ = request("POST", "/v2/repository/index")
        ex0 = [m for m in before if m["name"] == "str_batched"][0]["execution_count"]

        def one(i):
            data = [["c%d-%d" % (i, k), "\u00e9\0" * k] for k in range(1 + i % 3)]
            body = {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [len(data), 2],
                                "data": data}]}
            c = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=30)
            c.request("POST", "/v2/models/str_batched/infer", body=json.dumps(body))
            r = c.getresponse()
            reply = json.loads(r.read())
            c.close()
            assert r.status == 200, reply
            outs = {o["name"]: o for o in reply["outputs"]}
            flat = [e for row in data for e in row]
            assert outs["y"]["data"] == flat and outs["y"]["shape"] == [len(data), 2], reply
            return True
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                assert all(pool.map(one, range(8)))
        _, after, _ = request("POST", "/v2/repository/index")
        m = [m for m in after if m["name"] == "str_batched"][0]
        assert m["execution_count"] - ex0 < 24, m
    test(batching_strings, "bytes_dynamic_batching_keeps_each_requests_strings")


def bytes_request_cap():
    # --max-tensor-bytes 4096 on a second server: each element costs its bytes and 16
    with tempfile.TemporaryDirectory(prefix="inferd-proto-cap-") as work:
        repo = os.path.join(work, "models")
        os.makedirs(os.path.join(repo, "str_identity", "1"))
        with open(os.path.join(repo, "str_identity", "1", "model.onnx"), "wb") as f:
            f.write(string_models()["str_identity"][0])
        srv = Server(repo, ["--max-tensor-bytes", "4096"])
        try:
            def post(body, headers=None):
                c = srv.conn()
                c.request("POST", "/v2/models/str_identity/infer", body=body, headers=headers or {})
                r = c.getresponse()
                data = r.read()
                c.close()
                return r.status, json.loads(data)
            ok = json.dumps({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1, 2],
                                         "data": ["a" * 2000, "b" * 2000]}]})
            st, body = post(ok)
            assert st == 200, body
            big = json.dumps({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1, 2],
                                          "data": ["a" * 2000, "b" * 2100]}]})
            st, body = post(big)
            expect_error(st, body, 413, ["input 'x'"])
            blob = pack_bytes([b"\0" * 3000, b"\0" * 1100])
            js = json.dumps({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [2, 1],
                                         "parameters": {"binary_data_size": len(blob)}}]}).encode()
            st, body = post(js + blob, {"Inference-Header-Content-Length": str(len(js))})
            expect_error(st, body, 413, ["input 'x'"])
        finally:
            srv.stop()


def tfs_strings_row_and_columnar():
    rows = [["a", "h\u00e9"], ["", "x\x00y"]]
    # columnar: y as strings, y_bytes as {"b64": ...} (TF Serving's "_bytes" rule)
    st, body, _ = request("POST", "/v1/models/str_identity:predict", {"inputs": rows})
    assert st == 200, body
    b64 = lambda s: {"b64": base64.b64encode(s.encode()).decode()}  # noqa: E731
    assert body == {"outputs": {"y": rows, "y_bytes": [[b64(v) for v in r] for r in rows]}}, body
    # row: one prediction per instance, an object of both outputs
    st, body, _ = request("POST", "/v1/models/str_identity:predict", {"instances": rows})
    assert st == 200, body
    assert body == {"predictions": [{"y": r, "y_bytes": [b64(v) for v in r]} for r in rows]}, body
    st, body, _ = request("POST", "/v1/models/str_identity:predict",
                          {"instances": [{"x": r} for r in rows]})
    assert st == 200 and len(body["predictions"]) == 2, body


def tfs_strings_b64_inputs():
    raw = [b"\xff\x00\x01", b"plain", b""]
    enc = [{"b64": base64.b64encode(v).decode()} for v in raw]
    st, body, _ = request("POST", "/v1/models/str_identity:predict", {"inputs": [enc]})
    assert st == 200, body
    y = body["outputs"]["y"][0]
    # a non-UTF-8 element cannot be a JSON string: it comes back as {"b64": ...} even in y
    assert y[0] == enc[0] and y[1:] == ["plain", ""], body
    assert body["outputs"]["y_bytes"] == [enc], body
    # unpadded base64 is taken too (as TF Serving's decoder takes it)
    st, body, _ = request("POST", "/v1/models/str_label:predict",
                          {"instances": [{"b64": "//5iaW4"}, "cat", {"b64": "ZG9n"}]})
    assert st == 200 and body == {"predictions": [3, 1, 2]}, body


def tfs_strings_mixed_row():
    st, body, _ = request("POST", "/v1/models/str_mix:predict",
                          {"instances": [{"s": "a", "f": 1.0}, {"s": {"b64": "Yg=="}, "f": 2.5}]})
    assert st == 200, body
    assert body == {"predictions": [{"s_out": "a", "f_out": 1.0},
                                    {"s_out": "b", "f_out": 2.5}]}, body
    st, body, _ = request("POST", "/v1/models/str_equal:predict", {"inputs": ["cat", "dog"]})
    assert st == 200 and body == {"outputs": [True, False]}, body


def tfs_string_errors():
    cases = [
        ("number_for_string", "str_equal", {"inputs": ["cat", 5]}, ["element 1", "DT_STRING"]),
        ("null_for_string", "str_equal", {"inputs": ["cat", None]}, ["element 1"]),
        ("bad_base64", "str_equal", {"inputs": [{"b64": "@@@@"}]}, ["base64"]),
        ("bad_base64_padding", "str_equal", {"inputs": [{"b64": "YQ="}]}, ["base64"]),
        ("b64_extra_key", "str_equal", {"inputs": [{"b64": "YQ==", "x": 1}]}, ["input 'x'"]),
        ("b64_for_float", "str_mix", {"inputs": {"s": ["a"], "f": [{"b64": "AAAA"}]}},
         ["input 'f'"]),
        ("b64_top_level_for_float", "relu", {"inputs": {"b64": "AAAA"}}, ["b64"]),
        ("string_for_float", "str_mix", {"inputs": {"s": ["a"], "f": ["1.0"]}},
         ["input 'f'", "not a number"]),
        ("ragged_strings", "str_identity", {"inputs": [["a", "b"], ["c"]]}, ["ragged"]),
    ]
    for name, model, body, words in cases:
        def one(model=model, body=body, words=words):
            st, reply, _ = request("POST", "/v1/models/%s:predict" % model, body)
            expect_error(st, reply, 400, words)
        test(one, "tfs_string_error_" + name)


def still_serving():
    st, _, _ = request("GET", "/v2/health/ready")
    assert st == 200
    tfs_row_single_input()


def main():
    global SRV
    work = tempfile.mkdtemp(prefix="inferd-proto-test-")
    repo = os.path.join(work, "models")
    os.makedirs(repo)
    try:
        build_repo(repo)
        SRV = Server(repo)
        try:
            test(server_lists_extension)
            binary_dtype_tests()
            for t in (binary_mixed_json_and_binary_inputs, binary_output_from_json_request,
                      binary_output_per_output_overrides, binary_large_tensor):
                test(t)
            binary_errors()
            for t in (tfs_digits_row_matches_kserve, tfs_row_single_input,
                      tfs_columnar_single_input, tfs_row_multi_input,
                      tfs_columnar_multi_input_and_output, tfs_row_multi_output,
                      tfs_bool_and_ints, tfs_status, tfs_metadata):
                test(t)
            tfs_errors()
            for t in (bytes_metadata, bytes_json_roundtrip, bytes_json_flat_and_empty,
                      bytes_binary_in_and_out, bytes_binary_in_json_out,
                      bytes_non_utf8_needs_binary_output, bytes_equal_gives_bool,
                      bytes_label_encoder, bytes_mixed_inputs, bytes_request_cap,
                      tfs_strings_row_and_columnar, tfs_strings_b64_inputs,
                      tfs_strings_mixed_row):
                test(t)
            bytes_errors()
            tfs_string_errors()
            test(still_serving)
        finally:
            stop_checked(SRV)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
