"""StyleGAN noise control: layer selection specs and the zero-noise layers."""

from __future__ import annotations

import pytest
import torch

from imgforge.errors import UsageError
from imgforge.methods.noise_control import layered_noise, noise_layer_mask, pixel_std

RES_1024 = [4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024]
RES_32 = [4, 8, 8, 16, 16, 32, 32]


def test_specs():
    assert noise_layer_mask(RES_32, "all") == [True] * 7 and noise_layer_mask(RES_32, "none") == [False] * 7
    coarse = noise_layer_mask(RES_1024, "coarse")
    assert [r for r, c in zip(RES_1024, coarse) if c] == [4, 8, 8, 16, 16, 32, 32]  # the paper's 4²-32²
    fine = noise_layer_mask(RES_1024, "fine")
    assert all(c != f for c, f in zip(coarse, fine))
    assert [r for r, c in zip(RES_32, noise_layer_mask(RES_32, "coarse")) if c] == [4, 8, 8]
    assert noise_layer_mask(RES_32, "2-3") == [False, False, True, True, False, False, False]
    assert noise_layer_mask(RES_32, "6") == [False] * 6 + [True]
    for bad in ("7", "3-1", "some"):
        with pytest.raises(UsageError, match="--noise-layers"):
            noise_layer_mask(RES_32, bad)


def test_layered_noise_zeroes_the_unselected_layers_and_keeps_the_stream():
    bufs = [torch.zeros(1, 1, r, r) for r in RES_32]
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2)]  # noqa: E731
    full = layered_noise(bufs, "all", gens())
    some = layered_noise(bufs, "coarse", gens())
    assert [n.shape for n in full] == [(2, 1, r, r) for r in RES_32]
    for f, s, keep in zip(full, some, noise_layer_mask(RES_32, "coarse")):
        assert torch.equal(s, f) if keep else not s.any()
    assert pixel_std(torch.ones(5, 3, 4, 4)).abs().max() == 0
