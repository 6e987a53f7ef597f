"""Compat fixtures F (fast-neural-style) and G (AdaIN) through the command line: ``imgforge stylize --method fast``
and ``--method adain`` read the published-format files and write PNGs equal to the reference's saved images within
one grey level.

The fixtures' inputs are whole uint8 images (F: 0..255 values; G: k/255), so they are written as PNGs exactly. The
reference saves F with ``clamp(0, 255)`` and a truncating uint8 cast, G with torchvision ``save_image`` (clamp to
[0, 1], x255, round). The CLI runs in-process (typer's CliRunner) to keep the test fast; ``--precision fp32``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from imgforge.cli.app import app
from tests.compat.test_style_compat import _in_affine, _regenerate
from tests.conftest import require

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("one_thread")]


def _cli(args: List[str], cwd: Path) -> None:
    res = CliRunner().invoke(app, ["--precision", "fp32", "--quiet", *args], catch_exceptions=False,
                             env={"IMGFORGE_OFFLINE": "1"})
    assert res.exit_code == 0, res.output


def _png(t: torch.Tensor, path: Path) -> Path:
    """(3, H, W) uint8-valued tensor -> PNG."""
    Image.fromarray(t.permute(1, 2, 0).round().to(torch.uint8).numpy()).save(path)
    return path


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int64)


# ------------------------------------------------------------------ F


@pytest.mark.parametrize("key", ["output", "output_in_affine"])
def test_F_fast_cli(compat_dir: Path, tmp_path: Path, key: str) -> None:
    fdir = require(compat_dir / "style" / "F")
    x = load_file(str(require(fdir / "input.safetensors")))["input"]
    want = load_file(str(require(fdir / "expected.safetensors")))[key]
    ckpt = require(fdir / "checkpoint.pth")
    if key == "output_in_affine":  # the same published-format file with the README's InstanceNorm affine values
        raw = torch.load(str(ckpt), map_location="cpu", weights_only=True)
        legacy = {k: v for k, v in raw.items() if re.search(r"in\d+\.running_(mean|var)$", k)}
        kept = _in_affine({k: v for k, v in raw.items() if k not in legacy})
        sd = OrderedDict((k, kept.get(k, raw[k])) for k in raw)
        ckpt = tmp_path / "affine.pth"
        torch.save(sd, ckpt, _use_new_zipfile_serialization=False)
    src = _png(x[0], tmp_path / "in.png")
    _cli(["stylize", str(src), "--method", "fast", "--model", str(ckpt), "-o", str(tmp_path / "out.png")], tmp_path)
    ref = want[0].clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy().astype(np.int64)  # truncating, as saved
    got = _read(tmp_path / "out.png")
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1


# ------------------------------------------------------------------ G


@pytest.fixture(scope="module")
def g_files(compat_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    gdir = require(compat_dir / "style" / "G")
    d = tmp_path_factory.mktemp("g_cli")
    vgg = d / "vgg_normalised.pth"
    torch.save(_regenerate(require(gdir / "recipe_vgg_normalised.json")), vgg, _use_new_zipfile_serialization=False)
    inputs = load_file(str(require(gdir / "inputs.safetensors")))
    files = {k: _png(inputs[k][0] * 255, d / f"{k}.png") for k in ("content", "style", "style2")}
    files.update(vgg=vgg, decoder=require(gdir / "decoder.pth"), expected=require(gdir / "expected.safetensors"))
    return files


_CASES = {
    "output_alpha_1.0": ["--style", "{style}"],
    "output_alpha_0.6": ["--style", "{style}", "--alpha", "0.6"],
    "output_interp_0.7_0.3": ["--style", "{style}", "--style", "{style2}", "--style-weights", "7,3"],
    "output_preserve_color": ["--style", "{style}", "--preserve-color"],
}


@pytest.mark.parametrize("key", list(_CASES))
def test_G_adain_cli(g_files: Dict[str, Path], tmp_path: Path, key: str) -> None:
    opts = [a.format(style=g_files["style"], style2=g_files["style2"]) for a in _CASES[key]]
    out = tmp_path / "out.png"
    _cli(["stylize", str(g_files["content"]), "--method", "adain", "--encoder", str(g_files["vgg"]),
          "--decoder", str(g_files["decoder"]), "--style-size", "0", *opts, "-o", str(out)], tmp_path)
    want = load_file(str(g_files["expected"]))[key][0]
    ref = want.clamp(0, 1).mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy().astype(np.int64)
    got = _read(out)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1
