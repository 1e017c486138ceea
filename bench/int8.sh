#!/usr/bin/env bash
# int8 runtime vs fp32 inferd and vs ONNX Runtime on the same quantized file, one run:
#   bench/int8.sh [BUILD_DIR] [ITERS] [MODELS_DIR]
# Models: the golden BERT-style encoder and ResNet-18 (tests/golden/prepare.sh), quantized by
# tests/quant_models.py into MODELS_DIR (default BUILD_DIR/int8-models): bert_int8 (dynamic)
# and resnet18_qdq (static QDQ). For each model and thread count (1, 2) prints the medians of
# inferd fp32, inferd int8 and ORT int8, the speedup fp32/int8 and the ratio inferd/ORT on the
# int8 file (below 1: inferd is faster). The runtimes alternate so machine noise hits all alike.
set -eu
cd "$(dirname "$0")/.."
b=${1:-build}; iters=${2:-30}; md=${3:-$b/int8-models}
tests/golden/prepare.sh build/golden >/dev/null
if [ ! -f "$md/resnet18_qdq/model.onnx" ] || [ ! -f "$md/bert_int8/model.onnx" ]; then
  /usr/bin/python3 tests/quant_models.py "$b/inferd" "$md" build/golden >/dev/null
fi
ours() { # DIR THREADS -> median ms
  local d=$1 t=$2 ins=() f n
  for f in "$d"/input_*.npy; do n=$(basename "$f" .npy); n=${n#input_*_}; ins+=(-i "$n=$f"); done
  "$b/inferd" bench "$d/model.onnx" "${ins[@]}" --threads "$t" --iters "$iters" --warmup 5 --json |
    sed -E 's/.*"median_ms": ([0-9.]+).*/\1/'
}
theirs() { node bench/ort/bench.js "$1" "$2" "$iters" 5 | sed -E 's/.*"median_ms":([0-9.]+).*/\1/'; }
# the machine's load matters as much as the code: print it with the numbers
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
printf '%-14s %7s %10s %10s %10s %10s %10s\n' model threads fp32_ms int8_ms ort_int8_ms fp32/int8 int8/ort
for pair in bert:bert_int8 resnet18:resnet18_qdq; do
  f=${pair%%:*}; q=${pair##*:}
  for t in 1 2; do
    a=$(ours "build/golden/$f" $t); c=$(ours "$md/$q" $t); o=$(theirs "$md/$q" $t)
    awk -v m="$q" -v t=$t -v a="$a" -v c="$c" -v o="$o" \
      'BEGIN { printf "%-14s %7d %10.3f %10.3f %10.3f %10.2f %10.2f\n", m, t, a, c, o, a / c, c / o }'
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
