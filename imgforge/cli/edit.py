"""GAN-prior editing commands: ``invert``, ``morph``, ``style-mix``, ``edit``, ``inpaint``, ``superres``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from ..errors import UsageError
from ..generator_api import DEFAULT_GENERATOR
from ..methods.invert import FITS, LOSSES, SPACES, InvertConfig
from ..progress import ProgressEvent
from ..validate import check_output_dir
from .common import ClassOpt, JsonOpt, MaxPixelsOpt, OverwriteOpt, RichProgress, get_globals, report_batch

_D = InvertConfig()

WeightsOpt = Annotated[str, typer.Option("--weights", "-w", help="Generator (StyleGAN2, or any z-space generator such as dcgan-mnist32): a name from `imgforge weights list` or a .pkl/.pt/.safetensors file.")]
SpaceOpt = Annotated[str, typer.Option("--space", help="Latent space to optimise: z | w | w+.")]
NoiseOpt = Annotated[bool, typer.Option("--noise/--no-noise", help="Also optimise the per-layer noise maps (regularised).")]
StepsOpt = Annotated[int, typer.Option("--steps", min=0, help="Adam steps of the inversion.")]
LossOpt = Annotated[str, typer.Option("--loss", help="mse | perceptual | mse+perceptual.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Peak learning rate (ramped up, then cosine ramped down).")]
EncoderOpt = Annotated[Optional[str], typer.Option("--encoder", help="Perceptual encoder (name or file); default: published VGG-16 if present, else the embedded encoder.")]
FitOpt = Annotated[str, typer.Option("--fit", help="How inputs become square: crop (centre) | pad | stretch; then an antialiased bicubic resize to the generator resolution.")]
AlignOpt = Annotated[Optional[str], typer.Option("--align", help="Registered alignment hook applied first (see imgforge.methods.invert.register_aligner).")]
MseWOpt = Annotated[float, typer.Option("--mse-weight", help="Weight of the pixel MSE term.")]
PercWOpt = Annotated[float, typer.Option("--perceptual-weight", help="Weight of the perceptual term.")]


def _config(ctx: typer.Context, space: str, steps: int, noise: bool, loss: str, lr: float,
            mse_weight: float = _D.mse_weight, perceptual_weight: float = _D.perceptual_weight) -> InvertConfig:
    g = get_globals(ctx)
    cfg = InvertConfig(space=space.lower(), steps=steps, optimize_noise=noise, loss=loss.lower(), lr=lr,
                       mse_weight=mse_weight, perceptual_weight=perceptual_weight,
                       seed=g.seed if g.seed is not None else _D.seed)
    cfg.validate()
    return cfg


def _setup(ctx: typer.Context, weights: str, cfg: InvertConfig, encoder: Optional[str], fit: str = "crop",
           align: Optional[str] = None, max_pixels: Optional[int] = None,
           class_label: Optional[int] = None):  # type: ignore[no-untyped-def]
    from ..jobs.edit import EditSetup

    return EditSetup(weights=weights, config=cfg, encoder=encoder, fit=fit, align=align, max_pixels=max_pixels,
                     class_label=class_label)


def _run(ctx: typer.Context, fn: Any, job: Any) -> None:
    """Seed, run one edit job with progress, and print its summary."""
    from ..runtime import seed_everything

    g = get_globals(ctx)
    seed_everything(g.seed)
    with RichProgress(quiet=g.quiet) as progress:
        res = fn(job, g.runtime("optimisation"), progress)
        if not g.quiet:
            _done(progress, res.summary)


def _done(progress: Any, text: str) -> None:
    progress(ProgressEvent(task="done", message=text))


#: The --styles groups of style-mix (``parse_layers`` also takes them for --layers).
STYLE_GROUPS = ("coarse", "middle", "fine", "all")


def _check_out(path: str, overwrite: bool, option: str = "-o") -> None:
    from ..io import format_for
    from ..validate import check_output_file

    check_output_file(path, option)
    format_for(path)
    if Path(path).exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")


# ------------------------------------------------------------------------------------------------ invert
INVERT_HELP = f"""Invert images into a StyleGAN2 generator (GAN inversion / projection).

