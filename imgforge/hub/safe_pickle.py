"""Safe readers for pickled weights: NVIDIA network pickles (restricted unpickler) and plain torch checkpoints.

NVIDIA stylegan2-ada-pytorch ``.pkl`` files store every network as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose ``meta['module_src']`` is Python source that the
real function *executes*, and every tensor storage as ``torch.storage._load_from_bytes(bytes)``, which runs an
unrestricted ``torch.load``. :func:`load_network_pickle` reads such a file without ever executing anything from it:

* ``find_class`` maps a short allow-list of globals to harmless stand-ins and refuses every other global with
  :class:`~imgforge.errors.UnsafeWeightsError` naming it;
* a persistent object becomes a :class:`PersistentObject` (class name + state dict); its module source is never
  executed, and is refused unless it is a known NVIDIA source (sha256) or passes a static check
  (:func:`check_module_source`: nothing at module or class level that would run code on import);
* storages are parsed from their legacy ``torch.save`` byte stream by our own reader (a second restricted unpickler
  for the few small pickles inside, raw little-endian data after them);
* ``dnnlib.util.EasyDict`` becomes a ``dict`` subclass, numpy scalars become Python numbers (``numpy.core`` and
  ``numpy._core`` names both accepted), ``collections.OrderedDict`` is allowed.

:func:`load_torch_checkpoint` reads ``torch.save`` files (zip and legacy) with ``weights_only=True``, allowing
``argparse.Namespace`` (rosinality training checkpoints carry their ``args``).
"""

from __future__ import annotations

import argparse
import ast
import collections
import hashlib
import io
import pickle
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import torch

from ..errors import UnsafeWeightsError, WeightsError

# sha256 of module sources that are accepted without the static check (stylegan2-ada-pytorch @ d72cc7d).
KNOWN_MODULE_SOURCES: Dict[str, str] = {
    "53b4e1ec457171d4e2c1454d48013765ab626141c35cdd383b020950effe11a5": "stylegan2-ada-pytorch training/networks.py",
    "77eb17876bc7ba87cdc9281caf925daf507ce0937b84d0f32134d4d08e13061e": "stylegan2-ada-pytorch training/augment.py",
}

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: Dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}

# numpy dtype string -> struct format (little-endian applied by the caller)
_NUMPY_SCALARS: Dict[str, str] = {
    "f2": "e", "f4": "f", "f8": "d", "i1": "b", "i2": "h", "i4": "i", "i8": "q",
    "u1": "B", "u2": "H", "u4": "I", "u8": "Q", "b1": "?",
}


# ------------------------------------------------------------------------------------------------- stand-ins
class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict whose items are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass
class PersistentObject:
    """What a ``torch_utils.persistence`` object holds, without its code.

    Attributes:
        class_name: e.g. ``"Generator"``. state: the module's ``__dict__`` (``_parameters``, ``_buffers``,
        ``_modules``, ``_init_kwargs``, plain attributes, ...). module_sha256: sha256 of the embedded source.
    """

    class_name: str
    state: Dict[str, Any]
    module_sha256: str = ""

    @property
    def init_kwargs(self) -> Dict[str, Any]:
        """The constructor keyword arguments (``state['_init_kwargs']``), ``{}`` when absent."""
        kw = self.state.get("_init_kwargs")
        return dict(kw) if isinstance(kw, dict) else {}

    def child(self, name: str) -> Optional["PersistentObject"]:
        """Sub-module ``name`` (dotted path) or None."""
        obj: Any = self
        for part in name.split("."):
            mods = obj.state.get("_modules")
            obj = mods.get(part) if isinstance(mods, dict) else None
            if not isinstance(obj, PersistentObject):
                return None
        return obj

    def named_tensors(self, prefix: str = "") -> Iterator[Tuple[str, torch.Tensor]]:
        """Parameters and buffers with dotted names, as ``named_parameters()`` + ``named_buffers()`` would give."""
        for group in ("_parameters", "_buffers"):
            for name, t in (self.state.get(group) or {}).items():
                if isinstance(t, torch.Tensor):
                    yield prefix + name, t
        for name, mod in (self.state.get("_modules") or {}).items():
            if isinstance(mod, PersistentObject):
                yield from mod.named_tensors(prefix + name + ".")


