#!/usr/bin/env bash
# Installs what inferd needs on Debian 12, as root: build tools and libraries, plus what the
# test suite and benchmarks use (python3-torch to generate test models, onnxruntime-node from
# npm as the reference peer, installed with --ignore-scripts into bench/ort/node_modules).
#   scripts/install-deps.sh            everything, benchmark peers included (wrk, nginx, Flask)
#   scripts/install-deps.sh --test     what building and the test suite need (CI uses this)
#   scripts/install-deps.sh --build    only what building needs
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential cmake clang libclang-rt-14-dev protobuf-c-compiler libprotobuf-c-dev
            libonnx-dev pkg-config libevent-dev libjansson-dev curl)
test_pkgs=(valgrind python3 python3-numpy python3-onnx python3-torch python3-torchvision python3-sklearn prometheus python3-yaml chromium)
bench_pkgs=(wrk nginx python3-flask)
node_pkgs=(nodejs npm)

pkgs=("${build_pkgs[@]}")
if [ "${1:-}" != "--build" ]; then
  pkgs+=("${test_pkgs[@]}")
  [ "${1:-}" = "--test" ] || pkgs+=("${bench_pkgs[@]}")
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs+=("${node_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" != "--build" ] && [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
  echo "install-deps: onnxruntime-node (benchmark and reference peer)"
  (cd bench/ort && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: done"
