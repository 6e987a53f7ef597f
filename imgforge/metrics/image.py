"""Image quality metrics: PSNR and SSIM, per image, computed in float64 on the CPU.

Both take ``x, y: (B, C, H, W)`` (or ``(C, H, W)``) float images in ``[0, data_range]`` and return a ``(B,)`` float64
tensor.

PSNR: ``10 log10(data_range^2 / MSE)``, MSE over all channels and pixels of each image (``inf`` for identical
images). With ``mask: (B or 1, 1 or C, H, W)`` in [0, 1], the MSE is the mask-weighted mean over the pixels where the
mask is on (e.g. the filled hole of an inpainting).

SSIM (Wang, Bovik, Sheikh, Simoncelli 2004, "Image quality assessment: from error visibility to structural
similarity"): local means, variances and covariance under an 11x11 Gaussian window with sigma 1.5 (normalised to sum
1), constants ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` with ``L = data_range``, population (not sample)
(co)variances, computed over the "valid" positions only (no padding: an H x W image gives (H-10) x (W-10) local
values), averaged over positions and then over channels. This is the paper's definition and the default of its
reference MATLAB code; ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=L)`` gives the same number. For images smaller than the window the window
shrinks to the largest odd size that fits (sigma kept), so tiny test images still get a value.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _prep(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if x.shape != y.shape:
        raise ValueError(f"images must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() == 3:
        x, y = x[None], y[None]
    if x.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    return x.detach().to("cpu", torch.float64), y.detach().to("cpu", torch.float64)


def mse(x: Tensor, y: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Per-image mean squared error ``(B,)``; with ``mask`` the mask-weighted mean (see module docstring)."""
    x, y = _prep(x, y)
    d = (x - y).square()
    if mask is None:
        return d.mean(dim=(1, 2, 3))
    m = mask.detach().to("cpu", torch.float64)
    if m.dim() == 3:
        m = m[None]
    m = m.expand_as(d)
    den = m.sum(dim=(1, 2, 3))
    if bool((den <= 0).any()):
        raise ValueError("the mask selects no pixel of at least one image")
    return (d * m).sum(dim=(1, 2, 3)) / den


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0, mask: Optional[Tensor] = None) -> Tensor:
    """Per-image PSNR in dB ``(B,)`` (``inf`` where the images are identical)."""
    e = mse(x, y, mask)
    with torch.no_grad():
        return 10.0 * torch.log10(torch.as_tensor(float(data_range) ** 2, dtype=torch.float64) / e)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """Normalised 1-D Gaussian taps ``(size,)`` float64, centred."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(r**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, window: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> Tensor:
    """Per-image mean SSIM ``(B,)`` (see the module docstring for the exact definition)."""
    x, y = _prep(x, y)
    b, c, h, w = x.shape
    size = min(int(window), h, w)
    if size % 2 == 0:
        size -= 1
    if size < 1:
        raise ValueError(f"image too small for SSIM: {h}x{w}")
    g = gaussian_window(size, sigma)
    kh = g.view(1, 1, size, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, size).repeat(c, 1, 1, 1)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean(dim=(2, 3)).mean(dim=1)


def psnr_from_mse(value: float, data_range: float = 1.0) -> float:
    """PSNR in dB of a mean squared error (``inf`` for 0)."""
    return math.inf if value <= 0 else 10.0 * math.log10(data_range**2 / value)
