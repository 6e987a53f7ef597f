"""``imgforge gan train`` library on tiny models: every loss runs, paper defaults, exact resume (crash and SIGKILL),
MM vs NS generator gradients, the exported G.safetensors, the image folder with labels / grey / corrupt files, and
(slow) two torchrun processes equal one process."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.data.gan_images import TrainingImages, image_folder
from imgforge.errors import TrainingError, UsageError
from imgforge.hub.modelfile import load_model_file
from imgforge.losses.gan_family import LOSSES
from imgforge.training.gan import GANMethod, GANTrainConfig, train_gan
from imgforge.training.loop import LoopConfig, load_checkpoint
from tests.conftest import assert_same_generator

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def squares(res: int = 8, n: int = 24, classes: int = 0) -> TrainingImages:
    """``n`` grey images: a bright square on black at one of 9 places (class = place % classes)."""
    x = -torch.ones(n, 1, res, res)
    s = res // 3
    for i in range(n):
        r, c = divmod(i % 9, 3)
        x[i, 0, r * s:r * s + s + 1, c * s:c * s + s + 1] = 1.0
    labels = torch.arange(n) % 9 % classes if classes else None
    names = tuple(str(i) for i in range(classes)) if classes else ()
    return TrainingImages(((x + 1) * 127.5).round().to(torch.uint8), labels, names)


TINY = GANTrainConfig(arch="dcgan", resolution=8, z_dim=8, batch_size=4, width=8, sample_grid=4)


def _train(run: Path, steps: int, cfg: GANTrainConfig = TINY, data: TrainingImages = None, **kw):  # type: ignore[no-untyped-def]
    torch.manual_seed(1234)  # must not matter
    loop = LoopConfig(str(run), steps, seed=5, checkpoint_every=kw.pop("every", 3), sample_every=kw.pop("sample", 0),
                      log_every=1)
    return train_gan(data if data is not None else squares(cfg.resolution, classes=3 if cfg.cond else 0), cfg,
                     loop, **kw)


@pytest.mark.parametrize("loss", LOSSES)
def test_each_loss_runs_dcgan_steps_without_nan(tmp_path: Path, loss: str) -> None:
    cfg = GANTrainConfig(**{**TINY.__dict__, "loss": loss})
    res = _train(tmp_path / loss, 3, cfg)
    rows = res.history
    assert len(rows) == 3 and all(math.isfinite(v) for r in rows for v in r.values())
    keys = set().union(*rows)
    assert {"loss_D", "loss_G", "D_real", "D_fake", "G_grad"} <= keys
    assert ("gp" in keys) == (loss in ("wgan-gp", "dragan"))
    assert ({"M_global", "k"} <= keys) == (loss == "began")
    m = res.method
    hp = cfg.resolved()
    assert hp["d_steps"] == (5 if loss in ("wgan", "wgan-gp") else 1)
    assert m.images_seen == 3 * 4 * hp["d_steps"]
    assert isinstance(m.g_opt, torch.optim.RMSprop) == (loss == "wgan")
    assert m.d_arch == ("began_d" if loss == "began" else "dcgan_d")
    if loss == "wgan":  # weight clipping
        assert max(float(p.detach().abs().max()) for p in m.D.parameters()) <= 0.01 + 1e-7
    if loss in ("wgan-gp", "dragan"):  # no batch norm in the critic
        assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.D.modules())


def test_overrides_replace_the_paper_defaults() -> None:
    cfg = GANTrainConfig(loss="wgan", d_steps=2, lr_g=1e-3, clip=0.05)
    hp = cfg.resolved()
    assert (hp["d_steps"], hp["lr_g"], hp["lr_d"], hp["clip"], hp["optimizer"]) == (2, 1e-3, 5e-5, 0.05, "rmsprop")
    assert GANTrainConfig(loss="wgan-gp").resolved()["betas"] == (0.0, 0.9)
    with pytest.raises(UsageError, match="--loss"):
        GANTrainConfig(loss="minimax").validate()
    with pytest.raises(UsageError, match="--resolution 24"):
        GANTrainConfig(resolution=24).validate()
    with pytest.raises(UsageError, match="--arch"):
        GANTrainConfig(arch="resnet").validate()
    # a loss's own settings given with another loss would do nothing: refused (the other loss's own are fine)
    for kw, loss, words in [(dict(gp_lambda=10.0), "hinge", "--gp-lambda is for --loss wgan-gp|dragan, not hinge"),
                            (dict(gamma=0.5), "ns", "--gamma is for --loss began, not ns"),
                            (dict(lambda_k=0.01), "wgan", "lambda_k is for --loss began, not wgan"),
                            (dict(began_h=32), "lsgan", "began_h is for --loss began, not lsgan"),
                            (dict(drift=0.001), "began", "--drift is for --loss .*, not began"),
                            (dict(d_dropout=0.2), "ns", "d_dropout is for --arch mlp|lapgan, not dcgan"),
                            (dict(betas=(0.5, 0.9)), "wgan", "--beta1/--beta2 are for --optimizer adam, not rmsprop")]:
        with pytest.raises(UsageError, match=words.replace("|", "[|]")):
            GANTrainConfig(loss=loss, **kw).validate()
    GANTrainConfig(loss="dragan", gp_lambda=5.0, drift=0.01, clip=0.1).validate()
    GANTrainConfig(loss="began", gamma=0.7, lambda_k=0.01, began_h=32).validate()
    GANTrainConfig(arch="mlp", loss="hinge", d_dropout=0.2).validate()
    GANTrainConfig(loss="wgan", optimizer="adam", betas=(0.5, 0.9)).validate()


def test_mlp_and_conditional_runs_and_export_loads(tmp_path: Path) -> None:
    cfg = GANTrainConfig(**{**TINY.__dict__, "arch": "mlp", "cond": True, "width": 4})
    res = _train(tmp_path / "mlp", 2, cfg, sample=1)
    assert all(math.isfinite(v) for r in res.history for v in r.values())
    run = tmp_path / "mlp"
    for name in ("G.safetensors", "index.html", "losses.jsonl", "config.json", "samples/step_000002.png"):
        assert (run / name).is_file(), name
    # conditional grid: one row per class (3), min(sample_grid, 10) = 4 seeds per row, 1-pixel gutters
    assert Image.open(run / "samples" / "step_000002.png").size == (4 * 9 - 1, 3 * 9 - 1)
    G, meta = load_model_file(res.generator)
    assert meta["arch"] == "mlp_gan_g" and meta["arch_kwargs"]["n_classes"] == 3
    assert json.loads(meta["class_names"]) == ["0", "1", "2"]
    z, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    m = res.method.G.eval()
    with torch.no_grad():
        assert torch.equal(G(z, y), m(z, y))
    assert "loss_G" in (run / "index.html").read_text()


def test_mm_gradient_vanishes_when_d_rejects_samples(tmp_path: Path) -> None:
    """Same seeds, same D steps: once D rejects the samples (D_fake < 0), the saturating loss gives G a smaller
    gradient than the non-saturating one (the reason NS exists)."""
    data = squares(16)
    grads, fakes = {}, {}
    for loss in ("mm", "ns"):
        cfg = GANTrainConfig(arch="dcgan", loss=loss, resolution=16, z_dim=8, batch_size=8, width=8, d_steps=3,
                             lr_d=2e-3)
        h = _train(tmp_path / loss, 5, cfg, data).history
        grads[loss] = [r["G_grad"] for r in h]
        fakes[loss] = [r["D_fake"] for r in h]
    assert fakes["mm"][0] == fakes["ns"][0]  # identical D before the first G step
    assert all(f < -0.3 for f in fakes["mm"][2:])
    assert all(a < 0.6 * b for a, b in zip(grads["mm"][2:], grads["ns"][2:])), grads


#: adaptive augmentation whose p moves at step 4 (test_ada_moves_p_by_its_speed)
ADA = dict(augment="ada", augment_p=0.9, ada_kimg=0.04, ada_target=0.5)


@pytest.mark.parametrize("loss, cond, extra", [("ns", True, {}), ("wgan-gp", False, {}), ("began", False, {}),
                                               ("ns", False, ADA)])
def test_resume_after_crash_is_exact(tmp_path: Path, crash_at, loss: str, cond: bool, extra: dict) -> None:
    # with ADA (p 0.9 -> 0.5 at step 4) the run resumes after step 5 with the checkpoint's p and sign counters
    every, steps = (5, 9) if extra else (3, 5)
    cfg = GANTrainConfig(**{**TINY.__dict__, "loss": loss, "cond": cond, **extra})
    full = _train(tmp_path / "full", steps, cfg, every=every)
    run = tmp_path / "crash"
    with crash_at(GANMethod, every + 1):
        _train(run, steps, cfg, every=every)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == every
    resumed = _train(run, steps, cfg, every=every)
    assert resumed.history == full.history
    assert_same_generator(full.generator, resumed.generator)
    if loss == "began":
        assert resumed.method.began.k == full.method.began.k


def test_ctrl_c_writes_checkpoint_generator_and_page(tmp_path: Path) -> None:
    from imgforge.training.loop import Interrupted

    orig = GANMethod.step

    def interrupted(self, batch, step):  # type: ignore[no-untyped-def]
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)  # handled by the loop: this step finishes, then it stops
        return orig(self, batch, step)

    GANMethod.step = interrupted  # type: ignore[method-assign]
    try:
        with pytest.raises(Interrupted, match="stopped at step 2"):
            _train(tmp_path / "r", 6, every=5)
    finally:
        GANMethod.step = orig  # type: ignore[method-assign]
    run = tmp_path / "r"
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2
    assert (run / "G.safetensors").is_file() and (run / "samples" / "step_000002.png").is_file()
    assert "step 2" in (run / "index.html").read_text()


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    _train(tmp_path / "r", 1)
    with pytest.raises(TrainingError, match="does not fit"):
        _train(tmp_path / "r", 2, GANTrainConfig(**{**TINY.__dict__, "width": 4}))


def test_resume_trains_at_the_new_learning_rates(tmp_path: Path) -> None:
    # resumed with --lr-g 0 --lr-d 0, Adam must leave every weight of G and D as the checkpoint had it (before the
    # fix the optimisers took the checkpoint's 2e-4 back and went on training)
    _train(tmp_path / "r", 2, every=2)
    saved = load_checkpoint(tmp_path / "r" / "checkpoint.pt")["method"]
    frozen = GANTrainConfig(**{**TINY.__dict__, "lr_g": 0.0, "lr_d": 0.0})
    resumed = _train(tmp_path / "r", 4, frozen, every=2)
    assert [row["step"] for row in resumed.history[-2:]] == [3.0, 4.0]
    for net in ("G", "D"):
        for name, p in getattr(resumed.method, net).named_parameters():
            assert torch.equal(p.detach(), saved[net][name]), f"{net}.{name} changed at lr 0"


def test_resume_with_another_fixed_augment_p_uses_it(tmp_path: Path) -> None:
    # a fixed p is a setting (like the learning rate); an adaptive run goes on from the checkpoint's p
    _train(tmp_path / "r", 2, GANTrainConfig(**{**TINY.__dict__, "augment": "fixed", "augment_p": 0.2}), every=2)
    resumed = _train(tmp_path / "r", 3, GANTrainConfig(**{**TINY.__dict__, "augment": "fixed", "augment_p": 0.7}))
    assert resumed.method.aug.p == 0.7
    _train(tmp_path / "a", 4, GANTrainConfig(**{**TINY.__dict__, **ADA}), every=4)  # p 0.9 -> 0.5 at step 4
    resumed = _train(tmp_path / "a", 5, GANTrainConfig(**{**TINY.__dict__, **ADA}))
    assert resumed.method.aug.p == pytest.approx(0.5)


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_gan_train import TINY, squares
    from imgforge.training.gan import GANMethod, train_gan
    from imgforge.training.loop import LoopConfig
    orig = GANMethod.step
    def slow(self, batch, step):
        time.sleep({delay})
        return orig(self, batch, step)
    GANMethod.step = slow
    train_gan(squares(), TINY, LoopConfig({run!r}, 10, seed=5, checkpoint_every=2, log_every=1))
""")


