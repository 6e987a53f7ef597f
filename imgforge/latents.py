"""Latent files: one latent (and, when optimised, its noise maps) as ``.latent.safetensors``.

Written by ``invert``, ``sketch2image``, ``inpaint``/``superres --save-latent``; read back by ``morph``,
``style-mix`` and ``edit``. :class:`LatentRecord` is what the tensor-level methods exchange; :func:`save_latent`
and :func:`load_latent` are the file format (nothing is unpickled: safetensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from torch import Tensor

from .errors import InputError
from .fsutil import atomic_path

__all__ = ["LATENT_FORMAT", "LATENT_FORMAT_VERSION", "SPACES", "LatentRecord", "save_latent", "load_latent"]

LATENT_FORMAT = "imgforge-latent"
LATENT_FORMAT_VERSION = "1"
#: The latent spaces a record can be in.
SPACES = ("z", "w", "w+")


@dataclass
class LatentRecord:
    """One latent as stored in a ``.latent.safetensors`` file (see :func:`save_latent`)."""

    space: str
    latent: Tensor
    ws: Tensor
    noise: Optional[List[Tensor]] = None
    meta: Dict[str, str] = field(default_factory=dict)


_SPACE_KEY = {"z": "z", "w": "w", "w+": "ws"}


def save_latent(path: Union[str, Path], rec: LatentRecord, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write a latent file (safetensors, atomic).

    Tensors: the latent under its space's key (``z (1, z_dim)``, ``w (1, w_dim)`` or ``ws (1, num_ws, w_dim)``),
    always ``ws`` (the synthesis input), and ``noise_<i> (1, 1, r, r)`` when noise maps were optimised. Metadata:
    ``format=imgforge-latent``, ``format_version``, ``space``, ``num_ws``, ``w_dim``, ``noise`` (``optimised`` or
    ``const``), plus ``extra`` (e.g. ``weights``).
    """
    from safetensors.torch import save_file

    tensors = {_SPACE_KEY[rec.space]: rec.latent.detach().float().cpu().contiguous(),
               "ws": rec.ws.detach().float().cpu().contiguous()}
    if rec.noise is not None:
        for i, n in enumerate(rec.noise):
            tensors[f"noise_{i}"] = n.detach().float().cpu().contiguous()
    meta = {"format": LATENT_FORMAT, "format_version": LATENT_FORMAT_VERSION, "space": rec.space,
            "num_ws": str(rec.ws.shape[1]), "w_dim": str(rec.ws.shape[2]),
            "noise": "optimised" if rec.noise is not None else "const"}
    meta.update({str(k): str(v) for k, v in (extra or {}).items()})
    with atomic_path(path) as tmp:
        save_file({k: v.clone() for k, v in tensors.items()}, str(tmp), metadata=meta)
    return Path(path)


def load_latent(path: Union[str, Path]) -> LatentRecord:
    """Read a latent file written by :func:`save_latent` (raises :class:`InputError` naming the file otherwise)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such latent file")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise InputError(f"{p}: not a readable latent file ({exc})") from None
    if meta.get("format") != LATENT_FORMAT or "ws" not in tensors:
        raise InputError(f"{p}: not an imgforge latent file (written by `imgforge invert`)")
    space = meta.get("space", "w+")
    if space not in SPACES:
        raise InputError(f"{p}: unknown latent space {space!r}")
    noise = None
    if "noise_0" in tensors:
        noise = [tensors[f"noise_{i}"] for i in range(sum(k.startswith("noise_") for k in tensors))]
    return LatentRecord(space=space, latent=tensors.get(_SPACE_KEY[space], tensors["ws"]), ws=tensors["ws"],
                        noise=noise, meta=meta)


