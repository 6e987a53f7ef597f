"""``imgforge sketch2image`` on the shipped digits model: outputs written, edge IoU reported, empty sketches refused."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from .helpers import run_cli


def _stroke(path, light_background: bool) -> None:
    a = np.zeros((64, 64), np.uint8)
    a[10:54, 30:36] = 255  # a "1"
    if light_background:
        a = 255 - a
    Image.fromarray(a).convert("RGB").save(path)


def test_sketch2image_writes_image_latent_compare_and_json(tmp_path):
    _stroke(tmp_path / "one.png", light_background=False)
    _stroke(tmp_path / "paper.png", light_background=True)
    r = run_cli(["sketch2image", str(tmp_path / "one.png"), str(tmp_path / "paper.png"), "--steps", "4",
                 "--out-dir", str(tmp_path / "out")], tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    for stem in ("one", "paper"):
        for suffix in (".png", ".latent.safetensors", ".compare.png", ".json"):
            assert (tmp_path / "out" / f"{stem}{suffix}").stat().st_size > 0
        info = json.loads((tmp_path / "out" / f"{stem}.json").read_text())
        assert 0.0 <= info["edge_iou"] <= 1.0 and info["steps"] == 4


def test_empty_sketch_is_one_clear_failure(tmp_path):
    Image.new("RGB", (40, 40), "white").save(tmp_path / "blank.png")
    r = run_cli(["sketch2image", str(tmp_path / "blank.png"), "-o", str(tmp_path / "x.png")], tmp_path)
    assert r.returncode == 1 and b"sketch is empty" in r.stderr and b"Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()
