"""``imgforge pix2pix ...`` and ``imgforge cyclegan ...``: apply published or trained generators, train, test.

Thin wrappers: options are parsed into the library's config objects (:class:`~imgforge.jobs.translate.
TranslateJob`, :class:`~imgforge.training.pix2pix.Pix2PixConfig`, :class:`~imgforge.training.cyclegan.
CycleGANConfig`) and the work is done by :mod:`imgforge.jobs.translate` and
:mod:`imgforge.training.translation_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Dict, Optional

import typer

from ..errors import UsageError
from ..runtime import seed_everything
from .common import (
    BatchArgs, Inputs, JsonOpt, MaxPixelsOpt, OutDirOpt, OutputOpt, OverwriteOpt, QualityOpt, RecursiveOpt,
    RichProgress, ShardOpt, get_globals, report_batch,
)

pix2pix_app = typer.Typer(help="pix2pix (paired image-to-image translation): apply, train, test.", no_args_is_help=True)
cyclegan_app = typer.Typer(help="CycleGAN (unpaired image-to-image translation): apply, train, test.", no_args_is_help=True)


def _help(summary: str, body: str, examples: list[str]) -> str:
    return "\n\n".join([summary, " ".join(body.split()), "Examples:\n\n" + "\n".join(f"  {e}" for e in examples)])


def _direction(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    norm = {"atob": "AtoB", "btoa": "BtoA"}.get(value.lower())
    if norm is None:
        raise UsageError(f"--direction {value!r}: expected AtoB or BtoA")
    return norm


def _runtime(g: Any, task: str = "inference") -> Any:
    from ..jobs.translate import translation_runtime
    from ..runtime import set_threads_from_env

    set_threads_from_env()  # IMGFORGE_THREADS
    return translation_runtime(g.device, g.precision, task)


# ---- shared option types ------------------------------------------------------------------------------------------

WeightsOpt = Annotated[str, typer.Option("--weights", "-w", help="Weights name (imgforge weights list), a .safetensors/.pth file, a training run folder, or a reference checkpoint folder.")]
EvalOpt = Annotated[bool, typer.Option("--eval", help="Running BatchNorm statistics and no dropout (deterministic). Default: as the reference's test.py, per-image batch statistics with dropout on (seed with --seed).")]
TileOpt = Annotated[Optional[int], typer.Option("--tile", min=0, help="Translate in tiles of this size (needs --eval); default: automatic above 2048x2048 pixels; 0: never.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Same-sized images per forward pass.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=0, help="DataLoader processes decoding the inputs.")]
NameOpt = Annotated[str, typer.Option("--name", help="Output name template for --out-dir: {stem} {name} {ext} {index} {method}.")]


def _apply(ctx: typer.Context, method: str, inputs: list[str], weights: str, direction: Optional[str], eval_mode: bool,
           aligned: bool, tile: Optional[int], batch_size: int, workers: int, output: Optional[str],
           out_dir: Optional[Path], name: str, overwrite: bool, quality: int, recursive: bool, shard: Optional[str],
           json_out: bool, max_pixels: Optional[int]) -> None:
    from ..jobs.translate import TranslateJob, run_translate

    g = get_globals(ctx)
    seed_everything(g.seed)
    d = _direction(direction)
    half = None
    if aligned:
        half = "B" if d == "BtoA" else "A"
    job = TranslateJob(weights=weights, method=method, direction=d, eval_mode=eval_mode, seed=g.seed, tile=tile,
                       batch_size=batch_size, workers=workers, half=half)
    args = BatchArgs(inputs or [], output, out_dir, name, overwrite, quality, recursive, shard, json_out, max_pixels)
    if not inputs:
        raise typer.BadParameter("give at least one input image, folder or glob", param_hint="INPUT")
    with RichProgress(quiet=g.quiet or json_out) as progress:
        result = run_translate(job, args.items(), args.namer(method=method), runtime=_runtime(g),
                               save=args.save_options(), progress=progress)
    code = report_batch(result, as_json=json_out, quiet=g.quiet)
    if code:
        raise typer.Exit(code)


@pix2pix_app.command("apply", no_args_is_help=True, help=_help(
    "Translate images with a pix2pix (or any reference-format) generator, at full resolution.",
    """Images are padded (reflection) to the generator's size multiple (256 for unet_256) and cropped back, tiled
    when large; the architecture is read from the weights. Existing outputs are skipped (--overwrite to redo).""",
    ["imgforge pix2pix apply labels/ --weights pix2pix-facades-label2photo --eval --out-dir photos/",
     "imgforge --seed 1 pix2pix apply map.png --weights runs/pix2pix-maps -o sat.png",
     "imgforge pix2pix apply facades/test --aligned --direction BtoA --weights runs/facades --out-dir out/ --shard 1/2"]))
def pix2pix_apply(
    ctx: typer.Context,
    inputs: Inputs = None,  # type: ignore[assignment]
    weights: WeightsOpt = ...,  # type: ignore[assignment]
    direction: Annotated[Optional[str], typer.Option("--direction", help="AtoB or BtoA: which half of an --aligned pair is the input.")] = None,
    eval_mode: EvalOpt = False,
    aligned: Annotated[bool, typer.Option("--aligned", help="Inputs are A|B pairs side by side (pix2pix datasets); translate the input half.")] = False,
    tile: TileOpt = None,
    batch_size: BatchOpt = 1,
    workers: WorkersOpt = 0,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    name: NameOpt = "{stem}_{method}.png",
    overwrite: OverwriteOpt = False,
    quality: QualityOpt = 95,
    recursive: RecursiveOpt = False,
    shard: ShardOpt = None,
    json_out: JsonOpt = False,
    max_pixels: MaxPixelsOpt = None,
) -> None:
    _apply(ctx, "pix2pix", inputs, weights, direction, eval_mode, aligned, tile, batch_size, workers, output, out_dir,
           name, overwrite, quality, recursive, shard, json_out, max_pixels)


@cyclegan_app.command("apply", no_args_is_help=True, help=_help(
    "Translate images with a CycleGAN generator, at full resolution.",
    """--direction BtoA uses G_B of a run or checkpoint folder, or the published reverse model of a name
    (cyclegan-horse2zebra -> cyclegan-zebra2horse). Images are padded to a multiple of 4 and cropped back.""",
    ["imgforge cyclegan apply horses/ --weights cyclegan-horse2zebra --out-dir zebras/",
     "imgforge cyclegan apply photo.jpg --weights runs/cyclegan-monet2photo --direction BtoA -o monet.png",
     "imgforge cyclegan apply 'imgs/*.jpg' --weights latest_net_G_A.pth --out-dir out/ --batch-size 4 --workers 2"]))
def cyclegan_apply(
    ctx: typer.Context,
    inputs: Inputs = None,  # type: ignore[assignment]
    weights: WeightsOpt = ...,  # type: ignore[assignment]
    direction: Annotated[Optional[str], typer.Option("--direction", help="AtoB (G_A, default) or BtoA (G_B).")] = None,
    eval_mode: EvalOpt = False,
    tile: TileOpt = None,
    batch_size: BatchOpt = 1,
    workers: WorkersOpt = 0,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    name: NameOpt = "{stem}_{method}.png",
    overwrite: OverwriteOpt = False,
    quality: QualityOpt = 95,
    recursive: RecursiveOpt = False,
    shard: ShardOpt = None,
    json_out: JsonOpt = False,
    max_pixels: MaxPixelsOpt = None,
) -> None:
    _apply(ctx, "cyclegan", inputs, weights, direction, eval_mode, False, tile, batch_size, workers, output, out_dir,
           name, overwrite, quality, recursive, shard, json_out, max_pixels)


# ---- train --------------------------------------------------------------------------------------------------------

RunDirOpt = Annotated[Optional[Path], typer.Option("--run-dir", "-o", help="Run folder (checkpoint, samples, index.html, exported generators); default runs/<method>-<data>.")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from the run folder's checkpoint when there is one (exact: same losses as an uninterrupted run); --no-resume starts over.")]
StepsOpt = Annotated[Optional[int], typer.Option("--steps", min=0, help="Stop after this many steps (default: the whole schedule, (epochs + epochs-decay) passes over the data).")]
EpochsOpt = Annotated[int, typer.Option("--epochs", min=0, help="Epochs at the initial learning rate (reference --n_epochs).")]
DecayOpt = Annotated[int, typer.Option("--epochs-decay", min=0, help="Epochs of linear decay to zero (reference --n_epochs_decay).")]
NetGOpt = Annotated[Optional[str], typer.Option("--netG", help="resnet_9blocks | resnet_6blocks | unet_256 | unet_128 (or resnet_<n>blocks, unet_<2^k>).")]
NetDOpt = Annotated[str, typer.Option("--netD", help="basic (70x70 PatchGAN) | n_layers | pixel.")]
NLayersOpt = Annotated[int, typer.Option("--n-layers-D", min=0, help="Layers of the n_layers discriminator.")]
NgfOpt = Annotated[int, typer.Option("--ngf", min=1, help="Generator width.")]
NdfOpt = Annotated[int, typer.Option("--ndf", min=1, help="Discriminator width.")]
NormOpt = Annotated[Optional[str], typer.Option("--norm", help="batch | instance | none.")]
DropoutOpt = Annotated[Optional[bool], typer.Option("--dropout/--no-dropout", help="Dropout in the generator.")]
GanOpt = Annotated[Optional[str], typer.Option("--gan-mode", help="vanilla | lsgan | wgan-gp | hinge.")]
LrOpt = Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate.")]
Beta1Opt = Annotated[float, typer.Option("--beta1", help="Adam beta1.")]
PolicyOpt = Annotated[str, typer.Option("--lr-policy", help="linear | step | cosine | constant.")]
BatchTrainOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Global batch size (split across torchrun processes).")]
LoadOpt = Annotated[int, typer.Option("--load-size", min=1, help="Resize to this size before cropping.")]
CropOpt = Annotated[int, typer.Option("--crop-size", min=1, help="Random crop size (the training resolution).")]
PreOpt = Annotated[str, typer.Option("--preprocess", help="resize_and_crop | crop | scale_width | scale_width_and_crop | none.")]
FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Random horizontal flips.")]
CkptOpt = Annotated[int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints.")]
SampleOpt = Annotated[int, typer.Option("--sample-every", min=0, help="Steps between sample grids / exported generators (0: only at the end).")]
LogOpt = Annotated[int, typer.Option("--log-every", min=1, help="Steps between progress updates.")]
NcOpt = Annotated[int, typer.Option(min=1, max=3)]


def _run_dir(run_dir: Optional[Path], method: str, data: str) -> Path:
    if run_dir is not None:
        return run_dir
    label = Path(data).name or "data"
    return Path("runs") / f"{method}-{label.replace(' ', '_')}"


def _common_cfg(**kw: Any) -> Dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def _train(ctx: typer.Context, method: str, data: str, run_dir: Optional[Path], resume: bool, cfg: Any) -> None:
    from ..data.known import resolve_dataset
    from ..training.translation_run import train_cyclegan, train_pix2pix
    from ..training.loop import dist_info

    from ..validate import check_output_dir

    g = get_globals(ctx)
    check_output_dir(_run_dir(run_dir, method, data), "--run-dir")
    main = dist_info().is_main
    with RichProgress(quiet=g.quiet or not main) as progress:
        root = resolve_dataset(data, method, progress=progress)
        fn = train_pix2pix if method == "pix2pix" else train_cyclegan
        result = fn(root, _run_dir(run_dir, method, data), cfg, runtime=_runtime(g, "training"), precision=g.precision,
                    resume=resume, progress=progress, data_label=data)
    if main and not g.quiet:
        last = result.history[-1] if result.history else {}
        losses = "  ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "step")
        typer.echo(f"trained {method} for {int(last.get('step', 0))} steps; {losses}", err=True)
        for stem, path in result.exports.items():
            typer.echo(f"{stem}: {path}", err=True)
        typer.echo(f"results page: {result.page}", err=True)


@pix2pix_app.command("train", no_args_is_help=True, help=_help(
    "Train pix2pix on paired images (reference defaults: unet_256, batch norm, dropout, vanilla GAN, L1 x 100).",
    """DATA is a folder (train/ of side-by-side A|B images, or A/ + B/ folders with matching names) or a known
    dataset name (facades, maps, edges2shoes, edges2handbags, night2day, cityscapes: downloaded once into the
    cache). Interrupt it any time (Ctrl-C, SIGTERM, even kill -9): the same command resumes exactly from the last
    checkpoint. Multi-process: torchrun --nproc_per_node N -m imgforge pix2pix train ...""",
    ["imgforge pix2pix train facades --direction BtoA",
     "imgforge --seed 0 pix2pix train data/facades --direction BtoA --netG unet_128 --load-size 143 --crop-size 128 --steps 2000 -o runs/facades128",
     "torchrun --nproc_per_node 2 -m imgforge pix2pix train data/maps --batch-size 8 --norm instance"]))
def pix2pix_train(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Dataset folder or known dataset name.", show_default=False)],
    run_dir: RunDirOpt = None,
    resume: ResumeOpt = True,
    direction: Annotated[str, typer.Option("--direction", help="AtoB or BtoA (facades labels -> photo: BtoA).")] = "AtoB",
    steps: StepsOpt = None,
    epochs: EpochsOpt = 100,
    epochs_decay: DecayOpt = 100,
    netG: NetGOpt = None,
    netD: NetDOpt = "basic",
    n_layers_D: NLayersOpt = 3,
    ngf: NgfOpt = 64,
    ndf: NdfOpt = 64,
    norm: NormOpt = None,
    dropout: DropoutOpt = None,
    gan_mode: GanOpt = None,
    lambda_l1: Annotated[float, typer.Option("--lambda-l1", min=0.0, help="Weight of the L1 term.")] = 100.0,
    lr: LrOpt = 2e-4,
    beta1: Beta1Opt = 0.5,
    lr_policy: PolicyOpt = "linear",
    batch_size: BatchTrainOpt = 1,
    preprocess: PreOpt = "resize_and_crop",
    load_size: LoadOpt = 286,
    crop_size: CropOpt = 256,
    flip: FlipOpt = True,
    input_nc: Annotated[int, typer.Option("--input-nc", min=1, max=3, help="Input channels (1 = grey).")] = 3,
    output_nc: Annotated[int, typer.Option("--output-nc", min=1, max=3, help="Output channels (1 = grey).")] = 3,
    checkpoint_every: CkptOpt = 500,
    sample_every: SampleOpt = 200,
    log_every: LogOpt = 10,
) -> None:
    from ..training.pix2pix import Pix2PixConfig

    g = get_globals(ctx)
    cfg = Pix2PixConfig(**_common_cfg(
        netG=netG, netD=netD, n_layers_D=n_layers_D, ngf=ngf, ndf=ndf, norm=norm, dropout=dropout, gan_mode=gan_mode,
        lr=lr, beta1=beta1, lr_policy=lr_policy, n_epochs=epochs, n_epochs_decay=epochs_decay, steps=steps,
        batch_size=batch_size, preprocess=preprocess, load_size=load_size, crop_size=crop_size, flip=flip,
        input_nc=input_nc, output_nc=output_nc, seed=g.seed if g.seed is not None else 0,
        checkpoint_every=checkpoint_every, sample_every=sample_every, log_every=log_every,
        direction=_direction(direction), lambda_l1=lambda_l1))
    _train(ctx, "pix2pix", data, run_dir, resume, cfg)


@cyclegan_app.command("train", no_args_is_help=True, help=_help(
    "Train CycleGAN on unpaired images (reference defaults: resnet_9blocks, instance norm, lsgan, cycle 10, identity 0.5, pools of 50).",
    """DATA is a folder with trainA/ and trainB/ or a known dataset name (horse2zebra, apple2orange,
    summer2winter_yosemite, monet2photo, cezanne2photo, ukiyoe2photo, vangogh2photo, maps, facades,
    iphone2dslr_flower: downloaded once into the cache). The same command resumes an interrupted run exactly.""",
    ["imgforge cyclegan train horse2zebra",
     "imgforge --seed 0 cyclegan train data/monet2photo --steps 300 --load-size 72 --crop-size 64 --ngf 16 --ndf 16",
     "torchrun --nproc_per_node 2 -m imgforge cyclegan train data/maps --batch-size 2"]))
def cyclegan_train(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Dataset folder or known dataset name.", show_default=False)],
    run_dir: RunDirOpt = None,
    resume: ResumeOpt = True,
    steps: StepsOpt = None,
    epochs: EpochsOpt = 100,
    epochs_decay: DecayOpt = 100,
    netG: NetGOpt = None,
    netD: NetDOpt = "basic",
    n_layers_D: NLayersOpt = 3,
    ngf: NgfOpt = 64,
    ndf: NdfOpt = 64,
    norm: NormOpt = None,
    dropout: DropoutOpt = None,
    gan_mode: GanOpt = None,
    lambda_A: Annotated[float, typer.Option("--lambda-A", min=0.0, help="Weight of the A->B->A cycle loss.")] = 10.0,
    lambda_B: Annotated[float, typer.Option("--lambda-B", min=0.0, help="Weight of the B->A->B cycle loss.")] = 10.0,
    lambda_identity: Annotated[float, typer.Option("--lambda-identity", min=0.0, help="Identity loss weight (relative to the lambdas).")] = 0.5,
    pool_size: Annotated[int, typer.Option("--pool-size", min=0, help="Image history for the discriminators (0: off).")] = 50,
    serial_batches: Annotated[bool, typer.Option("--serial-batches", help="Pair B images in order instead of at random.")] = False,
    lr: LrOpt = 2e-4,
    beta1: Beta1Opt = 0.5,
    lr_policy: PolicyOpt = "linear",
    batch_size: BatchTrainOpt = 1,
    preprocess: PreOpt = "resize_and_crop",
    load_size: LoadOpt = 286,
    crop_size: CropOpt = 256,
    flip: FlipOpt = True,
    checkpoint_every: CkptOpt = 500,
    sample_every: SampleOpt = 200,
    log_every: LogOpt = 10,
) -> None:
    from ..training.cyclegan import CycleGANConfig

    g = get_globals(ctx)
    cfg = CycleGANConfig(**_common_cfg(
        netG=netG, netD=netD, n_layers_D=n_layers_D, ngf=ngf, ndf=ndf, norm=norm, dropout=dropout, gan_mode=gan_mode,
        lr=lr, beta1=beta1, lr_policy=lr_policy, n_epochs=epochs, n_epochs_decay=epochs_decay, steps=steps,
        batch_size=batch_size, preprocess=preprocess, load_size=load_size, crop_size=crop_size, flip=flip,
        seed=g.seed if g.seed is not None else 0, checkpoint_every=checkpoint_every, sample_every=sample_every,
        log_every=log_every, lambda_A=lambda_A, lambda_B=lambda_B, lambda_identity=lambda_identity,
        pool_size=pool_size, serial_batches=serial_batches))
    _train(ctx, "cyclegan", data, run_dir, resume, cfg)


# ---- test ---------------------------------------------------------------------------------------------------------

SizeOpt = Annotated[int, typer.Option("--size", min=0, help="Resize test images to SIZE x SIZE as the reference's test.py (256); 0 keeps the full resolution.")]
PhaseOpt = Annotated[str, typer.Option("--phase", help="Which split to run (test -> testA/testB or test/).")]
MaxOpt = Annotated[Optional[int], typer.Option("--max-images", min=1, help="Stop after this many images (default: all).")]
ResultsOpt = Annotated[Optional[Path], typer.Option("--out-dir", "-o", help="Results folder (index.html + images/); default results/<data>_<method>/<phase>_latest.")]


def _results_dir(out_dir: Optional[Path], method: str, data: str, phase: str) -> Path:
    from ..validate import check_output_dir

    if out_dir is None:
        out_dir = Path("results") / f"{(Path(data).name or 'data').replace(' ', '_')}_{method}" / f"{phase}_latest"
    check_output_dir(out_dir, "--out-dir")
    return out_dir


@cyclegan_app.command("test", no_args_is_help=True, help=_help(
    "Translate every test image both ways and write the reference-style results page (all images, not 50).",
    """Rows: real_A, fake_B = G_A(A), rec_A = G_B(fake_B), real_B, fake_A = G_B(B), rec_B = G_A(fake_A); A and B
    paired by index as the reference's test.py. --weights is a run folder (G_A + G_B) or checkpoint folder, or a
    G_A file/name with --weights-b for G_B.""",
    ["imgforge cyclegan test data/monet2photo --weights runs/cyclegan-monet2photo",
     "imgforge cyclegan test horse2zebra --weights cyclegan-horse2zebra --weights-b cyclegan-zebra2horse --size 0"]))
def cyclegan_test(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Dataset folder (testA/, testB/) or known name.", show_default=False)],
    weights: WeightsOpt = ...,  # type: ignore[assignment]
    weights_b: Annotated[Optional[str], typer.Option("--weights-b", help="The B->A generator when --weights is a single one.")] = None,
    out_dir: ResultsOpt = None,
    phase: PhaseOpt = "test",
    size: SizeOpt = 256,
    eval_mode: EvalOpt = False,
    max_images: MaxOpt = None,
) -> None:
    from ..data.known import resolve_dataset
    from ..jobs.translate import TestJob, run_cyclegan_test

    g = get_globals(ctx)
    seed_everything(g.seed)
    job = TestJob(weights, weights_b, phase, size, eval_mode, None, g.seed, max_images)
    with RichProgress(quiet=g.quiet) as progress:
        root = resolve_dataset(data, "cyclegan", progress=progress)
        page = run_cyclegan_test(job, root, _results_dir(out_dir, "cyclegan", data, phase), runtime=_runtime(g),
                                 progress=progress)
    if not g.quiet:
        typer.echo(f"results page: {page}", err=True)


@pix2pix_app.command("test", no_args_is_help=True, help=_help(
    "Translate every pair of a split and write the reference-style results page (real_A, fake_B, real_B).",
    """DATA holds <phase>/ of side-by-side pairs (or A/<phase> + B/<phase>). The direction defaults to the one the
    run was trained with.""",
    ["imgforge pix2pix test data/facades --weights runs/facades128 --size 128",
     "imgforge --seed 0 pix2pix test facades --weights pix2pix-facades-label2photo --direction BtoA --eval"]))
def pix2pix_test(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Dataset folder or known name.", show_default=False)],
    weights: WeightsOpt = ...,  # type: ignore[assignment]
    direction: Annotated[Optional[str], typer.Option("--direction", help="AtoB or BtoA (default: the run's).")] = None,
    out_dir: ResultsOpt = None,
    phase: PhaseOpt = "test",
    size: SizeOpt = 256,
    eval_mode: EvalOpt = False,
    max_images: MaxOpt = None,
) -> None:
    from ..data.known import resolve_dataset
    from ..jobs.translate import TestJob, run_pix2pix_test

    g = get_globals(ctx)
    seed_everything(g.seed)
    job = TestJob(weights, None, phase, size, eval_mode, _direction(direction), g.seed, max_images)
    with RichProgress(quiet=g.quiet) as progress:
        root = resolve_dataset(data, "pix2pix", progress=progress)
        page = run_pix2pix_test(job, root, _results_dir(out_dir, "pix2pix", data, phase), runtime=_runtime(g),
                                progress=progress)
    if not g.quiet:
        typer.echo(f"results page: {page}", err=True)


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 30


def register(app: typer.Typer) -> None:
    """Mount ``pix2pix`` and ``cyclegan`` on the main app."""
    app.add_typer(pix2pix_app, name="pix2pix")
    app.add_typer(cyclegan_app, name="cyclegan")
