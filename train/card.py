"""Writes the model card models/<name>.md from the exported graph's meta (architecture, training) and the
measured LFW results of `facepatch eval` (--json output) and its calibration file.

    .venv/bin/python train/card.py rrf56 --eval results.json [--eval-flip results_flip.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def macs(graph: dict) -> tuple[int, int]:
    """(multiply-accumulates, parameters) of a 112x112 input through the graph's conv nodes."""
    shapes = {graph["input"]["name"]: (112, 112, 3)}
    total, params = 0, 0
    for n in graph["nodes"]:
        if n["op"] == "conv2d":
            h, w, c = shapes[n["input"]]
            (kh, kw), (sh, sw), (t, l, b, r) = n["kernel"], n["stride"], n["pad"]
            oh, ow = (h + t + b - kh) // sh + 1, (w + l + r - kw) // sw + 1
            co = n["out_channels"]
            per = kh * kw * (c // n["groups"])
            total += oh * ow * co * per
            params += co * per + co
            shapes[n["output"]] = (oh, ow, co)
        else:
            shapes[n["output"]] = shapes[n["inputs"][0] if "inputs" in n else n["input"]]
    return total, params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--eval", type=Path, required=True, help="facepatch eval --json output (no flip: as verify scores)")
    ap.add_argument("--eval-flip", type=Path, help="the same with --flip")
    args = ap.parse_args()
    g = json.loads((REPO / "models" / f"{args.name}.json").read_text())
    m, t = g["meta"], g["meta"]["training"]
    ev = json.loads(args.eval.read_text())
    evf = json.loads(args.eval_flip.read_text()) if args.eval_flip else None
    cal = json.loads((REPO / "models" / f"{args.name}.calibration.json").read_text())
    mac, _ = macs(g)
    words = t["command"].split()
    cosface = float(words[words.index("--cosface") + 1]) if "--cosface" in words else 0.2
    hist = "\n".join(f"| {h['epoch']} | {h['distill']:.4f} | {h.get('val_cos_to_teacher', float('nan')):.4f} | "
                     f"{100 * h.get('val_accuracy', float('nan')):.2f}% | {h['seconds']:.0f} s |" for h in t["history"])

    def row(e, how):
        return (f"| {how} | {100 * e['accuracy']:.2f}% +- {100 * e['std']:.2f} | {100 * e['tar_at_far_1e-2']:.2f}% | "
                f"{100 * e['tar_at_far_1e-3']:.2f}% | {e['no_face']} |")

    card = f"""# {args.name}: restricted-receptive-field patch model

Each of the {m['grid']}x{m['grid']} cells of this model's output sees only a {m['receptive_field']}x{m['receptive_field']}
window of the 112x112 ArcFace-aligned face (at most {m['window']}x{m['window']}): cell (r, c) sees rows and columns
`{m['cell_offset']} + {m['cell_stride']}*r ... + {m['receptive_field'] - 1}` (clipped to the image). The score of two faces
is cos(mean a_i, mean b_i) of their {m['embedding_dim']}-D cell embeddings, which `facepatch verify` splits exactly
into per-cell contributions. `tests/rrf.rs` checks the window on the engine pixel by pixel.

## Architecture
- Trunk: MobileFaceNet's own layers (`models/mobilefacenet.json`, Apache-2.0 weights) up to
  `{g['nodes'][len(g['nodes']) - m['head_depth'] - 2]['output']}`; frozen up to `{m['frozen_until']}`, fine-tuned after it.
- Head, per cell (1x1 convolutions): {m['head_depth']} x (conv {m['head_width']} + BatchNorm + PReLU), then conv
  {m['embedding_dim']} + BatchNorm (BatchNorm is folded into the convolutions when the engine loads the model).
- Parameters: {m['parameters']:,} (including the frozen trunk). Compute: {mac / 1e6:.0f} M multiply-accumulates
  per face.
- Output `patches`: `[1, {m['grid']}, {m['grid']}, {m['embedding_dim']}]`.

## Training
- Command: `{t['command']}` (after `python train/prepare.py`), seed {t['seed']}.
- Data: {t['data']}: {t['crops']:,} training crops, {t['identities']:,} CelebA identities for the CosFace
  term; validation holds out CelebA identities with id % 10 == 0 and every 20th UTKFace crop. LFW is not used.
- Losses: cosine distillation of the pooled embedding to MobileFaceNet's (random cell dropout on half the
  samples, so masked scores stay meaningful) + {cosface:g} x CosFace (s 30, m 0.35).
- Hardware and time: {t['hardware']}, {t['seconds'] / 60:.1f} minutes (including the feature cache when it was not already on disk).

| epoch | distillation loss | validation cosine to teacher | validation pair accuracy | time |
|---|---|---|---|---|
{hist}

## Measured on LFW (View 2, 6,000 pairs, full pipeline: facepatch's detector and aligner)

| scoring | accuracy (10-fold) | TAR @ FAR 1e-2 | TAR @ FAR 1e-3 | images without a face |
|---|---|---|---|---|
{row(ev, "`verify` (one pass)")}
{row(evf, "with `--flip`") if evf else ""}

Command: `facepatch eval --pairs ../shared/data/lfw/pairs.txt --root ../shared/data/lfw --model {args.name}
--calibrate models/{args.name}.calibration.json` ({ev['seconds'] / 60:.0f} minutes on {ev['device']}).

## Operating points (calibrated on LFW's 10 folds, so optimistic for other data)

| operating point | threshold | false-accept rate on LFW | true-accept rate on LFW |
|---|---|---|---|
| best accuracy (`verify` default) | {cal['threshold']:.4f} | {100 * sum(s > cal['threshold'] for s in cal['negative_scores']) / len(cal['negative_scores']):.2f}% | {100 * sum(s > cal['threshold'] for s in cal['positive_scores']) / len(cal['positive_scores']):.2f}% |
| FAR 1e-2 (`--far 1e-2`) | {cal['threshold_at_far_1e2']:.4f} | {100 * sum(s > cal['threshold_at_far_1e2'] for s in cal['negative_scores']) / len(cal['negative_scores']):.2f}% | {100 * ev['tar_at_far_1e-2']:.2f}% |
| FAR 1e-3 (`--far 1e-3`) | {cal['threshold_at_far_1e3']:.4f} | {100 * sum(s > cal['threshold_at_far_1e3'] for s in cal['negative_scores']) / len(cal['negative_scores']):.2f}% | {100 * ev['tar_at_far_1e-3']:.2f}% |

## Terms
Trained on CelebA (The Chinese University of Hong Kong; non-commercial research purposes only) and UTKFace
(non-commercial research purposes only): this model inherits those terms. The MobileFaceNet layers it starts from
are Apache-2.0 ([mobilefacenet.md](mobilefacenet.md)). LFW was used for evaluation only.
"""
    (REPO / "models" / f"{args.name}.md").write_text(card)
    print(f"wrote models/{args.name}.md")


if __name__ == "__main__":
    main()
