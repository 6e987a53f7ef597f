"""Gatys additions: colour preservation, coarse-to-fine optimisation, spatial control with one mask per style.

- :func:`luminance_transfer` / :func:`match_luminance`: "luminance-only transfer" of Gatys et al. 2017 (Controlling
  perceptual factors in neural style transfer): style transfer on the luminance channel only (the style's
  luminance matched to the content's mean/std), then the content's chrominance (YCbCr) is put back. Also used as
  the colour-preserving post-process of fast style.
- :func:`histogram_match`: per-channel histogram matching of a style image to the content's colours (the other
  method of the same paper).
- :func:`stylize_gatys_ext`: :func:`imgforge.methods.gatys.stylize_gatys` with ``scales`` (coarse-to-fine: the
  image is optimised at ``size / 2^(scales-1)``, upsampled, optimised again, ... up to ``size``) and ``masks`` (style
  i is matched only where mask i is on: its Gram matrix is computed from the features weighted by the mask, divided
  by the mask's area).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError, UsageError
from ..ops.stats import gram
from ..progress import ProgressFn
from ..runtime import Runtime
from .gatys import GatysConfig, _blend_weights, _check_image, _features, _Objective, _optimise, resize_long_side

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "luminance_transfer", "match_luminance", "histogram_match",
           "stylize_gatys_ext", "MaskedObjective"]

_KR, _KB = 0.299, 0.114


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> YCbCr (BT.601, full range, Cb/Cr centred on 0)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = _KR * r + (1 - _KR - _KB) * g + _KB * b
    cb = (b - y) / (2 * (1 - _KB))
    cr = (r - y) / (2 * (1 - _KR))
    return torch.cat([y, cb, cr], 1)


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    y, cb, cr = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / (1 - _KR - _KB)
    return torch.cat([r, g, b], 1)


def luminance_transfer(stylized: Tensor, content: Tensor) -> Tensor:
    """Keep the luminance of ``stylized`` and the chrominance of ``content`` (resized to match), clamped to [0, 1].

    Both (1, 3, H, W) in [0, 1]; the result has ``stylized``'s size. Works in place on a copy of ``stylized``'s
    YCbCr, row blocks at a time, so that very large images need little extra memory.
    """
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    out = torch.empty_like(stylized)
    h = stylized.shape[2]
    step = max(1, (1 << 22) // max(1, stylized.shape[3]))
    for y0 in range(0, h, step):
        s = rgb_to_ycbcr(stylized[:, :, y0:y0 + step].float())
        c = rgb_to_ycbcr(content[:, :, y0:y0 + step].float())
        s[:, 1:] = c[:, 1:]
        out[:, :, y0:y0 + step] = ycbcr_to_rgb(s).clamp_(0, 1)
    return out


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """The style's luminance as a grey RGB image, shifted/scaled to the content luminance's mean and std."""
    ys = rgb_to_ycbcr(style)[:, :1]
    yc = rgb_to_ycbcr(content)[:, :1]
    ys = (ys - ys.mean()) / ys.std().clamp_min(1e-6) * yc.std() + yc.mean()
    return ys.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def histogram_match(source: Tensor, target: Tensor) -> Tensor:
    """Per-channel histogram matching: ``source``'s values remapped so that each channel's distribution is
    ``target``'s. Both (1, 3, H, W) in [0, 1]; returns ``source``'s size."""
    out = torch.empty_like(source)
    for ch in range(3):
        s = source[0, ch].flatten()
        t, _ = target[0, ch].flatten().sort()
        order = s.argsort()
        q = (torch.arange(s.numel(), dtype=torch.float64) + 0.5) / s.numel()
        idx = (q * t.numel()).long().clamp_(0, t.numel() - 1)
        vals = torch.empty_like(s)
        vals[order] = t[idx].to(s.dtype)
        out[0, ch] = vals.reshape(source.shape[2:])
    return out


class MaskedObjective(_Objective):
    """Gatys loss where style ``i`` is measured only under mask ``i`` (masks at the image size, (1, 1, H, W)).

    Style term: ``sum_i sum_l w_l * |G_l(x; m_i) - G_l(s_i)|^2 / |G_l(s_i)|^2`` (relative) with
    ``G_l(x; m) = gram(F_l(x) * m_l) * C*h*w / (C * sum(m_l^2))``, i.e. a Gram matrix normalised by the masked area.
    """

    def __init__(self, encoder: nn.Module, cfg: GatysConfig, content: Optional[Tensor], styles: Sequence[Tensor],
                 masks: Sequence[Tensor], dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(encoder, cfg, content, [styles[0]], [1.0], dtype)
        self.masks = list(masks)
        self.per_style: List[Dict[str, Tensor]] = []
        with torch.no_grad():
            for s in styles:
                feats = _features(encoder, s, cfg.style_layers, dtype)
                self.per_style.append({k: gram(feats[k].float()).detach() for k in cfg.style_layers})
        self.per_norm = [{k: v.pow(2).mean().clamp_min(1e-12) for k, v in d.items()} for d in self.per_style]
        self._small: Dict[tuple, Tensor] = {}

    def _mask_at(self, i: int, size: tuple) -> Tensor:
        key = (i, size)
        if key not in self._small:
            self._small[key] = F.interpolate(self.masks[i], size=size, mode="area")
        return self._small[key]

    def _style(self, feats: Dict[str, Tensor], zero: Tensor) -> Tensor:
        s_loss = zero
        for i, targets in enumerate(self.per_style):
            for k, t in targets.items():
                f = feats[k].float()
                m = self._mask_at(i, (f.shape[2], f.shape[3]))
                area = m.pow(2).sum().clamp_min(1e-6)
                g = gram(f * m, normalize="none") / (f.shape[1] * area)
                term = F.mse_loss(g, t)
                s_loss = s_loss + self.style_layer_weights[k] * (term / self.per_norm[i][k] if self.relative else term)
        return s_loss


def stylize_gatys_ext(
    content: Tensor,
    styles: Sequence[Tensor],
    encoder: nn.Module,
    cfg: GatysConfig = GatysConfig(),
    *,
    scales: int = 1,
    masks: Optional[Sequence[Tensor]] = None,
    preserve_color: bool = False,
    progress: Optional[ProgressFn] = None,
    generator: Optional[torch.Generator] = None,
    runtime: Optional[Runtime] = None,
    style_loss: str = "gram",
) -> Tensor:
    """Gatys style transfer with coarse-to-fine optimisation, per-style masks and colour preservation.

    Args:
        content: (1, 3, H, W) in [0, 1].
        styles: (1, 3, h_i, w_i) in [0, 1].
        encoder, cfg: as :func:`imgforge.methods.gatys.stylize_gatys` (``cfg.size`` is the finest size).
        scales: number of scales; each coarser scale halves the size. ``cfg.iterations`` run at every scale.
        masks: one (1, 1, H', W') mask in [0, 1] per style (any size; resized to the content).
        preserve_color: luminance-only transfer (see the module docstring).
        generator: noise of the first scale when ``cfg.init == "noise"``.
        runtime: precision policy (its autocast dtype is used for the encoder forward; None = float32).
        style_loss: ``"gram"`` (Gatys) or ``"mrf"`` (CNNMRF patches on ``cfg.style_layers``, see
            :mod:`imgforge.methods.mrf`; not with masks).
    Returns:
        (1, 3, H_out, W_out) in [0, 1] (long side ``cfg.size``, or the content size when it is None).
    """
    cfg.validate()
    if style_loss not in ("gram", "mrf"):
        raise UsageError(f"style_loss must be 'gram' or 'mrf', got {style_loss!r}")
    if style_loss == "mrf" and masks is not None:
        raise UsageError("--mask works with the Gram style loss (gatys, adain, wct), not with mrf")
    if scales < 1:
        raise UsageError(f"scales must be >= 1, got {scales}")
    _check_image(content, "content image")
    if masks is not None and len(masks) != len(styles):
        raise UsageError(f"{len(masks)} masks given for {len(styles)} style images; give one mask per style")
    try:
        device = next(encoder.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    content = content.detach().to(device=device, dtype=torch.float32).clamp(0, 1)
    full = resize_long_side(content, cfg.size) if cfg.size is not None else content
    original = full
    if preserve_color:
        styles = [match_luminance(s.to(device=device, dtype=torch.float32), full) for s in styles]
        full = rgb_to_ycbcr(full)[:, :1].expand(-1, 3, -1, -1).contiguous()
    blend = _blend_weights(len(styles), cfg.style_weights)
    dtype = runtime.dtype if runtime is not None else None
    long_side = max(full.shape[-2:])
    sizes = [max(16, round(long_side / 2 ** (scales - 1 - k))) for k in range(scales)]
    x: Optional[Tensor] = None
    was_training = encoder.training
    grad_flags = [p.requires_grad for p in encoder.parameters()]
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    try:
        for k, side in enumerate(sizes):
            c = resize_long_side(full, side)
            if min(c.shape[-2:]) < 16:
                raise InputError(f"scale {k + 1} of {scales} would be {c.shape[-1]}x{c.shape[-2]} px; use fewer scales")
            style_long = max(16, round(max(c.shape[-2:]) * cfg.style_scale))
            ss = [resize_long_side(s.detach().to(device=device, dtype=torch.float32).clamp(0, 1), style_long) for s in styles]
            if masks is not None:
                ms = [F.interpolate(m.to(device=device, dtype=torch.float32), size=c.shape[-2:], mode="bilinear",
                                    align_corners=False).clamp(0, 1) for m in masks]
                objective: _Objective = MaskedObjective(encoder, cfg, c, ss, ms, dtype)
            elif style_loss == "mrf":
                from .mrf import MRFObjective

                objective = MRFObjective(encoder, cfg, c, ss, blend, dtype)
            else:
                objective = _Objective(encoder, cfg, c, ss, blend, dtype)
            if x is None:
                if cfg.init == "content":
                    x0 = c.clone()
                else:
                    gen = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
                    x0 = (0.5 + 0.1 * torch.randn((1, 3, *c.shape[-2:]), generator=gen)).to(device)
            else:
                x0 = F.interpolate(x, size=c.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
            x = x0.detach().requires_grad_(True)
            _optimise(x, objective, cfg, progress)
            x = x.detach().clamp(0, 1)
    finally:
        for p, flag in zip(encoder.parameters(), grad_flags):
            p.requires_grad_(flag)
        encoder.train(was_training)
    assert x is not None
    if preserve_color:
        return luminance_transfer(x, original)
    return x
