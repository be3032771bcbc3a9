"""facepatch graphs (models/FORMAT.md) as PyTorch modules, and back.

`GraphModule` runs a graph JSON + safetensors weights in PyTorch (NCHW inside, same math as the engine), with every
parameter trainable; `export` writes a module's current weights back in the engine's layout. This is how training
starts from MobileFaceNet's layers and how trained models reach the engine.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class GraphModule(nn.Module):
    """The nodes of a facepatch graph, optionally only those up to (and including) the one producing `until`."""

    def __init__(self, graph: dict, weights: dict[str, torch.Tensor], until: str | None = None,
                 start: str | None = None):
        """`start`: begin after the node producing this tensor, which becomes the input (a feature cache)."""
        super().__init__()
        self.nodes = []
        self.params = nn.ParameterDict()
        self.input_name = start or graph["input"]["name"]
        nodes = graph["nodes"]
        if start is not None:
            at = [i for i, n in enumerate(nodes) if n["output"] == start]
            if not at:
                raise ValueError(f"no node produces {start!r}")
            nodes = nodes[at[0] + 1:]
        for node in nodes:
            node = dict(node)
            if node["op"] == "conv2d":
                # OHWI -> OIHW
                self._param(node["weight"], weights[node["weight"]].permute(0, 3, 1, 2))
                if node.get("bias"):
                    self._param(node["bias"], weights[node["bias"]])
                act = node.get("activation", "none")
                if isinstance(act, dict) and "prelu" in act:
                    self._param(act["prelu"], weights[act["prelu"]])
                bn = node.get("batch_norm")
                if bn:
                    for k in ("gamma", "beta", "mean", "var"):
                        self._param(bn[k], weights[bn[k]])
            elif node["op"] not in ("add", "concat", "upsample_nearest", "global_mean", "l2_normalize"):
                raise ValueError(f"op {node['op']} is not supported by train/graph.py")
            self.nodes.append(node)
            if until is not None and node["output"] == until:
                break
        else:
            if until is not None:
                raise ValueError(f"no node produces {until!r}")
        self.output = self.nodes[-1]["output"]

    def _param(self, name: str, value: torch.Tensor) -> None:
        self.params[name.replace(".", "__")] = nn.Parameter(value.clone().float())

    def p(self, name: str) -> torch.Tensor:
        return self.params[name.replace(".", "__")]

    @staticmethod
    def activate(x: torch.Tensor, act, p) -> torch.Tensor:
        if act == "relu":
            return F.relu(x)
        if isinstance(act, dict) and "prelu" in act:
            return F.prelu(x, p(act["prelu"]))
        if isinstance(act, dict) and "leaky_relu" in act:
            return F.leaky_relu(x, act["leaky_relu"])
        return x

    def forward(self, x: torch.Tensor, keep: tuple[str, ...] = ()) -> torch.Tensor | dict[str, torch.Tensor]:
        """`x` is the normalised NCHW input tensor. Returns the last node's output, or a dict of `keep` tensors."""
        vals = {self.input_name: x}
        for n in self.nodes:
            op = n["op"]
            if op == "conv2d":
                t, l, b, r = n["pad"]
                y = vals[n["input"]]
                if (t, l) == (b, r):  # symmetric: let the convolution pad, without a copy
                    padding = (t, l)
                else:
                    y, padding = F.pad(y, (l, r, t, b)), (0, 0)
                y = F.conv2d(y, self.p(n["weight"]), self.p(n["bias"]) if n.get("bias") else None,
                             stride=tuple(n["stride"]), padding=padding, groups=n["groups"])
                bn = n.get("batch_norm")
                if bn:  # inference-mode BatchNorm, as the engine folds it
                    v = lambda k: self.p(bn[k]).view(1, -1, 1, 1)  # noqa: E731
                    y = (y - v("mean")) / torch.sqrt(v("var") + bn["eps"]) * v("gamma") + v("beta")
                y = self.activate(y, n.get("activation", "none"), self.p)
            elif op == "add":
                y = self.activate(vals[n["inputs"][0]] + vals[n["inputs"][1]], n.get("activation", "none"), self.p)
            elif op == "concat":
                y = torch.cat([vals[i] for i in n["inputs"]], dim=1)
            elif op == "global_mean":
                y = vals[n["input"]].mean(dim=(2, 3), keepdim=True)
            elif op == "l2_normalize":
                y = F.normalize(vals[n["input"]], dim=1, eps=n["eps"])
            else:
                raise ValueError(op)
            vals[n["output"]] = y
        if keep:
            return {k: vals[k] for k in keep}
        return vals[self.output]


def load(name_or_path: str | Path, until: str | None = None, start: str | None = None) -> GraphModule:
    """A bundled model (`mobilefacenet`) or a graph path, as a trainable module (nodes after `start` up to `until`)."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = Path(__file__).resolve().parent.parent / "models" / f"{name_or_path}.json"
    graph = json.loads(path.read_text())
    return GraphModule(graph, load_file(str(path.with_suffix(".safetensors"))), until, start)


def normalise_rgb(images_u8: torch.Tensor) -> torch.Tensor:
    """NHWC uint8 RGB -> NCHW float, (x - 127.5) / 128, as the recognisers' graphs prepare their input."""
    return (images_u8.permute(0, 3, 1, 2).float() - 127.5) * 0.0078125
