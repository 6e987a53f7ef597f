"""``imgforge sketch2image``: line drawings to images through a generator's prior (inversion on edge maps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..jobs.sketch import SketchJob, run_sketch2image
from ..methods.invert import InvertConfig
from .common import JsonOpt, MaxPixelsOpt, OverwriteOpt, RichProgress, get_globals, report_batch

SKETCH_HELP = """Turn sketches into images the generator can make: the latent is optimised so that the edge map of
the generated image matches the strokes, and the generator's prior fills in the rest (default generator: the shipped
digits model). Sketches may be light lines on a dark background or dark lines on paper. Writes per sketch the image,
its latent (<stem>.latent.safetensors, usable by morph/edit), a comparison sketch | edges of the result | result
(<stem>.compare.png) and <stem>.json with the edge IoU.

Examples:

  imgforge sketch2image my_seven.png -o seven.png

  imgforge sketch2image sketches/ --space w --steps 500 --out-dir from_sketches/
"""


def sketch2image(
    ctx: typer.Context,
    sketches: Annotated[List[str], typer.Argument(help="Sketch images, folders or globs.", show_default=False)] = None,  # type: ignore[assignment]
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="Generator name or file (default: the shipped digits model).")] = None,
    space: Annotated[str, typer.Option("--space", help="Latent space to optimise: w | w+ | z.")] = "w+",
    steps: Annotated[int, typer.Option("--steps", min=1, help="Adam steps.")] = 300,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 0.1,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Sketches optimised together.")] = 8,
    output: Annotated[Optional[str], typer.Option("-o", "--output", help="Output image (one sketch).")] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs (several sketches).")] = Path("sketch2image"),
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    max_pixels: MaxPixelsOpt = None,
) -> None:
    from ..batch import BatchResult, ItemResult
    from ..io import expand_inputs
    from ..runtime import seed_everything

    g = get_globals(ctx)
    items = expand_inputs(sketches or [])
    if not items:
        raise typer.BadParameter("give at least one sketch", param_hint="SKETCHES")
    cfg = InvertConfig(space=space, steps=steps, lr=lr, loss="mse", seed=g.seed if g.seed is not None else 303)
    job = SketchJob(config=cfg, batch_size=batch_size, overwrite=overwrite, **({"weights": weights} if weights else {}))
    seed_everything(g.seed)
    with RichProgress(quiet=g.quiet) as progress:
        bad = [ItemResult(it.path, None, "failed", it.error) for it in items if it.error]
        res = run_sketch2image(job, [it.path for it in items if not it.error], out_dir, output=output,
                               runtime=g.runtime("optimisation"), progress=progress, max_pixels=max_pixels)
    code = report_batch(BatchResult(items=bad + res.items), as_json=json_out, quiet=g.quiet)
    if code:
        raise typer.Exit(code)


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 58


def register(app: typer.Typer) -> None:
    app.command("sketch2image", help=SKETCH_HELP, no_args_is_help=True)(sketch2image)
