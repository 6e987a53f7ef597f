"""Linear baselines: PCA of digits (explained variance, monotone reconstruction) and seeded Perlin noise."""

from __future__ import annotations

import pytest
import torch

from imgforge.errors import UsageError
from imgforge.methods.pca import fit_pca
from imgforge.methods.perlin import perlin, perlin_octave


def _blobs(n: int, seed: int) -> torch.Tensor:
    """Images built from a few smooth patterns with random weights (a low-dimensional set, like aligned faces)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    basis = torch.stack([torch.exp(-((xx - a) ** 2 + (yy - b) ** 2) * 4) for a, b in
                         [(-0.5, -0.5), (0.5, 0.5), (0, 0.3), (-0.3, 0.6), (0.6, -0.4)]])
    w = torch.rand(n, 5, generator=g)
    return ((w @ basis.flatten(1)).reshape(n, 1, 16, 16) / 2 + 0.02 * torch.randn(n, 1, 16, 16, generator=g))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def test_pca_explained_variance_sums_to_one_and_reconstruction_improves_with_k():
    train, held_out = _blobs(60, 1), _blobs(20, 2)
    model = fit_pca(train)
    assert model.n_components == 59
    assert abs(float(model.explained.sum()) - 1.0) < 1e-9
    assert torch.all(model.explained[:-1] >= model.explained[1:])
    scores = [psnr(model.reconstruct(held_out, k), held_out) for k in (1, 2, 5, 20, 50)]
    assert all(b >= a - 1e-6 for a, b in zip(scores, scores[1:])), scores
    assert scores[2] > scores[0] + 5  # five patterns: five components explain nearly everything
    assert torch.allclose(model.reconstruct(train, 59), train, atol=1e-5)  # all components: exact on the data


def test_pca_samples_have_the_data_statistics():
    model = fit_pca(_blobs(200, 3), components=10)
    samples = model.sample(2000, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2000, 1, 16, 16)
    assert torch.allclose(samples.reshape(2000, -1).mean(0).double(), model.mean, atol=0.02)


def test_pca_component_count_errors():
    with pytest.raises(UsageError, match="--components 30"):
        fit_pca(_blobs(10, 4), components=30)
    with pytest.raises(UsageError, match="at least 2"):
        fit_pca(_blobs(1, 4))


def test_perlin_is_seeded_zero_on_the_lattice_and_in_range():
    a = perlin(40, 56, scale=8, octaves=3, generator=torch.Generator().manual_seed(5))
    b = perlin(40, 56, scale=8, octaves=3, generator=torch.Generator().manual_seed(5))
    c = perlin(40, 56, scale=8, octaves=3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (1, 40, 56) and float(a.min()) == 0.0 and float(a.max()) == 1.0
    one = perlin_octave(33, 33, 8.0, torch.Generator().manual_seed(0))
    assert torch.allclose(one[::8, ::8], torch.zeros(5, 5), atol=1e-6)
    # smooth: neighbouring pixels differ much less than random pixels do
    assert (one[:, 1:] - one[:, :-1]).abs().mean() < 0.4 * (one.flatten()[torch.randperm(one.numel(), generator=torch.Generator().manual_seed(0))] - one.flatten()).abs().mean()


def test_perlin_bad_options():
    with pytest.raises(UsageError, match="--octaves"):
        perlin(8, 8, octaves=0)
    with pytest.raises(UsageError, match="--persistence"):
        perlin(8, 8, persistence=0)
