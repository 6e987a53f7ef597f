"""``load_generator``: one call from a generator weights file (or a named model) to a ready generator.

Example::

    import torch, imgforge
    G = imgforge.load_generator("network-snapshot.pkl")          # or a rosinality .pt, or our .safetensors
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(0))
    ws = G.mapping(z, truncation_psi=0.7)                         # (4, G.num_ws, G.w_dim)
    img = G.synthesis(ws, noise_mode="const")                     # (4, 3, R, R), unclamped, ~[-1, 1]
    img01 = (img.clamp(-1, 1) + 1) / 2                            # (4, 3, R, R) in [0, 1]
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import torch

from .errors import WeightsError
from .models.protocols import LatentGenerator
from .progress import ProgressFn, note

#: Name (weights/ file stem) of the shipped StyleGAN2 used when no weights are given.
DEFAULT_GENERATOR = "stylegan2-mnist32"

#: Converter of each upstream StyleGAN2 format that :func:`imgforge.hub.store.sniff_format` tells apart.
_CONVERTER_OF_FORMAT = {"torch_zip": "rosinality_stylegan2", "torch_legacy": "rosinality_stylegan2",
                        "nvidia_pkl": "nvidia_stylegan2_pkl", "pickle": "nvidia_stylegan2_pkl",
                        "safetensors": "imgforge"}


def detect_stylegan_format(path: Path) -> str:
    """Which reader fits ``path`` (from :func:`imgforge.hub.store.sniff_format`, the one format sniffer):
    ``"imgforge"`` (safetensors), ``"rosinality_stylegan2"`` (torch zip or legacy ``torch.save``) or
    ``"nvidia_stylegan2_pkl"`` (other pickles)."""
    from .hub.store import sniff_format

    fmt = _CONVERTER_OF_FORMAT.get(sniff_format(Path(path)))
    if fmt is None:
        raise WeightsError(f"{path}: not a StyleGAN2 weights file imgforge can read (expected an imgforge "
                           ".safetensors, a rosinality/stylegan2-pytorch .pt or an NVIDIA stylegan2-ada-pytorch .pkl)")
    return fmt


def load_generator(source: Union[str, Path], device: Optional[Union[str, torch.device]] = None
                   ) -> LatentGenerator:
    """Load a generator, safely, from a file or a model name.

    Args:
        source: path of an imgforge ``.safetensors`` (arch ``stylegan2_generator``, or any registered architecture
            with the generator protocol, :mod:`imgforge.models.protocols`), a rosinality stylegan2-pytorch ``.pt``
            (``g_ema`` is used), or an NVIDIA stylegan2-ada-pytorch ``.pkl`` (``G_ema`` is used); or a model name
            known to the weights store.
        device: where to put the model (default CPU).
    Returns:
        A :class:`~imgforge.models.protocols.LatentGenerator` in eval mode with ``requires_grad`` off. For StyleGAN2
        it is the :class:`~imgforge.models.stylegan2.Generator` itself, exposing ``z_dim, w_dim, num_ws,
        img_resolution, w_avg``, ``mapping(z, truncation_psi=1.0, truncation_cutoff=None) -> ws (N, num_ws,
        w_dim)``, ``synthesis(ws, noise_mode="const") -> (N, 3, H, W)`` (unclamped, ~[-1, 1]),
        ``G(z, truncation_psi=..., noise_mode=...)`` and ``noise_buffers()``; rosinality-style calls
        ``G([z], truncation=..., truncation_latent=..., ...)`` work too.
    Raises:
        WeightsError / UnsafeWeightsError: unreadable, unsupported, or unsafe files (nothing from a file is
        ever executed).
    """
    from .hub.loader import Kind, load
    from .hub.store import resolve

    path = resolve(source)
    fmt = detect_stylegan_format(path)
    G, _ = load(path, Kind.GENERATOR, device, converter=None if fmt == "imgforge" else fmt, freeze=True)
    return G


def load_generator_for(weights: Optional[str], device: Optional[Union[str, torch.device]] = None,
                       progress: Optional[ProgressFn] = None) -> Tuple[LatentGenerator, str]:
    """The generator for ``weights`` (a name or file; None: the shipped :data:`DEFAULT_GENERATOR`) on ``device``
    (default CPU), eval mode, with a friendlier error when the default is missing. Returns ``(generator, name)``."""
    name = weights or DEFAULT_GENERATOR
    try:
        G = load_generator(name, device=device)
    except WeightsError as exc:
        if name == DEFAULT_GENERATOR:
            raise WeightsError(f"the default generator {DEFAULT_GENERATOR!r} is missing from this installation "
                               f"({exc}); pass --weights NAME|PATH") from None
        raise
    note(progress, "generate", f"generator: {name} ({G.img_resolution}x{G.img_resolution}, z {G.z_dim}, "
         f"w {G.w_dim}, {G.num_ws} ws)")
    return G, name
