// The JavaScript API (dist/facepatch/) in headless Chromium: parity with `facepatch verify --json`, every kind of
// image source, templates, bad input, the Cache API, and no request leaving the page's origin.
//   bash web/build.sh && node --test tests/web/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { start, bytesOf, cliVerify as cli, ROOT } from "./harness.mjs";

const inputs = (name) => Array.from(readFileSync(join(ROOT, "tests", "data", "inputs", name)));

let h;
before(async () => {
  h = await start();
  // Any same-origin document will do: the tests import the package themselves.
  await h.page.goto(h.url + "facepatch/package.json");
});
after(async () => {
  await h?.close();
});

async function verifyInPage(a, b, args) {
  return h.page.evaluate(
    async ([a, b, args]) => {
      const m = await import("/facepatch/facepatch.js");
      const key = `${args.model}/${args.backend}`;
      window.verifiers ||= {};
      window.verifiers[key] ||= await m.Verifier.load({ model: args.model, backend: args.backend });
      const v = window.verifiers[key];
      const A = await v.analyze(new Blob([new Uint8Array(a)]));
      const B = await v.analyze(new Blob([new Uint8Array(b)]));
      const c = await v.compare(A.template, B.template);
      return { backend: v.backend.kind, score: c.score, match: c.match, threshold: c.threshold, far: c.far,
        rows: c.grid.rows, a: Array.from(c.grid.a), b: Array.from(c.grid.b), faces: [A.faces[A.chosen], B.faces[B.chosen]] };
    },
    [bytesOf(a), bytesOf(b), args],
  );
}

for (const backend of ["cpu", "webgpu"]) {
  test(`per-cell contributions match facepatch verify --json (${backend} path)`, async () => {
    for (const [a, b, same] of [
      ["lfw_Serena_Williams_0001.jpg", "lfw_Serena_Williams_0014.jpg", true],
      ["lfw_Serena_Williams_0001.jpg", "lfw_Jim_Ahern_0001.jpg", false],
    ]) {
      const want = cli(a, b);
      const got = await verifyInPage(a, b, { model: "rrf56", backend });
      assert.equal(got.backend, backend);
      assert.equal(got.match, same, `${a} vs ${b}: match`);
      assert.equal(got.match, want.match);
      assert.ok(Math.abs(got.score - want.score) < 1e-3, `score ${got.score} vs CLI ${want.score}`);
      assert.equal(got.threshold, want.threshold);
      assert.equal(got.far, want.far);
      assert.equal(got.a.length, want.grid.a.length);
      const worst = Math.max(
        ...got.a.map((v, i) => Math.abs(v - want.grid.a[i])),
        ...got.b.map((v, i) => Math.abs(v - want.grid.b[i])),
      );
      assert.ok(worst < 1e-3, `worst per-cell difference ${worst}`);
      const sum = got.a.reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(sum - got.score) < 1e-4, `cells sum to ${sum}, score ${got.score}`);
      assert.ok(Math.abs(got.faces[0].box[0] - want.faces[0].box[0]) < 0.5);
      console.log(`# ${backend}: ${a} vs ${b}: score ${got.score.toFixed(6)} (CLI ${want.score.toFixed(6)}), worst cell diff ${worst.toExponential(2)}`);
    }
  });
}

test("RRF-28 in the page matches the CLI too", async () => {
  const [a, b] = ["lfw_Serena_Williams_0001.jpg", "lfw_Serena_Williams_0014.jpg"];
  const want = cli(a, b, "rrf28");
  const got = await verifyInPage(a, b, { model: "rrf28", backend: "cpu" });
  assert.equal(got.rows, 28);
  assert.ok(Math.abs(got.score - want.score) < 1e-3);
  assert.ok(Math.max(...got.a.map((v, i) => Math.abs(v - want.grid.a[i]))) < 1e-3);
});

