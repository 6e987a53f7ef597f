"""The invert / edit job family: ``imgforge invert``, ``morph``, ``style-mix``, ``edit``, ``inpaint`` and
``superres`` as library calls. Each takes a frozen job, a :class:`~imgforge.runtime.Runtime` and a progress callback,
loads the generator (and, for image sources, the perceptual encoder), runs the tensor-level methods of
:mod:`imgforge.methods.invert` / :mod:`imgforge.methods.edits`, writes its files (:mod:`imgforge.reports` for grids
and GIFs) and returns what it wrote with a one-line summary for the CLI.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..errors import InputError, UsageError
from ..fsutil import atomic_write_text
from ..generator_api import DEFAULT_GENERATOR, load_generator_for
from ..io import load_image, save_image
from ..losses.perceptual import PerceptualDistance
from ..hub.encoders import resolve_perceptual_encoder
from ..latents import LatentRecord, load_latent, save_latent
from ..methods.edits import Source, seed_to_z
from ..methods.invert import InvertConfig, Inverter, prepare_target
from ..models.protocols import LatentGenerator, set_class
from ..progress import ProgressFn, note
from ..reports import make_grid, save_gif, side_by_side, upscale_nearest
from ..runtime import Runtime


# ------------------------------------------------------------------------------------------------ sources
def resolve_sources(sources: Sequence[Source], G: LatentGenerator, inverter: Optional[Inverter] = None, *, fit: str = "crop",
                    align: Optional[str] = None, truncation_psi: float = 1.0, max_pixels: Optional[int] = None,
                    progress: Any = None) -> List[LatentRecord]:
    """Turn sources into latent records: seeds through the mapping network (truncated towards ``w_avg`` by
    ``truncation_psi``), latent files as read, images inverted together in one batch with ``inverter``."""
    if inverter is None and any(s.kind == "image" for s in sources):
        raise UsageError("image sources need an inverter")
    recs: List[Optional[LatentRecord]] = [None] * len(sources)
    images: List[Tuple[int, Tensor]] = []
    for i, s in enumerate(sources):
        if s.kind == "seed":
            z = seed_to_z(int(s.value), G.z_dim).to(G.w_avg.device)
            with torch.no_grad():
                ws = G.mapping(z, truncation_psi=truncation_psi).float().cpu()
            recs[i] = LatentRecord(space="z", latent=z.cpu(), ws=ws, meta={"seed": str(s.value)})
        elif s.kind == "latent":
            rec = load_latent(str(s.value))
            if rec.ws.shape[1:] != (G.num_ws, G.w_dim):
                raise InputError(f"{s.value}: latent of shape {tuple(rec.ws.shape[1:])} does not fit this generator "
                                 f"({G.num_ws} x {G.w_dim}); was it inverted with other --weights?")
            recs[i] = rec
        else:
            rgb = load_image(str(s.value), max_pixels=max_pixels).rgb
            images.append((i, prepare_target(rgb, G.img_resolution, fit, align)))
    if images:
        assert inverter is not None
        res = inverter.run(torch.cat([t for _, t in images]), progress=progress, task="invert sources")
        for j, (i, _) in enumerate(images):
            recs[i] = res.item(j)
    return [r for r in recs if r is not None]



# ------------------------------------------------------------------------------------------------ the batch job
@dataclass(frozen=True)
class InvertJob:
    """Everything ``imgforge invert`` needs besides the inputs: weights, encoder, settings and output options.

    Attributes:
        weights: generator name or file (default :data:`DEFAULT_GENERATOR`).
        encoder: perceptual encoder name or file (None: VGG-16 if present locally, else the embedded encoder).
        config: the optimisation settings.
        batch_size: images optimised together.
        fit, align: input preparation (:func:`prepare_target`).
        gif: also write ``<stem>.gif`` of the optimisation (about ``gif_frames`` snapshots).
        overwrite: redo images whose outputs exist.
    """

    weights: str = DEFAULT_GENERATOR
    encoder: Optional[str] = None
    config: InvertConfig = field(default_factory=InvertConfig)
    batch_size: int = 8
    fit: str = "crop"
    align: Optional[str] = None
    gif: bool = False
    gif_frames: int = 50
    overwrite: bool = False


def build_perceptual(cfg: InvertConfig, encoder: Optional[str], device: torch.device,
                     progress: Optional[ProgressFn] = None) -> Tuple[Optional[PerceptualDistance], str]:
    """The perceptual distance of ``cfg`` (None when the loss does not use it) and a description of the encoder."""
    if not cfg.uses_perceptual:
        return None, "none (pixel MSE only)"

    enc, desc = resolve_perceptual_encoder(encoder, device=device, progress=progress)
    return PerceptualDistance(enc, cfg.perceptual_layers, min_size=cfg.perceptual_min_size), desc


def output_paths(out_dir: Union[str, Path], stem: str) -> Dict[str, Path]:
    """The files ``imgforge invert`` writes for input ``<stem>.*`` into ``out_dir``."""
    d = Path(out_dir)
    return {"image": d / f"{stem}.png", "latent": d / f"{stem}.latent.safetensors",
            "compare": d / f"{stem}.compare.png", "json": d / f"{stem}.json", "gif": d / f"{stem}.gif"}


def run_invert(job: InvertJob, inputs: Sequence[str], out_dir: Union[str, Path], *, runtime: Any,
               progress: Optional[ProgressFn] = None, max_pixels: Optional[int] = None) -> Any:
    """Invert image files in batches and write, per input ``<stem>``: ``<stem>.png`` (reconstruction),
    ``<stem>.latent.safetensors``, ``<stem>.compare.png`` (target | reconstruction), ``<stem>.json`` (MSE, PSNR,
    SSIM, steps, seconds, settings) and with ``job.gif`` ``<stem>.gif``.

    Returns a :class:`~imgforge.batch.BatchResult` (failed inputs are reported, the others still written).
    """
    from ..batch import BatchResult, ItemResult
    from ..errors import ImgforgeError
    from ..io import InputItem
    from ..metrics import mse as mse_fn, psnr as psnr_fn, ssim as ssim_fn

    if job.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {job.batch_size}")
    cfg = job.config
    if job.gif and not cfg.snapshot_every:
        cfg = dataclasses.replace(cfg, snapshot_every=max(1, cfg.steps // max(1, job.gif_frames)))
    cfg.validate()
    result = BatchResult()
    todo: List[Tuple[int, str, Tensor]] = []
    for idx, src in enumerate(inputs):
        item = InputItem(src)
        paths = output_paths(out_dir, item.stem)
        if paths["image"].exists() and not job.overwrite:
            result.items.append(ItemResult(src, str(paths["image"]), "skipped"))
            continue
        try:
            img = load_image(src, max_pixels=max_pixels)
        except ImgforgeError as exc:
            result.items.append(ItemResult(src, None, "failed", str(exc)))
            continue
        todo.append((idx, src, img.rgb))
    if not todo:
        return result
    G, _ = load_generator_for(job.weights, runtime.device)
    perceptual, desc = build_perceptual(cfg, job.encoder, runtime.device, progress)
    note(progress, "invert", f"loss: {cfg.loss}; perceptual encoder: {desc}")
    inv = Inverter(G, cfg, perceptual=perceptual, runtime=runtime)
    R = G.img_resolution
    for start in range(0, len(todo), job.batch_size):
        chunk = todo[start:start + job.batch_size]
        targets = torch.cat([prepare_target(rgb, R, job.fit, job.align) for _, _, rgb in chunk])
        names = ", ".join(Path(src).name for _, src, _ in chunk)
        res = inv.run(targets, seeds=[cfg.seed + idx for idx, _, _ in chunk], progress=progress,
                      task=f"invert {names}"[:60])
        m, p, s = mse_fn(res.images, targets), psnr_fn(res.images, targets), ssim_fn(res.images, targets)
        for j, (idx, src, _) in enumerate(chunk):
            paths = output_paths(out_dir, InputItem(src).stem)
            save_image(res.images[j], paths["image"])
            save_latent(paths["latent"], res.item(j), {"weights": job.weights, "source": Path(src).name})
            save_image(side_by_side(targets[j], res.images[j]), paths["compare"])
            if job.gif and res.snapshots:
                save_gif([side_by_side(targets[j], snap[j]) for snap in res.snapshots], paths["gif"], upscale=4
                         if R <= 64 else 1)
            info = {"input": src, "weights": job.weights, "space": cfg.space, "noise_optimised": cfg.optimize_noise,
                    "loss": cfg.loss, "encoder": desc, "steps": res.steps, "seconds": round(res.seconds, 3),
                    "batch_size": len(chunk), "steps_per_s": round(res.steps / max(res.seconds, 1e-9), 3),
                    "mse": float(m[j]), "psnr": float(p[j]), "ssim": float(s[j]),
                    "resolution": R, "config": _config_json(cfg)}
            atomic_write_text(paths["json"], json.dumps(info, indent=2) + "\n")
            result.items.append(ItemResult(src, str(paths["image"]), "ok", None, res.seconds / len(chunk),
                                           {"psnr": float(p[j]), "ssim": float(s[j])}))
    return result


def _config_json(cfg: InvertConfig) -> Dict[str, Any]:
    d = dataclasses.asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


# ------------------------------------------------------------------------------------------------ edits
@dataclass(frozen=True)
class EditSetup:
    """What every edit command shares: the generator, the inversion of image sources and how images are fitted.

    Attributes:
        weights: generator name or file. config: inversion settings (image sources are inverted first).
        encoder: perceptual encoder (None: VGG-16 if present locally, else the embedded encoder).
        fit, align: input preparation (:func:`~imgforge.methods.invert.prepare_target`).
        max_pixels: refuse larger input images.
        class_label: the class of a class-conditional generator (``--class``; None for the others).
    """

    weights: str = DEFAULT_GENERATOR
    config: InvertConfig = field(default_factory=InvertConfig)
    encoder: Optional[str] = None
    fit: str = "crop"
    align: Optional[str] = None
    max_pixels: Optional[int] = None
    class_label: Optional[int] = None


def prepare(setup: EditSetup, runtime: Runtime, progress: Optional[ProgressFn] = None,
            need_inverter: bool = True) -> Tuple[LatentGenerator, Optional[Inverter]]:
    """The generator on the runtime's device and, when needed, an inverter with its perceptual encoder."""
    cfg = setup.config
    G, _ = load_generator_for(setup.weights, runtime.device)
    set_class(G, setup.class_label)
    inv = None
    if need_inverter:
        perceptual, desc = build_perceptual(cfg, setup.encoder, runtime.device, progress)
        note(progress, "invert", f"inversion: {cfg.space}, {cfg.steps} steps, loss {cfg.loss}; perceptual encoder: {desc}")
        inv = Inverter(G, cfg, perceptual=perceptual, runtime=runtime)
    return G, inv


