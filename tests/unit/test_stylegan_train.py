"""StyleGAN2 trainer on tiny models: every loss and regulariser runs, exact resume (crash and SIGKILL), export,
image-folder dataset, augmentation."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.data.stylegan_images import ImageFolderDataset
from imgforge.errors import TrainingError
from imgforge.jobs.generate import load_generator_for
from imgforge.training.augment import AUG_OPS, AdaptiveAugment, augment
from imgforge.training.loop import LoopConfig, load_checkpoint
from imgforge.training.stylegan2 import StyleGAN2Method, StyleGAN2TrainConfig, channel_table, step_seed, train_stylegan2

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = StyleGAN2TrainConfig(resolution=8, z_dim=8, w_dim=8, map_layers=1, channel_base=32, channel_max=8,
                            batch_size=4, r1_every=2, sample_grid=4)


class Blobs:
    """12 images ``(3, R, R)`` in [-1, 1]: a bright square at a position that depends on the index."""

    def __init__(self, res: int = 8, n: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = -torch.ones(n, 3, res, res)
        for i in range(n):
            y, x = divmod(i % 9, 3)
            self.x[i, :, y * 2:y * 2 + 3, x * 2:x * 2 + 3] = 1.0
        self.x += 0.05 * torch.randn(self.x.shape, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, idx, device="cpu"):  # type: ignore[no-untyped-def]
        return self.x[list(idx)].to(device)


def _train(run: Path, steps: int, cfg: StyleGAN2TrainConfig = TINY, **kw):  # type: ignore[no-untyped-def]
    torch.manual_seed(1234)  # must not matter
    loop = LoopConfig(str(run), steps, seed=5, checkpoint_every=kw.pop("every", 3), sample_every=kw.pop("sample", 0),
                      log_every=1)
    return train_stylegan2(Blobs(cfg.resolution), cfg, loop, **kw)


def test_channel_table_is_nvidia_formula() -> None:
    assert channel_table(32, 1024, 128) == {4: 128, 8: 128, 16: 64, 32: 32}
    assert channel_table(1024, 32768, 512)[1024] == 32
    assert step_seed(0, 1) != step_seed(0, 2) != step_seed(1, 1) and step_seed(3, 4, 1) == step_seed(3, 4, 1)


@pytest.mark.parametrize("loss, extra", [
    ("logistic", dict(pl_weight=2.0, pl_every=2, augment="ada", ada_interval=1, ada_kimg=0.01)),
    ("lsgan", dict(augment="fixed", augment_p=0.5, mixing_prob=0.0)),
    ("wgan-gp", dict()),
    ("hinge", dict(r1_gamma=0.0)),
    ("logistic", dict(ms_weight=1.0, mbstd_group=2)),
])
def test_each_loss_and_regulariser_runs(tmp_path: Path, loss: str, extra: dict) -> None:
    cfg = replace(TINY, loss=loss, **extra)
    res = _train(tmp_path / loss, 4, cfg)
    rows = res.history
    assert len(rows) == 4 and all(math.isfinite(v) for r in rows for v in r.values())
    keys = set().union(*rows)
    assert {"loss_D", "loss_G", "D_real", "D_fake"} <= keys
    assert ("r1" in keys) == (loss != "wgan-gp" and cfg.r1_gamma > 0)
    assert ("gp" in keys) == (loss == "wgan-gp")
    assert ("pl" in keys) == (cfg.pl_weight > 0)
    assert ("ms" in keys) == (cfg.ms_weight > 0)
    if cfg.augment == "ada":
        assert rows[-1]["p_aug"] > 0  # D is sure of the reals at first: p goes up
    G, _ = load_generator_for(str(res.generator))
    assert G.img_resolution == 8 and G.z_dim == 8
    assert torch.equal(G.w_avg, res.method.G_ema.latent_avg) and G.w_avg.abs().sum() > 0


def test_mode_seeking_term_penalises_a_generator_that_ignores_z() -> None:
    """The mode-seeking loss is ~1/ratio: small for images that change with z, huge for collapsed ones."""
    from imgforge.training.stylegan2 import StyleGAN2Method

    class _Data:
        def batch(self, idx, device):  # noqa: ANN001, ANN202
            return torch.zeros(len(idx), 3, 8, 8)

    cfg = replace(TINY, ms_weight=1.0, r1_gamma=0.0, mixing_prob=0.0)
    torch.manual_seed(0)
    m = StyleGAN2Method(cfg, _Data(), "cpu", seed=0)
    varied = m.step([0, 1, 2, 3], 0)["ms"]
    with torch.no_grad():  # make every image the same: no style reaches the output any more
        for name, p in m.G.named_parameters():
            if "modulation.weight" in name:
                p.zero_()
    collapsed = m.step([0, 1, 2, 3], 1)["ms"]
    assert varied < 50 and collapsed > 20 * varied  # (noise inputs still vary the collapsed images a little)


def test_resume_after_crash_is_exact_and_exports(tmp_path: Path, crash_at) -> None:
    full = _train(tmp_path / "full", 7, sample=4)
    assert (tmp_path / "full" / "samples" / "step_000004.png").is_file()
    assert (tmp_path / "full" / "samples" / "step_000007.png").is_file()  # final grid
    assert Image.open(tmp_path / "full" / "samples" / "step_000004.png").size == (16, 16)
    run = tmp_path / "crash"
    with crash_at(StyleGAN2Method, 5):
        _train(run, 7)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    resumed = _train(run, 7)
    assert resumed.history == full.history
    a = load_generator_for(str(full.generator))[0].state_dict()
    b = load_generator_for(str(resumed.generator))[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_other_architecture_is_refused(tmp_path: Path) -> None:
    _train(tmp_path / "r", 2)
    with pytest.raises(TrainingError, match="does not fit"):
        _train(tmp_path / "r", 4, replace(TINY, channel_base=64))


SCRIPT = textwrap.dedent("""
    import sys, time, json
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_stylegan_train import TINY, Blobs
    from imgforge.training.loop import LoopConfig
    from imgforge.training.stylegan2 import StyleGAN2Method, train_stylegan2
    orig = StyleGAN2Method.step
    def slow(self, batch, step):
        time.sleep({delay})
        return orig(self, batch, step)
    StyleGAN2Method.step = slow
    train_stylegan2(Blobs(), TINY, LoopConfig({run!r}, 12, seed=5, checkpoint_every=2, log_every=1))
