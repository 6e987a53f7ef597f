"""Whitening and colouring transforms (Li et al. 2017, "Universal Style Transfer via Feature Transforms").

The content features are whitened (their channel covariance becomes the identity) and then coloured with the style
features' covariance and mean, so that the result has the style's second-order statistics exactly. Everything is
done in float64 with an eigendecomposition of the symmetric covariance matrices; eigenvalues below a floor (relative
to the largest, so that it does not depend on the encoder's feature scale; the reference drops singular values under
an absolute 1e-5) are dropped, so rank-deficient covariances stay finite. A covariance with no eigenvalue above
``ABS_FLOOR`` (flat features: a flat-colour image) is an input error.

Shapes: feature maps ``(1, C, H, W)`` or ``(C, H, W)``; flattened features ``(C, N)``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from ..errors import InputError

__all__ = ["EIG_FLOOR", "ABS_FLOOR", "FeatureStats", "feature_stats", "stats_from_covariance", "MomentAccumulator",
           "covariance", "whiten", "colour", "wct"]

#: eigenvalues of a feature covariance below this fraction of the largest are treated as zero
EIG_FLOOR = 1e-5
#: a covariance whose largest eigenvalue is below this is flat (no variation at all)
ABS_FLOOR = 1e-12


class FeatureStats(NamedTuple):
    """Mean ``(C, 1)`` and the kept eigenpairs of the covariance: values ``(k,)``, vectors ``(C, k)`` (float64)."""

    mean: Tensor
    values: Tensor
    vectors: Tensor


def _flat(feat: Tensor) -> Tensor:
    if feat.dim() == 4:
        if feat.shape[0] != 1:
            raise ValueError(f"wct works on one feature map at a time, got batch {feat.shape[0]}")
        feat = feat[0]
    if feat.dim() != 3:
        raise ValueError(f"expected features (1, C, H, W) or (C, H, W), got {tuple(feat.shape)}")
    return feat.reshape(feat.shape[0], -1).to(torch.float64)


def covariance(flat: Tensor) -> Tensor:
    """Unbiased channel covariance ``(C, C)`` of flattened features ``(C, N)`` (float64)."""
    f = flat.to(torch.float64)
    f = f - f.mean(dim=1, keepdim=True)
    n = max(f.shape[1] - 1, 1)
    return f @ f.T / n


def feature_stats(feat: Tensor, floor: float = EIG_FLOOR, what: Optional[str] = "features") -> FeatureStats:
    """Mean and floored eigendecomposition of the channel covariance of ``feat``.

    Flat features (a flat-colour image: no eigenvalue above ``ABS_FLOOR``) raise :class:`InputError` naming ``what``
    (there is nothing to colour with), or, with ``what=None``, keep no eigenpair (whitening them gives zeros).
    """
    flat = _flat(feat)
    return stats_from_covariance(flat.mean(dim=1, keepdim=True), covariance(flat), floor, what)


def stats_from_covariance(mean: Tensor, cov: Tensor, floor: float = EIG_FLOOR, what: Optional[str] = "features"
                          ) -> FeatureStats:
    """:func:`feature_stats` from a mean ``(C, 1)`` and covariance ``(C, C)`` already measured (e.g. accumulated
    over tiles by :class:`MomentAccumulator`)."""
    mean = mean.to(torch.float64).reshape(-1, 1)
    vals, vecs = torch.linalg.eigh(cov.to(torch.float64))
    top = float(vals.max())
    keep = vals > max(floor * top, ABS_FLOOR)
    if top <= ABS_FLOOR and what is not None:
        raise InputError(f"{what} have no variation to match (a flat-colour image?): its feature covariance is "
                         f"singular; use an image with some texture")
    return FeatureStats(mean, vals[keep], vecs[:, keep])


class MomentAccumulator:
    """Running float64 sums of features and of their outer products over crops ``(1, C, h, w)``: the mean and the
    (unbiased) covariance of their union, as :func:`feature_stats` would measure on the whole map."""

    def __init__(self) -> None:
        self.s: Optional[Tensor] = None
        self.q: Optional[Tensor] = None
        self.n = 0

    def add(self, feat: Tensor) -> None:
        f = _flat(feat)
        s, q = f.sum(dim=1, keepdim=True), f @ f.T
        self.s = s if self.s is None else self.s + s
        self.q = q if self.q is None else self.q + q
        self.n += f.shape[1]

    def stats(self, floor: float = EIG_FLOOR, what: Optional[str] = "features") -> FeatureStats:
        if self.s is None or self.q is None or self.n < 2:
            raise ValueError("need at least two feature vectors")
        mean = self.s / self.n
        cov = (self.q - self.n * (mean @ mean.T)) / (self.n - 1)
        return stats_from_covariance(mean, cov, floor, what)


def whiten(flat: Tensor, stats: FeatureStats) -> Tensor:
    """``E D^-1/2 E^T (f - mean)``: features ``(C, N)`` with identity covariance on the kept subspace."""
    e = stats.vectors
    return e @ torch.diag(stats.values.rsqrt()) @ (e.T @ (flat - stats.mean))


def colour(white: Tensor, stats: FeatureStats) -> Tensor:
    """``E D^1/2 E^T w + mean``: give whitened features ``(C, N)`` the covariance and mean of ``stats``."""
    e = stats.vectors
    return e @ torch.diag(stats.values.sqrt()) @ (e.T @ white) + stats.mean


def wct(content: Tensor, style: Tensor | FeatureStats, alpha: float = 1.0, floor: float = EIG_FLOOR,
        content_stats: Optional[FeatureStats] = None) -> Tensor:
    """Whitening-colouring transform of ``content`` towards ``style``, blended with the content by ``alpha``.

    Args:
        content: (1, C, H, W) or (C, H, W) content features.
        style: (1, C, h, w) / (C, h, w) style features, or their :func:`feature_stats` (to reuse them).
        alpha: 1 = fully transformed, 0 = the content features (the method's definition:
            ``alpha * wct(fc, fs) + (1 - alpha) * fc``).
        floor: eigenvalue floor of both covariances.
        content_stats: the whitening statistics to use instead of ``content``'s own (a tile of a large image is
            whitened with the whole image's, so that the tiles agree).
    Returns:
        Features of ``content``'s shape and dtype.
    """
    flat = _flat(content)
    c_stats = content_stats if content_stats is not None else feature_stats(content, floor, None)  # flat content: whitened to zeros, the output is the style mean
    s_stats = style if isinstance(style, FeatureStats) else feature_stats(style, floor, "the style image's features")
    out = colour(whiten(flat, c_stats), s_stats)
    if alpha != 1.0:
        out = alpha * out + (1.0 - alpha) * flat
    return out.reshape(content.shape).to(content.dtype)
