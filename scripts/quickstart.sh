#!/usr/bin/env bash
# Install what is missing, build, and run the example model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
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
echo
echo "inferd serve (HTTP server and dashboard) is not built yet; see README.md, Status."
