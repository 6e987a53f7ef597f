"""An image-folder dataset for unconditional GAN training (``imgforge stylegan train DIR``).

Every image under the folder (sorted paths, sub-folders included) is centre-cropped to a square, resized to the
training resolution (Lanczos; box filter when shrinking by more than 2x first) and kept in memory as uint8
``(N, 3, R, R)``. Grey-scale, palette and RGBA files become RGB (alpha dropped). Batches come out as float32
``(B, 3, R, R)`` in [-1, 1], the range the StyleGAN2 generator produces.

The whole set is held in memory (R=32: 3 KiB per image, R=256: 192 KiB per image), which is what small
datasets trained on one machine need; the decoded set is cached in ``<run_dir>/dataset_<R>.pt`` when a cache path is
given, so that a resumed run does not decode the folder again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, TrainingError
from ..fsutil import atomic_path
from ..io import iter_image_paths, load_image


def _square_resize(arr: np.ndarray, resolution: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> (R, R, 3) uint8: centre crop to a square, then resize."""
    h, w = arr.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    im = Image.fromarray((arr[y0:y0 + s, x0:x0 + s] * 255.0 + 0.5).clip(0, 255).astype(np.uint8), mode="RGB")
    if s != resolution:
        if s >= 2 * resolution:
            im = im.reduce(max(1, s // (2 * resolution)))
        im = im.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def folder_fingerprint(paths: Sequence[Path]) -> str:
    """sha256 over the relative names, sizes and modification times of ``paths`` (cache key, not content hash)."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class ImageFolderDataset:
    """All images of a folder at one square resolution, in memory.

    Args:
        folder: the image folder (searched recursively; see :data:`imgforge.io.IMAGE_EXTENSIONS`).
        resolution: output side R in pixels.
        mirror: also serve x-flipped copies (NVIDIA ``--mirror``): item ``i >= N`` is item ``i - N`` flipped.
        max_images: use only the first ``max_images`` files (sorted order).
        cache: optional ``.pt`` file holding the decoded uint8 tensor (rebuilt when the folder changes).
    Attributes:
        images: ``(N, 3, R, R)`` uint8. paths: the files, in order.
    Raises:
        TrainingError: the folder does not exist or holds no images. InputError: an unreadable image file.
    """

    def __init__(self, folder: Union[str, Path], resolution: int, *, mirror: bool = False,
                 max_images: Optional[int] = None, cache: Optional[Union[str, Path]] = None) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise TrainingError(f"{folder}: not a folder of training images")
        paths: List[Path] = list(iter_image_paths(folder, recursive=True))
        if max_images is not None:
            paths = paths[: int(max_images)]
        if not paths:
            raise TrainingError(f"{folder}: no images found (png, jpg, webp, tif, bmp, ...)")
        self.folder = folder
        self.paths = paths
        self.resolution = int(resolution)
        self.mirror = bool(mirror)
        key = f"{folder_fingerprint(paths)}:{self.resolution}"
        images = None
        #: "path: reason" of each unreadable or oversized file, left out of the dataset (as in apply batches).
        self.skipped: List[str] = []
        if cache is not None and Path(cache).is_file():
            try:
                blob = torch.load(str(cache), map_location="cpu", weights_only=True)
                if blob.get("key") == key:
                    images = blob["images"]
                    self.skipped = list(blob.get("skipped", []))
            except Exception:  # a damaged cache is rebuilt
                images = None
        if images is None:
            decoded = []
            for p in paths:
                try:
                    decoded.append(self._decode(p))
                except InputError as exc:
                    self.skipped.append(str(exc))
            if not decoded:
                raise TrainingError(f"{folder}: none of its {len(paths)} images can be read "
                                    f"(first: {self.skipped[0]})")
            images = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).contiguous()
            if cache is not None:
                with atomic_path(cache) as tmp:
                    torch.save({"key": key, "images": images, "skipped": self.skipped}, str(tmp))
        self.images: torch.Tensor = images

    def _decode(self, path: Path) -> np.ndarray:
        try:
            img = load_image(path)
        except InputError as exc:
            raise InputError(f"{exc}") from None
        return _square_resize(img.rgb.permute(1, 2, 0).numpy(), self.resolution)

    def __len__(self) -> int:
        return self.images.shape[0] * (2 if self.mirror else 1)

    def batch(self, indices: Sequence[int], device: Union[str, torch.device] = "cpu") -> torch.Tensor:
        """Images ``indices`` as float32 ``(B, 3, R, R)`` in [-1, 1] on ``device``."""
        n = self.images.shape[0]
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        x = self.images[idx % n].to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)
        if self.mirror:
            flip = (idx >= n).to(device)
            if bool(flip.any()):
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x