@dataclass
class EditResult:
    """Files an edit command wrote and a one-line summary."""

    outputs: List[Path] = field(default_factory=list)
    summary: str = ""


@dataclass(frozen=True)
class MorphJob:
    """``imgforge morph``: ``frames`` images from ``a`` to ``b`` (seeds, latent files or images) in ``space``
    (``w+`` linear, ``z`` slerp), written as ``out_dir/frame_NNN.png``, ``morph.gif`` and ``morph_sheet.png``."""

    a: str
    b: str
    frames: int = 10
    space: str = "w+"
    fps: float = 10.0
    upscale: int = 1
    out_dir: str = "morph"
    setup: EditSetup = field(default_factory=EditSetup)


def run_morph(job: MorphJob, runtime: Runtime, progress: Optional[ProgressFn] = None) -> EditResult:
    from ..methods.edits import morph_latents, parse_sources, render

    out_dir = Path(job.out_dir)
    sources = parse_sources([job.a, job.b])
    G, inv = prepare(job.setup, runtime, progress, need_inverter=any(s.kind == "image" for s in sources))
    ra, rb = resolve_sources(sources, G, inv, fit=job.setup.fit, align=job.setup.align, progress=progress)
    ws, nz = morph_latents(ra, rb, job.frames, G, job.space)
    imgs = render(G, ws, nz)
    res = EditResult([save_image(im, out_dir / f"frame_{i:03d}.png") for i, im in enumerate(imgs)])
    res.outputs.append(save_gif([upscale_nearest(im, job.upscale) for im in imgs], out_dir / "morph.gif",
                                duration_ms=int(1000 / job.fps)))
    sheet = out_dir / "morph_sheet.png"
    res.outputs.append(save_image(upscale_nearest(make_grid(imgs, min(job.frames, 10)), job.upscale), sheet))
    res.summary = f"wrote {job.frames} frames, {out_dir / 'morph.gif'} and {sheet}"
    return res