""")


def _script(tmp: Path, run: Path, delay: float) -> Path:
    p = tmp / f"train_{run.name}_{delay}.py"
    p.write_text(SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests" / "unit"), run=str(run), delay=delay))
    return p


def _losses(run: Path) -> list:
    return [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]


def test_sigkill_then_resume_gives_the_same_losses(tmp_path: Path) -> None:
    # reference: the same run, uninterrupted, in this process (per-step seeds make the process history irrelevant)
    want = train_stylegan2(Blobs(), TINY, LoopConfig(str(tmp_path / "ref"), 12, seed=5, checkpoint_every=2,
                                                     log_every=1)).history
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, _script(tmp_path, run, 0.15)])
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if load_checkpoint(run / "checkpoint.pt")["step"] >= 4:
                break
        except Exception:
            pass
        assert proc.poll() is None, "training ended early"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 4 <= killed_at < 12
    subprocess.run([sys.executable, _script(tmp_path, run, 0.0)], check=True, timeout=300)
    got = _losses(run)
    assert len(got) == 12 and got == want


def test_image_folder_dataset(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(np.full((20, 30), 255, np.uint8), mode="L").save(d / "a.png")  # grey, wide
    Image.fromarray(np.zeros((16, 16, 4), np.uint8), mode="RGBA").save(d / "sub" / "b.png")
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(d / "c.jpg")
    (d / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(d, 8, mirror=True, cache=tmp_path / "cache.pt")
    assert [p.name for p in ds.paths] == ["a.png", "c.jpg", "b.png"] and len(ds) == 6
    x = ds.batch([0, 2, 3])
    assert x.shape == (3, 3, 8, 8) and x.dtype == torch.float32
    assert x[0].min() == 1.0 and x[1].max() == -1.0 and x.min() >= -1 and x.max() <= 1
    assert torch.equal(ds.batch([4])[0], ds.batch([1])[0].flip(2))
    again = ImageFolderDataset(d, 8, mirror=True, cache=tmp_path / "cache.pt")  # from the cache
    assert torch.equal(again.images, ds.images)
    with pytest.raises(TrainingError, match="no images"):
        ImageFolderDataset(tmp_path / "imgs" / "sub" / "..", 8, max_images=0)
    with pytest.raises(TrainingError, match="not a folder"):
        ImageFolderDataset(tmp_path / "missing", 8)
    (d / "bad.png").write_bytes(b"\x89PNG broken")
    ds = ImageFolderDataset(d, 8)  # an unreadable image is skipped and counted, not the end of training
    assert ds.images.shape[0] == 3 and len(ds.skipped) == 1 and "bad.png" in ds.skipped[0]
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(TrainingError, match="bad.png"):
        ImageFolderDataset(only_bad, 8)


def test_augment_is_identity_at_p0_and_differentiable() -> None:
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    assert augment(x, 0.0) is x
    g = torch.Generator().manual_seed(0)
    y = augment(x, 1.0, AUG_OPS, generator=g)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    z = augment(x.detach(), 1.0, ("translate",), generator=torch.Generator().manual_seed(0))
    z2 = augment(x.detach(), 1.0, ("translate",), generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, z2)
    with pytest.raises(ValueError, match="unknown"):
        AdaptiveAugment(ops=("blur",))


def test_adaptive_p_follows_the_heuristic() -> None:
    ada = AdaptiveAugment(p=0.5, target=0.6, interval=2, speed_kimg=1.0)
    ada.accumulate(torch.ones(8))  # D sure of every real: r_t = 1 > 0.6 -> p up
    ada.update(1, 100)
    assert ada.p == 0.5
    ada.update(2, 100)
    assert ada.p == pytest.approx(0.7) and ada.last_rt == 1.0
    ada.accumulate(-torch.ones(8))
    ada.update(4, 100)
    assert ada.p == pytest.approx(0.5)
    state = ada.state_dict()
    other = AdaptiveAugment()
    other.load_state_dict(state)
    assert other.p == ada.p
    fixed = AdaptiveAugment(p=0.3, adaptive=False)
    fixed.accumulate(torch.ones(4))
    fixed.update(4, 100)
    assert fixed.p == 0.3
