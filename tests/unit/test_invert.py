"""Inversion on tiny random generators: schedule, regulariser, known-latent recovery, batching, masks, latent files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from imgforge.errors import InputError, UsageError
from imgforge.latents import LatentRecord, load_latent, save_latent
from imgforge.methods.invert import (
    InvertConfig, Inverter, get_aligner, latent_noise_scale, latent_stats, lr_schedule, noise_regularization,
    normalize_noise_, prepare_target, register_aligner, synthesize,
)
from imgforge.metrics import psnr
from imgforge.models.stylegan2 import Generator


@pytest.fixture(scope="module")
def G() -> Generator:
    torch.manual_seed(0)
    g = Generator(16, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16}).eval().requires_grad_(False)
    for m in g.modules():  # exercise the noise path
        if hasattr(m, "noise") and hasattr(m.noise, "weight"):
            m.noise.weight.data.fill_(0.1)
    return g


def _targets(G: Generator, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = G.mapping(z)
        img = ((G.synthesis(ws, noise_mode="const") + 1) / 2).clamp(0, 1)
    return img, ws


def test_lr_schedule_and_latent_noise() -> None:
    assert lr_schedule(0.0) == 0.0
    assert lr_schedule(0.025) == pytest.approx(0.5)  # half-way up the 5 % ramp
    assert lr_schedule(0.5) == 1.0
    assert lr_schedule(0.875) == pytest.approx(0.5)  # half-way down the 25 % cosine ramp
    assert lr_schedule(0.999) < 0.001
    assert latent_noise_scale(0.0, 2.0) == pytest.approx(0.1)
    assert latent_noise_scale(0.375, 2.0) == pytest.approx(0.1 * 0.25)
    assert latent_noise_scale(0.8, 2.0) == 0.0


def test_noise_regularization_matches_loops() -> None:
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, 1, r, r, generator=g) for r in (4, 8, 16, 32)]
    got = noise_regularization(maps)
    for b in range(2):
        ref = 0.0
        for m in maps:
            n = m[b, 0].double()
            while True:
                ref += float((n * torch.roll(n, 1, 1)).mean()) ** 2 + float((n * torch.roll(n, 1, 0)).mean()) ** 2
                if n.shape[0] <= 8:
                    break
                n = F.avg_pool2d(n[None, None], 2)[0, 0]
        assert got[b].item() == pytest.approx(ref, rel=1e-4)
    normalize_noise_(maps)
    for m in maps:
        assert m.mean(dim=(1, 2, 3)).abs().max() < 1e-5
        assert torch.allclose(m.square().mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)


def test_latent_stats_uses_stored_w_avg_else_sample_mean(G: Generator) -> None:
    st = latent_stats(G, samples=500)
    assert st.w_avg.shape == (G.w_dim,) and st.z_init.shape == (G.z_dim,)
    assert st.w_std > 0 and st.z_std == pytest.approx(math.sqrt(G.z_dim), rel=0.1)
    G2 = Generator(16, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16}).eval().requires_grad_(False)
    G2.load_state_dict(G.state_dict())
    G2.latent_avg.fill_(0.25)
    assert torch.allclose(latent_stats(G2, samples=500).w_avg, torch.full((G.w_dim,), 0.25))


@pytest.mark.parametrize("space", ["z", "w", "w+"])
def test_known_latent_inversion_improves_psnr(G: Generator, space: str) -> None:
    target, _ = _targets(G, 2)
    cfg = InvertConfig(space=space, steps=60, loss="mse", w_avg_samples=1000)
    inv = Inverter(G, cfg)
    start = psnr(Inverter(G, InvertConfig(space=space, steps=0, loss="mse", w_avg_samples=1000)).run(target).images,
                 target)
    res = inv.run(target)
    end = psnr(res.images, target)
    assert (end > start + 4).all(), (space, start, end)
    shapes = {"z": (2, G.z_dim), "w": (2, G.w_dim), "w+": (2, G.num_ws, G.w_dim)}
    assert tuple(res.latent.shape) == shapes[space]
    assert res.ws.shape == (2, G.num_ws, G.w_dim) and res.noise is None and res.steps == 60


def test_batch_mates_do_not_change_a_result(G: Generator) -> None:
    target, _ = _targets(G, 3, seed=2)
    cfg = InvertConfig(space="w+", steps=15, loss="mse", optimize_noise=True, w_avg_samples=500)
    both = Inverter(G, cfg).run(target, seeds=[7, 8, 9])
    one = Inverter(G, cfg).run(target[1:2], seeds=[8])
    assert torch.allclose(both.latent[1], one.latent[0], atol=2e-4)
    assert torch.allclose(both.images[1], one.images[0], atol=2e-3)
    assert all(torch.allclose(a[1], b[0], atol=2e-4) for a, b in zip(both.noise, one.noise))


def test_noise_optimisation_keeps_maps_normalised(G: Generator) -> None:
    target, _ = _targets(G, 1)
    res = Inverter(G, InvertConfig(space="w", steps=10, loss="mse", optimize_noise=True, w_avg_samples=500)
                   ).run(target)
    assert res.noise is not None and len(res.noise) == G.num_layers
    for n, buf in zip(res.noise, G.noise_buffers()):
        assert n.shape == (1, 1, *buf.shape[-2:])
        assert abs(n.mean().item()) < 1e-5 and n.square().mean().item() == pytest.approx(1.0, abs=1e-4)


def test_masked_loss_ignores_the_hole(G: Generator) -> None:
    target, _ = _targets(G, 1)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 0
    other = target.clone()
    other[..., 4:12, 4:12] = torch.rand(1, 3, 8, 8)
    cfg = InvertConfig(space="w+", steps=12, loss="mse", w_avg_samples=500)
    a = Inverter(G, cfg).run(target, mask=mask)
    b = Inverter(G, cfg).run(other, mask=mask)
    assert torch.equal(a.latent, b.latent)
    with pytest.raises(InputError):
        Inverter(G, cfg).run(target, mask=torch.ones(1, 1, 8, 8))


def test_perceptual_loss_runs_and_snapshots(G: Generator) -> None:
    from imgforge.losses.perceptual import PerceptualDistance
    from imgforge.models.vgg import TorchvisionVGG

    torch.manual_seed(3)
    enc = TorchvisionVGG("vgg16", last_layer="conv4_2", widths=(8, 8, 16, 16, 16)).eval().requires_grad_(False)
    target, _ = _targets(G, 2)
    cfg = InvertConfig(space="w+", steps=30, loss="mse+perceptual", perceptual_weight=0.1, snapshot_every=10,
                       w_avg_samples=500)
    inv = Inverter(G, cfg, perceptual=PerceptualDistance(enc, min_size=32))
    res = inv.run(target)
    assert len(res.snapshots) == 3 and res.snapshots[0].shape == (2, 3, 16, 16)
    assert torch.isfinite(res.loss).all()
    with pytest.raises(UsageError):
        Inverter(G, cfg)  # perceptual loss without an encoder


def test_latent_file_round_trip(G: Generator, tmp_path: Path) -> None:
    target, _ = _targets(G, 1)
    for space, noise in (("w", False), ("w+", True), ("z", False)):
        res = Inverter(G, InvertConfig(space=space, steps=3, loss="mse", optimize_noise=noise, w_avg_samples=200)
                       ).run(target)
        p = save_latent(tmp_path / f"{space}.latent.safetensors", res.item(0), {"weights": "tiny"})
        rec = load_latent(p)
        assert rec.space == space and rec.meta["weights"] == "tiny"
        assert torch.equal(rec.latent, res.latent[:1]) and torch.equal(rec.ws, res.ws[:1])
        assert (rec.noise is not None) == noise
        assert torch.allclose(synthesize(G, rec), res.images[:1], atol=1e-5)
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(InputError):
        load_latent(tmp_path / "bad.safetensors")


def test_prepare_target_rules() -> None:
    img = torch.zeros(3, 20, 40)
    img[:, :, 10:30] = 1.0  # a white centre square 20x20 in a wide black image
    crop = prepare_target(img, 8, "crop")
    assert crop.shape == (1, 3, 8, 8) and crop.min().item() == pytest.approx(1.0)
    pad = prepare_target(img, 8, "pad")
    assert pad.shape == (1, 3, 8, 8) and pad.min().item() == 0.0 and pad.max().item() == pytest.approx(1.0, abs=1e-6)
    st = prepare_target(img, 8, "stretch")
    assert st[0, 0, 0, 0].item() == 0.0 and st[0, 0, 0, 4].item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(UsageError):
        prepare_target(img, 8, "zoom")

    @register_aligner("test-flip")
    def flip(x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1)

    assert get_aligner("test-flip") is flip
    ramp = torch.linspace(0, 1, 16).view(1, 1, 16).expand(3, 16, 16)
    out = prepare_target(ramp, 16, aligner="test-flip")
    assert out[0, 0, 0, 0].item() == pytest.approx(1.0)
    with pytest.raises(UsageError):
        get_aligner("no-such-aligner")


def test_config_validation() -> None:
    for bad in (dict(space="s"), dict(loss="l1"), dict(steps=-1), dict(lr=0), dict(lr_rampup=0)):
        with pytest.raises(UsageError):
            InvertConfig(**bad).validate()
    rec = LatentRecord(space="w", latent=torch.zeros(1, 4), ws=torch.zeros(1, 2, 4))
    assert rec.noise is None


def _reference_projector(G: Generator, target: torch.Tensor, enc: torch.nn.Module, cfg: InvertConfig,
                         w_avg: torch.Tensor, w_std: float, seed: int) -> torch.Tensor:
    """The reference projector written out for ONE image (W+): Adam on the latent, the ramped learning rate, the
    decaying latent noise from ``torch.Generator().manual_seed(seed)``, MSE + relative VGG distance."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        tf = enc(target, layers=cfg.perceptual_layers)
    w = w_avg.view(1, 1, -1).repeat(1, G.num_ws, 1).clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=cfg.lr, betas=cfg.betas)
    for step in range(cfg.steps):
        t = step / cfg.steps
        for g in opt.param_groups:
            g["lr"] = cfg.lr * lr_schedule(t, cfg.lr_rampup, cfg.lr_rampdown)
        wn = w + torch.randn(w.shape, generator=gen) * latent_noise_scale(t, w_std, cfg.latent_noise, cfg.noise_ramp)
        img = (G.synthesis(wn, noise_mode="const") + 1) / 2
        loss = cfg.mse_weight * F.mse_loss(img, target)
        feats = enc(img, layers=cfg.perceptual_layers)
        for k in cfg.perceptual_layers:
            loss = loss + cfg.perceptual_weight * (feats[k] - tf[k]).square().mean() / tf[k].square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return w.detach()


