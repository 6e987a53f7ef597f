"""``imgforge variation``: noise realisations of one StyleGAN image and their per-pixel standard deviation."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..jobs.generate import DEFAULT_GENERATOR
from ..jobs.variation import VariationJob, run_variation
from ..progress import ProgressEvent
from .common import RichProgress, get_globals

VARIATION_HELP = f"""What StyleGAN's noise inputs change (the StyleGAN paper's Figure 4): one image (z from --seed), --n
realisations of the per-layer noise, and the per-pixel standard deviation over them. Writes one picture: the image
with the stored noise | the first --show realisations | the standard-deviation map (white = the largest).
Default generator: the shipped digits model {DEFAULT_GENERATOR}.

Examples:

  imgforge variation --seed 7 --n 100 -o variation.png

  imgforge variation --weights stylegan2-ffhq-256 --seed 3 --noise-layers fine -o fine_only.png

  imgforge variation --seed 7 --noise-layers none -o none.png      (the standard deviation is zero everywhere)
"""


def variation(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("-o", "--output", help="Output picture.")] = "variation.png",
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help=f"Generator name or file (default {DEFAULT_GENERATOR}).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of z (NVIDIA's seed convention, as generate).")] = 0,
    n: Annotated[int, typer.Option("--n", help="Noise realisations.")] = 100,
    show: Annotated[int, typer.Option("--show", help="Realisations shown in the picture.")] = 4,
    noise_layers: Annotated[str, typer.Option("--noise-layers", help="Layers that get noise: all | none | fine | coarse | A-B.")] = "all",
    noise_seed: Annotated[int, typer.Option("--noise-seed", help="Seed of the first realisation (then +1, +2, ...).")] = 0,
    trunc: Annotated[float, typer.Option("--trunc", help="Truncation psi.")] = 1.0,
) -> None:
    g = get_globals(ctx)
    job = VariationJob(output=output, weights=weights, seed=seed, n=n, show=show, noise_layers=noise_layers,
                       noise_seed=noise_seed, trunc=trunc)
    with RichProgress(quiet=g.quiet) as progress:
        res = run_variation(job, runtime=g.runtime("sampling"), progress=progress)
        progress(ProgressEvent(task="done", message=f"wrote {res.path} (per-pixel std: max {res.max_std:.4f}, "
                                                     f"mean {res.mean_std:.4f})"))


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 42


def register(app: typer.Typer) -> None:
    app.command("variation", help=VARIATION_HELP)(variation)
