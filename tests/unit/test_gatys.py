"""Gatys style transfer / texture synthesis on tiny images with a tiny seeded encoder."""

from __future__ import annotations

from typing import List

import pytest
import torch

from imgforge.runtime import Runtime
import torch.nn as nn

from imgforge.errors import InputError, UsageError
from imgforge.methods.gatys import (
    GatysConfig,
    content_distance,
    resize_long_side,
    style_distance,
    stylize_gatys,
    texture_synthesis,
)
from imgforge.models.registry import build
from imgforge.progress import ProgressEvent

TINY = (8, 8, 16, 16, 16)


@pytest.fixture(scope="module")
def encoder() -> nn.Module:
    enc = build("vgg19", last_layer="relu5_1", widths=TINY)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in enc.features:
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                m.bias.zero_()
    return enc.eval()


def _img(seed: int, h: int = 32, w: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)


def _stripes(h: int = 32, w: int = 32) -> torch.Tensor:
    x = torch.arange(w).float()
    s = 0.5 + 0.5 * torch.sin(x * 1.3)
    return torch.stack([s, 1 - s, 0.5 * s]).unsqueeze(1).expand(3, h, w).unsqueeze(0).contiguous()


FAST = dict(size=None, iterations=12, progress_every=1)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_losses_decrease(encoder: nn.Module, optimizer: str) -> None:
    events: List[ProgressEvent] = []
    cfg = GatysConfig(optimizer=optimizer, tv_weight=1.0, **FAST)  # type: ignore[arg-type]
    content, style = _img(1), _stripes()
    out = stylize_gatys(content, [style], encoder, cfg, progress=events.append)
    assert out.shape == content.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert [e.step for e in events] == list(range(1, 13)) and events[-1].total == 12
    assert set(events[0].metrics) >= {"content", "style", "tv", "total"}
    assert events[0].metrics["content"] == pytest.approx(0.0, abs=1e-9)  # starts from the content image
    assert events[-1].metrics["style"] < 0.8 * events[0].metrics["style"]
    assert events[-1].metrics["total"] < events[0].metrics["total"]
    assert style_distance(out, [style], encoder) < style_distance(content, [style], encoder)


def test_deterministic_under_seed(encoder: nn.Module) -> None:
    content, style = _img(2), _img(3)
    cfg = GatysConfig(init="noise", seed=7, **FAST)  # type: ignore[arg-type]
    a = stylize_gatys(content, [style], encoder, cfg)
    b = stylize_gatys(content, [style], encoder, cfg)
    assert torch.equal(a, b)
    c = stylize_gatys(content, [style], encoder, GatysConfig(init="noise", seed=8, **FAST))  # type: ignore[arg-type]
    assert not torch.equal(a, c)
    d = stylize_gatys(content, [style], encoder, cfg, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, d)


def test_texture_mode_any_size(encoder: nn.Module) -> None:
    style = _stripes()
    events: List[ProgressEvent] = []
    cfg = GatysConfig(size=None, iterations=10, output_size=(24, 40), progress_every=5)
    out = texture_synthesis([style], encoder, cfg, progress=events.append)
    assert out.shape == (1, 3, 24, 40)
    assert events[-1].task == "texture" and events[-1].metrics["content"] == 0.0
    assert events[-1].metrics["style"] < events[0].metrics["style"]
    with pytest.raises(UsageError, match="output_size"):
        stylize_gatys(None, [style], encoder, GatysConfig(size=None, iterations=1))


def test_multi_style_weights(encoder: nn.Module) -> None:
    content, s1, s2 = _img(4), _stripes(), _img(5)
    one = stylize_gatys(content, [s1], encoder, GatysConfig(**FAST))  # type: ignore[arg-type]
    only_first = stylize_gatys(content, [s1, s2], encoder, GatysConfig(style_weights=(1.0, 0.0), **FAST))  # type: ignore[arg-type]
    assert torch.equal(one, only_first)
    equal = stylize_gatys(content, [s1, s2], encoder, GatysConfig(**FAST))  # type: ignore[arg-type]
    scaled = stylize_gatys(content, [s1, s2], encoder, GatysConfig(style_weights=(3.0, 3.0), **FAST))  # type: ignore[arg-type]
    assert torch.equal(equal, scaled)
    assert not torch.equal(equal, one)
    # the blend sits between the two styles
    d1 = style_distance(equal, [s1], encoder)
    assert d1 > style_distance(one, [s1], encoder)
    with pytest.raises(UsageError, match="2 style images"):
        stylize_gatys(content, [s1, s2], encoder, GatysConfig(style_weights=(1.0,), **FAST))  # type: ignore[arg-type]


