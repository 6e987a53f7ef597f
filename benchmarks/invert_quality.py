"""Inversion quality: imgforge's batched Inverter against the plain fp32 loop, paired per image, same seeds.

The plain loop is :func:`invert_speed.plain_invert` (one image at a time, float32, NCHW, grouped modulated
convolution). Both invert the same ``--images`` digits drawn from the generator (z from seed 0) in W+ for
``--steps`` steps; image ``i`` takes its latent noise from seed ``base + i`` on both sides, for each ``--seed-base``.
Reported: the mean reconstruction PSNR (images clamped to [0, 1], peak 1) of each side and the paired per-image
difference, mean +- standard error. With the plain loop on two seed bases it also shows how much the seed alone
moves the mean (why a comparison with different seeds, or of a few images, says little at 40 steps).

    OMP_NUM_THREADS=1 python benchmarks/invert_quality.py --images 64 --steps 40 --seed-base 303

Findings: benchmarks/results/invert_quality.md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from imgforge.losses.perceptual import IMAGE2STYLEGAN_LAYERS, PerceptualDistance  # noqa: E402
from imgforge.methods.invert import InvertConfig, Inverter, latent_stats  # noqa: E402
from imgforge.runtime import Runtime  # noqa: E402
from invert_speed import plain_invert  # noqa: E402


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _paired(a: List[float], b: List[float]) -> Dict[str, float]:
    d = [x - y for x, y in zip(a, b)]
    return {"mean_db": statistics.mean(d), "se_db": statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else math.nan,
            "sd_db": statistics.stdev(d) if len(d) > 1 else math.nan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="stylegan2-mnist32")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed-base", type=int, action="append", default=None,
                    help="image i uses seed BASE + i (repeatable; default: InvertConfig.seed)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from imgforge.generator_api import load_generator
    from imgforge.hub.encoders import resolve_perceptual_encoder

    G = load_generator(args.weights)
    enc, desc = resolve_perceptual_encoder(None)
    cfg = InvertConfig(space="w+", steps=args.steps, progress_every=10**9, w_avg_samples=10000)
    st = latent_stats(G, cfg.w_avg_samples)
    n = args.images
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(0))
        targets = ((G(z) + 1) / 2).clamp(0, 1)
    bases = args.seed_base or [cfg.seed]
    psnr: Dict[str, List[float]] = {}
    for base in bases:
        seeds = [base + i for i in range(n)]
        ws = torch.cat([plain_invert(G, targets[i:i + 1], enc, cfg, st.w_avg, st.w_std, seeds[i]) for i in range(n)])
        with torch.no_grad():
            G.set_fused_modconv(True)
            rec = ((G.synthesis(ws, noise_mode="const") + 1) / 2).clamp(0, 1)
        psnr[f"plain/{base}"] = [_psnr(rec[i], targets[i]) for i in range(n)]
        for prec in args.precisions.split(","):
            inv = Inverter(G, cfg, perceptual=PerceptualDistance(enc, IMAGE2STYLEGAN_LAYERS),
                           runtime=Runtime.create("cpu", prec, task="optimisation"))
            inv._stats = st
            res = inv.run(targets, seeds=seeds)
            psnr[f"{prec}/{base}"] = [_psnr(res.images[i], targets[i]) for i in range(n)]
    out = {"weights": args.weights, "encoder": desc, "images": n, "steps": args.steps, "seed_bases": bases,
           "threads": args.threads, "torch": torch.__version__,
           "mean_psnr_db": {k: statistics.mean(v) for k, v in psnr.items()}, "paired": {}, "per_image_db": psnr}
    for base in bases:
        for prec in args.precisions.split(","):
            out["paired"][f"{prec}/{base} - plain/{base}"] = _paired(psnr[f"{prec}/{base}"], psnr[f"plain/{base}"])
    if len(bases) > 1:
        out["paired"][f"plain/{bases[1]} - plain/{bases[0]}"] = _paired(psnr[f"plain/{bases[1]}"],
                                                                         psnr[f"plain/{bases[0]}"])
    for k, v in out["mean_psnr_db"].items():
        print(f"mean PSNR {k:12s} {v:6.2f} dB")
    for k, v in out["paired"].items():
        print(f"paired {k:26s} {v['mean_db']:+.2f} ± {v['se_db']:.2f} dB (s.e.), per-image sd {v['sd_db']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
