"""Where weights live, how a name becomes a file, and how a file becomes a model.

Resolution order of :func:`resolve` (first hit wins):

1. an explicit path to an existing file;
2. each directory of ``IMGFORGE_WEIGHTS_PATH`` (``os.pathsep``-separated), in order;
3. the repository/package ``weights/`` directory;
4. the cache: ``IMGFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/imgforge``, else ``~/.cache/imgforge``;
5. a download into the cache (verified before use) -- unless ``IMGFORGE_OFFLINE=1`` or ``offline=True``, which
   raises :class:`~imgforge.errors.OfflineError` with one line naming every place looked in.

In each directory the converted file ``<name>.safetensors`` is preferred over the entry's upstream ``filename``.

Files downloaded for an entry whose hash kind is ``"none"`` get a ``<file>.sha256`` sidecar in the cache (the digest
pinned on first fetch); :func:`verify` compares later against it.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import ChecksumError, InputError, OfflineError, UsageError, WeightsError
from ..fsutil import atomic_path, atomic_write_text
from ..progress import ProgressFn, note
from .download import check_digest, download, env_offline, is_offline
from .manifest import (
    MANIFEST,
    WeightsEntry,
    find_entry,
    list_entries,
    read_safetensors_metadata,
    repo_weights_dir,
)

if TYPE_CHECKING:  # torch is imported only when a model is built, so `imgforge weights list` starts fast
    import torch.nn as nn

PathOrName = Union[str, "os.PathLike[str]"]
MAX_ARCHIVE_MEMBER = 4 << 30  # refuse to extract a member larger than 4 GiB (zip bombs)

# ----------------------------------------------------------------------------------------------------------------
# Places


@dataclass(frozen=True)
class Place:
    """A directory searched for weights and why (``"IMGFORGE_WEIGHTS_PATH"``, ``"repo weights"``, ``"cache"``)."""

    directory: Path
    label: str


def cache_dir() -> Path:
    """The download cache: ``IMGFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/imgforge``, else ``~/.cache/imgforge``."""
    override = os.environ.get("IMGFORGE_CACHE_DIR", "").strip()
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "imgforge"


def env_weights_dirs() -> List[Path]:
    """Directories of ``IMGFORGE_WEIGHTS_PATH`` in order (empty items skipped)."""
    raw = os.environ.get("IMGFORGE_WEIGHTS_PATH", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def search_places() -> List[Place]:
    """Every directory searched, in resolution order (explicit paths and downloads aside)."""
    places = [Place(d, "IMGFORGE_WEIGHTS_PATH") for d in env_weights_dirs()]
    places.append(Place(repo_weights_dir(), "repo weights"))
    places.append(Place(cache_dir(), "cache"))
    return places


def candidate_names(entry: WeightsEntry) -> List[str]:
    """File names that satisfy ``entry`` in a directory, preferred first."""
    names = [entry.converted_filename]
    if entry.filename not in names:
        names.append(entry.filename)
    return names


def _find_in_places(names: Sequence[str], places: Sequence[Place]) -> Optional[Tuple[Path, Place]]:
    for place in places:
        for name in names:
            p = place.directory / name
            if p.is_file():
                return p, place
    return None


def find_local(entry: WeightsEntry) -> Optional[Path]:
    """The first existing file for ``entry`` in :func:`search_places` (converted name first), or ``None``."""
    hit = _find_in_places(candidate_names(entry), search_places())
    return hit[0] if hit else None


def find_all(entry: WeightsEntry) -> List[Tuple[Path, Place]]:
    """Every existing file for ``entry`` in every searched directory (for ``list`` and ``verify``)."""
    out = []
    seen = set()
    for place in search_places():
        for name in candidate_names(entry):
            p = place.directory / name
            key = os.path.realpath(p)
            if p.is_file() and key not in seen:
                seen.add(key)
                out.append((p, place))
    return out


def _looked_in(names: Sequence[str]) -> str:
    places = ", ".join(f"{p.directory} ({p.label})" for p in search_places())
    if not env_weights_dirs():
        places += ", IMGFORGE_WEIGHTS_PATH (not set)"
    return f"looked for {' or '.join(names)} in: {places}"


def entry_for_file(path: Path) -> Optional[WeightsEntry]:
    """The manifest entry whose upstream or converted file name is ``path.name``, if any."""
    for e in list_entries():
        if path.name in (e.filename, e.converted_filename):
            return e
    return None


def _has_directory_part(s: str) -> bool:
    """Whether ``s`` names a path (has a directory separator or starts with ``~``) rather than a bare name."""
    return "/" in s or os.sep in s or (os.altsep is not None and os.altsep in s) or s.startswith("~")


# ----------------------------------------------------------------------------------------------------------------
# Pins (trust on first use for entries without a published digest)


def pin_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_pin(path: Path, digest: str) -> None:
    """Record ``digest`` for ``path`` in a ``<file>.sha256`` sidecar (``sha256sum`` format)."""
    atomic_write_text(pin_path(path), f"{digest}  {path.name}\n")


def read_pin(path: Path) -> Optional[str]:
    """The pinned digest for ``path``: its own sidecar, else the sidecar of the same file name in the cache."""
    for cand in (pin_path(path), pin_path(cache_dir() / path.name)):
        try:
            text = cand.read_text(encoding="utf-8").split()
        except OSError:
            continue
        if text and len(text[0]) == 64:
            return text[0].lower()
    return None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (same as :func:`imgforge.hub.converters.sha256_file`, without
    importing torch)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Resolution


def _download_entry(entry: WeightsEntry, *, offline: Optional[bool], progress: Optional[ProgressFn]) -> Path:
    names = candidate_names(entry)
    cache = cache_dir()
    if entry.archive_member:
        archive = _find_in_places([entry.archive_filename], search_places())
        if archive is not None:
            return _extract_member(entry, archive[0], cache / entry.filename, progress)
    if not entry.url:
        raise WeightsError(
            f"weights {entry.name!r} not found and have no download URL; {_looked_in(names)}; {entry.notes}"
        )
    if is_offline(offline):
        why = "IMGFORGE_OFFLINE=1" if env_offline() else "offline mode"
        raise OfflineError(
            f"weights {entry.name!r} not found locally and downloads are off ({why}); {_looked_in(names)}; run "
            f"`imgforge weights fetch {entry.name}` while online, or put {entry.filename} in a directory listed in "
            "IMGFORGE_WEIGHTS_PATH"
        )
    target = cache / (entry.archive_filename or entry.filename)
    note(progress, f"download {entry.name}", f"downloading {entry.url} to {target}")
    result = download(
        entry.url,
        target,
        sha256=entry.sha256,
        hash_kind=entry.hash_kind,
        progress=progress,
        task=f"download {entry.name}",
        offline=offline,
    )
    if entry.hash_kind == "none":
        write_pin(result.path, result.sha256)
    if entry.archive_member:
        return _extract_member(entry, result.path, cache / entry.filename, progress)
    return result.path


def _extract_member(entry: WeightsEntry, archive: Path, dest: Path, progress: Optional[ProgressFn]) -> Path:
    """Extract ``entry.archive_member`` from ``archive`` to ``dest`` (atomically) and pin its digest."""
    import hashlib

    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(entry.archive_member)
            except KeyError:
                raise WeightsError(
                    f"{archive}: has no member {entry.archive_member!r} (members: "
                    f"{', '.join(zf.namelist()[:10])}); delete it and fetch {entry.name} again"
                ) from None
            if info.file_size > MAX_ARCHIVE_MEMBER:
                raise WeightsError(
                    f"{archive}: member {entry.archive_member} is implausibly large ({info.file_size} B)"
                )
            h = hashlib.sha256()
            with zf.open(info) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
                for block in iter(lambda: src.read(1 << 20), b""):
                    out.write(block)
                    h.update(block)
    except zipfile.BadZipFile as exc:
        raise WeightsError(
            f"{archive}: not a valid zip archive ({exc}); delete it and fetch {entry.name} again"
        ) from exc
    note(progress, f"download {entry.name}", f"extracted {entry.archive_member} to {dest}")
    if dest.parent == cache_dir():
        write_pin(dest, h.hexdigest())
    return dest


def resolve(name_or_path: PathOrName, *, offline: Optional[bool] = None, progress: Optional[ProgressFn] = None) -> Path:
    """Turn a manifest name or a path into an existing file, downloading into the cache when needed.

    See the module docstring for the order. Raises :class:`OfflineError` (offline and not found),
    :class:`WeightsError` (unknown name, no URL), :class:`~imgforge.errors.DownloadError` or
    :class:`~imgforge.errors.ChecksumError` (download failed / file refused).
    """
    text = os.fspath(name_or_path)
    explicit = Path(text).expanduser()
    if explicit.is_file():
        return explicit
    entry = find_entry(text)
    if entry is None:
        if explicit.is_dir():
            raise InputError(f"{explicit} is a directory; give a weights file or a name from `imgforge weights list`")
        if _has_directory_part(text):
            raise InputError(f"weights file not found: {explicit}")
        names = [text] if text.endswith(".safetensors") else [text, f"{text}.safetensors"]
        hit = _find_in_places(names, search_places())
        if hit is not None:
            return hit[0]
        raise WeightsError(
            f"unknown weights {text!r}: not an existing file and not a name from `imgforge weights list`; "
            f"{_looked_in(names)}"
        )
    hit = _find_in_places(candidate_names(entry), search_places())
    if hit is not None:
        return hit[0]
    return _download_entry(entry, offline=offline, progress=progress)


# ----------------------------------------------------------------------------------------------------------------
# Formats


def sniff_format(path: Path) -> str:
    """What a weights file is, from its first bytes (nothing is unpickled).

    Returns one of ``"safetensors"``, ``"torch_zip"`` (torch.save >= 1.6), ``"torch_legacy"`` (older torch.save),
    ``"nvidia_pkl"`` (an NVIDIA network pickle), ``"zip"`` (another zip archive), ``"pickle"`` (another pickle),
    ``"unknown"``.
    """
    if read_safetensors_metadata(path) is not None:
        return "safetensors"
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                if any(n.endswith("/data.pkl") or n == "data.pkl" for n in zf.namelist()):
                    return "torch_zip"
        except zipfile.BadZipFile:
            return "unknown"
        return "zip"
    # torch's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c (protocol 2, LONG1).
    if head.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"):
        return "torch_legacy"
    if len(head) > 8 and head[8:9] == b"{":  # a damaged safetensors file (its header length may start with 0x80)
        return "safetensors"
    if head[:1] == b"\x80":
        if b"torch_utils.persistence" in head or b"dnnlib" in head:
            return "nvidia_pkl"
        return "pickle"
    return "unknown"


def guess_converter(path: Path) -> str:
    """Best guess of the converter for an upstream file, from its format and (for torch files) its key names.

    Torch files are read with ``weights_only=True`` (memory-mapped when possible); nothing else is executed. Raises
    :class:`WeightsError` asking for ``--format`` when the file is not recognised.
    """
    fmt = sniff_format(path)
    ask = "pass --format CONVERTER (see `imgforge weights import --help` for the names)"
    if fmt == "nvidia_pkl":
        return "nvidia_stylegan2_pkl"
    if fmt not in ("torch_zip", "torch_legacy"):
        raise WeightsError(f"{path}: cannot tell which converter reads this file (format: {fmt}); {ask}")
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=(fmt == "torch_zip"))
    except Exception as exc:  # UnpicklingError for disallowed globals (e.g. rosinality train files), corrupt files
        if "argparse" in str(exc) and "Namespace" in str(exc):
            return "rosinality_stylegan2"
        raise WeightsError(
            f"{path}: cannot be read safely as a plain state dict ({type(exc).__name__}); {ask}"
        ) from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict; {ask}")
    keys = [str(k) for k in obj.keys()]
    shapes = {k: tuple(v.shape) for k, v in obj.items() if hasattr(v, "shape")}
    if "g_ema" in keys:
        return "rosinality_stylegan2"
    if any(k.startswith("features.") for k in keys) and any(k.startswith("classifier.") for k in keys):
        return "torchvision_vgg"
    if "conv1.conv2d.weight" in keys and any(k.startswith("res1.") for k in keys):
        return "fast_style"
    if keys and all(k.startswith("model.") for k in keys):
        first = shapes.get("model.0.weight", ())
        if len(first) == 4 and first[-1] == 4:  # a 4x4 conv straight on the input: a PatchGAN discriminator
            raise WeightsError(
                f"{path}: looks like a pix2pix/CycleGAN discriminator (net_D); only generators are converted for "
                "inference: import the matching latest_net_G.pth"
            )
        return "translation_generator"
    if keys and all(k.split(".", 1)[0].isdigit() for k in keys):
        if shapes.get("0.weight") == (3, 3, 1, 1):
            return "adain_vgg_normalised"
        first = shapes.get(keys[0], ())
        if len(first) == 4 and first[1] == 512:
            return "adain_decoder"
    raise WeightsError(f"{path}: a state dict whose keys ({', '.join(keys[:4])}, ...) no converter claims; {ask}")


def _converter(name: str, what: str) -> Any:
    from .converters import converter_names, get_converter

    try:
        return get_converter(name)
    except WeightsError:
        known = ", ".join(converter_names()) or "none yet"
        raise WeightsError(
            f"{what} needs converter {name!r}, which this installation does not have (available: {known})"
        ) from None


def converter_available(name: str) -> bool:
    from .converters import converter_names

    return name in converter_names()


def _build_checked(converted: Any, path: Path) -> nn.Module:
    from ..models.registry import build

    model = build(converted.arch, **converted.arch_kwargs)
    try:
        model.load_state_dict(converted.state_dict, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: converted weights do not fit architecture {converted.arch!r}: {exc}") from exc
    return model.eval()


def _convert(path: Path, converter: str) -> Tuple[nn.Module, Any]:
    fn = _converter(converter, str(path))
    converted = fn(path)
    return _build_checked(converted, path), converted


def _meta(converted: Any, converter: str, path: Path, source_sha256: str = "") -> Dict[str, Any]:
    meta: Dict[str, Any] = dict(converted.extra)
    meta.update(
        format="imgforge",
        arch=converted.arch,
        arch_kwargs=dict(converted.arch_kwargs),
        source_sha256=source_sha256 or converted.source_sha256,
        converter=converter,
        source_file=path.name,
    )
    return meta


def _save_converted(
    converted: Any, converter: str, src: Path, out: Path, entry: Optional[WeightsEntry], source_sha256: str
) -> Path:
    from .modelfile import save_model_file

    extra = {k: str(v) for k, v in converted.extra.items()}
    extra.update(converter=converter, source_file=src.name)
    if entry is not None:
        extra.update(name=entry.name, licence=entry.licence, citation=entry.citation)
        if entry.url:
            extra["source_url"] = entry.url
    save_model_file(
        out,
        converted.state_dict,
        arch=converted.arch,
        arch_kwargs=converted.arch_kwargs,
        source_sha256=source_sha256 or converted.source_sha256,
        extra=extra,
    )
    return out


def load_model(
    name_or_path: PathOrName,
    progress: Optional[ProgressFn] = None,
    *,
    converter: Optional[str] = None,
    offline: Optional[bool] = None,
) -> Tuple[nn.Module, Dict[str, Any]]:
    """Resolve ``name_or_path`` and build its model (eval mode, CPU, float32).

    An imgforge safetensors file is loaded with :func:`imgforge.hub.modelfile.load_model_file`. Any other file goes
    through a converter: ``converter`` when given, else the manifest entry's (by name or by file name), else a guess
    from the file's format and keys (:func:`guess_converter`). When the converted file came from the cache, the
    converted safetensors is saved next to it so the next load skips the converter.

    Returns ``(model, metadata)``; metadata has at least ``arch``, ``arch_kwargs``, ``source_sha256``, ``path``.
    """
    from .modelfile import load_model_file

    path = resolve(name_or_path, offline=offline, progress=progress)
    meta = read_safetensors_metadata(path)
    if meta is not None and converter is None:
        if meta.get("format") != "imgforge" or not meta.get("arch"):
            raise WeightsError(
                f"{path}: a safetensors file without imgforge metadata; convert it with "
                "`imgforge weights import FILE --format CONVERTER`"
            )
        model, info = load_model_file(path)
        info["path"] = str(path)
        return model, info
    entry = find_entry(os.fspath(name_or_path)) or entry_for_file(path)
    conv = converter or (entry.converter if entry is not None else None) or guess_converter(path)
    model, converted = _convert(path, conv)
    info = _meta(converted, conv, path)
    info["path"] = str(path)
    if entry is not None and path.parent == cache_dir() and path.name == entry.filename:
        with contextlib.suppress(WeightsError, OSError):
            out = cache_dir() / entry.converted_filename
            digest = converted.source_sha256 or sha256_file(path)
            _save_converted(converted, conv, path, out, entry, digest)
            write_pin(out, sha256_file(out))
    return model, info


def import_file(
    src: PathOrName,
    converter: Optional[str] = None,
    out_path: Optional[PathOrName] = None,
    *,
    progress: Optional[ProgressFn] = None,
) -> Path:
    """Convert an upstream file to an imgforge safetensors file (metadata: arch, arch_kwargs, source sha256).

    ``converter`` defaults to the manifest entry matching the file name, else a guess (:func:`guess_converter`).
    ``out_path`` defaults to ``<cache>/<entry name or file stem>.safetensors``, which :func:`resolve` then finds by
    that name. The result is checked to load strictly into its architecture before it is written.
    """
    src = Path(os.fspath(src)).expanduser()
    if not src.is_file():
        raise InputError(f"weights file not found: {src}")
    entry = entry_for_file(src)
    meta = read_safetensors_metadata(src)
    if meta is not None and meta.get("format") == "imgforge" and converter is None:
        raise UsageError(f"{src} is already an imgforge weights file; use it directly")
    conv = converter or (entry.converter if entry is not None and entry.converter else None) or guess_converter(src)
    if out_path is None:
        out = cache_dir() / (entry.converted_filename if entry is not None else f"{src.stem}.safetensors")
    else:
        out = Path(os.fspath(out_path)).expanduser()
    if out.suffix != ".safetensors":
        raise UsageError(f"output {out} must end in .safetensors")
    if out.exists() and os.path.realpath(out) == os.path.realpath(src):
        raise UsageError(f"output {out} is the input file; choose another -o")
    note(progress, f"import {src.name}", f"converting {src} with {conv}")
    _model, converted = _convert(src, conv)
    digest = sha256_file(src)
    _save_converted(converted, conv, src, out, entry, digest)
    if out.parent == cache_dir():
        write_pin(out, sha256_file(out))
    note(progress, f"import {src.name}", f"wrote {out}")
    return out


# ----------------------------------------------------------------------------------------------------------------
# fetch and verify


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did for one entry.

    Attributes:
        name: the entry name.
        path: the raw upstream file (or the shipped/converted file when no raw file is needed).
        converted: the converted safetensors file, or ``None``.
        downloaded: whether a download happened.
        message: a one-line note for people (e.g. "converter X not available yet: kept the raw file").
    """

    name: str
    path: Path
    converted: Optional[Path]
    downloaded: bool
    message: str


