"""The GAN loss family of ``imgforge gan train``: each objective with its paper's training defaults.

Discriminators output raw scores ``(B,)`` or ``(B, ...)`` (no sigmoid; BEGAN's discriminator is an autoencoder and
returns its reconstruction). Every loss is a pair of functions on those scores:

============  =====================================================================  ===================================
name          discriminator / generator objective (minimised)                        paper defaults (``LOSS_DEFAULTS``)
============  =====================================================================  ===================================
``mm``        ``-log D(x) - log(1 - D(G(z)))`` / ``log(1 - D(G(z)))`` (saturating)   Goodfellow et al. 2014, k = 1
``ns``        same D / ``-log D(G(z))`` (non-saturating)                             Goodfellow et al. 2014, k = 1
``wgan``      ``D(G(z)) - D(x)`` / ``-D(G(z))``, weights clipped to ±0.01            Arjovsky et al. 2017: RMSprop 5e-5,
                                                                                      5 critic steps
``wgan-gp``   WGAN + ``λ (‖∇D(x̂)‖ - 1)²`` on random interpolates x̂, λ = 10         Gulrajani et al. 2017: Adam 1e-4
                                                                                      (0, 0.9), 5 critic steps
``lsgan``     ``½(D(x) - 1)² + ½ D(G(z))²`` / ``½(D(G(z)) - 1)²`` (0/1 targets)      Mao et al. 2017: Adam 2e-4 (0.5)
``dragan``    NS + ``λ (‖∇D(x̂)‖ - 1)²`` around perturbed real data, λ = 10           Kodali et al. 2017: Adam 2e-4 (0.5)
``began``     ``L(x) - k_t L(G(z))`` / ``L(G(z))`` with ``L = |AE(v) - v|₁``;         Berthelot et al. 2017: Adam 1e-4
              ``k_{t+1} = clip(k_t + λ_k (γ L(x) - L(G(z))), 0, 1)``; logs           (0.5, 0.999), γ = 0.5, λ_k = 0.001
              ``M_global = L(x) + |γ L(x) - L(G(z))|``
``hinge``     ``relu(1 - D(x)) + relu(1 + D(G(z)))`` / ``-D(G(z))``                 Lim & Ye 2017 / SNGAN: Adam 2e-4
                                                                                      (0, 0.9)
``rahinge``   relativistic average hinge: ``relu(1 - (D(x) - E D(G(z))))``          Jolicoeur-Martineau 2018: Adam
              ``+ relu(1 + (D(G(z)) - E D(x)))`` / the same with real and fake       2e-4 (0.5, 0.999); MSG-GAN's
              swapped (the generator's loss needs the real scores too)               default
============  =====================================================================  ===================================

(``log D`` with ``D = sigmoid(score)`` is computed stably as ``-softplus(-score)``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import UsageError
from .gan import gradient_penalty

__all__ = ["LOSSES", "RELATIVISTIC", "LossDefaults", "LOSS_DEFAULTS", "loss_defaults", "d_loss", "g_loss", "BeganState",
           "dragan_penalty", "wgan_gp_penalty", "clip_weights"]

LOSSES = ("mm", "ns", "wgan", "wgan-gp", "lsgan", "dragan", "began", "hinge", "rahinge")
#: Losses whose generator objective needs the discriminator's scores on real images too.
RELATIVISTIC = ("rahinge",)


@dataclass(frozen=True)
class LossDefaults:
    """The paper's training defaults for one loss: optimiser, learning rates, betas, critic steps and extras."""

    optimizer: str = "adam"  # "adam" or "rmsprop"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: Tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1
    clip: Optional[float] = None  # WGAN weight clipping
    gp_lambda: float = 0.0  # WGAN-GP / DRAGAN penalty weight
    gamma: float = 0.5  # BEGAN diversity ratio
    lambda_k: float = 0.001  # BEGAN k_t learning rate


LOSS_DEFAULTS: Dict[str, LossDefaults] = {
    "mm": LossDefaults(),
    "ns": LossDefaults(),
    "wgan": LossDefaults(optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, d_steps=5, clip=0.01),
    "wgan-gp": LossDefaults(lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), d_steps=5, gp_lambda=10.0),
    "lsgan": LossDefaults(),
    "dragan": LossDefaults(gp_lambda=10.0),
    "began": LossDefaults(lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999)),
    "hinge": LossDefaults(betas=(0.0, 0.9)),
    "rahinge": LossDefaults(),
}


def loss_defaults(name: str) -> LossDefaults:
    """Defaults of loss ``name``; :class:`UsageError` naming ``--loss`` for an unknown one."""
    if name not in LOSS_DEFAULTS:
        raise UsageError(f"--loss {name!r} is not one of {', '.join(LOSSES)}")
    return LOSS_DEFAULTS[name]


def _log_d(score: Tensor) -> Tensor:  # log sigmoid(score)
    return -F.softplus(-score)


