"""The ``variation`` job: what StyleGAN's noise inputs change (Karras et al. 2019, Figure 4).

One latent (from ``seed``), ``n`` realisations of the per-layer noise (seeded ``noise_seed + i``, on the layers
``noise_layers`` selects, zero elsewhere), and the per-pixel standard deviation of the images over the realisations.
Writes one picture: the image with the generator's stored (constant) noise, the first realisations, and the
standard-deviation map (black = no variation; scaled so that white is the largest deviation, which is reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..errors import UsageError
from ..generator_api import load_generator_for
from ..io import save_image
from ..methods.noise_control import layered_noise, noise_layer_mask, pixel_std
from ..models.protocols import MAX_SEED, z_from_seeds
from ..progress import ProgressEvent, ProgressFn, emit
from ..reports import make_grid, upscale_nearest
from ..runtime import Runtime

__all__ = ["VariationJob", "VariationResult", "run_variation"]


@dataclass(frozen=True)
class VariationJob:
    """weights (None: the shipped digits model), seed of z, number of noise realisations ``n``, how many are shown,
    the layers that get noise, the first noise seed, the output picture, truncation psi, images per pass."""

    output: str
    weights: Optional[str] = None
    seed: int = 0
    n: int = 100
    show: int = 4
    noise_layers: str = "all"
    noise_seed: int = 0
    trunc: float = 1.0
    batch_size: int = 25

    def validate(self) -> None:
        if not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        if not 2 <= self.n <= 10_000:
            raise UsageError(f"--n must be between 2 and 10000 realisations, got {self.n}")
        if self.show < 0:
            raise UsageError(f"--show must be >= 0, got {self.show}")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be >= 1")
        from ..io import format_for

        format_for(self.output)


@dataclass(frozen=True)
class VariationResult:
    path: Path
    max_std: float
    mean_std: float


def run_variation(job: VariationJob, *, runtime: Optional[Runtime] = None,
                  progress: Optional[ProgressFn] = None) -> VariationResult:
    """Render the realisations and write the picture (see the module docstring)."""
    job.validate()
    rt = runtime or Runtime(device=torch.device("cpu"), dtype=None, channels_last=False)
    G, _ = load_generator_for(job.weights, rt.device, progress)
    G.eval()
    buffers = G.noise_buffers()
    if not buffers:
        raise UsageError("this generator has no noise inputs (only StyleGAN generators have them)")
    noise_layer_mask([int(b.shape[-1]) for b in buffers], job.noise_layers)
    z = z_from_seeds([job.seed], G.z_dim).to(rt.device)
    imgs = []
    with torch.inference_mode():
        ws = G.mapping(z, truncation_psi=job.trunc)
        base = G.synthesis(ws, noise_mode="const")
        for start in range(0, job.n, job.batch_size):
            k = min(job.batch_size, job.n - start)
            gens = [torch.Generator().manual_seed(job.noise_seed + start + i) for i in range(k)]
            noise = layered_noise(buffers, job.noise_layers, gens, rt.device)
            imgs.append(G.synthesis(ws.expand(k, -1, -1), noise=noise).float().cpu())
            emit(progress, ProgressEvent("variation", start + k, job.n, unit="img"))
    stack = ((torch.cat(imgs).clamp(-1, 1) + 1) / 2)
    std = pixel_std(stack)
    top = float(std.max())
    std_img = (std / top if top > 0 else std).clamp(0, 1).expand(3, -1, -1)
    tiles = [((base[0].float().cpu().clamp(-1, 1) + 1) / 2)] + list(stack[: job.show]) + [std_img]
    grid = make_grid(torch.stack(tiles), cols=len(tiles))
    factor = max(1, 128 // int(stack.shape[-1]))  # small generators: enlarged for viewing (pixel repetition)
    path = save_image(upscale_nearest(grid, factor) if factor > 1 else grid, job.output)
    return VariationResult(path, top, float(std.mean()))