test("every image source kind gives the same face", async () => {
  const r = await h.page.evaluate(async (bytes) => {
    const { Verifier } = await import("/facepatch/facepatch.js");
    const v = (window.verifiers ||= {})["rrf56/cpu"] ||= await Verifier.load({ backend: "cpu" });
    const blob = new Blob([new Uint8Array(bytes)], { type: "image/jpeg" });
    const base = await v.analyze(blob);
    const sources = {};
    sources.ImageBitmap = base.photo; // the decoded pixels, exactly
    const c = document.createElement("canvas");
    [c.width, c.height] = [base.width, base.height];
    c.getContext("2d").drawImage(base.photo, 0, 0);
    sources.HTMLCanvasElement = c;
    sources.ImageData = c.getContext("2d").getImageData(0, 0, c.width, c.height);
    const img = new Image();
    img.src = URL.createObjectURL(blob);
    sources.HTMLImageElement = img; // decoded by the browser: may differ by a grey level
    sources.OffscreenCanvas = new OffscreenCanvas(c.width, c.height);
    sources.OffscreenCanvas.getContext("2d").drawImage(c, 0, 0);
    // A <video> playing a stream of that canvas (video frames are re-encoded: close, not exact).
    const video = document.createElement("video");
    video.muted = true;
    video.srcObject = c.captureStream(10);
    await video.play();
    const paint = setInterval(() => c.getContext("2d").drawImage(base.photo, 0, 0), 50);
    while (video.readyState < 2 || video.videoWidth === 0) await new Promise((ok) => setTimeout(ok, 20));
    sources.HTMLVideoElement = video;
    const out = {};
    for (const [k, s] of Object.entries(sources)) {
      const a = await v.analyze(s);
      out[k] = { faces: a.faces.length, score: (await v.compare(base.template, a.template)).score };
    }
    clearInterval(paint);
    out.photoStillUsable = base.photo.width > 0;
    return out;
  }, bytesOf("lfw_Serena_Williams_0001.jpg"));
  for (const [k, s] of Object.entries(r)) {
    if (k === "photoStillUsable") continue;
    assert.equal(s.faces, 1, k);
    const exact = !["HTMLImageElement", "HTMLVideoElement"].includes(k);
    assert.ok(s.score > (exact ? 0.99999 : 0.95), `${k}: self-similarity ${s.score}`);
  }
  assert.equal(r.photoStillUsable, true, "the caller's ImageBitmap is not detached");
});

test("templates round-trip through bytes; corrupt ones and other models' are refused", async () => {
  const r = await h.page.evaluate(async (bytes) => {
    const { Verifier, FacepatchError } = await import("/facepatch/facepatch.js");
    const vs = (window.verifiers ||= {});
    const v = vs["rrf56/cpu"] ||= await Verifier.load({ backend: "cpu" });
    const v28 = vs["rrf28/cpu"] ||= await Verifier.load({ model: "rrf28", backend: "cpu" });
    const a = await v.analyze(new Blob([new Uint8Array(bytes)]));
    const saved = a.template.bytes();
    const back = await v.templateFromBytes(saved.buffer.slice(0));
    const same = await v.compare(a.template, back);
    const err = async (p) => p.then(() => null, (e) => ({ code: e.code, message: e.message, typed: e instanceof FacepatchError }));
    const bad = saved.slice();
    bad[40] ^= 1;
    const a28 = await v28.analyze(new Blob([new Uint8Array(bytes)]));
    const e = a.template.embeddings;
    return {
      score: same.score,
      embeddings: [e.rows, e.cols, e.dim, e.data.length, e.data.every(Number.isFinite)],
      sameCells: back.embeddings.data.every((x, i) => x === e.data[i]),
      model: back.model,
      box: back.face.box,
      origBox: a.template.face.box,
      size: saved.length,
      corrupt: await err(v.templateFromBytes(bad)),
      truncated: await err(v.templateFromBytes(saved.slice(0, 100))),
      notTemplate: await err(v.templateFromBytes(new Uint8Array([1, 2, 3]))),
      otherModel: await err(v.compare(a.template, a28.template)),
      notTemplates: await err(v.compare(a.template, {})),
    };
  }, bytesOf("lfw_Serena_Williams_0001.jpg"));
  assert.ok(Math.abs(r.score - 1) < 1e-6, `self score ${r.score}`);
  assert.deepEqual(r.embeddings, [14, 14, 192, 14 * 14 * 192, true]);
  assert.equal(r.sameCells, true, "the patch embeddings survive the bytes round trip exactly");
  assert.equal(r.model, "rrf56");
  assert.deepEqual(r.box, r.origBox);
  // Header (name, fingerprint, face) + the 14x14x192 cells + checksum: no pixels inside.
  assert.equal(r.size, 89 + 14 * 14 * 192 * 4 + 4);
  assert.equal(r.corrupt.code, "bad-template");
  assert.match(r.corrupt.message, /checksum/);
  assert.equal(r.corrupt.typed, true);
  assert.equal(r.truncated.code, "bad-template");
  assert.match(r.notTemplate.message, /not a facepatch template/);
  assert.equal(r.otherModel.code, "model-mismatch");
  assert.match(r.otherModel.message, /'rrf28'.*'rrf56'/);
  assert.equal(r.notTemplates.code, "bad-input");
});

