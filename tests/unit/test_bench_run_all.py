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
