#!/usr/bin/env python3
"""Wall-clock of Gatys stylisation with the library defaults, plus the style/content distances of the result.

Usage: ``python benchmarks/gatys_wallclock.py CONTENT STYLE --out /tmp/out.png [--encoder FILE] [--iterations N]``
Distances are measured with the same encoder: style = relative Gram distance to the style image (resized as the
optimisation used it), content = relative relu4_2 distance to the (resized) content image.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgforge.hub.encoders import load_style_encoder  # noqa: E402
from imgforge.methods.gatys import GatysConfig, content_distance, resize_long_side, style_distance, stylize_gatys  # noqa: E402
from imgforge.runtime import Runtime  # noqa: E402


def load(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def plain_gatys(content: torch.Tensor, style: torch.Tensor, encoder: torch.nn.Module, cfg: GatysConfig,
                iterations: int) -> torch.Tensor:
    """The plain reference loop: the same relative loss as :func:`stylize_gatys` (content at relu4_2, Gram matrices
    at relu1_1..relu5_1, TV), float32, NCHW, the encoder as it is, L-BFGS with neural-style-pt's settings; returns the
    image after ``iterations`` evaluations. ``content``/``style``: (1, 3, H, W) in [0, 1] at the working sizes."""
    import torch.nn.functional as F

    from imgforge.ops.stats import gram

    layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
    with torch.no_grad():
        fc = encoder(content, cfg.content_layers)
        gs = {k: gram(v) for k, v in encoder(style, cfg.style_layers).items()}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=iterations, max_eval=iterations, tolerance_grad=-1,
                            tolerance_change=-1, history_size=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        f = encoder(x, layers)
        c = sum(F.mse_loss(f[k], fc[k]) / fc[k].pow(2).mean() for k in cfg.content_layers)
        s = sum(F.mse_loss(gram(f[k]), gs[k]) / gs[k].pow(2).mean() for k in cfg.style_layers)
        tv = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
        loss = cfg.content_weight * c + cfg.style_weight * s + cfg.tv_weight * tv
        loss.backward()
        return loss

    if iterations:
        opt.step(closure)
    return x.detach().clamp(0, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("content", type=Path)
    ap.add_argument("style", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--encoder", type=Path, default=None)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 | auto (the Runtime's optimisation policy)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    enc, desc = load_style_encoder(a.encoder)
    cfg = GatysConfig()
    changes = {k: v for k, v in (("iterations", a.iterations), ("size", a.size)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)
    content, style = load(a.content), load(a.style)
    print(f"encoder: {desc}\nconfig: {cfg}", flush=True)
    t0 = time.perf_counter()
    rt = Runtime.create("cpu", a.precision, task="optimisation")
    out = stylize_gatys(content, [style], enc, cfg, runtime=rt, progress=lambda e: print(
        e.step, {k: round(v, 4) for k, v in e.metrics.items()}, e.message or "", flush=True) if e.step % 50 == 0 or e.message else None)
    wall = time.perf_counter() - t0
    c = resize_long_side(content, cfg.size) if cfg.size else content
    s = resize_long_side(style, round(max(out.shape[-2:]) * cfg.style_scale))
    from PIL import Image

    Image.fromarray((out[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(a.out)
    print(f"wall-clock {wall:.1f} s for {cfg.iterations} iterations at {out.shape[-1]}x{out.shape[-2]}"
          f" ({wall / max(1, cfg.iterations):.2f} s/it)")
    print(f"style distance: content image {style_distance(c, [s], enc):.4f} -> output {style_distance(out, [s], enc):.4f}")
    print(f"content distance (relu4_2) of the output: {content_distance(out, c, enc):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
