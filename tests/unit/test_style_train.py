"""Fast-style and AdaIN training: reference losses, data crops, exports, exact resume (SIGKILL through the CLI)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from imgforge.data.style_images import StyleImageFolder
from imgforge.errors import TrainingError
from imgforge.hub.modelfile import load_model_file, save_model_file
from imgforge.models.vgg import vgg16, vgg19
from imgforge.ops.stats import gram
from imgforge.training.adain import AdaINTrainConfig, train_adain
from imgforge.training.fast_style import FastStyleMethod, FastStyleTrainConfig, train_fast_style
from imgforge.training.loop import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _picture(seed: int, size: tuple[int, int]) -> Image.Image:
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    chans = [np.sin(xx / (3 + 4 * rng.random()) + 6 * rng.random()) * np.cos(yy / (4 + 4 * rng.random())) for _ in range(3)]
    return Image.fromarray(((np.stack(chans, -1) * 0.5 + 0.5) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("style_train")
    (d / "content").mkdir()
    (d / "styles").mkdir()
    for i in range(5):
        _picture(i, (40 + 4 * i, 36)).save(d / "content" / f"c{i}.png")
    for i in range(3):
        _picture(10 + i, (48, 44)).save(d / "styles" / f"s{i}.png")
    (d / "content" / "broken.png").write_bytes(b"not a png")
    torch.manual_seed(0)
    v16 = vgg16(last_layer="relu4_3", widths=(4, 8, 8, 8, 8))
    save_model_file(d / "vgg16.safetensors", v16.state_dict(), arch="vgg16",
                    arch_kwargs={"last_layer": "relu4_3", "widths": [4, 8, 8, 8, 8]})
    v19 = vgg19(last_layer="relu4_1", widths=(4, 8, 8, 512, 8))
    save_model_file(d / "vgg19.safetensors", v19.state_dict(), arch="vgg19",
                    arch_kwargs={"last_layer": "relu4_1", "widths": [4, 8, 8, 512, 8]})
    return {"dir": d, "content": d / "content", "styles": d / "styles", "style": d / "styles" / "s0.png",
            "vgg16": d / "vgg16.safetensors", "vgg19": d / "vgg19.safetensors"}


def test_style_image_folder_crops_are_a_function_of_the_step(files: dict) -> None:
    ds = StyleImageFolder([files["content"]], size=24, resize=32, crop="random", flip=True, seed=3)
    assert len(ds) == 5 and len(ds.skipped) == 1 and "broken.png" in ds.skipped[0]
    a = ds.batch([0, 1, 2], step=7)
    assert a.shape == (3, 3, 24, 24) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert torch.equal(a, StyleImageFolder([files["content"]], size=24, resize=32, crop="random", flip=True,
                                           seed=3).batch([0, 1, 2], step=7))
    assert not torch.equal(a, ds.batch([0, 1, 2], step=8))
    c = StyleImageFolder([files["content"]], size=24, crop="center")
    assert c.image(0).shape[-2] == 24 and torch.equal(c.get(0, 1), c.get(0, 2))
    (files["dir"] / "empty").mkdir(exist_ok=True)
    with pytest.raises(TrainingError, match="no readable training images"):
        StyleImageFolder([files["dir"] / "empty"], size=8)
    with pytest.raises(TrainingError, match="no such folder"):
        StyleImageFolder([files["dir"] / "missing"], size=8)


def test_fast_style_losses_are_the_reference_formulas(files: dict, tmp_path: Path) -> None:
    from imgforge.hub.modelfile import load_model_file as lmf

    vgg, _ = lmf(files["vgg16"])
    cfg = FastStyleTrainConfig(style=str(files["style"]), content_dirs=(str(files["content"]),), run_dir=str(tmp_path),
                               image_size=32)
    style = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(1))
    m = FastStyleMethod(cfg, vgg, style)
    batch = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    got = m.losses(batch)
    # reference: normalise_batch (ImageNet mean/std on /255), VGG relu layers, MSE of relu2_2, grams / (c*h*w)
    x = batch * 255
    y = m.net(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def feats(t: torch.Tensor) -> dict:
        h = (t / 255 - mean) / std
        out = {}
        names = ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2",
                 "pool2", "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "pool3", "conv4_1",
                 "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3"]
        for n, layer in zip(names, vgg.features):
            h = layer(h)
            out[n] = h
        return out

    fy, fx, fs = feats(y), feats(x), feats(style * 255)
    content = 1e5 * F.mse_loss(fy["relu2_2"], fx["relu2_2"])
    s = sum(F.mse_loss(gram(fy[k]), gram(fs[k]).repeat(2, 1, 1)) for k in ("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
    assert torch.allclose(got["content"], content, rtol=1e-4)
    assert torch.allclose(got["style"], 1e10 * s, rtol=1e-4)


def _fast_cmd(files: dict, run: Path, steps: int) -> list:
    return [sys.executable, "-m", "imgforge", "--precision", "fp32", "--quiet", "fast-style", "train",
            "--style", str(files["style"]), "--content-dir", str(files["content"]), "--run-dir", str(run),
            "--vgg", str(files["vgg16"]), "--image-size", "32", "--batch-size", "2", "--steps", str(steps),
            "--checkpoint-every", "2", "--log-every", "1", "--crop", "random", "--shuffle", "--style-size", "40"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "IMGFORGE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_fast_style_resume_gives_the_same_loss_curve(files: dict, tmp_path: Path) -> None:
    def cfg(run: Path, steps: int) -> FastStyleTrainConfig:
        return FastStyleTrainConfig(style=str(files["style"]), content_dirs=(str(files["content"]),), run_dir=str(run),
                                    vgg=str(files["vgg16"]), image_size=32, batch_size=2, steps=steps,
                                    checkpoint_every=2, log_every=1, crop="random", shuffle=True, style_size=40)

    full = train_fast_style(cfg(tmp_path / "a", 5))
    train_fast_style(cfg(tmp_path / "b", 3))  # as if stopped after step 3
    resumed = train_fast_style(cfg(tmp_path / "b", 5))
    assert resumed == full and full[-1]["style"] < full[0]["style"]
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 5


@pytest.mark.slow
def test_fast_style_sigkill_then_resume_gives_the_same_loss_curve(files: dict, tmp_path: Path) -> None:
    """Through the CLI in real processes (about 30 s on a loaded 2-core machine): kill -9, run again, compare."""
    steps = 6
    ref = tmp_path / "ref"
    subprocess.run(_fast_cmd(files, ref, steps), check=True, env=_env(), timeout=300, capture_output=True)
    run = tmp_path / "killed"
    proc = subprocess.Popen(_fast_cmd(files, run, steps), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        ck = run / "checkpoint.pt"
        if ck.exists():
            try:
                if load_checkpoint(ck)["step"] >= 2:
                    break
            except TrainingError:
                pass
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 2 <= killed_at < steps
    subprocess.run(_fast_cmd(files, run, steps), check=True, env=_env(), timeout=300, capture_output=True)
    want = [json.loads(x) for x in (ref / "losses.jsonl").read_text().splitlines()]
    got = [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]
    assert len(got) == steps
    assert got == want, [(a, b) for a, b in zip(got, want) if a != b]
    assert want[-1]["style"] < want[0]["style"]
    # checkpoint artefacts: a model file usable by stylize, a sample per checkpoint
    net, meta = load_model_file(run / "model.safetensors")
    assert meta["arch"] == "fast_style" and meta["steps"] == str(steps) and meta["style_image"] == "s0.png"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000004.png",
                                                                   "step_000006.png"]
    a, b = load_model_file(ref / "model.safetensors")[0].state_dict(), net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_adain_training_resumes_exactly_and_exports_a_decoder(files: dict, tmp_path: Path) -> None:
    def cfg(run: Path, steps: int) -> AdaINTrainConfig:
        return AdaINTrainConfig(content_dirs=(str(files["content"]),), style_dirs=(str(files["styles"]),),
                                run_dir=str(run), vgg=str(files["vgg19"]), image_size=32, resize=40, batch_size=2,
                                steps=steps, checkpoint_every=2, log_every=1, lr=1e-3)

    full = train_adain(cfg(tmp_path / "a", 4))
    train_adain(cfg(tmp_path / "b", 2))  # stops after 2 steps, as an interrupted run would
    resumed = train_adain(cfg(tmp_path / "b", 4))
    assert [r["total"] for r in resumed] == [r["total"] for r in full]
    assert [r["lr"] for r in full] == pytest.approx([1e-3 / (1 + 5e-5 * i) for i in range(4)])
    dec, meta = load_model_file(tmp_path / "b" / "decoder.safetensors")
    assert meta["arch"] == "adain_decoder" and meta["encoder"] == str(files["vgg19"].resolve())
    assert (tmp_path / "b" / "samples" / "step_000004.png").is_file()
    warm = train_adain(dataclasses.replace(cfg(tmp_path / "c", 4), warmup_steps=2))
    assert [r["lr"] for r in warm] == pytest.approx([1e-3 / (1 + 5e-5 * i) * min(1, (i + 1) / 2) for i in range(4)])


def test_fast_style_sigterm_exports_the_network_of_the_interrupt_step(files: dict, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM between checkpoints: the checkpoint and model.safetensors are both of the step reached (the recipe
    packages that file after a ``timeout -s TERM``), not of the last periodic export."""
    from imgforge.training.loop import Interrupted

    real_step = FastStyleMethod.step

    def step(self: FastStyleMethod, batch: torch.Tensor, i: int) -> dict:
        out = real_step(self, batch, i)
        if i == 2:  # during the third step
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(FastStyleMethod, "step", step)
    run = tmp_path / "run"
    cfg = FastStyleTrainConfig(style=str(files["style"]), content_dirs=(str(files["content"]),), run_dir=str(run),
                               vgg=str(files["vgg16"]), image_size=32, batch_size=2, steps=10, checkpoint_every=2,
                               log_every=1, style_size=40)
    with pytest.raises(Interrupted):
        train_fast_style(cfg)
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] == 3
    net, meta = load_model_file(run / "model.safetensors")
    assert meta["steps"] == "3"
    want = ck["method"]["net"]
    assert all(torch.equal(want[k], v) for k, v in net.state_dict().items())


