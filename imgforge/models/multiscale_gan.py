"""Networks of the multi-scale GANs of ``imgforge gan train``: LAPGAN, ProGAN and MSG-GAN.

Every generator takes ``z (N, z_dim)`` and returns the final image ``(N, C, R, R)`` (nominally [-1, 1], linear
output), declares ``z_dim``, ``img_resolution`` and ``output_range`` (so the generator protocol's adapter makes it
usable by ``generate``, ``morph``, ``edit`` and ``invert --space z``), and has ``scales(z) -> [images, coarse to
fine]`` (the per-scale outputs drawn on the run page and by :func:`chain_strip`).

- **LAPGAN** (Denton et al. 2015, :class:`LapGANGenerator` / :class:`LapGANDiscriminator`): a plain GAN at the
  coarsest size, either fully connected as the paper's (``coarse="mlp"``: the MLP pair of
  :mod:`imgforge.models.gan_nets`, G two hidden layers of ``coarse_hidden`` = 1200 ReLU units, D two of 600 LeakyReLU
  units with dropout 0.5) or a DCGAN pair at that side (``coarse="dcgan"``, ``gan train``'s default, ngf = ndf =
  ``coarse_width``, default ``width``: on MNIST-5k the fully connected pair collapsed to 2-3 digits within 3,200
  steps at batch 64 and 128), then one conditional
  generator per doubling,
  ``h̃_k = G_k(z_k, u(Ĩ_{k+1}))`` (3 convolutions 3x3, ReLU, linear output; the noise ``z_k`` enters as one extra
  input plane next to the up-sampled coarser image) and ``Ĩ_k = u(Ĩ_{k+1}) + h̃_k``. One z drives the whole chain:
  the coarsest level gets ``z`` itself and level ``k`` the plane ``z_k = reshape(P_k z)``, with ``P_k`` a fixed
  ``(S_k², z_dim)`` Gaussian matrix scaled by ``1/sqrt(z_dim)`` (drawn from ``torch.Generator().manual_seed(
  noise_seed + k)``, rebuilt from the constructor's arguments, not stored), so each noise pixel is N(0, |z|²/z_dim)
  ≈ N(0, 1) and a z names one coarse-to-fine chain. The level discriminators ``D_k`` see the image
  ``u(I_{k+1}) + h`` (real or generated) with the low-pass ``u(I_{k+1})`` concatenated as conditioning (2 strided
  convolutions, LeakyReLU 0.2, a linear score).
- **ProGAN** (Karras et al. 2018, :class:`ProGANGenerator` / :class:`ProGANDiscriminator`): equalized learning rate
  (weights N(0, 1), scaled at run time by He's constant ``gain / sqrt(fan_in)``, gain sqrt(2); 1 for toRGB and
  the critic's output), pixel norm after every generator convolution and on z, LeakyReLU 0.2, nearest-neighbour up
  and average-pool down, minibatch standard deviation (groups of 4) before D's last block. Channels at side ``s``:
  ``min(8 width, width R / s)``. The networks hold every block up to the target resolution from the start;
  ``synth(z, level, alpha)`` / ``forward(x, level, alpha)`` run the blocks up to ``level`` (side ``4·2^level``) and
  blend the new block in: G ``lerp(up(toRGB_{l-1}(x_{l-1})), toRGB_l(x_l), α)``, D
  ``lerp(fromRGB_{l-1}(down(x)), block_l(fromRGB_l(x)), α)``. The generator keeps the training stage it was
  exported at in two buffers (``stage_level``, ``stage_alpha``); ``forward(z)`` uses them and upsamples (nearest) to
  ``img_resolution``.
- **MSG-GAN** (Karnewar & Wang 2020, :class:`MSGGANGenerator` / :class:`MSGGANDiscriminator`): ProGAN's blocks,
  all active; G emits ``toRGB`` at every scale; D takes the finest image through fromRGB and every coarser one at
  the input of its block of that scale through a combine function: ``simple`` (concatenate the image to the
  features), ``lin_cat`` (a 1x1 convolution of the image to ``ch/2`` features, then concatenate) or ``cat_lin``
  (concatenate, then a 1x1 convolution back to ``ch``).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..ops.pyramid import avg_down, avg_pyramid, nearest_up, u
from .gan_nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from .registry import register

__all__ = ["EqLinear", "EqConv2d", "pixel_norm", "MinibatchStd", "ProGANGenerator", "ProGANDiscriminator",
           "MSGGANGenerator", "MSGGANDiscriminator", "LapGANGenerator", "LapGANDiscriminator", "COMBINES",
           "level_channels", "scale_table"]

COMBINES = ("simple", "lin_cat", "cat_lin")
SQRT2 = math.sqrt(2.0)


def _levels(img_resolution: int, base: int = 4) -> int:
    n = math.log2(int(img_resolution) / base) if img_resolution > 0 else -1
    if n < 0 or n != int(n):
        raise ValueError(f"resolution must be {base} times a power of two, got {img_resolution}")
    return int(n)


def level_channels(img_resolution: int, width: int) -> List[int]:
    """Channels at sides 4, 8, ..., R: ``min(8 width, width R / side)``."""
    n = _levels(img_resolution)
    return [max(1, min(8 * width, width * img_resolution // (4 * 2 ** i))) for i in range(n + 1)]


# ---- ProGAN layers ---------------------------------------------------------------------------------------------------


class EqLinear(nn.Module):
    """Linear layer with equalized learning rate: weight N(0, 1), used as ``weight * gain / sqrt(in_features)``."""

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = float(gain) / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqConv2d(nn.Module):
    """Convolution (stride 1, 'same' padding) with equalized learning rate: ``gain / sqrt(in · k · k)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, gain: float = SQRT2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = float(gain) / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """ProGAN's pixelwise feature normalisation ``x / sqrt(mean_c x² + eps)``."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (ProGAN): one feature map, the mean over features of the standard deviation
    over groups of ``group_size`` samples (sample ``i`` in group ``i mod N/G``)."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = int(group_size)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=(1, 2, 3))
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class _GBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = EqConv2d(cin, cout, 3)
        self.conv2 = EqConv2d(cout, cout, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = nearest_up(x)
        x = pixel_norm(_lrelu(self.conv1(x)))
        return pixel_norm(_lrelu(self.conv2(x)))


class _GFirst(nn.Module):
    def __init__(self, z_dim: int, ch: int) -> None:
        super().__init__()
        self.dense = EqLinear(z_dim, ch * 16, gain=SQRT2 / 4)  # the official code's gain for the 4x4 projection
        self.conv = EqConv2d(ch, ch, 3)
        self.ch = ch

    def forward(self, z: Tensor) -> Tensor:
        x = pixel_norm(_lrelu(self.dense(pixel_norm(z)).reshape(z.shape[0], self.ch, 4, 4)))
        return pixel_norm(_lrelu(self.conv(x)))


@register("progan_g")
class ProGANGenerator(nn.Module):
    """ProGAN generator (see the module docstring). ``synth(z, level, alpha)`` -> ``(N, C, 4·2^level, ...)``;
    ``forward(z)`` at the stored stage, upsampled to ``img_resolution``."""

    def __init__(self, z_dim: int = 100, img_resolution: int = 32, channels: int = 1, width: int = 64,
                 n_classes: int = 0) -> None:
        super().__init__()
        if n_classes:
            raise ValueError("ProGAN here is unconditional")
        self.z_dim, self.img_resolution, self.channels = int(z_dim), int(img_resolution), int(channels)
        self.output_range = (-1.0, 1.0)
        ch = level_channels(img_resolution, width)
        self.max_level = len(ch) - 1
        self.blocks = nn.ModuleList([_GFirst(z_dim, ch[0])] + [_GBlock(ch[i - 1], ch[i]) for i in range(1, len(ch))])
        self.to_rgb = nn.ModuleList([EqConv2d(c, channels, 1, gain=1.0) for c in ch])
        self.register_buffer("stage_level", torch.tensor(self.max_level, dtype=torch.long))
        self.register_buffer("stage_alpha", torch.tensor(1.0))

    def set_stage(self, level: int, alpha: float) -> None:
        self.stage_level.fill_(int(level))
        self.stage_alpha.fill_(float(alpha))

    def features(self, z: Tensor, level: int) -> List[Tensor]:
        xs = [self.blocks[0](z)]
        for i in range(1, int(level) + 1):
            xs.append(self.blocks[i](xs[-1]))
        return xs

    def _blend(self, xs: Sequence[Tensor], level: int, alpha: float) -> Tensor:
        img = self.to_rgb[level](xs[level])
        if level > 0 and alpha < 1.0:
            img = torch.lerp(nearest_up(self.to_rgb[level - 1](xs[level - 1])), img, float(alpha))
        return img

    def synth(self, z: Tensor, level: Optional[int] = None, alpha: Optional[float] = None) -> Tensor:
        level = int(self.stage_level) if level is None else int(level)
        alpha = float(self.stage_alpha) if alpha is None else float(alpha)
        return self._blend(self.features(z, level), level, alpha)

    def scales(self, z: Tensor, level: Optional[int] = None, alpha: Optional[float] = None) -> List[Tensor]:
        """toRGB of every active scale, coarse to fine (the last one blended as in :meth:`synth`)."""
        level = int(self.stage_level) if level is None else int(level)
        alpha = float(self.stage_alpha) if alpha is None else float(alpha)
        xs = self.features(z, level)
        return [self.to_rgb[i](xs[i]) for i in range(level)] + [self._blend(xs, level, alpha)]

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        img = self.synth(z)
        return nearest_up(img, self.img_resolution // img.shape[-1])


class _DBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = EqConv2d(cin, cin, 3)
        self.conv2 = EqConv2d(cin, cout, 3)

    def forward(self, x: Tensor) -> Tensor:
        return avg_down(_lrelu(self.conv2(_lrelu(self.conv1(x)))))


class _DLast(nn.Module):
    def __init__(self, cin: int, ch: int, group: int) -> None:
        super().__init__()
        self.mbstd = MinibatchStd(group)
        self.conv = EqConv2d(cin + 1, ch, 3)
        self.dense = EqLinear(ch * 16, ch)
        self.out = EqLinear(ch, 1, gain=1.0)

    def forward(self, x: Tensor) -> Tensor:
        x = _lrelu(self.conv(self.mbstd(x)))
        return self.out(_lrelu(self.dense(x.flatten(1))))[:, 0]


class _FromRGB(nn.Module):
    def __init__(self, channels: int, ch: int) -> None:
        super().__init__()
        self.conv = EqConv2d(channels, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return _lrelu(self.conv(x))


@register("progan_d")
class ProGANDiscriminator(nn.Module):
    """ProGAN critic. ``forward(img (N, C, s, s), level=None, alpha=1.0) -> scores (N,)`` (level from ``s``)."""

    def __init__(self, img_resolution: int = 32, channels: int = 1, width: int = 64, mbstd_group: int = 4,
                 n_classes: int = 0) -> None:
        super().__init__()
        if n_classes:
            raise ValueError("ProGAN here is unconditional")
        ch = level_channels(img_resolution, width)
        self.from_rgb = nn.ModuleList([_FromRGB(channels, c) for c in ch])
        self.blocks = nn.ModuleList([_DLast(ch[0], ch[0], mbstd_group)] + [_DBlock(ch[i], ch[i - 1])
                                                                           for i in range(1, len(ch))])

    def forward(self, img: Tensor, level: Optional[int] = None, alpha: float = 1.0,
                labels: Optional[Tensor] = None) -> Tensor:
        level = _levels(img.shape[-1]) if level is None else int(level)
        h = self.blocks[level](self.from_rgb[level](img))
        if level > 0 and alpha < 1.0:
            h = torch.lerp(self.from_rgb[level - 1](avg_down(img)), h, float(alpha))
        for i in range(level - 1, -1, -1):
            h = self.blocks[i](h)
        return h


# ---- MSG-GAN ---------------------------------------------------------------------------------------------------------


@register("msggan_g")
class MSGGANGenerator(ProGANGenerator):
    """MSG-GAN generator: ProGAN's blocks, all active; ``multi_scale(z)`` = toRGB at every scale (coarse to fine),
    ``forward(z)`` = the finest."""

    def multi_scale(self, z: Tensor) -> List[Tensor]:
        return self.scales(z, self.max_level, 1.0)

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.synth(z, self.max_level, 1.0)


class _Combine(nn.Module):
    def __init__(self, mode: str, ch: int, channels: int) -> None:
        super().__init__()
        self.mode = mode
        self.lin: Optional[nn.Module] = None
        if mode == "lin_cat":
            self.lin = EqConv2d(channels, max(1, ch // 2), 1)
            self.extra = max(1, ch // 2)
        elif mode == "cat_lin":
            self.lin = EqConv2d(ch + channels, ch, 1)
            self.extra = 0
        else:
            self.extra = channels

    def forward(self, h: Tensor, img: Tensor) -> Tensor:
        if self.mode == "lin_cat":
            return torch.cat([h, _lrelu(self.lin(img))], dim=1)  # type: ignore[misc]
        x = torch.cat([h, img], dim=1)
        return _lrelu(self.lin(x)) if self.mode == "cat_lin" else x  # type: ignore[misc]


@register("msggan_d")
class MSGGANDiscriminator(nn.Module):
    """MSG-GAN critic. ``forward(images) -> scores (N,)``: ``images`` the list of every scale, coarse to fine
    (``(N, C, 4, 4)``, ..., ``(N, C, R, R)``), or one ``(N, C, R, R)`` tensor (then average-pooled to every scale)."""

    def __init__(self, img_resolution: int = 32, channels: int = 1, width: int = 64, combine: str = "simple",
                 mbstd_group: int = 4) -> None:
        super().__init__()
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
        ch = level_channels(img_resolution, width)
        self.sizes = [4 * 2 ** i for i in range(len(ch))]
        self.from_rgb = _FromRGB(channels, ch[-1])
        self.combine = nn.ModuleList([_Combine(combine, c, channels) for c in ch[:-1]])
        extra = [m.extra for m in self.combine] + [0]
        self.blocks = nn.ModuleList([_DLast(ch[0] + extra[0], ch[0], mbstd_group)]
                                    + [_DBlock(ch[i] + extra[i], ch[i - 1]) for i in range(1, len(ch))])

    def forward(self, images: Union[Tensor, Sequence[Tensor]], labels: Optional[Tensor] = None) -> Tensor:
        imgs = avg_pyramid(images, self.sizes) if isinstance(images, Tensor) else list(images)
        if [int(x.shape[-1]) for x in imgs] != self.sizes:
            raise ValueError(f"MSG-GAN's critic needs images of sides {self.sizes}, got {[x.shape[-1] for x in imgs]}")
        top = len(self.sizes) - 1
        h = self.from_rgb(imgs[top])
        for i in range(top, -1, -1):
            if i < top:
                h = self.combine[i](h, imgs[i])
            h = self.blocks[i](h)
        return h


# ---- LAPGAN ----------------------------------------------------------------------------------------------------------


class _LapLevelG(nn.Module):
    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels + 1, width, 3, 1, 1), nn.ReLU(True),
                                 nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(True),
                                 nn.Conv2d(width, channels, 3, 1, 1))

    def forward(self, noise: Tensor, low: Tensor) -> Tensor:
        return self.net(torch.cat([low, noise], dim=1))


class _LapLevelD(nn.Module):
    def __init__(self, channels: int, width: int, size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2 * channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(width, width, 4, 2, 1), nn.LeakyReLU(0.2, True))
        self.out = nn.Linear(width * (size // 4) ** 2, 1)

    def forward(self, img: Tensor, low: Tensor) -> Tensor:
        return self.out(self.net(torch.cat([img, low], dim=1)).flatten(1))[:, 0]


def lap_sizes(img_resolution: int, start_resolution: int) -> List[int]:
    """LAPGAN's pyramid sides, coarse to fine: ``start_resolution, 2 * start_resolution, ..., img_resolution``."""
    n = math.log2(int(img_resolution) / int(start_resolution))
    if start_resolution < 8 or n < 0 or n != int(n):
        raise ValueError(f"LAPGAN needs a start resolution >= 8 and a power-of-two ratio to {img_resolution}")
    return [int(start_resolution) * 2 ** i for i in range(int(n) + 1)]


