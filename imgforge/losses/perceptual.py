"""Perceptual distance for GAN inversion: VGG feature differences at the Image2StyleGAN layers.

Image2StyleGAN (Abdal, Qin, Wonka, ICCV 2019) measures ``sum_j lambda_j / N_j ||F_j(x) - F_j(y)||^2`` on VGG-16
``conv1_1, conv1_2, conv3_2, conv4_2`` (pre-activation outputs), with ``lambda_j = 1`` and ``N_j`` the number of
feature values. :class:`PerceptualDistance` computes exactly that per image when ``normalize="none"``; by default
(``normalize="relative"``) each layer's mean squared difference is divided by the mean squared target feature
``mean(F_j(y)^2)``, so the same loss weights fit ImageNet VGG-16 (whose activations are large) and the embedded
random-feature VGG-19 (whose activations are not).

Only the layers up to the deepest requested one run, target features are computed once (:meth:`target`), and an
optional ``mask`` (1 = counts) is applied to both images before the encoder, as Image2StyleGAN++ does for
inpainting.

Which encoder: :func:`imgforge.hub.encoders.resolve_perceptual_encoder` -- an explicit name or file, else the published torchvision VGG-16
when it is present locally (``imgforge weights fetch vgg16``), else the encoder shipped in ``weights/``; it always
says which one it picked.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import UsageError

#: Image2StyleGAN's perceptual layers (VGG-16 names; VGG-19 has the same names for these four).
IMAGE2STYLEGAN_LAYERS: Tuple[str, ...] = ("conv1_1", "conv1_2", "conv3_2", "conv4_2")
NORMALIZATIONS = ("relative", "none")


class PerceptualDistance(nn.Module):
    """Per-image VGG feature distance.

    Args:
        encoder: a :class:`~imgforge.models.vgg.VGGEncoder` (takes RGB in [0, 1], returns named layers).
        layers: layer names (default :data:`IMAGE2STYLEGAN_LAYERS`).
        layer_weights: one weight per layer (default 1 each).
        normalize: ``"relative"`` (divide each layer term by the target's mean squared feature) or ``"none"``.
        min_size: when set, images whose short side is below it are bilinearly upsampled to it before the encoder
            (VGG sees very small images, e.g. 32 px digits, at a more useful scale).

    Shapes: images ``(B, 3, H, W)`` float in [0, 1]; :meth:`forward` returns ``(B,)`` float32.
    """

    def __init__(self, encoder: nn.Module, layers: Sequence[str] = IMAGE2STYLEGAN_LAYERS,
                 layer_weights: Optional[Sequence[float]] = None, normalize: str = "relative",
                 min_size: Optional[int] = None) -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise UsageError(f"perceptual normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.layers = tuple(layers)
        if not self.layers:
            raise UsageError("the perceptual distance needs at least one layer")
        known = set(getattr(encoder, "layer_names", self.layers))
        missing = [name for name in self.layers if name not in known]
        if missing:
            raise UsageError(f"the perceptual encoder has no layer(s) {', '.join(missing)}; it has "
                             f"{', '.join(sorted(known))}")
        lw = [1.0] * len(self.layers) if layer_weights is None else [float(v) for v in layer_weights]
        if len(lw) != len(self.layers):
            raise UsageError(f"{len(lw)} layer weights for {len(self.layers)} layers")
        self.layer_weights = tuple(lw)
        self.normalize = normalize
        self.min_size = None if min_size is None else int(min_size)
        self.encoder = encoder

    def _prep(self, x: Tensor, mask: Optional[Tensor]) -> Tensor:
        if mask is not None:
            x = x * mask.to(x.dtype)
        if self.min_size is not None and min(x.shape[-2:]) < self.min_size:
            s = self.min_size / min(x.shape[-2:])
            size = (max(1, round(x.shape[-2] * s)), max(1, round(x.shape[-1] * s)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        # channels_last helps cuDNN; on the CPU oneDNN's VGG convolutions measured faster in NCHW (benchmarks/)
        fmt = torch.channels_last if x.device.type == "cuda" else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    def features(self, x: Tensor, mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Encoder features ``{layer: (B, C_l, H_l, W_l)}`` of ``x`` (masked first when ``mask`` is given)."""
        return self.encoder(self._prep(x, mask), layers=self.layers)

    @torch.no_grad()
    def target(self, y: Tensor, mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Target features (float32, detached) plus their per-image energies under ``"energy:<layer>"``."""
        feats = {k: v.float() for k, v in self.features(y, mask).items()}
        out: Dict[str, Tensor] = dict(feats)
        for k, v in feats.items():
            out["energy:" + k] = v.square().mean(dim=(1, 2, 3)).clamp_min(1e-12)
        return out

    def forward(self, x: Tensor, target: Dict[str, Tensor], mask: Optional[Tensor] = None) -> Tensor:
        """Distance of ``x`` to precomputed ``target`` features (from :meth:`target`): ``(B,)`` float32."""
        feats = self.features(x, mask)
        total = x.new_zeros(x.shape[0], dtype=torch.float32)
        for name, wgt in zip(self.layers, self.layer_weights):
            d = (feats[name].float() - target[name]).square().mean(dim=(1, 2, 3))
            if self.normalize == "relative":
                d = d / target["energy:" + name]
            total = total + wgt * d
        return total
