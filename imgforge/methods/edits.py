"""Editing with a StyleGAN2 prior: morphs, style mixing, latent arithmetic, SeFa directions, inpainting, super-resolution.

Latents travel as :class:`~imgforge.methods.invert.LatentRecord` (``ws (1, num_ws, w_dim)`` plus the space's own
latent and optional noise maps). A *source* is a seed (``7``, ranges ``3-5``), a latent file written by
``imgforge invert`` (``*.safetensors``) or an image (inverted first, see :func:`imgforge.jobs.edit.resolve_sources`).

Which w feeds which layer (FACTS.md 3.7): ``ws[0]`` modulates the 4x4 conv, ``ws[2k+1]`` and ``ws[2k+2]`` the two
convs at ``2^(k+3)`` (``ws[2k+1]`` also the ToRGB of the resolution below), and the last one only the final ToRGB.
:func:`layer_resolutions` gives each index the resolution of the convolution it modulates (the last: the output
resolution), and the named groups follow the StyleGAN papers: coarse = 4²-8², middle = 16²-32², fine = 64² and
above. For a 32 px generator (8 ws) that is coarse 0-2, middle 3-7 and no fine layers; for 1024 px (18 ws) coarse
0-2, middle 3-6, fine 7-17.

SeFa (Shen & Zhou, CVPR 2021, "Closed-Form Factorization of Latent Semantics in GANs"): the directions are the
eigenvectors of ``A^T A`` where the rows of ``A`` are the unit-normalised weight vectors (one per output channel) of
the style affine layers of the selected convolutions (ToRGB layers excluded, as in the reference code), sorted by
decreasing eigenvalue; each direction's sign is fixed so that its largest-magnitude component is positive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..errors import InputError, UsageError
from ..models.protocols import LatentGenerator, parse_seeds, require_layer_styles

if TYPE_CHECKING:
    from ..models.stylegan2 import Generator as StyleGAN2Generator
from ..ops.resize import KERNELS, downscale
from ..reports import make_grid
from .invert import InversionResult, Inverter, LatentRecord, prepare_target, synthesize

GROUPS = ("coarse", "middle", "fine")


# ------------------------------------------------------------------------------------------------ seeds
def seed_to_z(seed: int, z_dim: int) -> Tensor:
    """z of ``seed``: ``np.random.RandomState(seed).randn(1, z_dim)`` as float32 ``(1, z_dim)`` (NVIDIA's
    ``generate.py`` convention): :func:`imgforge.models.protocols.z_from_seed` as one row."""
    from ..models.protocols import z_from_seed

    return z_from_seed(int(seed), int(z_dim)).reshape(1, int(z_dim)).float()


# ------------------------------------------------------------------------------------------------ layers
def layer_resolutions(num_ws: int, resolution: int) -> List[int]:
    """Resolution of the convolution each w index modulates (the last index: the output resolution)."""
    res = []
    for i in range(num_ws):
        r = 4 if i == 0 else 2 ** (3 + (i - 1) // 2)
        res.append(min(r, resolution))
    return res


def style_groups(num_ws: int, resolution: int) -> Dict[str, List[int]]:
    """w indices of the coarse (4²-8²), middle (16²-32²) and fine (>= 64²) layers."""
    res = layer_resolutions(num_ws, resolution)
    return {"coarse": [i for i, r in enumerate(res) if r <= 8],
            "middle": [i for i, r in enumerate(res) if 16 <= r <= 32],
            "fine": [i for i, r in enumerate(res) if r >= 64]}


def describe_layers(num_ws: int, resolution: int) -> str:
    """One line: ``"coarse 0-2 (4²-8²), middle 3-7 (16²-32²), fine none (>=64²)"``."""
    g = style_groups(num_ws, resolution)

    def span(ix: List[int]) -> str:
        return "none" if not ix else (f"{ix[0]}-{ix[-1]}" if len(ix) > 1 else str(ix[0]))

    return (f"{resolution}px generator, {num_ws} layers: coarse {span(g['coarse'])} (4²-8²), middle "
            f"{span(g['middle'])} (16²-32²), fine {span(g['fine'])} (>=64²)")


def parse_layers(spec: Optional[str], num_ws: int, resolution: int) -> List[int]:
    """Layer selection: ``None``/``"all"``, a group name, or indices/ranges ``"a-b"``, ``"0,2,4-6"`` (inclusive)."""
    if spec is None or spec.strip() in ("", "all"):
        return list(range(num_ws))
    spec = spec.strip().lower()
    groups = style_groups(num_ws, resolution)
    out: List[int] = []
    for part in spec.split(","):
        part = part.strip()
        if part in groups:
            if not groups[part]:
                raise UsageError(f"the {part} group is empty for this generator ({describe_layers(num_ws, resolution)}); "
                                 "choose another group or --layers a-b")
            out.extend(groups[part])
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"--layers {spec!r}: expected all, coarse, middle, fine or indices like 0-3,6")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a or b >= num_ws:
            raise UsageError(f"--layers {part!r}: indices must satisfy 0 <= a <= b <= {num_ws - 1} "
                             f"({describe_layers(num_ws, resolution)})")
        out.extend(range(a, b + 1))
    return sorted(set(out))


# ------------------------------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class Source:
    """One source token: ``kind`` is ``"seed"``, ``"latent"`` or ``"image"``; ``value`` the seed or path."""

    kind: str
    value: Union[int, str]

    @property
    def label(self) -> str:
        return f"seed {self.value}" if self.kind == "seed" else Path(str(self.value)).name


def parse_sources(specs: Iterable[str]) -> List[Source]:
    """Each spec may hold several comma-separated tokens: seeds/ranges, latent files, images (existing files win)."""
    out: List[Source] = []
    for spec in specs:
        for tok in (t.strip() for t in spec.split(",")):
            if not tok:
                continue
            p = Path(tok)
            if p.is_file():
                out.append(Source("latent" if p.name.endswith(".safetensors") else "image", tok))
            elif re.fullmatch(r"\d+(-\d+)?", tok):
                out.extend(Source("seed", s) for s in parse_seeds(tok, unique=False, option="seed range"))
            else:
                raise InputError(f"{tok}: no such file, and not a seed (e.g. 7 or 3-5)")
    if not out:
        raise UsageError("no sources given")
    return out


# ------------------------------------------------------------------------------------------------ rendering / grids
def render(G: LatentGenerator, ws: Tensor, noise: Optional[Sequence[Tensor]] = None, batch: int = 16) -> Tensor:
    """``ws (N, num_ws, w_dim)`` -> images ``(N, 3, R, R)`` in [0, 1] on the CPU (const noise unless given)."""
    dev = G.w_avg.device
    out = []
    with torch.no_grad():
        for i in range(0, ws.shape[0], batch):
            nz = None if noise is None else [n[i:i + batch].to(dev) if n.shape[0] > 1 else n.to(dev) for n in noise]
            img = G.synthesis(ws[i:i + batch].to(dev, torch.float32), noise=nz, noise_mode="const")
            out.append(((img.float() + 1) * 0.5).clamp(0, 1).cpu())
    return torch.cat(out)


# ------------------------------------------------------------------------------------------------ morph
def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation along the last dimension (linear when the vectors are (anti)parallel)."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    dot = (an * bn).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    lin = (1 - t) * a + t * b
    sl = (torch.sin((1 - t) * omega) / so.clamp_min(1e-8)) * a + (torch.sin(t * omega) / so.clamp_min(1e-8)) * b
    return torch.where(so.abs() < 1e-6, lin, sl)


def morph_latents(a: LatentRecord, b: LatentRecord, frames: int, G: LatentGenerator, space: str = "w+"
                  ) -> Tuple[Tensor, Optional[List[Tensor]]]:
    """Interpolated ``ws (frames, num_ws, w_dim)`` from ``a`` to ``b`` (both ends included) and noise maps.

    ``space="w+"``: linear interpolation of ws. ``space="z"``: spherical interpolation of z (both records need a z:
    seeds, or images inverted with ``--space z``), then the mapping network. Noise maps are interpolated linearly
    when both records have optimised ones, else the generator's const maps are used.
    """
    if frames < 2:
        raise UsageError(f"--frames must be >= 2, got {frames}")
    ts = [i / (frames - 1) for i in range(frames)]
    if space == "z":
        if a.space != "z" or b.space != "z":
            raise UsageError("--space z morphs need z latents on both ends (seeds, or images inverted with --space z)")
        z = torch.cat([slerp(a.latent.float(), b.latent.float(), t) for t in ts])
        with torch.no_grad():
            ws = G.mapping(z.to(G.w_avg.device)).float().cpu()
    elif space in ("w", "w+"):
        ws = torch.cat([torch.lerp(a.ws.float(), b.ws.float(), t) for t in ts])
    else:
        raise UsageError(f"--space {space!r}: morph interpolates in w+ (linear) or z (slerp)")
    noise = None
    if a.noise is not None and b.noise is not None:
        noise = [torch.cat([torch.lerp(na.float(), nb.float(), t) for t in ts]) for na, nb in zip(a.noise, b.noise)]
    return ws, noise


# ------------------------------------------------------------------------------------------------ style mixing
def style_mix(G: LatentGenerator, rows: Sequence[LatentRecord], cols: Sequence[LatentRecord], layers: Sequence[int]
              ) -> Tensor:
    """The style-mixing grid ``(3, H', W')``: top row = column sources, left column = row sources, cell (r, c) =
    row r's ws with the ``layers`` taken from column c (NVIDIA ``style_mixing.py`` layout; top-left left blank)."""
    if not rows or not cols:
        raise UsageError("style mixing needs at least one row and one column source")
    require_layer_styles(G, "style mixing")
    lay = list(layers)
    ws_r = torch.cat([r.ws.float() for r in rows])
    ws_c = torch.cat([c.ws.float() for c in cols])
    mixes = []
    for i in range(len(rows)):
        w = ws_r[i:i + 1].repeat(len(cols), 1, 1)
        w[:, lay] = ws_c[:, lay]
        mixes.append(w)
    row_img, col_img = render(G, ws_r), render(G, ws_c)
    mix_img = render(G, torch.cat(mixes))
    R = G.img_resolution
    cells = [torch.ones(3, R, R)] + list(col_img)
    for i in range(len(rows)):
        cells.append(row_img[i])
        cells.extend(mix_img[i * len(cols):(i + 1) * len(cols)])
    return make_grid(torch.stack(cells), len(cols) + 1)


