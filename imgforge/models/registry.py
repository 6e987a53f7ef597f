"""Architecture registry: ``arch`` name -> constructor taking keyword arguments.

Our own weight files carry ``arch`` and ``arch_kwargs`` in their metadata, so a file alone is enough to rebuild its
model. Model modules (every module of ``imgforge.models``, found at the first lookup) register their classes with
:func:`register`; :func:`build` constructs one.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import torch.nn as nn

from ..errors import WeightsError

_BUILDERS: Dict[str, Callable[..., nn.Module]] = {}



def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a class or factory under ``name`` (must be unique)."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"architecture {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn

    return deco


_loaded = False


def _load_all() -> None:
    """Import every module of ``imgforge.models`` once (each registers its architectures), so that
    ``build("vgg19")`` works without the caller importing ``imgforge.models.vgg`` and a new architecture is one new
    file."""
    global _loaded
    if not _loaded:
        from ..discovery import import_package_modules

        import_package_modules("imgforge.models", skip=("registry",))
        _loaded = True


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
