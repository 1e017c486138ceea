#!/usr/bin/env bash
# inferd prune: the written files load and run in inferd and in ONNX Runtime with the same
# outputs; the sparse kernel and dense SGEMM agree on them; the patterns hold (sparsity per
# layer and globally, 2:4 groups, channels really removed and the file smaller); --exclude and
# --json work; bad options and models fail with a message and leave no file.
#   tests/test_prune.sh BUILD/inferd GOLDEN_DIR      (GOLDEN_DIR from tests/golden/prepare.sh)
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
tmp=$(mktemp -d /tmp/test_prune.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
digits=examples/models/digits/1/model.onnx

for m in mlp cnn bert; do
  if [ ! -f "$golden/$m/model.onnx" ]; then
    ko "golden models" "$golden/$m/model.onnx is missing (run tests/golden/prepare.sh $golden)"
    echo "$pass passed, $fail failed"; exit 1
  fi
done

# The ONNX Runtime side: run MODEL on the inputs of DIR (input_<k>_<name>.npy, or NAME=FILE
# pairs) and compare with inferd's output npy: both compute in float on the same weights, so
# they agree to float rounding (relative 1e-4 of the largest output, cosine >= 0.99999).
cat >"$tmp/ort_compare.js" <<'EOF'
'use strict';
const path = require('path'), fs = require('fs');
const root = process.cwd();
const ort = require(path.join(root, 'bench', 'ort', 'node_modules', 'onnxruntime-node'));
const npy = require(path.join(root, 'bench', 'ort', 'npy.js'));
(async () => {
  const [label, model, inferdOut, ...ins] = process.argv.slice(2);
  const feeds = {};
  for (const spec of ins) {
    if (spec.includes('=')) {
      const [n, f] = spec.split('=');
      const a = npy.read(f); feeds[n] = new ort.Tensor(a.type, a.data, a.shape);
    } else {
      for (const f of fs.readdirSync(spec).sort()) {
        const m = /^input_\d+_(.+)\.npy$/.exec(f);
        if (!m) continue;
        const a = npy.read(path.join(spec, f)); feeds[m[1]] = new ort.Tensor(a.type, a.data, a.shape);
      }
    }
  }
  let out;
  try {
    const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    out = (await s.run(feeds))[s.outputNames[0]].data;
  } catch (e) {
    console.log(`FAIL ${label} ort-runs: ${String(e.message || e).split('\n')[0]}`); process.exit(1);
  }
  console.log(`PASS ${label} ort-runs`);
  const ours = npy.read(inferdOut).data;
  let dot = 0, na = 0, nb = 0, diff = 0, mag = 0;
  for (let i = 0; i < out.length; i++) {
    dot += ours[i] * out[i]; na += ours[i] * ours[i]; nb += out[i] * out[i];
    diff = Math.max(diff, Math.abs(ours[i] - out[i])); mag = Math.max(mag, Math.abs(out[i]));
  }
  const cos = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : (na === nb ? 1 : 0);
  const good = ours.length === out.length && cos >= 0.99999 && diff <= 1e-4 * mag + 1e-5;
  console.log(`${good ? 'PASS' : 'FAIL'} ${label} inferd-matches-ort` +
    (good ? '' : `: cosine ${cos}, max abs diff ${diff} (largest output ${mag})`));
  process.exit(good ? 0 : 1);
})().catch(e => { console.log(`FAIL ${label} ort: ${e.message || e}`); process.exit(1); });
EOF

ort_compare() { # LABEL MODEL INFERD_OUT.npy INPUTS...
  local out
  out=$(node "$tmp/ort_compare.js" "$@" 2>&1)
  echo "$out" | grep -E '^(PASS|FAIL)'
  pass=$((pass + $(echo "$out" | grep -c '^PASS')))
  fail=$((fail + $(echo "$out" | grep -c '^FAIL')))
  if ! echo "$out" | grep -qE '^(PASS|FAIL)'; then ko "$1 ort" "$(echo "$out" | tail -1)"; fi
}

# inferd run on a golden folder's inputs (or NAME=FILE pairs): $tmp/out_LABEL/output.npy
run_inferd() { # LABEL MODEL INPUTS...
  local label=$1 model=$2 args=() f n
  shift 2
  for spec in "$@"; do
    if [ -d "$spec" ]; then
      for f in "$spec"/input_*.npy; do n=$(basename "$f" .npy); n=${n#input_*_}; args+=(-i "$n=$f"); done
    else
      args+=(-i "$spec")
    fi
  done
  rm -rf "$tmp/out_$label"
  "$bin" run "$model" "${args[@]}" -o "$tmp/out_$label" >/dev/null 2>"$tmp/err"
}

# Prune, run in inferd (sparse kernel forced, and dense), compare the two and with ORT.
prune_check() { # LABEL IN INPUTS OPTIONS...
  local label=$1 in=$2 inputs=$3
  shift 3
  local out="$tmp/$label.onnx"
  if ! "$bin" prune "$in" "$out" --json "$@" >"$tmp/$label.json" 2>"$tmp/err"; then
    ko "$label prune" "$(tail -1 "$tmp/err")"; return 1
  fi
  ok "$label prune"
  if ! IFD_SPARSE=on run_inferd "$label" "$out" $inputs; then
    ko "$label inferd-runs" "$(tail -1 "$tmp/err")"; return 1
  fi
  ok "$label inferd-runs"
  if IFD_SPARSE=off run_inferd "${label}_dense" "$out" $inputs &&
     $py -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
d = float(np.abs(a - b).max()); m = float(np.abs(b).max())
assert d <= 1e-4 * m + 1e-5, 'max abs diff %g of %g' % (d, m)
" "$tmp/out_$label/"*.npy "$tmp/out_${label}_dense/"*.npy 2>"$tmp/err"; then
    ok "$label sparse-kernel-matches-dense"
  else
    ko "$label sparse-kernel-matches-dense" "$(tail -1 "$tmp/err")"
  fi
  ort_compare "$label" "$out" "$(ls "$tmp/out_$label/"*.npy | head -1)" $inputs
}

pycheck() { # NAME SCRIPT ARGS...
  local name=$1 script=$2
  shift 2
  if $py -c "$script" "$@" 2>"$tmp/err"; then ok "$name"; else ko "$name" "$(tail -1 "$tmp/err")"; fi
}

# ---- unstructured, per layer: 90% of the encoder's linear layers -------------------------------
prune_check bert-90 "$golden/bert/model.onnx" "$golden/bert" --sparsity 0.9
pycheck "bert-90 every constant MatMul weight is 90% zeros, the rest untouched" "
import sys, numpy as np, onnx
from onnx import numpy_helper as nh
a = onnx.load(sys.argv[1]); b = onnx.load(sys.argv[2])
ia = {t.name: nh.to_array(t) for t in a.graph.initializer}
ib = {t.name: nh.to_array(t) for t in b.graph.initializer}
w = {n.input[1] for n in a.graph.node if n.op_type == 'MatMul' and n.input[1] in ia}
assert len(w) == 12, len(w)
for k in w:
    s = float((ib[k] == 0).mean())
    assert abs(s - 0.9) < 0.001, (k, s)
    kept = ib[k] != 0
    assert np.array_equal(ib[k][kept], ia[k][kept]), k
    # what was cut is the smallest by magnitude
    assert np.abs(ia[k][~kept]).max() <= np.abs(ia[k][kept]).min(), k
for k in ia:
    if k not in w: assert np.array_equal(ia[k], ib[k]), k
" "$golden/bert/model.onnx" "$tmp/bert-90.onnx"
pycheck "bert-90 --json report" "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['pattern'] == 'unstructured' and r['scope'] == 'layer' and r['pruned'] == 12, r['pruned']
assert r['bytes_in'] > 0 and r['bytes_out'] > 0
ls = [l for l in r['layers'] if l['pruned']]
assert all(abs(l['sparsity'] - 0.9) < 0.001 for l in ls)
kept = [l for l in r['layers'] if not l['pruned']]
assert len(kept) == 4 and all('not a constant' in l['reason'] for l in kept), kept
assert r['nonzero_after'] < 0.3 * r['nonzero_before'] and r['params_after'] == r['params_before']
" "$tmp/bert-90.json"
onnx_ok() { # LABEL MODEL
  pycheck "$1 onnx-checker" "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$2"
}
onnx_ok bert-90 "$tmp/bert-90.onnx"

# ---- 2:4 -------------------------------------------------------------------------------------------
prune_check bert-2to4 "$golden/bert/model.onnx" "$golden/bert" --pattern 2:4
pycheck "bert-2to4 at most 2 nonzeros in every 4 along K, the 2 largest kept" "
import sys, numpy as np, onnx
from onnx import numpy_helper as nh
a = onnx.load(sys.argv[1]); b = onnx.load(sys.argv[2])
ia = {t.name: nh.to_array(t) for t in a.graph.initializer}
ib = {t.name: nh.to_array(t) for t in b.graph.initializer}
w = {n.input[1] for n in a.graph.node if n.op_type == 'MatMul' and n.input[1] in ia}
for k in w:
    x, y = ia[k], ib[k]                     # [K, N]: groups run down the columns
    g = y.reshape(y.shape[0] // 4, 4, y.shape[1])
    assert (np.count_nonzero(g, axis=1) <= 2).all(), k
    assert abs(float((y == 0).mean()) - 0.5) < 0.01, k
    gx = np.abs(x.reshape(g.shape)); kept = g != 0
    assert (np.where(kept, gx, np.inf).min(axis=1) >= np.where(kept, -np.inf, gx).max(axis=1)).all(), k
" "$golden/bert/model.onnx" "$tmp/bert-2to4.onnx"

# ---- unstructured, global scope; --exclude ------------------------------------------------------------
prune_check mlp-global "$golden/mlp/model.onnx" "$golden/mlp" --sparsity 0.8 --scope global \
  --exclude /net/net.4/Gemm
pycheck "mlp-global one threshold over the layers (80% overall, per layer uneven), excluded layer kept" "
import sys, numpy as np, onnx
from onnx import numpy_helper as nh
a = onnx.load(sys.argv[1]); b = onnx.load(sys.argv[2])
ia = {t.name: nh.to_array(t) for t in a.graph.initializer}
ib = {t.name: nh.to_array(t) for t in b.graph.initializer}
g = {n.name: n.input[1] for n in a.graph.node if n.op_type == 'Gemm'}
assert len(g) == 3, g
ex = g.pop('/net/net.4/Gemm')
assert np.array_equal(ia[ex], ib[ex])
tot = sum(ib[w].size for w in g.values()); z = sum(int((ib[w] == 0).sum()) for w in g.values())
assert abs(z / tot - 0.8) < 0.001, z / tot
sp = [float((ib[w] == 0).mean()) for w in g.values()]
assert max(sp) - min(sp) > 0.01, sp
kept = np.concatenate([np.abs(ib[w][ib[w] != 0]) for w in g.values()])
cut = np.concatenate([np.abs(ia[w][ib[w] == 0]) for w in g.values()])
assert cut.max() <= kept.min()
" "$golden/mlp/model.onnx" "$tmp/mlp-global.onnx"

# ---- channel ------------------------------------------------------------------------------------------------
prune_check cnn-channel "$golden/cnn/model.onnx" "$golden/cnn" --sparsity 0.3 --pattern channel
pycheck "cnn-channel conv0 16 -> 11 and conv1's inputs; the grouped conv blocks conv1; fc feeds the output" "
import json, sys, onnx
from onnx import numpy_helper as nh
b = onnx.load(sys.argv[1]); r = json.load(open(sys.argv[2]))
ib = {t.name: nh.to_array(t) for t in b.graph.initializer}
convs = [n for n in b.graph.node if n.op_type == 'Conv']
assert ib[convs[0].input[1]].shape[0] == 11 and ib[convs[1].input[1]].shape[1] == 11
l = {x['name']: x for x in r['layers']}
assert l['/features/features.0/Conv']['channels_after'] == 11
assert 'grouped' in l['/features/features.4/Conv']['reason']
assert 'graph output' in l['/fc/Gemm']['reason'], l['/fc/Gemm']
" "$tmp/cnn-channel.onnx" "$tmp/cnn-channel.json"

# A model with what exporters fold away: BatchNormalization, a per-channel constant Add, a
# residual Add, Flatten of a spatial map into Gemm (transB) - written with onnx.helper.
mkdir -p "$tmp/bnnet"
$py -c "
import sys, numpy as np, onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as T
r = np.random.default_rng(7); f = lambda *s: r.standard_normal(s).astype(np.float32)
inits = [nh.from_array(a, n) for n, a in [
    ('w0', f(8, 3, 3, 3)), ('b0', f(8)), ('s', r.uniform(0.5, 1.5, 8).astype(np.float32)),
    ('bb', f(8)), ('mu', f(8)), ('var', r.uniform(0.5, 1.5, 8).astype(np.float32)),
    ('w1', f(6, 8, 3, 3)), ('c1', f(1, 6, 1, 1)), ('wr', f(6, 6, 1, 1)), ('wf', f(10, 6 * 64)), ('bf', f(10))]]
nodes = [h.make_node('Conv', ['x', 'w0', 'b0'], ['c0'], name='conv0', pads=[1, 1, 1, 1]),
         h.make_node('BatchNormalization', ['c0', 's', 'bb', 'mu', 'var'], ['n0'], name='bn0'),
         h.make_node('Relu', ['n0'], ['r0'], name='relu0'),
         h.make_node('Conv', ['r0', 'w1'], ['c1o'], name='conv1', pads=[1, 1, 1, 1]),
         h.make_node('Add', ['c1o', 'c1'], ['a1'], name='add1'),
         h.make_node('Relu', ['a1'], ['r1'], name='relu1'),
         h.make_node('Conv', ['r1', 'wr'], ['cr'], name='convres'),
         h.make_node('Add', ['cr', 'r1'], ['res'], name='residual'),
         h.make_node('Flatten', ['res'], ['fl'], name='flat'),
         h.make_node('Gemm', ['fl', 'wf', 'bf'], ['y'], name='fc', transB=1)]
g = h.make_graph(nodes, 'bnnet', [h.make_tensor_value_info('x', T.FLOAT, [2, 3, 8, 8])],
                 [h.make_tensor_value_info('y', T.FLOAT, [2, 10])], inits)
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)]), sys.argv[1] + '/model.onnx')
np.save(sys.argv[1] + '/input_0_x.npy', f(2, 3, 8, 8))
" "$tmp/bnnet"
prune_check bnnet-channel "$tmp/bnnet/model.onnx" "$tmp/bnnet" --sparsity 0.3 --pattern channel
pycheck "bnnet-channel BatchNorm, per-channel Add and Flatten->Gemm rewritten; the residual blocks" "
import json, sys, onnx
from onnx import numpy_helper as nh
b = onnx.load(sys.argv[1]); r = json.load(open(sys.argv[2]))
i = {t.name: nh.to_array(t) for t in b.graph.initializer}
l = {x['name']: x for x in r['layers']}
assert l['conv0']['channels_after'] == 6 and i['w0'].shape == (6, 3, 3, 3) and i['b0'].shape == (6,)
assert all(i[k].shape == (6,) for k in ('s', 'bb', 'mu', 'var')) and i['w1'].shape[1] == 6
assert not l['conv1']['pruned'] and 'residual' in l['conv1']['reason'], l['conv1']
assert not l['convres']['pruned'] and not l['fc']['pruned']
" "$tmp/bnnet-channel.onnx" "$tmp/bnnet-channel.json"

