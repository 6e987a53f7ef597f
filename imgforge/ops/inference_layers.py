"""CPU inference rewrites of a translation generator's layers (used on an inference copy, never on a trained model).

:func:`rewrite_for_cpu_inference` replaces, in place:

- every single-image ``InstanceNorm2d`` without running statistics by :class:`SingleImageInstanceNorm`, which computes
  it as batch normalisation over the image's pixels: one kernel that keeps channels_last data channels_last, where
  ``instance_norm`` reshapes to NCHW and back (CycleGAN ``resnet_9blocks`` at 512 x 512 in bf16 channels_last: three
  such round trips of a 64 x 512 x 512 map took 0.37 s of 2.9 s);
- convolutions with at most 4 output channels and a tall kernel (the ResNet generator's last 7x7 conv, 64 -> 3) by
  :class:`SplitNarrowConv2d` (see :func:`imgforge.ops.narrow_conv.split_narrow_conv`: 134 -> 50 ms at 512 x 512);
- convolutions on tiny feature maps by matrix products (:func:`imgforge.ops.gemm_conv.gemm_small_inputs`).

Results equal the original layers up to float rounding. State-dict keys of the rewritten copy differ.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .gemm_conv import gemm_small_inputs
from .layers import plain_conv, replace_layers
from .narrow_conv import split_narrow_conv

__all__ = ["SingleImageInstanceNorm", "SplitNarrowConv2d", "rewrite_for_cpu_inference"]


class SingleImageInstanceNorm(nn.Module):
    """``InstanceNorm2d`` (no running statistics) computed per image as ``batch_norm`` in training mode.

    Args:
        norm: the module replaced (its ``eps`` and, when affine, ``weight`` / ``bias`` are used).
    Forward: ``x: (B, C, H, W)`` -> normalised ``x``, same dtype and memory format (float32 accumulation for bf16).
    """

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        if norm.track_running_stats:
            raise ValueError("SingleImageInstanceNorm replaces instance norms without running statistics only")
        self.norm = norm

    def forward(self, x: Tensor) -> Tensor:
        n = self.norm
        w, b = (n.weight, n.bias) if n.affine else (None, None)
        if x.shape[0] == 1:
            return F.batch_norm(x, None, None, w, b, True, 0.0, n.eps)
        return torch.cat([F.batch_norm(x[i:i + 1], None, None, w, b, True, 0.0, n.eps) for i in range(x.shape[0])])


class SplitNarrowConv2d(nn.Module):
    """A stride-1 convolution with few output channels as a ``1 x kw`` conv + ``kh x 1`` 0/1 selection conv.

    Args:
        conv: ``nn.Conv2d`` with stride 1, dilation 1, groups 1, zero padding; only its weights are kept (as the two
            kernels made here, and the bias), so later changes to ``conv`` do not reach this module.
    Forward: ``x: (B, C_in, H, W)`` -> ``conv(x)``.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not _splittable(conv):
            raise ValueError(f"cannot split {conv}")
        w1, sel = split_narrow_conv(conv.weight.detach())
        self.register_buffer("w1", w1, persistent=False)
        self.register_buffer("sel", sel, persistent=False)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone(), persistent=False)
        self.padding: Tuple[int, int] = tuple(int(p) for p in conv.padding)  # type: ignore[assignment]

    def forward(self, x: Tensor) -> Tensor:
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        cl = x.is_contiguous(memory_format=torch.channels_last)
        fmt = torch.channels_last if cl else torch.contiguous_format
        w1 = self.w1.to(x.dtype).contiguous(memory_format=fmt)
        sel = self.sel.to(x.dtype).contiguous(memory_format=fmt)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(F.conv2d(x, w1), sel, bias)


def _splittable(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and plain_conv(conv) and conv.out_channels <= 4 and conv.kernel_size[0] >= 5
            and conv.stride == (1, 1))


def rewrite_for_cpu_inference(model: nn.Module) -> nn.Module:
    """Apply the rewrites listed in the module docstring to ``model`` in place (idempotent); returns ``model``."""

    def make(child: nn.Module) -> Optional[nn.Module]:
        if isinstance(child, nn.InstanceNorm2d) and not child.track_running_stats:
            return SingleImageInstanceNorm(child)
        return SplitNarrowConv2d(child) if _splittable(child) else None  # type: ignore[arg-type]

    replace_layers(model, make, wrappers=(SingleImageInstanceNorm, SplitNarrowConv2d))
    return gemm_small_inputs(model)
