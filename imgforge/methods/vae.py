"""Using a trained (V)AE (library side of ``imgforge vae sample|reconstruct|interpolate``).

- :func:`vae_sample`: decode codes ``z = seed -> N(0, I)`` (the same seed -> z map as ``imgforge generate``) into
  mean images; with an AE this shows why a distribution over codes matters (random codes decode to blobs).
- :func:`vae_reconstruct`: encode images (the code's mean) and decode them; returns the PSNR of each.
- :func:`vae_interpolate`: encode two real images and decode ``n`` codes on the line (``lerp``) or great circle
  (``slerp``) between their means: interpolation between two real images through the encoder.

Tensors in, tensors out: loading the model and reading images are in :mod:`imgforge.jobs.vae`.
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch

from ..errors import UsageError
from ..models.vae import VAE



def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.float().clamp(0, 1).expand(-1, 3, -1, -1)


@torch.no_grad()
def vae_sample(model: VAE, seeds: Sequence[int]) -> torch.Tensor:
    """Decoded mean images ``(N, 3, R, R)`` in [0, 1] of ``z = z_from_seeds(seeds)``."""
    from ..models.protocols import z_from_seeds

    return _rgb(model.decoder(z_from_seeds(seeds, model.latent_dim)))


@torch.no_grad()
def vae_reconstruct(model: VAE, images01: torch.Tensor) -> Tuple[torch.Tensor, List[float]]:
    """``(reconstructions (N, 3, R, R) in [0, 1], PSNR in dB of each)``, decoding the code's mean."""
    mu, _ = model.encode(images01)
    rec = model.decoder(mu)
    mse = (rec - images01).square().flatten(1).mean(1)
    return _rgb(rec), [10 * math.log10(1.0 / max(float(m), 1e-12)) for m in mse]


@torch.no_grad()
def vae_interpolate(model: VAE, a01: torch.Tensor, b01: torch.Tensor, n: int = 8, mode: str = "lerp") -> torch.Tensor:
    """``n`` images ``(n, 3, R, R)`` decoded along the path from the code of ``a`` to that of ``b`` (both
    ``(C, R, R)`` in [0, 1]); the first and last are the reconstructions of the two images."""
    if n < 2:
        raise UsageError("--n must be >= 2")
    if mode not in ("lerp", "slerp"):
        raise UsageError(f"--mode {mode!r}: lerp or slerp")
    mu, _ = model.encode(torch.stack([a01, b01]))
    ts = [i / (n - 1) for i in range(n)]
    from .edits import slerp

    z = torch.stack([torch.lerp(mu[0], mu[1], t) if mode == "lerp" else slerp(mu[0], mu[1], t) for t in ts])
    return _rgb(model.decoder(z))
