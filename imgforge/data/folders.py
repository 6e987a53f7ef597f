"""Folder datasets of the reference (``--dataset_mode aligned | unaligned | single``).

- :class:`AlignedDataset` (pix2pix): pairs, either side by side in one file (left half = A, right half = B; both
  halves get the same crop and flip) under ``<root>/<phase>/`` (or directly in ``<root>``), or as two folder trees
  with matching file names: ``<root>/A/<phase>/x.jpg`` + ``<root>/B/<phase>/x.jpg`` (the input of the reference's
  ``combine_A_and_B.py``) or ``<root>/A/x.jpg`` + ``<root>/B/x.jpg``. ``direction="BtoA"`` swaps input and target.
- :class:`UnalignedDataset` (CycleGAN): ``<root>/<phase>A/`` and ``<root>/<phase>B/``; A is taken in order
  (index modulo |A|), B at random (or index modulo |B| with ``serial``); independent crops and flips; length
  max(|A|, |B|).
- :class:`SingleDataset`: every image under one folder.

File lists are sorted full paths of the accepted extensions (any case), searched recursively, as ``make_dataset``.
Items are built by ``get(index, rng)`` with an explicit numpy generator (see :func:`imgforge.data.transforms.sample_rng`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import InputError
from .transforms import Preprocess, apply_transform, get_params, open_rgb, to_tensor

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
DIRECTIONS = ("AtoB", "BtoA")

Item = Dict[str, Union[torch.Tensor, str]]


def is_image_file(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMG_EXTENSIONS


def list_images(folder: Union[str, Path], skipped: Optional[List[str]] = None) -> List[str]:
    """Sorted paths of the image files under ``folder`` (recursive; hidden files skipped).

    With a ``skipped`` list (the datasets pass one), files are screened too: decompression bombs (over
    ``IMGFORGE_MAX_PIXELS``) and files whose header or PNG data cannot be read are left out, as in apply batches,
    and ``"path: reason"`` for each is appended to ``skipped``.
    """
    from ..validate import screen_images

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    out: List[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(os.path.join(root, f) for f in files if is_image_file(f) and not f.startswith("."))
    if skipped is None:
        return sorted(out)
    good, bad = screen_images(sorted(out))
    skipped.extend(bad)
    return good


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be AtoB or BtoA, got {direction!r}")
    return direction


class AlignedDataset:
    """Paired images for pix2pix. ``get`` returns ``{"input", "target"}`` tensors ``(C, crop, crop)`` in [-1, 1]
    (``input`` = A for AtoB, B for BtoA; ``input_nc`` / ``output_nc`` = 1 converts that side to grey) and the
    ``path`` of the pair. Without a ``<root>/<phase>/`` folder the images directly under ``root`` are used, unless
    ``phase_fallback=False`` (then :class:`InputError`)."""

    def __init__(
        self,
        root: Union[str, Path],
        phase: str = "train",
        direction: str = "AtoB",
        pre: Preprocess = Preprocess(),
        input_nc: int = 3,
        output_nc: int = 3,
        phase_fallback: bool = True,
    ) -> None:
        root = Path(root)
        self.direction = _check_direction(direction)
        pre.validate()
        self.pre, self.input_nc, self.output_nc = pre, input_nc, output_nc
        self.pair_paths: List[tuple[str, str]] = []
        self.paths: List[str] = []
        #: "path: reason" of each unreadable or oversized image left out.
        self.skipped: List[str] = []
        if not root.is_dir():
            raise InputError(f"{root}: dataset folder not found")
        a_dir, b_dir = self._pair_folders(root, phase)
        if a_dir is not None and b_dir is not None:
            self.layout = "folders"
            self.pair_paths = self._match(a_dir, b_dir, self.skipped)
            self.paths = [a for a, _ in self.pair_paths]
        else:
            self.layout = "side_by_side"
            if not (root / phase).is_dir() and not phase_fallback:
                raise InputError(f"{root}: has no {phase}/ folder")
            folder = root / phase if (root / phase).is_dir() else root
            self.paths = list_images(folder, self.skipped)
            self.folder = folder
        if not self.paths:
            raise InputError(
                f"{root}: no {phase} pairs found (expected side-by-side A|B images in {root / phase}/ or {root}/, "
                f"or A/{phase}/ + B/{phase}/ or A/ + B/ folders with matching names)"
            )

    @staticmethod
    def _pair_folders(root: Path, phase: str) -> tuple[Optional[Path], Optional[Path]]:
        for a, b in ((root / "A" / phase, root / "B" / phase), (root / "A", root / "B")):
            if a.is_dir() and b.is_dir():
                return a, b
        return None, None

    @staticmethod
    def _match(a_dir: Path, b_dir: Path, skipped: List[str]) -> List[tuple[str, str]]:
        n_before = len(skipped)
        b_files = list_images(b_dir, skipped)
        bad_b = {os.path.splitext(os.path.relpath(m.split(": ", 1)[0], b_dir))[0] for m in skipped[n_before:]}
        by_rel = {os.path.relpath(p, b_dir): p for p in b_files}
        by_stem = {os.path.splitext(r)[0]: p for r, p in by_rel.items()}
        pairs, missing = [], []
        for a in list_images(a_dir, skipped):
            rel = os.path.relpath(a, a_dir)
            b = by_rel.get(rel) or by_stem.get(os.path.splitext(rel)[0])
            if b is None and os.path.splitext(rel)[0] in bad_b:
                continue  # its B file was skipped: the pair goes
            if b is None:
                missing.append(rel)
            else:
                pairs.append((a, b))
        if missing:
            raise InputError(
                f"{a_dir}: {len(missing)} image(s) have no file of the same name in {b_dir} (first: {missing[0]!r}); "
                "A/ and B/ must hold matching names"
            )
        return pairs

    def __len__(self) -> int:
        return len(self.paths)

    def load_pair(self, index: int):  # type: ignore[no-untyped-def]
        """The PIL images ``(A, B)`` of pair ``index`` (halves of the side-by-side file, or the two files)."""
        if self.layout == "folders":
            a_path, b_path = self.pair_paths[index]
            return open_rgb(a_path), open_rgb(b_path)
        ab = open_rgb(self.paths[index])
        w, h = ab.size
        if w < 2:
            raise InputError(f"{self.paths[index]}: {w}x{h} is too narrow to hold an A|B pair")
        w2 = int(w / 2)
        return ab.crop((0, 0, w2, h)), ab.crop((w2, 0, w, h))

    def get(self, index: int, rng: Optional[np.random.Generator], pre: Optional[Preprocess] = None) -> Item:
        """Pair ``index`` transformed with random decisions from ``rng`` (``None``: no crop offset, no flip)."""
        pre = pre or self.pre
        a, b = self.load_pair(index)
        params = get_params(pre, a.size, rng) if rng is not None else None
        if self.direction == "BtoA":
            a, b = b, a
        x = to_tensor(apply_transform(a, pre, params, grayscale=self.input_nc == 1))
        y = to_tensor(apply_transform(b, pre, params, grayscale=self.output_nc == 1))
        return {"input": x, "target": y, "path": self.paths[index]}


class UnalignedDataset:
    """Unpaired domains for CycleGAN: ``get`` returns ``{"A", "B"}`` tensors in [-1, 1] and ``A_path`` / ``B_path``."""

    def __init__(
        self,
        root: Union[str, Path],
        phase: str = "train",
        pre: Preprocess = Preprocess(),
        input_nc: int = 3,
        output_nc: int = 3,
        serial: bool = False,
    ) -> None:
        root = Path(root)
        pre.validate()
        self.root, self.phase, self.pre, self.serial = root, phase, pre, serial
        self.input_nc, self.output_nc = input_nc, output_nc
        self.dir_A, self.dir_B = root / f"{phase}A", root / f"{phase}B"
        for d in (self.dir_A, self.dir_B):
            if not d.is_dir():
                raise InputError(f"{d}: folder not found (a CycleGAN dataset has {phase}A/ and {phase}B/)")
        self.skipped: List[str] = []
        self.A_paths, self.B_paths = list_images(self.dir_A, self.skipped), list_images(self.dir_B, self.skipped)
        for d, p in ((self.dir_A, self.A_paths), (self.dir_B, self.B_paths)):
            if not p:
                raise InputError(f"{d}: no images (looked for {', '.join(IMG_EXTENSIONS)})")

    def __len__(self) -> int:
        return max(len(self.A_paths), len(self.B_paths))

    def b_index(self, index: int, rng: Optional[np.random.Generator]) -> int:
        if self.serial or rng is None:
            return index % len(self.B_paths)
        return int(rng.integers(0, len(self.B_paths)))

    def get(self, index: int, rng: Optional[np.random.Generator], rng_b: Optional[np.random.Generator] = None,
            pre: Optional[Preprocess] = None) -> Item:
        """Item ``index``: A = ``index % |A|``; B drawn from ``rng`` (or serial); crops/flips of A from ``rng``,
        of B from ``rng_b`` (default: ``rng`` continued)."""
        pre = pre or self.pre
        a_path = self.A_paths[index % len(self.A_paths)]
        b_path = self.B_paths[self.b_index(index, rng)]
        a, b = open_rgb(a_path), open_rgb(b_path)
        pa = get_params(pre, a.size, rng) if rng is not None else None
        rb = rng_b if rng_b is not None else rng
        pb = get_params(pre, b.size, rb) if rb is not None else None
        A = to_tensor(apply_transform(a, pre, pa, grayscale=self.input_nc == 1))
        B = to_tensor(apply_transform(b, pre, pb, grayscale=self.output_nc == 1))
        return {"A": A, "B": B, "A_path": a_path, "B_path": b_path}


class SingleDataset:
    """Every image under ``folder``; ``get`` returns ``{"A": (C, H, W) in [-1, 1], "A_path"}``."""

    def __init__(self, folder: Union[str, Path], pre: Preprocess = Preprocess("none", 256, 256, False), input_nc: int = 3) -> None:
        self.skipped: List[str] = []
        self.paths = list_images(folder, self.skipped)
        if not self.paths:
            raise InputError(f"{folder}: no images (looked for {', '.join(IMG_EXTENSIONS)})")
        self.pre, self.input_nc = pre, input_nc

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int, rng: Optional[np.random.Generator] = None) -> Item:
        img = open_rgb(self.paths[index])
        params = get_params(self.pre, img.size, rng) if rng is not None else None
        return {"A": to_tensor(apply_transform(img, self.pre, params, grayscale=self.input_nc == 1)),
                "A_path": self.paths[index]}


def stack(items: Sequence[Item], keys: Sequence[str]) -> Dict[str, object]:
    """Collate items: tensors under ``keys`` are stacked to ``(B, C, H, W)``; other fields become lists."""
    out: Dict[str, object] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals, 0) if k in keys else vals  # type: ignore[arg-type]
    return out
