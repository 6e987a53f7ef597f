"""Patch-based texture synthesis: Efros–Leung repeats a periodic sample's period; quilting's cut beats random blocks."""

from __future__ import annotations

import time

import pytest
import torch

from imgforge.errors import UsageError
from imgforge.methods.texture_patch import efros_leung, min_cut_mask, quilting


def checkerboard(size: int, square: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    board = (((yy // square) + (xx // square)) % 2).float()
    return torch.stack([board, 0.5 * board + 0.25, 1 - board])


def autocorr_x(img: torch.Tensor, lag: int) -> float:
    x = img.mean(0)
    x = x - x.mean()
    return float((x[:, :-lag] * x[:, lag:]).mean() / x.pow(2).mean())


@pytest.mark.parametrize("order", ["onion", "scanline"])
def test_efros_leung_repeats_the_period_of_a_checkerboard(order):
    sample = checkerboard(32, 4)  # period 8, smaller than the window
    g = torch.Generator().manual_seed(0)
    out = efros_leung(sample, 32, 32, window=9, epsilon=0.1, order=order, generator=g)
    assert out.shape == (3, 32, 32)
    assert autocorr_x(out, 8) > 0.8  # a peak at the period
    assert autocorr_x(out, 4) < -0.5  # and a trough at half of it
    # every output pixel is a pixel of the sample
    colours = {tuple(v) for v in sample.flatten(1).T.tolist()}
    assert all(tuple(v) in colours for v in out.flatten(1).T.tolist())


def test_efros_leung_is_repeatable_with_a_seed_and_seconds_for_128_from_64():
    g = torch.Generator().manual_seed(3)
    sample = torch.rand(3, 64, 64, generator=g)
    a = efros_leung(sample[:, :20, :20], 12, 12, window=5, generator=torch.Generator().manual_seed(1))
    b = efros_leung(sample[:, :20, :20], 12, 12, window=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.slow
def test_efros_leung_128_from_64_takes_seconds():
    sample = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    t = time.perf_counter()
    efros_leung(sample, 128, 128, window=11, generator=torch.Generator().manual_seed(0))
    assert time.perf_counter() - t < 60


def test_min_cut_follows_the_cheap_path():
    err = torch.ones(6, 5)
    err[:, 2] = 0  # a free column
    mask = min_cut_mask(err)
    assert torch.equal(mask[:, 2:], torch.ones(6, 3)) and torch.equal(mask[:, :2], torch.zeros(6, 2))


def test_quilting_overlap_error_is_below_random_placement():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    sample = torch.stack([torch.sin(xx / 3) * 0.5 + 0.5, torch.cos(yy / 4) * 0.5 + 0.5, torch.sin((xx + yy) / 5) * 0.5 + 0.5])
    sample = (sample + 0.05 * torch.rand(3, 48, 48, generator=g)).clamp(0, 1)
    out, stats = quilting(sample, 60, 60, block=16, overlap=4, generator=torch.Generator().manual_seed(1))
    _, rand = quilting(sample, 60, 60, block=16, overlap=4, random_placement=True,
                       generator=torch.Generator().manual_seed(1))
    assert out.shape == (3, 60, 60) and stats.overlaps > 0
    assert stats.overlap_mse < 0.3 * rand.overlap_mse


def test_sample_smaller_than_window_or_block_is_a_usage_error():
    with pytest.raises(UsageError, match="smaller than the window"):
        efros_leung(torch.rand(3, 6, 6), 10, 10, window=7)
    with pytest.raises(UsageError, match="smaller than the block"):
        quilting(torch.rand(3, 10, 10), 20, 20, block=16)
    with pytest.raises(UsageError, match="odd"):
        efros_leung(torch.rand(3, 16, 16), 10, 10, window=4)
