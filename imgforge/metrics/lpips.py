"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), VGG variant.

``d(x, y) = sum_l mean_hw( sum_c w_l,c (x^_l,c,h,w - y^_l,c,h,w)^2 )`` where ``x^_l`` are the VGG-16 activations at
``relu1_2, relu2_2, relu3_3, relu4_3, relu5_3`` normalised to unit length over channels (``f / (|f| + 1e-10)``) and
``w_l`` the learned non-negative linear weights of LPIPS v0.1 (``lpips/weights/v0.1/vgg.pth`` in the ``lpips``
package: tensors ``lin{l}.model.1.weight`` of shape ``(1, C_l, 1, 1)``).

LPIPS's input scaling layer (``x in [-1, 1]``, ``(x - [-.030, -.088, -.188]) / [.458, .448, .450]``) is exactly
torchvision's ImageNet normalisation of ``x01 = (x + 1) / 2`` (``(x01 - [.485, .456, .406]) / [.229, .224, .225]``),
so the published torchvision VGG-16 (``imgforge weights fetch vgg16``) as
:class:`~imgforge.models.vgg.TorchvisionVGG` takes images in [0, 1] directly.

Both networks must be present: imgforge downloads neither implicitly. Without them the ``lpips`` command and PPL
fall back to the labelled VGG perceptual distance (:mod:`imgforge.losses.perceptual`).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Union

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import WeightsError

LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def read_lpips_linear(path: Union[str, Path]) -> List[Tensor]:
    """The five ``(C_l,)`` linear weights of an LPIPS v0.1 VGG file (read with ``weights_only=True``)."""
    from ..hub.safe_pickle import load_torch_checkpoint

    p = Path(path)
    obj = load_torch_checkpoint(p, allow=())
    if not isinstance(obj, dict):
        raise WeightsError(f"{p}: expected the LPIPS linear-layer state dict, got {type(obj).__name__}")
    out = []
    for i in range(len(LPIPS_LAYERS)):
        t = obj.get(f"lin{i}.model.1.weight", obj.get(f"lin{i}.model.weight"))
        if not isinstance(t, Tensor) or t.dim() != 4 or t.shape[0] != 1 or t.shape[2:] != (1, 1):
            raise WeightsError(f"{p}: no LPIPS linear layer lin{i}.model.1.weight of shape (1, C, 1, 1); is this "
                               "lpips/weights/v0.1/vgg.pth?")
        out.append(t.detach().float().reshape(-1))
    return out


class LPIPS(nn.Module):
    """LPIPS-VGG distance; ``forward(x, y)`` on ``(B, 3, H, W)`` images in [0, 1] returns ``(B,)`` float32."""

    def __init__(self, vgg: nn.Module, linear: Sequence[Tensor]) -> None:
        super().__init__()
        if getattr(vgg, "arch", None) != "vgg16" or getattr(vgg, "normalization_name", "imagenet") != "imagenet":
            raise WeightsError("LPIPS needs the torchvision ImageNet VGG-16 (imgforge weights fetch vgg16)")
        self.vgg = vgg
        for i, (name, w) in enumerate(zip(LPIPS_LAYERS, linear)):
            if w.numel() != vgg.channels(name):  # type: ignore[operator]
                raise WeightsError(f"LPIPS lin{i} has {w.numel()} weights but VGG {name} has "
                                   f"{vgg.channels(name)} channels")  # type: ignore[operator]
            self.register_buffer(f"w{i}", w.float().reshape(1, -1, 1, 1))

    @staticmethod
    def _unit(f: Tensor) -> Tensor:
        return f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.vgg(x, layers=list(LPIPS_LAYERS))
        fy = self.vgg(y, layers=list(LPIPS_LAYERS))
        total = x.new_zeros(x.shape[0], dtype=torch.float32)
        for i, name in enumerate(LPIPS_LAYERS):
            d = (self._unit(fx[name].float()) - self._unit(fy[name].float())).square()
            total = total + (d * getattr(self, f"w{i}")).sum(dim=1).mean(dim=(1, 2))
        return total
