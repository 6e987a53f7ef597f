"""GANLoss (lsgan, vanilla, wgangp, hinge) and the WGAN-GP gradient penalty, against explicit formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from imgforge.losses.gan import GANLoss, cal_gradient_penalty, gradient_penalty


@pytest.fixture()
def pred() -> torch.Tensor:
    return torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(0)) * 2


def test_lsgan(pred: torch.Tensor) -> None:
    loss = GANLoss("lsgan")
    assert torch.allclose(loss(pred, True), ((pred - 1) ** 2).mean())
    assert torch.allclose(loss(pred, False), (pred**2).mean())
    assert torch.allclose(GANLoss("lsgan", 0.9, 0.1)(pred, True), ((pred - 0.9) ** 2).mean())


def test_vanilla_is_bce_on_logits(pred: torch.Tensor) -> None:
    loss = GANLoss("vanilla")
    s = torch.sigmoid(pred.double())
    assert torch.allclose(loss(pred, True).double(), -torch.log(s).mean(), atol=1e-6)
    assert torch.allclose(loss(pred, False).double(), -torch.log(1 - s).mean(), atol=1e-6)


def test_wgangp_and_hinge(pred: torch.Tensor) -> None:
    w = GANLoss("wgangp")
    assert torch.allclose(w(pred, True), -pred.mean()) and torch.allclose(w(pred, False), pred.mean())
    h = GANLoss("hinge")
    assert torch.allclose(h(pred, True), torch.clamp(1 - pred, min=0).mean())
    assert torch.allclose(h(pred, False), torch.clamp(1 + pred, min=0).mean())
    assert torch.allclose(h(pred, True, for_discriminator=False), -pred.mean())
    # for_discriminator changes nothing in the reference's modes
    assert torch.equal(GANLoss("lsgan")(pred, True, for_discriminator=False), GANLoss("lsgan")(pred, True))


def test_labels_are_buffers_and_bad_mode() -> None:
    loss = GANLoss("lsgan")
    assert set(dict(loss.named_buffers())) == {"real_label", "fake_label"}
    assert loss(torch.ones(3, dtype=torch.float64), True).dtype == torch.float64
    with pytest.raises(ValueError):
        GANLoss("relativistic")


def test_loss_backpropagates(pred: torch.Tensor) -> None:
    p = pred.clone().requires_grad_(True)
    GANLoss("lsgan")(p, True).backward()
    assert torch.allclose(p.grad, 2 * (pred - 1) / pred.numel())  # type: ignore[arg-type]


class Linear(nn.Module):
    """D(x) = sum(w * x): its input gradient is w for every sample, so the penalty is known in closed form."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


@pytest.mark.parametrize("kind", ["real", "fake", "mixed"])
def test_gradient_penalty_closed_form(kind: str) -> None:
    d = Linear((3, 4, 4))
    real, fake = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    gp, grads = gradient_penalty(d, real, fake, type=kind, constant=1.0, lambda_gp=10.0,
                                 generator=torch.Generator().manual_seed(0))
    expected = 10.0 * ((d.w.detach().flatten() + 1e-16).norm() - 1.0) ** 2
    assert torch.allclose(gp, expected, rtol=1e-5)
    assert grads is not None and grads.shape == (2, 48)
    assert not real.requires_grad and not fake.requires_grad  # caller's tensors untouched
    gp.backward()  # create_graph=True: the penalty reaches D's parameters
    assert d.w.grad is not None and d.w.grad.abs().sum() > 0


def test_gradient_penalty_mixed_uses_interpolates() -> None:
    class Quadratic(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x**2).flatten(1).sum(1)  # gradient 2x depends on where it is taken

    real, fake = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    g = torch.Generator().manual_seed(3)
    alpha = torch.rand(1, 1, generator=torch.Generator().manual_seed(3)).item()
    gp, grads = gradient_penalty(Quadratic(), real, fake, type="mixed", generator=g)
    assert grads is not None and torch.allclose(grads, torch.full((1, 4), 2 * alpha))
    assert torch.allclose(gp, torch.tensor(10.0 * (4 * alpha - 1) ** 2), rtol=1e-5)


def test_gradient_penalty_disabled_and_alias() -> None:
    gp, grads = cal_gradient_penalty(Linear((1, 2, 2)), torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), lambda_gp=0.0)
    assert float(gp) == 0.0 and grads is None
    with pytest.raises(ValueError):
        gradient_penalty(Linear((1, 2, 2)), torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), type="both")
