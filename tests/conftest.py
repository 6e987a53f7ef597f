"""Shared fixtures: where the compatibility fixtures and the real images are, with clear skip reasons."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


# The tests use tiny tensors, for which intra-op threads cost more than they give (and a loaded machine makes
# them much slower); IMGFORGE_TEST_THREADS overrides.
torch.set_num_threads(int(os.environ.get("IMGFORGE_TEST_THREADS", "1")))


def compat_root() -> Path:
    """``IMGFORGE_COMPAT_DIR`` or ``../shared/compat`` next to the repository."""
    return Path(os.environ.get("IMGFORGE_COMPAT_DIR", REPO.parent / "shared" / "compat"))


def data_root() -> Path:
    """``IMGFORGE_DATA_DIR`` or ``../shared/data`` next to the repository."""
    return Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    root = compat_root()
    if not root.is_dir():
        pytest.skip(f"compat fixtures not found at {root} (set IMGFORGE_COMPAT_DIR to a fixture set of the shared/compat layout)")
    return root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"real images not found at {root} (set IMGFORGE_DATA_DIR to a folder of the shared/data layout)")
    return root


def require(path: Path) -> Path:
    """Skip the calling test with a clear reason when ``path`` does not exist."""
    if not path.exists():
        pytest.skip(f"fixture missing: {path}")
    return path
