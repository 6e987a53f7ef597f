"""GAN objectives as in junyanz/pytorch-CycleGAN-and-pix2pix (``GANLoss``, ``cal_gradient_penalty``), plus hinge.

Discriminators here output raw scores (no sigmoid); the loss applies what it needs:

- ``lsgan`` (reference default): MSE against a target of 1.0 (real) / 0.0 (fake) broadcast to the patch map.
- ``vanilla``: binary cross-entropy with logits against the same targets (pix2pix's training default).
- ``wgangp``: ``-mean(pred)`` for real, ``+mean(pred)`` for fake (pair it with :func:`gradient_penalty`).
- ``hinge`` (not in the reference; the SNGAN/BigGAN form): for the discriminator ``mean(relu(1 - pred))`` for real
  and ``mean(relu(1 + pred))`` for fake; for the generator (``for_discriminator=False``) ``-mean(pred)``.

Generator terms call the loss with ``target_is_real=True`` on ``D(fake)``, as the reference does; for the first
three modes ``for_discriminator`` changes nothing.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "wgangp", "hinge")


class GANLoss(nn.Module):
    """``loss = GANLoss(mode)(prediction, target_is_real)``; ``prediction: (B, 1, H', W')`` (or any shape) raw
    discriminator scores; returns a scalar tensor.

    The labels are buffers ``real_label`` / ``fake_label`` (defaults 1.0 / 0.0, as the reference), expanded to the
    prediction's shape (they follow ``.to(device)``).
    """

    real_label: torch.Tensor
    fake_label: torch.Tensor

    def __init__(self, gan_mode: str = "lsgan", target_real_label: float = 1.0, target_fake_label: float = 0.0) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")
        self.gan_mode = gan_mode
        self.register_buffer("real_label", torch.tensor(float(target_real_label)))
        self.register_buffer("fake_label", torch.tensor(float(target_fake_label)))

    def get_target_tensor(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """The label tensor expanded to ``prediction``'s shape (and cast to its dtype)."""
        target = self.real_label if target_is_real else self.fake_label
        return target.to(prediction.dtype).expand_as(prediction)

    def forward(self, prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        if self.gan_mode == "lsgan":
            return F.mse_loss(prediction, self.get_target_tensor(prediction, target_is_real))
        if self.gan_mode == "vanilla":
            return F.binary_cross_entropy_with_logits(prediction, self.get_target_tensor(prediction, target_is_real))
        if self.gan_mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        # hinge
        if not for_discriminator:
            return -prediction.mean()
        if target_is_real:
            return F.relu(1.0 - prediction).mean()
        return F.relu(1.0 + prediction).mean()


def gradient_penalty(
    netD: nn.Module,
    real_data: torch.Tensor,
    fake_data: torch.Tensor,
    *,
    type: str = "mixed",
    constant: float = 1.0,
    lambda_gp: float = 10.0,
    generator: Optional[torch.Generator] = None,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """WGAN-GP gradient penalty, the reference's ``cal_gradient_penalty``.

    ``lambda_gp * mean_b((||grad_x D(x)_b + 1e-16||_2 - constant) ** 2)`` at ``x`` = ``real_data`` (``type="real"``),
    ``fake_data`` (``"fake"``) or ``alpha * real + (1 - alpha) * fake`` with one ``alpha ~ U(0, 1)`` per sample
    (``"mixed"``, drawn from ``generator`` or the global RNG). ``real_data`` / ``fake_data``: ``(B, C, H, W)``.
    The graph is kept (``create_graph=True``) so the penalty can be back-propagated. Returns
    ``(penalty, gradients flattened to (B, C*H*W))``; with ``lambda_gp <= 0``: ``(tensor(0.), None)``.
    Unlike the reference, the caller's tensors are never switched to ``requires_grad`` in place.
    """
    if lambda_gp <= 0.0:
        return torch.zeros((), device=real_data.device), None
    if type == "real":
        x = real_data
    elif type == "fake":
        x = fake_data
    elif type == "mixed":
        alpha = torch.rand(real_data.shape[0], 1, generator=generator, device=real_data.device if generator is None else generator.device)
        alpha = alpha.to(real_data.device, real_data.dtype)
        alpha = alpha.expand(real_data.shape[0], real_data.nelement() // real_data.shape[0]).reshape(real_data.shape)
        x = alpha * real_data + (1 - alpha) * fake_data
    else:
        raise ValueError(f"type must be 'real', 'fake' or 'mixed', got {type!r}")
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    out = netD(x)
    (grads,) = torch.autograd.grad(
        outputs=out, inputs=x, grad_outputs=torch.ones_like(out), create_graph=True, retain_graph=True, only_inputs=True
    )
    grads = grads.reshape(real_data.shape[0], -1)
    penalty = (((grads + 1e-16).norm(2, dim=1) - constant) ** 2).mean() * lambda_gp
    return penalty, grads


cal_gradient_penalty = gradient_penalty
"""The reference's name for :func:`gradient_penalty`."""
