// facepatch's Web Worker: fetches and checks the model files (Cache API first), picks the backend, and runs
// every analysis and comparison in the wasm core, one at a time, off the page's main thread.
import init, { loadVerifier } from "./facepatch_core.js";

const CACHE = "facepatch-models-v1";
// Largest side accepted from the browser's own decoders (the wasm decoder has the same limit for JPEG/PNG).
const MAX_SIDE = 12000;

let verifier = null;
let queue = Promise.resolve();

self.onmessage = (e) => {
  const { id, op, args } = e.data;
  // One job at a time: the GPU executor's buffers are shared by all runs of a model.
  queue = queue.then(() => handle(op, args)).then(
    ({ value, transfer }) => self.postMessage({ id, ok: true, value }, transfer || []),
    (err) => self.postMessage({ id, ok: false, error: { message: String(err?.message ?? err), code: err?.code ?? "worker" } }),
  );
};

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

async function handle(op, args) {
  switch (op) {
    case "load":
      return { value: await load(args) };
    case "analyze":
      return analyze(args);
    case "chooseFace":
      return result(await ready().chooseFace(args.photoId, args.face));
    case "compare": {
      const mask = args.mask ? new Uint8Array(args.mask) : undefined;
      const c = ready().compare(args.a, args.b, mask, args.operatingPoint ?? "best", args.threshold ?? undefined);
      return { value: c, transfer: [c.grid.a.buffer, c.grid.b.buffer] };
    }
    case "templateInfo": {
      const info = ready().templateInfo(args.bytes);
      return { value: info, transfer: [info.embeddings.data.buffer] };
    }
    default:
      throw fail("worker", `unknown operation '${op}'`);
  }
}

function ready() {
  if (!verifier) throw fail("worker", "the model is not loaded yet");
  return verifier;
}

// ---- loading ---------------------------------------------------------------------------------------------------

function progress(p) {
  self.postMessage({ progress: p });
}

async function sha256(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The manifest lists every model file's size and SHA-256: network first (a new release), the cache when offline.
async function manifest(base, cache) {
  const url = new URL("manifest.json", base).href;
  try {
    const r = await fetch(url, { cache: "no-cache" });
    if (!r.ok) throw fail("model-fetch", `${url}: HTTP ${r.status}`);
    if (cache) await cache.put(url, r.clone());
    return await r.json();
  } catch (err) {
    const hit = cache && (await cache.match(url));
    if (hit) return hit.json();
    throw fail("model-fetch", `cannot fetch the model manifest ${url}: ${err.message}`);
  }
}

// One file: from the cache when its hash still matches the manifest, else downloaded with progress.
async function file(base, name, entry, cache, counter) {
  const url = new URL(name, base).href;
  const hit = cache && (await cache.match(url));
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if ((await sha256(bytes)) === entry.sha256) {
      counter.add(name, bytes.length, "cache");
      return bytes;
    }
  }
  let r;
  try {
    r = await fetch(url);
  } catch (err) {
    throw fail("model-fetch", `cannot fetch ${url}: ${err.message}`);
  }
  if (!r.ok) throw fail("model-fetch", `${url}: HTTP ${r.status}`);
  const parts = [];
  let got = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (got + value.length > entry.size) throw fail("model-integrity", `${name} is larger than the manifest says`);
    parts.push(value);
    got += value.length;
    counter.add(name, value.length, "download");
  }
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  if ((await sha256(bytes)) !== entry.sha256) {
    throw fail("model-integrity", `${name} does not match its SHA-256 in the manifest (a partial or altered download)`);
  }
  if (cache) await cache.put(url, new Response(bytes, { headers: { "content-type": "application/octet-stream" } }));
  return bytes;
}

async function openCache() {
  try {
    return await caches.open(CACHE);
  } catch {
    return null; // e.g. an opaque origin: still works, just not offline
  }
}

// Which backend to run, and why, in words the page can show.
async function chooseBackend(wanted) {
  if (wanted === "cpu") return { gpu: false, adapter: null, reason: "the CPU path (wasm) was chosen" };
  if (!("gpu" in navigator)) {
    return { gpu: false, adapter: null, reason: "WebGPU is not available in this browser: running on the CPU (wasm)" };
  }
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch {
    adapter = null;
  }
  if (!adapter) {
    return { gpu: false, adapter: null, reason: "WebGPU found no usable GPU adapter: running on the CPU (wasm)" };
  }
  const i = adapter.info || {};
  const info = {
    vendor: i.vendor || "",
    architecture: i.architecture || "",
    device: i.device || "",
    description: i.description || "",
    isFallbackAdapter: Boolean(i.isFallbackAdapter ?? adapter.isFallbackAdapter),
  };
  const name = info.description || info.architecture || info.vendor || "unnamed adapter";
  if (wanted === "auto" && info.isFallbackAdapter) {
    return {
      gpu: false,
      adapter: info,
      reason: `the only WebGPU adapter is a software fallback (${name}), slower than the CPU path here: running on the CPU (wasm); choose WebGPU to use it anyway`,
    };
  }
  return { gpu: true, adapter: info, reason: `WebGPU on ${name}` };
}