For each input photo.png it writes into --out-dir: photo.png (reconstruction), photo.latent.safetensors (latent and
noise), photo.compare.png (target | reconstruction), photo.json (MSE, PSNR, SSIM, steps, seconds) and with --gif
photo.gif. Inputs are centre-cropped to a square (--fit) and resized with an antialiased bicubic kernel to the
generator resolution. Several images are optimised together (--batch-size).

Examples:

  imgforge invert digit.png --out-dir inv/

  imgforge invert faces/ -w stylegan2-ffhq-256 --noise --steps 500 --out-dir inv/

  imgforge --device cuda invert a.png b.png --space w --gif --out-dir inv/

Default generator: {DEFAULT_GENERATOR}.
"""


def invert(
    ctx: typer.Context,
    inputs: Annotated[List[str], typer.Argument(help="Image files, folders or glob patterns.", show_default=False)] = None,  # type: ignore[assignment]
    weights: WeightsOpt = DEFAULT_GENERATOR,
    space: SpaceOpt = _D.space,
    noise: NoiseOpt = _D.optimize_noise,
    steps: StepsOpt = _D.steps,
    loss: LossOpt = _D.loss,
    lr: LrOpt = _D.lr,
    mse_weight: MseWOpt = _D.mse_weight,
    perceptual_weight: PercWOpt = _D.perceptual_weight,
    encoder: EncoderOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images optimised together.")] = 8,
    fit: FitOpt = "crop",
    align: AlignOpt = None,
    gif: Annotated[bool, typer.Option("--gif", help="Also write <stem>.gif of the optimisation.")] = False,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs (created if needed).")] = Path("inverted"),
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of folder inputs.")] = False,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    max_pixels: MaxPixelsOpt = None,
) -> None:
    from ..batch import BatchResult, ItemResult
    from ..io import expand_inputs
    from ..jobs.edit import InvertJob, run_invert
    from ..runtime import seed_everything

    g = get_globals(ctx)
    cfg = _config(ctx, space, steps, noise, loss, lr, mse_weight, perceptual_weight)
    if fit not in FITS:
        raise UsageError(f"--fit {fit!r}: expected one of {', '.join(FITS)}")
    check_output_dir(out_dir, "--out-dir")
    items = expand_inputs(inputs or [], recursive=recursive)
    if not items:
        raise typer.BadParameter("give at least one image", param_hint="INPUTS")
    job = InvertJob(weights=weights, encoder=encoder, config=cfg, batch_size=batch_size, fit=fit, align=align,
                    gif=gif, overwrite=overwrite)
    seed_everything(g.seed)
    with RichProgress(quiet=g.quiet) as progress:
        bad = [ItemResult(it.path, None, "failed", it.error) for it in items if it.error]
        res = run_invert(job, [it.path for it in items if not it.error], out_dir, runtime=g.runtime("optimisation"),
                         progress=progress, max_pixels=max_pixels)
    code = report_batch(BatchResult(items=bad + res.items), as_json=json_out, quiet=g.quiet)
    if code:
        raise typer.Exit(code)

# ------------------------------------------------------------------------------------------------ morph
MORPH_HELP = """Morph between two images or latents through the generator.

A and B are images (inverted first), latent files from `imgforge invert`, or seeds. Frames interpolate ws linearly
(W+), or z spherically with --space z (seeds, or images inverted in Z). Writes OUT_DIR/frame_000.png ...,
OUT_DIR/morph.gif and a contact sheet OUT_DIR/morph_sheet.png.

Examples:

  imgforge morph a.png b.png --frames 12 --out-dir morph/

  imgforge morph inv/a.latent.safetensors inv/b.latent.safetensors -n 8

  imgforge morph 3 7 --space z --frames 10 --out-dir seeds_morph/
