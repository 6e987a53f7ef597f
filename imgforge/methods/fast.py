"""Fast neural style inference: one forward pass of a :class:`~imgforge.models.fast_style.TransformerNet`.

The reference (pytorch/examples ``neural_style.py stylize``) feeds ``ToTensor(image) * 255`` to the network and saves
``output.clamp(0, 255)`` cast to ``uint8`` with numpy's ``astype``, which *truncates* (e.g. 254.9 -> 254).
:func:`fast_stylize` works in imgforge's [0, 1] convention instead (our image writer rounds), and
:func:`reference_uint8` reproduces the reference's truncating conversion for comparisons with its saved images.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import InputError
from ..progress import ProgressEvent, ProgressFn, emit

__all__ = ["fast_stylize", "fast_stylize_255", "reference_uint8"]


def _check_image(x: Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"{name}: expected a (B, 3, H, W) RGB tensor, got shape {tuple(x.shape)}")
    if x.shape[2] < 4 or x.shape[3] < 4:
        raise InputError(f"{name}: image of {x.shape[3]}x{x.shape[2]} px is too small for the network (at least 4x4)")


def fast_stylize_255(x255: Tensor, net: nn.Module) -> Tensor:
    """The reference forward pass, unchanged: ``x255: (B, 3, H, W)`` float in 0..255 -> network output in the same
    units, unclamped, of size ``4*ceil(H/4) x 4*ceil(W/4)``. Runs under ``torch.no_grad``; the input is moved to the
    network's device and dtype."""
    _check_image(x255, "content")
    p = next(net.parameters())
    with torch.no_grad():
        return net(x255.to(device=p.device, dtype=p.dtype))


def fast_stylize(
    content: Tensor,
    net: nn.Module,
    *,
    crop_to_input: bool = True,
    progress: Optional[ProgressFn] = None,
) -> Tensor:
    """Stylise ``content`` with a trained TransformerNet.

    Args:
        content: (B, 3, H, W) float RGB in [0, 1].
        net: a ``TransformerNet`` (e.g. from ``load_model_file``), in eval mode; the input is moved to its device and
            dtype.
        crop_to_input: for H or W not a multiple of 4 the network returns a slightly larger image
            (``4*ceil(H/4)``); crop it back to ``H x W`` (top-left aligned, which is where the network's pixel grid
            sits). Without it, the reference's size is kept.
        progress: optional callback (one event when done).
    Returns:
        (B, 3, H, W) float in [0, 1] (the reference output / 255, clamped), on the network's device, float32 or the
        network's dtype.
    """
    out = fast_stylize_255(content * 255.0, net)
    if crop_to_input:
        out = out[:, :, : content.shape[2], : content.shape[3]]
    emit(progress, ProgressEvent(task="fast-style", step=1, total=1, unit="img"))
    return (out / 255.0).clamp_(0.0, 1.0)


def reference_uint8(out255: Tensor) -> Tensor:
    """The reference's image conversion: ``clamp(0, 255)`` then a truncating cast to uint8.

    Args:
        out255: (B, 3, H, W) or (3, H, W) network output in 0..255 units (from :func:`fast_stylize_255`).
    Returns:
        uint8 tensor of the same shape (channels first; the reference then transposes to HWC to save). Truncation
        differs from imgforge's rounding writer by at most one grey level.
    """
    return out255.detach().clamp(0, 255).to(torch.uint8)
