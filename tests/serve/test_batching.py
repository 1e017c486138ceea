#!/usr/bin/python3
"""Black-box tests of `inferd serve` dynamic batching (Triton's max_batch_size and
dynamic_batching) over real sockets. Python standard library only.

    tests/serve/test_batching.py BUILD/inferd ONNX_TESTS_ROOT

Builds a model repository in a temporary folder (the examples' digits classifier with and
without dynamic_batching, and two tiny models with variable non-batch dims written here), starts
the server, and prints "PASS name" / "FAIL name: why", then "N passed, M failed". Batching is
observed through the per-version "inference_count" / "execution_count" of
POST /v2/repository/index (Triton's statistics names).
"""
import http.client
import json
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

ONNX = os.path.abspath(sys.argv[2])  # unused: the models come from examples/ and from here
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "examples"))

from harness import (BIN, SLOW, START_TIMEOUT, Server, finish, free_port,  # noqa: E402,F401
                     pb_field as _field, report, stop_checked, test)



# ---- data and models -------------------------------------------------------------------------

def read_npy_f32(path):
    """(shape, flat list) of a little-endian float32 C-order .npy file."""
    b = open(path, "rb").read()
    assert b[:6] == b"\x93NUMPY", path
    major = b[6]
    if major == 1:
        hlen, off = struct.unpack("<H", b[8:10])[0], 10
    else:
        hlen, off = struct.unpack("<I", b[8:12])[0], 12
    header = b[off:off + hlen].decode("latin1")
    assert "'<f4'" in header and "'fortran_order': False" in header, header
    shape = tuple(int(x) for x in header.split("'shape': (")[1].split(")")[0].split(",") if x.strip())
    n = 1
    for d in shape:
        n *= d
    data = struct.unpack("<%df" % n, b[off + hlen:off + hlen + 4 * n])
    return shape, list(data)


def onnx_2d_model(op_type, attrs=b""):
    """An opset-13 model: y = op_type(x), x float [batch, n] (both dims symbolic)."""
    def value_info(name, dims):
        shape = b"".join(_field(1, _field(2, d)) for d in dims)
        tensor_type = _field(1, 1) + _field(2, shape)
        return _field(1, name) + _field(2, _field(1, tensor_type))
    node = _field(1, "x") + _field(2, "y") + _field(4, op_type) + attrs
    graph = (_field(1, node) + _field(2, "g") + _field(11, value_info("x", ["batch", "n"])) +
             _field(12, value_info("y", ["d0", "d1"])))
    return _field(1, 8) + _field(8, _field(1, "") + _field(2, 13)) + _field(7, graph)


def build_repo(root):
    digits = os.path.join(EXAMPLES, "models", "digits")

    def copy_digits(name, config):
        shutil.copytree(digits, os.path.join(root, name))
        path = os.path.join(root, name, "config.json")
        if config is None:
            os.remove(path)
        else:
            with open(path, "w") as f:
                json.dump(config, f)

    copy_digits("digits_b", {"max_batch_size": 32, "dynamic_batching": {
        "preferred_batch_size": [8], "max_queue_delay_microseconds": 20000}})
    copy_digits("digits_nb", None)

    def put(name, model, config):
        os.makedirs(os.path.join(root, name, "1"))
        with open(os.path.join(root, name, "1", "model.onnx"), "wb") as f:
            f.write(model)
        with open(os.path.join(root, name, "config.json"), "w") as f:
            json.dump(config, f)

    slow = {"max_batch_size": 8, "dynamic_batching": {
        "preferred_batch_size": [8], "max_queue_delay_microseconds": 400000}}
    put("relu2d", onnx_2d_model("Relu"), slow)
    put("transpose2d", onnx_2d_model("Transpose"), slow)
    put("timeout2d", onnx_2d_model("Relu"), {
        "max_batch_size": 1, "default_timeout_microseconds": 100000,
        "dynamic_batching": {"max_queue_delay_microseconds": 0}})


