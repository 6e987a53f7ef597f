"""Resize protocols of the feature extractors, each named and recorded with every score.

Input everywhere: float ``(N, C, H, W)`` on the 0..255 scale (uint8 images cast to float32). Output: the same
scale at ``(size, size)``, float32.

* ``tf1`` -- torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` (TensorFlow 1 ``resize_bilinear``,
  ``align_corners=False``): per axis ``scale = float32(in / out)``, ``src = float32(arange(out)) * scale`` (no
  half-pixel shift), ``lo = floor(src)``, ``hi = min(lo + 1, in - 1)``, interpolate along x on rows lo and hi, then
  along y; no antialiasing. The default for the Inception extractor, so numbers compare with torch-fidelity and with
  the original TensorFlow FID code. Inception input normalisation: ``(x - 128) / 128``.
* ``torch`` -- pytorch-fid: ``F.interpolate(mode="bilinear", align_corners=False)`` (half-pixel centres, no
  antialias); Inception normalisation ``x / 127.5 - 1`` (pytorch-fid's ``2 * x01 - 1``).
* ``clean`` -- clean-fid's "clean" mode: each channel resized as a float32 PIL image (mode ``"F"``) with
  ``Image.BICUBIC`` (antialiased when downsampling), clipped to 0..255, not quantised; normalisation
  ``(x - 128) / 128``. (clean-fid runs NVIDIA's TorchScript network afterwards; imgforge runs the same TensorFlow
  weights from the ``.pth`` file, see :mod:`imgforge.models.inception`.)
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UsageError

RESIZE_PROTOCOLS = ("tf1", "torch", "clean")
DEFAULT_RESIZE = "tf1"

#: Inception input normalisation of each protocol: (offset, scale) with ``x_in = (x - offset) / scale``.
INCEPTION_NORM: Dict[str, tuple] = {"tf1": (128.0, 128.0), "torch": (127.5, 127.5), "clean": (128.0, 128.0)}


def check_protocol(name: str) -> str:
    if name not in RESIZE_PROTOCOLS:
        raise UsageError(f"--resize must be one of {', '.join(RESIZE_PROTOCOLS)}, got {name!r}")
    return name


def _tf1_grid(n_in: int, n_out: int, device: torch.device) -> tuple:
    scale = np.float32(n_in / n_out)
    src = torch.arange(n_out, dtype=torch.float32, device=device) * torch.tensor(float(scale), dtype=torch.float32)
    lo = src.floor()
    f = src - lo
    lo_i = lo.long().clamp(max=n_in - 1)
    hi_i = (lo_i + 1).clamp(max=n_in - 1)
    return lo_i, hi_i, f


def resize_tf1(x: Tensor, size: int) -> Tensor:
    """TF1 bilinear (see module docstring), float32, bit-exact with torch-fidelity's "slow" method."""
    x = x.float()
    h, w = x.shape[-2:]
    ylo, yhi, fy = _tf1_grid(h, size, x.device)
    xlo, xhi, fx = _tf1_grid(w, size, x.device)
    left, right = x[..., xlo], x[..., xhi]
    top = left[..., ylo, :] + (right[..., ylo, :] - left[..., ylo, :]) * fx
    bot = left[..., yhi, :] + (right[..., yhi, :] - left[..., yhi, :]) * fx
    return top + (bot - top) * fy[:, None]


def resize_torch(x: Tensor, size: int) -> Tensor:
    """pytorch-fid's ``F.interpolate(bilinear, align_corners=False)``."""
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)


def resize_clean(x: Tensor, size: int) -> Tensor:
    """clean-fid's PIL bicubic on float32 channels, clipped to 0..255."""
    from PIL import Image

    arr = x.detach().float().cpu().numpy()
    out = np.empty(arr.shape[:2] + (size, size), dtype=np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            im = Image.fromarray(arr[i, c], mode="F").resize((size, size), resample=Image.BICUBIC)
            out[i, c] = np.asarray(im, dtype=np.float32)
    return torch.from_numpy(np.clip(out, 0, 255)).to(x.device)


def resize(x: Tensor, size: int, protocol: str = DEFAULT_RESIZE) -> Tensor:
    """Resize ``(N, C, H, W)`` 0..255 images to ``size x size`` with the named protocol (always applied for
    ``tf1`` -- the identity at equal size -- as torch-fidelity does)."""
    check_protocol(protocol)
    if protocol == "tf1":
        return resize_tf1(x, size)
    if tuple(x.shape[-2:]) == (size, size):
        return x.float()
    return resize_torch(x, size) if protocol == "torch" else resize_clean(x, size)


def inception_input(x: Tensor, protocol: str = DEFAULT_RESIZE, size: int = 299) -> Tensor:
    """0..255 images -> the normalised 299x299 Inception input of ``protocol``."""
    off, sc = INCEPTION_NORM[check_protocol(protocol)]
    return (resize(x, size, protocol) - off) / sc