# ------------------------------------------------------------------------------------------------ directions
def conv_affines(G: "StyleGAN2Generator") -> List[Optional[Any]]:
    """For each w index, the style affine (``EqualLinear``) of the convolution it modulates (None: ToRGB only)."""
    out: List[Optional[Any]] = [G.conv1.conv.modulation]
    convs = list(G.convs)
    for i in range(1, G.num_ws):
        out.append(convs[i - 1].conv.modulation if i - 1 < len(convs) else None)
    return out


def torgb_affines(G: "StyleGAN2Generator") -> List[Optional[Any]]:
    """For each w index, the ToRGB style affine it feeds (None when it feeds none)."""
    out: List[Optional[Any]] = [None] * G.num_ws
    out[1] = G.to_rgb1.conv.modulation
    for k, t in enumerate(G.to_rgbs):
        out[2 * k + 3] = t.conv.modulation
    return out


def sefa_directions(G: LatentGenerator, layers: Optional[Sequence[int]] = None) -> Tuple[Tensor, Tensor]:
    """SeFa directions of the selected layers: ``(eigenvalues (w_dim,), directions (w_dim, w_dim))``, row k =
    direction k (unit norm), by decreasing eigenvalue. Falls back to the ToRGB affines when the selection
    modulates no convolution."""
    require_layer_styles(G, "SeFa (--direction)")
    lay = list(range(G.num_ws)) if layers is None else list(layers)
    mods = [m for i, m in enumerate(conv_affines(G)) if i in lay and m is not None]
    if not mods:
        mods = [m for i, m in enumerate(torgb_affines(G)) if i in lay and m is not None]
    if not mods:
        raise UsageError(f"layers {lay} modulate nothing")
    with torch.no_grad():
        A = torch.cat([m.weight.detach().double().cpu() for m in mods])  # (sum C, w_dim)
        A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
        vals, vecs = torch.linalg.eigh(A.t() @ A)
        order = torch.argsort(vals, descending=True)
        vals, vecs = vals[order], vecs[:, order].t().contiguous()
        idx = vecs.abs().argmax(dim=1)
        sign = torch.sign(vecs.gather(1, idx[:, None]))
        vecs = vecs * sign
    return vals.float(), vecs.float()


