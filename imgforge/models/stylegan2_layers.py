"""StyleGAN2 building blocks with rosinality/stylegan2-pytorch's module structure and parameter names.

Equalized learning rate: weights are stored unscaled (~N(0, 1) at init) and multiplied at run time by
``lr_mul / sqrt(fan_in)``; the scale is never stored. Images/features are ``(N, C, H, W)`` float.

The style path (affine modulation, demodulation coefficients, mapping MLP) always runs in float32 with autocast
disabled, so that bf16/fp16 autocast only affects the large convolutions.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..ops.fused_act import FusedLeakyReLU, fused_leaky_relu
from ..ops.upfirdn2d import make_kernel, upfirdn2d

DEFAULT_BLUR = (1, 3, 3, 1)


def _no_autocast(t: Tensor) -> torch.autocast:
    return torch.autocast(device_type=t.device.type, enabled=False)


class PixelNorm(nn.Module):
    """``z * rsqrt(mean(z**2, dim=1) + 1e-8)``: normalises latents ``(N, D)`` by their second moment."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized lr: ``y = x @ (W * lr_mul/sqrt(in)).T + b * lr_mul`` (+ fused lrelu).

    Args:
        in_dim, out_dim: features. bias_init: initial bias value (1 for modulation layers).
        lr_mul: learning-rate multiplier (0.01 for the mapping network). activation: None or ``"fused_lrelu"``.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: Optional[str] = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias=bias)


class EqualConv2d(nn.Module):
    """Conv2d with equalized lr (weight ``(out, in, k, k)`` scaled by ``1/sqrt(in*k*k)`` at run time)."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class Blur(nn.Module):
    """FIR filter with padding ``pad``; buffer ``kernel`` = normalised kernel × ``upsample_factor**2``."""

    def __init__(self, kernel: Sequence[float], pad: Tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * (upsample_factor**2))
        self.pad = pad

    def forward(self, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad, bias=bias)


class Upsample(nn.Module):
    """2× FIR up-sampling ``(N, C, H, W) -> (N, C, 2H, 2W)``; buffer ``kernel`` includes the gain 4."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor**2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution (StyleGAN2 Fig. 2c) with optional demodulation and 2× up/down-sampling.

    Weight ``(1, out, in, k, k)``; ``modulation`` maps the style ``w: (N, style_dim)`` to per-input-channel scales.

    Two numerically equivalent paths (``fused`` attribute):
      * ``fused=True``: the weight is modulated per sample and the batch runs as one grouped convolution
        (batch as groups), as rosinality/NVIDIA do in inference;
      * ``fused=False``: the input is scaled by the style, one shared-weight convolution runs for the whole batch,
        and the output is scaled by the demodulation coefficients.
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, downsample: bool = False, blur_kernel: Sequence[float] = DEFAULT_BLUR,
                 fused: bool = True):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate
        self.fused = fused

    def extra_repr(self) -> str:
        return (f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, upsample={self.upsample}, "
                f"downsample={self.downsample}, demodulate={self.demodulate}")

    def forward(self, x: Tensor, style: Tensor, bias: Optional[Tensor] = None, gain: float = 1.0) -> Tensor:
        """x: (N, in, H, W); style: (N, style_dim) -> (N, out, H', W'), H' = 2H / H / H/2 for up / - / down.

        Returns ``gain * (conv(x) + bias)`` with ``bias: (out,)``; both are folded into the convolution so that
        the activation that follows costs no extra pass over the data.
        """
        b, cin, h, w = x.shape
        k, cout = self.kernel_size, self.out_channel
        with _no_autocast(x):
            # Equalized-lr scale folded into the styles; demodulation from the squared weight norms per (out, in):
            # rsqrt(sum_{in,kh,kw} (scale*W*s)^2 + eps) = rsqrt((scale*s)^2 @ sum_{kh,kw} W^2 + eps).
            s = self.modulation(style.to(self.weight.dtype)) * self.scale  # (N, in)
            if self.demodulate:
                wsq = self.weight[0].square().sum([2, 3])  # (out, in)
                d = torch.rsqrt(s.square() @ wsq.t() + self.eps) * gain  # (N, out)
            else:
                d = s.new_full((b, cout), gain)
            if self.fused:  # per-sample weights (N, out, in, k, k), one grouped convolution
                weight = self.weight * (d.view(b, cout, 1, 1, 1) * s.view(b, 1, cin, 1, 1))
                weight = weight.to(x.dtype)
        gbias = None if bias is None else (bias * gain if gain != 1.0 else bias).to(x.dtype)
        if not self.fused:  # shared weight: scale the input by s, the output by d
            x = x * s.to(x.dtype).view(b, cin, 1, 1)
            w0 = self.weight[0].to(x.dtype)
            if self.upsample:
                out = self.blur(F.conv_transpose2d(x, w0.transpose(0, 1), stride=2))
            elif self.downsample:
                out = F.conv2d(self.blur(x), w0, stride=2)
            else:
                out = F.conv2d(x, w0, padding=self.padding)
            dv = d.to(out.dtype).view(b, cout, 1, 1)
            return out * dv if gbias is None else torch.addcmul(gbias.view(1, cout, 1, 1), out, dv)
        if self.upsample:
            wt = weight.transpose(1, 2).reshape(b * cin, cout, k, k)
            out = F.conv_transpose2d(x.reshape(1, b * cin, h, w), wt, stride=2, groups=b)
            out = self.blur(out, None if gbias is None else gbias.repeat(b))
            return out.reshape(b, cout, out.shape[-2], out.shape[-1])
        weight = weight.reshape(b * cout, cin, k, k)
        gb = None if gbias is None else gbias.repeat(b)
        if self.downsample:
            x = self.blur(x)
            out = F.conv2d(x.reshape(1, b * cin, *x.shape[-2:]), weight, gb, stride=2, groups=b)
        else:
            out = F.conv2d(x.reshape(1, b * cin, h, w), weight, gb, padding=self.padding, groups=b)
        return out.reshape(b, cout, out.shape[-2], out.shape[-1])


