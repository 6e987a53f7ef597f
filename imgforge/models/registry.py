"""Architecture registry: ``arch`` name -> constructor taking keyword arguments.

Our own weight files carry ``arch`` and ``arch_kwargs`` in their metadata, so a file alone is enough to rebuild its
model. Model modules register their classes with :func:`register`; :func:`build` constructs one.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict

import torch.nn as nn

from ..errors import WeightsError

_BUILDERS: Dict[str, Callable[..., nn.Module]] = {}

# Modules imported on demand so that ``build("vgg19")`` works without the caller importing imgforge.models.vgg.
_MODULES = (
    "imgforge.models.vgg",
    "imgforge.models.translation",
    "imgforge.models.fast_style",
    "imgforge.models.adain",
    "imgforge.models.stylegan2",
    "imgforge.models.gan_nets",
    "imgforge.models.vae",
)


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a class or factory under ``name`` (must be unique)."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"architecture {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn

    return deco


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a module of a later issue that does not exist yet
            if exc.name != mod:
                raise


def known() -> list[str]:
    """All registered architecture names."""
    _load_all()
    return sorted(_BUILDERS)


def build(arch: str, **kwargs: Any) -> nn.Module:
    """Construct architecture ``arch`` with ``kwargs``; raises :class:`WeightsError` for unknown names."""
    if arch not in _BUILDERS:
        _load_all()
    if arch not in _BUILDERS:
        raise WeightsError(f"unknown architecture {arch!r}; known: {', '.join(known())}")
    return _BUILDERS[arch](**kwargs)