def edit_strip(base_ws: Tensor, direction: Tensor, strengths: Sequence[float], layers: Sequence[int]) -> Tensor:
    """``base_ws (1, num_ws, w_dim)`` moved by ``s * direction (w_dim,)`` on ``layers``, one row per strength:
    ``(len(strengths), num_ws, w_dim)``."""
    lay = list(layers)
    out = base_ws.float().repeat(len(strengths), 1, 1)
    d = direction.float().view(1, 1, -1)
    s = torch.tensor([float(v) for v in strengths]).view(-1, 1, 1)
    out[:, lay] = out[:, lay] + s * d
    return out


def latent_arithmetic(w1: Tensor, w2: Tensor, w3: Tensor, strengths: Sequence[float], layers: Sequence[int]
                      ) -> Tensor:
    """``w1 + s (w3 - w2)`` on ``layers`` for each strength ``s``; all ``(1, num_ws, w_dim)`` ->
    ``(len(strengths), num_ws, w_dim)``."""
    lay = list(layers)
    out = w1.float().repeat(len(strengths), 1, 1)
    delta = w3.float() - w2.float()
    s = torch.tensor([float(v) for v in strengths]).view(-1, 1, 1)
    out[:, lay] = out[:, lay] + s * delta[:, lay]
    return out


