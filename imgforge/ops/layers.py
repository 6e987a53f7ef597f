"""Small helpers shared by the layer rewrites of :mod:`imgforge.ops` (narrow_conv, gemm_conv, inference_layers)."""

from __future__ import annotations

from typing import Callable, Optional, Tuple, Type

import torch.nn as nn

__all__ = ["plain_conv", "replace_layers"]


def plain_conv(layer: nn.Module) -> bool:
    """Whether ``layer`` is a ``Conv2d`` / ``ConvTranspose2d`` with groups 1, dilation 1, zero padding given as
    numbers (not ``"same"``/``"valid"``) and, when transposed, no output padding: the form every rewrite assumes."""
    if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        return False
    ok = (layer.groups == 1 and layer.dilation == (1, 1) and layer.padding_mode == "zeros"
          and isinstance(layer.padding, tuple))
    if isinstance(layer, nn.ConvTranspose2d):
        ok = ok and layer.output_padding == (0, 0)
    return bool(ok)


def replace_layers(model: nn.Module, make: Callable[[nn.Module], Optional[nn.Module]],
                   wrappers: Tuple[Type[nn.Module], ...] = ()) -> nn.Module:
    """Replace, in place, every child ``c`` of every module of ``model`` for which ``make(c)`` returns a module;
    the insides of ``wrappers`` instances (replacements made earlier) are not visited, so calling it twice changes
    nothing. Returns ``model``."""
    for parent in list(model.modules()):
        if isinstance(parent, wrappers):
            continue
        for name, child in list(parent.named_children()):
            new = make(child)
            if new is not None:
                setattr(parent, name, new)
    return model
