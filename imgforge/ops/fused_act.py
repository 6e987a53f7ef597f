"""Bias + leaky ReLU + gain (+ optional clamp), StyleGAN2's "fused" activation, in plain PyTorch.

``fused_leaky_relu(x, b) = leaky_relu(x + b, 0.2) * sqrt(2)``, the bias broadcast over dim 1. NVIDIA's ``bias_act``
adds an optional clamp to ``[-clamp, clamp]`` after the gain (``conv_clamp``).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def fused_leaky_relu(
    x: Tensor,
    bias: Optional[Tensor] = None,
    negative_slope: float = 0.2,
    scale: float = math.sqrt(2.0),
    clamp: Optional[float] = None,
) -> Tensor:
    """``leaky_relu(x + bias, negative_slope) * scale``, clamped to ``±clamp`` if given.

    Args:
        x: (N, C, ...) float. bias: (C,) or None, broadcast over dim 1.
    Returns:
        same shape as ``x``.
    """
    if bias is not None:
        x = x + bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    out = F.leaky_relu(x, negative_slope) * scale
    if clamp is not None:
        out = out.clamp(-clamp, clamp)
    return out


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias followed by :func:`fused_leaky_relu` (rosinality key: ``<name>.bias``)."""

    def __init__(self, channel: int, bias: bool = True, negative_slope: float = 0.2, scale: float = math.sqrt(2.0)):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale
        self.clamp: Optional[float] = None

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale, self.clamp)
