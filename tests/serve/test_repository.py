#!/usr/bin/env python3
"""Repository management over real sockets: poll mode (new, removed, replaced, broken and
half-written versions), SIGHUP rescans, explicit load/unload, version labels and the traffic
split, config input/output overrides, requests in flight while their version is unloaded, and a
load/unload loop under concurrent traffic (run under ASan by scripts/test.sh).
Usage: test_repository.py INFERD [ONNX_TESTS]   (standard library only)"""
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import pb_field as _field, BIN as BIN_PATH, Server, finish, report, test  # noqa: E402

POLL = 1  # --repository-poll-secs in poll-mode tests


# ---- models built by hand (protobuf wire format): y = x + c, x float [batch, 4] -------------------

def add_model(c):
    """opset 13: y = x + c with c a float scalar initializer; x [batch, 4], y [batch, 4]."""
    def value_info(name, dims):
        shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d))
                         for d in dims)
        return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))
    init = _field(2, 1) + _field(4, struct.pack("<f", c)) + _field(8, "c")
    node = _field(1, "x") + _field(1, "c") + _field(2, "y") + _field(4, "Add")
    graph = (_field(1, node) + _field(2, "g") + _field(5, init) +
             _field(11, value_info("x", ["batch", 4])) + _field(12, value_info("y", ["batch", 4])))
    return _field(1, 8) + _field(8, _field(1, "") + _field(2, 13)) + _field(7, graph)


def publish(root, model, version, data, config=None):
    """The documented atomic way: write into a hidden folder, then rename it into place."""
    mdir = os.path.join(root, model)
    os.makedirs(mdir, exist_ok=True)
    tmp = os.path.join(mdir, ".tmp-%d" % version)
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "model.onnx"), "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(mdir, str(version)))
    if config is not None:
        write_config(root, model, config)


def write_config(root, model, config):
    path = os.path.join(root, model, "config.json")
    with open(path + ".tmp", "w") as f:
        json.dump(config, f)
    os.rename(path + ".tmp", path)


def replace_file(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


# ---- requests ------------------------------------------------------------------------------------

def call(srv, method, path, body=None, timeout=60, raw=False):
    c = srv.conn(timeout)
    try:
        c.request(method, path, body=body if raw or body is None else json.dumps(body))
        r = c.getresponse()
        data = r.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return r.status, parsed
    finally:
        c.close()


def infer(srv, model, version=None, x=0.0):
    path = "/v2/models/%s%s/infer" % (model, "/versions/%d" % version if version else "")
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [x] * 4}]}
    st, r = call(srv, "POST", path, body)
    if st != 200:
        return st, r, None
    return st, r, r["outputs"][0]["data"][0] - x


def added(srv, model, version=None):
    """The constant the serving version adds (which version answered), asserting 200."""
    st, r, c = infer(srv, model, version)
    assert st == 200, "infer %s: %d %s" % (model, st, r)
    return round(c)


def wait_for(pred, secs=15.0, what="condition"):
    end = time.time() + secs
    last = None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except AssertionError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %s)" % (what, last))


def index(srv):
    st, r = call(srv, "POST", "/v2/repository/index", {})
    assert st == 200, "index: %d %s" % (st, r)
    return r


def version_states(srv, model):
    return {e.get("version"): (e["state"], e.get("reason", "")) for e in index(srv)
            if e["name"] == model}


# ---- poll mode -----------------------------------------------------------------------------------