@dataclass
class _Storage:
    """A parsed storage: a flat tensor of ``numel`` elements (filled after the storage pickle is read)."""

    dtype: torch.dtype
    numel: int
    data: Optional[torch.Tensor] = field(default=None, repr=False)


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _NumpyDType:
    """Stand-in for ``numpy.dtype``: REDUCE ``('f8', False, True)`` then BUILD ``(3, '<', ...)``."""

    def __init__(self, name: Any, align: Any = False, copy: Any = True):
        if not isinstance(name, str) or name not in _NUMPY_SCALARS:
            raise UnsafeWeightsError(f"numpy dtype {name!r} is not a simple numeric dtype; refusing")
        self.name = name
        self.byteorder = "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], str):
            if state[1] not in ("<", "|", "="):
                raise WeightsError(f"big-endian numpy scalar ({state[1]!r}) is not supported")
            self.byteorder = state[1]


def _numpy_scalar(dtype: Any, data: Any = b"") -> Any:
    if not isinstance(dtype, _NumpyDType):
        raise UnsafeWeightsError("numpy scalar with an unexpected dtype object; refusing")
    if isinstance(data, str):  # protocol-2 pickles written by Python 2 carry latin-1 strings
        data = data.encode("latin1")
    fmt = "<" + _NUMPY_SCALARS[dtype.name]
    if not isinstance(data, (bytes, bytearray)) or len(data) != struct.calcsize(fmt):
        raise WeightsError(f"malformed numpy scalar of dtype {dtype.name}")
    return struct.unpack(fmt, bytes(data))[0]


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    # protocol < 3 writes bytes as _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeWeightsError("_codecs.encode is only allowed as the latin-1 bytes encoding of protocol-2 pickles")
    return text.encode("latin1")


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    if not isinstance(storage, _Storage) or storage.data is None:
        raise UnsafeWeightsError("_rebuild_tensor_v2 called without a storage parsed by the safe reader; refusing")
    size_t, stride_t = tuple(size), tuple(stride)
    if not all(isinstance(v, int) and v >= 0 for v in (storage_offset, *size_t, *stride_t)) or len(size_t) != len(
            stride_t):
        raise WeightsError(f"malformed tensor geometry size={size!r} stride={stride!r} offset={storage_offset!r}")
    if all(size_t):
        last = storage_offset + sum((n - 1) * s for n, s in zip(size_t, stride_t))
        if last >= storage.numel:
            raise WeightsError(f"tensor of size {size_t} reaches past its storage of {storage.numel} elements")
    return storage.data.as_strided(size_t, stride_t, storage_offset)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, *state: Any) -> Any:
    if not isinstance(data, torch.Tensor):
        raise UnsafeWeightsError("_rebuild_parameter called on something that is not a tensor; refusing")
    return data


def _qual(module: str, name: str) -> str:
    """``module.name`` for messages; protocol-2 pickles spell builtins ``__builtin__``."""
    return f"{'builtins' if module == '__builtin__' else module}.{name}"


# ------------------------------------------------------------------------------------ legacy storage payloads
class _PayloadUnpickler(pickle.Unpickler):
    """For the small pickles inside a legacy ``torch.save`` stream: only storage type names are allowed."""

    def __init__(self, f: io.BytesIO, storages: Dict[str, _Storage]):
        super().__init__(f)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module == "torch" and name in _STORAGE_DTYPES) or (module, name) == ("torch.storage", "UntypedStorage"):
            return _StorageType(name)
        raise UnsafeWeightsError(f"a tensor storage payload asks for global {_qual(module, name)}; refusing (only torch "
                                 "storage types may appear there)")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise UnsafeWeightsError(f"unexpected persistent id in a storage payload: {pid!r:.80}")
        _, stype, key, _location, numel, view = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise UnsafeWeightsError(f"malformed storage record in a storage payload: {pid!r:.80}")
        if view is not None:
            raise WeightsError("storage views in legacy payloads are not supported")
        if key not in self._storages:
            self._storages[key] = _Storage(stype.dtype, numel)
        return self._storages[key]


