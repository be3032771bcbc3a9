// Browser benchmark of the JS API (not a test): analyze (decode + detect + align + RRF-56 encode) of one 640x480
// photo and one compare, on the WebGPU and the CPU path of the same page, in headless Chromium. Ratios mean
// something here; absolute times only on the machine they were measured on.
//   bash web/build.sh && node tests/web/bench.mjs [iterations=5]
import { start, bytesOf } from "./harness.mjs";

const iterations = Number(process.argv[2] || 5);
const h = await start();
try {
  await h.page.goto(h.url + "facepatch/package.json");
  const rows = await h.page.evaluate(
    async ([bytes, iterations]) => {
      const { Verifier } = await import("/facepatch/facepatch.js");
      const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const out = [];
      for (const backend of ["webgpu", "cpu"]) {
        let t = performance.now();
        const v = await Verifier.load({ backend });
        const load = performance.now() - t;
        const blob = new Blob([new Uint8Array(bytes)]);
        const first = await v.analyze(blob); // the detector for this size is built on first use
        const analyze = [];
        const compare = [];
        for (let i = 0; i < iterations; i++) {
          t = performance.now();
          const a = await v.analyze(blob);
          analyze.push(performance.now() - t);
          t = performance.now();
          await v.compare(first.template, a.template);
          compare.push(performance.now() - t);
        }
        out.push({ backend: v.backend.kind, adapter: v.backend.adapter?.architecture || "", load, analyze: median(analyze), compare: median(compare) });
        v.close();
      }
      return out;
    },
    [bytesOf("bench_640x480.jpg"), iterations],
  );
  for (const r of rows) {
    console.log(`${r.backend.padEnd(6)} ${r.adapter.padEnd(11)} load ${r.load.toFixed(0).padStart(6)} ms   analyze 640x480 (median of ${iterations}) ${r.analyze.toFixed(0).padStart(6)} ms   compare ${r.compare.toFixed(1)} ms`);
  }
  console.log(`WebGPU / CPU analyze time: ${(rows[0].analyze / rows[1].analyze).toFixed(1)}x`);
} finally {
  await h.close();
}
