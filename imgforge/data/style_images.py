"""Folders of images for training the style networks, with crops that are a pure function of (seed, step, slot).

:class:`StyleImageFolder` lists every image under one or more folders (recursively, sorted), decodes each one once
(resized so its shorter side is ``resize``, kept as uint8 in memory), and cuts crops:

- ``crop="center"``: the centre ``size x size`` (fast-neural-style: ``Resize(256), CenterCrop(256)``);
- ``crop="random"``: a random ``size x size`` window (AdaIN: ``Resize(512), RandomCrop(256)``), optionally flipped,
  drawn from a generator seeded by ``(seed, step, slot)`` so that a resumed run sees exactly the same crops.

Unreadable files are skipped with a note (and counted in :attr:`skipped`); an empty folder is a
:class:`~imgforge.errors.TrainingError` that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ImgforgeError, TrainingError, UsageError
from ..io import iter_image_paths, load_image

__all__ = ["StyleImageFolder", "list_images"]


def list_images(folders: Sequence[Union[str, Path]]) -> List[Path]:
    """Sorted image files under each folder (recursive); a file path is taken as it is."""
    out: List[Path] = []
    for f in folders:
        p = Path(f)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(iter_image_paths(p, recursive=True))
        else:
            raise TrainingError(f"{p}: no such folder (expected a folder of training images)")
    return out


@dataclass
class StyleImageFolder:
    """Training images from folders; see the module docstring.

    Attributes:
        folders: folders (or single files) to read.
        size: crop side in pixels.
        resize: shorter side after resizing, before cropping (default: ``size``); ``resize_square=True`` resizes
            to ``resize x resize`` instead, ignoring the aspect ratio (AdaIN's ``Resize((512, 512))``).
        crop: ``"center"`` or ``"random"``.
        flip: random horizontal flips (random crops only).
        seed: seed of the random crops.
    """

    folders: Sequence[Union[str, Path]]
    size: int = 256
    resize: Optional[int] = None
    resize_square: bool = False
    crop: str = "center"
    flip: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.crop not in ("center", "random"):
            raise UsageError(f"--crop {self.crop!r}: expected 'center' or 'random'")
        self.paths = list_images(self.folders)
        self._cache: Dict[int, Tensor] = {}
        self.skipped: List[str] = []
        good: List[Path] = []
        for p in self.paths:  # decode now: fail early, and the crops are then cheap
            try:
                self._cache[len(good)] = self._decode(p)
                good.append(p)
            except ImgforgeError as exc:
                self.skipped.append(f"{p}: {exc}")
        self.paths = good
        if not self.paths:
            names = ", ".join(str(f) for f in self.folders)
            raise TrainingError(f"no readable training images in {names} (looked for .png, .jpg, .jpeg, .webp, ...)")

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, path: Path) -> Tensor:
        img = load_image(path).rgb[None]
        target = self.resize or self.size
        h, w = img.shape[-2:]
        if self.resize_square:
            size = (target, target)
        else:
            s = target / min(h, w)
            size = (max(self.size, round(h * s)), max(self.size, round(w * s)))
        img = F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=min(size) < min(h, w))
        return img[0].clamp(0, 1).mul(255).round().to(torch.uint8)

    def image(self, index: int) -> Tensor:
        """The resized image ``index`` as (3, H, W) uint8."""
        return self._cache[index]

    def get(self, index: int, step: int = 0, slot: int = 0) -> Tensor:
        """Crop of image ``index`` for batch ``step``, position ``slot``: (3, size, size) float32 in [0, 1]."""
        img = self.image(index)
        h, w = img.shape[-2:]
        if self.crop == "center":
            y, x = (h - self.size) // 2, (w - self.size) // 2
            flip = False
        else:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 1009 + slot)
            y = int(torch.randint(0, h - self.size + 1, (1,), generator=g))
            x = int(torch.randint(0, w - self.size + 1, (1,), generator=g))
            flip = self.flip and bool(torch.randint(0, 2, (1,), generator=g))
        out = img[:, y:y + self.size, x:x + self.size].float().div_(255)
        return out.flip(-1) if flip else out

    def batch(self, indices: Sequence[int], step: int = 0) -> Tensor:
        """(B, 3, size, size) float32 in [0, 1]: :meth:`get` for each index."""
        return torch.stack([self.get(i, step, k) for k, i in enumerate(indices)])
