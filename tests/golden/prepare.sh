#!/usr/bin/env bash
# Make the golden models and ONNX Runtime reference outputs in DIR (default build/golden) if
# they are not there yet. Exit 3 with a printed reason when a tool is missing.
set -u
cd "$(dirname "$0")/../.."
dir=${1:-build/golden}
if ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  echo "golden: python3-torch/python3-torchvision are not installed (scripts/install-deps.sh)"; exit 3
fi
if [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
  echo "golden: onnxruntime-node is not installed in bench/ort (scripts/install-deps.sh)"; exit 3
fi
need=0
for m in mlp cnn resnet18 mobilenetv2 bert lstm; do
  [ -f "$dir/$m/reference_0.npy" ] || need=1
done
if [ $need = 1 ]; then
  /usr/bin/python3 tests/golden/make_models.py "$dir" >"$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  node tests/golden/reference.js "$dir"/*/ || exit 1
fi
exit 0
