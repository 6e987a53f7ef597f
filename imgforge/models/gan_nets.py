"""Generators and discriminators of the pre-StyleGAN family: the original MLP GAN and DCGAN, optionally
class-conditional, and BEGAN's autoencoder discriminator.

Every generator takes ``z (N, z_dim)`` (and ``labels (N,)`` when conditional) and returns images ``(N, C, R, R)`` in
[-1, 1] (tanh); it declares ``z_dim``, ``img_resolution`` and ``output_range`` so that the generator protocol's
adapter (:func:`imgforge.models.protocols.as_generator`) makes it usable by ``generate``, ``morph``, ``edit`` and
``invert --space z``. Discriminators return raw scores ``(N,)``.

- MLP (Goodfellow et al. 2014): G = ``z -> 1200 -> 1200 -> C·R·R`` with ReLU and a tanh output (the paper used
  sigmoid on [0, 1] MNIST; tanh keeps imgforge's [-1, 1] convention); D = maxout-free version of the paper's:
  ``C·R·R -> 240 -> 240 -> 1`` with LeakyReLU 0.2 and dropout 0.5 (the paper's D used dropout).
- DCGAN (Radford et al. 2016): G projects z to ``8·ngf x 4 x 4`` with a fractional-strided (transposed) 4x4
  convolution, then doubles the resolution with transposed convolutions, batch norm + ReLU in every block except the
  tanh output; D mirrors it with strided 4x4 convolutions, LeakyReLU 0.2, batch norm in every block except the input
  one, and a final 4x4 convolution to one score. Weights N(0, 0.02), batch-norm scales N(1, 0.02)
  (:func:`dcgan_init`). 32² uses 3 up-blocks, 64² 4, and each doubling adds one.
- Conditioning (Mirza & Osindero 2014, concatenation): G gets a learned label embedding concatenated to z; D gets the
  label as ``n_classes`` constant one-hot planes concatenated to the image (DCGAN) or to the flattened image (MLP).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from .registry import register

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator", "BEGANDiscriminator",
           "dcgan_init", "check_resolution"]


def check_resolution(resolution: int) -> int:
    """Number of x2 steps from 4 to ``resolution`` (a power of two >= 8); ValueError otherwise."""
    steps = math.log2(resolution / 4) if resolution > 0 else -1
    if resolution < 8 or steps != int(steps):
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return int(steps)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv / linear weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class _Conditional(nn.Module):
    def __init__(self, z_dim: int, n_classes: int, img_resolution: int, channels: int) -> None:
        super().__init__()
        self.z_dim = int(z_dim)
        self.n_classes = int(n_classes)
        self.img_resolution = int(img_resolution)
        self.channels = int(channels)
        self.output_range = (-1.0, 1.0)
        self.embed = nn.Embedding(n_classes, n_classes) if n_classes > 0 else None

    def _z_in(self, z: Tensor, labels: Optional[Tensor]) -> Tensor:
        if self.embed is None:
            return z
        if labels is None:
            raise ValueError("this generator is class-conditional: give labels (N,)")
        return torch.cat([z, self.embed(labels.long())], dim=1)


@register("mlp_gan_g")
class MLPGenerator(_Conditional):
    """``forward(z (N, z_dim), labels=None) -> (N, C, R, R)`` in [-1, 1]."""

    def __init__(self, z_dim: int = 100, img_resolution: int = 32, channels: int = 1, hidden: int = 1200,
                 n_classes: int = 0) -> None:
        super().__init__(z_dim, n_classes, img_resolution, channels)
        out = channels * img_resolution * img_resolution
        self.net = nn.Sequential(nn.Linear(z_dim + max(n_classes, 0), hidden), nn.ReLU(True),
                                 nn.Linear(hidden, hidden), nn.ReLU(True), nn.Linear(hidden, out), nn.Tanh())

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        r = self.img_resolution
        return self.net(self._z_in(z, labels)).reshape(z.shape[0], self.channels, r, r)


@register("mlp_gan_d")
class MLPDiscriminator(nn.Module):
    """``forward(img (N, C, R, R), labels=None) -> scores (N,)``."""

    def __init__(self, img_resolution: int = 32, channels: int = 1, hidden: int = 240, dropout: float = 0.5,
                 n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        inp = channels * img_resolution * img_resolution + max(n_classes, 0)
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(inp, hidden), nn.LeakyReLU(0.2, True),
                                 nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True),
                                 nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, img: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        x = img.flatten(1)
        if self.n_classes > 0:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: give labels (N,)")
            x = torch.cat([x, nn.functional.one_hot(labels.long(), self.n_classes).to(x.dtype)], dim=1)
        return self.net(x)[:, 0]


@register("dcgan_g")
class DCGANGenerator(_Conditional):
    """DCGAN generator. ``forward(z (N, z_dim), labels=None) -> (N, C, R, R)`` in [-1, 1]; ``ngf`` is the width of
    the last hidden block (the first has ``ngf * 2^(steps-1)`` channels)."""

    def __init__(self, z_dim: int = 100, img_resolution: int = 32, channels: int = 1, ngf: int = 64,
                 n_classes: int = 0) -> None:
        super().__init__(z_dim, n_classes, img_resolution, channels)
        steps = check_resolution(img_resolution)
        width = ngf * 2 ** (steps - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim + max(n_classes, 0), width, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(steps - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.main(self._z_in(z, labels)[:, :, None, None])


@register("dcgan_d")
class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator. ``forward(img (N, C, R, R), labels=None) -> scores (N,)``; ``ndf`` is the first block's
    width. ``batch_norm=False`` drops the batch norms (what WGAN-GP and DRAGAN recommend for their penalties)."""

    def __init__(self, img_resolution: int = 32, channels: int = 1, ndf: int = 64, n_classes: int = 0,
                 batch_norm: bool = True) -> None:
        super().__init__()
        steps = check_resolution(img_resolution)
        self.n_classes = int(n_classes)
        width = ndf
        layers: list[nn.Module] = [nn.Conv2d(channels + max(n_classes, 0), width, 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, True)]
        for _ in range(steps - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False)]
            layers += [nn.BatchNorm2d(width * 2)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, img: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        x = img
        if self.n_classes > 0:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: give labels (N,)")
            planes = nn.functional.one_hot(labels.long(), self.n_classes).to(img.dtype)
            x = torch.cat([img, planes[:, :, None, None].expand(-1, -1, *img.shape[2:])], dim=1)
        return self.main(x).flatten(1).mean(1)


@register("began_d")
class BEGANDiscriminator(nn.Module):
    """BEGAN's discriminator: an autoencoder ``forward(img) -> reconstruction`` (same shape), with an ``h``-dim
    bottleneck; convolutional encoder (ELU, strided) and a decoder mirroring it (nearest upsampling)."""

    def __init__(self, img_resolution: int = 32, channels: int = 1, ndf: int = 64, h: int = 64) -> None:
        super().__init__()
        steps = check_resolution(img_resolution)
        enc: list[nn.Module] = [nn.Conv2d(channels, ndf, 3, 1, 1), nn.ELU(True)]
        width = ndf
        for _ in range(steps):
            enc += [nn.Conv2d(width, width + ndf, 3, 2, 1), nn.ELU(True)]
            width += ndf
        self.encoder = nn.Sequential(*enc)
        self.to_h = nn.Linear(width * 16, h)
        self.from_h = nn.Linear(h, ndf * 16)
        dec: list[nn.Module] = []
        for _ in range(steps):
            dec += [nn.Conv2d(ndf, ndf, 3, 1, 1), nn.ELU(True), nn.Upsample(scale_factor=2, mode="nearest")]
        dec += [nn.Conv2d(ndf, ndf, 3, 1, 1), nn.ELU(True), nn.Conv2d(ndf, channels, 3, 1, 1)]  # linear output (paper)
        self.decoder = nn.Sequential(*dec)
        self.ndf = ndf

    def forward(self, img: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        code = self.to_h(self.encoder(img).flatten(1))
        return self.decoder(self.from_h(code).reshape(img.shape[0], self.ndf, 4, 4))