def test_inverter_is_the_reference_projector(G: Generator) -> None:
    """Batched Inverter == the one-image reference loop with the same seeds (same loss, schedule, noise, Adam).

    In float32 with the reference's grouped modulated convolution and NCHW the two agree to rounding. (Adam's first
    steps are ~lr * sign(grad), so rounding differences of near-zero gradient elements grow over longer runs; the
    benchmarks therefore compare reconstruction quality per image with matched seeds.)"""
    from imgforge.losses.perceptual import PerceptualDistance
    from imgforge.models.vgg import TorchvisionVGG
    from imgforge.runtime import Runtime

    torch.manual_seed(3)
    enc = TorchvisionVGG("vgg16", last_layer="conv4_2", widths=(8, 8, 16, 16, 16)).eval().requires_grad_(False)
    target, _ = _targets(G, 2, seed=4)
    cfg = InvertConfig(space="w+", steps=12, w_avg_samples=500)
    inv = Inverter(G, cfg, perceptual=PerceptualDistance(enc), runtime=Runtime(torch.device("cpu"), None, False),
                   fused_modconv=True)
    res = inv.run(target)  # default seeds: cfg.seed + i
    for i in range(2):
        G.set_fused_modconv(True)
        ref = _reference_projector(G, target[i:i + 1], enc, cfg, inv.stats.w_avg, inv.stats.w_std, cfg.seed + i)
        err = float((res.latent[i:i + 1] - ref).abs().max())
        assert err < 1e-4, err
        assert float((ref - inv.stats.w_avg).abs().max()) > 1e-2  # it moved: the check is not vacuous
