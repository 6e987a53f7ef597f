"""Image loading and saving, batch input expansion and output naming.

Images travel through imgforge as float tensors ``(3, H, W)`` in [0, 1] (RGB), with the alpha channel kept aside as
``(1, H, W)`` in [0, 1] and re-attached on save when the output format supports it.

Loading handles every mode Pillow reads (1, L, LA, P with transparency, RGB, RGBA, CMYK, YCbCr, I;16, I, F, ...),
applies the EXIF orientation, and refuses decompression bombs with a clear message. Saving picks the format from the
extension (png, jpg/jpeg with quality, webp, tif/tiff with 8 or 16 bits per channel) and is always atomic.
"""

from __future__ import annotations

import glob
import io as _io
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError, OutputError, UsageError
from .fsutil import atomic_path

#: Extensions treated as images when expanding folders and globs.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pbm")
#: Extensions that can be written.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
#: Default limit on width*height of an input image (about 16k x 16k); ``--max-pixels`` or IMGFORGE_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 268_435_456

STDIN = "-"


def max_pixels_default() -> int:
    """The pixel limit from ``IMGFORGE_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    env = os.environ.get("IMGFORGE_MAX_PIXELS")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise UsageError(f"IMGFORGE_MAX_PIXELS={env!r} is not a number") from None
    return DEFAULT_MAX_PIXELS


@dataclass
class LoadedImage:
    """An image read from disk.

    Attributes:
        rgb: (3, H, W) float32 in [0, 1].
        alpha: (1, H, W) float32 in [0, 1], or None when the file has no transparency.
        source: the path it came from ("-" for stdin).
        mode: the Pillow mode of the file ("RGB", "I;16", "CMYK", ...).
        bit_depth: 8 or 16 (bits per channel of the file's data), used to pick the depth of 16-bit outputs.
    """

    rgb: torch.Tensor
    alpha: Optional[torch.Tensor]
    source: str
    mode: str
    bit_depth: int = 8

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.rgb.shape[2]), int(self.rgb.shape[1])


# --------------------------------------------------------------------------------------------------------------------
# Loading


def _open_bytes(source: Union[str, Path]) -> tuple[bytes, str]:
    if str(source) == STDIN:
        data = sys.stdin.buffer.read()
        if not data:
            raise InputError("-: standard input is empty (pipe an image into imgforge)")
        return data, STDIN
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise InputError(f"{path}: empty file (0 bytes)")
    return data, str(path)


def _to_float_array(im: Image.Image) -> tuple[np.ndarray, Optional[np.ndarray], int]:
    """Convert a Pillow image of any mode to (H, W, 3) float32 RGB in [0, 1] + optional (H, W) alpha + bit depth."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(im).astype(np.float32) / 65535.0
        return np.repeat(arr[..., None], 3, axis=2), None, 16
    if mode == "I":
        arr = np.asarray(im).astype(np.float64)
        # 32-bit integer images in the wild are almost always 16-bit data in a 32-bit container.
        scale = 65535.0 if arr.max(initial=0) <= 65535 else float(2**32 - 1)
        arr = np.clip(arr / scale, 0.0, 1.0).astype(np.float32)
        return np.repeat(arr[..., None], 3, axis=2), None, 16
    if mode == "F":
        arr = np.asarray(im).astype(np.float32)
        arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
        if arr.max(initial=0.0) > 1.0:  # float data in another range (e.g. 0..255): scale by its maximum
            arr = arr / arr.max()
        arr = np.clip(arr, 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2), None, 16
    alpha: Optional[np.ndarray] = None
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "LA":
        la = np.asarray(im)
        alpha = la[..., 1].astype(np.float32) / 255.0
        im = im.getchannel(0).convert("RGB")
    elif mode == "1" or mode == "L":
        im = im.convert("RGB")
    elif mode in ("RGBa", "La"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        arr = np.asarray(im)
        alpha = arr[..., 3].astype(np.float32) / 255.0
        rgb = arr[..., :3]
    else:
        rgb = np.asarray(im.convert("RGB"))  # RGB, CMYK, YCbCr, LAB, HSV, RGBX, ...
    if alpha is not None and float(alpha.min()) >= 1.0:
        alpha = None  # fully opaque: nothing to keep aside
    return rgb.astype(np.float32) / 255.0, alpha, 8


def _read_tiff16(data: bytes) -> Optional[tuple[np.ndarray, Optional[np.ndarray]]]:
    """Read an uncompressed, chunky 16-bit RGB/RGBA TIFF (the kind :func:`save_image` writes) at full precision.

    Pillow reads such files with 8-bit precision only. Returns None for any other TIFF (Pillow then reads it).
    """
    if len(data) < 8 or data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    e = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(e + "I", data, 4)
        (n,) = struct.unpack_from(e + "H", data, ifd)
        tags: dict[int, list[int]] = {}
        sizes = {3: 2, 4: 4}
        for i in range(n):
            tag, typ, count, value = struct.unpack_from(e + "HHI4s", data, ifd + 2 + 12 * i)
            if typ not in sizes:
                continue
            size = sizes[typ] * count
            raw = value if size <= 4 else data[struct.unpack(e + "I", value)[0]:][:size]
            fmt = e + ("H" if typ == 3 else "I") * count
            tags[tag] = list(struct.unpack(fmt, raw[:size]))
        spp = tags.get(277, [1])[0]
        bits = tags.get(258, [1])
        if spp not in (3, 4) or any(b != 16 for b in bits) or tags.get(259, [1])[0] != 1:
            return None
        if tags.get(284, [1])[0] != 1 or tags.get(262, [0])[0] != 2:
            return None
        w, h = tags[256][0], tags[257][0]
        buf = b"".join(data[o:o + c] for o, c in zip(tags[273], tags[279]))
        arr = np.frombuffer(buf, dtype=e + "u2", count=w * h * spp).reshape(h, w, spp).astype(np.float32) / 65535.0
    except (struct.error, KeyError, ValueError, IndexError):
        return None
    return arr[..., :3], (arr[..., 3] if spp == 4 else None)


def load_image(source: Union[str, Path], *, max_pixels: Optional[int] = None) -> LoadedImage:
    """Read an image file (or ``"-"`` for stdin) as RGB in [0, 1] with alpha kept aside.

    Args:
        source: a path, or "-" to read encoded bytes from standard input.
        max_pixels: refuse images with more pixels than this (checked from the header, before decoding).
            Default :func:`max_pixels_default`.
    Raises:
        InputError: missing, empty, unreadable, truncated or corrupt file, or an image over the pixel limit.
    """
    limit = max_pixels_default() if max_pixels is None else int(max_pixels)
    data, name = _open_bytes(source)
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # our own limit is checked below, from the header, with a clearer message
        im = Image.open(_io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image file that can be read (unknown or corrupt format)") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{name}: image is too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: corrupt image ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    w, h = im.size
    if w * h > limit:
        raise InputError(
            f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {limit:,} "
            "(raise it with --max-pixels or IMGFORGE_MAX_PIXELS if the file is trusted)"
        )
    if w == 0 or h == 0:
        raise InputError(f"{name}: image has zero width or height")
    mode = im.mode
    tiff16 = _read_tiff16(data) if im.format == "TIFF" else None
    if tiff16 is not None:
        rgb_np, alpha_np = tiff16
        bit_depth = 16
    else:
        old = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = None  # our own limit was checked above
            im.load()
            im = ImageOps.exif_transpose(im)
        except Image.DecompressionBombError as exc:
            raise InputError(f"{name}: image is too large to open safely ({exc})") from None
        except (OSError, SyntaxError, ValueError, struct.error) as exc:
            msg = str(exc)
            hint = "truncated or corrupt" if "truncat" in msg.lower() or "broken" in msg.lower() else "corrupt"
            raise InputError(f"{name}: {hint} image data ({msg})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = old
        rgb_np, alpha_np, bit_depth = _to_float_array(im)
    rgb = torch.from_numpy(np.ascontiguousarray(rgb_np.transpose(2, 0, 1)))
    alpha = None if alpha_np is None else torch.from_numpy(np.ascontiguousarray(alpha_np))[None]
    return LoadedImage(rgb=rgb, alpha=alpha, source=name, mode=mode, bit_depth=bit_depth)


def load_rgb(source: Union[str, Path], *, max_pixels: Optional[int] = None) -> torch.Tensor:
    """Shortcut: ``(1, 3, H, W)`` float32 in [0, 1], alpha dropped."""
    return load_image(source, max_pixels=max_pixels).rgb[None]


# --------------------------------------------------------------------------------------------------------------------
# Saving


def _write_tiff16(fh: BinaryIO, arr: np.ndarray) -> None:
    """Write (H, W, 3|4) uint16 as an uncompressed little-endian baseline TIFF (one strip)."""
    h, w, spp = arr.shape
    pixel = arr.astype("<u2").tobytes()
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, payload
    bits = struct.pack("<" + "H" * spp, *([16] * spp))

    def short(tag: int, v: int) -> None:
        entries.append((tag, 3, 1, struct.pack("<H", v)))

    def long(tag: int, v: int) -> None:
        entries.append((tag, 4, 1, struct.pack("<I", v)))

    n_tags = 11 if spp == 4 else 10
    ifd_offset = 8
    extra_offset = ifd_offset + 2 + 12 * n_tags + 4
    data_offset = extra_offset + len(bits)
    long(256, w)
    long(257, h)
    entries.append((258, 3, spp, bits))
    short(259, 1)
    short(262, 2)
    long(273, data_offset)
    short(277, spp)
    long(278, h)
    long(279, len(pixel))
    short(284, 1)
    if spp == 4:
        short(338, 2)  # unassociated alpha
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    for tag, typ, count, payload in entries:
        if len(payload) <= 4:
            out += struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\x00")
        else:
            out += struct.pack("<HHII", tag, typ, count, extra_offset)
    out += struct.pack("<I", 0)
    out += bits
    assert len(out) == data_offset
    fh.write(bytes(out))
    fh.write(pixel)


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)).permute(1, 2, 0).cpu().numpy()


def encode_image(
    rgb: torch.Tensor,
    fmt: str,
    *,
    alpha: Optional[torch.Tensor] = None,
    quality: int = 95,
    bit_depth: int = 8,
) -> bytes:
    """Encode ``rgb`` (3, H, W) or (1, 3, H, W) in [0, 1] as ``fmt`` ("PNG", "JPEG", "WEBP", "TIFF") bytes.

    ``alpha`` (1, H, W) in [0, 1] is attached for PNG/WEBP/TIFF (JPEG has no alpha: it is dropped).
    ``bit_depth=16`` writes a 16-bit TIFF (other formats: 8 bits).
    """
    if rgb.dim() == 4:
        if rgb.shape[0] != 1:
            raise ValueError("encode_image takes one image")
        rgb = rgb[0]
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"expected (3, H, W), got {tuple(rgb.shape)}")
    if alpha is not None and alpha.shape[-2:] != rgb.shape[-2:]:
        alpha = torch.nn.functional.interpolate(alpha.reshape(1, 1, *alpha.shape[-2:]).float(), size=rgb.shape[-2:],
                                                mode="bilinear", align_corners=False)[0]
    keep_alpha = alpha is not None and fmt in ("PNG", "WEBP", "TIFF")
    buf = _io.BytesIO()
    if fmt == "TIFF" and bit_depth == 16:
        t = torch.cat([rgb, alpha.reshape(1, *rgb.shape[1:])], 0) if keep_alpha else rgb  # type: ignore[union-attr]
        arr = (t.detach().float().clamp(0, 1) * 65535).round().to(torch.int32).permute(1, 2, 0).cpu().numpy()
        _write_tiff16(buf, arr.astype(np.uint16))
        return buf.getvalue()
    arr = _to_uint8(rgb)
    if keep_alpha:
        a = _to_uint8(alpha.reshape(1, *rgb.shape[1:]))  # type: ignore[union-attr]
        im = Image.fromarray(np.concatenate([arr, a], axis=2), mode="RGBA")
    else:
        im = Image.fromarray(arr, mode="RGB")
    kwargs: dict = {}
    if fmt == "JPEG":
        kwargs = {"quality": int(quality), "subsampling": 0 if quality >= 90 else 2}
    elif fmt == "WEBP":
        kwargs = {"quality": int(quality)}
    elif fmt == "PNG":
        kwargs = {"compress_level": 6}
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def format_for(path: Union[str, Path]) -> str:
    """Pillow format name for an output path's extension; :class:`UsageError` for unsupported ones."""
    ext = Path(path).suffix.lower()
    if ext not in WRITE_FORMATS:
        raise UsageError(f"{path}: cannot write '{ext or 'no extension'}' files; use one of "
                         + ", ".join(sorted(WRITE_FORMATS)))
    return WRITE_FORMATS[ext]


def save_image(
    rgb: torch.Tensor,
    path: Union[str, Path],
    *,
    alpha: Optional[torch.Tensor] = None,
    quality: int = 95,
    bit_depth: int = 8,
) -> Path:
    """Write an image atomically; ``path == "-"`` writes PNG to standard output.

    Args:
        rgb: (3, H, W) or (1, 3, H, W) float in [0, 1] (values outside are clamped).
        path: output path; the format follows the extension (see :data:`WRITE_FORMATS`).
        alpha: optional (1, H, W) alpha re-attached where the format supports it (resized if the size changed).
        quality: JPEG/WEBP quality 1-100.
        bit_depth: 16 writes a 16-bit TIFF for .tif/.tiff outputs.
    """
    from .validate import check_finite

    check_finite(rgb, str(path))
    if str(path) == STDIN:
        data = encode_image(rgb, "PNG", alpha=alpha)
        _write_stdout(data)
        return Path(STDIN)
    path = Path(path)
    data = encode_image(rgb, format_for(path), alpha=alpha, quality=quality, bit_depth=bit_depth)
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"{path.parent}: is not a directory")
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except PermissionError as exc:
        raise OutputError(f"{path}: permission denied ({exc.strerror})") from exc
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