"""


def morph(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="Start: image, latent file or seed.", show_default=False)],
    b: Annotated[str, typer.Argument(help="End: image, latent file or seed.", show_default=False)],
    frames: Annotated[int, typer.Option("--frames", "-n", min=2, help="Number of frames, both ends included.")] = 10,
    space: Annotated[str, typer.Option("--space", help="w+ (linear in ws) or z (slerp in z; images are inverted in Z).")] = "w+",
    weights: WeightsOpt = DEFAULT_GENERATOR,
    steps: StepsOpt = _D.steps,
    noise: NoiseOpt = _D.optimize_noise,
    loss: LossOpt = _D.loss,
    lr: LrOpt = _D.lr,
    encoder: EncoderOpt = None,
    fit: FitOpt = "crop",
    align: AlignOpt = None,
    fps: Annotated[float, typer.Option("--fps", min=0.1, help="GIF frame rate.")] = 10.0,
    upscale: Annotated[int, typer.Option("--upscale", min=1, help="Enlarge the GIF and sheet by pixel repetition.")] = 1,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Output folder.")] = Path("morph"),
    overwrite: OverwriteOpt = False,
    class_label: ClassOpt = None,
) -> None:
    from ..jobs.edit import MorphJob, run_morph

    space = space.lower()
    if space not in ("w+", "z"):
        raise UsageError(f"--space {space!r}: morph interpolates in w+ or z")
    check_output_dir(out_dir, "--out-dir")
    sheet_path = out_dir / "morph_sheet.png"
    if sheet_path.exists() and not overwrite:
        raise UsageError(f"{sheet_path} exists; pass --overwrite to replace it")
    cfg = _config(ctx, "z" if space == "z" else "w+", steps, noise, loss, lr)
    _run(ctx, run_morph, MorphJob(a, b, frames, space, fps, upscale, str(out_dir),
                                  _setup(ctx, weights, cfg, encoder, fit, align, class_label=class_label)))

# ------------------------------------------------------------------------------------------------ style-mix
STYLE_MIX_HELP = """Style-mixing grid: each cell takes the row source's latent with some layers copied from the column source.

Sources are seeds (as in `imgforge generate`: 1,2,5-7), latent files, or images (inverted first). Layers: --styles
coarse (4²-8²) | middle (16²-32²) | fine (>=64²), or --layers a-b (w indices, inclusive); the mapping to indices
follows the generator's resolution (`--layers` help lists it when a group is empty).

Examples:

  imgforge style-mix --rows 1,2,3 --cols 10-13 -o grid.png

  imgforge style-mix --rows a.png,b.png --cols 5,6 --styles middle -o mix.png

  imgforge style-mix --rows 0-3 --cols 4-7 --layers 0-2 --trunc 0.7 -o coarse.png
"""


def style_mix(
    ctx: typer.Context,
    rows: Annotated[List[str], typer.Option("--rows", help="Row sources: seeds, ranges, images or latent files (comma-separated or repeated).")] = None,  # type: ignore[assignment]
    cols: Annotated[List[str], typer.Option("--cols", help="Column sources (their layers are copied into the rows).")] = None,  # type: ignore[assignment]
    styles: Annotated[str, typer.Option("--styles", help="coarse | middle | fine (ignored when --layers is given).")] = "coarse",
    layers: Annotated[Optional[str], typer.Option("--layers", help="w indices to copy, e.g. 0-3 or 0,2,4-5.")] = None,
    trunc: Annotated[float, typer.Option("--trunc", help="Truncation psi for seeds (1 = none).")] = 1.0,
    weights: WeightsOpt = DEFAULT_GENERATOR,
    space: SpaceOpt = "w+",
    steps: StepsOpt = _D.steps,
    noise: NoiseOpt = _D.optimize_noise,
    loss: LossOpt = _D.loss,
    lr: LrOpt = _D.lr,
    encoder: EncoderOpt = None,
    fit: FitOpt = "crop",
    upscale: Annotated[int, typer.Option("--upscale", min=1, help="Enlarge the grid by pixel repetition.")] = 1,
    output: Annotated[str, typer.Option("-o", "--output", help="Output image.")] = "style_mix.png",
    overwrite: OverwriteOpt = False,
) -> None:
    from ..jobs.edit import StyleMixJob, run_style_mix

    if not rows or not cols:
        raise typer.BadParameter("give --rows and --cols (seeds, images or latent files)")
    _check_out(output, overwrite)
    if layers is None and not all(x.strip().lower() in STYLE_GROUPS for x in styles.split(",")):
        raise UsageError(f"--styles {styles!r}: expected one of {', '.join(STYLE_GROUPS)} (or give --layers)")
    cfg = _config(ctx, space, steps, noise, loss, lr)
    _run(ctx, run_style_mix, StyleMixJob(tuple(rows), tuple(cols), styles, layers, trunc, upscale, output,
                                         _setup(ctx, weights, cfg, encoder, fit)))

# ------------------------------------------------------------------------------------------------ edit
EDIT_HELP = """Latent edits written as a strip of images.

