"""A real HTTP server on 127.0.0.1 for the download tests (no tests here; imported by the hub/download/CLI tests).

The handler serves in-memory files and can be told, per path, to honour or ignore ``Range``, to cut the body after N
bytes (once), to stall, or to answer 404 (any unknown path). Every request is recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import torch
import torch.nn as nn

from imgforge.hub import manifest as _manifest
from imgforge.hub import store as _store
from imgforge.hub.converters import Converted, load_plain_state_dict, register_converter
from imgforge.hub.manifest import WeightsEntry
from imgforge.models.registry import register


@dataclass
class Seen:
    path: str
    range: Optional[str]
    status: int


@dataclass
class ServerState:
    files: Dict[str, bytes] = field(default_factory=dict)
    cut_once: Dict[str, int] = field(default_factory=dict)  # path -> body bytes sent before closing (first request)
    stall_after: Dict[str, int] = field(default_factory=dict)  # path -> bytes sent before stalling (until released)
    ignore_range: bool = False
    requests: List[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def ranges(self, path: str) -> List[Optional[str]]:
        return [r.range for r in self.requests if r.path == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    state: ServerState  # set on a subclass per server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        st = self.state
        path = self.path.split("?", 1)[0]
        data = st.files.get(path)
        rng = self.headers.get("Range")
        if data is None:
            st.requests.append(Seen(path, rng, 404))
            self.send_error(404, "Not Found")
            return
        start = 0
        status = 200
        if rng and not st.ignore_range:
            m = re.match(r"bytes=(\d+)-$", rng)
            if m:
                start = int(m.group(1))
                if start >= len(data):
                    st.requests.append(Seen(path, rng, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
        body = data[start:]
        st.requests.append(Seen(path, rng, status))
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = st.cut_once.pop(path, None)
        stall = st.stall_after.get(path)
        try:
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            if stall is not None:
                self.wfile.write(body[:stall])
                self.wfile.flush()
                st.release.wait(5.0)
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class LocalServer:
    def __init__(self) -> None:
        self.state = ServerState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns the full URL."""
        self.state.files[path] = data
        return self.base + path

    def close(self) -> None:
        self.state.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def payload(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes."""
    out = bytearray()
    block = hashlib.sha256(f"seed{seed}".encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    try:
        yield srv
    finally:
        srv.close()


# ----------------------------------------------------------------------------------------------------------------
# An isolated weights environment and a tiny converter/architecture for store and CLI tests

TEST_ARCH = "test_hub_linear"
TEST_CONVERTER = "test_hub_linear"


@register(TEST_ARCH)
def _build_test_linear(in_features: int = 4, out_features: int = 3) -> nn.Module:
    return nn.Linear(in_features, out_features)


@register_converter(TEST_CONVERTER)
def _convert_test_linear(path: Path) -> Converted:
    sd = load_plain_state_dict(path)
    w = sd["lin.weight"]
    return Converted(
        state_dict={"weight": w, "bias": sd["lin.bias"]},
        arch=TEST_ARCH,
        arch_kwargs={"in_features": int(w.shape[1]), "out_features": int(w.shape[0])},
        extra={"dropped_keys": ""},
    )


def linear_checkpoint(path: Path, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Write an 'upstream' checkpoint the test converter reads (keys lin.weight / lin.bias)."""
    g = torch.Generator().manual_seed(seed)
    sd = {"lin.weight": torch.randn(3, 4, generator=g), "lin.bias": torch.randn(3, generator=g)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return sd


@dataclass
class HubEnv:
    root: Path
    cache: Path
    repo: Path
    monkeypatch: pytest.MonkeyPatch

    def set_weights_path(self, *dirs: Path) -> None:
        import os

        self.monkeypatch.setenv("IMGFORGE_WEIGHTS_PATH", os.pathsep.join(str(d) for d in dirs))

    def add_entries(self, *entries: WeightsEntry) -> None:
        self.monkeypatch.setattr(_manifest, "MANIFEST", tuple(_manifest.MANIFEST) + tuple(entries))


def make_entry(name: str, url: Optional[str], data: Optional[bytes] = None, **kw: object) -> WeightsEntry:
    """A manifest entry for tests; full sha256 of ``data`` unless ``hash_kind`` says otherwise."""
    hash_kind = str(kw.pop("hash_kind", "sha256" if data is not None else "none"))
    digest = str(kw.pop("sha256", sha(data) if data is not None and hash_kind != "none" else ""))
    base = WeightsEntry(
        name=name, arch=TEST_ARCH, arch_kwargs=(), url=url, sha256=digest, hash_kind=hash_kind,
        source_format="pytorch", converter=TEST_CONVERTER, licence="test", citation="", notes="test entry",
        filename=f"{name}.pth",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubEnv:
    cache = tmp_path / "cache"
    repo = tmp_path / "repo_weights"
    repo.mkdir()
    monkeypatch.setenv("IMGFORGE_CACHE_DIR", str(cache))
    monkeypatch.delenv("IMGFORGE_WEIGHTS_PATH", raising=False)
    monkeypatch.delenv("IMGFORGE_OFFLINE", raising=False)
    monkeypatch.setattr(_manifest, "repo_weights_dir", lambda: repo)
    monkeypatch.setattr(_store, "repo_weights_dir", lambda: repo)
    return HubEnv(tmp_path, cache, repo, monkeypatch)
