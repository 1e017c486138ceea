#!/usr/bin/env bash
# Dynamic batching with a C load generator: bench/serve_batching.py drives the server from
# Python threads, which on a small machine saturate before a cheap model's server does. Here
# wrk (keep-alive, CONNS connections, one batch-1 KServe v2 JSON request each) drives the same
# model with and without dynamic batching, alternating ROUNDS times; prints req/s and p99 of
# each, the medians and the ratio (target >= 1.5x). Also prints the in-process ceiling: the
# model's per-sample latency at batch 1 and at the preferred batch (inferd bench).
# Usage: bench/serve_batching_wrk.sh [BIN] [MODEL.onnx] [SECONDS] [ROUNDS] [CONNS] [THREADS]
#   MODEL: a model with one float input [batch, ...] (default build/golden/mlp/model.onnx)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/inferd}
model=${2:-$root/build/golden/mlp/model.onnx}
secs=${3:-8}
rounds=${4:-3}
conns=${5:-16}
threads=${6:-2}
port=${PORT_SERVER:-18131}
command -v wrk >/dev/null || { echo "wrk is missing (scripts/install-deps.sh installs it)"; exit 3; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$tmp"; }
trap cleanup EXIT

for m in nobatch batch; do mkdir -p "$tmp/repo/$m/1"; cp "$model" "$tmp/repo/$m/1/model.onnx"; done
echo '{"max_batch_size": 32}' >"$tmp/repo/nobatch/config.json"
echo '{"max_batch_size": 32, "dynamic_batching": {"max_queue_delay_microseconds": 2000, "preferred_batch_size": [16]}}' \
  >"$tmp/repo/batch/config.json"
# one batch-1 request of random values for the model's first input
"$bin" inspect "$model" --json >"$tmp/inspect.json"
/usr/bin/python3 - "$tmp" <<'PY'
import json, random, sys
tmp = sys.argv[1]
info = json.load(open(tmp + "/inspect.json"))
inp = info["inputs"][0]
dims = [1] + [d if isinstance(d, int) and d > 0 else 1 for d in inp["shape"][1:]]
n = 1
for d in dims:
    n *= d
random.seed(1)
body = {"inputs": [{"name": inp["name"], "shape": dims, "datatype": "FP32",
                    "data": [round(random.random(), 6) for _ in range(n)]}]}
with open(tmp + "/post.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    f.write("wrk.body = [[%s]]\n" % json.dumps(body))
print("request: %s %s, %d bytes of JSON" % (inp["name"], dims, len(json.dumps(body))))
PY

"$bin" serve --model-repository "$tmp/repo" --http-address 127.0.0.1 --http-port "$port" \
  --threads "$threads" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
: >"$tmp/results"
for r in $(seq "$rounds"); do
  for m in nobatch batch; do
    out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:$port/v2/models/$m/infer")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    echo "$m $rps $p99" | tee -a "$tmp/results"
  done
done
curl -s -X POST "http://127.0.0.1:$port/v2/repository/index" | /usr/bin/python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e.get("execution_count"):
        print("%-8s inferences=%d executions=%d avg_batch=%.2f" % (e["name"], e["inference_count"],
              e["execution_count"], e["inference_count"] / e["execution_count"]))'
median() { grep "^$1 " "$tmp/results" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
nb=$(median nobatch); b=$(median batch)
echo "median req/s: no batching $nb, dynamic batching $b"
awk -v a="$b" -v c="$nb" 'BEGIN { printf "ratio batch/nobatch = %.2fx (target >= 1.5x)\n", a / c }'
for bs in 1 16; do
  ms=$("$bin" bench "$model" --threads "$threads" --iters 200 --dim "$(/usr/bin/python3 -c "import json; print(json.load(open('$tmp/inspect.json'))['inputs'][0]['shape'][0])")=$bs" --json |
       /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
  awk -v m="$ms" -v b="$bs" 'BEGIN { printf "in-process: batch %d %.4f ms, %.4f ms per sample\n", b, m, m / b }'
done
