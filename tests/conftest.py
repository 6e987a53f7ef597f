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


def assert_same_generator(a: Path, b: Path) -> None:
    """The two exported generator files hold the same tensors, bit for bit (exact-resume tests)."""
    from imgforge.hub.modelfile import load_model_file

    sa, sb = (load_model_file(p)[0].state_dict() for p in (a, b))
    assert sa.keys() == sb.keys()
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f"{len(differ)} tensor(s) differ, e.g. {differ[0]}"


class _Crash:
    """``with crash_at(Method, k): ...`` -- ``Method.step`` raises at step ``k`` (a simulated crash) inside the block,
    and is restored after it; the block expects the crash (``pytest.raises(RuntimeError)``)."""

    def __init__(self, cls: type, at_step: int) -> None:
        self.cls, self.at, self.orig = cls, at_step, cls.step

    def __enter__(self) -> "_Crash":
        orig, at = self.orig, self.at

        def crashing(self_, batch, step):  # type: ignore[no-untyped-def]
            if step == at:
                raise RuntimeError("simulated crash")
            return orig(self_, batch, step)

        self.cls.step = crashing  # type: ignore[method-assign]
        self._raises = pytest.raises(RuntimeError, match="simulated crash")
        self._raises.__enter__()
        return self

    def __exit__(self, *exc: object) -> bool:
        try:
            return bool(self._raises.__exit__(*exc))
        finally:
            self.cls.step = self.orig  # type: ignore[method-assign]


@pytest.fixture
def crash_at():  # type: ignore[no-untyped-def]
    """A training method's step that crashes at a given step (for exact-resume tests); see :class:`_Crash`."""
    return _Crash


@pytest.fixture(scope="module")
def one_thread():  # type: ignore[no-untyped-def]
    """One intra-op thread for a module of tiny models (``pytestmark = pytest.mark.usefixtures("one_thread")``): on
    a shared 2-core machine OpenMP threads waiting for a descheduled peer make tiny tensors 10-60x slower, and a
    fixed thread count keeps results bit-reproducible across processes."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
