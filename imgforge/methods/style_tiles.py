"""Fast style and AdaIN on arbitrarily large images: overlapping tiles with a halo, whole-image statistics.

Both networks are convolutional except for their statistics (TransformerNet's InstanceNorm layers, AdaIN's channel
mean/std of the content features), so a tile computed on its own differs from the same region of the whole image in
two ways: near its border (the receptive field reaches outside the tile; reflection padding replaces real context),
and everywhere (its own statistics replace the image's). The tiler removes both:

- **halo**: each tile's network input extends ``halo`` pixels beyond the region it contributes, and neighbouring
  contributions overlap by ``overlap`` pixels where they are blended with complementary linear ramps (the weights of
  any pixel sum to exactly 1, so no normalisation buffer is needed);
- **whole-image statistics**: measured once and then used in every tile.

  * AdaIN: the channel mean/std of the content's relu4_1 features are accumulated over the tiles' non-overlapping
    cores (``stats="exact"``: one extra encoder pass over the tiles; equal to the untiled statistics up to the halo
    effect), or taken from a downscaled copy of the image (``stats="thumbnail"``: cheap, approximate).
  * Fast style: a thumbnail pass (the image downscaled to ``thumb`` px on the long side; the full image when it is not
    larger) gives every InstanceNorm layer's statistics (as in URST's "thumbnail instance normalisation", Chen et
    al. 2022). With a thumbnail at full size the statistics are exact; a smaller thumbnail gives a seamless image
    whose look differs somewhat from an untiled run (measured in ``benchmarks/style_large.py``: at 1024² with a
    256 px thumbnail, 12 grey levels mean difference, equally spread, none concentrated at the tile boundaries).
    Exact statistics would need one pass per InstanceNorm layer (each layer's statistics depend on the previous
    ones'); re-measuring all layers in one tiled pass with the thumbnail's statistics was tried and made the result
    worse (30 grey levels after one such pass, 52 after two), so it is not offered.

Tile geometry: cut points aligned to the network's stride (4 for TransformerNet, 8 for the AdaIN encoder/decoder)
so that every tile sees the same pixel grid as the whole image. Memory is bounded by the tile size plus the input
and the output image (float32).

The output image is assembled on the CPU (float32) unless the input lives on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UsageError
from ..ops.stats import calc_mean_std
from ..ops.tiling import Tile, plan_tiles, tiled_map
from .style_fastpath import FastStyleForward, INStats, StatsRecorder

__all__ = [
    "fast_tiled", "fast_thumbnail_stats", "seam_difference",
    "FeatStats", "adain_from_stats", "feature_stats",
]


def _core_local(t: Tile) -> Tuple[int, int, int, int]:
    (wy0, _), (wx0, _) = t.win
    (cy0, cy1), (cx0, cx1) = t.core
    return cy0 - wy0, cy1 - wy0, cx0 - wx0, cx1 - wx0


# ---------------------------------------------------------------------------------------------------- fast style


def _resize_long(img: Tensor, long_side: int) -> Tensor:
    h, w = img.shape[-2:]
    if max(h, w) <= long_side:
        return img
    s = long_side / max(h, w)
    size = (max(4, round(h * s)), max(4, round(w * s)))
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=True)


def fast_thumbnail_stats(fwd: FastStyleForward, x255: Tensor, thumb: int) -> INStats:
    """InstanceNorm statistics of every layer from one pass over ``x255`` downscaled to ``thumb`` px (long side)."""
    small = _resize_long(x255, thumb)
    rec = StatsRecorder(core=(0, small.shape[2], 0, small.shape[3]))
    fwd(small, recorder=rec)
    return rec.stats()


def fast_tiled(
    fwd: FastStyleForward,
    x255: Tensor,
    *,
    tile: int = 1024,
    overlap: int = 32,
    halo: int = 64,
    thumb: int = 1024,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> Tensor:
    """Fast style on a large image in tiles with shared InstanceNorm statistics.

    Args:
        fwd: the network's forward (:class:`FastStyleForward`); call under ``torch.inference_mode()``.
        x255: (1, 3, H, W) in the units ``fwd`` takes (0..255, or [0, 1] for ``unit=True``).
        tile: cell size in pixels (the network sees up to ``tile + overlap + 2 * halo``).
        overlap: width of the blended band between neighbouring tiles.
        halo: extra context on each side of a tile (the receptive field of TransformerNet is about 60 px).
        thumb: long side of the statistics pass (the whole image when it is not larger: exact statistics).
    Returns:
        (1, 3, H, W) float32 in the network's output units, unclamped.
    """
    _, _, h, w = x255.shape
    tiles = plan_tiles(h, w, tile, 4, overlap, halo)
    stats = fast_thumbnail_stats(fwd, x255, thumb)

    def run(win: Tensor, t: Tile) -> Tensor:
        return fwd(win, stats=stats)

    return tiled_map(run, x255, tiles, progress=(lambda d, n: progress("tiles", d, n)) if progress else None)


# ---------------------------------------------------------------------------------------------------- AdaIN


@dataclass(frozen=True)
class FeatStats:
    """Channel mean and std (``calc_mean_std`` convention: unbiased variance + eps, sqrt), each (1, C, 1, 1)."""

    mean: Tensor
    std: Tensor


def feature_stats(feat: Tensor, eps: float = 1e-5) -> FeatStats:
    """:class:`FeatStats` of a whole feature map (1, C, h, w) (exactly ``calc_mean_std``)."""
    m, s = calc_mean_std(feat, eps)
    return FeatStats(m, s)


class FeatAccumulator:
    """Running per-channel sums (float64) over feature crops, giving :class:`FeatStats` of their union."""

    def __init__(self) -> None:
        self.s: Optional[Tensor] = None
        self.q: Optional[Tensor] = None
        self.n = 0

    def add(self, feat: Tensor) -> None:
        f = feat.double()
        s, q = f.sum(dim=(0, 2, 3)), f.pow(2).sum(dim=(0, 2, 3))
        self.s = s if self.s is None else self.s + s
        self.q = q if self.q is None else self.q + q
        self.n += f.shape[0] * f.shape[2] * f.shape[3]

    def stats(self, eps: float = 1e-5) -> FeatStats:
        assert self.s is not None and self.q is not None and self.n > 1
        mean = self.s / self.n
        var = (self.q - self.n * mean.pow(2)).clamp_min(0) / (self.n - 1)
        return FeatStats(mean.float().reshape(1, -1, 1, 1), (var + eps).sqrt().float().reshape(1, -1, 1, 1))


def adain_from_stats(
    content_feat: Tensor,
    content: FeatStats,
    styles: Sequence[FeatStats],
    *,
    alpha: float = 1.0,
    style_weights: Optional[Sequence[float]] = None,
    masks: Optional[Sequence[Tensor]] = None,
) -> Tensor:
    """:func:`imgforge.methods.adain.blend_features` with the content statistics given instead of measured.

    ``content_feat``: (1, C, h, w) (a tile of the features or all of them); ``masks``: already at (h, w) and
    normalised (see :func:`imgforge.methods.adain.resize_masks`). With ``content = feature_stats(content_feat)`` the
    result equals ``blend_features`` (same operations in the same order).
    """
    from .adain import normalise_weights

    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha}")
    n = len(styles)
    if n == 0:
        raise UsageError("at least one style image is needed")
    cm, cs = content.mean.to(content_feat), content.std.to(content_feat)
    normalized = (content_feat - cm.expand_as(content_feat)) / cs.expand_as(content_feat)

    def one(s: FeatStats) -> Tensor:
        return normalized * s.std.to(content_feat).expand_as(content_feat) + s.mean.to(content_feat).expand_as(content_feat)

    if masks is not None:
        if style_weights is not None:
            raise UsageError("style weights and masks cannot be combined; scale the masks instead")
        if len(masks) != n:
            raise UsageError(f"{len(masks)} masks given for {n} style images; give one mask per style")
        covered = torch.zeros_like(masks[0])
        feat = torch.zeros_like(content_feat)
        for m, s in zip(masks, styles):
            feat = feat + m * one(s)
            covered = covered + m
        feat = feat + (1.0 - covered) * content_feat
    elif n == 1 and style_weights is None:
        feat = one(styles[0])
    else:
        ws = normalise_weights(style_weights, n)
        feat = torch.zeros_like(content_feat)
        for wgt, s in zip(ws, styles):
            feat = feat + wgt * one(s)
    return feat * alpha + content_feat * (1 - alpha)


# ---------------------------------------------------------------------------------------------------- seams


def seam_difference(tiled: Tensor, reference: Tensor, tiles: Sequence[Tile], band: int = 2) -> Tuple[float, float]:
    """How visible the tile boundaries are: ``(largest mean |tiled - reference| over a band of +-band px around one
    tile boundary (cut line), mean |tiled - reference| over the whole image)``, in the images' units."""
    diff = (tiled.float() - reference.float()).abs().mean(dim=1)[0]  # (H, W)
    h, w = diff.shape
    worst = 0.0
    ys = sorted({t.core[0][0] for t in tiles if t.core[0][0] > 0})
    xs = sorted({t.core[1][0] for t in tiles if t.core[1][0] > 0})
    for y in ys:
        worst = max(worst, float(diff[max(0, y - band):min(h, y + band)].mean()))
    for x in xs:
        worst = max(worst, float(diff[:, max(0, x - band):min(w, x + band)].mean()))
    return worst, float(diff.mean())


