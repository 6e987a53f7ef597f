"""CNNMRF (Li & Wand 2016): style as local patches of encoder features, matched to the content's.

The style term replaces Gram matrices by a Markov-random-field term: every ``patch x patch`` patch of the image's
features at the MRF layers (relu3_1 and relu4_1 by default) is compared with its nearest style patch, found by
normalised cross-correlation, and the squared distance to it is minimised (the matching is redone at every
evaluation, without gradient through it). Content loss and total variation as in Gatys; the optimisation, the
coarse-to-fine scales and the colour preservation are those of :func:`imgforge.methods.gatys_ext.stylize_gatys_ext`
(``style_loss="mrf"``). Style patches are taken with ``stride`` 2 (the image's with stride 1), which bounds the
matching cost; several style images pool their patches.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from .gatys import GatysConfig, _features, _Objective

__all__ = ["MRF_LAYERS", "MRFObjective", "feature_patches", "nearest_patches"]

#: the layers of the MRF term (the paper's relu3_1 and relu4_1)
MRF_LAYERS = ("relu3_1", "relu4_1")


def feature_patches(feat: Tensor, patch: int, stride: int = 1) -> Tensor:
    """All ``patch x patch`` patches of ``feat (1, C, h, w)`` as rows ``(N, C * patch * patch)``."""
    return F.unfold(feat, patch, stride=stride)[0].T


@torch.no_grad()
def nearest_patches(query: Tensor, unit_targets: Tensor, chunk: int = 2048) -> Tensor:
    """Index of the target patch with the highest normalised cross-correlation for every query row.

    ``unit_targets`` are the target patches divided by their norms; ``query`` rows are normalised here. Computed in
    chunks of ``chunk`` query rows (the similarity matrix of a large image would not fit otherwise)."""
    q = query / query.norm(dim=1, keepdim=True).clamp_min(1e-8)
    out = [torch.argmax(q[i:i + chunk] @ unit_targets.T, dim=1) for i in range(0, q.shape[0], chunk)]
    return torch.cat(out)


class MRFObjective(_Objective):
    """Gatys' content and TV terms with the MRF style term on ``cfg.style_layers`` (see the module docstring)."""

    def __init__(self, encoder: nn.Module, cfg: GatysConfig, content: Optional[Tensor], styles: Sequence[Tensor],
                 blend: Sequence[float], dtype: Optional[torch.dtype] = None, *, patch: int = 3,
                 stride: int = 2) -> None:
        super().__init__(encoder, cfg, content, list(styles)[:1], [1.0], dtype)
        self.gram_targets = {}  # style is measured by patches here
        self.patch = patch
        self.targets: Dict[str, Tensor] = {}
        self.unit: Dict[str, Tensor] = {}
        self.norm: Dict[str, Tensor] = {}
        with torch.no_grad():
            for k in cfg.style_layers:
                rows = []
                for s in styles:
                    f = _features(encoder, s, [k], dtype)[k].float()
                    if min(f.shape[-2:]) < patch:
                        raise InputError(f"a style image is too small for {patch}x{patch} patches at {k} "
                                         f"({f.shape[-1]}x{f.shape[-2]} features); use a larger --style-scale")
                    rows.append(feature_patches(f, patch, stride))
                t = torch.cat(rows)
                self.targets[k] = t
                self.unit[k] = t / t.norm(dim=1, keepdim=True).clamp_min(1e-8)
                self.norm[k] = t.pow(2).mean().clamp_min(1e-12)

    def _style(self, feats: Dict[str, Tensor], zero: Tensor) -> Tensor:
        s_loss = zero
        for k, t in self.targets.items():
            f = feats[k].float()
            if min(f.shape[-2:]) < self.patch:
                continue  # a coarse scale too small for patches at this layer: content and TV only
            q = feature_patches(f, self.patch)
            term = F.mse_loss(q, t[nearest_patches(q.detach(), self.unit[k])])
            s_loss = s_loss + self.style_layer_weights[k] * (term / self.norm[k] if self.relative else term)
        return s_loss
