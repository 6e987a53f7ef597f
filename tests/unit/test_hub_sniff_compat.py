"""Format sniffing and converter guessing on the real-format fixture files of ../shared/compat (nothing executed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgforge.errors import WeightsError
from imgforge.hub.store import guess_converter, sniff_format
from tests.conftest import require

pytestmark = pytest.mark.compat

CASES = [
    ("style/F/checkpoint.pth", "torch_legacy", "fast_style"),
    ("style/G/decoder.pth", "torch_legacy", "adain_decoder"),
    ("stylegan/S1/ckpt_converted.pt", "torch_zip", "rosinality_stylegan2"),
    ("stylegan/S1/ckpt_train.pt", "torch_zip", "rosinality_stylegan2"),  # argparse.Namespace inside: refused, named
    ("stylegan/S2/network-snapshot-000000.pkl", "nvidia_pkl", "nvidia_stylegan2_pkl"),
    ("translation/A/latest_net_G.pth", "torch_zip", "translation_generator"),
    ("translation/A/legacy_net_G.pth", "torch_zip", "translation_generator"),
    ("translation/C/latest_net_G.pth", "torch_zip", "translation_generator"),
    ("translation/D/latest_net_G.pth", "torch_zip", "translation_generator"),
]


@pytest.mark.parametrize("rel,fmt,conv", CASES, ids=[c[0] for c in CASES])
def test_guess_on_fixture(compat_dir: Path, rel: str, fmt: str, conv: str) -> None:
    path = require(compat_dir / rel)
    assert sniff_format(path) == fmt
    assert guess_converter(path) == conv


def test_malicious_torch_file_refused_without_running(compat_dir: Path) -> None:
    path = require(compat_dir / "stylegan/S1/malicious.pt")
    with pytest.raises(WeightsError) as ei:
        guess_converter(path)
    assert "--format" in str(ei.value)


def test_discriminator_is_not_taken_for_a_generator(compat_dir: Path) -> None:
    path = require(compat_dir / "translation/E/basic_batch_in6/latest_net_D.pth")
    with pytest.raises(WeightsError) as ei:
        guess_converter(path)
    assert "discriminator" in str(ei.value)


def test_nvidia_pickles_are_only_sniffed(compat_dir: Path) -> None:
    # Sniffing reads bytes only; the malicious pickles are left to the converter's restricted unpickler.
    for name in ("malicious.pkl", "malicious_reduce.pkl", "malicious_storage.pkl"):
        assert sniff_format(require(compat_dir / "stylegan/S2" / name)) == "nvidia_pkl"
