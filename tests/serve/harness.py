"""What the black-box server tests share: PASS/FAIL bookkeeping and a server process on a free
loopback port. Standard library only. Each test script takes the inferd binary as argv[1]."""
import http.client
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

BIN = os.path.abspath(sys.argv[1])
SLOW = "ASAN_OPTIONS" in os.environ or os.environ.get("IFD_SLOW_TESTS")
START_TIMEOUT = 120 if SLOW else 60

counts = {"passed": 0, "failed": 0}


def report(name, ok, why=""):
    if ok:
        counts["passed"] += 1
        print("PASS " + name, flush=True)
    else:
        counts["failed"] += 1
        print("FAIL %s: %s" % (name, why), flush=True)


def test(fn, name=None):
    """Run one test function; an exception is a failure with its text, not a crash."""
    name = name or fn.__name__
    try:
        fn()
    except AssertionError as e:
        report(name, False, str(e) or "assertion failed")
        return
    except Exception as e:  # noqa: BLE001 - any error is a failed test
        report(name, False, "%s: %s" % (type(e).__name__, e))
        return
    report(name, True)


def stop_checked(srv, name="clean_exit_after_tests"):
    """Stop srv and report that it exited 0 and that its stderr holds no sanitizer report."""
    rc = srv.stop()
    report(name, rc == 0, "exit %s; stderr: %s" % (rc, "".join(srv.err)[-2000:]))
    if any("ERROR: AddressSanitizer" in line or "runtime error" in line for line in srv.err):
        report("no_sanitizer_errors", False, "".join(srv.err)[-3000:])


def finish():
    """Print the closing line and exit with the right status."""
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
    sys.exit(1 if counts["failed"] else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """`inferd serve` on a free loopback port; waits for its ready line unless told not to."""

    def __init__(self, repo, args=(), env=None, wait_ready=True, preexec_fn=None):
        self.port = free_port()
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [BIN, "serve", "--model-repository", repo, "--http-port", str(self.port),
             "--http-address", "127.0.0.1", "--threads", "1"] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, preexec_fn=preexec_fn)
        self.lines = []
        self.err = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines, True),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err, False),
                         daemon=True).start()
        if wait_ready and not self.ready.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError("server did not print its ready line: %s" % "".join(self.err))

    def _read(self, f, sink, is_stdout):
        for line in iter(f.readline, b""):
            text = line.decode("utf-8", "replace")
            sink.append(text)
            if is_stdout and "serving" in text:
                self.ready.set()

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


# ---- protobuf wire format, standard library only: test models built by hand ----------------------

def pb_varint(n):
    out = b""
    while True:
        c = n & 0x7F
        n >>= 7
        if n:
            out += bytes([c | 0x80])
        else:
            return out + bytes([c])


def pb_field(num, payload):
    """One protobuf field: an int as a varint, str/bytes as length-delimited."""
    if isinstance(payload, int):
        return pb_varint(num << 3) + pb_varint(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return pb_varint((num << 3) | 2) + pb_varint(len(payload)) + payload


# ---- a minimal onnx.TensorProto reader (the conformance data), standard library only ------------

def _varint(b, i):
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return x, i


def tensorproto_fields(path):
    """The fields of a serialized onnx.TensorProto: (data type, dims, raw_data or None,
    int32/int64/uint64 values, float values, double values)."""
    b = open(path, "rb").read()
    i = 0
    dims, dtype, raw = [], 0, None
    ints, floats, doubles = [], [], []
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
            if field == 1:
                dims.append(v)
            elif field == 2:
                dtype = v
            elif field in (5, 7, 11):
                ints.append(v)
        elif wire == 2:
            n, i = _varint(b, i)
            chunk = b[i:i + n]
            i += n
            if field == 9:
                raw = chunk
            elif field == 1 or field in (5, 7, 11):
                j = 0
                while j < len(chunk):
                    v, j = _varint(chunk, j)
                    (dims if field == 1 else ints).append(v)
            elif field == 4:
                floats += struct.unpack("<%df" % (n // 4), chunk)
            elif field == 10:
                doubles += struct.unpack("<%dd" % (n // 8), chunk)
        elif wire == 5:
            if field == 4:
                floats.append(struct.unpack("<f", b[i:i + 4])[0])
            i += 4
        elif wire == 1:
            if field == 10:
                doubles.append(struct.unpack("<d", b[i:i + 8])[0])
            i += 8
        else:
            raise ValueError("unsupported wire type")
    return dtype, dims, raw, ints, floats, doubles
