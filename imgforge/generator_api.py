"""``load_generator``: one call from a StyleGAN2 weights file (or a named model) to a ready generator.

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
from typing import Optional, Union

import torch

from .errors import WeightsError
from .models.stylegan2 import Generator

_LEGACY_TORCH_HEAD = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickled legacy torch magic


def detect_stylegan_format(path: Path) -> str:
    """Which reader fits ``path``, from its first bytes: ``"imgforge"`` (safetensors), ``"rosinality_stylegan2"``
    (torch zip or legacy ``torch.save``) or ``"nvidia_stylegan2_pkl"`` (other pickles)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04") or head.startswith(_LEGACY_TORCH_HEAD):
        return "rosinality_stylegan2"
    if len(head) > 8 and head[8:9] == b"{":  # before the pickle test: a header length may start with byte 0x80
        return "imgforge"
    if head[:1] == b"\x80":
        return "nvidia_stylegan2_pkl"
    raise WeightsError(f"{path}: not a StyleGAN2 weights file imgforge can read (expected an imgforge .safetensors, "
                       "a rosinality/stylegan2-pytorch .pt or an NVIDIA stylegan2-ada-pytorch .pkl)")


def _resolve_name(name: str) -> Path:
    """A model name (or a path) -> local file, through the weights store (which may download)."""
    from .hub.store import resolve

    return Path(resolve(name))


def load_generator(source: Union[str, Path], device: Optional[Union[str, torch.device]] = None) -> Generator:
    """Load a StyleGAN2 generator, safely, from a file or a model name.

    Args:
        source: path of an imgforge ``.safetensors`` (arch ``stylegan2_generator``), a rosinality
            stylegan2-pytorch ``.pt`` (``g_ema`` is used), or an NVIDIA stylegan2-ada-pytorch ``.pkl`` (``G_ema``
            is used); or a model name known to the weights store.
        device: where to put the model (default CPU).
    Returns:
        :class:`~imgforge.models.stylegan2.Generator` in eval mode with ``requires_grad`` off, exposing
        ``z_dim, w_dim, num_ws, img_resolution, w_avg``, ``mapping(z, truncation_psi=1.0,
        truncation_cutoff=None) -> ws (N, num_ws, w_dim)``, ``synthesis(ws, noise_mode="const") -> (N, 3, H, W)``
        (unclamped, ~[-1, 1]), ``G(z, truncation_psi=..., noise_mode=...)`` and ``noise_buffers()``.
        rosinality-style calls ``G([z], truncation=..., truncation_latent=..., ...)`` work too.
    Raises:
        WeightsError / UnsafeWeightsError: unreadable, unsupported, or unsafe files (nothing from a file is
        ever executed).
    """
    from .hub.converters import get_converter
    from .hub.modelfile import load_model_file

    path = Path(source).expanduser()
    if not path.is_file():
        path = _resolve_name(str(source))
    fmt = detect_stylegan_format(path)
    if fmt == "imgforge":
        model, meta = load_model_file(path)
        if meta.get("arch") != "stylegan2_generator":
            raise WeightsError(f"{path}: holds a {meta.get('arch')!r} model, not a StyleGAN2 generator")
    else:
        conv = get_converter(fmt)(path)
        with torch.device("meta"):
            model = Generator(**conv.arch_kwargs)
        try:
            model.load_state_dict(conv.state_dict, strict=True, assign=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path}: converted weights do not fit the generator: {exc}") from exc
    assert isinstance(model, Generator)
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(device)
    return model
