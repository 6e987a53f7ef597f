"""``torchrun --nproc_per_node 2 -m imgforge ... train`` (gloo on CPU) matches one process on the combined batch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.methods.translate import run_generator
from tests.unit.test_translation_train_support import (
    REPO, TINY_CYCLEGAN, TINY_PIX2PIX, make_aligned, make_unaligned, one_thread, subprocess_env,  # noqa: F401
)

STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _losses(run: Path) -> List[dict]:
    return [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]


def _generator(path: Path) -> torch.nn.Module:
    from imgforge.hub.modelfile import load_model_file

    return load_model_file(path)[0]


def _check(method: str, data: Path, tmp_path: Path, extra: List[str], stems: List[str]) -> None:
    common = ["--seed", "11", "--precision", "fp32", "-q", method, "train", str(data), "--steps", str(STEPS),
              "--batch-size", "2", "--sample-every", "0", "--log-every", "1", *extra]
    one = tmp_path / "one"
    res = CliRunner().invoke(app, [*common, "-o", str(one)])
    assert res.exit_code == 0, res.output
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "imgforge", *common, "-o", str(two)]
    proc = subprocess.run(cmd, cwd=str(REPO), env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = json.loads((two / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["batch_size"] == 2
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == STEPS
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], rel=1e-5, abs=1e-6), (ra["step"], k)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for stem in stems:
        ya = run_generator(x, _generator(one / f"{stem}.safetensors"))
        yb = run_generator(x, _generator(two / f"{stem}.safetensors"))
        assert (ya - yb).abs().max().item() < 1e-4, stem


def test_cyclegan_ddp_two_processes_match_one(tmp_path: Path) -> None:
    """Instance norm, image pools of 3 (gathered across ranks): same losses per step, same generators."""
    data = make_unaligned(tmp_path / "data", n=4)
    _check("cyclegan", data, tmp_path, [*TINY_CYCLEGAN, "--pool-size", "3"], ["G_A", "G_B"])


@pytest.mark.slow
def test_pix2pix_ddp_two_processes_match_one(tmp_path: Path) -> None:
    """pix2pix with instance norm and no dropout (batch statistics and dropout masks are per rank otherwise)."""
    data = make_aligned(tmp_path / "data", n_train=4)
    _check("pix2pix", data, tmp_path, [*TINY_PIX2PIX, "--norm", "instance", "--no-dropout"], ["G"])
