"""CPU inference rewrites of translation generators (imgforge.ops.inference_layers) equal the original layers."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from imgforge.methods.translate import inference_copy, run_generator
from imgforge.models.translation import ResnetGenerator, init_weights
from imgforge.ops.gemm_conv import SmallInputGemm
from imgforge.ops.inference_layers import SingleImageInstanceNorm, SplitNarrowConv2d, rewrite_for_cpu_inference


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_single_image_instance_norm_matches(affine: bool, batch: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    norm = nn.InstanceNorm2d(5, affine=affine).double()
    if affine:
        nn.init.normal_(norm.weight)
        nn.init.normal_(norm.bias)
    x = torch.randn(batch, 5, 6, 7, dtype=torch.float64) * 3 + 1
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    got = SingleImageInstanceNorm(norm)(xin)
    torch.testing.assert_close(got, norm(x), rtol=0, atol=1e-10)
    if channels_last and batch == 1:
        assert got.is_contiguous(memory_format=torch.channels_last)


def test_single_image_instance_norm_refuses_running_stats() -> None:
    with pytest.raises(ValueError, match="running"):
        SingleImageInstanceNorm(nn.InstanceNorm2d(3, track_running_stats=True))


@pytest.mark.parametrize("padding", [0, 3])
def test_split_narrow_conv_matches(padding: int) -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 3, 7, padding=padding).double()
    split = SplitNarrowConv2d(conv)
    x = torch.randn(2, 6, 12, 9, dtype=torch.float64)
    torch.testing.assert_close(split(x), conv(x), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="cannot split"):
        SplitNarrowConv2d(nn.Conv2d(6, 3, 7, stride=2))


def test_resnet_inference_copy_is_rewritten_and_matches() -> None:
    torch.manual_seed(2)
    G = init_weights(ResnetGenerator(3, 3, ngf=8, norm="instance", n_blocks=2), "normal", 0.02).eval()
    before = copy.deepcopy(G.state_dict())
    fast = inference_copy(G)
    kinds = [type(m) for m in fast.modules()]
    assert kinds.count(SingleImageInstanceNorm) == 1 + 2 + 2 * 2 + 2  # stem, two downs, 2 per block, two ups
    assert kinds.count(SplitNarrowConv2d) == 1 and nn.InstanceNorm2d in kinds  # (wrapped inside)
    assert not any(isinstance(m, (SingleImageInstanceNorm, SplitNarrowConv2d, SmallInputGemm)) for m in G.modules())
    x = torch.rand(2, 3, 40, 48) * 2 - 1
    torch.testing.assert_close(run_generator(x, fast), run_generator(x, G), rtol=1e-4, atol=2e-5)
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    n_modules = len(list(fast.modules()))
    rewrite_for_cpu_inference(fast)  # idempotent
    assert len(list(fast.modules())) == n_modules
