"""Whitening and colouring transforms: closed-form covariance checks."""

from __future__ import annotations

import pytest
import torch

from imgforge.errors import InputError
from imgforge.ops.wct import covariance, feature_stats, wct


def _features(seed: int, c: int = 8, h: int = 12, w: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g)
    base = torch.randn(c, h * w, generator=g)
    return (mix @ base + torch.randn(c, 1, generator=g) * 3).reshape(1, c, h, w)


def test_transformed_covariance_equals_the_styles():
    content, style = _features(0), _features(1, h=9, w=7)
    out = wct(content.double(), style.double())
    flat_out = out.reshape(out.shape[1], -1)
    assert torch.allclose(covariance(flat_out), covariance(style.reshape(style.shape[1], -1)), atol=1e-8)
    assert torch.allclose(flat_out.mean(1), style.reshape(style.shape[1], -1).double().mean(1), atol=1e-8)


def test_whitened_covariance_is_identity_and_alpha_blends():
    content, style = _features(2), _features(3)
    stats = feature_stats(content)
    from imgforge.ops.wct import whiten
    white = whiten(content.reshape(8, -1).double(), stats)
    assert torch.allclose(covariance(white), torch.eye(8, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(wct(content, style, alpha=0.0), content, atol=1e-5)
    half = wct(content, style, alpha=0.5)
    assert torch.allclose(half, 0.5 * wct(content, style) + 0.5 * content, atol=1e-4)
    assert wct(content, style).dtype == content.dtype


def test_rank_deficient_style_stays_finite_and_matches_its_covariance():
    style = _features(4)
    style[:, 3] = style[:, 2] * 2  # a linear dependency: rank 7 of 8
    out = wct(_features(5).double(), style.double())
    assert torch.isfinite(out).all()
    assert torch.allclose(covariance(out.reshape(8, -1)), covariance(style.reshape(8, -1)), atol=1e-7)


def test_flat_style_is_an_input_error():
    flat = torch.ones(1, 8, 6, 6) * 0.3
    with pytest.raises(InputError, match="style image"):
        wct(_features(6), flat)


def test_flat_content_gives_the_style_mean():
    style = _features(7)
    out = wct(torch.full((1, 8, 5, 5), 0.2), style)
    assert torch.allclose(out[0].flatten(1), style[0].flatten(1).mean(1, keepdim=True).expand(8, 25), atol=1e-5)


def test_moments_accumulated_over_crops_equal_the_whole_maps_statistics():
    from imgforge.ops.wct import MomentAccumulator, feature_stats

    f = _features(3, c=6, h=16, w=12) * 3 + 5
    acc = MomentAccumulator()
    for y0, y1 in ((0, 7), (7, 16)):
        for x0, x1 in ((0, 5), (5, 12)):
            acc.add(f[:, :, y0:y1, x0:x1])
    a, b = acc.stats(), feature_stats(f)
    assert torch.allclose(a.mean, b.mean, atol=1e-10) and torch.allclose(a.values, b.values, rtol=1e-8)
    assert torch.allclose(wct(f, _features(4, c=6), content_stats=a), wct(f, _features(4, c=6)), atol=1e-6)