def iter_rows(tiles: Sequence[Tile]) -> Iterator[List[Tile]]:
    """Tiles grouped by row (same ``out`` y-range), in order."""
    row: List[Tile] = []
    for t in tiles:
        if row and t.out[0] != row[0].out[0]:
            yield row
            row = []
        row.append(t)
    if row:
        yield row


def adain_tiled(
    encode: Callable[[Tensor], Tensor],
    decode: Callable[[Tensor], Tensor],
    content: Tensor,
    styles: Sequence[FeatStats],
    *,
    alpha: float = 1.0,
    style_weights: Optional[Sequence[float]] = None,
    masks: Optional[Sequence[Tensor]] = None,
    tile: int = 1024,
    overlap: int = 32,
    halo: int = 64,
    stats: str = "exact",
    thumb: int = 1024,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> Tensor:
    """AdaIN on a large image in tiles, with the content statistics of the whole image.

    Args:
        encode: (1, 3, h, w) in [0, 1] -> relu4_1 features (1, C, ceil(h/8), ceil(w/8)).
        decode: features (1, C, a, b) -> (1, 3, 8a, 8b).
        content: (1, 3, H, W) in [0, 1].
        styles: the style images' feature statistics.
        alpha, style_weights: as :func:`imgforge.methods.adain.blend_features`.
        masks: one (1, 1, H, W) mask in [0, 1] per style (content resolution), or None.
        tile, overlap, halo: tile geometry in pixels (multiples of 8 are used).
        stats: ``"exact"`` (accumulated over the tiles' cores: one more encoder pass) or ``"thumbnail"``
            (from the image downscaled to ``thumb`` px on the long side; exact when the image is not larger).
    Returns:
        (1, 3, H, W) float32, unclamped.
    """
    from .adain import resize_masks

    if stats not in ("exact", "thumbnail"):
        raise UsageError(f"stats must be 'exact' or 'thumbnail', got {stats!r}")
    _, _, h, w = content.shape
    tiles = plan_tiles(h, w, tile, 8, overlap, halo)
    if len(tiles) == 1:  # the whole image at once: exactly blend_features + decoder
        feat = encode(content)
        fs = feat.float()
        ms = None if masks is None else resize_masks([m.to(fs) for m in masks], (fs.shape[2], fs.shape[3]))
        blended = adain_from_stats(fs, feature_stats(fs), styles, alpha=alpha, style_weights=style_weights, masks=ms)
        return decode(blended.to(feat.dtype))[:, :, :h, :w].float()
    if stats == "thumbnail":
        cstats = feature_stats(encode(_resize_long(content, thumb)).float())
    else:
        acc = FeatAccumulator()
        for i, t in enumerate(tiles):
            (wy0, wy1), (wx0, wx1) = t.win
            feat = encode(content[:, :, wy0:wy1, wx0:wx1])
            y0, y1, x0, x1 = _core_local(t)
            acc.add(feat[:, :, y0 // 8:-(-y1 // 8), x0 // 8:-(-x1 // 8)])
            if progress:
                progress("statistics", i + 1, len(tiles))
        cstats = acc.stats()

    def run(win: Tensor, t: Tile) -> Tensor:
        feat = encode(win)
        fs = feat.float()
        ms = None
        if masks is not None:
            (wy0, wy1), (wx0, wx1) = t.win
            ms = resize_masks([m[:, :, wy0:wy1, wx0:wx1].to(fs) for m in masks], (fs.shape[2], fs.shape[3]))
        blended = adain_from_stats(fs, cstats, styles, alpha=alpha, style_weights=style_weights, masks=ms)
        return decode(blended.to(feat.dtype))

    return tiled_map(run, content, tiles, progress=(lambda d, n: progress("tiles", d, n)) if progress else None)