prune_check bert-channel "$golden/bert/model.onnx" "$golden/bert" --sparsity 0.3 --pattern channel
pycheck "bert-channel the FFN shrinks 1024 -> 717 through GELU; residual and reshaped layers kept" "
import json, sys, os
r = json.load(open(sys.argv[1]))
l = {x['name']: x for x in r['layers']}
for i in (0, 1):
    f = l['/layers.%d/ff1/MatMul' % i]
    assert f['pruned'] and f['channels_after'] == 717, f
    assert not l['/layers.%d/o/MatMul' % i]['pruned']
    assert not l['/layers.%d/q/MatMul' % i]['pruned']
assert r['bytes_out'] < 0.9 * r['bytes_in'], (r['bytes_out'], r['bytes_in'])
assert os.path.getsize(sys.argv[2]) == r['bytes_out']
" "$tmp/bert-channel.json" "$tmp/bert-channel.onnx"
onnx_ok bert-channel "$tmp/bert-channel.onnx"

# digits classifier: 30% of its channels; smaller file, accuracy within 3 points
prune_check digits-channel "$digits" "image=examples/data/test/image.npy" --sparsity 0.3 --pattern channel
pycheck "digits-channel file smaller" "
import os, sys
a, b = os.path.getsize(sys.argv[1]), os.path.getsize(sys.argv[2])
assert b < 0.8 * a, (a, b)
" "$digits" "$tmp/digits-channel.onnx"
# (the base output for the accuracy comparison)
if run_inferd digits_base "$digits" image=examples/data/test/image.npy; then
  pycheck "digits-channel accuracy within 3 points of the original" "
