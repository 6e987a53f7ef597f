"""``gan train --arch lapgan|progan|msggan`` on tiny models: the pyramid ops, ProGAN's fade-in (alpha = 0 is the
previous resolution's network, alpha = 1 the new one, in G, D and a whole step), equalized learning rate, MSG-GAN's
critic sees every scale, LAPGAN's chain from one z, resume in the middle of a fade-in (bit-exact), the exported
generators through the generator protocol, the schedule."""

from __future__ import annotations

import copy

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from imgforge.data.gan_images import TrainingImages
from imgforge.errors import TrainingError, UsageError
from imgforge.hub.modelfile import load_model_file
from imgforge.models.multiscale_gan import (COMBINES, EqConv2d, EqLinear, LapGANGenerator, MSGGANDiscriminator,
                                            MSGGANGenerator, ProGANDiscriminator, ProGANGenerator, scale_table)
from imgforge.models.protocols import as_generator
from imgforge.ops.pyramid import (avg_down, avg_pyramid, d, gaussian_pyramid, laplacian_pyramid, nearest_up, reconstruct, u)
from imgforge.training.gan import GANMethod, GANTrainConfig, train_gan
from imgforge.training.loop import LoopConfig, load_checkpoint
from imgforge.training.multiscale_gan import LapGANMethod, MSGGANMethod, ProGANMethod, progan_stage
from tests.conftest import assert_same_generator


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def blobs(res: int = 16, n: int = 16) -> TrainingImages:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, res // 4, res // 4, generator=g)
    x = F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)
    return TrainingImages((x * 255).round().to(torch.uint8))


TINY = dict(resolution=16, z_dim=4, batch_size=4, width=4, sample_grid=4)


# ---- pyramid -----------------------------------------------------------------------------------------------------


def test_laplacian_pyramid_reconstructs_exactly() -> None:
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    pyr = laplacian_pyramid(x, 3)
    assert [tuple(p.shape[-2:]) for p in pyr] == [(32, 32), (16, 16), (8, 8), (4, 4)]
    # I_k = u(I_{k+1}) + h_k at every level, and the whole chain: exact up to float64 rounding
    g = gaussian_pyramid(x, 3)
    for k in range(3):
        assert torch.allclose(u(g[k + 1]) + pyr[k], g[k], rtol=0, atol=1e-13)
    assert float((reconstruct(pyr) - x).abs().max()) < 1e-13
    x32 = x.float()
    assert float((reconstruct(laplacian_pyramid(x32, 3)) - x32).abs().max()) < 1e-5
    # d blurs then decimates, u doubles: constants stay constant; d is not plain decimation
    c = torch.full((1, 1, 8, 8), 0.3)
    assert torch.allclose(d(c), torch.full((1, 1, 4, 4), 0.3)) and torch.allclose(u(c), torch.full((1, 1, 16, 16), 0.3))
    assert not torch.allclose(d(x32), x32[..., ::2, ::2])
    # ProGAN's pair: average-pooling a nearest upsampling gives the image back bit for bit
    y = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.equal(avg_down(nearest_up(y)), y)


# ---- ProGAN --------------------------------------------------------------------------------------------------------


def test_equalized_learning_rate_uses_hes_constant() -> None:
    torch.manual_seed(0)
    conv = EqConv2d(16, 32, 3)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(16 * 9))
    assert 0.9 < float(conv.weight.detach().std()) < 1.1  # stored N(0, 1); the scale is applied at run time
    x = torch.randn(2, 16, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * math.sqrt(2 / (16 * 9)), conv.bias, padding=1))
    lin = EqLinear(64, 8)
    assert lin.scale == pytest.approx(math.sqrt(2 / 64))
    assert EqConv2d(8, 3, 1, gain=1.0).scale == pytest.approx(1 / math.sqrt(8))
    G = ProGANGenerator(z_dim=4, img_resolution=16, channels=1, width=4)
    assert G.to_rgb[0].scale == pytest.approx(1 / math.sqrt(G.to_rgb[0].weight.shape[1]))  # toRGB: gain 1
    # the gradient of the stored weight is scaled too: that is what equalizes the learning rate
    conv.weight.grad = None
    conv(x).sum().backward()
    w = (conv.weight.detach() * conv.scale).requires_grad_(True)
    F.conv2d(x, w, conv.bias.detach(), padding=1).sum().backward()
    assert torch.allclose(conv.weight.grad, w.grad * conv.scale, rtol=1e-5, atol=1e-6)


