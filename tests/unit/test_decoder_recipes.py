"""The decoder retraining recipes (weights/recipes/train_adain_decoder.py --init-decoder, finetune_wct_decoders.py)
on tiny images: --max-seconds stops training gracefully and the output file is still written, loadable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgforge.hub.modelfile import load_model_file, read_model_file, save_model_file
from imgforge.models.adain import AdaINDecoder
from imgforge.models.vgg import vgg19
from tests.conftest import REPO

RECIPES = REPO / "weights" / "recipes"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("recipes")
    rng = np.random.default_rng(0)
    for sub, n in (("content", 3), ("styles", 2)):
        (d / sub).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(d / sub / f"{sub}{i}.png")
    return d


def _run(args: list, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_adain_recipe_max_seconds_writes_a_half_precision_decoder(data: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    enc = vgg19(last_layer="relu4_1", widths=(4, 8, 8, 512, 8))
    save_model_file(tmp_path / "vgg.safetensors", enc.state_dict(), arch="vgg19",
                    arch_kwargs={"last_layer": "relu4_1", "widths": [4, 8, 8, 512, 8]})
    save_model_file(tmp_path / "init.safetensors", AdaINDecoder().state_dict(), arch="adain_decoder")
    out = tmp_path / "out.safetensors"
    r = _run([RECIPES / "train_adain_decoder.py", "--init-decoder", tmp_path / "init.safetensors",
              "--encoder", tmp_path / "vgg.safetensors", "--content-dir", data / "content",
              "--style-dir", data / "styles", "--run-dir", tmp_path / "run", "--steps", "1000000",
              "--max-seconds", "3", "--image-size", "32", "--resize", "40", "--batch-size", "2",
              "--warmup-steps", "5", "--checkpoint-every", "100000", "--log-every", "1000", "--half", "--device", "cpu", "--out", out])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "interrupted: stopped at step" in r.stdout
    sd, meta = read_model_file(out)
    assert meta["arch"] == "adain_decoder" and meta["encoder"] and "warm-up 5" in meta["notes"]
    assert all(v.dtype == torch.float16 for v in sd.values())
    steps = int(meta["notes"].split("then ")[1].split(" steps")[0])
    assert steps >= 1
    dec, _ = load_model_file(out)  # read back as float32
    run_sd = read_model_file(tmp_path / "run" / "run" / "decoder.safetensors")[0]
    assert all(torch.equal(run_sd[k].half().float(), v) for k, v in dec.state_dict().items())


def test_wct_recipe_max_seconds_writes_loadable_decoders(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "wct.safetensors"
    r = _run([RECIPES / "finetune_wct_decoders.py", "--images", data / "content", data / "styles",
              "--run-dir", tmp_path / "run", "--steps", "1000000", "--max-seconds", "3", "--image-size", "32",
              "--resize", "40", "--batch-size", "2", "--checkpoint-every", "100000", "--log-every", "1000", "--out", out])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "interrupted: stopped at step" in r.stdout
    dec, meta = load_model_file(out)
    assert meta["arch"] == "wct_decoders" and "reconstruction fine-tuning" in meta["notes"]
    init = load_model_file(REPO / "weights" / "imgforge-wct-decoders-embedded.safetensors")[0].state_dict()
    assert set(init) == set(dec.state_dict())
    assert any(not torch.equal(init[k], v) for k, v in dec.state_dict().items())  # it trained
