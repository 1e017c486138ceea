#!/usr/bin/python3
"""What users write by hand: a threaded Flask + PyTorch server (torch.set_num_threads(N)) with the
golden MLP and ResNet-18 architectures from tests/golden/make_models.py (same seeds; weights do
not matter for throughput) on POST /predict/<model>, taking the same KServe v2 JSON body
inferd takes. The comparison mode runs the same 16-client load generator (serve_batching.py)
against inferd (with and without dynamic batching) and Flask, and prints throughput ratios.

Usage: bench/flask_peer.py [--bin build/inferd] [--golden build/golden] [--threads 2]
                           [--seconds 8] [--clients 16] [--models mlp,resnet18]
       bench/flask_peer.py --serve PORT [--threads 2]     (just the Flask server)
"""
import argparse, importlib.util, json, os, subprocess, sys, tempfile, shutil, logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_batching as sb  # noqa: E402
import numpy as np  # noqa: E402


def serve(port, threads):
    import torch, torchvision
    from flask import Flask, request, jsonify
    torch.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location(
        "make_models", os.path.join(sb.ROOT, "tests", "golden", "make_models.py"))
    mm = importlib.util.module_from_spec(spec); spec.loader.exec_module(mm)
    torch.manual_seed(1); mlp = mm.MLP().eval()
    torch.manual_seed(3); resnet = mm.perturb_batchnorm(torchvision.models.resnet18()).eval()
    models = {"mlp": mlp, "resnet18": resnet}
    app = Flask(__name__)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    @app.route("/predict/<name>", methods=["POST"])
    def predict(name):
        req = request.get_json(force=True)
        inp = req["inputs"][0]
        x = torch.tensor(inp["data"], dtype=torch.float32).reshape(inp["shape"])
        with torch.inference_mode():
            y = models[name](x)
        return jsonify({"model_name": name, "outputs": [
            {"name": "output", "datatype": "FP32", "shape": list(y.shape),
             "data": y.flatten().tolist()}]})

    @app.route("/health")
    def health():
        return "ok"

    app.run(host="127.0.0.1", port=port, threaded=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", type=int)
    ap.add_argument("--bin", default=os.path.join(sb.ROOT, "build", "inferd"))
    ap.add_argument("--golden", default=os.path.join(sb.ROOT, "build", "golden"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--models", default="mlp,resnet18")
    a = ap.parse_args()
    if a.serve:
        return serve(a.serve, a.threads)
    models = a.models.split(",")
    tmp = tempfile.mkdtemp(prefix="sb-flask-")
    names = {}
    for m in models:
        names[m] = (m, None); names[m + "_batch"] = (m, sb.BATCH_CONFIG)
    repo = sb.make_repo(tmp, a.golden, names)
    log = open(os.path.join(tmp, "server.log"), "w+")
    fport = sb.free_port()
    flog = open(os.path.join(tmp, "flask.log"), "w+")
    fp = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", str(fport),
                           "--threads", str(a.threads)], stdout=flog, stderr=subprocess.STDOUT)
    ip = None
    try:
        sb.wait_http(fport, "/health", proc=fp)
        ip, iport = sb.start_server(a.bin, repo, a.threads, log)
        print("inferd --threads %d vs Flask threaded + torch.set_num_threads(%d) (torch %s), "
              "%d clients x %.0f s, same KServe v2 JSON body, %d cores"
              % (a.threads, a.threads, __import__("torch").__version__, a.clients, a.seconds,
                 os.cpu_count()))
        print(sb.HEADER)
        rng = np.random.default_rng(0)
        hj = {"Content-Type": "application/json"}
        for m in models:
            x = rng.standard_normal(sb.SHAPES[m], dtype=np.float32)
            body = sb.kserve_json_body(sb.SHAPES[m], x)
            r = {}
            r["flask"] = sb.run_load(fport, "/predict/" + m, body, hj, a.clients, a.seconds)
            print(sb.fmt_row("%s flask (json)" % m, r["flask"]), flush=True)
            r["inferd"] = sb.run_load(iport, "/v2/models/%s/infer" % m, body, hj, a.clients,
                                      a.seconds)
            print(sb.fmt_row("%s inferd (json)" % m, r["inferd"]), flush=True)
            r["inferd_b"] = sb.run_load(iport, "/v2/models/%s_batch/infer" % m, body, hj,
                                        a.clients, a.seconds)
            print(sb.fmt_row("%s inferd batching (json)" % m, r["inferd_b"]), flush=True)
            if m == "resnet18":
                bbody, bh = sb.kserve_binary_body(sb.SHAPES[m], x,
                                                  sb.output_name(iport, m + "_batch"))
                r["inferd_bin"] = sb.run_load(iport, "/v2/models/%s_batch/infer" % m, bbody,
                                              bh, a.clients, a.seconds)
                print(sb.fmt_row("%s inferd batching (binary)" % m, r["inferd_bin"],
                                 "(not the same body; for reference)"), flush=True)
            for k, v in r.items():
                if v["first_bad"]:
                    print("   %s first failures: %s" % (k, v["first_bad"]))
            f = max(r["flask"]["rps"], 1e-9)
            print("%-30s inferd/flask = %.2fx, inferd batching/flask = %.2fx (target >= 3x)"
                  % (m, r["inferd"]["rps"] / f, r["inferd_b"]["rps"] / f), flush=True)
    finally:
        if ip is not None:
            sb.stop(ip)
        sb.stop(fp)
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
