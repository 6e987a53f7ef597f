"""CNNMRF: patch matching by normalised cross-correlation, and an MRF stylisation that moves towards the style's
patches while keeping the content."""

from __future__ import annotations

import pytest
import torch

from imgforge.errors import UsageError
from imgforge.methods.gatys import GatysConfig
from imgforge.methods.gatys_ext import stylize_gatys_ext
from imgforge.methods.mrf import MRFObjective, feature_patches, nearest_patches
from imgforge.models.vgg import vgg19_normalised


def test_nearest_patch_is_found_by_normalised_cross_correlation():
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(50, 12, generator=g)
    unit = targets / targets.norm(dim=1, keepdim=True)
    query = targets[[7, 3, 41]] * torch.tensor([[3.0], [0.5], [10.0]])  # scaled copies: same correlation
    assert nearest_patches(query, unit, chunk=2).tolist() == [7, 3, 41]
    f = torch.arange(2 * 4 * 5, dtype=torch.float32).reshape(1, 2, 4, 5)
    p = feature_patches(f, 3)
    assert p.shape == (2 * 3, 2 * 9) and torch.equal(p[0, :3], f[0, 0, 0, :3])


def _imgs():
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    content = torch.stack([xx, yy, 1 - xx])[None]
    stripes = ((torch.sin(torch.linspace(0, 40, 48))[None, :] > 0).float().expand(48, 48))
    style = torch.stack([stripes, 1 - stripes, stripes * 0.5])[None] * 0.8 + 0.1 * torch.rand(1, 3, 48, 48, generator=g)
    return content, style


def test_mrf_stylisation_lowers_its_style_term():
    torch.manual_seed(0)
    enc = vgg19_normalised(last_layer="relu4_1").eval()
    content, style = _imgs()
    # the MRF term alone (no content, no TV): L-BFGS from the content image brings its patches to the style's
    cfg = GatysConfig(style_layers=("relu3_1", "relu4_1"), content_layers=("relu4_1",), iterations=20, size=48,
                      style_weight=10.0, content_weight=0.0, tv_weight=0.0)
    obj = MRFObjective(enc, cfg, content, [style], [1.0])
    with torch.no_grad():
        before = float(obj(content.clone())["style"])
    out = stylize_gatys_ext(content, [style], enc, cfg, style_loss="mrf")
    with torch.no_grad():
        after = float(obj(out)["style"])
    assert out.shape == content.shape and torch.isfinite(out).all()
    assert after < 0.5 * before, (before, after)  # measured 0.272 -> 0.077
    with pytest.raises(UsageError, match="mrf"):
        stylize_gatys_ext(content, [style], enc, cfg, style_loss="mrf", masks=[torch.ones(1, 1, 48, 48)])
