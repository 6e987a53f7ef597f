"""The ``generate`` job: StyleGAN2 images from seeds or saved latents (library side of ``imgforge generate``).

Seeds -> z (NVIDIA's convention, so a seed means the same image as with stylegan2-ada-pytorch's ``gen_images.py`` /
``generate.py`` for the same network)::

    z = np.random.RandomState(seed).randn(1, G.z_dim)      # float64, then float32 -> (1, z_dim)

i.e. :func:`z_from_seed`. Seeds must be in [0, 2**32 - 1] (numpy's RandomState range). Then
``ws = G.mapping(z, truncation_psi=trunc)`` (truncation towards ``G.w_avg``) and
``img = G.synthesis(ws, noise_mode=noise_mode)``; ``noise_mode="random"`` draws the noise maps from
``torch.Generator().manual_seed(seed)`` so that it is reproducible per seed too.

Outputs (in ``out_dir``): ``seed0007.png`` (or ``z0000.png`` / ``w0000.png`` for latent-file inputs) and, next to
each image, ``seed0007.safetensors`` with the tensors ``z (1, z_dim)`` (absent for w inputs) and
``w (1, num_ws, w_dim)`` (the truncated ws that made the image) and metadata (seed, trunc, noise_mode, weights);
``--z-file`` / ``--w-file`` read such files back (also stacked ``(N, z_dim)`` / ``(N, w_dim)`` /
``(N, num_ws, w_dim)`` tensors, ``.safetensors``, ``.npy`` or ``.npz``). An optional grid puts all images in one
picture.

The default model (no ``weights``) is the shipped digits generator :data:`DEFAULT_GENERATOR`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import InputError, UsageError
from ..progress import ProgressEvent, ProgressFn, emit
from ..generator_api import DEFAULT_GENERATOR, load_generator_for  # noqa: F401  (DEFAULT_GENERATOR: re-exported)
from ..models.protocols import (MAX_SEED, MAX_SEEDS, LatentGenerator, parse_seeds, set_class, z_from_seed,  # noqa: F401
                                z_from_seeds)  # (MAX_SEED, MAX_SEEDS, parse_seeds, z_from_seed: re-exported)
from ..validate import check_latent
from ..runtime import Runtime

NOISE_MODES = ("const", "random", "none")


# ---- seeds and latents -----------------------------------------------------------------------------------------------


def _load_array_file(path: Path) -> Dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"{path}: no such latent file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        if suffix == ".npy":
            return {"": torch.from_numpy(np.load(path, allow_pickle=False))}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return {k: torch.from_numpy(npz[k]) for k in npz.files}
    except Exception as exc:
        raise InputError(f"{path}: cannot read latents ({type(exc).__name__}: {exc})") from None
    raise InputError(f"{path}: latent files must be .safetensors, .npy or .npz")


def read_latents(path: Union[str, Path], kind: str) -> torch.Tensor:
    """Read z or w latents from a file written by ``imgforge generate`` (or any array file).

    Args:
        path: ``.safetensors`` (tensor ``kind`` = ``"z"`` / ``"w"``, or the only tensor), ``.npy``, ``.npz``.
        kind: ``"z"`` or ``"w"``.
    Returns:
        float32 ``(N, D)`` (a 1-D array becomes one row) or, for ``w`` only, ``(N, num_ws, w_dim)``.
    Raises:
        InputError: unreadable file, no tensor of that kind, wrong rank.
    """
    path = Path(path).expanduser()
    tensors = _load_array_file(path)
    if kind in tensors:
        t = tensors[kind]
    elif len(tensors) == 1:
        t = next(iter(tensors.values()))
    else:
        raise InputError(f"{path}: holds {sorted(tensors)}, none called {kind!r}")
    t = t.float()
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 and not (kind == "w" and t.ndim == 3):
        want = "(N, z_dim)" if kind == "z" else "(N, w_dim) or (N, num_ws, w_dim)"
        raise InputError(f"{path}: {kind} latents must be {want}, got shape {tuple(t.shape)}")
    check_latent(t, str(path), f"{kind} latents")
    return t


# ---- the job -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateJob:
    """What to generate.

    Attributes:
        weights: weights name or file (None: :data:`DEFAULT_GENERATOR`, the shipped digits model).
        seeds: seeds (one image each) -- or ``z_file`` / ``w_file`` (exactly one of the three).
        trunc: truncation psi (1 = none). trunc_cutoff: truncate only the first ws (None: all).
        noise_mode: ``const`` | ``random`` | ``none``. batch_size: images per forward pass.
        noise_layers: which synthesis layers get random noise, the others zero (``all``, ``none``, ``fine``,
            ``coarse`` or ``A-B``, see :mod:`imgforge.methods.noise_control`); overrides ``noise_mode``.
        out_dir: folder for the images and latents (None: none written, e.g. grid only). grid: grid image path.
        grid_cols: grid columns (None: square-ish). seed: seed of the random noise for latent-file inputs.
        class_label: the class of a class-conditional generator (``--class``; None for the others).
        chain: path of a picture of every scale of a multi-scale generator (LAPGAN's coarse-to-fine chain,
            ProGAN's / MSG-GAN's per-scale outputs): one row per image, one column per scale, coarse to fine.
    """

    weights: Optional[str] = None
    seeds: Tuple[int, ...] = ()
    z_file: Optional[str] = None
    w_file: Optional[str] = None
    trunc: float = 1.0
    trunc_cutoff: Optional[int] = None
    noise_mode: str = "const"
    noise_layers: Optional[str] = None
    batch_size: int = 16
    out_dir: Optional[str] = None
    grid: Optional[str] = None
    grid_cols: Optional[int] = None
    seed: Optional[int] = None
    class_label: Optional[int] = None
    chain: Optional[str] = None

    def validate(self) -> None:
        given = sum(x is not None and x != () for x in (self.seeds or None, self.z_file, self.w_file))
        if given != 1:
            raise UsageError("give exactly one of --seeds, --z-file, --w-file")
        if self.noise_mode not in NOISE_MODES:
            raise UsageError(f"--noise-mode {self.noise_mode!r}: choose one of {', '.join(NOISE_MODES)}")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be >= 1")
        if not math.isfinite(self.trunc):
            raise UsageError("--trunc must be a finite number")
        if self.out_dir is None and self.grid is None and self.chain is None:
            raise UsageError("nothing to write: give --out-dir and/or --grid")
        from ..io import format_for

        for path in (self.grid, self.chain):
            if path is not None:
                format_for(path)


@dataclass
class GenerateResult:
    """Files written: ``images`` and ``latents`` (parallel lists) and the ``grid`` (or None)."""

    images: List[Path] = field(default_factory=list)
    latents: List[Path] = field(default_factory=list)
    grid: Optional[Path] = None
    weights: str = ""
    chain: Optional[Path] = None


def _scales_net(G: LatentGenerator) -> Any:
    """The multi-scale network behind ``G`` (it has ``scales(z)``); :class:`UsageError` for ``--chain`` otherwise."""
    net = getattr(G, "net", G)
    if not callable(getattr(net, "scales", None)) or int(G.num_ws) != 1:
        raise UsageError("--chain needs a multi-scale generator (gan train --arch lapgan, progan or msggan); this one "
                         f"is a {type(net).__name__}")
    return net


def _latent_inputs(job: GenerateJob, G: LatentGenerator
                   ) -> Tuple[List[str], Optional[torch.Tensor], Optional[torch.Tensor], List[Optional[int]]]:
    """(names, z or None, ws or None, seeds per image)."""
    if job.seeds:
        seeds = list(job.seeds)
        return [f"seed{s:04d}" for s in seeds], z_from_seeds(seeds, G.z_dim), None, list(seeds)
    if job.z_file is not None:
        z = read_latents(job.z_file, "z")
        if z.shape[1] != G.z_dim:
            raise InputError(f"{job.z_file}: z has {z.shape[1]} dimensions, the generator takes {G.z_dim}")
        return [f"z{i:04d}" for i in range(len(z))], z, None, [None] * len(z)
    w = read_latents(job.w_file, "w")  # type: ignore[arg-type]
    if w.shape[-1] != G.w_dim or (w.ndim == 3 and w.shape[1] != G.num_ws):
        raise InputError(f"{job.w_file}: w of shape {tuple(w.shape[1:])} does not fit the generator "
                         f"(w_dim {G.w_dim}, {G.num_ws} ws)")
    ws = w if w.ndim == 3 else w[:, None].repeat(1, G.num_ws, 1)
    return [f"w{i:04d}" for i in range(len(ws))], None, ws, [None] * len(ws)


def _noise_for(G: LatentGenerator, seeds: Sequence[Optional[int]], base: Optional[int], device: torch.device,
               layers: str = "all") -> List[torch.Tensor]:
    """Per-image random noise maps (one generator per image, seeded by its seed, else ``base + index``), zero on
    the layers ``layers`` leaves out."""
    from ..methods.noise_control import layered_noise

    gens = [torch.Generator().manual_seed(int(s if s is not None else (base or 0) + i)) for i, s in enumerate(seeds)]
    return layered_noise(G.noise_buffers(), layers, gens, device)


def run_generate(job: GenerateJob, *, runtime: Optional[Runtime] = None, generator: Optional[LatentGenerator] = None,
                 progress: Optional[ProgressFn] = None) -> GenerateResult:
    """Generate the job's images and write them (see the module docstring for names and file contents).

    Args:
        job: what to generate. runtime: device and precision (default CPU fp32). generator: an already loaded
            generator (skips loading ``job.weights``). progress: one event per batch.
    Returns:
        :class:`GenerateResult` with every path written.
    """
    from safetensors.torch import save_file

    from ..fsutil import atomic_path
    from ..io import format_for, save_image
    from ..validate import check_output_dir, check_output_file

    job.validate()
    if job.out_dir is not None:
        check_output_dir(job.out_dir, "--out-dir")
    if job.grid is not None:
        check_output_file(job.grid, "--grid")
        format_for(job.grid)
    if job.chain is not None:
        check_output_file(job.chain, "--chain")
    rt = runtime or Runtime(device=torch.device("cpu"), dtype=None, channels_last=False)
    if generator is None:
        G, desc = load_generator_for(job.weights, rt.device, progress)
    else:
        from ..models.protocols import as_generator

        G, desc = as_generator(generator).to(rt.device), job.weights or "generator"  # type: ignore[attr-defined]
    set_class(G, job.class_label)
    G.eval()
    if job.noise_layers is not None:
        from ..methods.noise_control import noise_layer_mask

        noise_layer_mask([int(b.shape[-1]) for b in G.noise_buffers()], job.noise_layers)  # a usage error early
    chain_net = _scales_net(G) if job.chain is not None else None
    chain_rows: List[torch.Tensor] = []
    names, z_all, ws_in, seeds = _latent_inputs(job, G)
    result = GenerateResult(weights=desc)
    out_dir = Path(job.out_dir) if job.out_dir is not None else None
    grid_imgs: List[torch.Tensor] = []
    total = len(names)
    for start in range(0, total, job.batch_size):
        sl = slice(start, min(start + job.batch_size, total))
        with torch.inference_mode(), rt.autocast():
            if z_all is not None:
                z = z_all[sl].to(rt.device)
                ws = G.mapping(z, truncation_psi=job.trunc, truncation_cutoff=job.trunc_cutoff)
            else:
                z = None
                ws = ws_in[sl].to(rt.device)  # type: ignore[index]
                if job.trunc != 1:
                    cut = G.num_ws if job.trunc_cutoff is None else int(job.trunc_cutoff)
                    avg = G.w_avg.to(ws.dtype)
                    ws = torch.cat([avg.lerp(ws[:, :cut], job.trunc), ws[:, cut:]], dim=1)
            noise = None
            if job.noise_layers is not None or job.noise_mode == "random":
                noise = _noise_for(G, seeds[sl], job.seed, rt.device, job.noise_layers or "all")
            img = G.synthesis(ws, noise_mode=job.noise_mode, noise=noise)
            if chain_net is not None:
                from ..models.multiscale_gan import scale_table

                chain_rows.append(((scale_table(chain_net, ws[:, 0]).float().clamp(-1, 1) + 1) / 2).cpu())
        img01 = ((img.float().clamp(-1, 1) + 1) / 2).cpu()
        ws_cpu = ws.float().cpu()
        if job.grid is not None:
            grid_imgs.append(img01)
        if out_dir is not None:
            for j, name in enumerate(names[sl]):
                path = save_image(img01[j], out_dir / f"{name}.png")
                tensors = {"w": ws_cpu[j:j + 1].contiguous()}
                if z is not None:
                    tensors["z"] = z[j:j + 1].float().cpu().contiguous()
                meta = {"weights": desc, "trunc": repr(job.trunc), "noise_mode": job.noise_mode,
                        "image": path.name}
                if job.noise_layers is not None:
                    meta["noise_layers"] = job.noise_layers
                seed = seeds[start + j]
                if seed is not None:
                    meta["seed"] = str(seed)
                lat = out_dir / f"{name}.safetensors"
                with atomic_path(lat) as tmp:
                    save_file(tensors, str(tmp), metadata=meta)
                result.images.append(path)
                result.latents.append(lat)
        emit(progress, ProgressEvent("generate", sl.stop, total, unit="img"))
    if job.grid is not None:
        from ..reports import make_grid

        cols = min(job.grid_cols or math.ceil(math.sqrt(total)), total)
        result.grid = save_image(make_grid(torch.cat(grid_imgs), cols, pad=0, pad_value=0.0, border=False), job.grid)
    if job.chain is not None:
        from ..reports import make_grid

        table = torch.cat(chain_rows)  # (N, S, C, R, R)
        table = table.expand(-1, -1, 3, -1, -1) if table.shape[2] == 1 else table
        result.chain = save_image(make_grid(table.flatten(0, 1), table.shape[1], pad=1, pad_value=0.0, border=False),
                                  job.chain)
    return result
