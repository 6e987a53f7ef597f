"""Fast neural style: the ``TransformerNet`` of pytorch/examples ``fast_neural_style`` (Johnson et al. 2016).

The module tree mirrors ``transformer_net.py`` of the reference, so ``state_dict()`` has exactly its keys, in its
order (``conv1.conv2d.weight``, ``in1.weight``, ``res1.conv1.conv2d.weight``, ..., ``deconv3.conv2d.bias``; 62 keys).
The published ``*.pth`` files (candy, mosaic, rain_princess, udnie) additionally carry the pre-0.4 InstanceNorm
``running_mean`` / ``running_var`` buffers; :mod:`imgforge.hub.convert_style` drops them as the reference does.

Input/output convention of the reference network: ``x: (B, 3, H, W)`` float RGB in **pixel units 0..255**; the
output is in the same units and is **not** clamped (no tanh, no clamp). :func:`imgforge.methods.fast.fast_stylize`
wraps it for images in [0, 1].

Spatial sizes: two stride-2 convolutions (reflection pad 1, kernel 3) give ceil(H/2), then ceil(H/4); the two x2
upsamplings give 4*ceil(H/4). The output equals the input size when H and W are multiples of 4, and is larger
otherwise.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .registry import register

__all__ = ["ConvLayer", "ResidualBlock", "UpsampleConvLayer", "TransformerNet"]


class ConvLayer(nn.Module):
    """Reflection pad (kernel_size // 2) then a convolution; the conv child is named ``conv2d`` as upstream."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    """``x + IN(conv(ReLU(IN(conv(x)))))``; both convs 3x3 stride 1 with reflection padding; no ReLU after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling by ``upsample`` (if given), reflection pad, convolution (child ``conv2d``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


@register("fast_style")
class TransformerNet(nn.Module):
    """Image transformation network of fast-neural-style (no constructor arguments: the published layout).

    ``forward(x)``: ``x: (B, 3, H, W)`` float in 0..255 -> ``(B, 3, 4*ceil(H/4), 4*ceil(W/4))`` in the same units,
    unclamped. InstanceNorm layers are ``affine=True, track_running_stats=False``: they always normalise with the
    statistics of the input itself (biased variance, eps 1e-5), in train and eval mode alike.
    """

    def __init__(self) -> None:
        super().__init__()
        # Initial convolution layers
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        # Residual layers
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        # Upsampling layers
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        # Non-linearities
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res1(y)
        y = self.res2(y)
        y = self.res3(y)
        y = self.res4(y)
        y = self.res5(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def output_size(h: int, w: int) -> tuple[int, int]:
    """Spatial size of ``TransformerNet`` output for an ``h x w`` input: ``(4*ceil(h/4), 4*ceil(w/4))``."""
    return 4 * -(-h // 4), 4 * -(-w // 4)

