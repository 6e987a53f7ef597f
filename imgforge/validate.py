"""Checks made before any work starts, so that bad input never reaches a traceback, an out-of-memory crash or a
half-written result.

- input images against a method's minimum size (:func:`check_image_size`, :data:`MIN_SIDE`);
- requested output sizes against the pixel limit and a memory estimate (:func:`check_output_size`);
- output paths: a file where a file is meant, a folder where a folder is meant, writable (:func:`check_output_file`,
  :func:`check_output_dir`);
- layer names against the network (:func:`check_layers`);
- results: NaN or infinite values are an error, never a black image (:func:`check_finite`);
- training folders: oversized and unreadable images are skipped and counted (:func:`screen_images`).

Every check raises a typed error (:mod:`imgforge.errors`) whose message names the file or the option.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from .errors import ComputeError, InputError, OutputError, UsageError

#: Smallest input side (pixels) each method can process: the fast-style network pads by 4 and downsamples by 4
#: with reflection padding after it; the AdaIN encoder downsamples by 8 and its statistics and the decoder's
#: reflection padding need at least 2x2 features; Gatys builds a VGG pyramid down to 1/16; WCT encodes down to
#: relu5_1 (1/16) at its deepest level.
MIN_SIDE: Mapping[str, int] = {"fast": 5, "adain": 16, "gatys": 16, "mrf": 16, "wct": 16, "translate": 1}

#: Bytes of working memory per output pixel, (untiled, tiled), kept at the low end of what the methods use so that
#: only sizes that cannot work are refused. Image buffers alone are ~24 B/px (float input and output, the encoded
#: copy); network activations dominate when the whole image runs at once (VGG-19 at full resolution: ~2.4 kB/px
#: forward, about twice that with the gradients Gatys needs).
BYTES_PER_PIXEL: Mapping[str, Tuple[int, int]] = {
    "gatys": (2000, 2000),  # never tiled
    "mrf": (2000, 2000),  # Gatys' loop, plus the patch matching (done in chunks)
    "fast": (400, 24),
    "adain": (500, 24),
    "translate": (500, 24),
    # untiled: float64 features of the shallowest level (64 x 8 B/px) and their copies; tiled: the level's input
    # and output images and the blended output (float32), plus the masks' copies
    "wct": (1500, 48),
}


def check_image_size(size: Tuple[int, int], min_side: int, name: str, what: str = "this method") -> None:
    """``size = (width, height)``; :class:`InputError` naming ``name`` when a side is below ``min_side``."""
    w, h = int(size[0]), int(size[1])
    if min_side > 1 and min(w, h) < min_side:
        raise InputError(f"{name}: {w}x{h} px is too small for {what}; at least {min_side}x{min_side} px is needed")


def _gb(n: float) -> str:
    g = n / 1e9
    return f"{g:.0f} GB" if g >= 10 else f"{g:.1f} GB"


def available_memory(device: Optional[torch.device] = None) -> Optional[int]:
    """Bytes the device can hold: free GPU memory, or the machine's physical memory for the CPU (None: unknown)."""
    try:
        if device is not None and device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            return int(free)
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None


def check_output_size(height: int, width: int, *, method: str, option: str, tiled: bool = False,
                      device: Optional[torch.device] = None, max_pixels: Optional[int] = None) -> None:
    """Refuse (:class:`UsageError`) an output of ``height x width`` pixels that is over the pixel limit
    (``--max-pixels`` / ``IMGFORGE_MAX_PIXELS``, which also guards inputs) or would need more memory than the
    device has, before anything is allocated. ``option`` names what set the size (e.g. ``"--size 100000"``)."""
    from .io import max_pixels_default

    h, w = int(height), int(width)
    if h < 1 or w < 1:
        raise UsageError(f"{option}: the output would be {w}x{h} pixels")
    per_px = BYTES_PER_PIXEL.get(method, (1500, 48))[1 if tiled else 0]
    need = h * w * per_px
    hint = "use --tile or a smaller size" if method in ("fast", "adain", "wct", "translate") and not tiled \
        else "use a smaller size"
    limit = max_pixels_default() if max_pixels is None else int(max_pixels)
    if h * w > limit:
        raise UsageError(f"{option}: a {w}x{h} output has {h * w:,} pixels, over the limit of {limit:,} "
                         f"(--max-pixels / IMGFORGE_MAX_PIXELS) and would need ~{_gb(need)}; {hint}")
    have = available_memory(device)
    if have is not None and need > have:
        where = "GPU" if device is not None and device.type == "cuda" else "this machine"
        raise UsageError(f"{option}: a {w}x{h} output would need ~{_gb(need)} ({where} has {_gb(have)}); {hint}")


