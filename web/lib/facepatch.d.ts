// facepatch: face verification in the browser whose score is an exact sum of per-patch contributions.
// Everything runs on the visitor's device, in a Web Worker (WebGPU, or the wasm CPU path).

/** Which executor runs the networks. "auto": WebGPU on a hardware adapter, else the CPU path. */
export type Backend = "auto" | "webgpu" | "cpu";

/** Which threshold decides a match: the calibrated best-accuracy one, or the one for a false-accept rate. */
export type OperatingPoint = "best" | "far1e-2" | "far1e-3";

export interface LoadProgress {
  /** "download": bytes arriving; "cache": read from the Cache API; "compile": building pipelines. */
  stage: "download" | "cache" | "compile";
  file?: string;
  loaded: number;
  total: number;
  /** 0..1 over the whole load. */
  fraction: number;
}

export interface LoadOptions {
  /** A bundled model name ("rrf56" default, "rrf28"). */
  model?: string;
  /** Base URL of the model folder (default: `models/` beside this module). */
  modelUrl?: string | URL;
  backend?: Backend;
  onProgress?: (p: LoadProgress) => void;
}

export interface BackendInfo {
  kind: "webgpu" | "cpu";
  /** Why this backend runs, e.g. "WebGPU is not available in this browser: running on the CPU (wasm)". */
  reason: string;
  /** The WebGPU adapter used (or found and passed over), as the browser describes it. */
  adapter: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean } | null;
}

export interface OperatingPointInfo {
  threshold: number;
  /** Fraction of different-person pairs of the calibration data scoring above the threshold. */
  far: number;
}

export interface ModelInfo {
  name: string;
  rows: number;
  cols: number;
  dim: number;
  /** Cell (r, c) sees aligned-face pixels x in [cellOffset + c*cellStride, + receptiveField - 1] (same for y, r). */
  receptiveField: number;
  cellStride: number;
  cellOffset: number;
  alignedSide: number;
  operatingPoints: Record<OperatingPoint, OperatingPointInfo>;
  /** Where the calibration comes from. */
  calibrationSource: string;
}

export interface DetectedFace {
  /** [x, y, width, height] in the photo's pixels (after EXIF orientation). */
  box: [number, number, number, number];
  score: number;
  /** Left eye, right eye, nose, left and right mouth corners: [x, y] each. */
  landmarks: [number, number][];
}

/** One face, encoded: what `compare` takes. Serialise with `bytes()` (versioned, checksummed). */
export class FaceTemplate {
  readonly model: string;
  readonly face: DetectedFace;
  readonly rows: number;
  readonly cols: number;
  /** The patch embeddings: `rows * cols` cells of `dim` values, row-major (their mean is what the score compares). */
  readonly embeddings: { rows: number; cols: number; dim: number; data: Float32Array };
  /** The serialised template (no pixels inside); `Verifier.templateFromBytes` reads it back. */
  bytes(): Uint8Array;
}

export interface Analysis {
  /** The photo as analysed (EXIF-oriented); boxes and landmarks are in its pixels. */
  photo: ImageBitmap;
  width: number;
  height: number;
  /** Every face found, best score first. Empty when there is none. */
  faces: DetectedFace[];
  /** Index in `faces` of the face encoded (the largest, most central one unless asked), or null. */
  chosen: number | null;
  template: FaceTemplate | null;
  /** The aligned 112x112 crop of the chosen face. */
  aligned: ImageData | null;
  /** "" or what went wrong in words, e.g. "no face found in this photo". */
  message: string;
}

export interface CompareOptions {
  /** One entry per cell, row-major: falsy leaves the cell out of the score. */
  mask?: ArrayLike<boolean | number>;
  operatingPoint?: OperatingPoint;
  /** Decide at this threshold instead (its false-accept rate is still reported). */
  threshold?: number;
}

export interface Comparison {
  score: number;
  threshold: number;
  match: boolean;
  /** The false-accept rate the threshold means on the calibration data. */
  far: number;
  operatingPoint: OperatingPoint | "custom";
  /** How many cells took part. */
  cells: number;
  /** Per-cell contributions, row-major; each of `a` and `b` sums to `score` (left-out cells are 0). */
  grid: { rows: number; cols: number; a: Float32Array; b: Float32Array };
}

export type ImageSource = ImageBitmap | ImageData | HTMLImageElement | HTMLVideoElement | HTMLCanvasElement | OffscreenCanvas | Blob;

export class FacepatchError extends Error {
  /** "model-fetch", "model-integrity", "bad-image", "bad-template", "model-mismatch", "bad-input", "worker", "closed". */
  readonly code: string;
}

export class Verifier {
  /** Fetches the model (Cache API first), starts the worker and builds every pipeline. */
  static load(options?: LoadOptions): Promise<Verifier>;
  readonly backend: BackendInfo;
  readonly model: ModelInfo;
  /** Detects, aligns and encodes the largest most central face, or `options.face` (an index into `faces`). */
  analyze(source: ImageSource, options?: { face?: number }): Promise<Analysis>;
  /** Encodes another face of an analysed photo without detecting again. */
  chooseFace(analysis: Analysis, face: number): Promise<Analysis>;
  compare(a: FaceTemplate, b: FaceTemplate, options?: CompareOptions): Promise<Comparison>;
  /** Reads a template saved with `bytes()`; refuses a corrupt one or one from another model. */
  templateFromBytes(bytes: Uint8Array | ArrayBuffer): Promise<FaceTemplate>;
  /** Stops the worker. */
  close(): void;
}
