"""The metrics job layer in-process: embedded extractor, generator input, PPL, Parzen, the feature cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgforge.errors import InputError, UsageError
from imgforge.jobs.metrics import MetricsConfig, run_metrics
from imgforge.runtime import Runtime

RT = Runtime.create("cpu", "fp32")


def _folder(d: Path, seed: int, n: int = 6, size: int = 32) -> str:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(n):
        a = (rng.rand(size, size) > 0.8).astype(np.uint8) * 255
        Image.fromarray(a).convert("RGB").save(d / f"{i:02d}.png")
    return str(d)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMGFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("IMGFORGE_WEIGHTS_PATH", str(tmp_path / "no_weights"))  # no published VGG-16 around
    return tmp_path / "cache"


def test_embedded_fid_and_cache(tmp_path: Path, cache: Path) -> None:
    a, b = _folder(tmp_path / "a", 0), _folder(tmp_path / "b", 1)
    events: list = []
    cfg = MetricsConfig("fid", (a, b), extractor="embedded", batch_size=4)
    r1 = run_metrics(cfg, progress=events.append, runtime=RT).results[0]
    assert r1["extractor"] == "embedded" and r1["weights"] == "imgforge-vgg19-embedded.safetensors"
    assert r1["counts"] == {"real": 6, "real_skipped": 0, "fake": 6, "fake_skipped": 0} and r1["value"] > 0
    assert len(list((cache / "metrics").glob("*.npz"))) == 2
    events.clear()
    r2 = run_metrics(cfg, progress=events.append, runtime=RT).results[0]
    assert r2["value"] == r1["value"] and any("cached features" in (e.message or "") for e in events)
    Path(a, "00.png").touch()  # new mtime: re-encoded
    (Path(a) / "00.png").write_bytes((Path(a) / "01.png").read_bytes())
    r3 = run_metrics(cfg, runtime=RT).results[0]
    assert r3["value"] != r1["value"]
    with pytest.raises(UsageError):
        run_metrics(MetricsConfig("is", (a,), extractor="embedded"), runtime=RT)


def test_generator_input_digits(tmp_path: Path, cache: Path) -> None:
    res = run_metrics(MetricsConfig("is", (), extractor="digits", generator="stylegan2-mnist32", n=20, splits=2),
                      runtime=RT).results
    names = [r["metric"] for r in res]
    assert names == ["digits_is", "recognised", "class_coverage"] and res[0]["counts"]["fake"] == 20
    assert 1 <= res[0]["value"] <= 10 and sum(res[2]["histogram"]) == 20


def test_parzen_and_ppl(tmp_path: Path, cache: Path) -> None:
    held, fake = _folder(tmp_path / "h", 2, n=8), _folder(tmp_path / "f", 3, n=30)
    r = run_metrics(MetricsConfig("parzen", (held, fake), grey=True, crop=28), runtime=RT).results[0]
    assert r["counts"]["valid"] == 4 and r["counts"]["test"] == 4 and r["dim"] == 784 and r["sigma"] in r["sigma_grid"]
    with pytest.raises(InputError, match="differ in size"):
        run_metrics(MetricsConfig("parzen", (held, _folder(tmp_path / "s", 3, size=24))), runtime=RT)
    p = run_metrics(MetricsConfig("ppl", (), generator="stylegan2-mnist32", n=4, space="z", batch_size=4),
                    runtime=RT).results[0]
    assert p["metric"] == "ppl_z" and p["value"] > 0 and "embedded" in p["distance"]
