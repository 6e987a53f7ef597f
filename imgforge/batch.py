"""Running one image function over a batch of inputs: skip-existing, per-item failures, a summary.

A failing item (missing, corrupt, unwritable, ...) is recorded and the batch goes on. The result's ``exit_code``
is 0 when everything succeeded or was skipped, 3 when some items failed and others succeeded, 1 when all failed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import torch

from .errors import ImgforgeError, UsageError
from .io import STDIN, InputItem, LoadedImage, OutputNamer, check_output_target, load_image, save_image
from .progress import ProgressEvent, ProgressFn, emit
from .validate import check_image_size


@dataclass
class ItemResult:
    """What happened to one input: ``status`` is "ok", "skipped" (output exists) or "failed"."""

    input: str
    output: Optional[str]
    status: str
    error: Optional[str] = None
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


@dataclass
class BatchResult:
    """All item results of a batch, in input order."""

    items: List[ItemResult] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(r.status == "ok" for r in self.items)

    @property
    def skipped(self) -> int:
        return sum(r.status == "skipped" for r in self.items)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.items)

    @property
    def exit_code(self) -> int:
        if self.failed == 0:
            return 0
        return 3 if (self.ok + self.skipped) > 0 else 1

    def summary(self) -> str:
        parts = [f"{self.ok} written"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (output exists; --overwrite to redo)")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "skipped": self.skipped, "failed": self.failed, "exit_code": self.exit_code,
                "items": [asdict(r) for r in self.items]}


@dataclass(frozen=True)
class SaveOptions:
    """How outputs are written: ``overwrite`` existing files, JPEG/WEBP ``quality``, ``bit_depth`` 8|16|"auto"
    (auto: 16-bit TIFF when the input had 16 bits), ``keep_alpha`` re-attaches the input's alpha."""

    overwrite: bool = False
    quality: int = 95
    bit_depth: str = "auto"
    keep_alpha: bool = True
    max_pixels: Optional[int] = None


ProcessFn = Callable[[LoadedImage], torch.Tensor]


def run_batch(
    items: Sequence[InputItem],
    namer: OutputNamer,
    process: ProcessFn,
    *,
    save: SaveOptions = SaveOptions(),
    progress: Optional[ProgressFn] = None,
    task: str = "images",
    min_side: int = 0,
    what: str = "this method",
) -> BatchResult:
    """Load each input, call ``process`` on it, and save the returned image.

    Args:
        items: expanded inputs (see :func:`imgforge.io.expand_inputs`); items with an ``error`` count as failed.
        namer: output naming (``-o`` or ``--out-dir`` + template).
        process: takes the loaded image and returns (3, H, W) or (1, 3, H, W) in [0, 1].
        save: writing options.
        progress: receives one event per finished item (``step``/``total`` in images) with a message on failure.
        min_side: inputs with a side below this many pixels fail (named, before ``process`` sees them; see
            :data:`imgforge.validate.MIN_SIDE`); ``what`` names the method in that message.
    Raises:
        UsageError: ``-o FILE`` with several inputs, or an unwritable output extension (before any work).
    """
    check_output_target(namer, len(items))
    result = BatchResult()
    total = len(items)
    for index, item in enumerate(items):
        t0 = time.perf_counter()
        out_path: Optional[str] = None
        try:
            if item.error:
                raise ImgforgeError(item.error)
            out_path = namer.path_for(item, index)
            if out_path != STDIN and Path(out_path).exists() and not save.overwrite:
                result.items.append(ItemResult(item.path, out_path, "skipped"))
                emit(progress, ProgressEvent(task, index + 1, total, unit="img",
                                             message=f"skip {item.path}: {out_path} exists"))
                continue
            img = load_image(item.path, max_pixels=save.max_pixels)
            check_image_size(img.size, min_side, img.source, what)
            out = process(img)
            depth = 16 if (save.bit_depth == "16" or (save.bit_depth == "auto" and img.bit_depth == 16)) else 8
            alpha = img.alpha if save.keep_alpha else None
            save_image(out, out_path, alpha=alpha, quality=save.quality, bit_depth=depth)
        except UsageError:
            raise
        except ImgforgeError as exc:
            result.items.append(ItemResult(item.path, out_path, "failed", str(exc), time.perf_counter() - t0))
            emit(progress, ProgressEvent(task, index + 1, total, unit="img", message=f"failed: {exc}"))
            continue
        except torch.cuda.OutOfMemoryError as exc:  # one huge image should not stop the batch
            msg = f"{item.path}: out of GPU memory ({exc}); try --tile or a smaller --size"
            result.items.append(ItemResult(item.path, out_path, "failed", msg, time.perf_counter() - t0))
            emit(progress, ProgressEvent(task, index + 1, total, unit="img", message=f"failed: {msg}"))
            continue
        dt = time.perf_counter() - t0
        result.items.append(ItemResult(item.path, out_path, "ok", None, dt))
        emit(progress, ProgressEvent(task, index + 1, total, unit="img",
                                     message=f"wrote {out_path} ({dt:.1f} s)" if out_path != STDIN else None))
    return result
