"""The ``sketch2image`` job: from a line drawing to an image the generator can make (GAN-prior inversion).

A sketch is read as a binary stroke map at the generator's resolution (dark lines on a light background are
inverted first, so both conventions work). The generator's latent is optimised (:class:`~imgforge.methods.invert.
Inverter`, pixel MSE) so that the *edge map* of its image (:func:`imgforge.ops.edges.soft_edges`, a differentiable
Sobel magnitude) matches the strokes; the generator's prior fills in everything the sketch leaves open. Writes, per
input ``<stem>``: ``<stem>.png`` (the image), ``<stem>.latent.safetensors``, ``<stem>.compare.png`` (sketch | edges of
the result | result) and ``<stem>.json`` (edge IoU with the sketch, steps, seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ImgforgeError, InputError, UsageError
from ..fsutil import atomic_write_text
from ..generator_api import DEFAULT_GENERATOR, load_generator_for
from ..io import InputItem, load_image, save_image
from ..latents import save_latent
from ..methods.invert import InvertConfig, Inverter
from ..ops.edges import edge_iou, soft_edges
from ..progress import ProgressFn
from ..reports import side_by_side, upscale_nearest

__all__ = ["SketchJob", "edges_rgb", "read_sketch", "sketch_paths", "run_sketch2image"]


@dataclass(frozen=True)
class SketchJob:
    """weights (default the shipped digits model), inversion settings (``space`` w or w+, ``steps``; the loss is
    pixel MSE on edge maps), images optimised together, and whether existing outputs are redone."""

    weights: str = DEFAULT_GENERATOR
    config: InvertConfig = field(default_factory=lambda: InvertConfig(space="w+", steps=300, loss="mse"))
    batch_size: int = 8
    overwrite: bool = False

    def validate(self) -> None:
        if self.config.space not in ("w", "w+", "z"):
            raise UsageError(f"--space {self.config.space!r}: expected w, w+ or z")
        if self.config.loss != "mse":
            raise UsageError("sketch2image matches edge maps by pixel MSE (the loss is not selectable)")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        self.config.validate()


def read_sketch(rgb: Tensor, resolution: int, source: str = "sketch") -> Tensor:
    """A sketch image ``(3, H, W)`` in [0, 1] -> binary strokes ``(1, 1, R, R)`` (1 = line).

    Light-background drawings (mean luminance above 0.5) are inverted; the drawing is resized (area) to the square
    resolution and thresholded at 0.5 after a max-normalisation, so thin lines survive the downscaling.
    Raises :class:`InputError` for a sketch without strokes.
    """
    grey = rgb.float().mean(0, keepdim=True)[None]
    if float(grey.mean()) > 0.5:
        grey = 1.0 - grey
    small = F.interpolate(grey, size=(resolution, resolution), mode="area")
    top = float(small.max())
    if top < 0.05:
        raise InputError(f"{source}: the sketch is empty (no strokes found); draw lines on a plain background")
    return (small / top > 0.5).float()


def sketch_paths(out_dir: Union[str, Path], stem: str) -> Dict[str, Path]:
    d = Path(out_dir)
    return {"image": d / f"{stem}.png", "latent": d / f"{stem}.latent.safetensors",
            "compare": d / f"{stem}.compare.png", "json": d / f"{stem}.json"}


def edges_rgb(x01: Tensor) -> Tensor:
    """The inversion's ``degrade``: images ``(B, 3, R, R)`` in [0, 1] -> their soft edge maps as 3 channels."""
    return soft_edges(x01).expand(-1, 3, -1, -1)


def run_sketch2image(job: SketchJob, inputs: Sequence[str], out_dir: Union[str, Path], *, runtime: Any,
                     output: Optional[str] = None, progress: Optional[ProgressFn] = None,
                     max_pixels: Optional[int] = None) -> Any:
    """Run every sketch (see the module docstring); ``output`` names the image of a single input instead of
    ``out_dir/<stem>.png``. Returns a :class:`~imgforge.batch.BatchResult`."""
    from ..batch import BatchResult, ItemResult

    job.validate()
    if output is not None and len(inputs) != 1:
        raise UsageError("-o names one output; use --out-dir for several sketches")
    G, _ = load_generator_for(job.weights, runtime.device, progress)
    R = G.img_resolution
    result = BatchResult()
    todo: List[Tuple[int, str, Tensor, Dict[str, Path]]] = []
    for idx, src in enumerate(inputs):
        stem = InputItem(src).stem
        paths = sketch_paths(out_dir if output is None else Path(output).parent, stem if output is None
                             else Path(output).stem)
        if output is not None:
            paths["image"] = Path(output)
        if paths["image"].exists() and not job.overwrite:
            result.items.append(ItemResult(src, str(paths["image"]), "skipped"))
            continue
        try:
            sketch = read_sketch(load_image(src, max_pixels=max_pixels).rgb, R, src)
        except ImgforgeError as exc:
            result.items.append(ItemResult(src, None, "failed", str(exc)))
            continue
        todo.append((idx, src, sketch, paths))
    if not todo:
        return result
    cfg = job.config
    inv = Inverter(G, cfg, runtime=runtime)
    up = max(1, 128 // R)
    for start in range(0, len(todo), job.batch_size):
        chunk = todo[start:start + job.batch_size]
        target = torch.cat([s for _, _, s, _ in chunk]).expand(-1, 3, -1, -1)
        res = inv.run(target, degrade=edges_rgb, seeds=[cfg.seed + i for i, _, _, _ in chunk], progress=progress,
                      task=f"sketch2image {Path(chunk[0][1]).name}"[:60])
        edges = soft_edges(res.images)
        iou = edge_iou(edges, target[:, :1])
        for j, (_, src, sketch, paths) in enumerate(chunk):
            save_image(res.images[j], paths["image"])
            save_latent(paths["latent"], res.item(j), {"weights": job.weights, "source": Path(src).name})
            strip = side_by_side(sketch[0].expand(3, -1, -1), edges[j].expand(3, -1, -1), res.images[j])
            save_image(upscale_nearest(strip, up), paths["compare"])
            info = {"input": src, "weights": job.weights, "space": cfg.space, "steps": res.steps,
                    "seconds": round(res.seconds, 3), "edge_iou": round(float(iou[j]), 4),
                    "edge_mse": round(float(res.loss[j]), 6), "resolution": R}
            atomic_write_text(paths["json"], json.dumps(info, indent=2) + "\n")
            result.items.append(ItemResult(src, str(paths["image"]), "ok", None, res.seconds / len(chunk),
                                           {"edge_iou": float(iou[j])}))
    return result
