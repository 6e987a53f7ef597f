"""The rewritten image-end convolutions of the U-Net (imgforge.ops.narrow_conv) equal the torch layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from imgforge.models.translation import UnetGenerator
from imgforge.ops.narrow_conv import (
    SpaceToDepthConv2d,
    SubpixelConvTranspose2d,
    conv4s2_as_s2d,
    convt4s2_as_conv3,
    set_fast_narrow,
)


@pytest.mark.parametrize("c_in,c_out,h,w", [(8, 3, 6, 10), (5, 7, 1, 1), (3, 16, 4, 2)])
def test_convt4s2_as_conv3_is_exact_in_float64(c_in: int, c_out: int, h: int, w: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_in, c_out, 4, 4, generator=g, dtype=torch.float64)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64)
    ref = F.conv_transpose2d(x, weight, bias, stride=2, padding=1)
    out = F.pixel_shuffle(F.conv2d(x, convt4s2_as_conv3(weight), bias.repeat_interleave(4), padding=1), 2)
    assert out.shape == ref.shape == (2, c_out, 2 * h, 2 * w)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("c_in,c_out,h,w", [(3, 8, 6, 10), (4, 5, 2, 2), (1, 16, 8, 4)])
def test_conv4s2_as_s2d_is_exact_in_float64(c_in: int, c_out: int, h: int, w: int) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, 4, 4, generator=g, dtype=torch.float64)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64)
    ref = F.conv2d(x, weight, bias, stride=2, padding=1)
    out = F.conv2d(F.pixel_unshuffle(F.pad(x, (1, 1, 1, 1)), 2), conv4s2_as_s2d(weight), bias)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_rewrites_reject_other_kernels() -> None:
    with pytest.raises(ValueError, match="4, 4"):
        convt4s2_as_conv3(torch.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match="4, 4"):
        conv4s2_as_s2d(torch.zeros(4, 3, 3, 3))


def _pair(cls: type, plain: type, *args: int, **kw: object) -> tuple:
    torch.manual_seed(0)
    fast = cls(*args, **kw).double()
    ref = plain(*args, **kw).double()
    ref.load_state_dict(fast.state_dict())
    return fast, ref


@pytest.mark.parametrize("channels_last", [False, True])
def test_layers_match_torch_forward_and_gradients(channels_last: bool) -> None:
    up, up_ref = _pair(SubpixelConvTranspose2d, nn.ConvTranspose2d, 6, 3, kernel_size=4, stride=2, padding=1)
    down, down_ref = _pair(SpaceToDepthConv2d, nn.Conv2d, 3, 6, kernel_size=4, stride=2, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64, requires_grad=True)
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    for m in (up, down):
        m.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    y = up(torch.relu(down(xin)))
    y_ref = up_ref(torch.relu(down_ref(x)))
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad((y * g).sum(), [x, up.weight, up.bias, down.weight])
    grads_ref = torch.autograd.grad((y_ref * g).sum(), [x, up_ref.weight, up_ref.bias, down_ref.weight])
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert set(up.state_dict()) == {"weight", "bias"} and set(down.state_dict()) == {"weight"}


def test_layers_fall_back_where_the_rewrite_does_not_apply() -> None:
    odd, odd_ref = _pair(SpaceToDepthConv2d, nn.Conv2d, 3, 4, kernel_size=4, stride=2, padding=1)
    x = torch.randn(1, 3, 7, 9, dtype=torch.float64)  # odd size: plain conv (the rewrite needs even H, W)
    torch.testing.assert_close(odd(x), odd_ref(x), rtol=0, atol=0)
    other, other_ref = _pair(SubpixelConvTranspose2d, nn.ConvTranspose2d, 4, 3, kernel_size=3, stride=2, padding=1,
                             output_padding=1)
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(other(x), other_ref(x), rtol=0, atol=0)


def test_unet_uses_the_rewrites_with_unchanged_keys_and_switch() -> None:
    torch.manual_seed(0)
    G = UnetGenerator(3, 3, num_downs=5, ngf=4, norm="batch").double().eval()
    outer = G.model.model
    assert isinstance(outer[0], SpaceToDepthConv2d) and isinstance(outer[3], SubpixelConvTranspose2d)
    assert "model.model.0.weight" in G.state_dict() and "model.model.3.bias" in G.state_dict()
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        fast = G(x)
        set_fast_narrow(G, False)
        assert not outer[0].fast and not outer[3].fast
        plain = G(x)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-12)
    assert not torch.equal(fast, torch.zeros_like(fast))
