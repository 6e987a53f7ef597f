"""Image I/O: modes, EXIF, alpha, 16-bit, bad inputs, atomic writes, batch expansion and naming."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.errors import InputError, OutputError, UsageError
from imgforge.io import (
    OutputNamer, check_output_target, encode_image, expand_inputs, load_image, parse_shard, save_image, take_shard,
)


def _rgb(h: int = 6, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_roundtrip_png_exact(tmp_path: Path) -> None:
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.rgb.shape == (3, 6, 5) and img.alpha is None and img.bit_depth == 8
    save_image(img.rgb, tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)


@pytest.mark.parametrize("mode", ["L", "1", "CMYK", "YCbCr"])
def test_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    im = Image.fromarray(_rgb()).convert(mode)
    ext = "jpg" if mode in ("CMYK", "YCbCr") else "png"
    im.save(tmp_path / f"x.{ext}")
    img = load_image(tmp_path / f"x.{ext}")
    assert img.rgb.shape == (3, 6, 5)
    assert 0.0 <= float(img.rgb.min()) and float(img.rgb.max()) <= 1.0
    ref = np.asarray(Image.open(tmp_path / f"x.{ext}").convert("RGB")).astype(np.float32) / 255
    assert np.abs(img.rgb.permute(1, 2, 0).numpy() - ref).max() <= 1e-6


def test_rgba_alpha_kept_and_reattached(tmp_path: Path) -> None:
    arr = np.concatenate([_rgb(), np.full((6, 5, 1), 128, np.uint8)], axis=2)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.alpha is not None and abs(float(img.alpha.mean()) - 128 / 255) < 1e-6
    save_image(img.rgb, tmp_path / "b.png", alpha=img.alpha)
    out = Image.open(tmp_path / "b.png")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out), arr)
    save_image(img.rgb, tmp_path / "b.jpg", alpha=img.alpha)  # JPEG drops alpha without failing
    assert Image.open(tmp_path / "b.jpg").mode == "RGB"


def test_la_and_palette_transparency(tmp_path: Path) -> None:
    la = Image.fromarray(np.stack([_rgb()[..., 0], np.full((6, 5), 10, np.uint8)], -1), "LA")
    la.save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert img.alpha is not None and torch.allclose(img.rgb[0], img.rgb[1])
    p = Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    img = load_image(tmp_path / "p.png")
    assert img.alpha is not None and float(img.alpha.min()) == 0.0


def test_16bit_gray_png_and_16bit_tiff_roundtrip(tmp_path: Path) -> None:
    g = np.random.default_rng(1).integers(0, 65536, (7, 4), dtype=np.uint16)
    Image.fromarray(g).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.bit_depth == 16
    assert np.allclose(img.rgb[0].numpy(), g / 65535.0, atol=1e-6)
    save_image(img.rgb, tmp_path / "g16.tif", bit_depth=16)
    back = load_image(tmp_path / "g16.tif")
    assert back.bit_depth == 16 and torch.allclose(back.rgb, img.rgb, atol=1 / 65535)
    # Pillow reads our TIFF too (at 8-bit precision)
    assert Image.open(tmp_path / "g16.tif").size == (4, 7)
    alpha = torch.rand(1, 7, 4)
    save_image(img.rgb, tmp_path / "ga.tiff", alpha=alpha, bit_depth=16)
    back = load_image(tmp_path / "ga.tiff")
    assert back.alpha is not None and torch.allclose(back.alpha, alpha, atol=1 / 65535)


def test_int32_and_float_modes(tmp_path: Path) -> None:
    arr = np.random.default_rng(2).integers(0, 65536, (5, 5)).astype(np.int32)
    Image.fromarray(arr, "I").save(tmp_path / "i.tif")
    assert np.allclose(load_image(tmp_path / "i.tif").rgb[0].numpy(), arr / 65535.0, atol=1e-6)
    f = np.random.default_rng(3).random((5, 5)).astype(np.float32)
    Image.fromarray(f, "F").save(tmp_path / "f.tif")
    assert np.allclose(load_image(tmp_path / "f.tif").rgb[0].numpy(), f, atol=1e-6)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    im = Image.fromarray(_rgb(4, 8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "o.jpg", exif=exif, quality=100)
    img = load_image(tmp_path / "o.jpg")
    assert img.size == (4, 8)  # width and height swapped


def _png_header_only(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in [(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 64)), (b"IEND", b"")]:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "zero.png").write_bytes(b"")
    good = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(good, format="PNG")
    (tmp_path / "trunc.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (tmp_path / "text.jpg").write_text("not an image at all")
    (tmp_path / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    cases = {"zero.png": "empty", "trunc.png": "truncated", "text.jpg": "not an image", "bomb.png": "exceeds the limit",
             "missing.png": "no such file"}
    for name, words in cases.items():
        with pytest.raises(InputError) as ei:
            load_image(tmp_path / name)
        assert words in str(ei.value) and name in str(ei.value)
    with pytest.raises(InputError, match="is a directory"):
        load_image(tmp_path)


def test_max_pixels_override(tmp_path: Path) -> None:
    Image.fromarray(_rgb(10, 10)).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="exceeds"):
        load_image(tmp_path / "a.png", max_pixels=99)
    assert load_image(tmp_path / "a.png", max_pixels=100).size == (10, 10)


def test_save_by_extension_and_errors(tmp_path: Path) -> None:
    rgb = torch.rand(3, 8, 8)
    for ext, fmt in [("png", "PNG"), ("jpg", "JPEG"), ("jpeg", "JPEG"), ("webp", "WEBP"), ("tif", "TIFF")]:
        save_image(rgb, tmp_path / f"o.{ext}", quality=80)
        assert Image.open(tmp_path / f"o.{ext}").format == fmt
    with pytest.raises(UsageError, match="cannot write"):
        save_image(rgb, tmp_path / "o.gif")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        save_image(rgb, tmp_path / "file" / "o.png")
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_unwritable_dir(tmp_path: Path) -> None:
    # /proc refuses new files even for root; a chmod'ed folder covers ordinary users.
    with pytest.raises(OutputError, match="cannot write"):
        save_image(torch.rand(3, 4, 4), "/proc/imgforge-test/x.png")
    import os
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
        try:
            with pytest.raises(OutputError):
                save_image(torch.rand(3, 4, 4), d / "x.png")
        finally:
            d.chmod(0o700)


def test_encode_png_bytes_is_png() -> None:
    data = encode_image(torch.rand(1, 3, 4, 4), "PNG")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_expand_inputs(tmp_path: Path) -> None:
    for n in ["b.png", "a.jpg", "notes.txt"]:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.png").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    items = expand_inputs([str(tmp_path)])
    assert [Path(i.path).name for i in items] == ["a.jpg", "b.png"]
    items = expand_inputs([str(tmp_path)], recursive=True)
    assert [Path(i.path).name for i in items] == ["a.jpg", "b.png", "c.png"]
    items = expand_inputs([str(tmp_path / "*.png"), str(tmp_path / "b.png"), str(tmp_path / "nope.png"),
                           str(tmp_path / "empty"), str(tmp_path / "*.gif")])
    assert [i.error is None for i in items] == [True, False, False, False]
    assert "no such file" in items[1].error and "no images" in items[2].error and "no image matches" in items[3].error


def test_shards_partition_the_inputs() -> None:
    from imgforge.io import InputItem
    items = [InputItem(f"{i}.png") for i in range(10)]
    parts = [take_shard(items, parse_shard(f"{k}/3")) for k in (1, 2, 3)]
    assert sorted(i.path for p in parts for i in p) == sorted(i.path for i in items)
    assert all(p for p in parts)
    for bad in ["0/3", "4/3", "x", "1/0"]:
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_output_namer(tmp_path: Path) -> None:
    from imgforge.io import InputItem
    n = OutputNamer(out_dir=str(tmp_path), template="{stem}_{method}.jpg", extra={"method": "gatys"})
    assert n.path_for(InputItem("x/photo.png"), 0) == str(tmp_path / "photo_gatys.jpg")
    with pytest.raises(UsageError):
        OutputNamer(out_dir=".", template="{nope}.png").path_for(InputItem("a.png"), 0)
    with pytest.raises(UsageError, match="one input"):
        check_output_target(OutputNamer(output="o.png"), 2)
    with pytest.raises(UsageError, match="cannot write"):
        check_output_target(OutputNamer(output="o.bmpx"), 1)
