"""The one tiler: run an image function over overlapping tiles and blend the results, so that memory is bounded by
the tile size (translation ``--tile``; any ``fn`` mapping ``(B, C, h, w)`` to ``(B, C', h, w)``).

Tiles of side ``tile`` start at :func:`tile_starts` (the last one flush with the edge); each tile's output is
weighted by complementary linear ramps over its actual overlap with each neighbour (:func:`ramp_weights`, a
partition of unity), so a function that gives the same pixels whatever the tile reproduces its untiled output and a
per-tile offset leaves no hard seam.
"""

from __future__ import annotations

from typing import Callable, List, Optional

import torch


def tile_starts(size: int, tile: int, overlap: int) -> List[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap`` shared pixels."""
    if size <= tile:
        return [0]
    step = max(tile - overlap, 1)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def ramp_weights(starts: List[int], length: int, device: torch.device) -> List[torch.Tensor]:
    """Per-tile 1-D blending weights: linear ramps over the overlap with each neighbour (complementary, so two
    overlapping tiles' weights sum to 1), 1 elsewhere."""
    out = []
    for i, s in enumerate(starts):
        w = torch.ones(length, device=device)
        if i > 0:
            ov = starts[i - 1] + length - s
            if ov > 0:
                w[:ov] = (torch.arange(ov, device=device, dtype=torch.float32) + 0.5) / ov
        if i + 1 < len(starts):
            ov = s + length - starts[i + 1]
            if ov > 0:
                w[length - ov :] = torch.minimum(
                    w[length - ov :], 1.0 - (torch.arange(ov, device=device, dtype=torch.float32) + 0.5) / ov
                )
        out.append(w)
    return out


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int, overlap: int,
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """``fn`` over overlapping ``tile`` x ``tile`` windows of ``x (B, C, H, W)`` (fewer when smaller), blended with
    :func:`ramp_weights`: ``(B, C', H, W)`` float32 on ``x``'s device. ``progress(done, total)`` after each tile."""
    _, _, h, w = x.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    wy, wx = ramp_weights(ys, th, x.device), ramp_weights(xs, tw, x.device)
    acc: Optional[torch.Tensor] = None
    norm = torch.zeros(1, 1, h, w, device=x.device, dtype=torch.float32)
    total, done = len(ys) * len(xs), 0
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            out = fn(x[:, :, y0 : y0 + th, x0 : x0 + tw]).float()
            if acc is None:
                acc = torch.zeros(x.shape[0], out.shape[1], h, w, device=x.device, dtype=torch.float32)
            wt = (wy[iy][:, None] * wx[ix][None, :])[None, None]
            acc[:, :, y0 : y0 + th, x0 : x0 + tw] += out * wt
            norm[:, :, y0 : y0 + th, x0 : x0 + tw] += wt
            done += 1
            if progress is not None:
                progress(done, total)
    assert acc is not None
    return acc / norm
