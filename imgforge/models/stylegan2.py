"""StyleGAN2 generator and discriminator in pure PyTorch (config-f "skip" generator, "resnet" discriminator).

State-dict keys are those of rosinality/stylegan2-pytorch's ``Generator`` / ``Discriminator`` (``g_ema`` / ``d`` in
its checkpoints), so a rosinality ``g_ema`` loads with ``strict=True``; the generator adds one buffer of its own,
``latent_avg [w_dim]`` (the truncation centre: rosinality's top-level ``latent_avg``, NVIDIA's ``mapping.w_avg``).
NVIDIA stylegan2-ada-pytorch pickles are renamed into these keys by :mod:`imgforge.hub.convert_stylegan`.

Channel widths come from a ``channels`` table (resolution -> width) so any checkpoint loads whatever its widths;
:func:`infer_generator_config` reads them from a state dict. Resolutions 8 ... 1024 (any power of two >= 8).

Generator API (both conventions are available on one object):

* NVIDIA style: ``G.mapping(z, truncation_psi, truncation_cutoff) -> ws``, ``G.synthesis(ws, noise_mode) -> img``,
  ``G(z, truncation_psi=..., noise_mode=...) -> img``; attributes ``z_dim, w_dim, num_ws, img_resolution, w_avg``.
* rosinality style: ``G([z], truncation=..., truncation_latent=..., input_is_latent=..., inject_index=...,
  randomize_noise=..., return_latents=...) -> (img, latent | None)``, plus ``G.style``, ``G.get_latent``,
  ``G.mean_latent``, ``G.make_noise``, ``G.n_latent``, ``G.num_layers``.

Images are ``(N, 3, H, W)`` float, nominally in [-1, 1], **not clamped**.
"""

from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import WeightsError
from .registry import register
from .stylegan2_layers import (
    DEFAULT_BLUR,
    ConstantInput,
    ConvLayer,
    EqualLinear,
    ModulatedConv2d,
    PixelNorm,
    ResBlock,
    StyledConv,
    ToRGB,
    _no_autocast,
)

NOISE_MODES = ("const", "random", "none")


