"""The ``stylize`` job: style images / a style network + options -> a batch of stylized files.

One function per job, called by the thin CLI: :func:`run_stylize` for content files and :func:`run_texture` for
texture synthesis. Methods:

- ``gatys``: optimisation (:mod:`imgforge.methods.gatys`, with :mod:`imgforge.methods.gatys_ext` for several scales,
  masks and colour preservation);
- ``fast``: one TransformerNet forward pass (``--model``: a published ``.pth`` or our safetensors; default the
  network shipped in ``weights/``);
- ``adain``: encoder + AdaIN + decoder (``--encoder``/``--decoder``; default the published pair when both are
  present locally, else the embedded encoder and the decoder trained for it, shipped in ``weights/``);
- ``wct``: multi-level whitening and colouring transforms with a decoder per level (:mod:`imgforge.jobs.stylize_wct`;
  default the embedded encoder and the decoders fitted for it, shipped in ``weights/``).

Fast, AdaIN and WCT keep the content's resolution unless ``size`` is given, and stylise images larger than ``tile``
in overlapping tiles with whole-image statistics (:mod:`imgforge.methods.style_tiles`; WCT:
:func:`imgforge.methods.wct.wct_stylize`), so memory is bounded by the tile size. They are deterministic: the frames of a video give consistent results from frame to frame.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..batch import BatchResult, SaveOptions, run_batch
from ..errors import UsageError, WeightsError
from ..io import InputItem, LoadedImage, OutputNamer, format_for, load_image, save_image
from ..validate import MIN_SIDE, check_image_size, check_layers, check_output_file, check_output_size
from ..progress import ProgressEvent, ProgressFn, emit, note
from ..runtime import Runtime, make_generator
from ..methods.gatys import GatysConfig, resize_long_side, stylize_gatys

if TYPE_CHECKING:
    from ..hub.loader import ModelInfo

METHODS = ("gatys", "fast", "adain", "wct", "mrf")
#: Methods that optimise an image (Gatys' loop): their size is ``gatys.size``, they run as optimisation tasks.
OPTIMISING = ("gatys", "mrf")
#: Default tile size (pixels) of fast and AdaIN: images up to this size on both sides run in one piece.
DEFAULT_TILE = 1024
#: Shipped defaults (files in ``weights/``).
DEFAULT_FAST_MODEL = "imgforge-fast-starry-night"
EMBEDDED_DECODER = "imgforge-adain-decoder-embedded"


@dataclass(frozen=True)
class StylizeJob:
    """Everything ``imgforge stylize`` needs besides the inputs and outputs.

    Attributes:
        styles: style image paths (gatys, adain: one or more; fast: none, the model is the style).
        method: ``"gatys"``, ``"fast"``, ``"adain"``, ``"wct"`` or ``"mrf"`` (CNNMRF patches instead of Gram
            matrices, in Gatys' optimisation; :mod:`imgforge.methods.mrf`).
        encoder: gatys: loss network; adain: the encoder (weights name or file). None = defaults (module docstring).
        decoder: adain decoder (weights name or file).
        model: fast-style network (weights name or file).
        gatys: the optimisation settings (gatys; its ``style_weights`` also serve adain).
        seed: seed of the noise initialisation / any randomness (None = random).
        alpha: adain: content-style trade-off in [0, 1]; fast: blend of the stylized output with the content.
        preserve_color: keep the content's colours (adain: CORAL on the styles, as the reference; gatys:
            luminance-only transfer; fast: the stylized luminance with the content's chrominance).
        masks: one mask image per style (white = this style), for adain and gatys.
        size: fast/adain: long side of the output (None = the content's size). Gatys uses ``gatys.size``.
        style_size: adain: style images are downscaled so that their shorter side is at most this (None: keep).
        tile: fast/adain/wct: tile size in pixels for large images (0 = never tile).
        tile_stats: adain statistics of tiled images: ``"exact"`` or ``"thumbnail"``.
        scales: gatys: coarse-to-fine scales (1 = one scale).
        levels: wct: encoder levels to transform, coarse to fine (None: every level of the decoders file).
    """

    styles: Tuple[str, ...] = ()
    method: str = "gatys"
    encoder: Optional[str] = None
    decoder: Optional[str] = None
    model: Optional[str] = None
    gatys: GatysConfig = field(default_factory=GatysConfig)
    seed: Optional[int] = None
    alpha: float = 1.0
    preserve_color: bool = False
    masks: Tuple[str, ...] = ()
    size: Optional[int] = None
    style_size: Optional[int] = 512
    tile: int = DEFAULT_TILE
    tile_stats: str = "exact"
    scales: int = 1
    levels: Optional[Tuple[int, ...]] = None

    def validate(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.method == "fast":
            if self.styles:
                raise UsageError("--method fast takes its style from --model (a trained network), not --style; "
                                 "use --method adain or gatys for style images")
            if self.masks:
                raise UsageError("--mask works with --method adain, wct and gatys (one mask per --style image)")
        elif not self.styles:
            raise UsageError("give at least one --style image")
        if self.method != "fast" and self.model is not None:
            raise UsageError("--model is for --method fast")
        if self.method not in ("adain", "wct") and self.decoder is not None:
            raise UsageError("--decoder is for --method adain or wct")
        if self.masks and len(self.masks) != len(self.styles):
            raise UsageError(f"{len(self.masks)} --mask given for {len(self.styles)} --style images; give one per style")
        if not 0.0 <= self.alpha <= 1.0:
            raise UsageError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.size is not None and self.size < 16:
            raise UsageError(f"--size must be at least 16 pixels, got {self.size}")
        if self.tile and self.tile < 256:
            raise UsageError(f"--tile must be 0 (off) or at least 256 pixels, got {self.tile}")
        if self.tile_stats not in ("exact", "thumbnail"):
            raise UsageError(f"tile statistics must be 'exact' or 'thumbnail', got {self.tile_stats!r}")
        if self.scales < 1:
            raise UsageError(f"--scales must be >= 1, got {self.scales}")
        if self.levels is not None and (self.method != "wct" or not self.levels
                                        or any(lv not in (1, 2, 3, 4, 5) for lv in self.levels)):
            raise UsageError(f"--levels is for --method wct: encoder levels 1-5, e.g. 3,2,1 (got {self.levels})")
        if self.method == "mrf" and self.masks:
            raise UsageError("--mask works with --method adain, wct and gatys, not mrf")
        if self.method in OPTIMISING:
            self.gatys.validate()
            if self.masks and self.gatys.style_weights is not None:
                raise UsageError("--style-weights and --mask cannot be combined; scale the masks instead")


# ------------------------------------------------------------------------------------------------ weights


def load_fast_model(spec: Optional[str], progress: Optional[ProgressFn] = None) -> Tuple[nn.Module, str]:
    """A TransformerNet from a name or file (published ``.pth`` converted on the fly, or our safetensors).

    ``None`` gives the shipped default; a bare style name ``NAME`` also finds ``imgforge-fast-NAME``.
    Returns ``(network in eval mode, description)``.
    """
    from ..hub.loader import Kind, load

    name = spec or DEFAULT_FAST_MODEL
    try:
        model, info = load(name, Kind.FAST_STYLE, progress=progress)
    except WeightsError as exc:
        if spec is None or "/" in spec or spec.startswith("imgforge-fast-") or "holds a" in str(exc):
            raise
        try:
            model, info = load(f"imgforge-fast-{spec}", Kind.FAST_STYLE, progress=progress)
        except WeightsError:
            raise WeightsError(f"unknown fast-style model {spec!r}: not a file, not a name from `imgforge weights list`, "
                               f"and no imgforge-fast-{spec} is shipped") from None
    return model, f"{info.path.name} ({info.arch})"


def _is_embedded(info: "ModelInfo") -> bool:
    from ..hub.encoders import EMBEDDED_NAME

    return info.path.stem == EMBEDDED_NAME or info.meta.get("name") == EMBEDDED_NAME


def load_adain_pair(encoder: Optional[str], decoder: Optional[str],
                    progress: Optional[ProgressFn] = None) -> Tuple[nn.Module, nn.Module, str]:
    """The AdaIN encoder and decoder.

    - both given: as given;
    - only the decoder: the encoder named in its metadata (``encoder`` key, written by ``imgforge adain train``),
      else the published ``adain-vgg-normalised``;
    - only the encoder: the embedded encoder pairs with the shipped decoder, ``adain-vgg-normalised`` with the
      published ``adain-decoder``; any other encoder needs ``--decoder``;
    - neither: the published pair when both files are present locally, else the embedded encoder with the shipped
      decoder.
    Returns ``(encoder, decoder, description)``.
    """
    from ..hub.loader import Kind, load, published_if_present
    from ..hub.encoders import EMBEDDED_NAME, embedded_encoder_path

    if encoder is None and decoder is None:
        if published_if_present("adain-vgg-normalised") and published_if_present("adain-decoder"):
            encoder, decoder = "adain-vgg-normalised", "adain-decoder"
        else:
            encoder, decoder = str(embedded_encoder_path()), EMBEDDED_DECODER
    if decoder is None:
        enc_model, enc = load(str(encoder), progress=progress)
        if _is_embedded(enc):
            decoder = EMBEDDED_DECODER
        elif enc.arch == "vgg19_normalised":
            decoder = "adain-decoder"
        else:
            raise UsageError(f"no decoder is known for encoder {encoder!r}; pass --decoder (one trained for it with "
                             "`imgforge adain train --vgg ...`)")
        dec_model, dec = load(decoder, Kind.ADAIN_DECODER, progress=progress)
    else:
        dec_model, dec = load(decoder, Kind.ADAIN_DECODER, progress=progress)
        if encoder is None:
            enc_name = dec.meta.get("encoder") or "adain-vgg-normalised"
            if enc_name == EMBEDDED_NAME:
                enc_name = str(embedded_encoder_path())
            encoder = enc_name
        enc_model, enc = load(str(encoder), progress=progress)
    from ..models.vgg import VGGEncoder

    if not isinstance(enc_model, VGGEncoder) or "relu4_1" not in enc_model.layer_names:
        raise WeightsError(f"{enc.path}: not a VGG encoder with a relu4_1 layer "
                           "(give vgg_normalised.pth, a torchvision VGG file or the embedded encoder)")
    return enc_model, dec_model, f"encoder {enc.path.name}, decoder {dec.path.name}"


# ------------------------------------------------------------------------------------------------ helpers


def _load_styles(paths: Sequence[str], max_pixels: Optional[int], method: str = "gatys") -> List[torch.Tensor]:
    out = []
    for p in paths:
        img = load_image(p, max_pixels=max_pixels)
        check_image_size(img.size, MIN_SIDE[method], img.source, f"a --style image of --method {method}")
        out.append(img.rgb[None])
    return out


def load_mask(path: str, size: Tuple[int, int], max_pixels: Optional[int] = None) -> torch.Tensor:
    """A mask image as (1, 1, H, W) in [0, 1] (its luminance; alpha multiplies in), resized to ``size = (H, W)``."""
    img = load_image(path, max_pixels=max_pixels)
    m = (0.299 * img.rgb[0] + 0.587 * img.rgb[1] + 0.114 * img.rgb[2])[None, None]
    if img.alpha is not None:
        m = m * img.alpha[None]
    if tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
    return m.clamp(0, 1)


def _shorter_side_at_most(img: torch.Tensor, side: Optional[int]) -> torch.Tensor:
    if not side or min(img.shape[-2:]) <= side:
        return img
    h, w = img.shape[-2:]
    s = side / min(h, w)
    return F.interpolate(img, size=(max(8, round(h * s)), max(8, round(w * s))), mode="bilinear",
                         align_corners=False, antialias=True).clamp(0, 1)


def _resize_content(img: torch.Tensor, size: Optional[int]) -> torch.Tensor:
    return img if size is None else resize_long_side(img, size)


def _pixels_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``x`` resized (aspect kept) to about ``ref``'s pixel count; ``x`` itself when the counts are equal.

    The CORAL target for ``--preserve-color``: the reference's covariances are sums over pixels, not means, so a
    content with k times the style's pixels gave the recoloured style ~sqrt(k) times the contrast (at 2048 px against
    a 512 px style: 4x, a decoder driven far out of range and bf16 output 42 dB from fp32). With equal pixel counts,
    as in the reference's test.py (both 512 px), this is exactly the reference."""
    h, w = x.shape[-2:]
    n = ref.shape[-2] * ref.shape[-1]
    if h * w == n:
        return x
    return resize_long_side(x, max(1, round(max(h, w) * math.sqrt(n / (h * w)))))


def _retask(progress: Optional[ProgressFn], task: str) -> Optional[ProgressFn]:
    if progress is None:
        return None

    def fn(ev):  # type: ignore[no-untyped-def]
        progress(dataclasses.replace(ev, task=task))

    return fn


def _tile_progress(progress: Optional[ProgressFn], task: str) -> Optional[Callable[[str, int, int], None]]:
    if progress is None:
        return None

    def fn(what: str, done: int, total: int) -> None:
        emit(progress, ProgressEvent(task=f"{task} {what}", step=done, total=total, unit="tile"))

    return fn


# ------------------------------------------------------------------------------------------------ runners


class _GatysRunner:
    """Loads the encoder and the style images once, then stylizes one content image per call."""

    def __init__(self, job: StylizeJob, rt: Runtime, save: SaveOptions, progress: Optional[ProgressFn]) -> None:
        job.validate()
        from ..hub.encoders import style_encoder_for

        encoder, description = style_encoder_for(job.encoder, "vgg19", progress=progress)
        note(progress, "encoder", f"loss network: {description}")
        self.encoder = encoder.to(rt.device).eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.rt = rt
        self.cfg = job.gatys
        check_layers(self.encoder, self.cfg.style_layers, "--style-layers")
        if job.gatys.output_size is None:  # texture synthesis has no content layers
            check_layers(self.encoder, self.cfg.content_layers, "--content-layers")
        self.styles = [s.to(rt.device) for s in _load_styles(job.styles, save.max_pixels, "gatys")]
        self.job = job
        self.save = save
        self.seed = job.seed
        self.progress = progress

    def __call__(self, content: Optional[torch.Tensor], task: str) -> torch.Tensor:
        gen = make_generator(self.seed if self.seed is not None else self.cfg.seed, self.rt.device)
        job = self.job
        if content is not None:
            content = content.to(self.rt.device)
        if content is not None and (job.scales > 1 or job.masks or job.preserve_color or job.method == "mrf"):
            from ..methods.gatys_ext import stylize_gatys_ext

            masks = None
            if job.masks:
                masks = [load_mask(m, tuple(content.shape[-2:]), self.save.max_pixels) for m in job.masks]
            out = stylize_gatys_ext(content, self.styles, self.encoder, self.cfg, scales=job.scales, masks=masks,
                                    preserve_color=job.preserve_color, progress=_retask(self.progress, task),
                                    generator=gen, runtime=self.rt,
                                    style_loss="mrf" if job.method == "mrf" else "gram")
        else:
            out = stylize_gatys(content, self.styles, self.encoder, self.cfg, progress=_retask(self.progress, task),
                                generator=gen, runtime=self.rt)
        return out.detach().float().cpu()


class _FastRunner:
    """Loads the TransformerNet once; stylizes one content image per call (tiled when larger than the tile)."""

    def __init__(self, job: StylizeJob, rt: Runtime, save: SaveOptions, progress: Optional[ProgressFn]) -> None:
        from ..methods.style_fastpath import FastStyleForward

        job.validate()
        net, desc = load_fast_model(job.model, progress)
        note(progress, "model", f"fast style network: {desc}")
        self.fwd = FastStyleForward(net.to(rt.device), channels_last=rt.channels_last, unit=True,
                                    native_dtype=rt.native_dtype)
        self.job, self.rt, self.progress = job, rt, progress

    def __call__(self, content: torch.Tensor, task: str) -> torch.Tensor:
        from ..methods.style_tiles import fast_tiled

        job, rt = self.job, self.rt
        x = _resize_content(content, job.size).to(rt.device, torch.float32)
        h, w = x.shape[-2:]
        with torch.inference_mode():
            with rt.autocast():
                if not job.tile or max(h, w) <= job.tile:
                    out = self.fwd(x)[:, :, :h, :w].float()
                else:
                    out = fast_tiled(self.fwd, x, tile=job.tile, progress=_tile_progress(self.progress, task))
            out = out.cpu().clamp_(0, 1)
            if job.alpha < 1.0:
                out.mul_(job.alpha).add_(x.cpu(), alpha=1.0 - job.alpha)
            if job.preserve_color:
                from ..methods.gatys_ext import luminance_transfer

                out = luminance_transfer(out, x.cpu())
        return out


def _pad8(encoder: nn.Module) -> bool:
    """Whether the encoder's max-pools floor (torchvision VGG): its input must then be padded to a multiple of 8."""
    return any(isinstance(m, nn.MaxPool2d) and not m.ceil_mode for m in encoder.modules())


class _AdainRunner:
    """Loads encoder, decoder and style images once; stylizes one content image per call."""

    def __init__(self, job: StylizeJob, rt: Runtime, save: SaveOptions, progress: Optional[ProgressFn]) -> None:
        from ..methods.style_fastpath import DecoderForward

        job.validate()
        enc, dec, desc = load_adain_pair(job.encoder, job.decoder, progress)
        note(progress, "model", f"AdaIN: {desc}")
        self.encoder = rt.prepare(enc)
        self.pad8 = _pad8(enc)
        self.decoder = DecoderForward(dec.to(rt.device), channels_last=rt.channels_last, native_dtype=rt.native_dtype)
        self.job, self.rt, self.save, self.progress = job, rt, save, progress
        self.styles = [_shorter_side_at_most(s, job.style_size) for s in _load_styles(job.styles, save.max_pixels, "adain")]
        self.style_stats: Optional[list] = None
        if not job.preserve_color:
            self.style_stats = [self._stats(s) for s in self.styles]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) in [0, 1] -> relu4_1 (1, C, ceil(h/8), ceil(w/8)); call under inference mode."""
        x = self.rt.to_input(x)
        h, w = x.shape[-2:]
        if self.pad8 and (h % 8 or w % 8):
            ph, pw = -h % 8, -w % 8
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return self.encoder(x, ("relu4_1",))["relu4_1"]

    def _stats(self, style: torch.Tensor):  # type: ignore[no-untyped-def]
        from ..methods.style_tiles import feature_stats

        with torch.inference_mode(), self.rt.autocast():
            return feature_stats(self.encode(style).float())

    def __call__(self, content: torch.Tensor, task: str) -> torch.Tensor:
        from ..ops.stats import coral
        from ..methods.style_tiles import adain_tiled

        job, rt = self.job, self.rt
        x = _resize_content(content, job.size).float()
        h, w = x.shape[-2:]
        stats = self.style_stats
        if stats is None:  # preserve colour: CORAL of each style towards this content (the reference's order)
            stats = [self._stats(coral(s[0], _pixels_like(x, s)[0]).unsqueeze(0)) for s in self.styles]
        masks = [load_mask(m, (h, w), self.save.max_pixels) for m in job.masks] if job.masks else None
        tile = job.tile if job.tile else max(h, w)
        with torch.inference_mode():
            with rt.autocast():
                out = adain_tiled(self.encode, self.decoder, x, stats, alpha=job.alpha,
                                  style_weights=job.gatys.style_weights, masks=masks, tile=tile,
                                  stats=job.tile_stats, progress=_tile_progress(self.progress, task))
            return out.cpu().clamp_(0, 1)


def make_runner(job: StylizeJob, runtime: Runtime, save: SaveOptions = SaveOptions(),
                progress: Optional[ProgressFn] = None) -> Callable[[torch.Tensor, str], torch.Tensor]:
    """The per-image function of a job: ``runner(content (1, 3, H, W) in [0, 1], task name) -> (1, 3, H', W')``."""
    job.validate()
    if job.method == "fast":
        return _FastRunner(job, runtime, save, progress)
    if job.method == "adain":
        return _AdainRunner(job, runtime, save, progress)
    if job.method == "wct":
        from .stylize_wct import WctRunner

        return WctRunner(job, runtime, save, progress)
    return _GatysRunner(job, runtime, save, progress)  # type: ignore[return-value]


def run_stylize(
    job: StylizeJob,
    items: Sequence[InputItem],
    namer: OutputNamer,
    *,
    runtime: Runtime,
    save: SaveOptions = SaveOptions(),
    progress: Optional[ProgressFn] = None,
) -> BatchResult:
    """Stylize every content input and write the results (see :func:`imgforge.batch.run_batch`)."""
    _check_requested_size(job, runtime, save)
    runner = make_runner(job, runtime, save, progress)

    size = job.gatys.size if job.method in OPTIMISING else job.size

    def process(img: LoadedImage) -> torch.Tensor:
        if size:  # the image the method sees: long side resized to --size
            w, h = img.size
            s = size / max(w, h)
            check_image_size((max(1, round(w * s)), max(1, round(h * s))), MIN_SIDE[job.method], img.source,
                             f"--method {job.method} at --size {size}")
        out = runner(img.rgb[None], f"stylize {Path(img.source).name}")
        img.rgb = torch.empty((3, 0, 0))  # free the content before the output is encoded (large images: memory)
        return out

    return run_batch(items, namer, process, save=save, progress=progress, task="images",
                     min_side=MIN_SIDE[job.method], what=f"--method {job.method}")


def _check_requested_size(job: StylizeJob, runtime: Runtime, save: SaveOptions) -> None:
    """Refuse a ``--size`` whose (square, worst case) output would not fit, before any model is loaded."""
    size = job.gatys.size if job.method in OPTIMISING else job.size
    if size:
        tiled = job.method not in OPTIMISING and bool(job.tile) and size > job.tile
        check_output_size(size, size, method=job.method, option=f"--size {size}", tiled=tiled,
                          device=runtime.device, max_pixels=save.max_pixels)


def run_texture(
    job: StylizeJob,
    output: str,
    size: Tuple[int, int],
    *,
    runtime: Runtime,
    save: SaveOptions = SaveOptions(),
    progress: Optional[ProgressFn] = None,
) -> Path:
    """Synthesize a texture of ``size = (H, W)`` pixels from the job's style images and write it to ``output``."""
    if job.method != "gatys":
        raise UsageError("texture synthesis needs --method gatys")
    check_output_file(output, "-o")
    format_for(output) if output != "-" else None
    if Path(output).exists() and not save.overwrite and output != "-":
        raise UsageError(f"{output} exists; pass --overwrite to replace it")
    check_output_size(size[0], size[1], method="gatys", option=f"--width {size[1]} --height {size[0]}",
                      device=runtime.device, max_pixels=save.max_pixels)
    job = dataclasses.replace(job, gatys=dataclasses.replace(job.gatys, output_size=tuple(size), init="noise"))
    runner = _GatysRunner(job, runtime, save, progress)
    out = runner(None, "texture")
    return save_image(out, output, quality=save.quality)