#: LAPGAN's coarsest GAN: ``mlp`` (the paper's fully connected pair) or ``dcgan`` (a DCGAN pair at that side).
LAPGAN_COARSE = ("mlp", "dcgan")


@register("lapgan_g")
class LapGANGenerator(nn.Module):
    """LAPGAN's chain of generators (see the module docstring). ``forward(z) -> (N, C, R, R)``; ``scales(z)``: the
    chain ``[Ĩ_K, ..., Ĩ_0]`` coarse to fine; ``residual(j, noise, low)``: level ``j``'s ``h̃`` (``j >= 1``)."""

    def __init__(self, z_dim: int = 100, img_resolution: int = 32, channels: int = 1, width: int = 64,
                 start_resolution: int = 8, noise_seed: int = 0, coarse_hidden: int = 1200, n_classes: int = 0,
                 coarse: str = "mlp", coarse_width: Optional[int] = None) -> None:
        super().__init__()
        if n_classes:
            raise ValueError("LAPGAN here is unconditional")
        if coarse not in LAPGAN_COARSE:
            raise ValueError(f"coarse={coarse!r}: one of {', '.join(LAPGAN_COARSE)}")
        self.z_dim, self.img_resolution, self.channels = int(z_dim), int(img_resolution), int(channels)
        self.output_range = (-1.0, 1.0)
        self.sizes = lap_sizes(img_resolution, start_resolution)
        self.coarse = (MLPGenerator(z_dim, self.sizes[0], channels, hidden=coarse_hidden) if coarse == "mlp"
                       else DCGANGenerator(z_dim, self.sizes[0], channels, ngf=int(coarse_width or width)))
        self.levels = nn.ModuleList([_LapLevelG(channels, width) for _ in self.sizes[1:]])
        for j, s in enumerate(self.sizes[1:], start=1):
            p = torch.randn(s * s, self.z_dim, generator=torch.Generator().manual_seed(int(noise_seed) + j))
            self.register_buffer(f"proj_{j}", p / math.sqrt(self.z_dim), persistent=False)

    def noise(self, j: int, z: Tensor) -> Tensor:
        """Level ``j``'s noise plane ``(N, 1, S_j, S_j)`` = ``reshape(P_j z)``."""
        s = self.sizes[j]
        p = getattr(self, f"proj_{j}")
        return (z.to(p.dtype) @ p.t()).reshape(z.shape[0], 1, s, s)

    def residual(self, j: int, noise: Tensor, low: Tensor) -> Tensor:
        return self.levels[j - 1](noise, low)

    def scales(self, z: Tensor) -> List[Tensor]:
        return self.refine(z, self.coarse(z))

    def refine(self, z: Tensor, top: Tensor) -> List[Tensor]:
        """The chain from a given coarsest image ``top (N, C, S_K, S_K)`` (e.g. the real pyramid's top): ``[top,
        Ĩ_{K-1}, ..., Ĩ_0]``, each level's residual drawn from ``z`` as in :meth:`scales`."""
        imgs = [top]
        for j in range(1, len(self.sizes)):
            low = u(imgs[-1])
            imgs.append(low + self.residual(j, self.noise(j, z), low))
        return imgs

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.scales(z)[-1]


