"""Quality runs for pix2pix / CycleGAN on real data (``pytest -m slow``; about 25 minutes on one busy CPU core).

- facades (labels -> photo, 128 px): examples/train_facades_pix2pix.py with its defaults (6000 steps, L1 weight
  1000), scored on ``val``.
- monet2photo_sample: ``imgforge cyclegan train`` for 300 steps at 64 px, then ``imgforge cyclegan test``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.unit.test_translation_train_support import REPO, cli, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.data]


def test_pix2pix_facades_beats_the_baselines(data_dir: Path, tmp_path: Path) -> None:
    facades = require(data_dir / "facades" / "train").parent
    out = tmp_path / "facades"
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "train_facades_pix2pix.py"), "--data", str(facades),
                           "--out", str(out)], cwd=str(REPO), env=subprocess_env(),
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = json.loads((out / "scores.json").read_text())["scores"]
    ours = scores["pix2pix (reference test mode)"]
    identity, mean = scores["baseline: identity (label map)"], scores["baseline: mean training photo"]
    print(json.dumps(scores, indent=2))
    # Measured (benchmarks/results/facades_pix2pix.md): L1 0.159 vs 0.171 for the mean training photo (better on 80
    # of 100 images; paired difference 0.0123 +- 0.0016 s.e.) and 0.403 for the label map; SSIM 0.310 vs 0.186.
    # With the reference's L1 weight 100 the L1 stays at or above the mean photo's (0.171-0.178) at any budget tried.
    assert ours["l1"] < 0.5 * identity["l1"]
    assert ours["l1"] < mean["l1"] - 0.007
    assert ours["ssim"] > mean["ssim"] + 0.08 and ours["ssim"] > identity["ssim"] + 0.2
    assert scores["pix2pix (eval mode)"]["l1"] < mean["l1"]
    assert (out / "val" / "index.html").exists() and (out / "index.html").exists()


def test_cyclegan_monet2photo_end_to_end(data_dir: Path, tmp_path: Path) -> None:
    data = require(data_dir / "monet2photo_sample" / "trainA").parent
    run = tmp_path / "run"
    args = ["--seed", "0", "cyclegan", "train", str(data), "--steps", "300", "--load-size", "72", "--crop-size",
            "64", "--ngf", "16", "--ndf", "16", "--netG", "resnet_6blocks", "--sample-every", "100", "-o", str(run)]
    proc = subprocess.run(cli(*args), cwd=str(REPO), env=subprocess_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]
    first = sum(r["cycle_A"] + r["cycle_B"] for r in rows[:50]) / 50
    last = sum(r["cycle_A"] + r["cycle_B"] for r in rows[-50:]) / 50
    assert last < 0.7 * first, (first, last)
    res = tmp_path / "results"
    proc = subprocess.run(cli("cyclegan", "test", str(data), "--weights", str(run), "--size", "128", "-o", str(res)),
                          cwd=str(REPO), env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (res / "index.html").read_text()
    n = max(len(list((data / "testA").iterdir())), len(list((data / "testB").iterdir())))
    assert page.count("<h3>") == n  # every test image, not the reference's 50 (or fewer)
    assert len(list((res / "images").iterdir())) == 6 * n