def _write_stdout(data: bytes) -> None:
    """Write all of ``data`` to standard output; a closed pipe or a short write is an :class:`OutputError` (and
    stdout is pointed at /dev/null so that Python's exit-time flush does not print a second error)."""
    out = sys.stdout.buffer
    try:
        written = out.write(data)
        out.flush()
    except (BrokenPipeError, ConnectionResetError) as exc:
        _silence_stdout()
        raise OutputError("-: standard output was closed before the image was written (broken pipe)") from exc
    except OSError as exc:
        raise OutputError(f"-: cannot write to standard output ({exc.strerror or exc})") from exc
    if written is not None and written != len(data):
        raise OutputError(f"-: short write to standard output ({written} of {len(data)} bytes)")


def _silence_stdout() -> None:
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError, _io.UnsupportedOperation):
        pass


# --------------------------------------------------------------------------------------------------------------------
# Batch inputs and outputs


@dataclass(frozen=True)
class InputItem:
    """One entry of a batch: an image path (or "-"), or an input spec that failed to expand (``error`` set)."""

    path: str
    error: Optional[str] = None

    @property
    def stem(self) -> str:
        return "stdin" if self.path == STDIN else Path(self.path).stem


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def expand_inputs(specs: Sequence[str], *, recursive: bool = False) -> List[InputItem]:
    """Expand files, folders, glob patterns and "-" into a sorted, de-duplicated list of inputs.

    A spec that names nothing (missing file, empty folder, glob without matches) becomes an item with ``error`` set,
    so that a batch reports it and goes on with the rest. Files given explicitly are kept whatever their extension
    (their content decides); folders and globs keep image extensions only.
    """
    items: List[InputItem] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        if path not in seen:
            seen.add(path)
            items.append(InputItem(path))

    for spec in specs:
        if spec == STDIN:
            add(STDIN)
            continue
        p = Path(spec)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(q for q in p.glob(pattern) if q.is_file() and _is_image_name(q))
            if not found:
                items.append(InputItem(spec, error=f"{spec}: folder has no images (looked for "
                                                   f"{', '.join(IMAGE_EXTENSIONS[:6])}, ...)"))
            for q in found:
                add(str(q))
        elif p.is_file():
            add(str(p))
        elif any(ch in spec for ch in "*?["):
            found = sorted(Path(m) for m in glob.glob(spec, recursive=True) if Path(m).is_file())
            found = [q for q in found if _is_image_name(q)]
            if not found:
                items.append(InputItem(spec, error=f"{spec}: no image matches this pattern"))
            for q in found:
                add(str(q))
        else:
            items.append(InputItem(spec, error=f"{spec}: no such file or folder"))
    return items


