"""Aligns the training photos with facepatch's own detector and aligner, then caches crops, identity labels and
the teacher's (MobileFaceNet) embedding of each crop.

    .venv/bin/python train/prepare.py [--data ../shared/data] [--limit N]

Writes .cache/train/data.npz: images uint8 [N,112,112,3] RGB, labels int32 (CelebA identity, -1 for UTKFace),
teacher float32 [N,192] (MobileFaceNet's L2-normalised embedding of each crop), names. LFW is never read here: it is for evaluation only.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graph  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "train"


def align_all(photos: list[Path], out: Path, binary: Path, workers: int) -> None:
    """`facepatch align` over the photos in `workers` processes; photos without a face are skipped."""
    out.mkdir(parents=True, exist_ok=True)
    todo = [p for p in photos if not (out / (p.stem + ".png")).exists()]
    chunks = [todo[i::workers] for i in range(workers)]

    def run(chunk: list[Path]) -> None:
        for i in range(0, len(chunk), 500):
            part = chunk[i:i + 500]
            r = subprocess.run([str(binary), "align", "--device", "cpu", "--out", str(out), *map(str, part)],
                               capture_output=True, text=True, env={**os.environ, "NODEVICE_SELECT": "1"})
            missed = [ln for ln in r.stderr.splitlines() if "no face" in ln]
            if r.returncode not in (0, 1) or (r.returncode == 1 and not missed):
                raise SystemExit(f"facepatch align failed: {r.stderr[-2000:]}")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, [c for c in chunks if c]))


@torch.no_grad()
def teacher_embeddings(images: np.ndarray, batch: int = 256) -> np.ndarray:
    teacher = graph.load("mobilefacenet").eval()
    out = np.zeros((len(images), 192), np.float32)
    t0 = time.time()
    for i in range(0, len(images), batch):
        out[i:i + batch] = teacher(graph.normalise_rgb(torch.from_numpy(images[i:i + batch]))).flatten(1).numpy()
        if (i // batch) % 10 == 0:
            print(f"teacher {i + batch}/{len(images)}, {time.time() - t0:.0f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N photos of each set (smoke tests)")
    ap.add_argument("--out", type=Path, default=CACHE / "data.npz")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "facepatch",
                    help="the facepatch binary that aligns (built with cargo build --release when missing)")
    args = ap.parse_args()
    torch.set_num_threads(args.workers)
    binary = args.bin
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=REPO, check=True)
    t0 = time.time()

    ids = {}
    for line in (args.data / "celeba-10k" / "identity.txt").read_text().split("\n"):
        if line.strip():
            f, i = line.split()
            ids[Path(f).stem] = int(i)
    sets = {
        "celeba": sorted((args.data / "celeba-10k").glob("*.jpg")),
        "utk": sorted((args.data / "utkface-16k").glob("*.jpg")),
    }
    names, images, labels = [], [], []
    for key, photos in sets.items():
        if args.limit:
            photos = photos[:args.limit]
        out = CACHE / "aligned" / key
        align_all(photos, out, binary, args.workers)
        kept = [p for p in photos if (out / (p.stem + ".png")).exists()]
        print(f"{key}: {len(kept)}/{len(photos)} photos with a face ({time.time() - t0:.0f} s)", flush=True)
        for p in kept:
            images.append(np.asarray(Image.open(out / (p.stem + ".png")).convert("RGB")))
            labels.append(ids.get(p.stem, -1) if key == "celeba" else -1)
            names.append(f"{key}/{p.name}")
    images = np.stack(images)
    teacher = teacher_embeddings(images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, images=images, labels=np.array(labels, np.int32), teacher=teacher, names=np.array(names))
    print(f"wrote {args.out}: {len(images)} crops, {len(set(l for l in labels if l >= 0))} identities, "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