@register("lapgan_d")
class LapGANDiscriminator(nn.Module):
    """LAPGAN's discriminators: ``score(0, img)`` the coarsest (fully connected, dropout); ``score(j, img, low)``
    level ``j`` on the image ``low + h``, conditioned on the low-pass ``low`` (the coarser level, upsampled)."""

    def __init__(self, img_resolution: int = 32, channels: int = 1, width: int = 64, start_resolution: int = 8,
                 coarse_hidden: int = 600, dropout: float = 0.5, coarse: str = "mlp", batch_norm: bool = True,
                 coarse_width: Optional[int] = None) -> None:
        super().__init__()
        if coarse not in LAPGAN_COARSE:
            raise ValueError(f"coarse={coarse!r}: one of {', '.join(LAPGAN_COARSE)}")
        self.sizes = lap_sizes(img_resolution, start_resolution)
        self.coarse = (MLPDiscriminator(self.sizes[0], channels, hidden=coarse_hidden, dropout=dropout)
                       if coarse == "mlp" else DCGANDiscriminator(self.sizes[0], channels,
                                                                  ndf=int(coarse_width or width), batch_norm=batch_norm))
        self.levels = nn.ModuleList([_LapLevelD(channels, width, s) for s in self.sizes[1:]])

    def score(self, j: int, img: Tensor, low: Optional[Tensor] = None) -> Tensor:
        if j == 0:
            return self.coarse(img)
        assert low is not None
        return self.levels[j - 1](img, low)

    def forward(self, img: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """The coarsest critic (the level critics need their low-pass: :meth:`score`)."""
        return self.score(0, img)


@torch.no_grad()
def scale_table(G: nn.Module, z: Tensor) -> Tensor:
    """``G.scales(z)`` as one tensor ``(N, S, C, R, R)``: every scale of every z, nearest-upsampled to the finest
    side (LAPGAN's coarse-to-fine chain, ProGAN's and MSG-GAN's per-scale outputs)."""
    imgs = G.scales(z)  # type: ignore[operator]
    side = int(imgs[-1].shape[-1])
    return torch.stack([nearest_up(x, side // int(x.shape[-1])) for x in imgs], dim=1)
