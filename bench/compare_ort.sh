#!/usr/bin/env bash
# inferd vs ONNX Runtime on the golden models, same inputs, same thread count, one run.
#   bench/compare_ort.sh [BUILD_DIR] [ITERS]       (models from tests/golden/prepare.sh)
# Prints a table of medians and the ratio inferd/ORT (below 1: inferd is faster). The two
# runtimes alternate per model and thread count so that machine noise hits both alike.
set -eu
cd "$(dirname "$0")/.."
b=${1:-build}; iters=${2:-30}
tests/golden/prepare.sh build/golden >/dev/null
printf '%-12s %7s %12s %12s %8s\n' model threads inferd_ms ort_ms ratio
for m in mlp cnn resnet18 mobilenetv2 bert lstm; do
  d=build/golden/$m
  inputs=()
  for f in "$d"/input_*.npy; do
    n=$(basename "$f" .npy); n=${n#input_*_}
    inputs+=(-i "$n=$f")
  done
  for t in 1 2; do
    ours=$("$b/inferd" bench "$d/model.onnx" "${inputs[@]}" --threads $t --iters "$iters" --warmup 5 --json |
           sed -E 's/.*"median_ms": ([0-9.]+).*/\1/')
    theirs=$(node bench/ort/bench.js "$d" $t "$iters" 5 | sed -E 's/.*"median_ms":([0-9.]+).*/\1/')
    awk -v m="$m" -v t=$t -v a="$ours" -v b="$theirs" 'BEGIN { printf "%-12s %7d %12.3f %12.3f %8.2f\n", m, t, a, b, a / b }'
  done
done