def parse_legacy_storage(payload: bytes) -> _Storage:
    """Parse the bytes of ``torch.storage._load_from_bytes``: a legacy (non-zip) ``torch.save`` of one storage.

    Layout: pickled magic number, pickled protocol 1001, pickled sys_info, a pickle whose persistent id names the
    storage, a pickled list of keys, then per key an int64 element count and the raw little-endian data.
    Raises :class:`UnsafeWeightsError` for any global other than a torch storage type.
    """
    if not isinstance(payload, (bytes, bytearray)):
        raise UnsafeWeightsError("_load_from_bytes called on something that is not bytes; refusing")
    f = io.BytesIO(payload)
    storages: Dict[str, _Storage] = {}

    def small() -> Any:
        return _PayloadUnpickler(f, storages).load()

    if small() != _TORCH_LEGACY_MAGIC:
        raise WeightsError("tensor storage payload is not a legacy torch stream (bad magic number)")
    if small() != _TORCH_LEGACY_PROTOCOL:
        raise WeightsError("tensor storage payload has an unsupported legacy protocol version")
    sys_info = small()
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise WeightsError("big-endian tensor storage payloads are not supported")
    result = small()
    keys = small()
    if not isinstance(result, _Storage) or not isinstance(keys, list):
        raise WeightsError("tensor storage payload does not hold a single storage")
    for key in keys:
        st = storages.get(key) if isinstance(key, str) else None
        if st is None:
            raise WeightsError(f"tensor storage payload lists an unknown key {key!r:.40}")
        head = f.read(8)
        if len(head) != 8:
            raise WeightsError("tensor storage payload is truncated")
        (count,) = struct.unpack("<q", head)
        if count != st.numel:
            raise WeightsError(f"tensor storage payload holds {count} elements, its record says {st.numel}")
        nbytes = count * torch.empty((), dtype=st.dtype).element_size()
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise WeightsError("tensor storage payload is truncated")
        st.data = torch.frombuffer(bytearray(raw), dtype=st.dtype) if nbytes else torch.empty(0, dtype=st.dtype)
    if result.data is None:
        raise WeightsError("tensor storage payload has no data for its storage")
    return result


# --------------------------------------------------------------------------------------- module-source policy
_ALLOWED_DECORATORS = {
    "persistence.persistent_class", "misc.profiled_function", "staticmethod", "classmethod", "property",
    "torch.jit.unused", "torch.jit.ignore", "abstractmethod", "abc.abstractmethod",
}
_SAFE_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitOr, ast.BitAnd)


def _dotted(node: ast.AST) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else base + "." + node.attr
    return None


