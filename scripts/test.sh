#!/usr/bin/env bash
# The whole test suite: release build (gcc), unit tests, ONNX conformance, golden models vs
# ONNX Runtime, CLI tests, server tests over HTTP; then the same under ASan+UBSan (clang); then
# each fuzz target for a bounded time. Every step prints its own lines; the last line is
# "N passed, N failed".
#   scripts/test.sh [--quick]      --quick: skip the sanitizer and fuzz stages
set -u
cd "$(dirname "$0")/.."
root=$PWD
export IFD_ONNX_TESTS=${IFD_ONNX_TESTS:-$root/../shared/onnx-tests}
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_secs=${IFD_FUZZ_SECONDS:-60}
quick=0; [ "${1:-}" = "--quick" ] && quick=1
passed=0; failed=0; skipped=0
logdir=$root/build/test-logs; mkdir -p "$logdir"

# Run a step; add the counts from its "N passed, M failed" line, or 1 pass/fail by exit code.
step() {
  local name=$1; shift
  local log="$logdir/$name.log"
  echo "=== $name: $*"
  "$@" >"$log" 2>&1
  local rc=$?
  grep -E '^(FAIL|XPASS|SKIP golden|ERROR|==[0-9]+==ERROR)' "$log" | head -40
  local line
  # a step may run several programs: add up all their "N passed, M failed" lines
  line=$(awk '/^[0-9]+ passed, [0-9]+ failed/ { p += $1; f += $3 } END { if (NR && (p + f) > 0) printf "%d passed, %d failed", p, f }' "$log")
  if [ -n "$line" ]; then
    local p f
    p=${line%% passed*}
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    grep -E '^conformance:' "$log" | tail -1
    echo "--- $name: $line (exit $rc)"
  elif [ "$rc" -eq 3 ]; then
    skipped=$((skipped + 1)); echo "--- $name: skipped: $(tail -1 "$log")"
  elif [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); echo "--- $name: ok"
  else
    failed=$((failed + 1)); echo "--- $name: FAILED (exit $rc), last lines:"; tail -20 "$log"
  fi
}

build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null && cmake --build "$dir" -j"$jobs"
}

unit_tests() { # build dir
  local rc=0
  for t in "$1"/tests/test_*; do
    [ -x "$t" ] || continue
    case $t in *test_golden) continue ;; esac
    "$t" || rc=1
  done
  return $rc
}

suite() { # build dir, label
  local b=$1 label=$2
  step "$label-unit" unit_tests "$b"
  step "$label-conformance" "$b/tests/ifd_conformance" --root "$IFD_ONNX_TESTS" \
       --xfail tests/conformance_xfail.txt --ops-doc "$b/OPERATORS.md"
  if [ "$golden_ready" = 1 ]; then
    step "$label-golden" "$b/tests/test_golden" build/golden
    step "$label-qmodels" "$b/tests/test_qkernels" build/qmodels
    step "$label-conv-torch" /usr/bin/python3 tests/test_conv_torch.py "$b/inferd"
  fi
  step "$label-cli" tests/test_cli.sh "$b/inferd"
  step "$label-serve" /usr/bin/python3 tests/serve/test_serve.py "$b/inferd" "$IFD_ONNX_TESTS"
  step "$label-protocols" /usr/bin/python3 tests/serve/test_protocols.py "$b/inferd" "$IFD_ONNX_TESTS"
  step "$label-batching" /usr/bin/python3 tests/serve/test_batching.py "$b/inferd" "$IFD_ONNX_TESTS"
  step "$label-http" /usr/bin/python3 tests/serve/test_http.py "$b/inferd" "$IFD_ONNX_TESTS"
  step "$label-repository" /usr/bin/python3 tests/serve/test_repository.py "$b/inferd"
  IFD_TEST_OUT="$root/$b" step "$label-monitoring" /usr/bin/python3 tests/serve/test_monitoring.py "$b/inferd"
  step "$label-examples" tests/test_examples.sh "$b/inferd"
  step "$label-eval" tests/test_eval.sh "$b/inferd"
  if [ "$golden_ready" = 1 ]; then
    step "$label-quantize" tests/test_quantize.sh "$b/inferd" build/golden
    step "$label-prune" tests/test_prune.sh "$b/inferd" build/golden
  fi
}

step build-gcc build build -DCMAKE_C_COMPILER=gcc
step golden-prepare tests/golden/prepare.sh build/golden
golden_ready=0; [ -f build/golden/lstm/reference_0.npy ] && golden_ready=1
if [ "$golden_ready" = 1 ]; then
  step qmodels-prepare /usr/bin/python3 tests/quant_models.py build/inferd build/qmodels build/golden
fi
suite build release
step deploy tests/test_deploy.sh build

if [ $quick = 0 ]; then
  step build-asan build build-asan -DCMAKE_C_COMPILER=clang -DIFD_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
  suite build-asan asan
  step build-fuzz build build-fuzz -DCMAKE_C_COMPILER=clang -DIFD_FUZZ=ON
  step fuzz tests/run_fuzz.sh build-fuzz "$fuzz_secs"
fi

echo
echo "logs in $logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
