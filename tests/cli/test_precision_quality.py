"""Default precision keeps quality: on a CPU where ``--precision auto`` means bf16 (forced here with
``IMGFORGE_CPU_BF16=1``), every method's saved output stays >= 40 dB PSNR against the ``--precision fp32`` output.

Each case runs the real command twice in-process (default precision, then ``--precision fp32``) on a small real
image (``examples/images``) with the shipped weights where the method needs them, and compares the written 8-bit
files. Translation uses tiny seeded generators in the published layouts (no translation weights are shipped).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.hub.modelfile import save_model_file
from imgforge.models.translation import ResnetGenerator, UnetGenerator
from imgforge.runtime import Runtime
from tests.cli.helpers import REPO, photo
from tests.unit.test_expected_values import _build

MIN_PSNR_DB = 40.0
IMAGES = REPO / "examples" / "images"


def _psnr(a: Path, b: Path) -> float:
    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.float64)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.float64)
    assert x.shape == y.shape, (a, b)
    mse = float(((x - y) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.fixture()
def inputs(tmp_path: Path) -> Dict[str, Path]:
    d = tmp_path / "in"
    d.mkdir()
    content = Image.open(IMAGES / "astronaut.jpg").convert("RGB").resize((96, 96), Image.LANCZOS)
    content.save(d / "content.png")
    Image.open(IMAGES / "swirls.jpg").convert("RGB").resize((128, 128), Image.LANCZOS).save(d / "style.png")
    photo(5, (96, 96)).save(d / "style2.png")
    Image.open(IMAGES / "swirls.jpg").convert("RGB").resize((24, 24), Image.LANCZOS).save(d / "style_small.png")
    return {"content": d / "content.png", "style": d / "style.png", "style2": d / "style2.png",
            "style_small": d / "style_small.png"}


@pytest.fixture()
def translation_weights(tmp_path: Path) -> Dict[str, Path]:
    """pix2pix (U-Net, BatchNorm, dropout) and CycleGAN (ResNet, InstanceNorm) generators, seeded, saved as files."""
    out = {}
    for name, arch, kwargs in (
        ("pix2pix", "unet_generator", dict(input_nc=3, output_nc=3, num_downs=5, ngf=16, norm="batch", use_dropout=True)),
        ("cyclegan", "resnet_generator", dict(input_nc=3, output_nc=3, ngf=16, norm="instance", n_blocks=2)),
    ):
        cls = UnetGenerator if arch == "unet_generator" else ResnetGenerator
        G = _build(lambda: cls(**kwargs))  # He-normal weights: outputs spread over the range, not saturated
        with torch.no_grad():  # the last conv scaled down so that Tanh is not saturated everywhere
            [p for p in G.parameters() if p.dim() >= 2][-1].mul_(0.3)
        out[name] = save_model_file(tmp_path / f"{name}.safetensors", G.state_dict(), arch=arch, arch_kwargs=kwargs)
    return out


def _invoke(args: List[str], fp32: bool) -> None:
    prefix = ["--device", "cpu", "--quiet", "--seed", "0"] + (["--precision", "fp32"] if fp32 else [])
    res = CliRunner().invoke(app, prefix + args, env={"IMGFORGE_OFFLINE": "1", "IMGFORGE_CPU_BF16": "1"})
    assert res.exit_code == 0, res.output


CASES: Dict[str, Callable[[Dict[str, Path], Dict[str, Path]], List[str]]] = {
    "gatys": lambda i, w: ["stylize", str(i["content"]), "--style", str(i["style"]), "--size", "64", "-n", "10"],
    "fast": lambda i, w: ["stylize", str(i["content"]), "--method", "fast"],
    "adain": lambda i, w: ["stylize", str(i["content"]), "--method", "adain", "--style", str(i["style"])],
    "adain_preserve_color": lambda i, w: ["stylize", str(i["content"]), "--method", "adain", "--style", str(i["style"]),
                                          "--preserve-color"],
    # a content with 16x the style's pixels: CORAL used to give the style 4x the contrast (41 dB, 77% clipped)
    "adain_preserve_color_small_style": lambda i, w: ["stylize", str(i["content"]), "--method", "adain", "--style",
                                                      str(i["style_small"]), "--preserve-color"],
    "adain_two_styles": lambda i, w: ["stylize", str(i["content"]), "--method", "adain", "--style", str(i["style"]),
                                      "--style", str(i["style2"]), "--style-weights", "0.7,0.3"],
    "pix2pix_apply": lambda i, w: ["pix2pix", "apply", str(i["content"]), "--weights", str(w["pix2pix"]), "--eval"],
    "cyclegan_apply": lambda i, w: ["cyclegan", "apply", str(i["content"]), "--weights", str(w["cyclegan"])],
}


def test_auto_is_bf16_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGFORGE_CPU_BF16", "1")
    assert Runtime.create("cpu", "auto").dtype == torch.bfloat16


@pytest.mark.parametrize("case", list(CASES))
def test_default_precision_psnr(case: str, inputs: Dict[str, Path], translation_weights: Dict[str, Path],
                                tmp_path: Path) -> None:
    outs = {}
    for fp32 in (False, True):
        outs[fp32] = tmp_path / f"{case}-{'fp32' if fp32 else 'auto'}.png"
        _invoke(CASES[case](inputs, translation_weights) + ["-o", str(outs[fp32])], fp32)
    value = _psnr(outs[True], outs[False])
    print(f"{case}: {value:.1f} dB")
    assert value >= MIN_PSNR_DB, f"{case}: default precision (bf16) output {value:.1f} dB from the fp32 output"


def test_preserve_color_contrast_does_not_grow_with_the_content(inputs: Dict[str, Path], tmp_path: Path) -> None:
    """--preserve-color recolours the style to the content's colour statistics whatever their sizes: the fp32 output
    of a 96 px content with a 24 px style is an image, not mostly clipped (was 77% of its values at 0 or 255)."""
    out = tmp_path / "pc.png"
    _invoke(CASES["adain_preserve_color_small_style"](inputs, {}) + ["-o", str(out)], fp32=True)
    a = np.asarray(Image.open(out).convert("RGB"))
    clipped = float(((a == 0) | (a == 255)).mean())
    assert clipped < 0.05, clipped


def test_default_precision_psnr_generate(tmp_path: Path) -> None:
    """StyleGAN2 (the shipped digits model), four seeds."""
    for fp32 in (False, True):
        _invoke(["generate", "--seeds", "0-3", "--out-dir", str(tmp_path / str(fp32))], fp32)
    values = [_psnr(tmp_path / "True" / f"seed{s:04d}.png", tmp_path / "False" / f"seed{s:04d}.png") for s in range(4)]
    print("generate: " + ", ".join(f"{v:.1f}" for v in values) + " dB")
    assert min(values) >= MIN_PSNR_DB, values


def test_default_precision_psnr_invert(tmp_path: Path, inputs: Dict[str, Path]) -> None:
    """Inversion into the shipped digits model (a short optimisation: the two precisions' paths stay close)."""
    for fp32 in (False, True):
        _invoke(["invert", str(inputs["content"]), "--steps", "20", "--out-dir", str(tmp_path / str(fp32))], fp32)
    value = _psnr(tmp_path / "True" / "content.png", tmp_path / "False" / "content.png")
    print(f"invert: {value:.1f} dB")
    assert value >= MIN_PSNR_DB, value