def _safe_expr(node: Optional[ast.AST]) -> bool:
    """Literals, names, dotted names and containers/arithmetic of them: nothing that calls anything."""
    if node is None or isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _dotted(node) is not None
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_safe_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(_safe_expr(k) for k in node.keys) and all(_safe_expr(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _safe_expr(node.operand)
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, _SAFE_BINOPS) and _safe_expr(node.left) and _safe_expr(node.right)
    if isinstance(node, ast.Compare):
        return _safe_expr(node.left) and all(_safe_expr(c) for c in node.comparators)
    if isinstance(node, ast.BoolOp):
        return all(_safe_expr(v) for v in node.values)
    if isinstance(node, ast.Subscript):  # annotations such as Optional[int]
        return _safe_expr(node.value) and _safe_expr(node.slice)
    return False


def _bad(node: ast.AST, src: str, why: str) -> UnsafeWeightsError:
    seg = (ast.get_source_segment(src, node) or type(node).__name__).splitlines()[0][:100]
    return UnsafeWeightsError(f"line {getattr(node, 'lineno', '?')}: {why}: `{seg}`")


def _check_function(node: ast.AST, src: str) -> None:
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    for dec in node.decorator_list:
        if _dotted(dec) not in _ALLOWED_DECORATORS:
            raise _bad(dec, src, "decorator that is not on the allow-list")
    a = node.args
    for d in [*a.defaults, *a.kw_defaults]:
        if not _safe_expr(d):
            raise _bad(d, src, "default value that runs code at definition time")
    for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
        if arg is not None and not _safe_expr(arg.annotation):
            raise _bad(arg, src, "annotation that runs code at definition time")
    if not _safe_expr(node.returns):
        raise _bad(node, src, "return annotation that runs code at definition time")


def _check_statements(body: Iterable[ast.stmt], src: str) -> None:
    for st in body:
        if isinstance(st, (ast.Import, ast.ImportFrom, ast.Pass)):
            continue
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _check_function(st, src)
        elif isinstance(st, ast.ClassDef):
            for dec in st.decorator_list:
                if _dotted(dec) not in _ALLOWED_DECORATORS:
                    raise _bad(dec, src, "class decorator that is not on the allow-list")
            if st.keywords or not all(_dotted(b) for b in st.bases):
                raise _bad(st, src, "class bases/keywords that run code")
            _check_statements(st.body, src)
        elif isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
            continue  # docstring
        elif isinstance(st, ast.Assign):
            if not all(isinstance(t, ast.Name) or (isinstance(t, ast.Tuple) and all(isinstance(e, ast.Name)
                       for e in t.elts)) for t in st.targets) or not _safe_expr(st.value):
                raise _bad(st, src, "assignment that runs code on import")
        elif isinstance(st, ast.AnnAssign):
            if not isinstance(st.target, ast.Name) or not _safe_expr(st.annotation) or not _safe_expr(st.value):
                raise _bad(st, src, "assignment that runs code on import")
        elif isinstance(st, ast.If):
            if not _safe_expr(st.test):
                raise _bad(st, src, "condition that runs code on import")
            _check_statements(st.body, src)
            _check_statements(st.orelse, src)
        elif isinstance(st, ast.Try):
            _check_statements(st.body, src)
            for h in st.handlers:
                if not _safe_expr(h.type):
                    raise _bad(h, src, "exception handler that runs code on import")
                _check_statements(h.body, src)
            _check_statements(st.orelse, src)
            _check_statements(st.finalbody, src)
        else:
            raise _bad(st, src, "statement that runs code on import")


def check_module_source(src: str) -> str:
    """Accept an embedded module source without executing it; return its sha256.

    Known NVIDIA sources (:data:`KNOWN_MODULE_SOURCES`) pass by hash. Any other source must consist, at module and
    class level, only of imports, docstrings, literal/dotted-name assignments, and defs/classes whose decorators are
    allow-listed and whose defaults, annotations and bases are literals or dotted names. Raises
    :class:`UnsafeWeightsError` naming the first offending line otherwise.
    """
    if not isinstance(src, str):
        raise UnsafeWeightsError("embedded module source is not a string")
    digest = hashlib.sha256(src.encode("utf-8")).hexdigest()
    if digest in KNOWN_MODULE_SOURCES:
        return digest
    try:
        tree = ast.parse(src)
    except SyntaxError as exc:
        raise UnsafeWeightsError(f"embedded module source does not parse ({exc.msg}, line {exc.lineno})") from exc
    _check_statements(tree.body, src)
    return digest


# ------------------------------------------------------------------------------------- the network unpickler
class NetworkUnpickler(pickle.Unpickler):
    """Restricted unpickler for NVIDIA network pickles. See the module docstring for what it allows."""

    def __init__(self, f: io.BufferedIOBase, *, check_sources: bool = True):
        super().__init__(f)
        self.check_sources = check_sources
        self._checked: Dict[int, str] = {}
        self._allowed: Dict[Tuple[str, str], Any] = {
            ("torch_utils.persistence", "_reconstruct_persistent_obj"): self._reconstruct,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): parse_legacy_storage,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("dnnlib.util", "EasyDict"): EasyDict,
            ("dnnlib", "EasyDict"): EasyDict,
            ("numpy", "dtype"): _NumpyDType,
            ("numpy.core.multiarray", "scalar"): _numpy_scalar,
            ("numpy._core.multiarray", "scalar"): _numpy_scalar,
            ("builtins", "set"): set, ("__builtin__", "set"): set,
            ("builtins", "frozenset"): frozenset, ("__builtin__", "frozenset"): frozenset,
            ("_codecs", "encode"): _latin1_encode,
        }

    def find_class(self, module: str, name: str) -> Any:
        fn = self._allowed.get((module, name))
        if fn is not None:
            return fn
        if module.startswith("dnnlib.tflib"):
            raise WeightsError(f"this is a TensorFlow StyleGAN pickle ({module}.{name}); only PyTorch "
                               "stylegan2-ada-pytorch pickles are supported (convert it with NVIDIA's legacy.py)")
        raise UnsafeWeightsError(f"the pickle asks for global {_qual(module, name)}, which the safe loader does not "
                                 "allow")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeWeightsError(f"unexpected persistent id {pid!r:.60} in a network pickle")

    def _reconstruct(self, meta: Any) -> PersistentObject:
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise UnsafeWeightsError("persistent object record of an unknown type; refusing")
        cls, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src")
        if not isinstance(cls, str) or not cls.isidentifier() or not isinstance(state, dict):
            raise UnsafeWeightsError("malformed persistent object record; refusing")
        digest = self._checked.get(id(src)) if isinstance(src, str) else None
        if digest is None:
            if not isinstance(src, str):
                raise UnsafeWeightsError(f"persistent object {cls} has no module source string; refusing")
            if self.check_sources:
                try:
                    digest = check_module_source(src)
                except UnsafeWeightsError as exc:
                    raise UnsafeWeightsError(
                        f"the embedded module source of class {cls} contains code that would run when the file "
                        f"is loaded by NVIDIA's code ({exc}); the file was modified or is not a plain network "
                        "snapshot. imgforge never executes it, but refuses the file") from None
            else:
                digest = hashlib.sha256(src.encode("utf-8")).hexdigest()
            self._checked[id(src)] = digest  # memo references share one string object
        return PersistentObject(cls, state, digest)