# ---- output paths ----------------------------------------------------------------------------------------------


def _nearest_existing(p: Path) -> Path:
    q = p
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def _check_parent(path: Path, option: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    base = _nearest_existing(parent)
    if not base.is_dir():
        raise UsageError(f"{option} {path}: {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {base} is not writable (permission denied)")


def check_output_file(path: Union[str, Path], option: str = "-o") -> None:
    """A file output: not an existing folder, its folder (or the nearest existing ancestor) a writable directory."""
    if str(path) == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {p}: is a folder; give a file name (or --out-dir for a folder of outputs)")
    _check_parent(p, option)


def check_output_dir(path: Union[str, Path], option: str = "--out-dir") -> None:
    """A folder output: not an existing file, and creatable/writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {p}: is not a directory (a file of that name exists)")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {p}: is not writable (permission denied)")
        return
    _check_parent(p, option)


def make_dir(path: Union[str, Path], what: str = "folder") -> Path:
    """``mkdir -p`` with one-line errors: "is not a directory" where a file is in the way, permission, disk."""
    p = Path(path)
    base = _nearest_existing(p)
    if base.exists() and not base.is_dir():
        raise OutputError(f"{what} {p}: {base} is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{what} {p}: cannot be created ({exc.strerror or exc})") from None
    return p


# ---- options and values ----------------------------------------------------------------------------------------


def check_layers(encoder: torch.nn.Module, names: Iterable[str], option: str) -> None:
    """:class:`UsageError` naming ``option`` for a layer name the encoder does not have."""
    known = getattr(encoder, "_names", None)
    if not isinstance(known, Mapping):
        return
    names = list(names)
    if not names:
        raise UsageError(f"{option}: give at least one layer name")
    for n in names:
        if n not in known:
            raise UsageError(f"{option} {n!r}: not a layer of the loss network; known: {', '.join(known)}")


def check_finite(t: torch.Tensor, what: str) -> None:
    """:class:`ComputeError` when ``t`` holds NaN or infinite values (a black or broken image would result)."""
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ComputeError(f"{what}: the result holds NaN or infinite values (numerical failure); nothing written")


def check_latent(t: torch.Tensor, name: str, what: str = "latent") -> None:
    """:class:`InputError` naming the file for an empty latent or one holding NaN/Inf."""
    if t.numel() == 0:
        raise InputError(f"{name}: holds no latents (empty {what}, shape {tuple(t.shape)})")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise InputError(f"{name}: {what} contains NaN or infinite values")


# ---- training folders ------------------------------------------------------------------------------------------


def screen_images(paths: Sequence[Union[str, Path]], max_pixels: Optional[int] = None) -> Tuple[List, List[str]]:
    """Split image files into readable ones and skipped ones, from their headers (nothing is decoded): a
    decompression bomb (over ``max_pixels``), an empty, truncated-header or unidentifiable file is skipped.

    Returns ``(good paths in order, ["path: reason", ...])``.
    """
    from PIL import Image, UnidentifiedImageError

    from .io import max_pixels_default

    limit = max_pixels_default() if max_pixels is None else int(max_pixels)
    good: List = []
    skipped: List[str] = []
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        for p in paths:
            try:
                with Image.open(p) as im:
                    w, h = im.size
                    if w * h > limit:
                        skipped.append(f"{p}: {w}x{h} = {w * h:,} pixels exceeds the limit of {limit:,}")
                        continue
                    if w == 0 or h == 0:
                        skipped.append(f"{p}: zero width or height")
                        continue
                    if im.format == "PNG":
                        im.verify()  # chunk CRCs: catches truncated and corrupted PNG data without decoding
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
                skipped.append(f"{p}: not a readable image ({exc})")
                continue
            good.append(p)
    finally:
        Image.MAX_IMAGE_PIXELS = old
    return good, skipped
