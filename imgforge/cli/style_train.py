"""``imgforge fast-style train`` and ``imgforge adain train``: train the feed-forward style networks.

Both resume automatically: run the same command again after an interruption (Ctrl-C, SIGTERM, a crash, kill -9) and
training continues from the last checkpoint in ``--run-dir`` with exactly the losses an uninterrupted run would have
had. ``--precision`` (global) picks bf16 autocast where the device has it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..errors import UsageError
from ..validate import check_output_dir
from .common import RichProgress, get_globals

FAST_HELP = """Train a fast-style network for one style image (Johnson et al.; defaults as pytorch/examples).

Examples:

  imgforge fast-style train --style starry.jpg --content-dir photos/ --run-dir runs/starry

  imgforge --precision fp32 fast-style train --style scream.jpg --content-dir coco/ --image-size 192 --steps 2000 \\
      --checkpoint-every 200 --vgg vgg16

Then: imgforge stylize photo.jpg --method fast --model runs/starry/model.safetensors -o out.png
"""

ADAIN_HELP = """Train an AdaIN decoder for an encoder (Huang & Belongie; defaults as naoto0804/pytorch-AdaIN).

Examples:

  imgforge adain train --content-dir photos/ --style-dir paintings/ --run-dir runs/adain

  imgforge adain train --content-dir coco/ --style-dir wikiart/ --vgg vgg_normalised.pth --steps 20000

