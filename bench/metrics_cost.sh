#!/usr/bin/env bash
# The cost of watching (issue 4 acceptance): throughput of the digits classifier with metrics,
# history and drift on (a baseline recorded beside the version) against the same server started
# with --no-metrics --no-drift; wrk, keep-alive, KServe v2 JSON, one request of one image.
# The two servers run alternately, ROUNDS times each, in one run; prints req/s of each round,
# the medians and the ratio (target >= 0.95).
# Usage: bench/metrics_cost.sh [INFERD_BIN] [SECONDS_PER_ROUND] [ROUNDS] [CONNECTIONS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/inferd}
secs=${2:-5}
rounds=${3:-3}
conns=${4:-8}
port=${PORT_SERVER:-18121}
command -v wrk >/dev/null || { echo "wrk is missing (scripts/install-deps.sh installs it)"; exit 3; }

tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$tmp"; }
trap cleanup EXIT
cp -r "$root/examples/models/digits" "$tmp/digits"
mkdir -p "$tmp/repo" && mv "$tmp/digits" "$tmp/repo/"
"$bin" baseline "$tmp/repo/digits/1/model.onnx" --data "$root/examples/data/test" >/dev/null
body=$(cat "$root/examples/requests/infer_one.json")
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$body]]
LUA

run() { # label, extra flags...
  local label=$1; shift
  "$bin" serve --model-repository "$tmp/repo" --http-address 127.0.0.1 --http-port "$port" \
    --threads 1 "$@" >"$tmp/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
  local rps
  rps=$(wrk -t1 -c"$conns" -d"${secs}s" -s "$tmp/post.lua" "http://127.0.0.1:$port/v2/models/digits/infer" |
        awk '/Requests\/sec/ {print $2}')
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$label $rps"
}

: >"$tmp/results"
for r in $(seq "$rounds"); do
  run on >>"$tmp/results"
  run off --no-metrics --no-drift >>"$tmp/results"
done
cat "$tmp/results"
median() { grep "^$1 " "$tmp/results" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
on=$(median on); off=$(median off)
echo "median req/s: watching on $on, off $off"
awk -v a="$on" -v b="$off" 'BEGIN { printf "ratio on/off: %.3f (target >= 0.95)\n", a / b }'
