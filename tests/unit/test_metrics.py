"""PSNR / SSIM against explicit reference computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from imgforge.metrics import gaussian_window, mse, psnr, psnr_from_mse, ssim


def _ref_ssim(x: np.ndarray, y: np.ndarray, L: float = 1.0, win: int = 11, sigma: float = 1.5) -> float:
    """Wang et al. 2004 written out with loops: Gaussian-weighted local statistics at every valid position."""
    r = np.arange(win) - (win - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    w2 = np.outer(g, g)
    w2 /= w2.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for c in range(x.shape[0]):
        per = []
        for i in range(x.shape[1] - win + 1):
            for j in range(x.shape[2] - win + 1):
                a = x[c, i:i + win, j:j + win]
                b = y[c, i:i + win, j:j + win]
                ma, mb = (w2 * a).sum(), (w2 * b).sum()
                va = (w2 * (a - ma) ** 2).sum()
                vb = (w2 * (b - mb) ** 2).sum()
                cov = (w2 * (a - ma) * (b - mb)).sum()
                per.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
        vals.append(np.mean(per))
    return float(np.mean(vals))


def test_psnr_known_values() -> None:
    x = torch.zeros(2, 3, 8, 8)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    y[1, :, :4] += 0.5  # half the pixels off by 0.5: MSE 0.125
    p = psnr(x, y)
    assert p[0].item() == pytest.approx(20.0, abs=1e-5)
    assert p[1].item() == pytest.approx(10 * math.log10(1 / 0.125), abs=1e-5)
    assert math.isinf(psnr(x, x)[0].item())
    assert psnr(x * 255, y * 255, data_range=255.0)[0].item() == pytest.approx(20.0, abs=1e-6)
    assert psnr_from_mse(0.01) == pytest.approx(20.0)


def test_masked_mse_counts_only_masked_pixels() -> None:
    x = torch.zeros(1, 3, 4, 4)
    y = torch.zeros(1, 3, 4, 4)
    y[..., :2, :] = 0.2  # error only in the top half
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2, :] = 1
    assert mse(x, y, m).item() == pytest.approx(0.04)
    assert mse(x, y, 1 - m).item() == 0.0
    with pytest.raises(ValueError):
        mse(x, y, torch.zeros(1, 1, 4, 4))


def test_ssim_matches_loop_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3, 16, 14))
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    got = ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item()
    assert got == pytest.approx(_ref_ssim(x, y), abs=1e-10)
    # batch of two: each image on its own
    both = ssim(torch.from_numpy(np.stack([x, y])), torch.from_numpy(np.stack([y, x])))
    assert both[0].item() == pytest.approx(both[1].item(), abs=1e-12)  # symmetric


def test_ssim_properties() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 20, 20, generator=g)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)
    s1 = ssim(x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)).item()
    s2 = ssim(x, (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)).item()
    assert 1.0 > s1 > s2
    # small images: the window shrinks to fit and the value stays well defined
    small = torch.rand(1, 3, 6, 6, generator=g)
    assert ssim(small, small).item() == pytest.approx(1.0)
    w = gaussian_window(11, 1.5)
    assert w.sum().item() == pytest.approx(1.0) and w.argmax().item() == 5
