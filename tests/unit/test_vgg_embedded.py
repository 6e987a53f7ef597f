"""The embedded-encoder recipe (weights/recipes/make_embedded_encoder.py) on tiny widths and images."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn as nn

from tests.conftest import REPO

_PATH = REPO / "weights" / "recipes" / "make_embedded_encoder.py"
TINY = (4, 4, 8, 8, 8)


@pytest.fixture(scope="module")
def recipe():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_embedded_encoder", _PATH)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _images() -> list:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(1, 3, 32, 24, generator=g, dtype=torch.float64), torch.rand(1, 3, 20, 32, generator=g, dtype=torch.float64)]


def test_splitmix_matches_fxh16(recipe) -> None:  # type: ignore[no-untyped-def]
    # the pure-Python big-integer form of the splitmix64 finaliser
    mask = (1 << 64) - 1

    def ref(seed: int, t: int, j: int) -> int:
        z = (((seed << 40) | (t << 32) | j) + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return ((z ^ (z >> 31)) >> 53) - 1024

    got = recipe.splitmix_ints(1201, 3, 50)
    assert got.tolist() == [ref(1201, 3, j) for j in range(50)]


def test_sample_patches_equals_unfold(recipe) -> None:  # type: ignore[no-untyped-def]
    a = torch.rand(1, 5, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pos = np.array([0, 8, 62, 30, 17])
    want = torch.nn.functional.unfold(a, 3, padding=1)[0][:, torch.from_numpy(pos)]
    assert torch.equal(recipe.sample_patches(a, pos), want)


def test_build_is_deterministic_and_normalised(recipe) -> None:  # type: ignore[no-untyped-def]
    imgs = _images()
    kw = dict(widths=TINY, last_layer="relu3_1", normalise="standardise", data_mix=0.5, patch_samples=256)
    m1 = recipe.build_encoder(imgs, **kw)
    m2 = recipe.build_encoder(imgs, **kw)
    for (k, v), w in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v, w), k
    # each channel's mean post-ReLU activation over the data is 1 (scales rounded to 8 significant bits)
    with torch.no_grad():
        for layer in ("relu1_1", "relu2_1", "relu3_1"):
            acts = [m1(x, (layer,))[layer] for x in imgs]
            total = sum(a.sum(dim=(0, 2, 3)) for a in acts)
            count = sum(a.shape[2] * a.shape[3] for a in acts)
            assert torch.allclose(total / count, torch.ones_like(total), rtol=5e-3), layer
    other = recipe.build_encoder(imgs, **{**kw, "seed": 7})
    assert not torch.equal(other.features[0].weight, m1.features[0].weight)
    # data-shaped filters: the first half of each conv's channels differ from the purely random recipe
    plain = recipe.build_encoder(imgs, **{**kw, "data_mix": 0.0})
    convs = [m for m in m1.features if isinstance(m, nn.Conv2d)]
    pconvs = [m for m in plain.features if isinstance(m, nn.Conv2d)]
    assert not torch.allclose(convs[1].weight[:2], pconvs[1].weight[:2])
