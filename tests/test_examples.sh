#!/usr/bin/env bash
# Checks the examples/ digits classifier with the inferd CLI: the committed model runs on the
# held-out test split with accuracy >= 0.95, a batch of one gives the same answer as the same
# image inside the full batch (dynamic batch dimension), and the example files are consistent
# (config.json and the request bodies parse; the requests carry the first test images).
#   tests/test_examples.sh PATH/TO/inferd
# Needs /usr/bin/python3 with numpy (python3-numpy). Retrain with examples/train_digits.py.
set -u
bin=$1
ex=$(cd "$(dirname "$0")/../examples" && pwd)
py=/usr/bin/python3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail+1)); }

model=$ex/models/digits/1/model.onnx
images=$ex/data/test/image.npy
labels=$ex/data/test_labels.npy

# the example files are there, and the model stays small
size=$(stat -c %s "$model" 2>/dev/null || echo 0)
if [ -f "$images" ] && [ -f "$labels" ] && [ "$size" -gt 0 ] && [ "$size" -lt 204800 ]; then
  ok "example model ($size bytes) and test data present"
else bad "example files" "model size $size, images/labels $(ls "$ex/data" 2>&1)"; fi
# data/test is a dataset folder for `inferd eval --data`: every .npy in it is a batch of the
# one input, so it must hold the images and nothing else (the labels sit beside it)
intest=$(cd "$ex/data/test" 2>/dev/null && ls)
if [ "$intest" = "image.npy" ]; then ok "data/test holds only image.npy"
else bad "data/test holds only image.npy" "it holds: $(echo $intest)"; fi
ncal=$(ls "$ex/data/calibration"/*.npy 2>/dev/null | wc -l)
if [ "$ncal" -ge 16 ]; then ok "calibration samples ($ncal)"; else bad "calibration samples" "$ncal files"; fi

# accuracy of inferd on the held-out test split
if "$bin" run "$model" -i image="$images" -o "$work/out" >"$work/log" 2>&1 &&
   [ -f "$work/out/probabilities.npy" ]; then
  if msg=$("$py" - "$work/out/probabilities.npy" "$labels" 2>&1 <<'PY'
import sys, numpy as np
p = np.load(sys.argv[1]); y = np.load(sys.argv[2])
if p.shape != (len(y), 10) or p.dtype != np.float32:
    print(f"probabilities {p.dtype} {p.shape}, want float32 ({len(y)}, 10)"); sys.exit(1)
if not np.allclose(p.sum(1), 1, atol=1e-4):
    print("rows do not sum to 1"); sys.exit(1)
acc = float((p.argmax(1) == y).mean())
print(f"accuracy {acc:.4f} ({int((p.argmax(1) == y).sum())}/{len(y)})")
sys.exit(0 if acc >= 0.95 else 1)
PY
  ); then ok "inferd run on digits test split: $msg"
  else bad "inferd run on digits test split" "$msg"; fi
else bad "inferd run on digits test split" "$(cat "$work/log")"; fi

# a batch of one agrees with the same image in the full batch
if "$py" -c "import sys, numpy as np; np.save(sys.argv[2], np.load(sys.argv[1])[5:6])" \
     "$images" "$work/one.npy" 2>"$work/log" &&
   "$bin" run "$model" -i image="$work/one.npy" -o "$work/one" >>"$work/log" 2>&1 &&
   msg=$("$py" -c "
import sys, numpy as np
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])[5:6]
d = float(np.abs(a - b).max()); print(f'max abs diff {d:.2e}')
sys.exit(0 if a.shape == (1, 10) and d <= 1e-5 else 1)" "$work/one/probabilities.npy" "$work/out/probabilities.npy" 2>&1)
then ok "batch of 1 matches full batch: $msg"
else bad "batch of 1 matches full batch" "${msg:-inferd run failed: $(cat "$work/log")}"; fi

# config.json and the sample requests parse and match the test data
if msg=$("$py" - "$ex" 2>&1 <<'PY'
import json, sys, numpy as np
ex = sys.argv[1]
cfg = json.load(open(f"{ex}/models/digits/config.json"))
assert cfg["max_batch_size"] == 64 and cfg["dynamic_batching"]["preferred_batch_size"] == [16, 32], cfg
x = np.load(f"{ex}/data/test/image.npy")
for name, n in (("infer_one.json", 1), ("infer_batch.json", 4)):
    inp = json.load(open(f"{ex}/requests/{name}"))["inputs"][0]
    assert inp["name"] == "image" and inp["datatype"] == "FP32" and inp["shape"] == [n, 1, 8, 8], name
    assert np.array_equal(np.array(inp["data"], np.float32), x[:n].reshape(-1)), name
inst = np.array(json.load(open(f"{ex}/requests/predict.json"))["instances"], np.float32)
assert np.array_equal(inst, x[:len(inst)]), "predict.json"
print("config.json, infer_one.json, infer_batch.json, predict.json")
PY
); then ok "example files consistent: $msg"; else bad "example files consistent" "$msg"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
