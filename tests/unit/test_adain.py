"""AdaIN decoder layout, the AdaIN feature combination (alpha, interpolation, masks), the method's plumbing, converter."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from imgforge.errors import InputError, UsageError, WeightsError
from imgforge.hub.converters import get_converter
from imgforge.methods.adain import adain_stylize, blend_features, encode, normalise_weights, resize_masks
from imgforge.models.adain import DECODER_CONV_INDICES, AdaINDecoder, adain_encoder
from imgforge.models.registry import build
from imgforge.ops.stats import coral
from tests.conftest import require


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _explicit_adain(c: torch.Tensor, s: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN written out in float64: per channel mean over H*W, unbiased variance + eps, sqrt."""
    c64, s64 = c.double(), s.double()
    out = torch.empty_like(c64)
    for ch in range(c.shape[1]):
        cv, sv = c64[0, ch].flatten(), s64[0, ch].flatten()
        c_mean, s_mean = cv.sum() / cv.numel(), sv.sum() / sv.numel()
        c_std = torch.sqrt(((cv - c_mean) ** 2).sum() / (cv.numel() - 1) + eps)
        s_std = torch.sqrt(((sv - s_mean) ** 2).sum() / (sv.numel() - 1) + eps)
        out[0, ch] = (c64[0, ch] - c_mean) / c_std * s_std + s_mean
    return out


def _feats(seed: int, n: int = 2, c: int = 8, hw: tuple[int, int] = (6, 5)) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = _gen(seed)
    content = torch.rand(1, c, *hw, generator=g) * 3
    styles = [torch.randn(1, c, 4 + i, 7, generator=g) * (i + 1) + i for i in range(n)]
    return content, styles


# ---------------------------------------------------------------- decoder layout


def test_decoder_keys_match_published_layout(compat_dir: Path) -> None:
    entries = json.loads(require(compat_dir / "style" / "G" / "keys_full.json").read_text())["decoder.pth"]
    ours = [(k, list(v.shape)) for k, v in AdaINDecoder().state_dict().items()]
    assert ours == [(k, s) for k, s, _dt in entries]


def test_decoder_structure_and_shapes() -> None:
    dec = build("adain_decoder")
    assert isinstance(dec, AdaINDecoder) and len(dec) == 29
    convs = [i for i, m in enumerate(dec) if isinstance(m, nn.Conv2d)]
    assert tuple(convs) == DECODER_CONV_INDICES
    assert [i for i, m in enumerate(dec) if isinstance(m, nn.Upsample)] == [3, 16, 23]
    for i in convs:
        assert isinstance(dec[i - 1], nn.ReflectionPad2d) and dec[i].padding == (0, 0)
        assert (i == 28) != isinstance(dec[i + 1] if i + 1 < len(dec) else None, nn.ReLU)
    with torch.no_grad():
        out = dec(torch.rand(1, 512, 2, 3, generator=_gen(0)))
    assert out.shape == (1, 3, 16, 24)


def test_adain_encoder_slices_children() -> None:
    vgg = nn.Sequential(*[nn.Identity() for _ in range(53)])
    enc = adain_encoder(vgg)
    assert len(enc) == 31 and all(a is b for a, b in zip(enc, list(vgg)[:31]))
    with pytest.raises(ValueError):
        adain_encoder(nn.Sequential(nn.Identity()))


# ---------------------------------------------------------------- feature combination


