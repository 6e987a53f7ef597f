"""Tiny translation datasets and configs shared by the training, CLI and DDP tests (no tests here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]

#: CLI options of a tiny, fast network (32 px, width 8).
TINY_PIX2PIX = ["--netG", "unet_32", "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32"]
TINY_CYCLEGAN = ["--netG", "resnet_1blocks", "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32"]


def _pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colourful picture (learnable, unlike noise)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
        chans.append(127.5 + 110 * np.sin(2 * np.pi * (fx * xx + fy * yy) + ph))
    return np.clip(np.stack(chans, -1) + rng.normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)


def make_aligned(root: Path, n_train: int = 6, n_val: int = 2, size: int = 40, seed: int = 0) -> Path:
    """``root/train`` and ``root/val`` of side-by-side pairs (A | B with B = inverted A)."""
    rng = np.random.default_rng(seed)
    for phase, n in (("train", n_train), ("val", n_val)):
        (root / phase).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = _pattern(rng, size, size)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(root / phase / f"{i}.png")
    return root


def make_unaligned(root: Path, n: int = 3, size: int = 36, seed: int = 1) -> Path:
    """``trainA/trainB/testA/testB`` with file names containing spaces."""
    rng = np.random.default_rng(seed)
    for sub in ("trainA", "trainB", "testA", "testB"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = _pattern(rng, size, size + 4 * i)
            Image.fromarray(img if sub.endswith("A") else 255 - img).save(root / sub / f"{sub[-1]} img {i}.png")
    return root


def cli(*args: str) -> List[str]:
    """Command line of ``python -m imgforge ARGS``."""
    return [sys.executable, "-m", "imgforge", *args]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run on one intra-op thread: on a shared 2-core machine two OpenMP threads can wait on each other for
    seconds per step; one thread makes the tiny networks of these tests fast and their timings stable. Import it
    into a test module to use it there."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


#: Environment for subprocesses (one thread, for the same reason).
def subprocess_env(**extra: str) -> dict:
    import os

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.update(extra)
    return env
