"""Registries that find their members: import every module of a package folder (optionally those whose name
starts with a prefix), so that a new architecture, converter or command group is one new file and no list to edit.

Works the same from a checkout, an editable install and a wheel (``pkgutil`` walks the package's ``__path__``).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Iterable, List


def package_modules(package: str, prefix: str = "", skip: Iterable[str] = ()) -> List[str]:
    """Full names of the (non-package) modules directly in ``package`` whose short name starts with ``prefix``,
    sorted by name, leaving out those in ``skip`` (short names) and private ones (``_x``)."""
    pkg = importlib.import_module(package)
    skipped = set(skip)
    names = [m.name for m in pkgutil.iter_modules(pkg.__path__)
             if not m.ispkg and m.name.startswith(prefix) and not m.name.startswith("_") and m.name not in skipped]
    return [f"{package}.{n}" for n in sorted(names)]


def import_package_modules(package: str, prefix: str = "", skip: Iterable[str] = ()) -> List[ModuleType]:
    """Import :func:`package_modules` (already imported ones are not re-run) and return them."""
    return [importlib.import_module(name) for name in package_modules(package, prefix, skip)]