def fetch(
    name: str,
    *,
    progress: Optional[ProgressFn] = None,
    convert: bool = True,
    offline: Optional[bool] = None,
) -> FetchResult:
    """Make ``name`` available locally: download + verify into the cache if it is not found anywhere, then convert
    to ``<cache>/<name>.safetensors`` when the entry has a converter that this installation provides.

    A missing converter is not an error: the raw file is kept and the message says so.
    """
    entry = find_entry(name)
    if entry is None:
        from .manifest import get_entry

        entry = get_entry(name)  # raises with suggestions
    places = search_places()
    converted_hit = _find_in_places([entry.converted_filename], places)
    raw_hit = _find_in_places([entry.filename], places)
    if converted_hit is not None:
        path = raw_hit[0] if raw_hit is not None else converted_hit[0]
        return FetchResult(entry.name, path, converted_hit[0], False, f"present: {converted_hit[0]}")

    downloaded = False
    if raw_hit is not None:
        raw = raw_hit[0]
    else:
        raw = _download_entry(entry, offline=offline, progress=progress)
        downloaded = True
    if entry.converter is None or not convert:
        return FetchResult(entry.name, raw, None, downloaded, f"{'downloaded' if downloaded else 'present'}: {raw}")
    if not converter_available(entry.converter):
        return FetchResult(
            entry.name, raw, None, downloaded,
            f"{'downloaded' if downloaded else 'present'}: {raw}; converter {entry.converter!r} is not available in "
            "this version, kept the raw file (it is converted when loaded once the converter exists)",
        )
    out = cache_dir() / entry.converted_filename
    note(progress, f"convert {entry.name}", f"converting {raw.name} with {entry.converter}")
    _model, converted = _convert(raw, entry.converter)
    digest = read_pin(raw) if entry.hash_kind == "none" else None
    _save_converted(converted, entry.converter, raw, out, entry, digest or converted.source_sha256 or sha256_file(raw))
    write_pin(out, sha256_file(out))
    return FetchResult(entry.name, raw, out, downloaded, f"{'downloaded' if downloaded else 'present'}: {raw}; "
                       f"converted: {out}")


