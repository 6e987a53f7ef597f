"""Batch runner semantics and runtime helpers (precision policy, tiling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.batch import SaveOptions, run_batch
from imgforge.errors import ImgforgeError, UsageError
from imgforge.io import OutputNamer, expand_inputs
from imgforge.ops.tiling import tile_starts, tiled_apply
from imgforge.runtime import Runtime, make_generator, resolve_precision, select_device


def _write(path: Path, seed: int = 0) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)


def test_batch_goes_on_after_bad_files_and_skips_existing(tmp_path: Path) -> None:
    _write(tmp_path / "good1.png")
    _write(tmp_path / "good2.png", 1)
    (tmp_path / "bad.png").write_bytes(b"")
    out = tmp_path / "out"
    items = expand_inputs([str(tmp_path / "good1.png"), str(tmp_path / "bad.png"), str(tmp_path / "missing.png"),
                           str(tmp_path / "good2.png")])
    events = []
    res = run_batch(items, OutputNamer(out_dir=str(out), template="{stem}_inv.png"), lambda im: 1 - im.rgb,
                    progress=events.append)
    assert (res.ok, res.failed, res.skipped, res.exit_code) == (2, 2, 0, 3)
    assert sorted(p.name for p in out.iterdir()) == ["good1_inv.png", "good2_inv.png"]
    got = np.asarray(Image.open(out / "good1_inv.png"))
    assert np.array_equal(got, 255 - np.asarray(Image.open(tmp_path / "good1.png")))
    assert len(events) == 4 and any("empty" in (e.message or "") for e in events)
    res2 = run_batch(items, OutputNamer(out_dir=str(out), template="{stem}_inv.png"), lambda im: im.rgb)
    assert res2.skipped == 2 and res2.exit_code == 3
    res3 = run_batch(items[:1], OutputNamer(out_dir=str(out), template="{stem}_inv.png"), lambda im: im.rgb,
                     save=SaveOptions(overwrite=True))
    assert res3.ok == 1 and res3.exit_code == 0
    assert np.array_equal(np.asarray(Image.open(out / "good1_inv.png")), np.asarray(Image.open(tmp_path / "good1.png")))


def test_batch_all_failed_is_exit_1_and_usage_errors_raise(tmp_path: Path) -> None:
    items = expand_inputs([str(tmp_path / "missing.png")])
    assert run_batch(items, OutputNamer(out_dir=str(tmp_path)), lambda im: im.rgb).exit_code == 1
    _write(tmp_path / "a.png")
    _write(tmp_path / "b.png")
    with pytest.raises(UsageError):
        run_batch(expand_inputs([str(tmp_path)]), OutputNamer(output=str(tmp_path / "o.png")), lambda im: im.rgb)


def test_batch_process_error_is_recorded(tmp_path: Path) -> None:
    _write(tmp_path / "a.png")

    def boom(im):
        raise ImgforgeError("model refused")

    res = run_batch(expand_inputs([str(tmp_path / "a.png")]), OutputNamer(out_dir=str(tmp_path / "o")), boom)
    assert res.failed == 1 and res.items[0].error == "model refused"
    assert not (tmp_path / "o" / "a.png").exists()


def test_precision_policy() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("fp16", cpu) is torch.float16
    assert resolve_precision("auto", cpu) in (None, torch.bfloat16)
    with pytest.raises(UsageError):
        resolve_precision("int8", cpu)
    assert select_device("cpu").type == "cpu"
    with pytest.raises(UsageError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ImgforgeError, match="CUDA is not available"):
            select_device("cuda")
    rt = Runtime.create("cpu", "fp32")
    assert rt.dtype is None and rt.precision_name == "fp32"


def test_generator_is_seeded() -> None:
    a = torch.rand(3, generator=make_generator(5))
    b = torch.rand(3, generator=make_generator(5))
    assert torch.equal(a, b)


def test_tile_starts_cover() -> None:
    for size, tile, ov in [(100, 32, 8), (33, 32, 8), (32, 32, 8), (1000, 256, 64)]:
        starts = tile_starts(size, tile, ov)
        covered = np.zeros(size, bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all() and starts[-1] + min(tile, size) == size


def test_tiled_apply_matches_pointwise_fn() -> None:
    x = torch.rand(2, 3, 70, 101)

    def fn(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t * 2 - 0.5, t.mean(1, keepdim=True)], 1)

    calls = []
    out = tiled_apply(fn, x, tile=32, overlap=8, progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (2, 4, 70, 101) and torch.allclose(out, fn(x), atol=1e-6)
    assert calls[-1][0] == calls[-1][1] > 1


def test_tiled_apply_blends_smoothly() -> None:
    """A function with a per-tile offset leaves no hard seams: the step between neighbours is spread over the overlap."""
    x = torch.zeros(1, 1, 1, 200)
    counter = iter(range(100))

    def fn(t: torch.Tensor) -> torch.Tensor:
        return t + float(next(counter))

    out = tiled_apply(fn, x, tile=64, overlap=32)
    jumps = out[0, 0, 0, 1:] - out[0, 0, 0, :-1]
    assert float(jumps.abs().max()) < 0.1


def test_auto_precision_cpu_rule(monkeypatch) -> None:
    """``auto`` on the CPU: bf16 with AMX, or AVX512-BF16 on AMD; fp32 on Intel AVX512-BF16 without AMX; env wins."""
    import imgforge.runtime as rt_mod

    cpu = torch.device("cpu")
    monkeypatch.delenv("IMGFORGE_CPU_BF16", raising=False)
    cases = [
        ("GenuineIntel", {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, torch.bfloat16),
        ("GenuineIntel", {"avx512f", "avx512_bf16"}, None),
        ("AuthenticAMD", {"avx512f", "avx512_bf16"}, torch.bfloat16),
        ("AuthenticAMD", {"avx2", "avx512f"}, None),
        ("", set(), None),
    ]
    for vendor, flags, want in cases:
        monkeypatch.setattr(rt_mod, "_cpuinfo", lambda v=vendor, f=frozenset(flags): (v, f))
        assert rt_mod.resolve_precision("auto", cpu) is want, (vendor, flags)
        assert rt_mod.resolve_precision("fp32", cpu) is None
    monkeypatch.setenv("IMGFORGE_CPU_BF16", "1")
    assert rt_mod.resolve_precision("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(rt_mod, "_cpuinfo", lambda: ("AuthenticAMD", frozenset({"avx512_bf16"})))
    monkeypatch.setenv("IMGFORGE_CPU_BF16", "0")
    assert rt_mod.resolve_precision("auto", cpu) is None


def test_cpuinfo_parsing_of_this_machine() -> None:
    from imgforge.runtime import _cpuinfo, cpu_flags, cpu_vendor

    vendor, flags = _cpuinfo()
    assert cpu_vendor() == vendor and cpu_flags() == flags
    if Path("/proc/cpuinfo").exists():
        text = Path("/proc/cpuinfo").read_text()
        if "vendor_id" in text:
            assert vendor and vendor in text
        assert flags and all(f in text for f in list(flags)[:20])
