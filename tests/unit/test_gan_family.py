"""The GAN loss family and the pre-StyleGAN networks: closed-form values, the MM saturation, shapes and init."""

from __future__ import annotations

import math

import pytest
import torch

from imgforge.errors import UsageError
from imgforge.losses.gan_family import (LOSSES, BeganState, clip_weights, d_loss, dragan_penalty, g_loss,
                                        loss_defaults, wgan_gp_penalty)
from imgforge.models.gan_nets import (BEGANDiscriminator, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                                      MLPGenerator, check_resolution)


def test_losses_on_known_scores():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sig = torch.sigmoid
    expect_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.allclose(d_loss("mm", real, fake), expect_d)
    assert torch.allclose(d_loss("ns", real, fake), expect_d)
    assert torch.allclose(g_loss("mm", fake), torch.log(1 - sig(fake)).mean())
    assert torch.allclose(g_loss("ns", fake), -torch.log(sig(fake)).mean())
    assert torch.allclose(d_loss("wgan", real, fake), torch.tensor(0.0 - 1.0))
    assert torch.allclose(g_loss("wgan-gp", fake), torch.tensor(0.0))
    assert torch.allclose(d_loss("lsgan", real, fake), torch.tensor(0.5 * (1 + 1) / 2 + 0.5 * (1 + 1) / 2))
    assert torch.allclose(g_loss("lsgan", fake), torch.tensor(0.5 * (4 + 0) / 2))
    assert torch.allclose(d_loss("hinge", real, fake), torch.tensor((0 + 1) / 2 + (0 + 2) / 2))
    assert torch.allclose(g_loss("hinge", fake), torch.tensor(0.0))
    # relativistic average hinge: D(x) - mean D(G(z)) = [2, 0] - 0, D(G(z)) - mean D(x) = [-1, 1] - 1
    assert torch.allclose(d_loss("rahinge", real, fake), torch.tensor((0 + 1) / 2 + (0 + 1) / 2))
    assert torch.allclose(g_loss("rahinge", fake, real), torch.tensor((3 + 1) / 2 + (3 + 1) / 2))
    with pytest.raises(ValueError, match="real"):
        g_loss("rahinge", fake)
    with pytest.raises(UsageError, match="--loss 'nope'"):
        d_loss("nope", real, fake)


def test_paper_defaults():
    assert loss_defaults("wgan").optimizer == "rmsprop" and loss_defaults("wgan").clip == 0.01
    assert loss_defaults("wgan").d_steps == 5 and loss_defaults("wgan").lr_d == 5e-5
    gp = loss_defaults("wgan-gp")
    assert (gp.gp_lambda, gp.lr_d, gp.betas, gp.d_steps) == (10.0, 1e-4, (0.0, 0.9), 5)
    assert loss_defaults("dragan").gp_lambda == 10.0 and loss_defaults("began").lambda_k == 0.001
    assert set(LOSSES) == {"mm", "ns", "wgan", "wgan-gp", "lsgan", "dragan", "began", "hinge", "rahinge"}
    with pytest.raises(UsageError):
        loss_defaults("gan")


def test_mm_saturates_when_d_rejects_samples_and_ns_does_not():
    fake = torch.tensor([-8.0, -6.0], requires_grad=True)  # D confidently says "fake"
    (g_mm,) = torch.autograd.grad(g_loss("mm", fake), fake)
    (g_ns,) = torch.autograd.grad(g_loss("ns", fake), fake)
    assert g_mm.abs().max() < 0.002 and g_ns.abs().min() > 0.45


def test_gradient_penalties_vanish_for_a_unit_gradient_critic():
    lin = torch.nn.Linear(12, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.ones(1, 12) / math.sqrt(12))  # ||grad|| = 1 everywhere
    D = lambda x: lin(x.flatten(1))[:, 0]  # noqa: E731
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    g = torch.Generator().manual_seed(0)
    assert float(wgan_gp_penalty(D, real, fake, generator=g).detach()) < 1e-8
    assert float(dragan_penalty(D, real, generator=g).detach()) < 1e-8
    with torch.no_grad():
        lin.weight.mul_(3)  # ||grad|| = 3: penalty 10 * (3 - 1)^2
    assert abs(float(wgan_gp_penalty(D, real, fake, generator=g).detach()) - 40.0) < 1e-3


