#!/usr/bin/env bash
# Black-box tests of the inferd CLI (run, bench, inspect) and of bad model files
# (RELIABILITY.md item 16: empty, truncated, random-bytes .onnx -> non-zero exit, clear message).
#   tests/test_cli.sh PATH/TO/inferd
set -u
bin=$1
onnx=${IFD_ONNX_TESTS:-$(cd "$(dirname "$0")/../.." && pwd)/shared/onnx-tests}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail+1)); }

# a model whose result we know: Add of the conformance data
m=$onnx/node/test_add/model.onnx
d=$onnx/node/test_add/test_data_set_0
if "$bin" run "$m" -i x="$d/input_0.pb" -i y="$d/input_1.pb" -o "$work/out" >"$work/log" 2>&1 &&
   [ -f "$work/out/sum.npy" ]; then
  if /usr/bin/python3 -c "import sys" 2>/dev/null && /usr/bin/python3 - "$work/out/sum.npy" "$d" <<'PY'
import sys, numpy as np, onnx, onnx.numpy_helper as h
def pb(p):
    t = onnx.TensorProto(); t.ParseFromString(open(p, 'rb').read()); return h.to_array(t)
got = np.load(sys.argv[1]); want = pb(sys.argv[2] + '/output_0.pb')
sys.exit(0 if np.allclose(got, want, rtol=1e-6) else 1)
PY
  then ok "run writes correct .npy"; else bad "run writes correct .npy" "output differs or numpy/onnx missing"; fi
else
  bad "run -o" "$(cat "$work/log")"
fi

# single-input model binds -i FILE without a name; .npy round trip through run -o
m1=$onnx/node/test_relu/model.onnx
if "$bin" run "$m1" -i "$onnx/node/test_relu/test_data_set_0/input_0.pb" -o "$work/o1" >/dev/null 2>&1 &&
   "$bin" run "$m1" -i "x=$work/o1/y.npy" >"$work/log" 2>&1; then ok "run with .npy input"
else bad "run with .npy input" "$(cat "$work/log")"; fi

# output names are sanitized
if "$bin" run "$m1" -i "$onnx/node/test_relu/test_data_set_0/input_0.pb" -o "$work/o2" >/dev/null 2>&1 &&
   ls "$work/o2" | grep -q '^y.npy$'; then ok "output file naming"; else bad "output file naming" "$(ls "$work/o2")"; fi

# bench --json has the documented fields
if out=$("$bin" bench "$m" --iters 5 --warmup 1 --threads 1 --json 2>&1) &&
   echo "$out" | grep -q '"median_ms"' && echo "$out" | grep -q '"p90_ms"' &&
   echo "$out" | grep -q '"iters": 5' && echo "$out" | grep -q '"threads": 1'; then ok "bench --json"
else bad "bench --json" "$out"; fi

# inspect, text and json
if out=$("$bin" inspect "$m" --json 2>&1) && echo "$out" | grep -q '"operators": {"Add": 1}' &&
   echo "$out" | grep -q '"inputs": \[{"name": "x"'; then ok "inspect --json"
else bad "inspect --json" "$out"; fi
if out=$("$bin" inspect "$onnx/node/test_conv_with_strides_padding/model.onnx" 2>&1) &&
   echo "$out" | grep -q 'FLOPs:' ; then ok "inspect text"; else bad "inspect text" "$out"; fi

# --help for every subcommand
for c in run bench inspect; do
  if "$bin" "$c" --help >/dev/null 2>&1; then ok "$c --help"; else bad "$c --help" "exit $?"; fi
done

# bad model files: non-zero exit and a message naming the problem, never a crash
: >"$work/empty.onnx"
head -c 100 "$m" >"$work/trunc.onnx"
head -c 4096 /dev/urandom >"$work/random.onnx"
printf 'not a model at all' >"$work/text.onnx"
for f in empty trunc random text; do
  "$bin" run "$work/$f.onnx" >"$work/log" 2>&1; rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qi "$f.onnx" "$work/log"; then ok "bad model $f: exit $rc"
  else bad "bad model $f" "exit $rc: $(cat "$work/log")"; fi
done
"$bin" run "$work/missing.onnx" >"$work/log" 2>&1; rc=$?
if [ $rc -ne 0 ] && grep -q 'missing.onnx' "$work/log"; then ok "missing model file"; else bad "missing model file" "exit $rc"; fi

# bad inputs: unknown name, wrong shape -> clear error
"$bin" run "$m" -i nosuch="$d/input_0.pb" >"$work/log" 2>&1; rc=$?
if [ $rc -ne 0 ] && grep -q "unknown input 'nosuch'" "$work/log"; then ok "unknown input name"
else bad "unknown input name" "$(cat "$work/log")"; fi
"$bin" run "$m" -i x="$onnx/node/test_relu/test_data_set_0/input_0.pb" >"$work/log" 2>&1; rc=$?
if [ $rc -ne 0 ] && grep -q "missing input 'y'" "$work/log"; then ok "missing input"
else bad "missing input" "$(cat "$work/log")"; fi
"$bin" nosuchcommand >/dev/null 2>&1; rc=$?
if [ $rc -ne 0 ]; then ok "unknown command"; else bad "unknown command" "exit 0"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
