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
pinned on first fetch); :func:`imgforge.hub.verify.verify` compares later against it. Format sniffing lives in
:mod:`imgforge.hub.formats`, the typed loader on top of :func:`load_model` in :mod:`imgforge.hub.loader`.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import InputError, OfflineError, UsageError, WeightsError
from ..fsutil import atomic_path, atomic_write_text, sha256_file
from ..progress import ProgressFn, note
from .download import download, env_offline, is_offline
from .formats import guess_converter, sniff_format
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


__all__ = [
    "MANIFEST",
    "FetchResult",
    "Place",
    "cache_dir",
    "candidate_names",
    "env_weights_dirs",
    "fetch",
    "find_all",
    "find_local",
    "guess_converter",
    "import_file",
    "load_model",
    "resolve",
    "search_places",
    "sniff_format",
]
