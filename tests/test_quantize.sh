#!/usr/bin/env bash
# inferd quantize: the written files load and run in inferd and in ONNX Runtime, match fp32,
# agree with each other, shrink, keep the digits accuracy; bad models, options and calibration
# data fail with a message and leave no file.
#   tests/test_quantize.sh BUILD/inferd GOLDEN_DIR      (GOLDEN_DIR from tests/golden/prepare.sh)
# One line per check (PASS name / FAIL name: why), then "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
bin=${1:-build/inferd}
golden=${2:-build/golden}
py=/usr/bin/python3
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
tmp=$(mktemp -d /tmp/test_quantize.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
q() { "$bin" quantize --threads 2 "$@"; }

# ONNX Runtime checks print their own PASS/FAIL lines; fold them into the counts.
ort_check() {
  local out
  out=$(node tests/quantize/ort_check.js "$@" 2>&1)
  echo "$out" | grep -E '^(PASS|FAIL|#)'
  pass=$((pass + $(echo "$out" | grep -c '^PASS')))
  fail=$((fail + $(echo "$out" | grep -c '^FAIL')))
  if ! echo "$out" | grep -qE '^(PASS|FAIL)'; then ko "$2 ort" "$(echo "$out" | tail -1)"; fi
}

# Run the quantized model with inferd on a golden folder's inputs; outputs in $tmp/out_LABEL.
run_golden() { # LABEL MODEL DIR
  local args=() f n
  for f in "$3"/input_*.npy; do
    n=$(basename "$f" .npy); n=${n#input_*_}
    args+=(-i "$n=$f")
  done
  rm -rf "$tmp/out_$1"
  "$bin" run "$2" "${args[@]}" -o "$tmp/out_$1" >/dev/null 2>"$tmp/err" ||
    { ko "$1 inferd-runs" "$(cat "$tmp/err")"; return 1; }
  ok "$1 inferd-runs"
}

size_at_most() { # LABEL OUT IN PERCENT
  local a b
  a=$(stat -c %s "$2"); b=$(stat -c %s "$3")
  if [ $((a * 100)) -le $((b * $4)) ]; then ok "$1 size<=$4%"
  else ko "$1 size<=$4%" "$a of $b bytes"; fi
}

# The model against the ONNX checker (full check, with shape inference).
onnx_check() { # LABEL MODEL
  if $py -c "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" \
      "$2" 2>"$tmp/err"; then ok "$1 onnx-checker"
  else ko "$1 onnx-checker" "$(tail -1 "$tmp/err")"; fi
}

quantize_golden() { # LABEL MODEL_NAME MIN_COSINE MAX_SIZE_PERCENT(0: no check) OPTIONS...
  local label=$1 m=$2 cos=$3 size=$4
  shift 4
  local out="$tmp/$label.onnx"
  if ! q "$golden/$m/model.onnx" "$out" "$@" >"$tmp/log" 2>&1; then
    ko "$label quantize" "$(tail -1 "$tmp/log")"; return
  fi
  ok "$label quantize"
  [ "$size" -gt 0 ] && size_at_most "$label" "$out" "$golden/$m/model.onnx" "$size"
  run_golden "$label" "$out" "$golden/$m" || return
  ort_check golden "$label" "$out" "$golden/$m" "$tmp/out_$label/output.npy" "$cos"
}

# ---- set-up -------------------------------------------------------------------------------
for m in mlp cnn resnet18 mobilenetv2 bert lstm; do
  if [ ! -f "$golden/$m/reference_0.npy" ]; then
    ko "golden models" "$golden/$m/reference_0.npy is missing (run tests/golden/prepare.sh $golden)"
    echo "$pass passed, $fail failed"; exit 1
  fi
done
if ! $py tests/quantize/make_inputs.py "$golden" "$tmp" >"$tmp/log" 2>&1; then
  ko "test inputs" "$(tail -1 "$tmp/log")"; echo "$pass passed, $fail failed"; exit 1
fi

# ---- dynamic: every golden model -------------------------------------------------------------
quantize_golden mlp-dynamic mlp 0.99 30
quantize_golden cnn-dynamic cnn 0.99 0
quantize_golden resnet18-dynamic resnet18 0.99 30
quantize_golden mobilenetv2-dynamic mobilenetv2 0.99 30
quantize_golden bert-dynamic bert 0.99 30 --mode dynamic
quantize_golden lstm-dynamic lstm 0.99 0
quantize_golden mlp-dynamic-per-tensor mlp 0.99 30 --per-tensor
onnx_check bert-dynamic "$tmp/bert-dynamic.onnx"

# The dynamic format: one DynamicQuantizeLinear per activation (q, k, v share theirs), every
# MatMul with a constant weight became MatMulInteger, the attention MatMuls stayed float.
if $py - "$tmp/bert-dynamic.onnx" <<'EOF' 2>"$tmp/err"
import collections, sys, onnx
m = onnx.load(sys.argv[1])
c = collections.Counter(n.op_type for n in m.graph.node)
assert c["MatMulInteger"] == 12, c
assert c["DynamicQuantizeLinear"] == 8, c
assert c["MatMul"] == 4, c
init = {t.name: t for t in m.graph.initializer}
for n in m.graph.node:
    if n.op_type == "MatMulInteger":
        w, zp = init[n.input[1]], init[n.input[3]]
        assert w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 2, n.name
        assert zp.data_type == onnx.TensorProto.INT8 and list(zp.dims) == [], n.name
EOF
then ok "bert-dynamic format"; else ko "bert-dynamic format" "$(tail -1 "$tmp/err")"; fi

# ---- static (QDQ) --------------------------------------------------------------------------------
quantize_golden resnet18-static resnet18 0.99 30 --mode static --calibration "$tmp/cal_resnet18"
onnx_check resnet18-static "$tmp/resnet18-static.onnx"
quantize_golden mobilenetv2-static-percentile mobilenetv2 0.99 0 --mode static \
  --calibration "$tmp/cal_mobilenetv2" --method percentile --percentile 99.99
quantize_golden cnn-static-entropy cnn 0.99 0 --mode static --calibration "$tmp/cal_cnn" \
  --method entropy
quantize_golden mlp-static-all-per-tensor mlp 0.99 30 --mode static --calibration "$tmp/cal_mlp" \
  --include-first-last --per-tensor

# The QDQ format on ResNet-18: activations uint8 with scalar scale/zero point, weights int8
# per output channel (axis 0), biases int32, first and last layers float.
if $py - "$tmp/resnet18-static.onnx" <<'EOF' 2>"$tmp/err"
import collections, sys, onnx
m = onnx.load(sys.argv[1])
init = {t.name: t for t in m.graph.initializer}
prod = {o: n for n in m.graph.node for o in n.output}
c = collections.Counter(n.op_type for n in m.graph.node)
assert c["Conv"] == 20 and c["Gemm"] == 1, c
convs = [n for n in m.graph.node if n.op_type == "Conv"]
assert convs[0].input[1] in init, "first Conv should stay float"
for n in convs[1:]:
    dq = prod[n.input[0]]
    assert dq.op_type == "DequantizeLinear" and prod[dq.input[0]].op_type == "QuantizeLinear", n.name
    assert init[dq.input[2]].data_type == onnx.TensorProto.UINT8, n.name
    wdq = prod[n.input[1]]
    assert wdq.op_type == "DequantizeLinear", n.name
    assert init[wdq.input[0]].data_type == onnx.TensorProto.INT8, n.name
    assert [a.i for a in wdq.attribute if a.name == "axis"] == [0], n.name
    assert init[wdq.input[1]].dims[0] == init[wdq.input[0]].dims[0], n.name
    bdq = prod[n.input[2]]
    assert init[bdq.input[0]].data_type == onnx.TensorProto.INT32, n.name
gemm = [n for n in m.graph.node if n.op_type == "Gemm"][0]
assert gemm.input[1] in init, "last Gemm should stay float"
EOF
then ok "resnet18-static format"; else ko "resnet18-static format" "$(tail -1 "$tmp/err")"; fi

# --report and --json on static CNN: per-node errors and the output's cosine.
if q "$golden/cnn/model.onnx" "$tmp/cnn-report.onnx" --mode static --calibration "$tmp/cal_cnn" \
    --report --json >"$tmp/report.json" 2>"$tmp/err" &&
   $py - "$tmp/report.json" <<'EOF' 2>>"$tmp/err"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["mode"] == "static" and r["calibration_batches"] == 4, r
q = [n for n in r["nodes"] if n["quantized"]]
assert q and all(0 <= n["rel_error"] < 0.2 and n["max_abs_error"] >= 0 for n in q), q
assert all("reason" in n for n in r["nodes"] if not n["quantized"])
assert r["outputs"][0]["name"] == "output" and r["outputs"][0]["cosine"] >= 0.99, r["outputs"]
EOF
then ok "cnn-static report-json"; else ko "cnn-static report-json" "$(tail -1 "$tmp/err")"; fi

# ---- digits: accuracy within 1 point of fp32 (97.22%), in inferd and ORT ------------------------
digits=examples/models/digits/1/model.onnx
for mode in dynamic static; do
  out="$tmp/digits-$mode.onnx"
  if q "$digits" "$out" --mode $mode --calibration examples/data/calibration >"$tmp/log" 2>&1 &&
     "$bin" run "$out" -i image=examples/data/test/image.npy -o "$tmp/out_digits_$mode" >/dev/null 2>&1; then
    ok "digits-$mode quantize-run"
    ort_check accuracy "digits-$mode" "$out" examples/data/test/image.npy \
      examples/data/test_labels.npy "$tmp/out_digits_$mode/probabilities.npy" 0.9722
  else
    ko "digits-$mode quantize-run" "$(tail -1 "$tmp/log")"
  fi
done

# ---- opset: 11 is raised to 13 when every op keeps its meaning ----------------------------------
if q "$tmp/opset11/model.onnx" "$tmp/opset11.onnx" >"$tmp/log" 2>&1 &&
   $py -c "import onnx,sys; m=onnx.load(sys.argv[1]); assert [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')] == [13]" \
     "$tmp/opset11.onnx" 2>"$tmp/err"; then
  ok "opset11 raised-to-13"
  run_golden opset11 "$tmp/opset11.onnx" "$tmp/opset11" &&
    ort_check golden opset11 "$tmp/opset11.onnx" "$tmp/opset11" "$tmp/out_opset11/y.npy" 0.99
else
  ko "opset11 raised-to-13" "$(tail -1 "$tmp/log") $(tail -1 "$tmp/err" 2>/dev/null)"
fi

# ---- errors: message naming the cause, non-zero exit, no output (nor OUT.tmp) -------------------
expect_error() { # LABEL PATTERN MODEL ARGS...
  local label=$1 pat=$2 model=$3
  shift 3
  local out="$tmp/err_$label.onnx"
  if q "$model" "$out" "$@" >"$tmp/log" 2>&1; then
    ko "error $label" "exit 0 (expected a failure)"
  elif ! grep -q -- "$pat" "$tmp/log"; then
    ko "error $label" "message lacks '$pat': $(tail -1 "$tmp/log")"
  elif [ -e "$out" ] || [ -e "$out.tmp" ]; then
    ko "error $label" "an output file was left behind"
  else
    ok "error $label"
  fi
}
echo "not a model" >"$tmp/garbage.onnx"
expect_error opset9 "opset 9" "$tmp/opset9/model.onnx"
expect_error opset11-softmax "node 'softmax' (Softmax)" "$tmp/opset11_softmax/model.onnx"
expect_error no-quantizable-node "no quantizable node" "$tmp/noquant/model.onnx"
expect_error external-data "external" "$tmp/external/model.onnx"
expect_error garbage "malformed\|not a valid ONNX" "$tmp/garbage.onnx"
expect_error missing-file "cannot open" "$tmp/nonexistent.onnx"
expect_error explicit-node "node 'scores' (MatMul) cannot be quantized: its weight 'x_t'" \
  "$tmp/act_matmul/model.onnx" --node scores
expect_error unknown-exclude "exclude 'nope'" "$tmp/act_matmul/model.onnx" --exclude nope
expect_error static-no-calibration "calibration" "$digits" --mode static
expect_error bad-calibration "b.npy" "$digits" --mode static --calibration "$tmp/bad_cal"
expect_error empty-calibration "no samples\|no .npy\|empty" "$digits" --mode static \
  --calibration "$tmp/empty_cal"
expect_error missing-calibration "$tmp/nowhere" "$digits" --mode static --calibration "$tmp/nowhere"
expect_error bad-percentile "percentile" "$digits" --mode static --calibration \
  examples/data/calibration --method percentile --percentile 150
# The output's folder does not exist: an error, and nothing created.
if q "$digits" "$tmp/no/such/dir/out.onnx" >"$tmp/log" 2>&1; then
  ko "error output-folder" "exit 0"
elif [ -e "$tmp/no" ]; then ko "error output-folder" "something was created"
else ok "error output-folder"; fi
# A node that cannot be quantized and was not asked for is reported, not an error.
if q "$tmp/act_matmul/model.onnx" "$tmp/act.onnx" --json >"$tmp/act.json" 2>"$tmp/err" &&
   $py -c "import json,sys; r=json.load(open(sys.argv[1])); n={x['name']: x for x in r['nodes']}; assert n['proj']['quantized'] and not n['scores']['quantized'] and 'x_t' in n['scores']['reason']" \
     "$tmp/act.json" 2>>"$tmp/err"; then ok "skipped node reported"
else ko "skipped node reported" "$(tail -1 "$tmp/err")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
