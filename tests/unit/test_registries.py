"""Registries find their members (no hand-kept lists): architectures, converters, command groups."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_build_digit_classifier_in_a_fresh_process() -> None:
    """The digit classifier is found without anyone importing imgforge.data.mnist first."""
    out = _fresh("import sys; from imgforge.models.registry import build; m = build('mnist_digit_classifier');"
                 "print(type(m).__name__, 'imgforge.data.mnist' in sys.modules)")
    assert out == "DigitClassifier False"


def test_every_model_module_and_converter_is_found() -> None:
    from imgforge.discovery import package_modules
    from imgforge.hub.converters import converter_names
    from imgforge.models.registry import known

    assert "imgforge.models.digits" in package_modules("imgforge.models")
    assert {"vgg19", "stylegan2_generator", "stylegan2_discriminator", "fast_style", "mnist_digit_classifier"} <= set(known())
    files = {p.stem for p in (REPO / "imgforge" / "hub").glob("convert_*.py")}
    assert files == {m.rsplit(".", 1)[-1] for m in package_modules("imgforge.hub", prefix="convert_")}
    assert {"torchvision_vgg", "rosinality_stylegan2", "nvidia_stylegan2_pkl", "fast_style",
            "translation_generator", "adain_decoder"} <= set(converter_names())


def test_command_groups_are_found_in_help_order() -> None:
    from imgforge.cli.app import app

    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    for cmd in ("stylize", "generate", "invert", "morph", "edit", "style-mix", "inpaint", "superres"):
        assert cmd in names
    assert names.index("stylize") < names.index("generate") < names.index("invert")
    assert {"stylegan", "weights"} <= set(names)
