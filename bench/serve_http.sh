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

cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

run_wrk() { # url -> "reqs/s non2xx errors"
  local out; out=$(wrk -t"$wt" -c"$conns" -d"$dur" -s "$tmp/post.lua" "$1")
  echo "$out" >>"$tmp/wrk.log"
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  local errs; errs=$(grep -o 'Socket errors.*' <<<"$out" || true); errs=${errs:-none}
  local lat; lat=$(awk '/Latency/ {print $2; exit}' <<<"$out")
  echo "$rps $non2xx $lat|$errs"
}

echo "wrk -t$wt -c$conns -d$dur keep-alive; inferd --threads $workers --http-threads $workers, nginx worker_processes $workers; $(nproc) cores"
s=$(run_wrk "http://127.0.0.1:$port_s/v2/models/ident/infer")
n=$(run_wrk "http://127.0.0.1:$port_n/")
[ -z "$baseline" ] || b=$(run_wrk "http://127.0.0.1:$port_b/v2/models/ident/infer")
read -r s_rps s_bad s_rest <<<"$s"; read -r n_rps n_bad n_rest <<<"$n"
printf '%-28s %12s %8s %10s  %s\n' target req/s non2xx avg_lat socket_errors
printf '%-28s %12s %8s %10s  %s\n' "inferd KServe v2 infer" "$s_rps" "$s_bad" "${s_rest%%|*}" "${s_rest#*|}"
printf '%-28s %12s %8s %10s  %s\n' "nginx static same bytes" "$n_rps" "$n_bad" "${n_rest%%|*}" "${n_rest#*|}"
if [ -n "$baseline" ]; then
  read -r b_rps b_bad b_rest <<<"$b"
  printf '%-28s %12s %8s %10s  %s\n' "baseline inferd" "$b_rps" "$b_bad" "${b_rest%%|*}" "${b_rest#*|}"
  awk -v a="$b_rps" -v b="$n_rps" 'BEGIN { printf "ratio baseline/nginx = %.3f\n", a/b }'
fi
awk -v a="$s_rps" -v b="$n_rps" 'BEGIN { printf "ratio inferd/nginx = %.3f (target >= 0.50)\n", a/b }'
curl -s -X POST "http://127.0.0.1:$port_s/v2/repository/index"; echo
if grep -qiv '^inferd: serving' "$tmp/server.log"; then echo "server log:"; grep -v '^inferd: serving' "$tmp/server.log" | tail -5; fi