async function load({ model, modelUrl, backend }) {
  if (verifier) throw fail("worker", "this worker already holds a model");
  await init();
  const base = new URL(modelUrl);
  const cache = await openCache();
  const m = await manifest(base, cache);
  const names = ["retinaface.json", "retinaface.safetensors", `${model}.json`, `${model}.safetensors`, `${model}.calibration.json`];
  for (const n of names) {
    if (!m.files?.[n]) throw fail("model-fetch", `the model folder has no '${n}' (known models: ${(m.models || []).join(", ")})`);
  }
  const total = names.reduce((s, n) => s + m.files[n].size, 0);
  let loaded = 0;
  const counter = {
    add(name, n, stage) {
      loaded += n;
      progress({ stage, file: name, loaded, total, fraction: 0.9 * (loaded / total) });
    },
  };
  const bytes = {};
  for (const n of names) bytes[n] = await file(base, n, m.files[n], cache, counter);
  const text = (n) => new TextDecoder().decode(bytes[n]);
  progress({ stage: "compile", loaded, total, fraction: 0.9 });
  let choice = await chooseBackend(backend);
  const build = (gpu) =>
    loadVerifier(
      text("retinaface.json"),
      bytes["retinaface.safetensors"],
      model,
      text(`${model}.json`),
      bytes[`${model}.safetensors`],
      text(`${model}.calibration.json`),
      gpu,
    );
  if (choice.gpu) {
    try {
      verifier = await build(true);
    } catch (err) {
      if (err?.code && err.code !== "gpu") throw err; // a bad model file fails on both paths
      choice = { ...choice, gpu: false, reason: `WebGPU failed to start (${err.message}): running on the CPU (wasm)` };
    }
  }
  if (!verifier) verifier = await build(false);
  progress({ stage: "compile", loaded, total, fraction: 1 });
  return {
    backend: { kind: verifier.backend(), reason: choice.reason, adapter: choice.adapter },
    model: verifier.modelInfo(),
  };
}

// ---- analysis --------------------------------------------------------------------------------------------------

function pixelsOf(bitmap) {
  if (bitmap.width > MAX_SIDE || bitmap.height > MAX_SIDE) {
    throw fail("bad-image", `the image is ${bitmap.width}x${bitmap.height}; the limit is ${MAX_SIDE} per side`);
  }
  const c = new OffscreenCanvas(bitmap.width, bitmap.height);
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0);
  return g.getImageData(0, 0, bitmap.width, bitmap.height);
}

async function analyze({ bytes, bitmap, rgba, width, height, face }) {
  const v = ready();
  let out;
  let photo;
  if (bytes) {
    try {
      out = await v.analyzeEncoded(new Uint8Array(bytes), face);
      photo = new ImageData(new Uint8ClampedArray(out.pixels.buffer), out.width, out.height);
    } catch (err) {
      // JPEG and PNG are decoded by the wasm core (as by the CLI); other formats by the browser.
      if (!String(err.message).includes("not a PNG or JPEG")) throw err;
      let b;
      try {
        b = await createImageBitmap(new Blob([bytes]));
      } catch {
        throw fail("bad-image", "the file is not an image this browser can read (JPEG, PNG, WebP, GIF, AVIF...)");
      }
      photo = pixelsOf(b);
      b.close();
      out = await v.analyzeRgba(new Uint8Array(photo.data.buffer), photo.width, photo.height, face);
    }
  } else {
    photo = bitmap ? pixelsOf(bitmap) : new ImageData(new Uint8ClampedArray(rgba), width, height);
    bitmap?.close();
    out = await v.analyzeRgba(new Uint8Array(photo.data.buffer), photo.width, photo.height, face);
  }
  delete out.pixels;
  out.photo = await createImageBitmap(photo);
  return result(out, [out.photo]);
}

function result(out, transfer = []) {
  if (out.embeddings) transfer.push(out.embeddings.data.buffer);
  if (out.template) transfer.push(out.template.buffer);
  if (out.aligned) transfer.push(out.aligned.buffer);
  return { value: out, transfer };
}
