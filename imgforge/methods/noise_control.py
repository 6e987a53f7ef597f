"""StyleGAN's per-layer noise inputs: which synthesis layers get random noise (Karras et al. 2019, Figures 4-5).

Layers are the generator's noise maps in order (``G.noise_buffers()``: one per synthesis convolution, ``(1, 1, r, r)``).
A spec selects some of them; the others get zero noise:

- ``all`` / ``none``;
- ``coarse``: the layers of the first half of the resolution levels (4² ... 32² of a 1024² generator, as in the
  paper's Figure 5d; 4² and 8² of a 32² one), ``fine``: the rest (64² ... 1024², Figure 5c);
- ``A-B`` or ``A``: noise-map indices (0-based, inclusive).
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from ..errors import UsageError

__all__ = ["NOISE_LAYER_SPECS", "noise_layer_mask", "layered_noise", "pixel_std"]

NOISE_LAYER_SPECS = ("all", "none", "fine", "coarse", "A-B")


def noise_layer_mask(resolutions: Sequence[int], spec: str) -> List[bool]:
    """Which noise maps (of the given side lengths, in layer order) get noise under ``spec``."""
    n = len(resolutions)
    s = spec.strip().lower()
    if s == "all":
        return [True] * n
    if s == "none":
        return [False] * n
    if s in ("coarse", "fine"):
        levels = sorted(set(resolutions))
        coarse = set(levels[: len(levels) // 2]) if len(levels) > 1 else set()
        return [(r in coarse) == (s == "coarse") for r in resolutions]
    m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", s)
    if not m:
        raise UsageError(f"--noise-layers {spec!r}: use all, none, fine, coarse or a layer range like 0-3")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else lo
    if hi < lo or hi >= n:
        raise UsageError(f"--noise-layers {spec!r}: this generator has noise layers 0-{n - 1}")
    return [lo <= i <= hi for i in range(n)]


def layered_noise(buffers: Sequence[Tensor], spec: str, generators: Sequence[torch.Generator],
                  device: Optional[torch.device] = None) -> List[Tensor]:
    """Per-layer noise for a batch (one ``torch.Generator`` per image): N(0, 1) maps on the selected layers,
    zeros elsewhere; ``[(B, 1, r, r)] * len(buffers)``. Every layer's maps are drawn (selected or not), so the
    random stream, and the selected layers' noise, does not depend on the spec."""
    mask = noise_layer_mask([int(b.shape[-1]) for b in buffers], spec)
    out = []
    for keep, buf in zip(mask, buffers):
        maps = torch.cat([torch.randn(1, 1, *buf.shape[-2:], generator=g) for g in generators])
        out.append((maps if keep else torch.zeros_like(maps)).to(device or buf.device))
    return out


def pixel_std(images: Tensor) -> Tensor:
    """Per-pixel standard deviation over realisations ``(N, C, H, W)`` -> ``(H, W)`` (averaged over channels)."""
    if images.shape[0] < 2:
        raise UsageError("the standard deviation needs at least 2 noise realisations (--n 2 or more)")
    return images.float().std(dim=0, unbiased=True).mean(dim=0)
