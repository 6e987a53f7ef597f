"""A PCA model as a generator: ``z (N, k) -> mean + (z * std) @ components``, an image in [0, 1].

Written by ``imgforge pca`` (``pca.safetensors``, arch ``pca_generator``); through the generator protocol's adapter
it works with ``generate`` (standard normal z: samples with the data's variances along the first k principal
directions), ``morph``, ``edit`` and ``invert --space z``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .registry import register

__all__ = ["PCAGenerator"]


@register("pca_generator")
class PCAGenerator(nn.Module):
    """Buffers ``mean (D,)``, ``components (k, D)``, ``std (k,)`` with ``D = channels * resolution²``."""

    def __init__(self, components: int = 16, channels: int = 1, resolution: int = 32) -> None:
        super().__init__()
        d = channels * resolution * resolution
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(components, d))
        self.register_buffer("std", torch.ones(components))
        self.z_dim = int(components)
        self.channels = int(channels)
        self.img_resolution = int(resolution)
        self.output_range = (0.0, 1.0)

    def forward(self, z: Tensor) -> Tensor:
        flat = self.mean + (z * self.std) @ self.components
        return flat.reshape(z.shape[0], self.channels, self.img_resolution, self.img_resolution)
