"""``imgforge pix2pix|cyclegan apply|train|test`` end to end on tiny networks (CliRunner, in-process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Tuple

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner, Result

from imgforge.cli.app import app
from imgforge.hub.modelfile import load_model_file
from imgforge.methods.translate import translate
from imgforge.runtime import Runtime
from imgforge.training.cyclegan import CycleGANConfig
from imgforge.training.pix2pix import Pix2PixConfig
from imgforge.training.translation_run import train_cyclegan, train_pix2pix
from tests.unit.test_translation_train_support import (
    TINY_CYCLEGAN, make_aligned, make_unaligned, one_thread,  # noqa: F401
)

runner = CliRunner()
RT = Runtime.create("cpu", "fp32")


def run(*args: str) -> Result:
    return runner.invoke(app, ["--precision", "fp32", *args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Path, Path, Path, Path]]:
    """A tiny pix2pix run (G.safetensors; unet_64 has one dropout level) and CycleGAN run (G_A/G_B)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("translation_cli")
    p_data, c_data = make_aligned(root / "pairs", n_train=3), make_unaligned(root / "un paired", n=3)
    train_pix2pix(p_data, root / "p2p", Pix2PixConfig(netG="unet_64", ngf=8, ndf=8, load_size=72, crop_size=64,
                                                      steps=2, sample_every=0, direction="BtoA"), runtime=RT)
    train_cyclegan(c_data, root / "cg run", CycleGANConfig(netG="resnet_1blocks", ngf=8, ndf=8, load_size=36,
                                                           crop_size=32, steps=1, sample_every=0), runtime=RT)
    torch.set_num_threads(n)
    yield p_data, root / "p2p", c_data, root / "cg run"


def _images(folder: Path, n: int, size: Tuple[int, int] = (30, 22), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"im {i}.png")
    return folder


def _load(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1).float() / 255


def test_help_lists_commands_with_examples() -> None:
    for group, cmds in (("pix2pix", ("apply", "train", "test")), ("cyclegan", ("apply", "train", "test"))):
        for cmd in cmds:
            r = run(group, cmd, "--help")
            assert r.exit_code == 0 and "Examples" in r.output, r.output


