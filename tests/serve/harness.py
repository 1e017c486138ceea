"""What the black-box server tests share: PASS/FAIL bookkeeping and a server process on a free
loopback port. Standard library only. Each test script takes the inferd binary as argv[1]."""
import http.client
import os
import signal
import socket
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

    def __init__(self, repo, args=(), env=None, wait_ready=True):
        self.port = free_port()
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [BIN, "serve", "--model-repository", repo, "--http-port", str(self.port),
             "--http-address", "127.0.0.1", "--threads", "1"] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
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
