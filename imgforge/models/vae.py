"""Convolutional autoencoder and variational autoencoder (Kingma & Welling 2014) for small images.

:class:`VAE` has a convolutional encoder ``x (N, C, R, R) -> (mu, logvar)`` (each ``(N, latent_dim)``) and a decoder
``z -> logits (N, C, R, R)``; with ``deterministic=True`` it is a plain autoencoder (the encoder's ``mu`` is the code,
no sampling, no KL term). Images are in [0, 1] here (the likelihoods are defined on that range); the decoder, seen
through the generator protocol (:attr:`VAE.decoder_generator`), maps to [0, 1] too and declares it.

Likelihoods: ``bernoulli`` (the decoder's output are logits; binary cross-entropy with the grey levels as
probabilities, as the VAE paper's MNIST experiments) or ``gaussian`` (mean ``sigmoid(logits)``, a learned global
log-variance). :func:`elbo` gives the per-image evidence lower bound in nats, :func:`iwae_log_likelihood` the
importance-weighted estimate ``log (1/k) sum_i p(x, z_i) / q(z_i | x)`` of Burda et al. (2016), which tightens
towards ``log p(x)`` as ``k`` grows.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .gan_nets import check_resolution
from .registry import register

__all__ = ["VAE", "VAEDecoder", "elbo", "iwae_log_likelihood", "log_likelihood"]

LOG_2PI = math.log(2 * math.pi)
#: File name of a whole (V)AE in a run folder (the decoder alone is written as G.safetensors).
MODEL_NAME = "vae.safetensors"


@register("vae_decoder")
class VAEDecoder(nn.Module):
    """``forward(z (N, latent_dim)) -> logits (N, C, R, R)``; with ``as_image=True`` the mean image in [0, 1]."""

    def __init__(self, latent_dim: int, img_resolution: int, channels: int, width: int) -> None:
        super().__init__()
        steps = check_resolution(img_resolution)
        top = width * 2 ** (steps - 1)
        self.fc = nn.Linear(latent_dim, top * 16)
        layers: list[nn.Module] = []
        w = top
        for _ in range(steps - 1):
            layers += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1), nn.BatchNorm2d(w // 2), nn.ReLU(True)]
            w //= 2
        layers += [nn.ConvTranspose2d(w, channels, 4, 2, 1)]
        self.net = nn.Sequential(*layers)
        self.top = top
        # what the generator protocol's adapter reads
        self.z_dim = int(latent_dim)
        self.img_resolution = int(img_resolution)
        self.output_range = (0.0, 1.0)

    def logits(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).reshape(z.shape[0], self.top, 4, 4))

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(z))


@register("vae")
class VAE(nn.Module):
    """Convolutional (V)AE. ``forward(x) -> (logits, mu, logvar)``; ``x`` in [0, 1]."""

    def __init__(self, latent_dim: int = 16, img_resolution: int = 32, channels: int = 1, width: int = 32,
                 likelihood: str = "bernoulli", deterministic: bool = False) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be bernoulli or gaussian, got {likelihood!r}")
        steps = check_resolution(img_resolution)
        layers: list[nn.Module] = []
        c, w = channels, width
        for i in range(steps):
            layers += [nn.Conv2d(c, w, 4, 2, 1)] + ([nn.BatchNorm2d(w)] if i else []) + [nn.LeakyReLU(0.2, True)]
            c, w = w, w * 2
        self.encoder = nn.Sequential(*layers)
        self.fc_mu = nn.Linear(c * 16, latent_dim)
        self.fc_logvar = nn.Linear(c * 16, latent_dim)
        self.decoder = VAEDecoder(latent_dim, img_resolution, channels, width)
        self.likelihood = likelihood
        self.deterministic = bool(deterministic)
        self.latent_dim = int(latent_dim)
        self.log_sigma2 = nn.Parameter(torch.zeros(())) if likelihood == "gaussian" else None

    @property
    def decoder_generator(self) -> VAEDecoder:
        """The decoder as a plain z-space generator (``z_dim``, ``img_resolution``, ``output_range`` (0, 1))."""
        return self.decoder

    def encode(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        h = self.encoder(x).flatten(1)
        mu = self.fc_mu(h)
        if self.deterministic:
            return mu, torch.full_like(mu, -30.0)
        return mu, self.fc_logvar(h).clamp(-30, 20)

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x)
        if self.deterministic:
            z = mu
        else:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
            z = mu + eps * (0.5 * logvar).exp()
        return self.decoder.logits(z), mu, logvar


def log_likelihood(model: VAE, logits: Tensor, x: Tensor) -> Tensor:
    """``log p(x | z)`` per image ``(N,)`` in nats, for the model's likelihood."""
    if model.likelihood == "bernoulli":
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    ls2 = model.log_sigma2
    mean = torch.sigmoid(logits)
    return (-0.5 * ((x - mean) ** 2 / ls2.exp() + ls2 + LOG_2PI)).flatten(1).sum(1)


def elbo(model: VAE, x: Tensor, beta: float = 1.0, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-image ``(elbo, reconstruction log-likelihood, KL)``, each ``(N,)``, nats; ``elbo = rec - beta * KL``
    (``beta`` < 1 during KL annealing; the reported ELBO uses ``beta = 1``). For a deterministic AE the KL is 0."""
    logits, mu, logvar = model(x, generator)
    rec = log_likelihood(model, logits, x)
    if model.deterministic:
        kl = torch.zeros_like(rec)
    else:
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
    return rec - beta * kl, rec, kl


@torch.no_grad()
def iwae_log_likelihood(model: VAE, x: Tensor, k: int = 100, generator: Optional[torch.Generator] = None) -> Tensor:
    """Importance-weighted estimate of ``log p(x)`` per image ``(N,)`` with ``k`` samples (Burda et al. 2016)."""
    if model.deterministic:
        raise ValueError("a deterministic autoencoder has no likelihood")
    mu, logvar = model.encode(x)
    std = (0.5 * logvar).exp()
    logs = []
    for _ in range(k):
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        z = mu + eps * std
        log_pz = (-0.5 * (z ** 2 + LOG_2PI)).sum(1)
        log_qz = (-0.5 * (eps ** 2 + LOG_2PI) - 0.5 * logvar).sum(1)
        logs.append(log_likelihood(model, model.decoder.logits(z), x) + log_pz - log_qz)
    return torch.logsumexp(torch.stack(logs), 0) - math.log(k)
