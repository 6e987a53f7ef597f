"""``imgforge gan train`` and ``imgforge vae ...`` end to end (in process), and their bad-input lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.hub.modelfile import load_model_file


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _folder(d: Path, classes: tuple = (), n: int = 4, corrupt: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for cls in classes or ("",):
        (d / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(d / cls / f"{i}.png")
    if corrupt:
        (d / (classes[0] if classes else "") / "bad.png").write_bytes(b"\x89PNG broken")
    return d


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


TINY = ["--resolution", "8", "--batch-size", "4", "--width", "4", "--z-dim", "4", "--steps", "2", "--log-every", "1"]


@pytest.mark.parametrize("case, args, code, words", [
    ("empty folder", [], 1, "no images found"),
    ("no class folders", ["--cond"], 2, "--cond needs one sub-folder per class"),
    ("unknown loss", ["--loss", "minimax"], 2, "--loss 'minimax' is not one of mm, ns"),
    ("resolution", ["--resolution", "24"], 2, "--resolution 24: must be a power of two"),
    ("train levels not sides", ["--arch", "lapgan", "--train-levels", "8,x"], 2,
     "--train-levels '8,x': comma-separated image sides"),
    ("train levels not in the pyramid", ["--arch", "lapgan", "--train-levels", "64"], 2,
     "--train-levels 64: give distinct pyramid sides of this run (8,16,32)"),
    ("train levels for progan", ["--arch", "progan", "--train-levels", "8"], 2,
     "--train-levels is for --arch lapgan, not progan"),
    ("coarse width for the mlp pair", ["--arch", "lapgan", "--coarse", "mlp", "--coarse-width", "8"], 2,
     "--coarse-width 8: the width (>= 1) of --coarse dcgan's pair"),
    ("coarse width for dcgan", ["--coarse-width", "8"], 2, "--coarse-width is for --arch lapgan, not dcgan"),
    ("init of another arch", ["--arch", "lapgan", "--init", "dcgan-mnist32"], 2,
     "--init dcgan-mnist32: holds a dcgan_g network, not lapgan_g"),
    ("init missing", ["--arch", "lapgan", "--init", "missing.safetensors"], 1, "unknown weights 'missing.safetensors'"),
    ("augment for began", ["--loss", "began", "--augment", "ada"], 2, "--augment is for --loss mm|ns"),
    ("augment probability alone", ["--augment-p", "0.3"], 2, "--augment-p is for --augment ada|fixed, not none"),
    ("augment op unknown", ["--augment", "ada", "--augment-ops", "translate,blur"], 2,
     "--augment-ops translate,blur: unknown augmentation(s) ['blur']"),
])
def test_gan_train_bad_input_is_one_line(tmp_path: Path, case: str, args: list, code: int, words: str) -> None:
    data = tmp_path / "empty" if case == "empty folder" else _folder(tmp_path / "flat")
    data.mkdir(exist_ok=True)
    res = _run("gan", "train", str(data), "--run-dir", str(tmp_path / "run"), "--steps", "1", *args)
    assert res.exit_code == code, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in res.output, res.output


def test_gan_train_conditional_skips_corrupt_images_and_writes_the_run(tmp_path: Path) -> None:
    data = _folder(tmp_path / "d", ("a", "b"), corrupt=True)
    run = tmp_path / "run"
    res = _run("--seed", "3", "gan", "train", str(data), "--cond", "--loss", "hinge", "--run-dir", str(run), *TINY)
    assert res.exit_code == 0, res.output
    assert "skipped 1 unreadable file" in " ".join(res.output.split())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["images"] == 8 and cfg["skipped"] == 1 and cfg["classes"] == ["a", "b"] and cfg["channels"] == 1
    assert cfg["loop"]["seed"] == 3 and cfg["resolved"]["betas"] == [0.0, 0.9]
    G, meta = load_model_file(run / "G.safetensors")
    assert meta["arch"] == "dcgan_g" and meta["arch_kwargs"]["n_classes"] == 2
    assert G(torch.randn(2, 4), torch.tensor([0, 1])).shape == (2, 1, 8, 8)
    again = _run("--seed", "3", "gan", "train", str(data), "--cond", "--loss", "hinge", "--run-dir", str(run), *TINY)
    assert again.exit_code == 0 and "already trained" in again.output


def test_vae_commands(tmp_path: Path) -> None:
    data = _folder(tmp_path / "d", n=12)
    run = tmp_path / "vae"
    res = _run("vae", "train", str(data), "--run-dir", str(run), "--latent-dim", "2", "--iwae-k", "3",
               "--resolution", "8", "--batch-size", "4", "--width", "4", "--steps", "2")
    assert res.exit_code == 0, res.output
    ev = json.loads((run / "eval.json").read_text())["held_out"]
    assert ev["n"] == 1 and "iwae" in ev
    assert _run("vae", "sample", "-w", str(run), "--seeds", "0-3", "-o", str(tmp_path / "s.png")).exit_code == 0
    assert Image.open(tmp_path / "s.png").size == (17, 17)
    res = _run("vae", "reconstruct", "-w", str(run / "vae.safetensors"), str(data / "0.png"), "-o", str(tmp_path / "r.png"))
    assert res.exit_code == 0 and "PSNR" in res.output
    res = _run("vae", "interpolate", "-w", str(run), str(data / "0.png"), str(data / "1.png"), "--n", "4",
               "-o", str(tmp_path / "i.png"))
    assert res.exit_code == 0 and Image.open(tmp_path / "i.png").size == (4 * 9 - 1, 8)
    bad = _run("vae", "sample", "-w", str(run / "G.safetensors"), "-o", str(tmp_path / "x.png"))
    assert bad.exit_code == 1 and "not a VAE" in bad.output
    bad = _run("vae", "train", str(data), "--likelihood", "poisson")
    assert bad.exit_code == 2 and "--likelihood 'poisson'" in bad.output


@pytest.mark.parametrize("arch, extra", [
    ("lapgan", ["--resolution", "16"]),
    ("progan", ["--resolution", "8", "--phase-images", "4", "--fade-images", "4"]),
    ("msggan", ["--resolution", "8", "--combine", "cat_lin"]),
])
def test_multiscale_gan_train_then_generate_chain_morph_invert(tmp_path: Path, arch: str, extra: list) -> None:
    """``gan train --arch lapgan|progan|msggan`` writes a G.safetensors that ``generate`` (with ``--chain``, the
    per-scale picture), ``morph`` and ``invert --space z`` use through the generator protocol."""
    data = _folder(tmp_path / "d", n=8)
    run = tmp_path / "run"
    args = ["--batch-size", "4", "--width", "4", "--z-dim", "4", "--steps", "3", "--sample-every", "3"]
    res = _run("gan", "train", str(data), "--arch", arch, "--run-dir", str(run), *args, *extra)
    assert res.exit_code == 0, res.output
    loss = {"lapgan": "ns", "progan": "wgan-gp", "msggan": "rahinge"}[arch]
    assert json.loads((run / "config.json").read_text())["gan"]["loss"] == loss  # the arch's default loss
    assert (run / "samples" / "scales_000003.png").is_file()
    G = str(run / "G.safetensors")
    side = 16 if arch == "lapgan" else 8
    scales = 2  # lapgan 8 -> 16; progan (grown to 8 by step 2) and msggan: 4, 8
    res = _run("generate", "--weights", G, "--seeds", "0-2", "--grid", str(tmp_path / "g.png"), "--chain",
               str(tmp_path / "c.png"))
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "g.png").size == (2 * side, 2 * side)
    assert Image.open(tmp_path / "c.png").size == (scales * (side + 1) - 1, 3 * (side + 1) - 1)
    res = _run("morph", "1", "2", "--space", "z", "--frames", "3", "--weights", G, "--out-dir", str(tmp_path / "m"))
    assert res.exit_code == 0 and (tmp_path / "m" / "frame_002.png").is_file(), res.output
    res = _run("invert", str(tmp_path / "m" / "frame_001.png"), "--weights", G, "--space", "z", "--loss", "mse",
               "--steps", "2", "--out-dir", str(tmp_path / "inv"))
    assert res.exit_code == 0 and (tmp_path / "inv" / "frame_001.json").is_file(), res.output


def test_gan_train_ctrl_c_is_one_interrupted_line_and_exit_130(tmp_path: Path) -> None:
    """Ctrl-C is what the user asked for: the loop finishes the step, writes the checkpoint, and the command says so
    in one "interrupted:" line (not "error:") with the shell's exit code for SIGINT; the same command resumes."""
    import os
    import signal

    from imgforge.training.gan import GANMethod

    orig = GANMethod.step

    def interrupted(self, batch, step):  # type: ignore[no-untyped-def]
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return orig(self, batch, step)

    data, run = _folder(tmp_path / "d"), tmp_path / "run"
    GANMethod.step = interrupted  # type: ignore[method-assign]
    try:
        res = _run("gan", "train", str(data), "--run-dir", str(run), *TINY, "--steps", "4")
    finally:
        GANMethod.step = orig  # type: ignore[method-assign]
    assert res.exit_code == 130, res.output
    lines = [x for x in res.output.splitlines() if x.strip().startswith(("interrupted", "error"))]
    assert len(lines) == 1 and lines[0].startswith("interrupted: stopped at step 2"), res.output
    res = _run("gan", "train", str(data), "--run-dir", str(run), *TINY, "--steps", "4")
    assert res.exit_code == 0 and "resuming from" in " ".join(res.output.split()), res.output
    assert load_model_file(run / "G.safetensors")[1]["images_seen"] == "16"  # 4 steps of batch 4