def load_network_pickle(path: Path, *, check_sources: bool = True) -> Any:
    """Read an NVIDIA (stylegan2-ada-pytorch / stylegan3) network pickle safely; nothing from it is executed.

    Returns the top-level object (normally a dict ``{'G', 'D', 'G_ema', ...}``) with each network as a
    :class:`PersistentObject`. Raises :class:`UnsafeWeightsError` (naming the file and the offending global or
    source line) for anything outside the allow-list, :class:`WeightsError` for unreadable files.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with open(path, "rb") as fh:
            return NetworkUnpickler(fh, check_sources=check_sources).load()
    except UnsafeWeightsError as exc:
        raise UnsafeWeightsError(f"{path}: refused: {exc}. Only load weights from sources you trust.") from None
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    except Exception as exc:  # truncated or corrupt pickles raise many kinds of errors
        raise WeightsError(f"{path}: not a readable network pickle ({type(exc).__name__}: {exc})") from exc


# --------------------------------------------------------------------------------------- torch checkpoints
def load_torch_checkpoint(path: Path, *, allow: Iterable[Any] = (argparse.Namespace,)) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with ``allow`` (default: argparse.Namespace)
    added to the safe globals; zip and legacy formats.

    Raises :class:`UnsafeWeightsError` naming the global when the file asks for a disallowed one,
    :class:`WeightsError` for other read failures.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        m = re.search(r"GLOBAL ([\w.]+)", str(exc))  # "Unsupported global: GLOBAL x" / "unsupported GLOBAL x whose ..."
        if m:
            raise UnsafeWeightsError(f"{path}: refused: the file asks for global {m.group(1)}, which the safe "
                                     "loader does not allow (it may run code). Only load weights from sources "
                                     "you trust.") from None
        raise WeightsError(f"{path}: cannot be read safely as a PyTorch checkpoint ({str(exc).splitlines()[0]})"
                           ) from None
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc


def list_globals(path: Path) -> List[str]:
    """Static scan: the ``module.name`` globals a pickle file references (no unpickling). For diagnostics."""
    import pickletools

    names: List[str] = []
    strings: List[str] = []
    with open(path, "rb") as fh:
        for op, arg, _pos in pickletools.genops(fh):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
            elif op.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
    return sorted(set(names))
