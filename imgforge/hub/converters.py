"""Converter registry: a converter reads one upstream on-disk format *safely* and returns a state dict in our
model's key layout plus the architecture that fits it.

Converters live in ``imgforge/hub/convert_<family>.py`` and register themselves::

    @register_converter("torchvision_vgg")
    def convert_torchvision_vgg(path: Path) -> Converted: ...

Rules for every converter: read with ``torch.load(path, map_location="cpu", weights_only=True)``, safetensors, or the
restricted unpickler in ``imgforge.hub.safe_pickle``; drop only the documented legacy keys; fail loudly (raise
:class:`~imgforge.errors.WeightsError`) on any key left unmatched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping

import torch

from ..errors import WeightsError
from ..fsutil import sha256_file  # noqa: F401  (re-exported for the converters)


@dataclass
class Converted:
    """The result of converting an upstream file.

    Attributes:
        state_dict: tensors with our model's keys (loadable with ``strict=True`` into ``build(arch, **arch_kwargs)``).
        arch: architecture name in :mod:`imgforge.models.registry`.
        arch_kwargs: constructor kwargs (JSON-serialisable).
        source_sha256: sha256 of the upstream file.
        extra: further metadata to store (e.g. ``{"dropped_keys": "..."}``).
    """

    state_dict: Dict[str, torch.Tensor]
    arch: str
    arch_kwargs: Dict[str, Any]
    source_sha256: str = ""
    extra: Dict[str, str] = field(default_factory=dict)


ConverterFn = Callable[[Path], Converted]
_CONVERTERS: Dict[str, ConverterFn] = {}
_loaded = False


def register_converter(name: str) -> Callable[[ConverterFn], ConverterFn]:
    """Decorator registering a converter under ``name`` (the manifest's ``converter`` field)."""

    def deco(fn: ConverterFn) -> ConverterFn:
        _CONVERTERS[name] = fn
        return fn

    return deco


def _load_all() -> None:
    """Import every ``imgforge/hub/convert_*.py`` once (each registers its converters)."""
    global _loaded
    if not _loaded:
        from ..discovery import import_package_modules

        import_package_modules("imgforge.hub", prefix="convert_")
        _loaded = True


def converter_names() -> list[str]:
    _load_all()
    return sorted(_CONVERTERS)


def get_converter(name: str) -> ConverterFn:
    """Return the converter registered as ``name``; :class:`WeightsError` when unknown."""
    if name not in _CONVERTERS:
        _load_all()
    if name not in _CONVERTERS:
        raise WeightsError(f"unknown converter {name!r}; known: {', '.join(converter_names())}")
    return _CONVERTERS[name]


def load_plain_state_dict(path: Path) -> Mapping[str, Any]:
    """Read a plain PyTorch checkpoint with ``weights_only=True`` (no arbitrary objects), as a WeightsError on failure."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, UnpicklingError for disallowed globals
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise WeightsError(f"{path}: cannot be read as a PyTorch weights file safely ({type(exc).__name__}: {first})") from exc
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    return obj
