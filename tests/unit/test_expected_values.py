"""Hermetic numeric regression anchors (diffusers' ``expected_slice`` style; no ../shared needed).

Each case builds a tiny network after ``torch.manual_seed`` (PyTorch's default initialisation, plus seeded buffers
where a model has them), runs it in fp32 on the CPU on a seeded input, and compares a few output values spread over
the tensor, its mean and its mean absolute value with figures pasted from a run of the code as it was when these
tests were written. A change in any layer's arithmetic, parameter order, initialisation or default option moves them;
if a change is intended, re-derive the figures (``_observed``) and say why in the commit.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import pytest
import torch
from torch import Tensor

from imgforge.models.adain import AdaINDecoder
from imgforge.models.fast_style import TransformerNet
from imgforge.models.stylegan2 import Generator
from imgforge.models.translation import NLayerDiscriminator, ResnetGenerator, UnetGenerator
from imgforge.ops.stats import adain

ATOL, RTOL = 1e-5, 1e-4  # fp32 summation-order differences between CPUs are ~1e-6 relative
N_SLICE = 8


def _seeded(seed: int, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _build(factory: Callable[[], torch.nn.Module], seed: int = 0, he: bool = True) -> torch.nn.Module:
    """``factory()`` after ``torch.manual_seed(seed)``; then (``he``) every conv/linear weight redrawn He-normal
    (seeded), so that activations keep their scale through depth and every layer shows in the output (PyTorch's
    default initialisation shrinks them ~10x per U-Net level; StyleGAN2's equalised layers need no such help), and
    BatchNorm statistics made non-trivial."""
    torch.manual_seed(seed)
    net = factory().float().eval()
    gen = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for p in net.parameters():
            if he and p.dim() >= 2:
                p.normal_(0.0, (2.0 / p[0].numel()) ** 0.5, generator=gen)
    for name, buf in net.named_buffers():
        if buf.is_floating_point() and "running_var" in name:
            buf.copy_(0.5 + torch.rand(buf.shape, generator=torch.Generator().manual_seed(seed + 1)))
        elif buf.is_floating_point() and "running_mean" in name:
            buf.copy_(0.1 * _seeded(seed + 2, *buf.shape))
    return net.requires_grad_(False)


def _unet() -> Tuple[torch.nn.Module, Callable[[torch.nn.Module], Tensor]]:
    net = _build(lambda: UnetGenerator(3, 3, num_downs=5, ngf=4, norm="batch", use_dropout=True))
    return net, lambda m: m(_seeded(10, 1, 3, 64, 64).tanh())


def _resnet() -> Tuple[torch.nn.Module, Callable[[torch.nn.Module], Tensor]]:
    net = _build(lambda: ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=2))
    return net, lambda m: m(_seeded(11, 1, 3, 16, 16).tanh())


def _patchgan() -> Tuple[torch.nn.Module, Callable[[torch.nn.Module], Tensor]]:
    net = _build(lambda: NLayerDiscriminator(6, ndf=4, n_layers=3, norm="batch"))
    return net, lambda m: m(_seeded(12, 1, 6, 48, 48).tanh())


def _fast_style() -> Tuple[torch.nn.Module, Callable[[torch.nn.Module], Tensor]]:
    net = _build(TransformerNet)
    return net, lambda m: m(_seeded(13, 1, 3, 16, 16).sigmoid() * 255)


def _adain_decoder() -> Tuple[torch.nn.Module, Callable[[torch.nn.Module], Tensor]]:
    net = _build(AdaINDecoder)
    content, style = _seeded(14, 1, 512, 3, 4).relu(), (_seeded(15, 1, 512, 5, 5) * 2 + 0.5).relu()
    return net, lambda m: m(adain(content, style))


def _stylegan2() -> Tuple[torch.nn.Module, Callable[[torch.nn.Module], Tensor]]:
    net = _build(lambda: Generator(16, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16}), he=False)

    def run(m: torch.nn.Module) -> Tensor:
        ws = m.mapping(_seeded(16, 2, m.z_dim), truncation_psi=1.0)
        img = m.synthesis(ws, noise_mode="const")
        return torch.cat([ws.flatten(), img.flatten()])  # mapping and synthesis both anchored

    return net, run


CASES: Dict[str, Callable[[], Tuple[torch.nn.Module, Callable[[torch.nn.Module], Tensor]]]] = {
    "unet_generator": _unet,
    "resnet_generator": _resnet,
    "patchgan_discriminator": _patchgan,
    "fast_style": _fast_style,
    "adain_decoder": _adain_decoder,
    "stylegan2": _stylegan2,
}


def _observed(out: Tensor) -> Tuple[List[float], float, float]:
    flat = out.detach().double().flatten()
    idx = torch.linspace(0, flat.numel() - 1, N_SLICE).round().long()
    return flat[idx].tolist(), flat.mean().item(), flat.abs().mean().item()


# name -> (values at N_SLICE evenly spaced flat indices, mean, mean |x|); from the code at the time of writing
EXPECTED: Dict[str, Tuple[List[float], float, float]] = {
    "unet_generator": ([0.2546237, -0.8740289, -0.3677083, 0.4936493, 0.5709911, -0.217097, 0.7836038, 0.1312604],
        -0.02375857, 0.418875),
    "resnet_generator": ([0.4012541, -0.6872829, 0.1815728, -0.1588001, -0.08134415, -0.6368331, -0.5980439, -0.05443202],
        -0.01076225, 0.4955941),
    "patchgan_discriminator": ([0.2172596, 0.2654835, -0.1645039, -1.052299, 0.7822148, -0.5667018, 0.4566141, 0.09691927],
        -0.0497827, 0.3939328),
    "fast_style": ([-1.006011, -1.54594, -1.288042, 0.4973502, 0.722645, -1.057805, -0.7371616, 1.639541],
        -0.2667859, 0.8012566),
    "adain_decoder": ([-2.461518, -3.032638, -2.135221, -2.871081, -4.582367, -6.220264, -6.917179, -6.552372],
        -4.27462, 4.27462),
    "stylegan2": ([0.8108214, -0.2324249, -0.612798, 1.080133, 0.1343411, 0.3434242, 0.4587951, -0.3282211],
        0.1577414, 0.7403525),
}



def _matches(observed: Tuple[List[float], float, float], expected: Tuple[List[float], float, float]) -> bool:
    got = torch.tensor([*observed[0], observed[1], observed[2]], dtype=torch.float64)
    want = torch.tensor([*expected[0], expected[1], expected[2]], dtype=torch.float64)
    return bool(torch.allclose(got, want, atol=ATOL, rtol=RTOL))


@pytest.mark.parametrize("name", list(CASES))
def test_expected_values(name: str) -> None:
    net, run = CASES[name]()
    with torch.no_grad():
        observed = _observed(run(net))
    assert _matches(observed, EXPECTED[name]), f"{name}: got {observed}, expected {EXPECTED[name]}"


@pytest.mark.parametrize("name", list(CASES))
def test_expected_values_catch_a_changed_weight(name: str) -> None:
    """The anchors are sensitive: noise of 10% of its spread added to one weight tensor (the first, a middle one or
    the last) moves them beyond tolerance."""
    net, run = CASES[name]()
    weights = [p for p in net.parameters() if p.dim() >= 2 and p.std() > 0]  # conv / linear weights
    for p in (weights[0], weights[len(weights) // 2], weights[-1]):
        with torch.no_grad():
            saved = p.clone()
            p.add_(0.1 * p.std() * _seeded(99, *p.shape))
            observed = _observed(run(net))
            p.copy_(saved)
        assert not _matches(observed, EXPECTED[name]), f"{name}: a changed weight ({tuple(p.shape)}) went unnoticed"
