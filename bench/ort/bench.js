// ONNX Runtime latency for one model directory (model.onnx + input_<k>_<name>.npy):
//   node bench/ort/bench.js DIR THREADS ITERS WARMUP
// Prints one JSON object: median_ms, p90_ms, iters, threads.
'use strict';
const path = require('path');
const fs = require('fs');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
const npy = require(path.join(__dirname, 'npy.js'));

(async () => {
  const [dir, threads, iters, warmup] = process.argv.slice(2);
  const n = Number(iters || 50), w = Number(warmup || 5), t = Number(threads || 1);
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
    intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all' });
  const feeds = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const m = /^input_\d+_(.+)\.npy$/.exec(f);
    if (!m) continue;
    const a = npy.read(path.join(dir, f));
    feeds[m[1]] = new ort.Tensor(a.type, a.data, a.shape);
  }
  const times = [];
  for (let i = 0; i < n + w; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= w) times.push(dt);
  }
  times.sort((a, b) => a - b);
  const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  const p90 = times[Math.max(0, Math.ceil(n * 0.9) - 1)];
  console.log(JSON.stringify({ median_ms: median, p90_ms: p90, iters: n, threads: t }));
})().catch(e => { console.error(e.message || e); process.exit(1); });
