"""``imgforge stylegan ...``: StyleGAN2 training (``train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..validate import check_output_dir, check_output_file
from ..runtime import set_threads_from_env
from ..training.augment import DEFAULT_OPS
from ..training.loop import dist_info
from ..training.stylegan2 import AUGMENT_MODES, LOSSES, StyleGAN2TrainConfig, train_stylegan2
from .common import (
    CheckpointEveryOpt, LogEveryOpt, LoopResumeOpt, RichProgress, SampleEveryOpt, get_globals, loop_config,
)

#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 60

app = typer.Typer(help="StyleGAN2: train on an image folder.", no_args_is_help=True)

TRAIN_HELP = """Train a StyleGAN2 on a folder of images (non-saturating logistic loss with lazy R1, EMA generator,
style mixing; optional path-length regularisation and ADA augmentation; lsgan / wgan-gp / hinge losses).

The run folder holds checkpoint.pt (run the same command again to resume exactly, also after kill -9),
losses.jsonl, samples/step_*.png and, at the end or on Ctrl-C, generator.safetensors for `imgforge generate
--weights RUN/generator.safetensors`. Multi-process: torchrun --nproc_per_node N -m imgforge stylegan train ...

Examples:

  imgforge stylegan train digits/ --resolution 32 --steps 2000 --run-dir runs/digits

  imgforge --seed 1 stylegan train faces/ --resolution 64 --augment ada --pl-weight 2 --mirror

  imgforge stylegan train shapes/ --resolution 16 --loss hinge --steps 300 --sample-every 100
"""

_D = StyleGAN2TrainConfig()


@app.command("train", help=TRAIN_HELP, no_args_is_help=True)
def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Folder of training images (searched recursively).", show_default=False)],
    resolution: Annotated[int, typer.Option("--resolution", help="Image side: 8, 16, 32, 64, 128, ... (images are centre-cropped and resized).")] = 32,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Folder of the run (default runs/stylegan2-<data folder name>).")] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Total optimisation steps (each sees --batch-size real images).")] = 5000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Global batch size.")] = _D.batch_size,
    loss: Annotated[str, typer.Option("--loss", help=f"GAN loss: {' | '.join(LOSSES)}.")] = _D.loss,
    r1_gamma: Annotated[float, typer.Option("--r1-gamma", min=0.0, help="Lazy R1 weight (0: off; not used with wgan-gp).")] = _D.r1_gamma,
    r1_every: Annotated[int, typer.Option("--r1-every", min=1, help="R1 interval in steps.")] = _D.r1_every,
    gp_lambda: Annotated[float, typer.Option("--gp-lambda", min=0.0, help="Gradient-penalty weight of wgan-gp.")] = _D.gp_lambda,
    mixing_prob: Annotated[float, typer.Option("--mixing-prob", min=0.0, max=1.0, help="Style-mixing probability.")] = _D.mixing_prob,
    pl_weight: Annotated[float, typer.Option("--pl-weight", min=0.0, help="Path-length regularisation weight (0: off; 2 as in the paper).")] = _D.pl_weight,
    ms_weight: Annotated[float, typer.Option("--ms-weight", min=0.0, help="Mode-seeking regularisation weight against mode collapse (0: off; 1 as in MSGAN).")] = _D.ms_weight,
    mbstd_group: Annotated[int, typer.Option("--mbstd-group", min=1, help="Minibatch-stddev group size of D.")] = _D.mbstd_group,
    augment: Annotated[str, typer.Option("--augment", help=f"Discriminator augmentation: {' | '.join(AUGMENT_MODES)} (ada: adaptive probability).")] = _D.augment,
    augment_p: Annotated[float, typer.Option("--augment-p", min=0.0, max=1.0, help="Initial (ada) or fixed augmentation probability.")] = _D.augment_p,
    ada_target: Annotated[float, typer.Option("--ada-target", help="ADA target of E[sign(D(real))].")] = _D.ada_target,
    ada_kimg: Annotated[float, typer.Option("--ada-kimg", min=0.001, help="ADA speed: thousands of images for p to change by 1.")] = _D.ada_kimg,
    augment_ops: Annotated[str, typer.Option("--augment-ops", help="Comma-separated augmentations (xflip, rotate90, translate, scale, rotate, aniso, brightness, contrast, saturation, cutout).")] = ",".join(DEFAULT_OPS),
    mirror: Annotated[bool, typer.Option("--mirror", help="Also train on left-right mirrored images.")] = False,
    z_dim: Annotated[int, typer.Option("--z-dim", min=1, help="z size.")] = _D.z_dim,
    w_dim: Annotated[int, typer.Option("--w-dim", min=1, help="w size.")] = _D.w_dim,
    map_layers: Annotated[int, typer.Option("--map-layers", min=1, help="Mapping network depth.")] = _D.map_layers,
    channel_base: Annotated[int, typer.Option("--channel-base", min=4, help="Width at resolution r = min(channel_base / r, channel_max).")] = _D.channel_base,
    channel_max: Annotated[int, typer.Option("--channel-max", min=1, help="Maximum width.")] = _D.channel_max,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate of G and D.")] = _D.lr,
    ema_kimg: Annotated[Optional[float], typer.Option("--ema-kimg", min=0.0, help="EMA half-life in thousands of images (default batch*10/32).")] = None,
    checkpoint_every: CheckpointEveryOpt = 200,
    sample_every: SampleEveryOpt = 500,
    log_every: LogEveryOpt = 10,
    resume: LoopResumeOpt = True,
    export: Annotated[Optional[Path], typer.Option("--export", help="Also write the EMA generator to this .safetensors file.")] = None,
) -> None:
    g = get_globals(ctx)
    set_threads_from_env()
    device = g.runtime("fp32-training").device
    if export is not None and export.suffix != ".safetensors":
        raise UsageError(f"--export {export}: must end in .safetensors")
    ops = tuple(x.strip() for x in augment_ops.split(",") if x.strip())
    cfg = StyleGAN2TrainConfig(
        resolution=resolution, z_dim=z_dim, w_dim=w_dim, map_layers=map_layers, channel_base=channel_base,
        channel_max=channel_max, batch_size=batch_size, lr=lr, loss=loss, r1_gamma=r1_gamma, r1_every=r1_every,
        gp_lambda=gp_lambda, mixing_prob=mixing_prob, pl_weight=pl_weight, ms_weight=ms_weight, mbstd_group=mbstd_group, ema_kimg=ema_kimg, augment=augment,
        augment_p=augment_p, ada_target=ada_target, ada_kimg=ada_kimg, augment_ops=ops, mirror=mirror,
    ).validate()
    run = run_dir or Path("runs") / f"stylegan2-{data.resolve().name or 'data'}"
    check_output_dir(run, "--run-dir")
    if export is not None:
        check_output_file(export, "--export")
    if not resume and (run / "checkpoint.pt").exists() and dist_info().is_main:
        (run / "checkpoint.pt").unlink()
    loop = loop_config(run, steps, g, checkpoint_every, sample_every, log_every, resume)
    quiet = g.quiet or not dist_info().is_main
    with RichProgress(quiet=quiet) as progress:
        train_stylegan2(data, cfg, loop, device=device, export_to=export, progress=progress)
