#!/usr/bin/env bash
# Pruning: latency of the dense and the pruned model in inferd and in ONNX Runtime (same files),
# at 1 and 2 threads, for the BERT-style encoder (90% unstructured on its linear layers, 2:4,
# 30% of channels), ResNet-18 (90% and 70% unstructured: the sparse convolution path, with
# each Conv's measured choice) and the digits CNN (30% of channels, with file size and accuracy).
#   ONLY=resnet18 bench/prune.sh ...         runs the ResNet-18 rows only
#   bench/prune.sh [BUILD_DIR] [ITERS]       (INFERD=path overrides BUILD_DIR/inferd)
# Runs alternate per model and thread count so that machine noise hits all alike; read the
# ratios, not the absolute times.
set -eu
cd "$(dirname "$0")/.."
b=${1:-build}; iters=${2:-30}
bin=${INFERD:-$b/inferd}
golden=${GOLDEN:-build/golden}
tests/golden/prepare.sh "$golden" >/dev/null
tmp=$(mktemp -d /tmp/bench_prune.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
median() { sed -E 's/.*"median_ms": ?([0-9.]+).*/\1/'; }

# dir per variant, with the inputs linked in, for bench/ort/bench.js
variant() { # NAME SRC_MODEL INPUT_DIR PRUNE_OPTIONS...
  local name=$1 src=$2 in=$3
  shift 3
  mkdir -p "$tmp/$name"
  if [ $# -gt 0 ]; then "$bin" prune "$src" "$tmp/$name/model.onnx" "$@" >/dev/null
  else cp "$src" "$tmp/$name/model.onnx"; fi
  for f in "$in"/input_*.npy; do ln -sf "$(realpath "$f")" "$tmp/$name/$(basename "$f")"; done
}
inputs_of() { local f n; for f in "$1"/input_*.npy; do n=$(basename "$f" .npy); n=${n#input_*_}; printf -- '-i %s=%s ' "$n" "$f"; done; }

only=${ONLY:-}
pairs=""
if [ -z "$only" ] || [ "$only" = bert ]; then
  variant bert-dense "$golden/bert/model.onnx" "$golden/bert"
  variant bert-90 "$golden/bert/model.onnx" "$golden/bert" --sparsity 0.9
  variant bert-2to4 "$golden/bert/model.onnx" "$golden/bert" --pattern 2:4
  variant bert-channel30 "$golden/bert/model.onnx" "$golden/bert" --sparsity 0.3 --pattern channel
  pairs="$pairs bert:bert-90 bert:bert-2to4 bert:bert-channel30"
fi
if [ -z "$only" ] || [ "$only" = resnet18 ]; then
  variant resnet18-dense "$golden/resnet18/model.onnx" "$golden/resnet18"
  variant resnet18-90 "$golden/resnet18/model.onnx" "$golden/resnet18" --sparsity 0.9
  variant resnet18-70 "$golden/resnet18/model.onnx" "$golden/resnet18" --sparsity 0.7
  pairs="$pairs resnet18:resnet18-90 resnet18:resnet18-70"
fi
if [ -z "$only" ] || [ "$only" = digits ]; then
  mkdir -p "$tmp/digits_in"
  ln -sf "$(realpath examples/data/test/image.npy)" "$tmp/digits_in/input_0_image.npy"
  variant digits-dense examples/models/digits/1/model.onnx "$tmp/digits_in"
  variant digits-channel30 examples/models/digits/1/model.onnx "$tmp/digits_in" --sparsity 0.3 --pattern channel
  pairs="$pairs digits:digits-channel30"
fi

printf '%-16s %7s %10s %10s %10s %10s %12s %10s %10s\n' model threads dense_ms pruned_ms \
  ort_dense ort_pruned inferd_gain ort_gain size
for pair in $pairs; do
  base=${pair%%:*}-dense; cand=${pair#*:}
  ins=$(inputs_of "$tmp/$base")
  size=$(awk -v a="$(stat -c %s "$tmp/$cand/model.onnx")" -v b="$(stat -c %s "$tmp/$base/model.onnx")" \
         'BEGIN { printf "%.3f", a / b }')
  for t in 1 2; do
    d=$("$bin" bench "$tmp/$base/model.onnx" $ins --threads $t --iters "$iters" --warmup 5 --json | median)
    p=$("$bin" bench "$tmp/$cand/model.onnx" $ins --threads $t --iters "$iters" --warmup 5 --json | median)
    od=$(node bench/ort/bench.js "$tmp/$base" $t "$iters" 5 | median)
    op=$(node bench/ort/bench.js "$tmp/$cand" $t "$iters" 5 | median)
    awk -v m="$cand" -v t=$t -v d="$d" -v p="$p" -v od="$od" -v op="$op" -v s="$size" \
      'BEGIN { printf "%-16s %7d %10.3f %10.3f %10.3f %10.3f %11.2fx %9.2fx %10s\n", m, t, d, p, od, op, d / p, od / op, s }'
  done
done
echo "inferd_gain = dense/pruned latency in inferd; ort_gain = the same in ONNX Runtime on the same files"
# which pruned Conv layers chose the sparse kernel (measured at load: IFD_SPARSE_LOG) and
# whether the pruned model's outputs are the same with the sparse path on and off
for v in resnet18-90 resnet18-70; do
  [ -d "$tmp/$v" ] || continue
  ins=$(inputs_of "$tmp/$v")
  IFD_SPARSE_LOG=1 "$bin" run "$tmp/$v/model.onnx" $ins -o "$tmp/$v/out_auto" 2>"$tmp/$v/log" >/dev/null
  IFD_SPARSE=off "$bin" run "$tmp/$v/model.onnx" $ins -o "$tmp/$v/out_dense" >/dev/null
  echo "$v: $(grep "sparse: Conv" "$tmp/$v/log" | grep -c -- '-> sparse') of $(grep -c "sparse: Conv" "$tmp/$v/log") Conv layers chose sparse (M x K, output, one image, 1 thread)"
  grep "sparse: Conv" "$tmp/$v/log" | sed -E "s/^sparse: Conv '([^']*)' ([0-9x]+) sparsity [0-9.]+, output ([0-9x]+)( \(shifted\))?: dense ([0-9.]+) us, sparse ([0-9.]+) us -> ([a-z]+).*/  \1 \2 \3\4: dense \5 us, sparse \6 us -> \7/"
  for f in "$tmp/$v"/out_auto/*.npy; do
    cmp -s "$f" "$tmp/$v/out_dense/$(basename "$f")" && echo "  $(basename "$f"): identical to the dense run" ||
      /usr/bin/python3 -c "import numpy as n,sys; a=n.load(sys.argv[1]); b=n.load(sys.argv[2]); print('  %s: max abs diff sparse vs dense %.3g (max |y| %.3g)' % (sys.argv[3], abs(a-b).max(), abs(b).max()))" \
        "$f" "$tmp/$v/out_dense/$(basename "$f")" "$(basename "$f")"
  done
done
if [ -d "$tmp/digits-dense" ]; then
  # accuracy of the channel-pruned digits classifier (inferd eval: size, latency, accuracy, errors)
  "$bin" eval "$tmp/digits-dense/model.onnx" "$tmp/digits-channel30/model.onnx" \
    --data examples/data/test --labels examples/data/test_labels.npy | grep -E 'file size|latency|accuracy'
fi
# unstructured files keep their dense layout; compressed they shrink
for v in bert-dense bert-90 bert-2to4 resnet18-dense resnet18-90; do
  [ -d "$tmp/$v" ] || continue
  printf '%-16s gzip -6: %s bytes (file %s)\n' "$v" "$(gzip -6 -c "$tmp/$v/model.onnx" | wc -c)" \
    "$(stat -c %s "$tmp/$v/model.onnx")"
done
