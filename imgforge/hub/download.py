"""Streaming downloads with resume and checksum verification, over urllib only (http, https, file URLs).

Contract of :func:`download`:

- The bytes go to ``<dest>.part`` next to the destination, hashed while they arrive.
- An interrupted transfer (connection reset, timeout, short body, Ctrl-C) KEEPS ``<dest>.part``; the next call sends
  ``Range: bytes=<size>-`` and appends. A server that ignores Range (answers 200 instead of 206) or answers 416 makes
  the download restart from zero. Up to ``retries`` resumes happen inside one call.
- When the transfer is complete the digest is checked against ``sha256`` (full digest, or prefix for
  ``hash_kind="sha256_prefix"``) BEFORE anything parses the file. On a mismatch the ``.part`` file is deleted and
  :class:`~imgforge.errors.ChecksumError` is raised: nothing is left behind.
- Only a verified file is renamed (atomically, after fsync) onto ``dest``.
- ``IMGFORGE_OFFLINE=1`` (or ``offline=True``) refuses every network URL with
  :class:`~imgforge.errors.OfflineError`; ``file://`` URLs still work (they are not network access).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

from .. import __version__
from ..errors import ChecksumError, DownloadError, OfflineError
from ..fsutil import file_hasher
from ..progress import ProgressEvent, ProgressFn, emit

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 30.0
_OFFLINE_VALUES = {"1", "true", "yes", "on"}


def env_offline() -> bool:
    """``True`` when ``IMGFORGE_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get("IMGFORGE_OFFLINE", "").strip().lower() in _OFFLINE_VALUES


def is_offline(offline: Optional[bool] = None) -> bool:
    """``offline`` when given, else the ``IMGFORGE_OFFLINE`` environment variable."""
    return env_offline() if offline is None else bool(offline)


def part_path(dest: Path) -> Path:
    """Where a partial download of ``dest`` is kept (``<dest>.part``)."""
    return dest.with_name(dest.name + ".part")


