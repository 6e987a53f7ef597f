"""``imgforge invert / morph / style-mix / edit / inpaint / superres`` end to end on a tiny generator file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.hub.modelfile import save_model_file
from imgforge.io import save_image
from imgforge.latents import load_latent
from imgforge.models.stylegan2 import Generator
from imgforge.models.vgg import TorchvisionVGG

from .helpers import run_cli

FAST = ["--steps", "8"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("edit_cli")
    torch.manual_seed(0)
    G = Generator(16, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16}).eval()
    gpath = d / "tiny.safetensors"
    save_model_file(gpath, G.state_dict(), arch="stylegan2_generator", arch_kwargs=G.arch_kwargs())
    enc = TorchvisionVGG("vgg16", last_layer="conv4_2", widths=(8, 8, 16, 16, 16))
    epath = d / "enc.safetensors"
    save_model_file(epath, enc.state_dict(), arch="vgg16",
                    arch_kwargs={"last_layer": "conv4_2", "widths": [8, 8, 16, 16, 16]})
    with torch.no_grad():
        imgs = ((G(torch.randn(3, 32, generator=torch.Generator().manual_seed(1))) + 1) / 2).clamp(0, 1)
    for i in range(3):
        save_image(imgs[i], d / f"img{i}.png")
    wide = torch.nn.functional.interpolate(imgs[:1], size=(16, 24), mode="bilinear")[0]
    save_image(wide, d / "wide.png")
    mask = torch.zeros(3, 16, 16)
    mask[:, 4:12, 4:12] = 1
    save_image(mask, d / "mask.png")
    from imgforge.ops.resize import downscale

    save_image(downscale(imgs[0], 4), d / "small.png")
    return {"dir": d, "G": str(gpath), "enc": str(epath)}


def _run(args: list[str], cwd: Path) -> object:
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, ["--device", "cpu", "--precision", "fp32", "--quiet", *args],
                                  catch_exceptions=False, env={"IMGFORGE_OFFLINE": "1"})
    finally:
        os.chdir(old)


def test_invert_writes_all_outputs(files: dict, tmp_path: Path) -> None:
    d = files["dir"]
    r = _run(["invert", str(d / "img0.png"), str(d / "img1.png"), str(d / "wide.png"), "--weights", files["G"],
              "--encoder", files["enc"], "--space", "w", "--noise", "--gif", "-b", "2", *FAST,
              "--out-dir", str(tmp_path / "inv")], tmp_path)
    assert r.exit_code == 0, r.output
    for stem in ("img0", "img1", "wide"):
        for suffix in (".png", ".latent.safetensors", ".compare.png", ".json", ".gif"):
            assert (tmp_path / "inv" / f"{stem}{suffix}").is_file(), (stem, suffix)
    info = json.loads((tmp_path / "inv" / "img0.json").read_text())
    assert {"mse", "psnr", "ssim", "steps", "seconds"} <= set(info) and info["steps"] == 8
    assert info["space"] == "w" and info["noise_optimised"] and "enc" in info["encoder"]
    assert info["psnr"] == pytest.approx(-10 * np.log10(info["mse"]), rel=1e-6)
    assert Image.open(tmp_path / "inv" / "wide.png").size == (16, 16)  # fitted to the generator
    assert Image.open(tmp_path / "inv" / "img0.compare.png").size == (34, 16)
    rec = load_latent(tmp_path / "inv" / "img1.latent.safetensors")
    assert rec.space == "w" and rec.latent.shape == (1, 32) and rec.noise is not None
    # existing outputs are skipped unless --overwrite
    r = _run(["invert", str(d / "img0.png"), "--weights", files["G"], "--loss", "mse", *FAST,
              "--out-dir", str(tmp_path / "inv"), "--json"], tmp_path)
    assert r.exit_code == 0 and json.loads(r.stdout)["skipped"] == 1


def test_morph_style_mix_and_edit(files: dict, tmp_path: Path) -> None:
    d = files["dir"]
    g = ["--weights", files["G"]]
    r = _run(["morph", str(d / "img0.png"), "3", "--frames", "4", *g, "--loss", "mse", *FAST,
              "--out-dir", "m"], tmp_path)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "frame_000.png", "frame_001.png", "frame_002.png", "frame_003.png", "morph.gif", "morph_sheet.png"]
    r = _run(["morph", "1", "2", "--space", "z", "--frames", "3", *g, "--out-dir", "mz"], tmp_path)
    assert r.exit_code == 0, r.output
    r = _run(["style-mix", "--rows", "1,2", "--cols", "3-5", "--styles", "middle", *g, "-o", "grid.png"], tmp_path)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "grid.png").size == (4 * 16 + 5 * 2, 3 * 16 + 4 * 2)
    r = _run(["style-mix", "--rows", "1", "--cols", "2", "--styles", "fine", *g, "-o", "g2.png"], tmp_path)
    assert r.exit_code == 2 and "fine group is empty" in r.output
    r = _run(["edit", "4", "--direction", "1", "--frames", "5", "--layers", "0-2", *g, "-o", "strip.png"], tmp_path)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "strip.png").size == (5 * 16 + 6 * 2, 16 + 4)
    r = _run(["edit", "4", "--from", "5", "--to", "6", "--frames", "3", *g, "-o", "arith.png"], tmp_path)
    assert r.exit_code == 0, r.output
    r = _run(["edit", "4", *g, "-o", "x.png"], tmp_path)
    assert r.exit_code == 2 and "--direction" in r.output
    r = _run(["edit", "4", "--from", "5", *g, "-o", "x.png"], tmp_path)
    assert r.exit_code == 2


def test_inpaint_and_superres(files: dict, tmp_path: Path) -> None:
    d = files["dir"]
    g = ["--weights", files["G"], "--loss", "mse", *FAST]
    r = _run(["inpaint", str(d / "img0.png"), "--mask", str(d / "mask.png"), *g, "-o", "filled.png",
              "--save-latent", "filled.latent.safetensors"], tmp_path)
    assert r.exit_code == 0, r.output
    src = np.asarray(Image.open(d / "img0.png")).astype(int)
    out = np.asarray(Image.open(tmp_path / "filled.png")).astype(int)
    known = np.ones((16, 16), bool)
    known[4:12, 4:12] = False
    assert (src[known] == out[known]).all()  # known pixels unchanged
    assert (tmp_path / "filled.latent.safetensors").is_file()
    r = _run(["inpaint", str(d / "img0.png"), "-m", str(d / "mask.png"), *g, "-o", "filled4.png", "--samples", "3",
              "--candidates", "16", "--combine", "mean"], tmp_path)
    assert r.exit_code == 0, r.output
    out4 = np.asarray(Image.open(tmp_path / "filled4.png")).astype(int)
    assert (src[known] == out4[known]).all() and (out4[~known] != out[~known]).any()
    r = _run(["inpaint", str(d / "img0.png"), "-m", str(d / "mask.png"), *g, "-o", "x.png", "--combine", "median"],
             tmp_path)
    assert r.exit_code == 2 and "--combine" in r.output
    r = _run(["inpaint", str(d / "img0.png"), "-m", str(d / "mask.png"), *g, "-o", "x.png", "--samples", "9",
              "--candidates", "4"], tmp_path)
    assert r.exit_code == 2 and "--candidates" in r.output
    r = _run(["superres", str(d / "small.png"), "--scale", "4", *g, "-o", "big.png"], tmp_path)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "big.png").size == (16, 16)
    r = _run(["superres", str(d / "small.png"), "--scale", "3", *g, "-o", "big3.png"], tmp_path)
    assert r.exit_code == 2 and "does not divide" in r.output


def test_errors_are_one_line(files: dict, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes((files["dir"] / "img0.png").read_bytes())
    env = {"IMGFORGE_WEIGHTS_PATH": str(tmp_path / "none"), "IMGFORGE_CACHE_DIR": str(tmp_path / "cache")}
    r = run_cli(["--device", "cpu", "invert", "a.png", "--steps", "1", "--loss", "mse", "--weights",
                 "stylegan2-ffhq-256"], tmp_path, env=env)
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "stylegan2-ffhq-256" in err and "imgforge weights fetch" in err
    r = run_cli(["invert", "a.png", "--space", "q", "--weights", files["G"]], tmp_path)
    assert r.returncode == 2 and "--space" in r.stderr.decode()
