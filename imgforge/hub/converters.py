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

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping

import torch

from ..errors import WeightsError


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
_MODULES = (
    "imgforge.hub.convert_vgg",
    "imgforge.hub.convert_translation",
    "imgforge.hub.convert_style",
    "imgforge.hub.convert_stylegan",
    "imgforge.hub.convert_inception",
)


def register_converter(name: str) -> Callable[[ConverterFn], ConverterFn]:
    """Decorator registering a converter under ``name`` (the manifest's ``converter`` field)."""

    def deco(fn: ConverterFn) -> ConverterFn:
        _CONVERTERS[name] = fn
        return fn

    return deco


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def load_plain_state_dict(path: Path) -> Mapping[str, Any]:
    """Read a plain PyTorch checkpoint with ``weights_only=True`` (no arbitrary objects), as a WeightsError on failure."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, UnpicklingError for disallowed globals
        raise WeightsError(f"{path}: cannot be read as a PyTorch weights file safely ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    return obj
