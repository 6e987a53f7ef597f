"""Known translation datasets: a name resolves to the reference's official download, cached and extracted once.

URLs follow the reference's scripts (``datasets/download_cyclegan_dataset.sh``: ``<base>cyclegan/datasets/<name>.zip``;
``datasets/download_pix2pix_dataset.sh``: ``<base>pix2pix/datasets/<name>.tar.gz``; base
``http://efrosgans.eecs.berkeley.edu/``, overridable with ``IMGFORGE_DATASETS_URL`` for a mirror). No sha256 is
published for these archives, so the hash kind is ``"none"``: the digest of the first download is pinned next to the
archive (``<archive>.sha256``) and a later download of the same archive must match it.

Layout of the cache (``imgforge.hub.store.cache_dir()``): ``datasets/<kind>/<name>/`` (e.g.
``datasets/cyclegan/horse2zebra/trainA``) with a ``.complete`` marker; ``facades`` and ``maps`` exist in both kinds
with different layouts, hence the ``<kind>`` level. Downloads resume from ``<archive>.part``
(:func:`imgforge.hub.download.download`); extraction goes to a temporary folder that is renamed into place only when
complete, so an interrupted extraction never leaves a half dataset behind. ``IMGFORGE_OFFLINE=1`` gives one line
that says where the data was looked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import DownloadError, InputError, OfflineError
from ..progress import ProgressFn, note

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/"
KINDS = ("cyclegan", "pix2pix")
MAX_MEMBER_BYTES = 4 << 30
MAX_TOTAL_BYTES = 64 << 30
COMPLETE_MARKER = ".complete"

#: Names accepted by the reference's download_cyclegan_dataset.sh (``mini*`` are its small test sets).
CYCLEGAN_DATASETS: Tuple[str, ...] = (
    "ae_photos", "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
    "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "mini", "mini_pix2pix",
    "mini_colorization",
)
#: Names accepted by download_pix2pix_dataset.sh.
PIX2PIX_DATASETS: Tuple[str, ...] = ("cityscapes", "night2day", "edges2handbags", "edges2shoes", "facades", "maps")

_CITYSCAPES = (
    "the Cityscapes data cannot be redistributed (licence): download gtFine_trainvaltest.zip and "
    "leftImg8bit_trainvaltest.zip from https://www.cityscapes-dataset.com, prepare them with the reference's "
    "datasets/prepare_cityscapes_dataset.py, and pass the resulting folder"
)


@dataclass(frozen=True)
class DatasetEntry:
    """One downloadable dataset.

    Attributes:
        name: the reference's name (``horse2zebra``).
        kind: ``"cyclegan"`` (zip with trainA/trainB/testA/testB) or ``"pix2pix"`` (tar.gz with train/val/test of
            side-by-side pairs).
        url: official download URL.
        sha256 / hash_kind: ``""`` / ``"none"`` (nothing published; pinned on first download).
        refused: non-empty when the data must be obtained by hand (the reason and what to do).
    """

    name: str
    kind: str
    url: str
    sha256: str = ""
    hash_kind: str = "none"
    refused: str = ""

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def base_url() -> str:
    """``IMGFORGE_DATASETS_URL`` (a mirror of the reference's server layout) or the official base URL."""
    base = os.environ.get("IMGFORGE_DATASETS_URL", "").strip() or DEFAULT_BASE_URL
    return base if base.endswith("/") else base + "/"


def known_names(kind: str) -> Tuple[str, ...]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return CYCLEGAN_DATASETS if kind == "cyclegan" else PIX2PIX_DATASETS


def get_dataset_entry(name: str, kind: str) -> Optional[DatasetEntry]:
    """The entry for ``name`` in the ``kind`` family, or ``None`` when the name is not known there."""
    if name not in known_names(kind):
        return None
    url = f"{base_url()}{kind}/datasets/{name}.{'zip' if kind == 'cyclegan' else 'tar.gz'}"
    return DatasetEntry(name=name, kind=kind, url=url, refused=_CITYSCAPES if name == "cityscapes" else "")


def datasets_dir() -> Path:
    """``<cache>/datasets`` (the cache is ``IMGFORGE_CACHE_DIR`` or ``$XDG_CACHE_HOME/imgforge``)."""
    from ..hub.store import cache_dir

    return cache_dir() / "datasets"


def dataset_path(entry: DatasetEntry) -> Path:
    """Where the extracted dataset lives in the cache."""
    return datasets_dir() / entry.kind / entry.name


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


# ---- extraction -------------------------------------------------------------------------------------------------


def _safe_member(name: str) -> bool:
    parts = Path(name).parts
    return not (name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]))


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            total = 0
            for info in infos:
                if not _safe_member(info.filename):
                    raise InputError(f"{archive}: refusing the member {info.filename!r} (path outside the archive)")
                if info.file_size > MAX_MEMBER_BYTES:
                    raise InputError(f"{archive}: member {info.filename} is implausibly large ({info.file_size} B)")
                total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise InputError(f"{archive}: {total} B uncompressed is implausibly large")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{archive}: not a valid zip archive ({exc}); delete it and run again") from exc


