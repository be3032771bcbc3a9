"""Checks an exported RRF model and writes what the engine's tests compare against.

    .venv/bin/python train/export_check.py rrf56 [--models models]

1. Rebuilds the PyTorch model from models/<name>.json + .safetensors (train/graph.py), runs it on real aligned faces
   (tests/data/aligned/) and writes tests/data/golden/<name>.json: each face's pooled embedding and a few cells.
2. Exports models/<name>.onnx and checks it against PyTorch with onnxruntime (max |diff| and cosine), failing if
   they disagree.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graph  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FACES = ["lfw_Serena_Williams_0001", "lfw_Serena_Williams_0014", "lfw_Jim_Ahern_0001", "celeba_000060"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--models", type=Path, default=REPO / "models")
    ap.add_argument("--golden", type=Path, default=REPO / "tests" / "data" / "golden")
    args = ap.parse_args()
    path = args.models / f"{args.name}.json"
    g = json.loads(path.read_text())
    model = graph.load(path).eval()
    imgs = np.stack([np.asarray(Image.open(REPO / "tests" / "data" / "aligned" / f"{f}.png").convert("RGB"))
                     for f in FACES])
    x = graph.normalise_rgb(torch.from_numpy(imgs))
    with torch.no_grad():
        cells = model(x)  # [N, D, g, g]
    n, d, rows, cols = cells.shape
    picks = [(0, 0), (rows // 2, cols // 2), (rows - 1, cols - 1), (1, cols - 2)]
    faces = []
    for i, f in enumerate(FACES):
        pooled = F.normalize(cells[i].mean(dim=(1, 2)), dim=0)
        faces.append({
            "image": f"aligned/{f}.png",
            "pooled": [round(float(v), 7) for v in pooled],
            "cells": [{"row": r, "col": c, "values": [round(float(v), 7) for v in cells[i, :, r, c]]} for r, c in picks],
        })
    out = {"model": args.name, "runtime": f"torch {torch.__version__} (train/graph.py)", "rows": rows, "cols": cols,
           "dim": d, "faces": faces}
    args.golden.mkdir(parents=True, exist_ok=True)
    (args.golden / f"{args.name}.json").write_text(json.dumps(out) + "\n")

    onnx_path = args.models / f"{args.name}.onnx"
    torch.onnx.export(model, (x[:1],), str(onnx_path), input_names=["image"], output_names=["patches"],
                      dynamic_axes={"image": {0: "batch"}, "patches": {0: "batch"}}, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = cells.numpy()
    got = sess.run(None, {"image": x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    cos = float(F.cosine_similarity(torch.from_numpy(got).flatten(1), cells.flatten(1)).min())
    print(f"{args.name}: grid {rows}x{cols}x{d}; onnxruntime vs PyTorch max |diff| {diff:.2e}, min cosine {cos:.8f}")
    if cos < 0.99999 or diff > 1e-3 * float(np.abs(ref).max()):
        raise SystemExit("ONNX export disagrees with PyTorch")
    print(f"wrote {args.golden / (args.name + '.json')} and {onnx_path}")


if __name__ == "__main__":
    main()
