// Type-checks facepatch.d.ts the way an app uses it (tsc --noEmit --strict; see .ci/test). Never run.
import { Verifier, FaceTemplate, FacepatchError, type Comparison, type Analysis } from "../../web/lib/facepatch.js";

export async function enrolAndCheck(file: Blob, video: HTMLVideoElement): Promise<boolean> {
  const v: Verifier = await Verifier.load({ model: "rrf56", backend: "auto", onProgress: (p) => console.log(p.fraction) });
  const kind: "webgpu" | "cpu" = v.backend.kind;
  console.log(kind, v.backend.reason, v.backend.adapter?.isFallbackAdapter, v.model.operatingPoints["far1e-3"].far);
  const a: Analysis = await v.analyze(file);
  if (!a.template) {
    console.log(a.message, a.faces.length);
    return false;
  }
  const saved: Uint8Array = a.template.bytes();
  const again: FaceTemplate = await v.templateFromBytes(saved);
  const cells: Float32Array = again.embeddings.data;
  const b = await v.analyze(video, { face: 0 });
  const other = b.faces.length > 1 ? await v.chooseFace(b, 1) : b;
  if (!other.template) return false;
  const mask = new Array<number>(again.rows * again.cols).fill(1);
  try {
    const c: Comparison = await v.compare(again, other.template, { mask, operatingPoint: "far1e-2" });
    const sum = c.grid.a.reduce((s, x) => s + x, 0);
    return c.match && Math.abs(sum - c.score) < 1e-4 && cells.length > 0 && c.far < 0.02;
  } catch (e) {
    if (e instanceof FacepatchError) console.log(e.code);
    throw e;
  } finally {
    a.photo.close();
    v.close();
  }
}
