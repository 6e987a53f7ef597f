"""Small-input convolutions as matrix products (imgforge.ops.gemm_conv) equal the torch layers."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from imgforge.methods.translate import inference_copy, run_generator
from imgforge.models.translation import UnetGenerator
from imgforge.ops.gemm_conv import SmallInputGemm, gemm_small_inputs
from imgforge.ops.narrow_conv import SpaceToDepthConv2d


@pytest.mark.parametrize("size", [1, 2, 3, 8, 9])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_and_transposed_conv_match_their_layers(size: int, bias: bool) -> None:
    torch.manual_seed(size)
    conv = nn.Conv2d(6, 5, 4, stride=2, padding=1, bias=bias).double()
    convt = nn.ConvTranspose2d(6, 5, 4, stride=2, padding=1, bias=bias).double()
    conv3 = nn.Conv2d(6, 5, 3, stride=1, padding=1, bias=bias).double()
    for layer in (conv, convt, conv3) if size > 1 else (convt, conv3):  # (a 4x4 kernel needs 2 padded pixels)
        wrapped = SmallInputGemm(copy.deepcopy(layer), max_positions=10_000)
        x = torch.randn(2, 6, size, size + 1, dtype=torch.float64)
        with torch.no_grad():
            ref, got = layer(x), wrapped(x)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_large_inputs_use_the_layer_and_channels_last_input_works() -> None:
    torch.manual_seed(0)
    convt = nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)
    wrapped = SmallInputGemm(copy.deepcopy(convt), max_positions=16)
    small = torch.randn(1, 4, 4, 4).contiguous(memory_format=torch.channels_last)
    large = torch.randn(1, 4, 5, 4)  # 20 positions > 16: the wrapped layer itself
    with torch.no_grad():
        torch.testing.assert_close(wrapped(small), convt(small), rtol=1e-5, atol=1e-6)
        assert torch.equal(wrapped(large), convt(large))


def test_ineligible_layers_are_refused_or_left_alone() -> None:
    with pytest.raises(ValueError, match="matrix product"):
        SmallInputGemm(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="matrix product"):
        SmallInputGemm(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"))
    net = nn.Sequential(nn.Conv2d(3, 4, 3), SpaceToDepthConv2d(4, 4, 4, 2, 1), nn.Conv2d(4, 4, 3, dilation=2))
    gemm_small_inputs(net)
    assert isinstance(net[0], SmallInputGemm)
    assert isinstance(net[1], SpaceToDepthConv2d) and isinstance(net[2], nn.Conv2d)  # own forward / dilated: kept


def test_inference_copy_of_a_unet_matches_and_leaves_the_model_untouched() -> None:
    torch.manual_seed(0)
    G = UnetGenerator(3, 3, num_downs=6, ngf=8, norm="batch", use_dropout=True).eval()
    before = copy.deepcopy(G.state_dict())
    fast = inference_copy(G)
    wrapped = [m for m in fast.modules() if isinstance(m, SmallInputGemm)]
    assert len(wrapped) == 2 * 6 - 2  # every level's convs except the outermost pair (own forward)
    gemm_small_inputs(fast)  # idempotent: no wrapper inside a wrapper
    assert [m for m in fast.modules() if isinstance(m, SmallInputGemm)] == wrapped
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    ref = run_generator(x, G, eval_mode=True)
    got = run_generator(x, fast, eval_mode=True)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    # reference test mode (batch statistics, seeded dropout) goes through the same layers
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(run_generator(x, fast, eval_mode=False, generator=g1),
                               run_generator(x, G, eval_mode=False, generator=g2), rtol=1e-4, atol=1e-5)
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    assert not any(isinstance(m, SmallInputGemm) for m in G.modules())
