"""``imgforge stylize`` (alias ``style-transfer``) and ``imgforge texture``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional, Tuple

import typer

from ..errors import UsageError
from ..methods.gatys import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, GatysConfig
from ..jobs.stylize import OPTIMISING, StylizeJob, run_stylize, run_texture
from ..methods.mrf import MRF_LAYERS
from ..runtime import seed_everything
from .common import (
    BatchArgs, Inputs, JsonOpt, MaxPixelsOpt, OutDirOpt, OutputOpt, OverwriteOpt, QualityOpt, RecursiveOpt,
    RichProgress, ShardOpt, get_globals, report_batch,
)

STYLIZE_HELP = """Stylize photos: gatys (optimisation, any style images), fast (a trained network, one style, instant),
adain (any style images, one pass), wct (whitening and colouring of encoder features, level by level, any styles),
mrf (CNNMRF, experimental: Gatys' optimisation with style as nearest-neighbour feature patches).

Examples:

  imgforge stylize photo.jpg --style starry.jpg -o out.png

  imgforge stylize photo.jpg --method fast -o out.png            (the shipped network; or --model candy.pth)

  imgforge stylize photo.jpg --method adain --style starry.jpg --alpha 0.8 --preserve-color -o out.png

  imgforge stylize photo.jpg --method adain --style a.jpg --style b.jpg --mask left.png --mask right.png -o out.png

  imgforge stylize photo.jpg --method wct --style starry.jpg --alpha 0.6 -o wct.png

  imgforge stylize photo.jpg --method mrf --style starry.jpg --size 256 --scales 2 -o mrf.png

  imgforge stylize frames/ --method fast --model mosaic --out-dir styled/ --name "{stem}.png"

  imgforge stylize photos/ --style starry.jpg --style scream.jpg --style-weights 0.7,0.3 --out-dir styled/

  imgforge --seed 1 stylize photo.jpg --style starry.jpg --size 256 --iterations 200 --optimizer adam -o small.png
"""

TEXTURE_HELP = """Synthesize a texture of any size: gatys (optimisation of Gram statistics, content-free; several style
images blend), efros-leung (pixel by pixel from the sample's matching neighbourhoods), quilting (overlapping
blocks of the sample joined along minimum-error cuts) or perlin (procedural gradient noise, no sample).

Examples:

  imgforge texture --style starry.jpg --width 512 --height 256 -o texture.png

  imgforge --seed 3 texture --style bricks.jpg --style moss.jpg --style-weights 1,1 -o mix.png

  imgforge --seed 1 texture --method efros-leung --style bricks.jpg --window 11 --width 128 --height 128 -o el.png

  imgforge texture --method quilting --style bricks.jpg --block 32 --width 512 --height 512 -o quilt.png

  imgforge --seed 2 texture --method perlin --scale 64 --octaves 5 --colour -o clouds.png
"""


def _floats(spec: Optional[str], what: str) -> Optional[Tuple[float, ...]]:
    if spec is None:
        return None
    try:
        return tuple(float(x) for x in spec.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"{what} {spec!r}: expected comma-separated numbers, e.g. 0.7,0.3") from None


def _layers(spec: Optional[str], default: Tuple[str, ...]) -> Tuple[str, ...]:
    return default if spec is None else tuple(x.strip() for x in spec.split(",") if x.strip())


StyleOpt = Annotated[List[str], typer.Option("--style", "-s", help="Style image (repeat for a blend of several).")]
StyleWeightsOpt = Annotated[Optional[str], typer.Option("--style-weights", help="Blend weights of the styles, e.g. 0.7,0.3 (normalised).")]
MethodOpt = Annotated[str, typer.Option("--method", "-m", help="gatys (optimisation), fast (trained network), adain (arbitrary style, one pass), wct (whitening/colouring per encoder level) or mrf (CNNMRF patches, optimisation; experimental).")]
SizeOpt = Annotated[Optional[int], typer.Option("--size", help="Long side of the output in pixels (gatys default 512; fast/adain keep the input size).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="fast: trained network, a name (imgforge weights list) or file (.pth or .safetensors); default the shipped starry-night network.")]
DecoderOpt = Annotated[Optional[str], typer.Option("--decoder", help="adain: decoder name or file (decoder.pth, or one from `imgforge adain train`); wct: file of per-level decoders (default the shipped ones).")]
AlphaOpt = Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Style strength 0..1 (adain/wct: feature blend as the methods define it; fast: output blend).")]
PreserveOpt = Annotated[bool, typer.Option("--preserve-color", "--preserve-colour", help="Keep the content's colours (adain: CORAL; gatys: luminance-only transfer; fast: content chrominance).")]
MaskOpt = Annotated[Optional[List[str]], typer.Option("--mask", help="adain/wct/gatys: one mask image per --style, in order (white = that style).")]
TileOpt = Annotated[int, typer.Option("--tile", min=0, help="fast/adain/wct: images larger than this (px) run in overlapping tiles with whole-image statistics; 0 = never tile.")]
StyleSizeOpt = Annotated[int, typer.Option("--style-size", min=0, help="adain: downscale style images so their shorter side is at most this (0 = keep).")]
TileStatsOpt = Annotated[str, typer.Option("--tile-stats", help="adain, tiled images: content statistics 'exact' (one more encoder pass over the tiles) or 'thumbnail' (from a 1024 px copy; faster).")]
LevelsOpt = Annotated[Optional[str], typer.Option("--levels", help="wct: encoder levels to transform, coarse to fine, e.g. 3,2,1 (default: every level of the decoders).")]
ScalesOpt = Annotated[int, typer.Option("--scales", min=1, help="gatys: coarse-to-fine optimisation over this many scales (each half the size of the next).")]
ItersOpt = Annotated[int, typer.Option("--iterations", "-n", min=0, help="Optimisation steps (L-BFGS evaluations or Adam steps).")]
OptimOpt = Annotated[str, typer.Option("--optimizer", help="lbfgs or adam.")]
LrOpt = Annotated[Optional[float], typer.Option("--lr", help="Step size (default 1.0 for lbfgs, 0.02 for adam).")]
InitOpt = Annotated[str, typer.Option("--init", help="content or noise.")]
CwOpt = Annotated[float, typer.Option("--content-weight", help="Weight of the content loss.")]
SwOpt = Annotated[float, typer.Option("--style-weight", help="Weight of the style loss (higher = stronger style).")]
TvOpt = Annotated[float, typer.Option("--tv-weight", help="Weight of the total-variation smoothness loss.")]
ClOpt = Annotated[Optional[str], typer.Option("--content-layers", help=f"Comma-separated layers (default {','.join(DEFAULT_CONTENT_LAYERS)}).")]
SlOpt = Annotated[Optional[str], typer.Option("--style-layers", help=f"Comma-separated layers (default {','.join(DEFAULT_STYLE_LAYERS)}; mrf: {','.join(MRF_LAYERS)}).")]
StyleScaleOpt = Annotated[float, typer.Option("--style-scale", help="Style images are resized to this multiple of the output size.")]
EncoderOpt = Annotated[Optional[str], typer.Option("--encoder", help="gatys: loss network; adain: encoder (vgg_normalised.pth, ...). Weights name or file (default: the published one if present, else the embedded encoder).")]

_DEFAULT = GatysConfig()


def stylize(
    ctx: typer.Context,
    content: Inputs = None,  # type: ignore[assignment]
    style: StyleOpt = None,  # type: ignore[assignment]
    style_weights: StyleWeightsOpt = None,
    method: MethodOpt = "gatys",
    size: SizeOpt = None,
    iterations: ItersOpt = _DEFAULT.iterations,
    optimizer: OptimOpt = _DEFAULT.optimizer,
    lr: LrOpt = None,
    init: InitOpt = _DEFAULT.init,
    content_weight: CwOpt = _DEFAULT.content_weight,
    style_weight: SwOpt = _DEFAULT.style_weight,
    tv_weight: TvOpt = _DEFAULT.tv_weight,
    content_layers: ClOpt = None,
    style_layers: SlOpt = None,
    style_scale: StyleScaleOpt = _DEFAULT.style_scale,
    encoder: EncoderOpt = None,
    model: ModelOpt = None,
    decoder: DecoderOpt = None,
    alpha: AlphaOpt = 1.0,
    preserve_color: PreserveOpt = False,
    mask: MaskOpt = None,
    tile: TileOpt = 1024,
    tile_stats: TileStatsOpt = "exact",
    style_size: StyleSizeOpt = 512,
    scales: ScalesOpt = 1,
    levels: LevelsOpt = None,
    width: Annotated[Optional[int], typer.Option("--width", help="Texture width when no content is given.")] = None,
    height: Annotated[Optional[int], typer.Option("--height", help="Texture height when no content is given.")] = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    name: Annotated[str, typer.Option("--name", help="Output name template for --out-dir: {stem} {name} {ext} {index} {method}.")] = "{stem}_{method}.png",
    overwrite: OverwriteOpt = False,
    quality: QualityOpt = 95,
    recursive: RecursiveOpt = False,
    shard: ShardOpt = None,
    json_out: JsonOpt = False,
    max_pixels: MaxPixelsOpt = None,
) -> None:
    g = get_globals(ctx)
    seed_everything(g.seed)
    if not style and method != "fast":
        raise typer.BadParameter("give at least one --style image", param_hint="--style")
    if not content and method != "gatys":
        raise typer.BadParameter(f"--method {method} needs content images (texture synthesis is gatys only)")
    cfg = GatysConfig(
        content_layers=_layers(content_layers, DEFAULT_CONTENT_LAYERS),
        style_layers=_layers(style_layers, MRF_LAYERS if method == "mrf" else DEFAULT_STYLE_LAYERS),
        content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, optimizer=optimizer, lr=lr,
        iterations=iterations, init=init, size=size if size is not None else _DEFAULT.size, style_scale=style_scale,
        style_weights=_floats(style_weights, "--style-weights"), seed=g.seed if g.seed is not None else _DEFAULT.seed,
    )
    job = StylizeJob(styles=tuple(style or ()), method=method, encoder=encoder, decoder=decoder, model=model,
                     gatys=cfg, seed=g.seed, alpha=alpha, preserve_color=preserve_color, masks=tuple(mask or ()),
                     size=size if method not in OPTIMISING else None, style_size=style_size or None, tile=tile,
                     tile_stats=tile_stats, scales=scales,
                     levels=tuple(int(v) for v in _floats(levels, "--levels")) if levels else None)
    job.validate()
    args = BatchArgs(content or [], output, out_dir, name, overwrite, quality, recursive, shard, json_out, max_pixels)
    rt = g.runtime("optimisation" if method in OPTIMISING else "inference")
    with RichProgress(quiet=g.quiet) as progress:
        if not content:
            side = size or _DEFAULT.size or 512
            out = output or str((out_dir or Path(".")) / "texture.png")
            path = run_texture(job, out, (height or side, width or side), runtime=rt, save=args.save_options(),
                               progress=progress)
            if not g.quiet and str(path) != "-":
                progress(_msg(f"wrote {path}"))
            return
        result = run_stylize(job, args.items(), args.namer(method=method), runtime=rt, save=args.save_options(),
                             progress=progress)
    code = report_batch(result, as_json=json_out, quiet=g.quiet)
    if code:
        raise typer.Exit(code)


def texture(
    ctx: typer.Context,
    style: StyleOpt = None,  # type: ignore[assignment]
    style_weights: StyleWeightsOpt = None,
    width: Annotated[int, typer.Option("--width", min=16, help="Output width in pixels.")] = 512,
    height: Annotated[int, typer.Option("--height", min=16, help="Output height in pixels.")] = 512,
    iterations: ItersOpt = _DEFAULT.iterations,
    optimizer: OptimOpt = _DEFAULT.optimizer,
    lr: LrOpt = None,
    style_weight: SwOpt = _DEFAULT.style_weight,
    tv_weight: TvOpt = _DEFAULT.tv_weight,
    style_layers: SlOpt = None,
    style_scale: StyleScaleOpt = _DEFAULT.style_scale,
    encoder: EncoderOpt = None,
    method: Annotated[str, typer.Option("--method", "-m", help="gatys | efros-leung | quilting | perlin.")] = "gatys",
    window: Annotated[int, typer.Option("--window", help="efros-leung: odd side of the neighbourhood window.")] = 11,
    epsilon: Annotated[float, typer.Option("--epsilon", help="efros-leung: candidates within (1 + epsilon) of the best match.")] = 0.1,
    block: Annotated[int, typer.Option("--block", help="quilting: block side in pixels.")] = 32,
    overlap: Annotated[Optional[int], typer.Option("--overlap", help="quilting: block overlap (default block / 6).")] = None,
    sample_size: Annotated[int, typer.Option("--sample-size", help="efros-leung/quilting: the sample is downscaled to this long side.")] = 64,
    scale: Annotated[float, typer.Option("--scale", help="perlin: lattice spacing of the first octave (px).")] = 64.0,
    octaves: Annotated[int, typer.Option("--octaves", help="perlin: number of octaves.")] = 4,
    persistence: Annotated[float, typer.Option("--persistence", help="perlin: amplitude ratio between octaves.")] = 0.5,
    colour: Annotated[bool, typer.Option("--colour", "--color", help="perlin: independent colour channels (default grey).")] = False,
    output: Annotated[str, typer.Option("-o", "--output", help="Output file (- for stdout PNG).")] = "texture.png",
    overwrite: OverwriteOpt = False,
    quality: QualityOpt = 95,
) -> None:
    g = get_globals(ctx)
    seed_everything(g.seed)
    if method != "gatys":
        from ..jobs.texture import PatchTextureJob, run_patch_texture

        pjob = PatchTextureJob(method=method, sample=style[0] if style else None, sample_size=sample_size,
                               window=window, epsilon=epsilon, block=block, overlap=overlap, scale=scale,
                               octaves=octaves, persistence=persistence, colour=colour, seed=g.seed)
        with RichProgress(quiet=g.quiet) as progress:
            path = run_patch_texture(pjob, output, (height, width), overwrite=overwrite, quality=quality,
                                     progress=progress)
            if str(path) != "-":
                progress(_msg(f"wrote {path}"))
        return
    if not style:
        raise typer.BadParameter("give at least one --style image", param_hint="--style")
    cfg = GatysConfig(style_layers=_layers(style_layers, DEFAULT_STYLE_LAYERS), style_weight=style_weight,
                      tv_weight=tv_weight, optimizer=optimizer, lr=lr, iterations=iterations, init="noise",
                      size=max(width, height), style_scale=style_scale,
                      style_weights=_floats(style_weights, "--style-weights"),
                      seed=g.seed if g.seed is not None else _DEFAULT.seed)
    job = StylizeJob(styles=tuple(style), encoder=encoder, gatys=cfg, seed=g.seed)
    from ..batch import SaveOptions

    with RichProgress(quiet=g.quiet) as progress:
        path = run_texture(job, output, (height, width), runtime=g.runtime("optimisation"),
                           save=SaveOptions(overwrite=overwrite, quality=quality), progress=progress)
        if str(path) != "-":
            progress(_msg(f"wrote {path}"))


def _msg(text: str):  # type: ignore[no-untyped-def]
    from ..progress import ProgressEvent

    return ProgressEvent(task="done", message=text)


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 10


def register(app: typer.Typer) -> None:
    app.command("stylize", help=STYLIZE_HELP, no_args_is_help=True)(stylize)
    app.command("style-transfer", help="Alias of `stylize`.\n\n" + STYLIZE_HELP, no_args_is_help=True, hidden=False)(stylize)
    app.command("texture", help=TEXTURE_HELP, no_args_is_help=True)(texture)