def _log_1m_d(score: Tensor) -> Tensor:  # log(1 - sigmoid(score))
    return -F.softplus(score)


def d_loss(name: str, real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss (to minimise) from raw scores on real and generated images (any shapes, averaged).

    Penalties (``wgan-gp``, ``dragan``) and BEGAN (autoencoder losses) are separate: see :func:`wgan_gp_penalty`,
    :func:`dragan_penalty` and :class:`BeganState`.
    """
    if name in ("mm", "ns", "dragan"):
        return -(_log_d(real).mean() + _log_1m_d(fake).mean())
    if name in ("wgan", "wgan-gp"):
        return fake.mean() - real.mean()
    if name == "lsgan":
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()
    if name == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if name == "rahinge":
        return F.relu(1 - (real - fake.mean())).mean() + F.relu(1 + (fake - real.mean())).mean()
    if name == "began":
        raise ValueError("BEGAN's discriminator loss needs the autoencoder losses: use BeganState.d_loss")
    raise UsageError(f"--loss {name!r} is not one of {', '.join(LOSSES)}")


def g_loss(name: str, fake: Tensor, real: Optional[Tensor] = None) -> Tensor:
    """Generator loss (to minimise) from the discriminator's raw scores on generated images (and, for the
    relativistic losses of :data:`RELATIVISTIC`, on real images: ``real``).

    ``mm`` is the saturating minimax form ``log(1 - D(G(z)))``: its gradient vanishes when D confidently rejects the
    samples (early in training), which is why ``ns`` (``-log D(G(z))``) exists.
    """
    if name == "mm":
        return _log_1m_d(fake).mean()
    if name in ("ns", "dragan"):
        return -_log_d(fake).mean()
    if name in ("wgan", "wgan-gp", "hinge"):
        return -fake.mean()
    if name == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    if name == "rahinge":
        if real is None:
            raise ValueError("the relativistic hinge generator loss needs the scores of real images")
        return F.relu(1 + (real - fake.mean())).mean() + F.relu(1 - (fake - real.mean())).mean()
    if name == "began":
        raise ValueError("BEGAN's generator loss is the autoencoder loss on samples: use BeganState.g_loss")
    raise UsageError(f"--loss {name!r} is not one of {', '.join(LOSSES)}")


def wgan_gp_penalty(D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, lam: float = 10.0,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """``λ E[(‖∇D(x̂)‖₂ - 1)²]`` at ``x̂ = α x + (1 - α) G(z)``, one ``α ~ U(0, 1)`` per sample (Gulrajani et al.)."""
    penalty, _ = gradient_penalty(D, real, fake.detach(), type="mixed", lambda_gp=lam, generator=generator)
    return penalty


def dragan_penalty(D: Callable[[Tensor], Tensor], real: Tensor, lam: float = 10.0, c: float = 0.5,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """DRAGAN's penalty (Kodali et al. 2017): ``λ E[(‖∇D(x̂)‖₂ - 1)²]`` at points between real data ``x`` and a
    perturbation ``x_p = x + c · std(x) · u``, ``u ~ U(0, 1)`` (the authors' code), ``x̂ = α x + (1 - α) x_p``."""
    u = torch.rand(real.shape, generator=generator, dtype=real.dtype)
    perturbed = real + c * real.std() * u.to(real.device)
    penalty, _ = gradient_penalty(D, real, perturbed, type="mixed", lambda_gp=lam, generator=generator)
    return penalty


@torch.no_grad()
def clip_weights(D: nn.Module, clip: float) -> None:
    """WGAN's weight clipping: every parameter of the critic into ``[-clip, clip]`` after each critic step."""
    for p in D.parameters():
        p.clamp_(-clip, clip)


@dataclass
class BeganState:
    """BEGAN's equilibrium control (Berthelot et al. 2017). ``k`` is part of the training state (checkpointed).

    ``L(v) = mean |AE(v) - v|`` (per batch); the discriminator minimises ``L(x) - k L(G(z))``, the generator
    ``L(G(z))``; after each step ``k <- clip(k + λ_k (γ L(x) - L(G(z))), 0, 1)``;
    ``M_global = L(x) + |γ L(x) - L(G(z))|`` measures convergence.
    """

    gamma: float = 0.5
    lambda_k: float = 0.001
    k: float = 0.0

    @staticmethod
    def recon(ae_out: Tensor, v: Tensor) -> Tensor:
        return (ae_out - v).abs().mean()

    def d_loss(self, loss_real: Tensor, loss_fake: Tensor) -> Tensor:
        return loss_real - self.k * loss_fake

    @staticmethod
    def g_loss(loss_fake: Tensor) -> Tensor:
        return loss_fake

    def update(self, loss_real: float, loss_fake: float) -> float:
        """Advance ``k`` with the step's losses; returns ``M_global``."""
        balance = self.gamma * float(loss_real) - float(loss_fake)
        self.k = min(max(self.k + self.lambda_k * balance, 0.0), 1.0)
        return float(loss_real) + abs(balance)
