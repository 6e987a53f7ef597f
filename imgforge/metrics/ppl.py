"""Perceptual path length (Karras et al. 2019, StyleGAN; NVIDIA's ``metrics/perceptual_path_length.py`` protocol).

For each sample: two latents ``z0, z1 ~ N(0, I)`` and ``t ~ U(0, 1)`` (``sampling="full"``) or ``t = 0``
(``"end"``); in Z the two points are ``slerp(z0, z1, t)`` and ``slerp(z0, z1, t + eps)`` (then mapped to W), in W
``lerp(w0, w1, t)`` and ``lerp(w0, w1, t + eps)`` with ``w = mapping(z)`` (no truncation); both are synthesised
(``noise_mode="const"``), and the sample's value is ``d(img_t, img_t+eps) / eps^2`` with ``eps = 1e-4``. PPL = the
mean of the values between the 1st and 99th percentile (NVIDIA drops the outliers the same way).

``d``: NVIDIA uses LPIPS (VGG-16). imgforge has no LPIPS weights; it uses the perceptual distance available
(:class:`~imgforge.losses.perceptual.PerceptualDistance`, sum over the Image2StyleGAN layers of the mean squared
feature difference, images upsampled to at least 64 px) on the encoder that
:func:`~imgforge.losses.perceptual.resolve_perceptual_encoder` picks -- the published VGG-16 when it is present,
else the embedded encoder -- and names it in the result. Values are therefore NOT comparable with published PPL.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from torch import Tensor

from ..errors import UsageError
from ..progress import ProgressEvent, ProgressFn, emit

PPL_EPS = 1e-4
SPACES = ("w", "z")
SAMPLINGS = ("end", "full")


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of (normalised) latents, as NVIDIA's PPL: returns unit vectors."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    return a * torch.cos(p) + c * torch.sin(p)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return a + (b - a) * t


@torch.no_grad()
def perceptual_path_length(G: Any, distance: Callable[[Tensor, Tensor], Tensor], n: int, *, space: str = "w",
                           sampling: str = "end", eps: float = PPL_EPS, seed: int = 0, batch_size: int = 16,
                           progress: Optional[ProgressFn] = None) -> Dict[str, Any]:
    """PPL of generator ``G`` over ``n`` samples; ``distance(x, y) -> (B,)`` on images in [0, 1].

    Returns ``{"value", "std", "n", "space", "sampling", "eps", "seed"}`` (``std`` of the kept values)."""
    if space not in SPACES or sampling not in SAMPLINGS:
        raise UsageError(f"PPL space must be one of {SPACES} and sampling one of {SAMPLINGS}")
    if n < 2:
        raise UsageError("PPL needs at least 2 samples")
    gen = torch.Generator().manual_seed(int(seed))
    p0 = next(iter(G.parameters()), None) if hasattr(G, "parameters") else None
    dev = p0.device if p0 is not None else torch.device("cpu")
    vals = []
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        z = torch.randn(2 * b, G.z_dim, generator=gen)
        t = torch.rand(b, 1, generator=gen) * (1.0 if sampling == "full" else 0.0)
        z, t = z.to(dev), t.to(dev)
        if space == "z":
            z0, z1 = z[:b], z[b:]
            zt = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + eps)])
            ws = G.mapping(zt, truncation_psi=1.0)
        else:
            w = G.mapping(z, truncation_psi=1.0)
            w0, w1 = w[:b], w[b:]
            tt = t[:, :, None]
            ws = torch.cat([lerp(w0, w1, tt), lerp(w0, w1, tt + eps)])
        img = (G.synthesis(ws, noise_mode="const").float().clamp(-1, 1) + 1) / 2
        d = distance(img[:b], img[b:]).double() / eps**2
        vals.append(d.cpu())
        done += b
        emit(progress, ProgressEvent(task=f"PPL ({space}, {sampling})", step=done, total=n, unit="pair"))
    v = torch.cat(vals).numpy()
    lo, hi = np.percentile(v, 1, method="lower"), np.percentile(v, 99, method="higher")
    kept = v[(v >= lo) & (v <= hi)]
    return {"value": float(kept.mean()), "std": float(kept.std()), "n": int(n), "space": space,
            "sampling": sampling, "eps": eps, "seed": int(seed)}
