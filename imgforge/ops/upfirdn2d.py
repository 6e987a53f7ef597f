"""FIR up-sampling / filtering / down-sampling of images in plain PyTorch (no custom kernels).

``upfirdn2d(x, k, up, down, pad)`` does, per channel: insert ``up - 1`` zeros between samples, pad (negative pads
crop), convolve with the 2-D FIR kernel ``k`` (a true convolution: the kernel is flipped), keep every ``down``-th
sample. This is the operation of StyleGAN2's ``upfirdn2d`` (rosinality ``upfirdn2d_native``, NVIDIA ``upfirdn2d``
``impl='ref'`` with ``flip_filter=False``), with the gain folded into ``k`` by the caller.

The common cases avoid the zero-insertion: up-sampling runs as a depthwise ``conv_transpose2d`` (polyphase), and
symmetric padding goes into the convolution itself. All functions work for any float dtype and memory format.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

Pad = Union[int, Sequence[int]]


def make_kernel(k: Sequence[float] | Tensor) -> Tensor:
    """2-D FIR kernel normalised to sum 1; a 1-D ``k`` becomes ``outer(k, k)``. Returns float32 ``(kh, kw)``."""
    t = torch.as_tensor(k, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None, :] * t[:, None]
    return t / t.sum()


def _pads(pad: Pad) -> Tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, (p0, p1) for both axes, or (x0, x1, y0, y1)."""
    if isinstance(pad, int):
        return pad, pad, pad, pad
    p = [int(v) for v in pad]
    if len(p) == 2:
        return p[0], p[1], p[0], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"pad must be an int, 2 or 4 ints, got {pad!r}")


def _depthwise(kernel: Tensor, channels: int, like: Tensor) -> Tensor:
    """Kernel as a depthwise conv weight ``(C, 1, kh, kw)`` in ``like``'s dtype/device."""
    k = kernel.to(device=like.device, dtype=like.dtype)
    return k[None, None].expand(channels, 1, *k.shape).contiguous()


def upfirdn2d_reference(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: Pad = 0) -> Tensor:
    """Literal zero-insert → pad → convolve → decimate. Slow but obviously right; used to check the fast paths.

    Args:
        x: (N, C, H, W). kernel: (kh, kw). up, down: integer factors. pad: see :func:`upfirdn2d`.
    Returns:
        (N, C, (H*up + y0 + y1 - kh) // down + 1, (W*up + x0 + x1 - kw) // down + 1).
    """
    x0, x1, y0, y1 = _pads(pad)
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [x0, x1, y0, y1])
    weight = _depthwise(torch.flip(kernel, [0, 1]), c, x)
    out = F.conv2d(x, weight, groups=c)
    return out[:, :, ::down, ::down]


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: Pad = 0,
              bias: Optional[Tensor] = None) -> Tensor:
    """Up-sample by ``up``, FIR-filter with ``kernel``, down-sample by ``down``, per channel (+ optional bias).

    Args:
        x: (N, C, H, W) float.
        kernel: (kh, kw) FIR filter (any gain; StyleGAN2 uses ``make_kernel([1,3,3,1]) * up**2`` for up-sampling).
        up, down: integer factors >= 1.
        pad: padding of the up-sampled image before filtering: int, ``(p0, p1)`` for both axes, or
            ``(x0, x1, y0, y1)``; negative values crop.
        bias: optional (C,) added to the output (inside the convolution call, at no extra cost).
    Returns:
        (N, C, (H*up + y0 + y1 - kh) // down + 1, (W*up + x0 + x1 - kw) // down + 1), dtype of ``x``.
    """
    x0, x1, y0, y1 = _pads(pad)
    kh, kw = kernel.shape
    c = x.shape[1]
    if bias is not None:
        bias = bias.to(x.dtype)
    if up > 1 and down == 1:
        # Polyphase: zero-insertion followed by a convolution equals a strided transposed convolution with the
        # unflipped kernel, padding kh-1-p0 and output_padding p1-p0+up-1 (valid when those are in range).
        px, py = kw - 1 - x0, kh - 1 - y0
        ox, oy = x1 - x0 + up - 1, y1 - y0 + up - 1
        if px >= 0 and py >= 0 and 0 <= ox < up and 0 <= oy < up:
            weight = _depthwise(kernel, c, x)
            return F.conv_transpose2d(x, weight, bias, stride=up, padding=(py, px), output_padding=(oy, ox), groups=c)
    if up > 1:
        n, _, h, w = x.shape
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    weight = _depthwise(torch.flip(kernel, [0, 1]), c, x)
    if x0 == x1 == y0 == y1 and x0 >= 0:
        return F.conv2d(x, weight, bias, stride=down, padding=x0, groups=c)
    x = F.pad(x, [x0, x1, y0, y1])
    return F.conv2d(x, weight, bias, stride=down, groups=c)


def upsample2d(x: Tensor, kernel: Tensor, factor: int = 2) -> Tensor:
    """FIR up-sampling ``(N, C, H, W) -> (N, C, H*factor, W*factor)``; ``kernel`` normalised to sum 1 (gain added here)."""
    kh = kernel.shape[0]
    p = kh - factor
    return upfirdn2d(x, kernel * (factor**2), up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample2d(x: Tensor, kernel: Tensor, factor: int = 2) -> Tensor:
    """FIR down-sampling ``(N, C, H, W) -> (N, C, H//factor, W//factor)``; ``kernel`` normalised to sum 1."""
    kh = kernel.shape[0]
    p = kh - factor
    return upfirdn2d(x, kernel, down=factor, pad=((p + 1) // 2, p // 2))
