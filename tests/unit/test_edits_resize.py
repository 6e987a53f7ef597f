"""Antialiased resize: same numbers as Pillow's ``Image.resize`` on float images; differentiable; downscale rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.ops.resize import KERNELS, downscale, resize, resize_matrix

_PIL = {"box": Image.BOX, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", [(32, 32, 8, 8), (37, 29, 10, 13), (8, 8, 32, 32), (13, 17, 40, 31)])
def test_matches_pillow_float(kernel: str, shape: tuple) -> None:
    H, W, h, w = shape
    a = np.random.default_rng(H * W).random((H, W)).astype(np.float32)
    ref = np.asarray(Image.fromarray(a, mode="F").resize((w, h), _PIL[kernel]))
    got = resize(torch.from_numpy(a).double(), (h, w), kernel).numpy()
    assert np.abs(got - ref).max() < 1e-6


def test_rows_sum_to_one_and_box_is_area_average() -> None:
    for k in KERNELS:
        assert torch.allclose(resize_matrix(32, 8, k).sum(1), torch.ones(8, dtype=torch.float64))
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.allclose(downscale(x, 2, "box"), x.view(1, 1, 2, 2, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(
        1, 1, 2, 2, 4).mean(-1))


def test_differentiable_batched_and_errors() -> None:
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    y = downscale(x, 4)
    assert y.shape == (2, 3, 4, 4)
    y.sum().backward()
    assert x.grad is not None and torch.allclose(x.grad.sum(), torch.tensor(2 * 3 * 16.0), rtol=1e-5)
    with pytest.raises(ValueError):
        downscale(x, 3)
    with pytest.raises(ValueError):
        resize_matrix(4, 2, "nearest-ish")
    with pytest.raises(TypeError):
        resize(torch.zeros(1, 4, 4, dtype=torch.uint8), (2, 2))
