#!/usr/bin/python3
"""Black-box tests of the HTTP front end of `inferd serve` (src/serve/http.c) over real sockets:
several I/O threads (keep-alive, connections spread over the threads, many at once), the
connection cap counting idle connections, request-head checks (RELIABILITY.md item 1: bare LF,
bare CR, NUL), a client that never reads its response (item 6), and SIGTERM drain with several
I/O threads (item 27). Python standard library only.

    tests/serve/test_http.py BUILD/inferd ONNX_TESTS_ROOT

Prints "PASS name" / "FAIL name: why", then "N passed, M failed".
"""
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import SLOW, Server, finish, report, test, stop_checked  # noqa: E402

ONNX = os.path.abspath(sys.argv[2])
NODE = os.path.join(ONNX, "node")
SLACK = 3 if SLOW else 1  # timing margins grow under ASan

IDENT_X = [1.0, 2.0, 3.0, 4.0]
IDENT = json.dumps({"inputs": [{"name": "x", "shape": [1, 1, 2, 2], "datatype": "FP32",
                                "data": IDENT_X}]}).encode()
# Tile of x [2,3,4,5] by [20,10,10,10]: 2.4M floats, about 29 MB of JSON out of 1 KB in
TILE = json.dumps({"inputs": [
    {"name": "x", "shape": [2, 3, 4, 5], "datatype": "FP32", "data": [0.123456] * 120},
    {"name": "y", "shape": [4], "datatype": "INT64", "data": [20, 10, 10, 10]}]}).encode()
TILE_REPLY_MIN = 2400000 * 10  # each element prints as at least "0.1234560," (10 bytes)


def build_repo(root):
    def put(name, case, config=None):
        d = os.path.join(root, name, "1")
        os.makedirs(d)
        shutil.copy(os.path.join(NODE, case, "model.onnx"), os.path.join(d, "model.onnx"))
        if config is not None:
            with open(os.path.join(root, name, "config.json"), "w") as f:
                json.dump(config, f)
    put("ident", "test_identity")
    put("ident4", "test_identity", {"instance_count": 4})
    put("tile", "test_tile")


# ---- raw HTTP helpers ------------------------------------------------------------------------------

def post(path, body, extra=b""):
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (path.encode(), len(body), extra)) + body


