// facepatch: in-browser face verification whose score is an exact sum of per-patch contributions.
// This module is the page-side API (types in facepatch.d.ts); the work happens in worker.js.

export class FacepatchError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "FacepatchError";
    this.code = code;
  }
}

/** One encoded face. Its bytes are the serialised template (versioned, checksummed, no pixels). */
export class FaceTemplate {
  #bytes;
  constructor(bytes, info) {
    this.#bytes = bytes;
    this.model = info.model;
    this.face = info.face;
    this.rows = info.embeddings.rows;
    this.cols = info.embeddings.cols;
    this.embeddings = Object.freeze(info.embeddings);
    Object.freeze(this);
  }
  bytes() {
    return this.#bytes.slice();
  }
}

const PHOTO = Symbol("photo id");

export class Verifier {
  #worker;
  #pending = new Map();
  #next = 1;
  #onProgress = null;
  #closed = null;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.progress) {
        this.#onProgress?.(m.progress);
        return;
      }
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new FacepatchError(m.error.message, m.error.code));
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      this.#fail(new FacepatchError(`the facepatch worker failed: ${e.message || "it could not start"}`, "worker"));
    };
  }

  static async load(options = {}) {
    const model = options.model ?? "rrf56";
    const modelUrl = new URL(options.modelUrl ?? "./models/", import.meta.url);
    if (!modelUrl.href.endsWith("/")) modelUrl.href += "/";
    const backend = options.backend ?? "auto";
    if (!["auto", "webgpu", "cpu"].includes(backend)) {
      throw new FacepatchError(`backend '${backend}' is not one of auto, webgpu, cpu`, "bad-input");
    }
    const v = new Verifier(new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "facepatch" }));
    v.#onProgress = options.onProgress ?? null;
    try {
      const info = await v.#call("load", { model, modelUrl: modelUrl.href, backend });
      v.backend = Object.freeze(info.backend);
      v.model = Object.freeze(info.model);
    } catch (err) {
      v.close();
      throw err;
    }
    v.#onProgress = null;
    return v;
  }

  #call(op, args, transfer = []) {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, args }, transfer);
    });
  }

  #fail(err) {
    this.#closed = err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  async analyze(source, options = {}) {
    const face = options.face ?? undefined;
    const msg = await sourceMessage(source);
    const out = await this.#call("analyze", { ...msg.args, face }, msg.transfer);
    return this.#analysis(out, out.photo);
  }

  async chooseFace(analysis, face) {
    const id = analysis?.[PHOTO];
    if (id === undefined) throw new FacepatchError("chooseFace takes an Analysis returned by analyze", "bad-input");
    const out = await this.#call("chooseFace", { photoId: id, face });
    return this.#analysis(out, analysis.photo);
  }

  #analysis(out, photo) {
    const chosen = out.chosen ?? null;
    const a = {
      photo,
      width: out.width,
      height: out.height,
      faces: out.faces,
      chosen,
      template: out.template
        ? new FaceTemplate(out.template, { model: this.model.name, face: out.faces[chosen], embeddings: out.embeddings })
        : null,
      aligned: out.aligned ? new ImageData(new Uint8ClampedArray(out.aligned.buffer), 112, 112) : null,
      message: out.message,
    };
    Object.defineProperty(a, PHOTO, { value: out.photoId });
    return a;
  }

  async compare(a, b, options = {}) {
    if (!(a instanceof FaceTemplate) || !(b instanceof FaceTemplate)) {
      throw new FacepatchError("compare takes two FaceTemplates (analysis.template or templateFromBytes)", "bad-input");
    }
    let mask;
    if (options.mask !== undefined) {
      mask = Uint8Array.from(options.mask, (v) => (v ? 1 : 0));
    }
    return this.#call("compare", {
      a: a.bytes(),
      b: b.bytes(),
      mask,
      operatingPoint: options.operatingPoint ?? "best",
      threshold: options.threshold,
    });
  }

  async templateFromBytes(bytes) {
    const u8 = bytes instanceof ArrayBuffer ? new Uint8Array(bytes.slice(0)) : Uint8Array.from(bytes);
    const info = await this.#call("templateInfo", { bytes: u8 });
    return new FaceTemplate(u8, info);
  }

  close() {
    if (!this.#closed) this.#fail(new FacepatchError("this Verifier was closed", "closed"));
    this.#worker.terminate();
  }
}

// What to post to the worker for each kind of image. Encoded files go as bytes (decoded by the wasm core exactly
// as the command line does); drawable sources as an ImageBitmap copy (the caller's own object is left intact).
async function sourceMessage(source) {
  if (typeof Blob !== "undefined" && source instanceof Blob) {
    const bytes = await source.arrayBuffer();
    return { args: { bytes }, transfer: [bytes] };
  }
  if (typeof ImageData !== "undefined" && source instanceof ImageData) {
    const rgba = source.data.slice().buffer;
    return { args: { rgba, width: source.width, height: source.height }, transfer: [rgba] };
  }
  if (typeof HTMLImageElement !== "undefined" && source instanceof HTMLImageElement) {
    try {
      await source.decode();
    } catch {
      throw new FacepatchError("the <img> could not be decoded (not loaded, or not an image)", "bad-image");
    }
  }
  if (typeof HTMLVideoElement !== "undefined" && source instanceof HTMLVideoElement && source.readyState < 2) {
    throw new FacepatchError("the video has no frame yet (wait for 'loadeddata')", "bad-input");
  }
  const drawable = ["ImageBitmap", "HTMLImageElement", "HTMLVideoElement", "HTMLCanvasElement", "OffscreenCanvas"];
  if (drawable.some((t) => typeof globalThis[t] !== "undefined" && source instanceof globalThis[t])) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(source);
    } catch (err) {
      throw new FacepatchError(`cannot read pixels from this ${source.constructor.name}: ${err.message}`, "bad-image");
    }
    return { args: { bitmap }, transfer: [bitmap] };
  }
  throw new FacepatchError(
    "analyze takes an ImageBitmap, ImageData, HTMLImageElement, HTMLVideoElement, HTMLCanvasElement, OffscreenCanvas or Blob",
    "bad-input",
  );
}