import sys, numpy as np
y = np.load(sys.argv[3]); acc = lambda p: float((np.load(p).argmax(1) == y).mean())
a, b = acc(sys.argv[1]), acc(sys.argv[2])
print('# digits accuracy %.4f -> %.4f' % (a, b))
assert b >= a - 0.03, (a, b)
" "$tmp/out_digits_base/probabilities.npy" "$tmp/out_digits-channel/probabilities.npy" \
    examples/data/test_labels.npy
fi

# ---- errors: message naming the problem, non-zero exit, no file ------------------------------------------
expect_error() { # NAME PATTERN ARGS...
  local name=$1 pat=$2
  shift 2
  rm -f "$tmp/bad.onnx" "$tmp/bad.onnx.tmp"
  if "$bin" prune "$@" >"$tmp/out" 2>"$tmp/err"; then ko "$name" "exit status 0"; return; fi
  if [ -e "$tmp/bad.onnx" ] || [ -e "$tmp/bad.onnx.tmp" ]; then ko "$name" "left a file behind"; return; fi
  if grep -qiE -- "$pat" "$tmp/err"; then ok "$name"
  else ko "$name" "message '$(head -1 "$tmp/err")' lacks /$pat/"; fi
}
m="$golden/mlp/model.onnx"
expect_error "error sparsity 0" "sparsity" "$m" "$tmp/bad.onnx" --sparsity 0
expect_error "error sparsity 1" "sparsity" "$m" "$tmp/bad.onnx" --sparsity 1
expect_error "error sparsity 1.5" "sparsity" "$m" "$tmp/bad.onnx" --sparsity 1.5
expect_error "error sparsity abc" "sparsity" "$m" "$tmp/bad.onnx" --sparsity abc
expect_error "error sparsity missing" "sparsity" "$m" "$tmp/bad.onnx"
expect_error "error 2:4 with sparsity 0.7" "2:4.*0.5" "$m" "$tmp/bad.onnx" --pattern 2:4 --sparsity 0.7
expect_error "error unknown pattern" "pattern" "$m" "$tmp/bad.onnx" --sparsity 0.5 --pattern 3:8
expect_error "error --exclude of a missing node" "nosuchnode" "$m" "$tmp/bad.onnx" --sparsity 0.5 --exclude nosuchnode
expect_error "error everything excluded" "nothing.*excluded" "$m" "$tmp/bad.onnx" --sparsity 0.5 \
  --exclude /net/net.0/Gemm --exclude /net/net.2/Gemm --exclude /net/net.4/Gemm
