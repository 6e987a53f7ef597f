"""Compatibility through the command line: ``imgforge pix2pix|cyclegan apply FILE.png --weights latest_net_G.pth
--eval`` on fixtures translation/A-D, with no architecture flags, reproduces the reference's ``eval`` output.

The fixture inputs are [-1, 1] tensors made from uint8 images (``value / 255`` then ``(v - 0.5) / 0.5``, see the
READMEs), so they are written as exact 8-bit PNGs (checked: the PNG maps back to the tensor bitwise). The CLI's PNG
output is compared with the reference output quantised the same way (``round((y + 1) / 2 * 255)``): allowed
difference 1 grey level (the reference and we may round a value that sits on a .5 boundary differently).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from imgforge.cli.app import app
from tests.conftest import require
from tests.unit.test_translation_train_support import one_thread  # noqa: F401 - one intra-op thread

pytestmark = pytest.mark.compat

FIXTURES = {"A": "cyclegan", "B": "cyclegan", "C": "pix2pix", "D": "pix2pix"}


def _quantise(x: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [-1, 1] -> ``(H, W, 3)`` uint8, as our PNG writer quantises."""
    return ((x + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_cli_apply_eval_reproduces_reference(compat_dir: Path, tmp_path: Path, fixture: str,
                                             record_property: Any) -> None:
    folder = compat_dir / "translation" / fixture
    x = load_file(str(require(folder / "input.safetensors")))["input"][0]
    expected = load_file(str(require(folder / "expected.safetensors")))["eval"][0]
    weights = require(folder / "latest_net_G.pth")
    u8 = _quantise(x)
    assert torch.equal((torch.from_numpy(u8).permute(2, 0, 1).float() / 255 - 0.5) / 0.5, x)  # exact 8-bit input
    src = tmp_path / "input.png"
    Image.fromarray(u8).save(src)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(app, ["--precision", "fp32", "--device", "cpu", FIXTURES[fixture], "apply", str(src),
                                   "--weights", str(weights), "--eval", "-o", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    got = np.asarray(Image.open(out).convert("RGB")).astype(np.int16)
    ref = _quantise(expected).astype(np.int16)
    diff = np.abs(got - ref)
    record_property("max_grey_level_diff", int(diff.max()))
    record_property("pixels_off_by_one", int((diff > 0).sum()))
    assert got.shape == ref.shape
    assert diff.max() <= 1, f"max difference {diff.max()} grey levels"
