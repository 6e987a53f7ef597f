"""The one tiler: run an image function over overlapping tiles and blend the results, so that memory is bounded by
the tile size.

One tile geometry (:class:`Tile`: the input window, the region it contributes, the cell it owns, the ramp lengths at
its edges) and one blending loop (:func:`tiled_map`: each contribution weighted by complementary linear ramps
(:func:`ramp`) over its overlap with each neighbour). Two planners:

- :func:`plan_tiles` (fast style, AdaIN): cells of at most ``tile`` pixels with cut points aligned to the network's
  stride, a ``halo`` of extra input context, and ramps that form an exact partition of unity;
- :func:`tile_starts` (translation ``--tile``, :func:`tiled_apply`): fixed-size tiles, the last one flush with the
  image edge, blended by the same ramps over their actual overlaps and normalised by the summed weights.

A function that gives the same pixels whatever the tile reproduces its untiled output, and a per-tile offset leaves no
hard seam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor


def ramp(n: int, rise: int, fall: int, device: Optional[torch.device] = None) -> Tensor:
    """1-D weights of length ``n``: rising over the first ``rise`` pixels, falling over the last ``fall``.

    Over a shared overlap of L pixels two neighbours get ``(i + 0.5) / L`` and ``1 - (i + 0.5) / L``: they sum to 1.
    """
    w = torch.ones(n, device=device)
    if rise > 0:
        w[:rise] = (torch.arange(rise, device=device, dtype=torch.float32) + 0.5) / rise
    if fall > 0:
        w[n - fall:] = torch.minimum(w[n - fall:],
                                     1.0 - (torch.arange(fall, device=device, dtype=torch.float32) + 0.5) / fall)
    return w


def tile_starts(size: int, tile: int, overlap: int) -> List[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap`` shared pixels."""
    if size <= tile:
        return [0]
    step = max(tile - overlap, 1)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _overlaps(starts: List[int], length: int) -> List[Tuple[int, int]]:
    """``(rise, fall)`` of fixed-size tiles at ``starts``: their overlap with the previous and the next tile."""
    return [(max(0, starts[i - 1] + length - s) if i > 0 else 0,
             max(0, s + length - starts[i + 1]) if i + 1 < len(starts) else 0) for i, s in enumerate(starts)]


def ramp_weights(starts: List[int], length: int, device: torch.device) -> List[torch.Tensor]:
    """Per-tile 1-D blending weights of fixed-size tiles at ``starts``: :func:`ramp` over the overlap with each
    neighbour (complementary, so two overlapping tiles' weights sum to 1), 1 elsewhere."""
    return [ramp(length, rise, fall, device) for rise, fall in _overlaps(starts, length)]


@dataclass(frozen=True)
class Tile:
    """One tile: ``out`` is the region it contributes (blended over ``overlap``), ``win`` the network input window
    (``out`` plus the halo, clipped to the image), ``core`` the non-overlapping cell it owns (for statistics).
    All as ``(start, end)`` pairs per axis: ``(y0, y1), (x0, x1)``."""

    win: Tuple[Tuple[int, int], Tuple[int, int]]
    out: Tuple[Tuple[int, int], Tuple[int, int]]
    core: Tuple[Tuple[int, int], Tuple[int, int]]
    ramps: Tuple[Tuple[int, int], Tuple[int, int]]  # ramp length at (start, end) of ``out`` per axis (0 at the image edge)


def plan_axis(size: int, tile: int, align: int, overlap: int, halo: int) -> List[Tuple[Tuple[int, int], Tuple[int, int], Tuple[int, int], Tuple[int, int]]]:
    """Split one axis of ``size`` pixels into cells of at most ``tile`` pixels (cut points multiples of ``align``).

    Returns per cell ``(win, out, core, ramps)`` (see :class:`Tile`). ``overlap`` and ``halo`` are rounded up to
    multiples of ``2 * align`` and ``align``.
    """
    half = int(math.ceil(overlap / (2 * align))) * align
    halo = int(math.ceil(halo / align)) * align
    if size <= tile:
        return [((0, size), (0, size), (0, size), (0, 0))]
    n = int(math.ceil(size / tile))
    cuts = [0]
    for k in range(1, n):
        c = int(round(k * size / n / align)) * align
        cuts.append(min(max(c, cuts[-1] + align), size))
    cuts.append(size)
    cells = []
    for k in range(n):
        c0, c1 = cuts[k], cuts[k + 1]
        if c1 <= c0:
            continue
        o0 = c0 - half if k > 0 else 0
        o1 = c1 + half if k < n - 1 else size
        o0, o1 = max(0, o0), min(size, o1)
        w0, w1 = max(0, o0 - halo), min(size, o1 + halo)
        r0 = c0 - o0 + half if k > 0 else 0  # ramp spans [c0 - half, c0 + half)
        r1 = o1 - c1 + half if k < n - 1 else 0
        cells.append(((w0, w1), (o0, o1), (c0, c1), (min(r0, o1 - o0), min(r1, o1 - o0))))
    return cells


