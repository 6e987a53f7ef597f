"""Decoders of universal style transfer (Li et al. 2017, WCT): one per encoder level relu1_1 ... relu5_1.

:class:`WCTDecoder` ``(level)`` mirrors the VGG-19 encoder from ``conv<level>_1`` back to ``conv1_1``: every encoder
conv ``c_in -> c_out`` becomes ``ReflectionPad2d(1)`` + 3x3 conv ``c_out -> c_in`` + ReLU (no ReLU after the last),
and a nearest x2 upsampling follows each conv whose mirrored encoder conv reads a max-pool output. This is the layout
of the reference's decoders (PytorchWCT's ``decoder1`` ... ``decoder5``), and for level 4 it is exactly the AdaIN
decoder of pytorch-AdaIN (same 29 children, same ``<child index>.weight`` keys), so an AdaIN decoder file loads as a
level-4 WCT decoder. :class:`WCTDecoders` holds the five (keys ``decoder<level>.<child>.weight|bias``).

:meth:`WCTDecoder.plan` says, per decoder conv, which encoder activation it mirrors (the input of the mirrored
encoder conv): what the least-squares fitting recipe (``weights/recipes/fit_wct_decoders.py``) regresses onto.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from .registry import register

__all__ = ["WCTDecoder", "WCTDecoders", "encoder_convs", "LEVELS"]

LEVELS = (1, 2, 3, 4, 5)
_BLOCK_CONVS = (2, 2, 4, 4, 4)
_WIDTHS = (64, 128, 256, 512, 512)


def encoder_convs(level: int) -> List[Tuple[str, int, int, str]]:
    """VGG-19 convs up to ``conv<level>_1``: ``(name, c_in, c_out, name of the activation it reads)``."""
    if level not in LEVELS:
        raise ValueError(f"WCT levels are 1..5, got {level}")
    out: List[Tuple[str, int, int, str]] = []
    c_in, prev = 3, "image"
    for b, (n, w) in enumerate(zip(_BLOCK_CONVS, _WIDTHS), start=1):
        for k in range(1, n + 1):
            out.append((f"conv{b}_{k}", c_in, w, prev))
            if b == level:
                return out
            c_in, prev = w, f"relu{b}_{k}"
        prev = f"pool{b}"
    return out


@register("wct_decoder")
class WCTDecoder(nn.Sequential):
    """Decoder from ``relu<level>_1`` features ``(B, C, h, w)`` to an RGB image ``(B, 3, h·2^(level-1), ...)``,
    roughly in [0, 1] (not clamped)."""

    def __init__(self, level: int = 4) -> None:
        mods: List[nn.Module] = []
        convs = encoder_convs(level)
        for i, (_, c_in, c_out, reads) in enumerate(reversed(convs)):
            mods += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(c_out, c_in, (3, 3))]
            if i < len(convs) - 1:
                mods.append(nn.ReLU())
            if reads.startswith("pool"):
                mods.append(nn.Upsample(scale_factor=2, mode="nearest"))
        super().__init__(*mods)
        self.level = int(level)
        self.in_channels = convs[-1][2]

    def plan(self) -> List[Tuple[int, str]]:
        """``(child index of each conv, encoder activation it reconstructs)``, in forward order."""
        targets = [reads for _, _, _, reads in reversed(encoder_convs(self.level))]
        idx = [i for i, m in enumerate(self) if isinstance(m, nn.Conv2d)]
        return list(zip(idx, targets))


@register("wct_decoders")
class WCTDecoders(nn.Module):
    """The decoders of several levels (default all five): ``self[level]`` is the level's :class:`WCTDecoder`."""

    def __init__(self, levels: Sequence[int] = LEVELS) -> None:
        super().__init__()
        for lv in levels:
            self.add_module(f"decoder{int(lv)}", WCTDecoder(int(lv)))
        self.levels = tuple(sorted(int(lv) for lv in levels))

    def __getitem__(self, level: int) -> WCTDecoder:
        return getattr(self, f"decoder{int(level)}")

    def forward(self, feat: Tensor, level: int) -> Tensor:
        return self[level](feat)
