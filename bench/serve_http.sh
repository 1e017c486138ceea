#!/usr/bin/env bash
# HTTP overhead: wrk (keep-alive) against KServe v2 JSON infer of the ONNX identity model
# vs nginx returning a static body of the same size. Prints req/s of both and the ratio.
# Usage: bench/serve_http.sh [INFERD_BIN] [DURATION] [CONNECTIONS]
# Env: WORKERS (inferd --threads, --http-threads and instance_count, nginx worker_processes;
#      default 1),
#      WRK_THREADS (default 1), BASELINE (a second inferd binary measured in the same run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/inferd}
dur=${2:-10s}
conns=${3:-16}
workers=${WORKERS:-1}
wt=${WRK_THREADS:-1}
ident=/work/shared/onnx-tests/node/test_identity/model.onnx
[ -f "$ident" ] || ident=$root/tests/onnx/node/test_identity/model.onnx
port_s=${PORT_SERVER:-18101}
port_n=${PORT_NGINX:-18102}
port_b=${PORT_BASELINE:-18103}
baseline=${BASELINE:-}

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/repo/ident/1" "$tmp/ngx/logs"
cp "$ident" "$tmp/repo/ident/1/model.onnx"
# one model instance (worker thread) per nginx worker process
echo "{\"instance_count\": $workers}" >"$tmp/repo/ident/config.json"
body='{"inputs":[{"name":"x","shape":[1,1,2,2],"datatype":"FP32","data":[1.0,2.0,3.0,4.0]}]}'

start_inferd() { # binary port log
  "$1" serve --model-repository "$tmp/repo" --http-address 127.0.0.1 --http-port "$2" \
    --threads "$workers" --http-threads "$workers" >"$3" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$2/v2/health/ready" >/dev/null && break; sleep 0.1; done
}
start_inferd "$bin" "$port_s" "$tmp/server.log"
[ -z "$baseline" ] || start_inferd "$baseline" "$port_b" "$tmp/baseline.log"

# The reply the server gives, byte for byte: nginx returns the same body.
curl -s -D "$tmp/hdr" -o "$tmp/resp" -X POST -H 'Content-Type: application/json' \
  --data-binary "$body" "http://127.0.0.1:$port_s/v2/models/ident/infer"
resp_len=$(stat -c %s "$tmp/resp")
echo "server response ($resp_len bytes): $(cat "$tmp/resp")"
cp "$tmp/resp" "$tmp/ngx/resp.json"

cat >"$tmp/ngx/nginx.conf" <<NGX
daemon off;
worker_processes $workers;
error_log $tmp/ngx/logs/error.log;
pid $tmp/ngx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/ngx/body;
  proxy_temp_path $tmp/ngx/proxy;
  fastcgi_temp_path $tmp/ngx/fastcgi;
  uwsgi_temp_path $tmp/ngx/uwsgi;
  scgi_temp_path $tmp/ngx/scgi;
  server {
    listen 127.0.0.1:$port_n;
    # POST to a static file gives 405, so read the (discarded) body and return the bytes.
    location / { default_type application/json; return 200 '$(cat "$tmp/resp")'; }
  }
}
NGX
nginx -c "$tmp/ngx/nginx.conf" -p "$tmp/ngx" 2>"$tmp/ngx/stderr" &
pids+=($!)
for _ in $(seq 50); do curl -sf -X POST -d x "http://127.0.0.1:$port_n/" >/dev/null && break; sleep 0.1; done
nlen=$(curl -s -X POST --data-binary "$body" "http://127.0.0.1:$port_n/" | wc -c)
echo "nginx response ($nlen bytes)"

# evhttp's own floor: the same bytes from a bare evhttp server (one thread), when a C compiler
# and libevent's headers are here
port_e=${PORT_EVHTTP:-18104}
evhttp_ok=0
if cc -O2 -o "$tmp/evhttp_static" "$root/bench/evhttp_static.c" -levent 2>"$tmp/cc.log"; then
  "$tmp/evhttp_static" "$port_e" "$tmp/resp" &
  evhttp_pid=$!
  pids+=($!)
  for _ in $(seq 50); do curl -sf -X POST -d x "http://127.0.0.1:$port_e/" >/dev/null && evhttp_ok=1 && break; sleep 0.1; done
