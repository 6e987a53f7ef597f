"""Inversion speed: imgforge's batched inverter against a plain fp32 implementation of the same loop, same run.

The plain loop is what a straightforward port of the reference projector does: one image at a time, float32,
NCHW tensors, the generator's default grouped ("fused") modulated convolution, the loss terms computed by hand,
and the losses read back every step (``float(loss)``, as NVIDIA's projector logs them). It optimises the same
latent with the same schedule, latent noise and loss (pixel MSE + relative VGG distance at conv1_1, conv1_2,
conv3_2, conv4_2).

imgforge's :class:`~imgforge.methods.invert.Inverter` (float32, and bf16 autocast as ``--precision auto`` picks on
CPUs with fast bf16) optimises ``--batch`` images at once (one latent, one
random stream per image), channels_last, the shared-weight modulated convolution for the backward pass, the encoder
run only up to conv4_2, and no per-step device sync (progress only every ``progress_every`` steps).

The figure of merit is image-steps per second (one optimisation step of one image). Modes run interleaved, so a
shared, noisy machine affects them alike; the median of ``--rounds`` is reported.

    python benchmarks/invert_speed.py --weights stylegan2-mnist32 --steps 40 --batch 16 --rounds 3 --threads 1

Results are in the report of the branch that added this file and in the README's inversion section.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgforge.losses.perceptual import IMAGE2STYLEGAN_LAYERS, PerceptualDistance  # noqa: E402
from imgforge.methods.invert import InvertConfig, Inverter, latent_stats, lr_schedule  # noqa: E402
from imgforge.runtime import Runtime  # noqa: E402


def plain_invert(G: Any, target: torch.Tensor, encoder: Any, cfg: InvertConfig, w_avg: torch.Tensor,
                 w_std: float, seed: int) -> torch.Tensor:
    """The plain reference loop for ONE image ``(1, 3, R, R)`` in [0, 1]; returns the final ws."""
    G.set_fused_modconv(True)
    G.memory_format = torch.contiguous_format
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        tf = encoder(target, layers=cfg.perceptual_layers)
    energy = {k: v.square().mean() for k, v in tf.items()}
    if cfg.space == "w+":
        w = w_avg.view(1, 1, -1).repeat(1, G.num_ws, 1).clone().requires_grad_(True)
    else:
        w = w_avg.view(1, 1, -1).clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=cfg.lr, betas=cfg.betas)
    for step in range(cfg.steps):
        t = step / cfg.steps
        noise_scale = w_std * cfg.latent_noise * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2
        for g in opt.param_groups:
            g["lr"] = cfg.lr * lr_schedule(t, cfg.lr_rampup, cfg.lr_rampdown)
        wn = w + torch.randn(w.shape, generator=gen).to(w.device) * noise_scale
        ws = wn if cfg.space == "w+" else wn.repeat(1, G.num_ws, 1)
        img = (G.synthesis(ws, noise_mode="const") + 1) / 2
        loss = cfg.mse_weight * F.mse_loss(img, target)
        feats = encoder(img, layers=cfg.perceptual_layers)
        for k in cfg.perceptual_layers:
            loss = loss + cfg.perceptual_weight * (feats[k] - tf[k]).square().mean() / energy[k]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _ = float(loss)  # per-step logging, as the reference projectors do
    return w.detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="stylegan2-mnist32")
    ap.add_argument("--encoder", default=None, help="perceptual encoder (default: VGG-16 if present, else embedded)")
    ap.add_argument("--space", default="w+", choices=("w", "w+"))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from imgforge.generator_api import load_generator
    from imgforge.hub.encoders import resolve_perceptual_encoder

    G = load_generator(args.weights)
    enc, desc = resolve_perceptual_encoder(args.encoder)
    cfg = InvertConfig(space=args.space, steps=args.steps, progress_every=10**9, w_avg_samples=10000)
    st = latent_stats(G, cfg.w_avg_samples)
    R = G.img_resolution
    with torch.no_grad():
        z = torch.randn(args.batch, G.z_dim, generator=torch.Generator().manual_seed(0))
        targets = ((G(z) + 1) / 2).clamp(0, 1)
    inv = Inverter(G, cfg, perceptual=PerceptualDistance(enc, IMAGE2STYLEGAN_LAYERS))
    inv._stats = st
    inv16 = Inverter(G, cfg, perceptual=inv.perceptual, runtime=Runtime(torch.device("cpu"), torch.bfloat16))  # what --precision bf16/auto runs
    inv16._stats = st
    n_plain = min(args.batch, 4)  # the plain loop is slow: time it on a few images, report per image-step
    rates: Dict[str, List[float]] = {"plain_fp32": [], "imgforge_batched": [], "imgforge_batched_bf16": []}
    # warm-up
    plain_invert(G, targets[:1], enc, InvertConfig(space=args.space, steps=2), st.w_avg, st.w_std, 0)
    Inverter(G, InvertConfig(space=args.space, steps=2), perceptual=inv.perceptual)._stats = st
    for r in range(args.rounds):
        t0 = time.perf_counter()
        for i in range(n_plain):
            plain_invert(G, targets[i:i + 1], enc, cfg, st.w_avg, st.w_std, i)
        rates["plain_fp32"].append(n_plain * args.steps / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        inv.run(targets)
        rates["imgforge_batched"].append(args.batch * args.steps / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        inv16.run(targets)
        rates["imgforge_batched_bf16"].append(args.batch * args.steps / (time.perf_counter() - t0))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} img-steps/s" for k, v in rates.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    out = {"weights": args.weights, "resolution": R, "encoder": desc, "space": args.space, "steps": args.steps,
           "batch": args.batch, "threads": args.threads, "torch": torch.__version__,
           "img_steps_per_s": med, "speedup": med["imgforge_batched"] / med["plain_fp32"],
           "speedup_bf16": med["imgforge_batched_bf16"] / med["plain_fp32"], "rounds": rates}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if not math.isfinite(out["speedup"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
