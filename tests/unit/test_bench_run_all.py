"""Smoke test of benchmarks/run_all.py: the cheapest case, its baseline, the conv peak, the table and the files."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

RUN_ALL = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"


def _module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_run_all_quick_pix2pix_writes_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not RUN_ALL.is_file():
        pytest.skip("benchmarks/ is not part of this install")
    monkeypatch.setenv("IMGFORGE_DATA_DIR", str(tmp_path / "no-data"))  # synthetic stand-in images
    run_all = _module()
    out = tmp_path / "summary.md"
    rc = run_all.main(["--quick", "--cases", "pix2pix", "--threads", "1", "--out", str(out)])
    assert rc == 0
    md = out.read_text()
    assert "AVX512-BF16" in md and "conv peak" in md and "| pix2pix |" in md and "synthetic" in md
    data = json.loads(out.with_suffix(".json").read_text())
    peak = data["peaks"]["1"]
    assert peak["fp32"] > 0 and peak["bf16"] > 0
    (row,) = [r for r in data["rows"] if r["case"] == "pix2pix"]
    assert row["baseline_s"] > 0 and row["imgforge_s"] > 0 and row["gflop"] > 1  # unet_256 at 256^2: ~12 GFLOP
    assert math.isclose(row["ratio"], row["baseline_s"] / row["imgforge_s"])
    assert row["psnr_db"] > 30 and row["peak_rss_mb"] > 0


def test_run_all_rejects_unknown_case() -> None:
    if not RUN_ALL.is_file():
        pytest.skip("benchmarks/ is not part of this install")
    with pytest.raises(SystemExit) as e:
        _module().main(["--cases", "nope", "--no-write"])
    assert e.value.code == 2


def test_run_all_variants_and_gatys_n_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    if not RUN_ALL.is_file():
        pytest.skip("benchmarks/ is not part of this install")
    import torch

    run_all = _module()
    cpu = torch.device("cpu")
    monkeypatch.delenv("IMGFORGE_BENCH_VARIANTS", raising=False)
    assert run_all._variants(cpu, True) == ["auto", "bf16"]
    monkeypatch.setenv("IMGFORGE_BENCH_VARIANTS", "bf16")
    assert run_all._variants(cpu, True) == ["bf16"]
    assert run_all._variants(cpu, False) == ["auto"]  # feed-forward cases keep the policy's variant


def _summary(peak_bf16: float, rows: list, threads: int = 1) -> dict:
    machine = {"cpu_model": "Xeon test", "cpu_vendor": "GenuineIntel", "cpus": 16, "amx_bf16": True,
               "avx512_bf16": True, "avx512f": True, "torch": "x", "python": "3"}
    return {"machine": machine, "threads": [1], "quick": False, "device": "cpu", "load_start": [4.0, 0, 0],
            "load_end": [5.0, 0, 0], "peaks": {str(threads): {"fp32": 100.0, "bf16": peak_bf16}}, "rows": rows}


def test_run_all_merge_uses_each_process_peak(tmp_path: Path) -> None:
    if not RUN_ALL.is_file():
        pytest.skip("benchmarks/ is not part of this install")
    run_all = _module()
    fast = run_all._row("fast", "auto", "image 1024²", 4.0, 1.0, 800e9, "bf16", 50.0, size=1024)
    fast.update(threads=1, peak_rss_mb=900.0)
    gat = run_all._row("gatys", "bf16", "L-BFGS evaluation", 3.0, 1.0, 100e9, "bf16", 30.0, size=512,
                       iterations=100, loss_rel=0.01, style_rel=-0.005, content_rel=0.002)
    gat.update(threads=4, peak_rss_mb=1200.0)
    (tmp_path / "fast.json").write_text(json.dumps(_summary(1600.0, [{"case": "peak"}, fast])))
    (tmp_path / "gatys_agree.json").write_text(json.dumps(_summary(400.0, [gat], threads=4)))
    (tmp_path / "other.json").write_text("[1, 2]")  # not a summary: ignored
    (tmp_path / "peak_idle.json").write_text(json.dumps(_summary(2000.0, [{"case": "peak"}])))
    (tmp_path / "lscpu.txt").write_text("Model name: Xeon test\nThread(s) per core:   2\nFlags: fpu amx_bf16 amx_tile sse\n")
    out = tmp_path / "summary_amx.md"
    md = run_all.merge(tmp_path, out)
    assert out.read_text() == md
    fast_line = next(ln for ln in md.splitlines() if ln.startswith("| fast |"))
    assert "| 50% |" in fast_line and "| 800 |" in fast_line and "4.00×" in fast_line  # 800 / 1600
    gat_line = next(ln for ln in md.splitlines() if ln.startswith("| gatys |"))
    assert "| 25% |" in gat_line and "| 4 |" in gat_line and "n=100: loss +1.00%" in gat_line  # 100 / 400
    assert "process gatys_agree" in gat_line and "process fast" in fast_line
    assert "40% of the idle peak" in fast_line and "idle peak" not in gat_line  # 800 / 2000; no 4-thread idle peak
    assert "Thread(s) per core: 2" in md and "amx_bf16 amx_tile" in md
    assert len(json.loads(out.with_suffix(".json").read_text())["rows"]) == 2
