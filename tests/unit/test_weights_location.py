"""One lookup for the shipped weights/: inside the installed package (wheel/sdist) or beside it (checkout)."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

import imgforge
from imgforge.hub import manifest
from imgforge.hub.encoders import EMBEDDED_FILE, embedded_encoder_path

REPO = Path(__file__).resolve().parents[2]


def _fake_package(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    package = root / "imgforge"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(imgforge, "__file__", str(package / "__init__.py"))
    return package


def test_installed_layout_finds_package_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    package = _fake_package(monkeypatch, site)
    (package / "_weights").mkdir()
    (package / "_weights" / "SHA256SUMS").write_text("")
    (site / "weights").mkdir()  # some other distribution's top-level folder must not win
    assert manifest.repo_weights_dir() == package / "_weights"
    assert embedded_encoder_path() == package / "_weights" / EMBEDDED_FILE


def test_checkout_layout_finds_repo_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_package(monkeypatch, tmp_path / "repo")
    (tmp_path / "repo" / "weights").mkdir()
    (tmp_path / "repo" / "weights" / "SHA256SUMS").write_text("")
    assert manifest.repo_weights_dir() == tmp_path / "repo" / "weights"
    assert embedded_encoder_path() == tmp_path / "repo" / "weights" / EMBEDDED_FILE


def test_this_checkout() -> None:
    assert manifest.repo_weights_dir() == REPO / "weights"
    assert embedded_encoder_path().is_file()


def test_setup_ships_every_listed_file() -> None:
    """setup.py's package-data globs cover every file in weights/SHA256SUMS (so wheels carry them all)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    shipped = next(ast.literal_eval(n.value) for n in tree.body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "SHIPPED")
    names = manifest.read_sha256sums(REPO / "weights" / manifest.SHA256SUMS)
    assert names
    for name in [*names, "SHA256SUMS", "README.md"]:
        assert any(fnmatch.fnmatch(name, g) for g in shipped), name