@dataclass(frozen=True)
class StyleMixJob:
    """``imgforge style-mix``: row sources with the ``layers`` (or the ``styles`` group) of the column sources."""

    rows: Tuple[str, ...]
    cols: Tuple[str, ...]
    styles: str = "coarse"
    layers: Optional[str] = None
    trunc: float = 1.0
    upscale: int = 1
    output: str = "style_mix.png"
    setup: EditSetup = field(default_factory=EditSetup)


def run_style_mix(job: StyleMixJob, runtime: Runtime, progress: Optional[ProgressFn] = None) -> EditResult:
    from ..methods.edits import describe_layers, parse_layers, parse_sources, style_mix

    rsrc, csrc = parse_sources(job.rows), parse_sources(job.cols)
    G, inv = prepare(job.setup, runtime, progress, need_inverter=any(s.kind == "image" for s in rsrc + csrc))
    lay = parse_layers(job.layers if job.layers is not None else job.styles, G.num_ws, G.img_resolution)
    recs = resolve_sources(rsrc + csrc, G, inv, fit=job.setup.fit, truncation_psi=job.trunc, progress=progress)
    grid = style_mix(G, recs[:len(rsrc)], recs[len(rsrc):], lay)
    out = save_image(upscale_nearest(grid, job.upscale), job.output)
    return EditResult([out], f"copied layers {lay} ({describe_layers(G.num_ws, G.img_resolution)}); wrote {job.output}")


