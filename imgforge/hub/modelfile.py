"""Our own weight files: safetensors whose metadata says how to rebuild the model.

Metadata keys (all strings, as safetensors requires):

- ``format``: ``"imgforge"``; ``format_version``: ``"1"``
- ``arch``: a name known to :mod:`imgforge.models.registry`; ``arch_kwargs``: JSON object of constructor kwargs
- ``source_sha256``: sha256 of the file it was converted from (empty for models trained here)
- anything else a writer adds (``recipe``, ``licence``, ``notes``, ...)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from ..errors import WeightsError
from ..fsutil import PathLike, atomic_path

FORMAT_VERSION = "1"


def save_model_file(
    path: PathLike,
    state_dict: Mapping[str, torch.Tensor],
    *,
    arch: str,
    arch_kwargs: Optional[Mapping[str, Any]] = None,
    source_sha256: str = "",
    dtype: Optional[torch.dtype] = None,
    extra: Optional[Mapping[str, str]] = None,
) -> Path:
    """Write ``state_dict`` atomically as safetensors with imgforge metadata.

    ``dtype`` (e.g. ``torch.float16``) casts floating tensors to save space; integer buffers are kept.
    Shared or non-contiguous tensors are cloned so that safetensors accepts them.
    """
    from safetensors.torch import save

    tensors: Dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        t = v.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[k] = t.contiguous().clone()
    meta = {
        "format": "imgforge",
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_kwargs": json.dumps(dict(arch_kwargs or {}), sort_keys=True),
        "source_sha256": source_sha256,
    }
    for k, v in (extra or {}).items():
        meta[str(k)] = str(v)
    data = canonical_safetensors(save(tensors, metadata=meta))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def canonical_safetensors(raw: bytes) -> bytes:
    """Rewrite a safetensors header in a fixed order (metadata keys sorted, then tensors by data offset).

    safetensors writes its header from hash maps, so the key order (and the file's bytes) changes from one process
    to the next; with a fixed order the same tensors and metadata always give the same bytes. Tensor data and the
    header length are unchanged (the JSON is re-padded with spaces, as the format allows).
    """
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    ordered: Dict[str, Any] = {}
    meta = header.pop("__metadata__", None)
    if meta is not None:
        ordered["__metadata__"] = dict(sorted(meta.items()))
    for k in sorted(header, key=lambda k: (header[k]["data_offsets"][0], k)):
        ordered[k] = header[k]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > n:  # cannot happen for a header safetensors itself wrote compactly
        return raw
    return raw[:8] + text + b" " * (n - len(text)) + raw[8 + n:]


def read_model_file(path: PathLike) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Read a safetensors file; returns ``(state_dict, metadata)`` with ``arch_kwargs`` parsed from JSON.

    Raises :class:`WeightsError` with the file name when the file is not a readable safetensors file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta: Dict[str, Any] = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several exception types for corrupt headers
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    if "arch_kwargs" in meta:
        try:
            meta["arch_kwargs"] = json.loads(meta["arch_kwargs"])
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{path}: metadata arch_kwargs is not valid JSON") from exc
    return sd, meta


def load_model_file(path: PathLike, *, dtype: torch.dtype = torch.float32) -> Tuple[nn.Module, Dict[str, Any]]:
    """Rebuild the model described by a file's metadata and load its weights strictly.

    Returns ``(model in eval mode on CPU, metadata)``.
    """
    from ..models.registry import build

    sd, meta = read_model_file(path)
    arch = meta.get("arch")
    if not arch:
        raise WeightsError(f"{path}: no 'arch' in the safetensors metadata; import it with `imgforge weights import`")
    kwargs = meta.get("arch_kwargs", {})
    if not isinstance(kwargs, dict):
        raise WeightsError(f"{path}: metadata arch_kwargs must be a JSON object, got {type(kwargs).__name__}")
    try:
        model = build(arch, **kwargs)
    except WeightsError as exc:  # unknown architecture
        raise WeightsError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError, ZeroDivisionError) as exc:
        raise WeightsError(f"{path}: metadata arch_kwargs do not fit architecture {arch!r} "
                           f"({type(exc).__name__}: {exc})") from None
    sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit architecture {arch!r}: {exc}") from exc
    return model.eval(), meta