test("masks change the score and the cells still sum to it", async () => {
  const r = await h.page.evaluate(async ([a, b]) => {
    const { Verifier } = await import("/facepatch/facepatch.js");
    const v = (window.verifiers ||= {})["rrf56/cpu"] ||= await Verifier.load({ backend: "cpu" });
    const A = await v.analyze(new Blob([new Uint8Array(a)]));
    const B = await v.analyze(new Blob([new Uint8Array(b)]));
    const mask = Array.from({ length: 196 }, (_, i) => (Math.floor(i / 14) < 7 ? 1 : 0)); // upper half of the face
    const full = await v.compare(A.template, B.template);
    const half = await v.compare(A.template, B.template, { mask, operatingPoint: "far1e-3" });
    const none = await v.compare(A.template, B.template, { mask: new Array(196).fill(0) }).catch((e) => e.message);
    const short = await v.compare(A.template, B.template, { mask: [1, 0] }).catch((e) => e.message);
    return { full: full.score, half: half.score, cells: half.cells, sum: Array.from(half.grid.a).reduce((s, x) => s + x, 0),
      zeros: Array.from(half.grid.a).slice(98).every((x) => x === 0), op: half.operatingPoint, t: half.threshold,
      t1e3: v.model.operatingPoints["far1e-3"].threshold, none, short };
  }, [bytesOf("lfw_Serena_Williams_0001.jpg"), bytesOf("lfw_Serena_Williams_0014.jpg")]);
  assert.notEqual(r.half, r.full);
  assert.equal(r.cells, 98);
  assert.ok(Math.abs(r.sum - r.half) < 1e-4);
  assert.equal(r.zeros, true);
  assert.equal(r.op, "far1e-3");
  assert.equal(r.t, r.t1e3);
  assert.match(r.none, /leaves out every cell/);
  assert.match(r.short, /mask has 2 cells, the grid 196/);
});