def test_progan_alpha_zero_is_the_previous_network_and_alpha_one_the_new_one() -> None:
    torch.manual_seed(0)
    G = ProGANGenerator(z_dim=4, img_resolution=16, channels=1, width=4)
    D = ProGANDiscriminator(img_resolution=16, channels=1, width=4)
    z, x = torch.randn(8, 4), torch.rand(8, 1, 16, 16) * 2 - 1
    for level in (1, 2):
        side = 4 * 2 ** level
        xl = F.avg_pool2d(x, 16 // side)
        assert torch.equal(G.synth(z, level, 0.0), nearest_up(G.synth(z, level - 1, 1.0)))
        assert torch.equal(D(xl, level, 0.0), D(avg_down(xl), level - 1, 1.0))
        new_g, new_d = G.synth(z, level, 1.0), D(xl, level, 1.0)
        half_g, half_d = G.synth(z, level, 0.5), D(xl, level, 0.5)
        with torch.no_grad():  # alpha = 1: the old toRGB / fromRGB no longer matter
            G.to_rgb[level - 1].weight.add_(1.0)
            D.from_rgb[level - 1].conv.weight.add_(1.0)
        assert torch.equal(G.synth(z, level, 1.0), new_g) and torch.equal(D(xl, level, 1.0), new_d)
        assert not torch.allclose(G.synth(z, level, 0.5), half_g) and not torch.allclose(D(xl, level, 0.5), half_d)
        assert not torch.allclose(new_g, G.synth(z, level, 0.0))


def _progan_at(phase: int, fade: int) -> ProGANMethod:
    torch.manual_seed(3)  # the same initial weights whatever the schedule
    cfg = GANTrainConfig(arch="progan", loss="ns", start_resolution=8, phase_images=phase, fade_images=fade, **TINY)
    return ProGANMethod(cfg, blobs(), seed=1)


def test_progan_step_at_alpha_zero_equals_the_previous_resolution() -> None:
    """A whole step at (16², alpha 0) -- G, D, reals blended -- gives the losses and updates of the 8² network on
    the 8² data. (With a gradient penalty it would not: the penalty's gradient norm is taken over the 16² pixels, so
    the test uses the NS loss.)"""
    fading, before = _progan_at(phase=0, fade=1000), _progan_at(phase=10 ** 6, fade=1000)
    assert fading.stage(0) == (2, 0.0) and before.stage(0) == (1, 1.0)
    for k, v in before.G.state_dict().items():
        assert torch.equal(fading.G.state_dict()[k], v)
    new_block = fading.G.blocks[2].conv1.weight.detach().clone()
    a, b = fading.step([[0, 1, 2, 3]], 0), before.step([[0, 1, 2, 3]], 0)
    assert (a["resolution"], a["alpha"], b["resolution"], b["alpha"]) == (16.0, 0.0, 8.0, 1.0)
    # what D sees of the reals: at alpha 0 the 8² batch upsampled, half-way the blend of both
    r16, r8 = fading._real([0, 1, 2, 3])[0], before._real([0, 1, 2, 3])[0]
    assert r16.shape[-1] == 16 and torch.equal(r16, nearest_up(r8))
    fading.alpha = 0.5
    x = fading.data.batch([0, 1, 2, 3])[0]
    assert torch.allclose(fading._real([0, 1, 2, 3])[0], 0.5 * x + 0.5 * nearest_up(r8), atol=1e-6)
    fading.alpha = 0.0
    for k in ("loss_D", "loss_G", "D_real", "D_fake", "G_grad"):
        assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k
    for net in ("G", "D"):
        sa, sb = getattr(fading, net).state_dict(), getattr(before, net).state_dict()
        for k in sb:  # the 8² path is updated alike
            if k.startswith("stage_"):
                continue
            assert torch.allclose(sa[k], sb[k], rtol=1e-4, atol=1e-6), (net, k)
    assert torch.equal(fading.G.blocks[2].conv1.weight, new_block)  # the new block got a zero gradient


def test_progan_schedule() -> None:
    st = lambda i: progan_stage(i, 0, 3, phase_images=10, fade_images=4)  # noqa: E731
    assert [st(i) for i in (0, 9, 10, 11, 13, 14, 23, 24, 26)] == [
        (0, 1.0), (0, 1.0), (1, 0.0), (1, 0.25), (1, 0.75), (1, 1.0), (1, 1.0), (2, 0.0), (2, 0.5)]
    assert st(10 ** 9) == (3, 1.0)
    assert progan_stage(0, 1, 1, 10, 4) == (1, 1.0)


# ---- MSG-GAN -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("combine", COMBINES)
def test_msggan_critic_receives_every_scale(combine: str) -> None:
    torch.manual_seed(0)
    G = MSGGANGenerator(z_dim=4, img_resolution=16, channels=1, width=4)
    D = MSGGANDiscriminator(img_resolution=16, channels=1, width=4, combine=combine)
    imgs = [t.detach().requires_grad_(True) for t in G.multi_scale(torch.randn(4, 4))]
    assert [t.shape[-1] for t in imgs] == [4, 8, 16]
    D(imgs).sum().backward()
    for t in imgs:
        assert t.grad is not None and float(t.grad.abs().sum()) > 0, t.shape
    base = D([t.detach() for t in imgs])
    for i in range(3):
        changed = [t.detach().clone() for t in imgs]
        changed[i] += 0.5
        assert not torch.allclose(D(changed), base), i
    with pytest.raises(ValueError, match="sides"):
        D(imgs[1:])


# ---- LAPGAN --------------------------------------------------------------------------------------------------------


def test_lapgan_chain_runs_coarse_to_fine_from_one_z() -> None:
    torch.manual_seed(0)
    G = LapGANGenerator(z_dim=6, img_resolution=32, channels=1, width=4, start_resolution=8)
    z = torch.randn(3, 6)
    chain = G.scales(z)
    assert [c.shape[-1] for c in chain] == [8, 16, 32] and torch.equal(G(z), chain[-1])
    for j in (1, 2):
        low = u(chain[j - 1])
        assert torch.allclose(chain[j], low + G.residual(j, G.noise(j, z), low))
    n = G.noise(2, torch.randn(2000, 6))
    assert abs(float(n.std()) - 1) < 0.1  # each noise pixel about N(0, 1)
    assert torch.equal(G.noise(1, z), LapGANGenerator(z_dim=6, img_resolution=32, channels=1, width=4).noise(1, z))
    assert not torch.allclose(G.noise(1, z[:1]), G.noise(1, z[1:2]))
    assert scale_table(G, z).shape == (3, 3, 1, 32, 32)


# ---- training: every arch, resume mid-fade, export ---------------------------------------------------------------


def _train(run: Path, steps: int, cfg: GANTrainConfig, every: int = 2, sample: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(1234)  # must not matter
    loop = LoopConfig(str(run), steps, seed=5, checkpoint_every=every, sample_every=sample, log_every=1)
    return train_gan(blobs(cfg.resolution), cfg, loop)


CFGS = {
    "progan": GANTrainConfig(arch="progan", loss="wgan-gp", phase_images=8, fade_images=16, **TINY),
    "msggan": GANTrainConfig(arch="msggan", loss="rahinge", combine="lin_cat", **TINY),
    "lapgan": GANTrainConfig(arch="lapgan", loss="dragan", **{**TINY, "resolution": 32}),
}


@pytest.mark.parametrize("arch", list(CFGS))
def test_resume_in_the_middle_is_bit_exact(tmp_path: Path, crash_at, arch: str) -> None:
    cfg = CFGS[arch]
    full = _train(tmp_path / "full", 7, cfg)
    if arch == "progan":  # step 4 (16 images seen) is half-way through the 8² -> 16² fade-in
        assert [(r["resolution"], r["alpha"]) for r in full.history] == [
            (4.0, 1.0), (4.0, 1.0), (8.0, 0.0), (8.0, 0.25), (8.0, 0.5), (8.0, 0.75), (8.0, 1.0)]
    run = tmp_path / "crash"
    with crash_at(GANMethod, 5):
        _train(run, 7, cfg)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 4
    resumed = _train(run, 7, cfg)
    assert resumed.history == full.history
    assert_same_generator(full.generator, resumed.generator)


@pytest.mark.parametrize("arch", list(CFGS))
def test_exported_generator_works_through_the_protocol(tmp_path: Path, arch: str) -> None:
    res = _train(tmp_path / arch, 3, CFGS[arch], every=3, sample=3)
    run = tmp_path / arch
    for name in ("G.safetensors", "index.html", "samples/step_000003.png", "samples/scales_000003.png"):
        assert (run / name).is_file(), name
    assert "scales_000003.png" in (run / "index.html").read_text()
    G, meta = load_model_file(res.generator)
    assert meta["arch"] == f"{arch}_g"
    gen = as_generator(G.eval())
    z = torch.randn(2, 4)
    img = gen.synthesis(gen.mapping(z))
    side = CFGS[arch].resolution
    assert img.shape == (2, 3, side, side) and torch.isfinite(img).all()
    m = res.method.G_sample.eval()
    assert (res.method.G_ema is not None) == (arch != "lapgan") and meta.get("ema_kimg") == (None if arch == "lapgan"
                                                                                            else "10.0")
    with torch.no_grad():
        assert torch.equal(G(z), m(z) if arch != "progan" else nearest_up(m.synth(z), side // m.synth(z).shape[-1]))


def test_bad_settings_are_one_line() -> None:
    with pytest.raises(UsageError, match="--resolution 8 is smaller than the start resolution 16"):
        GANTrainConfig(arch="progan", resolution=8, start_resolution=16).validate()
    with pytest.raises(UsageError, match="--cond"):
        GANTrainConfig(arch="lapgan", cond=True).validate()
    with pytest.raises(UsageError, match="began"):
        GANTrainConfig(arch="msggan", loss="began").validate()
    with pytest.raises(UsageError, match="--start-resolution"):
        GANTrainConfig(arch="dcgan", start_resolution=8).validate()
    # another arch's option (set away from its default) would be ignored: refused
    with pytest.raises(UsageError, match="--combine is for --arch msggan, not progan"):
        GANTrainConfig(arch="progan", combine="lin_cat").validate()
    with pytest.raises(UsageError, match="--phase-images is for --arch progan, not lapgan"):
        GANTrainConfig(arch="lapgan", phase_images=10).validate()
    GANTrainConfig(arch="progan", phase_images=10, fade_images=10).validate()  # its own options are fine
    # another loss's option, or one this arch's step never reads, would be ignored too: refused
    with pytest.raises(UsageError, match="--gp-lambda is for --loss wgan-gp[|]dragan, not rahinge; drop it"):
        GANTrainConfig(arch="msggan", loss="rahinge", gp_lambda=10.0).validate()
    with pytest.raises(UsageError, match="--drift is for --arch mlp[|]dcgan[|]progan[|]msggan, not lapgan"):
        GANTrainConfig(arch="lapgan", loss="wgan-gp", drift=0.001).validate()
    with pytest.raises(UsageError, match="mbstd_group is for --arch progan[|]msggan, not lapgan"):
        GANTrainConfig(arch="lapgan", mbstd_group=2).validate()
    GANTrainConfig(arch="msggan", loss="wgan-gp", drift=0.001, gp_lambda=5.0, mbstd_group=2).validate()
    GANTrainConfig(arch="lapgan", loss="ns", coarse="mlp", d_dropout=0.2).validate()
    hp = GANTrainConfig(arch="progan", loss="wgan-gp").resolved()
    assert (hp["lr_g"], hp["betas"], hp["d_steps"], hp["drift"], hp["gp_lambda"]) == (1e-3, (0.0, 0.99), 1, 0.001, 10)
    hp = GANTrainConfig(arch="msggan", loss="rahinge", lr_d=1e-4).resolved()
    assert (hp["lr_g"], hp["lr_d"], hp["betas"], hp["drift"]) == (3e-3, 1e-4, (0.0, 0.99), 0.0)


def test_resume_with_another_arch_is_refused(tmp_path: Path) -> None:
    _train(tmp_path / "r", 1, CFGS["msggan"])
    with pytest.raises(TrainingError, match="--arch msggan, not --arch progan"):
        _train(tmp_path / "r", 2, CFGS["progan"])


def test_generator_moving_average() -> None:
    """The one moving average of gan train (``ema_update``, half-life in kimg with StyleGAN2's ramp-up): on by
    default for progan and msggan, sampled and exported."""
    from imgforge.training.loop import ema_update

    cfg = GANTrainConfig(**{**CFGS["msggan"].__dict__, "ema_kimg": 0.002})
    torch.manual_seed(0)
    m = MSGGANMethod(cfg, blobs(), seed=1)
    before = {k: v.clone() for k, v in m.G_ema.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in m.G.state_dict().items())  # starts as G
    m.step([[0, 1, 2, 3]], 0)
    g, e = dict(m.G.named_parameters()), dict(m.G_ema.named_parameters())
    ref = copy.deepcopy(m.G_ema)
    ref.load_state_dict(before)
    ema_update(ref, m.G, cfg.batch_size, m.images_seen, 0.002)
    for k, v in ref.named_parameters():
        assert torch.equal(e[k], v), k
    assert any(not torch.equal(g[k], e[k]) for k in g)
    assert m.G_sample is m.G_ema
    assert GANTrainConfig(arch="dcgan").resolved()["ema_kimg"] == 0.0
    assert GANTrainConfig(arch="progan", loss="wgan-gp").resolved()["ema_kimg"] == 10.0
    with pytest.raises(UsageError, match="--ema-kimg"):
        GANTrainConfig(ema_kimg=-1.0).validate()


def test_lapgan_coarsest_gan_choice(tmp_path: Path) -> None:
    from imgforge.models.gan_nets import DCGANGenerator, MLPDiscriminator, MLPGenerator

    cfg = GANTrainConfig(arch="lapgan", loss="ns", **{**TINY, "resolution": 32})
    assert cfg.coarse == "dcgan"  # the default: the paper's fully connected pair collapsed on MNIST-5k
    res = _train(tmp_path / "dcgan", 2, cfg, every=2)
    G, meta = load_model_file(res.generator)
    assert isinstance(G.coarse, DCGANGenerator) and meta["arch_kwargs"]["coarse"] == "dcgan"
    mlp = GANTrainConfig(arch="lapgan", loss="ns", coarse="mlp", **{**TINY, "resolution": 32})
    res = _train(tmp_path / "mlp", 2, mlp, every=2)
    G, meta = load_model_file(res.generator)  # written without the option: loads with the model's default, mlp
    assert isinstance(G.coarse, MLPGenerator) and "coarse" not in meta["arch_kwargs"]
    assert isinstance(res.method.D.coarse, MLPDiscriminator)
    with pytest.raises(UsageError, match="--coarse 'conv'"):
        GANTrainConfig(arch="lapgan", coarse="conv").validate()


def test_lapgan_train_levels_trains_only_those(tmp_path: Path) -> None:
    """``--train-levels``: the levels are independent, so training some of them gives those levels exactly the
    weights of a run of every level, and leaves the others (G, its moving average, D, optimiser state) untouched;
    a resume may switch to a subset (the coarsest GAN trained further alone)."""
    base = GANTrainConfig(arch="lapgan", loss="ns", ema_kimg=0.01, **{**TINY, "resolution": 32})
    assert base.start == 8
    every = _train(tmp_path / "all", 3, base, every=3).method
    only = _train(tmp_path / "fine", 3, GANTrainConfig(**{**base.__dict__, "train_levels": (32,)}), every=3).method
    from imgforge.runtime import seed_everything

    seed_everything(5)  # as train_gan does: the weights every run starts from
    fresh = type(every)(base, blobs(32), seed=5)
    for net in ("G", "G_ema", "D"):
        a, b, s = (getattr(m, net).state_dict() for m in (every, only, fresh))
        for k in a:
            if k.startswith("levels.1."):  # the 32x32 level: the same arithmetic in both runs
                assert torch.equal(a[k], b[k]), (net, k)
            elif not k.endswith("num_batches_tracked"):  # the others: never touched in the second run
                assert torch.equal(b[k], s[k]), (net, k)
        assert any(not torch.equal(a[k], s[k]) for k in a if k.startswith("coarse."))
    # resume the every-level run with the coarsest level alone: only it moves on
    run = tmp_path / "all"
    before = load_checkpoint(run / "checkpoint.pt")["method"]
    after = _train(run, 5, GANTrainConfig(**{**base.__dict__, "train_levels": (8,)}), every=5)
    assert sorted(k for k in after.history[-1] if k.startswith("loss_G_")) == ["loss_G_8"]
    for net in ("G", "G_ema", "D"):
        new = getattr(after.method, net).state_dict()
        assert all(torch.equal(new[k], before[net][k]) for k in new if k.startswith("levels."))
        assert any(not torch.equal(new[k], before[net][k]) for k in new if k.startswith("coarse."))
    with pytest.raises(UsageError, match="--train-levels 12: give distinct pyramid sides of this run [(]8,16,32[)]"):
        GANTrainConfig(**{**base.__dict__, "train_levels": (12,)}).validate()
    with pytest.raises(UsageError, match="--train-levels 8,8"):
        GANTrainConfig(**{**base.__dict__, "train_levels": (8, 8)}).validate()
    with pytest.raises(UsageError, match="--train-levels is for --arch lapgan, not progan"):
        GANTrainConfig(arch="progan", loss="wgan-gp", train_levels=(8,)).validate()


def test_lapgan_coarse_width_and_init_from_a_trained_generator(tmp_path: Path) -> None:
    """``--coarse-width`` sizes the coarsest DCGAN pair alone; ``--init`` starts G from another generator's layers
    that fit (here a trained LAPGAN's levels under a new, wider coarsest GAN), on a fresh run only."""
    from safetensors.torch import load_file

    base = GANTrainConfig(arch="lapgan", loss="ns", ema_kimg=0.01, **{**TINY, "resolution": 32})
    first = _train(tmp_path / "first", 3, base, every=3)
    trained = load_file(str(first.generator))
    wide = GANTrainConfig(**{**base.__dict__, "coarse_width": 6, "init": str(first.generator), "train_levels": (8,)})
    res = _train(tmp_path / "wide", 3, wide, every=3)
    m = res.method
    assert m.G.coarse.main[0].out_channels == 6 and m.D.coarse.main[0].out_channels == 6  # 8x8 DCGAN: one block
    assert m.G.levels[0].net[0].out_channels == 4 and m.D.levels[0].net[0].out_channels == 4  # --width
    for net in (m.G, m.G_ema):  # the levels came from the file and were not trained; the new coarse pair was
        mine = net.state_dict()
        assert all(torch.equal(mine[k], trained[k]) for k in mine if k.startswith("levels."))
    G, meta = load_model_file(res.generator)
    assert meta["arch_kwargs"]["coarse_width"] == 6 and G(torch.randn(2, 4)).shape == (2, 1, 32, 32)
    # a resume keeps its checkpoint's weights: the init file is not read again (here it is gone)
    before = load_checkpoint(tmp_path / "wide" / "checkpoint.pt")["method"]["G"]
    (tmp_path / "first" / "G.safetensors").unlink()
    again = _train(tmp_path / "wide", 4, wide, every=4).method.G.state_dict()
    assert all(torch.equal(again[k], before[k]) for k in again if k.startswith("levels."))
    assert any(not torch.equal(again[k], before[k]) for k in again if k.startswith("coarse."))
    # nothing fits, another architecture, a coarse width for the fully connected pair
    res = _train(tmp_path / "w5", 1, GANTrainConfig(**{**base.__dict__, "width": 5}), every=1)
    with pytest.raises(UsageError, match="no tensor of it has the name and shape of this run's G"):
        _train(tmp_path / "x", 1, GANTrainConfig(**{**base.__dict__, "init": str(res.generator)}))
    dc = _train(tmp_path / "dc", 1, GANTrainConfig(arch="dcgan", loss="ns", **TINY), every=1)
    with pytest.raises(UsageError, match="holds a dcgan_g network, not lapgan_g"):
        _train(tmp_path / "y", 1, GANTrainConfig(**{**base.__dict__, "init": str(dc.generator)}))
    with pytest.raises(UsageError, match="--coarse-width 6: the width"):
        GANTrainConfig(**{**base.__dict__, "coarse": "mlp", "coarse_width": 6}).validate()
    with pytest.raises(UsageError, match="--coarse-width is for --arch lapgan, not progan"):
        GANTrainConfig(arch="progan", loss="wgan-gp", coarse_width=6).validate()


def test_lapgan_augments_each_level_and_its_low_pass_alike(tmp_path: Path) -> None:
    """``--augment`` with LAPGAN: D_k's image and its conditioning low-pass get the same random transform (the
    pair stays consistent), the coarsest level's image alone; every level's real scores drive ADA's p."""
    cfg = GANTrainConfig(arch="lapgan", loss="ns", augment="fixed", augment_p=1.0,
                         augment_ops=("translate", "rotate", "contrast", "cutout"), **{**TINY, "resolution": 32})
    torch.manual_seed(0)
    method = LapGANMethod(cfg, blobs(32), seed=1)
    seen: list = []
    score = method.D.score

    def spy(j: int, x: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        seen.append((j, x.detach(), None if low is None else low.detach()))
        return score(j, x, low)

    method.D.score = spy  # type: ignore[method-assign]
    t = torch.rand(4, 1, 16, 16) * 2 - 1
    method._level_scores(1, t, t.clone())
    j, x, low = seen[-1]
    assert j == 1 and torch.equal(x, low) and not torch.equal(x, t)  # the same draws for both, and they changed t
    method._level_scores(1, t, t.clone())
    assert not torch.equal(seen[-1][1], x)  # fresh draws at each call
    method._level_scores(0, t[..., :8, :8], None)
    assert seen[-1][2] is None and not torch.equal(seen[-1][1], t[..., :8, :8])
    out = method.step([[0, 1, 2, 3]], 0)
    assert out["p_aug"] == 1.0 and {s for s, *_ in seen[3:]} == {0, 1, 2}


@pytest.mark.parametrize("arch", ["progan", "msggan"])
def test_progan_and_msggan_d_see_augmented_images_every_scale_alike(arch: str) -> None:
    # cutout at p = 1: every image D scores (real, fake, G's step) has exact zeros, which neither the data (uint8
    # mapped to [-1, 1]) nor a generator gives
    cfg = GANTrainConfig(**{**CFGS[arch].__dict__, "augment": "fixed", "augment_p": 1.0, "augment_ops": ("cutout",)})
    torch.manual_seed(0)
    method = (ProGANMethod if arch == "progan" else MSGGANMethod)(cfg, blobs(16), seed=2)
    seen: list = []
    forward = method.D.forward

    def spy(x, *a):  # type: ignore[no-untyped-def]
        seen.append([t.detach() for t in (x if isinstance(x, list) else [x])])
        return forward(x, *a)

    method.D.forward = spy  # type: ignore[method-assign]
    method.step([[0, 1, 2, 3]], 0)
    assert len(seen) >= 3 and all(bool((t == 0).flatten(1).any(1).all()) for ts in seen for t in ts)
    if arch == "msggan":  # a mirror (exact) hits an image at every scale or at none
        method.aug.ops = ("xflip",)
        x = avg_pyramid(blobs(16).batch(range(16), "cpu")[0], method.sizes)
        method._d_scores(x, None)
        out = seen[-1]
        flipped = torch.stack([(o - t.flip(-1)).abs().flatten(1).amax(1) < 1e-5 for o, t in zip(out, x)])
        kept = torch.stack([(o - t).abs().flatten(1).amax(1) < 1e-5 for o, t in zip(out, x)])
        assert bool((flipped ^ kept).all()) and 0 < int(flipped[-1].sum()) < 16
        assert torch.equal(flipped, flipped[-1].expand_as(flipped))
