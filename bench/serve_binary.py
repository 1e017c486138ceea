#!/usr/bin/python3
"""A 1x3x224x224 FP32 tensor through the server, one client, sequential keep-alive requests:
  - JSON ingest rate: request-body MB/s for the KServe v2 JSON form against a model that only
    sums its input (ReduceSum to a scalar, built here with onnx.helper) so parsing dominates and
    the reply is tiny; also ResNet-18 JSON vs binary (the difference is the JSON cost). Two
    bodies: json.dumps of the float32 values (~17 significant digits each, sum_json) and of the
    same values rounded to 6 decimals (sum_json6, on its own line per round).
  - ResNet-18 end-to-end latency through the Triton binary tensor extension vs in-process
    `inferd bench --threads N --json` on the same input and thread count: ratio (target <= 1.2).
Usage: bench/serve_binary.py [--bin build/inferd] [--golden build/golden] [--threads 2]
                             [--iters 40] [--rounds 2] [--ingest-only]
  --ingest-only: only the two JSON ingest measurements (no ResNet-18 runs).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, shutil, time, http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_batching as sb  # noqa: E402
import numpy as np  # noqa: E402


def make_sum_model(path):
    import onnx
    from onnx import helper, TensorProto
    g = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def seq(port, path, body, headers, iters, warmup=3):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    lat = []; bad = []
    for i in range(iters + warmup):
        t0 = time.perf_counter()
        c.request("POST", path, body, headers); r = c.getresponse(); d = r.read()
        t1 = time.perf_counter()
        if r.status != 200:
            bad.append("%d %s" % (r.status, d[:200]))
        elif i >= warmup:
            lat.append((t1 - t0) * 1e3)
    c.close()
    return statistics.median(lat) if lat else float("nan"), bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(sb.ROOT, "build", "inferd"))
    ap.add_argument("--golden", default=os.path.join(sb.ROOT, "build", "golden"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ingest-only", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sb-bin-")
    repo = sb.make_repo(tmp, a.golden, {"resnet18": ("resnet18", None)})
    os.makedirs(os.path.join(repo, "sum", "1"))
    make_sum_model(os.path.join(repo, "sum", "1", "model.onnx"))
    xfile = os.path.join(a.golden, "resnet18", "input_0_x.npy")
    x = np.load(xfile).astype(np.float32)
    shape = list(x.shape)
    jbody = sb.kserve_json_body(shape, x)
    jbody6 = json.dumps({"inputs": [{"name": "x", "shape": shape, "datatype": "FP32",
                                     "data": [round(v, 6) for v in x.ravel().tolist()]}]}).encode()
    hj = {"Content-Type": "application/json"}
    log = open(os.path.join(tmp, "server.log"), "w+")
    p, port = sb.start_server(a.bin, repo, a.threads, log)
    try:
        out = sb.output_name(port, "resnet18")
        bbody, bh = sb.kserve_binary_body(shape, x, out)
        print("tensor %s FP32 = %d bytes raw; JSON body %d bytes; binary body %d bytes; "
              "inferd serve --threads %d, 1 client, %d iters/round, %d cores"
              % (shape, x.nbytes, len(jbody), len(bbody), a.threads, a.iters, os.cpu_count()))
        print("%-6s %10s %12s %12s %12s %12s %10s %8s" % (
            "round", "sum_json", "ingest_MB/s", "rn18_json", "rn18_binary", "in_process",
            "bin/inproc", "json/bin"))
        ratios = []; ingests = []; ingests6 = []
        for rnd in range(a.rounds):
            sj, b1 = seq(port, "/v2/models/sum/infer", jbody, hj, a.iters)
            sj6, b0 = seq(port, "/v2/models/sum/infer", jbody6, hj, a.iters)
            ingest = len(jbody) / 1e6 / (sj / 1e3)
            ingest6 = len(jbody6) / 1e6 / (sj6 / 1e3)
            ingests.append(ingest); ingests6.append(ingest6)
            if a.ingest_only:
                rj = rb = ip = float("nan"); b2 = b3 = []
            else:
                rj, b2 = seq(port, "/v2/models/resnet18/infer", jbody, hj, max(5, a.iters // 4))
                rb, b3 = seq(port, "/v2/models/resnet18/infer", bbody, bh, a.iters)
                bj = subprocess.run([a.bin, "bench", os.path.join(a.golden, "resnet18", "model.onnx"),
                                     "-i", "x=" + xfile, "--threads", str(a.threads), "--iters",
                                     str(a.iters), "--json"], capture_output=True, text=True,
                                    check=True)
                ip = json.loads(bj.stdout.strip().splitlines()[-1])["median_ms"]
                ratios.append(rb / ip)
            for b in (b0, b1, b2, b3):
                if b: print("   failures:", b[:3])
            print("%-6d %8.2fms %12.1f %10.2fms %10.2fms %10.2fms %10.3f %8.2f" % (
                rnd, sj, ingest, rj, rb, ip, rb / ip, rj / rb), flush=True)
            print("%-6s %8.2fms %12.1f   (sum_json6: the values rounded to 6 decimals, JSON body "
                  "%d bytes)" % ("", sj6, ingest6, len(jbody6)), flush=True)
        print("median ingest %.1f MB/s of JSON body (%.1f MB/s of tensor data); "
              "median binary e2e / in-process = %.3f (target <= 1.2)"
              % (statistics.median(ingests), statistics.median(ingests) * x.nbytes / len(jbody),
                 statistics.median(ratios) if ratios else float("nan")))
        print("median ingest of the 6-decimal body %.1f MB/s of JSON body (%.1f MB/s of tensor "
              "data)" % (statistics.median(ingests6),
                         statistics.median(ingests6) * x.nbytes / len(jbody6)))
    finally:
        sb.stop(p)
        log.seek(0)
        lines = [l for l in log.read().splitlines() if "serving" not in l and "SIGTERM" not in l]
        if lines: print("server log:", *lines[-5:], sep="\n  ")
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
