"""Training/test preprocessing of junyanz/pytorch-CycleGAN-and-pix2pix (``data/base_dataset.py``), on PIL images.

Randomness never comes from a global RNG: every random decision (crop position, flip, the random B image of an
unaligned pair) is drawn from :func:`sample_rng`, a generator seeded by ``(seed, step, position in the global
batch)``. The data of any step is therefore a pure function of the step, which makes resumed runs exact and gives
every DDP rank the samples a single process would have drawn for the same positions.

Modes (``preprocess``), as the reference's ``--preprocess``:

- ``resize_and_crop`` (default): resize to ``load_size x load_size`` (bicubic, aspect ratio not kept), then a random
  ``crop_size`` crop (x, y uniform in ``0 .. load_size - crop_size`` inclusive).
- ``crop``: random crop only. ``scale_width``: width -> ``load_size`` keeping the aspect ratio (height at least
  ``crop_size``). ``scale_width_and_crop``: that, then a random crop. ``none``: only round H and W to multiples of
  4 (bicubic). ``full`` (imgforge's own): no resizing at all; the inference path pads to the network's size
  multiple and crops back.
- Then a horizontal flip with probability 1/2 unless ``flip=False``.

Tensors come out as the reference's ``ToTensor`` + ``Normalize(0.5, 0.5)``: ``(C, H, W)`` float32 in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
from PIL import Image

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none", "full")


def sample_rng(seed: int, step: int, position: int, stream: int = 0) -> np.random.Generator:
    """A numpy generator that depends only on ``(seed, step, position, stream)``.

    ``position`` is the sample's place in the GLOBAL batch of ``step`` (so all DDP ranks agree); ``stream``
    separates independent uses (e.g. 0 for the pair/A side, 1 for the B side of an unaligned pair).
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed) % (1 << 63), int(step), int(position), int(stream)]))


@dataclass(frozen=True)
class Preprocess:
    """How images are prepared (reference defaults for training: ``resize_and_crop``, 286 -> 256, flips).

    Attributes:
        mode: one of :data:`PREPROCESS_MODES`.
        load_size: size images are resized to (square for ``resize_and_crop``; the width for ``scale_width*``).
        crop_size: side of the random square crop.
        flip: random horizontal flips (probability 1/2).
    """

    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True

    def validate(self) -> None:
        if self.mode not in PREPROCESS_MODES:
            raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS_MODES)}, got {self.mode!r}")
        if self.crop_size < 1 or self.load_size < 1:
            raise ValueError(f"load_size and crop_size must be positive, got {self.load_size} and {self.crop_size}")
        if "crop" in self.mode and "resize" in self.mode and self.crop_size > self.load_size:
            raise ValueError(f"crop_size {self.crop_size} is larger than load_size {self.load_size}")

    def for_test(self) -> "Preprocess":
        """The reference's test-time settings: ``load_size = crop_size`` (a plain resize), no flips."""
        return Preprocess(self.mode, self.crop_size, self.crop_size, False)


@dataclass(frozen=True)
class TransformParams:
    """The random decisions for one image (or one aligned pair, which shares them)."""

    crop_x: int
    crop_y: int
    flip: bool


def get_params(pre: Preprocess, size: Tuple[int, int], rng: np.random.Generator) -> TransformParams:
    """Draw the crop position and flip for an image of ``size = (w, h)`` (the reference's ``get_params``)."""
    w, h = size
    new_w, new_h = w, h
    if pre.mode == "resize_and_crop":
        new_w = new_h = pre.load_size
    elif pre.mode == "scale_width_and_crop":
        new_w, new_h = pre.load_size, pre.load_size * h // w
    x = int(rng.integers(0, max(0, new_w - pre.crop_size) + 1))
    y = int(rng.integers(0, max(0, new_h - pre.crop_size) + 1))
    flip = bool(rng.random() > 0.5)
    return TransformParams(x, y, flip)


def _scale_width(img: Image.Image, target: int, crop: int) -> Image.Image:
    ow, oh = img.size
    if ow == target and oh >= crop:
        return img
    w = target
    h = int(max(target * oh / ow, crop))
    return img.resize((w, h), Image.BICUBIC)


def _make_power_2(img: Image.Image, base: int = 4) -> Image.Image:
    ow, oh = img.size
    h, w = max(int(round(oh / base) * base), base), max(int(round(ow / base) * base), base)
    if (h, w) == (oh, ow):
        return img
    return img.resize((w, h), Image.BICUBIC)


def _crop(img: Image.Image, pos: Tuple[int, int], size: int) -> Image.Image:
    ow, oh = img.size
    x1, y1 = pos
    if ow > size or oh > size:
        return img.crop((x1, y1, x1 + size, y1 + size))
    return img


def apply_transform(img: Image.Image, pre: Preprocess, params: Optional[TransformParams], grayscale: bool = False) -> Image.Image:
    """Apply ``pre`` with the decisions in ``params`` (``None``: no crop offset, no flip) to a PIL image."""
    if grayscale:
        img = img.convert("L")
    if "resize" in pre.mode:
        img = img.resize((pre.load_size, pre.load_size), Image.BICUBIC)
    elif "scale_width" in pre.mode:
        img = _scale_width(img, pre.load_size, pre.crop_size)
    if "crop" in pre.mode:
        pos = (params.crop_x, params.crop_y) if params is not None else (0, 0)
        img = _crop(img, pos, pre.crop_size)
    if pre.mode == "none":
        img = _make_power_2(img, 4)
    if pre.flip and params is not None and params.flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (RGB or L) -> ``(C, H, W)`` float32 in [-1, 1] (``ToTensor`` then ``Normalize(0.5, 0.5)``)."""
    arr = np.array(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div(255)
    return t.sub(0.5).div(0.5)


def open_rgb(path: str) -> Image.Image:
    """Open an image file as RGB (as the reference: ``Image.open(path).convert('RGB')``)."""
    from ..errors import InputError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: cannot be read as an image ({exc})") from None