SeFa: --direction K moves SOURCE along the K-th closed-form direction (eigenvector of the style-affine weights of
the --layers), with strengths spread over [-λ, λ] (--strength λ, --frames N).

Latent arithmetic: --from A --to B gives SOURCE + s (B - A) for s spread over [0, λ].

SOURCE, A and B are images (inverted first), latent files or seeds.

Examples:

  imgforge edit 7 --direction 0 --strength 3 --frames 7 -o strip.png

  imgforge edit digit.png --direction 2 --layers coarse -o strip.png

  imgforge edit a.png --from b.latent.safetensors --to 12 --strength 1.5
"""


def edit(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Image, latent file or seed to edit.", show_default=False)],
    direction: Annotated[Optional[int], typer.Option("--direction", "-k", min=0, help="SeFa direction index (0 = largest eigenvalue).")] = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="Latent arithmetic: the 'from' example (image, latent, seed).")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Latent arithmetic: the 'to' example.")] = None,
    strength: Annotated[float, typer.Option("--strength", "-s", help="λ: the largest step (SeFa: in w units along a unit vector).")] = 3.0,
    frames: Annotated[int, typer.Option("--frames", "-n", min=1, help="Images in the strip.")] = 7,
    layers: Annotated[Optional[str], typer.Option("--layers", help="Layers edited (and, for SeFa, factorised): all | coarse | middle | fine | a-b.")] = None,
    trunc: Annotated[float, typer.Option("--trunc", help="Truncation psi for seed sources.")] = 1.0,
    weights: WeightsOpt = DEFAULT_GENERATOR,
    space: SpaceOpt = "w+",
    steps: StepsOpt = _D.steps,
    noise: NoiseOpt = _D.optimize_noise,
    loss: LossOpt = _D.loss,
    lr: LrOpt = _D.lr,
    encoder: EncoderOpt = None,
    fit: FitOpt = "crop",
    upscale: Annotated[int, typer.Option("--upscale", min=1, help="Enlarge the strip by pixel repetition.")] = 1,
    output: Annotated[str, typer.Option("-o", "--output", help="Output image (the strip).")] = "edit_strip.png",
    overwrite: OverwriteOpt = False,
    class_label: ClassOpt = None,
) -> None:
    from ..jobs.edit import EditJob, run_edit

    job = EditJob(source, direction, from_, to, strength, frames, layers, trunc, upscale, output)
    job.validate()
    _check_out(output, overwrite)
    cfg = _config(ctx, space, steps, noise, loss, lr)
    _run(ctx, run_edit, dataclasses.replace(job, setup=_setup(ctx, weights, cfg, encoder, fit,
                                                              class_label=class_label)))

# ------------------------------------------------------------------------------------------------ inpaint
INPAINT_HELP = """Fill the holes of an image with the generator (masked inversion).

White mask pixels are the hole to fill, black ones are known: the loss sees only the known pixels, and the output
keeps them unchanged. Image and mask are fitted to the generator resolution alike (--fit).

Examples:

  imgforge inpaint digit.png --mask hole.png -o filled.png

  imgforge inpaint face.png -m scratch.png -w stylegan2-ffhq-256 --noise -o fixed.png

  imgforge inpaint digit.png -m hole.png --samples 8 --combine mean -o filled.png

