"""ImagePool: the reference's history-buffer semantics, seeded, with state save/restore."""

from __future__ import annotations

import random

import pytest
import torch

from imgforge.training.image_pool import ImagePool


def _batch(start: int, n: int) -> torch.Tensor:
    """Images whose every pixel holds its id, so returned images can be identified."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, 3, 3).clone()


def _ids(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t[:, 0, 0, 0]]


def test_pool_size_zero_passes_through() -> None:
    pool = ImagePool(0)
    x = _batch(0, 3).requires_grad_(True)
    assert pool.query(x) is x


def test_filling_returns_inputs_detached() -> None:
    pool = ImagePool(5, rng=random.Random(0))
    x = _batch(0, 3).requires_grad_(True)
    out = pool.query(x)
    assert _ids(out) == [0, 1, 2] and not out.requires_grad and pool.num_imgs == 3
    out = _ids(pool.query(_batch(3, 4)))  # fills up to 5; the 6th and 7th image already go through the coin
    assert out[:2] == [3, 4] and all(i in range(7) for i in out[2:])
    assert pool.num_imgs == 5


def test_full_pool_semantics_follow_the_coin() -> None:
    pool = ImagePool(4, rng=random.Random(123))
    pool.query(_batch(0, 4))
    shadow = list(range(4))
    mirror = random.Random(123)  # the same draws, replayed: uniform(0,1) > 0.5 -> swap with randint(0, size-1)
    swapped = kept = 0
    for step in range(30):
        new = 100 + step
        out = _ids(pool.query(_batch(new, 1)))[0]
        if mirror.uniform(0, 1) > 0.5:
            idx = mirror.randint(0, 3)
            assert out == shadow[idx]
            shadow[idx] = new
            swapped += 1
        else:
            assert out == new
            kept += 1
        assert sorted(_ids(torch.cat(pool.images))) == sorted(shadow)
    assert swapped > 5 and kept > 5


def test_returned_old_image_is_a_clone() -> None:
    pool = ImagePool(1, rng=random.Random(0))
    pool.query(_batch(0, 1))
    for step in range(20):
        out = pool.query(_batch(10 + step, 1))
        out.mul_(0)  # must never corrupt what the pool stores
    assert all(int(t.abs().sum()) > 0 for t in pool.images)


def test_state_roundtrip_reproduces_the_future() -> None:
    a = ImagePool(3, rng=random.Random(7))
    a.query(_batch(0, 5))
    state = a.state_dict()
    b = ImagePool(3, rng=random.Random(999))
    b.load_state_dict(state)
    for step in range(10):
        assert torch.equal(a.query(_batch(50 + 2 * step, 2)), b.query(_batch(50 + 2 * step, 2)))
    with pytest.raises(ValueError):
        ImagePool(4).load_state_dict(state)
    with pytest.raises(ValueError):
        ImagePool(-1)
