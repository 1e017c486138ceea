#!/usr/bin/env bash
# Black-box tests of `inferd eval` and of the dataset folder reader (src/opt/dataset.c):
#   - the digits classifier against itself: errors 0, cosine 1, agreement 1, accuracy 97.22;
#   - against copies whose weights are scaled by 1.01 and perturbed by noise (made here with
#     onnx): every statistic equals numpy's, computed from `inferd run` outputs, within 1e-5;
#   - a two-input, two-output model read from one subfolder per batch, and from DIR/<input>.npy;
#   - --json parses and has the documented fields;
#   - every bad input: a clear message on stderr, a non-zero exit, nothing on stdout in --json.
#   tests/test_eval.sh PATH/TO/inferd
# Needs /usr/bin/python3 with numpy and onnx (python3-numpy, python3-onnx).
set -u
bin=$1
ex=$(cd "$(dirname "$0")/../examples" && pwd)
py=/usr/bin/python3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail+1)); }

digits=$ex/models/digits/1/model.onnx
testdir=$ex/data/test
labels=$ex/data/test_labels.npy
# few timed runs: this test checks the numbers, bench/ measures speed
fast=(--iters 2 --warmup 1 --threads 1)

# ---- test material, made with onnx and numpy ----------------------------------------------
if ! msg=$("$py" - "$digits" "$testdir/image.npy" "$labels" "$work" 2>&1 <<'PY'
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

digits, images, labels, work = sys.argv[1:5]
x = np.load(images); y = np.load(labels)

def scaled(model, fn):
    m = onnx.load(model)
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(fn(init.name, a).astype(np.float32), init.name))
    return m

# candidates: every weight * 1.01, and weights with noise big enough to flip some predictions
onnx.save(scaled(digits, lambda n, a: a * 1.01), f"{work}/scaled.onnx")
rng = np.random.RandomState(0)
onnx.save(scaled(digits, lambda n, a: a + rng.normal(0, 0.6 * a.std() + 1e-3, a.shape)),
          f"{work}/noisy.onnx")

# the test split in three batches of different sizes, plus a file that is not a sample
os.makedirs(f"{work}/split")
for name, lo, hi in (("a.npy", 0, 100), ("b.npy", 100, 300), ("c.npy", 300, 360)):
    np.save(f"{work}/split/{name}", x[lo:hi])
open(f"{work}/split/README.txt", "w").write("not a sample\n")

# interface mismatches: renamed input, float64 input, fixed batch, renamed output
def variant(fn, name):
    m = onnx.load(digits); fn(m); onnx.save(m, f"{work}/{name}.onnx")
def rename_input(m):
    old = m.graph.input[0].name; m.graph.input[0].name = "pixels"
    for n in m.graph.node:
        for i, v in enumerate(n.input):
            if v == old: n.input[i] = "pixels"
variant(rename_input, "renamed_input")
def fixed_batch(m):
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
variant(fixed_batch, "fixed_batch")
def rename_output(m):
    old = m.graph.output[0].name; m.graph.output[0].name = "probs"
    for n in m.graph.node:
        for i, v in enumerate(n.output):
            if v == old: n.output[i] = "probs"
variant(rename_output, "renamed_output")
# same input name, float64: a Cast in front keeps the graph valid
m = onnx.load(digits)
m.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
m.graph.node.insert(0, helper.make_node("Cast", ["image"], ["image_f32"], to=TensorProto.FLOAT))
for n in m.graph.node[1:]:
    for i, v in enumerate(n.input):
        if v == "image": n.input[i] = "image_f32"
onnx.save(m, f"{work}/double_input.onnx")