def test_size_and_style_scale(encoder: nn.Module) -> None:
    content = _img(6, 48, 36)
    out = stylize_gatys(content, [_img(7, 40, 64)], encoder, GatysConfig(size=32, iterations=2, style_scale=1.0))
    assert out.shape == (1, 3, 32, 24)
    with pytest.raises(InputError, match="style_scale"):
        stylize_gatys(content, [_img(7, 40, 64)], encoder, GatysConfig(size=32, iterations=2, style_scale=0.75))
    assert resize_long_side(content, 24).shape == (1, 3, 24, 18)


def test_encoder_left_untouched(encoder: nn.Module) -> None:
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.train()
    for p in encoder.parameters():
        p.requires_grad_(True)
    stylize_gatys(_img(8), [_img(9)], encoder, GatysConfig(size=None, iterations=3))
    assert encoder.training and all(p.requires_grad for p in encoder.parameters())
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)


def test_bfloat16_autocast_runs(encoder: nn.Module) -> None:
    events: List[ProgressEvent] = []
    cfg = GatysConfig(**FAST)  # type: ignore[arg-type]
    rt = Runtime(torch.device("cpu"), torch.bfloat16)
    out = stylize_gatys(_img(10), [_stripes()], encoder, cfg, progress=events.append, runtime=rt)
    assert out.dtype == torch.float32
    assert events[-1].metrics["style"] < 0.8 * events[0].metrics["style"]


def test_validation(encoder: nn.Module) -> None:
    with pytest.raises(UsageError, match="optimizer"):
        stylize_gatys(_img(1), [_img(2)], encoder, GatysConfig(optimizer="sgd"))
    with pytest.raises(UsageError, match="init"):
        GatysConfig(init="zeros").validate()
    with pytest.raises(UsageError, match="style_layer_weights"):
        GatysConfig(style_layer_weights=(1.0,)).validate()
    with pytest.raises(InputError, match="content image"):
        stylize_gatys(torch.rand(3, 32, 32), [_img(2)], encoder, GatysConfig(size=None, iterations=1))
    with pytest.raises(InputError, match="style image 2"):
        stylize_gatys(_img(1), [_img(2), torch.rand(1, 1, 32, 32)], encoder, GatysConfig(size=None, iterations=1))
    with pytest.raises(UsageError, match="at least one style"):
        stylize_gatys(_img(1), [], encoder, GatysConfig(size=None, iterations=1))


def test_distances(encoder: nn.Module) -> None:
    a, b = _img(11), _img(12)
    assert style_distance(a, [a], encoder) == pytest.approx(0.0, abs=1e-10)
    assert content_distance(a, a, encoder) == 0.0
    assert style_distance(a, [b], encoder) > 0 and content_distance(a, b, encoder) > 0


def test_gram_channels_last_equals_nchw_float64() -> None:
    from imgforge.ops.stats import gram

    f = torch.randn(2, 5, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    fcl = f.contiguous(memory_format=torch.channels_last)
    for norm in ("chw", "hw", "none"):
        torch.testing.assert_close(gram(fcl, norm), gram(f, norm), rtol=1e-13, atol=1e-13)
    # gradients through the channels_last form equal the NCHW ones
    a, b = f.clone().requires_grad_(True), fcl.clone().requires_grad_(True)
    gram(a).square().sum().backward()
    gram(b).square().sum().backward()
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-12, atol=1e-12)


def test_channels_last_objective_equals_nchw_float64(encoder: nn.Module) -> None:
    """The fast path's objective (channels_last encoder and input) computes the same losses and gradients."""
    import copy

    from imgforge.methods.gatys import _Objective

    enc64 = copy.deepcopy(encoder).double()
    cfg = GatysConfig(size=None)
    content, style = _img(1).double(), _stripes().double()
    ref = _Objective(enc64, cfg, content, [style], [1.0])
    enc_cl = copy.deepcopy(enc64).to(memory_format=torch.channels_last)
    fast = _Objective(enc_cl, cfg, content, [style], [1.0], channels_last=True)
    x1 = _img(4).double().requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    l1, l2 = ref(x1), fast(x2)
    for k in l1:
        torch.testing.assert_close(l2[k], l1[k], rtol=1e-11, atol=1e-14)
    l1["total"].backward()
    l2["total"].backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-10, atol=1e-14)


def test_cpu_runs_are_the_plain_arithmetic(encoder: nn.Module) -> None:
    """On the CPU the runtime's channels_last is not used for Gatys: the result equals the NCHW run bit for bit."""
    cfg = GatysConfig(size=None, iterations=6)
    a = stylize_gatys(_img(8), [_img(9)], encoder, cfg)
    b = stylize_gatys(_img(8), [_img(9)], encoder, cfg, runtime=Runtime(torch.device("cpu"), None, True))
    assert all(p.is_contiguous() for p in encoder.parameters())
    assert torch.equal(a, b)
