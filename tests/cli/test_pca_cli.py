"""``imgforge pca``: files written, explained variance sums to 1, held-out PSNR monotone in k, usable by generate."""

from __future__ import annotations

import json

from .helpers import photo, run_cli


def test_pca_writes_its_figures_and_a_generator(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(12):
        photo(i, (24, 24)).save(data / f"im{i:02d}.png")
    out = tmp_path / "pca"
    r = run_cli(["pca", str(data), "--size", "16", "--components", "9", "--held-out", "2", "--out-dir", str(out)],
                tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    for name in ("mean.png", "components.png", "reconstructions.png", "explained_variance.svg", "pca.json",
                 "pca.safetensors"):
        assert (out / name).stat().st_size > 0, name
    info = json.loads((out / "pca.json").read_text())
    assert info["n_train"] == 10 and info["components"] == 9
    assert abs(info["explained_total"] - 1.0) < 1e-6  # all 9 = N - 1 components
    scores = [v for _, v in sorted((int(k), v) for k, v in info["held_out_psnr_by_k"].items())]
    assert all(b >= a - 1e-6 for a, b in zip(scores, scores[1:])), scores
    g = run_cli(["generate", "--weights", str(out / "pca.safetensors"), "--seeds", "0-3", "--grid",
                 str(tmp_path / "g.png")], tmp_path)
    assert g.returncode == 0, g.stderr.decode()
    assert (tmp_path / "g.png").stat().st_size > 0


def test_pca_bad_inputs(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(3):
        photo(i, (16, 16)).save(data / f"im{i}.png")
    (data / "broken.png").write_bytes(b"not an image")
    r = run_cli(["pca", str(data), "--components", "30", "--out-dir", str(tmp_path / "o")], tmp_path)
    assert r.returncode == 2 and b"--components 30" in r.stderr and b"Traceback" not in r.stderr
    e = run_cli(["pca", str(tmp_path / "nothing"), "--out-dir", str(tmp_path / "o")], tmp_path)
    assert e.returncode == 1 and b"no readable images" in e.stderr and b"Traceback" not in e.stderr