@dataclass(frozen=True)
class EditJob:
    """``imgforge edit``: a strip of ``frames`` images moving ``source`` along SeFa ``direction`` or by latent
    arithmetic ``source + s (to - from_)``, on ``layers``."""

    source: str
    direction: Optional[int] = None
    from_: Optional[str] = None
    to: Optional[str] = None
    strength: float = 3.0
    frames: int = 7
    layers: Optional[str] = None
    trunc: float = 1.0
    upscale: int = 1
    output: str = "edit_strip.png"
    setup: EditSetup = field(default_factory=EditSetup)

    @property
    def arithmetic(self) -> bool:
        return self.from_ is not None or self.to is not None

    def validate(self) -> None:
        if self.arithmetic and (self.from_ is None or self.to is None):
            raise UsageError("latent arithmetic needs both --from and --to")
        if self.arithmetic == (self.direction is not None):
            raise UsageError("give either --direction K (SeFa) or --from A --to B (latent arithmetic)")


def run_edit(job: EditJob, runtime: Runtime, progress: Optional[ProgressFn] = None) -> EditResult:
    from ..methods.edits import (
        edit_strip, latent_arithmetic, parse_layers, parse_sources, render, sefa_directions,
        strengths_for,
    )

    job.validate()
    arith = job.arithmetic
    srcs = parse_sources([job.source] + ([job.from_, job.to] if arith else []))  # type: ignore[list-item]
    if len(srcs) != (3 if arith else 1):
        raise UsageError("SOURCE, --from and --to must each name one image, latent file or seed")
    G, inv = prepare(job.setup, runtime, progress, need_inverter=any(s.kind == "image" for s in srcs))
    lay = parse_layers(job.layers, G.num_ws, G.img_resolution)
    recs = resolve_sources(srcs, G, inv, fit=job.setup.fit, truncation_psi=job.trunc, progress=progress)
    if arith:
        ss = strengths_for(job.strength, job.frames, symmetric=False)
        ws = latent_arithmetic(recs[0].ws, recs[1].ws, recs[2].ws, ss, lay)
        what = f"{srcs[0].label} + s ({srcs[2].label} - {srcs[1].label})"
    else:
        _, dirs = sefa_directions(G, lay)
        if job.direction >= dirs.shape[0]:  # type: ignore[operator]
            raise UsageError(f"--direction {job.direction}: the generator has {dirs.shape[0]} directions")
        ss = strengths_for(job.strength, job.frames, symmetric=True)
        ws = edit_strip(recs[0].ws, dirs[job.direction], ss, lay)  # type: ignore[index]
        what = f"SeFa direction {job.direction} on layers {lay}"
    nz = recs[0].noise
    imgs = render(G, ws, None if nz is None else [n.expand(len(ss), -1, -1, -1) for n in nz])
    out = save_image(upscale_nearest(make_grid(imgs, len(ss)), job.upscale), job.output)
    return EditResult([out], f"{what}, strengths {', '.join(f'{v:g}' for v in ss)}; wrote {job.output}")


