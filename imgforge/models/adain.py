"""AdaIN decoder of naoto0804/pytorch-AdaIN (Huang & Belongie 2017), as the bare ``nn.Sequential`` of ``net.py``.

Keys are ``<child index>.weight`` / ``<child index>.bias`` for the conv children 1, 5, 8, 11, 14, 18, 21, 25, 28
(18 keys, exactly the layout of the published ``decoder.pth`` and of ``decoder_iter_*.pth.tar`` checkpoints).
Children count every module, including pads, ReLUs and upsamplings, so the numbering has gaps.

The encoder (``vgg_normalised``, cut after relu4_1) lives in :mod:`imgforge.models.vgg`; :func:`adain_encoder`
below only slices an already-built ``vgg_normalised`` sequential, as the reference does.
"""

from __future__ import annotations

import torch.nn as nn

from .registry import register

__all__ = ["AdaINDecoder", "adain_encoder", "DECODER_CONV_INDICES", "ENCODER_RELU4_1_CHILDREN"]

#: Child indices of the decoder's convolutions (the only children with parameters).
DECODER_CONV_INDICES: tuple[int, ...] = (1, 5, 8, 11, 14, 18, 21, 25, 28)
#: Number of leading ``vgg_normalised`` children the reference keeps for the encoder (input .. relu4_1).
ENCODER_RELU4_1_CHILDREN = 31


def _pad() -> nn.Module:
    return nn.ReflectionPad2d((1, 1, 1, 1))


def _up() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")


@register("adain_decoder")
class AdaINDecoder(nn.Sequential):
    """Mirror of the VGG encoder up to relu4_1 (29 children, no constructor arguments).

    ``forward(feat)``: ``feat: (B, 512, h, w)`` relu4_1-like features -> ``(B, 3, 8h, 8w)`` image in roughly
    [0, 1] (RGB, not clamped). Every 3x3 conv is preceded by ``ReflectionPad2d(1)`` and followed by a ReLU except the
    last; nearest x2 upsampling at children 3, 16 and 23.
    """

    def __init__(self) -> None:
        super().__init__(
            _pad(), nn.Conv2d(512, 256, (3, 3)), nn.ReLU(),  # 0-2
            _up(),  # 3
            _pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),  # 4-6
            _pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),  # 7-9
            _pad(), nn.Conv2d(256, 256, (3, 3)), nn.ReLU(),  # 10-12
            _pad(), nn.Conv2d(256, 128, (3, 3)), nn.ReLU(),  # 13-15
            _up(),  # 16
            _pad(), nn.Conv2d(128, 128, (3, 3)), nn.ReLU(),  # 17-19
            _pad(), nn.Conv2d(128, 64, (3, 3)), nn.ReLU(),  # 20-22
            _up(),  # 23
            _pad(), nn.Conv2d(64, 64, (3, 3)), nn.ReLU(),  # 24-26
            _pad(), nn.Conv2d(64, 3, (3, 3)),  # 27-28
        )


def adain_encoder(vgg_normalised: nn.Module, children: int = ENCODER_RELU4_1_CHILDREN) -> nn.Sequential:
    """The AdaIN encoder: the first ``children`` (31: input .. relu4_1) children of a loaded ``vgg_normalised``.

    ``vgg_normalised`` must be the full 53-child sequential (load the whole published file strictly first, as the
    reference does). The result shares parameters with it and maps ``(B, 3, H, W)`` in [0, 1] to
    ``(B, 512, ceil(H/8), ceil(W/8))`` (max-pools use ``ceil_mode=True``).
    """
    mods = list(vgg_normalised.children())
    if len(mods) < children:
        raise ValueError(f"vgg_normalised has {len(mods)} children; the AdaIN encoder needs the first {children}")
    return nn.Sequential(*mods[:children])
