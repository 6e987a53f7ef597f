"""``imgforge metrics ...``: FID, KID, IS, precision/recall, PPL, Parzen and paired PSNR/SSIM/perceptual distance.

A thin layer: options -> :class:`~imgforge.jobs.metrics.MetricsConfig` -> :func:`~imgforge.jobs.metrics.run_metrics`.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any, Dict, List, Optional

import typer

from ..jobs.metrics import MetricsConfig, MetricsReport, run_metrics
from ..progress import ProgressEvent
from .common import RichProgress, get_globals

app = typer.Typer(
    help="""Score generated images: FID / KID / IS / precision-recall (Inception, digits or embedded features),
PPL, Parzen log-likelihood, and paired PSNR / SSIM / perceptual distance.

Every score names its extractor, the extractor weights' sha256 and the resize protocol (tf1 = torch-fidelity's
TF1 bilinear, the default; torch = pytorch-fid's F.interpolate; clean = clean-fid's PIL bicubic). Only
--extractor inception with --resize tf1 compares with published FID/KID/IS tables.

Examples:

  imgforge weights fetch fid-inception            # once: the FID Inception-v3 of pytorch-fid (91 MB)

  imgforge metrics fid real/ fake/ --json

  imgforge metrics all real/ fake/ --extractor digits

  imgforge metrics kid real/ --generator stylegan2-mnist32 --n 10000 --extractor digits --subset-size 1000

  imgforge metrics is fake/ --splits 10

  imgforge metrics fid real/ stats.npz --save-stats real.npz

  imgforge metrics parzen heldout/ --n 10000 --grey --crop 28

  imgforge metrics psnr restored/ originals/