@dataclass(frozen=True)
class VerifyResult:
    """The check of one file.

    Attributes:
        name: entry name.
        path: the file checked, or ``None`` when nothing was found.
        status: ``"ok"`` (matches the manifest digest, the pin, or weights/SHA256SUMS), ``"mismatch"``,
            ``"missing"`` (no file found), or ``"unverified"`` (nothing to compare against).
        expected: the digest (or prefix) compared against, ``""`` when none.
        actual: the file's sha256, ``""`` when not computed.
        detail: one line for people.
    """

    name: str
    path: Optional[Path]
    status: str
    expected: str
    actual: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status in ("mismatch", "missing")


def _verify_file(entry: WeightsEntry, path: Path) -> VerifyResult:
    actual = sha256_file(path)
    is_converted = path.name == entry.converted_filename and path.name != entry.filename
    if is_converted:
        meta = read_safetensors_metadata(path) or {}
        pin = read_pin(path)
        if pin is not None and pin != actual:
            return VerifyResult(
                entry.name, path, "mismatch", pin, actual, "converted file changed since it was written"
            )
        source = meta.get("source_sha256", "")
        if entry.hash_kind in ("sha256", "sha256_prefix"):
            if not check_digest(source, entry.sha256, entry.hash_kind):
                return VerifyResult(entry.name, path, "mismatch", entry.sha256, source,
                                    "converted from a file whose sha256 does not match the manifest")
            return VerifyResult(entry.name, path, "ok", entry.sha256, actual,
                                "converted from the manifest's file" + (" (file pinned)" if pin else ""))
        if pin is not None:
            return VerifyResult(entry.name, path, "ok", pin, actual, "matches the digest pinned when it was written")
        return VerifyResult(entry.name, path, "unverified", "", actual, "no published or pinned digest")
    if entry.hash_kind in ("sha256", "sha256_prefix"):
        ok = check_digest(actual, entry.sha256, entry.hash_kind)
        kind = "prefix" if entry.hash_kind == "sha256_prefix" else "sha256"
        return VerifyResult(entry.name, path, "ok" if ok else "mismatch", entry.sha256, actual,
                            f"manifest {kind} {'matches' if ok else 'does NOT match'}")
    pin = read_pin(path)
    if pin is None:
        return VerifyResult(entry.name, path, "unverified", "", actual,
                            "no published digest and none pinned (file not fetched by imgforge)")
    ok = pin == actual
    return VerifyResult(entry.name, path, "ok" if ok else "mismatch", pin, actual,
                        f"digest pinned on first fetch {'matches' if ok else 'does NOT match'}")


