"""Known datasets: official URL patterns, download from a server on 127.0.0.1 (resume, pinned sha256), atomic
extraction into the cache, offline message, refusals."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator

import pytest

from imgforge.data import known
from imgforge.data.known import dataset_path, get_dataset_entry, resolve_dataset
from imgforge.errors import ChecksumError, InputError, OfflineError
from imgforge.hub.store import read_pin
from tests.unit.test_download_support import LocalServer, payload


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> Path:
    monkeypatch.setenv("IMGFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("IMGFORGE_DATASETS_URL", server.base + "/mirror/")
    monkeypatch.delenv("IMGFORGE_OFFLINE", raising=False)
    return tmp_path / "cache"


def _zip(files: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _targz(files: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_official_urls_follow_the_reference_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGFORGE_DATASETS_URL", raising=False)
    h2z = get_dataset_entry("horse2zebra", "cyclegan")
    assert h2z is not None and h2z.url == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    fac = get_dataset_entry("facades", "pix2pix")
    assert fac is not None and fac.url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    assert h2z.hash_kind == "none" and h2z.sha256 == ""  # nothing published: pinned on first fetch
    for name in ("apple2orange", "summer2winter_yosemite", "monet2photo", "cezanne2photo", "ukiyoe2photo",
                 "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower"):
        assert get_dataset_entry(name, "cyclegan") is not None
    for name in ("edges2shoes", "edges2handbags", "night2day", "maps", "facades", "cityscapes"):
        assert get_dataset_entry(name, "pix2pix") is not None
    assert get_dataset_entry("night2day", "cyclegan") is None


def test_zip_download_extracts_atomically_pins_and_is_reused(env: Path, server: LocalServer) -> None:
    data = _zip({"horse2zebra/trainA/a 1.jpg": b"A1", "horse2zebra/trainB/b.jpg": b"B", "horse2zebra/testA/t.jpg": b"T"})
    server.add("/mirror/cyclegan/datasets/horse2zebra.zip", data)
    root = resolve_dataset("horse2zebra", "cyclegan")
    assert root == env / "datasets" / "cyclegan" / "horse2zebra"
    assert (root / "trainA" / "a 1.jpg").read_bytes() == b"A1" and (root / known.COMPLETE_MARKER).exists()
    archive = root.parent / "horse2zebra.zip"
    assert not archive.exists() and read_pin(archive) is not None  # archive removed, digest pinned
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    n = len(server.state.requests)
    assert resolve_dataset("horse2zebra", "cyclegan") == root and len(server.state.requests) == n  # no new request


def test_targz_download_for_pix2pix_with_resume(env: Path, server: LocalServer) -> None:
    files = {f"facades/train/{i}.jpg": payload(20000, seed=i) for i in range(3)}
    files["facades/val/0.jpg"] = b"v"
    data = _targz(files)
    path = "/mirror/pix2pix/datasets/facades.tar.gz"
    server.add(path, data)
    server.state.cut_once[path] = len(data) // 3  # the first transfer breaks off; download() resumes it
    root = resolve_dataset("facades", "pix2pix")
    assert sorted(p.name for p in (root / "train").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert (root / "train" / "1.jpg").read_bytes() == files["facades/train/1.jpg"]
    ranges = server.state.ranges(path)
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")


def test_redownload_must_match_the_pinned_digest(env: Path, server: LocalServer) -> None:
    url_path = "/mirror/cyclegan/datasets/apple2orange.zip"
    server.add(url_path, _zip({"apple2orange/trainA/x.jpg": b"1"}))
    root = resolve_dataset("apple2orange", "cyclegan")
    import shutil

    shutil.rmtree(root)  # the data is gone, the pin stays
    server.add(url_path, _zip({"apple2orange/trainA/x.jpg": b"tampered"}))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        resolve_dataset("apple2orange", "cyclegan")
    assert not root.exists() and not (root.parent / "apple2orange.zip").exists()


def test_offline_gives_one_line_and_local_folders_always_work(env: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGFORGE_OFFLINE", "1")
    with pytest.raises(OfflineError) as exc:
        resolve_dataset("monet2photo", "cyclegan")
    msg = str(exc.value)
    assert "\n" not in msg and "monet2photo" in msg and "IMGFORGE_OFFLINE=1" in msg and str(env) in msg
    local = tmp_path / "my data"
    local.mkdir()
    assert resolve_dataset(str(local), "cyclegan") == local
    (tmp_path / "horse2zebra").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_dataset("horse2zebra", "cyclegan") == Path("horse2zebra")  # a folder wins over a name


def test_refusals_and_unknown_names(env: Path, server: LocalServer) -> None:
    with pytest.raises(InputError, match="cityscapes-dataset.com"):
        resolve_dataset("cityscapes", "pix2pix")
    with pytest.raises(InputError, match="not a known cyclegan dataset"):
        resolve_dataset("zebra2unicorn", "cyclegan")
    with pytest.raises(Exception, match="HTTP 404"):
        resolve_dataset("vangogh2photo", "cyclegan")  # not on the mirror
    assert not dataset_path(get_dataset_entry("vangogh2photo", "cyclegan")).exists()  # type: ignore[arg-type]


def test_unsafe_or_corrupt_archives_leave_nothing_behind(env: Path, server: LocalServer) -> None:
    server.add("/mirror/cyclegan/datasets/maps.zip", _zip({"../evil.txt": b"x", "maps/trainA/a.jpg": b"a"}))
    with pytest.raises(InputError, match="outside the archive"):
        resolve_dataset("maps", "cyclegan")
    target = env / "datasets" / "cyclegan" / "maps"
    assert not target.exists() and not (env / "evil.txt").exists()
    assert not [p for p in target.parent.iterdir() if p.is_dir()]
    server.add("/mirror/cyclegan/datasets/mini.zip", b"PK\x03\x04 this is not really a zip")
    with pytest.raises(InputError):
        resolve_dataset("mini", "cyclegan")
    assert not (env / "datasets" / "cyclegan" / "mini").exists()


@pytest.mark.parametrize("has_filters", [True, False])
def test_tar_extraction_keeps_files_and_drops_links_with_or_without_tarfile_filters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_filters: bool) -> None:
    # Python < 3.10.12 / 3.11.4 (e.g. Debian 12's 3.11.2) has no tarfile.data_filter: the fallback extracts the
    # regular files and folders only, without set-id or group/other write bits
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data, mode in [("facades/train/1.jpg", b"jpeg", 0o4777), ("facades/README", b"hi", 0o644)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("facades/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(buf.getvalue())
    if not has_filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    dest = tmp_path / "out"
    dest.mkdir()
    if has_filters and hasattr(tarfile, "data_filter"):  # the "data" filter refuses a link out of the folder
        with pytest.raises(InputError, match="passwd"):
            known._extract_tar(archive, dest)
        return
    known._extract_tar(archive, dest)
    assert (dest / "facades/train/1.jpg").read_bytes() == b"jpeg" and (dest / "facades/README").read_bytes() == b"hi"
    assert not (dest / "facades/passwd").exists() and not (dest / "facades/passwd").is_symlink()
    assert (dest / "facades/train/1.jpg").stat().st_mode & 0o7777 == 0o755
