"""Atomic file writes: write to a temporary file in the same directory, fsync, then rename over the target; and the
one sha256-of-a-file helper.

A reader never sees a half-written output or checkpoint, and a crash leaves at most a ``*.tmp`` file behind
(removed on ordinary failure).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

from .errors import OutputError

PathLike = Union[str, "os.PathLike[str]"]


def _default_mode() -> int:
    """The mode a plain ``open(path, "w")`` would create: 0o666 minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(target: PathLike, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``, on error delete it.

    Example::

        with atomic_path("out.png") as tmp:
            image.save(tmp, format="PNG")
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        if mkdir:
            base = parent
            while not base.exists() and base != base.parent:
                base = base.parent
            if not base.is_dir():
                raise OutputError(f"cannot write {target}: {base} is not a directory")
            parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600 files; outputs should be as readable as any other
        os.replace(tmp, target)
    except OSError as exc:  # disk full, permission, quota, ...: one line naming the target; the old file is kept
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(target: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically and return the target path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def file_hasher(path: PathLike, chunk: int = 1 << 20) -> "hashlib._Hash":
    """A sha256 object fed with the whole file at ``path`` (read in chunks; more data may be added to it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (the one file-hash helper of the package)."""
    return file_hasher(path, chunk).hexdigest()
