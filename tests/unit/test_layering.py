"""The package's layers import only downwards.

cli > jobs > training > methods > losses / data > hub / io > models / runtime > ops > base (errors, progress, fsutil,
discovery). Every ``import`` of an ``imgforge`` module is read from the source (``ast``; imports inside functions
count too, only ``if TYPE_CHECKING:`` blocks are skipped) and an import of a higher layer fails the test unless it is
listed in :data:`ALLOWED`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

PKG = Path(__file__).resolve().parents[2] / "imgforge"

#: Rank of each top-level part of the package (higher may import lower or equal, never higher).
LAYERS: Dict[str, int] = {
    "cli": 8, "__main__": 8,
    "jobs": 7,
    "training": 6,
    "methods": 5, "metrics": 5,
    "losses": 4, "data": 4, "reports": 4,
    "hub": 3, "io": 3, "batch": 3, "generator_api": 3, "validate": 3, "latents": 3,
    "models": 2, "runtime": 2,
    "ops": 1,
    "errors": 0, "progress": 0, "fsutil": 0, "discovery": 0, "__init__": 0,
}

#: (importing module, imported module) pairs allowed to go upwards, each with its reason.
ALLOWED: Dict[Tuple[str, str], str] = {
    ("imgforge", "imgforge.generator_api"): "lazy `imgforge.load_generator` in the package's __init__",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _rank(module: str) -> Optional[int]:
    parts = module.split(".")
    if parts[0] != "imgforge":
        return None
    key = parts[1] if len(parts) > 1 else "__init__"
    if key not in LAYERS:
        raise AssertionError(f"{module}: no layer assigned in tests/unit/test_layering.py LAYERS")
    return LAYERS[key]


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_pkg: bool) -> Iterator[str]:
    stack: List[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target == "imgforge":  # `from . import x` / `from .. import x`
                for a in node.names:
                    yield f"{target}.{a.name}" if a.name != "__version__" else target
            else:
                yield target
        stack.extend(ast.iter_child_nodes(node))


def _all_imports() -> Iterator[Tuple[str, str]]:
    for path in sorted(PKG.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in _imports(tree, module, path.name == "__init__.py"):
            if target == "imgforge" or target.startswith("imgforge."):
                yield module, target


def upward_imports() -> List[Tuple[str, str]]:
    found = []
    for module, target in _all_imports():
        src, dst = _rank(module), _rank(target)
        if dst is not None and src is not None and dst > src:
            found.append((module, target))
    return sorted(set(found))


def _is_module(target: str) -> bool:
    base = PKG.joinpath(*target.split(".")[1:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _exists(target: str) -> bool:
    """``target`` is a module or package of imgforge; for ``from pkg import name`` (yielded as ``pkg.name``) a
    name of an existing package is accepted too."""
    if _is_module(target):
        return True
    parent = target.rsplit(".", 1)[0]
    return parent != target and (PKG.joinpath(*parent.split(".")[1:]) / "__init__.py").is_file() and \
        target.rsplit(".", 1)[1] in (PKG.joinpath(*parent.split(".")[1:]) / "__init__.py").read_text()


def test_every_internal_import_names_an_existing_module() -> None:
    """Imports inside functions run late: a moved module must not leave one pointing nowhere."""
    missing = sorted({f"{m} imports {t}" for m, t in _all_imports() if not _exists(t)})
    assert not missing, "\n".join(missing)


def test_no_upward_imports() -> None:
    bad = [f"{a} imports {b}" for a, b in upward_imports() if (a, b) not in ALLOWED]
    assert not bad, "lower layers import higher ones:\n" + "\n".join(bad)


def test_allowed_exceptions_are_still_needed() -> None:
    stale = sorted(set(ALLOWED) - set(upward_imports()))
    assert not stale, f"remove from ALLOWED (no longer imported): {stale}"