def verify(name: str) -> List[VerifyResult]:
    """Re-hash every local copy of ``name`` (upstream file and converted file, in every searched directory) and
    compare with the manifest digest, the digest pinned on first fetch, or ``weights/SHA256SUMS``.

    Returns one result per file found, or a single ``"missing"`` result. Nothing is downloaded.
    """
    entry = find_entry(name)
    if entry is None:
        from .manifest import get_entry

        entry = get_entry(name)
    found = find_all(entry)
    if not found:
        return [VerifyResult(entry.name, None, "missing", entry.sha256, "", _looked_in(candidate_names(entry)))]
    return [_verify_file(entry, p) for p, _place in found]


def verify_all(names: Optional[Sequence[str]] = None) -> List[VerifyResult]:
    """:func:`verify` for ``names``; without names, for every entry that has a local copy (missing ones skipped)."""
    if names:
        out: List[VerifyResult] = []
        for n in names:
            out.extend(verify(n))
        return out
    results: List[VerifyResult] = []
    for entry in list_entries():
        for p, _place in find_all(entry):
            results.append(_verify_file(entry, p))
    return results


def raise_on_failures(results: Sequence[VerifyResult]) -> None:
    """Raise :class:`ChecksumError` (or :class:`WeightsError` for missing files) when any result failed."""
    bad = [r for r in results if r.failed]
    if not bad:
        return
    mism = [r for r in bad if r.status == "mismatch"]
    if mism:
        files = ", ".join(str(r.path) for r in mism)
        raise ChecksumError(f"{len(mism)} file(s) do not match their expected sha256: {files}; delete them and run "
                            "`imgforge weights fetch NAME` again")
    raise WeightsError(f"not found locally: {', '.join(r.name for r in bad)}; run `imgforge weights fetch NAME`")


__all__ = [
    "MANIFEST",
    "FetchResult",
    "Place",
    "VerifyResult",
    "cache_dir",
    "candidate_names",
    "env_weights_dirs",
    "fetch",
    "find_all",
    "find_local",
    "guess_converter",
    "import_file",
    "load_model",
    "raise_on_failures",
    "resolve",
    "search_places",
    "sniff_format",
    "verify",
    "verify_all",
]
