#!/usr/bin/env python3
"""Monitoring end to end (issue 4 acceptance), over real sockets:
  1. traffic of known count and known latency distribution (the server's test hook makes session
     runs sleep 12, 60, 300 ms in turn) -> every inferd metric and histogram bucket on /metrics;
  2. the same values read back through a real Prometheus server scraping this inferd;
  3. drift: an unshifted input stream stays under the threshold, a shifted one goes over it, and
     the deploy/ alert rule fires in a promtool rule test built from the scores measured here;
  4. the dashboard in headless Chromium: no console error, its table and charts show the
     traffic; a screenshot is saved to build/dashboard.png.
Steps 2 and 4 need Debian's prometheus and chromium packages; without them they fail (the
install script installs both for the tests).
Usage: test_monitoring.py INFERD [ONNX_TESTS]   (standard library only)"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, finish, free_port, report, test  # noqa: E402
from test_repository import add_model, call, publish  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
BUILD_OUT = os.environ.get("IFD_TEST_OUT", os.path.join(ROOT, "build"))
# ms, in turn, for every session run: each at least 12 ms below the next bucket bound, so the
# bucket of every request is known even on a busy machine
DELAYS = (12, 60, 300)
PER_DELAY = 4               # requests at each delay
BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
          2.5, 5, 10]


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "unparsable line: %r" % line
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric(ms, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in ms, "no %s%s on /metrics" % (name, labels)
    return ms[key]


def scrape(srv):
    st, body = call(srv, "GET", "/metrics")
    assert st == 200, st
    return body.decode() if isinstance(body, bytes) else str(body)


def infer_x(srv, model, x):
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x}]}
    return call(srv, "POST", "/v2/models/%s/infer" % model, body)


# ---- 1 and 2: known traffic, /metrics and Prometheus ------------------------------------------------

def expected_buckets(latencies, slack):
    """Cumulative counts per bound, with every latency between its value and value + slack;
    None where that range straddles a bound (a bucket the test cannot predict)."""
    out = []
    for b in BOUNDS:
        lo = sum(1 for v in latencies if v + slack <= b)
        hi = sum(1 for v in latencies if v <= b)
        out.append(lo if lo == hi else None)
    return out


def known_traffic_tests(tmp):
    root = os.path.join(tmp, "repo-known")
    publish(root, "slow", 1, add_model(1.0))
    publish(root, "other", 1, add_model(2.0))
    mport = free_port()
    srv = Server(root, ["--metrics-port", str(mport)],
                 env={"IFD_SERVE_TEST_INFER_DELAY_MS": ",".join(map(str, DELAYS))})
    n = PER_DELAY * len(DELAYS)
    try:
        base = parse_metrics(scrape(srv))
        for i in range(n):
            st, r = infer_x(srv, "slow", [1, 2, 3, 4])
            assert st == 200, r
        for _ in range(3):  # invalid requests on another model: outcome invalid_input there
            st, _ = call(srv, "POST", "/v2/models/other/infer", {"inputs": [{"name": "x"}]})
            assert st == 400
        time.sleep(1.2)  # one history point after the traffic
        text = scrape(srv)
        ms = parse_metrics(text)

        def counters():
            lab = {"model": "slow", "version": "1"}
            assert metric(ms, "inferd_requests_total", outcome="success", **lab) == n
            for o in ("invalid_input", "not_found", "queue_full", "timeout", "internal"):
                assert metric(ms, "inferd_requests_total", outcome=o, **lab) == 0, o
            assert metric(ms, "inferd_requests_total", model="other", version="1",
                          outcome="invalid_input") == 3
            assert metric(ms, "inferd_inferences_total", **lab) == n
            assert metric(ms, "inferd_executions_total", **lab) == n
            assert metric(ms, "inferd_pending_requests", **lab) == 0
            assert metric(ms, "inferd_model_loaded", **lab) == 1
            assert metric(ms, "inferd_model_load_duration_seconds", **lab) > 0
            codes = {"200": n, "400": 3}
            for code, want in codes.items():
                before = base.get(("inferd_http_requests_total", frozenset({"code": code}.items())), 0)
                got = metric(ms, "inferd_http_requests_total", code=code) - before
                # the /metrics scrape itself answers 200 once between the two readings
                assert got == want + (1 if code == "200" else 0), (code, got, want)
        test(counters, "metrics_counters_exact")

        def histograms():
            lab = {"model": "slow", "version": "1"}
            slack = 0.012  # server time besides the sleep, at most
            lat = [d / 1000 for d in DELAYS for _ in range(PER_DELAY)]
            for name in ("inferd_request_duration_seconds", "inferd_compute_duration_seconds"):
                want = expected_buckets(lat, slack)
                for b, w in zip(BOUNDS, want):
                    got = metric(ms, name + "_bucket", le=fmt_le(b), **lab)
                    assert w is None or got == w, "%s le=%s: %s, want %s" % (name, b, got, w)
                assert metric(ms, name + "_bucket", le="+Inf", **lab) == n
                assert metric(ms, name + "_count", **lab) == n
                s = metric(ms, name + "_sum", **lab)
                assert sum(lat) <= s <= sum(lat) + n * slack, (name, s, sum(lat))
            for name in ("inferd_queue_duration_seconds", "inferd_input_duration_seconds",
                         "inferd_output_duration_seconds"):
                # sequential requests: nothing queues; decode and encode of 4 floats are fast
                assert metric(ms, name + "_bucket", le=fmt_le(0.025), **lab) == n, name
                assert metric(ms, name + "_count", **lab) == n, name
            for b in (1, 2, 4, 1024):
                assert metric(ms, "inferd_batch_size_bucket", le=fmt_le(b), **lab) == n
            assert metric(ms, "inferd_batch_size_sum", **lab) == n
            # failures observe the request duration only
            assert metric(ms, "inferd_request_duration_seconds_count", model="other",
                          version="1") == 3
            assert metric(ms, "inferd_compute_duration_seconds_count", model="other",
                          version="1") == 0
        test(histograms, "metrics_histogram_buckets_exact")

        def server_series():
            for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                         "process_start_time_seconds", "inferd_allocator_bytes",
                         "inferd_uptime_seconds", "inferd_http_open_connections"):
                assert any(k[0] == name for k in ms), name
            assert metric(ms, "process_resident_memory_bytes") > 1e6
            assert any(k[0] == "inferd_build_info" for k in ms)
            st, _ = call(srv, "GET", "/metrics")
            assert st == 200
            c = srv.conn()
            c.request("GET", "/metrics")
            r = c.getresponse()
            r.read()
            assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4"), \
                r.getheader("Content-Type")
        test(server_series, "metrics_server_series")

        def metrics_port():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10) as r:
                other = parse_metrics(r.read().decode())
            key = ("inferd_requests_total", frozenset({"model": "slow", "version": "1",
                                                       "outcome": "success"}.items()))
            assert other[key] == n, other.get(key)
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2" % mport, timeout=10)
                raise AssertionError("the metrics port served /v2")
            except urllib.error.HTTPError as e:
                assert e.code == 404, e.code
        test(metrics_port, "metrics_on_its_own_port")

        def history():
            st, body = call(srv, "GET", "/api/stats")
            assert st == 200, st
            h = body["history"]
            m = [x for x in h["models"] if x["model"] == "slow"][0]
            assert len(m["t"]) >= 1 and max(v or 0 for v in m["request_rate"]) > 0, m
            assert any(e["name"] == "slow" and e["state"] == "READY" for e in body["repository"])
            d = [x for x in body["drift"] if x["model"] == "slow"][0]
            x = [t for t in d["summary"]["tensors"] if t["name"] == "x"][0]
            assert x["kind"] == "input" and x["count"] == 4 * n, x
            assert x["mean"] == 2.5 and x["min"] == 1 and x["max"] == 4 and x["nan"] == 0, x
            assert x["score"] is None, "no baseline, no score: %s" % x
            st, _ = call(srv, "GET", "/api/stats?since=abc")
            assert st == 400
        test(history, "stats_endpoint")

        prometheus_tests(tmp, srv, ms, n)
    finally:
        rc = srv.stop()
        report("known_traffic_server_exits_0", rc == 0, "exit %s" % rc)


def fmt_le(b):
    """The le label as the server prints it (Prometheus' float format)."""
    s = repr(float(b))
    return s[:-2] if s.endswith(".0") else s


def prometheus_tests(tmp, srv, ms, n):
    """Let a real Prometheus scrape the running server; read the values back over its API."""
    if not shutil.which("prometheus"):
        report("prometheus_reads_the_same_values", False, "prometheus is not installed")
        return
    port = free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: inferd\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % srv.port)
    proc = subprocess.Popen(
        ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
         "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=10) as r:
            data = json.load(r)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def check():
        end = time.time() + 60
        res = []
        while time.time() < end:
            try:
                res = query('inferd_requests_total{model="slow",outcome="success"}')
                if res:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert res and float(res[0]["value"][1]) == n, res
        assert res[0]["metric"]["job"] == "inferd"
        for b in ("0.005", "0.05", "0.5", "+Inf"):
            r = query('inferd_request_duration_seconds_bucket{model="slow",le="%s"}' % b)
            want = metric(ms, "inferd_request_duration_seconds_bucket", model="slow",
                          version="1", le=b)
            assert r and float(r[0]["value"][1]) == want, (b, r, want)
        r = query('histogram_quantile(0.5, inferd_request_duration_seconds_bucket{model="slow"})')
        assert r and 0.05 <= float(r[0]["value"][1]) <= 0.1, r
        r = query('inferd_model_loaded{model="slow"}')
        assert r and float(r[0]["value"][1]) == 1, r
    try:
        test(check, "prometheus_reads_the_same_values")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- 3: drift ----------------------------------------------------------------------------------------

def read_npy_f32(path):
    b = open(path, "rb").read()
    hlen = struct.unpack("<H", b[8:10])[0]
    header = b[10:10 + hlen].decode()
    shape = tuple(int(x) for x in re.search(r"\((.*?)\)", header).group(1).split(",") if x.strip())
    n = 1
    for d in shape:
        n *= d
    return shape, struct.unpack("<%df" % n, b[10 + hlen:10 + hlen + 4 * n])


def drift_tests(tmp, inferd):
    root = os.path.join(tmp, "repo-drift")
    shutil.copytree(os.path.join(EXAMPLES, "models", "digits"), os.path.join(root, "digits"))
    model = os.path.join(root, "digits", "1", "model.onnx")
    r = subprocess.run([inferd, "baseline", model, "--data", os.path.join(EXAMPLES, "data", "test")],
                       capture_output=True, text=True, timeout=120)
    report("baseline_written", r.returncode == 0 and os.path.exists(
        os.path.join(root, "digits", "1", "baseline.json")), r.stderr[-300:])
    with open(os.path.join(root, "digits", "config.json"), "w") as f:
        json.dump({"max_batch_size": 64, "drift": {"threshold": 0.2, "window": 5000}}, f)
    shape, pixels = read_npy_f32(os.path.join(EXAMPLES, "data", "test", "image.npy"))
    per = shape[1] * shape[2] * shape[3]
    srv = Server(root)
    scores = {}
    try:
        def send(rows, transform):
            for k in range(0, len(rows), 8):
                chunk = rows[k:k + 8]
                data = [transform(v) for i in chunk for v in pixels[i * per:(i + 1) * per]]
                body = {"inputs": [{"name": "image", "shape": [len(chunk), 1, 8, 8],
                                    "datatype": "FP32", "data": data}]}
                st, r = call(srv, "POST", "/v2/models/digits/infer", body)
                assert st == 200, r

        def score(tensor):
            ms = parse_metrics(scrape(srv))
            return metric(ms, "inferd_drift_score", model="digits", version="1", tensor=tensor), \
                metric(ms, "inferd_drift_threshold", model="digits", version="1")

        def unshifted_stays_under():
            send(list(range(shape[0])), lambda v: v)
            s, t = score("image")
            scores["unshifted"] = s
            assert t == 0.2 and s < t, "unshifted score %g, threshold %g" % (s, t)
        test(unshifted_stays_under, "drift_unshifted_under_threshold")

        def shifted_goes_over():
            send(list(range(shape[0])) * 2, lambda v: min(1.0, v * 0.5 + 0.5))
            s, t = score("image")
            scores["shifted"] = s
            assert s > t, "shifted score %g, threshold %g" % (s, t)
        test(shifted_goes_over, "drift_shifted_over_threshold")
    finally:
        srv.stop()

    def alert_fires_in_promtool():
        assert "unshifted" in scores and "shifted" in scores, scores
        if not shutil.which("promtool"):
            raise AssertionError("promtool is not installed")
        rules = os.path.join(ROOT, "deploy", "rules", "inferd.rules.yml")
        lab = 'job="inferd",instance="inferd-1:8000",model="digits",version="1"'
        t = os.path.join(tmp, "drift.test.yml")
        with open(t, "w") as f:
            f.write("""rule_files: [%s]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'inferd_drift_score{%s,tensor="image"}'
        values: '%.6gx20 %.6gx40'
      - series: 'inferd_drift_threshold{%s}'
        values: '0.2x60'
    alert_rule_test:
      - eval_time: 19m
        alertname: InferdDrift
        exp_alerts: []
      - eval_time: 45m
        alertname: InferdDrift
        exp_alerts:
          - exp_labels: {severity: warning, job: inferd, instance: "inferd-1:8000", model: digits, version: "1", tensor: image}
            exp_annotations:
              summary: "digits version 1: tensor image drifted (score %.3f)"
              description: "The population stability index of image against its baseline has been over the version's drift threshold for 15 minutes: the data the model sees has changed."
""" % (json.dumps(rules), lab, scores["unshifted"], scores["shifted"], lab,
       float("%.6g" % scores["shifted"])))
        r = subprocess.run(["promtool", "test", "rules", t], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout[-800:] + r.stderr[-800:]
    test(alert_fires_in_promtool, "drift_alert_fires_on_measured_scores")


# ---- 4: the dashboard in headless Chromium -----------------------------------------------------------

def dashboard_tests(tmp):
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chrome:
        report("dashboard_in_chromium", False, "chromium is not installed")
        return
    root = os.path.join(tmp, "repo-dash")
    publish(root, "dash", 1, add_model(1.0))
    srv = Server(root)
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            infer_x(srv, "dash", [1, 2, 3, 4])
            time.sleep(0.01)
    th = threading.Thread(target=traffic)
    th.start()
    try:
        time.sleep(2.5)
        os.makedirs(BUILD_OUT, exist_ok=True)
        shot = os.path.join(BUILD_OUT, "dashboard.png")
        profile = os.path.join(tmp, "chrome-profile")
        base = [chrome, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--user-data-dir=" + profile, "--window-size=1400,1000",
                "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"]
        url = "http://127.0.0.1:%d/" % srv.port
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=120)
        png = subprocess.run(base + ["--screenshot=" + shot, url], capture_output=True,
                             text=True, timeout=120)

        def page_shows_traffic():
            html = dom.stdout
            assert "<title>inferd</title>" in html, html[:300]
            err = re.search(r'<div id="error">(.*?)</div>', html, re.S)
            assert err and err.group(1).strip() == "", "page error: %r" % (err and err.group(1))
            row = re.search(r"<tr><td>dash</td><td>1</td><td class=\"READY\">READY</td>"
                            r"<td>([^<]+)</td><td>([^<]+)</td>", html)
            assert row, "no READY row for the model"
            rate = float(row.group(1).rstrip("/s"))
            assert rate > 0, "requests/s shown: %s" % row.group(1)
            assert row.group(2) != "-", "p99 shown: %s" % row.group(2)
            assert html.count("<canvas") >= 8, "charts: %d" % html.count("<canvas")
            assert "<td>x</td><td>input</td>" in html, "drift summary table of input x"
            assert "<td>y</td><td>output</td>" in html, "drift summary table of output y"
            nows = re.findall(r'<span class="now">([^<]*)</span>', html)
            assert any(re.match(r"[0-9.]+/s", x) and not x.startswith("0.0/s") for x in nows), nows
        test(page_shows_traffic, "dashboard_shows_traffic")

        def no_console_errors():
            logs = dom.stderr + png.stderr
            bad = [l for l in logs.splitlines() if "CONSOLE" in l and
                   ("error" in l.lower() or "Uncaught" in l)]
            assert not bad, bad[:3]
            assert png.returncode == 0 and os.path.getsize(shot) > 10000, png.stderr[-300:]
            print("screenshot: %s" % shot)
        test(no_console_errors, "dashboard_no_console_errors_screenshot")
    finally:
        stop.set()
        th.join(30)
        srv.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="ifd-mon-")
    try:
        known_traffic_tests(tmp)
        drift_tests(tmp, os.path.abspath(sys.argv[1]))
        dashboard_tests(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
