#!/usr/bin/env python3
"""Golden RetinaFace detections (and raw head outputs) for the facepatch detector.

    .venv/bin/python tools/make_golden_retinaface.py

1. Builds the group photos tests/data/photos/group_*.jpg: mosaics of LFW photos of different people (JPEG quality 95,
   rewritten only when the bytes would change).
2. For every photo in PHOTOS (the 12 single-face photos of make_golden_mobilefacenet.py plus the mosaics, all with
   max side <= 640 so no resizing is involved): decodes it with PIL (RGB), runs the package's RetinaFace ONNX with
   onnxruntime on exactly those pixels at native size (the package's own preprocess: RGB -> BGR, minus
   (104, 117, 127), NCHW float32), decodes boxes and landmarks with the priors and variances of the package's
   postprocess.py, keeps score > 0.5, NMS IoU 0.4 (greedy, as cv2.dnn.NMSBoxes), and writes

     tests/data/golden/retinaface.json        per photo: size, faces sorted by score: box [x, y, w, h], score,
                                              5 landmarks, the prior that produced it
     tests/data/golden/retinaface_heads.json  for two photos: the 9 raw head outputs in the converted graph's NHWC
                                              layout (flattened, 7 significant digits), for engine-level parity

   Greedy NMS decisions depend only on higher-scoring boxes, so the faces with score > 0.9 in the file are exactly
   what the package returns with its default threshold 0.9.
3. Cross-checks (the script fails on any disagreement): the package's own detect_faces() (integer boxes) gives the
   same faces; cv2.dnn.NMSBoxes keeps the same boxes as the NMS here; decoding the heads of the converted model
   (models/retinaface.*, numpy executor) gives the same faces; the first landmark (eye on the image's left) has the
   smaller x than the second on every face with score > 0.9; decoding the stored (rounded) heads cell by cell with
   the formulas documented in models/retinaface.md gives the golden faces again.

Deterministic: rerunning rewrites byte-identical files (same CPU and package versions).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_mobilefacenet as cmf  # noqa: E402
import convert_retinaface as crf  # noqa: E402

REPO = crf.REPO
DATA = REPO / "tests" / "data"
LFW = REPO.parent / "shared" / "data" / "lfw"

SCORE_THRESHOLD = 0.5         # below the package default 0.9 so that the goldens also hold weaker faces
NMS_THRESHOLD = crf.NMS_THRESHOLD
TOP_K = crf.TOP_K
MAX_SIDE = 640

# Group photos: (file name, canvas [w, h], background grey, tiles [(LFW image, x, y, side)]). Tiles are square LFW
# photos (250x250) resized with PIL bicubic when side != 250. People differ from each other and from PHOTOS.
MOSAICS = [
    ("group_2x2.jpg", (500, 500), 128, [
        ("Jack_Nicholson/Jack_Nicholson_0001.jpg", 0, 0, 250),
        ("Carolina_Kluft/Carolina_Kluft_0001.jpg", 250, 0, 250),
        ("Rani_Mukherjee/Rani_Mukherjee_0001.jpg", 0, 250, 250),
        ("Mel_Brooks/Mel_Brooks_0001.jpg", 250, 250, 250),
    ]),
    ("group_3x2.jpg", (600, 400), 128, [
        ("Kevin_Sorbo/Kevin_Sorbo_0001.jpg", 0, 0, 200),
        ("Tracee_Ellis_Ross/Tracee_Ellis_Ross_0001.jpg", 200, 0, 200),
        ("Hermann_Maier/Hermann_Maier_0001.jpg", 400, 0, 200),
        ("Nathalie_Gagnon/Nathalie_Gagnon_0001.jpg", 0, 200, 200),
        ("Parthiv_Patel/Parthiv_Patel_0001.jpg", 200, 200, 200),
        ("Garry_Trudeau/Garry_Trudeau_0001.jpg", 400, 200, 200),
    ]),
    # odd canvas size, five scales (face widths roughly 110 .. 25 px)
    ("group_scales.jpg", (603, 421), 96, [
        ("AJ_Lamas/AJ_Lamas_0001.jpg", 7, 9, 250),
        ("Alfonso_Soriano/Alfonso_Soriano_0001.jpg", 271, 13, 170),
        ("Anne_ONeil/Anne_ONeil_0001.jpg", 455, 40, 120),
        ("Lucio_Gutierrez/Lucio_Gutierrez_0001.jpg", 300, 290, 84),
        ("Sharess_Harrell/Sharess_Harrell_0001.jpg", 430, 330, 60),
    ]),
]

PHOTOS = [
    "photos/lfw_Jim_Ahern_0001.jpg",
    "photos/lfw_Richard_Virenque_0001.jpg",
    "photos/lfw_Elin_Nordegren_0001.jpg",
    "photos/lfw_Mahathir_Mohamad_0001.jpg",
    "photos/lfw_Stephen_Silas_0001.jpg",
    "photos/lfw_Tung_Chee-hwa_0001.jpg",
    "photos/lfw_Serena_Williams_0001.jpg",
    "photos/lfw_Serena_Williams_0014.jpg",
    "photos/celeba_008685.jpg",
    "photos/celeba_000060.jpg",
    "photos/utk_80_0_2_20170112215149951.jpg",
    "photos/utk_26_1_3_20170119180544051.jpg",
] + [f"photos/{m[0]}" for m in MOSAICS]

# Photos whose raw head outputs go into retinaface_heads.json: one odd-sized (CelebA 89x109), one 250x250 (LFW).
HEAD_PHOTOS = ["photos/celeba_000060.jpg", "photos/lfw_Tung_Chee-hwa_0001.jpg"]


# ----------------------------------------------------------------------------------------------------------------
# Group photos
# ----------------------------------------------------------------------------------------------------------------
def build_mosaics():
    import io
    from PIL import Image

    for name, (w, h), grey, tiles in MOSAICS:
        canvas = Image.new("RGB", (w, h), (grey, grey, grey))
        for rel, x, y, side in tiles:
            im = Image.open(LFW / rel).convert("RGB")
            if im.size != (side, side):
                im = im.resize((side, side), Image.BICUBIC)
            if x + side > w or y + side > h:
                raise SystemExit(f"{name}: tile {rel} does not fit")
            canvas.paste(im, (x, y))
        buf = io.BytesIO()
        canvas.save(buf, format="JPEG", quality=95, subsampling="4:2:0", optimize=False)
        path = DATA / "photos" / name
        if not path.exists() or path.read_bytes() != buf.getvalue():
            path.write_bytes(buf.getvalue())


# ----------------------------------------------------------------------------------------------------------------
# Decoding (retinaface/postprocess.py, in float64 pixels)
# ----------------------------------------------------------------------------------------------------------------
def priors(height: int, width: int) -> np.ndarray:
    """[P, 7]: cx, cy, m (pixels), stride, row, col, anchor. Order: level, row, column, anchor."""
    out = []
    for stride, sizes in zip(crf.STRIDES, crf.MIN_SIZES):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        yy, xx = yy.ravel().repeat(len(sizes)), xx.ravel().repeat(len(sizes))
        a = np.tile(np.arange(len(sizes)), nx * ny)
        m = np.array(sizes, dtype=np.float64)[a]
        out.append(np.stack([(xx + 0.5) * stride, (yy + 0.5) * stride, m, np.full_like(m, stride), yy, xx, a], 1))
    return np.concatenate(out)


def decode(loc, conf, lms, height, width):
    """loc [P,4], conf [P,2] (softmaxed), lms [P,10] -> boxes [P,4] as [x,y,w,h], scores [P], points [P,5,2]."""
    pri = priors(height, width)
    if len(pri) != len(loc):
        raise SystemExit(f"prior count {len(pri)} != model rows {len(loc)} for a {width}x{height} image")
    vc, vs = crf.VARIANCES
    c, m = pri[:, :2], pri[:, 2:3]
    loc, lms = loc.astype(np.float64), lms.astype(np.float64)
    centre = c + loc[:, :2] * vc * m
    wh = m * np.exp(loc[:, 2:] * vs)
    boxes = np.concatenate([centre - wh / 2, wh], 1)
    pts = c[:, None, :] + lms.reshape(-1, 5, 2) * vc * m[:, :, None]
    return boxes, conf[:, 1].astype(np.float64), pts, pri


def iou_xywh(b, others):
    x1 = np.maximum(b[0], others[:, 0])
    y1 = np.maximum(b[1], others[:, 1])
    x2 = np.minimum(b[0] + b[2], others[:, 0] + others[:, 2])
    y2 = np.minimum(b[1] + b[3], others[:, 1] + others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (b[2] * b[3] + others[:, 2] * others[:, 3] - inter)


def select(boxes, scores, threshold=SCORE_THRESHOLD):
    """Indices kept: score > threshold, by score descending (stable), top_k, greedy NMS (drop if IoU > 0.4)."""
    idx = np.where(scores > threshold)[0]
    idx = idx[np.argsort(-scores[idx], kind="stable")][:TOP_K]
    kept = []
    for i in idx:
        if not kept or (iou_xywh(boxes[i], boxes[kept]) <= NMS_THRESHOLD).all():
            kept.append(int(i))
    return kept


def detect(loc, conf, lms, height, width, threshold=SCORE_THRESHOLD):
    boxes, scores, pts, pri = decode(loc, conf, lms, height, width)
    kept = select(boxes, scores, threshold)
    # cv2.dnn.NMSBoxes (what the package calls) must keep the same boxes.
    import cv2
    cand = np.where(scores > threshold)[0]
    cand = cand[np.argsort(-scores[cand], kind="stable")][:TOP_K]
    cv_keep = cv2.dnn.NMSBoxes(boxes[cand], scores[cand].astype(np.float32), threshold, NMS_THRESHOLD)
    if sorted(int(cand[i]) for i in np.asarray(cv_keep).ravel()) != sorted(kept):
        raise SystemExit("NMS here and cv2.dnn.NMSBoxes disagree")
    return [(boxes[i], scores[i], pts[i], pri[i]) for i in kept]


# ----------------------------------------------------------------------------------------------------------------
def px(v) -> float:
    return round(float(v), 4)


def sig7(v) -> float:
    return float(f"{float(v):.7g}")


def dump(obj) -> str:
    """JSON with one photo per line."""
    lines = ["{"]
    items = []
    for k, v in obj.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            body = ",\n".join("    " + json.dumps(e) for e in v)
            items.append(f"  {json.dumps(k)}: [\n{body}\n  ]")
        else:
            items.append(f"  {json.dumps(k)}: {json.dumps(v)}")
    lines.append(",\n".join(items))
    lines.append("}")
    return "\n".join(lines) + "\n"


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.parse_args(argv)
    import cv2
    import PIL
    from importlib.metadata import version

    onnx_bytes = crf.load_onnx_bytes()
    crf.package_constants()
    (DATA / "golden").mkdir(parents=True, exist_ok=True)
    build_mosaics()

    _, _, rep = crf.convert(onnx_bytes)
    ort_rf = crf.OrtRetinaFace(onnx_bytes, rep["head_conv_onnx"])
    model_json = REPO / "models" / "retinaface.json"
    conv = crf.load_model(REPO / "models") if model_json.exists() else None
    if conv is None:
        print("note: models/retinaface.json missing, skipping the converted-model cross-check", file=sys.stderr)
    rf_pkg = importlib.import_module("retinaface")

    records, heads_out = [], []
    total, upright_checked, alt_mean_diff = 0, 0, []
    for rel in PHOTOS:
        path = DATA / rel
        rgb = load_rgb(path)
        h, w = rgb.shape[:2]
        if max(h, w) > MAX_SIDE:
            raise SystemExit(f"{rel}: {w}x{h} exceeds {MAX_SIDE}")
        res = ort_rf.run(rgb)
        faces = detect(res["loc"][0], res["conf"][0], res["landmarks"][0], h, w)

        # Cross-check 1: the package's own pipeline (float32, integer output).
        pkg = rf_pkg.detect_faces(rgb, score_threshold=SCORE_THRESHOLD, nms_threshold=NMS_THRESHOLD)
        if len(pkg) != len(faces):
            raise SystemExit(f"{rel}: package finds {len(pkg)} faces, here {len(faces)}")
        for (b, s, p, _), f in zip(faces, pkg):
            ours_int = [int(v) for v in b] + [int(v) for v in p.ravel()]
            theirs = [f.x, f.y, f.width, f.height] + [v for pt in f.landmarks for v in (pt.x, pt.y)]
            if abs(f.score - s) > 1e-6 or max(abs(a - c) for a, c in zip(ours_int, theirs)) > 1:
                raise SystemExit(f"{rel}: package face {f} differs from {b}, {s}, {p.tolist()}")
        # Cross-check 2: the converted model's heads (numpy executor), decoded the same way.
        if conv is not None:
            heads = cmf.run_graph(conv[0], conv[1], rgb[None])
            flat = crf.flatten_heads(heads)
            faces2 = detect(flat["loc"], flat["conf"], flat["landmarks"], h, w)
            if len(faces2) != len(faces):
                raise SystemExit(f"{rel}: converted model finds {len(faces2)} faces, ORT {len(faces)}")
            for (b, s, p, _), (b2, s2, p2, _) in zip(faces, faces2):
                if np.abs(b - b2).max() > 0.01 or abs(s - s2) > 1e-5 or np.abs(p - p2).max() > 0.01:
                    raise SystemExit(f"{rel}: converted model face differs: {b} {s} vs {b2} {s2}")
        # Landmark order: the first point (image-left eye) has the smaller x on upright faces.
        for b, s, p, _ in faces:
            if s > crf.SCORE_THRESHOLD:
                upright_checked += 1
                if not p[0, 0] < p[1, 0]:
                    raise SystemExit(f"{rel}: landmark 0 x {p[0, 0]:.1f} >= landmark 1 x {p[1, 0]:.1f}")
        # Informative: the upstream mean (104, 117, 123) instead of the package's (104, 117, 127).
        x = (rgb[..., ::-1].astype(np.float32) - np.float32([104, 117, 123])).transpose(2, 0, 1)[None]
        alt = dict(zip(ort_rf.out_names, ort_rf.sess.run(None, {"input": np.ascontiguousarray(x)})))
        faces3 = detect(alt["loc"][0], alt["conf"][0], alt["landmarks"][0], h, w)
        for b, s, _, _ in faces:
            if faces3:
                j = int(np.argmax(iou_xywh(b, np.array([f[0] for f in faces3]))))
                alt_mean_diff.append((abs(faces3[j][1] - s), float(np.abs(faces3[j][0] - b).max())))

        total += len(faces)
        pix_sha = hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()
        bgr_cv = cv2.imread(str(path), cv2.IMREAD_COLOR)
        cv_diff = int(np.abs(bgr_cv[..., ::-1].astype(int) - rgb.astype(int)).max())
        rec = {
            "photo": rel,
            "width": w,
            "height": h,
            "rgb_sha256": pix_sha,
            "faces": [{
                "box": [px(v) for v in b],
                "score": sig7(s),
                "landmarks": [[px(x_), px(y_)] for x_, y_ in p],
                "prior": {"stride": int(pr[3]), "row": int(pr[4]), "col": int(pr[5]), "anchor": int(pr[6])},
            } for b, s, p, pr in faces],
        }
        records.append(rec)
        print(f"{rel:44s} {w}x{h}  faces {len(faces)} (> 0.9: {sum(1 for f in faces if f[1] > 0.9)})  scores "
              + " ".join(f"{f[1]:.3f}" for f in faces) + f"  | cv2 decode max|diff| {cv_diff}")

        if rel in HEAD_PHOTOS:
            # The exact decoded pixels, losslessly: JPEG decoders differ by a few grey levels, and
            # engine parity must compare the network on identical input.
            pixels_rel = "photos/decoded/" + Path(rel).stem + ".png"
            (DATA / pixels_rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(DATA / pixels_rel, optimize=False)
            heads_out.append({
                "photo": rel,
                "pixels": pixels_rel,
                "width": w,
                "height": h,
                "outputs": {name: {"shape": list(res[name].shape),
                                   "data": [sig7(v) for v in res[name].ravel()]} for name in crf.OUTPUTS},
            })

    settings = {
        "model": "retinaface (RetinaFace-MobileNet0.25)",
        "source": f"PyPI {crf.PYPI_PACKAGE} {crf.PYPI_VERSION} {crf.ONNX_SOURCE}",
        "source_sha256": crf.ONNX_SHA256,
        "runtime": f"onnxruntime {version('onnxruntime')} (CPU, 1 thread)",
        "decoder": f"Pillow {PIL.__version__}, Image.open(...).convert('RGB') at native size (no resizing)",
        "input": {"order": "bgr", "mean": crf.MEAN_BGR, "scale": 1.0, "layout": "NCHW float32 for ONNX"},
        "strides": crf.STRIDES,
        "min_sizes": crf.MIN_SIZES,
        "variances": crf.VARIANCES,
        "score_threshold": SCORE_THRESHOLD,
        "package_default_score_threshold": crf.SCORE_THRESHOLD,
        "nms_iou": NMS_THRESHOLD,
        "top_k": TOP_K,
        "selection": "score > score_threshold, sort by score descending, top_k, greedy NMS dropping a box whose "
                     "IoU with a kept box is > nms_iou (cv2.dnn.NMSBoxes); faces listed by score descending",
        "box_format": "[x, y, w, h] in photo pixels: x = cx - w/2, y = cy - h/2 of the decoded box (floats; the "
                      "package truncates to int)",
        "landmarks": "5 points [x, y] in photo pixels: eye on the image's left (subject's right eye), eye on the "
                     "image's right, nose tip, mouth corner on the image's left, mouth corner on the image's right",
        "prior": "the anchor that produced the face: level stride, row, col in that level's map, anchor index "
                 "(size min_sizes[level][anchor])",
        "rgb_sha256": "sha256 of the decoded RGB pixels (H*W*3 bytes, row-major), to spot JPEG decoder differences",
    }
    golden = dict(settings, photos=records)
    (DATA / "golden" / "retinaface.json").write_text(dump(golden))
    heads_doc = {
        "model": settings["model"],
        "source_sha256": crf.ONNX_SHA256,
        "runtime": settings["runtime"],
        "decoder": settings["decoder"],
        "input": settings["input"],
        "layout": "each output NHWC [1, ceil(H/s), ceil(W/s), C] flattened row-major (y, x, channel); channels as in "
                  "models/retinaface.json meta (cls: 2*anchor + {bg, face} logits before softmax; box: 4*anchor + "
                  "(dx, dy, dw, dh); landmark: 10*anchor + 2*point + (x, y)); values from onnxruntime's head convs, "
                  "7 significant digits",
        "photos": heads_out,
    }
    lines = ["{"]
    for k, v in heads_doc.items():
        if k != "photos":
            lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "photos": [')
    for i, ph in enumerate(heads_out):
        lines.append("    {" + ", ".join(f"{json.dumps(k)}: {json.dumps(ph[k])}" for k in ("photo", "pixels", "width", "height"))
                     + ', "outputs": {')
        outs = [f"      {json.dumps(name)}: {json.dumps(o)}" for name, o in ph["outputs"].items()]
        lines.append(",\n".join(outs))
        lines.append("    }}" + ("," if i + 1 < len(heads_out) else ""))
    lines.append("  ]")
    lines.append("}")
    (DATA / "golden" / "retinaface_heads.json").write_text("\n".join(lines) + "\n")

    # Self-check of the documented layout: decode the stored (rounded) heads the way the Rust side will, cell by
    # cell, and compare with the golden faces.
    stored = json.loads((DATA / "golden" / "retinaface_heads.json").read_text())
    by_photo = {r["photo"]: r for r in records}
    for ph in stored["photos"]:
        cand = []
        for level, stride in enumerate(crf.STRIDES):
            o = {k: np.array(ph["outputs"][f"{k}{stride}"]["data"]).reshape(ph["outputs"][f"{k}{stride}"]["shape"][1:])
                 for k in ("cls", "box", "landmark")}
            fh, fw = o["cls"].shape[:2]
            if (fh, fw) != (-(-ph["height"] // stride), -(-ph["width"] // stride)):
                raise SystemExit(f"{ph['photo']}: stored stride-{stride} map is {fh}x{fw}")
            for y in range(fh):
                for x_ in range(fw):
                    for a, m in enumerate(crf.MIN_SIZES[level]):
                        c = o["cls"][y, x_, 2 * a:2 * a + 2]
                        score = 1.0 / (1.0 + math.exp(c[0] - c[1]))
                        dx, dy, dw, dh = o["box"][y, x_, 4 * a:4 * a + 4]
                        cx, cy = (x_ + 0.5) * stride, (y + 0.5) * stride
                        bw, bh = m * math.exp(dw * 0.2), m * math.exp(dh * 0.2)
                        bx, by = cx + dx * 0.1 * m, cy + dy * 0.1 * m
                        d = o["landmark"][y, x_, 10 * a:10 * a + 10]
                        cand.append((score, [bx - bw / 2, by - bh / 2, bw, bh],
                                     [[cx + d[2 * i] * 0.1 * m, cy + d[2 * i + 1] * 0.1 * m] for i in range(5)]))
        boxes = np.array([c[1] for c in cand])
        scores = np.array([c[0] for c in cand])
        kept = select(boxes, scores)
        want = by_photo[ph["photo"]]["faces"]
        if len(kept) != len(want):
            raise SystemExit(f"{ph['photo']}: stored heads decode to {len(kept)} faces, golden has {len(want)}")
        for i, f in zip(kept, want):
            if (abs(scores[i] - f["score"]) > 1e-5 or np.abs(boxes[i] - f["box"]).max() > 1e-3
                    or np.abs(np.array(cand[i][2]) - f["landmarks"]).max() > 1e-3):
                raise SystemExit(f"{ph['photo']}: stored heads decode to {cand[i]}, golden {f}")
    print(f"stored heads of {len(stored['photos'])} photos decode (documented formulas) to the golden faces")

    sd = max(d[0] for d in alt_mean_diff)
    bd = max(d[1] for d in alt_mean_diff)
    print(f"{len(records)} photos, {total} faces (score > {SCORE_THRESHOLD}); landmark order checked on "
          f"{upright_checked} faces with score > {crf.SCORE_THRESHOLD}")
    print(f"with the upstream mean (104,117,123) instead of (104,117,127): max |score diff| {sd:.2e}, "
          f"max box coordinate diff {bd:.2f} px (informative only)")
    print("wrote tests/data/golden/retinaface.json, tests/data/golden/retinaface_heads.json")


if __name__ == "__main__":
    main()
