"""The perceptual distance (Image2StyleGAN layers) and the choice of its encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from imgforge.errors import UsageError, WeightsError
from imgforge.losses.perceptual import IMAGE2STYLEGAN_LAYERS, PerceptualDistance
from imgforge.hub.encoders import resolve_perceptual_encoder
from imgforge.models.vgg import TorchvisionVGG


@pytest.fixture(scope="module")
def enc() -> TorchvisionVGG:
    torch.manual_seed(0)
    return TorchvisionVGG("vgg16", last_layer="conv4_2", widths=(8, 8, 16, 16, 16)).eval().requires_grad_(False)


def test_distance_matches_explicit_formula(enc: TorchvisionVGG) -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    for norm in ("relative", "none"):
        pd = PerceptualDistance(enc, normalize=norm, layer_weights=(1.0, 0.5, 2.0, 1.0))
        got = pd(x, pd.target(y))
        fx, fy = enc(x, layers=IMAGE2STYLEGAN_LAYERS), enc(y, layers=IMAGE2STYLEGAN_LAYERS)
        ref = torch.zeros(2)
        for name, w in zip(IMAGE2STYLEGAN_LAYERS, (1.0, 0.5, 2.0, 1.0)):
            d = (fx[name] - fy[name]).square().mean(dim=(1, 2, 3))
            if norm == "relative":
                d = d / fy[name].square().mean(dim=(1, 2, 3))
            ref += w * d
        assert torch.allclose(got, ref, rtol=1e-4), norm
    assert torch.allclose(pd(y, pd.target(y)), torch.zeros(2), atol=1e-6)


def test_mask_and_min_size(enc: TorchvisionVGG) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 16, 16, generator=g)
    y = x.clone()
    y[..., :8, :] = torch.rand(1, 3, 8, 16, generator=g)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 8:, :] = 1
    pd = PerceptualDistance(enc, min_size=32)
    assert pd.features(x)["conv1_1"].shape[-1] == 32  # upsampled before the encoder
    assert pd(x, pd.target(y, mask), mask).item() == pytest.approx(0.0, abs=1e-7)
    assert pd(x, pd.target(y)).item() > 0
    with pytest.raises(UsageError):
        PerceptualDistance(enc, layers=("conv5_3",))


def test_encoder_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import imgforge.hub.store as store
    import imgforge.hub.encoders as encoders

    calls = []

    def fake_load(path=None, *, device=None):  # type: ignore[no-untyped-def]
        calls.append(path)
        if path is None:
            raise WeightsError("the embedded encoder x is missing")
        return "ENC", f"file {Path(path).name}"

    def no_vgg16(name, offline=None, progress=None):  # type: ignore[no-untyped-def]
        raise WeightsError(f"{name} not found")

    monkeypatch.setattr(encoders, "load_style_encoder", fake_load)
    monkeypatch.setattr(store, "resolve", no_vgg16)
    with pytest.raises(WeightsError, match="--loss mse"):
        resolve_perceptual_encoder(None)
    monkeypatch.setattr(store, "resolve", lambda name, offline=None, progress=None: tmp_path / f"{name}.pth")
    enc, desc = resolve_perceptual_encoder(None)
    assert calls[-1] == tmp_path / "vgg16.pth" and "published ImageNet VGG-16" in desc
    enc, desc = resolve_perceptual_encoder("my-encoder")
    assert calls[-1] == tmp_path / "my-encoder.pth"
