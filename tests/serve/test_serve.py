#!/usr/bin/python3
"""Black-box tests of `inferd serve` over real sockets (KServe v2 REST, RELIABILITY.md items
1-3, 5, 7-13, 20, 25, 27, 28). Python standard library only.

    tests/serve/test_serve.py BUILD/inferd ONNX_TESTS_ROOT

Builds a model repository in a temporary folder from the ONNX conformance models, starts the
server on a free port, and prints "PASS name" / "FAIL name: why", then "N passed, M failed".
"""
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
import time

ONNX = os.path.abspath(sys.argv[2])
NODE = os.path.join(ONNX, "node")

from harness import tensorproto_fields, BIN, SLOW, START_TIMEOUT, Server, finish, free_port, report, test, stop_checked  # noqa: E402,F401



# ---- a minimal onnx.TensorProto reader (the conformance data), standard library only ------------

def read_tensorproto(path):
    """(onnx data type, dims, flat list of Python values)"""
    dtype, dims, raw, ints, floats, doubles = tensorproto_fields(path)
    fmt = {1: "f", 2: "B", 3: "b", 4: "H", 5: "h", 6: "i", 7: "q", 9: "?", 10: "e", 11: "d",
           12: "I", 13: "Q", 16: "H"}[dtype]
    count = 1
    for d in dims:
        count *= d
    if raw is not None:
        vals = list(struct.unpack("<%d%s" % (count, fmt), raw))
    elif dtype == 1:
        vals = floats
    elif dtype == 11:
        vals = doubles
    else:
        vals = ints
        if dtype in (3, 5, 6, 7):  # sign from two's complement varints
            bits = {3: 8, 5: 16, 6: 32, 7: 64}[dtype]
            vals = [v - (1 << 64) if v >= 1 << 63 else v for v in vals]
            vals = [v - (1 << bits) if v >= 1 << (bits - 1) else v for v in vals]
        if dtype == 9:
            vals = [bool(v) for v in vals]
        if dtype == 10:
            vals = [struct.unpack("<e", struct.pack("<H", v & 0xFFFF))[0] for v in vals]
            fmt = None
    if dtype == 10 and raw is not None:
        vals = [float(v) for v in vals]
    if dtype == 16:
        vals = [struct.unpack("<f", struct.pack("<I", (v & 0xFFFF) << 16))[0] for v in vals]
    return dtype, dims, vals


KSERVE = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
          9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32", 13: "UINT64", 16: "BF16"}


# ---- the server ------------------------------------------------------------------------------------

def request(srv, method, path, body=None, headers=None, conn=None):
    """(status, parsed JSON or raw bytes, response headers)"""
    c = conn or srv.conn()
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data
    return r.status, parsed, r


