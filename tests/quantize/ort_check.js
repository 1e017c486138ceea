// ONNX Runtime side of tests/test_quantize.sh: runs a quantized model with ORT and compares it
// with inferd's outputs on the same file and with the float reference.
//
//   node ort_check.js golden LABEL QUANT.onnx GOLDEN_DIR INFERD_OUT.npy MIN_COSINE
//       GOLDEN_DIR holds input_<k>_<name>.npy and reference_0.npy (fp32, from ORT).
//   node ort_check.js accuracy LABEL QUANT.onnx IMAGES.npy LABELS.npy INFERD_OUT.npy BASE_ACC
//
// Prints one `PASS name` / `FAIL name: why` line per check.
//
// Agreement of inferd and ORT on the same int8 file: both compute the same integer products
// exactly; they may differ where a value lies on a rounding tie when activations are
// quantized (x / scale computed as a division or as a multiplication by 1/scale), which moves
// one int8 step, and in float summation order. So the tolerance is stated relative to the
// int8 error itself: max |inferd - ORT| <= 0.5 * max |ORT - fp32| + 1e-5 * max |fp32|, and
// their cosine similarity >= 0.9999. A wrong scale, zero point, axis or layout breaks both.
'use strict';
const path = require('path');
const fs = require('fs');
const root = path.join(__dirname, '..', '..');
const ort = require(path.join(root, 'bench', 'ort', 'node_modules', 'onnxruntime-node'));
const npy = require(path.join(root, 'bench', 'ort', 'npy.js'));

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : (na === nb ? 1 : 0);
}
function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) { const d = Math.abs(a[i] - b[i]); if (!(d <= m)) m = d; }
  return m;
}
function maxAbs(a) { let m = 0; for (const v of a) m = Math.max(m, Math.abs(v)); return m; }
function argmaxRows(a, rows) {
  const cols = a.length / rows, out = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (a[r * cols + c] > a[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

let failed = 0;
function check(name, ok, why) {
  if (ok) console.log('PASS ' + name);
  else { console.log('FAIL ' + name + ': ' + why); failed++; }
}

async function runOrt(model, feeds) {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const out = await s.run(feeds);
  return out[s.outputNames[0]];
}

(async () => {
  const [kind, label, model, ...rest] = process.argv.slice(2);
  let ortOut;
  if (kind === 'golden') {
    const [dir, inferdOut, minCos] = rest;
    const feeds = {};
    for (const f of fs.readdirSync(dir).sort()) {
      const m = /^input_\d+_(.+)\.npy$/.exec(f);
      if (!m) continue;
      const a = npy.read(path.join(dir, f));
      feeds[m[1]] = new ort.Tensor(a.type, a.data, a.shape);
    }
    try { ortOut = await runOrt(model, feeds); } catch (e) {
      check(label + ' ort-runs', false, String(e.message || e).split('\n')[0]); process.exit(1);
    }
    check(label + ' ort-runs', true);
    const ref = npy.read(path.join(dir, 'reference_0.npy')).data;
    const ours = npy.read(inferdOut).data;
    const theirs = ortOut.data;
    const ci = cosine(ours, ref), co = cosine(theirs, ref), cio = cosine(ours, theirs);
    const dio = maxAbsDiff(ours, theirs), qerr = maxAbsDiff(theirs, ref);
    const tol = 0.5 * qerr + 1e-5 * maxAbs(ref);
    console.log(`# ${label}: cosine inferd/fp32 ${ci.toFixed(6)}, ORT/fp32 ${co.toFixed(6)}, ` +
      `inferd/ORT ${cio.toFixed(8)}; max|inferd-ORT| ${dio.toExponential(3)} (tolerance ` +
      `${tol.toExponential(3)}), max|ORT-fp32| ${qerr.toExponential(3)}`);
    check(label + ' inferd-cosine', ci >= Number(minCos), `cosine ${ci} < ${minCos}`);
    check(label + ' ort-cosine', co >= Number(minCos), `cosine ${co} < ${minCos}`);
    check(label + ' inferd-matches-ort', ours.length === theirs.length && cio >= 0.9999 && dio <= tol,
      `cosine ${cio}, max abs diff ${dio} > tolerance ${tol}`);
  } else if (kind === 'accuracy') {
    const [images, labels, inferdOut, baseAcc] = rest;
    const x = npy.read(images), y = npy.read(labels).data;
    try {
      ortOut = await runOrt(model, { image: new ort.Tensor(x.type, x.data, x.shape) });
    } catch (e) {
      check(label + ' ort-runs', false, String(e.message || e).split('\n')[0]); process.exit(1);
    }
    check(label + ' ort-runs', true);
    const n = x.shape[0];
    const acc = p => argmaxRows(p, n).filter((c, i) => BigInt(c) === BigInt(y[i])).length / n;
    const ai = acc(npy.read(inferdOut).data), ao = acc(ortOut.data), base = Number(baseAcc);
    console.log(`# ${label}: accuracy inferd ${ai.toFixed(4)}, ORT ${ao.toFixed(4)}, fp32 ${base}`);
    check(label + ' inferd-accuracy', Math.abs(ai - base) <= 0.01, `${ai} vs fp32 ${base}`);
    check(label + ' ort-accuracy', Math.abs(ao - base) <= 0.01, `${ao} vs fp32 ${base}`);
  } else {
    console.error('usage: see the comment at the top'); process.exit(2);
  }
  process.exit(failed ? 1 : 0);
})().catch(e => { console.error(e.message || e); process.exit(1); });
