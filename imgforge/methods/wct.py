"""Universal style transfer (Li et al. 2017): multi-level, coarse-to-fine whitening and colouring transforms.

For each level from the deepest (relu5_1) to the shallowest (relu1_1): encode the current image, replace its
features by the WCT of them towards the style's features at that level (:func:`imgforge.ops.wct.wct`), blend with the
content features by ``alpha``, and decode with that level's decoder; the output image is the next level's input.
Several styles: the transformed features of each style are combined with interpolation weights (like AdaIN's
``--style-weights``) or with spatial masks (one per style; where the masks sum to less than 1 the rest goes to the
content features). ``preserve_color``: each style image is first given the content's colour statistics
(:func:`imgforge.ops.stats.coral`), as the AdaIN method does.

Pure tensors: ``content (1, 3, H, W)`` and style images ``(1, 3, h, w)`` in [0, 1]; an encoder returning named
activations (``encoder(x, layers) -> {name: (1, C, h, w)}``, as :mod:`imgforge.models.vgg`); decoders indexable by
level (:class:`imgforge.models.wct.WCTDecoders`).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError, UsageError
from ..ops.stats import coral
from ..ops.tiling import Tile, plan_tiles, tiled_map
from ..ops.wct import EIG_FLOOR, FeatureStats, MomentAccumulator, feature_stats, wct
from ..progress import ProgressEvent, ProgressFn, emit
from .adain import normalise_weights, resize_masks

__all__ = ["wct_stylize", "style_stats", "usable_levels", "DEFAULT_LEVELS", "TILE_ALIGN", "MIN_SAMPLES_PER_CHANNEL"]

#: channels of relu{level}_1 in VGG-19
LEVEL_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
#: a level whose content feature map has fewer positions than this many per channel is skipped by default: its
#: covariance is estimated from too few samples, whitening amplifies the noise directions and the decoded image is
#: blotchy (at 128² the relu3_1 map has 32² = 1024 positions for 256 channels: 4 per channel; measured on chelsea x
#: Starry Night at 128²: content distance 1.23 with relu3_1, 0.53 at relu2_1 alone)
MIN_SAMPLES_PER_CHANNEL = 8

#: tile cut points are multiples of the deepest level's stride (relu5_1: 1/16), so every tile sees the whole image's
#: pixel grid at every level
TILE_ALIGN = 16

DEFAULT_LEVELS = (5, 4, 3, 2, 1)

Encoder = Callable[..., Dict[str, Tensor]]


def usable_levels(levels: Sequence[int], height: int, width: int,
                  per_channel: int = MIN_SAMPLES_PER_CHANNEL) -> tuple[int, ...]:
    """The ``levels`` whose relu{level}_1 map of a ``height x width`` image has at least ``per_channel`` positions
    per channel (see :data:`MIN_SAMPLES_PER_CHANNEL`); the shallowest given level is always kept."""
    def ok(lv: int) -> bool:
        s = 2 ** (lv - 1)
        return -(-height // s) * -(-width // s) >= per_channel * LEVEL_CHANNELS[lv]

    kept = tuple(lv for lv in levels if ok(int(lv)))
    return kept or (min(levels),)


def _combine(content_feat: Tensor, per_style: Sequence[Tensor], weights: Sequence[float],
             masks: Optional[Sequence[Tensor]], alpha: float) -> Tensor:
    if masks is not None:
        ms = resize_masks(masks, tuple(content_feat.shape[2:]))
        rest = 1 - torch.stack(ms).sum(0)
        mixed = sum(m * f for m, f in zip(ms, per_style)) + rest * content_feat
    else:
        mixed = sum(w * f for w, f in zip(weights, per_style))
    return alpha * mixed + (1 - alpha) * content_feat


@torch.no_grad()
def style_stats(styles: Sequence[Tensor], encoder: Encoder, levels: Sequence[int], floor: float = EIG_FLOOR
                ) -> List[Dict[int, FeatureStats]]:
    """Per style image, the feature statistics at each level (what the colouring needs); computed once and reused
    for every content image. A flat-colour style image is an :class:`InputError` (zero-padded encoders would hide
    it in the features)."""
    out = []
    for i, s in enumerate(styles):
        which = f"style image {i + 1}" if len(styles) > 1 else "the style image"
        if float(s.float().flatten(2).std(dim=-1).max()) < 1.0 / 255:
            raise InputError(f"{which} is a flat colour (a flat-colour image has a singular feature covariance: "
                             f"nothing to colour with); use an image with some texture")
        per_level = {}
        for level in levels:
            name = f"relu{int(level)}_1"
            per_level[int(level)] = feature_stats(encoder(s, [name])[name].float(), floor,
                                                  f"{which}'s features at {name}")
        out.append(per_level)
    return out


@torch.no_grad()
def wct_stylize(
    content: Tensor,
    styles: Sequence[Tensor],
    encoder: Encoder,
    decoders: Mapping[int, Callable[[Tensor], Tensor]] | object,
    *,
    alpha: float = 1.0,
    style_weights: Optional[Sequence[float]] = None,
    masks: Optional[Sequence[Tensor]] = None,
    preserve_color: bool = False,
    levels: Sequence[int] = DEFAULT_LEVELS,
    floor: float = EIG_FLOOR,
    stats: Optional[List[Dict[int, FeatureStats]]] = None,
    tile: int = 0,
    overlap: int = 32,
    halo: int = 64,
    progress: Optional[ProgressFn] = None,
) -> Tensor:
    """Stylize ``content`` with ``styles`` by multi-level WCT; returns ``(1, 3, H, W)`` (unclamped).

    Args:
        alpha: 0..1 at every level (1 = full transform); the method's definition
            ``alpha * WCT(f_c, f_s) + (1 - alpha) * f_c``.
        style_weights: one per style (normalised to sum 1); default equal.
        masks: one ``(1, 1, H, W)`` mask in [0, 1] per style (instead of weights).
        levels: the levels to run, in order (default 5, 4, 3, 2, 1: coarse to fine).
        stats: the styles' :func:`style_stats` at ``levels``, to reuse over many content images (not with
            ``preserve_color``, whose recoloured styles depend on the content).
        tile, overlap, halo: an image larger than ``tile`` pixels on a side runs in overlapping tiles
            (:func:`imgforge.ops.tiling.plan_tiles`, cuts aligned to :data:`TILE_ALIGN`) at every level; 0 = never.
            The content's whitening statistics at each level are those of the whole current image, accumulated
            over the tiles' non-overlapping cores in one extra encoder pass per level (exact up to the halo
            effect), so every tile is whitened alike; the style statistics are computed once. Memory is bounded
            by the tile plus a few float32 copies of the image.
    """
    if not styles:
        raise UsageError("give at least one --style image")
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    if masks is not None and len(masks) != len(styles):
        raise UsageError(f"{len(masks)} masks given for {len(styles)} styles; give one --mask per --style")
    weights = normalise_weights(style_weights, len(styles))
    if stats is None or preserve_color:
        stats = style_stats([coral(s, content) for s in styles] if preserve_color else styles, encoder, levels, floor)
    h, w = content.shape[2:]
    tiles = plan_tiles(h, w, tile, TILE_ALIGN, overlap, halo) if tile and max(h, w) > tile else None
    x = content
    for n, level in enumerate(levels, start=1):
        name = f"relu{int(level)}_1"
        if tiles is None:
            fc = encoder(x, [name])[name].float()
            per_style = [wct(fc, st[int(level)], 1.0, floor) for st in stats]
            feat = _combine(fc, per_style, weights, masks, alpha)
            x = decoders[int(level)](feat)  # type: ignore[index]
            if x.shape[2:] != content.shape[2:]:  # odd sizes: pools with ceil_mode give a slightly larger image
                x = F.interpolate(x, size=content.shape[2:], mode="bilinear", align_corners=False)
        else:
            x = _level_tiled(x, tiles, encoder, decoders[int(level)], int(level), stats, weights,  # type: ignore
                             masks, alpha, floor, progress)
        emit(progress, ProgressEvent(task="wct", step=n, total=len(levels), unit="level"))
    return x


def _level_tiled(x: Tensor, tiles: Sequence[Tile], encoder: Encoder, decoder: Callable[[Tensor], Tensor],
                 level: int, stats: List[Dict[int, FeatureStats]], weights: Sequence[float],
                 masks: Optional[Sequence[Tensor]], alpha: float, floor: float,
                 progress: Optional[ProgressFn]) -> Tensor:
    """One WCT level of a large image: whole-image content statistics from the tiles' cores, then the transform and
    the decoder tile by tile, blended by :func:`imgforge.ops.tiling.tiled_map`."""
    name, stride = f"relu{level}_1", 2 ** (level - 1)
    acc = MomentAccumulator()
    for i, t in enumerate(tiles):
        (wy0, wy1), (wx0, wx1) = t.win
        (cy0, cy1), (cx0, cx1) = t.core
        f = encoder(x[:, :, wy0:wy1, wx0:wx1], [name])[name].float()
        acc.add(f[:, :, (cy0 - wy0) // stride:-(-(cy1 - wy0) // stride),
                  (cx0 - wx0) // stride:-(-(cx1 - wx0) // stride)])
        emit(progress, ProgressEvent(task=f"wct {name} statistics", step=i + 1, total=len(tiles), unit="tile"))
    c_stats = acc.stats(floor, None)

    def run(win: Tensor, t: Tile) -> Tensor:
        fc = encoder(win, [name])[name].float()
        per_style = [wct(fc, st[level], 1.0, floor, content_stats=c_stats) for st in stats]
        ms = None
        if masks is not None:
            (wy0, wy1), (wx0, wx1) = t.win
            ms = [m[:, :, wy0:wy1, wx0:wx1] for m in masks]
        out = decoder(_combine(fc, per_style, weights, ms, alpha))
        if out.shape[2:] != win.shape[2:]:  # a window at an odd image edge: as the whole-image path does
            out = F.interpolate(out, size=win.shape[2:], mode="bilinear", align_corners=False)
        return out

    return tiled_map(run, x, tiles, progress=lambda d, n: emit(
        progress, ProgressEvent(task=f"wct {name} tiles", step=d, total=n, unit="tile")))
