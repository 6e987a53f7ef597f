"""Feature statistics used by the style methods: Gram matrices, channel mean/std, AdaIN, CORAL colour transfer.

All functions take feature maps ``feat: (B, C, H, W)`` float tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gram(feat: Tensor, normalize: str = "chw") -> Tensor:
    """Gram matrix per batch element.

    Args:
        feat: (B, C, H, W).
        normalize: ``"chw"`` divides by C*H*W (fast-neural-style, neural-style-pt), ``"hw"`` by H*W, ``"none"``.
    Returns:
        (B, C, C).
    """
    b, c, h, w = feat.shape
    if c > 1 and h * w > 1 and not feat.is_contiguous() and feat.is_contiguous(memory_format=torch.channels_last):
        # channels_last features: (B, H*W, C) is a view of the same memory; F^T F without copying the map to NCHW
        f = feat.permute(0, 2, 3, 1).reshape(b, h * w, c)
        g = torch.bmm(f.transpose(1, 2), f)
    else:
        f = feat.reshape(b, c, h * w)
        g = torch.bmm(f, f.transpose(1, 2))
    if normalize == "chw":
        g = g / (c * h * w)
    elif normalize == "hw":
        g = g / (h * w)
    elif normalize != "none":
        raise ValueError(f"unknown gram normalisation {normalize!r}")
    return g


def calc_mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std over H*W, as pytorch-AdaIN's ``calc_mean_std``: unbiased variance + eps, sqrt.

    Returns two (B, C, 1, 1) tensors.
    """
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    var = flat.var(dim=2) + eps
    std = var.sqrt().reshape(b, c, 1, 1)
    mean = flat.mean(dim=2).reshape(b, c, 1, 1)
    return mean, std


def adain(content_feat: Tensor, style_feat: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalisation: give ``content_feat`` the channel mean/std of ``style_feat``.

    Args:
        content_feat: (B, C, H, W); style_feat: (B, C, H', W') (or B=1, broadcast).
    Returns:
        (B, C, H, W).
    """
    s_mean, s_std = calc_mean_std(style_feat, eps)
    c_mean, c_std = calc_mean_std(content_feat, eps)
    normalized = (content_feat - c_mean.expand_as(content_feat)) / c_std.expand_as(content_feat)
    return normalized * s_std.expand_as(content_feat) + s_mean.expand_as(content_feat)


def _mat_sqrt(x: Tensor) -> Tensor:
    u, d, v = torch.svd(x)
    return u @ torch.diag(d.pow(0.5)) @ v.t()


def coral(source: Tensor, target: Tensor) -> Tensor:
    """CORAL colour transfer as pytorch-AdaIN's ``coral``: give ``source`` the colour mean/covariance of ``target``.

    Args:
        source, target: (3, H, W) images in [0, 1] (sizes may differ).
    Returns:
        (3, H_source, W_source), not clamped.
    """
    src_f = source.reshape(3, -1)
    src_mean = src_f.mean(dim=-1, keepdim=True)
    src_std = src_f.std(dim=-1, keepdim=True)
    src_norm = (src_f - src_mean) / src_std
    src_cov = src_norm @ src_norm.t() + torch.eye(3, dtype=source.dtype, device=source.device)

    tgt_f = target.reshape(3, -1)
    tgt_mean = tgt_f.mean(dim=-1, keepdim=True)
    tgt_std = tgt_f.std(dim=-1, keepdim=True)
    tgt_norm = (tgt_f - tgt_mean) / tgt_std
    tgt_cov = tgt_norm @ tgt_norm.t() + torch.eye(3, dtype=source.dtype, device=source.device)

    src_norm_t = _mat_sqrt(tgt_cov) @ (torch.linalg.inv(_mat_sqrt(src_cov)) @ src_norm)  # reference's association
    out = src_norm_t * tgt_std + tgt_mean
    return out.reshape(source.shape)