def check_digest(digest: str, expected: str, hash_kind: str) -> bool:
    """Whether hex ``digest`` satisfies ``expected`` under ``hash_kind`` (``"none"``/``"local"``: always True)."""
    if hash_kind == "sha256":
        return digest == expected.lower()
    if hash_kind == "sha256_prefix":
        return bool(expected) and digest.startswith(expected.lower())
    return True


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` did.

    Attributes:
        path: the final, verified file.
        sha256: its full hex digest.
        size: its size in bytes.
        resumed: whether some bytes came from an earlier ``.part`` file (a Range request was honoured).
    """

    path: Path
    sha256: str
    size: int
    resumed: bool


class _Interrupted(Exception):
    """The body ended early or the connection broke; the ``.part`` file is kept."""


def _lock(fh: IO[bytes], part: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise DownloadError(f"{part} is being written by another process; wait for it to finish") from exc


def _content_range_start(value: Optional[str]) -> Optional[int]:
    m = re.match(r"\s*bytes\s+(\d+)-", value or "")
    return int(m.group(1)) if m else None


def _open(url: str, start: int, timeout: float) -> "http.client.HTTPResponse":
    headers = {"User-Agent": f"imgforge/{__version__}", "Accept-Encoding": "identity"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - scheme checked by the caller


def _attempt(
    url: str,
    part: Path,
    *,
    timeout: float,
    progress: Optional[ProgressFn],
    task: str,
) -> tuple[str, int, bool]:
    """One HTTP(S)/file request; appends to or rewrites ``part``. Returns (digest, size, resumed).

    Raises :class:`_Interrupted` (part kept) or :class:`DownloadError`.
    """
    start = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start > 0:
            # Our partial file is not a prefix the server can continue (e.g. already complete or from an older
            # version): start again from zero.
            exc.close()
            part.unlink()
            return _attempt(url, part, timeout=timeout, progress=progress, task=task)
        reason = exc.reason if isinstance(exc.reason, str) else ""
        exc.close()
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {reason}".rstrip()) from exc
    except urllib.error.URLError as exc:
        raise DownloadError(
            f"cannot reach {url} ({exc.reason}); check the network, or download the file by other means and put it "
            "in a directory listed in IMGFORGE_WEIGHTS_PATH"
        ) from exc
    except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
        raise DownloadError(f"cannot reach {url} ({type(exc).__name__}: {exc}); check the network") from exc

    with contextlib.closing(resp):
        status = getattr(resp, "status", None) or 200
        if status == 206 and start > 0:
            got = _content_range_start(resp.headers.get("Content-Range"))
            if got != start:
                raise DownloadError(
                    f"download of {url} failed: asked for bytes from {start}, server sent Content-Range "
                    f"{resp.headers.get('Content-Range')!r}"
                )
            resumed = True
        elif status in (200, 203) or status is None:
            resumed = False  # server ignored the Range header (or it was not sent): start from zero
            start = 0
        else:
            raise DownloadError(f"download of {url} failed: unexpected HTTP status {status}")

        length = resp.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = start + remaining if remaining is not None else None

        # read1 returns what has arrived (up to CHUNK), so bytes received before a timeout reach the .part file.
        read = getattr(resp, "read1", None) or resp.read
        hasher = file_hasher(part) if resumed else hashlib.sha256()
        done = start
        with open(part, "ab") as fh:  # append mode + lock first, so a concurrent writer is never truncated
            _lock(fh, part)
            if not resumed:
                fh.seek(0)
                fh.truncate()
            emit(progress, ProgressEvent(task=task, step=done, total=total, unit="B",
                                         message=f"resuming at {start} bytes" if resumed else None))
            while True:
                try:
                    block = read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:  # reset, timeout, TLS error, short chunk
                    fh.flush()
                    raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
                if not block:
                    break
                try:
                    fh.write(block)
                except OSError as exc:  # disk full, ...: our side, the .part is kept
                    raise DownloadError(f"cannot write {part}: {exc.strerror or exc}") from exc
                hasher.update(block)
                done += len(block)
                emit(progress, ProgressEvent(task=task, step=done, total=total, unit="B"))
            fh.flush()
            os.fsync(fh.fileno())
        if total is not None and done != total:
            raise _Interrupted(f"got {done} of {total} bytes")
        return hasher.hexdigest(), done, resumed


def download(
    url: str,
    dest: Path,
    *,
    sha256: str = "",
    hash_kind: str = "sha256",
    progress: Optional[ProgressFn] = None,
    task: Optional[str] = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 2,
    offline: Optional[bool] = None,
) -> DownloadResult:
    """Download ``url`` to ``dest``, resuming a previous ``.part`` file, and verify it before the final rename.

    Args:
        url: http, https or file URL.
        dest: final path; its directory is created.
        sha256: expected full digest (``hash_kind="sha256"``) or prefix (``"sha256_prefix"``); ignored for
            ``"none"``/``"local"``.
        progress: receives :class:`ProgressEvent` with ``step``/``total`` in bytes (``unit="B"``).
        task: progress task name (default ``"download <file name>"``).
        timeout: seconds for connecting and for each read.
        retries: how many times an interrupted transfer is resumed within this call.
        offline: overrides ``IMGFORGE_OFFLINE``.

    Raises:
        OfflineError: offline mode and a network URL.
        DownloadError: HTTP error (with URL and status), unreachable host, transfer still interrupted after
            ``retries`` resumes (the ``.part`` file is kept so that the next call resumes).
        ChecksumError: the complete file does not match; nothing is left behind.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"cannot download {url!r}: only http, https and file URLs are supported")
    if scheme != "file" and is_offline(offline):
        raise OfflineError(f"not downloading {url}: offline mode (IMGFORGE_OFFLINE=1)")
    if hash_kind in ("sha256", "sha256_prefix") and not sha256:
        raise ValueError(f"hash_kind {hash_kind!r} needs an expected digest")
    task = task or f"download {dest.name}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {dest.parent}: {exc.strerror or exc}") from exc
    part = part_path(dest)

    attempts = 0
    resumed_any = False
    while True:
        try:
            digest, size, resumed = _attempt(url, part, timeout=timeout, progress=progress, task=task)
            resumed_any = resumed_any or resumed
            break
        except _Interrupted as exc:
            attempts += 1
            have = part.stat().st_size if part.exists() else 0
            if attempts > retries:
                raise DownloadError(
                    f"download of {url} was interrupted ({exc}); {have} bytes are kept in {part}: run the same "
                    "command again to resume"
                ) from None
        # Any other exception (DownloadError, Ctrl-C) propagates and keeps the .part for a later resume.

    if not check_digest(digest, sha256, hash_kind):
        with contextlib.suppress(OSError):
            part.unlink()
        want = f"{sha256}..." if hash_kind == "sha256_prefix" else sha256
        raise ChecksumError(
            f"{url}: sha256 mismatch (expected {want}, got {digest}); the download was deleted. The server may "
            "serve a different file than the manifest expects; retry, and report it if it persists"
        )
    try:
        os.replace(part, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise DownloadError(f"cannot move the download into {dest}: {exc.strerror or exc}") from exc
    return DownloadResult(path=dest, sha256=digest, size=size, resumed=resumed_any)
