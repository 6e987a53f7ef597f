"""Perlin gradient noise (Perlin 1985 / "Improving noise" 2002), the procedural texture baseline.

A lattice of random unit gradients; at each pixel the dot products with the offsets to the four surrounding lattice
points are blended with the quintic fade ``6t^5 - 15t^4 + 10t^3``. Octaves add the noise at doubled frequencies
(lacunarity 2) with amplitudes multiplied by ``persistence``. Seeded through a ``torch.Generator``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..errors import UsageError

__all__ = ["perlin_octave", "perlin"]


def _fade(t: Tensor) -> Tensor:
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin_octave(height: int, width: int, cell: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """One octave of 2-D gradient noise ``(height, width)``, lattice spacing ``cell`` pixels; values in about [-0.71, 0.71].

    The noise is zero on the lattice points (a property of gradient noise).
    """
    gy, gx = math.ceil(height / cell) + 1, math.ceil(width / cell) + 1
    angles = torch.rand(gy, gx, generator=generator, dtype=torch.float64) * (2 * math.pi)
    grads = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)  # (gy, gx, 2)
    ys = torch.arange(height, dtype=torch.float64) / cell
    xs = torch.arange(width, dtype=torch.float64) / cell
    y0, x0 = ys.floor().long(), xs.floor().long()
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]

    def corner(dy: int, dx: int) -> Tensor:
        g = grads[(y0 + dy)[:, None], (x0 + dx)[None, :]]
        return g[..., 0] * (fx - dx) + g[..., 1] * (fy - dy)

    u, v = _fade(fx), _fade(fy)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return (top * (1 - v) + bottom * v).float()


def perlin(
    height: int,
    width: int,
    *,
    scale: float = 64.0,
    octaves: int = 4,
    persistence: float = 0.5,
    channels: int = 1,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Fractal Perlin noise ``(channels, height, width)`` in [0, 1] (mapped from the octave sum's own range).

    Args:
        scale: lattice spacing of the first octave in pixels (larger = smoother).
        octaves: number of octaves; octave k has spacing ``scale / 2^k`` and amplitude ``persistence^k``.
        persistence: amplitude ratio between successive octaves (0 < persistence <= 1).
        channels: 1 for grey, 3 for independent colour channels.
    """
    if height < 1 or width < 1:
        raise UsageError(f"--width and --height must be positive, got {width}x{height}")
    if scale < 1:
        raise UsageError(f"--scale must be at least 1 px, got {scale}")
    if not 1 <= octaves <= 16:
        raise UsageError(f"--octaves must be between 1 and 16, got {octaves}")
    if not 0 < persistence <= 1:
        raise UsageError(f"--persistence must be in (0, 1], got {persistence}")
    out = []
    for _ in range(channels):
        total = torch.zeros(height, width)
        amp, cell = 1.0, float(scale)
        for _k in range(octaves):
            total += amp * perlin_octave(height, width, max(cell, 1.0), generator)
            amp *= persistence
            cell /= 2
        lo, hi = total.min(), total.max()
        out.append((total - lo) / (hi - lo).clamp_min(1e-12))
    return torch.stack(out)
