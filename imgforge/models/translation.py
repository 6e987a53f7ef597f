"""Image-to-image translation networks, layout-compatible with junyanz/pytorch-CycleGAN-and-pix2pix.

Every class here produces a ``state_dict()`` whose keys, order and shapes are exactly those the reference saves
(``model.1.weight``, ``model.10.conv_block.5.bias``, ``model.model.1.model.3.model.2.running_mean``, ...), so the
published ``latest_net_G.pth`` / ``latest_net_D.pth`` files load with ``strict=True`` once the documented legacy
keys are dropped (see :mod:`imgforge.hub.convert_translation`).

Networks:

- :class:`ResnetGenerator` (``resnet_9blocks`` / ``resnet_6blocks``: CycleGAN), registered as ``resnet_generator``.
- :class:`UnetGenerator` (``unet_256`` = 8 downsamplings, ``unet_128`` = 7: pix2pix), ``unet_generator``.
- :class:`NLayerDiscriminator` (PatchGAN; ``basic`` = 3 layers, 70x70 receptive field), ``patchgan_discriminator``.
- :class:`PixelDiscriminator` (1x1 PatchGAN, ``pixel``), ``pixel_discriminator``.

All take a ``norm`` string instead of the reference's ``norm_layer`` so that their kwargs are JSON-serialisable:
``"batch"`` = BatchNorm2d (affine, tracked running stats), ``"instance"`` = InstanceNorm2d (affine=False, no running
stats, so no state-dict keys), ``"none"`` = identity. As in the reference, convolutions followed by a norm layer have
a bias only when the norm is ``"instance"`` (so ``"none"`` gives bias-free convolutions: an upstream quirk kept for
compatibility).

Generators take and return images in [-1, 1] (the reference normalises with mean 0.5, std 0.5 and ends in Tanh).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn as nn
from torch.nn import init

from ..ops.narrow_conv import SpaceToDepthConv2d, SubpixelConvTranspose2d
from .registry import register

NORMS = ("batch", "instance", "none")
PADDINGS = ("reflect", "replicate", "zero")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def norm_layer(norm: str, num_features: int) -> nn.Module:
    """The reference's ``get_norm_layer(norm)(num_features)``.

    ``"batch"``: ``BatchNorm2d(affine=True, track_running_stats=True)``; ``"instance"``:
    ``InstanceNorm2d(affine=False, track_running_stats=False)``; ``"none"``: ``nn.Identity()``.
    """
    if norm == "batch":
        return nn.BatchNorm2d(num_features, affine=True, track_running_stats=True)
    if norm == "instance":
        return nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def _use_bias(norm: str) -> bool:
    # The reference enables conv bias only when the norm layer is InstanceNorm2d (not for batch, nor for none).
    return norm == "instance"


# --------------------------------------------------------------------------------------------------------------
# ResNet generator
# --------------------------------------------------------------------------------------------------------------


class ResnetBlock(nn.Module):
    """Residual block ``x + conv_block(x)``; ``conv_block`` is pad, conv3x3, norm, ReLU, [Dropout(0.5)], pad, conv3x3,
    norm (pads are absent for ``padding_type="zero"``, where the convs pad by 1 themselves)."""

    def __init__(self, dim: int, padding_type: str, norm: str, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for second in (False, True):
            p = 0
            if padding_type == "reflect":
                layers.append(nn.ReflectionPad2d(1))
            elif padding_type == "replicate":
                layers.append(nn.ReplicationPad2d(1))
            elif padding_type == "zero":
                p = 1
            else:
                raise ValueError(f"padding_type must be one of {PADDINGS}, got {padding_type!r}")
            layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(norm, dim)]
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


@register("resnet_generator")
class ResnetGenerator(nn.Module):
    """ResNet generator (Johnson et al.): c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks at
    4*ngf channels, two transposed-conv upsamplings, c7s1-output_nc, Tanh.

    Args:
        input_nc / output_nc: image channels in and out.
        ngf: width of the first layer (published models: 64).
        norm: ``"batch"``, ``"instance"`` (CycleGAN) or ``"none"``.
        use_dropout: Dropout(0.5) inside every residual block (shifts the block's second conv from index 5 to 6).
        n_blocks: residual blocks (9 for ``resnet_9blocks``, 6 for ``resnet_6blocks``; any ``>= 0``).
        padding_type: ``"reflect"`` (default, all published models), ``"replicate"`` or ``"zero"``.

    Forward: ``x: (B, input_nc, H, W)`` in [-1, 1], H and W multiples of 4 (:attr:`pad_multiple`) ->
    ``(B, output_nc, H, W)`` in [-1, 1]. Other sizes run but give an output of a different size.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
        n_blocks: int = 6,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if padding_type not in PADDINGS:
            raise ValueError(f"padding_type must be one of {PADDINGS}, got {padding_type!r}")
        self.input_nc, self.output_nc, self.ngf = int(input_nc), int(output_nc), int(ngf)
        self.norm, self.use_dropout, self.n_blocks, self.padding_type = norm, bool(use_dropout), int(n_blocks), padding_type
        bias = _use_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        n_down = 2
        for i in range(n_down):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                norm_layer(norm, ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**n_down
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * mult, padding_type, norm, use_dropout, bias))
        for i in range(n_down):
            mult = 2 ** (n_down - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                norm_layer(norm, int(ngf * mult / 2)),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    @property
    def pad_multiple(self) -> int:
        """H and W must be multiples of this for the output to have the input's size (2 stride-2 stages -> 4)."""
        return 4

    @property
    def min_input_size(self) -> int:
        """Smallest H and W it runs on: the residual blocks' 1-pixel reflection pads need a 2x2 bottleneck."""
        return 8

    def config(self) -> Dict[str, Any]:
        """Constructor kwargs (JSON-serialisable), as stored in our safetensors metadata."""
        return {
            "input_nc": self.input_nc,
            "output_nc": self.output_nc,
            "ngf": self.ngf,
            "norm": self.norm,
            "use_dropout": self.use_dropout,
            "n_blocks": self.n_blocks,
            "padding_type": self.padding_type,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --------------------------------------------------------------------------------------------------------------
# U-Net generator
# --------------------------------------------------------------------------------------------------------------


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``cat([x, up(inner(down(x)))], 1)`` (the outermost level returns ``up(inner(down(x)))``).

    Sequence ``model``: outermost ``[downconv, inner, ReLU, upconv(bias), Tanh]``; innermost ``[LeakyReLU(0.2),
    downconv, ReLU, upconv, upnorm]``; otherwise ``[LeakyReLU(0.2), downconv, downnorm, inner, ReLU, upconv, upnorm]``
    plus a trailing ``Dropout(0.5)`` when ``use_dropout`` (it has no keys, so it leaves no trace in the state dict).
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = _use_bias(norm)
        if input_nc is None:
            input_nc = outer_nc
        # the outermost level's convolutions touch the image (3 channels): computed in a form oneDNN runs faster
        # (same parameters and keys; imgforge.ops.narrow_conv)
        conv_cls = SpaceToDepthConv2d if outermost else nn.Conv2d
        downconv = conv_cls(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        layers: list[nn.Module]
        if outermost:
            assert submodule is not None
            upconv = SubpixelConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, uprelu, upconv, norm_layer(norm, outer_nc)]
        else:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, norm_layer(norm, inner_nc), submodule, uprelu, upconv, norm_layer(norm, outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


@register("unet_generator")
class UnetGenerator(nn.Module):
    """U-Net generator (pix2pix): ``num_downs`` stride-2 levels with skip connections.

    Args:
        input_nc / output_nc: image channels in and out.
        num_downs: levels (8 for ``unet_256``, 7 for ``unet_128``; at least 5). The ``num_downs - 5`` levels right
            outside the innermost one work at 8*ngf channels and are the ones that get dropout.
        ngf: width of the outermost level (published models: 64).
        norm: ``"batch"`` (pix2pix), ``"instance"`` or ``"none"``.
        use_dropout: Dropout(0.5) in the 8*ngf levels (pix2pix: on; it leaves no keys in the state dict).

    Forward: ``x: (B, input_nc, H, W)`` in [-1, 1], H and W multiples of ``2**num_downs`` (:attr:`pad_multiple`)
    -> ``(B, output_nc, H, W)`` in [-1, 1].
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5 (the reference builds 5 fixed levels), got {num_downs}")
        self.input_nc, self.output_nc, self.num_downs, self.ngf = int(input_nc), int(output_nc), int(num_downs), int(ngf)
        self.norm, self.use_dropout = norm, bool(use_dropout)
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm)

    @property
    def pad_multiple(self) -> int:
        """H and W must be multiples of ``2**num_downs`` (256 for unet_256, 128 for unet_128)."""
        return 2**self.num_downs

    def config(self) -> Dict[str, Any]:
        """Constructor kwargs (JSON-serialisable), as stored in our safetensors metadata."""
        return {
            "input_nc": self.input_nc,
            "output_nc": self.output_nc,
            "num_downs": self.num_downs,
            "ngf": self.ngf,
            "norm": self.norm,
            "use_dropout": self.use_dropout,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --------------------------------------------------------------------------------------------------------------
# Discriminators
# --------------------------------------------------------------------------------------------------------------


@register("patchgan_discriminator")
class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator: conv4x4/2 (bias) + LeakyReLU(0.2); ``n_layers - 1`` x [conv4x4/2, norm, LeakyReLU]
    with widths ndf * min(2**n, 8); conv4x4/1 + norm + LeakyReLU; conv4x4/1 to 1 channel (bias). No sigmoid.

    ``n_layers=3`` is the reference's ``basic`` (70x70 receptive field). Input ``(B, input_nc, H, W)`` in [-1, 1]
    (pix2pix: ``cat(A, B)``, 6 channels); output ``(B, 1, H', W')`` raw logits/scores (256 -> 30x30 for n_layers=3).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        _check_norm(norm)
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        self.input_nc, self.ndf, self.n_layers, self.norm = int(input_nc), int(ndf), int(n_layers), norm
        bias = _use_bias(norm)
        kw, padw = 4, 1
        seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_prev, nf_mult = nf_mult, min(2**n, 8)
            seq += [
                nn.Conv2d(ndf * nf_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=bias),
                norm_layer(norm, ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        seq += [
            nn.Conv2d(ndf * nf_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=bias),
            norm_layer(norm, ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw),
        ]
        self.model = nn.Sequential(*seq)

    def config(self) -> Dict[str, Any]:
        """Constructor kwargs (JSON-serialisable)."""
        return {"input_nc": self.input_nc, "ndf": self.ndf, "n_layers": self.n_layers, "norm": self.norm}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@register("pixel_discriminator")
class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN (``pixel``): conv1x1 (bias) + LeakyReLU, conv1x1 + norm + LeakyReLU, conv1x1 to 1 channel.

    Keys live under ``net.`` (``net.0``, ``net.2``, ``net.3``, ``net.5``). The last conv has a bias only with
    InstanceNorm (reference quirk). Output ``(B, 1, H, W)`` raw scores.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        _check_norm(norm)
        self.input_nc, self.ndf, self.norm = int(input_nc), int(ndf), norm
        bias = _use_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=bias),
            norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=bias),
        )

    def config(self) -> Dict[str, Any]:
        """Constructor kwargs (JSON-serialisable)."""
        return {"input_nc": self.input_nc, "ndf": self.ndf, "norm": self.norm}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --------------------------------------------------------------------------------------------------------------
# Reference-style construction and initialisation
# --------------------------------------------------------------------------------------------------------------


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """The reference's ``init_weights`` (what ``init_net`` applies), in module registration order.

    Conv*/Linear weights: ``normal`` ~ N(0, init_gain), ``xavier`` = xavier_normal(gain=init_gain), ``kaiming`` =
    kaiming_normal(a=0, fan_in), ``orthogonal`` (gain=init_gain); their biases 0. BatchNorm2d: weight ~
    N(1, init_gain), bias 0. Uses the global torch RNG, like the reference (seed with ``torch.manual_seed``).
    Returns ``net``.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(f"init_type must be one of {INIT_TYPES}, got {init_type!r}")

    def init_func(m: nn.Module) -> None:
        classname = m.__class__.__name__
        weight = getattr(m, "weight", None)
        if weight is not None and ("Conv" in classname or "Linear" in classname):
            if init_type == "normal":
                init.normal_(weight.data, 0.0, init_gain)
            elif init_type == "xavier":
                init.xavier_normal_(weight.data, gain=init_gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(weight.data, a=0, mode="fan_in")
            else:
                init.orthogonal_(weight.data, gain=init_gain)
            bias = getattr(m, "bias", None)
            if bias is not None:
                init.constant_(bias.data, 0.0)
        elif "BatchNorm2d" in classname:
            init.normal_(m.weight.data, 1.0, init_gain)  # type: ignore[union-attr]
            init.constant_(m.bias.data, 0.0)  # type: ignore[union-attr]

    net.apply(init_func)
    return net


_NETG = {
    "resnet_9blocks": ("resnet_generator", {"n_blocks": 9}),
    "resnet_6blocks": ("resnet_generator", {"n_blocks": 6}),
    "unet_128": ("unet_generator", {"num_downs": 7}),
    "unet_256": ("unet_generator", {"num_downs": 8}),
}


def generator_spec(
    netG: str, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance", use_dropout: bool = False
) -> tuple[str, Dict[str, Any]]:
    """Map the reference's ``--netG`` name (``resnet_9blocks``, ``resnet_6blocks``, ``unet_256``, ``unet_128``) and
    options to ``(arch, kwargs)`` for :func:`imgforge.models.registry.build`. Defaults are the reference's option
    defaults (``--norm instance``, ``--ngf 64``; CycleGAN uses ``--no_dropout``, pix2pix keeps dropout)."""
    if netG not in _NETG:
        raise ValueError(f"unknown netG {netG!r}; known: {', '.join(_NETG)}")
    arch, extra = _NETG[netG]
    kwargs: Dict[str, Any] = {"input_nc": input_nc, "output_nc": output_nc, "ngf": ngf, "norm": _check_norm(norm)}
    kwargs["use_dropout"] = bool(use_dropout)
    kwargs.update(extra)
    return arch, kwargs


def discriminator_spec(
    netD: str, input_nc: int = 3, ndf: int = 64, n_layers_D: int = 3, norm: str = "instance"
) -> tuple[str, Dict[str, Any]]:
    """Map the reference's ``--netD`` (``basic``, ``n_layers``, ``pixel``) to ``(arch, kwargs)``."""
    _check_norm(norm)
    if netD == "basic":
        return "patchgan_discriminator", {"input_nc": input_nc, "ndf": ndf, "n_layers": 3, "norm": norm}
    if netD == "n_layers":
        return "patchgan_discriminator", {"input_nc": input_nc, "ndf": ndf, "n_layers": n_layers_D, "norm": norm}
    if netD == "pixel":
        return "pixel_discriminator", {"input_nc": input_nc, "ndf": ndf, "norm": norm}
    raise ValueError(f"unknown netD {netD!r}; known: basic, n_layers, pixel")