Then: imgforge stylize photo.jpg --method adain --style painting.jpg --decoder runs/adain/decoder.safetensors
"""

fast_app = typer.Typer(help="Fast feed-forward style networks (TransformerNet).", no_args_is_help=True)
adain_app = typer.Typer(help="AdaIN decoders (arbitrary style transfer).", no_args_is_help=True)

ContentDirOpt = Annotated[List[str], typer.Option("--content-dir", help="Folder of content training images (repeat for several).")]
RunDirOpt = Annotated[Optional[Path], typer.Option("--run-dir", help="Run folder: checkpoint, losses, samples, model (resumed when it has a checkpoint).")]
VggOpt = Annotated[Optional[str], typer.Option("--vgg", help="Loss network / encoder: weights name or file (VGG-16/19, vgg_normalised); default: the published one if present, else the embedded encoder.")]
StepsOpt = Annotated[Optional[int], typer.Option("--steps", min=1, help="Optimisation steps (overrides --epochs).")]


def _runtime(ctx: typer.Context) -> tuple:
    g = get_globals(ctx)
    return g.runtime("training"), g


def _seed(g, default: int) -> int:  # type: ignore[no-untyped-def]
    return default if g.seed is None else int(g.seed)


def _finish(progress: RichProgress, run: Path, what: str, quiet: bool) -> None:
    from ..progress import ProgressEvent

    if not quiet:
        progress(ProgressEvent(task="done", message=f"done: {what} in {run}"))


@fast_app.command("train", help=FAST_HELP, no_args_is_help=True)
def fast_train(
    ctx: typer.Context,
    style: Annotated[str, typer.Option("--style", "-s", help="The style image.")],
    content_dir: ContentDirOpt = None,  # type: ignore[assignment]
    run_dir: RunDirOpt = None,
    vgg: VggOpt = None,
    image_size: Annotated[int, typer.Option("--image-size", help="Training crop side in pixels.")] = 256,
    resize: Annotated[Optional[int], typer.Option("--resize", help="Shorter side before cropping (default: --image-size).")] = None,
    crop: Annotated[str, typer.Option("--crop", help="center (reference) or random (with flips).")] = "center",
    style_size: Annotated[Optional[int], typer.Option("--style-size", help="Long side of the style image (default: its own size).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 2,
    steps: StepsOpt = None,
    content_weight: Annotated[float, typer.Option("--content-weight")] = 1e5,
    style_weight: Annotated[float, typer.Option("--style-weight")] = 1e10,
    style_layers: Annotated[str, typer.Option("--style-layers")] = "relu1_2,relu2_2,relu3_3,relu4_3",
    content_layer: Annotated[str, typer.Option("--content-layer")] = "relu2_2",
    shuffle: Annotated[bool, typer.Option("--shuffle/--no-shuffle", help="Shuffle the images every epoch (reference: no).")] = False,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints, model exports and samples.")] = 2000,
    log_every: Annotated[int, typer.Option("--log-every", min=1)] = 500,
    sample: Annotated[Optional[str], typer.Option("--sample", help="Image stylised at every checkpoint (default: the first content image).")] = None,
) -> None:
    from ..training.fast_style import FastStyleTrainConfig, train_fast_style

    rt, g = _runtime(ctx)
    if not content_dir:
        raise UsageError("give --content-dir (a folder of training images)")
    run = run_dir or Path("runs") / f"fast-{Path(style).stem}"
    check_output_dir(run, "--run-dir")
    cfg = FastStyleTrainConfig(
        style=style, content_dirs=tuple(content_dir), run_dir=str(run), vgg=vgg, image_size=image_size, resize=resize,
        crop=crop, style_size=style_size, batch_size=batch_size, lr=lr, epochs=epochs, steps=steps,
        content_weight=content_weight, style_weight=style_weight,
        style_layers=tuple(x.strip() for x in style_layers.split(",") if x.strip()), content_layer=content_layer,
        shuffle=shuffle, seed=_seed(g, 42), checkpoint_every=checkpoint_every, log_every=log_every,
        sample=sample, device=str(rt.device),
    )
    with RichProgress(quiet=g.quiet) as progress:
        train_fast_style(cfg, runtime=rt, progress=progress)
        _finish(progress, run, "model.safetensors", g.quiet)


@adain_app.command("train", help=ADAIN_HELP, no_args_is_help=True)
def adain_train(
    ctx: typer.Context,
    content_dir: ContentDirOpt = None,  # type: ignore[assignment]
    style_dir: Annotated[List[str], typer.Option("--style-dir", help="Folder of style training images (repeat for several).")] = None,  # type: ignore[assignment]
    run_dir: RunDirOpt = None,
    vgg: VggOpt = None,
    image_size: Annotated[int, typer.Option("--image-size", help="Random crop side in pixels.")] = 256,
    resize: Annotated[int, typer.Option("--resize", help="Images are resized to this square first.")] = 512,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    lr: Annotated[float, typer.Option("--lr")] = 1e-4,
    lr_decay: Annotated[float, typer.Option("--lr-decay")] = 5e-5,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Iterations (reference max_iter).")] = 160000,
    content_weight: Annotated[float, typer.Option("--content-weight")] = 1.0,
    style_weight: Annotated[float, typer.Option("--style-weight")] = 10.0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints, decoder exports and samples.")] = 10000,
    log_every: Annotated[int, typer.Option("--log-every", min=1)] = 100,
    init_decoder: Annotated[Optional[str], typer.Option("--init-decoder", help="Start from this decoder (name or file) instead of a random one, e.g. to fine-tune decoder.pth.")] = None,
    sample_content: Annotated[Optional[str], typer.Option("--sample-content")] = None,
    sample_style: Annotated[Optional[str], typer.Option("--sample-style")] = None,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", min=0, help="Learning-rate warm-up steps (not in the reference; use with --init-decoder).")] = 0,
) -> None:
    from ..training.adain import AdaINTrainConfig, train_adain

    rt, g = _runtime(ctx)
    if not content_dir or not style_dir:
        raise UsageError("give --content-dir and --style-dir (folders of training images)")
    run = run_dir or Path("runs") / "adain"
    check_output_dir(run, "--run-dir")
    cfg = AdaINTrainConfig(
        content_dirs=tuple(content_dir), style_dirs=tuple(style_dir), run_dir=str(run), vgg=vgg,
        image_size=image_size, resize=resize, batch_size=batch_size, lr=lr, lr_decay=lr_decay, steps=steps,
        content_weight=content_weight, style_weight=style_weight, seed=_seed(g, 0),
        checkpoint_every=checkpoint_every, log_every=log_every, sample_content=sample_content,
        sample_style=sample_style, init_decoder=init_decoder, warmup_steps=warmup_steps, device=str(rt.device),
    )
    with RichProgress(quiet=g.quiet) as progress:
        train_adain(cfg, runtime=rt, progress=progress)
        _finish(progress, run, "decoder.safetensors", g.quiet)


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 20


def register(app: typer.Typer) -> None:
    app.add_typer(fast_app, name="fast-style", help="Train fast feed-forward style networks (fast-style train).")
    app.add_typer(adain_app, name="adain", help="Train AdaIN decoders (adain train).")