def raw_exchange(srv, data, timeout=10, read_all=True):
    """Send raw bytes; return what came back until the server closed (or timeout)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; read what it sent
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if not read_all:
                break
        return out
    finally:
        s.close()


def status_of(raw):
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


# ---- the repository ---------------------------------------------------------------------------------

CASES = {  # model name -> conformance case (covers every numeric KServe datatype and BOOL)
    "add": "test_add", "add_int8": "test_add_int8", "add_int16": "test_add_int16",
    "add_uint8": "test_add_uint8", "add_uint16": "test_add_uint16",
    "add_uint32": "test_add_uint32", "add_uint64": "test_add_uint64",
    "max_int64": "test_max_int64", "equal_int32": "test_equal", "and_bool": "test_and2d",
    "cast_f32_f64": "test_cast_FLOAT_to_DOUBLE", "cast_f64_f32": "test_cast_DOUBLE_to_FLOAT",
    "cast_f16_f32": "test_cast_FLOAT16_to_FLOAT", "cast_f32_f16": "test_cast_FLOAT_to_FLOAT16",
    "cast_bf16_f32": "test_cast_BFLOAT16_to_FLOAT", "argmax": "test_argmax_default_axis_example",
}


def build_repo(root):
    def put(name, version, case, config=None):
        d = os.path.join(root, name, str(version))
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(NODE, case, "model.onnx"), os.path.join(d, "model.onnx"))
        if config is not None:
            with open(os.path.join(root, name, "config.json"), "w") as f:
                f.write(config if isinstance(config, str) else json.dumps(config))

    for name, case in CASES.items():
        if os.path.exists(os.path.join(NODE, case, "model.onnx")):
            put(name, 1, case)
    put("relu", 1, "test_relu")
    put("relu", 2, "test_relu")
    put("relu", 3, "test_abs")           # a later version, but only via a specific policy below
    shutil.rmtree(os.path.join(root, "relu", "3"))
    put("relu_all", 1, "test_relu", {"version_policy": {"all": {}}})
    put("relu_all", 2, "test_neg")
    put("relu_v1", 1, "test_relu", {"version_policy": {"specific": {"versions": [1]}},
                                    "instance_count": 2, "max_batch_size": 0})
    put("relu_v1", 2, "test_neg")
    os.makedirs(os.path.join(root, "broken", "1"))
    with open(os.path.join(root, "broken", "1", "model.onnx"), "wb") as f:
        f.write(b"\x08\x07garbage that is not a model")
    put("broken_then_ok", 1, "test_relu")
    os.makedirs(os.path.join(root, "broken_then_ok", "2"))
    with open(os.path.join(root, "broken_then_ok", "2", "model.onnx"), "wb") as f:
        f.write(b"")
    put("badcfg_field", 1, "test_relu", {"max_batch_size": 0, "no_such_field": 1})
    put("badcfg_value", 1, "test_relu", {"instance_count": 0})
    put("badcfg_json", 1, "test_relu", "{not json")
    put("badcfg_batch", 1, "test_relu", {"dynamic_batching": {"preferred_batch_size": [4]}})
    put("batchcfg", 1, "test_relu", {"max_batch_size": 8, "platform": "onnx", "dynamic_batching":
                                     {"preferred_batch_size": [4, 8],
                                      "max_queue_delay_microseconds": 100}})
    put("queue1", 1, "test_relu", {"max_queue_size": 1})
    put("timeout", 1, "test_relu", {"default_timeout_microseconds": 200000})
    os.makedirs(os.path.join(root, "not_a_version", "latest"))  # ignored: no numeric folder


def json_value(v):
    """NaN and infinities as the strings the server reads and writes (JSON has no literal)."""
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, float) and math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, list):
        return [json_value(e) for e in v]
    return v


def infer_body(inputs, **extra):
    body = {"inputs": [{"name": n, "shape": s, "datatype": t, "data": json_value(d)}
                       for n, s, t, d in inputs]}
    body.update(extra)
    return body


X60 = [float(i) - 30 for i in range(60)]


def main():
    work = tempfile.mkdtemp(prefix="inferd-serve-test-")
    repo = os.path.join(work, "models")
    os.makedirs(repo)
    try:
        build_repo(repo)
        srv = Server(repo, ["--read-timeout-secs", "4", "--max-body-bytes", str(4 << 20)])
        try:
            run_main_tests(srv, repo)
        finally:
            stop_checked(srv)
        run_lifecycle_tests(repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()


def run_main_tests(srv, repo):
    def ready_line():
        line = srv.lines[0].strip()
        want = "inferd: serving %d models on http://127.0.0.1:%d/ (dashboard at /, KServe v2 at /v2, metrics at /metrics)"
        n = len(CASES) + 6  # + relu, relu_all, relu_v1, batchcfg, queue1, timeout; others fail
        assert line == want % (n, srv.port), "got %r, want %r" % (line, want % (n, srv.port))

    def health():
        assert request(srv, "GET", "/v2/health/live")[0] == 200
        assert request(srv, "GET", "/v2/health/ready")[0] == 200

    def server_metadata():
        st, body, _ = request(srv, "GET", "/v2")
        assert st == 200 and body["name"] == "inferd" and "version" in body, body
        assert isinstance(body["extensions"], list), body

    def model_metadata():
        st, body, r = request(srv, "GET", "/v2/models/add")
        assert st == 200, (st, body)
        assert r.getheader("Content-Type") == "application/json"
        assert body == {"name": "add", "versions": ["1"], "platform": "onnx",
                        "inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4, 5]},
                                   {"name": "y", "datatype": "FP32", "shape": [3, 4, 5]}],
                        "outputs": [{"name": "sum", "datatype": "FP32", "shape": [3, 4, 5]}]}, body

    def model_metadata_dtypes():
        want = {"add_int8": "INT8", "add_uint64": "UINT64", "and_bool": "BOOL",
                "cast_f16_f32": "FP16", "cast_f64_f32": "FP64", "cast_bf16_f32": "BF16",
                "equal_int32": "INT32", "max_int64": "INT64"}
        for m, t in want.items():
            st, body, _ = request(srv, "GET", "/v2/models/" + m)
            assert st == 200 and body["inputs"][0]["datatype"] == t, (m, st, body)
        st, body, _ = request(srv, "GET", "/v2/models/argmax")
        assert body["outputs"][0]["datatype"] == "INT64", body

    def version_selection():
        # latest policy (default: 1): relu serves version 2 only
        st, body, _ = request(srv, "GET", "/v2/models/relu")
        assert st == 200 and body["versions"] == ["2"], body
        assert request(srv, "GET", "/v2/models/relu/versions/2")[0] == 200
        assert request(srv, "GET", "/v2/models/relu/versions/1")[0] == 404
        assert request(srv, "GET", "/v2/models/relu/versions/7")[0] == 404
        # all: both versions; unversioned requests go to the newest (Neg)
        st, body, _ = request(srv, "GET", "/v2/models/relu_all")
        assert body["versions"] == ["1", "2"], body
        x = [-1.0] * 60
        st, out, _ = request(srv, "POST", "/v2/models/relu_all/infer",
                             infer_body([("x", [3, 4, 5], "FP32", x)]))
        assert st == 200 and out["model_version"] == "2" and out["outputs"][0]["data"][0] == 1.0, out
        st, out, _ = request(srv, "POST", "/v2/models/relu_all/versions/1/infer",
                             infer_body([("x", [3, 4, 5], "FP32", x)]))
        assert st == 200 and out["model_version"] == "1" and out["outputs"][0]["data"][0] == 0.0, out
        # specific [1]: version 2 exists on disk but is not served
        st, out, _ = request(srv, "POST", "/v2/models/relu_v1/infer",
                             infer_body([("x", [3, 4, 5], "FP32", x)]))
        assert st == 200 and out["model_version"] == "1", out
        assert request(srv, "GET", "/v2/models/relu_v1/versions/2/ready")[0] == 404

    def model_ready():
        assert request(srv, "GET", "/v2/models/add/ready")[0] == 200
        assert request(srv, "GET", "/v2/models/relu/versions/2/ready")[0] == 200
        assert request(srv, "GET", "/v2/models/nope/ready")[0] == 404
        assert request(srv, "GET", "/v2/models/broken/ready")[0] == 503

    def broken_model_status():
        st, body, _ = request(srv, "GET", "/v2/models/broken")
        assert st == 503 and "error" in body and "malformed" in body["error"], (st, body)
        assert repo not in body["error"], "error leaks the repository path: " + body["error"]
        st, body, _ = request(srv, "POST", "/v2/models/broken/infer",
                              infer_body([("x", [1], "FP32", [1])]))
        assert st == 503, (st, body)
        st, index, _ = request(srv, "POST", "/v2/repository/index")
        assert st == 200, st
        rows = {(r["name"], r.get("version")): r for r in index}
        assert rows[("broken", "1")]["state"] == "UNAVAILABLE" and rows[("broken", "1")]["reason"]
        assert rows[("add", "1")]["state"] == "READY", rows[("add", "1")]

    def failed_latest_version_is_reported():
        # broken_then_ok: version 2 is an empty file; version 1 is not in the latest-1 policy, so
        # the model is not ready, and the failure is visible
        st, index, _ = request(srv, "POST", "/v2/repository/index")
        rows = {(r["name"], r.get("version")): r for r in index}
        assert rows[("broken_then_ok", "2")]["state"] == "UNAVAILABLE", rows
        assert request(srv, "GET", "/v2/models/broken_then_ok/versions/2/ready")[0] == 503

    def bad_config_names_field():
        st, index, _ = request(srv, "POST", "/v2/repository/index")
        rows = {r["name"]: r for r in index}
        assert "no_such_field" in rows["badcfg_field"]["reason"], rows["badcfg_field"]
        assert "instance_count" in rows["badcfg_value"]["reason"], rows["badcfg_value"]
        assert "config.json" in rows["badcfg_json"]["reason"], rows["badcfg_json"]
        assert "preferred_batch_size" in rows["badcfg_batch"]["reason"], rows["badcfg_batch"]
        assert request(srv, "GET", "/v2/models/batchcfg/ready")[0] == 200
        st, body, _ = request(srv, "GET", "/v2/models/badcfg_field")
        assert st == 503 and "no_such_field" in body["error"], (st, body)

    def infer_add_flat_and_nested():
        d = os.path.join(NODE, "test_add", "test_data_set_0")
        _, dims, x = read_tensorproto(os.path.join(d, "input_0.pb"))
        _, _, y = read_tensorproto(os.path.join(d, "input_1.pb"))
        _, _, want = read_tensorproto(os.path.join(d, "output_0.pb"))
        nested_y = [[y[i * 20 + j * 5:i * 20 + j * 5 + 5] for j in range(4)] for i in range(3)]
        st, out, _ = request(srv, "POST", "/v2/models/add/infer",
                             infer_body([("x", dims, "FP32", x), ("y", dims, "FP32", nested_y)],
                                        id="req-42", parameters={"anything": 1}))
        assert st == 200, (st, out)
        assert out["model_name"] == "add" and out["model_version"] == "1" and out["id"] == "req-42"
        o = out["outputs"][0]
        assert o["name"] == "sum" and o["datatype"] == "FP32" and o["shape"] == [3, 4, 5], o
        assert all(abs(a - b) <= 1e-5 * max(1, abs(b)) for a, b in zip(o["data"], want)), "values"
        st, out, _ = request(srv, "POST", "/v2/models/add/infer",
                             infer_body([("x", dims, "FP32", x), ("y", dims, "FP32", y)]))
        assert st == 200 and "id" not in out, out

    def infer_every_dtype():
        for name, case in CASES.items():
            d = os.path.join(NODE, case, "test_data_set_0")
            st, meta, _ = request(srv, "GET", "/v2/models/" + name)
            assert st == 200, (name, meta)
            inputs = []
            for i, m in enumerate(meta["inputs"]):
                dt, dims, vals = read_tensorproto(os.path.join(d, "input_%d.pb" % i))
                assert KSERVE[dt] == m["datatype"], (name, dt, m)
                inputs.append((m["name"], dims, m["datatype"], vals))
            st, out, _ = request(srv, "POST", "/v2/models/%s/infer" % name, infer_body(inputs))
            assert st == 200, (name, st, out)
            for i, o in enumerate(out["outputs"]):
                dt, dims, want = read_tensorproto(os.path.join(d, "output_%d.pb" % i))
                assert o["datatype"] == KSERVE[dt] and o["shape"] == dims, (name, o, dims)
                tol = {10: 1e-3, 16: 1e-2}.get(dt, 1e-6)
                for a, b in zip(o["data"], want):
                    if isinstance(b, float) and math.isnan(b):
                        assert a == "NaN", (name, a)
                    elif isinstance(b, float) and math.isinf(b):
                        assert a == ("Infinity" if b > 0 else "-Infinity"), (name, a)
                    elif isinstance(b, float):
                        assert abs(a - b) <= tol * max(1, abs(b)), (name, a, b)
                    else:
                        assert a == b, (name, a, b)

    def requested_outputs():
        xs = [("x", [3, 4, 5], "FP32", X60), ("y", [3, 4, 5], "FP32", X60)]
        st, out, _ = request(srv, "POST", "/v2/models/add/infer",
                             infer_body(xs, outputs=[{"name": "sum"}]))
        assert st == 200 and [o["name"] for o in out["outputs"]] == ["sum"], out
        st, out, _ = request(srv, "POST", "/v2/models/add/infer",
                             infer_body(xs, outputs=[{"name": "nope"}]))
        assert st == 400 and "nope" in out["error"] and "sum" in out["error"], out
        st, out, _ = request(srv, "POST", "/v2/models/add/infer",
                             infer_body(xs, outputs=[{"name": "sum"}, {"name": "sum"}]))
        assert st == 400, out

    def special_floats():
        x = ["NaN", "Infinity", "-Infinity", -0.0, 1e-45, -1] + [0.0] * 54
        st, out, _ = request(srv, "POST", "/v2/models/relu/infer",
                             infer_body([("x", [3, 4, 5], "FP32", x)]))
        assert st == 200, out
        assert out["outputs"][0]["data"][:6] == ["NaN", "Infinity", 0, 0, 1e-45, 0], \
            out["outputs"][0]["data"][:6]

    def err(body, path="/v2/models/add/infer", want=400, contains=None):
        st, out, _ = request(srv, "POST", path, body)
        assert st == want, "status %s, want %s: %s" % (st, want, out)
        assert isinstance(out, dict) and isinstance(out.get("error"), str), out
        if contains:
            assert contains in out["error"], "%r lacks %r" % (out["error"], contains)
        return out["error"]

    ADD = lambda **kw: infer_body([("x", [3, 4, 5], "FP32", X60), ("y", [3, 4, 5], "FP32", X60)], **kw)

    def invalid_json():  # item 7
        err("{", contains="invalid JSON")
        err('{"inputs": [', contains="invalid JSON")
        err(b'{"id": "\xff\xfe", "inputs": []}', contains="invalid JSON")
        err("[]")
        err("", want=400)
        err('{"inputs": 5}')
        err('{"inputs": []}')
        err('{"inputs": [{"name": "x"}]}')
        err(dict(ADD(), bogus=1), contains="bogus")
        err(dict(ADD(), id=5))
        err('{"inputs": [], "inputs": []}', contains="invalid JSON")

    def deep_nesting():  # item 8
        err("[" * 50000, contains="deeper")
        err('{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ' + "[" * 30000
            + "1" + "]" * 30000 + "}]}", contains="deeper")
        assert request(srv, "GET", "/v2/health/live")[0] == 200

    def ragged_and_count():  # item 9
        r = lambda data, shape=[3, 4, 5]: infer_body([("x", shape, "FP32", data)])
        err(r([[1, 2], [3]] + [0] * 57), path="/v2/models/relu/infer", contains="ragged")
        err(r([[1, 2], 3] + [0] * 57), path="/v2/models/relu/infer", contains="ragged")
        err(r(X60[:59]), path="/v2/models/relu/infer", contains="59")
        err(r(X60 + [1]), path="/v2/models/relu/infer", contains="more than")
        err(r([X60[:30], X60[30:]] + [[0] * 30]), path="/v2/models/relu/infer", contains="more")

    def wrong_dtype_values():  # item 10
        one = lambda t, v, m="relu", s=[3, 4, 5]: infer_body([("x", s, t, [v] + [0] * 59)])
        err(one("FP32", "abc"), path="/v2/models/relu/infer", contains="not a number")
        err(b'{"inputs":[{"name":"x","shape":[3,4,5],"datatype":"FP32","data":[1e400'
            + b',0' * 59 + b']}]}', path="/v2/models/relu/infer")
        err(one("FP32", 1e39), path="/v2/models/relu/infer", contains="out of range")
        err(one("FP32", None), path="/v2/models/relu/infer")
        err(one("FP32", True), path="/v2/models/relu/infer")
        err(one("FP64", 1.0), path="/v2/models/relu/infer", contains="FP32")
        err(one("NOPE", 1.0), path="/v2/models/relu/infer", contains="NOPE")
        err(one("BYTES", "a"), path="/v2/models/relu/infer", contains="not a string")
        bigint = '{"inputs":[{"name":"x","shape":[3,4,5],"datatype":"INT64","data":[18446744073709551616%s]}]}'
        err(bigint % (",0" * 59), path="/v2/models/max_int64/infer")
        i8 = lambda v: infer_body([("x", [3, 4, 5], "INT8", [v] + [0] * 59),
                                   ("y", [3, 4, 5], "INT8", [0] * 60)])
        err(i8(128), path="/v2/models/add_int8/infer", contains="out of range")
        err(i8(1.5), path="/v2/models/add_int8/infer", contains="integer")
        u64 = infer_body([("x", [3, 4, 5], "UINT64", [-1] + [0] * 59),
                          ("y", [3, 4, 5], "UINT64", [0] * 60)])
        err(u64, path="/v2/models/add_uint64/infer", contains="out of range")
        b = infer_body([("x", [3, 4], "BOOL", [1] + [True] * 11), ("y", [3, 4], "BOOL", [True] * 12)])
        err(b, path="/v2/models/and_bool/infer", contains="true/false")
        h = infer_body([("input", [3, 4], "FP16", [70000.0] + [0.0] * 11)])
        err(h, path="/v2/models/cast_f16_f32/infer", contains="out of range")

    def wrong_inputs():  # item 11
        x = ("x", [3, 4, 5], "FP32", X60)
        e = err(infer_body([x]), contains="'y' is missing")
        assert "expected inputs: x (FP32 [3,4,5]), y (FP32 [3,4,5])" in e, e
        err(infer_body([x, ("y", [3, 4, 5], "FP32", X60), ("z", [1], "FP32", [1])]),
            contains="unknown input 'z'")
        err(infer_body([x, x]), contains="twice")
        err(infer_body([("x", [60], "FP32", X60), ("y", [3, 4, 5], "FP32", X60)]), contains="shape")
        err(infer_body([("x", [3, 5, 4], "FP32", X60), ("y", [3, 4, 5], "FP32", X60)]),
            contains="expected inputs")
        err(infer_body([("x", [3, -4, 5], "FP32", X60), ("y", [3, 4, 5], "FP32", X60)]),
            contains="negative")
        err(infer_body([("x", [3, 4, "5"], "FP32", X60), ("y", [3, 4, 5], "FP32", X60)]))
        err(infer_body([("x", [1] * 17, "FP32", [1]), ("y", [3, 4, 5], "FP32", X60)]),
            contains="rank")

    def shape_overflow():  # item 12
        for shape in ([0, 2 ** 32, 2 ** 32], [2 ** 31, 2 ** 31, 8], [2 ** 32, 2 ** 32, 0],
                      [2 ** 62, 4], [2 ** 63 - 1, 2]):
            err(infer_body([("x", shape, "FP32", [])]), path="/v2/models/relu/infer",
                contains="overflow")
        err(infer_body([("x", [2 ** 64], "FP32", [])]), path="/v2/models/relu/infer")

    def huge_valid_shape():  # item 13
        err(infer_body([("x", [10 ** 10], "FP32", [1])]), path="/v2/models/relu/infer", want=413)
        err(infer_body([("x", [100000, 1000], "FP32", [1])]), path="/v2/models/relu/infer",
            want=413)
        # fits the cap but not the body: refused before allocating, as a count mismatch
        err(infer_body([("x", [1000, 1000], "FP32", [1])]), path="/v2/models/relu/infer",
            contains="cannot hold")

    def bad_names_in_urls():  # item 20
        for path in ("/v2/models/../x", "/v2/models/a/b", "/v2/models/%2e%2e",
                     "/v2/models/%2e%2e/infer", "/v2/models/a%00b", "/v2/models/" + "a" * 10240,
                     "/v2/models/.hidden", "/v2/models/add/versions/0", "/v2/models/add/versions/-1",
                     "/v2/models/add/versions/abc", "/v2/models/add/versions/01",
                     "/v2/models/add/versions/99999999999999999999", "/v2/models/a%2Fb/ready",
                     "/v2/models//ready", "/v2/models/a%20b", "/v2/models/a:b/ready"):
            st, out, _ = request(srv, "GET", path)
            assert st == 400, "%s -> %s %s" % (path[:60], st, out)
        for path in ("/v2/models/../x/infer", "/v2/models/a/b/infer"):
            st, out, _ = request(srv, "POST", path, ADD())
            assert st == 400, "%s -> %s %s" % (path, st, out)
        out = raw_exchange(srv, b"GET /v2/models/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(out) in (400, 404), out[:200]
        assert request(srv, "GET", "/v2/health/live")[0] == 200

    def unknown_routes():
        assert request(srv, "GET", "/v3")[0] == 404
        assert request(srv, "GET", "/")[0] == 200  # the dashboard
        assert request(srv, "GET", "/v2/nothing")[0] == 404
        assert request(srv, "GET", "/v2/models/add/infer")[0] == 405
        assert request(srv, "POST", "/v2/health/live")[0] == 405
        assert request(srv, "POST", "/v2/models/nope/infer", ADD())[0] == 404
        assert request(srv, "POST", "/v2/models/add/versions/9/infer", ADD())[0] == 404

    def keep_alive():
        c = srv.conn()
        for i in range(5):
            st, out, r = request(srv, "POST", "/v2/models/add/infer", ADD(id=str(i)), conn=c)
            assert st == 200 and out["id"] == str(i), out
        st, out, _ = request(srv, "POST", "/v2/models/add/infer", "{", conn=c)
        assert st == 400
        st, out, _ = request(srv, "GET", "/v2/models/add", conn=c)
        assert st == 200
        c.close()

    def concurrent_clients():
        errors = []

        def client(k):
            try:
                c = srv.conn()
                for i in range(10):
                    st, out, _ = request(srv, "POST", "/v2/models/relu_v1/infer",
                                         infer_body([("x", [3, 4, 5], "FP32", X60)], id="%d-%d" % (k, i)),
                                         conn=c)
                    if st != 200 or out["id"] != "%d-%d" % (k, i):
                        errors.append((st, out))
                c.close()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors[:3]

    def http_malformed():  # item 1
        for raw in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"FOO /v2 HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /v2 HTTP/9.9\r\nHost: x\r\n\r\n", b"GET /v2 HTTP/1.1\r\nNoColon\r\n\r\n",
                    b"\x00\x01\x02\r\n\r\n"):
            out = raw_exchange(srv, raw)
            st = status_of(out)
            assert st in (400, 405, 501, 505) or out == b"", "%r -> %r" % (raw, out[:100])
        # bare LF and NUL in a request head: 400 (RELIABILITY 1), and the server stays up
        out = raw_exchange(srv, b"GET /v2 HTTP/1.1\nHost: x\nConnection: close\n\n")
        assert status_of(out) == 400, out[:100]
        out = raw_exchange(srv, b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n")
        assert status_of(out) == 400, out[:100]
        assert request(srv, "GET", "/v2/health/live")[0] == 200

    def http_oversized():  # item 2
        out = raw_exchange(srv, b"GET /v2/" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(out) in (400, 413, 414, 431) or out == b"", out[:100]
        out = raw_exchange(srv, b"GET /v2 HTTP/1.1\r\n" + b"X-Pad: " + b"b" * 1000 + b"\r\n" * 1
                           + b"".join(b"X-%d: %s\r\n" % (i, b"c" * 500) for i in range(100)) + b"\r\n")
        assert status_of(out) in (400, 413, 431) or out == b"", out[:100]
        assert request(srv, "GET", "/v2/health/live")[0] == 200

    def http_content_length():  # item 3
        base = b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\n"
        for hdr, want in ((b"Content-Length: 1000000000000\r\n", (413,)),
                          (b"Content-Length: 99999999999999999999999\r\n", (400, 413)),
                          (b"Content-Length: -5\r\n", (400,)),
                          (b"Content-Length: abc\r\n", (400,)),
                          (b"Content-Length: 2\r\nContent-Length: 3\r\n", (400,)),
                          (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", (400,)),
                          (b"Transfer-Encoding: chunked\r\n", (400, 413))):
            body = b"{}   " if b"chunked" not in hdr else b"ffffffffffffffffff\r\n"
            out = raw_exchange(srv, base + hdr + b"\r\n" + body, timeout=8)
            assert status_of(out) in want, "%r -> %r" % (hdr, out[:120])
        # the body cap (4 MiB here) holds for a real body too
        big = 5 << 20
        out = raw_exchange(srv, base + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % big
                           + b" " * big + b"\r\n0\r\n\r\n", timeout=8)
        assert status_of(out) == 413, out[:120]
        assert request(srv, "GET", "/v2/health/live")[0] == 200

    def chunked_many_small():  # item 4
        body = json.dumps(ADD()).encode()
        chunks = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body))) + b"0\r\n\r\n"
        out = raw_exchange(srv, b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks)
        assert status_of(out) == 200, out[:200]

    def slow_client_timeout():  # item 5
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        t0 = time.time()
        s.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        # another client is served meanwhile
        assert request(srv, "GET", "/v2/health/live")[0] == 200
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        took = time.time() - t0
        s.close()
        assert took < 20, "not closed at the read timeout (%.1fs)" % took
        assert status_of(data) in (None, 400, 408), data[:100]

    tests = [ready_line, health, server_metadata, model_metadata, model_metadata_dtypes,
             version_selection, model_ready, broken_model_status, failed_latest_version_is_reported,
             bad_config_names_field, infer_add_flat_and_nested, infer_every_dtype,
             requested_outputs, special_floats, invalid_json, deep_nesting, ragged_and_count,
             wrong_dtype_values, wrong_inputs, shape_overflow, huge_valid_shape,
             bad_names_in_urls, unknown_routes, keep_alive, concurrent_clients, http_malformed,
             http_oversized, http_content_length, chunked_many_small, slow_client_timeout]
    for t in tests:
        test(t)
    test(health)  # still serving after all of the above


def run_lifecycle_tests(repo):
    def readiness_waits_for_scan():
        srv = Server(repo, env={"IFD_SERVE_TEST_LOAD_DELAY_MS": "1500"}, wait_ready=False)
        try:
            deadline = time.time() + START_TIMEOUT
            while True:
                try:
                    st = request(srv, "GET", "/v2/health/live")[0]
                    break
                except OSError:
                    assert time.time() < deadline, "server never listened"
                    time.sleep(0.05)
            assert st == 200
            st, body, r = request(srv, "GET", "/v2/health/ready")
            assert st == 503 and "loading" in body["error"], (st, body)
            assert srv.ready.wait(START_TIMEOUT), "no ready line"
            assert request(srv, "GET", "/v2/health/ready")[0] == 200
        finally:
            assert srv.stop() == 0

    def sigterm_drains_in_flight():  # item 27
        srv = Server(repo, env={"IFD_SERVE_TEST_INFER_DELAY_MS": "1500"})
        results = []

        def slow():
            results.append(request(srv, "POST", "/v2/models/relu/infer",
                                   infer_body([("x", [3, 4, 5], "FP32", X60)]))[:2])
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        refused = False
        try:
            request(srv, "GET", "/v2/health/live")
        except OSError:
            refused = True
        t.join(30)
        rc = srv.stop()
        assert results and results[0][0] == 200, results
        assert refused, "new connections still accepted while draining"
        assert rc == 0, "exit %s: %s" % (rc, "".join(srv.err)[-1000:])

    def sigint_idle_exit():
        srv = Server(repo)
        assert srv.stop(signal.SIGINT) == 0

    def queue_full_503():  # item 25
        srv = Server(repo, env={"IFD_SERVE_TEST_INFER_DELAY_MS": "800"})
        out = []

        def one():
            st, body, r = request(srv, "POST", "/v2/models/queue1/infer",
                                  infer_body([("x", [3, 4, 5], "FP32", X60)]))
            out.append((st, r.getheader("Retry-After")))
        try:
            ts = [threading.Thread(target=one) for _ in range(5)]
            for t in ts:
                t.start()
                time.sleep(0.05)
            for t in ts:
                t.join(30)
            codes = sorted(st for st, _ in out)
            assert codes.count(200) >= 2 and codes.count(503) >= 1, codes
            assert all(ra == "1" for st, ra in out if st == 503), out
        finally:
            assert srv.stop() == 0

    def queued_timeout_503():  # item 28
        srv = Server(repo, env={"IFD_SERVE_TEST_INFER_DELAY_MS": "600"})
        out = []

        def one():
            out.append(request(srv, "POST", "/v2/models/timeout/infer",
                               infer_body([("x", [3, 4, 5], "FP32", X60)]))[:2])
        try:
            ts = [threading.Thread(target=one) for _ in range(2)]
            for t in ts:
                t.start()
                time.sleep(0.1)
            for t in ts:
                t.join(30)
            codes = sorted(st for st, _ in out)
            assert codes == [200, 503], out
            assert any("timeout" in str(b) for st, b in out if st == 503), out
        finally:
            assert srv.stop() == 0

    def connection_cap():
        srv = Server(repo, ["--max-connections", "2"])
        try:
            a, b, c = srv.conn(), srv.conn(), srv.conn()
            assert request(srv, "GET", "/v2/health/live", conn=a)[0] == 200
            assert request(srv, "GET", "/v2/health/live", conn=b)[0] == 200
            assert request(srv, "GET", "/v2/health/live", conn=c)[0] == 503
            a.close()
            time.sleep(0.2)
            d = srv.conn()
            assert request(srv, "GET", "/v2/health/live", conn=d)[0] == 200
            b.close()
            d.close()
            c.close()
        finally:
            assert srv.stop() == 0

    def missing_repository():
        p = subprocess.run([BIN, "serve", "--model-repository", "/nonexistent/x", "--http-port",
                            "0", "--http-address", "127.0.0.1"], timeout=30, capture_output=True)
        assert p.returncode == 1 and b"/nonexistent/x" in p.stderr, p
        p = subprocess.run([BIN, "serve"], capture_output=True, timeout=30)
        assert p.returncode == 2 and b"model-repository" in p.stderr, p
        p = subprocess.run([BIN, "serve", "--model-repository", repo, "--http-port", "x"],
                           capture_output=True, timeout=30)
        assert p.returncode == 2, p

    for t in (readiness_waits_for_scan, sigterm_drains_in_flight, sigint_idle_exit,
              queue_full_503, queued_timeout_503, connection_cap, missing_repository):
        test(t)


if __name__ == "__main__":
    main()
