"""Helpers for CLI tests: run the real ``imgforge`` process, make odd and broken image files."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from io import BytesIO
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def run_cli(args: Sequence[str], cwd: Path, *, stdin: bytes | None = None, timeout: int = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m imgforge ARGS`` in a subprocess (real exit codes, real stdout/stderr)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "IMGFORGE_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "imgforge", *args], cwd=cwd, input=stdin, capture_output=True,
                          timeout=timeout, env=full_env)


def photo(seed: int = 0, size: tuple[int, int] = (40, 32)) -> Image.Image:
    """A smooth colourful RGB test picture (not noise, so that styles have something to act on)."""
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    chans = [np.sin(xx / (4 + 3 * rng.random()) + rng.random() * 6) * np.cos(yy / (5 + 3 * rng.random())) for _ in range(3)]
    arr = ((np.stack(chans, -1) * 0.5 + 0.5) * 255).astype(np.uint8)
    return Image.fromarray(arr)


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels (a decompression bomb as far as the header goes)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in [(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 64)), (b"IEND", b"")]:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def make_bad_inputs(d: Path) -> dict[str, str]:
    """Write the acceptance's odd/broken inputs into ``d``; returns {name: expected outcome ('error' words or 'ok')}."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "zero.png").write_bytes(b"")
    buf = BytesIO()
    photo(1, (64, 64)).save(buf, format="PNG")
    (d / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (d / "text.jpg").write_text("this is a text file, renamed\n")
    (d / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (d / "empty_dir").mkdir(exist_ok=True)
    photo(2).convert("CMYK").save(d / "cmyk.jpg", quality=95)
    g16 = (np.asarray(photo(3).convert("L")).astype(np.uint16) * 257)
    Image.fromarray(g16).save(d / "gray16.png")
    p = photo(4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p.save(d / "palette.png", transparency=0)
    return {
        "zero.png": "empty file", "truncated.png": "truncated", "text.jpg": "not an image",
        "missing.png": "no such file", "empty_dir": "no images", "bomb.png": "exceeds the limit",
        "cmyk.jpg": "ok", "gray16.png": "ok", "palette.png": "ok",
    }
