"""``imgforge vae train`` library and the sample / reconstruct / interpolate tools on tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.data.gan_images import TrainingImages
from imgforge.errors import UsageError, WeightsError
from imgforge.hub.modelfile import load_model_file
from imgforge.jobs.vae import load_vae, read_images
from imgforge.methods.edits import slerp
from imgforge.methods.vae import vae_interpolate, vae_reconstruct, vae_sample
from imgforge.training.loop import LoopConfig
from imgforge.training.vae import VAEMethod, VAETrainConfig, kl_weight, split_data, train_vae


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def squares(n: int = 40, res: int = 8) -> TrainingImages:
    x = torch.zeros(n, 1, res, res)
    for i in range(n):
        r, c = divmod(i % 9, 3)
        x[i, 0, r * 2:r * 2 + 3, c * 2:c * 2 + 3] = 255
    return TrainingImages(x.to(torch.uint8))


TINY = VAETrainConfig(resolution=8, latent_dim=4, width=8, batch_size=8, iwae_k=20, sample_grid=4)


def _train(run: Path, steps: int, cfg: VAETrainConfig = TINY, **kw):  # type: ignore[no-untyped-def]
    data = squares()
    held = TrainingImages(data.images[32:])
    train = TrainingImages(data.images[:32])
    return train_vae((train, held), cfg, LoopConfig(str(run), steps, seed=1, checkpoint_every=kw.pop("every", 50),
                                                    log_every=10), **kw)


def test_training_raises_the_elbo_and_reports_held_out_figures(tmp_path: Path) -> None:
    res = _train(tmp_path / "vae", 60)
    h = res.history
    first = np.mean([r["elbo"] for r in h[:5]])
    last = np.mean([r["elbo"] for r in h[-5:]])
    assert last > first + 5, (first, last)
    ev = json.loads((tmp_path / "vae" / "eval.json").read_text())["held_out"]
    assert set(ev) == {"elbo", "rec", "kl", "iwae", "iwae_k", "psnr", "n"} and ev["n"] == 8 and ev["iwae_k"] == 20
    assert ev["elbo"] == pytest.approx(ev["rec"] - ev["kl"], abs=1e-3)
    assert ev["iwae"] >= ev["elbo"] - 0.5  # the k-sample bound is at least as tight (up to sampling noise)
    assert all(math.isfinite(v) for v in ev.values())
    for name in ("vae.safetensors", "G.safetensors", "index.html", "samples/step_000060.png"):
        assert (tmp_path / "vae" / name).is_file(), name
    G, meta = load_model_file(res.generator)
    assert meta["arch"] == "vae_decoder" and meta["output_range"] == "0,1" and G.z_dim == 4
    z = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.equal(G(z), res.method.model.eval().decoder(z))


def test_autoencoder_has_no_kl_and_no_likelihood(tmp_path: Path) -> None:
    res = _train(tmp_path / "ae", 5, VAETrainConfig(**{**TINY.__dict__, "ae": True}))
    assert set(res.history[0]) == {"step", "loss", "rec"}
    ev = json.loads((tmp_path / "ae" / "eval.json").read_text())["held_out"]
    assert set(ev) == {"rec", "psnr", "n"}


def test_kl_annealing_weight() -> None:
    cfg = VAETrainConfig(kl_anneal=4)
    assert [kl_weight(cfg, s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert kl_weight(TINY, 0) == 1.0
    with pytest.raises(UsageError, match="--likelihood"):
        VAETrainConfig(likelihood="poisson").validate()
    with pytest.raises(UsageError, match="--resolution"):
        VAETrainConfig(resolution=20).validate()


def test_resume_after_crash_is_exact(tmp_path: Path, crash_at) -> None:
    cfg = VAETrainConfig(**{**TINY.__dict__, "likelihood": "gaussian", "kl_anneal": 3})
    full = _train(tmp_path / "full", 6, cfg, every=3)
    with crash_at(VAEMethod, 4):
        _train(tmp_path / "crash", 6, cfg, every=3)
    resumed = _train(tmp_path / "crash", 6, cfg, every=3)
    assert resumed.history == full.history
    assert resumed.evaluation == full.evaluation


def test_sample_reconstruct_interpolate(tmp_path: Path) -> None:
    _train(tmp_path / "vae", 30)
    model, _ = load_vae(tmp_path / "vae")  # the run folder works too
    s = vae_sample(model, [0, 1, 2])
    assert s.shape == (3, 3, 8, 8) and 0 <= float(s.min()) and float(s.max()) <= 1
    assert torch.allclose(s[:1], vae_sample(model, [0]), atol=1e-6)  # a seed is a fixed code
    for i, v in enumerate((0, 4)):
        arr = np.zeros((16, 16), np.uint8)
        r, c = divmod(v, 3)
        arr[r * 4:r * 4 + 6, c * 4:c * 4 + 6] = 255
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
    x = read_images(model, [tmp_path / "0.png", tmp_path / "1.png"])
    assert x.shape == (2, 1, 8, 8)
    rec, psnr = vae_reconstruct(model, x)
    assert rec.shape == (2, 3, 8, 8) and all(math.isfinite(p) for p in psnr)
    strip = vae_interpolate(model, x[0], x[1], 5)
    assert strip.shape == (5, 3, 8, 8)
    assert torch.allclose(strip[0], rec[0], atol=1e-6) and torch.allclose(strip[-1], rec[1], atol=1e-6)
    assert torch.allclose(vae_interpolate(model, x[0], x[1], 3, "slerp")[0], rec[0], atol=1e-5)
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert torch.allclose(slerp(a, b, 0.5).norm(), torch.tensor(1.5), atol=0.1)
    with pytest.raises(WeightsError, match="not a VAE"):
        load_vae(tmp_path / "vae" / "G.safetensors")


def test_folder_split_holds_out_every_tenth_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    d = tmp_path / "d"
    d.mkdir()
    for i in range(23):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(d / f"{i:02d}.png")
    train, held = split_data(d, 8)
    assert len(train) == 21 and len(held) == 2
    assert not any(torch.equal(h, t) for h in held.images for t in train.images)
