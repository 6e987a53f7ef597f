"""``imgforge generate`` and ``imgforge stylegan train`` end to end."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from imgforge.cli.app import app

from .helpers import REPO, run_cli

ONE_THREAD = {"IMGFORGE_THREADS": "1", "OMP_NUM_THREADS": "1"}
SHIPPED = REPO / "weights" / "stylegan2-mnist32.safetensors"


def _fresh_env(tmp: Path) -> dict:
    """A machine with nothing but the repository: empty home and cache, no weights path, offline."""
    home = tmp / "home"
    home.mkdir()
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "IMGFORGE_CACHE_DIR": "",
            "IMGFORGE_WEIGHTS_PATH": "", "IMGFORGE_OFFLINE": "1", **ONE_THREAD}


def test_generate_default_model_offline_on_a_fresh_machine(tmp_path: Path) -> None:
    """`imgforge generate` with no --weights uses the shipped digits model, offline, and makes digits."""
    import torch

    from imgforge.data.mnist import classify, load_digit_classifier

    assert SHIPPED.is_file(), "the shipped digits model is missing"
    r = run_cli(["generate", "--seeds", "0-31"], tmp_path, env=_fresh_env(tmp_path))
    assert r.returncode == 0, r.stderr.decode()
    out = tmp_path / "generated"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"seed{i:04d}.png" for i in range(32)]
    assert len(list(out.glob("seed*.safetensors"))) == 32
    im = Image.open(out / "seed0003.png")
    assert im.size == (32, 32) and im.mode == "RGB"
    assert not (tmp_path / "home" / "cache").exists() or not any((tmp_path / "home" / "cache").iterdir())
    # the pictures are digits: the shipped classifier (97 % on held-out real digits) mostly recognises them
    # (measured on the 18,000-step model: mean top probability 0.90 and 9 classes on these 32 seeds; a collapsed
    # model fails the class count)
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(out / p), dtype=np.float32) / 255).permute(2, 0, 1)
                     for p in pngs])
    probs = classify(load_digit_classifier(REPO / "weights" / "mnist-digit-classifier.safetensors"), x)
    conf, pred = probs.max(1)
    assert float(conf.mean()) >= 0.8
    assert len(set(pred.tolist())) >= 8


def _tiny_generator_file(path: Path) -> Path:
    """A seeded 8x8 StyleGAN2 generator saved as our safetensors (stands in until the digits model ships)."""
    import torch

    from imgforge.hub.modelfile import save_model_file
    from imgforge.models.stylegan2 import Generator

    torch.manual_seed(0)
    G = Generator(8, style_dim=8, n_mlp=1, channels={4: 8, 8: 8}, z_dim=6)
    save_model_file(path, G.state_dict(), arch="stylegan2_generator", arch_kwargs=G.arch_kwargs())
    return path


def test_generate_seeds_grid_and_latent_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    tiny = str(_tiny_generator_file(tmp_path / "tiny.safetensors"))
    try:
        r = runner.invoke(app, ["--quiet", "generate", "--weights", tiny, "--seeds", "5,1-2", "--trunc", "0.7", "--out-dir", "d",
                                "--grid", "grid.png", "--grid-cols", "3"])
        assert r.exit_code == 0, r.output
        assert sorted(p.name for p in Path("d").glob("*.png")) == ["seed0001.png", "seed0002.png", "seed0005.png"]
        assert Image.open("grid.png").size == (24, 8)
        r = runner.invoke(app, ["--quiet", "generate", "--weights", tiny, "--w-file", "d/seed0005.safetensors", "--out-dir", "e"])
        assert r.exit_code == 0, r.output
        assert Path("e/w0000.png").read_bytes() == Path("d/seed0005.png").read_bytes()
        r = runner.invoke(app, ["--quiet", "generate", "--weights", tiny, "--z-file", "d/seed0005.safetensors", "--trunc", "0.7",
                                "--grid", "only.png"])
        assert r.exit_code == 0, r.output
        assert not Path("generated").exists()  # grid only
        assert np.array_equal(np.asarray(Image.open("only.png")), np.asarray(Image.open("d/seed0005.png")))
        # usage errors: exit 2, one line
        for args, words in [(["--seeds", "9-3"], "goes down"), (["--seeds", "x"], "bad item"),
                            (["--seeds", "1", "--z-file", "a.npy"], "only one"),
                            (["--noise-mode", "loud"], "noise-mode")]:
            r = runner.invoke(app, ["generate", "--weights", tiny, *args])
            assert r.exit_code == 2 and words in r.output, (args, r.output)
        r = runner.invoke(app, ["generate", "--weights", "missing.safetensors"])
        assert r.exit_code == 1 and "missing.safetensors" in r.output
    finally:
        os.chdir(cwd)


def test_stylegan_train_then_generate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        a = np.zeros((12, 12), np.uint8)
        y, x = rng.integers(0, 8, 2)
        a[y:y + 4, x:x + 4] = 255
        Image.fromarray(a, mode="L").save(data / f"{i}.png")
    tiny = ["--resolution", "8", "--channel-base", "32", "--channel-max", "8", "--z-dim", "8", "--w-dim", "8",
            "--map-layers", "1", "--batch-size", "4", "--r1-every", "2", "--sample-every", "2"]
    r = run_cli(["--quiet", "--device", "cpu", "stylegan", "train", str(data), *tiny, "--steps", "3",
                 "--run-dir", "run", "--export", "g.safetensors", "--loss", "hinge"], tmp_path, env=ONE_THREAD)
    assert r.returncode == 0, r.stderr.decode()
    run = tmp_path / "run"
    for name in ["checkpoint.pt", "losses.jsonl", "config.json", "generator.safetensors", "samples/step_000002.png"]:
        assert (run / name).is_file(), name
    assert len((run / "losses.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "g.safetensors").is_file()
    r = run_cli(["--quiet", "generate", "--weights", "run/generator.safetensors", "--seeds", "0-3", "--grid",
                 "grid.png"], tmp_path, env=ONE_THREAD)
    assert r.returncode == 0, r.stderr.decode()
    assert Image.open(tmp_path / "grid.png").size == (16, 16)


def test_stylegan_train_usage_errors() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["stylegan", "train", "nowhere", "--resolution", "24"])
    assert r.exit_code == 2 and "power of two" in r.output  # option errors are usage errors
    r = runner.invoke(app, ["stylegan", "train", "nowhere", "--loss", "magic"])
    assert r.exit_code == 2 and "magic" in r.output
    r = runner.invoke(app, ["stylegan", "train", "nowhere"])
    assert r.exit_code == 1 and "not a folder" in r.output