def poll_tests():
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "m", 1, add_model(1.0))
        publish(root, "keep", 1, add_model(7.0))
        srv = Server(root, ["--model-control-mode", "poll", "--repository-poll-secs", str(POLL)])
        try:
            def initial_version_serves():
                assert added(srv, "m") == 1
            test(initial_version_serves)

            def new_version_replaces_old():
                publish(root, "m", 2, add_model(2.0))
                wait_for(lambda: added(srv, "m") == 2, what="version 2")
                wait_for(lambda: "1" not in version_states(srv, "m"), what="version 1 unloaded")
                st, r, _ = infer(srv, "m", 1)
                assert st == 404, "version 1 after unload: %d %s" % (st, r)
            test(new_version_replaces_old)

            def broken_version_keeps_old_serving():
                publish(root, "m", 3, b"\x08\x07this is not a model")
                wait_for(lambda: version_states(srv, "m").get("3", ("", ""))[0] == "UNAVAILABLE",
                         what="version 3 failure in the index")
                assert added(srv, "m") == 2, "the previous version must keep serving"
                reason = version_states(srv, "m")["3"][1]
                assert reason and "model.onnx" in reason, "no load error shown: %r" % reason
                assert root not in reason, "the server's path leaks into the error: " + reason
                st, r = call(srv, "GET", "/v1/models/m")
                assert st == 200, r
                states = {s["version"]: s for s in r["model_version_status"]}
                assert states["3"]["state"] == "END" and states["3"]["status"]["error_message"]
                assert states["2"]["state"] == "AVAILABLE", states
            test(broken_version_keeps_old_serving)

            def fixed_version_loads():
                replace_file(os.path.join(root, "m", "3", "model.onnx"), add_model(3.0))
                wait_for(lambda: added(srv, "m") == 3, what="version 3 after the fix")
                wait_for(lambda: "2" not in version_states(srv, "m"), what="version 2 unloaded")
            test(fixed_version_loads)

            def half_written_never_served():
                # model.onnx of version 4 written slowly in place (not the documented way):
                # the partial file must never answer a request; version 3 serves until the
                # file is complete, then version 4.
                data = add_model(4.0)
                os.makedirs(os.path.join(root, "m", "4"))
                path = os.path.join(root, "m", "4", "model.onnx")
                with open(path, "wb") as f:
                    f.write(data[:len(data) // 2])
                    f.flush()
                    end = time.time() + 2.5 * POLL
                    while time.time() < end:
                        assert added(srv, "m") == 3, "a half-written version answered"
                        time.sleep(0.05)
                    f.write(data[len(data) // 2:])
                wait_for(lambda: added(srv, "m") == 4, what="version 4 once complete")
            test(half_written_never_served)

            def reload_replaced_file_same_version():
                replace_file(os.path.join(root, "m", "4", "model.onnx"), add_model(40.0))
                wait_for(lambda: added(srv, "m") == 40, what="version 4 reloaded")
            test(reload_replaced_file_same_version)

            def failed_reload_keeps_loaded_version():
                replace_file(os.path.join(root, "m", "4", "model.onnx"), b"garbage")
                wait_for(lambda: version_states(srv, "m")["4"][1], what="reload error shown")
                state, reason = version_states(srv, "m")["4"]
                assert state == "READY" and "reload failed" in reason, (state, reason)
                assert added(srv, "m") == 40
                replace_file(os.path.join(root, "m", "4", "model.onnx"), add_model(4.0))
                wait_for(lambda: added(srv, "m") == 4, what="version 4 repaired")
            test(failed_reload_keeps_loaded_version)

            def config_change_applies():
                write_config(root, "m", {"version_policy": {"all": {}},
                                         "version_labels": {"stable": 3, "canary": 4}})
                wait_for(lambda: set(version_states(srv, "m")) >= {"1", "2", "3", "4"},
                         what="policy all loads every version")
                assert added(srv, "m", 1) == 1 and added(srv, "m", 2) == 2
                st, r = call(srv, "POST", "/v1/models/m/labels/stable:predict",
                             {"instances": [[0, 0, 0, 0]]})
                assert st == 200 and r["predictions"][0][0] == 3, (st, r)
                st, r = call(srv, "POST", "/v1/models/m/labels/canary:predict",
                             {"instances": [[0, 0, 0, 0]]})
                assert st == 200 and r["predictions"][0][0] == 4, (st, r)
                st, r = call(srv, "POST", "/v1/models/m/labels/nope:predict",
                             {"instances": [[0, 0, 0, 0]]})
                assert st == 404 and "nope" in r["error"], (st, r)
                st, r = call(srv, "GET", "/v1/models/m/labels/canary")
                assert st == 200 and [s["version"] for s in r["model_version_status"]] == ["4"], r
            test(config_change_applies)

            def bad_config_keeps_serving():
                write_config(root, "m", {"version_policy": {"all": {}}, "bogus_field": 1})
                wait_for(lambda: any("bogus_field" in e.get("reason", "") for e in index(srv)
                                     if e["name"] == "m"), what="config error in the index")
                assert added(srv, "m", 3) == 3 and added(srv, "m") == 4
            test(bad_config_keeps_serving)

            def removed_version_and_model():
                write_config(root, "m", {"version_policy": {"all": {}}})
                shutil.rmtree(os.path.join(root, "m", "1"))
                wait_for(lambda: "1" not in version_states(srv, "m"), what="version 1 removed")
                shutil.rmtree(os.path.join(root, "keep"))
                wait_for(lambda: infer(srv, "keep")[0] == 404, what="model gone -> 404")
                assert all(e["name"] != "keep" for e in index(srv))
            test(removed_version_and_model)

            def new_model_appears():
                publish(root, "late", 1, add_model(5.0))
                wait_for(lambda: infer(srv, "late")[0] == 200, what="new model served")
                assert added(srv, "late") == 5
            test(new_model_appears)

            def load_api_refused_in_poll_mode():
                st, r = call(srv, "POST", "/v2/repository/models/m/load", {})
                assert st == 400 and "explicit" in r["error"], (st, r)
            test(load_api_refused_in_poll_mode)
        finally:
            rc = srv.stop()
            report("poll_server_exits_0", rc == 0, "exit %s: %s" % (rc, "".join(srv.err)[-2000:]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- traffic split -------------------------------------------------------------------------------

def traffic_tests():
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "t", 1, add_model(1.0))
        publish(root, "t", 2, add_model(2.0), {"version_policy": {"all": {}},
                                               "traffic": {"1": 90, "2": 10}})
        srv = Server(root)
        try:
            def split_is_90_10():
                seen = {1: 0, 2: 0}
                for _ in range(200):
                    seen[added(srv, "t")] += 1
                assert seen == {1: 180, 2: 20}, seen
                assert added(srv, "t", 2) == 2, "an explicit version bypasses the split"
            test(split_is_90_10)

            def sighup_rescans():
                publish(root, "t", 3, add_model(3.0), {"version_policy": {"all": {}},
                                                       "traffic": {"2": 1, "3": 1}})
                time.sleep(0.2)
                srv.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "3" in version_states(srv, "t"), what="version 3 after SIGHUP")
                seen = {1: 0, 2: 0, 3: 0}
                for _ in range(40):
                    seen[added(srv, "t")] += 1
                assert seen == {1: 0, 2: 20, 3: 20}, seen
            test(sighup_rescans)

            def split_skips_unavailable_version():
                shutil.rmtree(os.path.join(root, "t", "3"))
                srv.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "3" not in version_states(srv, "t"), what="version 3 removed")
                assert all(added(srv, "t") == 2 for _ in range(10))
            test(split_skips_unavailable_version)
        finally:
            rc = srv.stop()
            report("traffic_server_exits_0", rc == 0, "exit %s: %s" % (rc, "".join(srv.err)[-2000:]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def config_error_tests():
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    cases = {
        "badlabel": ({"version_labels": {"9x": 1}}, "version_labels"),
        "badtraffic": ({"traffic": {"one": 1}}, "traffic"),
        "zerotraffic": ({"traffic": {"1": 0}}, "traffic"),
        "badio": ({"input": [{"name": "nope", "data_type": "TYPE_FP32", "dims": [4]}]}, "nope"),
        "badtype": ({"input": [{"name": "x", "data_type": "TYPE_INT8", "dims": [-1, 4]}]},
                    "data_type"),
        "baddims": ({"input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [-1, 5]}]},
                    "dim 1"),
        "badiokey": ({"output": [{"name": "y", "shape": [4]}]}, "output[0].shape"),
        "ok_io": ({"max_batch_size": 8, "input": [{"name": "x", "data_type": "TYPE_FP32",
                                                    "dims": [4]}],
                   "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [4]}]}, None),
        "fixdim": ({"input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [2, 4]}]}, None),
    }
    try:
        for name, (cfg, _) in cases.items():
            publish(root, name, 1, add_model(1.0), cfg)
        srv = Server(root)
        try:
            states = {e["name"]: e for e in index(srv)}
            for name, (_, needle) in cases.items():
                def check(name=name, needle=needle):
                    st, r, _ = infer(srv, name)
                    if needle is None:
                        assert st == 200 or name == "fixdim", "%s: %d %s" % (name, st, r)
                        return
                    assert st == 503, "%s: %d %s" % (name, st, r)
                    assert needle in states[name]["reason"], states[name]
                test(check, "config_error_" + name)

            def io_override_narrows_dims():
                st, r = call(srv, "GET", "/v2/models/fixdim")
                assert st == 200 and r["inputs"][0]["shape"] == [2, 4], r
                body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                    "data": [0] * 4}]}
                st, r = call(srv, "POST", "/v2/models/fixdim/infer", body)
                assert st == 400, "batch 1 against a config fixing it to 2: %d %s" % (st, r)
                body["inputs"][0]["shape"] = [2, 4]
                body["inputs"][0]["data"] = [0] * 8
                st, r = call(srv, "POST", "/v2/models/fixdim/infer", body)
                assert st == 200, r
            test(io_override_narrows_dims)
        finally:
            srv.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- explicit mode -------------------------------------------------------------------------------

def explicit_tests():
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "a", 1, add_model(1.0))
        publish(root, "b", 1, add_model(2.0))
        publish(root, "broken", 1, b"not a model")
        srv = Server(root, ["--model-control-mode", "explicit", "--load-model", "a"],
                     env={"IFD_SERVE_TEST_INFER_DELAY_MS": "0"})
        try:
            def only_named_model_loaded():
                assert added(srv, "a") == 1
                st, r, _ = infer(srv, "b")
                assert st == 503 and "unloaded" in r["error"], (st, r)
                entries = {e["name"]: e for e in index(srv)}
                assert entries["b"]["state"] == "UNAVAILABLE", entries
                assert entries["b"]["reason"] == "unloaded", entries
            test(only_named_model_loaded)

            def load_and_unload():
                st, r = call(srv, "POST", "/v2/repository/models/b/load", {})
                assert st == 200, (st, r)
                assert added(srv, "b") == 2
                st, r = call(srv, "POST", "/v2/repository/models/b/unload", {})
                assert st == 200, (st, r)
                st, r, _ = infer(srv, "b")
                assert st == 503, (st, r)
                st, r = call(srv, "POST", "/v2/repository/models/b/load")
                assert st == 200, "load without a body: %d %s" % (st, r)
                assert added(srv, "b") == 2
            test(load_and_unload)

            def load_errors():
                st, r = call(srv, "POST", "/v2/repository/models/broken/load", {})
                assert st == 400 and "broken" in r["error"], (st, r)
                st, r = call(srv, "POST", "/v2/repository/models/nothere/load", {})
                assert st == 404, (st, r)
                for bad in ["..", "%2e%2e", "a%2fb", "x" * 5000]:
                    st, r = call(srv, "POST", "/v2/repository/models/%s/load" % bad, {})
                    assert st in (400, 404), "%s: %d %s" % (bad[:20], st, r)
                st, r = call(srv, "GET", "/v2/repository/models/a/load")
                assert st in (400, 405), "GET load: %d" % st
                assert added(srv, "a") == 1, "other models keep serving"
            test(load_errors)

            def reload_picks_up_new_version():
                publish(root, "a", 2, add_model(3.0))
                assert added(srv, "a") == 1, "explicit mode does not poll"
                st, r = call(srv, "POST", "/v2/repository/models/a/load", {})
                assert st == 200, (st, r)
                assert added(srv, "a") == 3
            test(reload_picks_up_new_version)

            def index_ready_filter():
                st, r = call(srv, "POST", "/v2/repository/index", {"ready": True})
                assert st == 200, r
                assert all(e["state"] == "READY" for e in r), r
                assert {e["name"] for e in r} == {"a", "b"}, r
            test(index_ready_filter)
        finally:
            rc = srv.stop()
            report("explicit_server_exits_0", rc == 0, "exit %s: %s" % (rc, "".join(srv.err)[-2000:]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def inflight_unload_tests():
    """A request running when its version is unloaded finishes on that version."""
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "slow", 1, add_model(1.0))
        srv = Server(root, ["--model-control-mode", "explicit", "--load-model", "*"],
                     env={"IFD_SERVE_TEST_INFER_DELAY_MS": "700"})
        try:
            def inflight_finishes():
                out = {}
                t = threading.Thread(target=lambda: out.update(r=infer(srv, "slow")))
                t.start()
                time.sleep(0.25)
                st, r = call(srv, "POST", "/v2/repository/models/slow/unload", {})
                assert st == 200, (st, r)
                t.join(30)
                st, r, c = out["r"]
                assert st == 200 and round(c) == 1, "in-flight request: %d %s" % (st, r)
                st, r, _ = infer(srv, "slow")
                assert st == 503, "after unload: %d %s" % (st, r)
            test(inflight_finishes)
        finally:
            rc = srv.stop()
            report("inflight_server_exits_0", rc == 0, "exit %s" % rc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remote_management_tests():
    """The repository API answers 403 to a non-loopback peer unless allowed."""
    try:
        addr = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                              timeout=5).stdout.split()
    except Exception:  # noqa: BLE001
        addr = []
    addr = [a for a in addr if "." in a and not a.startswith("127.")]
    if not addr:
        report("remote_management_refused", True)  # no second address: nothing to reach
        print("note: no non-loopback IPv4 address; the remote check is vacuous here")
        return
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "a", 1, add_model(1.0))
        for allow in (False, True):
            srv = Server(root, ["--model-control-mode", "explicit", "--load-model", "a",
                                "--http-address", "0.0.0.0"] +
                         (["--allow-remote-management"] if allow else []))
            try:
                def check(allow=allow):
                    import http.client
                    c = http.client.HTTPConnection(addr[0], srv.port, timeout=10)
                    c.request("POST", "/v2/repository/models/a/unload", body="{}")
                    r = c.getresponse()
                    r.read()
                    c.close()
                    assert r.status == (200 if allow else 403), r.status
                    c = http.client.HTTPConnection(addr[0], srv.port, timeout=10)
                    c.request("GET", "/v2/health/live")
                    r = c.getresponse()
                    r.read()
                    assert r.status == 200, "the rest of the API stays remote: %d" % r.status
                test(check, "remote_management_" + ("allowed" if allow else "refused"))
            finally:
                srv.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- load/unload loop under traffic ---------------------------------------------------------------

def churn_tests(seconds):
    """Clients hammer two models while another thread loads, unloads and republishes one of them.
    Every reply must be 200 with a plausible answer or a documented 503; the other model never
    fails; the server exits 0 (and ASan, when on, finds nothing)."""
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "churn", 1, add_model(1.0))
        publish(root, "steady", 1, add_model(9.0))
        srv = Server(root, ["--model-control-mode", "explicit", "--load-model", "*"])
        stop = time.time() + seconds
        bad = []
        stats = {"ok": 0, "503": 0, "steady": 0, "cycles": 0}
        lock = threading.Lock()

        def client(model):
            c = srv.conn(30)
            body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                           "data": [0, 0, 0, 0]}]})
            while time.time() < stop:
                try:
                    c.request("POST", "/v2/models/%s/infer" % model, body=body)
                    r = c.getresponse()
                    data = r.read()
                except (OSError, ConnectionError) as e:
                    bad.append("%s: %s" % (model, e))
                    c = srv.conn(30)
                    continue
                with lock:
                    if r.status == 200:
                        v = round(json.loads(data)["outputs"][0]["data"][0])
                        if model == "steady":
                            stats["steady"] += 1
                            if v != 9:
                                bad.append("steady answered %d" % v)
                        else:
                            stats["ok"] += 1
                            if v not in (1, 2):
                                bad.append("churn answered %d" % v)
                    elif r.status == 503 and model == "churn":
                        stats["503"] += 1
                    else:
                        bad.append("%s: %d %s" % (model, r.status, data[:200]))

        def churner():
            n = 0
            while time.time() < stop:
                n += 1
                st, r = call(srv, "POST", "/v2/repository/models/churn/unload", {})
                if st != 200:
                    bad.append("unload %d %s" % (st, r))
                time.sleep(0.02)
                replace_file(os.path.join(root, "churn", "1", "model.onnx"),
                             add_model(float(1 + n % 2)))
                st, r = call(srv, "POST", "/v2/repository/models/churn/load", {})
                if st != 200:
                    bad.append("load %d %s" % (st, r))
                time.sleep(0.05)
                with lock:
                    stats["cycles"] += 1

        threads = [threading.Thread(target=client, args=(m,)) for m in
                   ("churn", "churn", "churn", "steady")]
        threads.append(threading.Thread(target=churner))
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)
        rc = srv.stop()
        print("churn: %s" % stats)
        asan = [l for l in srv.err if "ERROR: AddressSanitizer" in l or "runtime error" in l]
        report("churn_no_failed_requests", not bad, "; ".join(bad[:5]))
        report("churn_made_progress", stats["cycles"] >= 3 and stats["ok"] > 0 and
               stats["steady"] > 0, str(stats))
        report("churn_server_clean_exit", rc == 0 and not asan,
               "exit %s %s" % (rc, "".join(asan)[:1000]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def access_log_tests():
    """--access-log writes one JSON line per sampled inference request, after the fact."""
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "a", 1, add_model(1.0))
        for sample, sent, want in ((1.0, 12, 12), (0.25, 40, 10)):
            log = os.path.join(root, "access-%s.log" % sample)
            srv = Server(root, ["--access-log", log, "--access-log-sample", str(sample)])
            try:
                for i in range(sent - 2):
                    infer(srv, "a")
                call(srv, "POST", "/v2/models/a/infer", {"inputs": []})  # 400
                call(srv, "POST", "/v1/models/a:predict", {"instances": [[1, 2, 3, 4]]})
            finally:
                rc = srv.stop()

            def check(sample=sample, log=log, want=want, rc=rc):
                assert rc == 0, "exit %s" % rc
                lines = open(log).read().splitlines()
                assert len(lines) == want, "%d lines, want %d" % (len(lines), want)
                recs = [json.loads(l) for l in lines]
                keys = ["time", "model", "version", "protocol", "status", "request_ms",
                        "queue_ms", "input_ms", "compute_ms", "output_ms", "batch_size",
                        "execution_batch"]
                for r in recs:
                    assert list(r) == keys, list(r)
                    assert r["model"] == "a" and r["version"] == "1", r
                    assert r["time"].endswith("Z") and len(r["time"]) == 24, r["time"]
                    assert r["request_ms"] >= r["compute_ms"] >= 0, r
                if sample == 1.0:
                    st = [r["status"] for r in recs]
                    assert st.count(200) == 11 and st.count(400) == 1, st
                    assert recs[-1]["protocol"] == "tfserving", recs[-1]
                    assert all(r["batch_size"] == 1 for r in recs if r["status"] == 200)
            test(check, "access_log_sample_%s" % sample)
        st = subprocess.run([BIN_PATH, "serve", "--model-repository", root, "--access-log",
                             "/nonexistent-dir/x.log", "--http-port", "0"],
                            capture_output=True, text=True, timeout=60)
        report("access_log_unwritable_refused", st.returncode != 0 and "access log" in st.stderr,
               "exit %d: %s" % (st.returncode, st.stderr[-300:]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def metrics_series_tests():
    """RELIABILITY 26: requests naming 10,000 models that do not exist get 404s and add no
    metric series; unloading a model removes its series."""
    root = tempfile.mkdtemp(prefix="ifd-repo-")
    try:
        publish(root, "a", 1, add_model(1.0))
        publish(root, "b", 1, add_model(2.0))
        srv = Server(root, ["--model-control-mode", "explicit", "--load-model", "*"])
        try:
            def series():
                st, text = call(srv, "GET", "/metrics")
                assert st == 200, st
                text = text.decode() if isinstance(text, bytes) else str(text)
                return [l for l in text.splitlines() if l and not l.startswith("#")]

            def unknown_models_add_no_series():
                infer(srv, "a")
                before = series()
                c = srv.conn(30)
                codes = {}
                body = json.dumps({"inputs": []})
                for i in range(10000):
                    c.request("POST", "/v2/models/nosuch%d/infer" % i, body=body)
                    r = c.getresponse()
                    r.read()
                    codes[r.status] = codes.get(r.status, 0) + 1
                c.close()
                assert codes == {404: 10000}, codes
                after = series()
                names = lambda ls: sorted(l.rsplit(" ", 1)[0] for l in ls)
                grown = set(names(after)) - set(names(before))
                # only the 404 counter's series may be new
                assert grown <= {'inferd_http_requests_total{code="404"}'}, sorted(grown)[:5]
                assert not any("nosuch" in l for l in after)
                assert added(srv, "a") == 1, "still serving"
            test(unknown_models_add_no_series)

            def unload_removes_series():
                assert any('model="b"' in l for l in series())
                st, r = call(srv, "POST", "/v2/repository/models/b/unload", {})
                assert st == 200, r
                # the version is freed (and its series removed) once its last request is done
                wait_for(lambda: not [l for l in series() if 'model="b"' in l], 10,
                         "model b's series to go")
            test(unload_removes_series)
        finally:
            rc = srv.stop()
            report("metrics_server_exits_0", rc == 0, "exit %s" % rc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    metrics_series_tests()
    access_log_tests()
    poll_tests()
    traffic_tests()
    config_error_tests()
    explicit_tests()
    inflight_unload_tests()
    remote_management_tests()
    churn_tests(10 if "ASAN_OPTIONS" in os.environ else 6)
    finish()


if __name__ == "__main__":
    main()
