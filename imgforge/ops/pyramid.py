"""Image pyramids of the multi-scale GANs (``imgforge gan train --arch lapgan|progan|msggan``).

- :func:`d` / :func:`u`: LAPGAN's (Denton et al. 2015) down- and up-sampling. ``d`` blurs with the 5-tap binomial
  kernel ``[1, 4, 6, 4, 1] / 16`` (separable, reflect padding) and keeps every second pixel; ``u`` doubles the size
  bilinearly (half-pixel centres). The Laplacian pyramid of ``I_0`` is ``h_k = I_k - u(I_{k+1})`` with
  ``I_{k+1} = d(I_k)``, plus the low-pass top ``I_K``; :func:`reconstruct` inverts it exactly
  (``I_k = u(I_{k+1}) + h_k``), whatever ``d`` and ``u`` are.
- :func:`avg_down` / :func:`nearest_up`: ProGAN's and MSG-GAN's average-pool down and nearest-neighbour up
  (``avg_down(nearest_up(x)) == x`` exactly); :func:`avg_pyramid` is the list of a batch at every scale.

Every function works on ``(N, C, H, W)`` with H, W divisible by the factors involved.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["d", "u", "gaussian_pyramid", "laplacian_pyramid", "reconstruct", "avg_down", "nearest_up",
           "avg_pyramid", "resize_to"]

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def _blur(x: Tensor) -> Tensor:
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16.0
    c = x.shape[1]
    x = F.pad(x, (2, 2, 2, 2), mode="reflect") if min(x.shape[-2:]) > 2 else F.pad(x, (2, 2, 2, 2), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def d(x: Tensor) -> Tensor:
    """LAPGAN's ``d``: binomial blur, then every second pixel (``(N, C, H, W) -> (N, C, H/2, W/2)``)."""
    return _blur(x)[..., ::2, ::2]


def u(x: Tensor) -> Tensor:
    """LAPGAN's ``u``: bilinear x2 upsampling (``(N, C, H, W) -> (N, C, 2H, 2W)``)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def gaussian_pyramid(x: Tensor, levels: int) -> List[Tensor]:
    """``[I_0 = x, I_1 = d(I_0), ..., I_levels]`` (``levels + 1`` images, finest first)."""
    out = [x]
    for _ in range(int(levels)):
        out.append(d(out[-1]))
    return out


def laplacian_pyramid(x: Tensor, levels: int) -> List[Tensor]:
    """``[h_0, ..., h_{levels-1}, I_levels]`` with ``h_k = I_k - u(I_{k+1})`` (finest first)."""
    g = gaussian_pyramid(x, levels)
    return [g[k] - u(g[k + 1]) for k in range(int(levels))] + [g[-1]]


def reconstruct(pyramid: Sequence[Tensor]) -> Tensor:
    """Inverse of :func:`laplacian_pyramid`: ``I_k = u(I_{k+1}) + h_k`` from the top down."""
    img = pyramid[-1]
    for h in reversed(list(pyramid[:-1])):
        img = u(img) + h
    return img


def avg_down(x: Tensor, factor: int = 2) -> Tensor:
    """Average pooling by ``factor`` (ProGAN's downsampling)."""
    return F.avg_pool2d(x, int(factor)) if factor > 1 else x


def nearest_up(x: Tensor, factor: int = 2) -> Tensor:
    """Nearest-neighbour upsampling by ``factor`` (ProGAN's upsampling)."""
    return F.interpolate(x, scale_factor=int(factor), mode="nearest") if factor > 1 else x


def resize_to(x: Tensor, size: int) -> Tensor:
    """``x`` average-pooled down or nearest-upsampled to ``size`` (a power-of-two ratio)."""
    s = int(x.shape[-1])
    return avg_down(x, s // size) if s > size else nearest_up(x, size // s)


def avg_pyramid(x: Tensor, sizes: Sequence[int]) -> List[Tensor]:
    """``x`` at every size of ``sizes`` (each by average pooling), in the order given."""
    return [resize_to(x, int(s)) for s in sizes]