def parse_shard(spec: Optional[str]) -> Optional[tuple[int, int]]:
    """Parse ``"K/N"`` (1-based shard K of N) into ``(K, N)``; None passes through."""
    if spec is None:
        return None
    try:
        k_s, n_s = spec.split("/")
        k, n = int(k_s), int(n_s)
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected K/N, e.g. 1/4") from None
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard {spec!r}: K must be between 1 and N")
    return k, n


def take_shard(items: Sequence[InputItem], shard: Optional[tuple[int, int]]) -> List[InputItem]:
    """Keep every N-th item starting at K-1 (stable for a fixed input list)."""
    if shard is None:
        return list(items)
    k, n = shard
    return [it for i, it in enumerate(items) if i % n == k - 1]


@dataclass(frozen=True)
class OutputNamer:
    """Decides where each input's output goes.

    Exactly one of: ``output`` (a single file, or "-" for stdout) or ``out_dir`` + ``template``. The template
    fields are ``{stem}`` (input name without extension), ``{name}`` (with extension), ``{ext}`` (input extension
    without dot), ``{index}`` (0-based position in the batch) and any extra fields given (e.g. ``{method}``).
    """

    output: Optional[str] = None
    out_dir: Optional[str] = None
    template: str = "{stem}.png"
    extra: dict = field(default_factory=dict)

    def path_for(self, item: InputItem, index: int) -> str:
        if self.output is not None:
            return self.output
        src = Path(item.path) if item.path != STDIN else Path("stdin.png")
        fields = {"stem": item.stem, "name": src.name, "ext": src.suffix.lstrip("."), "index": index, **self.extra}
        try:
            name = self.template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(f"--name {self.template!r}: bad template ({exc}); fields: "
                             + ", ".join("{" + k + "}" for k in fields)) from None
        return str(Path(self.out_dir or ".") / name)


def check_output_target(namer: OutputNamer, n_inputs: int) -> None:
    """Usage checks: ``-o FILE`` takes one input; an output's extension must be writable; ``-o`` is not a folder,
    ``--out-dir`` not a file, and both can be written (see :mod:`imgforge.validate`)."""
    from .validate import check_output_dir, check_output_file

    if namer.output is not None and n_inputs > 1:
        raise UsageError(f"-o takes one input but {n_inputs} were given; use --out-dir DIR for a batch")
    if namer.output not in (None, STDIN):
        check_output_file(namer.output, "-o")  # type: ignore[arg-type]
        format_for(namer.output)  # type: ignore[arg-type]
    if namer.output is None:
        format_for(namer.template.replace("{", "").replace("}", ""))
        check_output_dir(namer.out_dir or ".", "--out-dir")


def iter_image_paths(folder: Union[str, Path], *, recursive: bool = True) -> Iterable[Path]:
    """Sorted image files under ``folder`` (for datasets)."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and _is_image_name(p))
