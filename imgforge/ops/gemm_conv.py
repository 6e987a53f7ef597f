"""Convolutions on tiny feature maps as one matrix product with a weight matrix prepared once (inference only).

Every call of a CPU convolution reorders its weight into oneDNN's blocked layout. For the deep levels of a U-Net,
whose feature maps are 1x1 to 16x16 with 512-1024 channels and 4x4 kernels, that reorder (4-8 M weights) costs far
more than the multiply-adds: on a 2-core AMD EPYC in bf16 a ``ConvTranspose2d(1024, 512, 4, 2, 1)`` on a 2x2 input
took 12-17 ms, the same product as a matrix multiplication with a weight matrix made once 3.4 ms. Measured over a
pix2pix ``unet_256`` at 512 x 512 (bf16, one thread), the deep levels took about a third of the time.

:class:`SmallInputGemm` wraps one ``nn.Conv2d`` / ``nn.ConvTranspose2d`` of an inference copy (its weight must not
change afterwards: the matrix is made at construction) and computes it as

- convolution: ``W (C_out, C_in*kh*kw) @ unfold(x)`` when the output has at most ``max_positions`` pixels;
- transposed convolution: ``fold(W^T (C_out*kh*kw, C_in) @ x)`` when the input has at most ``max_positions`` pixels;

and calls the wrapped layer otherwise. Results equal the layer's up to float rounding (different summation order).
:func:`gemm_small_inputs` wraps every eligible layer of a model in place.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .layers import plain_conv, replace_layers

__all__ = ["SmallInputGemm", "gemm_small_inputs", "CONV_MAX_POSITIONS", "CONVT_MAX_POSITIONS"]

#: Output pixels up to which a convolution runs as unfold + matmul (measured: 8x8 output 2.6 vs 8.7 ms channels_last,
#: 32x32 output slower than oneDNN).
CONV_MAX_POSITIONS = 64
#: Input pixels up to which a transposed convolution runs as matmul + fold (16x16 input: 26 vs 31-40 ms; 32x32 slower).
CONVT_MAX_POSITIONS = 256


class SmallInputGemm(nn.Module):
    """Inference wrapper of a conv / transposed conv: one matmul with a prepared weight matrix on small inputs.

    Args:
        layer: an ``nn.Conv2d`` or ``nn.ConvTranspose2d`` with groups 1, dilation 1, zero padding (and no output
            padding); its parameters are kept (as ``layer``) and must not change after wrapping.
        max_positions: pixels (output pixels for a convolution, input pixels for a transposed one) up to which the
            matmul form is used; default :data:`CONV_MAX_POSITIONS` / :data:`CONVT_MAX_POSITIONS`.
    Forward: ``x: (B, C_in, H, W)`` -> what ``layer(x)`` returns (same dtype), NCHW layout on the matmul path.
    """

    def __init__(self, layer: nn.Module, max_positions: Optional[int] = None) -> None:
        super().__init__()
        if not plain_conv(layer):
            raise ValueError(f"cannot compute {layer} as a matrix product (needs groups 1, dilation 1, zero padding)")
        self.layer = layer
        self.transposed = isinstance(layer, nn.ConvTranspose2d)
        default = CONVT_MAX_POSITIONS if self.transposed else CONV_MAX_POSITIONS
        self.max_positions = int(default if max_positions is None else max_positions)
        w = layer.weight.detach()
        if self.transposed:  # (C_in, C_out, kh, kw) -> (C_out * kh * kw, C_in), rows in fold's order
            mat = w.reshape(w.shape[0], -1).t().contiguous()
        else:  # (C_out, C_in, kh, kw) -> (C_out, C_in * kh * kw), columns in unfold's order
            mat = w.contiguous().reshape(w.shape[0], -1)
        self.register_buffer("matrix", mat, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        layer = self.layer
        kh, kw = layer.kernel_size
        sh, sw = layer.stride
        ph, pw = layer.padding
        b, _, h, w = x.shape
        bias = layer.bias
        if self.transposed:
            if h * w > self.max_positions:
                return layer(x)
            out_h, out_w = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
            cols = torch.matmul(self.matrix.to(x.dtype), x.reshape(b, x.shape[1], h * w))
            y = F.fold(cols, (out_h, out_w), (kh, kw), padding=(ph, pw), stride=(sh, sw))
        else:
            out_h, out_w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            if out_h * out_w > self.max_positions:
                return layer(x)
            cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))
            y = torch.matmul(self.matrix.to(x.dtype), cols).reshape(b, -1, out_h, out_w)
        if bias is not None:
            y = y + bias.to(y.dtype).view(1, -1, 1, 1)
        return y


def gemm_small_inputs(model: nn.Module) -> nn.Module:
    """Wrap every plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` of ``model`` (an inference copy) in
    :class:`SmallInputGemm`, in place; returns ``model``. Layers of other types (subclasses with their own forward)
    are left alone, and so are layers wrapped already. The wrapped model's state-dict keys change
    (``...layer.weight``): use it for inference only."""

    def make(child: nn.Module) -> Optional[nn.Module]:
        return SmallInputGemm(child) if type(child) in (nn.Conv2d, nn.ConvTranspose2d) and plain_conv(child) else None

    return replace_layers(model, make, wrappers=(SmallInputGemm,))
