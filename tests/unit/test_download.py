"""imgforge.hub.download against a real HTTP server on 127.0.0.1 (no network)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import List

import pytest

from imgforge.errors import ChecksumError, DownloadError, OfflineError
from imgforge.hub.download import check_digest, download, part_path
from imgforge.progress import ProgressEvent

from .test_download_support import LocalServer, payload, server, sha  # noqa: F401 - fixture

SIZE = 300_000


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGFORGE_OFFLINE", raising=False)


def _ls(d: Path) -> List[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_verified_and_cached(server: LocalServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    url = server.add("/w/model.pth", data)
    events: List[ProgressEvent] = []
    dest = tmp_path / "cache" / "model.pth"
    res = download(url, dest, sha256=sha(data), hash_kind="sha256", progress=events.append)
    assert dest.read_bytes() == data
    assert res.sha256 == sha(data) and res.size == SIZE and not res.resumed
    assert _ls(dest.parent) == ["model.pth"]  # no .part left
    steps = [e.step for e in events]
    assert steps == sorted(steps) and steps[-1] == SIZE
    assert all(e.unit == "B" and e.total == SIZE for e in events)
    assert server.state.ranges("/w/model.pth") == [None]


def test_wrong_sha256_leaves_nothing(server: LocalServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    url = server.add("/w/model.pth", data)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as ei:
        download(url, cache / "model.pth", sha256="0" * 64, hash_kind="sha256")
    assert url in str(ei.value) and sha(data) in str(ei.value)
    assert _ls(cache) == []  # no file, no .part


def test_sha256_prefix_checked_like_torch_hub(server: LocalServer, tmp_path: Path) -> None:
    data = payload(5000, seed=3)
    digest = sha(data)
    url = server.add("/w/vgg-x.pth", data)
    download(url, tmp_path / "a.pth", sha256=digest[:8], hash_kind="sha256_prefix")
    assert (tmp_path / "a.pth").read_bytes() == data
    wrong = ("f" if digest[0] != "f" else "e") + digest[1:8]
    with pytest.raises(ChecksumError):
        download(url, tmp_path / "b.pth", sha256=wrong, hash_kind="sha256_prefix")
    assert _ls(tmp_path) == ["a.pth"]
    assert check_digest(digest, digest[:10], "sha256_prefix")
    assert not check_digest(digest, digest[1:11], "sha256_prefix")  # must be a prefix, not a substring
    assert not check_digest(digest, "", "sha256_prefix")


def test_interrupted_transfer_kept_then_resumed(server: LocalServer, tmp_path: Path) -> None:
    data = payload(SIZE, seed=1)
    url = server.add("/w/big.bin", data)
    server.state.cut_once["/w/big.bin"] = 100_000
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError) as ei:
        download(url, dest, sha256=sha(data), retries=0)
    assert "resume" in str(ei.value)
    assert not dest.exists()
    assert part_path(dest).stat().st_size == 100_000  # kept for the resume
    res = download(url, dest, sha256=sha(data), retries=0)
    assert res.resumed
    assert dest.read_bytes() == data
    assert server.state.ranges("/w/big.bin") == [None, "bytes=100000-"]
    assert [r.status for r in server.state.requests] == [200, 206]
    assert _ls(tmp_path) == ["big.bin"]


def test_interrupted_transfer_resumed_within_one_call(server: LocalServer, tmp_path: Path) -> None:
    data = payload(SIZE, seed=2)
    url = server.add("/w/big.bin", data)
    server.state.cut_once["/w/big.bin"] = 12_345
    res = download(url, tmp_path / "big.bin", sha256=sha(data), retries=2)
    assert res.resumed and (tmp_path / "big.bin").read_bytes() == data
    assert server.state.ranges("/w/big.bin") == [None, "bytes=12345-"]


def test_server_ignoring_range_restarts_from_zero(server: LocalServer, tmp_path: Path) -> None:
    data = payload(SIZE, seed=4)
    url = server.add("/w/f.bin", data)
    server.state.ignore_range = True
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(b"junk that must not stay in front" * 10)
    res = download(url, dest, sha256=sha(data))
    assert not res.resumed
    assert dest.read_bytes() == data
    assert server.state.ranges("/w/f.bin") == ["bytes=320-"]  # asked, was ignored (200), restarted
    assert _ls(tmp_path) == ["f.bin"]


def test_range_not_satisfiable_restarts(server: LocalServer, tmp_path: Path) -> None:
    data = payload(1000, seed=5)
    url = server.add("/w/f.bin", data)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(b"x" * 5000)  # longer than the file: 416
    download(url, dest, sha256=sha(data))
    assert dest.read_bytes() == data
    assert [r.status for r in server.state.requests] == [416, 200]


def test_checksum_failure_after_resume_deletes_partial(server: LocalServer, tmp_path: Path) -> None:
    data = payload(SIZE, seed=6)
    url = server.add("/w/f.bin", data)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(b"\0" * 1000)  # a wrong prefix, and the server honours Range
    with pytest.raises(ChecksumError):
        download(url, dest, sha256=sha(data))
    assert _ls(tmp_path) == []


def test_404_reported_with_url_and_status(server: LocalServer, tmp_path: Path) -> None:
    url = server.base + "/missing.pth"
    with pytest.raises(DownloadError) as ei:
        download(url, tmp_path / "c" / "missing.pth", sha256="0" * 64)
    msg = str(ei.value)
    assert url in msg and "404" in msg and "\n" not in msg
    assert _ls(tmp_path / "c") == []


def test_connection_refused_is_a_download_error(tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError) as ei:
        download(f"http://127.0.0.1:{port}/x.pth", tmp_path / "x.pth", hash_kind="none", timeout=2)
    assert "cannot reach" in str(ei.value)
    assert _ls(tmp_path) == []


def test_read_timeout_keeps_partial(server: LocalServer, tmp_path: Path) -> None:
    data = payload(SIZE, seed=7)
    url = server.add("/w/slow.bin", data)
    server.state.stall_after["/w/slow.bin"] = 1000
    with pytest.raises(DownloadError) as ei:
        download(url, tmp_path / "slow.bin", sha256=sha(data), timeout=0.3, retries=0)
    assert "interrupted" in str(ei.value)
    assert part_path(tmp_path / "slow.bin").stat().st_size == 1000


def test_offline_refuses_network_but_not_file_urls(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(2000, seed=8)
    url = server.add("/w/f.bin", data)
    monkeypatch.setenv("IMGFORGE_OFFLINE", "1")
    with pytest.raises(OfflineError):
        download(url, tmp_path / "f.bin", sha256=sha(data))
    assert server.state.requests == []
    src = tmp_path / "src" / "f.bin"
    src.parent.mkdir()
    src.write_bytes(data)
    res = download(src.as_uri(), tmp_path / "out" / "f.bin", sha256=sha(data))
    assert res.path.read_bytes() == data
    with pytest.raises(ChecksumError):
        download(src.as_uri(), tmp_path / "out2" / "f.bin", sha256="1" * 64)
    assert _ls(tmp_path / "out2") == []
    with pytest.raises(OfflineError):
        download(url, tmp_path / "g.bin", sha256=sha(data), offline=True)
    monkeypatch.delenv("IMGFORGE_OFFLINE")
    download(url, tmp_path / "g.bin", sha256=sha(data), offline=False)


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DownloadError):
        download("ftp://example.invalid/x.pth", tmp_path / "x.pth", hash_kind="none")