""",
    no_args_is_help=True,
)

Inputs = Annotated[Optional[List[str]], typer.Argument(help="Folders or glob patterns of images ('*.png'), or pytorch-fid .npz statistics (fid only).", show_default=False)]
ExtractorOpt = Annotated[str, typer.Option("--extractor", "-e", help="inception (needs `imgforge weights fetch fid-inception`) | digits (the shipped MNIST classifier) | embedded (the shipped random-feature VGG-19; relative comparisons only).")]
WeightsOpt = Annotated[Optional[str], typer.Option("--weights", "-w", help="Extractor weights: a file or a name from `imgforge weights list` (default: fid-inception / the shipped digit classifier / the embedded encoder).")]
ResizeOpt = Annotated[str, typer.Option("--resize", help="Resize protocol: tf1 (torch-fidelity, default) | torch (pytorch-fid) | clean (clean-fid).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object per score on stdout.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the feature cache.")]
GeneratorOpt = Annotated[Optional[str], typer.Option("--generator", "-g", help="Use a StyleGAN2 generator (name or file) as the FAKE set instead of a folder.")]
NOpt = Annotated[int, typer.Option("--n", min=1, help="Samples drawn from --generator.")]
FirstSeedOpt = Annotated[int, typer.Option("--first-seed", min=0, help="Generator seeds first-seed ... first-seed+n-1 (z as in `imgforge generate`).")]
TruncOpt = Annotated[float, typer.Option("--trunc", help="Truncation psi of the generator samples.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the KID subsets / IS shuffle (the reference's 2020).")]
SubsetsOpt = Annotated[int, typer.Option("--subsets", min=1, help="KID subsets.")]
SubsetSizeOpt = Annotated[int, typer.Option("--subset-size", min=2, help="KID subset size (each set needs at least this many images).")]
SplitsOpt = Annotated[int, typer.Option("--splits", min=1, help="IS splits.")]
SaveStatsOpt = Annotated[Optional[str], typer.Option("--save-stats", help="Write REAL's mu/sigma as a pytorch-fid .npz.")]
FidMethodOpt = Annotated[str, typer.Option("--fid-method", help="Matrix square root: auto | eigvals (torch-fidelity) | sqrtm (pytorch-fid) | lowrank.")]
LpipsOpt = Annotated[Optional[str], typer.Option("--lpips-weights", help="LPIPS v0.1 linear layers (lpips/weights/v0.1/vgg.pth of the lpips package); with the fetched VGG-16 the distance is LPIPS, else a labelled VGG perceptual distance.")]
KOpt = Annotated[int, typer.Option("--k", min=1, help="Nearest neighbour k of precision/recall.")]


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _line(r: Dict[str, Any]) -> str:
    val = r["value"]
    s = f"{r['metric']}: {val:.6g}" if isinstance(val, float) else f"{r['metric']}: {val}"
    if r.get("std") is not None:
        s += f" ± {r['std']:.3g}"
    bits = []
    if r.get("extractor"):
        bits.append(str(r["extractor"]))
    if r.get("resize") and r.get("extractor") not in ("pixels", "perceptual"):
        bits.append(f"resize {r['resize']}")
    if r.get("weights_sha256"):
        bits.append(f"weights {r.get('weights')} sha256 {r['weights_sha256'][:12]}")
    if r.get("distance"):
        bits.append(str(r["distance"]))
    bits.append(", ".join(f"{k} {v}" for k, v in r.get("counts", {}).items()))
    if r.get("seed") is not None:
        bits.append(f"seed {r['seed']}")
    return s + "  (" + "; ".join(b for b in bits if b) + ")"


def _run(ctx: typer.Context, metric: str, inputs: Optional[List[str]], as_json: bool, **kw: Any) -> None:
    g = get_globals(ctx)
    cfg = MetricsConfig(metric=metric, inputs=tuple(inputs or ()), device=g.device, precision=g.precision, **kw)
    with RichProgress(quiet=g.quiet) as progress:  # bars and notes go to stderr, JSON to stdout
        report: MetricsReport = run_metrics(cfg, progress=progress, runtime=g.runtime())
        if report.bad:
            progress(ProgressEvent(task="metrics", message=f"{report.bad} unreadable image(s) skipped (named above)"))
    for r in report.results:
        if as_json:
            sys.stdout.write(json.dumps(_clean(r)) + "\n")
        elif not g.quiet:
            sys.stdout.write(_line(r) + "\n")
    sys.stdout.flush()
    if report.bad:
        raise typer.Exit(3)


def _feat_opts(extractor: str, weights: Optional[str], resize: str, batch_size: int, no_cache: bool,
               generator: Optional[str], n: int, first_seed: int, trunc: float) -> Dict[str, Any]:
    return dict(extractor=extractor, weights=weights, resize=resize, batch_size=batch_size, cache=not no_cache,
                generator=generator, n=n, first_seed=first_seed, trunc=trunc)


@app.command("fid", help="FID between REAL and FAKE (folders, globs or .npz statistics). Example: imgforge metrics fid real/ fake/")
def fid_cmd(ctx: typer.Context, inputs: Inputs = None, extractor: ExtractorOpt = "inception", weights: WeightsOpt = None,
            resize: ResizeOpt = "tf1", batch_size: BatchOpt = 50, as_json: JsonOpt = False, no_cache: NoCacheOpt = False,
            generator: GeneratorOpt = None, n: NOpt = 10000, first_seed: FirstSeedOpt = 0, trunc: TruncOpt = 1.0,
            save_stats: SaveStatsOpt = None, fid_method: FidMethodOpt = "auto") -> None:
    _run(ctx, "fid", inputs, as_json, save_stats=save_stats, fid_method=fid_method,
         **_feat_opts(extractor, weights, resize, batch_size, no_cache, generator, n, first_seed, trunc))


@app.command("kid", help="KID (unbiased MMD², cubic kernel). Example: imgforge metrics kid real/ fake/ --subsets 100 --subset-size 1000 --seed 2020")
def kid_cmd(ctx: typer.Context, inputs: Inputs = None, extractor: ExtractorOpt = "inception", weights: WeightsOpt = None,
            resize: ResizeOpt = "tf1", batch_size: BatchOpt = 50, as_json: JsonOpt = False, no_cache: NoCacheOpt = False,
            generator: GeneratorOpt = None, n: NOpt = 10000, first_seed: FirstSeedOpt = 0, trunc: TruncOpt = 1.0,
            subsets: SubsetsOpt = 100, subset_size: SubsetSizeOpt = 1000, seed: SeedOpt = 2020,
            save_stats: SaveStatsOpt = None) -> None:
    _run(ctx, "kid", inputs, as_json, subsets=subsets, subset_size=subset_size, seed=seed, save_stats=save_stats,
         **_feat_opts(extractor, weights, resize, batch_size, no_cache, generator, n, first_seed, trunc))


@app.command("is", help="Inception Score of FAKE (with --extractor digits: digit-IS, recognised fraction, class coverage). Example: imgforge metrics is fake/ --splits 10")
def is_cmd(ctx: typer.Context, inputs: Inputs = None, extractor: ExtractorOpt = "inception", weights: WeightsOpt = None,
           resize: ResizeOpt = "tf1", batch_size: BatchOpt = 50, as_json: JsonOpt = False, no_cache: NoCacheOpt = False,
           generator: GeneratorOpt = None, n: NOpt = 10000, first_seed: FirstSeedOpt = 0, trunc: TruncOpt = 1.0,
           splits: SplitsOpt = 10, seed: SeedOpt = 2020) -> None:
    _run(ctx, "is", inputs, as_json, splits=splits, seed=seed,
         **_feat_opts(extractor, weights, resize, batch_size, no_cache, generator, n, first_seed, trunc))


@app.command("pr", help="Precision and recall (Kynkäänniemi et al. 2019, k-NN radii). Example: imgforge metrics pr real/ fake/ --extractor digits")
def pr_cmd(ctx: typer.Context, inputs: Inputs = None, extractor: ExtractorOpt = "inception", weights: WeightsOpt = None,
           resize: ResizeOpt = "tf1", batch_size: BatchOpt = 50, as_json: JsonOpt = False, no_cache: NoCacheOpt = False,
           generator: GeneratorOpt = None, n: NOpt = 10000, first_seed: FirstSeedOpt = 0, trunc: TruncOpt = 1.0,
           k: KOpt = 3) -> None:
    _run(ctx, "pr", inputs, as_json, k=k,
         **_feat_opts(extractor, weights, resize, batch_size, no_cache, generator, n, first_seed, trunc))


@app.command("all", help="FID, KID, IS (of FAKE) and precision/recall from one feature extraction. Example: imgforge metrics all real/ fake/")
def all_cmd(ctx: typer.Context, inputs: Inputs = None, extractor: ExtractorOpt = "inception", weights: WeightsOpt = None,
            resize: ResizeOpt = "tf1", batch_size: BatchOpt = 50, as_json: JsonOpt = False, no_cache: NoCacheOpt = False,
            generator: GeneratorOpt = None, n: NOpt = 10000, first_seed: FirstSeedOpt = 0, trunc: TruncOpt = 1.0,
            subsets: SubsetsOpt = 100, subset_size: SubsetSizeOpt = 1000, seed: SeedOpt = 2020,
            splits: SplitsOpt = 10, k: KOpt = 3, save_stats: SaveStatsOpt = None,
            fid_method: FidMethodOpt = "auto") -> None:
    _run(ctx, "all", inputs, as_json, subsets=subsets, subset_size=subset_size, seed=seed, splits=splits, k=k,
         save_stats=save_stats, fid_method=fid_method,
         **_feat_opts(extractor, weights, resize, batch_size, no_cache, generator, n, first_seed, trunc))


@app.command("ppl", help="Perceptual path length of a generator (eps 1e-4; distance: the VGG perceptual distance, not LPIPS). Example: imgforge metrics ppl --generator stylegan2-mnist32 --n 1000 --space w")
def ppl_cmd(ctx: typer.Context, generator: GeneratorOpt = None, n: NOpt = 1000, first_seed: FirstSeedOpt = 0,
            space: Annotated[str, typer.Option("--space", help="w (lerp) | z (slerp).")] = "w",
            sampling: Annotated[str, typer.Option("--sampling", help="end (t = 0) | full (t ~ U(0, 1)).")] = "end",
            weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="VGG for the distance (default: VGG-16 if fetched, else the embedded encoder).")] = None,
            lpips_weights: LpipsOpt = None, batch_size: BatchOpt = 16, as_json: JsonOpt = False) -> None:
    _run(ctx, "ppl", None, as_json, generator=generator, n=n, first_seed=first_seed, space=space, sampling=sampling,
         weights=weights, lpips_weights=lpips_weights, batch_size=batch_size, extractor="inception")


@app.command("parzen", help="Parzen-window log-likelihood (Goodfellow et al. 2014) of HELD_OUT images under FAKE (folder) or --generator samples; sigma chosen on the even-numbered half. Example: imgforge metrics parzen heldout/ --n 10000 --grey --crop 28")
def parzen_cmd(ctx: typer.Context, inputs: Inputs = None, generator: GeneratorOpt = None, n: NOpt = 10000,
               first_seed: FirstSeedOpt = 0, trunc: TruncOpt = 1.0,
               crop: Annotated[Optional[int], typer.Option("--crop", min=1, help="Centre-crop every image to N x N first (28 for padded MNIST digits).")] = None,
               grey: Annotated[bool, typer.Option("--grey", help="Average the colour channels (MNIST).")] = False,
               batch_size: BatchOpt = 100, as_json: JsonOpt = False) -> None:
    _run(ctx, "parzen", inputs, as_json, generator=generator, n=n, first_seed=first_seed, trunc=trunc, crop=crop,
         grey=grey, batch_size=batch_size)


def _paired(metric: str, about: str) -> None:
    def cmd(ctx: typer.Context, inputs: Inputs = None, as_json: JsonOpt = False,
            weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="VGG network (lpips only; default VGG-16 if fetched, else the embedded encoder).")] = None,
            lpips_weights: LpipsOpt = None) -> None:
        _run(ctx, metric, inputs, as_json, weights=weights, lpips_weights=lpips_weights)

    app.command(metric, help=f"{about} between paired images A B (two files, or two folders paired by file name). "
                f"Example: imgforge metrics {metric} out/ ref/")(cmd)


_paired("psnr", "PSNR (dB)")
_paired("ssim", "SSIM (Wang et al. 2004, 11x11 Gaussian window)")
_paired("lpips", "LPIPS-VGG with --lpips-weights (else a labelled VGG perceptual distance)")


#: Position in ``imgforge --help`` (cli/app.py registers every command module of this folder).
HELP_ORDER = 65


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="metrics")
