#!/usr/bin/env bash
# Hot reload under load (issue 3 acceptance): wrk drives KServe v2 infer of a small model while
# a loop unloads, republishes and reloads it through the repository API (explicit mode), and a
# second model is served untouched. Run it with an ASan build to check for sanitizer errors:
#   cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DIFD_SANITIZE=ON && cmake --build build-asan
#   bench/serve_reload.sh build-asan/inferd 20
# Prints the replies by status for each model, the number of reload cycles, and whether the
# server's stderr holds a sanitizer report. Documented failures: 503 while the model is unloaded.
# Usage: bench/serve_reload.sh [INFERD_BIN] [SECONDS] [CONNECTIONS]
# Env: INFERD_FLAGS, more serve flags (e.g. --inline-max-us 2000 so that a sanitizer build
#      still runs the identity model inline on the I/O thread while it is reloaded)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/inferd}
secs=${2:-20}
conns=${3:-8}
port=${PORT_SERVER:-18111}
ident=/work/shared/onnx-tests/node/test_identity/model.onnx
[ -f "$ident" ] || ident=$root/../shared/onnx-tests/node/test_identity/model.onnx
command -v wrk >/dev/null || { echo "wrk is missing (scripts/install-deps.sh installs it)"; exit 3; }

tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$tmp"; }
trap cleanup EXIT
for m in churn steady; do mkdir -p "$tmp/repo/$m/1"; cp "$ident" "$tmp/repo/$m/1/model.onnx"; done

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" serve --model-repository "$tmp/repo" \
  --http-address 127.0.0.1 --http-port "$port" --model-control-mode explicit \
  --load-model '*' --threads 1 ${INFERD_FLAGS:-} >"$tmp/server.out" 2>"$tmp/server.err" &
pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done

cat >"$tmp/count.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"x","shape":[1,1,2,2],"datatype":"FP32","data":[1,2,3,4]}]}'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; unavailable = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 503 then unavailable = unavailable + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local o, u, x = 0, 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); u = u + t:get("unavailable"); x = x + t:get("other") end
  io.write(string.format("replies: 200=%d 503=%d other=%d socket_errors=%d\n", o, u, x,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

(
  end=$((SECONDS + secs)); n=0
  while [ $SECONDS -lt $end ]; do
    n=$((n + 1))
    curl -s -o /dev/null -X POST "http://127.0.0.1:$port/v2/repository/models/churn/unload"
    cp "$ident" "$tmp/repo/churn/1/.model.onnx.tmp" && mv "$tmp/repo/churn/1/.model.onnx.tmp" "$tmp/repo/churn/1/model.onnx"
    curl -s -o /dev/null -X POST "http://127.0.0.1:$port/v2/repository/models/churn/load"
    sleep 0.05
  done
  echo "$n" >"$tmp/cycles"
) &
loop=$!
echo "== churn (unloaded and reloaded in a loop)"
wrk -t2 -c"$conns" -d"${secs}s" -s "$tmp/count.lua" "http://127.0.0.1:$port/v2/models/churn/infer" | grep -E "Requests/sec|replies"
wait "$loop"
echo "== steady (same server, never touched)"
wrk -t1 -c2 -d2s -s "$tmp/count.lua" "http://127.0.0.1:$port/v2/models/steady/infer" | grep -E "Requests/sec|replies"
echo "reload cycles: $(cat "$tmp/cycles")"
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=
echo "server exit status: $rc"
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error" "$tmp/server.err"; then
  echo "SANITIZER REPORT:"; grep -A20 -E "ERROR: (Address|Leak)Sanitizer|runtime error" "$tmp/server.err" | head -60
  exit 1
fi
echo "no sanitizer report"
