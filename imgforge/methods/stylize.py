"""The ``stylize`` job: style images + options -> a batch of stylized files (library side of ``imgforge stylize``).

One function per job, called by the thin CLI: :func:`run_stylize` for content files and :func:`run_texture` for
texture synthesis. Methods: ``gatys`` (optimisation; this module), ``fast`` and ``adain`` (feed-forward; added by
their own modules).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..batch import BatchResult, SaveOptions, run_batch
from ..errors import UsageError
from ..io import InputItem, LoadedImage, OutputNamer, load_image, save_image
from ..progress import ProgressFn, note
from ..runtime import Runtime, make_generator
from .gatys import GatysConfig, resize_long_side, stylize_gatys

METHODS = ("gatys",)


@dataclass(frozen=True)
class StylizeJob:
    """Everything ``imgforge stylize`` needs besides the inputs and outputs.

    Attributes:
        styles: style image paths (one or more).
        method: ``"gatys"``.
        encoder: weights name or path of the loss network; None = published VGG-19 if found, else the embedded one.
        gatys: the optimisation settings.
        seed: seed of the noise initialisation / any randomness (None = random).
    """

    styles: Tuple[str, ...]
    method: str = "gatys"
    encoder: Optional[str] = None
    gatys: GatysConfig = field(default_factory=GatysConfig)
    seed: Optional[int] = None

    def validate(self) -> None:
        if not self.styles:
            raise UsageError("give at least one --style image")
        if self.method not in METHODS:
            raise UsageError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        self.gatys.validate()


def resolve_style_encoder(spec: Optional[str], *, progress: Optional[ProgressFn] = None):  # type: ignore[no-untyped-def]
    """The loss network for Gatys: ``spec`` (a weights name or file, resolved through the weights store, downloading
    when allowed) or, when None, the published VGG-19 if it is present locally, else the embedded encoder.

    Returns ``(encoder, one-line description)``.
    """
    from ..errors import WeightsError
    from ..hub.store import resolve
    from .encoders import load_style_encoder

    if spec is not None:
        path = resolve(spec, progress=progress)
        encoder, desc = load_style_encoder(path)
        return encoder, desc
    try:
        path = resolve("vgg19", offline=True)
    except WeightsError:
        return load_style_encoder(None)
    return load_style_encoder(path)


def _load_styles(paths: Sequence[str], max_pixels: Optional[int]) -> List[torch.Tensor]:
    return [load_image(p, max_pixels=max_pixels).rgb[None] for p in paths]


def _autocast_name(rt: Runtime) -> Optional[str]:
    return {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(rt.dtype)  # type: ignore[arg-type]


class _GatysRunner:
    """Loads the encoder and the style images once, then stylizes one content image per call."""

    def __init__(self, job: StylizeJob, rt: Runtime, save: SaveOptions, progress: Optional[ProgressFn]) -> None:
        job.validate()
        encoder, description = resolve_style_encoder(job.encoder, progress=progress)
        note(progress, "encoder", f"loss network: {description}")
        self.encoder = encoder.to(rt.device).eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.rt = rt
        self.cfg = job.gatys if job.gatys.autocast is not None else dataclasses.replace(job.gatys, autocast=_autocast_name(rt))
        self.styles = [s.to(rt.device) for s in _load_styles(job.styles, save.max_pixels)]
        self.seed = job.seed
        self.progress = progress

    def __call__(self, content: Optional[torch.Tensor], task: str) -> torch.Tensor:
        gen = make_generator(self.seed if self.seed is not None else self.cfg.seed, self.rt.device)
        if content is not None:
            content = content.to(self.rt.device)
        out = stylize_gatys(content, self.styles, self.encoder, self.cfg, progress=_retask(self.progress, task),
                            generator=gen)
        return out.detach().float().cpu()


def _retask(progress: Optional[ProgressFn], task: str) -> Optional[ProgressFn]:
    if progress is None:
        return None

    def fn(ev):  # type: ignore[no-untyped-def]
        progress(dataclasses.replace(ev, task=task))

    return fn


def run_stylize(
    job: StylizeJob,
    items: Sequence[InputItem],
    namer: OutputNamer,
    *,
    runtime: Runtime,
    save: SaveOptions = SaveOptions(),
    progress: Optional[ProgressFn] = None,
) -> BatchResult:
    """Stylize every content input with the job's styles and write the results (see :func:`imgforge.batch.run_batch`)."""
    runner = _GatysRunner(job, runtime, save, progress)

    def process(img: LoadedImage) -> torch.Tensor:
        return runner(img.rgb[None], f"stylize {Path(img.source).name}")

    return run_batch(items, namer, process, save=save, progress=progress, task="images")


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
    if Path(output).exists() and not save.overwrite and output != "-":
        raise UsageError(f"{output} exists; pass --overwrite to replace it")
    job = dataclasses.replace(job, gatys=dataclasses.replace(job.gatys, output_size=tuple(size), init="noise"))
    runner = _GatysRunner(job, runtime, save, progress)
    out = runner(None, "texture")
    return save_image(out, output, quality=save.quality)
