// Reference outputs from ONNX Runtime for each golden model directory:
//   node tests/golden/reference.js DIR...
// Reads DIR/model.onnx and DIR/input_<k>_<name>.npy, writes DIR/reference_<k>.npy per output.
'use strict';
const path = require('path');
const fs = require('fs');
const ortDir = path.join(__dirname, '..', '..', 'bench', 'ort', 'node_modules', 'onnxruntime-node');
const ort = require(ortDir);
const npy = require(path.join(__dirname, '..', '..', 'bench', 'ort', 'npy.js'));

function loadInputs(dir) {
  const feeds = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const m = /^input_\d+_(.+)\.npy$/.exec(f);
    if (!m) continue;
    const a = npy.read(path.join(dir, f));
    feeds[m[1]] = new ort.Tensor(a.type, a.data, a.shape);
  }
  return feeds;
}

(async () => {
  for (const dir of process.argv.slice(2)) {
    const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'),
      { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const out = await session.run(loadInputs(dir));
    session.outputNames.forEach((name, k) => {
      const t = out[name];
      npy.write(path.join(dir, 'reference_' + k + '.npy'), t.type, t.dims, t.data);
    });
    console.log('reference', dir, session.outputNames.join(','));
  }
})().catch(e => { console.error(e.message || e); process.exit(1); });