test("bad images get specific errors; no face and several faces are reported", async () => {
  const r = await h.page.evaluate(async ([notImage, truncated, noFace, group]) => {
    const { Verifier } = await import("/facepatch/facepatch.js");
    const v = (window.verifiers ||= {})["rrf56/cpu"] ||= await Verifier.load({ backend: "cpu" });
    const err = (p) => p.then(() => null, (e) => ({ code: e.code, message: e.message }));
    const g = await v.analyze(new Blob([new Uint8Array(group)]));
    const other = await v.chooseFace(g, (g.chosen + 1) % g.faces.length);
    const nf = await v.analyze(new Blob([new Uint8Array(noFace)]));
    return {
      notImage: await err(v.analyze(new Blob([new Uint8Array(notImage)]))),
      truncated: await err(v.analyze(new Blob([new Uint8Array(truncated)]))),
      empty: await err(v.analyze(new Blob([]))),
      wrongType: await err(v.analyze("photo.jpg")),
      noFace: { faces: nf.faces.length, template: nf.template, message: nf.message },
      group: { faces: g.faces.length, chosen: g.chosen, otherChosen: other.chosen, samePhoto: other.photo === g.photo,
        differ: (await v.compare(g.template, other.template)).score < 0.9 },
      badIndex: await err(v.chooseFace(g, 99)),
    };
  }, [inputs("not_an_image.jpg"), inputs("face_truncated.jpg"), inputs("no_face.png"), bytesOf("group_3x2.jpg")]);
  assert.equal(r.notImage.code, "bad-image");
  assert.match(r.notImage.message, /not an image this browser can read/);
  assert.equal(r.truncated.code, "bad-image");
  assert.match(r.truncated.message, /truncated/);
  assert.match(r.empty.message, /empty/);
  assert.equal(r.wrongType.code, "bad-input");
  assert.equal(r.noFace.faces, 0);
  assert.equal(r.noFace.template, null);
  assert.match(r.noFace.message, /no face/);
  assert.equal(r.group.faces, 7);
  assert.notEqual(r.group.otherChosen, r.group.chosen);
  assert.equal(r.group.samePhoto, true);
  assert.equal(r.group.differ, true, "another face gives another template");
  assert.match(r.badIndex.message, /face 99 was asked for but the photo has 7/);
});

test("the models come from the Cache API on a second visit, and an altered model file is refused", async () => {
  // The first tests fetched and cached the files; now the network refuses every model file.
  const page = await h.context.newPage();
  await page.goto(h.url + "facepatch/package.json");
  await page.route("**/models/**", (route) => route.abort("internetdisconnected"));
  const offline = await page.evaluate(async () => {
    const { Verifier } = await import("/facepatch/facepatch.js");
    const stages = new Set();
    const v = await Verifier.load({ backend: "cpu", onProgress: (p) => stages.add(p.stage) });
    return { model: v.model.name, stages: [...stages] };
  });
  assert.equal(offline.model, "rrf56");
  assert.ok(offline.stages.includes("cache") && !offline.stages.includes("download"), offline.stages.join());
  await page.unroute("**/models/**");
  // A fresh browser context (empty cache) whose server sends altered weights.
  const ctx = await h.browser.newContext();
  const p2 = await ctx.newPage();
  await p2.route("**/models/rrf56.safetensors", async (route) => {
    const r = await route.fetch();
    const body = Buffer.from(await r.body());
    body[body.length - 1] ^= 0xff;
    await route.fulfill({ response: r, body });
  });
  await p2.goto(h.url + "facepatch/package.json");
  const altered = await p2.evaluate(async () => {
    const { Verifier } = await import("/facepatch/facepatch.js");
    return Verifier.load({ backend: "cpu" }).then(() => null, (e) => ({ code: e.code, message: e.message }));
  });
  assert.equal(altered.code, "model-integrity");
  assert.match(altered.message, /rrf56\.safetensors does not match its SHA-256/);
  await ctx.close();
  await page.close();
});

test("the page's main thread stays responsive while the worker analyses", async () => {
  const r = await h.page.evaluate(async (bytes) => {
    const { Verifier } = await import("/facepatch/facepatch.js");
    const v = (window.verifiers ||= {})["rrf56/cpu"] ||= await Verifier.load({ backend: "cpu" });
    const blob = new Blob([new Uint8Array(bytes)]);
    let last = performance.now();
    let worst = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 10);
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) await v.analyze(blob);
    const busy = performance.now() - t0;
    clearInterval(tick);
    return { busy, worst };
  }, bytesOf("bench_640x480.jpg"));
  // Three analyses take well over a second; on the main thread one would freeze the timer for its whole length.
  assert.ok(r.busy > 1000, `analyses took only ${r.busy.toFixed(0)} ms: too short to tell`);
  assert.ok(r.worst < 250, `the main thread was blocked for ${r.worst.toFixed(0)} ms`);
  console.log(`# 3 analyses in ${r.busy.toFixed(0)} ms; longest main-thread gap ${r.worst.toFixed(0)} ms`);
});

test("no request left the page's origin", () => {
  assert.ok(h.requests.length > 5);
  assert.deepEqual(h.foreign(), []);
});
