"""``generate --noise-layers`` and ``variation`` on the shipped digits model."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from .helpers import run_cli


def test_no_noise_layers_gives_identical_images_whatever_the_noise_seed(tmp_path):
    outs = []
    for s in ("1", "2"):
        d = tmp_path / f"o{s}"
        r = run_cli(["--seed", s, "generate", "--z-file", str(_z(tmp_path)), "--noise-layers", "none",
                     "--out-dir", str(d)], tmp_path)
        assert r.returncode == 0, r.stderr.decode()
        outs.append(np.asarray(Image.open(d / "z0000.png")))
    assert np.array_equal(*outs)
    a = run_cli(["--seed", "1", "generate", "--z-file", str(_z(tmp_path)), "--noise-layers", "all",
                 "--out-dir", str(tmp_path / "a1")], tmp_path)
    b = run_cli(["--seed", "2", "generate", "--z-file", str(_z(tmp_path)), "--noise-layers", "all",
                 "--out-dir", str(tmp_path / "a2")], tmp_path)
    assert a.returncode == b.returncode == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "a1/z0000.png")),
                              np.asarray(Image.open(tmp_path / "a2/z0000.png")))
    bad = run_cli(["generate", "--seeds", "0", "--noise-layers", "9-12", "--out-dir", str(tmp_path / "x")], tmp_path)
    assert bad.returncode == 2 and b"--noise-layers" in bad.stderr and b"Traceback" not in bad.stderr


def _z(tmp_path):
    from safetensors.torch import save_file
    import torch

    p = tmp_path / "z.safetensors"
    if not p.exists():
        save_file({"z": torch.randn(1, 64, generator=torch.Generator().manual_seed(0))}, str(p))
    return p


def test_variation_std_map_is_zero_without_noise(tmp_path):
    r = run_cli(["variation", "--seed", "3", "--n", "8", "--noise-layers", "none", "-o", str(tmp_path / "v.png")],
                tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert re.search(rb"max 0\.0000", r.stdout + r.stderr)
    r = run_cli(["variation", "--seed", "3", "--n", "8", "-o", str(tmp_path / "w.png")], tmp_path)
    m = re.search(rb"max ([0-9.]+)", r.stdout + r.stderr)
    assert r.returncode == 0 and m and float(m.group(1)) > 0
    assert (tmp_path / "w.png").stat().st_size > 0
