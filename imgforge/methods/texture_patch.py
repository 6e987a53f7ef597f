"""Non-parametric ("style as patches") texture synthesis: Efros & Leung 1999 and image quilting (Efros & Freeman 2001).

Both take a sample texture ``(C, h, w)`` in [0, 1] and return a texture of any size ``(C, H, W)``; they copy pixels
or blocks of the sample, so the output has the sample's local structure without any network.

- :func:`efros_leung`: pixels are grown one at a time in scanline order from a seed patch copied from the sample in
  the top-left corner. The neighbourhood of a new pixel is the L-shaped causal part of a ``window x window`` square
  (the rows above it and the pixels to its left: exactly the already-synthesised pixels in scanline order), compared
  by Gaussian-weighted SSD against every ``window x window`` window of the sample; the new pixel is the centre of a
  window chosen at random among those within ``(1 + epsilon)`` of the best distance. The distances to all sample
  windows are one matrix-vector product per pixel (``[P, P^2] @ [-2 m*n, m]`` with the sample's windows ``P`` unfolded
  once), so a 128² texture from a 64² sample takes seconds on a CPU, and the same code runs on a GPU.
- :func:`quilting`: overlapping ``block x block`` blocks in raster order, each chosen at random among the sample blocks
  whose overlap error with what is already placed is within ``(1 + tolerance)`` of the best, and pasted along the
  minimum-error boundary cut through the overlap (dynamic programming).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UsageError
from ..progress import ProgressEvent, ProgressFn, emit

__all__ = ["efros_leung", "quilting", "QuiltStats", "min_cut_mask", "gaussian_window"]


def gaussian_window(window: int, dtype=torch.float32) -> Tensor:
    """2-D Gaussian weights ``(window, window)`` with sigma = window / 6.4 (Efros & Leung's choice)."""
    sigma = window / 6.4
    r = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def _check_sample(sample: Tensor, size: int, what: str) -> None:
    if sample.dim() != 3:
        raise ValueError(f"expected a sample (C, h, w), got {tuple(sample.shape)}")
    h, w = sample.shape[1:]
    if h < size or w < size:
        raise UsageError(f"the texture sample ({w}x{h} px) is smaller than the {what} ({size} px); use a larger "
                         f"sample or a smaller {what}")


def _pixel_order(known: Tensor, window: int, order: str):
    """Yield the (y, x) pixels still to synthesise: onion rings around what is known, or scanline order.

    ``known (H, W)`` is 1 where a pixel is synthesised; the caller updates it as pixels are made.
    """
    h, w = known.shape
    if order == "scanline":
        for y in range(h):
            for x in range(w):
                if not known[y, x]:
                    yield y, x
        return
    ones3 = torch.ones(1, 1, 3, 3)
    onesw = torch.ones(1, 1, window, window)
    while not bool(known.all()):
        f = known.float()[None, None]
        frontier = (F.conv2d(f, ones3, padding=1)[0, 0] > 0) & (known == 0)
        count = F.conv2d(f, onesw, padding=window // 2)[0, 0]
        ys, xs = torch.nonzero(frontier, as_tuple=True)
        # most known neighbours first (the paper's order); ties in scanline order (stable sort)
        for i in torch.argsort(-count[ys, xs], stable=True).tolist():
            yield int(ys[i]), int(xs[i])


def efros_leung(
    sample: Tensor,
    height: int,
    width: int,
    *,
    window: int = 11,
    epsilon: float = 0.1,
    seed_size: int = 3,
    order: str = "onion",
    generator: Optional[torch.Generator] = None,
    progress: Optional[ProgressFn] = None,
) -> Tensor:
    """Efros–Leung texture synthesis of a ``(C, height, width)`` texture from ``sample (C, h, w)``.

    Args:
        window: odd side of the neighbourhood window (the paper's main parameter: about the size of the largest
            regular feature of the texture).
        epsilon: candidates within ``(1 + epsilon) * best`` distance are chosen among uniformly.
        seed_size: side of the seed patch copied from a random place of the sample.
        order: ``"onion"`` (the paper: a seed in the centre, grown ring by ring, pixels with the most synthesised
            neighbours first) or ``"scanline"`` (seed in the top-left corner, raster order: the neighbourhood is the
            L-shaped causal window).
        generator: random source (seeded for repeatable results).
    """
    if window < 3 or window % 2 == 0:
        raise UsageError(f"--window must be an odd number >= 3, got {window}")
    if epsilon < 0:
        raise UsageError(f"--epsilon must be >= 0, got {epsilon}")
    if order not in ("onion", "scanline"):
        raise UsageError(f"order must be onion or scanline, got {order!r}")
    _check_sample(sample, window, "window")
    c, sh, sw = sample.shape
    half = window // 2
    dtype = torch.float64 if sample.dtype == torch.float64 else torch.float32
    src = sample.to(dtype)
    # every window of the sample, flattened (N, C*window*window), its square, and the centre pixel of each
    patches = F.unfold(src[None], window)[0].T.contiguous()
    both = torch.cat([patches, patches * patches], dim=1)
    centres = src[:, half:sh - half, half:sw - half].reshape(c, -1).T
    g = gaussian_window(window, dtype)

    out = torch.zeros(c, height + 2 * half, width + 2 * half, dtype=dtype)
    known = torch.zeros(height + 2 * half, width + 2 * half, dtype=dtype)  # 1 where synthesised (or seeded)
    s = min(seed_size, sh, sw, height, width)
    y0 = int(torch.randint(0, sh - s + 1, (1,), generator=generator))
    x0 = int(torch.randint(0, sw - s + 1, (1,), generator=generator))
    ty, tx = ((height - s) // 2, (width - s) // 2) if order == "onion" else (0, 0)
    out[:, half + ty:half + ty + s, half + tx:half + tx + s] = src[:, y0:y0 + s, x0:x0 + s]
    known[half + ty:half + ty + s, half + tx:half + tx + s] = 1
    total = height * width - s * s
    for done, (y, x) in enumerate(_pixel_order(known[half:half + height, half:half + width], window, order), start=1):
        m = (known[y:y + window, x:x + window] * g).expand(c, window, window).reshape(-1)
        n = out[:, y:y + window, x:x + window].reshape(-1)
        d = (both @ torch.cat([-2 * m * n, m]) + (m * n * n).sum()).clamp_min(0)
        cand = torch.nonzero(d <= d.min() * (1 + epsilon) + 1e-12).flatten()
        pick = cand[int(torch.randint(0, cand.numel(), (1,), generator=generator))]
        out[:, y + half, x + half] = centres[pick]
        known[y + half, x + half] = 1
        if done % 256 == 0 or done == total:
            emit(progress, ProgressEvent(task="efros-leung", step=done, total=total, unit="px"))
    return out[:, half:half + height, half:half + width].to(sample.dtype)


def min_cut_mask(err: Tensor) -> Tensor:
    """Minimum-error boundary cut through an overlap error map ``err (h, w)``, cut running top to bottom.

    Returns a mask ``(h, w)``: 1 right of the cut (take the new block), 0 left of it (keep the old pixels). Dynamic
    programming: ``E[i, j] = err[i, j] + min(E[i-1, j-1..j+1])``, then the path is traced back from the bottom row.
    """
    h, w = err.shape
    cost = err.clone()
    inf = torch.tensor(float("inf"), dtype=err.dtype)
    for i in range(1, h):
        prev = cost[i - 1]
        left = torch.cat([inf[None], prev[:-1]])
        right = torch.cat([prev[1:], inf[None]])
        cost[i] += torch.minimum(prev, torch.minimum(left, right))
    mask = torch.zeros(h, w, dtype=err.dtype)
    j = int(torch.argmin(cost[-1]))
    for i in range(h - 1, -1, -1):
        mask[i, j:] = 1
        if i > 0:
            lo, hi = max(j - 1, 0), min(j + 2, w)
            j = lo + int(torch.argmin(cost[i - 1, lo:hi]))
    return mask


@dataclass(frozen=True)
class QuiltStats:
    """Mean squared overlap error (before the cut) of the blocks placed, and how many overlaps were scored."""

    overlap_mse: float
    overlaps: int


def quilting(
    sample: Tensor,
    height: int,
    width: int,
    *,
    block: int = 32,
    overlap: Optional[int] = None,
    tolerance: float = 0.1,
    cut: bool = True,
    random_placement: bool = False,
    generator: Optional[torch.Generator] = None,
    progress: Optional[ProgressFn] = None,
) -> tuple[Tensor, QuiltStats]:
    """Image quilting: a ``(C, height, width)`` texture from ``sample (C, h, w)`` and the overlap error statistics.

    Args:
        block: side of the square blocks copied from the sample.
        overlap: overlap of neighbouring blocks (default block // 6, at least 1, as in the paper).
        tolerance: blocks within ``(1 + tolerance)`` of the least overlap error are chosen among at random.
        cut: paste along the minimum-error boundary cut (False: plain overlapping paste).
        random_placement: ignore the overlap error (the paper's first baseline).
    """
    if block < 2:
        raise UsageError(f"--block must be at least 2 px, got {block}")
    _check_sample(sample, block, "block")
    ov = max(1, block // 6) if overlap is None else overlap
    if not 0 < ov < block:
        raise UsageError(f"--overlap must be between 1 and block - 1 ({block - 1}), got {ov}")
    c, sh, sw = sample.shape
    src = sample.to(torch.float64)
    blocks = F.unfold(src[None], block)[0].T.reshape(-1, c, block, block)
    step = block - ov
    ny = max(1, math.ceil((height - ov) / step))
    nx = max(1, math.ceil((width - ov) / step))
    canvas = torch.zeros(c, ny * step + ov, nx * step + ov, dtype=torch.float64)
    err_sum, err_n = 0.0, 0
    for by in range(ny):
        for bx in range(nx):
            y, x = by * step, bx * step
            region = canvas[:, y:y + block, x:x + block]
            mask = torch.zeros(block, block, dtype=torch.float64)
            if bx > 0:
                mask[:, :ov] = 1
            if by > 0:
                mask[:ov, :] = 1
            if mask.sum() == 0 or random_placement:
                pick = int(torch.randint(0, blocks.shape[0], (1,), generator=generator))
            else:
                errs = (((blocks - region) ** 2).sum(1) * mask).flatten(1).sum(1)
                best = errs.min()
                cand = torch.nonzero(errs <= best * (1 + tolerance) + 1e-12).flatten()
                pick = int(cand[int(torch.randint(0, cand.numel(), (1,), generator=generator))])
            new = blocks[pick]
            if mask.sum() > 0:
                diff = ((new - region) ** 2).sum(0)
                err_sum += float((diff * mask).sum() / mask.sum() / c)
                err_n += 1
            keep_new = torch.ones(block, block, dtype=torch.float64)
            if cut and mask.sum() > 0:
                diff = ((new - region) ** 2).sum(0)
                if bx > 0:
                    keep_new[:, :ov] = min_cut_mask(diff[:, :ov])
                if by > 0:
                    keep_new[:ov, :] = torch.minimum(keep_new[:ov, :], min_cut_mask(diff[:ov, :].T).T)
            canvas[:, y:y + block, x:x + block] = keep_new * new + (1 - keep_new) * region
        emit(progress, ProgressEvent(task="quilting", step=(by + 1) * nx, total=ny * nx, unit="block"))
    out = canvas[:, :height, :width].to(sample.dtype)
    return out, QuiltStats(err_sum / max(err_n, 1), err_n)
