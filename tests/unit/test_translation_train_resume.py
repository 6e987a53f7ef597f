"""``imgforge pix2pix train`` killed with SIGKILL and run again gives the losses of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.training.loop import load_checkpoint
from tests.unit.test_translation_train_support import (
    REPO, TINY_PIX2PIX, cli, make_aligned, one_thread, subprocess_env,  # noqa: F401
)

STEPS = 30


def _args(data: Path, run: Path) -> list:
    return ["--seed", "5", "--precision", "fp32", "-q", "pix2pix", "train", str(data), "-o", str(run), "--steps",
            str(STEPS), "--checkpoint-every", "5", "--sample-every", "0", "--direction", "BtoA", *TINY_PIX2PIX]


def _losses(run: Path) -> list:
    return [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]


def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    data = make_aligned(tmp_path / "data", n_train=5)
    ref = tmp_path / "ref"
    res = CliRunner().invoke(app, _args(data, ref))
    assert res.exit_code == 0, res.output
    run = tmp_path / "killed"
    proc = subprocess.Popen(cli(*_args(data, run)), cwd=str(REPO), env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        ck = run / "checkpoint.pt"
        if ck.exists():
            try:
                step = load_checkpoint(ck)["step"]
            except Exception:
                step = 0
            if step >= 5:
                proc.send_signal(signal.SIGKILL)
                killed_at = step
                break
        time.sleep(0.02)
    proc.wait(timeout=30)
    if killed_at is None:
        pytest.fail(f"no checkpoint to kill at (exit {proc.returncode}): {proc.stderr.read().decode()[-500:]}")
    assert proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(run / "checkpoint.pt")["step"]
    assert saved < STEPS, "the run finished before it was killed; nothing was tested"
    again = subprocess.run(cli(*_args(data, run)), cwd=str(REPO), env=subprocess_env(), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    got, want = _losses(run), _losses(ref)
    assert len(got) == STEPS and got == want  # bitwise the same losses, step by step
    a, b = load_file(str(run / "G.safetensors")), load_file(str(ref / "G.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