@dataclass(frozen=True)
class InpaintJob:
    """``imgforge inpaint``: fill the white pixels of ``mask`` in ``image`` by masked inversion."""

    image: str
    mask: str
    samples: int = 1
    combine: str = "mean"
    candidates: int = 256
    save_latent: Optional[str] = None
    output: str = "inpainted.png"
    setup: EditSetup = field(default_factory=EditSetup)

    def validate(self) -> None:
        from ..methods.edits import COMBINE

        if self.combine not in COMBINE:
            raise UsageError(f"--combine {self.combine!r}: expected one of {', '.join(COMBINE)}")
        if self.samples > self.candidates:
            raise UsageError(f"--samples {self.samples} exceeds --candidates {self.candidates}")


def _write_image_and_latent(image: Tensor, record: Any, output: str, latent: Optional[str],
                            meta: Dict[str, str]) -> List[Path]:
    """Write the image and (optionally) its latent: both or neither (a failed latent write removes the image, so
    a rerun is not refused because of a half result)."""
    written = [save_image(image, output)]
    if latent:
        try:
            written.append(save_latent(latent, record, meta))
        except BaseException:
            Path(output).unlink(missing_ok=True)
            raise
    return written


def run_inpaint(job: InpaintJob, runtime: Runtime, progress: Optional[ProgressFn] = None) -> EditResult:
    from ..methods.edits import inpaint, prepare_mask

    job.validate()
    st = job.setup
    img = load_image(job.image, max_pixels=st.max_pixels).rgb
    m = load_image(job.mask, max_pixels=st.max_pixels).rgb
    G, inv = prepare(st, runtime, progress)
    R = G.img_resolution
    target = prepare_target(img, R, st.fit)
    hole = prepare_mask(m, R, st.fit)
    comp, res = inpaint(inv, target, hole, samples=job.samples, combine=job.combine,  # type: ignore[arg-type]
                        candidates=job.candidates, progress=progress)
    out = EditResult(_write_image_and_latent(comp[0], res.item(0), job.output, job.save_latent,
                                             {"weights": st.weights, "source": Path(job.image).name}))
    how = f" with the {job.combine} of {job.samples} samples" if job.samples > 1 else ""
    out.summary = f"filled {float(hole.mean()) * 100:.0f}% of the pixels{how}; wrote {job.output}"
    return out


@dataclass(frozen=True)
class SuperresJob:
    """``imgforge superres``: the generator image whose ``kernel`` downscale by ``scale`` matches ``lowres``."""

    lowres: str
    scale: Optional[int] = None
    kernel: str = "bicubic"
    save_latent: Optional[str] = None
    output: str = "superres.png"
    setup: EditSetup = field(default_factory=EditSetup)


def run_superres(job: SuperresJob, runtime: Runtime, progress: Optional[ProgressFn] = None) -> EditResult:
    from ..methods.edits import superres

    st = job.setup
    img = load_image(job.lowres, max_pixels=st.max_pixels).rgb
    G, inv = prepare(st, runtime, progress)
    R = G.img_resolution
    k = job.scale if job.scale is not None else max(1, R // int(img.shape[-1]))
    if R % k:
        raise UsageError(f"--scale {k} does not divide the generator resolution {R}")
    small = prepare_target(img, R // k, st.fit)
    res = superres(inv, small, k, kernel=job.kernel, progress=progress)  # type: ignore[arg-type]
    out = EditResult(_write_image_and_latent(res.images[0], res.item(0), job.output, job.save_latent,
                                             {"weights": st.weights, "source": Path(job.lowres).name}))
    out.summary = f"x{k}: {R // k}px -> {R}px; wrote {job.output}"
    return out
