"""pix2pix / CycleGAN training: schedule, architectures, exact resume, GAN modes, learning, exports and run page."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from imgforge.errors import TrainingError, UsageError
from imgforge.hub.modelfile import load_model_file
from imgforge.models.translation import ResnetGenerator
from imgforge.runtime import Runtime
from imgforge.training.cyclegan import CycleGANConfig
from imgforge.training.pix2pix import Pix2PixConfig
from imgforge.training.translation_common import generator_arch, guard_instance_norm_grads, lr_multiplier, make_adam
from imgforge.training.translation_run import train_cyclegan, train_pix2pix
from tests.unit.test_translation_train_support import make_aligned, make_unaligned, one_thread  # noqa: F401

RT = Runtime.create("cpu", "fp32", task="training")
P2P = dict(netG="unet_32", ngf=8, ndf=8, load_size=36, crop_size=32, log_every=1, sample_every=0)
CG = dict(netG="resnet_1blocks", ngf=8, ndf=8, load_size=36, crop_size=32, log_every=1, sample_every=0, pool_size=3)


def test_linear_schedule_is_the_reference_lambda() -> None:
    cfg = Pix2PixConfig(n_epochs=2, n_epochs_decay=3)
    got = [lr_multiplier(cfg, e) for e in range(5)]
    want = [1 - max(0, e + 1 - 2) / (3 + 1) for e in range(5)]  # epoch_count = 1
    assert got == pytest.approx(want) and got[:2] == [1.0, 1.0] and got[-1] == pytest.approx(0.25)
    assert lr_multiplier(Pix2PixConfig(lr_policy="step", lr_decay_iters=2), 5) == pytest.approx(0.01)
    assert lr_multiplier(Pix2PixConfig(lr_policy="cosine", n_epochs=4), 2) == pytest.approx(0.5)
    assert Pix2PixConfig(n_epochs=1, n_epochs_decay=1, batch_size=4).total_steps(10) == 5


def test_reference_defaults() -> None:
    p, c = Pix2PixConfig(), CycleGANConfig()
    assert (p.netG, p.norm, p.dropout, p.gan, p.lambda_l1) == ("unet_256", "batch", True, "vanilla", 100.0)
    assert (c.netG, c.norm, c.dropout, c.gan, c.pool_size) == ("resnet_9blocks", "instance", False, "lsgan", 50)
    assert (c.lambda_A, c.lambda_B, c.lambda_identity) == (10.0, 10.0, 0.5)
    for cfg in (p, c):
        assert (cfg.lr, cfg.beta1, cfg.lr_policy, cfg.load_size, cfg.crop_size, cfg.flip) == (2e-4, 0.5, "linear", 286, 256, True)
        assert (cfg.n_epochs, cfg.n_epochs_decay) == (100, 100)
    assert Pix2PixConfig(gan_mode="wgan-gp").gan == "wgangp"


def test_generator_names() -> None:
    assert generator_arch("unet_256", 3, 3, 64, "batch", True) == ("unet_generator", {
        "input_nc": 3, "output_nc": 3, "ngf": 64, "norm": "batch", "use_dropout": True, "num_downs": 8})
    assert generator_arch("resnet_6blocks", 1, 3, 8, "instance", False)[1]["n_blocks"] == 6
    assert generator_arch("unet_32", 3, 3, 8, "batch", False)[1]["num_downs"] == 5
    for bad in ("unet_48", "unet_16", "vgg"):
        with pytest.raises(UsageError):
            generator_arch(bad, 3, 3, 8, "batch", False)
    with pytest.raises(UsageError, match="gan-mode"):
        Pix2PixConfig(gan_mode="wasserstein").validate()


def test_instance_norm_gradient_guard_for_channels_last_batch_1() -> None:
    torch.manual_seed(0)
    G = ResnetGenerator(ngf=8, norm="instance", n_blocks=1)
    x = torch.randn(1, 3, 32, 32)

    def grads(cl: bool, guard: bool) -> list:
        m = copy.deepcopy(G)
        xx = x.clone()
        if cl:
            m, xx = m.to(memory_format=torch.channels_last), xx.contiguous(memory_format=torch.channels_last)
        if guard:
            guard_instance_norm_grads(m)
        m(xx).square().mean().backward()
        return [p.grad for p in m.parameters()]

    ref = grads(False, False)
    guarded = grads(True, True)
    assert max((a - b).abs().max().item() for a, b in zip(ref, guarded)) < 1e-5
    # Without the guard this PyTorch build gets them wrong; if a fixed PyTorch makes this pass, the guard can go.
    unguarded = max((a - b).abs().max().item() for a, b in zip(ref, grads(True, False)))
    if unguarded < 1e-5:
        pytest.skip("this PyTorch computes channels_last InstanceNorm gradients correctly")


def _losses(run: Path) -> list:
    return [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]


def test_pix2pix_resume_continues_exactly(tmp_path: Path) -> None:
    data = make_aligned(tmp_path / "data")
    full = train_pix2pix(data, tmp_path / "full", Pix2PixConfig(**P2P, steps=6, checkpoint_every=3), runtime=RT)
    part = train_pix2pix(data, tmp_path / "part", Pix2PixConfig(**P2P, steps=3, checkpoint_every=3), runtime=RT)
    assert len(part.history) == 3
    resumed = train_pix2pix(data, tmp_path / "part", Pix2PixConfig(**P2P, steps=6, checkpoint_every=3), runtime=RT)
    assert resumed.history == full.history and len(full.history) == 6
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")
    a = load_model_file(tmp_path / "full" / "G.safetensors")[0].state_dict()
    b = load_model_file(tmp_path / "part" / "G.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(TrainingError, match="different configuration"):
        train_pix2pix(data, tmp_path / "part", Pix2PixConfig(**{**P2P, "ngf": 4}, steps=8), runtime=RT)
    fresh = train_pix2pix(data, tmp_path / "part", Pix2PixConfig(**{**P2P, "ngf": 4}, steps=2), runtime=RT,
                          resume=False)
    assert len(fresh.history) == 2


def test_cyclegan_resume_restores_pools_exactly(tmp_path: Path) -> None:
    data = make_unaligned(tmp_path / "data")
    full = train_cyclegan(data, tmp_path / "full", CycleGANConfig(**CG, steps=6, checkpoint_every=2), runtime=RT)
    train_cyclegan(data, tmp_path / "part", CycleGANConfig(**CG, steps=4, checkpoint_every=2), runtime=RT)
    resumed = train_cyclegan(data, tmp_path / "part", CycleGANConfig(**CG, steps=6, checkpoint_every=2), runtime=RT)
    assert resumed.history == full.history
    assert set(full.history[0]) == {"step", "D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"}
    assert set(full.exports) == {"G_A", "G_B"}


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "wgangp", "hinge"])
def test_gan_modes_train(tmp_path: Path, mode: str) -> None:
    data = make_aligned(tmp_path / "data", n_train=2, n_val=0)
    r = train_pix2pix(data, tmp_path / "run", Pix2PixConfig(**P2P, steps=2, gan_mode=mode), runtime=RT)
    last = r.history[-1]
    assert all(math.isfinite(v) for v in last.values())
    assert ("D_gp" in last) == (mode == "wgangp")


def test_pix2pix_learns_a_simple_mapping_and_writes_its_page(tmp_path: Path) -> None:
    data = make_aligned(tmp_path / "data", n_train=4)
    cfg = Pix2PixConfig(**{**P2P, "sample_every": 20}, steps=40, lr=1e-3, n_epochs=100, n_epochs_decay=0, dropout=False)
    r = train_pix2pix(data, tmp_path / "run", cfg, runtime=RT)
    l1 = [h["G_L1"] for h in r.history]
    assert sum(l1[-5:]) / 5 < 0.7 * sum(l1[:5]) / 5, l1
    page = (tmp_path / "run" / "index.html").read_text()
    assert "samples/step_0000040.png" in page and "samples/step_0000020.png" in page and "<svg" in page
    assert (tmp_path / "run" / "samples" / "step_0000040.png").exists()
    G, meta = load_model_file(r.exports["G"])
    assert meta["arch"] == "unet_generator" and meta["arch_kwargs"]["num_downs"] == 5
    from PIL import Image

    grid = Image.open(tmp_path / "run" / "samples" / "step_0000040.png")
    assert grid.size == (3 * 34 + 2, 2 * 34 + 2)  # 2 val pairs x (input | output | target), 2-px gutters


def test_make_adam_is_fused_on_cpu_and_follows_the_reference_update() -> None:
    cfg = Pix2PixConfig(lr=0.01, beta1=0.5)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3))
    start = copy.deepcopy(net)
    ref_net = copy.deepcopy(net)
    opt = make_adam(net.parameters(), cfg, torch.device("cpu"))
    ref = torch.optim.Adam(ref_net.parameters(), lr=0.01, betas=(0.5, 0.999))  # the reference's (unfused) Adam
    assert opt.param_groups[0]["fused"] is True and opt.param_groups[0]["betas"] == (0.5, 0.999)
    x = torch.randn(2, 3, 12, 12)
    for _ in range(5):
        for n, o in ((net, opt), (ref_net, ref)):
            o.zero_grad()
            n(x).square().mean().backward()
            o.step()
    for a, b, s0 in zip(net.parameters(), ref_net.parameters(), start.parameters()):
        assert float((a - s0).detach().abs().max()) > 0.01  # five steps of lr 0.01 moved every tensor
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