def _plain_members(members: List[tarfile.TarInfo]) -> List[tarfile.TarInfo]:
    """Regular files and folders only (no links, devices or fifos), without set-id, sticky or group/other write
    bits: the subset of tarfile's "data" filter for Pythons that lack it (the paths are checked by the caller)."""
    out = []
    for m in members:
        if m.isfile() or m.isdir():
            m.mode &= 0o755
            out.append(m)
    return out


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                if not _safe_member(m.name):
                    raise InputError(f"{archive}: refusing the member {m.name!r} (path outside the archive)")
                if m.size > MAX_MEMBER_BYTES:
                    raise InputError(f"{archive}: member {m.name} is implausibly large ({m.size} B)")
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, members=members, filter="data")
            else:  # Python < 3.10.12 / 3.11.4 has no extraction filters: what "data" would let through, or less
                tf.extractall(dest, members=_plain_members(members))
    except tarfile.TarError as exc:
        raise InputError(f"{archive}: not a valid tar archive ({exc}); delete it and run again") from exc


def _dataset_root(extracted: Path, name: str) -> Path:
    """The folder inside the extracted tree that holds the data: ``<name>/`` when the archive has it (as the
    official ones do), else the single top-level folder, else the extraction folder itself."""
    if (extracted / name).is_dir():
        return extracted / name
    entries = [p for p in extracted.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return extracted


def extract_atomically(archive: Path, target: Path, name: str) -> Path:
    """Extract ``archive`` (zip or tar[.gz]) so that ``target`` appears complete or not at all.

    The archive is unpacked into a temporary folder next to ``target``; the dataset folder inside it is marked
    complete and renamed onto ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extract", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        else:
            _extract_tar(archive, tmp)
        root = _dataset_root(tmp, name)
        (root / COMPLETE_MARKER).write_text(archive.name + "\n")
        if target.exists():  # an incomplete leftover (no marker): replace it
            shutil.rmtree(target)
        os.replace(root, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---- resolution -------------------------------------------------------------------------------------------------


def fetch_dataset(entry: DatasetEntry, *, offline: Optional[bool] = None, progress: Optional[ProgressFn] = None) -> Path:
    """Download (resuming), verify against the pinned digest when there is one, and extract ``entry``."""
    from ..errors import ChecksumError
    from ..hub.download import download, env_offline, is_offline
    from ..hub.store import read_pin, write_pin

    target = dataset_path(entry)
    if is_complete(target):
        return target
    if entry.refused:
        raise InputError(f"dataset {entry.name!r}: {entry.refused}")
    archive = target.parent / entry.archive_name
    if is_offline(offline):
        why = "IMGFORGE_OFFLINE=1" if env_offline() else "offline mode"
        raise OfflineError(
            f"dataset {entry.name!r} is not in the cache ({target}) and downloads are off ({why}); fetch {entry.url} "
            f"while online (or extract it to {target}), or pass a local dataset folder"
        )
    pinned = read_pin(archive)
    task = f"download {entry.name}"
    note(progress, task, f"downloading {entry.url} to {archive}")
    kind, digest = ("sha256", pinned) if pinned else (entry.hash_kind, entry.sha256)
    try:
        result = download(entry.url, archive, sha256=digest, hash_kind=kind, progress=progress, task=task,
                          offline=offline)
    except DownloadError as exc:
        reason = str(exc).split("; check the network")[0]
        raise DownloadError(
            f"dataset {entry.name!r}: {reason}; check the network, or download {entry.url} by other means and "
            f"extract it to {target}, or pass a local dataset folder"
        ) from exc
    if not pinned:
        write_pin(archive, result.sha256)
    elif result.sha256 != pinned:  # pragma: no cover - download() already refuses a mismatch
        raise ChecksumError(f"{archive}: sha256 {result.sha256} does not match the pinned {pinned}")
    note(progress, task, f"extracting {archive.name} to {target}")
    extract_atomically(archive, target, entry.name)
    with contextlib.suppress(OSError):
        archive.unlink()  # the pin (<archive>.sha256) stays: a re-download must match it
    return target


def resolve_dataset(
    name_or_path: str, kind: str, *, offline: Optional[bool] = None, progress: Optional[ProgressFn] = None
) -> Path:
    """A dataset folder from a path (always used as is) or a known name of the ``kind`` family.

    Raises :class:`InputError` for names that are neither, :class:`OfflineError` when a download is needed offline,
    and download errors from :mod:`imgforge.hub.download`.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p
    entry = get_dataset_entry(str(name_or_path), kind)
    if entry is None:
        if p.exists():
            raise InputError(f"{p}: is a file; a dataset is a folder")
        names = ", ".join(n for n in known_names(kind) if not n.startswith("mini"))
        raise InputError(f"{name_or_path!r}: no such folder, and not a known {kind} dataset name ({names})")
    return fetch_dataset(entry, offline=offline, progress=progress)


def list_datasets(kind: Optional[str] = None) -> List[DatasetEntry]:
    """Every known entry (of one kind, or both)."""
    kinds = KINDS if kind is None else (kind,)
    out = []
    for k in kinds:
        for n in known_names(k):
            e = get_dataset_entry(n, k)
            assert e is not None
            out.append(e)
    return out
