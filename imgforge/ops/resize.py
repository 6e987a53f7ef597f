"""Antialiased resizing as two small matrix products, with Pillow's kernels and sampling convention.

``resize(x, (h, w))`` computes ``A_h @ x @ A_w.T`` where ``A`` are ``(out, in)`` resampling matrices built exactly as
Pillow's ``Image.resize`` builds its coefficients (``libImaging/Resample.c``): output pixel ``i`` is centred at
``(i + 0.5) * in/out`` in input coordinates, and when shrinking the kernel is stretched by ``in/out`` (that is the
antialiasing: a 4x downscale averages over a 4x wider footprint). Each row is normalised to sum 1.

Kernels: ``"box"`` (area average for integer factors), ``"bilinear"`` (triangle, support 1), ``"bicubic"`` (Keys
cubic with a = -0.5, support 2; Pillow's default), ``"lanczos"`` (support 3). On float images the result equals
Pillow's ``Image.resize`` on mode ``"F"`` images to float rounding (tests/unit/test_edits_resize.py).

Being plain matrix products, the resize is differentiable, runs on any device and dtype, and is cheap for the small
images a GAN prior works with. ``superres`` uses :func:`downscale` both to make its low-resolution targets in the
benchmarks and inside the loss, so the forward model matches the degradation exactly.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor

KERNELS = ("box", "bilinear", "bicubic", "lanczos")


def _box(x: float) -> float:
    return 1.0 if -0.5 < x <= 0.5 else 0.0


def _triangle(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _bicubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x *= math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3.0) if -3.0 <= x < 3.0 else 0.0


_FILTERS: Dict[str, Tuple[Callable[[float], float], float]] = {
    "box": (_box, 0.5), "bilinear": (_triangle, 1.0), "bicubic": (_bicubic, 2.0), "lanczos": (_lanczos, 3.0),
}


@functools.lru_cache(maxsize=64)
def _matrix(in_size: int, out_size: int, kernel: str) -> Tensor:
    fn, support = _FILTERS[kernel]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    ss = 1.0 / filterscale
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        ws = [fn((x - center + 0.5) * ss) for x in range(xmin, xmax)]
        total = sum(ws)
        if total != 0.0:
            ws = [w / total for w in ws]
        m[i, xmin:xmax] = torch.tensor(ws, dtype=torch.float64)
    return m


def resize_matrix(in_size: int, out_size: int, kernel: str = "bicubic") -> Tensor:
    """The ``(out_size, in_size)`` float64 resampling matrix of one axis (rows sum to 1).

    Raises:
        ValueError: unknown kernel or non-positive sizes.
    """
    if kernel not in _FILTERS:
        raise ValueError(f"unknown resize kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got {in_size} -> {out_size}")
    return _matrix(int(in_size), int(out_size), kernel).clone()


def resize(x: Tensor, size: Tuple[int, int], kernel: str = "bicubic") -> Tensor:
    """Resize ``x: (..., H, W)`` to ``(..., h, w)`` with an antialiased kernel (Pillow's convention).

    Works for down- and up-scaling, on any device, and is differentiable. The output has ``x``'s dtype (the matrices
    are cast to it; integer inputs are not accepted).
    """
    if not x.is_floating_point():
        raise TypeError(f"resize needs a floating-point tensor, got {x.dtype}")
    h, w = int(size[0]), int(size[1])
    H, W = x.shape[-2], x.shape[-1]
    out = x
    if h != H:
        out = torch.matmul(resize_matrix(H, h, kernel).to(x.dtype).to(x.device), out)
    if w != W:
        out = torch.matmul(out, resize_matrix(W, w, kernel).to(x.dtype).to(x.device).t())
    return out if out is not x else x.clone()


def downscale(x: Tensor, factor: int, kernel: str = "bicubic") -> Tensor:
    """Shrink ``x: (..., H, W)`` by an integer ``factor`` (H and W must be multiples of it), antialiased."""
    factor = int(factor)
    H, W = x.shape[-2], x.shape[-1]
    if factor < 1 or H % factor or W % factor:
        raise ValueError(f"cannot downscale {H}x{W} by {factor}: the sides must be multiples of the factor")
    return resize(x, (H // factor, W // factor), kernel)