expect_error "error channel pruning with nothing rewritable" "nothing could be pruned.*" \
  "$golden/mlp/model.onnx" "$tmp/bad.onnx" --sparsity 0.5 --pattern channel --exclude /net/net.0/Gemm --exclude /net/net.2/Gemm
head -c 1000 "$m" >"$tmp/truncated.onnx"
expect_error "error only layers that cannot be rewritten remain (named with the reason)" \
  "conv1.*residual.*another branch" "$tmp/bnnet/model.onnx" "$tmp/bad.onnx" --sparsity 0.3 \
  --pattern channel --exclude conv0
expect_error "error truncated model" "truncated|parse|invalid|corrupt" "$tmp/truncated.onnx" "$tmp/bad.onnx" --sparsity 0.5
expect_error "error missing input file" "no such|cannot|open" "$tmp/none.onnx" "$tmp/bad.onnx" --sparsity 0.5
$py -c "
import sys, onnx
from onnx import helper as h, TensorProto as T
g = h.make_graph([h.make_node('Relu', ['x'], ['y'], name='r')], 'g',
                 [h.make_tensor_value_info('x', T.FLOAT, [2])], [h.make_tensor_value_info('y', T.FLOAT, [2])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)]), sys.argv[1])
" "$tmp/relu.onnx"
expect_error "error nothing prunable" "nothing to prune" "$tmp/relu.onnx" "$tmp/bad.onnx" --sparsity 0.5
expect_error "error output is the input" "is the input" "$m" "$m" --sparsity 0.5

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
