"""The non-optimisation texture methods of ``imgforge texture``: Efros–Leung, image quilting and Perlin noise.

(``--method gatys`` stays in :func:`imgforge.jobs.stylize.run_texture`.) The sample is the first ``--style`` image,
downscaled so that its longer side is at most ``sample_size`` (patch methods compare every window of the sample, so
their cost grows with its area).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..io import load_image, save_image
from ..progress import ProgressFn

__all__ = ["PatchTextureJob", "run_patch_texture", "PATCH_METHODS"]

PATCH_METHODS = ("efros-leung", "quilting", "perlin")
#: pixels of output above which Efros–Leung (one pixel at a time) is refused: ~1 M pixel-steps take minutes
EFROS_LEUNG_MAX_PIXELS = 512 * 512


@dataclass(frozen=True)
class PatchTextureJob:
    """Options of the patch and procedural texture methods.

    Attributes:
        method: ``efros-leung``, ``quilting`` or ``perlin``.
        sample: the texture sample (not used by perlin).
        sample_size: longer side of the sample after downscaling (patch methods).
        window, epsilon: Efros–Leung neighbourhood side (odd) and candidate tolerance.
        block, overlap: quilting block side and overlap (default block // 6).
        scale, octaves, persistence, colour: Perlin lattice spacing (px), octaves, amplitude ratio, 3 channels.
        seed: random seed (None: 0).
    """

    method: str
    sample: Optional[str] = None
    sample_size: int = 64
    window: int = 11
    epsilon: float = 0.1
    block: int = 32
    overlap: Optional[int] = None
    scale: float = 64.0
    octaves: int = 4
    persistence: float = 0.5
    colour: bool = False
    seed: Optional[int] = None

    def validate(self, size: Tuple[int, int]) -> None:
        if self.method not in PATCH_METHODS:
            raise UsageError(f"--method {self.method!r}: expected gatys or one of {', '.join(PATCH_METHODS)}")
        if self.method != "perlin" and not self.sample:
            raise UsageError(f"--method {self.method} needs a texture sample: give it as --style")
        if self.sample_size < 8:
            raise UsageError(f"--sample-size must be at least 8 pixels, got {self.sample_size}")
        if self.method == "efros-leung" and size[0] * size[1] > EFROS_LEUNG_MAX_PIXELS:
            raise UsageError(f"--method efros-leung grows one pixel at a time: {size[1]}x{size[0]} is too large "
                             f"(at most {EFROS_LEUNG_MAX_PIXELS} pixels); use --method quilting for large textures")


def _sample(job: PatchTextureJob, max_pixels: Optional[int]) -> torch.Tensor:
    img = load_image(job.sample, max_pixels=max_pixels).rgb  # type: ignore[arg-type]
    h, w = img.shape[-2:]
    s = job.sample_size / max(h, w)
    if s < 1:
        img = F.interpolate(img[None], size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear",
                            align_corners=False, antialias=True)[0].clamp(0, 1)
    return img


def run_patch_texture(job: PatchTextureJob, output: str, size: Tuple[int, int], *, overwrite: bool = False,
                      quality: int = 95, max_pixels: Optional[int] = None,
                      progress: Optional[ProgressFn] = None) -> Path:
    """Synthesize a ``size = (H, W)`` texture with ``job.method`` and write it to ``output``."""
    from ..validate import check_output_file, check_output_size

    job.validate(size)
    if output != "-" and Path(output).exists() and not overwrite:
        raise UsageError(f"{output} exists; pass --overwrite to replace it")
    if output != "-":
        check_output_file(output, "-o")
    check_output_size(size[0], size[1], method=job.method, option=f"--width {size[1]} --height {size[0]}",
                      max_pixels=max_pixels)
    gen = torch.Generator().manual_seed(0 if job.seed is None else int(job.seed))
    h, w = size
    if job.method == "perlin":
        from ..methods.perlin import perlin

        out = perlin(h, w, scale=job.scale, octaves=job.octaves, persistence=job.persistence,
                     channels=3 if job.colour else 1, generator=gen)
        out = out.expand(3, -1, -1) if out.shape[0] == 1 else out
    elif job.method == "efros-leung":
        from ..methods.texture_patch import efros_leung

        out = efros_leung(_sample(job, max_pixels), h, w, window=job.window, epsilon=job.epsilon, generator=gen,
                          progress=progress)
    else:
        from ..methods.texture_patch import quilting

        out, _ = quilting(_sample(job, max_pixels), h, w, block=job.block, overlap=job.overlap, generator=gen,
                          progress=progress)
    return save_image(out.clamp(0, 1), output, quality=quality)