def test_sigkill_then_resume_gives_the_same_losses(tmp_path: Path) -> None:
    want = _train(tmp_path / "ref", 10, every=2).history
    run = tmp_path / "killed"
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests" / "unit"), run=str(run), delay=0.3))
    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            ck = run / "checkpoint.pt"
            if ck.is_file():
                try:
                    if load_checkpoint(ck)["step"] >= 4:
                        break
                except TrainingError:
                    pass
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 4 <= step < 10
    got = _train(run, 10, every=2).history
    assert got == want


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_image_folder_labels_grey_and_corrupt_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        for i in range(3):
            _png(tmp_path / "d" / cls / f"{i}.png", rng.integers(0, 255, (12, 10), dtype=np.uint8))
    (tmp_path / "d" / "dogs" / "broken.png").write_bytes(b"\x89PNG not really")
    data = image_folder(tmp_path / "d", 8, labels=True)
    assert len(data) == 6 and data.channels == 1 and data.class_names == ("cats", "dogs")
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1] and len(data.skipped) == 1
    x, y = data.batch([0, 5])
    assert x.shape == (2, 1, 8, 8) and -1 <= float(x.min()) and float(x.max()) <= 1 and y.tolist() == [0, 1]
    assert image_folder(tmp_path / "d", 8, channels=3).channels == 3
    _png(tmp_path / "d" / "cats" / "colour.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    assert image_folder(tmp_path / "d", 8).channels == 3  # one colour image: RGB
    _png(tmp_path / "d" / "loose.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    with pytest.raises(UsageError, match="--cond needs one sub-folder per class"):
        image_folder(tmp_path / "d", 8, labels=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="no images"):
        image_folder(tmp_path / "empty", 8)


DDP_SCRIPT = textwrap.dedent("""
    import os, sys, json
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_gan_train import DDP_CFG, squares
    from imgforge.training.gan import train_gan
    from imgforge.training.loop import LoopConfig
    res = train_gan(squares(), DDP_CFG, LoopConfig({run!r}, 4, seed=3, checkpoint_every=4, log_every=1))
    if int(os.environ.get("RANK", 0)) == 0:
        torch.save({{"G": res.method.G.state_dict(), "D": res.method.D.state_dict()}}, os.path.join({run!r}, "nets.pt"))
""")

#: No batch norm, no dropout: what one process computes on a global batch, two compute on its halves.
DDP_CFG = GANTrainConfig(arch="mlp", loss="ns", resolution=8, z_dim=8, batch_size=4, width=4, d_dropout=0.0,
                         d_steps=2, sample_grid=4)


@pytest.mark.slow
def test_two_torchrun_processes_equal_one_process(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    if not Path(torchrun).exists():
        pytest.skip("torchrun not found")
    out = {}
    for n in (1, 2):
        run = tmp_path / f"p{n}"
        script = tmp_path / f"ddp{n}.py"
        script.write_text(DDP_SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests" / "unit"), run=str(run)))
        cmd = [torchrun, "--standalone", "--nproc_per_node", str(n), str(script)] if n > 1 else [sys.executable, str(script)]
        subprocess.run(cmd, check=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": os.environ["PATH"]})
        out[n] = ([json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()],
                  torch.load(run / "nets.pt", weights_only=True))
    (h1, n1), (h2, n2) = out[1], out[2]
    assert json.loads((tmp_path / "p2" / "config.json").read_text())["world_size"] == 2
    assert len(h1) == len(h2) == 4
    for a, b in zip(h1, h2):
        for k in ("loss_D", "loss_G", "G_grad"):
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
    for net in ("G", "D"):
        for k in n1[net]:
            assert torch.allclose(n1[net][k], n2[net][k], rtol=1e-4, atol=1e-6), (net, k)


def test_ema_update_is_the_half_life_average() -> None:
    from imgforge.training.loop import ema_update

    model, ema = torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        model.weight.fill_(3.0)
        ema.weight.fill_(1.0)
        model.running_mean.fill_(7.0)
    # half-life 1,000 images, batch 1,000, ramp-up long past: beta = 0.5 -> halfway
    beta = ema_update(ema, model, 1000, 10 ** 9, 1.0)
    assert beta == 0.5 and torch.allclose(ema.weight, torch.full((2,), 2.0))
    assert torch.equal(ema.running_mean, model.running_mean)  # buffers are copied
    # ramp-up: after 100 images at ramp-up 0.05 the half-life is 5 images, so beta = 0.5 ** (10 / 5)
    assert ema_update(ema, model, 10, 100, 1.0) == pytest.approx(0.25)


def test_ema_generator_is_exported_sampled_and_resumed_exactly(tmp_path: Path) -> None:
    cfg = GANTrainConfig(**{**TINY.__dict__, "ema_kimg": 0.01})
    full = _train(tmp_path / "full", 5, cfg, sample=5)
    m = full.method
    exported, _ = load_model_file(full.generator)
    sd = exported.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in m.G_ema.state_dict().items())
    assert not all(torch.equal(sd[k], v) for k, v in m.G.state_dict().items())  # the average, not the last G
    run = tmp_path / "split"
    _train(run, 3, cfg)
    resumed = _train(run, 5, cfg)
    assert resumed.history == full.history
    assert_same_generator(full.generator, resumed.generator)
    _train(tmp_path / "plain", 1)
    with pytest.raises(TrainingError, match="no moving average"):  # a run without the average cannot resume with it
        _train(tmp_path / "plain", 2, cfg)
    with pytest.raises(UsageError, match="--ema-kimg"):
        GANTrainConfig(ema_kimg=-1.0).validate()


def test_signals_during_the_final_export_do_not_lose_the_generator(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """GNU ``timeout`` that fires while G.safetensors is written sends TERM twice (the process, then its group): the
    export must still complete (before, the default handler killed the process half-way)."""
    export = GANMethod.export

    def export_under_fire(self, path):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        return export(self, path)

    monkeypatch.setattr(GANMethod, "export", export_under_fire)
    before = signal.getsignal(signal.SIGTERM)
    res = _train(tmp_path / "run", 2)
    G, _ = load_model_file(res.generator)
    assert (tmp_path / "run" / "index.html").is_file() and len(res.history) == 2
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored afterwards


def _spy_d(method: GANMethod) -> list:
    """Record every image batch the discriminator of ``method`` is given."""
    seen: list = []
    forward = method.D.forward

    def spy(x, *a, **k):  # type: ignore[no-untyped-def]
        seen.append(x.detach().clone())
        return forward(x, *a, **k)

    method.D.forward = spy  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("augment", [None, "fixed"])
def test_augment_changes_every_image_d_sees(augment: str) -> None:
    # cutout at p = 1 zeroes a square of every real and generated image D scores (also in G's step); the squares
    # data is -1/+1 and tanh outputs are never exactly 0, so a 0 marks an augmented image
    extra = dict(augment=augment, augment_p=1.0, augment_ops=("cutout",)) if augment else {}
    cfg = GANTrainConfig(**{**TINY.__dict__, **extra})
    torch.manual_seed(0)
    method = GANMethod(cfg, squares(8), seed=3)
    seen = _spy_d(method)
    out = method.step([[0, 1, 2, 3]], 0)
    assert len(seen) == 3  # D step: real and fake; G step: fake
    holes = [bool((x == 0).flatten(1).any(1).all()) for x in seen]
    assert holes == [augment is not None] * 3
    assert ("p_aug" in out) == (augment is not None)


def test_ada_moves_p_by_its_speed(tmp_path: Path) -> None:
    # this tiny D scores most real images below 0 in its first steps (mean sign < 0, below the target 0.5), so p falls
    # from 0.9 by batch * interval / (kimg * 1000) = 4 * 4 / 40 = 0.4 every 4 steps, and stays at 0 from 0
    down = GANTrainConfig(**{**TINY.__dict__, **ADA})
    full = _train(tmp_path / "full", 9, down)
    assert [h["p_aug"] for h in full.history] == pytest.approx([0.9] * 3 + [0.5] * 4 + [0.1] * 2)
    assert full.method.aug.last_rt < 0.5
    flat = _train(tmp_path / "flat", 5, GANTrainConfig(**{**down.__dict__, "augment_p": None}))
    assert [h["p_aug"] for h in flat.history] == [0.0] * 5
    plain = _train(tmp_path / "plain", 5)  # at p = 0 augmenting changes nothing: the losses of a plain run
    assert [{k: v for k, v in h.items() if k != "p_aug"} for h in flat.history] == plain.history


def test_bad_augment_settings_are_one_line() -> None:
    for kw, msg in [(dict(augment="always"), "--augment 'always': choose one of none, ada, fixed"),
                    (dict(loss="began", augment="ada"), "--augment is for --loss .*, not began"),
                    (dict(augment_p=0.5), "--augment-p is for --augment ada[|]fixed, not none"),
                    (dict(augment="fixed", ada_target=0.5), "--ada-target is for --augment ada, not fixed"),
                    (dict(augment="fixed", augment_p=1.5), "--augment-p 1.5: must be in"),
                    (dict(augment="ada", ada_kimg=0.0), "--ada-kimg 0.0: must be > 0"),
                    (dict(augment="ada", augment_ops=("blur",)), "--augment-ops blur: unknown augmentation"),
                    (dict(augment="ada", augment_ops=()), "--augment-ops : give at least one")]:
        with pytest.raises(UsageError, match=msg):
            GANTrainConfig(**{**TINY.__dict__, **kw}).validate()