def strengths_for(strength: float, frames: int, symmetric: bool) -> List[float]:
    """``frames`` strengths spanning ``[-strength, strength]`` (symmetric) or ``[0, strength]``."""
    if frames < 1:
        raise UsageError(f"--frames must be >= 1, got {frames}")
    if frames == 1:
        return [float(strength)]
    lo = -strength if symmetric else 0.0
    return [lo + (strength - lo) * i / (frames - 1) for i in range(frames)]


# ------------------------------------------------------------------------------------------------ inpaint / superres
def prepare_mask(mask_rgb: Tensor, resolution: int, fit: str = "crop") -> Tensor:
    """Mask image ``(3, H, W)`` in [0, 1] -> hole mask ``(1, 1, R, R)`` in {0, 1}: 1 (white) = hole to fill.

    The mask is fitted like the image (:func:`~imgforge.methods.invert.prepare_target`), averaged over channels and
    thresholded at 0.5.
    """
    m = prepare_target(mask_rgb, resolution, fit).mean(dim=1, keepdim=True)
    return (m > 0.5).float()


COMBINE = ("mean", "best")


def prior_inits(inverter: Inverter, image: Tensor, known: Tensor, samples: int, candidates: int = 256,
                seed: int = 0, chunk: int = 256) -> Tensor:
    """Starting latents for ``samples`` restarts per image: the prior samples that fit the known pixels best.

    ``candidates`` latents ``z ~ N(0, I)`` (seeded by ``seed``) are rendered once (no truncation, constant noise)
    and shared by the whole batch (one generator forward each: cheap at 32 px, seconds each at 1024 px on a CPU);
    for each image the ``samples`` whose renders have the lowest mean squared error over its known pixels become its
    starting points, so that the restarts begin at different plausible completions of the hole instead of all at
    ``w_avg``.

    Args:
        image: ``(B, 3, R, R)`` in [0, 1]; known: ``(B or 1, 1, R, R)`` in {0, 1} (1 = known pixel).
    Returns:
        ``(samples * B, ...)`` latents in the inverter's space shape (z: ``(., z_dim)``, w: ``(., w_dim)``,
        w+: ``(., num_ws, w_dim)``), restart-major: row ``k * B + i`` is restart ``k`` of image ``i``, ordered from
        the best-fitting candidate (k = 0) down.
    """
    G = inverter.G
    B = int(image.shape[0])
    if not 1 <= samples <= candidates:
        raise UsageError(f"samples must be between 1 and the {candidates} candidates, got {samples}")
    dev = next(G.parameters()).device
    z = torch.randn(candidates, G.z_dim, generator=torch.Generator().manual_seed(int(seed)))
    tgt = image.float().cpu()
    kn = known.float().cpu().expand(B, 1, *tgt.shape[-2:])
    err = torch.empty(B, candidates)
    w = torch.empty(candidates, G.w_dim)
    chunk = max(1, min(chunk, 2**25 // (B * tgt[0].numel())))  # bounds the (B, chunk, 3, R, R) error tensor
    with torch.inference_mode():
        for i in range(0, candidates, chunk):
            zi = z[i:i + chunk].to(dev)
            ws = G.mapping(zi)
            w[i:i + chunk] = ws[:, 0].float().cpu()
            x = ((G.synthesis(ws, noise_mode="const").float().cpu() + 1) * 0.5).clamp(0, 1)
            d = (x[None] - tgt[:, None]).square() * kn[:, None]  # (B, n, 3, R, R)
            err[:, i:i + chunk] = d.sum(dim=(2, 3, 4)) / (kn.sum(dim=(1, 2, 3)) * 3).clamp_min(1.0)[:, None]
    pick = err.topk(samples, dim=1, largest=False).indices.t().reshape(-1)  # restart-major
    space = inverter.cfg.space
    if space == "z":
        return z[pick].clone()
    if space == "w":
        return w[pick].clone()
    return w[pick].unsqueeze(1).repeat(1, G.num_ws, 1)


def inpaint(inverter: Inverter, image: Tensor, hole: Tensor, *, samples: int = 1, combine: str = "mean",
            candidates: int = 256, seeds: Optional[Sequence[int]] = None, progress: Any = None
            ) -> Tuple[Tensor, InversionResult]:
    """Masked inversion: the loss sees only known pixels (``hole == 0``); the output keeps them unchanged.

    With ``samples > 1`` every image is inverted ``samples`` times, from the prior samples that fit its known
    pixels best (:func:`prior_inits`), all in one batch, and the hole is filled with

    * ``combine="mean"``: the mean of the ``samples`` completions -- an estimate of the posterior mean, which has the
      lowest expected squared error (highest PSNR) but is blurrier where the completions disagree;
    * ``combine="best"``: the one completion whose inversion loss is lowest (sharp, one plausible guess).

    Args:
        image: ``(B, 3, R, R)`` in [0, 1]; hole: ``(B or 1, 1, R, R)`` in {0, 1} (1 = unknown).
        samples: inversions per image (1: one, from the space's default start, as :meth:`Inverter.run`).
        combine: ``"mean"`` or ``"best"`` (used when ``samples > 1``).
        candidates: prior samples screened for the starting points (``samples > 1``).
        seeds: one seed per image (default ``inverter.cfg.seed + i``); restart ``k`` of image ``i`` uses
            ``seeds[i] + 1000 * k`` and the candidates are drawn with ``seeds[0]``.
    Returns:
        ``(composite (B, 3, R, R) = known * image + hole * fill, the inversion result)``; with ``samples > 1`` the
        result holds, per image, the restart with the lowest loss.
    """
    if hole.shape[-2:] != image.shape[-2:]:
        raise InputError(f"mask size {tuple(hole.shape[-2:])} differs from the image's {tuple(image.shape[-2:])}")
    if combine not in COMBINE:
        raise UsageError(f"--combine {combine!r}: expected one of {', '.join(COMBINE)}")
    if samples < 1:
        raise UsageError(f"--samples must be >= 1, got {samples}")
    known = 1.0 - hole.float()
    if bool((known.flatten(1).sum(1) == 0).any()):
        raise InputError("the mask covers the whole image: nothing is known to fit")
    B = int(image.shape[0])
    seeds = [inverter.cfg.seed + i for i in range(B)] if seeds is None else [int(s) for s in seeds]
    if samples == 1:
        res = inverter.run(image, mask=known, seeds=seeds, progress=progress, task="inpaint")
        fill = res.images
    else:
        kn = known.expand(B, 1, *image.shape[-2:])
        init = prior_inits(inverter, image, kn, samples, candidates, seed=seeds[0])
        allres = inverter.run(image.repeat(samples, 1, 1, 1), mask=kn.repeat(samples, 1, 1, 1), init=init,
                              seeds=[s + 1000 * k for k in range(samples) for s in seeds], progress=progress,
                              task="inpaint")
        imgs = allres.images.view(samples, B, *allres.images.shape[1:])
        best = allres.loss.view(samples, B).argmin(0)
        rows = best * B + torch.arange(B)
        res = InversionResult(
            space=allres.space, latent=allres.latent[rows], ws=allres.ws[rows],
            noise=None if allres.noise is None else [n[rows] for n in allres.noise], images=allres.images[rows],
            loss=allres.loss[rows], snapshots=[s[rows] for s in allres.snapshots], steps=allres.steps,
            seconds=allres.seconds)
        fill = imgs.mean(0) if combine == "mean" else res.images
    comp = known.cpu() * image.float().cpu() + (1.0 - known.cpu()) * fill
    return comp, res


def superres(inverter: Inverter, lowres: Tensor, scale: int, *, kernel: str = "bicubic",
             seeds: Optional[Sequence[int]] = None, progress: Any = None) -> InversionResult:
    """Find the latent whose image, downscaled by ``scale`` with the antialiased ``kernel``
    (:func:`imgforge.ops.resize.downscale`), matches ``lowres: (B, 3, R/scale, R/scale)`` in [0, 1].

    The result's ``images`` are at the generator resolution R.
    """
    R = inverter.G.img_resolution
    if kernel not in KERNELS:
        raise UsageError(f"--kernel {kernel!r}: expected one of {', '.join(KERNELS)}")
    if scale < 1 or R % scale or tuple(lowres.shape[-2:]) != (R // scale, R // scale):
        raise InputError(f"a x{scale} super-resolution into a {R}px generator needs {R // max(scale, 1)}x"
                         f"{R // max(scale, 1)} inputs, got {lowres.shape[-1]}x{lowres.shape[-2]}")
    return inverter.run(lowres, degrade=lambda x: downscale(x, scale, kernel), seeds=seeds, progress=progress,
                        task="superres")


__all__ = [
    "COMBINE", "GROUPS", "Source", "describe_layers", "edit_strip", "inpaint", "latent_arithmetic",
    "layer_resolutions", "morph_latents", "parse_layers", "parse_seeds", "parse_sources", "prepare_mask",
    "prior_inits", "render", "sefa_directions", "seed_to_z", "slerp", "strengths_for",
    "style_groups", "style_mix", "superres", "synthesize",
]