# two inputs (one with a ':' in its name, stored as b_0.npy), two outputs:
#   y = (a + b) @ W   float32 [N, 3]      z = relu(a)   float32 [N, 4]
def two_input(w, path):
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b:0"], ["s"]),
         helper.make_node("MatMul", ["s", "W"], ["y"]),
         helper.make_node("Relu", ["a"], ["z"])],
        "two_input",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("b:0", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(w, "W")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
w = np.random.RandomState(1).normal(size=(4, 3)).astype(np.float32)
two_input(w, f"{work}/two.onnx")
m = onnx.load(f"{work}/two.onnx"); del m.graph.output[1]; del m.graph.node[2]
onnx.save(m, f"{work}/two_one_out.onnx")
two_input((w + np.random.RandomState(2).normal(0, 0.3, w.shape)).astype(np.float32),
          f"{work}/two_cand.onnx")
r = np.random.RandomState(3)
a = r.normal(size=(8, 4)).astype(np.float32); b = r.normal(size=(8, 4)).astype(np.float32)
for sub, lo, hi in (("s0", 0, 5), ("s1", 5, 8)):
    os.makedirs(f"{work}/two_data/{sub}")
    np.save(f"{work}/two_data/{sub}/a.npy", a[lo:hi]); np.save(f"{work}/two_data/{sub}/b_0.npy", b[lo:hi])
os.makedirs(f"{work}/two_flat")
np.save(f"{work}/two_flat/a.npy", a); np.save(f"{work}/two_flat/b_0.npy", b)
np.save(f"{work}/two_all_a.npy", a); np.save(f"{work}/two_all_b.npy", b)
np.save(f"{work}/two_labels.npy", r.randint(0, 3, size=8).astype(np.int32))

# a model with no class output: relu of the image, [batch, 1, 8, 8]
g = helper.make_graph([helper.make_node("Relu", ["image"], ["r"])], "relu",
                      [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                      [helper.make_tensor_value_info("r", TensorProto.FLOAT, ["batch", 1, 8, 8])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), f"{work}/relu.onnx")

# bad data
def folder(name, files):
    os.makedirs(f"{work}/{name}")
    for f, v in files.items():
        if isinstance(v, bytes): open(f"{work}/{name}/{f}", "wb").write(v)
        else: np.save(f"{work}/{name}/{f}", v)
folder("bad_npy", {"0.npy": b"\x93NUMPY garbage, not a header"})
folder("bad_shape", {"0.npy": np.zeros((4, 1, 8, 9), np.float32)})
folder("bad_dtype", {"0.npy": np.zeros((4, 1, 8, 8), np.float64)})
folder("empty", {})
folder("two_missing", {}); os.makedirs(f"{work}/two_missing/s0")
np.save(f"{work}/two_missing/s0/a.npy", a)
folder("two_stray", {"a.npy": a, "b_0.npy": b, "c.npy": a})
np.save(f"{work}/labels_short.npy", y[:359])
np.save(f"{work}/labels_float.npy", y.astype(np.float32))
np.save(f"{work}/labels_2d.npy", y.reshape(-1, 1))
open(f"{work}/labels_bad.npy", "wb").write(b"not npy at all")
PY
); then bad "make test material" "$msg"; echo "$pass passed, $fail failed"; exit 1; fi

# numpy's answer for a pair of output folders, checked against eval's JSON.
#   check.py EVAL.json BASE_OUT_DIR CAND_OUT_DIR LABELS|- [OUTPUT_FOR_ACCURACY]
cat >"$work/check.py" <<'PY'
import json, sys, os
import numpy as np
ev = json.load(open(sys.argv[1])); bdir, cdir, labels = sys.argv[2:5]
errs = []
def close(what, got, want, tol=1e-5):
    # relative: eval sums in double like numpy and prints 10 digits, so they agree far closer
    if got is None or abs(got - want) > tol * abs(want) + 1e-12:
        errs.append(f"{what}: eval {got}, numpy {want}")
for o in ev["outputs"]:
    b = np.concatenate([np.load(f) for f in sorted(
        os.path.join(d, o["name"] + ".npy") for d in bdir.split(","))]).astype(np.float64)
    c = np.concatenate([np.load(f) for f in sorted(
        os.path.join(d, o["name"] + ".npy") for d in cdir.split(","))]).astype(np.float64)
    e = np.abs(b - c)
    close(o["name"] + " max_abs_error", o["max_abs_error"], e.max())
    close(o["name"] + " mean_abs_error", o["mean_abs_error"], e.mean())
    cos = (b * c).sum() / np.sqrt((b * b).sum() * (c * c).sum())
    close(o["name"] + " cosine_similarity", o["cosine_similarity"], cos)
    if o["elements"] != b.size: errs.append(f"{o['name']} elements {o['elements']} != {b.size}")
    if b.ndim == 2:
        agree = (b.argmax(1) == c.argmax(1)).mean()
        close(o["name"] + " top1_agreement", o["top1_agreement"], agree)
    elif o["top1_agreement"] is not None:
        errs.append(f"{o['name']} has top1_agreement for rank {b.ndim}")
    if labels != "-" and o["name"] == ev["accuracy_output"]:
        y = np.load(labels)
        ab = 100 * (b.argmax(1) == y).mean(); ac = 100 * (c.argmax(1) == y).mean()
        close("base accuracy_pct", ev["base"]["accuracy_pct"], ab)
        close("candidate accuracy_pct", ev["candidate"]["accuracy_pct"], ac)
        close("accuracy_diff_points", ev["accuracy_diff_points"], ac - ab)
if errs: print("; ".join(errs)); sys.exit(1)
o = ev["outputs"][0]
print(f"{o['name']}: max {o['max_abs_error']:.3g} mean {o['mean_abs_error']:.3g} "
      f"cos {o['cosine_similarity']:.6f} top1 {o['top1_agreement']}"
      + (f" acc {ev['base']['accuracy_pct']:.2f} -> {ev['candidate']['accuracy_pct']:.2f}"
         if ev["accuracy_output"] else ""))
PY

# ---- the digits model against itself ------------------------------------------------------
if "$bin" eval "$digits" "$digits" --data "$testdir" --labels "$labels" --json "${fast[@]}" \
     >"$work/self.json" 2>"$work/log"; then
  if msg=$("$py" - "$work/self.json" "$digits" <<'PY' 2>&1
import json, os, sys
ev = json.load(open(sys.argv[1]))
o = ev["outputs"]
assert len(o) == 1 and o[0]["name"] == "probabilities" and o[0]["dtype"] == "float32", o
assert o[0]["max_abs_error"] == 0 and o[0]["mean_abs_error"] == 0, o
assert o[0]["cosine_similarity"] == 1 and o[0]["top1_agreement"] == 1, o
assert o[0]["top1_rows"] == 360 and o[0]["elements"] == 3600, o
for k in ("base", "candidate"):
    assert round(ev[k]["accuracy_pct"], 2) == 97.22, ev[k]
    assert ev[k]["file_bytes"] == os.path.getsize(sys.argv[2]), ev[k]
    assert all(ev[k]["latency_ms"][t] > 0 for t in ("threads_1", "threads_2")), ev[k]
assert ev["accuracy_diff_points"] == 0 and ev["file_size_ratio"] == 1, ev
assert ev["accuracy_output"] == "probabilities" and ev["batches"] == 1 and ev["samples"] == 360
assert all(ev["latency_ratio"][t] > 0 for t in ("threads_1", "threads_2")), ev
print(f"accuracy {ev['base']['accuracy_pct']:.2f}, errors 0, cosine 1, agreement 1")
PY
  ); then ok "digits vs itself: $msg"; else bad "digits vs itself" "$msg"; fi
else bad "digits vs itself" "$(cat "$work/log")"; fi

# the same test split in three files of 100, 200 and 60 samples (README.txt is skipped)
if "$bin" eval "$digits" "$digits" --data "$work/split" --labels "$labels" --json "${fast[@]}" \
     >"$work/split.json" 2>"$work/log" &&
   msg=$("$py" -c "
import json, sys; ev = json.load(open(sys.argv[1]))
assert ev['batches'] == 3 and ev['samples'] == 360, ev
assert round(ev['base']['accuracy_pct'], 2) == 97.22 and ev['outputs'][0]['top1_rows'] == 360, ev
print('3 batches, 360 samples, accuracy 97.22')" "$work/split.json" 2>&1)
then ok "one batch per .npy file: $msg"; else bad "one batch per .npy file" "${msg:-$(cat "$work/log")}"; fi

# text report
if "$bin" eval "$digits" "$digits" --data "$testdir" --labels "$labels" "${fast[@]}" \
     >"$work/text" 2>"$work/log" &&
   grep -q "^accuracy .*97.22 %.*97.22 %.*+0.00 points" "$work/text" &&
   grep -q "cosine similarity   1.00000000" "$work/text" && grep -q "^latency 2 threads" "$work/text"
then ok "text report"; else bad "text report" "$(cat "$work/text" "$work/log")"; fi

# ---- perturbed candidates against numpy ---------------------------------------------------
"$bin" run "$digits" -i image="$testdir/image.npy" -o "$work/out_base" --threads 1 >/dev/null 2>"$work/log" ||
  bad "inferd run (reference outputs)" "$(cat "$work/log")"
for cand in scaled noisy; do
  if "$bin" run "$work/$cand.onnx" -i image="$testdir/image.npy" -o "$work/out_$cand" \
       --threads 1 >/dev/null 2>"$work/log" &&
     "$bin" eval "$digits" "$work/$cand.onnx" --data "$testdir" --labels "$labels" --json \
       "${fast[@]}" >"$work/$cand.json" 2>>"$work/log"; then
    if msg=$("$py" "$work/check.py" "$work/$cand.json" "$work/out_base" "$work/out_$cand" \
               "$labels" 2>&1) &&
       msg2=$("$py" -c "
import json, sys; ev = json.load(open(sys.argv[1])); o = ev['outputs'][0]
assert o['max_abs_error'] > 0 and o['mean_abs_error'] > 0 and o['cosine_similarity'] < 1, o
if sys.argv[2] == 'noisy':
    assert o['top1_agreement'] < 1 and ev['accuracy_diff_points'] != 0, (o, ev)
" "$work/$cand.json" "$cand" 2>&1); then ok "digits vs $cand weights, numbers match numpy: $msg"
    else bad "digits vs $cand weights" "$msg ${msg2:-}"; fi
  else bad "digits vs $cand weights" "$(cat "$work/log")"; fi
done

# ---- two inputs, two outputs --------------------------------------------------------------
two=$work/two.onnx; twoc=$work/two_cand.onnx
"$bin" run "$two" -i a="$work/two_all_a.npy" -i "b:0=$work/two_all_b.npy" -o "$work/two_out_base" \
  --threads 1 >/dev/null 2>"$work/log" &&
"$bin" run "$twoc" -i a="$work/two_all_a.npy" -i "b:0=$work/two_all_b.npy" -o "$work/two_out_cand" \
  --threads 1 >/dev/null 2>>"$work/log" || bad "inferd run (two-input reference)" "$(cat "$work/log")"
for layout in two_data two_flat; do
  if "$bin" eval "$two" "$twoc" --data "$work/$layout" --labels "$work/two_labels.npy" --json \
       "${fast[@]}" >"$work/$layout.json" 2>"$work/log" &&
     msg=$("$py" "$work/check.py" "$work/$layout.json" "$work/two_out_base" "$work/two_out_cand" \
             "$work/two_labels.npy" 2>&1) &&
     msg2=$("$py" -c "
import json, sys; ev = json.load(open(sys.argv[1]))
assert [o['name'] for o in ev['outputs']] == ['y', 'z'], ev['outputs']
z = ev['outputs'][1]
assert z['max_abs_error'] == 0 and z['cosine_similarity'] == 1 and z['top1_agreement'] == 1, z
assert ev['samples'] == 8 and ev['batches'] == (2 if sys.argv[2] == 'two_data' else 1), ev
assert ev['accuracy_output'] == 'y', ev
" "$work/$layout.json" "$layout" 2>&1); then
    ok "two inputs ($layout layout), numbers match numpy: $msg"
  else bad "two inputs ($layout layout)" "${msg:-} ${msg2:-} $(cat "$work/log")"; fi
done

# ---- bad input: message on stderr, non-zero exit, stdout empty ----------------------------
# expect_error NAME PATTERN ARGS...: PATTERN (grep -E, case-insensitive) must be in stderr
expect_error() {
  local name=$1 pattern=$2; shift 2
  "$bin" eval "$@" --json "${fast[@]}" >"$work/err_out" 2>"$work/err_log"
  local rc=$?
  # a sanitizer report on an error path would still exit non-zero: look for it explicitly
  if [ $rc -ne 0 ] && [ ! -s "$work/err_out" ] && grep -qiE "$pattern" "$work/err_log" &&
     ! grep -qE "Sanitizer|runtime error" "$work/err_log"; then
    ok "error: $name ($(head -c 150 "$work/err_log" | head -1))"
  else bad "error: $name" "exit $rc, stdout '$(head -c 200 "$work/err_out")', stderr '$(cat "$work/err_log")'"; fi
}
expect_error "input names differ" "inputs differ.*'image'" "$digits" "$work/renamed_input.onnx" --data "$testdir"
expect_error "input dtypes differ" "inputs differ.*float32.*float64" "$digits" "$work/double_input.onnx" --data "$testdir"
expect_error "fixed input dims differ" "inputs differ.*\[batch,1,8,8\].*\[1,1,8,8\]" "$digits" "$work/fixed_batch.onnx" --data "$testdir"
expect_error "output names differ" "outputs differ.*'probabilities'" "$digits" "$work/renamed_output.onnx" --data "$testdir"
expect_error "output counts differ" "outputs differ: the base has 2, the candidate 1" "$two" "$work/two_one_out.onnx" --data "$work/two_data"
expect_error "labels count" "359 labels.*360 samples" "$digits" "$digits" --data "$testdir" --labels "$work/labels_short.npy"
expect_error "labels dtype" "labels are float32; expected int64 or int32" "$digits" "$digits" --data "$testdir" --labels "$work/labels_float.npy"
expect_error "labels rank" "labels_2d.npy: labels have rank 2" "$digits" "$digits" --data "$testdir" --labels "$work/labels_2d.npy"
expect_error "labels not npy" "labels_bad.npy" "$digits" "$digits" --data "$testdir" --labels "$work/labels_bad.npy"
expect_error "labels missing" "nowhere.npy" "$digits" "$digits" --data "$testdir" --labels "$work/nowhere.npy"
expect_error "bad .npy in data" "bad_npy/0.npy" "$digits" "$digits" --data "$work/bad_npy"
expect_error "sample shape" "bad_shape/0.npy.*\[4,1,8,9\].*'image' \[batch,1,8,8\]" "$digits" "$digits" --data "$work/bad_shape"
expect_error "sample dtype" "bad_dtype/0.npy.*float64.*float32" "$digits" "$digits" --data "$work/bad_dtype"
expect_error "empty data folder" "empty.*no .npy" "$digits" "$digits" --data "$work/empty"
expect_error "missing data folder" "cannot open data folder" "$digits" "$digits" --data "$work/nowhere"
expect_error "sample without an input" "two_missing/s0.*b_0.npy.*'b:0'" "$two" "$two" --data "$work/two_missing"
expect_error "file named after no input" "c.npy.*not named after any model input" "$two" "$two" --data "$work/two_stray"
expect_error "model missing" "nowhere.onnx" "$digits" "$work/nowhere.onnx" --data "$testdir"
expect_error "model not onnx" "labels_bad.npy" "$digits" "$work/labels_bad.npy" --data "$testdir"
expect_error "no output to score" "no output to score" "$work/relu.onnx" "$work/relu.onnx" --data "$testdir" --labels "$labels"
# allocation failure injected at every 5th allocation of a whole eval (loading, reading the
# folder, the sessions, the runs): a message and exit 1 with nothing on stdout, or a full report
inj=0; badinj=""
for n in $(seq 1 5 600); do
  IFD_FAIL_ALLOC_AT=$n "$bin" eval "$two" "$twoc" --data "$work/two_data" \
    --labels "$work/two_labels.npy" --json --iters 1 --warmup 0 >"$work/err_out" 2>"$work/err_log"
  rc=$?
  if grep -qE "Sanitizer|runtime error" "$work/err_log"; then badinj="$n: $(head -3 "$work/err_log")"; break; fi
  if [ $rc -eq 1 ] && [ ! -s "$work/err_out" ] && grep -q "out of memory" "$work/err_log"; then
    inj=$((inj+1))
  elif [ $rc -ne 0 ] || ! grep -q '^{"base": .*"top1_rows": 8}\]}$' "$work/err_out"; then badinj="$n: exit $rc, stdout '$(head -c 100 "$work/err_out")', stderr '$(head -c 300 "$work/err_log")'"; break; fi
done
if [ -z "$badinj" ] && [ $inj -ge 20 ]; then ok "allocation failures: $inj injected, each a clean error"
else bad "allocation failures" "${badinj:-only $inj failures injected}"; fi

# usage errors exit 2
for args in "$digits $digits" "$digits --data $testdir" "$digits $digits --data $testdir --iters 0" \
            "$digits $digits --data $testdir --bogus"; do
  # shellcheck disable=SC2086
  "$bin" eval $args >"$work/err_out" 2>"$work/err_log"; rc=$?
  if [ $rc -eq 2 ] && [ ! -s "$work/err_out" ] && grep -q "usage\|wants" "$work/err_log"; then
    ok "usage error exits 2: eval ${args//$ex\//}"
  else bad "usage error: eval $args" "exit $rc $(cat "$work/err_log")"; fi
done
if "$bin" eval --help | grep -q "top1_agreement"; then ok "--help documents the JSON fields"
else bad "--help" "no JSON field list"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