With --samples N the image is inverted N times, starting from the N prior samples (out of --candidates) that fit the
known pixels best; --combine mean fills the hole with the mean of the N completions (lowest expected error, blurrier
where they disagree), --combine best with the completion that fits the known pixels best (sharp).
"""


def inpaint(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="Image with holes.", show_default=False)],
    mask: Annotated[str, typer.Option("--mask", "-m", help="Mask image: white = hole, black = known.")],
    output: Annotated[str, typer.Option("-o", "--output", help="Output image.")] = "inpainted.png",
    weights: WeightsOpt = DEFAULT_GENERATOR,
    space: SpaceOpt = _D.space,
    noise: NoiseOpt = _D.optimize_noise,
    steps: StepsOpt = _D.steps,
    loss: LossOpt = _D.loss,
    lr: LrOpt = _D.lr,
    encoder: EncoderOpt = None,
    fit: FitOpt = "crop",
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Inversions per image, from the best-fitting prior samples.")] = 1,
    combine: Annotated[str, typer.Option("--combine", help="How several samples fill the hole: mean | best.")] = "mean",
    candidates: Annotated[int, typer.Option("--candidates", min=1, help="Prior samples screened for the --samples starting points (one generator forward each).")] = 256,
    save_latent: Annotated[Optional[str], typer.Option("--save-latent", help="Also write the latent file here (the best sample's).")] = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = None,
) -> None:
    from ..jobs.edit import InpaintJob, run_inpaint

    job = InpaintJob(image, mask, samples, combine, candidates, save_latent, output)
    job.validate()
    _check_out(output, overwrite)
    _check_latent_out(save_latent)
    cfg = _config(ctx, space, steps, noise, loss, lr)
    _run(ctx, run_inpaint, dataclasses.replace(job, setup=_setup(ctx, weights, cfg, encoder, fit,
                                                                 max_pixels=max_pixels)))

# ------------------------------------------------------------------------------------------------ superres
SUPERRES_HELP = """Super-resolve a small image with the generator prior.

Finds the latent whose image, downscaled by --scale with the same antialiased kernel (Pillow's bicubic by default),
matches LOWRES; writes the generator's image at its full resolution. LOWRES must be (resolution / scale) pixels
square (other sizes are fitted with --fit first); --scale defaults to resolution / LOWRES width.

Examples:

  imgforge superres small8.png --scale 4 -o big32.png

  imgforge superres face64.png -w stylegan2-ffhq-256 --scale 4 -o face256.png
"""


def superres(
    ctx: typer.Context,
    lowres: Annotated[str, typer.Argument(help="Low-resolution image.", show_default=False)],
    scale: Annotated[Optional[int], typer.Option("--scale", "-k", min=1, help="Upscaling factor (default: resolution / input width).")] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="Output image (generator resolution).")] = "superres.png",
    kernel: Annotated[str, typer.Option("--kernel", help="Downscaling kernel of the forward model: box | bilinear | bicubic | lanczos.")] = "bicubic",
    weights: WeightsOpt = DEFAULT_GENERATOR,
    space: SpaceOpt = _D.space,
    noise: NoiseOpt = _D.optimize_noise,
    steps: StepsOpt = _D.steps,
    loss: LossOpt = _D.loss,
    lr: LrOpt = _D.lr,
    encoder: EncoderOpt = None,
    fit: FitOpt = "crop",
    save_latent: Annotated[Optional[str], typer.Option("--save-latent", help="Also write the latent file here.")] = None,
    overwrite: OverwriteOpt = False,
    max_pixels: MaxPixelsOpt = None,
) -> None:
    from ..jobs.edit import SuperresJob, run_superres

    _check_out(output, overwrite)
    _check_latent_out(save_latent)
    cfg = _config(ctx, space, steps, noise, loss, lr)
    _run(ctx, run_superres, SuperresJob(lowres, scale, kernel, save_latent, output,
                                        _setup(ctx, weights, cfg, encoder, fit, max_pixels=max_pixels)))


def _check_latent_out(path: Optional[str]) -> None:
    from ..validate import check_output_file

    if path:
        check_output_file(path, "--save-latent")


def _reflow(text: str) -> str:
    """Join the lines of prose paragraphs (rich then wraps them to the terminal); example lines stay as they are."""
    paras = text.strip("\n").split("\n\n")
    return "\n\n".join(p if p.startswith("  ") else " ".join(p.split("\n")) for p in paras) + "\n"


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 50


def register(app: typer.Typer) -> None:
    for name, fn, text in (("invert", invert, INVERT_HELP), ("morph", morph, MORPH_HELP),
                           ("style-mix", style_mix, STYLE_MIX_HELP), ("edit", edit, EDIT_HELP),
                           ("inpaint", inpaint, INPAINT_HELP), ("superres", superres, SUPERRES_HELP)):
        app.command(name, help=_reflow(text), no_args_is_help=True)(fn)


__all__ = ["register", "SPACES", "LOSSES"]