def test_adain_sigterm_exports_the_decoder_of_the_interrupt_step(files: dict, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """As for fast style: after SIGTERM between checkpoints (a ``timeout -s TERM`` / ``--max-seconds`` run) the
    checkpoint and decoder.safetensors are both of the step reached."""
    from imgforge.training.adain import AdaINMethod
    from imgforge.training.loop import Interrupted

    real_step = AdaINMethod.step

    def step(self: AdaINMethod, batch: tuple, i: int) -> dict:
        out = real_step(self, batch, i)
        if i == 2:  # during the third step
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(AdaINMethod, "step", step)
    run = tmp_path / "run"
    cfg = AdaINTrainConfig(content_dirs=(str(files["content"]),), style_dirs=(str(files["styles"]),),
                           run_dir=str(run), vgg=str(files["vgg19"]), image_size=32, resize=40, batch_size=2,
                           steps=10, checkpoint_every=2, log_every=1, lr=1e-3)
    with pytest.raises(Interrupted):
        train_adain(cfg)
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] == 3
    dec, meta = load_model_file(run / "decoder.safetensors")
    assert meta["steps"] == "3" and meta["arch"] == "adain_decoder"
    want = ck["method"]["decoder"]
    assert all(torch.equal(want[k], v) for k, v in dec.state_dict().items())