# ---- the server ------------------------------------------------------------------------------

def request(srv, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def infer_body(name, shape, flat):
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": "FP32", "data": flat}]}


def counts(srv, model):
    st, body = request(srv, "POST", "/v2/repository/index", {})
    assert st == 200, (st, body)
    for e in body:
        if e["name"] == model and e.get("version") == "1":
            return e["inference_count"], e["execution_count"]
    raise AssertionError("%s not in the index: %s" % (model, body))


def concurrently(jobs):
    """Run the callables at once (one thread each); their results in order."""
    out = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i):
        barrier.wait()
        try:
            out[i] = jobs[i]()
        except Exception as e:  # noqa: BLE001
            out[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tol * (1 + abs(y)) for x, y in zip(a, b))


# ---- tests -----------------------------------------------------------------------------------

def run_tests(srv):
    shape, images = read_npy_f32(os.path.join(EXAMPLES, "data", "test", "image.npy"))
    per = shape[1] * shape[2] * shape[3]
    # 16 requests of 1, 2 or 3 images each: mixed batch sizes in one batch
    reqs = []
    pos = 0
    for i in range(16):
        k = 1 + i % 3
        reqs.append(((k,) + tuple(shape[1:]), images[pos * per:(pos + k) * per]))
        pos += k
    reference = []

    def sequential_reference():
        for s, flat in reqs:
            st, body = request(srv, "POST", "/v2/models/digits_nb/infer",
                               infer_body("image", s, flat))
            assert st == 200, (st, body)
            reference.append(body["outputs"][0])
        inf, ex = counts(srv, "digits_nb")
        assert ex == len(reqs) and inf == len(reqs), (inf, ex)

    def batched_replies_match():
        assert reference, "no reference"
        inf0, ex0 = counts(srv, "digits_b")
        out = concurrently([lambda s=s, f=f: request(srv, "POST", "/v2/models/digits_b/infer",
                                                     infer_body("image", s, f))
                            for s, f in reqs])
        for i, r in enumerate(out):
            assert not isinstance(r, Exception), r
            st, body = r
            assert st == 200, (i, st, body)
            got, want = body["outputs"][0], reference[i]
            assert got["shape"] == want["shape"] == [reqs[i][0][0], 10], (got["shape"], want)
            assert close(got["data"], want["data"]), (i, got["data"][:10], want["data"][:10])
        inf, ex = counts(srv, "digits_b")
        images_sent = sum(s[0] for s, _ in reqs)
        assert inf - inf0 == images_sent, (inf - inf0, images_sent)
        assert ex - ex0 < len(reqs), "no batching: %d runs for %d requests" % (ex - ex0, len(reqs))
        print("  digits_b: %d requests (%d images) in %d runs" % (len(reqs), images_sent, ex - ex0))

    def oversized_400():
        flat = images[:33 * per]
        st, body = request(srv, "POST", "/v2/models/digits_b/infer",
                           infer_body("image", (33,) + tuple(shape[1:]), flat))
        assert st == 400 and "batch" in body["error"], (st, body)
        st, body = request(srv, "POST", "/v2/models/digits_b/infer",
                           infer_body("image", (32,) + tuple(shape[1:]), images[:32 * per]))
        assert st == 200 and body["outputs"][0]["shape"] == [32, 10], (st, body)

    def incompatible_shapes_not_mixed():
        inf0, ex0 = counts(srv, "relu2d")
        shapes = [(1, 3), (2, 5), (1, 3), (1, 5), (2, 3)]
        bodies = []
        for i, (b, n) in enumerate(shapes):
            bodies.append([float((j * 7 + i) % 11 - 5) for j in range(b * n)])
        out = concurrently([lambda s=s, f=f: request(srv, "POST", "/v2/models/relu2d/infer",
                                                     infer_body("x", s, f))
                            for s, f in zip(shapes, bodies)])
        for s, f, r in zip(shapes, bodies, out):
            assert not isinstance(r, Exception), r
            st, body = r
            assert st == 200, (st, body)
            assert body["outputs"][0]["shape"] == list(s), body
            assert body["outputs"][0]["data"] == [max(0.0, x) for x in f], (f, body)
        inf, ex = counts(srv, "relu2d")
        print("  relu2d: %d requests of 2 shapes in %d runs" % (len(shapes), ex - ex0))
        assert inf - inf0 == sum(b for b, _ in shapes), (inf, inf0)
        # one run per shape group [*,3] and [*,5] when they arrive within the delay
        assert 2 <= ex - ex0 <= len(shapes), ex - ex0

    def unsplittable_output_errors():
        # Transpose turns [batch, n] into [n, batch]: dim 0 is not the batch, so a real batch
        # cannot be split; a request alone still runs as it is
        inf0, ex0 = counts(srv, "transpose2d")
        out = concurrently([lambda: request(srv, "POST", "/v2/models/transpose2d/infer",
                                            infer_body("x", (1, 3), [1.0, 2.0, 3.0]))] * 2)
        inf, ex = counts(srv, "transpose2d")
        print("  transpose2d: 2 requests in %d runs" % (ex - ex0))
        if ex - ex0 == 1:
            for r in out:
                st, body = r
                assert st == 500 and "'y'" in body["error"], (st, body)
        else:
            for r in out:
                assert r[0] == 200 and r[1]["outputs"][0]["shape"] == [3, 1], r
        st, body = request(srv, "POST", "/v2/models/transpose2d/infer",
                           infer_body("x", (2, 3), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
        assert st == 200 and body["outputs"][0]["shape"] == [3, 2], (st, body)

    def non_batching_unaffected():
        inf0, ex0 = counts(srv, "digits_nb")
        out = concurrently([lambda s=s, f=f: request(srv, "POST", "/v2/models/digits_nb/infer",
                                                     infer_body("image", s, f))
                            for s, f in reqs])
        for i, r in enumerate(out):
            assert not isinstance(r, Exception), r
            assert r[0] == 200 and close(r[1]["outputs"][0]["data"], reference[i]["data"]), r
        inf, ex = counts(srv, "digits_nb")
        assert ex - ex0 == len(reqs) and inf - inf0 == len(reqs), (inf - inf0, ex - ex0)
        # no batch dim: a 40-image request is fine
        st, body = request(srv, "POST", "/v2/models/digits_nb/infer",
                           infer_body("image", (40,) + tuple(shape[1:]), images[:40 * per]))
        assert st == 200 and body["outputs"][0]["shape"] == [40, 10], (st, body)

    def index_has_counts():
        st, body = request(srv, "POST", "/v2/repository/index", {})
        assert st == 200 and all("execution_count" in e for e in body if "version" in e), body

    for t in (sequential_reference, batched_replies_match, oversized_400,
              incompatible_shapes_not_mixed, unsplittable_output_errors, non_batching_unaffected,
              index_has_counts):
        test(t)


def run_timeout_test(repo):
    def queued_timeout_503():
        # every run takes 400 ms and a batch holds one request: the two behind the first wait
        # longer than the model's 100 ms timeout
        srv = Server(repo, env={"IFD_SERVE_TEST_INFER_DELAY_MS": "400"})
        try:
            out = concurrently([lambda: request(srv, "POST", "/v2/models/timeout2d/infer",
                                                infer_body("x", (1, 2), [1.0, -1.0]))] * 3)
            codes = sorted(r[0] for r in out)
            assert codes == [200, 503, 503], out
            assert all("timeout" in r[1]["error"] for r in out if r[0] == 503), out
        finally:
            assert srv.stop() == 0
    test(queued_timeout_503)


def main():
    work = tempfile.mkdtemp(prefix="inferd-batch-")
    try:
        repo = os.path.join(work, "repo")
        os.makedirs(repo)
        build_repo(repo)
        srv = Server(repo)
        try:
            run_tests(srv)
        finally:
            stop_checked(srv, "clean_exit")
        run_timeout_test(repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