def test_single_style_is_adain() -> None:
    c, (s, _) = _feats(1)
    got = blend_features(c, [s])
    assert torch.allclose(got.double(), _explicit_adain(c, s), atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_alpha_blend(alpha: float) -> None:
    c, (s, _) = _feats(2)
    got = blend_features(c, [s], alpha=alpha)
    want = _explicit_adain(c, s) * alpha + c.double() * (1 - alpha)
    assert torch.allclose(got.double(), want, atol=1e-5)
    if alpha == 0.0:
        assert torch.equal(got, c)


def test_interpolation_weights_normalised() -> None:
    c, (s1, s2) = _feats(3)
    got = blend_features(c, [s1, s2], style_weights=[7, 3])
    want = 0.7 * _explicit_adain(c, s1) + 0.3 * _explicit_adain(c, s2)
    assert torch.allclose(got.double(), want, atol=1e-5)
    equal = blend_features(c, [s1, s2])
    assert torch.allclose(equal.double(), 0.5 * _explicit_adain(c, s1) + 0.5 * _explicit_adain(c, s2), atol=1e-5)
    assert normalise_weights([7, 3], 2) == [0.7, 0.3]
    assert normalise_weights(None, 4) == [0.25] * 4


def test_weight_and_alpha_errors() -> None:
    c, ss = _feats(4)
    with pytest.raises(UsageError):
        blend_features(c, ss, style_weights=[1])
    with pytest.raises(UsageError):
        blend_features(c, ss, style_weights=[1, -1])
    with pytest.raises(UsageError):
        blend_features(c, ss, style_weights=[0, 0])
    with pytest.raises(UsageError):
        blend_features(c, ss, alpha=1.5)
    with pytest.raises(UsageError):
        blend_features(c, [])


def test_complementary_masks_partition_the_features() -> None:
    c, (s1, s2) = _feats(5, hw=(4, 6))
    left = torch.zeros(1, 1, 32, 48)
    left[..., :24] = 1.0  # feature columns 0..2 at 1/8 resolution
    got = blend_features(c, [s1, s2], masks=[left, 1 - left])
    a1, a2 = _explicit_adain(c, s1), _explicit_adain(c, s2)
    assert torch.allclose(got[..., :3].double(), a1[..., :3], atol=1e-5)
    assert torch.allclose(got[..., 3:].double(), a2[..., 3:], atol=1e-5)


def test_soft_masks_weights_sum_to_one() -> None:
    c, (s1, s2) = _feats(6, hw=(4, 4))
    g = _gen(7)
    m1, m2 = torch.rand(1, 1, 32, 32, generator=g), torch.rand(1, 1, 32, 32, generator=g)
    r1, r2 = resize_masks([m1, m2], (4, 4))
    assert r1.shape == (1, 1, 4, 4)
    total = r1 + r2
    assert total.max() <= 1 + 1e-6
    raw = torch.nn.functional.avg_pool2d(m1, 8) + torch.nn.functional.avg_pool2d(m2, 8)
    assert torch.allclose(total, raw.clamp(max=1), atol=1e-6)  # normalised only where they exceed 1
    got = blend_features(c, [s1, s2], masks=[m1, m2])
    want = r1 * _explicit_adain(c, s1) + r2 * _explicit_adain(c, s2) + (1 - total) * c.double()
    assert torch.allclose(got.double(), want.double(), atol=1e-5)
    # with styles whose statistics equal the content's, any masks give back the content features
    same = blend_features(c, [c, c], masks=[m1, m2])
    assert torch.allclose(same, c, atol=1e-5)
    # no mask coverage: content features
    zero = torch.zeros(1, 1, 32, 32)
    assert torch.equal(blend_features(c, [s1, s2], masks=[zero, zero]), c)


def test_mask_errors() -> None:
    c, ss = _feats(8)
    m = torch.ones(1, 1, 8, 8)
    with pytest.raises(UsageError):
        blend_features(c, ss, masks=[m])
    with pytest.raises(UsageError):
        blend_features(c, ss, masks=[m, m], style_weights=[1, 1])


# ---------------------------------------------------------------- adain_stylize plumbing


class _RecordingEncoder(nn.Module):
    """Stand-in encoder (not VGG): 8x8 patches to 512 channels, ceil(H/8) x ceil(W/8) like the real one's
    ceil-mode pooling; records its inputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(11)
        self.conv = nn.Conv2d(3, 512, 8, stride=8)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        h, w = x.shape[2:]
        x = torch.nn.functional.pad(x, (0, -w % 8, 0, -h % 8), mode="replicate")
        return torch.relu(self.conv(x))


def _decoder() -> AdaINDecoder:
    torch.manual_seed(12)
    return AdaINDecoder().eval()


def test_adain_stylize_matches_manual_pipeline() -> None:
    g = _gen(13)
    content, style = torch.rand(1, 3, 16, 24, generator=g), torch.rand(1, 3, 24, 16, generator=g)
    enc, dec = _RecordingEncoder(), _decoder()
    events: list = []
    got = adain_stylize(content, [style], enc, dec, alpha=0.6, clamp=False, progress=events.append)
    with torch.no_grad():
        cf, sf = enc(content), enc(style)
        want = dec(blend_features(cf, [sf], alpha=0.6))
    assert torch.equal(got, want)
    assert len(events) == 1
    clamped = adain_stylize(content, [style], enc, dec, alpha=0.6)
    assert torch.equal(clamped, want.clamp(0, 1))


def test_adain_stylize_preserve_color_uses_coral_on_styles() -> None:
    g = _gen(14)
    content, style = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g) * 0.5
    enc = _RecordingEncoder()
    adain_stylize(content, [style], enc, _decoder(), preserve_color=True)
    assert torch.equal(enc.seen[0], content)
    assert torch.allclose(enc.seen[1], coral(style[0], content[0]).unsqueeze(0))


def test_adain_stylize_crops_odd_sizes() -> None:
    g = _gen(15)
    content, style = torch.rand(1, 3, 13, 19, generator=g), torch.rand(1, 3, 9, 9, generator=g)
    enc, dec = _RecordingEncoder(), _decoder()
    full = adain_stylize(content, [style], enc, dec, crop_to_input=False)
    assert full.shape == (1, 3, 16, 24)  # 8 * ceil(H/8), like the reference
    out = adain_stylize(content, [style], enc, dec)
    assert out.shape == (1, 3, 13, 19)
    assert torch.equal(out, full[:, :, :13, :19])
    masked = adain_stylize(content, [style], enc, dec, masks=[torch.ones(1, 1, 13, 19)])
    assert masked.shape == (1, 3, 13, 19)


def test_encode_accepts_named_layer_encoders() -> None:
    x = torch.rand(1, 512, 2, 2)
    assert encode(lambda _: x, x) is x
    assert encode(lambda _: {"relu4_1": x, "relu1_1": x + 1}, x) is x
    assert encode(lambda _: {"feat": x}, x) is x
    with pytest.raises(UsageError, match="relu4_1"):
        encode(lambda _: {"relu1_1": x, "relu2_1": x}, x)


def test_adain_stylize_input_errors() -> None:
    enc, dec = _RecordingEncoder(), _decoder()
    img = torch.rand(1, 3, 16, 16)
    with pytest.raises(InputError):
        adain_stylize(torch.rand(3, 16, 16), [img], enc, dec)
    with pytest.raises(InputError):
        adain_stylize(img, [torch.rand(1, 3, 4, 16)], enc, dec)
    with pytest.raises(UsageError):
        adain_stylize(img, [], enc, dec)
    with pytest.raises(InputError):
        adain_stylize(img, [img], enc, dec, masks=[torch.full((1, 1, 16, 16), 1.5)])
    with pytest.raises(InputError):
        adain_stylize(img, [img], enc, dec, masks=[torch.ones(1, 16, 16)])


# ---------------------------------------------------------------- converter


def test_decoder_converter_roundtrip(tmp_path: Path) -> None:
    dec = _decoder()
    path = tmp_path / "decoder.pth"
    torch.save(OrderedDict(dec.state_dict()), path, _use_new_zipfile_serialization=False)
    conv = get_converter("adain_decoder")(path)
    assert conv.arch == "adain_decoder" and list(conv.state_dict) == list(dec.state_dict())
    fresh = AdaINDecoder()
    fresh.load_state_dict(conv.state_dict, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), dec.state_dict().values()))


def test_decoder_converter_rejects_other_networks(tmp_path: Path) -> None:
    from imgforge.models.fast_style import TransformerNet

    path = tmp_path / "mosaic.pth"
    torch.save(TransformerNet().state_dict(), path)
    with pytest.raises(WeightsError, match="adain_decoder"):
        get_converter("adain_decoder")(path)