def test_weight_clipping_and_began_control():
    D = DCGANDiscriminator(img_resolution=8, channels=1, ndf=4)
    with torch.no_grad():
        next(D.parameters()).fill_(1.0)
    clip_weights(D, 0.01)
    assert max(float(p.detach().abs().max()) for p in D.parameters()) <= 0.01
    s = BeganState(gamma=0.5, lambda_k=0.001)
    m = s.update(loss_real=0.4, loss_fake=0.1)  # gamma * 0.4 - 0.1 = 0.1
    assert abs(s.k - 1e-4) < 1e-12 and abs(m - 0.5) < 1e-12
    s.update(loss_real=0.0, loss_fake=5.0)
    assert s.k == 0.0  # clipped at 0
    assert torch.allclose(s.d_loss(torch.tensor(2.0), torch.tensor(3.0)), torch.tensor(2.0))


@pytest.mark.parametrize("res, blocks", [(32, 3), (64, 4)])
def test_dcgan_shapes_and_init(res, blocks):
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=16, img_resolution=res, channels=3, ngf=8)
    D = DCGANDiscriminator(img_resolution=res, channels=3, ndf=8)
    img = G(torch.randn(5, 16))
    assert img.shape == (5, 3, res, res) and img.abs().max() <= 1
    assert D(img).shape == (5,)
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == blocks + 1
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(float(w.detach().std()) - 0.02) < 0.002
    # batch norm in G except the output, in D except the input block
    assert not isinstance(D.main[1], torch.nn.BatchNorm2d) and isinstance(D.main[3], torch.nn.BatchNorm2d)
    assert G.z_dim == 16 and G.img_resolution == res and G.output_range == (-1.0, 1.0)


def test_conditional_networks_use_the_labels():
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, img_resolution=8, channels=1, ngf=4, n_classes=10).eval()
    z = torch.randn(2, 8)
    a, b = G(z, torch.tensor([1, 1])), G(z, torch.tensor([1, 7]))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    D = DCGANDiscriminator(img_resolution=8, channels=1, ndf=4, n_classes=10).eval()
    assert D(a, torch.tensor([0, 1])).shape == (2,)
    with pytest.raises(ValueError, match="labels"):
        G(z)
    mg, md = MLPGenerator(z_dim=8, img_resolution=8, hidden=16, n_classes=3), MLPDiscriminator(8, hidden=16, n_classes=3)
    assert md(mg(z, torch.tensor([0, 2])), torch.tensor([0, 2])).shape == (2,)


def test_began_discriminator_reconstructs_its_input_shape_and_bad_resolutions():
    D = BEGANDiscriminator(img_resolution=16, channels=3, ndf=8, h=8)
    x = torch.randn(2, 3, 16, 16)
    assert D(x).shape == x.shape
    for bad in (12, 4, 0):
        with pytest.raises(ValueError, match="power of two"):
            check_resolution(bad)


def test_began_decoder_output_is_linear_as_in_the_paper() -> None:
    """A tanh on the autoencoder's output saturates at the black background of digits and stalls BEGAN's D at the
    background-median reconstruction (measured: L1 stuck at 0.20 for 3,000 steps); the paper's decoder ends with a
    plain convolution."""
    from imgforge.models.gan_nets import BEGANDiscriminator

    torch.manual_seed(0)
    D = BEGANDiscriminator(img_resolution=8, channels=1, ndf=4, h=4)
    with torch.no_grad():
        D.decoder[-1].bias.fill_(3.0)
    with torch.no_grad():
        out = D(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 1, 8, 8) and float(out.min()) > 1.5
