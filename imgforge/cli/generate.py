"""``imgforge generate``: StyleGAN2 images from seeds or saved latents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..jobs.generate import DEFAULT_GENERATOR, NOISE_MODES, GenerateJob, parse_seeds, run_generate
from ..runtime import seed_everything, set_threads_from_env
from .common import ClassOpt, RichProgress, get_globals

GENERATE_HELP = f"""Generate images with a StyleGAN2 generator (default: the shipped digits model {DEFAULT_GENERATOR}).

Seeds map to z as in NVIDIA's stylegan2-ada-pytorch (z = numpy RandomState(seed).randn(z_dim)), so a seed gives
the same image there and here. Each image is written with its latents next to it (seed0007.png +
seed0007.safetensors holding z and w), which --z-file / --w-file read back.

Examples:

  imgforge generate --seeds 0-15 --grid digits.png

  imgforge generate --weights stylegan2-ffhq-256 --seeds 1,5,9 --trunc 0.7 --out-dir faces/

  imgforge generate --w-file faces/seed0005.safetensors --noise-mode none --out-dir again/

  imgforge generate --seeds 3 --noise-layers coarse --out-dir coarse_noise/   (noise only in the coarse layers)
"""


def generate(
    ctx: typer.Context,
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help=f"Generator: a name from `imgforge weights list` or a .pkl/.pt/.safetensors file (default {DEFAULT_GENERATOR}).")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Seeds: ranges and lists, e.g. 0-15 or 1,5,9 (default 0-15 when no latent file is given).")] = None,
    z_file: Annotated[Optional[Path], typer.Option("--z-file", help="z latents: a .safetensors written by generate (tensor 'z'), or .npy/.npz (N, z_dim).")] = None,
    w_file: Annotated[Optional[Path], typer.Option("--w-file", help="w latents: a .safetensors written by generate (tensor 'w'), or .npy/.npz (N, w_dim) / (N, num_ws, w_dim).")] = None,
    trunc: Annotated[float, typer.Option("--trunc", help="Truncation psi (1 = none; 0.7 trades variety for quality).")] = 1.0,
    trunc_cutoff: Annotated[Optional[int], typer.Option("--trunc-cutoff", min=0, help="Truncate only the first N layers' ws.")] = None,
    noise_mode: Annotated[str, typer.Option("--noise-mode", help=f"Per-pixel noise: {' | '.join(NOISE_MODES)} (random is seeded by the image's seed).")] = "const",
    noise_layers: Annotated[Optional[str], typer.Option("--noise-layers", help="Which synthesis layers get random noise, the others zero: all | none | fine | coarse | A-B (noise-layer indices); overrides --noise-mode.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="Folder for the images and their latents (default ./generated unless only --grid is given).")] = None,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="Also write all images as one grid picture (e.g. grid.png).")] = None,
    grid_cols: Annotated[Optional[int], typer.Option("--grid-cols", min=1, help="Columns of the grid (default: square).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")] = 16,
    class_label: ClassOpt = None,
    chain: Annotated[Optional[Path], typer.Option("--chain", help="Multi-scale generators (gan train --arch lapgan|progan|msggan): also write every scale of each image as one picture (rows: images; columns: scales, coarse to fine; LAPGAN's generation chain).")] = None,
) -> None:
    g = get_globals(ctx)
    seed_everything(g.seed)
    set_threads_from_env()
    if seeds is not None and (z_file is not None or w_file is not None) or (z_file is not None and w_file is not None):
        raise UsageError("give only one of --seeds, --z-file, --w-file")
    seed_list = tuple(parse_seeds(seeds if seeds is not None else "0-15")) if z_file is None and w_file is None else ()
    if out_dir is None and grid is None and chain is None:
        out_dir = Path("generated")
    job = GenerateJob(weights=weights, seeds=seed_list, z_file=str(z_file) if z_file else None,
                      w_file=str(w_file) if w_file else None, trunc=trunc, trunc_cutoff=trunc_cutoff,
                      noise_mode=noise_mode, noise_layers=noise_layers, batch_size=batch_size, out_dir=str(out_dir) if out_dir else None,
                      grid=str(grid) if grid else None, grid_cols=grid_cols, seed=g.seed,
                      class_label=class_label, chain=str(chain) if chain else None)
    rt = g.runtime("sampling")
    with RichProgress(quiet=g.quiet) as progress:
        res = run_generate(job, runtime=rt, progress=progress)
        if not g.quiet:
            where = []
            if res.images:
                where.append(f"{len(res.images)} images + latents in {out_dir}")
            if res.grid is not None:
                where.append(f"grid {res.grid}")
            if res.chain is not None:
                where.append(f"scales {res.chain}")
            from ..progress import ProgressEvent

            progress(ProgressEvent(task="done", message="wrote " + ", ".join(where)))


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 40


def register(app: typer.Typer) -> None:
    app.command("generate", help=GENERATE_HELP)(generate)
