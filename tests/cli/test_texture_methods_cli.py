"""``imgforge texture --method efros-leung|quilting|perlin``: outputs, seeds, and the bad-input lines."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .helpers import photo, run_cli


def test_patch_and_procedural_textures(tmp_path):
    photo(0, (32, 32)).save(tmp_path / "s.png")
    runs = {
        "el": ["--method", "efros-leung", "--window", "5", "--width", "20", "--height", "16"],
        "q": ["--method", "quilting", "--block", "12", "--width", "40", "--height", "30"],
        "p": ["--method", "perlin", "--scale", "8", "--width", "33", "--height", "21"],
    }
    for name, args in runs.items():
        r = run_cli(["--seed", "4", "texture", "--style", str(tmp_path / "s.png"), *args, "-o",
                     str(tmp_path / f"{name}.png")], tmp_path)
        assert r.returncode == 0, r.stderr.decode()
    assert Image.open(tmp_path / "el.png").size == (20, 16)
    assert Image.open(tmp_path / "q.png").size == (40, 30)
    assert Image.open(tmp_path / "p.png").size == (33, 21)
    again = run_cli(["--seed", "4", "texture", "--method", "perlin", "--scale", "8", "--width", "33", "--height",
                     "21", "-o", str(tmp_path / "p2.png")], tmp_path)
    assert again.returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), np.asarray(Image.open(tmp_path / "p2.png")))


def test_texture_method_bad_inputs(tmp_path):
    photo(0, (8, 8)).save(tmp_path / "tiny.png")
    r = run_cli(["texture", "--method", "efros-leung", "--style", str(tmp_path / "tiny.png"), "--window", "11",
                 "--width", "16", "--height", "16", "-o", str(tmp_path / "x.png")], tmp_path)
    assert r.returncode == 2 and b"smaller than the window" in r.stderr and b"Traceback" not in r.stderr
    r = run_cli(["texture", "--method", "quilting", "-o", str(tmp_path / "y.png")], tmp_path)
    assert r.returncode == 2 and b"needs a texture sample" in r.stderr
    r = run_cli(["texture", "--method", "nope", "--style", str(tmp_path / "tiny.png"), "-o", str(tmp_path / "z.png")],
                tmp_path)
    assert r.returncode == 2 and b"--method 'nope'" in r.stderr
    assert not any((tmp_path / n).exists() for n in ("x.png", "y.png", "z.png"))