class NoiseInjection(nn.Module):
    """``x + weight * noise``; ``noise: (N or 1, 1, H, W)``, fresh N(0, 1) when None. Key: ``weight [1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """Learned constant ``input: (1, C, size, size)``, repeated over the batch."""

    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated 3×3 conv (optionally 2× up) → noise → bias + lrelu·√2 (clamped to ±conv_clamp if set)."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR, demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel, demodulate=demodulate)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: Tensor, style: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        """``lrelu(conv(x, style) + strength*noise + bias, 0.2) * gain``, computed as ``lrelu(gain*(...))``
        (lrelu is positively homogeneous), with gain and bias folded into the convolution."""
        act = self.activate
        gain = act.scale
        out = self.conv(x, style, bias=act.bias, gain=gain)
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, out.shape[2], out.shape[3]).normal_()
        inplace = not torch.is_grad_enabled()  # out is a fresh tensor; in-place only when autograd is off
        nz = (self.noise.weight * gain).to(out.dtype) * noise.to(out.dtype)
        out = out.add_(nz) if inplace else out + nz
        out = F.leaky_relu(out, act.negative_slope, inplace=inplace)
        if act.clamp is not None:
            out = out.clamp_(-act.clamp, act.clamp) if inplace else out.clamp(-act.clamp, act.clamp)
        return out


class ToRGB(nn.Module):
    """1×1 modulated conv without demodulation + bias; adds the 2×-up-sampled previous image when ``skip`` is given."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.clamp: Optional[float] = None

    def forward(self, x: Tensor, style: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        """x: (N, in, H, W) -> image (N, 3, H, W), in the parameters' dtype even under autocast (the RGB skip
        sum is accumulated at full precision; it is only 3 channels)."""
        out = self.conv(x, style, bias=self.bias.view(-1)).to(self.bias.dtype)
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        if skip is not None:
            with _no_autocast(out):
                out = out + self.upsample(skip.to(out.dtype))
        return out


class ConvLayer(nn.Sequential):
    """Discriminator conv: [Blur] → EqualConv2d (stride 2 when downsampling) → [FusedLeakyReLU]."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[float] = DEFAULT_BLUR, bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Discriminator residual block: two convs (the second 2× down) + 1×1 down-sampled skip, sum / √2."""

    def __init__(self, in_channel: int, out_channel: int, blur_kernel: Sequence[float] = DEFAULT_BLUR):
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_channel, out_channel, 1, downsample=True, activate=False, bias=False,
                              blur_kernel=blur_kernel)

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)