fi

cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

# CPU seconds (user + system) a process and its threads have used, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
tck=$(getconf CLK_TCK)

run_wrk() { # url pids... -> "reqs/s non2xx latency cpu_us_per_request|errors"
  local url=$1; shift
  local before=0 after=0 p
  for p in "$@"; do before=$((before + $(cpu_ticks "$p"))); done
  local out; out=$(wrk -t"$wt" -c"$conns" -d"$dur" -s "$tmp/post.lua" "$url")
  for p in "$@"; do after=$((after + $(cpu_ticks "$p"))); done
  echo "$out" >>"$tmp/wrk.log"
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local reqs; reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  local errs; errs=$(grep -o 'Socket errors.*' <<<"$out" || true); errs=${errs:-none}
  local lat; lat=$(awk '/Latency/ {print $2; exit}' <<<"$out")
  local cpu; cpu=$(awk -v t=$((after - before)) -v hz="$tck" -v n="$reqs" 'BEGIN { printf "%.1f", (n > 0 ? t / hz / n * 1e6 : 0) }')
  echo "$rps $non2xx $lat $cpu|$errs"
}

row() { # label result
  local rps bad lat cpu rest
  read -r rps bad lat rest <<<"$2"
  cpu=${rest%%|*}
  printf '%-28s %12s %8s %10s %12s  %s\n' "$1" "$rps" "$bad" "$lat" "$cpu" "${rest#*|}"
}

nginx_workers=$(pgrep -P "$(cat "$tmp/ngx/nginx.pid")" | tr '\n' ' ')
echo "wrk -t$wt -c$conns -d$dur keep-alive; inferd --threads $workers --http-threads $workers, nginx worker_processes $workers; $(nproc) cores"
s=$(run_wrk "http://127.0.0.1:$port_s/v2/models/ident/infer" "${pids[0]}")
# shellcheck disable=SC2086
n=$(run_wrk "http://127.0.0.1:$port_n/" $nginx_workers)
[ -z "$baseline" ] || b=$(run_wrk "http://127.0.0.1:$port_b/v2/models/ident/infer" "${pids[1]}")
[ "$evhttp_ok" = 0 ] || e=$(run_wrk "http://127.0.0.1:$port_e/" "$evhttp_pid")
printf '%-28s %12s %8s %10s %12s  %s\n' target req/s non2xx avg_lat cpu_us/req socket_errors
row "inferd KServe v2 infer" "$s"
row "nginx static same bytes" "$n"
[ -z "$baseline" ] || row "baseline inferd" "$b"
[ "$evhttp_ok" = 0 ] || row "bare evhttp same bytes" "$e"
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN { printf "%.3f", a / b }'; }
cpu_ratio() { # nginx CPU per request / X's: what the ratio would be with the server CPU-bound
  local x y; x=${1%%|*}; x=${x##* }; y=${2%%|*}; y=${y##* }
  awk -v a="$x" -v b="$y" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }'
}
[ -z "$baseline" ] || echo "ratio baseline/nginx = $(ratio "$b" "$n") (CPU per request: $(cpu_ratio "$b" "$n"))"
[ "$evhttp_ok" = 0 ] || echo "ratio bare-evhttp/nginx = $(ratio "$e" "$n") (CPU per request: $(cpu_ratio "$e" "$n")): what evhttp itself reaches"
echo "ratio inferd/nginx = $(ratio "$s" "$n") (CPU per request: $(cpu_ratio "$s" "$n")) (target >= 0.50)"
curl -s -X POST "http://127.0.0.1:$port_s/v2/repository/index"; echo
if grep -qiv '^inferd: serving' "$tmp/server.log"; then echo "server log:"; grep -v '^inferd: serving' "$tmp/server.log" | tail -5; fi
