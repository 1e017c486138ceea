#!/usr/bin/python3
"""Dynamic batching benchmark: 16 concurrent keep-alive clients (threads, http.client) send
batch-1 requests to the golden MLP (KServe v2 JSON) and ResNet-18 (KServe v2 + Triton binary
tensor extension) with and without dynamic batching. Prints req/s, p50/p99 latency, the ratio
batching/no-batching, and inference/execution counts from POST /v2/repository/index.

Usage: bench/serve_batching.py [--bin build/inferd] [--golden build/golden] [--clients 16]
                               [--seconds 8] [--threads N] [--models mlp,resnet18]
Also a library for bench/flask_peer.py and bench/serve_binary.py (run_load, start_server, ...).
"""
import argparse, http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile
import threading, time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH_CONFIG = {"max_batch_size": 32,
                "dynamic_batching": {"max_queue_delay_microseconds": 2000,
                                     "preferred_batch_size": [16]}}
SHAPES = {"mlp": [1, 784], "resnet18": [1, 3, 224, 224]}


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def make_repo(tmp, golden, names):
    """names: {served_name: (golden_name, config dict or None)}"""
    repo = os.path.join(tmp, "repo")
    for served, (gname, cfg) in names.items():
        d = os.path.join(repo, served, "1"); os.makedirs(d)
        os.symlink(os.path.abspath(os.path.join(golden, gname, "model.onnx")),
                   os.path.join(d, "model.onnx"))
        if cfg is not None:
            with open(os.path.join(repo, served, "config.json"), "w") as f:
                json.dump(cfg, f)
    return repo


def wait_http(port, path, timeout=60, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path); r = c.getresponse(); r.read(); c.close()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server on %d not ready" % port)


def start_server(binary, repo, threads, log):
    port = free_port()
    p = subprocess.Popen([binary, "serve", "--model-repository", repo, "--http-address",
                          "127.0.0.1", "--http-port", str(port), "--threads", str(threads)],
                         stdout=log, stderr=subprocess.STDOUT)
    wait_http(port, "/v2/health/ready", proc=p)
    return p, port


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()


def kserve_json_body(shape, arr):
    return json.dumps({"inputs": [{"name": "x", "shape": shape, "datatype": "FP32",
                                   "data": arr.ravel().tolist()}]}).encode()


def kserve_binary_body(shape, arr, out="output"):
    raw = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
    hdr = json.dumps({"inputs": [{"name": "x", "shape": shape, "datatype": "FP32",
                                  "parameters": {"binary_data_size": len(raw)}}],
                      "outputs": [{"name": out, "parameters": {"binary_data": True}}]}).encode()
    return hdr + raw, {"Inference-Header-Content-Length": str(len(hdr)),
                       "Content-Type": "application/octet-stream"}


def output_name(port, model):
    c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/v2/models/" + model)
    meta = json.loads(c.getresponse().read()); c.close()
    return meta["outputs"][0]["name"]


def run_load(port, path, body, headers, clients=16, seconds=8.0, warmup=1.0, check=None):
    """clients threads, each one keep-alive connection, back-to-back POSTs for `seconds`
    after `warmup`. Returns dict(rps, p50_ms, p99_ms, ok, bad, errors)."""
    lat = [[] for _ in range(clients)]
    bad = [0] * clients; errs = [0] * clients; first_bad = []
    start = threading.Barrier(clients + 1)
    t_begin = [0.0]; t_end = [0.0]

    def worker(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end[0]:
                break
            try:
                conn.request("POST", path, body, headers)
                r = conn.getresponse(); data = r.read()
            except (OSError, http.client.HTTPException) as e:
                errs[i] += 1
                if len(first_bad) < 3: first_bad.append(repr(e))
                conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            t1 = time.perf_counter()
            ok = r.status == 200 and (check is None or check(data))
            if not ok:
                bad[i] += 1
                if len(first_bad) < 3: first_bad.append("%d %s" % (r.status, data[:200]))
            elif t0 >= t_begin[0]:
                lat[i].append(t1 - t0)
        conn.close()

    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in ts: t.start()
    now = time.perf_counter(); t_begin[0] = now + warmup; t_end[0] = t_begin[0] + seconds
    start.wait()
    for t in ts: t.join()
    all_lat = sorted(x for l in lat for x in l)
    n = len(all_lat)
    q = lambda f: all_lat[min(n - 1, int(f * n))] * 1e3 if n else float("nan")
    return {"rps": n / seconds, "p50_ms": q(0.50), "p99_ms": q(0.99), "ok": n,
            "bad": sum(bad), "errors": sum(errs), "first_bad": first_bad}


def repo_index(port):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("POST", "/v2/repository/index", b"{}", {"Content-Type": "application/json"})
    r = json.loads(c.getresponse().read()); c.close()
    return {m["name"]: m for m in r}


def fmt_row(name, s, extra=""):
    return "%-30s %9.1f %9.2f %9.2f %6d %5d %s" % (name, s["rps"], s["p50_ms"], s["p99_ms"],
                                                  s["bad"], s["errors"], extra)


HEADER = "%-30s %9s %9s %9s %6s %5s %s" % ("config", "req/s", "p50_ms", "p99_ms", "bad",
                                           "err", "notes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "inferd"))
    ap.add_argument("--golden", default=os.path.join(ROOT, "build", "golden"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--models", default="mlp,resnet18")
    a = ap.parse_args()
    models = a.models.split(",")
    tmp = tempfile.mkdtemp(prefix="sb-batch-")
    names = {}
    for m in models:
        names[m + "_nobatch"] = (m, None)
        names[m + "_batch"] = (m, BATCH_CONFIG)
    repo = make_repo(tmp, a.golden, names)
    log = open(os.path.join(tmp, "server.log"), "w+")
    p, port = start_server(a.bin, repo, a.threads, log)
    rng = np.random.default_rng(0)
    print("inferd serve --threads %d, %d clients x %.0f s, batch-1 requests, %d cores"
          % (a.threads, a.clients, a.seconds, os.cpu_count()))
    print("batching config: %s" % json.dumps(BATCH_CONFIG))
    print(HEADER)
    try:
        for m in models:
            x = rng.standard_normal(SHAPES[m], dtype=np.float32)
            if m == "resnet18":
                body, headers = kserve_binary_body(SHAPES[m], x, output_name(port, m + "_batch"))
                enc = "binary"
            else:
                body = kserve_json_body(SHAPES[m], x); enc = "json"
                headers = {"Content-Type": "application/json"}
            res = {}
            for variant in ("nobatch", "batch"):
                name = "%s_%s" % (m, variant)
                before = repo_index(port)[name]
                s = run_load(port, "/v2/models/%s/infer" % name, body, headers,
                             a.clients, a.seconds)
                after = repo_index(port)[name]
                ni = after["inference_count"] - before["inference_count"]
                ne = after["execution_count"] - before["execution_count"]
                res[variant] = s
                print(fmt_row("%s (%s)" % (name, enc), s,
                              "inferences=%d executions=%d avg_batch=%.2f" %
                              (ni, ne, ni / ne if ne else 0)), flush=True)
                if s["first_bad"]:
                    print("   first failures:", s["first_bad"])
            print("%-30s ratio batch/nobatch = %.2fx (target >= 1.5x)" %
                  (m, res["batch"]["rps"] / max(res["nobatch"]["rps"], 1e-9)), flush=True)
    finally:
        stop(p)
        log.seek(0); lines = [l for l in log.read().splitlines() if "serving" not in l and "SIGTERM" not in l]
        if lines:
            print("server log (last 5):", *lines[-5:], sep="\n  ")
        print("server exit code:", p.returncode)
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
