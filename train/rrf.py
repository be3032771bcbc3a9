"""RRFNet: a grid of patch embeddings whose cells each see only a PxP window of the aligned face.

The trunk is MobileFaceNet's own early layers (trained on faces, Apache-2.0), cut where the receptive field still fits
the window: RRF-28 ends at Conv2d_2_InvResBlock_2 (28x28x64 grid, receptive field 27), RRF-56 at
Conv2d_3_InvResBlock_0 (14x14x128, receptive field 51). After the trunk everything is per cell (1x1 convolutions), so
the score cos(mean a_i, mean b_i) splits exactly into per-cell contributions.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import graph

VARIANTS = {
    # name: (last trunk tensor in models/mobilefacenet.json, grid side, trunk channels, receptive field, window,
    #        tensor up to which the trunk stays frozen: its features are computed once and cached)
    "rrf28": ("add_1", 28, 64, 27, 28, "add_0"),
    "rrf56": ("conv2d_20", 14, 128, 51, 56, "add_3"),
}


class CellHead(nn.Module):
    """Per-cell MLP: 1x1 conv + BatchNorm + PReLU layers, then a 1x1 projection to the embedding (+ BatchNorm)."""

    def __init__(self, cin: int, width: int, depth: int, dim: int):
        super().__init__()
        layers, c = [], cin
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width)]
            c = width
        layers += [nn.Conv2d(c, dim, 1, bias=False), nn.BatchNorm2d(dim)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class RRF(nn.Module):
    def __init__(self, variant: str, width: int = 512, depth: int = 2, dim: int = 192):
        super().__init__()
        cut, self.grid, cin, self.rf, self.window, frozen = VARIANTS[variant]
        self.variant, self.width, self.depth, self.dim = variant, width, depth, dim
        # The frozen prefix (low-level features) and the trained rest of the trunk, both from MobileFaceNet.
        self.prefix = graph.load("mobilefacenet", until=frozen).requires_grad_(False)
        self.frozen = frozen
        self.tail = graph.load("mobilefacenet", start=frozen, until=cut)
        self.head = CellHead(cin, width, depth, dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen prefix: normalised NCHW faces -> the cached feature map."""
        with torch.no_grad():
            return self.prefix(x)

    def from_features(self, f: torch.Tensor) -> torch.Tensor:
        """Cached features -> patch embeddings [N, dim, grid, grid]."""
        return self.head(self.tail(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised NCHW faces -> patch embeddings [N, dim, grid, grid]."""
        return self.from_features(self.features(x))


def pooled(cells: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of the cells (optionally only where keep [N,1,g,g] is 1), L2-normalised: what the score compares."""
    if keep is None:
        m = cells.mean(dim=(2, 3))
    else:
        m = (cells * keep).sum(dim=(2, 3)) / keep.sum(dim=(2, 3)).clamp(min=1)
    return F.normalize(m, dim=1)


def window(nodes: list[dict]) -> tuple[int, int, int]:
    """(receptive field, stride, offset) of the last node's cells along the conv chain: cell (r, c) sees input rows
    offset + stride*r .. offset + stride*r + field - 1 (and the same for columns)."""
    field, jump, offset = 1, 1, 0
    for n in nodes:
        if n["op"] == "conv2d":
            k, s, pad_top = n["kernel"][0], n["stride"][0], n["pad"][0]
            offset -= pad_top * jump
            field += (k - 1) * jump
            jump *= s
    return field, jump, offset


def export(model: RRF, out: Path, meta: dict) -> None:
    """Writes out.json + out.safetensors in the engine's format: the trunk's nodes as they are, then the head's
    1x1 convolutions with their BatchNorms as `batch_norm` fields (the engine folds them at load)."""
    g = {
        "format": "facepatch-graph", "version": 1, "name": out.stem,
        "input": {"name": "image", "height": 112, "width": 112, "order": "rgb",
                  "mean": [127.5, 127.5, 127.5], "scale": [0.0078125, 0.0078125, 0.0078125]},
        "outputs": ["patches"], "nodes": [], "meta": meta,
    }
    tensors: dict[str, torch.Tensor] = {}
    for part in (model.prefix, model.tail):
        for n in part.nodes:
            g["nodes"].append(n)
            if n["op"] == "conv2d":
                tensors[n["weight"]] = part.p(n["weight"]).detach().permute(0, 2, 3, 1)  # OIHW -> OHWI
                if n.get("bias"):
                    tensors[n["bias"]] = part.p(n["bias"]).detach()
                act = n.get("activation", "none")
                if isinstance(act, dict) and "prelu" in act:
                    tensors[act["prelu"]] = part.p(act["prelu"]).detach()
    field, jump, offset = window(g["nodes"])
    assert field == model.rf and field <= model.window, (field, model.rf)
    g["meta"] = {**meta, "receptive_field": field, "cell_stride": jump, "cell_offset": offset}
    prev = model.tail.output
    mods = list(model.head.layers)
    i, k = 0, 0
    while i < len(mods):
        conv, bn = mods[i], mods[i + 1]
        act = mods[i + 2] if i + 2 < len(mods) and isinstance(mods[i + 2], nn.PReLU) else None
        name = f"head_{k}"
        last = i + (3 if act else 2) >= len(mods)
        node = {"op": "conv2d", "name": name, "input": prev, "output": "patches" if last else name,
                "weight": f"{name}.weight", "bias": None, "kernel": [1, 1], "stride": [1, 1], "pad": [0, 0, 0, 0],
                "groups": 1, "out_channels": conv.out_channels,
                "batch_norm": {"gamma": f"{name}.bn.gamma", "beta": f"{name}.bn.beta", "mean": f"{name}.bn.mean",
                               "var": f"{name}.bn.var", "eps": bn.eps}}
        tensors[f"{name}.weight"] = conv.weight.detach().permute(0, 2, 3, 1)
        tensors[f"{name}.bn.gamma"] = bn.weight.detach()
        tensors[f"{name}.bn.beta"] = bn.bias.detach()
        tensors[f"{name}.bn.mean"] = bn.running_mean.detach()
        tensors[f"{name}.bn.var"] = bn.running_var.detach()
        if act is not None:
            node["activation"] = {"prelu": f"{name}.prelu"}
            tensors[f"{name}.prelu"] = act.weight.detach()
        g["nodes"].append(node)
        prev = node["output"]
        i += 3 if act else 2
        k += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(g, indent=1) + "\n")
    write_safetensors(out.with_suffix(".safetensors"), [(n, t) for n, t in tensors.items()])


def write_safetensors(path: Path, tensors: list[tuple[str, torch.Tensor]]) -> None:
    """Deterministic safetensors (tensors in the given order, F32 little-endian, header padded to 8 bytes)."""
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        b = t.detach().float().contiguous().cpu().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