def plan_tiles(h: int, w: int, tile: int, align: int, overlap: int, halo: int) -> List[Tile]:
    """The tiles of an ``h x w`` image, row by row (see :func:`plan_axis`)."""
    ys = plan_axis(h, tile, align, overlap, halo)
    xs = plan_axis(w, tile, align, overlap, halo)
    return [Tile((yw, xw), (yo, xo), (yc, xc), (yr, xr)) for yw, yo, yc, yr in ys for xw, xo, xc, xr in xs]


def tiled_map(
    fn: Callable[[Tensor, Tile], Tensor],
    image: Tensor,
    tiles: Sequence[Tile],
    *,
    out_channels: Optional[int] = None,
    out: Optional[Tensor] = None,
    normalize: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Tensor:
    """Run ``fn(window, tile) -> (B, C, win_h, win_w)`` on every tile's window and blend the ``out`` regions.

    Args:
        fn: maps the window crop of ``image`` (B, C_in, wh, ww) to an output of the same spatial size (at least).
        image: (B, C_in, H, W).
        tiles: from :func:`plan_tiles` or :func:`fixed_tiles`.
        out_channels: channels of the output (None: those of the first tile's result).
        out: optional preallocated (B, out_channels, H, W) float32 buffer (zeroed here).
        normalize: divide by the summed weights (for plans whose ramps are not an exact partition of unity, e.g.
            fixed-size tiles where the last one overlaps more than one neighbour).
    Returns:
        (B, out_channels, H, W) float32 on the image's device.
    """
    b, _, h, w = image.shape
    dev = image.device
    if out is not None:
        out.zero_()
    norm = torch.zeros(1, 1, h, w, dtype=torch.float32, device=dev) if normalize else None
    for i, t in enumerate(tiles):
        (wy0, wy1), (wx0, wx1) = t.win
        (oy0, oy1), (ox0, ox1) = t.out
        res = fn(image[:, :, wy0:wy1, wx0:wx1], t)
        if out is None:
            out = torch.zeros((b, out_channels or res.shape[1], h, w), dtype=torch.float32, device=dev)
        part = res[:, :, oy0 - wy0:oy1 - wy0, ox0 - wx0:ox1 - wx0].float().to(dev)
        (ry0, ry1), (rx0, rx1) = t.ramps
        if ry0 or ry1 or rx0 or rx1 or norm is not None:
            wt = ramp(oy1 - oy0, ry0, ry1, dev)[:, None] * ramp(ox1 - ox0, rx0, rx1, dev)[None, :]
            part = part * wt
            if norm is not None:
                norm[:, :, oy0:oy1, ox0:ox1] += wt
        out[:, :, oy0:oy1, ox0:ox1] += part
        if progress is not None:
            progress(i + 1, len(tiles))
    assert out is not None, "no tiles"
    return out / norm if norm is not None else out


def fixed_tiles(h: int, w: int, tile: int, overlap: int) -> List[Tile]:
    """Fixed-size ``tile`` x ``tile`` tiles (fewer pixels when the image is smaller) at :func:`tile_starts`, row by
    row; each tile's input window is the region it contributes, ramped over its overlap with each neighbour."""
    th, tw = min(tile, h), min(tile, w)

    def axis(size: int, length: int) -> List[Tuple[Tuple[int, int], Tuple[int, int]]]:
        starts = tile_starts(size, length, overlap)
        return [((s, s + length), ramps) for s, ramps in zip(starts, _overlaps(starts, length))]

    return [Tile((yr, xr), (yr, xr), (yr, xr), (yramp, xramp)) for yr, yramp in axis(h, th) for xr, xramp in axis(w, tw)]


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int, overlap: int,
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """``fn`` over overlapping ``tile`` x ``tile`` windows of ``x (B, C, H, W)`` (fewer when smaller), blended with
    ramps over the overlaps and normalised (:func:`fixed_tiles` + :func:`tiled_map`): ``(B, C', H, W)`` float32 on
    ``x``'s device. ``progress(done, total)`` after each tile."""
    _, _, h, w = x.shape
    return tiled_map(lambda win, _t: fn(win), x, fixed_tiles(h, w, tile, overlap), normalize=True, progress=progress)
