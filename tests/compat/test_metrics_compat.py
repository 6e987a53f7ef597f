"""FID / KID / IS against torch-fidelity 0.4.0 outputs: ``$IMGFORGE_COMPAT_DIR/metrics/I`` (README there).

The random-weight Inception file is regenerated at test time with the fixture's own recipe (``make_weights.py``,
~2 s) into a temporary folder; tolerances are the ones the fixture's README recommends. The default suite checks
the resize, features of 3 images per set and every metric from the stored features; the full 48 + 48 end-to-end
run (library and CLI, ~1-2 min of Inception on 2 cores) is marked slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.jobs.metrics import extract_images, list_images
from imgforge.metrics import scores
from imgforge.metrics.extractors import build_extractor
from imgforge.hub.convert_inception import read_inception_state_dict
from imgforge.models.inception import N_PARAM_ENTRIES
from imgforge.metrics.resize import resize_tf1
from imgforge.runtime import Runtime

from ..cli.helpers import run_cli
from ..conftest import require


@pytest.fixture(scope="module")
def fixture(compat_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = compat_dir / "metrics" / "I"
    recipe = require(root / "make_weights.py")
    out = tmp_path_factory.mktemp("inception") / "inception_random_seed0.pth"
    proc = subprocess.run([sys.executable, str(recipe), "--seed", "0", "--out", str(out)], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"the fixture's weight recipe failed: {proc.stderr.strip()[-200:]}")
    return {"root": root, "weights": out, "metrics": json.loads((root / "metrics.json").read_text())}


def _features(fixture: dict, n: int) -> dict:
    ex = build_extractor("inception", fixture["weights"], resize="tf1", runtime=Runtime.create("cpu", "fp32"))
    return {s: extract_images(list_images(str(fixture["root"] / s))[:n], ex, batch_size=48, cache=False)
            for s in ("A", "B")}


@pytest.fixture(scope="module")
def some_features(fixture: dict) -> dict:
    """The first 3 images of each set (features do not depend on the batch: the default suite stays quick)."""
    return _features(fixture, 3)


@pytest.fixture(scope="module")
def features(fixture: dict) -> dict:
    return _features(fixture, 48)


def test_weights_load_safely_in_the_published_layout(fixture: dict) -> None:
    sd = read_inception_state_dict(fixture["weights"])
    assert len(sd) == N_PARAM_ENTRIES and tuple(sd["fc.weight"].shape) == (1008, 2048)


@pytest.mark.parametrize("name,ref", [("A/000.png", "A_first_resized299.npy"), ("B/000.png", "B_first_resized299.npy"),
                                      ("resize/R1.png", "resize/R1_resized299.npy"),
                                      ("resize/R2.png", "resize/R2_resized299.npy")])
def test_tf1_resize(fixture: dict, name: str, ref: str) -> None:
    a = np.array(Image.open(fixture["root"] / name).convert("RGB"))
    y = resize_tf1(torch.from_numpy(a).permute(2, 0, 1)[None].float(), 299)[0].numpy()
    assert np.abs(y - np.load(fixture["root"] / ref)).max() <= 1e-3


def test_features(fixture: dict, some_features: dict) -> None:
    root = fixture["root"]
    for s in ("A", "B"):
        fs = some_features[s]
        assert fs.n == 3 and not fs.bad
        assert np.abs(fs.features - np.load(root / f"{s}_pool3.npy")[:3]).max() <= 2e-5
        assert np.abs(fs.logits - np.load(root / f"{s}_logits_unbiased.npy")[:3]).max() <= 2e-4


@pytest.mark.slow
def test_features_and_statistics(fixture: dict, features: dict) -> None:
    root = fixture["root"]
    for s in ("A", "B"):
        fs = features[s]
        assert fs.n == 48 and not fs.bad
        assert np.abs(fs.features - np.load(root / f"{s}_pool3.npy")).max() <= 2e-5
        assert np.abs(fs.logits - np.load(root / f"{s}_logits_unbiased.npy")).max() <= 2e-4
        mu, sigma = scores.feature_stats(fs.features)
        assert np.abs(mu - np.load(root / f"{s}_mu.npy")).max() <= 2e-5
        assert np.abs(np.diag(sigma) - np.load(root / f"{s}_sigma_diag.npy")).max() <= 1e-6
        assert np.abs(sigma[::64] - np.load(root / f"{s}_sigma_rows.npy")).max() <= 1e-6


@pytest.mark.slow
def test_metrics_end_to_end(fixture: dict, features: dict) -> None:
    m = fixture["metrics"]
    a, b = features["A"], features["B"]
    # end to end (own features), default route; the README's end-to-end tolerance
    assert scores.fid(a.features, b.features) == pytest.approx(m["fid_A_B"], abs=2e-5)
    k = scores.kid(a.features, b.features, subsets=100, subset_size=32)
    assert k["value"] == pytest.approx(m["kid_A_B"]["kernel_inception_distance_mean"], abs=5e-7)
    assert k["std"] == pytest.approx(m["kid_A_B"]["kernel_inception_distance_std"], abs=5e-7)
    for key, logits, splits in (("isc_A", a.logits, 4), ("isc_A_splits10", a.logits, 10), ("isc_B", b.logits, 4)):
        r = scores.inception_score(logits, splits=splits)
        assert r["value"] == pytest.approx(m[key]["inception_score_mean"], abs=1e-6)
        assert r["std"] == pytest.approx(m[key]["inception_score_std"], abs=1e-6)


def test_metrics_from_stored_features(fixture: dict) -> None:
    root, m = fixture["root"], fixture["metrics"]
    pa, pb = np.load(root / "A_pool3.npy"), np.load(root / "B_pool3.npy")
    for s, f in (("A", pa), ("B", pb)):
        mu, sigma = scores.feature_stats(f)
        assert np.abs(mu - np.load(root / f"{s}_mu.npy")).max() <= 1e-6
        assert np.abs(np.diag(sigma) - np.load(root / f"{s}_sigma_diag.npy")).max() <= 1e-12
        assert np.abs(sigma[::64] - np.load(root / f"{s}_sigma_rows.npy")).max() <= 1e-12
    # (torch-fidelity's eigvals and pytorch-fid's sqrtm routes on 2048x2048 take 2-60 s here: the slow test below)
    # the exact low-rank route drops the reference's round-off eigenvalues (rank 47 of 2048): 5e-6 lower
    assert scores.fid(pa, pb, "lowrank") == pytest.approx(m["fid_A_B"], abs=1e-5)
    assert abs(scores.fid(pa, pa)) < 1e-6 and scores.fid(pa, pb) == pytest.approx(scores.fid(pb, pa), abs=1e-9)
    k = scores.kid(pa, pb, subsets=100, subset_size=32, return_subsets=True)
    assert np.abs(k["mmd"] - np.load(root / "kid_subset_mmd.npy")).max() <= 1e-7
    rng = np.random.RandomState(2020)
    idx = np.load(root / "kid_subset_indices.npy")
    for i in range(3):
        assert np.array_equal(rng.choice(48, 32, replace=False), idx[i, 0])
        assert np.array_equal(rng.choice(48, 32, replace=False), idx[i, 1])
    assert np.array_equal(np.random.RandomState(2020).permutation(48), np.load(root / "isc_permutation.npy"))
    r = scores.inception_score(np.load(root / "A_logits_unbiased.npy"), splits=4)
    assert r["value"] == pytest.approx(m["isc_A"]["inception_score_mean"], abs=1e-9)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_fid_reference_routes(fixture: dict) -> None:
    root, m = fixture["root"], fixture["metrics"]
    mu1, s1 = scores.feature_stats(np.load(root / "A_pool3.npy"))
    mu2, s2 = scores.feature_stats(np.load(root / "B_pool3.npy"))
    for method in ("eigvals", "sqrtm"):  # torch-fidelity 0.4.0, pytorch-fid
        assert scores.fid_from_stats(mu1, s1, mu2, s2, method)["value"] == pytest.approx(m["fid_A_B"], abs=2e-6)


@pytest.mark.slow
def test_cli_all_with_the_regenerated_weights(fixture: dict, tmp_path: Path) -> None:
    root, m = fixture["root"], fixture["metrics"]
    p = run_cli(["metrics", "all", str(root / "A"), str(root / "B"), "--weights", str(fixture["weights"]),
                 "--resize", "tf1", "--subset-size", "32", "--splits", "4", "--json", "--no-cache"], tmp_path,
                timeout=900)
    assert p.returncode == 0, p.stderr
    res = {r["metric"]: r for r in map(json.loads, p.stdout.decode().splitlines())}
    assert res["fid"]["value"] == pytest.approx(m["fid_A_B"], abs=2e-5)
    assert res["kid"]["value"] == pytest.approx(m["kid_A_B"]["kernel_inception_distance_mean"], abs=5e-7)
    assert res["is"]["value"] == pytest.approx(m["isc_B"]["inception_score_mean"], abs=1e-6)
    for r in res.values():
        assert r["extractor"] == "inception" and r["resize"] == "tf1"
        assert r["weights_sha256"] == "50bf7a1b9ba962d727bf96802161f4ef43af9bf989a9342da4f3c72fab8647bd"
