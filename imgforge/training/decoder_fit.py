"""Layer-wise least-squares fitting of a feature decoder (the method of the shipped AdaIN and WCT decoders).

A decoder that mirrors an encoder (``ReflectionPad2d(1)`` + 3x3 conv per encoder conv, nearest upsampling for the
pools) is fitted one convolution at a time, in forward order: each conv is a ridge regression from its actual input
(the output of the decoder layers fitted before it, starting from the encoder's features at ``source``) to the
encoder activation it mirrors (``plan``: child index -> activation name, or ``"image"``), on 3x3 reflection-padded
patches at ``per_image`` random positions per image and layer, with ridge ``ridge x mean diagonal`` and float64
normal equations. Fitting on the chained decoder outputs (not the true activations) makes each layer correct the
errors of the previous ones. Deterministic: the same inputs and seed give the same weights.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fit_decoder_lsq"]


@torch.no_grad()
def fit_decoder_lsq(
    encoder: Callable[..., dict],
    decoder: nn.Sequential,
    plan: Sequence[Tuple[int, str]],
    source: str,
    images: List[Tensor],
    *,
    per_image: int = 600,
    ridge: float = 1e-2,
    seed: int = 0,
    log: Optional[Callable[[str], None]] = None,
) -> nn.Sequential:
    """Fit ``decoder``'s convolutions in place (see the module docstring) and return it.

    Args:
        encoder: ``encoder(x, names) -> {name: (1, C, h, w)}``.
        decoder: a Sequential whose conv at child ``idx`` is preceded by its padding at ``idx - 1``.
        plan: ``(conv child index, encoder activation it reconstructs)`` in forward order.
        source: the encoder activation the decoder starts from (``"relu4_1"``).
        images: ``(1, 3, H, W)`` in [0, 1].
    """
    names = [source] + [t for _, t in plan if t != "image"]
    feats = [encoder(x, names) for x in images]
    decoder.eval()
    mods = list(decoder.children())
    g = torch.Generator().manual_seed(seed)
    for idx, target in plan:
        xs, ys = [], []
        for x, f in zip(images, feats):
            h = f[source]
            for m in mods[:idx - 1]:  # the decoder fitted so far, up to this conv's padding
                h = m(h)
            cols = F.unfold(F.pad(h, (1, 1, 1, 1), mode="reflect"), 3)[0]  # (C_in * 9, H * W)
            y = x if target == "image" else f[target]
            y = y[0].reshape(y.shape[1], -1)
            sel = torch.randperm(cols.shape[1], generator=g)[:per_image]
            xs.append(cols[:, sel].T.double())
            ys.append(y[:, sel].T.double())
        X, Y = torch.cat(xs), torch.cat(ys)
        X1 = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)
        A = X1.T @ X1
        A += ridge * A.diagonal().mean() * torch.eye(A.shape[0], dtype=A.dtype)
        W = torch.linalg.solve(A, X1.T @ Y)
        conv = mods[idx]
        conv.weight.copy_(W[:-1].T.reshape(conv.weight.shape).float())
        conv.bias.copy_(W[-1].float())
        if log is not None:
            r2 = 1 - float(((X1 @ W - Y) ** 2).mean() / Y.var())
            log(f"decoder conv {idx} -> {target}: {X.shape[0]} samples, r2 {r2:.3f}")
    return decoder