def test_apply_eval_matches_the_library_and_skips_existing(runs, tmp_path: Path) -> None:
    _, p2p, _, _ = runs
    src = _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    r = run("pix2pix", "apply", str(src), "--weights", str(p2p), "--eval", "--out-dir", str(out))
    assert r.exit_code == 0, r.output + r.stderr
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"im {i}_pix2pix.png" for i in range(3)]
    G = load_model_file(p2p / "G.safetensors")[0].eval()
    want = translate(_load(src / "im 1.png")[None], G)[0]
    got = _load(out / "im 1_pix2pix.png")
    assert got.shape == (3, 22, 30)  # full resolution: padded to 64 and cropped back
    assert (got - want).abs().max().item() <= 1 / 255 + 1e-6
    before = (out / "im 0_pix2pix.png").stat().st_mtime_ns
    r = run("pix2pix", "apply", str(src), "--weights", str(p2p), "--eval", "--out-dir", str(out), "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["skipped"] == 3 and doc["ok"] == 0
    assert (out / "im 0_pix2pix.png").stat().st_mtime_ns == before


def test_apply_globs_shards_batches_and_workers(runs, tmp_path: Path) -> None:
    _, p2p, _, _ = runs
    src = _images(tmp_path / "in", 4)
    r = run("pix2pix", "apply", str(src / "*.png"), "--weights", str(p2p / "G.safetensors"), "--eval", "--out-dir",
            str(tmp_path / "a"), "--shard", "2/2", "--batch-size", "2", "--workers", "1")
    assert r.exit_code == 0, r.output + r.stderr
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["im 1_pix2pix.png", "im 3_pix2pix.png"]
    r = run("pix2pix", "apply", str(src / "im 3.png"), "--weights", str(p2p), "--eval", "-o", str(tmp_path / "one.png"))
    assert r.exit_code == 0
    assert torch.equal(_load(tmp_path / "one.png"), _load(tmp_path / "a" / "im 3_pix2pix.png"))  # batching is exact


def test_train_mode_is_seeded_per_image(runs, tmp_path: Path) -> None:
    _, p2p, _, _ = runs
    src = _images(tmp_path / "in", 2)
    outs = {}
    for tag, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        r = runner.invoke(app, ["--seed", seed, "--precision", "fp32", "pix2pix", "apply", str(src), "--weights",
                                str(p2p), "--out-dir", str(tmp_path / tag)])
        assert r.exit_code == 0, r.output + r.stderr
        outs[tag] = _load(tmp_path / tag / "im 1_pix2pix.png")
    assert torch.equal(outs["a"], outs["b"])  # dropout on, but seeded
    assert not torch.equal(outs["a"], outs["c"])
    r = run("--seed", "3", "pix2pix", "apply", str(src / "im 1.png"), "--weights", str(p2p), "-o",
            str(tmp_path / "alone.png"))
    assert torch.equal(_load(tmp_path / "alone.png"), outs["a"])  # the same image gets the same draw on its own


def test_aligned_input_uses_the_chosen_half(runs, tmp_path: Path) -> None:
    p_data, p2p, _, _ = runs
    pair = p_data / "val" / "0.png"
    r = run("pix2pix", "apply", str(pair), "--weights", str(p2p), "--eval", "--aligned", "--direction", "BtoA", "-o",
            str(tmp_path / "b.png"))
    assert r.exit_code == 0, r.output + r.stderr
    right = _load(pair)[:, :, 40:]
    Image.fromarray((right.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / "right.png")
    r = run("pix2pix", "apply", str(tmp_path / "right.png"), "--weights", str(p2p), "--eval", "-o",
            str(tmp_path / "r.png"))
    assert torch.equal(_load(tmp_path / "b.png"), _load(tmp_path / "r.png"))


def test_cyclegan_direction_picks_g_b_and_tiles(runs, tmp_path: Path) -> None:
    _, _, c_data, cg = runs
    src = c_data / "testB"
    r = run("cyclegan", "apply", str(src), "--weights", str(cg), "--direction", "BtoA", "--out-dir", str(tmp_path / "b"))
    assert r.exit_code == 0, r.output + r.stderr
    r = run("cyclegan", "apply", str(src), "--weights", str(cg / "G_B.safetensors"), "--out-dir", str(tmp_path / "f"))
    for p in (tmp_path / "b").iterdir():
        assert torch.equal(_load(p), _load(tmp_path / "f" / p.name))
    big = _images(tmp_path / "big", 1, size=(70, 50))
    r = run("cyclegan", "apply", str(big), "--weights", str(cg), "--eval", "--tile", "32", "--out-dir", str(tmp_path / "t"))
    assert r.exit_code == 0, r.output + r.stderr
    assert Image.open(tmp_path / "t" / "im 0_cyclegan.png").size == (70, 50)


def test_errors_are_one_line_with_exit_codes(runs, tmp_path: Path) -> None:
    _, p2p, _, cg = runs
    src = _images(tmp_path / "in", 1)
    r = run("pix2pix", "apply", str(src), "--weights", str(tmp_path / "nope.safetensors"), "--out-dir", str(tmp_path / "o"))
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and "nope.safetensors" in lines[0]
    r = run("cyclegan", "apply", str(src), "--weights", str(cg / "G_A.safetensors"), "--direction", "BtoA",
            "--out-dir", str(tmp_path / "o"))
    assert r.exit_code == 2 and "usage error" in r.stderr and "G_B" in r.stderr
    r = run("pix2pix", "apply", str(src), "--weights", str(p2p), "--tile", "64", "--out-dir", str(tmp_path / "o"))
    assert r.exit_code == 2 and "--eval" in r.stderr
    r = run("pix2pix", "apply", str(src), str(tmp_path / "missing.png"), "--weights", str(p2p), "--eval",
            "--out-dir", str(tmp_path / "o"))
    assert r.exit_code == 3 and "missing.png" in r.stderr  # one failed, one written
    r = run("pix2pix", "train", "no_such_dataset")
    assert r.exit_code == 1 and "not a known pix2pix dataset" in r.stderr


def test_cyclegan_train_and_test_page_cover_every_image(runs, tmp_path: Path) -> None:
    _, _, c_data, _ = runs
    r = run("--seed", "1", "cyclegan", "train", str(c_data), "-o", str(tmp_path / "run"), "--steps", "2",
            "--sample-every", "1", *TINY_CYCLEGAN)
    assert r.exit_code == 0, r.output + r.stderr
    assert "results page" in r.stderr and (tmp_path / "run" / "samples" / "step_0000002.png").exists()
    r = run("cyclegan", "test", str(c_data), "--weights", str(tmp_path / "run"), "--size", "0", "-o",
            str(tmp_path / "res"))
    assert r.exit_code == 0, r.output + r.stderr
    page = (tmp_path / "res" / "index.html").read_text()
    for i in range(3):
        assert f"<h3>A img {i}</h3>" in page
        for vis in ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"):
            assert f"images/A%20img%20{i}_{vis}.png" in page
            assert (tmp_path / "res" / "images" / f"A img {i}_{vis}.png").exists()
    assert Image.open(tmp_path / "res" / "images" / "A img 2_fake_B.png").size == (36 + 8, 36)  # full resolution


def test_pix2pix_test_page(runs, tmp_path: Path) -> None:
    p_data, p2p, _, _ = runs
    r = run("pix2pix", "test", str(p_data), "--weights", str(p2p), "--phase", "val", "--size", "32", "--eval",
            "-o", str(tmp_path / "res"))
    assert r.exit_code == 0, r.output + r.stderr
    page = (tmp_path / "res" / "index.html").read_text()
    assert "BtoA" in page and page.count("<h3>") == 2
    assert Image.open(tmp_path / "res" / "images" / "1_fake_B.png").size == (32, 32)
