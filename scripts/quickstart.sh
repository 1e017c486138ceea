#!/usr/bin/env bash
# Install what is missing, build, and run the example model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
tests/golden/prepare.sh build/golden
echo
echo "== inferd inspect build/golden/mlp/model.onnx"
build/inferd inspect build/golden/mlp/model.onnx
echo
echo "== inferd run (outputs in build/quickstart-out/)"
build/inferd run build/golden/mlp/model.onnx -i x=build/golden/mlp/input_0_x.npy -o build/quickstart-out
ls build/quickstart-out
echo
echo "== inferd bench"
build/inferd bench build/golden/mlp/model.onnx --iters 200
if [ -d examples/models ]; then
  port=${IFD_HTTP_PORT:-8000}
  echo
  echo "== inferd serve --model-repository examples/models --http-port $port (Ctrl-C stops it)"
  build/inferd serve --model-repository examples/models --http-port "$port" &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null || true; wait $pid || true; exit 0' INT TERM
  if command -v curl >/dev/null 2>&1; then
    for _ in $(seq 100); do
      curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
      sleep 0.1
    done
    echo "== dashboard: http://127.0.0.1:$port/   metrics: http://127.0.0.1:$port/metrics"
    if [ -f examples/requests/infer_one.json ]; then
      echo "== curl -X POST --data-binary @examples/requests/infer_one.json" \
           "http://127.0.0.1:$port/v2/models/digits/infer"
      curl -s -X POST --data-binary @examples/requests/infer_one.json \
           "http://127.0.0.1:$port/v2/models/digits/infer" || true
      echo
    fi
  fi
  wait $pid
fi
