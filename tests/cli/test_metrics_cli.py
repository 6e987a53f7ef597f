"""``imgforge metrics`` end to end with the shipped digit classifier (offline), including every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import run_cli


def _digits(d: Path, seed: int, n: int = 12, size: int = 32) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(n):
        a = np.zeros((size, size), np.uint8)
        y, x = rng.randint(4, size - 12, 2)
        a[y:y + 8 + rng.randint(4), x:x + 3 + rng.randint(6)] = 255  # a stroke
        Image.fromarray(a).convert("RGB").save(d / f"{i:03d}.png")
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("metrics_cli")
    env = {"IMGFORGE_CACHE_DIR": str(root / "cache"), "IMGFORGE_WEIGHTS_PATH": str(root / "no_weights")}
    return {"root": root, "A": _digits(root / "A", 0), "B": _digits(root / "B", 1), "env": env}


def _json(p) -> list:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]


def test_fid_identity_symmetry_and_json(data: dict) -> None:
    a, b, root, env = str(data["A"]), str(data["B"]), data["root"], data["env"]
    p = run_cli(["metrics", "fid", a, a, "-e", "digits", "--json"], root, env=env)
    assert p.returncode == 0, p.stderr
    (r,) = _json(p)
    assert abs(r["value"]) < 1e-6
    assert {"metric", "value", "extractor", "weights_sha256", "resize", "counts", "seed"} <= set(r)
    assert r["extractor"] == "digits" and r["resize"] == "tf1" and r["counts"]["real"] == 12
    ab = _json(run_cli(["metrics", "fid", a, b, "-e", "digits", "--json", "--save-stats", str(root / "a.npz")],
                       root, env=env))[0]["value"]
    ba = _json(run_cli(["metrics", "fid", b, a, "-e", "digits", "--json"], root, env=env))[0]["value"]
    assert ab > 1 and ab == pytest.approx(ba, abs=1e-6)
    with np.load(root / "a.npz") as z:
        assert z["mu"].shape == (1024,) and z["sigma"].shape == (1024, 1024)
    st = _json(run_cli(["metrics", "fid", str(root / "a.npz"), b, "-e", "digits", "--json"], root, env=env))[0]
    assert st["value"] == pytest.approx(ab, rel=1e-4)


def test_all_digits_and_kid_is_options(data: dict) -> None:
    a, b, root, env = str(data["A"]), str(data["B"]), data["root"], data["env"]
    p = run_cli(["metrics", "all", a, b, "-e", "digits", "--json", "--subsets", "5", "--splits", "3"], root, env=env)
    assert p.returncode == 0, p.stderr
    res = {r["metric"]: r for r in _json(p)}
    assert {"fid", "kid", "digits_is", "recognised", "class_coverage", "precision", "recall"} <= set(res)
    assert res["kid"]["subset_size"] == 12 and res["kid"]["seed"] == 2020 and res["digits_is"]["splits"] == 3
    assert 1 <= res["digits_is"]["value"] <= 10 and 0 <= res["recognised"]["value"] <= 1


def test_paired_metrics_and_size_mismatch(data: dict, tmp_path: Path) -> None:
    a, root, env = data["A"], data["root"], data["env"]
    p = run_cli(["metrics", "ssim", str(a), str(a), "--json"], root, env=env)
    assert p.returncode == 0 and _json(p)[0]["value"] == pytest.approx(1.0)
    small = _digits(tmp_path / "S", 0, n=12, size=24)
    p = run_cli(["metrics", "psnr", str(a), str(small)], root, env=env)
    assert p.returncode == 1 and "same size" in p.stderr.decode() and len(p.stderr.decode().strip().splitlines()) == 1


def test_bad_inputs(data: dict, tmp_path: Path) -> None:
    root, env, b = data["root"], data["env"], str(data["B"])
    (tmp_path / "empty").mkdir()
    p = run_cli(["metrics", "fid", str(tmp_path / "empty"), b, "-e", "digits"], root, env=env)
    assert p.returncode == 1 and "no images" in p.stderr.decode() and "Traceback" not in p.stderr.decode()
    one = _digits(tmp_path / "one", 3, n=1)
    p = run_cli(["metrics", "fid", str(one), b, "-e", "digits"], root, env=env)
    assert p.returncode == 1 and "at least 2 images" in p.stderr.decode()
    bad = _digits(tmp_path / "bad", 4, n=6)
    (bad / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    p = run_cli(["metrics", "fid", str(bad), b, "-e", "digits", "--json"], root, env=env)
    assert p.returncode == 3, p.stderr  # result written, the failure counted
    r = _json(p)[0]
    assert r["counts"]["real"] == 6 and r["counts"]["real_skipped"] == 1 and "zz_corrupt.png" in p.stderr.decode()
    p = run_cli(["metrics", "fid", b, b], root, env=env)  # inception without weights, offline
    err = p.stderr.decode().strip()
    assert p.returncode == 1 and "imgforge weights fetch fid-inception" in err and len(err.splitlines()) == 1
    p = run_cli(["metrics", "fid", b, b, "-e", "digits", "--resize", "bicubic"], root, env=env)
    assert p.returncode == 2 and "--resize" in p.stderr.decode()
    p = run_cli(["metrics", "kid", b, b, "-e", "digits"], root, env=env)  # subset size 1000 > 12 images
    assert p.returncode == 1 and "--subset-size" in p.stderr.decode()


def test_help_has_examples(data: dict) -> None:
    p = run_cli(["metrics", "--help"], data["root"])
    out = p.stdout.decode()
    assert p.returncode == 0 and "imgforge metrics fid real/ fake/" in out
    for cmd in ("fid", "kid", "is", "pr", "ppl", "parzen", "psnr", "ssim", "lpips", "all"):
        assert cmd in out
