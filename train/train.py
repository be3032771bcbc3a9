"""Trains an RRF model (train/rrf.py) by distillation from MobileFaceNet plus a CosFace term, and exports it.

    .venv/bin/python train/train.py --variant rrf56            # writes models/rrf56.json + .safetensors
    torchrun --nproc_per_node 4 train/train.py --variant rrf56 # several GPUs / nodes (DistributedDataParallel)

Data: .cache/train/data.npz from train/prepare.py (CelebA-10k and UTKFace-16k aligned by facepatch itself).
Validation holds out every CelebA identity with id % 10 == 0 and every 20th UTKFace crop; LFW is never used here.
The frozen prefix of the trunk runs once over all crops and its features are cached, so each epoch trains only the
rest of the trunk and the per-cell head. Seeded; a checkpoint is written after every epoch and picked up again by
the same command (--fresh ignores it).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graph  # noqa: E402
import rrf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def log(*a):
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(*a, flush=True)


def split(labels: np.ndarray) -> np.ndarray:
    """True for validation samples: held-out CelebA identities and every 20th unlabelled crop."""
    idx = np.arange(len(labels))
    return np.where(labels >= 0, labels % 10 == 0, idx % 20 == 0)


@torch.no_grad()
def cached_features(model: rrf.RRF, images: np.ndarray, path: Path, batch: int = 128) -> np.ndarray:
    """The frozen prefix's output for every crop (float16), computed once and kept on disk."""
    n = len(images)
    shape = None
    if path.exists():
        f = np.load(path, mmap_mode="r")
        if f.shape[0] == n:
            return f
    rank0 = not dist.is_initialized() or dist.get_rank() == 0
    if rank0:
        t0 = time.time()
        out = None
        for i in range(0, n, batch):
            f = model.features(graph.normalise_rgb(torch.from_numpy(images[i:i + batch]))).half().numpy()
            if out is None:
                shape = (n,) + f.shape[1:]
                tmp = path.with_suffix(".tmp.npy")
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
            out[i:i + len(f)] = f
            if (i // batch) % 20 == 0:
                log(f"features {i + len(f)}/{n}, {time.time() - t0:.0f} s")
        out.flush()
        del out
        os.replace(path.with_suffix(".tmp.npy"), path)
    if dist.is_initialized():
        dist.barrier()
    return np.load(path, mmap_mode="r")


class CosFace(nn.Module):
    """Additive-margin softmax over identities: s * (cos - m) for the true class."""

    def __init__(self, dim: int, classes: int, s: float = 30.0, m: float = 0.35):
        super().__init__()
        self.w = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.s, self.m = s, m

    def forward(self, emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cos = emb @ F.normalize(self.w, dim=1).t()
        logits = self.s * (cos - self.m * F.one_hot(y, cos.shape[1]))
        return F.cross_entropy(logits, y)


class Objective(nn.Module):
    """Model + CosFace classifier as one module, so DistributedDataParallel syncs both."""

    def __init__(self, model: rrf.RRF, cosface: CosFace, weight: float):
        super().__init__()
        self.model, self.cosface, self.weight = model, cosface, weight

    def forward(self, f, teacher, keep, y):
        emb = rrf.pooled(self.model.from_features(f), keep)
        distill = (1 - (emb * teacher).sum(1)).mean()
        has = y >= 0
        margin = self.cosface(emb[has], y[has]) if bool(has.any()) else self.cosface.w.sum() * 0
        return distill + self.weight * margin, distill.detach(), margin.detach()


def cell_dropout(n: int, g: int, gen: torch.Generator) -> torch.Tensor:
    """Keep masks [n,1,g,g]: half the samples keep every cell, the rest a random 50-100% of them, so that scores
    over a subset of cells (occlusion masks) stay meaningful."""
    keep = torch.ones(n, 1, g, g)
    masked = torch.rand(n, generator=gen) < 0.5
    ratio = 0.5 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    drop = torch.rand(n, 1, g, g, generator=gen) > ratio
    keep[masked] = (~drop[masked]).float()
    keep[:, :, 0, 0] = torch.maximum(keep[:, :, 0, 0], 1 - keep.flatten(1).max(1).values.view(-1, 1))
    return keep


@torch.no_grad()
def validate(model, feats, teacher, labels, idx, batch=256) -> dict:
    model.eval()
    embs = []
    for i in range(0, len(idx), batch):
        j = idx[i:i + batch]
        f = torch.from_numpy(np.asarray(feats[j])).float()
        embs.append(rrf.pooled(model.from_features(f)))
    e = torch.cat(embs)
    t = F.normalize(torch.from_numpy(teacher[idx]), dim=1)
    out = {"val_cos_to_teacher": float((e * t).sum(1).mean())}
    lab = labels[idx]
    sel = np.where(lab >= 0)[0]
    if len(sel) > 1:
        # All pairs among held-out identities: best-threshold accuracy on a balanced set.
        s = (e[sel] @ e[sel].t()).numpy()
        same = lab[sel][:, None] == lab[sel][None, :]
        iu = np.triu_indices(len(sel), 1)
        s, same = s[iu], same[iu]
        pos, neg = s[same], s[~same]
        rng = np.random.default_rng(0)
        neg = rng.choice(neg, size=min(len(neg), max(len(pos), 1)), replace=False)
        vals = np.concatenate([pos, neg])
        best = max(((vals > t)[:len(pos)].sum() + (vals <= t)[len(pos):].sum()) / len(vals) for t in np.unique(vals))
        out["val_pairs"] = int(len(vals))
        out["val_accuracy"] = float(best)
    model.train()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=sorted(rrf.VARIANTS), required=True)
    ap.add_argument("--data", type=Path, default=REPO / ".cache" / "train" / "data.npz")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3, help="head learning rate; the trunk's is a tenth")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--cosface", type=float, default=0.2, help="weight of the CosFace term")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N crops only (smoke tests)")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (smoke tests)")
    ap.add_argument("--out", type=Path, help="default: models/<variant>")
    ap.add_argument("--workdir", type=Path, help="checkpoints and feature cache (default: .cache/train/<variant>)")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = args.out or REPO / "models" / args.variant
    work = args.workdir or REPO / ".cache" / "train" / args.variant
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    data = np.load(args.data)
    images, labels, teacher = data["images"], data["labels"], data["teacher"].astype(np.float32)
    if args.limit:
        images, labels, teacher = images[:args.limit], labels[:args.limit], teacher[:args.limit]
    val = split(labels)
    train_idx, val_idx = np.where(~val)[0], np.where(val)[0]
    # Identity classes for CosFace: training identities with at least two crops.
    ids, counts = np.unique(labels[train_idx][labels[train_idx] >= 0], return_counts=True)
    cls_of = {int(i): k for k, i in enumerate(ids[counts >= 2])}
    cls = np.array([cls_of.get(int(l), -1) for l in labels])
    log(f"{args.variant}: {len(train_idx)} training crops ({len(cls_of)} identities for CosFace), "
        f"{len(val_idx)} validation crops")

    model = rrf.RRF(args.variant, width=args.width, depth=args.depth)
    feats = cached_features(model, images, work / f"features_{model.frozen}_{len(images)}.npy")
    cosface = CosFace(model.dim, max(len(cls_of), 1))
    model.to(device)
    cosface.to(device)
    params = [{"params": model.tail.parameters(), "lr": args.lr / 10},
              {"params": list(model.head.parameters()) + list(cosface.parameters()), "lr": args.lr}]
    opt = torch.optim.AdamW(params, weight_decay=5e-4)
    steps_per_epoch = max(len(train_idx) // (args.batch * world), 1)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))))
    start_epoch, history = 0, []
    ckpt = work / "checkpoint.pt"
    if ckpt.exists() and not args.fresh:
        c = torch.load(ckpt, map_location="cpu", weights_only=False)
        if c["args"]["variant"] == args.variant and c["args"]["width"] == args.width:
            model.load_state_dict(c["model"])
            cosface.load_state_dict(c["cosface"])
            opt.load_state_dict(c["opt"])
            sched.load_state_dict(c["sched"])
            start_epoch, history = c["epoch"], c["history"]
            log(f"resumed from {ckpt} after epoch {start_epoch}")
    objective = Objective(model, cosface, args.cosface)
    net = nn.parallel.DistributedDataParallel(objective) if distributed else objective

    gen = torch.Generator().manual_seed(args.seed)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, args.epochs):
        t0 = time.time()
        perm = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        order = train_idx[perm.numpy()][rank::world]
        running = []
        for b in range(steps_per_epoch):
            j = np.sort(order[b * args.batch:(b + 1) * args.batch])
            if len(j) == 0:
                break
            f = torch.from_numpy(np.asarray(feats[j])).float().to(device)
            t = F.normalize(torch.from_numpy(teacher[j]), dim=1).to(device)
            keep = cell_dropout(len(j), model.grid, gen).to(device)
            y = torch.from_numpy(cls[j]).to(device)
            loss, distill, margin = net(f, t, keep, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running.append((float(distill), float(margin)))
            if b % 50 == 0:
                d, m = np.mean(running[-50:], axis=0)
                log(f"epoch {epoch + 1} step {b}/{steps_per_epoch}: distill {d:.4f} cosface {m:.3f} "
                    f"({time.time() - t0:.0f} s)")
            if args.steps and step >= args.steps:
                break
        v = validate(model, feats, teacher, labels, val_idx) if rank == 0 else {}
        history.append({"epoch": epoch + 1, "distill": float(np.mean([r[0] for r in running])),
                        "seconds": time.time() - t0, **v})
        log(json.dumps(history[-1]))
        if rank == 0:
            torch.save({"model": model.state_dict(), "cosface": cosface.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "epoch": epoch + 1, "history": history, "args": vars(args)
                        | {"out": str(out), "workdir": str(work), "data": str(args.data)}}, ckpt)
        if args.steps and step >= args.steps:
            break

    if rank == 0:
        model.eval().cpu()
        info = {
            "variant": args.variant, "grid": model.grid, "receptive_field": model.rf, "window": model.window,
            "embedding_dim": model.dim, "head_width": args.width, "head_depth": args.depth,
            "frozen_until": model.frozen,
            "parameters": sum(p.numel() for p in model.parameters()),
            "training": {"command": "python train/train.py " + " ".join(sys.argv[1:]), "seed": args.seed,
                         "epochs": len(history), "crops": int(len(train_idx)), "identities": len(cls_of),
                         "history": history, "seconds": round(time.time() - t_start),
                         "hardware": f"{device.type}, {world} process(es), {torch.get_num_threads()} threads",
                         "data": "CelebA-10k + UTKFace-16k (non-commercial research terms), aligned by facepatch"},
        }
        rrf.export(model, out, info)
        log(f"exported {out}.json / .safetensors ({info['parameters']} parameters)")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
