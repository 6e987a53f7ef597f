"""End to end on real images: the shipped embedded encoder stylises a photo with a painting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgforge.hub.encoders import embedded_encoder_path, load_style_encoder
from imgforge.methods.gatys import GatysConfig, content_distance, resize_long_side, style_distance, stylize_gatys
from tests.conftest import require

pytestmark = pytest.mark.data


def _load(path: Path, long_side: int) -> torch.Tensor:
    from PIL import Image

    with Image.open(require(path)) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return resize_long_side(torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous(), long_side)


def test_embedded_encoder_file() -> None:
    path = require(embedded_encoder_path())
    enc, desc = load_style_encoder()
    assert "embedded encoder" in desc and "imgforge weights fetch vgg19" in desc
    assert path.stat().st_size <= 40 * 2**20
    assert {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"} <= set(enc.layer_names)
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training


def test_stylize_real_photo(data_dir: Path) -> None:
    require(embedded_encoder_path())
    enc, _ = load_style_encoder()
    content = _load(data_dir / "photos" / "astronaut.png", 64)
    style = _load(data_dir / "paintings" / "starry_night.jpg", 64)
    cfg = GatysConfig(size=64, iterations=25, tv_weight=5.0)
    out = stylize_gatys(content, [style], enc, cfg)
    assert out.shape == content.shape
    before = style_distance(content, [style], enc)
    after = style_distance(out, [style], enc)
    assert after < 0.5 * before, (before, after)
    # the picture stays recognisable: closer to the content than the style image is (resized to the same size), by
    # the encoder's relu4_2 distance and by the colours at 1/8 resolution
    style_as_content = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear", align_corners=False)
    assert content_distance(out, content, enc) < content_distance(style_as_content, content, enc)

    def structure(t: torch.Tensor) -> torch.Tensor:  # luminance at 1/4 resolution, zero-mean, unit norm
        g = torch.nn.functional.avg_pool2d(t.mean(1, keepdim=True), 4).flatten()
        g = g - g.mean()
        return g / g.norm()

    corr = float(structure(out) @ structure(content))
    assert corr > 0.5 and corr > float(structure(style_as_content) @ structure(content)) + 0.3, corr
