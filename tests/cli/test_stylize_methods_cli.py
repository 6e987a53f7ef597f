"""``imgforge stylize --method fast|adain`` (and the Gatys additions) end to end: sizes, tiles, alpha, colour, masks,
frame folders, usage errors, the shipped offline defaults."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.hub.modelfile import save_model_file
from imgforge.methods.gatys_ext import rgb_to_ycbcr
from imgforge.models.adain import AdaINDecoder
from imgforge.models.fast_style import TransformerNet
from imgforge.models.vgg import vgg19

from .helpers import REPO, photo, run_cli


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _cli(args: List[str], code: int = 0) -> str:
    res = CliRunner().invoke(app, ["--precision", "fp32", "--quiet", *args], env={"IMGFORGE_OFFLINE": "1"})
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    return res.output


def _arr(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGB")).astype(np.int64)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    net = TransformerNet()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias") and name.startswith("deconv3"):
                p.fill_(128.0)  # mid-grey output, so that clamping does not hide differences
            elif ".in" in f".{name}" and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
    save_model_file(d / "fast.safetensors", net.state_dict(), arch="fast_style")
    enc = vgg19(last_layer="relu4_1", widths=(4, 8, 8, 512, 8))
    with torch.no_grad():  # gains that keep the random networks' activations at a useful scale
        for m in enc.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(2.5)
    save_model_file(d / "enc.safetensors", enc.state_dict(), arch="vgg19",
                    arch_kwargs={"last_layer": "relu4_1", "widths": [4, 8, 8, 512, 8]})
    dec = AdaINDecoder()
    with torch.no_grad():
        for m in dec:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(2.0)
        dec[28].bias.fill_(0.5)
    save_model_file(d / "dec.safetensors", dec.state_dict(), arch="adain_decoder", extra={"encoder": str(d / "enc.safetensors")})
    return {"fast": d / "fast.safetensors", "enc": d / "enc.safetensors", "dec": d / "dec.safetensors"}


def test_fast_keeps_size_resizes_alpha_and_colour(models: dict, tmp_path: Path) -> None:
    src = tmp_path / "c.png"
    photo(1, (45, 37)).save(src)
    m = ["--method", "fast", "--model", str(models["fast"])]
    _cli(["stylize", str(src), *m, "-o", str(tmp_path / "a.png")])
    assert Image.open(tmp_path / "a.png").size == (45, 37)
    _cli(["stylize", str(src), *m, "--size", "32", "-o", str(tmp_path / "b.png")])
    assert Image.open(tmp_path / "b.png").size == (32, 26)
    _cli(["stylize", str(src), *m, "--alpha", "0", "-o", str(tmp_path / "c.png")])
    assert np.abs(_arr(tmp_path / "c.png") - _arr(src)).max() <= 1
    _cli(["stylize", str(src), *m, "--preserve-color", "-o", str(tmp_path / "d.png")])
    kept = torch.from_numpy(_arr(tmp_path / "d.png")).permute(2, 0, 1)[None].float() / 255
    orig = torch.from_numpy(_arr(src)).permute(2, 0, 1)[None].float() / 255
    styl = torch.from_numpy(_arr(tmp_path / "a.png")).permute(2, 0, 1)[None].float() / 255
    assert (rgb_to_ycbcr(kept)[:, 1:] - rgb_to_ycbcr(orig)[:, 1:]).abs().mean() < 0.01
    assert (rgb_to_ycbcr(kept)[:, :1] - rgb_to_ycbcr(styl)[:, :1]).abs().mean() < 0.01


def test_fast_and_adain_tiles_match_the_whole_image(models: dict, tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    photo(2, (300, 272)).save(src)
    sty = tmp_path / "s.png"
    photo(3, (64, 64)).rotate(30).save(sty)
    for method, extra in [("fast", ["--model", str(models["fast"])]),
                          ("adain", ["--style", str(sty), "--decoder", str(models["dec"])])]:
        _cli(["stylize", str(src), "--method", method, *extra, "--tile", "0", "-o", str(tmp_path / f"{method}0.png")])
        _cli(["stylize", str(src), "--method", method, *extra, "--tile", "256", "-o", str(tmp_path / f"{method}1.png")])
        whole, tiled = _arr(tmp_path / f"{method}0.png"), _arr(tmp_path / f"{method}1.png")
        assert whole.shape == tiled.shape == (272, 300, 3)
        assert np.abs(whole - tiled).max() <= 2, method


def test_adain_masks_weights_and_encoder_from_decoder_metadata(models: dict, tmp_path: Path) -> None:
    src = tmp_path / "c.png"
    photo(4, (128, 48)).save(src)
    s1, s2 = tmp_path / "s1.png", tmp_path / "s2.png"
    Image.new("RGB", (40, 40), (250, 30, 30)).save(s1)
    photo(5, (40, 40)).save(s2)
    left = np.zeros((48, 128), np.uint8)
    left[:, :64] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    Image.fromarray(255 - left).save(tmp_path / "right.png")
    # no --encoder: the decoder's metadata names it
    base = ["stylize", str(src), "--method", "adain", "--decoder", str(models["dec"])]
    _cli([*base, "--style", str(s1), "--style", str(s2), "--mask", str(tmp_path / "left.png"),
          "--mask", str(tmp_path / "right.png"), "-o", str(tmp_path / "m.png")])
    _cli([*base, "--style", str(s1), "-o", str(tmp_path / "one.png")])
    _cli([*base, "--style", str(s2), "-o", str(tmp_path / "two.png")])
    masked, one, two = _arr(tmp_path / "m.png"), _arr(tmp_path / "one.png"), _arr(tmp_path / "two.png")
    assert masked.shape == (48, 128, 3)
    assert np.abs(one - two).max() > 3  # the two styles give different pictures ...
    # ... and, beyond the decoder's reach of the mask edge, each half is its own style's picture
    assert np.abs(masked[:, :16] - one[:, :16]).max() <= 1
    assert np.abs(masked[:, -16:] - two[:, -16:]).max() <= 1
    _cli([*base, "--style", str(s1), "--style", str(s2), "--mask", str(tmp_path / "left.png"), "-o",
          str(tmp_path / "x.png")], code=2)
    _cli([*base, "--style", str(s1), "--style-weights", "1,2", "-o", str(tmp_path / "y.png")], code=2)


def test_frame_folder_is_consistent(models: dict, tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, seed in enumerate([6, 6, 7]):
        photo(seed, (40, 32)).save(frames / f"{i:04d}.png")
    _cli(["stylize", str(frames), "--method", "fast", "--model", str(models["fast"]), "--out-dir", str(tmp_path / "o"),
          "--name", "{stem}.png"])
    outs = sorted((tmp_path / "o").iterdir())
    assert [p.name for p in outs] == ["0000.png", "0001.png", "0002.png"]
    assert np.array_equal(_arr(outs[0]), _arr(outs[1])) and not np.array_equal(_arr(outs[0]), _arr(outs[2]))


def test_gatys_additions_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "c.png"
    photo(8, (48, 40)).save(src)
    sty = tmp_path / "s.png"
    photo(9, (48, 48)).rotate(45).save(sty)
    enc = tmp_path / "enc.safetensors"
    save_model_file(enc, vgg19(last_layer="relu5_1", widths=(4, 8, 8, 8, 8)).state_dict(), arch="vgg19",
                    arch_kwargs={"last_layer": "relu5_1", "widths": [4, 8, 8, 8, 8]})
    common = ["stylize", str(src), "--style", str(sty), "--encoder", str(enc), "--size", "40", "--iterations", "3"]
    _cli([*common, "--scales", "2", "--preserve-color", "-o", str(tmp_path / "g.png")])
    assert Image.open(tmp_path / "g.png").size == (40, 33)
    Image.new("L", (48, 40), 255).save(tmp_path / "m.png")
    _cli([*common, "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "gm.png")])
    assert Image.open(tmp_path / "gm.png").size == (40, 33)


def test_usage_errors_are_one_line_exit_2(models: dict, tmp_path: Path) -> None:
    photo().save(tmp_path / "a.png")
    sty = tmp_path / "s.png"
    photo(1).save(sty)
    a = str(tmp_path / "a.png")
    out = _cli(["stylize", a, "--method", "fast", "--model", str(models["fast"]), "--style", str(sty), "-o", "x.png"], 2)
    assert "--model" in out
    out = _cli(["stylize", a, "--method", "adain", "--style", str(sty), "--model", "x", "-o", "x.png"], 2)
    assert "--model is for --method fast" in out
    out = _cli(["stylize", a, "--method", "gatys", "--style", str(sty), "--decoder", "x", "-o", "x.png"], 2)
    assert "--decoder is for --method adain" in out
    r = run_cli(["stylize", "a.png", "--method", "fast", "--model", "no-such-model", "-o", "x.png"], tmp_path)
    lines = [x for x in r.stderr.decode().splitlines() if x.strip()]
    assert r.returncode == 1 and lines[-1].startswith("error:") and "no-such-model" in lines[-1]


SHIPPED = [REPO / "weights" / "imgforge-fast-starry-night.safetensors",
           REPO / "weights" / "imgforge-adain-decoder-embedded.safetensors",
           REPO / "weights" / "imgforge-vgg19-embedded.safetensors"]


@pytest.mark.skipif(not all(p.is_file() for p in SHIPPED), reason="shipped style weights not in weights/")
def test_shipped_defaults_work_offline(tmp_path: Path) -> None:
    photo(10, (64, 48)).save(tmp_path / "a.png")
    sty = tmp_path / "s.png"
    photo(11, (64, 64)).rotate(20).save(sty)
    empty = tmp_path / "cache"
    env = {"IMGFORGE_OFFLINE": "1", "IMGFORGE_CACHE_DIR": str(empty), "IMGFORGE_WEIGHTS_PATH": ""}
    for args in (["--method", "fast"], ["--method", "adain", "--style", str(sty)]):
        res = CliRunner().invoke(app, ["--quiet", "stylize", str(tmp_path / "a.png"), *args, "-o",
                                       str(tmp_path / "o.png"), "--overwrite"], env=env)
        assert res.exit_code == 0, res.output
        out = _arr(tmp_path / "o.png")
        assert out.shape == (48, 64, 3) and out.std() > 5  # an image, not a flat field
