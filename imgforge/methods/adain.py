"""Arbitrary style transfer with AdaIN (Huang & Belongie 2017), reproducing naoto0804/pytorch-AdaIN ``test.py``.

Pipeline: ``encoder`` (vgg_normalised up to relu4_1) on the content and on every style image; AdaIN of the content
features towards each style's channel mean/std; combination of the per-style features (interpolation weights or
spatial masks); blend with the content features by ``alpha``; ``decoder`` back to an image.

Faithfulness to the reference, for the cases it has:

- one style: ``feat = adain(c, s)``, then ``feat * alpha + c * (1 - alpha)`` (``style_transfer``);
- several styles with weights: weights normalised by their sum (Python floats), ``feat`` starts from zeros and
  accumulates ``+ w_i * adain(c, s_i)`` in order, then the alpha blend (``--style_interpolation_weights``);
- ``preserve_color``: each style image is first replaced by ``coral(style, content)`` (``--preserve_color``);
- the decoder output is returned unclamped with ``clamp=False``; ``test.py`` saves it with torchvision
  ``save_image`` (clamp to [0, 1], x255, round), which is what imgforge's writer does with ``clamp=True`` output.

Spatial control (not in the PyTorch reference; the original Torch AdaIN has ``-mask``): one mask per style, see
:func:`blend_features`.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError, UsageError
from ..ops.stats import adain, coral
from ..progress import ProgressEvent, ProgressFn, emit

__all__ = ["adain_stylize", "blend_features", "encode", "normalise_weights", "resize_masks"]

Encoder = Callable[[Tensor], Union[Tensor, Mapping[str, Tensor]]]


def normalise_weights(weights: Optional[Sequence[float]], n: int) -> list[float]:
    """Interpolation weights divided by their sum, as Python floats (``test.py``: ``w / sum(w)``).

    ``None`` gives equal weights ``1/n``. Raises :class:`UsageError` for a wrong count, negative weights or a zero sum.
    """
    if weights is None:
        return [1.0 / n] * n
    ws = [float(w) for w in weights]
    if len(ws) != n:
        raise UsageError(f"{len(ws)} style weights given for {n} style images; give one weight per style")
    if any(w < 0 for w in ws) or sum(ws) <= 0:
        raise UsageError(f"style weights must be non-negative with a positive sum, got {ws}")
    total = sum(ws)
    return [w / total for w in ws]


def resize_masks(masks: Sequence[Tensor], size: tuple[int, int]) -> list[Tensor]:
    """Resize masks ``(1, 1, H, W)`` in [0, 1] to the feature map ``size = (h, w)`` (area averaging) and normalise.

    Where the masks of a pixel sum to more than 1 they are divided by that sum; elsewhere they are kept, and the
    remainder ``1 - sum`` goes to the content features (see :func:`blend_features`). Returns ``(1, 1, h, w)`` tensors
    whose sum is at most 1 everywhere.
    """
    small = [F.interpolate(m, size=size, mode="area") for m in masks]
    total = torch.stack(small).sum(dim=0)
    scale = torch.where(total > 1, 1.0 / total.clamp_min(1e-12), torch.ones_like(total))
    return [m * scale for m in small]


def blend_features(
    content_feat: Tensor,
    style_feats: Sequence[Tensor],
    *,
    alpha: float = 1.0,
    style_weights: Optional[Sequence[float]] = None,
    masks: Optional[Sequence[Tensor]] = None,
) -> Tensor:
    """Combine AdaIN of ``content_feat`` towards each style and blend with the content by ``alpha``.

    Args:
        content_feat: (1, C, h, w) encoder features of the content.
        style_feats: one (1, C, h_i, w_i) feature map per style image.
        alpha: 0..1; 1 is full stylisation, 0 gives back the content features.
        style_weights: interpolation weights (normalised by their sum); ``None`` = equal. Not combinable with masks.
        masks: spatial control, one (1, 1, H, W) mask in [0, 1] per style at any resolution (normally the
            content image's); resized to (h, w) by :func:`resize_masks`. Per feature pixel,
            ``feat = sum_i m_i * adain(c, s_i) + (1 - sum_i m_i) * c``: complementary masks partition the image between
            the styles, and pixels no mask covers keep the content features.
    Returns:
        (1, C, h, w): ``feat * alpha + content_feat * (1 - alpha)``. Differentiable (no ``no_grad`` here).
    """
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha}")
    n = len(style_feats)
    if n == 0:
        raise UsageError("at least one style image is needed")
    if masks is not None:
        if style_weights is not None:
            raise UsageError("style weights and masks cannot be combined; scale the masks instead")
        if len(masks) != n:
            raise UsageError(f"{len(masks)} masks given for {n} style images; give one mask per style")
        ms = resize_masks(masks, (content_feat.shape[2], content_feat.shape[3]))
        covered = torch.zeros_like(ms[0])
        feat = torch.zeros_like(content_feat)
        for m, s in zip(ms, style_feats):
            feat = feat + m * adain(content_feat, s)
            covered = covered + m
        feat = feat + (1.0 - covered) * content_feat
    elif n == 1 and style_weights is None:
        feat = adain(content_feat, style_feats[0])
    else:
        ws = normalise_weights(style_weights, n)
        feat = torch.zeros_like(content_feat)
        for w, s in zip(ws, style_feats):
            feat = feat + w * adain(content_feat, s)
    return feat * alpha + content_feat * (1 - alpha)


def _check_image(x: Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise InputError(f"{name}: expected a (1, 3, H, W) RGB tensor, got shape {tuple(x.shape)}")
    if x.shape[2] < 8 or x.shape[3] < 8:
        raise InputError(f"{name}: image of {x.shape[3]}x{x.shape[2]} px is too small for the encoder (at least 8x8)")


def _check_mask(m: Tensor, i: int) -> None:
    if m.dim() != 4 or m.shape[0] != 1 or m.shape[1] != 1:
        raise InputError(f"mask {i}: expected a (1, 1, H, W) tensor, got shape {tuple(m.shape)}")
    lo, hi = float(m.min()), float(m.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"mask {i}: values must lie in [0, 1], found {lo:.4g}..{hi:.4g}")


def encode(encoder: Encoder, x: Tensor) -> Tensor:
    """Run ``encoder`` and return its relu4_1 features: a tensor as is, or the ``"relu4_1"`` entry (or the only entry)
    of a mapping of named activations."""
    out = encoder(x)
    if isinstance(out, Mapping):
        if "relu4_1" in out:
            return out["relu4_1"]
        if len(out) == 1:
            return next(iter(out.values()))
        raise UsageError(f"the AdaIN encoder returned layers {sorted(out)}; it must return relu4_1")
    return out


def adain_stylize(
    content: Tensor,
    styles: Sequence[Tensor],
    encoder: Encoder,
    decoder: nn.Module,
    *,
    alpha: float = 1.0,
    style_weights: Optional[Sequence[float]] = None,
    preserve_color: bool = False,
    masks: Optional[Sequence[Tensor]] = None,
    clamp: bool = True,
    crop_to_input: bool = True,
    progress: Optional[ProgressFn] = None,
) -> Tensor:
    """Stylise ``content`` with one or more style images (pytorch-AdaIN ``test.py`` semantics).

    Args:
        content: (1, 3, H, W) float RGB in [0, 1].
        styles: one or more (1, 3, h_i, w_i) float RGB in [0, 1]; sizes may differ (each is encoded on its own).
        encoder: maps (B, 3, H, W) in [0, 1] to relu4_1 features (B, 512, ceil(H/8), ceil(W/8)), e.g.
            :func:`imgforge.models.adain.adain_encoder` of a loaded ``vgg_normalised``; an encoder returning a
            mapping of named layers is accepted too (see :func:`encode`). Must be on the decoder's device and dtype.
        decoder: an :class:`~imgforge.models.adain.AdaINDecoder`; inputs are moved to its device and dtype.
        alpha: content-style trade-off in [0, 1] (1 = full style).
        style_weights: interpolation weights, normalised by their sum; ``None`` = equal weights.
        preserve_color: replace each style image by ``coral(style, content)`` first (keeps the content's colours).
        masks: spatial control, one (1, 1, H, W) mask in [0, 1] per style (see :func:`blend_features`).
        clamp: clamp the result to [0, 1] (the reference returns it unclamped and clamps when saving).
        crop_to_input: the decoder returns ``8*ceil(H/8) x 8*ceil(W/8)``; crop it to ``H x W`` (top-left aligned).
        progress: optional callback (one event when done).
    Returns:
        (1, 3, H, W) float image (in [0, 1] when ``clamp``), on the decoder's device.
    """
    _check_image(content, "content")
    if len(styles) == 0:
        raise UsageError("at least one style image is needed")
    for i, s in enumerate(styles):
        _check_image(s, f"style {i}")
    if masks is not None:
        for i, m in enumerate(masks):
            _check_mask(m, i)
    p = next(decoder.parameters())
    dev, dt = p.device, p.dtype
    if preserve_color:  # colour statistics in float32 from the float32 inputs, before any cast to a bf16 decoder's dtype
        with torch.no_grad():  # (the reference's coral() asserts a float32 CPU tensor)
            c32 = content[0].to(device=dev, dtype=torch.float32)
            styles = [coral(s[0].to(device=dev, dtype=torch.float32), c32).unsqueeze(0) for s in styles]
    content = content.to(device=dev, dtype=dt)
    styles = [s.to(device=dev, dtype=dt) for s in styles]
    if masks is not None:
        masks = [m.to(device=dev, dtype=dt) for m in masks]
    with torch.no_grad():
        content_feat = encode(encoder, content)
        style_feats = [encode(encoder, s) for s in styles]
        feat = blend_features(content_feat, style_feats, alpha=alpha, style_weights=style_weights, masks=masks)
        out = decoder(feat)
    if crop_to_input:
        out = out[:, :, : content.shape[2], : content.shape[3]]
    if clamp:
        out = out.clamp(0.0, 1.0)
    emit(progress, ProgressEvent(task="adain", step=1, total=1, unit="img"))
    return out
