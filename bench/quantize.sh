#!/usr/bin/env bash
# int8 quantization: file size and latency of inferd fp32, inferd int8 and ONNX Runtime int8 on
# the same quantized file, at 1 and 2 threads, for the BERT-style encoder (dynamic) and
# ResNet-18 (static, calibrated on 8 random samples).
#   bench/quantize.sh [BUILD_DIR] [ITERS]          (models from tests/golden/prepare.sh)
# The three runs alternate per model and thread count so that machine noise hits all alike;
# read the ratios, not the absolute times.
set -eu
cd "$(dirname "$0")/.."
b=${1:-build}; iters=${2:-30}
tests/golden/prepare.sh build/golden >/dev/null
tmp=$(mktemp -d /tmp/bench_quantize.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -c "
import numpy as np, os, sys
rng = np.random.default_rng(5)
os.makedirs(sys.argv[1], exist_ok=True)
for i in range(8):
    np.save(os.path.join(sys.argv[1], 's%d.npy' % i), rng.standard_normal((1, 3, 224, 224), dtype=np.float32))
" "$tmp/cal_resnet18"
mkdir -p "$tmp/bert" "$tmp/resnet18"
"$b/inferd" quantize build/golden/bert/model.onnx "$tmp/bert/model.onnx" --mode dynamic >/dev/null
"$b/inferd" quantize build/golden/resnet18/model.onnx "$tmp/resnet18/model.onnx" --mode static \
  --calibration "$tmp/cal_resnet18" >/dev/null
median() { sed -E 's/.*"median_ms": ?([0-9.]+).*/\1/'; }
printf '%-9s %7s %11s %11s %11s %10s %11s %11s\n' model threads fp32_ms int8_ms ort_int8_ms \
  fp32/int8 int8/ort size_ratio
for m in bert resnet18; do
  inputs=()
  for f in build/golden/$m/input_*.npy; do
    n=$(basename "$f" .npy); n=${n#input_*_}
    inputs+=(-i "$n=$f")
    ln -sf "$(pwd)/$f" "$tmp/$m/"
  done
  size=$(awk -v a="$(stat -c %s "$tmp/$m/model.onnx")" -v b="$(stat -c %s build/golden/$m/model.onnx)" \
         'BEGIN { printf "%.3f", a / b }')
  for t in 1 2; do
    fp32=$("$b/inferd" bench build/golden/$m/model.onnx "${inputs[@]}" --threads $t --iters "$iters" --warmup 5 --json | median)
    int8=$("$b/inferd" bench "$tmp/$m/model.onnx" "${inputs[@]}" --threads $t --iters "$iters" --warmup 5 --json | median)
    ort=$(node bench/ort/bench.js "$tmp/$m" $t "$iters" 5 | median)
    awk -v m="$m" -v t=$t -v a="$fp32" -v q="$int8" -v o="$ort" -v s="$size" \
      'BEGIN { printf "%-9s %7d %11.3f %11.3f %11.3f %10.2f %11.2f %11s\n", m, t, a, q, o, a / q, q / o, s }'
  done
done
echo "fp32/int8 > 1: int8 is faster in inferd; int8/ort < 1: inferd int8 beats ONNX Runtime on the same file"