def published_channels(channel_multiplier: int = 2) -> Dict[int, int]:
    """The channel table of the published rosinality/NVIDIA config-f models (512 wide up to 32 px)."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}


def _channel_table(channels: Optional[Mapping[Any, int]], channel_multiplier: int) -> Dict[int, int]:
    if channels is None:
        return published_channels(channel_multiplier)
    return {int(k): int(v) for k, v in channels.items()}


def _log2_size(size: int) -> int:
    log = int(round(math.log2(size))) if size > 0 else 0
    if size < 8 or 2**log != size:
        raise ValueError(f"StyleGAN2 resolution must be a power of two >= 8, got {size}")
    return log


@register("stylegan2_generator")
class Generator(nn.Module):
    """StyleGAN2 generator (mapping MLP + skip synthesis network).

    Args:
        size: output resolution (power of two, 8 ... 1024 and beyond).
        style_dim: w dimension (``w_dim``). n_mlp: mapping layers. z_dim: z dimension (default ``style_dim``).
        channels: resolution -> channel width (keys may be strings, as in JSON). Default: the published table for
            ``channel_multiplier``.
        blur_kernel: 1-D FIR taps of the up-sampling filter. lr_mlp: mapping learning-rate multiplier.
        conv_clamp: clamp activations / ToRGB outputs to ±conv_clamp, as NVIDIA's ``conv_clamp`` (None: off).
        num_fp16_res: recorded from NVIDIA pickles only; this implementation always computes in the parameters'
            dtype (fp32 by default, i.e. NVIDIA's ``force_fp32=True``), or under the caller's autocast.

    Run-time switches (not part of the state dict):
        memory_format: layout of the synthesis input (``torch.channels_last`` can help oneDNN/cuDNN convs).
        :meth:`set_fused_modconv`: grouped per-sample convolution (default) or shared-weight convolution.
        Autocast (bf16/fp16) is supported: convolutions run in low precision, the mapping network, styles,
        demodulation and the RGB skip sum stay float32; the output image is float32.
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 channels: Optional[Mapping[Any, int]] = None, z_dim: Optional[int] = None,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR, lr_mlp: float = 0.01,
                 conv_clamp: Optional[float] = None, num_fp16_res: int = 0):
        super().__init__()
        self.size = int(size)
        self.log_size = _log2_size(self.size)
        self.style_dim = int(style_dim)
        self.n_mlp = int(n_mlp)
        self.channel_multiplier = int(channel_multiplier)
        self.blur_kernel = [float(v) for v in blur_kernel]
        self.lr_mlp = float(lr_mlp)
        self.num_fp16_res = int(num_fp16_res)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        zd = self.style_dim if z_dim is None else int(z_dim)
        self.register_buffer("latent_avg", torch.zeros(self.style_dim))

        layers: List[nn.Module] = [PixelNorm()]
        for i in range(self.n_mlp):
            layers.append(EqualLinear(zd if i == 0 else self.style_dim, self.style_dim, lr_mul=self.lr_mlp,
                                      activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)

        table = _channel_table(channels, self.channel_multiplier)
        missing = [2**i for i in range(2, self.log_size + 1) if 2**i not in table]
        if missing:
            raise ValueError(f"channels table lacks resolutions {missing}")
        self.channels = {2**i: table[2**i] for i in range(2, self.log_size + 1)}
        c4 = self.channels[4]
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, self.style_dim, blur_kernel=self.blur_kernel)
        self.to_rgb1 = ToRGB(c4, self.style_dim, upsample=False)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty; kept for rosinality structure parity
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = 2 ** ((layer_idx + 5) // 2)
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, res, res))
        in_ch = c4
        for i in range(3, self.log_size + 1):
            out_ch = self.channels[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, self.style_dim, upsample=True, blur_kernel=self.blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, self.style_dim, blur_kernel=self.blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, self.style_dim, blur_kernel=self.blur_kernel))
            in_ch = out_ch
        self.n_latent = self.log_size * 2 - 2
        self.memory_format = torch.contiguous_format
        self._set_clamp(self.conv_clamp)

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def z_dim(self) -> int:
        """Dimension of z (input of the mapping network)."""
        return self.style[1].weight.shape[1]

    @property
    def w_dim(self) -> int:
        """Dimension of w (= rosinality ``style_dim``)."""
        return self.style_dim

    @property
    def num_ws(self) -> int:
        """Number of per-layer w vectors the synthesis network takes (= rosinality ``n_latent``)."""
        return self.n_latent

    @property
    def img_resolution(self) -> int:
        return self.size

    @property
    def w_avg(self) -> Tensor:
        """Truncation centre ``(w_dim,)`` (buffer ``latent_avg``)."""
        return self.latent_avg

    def arch_kwargs(self) -> Dict[str, Any]:
        """JSON-serialisable constructor kwargs that rebuild this architecture (``build("stylegan2_generator", **kw)``)."""
        kw: Dict[str, Any] = {
            "size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp, "z_dim": self.z_dim,
            "channels": {str(k): v for k, v in self.channels.items()}, "blur_kernel": self.blur_kernel,
            "lr_mlp": self.lr_mlp,
        }
        if self.conv_clamp is not None:
            kw["conv_clamp"] = self.conv_clamp
        if self.num_fp16_res:
            kw["num_fp16_res"] = self.num_fp16_res
        return kw

    def _set_clamp(self, clamp: Optional[float]) -> None:
        for m in self.modules():
            if isinstance(m, StyledConv):
                m.activate.clamp = clamp
            elif isinstance(m, ToRGB):
                m.clamp = clamp

    def set_fused_modconv(self, fused: bool) -> "Generator":
        """Pick the modulated-conv path for every layer: grouped conv (True) or shared-weight conv (False)."""
        for m in self.modules():
            if isinstance(m, ModulatedConv2d):
                m.fused = bool(fused)
        return self

    def noise_buffers(self) -> List[Tensor]:
        """The stored noise maps ``noises.noise_i`` (live buffers, ``(1, 1, r, r)``), in layer order.

        For inversion, clone them (or set ``requires_grad_`` on a copy of the model) and pass the list as
        ``noise=`` to :meth:`synthesis`.
        """
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def make_noise(self) -> List[Tensor]:
        """Fresh N(0, 1) noise maps, one per layer, shaped like :meth:`noise_buffers` (global RNG)."""
        dev = self.input.input.device
        return [torch.randn(n.shape, device=dev) for n in self.noise_buffers()]

    # ------------------------------------------------------------------------------------------------- mapping
    def get_latent(self, z: Tensor) -> Tensor:
        """w = mapping MLP of z: ``(N, z_dim) -> (N, w_dim)`` (float32, autocast disabled)."""
        with _no_autocast(z):
            return self.style(z.to(self.style[1].weight.dtype))

    def mean_latent(self, n_latent: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Mean of w over ``n_latent`` random z: ``(1, w_dim)`` (rosinality ``mean_latent``)."""
        z = torch.randn(n_latent, self.z_dim, generator=generator).to(self.input.input.device)
        return self.get_latent(z).mean(0, keepdim=True)

    def mapping(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None) -> Tensor:
        """NVIDIA ``G.mapping``: z ``(N, z_dim)`` -> ws ``(N, num_ws, w_dim)`` (the same w repeated).

        Truncation (when ``truncation_psi != 1``): ``w_avg.lerp(w, psi)`` on the first ``truncation_cutoff`` ws
        (all when None), with ``w_avg`` = :attr:`w_avg`.
        """
        w = self.get_latent(z)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
            avg = self.latent_avg.to(ws.dtype)
            ws = torch.cat([avg.lerp(ws[:, :cut], truncation_psi), ws[:, cut:]], dim=1)
        return ws

    # ----------------------------------------------------------------------------------------------- synthesis
    def _noise_list(self, noise_mode: str, noise: Optional[Sequence[Optional[Tensor]]], ref: Tensor
                    ) -> List[Optional[Tensor]]:
        if noise is not None:
            if len(noise) != self.num_layers:
                raise ValueError(f"noise must be a list of {self.num_layers} maps, got {len(noise)}")
            return list(noise)
        if noise_mode == "const":
            return list(self.noise_buffers())
        if noise_mode == "random":
            return [None] * self.num_layers
        if noise_mode == "none":
            return [ref.new_zeros(())] * self.num_layers
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")

    def synthesis(self, ws: Tensor, noise_mode: str = "const", noise: Optional[Sequence[Optional[Tensor]]] = None
                  ) -> Tensor:
        """NVIDIA ``G.synthesis``: ws ``(N, num_ws, w_dim)`` (or ``(N, w_dim)``, broadcast) -> img ``(N, 3, H, W)``.

        Args:
            noise_mode: ``"const"`` (the stored ``noises.noise_i`` maps, deterministic), ``"random"`` (fresh
                N(0, 1) maps from the global RNG) or ``"none"`` (no noise).
            noise: explicit per-layer maps ``[(1 or N, 1, r, r)] * num_layers`` (entries may be None = random);
                overrides ``noise_mode``.
        Returns:
            images, unclamped, nominally in [-1, 1].
        """
        if ws.ndim == 2:
            ws = ws.unsqueeze(1).repeat(1, self.num_ws, 1)
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = self.input(ws.shape[0]).contiguous(memory_format=self.memory_format)
        noise_l = self._noise_list(noise_mode, noise, x)
        x = self.conv1(x, ws[:, 0], noise=noise_l[0])
        skip = self.to_rgb1(x, ws[:, 1])
        i = 1
        for conv_up, conv, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise_l[1::2], noise_l[2::2],
                                                 self.to_rgbs):
            x = conv_up(x, ws[:, i], noise=n1)
            x = conv(x, ws[:, i + 1], noise=n2)
            skip = to_rgb(x, ws[:, i + 2], skip)
            i += 2
        return skip

    # ------------------------------------------------------------------------------------------------- forward
    def forward(self, z: Union[Tensor, Sequence[Tensor]], truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, noise_mode: str = "const", **rosinality_kwargs: Any
                ) -> Any:
        """``G(z) -> img``: mapping then synthesis (NVIDIA semantics, but ``noise_mode`` defaults to "const").

        z: ``(N, z_dim)``. Passing a **list** of tensors instead selects rosinality's ``Generator.forward``
        (see :meth:`forward_rosinality`), which returns ``(img, latent or None)``.
        """
        if isinstance(z, (list, tuple)):
            return self.forward_rosinality(z, **rosinality_kwargs)
        if rosinality_kwargs:
            raise TypeError(f"unexpected arguments {sorted(rosinality_kwargs)} (rosinality arguments need a list of z)")
        return self.synthesis(self.mapping(z, truncation_psi, truncation_cutoff), noise_mode=noise_mode)

    def forward_rosinality(self, styles: Sequence[Tensor], return_latents: bool = False,
                           inject_index: Optional[int] = None, truncation: float = 1.0,
                           truncation_latent: Optional[Tensor] = None, input_is_latent: bool = False,
                           noise: Optional[Sequence[Optional[Tensor]]] = None, randomize_noise: bool = True
                           ) -> Tuple[Tensor, Optional[Tensor]]:
        """rosinality ``Generator.forward``, argument for argument.

        Args:
            styles: ``[z]`` or ``[z1, z2]`` (style mixing) of ``(N, z_dim)``; with ``input_is_latent`` w's
                ``(N, w_dim)`` or one w+ ``(N, n_latent, w_dim)``.
            inject_index: with two styles, indices ``< inject_index`` use the first (random in [1, n_latent-1]
                when None, as upstream).
            truncation, truncation_latent: when ``truncation < 1``, each style becomes
                ``truncation_latent + truncation * (style - truncation_latent)``.
            noise / randomize_noise: explicit maps, else fresh random maps (True) or the stored buffers (False).
        Returns:
            ``(img (N, 3, H, W), latent (N, n_latent, w_dim) if return_latents else None)``.
        """
        if not input_is_latent:
            styles = [self.get_latent(s) for s in styles]
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent (e.g. G.w_avg or G.mean_latent(4096))")
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            latent = styles[0] if styles[0].ndim >= 3 else styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            if inject_index is None:
                inject_index = random.randint(1, self.n_latent - 1)
            latent = torch.cat([styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                                styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)], 1)
        mode = "random" if randomize_noise else "const"
        image = self.synthesis(latent, noise_mode=mode, noise=noise)
        return image, (latent if return_latents else None)


@register("stylegan2_discriminator")
class Discriminator(nn.Module):
    """rosinality's StyleGAN2 ResNet discriminator: ``img (N, 3, size, size) -> logits (N, 1)``.

    Args:
        size: input resolution. channels: resolution -> width (default: published table for channel_multiplier).
        stddev_group: minibatch-stddev group size (4; reduced to the largest divisor of N that is <= 4).
    """

    def __init__(self, size: int, channel_multiplier: int = 2, channels: Optional[Mapping[Any, int]] = None,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR, stddev_group: int = 4):
        super().__init__()
        self.size = int(size)
        log_size = _log2_size(self.size)
        self.channel_multiplier = int(channel_multiplier)
        self.blur_kernel = [float(v) for v in blur_kernel]
        table = _channel_table(channels, self.channel_multiplier)
        self.channels = {2**i: table[2**i] for i in range(2, log_size + 1)}
        ch = self.channels
        convs: List[nn.Module] = [ConvLayer(3, ch[self.size], 1)]
        in_ch = ch[self.size]
        for i in range(log_size, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            convs.append(ResBlock(in_ch, out_ch, self.blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.stddev_group = int(stddev_group)
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"),
                                          EqualLinear(ch[4], 1))

    def arch_kwargs(self) -> Dict[str, Any]:
        return {"size": self.size, "channels": {str(k): v for k, v in self.channels.items()},
                "blur_kernel": self.blur_kernel, "stddev_group": self.stddev_group}

    def forward(self, img: Tensor) -> Tensor:
        out = self.convs(img)
        batch, channel, height, width = out.shape
        group = min(batch, self.stddev_group)
        while batch % group:
            group -= 1
        sd = out.reshape(group, -1, self.stddev_feat, channel // self.stddev_feat, height, width)
        sd = torch.sqrt(sd.var(0, unbiased=False) + 1e-8)
        sd = sd.mean([2, 3, 4], keepdim=True).squeeze(2)
        sd = sd.repeat(group, 1, height, width)
        out = self.final_conv(torch.cat([out, sd], 1))
        return self.final_linear(out.reshape(batch, -1))


# ------------------------------------------------------------------------------------------- config inference
def _shape(sd: Mapping[str, Tensor], key: str) -> Tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"StyleGAN2 state dict lacks {key!r}")
    return tuple(sd[key].shape)


def infer_generator_config(sd: Mapping[str, Tensor]) -> Dict[str, Any]:
    """Constructor kwargs of :class:`Generator` from a rosinality-layout state dict (``g_ema``), from shapes only.

    Returns ``{"size", "style_dim", "n_mlp", "z_dim", "channels": {str(res): width}}``. Raises
    :class:`WeightsError` when the layout is not a StyleGAN2 generator's.
    """
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    if n_mlp == 0:
        raise WeightsError("not a StyleGAN2 generator state dict: no 'style.1.weight' (mapping network)")
    style_dim, z_dim = _shape(sd, "style.1.weight")
    n_rgb = 0
    while f"to_rgbs.{n_rgb}.conv.weight" in sd:
        n_rgb += 1
    if n_rgb == 0:
        raise WeightsError("not a StyleGAN2 generator state dict: no 'to_rgbs.0.conv.weight'")
    channels = {"4": _shape(sd, "input.input")[1]}
    for k in range(n_rgb):
        shp = _shape(sd, f"convs.{2 * k}.conv.weight")
        channels[str(2 ** (k + 3))] = shp[1]
    return {"size": 4 * 2**n_rgb, "style_dim": style_dim, "n_mlp": n_mlp, "z_dim": z_dim, "channels": channels}


def infer_discriminator_config(sd: Mapping[str, Tensor]) -> Dict[str, Any]:
    """Constructor kwargs of :class:`Discriminator` from a rosinality ``d`` state dict, from shapes only."""
    n_res = 0
    while f"convs.{n_res + 1}.conv1.0.weight" in sd:
        n_res += 1
    if n_res == 0:
        raise WeightsError("not a StyleGAN2 discriminator state dict: no 'convs.1.conv1.0.weight'")
    size = 4 * 2**n_res
    channels = {str(size): _shape(sd, "convs.0.0.weight")[0], "4": _shape(sd, "final_conv.0.weight")[0]}
    for j in range(1, n_res + 1):
        channels[str(size // 2**j)] = _shape(sd, f"convs.{j}.conv2.1.weight")[0]
    return {"size": size, "channels": channels}