def read_response(f):
    """One response from a socket file: (status, headers dict, body); None at EOF."""
    line = f.readline()
    if not line:
        return None
    status = int(line.split(b" ", 2)[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


def exchange(port, data, timeout=10):
    """Send data; read until the server closes. (bytes, closed): closed is False when the
    server kept the connection open past the timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
    finally:
        s.close()


def status_of(raw):
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def io_threads(pid):
    """tid -> (name, voluntary context switches) of the I/O threads: the main thread and the
    threads named inferd-http-N."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                st = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        except OSError:
            continue
        name = st.get("Name", "").strip()
        if int(tid) == pid or name.startswith("inferd-http-"):
            out[int(tid)] = (name, int(st["voluntary_ctxt_switches"]))
    return out


def thread_runtime(pid, name):
    """CPU time in ns of the threads of pid named name (/proc/.../schedstat); name None: the
    main thread, which is I/O thread 0."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if (f.read().strip() != name) if name else int(tid) != pid:
                    continue
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            continue
    return total


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def check_ident(status, body):
    assert status == 200, (status, body[:200])
    got = json.loads(body)["outputs"][0]["data"]
    assert got == IDENT_X, got


# ---- tests against one server with 4 I/O threads --------------------------------------------------

def run_thread_tests(srv):
    port = srv.port

    def keep_alive_across_threads():
        errors = []

        def client(k):
            try:
                c = srv.conn()
                c.request("POST", "/v2/models/ident/infer", body=IDENT)
                r = c.getresponse()
                check_ident(r.status, r.read())
                sock = c.sock
                for _ in range(30):
                    c.request("POST", "/v2/models/ident/infer", body=IDENT)
                    r = c.getresponse()
                    check_ident(r.status, r.read())
                    assert c.sock is sock, "the server closed a keep-alive connection"
                c.close()
            except Exception as e:  # noqa: BLE001 - collected, reported below
                errors.append("client %d: %r" % (k, e))
        ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not errors, errors[:3]

    def connections_spread_over_threads():
        before = io_threads(srv.proc.pid)
        assert len(before) == 4, "want 4 I/O threads, found %r" % before
        errors = []

        def client(k):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=20)
                f = s.makefile("rb")
                for _ in range(20):
                    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                    st, _, _ = read_response(f)
                    assert st == 200, st
                s.close()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        ts = [threading.Thread(target=client, args=(k,)) for k in range(32)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not errors, errors[:3]
        after = io_threads(srv.proc.pid)
        busy = [after[t][0] for t in after if t in before and after[t][1] - before[t][1] >= 5]
        assert len(busy) >= 2, "one I/O thread served 32 connections: %r -> %r" % (before, after)

    def many_concurrent_connections():
        socks = []
        try:
            for _ in range(300):
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=20))
            for rnd in range(2):  # two requests each, the second on the kept-alive connection
                for s in socks:
                    s.sendall(post("/v2/models/ident/infer", IDENT))
                for i, s in enumerate(socks):
                    f = s.makefile("rb")
                    r = read_response(f)
                    assert r is not None, "connection %d closed in round %d" % (i, rnd)
                    check_ident(r[0], r[2])
        finally:
            for s in socks:
                s.close()

    def bad_heads_400_and_close():  # RELIABILITY item 1
        cases = {
            "bare LF everywhere": b"GET /v2 HTTP/1.1\nHost: x\n\n",
            "bare LF in one header": b"GET /v2 HTTP/1.1\r\nHost: x\nX-A: y\r\n\r\n",
            "bare LF ends the head": b"GET /v2 HTTP/1.1\r\nHost: x\r\n\n",
            "NUL in a header value": b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
            "NUL in the request line": b"GET /v2\x00x HTTP/1.1\r\nHost: x\r\n\r\n",
            "bare CR": b"GET /v2 HTTP/1.1\r\nHost: x\rX-A: y\r\n\r\n",
        }
        for what, raw in cases.items():
            out, closed = exchange(port, raw, timeout=5 * SLACK)
            assert status_of(out) == 400, "%s: %r" % (what, out[:120])
            assert closed, "%s: connection left open after the 400" % what
        assert exchange(port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close"
                        b"\r\n\r\n")[0].startswith(b"HTTP/1.1 200")

    def bad_head_sent_byte_by_byte():
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLACK)
        try:
            for b in b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n":
                try:
                    s.sendall(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    break  # answered and closed at the bare LF already
                time.sleep(0.005)
            f = s.makefile("rb")
            r = read_response(f)
            assert r and r[0] == 400, r
            assert f.read() == b"", "connection left open"
        finally:
            s.close()

    def pipelined_heads():
        good = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        out, closed = exchange(port, good * 3 + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200") == 4 and closed, out[:300]
        # a valid request, then one with a bare LF in the same packet: 200, then 400 and close
        out, closed = exchange(port, good + b"GET /v2 HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
                               timeout=5 * SLACK)
        assert out.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 400" in out and closed, out[:300]
        # a body holding bare LFs and NULs is not a head: pipelined POST, then a GET
        body = json.dumps(json.loads(IDENT), indent=2).encode()
        out, closed = exchange(port, post("/v2/models/ident/infer", body) + good.replace(
            b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        assert out.count(b"HTTP/1.1 200") == 2 and closed, out[:300]

    def bodies_are_not_heads():
        # JSON with bare LFs, as a plain body, as chunks, and after Expect: 100-continue
        body = json.dumps(json.loads(IDENT), indent=2).encode()
        assert b"\n" in body and b"\r" not in body
        c = srv.conn()
        c.request("POST", "/v2/models/ident/infer", body=body)
        r = c.getresponse()
        check_ident(r.status, r.read())
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                          for i in range(0, len(body), 7)) + b"0\r\n\r\n"
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        s.sendall(b"POST /v2/models/ident/infer HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
        r = read_response(f)
        check_ident(r[0], r[2])
        s.sendall(post("/v2/models/ident/infer", b"", b"Expect: 100-continue\r\n"
                       ).replace(b"Content-Length: 0", b"Content-Length: %d" % len(body)))
        r = read_response(f)
        assert r and r[0] == 100, r
        s.sendall(body)
        r = read_response(f)
        check_ident(r[0], r[2])
        s.close()
        # binary tensor data whose bytes hold NUL, LF and CR
        raw = struct.pack("<4f", 0.0, struct.unpack("<f", b"\n\r\n\x3f")[0], -1.5, 7.0)
        assert b"\x00" in raw and b"\n" in raw
        head = json.dumps({"inputs": [{"name": "x", "shape": [1, 1, 2, 2], "datatype": "FP32",
                                       "parameters": {"binary_data_size": 16}}],
                           "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}
                          ).encode()
        c.request("POST", "/v2/models/ident/infer", body=head + raw,
                  headers={"Inference-Header-Content-Length": str(len(head)),
                           "Content-Type": "application/octet-stream"})
        r = c.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data[:200])
        n = int(r.getheader("Inference-Header-Content-Length"))
        assert data[n:] == raw, data[n:]
        c.close()

    def http_versions_and_forms():
        live = b"GET /v2/health/live HTTP/1.%d\r\nHost: x\r\n%s\r\n"
        # HTTP/1.0: closed after the reply unless the client asks to keep it
        out, closed = exchange(port, live % (0, b""))
        assert out.startswith(b"HTTP/1.1 200") and closed, out[:200]
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        for _ in range(3):
            s.sendall(live % (0, b"Connection: keep-alive\r\n"))
            st, hd, _ = read_response(f)
            assert st == 200 and hd.get("connection", "").lower() == "keep-alive", (st, hd)
            assert "date" in hd and hd["date"].endswith("GMT"), hd
        s.close()
        # absolute-form target, a query string, header names in any case
        out, _ = exchange(port, b"GET http://127.0.0.1:%d/v2/health/live?x=1 HTTP/1.1\r\n"
                          b"HOST: x\r\nconnection: CLOSE\r\n\r\n" % port)
        assert out.startswith(b"HTTP/1.1 200"), out[:200]
        # a client that shuts down its sending side after the request still gets the reply
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(post("/v2/models/ident/infer", IDENT))
        s.shutdown(socket.SHUT_WR)
        r = read_response(s.makefile("rb"))
        s.close()
        assert r is not None, "no reply after the client's half-close"
        check_ident(r[0], r[2])
        # methods the server does not take: 405; a method nobody knows: 400
        for m, want in ((b"PUT", 405), (b"HEAD", 405), (b"DELETE", 405), (b"BREW", 400)):
            out, closed = exchange(port, b"%s /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n" % m)
            assert status_of(out) == want and closed, (m, out[:100])
        # Expect: 100-continue over the body cap: 413 at once, no 100 Continue first
        out, closed = exchange(port, b"POST /v2/models/ident/infer HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 999999999999\r\nExpect: 100-continue\r\n\r\n")
        assert status_of(out) == 413 and b" 100 " not in out and closed, out[:200]
        # a body sent in pieces, with pauses, and a pipelined request right behind it
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        whole = post("/v2/models/ident/infer", IDENT) + post("/v2/models/ident/infer", IDENT)
        for i in range(0, len(whole), 37):
            s.sendall(whole[i:i + 37])
            time.sleep(0.002)
        for _ in range(2):
            r = read_response(f)
            check_ident(r[0], r[2])
        s.close()

    def client_never_reads():  # RELIABILITY item 6: send timeout (2 s here), bounded buffer
        pid = srv.proc.pid
        rss0 = rss_bytes(pid)
        s = socket.create_connection(("127.0.0.1", port), timeout=30 * SLACK)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        # 20 requests pipelined: the server takes the next one only once a reply is out, so at
        # most one ~29 MB reply is buffered at a time, and the send timeout ends the lot
        s.sendall(post("/v2/models/tile/infer", TILE) * 20)
        t0 = time.time()
        peak = rss0
        served = False
        while time.time() - t0 < 4 + 4 * SLACK:
            peak = max(peak, rss_bytes(pid))
            if not served:
                out = exchange(port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n")[0]
                served = status_of(out) == 200
            time.sleep(0.1)
        got = 0
        ended = False
        t1 = time.time()
        try:
            while time.time() - t1 < 20 * SLACK:
                chunk = s.recv(1 << 20)
                if not chunk:
                    ended = True
                    break
                got += len(chunk)
        except ConnectionResetError:
            ended = True
        except socket.timeout:
            pass
        s.close()
        assert served, "another client was not served while one did not read"
        assert ended, "connection still open after the send timeout (%d bytes read)" % got
        assert got < TILE_REPLY_MIN, "the whole reply arrived (%d bytes): not a stuck reader" % got
        grown = peak - rss0
        assert grown < 4 * TILE_REPLY_MIN, "server memory grew by %d MB for one stuck client" % (
            grown >> 20)
        assert exchange(port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close"
                        b"\r\n\r\n")[0].startswith(b"HTTP/1.1 200")

    for t in (keep_alive_across_threads, connections_spread_over_threads,
              many_concurrent_connections, bad_heads_400_and_close, bad_head_sent_byte_by_byte,
              pipelined_heads, bodies_are_not_heads, http_versions_and_forms, client_never_reads):
        test(t)


# ---- tests with their own server -------------------------------------------------------------------

def run_own_server_tests(repo):
    def connection_cap_counts_idle_connections():  # RELIABILITY item 5
        srv = Server(repo, ["--max-connections", "3", "--http-threads", "2"])
        idle = []
        try:
            for _ in range(3):  # connected, nothing sent: slowloris at its slowest
                idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
            time.sleep(0.3)
            t0 = time.time()
            extra = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            f = extra.makefile("rb")
            r = read_response(f)
            rest = f.read()
            took = time.time() - t0
            extra.close()
            assert r and r[0] == 503 and r[1].get("retry-after") == "1", r
            assert rest == b"", "connection over the cap left open"
            assert took < 3 * SLACK, "closed only after %.1f s" % took
            # a client that sends its request at once also gets the 503
            out, closed = exchange(srv.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(out) == 503 and closed, out[:100]
            # a place freed is taken again
            idle.pop().close()
            time.sleep(0.3)
            c = srv.conn()
            c.request("GET", "/v2/health/live")
            assert c.getresponse().status == 200
            c.close()
            for s in idle:
                s.close()
            idle = []
            time.sleep(0.3)
            conns = [srv.conn() for _ in range(3)]
            for c in conns:
                c.request("GET", "/v2/health/live")
                r = c.getresponse()
                r.read()
                assert r.status == 200, r.status
            for c in conns:
                c.close()
        finally:
            for s in idle:
                s.close()
            assert srv.stop() == 0

    def sigterm_drains_every_thread():  # RELIABILITY item 27
        srv = Server(repo, ["--http-threads", "4"], env={"IFD_SERVE_TEST_INFER_DELAY_MS": "1500"})
        results = []

        def slow():
            try:
                c = srv.conn(timeout=30 * SLACK)
                c.request("POST", "/v2/models/ident4/infer", body=IDENT)
                r = c.getresponse()
                results.append((r.status, r.read()))
            except Exception as e:  # noqa: BLE001
                results.append((None, repr(e).encode()))
        ts = [threading.Thread(target=slow) for _ in range(8)]
        for t in ts:
            t.start()
        time.sleep(0.5 * SLACK)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3 * SLACK)
        refused = False
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        except OSError:
            refused = True
        for t in ts:
            t.join(60)
        t_done = time.time()
        try:
            rc = srv.proc.wait(20 * SLACK)
        except Exception:  # noqa: BLE001 - not exited: stop() below kills it
            rc = None
        exit_s = time.time() - t_done
        rc = srv.stop() if rc is None else rc
        assert not any("drain timeout" in line for line in srv.err), "".join(srv.err)[-500:]
        assert exit_s < 5 * SLACK, "exit %.1f s after the last reply" % exit_s
        assert len(results) == 8 and all(st == 200 for st, _ in results), results
        for st, body in results:
            check_ident(st, body)
        assert refused, "new connections still accepted while draining"
        assert rc == 0, "exit %s: %s" % (rc, "".join(srv.err)[-1000:])

    def cheap_model_runs_on_the_io_thread():
        # --inline-max-us: once the workers have measured the identity model as cheap, the I/O
        # thread runs its requests itself. Seen in the threads' run time (schedstat, ns): with
        # inline runs the worker thread stays idle; with --inline-max-us 0 it does the work.
        # Both ways every reply is right and the metrics count every request once.
        def run(extra):
            srv = Server(repo, ["--http-threads", "1", "--threads", "1"] + extra)
            try:
                c = srv.conn()

                def many(n):
                    for _ in range(n):
                        c.request("POST", "/v2/models/ident/infer", body=IDENT)
                        r = c.getresponse()
                        check_ident(r.status, r.read())
                many(100)  # the workers measure the cost first
                time.sleep(0.2)
                w0, io0 = thread_runtime(srv.proc.pid, "inferd-worker"), \
                    thread_runtime(srv.proc.pid, None)
                many(1500)
                w1, io1 = thread_runtime(srv.proc.pid, "inferd-worker"), \
                    thread_runtime(srv.proc.pid, None)
                c.request("GET", "/metrics")
                text = c.getresponse().read().decode()
                c.close()
            finally:
                rc = srv.stop()
            assert rc == 0, "exit %s" % rc
            ok = [line for line in text.splitlines()
                  if line.startswith("inferd_requests_total{") and 'model="ident"' in line
                  and 'outcome="success"' in line]
            assert ok and float(ok[0].split()[-1]) == 1600, ok
            return w1 - w0, io1 - io0
        # a bound far above the identity model's cost, so that a slow (sanitizer) build
        # still counts as cheap
        worker_on, io_on = run(["--inline-max-us", "2000"])
        worker_off, io_off = run(["--inline-max-us", "0"])
        assert worker_on * 10 < io_on, "inline on: worker %d us, I/O thread %d us" % (
            worker_on // 1000, io_on // 1000)
        assert worker_off * 5 > io_off / 10 and worker_off > 20 * max(worker_on, 1), \
            "inline off: worker %d us, I/O %d us (on: worker %d us)" % (
                worker_off // 1000, io_off // 1000, worker_on // 1000)

    def chaos_clients():
        # Many clients at once doing what clients do wrong: random bytes, heads and bodies cut
        # off mid-way then closed or reset, pipelined bursts mixed with bad requests, chunked
        # bodies in pieces, half-closes, clients that stop reading, and a few good clients
        # throughout. The good clients must get every answer right, the server must stay up,
        # exit 0 after SIGTERM and (under ASan) report nothing.
        srv = Server(repo, ["--http-threads", "2", "--read-timeout-secs", "1",
                            "--write-timeout-secs", "1", "--max-connections", "64",
                            "--max-body-bytes", "65536", "--inline-max-us", "2000"])
        import random
        stop_at = time.time() + (12 if SLOW else 6)
        errors = []
        good_done = [0]
        live = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        infer = post("/v2/models/ident/infer", IDENT)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(IDENT[i:i + 5]), IDENT[i:i + 5])
                          for i in range(0, len(IDENT), 5)) + b"0\r\n\r\n"
        chunked = (b"POST /v2/models/ident4/infer HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + chunks)

        def bad_client(seed):
            rnd = random.Random(seed)
            while time.time() < stop_at:
                try:
                    s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                    kind = rnd.randrange(8)
                    if kind == 0:
                        s.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))))
                    elif kind == 1:  # a request cut anywhere, then closed
                        msg = rnd.choice((infer, chunked, live * 3))
                        s.sendall(msg[:rnd.randrange(1, len(msg))])
                    elif kind == 2:  # the same, then reset
                        msg = rnd.choice((infer, chunked))
                        s.sendall(msg[:rnd.randrange(1, len(msg))])
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    elif kind == 3:  # pipelined good and bad, not read
                        s.sendall(infer * 3 + b"GET /x HTTP/1.1\nHost: y\r\n\r\n" + live)
                    elif kind == 4:  # chunked in pieces with pauses
                        for i in range(0, len(chunked), 11):
                            s.sendall(chunked[i:i + 11])
                            if rnd.random() < 0.1:
                                time.sleep(0.01)
                        s.recv(4096)
                    elif kind == 5:  # half-close after a request
                        s.sendall(rnd.choice((infer, chunked)))
                        s.shutdown(socket.SHUT_WR)
                        s.recv(4096)
                    elif kind == 6:  # many requests, never read: the reply sits unread
                        s.sendall(post("/v2/models/tile/infer", TILE) * 2)
                        time.sleep(rnd.random() * 0.2)
                    else:  # huge Content-Length, Expect, then some body
                        s.sendall(b"POST /v2/models/ident/infer HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                                  % rnd.choice((10, 70000, 10 ** 15)) + b"{" * rnd.randrange(20))
                    s.close()
                except OSError:
                    pass  # refused over the cap, reset, timed out: all fine here

        def good_client(k):
            try:
                while time.time() < stop_at:
                    try:
                        c = srv.conn(timeout=10)
                        for _ in range(20):
                            c.request("POST", "/v2/models/ident/infer", body=IDENT)
                            r = c.getresponse()
                            data = r.read()
                            if r.status == 503:  # over the connection cap: allowed
                                break
                            check_ident(r.status, data)
                            good_done[0] += 1
                        c.close()
                    except (ConnectionError, http.client.RemoteDisconnected):
                        time.sleep(0.01)  # refused at the cap
            except Exception as e:  # noqa: BLE001
                errors.append("good client %d: %r" % (k, e))
        try:
            ts = [threading.Thread(target=bad_client, args=(i,)) for i in range(12)]
            ts += [threading.Thread(target=good_client, args=(k,)) for k in range(3)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            assert not errors, errors[:3]
            assert good_done[0] > 50, "good clients got only %d answers" % good_done[0]
            time.sleep(1.5)  # timeouts close what is left
            c = srv.conn()
            c.request("POST", "/v2/models/ident/infer", body=IDENT)
            r = c.getresponse()
            check_ident(r.status, r.read())
            c.close()
        finally:
            stop_checked(srv, "chaos_clients_clean_exit")

    def out_of_descriptors():
        # RLIMIT_NOFILE low in soft and hard: more connections than descriptors. accept() fails
        # with EMFILE while the listening socket stays readable; the server must not spin on it
        # (accepting pauses until its next tick), and must serve again once clients leave.
        import resource
        limit = 64

        def low_fds():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        srv = Server(repo, ["--http-threads", "1", "--max-connections", "1000"],
                     preexec_fn=low_fds)
        socks = []
        try:
            for _ in range(limit + 40):
                socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
            time.sleep(0.5)
            with open("/proc/%d/stat" % srv.proc.pid) as f:
                f0 = f.read().split()
            t0 = time.time()
            time.sleep(2)
            with open("/proc/%d/stat" % srv.proc.pid) as f:
                f1 = f.read().split()
            ticks = (int(f1[13]) + int(f1[14])) - (int(f0[13]) + int(f0[14]))
            cpu = ticks / os.sysconf("SC_CLK_TCK") / (time.time() - t0)
            assert cpu < 0.3, "the server used %.0f%% of a core while out of descriptors" % (
                cpu * 100)
            for s in socks:
                s.close()
            socks = []
            time.sleep(1)
            c = srv.conn(timeout=10)
            c.request("POST", "/v2/models/ident/infer", body=IDENT)
            r = c.getresponse()
            check_ident(r.status, r.read())
            c.close()
        finally:
            for s in socks:
                s.close()
            stop_checked(srv, "out_of_descriptors_clean_exit")

    for t in (connection_cap_counts_idle_connections, sigterm_drains_every_thread,
              cheap_model_runs_on_the_io_thread, chaos_clients, out_of_descriptors):
        test(t)


def main():
    work = tempfile.mkdtemp(prefix="inferd-http-test-")
    repo = os.path.join(work, "models")
    try:
        build_repo(repo)
        srv = Server(repo, ["--http-threads", "4", "--read-timeout-secs", "5",
                            "--write-timeout-secs", "2"])
        try:
            run_thread_tests(srv)
            c = srv.conn()
            c.request("GET", "/v2/health/live")
            report("still_serving", c.getresponse().status == 200)
        finally:
            stop_checked(srv)
        run_own_server_tests(repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
